//! Compressed batches (`compression.type` = gzip, snappy, lz4, zstd) against one Apache Kafka
//! node: every record read back exactly by the librdkafka judge (`check.crcs=true`), and the
//! batches as the broker stored them decoded by Java's `kafka-clients` (the oracle's
//! `verify`), which also names their codec.
//!
//! Needs `KAFKA_EDGE_DIR_1` (a cluster of `scripts/kafka up --brokers 1 --dir D`); the
//! broker's log segments are read from `D/node1/data`.

mod common;

use std::time::Duration;

use common::{builder, cluster, init_log, murmur2_partition, owned, send_all};
use kafka_edge_tests::{
    Cluster, Ground, TestRecord, TestRng, assert_read_back_exactly, hex, judge, keyed_records,
    oracle, topic_name,
};

const T: Duration = Duration::from_secs(60);
const CODECS: [&str; 4] = ["gzip", "snappy", "lz4", "zstd"];

/// Keyed records with headers and compressible values (text with some noise).
fn text_records(seed: u64, n: usize, value_len: usize) -> Vec<TestRecord> {
    let mut records = keyed_records(seed, n, 40);
    let mut rng = TestRng::new(seed);
    for r in &mut records {
        let text: Vec<u8> = (0..value_len)
            .map(|i| {
                if rng.below(32) == 0 {
                    b'a' + rng.below(26) as u8
                } else {
                    b"sensor=42 temperature=21.5 status=ok "[i % 37]
                }
            })
            .collect();
        r.value = Some(hex(&text));
    }
    records
}

/// Sends keyed `records` with `codec` to a new topic (`topic_config` for the topic),
/// checks the judge reads them back exactly and Java reads the stored batches; returns the
/// stored batches' codecs and record counts.
fn round_trip(
    c: &Cluster,
    name: &str,
    topic_config: &[&str],
    props: &[(&str, &str)],
    records: &[TestRecord],
) -> Vec<(String, u64)> {
    let topic = topic_name(name);
    c.create_topic(&topic, 3, 1, topic_config);
    let p = builder(c, props).build().expect("producer");
    let metas = send_all(&p, &topic, records);
    for (i, (r, m)) in records.iter().zip(&metas).enumerate() {
        assert_eq!(m.partition, murmur2_partition(r, 3), "record {i}");
        assert!(m.offset >= 0, "record {i}");
    }
    p.close(T);
    let judged = judge(c, &topic);
    assert_read_back_exactly(records, &judged, |i| murmur2_partition(&records[i], 3));
    let codecs = oracle::batch_codecs(&oracle::stored_batches(c, &topic, 3));
    let stored: u64 = codecs.iter().map(|(_, n)| n).sum();
    assert_eq!(stored, records.len() as u64, "records in stored batches");
    codecs
}

#[test]
fn each_codec_round_trips_keyed_records_with_headers() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let records = text_records(13, 3000, 120);
    for codec in CODECS {
        let codecs = round_trip(
            &c,
            &format!("cz-{codec}"),
            &["compression.type=producer"],
            &[("compression.type", codec), ("linger.ms", "20")],
            &records,
        );
        // The broker kept our batches as they were: every one in our codec, batched.
        assert!(
            codecs.iter().all(|(name, _)| name == codec),
            "{codec}: {codecs:?}"
        );
        assert!(codecs.len() < records.len() / 10, "{codec}: {codecs:?}");
    }
}

#[test]
fn levels_are_accepted_and_applied() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let records = text_records(14, 500, 200);
    for (codec, key, level) in [
        ("gzip", "compression.gzip.level", "1"),
        ("gzip", "compression.gzip.level", "9"),
        ("lz4", "compression.lz4.level", "17"),
        ("zstd", "compression.zstd.level", "-5"),
        ("zstd", "compression.zstd.level", "19"),
    ] {
        let codecs = round_trip(
            &c,
            &format!("cz-level-{codec}"),
            &["compression.type=producer"],
            &[
                ("compression.type", codec),
                (key, level),
                ("linger.ms", "20"),
            ],
            &records,
        );
        assert!(codecs.iter().all(|(name, _)| name == codec), "{codecs:?}");
    }
    // Out of Java's ranges: refused when the producer is built.
    for (key, level) in [
        ("compression.gzip.level", "10"),
        ("compression.lz4.level", "0"),
        ("compression.zstd.level", "23"),
    ] {
        assert!(
            builder(&c, &[(key, level)]).build().is_err(),
            "{key}={level}"
        );
    }
}

#[test]
fn a_topic_forcing_another_codec_recompresses() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let records = text_records(15, 1000, 100);
    for (ours, topics) in [("lz4", "gzip"), ("zstd", "snappy"), ("none", "zstd")] {
        let codecs = round_trip(
            &c,
            &format!("cz-force-{topics}"),
            &[&format!("compression.type={topics}")],
            &[("compression.type", ours), ("linger.ms", "20")],
            &records,
        );
        assert!(codecs.iter().all(|(name, _)| name == topics), "{codecs:?}");
    }
}

#[test]
fn one_record_batches_and_incompressible_records() {
    init_log();
    let c = cluster(Ground::Kafka1);
    // One record per batch (batch.size=0 closes every batch after its first record).
    let one = keyed_records(16, 20, 5);
    // Random values: compressed batches come out larger than their records.
    let mut random = keyed_records(17, 400, 20);
    let mut rng = TestRng::new(99);
    for r in &mut random {
        r.value = Some(hex(&rng.bytes(1000)));
    }
    for codec in CODECS {
        let codecs = round_trip(
            &c,
            &format!("cz-one-{codec}"),
            &["compression.type=producer"],
            &[("compression.type", codec), ("batch.size", "0")],
            &one,
        );
        assert_eq!(codecs.len(), one.len(), "{codec}: {codecs:?}");
        assert!(codecs.iter().all(|(name, n)| name == codec && *n == 1));

        let codecs = round_trip(
            &c,
            &format!("cz-random-{codec}"),
            &["compression.type=producer"],
            &[("compression.type", codec), ("linger.ms", "20")],
            &random,
        );
        // Sent compressed, or uncompressed where the output did not fit the slot.
        assert!(
            codecs
                .iter()
                .all(|(name, _)| name == codec || name == "none"),
            "{codec}: {codecs:?}"
        );
    }
}

#[test]
fn a_record_filling_its_slot_and_batches_growing_with_the_ratio() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let batch_size = 16_384usize;
    for codec in CODECS {
        // A record as large as the batch's whole slot (4 x batch.size, uncompressed).
        let mut big = text_records(18, 3, 4 * batch_size - 200);
        for r in &mut big {
            r.headers.clear();
        }
        let codecs = round_trip(
            &c,
            &format!("cz-slot-{codec}"),
            &["compression.type=producer"],
            &[("compression.type", codec), ("linger.ms", "0")],
            &big,
        );
        assert!(
            codecs.iter().all(|(name, n)| name == codec && *n == 1),
            "{codecs:?}"
        );

        // Compressible records to one partition: as the ratio estimate learns, batches
        // hold more than `batch.size` of uncompressed records, as Java's do. A batch takes
        // the estimate of when it was opened, so the records go in waves, each sent once
        // the batches of the one before were closed.
        let topic = topic_name(&format!("cz-ratio-{codec}"));
        c.create_topic(&topic, 1, 1, &["compression.type=producer"]);
        let records = text_records(19, 24_000, 100);
        // Batches close by their estimated size only (a long linger.ms), not by a linger
        // that a slow machine may reach first; each wave ends with a flush.
        let p = builder(&c, &[("compression.type", codec), ("linger.ms", "60000")])
            .build()
            .expect("producer");
        for wave in records.chunks(800) {
            let owned = owned(wave);
            let futures: Vec<_> = owned
                .iter()
                .map(|r| p.send(&r.record(&topic)).expect("accepted"))
                .collect();
            p.flush();
            for (i, f) in futures.into_iter().enumerate() {
                f.wait_timeout(T)
                    .unwrap_or_else(|| panic!("record {i}: no outcome"))
                    .unwrap_or_else(|e| panic!("record {i}: {e}"));
            }
        }
        p.close(T);
        let judged = judge(&c, &topic);
        assert_read_back_exactly(&records, &judged, |_| 0);
        let answers = oracle::stored_batches(&c, &topic, 1);
        let codecs = oracle::batch_codecs(&answers);
        let most = codecs.iter().map(|(_, n)| *n).max().unwrap_or(0);
        // A record takes about 150 bytes: 16 KiB holds ~110 of them uncompressed.
        assert!(most > 200, "{codec}: at most {most} records per batch");
        assert!(codecs.iter().all(|(name, _)| name == codec));
    }
}
