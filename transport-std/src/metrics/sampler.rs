//! Java's sampling windows: the core's counters read at every sample boundary, and a
//! snapshot's rates, averages and maxima computed over the window.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use kafka_edge_core::ProducerMetrics;

use super::{Counters, Metrics, MetricsCallback, MetricsSettings, TopicMetrics};
use crate::producer::CoreProducer;

/// The core's counters read at one instant.
#[derive(Debug, Clone)]
pub(super) struct Reading {
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
pub(super) struct Maxima {
    batch_bytes: u64,
    latency_ms: u64,
    throttle_ms: u64,
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
            throttle_ms: m.produce_throttle_max_ms,
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
            throttle_ms: now.core.produce_throttle_max_ms,
        };
        let maxima =
            self.maxima
                .iter()
                .copied()
                .chain([current_maxima])
                .fold(Maxima::default(), |a, b| Maxima {
                    batch_bytes: a.batch_bytes.max(b.batch_bytes),
                    latency_ms: a.latency_ms.max(b.latency_ms),
                    throttle_ms: a.throttle_ms.max(b.throttle_ms),
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
pub(super) struct Levels {
    buffer_available_bytes: u64,
    buffer_total_bytes: u64,
    requests_in_flight: u64,
}

/// The metrics from the window's first reading `base` to `now`.
pub(super) fn compute(
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
    let throttle_count = d(|m| m.produce_throttle_count);
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
        produce_throttle_time_avg: average(d(|m| m.produce_throttle_sum_ms), throttle_count),
        produce_throttle_time_max: if throttle_count == 0 {
            f64::NAN
        } else {
            maxima.throttle_ms as f64
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

#[cfg(test)]
pub(super) use tests::reading as test_reading;

#[cfg(test)]
mod tests {
    use super::*;

    pub(in super::super) fn reading(
        at_ms: u64,
        records: u64,
        requests: u64,
        bytes: u64,
    ) -> Reading {
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
            throttle_ms: 0,
        };
        let m = compute("c", &base, &now, maxima, settings, Levels::default());
        // 5 s elapsed, plus one whole 30 s window: 350 records / 35 s.
        assert_eq!(m.window_ms, 35_000);
        assert!((m.record_send_rate - 10.0).abs() < 1e-9);
        // A maximum counts only with samples in the window: batches yes, latencies none.
        assert!((m.batch_size_max - 500.0).abs() < 1e-9);
        assert!(m.request_latency_max.is_nan());
    }
}
