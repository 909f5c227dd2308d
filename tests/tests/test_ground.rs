//! The proof that the test ground works: real Apache Kafka (three KRaft nodes), Java's own
//! producer, the librdkafka judge, the Java oracle's batch bytes, and tansu. These stay as the
//! smoke suite every later test relies on.

use kafka_edge_tests::oracle::{self, PeerProducer};
use kafka_edge_tests::{
    Cluster, Ground, assert_read_back_exactly, judge, judge_expect, keyed_records, topic_name,
    unhex,
};
use serde_json::json;

const PARTITIONS: u32 = 6;

/// Java's partition for every record (murmur2 of the key over all partitions).
fn murmur2_partitions(records: &[kafka_edge_tests::TestRecord], partitions: u32) -> Vec<i32> {
    let keys: Vec<Vec<u8>> = records
        .iter()
        .map(|r| r.key.as_deref().map(unhex).unwrap_or_default())
        .collect();
    oracle::murmur2(&keys, partitions)
        .into_iter()
        .map(|(_, p)| p as i32)
        .collect()
}

#[test]
fn java_producer_keyed_records_read_back_exactly_in_murmur2_partitions() {
    let cluster = Cluster::get(Ground::Kafka3);
    let _guard = cluster.exclusive();
    let topic = topic_name("ground-keyed");
    cluster.create_topic(&topic, PARTITIONS, 3, &["min.insync.replicas=2"]);

    let records = keyed_records(1, 10_000, 500);
    let outcomes = oracle::produce(
        &cluster.bootstrap,
        &topic,
        &["acks=all", "linger.ms=5"],
        &records,
    );
    let expected = murmur2_partitions(&records, PARTITIONS);
    for o in &outcomes {
        assert_eq!(
            o.partition,
            Some(expected[o.i]),
            "Java put record {} outside its murmur2 partition",
            o.i
        );
    }

    let judged = judge(&cluster, &topic);
    let per_partition = assert_read_back_exactly(&records, &judged, |i| expected[i]);
    assert!(
        per_partition.len() > 1,
        "500 keys over {PARTITIONS} partitions used only {per_partition:?}"
    );
}

#[test]
fn broker_killed_and_restarted_mid_run_loses_nothing_with_acks_all() {
    let cluster = Cluster::get(Ground::Kafka3);
    let _guard = cluster.exclusive();
    assert_eq!(cluster.brokers, 3);
    let topic = topic_name("ground-failover");
    cluster.create_topic(&topic, PARTITIONS, 3, &["min.insync.replicas=2"]);

    let records = keyed_records(2, 30_000, 1_000);
    let mut producer = PeerProducer::start(
        &cluster.bootstrap,
        &topic,
        &[
            "acks=all",
            "enable.idempotence=true",
            "linger.ms=5",
            "delivery.timeout.ms=120000",
        ],
    );
    let (a, rest) = records.split_at(10_000);
    let (b, c) = rest.split_at(10_000);
    producer.send(a);
    std::thread::sleep(std::time::Duration::from_millis(500));
    cluster.kill(2);
    producer.send(b);
    std::thread::sleep(std::time::Duration::from_millis(500));
    cluster.start(2);
    producer.send(c);
    let outcomes = producer.finish();
    assert_eq!(outcomes.len(), records.len());

    let expected = murmur2_partitions(&records, PARTITIONS);
    cluster.wait_in_sync(&topic);
    let judged = judge_expect(&cluster, &topic, records.len());
    assert_read_back_exactly(&records, &judged, |i| expected[i]);
    // Each outcome's offset is where the judge found that record.
    for o in &outcomes {
        let (p, off) = (o.partition.unwrap_or(-1), o.offset.unwrap_or(-1));
        let found = judged.iter().find(|r| r.partition == p && r.offset == off);
        assert_eq!(
            found.map(|r| &r.value),
            Some(&records[o.i].value),
            "record {} at {p}/{off}",
            o.i
        );
    }
}

#[test]
fn oracle_batch_bytes_round_trip_through_java_verify() {
    let descriptions = vec![
        json!({"records": [{"timestamp": 1_700_000_000_000_i64, "key": "6b", "value": "76", "headers": [["h", "01"]]}]}),
        json!({"base_offset": 0, "producer_id": 4242, "producer_epoch": 3, "base_sequence": 17,
               "records": [
                   {"timestamp": 5, "key": null, "value": null, "headers": []},
                   {"timestamp": 3, "key": "", "value": "", "headers": [["empty", null]]},
                   {"timestamp": 9, "key": "00ff", "value": "aa".repeat(3000), "headers": []}]}),
        json!({"transactional": true, "producer_id": 7, "producer_epoch": 0, "base_sequence": 0,
               "records": [{"timestamp": -1, "key": "01", "value": "02", "headers": []}]}),
    ];
    let batches = oracle::batch(&descriptions);
    let verified = oracle::verify(&batches);
    for (d, v) in descriptions.iter().zip(&verified) {
        assert_eq!(v["valid"], true, "{v}");
        let b = &v["batches"][0];
        let recs = d["records"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(v["records"], recs, "{v}");
        assert_eq!(
            b["producer_id"],
            d.get("producer_id").cloned().unwrap_or(json!(-1))
        );
        assert_eq!(
            b["base_sequence"],
            d.get("base_sequence").cloned().unwrap_or(json!(-1))
        );
        assert_eq!(
            b["transactional"],
            d.get("transactional").cloned().unwrap_or(json!(false))
        );
        for (i, r) in d["records"].as_array().into_iter().flatten().enumerate() {
            let got = &b["records"][i];
            assert_eq!(got["key"], r["key"]);
            assert_eq!(got["value"], r["value"]);
            assert_eq!(got["timestamp"], r["timestamp"]);
            assert_eq!(got["headers"], r["headers"]);
        }
    }
    // A one-bit change anywhere after the CRC field is caught by Java's ensureValid().
    let mut corrupt = batches[1].clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let v = oracle::verify(&[corrupt]);
    assert_eq!(v[0]["valid"], false, "{}", v[0]);
}

#[test]
fn tansu_keyed_records_read_back_exactly() {
    let cluster = Cluster::get(Ground::Tansu);
    let topic = topic_name("ground-tansu");
    cluster.create_topic(&topic, PARTITIONS, 1, &[]);
    let mut records = keyed_records(3, 2_000, 100);
    // kafka-python cannot send a null header value.
    for r in &mut records {
        for h in &mut r.headers {
            h.1.get_or_insert_with(String::new);
        }
    }
    // Java's client 4.4 cannot talk to tansu (tansu drops the connection on the ApiVersions v5
    // request kafka-clients sends to a known node), so kafka-python writes here.
    let mut producer = PeerProducer::start_kafka_python(&cluster.bootstrap, &topic, &["acks=all"]);
    producer.send(&records);
    let outcomes = producer.finish();
    assert_eq!(outcomes.len(), records.len());
    let expected = murmur2_partitions(&records, PARTITIONS);
    let judged = judge(&cluster, &topic);
    assert_read_back_exactly(&records, &judged, |i| expected[i]);
    // tansu does not verify CRCs itself; it logs a mismatch, which must never appear.
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
