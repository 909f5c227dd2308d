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
//! - **Completion**: core outcomes name ticket ranges; each batch of the core's table has
//!   a vector of completions indexed by ticket; record `i` of a delivered range gets offset
//!   `base_offset + i`. Futures and callbacks complete outside the lock, exactly once
//!   (a record dropped without an outcome completes with [`ProduceError::Abandoned`]).
//! - **Capacities**: no table is sized up front. Every table of the core (topics,
//!   partitions, brokers, connections, batches, request and response buffers) grows with
//!   use up to [`LIMITS`] ([`kafka_edge_core::Limits::UNBOUNDED`]): 65,535 topics, 1,048,576
//!   partitions, 65,535 brokers and connections, 1,048,576 batches alive, responses of up to
//!   `max.response.size` (100 MiB by default, Kafka's `socket.request.max.bytes`). What an
//!   entry costs on x86_64 (`size_of`, measured): a topic 336 bytes, a partition 56
//!   (leader and epoch 8, leader list 4, queue 32, sequence 12), a broker 272, a
//!   connection 600 plus its buffers (which grow to its largest response and request
//!   framing), a batch 184 beside its `batch.size` of pool (12 per pool slot). The pool
//!   itself is exactly `buffer.memory` (any `buffer.memory / batch.size`); the core state
//!   without tables is about 10.6 KB. A topic unused for `metadata.max.idle.ms` leaves
//!   its entries for others.
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
mod metrics;
mod oauth;
mod producer;
mod properties;
mod record;
mod serialize;
mod tls;

pub use delivery::{DeliveryFuture, DeliveryResult};
pub use error::{
    AuthenticationError, BuildError, ProduceError, PropertiesError, SendError, SerializationError,
    TlsConfigError,
};
pub use interceptor::ProducerInterceptor;
pub use kafka_edge_core::SecurityProtocol;
pub use kafka_edge_core::security::AuthFailureKind;
pub use kafka_edge_core::{Partitioner, ProducerConfig};
pub use metrics::{
    Counters, DEFAULT_NUM_SAMPLES, DEFAULT_SAMPLE_WINDOW_MS, MetricKind, MetricValue, Metrics,
    TopicMetrics,
};
pub use producer::{DEFAULT_DROP_CLOSE_TIMEOUT, LIMITS, Producer, ProducerBuilder, Resolver};
pub use properties::Properties;
pub use record::{Header, ProducerRecord, RecordMetadata};
#[cfg(feature = "json")]
pub use serialize::JsonSerializer;
pub use serialize::{BytesSerializer, Serializer, StringSerializer, TypedProducer, TypedRecord};
