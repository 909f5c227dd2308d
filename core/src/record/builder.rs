//! Building a RecordBatch v2 in place, byte-compatible with Kafka's `MemoryRecordsBuilder`.
//!
//! [`BatchBuilder`] is plain state (a few integers) and borrows nothing: every method takes
//! the batch buffer, so a batch can stay open in a pool slot across many calls. Records
//! are encoded once, straight into the buffer, after the 61 header bytes; the header and
//! the CRC32C are written when the batch is closed. A record's sizes are computed in
//! `size.rs`; this file writes its bytes.

use core::fmt;

use crate::protocol::{
    DecodeError, put_uvarint_exact, unsigned_varlong_len, varint_len, varlong_len, zigzag32,
    zigzag64,
};

use super::batch_header::{
    CompressionType, LOG_OVERHEAD, MAGIC_V2, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP, RECORD_BATCH_OVERHEAD, RecordBatchHeader,
    TimestampType, attributes,
};
use super::compression::Compressor;
use super::reader::DecodedRecord;
use super::size::{Record, field_size};

/// Header fields of a batch that the builder does not derive from its records.
///
/// [`Default`] gives what a producer without idempotence writes (Kafka's constants):
/// base offset 0, partition leader epoch -1, producer id -1, epoch -1, base sequence -1,
/// `CreateTime`, not transactional, not control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchMeta {
    /// `baseOffset` (0 from producers).
    pub base_offset: i64,
    /// `partitionLeaderEpoch` (-1 from producers).
    pub partition_leader_epoch: i32,
    /// `producerId`, or -1.
    pub producer_id: i64,
    /// `producerEpoch`, or -1.
    pub producer_epoch: i16,
    /// `baseSequence`, or -1.
    pub base_sequence: i32,
    /// Timestamp type (attribute bit 3).
    pub timestamp_type: TimestampType,
    /// Transactional batch (attribute bit 4).
    pub is_transactional: bool,
    /// Control batch (attribute bit 5).
    pub is_control: bool,
}

impl BatchMeta {
    /// The defaults of a producer without idempotence (see the type's documentation).
    pub const NON_IDEMPOTENT: Self = Self {
        base_offset: 0,
        partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_PRODUCER_EPOCH,
        base_sequence: NO_SEQUENCE,
        timestamp_type: TimestampType::CreateTime,
        is_transactional: false,
        is_control: false,
    };

    /// The defaults with an idempotent producer's state.
    pub const fn idempotent(producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        Self {
            producer_id,
            producer_epoch,
            base_sequence,
            ..Self::NON_IDEMPOTENT
        }
    }
}

impl Default for BatchMeta {
    fn default() -> Self {
        Self::NON_IDEMPOTENT
    }
}

/// Why a compression codec failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The output buffer was too small for the compressed records.
    OutputTooSmall,
    /// The codec failed for another reason.
    Failed,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OutputTooSmall => "compression output buffer too small",
            Self::Failed => "compression failed",
        })
    }
}

impl core::error::Error for CodecError {}

/// Why a batch could not be started, appended to, closed or re-stamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The record (or the header) does not fit in the rest of the buffer. Nothing was
    /// modified; close this batch and append to a new one with room for `needed` bytes.
    DoesNotFit {
        /// Bytes the record needs.
        needed: usize,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// A key, value, header or the record itself is longer than the format can express
    /// (`i32::MAX` bytes).
    RecordTooLarge,
    /// A timestamp was negative other than `-1` (Kafka's "Invalid negative timestamp").
    InvalidTimestamp {
        /// The rejected timestamp.
        timestamp: i64,
    },
    /// The batch already holds `i32::MAX` records.
    TooManyRecords,
    /// A batch without records cannot be closed (Kafka writes nothing for it).
    Empty,
    /// The compression codec failed.
    Codec(CodecError),
    /// The bytes given to re-stamp are not a well-formed batch.
    InvalidBatch(DecodeError),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::DoesNotFit { needed, available } => write!(
                f,
                "record of {needed} bytes does not fit in the {available} bytes left in the batch"
            ),
            Self::RecordTooLarge => f.write_str("record too large for the batch format"),
            Self::InvalidTimestamp { timestamp } => {
                write!(f, "invalid negative timestamp {timestamp}")
            }
            Self::TooManyRecords => f.write_str("too many records in one batch"),
            Self::Empty => f.write_str("cannot close an empty batch"),
            Self::Codec(e) => write!(f, "codec: {e}"),
            Self::InvalidBatch(e) => write!(f, "invalid batch: {e}"),
        }
    }
}

impl core::error::Error for WriteError {}

/// The state of a RecordBatch v2 being written into a caller's buffer.
///
/// Byte-compatible with Kafka's `MemoryRecordsBuilder` (magic 2): the base timestamp is the
/// first record's, each record's timestamp delta is relative to it, offset deltas are the
/// record indexes, `maxTimestamp` is the largest timestamp (at least -1) and
/// `lastOffsetDelta` is `count - 1`.
///
/// The builder holds no reference: pass the same buffer (the batch starts at its first
/// byte) to every call. The buffer's length is the batch's capacity.
///
/// ```
/// use kafka_edge_core::record::{BatchBuilder, BatchMeta, Record, RecordBatchReader};
/// let mut buf = [0u8; 256];
/// let mut batch = BatchBuilder::start(&buf)?;
/// let record = Record { timestamp: 1_700_000_000_000, key: None, value: Some(b"hello"), headers: &[] };
/// batch.append(&mut buf, &record)?;
/// let len = batch.close(&mut buf, &BatchMeta::default())?;
///
/// let batch = RecordBatchReader::new(&buf[..len]).next().unwrap().unwrap();
/// let first = batch.records()?.next().unwrap().unwrap();
/// assert_eq!(first.value, Some(&b"hello"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchBuilder {
    write_pos: usize,
    record_count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// Starts a batch at the beginning of `buf`, reserving the 61 header bytes.
    pub fn start(buf: &[u8]) -> Result<Self, WriteError> {
        if buf.len() < RECORD_BATCH_OVERHEAD {
            return Err(WriteError::DoesNotFit {
                needed: RECORD_BATCH_OVERHEAD,
                available: buf.len(),
            });
        }
        Ok(Self {
            write_pos: RECORD_BATCH_OVERHEAD,
            record_count: 0,
            base_timestamp: NO_TIMESTAMP,
            max_timestamp: NO_TIMESTAMP,
        })
    }

    /// Bytes the batch takes so far, header included (its size once closed without
    /// compression).
    pub const fn size_in_bytes(&self) -> usize {
        self.write_pos
    }

    /// Records appended so far.
    pub const fn record_count(&self) -> u32 {
        self.record_count as u32
    }

    /// Whether no record was appended.
    pub const fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// The base timestamp (the first record's), if a record was appended.
    pub const fn base_timestamp(&self) -> Option<i64> {
        if self.record_count == 0 {
            None
        } else {
            Some(self.base_timestamp)
        }
    }

    /// The largest record timestamp so far (-1 if none is larger).
    pub const fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// Exact bytes `record` would take if appended next.
    pub fn next_record_size(&self, record: &Record<'_>) -> Result<usize, WriteError> {
        let base = if self.record_count == 0 {
            record.timestamp
        } else {
            self.base_timestamp
        };
        record.encoded_size(self.record_count, record.timestamp.wrapping_sub(base))
    }

    /// Encodes `record` into `buf` after the records already there, and returns the bytes
    /// it took.
    ///
    /// If it does not fit, returns [`WriteError::DoesNotFit`] and changes nothing (neither
    /// the builder nor the bytes of the batch).
    #[inline(always)]
    pub fn append(&mut self, buf: &mut [u8], record: &Record<'_>) -> Result<usize, WriteError> {
        let payload = record.payload_size().ok_or(WriteError::RecordTooLarge)?;
        self.append_with_payload(buf, record, payload)
    }

    /// The offset delta, base timestamp and timestamp delta of the next record, at
    /// timestamp `ts` (checked: non-negative or -1, and room for one more record).
    #[inline(always)]
    fn deltas(&self, ts: i64) -> Result<(i32, i64, i64), WriteError> {
        if ts < 0 && ts != NO_TIMESTAMP {
            return Err(WriteError::InvalidTimestamp { timestamp: ts });
        }
        let offset_delta = self.record_count;
        if offset_delta == i32::MAX {
            return Err(WriteError::TooManyRecords);
        }
        let base = if offset_delta == 0 {
            ts
        } else {
            self.base_timestamp
        };
        // Java computes `timestamp - baseTimestamp` on longs, which wraps.
        Ok((offset_delta, base, ts.wrapping_sub(base)))
    }

    /// [`append`](Self::append) with the record's payload size (from
    /// `Record::payload_size`) already computed by the caller.
    #[inline(always)]
    pub(crate) fn append_with_payload(
        &mut self,
        buf: &mut [u8],
        record: &Record<'_>,
        payload: usize,
    ) -> Result<usize, WriteError> {
        let ts = record.timestamp;
        let (offset_delta, base, timestamp_delta) = self.deltas(ts)?;

        let body = record
            .body_size(offset_delta, timestamp_delta, payload)
            .ok_or(WriteError::RecordTooLarge)?;
        let size = varint_len(body) + body as usize;
        let available = buf.len().saturating_sub(self.write_pos);
        // `batchLength` (everything after the first 12 bytes) must fit an i32 too.
        let end = self
            .write_pos
            .checked_add(size)
            .filter(|&end| end - LOG_OVERHEAD <= i32::MAX as usize)
            .unwrap_or(usize::MAX);
        let dst = match buf.get_mut(self.write_pos..end) {
            Some(dst) => dst,
            _ => {
                return Err(WriteError::DoesNotFit {
                    needed: size,
                    available,
                });
            }
        };
        encode_record(dst, body, timestamp_delta, offset_delta, record);

        self.write_pos = end;
        self.record_count = offset_delta + 1;
        self.base_timestamp = base;
        if ts > self.max_timestamp {
            self.max_timestamp = ts;
        }
        Ok(size)
    }

    /// Appends a record read back from a batch (to re-encode it into another batch, as when
    /// a batch the broker refused as too large is split): its timestamp, key and value, and
    /// its headers copied as they are encoded. The offset and timestamp deltas are this
    /// batch's; the record attributes are written as 0, as [`append`](Self::append) does.
    ///
    /// Same contract as [`append`](Self::append): on [`WriteError::DoesNotFit`] nothing
    /// changed.
    pub fn append_decoded(
        &mut self,
        buf: &mut [u8],
        record: &DecodedRecord<'_>,
    ) -> Result<usize, WriteError> {
        let ts = record.timestamp;
        let (offset_delta, base, timestamp_delta) = self.deltas(ts)?;
        let headers = record.headers.raw();
        let header_count =
            i32::try_from(record.headers.len()).map_err(|_| WriteError::RecordTooLarge)?;
        let payload = field_size(record.key)
            .zip(field_size(record.value))
            .and_then(|(k, v)| k.checked_add(v))
            .and_then(|n| n.checked_add(varint_len(header_count)))
            .and_then(|n| n.checked_add(headers.len()))
            .ok_or(WriteError::RecordTooLarge)?;
        let framing = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
        let body = payload
            .checked_add(framing)
            .and_then(|b| i32::try_from(b).ok())
            .ok_or(WriteError::RecordTooLarge)?;
        let size = varint_len(body) + body as usize;
        let available = buf.len().saturating_sub(self.write_pos);
        let end = self
            .write_pos
            .checked_add(size)
            .filter(|&end| end - LOG_OVERHEAD <= i32::MAX as usize)
            .unwrap_or(usize::MAX);
        let Some(dst) = buf.get_mut(self.write_pos..end) else {
            return Err(WriteError::DoesNotFit {
                needed: size,
                available,
            });
        };
        let mut pos = put_uvarint(dst, 0, u64::from(zigzag32(body)));
        pos = put_bytes(dst, pos, &[0]);
        pos = put_uvarint(dst, pos, zigzag64(timestamp_delta));
        pos = put_uvarint(dst, pos, u64::from(zigzag32(offset_delta)));
        pos = put_nullable(dst, pos, record.key);
        pos = put_nullable(dst, pos, record.value);
        pos = put_uvarint(dst, pos, u64::from(zigzag32(header_count)));
        pos = put_bytes(dst, pos, headers);
        debug_assert_eq!(pos, size, "record size computed wrongly");

        self.write_pos = end;
        self.record_count = offset_delta + 1;
        self.base_timestamp = base;
        if ts > self.max_timestamp {
            self.max_timestamp = ts;
        }
        Ok(size)
    }

    /// Fills the header (with `meta` and the fields derived from the records) and the
    /// CRC32C, uncompressed, and returns the total length of the batch in bytes: send
    /// `buf[..len]`.
    ///
    /// Closing does not change the builder: closing again rewrites the same bytes.
    pub fn close(&self, buf: &mut [u8], meta: &BatchMeta) -> Result<usize, WriteError> {
        self.write_header(buf, meta, CompressionType::None, self.write_pos)
    }

    /// Like [`close`](Self::close), but first compresses the records section with
    /// `compressor` (`codec` at `level`) into `scratch`, then copies the result back in place
    /// of the records and writes the header for it: `codec` in the attributes,
    /// `batchLength` over the compressed size, the CRC32C over the compressed bytes.
    ///
    /// On an error the uncompressed records are still intact in `buf` (the compressed bytes
    /// are only copied back once they are known to fit), so the batch can still be closed
    /// with [`close`](Self::close). After success `buf` holds compressed records: do not
    /// append to it or close it again.
    pub fn close_compressed<C: Compressor + ?Sized>(
        &self,
        buf: &mut [u8],
        meta: &BatchMeta,
        compressor: &mut C,
        codec: CompressionType,
        level: i32,
        scratch: &mut [u8],
    ) -> Result<usize, WriteError> {
        if self.record_count == 0 {
            return Err(WriteError::Empty);
        }
        let records = buf
            .get(RECORD_BATCH_OVERHEAD..self.write_pos)
            .ok_or(WriteError::InvalidBatch(DecodeError::UnexpectedEof))?;
        let compressed_len = compressor
            .compress(codec, level, records, scratch)
            .map_err(WriteError::Codec)?;
        let compressed = scratch
            .get(..compressed_len)
            .ok_or(WriteError::Codec(CodecError::Failed))?;
        let available = buf.len().saturating_sub(RECORD_BATCH_OVERHEAD);
        let end = RECORD_BATCH_OVERHEAD.saturating_add(compressed_len);
        buf.get_mut(RECORD_BATCH_OVERHEAD..end)
            .ok_or(WriteError::DoesNotFit {
                needed: compressed_len,
                available,
            })?
            .copy_from_slice(compressed);
        self.write_header(buf, meta, codec, end)
    }

    /// Bytes of the records section so far (uncompressed).
    pub const fn records_size(&self) -> usize {
        self.write_pos - RECORD_BATCH_OVERHEAD
    }

    fn write_header(
        &self,
        buf: &mut [u8],
        meta: &BatchMeta,
        compression: CompressionType,
        total: usize,
    ) -> Result<usize, WriteError> {
        if self.record_count == 0 {
            return Err(WriteError::Empty);
        }
        let batch_length =
            i32::try_from(total - LOG_OVERHEAD).map_err(|_| WriteError::RecordTooLarge)?;
        let batch = buf
            .get_mut(..total)
            .ok_or(WriteError::InvalidBatch(DecodeError::UnexpectedEof))?;
        let mut h = RecordBatchHeader::new_checked(batch).map_err(WriteError::InvalidBatch)?;
        h.set_base_offset(meta.base_offset);
        h.set_batch_length(batch_length);
        h.set_partition_leader_epoch(meta.partition_leader_epoch);
        h.set_magic(MAGIC_V2);
        h.set_attributes(attributes(
            compression,
            meta.timestamp_type,
            meta.is_transactional,
            meta.is_control,
        ));
        h.set_last_offset_delta(self.record_count - 1);
        h.set_base_timestamp(self.base_timestamp);
        h.set_max_timestamp(self.max_timestamp);
        h.set_producer_id(meta.producer_id);
        h.set_producer_epoch(meta.producer_epoch);
        h.set_base_sequence(meta.base_sequence);
        h.set_record_count(self.record_count);
        h.fill_crc().map_err(WriteError::InvalidBatch)?;
        Ok(total)
    }
}

/// Java's `DefaultRecordBatch.incrementSequence`: sequences wrap to 0 after `i32::MAX`.
pub(crate) const fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// `sequence` moved back by `decrement` (at least 0), the inverse of
/// [`increment_sequence`]: below 0 it wraps to `i32::MAX`.
pub(crate) const fn decrement_sequence(sequence: i32, decrement: i32) -> i32 {
    let back = (sequence as i64 - decrement as i64).rem_euclid(i32::MAX as i64 + 1);
    back as i32
}

/// Re-stamps the producer id, epoch and base sequence of a closed batch at the start of
/// `batch` and recomputes its CRC32C (for retries after an epoch bump or a sequence reset).
pub fn set_producer_state(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<(), WriteError> {
    let mut h = RecordBatchHeader::new_checked(batch).map_err(WriteError::InvalidBatch)?;
    if h.magic() != MAGIC_V2 {
        return Err(WriteError::InvalidBatch(DecodeError::UnsupportedMagic {
            magic: h.magic(),
        }));
    }
    // Check the length before touching anything.
    h.total_len().map_err(WriteError::InvalidBatch)?;
    h.set_producer_id(producer_id);
    h.set_producer_epoch(producer_epoch);
    h.set_base_sequence(base_sequence);
    h.fill_crc().map_err(WriteError::InvalidBatch)?;
    Ok(())
}

/// Writes `v` as LEB128 at `pos` and returns the position after it. `dst` was sized for
/// the whole record, so the checked write never fails; it only keeps the code panic-free.
#[inline(always)]
fn put_uvarint(dst: &mut [u8], pos: usize, v: u64) -> usize {
    let end = pos + unsigned_varlong_len(v);
    if let Some(d) = dst.get_mut(pos..end) {
        put_uvarint_exact(d, v);
    }
    end
}

#[inline(always)]
fn put_bytes(dst: &mut [u8], pos: usize, src: &[u8]) -> usize {
    let end = pos + src.len();
    if let Some(d) = dst.get_mut(pos..end) {
        copy_bytes(d, src);
    }
    end
}

/// `d.copy_from_slice(s)` for slices of equal length; small copies (the typical record
/// value) are done inline in 16-byte blocks, which beats a call to `memcpy`.
#[inline(always)]
fn copy_bytes(d: &mut [u8], s: &[u8]) {
    if (16..=256).contains(&s.len()) && d.len() == s.len() {
        let (dc, _) = d.as_chunks_mut::<16>();
        let (sc, _) = s.as_chunks::<16>();
        for (a, b) in dc.iter_mut().zip(sc) {
            *a = *b;
        }
        // The last block overlaps the one before (or is the last whole one).
        if let (Some(dl), Some(sl)) = (d.last_chunk_mut::<16>(), s.last_chunk::<16>()) {
            *dl = *sl;
        }
    } else {
        d.copy_from_slice(s);
    }
}

#[inline(always)]
fn put_nullable(dst: &mut [u8], pos: usize, b: Option<&[u8]>) -> usize {
    match b {
        None => put_uvarint(dst, pos, 1), // zig-zag(-1)
        // Lengths were checked to fit an i32 when sizing the record.
        Some(b) => {
            let pos = put_uvarint(dst, pos, u64::from(zigzag32(b.len() as i32)));
            put_bytes(dst, pos, b)
        }
    }
}

/// Writes `v` as LEB128 into a 32-byte array at `n`; the index is masked, so the
/// compiler sees it in bounds and drops the check (callers keep `n` below 27).
#[inline(always)]
fn put_uvarint_scratch(p: &mut [u8; 32], mut n: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        if let Some(b) = p.get_mut(n & 31) {
            *b = (v as u8) | 0x80;
        }
        v >>= 7;
        n += 1;
    }
    if let Some(b) = p.get_mut(n & 31) {
        *b = v as u8;
    }
    n + 1
}

/// Writes one record (Kafka's `DefaultRecord.writeTo`) into `dst`, which is exactly its
/// size: lengths were computed and checked by the caller.
#[inline(always)]
fn encode_record(
    dst: &mut [u8],
    body: i32,
    timestamp_delta: i64,
    offset_delta: i32,
    r: &Record<'_>,
) {
    // The framing before the first key or value bytes (length, attributes, timestamp
    // delta, offset delta, key length, and the value length too when the key is null: at
    // most 5 + 1 + 10 + 5 + 5 = 26 bytes) is written into the record's first 32 bytes,
    // taken once as a fixed-size array so the writes need no bounds checks. It is written
    // in place rather than built in a scratch array and copied: byte stores followed by a
    // wide load of the same bytes stall on store forwarding. Bytes past the framing are
    // overwritten by what follows.
    let mut pos = if let Some(head) = dst.first_chunk_mut::<32>() {
        let mut n = put_uvarint_scratch(head, 0, u64::from(zigzag32(body)));
        // Attributes: unused by magic 2, zero.
        if let Some(b) = head.get_mut(n & 31) {
            *b = 0;
        }
        n += 1;
        n = put_uvarint_scratch(head, n, zigzag64(timestamp_delta));
        n = put_uvarint_scratch(head, n, u64::from(zigzag32(offset_delta)));
        match r.key {
            None => {
                n = put_uvarint_scratch(head, n, 1);
                n = match r.value {
                    None => put_uvarint_scratch(head, n, 1),
                    Some(v) => put_uvarint_scratch(head, n, u64::from(zigzag32(v.len() as i32))),
                };
                match r.value {
                    None => n,
                    Some(v) => put_bytes(dst, n, v),
                }
            }
            Some(k) => {
                n = put_uvarint_scratch(head, n, u64::from(zigzag32(k.len() as i32)));
                let pos = put_bytes(dst, n, k);
                put_nullable(dst, pos, r.value)
            }
        }
    } else {
        let mut pos = put_uvarint(dst, 0, u64::from(zigzag32(body)));
        pos = put_bytes(dst, pos, &[0]);
        pos = put_uvarint(dst, pos, zigzag64(timestamp_delta));
        pos = put_uvarint(dst, pos, u64::from(zigzag32(offset_delta)));
        pos = put_nullable(dst, pos, r.key);
        put_nullable(dst, pos, r.value)
    };
    pos = put_uvarint(dst, pos, u64::from(zigzag32(r.headers.len() as i32)));
    for h in r.headers {
        pos = put_nullable(dst, pos, Some(h.key.as_bytes()));
        pos = put_nullable(dst, pos, h.value);
    }
    debug_assert_eq!(pos, dst.len(), "record size computed wrongly");
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::crc::crc32c;
    use super::super::size::Header;
    use super::*;
    use std::vec::Vec;

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

    /// Two records, written by hand from Kafka's record format:
    /// record 0: ts 1000, key "k", value "v1", no headers
    /// record 1: ts 1005, null key, value "", header ("h", null)
    #[test]
    fn test_emit_full_batch_fixture() {
        let headers = [Header {
            key: "h",
            value: None,
        }];
        let mut buf = [0u8; 128];
        let mut b = BatchBuilder::start(&buf).unwrap();
        assert_eq!(
            b.append(&mut buf, &record(1000, Some(b"k"), Some(b"v1"), &[])),
            Ok(10)
        );
        assert_eq!(
            b.append(&mut buf, &record(1005, None, Some(b""), &headers)),
            Ok(10)
        );
        let len = b.close(&mut buf, &BatchMeta::default()).unwrap();
        assert_eq!(len, 61 + 20);

        #[rustfmt::skip]
        let mut expected: Vec<u8> = [
            0, 0, 0, 0, 0, 0, 0, 0,         // baseOffset 0
            0, 0, 0, 69,                    // batchLength = 81 - 12
            0xFF, 0xFF, 0xFF, 0xFF,         // partitionLeaderEpoch -1
            2,                              // magic
            0, 0, 0, 0,                     // crc (filled below)
            0, 0,                           // attributes
            0, 0, 0, 1,                     // lastOffsetDelta 1
            0, 0, 0, 0, 0, 0, 0x03, 0xE8,   // baseTimestamp 1000
            0, 0, 0, 0, 0, 0, 0x03, 0xED,   // maxTimestamp 1005
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // producerId -1
            0xFF, 0xFF,                     // producerEpoch -1
            0xFF, 0xFF, 0xFF, 0xFF,         // baseSequence -1
            0, 0, 0, 2,                     // recordCount 2
            // record 0: body 9 bytes
            0x12,                           // length 9
            0x00,                           // attributes
            0x00,                           // timestampDelta 0
            0x00,                           // offsetDelta 0
            0x02, b'k',                     // key len 1, "k"
            0x04, b'v', b'1',               // value len 2, "v1"
            0x00,                           // 0 headers
            // record 1: body 9 bytes
            0x12,                           // length 9
            0x00,                           // attributes
            0x0A,                           // timestampDelta 5
            0x02,                           // offsetDelta 1
            0x01,                           // key null
            0x00,                           // value len 0
            0x02,                           // 1 header
            0x02, b'h',                     // header key len 1, "h"
            0x01,                           // header value null
        ]
        .to_vec();
        let crc = crc32c(&expected[21..]);
        expected[17..21].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(&buf[..len], &expected[..]);
    }

    #[test]
    fn test_idempotent_meta_and_restamp() {
        let mut buf = [0u8; 128];
        let mut b = BatchBuilder::start(&buf).unwrap();
        b.append(&mut buf, &record(7, None, Some(b"x"), &[]))
            .unwrap();
        let len = b
            .close(&mut buf, &BatchMeta::idempotent(1234, 5, 42))
            .unwrap();
        let h = RecordBatchHeader::new_checked(&buf[..len]).unwrap();
        assert_eq!(
            (h.producer_id(), h.producer_epoch(), h.base_sequence()),
            (1234, 5, 42)
        );
        assert_eq!(h.verify_crc(), Ok(()));

        set_producer_state(&mut buf[..len], 99, 6, 0).unwrap();
        let h = RecordBatchHeader::new_checked(&buf[..len]).unwrap();
        assert_eq!(
            (h.producer_id(), h.producer_epoch(), h.base_sequence()),
            (99, 6, 0)
        );
        assert_eq!(h.verify_crc(), Ok(()));

        // Same bytes as closing with that state in the first place.
        let mut again = [0u8; 128];
        again[..len].copy_from_slice(&buf[..len]);
        b.close(&mut again, &BatchMeta::idempotent(99, 6, 0))
            .unwrap();
        assert_eq!(&again[..len], &buf[..len]);

        assert!(matches!(
            set_producer_state(&mut [0u8; 10], 1, 1, 1),
            Err(WriteError::InvalidBatch(_))
        ));
    }

    #[test]
    fn test_does_not_fit_changes_nothing() {
        let mut buf = [0u8; 80];
        let mut b = BatchBuilder::start(&buf).unwrap();
        b.append(&mut buf, &record(1, None, Some(&[1; 5]), &[]))
            .unwrap();
        let before_state = b;
        let before_bytes = buf;
        let err = b
            .append(&mut buf, &record(2, None, Some(&[2; 20]), &[]))
            .unwrap_err();
        assert!(matches!(
            err,
            WriteError::DoesNotFit {
                needed: 27,
                available: 7
            }
        ));
        assert_eq!(b, before_state);
        assert_eq!(buf, before_bytes);
        assert!(BatchBuilder::start(&buf[..60]).is_err());
    }

    #[test]
    fn test_timestamps_follow_memory_records_builder() {
        let mut buf = [0u8; 256];
        let mut b = BatchBuilder::start(&buf).unwrap();
        assert_eq!(
            b.append(&mut buf, &record(-2, None, None, &[])),
            Err(WriteError::InvalidTimestamp { timestamp: -2 })
        );
        for ts in [500, 100, 900, 300] {
            b.append(&mut buf, &record(ts, None, None, &[])).unwrap();
        }
        assert_eq!(b.base_timestamp(), Some(500));
        assert_eq!(b.max_timestamp(), 900);
        let len = b.close(&mut buf, &BatchMeta::default()).unwrap();
        let h = RecordBatchHeader::new_checked(&buf[..len]).unwrap();
        assert_eq!(h.base_timestamp(), 500);
        assert_eq!(h.max_timestamp(), 900);
        assert_eq!(h.last_offset_delta(), 3);
        assert_eq!(h.record_count(), 4);

        // All records without a timestamp: max stays -1, as in Java.
        let mut b = BatchBuilder::start(&buf).unwrap();
        b.append(&mut buf, &record(-1, None, None, &[])).unwrap();
        assert_eq!(b.max_timestamp(), -1);
    }

    #[test]
    fn test_empty_batch_cannot_close() {
        let mut buf = [0u8; 64];
        let b = BatchBuilder::start(&buf).unwrap();
        assert_eq!(
            b.close(&mut buf, &BatchMeta::default()),
            Err(WriteError::Empty)
        );
    }

    /// A test codec: a marker byte, then the records reversed.
    struct Reverse;
    impl Compressor for Reverse {
        fn supports(&self, codec: CompressionType) -> bool {
            codec == CompressionType::Lz4
        }
        fn compress(
            &mut self,
            codec: CompressionType,
            level: i32,
            input: &[u8],
            output: &mut [u8],
        ) -> Result<usize, CodecError> {
            assert_eq!((codec, level), (CompressionType::Lz4, 9));
            let out = output
                .get_mut(..input.len() + 1)
                .ok_or(CodecError::OutputTooSmall)?;
            out[0] = 0xAA;
            for (o, i) in out[1..].iter_mut().zip(input.iter().rev()) {
                *o = *i;
            }
            Ok(input.len() + 1)
        }
    }

    #[test]
    fn test_close_compressed_uses_codec() {
        let mut buf = [0u8; 128];
        let mut b = BatchBuilder::start(&buf).unwrap();
        b.append(&mut buf, &record(1, None, Some(b"abc"), &[]))
            .unwrap();
        let records: Vec<u8> = buf[61..b.size_in_bytes()].to_vec();
        assert_eq!(b.records_size(), records.len());
        let mut scratch = [0u8; 64];
        let (lz4, level) = (CompressionType::Lz4, 9);
        let meta = BatchMeta::idempotent(7, 1, 42);
        let len = b
            .close_compressed(&mut buf, &meta, &mut Reverse, lz4, level, &mut scratch)
            .unwrap();
        assert_eq!(len, b.size_in_bytes() + 1);
        let h = RecordBatchHeader::new_checked(&buf[..len]).unwrap();
        // Attributes bits 0-2 carry the codec; batchLength covers the compressed records.
        assert_eq!(h.attributes(), 3);
        assert_eq!(h.compression(), Ok(CompressionType::Lz4));
        assert_eq!(h.batch_length() as usize, len - 12);
        assert_eq!((h.record_count(), h.last_offset_delta()), (1, 0));
        assert_eq!(
            (h.producer_id(), h.producer_epoch(), h.base_sequence()),
            (7, 1, 42)
        );
        // The CRC32C covers attributes to the end: the compressed bytes.
        assert_eq!(h.verify_crc(), Ok(()));
        assert_eq!(h.crc(), crc32c(&buf[21..len]));
        let mut rev = records.clone();
        rev.reverse();
        assert_eq!(buf[61], 0xAA);
        assert_eq!(&buf[62..len], &rev[..]);
    }

    #[test]
    fn test_close_compressed_failure_leaves_records_intact() {
        let mut buf = [0u8; 128];
        let mut b = BatchBuilder::start(&buf).unwrap();
        b.append(&mut buf, &record(1, None, Some(b"abc"), &[]))
            .unwrap();
        let before = buf;
        let meta = BatchMeta::default();
        let mut tiny = [0u8; 2];
        assert_eq!(
            b.close_compressed(
                &mut buf,
                &meta,
                &mut Reverse,
                CompressionType::Lz4,
                9,
                &mut tiny
            ),
            Err(WriteError::Codec(CodecError::OutputTooSmall))
        );
        assert_eq!(buf, before);
        // The output does not fit back into a batch filled to its last byte.
        let end = b.size_in_bytes();
        let mut scratch = [0u8; 64];
        assert_eq!(
            b.close_compressed(
                &mut buf[..end],
                &meta,
                &mut Reverse,
                CompressionType::Lz4,
                9,
                &mut scratch
            ),
            Err(WriteError::DoesNotFit {
                needed: end - 61 + 1,
                available: end - 61
            })
        );
        assert_eq!(buf, before);
        // Closed uncompressed instead: a valid batch with compression bits 0.
        let len = b.close(&mut buf[..end], &meta).unwrap();
        let h = RecordBatchHeader::new_checked(&buf[..len]).unwrap();
        assert_eq!(h.compression(), Ok(CompressionType::None));
        assert_eq!(h.verify_crc(), Ok(()));
    }

    /// Records read back and re-encoded from index 1 on (new offset and timestamp deltas,
    /// headers copied) give the same bytes as appending the original records.
    #[test]
    fn test_append_decoded_matches_append() {
        use super::super::reader::RecordBatchReader;
        let h1 = [
            Header {
                key: "a",
                value: Some(b"1"),
            },
            Header {
                key: "bb",
                value: None,
            },
        ];
        let originals = [
            record(5_000, Some(b"k0"), Some(b"v0"), &[]),
            record(4_000, None, Some(&[7u8; 200]), &h1),
            record(-1, Some(b""), None, &h1[1..]),
            record(9_000_000, Some(b"k3"), Some(b"v3"), &[]),
        ];
        let mut buf = [0u8; 1024];
        let mut b = BatchBuilder::start(&buf).unwrap();
        for r in &originals {
            b.append(&mut buf, r).unwrap();
        }
        let len = b.close(&mut buf, &BatchMeta::default()).unwrap();

        let mut expected = [0u8; 1024];
        let mut e = BatchBuilder::start(&expected).unwrap();
        for r in &originals[1..] {
            e.append(&mut expected, r).unwrap();
        }
        let elen = e.close(&mut expected, &BatchMeta::default()).unwrap();

        let batch = RecordBatchReader::new(&buf[..len]).next().unwrap().unwrap();
        let mut out = [0u8; 1024];
        let mut o = BatchBuilder::start(&out).unwrap();
        for r in batch.records().unwrap().skip(1) {
            let r = r.unwrap();
            let want = o.next_record_size(&originals[1 + o.record_count() as usize]);
            assert_eq!(o.append_decoded(&mut out, &r), want);
        }
        let olen = o.close(&mut out, &BatchMeta::default()).unwrap();
        assert_eq!(&out[..olen], &expected[..elen]);

        // Does not fit: nothing changes.
        let first = batch.records().unwrap().nth(1).unwrap().unwrap();
        let mut small = [0u8; 100];
        let mut sb = BatchBuilder::start(&small).unwrap();
        assert!(matches!(
            sb.append_decoded(&mut small, &first),
            Err(WriteError::DoesNotFit { .. })
        ));
        assert!(sb.is_empty());
    }
}
