//! `RecordAccumulator`: per-partition queues of batches waiting to be sent.
//!
//! See [`RecordAccumulator`] for the life of a batch. The batch itself and its handles
//! ([`ProducerBatch`], [`BatchId`], [`Ticket`], [`TicketRange`]) are in `batch.rs`, a
//! partition's queue in `queue.rs`, [`drain`](RecordAccumulator::drain) (closing batches,
//! compressed or not, for a request) in `drain.rs`, and
//! [`split`](RecordAccumulator::split) (Java's `splitAndReenqueue`) in `split.rs`.

mod append;
mod batch;
mod drain;
mod queue;
mod split;

use core::fmt;

use crate::pool::{BufferPool, Slot, SlotId};
use crate::record::{CompressionType, WriteError, decrement_sequence, set_producer_state};
use crate::storage::Table;
use crate::topic::{NodeId, TopicPartition};

pub use batch::{
    BatchEntry, BatchId, BatchState, ProducerBatch, ProducerState, ReleasedBatch, Ticket,
    TicketRange,
};
use batch::{batch_at, batch_at_mut, ix};
pub use queue::PartitionQueue;

/// Settings of the accumulator, named after the Java producer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccumulatorConfig {
    /// `linger.ms`: how long a batch that is not full waits for more records.
    pub linger_ms: u64,
    /// `delivery.timeout.ms`: how long after its creation a queued batch expires.
    pub delivery_timeout_ms: u64,
    /// `retry.backoff.ms`: how long a re-enqueued batch waits before being sent again.
    pub retry_backoff_ms: u64,
    /// `max.request.size`: the largest record (with its batch overhead) accepted.
    pub max_request_size: usize,
    /// Whether a batch takes records until its slot is full; `false` (Java's
    /// `batch.size=0`) closes every batch after its first record.
    pub batching: bool,
    /// `compression.type`: the codec batches are closed with (feature `compression`; see
    /// [`record::Compressor`](crate::record::Compressor)).
    pub compression: CompressionType,
    /// The codec's level (`compression.gzip.level`, ...), handed to the compressor.
    pub compression_level: i32,
    /// `batch.size`: with compression, a batch is full when its estimated compressed size
    /// reaches it; without, a batch is full when its slot is.
    pub batch_size: usize,
    /// `batch.max.size` (KIP-782): an uncompressed batch full at `batch.size` that cannot be
    /// sent yet (its partition has batches in requests, is muted or held, or has batches
    /// queued before it) keeps taking records, growing in the pool up to this many bytes,
    /// instead of closing; once drained it gives back the slots it does not use. One batch
    /// per partition goes in a Produce request, so a hot partition otherwise moves at most
    /// `max.in.flight.requests.per.connection` x `batch.size` per round trip. At most
    /// the pool's slot size (such as 0, the default here): batches never grow, as in Java.
    pub batch_max_size: usize,
}

impl AccumulatorConfig {
    /// The Java producer's defaults (Kafka 4.x): `linger.ms=5`, `delivery.timeout.ms=120000`,
    /// `retry.backoff.ms=100`, `max.request.size=1048576`; batches do not grow.
    pub const DEFAULT: Self = Self {
        linger_ms: 5,
        delivery_timeout_ms: 120_000,
        retry_backoff_ms: 100,
        max_request_size: 1_048_576,
        batching: true,
        compression: CompressionType::None,
        compression_level: 0,
        batch_size: crate::config::DEFAULT_BATCH_SIZE,
        batch_max_size: 0,
    };
}

impl Default for AccumulatorConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What [`RecordAccumulator::append`] did (Java's `RecordAppendResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// The record's ticket.
    pub ticket: Ticket,
    /// The partition has a batch ready to send by size (more than one batch queued, or the
    /// last one full): a hint to wake the sender.
    pub batch_is_full: bool,
    /// A new batch was opened for this record.
    pub new_batch_created: bool,
    /// Bytes the record took in its batch; in a compressed batch, the estimated compressed
    /// bytes (Java's growth of `estimatedSizeInBytes`), so that the sticky partitioner
    /// switches after about one `batch.size` of compressed bytes, as Java's.
    pub appended_bytes: usize,
    /// Whether the partition's last batch is full after this append (Java's
    /// `allBatchesFull`), for [`Partitioner::on_append`](crate::Partitioner::on_append).
    pub all_batches_full: bool,
}

/// Why a record was not accepted. Nothing was changed by a failed append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppendError {
    /// The record's batch size upper bound exceeds `max.request.size` or the whole pool
    /// (Java's `RecordTooLargeException`); it can never be sent.
    RecordTooLarge {
        /// The record's size upper bound, batch overhead included.
        size: usize,
        /// The limit it exceeds.
        max: usize,
    },
    /// Backpressure: the pool has no free memory for a new batch (Java would block up to
    /// `max.block.ms`). Retry after batches complete; the record is still the caller's.
    Full,
    /// Backpressure: every entry of the batch table is in use.
    TooManyBatches,
    /// Every entry of the partition queue table is in use by other partitions.
    TooManyPartitions,
    /// The timestamp is negative and not -1.
    InvalidTimestamp {
        /// The rejected timestamp.
        timestamp: i64,
    },
}

impl AppendError {
    /// Whether the error is transient backpressure (retry after batches complete).
    pub const fn is_backpressure(&self) -> bool {
        matches!(self, Self::Full | Self::TooManyBatches)
    }
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::RecordTooLarge { size, max } => write!(
                f,
                "the message is {size} bytes when serialized, which is larger than {max}"
            ),
            Self::Full => f.write_str("buffer memory exhausted"),
            Self::TooManyBatches => f.write_str("too many batches in flight or queued"),
            Self::TooManyPartitions => f.write_str("too many partitions"),
            Self::InvalidTimestamp { timestamp } => {
                write!(f, "invalid negative timestamp {timestamp}")
            }
        }
    }
}

impl core::error::Error for AppendError {}

/// Why an operation on a batch or partition failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccumulatorError {
    /// The batch id is stale (released) or was never issued.
    UnknownBatch,
    /// The batch is not in a state that allows this (for example completing a batch that
    /// was never drained).
    InvalidState {
        /// The batch's state.
        state: BatchState,
    },
    /// Every entry of the partition queue table is in use.
    TooManyPartitions,
    /// Writing the batch failed (re-stamping a malformed batch).
    Write(WriteError),
    /// A batch of one record cannot be split.
    SingleRecord,
    /// Backpressure: the pool has no free memory for the batches of a split (retry after
    /// batches complete).
    Full,
    /// Backpressure: not enough free batch entries for the batches of a split.
    TooManyBatches,
}

impl fmt::Display for AccumulatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnknownBatch => f.write_str("unknown or released batch"),
            Self::InvalidState { state } => write!(f, "batch is {state:?}"),
            Self::TooManyPartitions => f.write_str("too many partitions"),
            Self::Write(e) => write!(f, "{e}"),
            Self::SingleRecord => f.write_str("a batch of one record cannot be split"),
            Self::Full => f.write_str("buffer memory exhausted"),
            Self::TooManyBatches => f.write_str("too many batches in flight or queued"),
        }
    }
}

impl core::error::Error for AccumulatorError {}

/// The result of [`RecordAccumulator::ready`] (Java's `ReadyCheckResult`); the ready nodes
/// are in the caller's vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadyCheck {
    /// Milliseconds until a batch not ready now may become ready (linger or backoff), if
    /// any is waiting.
    pub next_ready_check_delay_ms: Option<u64>,
    /// Milliseconds until the oldest queued batch expires, if any is queued.
    pub next_expiry_delay_ms: Option<u64>,
    /// Some partition with queued batches has no known leader: refresh metadata.
    pub unknown_leader: bool,
    /// A ready node did not fit in the caller's vector (it will be reported next time).
    pub nodes_truncated: bool,
}

/// Per-partition queues of record batches over a [`BufferPool`] (Java's
/// `RecordAccumulator`); `batch.size` is the pool's slot size.
///
/// The Java producer's accumulator, without threads, locks, heap or clock:
///
/// - [`append`](RecordAccumulator::append) encodes a record into the last open batch of its
///   partition, or opens a new batch in the [`BufferPool`]; it returns a [`Ticket`] naming
///   the record (batch id + index), or a typed error, never blocking: when memory runs out it
///   returns [`AppendError::Full`] and the caller decides (wait, drop, fail).
/// - [`ready`](RecordAccumulator::ready) finds the brokers that have a batch worth sending
///   (full, `linger.ms` elapsed, flush in progress, memory exhausted, retry backoff over),
///   and when to look again.
/// - [`drain`](RecordAccumulator::drain) takes up to `max.request.size` of batches for one
///   broker (one per partition), closes them (header + CRC) and marks them in flight.
/// - [`expire`](RecordAccumulator::expire) gives up on queued batches older than
///   `delivery.timeout.ms`; [`reenqueue`](RecordAccumulator::reenqueue) puts a failed batch
///   back at the front of its queue, in order, after `retry.backoff.ms`;
///   [`complete`](RecordAccumulator::complete) / [`abort`](RecordAccumulator::abort) release
///   a batch's memory and return its [`TicketRange`].
///
/// Outcomes are per batch: a [`TicketRange`] covers every record of the batch, so no
/// per-record state is kept. Every record appended is released exactly once, through
/// `complete`, `abort` or `expire`. A batch the broker refused as too large is
/// [`split`](RecordAccumulator::split) into smaller ones whose ranges are sub-ranges of the
/// original's tickets.
///
/// Capacities are the tables' limits: `P` pool slots, `Q` partition queues (one per topic
/// partition ever appended to or muted), `B` batches alive at once
/// (queued or in flight; a split batch keeps one entry besides its parts until all its
/// records were released). Exceeding one is a typed error.
///
/// `now_ms` is a monotonic millisecond instant from the caller; record timestamps are
/// wall-clock values inside the records. The two are never mixed.
pub struct RecordAccumulator<S, P, B, Q> {
    pool: BufferPool<S, P>,
    config: AccumulatorConfig,
    entries: B,
    free_head: Option<u32>,
    batch_count: usize,
    queues: Q,
    last_queue: usize,
    drain_index: usize,
    next_seq: u64,
    flushes_in_progress: u32,
    pool_exhausted: bool,
    retry_backoff_max_ms: u64,
    /// With compression, the slot batches are compressed into before being copied back.
    scratch: Option<SlotId>,
    /// Batches closed uncompressed although a codec is configured.
    compression_fallbacks: u64,
    /// Idempotence: the drain keeps sequence order (see [`set_idempotent`](Self::set_idempotent)).
    idempotent: bool,
    /// Idempotence: most batches of a partition stamped from the oldest without an outcome
    /// (see [`set_sequence_window`](Self::set_sequence_window)).
    sequence_window: u8,
    /// Most batches of one partition in requests at once so far.
    partition_in_flight_max: u8,
}

/// Whether batches are compressed (feature `compression` and a codec configured).
pub(super) const fn compresses(config: &AccumulatorConfig) -> bool {
    cfg!(feature = "compression") && !matches!(config.compression, CompressionType::None)
}

/// An accumulator with inline tables and no heap: a pool of at most `SLOTS` slots,
/// `PARTITIONS` partition queues and `BATCHES` batches.
pub type FixedAccumulator<S, const SLOTS: usize, const PARTITIONS: usize, const BATCHES: usize> =
    RecordAccumulator<
        S,
        heapless::Vec<Slot, SLOTS>,
        heapless::Vec<BatchEntry, BATCHES>,
        heapless::Vec<PartitionQueue, PARTITIONS>,
    >;

impl<S, P, B, Q: Table<PartitionQueue>> fmt::Debug for RecordAccumulator<S, P, B, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordAccumulator")
            .field("config", &self.config)
            .field("batch_count", &self.batch_count)
            .field("partitions", &self.queues.len())
            .field("flushes_in_progress", &self.flushes_in_progress)
            .finish_non_exhaustive()
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, P: Table<Slot>, B: Table<BatchEntry>, Q: Table<PartitionQueue>>
    RecordAccumulator<S, P, B, Q>
{
    /// An empty accumulator whose batches live in `pool` (slot size = `batch.size`), with
    /// as many batches and partition queues as its tables hold.
    pub fn new(pool: BufferPool<S, P>, config: AccumulatorConfig) -> Self {
        Self::with_limits(pool, config, u32::MAX as usize, u32::MAX as usize)
    }

    /// An empty accumulator with at most `batches` batches alive and `partitions` partition
    /// queues (each also capped by its table).
    pub fn with_limits(
        pool: BufferPool<S, P>,
        config: AccumulatorConfig,
        batches: usize,
        partitions: usize,
    ) -> Self {
        let mut pool = pool;
        // One slot aside for compressed output, for the accumulator's whole life.
        let scratch = if compresses(&config) {
            pool.allocate(pool.slot_size()).ok()
        } else {
            None
        };
        Self {
            pool,
            config,
            scratch,
            entries: B::with_limit(batches.min(u32::MAX as usize)),
            free_head: None,
            batch_count: 0,
            queues: Q::with_limit(partitions),
            last_queue: 0,
            drain_index: 0,
            next_seq: 0,
            flushes_in_progress: 0,
            pool_exhausted: false,
            retry_backoff_max_ms: config.retry_backoff_ms,
            compression_fallbacks: 0,
            idempotent: false,
            sequence_window: 5,
            partition_in_flight_max: 0,
        }
    }

    /// Batches closed uncompressed although a codec is configured: the compressor failed,
    /// or the compressed records did not fit back into the batch's slot (incompressible
    /// records filling it), or no scratch slot could be set aside (a one-slot pool).
    pub const fn compression_fallbacks(&self) -> u64 {
        self.compression_fallbacks
    }

    /// Whether a scratch slot is set aside for compressed output.
    pub const fn has_compression_scratch(&self) -> bool {
        self.scratch.is_some()
    }

    /// The index of a free batch entry (still on the free list), adding one to the table
    /// when none is free and the table has room.
    fn free_index(&mut self) -> Option<u32> {
        if self.free_head.is_none() {
            let index = u32::try_from(self.entries.len()).ok()?;
            self.entries
                .push(BatchEntry {
                    generation: 0,
                    batch: None,
                    pending: 0,
                    next: None,
                })
                .ok()?;
            self.free_head = Some(index);
        }
        self.free_head
    }

    /// Most batches alive at once.
    pub fn batch_limit(&self) -> usize {
        self.entries.limit()
    }

    /// Most partitions appended to at once (the partition queue table's limit).
    pub(crate) fn partition_limit(&self) -> usize {
        self.queues.limit()
    }

    // ---- getters -----------------------------------------------------------------------

    /// The settings.
    pub const fn config(&self) -> &AccumulatorConfig {
        &self.config
    }

    /// The buffer pool (for its counters).
    pub const fn pool(&self) -> &BufferPool<S, P> {
        &self.pool
    }

    /// `batch.size`: the pool's slot size.
    pub const fn batch_size(&self) -> usize {
        self.pool.slot_size()
    }

    /// Batches alive (queued or in flight).
    pub const fn batch_count(&self) -> usize {
        self.batch_count
    }

    /// Whether any batch is alive (Java's `hasIncomplete`).
    pub const fn has_incomplete(&self) -> bool {
        self.batch_count > 0
    }

    /// Whether any batch is queued (Java's `hasUndrained`).
    pub fn has_undrained(&self) -> bool {
        self.queues.iter().any(|q| q.len > 0)
    }

    /// Batches queued for `tp`.
    pub fn queued_batches(&self, tp: TopicPartition) -> usize {
        self.find_queue(tp)
            .ok()
            .and_then(|i| self.queues.get(i))
            .map_or(0, |q| ix(q.len))
    }

    /// Whether `tp` is muted.
    pub fn is_muted(&self, tp: TopicPartition) -> bool {
        self.find_queue(tp)
            .ok()
            .and_then(|i| self.queues.get(i))
            .is_some_and(|q| q.muted)
    }

    /// `retry.backoff.max.ms`: the retry backoff doubles per attempt from
    /// `retry.backoff.ms` up to this (by default equal to `retry.backoff.ms`: fixed).
    pub const fn retry_backoff_max_ms(&self) -> u64 {
        self.retry_backoff_max_ms
    }

    /// Sets `retry.backoff.max.ms` (see [`retry_backoff_max_ms`](Self::retry_backoff_max_ms)).
    pub fn set_retry_backoff_max_ms(&mut self, max_ms: u64) {
        self.retry_backoff_max_ms = max_ms;
    }

    /// Keeps sequence order for an idempotent producer, which sends several batches of a
    /// partition at once (Java's accumulator with a `TransactionManager`):
    ///
    /// - a partition has one batch in flight until the broker acknowledged one under the
    ///   current epoch (see [`confirm_sequences`](Self::confirm_sequences));
    /// - the batches of a partition in requests all go to one broker, so that their answers
    ///   come back in the order they were sent (a partition whose leader moved waits for the
    ///   answers of the old one);
    /// - a batch that already has a sequence (a retry, a batch of a split) is drained only
    ///   when no other such batch of its partition is in a request: it then has the lowest
    ///   sequence of the partition's unanswered batches (Java's `firstInFlightSequence`), so
    ///   after a failure the first batch goes alone, then the others one by one;
    /// - a new batch waits while the partition's oldest batch without an outcome is not among
    ///   its last stamped ones (see [`set_sequence_window`](Self::set_sequence_window));
    /// - the queued batches of a partition with batches in requests do not expire: they wait
    ///   for those answers, so that outcomes keep send order.
    pub fn set_idempotent(&mut self, idempotent: bool) {
        self.idempotent = idempotent;
    }

    /// With idempotence, a new batch of a partition takes a sequence only while fewer than
    /// `window` (1 to 5; 5 by default) of the partition's batches were stamped since the
    /// oldest one without an outcome: `max.in.flight.requests.per.connection`. The broker
    /// answers a resend from its last five batches of the producer; a window of five keeps
    /// every batch that may be resent among them, however the answers come back.
    pub fn set_sequence_window(&mut self, window: u8) {
        self.sequence_window = window.clamp(1, 5);
    }

    /// Whether `queue`'s first batch `head` waits before going to `node` (Java's
    /// `shouldStopDrainBatchesForPartition`; see [`set_idempotent`](Self::set_idempotent)).
    fn drain_must_wait(&self, queue: &PartitionQueue, head: &ProducerBatch, node: NodeId) -> bool {
        self.idempotent && queue.sequence_must_wait(head, node)
    }

    /// Notes that the broker acknowledged a batch of `tp` under the current producer epoch:
    /// it now holds the producer's state for the partition, so several batches may be in
    /// flight. Until then one goes at a time, since a broker without state for a producer
    /// accepts any sequence (Kafka's `ProducerAppendInfo.checkSequence`): a later batch
    /// would be written although an earlier one was refused, out of order.
    pub fn confirm_sequences(&mut self, tp: TopicPartition) {
        if let Some(q) = self.queue_mut(tp) {
            q.confirmed = true;
        }
    }

    /// Forgets every [`confirm_sequences`](Self::confirm_sequences): a new producer id or
    /// epoch, which the brokers may hold no state for.
    pub fn forget_confirmations(&mut self) {
        for q in self.queues.iter_mut() {
            q.confirmed = false;
            q.resync_window();
        }
    }

    /// Whether the queued batches of `queue` may not expire now: they wait for the outcome of
    /// a batch of theirs in flight (muted, or with idempotence, see
    /// [`set_idempotent`](Self::set_idempotent)).
    const fn expiry_paused(&self, queue: &PartitionQueue) -> bool {
        queue.muted || (self.idempotent && queue.in_flight > 0)
    }

    /// Batches of `tp` in Produce requests now, and whether one of them is a resend
    /// ([`ProducerBatch::is_resend`]).
    pub fn in_flight(&self, tp: TopicPartition) -> (usize, bool) {
        self.find_queue(tp)
            .ok()
            .and_then(|i| self.queues.get(i))
            .map_or((0, false), |q| {
                (usize::from(q.in_flight), q.resend_in_flight)
            })
    }

    /// Most batches of one partition in Produce requests at once so far.
    pub fn partition_in_flight_max(&self) -> usize {
        usize::from(self.partition_in_flight_max)
    }

    /// Whether a batch of `tp` queued now comes before `order` (a batch of the partition
    /// that was sent earlier waits for a retry).
    pub(crate) fn queued_before(&self, tp: TopicPartition, order: (u64, u32)) -> bool {
        self.find_queue(tp)
            .ok()
            .and_then(|i| self.queues.get(i))
            .and_then(|q| q.head)
            .and_then(|h| batch_at(&self.entries, h))
            .is_some_and(|b| b.order() < order)
    }

    /// Notes that the request of batch `id` was answered (or failed): it no longer counts
    /// as in flight for its partition's drain. [`reenqueue`](Self::reenqueue),
    /// [`split`](Self::split), [`complete`](Self::complete) and [`abort`](Self::abort) do it
    /// too; a batch not in a request is left alone.
    pub fn answered(&mut self, id: BatchId) {
        let Ok(b) = self.batch_mut(id) else { return };
        if !b.in_request {
            return;
        }
        b.in_request = false;
        let (tp, resend) = (b.topic_partition, b.resend);
        if let Some(q) = self.queue_mut(tp) {
            q.in_flight = q.in_flight.saturating_sub(1);
            if resend {
                q.resend_in_flight = false;
            }
        }
    }

    /// The first queued batch (oldest of its partition) created `delivery.timeout.ms` or
    /// more before `now_ms`, without releasing it (see [`detach`](Self::detach)). The
    /// batches of a muted partition (with idempotence, of a partition with batches in
    /// flight) wait for those outcomes, as in [`expire`](Self::expire), so that outcomes
    /// keep send order.
    pub fn first_expired(&self, now_ms: u64) -> Option<BatchId> {
        let timeout = self.config.delivery_timeout_ms;
        self.queues
            .iter()
            .filter(|q| !self.expiry_paused(q))
            .find_map(|q| {
                let head = q.head?;
                let entry = self.entries.get(ix(head))?;
                let batch = entry.batch.as_ref()?;
                (now_ms.saturating_sub(batch.created_ms) >= timeout).then_some(BatchId {
                    index: head,
                    generation: entry.generation,
                })
            })
    }

    /// Whether a flush is in progress.
    pub const fn flush_in_progress(&self) -> bool {
        self.flushes_in_progress > 0
    }

    /// The batch `id`.
    pub fn batch(&self, id: BatchId) -> Result<&ProducerBatch, AccumulatorError> {
        match self.entries.get(id.index()) {
            Some(BatchEntry {
                generation,
                batch: Some(b),
                ..
            }) if *generation == id.generation => Ok(b),
            _ => Err(AccumulatorError::UnknownBatch),
        }
    }

    fn batch_mut(&mut self, id: BatchId) -> Result<&mut ProducerBatch, AccumulatorError> {
        match self.entries.get_mut(id.index()) {
            Some(BatchEntry {
                generation,
                batch: Some(b),
                ..
            }) if *generation == id.generation => Ok(b),
            _ => Err(AccumulatorError::UnknownBatch),
        }
    }

    /// The bytes of a closed batch (in flight or waiting to be retried), ready to send.
    pub fn batch_bytes(&self, id: BatchId) -> Result<&[u8], AccumulatorError> {
        let b = self.batch(id)?;
        match b.state {
            BatchState::Retry | BatchState::InFlight => self
                .pool
                .buffer(b.slot)
                .ok()
                .and_then(|buf| buf.get(..b.closed_len))
                .ok_or(AccumulatorError::UnknownBatch),
            state => Err(AccumulatorError::InvalidState { state }),
        }
    }

    // ---- commands ----------------------------------------------------------------------

    /// The queue of `tp`: `Ok(index)`, or `Err(index)` where it would be inserted. Queues
    /// are kept sorted by partition, so that a record finds its queue in `O(log n)` among
    /// thousands of partitions.
    fn find_queue(&self, tp: TopicPartition) -> Result<usize, usize> {
        self.queues.binary_search_by_key(&tp, |q| q.tp)
    }

    fn queue_mut(&mut self, tp: TopicPartition) -> Option<&mut PartitionQueue> {
        let i = self.find_queue(tp).ok()?;
        self.queues.get_mut(i)
    }

    fn queue_index(&mut self, tp: TopicPartition) -> Result<usize, AccumulatorError> {
        if self.queues.get(self.last_queue).is_some_and(|q| q.tp == tp) {
            return Ok(self.last_queue);
        }
        let index = match self.find_queue(tp) {
            Ok(i) => i,
            Err(at) => {
                let mut queue = PartitionQueue::new(tp);
                if let Some(ratio) = queue::topic_ratio(&self.queues, at, tp) {
                    queue.ratio = ratio;
                }
                self.queues
                    .push(queue)
                    .map_err(|_| AccumulatorError::TooManyPartitions)?;
                if let Some(tail) = self.queues.get_mut(at..) {
                    tail.rotate_right(1);
                }
                // Keep the drain's round-robin position on the same queue.
                if self.drain_index >= at && self.queues.len() > 1 {
                    self.drain_index += 1;
                }
                at
            }
        };
        self.last_queue = index;
        Ok(index)
    }

    /// Finds the nodes with a batch worth sending at `now_ms` and puts them in `ready_nodes`
    /// (without duplicates). `leader_of` maps a partition to its leader, if known.
    ///
    /// A partition is ready when it is not muted, its first batch is not backing off after
    /// a failure, and that batch is full, or has waited `linger.ms` (`retry.backoff.ms` for a
    /// retry), or a flush is in progress, or the pool ran out of memory.
    pub fn ready<F, N>(&self, now_ms: u64, mut leader_of: F, ready_nodes: &mut N) -> ReadyCheck
    where
        F: FnMut(TopicPartition) -> Option<NodeId>,
        N: Table<NodeId>,
    {
        let mut check = ReadyCheck::default();
        let cfg = &self.config;
        for queue in self.queues.iter() {
            let Some(batch) = queue.head.and_then(|h| batch_at(&self.entries, h)) else {
                continue;
            };
            // A muted partition's batches expire only after the outcome of its batch in
            // flight (see `first_expired`): no timer for them until then.
            if !self.expiry_paused(queue) {
                let expires_in = (batch.created_ms.saturating_add(cfg.delivery_timeout_ms))
                    .saturating_sub(now_ms);
                check.next_expiry_delay_ms = Some(
                    check
                        .next_expiry_delay_ms
                        .map_or(expires_in, |d| d.min(expires_in)),
                );
            }
            let Some(leader) = leader_of(queue.tp) else {
                check.unknown_leader = true;
                continue;
            };
            if queue.muted
                || queue.held
                || ready_nodes.contains(&leader)
                || self.drain_must_wait(queue, batch, leader)
            {
                continue;
            }
            let waited = batch.waited_ms(now_ms);
            let backoff = batch.retry_backoff(cfg.retry_backoff_ms, self.retry_backoff_max_ms);
            let backing_off = batch.backing_off(now_ms, backoff, leader);
            let time_to_wait = if backing_off { backoff } else { cfg.linger_ms };
            let full = queue.len > 1 || batch.is_full();
            let expired = waited >= time_to_wait;
            let sendable = full || expired || self.pool_exhausted || self.flush_in_progress();
            if sendable && !backing_off {
                if ready_nodes.push(leader).is_err() {
                    check.nodes_truncated = true;
                }
            } else {
                let left = time_to_wait.saturating_sub(waited);
                check.next_ready_check_delay_ms = Some(
                    check
                        .next_ready_check_delay_ms
                        .map_or(left, |d| d.min(left)),
                );
            }
        }
        check
    }

    /// Expires queued batches created `delivery.timeout.ms` or more before `now_ms` (oldest
    /// first in each partition), releasing them into `out`; returns how many. Call again if
    /// `out` filled up. In-flight batches are not expired here: their request's outcome
    /// (or its timeout) decides. Nor are the queued batches of a muted partition (one whose
    /// batch is in flight, to keep order), or with idempotence of a partition with batches in
    /// flight: they wait for those outcomes, so that a partition's outcomes come in send
    /// order, as Java completes them.
    pub fn expire(&mut self, now_ms: u64, out: &mut [ReleasedBatch]) -> usize {
        let timeout = self.config.delivery_timeout_ms;
        let mut count = 0;
        for qi in 0..self.queues.len() {
            loop {
                if count == out.len() {
                    return count;
                }
                let idempotent = self.idempotent;
                let Some(queue) = self.queues.get_mut(qi) else {
                    break;
                };
                if queue.muted || (idempotent && queue.in_flight > 0) {
                    break;
                }
                let Some(head) = queue.head else { break };
                let Some(batch) = batch_at(&self.entries, head) else {
                    break;
                };
                if now_ms.saturating_sub(batch.created_ms) < timeout {
                    break;
                }
                queue.pop_front(&mut self.entries);
                if let (Some(released), Some(slot)) = (self.release(head), out.get_mut(count)) {
                    *slot = released;
                    count += 1;
                }
            }
        }
        count
    }

    /// Frees entry `i` and its pool slots; returns its tickets. The batch of a split frees
    /// its original's entry too once the last records of the original are released.
    fn release(&mut self, i: u32) -> Option<ReleasedBatch> {
        let batch = self.entries.get_mut(ix(i))?.batch.take()?;
        self.resolve_stamp(&batch);
        let released = ReleasedBatch {
            topic_partition: batch.topic_partition,
            tickets: batch.tickets(),
        };
        self.free_entry(i);
        self.batch_count -= 1;
        let _ = self.pool.deallocate(batch.slot);
        self.pool_exhausted = false;
        let origin = batch.origin;
        if origin.index != i
            && let Some(e) = self.entries.get_mut(origin.index())
            && e.generation == origin.generation
            && e.batch.is_none()
        {
            e.pending = e.pending.saturating_sub(batch.builder.record_count());
            if e.pending == 0 {
                self.free_entry(origin.index);
            }
        }
        Some(released)
    }

    /// Batch `batch` leaves its partition's sequence window (see
    /// [`set_sequence_window`](Self::set_sequence_window)).
    pub(super) fn resolve_stamp(&mut self, batch: &ProducerBatch) {
        if let Some(stamp) = batch.stamp
            && let Some(q) = self.queue_mut(batch.topic_partition)
        {
            q.resolve_stamp(stamp);
        }
    }

    /// Puts entry `i` (without a batch) on the free list with a new generation.
    fn free_entry(&mut self, i: u32) {
        if let Some(entry) = self.entries.get_mut(ix(i)) {
            entry.batch = None;
            entry.pending = 0;
            entry.generation = entry.generation.wrapping_add(1);
            entry.next = self.free_head;
            self.free_head = Some(i);
        }
    }

    /// Puts in-flight batch `id` back at the front of its partition queue, before any batch
    /// created after it (so order is kept when several fail), to be retried after
    /// `retry.backoff.ms` from `now_ms` (Java's `reenqueue`).
    pub fn reenqueue(&mut self, now_ms: u64, id: BatchId) -> Result<(), AccumulatorError> {
        let state = self.batch(id)?.state;
        if state != BatchState::InFlight {
            return Err(AccumulatorError::InvalidState { state });
        }
        self.answered(id);
        let batch = self.batch_mut(id)?;
        batch.state = BatchState::Retry;
        batch.attempts = batch.attempts.saturating_add(1);
        batch.last_attempt_ms = now_ms;
        let (tp, order) = (batch.topic_partition, batch.order());
        let q = self.queue_index(tp)?;
        let Self {
            entries, queues, ..
        } = self;
        if let Some(queue) = queues.get_mut(q) {
            queue.insert_in_order(entries, id.index, order);
        }
        Ok(())
    }

    /// Re-stamps the producer id, epoch and base sequence of closed batch `id` (in flight or
    /// waiting for a retry) and recomputes its CRC; the batch carries them from now on.
    pub fn set_producer_state(
        &mut self,
        id: BatchId,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Result<(), AccumulatorError> {
        let b = *self.batch(id)?;
        if !matches!(b.state, BatchState::Retry | BatchState::InFlight) {
            return Err(AccumulatorError::InvalidState { state: b.state });
        }
        let buf = self
            .pool
            .buffer_mut(b.slot)
            .ok()
            .and_then(|buf| buf.get_mut(..b.closed_len))
            .ok_or(AccumulatorError::UnknownBatch)?;
        set_producer_state(buf, producer_id, producer_epoch, base_sequence)
            .map_err(AccumulatorError::Write)?;
        self.batch_mut(id)?.producer_state = Some(ProducerState {
            producer_id,
            producer_epoch,
            base_sequence,
        });
        Ok(())
    }

    /// Releases in-flight batch `id` after its outcome (success or final failure) is known.
    pub fn complete(&mut self, id: BatchId) -> Result<ReleasedBatch, AccumulatorError> {
        let b = self.batch(id)?;
        if b.state != BatchState::InFlight {
            return Err(AccumulatorError::InvalidState { state: b.state });
        }
        self.answered(id);
        self.release(id.index).ok_or(AccumulatorError::UnknownBatch)
    }

    /// Releases batch `id` in any state (removing it from its queue if queued), for
    /// failures decided by the caller (fatal errors, close without flush).
    pub fn abort(&mut self, id: BatchId) -> Result<ReleasedBatch, AccumulatorError> {
        self.answered(id);
        let b = *self.batch(id)?;
        if b.state != BatchState::InFlight {
            let q = self.find_queue(b.topic_partition).ok();
            let Self {
                entries, queues, ..
            } = self;
            if let Some(queue) = q.and_then(|q| queues.get_mut(q)) {
                queue.remove(entries, id.index);
            }
        }
        self.release(id.index).ok_or(AccumulatorError::UnknownBatch)
    }

    /// The batches queued for `tp`, first to last.
    pub fn queued(&self, tp: TopicPartition) -> impl Iterator<Item = BatchId> + '_ {
        let head = self
            .find_queue(tp)
            .ok()
            .and_then(|i| self.queues.get(i))
            .and_then(|q| q.head);
        core::iter::successors(head, |&i| queue::next_of(&self.entries, i)).map(|i| BatchId {
            index: i,
            generation: self.entries.get(ix(i)).map_or(0, |e| e.generation),
        })
    }

    /// Moves the sequences of the queued batches of `tp` that carry one back by `count`
    /// (Java's `adjustSequencesDueToFailedBatch`), re-stamping those already closed: for
    /// when the batch before them failed and the broker wrote none of them.
    pub fn shift_sequences_back(&mut self, tp: TopicPartition, count: i32) {
        let mut cur = self
            .find_queue(tp)
            .ok()
            .and_then(|i| self.queues.get(i))
            .and_then(|q| q.head);
        while let Some(i) = cur {
            cur = queue::next_of(&self.entries, i);
            let Some(b) = batch_at_mut(&mut self.entries, i) else {
                continue;
            };
            let Some(state) = b.producer_state else {
                continue;
            };
            let base = decrement_sequence(state.base_sequence, count);
            if b.state == BatchState::Retry {
                let restamped = self
                    .pool
                    .buffer_mut(b.slot)
                    .ok()
                    .and_then(|buf| buf.get_mut(..b.closed_len))
                    .is_some_and(|buf| {
                        set_producer_state(buf, state.producer_id, state.producer_epoch, base)
                            .is_ok()
                    });
                if !restamped {
                    continue;
                }
            }
            b.producer_state = Some(ProducerState {
                base_sequence: base,
                ..state
            });
        }
    }

    /// The first queued batch of every partition (the next one each would drain), in
    /// partition-queue order.
    pub fn heads(&self) -> impl Iterator<Item = BatchId> + '_ {
        self.queues.iter().filter_map(|q| {
            let head = q.head?;
            let generation = self.entries.get(ix(head))?.generation;
            Some(BatchId {
                index: head,
                generation,
            })
        })
    }

    /// Takes queued batch `id` out of its queue without releasing it: it is then in flight
    /// as far as the accumulator is concerned (never drained, never expired), until
    /// [`complete`](Self::complete) releases it. For outcomes decided while the batch is
    /// queued (delivery timeout, close, fatal errors) that the caller reports later.
    pub fn detach(&mut self, id: BatchId) -> Result<(), AccumulatorError> {
        let b = *self.batch(id)?;
        if b.state == BatchState::InFlight {
            return Err(AccumulatorError::InvalidState { state: b.state });
        }
        let q = self.find_queue(b.topic_partition).ok();
        let Self {
            entries, queues, ..
        } = self;
        if let Some(queue) = q.and_then(|q| queues.get_mut(q)) {
            queue.remove(entries, id.index);
        }
        self.batch_mut(id)?.state = BatchState::InFlight;
        Ok(())
    }

    /// The first queued batch of any partition, to abort everything on close
    /// (`while let Some(id) = acc.first_queued() { acc.abort(id) }`).
    pub fn first_queued(&self) -> Option<BatchId> {
        self.heads().next()
    }

    /// Holds back every partition whose first batch `hold` picks (given its id, the batch
    /// and its closed bytes, empty if not closed yet), until
    /// [`release_holds`](Self::release_holds): neither ready nor drained meanwhile.
    pub fn hold_where(&mut self, mut hold: impl FnMut(BatchId, &ProducerBatch, &[u8]) -> bool) {
        let Self {
            entries,
            queues,
            pool,
            ..
        } = self;
        for q in queues.iter_mut() {
            let Some(head) = q.head else { continue };
            let Some(e) = entries.get(ix(head)) else {
                continue;
            };
            let Some(batch) = e.batch.as_ref() else {
                continue;
            };
            let id = BatchId {
                index: head,
                generation: e.generation,
            };
            let bytes = match batch.state {
                BatchState::Retry | BatchState::InFlight => pool
                    .buffer(batch.slot)
                    .ok()
                    .and_then(|b| b.get(..batch.closed_len))
                    .unwrap_or_default(),
                _ => &[],
            };
            q.held = hold(id, batch, bytes);
        }
    }

    /// Ends every hold of [`hold_where`](Self::hold_where).
    pub fn release_holds(&mut self) {
        for q in self.queues.iter_mut() {
            q.held = false;
        }
    }

    /// Whether `topic` has a batch alive (queued, in flight or with an outcome not yet
    /// released) or a muted partition.
    pub fn topic_in_use(&self, topic: crate::topic::TopicId) -> bool {
        self.queues
            .iter()
            .any(|q| q.tp.topic == topic && (q.len > 0 || q.muted || q.in_flight > 0))
            || self.entries.iter().any(|e| {
                e.batch
                    .as_ref()
                    .is_some_and(|b| b.topic_partition.topic == topic)
            })
    }

    /// Removes the empty partition queues for which `gone` is true (partitions of topics
    /// dropped from the metadata), so that their entries are reused.
    pub fn remove_queues(&mut self, mut gone: impl FnMut(TopicPartition) -> bool) {
        self.queues
            .retain(|q| q.len != 0 || q.muted || q.held || q.in_flight > 0 || !gone(q.tp));
        self.last_queue = 0;
        self.drain_index = 0;
    }

    /// Stops draining `tp` (one request in flight at a time, for ordering, as Java mutes
    /// partitions when `max.in.flight.requests.per.connection=1`).
    pub fn mute(&mut self, tp: TopicPartition) -> Result<(), AccumulatorError> {
        let q = self.queue_index(tp)?;
        if let Some(queue) = self.queues.get_mut(q) {
            queue.muted = true;
        }
        Ok(())
    }

    /// Lets `tp` be drained again.
    pub fn unmute(&mut self, tp: TopicPartition) {
        if let Some(queue) = self.queue_mut(tp) {
            queue.muted = false;
        }
    }

    /// Starts a flush: every batch is ready at once until [`flush_done`](Self::flush_done).
    pub fn begin_flush(&mut self) {
        self.flushes_in_progress = self.flushes_in_progress.saturating_add(1);
    }

    /// Ends one flush started with [`begin_flush`](Self::begin_flush).
    pub fn flush_done(&mut self) {
        self.flushes_in_progress = self.flushes_in_progress.saturating_sub(1);
    }

    /// Memory for records ran out outside the pool (a transport's own budget per pending
    /// record): every partition's first batch is ready at once, as after an append found
    /// the pool full, until a batch's memory is released.
    pub fn set_exhausted(&mut self) {
        self.pool_exhausted = true;
    }
}

#[cfg(test)]
mod testing;

#[cfg(test)]
mod growth_tests;
#[cfg(test)]
mod tests;
