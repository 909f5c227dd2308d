//! What every board of the firmware shares: the application ([`app`]: the kafka-edge producer
//! over embassy-net, its statics and its produce loop), the sensor [`readings`] it produces,
//! and a Cortex-M thread [`executor`] that sleeps with `WFI`.
//!
//! Each board is a binary that brings up its clocks, time driver and Ethernet, builds the
//! embassy-net stack on [`app::stack_resources`], and runs [`app::produce`]:
//! - `kafka-edge-firmware` (src/main.rs): QEMU's `mps2-an386` with its LAN9118, reporting over
//!   semihosting; run by `scripts/firmware`;
//! - `kafka-edge-stm32f429` (src/bin/stm32f429.rs, feature `stm32f429`): an STM32F429ZI
//!   Nucleo-144 with its Ethernet MAC and LAN8742 PHY through embassy-stm32, reporting over
//!   defmt-rtt; built, not run here.

#![no_std]

pub mod app;
pub mod executor;
pub mod readings;
