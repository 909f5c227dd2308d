//! The core producer against the real brokers of the test ground, driven by a minimal
//! blocking socket loop: ApiVersions, Metadata, InitProducerId and Produce round trips, every
//! record read back by the librdkafka judge and compared exactly.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use kafka_edge_core::record::Header;
use kafka_edge_core::{
    HeapStorage, Limits, Producer, ProducerConfig, ProducerRecord, SendError, Ticket,
    partition_for_key,
};
use kafka_edge_tests::drive::{BlockingLoop, Outcome};
use kafka_edge_tests::{
    Cluster, Ground, TestRecord, assert_read_back_exactly, hex, judge, keyed_records, topic_name,
    unhex,
};

type SmokeProducer = Producer<Vec<u8>, HeapStorage>;

/// A producer with `config`: 256 batches of 16 KiB of `buffer.memory`, tables unbounded.
fn smoke_producer(config: ProducerConfig, seed: u64) -> SmokeProducer {
    Producer::new(config, vec![0; 256 * 16384], Limits::UNBOUNDED, seed).expect("producer")
}

struct Run {
    records: Vec<TestRecord>,
    tickets: Vec<Ticket>,
    outcomes: Vec<Outcome>,
}

fn produce(
    cluster: &Cluster,
    topic: &str,
    props: &[(&str, &str)],
    records: Vec<TestRecord>,
) -> Run {
    let mut config = ProducerConfig::new(&cluster.bootstrap).expect("config");
    for (k, v) in props {
        config.set(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
    }
    let mut p = smoke_producer(config, 7);
    let mut lp = BlockingLoop::new();
    let mut tickets = Vec::with_capacity(records.len());
    for r in &records {
        let key = r.key.as_deref().map(unhex);
        let value = r.value.as_deref().map(unhex);
        let hvals: Vec<(String, Option<Vec<u8>>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_deref().map(unhex)))
            .collect();
        let headers: Vec<Header<'_>> = hvals
            .iter()
            .map(|(k, v)| Header {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let rec = ProducerRecord {
            topic,
            partition: r.partition,
            key: key.as_deref(),
            value: value.as_deref(),
            headers: &headers,
            timestamp: r.timestamp,
        };
        let started = std::time::Instant::now();
        loop {
            match p.send(lp.now(), &rec) {
                Ok(t) => {
                    tickets.push(t);
                    break;
                }
                Err(SendError::BufferFull | SendError::MetadataNotReady) => {
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "send blocked for 60 s"
                    );
                    lp.step(&mut p);
                }
                Err(e) => panic!("send: {e}"),
            }
        }
    }
    p.flush(lp.now());
    let n = records.len();
    let done = lp.run_until(&mut p, Duration::from_secs(120), |p, o| {
        p.is_flushed() && o.iter().map(outcome_count).sum::<usize>() == n
    });
    assert!(done, "not every record got an outcome within 120 s");
    Run {
        records,
        tickets,
        outcomes: lp.outcomes,
    }
}

fn outcome_count(o: &Outcome) -> usize {
    match o {
        Outcome::Delivered { tickets, .. } | Outcome::Failed { tickets, .. } => {
            tickets.count() as usize
        }
    }
}

/// Partition and offset of every record from the outcomes; panics on a failure.
fn placements(run: &Run) -> Vec<(i32, i64)> {
    let mut by_ticket = HashMap::new();
    for o in &run.outcomes {
        match o {
            Outcome::Delivered {
                partition,
                tickets,
                base_offset,
            } => {
                for (k, t) in tickets.iter().enumerate() {
                    let off = if *base_offset >= 0 {
                        base_offset + k as i64
                    } else {
                        -1
                    };
                    assert!(
                        by_ticket.insert(t, (*partition, off)).is_none(),
                        "ticket {t:?} got two outcomes"
                    );
                }
            }
            Outcome::Failed { tickets, error } => {
                panic!("{} records failed: {error}", tickets.count())
            }
        }
    }
    run.tickets
        .iter()
        .map(|t| {
            *by_ticket
                .get(t)
                .unwrap_or_else(|| panic!("ticket {t:?} has no outcome"))
        })
        .collect()
}

fn check_keyed_run(
    cluster: &Cluster,
    topic: &str,
    partitions: u32,
    run: &Run,
    offsets_known: bool,
) {
    let places = placements(run);
    let n = NonZeroU32::new(partitions).expect("partitions");
    for (i, r) in run.records.iter().enumerate() {
        let key = unhex(r.key.as_deref().expect("keyed"));
        assert_eq!(
            places[i].0,
            partition_for_key(&key, n),
            "record {i}: not in its murmur2 partition"
        );
    }
    let judged = judge(cluster, topic);
    assert_read_back_exactly(&run.records, &judged, |i| places[i].0);
    if offsets_known {
        for (i, (p, off)) in places.iter().enumerate() {
            let found = judged
                .iter()
                .find(|j| j.partition == *p && j.offset == *off);
            assert_eq!(
                found.map(|j| &j.value),
                Some(&run.records[i].value),
                "record {i}: offset {p}/{off}"
            );
        }
    }
}

#[test]
fn idempotent_acks_all_round_trip_on_apache_kafka() {
    let cluster = Cluster::get(Ground::Kafka1);
    let topic = topic_name("core-idem");
    cluster.create_topic(&topic, 3, 1, &[]);
    let run = produce(
        &cluster,
        &topic,
        &[("linger.ms", "5")],
        keyed_records(11, 5_000, 300),
    );
    check_keyed_run(&cluster, &topic, 3, &run, true);
}

#[test]
fn acks_1_without_idempotence_round_trip_on_apache_kafka() {
    let cluster = Cluster::get(Ground::Kafka1);
    let topic = topic_name("core-acks1");
    cluster.create_topic(&topic, 4, 1, &[]);
    let run = produce(
        &cluster,
        &topic,
        &[("acks", "1"), ("enable.idempotence", "false")],
        keyed_records(12, 3_000, 100),
    );
    check_keyed_run(&cluster, &topic, 4, &run, true);
}

#[test]
fn acks_0_round_trip_on_apache_kafka() {
    let cluster = Cluster::get(Ground::Kafka1);
    let topic = topic_name("core-acks0");
    cluster.create_topic(&topic, 2, 1, &[]);
    let run = produce(
        &cluster,
        &topic,
        &[("acks", "0"), ("enable.idempotence", "false")],
        keyed_records(13, 2_000, 50),
    );
    check_keyed_run(&cluster, &topic, 2, &run, false);
}

#[test]
fn three_node_cluster_replicated_topic_round_trip() {
    let cluster = Cluster::get(Ground::Kafka3);
    let _guard = cluster.exclusive();
    let topic = topic_name("core-rf3");
    cluster.create_topic(&topic, 6, 3, &["min.insync.replicas=2"]);
    let run = produce(&cluster, &topic, &[], keyed_records(14, 6_000, 400));
    check_keyed_run(&cluster, &topic, 6, &run, true);
}

#[test]
fn tansu_round_trip() {
    let cluster = Cluster::get(Ground::Tansu);
    let topic = topic_name("core-tansu");
    cluster.create_topic(&topic, 3, 1, &[]);
    let run = produce(&cluster, &topic, &[], keyed_records(15, 2_000, 100));
    check_keyed_run(&cluster, &topic, 3, &run, true);
    let path = cluster.log(1);
    let log = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("tansu's log {}: {e}", path.display()));
    // The log read is tansu's own (it logged its start), so a missing mismatch means something.
    assert!(
        log.contains("ready in"),
        "not tansu's log: {}",
        path.display()
    );
    assert!(!log.contains("crc="), "tansu logged a CRC mismatch");
}

#[test]
fn unknown_topic_is_never_accepted_and_invalid_topic_fails_at_once() {
    let cluster = Cluster::get(Ground::Kafka1);
    let config = ProducerConfig::new(&cluster.bootstrap).expect("config");
    let mut p = smoke_producer(config, 1);
    let mut lp = BlockingLoop::new();
    let rec = |topic| ProducerRecord {
        topic,
        partition: None,
        key: None,
        value: Some(b"v"),
        headers: &[],
        timestamp: 1,
    };
    let missing = topic_name("core-missing");
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        match p.send(lp.now(), &rec(&missing)) {
            Err(SendError::MetadataNotReady) => lp.step(&mut p),
            other => panic!("send to a topic that does not exist: {other:?}"),
        }
    }
    match p.send(lp.now(), &rec("bad topic name!")) {
        Err(SendError::InvalidTopic) => {}
        other => panic!("invalid topic name: {other:?}"),
    }
}

/// A topic with `max.message.bytes=2000`: the producer's batches of ~300-byte records are
/// refused with MESSAGE_TOO_LARGE, split (again and again) and delivered; the one record of
/// 5000 bytes is refused on its own and fails with MESSAGE_TOO_LARGE. Every other record is
/// read back by the judge, in send order, with its headers, at the offset its outcome gave.
#[test]
fn message_too_large_splits_and_reports_per_record() {
    let cluster = Cluster::get(Ground::Kafka1);
    let topic = topic_name("core-split");
    cluster.create_topic(&topic, 1, 1, &["max.message.bytes=2000"]);
    const BIG: usize = 17;
    let records: Vec<TestRecord> = (0..40)
        .map(|i| {
            let len = if i == BIG { 5_000 } else { 300 };
            let mut value = format!("split-{i:03}-").into_bytes();
            value.resize(len, b'a' + (i % 26) as u8);
            let headers = if i % 3 == 0 {
                vec![("h".to_string(), Some(hex(format!("hv{i}").as_bytes())))]
            } else {
                Vec::new()
            };
            TestRecord {
                key: Some(hex(format!("k{i}").as_bytes())),
                value: Some(hex(&value)),
                headers,
                timestamp: 1_700_000_000_000 + i as i64,
                partition: Some(0),
            }
        })
        .collect();
    let run = produce(
        &cluster,
        &topic,
        &[("linger.ms", "50"), ("batch.size", "16384")],
        records,
    );

    // Exactly one outcome per ticket: the offset of a delivered record, or the error.
    let mut outcome: HashMap<Ticket, Result<i64, String>> = HashMap::new();
    for o in &run.outcomes {
        match o {
            Outcome::Delivered {
                partition,
                tickets,
                base_offset,
            } => {
                assert_eq!(*partition, 0);
                assert!(*base_offset >= 0, "acks=all gives offsets");
                for (k, t) in tickets.iter().enumerate() {
                    let prev = outcome.insert(t, Ok(base_offset + k as i64));
                    assert!(prev.is_none(), "ticket {t:?} got two outcomes");
                }
            }
            Outcome::Failed { tickets, error } => {
                for t in tickets.iter() {
                    let prev = outcome.insert(t, Err(error.clone()));
                    assert!(prev.is_none(), "ticket {t:?} got two outcomes");
                }
            }
        }
    }
    assert_eq!(
        outcome.len(),
        run.tickets.len(),
        "every ticket has an outcome"
    );
    // Several outcomes per original batch: the batches were split.
    assert!(run.outcomes.len() > 3, "{} outcomes", run.outcomes.len());
    let too_large = kafka_edge_core::ProduceError::Broker {
        code: kafka_edge_core::protocol::ErrorCode::MESSAGE_TOO_LARGE,
    }
    .to_string();
    let mut offsets = Vec::new();
    for (i, t) in run.tickets.iter().enumerate() {
        match &outcome[t] {
            Err(e) if i == BIG => assert_eq!(e, &too_large),
            Ok(off) if i != BIG => offsets.push((i, *off)),
            other => panic!("record {i}: {other:?}"),
        }
    }

    let delivered: Vec<TestRecord> = run
        .records
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != BIG)
        .map(|(_, r)| r.clone())
        .collect();
    let judged = judge(&cluster, &topic);
    assert_read_back_exactly(&delivered, &judged, |_| 0);
    for (i, off) in offsets {
        let found = judged.iter().find(|j| j.offset == off);
        assert_eq!(
            found.map(|j| &j.value),
            Some(&run.records[i].value),
            "record {i}: offset {off}"
        );
    }
}
