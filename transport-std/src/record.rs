//! [`ProducerRecord`] (what to send) and [`RecordMetadata`] (where it was written).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

pub use kafka_edge_core::record::Header;

/// How many headers a record holds without a heap allocation.
pub const INLINE_HEADERS: usize = 4;

/// A record's headers, in order: up to [`INLINE_HEADERS`] are stored inside the record
/// itself (no heap allocation per record in the common case), more move to the heap.
/// Reads as a slice of [`Header`]s.
///
/// ```
/// use kafka_edge_std::{Header, Headers};
/// let mut headers = Headers::new();
/// headers.push(Header { key: "trace", value: Some(b"abc") });
/// assert_eq!(headers.len(), 1);
/// assert!(!headers.spilled());
/// ```
// An array rather than `smallvec`: `SmallVec` is invariant in its item type, which would
// make `ProducerRecord<'a>` invariant in `'a` (no shortening of borrowed records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers<'a>(Repr<'a>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr<'a> {
    /// The first `len` entries are the headers; the rest are placeholders.
    Inline {
        len: u8,
        items: [Header<'a>; INLINE_HEADERS],
    },
    Heap(Vec<Header<'a>>),
}

const EMPTY: Header<'static> = Header {
    key: "",
    value: None,
};

impl Default for Headers<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Headers<'a> {
    /// No headers.
    pub const fn new() -> Self {
        Self(Repr::Inline {
            len: 0,
            items: [EMPTY; INLINE_HEADERS],
        })
    }

    /// Adds a header at the end (the fifth moves them all to the heap).
    pub fn push(&mut self, header: Header<'a>) {
        match &mut self.0 {
            Repr::Inline { len, items } => match items.get_mut(usize::from(*len)) {
                Some(slot) => {
                    *slot = header;
                    *len += 1;
                }
                None => {
                    let mut heap = Vec::with_capacity(2 * INLINE_HEADERS);
                    heap.extend_from_slice(items);
                    heap.push(header);
                    self.0 = Repr::Heap(heap);
                }
            },
            Repr::Heap(heap) => heap.push(header),
        }
    }

    /// Removes every header (keeping the heap storage, if any).
    pub fn clear(&mut self) {
        match &mut self.0 {
            Repr::Inline { len, .. } => *len = 0,
            Repr::Heap(heap) => heap.clear(),
        }
    }

    /// Whether the headers are on the heap (more than [`INLINE_HEADERS`] were pushed).
    pub fn spilled(&self) -> bool {
        matches!(self.0, Repr::Heap(_))
    }
}

impl<'a> Deref for Headers<'a> {
    type Target = [Header<'a>];

    fn deref(&self) -> &[Header<'a>] {
        match &self.0 {
            Repr::Inline { len, items } => items.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Heap(heap) => heap,
        }
    }
}

impl<'a> DerefMut for Headers<'a> {
    fn deref_mut(&mut self) -> &mut [Header<'a>] {
        match &mut self.0 {
            Repr::Inline { len, items } => items.get_mut(..usize::from(*len)).unwrap_or_default(),
            Repr::Heap(heap) => heap,
        }
    }
}

impl<'a> FromIterator<Header<'a>> for Headers<'a> {
    fn from_iter<I: IntoIterator<Item = Header<'a>>>(iter: I) -> Self {
        let mut headers = Self::new();
        headers.extend(iter);
        headers
    }
}

impl<'a> Extend<Header<'a>> for Headers<'a> {
    fn extend<I: IntoIterator<Item = Header<'a>>>(&mut self, iter: I) {
        for h in iter {
            self.push(h);
        }
    }
}

impl<'a> From<Vec<Header<'a>>> for Headers<'a> {
    fn from(headers: Vec<Header<'a>>) -> Self {
        if headers.len() > INLINE_HEADERS {
            Self(Repr::Heap(headers))
        } else {
            headers.into_iter().collect()
        }
    }
}

impl<'a, const N: usize> From<[Header<'a>; N]> for Headers<'a> {
    fn from(headers: [Header<'a>; N]) -> Self {
        headers.into_iter().collect()
    }
}

impl<'a, 'h> IntoIterator for &'h Headers<'a> {
    type Item = &'h Header<'a>;
    type IntoIter = std::slice::Iter<'h, Header<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

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
    /// The headers, in order (the first [`INLINE_HEADERS`] without a heap allocation).
    pub headers: Headers<'a>,
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
            headers: Headers::new(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn h(key: &str) -> Header<'_> {
        Header {
            key,
            value: Some(key.as_bytes()),
        }
    }

    #[test]
    fn headers_stay_inline_up_to_the_limit_then_move_to_the_heap_in_order() {
        let keys = ["a", "b", "c", "d", "e", "f"];
        let mut headers = Headers::new();
        for (i, k) in keys.iter().enumerate() {
            headers.push(h(k));
            assert_eq!(
                headers.spilled(),
                i >= INLINE_HEADERS,
                "after {} headers",
                i + 1
            );
            let got: Vec<&str> = headers.iter().map(|h| h.key).collect();
            assert_eq!(got, keys[..=i]);
        }
        headers.clear();
        assert!(headers.is_empty());
        let from_vec = Headers::from(vec![h("x"), h("y")]);
        assert!(!from_vec.spilled());
        assert_eq!(&*from_vec, &[h("x"), h("y")]);
        assert_eq!(Headers::from([h("x"), h("y")]), from_vec);
    }

    #[test]
    fn a_record_may_borrow_for_less_than_its_headers() {
        // Covariance: headers of 'static strings go into a record of a local key.
        let headers: Headers<'static> = Headers::from([h("trace")]);
        let key = String::from("k");
        let record = ProducerRecord {
            headers,
            ..ProducerRecord::new("t").key(key.as_bytes())
        };
        assert_eq!(record.headers.len(), 1);
    }
}
