//! Tests of batches that grow past `batch.size` while they wait (`batch.max.size`).

extern crate std;
use super::testing::*;
use super::*;
use std::vec::Vec;

/// `cfg()` with batches growing up to four slots.
fn growing() -> AccumulatorConfig {
    AccumulatorConfig {
        batch_max_size: 4 * BATCH,
        ..cfg()
    }
}

/// An accumulator whose partition 0 waits (muted, as while its batch is in flight), so that
/// its open batch grows.
fn waiting() -> Acc {
    let mut a = acc(growing());
    a.mute(tp(0)).unwrap();
    a
}

fn drain_one(a: &mut Acc) -> BatchId {
    a.unmute(tp(0));
    let mut out = [BatchId::default(); 4];
    assert_eq!(a.drain(0, NodeId(1), 4_000, leader, meta, &mut out), 1);
    out[0]
}

/// Drains everything and returns partition `p`'s batch.
fn drain_partition(a: &mut Acc, p: i32) -> BatchId {
    a.unmute(tp(0));
    let mut out = [BatchId::default(); 4];
    let n = a.drain(0, NodeId(1), 4_000, leader, meta, &mut out);
    let found = out[..n]
        .iter()
        .find(|id| a.batch(**id).unwrap().topic_partition() == tp(p));
    *found.unwrap()
}

#[test]
fn a_batch_not_drained_grows_to_batch_max_size_and_is_full_once() {
    let mut a = waiting();
    // Records of 57 bytes: 3 fit in the first slot (61 + 3 * 57 = 232 of 256), 7 in two
    // slots, 16 in four (61 + 16 * 57 = 973 of 1024); the 17th opens a new batch.
    let results: Vec<_> = (0..17u8)
        .map(|i| a.append(0, tp(0), &rec(&[i; 50])).unwrap())
        .collect();
    assert!(results[..16].iter().skip(1).all(|r| !r.new_batch_created));
    let full: Vec<usize> = (0..16).filter(|&i| results[i].all_batches_full).collect();
    assert_eq!(
        full,
        [3],
        "full once: when the batch crossed its first 256 bytes"
    );
    assert!(results[16].new_batch_created && results[16].batch_is_full);
    assert_eq!(a.queued_batches(tp(0)), 2);
    assert_eq!(
        a.pool().used_slots(),
        5,
        "four slots grown in place, one new"
    );
    let id = drain_one(&mut a);
    let expected: Vec<Vec<u8>> = (0..16u8).map(|i| std::vec![i; 50]).collect();
    assert_eq!(values_of(&a, id), expected);
}

#[test]
fn a_grown_batch_is_ready_without_waiting_for_linger() {
    let mut a = acc(growing());
    let mut nodes = heapless::Vec::<NodeId, 4>::new();
    // Batch A takes three records and goes into a request; batch B waits behind it.
    for i in 0..4u8 {
        a.append(0, tp(0), &rec(&[i; 50])).unwrap();
    }
    drain_one(&mut a);
    for i in 4..6u8 {
        a.append(0, tp(0), &rec(&[i; 50])).unwrap();
    }
    let check = a.ready(0, leader, &mut nodes);
    assert!(nodes.is_empty(), "232 of 256 bytes: waits for linger.ms");
    assert_eq!(check.next_ready_check_delay_ms, Some(10));
    let r = a.append(0, tp(0), &rec(&[6; 50])).unwrap();
    assert!(
        !r.new_batch_created && r.all_batches_full,
        "B grew, full once"
    );
    assert_eq!(a.queued_batches(tp(0)), 1);
    a.ready(0, leader, &mut nodes);
    assert_eq!(
        nodes.as_slice(),
        [NodeId(1)],
        "past batch.size: ready at once"
    );
}

#[test]
fn a_full_batch_closes_as_in_java_without_growth_or_with_nothing_in_flight() {
    // Without batch.max.size, or with nothing holding partition 0 back (its full batch goes
    // now): Java's 256-byte batches.
    for config in [cfg(), growing()] {
        let mut a = acc(config);
        let results: Vec<_> = (0..4u8)
            .map(|i| a.append(0, tp(0), &rec(&[i; 50])).unwrap())
            .collect();
        assert!(results[3].new_batch_created);
        assert_eq!(a.pool().used_slots(), 2);
    }
}

#[test]
fn an_old_batch_stops_growing() {
    // delivery.timeout.ms is 1,000 here: a batch grows during its first 100 ms only.
    let mut a = waiting();
    for i in 0..3u8 {
        a.append(0, tp(0), &rec(&[i; 50])).unwrap();
    }
    let r = a.append(100, tp(0), &rec(&[3; 50])).unwrap();
    assert!(
        r.new_batch_created,
        "100 ms old: a new batch, not a grown one"
    );
    let r = a.append(150, tp(0), &rec(&[4; 50])).unwrap();
    assert!(!r.new_batch_created);
    for i in 5..7u8 {
        a.append(199, tp(0), &rec(&[i; 50])).unwrap();
    }
    assert_eq!(a.queued_batches(tp(0)), 2, "the new batch, 99 ms old, grew");
}

#[test]
fn a_drained_grown_batch_gives_back_the_slots_it_does_not_use() {
    let mut a = waiting();
    // Four records: the batch grew to two slots (289 bytes), then to four for the eighth.
    for i in 0..8u8 {
        a.append(0, tp(0), &rec(&[i; 50])).unwrap();
    }
    assert_eq!(a.pool().used_slots(), 4);
    // 61 + 8 * 57 = 517 bytes closed: three slots kept, one freed.
    let id = drain_one(&mut a);
    assert_eq!(a.pool().used_slots(), 3);
    let expected: Vec<Vec<u8>> = (0..8u8).map(|i| std::vec![i; 50]).collect();
    assert_eq!(values_of(&a, id), expected);
}

#[test]
fn a_batch_whose_next_slot_is_taken_moves_with_its_records() {
    let mut a = waiting();
    for i in 0..3u8 {
        a.append(0, tp(0), &rec(&[i; 50])).unwrap();
    }
    // Partition 1's batch takes slot 1, right after partition 0's.
    a.append(0, tp(1), &rec(b"other")).unwrap();
    let r = a.append(0, tp(0), &rec(&[3; 50])).unwrap();
    assert!(!r.new_batch_created);
    assert_eq!(a.pool().used_slots(), 3, "two slots moved to, one freed");
    let id = drain_partition(&mut a, 0);
    let expected: Vec<Vec<u8>> = (0..4u8).map(|i| std::vec![i; 50]).collect();
    assert_eq!(values_of(&a, id), expected);
}

#[test]
fn a_batch_grows_only_while_a_quarter_of_the_pool_stays_free() {
    let mut a = waiting();
    // Partitions 1 and 2 take two slots each, partition 3 one, partition 0 the sixth.
    a.append(0, tp(1), &rec(&[1; 400])).unwrap();
    a.append(0, tp(2), &rec(&[2; 400])).unwrap();
    a.append(0, tp(3), &rec(b"x")).unwrap();
    assert_eq!(a.pool().used_slots(), 5);
    for i in 0..3u8 {
        a.append(0, tp(0), &rec(&[i; 50])).unwrap();
    }
    // Growing would leave one slot free of eight (a quarter is two): a new batch instead.
    let r = a.append(0, tp(0), &rec(&[3; 50])).unwrap();
    assert!(r.new_batch_created);
    assert_eq!(a.pool().free_slots(), 1);
}

#[test]
fn a_topic_whose_batch_was_split_stops_growing_its_batches() {
    let mut a = waiting();
    // Partition 1, of the same topic, waits too; its queue exists before the split.
    a.mute(tp(1)).unwrap();
    for i in 0..7u8 {
        a.append(0, tp(0), &rec(&[i; 50])).unwrap();
    }
    assert_eq!(
        a.queued_batches(tp(0)),
        1,
        "seven records in one grown batch"
    );
    let id = drain_one(&mut a);
    // The broker refused it as too large: split, and the partition's batches stay small.
    assert!(a.split(0, id).unwrap() >= 2);
    let before = a.queued_batches(tp(0));
    let results: Vec<_> = (0..4u8)
        .map(|i| a.append(0, tp(0), &rec(&[i; 50])).unwrap())
        .collect();
    assert!(results[0].new_batch_created && results[3].new_batch_created);
    assert_eq!(a.queued_batches(tp(0)), before + 2);
    // The topic's other partition: no growth either.
    let results: Vec<_> = (0..4u8)
        .map(|i| a.append(0, tp(1), &rec(&[i; 50])).unwrap())
        .collect();
    assert!(results[3].new_batch_created);
    assert_eq!(a.queued_batches(tp(1)), 2);
}

#[test]
fn a_small_pool_keeps_a_slot_free_for_other_partitions() {
    // Two slots: growing into the second would leave none for another partition.
    let pool = BufferPool::new(std::vec![0u8; 2 * BATCH], BATCH).unwrap();
    let mut a: Acc = RecordAccumulator::new(pool, growing());
    a.mute(tp(0)).unwrap();
    for i in 0..4u8 {
        a.append(0, tp(0), &rec(&[i; 50])).unwrap();
    }
    assert_eq!(a.queued_batches(tp(0)), 2, "a new batch, not a grown one");
}
