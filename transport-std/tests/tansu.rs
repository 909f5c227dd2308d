//! kafka-edge-std against tansu, the second, independent broker implementation: keyed
//! records produced, read back by the librdkafka judge and compared exactly.

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::{builder, cluster, init_log, owned};
use kafka_edge_std::partition_for_key;
use kafka_edge_tests::{Ground, assert_read_back_exactly, judge, keyed_records, topic_name, unhex};

#[test]
fn keyed_records_round_trip_on_tansu() {
    init_log();
    let c = cluster(Ground::Tansu);
    for (name, props) in [
        ("std-tansu-idem", vec![("acks", "all")]),
        (
            "std-tansu-acks1",
            vec![("acks", "1"), ("enable.idempotence", "false")],
        ),
    ] {
        let topic = topic_name(name);
        c.create_topic(&topic, 4, 1, &[]);
        let p = builder(&c, &props).build().unwrap();
        let records = keyed_records(31, 3000, 200);
        let owned = owned(&records);
        let futures: Vec<_> = owned
            .iter()
            .map(|r| p.send(&r.record(&topic)).unwrap())
            .collect();
        for (i, f) in futures.into_iter().enumerate() {
            let r = f.wait_timeout(Duration::from_secs(60)).expect("an outcome");
            assert!(r.is_ok(), "record {i}: {r:?}");
        }
        p.close(Duration::from_secs(30));
        let partition = |i: usize| {
            let key = unhex(records[i].key.as_deref().unwrap());
            partition_for_key(&key, NonZeroU32::new(4).unwrap())
        };
        assert_read_back_exactly(&records, &judge(&c, &topic), partition);
    }
    // tansu does not check CRCs itself; it logs a mismatch, which must never appear.
    let path = c.log(1);
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
