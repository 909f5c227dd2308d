//! Splitting a batch the broker refused as too large (Java's `splitAndReenqueue`): its
//! records are read back and re-encoded into smaller batches that keep its tickets. See
//! [`RecordAccumulator::split`].

use crate::pool::{BufferPool, Slot, SlotId};
use crate::record::{
    BatchBuilder, DecodedRecord, MAX_RECORD_OVERHEAD, RECORD_BATCH_OVERHEAD, RecordBatch,
    WriteError, increment_sequence,
};
use crate::storage::Table;
use crate::topic::NodeId;

use super::batch::{
    BatchEntry, BatchId, BatchState, ProducerBatch, ProducerState, UNCOMPRESSED_PPM, batch_at, ix,
};
use super::queue::{PartitionQueue, for_topic_queues, next_of, set_next};
use super::{AccumulatorError, RecordAccumulator};

/// The records of a closed (uncompressed) batch.
fn closed_records(bytes: &[u8]) -> Result<crate::record::Records<'_>, AccumulatorError> {
    let invalid = |e| AccumulatorError::Write(WriteError::InvalidBatch(e));
    let (batch, _) = RecordBatch::parse(bytes).map_err(invalid)?;
    batch.records().map_err(invalid)
}

/// Bytes a batch of `record` alone may take once re-encoded (an upper bound).
fn split_upper_bound(record: &DecodedRecord<'_>) -> usize {
    // A length varint takes at most 5 bytes.
    let field = |b: Option<&[u8]>| b.map_or(1, |b| b.len().saturating_add(5));
    (RECORD_BATCH_OVERHEAD + MAX_RECORD_OVERHEAD + 5)
        .saturating_add(field(record.key))
        .saturating_add(field(record.value))
        .saturating_add(record.headers.raw().len())
}

/// Writes records of the closed batch in `from` (its first `closed_len` bytes), from index
/// `skip`, into a new batch in `to`: the first in up to `capacity` bytes, more while the
/// batch stays within `limit` bytes.
fn encode_split<S: AsRef<[u8]> + AsMut<[u8]>, P: Table<Slot>>(
    pool: &mut BufferPool<S, P>,
    from: SlotId,
    closed_len: usize,
    to: SlotId,
    capacity: usize,
    limit: usize,
    skip: u32,
) -> Result<BatchBuilder, AccumulatorError> {
    let (read, write) = pool
        .buffer_pair(from, to)
        .map_err(|_| AccumulatorError::UnknownBatch)?;
    let read = read
        .get(..closed_len)
        .ok_or(AccumulatorError::UnknownBatch)?;
    let write = write
        .get_mut(..capacity)
        .ok_or(AccumulatorError::UnknownBatch)?;
    let mut builder = BatchBuilder::start(write).map_err(AccumulatorError::Write)?;
    for record in closed_records(read)?.skip(skip as usize) {
        let record = record.map_err(|e| AccumulatorError::Write(WriteError::InvalidBatch(e)))?;
        let first = builder.is_empty();
        let bound = if first { capacity } else { limit.min(capacity) };
        let buf = write
            .get_mut(..bound)
            .ok_or(AccumulatorError::UnknownBatch)?;
        match builder.append_decoded(buf, &record) {
            Ok(_) => {}
            Err(WriteError::DoesNotFit { .. }) if !first => break,
            Err(e) => return Err(AccumulatorError::Write(e)),
        }
    }
    Ok(builder)
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, P: Table<Slot>, B: Table<BatchEntry>, Q: Table<PartitionQueue>>
    RecordAccumulator<S, P, B, Q>
{
    /// Splits in-flight batch `id`, which the broker refused as too large
    /// (`MESSAGE_TOO_LARGE`), into smaller batches queued at the front of its partition, in
    /// record order and before any later batch (Java's `splitAndReenqueue`); returns how
    /// many batches it made.
    ///
    /// - **Rule**: the records are read back from the batch's bytes and re-encoded in order
    ///   into new batches of at most half the batch's size; a record larger than that goes
    ///   alone. Every new batch has fewer records or half the bytes, so splitting again on
    ///   the same error ends with batches of one record, whose error is final.
    /// - **Tickets**: the new batches carry the original tickets
    ///   ([`ProducerBatch::tickets`]): their outcomes name the original batch id with a
    ///   sub-range of its indexes, so record `i` of a `Delivered` range is at
    ///   `base_offset + i` as always. The original's entry stays reserved until every one
    ///   of its records has been released, so no new batch takes its id meanwhile.
    /// - **State**: the new batches are closed for appends but not yet closed as batches:
    ///   [`drain`](Self::drain) closes them. With a sequence, the original's range is shared
    ///   among them (each from its first record's sequence, as Java's `ProducerBatch.split`),
    ///   so that batches of the partition sent after the original keep theirs. They keep the
    ///   original's creation time (`delivery.timeout.ms` counts from it) and start with no
    ///   failed attempt.
    /// - **Memory**: the new batches are written while the original still holds its slots,
    ///   which are freed only once every record was re-encoded. Without room for all of them
    ///   ([`AccumulatorError::Full`] or [`AccumulatorError::TooManyBatches`]) nothing
    ///   changed: the batch is still in flight and the caller decides (the sender retries it
    ///   as is, and splits on the next refusal).
    ///
    /// [`AccumulatorError::SingleRecord`] for a batch of one record, and a
    /// [`AccumulatorError::Write`] error if the bytes cannot be read back (a compressed
    /// batch); in both cases nothing changed.
    pub fn split(&mut self, now_ms: u64, id: BatchId) -> Result<u32, AccumulatorError> {
        let orig = *self.batch(id)?;
        if orig.state != BatchState::InFlight {
            return Err(AccumulatorError::InvalidState { state: orig.state });
        }
        let total = orig.record_count();
        if total < 2 {
            return Err(AccumulatorError::SingleRecord);
        }
        let q = self.queue_index(orig.topic_partition)?;
        let limit = orig.closed_len / 2;
        // The new batches, linked through `next` (not queued yet, so that a failure can undo).
        let mut chain: Option<(u32, u32)> = None;
        let mut done = 0u32;
        let mut pieces = 0u32;
        while done < total {
            match self.split_off(now_ms, &orig, done, limit) {
                Ok((i, count)) => {
                    match chain {
                        None => chain = Some((i, i)),
                        Some((first, last)) => {
                            set_next(&mut self.entries, last, Some(i));
                            chain = Some((first, i));
                        }
                    }
                    done = done.saturating_add(count);
                    pieces += 1;
                }
                Err(e) => {
                    let mut cur = chain.map(|(first, _)| first);
                    while let Some(i) = cur {
                        cur = next_of(&self.entries, i);
                        let taken = self.entries.get_mut(ix(i)).and_then(|e| e.batch.take());
                        if let Some(b) = taken {
                            let _ = self.pool.deallocate(b.slot);
                        }
                        self.free_entry(i);
                    }
                    if e == AccumulatorError::Full {
                        self.pool_exhausted = true;
                    }
                    return Err(e);
                }
            }
        }

        // Every record is re-encoded: the original's memory goes, and its request is over.
        self.answered(id);
        self.resolve_stamp(&orig);
        let _ = self.pool.deallocate(orig.slot);
        self.pool_exhausted = false;
        if orig.origin == id {
            // Its tickets are now pending in the new batches.
            if let Some(e) = self.entries.get_mut(id.index()) {
                e.batch = None;
                e.pending = total;
                e.next = None;
            }
        } else {
            // A batch of an earlier split: its records stay pending on the original's entry.
            self.free_entry(id.index);
        }
        self.batch_count = self.batch_count.saturating_add(pieces as usize) - 1;
        let Self {
            entries, queues, ..
        } = self;
        let mut cur = chain.map(|(first, _)| first);
        while let Some(i) = cur {
            cur = next_of(entries, i);
            let order = batch_at(entries, i).map_or((0, 0), ProducerBatch::order);
            if let Some(queue) = queues.get_mut(q) {
                queue.insert_in_order(entries, i, order);
            }
        }
        // The topic's `max.message.bytes` is below what its batches grew to: none of its
        // partitions' batches grow from now on.
        for_topic_queues(queues, q, |queue| queue.no_growth = true);
        Ok(pieces)
    }

    /// Re-encodes records of `orig` from index `skip` into a new batch (in a new entry,
    /// not queued): as many as fit in `limit` bytes, at least one. Returns the entry and
    /// how many records it took.
    fn split_off(
        &mut self,
        now_ms: u64,
        orig: &ProducerBatch,
        skip: u32,
        limit: usize,
    ) -> Result<(u32, u32), AccumulatorError> {
        let index = self.free_index().ok_or(AccumulatorError::TooManyBatches)?;
        let bytes = self
            .pool
            .buffer(orig.slot)
            .ok()
            .and_then(|b| b.get(..orig.closed_len))
            .ok_or(AccumulatorError::UnknownBatch)?;
        let first = closed_records(bytes)?
            .nth(skip as usize)
            .ok_or(AccumulatorError::Write(WriteError::Empty))?
            .map_err(|e| AccumulatorError::Write(WriteError::InvalidBatch(e)))?;
        // Room for the first record alone (never more than the original had: in a batch of
        // its own it has the smallest deltas), or for `limit` bytes of records.
        let capacity = split_upper_bound(&first).max(limit).min(orig.capacity);
        let slot = self
            .pool
            .allocate(capacity)
            .map_err(|_| AccumulatorError::Full)?;
        let built = encode_split(
            &mut self.pool,
            orig.slot,
            orig.closed_len,
            slot,
            capacity,
            limit,
            skip,
        );
        let builder = match built {
            Ok(b) => b,
            Err(e) => {
                let _ = self.pool.deallocate(slot);
                return Err(e);
            }
        };
        let Some(entry) = self.entries.get_mut(ix(index)) else {
            let _ = self.pool.deallocate(slot);
            return Err(AccumulatorError::TooManyBatches);
        };
        self.free_head = entry.next;
        entry.next = None;
        entry.pending = 0;
        entry.batch = Some(ProducerBatch {
            topic_partition: orig.topic_partition,
            slot,
            builder,
            capacity,
            ready_at: capacity,
            closed_len: 0,
            created_ms: orig.created_ms,
            last_attempt_ms: now_ms,
            attempts: 0,
            sent_to: NodeId(-1),
            state: BatchState::Full,
            seq: orig.seq,
            origin: orig.origin,
            origin_first: orig.origin_first.saturating_add(skip),
            write_limit: 0,
            ratio: orig.ratio,
            compression_ppm: UNCOMPRESSED_PPM,
            // Java's `ProducerBatch.split`: the batches keep the original's sequence range,
            // each from its first record's sequence, so later batches keep theirs.
            producer_state: orig.producer_state.map(|s| ProducerState {
                base_sequence: increment_sequence(
                    s.base_sequence,
                    i32::try_from(skip).unwrap_or(i32::MAX),
                ),
                ..s
            }),
            // A fresh place in the window when drained (see `PartitionQueue::window_full`).
            stamp: None,
            in_request: false,
            resend: false,
        });
        Ok((index, builder.record_count()))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::testing::*;
    use super::super::{AccumulatorConfig, Ticket};
    use super::*;
    use crate::topic::NodeId;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    fn drain_one(a: &mut Acc, now: u64) -> Option<BatchId> {
        let mut out = [BatchId::default(); 1];
        (a.drain(now, NodeId(1), usize::MAX, leader, meta, &mut out) == 1).then_some(out[0])
    }

    #[test]
    fn split_requeues_halves_in_order_with_the_original_tickets() {
        let mut a = acc(cfg());
        let values: Vec<Vec<u8>> = (0..10u8).map(|i| std::vec![i; 5]).collect();
        let tickets: Vec<Ticket> = values
            .iter()
            .map(|v| a.append(0, tp(0), &rec(v)).unwrap().ticket)
            .collect();
        let orig = tickets[0].batch();
        assert!(tickets.iter().all(|t| t.batch() == orig));
        let id = drain_one(&mut a, 0).unwrap();
        assert_eq!(id, orig);
        let size = a.batch(id).unwrap().size_in_bytes();
        // A later batch of the same partition, queued meanwhile.
        let later = a.append(5, tp(0), &rec(b"later")).unwrap().ticket;

        assert_eq!(a.split(7, id), Ok(5));
        assert_eq!(a.batch(id).err(), Some(AccumulatorError::UnknownBatch));
        assert_eq!(a.queued_batches(tp(0)), 6);
        assert_eq!(a.batch_count(), 6);
        // The pieces come first, in record order, then the later batch.
        a.mute(tp(1)).unwrap();
        let mut seen = Vec::new();
        let mut released = Vec::new();
        while let Some(piece) = drain_one(&mut a, 7) {
            let b = *a.batch(piece).unwrap();
            if b.tickets().batch() == later.batch() {
                assert_eq!(seen.len(), 10, "the later batch goes last");
                assert!(a.complete(piece).unwrap().tickets.contains(later));
                continue;
            }
            assert!(b.size_in_bytes() <= size / 2 || b.record_count() == 1);
            assert_eq!(b.attempts(), 0);
            assert_eq!(b.created_ms(), 0);
            let r = b.tickets();
            assert_eq!(r.batch(), orig);
            assert_eq!(r.first_index() as usize, seen.len());
            seen.extend(values_of(&a, piece));
            // Reserved: appends meanwhile never take the original's entry.
            let t = a.append(8, tp(1), &rec(b"x")).unwrap().ticket;
            assert_ne!(t.batch().index(), orig.index());
            let rel = a.complete(piece).unwrap();
            assert_eq!(rel.tickets, r);
            released.push(rel.tickets);
        }
        assert_eq!(seen, values);
        for t in &tickets {
            assert_eq!(released.iter().filter(|r| r.contains(*t)).count(), 1);
        }
        // Once every record is released, the entry is free again with a new generation.
        let mut reused = None;
        for i in 0..12 {
            match a.append(9, tp(2), &rec(&[i; 200])) {
                Ok(r) if r.ticket.batch().index() == orig.index() => {
                    reused = Some(r.ticket.batch());
                    break;
                }
                Ok(_) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        let reused = reused.expect("the original entry is reused");
        assert_eq!(reused.generation(), orig.generation() + 1);
    }

    #[test]
    fn split_again_and_single_records() {
        let mut a = acc(cfg());
        let big = [9u8; 100];
        let tickets: Vec<Ticket> = [&b"a"[..], &big, b"b"]
            .iter()
            .map(|v| a.append(0, tp(0), &rec(v)).unwrap().ticket)
            .collect();
        let id = drain_one(&mut a, 0).unwrap();
        // 61 + 8 + 107 + 8 = 184 bytes: halves of 92; the big record goes alone.
        assert_eq!(a.split(0, id), Ok(3));
        let p0 = drain_one(&mut a, 0).unwrap();
        assert_eq!(a.batch(p0).unwrap().record_count(), 1);
        assert_eq!(a.split(0, p0), Err(AccumulatorError::SingleRecord));
        let r0 = a.complete(p0).unwrap().tickets;
        let p1 = drain_one(&mut a, 0).unwrap();
        assert_eq!(values_of(&a, p1), [big.to_vec()]);
        let r1 = a.complete(p1).unwrap().tickets;
        let p2 = drain_one(&mut a, 0).unwrap();
        let r2 = a.complete(p2).unwrap().tickets;
        assert_eq!(
            [r0, r1, r2].map(|r| (r.first_index(), r.count())),
            [(0, 1), (1, 1), (2, 1)]
        );
        for (t, r) in tickets.iter().zip([r0, r1, r2]) {
            assert!(r.contains(*t));
        }
        assert_eq!(a.pool().used_slots(), 0);
        assert_eq!(a.batch_count(), 0);
        assert!(
            a.entries
                .iter()
                .all(|e| e.batch.is_none() && e.pending == 0)
        );

        // A piece of a piece still carries the original tickets.
        let mut a = acc(cfg());
        let tickets: Vec<Ticket> = (0..12u8)
            .map(|i| a.append(0, tp(0), &rec(&[i; 8])).unwrap().ticket)
            .collect();
        let id = drain_one(&mut a, 0).unwrap();
        let n = a.split(0, id).unwrap();
        assert!(n >= 2);
        let p0 = drain_one(&mut a, 0).unwrap();
        let first = a.batch(p0).unwrap().tickets();
        assert!(first.count() > 1);
        assert!(a.split(0, p0).unwrap() >= 2);
        let mut ranges = Vec::new();
        while let Some(p) = drain_one(&mut a, 0) {
            ranges.push(a.complete(p).unwrap().tickets);
        }
        let mut next = 0;
        for r in &ranges {
            assert_eq!(r.batch(), tickets[0].batch());
            assert_eq!(r.first_index(), next);
            next += r.count();
        }
        assert_eq!(next, 12);
        assert!(
            a.entries
                .iter()
                .all(|e| e.batch.is_none() && e.pending == 0)
        );
    }

    #[test]
    fn split_without_room_changes_nothing() {
        let mut a = acc(cfg());
        for i in 0..3u8 {
            a.append(0, tp(0), &rec(&[i; 50])).unwrap();
        }
        let id = drain_one(&mut a, 0).unwrap();
        // Fill the rest of the pool (one record per slot).
        for p in 1..4 {
            a.append(0, tp(p), &rec(&[0u8; 150])).unwrap();
            a.append(0, tp(p), &rec(&[0u8; 150])).unwrap();
        }
        a.append(0, tp(1), &rec(&[0u8; 150])).unwrap();
        assert_eq!(a.pool().free_slots(), 0);
        assert_eq!(a.split(0, id), Err(AccumulatorError::Full));
        assert_eq!(a.batch(id).unwrap().state(), BatchState::InFlight);
        assert_eq!(a.batch_count(), 8);
        assert_eq!(a.complete(id).unwrap().tickets.count(), 3);
        // With room it works; a batch still queued cannot be split.
        let queued = a.first_queued().unwrap();
        assert!(matches!(
            a.split(0, queued),
            Err(AccumulatorError::InvalidState { .. })
        ));
    }

    #[derive(Debug, Clone)]
    enum SplitOp {
        Append {
            partition: i32,
            len: usize,
        },
        /// Drain one batch per partition and give each an outcome by its byte: complete,
        /// split (complete if it cannot be), or retry.
        Round {
            actions: Vec<u8>,
        },
    }

    fn split_op() -> impl Strategy<Value = SplitOp> {
        prop_oneof![
            4 => (0i32..3, 0usize..120).prop_map(|(partition, len)| SplitOp::Append { partition, len }),
            1 => proptest::collection::vec(any::<u8>(), 3).prop_map(|actions| SplitOp::Round { actions }),
        ]
    }

    proptest! {
        /// With splits, retries and completions in any order: every ticket is released
        /// exactly once, each released range's records are the records appended under those
        /// tickets, each partition delivers its records in append order, and no slot or
        /// entry leaks.
        #[test]
        fn prop_split_keeps_tickets_order_and_memory(
            ops in proptest::collection::vec(split_op(), 1..120)
        ) {
            let mut a = acc(AccumulatorConfig { max_request_size: 4_000, ..cfg() });
            let mut now = 0u64;
            let mut value_of: BTreeMap<Ticket, Vec<u8>> = BTreeMap::new();
            let mut appended: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
            let mut delivered: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
            let mut released: BTreeMap<Ticket, usize> = BTreeMap::new();
            let mut counter = 0u32;
            let deliver = |a: &mut Acc, id: BatchId,
                               delivered: &mut BTreeMap<i32, Vec<Vec<u8>>>,
                               released: &mut BTreeMap<Ticket, usize>,
                               value_of: &BTreeMap<Ticket, Vec<u8>>| {
                let values = values_of(a, id);
                let r = a.complete(id).unwrap();
                assert_eq!(r.tickets.count() as usize, values.len());
                for (t, v) in r.tickets.iter().zip(&values) {
                    assert_eq!(&value_of[&t], v, "ticket {:?}", t);
                    *released.entry(t).or_default() += 1;
                }
                delivered.entry(r.topic_partition.partition).or_default().extend(values);
            };
            let step = |a: &mut Acc, now: u64, actions: &[u8],
                            delivered: &mut BTreeMap<i32, Vec<Vec<u8>>>,
                            released: &mut BTreeMap<Ticket, usize>,
                            value_of: &BTreeMap<Ticket, Vec<u8>>| {
                let mut out = [BatchId::default(); 3];
                let n = a.drain(now, NodeId(1), usize::MAX, leader, meta, &mut out);
                for (k, id) in out[..n].iter().enumerate() {
                    match actions.get(k).copied().unwrap_or(0) % 3 {
                        0 => deliver(a, *id, delivered, released, value_of),
                        1 => match a.split(now, *id) {
                            Ok(_) => {}
                            Err(AccumulatorError::SingleRecord | AccumulatorError::Full
                                | AccumulatorError::TooManyBatches) => a.reenqueue(now, *id).unwrap(),
                            Err(e) => panic!("{e:?}"),
                        },
                        _ => a.reenqueue(now, *id).unwrap(),
                    }
                }
            };
            for op in ops {
                match op {
                    SplitOp::Append { partition, len } => {
                        let mut value = counter.to_le_bytes().to_vec();
                        value.resize(4 + len, 0xAB);
                        match a.append(now, tp(partition), &rec(&value)) {
                            Ok(r) => {
                                value_of.insert(r.ticket, value.clone());
                                appended.entry(partition).or_default().push(value);
                                counter += 1;
                            }
                            Err(e) => prop_assert!(e.is_backpressure(), "{e:?}"),
                        }
                    }
                    SplitOp::Round { actions } => {
                        // One batch per partition in flight at a time (as when muted):
                        // each drained batch gets its outcome before the next round.
                        now += 1_000;
                        step(&mut a, now, &actions, &mut delivered, &mut released, &value_of);
                    }
                }
                prop_assert!(a.pool().used_slots() <= 8);
            }
            a.begin_flush();
            for _ in 0..10_000 {
                if a.batch_count() == 0 { break; }
                now += 1_000;
                step(&mut a, now, &[0, 0, 0], &mut delivered, &mut released, &value_of);
            }
            prop_assert_eq!(a.batch_count(), 0);
            prop_assert_eq!(a.pool().used_slots(), 0);
            prop_assert!(a.entries.iter().all(|e| e.batch.is_none() && e.pending == 0));
            prop_assert_eq!(released.len(), value_of.len());
            prop_assert!(released.values().all(|&n| n == 1));
            prop_assert_eq!(delivered, appended);
        }
    }
}
