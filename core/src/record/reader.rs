//! Reading RecordBatch v2 bytes: batches in a buffer, records in a batch, headers in a
//! record, all borrowed and lazy.
//!
//! Everything here keeps the crate's no-panic promise (see [`crate::protocol`]): any input
//! yields batches and records or a [`DecodeError`]. Each batch's magic byte and CRC32C are
//! checked before its records are exposed. Record decoding follows Kafka's
//! `DefaultRecord.readFrom`, including its checks (non-negative header count and header key
//! sizes, a record body consumed exactly).

use crate::protocol::{DecodeError, Reader};

use super::batch_header::{
    CompressionType, LOG_OVERHEAD, MAGIC_V2, RECORD_BATCH_OVERHEAD, RecordBatchHeader,
    TimestampType, field,
};
use super::size::Header;

/// An iterator over the record batches laid end to end in a buffer (a produce request's
/// `records` field, a log segment).
///
/// Yields each well-formed batch; on the first malformed one yields its error and then
/// stops. A trailing partial batch is an error ([`DecodeError::UnexpectedEof`]).
#[derive(Debug, Clone)]
pub struct RecordBatchReader<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> RecordBatchReader<'a> {
    /// A reader over `bytes`.
    pub const fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            failed: false,
        }
    }

    /// The bytes not yet read.
    pub const fn remaining(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for RecordBatchReader<'a> {
    type Item = Result<RecordBatch<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match RecordBatch::parse(self.rest) {
            Ok((batch, rest)) => {
                self.rest = rest;
                Some(Ok(batch))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// One record batch, with its length, magic byte and CRC32C verified.
#[derive(Debug, Clone, Copy)]
pub struct RecordBatch<'a> {
    header: RecordBatchHeader<&'a [u8]>,
}

impl<'a> RecordBatch<'a> {
    /// Parses and verifies the batch at the start of `bytes`; returns it and the bytes after
    /// it.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, &'a [u8]), DecodeError> {
        // The length and magic come before the CRC, so check them first (as Kafka does).
        let mut r = Reader::new(bytes);
        r.skip(field::BATCH_LENGTH.start)?;
        let batch_length = r.read_i32()?;
        let total = usize::try_from(batch_length)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .filter(|&t| t >= RECORD_BATCH_OVERHEAD)
            .ok_or(DecodeError::InvalidLength)?;
        r.skip(field::MAGIC.start - field::PARTITION_LEADER_EPOCH.start)?;
        let magic = r.read_i8()?;
        if magic != MAGIC_V2 {
            return Err(DecodeError::UnsupportedMagic { magic });
        }
        let (batch, rest) = bytes
            .split_at_checked(total)
            .ok_or(DecodeError::UnexpectedEof)?;
        let header = RecordBatchHeader::new_checked(batch)?;
        header.verify_crc()?;
        if header.record_count() < 0 {
            return Err(DecodeError::InvalidLength);
        }
        Ok((Self { header }, rest))
    }

    /// The header view.
    pub const fn header(&self) -> RecordBatchHeader<&'a [u8]> {
        self.header
    }

    /// The whole batch's bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.header.into_inner()
    }

    /// The records section, as stored (compressed if the batch is).
    pub fn records_bytes(&self) -> &'a [u8] {
        self.as_bytes()
            .get(RECORD_BATCH_OVERHEAD..)
            .unwrap_or_default()
    }

    /// Iterates the records of an uncompressed batch; [`DecodeError::Compressed`] if the
    /// batch is compressed (decompress [`records_bytes`](Self::records_bytes) and use
    /// [`Records::new`]).
    pub fn records(&self) -> Result<Records<'a>, DecodeError> {
        let h = self.header();
        if h.compression()? != CompressionType::None {
            return Err(DecodeError::Compressed);
        }
        Ok(Records::new(self.records_bytes(), &h))
    }
}

/// A lazy iterator over the records of a batch.
///
/// Yields `Err` once and stops at the first malformed record; after the declared number of
/// records, leftover bytes are reported as [`DecodeError::TrailingBytes`].
#[derive(Debug, Clone)]
pub struct Records<'a> {
    reader: Reader<'a>,
    remaining: u32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    done: bool,
}

impl<'a> Records<'a> {
    /// Records from an (uncompressed or decompressed) records section, taking the count,
    /// base offset and timestamps from `header`.
    pub fn new<T: AsRef<[u8]>>(records: &'a [u8], header: &RecordBatchHeader<T>) -> Self {
        Self {
            reader: Reader::new(records),
            remaining: u32::try_from(header.record_count()).unwrap_or(0),
            base_offset: header.base_offset(),
            base_timestamp: header.base_timestamp(),
            log_append_time: match header.timestamp_type() {
                TimestampType::LogAppendTime => Some(header.max_timestamp()),
                TimestampType::CreateTime => None,
            },
            done: false,
        }
    }

    /// Records not yet iterated (as declared by the header).
    pub const fn remaining(&self) -> u32 {
        self.remaining
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<DecodedRecord<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.remaining == 0 {
            self.done = true;
            return (!self.reader.is_empty()).then_some(Err(DecodeError::TrailingBytes));
        }
        self.remaining -= 1;
        let result = DecodedRecord::parse(&mut self.reader).map(|mut r| {
            r.offset = self.base_offset.wrapping_add(r.offset_delta.into());
            r.timestamp = match self.log_append_time {
                Some(t) => t,
                None => self.base_timestamp.wrapping_add(r.timestamp_delta),
            };
            r
        });
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

/// A record read from a batch, borrowing its key, value and headers.
#[derive(Debug, Clone)]
pub struct DecodedRecord<'a> {
    /// The record attributes byte (unused by magic 2, 0 in practice).
    pub attributes: i8,
    /// Timestamp delta relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Offset delta relative to the batch's base offset (the record's index from producers).
    pub offset_delta: i32,
    /// The record's timestamp in wall-clock milliseconds (base + delta, or the log append
    /// time for `LogAppendTime` batches).
    pub timestamp: i64,
    /// The record's offset (base offset + delta).
    pub offset: i64,
    /// The key; `None` is null.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is null.
    pub value: Option<&'a [u8]>,
    /// The headers, validated, decoded lazily.
    pub headers: Headers<'a>,
}

/// A nullable varint-length field; any negative length is null, as in Kafka's reader.
fn varint_nullable<'a>(r: &mut Reader<'a>) -> Result<Option<&'a [u8]>, DecodeError> {
    let len = r.read_varint()?;
    match usize::try_from(len) {
        Err(_) => Ok(None),
        Ok(len) => r.read_bytes(len).map(Some),
    }
}

fn read_header<'a>(r: &mut Reader<'a>) -> Result<Header<'a>, DecodeError> {
    let key_len = usize::try_from(r.read_varint()?).map_err(|_| DecodeError::InvalidLength)?;
    let key = core::str::from_utf8(r.read_bytes(key_len)?).map_err(|_| DecodeError::InvalidUtf8)?;
    let value = varint_nullable(r)?;
    Ok(Header { key, value })
}

impl<'a> DecodedRecord<'a> {
    /// Decodes the record at the reader's position (`offset` and `timestamp` are left as the
    /// deltas; [`Records`] fills them in).
    fn parse(reader: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let len = usize::try_from(reader.read_varint()?).map_err(|_| DecodeError::InvalidLength)?;
        let mut r = Reader::new(reader.read_bytes(len)?);
        let attributes = r.read_i8()?;
        let timestamp_delta = r.read_varlong()?;
        let offset_delta = r.read_varint()?;
        let key = varint_nullable(&mut r)?;
        let value = varint_nullable(&mut r)?;
        let count = u32::try_from(r.read_varint()?).map_err(|_| DecodeError::InvalidLength)?;
        let headers_bytes = r.rest();
        for _ in 0..count {
            read_header(&mut r)?;
        }
        if !r.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        Ok(Self {
            attributes,
            timestamp_delta,
            offset_delta,
            timestamp: timestamp_delta,
            offset: offset_delta.into(),
            key,
            value,
            headers: Headers {
                reader: Reader::new(headers_bytes),
                remaining: count,
            },
        })
    }
}

/// The headers of a [`DecodedRecord`], validated when the record was read.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    reader: Reader<'a>,
    remaining: u32,
}

impl<'a> Headers<'a> {
    /// Headers not yet iterated.
    pub const fn len(&self) -> u32 {
        self.remaining
    }

    /// Whether no header is left.
    pub const fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// The encoded bytes of the headers not yet iterated, to copy them as they are.
    pub(crate) const fn raw(&self) -> &'a [u8] {
        self.reader.rest()
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Validated in `DecodedRecord::parse`; an error would only end the iteration.
        read_header(&mut self.reader).ok()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::builder::{BatchBuilder, BatchMeta};
    use super::super::size::Record;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn build(records: &[Record<'_>], buf: &mut [u8]) -> usize {
        let mut b = BatchBuilder::start(buf).unwrap();
        for r in records {
            b.append(buf, r).unwrap();
        }
        b.close(buf, &BatchMeta::default()).unwrap()
    }

    #[test]
    fn test_parse_two_batches() {
        let headers = [Header {
            key: "h",
            value: Some(b"hv"),
        }];
        let mut buf = [0u8; 512];
        let a = build(
            &[Record {
                timestamp: 10,
                key: Some(b"k"),
                value: None,
                headers: &headers,
            }],
            &mut buf,
        );
        let b = build(
            &[
                Record {
                    timestamp: 20,
                    key: None,
                    value: Some(b"v"),
                    headers: &[],
                },
                Record {
                    timestamp: 15,
                    key: None,
                    value: Some(b""),
                    headers: &[],
                },
            ],
            &mut buf[a..],
        );
        let mut batches = RecordBatchReader::new(&buf[..a + b]);
        let first = batches.next().unwrap().unwrap();
        let recs: Vec<_> = first.records().unwrap().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].key, Some(&b"k"[..]));
        assert_eq!(recs[0].value, None);
        assert_eq!(recs[0].timestamp, 10);
        assert_eq!(recs[0].headers.clone().collect::<Vec<_>>(), headers);

        let second = batches.next().unwrap().unwrap();
        let recs: Vec<_> = second.records().unwrap().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!((recs[0].timestamp, recs[0].offset), (20, 0));
        assert_eq!((recs[1].timestamp, recs[1].offset), (15, 1));
        assert_eq!(recs[1].value, Some(&b""[..]));
        assert!(batches.next().is_none());
    }

    #[test]
    fn test_rejects_corruption() {
        let mut buf = [0u8; 128];
        let len = build(
            &[Record {
                timestamp: 1,
                key: None,
                value: Some(b"abc"),
                headers: &[],
            }],
            &mut buf,
        );
        let good = buf;

        buf[len - 1] ^= 1;
        assert!(matches!(
            RecordBatchReader::new(&buf[..len]).next(),
            Some(Err(DecodeError::CrcMismatch { .. }))
        ));

        buf = good;
        buf[16] = 1;
        assert_eq!(
            RecordBatch::parse(&buf[..len]).err(),
            Some(DecodeError::UnsupportedMagic { magic: 1 })
        );

        assert_eq!(
            RecordBatch::parse(&good[..len - 1]).err(),
            Some(DecodeError::UnexpectedEof)
        );
        let mut reader = RecordBatchReader::new(&good[..len + 5]);
        assert!(reader.next().unwrap().is_ok());
        assert!(reader.next().unwrap().is_err());
        assert!(reader.next().is_none());
    }

    #[test]
    fn test_record_count_mismatch_is_reported() {
        let mut buf = [0u8; 128];
        let len = build(
            &[Record {
                timestamp: 1,
                key: None,
                value: Some(b"abc"),
                headers: &[],
            }],
            &mut buf,
        );
        // Claim 0 records: the record left over is trailing bytes.
        let mut h = RecordBatchHeader::new_checked(&mut buf[..len]).unwrap();
        h.set_record_count(0);
        h.fill_crc().unwrap();
        let batch = RecordBatch::parse(&buf[..len]).unwrap().0;
        let mut records = batch.records().unwrap();
        assert_eq!(
            records.next().unwrap().err(),
            Some(DecodeError::TrailingBytes)
        );
        assert!(records.next().is_none());
        // Claim 2: the second is missing.
        let mut h = RecordBatchHeader::new_checked(&mut buf[..len]).unwrap();
        h.set_record_count(2);
        h.fill_crc().unwrap();
        let batch = RecordBatch::parse(&buf[..len]).unwrap().0;
        let mut records = batch.records().unwrap();
        assert!(records.next().unwrap().is_ok());
        assert_eq!(
            records.next().unwrap().err(),
            Some(DecodeError::UnexpectedEof)
        );
        assert!(records.next().is_none());
    }

    #[derive(Debug, Clone)]
    struct OwnedRecord {
        timestamp: i64,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        headers: Vec<(std::string::String, Option<Vec<u8>>)>,
    }

    fn owned_record() -> impl Strategy<Value = OwnedRecord> {
        (
            prop_oneof![
                Just(-1i64),
                0i64..=i64::MAX,
                1_600_000_000_000i64..1_800_000_000_000
            ],
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
            proptest::collection::vec(
                (
                    ".{0,8}",
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
                ),
                0..4,
            ),
        )
            .prop_map(|(timestamp, key, value, headers)| OwnedRecord {
                timestamp,
                key,
                value,
                headers,
            })
    }

    fn drain(batch: RecordBatch<'_>) {
        if let Ok(records) = batch.records() {
            for r in records.flatten() {
                r.headers.for_each(drop);
            }
        }
    }

    proptest! {
        #[test]
        fn prop_round_trip(records in proptest::collection::vec(owned_record(), 1..20)) {
            let headers: Vec<Vec<Header<'_>>> = records
                .iter()
                .map(|r| r.headers.iter().map(|(k, v)| Header { key: k, value: v.as_deref() }).collect())
                .collect();
            let recs: Vec<Record<'_>> = records
                .iter()
                .zip(&headers)
                .map(|(r, h)| Record { timestamp: r.timestamp, key: r.key.as_deref(), value: r.value.as_deref(), headers: h })
                .collect();
            let mut buf = std::vec![0u8; 16 * 1024];
            let len = build(&recs, &mut buf);
            let mut batches = RecordBatchReader::new(&buf[..len]);
            let batch = batches.next().unwrap().unwrap();
            prop_assert!(batches.next().is_none());
            let h = batch.header();
            prop_assert_eq!(h.record_count() as usize, recs.len());
            prop_assert_eq!(h.base_timestamp(), recs[0].timestamp);
            prop_assert_eq!(h.max_timestamp(), recs.iter().map(|r| r.timestamp).fold(-1, i64::max));
            let decoded: Vec<_> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(decoded.len(), recs.len());
            for (i, (d, r)) in decoded.iter().zip(&recs).enumerate() {
                prop_assert_eq!(d.offset, i as i64);
                prop_assert_eq!(d.timestamp, r.timestamp);
                prop_assert_eq!(d.key, r.key);
                prop_assert_eq!(d.value, r.value);
                prop_assert_eq!(&d.headers.clone().collect::<Vec<_>>()[..], r.headers);
            }
        }

        #[test]
        fn prop_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            for batch in RecordBatchReader::new(&bytes).flatten() {
                drain(batch);
            }
        }

        /// Arbitrary bytes as the records section of a valid header: exercises the record
        /// decoder without having to guess a CRC.
        #[test]
        fn prop_records_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), count in 0i32..8) {
            let mut header = [0u8; 61];
            let mut h = RecordBatchHeader::new_checked(&mut header[..]).unwrap();
            h.set_record_count(count);
            for r in Records::new(&bytes, &h).flatten() {
                r.headers.for_each(drop);
            }
        }

        #[test]
        fn prop_reader_survives_mutated_batches(flips in proptest::collection::vec((0usize..200, any::<u8>()), 1..4), fix_crc in any::<bool>()) {
            let headers = [Header { key: "hk", value: Some(b"hv") }];
            let mut buf = [0u8; 256];
            let len = build(&[
                Record { timestamp: 5, key: Some(b"key"), value: Some(b"value"), headers: &headers },
                Record { timestamp: 6, key: None, value: None, headers: &[] },
            ], &mut buf);
            for (at, x) in flips {
                if let Some(b) = buf.get_mut(at % len) { *b ^= x; }
            }
            if let (true, Ok(mut h)) = (fix_crc, RecordBatchHeader::new_checked(&mut buf[..len])) {
                let _ = h.fill_crc();
            }
            for batch in RecordBatchReader::new(&buf[..len]).flatten() {
                drain(batch);
            }
        }
    }
}
