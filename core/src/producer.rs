//! `Producer`: the one state machine transports drive (Java's `KafkaProducer`), the
//! [`Transport`] it drives, and what it accepts ([`ProducerRecord`], [`SendError`]).
//!
//! See [`Producer`] for its method groups (getters, commands, inputs, outputs), its
//! differences from Java's producer, and its storage.

use core::fmt;

use crate::accumulator::{AccumulatorConfig, AppendError, RecordAccumulator, Ticket, TicketRange};
use crate::config::{ConfigError, ProducerConfig};
use crate::metadata::{RegisterError, TopicStatus};
use crate::partitioner::{BuiltInPartitioner, PartitionError, Partitioner, select_partition};
use crate::pool::{BufferPool, PoolError};
use crate::protocol::ErrorCode;
use crate::record::{Compressor, Header, NoCompression, Record};
use crate::security::{AuthFailure, AuthFailureKind};
use crate::sender::{
    Broker, ConnId, ConsumedOffset, Event, Io, MetadataOf, ProduceError, ProducerMetrics, Sender,
    TransactionError, TransactionState, Transmit,
};
use crate::storage::{Limits, Storage, Table, TableFull, TableKind};
use crate::topic::{TopicId, TopicPartition};

/// A record to send, borrowing its bytes from the caller (copied once, into the pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerRecord<'a> {
    /// The topic's name.
    pub topic: &'a str,
    /// An explicit partition, or `None` to let the partitioner choose.
    pub partition: Option<i32>,
    /// The key; `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The headers, in order.
    pub headers: &'a [Header<'a>],
    /// Wall-clock milliseconds since the Unix epoch from the transport (`CreateTime`), or -1.
    pub timestamp: i64,
}

/// Why [`Producer::send`] did not accept a record. The record is still the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// Not a legal topic name, or the cluster says the topic is invalid.
    InvalidTopic,
    /// The explicit partition is not in `0..num_partitions`.
    InvalidPartition {
        /// The partition asked for.
        partition: i32,
        /// The topic's partition count.
        num_partitions: u32,
    },
    /// The record (with its batch overhead) is larger than `max.request.size` or the pool.
    RecordTooLarge {
        /// Bytes the record may take.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Backpressure: no memory (or batch entry) for the record now; retry after outcomes
    /// were polled (Java blocks up to `max.block.ms`).
    BufferFull,
    /// The topic's partitions are not known yet and are being fetched; retry (Java waits up
    /// to `max.block.ms`, then fails with "Topic X not present in metadata after N ms").
    MetadataNotReady,
    /// A table is full: the topic table (a new topic), the partition table (a topic's
    /// partitions), or another; the limit and the [`Limits`] field that raises it are named.
    /// Idle topics leave the topic table after `metadata.max.idle.ms`.
    TableFull(TableFull),
    /// The timestamp is negative and not -1.
    InvalidTimestamp {
        /// The rejected timestamp.
        timestamp: i64,
    },
    /// The cluster refused the topic (for example `TOPIC_AUTHORIZATION_FAILED`).
    Topic {
        /// The error from metadata.
        code: ErrorCode,
    },
    /// The producer is closed (or closing).
    Closed,
    /// The producer is in a fatal state.
    Fatal(ErrorCode),
    /// The last authentication with the brokers failed (SASL or TLS) and none succeeded
    /// since; the details are in [`Producer::authentication_failure`].
    Authentication(AuthFailureKind),
    /// A transactional producer refuses records outside a transaction, and in
    /// `ABORTABLE_ERROR` (abort first) or `FATAL_ERROR`.
    Transaction(TransactionError),
}

impl SendError {
    /// Whether retrying the same record later may succeed (backpressure, metadata).
    pub const fn is_retriable(&self) -> bool {
        matches!(self, Self::BufferFull | Self::MetadataNotReady)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InvalidTopic => f.write_str("invalid topic name"),
            Self::InvalidPartition {
                partition,
                num_partitions,
            } => write!(
                f,
                "Invalid partition given with record: {partition} is not in the range \
                 [0...{num_partitions})."
            ),
            Self::RecordTooLarge { size, max } => write!(
                f,
                "The message is {size} bytes when serialized which is larger than {max}"
            ),
            Self::BufferFull => f.write_str("buffer memory exhausted"),
            Self::MetadataNotReady => f.write_str("topic not present in metadata yet"),
            Self::TableFull(full) => write!(f, "{full}"),
            Self::InvalidTimestamp { timestamp } => {
                write!(
                    f,
                    "Invalid timestamp: {timestamp}. Timestamp should always be non-negative or null."
                )
            }
            Self::Topic { code } => write!(f, "topic refused: {code}"),
            Self::Closed => f.write_str("Cannot perform operation after producer has been closed"),
            Self::Fatal(code) => write!(f, "the producer is in a fatal state: {code}"),
            Self::Authentication(kind) => write!(f, "{kind}"),
            Self::Transaction(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for SendError {}

/// The producer: a deterministic, heap-free state machine that does no I/O and reads no
/// clock (Java's `KafkaProducer`).
///
/// Methods come in four groups, as in quinn-proto's `Connection`:
///
/// - **getters**: [`is_flushed`](Producer::is_flushed), [`is_closed`](Producer::is_closed),
///   [`pending_batches`](Producer::pending_batches), [`topic_name`](Producer::topic_name),
///   [`producer_id_and_epoch`](Producer::producer_id_and_epoch),
///   [`metrics`](Producer::metrics), ...
/// - **commands**: [`send`](Producer::send), [`flush`](Producer::flush),
///   [`close`](Producer::close);
/// - **inputs**, each with `now_ms` first: [`handle_connected`](Producer::handle_connected),
///   [`handle_received`](Producer::handle_received),
///   [`handle_transmitted`](Producer::handle_transmitted),
///   [`handle_closed`](Producer::handle_closed), [`handle_timeout`](Producer::handle_timeout);
/// - **outputs**, drained after every command and input, in this order:
///   [`poll_event`](Producer::poll_event) until `None`,
///   [`poll_transmit`](Producer::poll_transmit) until `None`, then
///   [`poll_timeout`](Producer::poll_timeout).
///
/// # Differences from Java's producer
///
/// - Nothing blocks: `send` returns [`SendError::MetadataNotReady`] while a topic's
///   metadata is being fetched and [`SendError::BufferFull`] when memory is exhausted; the
///   transport waits (up to `max.block.ms`) and retries.
/// - To keep per-partition order through retries, a partition has at most one batch in
///   flight when idempotence is on or `max.in.flight.requests.per.connection=1` (Java allows
///   five in-flight batches per partition under idempotence); other partitions still
///   pipeline up to `max.in.flight.requests.per.connection` requests per connection.
/// - A batch rejected with `MESSAGE_TOO_LARGE` is split and resent, as in Java; the outcomes
///   of the split batches name the original batch's tickets (several outcomes per batch id,
///   each for a sub-range), and a record too large on its own fails with that code.
/// - In-flight batches are not expired while their request is pending; the request timeout
///   bounds the overshoot of `delivery.timeout.ms`.
///
/// # Storage and capacities
///
/// - `S`: the pool storage (`buffer.memory`): `buffer.memory / batch.size` slots are used
///   (so give at least one `batch.size`);
/// - `St`: the [`Storage`] of every other table (topics, partitions, brokers, connections,
///   batches, connection buffers): [`FixedStorage`](crate::FixedStorage) for small inline
///   tables without heap (firmware), `HeapStorage` (feature `alloc`) for tables that grow
///   with use up to [`Limits`] far beyond any real cluster. A full table is a typed error
///   ([`TableFull`]), never a silent drop.
pub struct Producer<S, St: Storage, C = NoCompression> {
    io: Io<St>,
    sender: Sender<S, St, C>,
    partitioner: BuiltInPartitioner,
    closed: bool,
}

impl<S, St: Storage, C> fmt::Debug for Producer<S, St, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("sender", &self.sender)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// What a transport does for the producer's outputs: the one drain step that every
/// transport and test harness runs after each input ([`Producer::drain`]).
pub trait Transport {
    /// Open a connection for `conn` to `host:port` (`broker` names it by node id or by its
    /// place in `bootstrap.servers`); report `handle_connected` or `handle_closed` later.
    fn connect(&mut self, conn: ConnId, broker: Broker, host: &str, port: u16);
    /// Close `conn` (the core gave up on it); do not report `handle_closed` for it.
    fn disconnect(&mut self, conn: ConnId);
    /// The records of `tickets` are at `base_offset + i` of `topic`/`partition` (-1 when
    /// unknown: `acks=0`, or a duplicate without offset).
    fn delivered(
        &mut self,
        topic: &str,
        partition: i32,
        tickets: TicketRange,
        base_offset: i64,
        log_append_time_ms: i64,
    );
    /// The records of `tickets` failed with `error`.
    fn failed(&mut self, topic: &str, partition: i32, tickets: TicketRange, error: ProduceError);
    /// Write what the connection takes of `tx` now, without blocking; return the bytes
    /// written (fewer than `tx.len()` when its buffer is full: report writability later
    /// with `handle_writable`).
    fn transmit(&mut self, tx: &Transmit<'_>) -> usize;
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage> Producer<S, St> {
    /// A producer with `config` (validated), batches in `pool_storage` (`buffer.memory`),
    /// tables of at most `limits` (each also capped by `St`'s own capacity), and the
    /// sticky partitioner seeded with `seed`; without codecs (`compression.type=none`; see
    /// [`with_compressor`](Producer::with_compressor)).
    pub fn new(
        config: ProducerConfig,
        pool_storage: S,
        limits: Limits,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        Self::with_compressor(config, pool_storage, limits, seed, NoCompression)
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage, C: Compressor> Producer<S, St, C> {
    /// Like [`new`](Producer::new), with `compressor` closing batches when
    /// `compression.type` names a codec (feature `compression`). A codec the compressor
    /// does not have is [`ConfigError::Unsupported`]; with compression one pool slot is set
    /// aside for compressed output, so `pool_storage` must hold at least two slots
    /// ([`ProducerConfig::slot_size`]).
    pub fn with_compressor(
        mut config: ProducerConfig,
        pool_storage: S,
        limits: Limits,
        seed: u64,
        compressor: C,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        if !compressor.supports(config.compression_type) {
            return Err(ConfigError::Unsupported {
                key: "compression.type",
            });
        }
        config.configure_delivery_timeout();
        let pool = BufferPool::<S, St::Slots>::new(pool_storage, config.slot_size()).map_err(
            |e| match e {
                PoolError::StorageTooSmall { needed, available } => ConfigError::StorageTooSmall {
                    what: "buffer.memory",
                    needed,
                    available,
                },
                _ => ConfigError::InvalidValue { key: "batch.size" },
            },
        )?;
        if config.compresses() && pool.slot_count() < 2 {
            return Err(ConfigError::StorageTooSmall {
                what: "buffer.memory",
                needed: config.slot_size().saturating_mul(2),
                available: pool.capacity_bytes(),
            });
        }
        config.buffer_memory = pool.capacity_bytes();
        let mut acc = RecordAccumulator::with_limits(
            pool,
            AccumulatorConfig {
                linger_ms: config.linger_ms,
                delivery_timeout_ms: config.delivery_timeout_ms,
                retry_backoff_ms: config.retry_backoff_ms,
                max_request_size: config.max_request_size,
                batching: config.batching(),
                compression: config.compression_type,
                compression_level: config.compression_level(),
                batch_size: config.batch_size,
                batch_max_size: config.batch_max_size,
            },
            limits.batches,
            limits.partitions,
        );
        acc.set_retry_backoff_max_ms(config.retry_backoff_max_ms);
        let partitioner =
            // Java's `Math.max(1, batch.size)`: with no batching, stick for one record.
            BuiltInPartitioner::new(config.batch_size.max(1), config.partitioner_ignore_keys, seed)
                .adaptive(config.partitioner_adaptive);
        let mut sender = Sender::new(config, acc, limits, compressor)?;
        sender.seed_random(seed);
        Ok(Self {
            io: St::Buffers::with_limit(limits.connections),
            sender,
            partitioner,
            closed: false,
        })
    }

    // ---- getters -------------------------------------------------------------------------

    /// Why the last authentication failed, while no connection has authenticated since
    /// (then `send` refuses records with [`SendError::Authentication`]).
    pub const fn authentication_failure(&self) -> Option<&AuthFailure> {
        self.sender.auth_failure()
    }

    /// The configuration in use (`buffer.memory` set from the pool).
    pub const fn config(&self) -> &ProducerConfig {
        self.sender.config()
    }

    /// What the producer knows of the cluster.
    pub const fn metadata(&self) -> &MetadataOf<St> {
        self.sender.metadata()
    }

    /// Whether every record accepted so far has its outcome, polled.
    pub fn is_flushed(&self) -> bool {
        self.sender.batch_count() == 0
    }

    /// Whether the producer was closed and every record has its outcome, polled.
    pub fn is_closed(&self) -> bool {
        self.closed && self.is_flushed()
    }

    /// Batches not yet reported (queued, in flight, or with an outcome not yet polled).
    pub fn pending_batches(&self) -> usize {
        self.sender.batch_count()
    }

    /// Batches in requests on the wire.
    pub fn in_flight_batches(&self) -> usize {
        self.sender.in_flight_batches()
    }

    /// Batches closed uncompressed although `compression.type` names a codec (the
    /// compressed records did not fit back into their slot, or the codec failed).
    pub fn compression_fallbacks(&self) -> u64 {
        self.sender.compression_fallbacks()
    }

    /// Bytes of the pool in use (`buffer.memory` minus what is available).
    pub fn buffer_used_bytes(&self) -> usize {
        self.sender.buffer_used_bytes()
    }

    /// The name of topic `id`.
    pub fn topic_name(&self, id: TopicId) -> Option<&str> {
        self.sender.metadata().topic_name(id)
    }

    /// The handle of topic `name`, once a record was sent to it.
    pub fn topic_id(&self, name: &str) -> Option<TopicId> {
        self.sender.metadata().topic_id(name)
    }

    /// The idempotent producer's id and epoch, once known.
    pub fn producer_id_and_epoch(&self) -> Option<(i64, i16)> {
        self.sender.producer_id_and_epoch()
    }

    /// The fatal error the producer stopped on, if any.
    pub const fn fatal_error(&self) -> Option<ErrorCode> {
        self.sender.fatal()
    }

    /// Connections in the connection table (open, or closed and kept for reuse).
    pub fn connection_slots(&self) -> usize {
        self.sender.connection_slots()
    }

    /// The limits of the producer's tables.
    pub const fn limits(&self) -> &Limits {
        self.sender.limits()
    }

    /// The last table that filled up, if any did (for logs: a full connection, request or
    /// response table is retried, not reported to a record).
    pub const fn table_full(&self) -> Option<TableFull> {
        self.sender.table_full()
    }

    /// Whether an output waits: [`poll_event`](Self::poll_event) or
    /// [`poll_transmit`](Self::poll_transmit) has something now. After a command, a
    /// transport whose I/O runs elsewhere wakes it when this is true or when
    /// [`poll_timeout`](Self::poll_timeout) moved earlier than the wake-up it sleeps until.
    pub fn has_output(&self) -> bool {
        self.sender.has_output()
    }

    /// Counters (see [`ProducerMetrics`]).
    pub const fn metrics(&self) -> &ProducerMetrics {
        self.sender.metrics()
    }

    /// Requests written or being written and not yet answered, over all connections
    /// (Java's `requests-in-flight`).
    pub fn requests_in_flight(&self) -> usize {
        self.sender.requests_in_flight()
    }

    /// Bytes of the pool that no batch holds (Java's `buffer-available-bytes`); the
    /// pool's size is `config().buffer_memory` (`buffer-total-bytes`).
    pub const fn buffer_available_bytes(&self) -> usize {
        self.sender.buffer_available_bytes()
    }

    /// The registered topics with their counters (Java's `producer-topic-metrics`), in
    /// handle order.
    #[cfg(feature = "metrics")]
    pub fn topic_metrics(&self) -> impl Iterator<Item = (&str, &crate::TopicMetrics)> + '_ {
        self.sender.metadata().topic_metrics()
    }

    // ---- commands ------------------------------------------------------------------------

    /// Starts a new window for the maxima of [`ProducerMetrics`] (`batch_bytes_max`,
    /// `request_latency_max_ms`): a transport that reports maxima per time window calls it
    /// when a window ends.
    pub fn reset_metric_maxima(&mut self) {
        self.sender.reset_metric_maxima();
    }

    /// Accepts `record` into its partition's batch (`now_ms`: the monotonic clock), or says
    /// why not. The outcome comes later as `Event::Delivered` or `Event::Failed` naming the
    /// returned ticket. Records without an explicit partition are placed by the built-in
    /// partitioner (murmur2 for keys, uniform sticky without).
    pub fn send(&mut self, now_ms: u64, record: &ProducerRecord<'_>) -> Result<Ticket, SendError> {
        self.send_inner(now_ms, record, None)
    }

    /// [`send`](Self::send) with a custom partitioner (Java's `partitioner.class`) for a
    /// record without an explicit partition: it is called with the topic's name and
    /// partitions, and its answer is checked to be in range.
    pub fn send_with(
        &mut self,
        now_ms: u64,
        record: &ProducerRecord<'_>,
        partitioner: &mut dyn Partitioner,
    ) -> Result<Ticket, SendError> {
        self.send_inner(now_ms, record, Some(partitioner))
    }

    fn send_inner(
        &mut self,
        now_ms: u64,
        record: &ProducerRecord<'_>,
        mut custom: Option<&mut dyn Partitioner>,
    ) -> Result<Ticket, SendError> {
        self.sender
            .check_send_allowed()
            .map_err(SendError::Transaction)?;
        if let Some(code) = self.sender.fatal() {
            return Err(SendError::Fatal(code));
        }
        if self.closed || self.sender.is_closing() {
            return Err(SendError::Closed);
        }
        if let Some(failure) = self.sender.auth_failure() {
            return Err(SendError::Authentication(failure.kind));
        }
        // The name is checked once, when the topic is registered (an invalid one is refused
        // there), not on every send.
        let topic = self
            .sender
            .topic_for_send(now_ms, record.topic, &mut self.io)
            .map_err(|e| match e {
                RegisterError::InvalidTopic => SendError::InvalidTopic,
                RegisterError::TooManyTopics { limit } => SendError::TableFull(TableFull {
                    table: TableKind::Topics,
                    limit,
                }),
            })?;
        // A topic registered just now: its metadata is being fetched.
        let Some(topic) = topic else {
            return Err(SendError::MetadataNotReady);
        };
        match self.sender.metadata().topic_status(topic) {
            Some(TopicStatus::Known) => {}
            Some(TopicStatus::Failed(ErrorCode::INVALID_TOPIC_EXCEPTION)) => {
                return Err(SendError::InvalidTopic);
            }
            Some(TopicStatus::Failed(code)) => return Err(SendError::Topic { code }),
            Some(TopicStatus::TooManyPartitions) => {
                return Err(SendError::TableFull(TableFull {
                    table: TableKind::Partitions,
                    limit: self.sender.metadata().partition_limit(),
                }));
            }
            Some(TopicStatus::Pending) | None => return Err(SendError::MetadataNotReady),
        }
        let sender = &mut self.sender;
        let builtin = &mut self.partitioner;
        let Some((sticky, set, load)) = sender.sticky_partitions_and_load(topic) else {
            return Err(SendError::MetadataNotReady);
        };
        let partition = select_partition(record.partition, &set, || match custom.as_mut() {
            Some(p) => p.partition(record.topic, record.key, record.value, &set),
            None => builtin.partition_with_load(sticky, record.key, &set, &load),
        })
        .map_err(|e| match e {
            PartitionError::InvalidPartition {
                partition,
                num_partitions,
            } => SendError::InvalidPartition {
                partition,
                num_partitions,
            },
            _ => SendError::MetadataNotReady,
        })?;
        let rec = Record {
            timestamp: record.timestamp,
            key: record.key,
            value: record.value,
            headers: record.headers,
        };
        let tp = TopicPartition::new(topic, partition);
        let added_to_transaction = sender
            .add_partition_to_transaction(tp)
            .map_err(SendError::Transaction)?;
        match sender.append(now_ms, tp, &rec) {
            Ok(r) => {
                match custom {
                    Some(p) => p.on_append(
                        record.topic,
                        partition,
                        r.appended_bytes,
                        r.all_batches_full,
                    ),
                    None => {
                        if let Some((sticky, set, load)) = sender.sticky_partitions_and_load(topic)
                        {
                            builtin.on_append_with_load(
                                sticky,
                                partition,
                                r.appended_bytes,
                                r.all_batches_full,
                                &set,
                                &load,
                            );
                        }
                    }
                }
                let linger = sender.config().linger_ms;
                // Java wakes the sender for a full batch (or at once without linger): here,
                // when this record filled its batch or sealed the one before it (a new batch
                // behind another). A record that joined the open last batch behind a batch
                // already sealed changes nothing the sender decides: the drive at the seal
                // saw that batch ready, and what holds it since (requests in flight, a muted
                // partition, a connection, a backoff) ends with an input or a timer, which
                // drive. Driving again would rescan every partition per record (a sixth of
                // the CPU per 100-byte record while queues are long).
                let sealed = r.new_batch_created && r.batch_is_full;
                if sealed
                    || r.all_batches_full
                    || (r.new_batch_created && linger == 0)
                    || added_to_transaction
                {
                    sender.drive(now_ms, &mut self.io);
                } else if r.new_batch_created {
                    sender.wake_at(now_ms.saturating_add(linger));
                }
                Ok(r.ticket)
            }
            Err(e) => Err(match e {
                AppendError::RecordTooLarge { size, max } => {
                    SendError::RecordTooLarge { size, max }
                }
                AppendError::TooManyPartitions => SendError::TableFull(TableFull {
                    table: TableKind::Partitions,
                    limit: sender.partition_queue_limit(),
                }),
                AppendError::InvalidTimestamp { timestamp } => {
                    SendError::InvalidTimestamp { timestamp }
                }
                _ => {
                    // Memory (or a batch entry) is short: send what is queued now.
                    sender.drive(now_ms, &mut self.io);
                    SendError::BufferFull
                }
            }),
        }
    }

    /// Makes every record accepted so far ready to send at once (ignoring `linger.ms`);
    /// drive the producer until [`is_flushed`](Self::is_flushed).
    pub fn flush(&mut self, now_ms: u64) {
        if self.sender.batch_count() > 0 {
            self.sender.begin_flush();
        }
        self.sender.drive(now_ms, &mut self.io);
    }

    /// Refuses new records ([`SendError::Closed`]) and delivers what it can until
    /// `now_ms + timeout_ms`; then the rest fails with
    /// [`ProduceError::Closed`]. Every ticket still gets
    /// exactly one outcome; connections are closed at the end. Drive the producer until
    /// [`is_closed`](Self::is_closed).
    pub fn close(&mut self, now_ms: u64, timeout_ms: u64) {
        self.closed = true;
        self.sender.close(now_ms, timeout_ms);
        self.sender.drive(now_ms, &mut self.io);
    }

    // ---- transactions --------------------------------------------------------------------
    //
    // Java's transactional methods, for a producer with `transactional.id`. Each operation
    // that talks to the coordinator starts here and ends when
    // [`poll_transaction`](Self::poll_transaction) returns its result; started again while
    // it runs (after the caller's timeout), it resumes, as Java's do.

    /// Where the transaction manager stands ([`TransactionState::Uninitialized`] for a
    /// producer without `transactional.id`).
    pub fn transaction_state(&self) -> TransactionState {
        self.sender.transaction_state()
    }

    /// The transaction protocol in use: `Some(2)` for transaction version 2 (KIP-890 part
    /// 2: Produce adds the partitions, every commit or abort bumps the epoch), `Some(1)`
    /// otherwise; `None` before `init_transactions` completed or without `transactional.id`.
    pub fn transaction_version(&self) -> Option<u8> {
        self.sender.transaction_version()
    }

    /// Starts Java's `initTransactions`: finds the transaction coordinator, then gets the
    /// producer id and epoch from it, which fences older producers with the same
    /// `transactional.id` and aborts their open transaction. Ends in `READY`.
    pub fn init_transactions(&mut self, now_ms: u64) -> Result<(), TransactionError> {
        self.sender.init_transactions(now_ms, &mut self.io)
    }

    /// Java's `beginTransaction`: from `READY` to `IN_TRANSACTION` (no request is sent;
    /// each partition is added to the transaction before its first batch is sent).
    pub fn begin_transaction(&mut self) -> Result<(), TransactionError> {
        self.sender.begin_transaction()
    }

    /// Starts Java's `commitTransaction`: flushes, waits for every batch of the transaction,
    /// then commits it (EndTxn). Refused in `ABORTABLE_ERROR` with the error that made the
    /// transaction abortable.
    pub fn commit_transaction(&mut self, now_ms: u64) -> Result<(), TransactionError> {
        self.sender.commit_transaction(now_ms, &mut self.io)
    }

    /// Starts Java's `abortTransaction`: the batches not sent yet fail with
    /// [`ProduceError::TransactionAborted`], those in flight get their answers, then the
    /// transaction is aborted (EndTxn). Allowed in `ABORTABLE_ERROR`; ends in `READY`.
    pub fn abort_transaction(&mut self, now_ms: u64) -> Result<(), TransactionError> {
        self.sender.abort_transaction(now_ms, &mut self.io)
    }

    /// Starts Java's `sendOffsetsToTransaction`: the consumed `offsets` of consumer group
    /// `group_id` are committed with the transaction (AddOffsetsToTxn, then TxnOffsetCommit
    /// to the group's coordinator, without group membership: generation -1). Consecutive
    /// offsets of one topic share a topic entry; give each topic's offsets together.
    pub fn send_offsets_to_transaction(
        &mut self,
        now_ms: u64,
        offsets: &[ConsumedOffset<'_>],
        group_id: &str,
    ) -> Result<(), TransactionError> {
        self.sender
            .send_offsets_to_transaction(now_ms, offsets, group_id, &mut self.io)
    }

    /// The result of the transactional operation started last, once it has finished (then
    /// `None` again until the next one ends).
    pub fn poll_transaction(&mut self) -> Option<Result<(), TransactionError>> {
        self.sender.poll_transaction()
    }

    // ---- inputs --------------------------------------------------------------------------

    /// The transport connected `conn` (after `Event::Connect`).
    pub fn handle_connected(&mut self, now_ms: u64, conn: ConnId) {
        self.sender.handle_connected(now_ms, conn, &mut self.io);
    }

    /// Bytes received on `conn`, in any chunking. Returns how many were taken: always all of
    /// them (bytes for a closed connection are dropped).
    pub fn handle_received(&mut self, now_ms: u64, conn: ConnId, bytes: &[u8]) -> usize {
        self.sender
            .handle_received(now_ms, conn, bytes, &mut self.io)
    }

    /// The transport wrote `bytes` bytes of the transmit of `conn` handed out last: all of
    /// it, or fewer when the connection's buffer filled up (then the rest is handed out
    /// again after [`handle_writable`](Self::handle_writable)).
    pub fn handle_transmitted(&mut self, now_ms: u64, conn: ConnId, bytes: usize) {
        self.sender
            .handle_transmitted(now_ms, conn, bytes, &mut self.io);
    }

    /// `conn` can take bytes again after a partial write.
    pub fn handle_writable(&mut self, now_ms: u64, conn: ConnId) {
        self.sender.handle_writable(now_ms, conn, &mut self.io);
    }

    /// `conn` failed to authenticate in the transport (a TLS handshake refused: an untrusted
    /// certificate, a host name mismatch, no common version), in `message`'s words: the
    /// connection is closed as by [`handle_closed`](Self::handle_closed), and until a
    /// connection authenticates again new records are refused and queued ones fail with
    /// [`ProduceError::Authentication`] (Java's `SslAuthenticationException`).
    pub fn handle_authentication_failed(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        kind: AuthFailureKind,
        message: &str,
    ) {
        self.sender.handle_authentication_failed(
            now_ms,
            conn,
            AuthFailure::new(kind, ErrorCode::NONE, message),
            &mut self.io,
        );
    }

    /// The OAUTHBEARER token for the authentications from now on (feature `sasl`; Java's
    /// login callback hands it out): set it before the first connection, and again when it
    /// is refreshed. Longer than the request framing limit
    /// ([`Limits::request_bytes`]) is a [`TableFull`].
    #[cfg(feature = "sasl")]
    pub fn set_sasl_token(&mut self, token: &str) -> Result<(), TableFull> {
        self.sender.set_sasl_token(token)
    }

    /// `conn` failed to connect or was lost. Its requests are retried elsewhere or later.
    pub fn handle_closed(&mut self, now_ms: u64, conn: ConnId) {
        self.sender.handle_closed(now_ms, conn, &mut self.io);
    }

    /// The transport ran out of memory of its own for accepted records (the std producer's
    /// budget for callbacks) and makes a send wait: every partition's first batch becomes
    /// ready at once, ignoring `linger.ms`, as when an append finds the pool full (Java's
    /// `exhausted` in `RecordAccumulator.ready`: a thread waits for buffer memory), until a
    /// batch's memory is released. Without it a long `linger.ms` would hold back the very
    /// outcomes that free that memory.
    pub fn handle_memory_exhausted(&mut self, now_ms: u64) {
        self.sender.memory_exhausted(now_ms, &mut self.io);
    }

    /// Time passed (call at [`poll_timeout`](Self::poll_timeout), or any time).
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.sender.handle_timeout(now_ms, &mut self.io);
    }

    // ---- outputs -------------------------------------------------------------------------

    /// The next event: connections to open or close, then batch outcomes. A batch's memory
    /// is released when its outcome is polled.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        self.sender.poll_event()
    }

    /// The next bytes to write, on some connection: each pending request is handed out once
    /// until [`handle_transmitted`](Self::handle_transmitted) reports progress on it.
    pub fn poll_transmit(&mut self, now_ms: u64) -> Option<Transmit<'_>> {
        self.sender.poll_transmit(now_ms, &mut self.io)
    }

    /// The next instant (`now_ms` scale) at which [`handle_timeout`](Self::handle_timeout)
    /// is wanted, if any.
    pub const fn poll_timeout(&self) -> Option<u64> {
        self.sender.poll_timeout()
    }

    /// The drain step, run after every command and input: hands every event to
    /// `transport`, then every transmit (reporting what it wrote), again until neither is
    /// left; returns [`poll_timeout`](Self::poll_timeout). Each transport wraps only its own
    /// way of waiting (a thread on `mio`, the JavaScript event loop, an async executor)
    /// around this.
    pub fn drain(&mut self, now_ms: u64, transport: &mut impl Transport) -> Option<u64> {
        loop {
            while let Some(ev) = self.sender.poll_event() {
                match ev {
                    Event::Connect {
                        conn,
                        broker,
                        host,
                        port,
                    } => transport.connect(conn, broker, host, port),
                    Event::Disconnect { conn } => transport.disconnect(conn),
                    Event::Delivered {
                        topic,
                        partition,
                        tickets,
                        base_offset,
                        log_append_time_ms,
                    } => {
                        let name = self.sender.metadata().topic_name(topic).unwrap_or("");
                        transport.delivered(
                            name,
                            partition,
                            tickets,
                            base_offset,
                            log_append_time_ms,
                        );
                    }
                    Event::Failed {
                        topic,
                        partition,
                        tickets,
                        error,
                    } => {
                        let name = self.sender.metadata().topic_name(topic).unwrap_or("");
                        transport.failed(name, partition, tickets, error);
                    }
                }
            }
            while let Some(tx) = self.sender.poll_transmit(now_ms, &mut self.io) {
                let n = transport.transmit(&tx);
                let conn = tx.conn();
                self.sender
                    .handle_transmitted(now_ms, conn, n, &mut self.io);
            }
            // Writing may have produced events (acks=0 outcomes) or new requests.
            if !self.sender.has_output() {
                return self.poll_timeout();
            }
        }
    }
}
