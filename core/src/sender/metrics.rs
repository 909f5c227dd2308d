//! Counting for Java's producer metrics (feature `metrics`): records, bytes, batch sizes,
//! compression, retries, errors and request latency, globally and per topic (in the topic
//! table). Each hook compiles to nothing without the feature, so a firmware build that
//! leaves metrics out pays neither the code nor the counters.
//!
//! Java records these in `Sender.SenderMetrics`: `updateProduceRequestMetrics` per batch of
//! each Produce request built, `recordRetries` when a batch is re-enqueued, `recordErrors`
//! when one fails, `recordLatency` for each Produce response.

#[cfg(feature = "metrics")]
use super::Piece;
use super::Sender;
#[cfg(feature = "metrics")]
use crate::accumulator::BatchId;
use crate::record::Compressor;
use crate::storage::Storage;
#[cfg(feature = "metrics")]
use crate::topic::TopicId;

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage, C: Compressor> Sender<S, St, C> {
    /// Requests written or being written and not yet answered, on every connection
    /// (Java's `requests-in-flight`).
    pub(crate) fn requests_in_flight(&self) -> usize {
        self.conns.iter().map(|c| c.in_flight.len()).sum()
    }

    /// Bytes of the pool not held by a batch (Java's `buffer-available-bytes`).
    pub(crate) const fn buffer_available_bytes(&self) -> usize {
        self.acc.pool().free_bytes()
    }

    /// Starts a new window for the maxima of [`super::ProducerMetrics`].
    pub(crate) fn reset_metric_maxima(&mut self) {
        #[cfg(feature = "metrics")]
        {
            self.metrics.batch_bytes_max = 0;
            self.metrics.request_latency_max_ms = 0;
            self.metrics.produce_throttle_max_ms = 0;
        }
    }

    /// Counts the batches of a Produce request just built (its `pieces`): records, bytes,
    /// compression, globally and per topic.
    #[cfg(feature = "metrics")]
    pub(super) fn count_produce_request(&mut self, pieces: &[Piece]) {
        for piece in pieces {
            let Piece::Batch(id) = *piece else { continue };
            let Ok(b) = self.acc.batch(id) else { continue };
            let topic = b.topic_partition().topic;
            let records = u64::from(b.record_count());
            let bytes = b.size_in_bytes() as u64;
            let ppm = u64::from(b.compression_ratio_ppm());
            let m = &mut self.metrics;
            m.records_sent = m.records_sent.saturating_add(records);
            m.batch_bytes_sum = m.batch_bytes_sum.saturating_add(bytes);
            m.batch_bytes_max = m.batch_bytes_max.max(bytes);
            m.compression_ratio_ppm_sum = m.compression_ratio_ppm_sum.saturating_add(ppm);
            if let Some(t) = self.metadata.topic_metrics_mut(topic) {
                t.records_sent = t.records_sent.saturating_add(records);
                t.bytes_sent = t.bytes_sent.saturating_add(bytes);
                t.batches_sent = t.batches_sent.saturating_add(1);
                t.compression_ratio_ppm_sum = t.compression_ratio_ppm_sum.saturating_add(ppm);
            }
        }
    }

    #[cfg(not(feature = "metrics"))]
    #[inline(always)]
    pub(super) fn count_produce_request(&mut self, _pieces: &[super::Piece]) {}

    /// Counts the records of batch `id`, re-enqueued for a retry.
    #[cfg(feature = "metrics")]
    pub(super) fn count_retry(&mut self, id: BatchId) {
        let Ok(b) = self.acc.batch(id) else { return };
        let (topic, records) = (b.topic_partition().topic, u64::from(b.record_count()));
        self.metrics.records_retried = self.metrics.records_retried.saturating_add(records);
        if let Some(t) = self.metadata.topic_metrics_mut(topic) {
            t.records_retried = t.records_retried.saturating_add(records);
        }
    }

    #[cfg(not(feature = "metrics"))]
    #[inline(always)]
    pub(super) fn count_retry(&mut self, _id: crate::accumulator::BatchId) {}

    /// Counts `records` of `topic` whose batch failed.
    #[cfg(feature = "metrics")]
    pub(super) fn count_failure(&mut self, topic: TopicId, records: u32) {
        let records = u64::from(records);
        self.metrics.records_failed = self.metrics.records_failed.saturating_add(records);
        if let Some(t) = self.metadata.topic_metrics_mut(topic) {
            t.records_failed = t.records_failed.saturating_add(records);
        }
    }

    #[cfg(not(feature = "metrics"))]
    #[inline(always)]
    pub(super) fn count_failure(&mut self, _topic: crate::topic::TopicId, _records: u32) {}

    /// Counts the latency of a Produce request created at `sent_ms` and answered at
    /// `now_ms`.
    #[cfg(feature = "metrics")]
    pub(super) fn count_latency(&mut self, now_ms: u64, sent_ms: u64) {
        let ms = now_ms.saturating_sub(sent_ms);
        let m = &mut self.metrics;
        m.request_latency_count = m.request_latency_count.saturating_add(1);
        m.request_latency_sum_ms = m.request_latency_sum_ms.saturating_add(ms);
        m.request_latency_max_ms = m.request_latency_max_ms.max(ms);
    }

    #[cfg(not(feature = "metrics"))]
    #[inline(always)]
    pub(super) fn count_latency(&mut self, _now_ms: u64, _sent_ms: u64) {}

    /// Counts a Produce response's `throttle_time_ms` (Java's `produce-throttle-time`
    /// sensor records every response's, 0 included).
    #[cfg(feature = "metrics")]
    pub(super) fn count_throttle(&mut self, throttle_time_ms: i32) {
        let ms = u64::try_from(throttle_time_ms).unwrap_or(0);
        let m = &mut self.metrics;
        m.produce_throttle_count = m.produce_throttle_count.saturating_add(1);
        m.produce_throttle_sum_ms = m.produce_throttle_sum_ms.saturating_add(ms);
        m.produce_throttle_max_ms = m.produce_throttle_max_ms.max(ms);
    }

    #[cfg(not(feature = "metrics"))]
    #[inline(always)]
    pub(super) fn count_throttle(&mut self, _throttle_time_ms: i32) {}
}
