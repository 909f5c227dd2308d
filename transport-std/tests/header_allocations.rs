//! Headers cost no heap allocation per record in the common case (up to
//! `INLINE_HEADERS`): counted by a global allocator that tallies the allocations of the
//! calling thread (`allocation-counter`), on records built alone and on `send` to the real
//! broker.

mod common;

use common::{builder, cluster, init_log};
use kafka_edge_std::{Header, Headers, INLINE_HEADERS, ProducerRecord};
use kafka_edge_tests::{Ground, judge, topic_name};

/// Allocations made by this thread while `f` runs (`allocation-counter` is this test
/// binary's global allocator and counts per thread).
fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let mut out = None;
    let info = allocation_counter::measure(|| out = Some(f()));
    match out {
        Some(out) => (out, info.count_total),
        None => unreachable!("measure runs the closure"),
    }
}

fn record<'a>(topic: &'a str, value: &'a [u8], headers: usize) -> ProducerRecord<'a> {
    const KEYS: [&str; 6] = ["trace-id", "span-id", "origin", "schema", "tenant", "extra"];
    let mut r = ProducerRecord::new(topic).key(b"key").value(value);
    for k in KEYS.iter().take(headers) {
        r = r.header(k, value);
    }
    r
}

#[test]
fn records_with_a_few_headers_are_built_without_allocating() {
    let value = [7u8; 16];
    for n in 0..=INLINE_HEADERS {
        let (r, count) = allocations(|| record("t", &value, n));
        assert_eq!(count, 0, "{n} headers");
        assert_eq!(r.headers.len(), n);
        let (copy, count) = allocations(|| r.clone());
        assert_eq!(count, 0, "a copy of a record with {n} headers");
        assert_eq!(copy, r);
    }
    // The counter sees allocations: past the inline headers they move to the heap.
    let (r, count) = allocations(|| record("t", &value, INLINE_HEADERS + 1));
    assert!(r.headers.spilled());
    assert_eq!(
        count,
        1,
        "one allocation for {} headers",
        INLINE_HEADERS + 1
    );
    let (h, count) = allocations(|| {
        Headers::from(
            [Header {
                key: "a",
                value: None,
            }; 2],
        )
    });
    assert_eq!((h.len(), count), (2, 0));
}

#[test]
fn sending_records_with_headers_allocates_no_more_than_without() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-header-allocs");
    c.create_topic(&topic, 1, 1, &[]);
    let p = builder(&c, &[("linger.ms", "5")]).build().unwrap();
    let value = [b'v'; 100];
    const N: usize = 200;
    // Warm up: metadata, connections, the batch table.
    for _ in 0..N {
        drop(p.send(&record(&topic, &value, 3)).unwrap());
    }
    p.flush();
    let run = |headers: usize| {
        let (futures, count) = allocations(|| {
            (0..N)
                .map(|_| p.send(&record(&topic, &value, headers)).unwrap())
                .collect::<Vec<_>>()
        });
        for f in futures {
            f.wait().expect("delivered");
        }
        count
    };
    let without = run(0);
    let with = run(3);
    eprintln!("allocations for {N} sends: {without} without headers, {with} with 3 headers");
    // The send path itself allocates (each record's outcome slot); a `Vec` of headers
    // would add one allocation per record, N in all.
    assert!(
        with < without + (N as u64) / 10,
        "{with} allocations with headers, {without} without"
    );
    drop(p);
    let judged = judge(&c, &topic);
    assert_eq!(judged.len(), 3 * N);
    assert!(judged[N..2 * N].iter().all(|r| r.headers.is_empty()));
    assert!(judged[2 * N..].iter().all(|r| r.headers.len() == 3));
}
