//! A record to append, and the bytes it takes in a batch: its payload (key, value and
//! headers), its exact size at a position (Kafka's `DefaultRecord.sizeInBytes`), and the
//! upper bound that sizes batches and checks `max.request.size`
//! (`DefaultRecord.recordSizeUpperBound`). Varint lengths come from
//! [`protocol`](crate::protocol), the encoding itself from the builder.

use crate::protocol::{varint_len, varlong_len};

use super::builder::WriteError;

/// A record header: a UTF-8 key and an optional value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header<'a> {
    /// The header key (never null in Kafka).
    pub key: &'a str,
    /// The header value; `None` is a null value.
    pub value: Option<&'a [u8]>,
}

/// A record to append, borrowing its bytes from the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Record<'a> {
    /// Timestamp in wall-clock milliseconds since the Unix epoch (`CreateTime`); must be
    /// non-negative or [`NO_TIMESTAMP`](super::NO_TIMESTAMP) (`-1`), as Kafka requires.
    pub timestamp: i64,
    /// The key; `None` is a null key.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The headers, in order.
    pub headers: &'a [Header<'a>],
}

/// Most bytes a record's framing can take beyond its key, value and headers: length (5),
/// attributes (1), timestamp delta (10), offset delta (5); Kafka's
/// `DefaultRecord.MAX_RECORD_OVERHEAD`.
pub const MAX_RECORD_OVERHEAD: usize = 21;

/// Bytes of a nullable byte field with a varint length (`-1` = null).
#[inline(always)]
pub(super) fn field_size(bytes: Option<&[u8]>) -> Option<usize> {
    match bytes {
        None => Some(1),
        Some(b) => {
            let len = i32::try_from(b.len()).ok()?;
            varint_len(len).checked_add(b.len())
        }
    }
}

impl Record<'_> {
    /// Bytes of the key, value and headers sections (Kafka's `DefaultRecord.sizeOf(keySize,
    /// valueSize, headers)`), or `None` if a length does not fit the format.
    #[inline(always)]
    pub(crate) fn payload_size(&self) -> Option<usize> {
        let mut size = field_size(self.key)?.checked_add(field_size(self.value)?)?;
        let count = i32::try_from(self.headers.len()).ok()?;
        size = size.checked_add(varint_len(count))?;
        for h in self.headers {
            size = size
                .checked_add(field_size(Some(h.key.as_bytes()))?)?
                .checked_add(field_size(h.value)?)?;
        }
        Some(size)
    }

    /// The record's body size (everything after the length varint), or `None` when it does
    /// not fit an `i32`.
    #[inline(always)]
    pub(super) fn body_size(
        &self,
        offset_delta: i32,
        timestamp_delta: i64,
        payload: usize,
    ) -> Option<i32> {
        let framing = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
        i32::try_from(payload.checked_add(framing)?).ok()
    }

    /// Exact bytes this record takes in a batch at `offset_delta` with `timestamp_delta`
    /// (Kafka's `DefaultRecord.sizeInBytes`).
    pub fn encoded_size(
        &self,
        offset_delta: i32,
        timestamp_delta: i64,
    ) -> Result<usize, WriteError> {
        let payload = self.payload_size().ok_or(WriteError::RecordTooLarge)?;
        let body = self
            .body_size(offset_delta, timestamp_delta, payload)
            .ok_or(WriteError::RecordTooLarge)?;
        Ok(varint_len(body) + body as usize)
    }

    /// An upper bound of the bytes this record takes at any position in any batch (Kafka's
    /// `DefaultRecord.recordSizeUpperBound`), used to size batches and to check
    /// `max.request.size` exactly as the Java producer does.
    pub fn size_upper_bound(&self) -> Result<usize, WriteError> {
        self.payload_size()
            .and_then(|p| p.checked_add(MAX_RECORD_OVERHEAD))
            .ok_or(WriteError::RecordTooLarge)
    }
}

#[cfg(test)]
mod tests {
    use super::super::builder::BatchBuilder;
    use super::*;

    fn record<'a>(
        timestamp: i64,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        headers: &'a [Header<'a>],
    ) -> Record<'a> {
        Record {
            timestamp,
            key,
            value,
            headers,
        }
    }

    #[test]
    fn test_sizes_match_encoding() {
        let headers = [
            Header {
                key: "key",
                value: Some(b"value"),
            },
            Header {
                key: "",
                value: None,
            },
        ];
        let r = record(10, Some(&[0; 200]), Some(&[1; 1000]), &headers);
        let mut buf = [0u8; 2048];
        let mut b = BatchBuilder::start(&buf).unwrap();
        assert_eq!(b.next_record_size(&r), r.encoded_size(0, 0));
        let n = b.append(&mut buf, &r).unwrap();
        assert_eq!(Ok(n), r.encoded_size(0, 0));
        assert!(r.size_upper_bound().unwrap() >= n);
    }
}
