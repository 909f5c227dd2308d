//! The bridge in front of the three-node Apache Kafka of the test ground
//! (`KAFKA_EDGE_DIR_3`): the client reaches every broker by node id through the bridge, a
//! leader is SIGKILLed while records are in flight, and every record is read back exactly
//! once, in order, by the judge.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Bridge, Outcome, WsClient, WsLoop, partitions_of, runtime, ws_producer};
use kafka_edge_core::{ProducerRecord, SendError};
use kafka_edge_tests::{
    Cluster, Ground, assert_read_back_exactly, judge_expect, keyed_records, topic_name, unhex,
};

#[test]
fn a_broker_killed_behind_the_bridge_loses_nothing() {
    let cluster = Cluster::wait(Ground::Kafka3);
    let _serial = cluster.exclusive();
    let topic = topic_name("bridge-ok-failover");
    cluster.create_topic(&topic, 6, 3, &[]);
    let bridge = Bridge::start(&cluster, "", "");
    let rt = runtime();
    let mut p = ws_producer(&[
        ("linger.ms", "5"),
        ("acks", "all"),
        ("retry.backoff.ms", "100"),
        ("metadata.max.age.ms", "5000"),
    ]);
    let mut lp = WsLoop::new(rt.handle().clone(), WsClient::of(&bridge));
    let n = 3_000;
    let records: Vec<_> = keyed_records(21, n, 100)
        .into_iter()
        .map(|mut r| {
            r.headers.clear();
            r
        })
        .collect();
    let delivered = |lp: &WsLoop| {
        lp.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Delivered { .. }))
            .map(Outcome::count)
            .sum::<usize>()
    };
    let mut tickets = Vec::with_capacity(n);
    let mut killed_at = None;
    let mut opened_at_kill = 0;
    let started = Instant::now();
    for (i, r) in records.iter().enumerate() {
        // About 4 s of sending, 1 ms per record.
        while started.elapsed() < Duration::from_millis(i as u64 * 4 / 3) {
            lp.step(&mut p);
        }
        // Kill broker 2 after 1,000 acknowledged records.
        if killed_at.is_none() && delivered(&lp) >= 1_000 {
            cluster.kill(2);
            killed_at = Some(delivered(&lp));
            opened_at_kill = lp.opened;
        }
        let key = r.key.as_deref().map(unhex);
        let value = r.value.as_deref().map(unhex);
        let rec = ProducerRecord {
            topic: &topic,
            partition: None,
            key: key.as_deref(),
            value: value.as_deref(),
            headers: &[],
            timestamp: r.timestamp,
        };
        loop {
            match p.send(lp.now(), &rec) {
                Ok(t) => break tickets.push(t),
                Err(SendError::MetadataNotReady | SendError::BufferFull) => lp.step(&mut p),
                Err(e) => panic!("send: {e}"),
            }
        }
    }
    p.flush(lp.now());
    let until = Instant::now() + Duration::from_secs(120);
    while !(p.is_flushed() && lp.outcomes.iter().map(Outcome::count).sum::<usize>() == n) {
        assert!(
            Instant::now() < until,
            "outcomes missing 120 s after the kill"
        );
        lp.step(&mut p);
    }
    cluster.start(2);
    cluster.wait_in_sync(&topic);
    let killed_at = killed_at.expect("1,000 records were never acknowledged before the kill");
    assert!(killed_at < n, "the kill came after the last record");
    let partitions = partitions_of(&tickets, &lp.outcomes);
    assert_read_back_exactly(&records, &judge_expect(&cluster, &topic, n), |i| {
        partitions[i]
    });
    // The fault was exercised through the bridge: every broker was reached by node id, and
    // the client reconnected after the kill.
    let nodes: BTreeSet<&str> = lp
        .urls
        .iter()
        .filter_map(|u| u.rsplit_once("/broker/").map(|(_, id)| id))
        .collect();
    assert_eq!(nodes.len(), 3, "brokers reached by node id: {nodes:?}");
    assert!(
        lp.opened > opened_at_kill,
        "no WebSocket opened after the kill ({opened_at_kill})"
    );
}
