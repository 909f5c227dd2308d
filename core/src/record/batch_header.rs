//! The 61-byte header of a RecordBatch v2, as a checked view over bytes.
//!
//! The batch's own fields (offsets, producer state, CRC): not a record's key-value
//! [`Header`](super::Header)s, nor the request and response headers of
//! [`protocol`](crate::protocol). See [`RecordBatchHeader`] for the layout.

use core::fmt;

use crate::protocol::DecodeError;

use super::crc::crc32c;

/// Byte ranges of the header fields (see [`RecordBatchHeader`] for the layout).
pub mod field {
    use core::ops::Range;

    /// A field's byte range within the batch.
    pub type Field = Range<usize>;

    /// `baseOffset: int64`.
    pub const BASE_OFFSET: Field = 0..8;
    /// `batchLength: int32`, the number of bytes that follow this field.
    pub const BATCH_LENGTH: Field = 8..12;
    /// `partitionLeaderEpoch: int32`.
    pub const PARTITION_LEADER_EPOCH: Field = 12..16;
    /// `magic: int8`.
    pub const MAGIC: Field = 16..17;
    /// `crc: uint32`.
    pub const CRC: Field = 17..21;
    /// `attributes: int16`.
    pub const ATTRIBUTES: Field = 21..23;
    /// `lastOffsetDelta: int32`.
    pub const LAST_OFFSET_DELTA: Field = 23..27;
    /// `baseTimestamp: int64`.
    pub const BASE_TIMESTAMP: Field = 27..35;
    /// `maxTimestamp: int64`.
    pub const MAX_TIMESTAMP: Field = 35..43;
    /// `producerId: int64`.
    pub const PRODUCER_ID: Field = 43..51;
    /// `producerEpoch: int16`.
    pub const PRODUCER_EPOCH: Field = 51..53;
    /// `baseSequence: int32`.
    pub const BASE_SEQUENCE: Field = 53..57;
    /// `recordCount: int32`.
    pub const RECORD_COUNT: Field = 57..61;
    /// Offset of the first record (the header's length).
    pub const RECORDS: usize = 61;
    /// First byte covered by the CRC (the attributes).
    pub const CRC_START: usize = ATTRIBUTES.start;
}

/// Size of the batch header, Kafka's `DefaultRecordBatch.RECORD_BATCH_OVERHEAD`.
pub const RECORD_BATCH_OVERHEAD: usize = field::RECORDS;
/// Bytes before `batchLength` counts (baseOffset + batchLength), Kafka's `LOG_OVERHEAD`.
pub const LOG_OVERHEAD: usize = 12;
/// The magic byte of RecordBatch v2.
pub const MAGIC_V2: i8 = 2;
/// `producerId` of a batch without idempotence.
pub const NO_PRODUCER_ID: i64 = -1;
/// `producerEpoch` of a batch without idempotence.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// `baseSequence` of a batch without idempotence.
pub const NO_SEQUENCE: i32 = -1;
/// `partitionLeaderEpoch` written by producers.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// A record timestamp meaning "none" (`RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_MASK: i16 = 0x08;
const TRANSACTIONAL_MASK: i16 = 0x10;
const CONTROL_MASK: i16 = 0x20;

/// A compression codec, as coded in the low three bits of a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CompressionType {
    /// No compression (code 0).
    #[default]
    None,
    /// gzip (code 1).
    Gzip,
    /// Snappy, in Kafka's xerial framing (code 2).
    Snappy,
    /// LZ4 frame format (code 3).
    Lz4,
    /// Zstandard (code 4).
    Zstd,
}

impl CompressionType {
    /// The attribute code (0..=4).
    pub const fn id(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }

    /// The codec with attribute code `id`, if Kafka defines one.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            0 => Some(Self::None),
            1 => Some(Self::Gzip),
            2 => Some(Self::Snappy),
            3 => Some(Self::Lz4),
            4 => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The name used by the `compression.type` setting.
    pub const fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

impl fmt::Display for CompressionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a batch's timestamps mean (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer (bit clear); what producers write.
    #[default]
    CreateTime,
    /// Set by the broker on append (bit set); `maxTimestamp` is then the append time.
    LogAppendTime,
}

/// The attributes field of a batch header, as Kafka's `DefaultRecordBatch.computeAttributes`.
pub(crate) const fn attributes(
    compression: CompressionType,
    timestamp_type: TimestampType,
    is_transactional: bool,
    is_control: bool,
) -> i16 {
    let mut a = compression.id() as i16;
    if matches!(timestamp_type, TimestampType::LogAppendTime) {
        a |= TIMESTAMP_TYPE_MASK;
    }
    if is_transactional {
        a |= TRANSACTIONAL_MASK;
    }
    if is_control {
        a |= CONTROL_MASK;
    }
    a
}

/// A checked view of a RecordBatch v2 header over a buffer (smoltcp style).
///
/// Layout (Kafka's `DefaultRecordBatch`), all integers big-endian:
///
/// ```text
/// offset  size  field
///      0     8  baseOffset
///      8     4  batchLength            bytes after this field (total length - 12)
///     12     4  partitionLeaderEpoch
///     16     1  magic                  = 2
///     17     4  crc                    CRC32C of bytes 21..end of batch
///     21     2  attributes             compression 0..2, timestamp type 3, transactional 4,
///                                      control 5, delete horizon 6
///     23     4  lastOffsetDelta
///     27     8  baseTimestamp
///     35     8  maxTimestamp
///     43     8  producerId
///     51     2  producerEpoch
///     53     4  baseSequence
///     57     4  recordCount
///     61        records
/// ```
///
/// The buffer holds at least the 61 header bytes (checked by [`new_checked`]); it may
/// hold the whole batch and more. Getters and setters cannot fail or panic after that check.
/// Methods that need the whole batch ([`compute_crc`], [`fill_crc`], [`total_len`])
/// check `batchLength` against the buffer and return a [`DecodeError`] when it does not fit.
///
/// [`new_checked`]: Self::new_checked
/// [`compute_crc`]: Self::compute_crc
/// [`fill_crc`]: Self::fill_crc
/// [`total_len`]: Self::total_len
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatchHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> RecordBatchHeader<T> {
    /// Wraps `buffer`, checking that it holds the 61 header bytes.
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        if buffer.as_ref().len() < RECORD_BATCH_OVERHEAD {
            return Err(DecodeError::UnexpectedEof);
        }
        Ok(Self { buffer })
    }

    /// Returns the wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The wrapped buffer.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    #[inline(always)]
    fn get<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        // Always present: `new_checked` guaranteed 61 bytes and every field lies below 61.
        if let Some(src) = self.buffer.as_ref().get(at..at + N) {
            out.copy_from_slice(src);
        }
        out
    }

    /// `baseOffset`: offset of the first record (0 from producers; set by the broker).
    pub fn base_offset(&self) -> i64 {
        i64::from_be_bytes(self.get(field::BASE_OFFSET.start))
    }

    /// `batchLength`: bytes of the batch after this field (total length minus 12).
    pub fn batch_length(&self) -> i32 {
        i32::from_be_bytes(self.get(field::BATCH_LENGTH.start))
    }

    /// `partitionLeaderEpoch` (-1 from producers).
    pub fn partition_leader_epoch(&self) -> i32 {
        i32::from_be_bytes(self.get(field::PARTITION_LEADER_EPOCH.start))
    }

    /// `magic` (2 for this format).
    pub fn magic(&self) -> i8 {
        i8::from_be_bytes(self.get(field::MAGIC.start))
    }

    /// `crc`: the stored CRC32C.
    pub fn crc(&self) -> u32 {
        u32::from_be_bytes(self.get(field::CRC.start))
    }

    /// `attributes`, raw.
    pub fn attributes(&self) -> i16 {
        i16::from_be_bytes(self.get(field::ATTRIBUTES.start))
    }

    /// The compression codec of the records (attribute bits 0..2).
    pub fn compression(&self) -> Result<CompressionType, DecodeError> {
        let code = (self.attributes() & COMPRESSION_MASK) as u8;
        CompressionType::from_id(code).ok_or(DecodeError::UnknownCompression { code })
    }

    /// The timestamp type (attribute bit 3).
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_MASK != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch is part of a transaction (attribute bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_MASK != 0
    }

    /// Whether the batch is a control batch (attribute bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_MASK != 0
    }

    /// `lastOffsetDelta`: offset delta of the last record (record count - 1 from producers).
    pub fn last_offset_delta(&self) -> i32 {
        i32::from_be_bytes(self.get(field::LAST_OFFSET_DELTA.start))
    }

    /// `baseTimestamp`: timestamp of the first record, in wall-clock milliseconds.
    pub fn base_timestamp(&self) -> i64 {
        i64::from_be_bytes(self.get(field::BASE_TIMESTAMP.start))
    }

    /// `maxTimestamp`: the largest record timestamp, in wall-clock milliseconds.
    pub fn max_timestamp(&self) -> i64 {
        i64::from_be_bytes(self.get(field::MAX_TIMESTAMP.start))
    }

    /// `producerId` (-1 without idempotence).
    pub fn producer_id(&self) -> i64 {
        i64::from_be_bytes(self.get(field::PRODUCER_ID.start))
    }

    /// `producerEpoch` (-1 without idempotence).
    pub fn producer_epoch(&self) -> i16 {
        i16::from_be_bytes(self.get(field::PRODUCER_EPOCH.start))
    }

    /// `baseSequence` (-1 without idempotence).
    pub fn base_sequence(&self) -> i32 {
        i32::from_be_bytes(self.get(field::BASE_SEQUENCE.start))
    }

    /// `recordCount`.
    pub fn record_count(&self) -> i32 {
        i32::from_be_bytes(self.get(field::RECORD_COUNT.start))
    }

    /// Total bytes of the batch (`batchLength + 12`), checked to be at least a header and to
    /// lie within the buffer.
    pub fn total_len(&self) -> Result<usize, DecodeError> {
        let batch_length =
            usize::try_from(self.batch_length()).map_err(|_| DecodeError::InvalidLength)?;
        let total = batch_length
            .checked_add(LOG_OVERHEAD)
            .ok_or(DecodeError::InvalidLength)?;
        if total < RECORD_BATCH_OVERHEAD {
            return Err(DecodeError::InvalidLength);
        }
        if total > self.buffer.as_ref().len() {
            return Err(DecodeError::UnexpectedEof);
        }
        Ok(total)
    }

    /// The CRC32C of the batch as it is now (attributes to the end of the batch).
    pub fn compute_crc(&self) -> Result<u32, DecodeError> {
        let total = self.total_len()?;
        let covered = self
            .buffer
            .as_ref()
            .get(field::CRC_START..total)
            .ok_or(DecodeError::UnexpectedEof)?;
        Ok(crc32c(covered))
    }

    /// Checks the stored CRC against the content.
    pub fn verify_crc(&self) -> Result<(), DecodeError> {
        let computed = self.compute_crc()?;
        let stored = self.crc();
        if stored == computed {
            Ok(())
        } else {
            Err(DecodeError::CrcMismatch { stored, computed })
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> RecordBatchHeader<T> {
    #[inline(always)]
    fn put<const N: usize>(&mut self, at: usize, bytes: [u8; N]) {
        // Always present: see `get`.
        if let Some(dst) = self.buffer.as_mut().get_mut(at..at + N) {
            dst.copy_from_slice(&bytes);
        }
    }

    /// Sets `baseOffset`.
    pub fn set_base_offset(&mut self, v: i64) {
        self.put(field::BASE_OFFSET.start, v.to_be_bytes());
    }

    /// Sets `batchLength`.
    pub fn set_batch_length(&mut self, v: i32) {
        self.put(field::BATCH_LENGTH.start, v.to_be_bytes());
    }

    /// Sets `partitionLeaderEpoch`.
    pub fn set_partition_leader_epoch(&mut self, v: i32) {
        self.put(field::PARTITION_LEADER_EPOCH.start, v.to_be_bytes());
    }

    /// Sets `magic`.
    pub fn set_magic(&mut self, v: i8) {
        self.put(field::MAGIC.start, v.to_be_bytes());
    }

    /// Sets `crc` (see [`fill_crc`](Self::fill_crc) to compute it).
    pub fn set_crc(&mut self, v: u32) {
        self.put(field::CRC.start, v.to_be_bytes());
    }

    /// Sets `attributes`.
    pub fn set_attributes(&mut self, v: i16) {
        self.put(field::ATTRIBUTES.start, v.to_be_bytes());
    }

    /// Sets `lastOffsetDelta`.
    pub fn set_last_offset_delta(&mut self, v: i32) {
        self.put(field::LAST_OFFSET_DELTA.start, v.to_be_bytes());
    }

    /// Sets `baseTimestamp`.
    pub fn set_base_timestamp(&mut self, v: i64) {
        self.put(field::BASE_TIMESTAMP.start, v.to_be_bytes());
    }

    /// Sets `maxTimestamp`.
    pub fn set_max_timestamp(&mut self, v: i64) {
        self.put(field::MAX_TIMESTAMP.start, v.to_be_bytes());
    }

    /// Sets `producerId`.
    pub fn set_producer_id(&mut self, v: i64) {
        self.put(field::PRODUCER_ID.start, v.to_be_bytes());
    }

    /// Sets `producerEpoch`.
    pub fn set_producer_epoch(&mut self, v: i16) {
        self.put(field::PRODUCER_EPOCH.start, v.to_be_bytes());
    }

    /// Sets `baseSequence`.
    pub fn set_base_sequence(&mut self, v: i32) {
        self.put(field::BASE_SEQUENCE.start, v.to_be_bytes());
    }

    /// Sets `recordCount`.
    pub fn set_record_count(&mut self, v: i32) {
        self.put(field::RECORD_COUNT.start, v.to_be_bytes());
    }

    /// Computes the CRC32C over the batch (per `batchLength`) and stores it.
    pub fn fill_crc(&mut self) -> Result<u32, DecodeError> {
        let crc = self.compute_crc()?;
        self.set_crc(crc);
        Ok(crc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A header written by hand from the layout above.
    const HEADER: [u8; 61] = [
        0, 0, 0, 0, 0, 0, 0, 7, // baseOffset 7
        0, 0, 0, 49, // batchLength 49 (header only)
        0, 0, 0, 5, // partitionLeaderEpoch 5
        2, // magic
        0xDE, 0xAD, 0xBE, 0xEF, // crc
        0x00, 0x13, // attributes: lz4, transactional
        0, 0, 0, 2, // lastOffsetDelta
        0, 0, 0, 0, 0, 0, 0x03, 0xE8, // baseTimestamp 1000
        0, 0, 0, 0, 0, 0, 0x07, 0xD0, // maxTimestamp 2000
        0, 0, 0, 0, 0, 0, 0, 42, // producerId 42
        0, 3, // producerEpoch 3
        0, 0, 0, 9, // baseSequence 9
        0, 0, 0, 3, // recordCount 3
    ];

    #[test]
    fn test_parse() {
        let h = RecordBatchHeader::new_checked(&HEADER[..]).unwrap();
        assert_eq!(h.base_offset(), 7);
        assert_eq!(h.batch_length(), 49);
        assert_eq!(h.partition_leader_epoch(), 5);
        assert_eq!(h.magic(), 2);
        assert_eq!(h.crc(), 0xDEAD_BEEF);
        assert_eq!(h.compression(), Ok(CompressionType::Lz4));
        assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
        assert!(h.is_transactional());
        assert!(!h.is_control());
        assert_eq!(h.last_offset_delta(), 2);
        assert_eq!(h.base_timestamp(), 1000);
        assert_eq!(h.max_timestamp(), 2000);
        assert_eq!(h.producer_id(), 42);
        assert_eq!(h.producer_epoch(), 3);
        assert_eq!(h.base_sequence(), 9);
        assert_eq!(h.record_count(), 3);
        assert_eq!(h.total_len(), Ok(61));
        assert_eq!(h.compute_crc(), Ok(crc32c(&HEADER[21..])));
    }

    #[test]
    fn test_emit() {
        let mut buf = [0u8; 61];
        let mut h = RecordBatchHeader::new_checked(&mut buf[..]).unwrap();
        h.set_base_offset(7);
        h.set_batch_length(49);
        h.set_partition_leader_epoch(5);
        h.set_magic(2);
        h.set_crc(0xDEAD_BEEF);
        h.set_attributes(attributes(
            CompressionType::Lz4,
            TimestampType::CreateTime,
            true,
            false,
        ));
        h.set_last_offset_delta(2);
        h.set_base_timestamp(1000);
        h.set_max_timestamp(2000);
        h.set_producer_id(42);
        h.set_producer_epoch(3);
        h.set_base_sequence(9);
        h.set_record_count(3);
        assert_eq!(buf, HEADER);
    }

    #[test]
    fn test_checks() {
        assert_eq!(
            RecordBatchHeader::new_checked(&HEADER[..60]).err(),
            Some(DecodeError::UnexpectedEof)
        );
        let mut long = [0u8; 61];
        long.copy_from_slice(&HEADER);
        long[11] = 50; // one byte past the buffer
        let h = RecordBatchHeader::new_checked(&long[..]).unwrap();
        assert_eq!(h.total_len(), Err(DecodeError::UnexpectedEof));
        long[11] = 48; // shorter than a header
        let h = RecordBatchHeader::new_checked(&long[..]).unwrap();
        assert_eq!(h.total_len(), Err(DecodeError::InvalidLength));
        long[8] = 0x80; // negative
        let h = RecordBatchHeader::new_checked(&long[..]).unwrap();
        assert_eq!(h.total_len(), Err(DecodeError::InvalidLength));
    }

    #[test]
    fn test_fill_crc() {
        let mut buf = HEADER;
        let mut h = RecordBatchHeader::new_checked(&mut buf[..]).unwrap();
        assert!(matches!(
            h.verify_crc(),
            Err(DecodeError::CrcMismatch { .. })
        ));
        h.fill_crc().unwrap();
        assert_eq!(h.verify_crc(), Ok(()));
    }

    #[test]
    fn test_attributes() {
        assert_eq!(
            attributes(
                CompressionType::None,
                TimestampType::CreateTime,
                false,
                false
            ),
            0
        );
        assert_eq!(
            attributes(
                CompressionType::Zstd,
                TimestampType::LogAppendTime,
                true,
                true
            ),
            0x3C
        );
        for id in 0..8u8 {
            match CompressionType::from_id(id) {
                Some(c) => assert_eq!(c.id(), id),
                None => assert!(id > 4),
            }
        }
    }
}
