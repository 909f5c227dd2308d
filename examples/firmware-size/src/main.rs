//! A firmware-sized kafka-edge producer for `thumbv7em-none-eabihf` (Cortex-M4F, MPS2
//! AN386-like memory: 256 KiB flash, 128 KiB RAM), built only to measure its static RAM
//! and flash (`scripts/firmware-size`). The producer and its 32 KiB pool live in static
//! memory (`StaticCell`), and every input and output of the producer runs in the loop.
#![no_std]
#![no_main]
#![forbid(unsafe_code)]

use core::hint::black_box;

use cortex_m_rt::entry;
use kafka_edge_firmware_size::{FirmwareProducer, POOL_BYTES, Sink, producer, turn};
use panic_halt as _;
use static_cell::{ConstStaticCell, StaticCell};

// Zeroed at link time (.bss): `take` hands it out without a copy through the stack.
static POOL: ConstStaticCell<[u8; POOL_BYTES]> = ConstStaticCell::new([0; POOL_BYTES]);
static PRODUCER: StaticCell<Result<FirmwareProducer, kafka_edge_core::ConfigError>> =
    StaticCell::new();

/// `size_of::<FirmwareProducer>()` on this target, for `scripts/firmware-size` to read
/// from the image (4 bytes of flash).
#[used]
static PRODUCER_SIZE: usize = core::mem::size_of::<FirmwareProducer>();

#[entry]
fn main() -> ! {
    let pool: &'static mut [u8] = POOL.take();
    // The Result goes straight into its static, but `Producer::new` returns by value:
    // building it still takes about 35 KiB of stack (scripts/firmware-size: main's frame).
    let Ok(p) = PRODUCER.init_with(|| producer(pool)) else {
        panic!("producer configuration");
    };
    let mut sink = Sink::default();
    let mut now_ms: u64 = 0;
    loop {
        now_ms = now_ms.wrapping_add(black_box(1));
        black_box(turn(p, &mut sink, now_ms));
    }
}
