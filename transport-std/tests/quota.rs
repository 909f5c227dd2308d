//! Broker quotas (KIP-219) on Apache Kafka: with a `producer_byte_rate` quota on its
//! client id, a producer is held back by the broker's `throttle_time_ms` and holds back
//! itself, as Java's does: every record is delivered (read back by the judge), none fails
//! and none is retried (no error storm), the throttle time shows in the metrics, and the
//! run takes about as long as the quota allows and as long as Java's producer under the
//! same quota.

mod common;

use std::time::{Duration, Instant};

use common::{builder, cluster, init_log};
use kafka_edge_std::ProducerRecord;
use kafka_edge_tests::{Ground, judge_expect, oracle, topic_name};

const RECORDS: usize = 8_000;
const VALUE: usize = 200;
/// 100 kB/s for ~1.7 MB of batches. The broker measures a rate over at least ten
/// one-second windows (`quota.window.num` 11), so the first ~1 MB passes at once and the
/// rest is held to the quota: about 6 s of throttling.
const RATE: u64 = 100_000;

#[test]
fn a_producer_byte_rate_quota_slows_the_producer_without_failures() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-quota");
    c.create_topic(&topic, 3, 1, &[]);
    let client_id = format!("quota-{}", std::process::id());
    oracle::set_producer_byte_rate(&c.bootstrap, &client_id, Some(RATE));

    // Java's batches: batches that grow while their partition waits carry this whole run in
    // the first round trips, before the broker's first throttled answer could hold them back
    // (the quota then holds the next requests), and the time floor below would not apply.
    let p = builder(
        &c,
        &[
            ("client.id", &client_id),
            ("linger.ms", "5"),
            ("batch.max.size", "0"),
        ],
    )
    .build()
    .expect("producer");
    let value = vec![b'q'; VALUE];
    let t0 = Instant::now();
    let futures: Vec<_> = (0..RECORDS)
        .map(|i| {
            p.send(
                &ProducerRecord::new(&topic)
                    .key(i.to_string().as_bytes())
                    .value(&value),
            )
            .expect("accepted")
        })
        .collect();
    for f in futures {
        f.wait_timeout(Duration::from_secs(120))
            .expect("an outcome")
            .expect("delivered under the quota");
    }
    let ours = t0.elapsed();
    let m = p.metrics();
    p.close(Duration::from_secs(30));

    eprintln!(
        "kafka-edge took {ours:?}; throttle avg {} max {}",
        m.produce_throttle_time_avg, m.produce_throttle_time_max
    );
    assert_eq!(m.record_error_total, 0);
    assert_eq!(
        m.record_retry_total, 0,
        "no request timed out or was retried"
    );
    assert!(
        m.produce_throttle_time_max > 0.0,
        "the broker throttled: {:?}",
        m.produce_throttle_time_max
    );
    // Over the broker's ten-window span, the bytes beyond RATE x 10 s wait for the quota.
    let held = (RECORDS * VALUE) as f64 / RATE as f64 - 10.0;
    let floor = Duration::from_secs_f64(held * 0.5);
    assert!(ours >= floor, "{ours:?} is faster than the quota allows");
    judge_expect(&c, &topic, RECORDS);

    // Java's producer under the same quota (its own client id, the same rate).
    let java_id = format!("{client_id}-java");
    oracle::set_producer_byte_rate(&c.bootstrap, &java_id, Some(RATE));
    let java_topic = topic_name("std-quota-java");
    c.create_topic(&java_topic, 3, 1, &[]);
    let t1 = Instant::now();
    let out = oracle::perf(&[
        "--topic",
        &java_topic,
        "--num-records",
        &RECORDS.to_string(),
        "--record-size",
        &VALUE.to_string(),
        "--throughput",
        "-1",
        "--producer-props",
        &format!("bootstrap.servers={}", c.bootstrap),
        &format!("client.id={java_id}"),
        "linger.ms=5",
    ]);
    let java = t1.elapsed();
    assert!(out.contains(&format!("{RECORDS} records sent")), "{out}");
    judge_expect(&c, &java_topic, RECORDS);
    oracle::set_producer_byte_rate(&c.bootstrap, &client_id, None);
    oracle::set_producer_byte_rate(&c.bootstrap, &java_id, None);
    eprintln!(
        "under a {RATE} B/s quota, {RECORDS} x {VALUE} B: kafka-edge {ours:?}, Java {java:?}"
    );
    // Both are held to the same rate: neither may take twice as long as the other (Java's
    // time includes its JVM's start).
    assert!(ours < java * 2, "kafka-edge {ours:?}, Java {java:?}");
}
