//! [`ProducerRecord`] (what to send) and [`RecordMetadata`] (where it was written).

use std::sync::Arc;

pub use kafka_edge_core::record::Header;

/// A record to send, borrowing its bytes (copied once, into the producer's buffer memory,
/// by [`Producer::send`](crate::Producer::send)).
///
/// ```
/// use kafka_edge_std::ProducerRecord;
/// let record = ProducerRecord::new("events")
///     .key(b"user-1")
///     .value(b"{\"clicked\":true}")
///     .header("trace", b"abc");
/// assert_eq!(record.partition, None); // the partitioner chooses
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord<'a> {
    /// The topic's name.
    pub topic: &'a str,
    /// An explicit partition, or `None` to let the partitioner choose (murmur2 of the key,
    /// or the uniform sticky partitioner for keyless records).
    pub partition: Option<i32>,
    /// The key; `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The headers, in order.
    pub headers: Vec<Header<'a>>,
    /// `CreateTime` in milliseconds since the Unix epoch; `None` takes the wall clock at
    /// `send`.
    pub timestamp: Option<i64>,
}

impl<'a> ProducerRecord<'a> {
    /// A record for `topic` with no key, value, headers or timestamp yet.
    pub fn new(topic: &'a str) -> Self {
        Self {
            topic,
            partition: None,
            key: None,
            value: None,
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: &'a [u8]) -> Self {
        self.value = Some(value);
        self
    }

    /// Sends to this partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: &'a str, value: &'a [u8]) -> Self {
        self.headers.push(Header {
            key,
            value: Some(value),
        });
        self
    }

    /// Adds a header with a null value.
    pub fn null_header(mut self, key: &'a str) -> Self {
        self.headers.push(Header { key, value: None });
        self
    }

    /// Sets the `CreateTime` timestamp (ms since the Unix epoch).
    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// A lower bound of the record's encoded size (its bytes without framing), to refuse a
    /// record that cannot fit `max.request.size` before waiting for anything.
    pub(crate) fn min_encoded_size(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
            .sum();
        self.key.map_or(0, <[u8]>::len) + self.value.map_or(0, <[u8]>::len) + headers
    }
}

/// Where a record was written: Java's `RecordMetadata`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset, or -1 when unknown (`acks=0`, or a duplicate the broker
    /// reported without its offset).
    pub offset: i64,
    /// The record's timestamp: the broker's append time for `LogAppendTime` topics, else
    /// its `CreateTime`.
    pub timestamp: i64,
}

impl RecordMetadata {
    /// Whether the offset is known.
    pub fn has_offset(&self) -> bool {
        self.offset >= 0
    }
}
