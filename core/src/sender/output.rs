//! What the sender hands out: [`Event`]s (connections to open and close, batch outcomes),
//! [`Transmit`]s (the bytes of a request, borrowed), the [`ProduceError`] of a failed batch,
//! and the [`ProducerMetrics`] counters.

use core::fmt;

use crate::accumulator::{BatchEntry, BatchId, PartitionQueue, RecordAccumulator, TicketRange};
use crate::pool::Slot;
use crate::protocol::ErrorCode;
use crate::storage::Table;
use crate::topic::TopicId;

use super::connection::{Broker, ConnId, Piece};

/// Why a batch failed. Every accepted record gets either `Delivered` or one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProduceError {
    /// The broker answered an error that is not retriable for this batch (or retries ran
    /// out on a retriable one): for example `MESSAGE_TOO_LARGE` for a record too large on
    /// its own (a batch of several records is split and resent instead), `INVALID_RECORD`,
    /// `TOPIC_AUTHORIZATION_FAILED`.
    Broker {
        /// The broker's error code.
        code: ErrorCode,
    },
    /// The connection failed while the batch was in flight and `retries` ran out.
    Network,
    /// `delivery.timeout.ms` passed since the batch was created (Java's `TimeoutException`).
    DeliveryTimeout,
    /// The producer was closed and its close timeout passed before the batch was delivered.
    Closed,
    /// The producer is in a fatal state (for example cluster authorization failed, or no
    /// common API version): nothing more can be sent.
    Fatal(ErrorCode),
    /// Authentication with the brokers failed (SASL or TLS); the details are in
    /// [`Producer::authentication_failure`](crate::Producer::authentication_failure).
    Authentication(crate::security::AuthFailureKind),
    /// The transaction was aborted before the batch was sent (Java's
    /// `TransactionAbortedException`).
    TransactionAborted,
}

impl fmt::Display for ProduceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Broker { code } => write!(f, "{code}"),
            Self::Network => f.write_str("the connection to the broker failed and retries ran out"),
            Self::DeliveryTimeout => f.write_str(
                "expiring record(s): delivery.timeout.ms has passed since batch creation",
            ),
            Self::Closed => f.write_str("producer closed forcefully before delivery"),
            Self::Fatal(code) => write!(f, "the producer is in a fatal state: {code}"),
            Self::Authentication(kind) => write!(f, "{kind}"),
            Self::TransactionAborted => f.write_str("Failing batch since transaction was aborted"),
        }
    }
}

impl core::error::Error for ProduceError {}

/// An output of the producer, from [`Producer::poll_event`](crate::Producer::poll_event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Open a TCP (or TLS, or WebSocket) connection to `host:port` for `conn`, then call
    /// `handle_connected` (or `handle_closed` if it fails).
    Connect {
        /// The connection's handle.
        conn: ConnId,
        /// The broker: its node id, or its place in `bootstrap.servers` (a gateway may be
        /// asked for a broker by either instead of by address).
        broker: Broker,
        /// Host to connect to.
        host: &'a str,
        /// Port to connect to.
        port: u16,
    },
    /// Close `conn` (the core gave up on it: timeout, protocol error, not needed). Do not
    /// call `handle_closed` for it.
    Disconnect {
        /// The connection's handle.
        conn: ConnId,
    },
    /// The records of `tickets` were written: record `i` of the range at offset
    /// `base_offset + i` (`base_offset` is -1 with `acks=0`, or when the broker reported a
    /// duplicate without its offset).
    Delivered {
        /// The topic.
        topic: TopicId,
        /// The partition.
        partition: i32,
        /// The records.
        tickets: TicketRange,
        /// Offset of the first record, or -1.
        base_offset: i64,
        /// Broker append time with `LogAppendTime` topics, else -1.
        log_append_time_ms: i64,
    },
    /// The records of `tickets` were not delivered.
    Failed {
        /// The topic.
        topic: TopicId,
        /// The partition.
        partition: i32,
        /// The records.
        tickets: TicketRange,
        /// Why.
        error: ProduceError,
    },
}

/// Bytes to write to a connection, from
/// [`Producer::poll_transmit`](crate::Producer::poll_transmit): framing slices from the
/// connection's scratch interleaved with batch bytes borrowed from the pool (for vectored
/// writes; a transport without them copies the chunks in order). Report how many bytes
/// were written with `handle_transmitted`: all of them, or fewer when the connection's
/// buffer is full; the rest is handed out again after `handle_writable`.
///
/// A `Transmit` has no drop glue, so the borrow of the producer ends with its last use:
/// `while let Some(tx) = p.poll_transmit(now) { let n = write(tx.chunks()); let c =
/// tx.conn(); p.handle_transmitted(now, c, n); }` compiles.
#[derive(Clone, Copy)]
pub struct Transmit<'a> {
    pub(super) conn: ConnId,
    pub(super) pieces: &'a [Piece],
    pub(super) scratch: &'a [u8],
    pub(super) batches: &'a dyn BatchBytes,
    pub(super) skip: usize,
    pub(super) len: usize,
}

/// Where a transmit finds the bytes of a batch (the accumulator).
pub(crate) trait BatchBytes {
    fn bytes(&self, id: BatchId) -> &[u8];
}

impl fmt::Debug for Transmit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transmit")
            .field("conn", &self.conn)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl<'a> Transmit<'a> {
    /// The connection to write to.
    pub const fn conn(&self) -> ConnId {
        self.conn
    }

    /// Bytes to write, all chunks together.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether there is nothing to write (never the case for a transmit handed out).
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, in order (one chunk per framing slice or batch; a request of `n`
    /// batches has at most `2n + 1` chunks).
    pub fn chunks(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let (scratch, batches) = (self.scratch, self.batches);
        let mut skip = self.skip;
        self.pieces.iter().filter_map(move |piece| {
            let bytes = match *piece {
                Piece::Scratch { start, end } => scratch
                    .get(start as usize..end as usize)
                    .unwrap_or_default(),
                Piece::Batch(id) => batches.bytes(id),
            };
            if skip >= bytes.len() {
                skip -= bytes.len();
                return None;
            }
            let rest = bytes.get(skip..).unwrap_or_default();
            skip = 0;
            Some(rest)
        })
    }

    /// Copies the bytes into `out` from the start; returns how many were copied (for
    /// transports without vectored writes).
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        let mut at = 0;
        for chunk in self.chunks() {
            let n = chunk.len().min(out.len().saturating_sub(at));
            if let (Some(dst), Some(src)) = (out.get_mut(at..at + n), chunk.get(..n)) {
                dst.copy_from_slice(src);
            }
            at += n;
            if n < chunk.len() {
                break;
            }
        }
        at
    }
}

/// Counters, for metrics and tests: cumulative totals and sums, and maxima since
/// [`Producer::reset_metric_maxima`](crate::Producer::reset_metric_maxima). Rates and
/// averages over a time window are differences of two readings (the transport keeps the
/// clock). The fields for Java's producer metrics (`records_sent`, latencies, batch sizes,
/// compression) exist with the feature `metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerMetrics {
    /// Requests written (all kinds).
    pub requests_sent: u64,
    /// Responses received.
    pub responses_received: u64,
    /// Produce requests written.
    pub produce_requests: u64,
    /// Batches put in Produce requests (retries included).
    pub batches_sent: u64,
    /// Batches re-enqueued for a retry.
    pub batches_retried: u64,
    /// Batches split after `MESSAGE_TOO_LARGE` (Java's `batch-split-rate`).
    pub batches_split: u64,
    /// Batches delivered.
    pub batches_delivered: u64,
    /// Batches failed.
    pub batches_failed: u64,
    /// Metadata responses applied.
    pub metadata_updates: u64,
    /// Partition leaders taken from Produce responses' leader hints (KIP-951) instead of
    /// waiting for a metadata update.
    pub leader_hints_applied: u64,
    /// Connections asked for (`Event::Connect`).
    pub connections_opened: u64,
    /// Connections lost or closed.
    pub disconnects: u64,
    /// Producer ids or epochs obtained (InitProducerId successes, and under transaction
    /// version 2 every transaction's end, which bumps the epoch).
    pub producer_id_changes: u64,
    /// AddPartitionsToTxn requests written (transaction version 1 only: under version 2
    /// Produce adds the partitions).
    pub add_partitions_requests: u64,
    /// Bytes reported written by the transport.
    pub bytes_sent: u64,
    /// Topics dropped after `metadata.max.idle.ms` without use.
    pub topics_evicted: u64,
    /// SASL exchanges completed (first authentications and re-authentications, KIP-368).
    pub sasl_authentications: u64,
    /// Most batches of one partition in flight at once so far: up to
    /// `max.in.flight.requests.per.connection` with idempotence, as Java sends them.
    pub partition_batches_in_flight_max: u64,
    /// Records put in Produce requests, retries included (Java's `record-send-total`;
    /// over `produce_requests` it is `records-per-request-avg`).
    #[cfg(feature = "metrics")]
    pub records_sent: u64,
    /// Records re-enqueued for a retry (Java's `record-retry-total`).
    #[cfg(feature = "metrics")]
    pub records_retried: u64,
    /// Records whose batch failed (Java's `record-error-total`).
    #[cfg(feature = "metrics")]
    pub records_failed: u64,
    /// Sum of the bytes of the batches put in Produce requests, retries included (over
    /// `batches_sent`, Java's `batch-size-avg`).
    #[cfg(feature = "metrics")]
    pub batch_bytes_sum: u64,
    /// Largest batch put in a Produce request since the maxima were last reset
    /// ([`Producer::reset_metric_maxima`](crate::Producer::reset_metric_maxima)), in bytes
    /// (Java's `batch-size-max` over its window).
    #[cfg(feature = "metrics")]
    pub batch_bytes_max: u64,
    /// Sum over the batches sent of compressed size over uncompressed size, in millionths
    /// (1,000,000 for an uncompressed batch; over `batches_sent`, Java's
    /// `compression-rate-avg`).
    #[cfg(feature = "metrics")]
    pub compression_ratio_ppm_sum: u64,
    /// Produce responses timed: from the request's creation (queued for its connection) to
    /// its response's arrival (Java's `request-time` sensor).
    #[cfg(feature = "metrics")]
    pub request_latency_count: u64,
    /// Sum of those latencies, in milliseconds (over `request_latency_count`, Java's
    /// `request-latency-avg`).
    #[cfg(feature = "metrics")]
    pub request_latency_sum_ms: u64,
    /// Longest of those latencies since the maxima were last reset, in milliseconds
    /// (Java's `request-latency-max` over its window).
    #[cfg(feature = "metrics")]
    pub request_latency_max_ms: u64,
    /// Produce responses whose `throttle_time_ms` was counted (every one).
    #[cfg(feature = "metrics")]
    pub produce_throttle_count: u64,
    /// Sum of the brokers' `throttle_time_ms` in Produce responses (a quota; over
    /// `produce_throttle_count`, Java's `produce-throttle-time-avg`).
    #[cfg(feature = "metrics")]
    pub produce_throttle_sum_ms: u64,
    /// Longest `throttle_time_ms` since the maxima were last reset (Java's
    /// `produce-throttle-time-max` over its window).
    #[cfg(feature = "metrics")]
    pub produce_throttle_max_ms: u64,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, P, B, Q> BatchBytes for RecordAccumulator<S, P, B, Q>
where
    P: Table<Slot>,
    B: Table<BatchEntry>,
    Q: Table<PartitionQueue>,
{
    fn bytes(&self, id: BatchId) -> &[u8] {
        self.batch_bytes(id).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn errors_display() {
        assert_eq!(
            ProduceError::Broker {
                code: ErrorCode::MESSAGE_TOO_LARGE
            }
            .to_string(),
            ErrorCode::MESSAGE_TOO_LARGE.to_string()
        );
        assert!(
            ProduceError::DeliveryTimeout
                .to_string()
                .contains("delivery.timeout.ms")
        );
    }
}
