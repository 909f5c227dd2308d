//! Idempotence (the idempotent part of Java's `TransactionManager`): the producer id and
//! epoch from InitProducerId, a sequence number per partition stamped into each batch when
//! it is first drained, giving a sequence range back when a batch surely was not written,
//! and the epoch bump (KIP-360) when a gap cannot be closed. A batch that may have been
//! written under the current epoch is "unresolved": it is retried as it is, and the bump
//! waits until every such batch has its answer, or the broker would write it twice.
//!
//! Up to `max.in.flight.requests.per.connection` (at most five) batches of a partition are
//! in flight at once, in sequence order (the accumulator's drain keeps it, see
//! [`RecordAccumulator::set_idempotent`](crate::accumulator::RecordAccumulator::set_idempotent)).
//! When one fails, the later ones get OUT_OF_ORDER_SEQUENCE_NUMBER from the broker: they
//! are retried with their sequences after it, and only a batch right after the last one
//! acknowledged (a real gap) bumps the epoch, as Java's `canRetry`. A batch that fails for
//! good while later ones have sequences leaves a gap too: the epoch is bumped once nothing
//! is in flight. Outcomes still come in send order: see `Sender::outcome_must_wait`.
//! A new batch takes a sequence only while the partition's oldest batch without an answer
//! is among its last `max.in.flight.requests.per.connection` stamped (acknowledged ones
//! after it included), so that a resend of it is always one of the five the broker
//! remembers, and is answered with its offset rather than as out of order (see
//! [`RecordAccumulator::set_sequence_window`](crate::accumulator::RecordAccumulator::set_sequence_window)).

use crate::accumulator::{BatchId, BatchState, ProducerBatch, ReadyCheck};
use crate::backoff::exponential_backoff;
use crate::protocol::{ErrorCode, InitProducerIdRequest};
use crate::record::{
    BatchMeta, Compressor, RecordBatchHeader, decrement_sequence, increment_sequence,
};
use crate::storage::{Storage, Table};
use crate::topic::{TopicId, TopicPartition};

use super::connection::RequestKind;
use super::{BatchExtra, Io, Sender};

/// Where the producer id stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PidState {
    /// No producer id yet.
    None,
    /// InitProducerId in flight.
    Requesting,
    /// A producer id and epoch to use.
    Ready,
    /// The epoch must be bumped (unresolved sequences) before producing again.
    BumpNeeded,
}

/// One entry of the sequence table (opaque; 16 bytes): a partition's next sequence and the
/// last one the broker acknowledged (Java's `TxnPartitionEntry`), under the current epoch.
#[derive(Debug, Clone, Copy)]
pub struct SeqEntry {
    pub(super) tp: TopicPartition,
    pub(super) next: i32,
    /// The last sequence of the last batch acknowledged, -1 before any.
    pub(super) last_acked: i32,
}

/// See `Sender::is_unresolved`: batch `id` (`batch`, closed as `bytes`) waits for a retry,
/// may have been written, and carries producer id `pid` and epoch `epoch`.
fn unresolved(
    extras: &[BatchExtra],
    id: BatchId,
    batch: &ProducerBatch,
    bytes: &[u8],
    pid: i64,
    epoch: i16,
) -> bool {
    batch.state() == BatchState::Retry
        && extras
            .get(id.index())
            .is_some_and(|e| e.id == id && e.maybe_written)
        && RecordBatchHeader::new_checked(bytes)
            .is_ok_and(|h| h.producer_id() == pid && h.producer_epoch() == epoch)
}

/// The entry of `tp` in `sequences` (kept sorted by partition, for `O(log n)` lookups
/// among thousands of partitions), added with sequence 0 if missing and the table has
/// room (it holds as many entries as the partition queues, so it has).
fn sequence_entry<T: Table<SeqEntry>>(
    sequences: &mut T,
    tp: TopicPartition,
) -> Option<&mut SeqEntry> {
    let i = match sequences.binary_search_by_key(&tp, |s| s.tp) {
        Ok(i) => i,
        Err(at) => {
            sequences
                .push(SeqEntry {
                    tp,
                    next: 0,
                    last_acked: -1,
                })
                .ok()?;
            if let Some(tail) = sequences.get_mut(at..) {
                tail.rotate_right(1);
            }
            at
        }
    };
    sequences.get_mut(i)
}

/// The next sequence of `tp`: 0 for a partition without one under this epoch, which is
/// added to the table.
pub(super) fn next_sequence<T: Table<SeqEntry>>(sequences: &mut T, tp: TopicPartition) -> i32 {
    sequence_entry(sequences, tp).map_or(0, |s| s.next)
}

/// The producer state batch `b` is sent with under producer id `pid` and epoch `epoch`
/// (Java assigns sequences at drain): the one it carries when stamped under them (a retry,
/// a batch of a split), else the next sequence of its partition, which moves past the
/// batch's records.
pub(super) fn stamp<T: Table<SeqEntry>>(
    sequences: &mut T,
    b: &ProducerBatch,
    pid: i64,
    epoch: i16,
) -> BatchMeta {
    if let Some(s) = b.producer_state()
        && s.producer_id == pid
        && s.producer_epoch == epoch
    {
        return BatchMeta::idempotent(pid, epoch, s.base_sequence);
    }
    let count = i32::try_from(b.record_count()).unwrap_or(i32::MAX);
    let base = match sequence_entry(sequences, b.topic_partition()) {
        Some(s) => {
            let base = s.next;
            s.next = increment_sequence(base, count);
            base
        }
        None => 0,
    };
    BatchMeta::idempotent(pid, epoch, base)
}

/// Drops the sequences of `topic` (dropped from the metadata); returns whether one of its
/// partitions had used a sequence under the current epoch.
pub(super) fn forget_sequences<T: Table<SeqEntry>>(sequences: &mut T, topic: TopicId) -> bool {
    let used = sequences.iter().any(|s| s.tp.topic == topic && s.next != 0);
    sequences.retain(|s| s.tp.topic != topic);
    used
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage, C: Compressor> Sender<S, St, C> {
    // ---- producer id ---------------------------------------------------------------------

    pub(super) fn maybe_init_producer_id(&mut self, now_ms: u64, io: &mut Io<St>) {
        if !matches!(self.pid_state, PidState::None | PidState::BumpNeeded) {
            return;
        }
        if now_ms < self.init_producer_id_due_ms() {
            return;
        }
        if self.pid_state == PidState::BumpNeeded {
            // Bump only once no Produce request is in flight (their sequences are settled).
            let producing = self
                .conns
                .iter()
                .any(|c| c.in_flight.iter().any(|r| r.kind == RequestKind::Produce));
            if producing || self.has_unresolved() {
                return;
            }
        }
        let Some(k) = self.pick_ready_conn() else {
            self.want_any_connection(now_ms);
            return;
        };
        let Some(version) = self
            .conns
            .get(k)
            .and_then(|c| c.versions)
            .and_then(|v| v.init_producer_id)
        else {
            self.enter_fatal(ErrorCode::UNSUPPORTED_VERSION);
            return;
        };
        let mut request = InitProducerIdRequest::IDEMPOTENT;
        if self.pid_state == PidState::BumpNeeded && version >= 3 && self.producer_id >= 0 {
            // KIP-360: bump the epoch of the current producer id.
            request.producer_id = self.producer_id;
            request.producer_epoch = self.producer_epoch;
        }
        let bumping = self.pid_state == PidState::BumpNeeded;
        if self.send_request(
            now_ms,
            k,
            RequestKind::InitProducerId,
            version,
            &request,
            io,
        ) {
            self.pid_state = PidState::Requesting;
            self.pid_last_attempt_ms = now_ms;
            // Remember what a failure goes back to.
            self.pid_bumping = bumping;
        }
    }

    pub(super) fn init_producer_id_failed(&mut self, now_ms: u64) {
        if self.pid_state == PidState::Requesting {
            self.pid_state = if self.pid_bumping {
                PidState::BumpNeeded
            } else {
                PidState::None
            };
        }
        self.pid_attempts = self.pid_attempts.saturating_add(1);
        self.pid_last_attempt_ms = now_ms;
    }

    /// When the next InitProducerId may go: after the backoff of the attempts that failed.
    pub(super) fn init_producer_id_due_ms(&self) -> u64 {
        self.pid_last_attempt_ms.saturating_add(exponential_backoff(
            self.pid_attempts,
            self.config.retry_backoff_ms,
            self.config.retry_backoff_max_ms,
        ))
    }

    /// Asks for an epoch bump before producing again (Java's unresolved sequences), unless
    /// none can be asked for now (no producer id yet, or one is being requested or bumped).
    pub(super) fn bump_epoch_when_ready(&mut self) {
        if self.pid_state == PidState::Ready {
            self.pid_state = PidState::BumpNeeded;
        }
    }

    // ---- sequences -----------------------------------------------------------------------

    pub(super) fn next_sequence(&mut self, tp: TopicPartition) -> i32 {
        next_sequence(&mut self.sequences, tp)
    }

    pub(super) fn set_next_sequence(&mut self, tp: TopicPartition, next: i32) {
        if let Some(s) = sequence_entry(&mut self.sequences, tp) {
            s.next = next;
        }
    }

    /// Produces as `producer_id` and `epoch` from now on (InitProducerId, or EndTxn of
    /// transaction version 2): every partition's sequence starts over at 0, and since the
    /// brokers may hold no state for them yet, each partition sends one batch at a time
    /// until one is acknowledged, with an empty sequence window.
    pub(super) fn adopt_producer_id(&mut self, producer_id: i64, epoch: i16) {
        self.producer_id = producer_id;
        self.producer_epoch = epoch;
        self.pid_state = PidState::Ready;
        self.sequences.clear();
        self.acc.forget_confirmations();
        self.metrics.producer_id_changes += 1;
    }

    /// The broker acknowledged `stamp` (a batch of `tp`): its last sequence is the last
    /// acknowledged, under the current producer id and epoch (Java's
    /// `maybeUpdateLastAckedSequence`).
    pub(super) fn acknowledged(&mut self, tp: TopicPartition, stamp: (i64, i16, i32, i32)) {
        let (producer_id, epoch, base, count) = stamp;
        if producer_id != self.producer_id || epoch != self.producer_epoch || base < 0 {
            return;
        }
        self.acc.confirm_sequences(tp);
        let last = increment_sequence(base, count.saturating_sub(1));
        if let Some(s) = sequence_entry(&mut self.sequences, tp) {
            s.last_acked = s.last_acked.max(last);
        }
    }

    /// Whether `sequence` comes right after the last one acknowledged for `tp` (Java's
    /// `isNextSequence`): a batch there that the broker finds out of order is a real gap.
    pub(super) fn is_next_sequence(&mut self, tp: TopicPartition, sequence: i32) -> bool {
        sequence_entry(&mut self.sequences, tp)
            .is_some_and(|s| increment_sequence(s.last_acked, 1) == sequence)
    }

    /// The producer id, epoch, base sequence and record count batch `id` was sent with, if
    /// it had a sequence (in flight or waiting for a retry, with bytes).
    pub(super) fn sequence_stamp(&self, id: BatchId) -> Option<(i64, i16, i32, i32)> {
        let b = self.acc.batch(id).ok()?;
        if !matches!(b.state(), BatchState::InFlight | BatchState::Retry) {
            return None;
        }
        let bytes = self.acc.batch_bytes(id).ok()?;
        let h = RecordBatchHeader::new_checked(bytes).ok()?;
        Some((
            h.producer_id(),
            h.producer_epoch(),
            h.base_sequence(),
            h.record_count(),
        ))
    }

    /// The sequence range `stamp` of batch `id` (of `tp`), which will not be delivered under
    /// it, leaves a gap. When the broker surely did not write it, the gap is closed: the
    /// partition's next sequence is rewound to its base if no later batch has a sequence,
    /// or the later batches move back (Java's `adjustSequencesDueToFailedBatch`) if none
    /// of them is in a request or may have been written; else the epoch is bumped (Java's
    /// unresolved sequences). Only for the current producer id and epoch: after a bump the
    /// sequences start over anyway.
    pub(super) fn give_back_sequence(
        &mut self,
        tp: TopicPartition,
        id: BatchId,
        (producer_id, epoch, base, count): (i64, i16, i32, i32),
        maybe_written: bool,
        definitely_not_written: bool,
    ) {
        if producer_id != self.producer_id || epoch != self.producer_epoch {
            return;
        }
        let next = self.next_sequence(tp);
        if definitely_not_written && !maybe_written {
            if increment_sequence(base, count) == next {
                self.set_next_sequence(tp, base);
                return;
            }
            if self.later_sequences_movable(tp, id, increment_sequence(base, count), next) {
                self.acc.shift_sequences_back(tp, count);
                self.set_next_sequence(tp, decrement_sequence(next, count));
                return;
            }
        }
        self.bump_epoch_when_ready();
    }

    /// Whether the sequences after failed batch `id` of `tp`, from `from` up to `next`, are
    /// all carried by queued batches after it that were never written under the current
    /// epoch, so that they can move back over its range.
    fn later_sequences_movable(
        &self,
        tp: TopicPartition,
        id: BatchId,
        from: i32,
        next: i32,
    ) -> bool {
        let Ok(order) = self.acc.batch(id).map(ProducerBatch::order) else {
            return false;
        };
        if self.acc.in_flight(tp).0 > 0 || self.acc.queued_before(tp, order) {
            return false;
        }
        let mut expected = from;
        for q in self.acc.queued(tp) {
            let Ok(b) = self.acc.batch(q) else {
                return false;
            };
            let Some(s) = b.producer_state() else {
                continue;
            };
            let count = i32::try_from(b.record_count()).unwrap_or(i32::MAX);
            if s.producer_id != self.producer_id
                || s.producer_epoch != self.producer_epoch
                || s.base_sequence != expected
                || self.extra(q).is_some_and(|e| e.maybe_written)
            {
                return false;
            }
            expected = increment_sequence(expected, count);
        }
        expected == next
    }

    // ---- unresolved batches --------------------------------------------------------------

    /// Whether batch `id` was sent with the current producer id and epoch, may have been
    /// written, and waits for a retry: it must be resolved (retried with the same epoch and
    /// sequence, until the broker answers) before the epoch is bumped, or a bump would
    /// re-stamp it and the broker would write it twice.
    fn is_unresolved(&self, id: BatchId) -> bool {
        let Ok(b) = self.acc.batch(id) else {
            return false;
        };
        let bytes = self.acc.batch_bytes(id).unwrap_or_default();
        unresolved(
            &self.extras,
            id,
            b,
            bytes,
            self.producer_id,
            self.producer_epoch,
        )
    }

    fn has_unresolved(&self) -> bool {
        self.acc.heads().any(|id| self.is_unresolved(id))
    }

    /// While an epoch bump waits: sends only the batches that must be resolved first.
    pub(super) fn send_unresolved(&mut self, now_ms: u64, io: &mut Io<St>) -> ReadyCheck {
        let Self {
            acc,
            extras,
            producer_id,
            producer_epoch,
            ..
        } = self;
        acc.hold_where(|id, batch, bytes| {
            !unresolved(extras, id, batch, bytes, *producer_id, *producer_epoch)
        });
        let check = self.send_produce(now_ms, io);
        self.acc.release_holds();
        check
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_like_java() {
        assert_eq!(decrement_sequence(5, 5), 0);
        assert_eq!(decrement_sequence(0, 1), i32::MAX);
        assert_eq!(decrement_sequence(3, 5), i32::MAX - 1);
        assert_eq!(
            decrement_sequence(increment_sequence(i32::MAX - 1, 5), 5),
            i32::MAX - 1
        );
        // Java's DefaultRecordBatch.incrementSequence.
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(i32::MAX - 4, 5), 0);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 5), 3);
    }
}
