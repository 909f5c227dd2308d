//! kafka-edge-core: the heap-free, sans-IO core of a Kafka producer.
#![no_std]

pub mod protocol;
pub mod record;

pub use record::crc32c;
