//! kafka-edge-std: a Kafka producer for std, the heap-free `kafka-edge-core` state machine
//! driven by one background I/O thread over non-blocking sockets (`mio`), as Java's
//! `KafkaProducer` is driven by its `Sender` thread.
//!
//! ```no_run
//! use kafka_edge_std::{Producer, ProducerRecord};
//! use std::time::Duration;
//!
//! let producer = Producer::builder()
//!     .set("bootstrap.servers", "localhost:9092")
//!     .set("acks", "all")
//!     .set("linger.ms", 5)
//!     .build()?;
//!
//! // Blocking: wait for the broker's acknowledgement.
//! let meta = producer.send(&ProducerRecord::new("events").key(b"k").value(b"v"))?.wait()?;
//! println!("written at {}-{}@{}", meta.topic, meta.partition, meta.offset);
//!
//! // Callback, on the I/O thread (Java's `send(record, callback)`).
//! producer.send_with_callback(&ProducerRecord::new("events").value(b"w"), |result| {
//!     if let Err(e) = result {
//!         eprintln!("not delivered: {e}");
//!     }
//! })?;
//!
//! // `DeliveryFuture` is also a `std::future::Future`: `.await` it on any executor.
//! producer.flush();
//! producer.close(Duration::from_secs(5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Async services
//!
//! [`Producer`] is a `Clone + Send + Sync` handle: give each task (or an axum `State`) a
//! clone. [`Producer::send_async`] never blocks the executor: while buffer memory is full
//! or the topic's metadata is being fetched, its task sleeps until the I/O thread wakes it
//! (when memory is freed, metadata arrives, or `max.block.ms` runs out); no runtime is
//! needed (tokio, async-std, smol and `block_on` all work). [`Producer::try_send`] never
//! waits at all: [`SendError::BufferFull`] says the buffer is full now (shed the load, an
//! HTTP 503). Errors are this crate's own: [`SendError`] (not accepted) and
//! [`ProduceError`] (accepted, not delivered) name the cause, and `broker_code()` gives the
//! broker's [`ErrorCode`] (name, number, retriable).
//!
//! ```no_run
//! use kafka_edge_std::{Producer, ProducerRecord, SendError};
//!
//! async fn handle(producer: Producer, body: Vec<u8>) -> Result<i64, SendError> {
//!     let record = ProducerRecord::new("events").key(b"user-1").value(&body);
//!     // Waits (without blocking) up to `max.block.ms` for buffer memory.
//!     let delivery = producer.send_async(&record).await?;
//!     match delivery.await {
//!         Ok(meta) => Ok(meta.offset),
//!         Err(e) => {
//!             eprintln!("not written: {e} (broker code {:?})", e.broker_code());
//!             Ok(-1)
//!         }
//!     }
//! }
//! ```
//!
//! From rdkafka's `FutureProducer`: `send(record, queue_timeout).await` is
//! `send_async(&record).max_block(queue_timeout).await?.await`; `send_result` (no wait) is
//! `try_send`; the `Timeout::Never` of a queue is a large `max_block`. The record is
//! accepted in the poll that resolves `send_async`, so a `send_async` dropped before it
//! resolved sent nothing (see its "Cancel safety"). `close` (and dropping the last clone)
//! waits for pending records: call it from `spawn_blocking` inside a runtime.
//! `examples/src/http.rs` (binary `kafka-edge-http`) is an axum service built this way.
//!
//! # Limits
//!
//! | what | limit | why, or what raises it |
//! | --- | --- | --- |
//! | buffer memory | `buffer.memory` (default 32 MiB), in `buffer.memory / batch.size` slots of `batch.size` (default 16 KiB; 4 x `batch.size` with compression) | a send waits (or `try_send` fails) when no slot is free; a record larger than a slot takes several contiguous slots |
//! | a record | `max.request.size` (default 1 MiB; at most 2 GiB - 1) and the buffer memory | [`SendError::RecordTooLarge`] at once |
//! | topics in use | 65,535 | [`SendError::TableFull`] `topics`; topics idle for `metadata.max.idle.ms` leave the table |
//! | partitions, over all topics in use | 1,048,576 | [`SendError::TableFull`] `partitions` |
//! | batches alive (queued, in flight, or awaiting their outcome) | 1,048,576 | more than any `buffer.memory` holds |
//! | brokers, connections | 65,535 each | brokers beyond it are logged and not used |
//! | `max.in.flight.requests.per.connection` | 1 to 8 (Java allows more; default 5) | refused when the producer is built |
//! | a response | `max.response.size` (default 100 MiB, Kafka's `socket.request.max.bytes`) | a larger one closes the connection (retried) |
//! | a request's framing (headers, topic and partition fields) | 64 MiB | far beyond `max.request.size` |
//! | `bootstrap.servers` | 32 entries, host names of up to 255 bytes | refused when the producer is built |
//! | `client.id` | 255 bytes | refused when the producer is built |
//! | a topic name | 249 bytes of `[a-zA-Z0-9._-]` (Kafka's rule) | [`SendError::InvalidTopic`] |
//! | headers | any number; the first [`INLINE_HEADERS`] (4) without a heap allocation | |
//! | threads | one I/O thread per producer; callbacks run on it | |
//!
//! The tables ([`LIMITS`]) grow with use. What an entry costs on x86_64 (`size_of`,
//! measured): a topic 336 bytes, a partition 56 (leader and epoch 8, leader list 4, queue
//! 32, sequence 12), a broker 272, a connection 600 plus its buffers (which grow to its
//! largest response and request framing), a batch 184 beside its `batch.size` of pool (12
//! per pool slot). The pool itself is exactly `buffer.memory` (any `buffer.memory /
//! batch.size`); the core state without tables is about 10.6 KB. Async sends waiting for
//! memory cost one entry (a waker) each, and are all woken when memory is freed.
//!
//! # Design
//!
//! - **One copy**: the core state machine lives behind a mutex that caller threads and the
//!   I/O thread share; `send` runs the core's `send` itself, which encodes the record
//!   straight into its batch in buffer memory. A channel to the I/O thread would cost a
//!   second copy of every record (and an allocation). The lock is held for the append
//!   (about a hundred nanoseconds), and by the I/O thread while it feeds received bytes
//!   and writes ready requests with `writev` straight from buffer memory.
//! - **Wake-ups**: `send` wakes the I/O thread (a `mio::Waker`) only when the core has
//!   work for it at once: a request started (a batch filled), a connection to open, or a
//!   timer earlier than the one the thread sleeps until (a new batch's `linger.ms`).
//! - **Completion**: core outcomes name ticket ranges; completion state is per batch of
//!   the core's table, not per record: the futures of a batch share one outcome (a
//!   future is that `Arc`, its record's index and timestamp), and callbacks sit in runs
//!   of one closure type in a contiguous vector (no box per record); record `i` of a
//!   delivered range gets offset `base_offset + i`. Futures and callbacks complete outside
//!   the lock, exactly once (a record dropped without an outcome completes with
//!   [`ProduceError::Abandoned`]). The callbacks of pending records hold at most
//!   [`COMPLETION_MEMORY`] bytes: beyond it `send` waits as for buffer memory, so the
//!   producer's memory stays within `buffer.memory` plus a few MiB.
//! - **Clock**: one monotonic clock read per `send`; the record's wall-clock timestamp
//!   is derived from it with an offset the I/O thread refreshes every round.
//! - **Capacities**: no table is sized up front; every table of the core grows with use
//!   up to [`LIMITS`] (see "Limits" above).
//! - **TLS** (`security.protocol=SSL`, `SASL_SSL`): rustls (the `ring` provider) inside
//!   the same `mio` loop, configured from Java's `ssl.*` properties; see
//!   [`ProducerBuilder`]'s "TLS". SASL is the core's, over TLS or not.
//! - **Logs** go through the `log` crate, each line prefixed `[Producer clientId=..]` as
//!   Java's.
//! - **Compression** (`compression.type` = `gzip`, `snappy`, `lz4`, `zstd`, with Java's
//!   `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`): one codec
//!   per feature of the same name (all on by default), framed as Java frames them (gzip
//!   member, snappy-java's xerial stream, LZ4 frame, zstd frame); a codec left out is
//!   refused when the producer is built. With compression a pool slot holds
//!   `4 x batch.size` of uncompressed records and a batch is full when its estimated
//!   compressed size reaches `batch.size` (Java's running ratio estimate, per partition
//!   here); one slot is kept aside to compress into. A compressed batch the broker refuses
//!   as too large is not split (the core cannot decompress it): it fails with
//!   `MESSAGE_TOO_LARGE`.

mod compression;
mod delivery;
mod error;
mod interceptor;
mod io;
pub mod java_config;
mod metrics;
mod oauth;
mod partitioner;
mod producer;
mod properties;
mod record;
mod send_future;
mod serialize;
mod socket;
mod tls;
mod waiters;

pub use delivery::{DeliveryFuture, DeliveryResult};
pub use error::{
    AuthenticationError, BuildError, ErrorCode, ProduceError, PropertiesError, SendError,
    SerializationError, TlsConfigError, TransactionError,
};
pub use interceptor::ProducerInterceptor;
pub use kafka_edge_core::SecurityProtocol;
pub use kafka_edge_core::security::AuthFailureKind;
// Core types that appear in this crate's API, so that users never name the core crate.
pub use kafka_edge_core::{
    ConfigError, ConsumedOffset, Limits, ProducerConfig, murmur2, partition_for_key,
};
pub use metrics::{
    Counters, DEFAULT_NUM_SAMPLES, DEFAULT_SAMPLE_WINDOW_MS, MetricKind, MetricValue, Metrics,
    TopicMetrics,
};
pub use partitioner::{Partitioner, TopicPartitions};
pub use producer::{
    COMPLETION_MEMORY, DEFAULT_DROP_CLOSE_TIMEOUT, LIMITS, Producer, ProducerBuilder, Resolver,
    SendFuture,
};
pub use properties::Properties;
pub use record::{Header, Headers, INLINE_HEADERS, ProducerRecord, RecordMetadata};
#[cfg(feature = "json")]
pub use serialize::JsonSerializer;
pub use serialize::{BytesSerializer, Serializer, StringSerializer, TypedProducer, TypedRecord};
