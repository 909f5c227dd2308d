//! kafka-edge-std against three Apache Kafka nodes (RF 3, `min.insync.replicas=2`).

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::{builder, cluster, init_log, owned};
use kafka_edge_std::partition_for_key;
use kafka_edge_tests::{
    Ground, assert_read_back_exactly, judge, judge_expect, keyed_records, topic_name, unhex,
};

#[test]
fn idempotent_acks_all_survives_a_broker_kill() {
    init_log();
    let c = cluster(Ground::Kafka3);
    let _exclusive = c.exclusive();
    let topic = topic_name("std3-kill");
    c.create_topic(&topic, 3, 3, &[]);
    let p = builder(
        &c,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            ("request.timeout.ms", "5000"),
            ("delivery.timeout.ms", "120000"),
        ],
    )
    .build()
    .unwrap();
    // 200,000 records; broker 2 is killed after 50,000 and restarted after 120,000.
    let records = keyed_records(3, 200_000, 1009);
    let owned = owned(&records);
    let mut futures = Vec::with_capacity(records.len());
    let mut outcomes = Vec::with_capacity(records.len());
    // Waits for the outcome of every record sent so far: the faults come after N
    // acknowledged records, not after a sleep that may find the producer idle.
    let mut settle = |futures: &mut Vec<kafka_edge_std::DeliveryFuture>| {
        for f in futures.drain(..) {
            let r = f
                .wait_timeout(Duration::from_secs(150))
                .expect("an outcome");
            outcomes.push(r);
        }
    };
    let before = p.metrics();
    for (i, r) in owned.iter().enumerate() {
        if i == 50_000 {
            settle(&mut futures);
            c.kill(2);
        }
        if i == 120_000 {
            settle(&mut futures);
            c.start(2);
        }
        futures.push(p.send(&r.record(&topic)).unwrap());
    }
    settle(&mut futures);
    for (i, r) in outcomes.iter().enumerate() {
        assert!(r.is_ok(), "record {i}: {r:?}");
    }
    assert_eq!(outcomes.len(), records.len());
    // The kill was felt: connections to broker 2 were lost and requests went elsewhere.
    let after = p.metrics();
    assert!(
        after.counters.disconnects > before.counters.disconnects,
        "no connection was lost: {after:?}"
    );
    assert!(
        after.counters.metadata_updates > before.counters.metadata_updates + 1,
        "no metadata refresh after the kill: {after:?}"
    );
    p.close(Duration::from_secs(30));
    c.wait_in_sync(&topic);
    let partition = |i: usize| {
        let key = unhex(records[i].key.as_deref().unwrap());
        partition_for_key(&key, NonZeroU32::new(3).unwrap())
    };
    assert_read_back_exactly(
        &records,
        &judge_expect(&c, &topic, records.len()),
        partition,
    );
}

#[test]
fn acks_all_on_three_nodes() {
    init_log();
    let c = cluster(Ground::Kafka3);
    let _exclusive = c.exclusive();
    let topic = topic_name("std3-acks");
    c.create_topic(&topic, 6, 3, &[]);
    let p = builder(&c, &[("acks", "all")]).build().unwrap();
    let records = keyed_records(9, 3000, 64);
    let owned = owned(&records);
    let futures: Vec<_> = owned
        .iter()
        .map(|r| p.send(&r.record(&topic)).unwrap())
        .collect();
    let metas: Vec<_> = futures.into_iter().map(|f| f.wait().unwrap()).collect();
    p.close(Duration::from_secs(30));
    assert_read_back_exactly(&records, &judge(&c, &topic), |i| metas[i].partition);
}

/// A rolling restart's controlled shutdown (SIGTERM) of a leader: the broker answers the
/// requests it gets meanwhile with NOT_LEADER_OR_FOLLOWER and the new leader (KIP-951), and
/// the producer follows those hints instead of waiting for metadata; nothing is lost.
#[test]
fn controlled_shutdown_of_a_leader_is_followed_by_its_leader_hints() {
    init_log();
    let c = cluster(Ground::Kafka3);
    let _exclusive = c.exclusive();
    let topic = topic_name("std3-hints");
    c.create_topic(&topic, 6, 3, &[]);
    let p = builder(
        &c,
        &[
            ("acks", "all"),
            ("linger.ms", "2"),
            ("delivery.timeout.ms", "120000"),
        ],
    )
    .build()
    .unwrap();
    let records = keyed_records(21, 60_000, 100);
    let owned = owned(&records);
    let mut futures = Vec::with_capacity(records.len());
    let mut outcomes = Vec::with_capacity(records.len());
    let before = p.metrics();
    let mut stopper = None;
    for (i, r) in owned.iter().enumerate() {
        if i == 10_000 {
            // After 10,000 acknowledged records, SIGTERM broker 2 while the stream goes on.
            for f in futures.drain(..) {
                let f: kafka_edge_std::DeliveryFuture = f;
                outcomes.push(
                    f.wait_timeout(Duration::from_secs(150))
                        .expect("an outcome"),
                );
            }
            let c2 = c.clone();
            stopper = Some(std::thread::spawn(move || c2.stop(2)));
        }
        if i % 1000 == 999 {
            // A steady stream, not one burst: the shutdown finds requests in flight.
            std::thread::sleep(Duration::from_millis(20));
        }
        futures.push(p.send(&r.record(&topic)).unwrap());
    }
    if let Some(s) = stopper {
        s.join().unwrap();
    }
    for f in futures {
        outcomes.push(
            f.wait_timeout(Duration::from_secs(150))
                .expect("an outcome"),
        );
    }
    assert_eq!(outcomes.len(), records.len());
    for (i, r) in outcomes.iter().enumerate() {
        assert!(r.is_ok(), "record {i}: {r:?}");
    }
    let after = p.metrics();
    p.close(Duration::from_secs(30));
    c.start(2);
    eprintln!(
        "leader hints applied: {}, metadata updates: {}, batches retried: {}",
        after.counters.leader_hints_applied - before.counters.leader_hints_applied,
        after.counters.metadata_updates - before.counters.metadata_updates,
        after.counters.batches_retried - before.counters.batches_retried
    );
    assert!(
        after.counters.leader_hints_applied > before.counters.leader_hints_applied,
        "no leader hint was followed: {after:?}"
    );
    c.wait_in_sync(&topic);
    let partition = |i: usize| {
        let key = unhex(records[i].key.as_deref().unwrap());
        partition_for_key(&key, NonZeroU32::new(6).unwrap())
    };
    assert_read_back_exactly(
        &records,
        &judge_expect(&c, &topic, records.len()),
        partition,
    );
}
