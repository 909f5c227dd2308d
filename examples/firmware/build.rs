//! Puts the board's memory layout on the linker's search path as `memory.x` and links with
//! cortex-m-rt's `link.x`: QEMU mps2-an386's `memory/mps2-an386.x`, or with feature
//! `stm32f429` the STM32F429ZI's `memory/stm32f429.x` (that feature builds the
//! `kafka-edge-stm32f429` binary: build it alone, with `--bin`), which also links defmt's
//! `defmt.x`. No `memory.x` may lie in the package's root: the linker runs there and would
//! take it first.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let stm32f429 = env::var_os("CARGO_FEATURE_STM32F429").is_some();
    let memory: &[u8] = if stm32f429 {
        include_bytes!("memory/stm32f429.x")
    } else {
        include_bytes!("memory/mps2-an386.x")
    };
    fs::write(out.join("memory.x"), memory).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory");
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("TARGET").is_ok_and(|t| t.starts_with("thumb")) {
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
        if stm32f429 {
            println!("cargo:rustc-link-arg-bin=kafka-edge-stm32f429=-Tdefmt.x");
        }
    }
}
