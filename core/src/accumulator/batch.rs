//! A batch and its handles: [`BatchId`] (a batch table index with a generation), the
//! [`Ticket`] of one record and the [`TicketRange`] of a batch's records, the
//! [`ProducerBatch`] itself (Java's `ProducerBatch`) and its [`BatchState`], and the
//! [`BatchEntry`] of the batch table that holds it.

use crate::backoff::exponential_backoff;
use crate::pool::SlotId;
use crate::record::{BatchBuilder, CompressionRatio, RECORD_BATCH_OVERHEAD};
use crate::topic::{NodeId, TopicPartition};

/// A handle to a batch, with a generation so that a handle kept after the batch was
/// released is detected ([`AccumulatorError::UnknownBatch`](super::AccumulatorError::UnknownBatch)). The default value is only a
/// placeholder for output arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BatchId {
    pub(super) index: u32,
    pub(super) generation: u32,
}

impl BatchId {
    /// A handle that names no batch (generation 0 of index 0 is a real batch, so this is
    /// only a placeholder to overwrite).
    pub(crate) const PLACEHOLDER: Self = Self {
        index: 0,
        generation: 0,
    };

    /// The batch table index.
    pub const fn index(&self) -> usize {
        self.index as usize
    }

    /// The generation of that table entry.
    pub const fn generation(&self) -> u32 {
        self.generation
    }
}

/// Names one accepted record: its batch and its index in the batch (= its offset delta).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket {
    pub(super) batch: BatchId,
    pub(super) index: u32,
}

impl Ticket {
    /// The record's batch.
    pub const fn batch(&self) -> BatchId {
        self.batch
    }

    /// The record's index in its batch; its offset is the batch's base offset plus this.
    pub const fn index(&self) -> u32 {
        self.index
    }
}

/// The tickets of the records of one batch: `first_index..first_index + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TicketRange {
    pub(super) batch: BatchId,
    pub(super) first_index: u32,
    pub(super) count: u32,
}

impl TicketRange {
    /// The batch.
    pub const fn batch(&self) -> BatchId {
        self.batch
    }

    /// Index of the first record covered.
    pub const fn first_index(&self) -> u32 {
        self.first_index
    }

    /// Number of records covered.
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// Whether `ticket` is one of these.
    pub const fn contains(&self, ticket: Ticket) -> bool {
        ticket.batch.index == self.batch.index
            && ticket.batch.generation == self.batch.generation
            && ticket.index >= self.first_index
            && ticket.index - self.first_index < self.count
    }

    /// The tickets, in record order.
    pub fn iter(&self) -> impl Iterator<Item = Ticket> + use<> {
        let batch = self.batch;
        (self.first_index..self.first_index.saturating_add(self.count))
            .map(move |index| Ticket { batch, index })
    }
}

/// Where a batch is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchState {
    /// Queued, last of its partition, accepting records.
    Open,
    /// Queued, closed for appends (a record did not fit), header not yet written.
    Full,
    /// Queued again after a failed attempt; bytes are final.
    Retry,
    /// Drained and not yet completed; bytes are final.
    InFlight,
}

/// What an idempotent producer stamps into a batch: producer id, epoch and base sequence
/// (Java's `ProducerBatch` producer state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerState {
    /// `producerId`.
    pub producer_id: i64,
    /// `producerEpoch`.
    pub producer_epoch: i16,
    /// `baseSequence` of the batch's first record.
    pub base_sequence: i32,
}

/// A batch of records of one partition (Java's `ProducerBatch`).
#[derive(Debug, Clone, Copy)]
pub struct ProducerBatch {
    pub(super) topic_partition: TopicPartition,
    pub(super) slot: SlotId,
    pub(super) builder: BatchBuilder,
    pub(super) capacity: usize,
    /// The size at which the batch is full enough to send: the capacity it opened with.
    /// A batch that grew past it (see [`AccumulatorConfig::batch_max_size`]) is ready from
    /// there on while it keeps taking records until it is drained.
    ///
    /// [`AccumulatorConfig::batch_max_size`]: super::AccumulatorConfig::batch_max_size
    pub(super) ready_at: usize,
    pub(super) closed_len: usize,
    pub(super) created_ms: u64,
    pub(super) last_attempt_ms: u64,
    pub(super) attempts: u32,
    /// The broker the batch was last sent to (`NodeId(-1)` before its first attempt): a
    /// retry whose partition has a new leader since skips its backoff (Java's
    /// `hasLeaderChangedForTheOngoingRetry`).
    pub(super) sent_to: NodeId,
    pub(super) state: BatchState,
    /// Creation order, to re-enqueue in order (a split batch keeps its original's).
    pub(super) seq: u64,
    /// The batch whose tickets the records carry: this one, or the original of a split.
    pub(super) origin: BatchId,
    /// Ticket index of the first record (0 unless split off a larger batch).
    pub(super) origin_first: u32,
    /// With compression, `batch.size`: the batch is full when its estimated compressed
    /// size reaches it (Java's write limit); 0 without compression (full when the slot is).
    pub(super) write_limit: usize,
    /// The partition's compression ratio estimate when the batch was opened.
    pub(super) ratio: CompressionRatio,
    /// Compressed over uncompressed record bytes when closed, in millionths (1,000,000
    /// for a batch closed uncompressed).
    pub(super) compression_ppm: u32,
    /// The sequence the batch carries once it has one (given at its first drain with
    /// idempotence, or taken from its original by a split): kept through retries.
    pub(super) producer_state: Option<ProducerState>,
    /// Its place in its partition's sequence window (see `PartitionQueue::window_full`),
    /// given when it is stamped with a sequence under the current epoch.
    pub(super) stamp: Option<u32>,
    /// In a Produce request now: drained, not yet answered.
    pub(super) in_request: bool,
    /// Drained last with a sequence it already had (a retry, or a batch of a split).
    pub(super) resend: bool,
}

/// The compression ratio of a batch sent uncompressed, in millionths.
pub(super) const UNCOMPRESSED_PPM: u32 = 1_000_000;

/// `compressed / uncompressed` in millionths, saturating (1,000,000 for empty records).
pub(super) fn ratio_ppm(compressed: usize, uncompressed: usize) -> u32 {
    if uncompressed == 0 {
        return UNCOMPRESSED_PPM;
    }
    let ppm = (compressed as u64).saturating_mul(1_000_000) / uncompressed as u64;
    u32::try_from(ppm).unwrap_or(u32::MAX)
}

impl ProducerBatch {
    /// The batch's partition.
    pub const fn topic_partition(&self) -> TopicPartition {
        self.topic_partition
    }

    /// Records in the batch.
    pub const fn record_count(&self) -> u32 {
        self.builder.record_count()
    }

    /// The tickets of the batch's records, in order. For a batch split off a larger one
    /// (see [`RecordAccumulator::split`](super::RecordAccumulator::split)) they are tickets of the original batch: record `i`
    /// of this batch is ticket `first_index() + i` of the original.
    pub const fn tickets(&self) -> TicketRange {
        TicketRange {
            batch: self.origin,
            first_index: self.origin_first,
            count: self.builder.record_count(),
        }
    }

    /// The producer id, epoch and base sequence the batch carries, once it has a sequence
    /// (see [`RecordAccumulator::drain`](super::RecordAccumulator::drain)).
    pub const fn producer_state(&self) -> Option<ProducerState> {
        self.producer_state
    }

    /// Whether its last drain sent it again with the sequence it already had (a retry, or
    /// a batch of a split): with idempotence such batches of a partition go one at a time.
    pub const fn is_resend(&self) -> bool {
        self.resend
    }

    /// Order within the partition queue: creation order, then (for the batches of a split)
    /// record order. With idempotence it is also sequence order within an epoch, since
    /// sequences are given at drain in queue order.
    pub(crate) const fn order(&self) -> (u64, u32) {
        (self.seq, self.origin_first)
    }

    /// Bytes of the batch: final once closed, so far otherwise.
    pub const fn size_in_bytes(&self) -> usize {
        match self.state {
            BatchState::Open | BatchState::Full => self.builder.size_in_bytes(),
            BatchState::Retry | BatchState::InFlight => self.closed_len,
        }
    }

    /// Its records section's compressed size over its uncompressed size, in millionths
    /// (1,000,000 when not compressed; Java's `ProducerBatch.compressionRatio`).
    pub const fn compression_ratio_ppm(&self) -> u32 {
        self.compression_ppm
    }

    /// Instant (`now_ms`) of creation.
    pub const fn created_ms(&self) -> u64 {
        self.created_ms
    }

    /// Failed attempts so far (re-enqueues).
    pub const fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The batch's state.
    pub const fn state(&self) -> BatchState {
        self.state
    }

    /// Whether the batch is full: closed, filled to the capacity it opened with, or
    /// (compressed) its estimated compressed size at `batch.size` (Java's
    /// `MemoryRecordsBuilder.isFull`). A batch that grew keeps taking records past it.
    pub(super) const fn is_full(&self) -> bool {
        !matches!(self.state, BatchState::Open)
            || self.builder.size_in_bytes() >= self.ready_at
            || (self.write_limit > 0 && self.estimated_size() >= self.write_limit)
    }

    /// The estimated size of the batch once compressed (Java's `estimatedBytesWritten`).
    pub(super) const fn estimated_size(&self) -> usize {
        self.ratio
            .estimated_size(RECORD_BATCH_OVERHEAD, self.builder.records_size())
    }

    /// Whether a record of `size` bytes stays within the write limit of a compressed batch
    /// (Java's `hasRoomFor`: `writeLimit >= estimatedBytesWritten() + recordSize`).
    pub(super) const fn has_room_for(&self, size: usize) -> bool {
        self.write_limit == 0 || self.estimated_size().saturating_add(size) <= self.write_limit
    }

    /// Milliseconds since creation or the last attempt (Java's `waitedTimeMs`).
    pub(super) const fn waited_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_attempt_ms)
    }

    /// Whether the batch waits out its retry backoff before going to `leader`: it was
    /// tried before, `retry_backoff_ms` has not passed, and the partition's leader is still
    /// the broker of its last attempt. A retry to a new leader goes at once, as Java's
    /// `shouldBackoff` decides with KIP-951 (the new leader is not the one that failed).
    pub(super) fn backing_off(&self, now_ms: u64, retry_backoff_ms: u64, leader: NodeId) -> bool {
        self.attempts > 0 && self.sent_to == leader && self.waited_ms(now_ms) < retry_backoff_ms
    }

    /// The backoff before retry number `attempts`: `base * 2^(attempts - 1)` up to `max`
    /// ([`exponential_backoff`] for `retry.backoff.ms` / `retry.backoff.max.ms`); `base` for
    /// a batch not retried yet (never backing off: the value is not used).
    pub(super) const fn retry_backoff(&self, base: u64, max: u64) -> u64 {
        let attempts = if self.attempts == 0 { 1 } else { self.attempts };
        exponential_backoff(attempts, base, max)
    }
}

/// A batch released by [`complete`](super::RecordAccumulator::complete),
/// [`abort`](super::RecordAccumulator::abort) or [`expire`](super::RecordAccumulator::expire): its
/// partition and the tickets of its records, which now have their outcome. The default
/// value is only a placeholder for output arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReleasedBatch {
    /// The batch's partition.
    pub topic_partition: TopicPartition,
    /// Its records.
    pub tickets: TicketRange,
}

/// One entry of the batch table (opaque; about 170 bytes): a batch, or a free entry.
#[derive(Debug, Clone, Copy)]
pub struct BatchEntry {
    pub(super) generation: u32,
    pub(super) batch: Option<ProducerBatch>,
    /// Records of this entry's tickets still waiting in the batches split off it: the entry
    /// stays reserved (its id unused by new batches) until they all have an outcome.
    pub(super) pending: u32,
    /// Next entry in the partition queue (live) or in the free list (free).
    pub(super) next: Option<u32>,
}

/// A batch table index as a `usize` (indexes are below the table's limit).
pub(super) const fn ix(i: u32) -> usize {
    i as usize
}

pub(super) fn batch_at(entries: &[BatchEntry], i: u32) -> Option<&ProducerBatch> {
    entries.get(ix(i)).and_then(|e| e.batch.as_ref())
}

pub(super) fn batch_at_mut(entries: &mut [BatchEntry], i: u32) -> Option<&mut ProducerBatch> {
    entries.get_mut(ix(i)).and_then(|e| e.batch.as_mut())
}
