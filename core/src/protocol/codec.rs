//! Primitive types of the Kafka protocol over byte slices.
//!
//! [`Reader`] is a cursor over `&'a [u8]` whose reads borrow from the input; [`Writer`] is a
//! cursor over `&'a mut [u8]`. Multi-byte integers are big-endian. Variable-length integers
//! follow Kafka's `ByteUtils`: `varint`/`varlong` are zig-zag encoded (signed), the
//! "unsigned varint" of flexible versions is plain LEB128 (sizes and encodings in
//! `varint.rs`, shared with the record batch builder).

use core::fmt;

use super::varint::{
    put_uvarint_exact, unsigned_varint_len, unsigned_varlong_len, unzigzag32, unzigzag64,
    varint_len, zigzag32, zigzag64,
};

/// Why some bytes could not be decoded.
///
/// Shared by every decoder of the crate (protocol primitives, messages and record batches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    UnexpectedEof,
    /// A variable-length integer had more bytes than its type allows (5 for 32 bits, 10 for
    /// 64 bits).
    VarintTooLong,
    /// A length or count was negative (other than the `-1` of null), or larger than the bytes
    /// left in the input.
    InvalidLength,
    /// A non-nullable field was encoded as null.
    UnexpectedNull,
    /// A string was not valid UTF-8.
    InvalidUtf8,
    /// A record batch had a magic byte other than 2.
    UnsupportedMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// A record batch's CRC32C did not match its content.
    CrcMismatch {
        /// The CRC stored in the batch header.
        stored: u32,
        /// The CRC computed over the batch.
        computed: u32,
    },
    /// The compression codec in a batch's attributes is not one Kafka defines (5..=7).
    UnknownCompression {
        /// The three compression bits of the attributes.
        code: u8,
    },
    /// The records of a compressed batch cannot be iterated without decompressing them first.
    Compressed,
    /// Bytes were left over where a structure should have ended (for example inside a record
    /// whose declared length was longer than its fields).
    TrailingBytes,
    /// The message does not exist in this API version (or this crate does not support it).
    UnsupportedVersion {
        /// The version asked for.
        version: i16,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::UnexpectedEof => f.write_str("unexpected end of input"),
            Self::VarintTooLong => f.write_str("variable-length integer too long"),
            Self::InvalidLength => f.write_str("invalid length or count"),
            Self::UnexpectedNull => f.write_str("null in a non-nullable field"),
            Self::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            Self::UnsupportedMagic { magic } => {
                write!(f, "unsupported record batch magic {magic} (expected 2)")
            }
            Self::CrcMismatch { stored, computed } => write!(
                f,
                "record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Self::UnknownCompression { code } => write!(f, "unknown compression codec {code}"),
            Self::Compressed => f.write_str("records are compressed"),
            Self::TrailingBytes => f.write_str("unexpected trailing bytes"),
            Self::UnsupportedVersion { version } => write!(f, "unsupported API version {version}"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer has fewer bytes left than the write needs. Nothing of this write was
    /// written; retry with a buffer that has at least `needed` bytes left.
    BufferTooSmall {
        /// Bytes the failed write needed.
        needed: usize,
        /// Bytes that were left in the buffer.
        available: usize,
    },
    /// A string, byte array or array is longer than its wire length field can express
    /// (`i16::MAX` bytes for a string, `i32::MAX` for bytes and arrays).
    LengthOverflow,
    /// The message does not exist in this API version (or this crate does not support it).
    UnsupportedVersion {
        /// The version asked for.
        version: i16,
    },
    /// A field that is not nullable in this version was `None`.
    UnexpectedNull,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "output buffer too small: needed {needed} bytes, {available} available"
            ),
            Self::LengthOverflow => f.write_str("length does not fit its wire field"),
            Self::UnsupportedVersion { version } => write!(f, "unsupported API version {version}"),
            Self::UnexpectedNull => f.write_str("null in a field not nullable in this version"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// A `UUID` (topic ids): 16 bytes, compared and written as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID Kafka uses for "no topic id".
    pub const ZERO: Self = Self([0; 16]);

    /// Whether this is [`Uuid::ZERO`].
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
}

/// Bytes taken by the length prefix of a string, bytes or array field of `len` elements
/// (`None` = null), compact when `flexible`.
pub const fn len_prefix_len(flexible: bool, len: Option<usize>) -> usize {
    match (flexible, len) {
        (true, None) => 1,
        // A length beyond `u32` cannot be written at all; its size does not matter.
        (true, Some(len)) => unsigned_varint_len((len as u32).wrapping_add(1)),
        (false, _) => 4,
    }
}

/// Bytes taken by a `NULLABLE_STRING` (compact when `flexible`), prefix included.
pub const fn nullable_string_len(flexible: bool, s: Option<&str>) -> usize {
    match s {
        None if flexible => 1,
        None => 2,
        Some(s) if flexible => len_prefix_len(true, Some(s.len())).saturating_add(s.len()),
        Some(s) => 2usize.saturating_add(s.len()),
    }
}

/// Bytes taken by `NULLABLE_BYTES` of `len` bytes (compact when `flexible`), prefix included.
pub const fn nullable_bytes_len(flexible: bool, len: Option<usize>) -> usize {
    match len {
        None => len_prefix_len(flexible, None),
        Some(l) => len_prefix_len(flexible, len).saturating_add(l),
    }
}

/// Bytes taken by an empty tagged-field section: one when `flexible`, none otherwise.
pub const fn empty_tagged_fields_len(flexible: bool) -> usize {
    flexible as usize
}

/// A cursor that decodes Kafka primitives from a borrowed byte slice.
///
/// Every read either returns a value and advances, or returns a [`DecodeError`] and leaves
/// the cursor where it was before the failed read *started* for fixed-size reads; after a
/// failed variable-size read the cursor position is unspecified (callers abandon the message).
///
/// ```
/// use kafka_edge_core::protocol::Reader;
/// let mut r = Reader::new(&[0x00, 0x2a, 0x7e, 0x00, 0x02, b'h', b'i']);
/// assert_eq!(r.read_i16(), Ok(42));
/// assert_eq!(r.read_varint(), Ok(63));
/// assert_eq!(r.read_string(), Ok("hi"));
/// assert!(r.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
    consumed: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        Self {
            rest: buf,
            consumed: 0,
        }
    }

    /// Bytes consumed so far.
    pub const fn position(&self) -> usize {
        self.consumed
    }

    /// Bytes left to read.
    pub const fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Whether every byte has been read.
    pub const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The bytes not yet read (the cursor does not move).
    pub const fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Borrows the next `len` bytes.
    #[inline]
    pub fn read_bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let (head, tail) = self
            .rest
            .split_at_checked(len)
            .ok_or(DecodeError::UnexpectedEof)?;
        self.rest = tail;
        self.consumed += len;
        Ok(head)
    }

    /// Skips `len` bytes.
    pub fn skip(&mut self, len: usize) -> Result<(), DecodeError> {
        self.read_bytes(len).map(|_| ())
    }

    #[inline(always)]
    fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeError::UnexpectedEof)?;
        self.rest = tail;
        self.consumed += N;
        Ok(*head)
    }

    /// Reads an `INT8`.
    #[inline]
    pub fn read_i8(&mut self) -> Result<i8, DecodeError> {
        self.read_array::<1>().map(i8::from_be_bytes)
    }

    /// Reads an `INT16`.
    #[inline]
    pub fn read_i16(&mut self) -> Result<i16, DecodeError> {
        self.read_array::<2>().map(i16::from_be_bytes)
    }

    /// Reads an `INT32`.
    #[inline]
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        self.read_array::<4>().map(i32::from_be_bytes)
    }

    /// Reads an `INT64`.
    #[inline]
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        self.read_array::<8>().map(i64::from_be_bytes)
    }

    /// Reads a `UINT32`.
    #[inline]
    pub fn read_u32(&mut self) -> Result<u32, DecodeError> {
        self.read_array::<4>().map(u32::from_be_bytes)
    }

    /// Reads an `UNSIGNED_VARINT` (LEB128, at most 5 bytes).
    ///
    /// Like Kafka's `ByteUtils.readUnsignedVarint`, the fifth byte must not have its
    /// continuation bit set; bits beyond the 32nd are dropped.
    #[inline]
    pub fn read_unsigned_varint(&mut self) -> Result<u32, DecodeError> {
        let mut value: u32 = 0;
        let mut shift = 0u32;
        loop {
            let [b] = self.read_array::<1>()?;
            if shift == 28 {
                if b & 0x80 != 0 {
                    return Err(DecodeError::VarintTooLong);
                }
                return Ok(value | (u32::from(b) << 28));
            }
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// Reads a 64-bit unsigned LEB128 value (at most 10 bytes).
    #[inline]
    fn read_unsigned_varlong(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let [b] = self.read_array::<1>()?;
            if shift == 63 {
                if b & 0x80 != 0 {
                    return Err(DecodeError::VarintTooLong);
                }
                return Ok(value | (u64::from(b) << 63));
            }
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// Reads a `VARINT` (zig-zag encoded `i32`).
    #[inline]
    pub fn read_varint(&mut self) -> Result<i32, DecodeError> {
        self.read_unsigned_varint().map(unzigzag32)
    }

    /// Reads a `VARLONG` (zig-zag encoded `i64`).
    #[inline]
    pub fn read_varlong(&mut self) -> Result<i64, DecodeError> {
        self.read_unsigned_varlong().map(unzigzag64)
    }

    /// Turns a wire length (`-1` = null) into a checked length no larger than what is left.
    fn nullable_len(&self, len: i64) -> Result<Option<usize>, DecodeError> {
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| DecodeError::InvalidLength)?;
        if len > self.remaining() {
            return Err(DecodeError::InvalidLength);
        }
        Ok(Some(len))
    }

    fn utf8(bytes: &'a [u8]) -> Result<&'a str, DecodeError> {
        core::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// Reads a `NULLABLE_STRING` (`INT16` length, `-1` = null).
    pub fn read_nullable_string(&mut self) -> Result<Option<&'a str>, DecodeError> {
        let len = self.read_i16()?;
        match self.nullable_len(len.into())? {
            None => Ok(None),
            Some(len) => self.read_bytes(len).and_then(Self::utf8).map(Some),
        }
    }

    /// Reads a `STRING` (`INT16` length).
    pub fn read_string(&mut self) -> Result<&'a str, DecodeError> {
        self.read_nullable_string()?
            .ok_or(DecodeError::UnexpectedNull)
    }

    /// Reads a `COMPACT_NULLABLE_STRING` (unsigned varint length + 1, `0` = null).
    pub fn read_compact_nullable_string(&mut self) -> Result<Option<&'a str>, DecodeError> {
        let len = i64::from(self.read_unsigned_varint()?) - 1;
        match self.nullable_len(len)? {
            None => Ok(None),
            Some(len) => self.read_bytes(len).and_then(Self::utf8).map(Some),
        }
    }

    /// Reads a `COMPACT_STRING`.
    pub fn read_compact_string(&mut self) -> Result<&'a str, DecodeError> {
        self.read_compact_nullable_string()?
            .ok_or(DecodeError::UnexpectedNull)
    }

    /// Reads `NULLABLE_BYTES` (`INT32` length, `-1` = null).
    pub fn read_nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.read_i32()?;
        match self.nullable_len(len.into())? {
            None => Ok(None),
            Some(len) => self.read_bytes(len).map(Some),
        }
    }

    /// Reads `BYTES` (`INT32` length).
    pub fn read_bytes32(&mut self) -> Result<&'a [u8], DecodeError> {
        self.read_nullable_bytes()?
            .ok_or(DecodeError::UnexpectedNull)
    }

    /// Reads `COMPACT_NULLABLE_BYTES` (unsigned varint length + 1, `0` = null).
    pub fn read_compact_nullable_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = i64::from(self.read_unsigned_varint()?) - 1;
        match self.nullable_len(len)? {
            None => Ok(None),
            Some(len) => self.read_bytes(len).map(Some),
        }
    }

    /// Reads `COMPACT_BYTES`.
    pub fn read_compact_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        self.read_compact_nullable_bytes()?
            .ok_or(DecodeError::UnexpectedNull)
    }

    /// Reads bytes whose length is a zig-zag `VARINT` (`-1` = null), as in records and
    /// record headers.
    pub fn read_varint_bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.read_varint()?;
        match self.nullable_len(len.into())? {
            None => Ok(None),
            Some(len) => self.read_bytes(len).map(Some),
        }
    }

    /// Reads the element count of an `ARRAY` (`INT32`, `-1` = null).
    ///
    /// A count larger than the bytes left is rejected (every element takes at least one
    /// byte), as Kafka's generated code does, so callers can size work by it safely.
    pub fn read_array_len(&mut self) -> Result<Option<usize>, DecodeError> {
        let len = self.read_i32()?;
        self.nullable_len(len.into())
    }

    /// Reads the element count of a `COMPACT_ARRAY` (unsigned varint count + 1, `0` = null),
    /// with the same bound as [`read_array_len`](Self::read_array_len).
    pub fn read_compact_array_len(&mut self) -> Result<Option<usize>, DecodeError> {
        let len = i64::from(self.read_unsigned_varint()?) - 1;
        self.nullable_len(len)
    }

    /// Reads a `BOOLEAN` (any non-zero byte is `true`, as Kafka reads it).
    #[inline]
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        self.read_i8().map(|b| b != 0)
    }

    /// Reads a `UUID`.
    #[inline]
    pub fn read_uuid(&mut self) -> Result<Uuid, DecodeError> {
        self.read_array::<16>().map(Uuid)
    }

    /// Reads a `STRING`, compact when `flexible`.
    pub fn read_string_in(&mut self, flexible: bool) -> Result<&'a str, DecodeError> {
        self.read_nullable_string_in(flexible)?
            .ok_or(DecodeError::UnexpectedNull)
    }

    /// Reads a `NULLABLE_STRING`, compact when `flexible`.
    pub fn read_nullable_string_in(
        &mut self,
        flexible: bool,
    ) -> Result<Option<&'a str>, DecodeError> {
        if flexible {
            self.read_compact_nullable_string()
        } else {
            self.read_nullable_string()
        }
    }

    /// Reads `NULLABLE_BYTES` (or `RECORDS`), compact when `flexible`.
    pub fn read_nullable_bytes_in(
        &mut self,
        flexible: bool,
    ) -> Result<Option<&'a [u8]>, DecodeError> {
        if flexible {
            self.read_compact_nullable_bytes()
        } else {
            self.read_nullable_bytes()
        }
    }

    /// Reads the element count of a nullable `ARRAY`, compact when `flexible`.
    pub fn read_array_len_in(&mut self, flexible: bool) -> Result<Option<usize>, DecodeError> {
        if flexible {
            self.read_compact_array_len()
        } else {
            self.read_array_len()
        }
    }

    /// Reads and discards a tagged-field section when `flexible`; does nothing otherwise.
    pub fn skip_tagged_fields_in(&mut self, flexible: bool) -> Result<(), DecodeError> {
        if flexible {
            self.skip_tagged_fields()
        } else {
            Ok(())
        }
    }

    /// Reads a tagged-field section (flexible versions) and returns its fields, borrowed.
    ///
    /// The whole section is validated here, so iterating the result cannot fail; callers
    /// that know no tags simply drop it, which skips the unknown fields.
    pub fn read_tagged_fields(&mut self) -> Result<TaggedFields<'a>, DecodeError> {
        let count = self.read_unsigned_varint()?;
        let start = self.rest;
        let start_pos = self.consumed;
        for _ in 0..count {
            let _tag = self.read_unsigned_varint()?;
            let size = self.read_unsigned_varint()?;
            let size = usize::try_from(size).map_err(|_| DecodeError::InvalidLength)?;
            self.skip(size)?;
        }
        let len = self.consumed - start_pos;
        Ok(TaggedFields {
            reader: Reader::new(start.get(..len).unwrap_or_default()),
            remaining: count,
        })
    }

    /// Reads and discards a tagged-field section.
    pub fn skip_tagged_fields(&mut self) -> Result<(), DecodeError> {
        self.read_tagged_fields().map(|_| ())
    }
}

/// One tagged field of a flexible-version message: its tag and its raw, borrowed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaggedField<'a> {
    /// The field's tag.
    pub tag: u32,
    /// The field's encoded value.
    pub data: &'a [u8],
}

/// The fields of a validated tagged-field section, from [`Reader::read_tagged_fields`].
#[derive(Debug, Clone)]
pub struct TaggedFields<'a> {
    reader: Reader<'a>,
    remaining: u32,
}

impl TaggedFields<'_> {
    /// Number of fields not yet iterated.
    pub const fn len(&self) -> u32 {
        self.remaining
    }

    /// Whether no field is left.
    pub const fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'a> Iterator for TaggedFields<'a> {
    type Item = TaggedField<'a>;

    fn next(&mut self) -> Option<TaggedField<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // Validated by `read_tagged_fields`; a failure here would only end the iteration.
        let tag = self.reader.read_unsigned_varint().ok()?;
        let size = self.reader.read_unsigned_varint().ok()?;
        let data = self.reader.read_bytes(usize::try_from(size).ok()?).ok()?;
        Some(TaggedField { tag, data })
    }
}

/// A cursor that encodes Kafka primitives into a borrowed, fixed-size byte slice.
///
/// A write that does not fit returns [`EncodeError::BufferTooSmall`] and writes nothing.
///
/// ```
/// use kafka_edge_core::protocol::Writer;
/// let mut buf = [0u8; 8];
/// let mut w = Writer::new(&mut buf);
/// w.write_i16(42)?;
/// w.write_varint(-1)?;
/// w.write_string("hi")?;
/// assert_eq!(w.written(), &[0x00, 0x2a, 0x01, 0x00, 0x02, b'h', b'i']);
/// # Ok::<(), kafka_edge_core::protocol::EncodeError>(())
/// ```
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub const fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Bytes still free.
    pub const fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or_default()
    }

    /// Ends writing and returns the written part of the buffer.
    pub fn into_written(self) -> &'a mut [u8] {
        let pos = self.pos;
        self.buf.get_mut(..pos).unwrap_or_default()
    }

    /// Reserves the next `len` bytes and returns them for the caller to fill.
    #[inline(always)]
    pub fn reserve(&mut self, len: usize) -> Result<&mut [u8], EncodeError> {
        let available = self.remaining();
        if len > available {
            return Err(EncodeError::BufferTooSmall {
                needed: len,
                available,
            });
        }
        let start = self.pos;
        self.pos += len;
        self.buf
            .get_mut(start..start + len)
            .ok_or(EncodeError::BufferTooSmall {
                needed: len,
                available,
            })
    }

    /// Writes raw bytes.
    #[inline(always)]
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        self.reserve(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Writes an `INT8`.
    #[inline]
    pub fn write_i8(&mut self, v: i8) -> Result<(), EncodeError> {
        self.write_raw(&v.to_be_bytes())
    }

    /// Writes an `INT16`.
    #[inline]
    pub fn write_i16(&mut self, v: i16) -> Result<(), EncodeError> {
        self.write_raw(&v.to_be_bytes())
    }

    /// Writes an `INT32`.
    #[inline]
    pub fn write_i32(&mut self, v: i32) -> Result<(), EncodeError> {
        self.write_raw(&v.to_be_bytes())
    }

    /// Writes an `INT64`.
    #[inline]
    pub fn write_i64(&mut self, v: i64) -> Result<(), EncodeError> {
        self.write_raw(&v.to_be_bytes())
    }

    /// Writes a `UINT32`.
    #[inline]
    pub fn write_u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.write_raw(&v.to_be_bytes())
    }

    #[inline(always)]
    fn write_unsigned_varlong(&mut self, v: u64) -> Result<(), EncodeError> {
        put_uvarint_exact(self.reserve(unsigned_varlong_len(v))?, v);
        Ok(())
    }

    /// Writes an `UNSIGNED_VARINT`.
    #[inline]
    pub fn write_unsigned_varint(&mut self, v: u32) -> Result<(), EncodeError> {
        self.write_unsigned_varlong(v.into())
    }

    /// Writes a `VARINT` (zig-zag).
    #[inline]
    pub fn write_varint(&mut self, v: i32) -> Result<(), EncodeError> {
        self.write_unsigned_varlong(zigzag32(v).into())
    }

    /// Writes a `VARLONG` (zig-zag).
    #[inline]
    pub fn write_varlong(&mut self, v: i64) -> Result<(), EncodeError> {
        self.write_unsigned_varlong(zigzag64(v))
    }

    /// Writes a `NULLABLE_STRING` (`INT16` length, `-1` = null).
    pub fn write_nullable_string(&mut self, s: Option<&str>) -> Result<(), EncodeError> {
        match s {
            None => self.write_i16(-1),
            Some(s) => {
                let len = i16::try_from(s.len()).map_err(|_| EncodeError::LengthOverflow)?;
                self.ensure(2 + s.len())?;
                self.write_i16(len)?;
                self.write_raw(s.as_bytes())
            }
        }
    }

    /// Writes a `STRING`.
    pub fn write_string(&mut self, s: &str) -> Result<(), EncodeError> {
        self.write_nullable_string(Some(s))
    }

    /// Writes a `COMPACT_NULLABLE_STRING` (unsigned varint length + 1, `0` = null).
    pub fn write_compact_nullable_string(&mut self, s: Option<&str>) -> Result<(), EncodeError> {
        self.write_compact_nullable_bytes(s.map(str::as_bytes))
    }

    /// Writes a `COMPACT_STRING`.
    pub fn write_compact_string(&mut self, s: &str) -> Result<(), EncodeError> {
        self.write_compact_nullable_bytes(Some(s.as_bytes()))
    }

    /// Writes `NULLABLE_BYTES` (`INT32` length, `-1` = null).
    pub fn write_nullable_bytes(&mut self, b: Option<&[u8]>) -> Result<(), EncodeError> {
        match b {
            None => self.write_i32(-1),
            Some(b) => {
                let len = i32::try_from(b.len()).map_err(|_| EncodeError::LengthOverflow)?;
                self.ensure(4usize.saturating_add(b.len()))?;
                self.write_i32(len)?;
                self.write_raw(b)
            }
        }
    }

    /// Writes `BYTES`.
    pub fn write_bytes32(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        self.write_nullable_bytes(Some(b))
    }

    /// Writes `COMPACT_NULLABLE_BYTES` (unsigned varint length + 1, `0` = null).
    pub fn write_compact_nullable_bytes(&mut self, b: Option<&[u8]>) -> Result<(), EncodeError> {
        match b {
            None => self.write_unsigned_varint(0),
            Some(b) => {
                let len = compact_len(b.len())?;
                self.ensure(unsigned_varint_len(len).saturating_add(b.len()))?;
                self.write_unsigned_varint(len)?;
                self.write_raw(b)
            }
        }
    }

    /// Writes `COMPACT_BYTES`.
    pub fn write_compact_bytes(&mut self, b: &[u8]) -> Result<(), EncodeError> {
        self.write_compact_nullable_bytes(Some(b))
    }

    /// Writes bytes with a zig-zag `VARINT` length (`-1` = null), as in records.
    pub fn write_varint_bytes(&mut self, b: Option<&[u8]>) -> Result<(), EncodeError> {
        match b {
            None => self.write_varint(-1),
            Some(b) => {
                let len = i32::try_from(b.len()).map_err(|_| EncodeError::LengthOverflow)?;
                self.ensure(varint_len(len).saturating_add(b.len()))?;
                self.write_varint(len)?;
                self.write_raw(b)
            }
        }
    }

    /// Writes the element count of an `ARRAY` (`INT32`, `None` = null array).
    pub fn write_array_len(&mut self, len: Option<usize>) -> Result<(), EncodeError> {
        match len {
            None => self.write_i32(-1),
            Some(len) => {
                self.write_i32(i32::try_from(len).map_err(|_| EncodeError::LengthOverflow)?)
            }
        }
    }

    /// Writes the element count of a `COMPACT_ARRAY` (unsigned varint count + 1, `0` = null).
    pub fn write_compact_array_len(&mut self, len: Option<usize>) -> Result<(), EncodeError> {
        match len {
            None => self.write_unsigned_varint(0),
            Some(len) => self.write_unsigned_varint(compact_len(len)?),
        }
    }

    /// Writes a `BOOLEAN`.
    #[inline]
    pub fn write_bool(&mut self, v: bool) -> Result<(), EncodeError> {
        self.write_i8(i8::from(v))
    }

    /// Writes a `UUID`.
    #[inline]
    pub fn write_uuid(&mut self, v: Uuid) -> Result<(), EncodeError> {
        self.write_raw(&v.0)
    }

    /// Writes a `STRING`, compact when `flexible`.
    pub fn write_string_in(&mut self, flexible: bool, s: &str) -> Result<(), EncodeError> {
        self.write_nullable_string_in(flexible, Some(s))
    }

    /// Writes a `NULLABLE_STRING`, compact when `flexible`.
    pub fn write_nullable_string_in(
        &mut self,
        flexible: bool,
        s: Option<&str>,
    ) -> Result<(), EncodeError> {
        if flexible {
            self.write_compact_nullable_string(s)
        } else {
            self.write_nullable_string(s)
        }
    }

    /// Writes `NULLABLE_BYTES` (or `RECORDS`), compact when `flexible`.
    pub fn write_nullable_bytes_in(
        &mut self,
        flexible: bool,
        b: Option<&[u8]>,
    ) -> Result<(), EncodeError> {
        if flexible {
            self.write_compact_nullable_bytes(b)
        } else {
            self.write_nullable_bytes(b)
        }
    }

    /// Writes only the length prefix of `NULLABLE_BYTES` (or `RECORDS`) of `len` bytes
    /// (`None` = null), compact when `flexible`; the caller sends the bytes themselves.
    pub fn write_bytes_len_in(
        &mut self,
        flexible: bool,
        len: Option<usize>,
    ) -> Result<(), EncodeError> {
        match (flexible, len) {
            (true, None) => self.write_unsigned_varint(0),
            (true, Some(len)) => self.write_unsigned_varint(compact_len(len)?),
            (false, None) => self.write_i32(-1),
            (false, Some(len)) => {
                self.write_i32(i32::try_from(len).map_err(|_| EncodeError::LengthOverflow)?)
            }
        }
    }

    /// Writes the element count of a nullable `ARRAY`, compact when `flexible`.
    pub fn write_array_len_in(
        &mut self,
        flexible: bool,
        len: Option<usize>,
    ) -> Result<(), EncodeError> {
        if flexible {
            self.write_compact_array_len(len)
        } else {
            self.write_array_len(len)
        }
    }

    /// Writes an empty tagged-field section when `flexible`; nothing otherwise.
    pub fn write_empty_tagged_fields_in(&mut self, flexible: bool) -> Result<(), EncodeError> {
        if flexible {
            self.write_empty_tagged_fields()
        } else {
            Ok(())
        }
    }

    /// Writes an empty tagged-field section (a single `0`).
    pub fn write_empty_tagged_fields(&mut self) -> Result<(), EncodeError> {
        self.write_unsigned_varint(0)
    }

    /// Fails without writing when fewer than `len` bytes are left, so that a composite
    /// write (length + data) is all or nothing.
    fn ensure(&self, len: usize) -> Result<(), EncodeError> {
        let available = self.remaining();
        if len > available {
            Err(EncodeError::BufferTooSmall {
                needed: len,
                available,
            })
        } else {
            Ok(())
        }
    }
}

/// `len + 1` as the length prefix of a compact field; at most `i32::MAX` like Kafka.
fn compact_len(len: usize) -> Result<u32, EncodeError> {
    i32::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(1))
        .and_then(|l| u32::try_from(l).ok())
        .ok_or(EncodeError::LengthOverflow)
}

/// A Kafka message, or an element of one of its arrays, whose layout depends on the API
/// version.
///
/// Decoding borrows from the input; every decoder validates what it reads, so that the lazy
/// [`Array`]s it returns can be iterated without errors.
pub trait Message<'a>: Sized {
    /// Bytes [`encode`](Self::encode) writes for `version`.
    fn encoded_len(&self, version: i16) -> usize;

    /// Writes `self` as `version`; fails without panicking when `w` is too small.
    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError>;

    /// Reads one value of `version` from `r`.
    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError>;
}

/// `INT32` elements (`[]int32` arrays such as replica lists).
impl Message<'_> for i32 {
    fn encoded_len(&self, _version: i16) -> usize {
        4
    }

    fn encode(&self, _version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_i32(*self)
    }

    fn decode(_version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

/// An array field: either items the caller lends (to encode) or the validated, borrowed bytes
/// of a decoded array, whose elements are decoded lazily while iterating.
///
/// Iteration cannot fail: [`Array::decode`] has walked every element once already. Two arrays
/// are equal when their elements are, whatever their representation.
///
/// ```
/// use kafka_edge_core::protocol::{Array, Reader};
/// let items = [1i32, 2, 3];
/// let a = Array::from_slice(&items);
/// assert_eq!(a.iter().sum::<i32>(), 6);
/// let wire = [0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 8];
/// let b: Array<'_, i32> = Array::decode(0, false, &mut Reader::new(&wire))?;
/// assert_eq!(b.iter().collect::<Vec<_>>(), [7, 8]);
/// # Ok::<(), kafka_edge_core::protocol::DecodeError>(())
/// ```
pub struct Array<'a, T> {
    repr: ArrayRepr<'a, T>,
}

enum ArrayRepr<'a, T> {
    Items(&'a [T]),
    Wire {
        bytes: &'a [u8],
        len: usize,
        version: i16,
    },
}

impl<T> Clone for Array<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Array<'_, T> {}

impl<T> Clone for ArrayRepr<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for ArrayRepr<'_, T> {}

impl<T> Default for Array<'_, T> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<'a, T> Array<'a, T> {
    /// The empty array.
    pub const EMPTY: Self = Self {
        repr: ArrayRepr::Items(&[]),
    };

    /// An array of the given items, to encode.
    pub const fn from_slice(items: &'a [T]) -> Self {
        Self {
            repr: ArrayRepr::Items(items),
        }
    }

    /// Number of elements.
    pub const fn len(&self) -> usize {
        match self.repr {
            ArrayRepr::Items(items) => items.len(),
            ArrayRepr::Wire { len, .. } => len,
        }
    }

    /// Whether the array has no element.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a, T: Message<'a> + Copy> Array<'a, T> {
    /// The elements, decoded one by one for a decoded array.
    pub fn iter(&self) -> ArrayIter<'a, T> {
        ArrayIter {
            repr: match self.repr {
                ArrayRepr::Items(items) => IterRepr::Items(items.iter()),
                ArrayRepr::Wire {
                    bytes,
                    len,
                    version,
                } => IterRepr::Wire {
                    reader: Reader::new(bytes),
                    left: len,
                    version,
                },
            },
        }
    }

    /// Reads a non-nullable array of `version` (compact when `flexible`), validating every
    /// element; a null array is [`DecodeError::UnexpectedNull`].
    pub fn decode(version: i16, flexible: bool, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Self::decode_nullable(version, flexible, r)?.ok_or(DecodeError::UnexpectedNull)
    }

    /// Reads a nullable array of `version` (compact when `flexible`), validating every element.
    pub fn decode_nullable(
        version: i16,
        flexible: bool,
        r: &mut Reader<'a>,
    ) -> Result<Option<Self>, DecodeError> {
        let Some(len) = r.read_array_len_in(flexible)? else {
            return Ok(None);
        };
        let start = r.rest();
        let start_pos = r.position();
        for _ in 0..len {
            T::decode(version, r)?;
        }
        let bytes = start.get(..r.position() - start_pos).unwrap_or_default();
        Ok(Some(Self {
            repr: ArrayRepr::Wire {
                bytes,
                len,
                version,
            },
        }))
    }

    /// Bytes taken by the array as `version`, length prefix included.
    pub fn encoded_len(&self, version: i16, flexible: bool) -> usize {
        let body = match self.repr {
            ArrayRepr::Wire {
                bytes, version: v, ..
            } if v == version => bytes.len(),
            _ => self.iter().fold(0usize, |n, item| {
                n.saturating_add(item.encoded_len(version))
            }),
        };
        len_prefix_len(flexible, Some(self.len())).saturating_add(body)
    }

    /// Writes the array as `version` (compact when `flexible`). A decoded array written at the
    /// version it was read with is copied as it is.
    pub fn encode(
        &self,
        version: i16,
        flexible: bool,
        w: &mut Writer<'_>,
    ) -> Result<(), EncodeError> {
        w.write_array_len_in(flexible, Some(self.len()))?;
        match self.repr {
            ArrayRepr::Wire {
                bytes, version: v, ..
            } if v == version => w.write_raw(bytes),
            _ => self.iter().try_for_each(|item| item.encode(version, w)),
        }
    }

    /// Bytes taken by a nullable array (`None` = null).
    pub fn nullable_encoded_len(array: Option<&Self>, version: i16, flexible: bool) -> usize {
        match array {
            None => len_prefix_len(flexible, None),
            Some(a) => a.encoded_len(version, flexible),
        }
    }

    /// Writes a nullable array (`None` = null).
    pub fn encode_nullable(
        array: Option<&Self>,
        version: i16,
        flexible: bool,
        w: &mut Writer<'_>,
    ) -> Result<(), EncodeError> {
        match array {
            None => w.write_array_len_in(flexible, None),
            Some(a) => a.encode(version, flexible, w),
        }
    }
}

impl<'a, T: Message<'a> + Copy + fmt::Debug> fmt::Debug for Array<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, T: Message<'a> + Copy + PartialEq> PartialEq for Array<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a, T: Message<'a> + Copy + Eq> Eq for Array<'a, T> {}

impl<'a, T: Message<'a> + Copy> IntoIterator for Array<'a, T> {
    type Item = T;
    type IntoIter = ArrayIter<'a, T>;

    fn into_iter(self) -> ArrayIter<'a, T> {
        self.iter()
    }
}

impl<'a, T: Message<'a> + Copy> IntoIterator for &Array<'a, T> {
    type Item = T;
    type IntoIter = ArrayIter<'a, T>;

    fn into_iter(self) -> ArrayIter<'a, T> {
        self.iter()
    }
}

/// Iterator over the elements of an [`Array`].
#[derive(Debug, Clone)]
pub struct ArrayIter<'a, T> {
    repr: IterRepr<'a, T>,
}

#[derive(Debug, Clone)]
enum IterRepr<'a, T> {
    Items(core::slice::Iter<'a, T>),
    Wire {
        reader: Reader<'a>,
        left: usize,
        version: i16,
    },
}

impl<'a, T: Message<'a> + Copy> Iterator for ArrayIter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.repr {
            IterRepr::Items(items) => items.next().copied(),
            IterRepr::Wire {
                reader,
                left,
                version,
            } => {
                if *left == 0 {
                    return None;
                }
                // Validated by `Array::decode`; a failure would only end the iteration.
                match T::decode(*version, reader) {
                    Ok(item) => {
                        *left -= 1;
                        Some(item)
                    }
                    Err(_) => {
                        *left = 0;
                        None
                    }
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.repr {
            IterRepr::Items(items) => items.len(),
            IterRepr::Wire { left, .. } => *left,
        };
        (n, Some(n))
    }
}

impl<'a, T: Message<'a> + Copy> ExactSizeIterator for ArrayIter<'a, T> {}

#[cfg(test)]
mod tests;
