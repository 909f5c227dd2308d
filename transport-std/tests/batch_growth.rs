//! Batches that grow past `batch.size` while their partition waits (`batch.max.size`),
//! against one Apache Kafka node: every record read back by the librdkafka judge.

mod common;

use std::time::Duration;

use common::{builder, cluster, init_log, send_all};
use kafka_edge_tests::{Ground, TestRecord, assert_read_back_exactly, hex, judge, topic_name};

const T: Duration = Duration::from_secs(60);

/// `n` keyless records of 100 bytes, each value naming its index.
fn records(n: usize) -> Vec<TestRecord> {
    (0..n)
        .map(|i| TestRecord {
            key: None,
            value: Some(hex(format!("{i:0>100}").as_bytes())),
            headers: vec![],
            timestamp: 1_700_000_000_000 + i as i64,
            partition: None,
        })
        .collect()
}

/// With one batch in flight, the partition's next batch waits for its answer: it grows
/// past `batch.size` instead of closing, and Kafka takes it whole.
#[test]
fn a_waiting_batch_grows_past_batch_size_and_every_record_reads_back() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-grow");
    c.create_topic(&topic, 1, 1, &[]);
    let p = builder(&c, &[("max.in.flight.requests.per.connection", "1")])
        .build()
        .unwrap();
    let records = records(30_000);
    let metas = send_all(&p, &topic, &records);
    for (i, m) in metas.iter().enumerate() {
        assert_eq!(m.offset, i as i64, "record {i}: offsets in send order");
    }
    let m = p.metrics();
    p.close(T);
    assert!(
        m.batch_size_max > 16_384.0,
        "a batch grew past batch.size: largest {}",
        m.batch_size_max
    );
    assert!(m.batch_size_max <= 262_144.0, "{}", m.batch_size_max);
    assert_eq!(m.counters.batches_split, 0);
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&records, &judged, |_| 0);
}

/// With `batch.max.size=0` batches stay within `batch.size`, as Java's.
#[test]
fn batch_max_size_zero_keeps_batches_within_batch_size() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-nogrow");
    c.create_topic(&topic, 1, 1, &[]);
    let p = builder(
        &c,
        &[
            ("max.in.flight.requests.per.connection", "1"),
            ("batch.max.size", "0"),
        ],
    )
    .build()
    .unwrap();
    let records = records(10_000);
    send_all(&p, &topic, &records);
    let m = p.metrics();
    p.close(T);
    assert!(m.batch_size_max <= 16_384.0, "{}", m.batch_size_max);
    assert_read_back_exactly(&records, &judge(&c, &topic), |_| 0);
}

/// A topic whose `max.message.bytes` is below `batch.max.size` refuses a grown batch: it is
/// split and resent, the partition's batches stop growing, and nothing is lost or reordered.
#[test]
fn a_grown_batch_over_the_topics_limit_is_split_and_growth_stops() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-grow-limit");
    c.create_topic(&topic, 1, 1, &["max.message.bytes=40000"]);
    let p = builder(&c, &[("max.in.flight.requests.per.connection", "1")])
        .build()
        .unwrap();
    let first = records(30_000);
    let metas = send_all(&p, &topic, &first);
    for (i, m) in metas.iter().enumerate() {
        assert_eq!(m.offset, i as i64, "record {i}: offsets in send order");
    }
    let split = p.metrics().counters.batches_split;
    assert!(split > 0, "a grown batch was refused and split");
    // The partition's batches no longer grow: more records split nothing more.
    let more = records(30_000);
    send_all(&p, &topic, &more);
    assert_eq!(p.metrics().counters.batches_split, split);
    p.close(T);
    let all: Vec<TestRecord> = first.into_iter().chain(more).collect();
    assert_read_back_exactly(&all, &judge(&c, &topic), |_| 0);
}
