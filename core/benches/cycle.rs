//! A whole sans-IO produce cycle per record, next to a memcpy of the same bytes: `send`,
//! the drain step (accumulate, close the batch, encode the Produce request), an in-memory
//! broker that answers each request with a canned response (only its correlation id
//! changes), decoding that response, and completing every record's outcome. No sockets,
//! no threads, a virtual clock: what is measured is the core's own work for a record.
//!
//! `cargo bench -p kafka-edge-core --bench cycle` (add `--features hardware-crc` for the
//! CRC32C instruction).

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_edge_core::{
    ConnId, FixedStorage, Limits, ProduceError, Producer, ProducerConfig, ProducerRecord,
    TicketRange, Transmit, Transport,
};
use kafka_protocol::messages as kp;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

const VALUE_LEN: usize = 100;
/// Records sent per iteration: about 14 batches of 16 KiB.
const RECORDS: usize = 2_000;
const POOL: usize = 64 * 16384;
const TOPIC: &str = "bench";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// The in-memory cluster: one broker (node 1) leading the topic's one partition, reached
/// through the bootstrap address `boot:9092` and as `broker-1:9092`. It is the core's
/// [`Transport`]: connections open at once and take every byte written.
#[derive(Default)]
struct Broker {
    /// Bytes written by the producer, per connection, not yet answered.
    out: BTreeMap<u16, Vec<u8>>,
    /// Connections opened by the last drain step, to report connected.
    opened: Vec<u16>,
    /// Records whose outcome came back, and whether any failed.
    completed: usize,
    failed: usize,
    /// The Produce response body for the partition, by request version.
    produce_body: BTreeMap<i16, Vec<u8>>,
}

impl Transport for Broker {
    fn connect(&mut self, conn: ConnId, _: kafka_edge_core::BrokerRef, _: &str, _: u16) {
        self.out.insert(conn.0, Vec::new());
        self.opened.push(conn.0);
    }

    fn disconnect(&mut self, conn: ConnId) {
        self.out.remove(&conn.0);
    }

    fn delivered(&mut self, _: &str, _: i32, tickets: TicketRange, _: i64, _: i64) {
        self.completed += tickets.count() as usize;
    }

    fn failed(&mut self, _: &str, _: i32, tickets: TicketRange, _: ProduceError) {
        self.completed += tickets.count() as usize;
        self.failed += tickets.count() as usize;
    }

    fn transmit(&mut self, tx: &Transmit<'_>) -> usize {
        let Some(out) = self.out.get_mut(&tx.conn().0) else {
            return 0;
        };
        for chunk in tx.chunks() {
            out.extend_from_slice(chunk);
        }
        tx.len()
    }
}

impl Broker {
    /// Answers every whole request written so far; returns the responses, by connection.
    fn answer(&mut self) -> Vec<(u16, Vec<u8>)> {
        let mut replies = Vec::new();
        let conns: Vec<u16> = self.out.keys().copied().collect();
        for conn in conns {
            while let Some(out) = self.out.get_mut(&conn) {
                if out.len() < 4 {
                    break;
                }
                let len = i32::from_be_bytes([out[0], out[1], out[2], out[3]]) as usize;
                if out.len() < 4 + len {
                    break;
                }
                let frame: Vec<u8> = out.drain(..4 + len).skip(4).collect();
                replies.push((conn, self.respond(&frame)));
            }
        }
        replies
    }

    /// The response frame (length prefix included) to one request frame.
    fn respond(&mut self, frame: &[u8]) -> Vec<u8> {
        let api = kp::ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).unwrap();
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let body = match api {
            // The hot path: a canned body, encoded once per version.
            kp::ApiKey::Produce => self
                .produce_body
                .entry(version)
                .or_insert_with(|| encode(&produce_response(), version))
                .clone(),
            kp::ApiKey::ApiVersions => encode(&api_versions(), version),
            kp::ApiKey::Metadata => encode(&metadata(), version),
            kp::ApiKey::InitProducerId => {
                let mut r = kp::InitProducerIdResponse::default();
                r.producer_id = kp::ProducerId(7);
                encode(&r, version)
            }
            other => panic!("the bench broker does not answer {other:?}"),
        };
        let mut header = kp::ResponseHeader::default();
        header.correlation_id = correlation_id;
        let mut response = Vec::with_capacity(16 + body.len());
        response.extend_from_slice(&[0; 4]);
        header
            .encode(&mut response, api.response_header_version(version))
            .unwrap();
        response.extend_from_slice(&body);
        let len = (response.len() - 4) as i32;
        response[..4].copy_from_slice(&len.to_be_bytes());
        response
    }
}

fn encode<T: Encodable>(body: &T, version: i16) -> Vec<u8> {
    let mut b = Vec::new();
    body.encode(&mut b, version).unwrap();
    b
}

fn api_versions() -> kp::ApiVersionsResponse {
    let mut resp = kp::ApiVersionsResponse::default();
    for (k, min, max) in [(0, 3, 11), (3, 0, 12), (18, 0, 3), (22, 0, 5)] {
        let mut v = kp::api_versions_response::ApiVersion::default();
        v.api_key = k;
        v.min_version = min;
        v.max_version = max;
        resp.api_keys.push(v);
    }
    resp
}

fn metadata() -> kp::MetadataResponse {
    let mut resp = kp::MetadataResponse::default();
    let mut b = kp::metadata_response::MetadataResponseBroker::default();
    b.node_id = kp::BrokerId(1);
    b.host = s("broker-1");
    b.port = 9092;
    resp.brokers.push(b);
    let mut t = kp::metadata_response::MetadataResponseTopic::default();
    t.name = Some(kp::TopicName(s(TOPIC)));
    let mut part = kp::metadata_response::MetadataResponsePartition::default();
    part.leader_id = kp::BrokerId(1);
    part.leader_epoch = 1;
    t.partitions.push(part);
    resp.topics.push(t);
    resp
}

fn produce_response() -> kp::ProduceResponse {
    let mut pr = kp::produce_response::PartitionProduceResponse::default();
    pr.log_append_time_ms = -1;
    let mut tr = kp::produce_response::TopicProduceResponse::default();
    tr.name = kp::TopicName(s(TOPIC));
    tr.partition_responses.push(pr);
    let mut resp = kp::ProduceResponse::default();
    resp.responses.push(tr);
    resp
}

/// Inline tables as firmware would size them: 4 topics, 64 partitions, 4 brokers and
/// connections, 128 batches, 64 KiB responses and requests (a transmit never copies).
type Tables = FixedStorage<4, 64, 4, 4, 128, 65536, 65536>;

/// The producer and its broker at a virtual time.
struct Cycle {
    p: Producer<Vec<u8>, Tables>,
    broker: Broker,
    now: u64,
}

impl Cycle {
    /// A producer (the defaults: idempotent, acks=all, linger.ms=5) with the connections,
    /// metadata and producer id in place, one record delivered.
    fn new() -> Self {
        let config = ProducerConfig::new("boot:9092").unwrap();
        let p = Producer::new(config, vec![0u8; POOL], Limits::UNBOUNDED, 1).unwrap();
        let mut c = Cycle {
            p,
            broker: Broker::default(),
            now: 1_000,
        };
        let value = [1u8; VALUE_LEN];
        while c.p.send(c.now, &record(&value)).is_err() {
            c.turn();
        }
        c.run_until(1);
        assert_eq!(c.broker.failed, 0);
        c
    }

    /// One turn of a transport's loop: drain, report opened connections, answer requests.
    fn turn(&mut self) {
        self.now += 1;
        self.p.handle_timeout(self.now);
        self.p.drain(self.now, &mut self.broker);
        for conn in std::mem::take(&mut self.broker.opened) {
            self.p.handle_connected(self.now, ConnId(conn));
        }
        self.p.drain(self.now, &mut self.broker);
        for (conn, bytes) in self.broker.answer() {
            let n = self.p.handle_received(self.now, ConnId(conn), &bytes);
            assert_eq!(n, bytes.len());
        }
    }

    fn run_until(&mut self, completed: usize) {
        while self.broker.completed < completed {
            self.turn();
        }
    }

    /// Sends `values` and turns until each has its outcome.
    fn cycle(&mut self, values: &[[u8; VALUE_LEN]]) {
        let start = self.broker.completed;
        for v in values {
            self.p.send(self.now, &record(v)).unwrap();
        }
        self.run_until(start + values.len());
    }
}

fn record(value: &[u8]) -> ProducerRecord<'_> {
    ProducerRecord {
        topic: TOPIC,
        partition: None,
        key: None,
        value: Some(value),
        headers: &[],
        timestamp: 1_700_000_000_000,
    }
}

fn produce_cycle(c: &mut Criterion) {
    let values: Vec<[u8; VALUE_LEN]> = (0..RECORDS).map(|i| [i as u8; VALUE_LEN]).collect();
    let mut group = c.benchmark_group("produce_cycle_100B");
    group.throughput(Throughput::Elements(RECORDS as u64));
    let mut cycle = Cycle::new();
    group.bench_function("records", |b| b.iter(|| cycle.cycle(black_box(&values))));
    assert_eq!(cycle.broker.failed, 0, "every record delivered");
    // The same bytes copied once: the least any producer must do with them.
    let mut sink = vec![0u8; RECORDS * VALUE_LEN];
    group.bench_function("memcpy_baseline_records", |b| {
        b.iter(|| {
            for (dst, v) in sink.chunks_exact_mut(VALUE_LEN).zip(&values) {
                dst.copy_from_slice(black_box(v));
            }
            black_box(&sink);
        })
    });
    group.finish();
}

/// Checks the response decoding of the bench broker once (the bench itself asserts only
/// that every record was delivered).
fn self_check() {
    let body = encode(&produce_response(), 11);
    let decoded = kp::ProduceResponse::decode(&mut &body[..], 11).unwrap();
    assert_eq!(decoded.responses.len(), 1);
}

fn benches(c: &mut Criterion) {
    self_check();
    produce_cycle(c);
}

criterion_group!(cycle, benches);
criterion_main!(cycle);
