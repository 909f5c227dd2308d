//! Transactions: the transactional part of Java's `TransactionManager`, for a producer with
//! a `transactional.id`.
//!
//! The states are Java's ([`TransactionState`]). `init_transactions` finds the transaction
//! coordinator of the transactional id (FindCoordinator) and gets the producer id and epoch
//! from it (InitProducerId), which fences every older producer of the same id. Inside a
//! transaction a partition's batches are held back until AddPartitionsToTxn added the
//! partition (Java's `maybeAddPartition` / `isSendToPartitionAllowed`), and they carry the
//! transactional bit. Committing flushes, waits for every batch, then sends EndTxn(commit);
//! aborting fails the batches not sent yet with [`ProduceError::TransactionAborted`], waits
//! for those in flight, then sends EndTxn(abort). One coordinator request is in flight at a
//! time. Coordinator errors are retried (`NOT_COORDINATOR` and `COORDINATOR_NOT_AVAILABLE`
//! look the coordinator up again; `CONCURRENT_TRANSACTIONS` and loading back off); fencing
//! and authorization are fatal; a failed batch or a refused partition makes the
//! transaction abortable: commit is refused, abort allowed, and the producer is usable
//! again after it.
//!
//! Two transaction protocols, as Java 4.x's producer speaks them. Transaction version 1:
//! AddPartitionsToTxn (up to v3) before a partition's first batch and AddOffsetsToTxn before
//! TxnOffsetCommit (up to v4), EndTxn up to v4, Produce up to v11 for transactional
//! batches. Transaction version 2 (KIP-890 part 2), when the cluster finalized the feature
//! `transaction.version` at 2 or more (ApiVersions' finalized features; Apache Kafka 4.x
//! formats new clusters so): no AddPartitionsToTxn, since Produce v12+ adds the partition
//! to the transaction on the leader; no AddOffsetsToTxn, since TxnOffsetCommit v5 adds the
//! group; EndTxn v5, after which the coordinator has bumped the epoch (or, when it ran out,
//! handed out a new producer id with epoch 0) and returns it: the producer adopts it and
//! its sequences start again from 0. Under transaction version 2 an unresolved sequence
//! needs no InitProducerId of its own: the abort's EndTxn bumps the epoch. As in Java the
//! version is decided at `init_transactions` (once the coordinator answered) and read again
//! at the end of every transaction (from the newest finalized features any broker
//! reported): a downgrade takes effect there, an upgrade after an InitProducerId that bumps
//! the epoch (Java's `clientSideEpochBumpRequired`), which the commit or abort waits for.

use core::fmt;

use crate::accumulator::ReadyCheck;
use crate::backoff::exponential_backoff;
use heapless::String as HString;

use crate::config::MAX_TRANSACTIONAL_ID_LEN;
use crate::protocol::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, ApiKey,
    CoordinatorKey, EncodeError, EndTxnRequest, EndTxnResponse, ErrorCode, FindCoordinatorRequest,
    FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse, Message, Reader,
    TxnOffsetCommitResponse, Writer, len_prefix_len, nullable_string_len,
};
use crate::record::Compressor;
use crate::storage::{Storage, Table, TableFull, TableKind};
use crate::topic::{NodeId, TopicId, TopicPartition};

use super::connection::{Body, RequestKind, Target};
use super::idempotence::PidState;
use super::{Io, ProduceError, Sender};

/// The TxnOffsetCommit version of transaction version 2.
const TXN_OFFSET_COMMIT_TV2_VERSION: i16 = 5;

/// Java's `TransactionManager.ADD_PARTITIONS_RETRY_BACKOFF_MS`.
const ADD_PARTITIONS_RETRY_BACKOFF_MS: u64 = 20;

/// The first retry of the first AddPartitionsToTxn of a transaction refused with
/// `CONCURRENT_TRANSACTIONS` (the previous transaction's markers are still being written).
const ADD_PARTITIONS_FIRST_RETRY_MS: u64 = 2;

/// Where a transactional producer stands (Java's `TransactionManager.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransactionState {
    /// `init_transactions` has not been called.
    Uninitialized,
    /// Finding the coordinator and getting a producer id.
    Initializing,
    /// Ready to begin a transaction.
    Ready,
    /// In a transaction: records may be sent.
    InTransaction,
    /// Committing: flushing, then EndTxn(commit).
    CommittingTransaction,
    /// Aborting: failing what was not sent, then EndTxn(abort).
    AbortingTransaction,
    /// The transaction cannot commit; it must be aborted.
    AbortableError,
    /// The producer cannot carry on (fenced, not authorized, ...): close it.
    FatalError,
}

impl TransactionState {
    /// Java's name of the state.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Uninitialized => "UNINITIALIZED",
            Self::Initializing => "INITIALIZING",
            Self::Ready => "READY",
            Self::InTransaction => "IN_TRANSACTION",
            Self::CommittingTransaction => "COMMITTING_TRANSACTION",
            Self::AbortingTransaction => "ABORTING_TRANSACTION",
            Self::AbortableError => "ABORTABLE_ERROR",
            Self::FatalError => "FATAL_ERROR",
        }
    }
}

impl fmt::Display for TransactionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a transactional operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionError {
    /// A newer producer with the same `transactional.id` fenced this one
    /// (`PRODUCER_FENCED`, or `INVALID_PRODUCER_EPOCH` for a transactional producer; also
    /// what a commit gets after the coordinator aborted the transaction on
    /// `transaction.timeout.ms` under transaction version 1, where version 2 answers
    /// `INVALID_TXN_STATE`, [`Fatal`](Self::Fatal)). Fatal: close the producer.
    Fenced(ErrorCode),
    /// The transaction cannot commit (a batch failed, a partition was refused, ...): abort
    /// it, then the producer is usable again.
    Abortable(ProduceError),
    /// The producer cannot carry on (for example `TRANSACTIONAL_ID_AUTHORIZATION_FAILED`).
    Fatal(ErrorCode),
    /// The operation is not allowed in this state (Java's `IllegalStateException`), for
    /// example `begin_transaction` twice, or a commit in `ABORTABLE_ERROR`.
    InvalidState(TransactionState),
    /// The producer has no `transactional.id`.
    NotTransactional,
    /// A table is full (the partitions of the transaction).
    TableFull(TableFull),
}

impl TransactionError {
    /// Whether the producer cannot carry on (fenced or fatal).
    pub const fn is_fatal(&self) -> bool {
        matches!(self, Self::Fenced(_) | Self::Fatal(_))
    }
}

impl fmt::Display for TransactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Fenced(code) => write!(
                f,
                "there is a newer producer with the same transactional.id which fences this \
                 one ({code})"
            ),
            Self::Abortable(cause) => write!(
                f,
                "the transaction cannot be committed and must be aborted: {cause}"
            ),
            Self::Fatal(code) => write!(f, "the transactional producer failed: {code}"),
            Self::InvalidState(state) => write!(f, "invalid transition from state {state}"),
            Self::NotTransactional => f.write_str(
                "cannot use transactional methods without enabling transactions by setting \
                 the transactional.id configuration property",
            ),
            Self::TableFull(full) => write!(f, "{full}"),
        }
    }
}

impl core::error::Error for TransactionError {}

/// Where a partition of the transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddState {
    /// Records were appended; AddPartitionsToTxn not sent yet.
    Pending,
    /// In the AddPartitionsToTxn in flight.
    Adding,
    /// In the transaction: its batches may be sent.
    Added,
}

/// One entry of the transaction's partition table (opaque; 12 bytes).
#[derive(Debug, Clone, Copy)]
pub struct TxnPartition {
    tp: TopicPartition,
    state: AddState,
}

/// The operation the caller started and waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Init,
    Commit,
    Abort,
    SendOffsets,
}

/// Where `send_offsets_to_transaction` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OffsetsPhase {
    None,
    /// AddOffsetsToTxn to the transaction coordinator next.
    AddOffsets,
    /// TxnOffsetCommit to the group coordinator next.
    Commit,
}

/// A consumed offset to commit with the transaction
/// ([`Producer::send_offsets_to_transaction`](crate::Producer::send_offsets_to_transaction)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumedOffset<'a> {
    /// The consumed topic.
    pub topic: &'a str,
    /// The consumed partition.
    pub partition: i32,
    /// The offset to commit: the next record the group will read (the last consumed + 1).
    pub offset: i64,
}

/// The stored offsets: `[u16 name length][name][i32 partition][i64 offset]` each.
fn stored_offsets(bytes: &[u8]) -> impl Iterator<Item = (&str, i32, i64)> + '_ {
    let mut rest = bytes;
    core::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        let name = core::str::from_utf8(tail.get(..len)?).ok()?;
        let tail = tail.get(len..)?;
        let (partition, tail) = tail.split_first_chunk::<4>()?;
        let (offset, tail) = tail.split_first_chunk::<8>()?;
        rest = tail;
        Some((
            name,
            i32::from_be_bytes(*partition),
            i64::from_be_bytes(*offset),
        ))
    })
}

/// The transaction manager's state (held by the sender).
pub(super) struct Transactions<T, B> {
    state: TransactionState,
    /// The error behind `AbortableError` or `FatalError`.
    last_error: Option<TransactionError>,
    coordinator: Option<NodeId>,
    /// A coordinator request (FindCoordinator, InitProducerId, AddPartitionsToTxn, EndTxn)
    /// is in flight.
    in_flight: bool,
    /// Failed attempts in a row, for the backoff; and when the last one failed.
    attempts: u32,
    retry_after_ms: u64,
    /// The producer id's epoch must be bumped (an unresolved sequence): the abort does it
    /// with InitProducerId instead of EndTxn (KIP-360).
    bump_needed: bool,
    /// A partition was added in this transaction (else commit and abort need no EndTxn).
    started: bool,
    op: Option<Op>,
    result: Option<Result<(), TransactionError>>,
    partitions: T,
    offsets_phase: OffsetsPhase,
    /// The offsets of `send_offsets_to_transaction` (see [`stored_offsets`]).
    offsets: B,
    group_id: HString<MAX_TRANSACTIONAL_ID_LEN>,
    group_coordinator: Option<NodeId>,
    /// Transaction version 2 is in use (Java's `isTransactionV2Enabled`).
    tv2: bool,
    /// The newest finalized features seen in an ApiVersions answer: their epoch, and the
    /// level of `transaction.version` in them.
    features_epoch: i64,
    finalized_transaction_version: i16,
}

impl<T: Table<TxnPartition>, B: Table<u8>> Transactions<T, B> {
    pub(super) fn new(limit: usize, offset_bytes: usize) -> Self {
        Self {
            state: TransactionState::Uninitialized,
            last_error: None,
            coordinator: None,
            in_flight: false,
            attempts: 0,
            retry_after_ms: 0,
            bump_needed: false,
            started: false,
            op: None,
            result: None,
            partitions: T::with_limit(limit),
            offsets_phase: OffsetsPhase::None,
            offsets: B::with_limit(offset_bytes),
            group_id: HString::new(),
            group_coordinator: None,
            tv2: false,
            features_epoch: -1,
            finalized_transaction_version: 0,
        }
    }

    /// The finalized features of an ApiVersions answer: kept when newer than those known
    /// (Java's `ApiVersions.maxFinalizedFeaturesEpoch`).
    pub(super) fn note_finalized_features(&mut self, epoch: i64, transaction_version: i16) {
        if epoch > self.features_epoch {
            self.features_epoch = epoch;
            self.finalized_transaction_version = transaction_version;
        }
    }

    /// Decides the transaction version from the finalized features: fully when
    /// `initiating` (`init_transactions`, or the epoch bump of an upgrade), else only down
    /// to version 1 (see the module doc).
    fn update_transaction_version(&mut self, initiating: bool) {
        let tv2 = self.finalized_transaction_version >= 2;
        if initiating || !tv2 {
            self.tv2 = tv2;
        }
    }

    /// The entry of `tp` (the table is sorted by partition: a binary search, on the send
    /// path).
    fn entry(&self, tp: TopicPartition) -> Option<&TxnPartition> {
        let i = self.partitions.binary_search_by_key(&tp, |p| p.tp).ok()?;
        self.partitions.get(i)
    }

    fn is_added(&self, tp: TopicPartition) -> bool {
        self.entry(tp).is_some_and(|p| p.state == AddState::Added)
    }

    fn complete(&mut self, result: Result<(), TransactionError>) {
        if self.op.take().is_some() {
            self.result = Some(result);
        }
    }

    fn enter_fatal_error(&mut self, error: TransactionError) {
        self.state = TransactionState::FatalError;
        self.last_error = Some(error);
        self.complete(Err(error));
    }

    fn enter_abortable_error(&mut self, cause: ProduceError) {
        let error = TransactionError::Abortable(cause);
        match self.state {
            TransactionState::InTransaction => {
                self.state = TransactionState::AbortableError;
                self.last_error = Some(error);
                self.offsets_phase = OffsetsPhase::None;
                // A send_offsets_to_transaction in progress ends with it.
                self.complete(Err(error));
            }
            TransactionState::CommittingTransaction => {
                self.state = TransactionState::AbortableError;
                self.last_error = Some(error);
                self.complete(Err(error));
            }
            _ => {}
        }
    }

    /// Back off before the next coordinator request (`retry.backoff.ms`, doubling).
    fn retry_later(&mut self, now_ms: u64, base_ms: u64, max_ms: u64) {
        self.attempts = self.attempts.saturating_add(1);
        self.retry_after_ms =
            now_ms.saturating_add(exponential_backoff(self.attempts, base_ms, max_ms));
    }
}

/// The error of a coordinator's answer, as Java's `TxnRequestHandler`s class it.
enum Verdict {
    Ok,
    /// Look the coordinator up again, then retry.
    FindCoordinator,
    /// Retry after the backoff.
    Retry,
    Fenced,
    Abortable,
    Fatal,
}

fn verdict(code: ErrorCode) -> Verdict {
    match code {
        ErrorCode::NONE => Verdict::Ok,
        ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE => {
            Verdict::FindCoordinator
        }
        ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
        | ErrorCode::CONCURRENT_TRANSACTIONS
        | ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        | ErrorCode::OPERATION_NOT_ATTEMPTED
        | ErrorCode::REQUEST_TIMED_OUT => Verdict::Retry,
        ErrorCode::PRODUCER_FENCED
        | ErrorCode::INVALID_PRODUCER_EPOCH
        | ErrorCode::TRANSACTION_COORDINATOR_FENCED => Verdict::Fenced,
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
        | ErrorCode::GROUP_AUTHORIZATION_FAILED
        | ErrorCode::TRANSACTION_ABORTABLE
        | ErrorCode::ILLEGAL_GENERATION
        | ErrorCode::UNKNOWN_MEMBER_ID
        | ErrorCode::FENCED_INSTANCE_ID => Verdict::Abortable,
        _ => Verdict::Fatal,
    }
}

/// The body of an AddPartitionsToTxn (v0-3) for the partitions being added, written
/// straight from the partition table (grouped by topic) without a copy of it.
struct AddPartitionsBody<'a, T, F> {
    transactional_id: &'a str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &'a T,
    /// A topic's name.
    name: F,
}

impl<'a, T: Table<TxnPartition>, F: Fn(TopicId) -> &'a str> AddPartitionsBody<'a, T, F> {
    /// The topics being added, each with its partition count, in table order (the table
    /// is sorted by partition, so a topic's partitions are together).
    fn topics(&self) -> impl Iterator<Item = (&str, usize, usize)> + '_ {
        let adding = |p: &&TxnPartition| p.state == AddState::Adding;
        let mut i = 0;
        core::iter::from_fn(move || {
            let rest = self.partitions.get(i..)?;
            let start = i + rest.iter().position(|p| p.state == AddState::Adding)?;
            let topic = self.partitions.get(start)?.tp.topic;
            let end = start
                + self
                    .partitions
                    .get(start..)?
                    .iter()
                    .take_while(|p| p.tp.topic == topic)
                    .count();
            i = end;
            let count = self
                .partitions
                .get(start..end)?
                .iter()
                .filter(adding)
                .count();
            Some(((self.name)(topic), start, count))
        })
    }
}

impl<'a, T: Table<TxnPartition>, F: Fn(TopicId) -> &'a str> Body for AddPartitionsBody<'a, T, F> {
    fn body_len(&self, version: i16) -> usize {
        let flexible = ApiKey::AddPartitionsToTxn.is_flexible(version);
        let tags = usize::from(flexible);
        let mut n = nullable_string_len(flexible, Some(self.transactional_id)) + 10 + tags;
        let topics = self.topics().count();
        n += len_prefix_len(flexible, Some(topics));
        for (name, _, count) in self.topics() {
            n = n
                .saturating_add(nullable_string_len(flexible, Some(name)))
                .saturating_add(len_prefix_len(flexible, Some(count)))
                .saturating_add(4 * count)
                .saturating_add(tags);
        }
        n
    }

    fn encode_body(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = ApiKey::AddPartitionsToTxn.is_flexible(version);
        w.write_string_in(flexible, self.transactional_id)?;
        w.write_i64(self.producer_id)?;
        w.write_i16(self.producer_epoch)?;
        w.write_array_len_in(flexible, Some(self.topics().count()))?;
        for (name, start, count) in self.topics() {
            w.write_string_in(flexible, name)?;
            w.write_array_len_in(flexible, Some(count))?;
            let topic = self.partitions.get(start).map(|p| p.tp.topic);
            for p in self.partitions.get(start..).unwrap_or_default() {
                if Some(p.tp.topic) != topic {
                    break;
                }
                if p.state == AddState::Adding {
                    w.write_i32(p.tp.partition)?;
                }
            }
            w.write_empty_tagged_fields_in(flexible)?;
        }
        w.write_empty_tagged_fields_in(flexible)
    }
}

/// The body of a TxnOffsetCommit (v0-4) from the stored offsets (consecutive offsets of the
/// same topic share a topic entry), without membership (generation -1, no member id).
struct TxnOffsetCommitBody<'a, B> {
    transactional_id: &'a str,
    group_id: &'a str,
    producer_id: i64,
    producer_epoch: i16,
    offsets: &'a B,
}

impl<B: Table<u8>> TxnOffsetCommitBody<'_, B> {
    /// The topics: name, index of the first offset, count.
    fn topics(&self) -> impl Iterator<Item = (&str, usize, usize)> + '_ {
        let mut i = 0;
        let mut entries = stored_offsets(self.offsets).peekable();
        core::iter::from_fn(move || {
            let (name, _, _) = *entries.peek()?;
            let start = i;
            while entries.next_if(|(n, _, _)| *n == name).is_some() {
                i += 1;
            }
            Some((name, start, i - start))
        })
    }
}

impl<B: Table<u8>> Body for TxnOffsetCommitBody<'_, B> {
    fn body_len(&self, version: i16) -> usize {
        let flexible = ApiKey::TxnOffsetCommit.is_flexible(version);
        let tags = usize::from(flexible);
        let mut n = nullable_string_len(flexible, Some(self.transactional_id))
            .saturating_add(nullable_string_len(flexible, Some(self.group_id)))
            .saturating_add(10 + tags);
        if version >= 3 {
            n += 4 + nullable_string_len(flexible, Some("")) + nullable_string_len(flexible, None);
        }
        n = n.saturating_add(len_prefix_len(flexible, Some(self.topics().count())));
        let partition =
            12 + if version >= 2 { 4 } else { 0 } + nullable_string_len(flexible, Some("")) + tags;
        for (name, _, count) in self.topics() {
            n = n
                .saturating_add(nullable_string_len(flexible, Some(name)))
                .saturating_add(len_prefix_len(flexible, Some(count)))
                .saturating_add(partition.saturating_mul(count))
                .saturating_add(tags);
        }
        n
    }

    fn encode_body(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = ApiKey::TxnOffsetCommit.is_flexible(version);
        w.write_string_in(flexible, self.transactional_id)?;
        w.write_string_in(flexible, self.group_id)?;
        w.write_i64(self.producer_id)?;
        w.write_i16(self.producer_epoch)?;
        if version >= 3 {
            w.write_i32(-1)?;
            w.write_string_in(flexible, "")?;
            w.write_nullable_string_in(flexible, None)?;
        }
        w.write_array_len_in(flexible, Some(self.topics().count()))?;
        for (name, start, count) in self.topics() {
            w.write_string_in(flexible, name)?;
            w.write_array_len_in(flexible, Some(count))?;
            for (_, partition, offset) in stored_offsets(self.offsets).skip(start).take(count) {
                w.write_i32(partition)?;
                w.write_i64(offset)?;
                if version >= 2 {
                    w.write_i32(-1)?;
                }
                w.write_nullable_string_in(flexible, Some(""))?;
                w.write_empty_tagged_fields_in(flexible)?;
            }
            w.write_empty_tagged_fields_in(flexible)?;
        }
        w.write_empty_tagged_fields_in(flexible)
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage, C: Compressor> Sender<S, St, C> {
    // ---- getters and commands ------------------------------------------------------------

    /// Whether the producer has a `transactional.id`.
    pub(crate) fn is_transactional(&self) -> bool {
        self.config.is_transactional()
    }

    pub(crate) fn transaction_state(&self) -> TransactionState {
        self.txn.state
    }

    /// The transaction version in use (1 or 2), once `init_transactions` got a producer id.
    pub(crate) fn transaction_version(&self) -> Option<u8> {
        let initialized = !matches!(
            self.txn.state,
            TransactionState::Uninitialized | TransactionState::Initializing
        );
        (self.is_transactional() && initialized).then_some(if self.txn.tv2 { 2 } else { 1 })
    }

    /// Whether transactional batches go with Produce v12+ (transaction version 2).
    pub(super) fn transaction_v2(&self) -> bool {
        self.is_transactional() && self.txn.tv2
    }

    /// Whether a record may be sent now (Java's `maybeAddPartition` checks), and the error
    /// to refuse it with otherwise.
    pub(crate) fn check_send_allowed(&self) -> Result<(), TransactionError> {
        if !self.is_transactional() {
            return Ok(());
        }
        match self.txn.state {
            TransactionState::InTransaction => Ok(()),
            TransactionState::AbortableError | TransactionState::FatalError => Err(self
                .txn
                .last_error
                .unwrap_or(TransactionError::InvalidState(self.txn.state))),
            state => Err(TransactionError::InvalidState(state)),
        }
    }

    /// Adds `tp` to the transaction's partitions (sent with the next AddPartitionsToTxn)
    /// before a record is appended to it; `true` when it is new to the transaction (then
    /// the caller drives at once, as Java wakes its sender: the AddPartitionsToTxn goes
    /// without waiting for `linger.ms`).
    pub(crate) fn add_partition_to_transaction(
        &mut self,
        tp: TopicPartition,
    ) -> Result<bool, TransactionError> {
        if !self.is_transactional() {
            return Ok(false);
        }
        // Under transaction version 2 the partition's first Produce adds it (on the leader).
        let state = if self.txn.tv2 {
            AddState::Added
        } else {
            AddState::Pending
        };
        let parts = &mut self.txn.partitions;
        let Err(at) = parts.binary_search_by_key(&tp, |p| p.tp) else {
            return Ok(false);
        };
        let limit = parts.limit();
        parts.push(TxnPartition { tp, state }).map_err(|_| {
            TransactionError::TableFull(TableFull {
                table: TableKind::Partitions,
                limit,
            })
        })?;
        if let Some(tail) = parts.get_mut(at..) {
            tail.rotate_right(1);
        }
        if self.txn.tv2 {
            // The transaction has begun on the coordinator once that Produce went.
            self.txn.started = true;
        }
        Ok(true)
    }

    /// Starts `init_transactions` (again after a timeout: it resumes).
    pub(crate) fn init_transactions(
        &mut self,
        now_ms: u64,
        io: &mut Io<St>,
    ) -> Result<(), TransactionError> {
        self.start_op(
            Op::Init,
            |s| s == TransactionState::Uninitialized,
            TransactionState::Initializing,
        )?;
        self.drive(now_ms, io);
        Ok(())
    }

    pub(crate) fn begin_transaction(&mut self) -> Result<(), TransactionError> {
        if !self.is_transactional() {
            return Err(TransactionError::NotTransactional);
        }
        match self.txn.state {
            TransactionState::Ready => {
                self.txn.state = TransactionState::InTransaction;
                self.txn.result = None;
                Ok(())
            }
            TransactionState::FatalError => Err(self
                .txn
                .last_error
                .unwrap_or(TransactionError::InvalidState(self.txn.state))),
            state => Err(TransactionError::InvalidState(state)),
        }
    }

    pub(crate) fn commit_transaction(
        &mut self,
        now_ms: u64,
        io: &mut Io<St>,
    ) -> Result<(), TransactionError> {
        if self.txn.state == TransactionState::AbortableError {
            return Err(self
                .txn
                .last_error
                .unwrap_or(TransactionError::InvalidState(self.txn.state)));
        }
        self.start_op(
            Op::Commit,
            |s| s == TransactionState::InTransaction,
            TransactionState::CommittingTransaction,
        )?;
        // Commit flushes: lingering batches go at once.
        if self.acc.batch_count() > 0 {
            self.begin_flush();
        }
        self.drive(now_ms, io);
        Ok(())
    }

    pub(crate) fn abort_transaction(
        &mut self,
        now_ms: u64,
        io: &mut Io<St>,
    ) -> Result<(), TransactionError> {
        self.start_op(
            Op::Abort,
            |s| {
                matches!(
                    s,
                    TransactionState::InTransaction | TransactionState::AbortableError
                )
            },
            TransactionState::AbortingTransaction,
        )?;
        self.txn.offsets_phase = OffsetsPhase::None;
        self.drive(now_ms, io);
        Ok(())
    }

    /// Starts Java's `sendOffsetsToTransaction`: AddOffsetsToTxn to the transaction
    /// coordinator, then TxnOffsetCommit of `offsets` for `group_id` to the group's
    /// coordinator (generation -1, no member id: no group membership check).
    pub(crate) fn send_offsets_to_transaction(
        &mut self,
        now_ms: u64,
        offsets: &[ConsumedOffset<'_>],
        group_id: &str,
        io: &mut Io<St>,
    ) -> Result<(), TransactionError> {
        if !self.is_transactional() {
            return Err(TransactionError::NotTransactional);
        }
        if self.txn.state != TransactionState::InTransaction {
            return Err(self
                .txn
                .last_error
                .filter(|_| self.txn.state == TransactionState::AbortableError)
                .unwrap_or(TransactionError::InvalidState(self.txn.state)));
        }
        if self.txn.op == Some(Op::SendOffsets) {
            return Ok(());
        }
        let full = TransactionError::TableFull(TableFull {
            table: TableKind::RequestBytes,
            limit: self.txn.offsets.limit(),
        });
        let mut group = HString::new();
        group.push_str(group_id).map_err(|_| full)?;
        let bytes = &mut self.txn.offsets;
        bytes.clear();
        for o in offsets {
            let len = u16::try_from(o.topic.len()).map_err(|_| full)?;
            for part in [
                &len.to_be_bytes()[..],
                o.topic.as_bytes(),
                &o.partition.to_be_bytes(),
                &o.offset.to_be_bytes(),
            ] {
                for &b in part {
                    bytes.push(b).map_err(|_| full)?;
                }
            }
        }
        if self.txn.group_id != group {
            self.txn.group_coordinator = None;
        }
        self.txn.group_id = group;
        self.txn.offsets_phase = if self.txn.tv2 {
            // TxnOffsetCommit v5 adds the group's offsets partition itself.
            self.txn.started = true;
            OffsetsPhase::Commit
        } else {
            OffsetsPhase::AddOffsets
        };
        self.txn.op = Some(Op::SendOffsets);
        self.txn.result = None;
        self.drive(now_ms, io);
        Ok(())
    }

    /// The result of the operation started last, once it finished (taken).
    pub(crate) fn poll_transaction(&mut self) -> Option<Result<(), TransactionError>> {
        self.txn.result.take()
    }

    /// Starts `op` from a state `from` accepts, into `to`; the same operation started again
    /// while it runs resumes it (Java's retry after a timeout).
    fn start_op(
        &mut self,
        op: Op,
        from: impl Fn(TransactionState) -> bool,
        to: TransactionState,
    ) -> Result<(), TransactionError> {
        if !self.is_transactional() {
            return Err(TransactionError::NotTransactional);
        }
        let state = self.txn.state;
        // The epoch bump of an upgrade to transaction version 2 ends a commit or abort.
        let bumping =
            state == TransactionState::Initializing && matches!(op, Op::Commit | Op::Abort);
        if (state == to || bumping) && self.txn.op == Some(op) {
            return Ok(());
        }
        if state == TransactionState::FatalError {
            return Err(self
                .txn
                .last_error
                .unwrap_or(TransactionError::InvalidState(state)));
        }
        if !from(state) {
            return Err(TransactionError::InvalidState(state));
        }
        self.txn.state = to;
        self.txn.op = Some(op);
        self.txn.result = None;
        Ok(())
    }

    // ---- the decision loop ---------------------------------------------------------------

    /// A batch failed: in a transaction that makes it abortable (or fatal when the producer
    /// is); called for every batch outcome that is an error.
    pub(super) fn transaction_batch_failed(&mut self, error: ProduceError) {
        if !self.is_transactional() {
            return;
        }
        match error {
            ProduceError::Fatal(code) => self.txn.enter_fatal_error(fatal_error(code)),
            ProduceError::TransactionAborted => {}
            cause => self.txn.enter_abortable_error(cause),
        }
    }

    /// Drives the transaction (from `drive`, before producing): fatal errors, batches to
    /// fail on abort, and the next coordinator request.
    pub(super) fn drive_transaction(&mut self, now_ms: u64, io: &mut Io<St>) {
        if let Some(code) = self.fatal
            && self.txn.state != TransactionState::FatalError
        {
            self.txn.enter_fatal_error(fatal_error(code));
        }
        if self.pid_state == PidState::BumpNeeded && !self.txn.bump_needed {
            // An unresolved sequence (KIP-360): the transaction cannot commit; the abort
            // bumps the epoch.
            self.txn.bump_needed = true;
            self.txn.enter_abortable_error(ProduceError::Broker {
                code: ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
            });
        }
        if matches!(
            self.txn.state,
            TransactionState::AbortingTransaction | TransactionState::AbortableError
        ) {
            // Nothing more of this transaction is sent (Java's `abortUndrainedBatches`).
            while let Some(id) = self.acc.first_queued() {
                if self.acc.detach(id).is_err() {
                    break;
                }
                self.push_outcome(id, Err(ProduceError::TransactionAborted));
            }
        }
        if self.txn.in_flight || now_ms < self.txn.retry_after_ms {
            return;
        }
        let request = match self.txn.state {
            TransactionState::Initializing => Some(RequestKind::TxnInitProducerId),
            TransactionState::InTransaction | TransactionState::CommittingTransaction
                if self
                    .txn
                    .partitions
                    .iter()
                    .any(|p| p.state == AddState::Pending) =>
            {
                Some(RequestKind::AddPartitionsToTxn)
            }
            TransactionState::InTransaction | TransactionState::CommittingTransaction
                if self.txn.offsets_phase == OffsetsPhase::AddOffsets =>
            {
                Some(RequestKind::AddOffsetsToTxn)
            }
            TransactionState::InTransaction | TransactionState::CommittingTransaction
                if self.txn.offsets_phase == OffsetsPhase::Commit =>
            {
                Some(RequestKind::TxnOffsetCommit)
            }
            TransactionState::CommittingTransaction if self.transaction_flushed() => {
                if self.txn.started {
                    Some(RequestKind::EndTxn)
                } else {
                    self.end_transaction();
                    None
                }
            }
            TransactionState::AbortingTransaction if self.transaction_flushed() => {
                // Under transaction version 2 the EndTxn bumps the epoch.
                if self.txn.bump_needed && !self.txn.tv2 {
                    Some(RequestKind::TxnInitProducerId)
                } else if self.txn.started {
                    Some(RequestKind::EndTxn)
                } else {
                    self.end_transaction();
                    None
                }
            }
            _ => None,
        };
        if let Some(kind) = request {
            self.send_coordinator_request(now_ms, kind, io);
        }
    }

    /// Every batch of the transaction has its answer: none queued or in flight.
    fn transaction_flushed(&self) -> bool {
        self.acc.first_queued().is_none() && self.in_flight_batches() == 0
    }

    /// The transaction ended (committed or aborted): ready for the next one.
    fn end_transaction(&mut self) {
        self.txn.partitions.clear();
        self.txn.started = false;
        if !self.txn.tv2 && self.txn.finalized_transaction_version >= 2 {
            // The cluster moved to transaction version 2 during this producer's life: as
            // Java (`clientSideEpochBumpRequired`), bump the epoch with InitProducerId
            // before the first transaction of version 2; the operation ends with it.
            self.txn.state = TransactionState::Initializing;
            self.txn.last_error = None;
            return;
        }
        self.txn.update_transaction_version(false);
        self.txn.state = TransactionState::Ready;
        self.txn.last_error = None;
        self.txn.complete(Ok(()));
    }

    /// Holds back the batches of partitions not added to the transaction yet, around
    /// `send_produce`.
    pub(super) fn send_produce_in_transaction(
        &mut self,
        now_ms: u64,
        io: &mut Io<St>,
    ) -> ReadyCheck {
        let Self { acc, txn, .. } = self;
        acc.hold_where(|_, batch, _| !txn.is_added(batch.topic_partition()));
        let check = self.send_produce(now_ms, io);
        self.acc.release_holds();
        check
    }

    /// When the transaction manager wants to be woken (a backoff ending).
    pub(super) fn transaction_wakeup(&self, now_ms: u64) -> Option<u64> {
        (self.is_transactional() && !self.txn.in_flight && self.txn.retry_after_ms > now_ms)
            .then_some(self.txn.retry_after_ms)
    }

    fn send_coordinator_request(&mut self, now_ms: u64, kind: RequestKind, io: &mut Io<St>) {
        let group = kind == RequestKind::TxnOffsetCommit;
        let coordinator = if group {
            self.txn.group_coordinator
        } else {
            self.txn.coordinator
        };
        let Some(node) = coordinator else {
            self.find_coordinator(now_ms, group, io);
            return;
        };
        let target = Target::Node(node);
        let Some(k) = self.find_conn(target) else {
            if self.metadata.broker(node).is_none() {
                self.metadata.request_update();
            } else if !self.backing_off(target, now_ms) {
                let _ = self.open_connection(now_ms, target);
            }
            return;
        };
        let max = self.config.max_in_flight_requests_per_connection;
        let Some(versions) = self
            .conns
            .get(k)
            .filter(|c| c.can_send(max))
            .and_then(|c| c.versions)
        else {
            return;
        };
        let id = self.config.transactional_id.clone();
        let (pid, epoch) = (self.producer_id, self.producer_epoch);
        let sent = match kind {
            RequestKind::TxnInitProducerId => {
                let Some(version) = versions.init_producer_id else {
                    self.txn
                        .enter_fatal_error(TransactionError::Fatal(ErrorCode::UNSUPPORTED_VERSION));
                    return;
                };
                let mut request = InitProducerIdRequest {
                    transactional_id: Some(id.as_str()),
                    transaction_timeout_ms: i32::try_from(self.config.transaction_timeout_ms)
                        .unwrap_or(i32::MAX),
                    producer_id: -1,
                    producer_epoch: -1,
                };
                if version >= 3 && pid >= 0 {
                    // KIP-360: keep the producer id, bump its epoch (aborting any open
                    // transaction of it).
                    request.producer_id = pid;
                    request.producer_epoch = epoch;
                }
                self.send_request(now_ms, k, kind, version, &request, io)
            }
            RequestKind::AddPartitionsToTxn => {
                let Some(version) = versions.add_partitions_to_txn else {
                    self.txn
                        .enter_fatal_error(TransactionError::Fatal(ErrorCode::UNSUPPORTED_VERSION));
                    return;
                };
                for p in self.txn.partitions.iter_mut() {
                    if p.state == AddState::Pending {
                        p.state = AddState::Adding;
                    }
                }
                let correlation_id = self.next_correlation_id();
                let metadata = &self.metadata;
                let body = AddPartitionsBody {
                    transactional_id: id.as_str(),
                    producer_id: pid,
                    producer_epoch: epoch,
                    partitions: &self.txn.partitions,
                    name: |topic| metadata.topic_name(topic).unwrap_or(""),
                };
                let written = self.write_whole(io, k, kind, version, correlation_id, &body);
                let sent = self.start_whole(now_ms, k, kind, version, correlation_id, written);
                if sent {
                    self.metrics.add_partitions_requests += 1;
                } else {
                    for p in self.txn.partitions.iter_mut() {
                        if p.state == AddState::Adding {
                            p.state = AddState::Pending;
                        }
                    }
                }
                sent
            }
            RequestKind::EndTxn => {
                let Some(version) = versions.end_txn else {
                    self.txn
                        .enter_fatal_error(TransactionError::Fatal(ErrorCode::UNSUPPORTED_VERSION));
                    return;
                };
                // v5 only under transaction version 2 (Java's `EndTxnRequest.Builder`).
                let version = if self.txn.tv2 {
                    version
                } else {
                    version.min(EndTxnResponse::PRODUCER_ID_VERSION - 1)
                };
                let request = EndTxnRequest {
                    transactional_id: id.as_str(),
                    producer_id: pid,
                    producer_epoch: epoch,
                    committed: self.txn.state == TransactionState::CommittingTransaction,
                };
                self.send_request(now_ms, k, kind, version, &request, io)
            }
            RequestKind::AddOffsetsToTxn => {
                let Some(version) = versions.add_offsets_to_txn else {
                    self.txn
                        .enter_fatal_error(TransactionError::Fatal(ErrorCode::UNSUPPORTED_VERSION));
                    return;
                };
                let group_id = self.txn.group_id.clone();
                let request = AddOffsetsToTxnRequest {
                    transactional_id: id.as_str(),
                    producer_id: pid,
                    producer_epoch: epoch,
                    group_id: group_id.as_str(),
                };
                self.send_request(now_ms, k, kind, version, &request, io)
            }
            RequestKind::TxnOffsetCommit => {
                let Some(version) = versions.txn_offset_commit else {
                    self.txn
                        .enter_fatal_error(TransactionError::Fatal(ErrorCode::UNSUPPORTED_VERSION));
                    return;
                };
                // v5 only under transaction version 2 (Java's `TxnOffsetCommitRequest.Builder`).
                let version = if self.txn.tv2 {
                    version
                } else {
                    version.min(TXN_OFFSET_COMMIT_TV2_VERSION - 1)
                };
                let correlation_id = self.next_correlation_id();
                let body = TxnOffsetCommitBody {
                    transactional_id: id.as_str(),
                    group_id: self.txn.group_id.as_str(),
                    producer_id: pid,
                    producer_epoch: epoch,
                    offsets: &self.txn.offsets,
                };
                let written = self.write_whole(io, k, kind, version, correlation_id, &body);
                self.start_whole(now_ms, k, kind, version, correlation_id, written)
            }
            _ => false,
        };
        if sent {
            self.txn.in_flight = true;
        }
    }

    fn find_coordinator(&mut self, now_ms: u64, group: bool, io: &mut Io<St>) {
        let Some(k) = self.pick_ready_conn() else {
            self.want_any_connection(now_ms);
            return;
        };
        let Some(version) = self
            .conns
            .get(k)
            .and_then(|c| c.versions)
            .and_then(|v| v.find_coordinator)
        else {
            self.txn
                .enter_fatal_error(TransactionError::Fatal(ErrorCode::UNSUPPORTED_VERSION));
            return;
        };
        let (id, key_type, kind) = if group {
            (
                self.txn.group_id.clone(),
                FindCoordinatorRequest::KEY_TYPE_GROUP,
                RequestKind::FindGroupCoordinator,
            )
        } else {
            (
                self.config.transactional_id.clone(),
                FindCoordinatorRequest::KEY_TYPE_TRANSACTION,
                RequestKind::FindCoordinator,
            )
        };
        let key = CoordinatorKey(id.as_str());
        let request = FindCoordinatorRequest::new(key_type, &key);
        if self.send_request(now_ms, k, kind, version, &request, io) {
            self.txn.in_flight = true;
        }
    }

    // ---- responses -----------------------------------------------------------------------

    /// A coordinator request failed without an answer (connection closed, timed out): look
    /// the coordinator up again and retry.
    pub(super) fn transaction_request_failed(&mut self, now_ms: u64, kind: RequestKind) {
        if !self.is_transactional() {
            return;
        }
        self.txn.in_flight = false;
        if matches!(
            kind,
            RequestKind::TxnOffsetCommit | RequestKind::FindGroupCoordinator
        ) {
            self.txn.group_coordinator = None;
        } else {
            self.txn.coordinator = None;
        }
        if kind == RequestKind::AddPartitionsToTxn {
            for p in self.txn.partitions.iter_mut() {
                if p.state == AddState::Adding {
                    p.state = AddState::Pending;
                }
            }
        }
        let (base, max) = (
            self.config.retry_backoff_ms,
            self.config.retry_backoff_max_ms,
        );
        self.txn.retry_later(now_ms, base, max);
    }

    /// A coordinator response; `false` when it does not decode.
    pub(super) fn handle_transaction_response(
        &mut self,
        now_ms: u64,
        kind: RequestKind,
        version: i16,
        body: &[u8],
    ) -> bool {
        if !self.is_transactional() {
            return false;
        }
        self.txn.in_flight = false;
        let mut r = Reader::new(body);
        // The producer id and epoch an EndTxn v5 returned.
        let mut next_producer_id = None;
        let code = match kind {
            RequestKind::FindCoordinator | RequestKind::FindGroupCoordinator => {
                let Ok(resp) = FindCoordinatorResponse::decode(version, &mut r) else {
                    return false;
                };
                let group = kind == RequestKind::FindGroupCoordinator;
                let id = if group {
                    self.txn.group_id.clone()
                } else {
                    self.config.transactional_id.clone()
                };
                let Some(c) = resp.coordinator_for(version, id.as_str()) else {
                    return false;
                };
                if c.error_code.is_none() {
                    let node = Some(NodeId(c.node_id));
                    if group {
                        self.txn.group_coordinator = node;
                    } else {
                        self.txn.coordinator = node;
                    }
                    if self.metadata.broker(NodeId(c.node_id)).is_none() {
                        self.metadata.request_update();
                    }
                }
                c.error_code
            }
            RequestKind::TxnInitProducerId => {
                let Ok(resp) = InitProducerIdResponse::decode(version, &mut r) else {
                    return false;
                };
                if resp.error_code.is_none() {
                    self.adopt_producer_id(resp.producer_id, resp.producer_epoch);
                    self.txn.bump_needed = false;
                }
                resp.error_code
            }
            RequestKind::AddPartitionsToTxn => {
                let Ok(resp) = AddPartitionsToTxnResponse::decode(version, &mut r) else {
                    return false;
                };
                self.added_partitions(&resp)
            }
            RequestKind::EndTxn => {
                let Ok(resp) = EndTxnResponse::decode(version, &mut r) else {
                    return false;
                };
                if resp.producer_id >= 0 && resp.producer_epoch >= 0 {
                    next_producer_id = Some((resp.producer_id, resp.producer_epoch));
                }
                resp.error_code
            }
            RequestKind::AddOffsetsToTxn => {
                let Ok(resp) = AddOffsetsToTxnResponse::decode(version, &mut r) else {
                    return false;
                };
                resp.error_code
            }
            RequestKind::TxnOffsetCommit => {
                let Ok(resp) = TxnOffsetCommitResponse::decode(version, &mut r) else {
                    return false;
                };
                // The first partition error, if any (Java fails the whole request with it).
                let mut code = ErrorCode::NONE;
                for t in resp.topics.iter() {
                    for p in t.partitions.iter() {
                        if code.is_none() {
                            code = p.error_code;
                        }
                    }
                }
                code
            }
            _ => return false,
        };
        let (base, max) = (
            self.config.retry_backoff_ms,
            self.config.retry_backoff_max_ms,
        );
        match verdict(code) {
            Verdict::Ok => {
                self.txn.attempts = 0;
                self.txn.retry_after_ms = 0;
                match kind {
                    RequestKind::TxnInitProducerId => match self.txn.state {
                        TransactionState::Initializing => {
                            self.txn.update_transaction_version(true);
                            self.txn.state = TransactionState::Ready;
                            self.txn.complete(Ok(()));
                        }
                        // The epoch bump aborted the transaction.
                        TransactionState::AbortingTransaction => self.end_transaction(),
                        _ => {}
                    },
                    RequestKind::EndTxn => {
                        if let Some((producer_id, epoch)) = next_producer_id {
                            // Transaction version 2: the coordinator bumped the epoch (or
                            // gave a new producer id when it ran out); sequences restart.
                            self.adopt_producer_id(producer_id, epoch);
                            self.txn.bump_needed = false;
                        }
                        self.end_transaction();
                    }
                    RequestKind::AddOffsetsToTxn
                        if self.txn.offsets_phase == OffsetsPhase::AddOffsets =>
                    {
                        // The group's offsets partition is in the transaction now.
                        self.txn.started = true;
                        self.txn.offsets_phase = OffsetsPhase::Commit;
                    }
                    RequestKind::TxnOffsetCommit
                        if self.txn.offsets_phase == OffsetsPhase::Commit =>
                    {
                        self.txn.offsets_phase = OffsetsPhase::None;
                        if self.txn.op == Some(Op::SendOffsets) {
                            self.txn.complete(Ok(()));
                        }
                    }
                    _ => {}
                }
            }
            Verdict::FindCoordinator => {
                if matches!(
                    kind,
                    RequestKind::TxnOffsetCommit | RequestKind::FindGroupCoordinator
                ) {
                    self.txn.group_coordinator = None;
                } else {
                    self.txn.coordinator = None;
                }
                self.txn.retry_later(now_ms, base, max);
            }
            Verdict::Retry
                if kind == RequestKind::AddPartitionsToTxn
                    && code == ErrorCode::CONCURRENT_TRANSACTIONS
                    && !self.txn.started =>
            {
                // The previous transaction is still completing (its markers are being
                // written, a few milliseconds on a healthy cluster): Java retries the first
                // AddPartitionsToTxn of a transaction after 20 ms rather than
                // retry.backoff.ms; this retries after 2 ms, doubling up to those 20 ms.
                self.txn.attempts = self.txn.attempts.saturating_add(1);
                self.txn.retry_after_ms = now_ms.saturating_add(exponential_backoff(
                    self.txn.attempts,
                    ADD_PARTITIONS_FIRST_RETRY_MS.min(base),
                    ADD_PARTITIONS_RETRY_BACKOFF_MS.min(base),
                ));
            }
            Verdict::Retry => self.txn.retry_later(now_ms, base, max),
            Verdict::Fenced => self.txn.enter_fatal_error(TransactionError::Fenced(code)),
            Verdict::Abortable
                if matches!(
                    self.txn.state,
                    TransactionState::InTransaction | TransactionState::CommittingTransaction
                ) =>
            {
                self.txn
                    .enter_abortable_error(ProduceError::Broker { code });
            }
            Verdict::Abortable | Verdict::Fatal => {
                self.txn.enter_fatal_error(fatal_error(code));
            }
        }
        if self.txn.state == TransactionState::FatalError && self.fatal.is_none() {
            // Nothing more can be sent: fail what is left.
            self.enter_fatal(code);
        }
        true
    }

    /// Applies an AddPartitionsToTxn answer to the partitions being added; returns the
    /// first error (Java's `AddPartitionsToTxnHandler`: all or nothing per request).
    fn added_partitions(&mut self, resp: &AddPartitionsToTxnResponse<'_>) -> ErrorCode {
        let mut first = ErrorCode::NONE;
        for t in resp.results_by_topic.iter() {
            let Some(topic) = self.metadata.topic_id(t.name) else {
                continue;
            };
            for p in t.results_by_partition.iter() {
                let tp = TopicPartition::new(topic, p.partition_index);
                let code = p.partition_error_code;
                if first.is_none() && !code.is_none() {
                    first = code;
                }
                if let Some(e) = self.txn.partitions.iter_mut().find(|e| e.tp == tp)
                    && e.state == AddState::Adding
                {
                    e.state = if code.is_none() {
                        AddState::Added
                    } else {
                        AddState::Pending
                    };
                }
            }
        }
        // Partitions the answer did not name go again with the next request.
        for p in self.txn.partitions.iter_mut() {
            if p.state == AddState::Adding {
                p.state = AddState::Pending;
            }
        }
        if self
            .txn
            .partitions
            .iter()
            .any(|p| p.state == AddState::Added)
        {
            self.txn.started = true;
        }
        first
    }
}

/// The error a fatal code makes: fencing codes are [`TransactionError::Fenced`].
fn fatal_error(code: ErrorCode) -> TransactionError {
    match verdict(code) {
        Verdict::Fenced => TransactionError::Fenced(code),
        _ => TransactionError::Fatal(code),
    }
}
