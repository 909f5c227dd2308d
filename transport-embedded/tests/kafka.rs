//! The async driver on the host, over tokio TCP sockets through `embedded-io-adapters`,
//! against the real Apache Kafka of the test ground, with the firmware's heap-free tables;
//! every record is read back by the librdkafka judge.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use embedded_io_adapters::tokio_1::FromTokio;
use kafka_edge_core::record::Header;
use kafka_edge_core::{
    BrokerRef, FixedStorage, Limits, ProducerConfig, ProducerRecord, Ticket, TicketRange,
    partition_for_key,
};
use kafka_edge_embedded::{Clock, Connection, CoreProducer, Error, Outcome, Producer};
use kafka_edge_tests::{
    Cluster, Ground, TestRecord, assert_read_back_exactly, judge, judge_expect, keyed_records,
    topic_name, unhex,
};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};

/// The tables a small board would give: 4 topics, 16 partitions, 4 brokers, 4
/// connections, 32 batches, 64 KiB responses, 4 KiB request framing, all inline.
type Tables = FixedStorage<4, 16, 4, 4, 32, 65536, 4096>;
type Core = CoreProducer<Vec<u8>, Tables>;

const LIMITS: Limits = Limits {
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
struct Tcp {
    stream: Option<TcpStream>,
    /// Every address the driver dialled, for the test to check.
    dialled: Rc<RefCell<Vec<SocketAddr>>>,
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
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        tokio::time::sleep_until(self.0 + Duration::from_millis(deadline_ms)).await;
    }
}

fn cluster(ground: Ground) -> Cluster {
    let var = match ground {
        Ground::Kafka1 => "KAFKA_EDGE_DIR_1",
        Ground::Kafka3 => "KAFKA_EDGE_DIR_3",
        Ground::Tansu => "KAFKA_EDGE_DIR_TANSU",
    };
    if let Some(dir) = std::env::var_os(var).map(PathBuf::from) {
        let until = Instant::now() + Duration::from_secs(300);
        while Instant::now() < until
            && !std::fs::read_to_string(dir.join("env"))
                .unwrap_or_default()
                .contains("UP_MS=")
        {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Cluster::get(ground)
}

fn core(c: &Cluster, props: &[(&str, &str)]) -> Box<Core> {
    let mut config = ProducerConfig::new(&c.bootstrap).expect("bootstrap");
    config.set("client.id", "embedded-test").expect("client.id");
    for (k, v) in props {
        config
            .set(k, v)
            .unwrap_or_else(|e| panic!("{k}={v}: {e:?}"));
    }
    Box::new(Core::new(config, vec![0; 128 * 1024], LIMITS, 7).expect("config"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A test record's bytes, owned, so a `ProducerRecord` can borrow them.
struct Owned {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: i64,
}

fn owned(records: &[TestRecord]) -> Vec<Owned> {
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
async fn produce_all(
    p: &mut Producer<'_, Vec<u8>, Tables, Tcp, TokioClock, impl FnMut(&Outcome<'_>), 4>,
    topic: &str,
    owned: &[Owned],
) -> Vec<Ticket> {
    let mut tickets = Vec::with_capacity(owned.len());
    for (i, r) in owned.iter().enumerate() {
        let headers: Vec<Header<'_>> = r
            .headers
            .iter()
            .map(|(k, v)| Header {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let record = ProducerRecord {
            topic,
            partition: None,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &headers,
            timestamp: r.timestamp,
        };
        let ticket = p
            .enqueue(&record)
            .await
            .unwrap_or_else(|e| panic!("record {i}: {e}"));
        tickets.push(ticket);
    }
    p.flush().await;
    p.close(30_000).await;
    tickets
}

type Outcomes = Rc<RefCell<Vec<(i32, TicketRange, Result<i64, String>)>>>;

fn recorder(outcomes: &Outcomes) -> impl FnMut(&Outcome<'_>) + use<> {
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
fn outcome_per_ticket(tickets: &[Ticket], outcomes: &Outcomes) -> Vec<(i32, i64)> {
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

fn murmur2(r: &TestRecord, partitions: u32) -> i32 {
    let key = unhex(r.key.as_deref().expect("keyed"));
    partition_for_key(&key, NonZeroU32::new(partitions).expect("> 0"))
}

#[test]
fn keyed_records_through_the_async_driver_exactly_once() {
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("embedded-keyed");
    c.create_topic(&topic, 6, 1, &[]);
    let records = keyed_records(11, 20_000, 97);
    let bytes = owned(&records);
    let mut core = core(&c, &[("linger.ms", "5"), ("enable.idempotence", "true")]);
    let outcomes = Outcomes::default();
    let dialled = Rc::new(RefCell::new(Vec::new()));
    let conns: [Tcp; 4] = std::array::from_fn(|_| Tcp {
        stream: None,
        dialled: Rc::clone(&dialled),
    });
    let tickets = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4>::new(&mut core, conns, clock, recorder(&outcomes));
        let tickets = produce_all(&mut p, &topic, &bytes).await;
        let stats = *p.stats();
        assert_eq!(stats.connect_failures, 0, "{stats:?}");
        assert_eq!(stats.connections_lost, 0, "{stats:?}");
        assert!(stats.bytes_written > 20_000 * 16, "{stats:?}");
        tickets
    });
    assert!(core.is_closed());
    assert!(core.producer_id_and_epoch().is_some(), "idempotent");
    let placed = outcome_per_ticket(&tickets, &outcomes);
    for (i, (partition, offset)) in placed.iter().enumerate() {
        assert_eq!(*partition, murmur2(&records[i], 6), "record {i}: partition");
        assert!(*offset >= 0, "record {i}: offset");
    }
    assert!(!dialled.borrow().is_empty());
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&records, &judged, |i| murmur2(&records[i], 6));
    // The offsets reported are the offsets read back.
    let mut reported: Vec<(i32, i64)> = placed;
    reported.sort_unstable();
    let mut read: Vec<(i32, i64)> = judged.iter().map(|j| (j.partition, j.offset)).collect();
    read.sort_unstable();
    assert_eq!(reported, read);
}

#[test]
fn send_awaits_each_records_outcome() {
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("embedded-send");
    c.create_topic(&topic, 3, 1, &[]);
    let records = keyed_records(12, 40, 5);
    let bytes = owned(&records);
    // A long linger: `send` must not wait for it.
    let mut core = core(&c, &[("linger.ms", "60000")]);
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    let metas = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4>::new(&mut core, conns, clock, recorder(&outcomes));
        let mut metas = Vec::new();
        for r in &bytes {
            let headers: Vec<Header<'_>> = r
                .headers
                .iter()
                .map(|(k, v)| Header {
                    key: k,
                    value: v.as_deref(),
                })
                .collect();
            let record = ProducerRecord {
                topic: &topic,
                partition: None,
                key: r.key.as_deref(),
                value: r.value.as_deref(),
                headers: &headers,
                timestamp: r.timestamp,
            };
            let started = p.now_ms();
            metas.push(p.send(&record).await.expect("delivered"));
            assert!(p.now_ms() - started < 30_000, "send waited for linger.ms");
        }
        // An invalid record is refused at once, typed.
        let bad = ProducerRecord {
            topic: "not a topic!",
            partition: None,
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp: -1,
        };
        assert!(matches!(p.send(&bad).await, Err(Error::Send(_))));
        p.close(10_000).await;
        metas
    });
    assert_eq!(
        outcomes.borrow().len(),
        records.len(),
        "one outcome per send"
    );
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&records, &judged, |i| murmur2(&records[i], 3));
    for (i, m) in metas.iter().enumerate() {
        assert_eq!(m.partition, murmur2(&records[i], 3), "record {i}");
        let j = judged
            .iter()
            .find(|j| j.partition == m.partition && j.offset == m.offset)
            .unwrap_or_else(|| panic!("record {i}: nothing at {m:?}"));
        assert_eq!(
            j.value, records[i].value,
            "record {i} at its reported offset"
        );
    }
}

#[test]
fn a_broker_killed_mid_run_loses_and_duplicates_nothing() {
    let c = cluster(Ground::Kafka3);
    let _one_at_a_time = c.exclusive();
    let topic = topic_name("embedded-kill");
    c.create_topic(&topic, 6, 3, &["min.insync.replicas=2"]);
    let records = keyed_records(13, 30_000, 101);
    let bytes = owned(&records);
    let mut core = core(
        &c,
        &[
            ("linger.ms", "5"),
            ("enable.idempotence", "true"),
            ("delivery.timeout.ms", "120000"),
            ("request.timeout.ms", "10000"),
        ],
    );
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    let (first, second) = bytes.split_at(bytes.len() / 2);
    let tickets = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4>::new(&mut core, conns, clock, recorder(&outcomes));
        let mut tickets = Vec::new();
        for (i, r) in first.iter().chain(second).enumerate() {
            if i == first.len() {
                // Half the records are accepted (many still in flight): kill a broker.
                let dir = c.clone();
                tokio::task::spawn_blocking(move || dir.kill(2))
                    .await
                    .expect("kill");
            }
            let headers: Vec<Header<'_>> = r
                .headers
                .iter()
                .map(|(k, v)| Header {
                    key: k,
                    value: v.as_deref(),
                })
                .collect();
            let record = ProducerRecord {
                topic: &topic,
                partition: None,
                key: r.key.as_deref(),
                value: r.value.as_deref(),
                headers: &headers,
                timestamp: r.timestamp,
            };
            tickets.push(
                p.enqueue(&record)
                    .await
                    .unwrap_or_else(|e| panic!("record {i}: {e}")),
            );
        }
        p.flush().await;
        let stats = *p.stats();
        p.close(30_000).await;
        (tickets, stats)
    });
    let (tickets, stats) = tickets;
    c.start(2);
    c.wait_in_sync(&topic);
    let placed = outcome_per_ticket(&tickets, &outcomes);
    for (i, (partition, _)) in placed.iter().enumerate() {
        assert_eq!(*partition, murmur2(&records[i], 6), "record {i}: partition");
    }
    let judged = judge_expect(&c, &topic, records.len());
    assert_read_back_exactly(&records, &judged, |i| murmur2(&records[i], 6));
    eprintln!("driver stats across the kill: {stats:?}");
}

#[test]
fn tiny_buffers_force_partial_writes_and_reads_and_lose_nothing() {
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("embedded-tiny");
    c.create_topic(&topic, 6, 1, &[]);
    let records = keyed_records(14, 5_000, 31);
    let bytes = owned(&records);
    let mut core = core(&c, &[("linger.ms", "2")]);
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    let tickets = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        // 64-byte send and receive buffers: every request and response crosses many turns.
        let mut p =
            Producer::<_, _, _, _, _, 4, 64, 64>::new(&mut core, conns, clock, recorder(&outcomes));
        let mut tickets = Vec::new();
        for (i, r) in bytes.iter().enumerate() {
            let headers: Vec<Header<'_>> = r
                .headers
                .iter()
                .map(|(k, v)| Header {
                    key: k,
                    value: v.as_deref(),
                })
                .collect();
            let record = ProducerRecord {
                topic: &topic,
                partition: None,
                key: r.key.as_deref(),
                value: r.value.as_deref(),
                headers: &headers,
                timestamp: r.timestamp,
            };
            tickets.push(
                p.enqueue(&record)
                    .await
                    .unwrap_or_else(|e| panic!("record {i}: {e}")),
            );
        }
        p.flush().await;
        let stats = *p.stats();
        p.close(10_000).await;
        assert!(stats.bytes_written > 64 * 100, "{stats:?}");
        tickets
    });
    outcome_per_ticket(&tickets, &outcomes);
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&records, &judged, |i| murmur2(&records[i], 6));
}

#[test]
fn an_unreachable_cluster_is_a_typed_timeout_after_max_block_ms() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut config = ProducerConfig::new(&format!("127.0.0.1:{port}")).expect("bootstrap");
    config.set("max.block.ms", "1500").expect("max.block.ms");
    let mut core = Box::new(Core::new(config, vec![0; 64 * 1024], LIMITS, 7).expect("config"));
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4>::new(&mut core, conns, clock, recorder(&outcomes));
        let record = ProducerRecord {
            topic: "nowhere",
            partition: None,
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp: -1,
        };
        let started = p.now_ms();
        let err = p.enqueue(&record).await.expect_err("no cluster");
        let waited = p.now_ms() - started;
        assert!(
            matches!(
                err,
                Error::Timeout {
                    max_block_ms: 1500,
                    cause: kafka_edge_core::SendError::MetadataNotReady
                }
            ),
            "{err:?}"
        );
        assert!((1500..10_000).contains(&waited), "waited {waited} ms");
        assert!(p.stats().connect_failures >= 1, "{:?}", p.stats());
        assert_eq!(p.stats().connects, 0);
        p.close(0).await;
    });
    assert!(outcomes.borrow().is_empty(), "nothing was accepted");
}

#[test]
fn cancelled_flushes_lose_no_bytes() {
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("embedded-cancel");
    c.create_topic(&topic, 3, 1, &[]);
    let records = keyed_records(15, 3_000, 17);
    let bytes = owned(&records);
    let mut core = core(&c, &[("linger.ms", "1")]);
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    let (tickets, cancelled) = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4, 256, 256>::new(
            &mut core,
            conns,
            clock,
            recorder(&outcomes),
        );
        let mut tickets = Vec::new();
        let mut cancelled = 0;
        for (i, r) in bytes.iter().enumerate() {
            let headers: Vec<Header<'_>> = r
                .headers
                .iter()
                .map(|(k, v)| Header {
                    key: k,
                    value: v.as_deref(),
                })
                .collect();
            let record = ProducerRecord {
                topic: &topic,
                partition: None,
                key: r.key.as_deref(),
                value: r.value.as_deref(),
                headers: &headers,
                timestamp: r.timestamp,
            };
            tickets.push(
                p.enqueue(&record)
                    .await
                    .unwrap_or_else(|e| panic!("record {i}: {e}")),
            );
            // Drop a flush midway (often while a read or write is pending) every few records.
            if i % 7 == 0
                && tokio::time::timeout(Duration::from_micros(200), p.flush())
                    .await
                    .is_err()
            {
                cancelled += 1;
            }
        }
        p.flush().await;
        p.close(10_000).await;
        (tickets, cancelled)
    });
    assert!(cancelled > 10, "only {cancelled} flushes were cancelled");
    outcome_per_ticket(&tickets, &outcomes);
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&records, &judged, |i| murmur2(&records[i], 3));
}
