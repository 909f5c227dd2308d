//! A firmware-sized kafka-edge producer: the type, its storage and one turn of the loop a
//! firmware would run, shared by the `thumbv7em-none-eabihf` binary (`src/main.rs`) and a
//! host test that runs the same loop and prints the producer's size.
#![no_std]
#![forbid(unsafe_code)]

use core::hint::black_box;

use kafka_edge_core::record::Header;
use kafka_edge_core::{
    BrokerRef, ConnId, FixedStorage, Limits, ProduceError, Producer, ProducerConfig,
    ProducerRecord, TicketRange, Transmit, Transport,
};

/// `buffer.memory`: two 16 KiB batches (the default `batch.size`).
pub const POOL_BYTES: usize = 32 * 1024;

/// The tables: 4 topics, 16 partitions, 4 brokers, 2 connections, 16 batches, 16 KiB
/// responses, 2 KiB request framing, all inline (no heap).
pub type Storage = FixedStorage<4, 16, 4, 2, 16, 16384, 2048>;

/// The producer, over a pool in static memory.
#[cfg(not(feature = "lz4"))]
pub type FirmwareProducer = Producer<&'static mut [u8], Storage>;
/// The producer, over a pool in static memory, compressing with the heap-free LZ4.
#[cfg(feature = "lz4")]
pub type FirmwareProducer = Producer<&'static mut [u8], Storage, kafka_edge_core::record::Lz4>;

/// The limits matching [`Storage`]'s capacities.
pub const LIMITS: Limits = Limits {
    topics: 4,
    partitions: 16,
    brokers: 4,
    connections: 2,
    batches: 16,
    response_bytes: 16384,
    request_bytes: 2048,
};

/// Builds the producer for `10.0.2.2:9092` (QEMU's user-mode host address) over `pool`.
pub fn producer(pool: &'static mut [u8]) -> Result<FirmwareProducer, kafka_edge_core::ConfigError> {
    #[cfg_attr(not(any(feature = "sasl", feature = "lz4")), allow(unused_mut))]
    let mut config = ProducerConfig::new("10.0.2.2:9092")?;
    // With SASL linked in and in use (the mechanism is chosen at run time: all are linked).
    #[cfg(feature = "sasl")]
    for (key, value) in [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", "device-17"),
        ("sasl.password", "secret"),
    ] {
        config.set(key, value)?;
    }
    #[cfg(feature = "lz4")]
    {
        config.set("compression.type", "lz4")?;
        FirmwareProducer::with_compressor(
            config,
            pool,
            LIMITS,
            0x5eed,
            kafka_edge_core::record::Lz4::new(),
        )
    }
    #[cfg(not(feature = "lz4"))]
    FirmwareProducer::new(config, pool, LIMITS, 0x5eed)
}

/// A transport that hands every output to `black_box`, remembering the last connection to
/// open so the loop can report it connected.
#[derive(Debug, Default)]
pub struct Sink {
    /// The connection of the last `connect`.
    pub connecting: Option<ConnId>,
}

impl Transport for Sink {
    fn connect(&mut self, conn: ConnId, broker: BrokerRef, host: &str, port: u16) {
        black_box((broker, host, port));
        self.connecting = Some(conn);
    }
    fn disconnect(&mut self, conn: ConnId) {
        black_box(conn);
    }
    fn delivered(
        &mut self,
        topic: &str,
        partition: i32,
        tickets: TicketRange,
        base_offset: i64,
        log_append_time_ms: i64,
    ) {
        black_box((topic, partition, tickets, base_offset, log_append_time_ms));
    }
    fn failed(&mut self, topic: &str, partition: i32, tickets: TicketRange, error: ProduceError) {
        black_box((topic, partition, tickets, error));
    }
    fn transmit(&mut self, tx: &Transmit<'_>) -> usize {
        for chunk in tx.chunks() {
            black_box(chunk);
        }
        black_box(tx.len())
    }
}

/// What the broker "answers": opaque bytes, so every decoder stays in the image.
static RECEIVED: [u8; 256] = [0; 256];

/// One turn of a firmware loop at `now_ms`: sends a few records (keyed and unkeyed, one
/// with a header), runs the timer, reports a pending connection connected, feeds received
/// bytes, draining after each input. Returns the next timeout.
pub fn turn(p: &mut FirmwareProducer, sink: &mut Sink, now_ms: u64) -> Option<u64> {
    let headers = [Header {
        key: "sensor",
        value: Some(b"t1"),
    }];
    let records = [
        ProducerRecord {
            topic: "telemetry",
            partition: None,
            key: Some(b"device-1"),
            value: Some(b"{\"t\":21.5}"),
            headers: &headers,
            timestamp: 1_700_000_000_000,
        },
        ProducerRecord {
            topic: "telemetry",
            partition: None,
            key: None,
            value: Some(b"{\"t\":21.6}"),
            headers: &[],
            timestamp: 1_700_000_000_001,
        },
        ProducerRecord {
            topic: "events",
            partition: Some(0),
            key: Some(b"door"),
            value: Some(b"open"),
            headers: &[],
            timestamp: -1,
        },
    ];
    for record in black_box(&records) {
        let _ = black_box(p.send(now_ms, record));
        p.drain(now_ms, sink);
    }
    p.handle_timeout(now_ms);
    p.drain(now_ms, sink);
    if let Some(conn) = sink.connecting.take() {
        p.handle_connected(now_ms, conn);
        p.drain(now_ms, sink);
    }
    let conn = ConnId(black_box(0));
    p.handle_received(now_ms, conn, black_box(&RECEIVED[..]));
    // A firmware that reports its metrics reads the counters and each topic's.
    #[cfg(feature = "metrics")]
    {
        black_box(p.metrics());
        for topic in p.topic_metrics() {
            black_box(topic);
        }
    }
    p.drain(now_ms, sink)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::boxed::Box;
    use std::println;

    use super::*;

    #[test]
    fn runs_on_the_host_and_prints_its_size() {
        println!(
            "size_of::<FirmwareProducer>() = {} bytes on the host",
            core::mem::size_of::<FirmwareProducer>()
        );
        let pool: &'static mut [u8] = Box::leak(Box::new([0u8; POOL_BYTES]));
        let mut p = Box::new(producer(pool).expect("config"));
        let mut sink = Sink::default();
        for now in 0..50 {
            turn(&mut p, &mut sink, now);
        }
        assert_eq!(p.config().buffer_memory, POOL_BYTES);
        let m = p.metrics();
        println!("after 50 turns: {m:?}");
        // The loop reached the wire: a connection, a request written, garbage answered.
        assert!(m.connections_opened > 0 && m.requests_sent > 0 && m.bytes_sent > 0);
    }
}
