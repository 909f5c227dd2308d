//! Unit and property tests of the record accumulator.

extern crate std;
use super::testing::*;
use super::*;
use crate::record::RecordBatchReader;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::vec::Vec;

#[test]
fn linger_flushes_partial_batch() {
    let mut a = acc(cfg());
    let r = a.append(0, tp(0), &rec(b"hello")).unwrap();
    assert!(r.new_batch_created && !r.batch_is_full);
    let mut nodes = heapless::Vec::<NodeId, 4>::new();
    let check = a.ready(5, leader, &mut nodes);
    assert!(nodes.is_empty());
    assert_eq!(check.next_ready_check_delay_ms, Some(5));
    assert_eq!(check.next_expiry_delay_ms, Some(995));
    let check = a.ready(10, leader, &mut nodes);
    assert_eq!(&nodes[..], &[NodeId(1)]);
    assert_eq!(check.next_ready_check_delay_ms, None);

    let mut out = [BatchId {
        index: 0,
        generation: 0,
    }; 4];
    assert_eq!(a.drain(10, NodeId(1), 1_000, leader, meta, &mut out), 1);
    let bytes = a.batch_bytes(out[0]).unwrap();
    let batch = RecordBatchReader::new(bytes).next().unwrap().unwrap();
    let first = batch.records().unwrap().next().unwrap().unwrap();
    assert_eq!(first.value, Some(&b"hello"[..]));

    // A new append opens a new batch; the drained one is in flight.
    let r2 = a.append(11, tp(0), &rec(b"again")).unwrap();
    assert!(r2.new_batch_created);
    let released = a.complete(out[0]).unwrap();
    assert!(released.tickets.contains(r.ticket));
    assert_eq!(released.tickets.count(), 1);
    assert_eq!(a.complete(out[0]), Err(AccumulatorError::UnknownBatch));
}

#[test]
fn full_batch_is_ready_and_new_batch_opens() {
    let mut a = acc(cfg());
    let value = [7u8; 50];
    let mut results = Vec::new();
    for _ in 0..4 {
        results.push(a.append(0, tp(1), &rec(&value)).unwrap());
    }
    // Records of 57 bytes: 61 + 3 * 57 = 232 fit in 256, the fourth opens a second batch.
    assert!(
        results[..3]
            .iter()
            .all(|r| !r.new_batch_created || r.ticket.index == 0)
    );
    assert!(results[3].new_batch_created && results[3].batch_is_full);
    assert_eq!(a.queued_batches(tp(1)), 2);
    let mut nodes = heapless::Vec::<NodeId, 4>::new();
    a.ready(0, leader, &mut nodes);
    assert_eq!(nodes.len(), 1);
}

#[test]
fn record_too_large_and_large_record_gets_own_batch() {
    let mut a = acc(AccumulatorConfig {
        max_request_size: 10_000,
        ..cfg()
    });
    let big = [1u8; 600];
    let r = a.append(0, tp(0), &rec(&big)).unwrap();
    assert!(r.new_batch_created);
    // Upper bound 61 + 21 + (1 + 2 + 600 + 1) = 686 bytes -> 3 slots of 256.
    assert_eq!(a.pool().used_slots(), 3);
    let huge = [1u8; 3000];
    assert_eq!(
        a.append(0, tp(0), &rec(&huge)),
        // 61 + 21 + (1 + 2 + 3000 + 1) = 3086 bytes > the 2048-byte pool.
        Err(AppendError::RecordTooLarge {
            size: 3086,
            max: 2048
        })
    );
    let mut small = acc(cfg());
    assert!(matches!(
        small.append(0, tp(0), &rec(&[0u8; 1000])),
        Err(AppendError::RecordTooLarge { max: 1000, .. })
    ));
}

#[test]
fn pool_exhaustion_is_backpressure_and_makes_batches_ready() {
    let mut a = acc(cfg());
    // One record per batch (61 + 157 bytes), one slot each.
    let value = [0u8; 150];
    for p in 0..4 {
        a.append(0, tp(p), &rec(&value)).unwrap();
        a.append(0, tp(p), &rec(&value)).unwrap();
    }
    assert_eq!(a.pool().free_slots(), 0);
    let err = a.append(0, tp(0), &rec(&value)).unwrap_err();
    assert_eq!(err, AppendError::Full);
    assert!(err.is_backpressure());
    // Everything is ready now (Java's `exhausted`), without waiting for linger.
    let mut nodes = heapless::Vec::<NodeId, 4>::new();
    let _ = a.ready(0, leader, &mut nodes);
    assert_eq!(nodes.len(), 1);
    assert_eq!(
        a.append(0, tp(9), &rec(b"x")),
        Err(AppendError::TooManyPartitions)
    );
}

#[test]
fn drain_respects_max_request_size_mute_and_backoff() {
    let mut a = acc(cfg());
    for p in 0..3 {
        a.append(0, tp(p), &rec(&[0u8; 100])).unwrap();
    }
    a.mute(tp(2)).unwrap();
    let mut out = [BatchId {
        index: 0,
        generation: 0,
    }; 8];
    // Each batch is 61 + 103 = 164 bytes: only one fits in 200, but the first always goes.
    let n = a.drain(100, NodeId(1), 200, leader, meta, &mut out);
    assert_eq!(n, 1);
    let n2 = a.drain(100, NodeId(1), 200, leader, meta, &mut out[1..]);
    assert_eq!(n2, 1);
    assert_ne!(
        a.batch(out[0]).unwrap().topic_partition(),
        a.batch(out[1]).unwrap().topic_partition()
    );
    // Muted partition 2 is left.
    assert_eq!(
        a.drain(100, NodeId(1), 10_000, leader, meta, &mut out[2..]),
        0
    );
    a.unmute(tp(2));
    // Other node: nothing.
    assert_eq!(
        a.drain(100, NodeId(2), 10_000, leader, meta, &mut out[2..]),
        0
    );
    assert_eq!(
        a.drain(100, NodeId(1), 10_000, leader, meta, &mut out[2..]),
        1
    );

    // Retry: back at the front, backing off for 100 ms.
    a.reenqueue(200, out[0]).unwrap();
    assert_eq!(a.batch(out[0]).unwrap().attempts(), 1);
    let mut nodes = heapless::Vec::<NodeId, 4>::new();
    let check = a.ready(250, leader, &mut nodes);
    assert!(nodes.is_empty());
    assert_eq!(check.next_ready_check_delay_ms, Some(50));
    assert_eq!(
        a.drain(250, NodeId(1), 10_000, leader, meta, &mut out[3..]),
        0
    );
    a.ready(300, leader, &mut nodes);
    assert_eq!(nodes.len(), 1);
    assert_eq!(
        a.drain(300, NodeId(1), 10_000, leader, meta, &mut out[3..]),
        1
    );
    assert_eq!(out[3], out[0]);
}

#[test]
fn reenqueue_keeps_order_within_partition() {
    let mut a = acc(cfg());
    let v = [0u8; 150];
    let t1 = a.append(0, tp(0), &rec(&v)).unwrap().ticket;
    let t2 = a.append(0, tp(0), &rec(&v)).unwrap().ticket;
    let t3 = a.append(0, tp(0), &rec(&v)).unwrap().ticket;
    let mut out = [BatchId {
        index: 0,
        generation: 0,
    }; 3];
    for i in 0..2 {
        assert_eq!(
            a.drain(0, NodeId(1), 10_000, leader, meta, &mut out[i..i + 1]),
            1
        );
    }
    assert_eq!((out[0], out[1]), (t1.batch(), t2.batch()));
    // Both fail; re-enqueued in reverse order they still come back as 1, 2, then 3.
    a.reenqueue(0, out[1]).unwrap();
    a.reenqueue(0, out[0]).unwrap();
    let mut order = Vec::new();
    for _ in 0..3 {
        let mut one = [BatchId {
            index: 0,
            generation: 0,
        }; 1];
        assert_eq!(a.drain(1_000, NodeId(1), 10_000, leader, meta, &mut one), 1);
        order.push(one[0]);
    }
    assert_eq!(order, [t1.batch(), t2.batch(), t3.batch()]);
}

/// Drains one batch of `tp(0)`-led partitions for `node` at `now`, stamping a fresh
/// batch with the next of `next` sequences (a retry keeps its own).
fn drain_one(a: &mut Acc, now: u64, node: i32, next: &mut i32) -> Option<BatchId> {
    let mut one = [BatchId::PLACEHOLDER; 1];
    let n = a.drain(
        now,
        NodeId(node),
        10_000,
        |_| Some(NodeId(node)),
        |b: &ProducerBatch| match b.producer_state() {
            Some(s) => BatchMeta::idempotent(s.producer_id, s.producer_epoch, s.base_sequence),
            None => {
                let seq = *next;
                *next += b.record_count() as i32;
                BatchMeta::idempotent(7, 0, seq)
            }
        },
        &mut one,
    );
    (n == 1).then_some(one[0])
}

#[test]
fn idempotent_drain_pipelines_a_partition_to_one_broker_and_resends_one_at_a_time() {
    let mut a = acc(cfg());
    a.set_idempotent(true);
    let v = [0u8; 150];
    let tickets: Vec<Ticket> = (0..4)
        .map(|_| a.append(0, tp(0), &rec(&v)).unwrap().ticket)
        .collect();
    a.begin_flush();
    let mut next = 0;
    // Until the broker acknowledged one (and holds the producer's state), one at a time.
    let first = drain_one(&mut a, 0, 1, &mut next).unwrap();
    assert_eq!(drain_one(&mut a, 0, 1, &mut next), None);
    a.confirm_sequences(tp(0));
    // Three batches of the partition in flight to broker 1, sequences in order.
    let mut drained = std::vec![first];
    drained.extend((0..2).map(|_| drain_one(&mut a, 0, 1, &mut next).unwrap()));
    let seqs: Vec<i32> = drained
        .iter()
        .map(|&id| a.batch(id).unwrap().producer_state().unwrap().base_sequence)
        .collect();
    assert_eq!(seqs, [0, 1, 2]);
    assert_eq!(a.in_flight(tp(0)), (3, false));
    assert_eq!(a.partition_in_flight_max(), 3);
    // The leader moved: nothing goes to broker 2 while broker 1 has batches in flight.
    assert_eq!(drain_one(&mut a, 0, 2, &mut next), None);
    // The first fails and is retried: it goes at once (the lowest sequence), alone.
    a.reenqueue(0, drained[0]).unwrap();
    assert_eq!(a.in_flight(tp(0)), (2, false));
    let retry = drain_one(&mut a, 1_000, 1, &mut next).unwrap();
    assert_eq!(retry, tickets[0].batch());
    assert!(a.batch(retry).unwrap().is_resend());
    assert_eq!(a.in_flight(tp(0)), (3, true));
    // The second comes back out of order: it waits for the first's answer.
    a.reenqueue(0, drained[1]).unwrap();
    assert_eq!(drain_one(&mut a, 2_000, 1, &mut next), None);
    a.answered(retry);
    let second = drain_one(&mut a, 2_000, 1, &mut next).unwrap();
    assert_eq!(second, tickets[1].batch());
    assert_eq!(
        a.batch(second)
            .unwrap()
            .producer_state()
            .unwrap()
            .base_sequence,
        1,
        "a retry keeps its sequence"
    );
    // A new batch goes after a resend in flight, with the next sequence.
    let fourth = drain_one(&mut a, 2_000, 1, &mut next).unwrap();
    assert_eq!(fourth, tickets[3].batch());
    assert_eq!(
        a.batch(fourth)
            .unwrap()
            .producer_state()
            .unwrap()
            .base_sequence,
        3
    );
    for id in [second, drained[2], fourth] {
        a.answered(id);
    }
    assert_eq!(a.in_flight(tp(0)), (0, false));
}

#[test]
fn idempotent_queued_batches_wait_for_the_partitions_in_flight_ones_to_expire() {
    let mut a = acc(AccumulatorConfig {
        delivery_timeout_ms: 1_000,
        ..cfg()
    });
    a.set_idempotent(true);
    let v = [0u8; 150];
    a.append(0, tp(0), &rec(&v)).unwrap();
    let second = a.append(0, tp(0), &rec(&v)).unwrap().ticket;
    let mut next = 0;
    let first = drain_one(&mut a, 0, 1, &mut next).unwrap();
    assert_eq!(
        a.first_expired(5_000),
        None,
        "its partition has a batch in flight"
    );
    a.answered(first);
    assert_eq!(a.first_expired(5_000), Some(second.batch()));
}

#[test]
fn shifting_sequences_back_restamps_the_queued_batches() {
    let mut a = acc(cfg());
    a.set_idempotent(true);
    let v = [0u8; 150];
    for _ in 0..3 {
        a.append(0, tp(0), &rec(&v)).unwrap();
    }
    a.begin_flush();
    a.confirm_sequences(tp(0));
    let mut next = 0;
    let ids: Vec<BatchId> = (0..3)
        .map(|_| drain_one(&mut a, 0, 1, &mut next).unwrap())
        .collect();
    // The first fails for good; the other two come back unwritten.
    a.answered(ids[0]);
    a.reenqueue(0, ids[1]).unwrap();
    a.reenqueue(0, ids[2]).unwrap();
    a.shift_sequences_back(tp(0), 1);
    for (id, want) in [(ids[1], 0), (ids[2], 1)] {
        assert_eq!(
            a.batch(id).unwrap().producer_state().unwrap().base_sequence,
            want
        );
        let h = crate::record::RecordBatchHeader::new_checked(a.batch_bytes(id).unwrap()).unwrap();
        assert_eq!(h.base_sequence(), want);
        assert_eq!(h.verify_crc(), Ok(()));
    }
}

#[test]
fn expire_after_delivery_timeout() {
    let mut a = acc(cfg());
    let t = a.append(0, tp(0), &rec(b"a")).unwrap().ticket;
    a.append(500, tp(1), &rec(b"b")).unwrap();
    let mut out = [ReleasedBatch {
        topic_partition: tp(0),
        tickets: TicketRange {
            batch: t.batch(),
            first_index: 0,
            count: 0,
        },
    }; 4];
    assert_eq!(a.expire(999, &mut out), 0);
    assert_eq!(a.expire(1_000, &mut out), 1);
    assert!(out[0].tickets.contains(t));
    assert_eq!(a.batch_count(), 1);
    assert_eq!(a.expire(1_500, &mut out), 1);
    assert_eq!(a.pool().used_slots(), 0);
    assert!(!a.has_incomplete());
}

#[test]
fn flush_makes_everything_ready_and_abort_releases() {
    let mut a = acc(cfg());
    let t = a.append(0, tp(0), &rec(b"a")).unwrap().ticket;
    let mut nodes = heapless::Vec::<NodeId, 4>::new();
    a.ready(0, leader, &mut nodes);
    assert!(nodes.is_empty());
    a.begin_flush();
    a.ready(0, leader, &mut nodes);
    assert_eq!(nodes.len(), 1);
    a.flush_done();
    assert!(!a.flush_in_progress());
    let unknown = a.ready(0, |_| None, &mut heapless::Vec::<NodeId, 4>::new());
    assert!(unknown.unknown_leader);

    let id = a.first_queued().unwrap();
    assert_eq!(id, t.batch());
    assert_eq!(
        a.complete(id),
        Err(AccumulatorError::InvalidState {
            state: BatchState::Open
        })
    );
    let released = a.abort(id).unwrap();
    assert_eq!(released.tickets.iter().collect::<Vec<_>>(), [t]);
    assert!(!a.has_undrained());
    assert_eq!(a.pool().used_slots(), 0);
}

#[test]
fn restamp_in_flight_batch() {
    let mut a = acc(cfg());
    a.append(0, tp(0), &rec(b"a")).unwrap();
    let mut out = [BatchId {
        index: 0,
        generation: 0,
    }; 1];
    a.drain(
        0,
        NodeId(1),
        10_000,
        leader,
        |_| BatchMeta::idempotent(7, 0, 0),
        &mut out,
    );
    a.set_producer_state(out[0], 7, 1, 0).unwrap();
    let bytes = a.batch_bytes(out[0]).unwrap();
    let batch = RecordBatchReader::new(bytes).next().unwrap().unwrap();
    assert_eq!(batch.header().producer_epoch(), 1);
}

#[test]
fn retry_backoff_grows_to_max() {
    let mut a = acc(cfg());
    a.set_retry_backoff_max_ms(250);
    a.append(0, tp(0), &rec(b"a")).unwrap();
    let mut out = [BatchId::default(); 1];
    assert_eq!(a.drain(0, NodeId(1), 10_000, leader, meta, &mut out), 1);
    let mut nodes = heapless::Vec::<NodeId, 4>::new();
    // Attempt 1: 100 ms, attempt 2: 200 ms, attempt 3: 250 ms (capped).
    for (attempt, backoff) in [(1u64, 100u64), (2, 200), (3, 250)] {
        let t = attempt * 1_000;
        a.reenqueue(t, out[0]).unwrap();
        let check = a.ready(t, leader, &mut nodes);
        assert!(nodes.is_empty());
        assert_eq!(check.next_ready_check_delay_ms, Some(backoff));
        assert_eq!(
            a.drain(t + backoff - 1, NodeId(1), 10_000, leader, meta, &mut out),
            0
        );
        assert_eq!(
            a.drain(t + backoff, NodeId(1), 10_000, leader, meta, &mut out),
            1
        );
    }
}

#[test]
fn a_retry_to_a_new_leader_skips_its_backoff() {
    let mut a = acc(cfg());
    a.append(0, tp(0), &rec(b"a")).unwrap();
    let mut out = [BatchId::default(); 1];
    assert_eq!(a.drain(0, NodeId(1), 10_000, leader, meta, &mut out), 1);
    a.reenqueue(1_000, out[0]).unwrap();
    let mut nodes = heapless::Vec::<NodeId, 4>::new();
    // Still led by broker 1, the one that failed: the backoff holds.
    a.ready(1_000, leader, &mut nodes);
    assert!(nodes.is_empty());
    assert_eq!(a.drain(1_000, NodeId(1), 10_000, leader, meta, &mut out), 0);
    // Broker 2 leads now: ready and drained at once, 99 ms before the backoff ends.
    let moved = |_: TopicPartition| Some(NodeId(2));
    let check = a.ready(1_001, moved, &mut nodes);
    assert_eq!(nodes.as_slice(), &[NodeId(2)]);
    assert_eq!(check.next_ready_check_delay_ms, None);
    assert_eq!(a.drain(1_001, NodeId(2), 10_000, moved, meta, &mut out), 1);
    // Failing on broker 2 as well, its next retry there waits its backoff.
    a.reenqueue(2_000, out[0]).unwrap();
    nodes.clear();
    a.ready(2_000, moved, &mut nodes);
    assert!(nodes.is_empty());
    assert_eq!(a.drain(2_099, NodeId(2), 10_000, moved, meta, &mut out), 0);
    assert_eq!(a.drain(2_100, NodeId(2), 10_000, moved, meta, &mut out), 1);
}

#[test]
fn detach_and_first_expired() {
    let mut a = acc(cfg());
    let t0 = a.append(0, tp(0), &rec(b"a")).unwrap().ticket;
    a.append(600, tp(1), &rec(b"b")).unwrap();
    assert_eq!(a.first_expired(999), None);
    assert_eq!(a.first_expired(1_000), Some(t0.batch()));
    a.detach(t0.batch()).unwrap();
    assert_eq!(
        a.detach(t0.batch()),
        Err(AccumulatorError::InvalidState {
            state: BatchState::InFlight
        })
    );
    assert_eq!(a.first_expired(1_000), None);
    assert_eq!(a.queued_batches(tp(0)), 0);
    assert_eq!(a.heads().count(), 1);
    let mut out = [BatchId::default(); 2];
    assert_eq!(a.drain(1_000, NodeId(1), 10_000, leader, meta, &mut out), 1);
    let released = a.complete(t0.batch()).unwrap();
    assert!(released.tickets.contains(t0));
    assert_eq!(a.batch_count(), 1);
}

#[test]
fn a_muted_partition_expires_nothing_until_its_batch_in_flight_has_an_outcome() {
    let mut a = acc(cfg());
    a.append(0, tp(0), &rec(b"a")).unwrap();
    let mut out = [BatchId::default(); 1];
    assert_eq!(a.drain(10, NodeId(1), 10_000, leader, meta, &mut out), 1);
    a.mute(tp(0)).unwrap();
    let queued = a.append(20, tp(0), &rec(b"b")).unwrap().ticket.batch();
    // Past the queued batch's delivery timeout, but its elder is still in flight.
    let mut nodes = heapless::Vec::<NodeId, 4>::new();
    let check = a.ready(2_000, leader, &mut nodes);
    assert_eq!(check.next_expiry_delay_ms, None, "no timer for it either");
    assert_eq!(a.first_expired(2_000), None);
    let mut released = [ReleasedBatch::default(); 2];
    assert_eq!(a.expire(2_000, &mut released), 0);
    // The elder's outcome unmutes the partition: now it expires.
    a.complete(out[0]).unwrap();
    a.unmute(tp(0));
    let check = a.ready(2_000, leader, &mut nodes);
    assert_eq!(check.next_expiry_delay_ms, Some(0));
    assert_eq!(a.first_expired(2_000), Some(queued));
    assert_eq!(a.expire(2_000, &mut released), 1);
}

#[derive(Debug, Clone)]
enum Op {
    Append { partition: i32, len: usize },
    Advance { ms: u64 },
    Drain { max: usize },
    Complete { pick: prop::sample::Index },
    Retry { pick: prop::sample::Index },
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0i32..4, 0usize..300).prop_map(|(partition, len)| Op::Append { partition, len }),
        2 => (0u64..400).prop_map(|ms| Op::Advance { ms }),
        2 => (100usize..2_000).prop_map(|max| Op::Drain { max }),
        2 => any::<prop::sample::Index>().prop_map(|pick| Op::Complete { pick }),
        1 => any::<prop::sample::Index>().prop_map(|pick| Op::Retry { pick }),
        1 => Just(Op::Expire),
    ]
}

proptest! {
    /// Every accepted ticket is released exactly once (completed or expired), records of
    /// a partition are drained in append order, and no slot leaks.
    #[test]
    fn prop_every_ticket_exactly_once(
        ops in proptest::collection::vec(op(), 1..150),
        grow in any::<bool>(),
    ) {
        // With growth, batches of a partition not drained yet grow up to 4 slots.
        let batch_max_size = if grow { 4 * BATCH } else { 0 };
        let mut a = acc(AccumulatorConfig { max_request_size: 4_000, batch_max_size, ..cfg() });
        let mut now = 0u64;
        let mut accepted: Vec<(Ticket, TopicPartition, u64)> = Vec::new();
        let mut released: BTreeMap<Ticket, usize> = BTreeMap::new();
        let mut in_flight: Vec<BatchId> = Vec::new();
        let mut last_drained: BTreeMap<TopicPartition, u64> = BTreeMap::new();
        let mut seq_of: BTreeMap<BatchId, u64> = BTreeMap::new();
        let mut counter = 0u64;
        fn record_released(r: ReleasedBatch, released: &mut BTreeMap<Ticket, usize>) {
            for t in r.tickets.iter() { *released.entry(t).or_default() += 1; }
        }
        for op in ops {
            match op {
                Op::Append { partition, len } => {
                    let value = std::vec![counter as u8; len];
                    match a.append(now, tp(partition), &rec(&value)) {
                        Ok(r) => {
                            if r.ticket.index() == 0 { seq_of.insert(r.ticket.batch(), counter); }
                            accepted.push((r.ticket, tp(partition), counter));
                            counter += 1;
                        }
                        Err(e) => prop_assert!(e.is_backpressure(), "{e:?}"),
                    }
                }
                Op::Advance { ms } => now += ms,
                Op::Drain { max } => {
                    let mut out = [BatchId::default(); 8];
                    let n = a.drain(now, NodeId(1), max, leader, meta, &mut out);
                    for id in &out[..n] {
                        let b = a.batch(*id).unwrap();
                        let s = seq_of[id];
                        // Order within a partition: batches leave in creation order.
                        if let Some(&prev) = last_drained.get(&b.topic_partition()) {
                            prop_assert!(s > prev || b.attempts() > 0);
                        }
                        last_drained.insert(b.topic_partition(), s);
                        // The bytes are a valid batch with the right record count.
                        let bytes = a.batch_bytes(*id).unwrap();
                        let batch = RecordBatchReader::new(bytes).next().unwrap().unwrap();
                        prop_assert_eq!(batch.header().record_count() as u32, b.record_count());
                        in_flight.push(*id);
                    }
                }
                Op::Complete { pick } => {
                    if !in_flight.is_empty() {
                        let id = in_flight.swap_remove(pick.index(in_flight.len()));
                        record_released(a.complete(id).unwrap(), &mut released);
                    }
                }
                Op::Retry { pick } => {
                    if !in_flight.is_empty() {
                        let id = in_flight.swap_remove(pick.index(in_flight.len()));
                        a.reenqueue(now, id).unwrap();
                        // A retried batch may be drained again after younger ones were.
                        last_drained.remove(&a.batch(id).unwrap().topic_partition());
                    }
                }
                Op::Expire => {
                    let mut out = [ReleasedBatch::default(); 2];
                    loop {
                        let n = a.expire(now, &mut out);
                        for r in &out[..n] { record_released(*r, &mut released); }
                        if n < out.len() { break; }
                    }
                }
            }
            prop_assert!(a.pool().used_slots() <= 8);
        }
        // Wind down: flush everything out and complete it.
        a.begin_flush();
        for id in in_flight.drain(..) { record_released(a.complete(id).unwrap(), &mut released); }
        loop {
            // Past any retry backoff.
            now += 1_000;
            let mut out = [BatchId::default(); 8];
            let n = a.drain(now, NodeId(1), usize::MAX, leader, meta, &mut out);
            if n == 0 { break; }
            for id in &out[..n] { record_released(a.complete(*id).unwrap(), &mut released); }
        }
        prop_assert_eq!(a.batch_count(), 0);
        prop_assert_eq!(a.pool().used_slots(), 0);
        prop_assert_eq!(released.len(), accepted.len());
        for (t, _, _) in &accepted {
            prop_assert_eq!(released.get(t), Some(&1), "ticket {:?}", t);
        }
    }
}
