//! `Producer`: the one state machine transports drive (Java's `KafkaProducer`).
//!
//! Methods come in four groups, as in quinn-proto's `Connection`:
//!
//! - **getters**: [`is_flushed`](Producer::is_flushed), [`is_closed`](Producer::is_closed),
//!   [`pending_batches`](Producer::pending_batches), [`topic_name`](Producer::topic_name),
//!   [`producer_id_and_epoch`](Producer::producer_id_and_epoch),
//!   [`metrics`](Producer::metrics), ...
//! - **commands**: [`send`](Producer::send), [`flush`](Producer::flush),
//!   [`close`](Producer::close);
//! - **inputs**, each with `now_ms` first: [`handle_connected`](Producer::handle_connected),
//!   [`handle_received`](Producer::handle_received),
//!   [`handle_transmitted`](Producer::handle_transmitted),
//!   [`handle_closed`](Producer::handle_closed), [`handle_timeout`](Producer::handle_timeout);
//! - **outputs**, drained after every command and input, in this order:
//!   [`poll_event`](Producer::poll_event) until `None`,
//!   [`poll_transmit`](Producer::poll_transmit) until `None`, then
//!   [`poll_timeout`](Producer::poll_timeout).
//!
//! # Differences from Java's producer
//!
//! - Nothing blocks: `send` returns [`SendError::MetadataNotReady`] while a topic's
//!   metadata is being fetched and [`SendError::BufferFull`] when memory is exhausted; the
//!   transport waits (up to `max.block.ms`) and retries.
//! - To keep per-partition order through retries, a partition has at most one batch in
//!   flight when idempotence is on or `max.in.flight.requests.per.connection=1` (Java allows
//!   five in-flight batches per partition under idempotence); other partitions still
//!   pipeline up to `max.in.flight.requests.per.connection` requests per connection.
//! - A batch rejected with `MESSAGE_TOO_LARGE` is split and resent, as in Java; the outcomes
//!   of the split batches name the original batch's tickets (several outcomes per batch id,
//!   each for a sub-range), and a record too large on its own fails with that code.
//! - In-flight batches are not expired while their request is pending; the request timeout
//!   bounds the overshoot of `delivery.timeout.ms`.

use core::fmt;

use crate::accumulator::{AccumulatorConfig, AppendError, RecordAccumulator, Ticket};
use crate::config::{ConfigError, ProducerConfig};
use crate::connection::ConnId;
use crate::metadata::{MAX_TOPICS, Metadata, RegisterError, TopicStatus, is_valid_topic_name};
use crate::partitioner::{BuiltInPartitioner, PartitionError, Partitioner, select_partition};
use crate::pool::{BufferPool, PoolError};
use crate::protocol::ErrorCode;
use crate::record::{Header, Record};
use crate::sender::{Event, ProducerMetrics, Sender, Transmit, io_slot_size};
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
    /// [`MAX_TOPICS`] topics are in use.
    TooManyTopics,
    /// The topic's partitions do not fit in the producer's `PARTITIONS` capacity.
    TooManyPartitions,
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
            Self::TooManyTopics => write!(f, "more than {MAX_TOPICS} topics"),
            Self::TooManyPartitions => f.write_str("too many partitions for this producer"),
            Self::InvalidTimestamp { timestamp } => {
                write!(
                    f,
                    "Invalid timestamp: {timestamp}. Timestamp should always be non-negative or null."
                )
            }
            Self::Topic { code } => write!(f, "topic refused: {code}"),
            Self::Closed => f.write_str("Cannot perform operation after producer has been closed"),
            Self::Fatal(code) => write!(f, "the producer is in a fatal state: {code}"),
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
/// - `S`: the pool storage (`buffer.memory`): `buffer.memory / batch.size` slots are used,
///   at most `SLOTS` (so give at least one `batch.size`).
/// - `R`: the I/O storage: one slot of `max.response.size + REQUEST_SCRATCH_SIZE` bytes per
///   connection (see [`Producer::io_storage_size`]); at most
///   [`MAX_CONNECTIONS`](crate::MAX_CONNECTIONS) slots are used, and at least one must fit.
///   Give it one slot per broker the producer sends to, plus one.
/// - `SLOTS`: pool slots; `PARTITIONS`: partitions over all topics (metadata and queues);
///   `BATCHES`: batches alive at once (queued, in flight, or with an outcome not yet polled;
///   a batch split after `MESSAGE_TOO_LARGE` keeps one entry besides its parts until every
///   one of its records has an outcome).
pub struct Producer<S, R, const SLOTS: usize, const PARTITIONS: usize, const BATCHES: usize> {
    io: R,
    sender: Sender<S, SLOTS, PARTITIONS, BATCHES>,
    partitioner: BuiltInPartitioner<MAX_TOPICS>,
    closed: bool,
}

impl<S, R, const SLOTS: usize, const PARTITIONS: usize, const BATCHES: usize> fmt::Debug
    for Producer<S, R, SLOTS, PARTITIONS, BATCHES>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("sender", &self.sender)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<
    S: AsRef<[u8]> + AsMut<[u8]>,
    R: AsRef<[u8]> + AsMut<[u8]>,
    const SLOTS: usize,
    const PARTITIONS: usize,
    const BATCHES: usize,
> Producer<S, R, SLOTS, PARTITIONS, BATCHES>
{
    /// Bytes of I/O storage for `connections` connections with `config`.
    pub const fn io_storage_size(config: &ProducerConfig, connections: usize) -> usize {
        io_slot_size(config.max_response_size).saturating_mul(connections)
    }

    /// A producer with `config` (validated), batches in `pool_storage`, connection buffers
    /// in `io_storage`, and the sticky partitioner seeded with `seed`.
    pub fn new(
        mut config: ProducerConfig,
        pool_storage: S,
        io_storage: R,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let available = pool_storage.as_ref().len();
        let pool =
            BufferPool::<S, SLOTS>::new(pool_storage, config.batch_size).map_err(|e| match e {
                PoolError::StorageTooSmall { needed, available } => ConfigError::StorageTooSmall {
                    what: "buffer.memory",
                    needed,
                    available,
                },
                _ => ConfigError::InvalidValue { key: "batch.size" },
            })?;
        let _ = available;
        config.buffer_memory = pool.capacity_bytes();
        let mut acc = RecordAccumulator::new(
            pool,
            AccumulatorConfig {
                linger_ms: config.linger_ms,
                delivery_timeout_ms: config.delivery_timeout_ms,
                retry_backoff_ms: config.retry_backoff_ms,
                max_request_size: config.max_request_size,
            },
        );
        acc.set_retry_backoff_max_ms(config.retry_backoff_max_ms);
        let partitioner =
            BuiltInPartitioner::new(config.batch_size, config.partitioner_ignore_keys, seed);
        let sender = Sender::new(config, acc, io_storage.as_ref().len())?;
        Ok(Self {
            io: io_storage,
            sender,
            partitioner,
            closed: false,
        })
    }

    // ---- getters -------------------------------------------------------------------------

    /// The configuration in use (`buffer.memory` set from the pool).
    pub const fn config(&self) -> &ProducerConfig {
        &self.sender.config
    }

    /// What the producer knows of the cluster.
    pub const fn metadata(&self) -> &Metadata<PARTITIONS> {
        &self.sender.metadata
    }

    /// Whether every record accepted so far has its outcome, polled.
    pub fn is_flushed(&self) -> bool {
        self.sender.acc.batch_count() == 0
    }

    /// Whether the producer was closed and every record has its outcome, polled.
    pub fn is_closed(&self) -> bool {
        self.closed && self.is_flushed()
    }

    /// Batches not yet reported (queued, in flight, or with an outcome not yet polled).
    pub fn pending_batches(&self) -> usize {
        self.sender.acc.batch_count()
    }

    /// Batches in requests on the wire.
    pub fn in_flight_batches(&self) -> usize {
        self.sender.in_flight_batches()
    }

    /// Bytes of the pool in use (`buffer.memory` minus what is available).
    pub fn buffer_used_bytes(&self) -> usize {
        let pool = self.sender.acc.pool();
        pool.capacity_bytes() - pool.free_bytes()
    }

    /// The name of topic `id`.
    pub fn topic_name(&self, id: TopicId) -> Option<&str> {
        self.sender.metadata.topic_name(id)
    }

    /// The handle of topic `name`, once a record was sent to it.
    pub fn topic_id(&self, name: &str) -> Option<TopicId> {
        self.sender.metadata.topic_id(name)
    }

    /// The idempotent producer's id and epoch, once known.
    pub fn producer_id_and_epoch(&self) -> Option<(i64, i16)> {
        self.sender.producer_id_and_epoch()
    }

    /// The fatal error the producer stopped on, if any.
    pub const fn fatal_error(&self) -> Option<ErrorCode> {
        self.sender.fatal()
    }

    /// Connections the I/O storage holds.
    pub fn connection_slots(&self) -> usize {
        self.sender.connection_slots()
    }

    /// Counters.
    pub const fn metrics(&self) -> &ProducerMetrics {
        &self.sender.metrics
    }

    // ---- commands ------------------------------------------------------------------------

    /// Accepts `record` into its partition's batch (`now_ms`: the monotonic clock), or says
    /// why not. The outcome comes later as `Event::Delivered` or `Event::Failed` naming the
    /// returned ticket.
    pub fn send(&mut self, now_ms: u64, record: &ProducerRecord<'_>) -> Result<Ticket, SendError> {
        if let Some(code) = self.sender.fatal() {
            return Err(SendError::Fatal(code));
        }
        if self.closed || self.sender.is_closing() {
            return Err(SendError::Closed);
        }
        if !is_valid_topic_name(record.topic) {
            return Err(SendError::InvalidTopic);
        }
        let topic = match self.sender.metadata.topic_id(record.topic) {
            Some(id) => id,
            None => {
                let id = self
                    .sender
                    .metadata
                    .register(record.topic)
                    .map_err(|e| match e {
                        RegisterError::InvalidTopic => SendError::InvalidTopic,
                        RegisterError::TooManyTopics => SendError::TooManyTopics,
                    })?;
                let _ = id;
                // Fetch its metadata now (Java's waitOnMetadata wakes the sender).
                self.sender.drive(now_ms, self.io.as_mut());
                return Err(SendError::MetadataNotReady);
            }
        };
        match self.sender.metadata.topic_status(topic) {
            Some(TopicStatus::Known) => {}
            Some(TopicStatus::Failed(ErrorCode::INVALID_TOPIC_EXCEPTION)) => {
                return Err(SendError::InvalidTopic);
            }
            Some(TopicStatus::Failed(code)) => return Err(SendError::Topic { code }),
            Some(TopicStatus::TooManyPartitions) => return Err(SendError::TooManyPartitions),
            Some(TopicStatus::Pending) | None => return Err(SendError::MetadataNotReady),
        }
        let sender = &mut self.sender;
        let set = sender.metadata.partition_set(topic);
        let partition = select_partition(
            &mut self.partitioner,
            topic,
            record.partition,
            record.key,
            record.value,
            &set,
        )
        .map_err(|e| match e {
            PartitionError::InvalidPartition {
                partition,
                num_partitions,
            } => SendError::InvalidPartition {
                partition,
                num_partitions,
            },
            PartitionError::TopicOutOfRange { .. } => SendError::TooManyTopics,
            _ => SendError::MetadataNotReady,
        })?;
        let rec = Record {
            timestamp: record.timestamp,
            key: record.key,
            value: record.value,
            headers: record.headers,
        };
        let tp = TopicPartition::new(topic, partition);
        match sender.acc.append(now_ms, tp, &rec) {
            Ok(r) => {
                self.partitioner.on_append(
                    topic,
                    partition,
                    r.appended_bytes,
                    r.all_batches_full,
                    &set,
                );
                let linger = sender.config.linger_ms;
                if r.batch_is_full || (r.new_batch_created && linger == 0) {
                    // Java wakes the sender for a full batch (or at once without linger).
                    sender.drive(now_ms, self.io.as_mut());
                } else if r.new_batch_created {
                    sender.wake_at(now_ms.saturating_add(linger));
                }
                Ok(r.ticket)
            }
            Err(e) => Err(match e {
                AppendError::RecordTooLarge { size, max } => {
                    SendError::RecordTooLarge { size, max }
                }
                AppendError::TooManyPartitions => SendError::TooManyPartitions,
                AppendError::InvalidTimestamp { timestamp } => {
                    SendError::InvalidTimestamp { timestamp }
                }
                _ => {
                    // Memory is short: send what is queued now.
                    sender.drive(now_ms, self.io.as_mut());
                    SendError::BufferFull
                }
            }),
        }
    }

    /// Makes every record accepted so far ready to send at once (ignoring `linger.ms`);
    /// drive the producer until [`is_flushed`](Self::is_flushed).
    pub fn flush(&mut self, now_ms: u64) {
        if self.sender.acc.batch_count() > 0 {
            self.sender.begin_flush();
        }
        self.sender.drive(now_ms, self.io.as_mut());
    }

    /// Refuses new records ([`SendError::Closed`]) and delivers what it can until
    /// `now_ms + timeout_ms`; then the rest fails with
    /// [`ProduceError::Closed`](crate::ProduceError::Closed). Every ticket still gets
    /// exactly one outcome; connections are closed at the end. Drive the producer until
    /// [`is_closed`](Self::is_closed).
    pub fn close(&mut self, now_ms: u64, timeout_ms: u64) {
        self.closed = true;
        self.sender.close(now_ms, timeout_ms);
        self.sender.drive(now_ms, self.io.as_mut());
    }

    // ---- inputs --------------------------------------------------------------------------

    /// The transport connected `conn` (after `Event::Connect`).
    pub fn handle_connected(&mut self, now_ms: u64, conn: ConnId) {
        self.sender.handle_connected(now_ms, conn, self.io.as_mut());
    }

    /// Bytes received on `conn`, in any chunking. Returns how many were taken: always all of
    /// them (bytes for a closed connection are dropped).
    pub fn handle_received(&mut self, now_ms: u64, conn: ConnId, bytes: &[u8]) -> usize {
        self.sender
            .handle_received(now_ms, conn, bytes, self.io.as_mut())
    }

    /// The transport wrote `bytes` bytes of the transmit of `conn` handed out last.
    pub fn handle_transmitted(&mut self, now_ms: u64, conn: ConnId, bytes: usize) {
        self.sender
            .handle_transmitted(now_ms, conn, bytes, self.io.as_mut());
    }

    /// `conn` failed to connect or was lost. Its requests are retried elsewhere or later.
    pub fn handle_closed(&mut self, now_ms: u64, conn: ConnId) {
        self.sender.handle_closed(now_ms, conn, self.io.as_mut());
    }

    /// Time passed (call at [`poll_timeout`](Self::poll_timeout), or any time).
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.sender.handle_timeout(now_ms, self.io.as_mut());
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
        self.sender.poll_transmit(now_ms, self.io.as_mut())
    }

    /// The next instant (`now_ms` scale) at which [`handle_timeout`](Self::handle_timeout)
    /// is wanted, if any.
    pub const fn poll_timeout(&self) -> Option<u64> {
        self.sender.poll_timeout()
    }
}
