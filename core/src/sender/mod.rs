//! `Sender`: everything after the accumulator (Java's `Sender`, `NetworkClient` and the
//! idempotent part of `TransactionManager`).
//!
//! It owns the accumulator, the metadata and the connections. On every input it decides,
//! in this order: fail everything (fatal error, close deadline); time out connection
//! attempts and requests; expire queued batches past `delivery.timeout.ms`; fetch metadata;
//! get a producer id (idempotence); build one Produce request per broker with ready
//! batches. Outputs are derived from its state: connection events, batch outcomes, and the
//! bytes of the requests being written.
//!
//! The connection buffers (a receive buffer, a request scratch and request pieces per
//! connection) are not a field: the producer hands them to every method that needs them,
//! so that frames can be read from them while the rest of the state is updated.

mod client;
mod connection;
mod idempotence;
mod output;
mod produce;

use core::fmt;

use heapless::Vec as HVec;

use self::client::{MAX_RECONNECTS, Reconnect};
use self::connection::ConnState;
use self::idempotence::{PidState, forget_sequences};
use crate::accumulator::{AccumulatorError, BatchId, BatchState, RecordAccumulator};
use crate::config::{ConfigError, ProducerConfig};
use crate::metadata::Metadata;
use crate::protocol::{
    ErrorClass, ErrorCode, InitProducerIdResponse, Message, MetadataResponse, ProduceResponse,
    Reader,
};
use crate::record::RecordBatchHeader;
use crate::table::{Limits, Storage, Table, TableFull, TableKind};
use crate::topic::TopicPartition;

pub use self::connection::{Broker, ConnBuffers, ConnId, Connection, Piece};
pub use self::idempotence::SeqEntry;
pub use self::output::{Event, ProduceError, ProducerMetrics, Transmit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtraState {
    Idle,
    InRequest { conn: u16, correlation_id: i32 },
    OutcomePending,
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

/// Why a request of a batch did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Network,
    Broker(ErrorCode),
}

impl Cause {
    const fn error(self) -> ProduceError {
        match self {
            Self::Network => ProduceError::Network,
            Self::Broker(code) => ProduceError::Broker { code },
        }
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

pub(crate) struct Sender<S, St: Storage> {
    pub(crate) config: ProducerConfig,
    pub(crate) acc: Accumulator<S, St>,
    pub(crate) metadata: MetadataOf<St>,
    conns: St::Connections,
    limits: Limits,
    /// Ready brokers, reused by every ready check.
    nodes: St::Nodes,
    reconnects: HVec<Reconnect, MAX_RECONNECTS>,
    next_correlation_id: i32,
    idempotent: bool,
    keeps_order: bool,
    producer_id: i64,
    producer_epoch: i16,
    pid_state: PidState,
    pid_attempts: u32,
    pid_last_attempt_ms: u64,
    /// The InitProducerId in flight bumps the epoch (a failure goes back to `BumpNeeded`).
    pid_bumping: bool,
    sequences: St::Sequences,
    extras: St::Extras,
    /// Batches with an outcome to report, linked through `BatchExtra::next_outcome`.
    outcomes_head: Option<u32>,
    outcomes_tail: Option<u32>,
    fatal: Option<ErrorCode>,
    /// Set when everything left must fail with this error (fatal, close deadline).
    failing: Option<ProduceError>,
    close_deadline: Option<u64>,
    shut_down: bool,
    flushes: u32,
    next_timeout: Option<u64>,
    transmit_cursor: usize,
    target_cursor: usize,
    /// A table filled up (the last time one did), for the transport's logs.
    table_full: Option<TableFull>,
    pub(crate) metrics: ProducerMetrics,
}

impl<S, St: Storage> fmt::Debug for Sender<S, St> {
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

/// The connection buffers of a storage `St`.
pub(crate) type Io<St> = <St as Storage>::Buffers;

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage> Sender<S, St> {
    pub(crate) fn new(
        config: ProducerConfig,
        acc: Accumulator<S, St>,
        limits: Limits,
    ) -> Result<Self, ConfigError> {
        if limits.connections == 0 {
            return Err(ConfigError::StorageTooSmall {
                what: "connections",
                needed: 1,
                available: 0,
            });
        }
        let idempotent = config.idempotence_enabled();
        let keeps_order = config.keeps_order();
        let mut limits = limits;
        limits.response_bytes = limits.response_bytes.min(config.max_response_size);
        Ok(Self {
            config,
            acc,
            metadata: Metadata::new(limits.topics, limits.partitions, limits.brokers),
            conns: St::Connections::with_limit(limits.connections),
            nodes: St::Nodes::with_limit(limits.brokers),
            limits,
            reconnects: HVec::new(),
            next_correlation_id: 0,
            idempotent,
            keeps_order,
            producer_id: -1,
            producer_epoch: -1,
            pid_state: PidState::None,
            pid_attempts: 0,
            pid_last_attempt_ms: 0,
            pid_bumping: false,
            sequences: St::Sequences::with_limit(limits.partitions),
            extras: St::Extras::with_limit(limits.batches),
            outcomes_head: None,
            outcomes_tail: None,
            fatal: None,
            failing: None,
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

    pub(crate) const fn fatal(&self) -> Option<ErrorCode> {
        self.fatal
    }

    pub(crate) const fn is_closing(&self) -> bool {
        self.close_deadline.is_some()
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

    /// The next batch outcome: the batch is released and its tickets reported.
    fn poll_outcome(&mut self) -> Option<Event<'_>> {
        while let Some(index) = self.outcomes_head {
            let Some(e) = self.extras.get_mut(index as usize) else {
                self.outcomes_head = None;
                self.outcomes_tail = None;
                break;
            };
            self.outcomes_head = e.next_outcome;
            if self.outcomes_head.is_none() {
                self.outcomes_tail = None;
            }
            let (id, result) = (e.id, e.outcome);
            *e = no_extra();
            let Ok(batch) = self.acc.batch(id) else {
                continue;
            };
            let tp = batch.topic_partition();
            let Ok(released) = self.acc.complete(id) else {
                continue;
            };
            return Some(match result {
                Ok((base_offset, log_append_time_ms)) => {
                    self.metrics.batches_delivered += 1;
                    Event::Delivered {
                        topic: tp.topic,
                        partition: tp.partition,
                        tickets: released.tickets,
                        base_offset,
                        log_append_time_ms,
                    }
                }
                Err(error) => {
                    self.metrics.batches_failed += 1;
                    Event::Failed {
                        topic: tp.topic,
                        partition: tp.partition,
                        tickets: released.tickets,
                        error,
                    }
                }
            });
        }
        None
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
        if self.idempotent {
            self.maybe_init_producer_id(now_ms, io);
        }
        let ready_check = match self.pid_state {
            _ if !self.idempotent => self.send_produce(now_ms, io),
            PidState::Ready => self.send_produce(now_ms, io),
            PidState::BumpNeeded => self.send_unresolved(now_ms, io),
            PidState::None | PidState::Requesting => Default::default(),
        };
        self.compute_timeout(now_ms, ready_check);
    }

    fn compute_timeout(&mut self, now_ms: u64, check: crate::accumulator::ReadyCheck) {
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
            if let ConnState::Connecting { since_ms } = c.state {
                at(since_ms.saturating_add(self.config.socket_connection_setup_timeout_ms));
            }
            if let Some(front) = c.in_flight.front() {
                at(front.sent_ms.saturating_add(self.config.request_timeout_ms));
            }
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
        self.next_timeout = t;
    }

    // ---- requests ------------------------------------------------------------------------
}

// ---- producing and responses -----------------------------------------------------------

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage> Sender<S, St> {
    /// acks=0: the request's batches are delivered (offset unknown) once written.
    fn complete_unacknowledged(&mut self, k: usize, correlation_id: i32) {
        let mut i = 0;
        while let Some((j, id)) = self.next_request_batch(i, k, correlation_id) {
            i = j + 1;
            self.succeed(id, -1, -1);
        }
    }

    fn produce_request_failed(&mut self, now_ms: u64, k: usize, correlation_id: i32, cause: Cause) {
        let mut i = 0;
        while let Some((j, id)) = self.next_request_batch(i, k, correlation_id) {
            i = j + 1;
            if let Some(e) = self.extra_mut(id) {
                e.maybe_written = true;
            }
            self.retry_or_fail(now_ms, id, cause, false);
            // A batch the retry left in this request (it was not in flight) must not loop.
            if let Some(e) = self.extra_mut(id)
                && matches!(e.state, ExtraState::InRequest { .. })
            {
                e.state = ExtraState::Idle;
            }
        }
    }

    fn succeed(&mut self, id: BatchId, base_offset: i64, log_append_time_ms: i64) {
        if let Ok(b) = self.acc.batch(id) {
            let tp = b.topic_partition();
            self.acc.unmute(tp);
        }
        self.push_outcome(id, Ok((base_offset, log_append_time_ms)));
    }

    fn push_outcome(&mut self, id: BatchId, result: Result<(i64, i64), ProduceError>) {
        let Some(e) = self.extra_mut(id) else { return };
        if e.state == ExtraState::OutcomePending {
            return;
        }
        e.state = ExtraState::OutcomePending;
        e.outcome = result;
        e.next_outcome = None;
        // At most one outcome per live batch: queued through the sender's batch table.
        let Ok(index) = u32::try_from(id.index()) else {
            return;
        };
        match self.outcomes_tail {
            Some(tail) => {
                if let Some(t) = self.extras.get_mut(tail as usize) {
                    t.next_outcome = Some(index);
                }
            }
            None => self.outcomes_head = Some(index),
        }
        self.outcomes_tail = Some(index);
    }

    /// Retries batch `id` after `cause` unless its delivery timeout passed or retries ran
    /// out; `definitely_not_written` when the broker rejected it.
    fn retry_or_fail(
        &mut self,
        now_ms: u64,
        id: BatchId,
        cause: Cause,
        definitely_not_written: bool,
    ) {
        let Ok(b) = self.acc.batch(id) else { return };
        let (tp, created, attempts) = (b.topic_partition(), b.created_ms(), b.attempts());
        if b.state() != BatchState::InFlight {
            return;
        }
        self.acc.unmute(tp);
        if let Some(error) = self.failing {
            self.fail_batch(id, error, definitely_not_written);
            return;
        }
        if now_ms >= created.saturating_add(self.config.delivery_timeout_ms) {
            self.fail_batch(id, ProduceError::DeliveryTimeout, definitely_not_written);
        } else if attempts >= self.config.retries {
            self.fail_batch(id, cause.error(), definitely_not_written);
        } else if self.acc.reenqueue(now_ms, id).is_ok() {
            self.metrics.batches_retried += 1;
            if let Some(e) = self.extra_mut(id) {
                e.state = ExtraState::Idle;
            }
        } else {
            self.fail_batch(id, cause.error(), definitely_not_written);
        }
    }

    /// Fails batch `id`. With idempotence, a batch that had a sequence leaves a gap: the
    /// sequence is rewound when the broker surely did not write it (and no later batch of
    /// its partition has a sequence), else the epoch is bumped (Java's unresolved sequences).
    fn fail_batch(&mut self, id: BatchId, error: ProduceError, definitely_not_written: bool) {
        if self.idempotent
            && self.failing.is_none()
            && let Ok(tp) = self.acc.batch(id).map(|b| b.topic_partition())
            && let Some(stamp) = self.sequence_stamp(id)
        {
            let maybe_written = self.extra(id).is_some_and(|e| e.maybe_written);
            self.give_back_sequence(tp, stamp, maybe_written, definitely_not_written);
        }
        if let Ok(b) = self.acc.batch(id) {
            let tp = b.topic_partition();
            self.acc.unmute(tp);
        }
        self.push_outcome(id, Err(error));
    }

    /// `MESSAGE_TOO_LARGE` (or `RECORD_LIST_TOO_LARGE`): a batch of several records is split
    /// into smaller batches re-enqueued at the front of its partition, which carry its
    /// tickets (Java's `splitAndReenqueue`); a batch of one record fails with `code`.
    ///
    /// The broker refused the batch, so it did not write it: its sequence range is given
    /// back and the new batches get fresh sequences from the same point when drained (with
    /// idempotence a partition has one batch in flight, so no later batch holds a sequence).
    /// When the pool has no room for the new batches, the batch is retried as it is and
    /// split when refused again, once memory was freed.
    fn split_or_fail(&mut self, now_ms: u64, id: BatchId, code: ErrorCode) {
        let Ok(b) = self.acc.batch(id) else { return };
        let (tp, count) = (b.topic_partition(), b.record_count());
        if count < 2 || self.failing.is_some() {
            self.fail_batch(id, ProduceError::Broker { code }, true);
            return;
        }
        // Read before the split releases the batch.
        let stamp = self.sequence_stamp(id);
        let maybe_written = self.extra(id).is_some_and(|e| e.maybe_written);
        match self.acc.split(now_ms, id) {
            Ok(_) => {
                self.metrics.batches_split += 1;
                if let Some(e) = self.extras.get_mut(id.index())
                    && e.id == id
                {
                    *e = no_extra();
                }
                if self.idempotent
                    && let Some(stamp) = stamp
                {
                    self.give_back_sequence(tp, stamp, maybe_written, true);
                }
                self.acc.unmute(tp);
            }
            Err(AccumulatorError::Full | AccumulatorError::TooManyBatches) => {
                self.retry_or_fail(now_ms, id, Cause::Broker(code), true);
            }
            Err(_) => self.fail_batch(id, ProduceError::Broker { code }, true),
        }
    }

    fn enter_fatal(&mut self, code: ErrorCode) {
        if self.fatal.is_none() {
            self.fatal = Some(code);
        }
    }

    /// Closes every connection and fails every batch with `error` (fatal error, or the
    /// close timeout passed).
    fn fail_everything(&mut self, error: ProduceError) {
        self.failing = Some(error);
        for k in 0..self.conns.len() {
            if self.conns.get(k).is_some_and(|c| !c.is_free()) {
                // `failing` makes the in-flight batches fail instead of being retried.
                self.close_connection(0, k, true);
            }
        }
        self.fail_queued();
    }

    fn fail_queued(&mut self) {
        let Some(error) = self.failing else { return };
        while let Some(id) = self.acc.first_queued() {
            if self.acc.detach(id).is_err() {
                break;
            }
            self.push_outcome(id, Err(error));
        }
    }

    fn expire_batches(&mut self, now_ms: u64) {
        while let Some(id) = self.acc.first_expired(now_ms) {
            let was_retry = self
                .acc
                .batch(id)
                .is_ok_and(|b| b.state() == BatchState::Retry);
            if self.acc.detach(id).is_err() {
                break;
            }
            if was_retry {
                self.fail_batch(id, ProduceError::DeliveryTimeout, false);
            } else {
                self.push_outcome(id, Err(ProduceError::DeliveryTimeout));
            }
        }
    }

    // ---- responses -----------------------------------------------------------------------

    fn handle_metadata(&mut self, now_ms: u64, version: i16, body: &[u8]) -> bool {
        let Ok(resp) = MetadataResponse::decode(version, &mut Reader::new(body)) else {
            return false;
        };
        self.metadata.update_brokers(
            resp.brokers
                .iter()
                .filter_map(|b| Some((b.node_id, b.host, u16::try_from(b.port).ok()?))),
        );
        for t in resp.topics.iter() {
            let name = match t.name {
                Some(name) => Some(name),
                None => self
                    .metadata
                    .topic_by_uuid(&t.topic_id.0)
                    .and_then(|id| self.metadata.topic_name(id)),
            };
            let Some(name) = name else { continue };
            // The name borrows from `body` or from `self.metadata`: copy it out.
            let mut owned: heapless::String<{ crate::MAX_TOPIC_NAME_LEN }> =
                heapless::String::new();
            if owned.push_str(name).is_err() {
                continue;
            }
            self.metadata.update_topic(
                &owned,
                t.error_code,
                t.topic_id.0,
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.leader_id, p.leader_epoch)),
            );
        }
        self.metadata.update_done(now_ms);
        self.metrics.metadata_updates += 1;
        true
    }

    fn handle_init_producer_id(&mut self, now_ms: u64, version: i16, body: &[u8]) -> bool {
        let Ok(resp) = InitProducerIdResponse::decode(version, &mut Reader::new(body)) else {
            return false;
        };
        if self.pid_state != PidState::Requesting {
            return true;
        }
        match resp.error_code.class() {
            ErrorClass::None if resp.producer_id >= 0 => {
                self.producer_id = resp.producer_id;
                self.producer_epoch = resp.producer_epoch;
                self.pid_state = PidState::Ready;
                self.pid_attempts = 0;
                // A new epoch (or id) starts every partition's sequence at 0.
                self.sequences.clear();
                self.metrics.producer_id_changes += 1;
            }
            ErrorClass::Retriable | ErrorClass::RetriableWithMetadataRefresh => {
                self.init_producer_id_failed(now_ms);
            }
            _ if self.pid_bumping => {
                // The bump was refused (e.g. INVALID_PRODUCER_EPOCH): get a new producer id.
                self.producer_id = -1;
                self.producer_epoch = -1;
                self.init_producer_id_failed(now_ms);
            }
            _ => self.enter_fatal(resp.error_code),
        }
        true
    }

    fn handle_produce(
        &mut self,
        now_ms: u64,
        k: usize,
        correlation_id: i32,
        version: i16,
        body: &[u8],
    ) -> bool {
        let Ok(resp) = ProduceResponse::decode(version, &mut Reader::new(body)) else {
            return false;
        };
        for t in resp.responses.iter() {
            let topic = if version >= 13 {
                self.metadata.topic_by_uuid(&t.topic_id.0)
            } else {
                self.metadata.topic_id(t.name)
            };
            let Some(topic) = topic else { continue };
            for p in t.partition_responses.iter() {
                let tp = TopicPartition::new(topic, p.index);
                // A batch answered leaves the request's state, so a repeated partition in
                // the response finds nothing the second time.
                let mut i = 0;
                let mut found = None;
                while let Some((j, id)) = self.next_request_batch(i, k, correlation_id) {
                    i = j + 1;
                    if self.acc.batch(id).is_ok_and(|b| b.topic_partition() == tp) {
                        found = Some(id);
                        break;
                    }
                }
                let Some(id) = found else { continue };
                self.complete_batch(
                    now_ms,
                    id,
                    tp,
                    p.error_code,
                    p.base_offset,
                    p.log_append_time_ms,
                );
                if let Some(e) = self.extra_mut(id)
                    && matches!(e.state, ExtraState::InRequest { .. })
                {
                    e.state = ExtraState::Idle;
                }
            }
        }
        // Batches the response does not mention: retry as after a network error.
        let mut i = 0;
        while let Some((j, id)) = self.next_request_batch(i, k, correlation_id) {
            i = j + 1;
            self.retry_or_fail(
                now_ms,
                id,
                Cause::Broker(ErrorCode::NETWORK_EXCEPTION),
                false,
            );
            if let Some(e) = self.extra_mut(id)
                && matches!(e.state, ExtraState::InRequest { .. })
            {
                e.state = ExtraState::Idle;
            }
        }
        true
    }

    fn complete_batch(
        &mut self,
        now_ms: u64,
        id: BatchId,
        tp: TopicPartition,
        code: ErrorCode,
        base_offset: i64,
        log_append_time_ms: i64,
    ) {
        match code.class() {
            ErrorClass::None => self.succeed(id, base_offset, log_append_time_ms),
            ErrorClass::DuplicateSequence => self.succeed(
                id,
                if base_offset >= 0 { base_offset } else { -1 },
                log_append_time_ms,
            ),
            ErrorClass::RetriableWithMetadataRefresh => {
                self.metadata.invalidate_leader(tp);
                self.retry_or_fail(now_ms, id, Cause::Broker(code), true);
            }
            ErrorClass::Retriable => {
                // The leader may have appended before timing out on replication.
                let maybe = matches!(
                    code,
                    ErrorCode::REQUEST_TIMED_OUT | ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND
                );
                if maybe && let Some(e) = self.extra_mut(id) {
                    e.maybe_written = true;
                }
                self.retry_or_fail(now_ms, id, Cause::Broker(code), !maybe);
            }
            ErrorClass::SequenceError if self.idempotent => {
                // The broker lost our producer state (KIP-360): bump the epoch and retry
                // with fresh sequences, unless the batch already carries an older epoch.
                let current = self
                    .acc
                    .batch_bytes(id)
                    .ok()
                    .and_then(|bytes| RecordBatchHeader::new_checked(bytes).ok())
                    .is_some_and(|h| {
                        h.producer_id() == self.producer_id
                            && h.producer_epoch() == self.producer_epoch
                    });
                if current {
                    self.bump_epoch_when_ready();
                }
                // The broker has our state and says this is not the next sequence: it did
                // not write the batch (a duplicate would have been recognised).
                if let Some(e) = self.extra_mut(id) {
                    e.maybe_written = false;
                }
                self.retry_or_fail(now_ms, id, Cause::Broker(code), true);
            }
            ErrorClass::FatalForProducer => {
                self.enter_fatal(code);
                self.fail_batch(id, ProduceError::Fatal(code), true);
            }
            ErrorClass::MessageTooLarge => self.split_or_fail(now_ms, id, code),
            // The batch is larger than the broker's segments: smaller batches may fit.
            _ if code == ErrorCode::RECORD_LIST_TOO_LARGE => self.split_or_fail(now_ms, id, code),
            // Fatal-for-batch, and sequence errors without idempotence.
            _ => self.fail_batch(id, ProduceError::Broker { code }, true),
        }
    }
}
