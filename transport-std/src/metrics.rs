//! Java's producer metrics: the [`Metrics`] snapshot, its sampling windows, the periodic
//! callback and the Prometheus text exporter.
//!
//! The core keeps only cumulative counters (totals, sums, maxima; see
//! [`kafka_edge_core::ProducerMetrics`]). This module turns them into Java's rates and
//! averages as Java's `Metrics` does: time is cut into samples of `metrics.sample.window.ms`
//! (default 30000), the last `metrics.num.samples` (default 2) of them, the current one
//! included, make the window; a rate is the growth of a total over the window, per second,
//! an average the growth of a sum over the growth of its count, a maximum the largest of the
//! samples' maxima. The I/O thread reads the counters at every sample boundary (it wakes for
//! it), so the window's edges are readings, not estimates.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use kafka_edge_core::{ConfigError as CoreConfigError, ProducerMetrics};

use crate::error::BuildError;
use crate::producer::CoreProducer;
use crate::properties::Properties;

/// The properties this module reads (the core's configuration does not know them).
pub(crate) const METRICS_KEYS: &[&str] = &[
    "metrics.sample.window.ms",
    "metrics.num.samples",
    "metrics.recording.level",
];

/// Java's default `metrics.sample.window.ms`.
pub const DEFAULT_SAMPLE_WINDOW_MS: u64 = 30_000;

/// Java's default `metrics.num.samples`.
pub const DEFAULT_NUM_SAMPLES: usize = 2;

/// A function the I/O thread's metrics reporter calls every `metrics.sample.window.ms`.
pub(crate) type MetricsCallback = Box<dyn Fn(&Metrics) + Send + 'static>;

/// The sampling settings: `metrics.sample.window.ms` and `metrics.num.samples`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetricsSettings {
    pub(crate) window_ms: u64,
    pub(crate) samples: usize,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            window_ms: DEFAULT_SAMPLE_WINDOW_MS,
            samples: DEFAULT_NUM_SAMPLES,
        }
    }
}

fn invalid(key: &'static str, value: &str) -> BuildError {
    BuildError::Config {
        key: Some(key.to_string()),
        value: Some(value.to_string()),
        source: CoreConfigError::InvalidValue { key },
    }
}

/// Reads `metrics.sample.window.ms` (a long, at least 0: Java's range; 0 samples every
/// millisecond), `metrics.num.samples` (an int, at least 1) and checks
/// `metrics.recording.level` (`INFO`, `DEBUG` or `TRACE`; every metric here is `INFO`).
pub(crate) fn settings(properties: &Properties) -> Result<MetricsSettings, BuildError> {
    let mut s = MetricsSettings::default();
    if let Some(v) = properties.get("metrics.sample.window.ms") {
        let key = "metrics.sample.window.ms";
        let ms: i64 = v.trim().parse().map_err(|_| invalid(key, v))?;
        s.window_ms = u64::try_from(ms).map_err(|_| invalid(key, v))?;
    }
    if let Some(v) = properties.get("metrics.num.samples") {
        let key = "metrics.num.samples";
        let n: i32 = v.trim().parse().map_err(|_| invalid(key, v))?;
        s.samples = usize::try_from(n)
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| invalid(key, v))?;
    }
    if let Some(v) = properties.get("metrics.recording.level")
        && !matches!(v.trim(), "INFO" | "DEBUG" | "TRACE")
    {
        return Err(invalid("metrics.recording.level", v));
    }
    Ok(s)
}

/// Whether a metric only grows (a Prometheus `counter`) or goes up and down (`gauge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricKind {
    /// A cumulative total since the producer started.
    Counter,
    /// A rate, an average, a maximum over the window, or a current level.
    Gauge,
}

/// One metric of a [`Metrics`] snapshot, by Java's name (see [`Metrics::values`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricValue {
    /// Java's group: `producer-metrics`, or `producer-topic-metrics` for a topic's.
    pub group: &'static str,
    /// Java's name, such as `record-send-rate`.
    pub name: &'static str,
    /// Java's description of it.
    pub description: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// The topic of a `producer-topic-metrics` value; `None` for the producer's.
    pub topic: Option<String>,
    /// The value (`NaN` for an average or maximum with nothing recorded in the window, as
    /// Java reports it).
    pub value: f64,
}

/// Counters of the producer's connections, requests and batches, cumulative since it
/// started (no Java equivalent for some; useful in tests and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Requests written (every kind).
    pub requests_sent: u64,
    /// Responses received.
    pub responses_received: u64,
    /// Produce requests written.
    pub produce_requests: u64,
    /// Batches put in Produce requests (retries included).
    pub batches_sent: u64,
    /// Batches re-enqueued for a retry.
    pub batches_retried: u64,
    /// Batches split after `MESSAGE_TOO_LARGE` (Java's `batch-split-total`).
    pub batches_split: u64,
    /// Batches delivered.
    pub batches_delivered: u64,
    /// Batches failed.
    pub batches_failed: u64,
    /// Metadata responses applied.
    pub metadata_updates: u64,
    /// Partition leaders taken from Produce responses' leader hints (KIP-951).
    pub leader_hints_applied: u64,
    /// Connections opened (Java's `connection-creation-total`).
    pub connections_opened: u64,
    /// Connections lost or closed (Java's `connection-close-total`).
    pub disconnects: u64,
    /// Producer ids or epochs obtained.
    pub producer_id_changes: u64,
    /// Bytes written to brokers (Java's `outgoing-byte-total`).
    pub bytes_sent: u64,
    /// Topics dropped after `metadata.max.idle.ms` without use.
    pub topics_evicted: u64,
    /// SASL authentications completed (re-authentications included).
    pub sasl_authentications: u64,
}

impl From<&ProducerMetrics> for Counters {
    fn from(m: &ProducerMetrics) -> Self {
        Self {
            requests_sent: m.requests_sent,
            responses_received: m.responses_received,
            produce_requests: m.produce_requests,
            batches_sent: m.batches_sent,
            batches_retried: m.batches_retried,
            batches_split: m.batches_split,
            batches_delivered: m.batches_delivered,
            batches_failed: m.batches_failed,
            metadata_updates: m.metadata_updates,
            leader_hints_applied: m.leader_hints_applied,
            connections_opened: m.connections_opened,
            disconnects: m.disconnects,
            producer_id_changes: m.producer_id_changes,
            bytes_sent: m.bytes_sent,
            topics_evicted: m.topics_evicted,
            sasl_authentications: m.sasl_authentications,
        }
    }
}

/// One topic's metrics (Java's `producer-topic-metrics` group).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TopicMetrics {
    /// The topic.
    pub topic: String,
    /// `record-send-total`: records sent to the topic, retries included.
    pub record_send_total: u64,
    /// `record-send-rate`: records sent per second over the window.
    pub record_send_rate: f64,
    /// `byte-total`: batch bytes sent to the topic, retries included.
    pub byte_total: u64,
    /// `byte-rate`: batch bytes sent per second over the window.
    pub byte_rate: f64,
    /// `compression-rate`: the average of compressed size over uncompressed size of the
    /// topic's batches sent in the window (1.0 uncompressed; `NaN` when none was sent).
    pub compression_rate: f64,
    /// `record-retry-total`: records retried.
    pub record_retry_total: u64,
    /// `record-retry-rate`: records retried per second over the window.
    pub record_retry_rate: f64,
    /// `record-error-total`: records whose batch failed.
    pub record_error_total: u64,
    /// `record-error-rate`: records failed per second over the window.
    pub record_error_rate: f64,
}

/// A snapshot of the producer's metrics, with Java's names and meanings
/// ([`Producer::metrics`](crate::Producer::metrics), and the builder's
/// [`metrics_callback`](crate::ProducerBuilder::metrics_callback) every
/// `metrics.sample.window.ms`).
///
/// Rates are per second over the window, averages and maxima over the window (see the
/// module doc on samples); totals count from the start. Records count when they are put
/// in a Produce request, as Java's do: a retried record counts again in `record-send-*`.
/// [`values`](Self::values) lists them all by Java's names, and
/// [`to_prometheus`](Self::to_prometheus) writes them in Prometheus' text format.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// The producer's `client.id` (Java's `client-id` tag).
    pub client_id: String,
    /// The span the rates are over, in milliseconds: from the start of the oldest sample
    /// kept to the reading, and at least `(metrics.num.samples - 1)` windows (as Java's
    /// `Rate` counts it).
    pub window_ms: u64,
    /// `record-send-total`: records put in Produce requests, retries included.
    pub record_send_total: u64,
    /// `record-send-rate`: records sent per second.
    pub record_send_rate: f64,
    /// `record-retry-total`: records re-enqueued after a retriable error.
    pub record_retry_total: u64,
    /// `record-retry-rate`: records retried per second.
    pub record_retry_rate: f64,
    /// `record-error-total`: records whose batch failed (broker error, timeout, close).
    pub record_error_total: u64,
    /// `record-error-rate`: records failed per second.
    pub record_error_rate: f64,
    /// `request-latency-avg`: Produce request latency in ms, from the request's creation to
    /// its response.
    pub request_latency_avg: f64,
    /// `request-latency-max`: the longest Produce request latency in ms in the window.
    pub request_latency_max: f64,
    /// `batch-size-avg`: bytes per batch (per partition per request) sent.
    pub batch_size_avg: f64,
    /// `batch-size-max`: the largest batch sent in the window, in bytes.
    pub batch_size_max: f64,
    /// `records-per-request-avg`: records per Produce request.
    pub records_per_request_avg: f64,
    /// `compression-rate-avg`: the average of compressed size over uncompressed size of the
    /// batches sent (1.0 for uncompressed batches).
    pub compression_rate_avg: f64,
    /// `buffer-total-bytes`: `buffer.memory` (rounded down to whole `batch.size` slots).
    pub buffer_total_bytes: u64,
    /// `buffer-available-bytes`: buffer memory no batch holds.
    pub buffer_available_bytes: u64,
    /// `bufferpool-wait-ratio`: the fraction of the window that `send` calls spent blocked
    /// for buffer memory (summed over threads).
    pub bufferpool_wait_ratio: f64,
    /// `bufferpool-wait-time-ns-total`: nanoseconds `send` calls spent blocked for buffer
    /// memory.
    pub bufferpool_wait_time_ns_total: u64,
    /// `outgoing-byte-total`: bytes written to brokers (every request).
    pub outgoing_byte_total: u64,
    /// `outgoing-byte-rate`: bytes written per second.
    pub outgoing_byte_rate: f64,
    /// `request-total`: requests written (every kind).
    pub request_total: u64,
    /// `request-rate`: requests written per second.
    pub request_rate: f64,
    /// `requests-in-flight`: requests written or being written and not yet answered.
    pub requests_in_flight: u64,
    /// `batch-split-total`: batches split after `MESSAGE_TOO_LARGE`.
    pub batch_split_total: u64,
    /// `batch-split-rate`: batch splits per second.
    pub batch_split_rate: f64,
    /// Per topic, sorted by topic name.
    pub topics: Vec<TopicMetrics>,
    /// The underlying connection, request and batch counters.
    pub counters: Counters,
}

const PRODUCER: &str = "producer-metrics";
const TOPIC: &str = "producer-topic-metrics";

impl Metrics {
    /// Every metric by Java's group and name, with its description: the producer's, then
    /// each topic's.
    pub fn values(&self) -> Vec<MetricValue> {
        use MetricKind::{Counter, Gauge};
        let p = |name, description, kind, value| MetricValue {
            group: PRODUCER,
            name,
            description,
            kind,
            topic: None,
            value,
        };
        let mut v = vec![
            p(
                "record-send-total",
                "The total number of records sent.",
                Counter,
                self.record_send_total as f64,
            ),
            p(
                "record-send-rate",
                "The average number of records sent per second.",
                Gauge,
                self.record_send_rate,
            ),
            p(
                "record-retry-total",
                "The total number of retried record sends",
                Counter,
                self.record_retry_total as f64,
            ),
            p(
                "record-retry-rate",
                "The average per-second number of retried record sends",
                Gauge,
                self.record_retry_rate,
            ),
            p(
                "record-error-total",
                "The total number of record sends that resulted in errors",
                Counter,
                self.record_error_total as f64,
            ),
            p(
                "record-error-rate",
                "The average per-second number of record sends that resulted in errors",
                Gauge,
                self.record_error_rate,
            ),
            p(
                "request-latency-avg",
                "The average request latency in ms",
                Gauge,
                self.request_latency_avg,
            ),
            p(
                "request-latency-max",
                "The maximum request latency in ms",
                Gauge,
                self.request_latency_max,
            ),
            p(
                "batch-size-avg",
                "The average number of bytes sent per partition per-request.",
                Gauge,
                self.batch_size_avg,
            ),
            p(
                "batch-size-max",
                "The max number of bytes sent per partition per-request.",
                Gauge,
                self.batch_size_max,
            ),
            p(
                "records-per-request-avg",
                "The average number of records per request.",
                Gauge,
                self.records_per_request_avg,
            ),
            p(
                "compression-rate-avg",
                "The average compression rate of record batches, defined as the average ratio of the compressed batch size over the uncompressed size.",
                Gauge,
                self.compression_rate_avg,
            ),
            p(
                "buffer-total-bytes",
                "The maximum amount of buffer memory the client can use (whether or not it is currently used).",
                Gauge,
                self.buffer_total_bytes as f64,
            ),
            p(
                "buffer-available-bytes",
                "The total amount of buffer memory that is not being used (either unallocated or in the free list).",
                Gauge,
                self.buffer_available_bytes as f64,
            ),
            p(
                "bufferpool-wait-ratio",
                "The fraction of time an appender waits for space allocation.",
                Gauge,
                self.bufferpool_wait_ratio,
            ),
            p(
                "bufferpool-wait-time-ns-total",
                "The total time in nanoseconds an appender waits for space allocation.",
                Counter,
                self.bufferpool_wait_time_ns_total as f64,
            ),
            p(
                "outgoing-byte-total",
                "The total number of outgoing bytes sent to all servers",
                Counter,
                self.outgoing_byte_total as f64,
            ),
            p(
                "outgoing-byte-rate",
                "The number of outgoing bytes sent to all servers per second",
                Gauge,
                self.outgoing_byte_rate,
            ),
            p(
                "request-total",
                "The total number of requests sent",
                Counter,
                self.request_total as f64,
            ),
            p(
                "request-rate",
                "The number of requests sent per second",
                Gauge,
                self.request_rate,
            ),
            p(
                "requests-in-flight",
                "The current number of in-flight requests awaiting a response.",
                Gauge,
                self.requests_in_flight as f64,
            ),
            p(
                "batch-split-total",
                "The total number of batch splits",
                Counter,
                self.batch_split_total as f64,
            ),
            p(
                "batch-split-rate",
                "The average number of batch splits per second",
                Gauge,
                self.batch_split_rate,
            ),
        ];
        for t in &self.topics {
            let q = |name, description, kind, value| MetricValue {
                group: TOPIC,
                name,
                description,
                kind,
                topic: Some(t.topic.clone()),
                value,
            };
            v.extend([
                q("record-send-total", "The total number of records sent for a topic.", Counter, t.record_send_total as f64),
                q("record-send-rate", "The average number of records sent per second for a topic.", Gauge, t.record_send_rate),
                q("byte-total", "The total number of bytes sent for a topic.", Counter, t.byte_total as f64),
                q("byte-rate", "The average number of bytes sent per second for a topic.", Gauge, t.byte_rate),
                q("compression-rate", "The average compression rate of record batches for a topic, defined as the average ratio of the compressed batch size over the uncompressed size.", Gauge, t.compression_rate),
                q("record-retry-total", "The total number of retried record sends for a topic", Counter, t.record_retry_total as f64),
                q("record-retry-rate", "The average per-second number of retried record sends for a topic", Gauge, t.record_retry_rate),
                q("record-error-total", "The total number of record sends that resulted in errors for a topic", Counter, t.record_error_total as f64),
                q("record-error-rate", "The average per-second number of record sends that resulted in errors for a topic", Gauge, t.record_error_rate),
            ]);
        }
        v
    }

    /// The metrics in Prometheus' text exposition format (version 0.0.4): for each metric a
    /// `# HELP` and a `# TYPE` line, then its samples, named `<prefix>_<name>` for the
    /// producer's and `<prefix>_topic_<name>` for a topic's, Java's dashes turned into
    /// underscores (`kafka_producer_record_send_rate`), labelled `client_id`, `topic` for a
    /// topic's, and `labels`. Label values are escaped; `NaN` is written `NaN`.
    ///
    /// ```
    /// # fn show(m: &kafka_edge_std::Metrics) {
    /// let text = m.to_prometheus("kafka_producer", &[("instance", "edge-1")]);
    /// assert!(text.contains("# TYPE kafka_producer_record_send_total counter"));
    /// # }
    /// ```
    pub fn to_prometheus(&self, prefix: &str, labels: &[(&str, &str)]) -> String {
        let mut out = String::new();
        let mut common = format!("client_id=\"{}\"", escape_label(&self.client_id));
        for (k, v) in labels {
            let _ = write!(common, ",{k}=\"{}\"", escape_label(v));
        }
        let values = self.values();
        // Group the samples of one name together (Prometheus wants one family per block).
        let mut names: Vec<String> = Vec::new();
        let mut families: HashMap<String, (&MetricValue, Vec<&MetricValue>)> = HashMap::new();
        for v in &values {
            let name = prometheus_name(prefix, v);
            families
                .entry(name.clone())
                .or_insert_with(|| {
                    names.push(name);
                    (v, Vec::new())
                })
                .1
                .push(v);
        }
        for name in &names {
            let Some((first, samples)) = families.get(name) else {
                continue;
            };
            let kind = match first.kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {}", escape_help(first.description));
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for s in samples {
                let value = prometheus_value(s.value);
                match &s.topic {
                    Some(topic) => {
                        let topic = escape_label(topic);
                        let _ = writeln!(out, "{name}{{{common},topic=\"{topic}\"}} {value}");
                    }
                    None => {
                        let _ = writeln!(out, "{name}{{{common}}} {value}");
                    }
                }
            }
        }
        out
    }
}

fn prometheus_name(prefix: &str, v: &MetricValue) -> String {
    let name = v.name.replace('-', "_");
    match (prefix.is_empty(), v.topic.is_some()) {
        (true, false) => name,
        (true, true) => format!("topic_{name}"),
        (false, false) => format!("{prefix}_{name}"),
        (false, true) => format!("{prefix}_topic_{name}"),
    }
}

fn prometheus_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The core's counters read at one instant.
#[derive(Debug, Clone)]
struct Reading {
    at_ms: u64,
    core: ProducerMetrics,
    buffer_wait_ns: u64,
    topics: HashMap<String, kafka_edge_core::TopicMetrics>,
}

impl Reading {
    fn take(at_ms: u64, core: &CoreProducer, buffer_wait_ns: u64) -> Self {
        Self {
            at_ms,
            core: *core.metrics(),
            buffer_wait_ns,
            topics: core
                .topic_metrics()
                .map(|(name, m)| (name.to_string(), *m))
                .collect(),
        }
    }
}

/// The maxima of one finished sample.
#[derive(Debug, Clone, Copy, Default)]
struct Maxima {
    batch_bytes: u64,
    latency_ms: u64,
}

/// The span a rate is over: from `elapsed_ms` back to the oldest sample's start, and at
/// least `samples - 1` whole windows (Java's `Rate.windowSize`).
pub(crate) fn rate_window_ms(elapsed_ms: u64, window_ms: u64, samples: usize) -> u64 {
    let window_ms = window_ms.max(1);
    let full = elapsed_ms / window_ms;
    let min_full = samples.saturating_sub(1) as u64;
    if full < min_full {
        elapsed_ms.saturating_add((min_full - full).saturating_mul(window_ms))
    } else {
        elapsed_ms
    }
}

/// `delta` per second over `window_ms`.
fn per_second(delta: u64, window_ms: u64) -> f64 {
    if window_ms == 0 {
        return 0.0;
    }
    delta as f64 * 1000.0 / window_ms as f64
}

/// `sum / count`, or `NaN` with nothing counted (Java's `Avg`).
fn average(sum: u64, count: u64) -> f64 {
    if count == 0 {
        f64::NAN
    } else {
        sum as f64 / count as f64
    }
}

/// The samples of the window and the callback's hand-off; lives under the producer's lock.
pub(crate) struct Sampler {
    settings: MetricsSettings,
    client_id: String,
    /// The reading at the start of each sample kept, oldest first; the last is the current
    /// sample's.
    starts: VecDeque<Reading>,
    /// The maxima of the finished samples kept (one fewer than `starts`).
    maxima: VecDeque<Maxima>,
    /// Nanoseconds `send` calls spent blocked for buffer memory, in total.
    buffer_wait_ns: u64,
    /// To the reporter thread that runs the callback (never blocks the I/O thread).
    reporter: Option<SyncSender<Metrics>>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("settings", &self.settings)
            .field("samples", &self.starts.len())
            .field("reporter", &self.reporter.is_some())
            .finish_non_exhaustive()
    }
}

impl Sampler {
    /// Starts the first sample at `now_ms` (the core's counters are zero then), and the
    /// reporter thread when there is a callback.
    pub(crate) fn new(
        settings: MetricsSettings,
        client_id: &str,
        now_ms: u64,
        callback: Option<MetricsCallback>,
    ) -> std::io::Result<Self> {
        let reporter = match callback {
            Some(callback) => {
                // One snapshot waits at most; a slow callback skips windows, never the I/O.
                let (tx, rx) = sync_channel::<Metrics>(1);
                std::thread::Builder::new()
                    .name(format!("kafka-producer-metrics | {client_id}"))
                    .spawn(move || {
                        for m in rx {
                            callback(&m);
                        }
                    })?;
                Some(tx)
            }
            None => None,
        };
        let mut starts = VecDeque::with_capacity(settings.samples + 1);
        starts.push_back(Reading {
            at_ms: now_ms,
            core: ProducerMetrics::default(),
            buffer_wait_ns: 0,
            topics: HashMap::new(),
        });
        Ok(Self {
            settings,
            client_id: client_id.to_string(),
            starts,
            maxima: VecDeque::with_capacity(settings.samples),
            buffer_wait_ns: 0,
            reporter,
        })
    }

    /// Adds time a `send` spent blocked for buffer memory.
    pub(crate) fn add_buffer_wait(&mut self, waited: Duration) {
        let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.buffer_wait_ns = self.buffer_wait_ns.saturating_add(ns);
    }

    /// When the current sample ends (`now_ms` scale): the I/O thread wakes for it.
    pub(crate) fn next_roll_ms(&self) -> u64 {
        let start = self.starts.back().map_or(0, |r| r.at_ms);
        start.saturating_add(self.settings.window_ms.max(1))
    }

    /// At a sample boundary (`now_ms >= next_roll_ms()`): ends the current sample, starts
    /// the next, drops the oldest beyond `metrics.num.samples`, and hands a snapshot to the
    /// callback. Called by the I/O thread under the producer's lock.
    pub(crate) fn roll_if_due(&mut self, now_ms: u64, core: &mut CoreProducer) {
        if now_ms < self.next_roll_ms() {
            return;
        }
        let m = core.metrics();
        self.maxima.push_back(Maxima {
            batch_bytes: m.batch_bytes_max,
            latency_ms: m.request_latency_max_ms,
        });
        core.reset_metric_maxima();
        self.starts
            .push_back(Reading::take(now_ms, core, self.buffer_wait_ns));
        while self.starts.len() > self.settings.samples {
            self.starts.pop_front();
            self.maxima.pop_front();
        }
        if let Some(tx) = &self.reporter {
            match tx.try_send(self.snapshot(now_ms, core)) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => self.reporter = None,
            }
        }
    }

    /// The metrics at `now_ms`.
    pub(crate) fn snapshot(&self, now_ms: u64, core: &CoreProducer) -> Metrics {
        let now = Reading::take(now_ms, core, self.buffer_wait_ns);
        let zero = Reading {
            at_ms: now_ms,
            core: ProducerMetrics::default(),
            buffer_wait_ns: 0,
            topics: HashMap::new(),
        };
        let base = self.starts.front().unwrap_or(&zero);
        let current_maxima = Maxima {
            batch_bytes: now.core.batch_bytes_max,
            latency_ms: now.core.request_latency_max_ms,
        };
        let maxima =
            self.maxima
                .iter()
                .copied()
                .chain([current_maxima])
                .fold(Maxima::default(), |a, b| Maxima {
                    batch_bytes: a.batch_bytes.max(b.batch_bytes),
                    latency_ms: a.latency_ms.max(b.latency_ms),
                });
        compute(
            &self.client_id,
            base,
            &now,
            maxima,
            self.settings,
            Levels {
                buffer_available_bytes: core.buffer_available_bytes() as u64,
                buffer_total_bytes: core.config().buffer_memory as u64,
                requests_in_flight: core.requests_in_flight() as u64,
            },
        )
    }
}

/// The levels read at the instant of a snapshot (Java's gauges).
#[derive(Debug, Clone, Copy, Default)]
struct Levels {
    buffer_available_bytes: u64,
    buffer_total_bytes: u64,
    requests_in_flight: u64,
}

/// The metrics from the window's first reading `base` to `now`.
fn compute(
    client_id: &str,
    base: &Reading,
    now: &Reading,
    maxima: Maxima,
    settings: MetricsSettings,
    levels: Levels,
) -> Metrics {
    let elapsed = now.at_ms.saturating_sub(base.at_ms);
    let window_ms = rate_window_ms(elapsed, settings.window_ms, settings.samples);
    let (a, b) = (&base.core, &now.core);
    let d = |f: fn(&ProducerMetrics) -> u64| f(b).saturating_sub(f(a));
    let rate = |f: fn(&ProducerMetrics) -> u64| per_second(d(f), window_ms);
    let latency_count = d(|m| m.request_latency_count);
    let batches = d(|m| m.batches_sent);
    let mut topics = now
        .topics
        .iter()
        .map(|(name, t)| {
            let z = kafka_edge_core::TopicMetrics::default();
            let t0 = base.topics.get(name).unwrap_or(&z);
            let batches = t.batches_sent.saturating_sub(t0.batches_sent);
            let dt = |f: fn(&kafka_edge_core::TopicMetrics) -> u64| f(t).saturating_sub(f(t0));
            TopicMetrics {
                topic: name.clone(),
                record_send_total: t.records_sent,
                record_send_rate: per_second(dt(|m| m.records_sent), window_ms),
                byte_total: t.bytes_sent,
                byte_rate: per_second(dt(|m| m.bytes_sent), window_ms),
                compression_rate: average(dt(|m| m.compression_ratio_ppm_sum), batches)
                    / 1_000_000.0,
                record_retry_total: t.records_retried,
                record_retry_rate: per_second(dt(|m| m.records_retried), window_ms),
                record_error_total: t.records_failed,
                record_error_rate: per_second(dt(|m| m.records_failed), window_ms),
            }
        })
        .collect::<Vec<_>>();
    topics.sort_by(|x, y| x.topic.cmp(&y.topic));
    Metrics {
        client_id: client_id.to_string(),
        window_ms,
        record_send_total: b.records_sent,
        record_send_rate: rate(|m| m.records_sent),
        record_retry_total: b.records_retried,
        record_retry_rate: rate(|m| m.records_retried),
        record_error_total: b.records_failed,
        record_error_rate: rate(|m| m.records_failed),
        request_latency_avg: average(d(|m| m.request_latency_sum_ms), latency_count),
        request_latency_max: if latency_count == 0 {
            f64::NAN
        } else {
            maxima.latency_ms as f64
        },
        batch_size_avg: average(d(|m| m.batch_bytes_sum), batches),
        batch_size_max: if batches == 0 {
            f64::NAN
        } else {
            maxima.batch_bytes as f64
        },
        records_per_request_avg: average(d(|m| m.records_sent), d(|m| m.produce_requests)),
        compression_rate_avg: average(d(|m| m.compression_ratio_ppm_sum), batches) / 1_000_000.0,
        buffer_total_bytes: levels.buffer_total_bytes,
        buffer_available_bytes: levels.buffer_available_bytes,
        bufferpool_wait_ratio: now.buffer_wait_ns.saturating_sub(base.buffer_wait_ns) as f64
            / (window_ms.max(1) as f64 * 1_000_000.0),
        bufferpool_wait_time_ns_total: now.buffer_wait_ns,
        outgoing_byte_total: b.bytes_sent,
        outgoing_byte_rate: rate(|m| m.bytes_sent),
        request_total: b.requests_sent,
        request_rate: rate(|m| m.requests_sent),
        requests_in_flight: levels.requests_in_flight,
        batch_split_total: b.batches_split,
        batch_split_rate: rate(|m| m.batches_split),
        topics,
        counters: Counters::from(b),
    }
}

impl crate::ProducerBuilder {
    /// Calls `callback` with the producer's [`Metrics`] every `metrics.sample.window.ms`
    /// (default 30 s), as a Java metrics reporter is. It runs on a thread of its own
    /// (`kafka-producer-metrics | <client.id>`), never on the I/O thread: when it is still
    /// busy with one snapshot at the next window, that window's snapshot is skipped.
    ///
    /// ```no_run
    /// let producer = kafka_edge_std::Producer::builder()
    ///     .set("bootstrap.servers", "localhost:9092")
    ///     .set("metrics.sample.window.ms", 10_000)
    ///     .metrics_callback(|m| println!("{}", m.to_prometheus("kafka_producer", &[])))
    ///     .build()?;
    /// # Ok::<(), kafka_edge_std::BuildError>(())
    /// ```
    pub fn metrics_callback(mut self, callback: impl Fn(&Metrics) + Send + 'static) -> Self {
        self.metrics_callback = Some(Box::new(callback));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at_ms: u64, records: u64, requests: u64, bytes: u64) -> Reading {
        let mut core = ProducerMetrics::default();
        core.records_sent = records;
        core.produce_requests = requests;
        core.batches_sent = requests;
        core.batch_bytes_sum = bytes;
        core.compression_ratio_ppm_sum = requests * 1_000_000;
        core.bytes_sent = bytes + 100 * requests;
        let mut t = kafka_edge_core::TopicMetrics::default();
        t.records_sent = records;
        t.bytes_sent = bytes;
        t.batches_sent = requests;
        t.compression_ratio_ppm_sum = requests * 500_000;
        Reading {
            at_ms,
            core,
            buffer_wait_ns: 0,
            topics: [("t".to_string(), t)].into_iter().collect(),
        }
    }

    #[test]
    fn rate_window_is_at_least_the_full_samples_as_java_counts_it() {
        // Java's `Rate.windowSize` with 30 s samples: two samples -> at least one window.
        assert_eq!(rate_window_ms(5_000, 30_000, 2), 35_000);
        assert_eq!(rate_window_ms(29_999, 30_000, 2), 59_999);
        assert_eq!(rate_window_ms(30_000, 30_000, 2), 30_000);
        assert_eq!(rate_window_ms(45_000, 30_000, 2), 45_000);
        // Three samples -> at least two windows.
        assert_eq!(rate_window_ms(10_000, 30_000, 3), 70_000);
        assert_eq!(rate_window_ms(40_000, 30_000, 3), 70_000);
        // One sample: the elapsed time alone.
        assert_eq!(rate_window_ms(1_234, 30_000, 1), 1_234);
        // A window of 0 ms counts as 1 ms (no division by zero).
        assert_eq!(rate_window_ms(7, 0, 2), 7);
    }

    #[test]
    fn rates_and_averages_are_differences_over_the_window() {
        let settings = MetricsSettings {
            window_ms: 1_000,
            samples: 2,
        };
        let base = reading(10_000, 1_000, 10, 50_000);
        let now = reading(12_000, 3_000, 30, 250_000);
        let levels = Levels {
            buffer_available_bytes: 7,
            buffer_total_bytes: 8,
            requests_in_flight: 1,
        };
        let m = compute("c", &base, &now, Maxima::default(), settings, levels);
        assert_eq!(m.window_ms, 2_000);
        assert_eq!(m.record_send_total, 3_000);
        // 2,000 records in 2 s.
        assert!((m.record_send_rate - 1_000.0).abs() < 1e-9);
        // 20 requests of 100 records, 20 batches of 10,000 bytes.
        assert!((m.records_per_request_avg - 100.0).abs() < 1e-9);
        assert!((m.batch_size_avg - 10_000.0).abs() < 1e-9);
        assert!((m.compression_rate_avg - 1.0).abs() < 1e-9);
        // 200,000 batch bytes + 2,000 framing bytes in 2 s.
        assert!((m.outgoing_byte_rate - 101_000.0).abs() < 1e-9);
        // No latency recorded: Java's Avg and Max say NaN.
        assert!(m.request_latency_avg.is_nan() && m.request_latency_max.is_nan());
        assert_eq!(
            (
                m.buffer_available_bytes,
                m.buffer_total_bytes,
                m.requests_in_flight
            ),
            (7, 8, 1)
        );
        let t = &m.topics[0];
        assert_eq!((t.topic.as_str(), t.record_send_total), ("t", 3_000));
        assert!((t.record_send_rate - 1_000.0).abs() < 1e-9);
        assert!((t.byte_rate - 100_000.0).abs() < 1e-9);
        assert!((t.compression_rate - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_fresh_window_counts_java_s_minimum_span() {
        let settings = MetricsSettings::default();
        let base = reading(0, 0, 0, 0);
        let now = reading(5_000, 350, 7, 700);
        let maxima = Maxima {
            batch_bytes: 500,
            latency_ms: 9,
        };
        let m = compute("c", &base, &now, maxima, settings, Levels::default());
        // 5 s elapsed, plus one whole 30 s window: 350 records / 35 s.
        assert_eq!(m.window_ms, 35_000);
        assert!((m.record_send_rate - 10.0).abs() < 1e-9);
        // A maximum counts only with samples in the window: batches yes, latencies none.
        assert!((m.batch_size_max - 500.0).abs() < 1e-9);
        assert!(m.request_latency_max.is_nan());
    }

    #[test]
    fn prometheus_text_names_types_and_escapes() {
        let settings = MetricsSettings::default();
        let m = compute(
            "edge \"1\"",
            &reading(0, 0, 0, 0),
            &reading(30_000, 30, 3, 300),
            Maxima::default(),
            settings,
            Levels::default(),
        );
        let text = m.to_prometheus("kafka_producer", &[("env", "a\\b")]);
        assert!(text.contains("# TYPE kafka_producer_record_send_total counter\n"));
        assert!(text.contains("# TYPE kafka_producer_record_send_rate gauge\n"));
        assert!(text.contains(
            "kafka_producer_record_send_rate{client_id=\"edge \\\"1\\\"\",env=\"a\\\\b\"} 1\n"
        ));
        assert!(text.contains(
            "kafka_producer_topic_byte_total{client_id=\"edge \\\"1\\\"\",env=\"a\\\\b\",topic=\"t\"} 300\n"
        ));
        assert!(text.contains("kafka_producer_request_latency_avg{") && text.contains("} NaN\n"));
        // One TYPE line per family.
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let families: std::collections::HashSet<String> = m
            .values()
            .iter()
            .map(|v| prometheus_name("kafka_producer", v))
            .collect();
        assert_eq!(types, families.len());
    }

    #[test]
    fn settings_take_java_s_ranges() {
        let p = |k: &str, v: &str| {
            let mut props = Properties::new();
            props.set(k, v);
            settings(&props)
        };
        assert_eq!(
            settings(&Properties::new()).unwrap(),
            MetricsSettings::default()
        );
        assert_eq!(
            p("metrics.sample.window.ms", "5000").unwrap().window_ms,
            5_000
        );
        assert_eq!(p("metrics.sample.window.ms", "0").unwrap().window_ms, 0);
        assert!(p("metrics.sample.window.ms", "-1").is_err());
        assert!(p("metrics.sample.window.ms", "soon").is_err());
        assert_eq!(p("metrics.num.samples", "3").unwrap().samples, 3);
        assert!(p("metrics.num.samples", "0").is_err());
        assert!(p("metrics.recording.level", "DEBUG").is_ok());
        assert!(p("metrics.recording.level", "LOUD").is_err());
    }
}
