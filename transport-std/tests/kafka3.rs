//! kafka-edge-std against three Apache Kafka nodes (RF 3, `min.insync.replicas=2`).

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::{builder, cluster, init_log, owned};
use kafka_edge_core::partition_for_key;
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
        after.disconnects > before.disconnects,
        "no connection was lost: {after:?}"
    );
    assert!(
        after.metadata_updates > before.metadata_updates + 1,
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
