//! Helpers for the real-broker tests of kafka-edge-std.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use kafka_edge_std::{Header, Producer, ProducerBuilder, ProducerRecord, RecordMetadata};
use kafka_edge_tests::{Cluster, Ground, TestRecord, unhex};

/// The cluster of `ground`, waiting for the test ground to start it.
pub fn cluster(ground: Ground) -> Cluster {
    Cluster::wait(ground)
}

/// A builder for `cluster` with quick metadata and the given extra properties.
pub fn builder(cluster: &Cluster, props: &[(&str, &str)]) -> ProducerBuilder {
    let mut b = Producer::builder()
        .set("bootstrap.servers", &cluster.bootstrap)
        .set("client.id", "std-test");
    for (k, v) in props {
        b = b.set(*k, *v);
    }
    b
}

/// A test record with its bytes decoded.
#[derive(Debug, Clone)]
pub struct Owned {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: i64,
    pub partition: Option<i32>,
}

impl Owned {
    pub fn from_test(r: &TestRecord) -> Self {
        Owned {
            key: r.key.as_deref().map(unhex),
            value: r.value.as_deref().map(unhex),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.as_deref().map(unhex)))
                .collect(),
            timestamp: r.timestamp,
            partition: r.partition,
        }
    }

    pub fn record<'a>(&'a self, topic: &'a str) -> ProducerRecord<'a> {
        ProducerRecord {
            topic,
            partition: self.partition,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| Header {
                    key: k,
                    value: v.as_deref(),
                })
                .collect(),
            timestamp: Some(self.timestamp),
        }
    }
}

pub fn owned(records: &[TestRecord]) -> Vec<Owned> {
    records.iter().map(Owned::from_test).collect()
}

/// Keyless records with values `v-<i>`, increasing timestamps.
pub fn keyless_records(n: usize) -> Vec<TestRecord> {
    (0..n)
        .map(|i| TestRecord {
            key: None,
            value: Some(kafka_edge_tests::hex(format!("value-{i}").as_bytes())),
            headers: vec![],
            timestamp: 1_700_000_000_000 + i as i64,
            partition: None,
        })
        .collect()
}

/// The test ground's stderr logger (`KAFKA_EDGE_LOG` or `RUST_LOG`, default warn).
pub use kafka_edge_tests::init_log;

/// A TCP proxy in front of one broker that can hold back everything (a broker that stops
/// answering) or be gone (every connection closed, new ones refused). Pair it with
/// [`ProducerBuilder::resolver`] so that every connection of the producer goes through it.
pub struct StallingProxy {
    pub addr: std::net::SocketAddr,
    stall: std::sync::Arc<std::sync::atomic::AtomicBool>,
    gone: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StallingProxy {
    pub fn start(target: &str) -> Self {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let target: std::net::SocketAddr = target.parse().expect("host:port");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stall = Arc::new(AtomicBool::new(false));
        let gone = Arc::new(AtomicBool::new(false));
        let (s, g) = (stall.clone(), gone.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if g.load(Ordering::Relaxed) {
                    continue; // dropped: closed at once
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let (stall, gone) = (s.clone(), g.clone());
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            while stall.load(Ordering::Relaxed) && !gone.load(Ordering::Relaxed) {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            if gone.load(Ordering::Relaxed) || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        StallingProxy { addr, stall, gone }
    }

    /// The broker is gone (true): connections close as soon as either side sends, and new
    /// ones are closed at once; or back (false).
    pub fn gone(&self, on: bool) {
        self.gone.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Holds back (true) or forwards (false) all bytes from now on.
    pub fn stall(&self, on: bool) {
        self.stall.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// A proxy in front of the first broker of `c`, and a producer with `props` whose every
    /// connection goes through it.
    pub fn with_producer(c: &Cluster, props: &[(&str, &str)]) -> (Self, Producer) {
        let proxy = Self::start(c.bootstrap.split(',').next().expect("a bootstrap server"));
        let producer = proxy.builder(props).build().expect("producer");
        (proxy, producer)
    }

    /// A producer builder whose every connection goes through the proxy.
    pub fn builder(&self, props: &[(&str, &str)]) -> ProducerBuilder {
        let addr = self.addr;
        let mut b = Producer::builder()
            .set("bootstrap.servers", addr.to_string())
            .set("client.id", "std-proxy-test")
            .resolver(move |_, _| Ok(vec![addr]));
        for (k, v) in props {
            b = b.set(*k, *v);
        }
        b
    }
}

/// Sends `records` to `topic` through futures, waits up to 60 s for each, returns their
/// metadata (a record without an outcome, or failed, panics naming it).
pub fn send_all(p: &Producer, topic: &str, records: &[TestRecord]) -> Vec<RecordMetadata> {
    let owned = owned(records);
    let futures: Vec<_> = owned
        .iter()
        .map(|r| p.send(&r.record(topic)).expect("accepted"))
        .collect();
    futures
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            f.wait_timeout(Duration::from_secs(60))
                .unwrap_or_else(|| panic!("record {i}: no outcome"))
                .unwrap_or_else(|e| panic!("record {i}: {e}"))
        })
        .collect()
}

/// Java's partition (murmur2) of keyed record `r` over `partitions`.
pub fn murmur2_partition(r: &TestRecord, partitions: u32) -> i32 {
    let key = unhex(r.key.as_deref().expect("keyed"));
    kafka_edge_std::partition_for_key(&key, std::num::NonZeroU32::new(partitions).expect("> 0"))
}
