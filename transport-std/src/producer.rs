//! [`Producer`]: the handle applications share between threads, and the state it shares
//! with the I/O thread.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::Waker;
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_edge_core::{
    ClientDnsLookup, HeapStorage, Limits, ProducerConfig, ProducerRecord as CoreRecord,
    SendError as CoreSendError, Ticket,
};
use log::{debug, error, info, warn};

use crate::compression::Codecs;
use crate::delivery::{
    CallbackRun, Callbacks, DeliveryFuture, DeliveryResult, Finished, FutureBatch, RangeOutcome,
};
use crate::error::{AuthenticationError, BuildError, SendError};
use crate::interceptor::ProducerInterceptor;
use crate::io::{IoLoop, WAKER_TOKEN};
use crate::metrics::{Metrics, Sampler};
use crate::partitioner::{CoreAdapter, Partitioner};
use crate::properties::Properties;
use crate::record::ProducerRecord;
pub use crate::send_future::SendFuture;
use crate::waiters::SendWaiters;

/// The limits of this transport's tables: far beyond any real cluster, and paid for only
/// as they are used (every table grows with use; see the crate docs for the bytes each
/// entry costs).
pub const LIMITS: Limits = Limits::UNBOUNDED;

/// The core producer as this transport instantiates it: the pool in a `Vec` of
/// `buffer.memory` bytes and every other table on the heap, growing with use.
pub(crate) type CoreProducer = kafka_edge_core::Producer<Vec<u8>, HeapStorage, Codecs>;

/// How long [`Drop`] lets [`Producer::close`] deliver what is pending (Java's `close()`
/// waits forever; a bounded wait keeps a stuck broker from hanging a process at exit).
pub const DEFAULT_DROP_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the builder adds to the core configuration.
struct Options {
    interceptors: Vec<Box<dyn ProducerInterceptor>>,
    partitioner: Option<Box<dyn Partitioner>>,
    resolver: Option<Box<Resolver>>,
    drop_close_timeout: Duration,
    tls: Option<crate::tls::TlsSettings>,
    /// `send.buffer.bytes`, `receive.buffer.bytes`.
    socket: crate::socket::SocketBuffers,
    /// The OAUTHBEARER token, with `sasl.mechanism=OAUTHBEARER`.
    oauth_token: Option<String>,
    /// `metrics.*` settings and the metrics callback.
    metrics: (
        crate::metrics::MetricsSettings,
        Option<crate::metrics::MetricsCallback>,
    ),
}

/// Everything [`ProducerBuilder::build`] reads from the properties.
struct Settings {
    config: ProducerConfig,
    tls: Option<crate::tls::TlsSettings>,
    oauth_token: Option<String>,
    metrics: crate::metrics::MetricsSettings,
    socket: crate::socket::SocketBuffers,
}

/// Heap bytes that the callbacks of pending records may hold (their closures, and each
/// record's timestamp): past it, sends wait as for buffer memory (as librdkafka's
/// `queue.buffering.max.messages` bounds its queue besides its bytes). It keeps the
/// producer's memory within `buffer.memory` plus a few MiB whatever the closures capture;
/// a closure of 32 bytes lets about 50 000 records wait for their outcome. While a send
/// waits for it, queued batches are sent at once, ignoring `linger.ms`, as while one waits
/// for buffer memory.
pub const COMPLETION_MEMORY: usize = 2 << 20;

/// How an accepted record's outcome is handed over.
pub(crate) enum Completion<F> {
    /// To a [`DeliveryFuture`], made when the record is accepted.
    Future,
    /// To a callback.
    Callback(F),
}

/// A callback type for sends that return a [`DeliveryFuture`].
pub(crate) type NoCallback = fn(DeliveryResult);

/// The callback of a future's record when interceptors need to see its outcome.
fn intercepted_only(_: DeliveryResult) {}

/// The completions of one batch of the core's batch table: the futures' shared outcome
/// and runs of callbacks, not an entry per record.
#[derive(Default)]
pub(crate) struct BatchSlots {
    pub(crate) generation: u32,
    /// Records accepted and not yet reported, or reported with callbacks still running.
    pub(crate) live: bool,
    /// Records accepted and not yet reported.
    pub(crate) remaining: u32,
    /// The outcome the batch's futures share, from its first future on.
    futures: Option<FutureBatch>,
    /// Callbacks, in record order.
    runs: Vec<Box<dyn CallbackRun>>,
    /// `end()` of the last of `runs` (0 without runs): a record that follows it may join
    /// it, without a virtual call to ask.
    runs_end: u32,
}

impl BatchSlots {
    /// Appends the callback of record `index`; returns the heap bytes added.
    fn push_callback<F>(
        &mut self,
        index: u32,
        callback: F,
        timestamp: i64,
        capacity: usize,
    ) -> usize
    where
        F: FnOnce(DeliveryResult) + Send + 'static,
    {
        if self.runs_end == index
            && let Some(last) = self.runs.last_mut()
            && let Some(run) = last.as_any().downcast_mut::<Callbacks<F>>()
        {
            self.runs_end = index.saturating_add(1);
            return run.push(callback, timestamp);
        }
        let mut run = Callbacks::new(index, capacity);
        run.push(callback, timestamp);
        let bytes = run.heap_bytes();
        self.runs.push(Box::new(run));
        self.runs_end = index.saturating_add(1);
        bytes
    }

    /// Takes the completions of `outcome`'s records (a whole batch, or a piece of a split
    /// one) out of the table, to complete outside the lock. `bytes` is the completion
    /// budget in use: splitting a run may allocate.
    pub(crate) fn take_range(&mut self, outcome: RangeOutcome, bytes: &mut usize) -> Finished {
        let (first, end) = (outcome.first, outcome.first.saturating_add(outcome.count));
        self.remaining = self.remaining.saturating_sub(outcome.count);
        let runs = if self
            .runs
            .iter()
            .all(|r| r.first() >= first && r.end() <= end)
        {
            std::mem::take(&mut self.runs)
        } else {
            let before: usize = self.runs.iter().map(|r| r.heap_bytes()).sum();
            let mut kept = Vec::new();
            let mut taken = Vec::new();
            for mut run in self.runs.drain(..) {
                if run.end() <= first || run.first() >= end {
                    kept.push(run);
                    continue;
                }
                if run.first() < first {
                    let rest = run.split_off(first);
                    kept.push(run);
                    run = rest;
                }
                let tail = (run.end() > end).then(|| run.split_off(end));
                taken.push(run);
                kept.extend(tail);
            }
            self.runs = kept;
            let after: usize = self.runs.iter().chain(&taken).map(|r| r.heap_bytes()).sum();
            *bytes = (*bytes + after).saturating_sub(before);
            taken
        };
        self.runs_end = self.runs.last().map_or(0, |r| r.end());
        let futures = if self.remaining == 0 {
            self.futures.take().and_then(FutureBatch::into_outcome)
        } else {
            self.futures.as_ref().and_then(|f| f.outcome().cloned())
        };
        let taken_bytes = runs.iter().map(|r| r.heap_bytes()).sum();
        Finished {
            outcome,
            futures,
            runs,
            bytes: taken_bytes,
        }
    }

    /// Everything left (abandoned).
    pub(crate) fn take_all(&mut self) -> Finished {
        self.remaining = u32::MAX;
        self.take_range(RangeOutcome::abandoned(), &mut 0)
    }
}

/// What the caller threads and the I/O thread share, under one mutex.
pub(crate) struct State {
    pub(crate) core: CoreProducer,
    /// By batch index (`BatchId::index`).
    pub(crate) batches: Vec<BatchSlots>,
    partitioner: Option<CoreAdapter>,
    /// Async sends waiting for buffer memory or metadata: woken by the I/O thread.
    pub(crate) send_waiters: SendWaiters,
    /// The I/O thread is (about to be) blocked in `poll` until `io_sleep_until`.
    pub(crate) io_sleeping: bool,
    pub(crate) io_sleep_until: Option<u64>,
    /// A wake-up was sent and not yet seen.
    pub(crate) wake_pending: bool,
    pub(crate) closing: bool,
    pub(crate) close_deadline_ms: u64,
    /// The I/O thread has ended: nothing more will be delivered.
    pub(crate) io_gone: bool,
    /// Threads blocked on `Shared::progress` (blocking sends and flushes).
    pub(crate) waiters: usize,
    /// Completions found where they should not be (a batch entry reused with records
    /// left); the I/O thread fails them outside the lock.
    pub(crate) orphans: Vec<Finished>,
    /// Heap bytes the callbacks of pending records hold (see [`COMPLETION_MEMORY`]).
    pub(crate) completion_bytes: usize,
    /// The I/O thread's last connection error, while no connection succeeded since.
    pub(crate) last_connection_error: Option<String>,
    /// The samples behind [`Producer::metrics`]; the I/O thread rolls them.
    pub(crate) metrics: Sampler,
}

/// What the I/O thread sleeps until, before a command on the core.
#[derive(Clone, Copy)]
struct Progress;

impl State {
    fn progress(&self) -> Progress {
        Progress
    }

    /// Wakes the I/O thread if the command gave it work: the core has an output now (a
    /// connection to open, a request to write, an outcome), or wants an earlier wake-up
    /// than the one the thread sleeps until (Java's `sender.wakeup()`).
    fn wake_if_needed(&mut self, _before: Progress, waker: &mio::Waker) {
        let earlier = match (self.core.poll_timeout(), self.io_sleep_until) {
            (Some(t), Some(until)) => t < until,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if self.core.has_output() || earlier {
            self.wake(waker);
        }
    }

    pub(crate) fn wake(&mut self, waker: &mio::Waker) {
        if self.io_sleeping && !self.wake_pending {
            self.wake_pending = true;
            if let Err(e) = waker.wake() {
                warn!("cannot wake the I/O thread: {e}");
            }
        }
    }

    fn try_send(&mut self, now_ms: u64, record: &CoreRecord<'_>) -> Result<Ticket, CoreSendError> {
        match self.partitioner.as_mut() {
            Some(p) => self.core.send_with(now_ms, record, p),
            None => self.core.send(now_ms, record),
        }
    }

    /// Keeps the completion of the record of `ticket` with its batch; a future comes back.
    /// `capacity`: how many records a batch of this record's size holds (room for a run).
    fn register<F>(
        &mut self,
        ticket: Ticket,
        timestamp: i64,
        completion: Completion<F>,
        capacity: usize,
        intercepted: bool,
    ) -> Option<DeliveryFuture>
    where
        F: FnOnce(DeliveryResult) + Send + 'static,
    {
        let batch = ticket.batch();
        if self.batches.len() <= batch.index() {
            self.batches
                .resize_with(batch.index() + 1, BatchSlots::default);
        }
        let entry = self.batches.get_mut(batch.index())?;
        if entry.generation != batch.generation() || !entry.live {
            if !entry.runs.is_empty() || entry.futures.is_some() {
                let left = entry.take_all();
                self.completion_bytes = self.completion_bytes.saturating_sub(left.bytes);
                self.orphans.push(left);
            }
            entry.generation = batch.generation();
            entry.live = true;
            entry.remaining = 0;
        }
        entry.remaining += 1;
        let index = ticket.index();
        let capacity = capacity.saturating_sub(index as usize).max(1);
        let added = match completion {
            Completion::Future => {
                let outcome = entry
                    .futures
                    .get_or_insert_with(FutureBatch::new)
                    .outcome()?;
                let future = DeliveryFuture::new(outcome.clone(), index, timestamp);
                if intercepted {
                    let added = entry.push_callback(index, intercepted_only, timestamp, capacity);
                    self.completion_bytes += added;
                }
                return Some(future);
            }
            Completion::Callback(f) => entry.push_callback(index, f, timestamp, capacity),
        };
        self.completion_bytes += added;
        None
    }
}

/// Everything the handle and the I/O thread share.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Signalled by the I/O thread when memory was freed, metadata arrived, batches
    /// finished, or it ended; `send` (backpressure) and `flush` wait on it.
    pub(crate) progress: Condvar,
    pub(crate) waker: mio::Waker,
    start: Instant,
    /// Wall-clock microseconds minus monotonic microseconds since `start`, as last read:
    /// a send's timestamp from its one monotonic clock read.
    wall_offset_us: AtomicI64,
    /// Monotonic milliseconds of the last refresh of `wall_offset_us`.
    wall_read_ms: AtomicU64,
    /// Records of a batch, per byte of record (`batch.size` of records per slot): room
    /// for a batch's callbacks.
    slot_size: usize,
    pub(crate) client_id: String,
    pub(crate) max_block_ms: u64,
    max_request_size: usize,
    pub(crate) interceptors: Vec<Box<dyn ProducerInterceptor>>,
    pub(crate) resolver: Option<Box<Resolver>>,
    pub(crate) io_thread: OnceLock<ThreadId>,
    /// With a TLS `security.protocol`: the configuration of every connection.
    pub(crate) tls: Option<crate::tls::TlsSettings>,
    /// The socket buffer sizes of every connection.
    pub(crate) socket: crate::socket::SocketBuffers,
}

/// A custom resolution of broker addresses: see [`ProducerBuilder::resolver`].
pub type Resolver = dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync;

/// How old the wall clock's offset from the monotonic clock may be before a send reads
/// the wall clock again (the I/O thread refreshes it every round).
const WALL_CLOCK_REFRESH_MS: u64 = 1_000;

impl Shared {
    /// The core's monotonic clock: milliseconds since the producer started.
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The monotonic clock (milliseconds, for the core) and the wall clock (Unix
    /// milliseconds, for a record's `CreateTime`) from one clock read: the wall clock is
    /// the monotonic one plus an offset that the I/O thread reads every round (a send
    /// reads it itself when it is older than a second). Reading both clocks on every send
    /// cost a third of the send.
    pub(crate) fn now(&self) -> (u64, i64) {
        let since = self.start.elapsed();
        let ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        let mono_us = i64::try_from(since.as_micros()).unwrap_or(i64::MAX);
        let offset = if ms.saturating_sub(self.wall_read_ms.load(Ordering::Relaxed))
            > WALL_CLOCK_REFRESH_MS
        {
            self.refresh_wall_clock(ms, mono_us)
        } else {
            self.wall_offset_us.load(Ordering::Relaxed)
        };
        (ms, mono_us.saturating_add(offset).div_euclid(1000))
    }

    /// Reads the wall clock against monotonic time `mono_us` (read just before, at `ms`);
    /// returns the new offset.
    pub(crate) fn refresh_wall_clock(&self, ms: u64, mono_us: i64) -> i64 {
        let wall_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let offset = wall_us.saturating_sub(mono_us);
        self.wall_offset_us.store(offset, Ordering::Relaxed);
        self.wall_read_ms.store(ms, Ordering::Relaxed);
        offset
    }

    /// The I/O thread's round: [`now_ms`](Self::now_ms), and the wall clock's offset
    /// refreshed.
    pub(crate) fn now_ms_refreshed(&self) -> u64 {
        let since = self.start.elapsed();
        let ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        self.refresh_wall_clock(ms, i64::try_from(since.as_micros()).unwrap_or(i64::MAX));
        ms
    }

    /// The instant of core time `ms`.
    pub(crate) fn instant_of(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn on_io_thread(&self) -> bool {
        self.io_thread.get() == Some(&std::thread::current().id())
    }
}

/// Builds a [`Producer`] from Kafka properties set in code, plus interceptors and a custom
/// partitioner.
///
/// ```no_run
/// let producer = kafka_edge_std::Producer::builder()
///     .set("bootstrap.servers", "localhost:9092")
///     .set("acks", "all")
///     .set("linger.ms", 5)
///     .build()?;
/// # Ok::<(), kafka_edge_std::BuildError>(())
/// ```
///
/// # TLS
///
/// `security.protocol=SSL` (or `SASL_SSL`) encrypts every connection with rustls, set up
/// from Java's `ssl.*` properties (and librdkafka's `ssl.ca.location`,
/// `ssl.certificate.location`, `ssl.key.location`): a PEM or PKCS#12 truststore (none: the
/// system's), a PEM or PKCS#12 keystore for mTLS, `ssl.endpoint.identification.algorithm`,
/// `ssl.enabled.protocols` and `ssl.protocol`. A Java `JKS` store is refused with the
/// `keytool` command that converts it. A handshake that retrying will not fix (an untrusted
/// certificate, a host name mismatch, no common TLS version, the broker refusing the
/// client certificate) makes `send` fail at once with [`SendError::Authentication`] and
/// queued records with [`ProduceError::Authentication`](crate::ProduceError), naming the
/// broker, until a connection succeeds.
///
/// | property | meaning here |
/// | --- | --- |
/// | `ssl.truststore.location` (librdkafka `ssl.ca.location`) | CA certificates: a PEM file (`ssl.ca.location` also a directory of PEM files), or a PKCS#12 file with `ssl.truststore.type=PKCS12` and `ssl.truststore.password` |
/// | `ssl.truststore.certificates` | CA certificates as inline PEM |
/// | `ssl.truststore.type` | `PEM` or `PKCS12`; `JKS` is refused with the `keytool` command that converts it; unset: PEM when the file is PEM, PKCS#12 for `.p12`/`.pfx` |
/// | (no truststore) | the system's trust store (`rustls-native-certs`) |
/// | `ssl.endpoint.identification.algorithm` | `https` (default): the certificate must name the broker's host; empty (librdkafka: `none`): the chain is still verified, the name is not |
/// | `ssl.keystore.location` + `ssl.keystore.type=PEM` | the client's key and certificate chain in one PEM file (mTLS) |
/// | `ssl.keystore.location` + `ssl.keystore.type=PKCS12` + `ssl.keystore.password` | the same in a PKCS#12 file |
/// | `ssl.keystore.certificate.chain` + `ssl.keystore.key` | the same as inline PEM |
/// | `ssl.certificate.location` + `ssl.key.location` | librdkafka: the chain and the key in two PEM files |
/// | `ssl.key.password` | an encrypted PEM key is refused with the `openssl` command that decrypts it; for PKCS#12 the store password opens the key |
/// | `ssl.enabled.protocols` | `TLSv1.2`, `TLSv1.3` (older versions in the list are ignored) |
/// | `ssl.protocol` | `TLSv1.2` allows only TLS 1.2; `TLSv1.3` and `TLS` allow both |
///
/// The SNI is the broker's host name as the cluster advertises it (an IP address sends
/// none and is checked against the certificate's IP addresses).
///
/// ```no_run
/// let producer = kafka_edge_std::Producer::builder()
///     .set("bootstrap.servers", "broker.example.com:9093")
///     .set("security.protocol", "SSL")
///     .set("ssl.truststore.type", "PEM")
///     .set("ssl.truststore.location", "/etc/kafka/ca.pem")
///     .set("ssl.keystore.type", "PEM")
///     .set("ssl.keystore.location", "/etc/kafka/client-keystore.pem")
///     .build()?;
/// # Ok::<(), kafka_edge_std::BuildError>(())
/// ```
#[must_use]
pub struct ProducerBuilder {
    properties: Properties,
    interceptors: Vec<Box<dyn ProducerInterceptor>>,
    partitioner: Option<Box<dyn Partitioner>>,
    resolver: Option<Box<Resolver>>,
    drop_close_timeout: Duration,
    pub(crate) metrics_callback: Option<crate::metrics::MetricsCallback>,
}

impl std::fmt::Debug for ProducerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("properties", &self.properties)
            .field("interceptors", &self.interceptors.len())
            .field("partitioner", &self.partitioner.is_some())
            .field("drop_close_timeout", &self.drop_close_timeout)
            .finish()
    }
}

impl Default for ProducerBuilder {
    fn default() -> Self {
        Self {
            properties: Properties::new(),
            interceptors: Vec::new(),
            partitioner: None,
            resolver: None,
            drop_close_timeout: DEFAULT_DROP_CLOSE_TIMEOUT,
            metrics_callback: None,
        }
    }
}

impl ProducerBuilder {
    /// Sets a Kafka property (`"bootstrap.servers"`, `"acks"`, `"linger.ms"`, ...).
    pub fn set(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.properties.set(key, value);
        self
    }

    /// Sets every property of `properties` (for example from [`Properties::load`]).
    pub fn properties(mut self, properties: &Properties) -> Self {
        self.properties.extend(properties);
        self
    }

    /// Adds an interceptor (called in the order added).
    pub fn interceptor(mut self, interceptor: impl ProducerInterceptor + 'static) -> Self {
        self.interceptors.push(Box::new(interceptor));
        self
    }

    /// Chooses the partition of records without an explicit one, in place of murmur2 and
    /// the sticky partitioner (Java's `partitioner.class`); see [`Partitioner`].
    pub fn partitioner(mut self, partitioner: impl Partitioner + 'static) -> Self {
        self.partitioner = Some(Box::new(partitioner));
        self
    }

    /// Resolves broker host names (bootstrap and advertised) to socket addresses in place
    /// of the system resolver (`ToSocketAddrs`), as librdkafka's `resolve_cb`: for custom
    /// discovery, port forwarding or tests. It runs on the I/O thread, and once per
    /// bootstrap server in [`build`](Self::build) (see [`Producer`]'s "Bootstrap servers");
    /// the first address is used.
    pub fn resolver<F>(mut self, resolver: F) -> Self
    where
        F: Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    {
        self.resolver = Some(Box::new(resolver));
        self
    }

    /// How long dropping the producer waits for pending records (default 30 s).
    pub fn drop_close_timeout(mut self, timeout: Duration) -> Self {
        self.drop_close_timeout = timeout;
        self
    }

    /// Checks every setting as [`build`](Self::build) does (properties, TLS files, token,
    /// metrics and socket settings), without resolving the bootstrap servers or starting
    /// anything.
    pub fn validate(&self) -> Result<(), BuildError> {
        self.settings().map(drop)
    }

    fn settings(&self) -> Result<Settings, BuildError> {
        let config = self.properties.to_config()?;
        let tls = if config.security_protocol.uses_tls() {
            Some(crate::tls::settings(&self.properties)?)
        } else {
            None
        };
        let oauth_token = crate::oauth::token(&self.properties, &config)?;
        let metrics = crate::metrics::settings(&self.properties)?;
        let socket = crate::socket::settings(&self.properties)?;
        Ok(Settings {
            config,
            tls,
            oauth_token,
            metrics,
            socket,
        })
    }

    /// Validates the configuration, resolves the bootstrap servers (see [`Producer`]'s
    /// "Bootstrap servers") and starts the I/O thread. Each property of Java's producer
    /// that is ignored here (see [`java_config`](crate::java_config)) is logged once, as a
    /// warning, with the reason.
    pub fn build(self) -> Result<Producer, BuildError> {
        let Settings {
            config,
            tls,
            oauth_token,
            metrics,
            socket,
        } = self.settings()?;
        if self.properties.get("reconnect.backoff.ms").is_some()
            && self.properties.get("reconnect.backoff.max.ms").is_none()
        {
            // Java's words (CommonClientConfigs.postProcessReconnectBackoffConfigs).
            warn!(
                "Disabling exponential reconnect backoff because reconnect.backoff.ms is set, \
                 but reconnect.backoff.max.ms is not."
            );
        }
        for (key, why) in self.properties.ignored() {
            warn!(
                "[Producer clientId={}] {key} is ignored: {why}",
                config.client_id.as_str()
            );
        }
        Producer::start(
            config,
            Options {
                interceptors: self.interceptors,
                partitioner: self.partitioner,
                resolver: self.resolver,
                drop_close_timeout: self.drop_close_timeout,
                tls,
                socket,
                oauth_token,
                metrics: (metrics, self.metrics_callback),
            },
        )
    }
}

/// A Kafka producer (Java's `KafkaProducer`): a handle that is `Clone`, `Send` and `Sync`.
/// Clones share one producer (one I/O thread, one buffer memory); the producer closes when
/// the last clone is dropped (waiting up to
/// [`drop_close_timeout`](ProducerBuilder::drop_close_timeout)) or when any clone calls
/// [`close`](Self::close).
///
/// # Sending
///
/// | method | when buffer memory is full or the topic's metadata is not known yet | use from |
/// | --- | --- | --- |
/// | [`send`](Self::send), [`send_with_callback`](Self::send_with_callback) | blocks the thread up to `max.block.ms` | threads |
/// | [`send_async`](Self::send_async) | `.await`s up to `max.block.ms`, never blocking the executor | async tasks (any executor) |
/// | [`try_send`](Self::try_send) | returns at once with [`SendError::BufferFull`] or [`SendError::MetadataNotReady`] | anywhere that must not wait |
///
/// Each returns a [`DeliveryFuture`] once the record is accepted: the record's outcome,
/// which can be `.await`ed, waited for, or ignored (the record is sent anyway). Every
/// accepted record gets exactly one outcome.
///
/// # Threading
///
/// One background thread, `kafka-producer-network-thread | <client.id>`, owns the sockets
/// (non-blocking, `mio`) and drives the core state machine. The core itself sits behind a
/// mutex shared with the callers: `send` takes the lock, lets the core copy the record
/// straight into its batch in buffer memory (the only copy of its bytes), and wakes the I/O
/// thread only when there is something for it to do now (a full batch or request to write,
/// a connection to open, an earlier timer). The I/O thread takes the same lock to hand
/// the core what it read and to write what the core has ready straight from buffer memory
/// (vectored writes); it runs callbacks and completes futures outside the lock.
///
/// # Backpressure
///
/// `send` blocks up to `max.block.ms` while buffer memory is full (or the callbacks of
/// pending records hold [`COMPLETION_MEMORY`]) or the topic's metadata is being fetched, as
/// Java's does; then it returns [`SendError::BufferTimeout`] or
/// [`SendError::MetadataTimeout`]. [`send_async`](Self::send_async) waits the same way
/// without blocking: its task is woken by the I/O thread when memory is freed, metadata
/// arrives, or `max.block.ms` passes. Every record accepted gets exactly one outcome.
///
/// # Bootstrap servers
///
/// As Java's `ClientUtils.parseAndValidateAddresses`, building a producer resolves every
/// `bootstrap.servers` host (with the builder's [`resolver`](ProducerBuilder::resolver) if
/// it has one, else the system's). With `client.dns.lookup=use_all_dns_ips` (the default)
/// a host that does not resolve is logged and skipped, and the build fails with
/// [`BuildError::NoResolvableBootstrap`] only when none resolves; with
/// `resolve_canonical_bootstrap_servers_only` any host that does not resolve fails it with
/// [`BuildError::UnknownBootstrapHost`]. (Java then also replaces each name with its
/// canonical names by reverse lookup, which only matters to SASL/Kerberos; std has no
/// reverse lookup and this producer no Kerberos, so connections use the resolved addresses.)
/// Connections resolve names again when they are opened, so the addresses may change.
#[derive(Clone)]
pub struct Producer {
    pub(crate) shared: Arc<Shared>,
    /// Shared by the clones: the last one dropped closes the producer.
    owner: Arc<Owner>,
}

/// What closes the producer when the last clone of the handle is dropped.
struct Owner {
    shared: Arc<Shared>,
    io_thread: Mutex<Option<JoinHandle<()>>>,
    drop_close_timeout: Duration,
}

impl Drop for Owner {
    fn drop(&mut self) {
        close(&self.shared, &self.io_thread, self.drop_close_timeout);
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("client_id", &self.shared.client_id)
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// A builder for properties set in code.
    pub fn builder() -> ProducerBuilder {
        ProducerBuilder::default()
    }

    /// A producer configured by Kafka `properties` (see [`Properties`]).
    pub fn new(properties: &Properties) -> Result<Self, BuildError> {
        Self::builder().properties(properties).build()
    }

    /// A producer with a core configuration built in code (with a TLS
    /// `security_protocol`, the system's trust store and host name verification).
    pub fn with_config(config: ProducerConfig) -> Result<Self, BuildError> {
        config.validate().map_err(|source| BuildError::Config {
            key: None,
            value: None,
            source,
        })?;
        let tls = if config.security_protocol.uses_tls() {
            Some(crate::tls::settings(&Properties::new())?)
        } else {
            None
        };
        Self::start(
            config,
            Options {
                interceptors: Vec::new(),
                partitioner: None,
                resolver: None,
                drop_close_timeout: DEFAULT_DROP_CLOSE_TIMEOUT,
                tls,
                socket: Default::default(),
                oauth_token: None,
                metrics: Default::default(),
            },
        )
    }

    fn start(config: ProducerConfig, options: Options) -> Result<Self, BuildError> {
        let Options {
            interceptors,
            partitioner,
            resolver,
            drop_close_timeout,
            tls,
            socket,
            oauth_token,
            metrics,
        } = options;
        let batch_size = config.slot_size();
        let slots = config.buffer_memory / batch_size.max(1);
        if slots == 0 {
            return Err(BuildError::Config {
                key: Some("buffer.memory".into()),
                value: Some(config.buffer_memory.to_string()),
                source: kafka_edge_core::ConfigError::StorageTooSmall {
                    what: "buffer.memory",
                    needed: batch_size,
                    available: config.buffer_memory,
                },
            });
        }
        let client_id = config.client_id.as_str().to_string();
        let max_block_ms = config.max_block_ms;
        let max_request_size = config.max_request_size;
        let buffer_limit = slots * batch_size;
        resolve_bootstrap(&config, resolver.as_deref())?;
        let mut core = build_core(config)?;
        if let Some(token) = &oauth_token {
            core.set_sasl_token(token)
                .map_err(|_| BuildError::MissingOAuthToken)?;
        }
        if core.config().delivery_timeout_raised() {
            // Java's `configureDeliveryTimeout` warning, word for word.
            warn!(
                "[Producer clientId={client_id}] delivery.timeout.ms should be equal to or \
                 larger than linger.ms + request.timeout.ms. Setting it to {}.",
                core.config().delivery_timeout_ms
            );
        }

        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        let batches = Vec::new();
        let start = Instant::now();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                core,
                batches,
                partitioner: partitioner.map(CoreAdapter),
                send_waiters: SendWaiters::default(),
                io_sleeping: false,
                io_sleep_until: None,
                wake_pending: false,
                closing: false,
                close_deadline_ms: u64::MAX,
                io_gone: false,
                waiters: 0,
                orphans: Vec::new(),
                completion_bytes: 0,
                last_connection_error: None,
                metrics: Sampler::new(metrics.0, &client_id, 0, metrics.1)?,
            }),
            progress: Condvar::new(),
            waker,
            start,
            wall_offset_us: AtomicI64::new(0),
            wall_read_ms: AtomicU64::new(0),
            slot_size: batch_size,
            client_id: client_id.clone(),
            max_block_ms,
            max_request_size,
            interceptors,
            resolver,
            io_thread: OnceLock::new(),
            tls,
            socket,
        });
        shared.now_ms_refreshed();
        let io = IoLoop::new(shared.clone(), poll);
        let handle = std::thread::Builder::new()
            .name(format!("kafka-producer-network-thread | {client_id}"))
            .stack_size(4 << 20)
            .spawn(move || io.run())?;
        let _ = shared.io_thread.set(handle.thread().id());
        info!(
            "[Producer clientId={client_id}] started: buffer.memory={buffer_limit} \
             ({slots} slots of batch.size={batch_size})"
        );
        Ok(Self {
            owner: Arc::new(Owner {
                shared: shared.clone(),
                io_thread: Mutex::new(Some(handle)),
                drop_close_timeout,
            }),
            shared,
        })
    }

    /// The `client.id`.
    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    /// Sends `record` (Java's `send(record)`): copies it into a batch and returns at once,
    /// unless buffer memory is full or the topic's metadata is not known yet: then it blocks
    /// the thread up to `max.block.ms` (from an async task use
    /// [`send_async`](Self::send_async)). The future completes once the brokers
    /// acknowledged the record (or it failed).
    pub fn send(&self, record: &ProducerRecord<'_>) -> Result<DeliveryFuture, SendError> {
        let future = self.send_completion(record, Completion::<NoCallback>::Future)?;
        future.ok_or(SendError::IoThreadGone)
    }

    /// Sends `record` without blocking the thread: the returned future copies the record
    /// into a batch when polled, and while buffer memory is full or the topic's metadata
    /// is being fetched it waits (up to `max.block.ms`, or
    /// [`SendFuture::max_block`]), woken by the producer's I/O thread when memory is freed
    /// or metadata arrives. It needs no particular runtime (tokio, async-std, smol, a
    /// `block_on`). It resolves to the record's [`DeliveryFuture`], which resolves once the
    /// brokers acknowledged the record: rdkafka's `FutureProducer::send(record,
    /// queue_timeout).await` is `send_async(&record).await?.await`.
    ///
    /// ```no_run
    /// # async fn f(producer: kafka_edge_std::Producer) -> Result<(), Box<dyn std::error::Error>> {
    /// use kafka_edge_std::ProducerRecord;
    /// let record = ProducerRecord::new("events").key(b"k").value(b"v");
    /// let delivery = producer.send_async(&record).await?; // accepted (buffered)
    /// let meta = delivery.await?; // acknowledged
    /// println!("written at {}-{}@{}", meta.topic, meta.partition, meta.offset);
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    ///
    /// The record is accepted in the same poll that resolves the future, so dropping the
    /// future before it resolved means the record was **not** accepted (it will not be sent
    /// and has no outcome): a `select!` or a timeout around it loses nothing that was
    /// accepted. Once it resolved, dropping the [`DeliveryFuture`] does not cancel the
    /// record. Interceptors see `on_send` at the first poll and `on_send_error` if it
    /// resolves with an error; a future dropped unresolved reports neither.
    pub fn send_async<'p, 'r>(&'p self, record: &'r ProducerRecord<'r>) -> SendFuture<'p, 'r> {
        SendFuture {
            producer: self,
            record,
            max_block_ms: self.shared.max_block_ms,
            started: None,
            waiter: None,
            memory_wait_since: None,
            done: false,
        }
    }

    /// Sends `record` if the producer can take it at once, else returns at once:
    /// [`SendError::BufferFull`] while buffer memory is full, and
    /// [`SendError::MetadataNotReady`] while the topic's partitions are being fetched (the
    /// fetch has started: retry shortly). Never blocks; for shedding load (an HTTP 503)
    /// where waiting is worse than refusing.
    pub fn try_send(&self, record: &ProducerRecord<'_>) -> Result<DeliveryFuture, SendError> {
        let future = self.intercepted(record, |p| {
            let prepared = p.prepare(record)?;
            let mut completion = Some(Completion::<NoCallback>::Future);
            let sh = &*p.shared;
            let mut st = sh.lock();
            p.attempt(&mut st, record, &prepared, &mut completion)
        })?;
        future.ok_or(SendError::IoThreadGone)
    }

    /// Sends `record` and calls `callback` with its outcome on the I/O thread (Java's
    /// `send(record, callback)`), blocking as [`send`](Self::send) does. The callback must
    /// be quick; it may send more records but must not call [`flush`](Self::flush) or block
    /// on a future. When `send_with_callback` returns an error, the callback is dropped
    /// without being called.
    pub fn send_with_callback<F>(
        &self,
        record: &ProducerRecord<'_>,
        callback: F,
    ) -> Result<(), SendError>
    where
        F: FnOnce(DeliveryResult) + Send + 'static,
    {
        self.send_completion(record, Completion::Callback(callback))
            .map(drop)
    }

    fn send_completion<F>(
        &self,
        record: &ProducerRecord<'_>,
        completion: Completion<F>,
    ) -> Result<Option<DeliveryFuture>, SendError>
    where
        F: FnOnce(DeliveryResult) + Send + 'static,
    {
        self.intercepted(record, |p| p.send_blocking(record, completion))
    }

    /// Runs a send between the interceptors' `on_send` and, when it fails, `on_send_error`.
    fn intercepted<T>(
        &self,
        record: &ProducerRecord<'_>,
        send: impl FnOnce(&Self) -> Result<T, SendError>,
    ) -> Result<T, SendError> {
        for i in &self.shared.interceptors {
            i.on_send(record);
        }
        let result = send(self);
        if let Err(e) = &result {
            for i in &self.shared.interceptors {
                i.on_send_error(record, e);
            }
        }
        result
    }

    /// Checks what needs no lock: the core's view of the record (stamped under the lock,
    /// from the same clock read as the core's time).
    pub(crate) fn prepare<'r>(
        &self,
        record: &'r ProducerRecord<'_>,
    ) -> Result<CoreRecord<'r>, SendError> {
        let max = self.shared.max_request_size;
        let size = record.min_encoded_size();
        if size > max {
            return Err(SendError::RecordTooLarge { size, max });
        }
        Ok(CoreRecord {
            topic: record.topic,
            partition: record.partition,
            key: record.key,
            value: record.value,
            headers: &record.headers,
            timestamp: record.timestamp.unwrap_or(0),
        })
    }

    /// One try of the core's `send`, under the lock. `Ok` takes the completion out of
    /// `completion` (and gives the future of [`Completion::Future`]); `BufferFull` and
    /// `MetadataNotReady` mean wait (or give up), any other error is final.
    pub(crate) fn attempt<F>(
        &self,
        st: &mut State,
        record: &ProducerRecord<'_>,
        prepared: &CoreRecord<'_>,
        completion: &mut Option<Completion<F>>,
    ) -> Result<Option<DeliveryFuture>, SendError>
    where
        F: FnOnce(DeliveryResult) + Send + 'static,
    {
        let sh = &*self.shared;
        if st.closing {
            return Err(SendError::Closed);
        }
        if st.io_gone {
            return Err(SendError::IoThreadGone);
        }
        if st.completion_bytes >= COMPLETION_MEMORY {
            // Callbacks hold their share of memory: wait for outcomes as for the pool, and
            // have the core send what it holds at once, as when the pool is full (a long
            // `linger.ms` would otherwise hold back the outcomes that free this memory).
            let before = st.progress();
            st.core.handle_memory_exhausted(sh.now_ms());
            st.wake_if_needed(before, &sh.waker);
            return Err(SendError::BufferFull);
        }
        let (now_ms, wall_ms) = sh.now();
        let stamped;
        let prepared = if record.timestamp.is_none() {
            stamped = CoreRecord {
                timestamp: wall_ms,
                ..*prepared
            };
            &stamped
        } else {
            prepared
        };
        let before = st.progress();
        let result = st.try_send(now_ms, prepared);
        st.wake_if_needed(before, &sh.waker);
        match result {
            Ok(ticket) => Ok(completion.take().and_then(|c| {
                let capacity = sh.slot_size / (record.min_encoded_size() + 8).max(1);
                let intercepted = !sh.interceptors.is_empty();
                st.register(ticket, prepared.timestamp, c, capacity, intercepted)
            })),
            Err(CoreSendError::Authentication(kind)) => {
                let message = st
                    .core
                    .authentication_failure()
                    .map_or("", |f| f.message.as_str());
                Err(SendError::Authentication(AuthenticationError {
                    kind,
                    message: message.into(),
                }))
            }
            Err(e) => Err(SendError::from_core(e, record.topic)),
        }
    }

    /// The error of a wait that ran out: for memory or for metadata.
    pub(crate) fn timed_out(
        st: &State,
        waited_for: &SendError,
        topic: &str,
        max_block_ms: u64,
    ) -> SendError {
        match waited_for {
            SendError::BufferFull => SendError::BufferTimeout { max_block_ms },
            _ => SendError::MetadataTimeout {
                topic: topic.to_string(),
                max_block_ms,
                cause: st.last_connection_error.clone(),
            },
        }
    }

    fn send_blocking<F>(
        &self,
        record: &ProducerRecord<'_>,
        completion: Completion<F>,
    ) -> Result<Option<DeliveryFuture>, SendError>
    where
        F: FnOnce(DeliveryResult) + Send + 'static,
    {
        let sh = &*self.shared;
        let prepared = self.prepare(record)?;
        let mut completion = Some(completion);
        // Set on the first wait only: the common path reads the clock once (see
        // `Shared::now`).
        let mut deadline: Option<Instant> = None;
        let mut st = sh.lock();
        loop {
            let waited_for = match self.attempt(&mut st, record, &prepared, &mut completion) {
                Ok(future) => return Ok(future),
                Err(e @ (SendError::BufferFull | SendError::MetadataNotReady { .. })) => e,
                Err(e) => return Err(e),
            };
            let now = Instant::now();
            let deadline =
                *deadline.get_or_insert_with(|| now + Duration::from_millis(sh.max_block_ms));
            let left = match deadline.checked_duration_since(now) {
                Some(left) if !left.is_zero() => left,
                _ => {
                    return Err(Self::timed_out(
                        &st,
                        &waited_for,
                        record.topic,
                        sh.max_block_ms,
                    ));
                }
            };
            if sh.on_io_thread() {
                // A callback cannot wait for the I/O thread: it is the I/O thread.
                return Err(Self::timed_out(&st, &waited_for, record.topic, 0));
            }
            st.waiters += 1;
            let waited = Instant::now();
            st = sh
                .progress
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            st.waiters -= 1;
            if matches!(waited_for, SendError::BufferFull) {
                st.metrics.add_buffer_wait(waited.elapsed());
            }
        }
    }

    /// Makes every record sent so far ready at once (ignoring `linger.ms`) and blocks until
    /// each has its outcome, callbacks included (Java's `flush`). Records other threads
    /// send meanwhile are not waited for. Does nothing when called from a callback.
    pub fn flush(&self) {
        let sh = &*self.shared;
        if sh.on_io_thread() {
            warn!(
                "[Producer clientId={}] flush() from a callback would deadlock; ignored",
                sh.client_id
            );
            return;
        }
        let mut st = sh.lock();
        if st.io_gone {
            return;
        }
        let before = st.progress();
        st.core.flush(sh.now_ms());
        st.wake_if_needed(before, &sh.waker);
        st.wake(&sh.waker);
        let mut pending: Vec<(usize, u32)> = st
            .batches
            .iter()
            .enumerate()
            .filter(|(_, b)| b.live)
            .map(|(i, b)| (i, b.generation))
            .collect();
        loop {
            pending.retain(|&(i, g)| {
                st.batches
                    .get(i)
                    .is_some_and(|b| b.live && b.generation == g)
            });
            if pending.is_empty() || st.io_gone {
                return;
            }
            st.waiters += 1;
            st = sh.progress.wait(st).unwrap_or_else(|p| p.into_inner());
            st.waiters -= 1;
        }
    }

    /// Closes the producer (Java's `close(timeout)`): new sends fail at once with
    /// [`SendError::Closed`]; what is pending is delivered until `timeout`, then fails with
    /// the core's `Closed` error; the I/O thread ends and is joined. Every accepted record
    /// has its outcome when `close` returns. From a callback, `close` only starts closing
    /// (with no grace time) and returns.
    pub fn close(&self, timeout: Duration) {
        close(&self.shared, &self.owner.io_thread, timeout);
    }

    /// Bytes of buffer memory in use (batches not yet reported).
    pub fn buffer_used_bytes(&self) -> usize {
        self.shared.lock().core.buffer_used_bytes()
    }

    /// Java's producer metrics now, over the current window (see [`Metrics`]).
    pub fn metrics(&self) -> Metrics {
        let st = self.shared.lock();
        st.metrics.snapshot(self.shared.now_ms(), &st.core)
    }

    /// Replaces the OAUTHBEARER token (`sasl.mechanism=OAUTHBEARER`) for the authentications
    /// and re-authentications from now on: call it when the application refreshes its token,
    /// before the old one expires (Java's login refresh thread does so at 80% of the token's
    /// lifetime, `sasl.login.refresh.window.factor`).
    pub fn set_oauth_token(&self, token: &str) {
        // The std producer's request limit is 64 MiB: any token fits.
        let _ = self.shared.lock().core.set_sasl_token(token);
    }
}

/// [`Producer::close`], for the handle and for the last clone's drop.
fn close(sh: &Shared, io_thread: &Mutex<Option<JoinHandle<()>>>, timeout: Duration) {
    let on_io = sh.on_io_thread();
    let timeout = if on_io { Duration::ZERO } else { timeout };
    let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
    let wakers = {
        let mut st = sh.lock();
        let now = sh.now_ms();
        let deadline = now.saturating_add(timeout_ms);
        if !st.io_gone && (!st.closing || deadline < st.close_deadline_ms) {
            debug!(
                "[Producer clientId={}] closing with timeout {timeout_ms} ms",
                sh.client_id
            );
            st.core.close(now, timeout_ms);
            st.close_deadline_ms = deadline;
        }
        st.closing = true;
        st.wake(&sh.waker);
        sh.progress.notify_all();
        st.send_waiters.take_all()
    };
    // Async sends waiting for memory now fail with `Closed`.
    wakers.into_iter().for_each(Waker::wake);
    if on_io {
        warn!(
            "[Producer clientId={}] close() from a callback: closing without waiting",
            sh.client_id
        );
        return;
    }
    let mut handle = io_thread.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(h) = handle.take()
        && h.join().is_err()
    {
        error!(
            "[Producer clientId={}] the I/O thread panicked",
            sh.client_id
        );
    }
}

/// Builds the core: the pool is `buffer.memory` zeroed bytes (from `calloc`: pages are
/// committed as slots are first used), every other table starts empty and grows with use.
/// Java's `ClientUtils.parseAndValidateAddresses`: see [`Producer`]'s "Bootstrap servers".
fn resolve_bootstrap(
    config: &ProducerConfig,
    resolver: Option<&Resolver>,
) -> Result<(), BuildError> {
    let canonical =
        config.client_dns_lookup == ClientDnsLookup::ResolveCanonicalBootstrapServersOnly;
    let mut unresolved = Vec::new();
    let mut resolved = 0;
    for server in &config.bootstrap_servers {
        let (host, port) = (server.host.as_str(), server.port);
        let addresses = match resolver {
            Some(resolve) => resolve(host, port),
            None => std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(Iterator::collect),
        };
        match addresses {
            Ok(a) if !a.is_empty() => resolved += 1,
            result => {
                let url = server.to_string();
                if canonical {
                    let source = result
                        .err()
                        .unwrap_or_else(|| std::io::Error::other("no address"));
                    return Err(BuildError::UnknownBootstrapHost { url, source });
                }
                warn!(
                    "Couldn't resolve server {url} from bootstrap.servers as DNS resolution \
                     failed for {host}"
                );
                unresolved.push(url);
            }
        }
    }
    if resolved == 0 {
        return Err(BuildError::NoResolvableBootstrap { urls: unresolved });
    }
    Ok(())
}

fn build_core(config: ProducerConfig) -> Result<CoreProducer, BuildError> {
    let slots = config.buffer_memory / config.slot_size();
    let pool_len = slots.saturating_mul(config.slot_size());
    let seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    CoreProducer::with_compressor(config, vec![0u8; pool_len], LIMITS, seed, Codecs::default())
        .map_err(|source| BuildError::Config {
            key: None,
            value: None,
            source,
        })
}

mod transaction;
