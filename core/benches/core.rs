//! Hot-path benchmarks of the core, each next to a memcpy baseline of the same bytes.
//!
//! `cargo bench -p kafka-edge-core` (portable CRC32C) and
//! `cargo bench -p kafka-edge-core --features hardware-crc`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_edge_core::record::{BatchBuilder, BatchMeta, Record};
use kafka_edge_core::{
    AccumulatorConfig, BatchId, FixedAccumulator, FixedPool, NodeId, TopicId, TopicPartition,
    murmur2,
};

const BATCH_SIZE: usize = 16 * 1024;
const VALUE_LEN: usize = 100;

/// Records that fit in one 16 KiB batch (null key, 100-byte value, no headers).
fn records_per_batch() -> usize {
    let mut buf = vec![0u8; BATCH_SIZE];
    let mut b = BatchBuilder::start(&buf).unwrap();
    let value = [0u8; VALUE_LEN];
    let mut n = 0;
    while b
        .append(
            &mut buf,
            &Record {
                timestamp: 1_700_000_000_000,
                key: None,
                value: Some(&value),
                headers: &[],
            },
        )
        .is_ok()
    {
        n += 1;
    }
    n
}

fn append_encode(c: &mut Criterion) {
    let n = records_per_batch();
    let values: Vec<[u8; VALUE_LEN]> = (0..n).map(|i| [i as u8; VALUE_LEN]).collect();
    let mut buf = vec![0u8; BATCH_SIZE];
    let mut group = c.benchmark_group("append_encode_16KiB_batch");

    group.throughput(Throughput::Elements(n as u64));
    group.bench_function("records", |bch| {
        bch.iter(|| {
            let mut b = BatchBuilder::start(&buf).unwrap();
            for (i, v) in values.iter().enumerate() {
                let r = Record {
                    timestamp: 1_700_000_000_000 + (i as i64 >> 4),
                    key: None,
                    value: Some(v),
                    headers: &[],
                };
                b.append(&mut buf, black_box(&r)).unwrap();
            }
            black_box(b.close(&mut buf, &BatchMeta::default()).unwrap())
        })
    });
    group.bench_function("memcpy_baseline_records", |bch| {
        bch.iter(|| {
            let mut pos = 0;
            for v in &values {
                let v = black_box(v);
                buf[pos..pos + VALUE_LEN].copy_from_slice(v);
                pos += VALUE_LEN;
            }
            black_box(&buf);
        })
    });

    group.throughput(Throughput::Bytes((n * VALUE_LEN) as u64));
    group.bench_function("value_bytes", |bch| {
        bch.iter(|| {
            let mut b = BatchBuilder::start(&buf).unwrap();
            for (i, v) in values.iter().enumerate() {
                let r = Record {
                    timestamp: 1_700_000_000_000 + (i as i64 >> 4),
                    key: None,
                    value: Some(v),
                    headers: &[],
                };
                b.append(&mut buf, black_box(&r)).unwrap();
            }
            black_box(b.close(&mut buf, &BatchMeta::default()).unwrap())
        })
    });
    group.finish();
}

fn accumulator_append(c: &mut Criterion) {
    const SLOTS: usize = 64;
    let n = records_per_batch() as u64;
    let pool = FixedPool::<_, SLOTS>::new(vec![0u8; SLOTS * BATCH_SIZE], BATCH_SIZE).unwrap();
    let mut acc = FixedAccumulator::<_, SLOTS, 4, 64>::new(pool, AccumulatorConfig::DEFAULT);
    let tp = TopicPartition::new(TopicId::new(0, 0), 0);
    let value = [7u8; VALUE_LEN];
    let mut group = c.benchmark_group("accumulator");
    group.throughput(Throughput::Elements(n));
    // One batch worth of appends, then drain (close + CRC) and complete it.
    group.bench_function("append_drain_complete", |bch| {
        bch.iter(|| {
            for i in 0..n {
                let r = Record {
                    timestamp: 1_700_000_000_000 + (i as i64 >> 4),
                    key: None,
                    value: Some(&value),
                    headers: &[],
                };
                black_box(acc.append(0, tp, black_box(&r)).unwrap());
            }
            let mut out = [BatchId::default(); 4];
            let k = acc.drain(
                10,
                NodeId(0),
                usize::MAX,
                |_| Some(NodeId(0)),
                |_| BatchMeta::default(),
                &mut out,
            );
            for id in &out[..k] {
                black_box(acc.complete(*id).unwrap());
            }
        })
    });
    group.finish();
}

/// Keyed records spread over 2,000 partitions (200 topics x 10): each append finds its
/// partition's queue among 2,000 (a service on a large cluster), 1 KiB batches so that a
/// run drains and completes everything.
#[cfg(feature = "alloc")]
fn accumulator_many_partitions(c: &mut Criterion) {
    use kafka_edge_core::{
        RecordAccumulator, VecTable, partition_for_key,
        storage::{BatchEntry, PartitionQueue, Slot},
    };
    const TOPICS: u16 = 200;
    const PARTITIONS: u32 = 10;
    const SLOT: usize = 1024;
    const RECORDS: usize = 4_000;
    let pool = kafka_edge_core::BufferPool::<_, VecTable<Slot>>::new(vec![0u8; 8192 * SLOT], SLOT)
        .unwrap();
    let mut acc: RecordAccumulator<
        _,
        VecTable<Slot>,
        VecTable<BatchEntry>,
        VecTable<PartitionQueue>,
    > = RecordAccumulator::new(pool, AccumulatorConfig::DEFAULT);
    let keys: Vec<(TopicPartition, Vec<u8>)> = (0..RECORDS)
        .map(|i| {
            let key = format!("key-{i}").into_bytes();
            let topic = TopicId::new((i % usize::from(TOPICS)) as u16, 0);
            let n = std::num::NonZeroU32::new(PARTITIONS).unwrap();
            (TopicPartition::new(topic, partition_for_key(&key, n)), key)
        })
        .collect();
    let value = [7u8; VALUE_LEN];
    let mut out = vec![BatchId::default(); 4096];
    let mut group = c.benchmark_group("accumulator");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("append_2000_partitions_keyed", |bch| {
        bch.iter(|| {
            for (tp, key) in &keys {
                let r = Record {
                    timestamp: 1_700_000_000_000,
                    key: Some(key),
                    value: Some(&value),
                    headers: &[],
                };
                black_box(acc.append(0, *tp, black_box(&r)).unwrap());
            }
            acc.begin_flush();
            loop {
                let k = acc.drain(
                    10,
                    NodeId(0),
                    usize::MAX,
                    |_| Some(NodeId(0)),
                    |_| BatchMeta::default(),
                    &mut out,
                );
                if k == 0 {
                    break;
                }
                for id in &out[..k] {
                    black_box(acc.complete(*id).unwrap());
                }
            }
            acc.flush_done();
        })
    });
    group.finish();
}

#[cfg(not(feature = "alloc"))]
fn accumulator_many_partitions(_: &mut Criterion) {}

fn crc(c: &mut Criterion) {
    let data: Vec<u8> = (0..BATCH_SIZE).map(|i| (i * 31) as u8).collect();
    let mut group = c.benchmark_group("crc32c_16KiB");
    group.throughput(Throughput::Bytes(data.len() as u64));
    let portable = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);
    group.bench_function("portable_slice16", |b| {
        b.iter(|| portable.checksum(black_box(&data)))
    });
    let bytewise = crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISCSI);
    group.bench_function("portable_table1", |b| {
        b.iter(|| bytewise.checksum(black_box(&data)))
    });
    #[cfg(feature = "hardware-crc")]
    group.bench_function("hardware", |b| b.iter(|| crc32c::crc32c(black_box(&data))));
    group.bench_function("crate_default", |b| {
        b.iter(|| kafka_edge_core::crc32c(black_box(&data)))
    });
    group.bench_function("memcpy_baseline", |b| {
        let mut dst = vec![0u8; data.len()];
        b.iter(|| {
            dst.copy_from_slice(black_box(&data));
            black_box(&dst);
        })
    });
    group.finish();
}

fn murmur(c: &mut Criterion) {
    let mut group = c.benchmark_group("murmur2");
    for key in [
        &b"key-12345"[..],
        b"0123456789abcdef",
        b"user-4f1c2a8e-9b7d-4e3a-a1f0-7c2e9d5b3a61",
    ] {
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{}_byte_key", key.len()), |b| {
            b.iter(|| murmur2(black_box(key)))
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    append_encode,
    accumulator_append,
    accumulator_many_partitions,
    crc,
    murmur
);
criterion_main!(benches);
