//! `Sender`: everything after the accumulator (Java's `Sender`, `NetworkClient` and the
//! idempotent part of `TransactionManager`).
//!
//! It owns the accumulator, the metadata and the connections. On every input it decides
//! (`drive`), in this order: fail everything (fatal error, close deadline); time out
//! connection attempts and requests; expire queued batches past `delivery.timeout.ms`;
//! fetch metadata; get a producer id (idempotence); build one Produce request per broker
//! with ready batches. Outputs are derived from its state: connection events, batch
//! outcomes, and the bytes of the requests being written.
//!
//! The files follow Kafka's seams:
//!
//! - `mod.rs`: the `Sender` (its state, getters and commands) and the decision loop
//!   (`drive`, `compute_timeout`);
//! - `client.rs`: the network client (Java's `NetworkClient`): connections and their
//!   reconnect backoff, timeouts, ApiVersions, writing requests, transmits, and response
//!   frames dispatched by correlation id;
//! - `connection.rs`: one connection (Java's `KafkaChannel` and `InFlightRequests`);
//! - `idempotence.rs`: producer id, epoch and sequences (Java's `TransactionManager`);
//! - `produce.rs`: Produce requests built from the drained batches;
//! - `response.rs`: responses, retries, splits and the queue of batch outcomes;
//! - `output.rs`: what it hands out: [`Event`], [`Transmit`], [`ProduceError`],
//!   [`ProducerMetrics`].
//!
//! The connection buffers (a receive buffer, a request scratch and request pieces per
//! connection) are not a field: the producer hands them to every method that needs them,
//! so that frames can be read from them while the rest of the state is updated.

#[cfg(feature = "sasl")]
mod auth;
mod client;
mod connection;
mod idempotence;
mod metrics;
mod output;
mod produce;
mod response;
mod transaction;

use core::fmt;

use heapless::Vec as HVec;

use self::client::{MAX_RECONNECTS, Reconnect};
use self::connection::ConnState;
use self::idempotence::{PidState, forget_sequences};
use self::response::Cause;
use crate::accumulator::{AppendError, AppendResult, BatchId, ReadyCheck, RecordAccumulator};
use crate::config::{ConfigError, ProducerConfig};
use crate::metadata::{LeaderLatency, Metadata, RegisterError};
use crate::partitioner::{PartitionLoad, PartitionSet, StickyState};
use crate::protocol::ErrorCode;
use crate::record::{Compressor, Record};
use crate::security::AuthFailure;
use crate::storage::{Limits, Storage, Table, TableFull, TableKind};
use crate::topic::{TopicId, TopicPartition};

pub use self::connection::{Broker, ConnBuffers, ConnId, Connection, Piece};
pub use self::idempotence::SeqEntry;
pub use self::output::{Event, ProduceError, ProducerMetrics, Transmit};
use self::transaction::Transactions;
pub use self::transaction::{ConsumedOffset, TransactionError, TransactionState, TxnPartition};

/// Where a batch is as far as the sender is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtraState {
    /// Queued, or between a request and its retry.
    Idle,
    /// In the Produce request `correlation_id` on connection `conn`.
    InRequest { conn: u16, correlation_id: i32 },
    /// Its outcome is queued for `poll_event`.
    OutcomePending,
    /// Its outcome waits for that of an earlier batch of its partition (send order).
    OutcomeHeld,
}

/// One entry of the sender's batch table (opaque; about 48 bytes), indexed like the batch
/// table: what the sender knows of a batch beyond the accumulator.
#[derive(Debug, Clone, Copy)]
pub struct BatchExtra {
    id: BatchId,
    state: ExtraState,
    /// Sent at least once without a definite answer: the broker may have written it.
    maybe_written: bool,
    /// The outcome to report (`OutcomePending`), and the next batch in the outcome queue.
    outcome: Result<(i64, i64), ProduceError>,
    next_outcome: Option<u32>,
}

const fn no_extra() -> BatchExtra {
    BatchExtra {
        id: BatchId::PLACEHOLDER,
        state: ExtraState::Idle,
        maybe_written: false,
        outcome: Ok((-1, -1)),
        next_outcome: None,
    }
}

/// The accumulator of a storage `St` with pool storage `S`.
pub(crate) type Accumulator<S, St> =
    RecordAccumulator<S, <St as Storage>::Slots, <St as Storage>::Batches, <St as Storage>::Queues>;

/// The metadata of a storage `St`.
pub type MetadataOf<St> = Metadata<
    <St as Storage>::Topics,
    <St as Storage>::Partitions,
    <St as Storage>::Available,
    <St as Storage>::Brokers,
>;

/// The connection buffers of a storage `St`.
pub(crate) type Io<St> = <St as Storage>::Buffers;

/// The batches queued for each partition of one topic (the adaptive partitioner's load),
/// and how long each partition's leader has not been able to take them.
pub(crate) struct TopicLoad<'a, S, St: Storage> {
    acc: &'a Accumulator<S, St>,
    topic: TopicId,
    leaders: LeaderLatency<'a>,
    /// `partitioner.availability.timeout.ms` (0: off).
    availability_timeout_ms: u64,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage> PartitionLoad for TopicLoad<'_, S, St> {
    fn queued_batches(&self, partition: i32) -> usize {
        self.acc
            .queued_batches(TopicPartition::new(self.topic, partition))
    }

    /// As Java's `RecordAccumulator.partitionReady`: only a partition with batches waiting
    /// is left out, when its leader's wait passed the timeout.
    fn is_unavailable(&self, partition: i32) -> bool {
        self.availability_timeout_ms > 0
            && self.leaders.not_ready_ms(partition) > self.availability_timeout_ms
            && self.queued_batches(partition) > 0
    }
}

pub(crate) struct Sender<S, St: Storage, C> {
    /// Compresses batches when they are closed (`compression.type`).
    compressor: C,
    config: ProducerConfig,
    acc: Accumulator<S, St>,
    metadata: MetadataOf<St>,
    conns: St::Connections,
    limits: Limits,
    /// Ready brokers, reused by every ready check.
    nodes: St::Nodes,
    reconnects: HVec<Reconnect, MAX_RECONNECTS>,
    next_correlation_id: i32,
    idempotent: bool,
    /// One batch per partition in flight (`max.in.flight.requests.per.connection=1`).
    mutes_partitions: bool,
    producer_id: i64,
    producer_epoch: i16,
    pid_state: PidState,
    pid_attempts: u32,
    pid_last_attempt_ms: u64,
    /// The InitProducerId in flight bumps the epoch (a failure goes back to `BumpNeeded`).
    pid_bumping: bool,
    sequences: St::Sequences,
    /// The transaction manager (transactional producers).
    txn: Transactions<St::TxnPartitions, St::TxnOffsets>,
    extras: St::Extras,
    /// Batches with an outcome to report, linked through `BatchExtra::next_outcome`.
    outcomes_head: Option<u32>,
    outcomes_tail: Option<u32>,
    /// Batches in `ExtraState::OutcomeHeld`.
    held_outcomes: usize,
    fatal: Option<ErrorCode>,
    /// Set when everything left must fail with this error (fatal, close deadline).
    failing: Option<ProduceError>,
    /// The last authentication failure, until a connection authenticates.
    auth_failure: Option<AuthFailure>,
    /// The SASL client's next message (feature `sasl`).
    #[cfg(feature = "sasl")]
    sasl_out: St::Scratch,
    /// A SASL message in `sasl_out` to send on connection `.0` (`.1` bytes, SaslAuthenticate
    /// version `.2`) at the end of this drive step.
    #[cfg(feature = "sasl")]
    sasl_pending: Option<(usize, usize, i16)>,
    /// The OAUTHBEARER token (`Producer::set_sasl_token`).
    #[cfg(feature = "sasl")]
    sasl_token: St::Scratch,
    /// SCRAM nonces and re-authentication jitter: the producer's seed and a counter.
    #[cfg(feature = "sasl")]
    sasl_seed: u64,
    #[cfg(feature = "sasl")]
    sasl_counter: u64,
    close_deadline: Option<u64>,
    shut_down: bool,
    flushes: u32,
    next_timeout: Option<u64>,
    transmit_cursor: usize,
    target_cursor: usize,
    /// A table filled up (the last time one did), for the transport's logs.
    table_full: Option<TableFull>,
    metrics: ProducerMetrics,
}

impl<S, St: Storage, C> fmt::Debug for Sender<S, St, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("connections", &self.conns.len())
            .field("producer_id", &self.producer_id)
            .field("producer_epoch", &self.producer_epoch)
            .field("fatal", &self.fatal)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage, C: Compressor> Sender<S, St, C> {
    pub(crate) fn new(
        config: ProducerConfig,
        acc: Accumulator<S, St>,
        limits: Limits,
        compressor: C,
    ) -> Result<Self, ConfigError> {
        if limits.connections == 0 {
            return Err(ConfigError::StorageTooSmall {
                what: "connections",
                needed: 1,
                available: 0,
            });
        }
        let idempotent = config.idempotence_enabled();
        let mutes_partitions = config.mutes_partitions();
        let mut acc = acc;
        acc.set_idempotent(idempotent);
        acc.set_sequence_window(
            u8::try_from(config.max_in_flight_requests_per_connection).unwrap_or(5),
        );
        let mut limits = limits;
        limits.response_bytes = limits.response_bytes.min(config.max_response_size);
        Ok(Self {
            compressor,
            config,
            acc,
            metadata: Metadata::new(limits.topics, limits.partitions, limits.brokers),
            conns: St::Connections::with_limit(limits.connections),
            nodes: St::Nodes::with_limit(limits.brokers),
            limits,
            reconnects: HVec::new(),
            next_correlation_id: 0,
            idempotent,
            mutes_partitions,
            producer_id: -1,
            producer_epoch: -1,
            pid_state: PidState::None,
            pid_attempts: 0,
            pid_last_attempt_ms: 0,
            pid_bumping: false,
            sequences: St::Sequences::with_limit(limits.partitions),
            txn: Transactions::new(limits.partitions, limits.request_bytes),
            extras: St::Extras::with_limit(limits.batches),
            outcomes_head: None,
            outcomes_tail: None,
            held_outcomes: 0,
            fatal: None,
            failing: None,
            auth_failure: None,
            #[cfg(feature = "sasl")]
            sasl_out: St::Scratch::with_limit(limits.request_bytes),
            #[cfg(feature = "sasl")]
            sasl_pending: None,
            #[cfg(feature = "sasl")]
            sasl_token: St::Scratch::with_limit(limits.request_bytes),
            #[cfg(feature = "sasl")]
            sasl_seed: 0,
            #[cfg(feature = "sasl")]
            sasl_counter: 0,
            close_deadline: None,
            shut_down: false,
            flushes: 0,
            // Wake at once: connect and fetch metadata (and a producer id) at start, as Java.
            next_timeout: Some(0),
            transmit_cursor: 0,
            target_cursor: 0,
            table_full: None,
            metrics: ProducerMetrics::default(),
        })
    }

    // ---- getters -------------------------------------------------------------------------

    /// The configuration in use.
    pub(crate) const fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// What is known of the cluster.
    pub(crate) const fn metadata(&self) -> &MetadataOf<St> {
        &self.metadata
    }

    /// Counters.
    pub(crate) const fn metrics(&self) -> &ProducerMetrics {
        &self.metrics
    }

    /// Batches alive: queued, in flight, or with an outcome not yet polled.
    pub(crate) const fn batch_count(&self) -> usize {
        self.acc.batch_count()
    }

    /// Bytes of the pool in use.
    pub(crate) fn buffer_used_bytes(&self) -> usize {
        let pool = self.acc.pool();
        pool.capacity_bytes() - pool.free_bytes()
    }

    /// Most partitions appended to at once (the accumulator's partition queues).
    pub(crate) fn partition_queue_limit(&self) -> usize {
        self.acc.partition_limit()
    }

    pub(crate) const fn fatal(&self) -> Option<ErrorCode> {
        self.fatal
    }

    pub(crate) const fn auth_failure(&self) -> Option<&AuthFailure> {
        self.auth_failure.as_ref()
    }

    /// Seeds the SCRAM nonces and the re-authentication jitter (the producer's seed).
    #[cfg_attr(not(feature = "sasl"), allow(unused_variables, clippy::unused_self))]
    pub(crate) fn seed_random(&mut self, seed: u64) {
        #[cfg(feature = "sasl")]
        {
            self.sasl_seed = seed;
        }
    }

    pub(crate) const fn is_closing(&self) -> bool {
        self.close_deadline.is_some()
    }

    pub(crate) fn compression_fallbacks(&self) -> u64 {
        self.acc.compression_fallbacks()
    }

    pub(crate) fn producer_id_and_epoch(&self) -> Option<(i64, i16)> {
        (self.idempotent && self.producer_id >= 0)
            .then_some((self.producer_id, self.producer_epoch))
    }

    pub(crate) fn in_flight_batches(&self) -> usize {
        self.extras
            .iter()
            .filter(|e| matches!(e.state, ExtraState::InRequest { .. }))
            .count()
    }

    /// Connections in the table (open or free for reuse).
    pub(crate) fn connection_slots(&self) -> usize {
        self.conns.len()
    }

    /// The limits in force.
    pub(crate) const fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The last table that filled up, if any did.
    pub(crate) const fn table_full(&self) -> Option<TableFull> {
        self.table_full
    }

    /// Whether an output is waiting: an event to poll, or a transmit to hand out.
    pub(crate) fn has_output(&self) -> bool {
        self.outcomes_head.is_some()
            || self.conns.iter().any(|c| {
                c.connect_pending
                    || c.disconnect_pending
                    || (c.has_transmit() && !c.tx_handed_out && !c.tx_blocked)
            })
    }

    pub(crate) const fn poll_timeout(&self) -> Option<u64> {
        self.next_timeout
    }

    /// Lowers the next wake-up to `at` (after a command that started a linger timer).
    pub(crate) fn wake_at(&mut self, at: u64) {
        self.next_timeout = Some(self.next_timeout.map_or(at, |t| t.min(at)));
    }

    fn extra(&self, id: BatchId) -> Option<&BatchExtra> {
        self.extras.get(id.index()).filter(|e| e.id == id)
    }

    /// The sender's entry for batch `id`, fresh if the entry held an older batch (the table
    /// grows to the batch's index).
    fn extra_mut(&mut self, id: BatchId) -> Option<&mut BatchExtra> {
        if self.extras.len() <= id.index() {
            let len = id.index() + 1;
            if self.extras.resize(len, no_extra()).is_err() {
                self.table_full = Some(TableFull {
                    table: TableKind::Batches,
                    limit: self.extras.limit(),
                });
                return None;
            }
        }
        let e = self.extras.get_mut(id.index())?;
        if e.id != id {
            *e = BatchExtra { id, ..no_extra() };
        }
        Some(e)
    }

    /// Drops the topics idle for `metadata.max.idle.ms` with nothing queued or in flight
    /// (see [`Metadata::evict_idle`]), with their partition queues and sequences. With
    /// idempotence, a dropped partition that had sequences under the current epoch makes
    /// the producer bump its epoch before producing again: if the topic comes back, its
    /// partitions start at sequence 0 under the new epoch, which the broker accepts.
    pub(crate) fn evict_idle(&mut self, now_ms: u64) -> usize {
        let idle_ms = self.config.metadata_max_idle_ms;
        let Self {
            metadata,
            acc,
            sequences,
            ..
        } = self;
        let mut bump = false;
        let dropped = metadata.evict_idle(
            now_ms,
            idle_ms,
            |id| acc.topic_in_use(id),
            |id| bump |= forget_sequences(sequences, id),
        );
        if dropped > 0 {
            let metadata = &self.metadata;
            self.acc
                .remove_queues(|tp| metadata.topic_name(tp.topic).is_none());
            if bump && self.idempotent {
                self.bump_epoch_when_ready();
            }
            self.metrics.topics_evicted += dropped as u64;
        }
        dropped
    }

    // ---- commands ------------------------------------------------------------------------

    /// The topic `name` for a record sent at `now_ms`, marked as used now: `Ok(Some(id))`
    /// for a topic already registered (whatever its status), `Ok(None)` for one registered
    /// now, whose metadata is then fetched at once (Java's `waitOnMetadata` wakes the
    /// sender). When the topic table is full, topics idle for `metadata.max.idle.ms` make
    /// room first.
    pub(crate) fn topic_for_send(
        &mut self,
        now_ms: u64,
        name: &str,
        io: &mut Io<St>,
    ) -> Result<Option<TopicId>, RegisterError> {
        if let Some(id) = self.metadata.topic_id(name) {
            self.metadata.touch(id, now_ms);
            return Ok(Some(id));
        }
        let mut registered = self.metadata.register(name);
        if matches!(registered, Err(RegisterError::TooManyTopics { .. }))
            && self.evict_idle(now_ms) > 0
        {
            // Idle topics made room (Java's metadata.max.idle.ms).
            registered = self.metadata.register(name);
        }
        let id = registered?;
        self.metadata.touch(id, now_ms);
        self.drive(now_ms, io);
        Ok(None)
    }

    /// The built-in partitioner's state and the partitions of topic `id`, once known, and
    /// the batches queued for each partition of the topic (for the adaptive partitioner).
    pub(crate) fn sticky_partitions_and_load(
        &mut self,
        id: TopicId,
    ) -> Option<(&mut StickyState, PartitionSet<'_>, TopicLoad<'_, S, St>)> {
        let (sticky, set, leaders) = self.metadata.sticky_partitions_and_latency(id)?;
        Some((
            sticky,
            set,
            TopicLoad {
                acc: &self.acc,
                topic: id,
                leaders,
                availability_timeout_ms: self.config.partitioner_availability_timeout_ms,
            },
        ))
    }

    /// Appends `record` to partition `tp` (see [`RecordAccumulator::append`]).
    pub(crate) fn append(
        &mut self,
        now_ms: u64,
        tp: TopicPartition,
        record: &Record<'_>,
    ) -> Result<AppendResult, AppendError> {
        self.acc.append(now_ms, tp, record)
    }

    /// See [`Producer::handle_memory_exhausted`](crate::Producer::handle_memory_exhausted).
    pub(crate) fn memory_exhausted(&mut self, now_ms: u64, io: &mut Io<St>) {
        self.acc.set_exhausted();
        self.drive(now_ms, io);
    }

    pub(crate) fn begin_flush(&mut self) {
        self.acc.begin_flush();
        self.flushes = self.flushes.saturating_add(1);
    }

    pub(crate) fn close(&mut self, now_ms: u64, timeout_ms: u64) {
        let deadline = now_ms.saturating_add(timeout_ms);
        self.close_deadline = Some(self.close_deadline.map_or(deadline, |d| d.min(deadline)));
        if self.flushes == 0 {
            self.begin_flush();
        }
    }

    // ---- outputs -------------------------------------------------------------------------

    pub(crate) fn poll_event(&mut self) -> Option<Event<'_>> {
        // Connection events first (a slot's Disconnect before its next Connect), then
        // batch outcomes.
        if self
            .conns
            .iter()
            .any(|c| c.disconnect_pending || c.connect_pending)
        {
            return self.poll_connection_event();
        }
        self.poll_outcome()
    }

    // ---- the decision loop ---------------------------------------------------------------

    pub(crate) fn drive(&mut self, now_ms: u64, io: &mut Io<St>) {
        if let Some(code) = self.fatal
            && self.failing.is_none()
        {
            self.fail_everything(ProduceError::Fatal(code));
        }
        if let Some(deadline) = self.close_deadline
            && now_ms >= deadline
            && self.failing.is_none()
        {
            self.fail_everything(ProduceError::Closed);
        }
        if self.failing.is_some() {
            // Nothing is sent any more; batches still queued (none, normally) fail too.
            self.fail_queued();
            self.next_timeout = None;
            if self.close_deadline.is_some() {
                self.shut_down = true;
            }
            return;
        }
        self.check_timeouts(now_ms);
        #[cfg(feature = "sasl")]
        self.drive_sasl(now_ms, io);
        for k in 0..self.conns.len() {
            // ApiVersions first on every new connection (again after UNSUPPORTED_VERSION).
            if self.conns.get(k).is_some_and(|c| {
                c.state == ConnState::Negotiating && c.in_flight.is_empty() && !c.has_transmit()
            }) {
                self.send_api_versions(now_ms, k, io);
            }
        }
        self.expire_batches(now_ms);
        if self.flushes > 0 && self.acc.batch_count() == 0 {
            for _ in 0..self.flushes {
                self.acc.flush_done();
            }
            self.flushes = 0;
        }
        if self.close_deadline.is_some() && self.acc.batch_count() == 0 {
            // Closed gracefully: everything has its outcome.
            for k in 0..self.conns.len() {
                if self.conns.get(k).is_some_and(|c| !c.is_free()) {
                    self.close_connection(now_ms, k, true);
                }
            }
            self.shut_down = true;
            self.next_timeout = None;
            return;
        }
        self.maybe_send_metadata(now_ms, io);
        if self.config.is_transactional() {
            self.drive_transaction(now_ms, io);
        } else if self.idempotent {
            self.maybe_init_producer_id(now_ms, io);
        }
        let ready_check = match self.pid_state {
            _ if !self.idempotent => self.send_produce(now_ms, io),
            PidState::Ready if self.config.is_transactional() => {
                self.send_produce_in_transaction(now_ms, io)
            }
            PidState::Ready => self.send_produce(now_ms, io),
            PidState::BumpNeeded => self.send_unresolved(now_ms, io),
            PidState::None | PidState::Requesting => Default::default(),
        };
        self.compute_timeout(now_ms, ready_check);
    }

    fn compute_timeout(&mut self, now_ms: u64, check: ReadyCheck) {
        let mut t: Option<u64> = None;
        let mut at =
            |x: u64| t = Some(t.map_or(x, |t: u64| t.min(x)).max(now_ms.saturating_add(1)));
        if let Some(d) = check.next_ready_check_delay_ms {
            at(now_ms.saturating_add(d));
        }
        if let Some(d) = check.next_expiry_delay_ms {
            at(now_ms.saturating_add(d));
        }
        if let Some(d) = self.close_deadline {
            at(d);
        }
        for c in self.conns.iter() {
            if let ConnState::Connecting {
                since_ms,
                timeout_ms,
            } = c.state
            {
                at(since_ms.saturating_add(timeout_ms));
            }
            if let Some(idle) = self.idle_until(c) {
                at(idle);
            }
            if let Some(until) = c.throttled_until_ms {
                at(until);
            }
            if let Some(front) = c.in_flight.front() {
                at(front.sent_ms.saturating_add(self.config.request_timeout_ms));
            }
        }
        #[cfg(feature = "sasl")]
        if let Some(reauth) = self.next_reauth_ms() {
            at(reauth);
        }
        for until in self.reconnect_backoff_ends() {
            if until > now_ms {
                at(until);
            }
        }
        let metadata_due = self.metadata.next_update_ms(
            self.config.metadata_max_age_ms,
            self.config.retry_backoff_ms,
            self.config.retry_backoff_max_ms,
        );
        if metadata_due > now_ms {
            at(metadata_due);
        }
        if self.idempotent && matches!(self.pid_state, PidState::None | PidState::BumpNeeded) {
            let due = self.init_producer_id_due_ms();
            if due > now_ms {
                at(due);
            }
        }
        if let Some(wake) = self.transaction_wakeup(now_ms) {
            at(wake);
        }
        self.next_timeout = t;
    }
}
