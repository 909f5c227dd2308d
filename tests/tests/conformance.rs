//! Conformance of the core's wire output with the Java client, byte for byte: record batches
//! against Java's `MemoryRecordsBuilder`, murmur2 and partitions against `Utils.murmur2`, read
//! back by Java's `ensureValid()` and by kafka-python, a second independent implementation.
//! Needs no broker, only the Java oracle and the test ground's Python venv.

use kafka_edge_core::record::{
    BatchBuilder, BatchMeta, Header, Record, RecordBatchReader, TimestampType,
};
use kafka_edge_core::{murmur2, partition_for_key};
use kafka_edge_tests::{TestRng, hex, kafka_python_verify, oracle, unhex};
use serde_json::{Value, json};
use std::num::NonZeroU32;

/// One generated batch: the description the oracle reads and the records the core appends.
struct Case {
    description: Value,
    records: Vec<OwnedRecord>,
    meta: BatchMeta,
}

struct OwnedRecord {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

const HEADER_KEYS: &[&str] = &["h", "trace-id", "", "ключ", "emoji-😀", "content-type"];

fn maybe_bytes(rng: &mut TestRng, max: u64) -> Option<Vec<u8>> {
    match rng.below(10) {
        0 => None,
        1 => Some(Vec::new()),
        _ => {
            let len = rng.below(max + 1) as usize;
            Some(rng.bytes(len))
        }
    }
}

fn generate(seed: u64, n: usize) -> Vec<Case> {
    let mut rng = TestRng::new(seed);
    (0..n)
        .map(|i| {
            let count = match rng.below(8) {
                0 => 1,
                1 => 50 + rng.below(150) as usize,
                _ => 1 + rng.below(12) as usize,
            };
            // Every 25th batch carries a large record (tens of KiB).
            let large = i % 25 == 7;
            let mut t = 1_600_000_000_000_i64 + rng.below(100_000_000_000) as i64;
            let records: Vec<OwnedRecord> = (0..count)
                .map(|r| {
                    // Timestamps mostly rise but may fall (max timestamp is not the last);
                    // a few records carry no timestamp (-1).
                    t += rng.below(5_000) as i64 - 1_000;
                    let timestamp = if rng.below(40) == 0 { -1 } else { t };
                    let value_max = if large && r == 0 { 60_000 } else { 300 };
                    OwnedRecord {
                        timestamp,
                        key: maybe_bytes(&mut rng, 40),
                        value: maybe_bytes(&mut rng, value_max),
                        headers: (0..rng.below(4))
                            .map(|_| {
                                let k = HEADER_KEYS[rng.below(HEADER_KEYS.len() as u64) as usize];
                                (k.to_string(), maybe_bytes(&mut rng, 20))
                            })
                            .collect(),
                    }
                })
                .collect();
            let meta = match rng.below(4) {
                0 => BatchMeta::NON_IDEMPOTENT,
                1 | 2 => BatchMeta::idempotent(
                    rng.below(1 << 40) as i64,
                    rng.below(i16::MAX as u64) as i16,
                    rng.below(i32::MAX as u64) as i32,
                ),
                _ => BatchMeta {
                    is_transactional: true,
                    ..BatchMeta::idempotent(rng.below(1000) as i64, 0, 0)
                },
            };
            let description = json!({
                "base_offset": meta.base_offset,
                "partition_leader_epoch": meta.partition_leader_epoch,
                "producer_id": meta.producer_id,
                "producer_epoch": meta.producer_epoch,
                "base_sequence": meta.base_sequence,
                "transactional": meta.is_transactional,
                "timestamp_type": match meta.timestamp_type { TimestampType::LogAppendTime => "log_append", _ => "create" },
                "records": records.iter().map(|r| json!({
                    "timestamp": r.timestamp,
                    "key": r.key.as_deref().map(hex),
                    "value": r.value.as_deref().map(hex),
                    "headers": r.headers.iter().map(|(k, v)| json!([k, v.as_deref().map(hex)])).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            });
            Case { description, records, meta }
        })
        .collect()
}

/// The core's bytes for a case: every record appended into one buffer, then closed.
fn core_batch(case: &Case) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 20];
    let mut b = BatchBuilder::start(&buf).expect("start");
    for r in &case.records {
        let headers: Vec<Header<'_>> = r
            .headers
            .iter()
            .map(|(k, v)| Header {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let rec = Record {
            timestamp: r.timestamp,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &headers,
        };
        b.append(&mut buf, &rec).expect("append");
    }
    let len = b.close(&mut buf, &case.meta).expect("close");
    buf.truncate(len);
    buf
}

#[test]
fn record_batches_equal_java_memory_records_builder_byte_for_byte() {
    let cases = generate(0x5EED, 300);
    let ours: Vec<Vec<u8>> = cases.iter().map(core_batch).collect();
    let descriptions: Vec<Value> = cases.iter().map(|c| c.description.clone()).collect();
    let java = oracle::batch(&descriptions);
    let mut total_records = 0;
    for (i, (o, j)) in ours.iter().zip(&java).enumerate() {
        if o != j {
            let at = o
                .iter()
                .zip(j)
                .position(|(a, b)| a != b)
                .unwrap_or(o.len().min(j.len()));
            panic!(
                "batch {i}: {} bytes ours vs {} Java's, first difference at byte {at}\n description: {}",
                o.len(),
                j.len(),
                cases[i].description
            );
        }
        total_records += cases[i].records.len();
    }
    assert!(
        total_records > 3000,
        "the cases should cover thousands of records, got {total_records}"
    );

    // The core's reader reads Java's bytes back to the same records.
    for (case, j) in cases.iter().zip(&java) {
        let mut batches = RecordBatchReader::new(j);
        let batch = batches.next().expect("one batch").expect("valid batch");
        assert!(batches.next().is_none());
        let h = batch.header();
        assert_eq!(h.producer_id(), case.meta.producer_id);
        assert_eq!(h.base_sequence(), case.meta.base_sequence);
        assert_eq!(h.is_transactional(), case.meta.is_transactional);
        let decoded: Vec<_> = batch
            .records()
            .expect("records")
            .map(|r| r.expect("record"))
            .collect();
        assert_eq!(decoded.len(), case.records.len());
        for (d, r) in decoded.iter().zip(&case.records) {
            assert_eq!(d.key, r.key.as_deref());
            assert_eq!(d.value, r.value.as_deref());
            assert_eq!(d.timestamp, r.timestamp);
            let hs: Vec<(String, Option<Vec<u8>>)> = d
                .headers
                .clone()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect();
            assert_eq!(hs, r.headers);
        }
    }
}

#[test]
fn java_and_kafka_python_read_the_core_batches() {
    let cases = generate(0xC0FFEE, 120);
    let ours: Vec<Vec<u8>> = cases.iter().map(core_batch).collect();
    let java = oracle::verify(&ours);
    let python = kafka_python_verify(&ours);
    for (i, case) in cases.iter().enumerate() {
        let expected: Vec<Value> = case.description["records"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(off, r)| {
                json!({"offset": off, "timestamp": r["timestamp"], "key": r["key"], "value": r["value"], "headers": r["headers"]})
            })
            .collect();
        let j = &java[i];
        assert_eq!(j["valid"], true, "Java rejected batch {i}: {j}");
        assert_eq!(
            j["batches"][0]["records"],
            Value::Array(expected.clone()),
            "Java read batch {i} differently"
        );
        assert_eq!(j["batches"][0]["producer_id"], case.meta.producer_id);
        assert_eq!(j["batches"][0]["base_sequence"], case.meta.base_sequence);
        let p = &python[i];
        assert_eq!(p["valid"], true, "kafka-python rejected batch {i}: {p}");
        assert_eq!(p["crc_ok"], true, "kafka-python: CRC of batch {i}");
        assert_eq!(
            p["records"],
            Value::Array(expected),
            "kafka-python read batch {i} differently"
        );
    }
}

#[test]
fn murmur2_and_partitions_equal_java_for_random_keys() {
    let mut rng = TestRng::new(0xABCD);
    let mut keys: Vec<Vec<u8>> = (0..20_000)
        .map(|_| {
            let len = rng.below(301) as usize;
            rng.bytes(len)
        })
        .collect();
    // Every tail length, and the vectors of Kafka's UtilsTest, are in the set.
    for len in 0..16 {
        keys.push((0..len as u8).collect());
    }
    for k in ["21", "foobar", "a-little-bit-long-string", "abc"] {
        keys.push(k.as_bytes().to_vec());
    }
    for partitions in [1_u32, 6, 7, 100] {
        let java = oracle::murmur2(&keys, partitions);
        for (k, (h, p)) in keys.iter().zip(&java) {
            assert_eq!(murmur2(k), *h, "murmur2 of {}", hex(k));
            let n = NonZeroU32::new(partitions).expect("non-zero");
            assert_eq!(
                partition_for_key(k, n) as u32,
                *p,
                "partition of {} over {partitions}",
                hex(k)
            );
        }
    }
    assert_eq!(unhex("3231"), b"21");
}
