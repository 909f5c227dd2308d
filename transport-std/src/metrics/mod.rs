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

use kafka_edge_core::{ConfigError as CoreConfigError, ProducerMetrics};

use crate::error::BuildError;
use crate::properties::Properties;

mod prometheus;
mod sampler;

pub(crate) use sampler::Sampler;

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
    /// Producer ids or epochs obtained (InitProducerId, and under transaction version 2
    /// every commit or abort, which bumps the epoch).
    pub producer_id_changes: u64,
    /// AddPartitionsToTxn requests sent (transaction version 1 only: under version 2 the
    /// Produce requests add the partitions).
    pub add_partitions_requests: u64,
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
            add_partitions_requests: m.add_partitions_requests,
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
    /// `produce-throttle-time-avg`: the brokers' average `throttle_time_ms` in Produce
    /// responses (a quota holds the producer back; KIP-219).
    pub produce_throttle_time_avg: f64,
    /// `produce-throttle-time-max`: the longest `throttle_time_ms` in the window.
    pub produce_throttle_time_max: f64,
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
                "produce-throttle-time-avg",
                "The average time in ms a request was throttled by a broker",
                Gauge,
                self.produce_throttle_time_avg,
            ),
            p(
                "produce-throttle-time-max",
                "The maximum time in ms a request was throttled by a broker",
                Gauge,
                self.produce_throttle_time_max,
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
