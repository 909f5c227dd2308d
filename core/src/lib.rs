//! kafka-edge-core: the heap-free, sans-IO core of a Kafka producer.
//!
//! The whole logic of the Java `KafkaProducer` (`Partitioner` -> `RecordAccumulator` +
//! `BufferPool` -> `Sender`) as a deterministic state machine:
//!
//! - **no I/O**: bytes come in through `handle_*` inputs and go out through `poll_*`
//!   outputs; the transport owns the sockets;
//! - **no clock**: every time-dependent call takes `now_ms`, a monotonic millisecond instant
//!   from the caller; record timestamps are wall-clock values carried by the records, and
//!   the two are never mixed;
//! - **no heap**: `#![no_std]`, without `alloc` unless feature `alloc` is on. The pool
//!   (`buffer.memory`) is storage handed in by the caller (a `static` array on firmware, a
//!   `Vec` owned next to the core on std); every other table (topics, partitions, brokers,
//!   connections, batches) is chosen through a [`Storage`]: [`FixedStorage`] inline,
//!   without heap, or `HeapStorage` (feature `alloc`), growing with use up to [`Limits`].
//!   Anything that can fill up returns a typed error instead of growing past its limit or
//!   panicking.
//!
//! The same inputs give the same outputs, which makes simulation tests replay exactly.
//! Decoders never panic on any input (see [`protocol`]).
//!
//! # Layers
//!
//! Dependencies point one way, as in Java's client: producer -> sender -> accumulator ->
//! pool and record; [`protocol`] is a leaf.
//!
//! - [`protocol`]: primitive codec (the varints are shared with [`record`]), request and
//!   response headers, frames, and the messages a producer speaks;
//! - [`record`]: RecordBatch v2: a [`Record`](record::Record) and its sizes, the batch
//!   builder (byte-for-byte as Java's `MemoryRecordsBuilder`), the batch header view, the
//!   reader, CRC32C;
//! - [`BufferPool`]: `buffer.memory` as fixed slots of `batch.size` bytes;
//! - [`RecordAccumulator`]: per-partition queues of [`ProducerBatch`]es: `append`, `ready`,
//!   `drain`, expiry, retries, splits of batches too large;
//! - [`murmur2`], [`BuiltInPartitioner`]: Java's partitioning (keyed and uniform sticky);
//! - [`Metadata`]: brokers, topics, partition leaders, refresh policy;
//! - the sender (private): the network client (connections, reconnect backoff, ApiVersions
//!   negotiation, requests in flight), Produce requests, responses and retries, and
//!   idempotence (producer id, epoch, sequences);
//! - [`Producer`]: the state machine a transport drives, with its [`ProducerConfig`] (Java's
//!   property names and defaults, validated);
//! - `sasl` (feature `sasl`): the client side of the SASL mechanisms (PLAIN, SCRAM,
//!   OAUTHBEARER) as a heap-free state machine whose tokens travel in `SaslAuthenticate`
//!   requests; a leaf like [`protocol`], which it uses;
//! - [`storage`]: the tables of every run-time capacity ([`Storage`], [`FixedStorage`],
//!   [`Limits`]) and their opaque entry types.
//!
//! # The driver loop
//!
//! A transport owns the sockets and the clock, and drives the [`Producer`]: after every
//! command or input it drains the outputs in a fixed order (events, transmits, timeout).
//!
//! ```no_run
//! use kafka_edge_core::{
//!     BrokerRef, ConnId, ProduceError, Producer, ProducerConfig, ProducerRecord, TicketRange,
//!     Transmit, Transport,
//! };
//! # fn clock() -> u64 { 0 }
//! # fn open(_: ConnId, _: &str, _: u16) {} fn close(_: ConnId) {}
//! # fn write(_: ConnId, _: &[&[u8]]) -> usize { 0 }
//! # fn wait(_: Option<u64>) -> (Vec<(ConnId, Vec<u8>)>, Vec<ConnId>) { (vec![], vec![]) }
//! /// What this transport does for the producer's outputs.
//! struct Sockets;
//!
//! impl Transport for Sockets {
//!     fn connect(&mut self, conn: ConnId, _broker: BrokerRef, host: &str, port: u16) {
//!         open(conn, host, port); // then handle_connected (or handle_closed)
//!     }
//!     fn disconnect(&mut self, conn: ConnId) {
//!         close(conn);
//!     }
//!     fn delivered(&mut self, topic: &str, partition: i32, tickets: TicketRange, offset: i64, _: i64) {
//!         println!("{tickets:?} at {topic}-{partition}@{offset}");
//!     }
//!     fn failed(&mut self, topic: &str, partition: i32, tickets: TicketRange, error: ProduceError) {
//!         println!("{tickets:?} to {topic}-{partition}: {error}");
//!     }
//!     fn transmit(&mut self, tx: &Transmit<'_>) -> usize {
//!         write(tx.conn(), &tx.chunks().collect::<Vec<_>>()) // writev; may write less
//!     }
//! }
//!
//! # #[cfg(feature = "alloc")]
//! # fn main() -> Result<(), Box<dyn core::error::Error>> {
//! use kafka_edge_core::{HeapStorage, Limits};
//! // buffer.memory: 64 batches of 16 KiB; every other table grows with use (feature `alloc`).
//! type P = Producer<Vec<u8>, HeapStorage>;
//! let config = ProducerConfig::new("localhost:9092")?;
//! let mut p = P::new(config, vec![0; 64 * 16384], Limits::UNBOUNDED, 7)?;
//! let mut sockets = Sockets;
//! let record = ProducerRecord { topic: "events", partition: None, key: None,
//!     value: Some(b"hello"), headers: &[], timestamp: 1_700_000_000_000 };
//! let mut sent = false;
//! while !(sent && p.is_flushed()) {
//!     sent = sent || p.send(clock(), &record).is_ok(); // MetadataNotReady at first: retry
//!     let timeout = p.drain(clock(), &mut sockets); // events, then transmits, until none
//!     let (readable, writable) = wait(timeout); // socket readiness, or the timer
//!     for (conn, bytes) in readable {
//!         p.handle_received(clock(), conn, &bytes);
//!     }
//!     for conn in writable { // after a partial write
//!         p.handle_writable(clock(), conn);
//!     }
//!     p.handle_timeout(clock());
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "alloc"))]
//! # fn main() {}
//! ```
//!
//! # The accumulator in a few lines: append -> ready -> drain
//!
//! ```
//! use kafka_edge_core::record::{BatchMeta, Record, RecordBatchReader};
//! use kafka_edge_core::{
//!     AccumulatorConfig, BatchId, FixedAccumulator, FixedPool, NodeId, TopicId, TopicPartition,
//! };
//!
//! // `buffer.memory` = 4 slots of `batch.size` = 1 KiB, over caller storage.
//! let pool = FixedPool::<_, 4>::new([0u8; 4 * 1024], 1024)?;
//! let mut acc = FixedAccumulator::<_, 4, 2, 4>::new(pool, AccumulatorConfig::DEFAULT);
//! let tp = TopicPartition::new(TopicId::new(0, 0), 0);
//! let leader_of = |_: TopicPartition| Some(NodeId(1));
//!
//! let record = Record { timestamp: 1_700_000_000_000, key: Some(b"k"), value: Some(b"v"), headers: &[] };
//! let ticket = acc.append(0, tp, &record)?.ticket; // encoded once, into the pool
//!
//! let mut ready = heapless::Vec::<NodeId, 4>::new();
//! acc.ready(5, leader_of, &mut ready); // linger.ms = 5 has elapsed
//! assert_eq!(ready, [NodeId(1)]);
//!
//! let mut drained = [BatchId::default(); 4];
//! let n = acc.drain(5, NodeId(1), 1 << 20, leader_of, |_| BatchMeta::default(), &mut drained);
//! let bytes = acc.batch_bytes(drained[0])?; // header and CRC filled: send these
//! assert_eq!(RecordBatchReader::new(bytes).count(), n);
//!
//! let done = acc.complete(drained[0])?; // after the broker's answer
//! assert!(done.tickets.contains(ticket));
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```
#![no_std]
// No panic is reachable from input: the rule is enforced by the linter outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::indexing_slicing
    )
)]

mod accumulator;
mod backoff;
mod bootstrap;
mod config;
mod metadata;
mod partitioner;
mod pool;
mod producer;
pub mod protocol;
pub mod record;
#[cfg(feature = "sasl")]
pub mod sasl;
pub mod security;
mod sender;
pub mod storage;
mod topic;

pub use accumulator::{
    AccumulatorConfig, AccumulatorError, AppendError, AppendResult, BatchId, BatchState,
    FixedAccumulator, ProducerBatch, ProducerState, ReadyCheck, RecordAccumulator, ReleasedBatch,
    Ticket, TicketRange,
};
pub use config::{
    Acks, BootstrapIter, BootstrapServers, BrokerAddress, COMPRESSED_SLOT_FACTOR, ClientDnsLookup,
    ConfigError, DEFAULT_BATCH_MAX_SIZE, DEFAULT_BATCH_SIZE, DEFAULT_DELIVERY_TIMEOUT_MS,
    DEFAULT_GZIP_LEVEL, DEFAULT_LZ4_LEVEL, DEFAULT_ZSTD_LEVEL, MAX_BOOTSTRAP_LEN,
    MAX_BOOTSTRAP_SERVERS, MAX_CLIENT_ID_LEN, MAX_HOST_LEN, MAX_IN_FLIGHT_CAPACITY,
    MAX_TRANSACTIONAL_ID_LEN, ProducerConfig,
};
#[cfg(feature = "metrics")]
pub use metadata::TopicMetrics;
pub use metadata::{
    Broker, MAX_TOPIC_NAME_LEN, Metadata, RegisterError, TopicStatus, is_valid_topic_name,
};
pub use partitioner::{
    BuiltInPartitioner, NoLoad, PartitionError, PartitionLoad, PartitionSet, Partitioner,
    StickyState, murmur2, partition_for_key, select_partition, to_positive,
};
pub use pool::{BufferPool, FixedPool, PoolError, SlotId};
pub use producer::{Producer, ProducerRecord, SendError, Transport};
pub use record::crc32c;
pub use security::SecurityProtocol;
pub use sender::{
    Broker as BrokerRef, ConnId, ConsumedOffset, Event, MetadataOf, ProduceError, ProducerMetrics,
    TransactionError, TransactionState, Transmit,
};
pub use storage::{
    FIXED_TXN_OFFSETS_BYTES, FixedStorage, FixedTable, Limits, Storage, Table, TableFull, TableKind,
};
#[cfg(feature = "alloc")]
pub use storage::{HeapStorage, VecTable};
pub use topic::{NodeId, TopicId, TopicPartition};
