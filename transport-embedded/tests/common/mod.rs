//! What the async driver's host tests share: tokio sockets and clock for the driver, the
//! firmware-sized tables, the test ground's clusters, records and their outcomes.
#![allow(dead_code, unreachable_pub)]

use std::cell::RefCell;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::rc::Rc;
use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use kafka_edge_core::record::{Compressor, Header};
use kafka_edge_core::{
    BrokerRef, FixedStorage, Limits, ProducerConfig, ProducerRecord, Ticket, TicketRange,
    partition_for_key,
};
use kafka_edge_embedded::{Clock, Connection, CoreProducer, Error, OnOutcome, Outcome, Producer};
use kafka_edge_tests::{Cluster, Ground, TestRecord, unhex};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};

/// The tables a small board would give: 4 topics, 16 partitions, 4 brokers, 4
/// connections, 32 batches, 64 KiB responses, 4 KiB request framing, all inline.
pub type Tables = FixedStorage<4, 16, 4, 4, 32, 65536, 4096>;
pub type Core = CoreProducer<Vec<u8>, Tables>;

pub const LIMITS: Limits = Limits {
    topics: 4,
    partitions: 16,
    brokers: 4,
    connections: 4,
    batches: 32,
    response_bytes: 65536,
    request_bytes: 4096,
};

/// A tokio TCP stream as the driver's reusable connection.
#[derive(Default)]
pub struct Tcp {
    pub stream: Option<TcpStream>,
    /// Every address the driver dialled, for the test to check.
    pub dialled: Rc<RefCell<Vec<SocketAddr>>>,
}

impl Connection for Tcp {
    type ConnectError = std::io::Error;
    type Reader<'a> = FromTokio<ReadHalf<'a>>;
    type Writer<'a> = FromTokio<WriteHalf<'a>>;

    async fn connect(&mut self, _broker: BrokerRef, host: &str, port: u16) -> std::io::Result<()> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        self.dialled.borrow_mut().push(stream.peer_addr()?);
        self.stream = Some(stream);
        Ok(())
    }

    fn split(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>) {
        let (r, w) = self
            .stream
            .as_mut()
            .expect("split on an open connection")
            .split();
        (FromTokio::new(r), FromTokio::new(w))
    }

    fn close(&mut self) {
        self.stream = None;
    }
}

/// Milliseconds since the test began, and tokio's timer.
pub struct TokioClock(pub tokio::time::Instant);

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        tokio::time::sleep_until(self.0 + Duration::from_millis(deadline_ms)).await;
    }
}

/// The cluster of `ground`, waiting for the test ground to start it.
pub fn cluster(ground: Ground) -> Cluster {
    Cluster::wait(ground)
}

pub fn core(c: &Cluster, props: &[(&str, &str)]) -> Box<Core> {
    let mut config = ProducerConfig::new(&c.bootstrap).expect("bootstrap");
    config.set("client.id", "embedded-test").expect("client.id");
    for (k, v) in props {
        config
            .set(k, v)
            .unwrap_or_else(|e| panic!("{k}={v}: {e:?}"));
    }
    Box::new(Core::new(config, vec![0; 128 * 1024], LIMITS, 7).expect("config"))
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A test record's bytes, owned, so a `ProducerRecord` can borrow them.
pub struct Owned {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub timestamp: i64,
}

pub fn owned(records: &[TestRecord]) -> Vec<Owned> {
    records
        .iter()
        .map(|r| Owned {
            key: r.key.as_deref().map(unhex),
            value: r.value.as_deref().map(unhex),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.as_deref().map(unhex)))
                .collect(),
            timestamp: r.timestamp,
        })
        .collect()
}

/// Sends `owned` to `topic` with `enqueue` (many records in flight), flushes and closes;
/// returns each record's ticket and every outcome.
pub async fn produce_all<H: OnOutcome, Z: Compressor>(
    p: &mut Producer<'_, Vec<u8>, Tables, Tcp, TokioClock, H, 4, 2048, 1024, Z>,
    topic: &str,
    owned: &[Owned],
) -> Vec<Ticket> {
    let mut tickets = Vec::with_capacity(owned.len());
    for (i, r) in owned.iter().enumerate() {
        let ticket = enqueue_one(p, topic, r)
            .await
            .unwrap_or_else(|e| panic!("record {i}: {e}"));
        tickets.push(ticket);
    }
    p.flush().await;
    p.close(30_000).await;
    tickets
}

pub type Outcomes = Rc<RefCell<Vec<(i32, TicketRange, Result<i64, String>)>>>;

pub fn recorder(outcomes: &Outcomes) -> impl FnMut(&Outcome<'_>) + use<> {
    let outcomes = Rc::clone(outcomes);
    move |o: &Outcome<'_>| {
        outcomes.borrow_mut().push((
            o.partition,
            o.tickets,
            o.result.map(|d| d.base_offset).map_err(|e| e.to_string()),
        ));
    }
}

/// Each ticket's single outcome: (partition, offset); panics on a ticket with none, with
/// several, or failed.
pub fn outcome_per_ticket(tickets: &[Ticket], outcomes: &Outcomes) -> Vec<(i32, i64)> {
    let outcomes = outcomes.borrow();
    let covered: u64 = outcomes.iter().map(|(_, t, _)| u64::from(t.count())).sum();
    assert_eq!(covered, tickets.len() as u64, "records covered by outcomes");
    tickets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut hits = outcomes.iter().filter(|(_, r, _)| r.contains(*t));
            let (partition, range, result) = hits
                .next()
                .unwrap_or_else(|| panic!("record {i}: no outcome"));
            assert!(hits.next().is_none(), "record {i}: two outcomes");
            let base = result
                .as_ref()
                .unwrap_or_else(|e| panic!("record {i}: failed: {e}"));
            (
                *partition,
                base + i64::from(t.index() - range.first_index()),
            )
        })
        .collect()
}

pub fn murmur2(r: &TestRecord, partitions: u32) -> i32 {
    let key = unhex(r.key.as_deref().expect("keyed"));
    partition_for_key(&key, NonZeroU32::new(partitions).expect("> 0"))
}

impl Owned {
    /// The headers as the core takes them.
    pub fn headers(&self) -> Vec<Header<'_>> {
        self.headers
            .iter()
            .map(|(k, v)| Header {
                key: k,
                value: v.as_deref(),
            })
            .collect()
    }

    /// The record for `topic`, over `headers` (from [`headers`](Self::headers)).
    pub fn record<'a>(&'a self, topic: &'a str, headers: &'a [Header<'a>]) -> ProducerRecord<'a> {
        ProducerRecord {
            topic,
            partition: None,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers,
            timestamp: self.timestamp,
        }
    }
}

/// Enqueues `r` to `topic` (waiting up to `max.block.ms`), its headers borrowed for the call.
pub async fn enqueue_one<H: OnOutcome, const TX: usize, const RX: usize, Z: Compressor>(
    p: &mut Producer<'_, Vec<u8>, Tables, Tcp, TokioClock, H, 4, TX, RX, Z>,
    topic: &str,
    r: &Owned,
) -> Result<Ticket, Error> {
    let headers = r.headers();
    p.enqueue(&r.record(topic, &headers)).await
}
