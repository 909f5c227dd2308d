//! A partition's queue of batches: a linked list threaded through the batch table
//! (`BatchEntry::next`), oldest first, with its mute and hold flags.

use crate::record::CompressionRatio;
use crate::topic::{NodeId, TopicPartition};

use super::batch::{BatchEntry, ProducerBatch, batch_at, ix};

/// One entry of the partition queue table (opaque; 32 bytes): a partition's batches.
#[derive(Debug, Clone, Copy)]
pub struct PartitionQueue {
    pub(super) tp: TopicPartition,
    pub(super) head: Option<u32>,
    pub(super) tail: Option<u32>,
    pub(super) len: u32,
    pub(super) muted: bool,
    /// Held back until [`RecordAccumulator::release_holds`](super::RecordAccumulator::release_holds) (an epoch bump in progress).
    pub(super) held: bool,
    /// The compression ratio estimate of the topic's batches: Java keeps one per topic, so
    /// every queue of a topic holds the same ([`share_topic_ratio`]).
    pub(super) ratio: CompressionRatio,
    /// Batches of the partition in Produce requests now.
    pub(super) in_flight: u8,
    /// The broker those requests went to (meaningful while `in_flight > 0`).
    pub(super) in_flight_node: NodeId,
    /// One of them is a resend ([`ProducerBatch::is_resend`](super::ProducerBatch::is_resend)).
    pub(super) resend_in_flight: bool,
    /// The broker acknowledged a batch of the partition under the current producer epoch:
    /// it holds the producer's state there and checks sequences (see
    /// [`RecordAccumulator::confirm_sequences`](super::RecordAccumulator::confirm_sequences)).
    pub(super) confirmed: bool,
    /// The stamp the next batch given a sequence takes (see [`window_full`](Self::window_full)).
    pub(super) stamp_next: u32,
    /// The oldest stamp whose batch has no outcome yet (`stamp_next` when none).
    pub(super) stamp_base: u32,
    /// Bit `i`: the batch of stamp `stamp_base + i` has its outcome already.
    pub(super) stamp_done: u32,
    /// A batch of the partition was split after the broker refused it as too large: its
    /// batches no longer grow past the capacity they open with (the topic's
    /// `max.message.bytes` is below `batch.max.size`).
    pub(super) no_growth: bool,
}

/// Calls `f` on every queue of the topic of `queues[qi]`, that one included. The queues of a
/// topic are adjacent (the table is sorted by topic, then partition).
pub(super) fn for_topic_queues(
    queues: &mut [PartitionQueue],
    qi: usize,
    mut f: impl FnMut(&mut PartitionQueue),
) {
    let Some(topic) = queues.get(qi).map(|q| q.tp.topic) else {
        return;
    };
    let (before, after) = queues.split_at_mut(qi);
    let same = |q: &&mut PartitionQueue| q.tp.topic == topic;
    before.iter_mut().rev().take_while(same).for_each(&mut f);
    after.iter_mut().take_while(same).for_each(f);
}

/// Gives every queue of the topic of `queues[qi]` that queue's ratio estimate: the topic's
/// one estimate, as Java's `CompressionRatioEstimator` keeps it.
pub(super) fn share_topic_ratio(queues: &mut [PartitionQueue], qi: usize) {
    let Some(ratio) = queues.get(qi).map(|q| q.ratio) else {
        return;
    };
    for_topic_queues(queues, qi, |q| q.ratio = ratio);
}

/// The ratio estimate a new queue at `at` starts from: its topic's, when a neighbour is of
/// the same topic.
pub(super) fn topic_ratio(
    queues: &[PartitionQueue],
    at: usize,
    tp: TopicPartition,
) -> Option<CompressionRatio> {
    let left = at.checked_sub(1).and_then(|i| queues.get(i));
    [left, queues.get(at)]
        .into_iter()
        .flatten()
        .find(|q| q.tp.topic == tp.topic)
        .map(|q| q.ratio)
}

pub(super) fn set_next(entries: &mut [BatchEntry], i: u32, next: Option<u32>) {
    if let Some(e) = entries.get_mut(ix(i)) {
        e.next = next;
    }
}

pub(super) fn next_of(entries: &[BatchEntry], i: u32) -> Option<u32> {
    entries.get(ix(i)).and_then(|e| e.next)
}

impl PartitionQueue {
    pub(super) fn new(tp: TopicPartition) -> Self {
        Self {
            tp,
            head: None,
            tail: None,
            len: 0,
            muted: false,
            held: false,
            ratio: CompressionRatio::INITIAL,
            in_flight: 0,
            in_flight_node: NodeId(-1),
            resend_in_flight: false,
            confirmed: false,
            stamp_next: 0,
            stamp_base: 0,
            stamp_done: 0,
            no_growth: false,
        }
    }

    /// Whether a batch given a sequence now would have `window` or more batches of the
    /// partition stamped from the oldest one without an outcome, itself included.
    ///
    /// The broker keeps the sequences of a producer's last five batches of a partition
    /// (Kafka's `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`) to answer a resend of one it
    /// wrote with its offset: a resend older than those five is out of order, and nothing
    /// tells a written batch from a lost one any more. So a new batch takes a sequence only
    /// while the oldest batch without an outcome is among the last `window` (at most five)
    /// stamped, acknowledged ones after it included: counting batches in requests would not
    /// do, since the later ones may be acknowledged while the oldest waits for a resend.
    pub(super) const fn window_full(&self, window: u8) -> bool {
        self.stamp_next.wrapping_sub(self.stamp_base) >= window as u32
    }

    /// The stamp of a batch given a sequence now.
    pub(super) const fn take_stamp(&mut self) -> u32 {
        let s = self.stamp_next;
        self.stamp_next = s.wrapping_add(1);
        s
    }

    /// Batch stamp `stamp` has its outcome (or was split): the window moves past every
    /// stamp from the oldest that has its outcome. A stamp outside the window (of an
    /// earlier epoch) is ignored, as is one past the mask's 32 places: the window then
    /// stays full until [`resync_window`](Self::resync_window).
    pub(super) const fn resolve_stamp(&mut self, stamp: u32) {
        let d = stamp.wrapping_sub(self.stamp_base);
        if d >= 32 || d >= self.stamp_next.wrapping_sub(self.stamp_base) {
            return;
        }
        self.stamp_done |= 1 << d;
        while self.stamp_done & 1 == 1 {
            self.stamp_done >>= 1;
            self.stamp_base = self.stamp_base.wrapping_add(1);
        }
    }

    /// No batch of the partition has a stamp without an outcome (none in a request, none
    /// queued with a sequence; or a new epoch started the sequences over): the window is
    /// empty.
    pub(super) const fn resync_window(&mut self) {
        self.stamp_base = self.stamp_next;
        self.stamp_done = 0;
    }

    /// Whether the first batch `head` waits before going to `node` with idempotence (Java's
    /// `shouldStopDrainBatchesForPartition`; see
    /// [`RecordAccumulator::set_idempotent`](super::RecordAccumulator::set_idempotent)).
    pub(super) fn sequence_must_wait(&self, head: &ProducerBatch, node: NodeId) -> bool {
        self.in_flight > 0
            && (!self.confirmed
                || self.in_flight_node != node
                || (head.producer_state.is_some() && self.resend_in_flight))
    }

    pub(super) fn push_back(&mut self, entries: &mut [BatchEntry], i: u32) {
        set_next(entries, i, None);
        match self.tail {
            Some(t) => set_next(entries, t, Some(i)),
            None => self.head = Some(i),
        }
        self.tail = Some(i);
        self.len += 1;
    }

    pub(super) fn pop_front(&mut self, entries: &mut [BatchEntry]) -> Option<u32> {
        let head = self.head?;
        self.head = next_of(entries, head);
        if self.head.is_none() {
            self.tail = None;
        }
        set_next(entries, head, None);
        self.len -= 1;
        Some(head)
    }

    /// Inserts `i` before the first queued batch that comes after it (`order`: creation
    /// order, then record order for the batches of a split).
    pub(super) fn insert_in_order(
        &mut self,
        entries: &mut [BatchEntry],
        i: u32,
        order: (u64, u32),
    ) {
        let mut prev: Option<u32> = None;
        let mut cur = self.head;
        while let Some(c) = cur {
            if batch_at(entries, c).is_some_and(|b| b.order() > order) {
                break;
            }
            prev = Some(c);
            cur = next_of(entries, c);
        }
        set_next(entries, i, cur);
        match prev {
            Some(p) => set_next(entries, p, Some(i)),
            None => self.head = Some(i),
        }
        if cur.is_none() {
            self.tail = Some(i);
        }
        self.len += 1;
    }

    pub(super) fn remove(&mut self, entries: &mut [BatchEntry], i: u32) -> bool {
        let mut prev: Option<u32> = None;
        let mut cur = self.head;
        while let Some(c) = cur {
            if c == i {
                let next = next_of(entries, c);
                match prev {
                    Some(p) => set_next(entries, p, next),
                    None => self.head = next,
                }
                if self.tail == Some(c) {
                    self.tail = prev;
                }
                set_next(entries, c, None);
                self.len -= 1;
                return true;
            }
            prev = Some(c);
            cur = next_of(entries, c);
        }
        false
    }
}
