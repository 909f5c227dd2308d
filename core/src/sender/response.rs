//! Responses and outcomes: Metadata and InitProducerId responses applied, each partition
//! of a Produce response completed by its error class (delivered, retried after a backoff,
//! split when too large, or failed), and every batch's single outcome queued for
//! `poll_event`, including the outcomes decided without a response (delivery timeout,
//! close deadline, fatal error).

use crate::accumulator::{AccumulatorError, BatchId, BatchState};
use crate::protocol::{
    ErrorClass, ErrorCode, InitProducerIdResponse, Message, MetadataResponse,
    PartitionProduceResponse, ProduceResponse, Reader,
};
use crate::record::Compressor;
use crate::security::AuthFailure;
use crate::storage::Storage;
use crate::topic::TopicPartition;

use super::idempotence::PidState;
use super::output::{Event, ProduceError};
use super::{ExtraState, Sender, no_extra};

/// Why a request of a batch did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
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

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage, C: Compressor> Sender<S, St, C> {
    // ---- responses -----------------------------------------------------------------------

    pub(super) fn handle_metadata(&mut self, now_ms: u64, version: i16, body: &[u8]) -> bool {
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
        // As Java's `Metadata`: a successful update clears an authentication failure (the
        // cluster answers an authenticated connection); sends resume, and a broker that
        // still refuses fails them again.
        self.auth_failure = None;
        true
    }

    pub(super) fn handle_init_producer_id(
        &mut self,
        now_ms: u64,
        version: i16,
        body: &[u8],
    ) -> bool {
        let Ok(resp) = InitProducerIdResponse::decode(version, &mut Reader::new(body)) else {
            return false;
        };
        if self.pid_state != PidState::Requesting {
            return true;
        }
        match resp.error_code.class() {
            ErrorClass::None if resp.producer_id >= 0 => {
                self.adopt_producer_id(resp.producer_id, resp.producer_epoch);
                self.pid_attempts = 0;
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

    pub(super) fn handle_produce(
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
        // Produce v6+: the broker answers at once and the client holds back (KIP-219).
        if version >= 6 {
            self.throttle(now_ms, k, resp.throttle_time_ms);
        }
        self.count_throttle(resp.throttle_time_ms);
        let endpoints = resp.node_endpoints;
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
                // KIP-951: a broker that is no longer the leader names the new one; take it
                // and retry there without waiting for a metadata round trip.
                let leader_moved = p.error_code.class() == ErrorClass::RetriableWithMetadataRefresh
                    && self.metadata.update_partition_leader(
                        tp,
                        p.current_leader.leader_id,
                        p.current_leader.leader_epoch,
                        endpoints
                            .iter()
                            .find(|e| e.node_id == p.current_leader.leader_id)
                            .and_then(|e| Some((e.host, u16::try_from(e.port).ok()?))),
                    );
                if leader_moved {
                    self.metrics.leader_hints_applied += 1;
                }
                self.complete_batch(now_ms, id, tp, &p, leader_moved);
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

    /// Applies the broker's answer `p` for batch `id` (of `tp`); `leader_moved`: a leader
    /// hint of the response was taken, so no metadata update is needed.
    fn complete_batch(
        &mut self,
        now_ms: u64,
        id: BatchId,
        tp: TopicPartition,
        p: &PartitionProduceResponse<'_>,
        leader_moved: bool,
    ) {
        let (code, base_offset, log_append_time_ms) =
            (p.error_code, p.base_offset, p.log_append_time_ms);
        match code.class() {
            ErrorClass::None => self.succeed(id, base_offset, log_append_time_ms),
            ErrorClass::DuplicateSequence => self.succeed(
                id,
                if base_offset >= 0 { base_offset } else { -1 },
                log_append_time_ms,
            ),
            ErrorClass::RetriableWithMetadataRefresh => {
                if !leader_moved {
                    self.metadata.invalidate_leader(tp);
                }
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
                // The broker lost our producer state (KIP-360), or a sequence is missing:
                // bump the epoch and retry with fresh sequences, unless the batch already
                // carries an older epoch. OUT_OF_ORDER_SEQUENCE_NUMBER for a batch that is
                // not the next after the last acknowledged is no gap: an earlier batch of
                // the partition failed and is retried first, then this one (Java's
                // `canRetry`).
                let stamp = self.sequence_stamp(id);
                let current = stamp
                    .is_some_and(|(p, e, _, _)| p == self.producer_id && e == self.producer_epoch);
                let gap = code != ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
                    || stamp.is_some_and(|(_, _, base, _)| self.is_next_sequence(tp, base));
                if current && gap {
                    self.bump_epoch_when_ready();
                }
                // The broker has our state and says this is not the next sequence: it did
                // not write the batch (a duplicate would have been recognised).
                if let Some(e) = self.extra_mut(id) {
                    e.maybe_written = false;
                }
                self.retry_or_fail(now_ms, id, Cause::Broker(code), true);
            }
            // A transactional Produce refused for the transaction's state (under transaction
            // version 2, the partition could not be added) fails the transaction, not the
            // producer (Java's `maybeTransitionToErrorState`).
            ErrorClass::FatalForProducer
                if code == ErrorCode::INVALID_TXN_STATE && self.config.is_transactional() =>
            {
                self.fail_batch(id, ProduceError::Broker { code }, true);
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

    // ---- retries and failures ------------------------------------------------------------

    pub(super) fn produce_request_failed(
        &mut self,
        now_ms: u64,
        k: usize,
        correlation_id: i32,
        cause: Cause,
    ) {
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
            self.count_retry(id);
            if let Some(e) = self.extra_mut(id) {
                e.state = ExtraState::Idle;
            }
        } else {
            self.fail_batch(id, cause.error(), definitely_not_written);
        }
    }

    /// Fails batch `id`. With idempotence, a batch that had a sequence leaves a gap, closed
    /// as [`give_back_sequence`](Self::give_back_sequence) says: sequences rewound or moved
    /// back when the broker surely wrote none of them, else an epoch bump.
    fn fail_batch(&mut self, id: BatchId, error: ProduceError, definitely_not_written: bool) {
        // Its request is over, whatever the outcome: the partition's drain rules see it so.
        self.acc.answered(id);
        if self.idempotent
            && self.failing.is_none()
            && let Ok(tp) = self.acc.batch(id).map(|b| b.topic_partition())
            && let Some(stamp) = self.sequence_stamp(id)
        {
            let maybe_written = self.extra(id).is_some_and(|e| e.maybe_written);
            self.give_back_sequence(tp, id, stamp, maybe_written, definitely_not_written);
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
    /// With idempotence the new batches share the batch's sequence range (see
    /// [`RecordAccumulator::split`](crate::accumulator::RecordAccumulator::split)), so the
    /// later batches of the partition, maybe in flight already, keep their sequences.
    /// When the pool has no room for the new batches, the batch is retried as it is and
    /// split when refused again, once memory was freed.
    fn split_or_fail(&mut self, now_ms: u64, id: BatchId, code: ErrorCode) {
        let Ok(b) = self.acc.batch(id) else { return };
        let (tp, count) = (b.topic_partition(), b.record_count());
        if count < 2 || self.failing.is_some() {
            self.fail_batch(id, ProduceError::Broker { code }, true);
            return;
        }
        match self.acc.split(now_ms, id) {
            Ok(_) => {
                self.metrics.batches_split += 1;
                if let Some(e) = self.extras.get_mut(id.index())
                    && e.id == id
                {
                    *e = no_extra();
                }
                self.acc.unmute(tp);
            }
            Err(AccumulatorError::Full | AccumulatorError::TooManyBatches) => {
                self.retry_or_fail(now_ms, id, Cause::Broker(code), true);
            }
            Err(_) => self.fail_batch(id, ProduceError::Broker { code }, true),
        }
    }

    // ---- outcomes without a response -----------------------------------------------------

    pub(super) fn enter_fatal(&mut self, code: ErrorCode) {
        if self.fatal.is_none() {
            self.fatal = Some(code);
        }
    }

    /// Closes every connection and fails every batch with `error` (fatal error, or the
    /// close timeout passed).
    pub(super) fn fail_everything(&mut self, error: ProduceError) {
        self.failing = Some(error);
        for k in 0..self.conns.len() {
            if self.conns.get(k).is_some_and(|c| !c.is_free()) {
                // `failing` makes the in-flight batches fail instead of being retried.
                self.close_connection(0, k, true);
            }
        }
        self.fail_queued();
    }

    pub(super) fn fail_queued(&mut self) {
        let Some(error) = self.failing else { return };
        while let Some(id) = self.acc.first_queued() {
            if self.acc.detach(id).is_err() {
                break;
            }
            self.push_outcome(id, Err(error));
        }
    }

    /// Authentication failed (SASL or TLS, on connection `k`): the connection closes, and
    /// every queued batch fails with it now rather than at its delivery timeout; new records
    /// are refused until a connection authenticates or a metadata update succeeds (Java
    /// fails sends with the `AuthenticationException` while its `Metadata` holds it).
    /// Batches in flight on other, authenticated connections go on.
    pub(super) fn authentication_failed(&mut self, now_ms: u64, k: usize, failure: AuthFailure) {
        let error = ProduceError::Authentication(failure.kind);
        self.auth_failure = Some(failure);
        // Find out (after the retry backoff) whether the cluster still answers.
        self.metadata.request_update();
        if self.conns.get(k).is_some_and(|c| !c.is_free()) {
            self.close_connection(now_ms, k, true);
        }
        while let Some(id) = self.acc.first_queued() {
            let was_retry = self
                .acc
                .batch(id)
                .is_ok_and(|b| b.state() == BatchState::Retry);
            if self.acc.detach(id).is_err() {
                break;
            }
            if was_retry {
                self.fail_batch(id, error, false);
            } else {
                self.push_outcome(id, Err(error));
            }
        }
    }

    pub(super) fn expire_batches(&mut self, now_ms: u64) {
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

    // ---- the outcome queue ---------------------------------------------------------------

    /// acks=0: the request's batches are delivered (offset unknown) once written.
    pub(super) fn complete_unacknowledged(&mut self, k: usize, correlation_id: i32) {
        let mut i = 0;
        while let Some((j, id)) = self.next_request_batch(i, k, correlation_id) {
            i = j + 1;
            self.succeed(id, -1, -1);
        }
    }

    fn succeed(&mut self, id: BatchId, base_offset: i64, log_append_time_ms: i64) {
        if let Ok(b) = self.acc.batch(id) {
            let tp = b.topic_partition();
            self.acc.unmute(tp);
            if self.idempotent
                && let Some(stamp) = self.sequence_stamp(id)
            {
                self.acknowledged(tp, stamp);
            }
        }
        self.push_outcome(id, Ok((base_offset, log_append_time_ms)));
    }

    /// Decides batch `id`'s outcome: queued for `poll_event`, or with idempotence held
    /// until the earlier batches of its partition have theirs (see
    /// [`outcome_must_wait`](Self::outcome_must_wait)).
    pub(super) fn push_outcome(&mut self, id: BatchId, result: Result<(i64, i64), ProduceError>) {
        self.acc.answered(id);
        let Some(e) = self.extra_mut(id) else { return };
        if matches!(
            e.state,
            ExtraState::OutcomePending | ExtraState::OutcomeHeld
        ) {
            return;
        }
        e.outcome = result;
        if let Err(error) = result {
            self.transaction_batch_failed(error);
        }
        if self.idempotent
            && self.outcome_must_wait(id)
            && let Some(e) = self.extra_mut(id)
        {
            e.state = ExtraState::OutcomeHeld;
            self.held_outcomes += 1;
            return;
        }
        self.queue_outcome(id);
        if self.held_outcomes > 0 {
            self.release_held_outcomes();
        }
    }

    /// Whether batch `id`'s outcome must wait for that of an earlier batch of its partition
    /// (sent before it, with a lower sequence) that has none yet, so that a partition's
    /// outcomes come in send order as Java completes them. That happens only around
    /// retries: an earlier batch that may have been written (REQUEST_TIMED_OUT) waits for
    /// its retry while a later one is acknowledged, say. The answers of one broker come in
    /// the order it was sent to (the accumulator sends a partition's batches to one broker
    /// at a time), so without a queued retry, a resend in flight or a held outcome, no
    /// earlier batch is unanswered, and the table is not searched.
    fn outcome_must_wait(&self, id: BatchId) -> bool {
        let Ok(b) = self.acc.batch(id) else {
            return false;
        };
        let (tp, order) = (b.topic_partition(), b.order());
        if self.acc.queued_before(tp, order) {
            return true;
        }
        let (in_flight, resend_in_flight) = self.acc.in_flight(tp);
        if self.held_outcomes == 0 && (in_flight == 0 || !(resend_in_flight || b.is_resend())) {
            return false;
        }
        self.extras.iter().any(|e| {
            e.id != id
                && matches!(
                    e.state,
                    ExtraState::InRequest { .. } | ExtraState::OutcomeHeld
                )
                && self
                    .acc
                    .batch(e.id)
                    .is_ok_and(|l| l.topic_partition() == tp && l.order() < order)
        })
    }

    /// Queues the held outcomes that need not wait any more, in send order.
    fn release_held_outcomes(&mut self) {
        while self.held_outcomes > 0 {
            let next = self
                .extras
                .iter()
                .find(|e| e.state == ExtraState::OutcomeHeld && !self.outcome_must_wait(e.id))
                .map(|e| e.id);
            let Some(id) = next else { break };
            self.held_outcomes -= 1;
            self.queue_outcome(id);
        }
    }

    /// Puts batch `id` (its outcome set) at the end of the outcome queue.
    fn queue_outcome(&mut self, id: BatchId) {
        let Some(e) = self.extra_mut(id) else { return };
        e.state = ExtraState::OutcomePending;
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

    /// The next batch outcome: the batch is released and its tickets reported.
    pub(super) fn poll_outcome(&mut self) -> Option<Event<'_>> {
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
                    self.count_failure(tp.topic, released.tickets.count());
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
}
