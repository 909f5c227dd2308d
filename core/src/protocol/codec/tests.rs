//! Unit tests of the `codec` module.

extern crate std;
use super::super::varint::varlong_len;
use super::*;
use proptest::prelude::*;
use std::vec::Vec;

// Vectors from Apache Kafka's
// clients/src/test/java/org/apache/kafka/common/utils/ByteUtilsTest.java
// (testUnsignedVarintSerde, testVarintSerde, testVarlongSerde).
const UNSIGNED_VARINTS: &[(i32, &[u8])] = &[
    (0, &[0x00]),
    (-1, &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
    (1, &[0x01]),
    (63, &[0x3F]),
    (-64, &[0xC0, 0xFF, 0xFF, 0xFF, 0x0F]),
    (64, &[0x40]),
    (8191, &[0xFF, 0x3F]),
    (-8192, &[0x80, 0xC0, 0xFF, 0xFF, 0x0F]),
    (8192, &[0x80, 0x40]),
    (-8193, &[0xFF, 0xBF, 0xFF, 0xFF, 0x0F]),
    (1048575, &[0xFF, 0xFF, 0x3F]),
    (1048576, &[0x80, 0x80, 0x40]),
    (i32::MAX, &[0xFF, 0xFF, 0xFF, 0xFF, 0x07]),
    (i32::MIN, &[0x80, 0x80, 0x80, 0x80, 0x08]),
];

const VARINTS: &[(i32, &[u8])] = &[
    (0, &[0x00]),
    (-1, &[0x01]),
    (1, &[0x02]),
    (63, &[0x7E]),
    (-64, &[0x7F]),
    (64, &[0x80, 0x01]),
    (-65, &[0x81, 0x01]),
    (8191, &[0xFE, 0x7F]),
    (-8192, &[0xFF, 0x7F]),
    (8192, &[0x80, 0x80, 0x01]),
    (-8193, &[0x81, 0x80, 0x01]),
    (1048575, &[0xFE, 0xFF, 0x7F]),
    (-1048576, &[0xFF, 0xFF, 0x7F]),
    (1048576, &[0x80, 0x80, 0x80, 0x01]),
    (-1048577, &[0x81, 0x80, 0x80, 0x01]),
    (134217727, &[0xFE, 0xFF, 0xFF, 0x7F]),
    (-134217728, &[0xFF, 0xFF, 0xFF, 0x7F]),
    (134217728, &[0x80, 0x80, 0x80, 0x80, 0x01]),
    (-134217729, &[0x81, 0x80, 0x80, 0x80, 0x01]),
    (i32::MAX, &[0xFE, 0xFF, 0xFF, 0xFF, 0x0F]),
    (i32::MIN, &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
];

const VARLONGS: &[(i64, &[u8])] = &[
    (0, &[0x00]),
    (-1, &[0x01]),
    (1, &[0x02]),
    (63, &[0x7E]),
    (-64, &[0x7F]),
    (64, &[0x80, 0x01]),
    (-65, &[0x81, 0x01]),
    (8191, &[0xFE, 0x7F]),
    (-8192, &[0xFF, 0x7F]),
    (8192, &[0x80, 0x80, 0x01]),
    (-8193, &[0x81, 0x80, 0x01]),
    (1048575, &[0xFE, 0xFF, 0x7F]),
    (-1048576, &[0xFF, 0xFF, 0x7F]),
    (1048576, &[0x80, 0x80, 0x80, 0x01]),
    (-1048577, &[0x81, 0x80, 0x80, 0x01]),
    (134217727, &[0xFE, 0xFF, 0xFF, 0x7F]),
    (-134217728, &[0xFF, 0xFF, 0xFF, 0x7F]),
    (134217728, &[0x80, 0x80, 0x80, 0x80, 0x01]),
    (-134217729, &[0x81, 0x80, 0x80, 0x80, 0x01]),
    (i32::MAX as i64, &[0xFE, 0xFF, 0xFF, 0xFF, 0x0F]),
    (i32::MIN as i64, &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
    (17179869183, &[0xFE, 0xFF, 0xFF, 0xFF, 0x7F]),
    (-17179869184, &[0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
    (17179869184, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
    (-17179869185, &[0x81, 0x80, 0x80, 0x80, 0x80, 0x01]),
    (2199023255551, &[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
    (-2199023255552, &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
    (2199023255552, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
    (-2199023255553, &[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
    (281474976710655, &[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]),
    (
        -281474976710656,
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
    ),
    (
        281474976710656,
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
    ),
    (
        -281474976710657,
        &[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
    ),
    (
        36028797018963967,
        &[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
    ),
    (
        -36028797018963968,
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
    ),
    (
        36028797018963968,
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
    ),
    (
        -36028797018963969,
        &[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
    ),
    (
        4611686018427387903,
        &[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
    ),
    (
        -4611686018427387904,
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
    ),
    (
        4611686018427387904,
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
    ),
    (
        -4611686018427387905,
        &[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
    ),
    (
        i64::MAX,
        &[0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
    ),
    (
        i64::MIN,
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
    ),
];

fn encode(f: impl FnOnce(&mut Writer<'_>) -> Result<(), EncodeError>) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    f(&mut w).unwrap();
    w.written().to_vec()
}

#[test]
fn test_unsigned_varint_vectors() {
    for &(v, bytes) in UNSIGNED_VARINTS {
        let v = v as u32;
        assert_eq!(encode(|w| w.write_unsigned_varint(v)), bytes, "emit {v}");
        assert_eq!(unsigned_varint_len(v), bytes.len());
        let mut r = Reader::new(bytes);
        assert_eq!(r.read_unsigned_varint(), Ok(v), "parse {v}");
        assert!(r.is_empty());
    }
}

#[test]
fn test_varint_vectors() {
    for &(v, bytes) in VARINTS {
        assert_eq!(encode(|w| w.write_varint(v)), bytes, "emit {v}");
        assert_eq!(varint_len(v), bytes.len());
        let mut r = Reader::new(bytes);
        assert_eq!(r.read_varint(), Ok(v), "parse {v}");
        assert!(r.is_empty());
    }
}

#[test]
fn test_varlong_vectors() {
    for &(v, bytes) in VARLONGS {
        assert_eq!(encode(|w| w.write_varlong(v)), bytes, "emit {v}");
        assert_eq!(varlong_len(v), bytes.len());
        let mut r = Reader::new(bytes);
        assert_eq!(r.read_varlong(), Ok(v), "parse {v}");
        assert!(r.is_empty());
    }
}

// ByteUtilsTest.testInvalidVarint / testInvalidVarlong: one overflow byte.
#[test]
fn test_invalid_varint() {
    let mut r = Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]);
    assert_eq!(r.read_varint(), Err(DecodeError::VarintTooLong));
    let mut r = Reader::new(&[0xFF; 10]);
    assert_eq!(r.read_varlong(), Err(DecodeError::VarintTooLong));
    let mut r = Reader::new(&[0xFF, 0xFF]);
    assert_eq!(r.read_varint(), Err(DecodeError::UnexpectedEof));
}

#[test]
fn test_parse_fixed_ints() {
    let bytes = [
        0xFE, 0x01, 0x02, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2A,
        0xDE, 0xAD, 0xBE, 0xEF,
    ];
    let mut r = Reader::new(&bytes);
    assert_eq!(r.read_i8(), Ok(-2));
    assert_eq!(r.read_i16(), Ok(0x0102));
    assert_eq!(r.read_i32(), Ok(i32::MIN));
    assert_eq!(r.read_i64(), Ok(42));
    assert_eq!(r.read_u32(), Ok(0xDEAD_BEEF));
    assert_eq!(r.position(), bytes.len());
    assert_eq!(r.read_i8(), Err(DecodeError::UnexpectedEof));
}

#[test]
fn test_emit_fixed_ints() {
    let bytes = encode(|w| {
        w.write_i8(-2)?;
        w.write_i16(0x0102)?;
        w.write_i32(i32::MIN)?;
        w.write_i64(42)?;
        w.write_u32(0xDEAD_BEEF)
    });
    assert_eq!(
        bytes,
        [
            0xFE, 0x01, 0x02, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x2A, 0xDE, 0xAD, 0xBE, 0xEF
        ]
    );
}

#[test]
fn test_strings_and_bytes_both_ways() {
    let bytes: &[u8] = &[
        0x00, 0x03, b'a', b'b', b'c', // STRING "abc"
        0xFF, 0xFF, // NULLABLE_STRING null
        0x04, b'x', b'y', b'z', // COMPACT_STRING "xyz"
        0x00, // COMPACT_NULLABLE_STRING null
        0x00, 0x00, 0x00, 0x02, 0x01, 0x02, // BYTES [1, 2]
        0xFF, 0xFF, 0xFF, 0xFF, // NULLABLE_BYTES null
        0x01, // COMPACT_BYTES []
        0x01, // varint bytes null
        0x04, 0x09, 0x08, // varint bytes [9, 8]
        0x00, 0x00, 0x00, 0x01, // ARRAY len 1
        0x02, // COMPACT_ARRAY len 1
        0x00, // empty tagged fields
    ];
    let mut r = Reader::new(bytes);
    assert_eq!(r.read_string(), Ok("abc"));
    assert_eq!(r.read_nullable_string(), Ok(None));
    assert_eq!(r.read_compact_string(), Ok("xyz"));
    assert_eq!(r.read_compact_nullable_string(), Ok(None));
    assert_eq!(r.read_bytes32(), Ok(&[1u8, 2][..]));
    assert_eq!(r.read_nullable_bytes(), Ok(None));
    assert_eq!(r.read_compact_bytes(), Ok(&[][..]));
    assert_eq!(r.read_varint_bytes(), Ok(None));
    assert_eq!(r.read_varint_bytes(), Ok(Some(&[9u8, 8][..])));
    assert_eq!(r.read_array_len(), Ok(Some(1)));
    assert_eq!(r.read_compact_array_len(), Ok(Some(1)));
    assert_eq!(r.read_tagged_fields().map(|t| t.len()), Ok(0));
    assert!(r.is_empty());

    let out = encode(|w| {
        w.write_string("abc")?;
        w.write_nullable_string(None)?;
        w.write_compact_string("xyz")?;
        w.write_compact_nullable_string(None)?;
        w.write_bytes32(&[1, 2])?;
        w.write_nullable_bytes(None)?;
        w.write_compact_bytes(&[])?;
        w.write_varint_bytes(None)?;
        w.write_varint_bytes(Some(&[9, 8]))?;
        w.write_array_len(Some(1))?;
        w.write_compact_array_len(Some(1))?;
        w.write_empty_tagged_fields()
    });
    assert_eq!(out, bytes);
}

#[test]
fn test_tagged_fields_are_read_and_skipped() {
    // Two fields: tag 0 with 2 bytes, tag 5 with 0 bytes; then an INT8.
    let bytes = [0x02, 0x00, 0x02, 0xAA, 0xBB, 0x05, 0x00, 0x07];
    let mut r = Reader::new(&bytes);
    let fields: Vec<_> = r.read_tagged_fields().unwrap().collect();
    assert_eq!(
        fields,
        [
            TaggedField {
                tag: 0,
                data: &[0xAA, 0xBB]
            },
            TaggedField { tag: 5, data: &[] }
        ]
    );
    assert_eq!(r.read_i8(), Ok(7));

    let mut r = Reader::new(&bytes);
    r.skip_tagged_fields().unwrap();
    assert_eq!(r.read_i8(), Ok(7));

    // A field whose size runs past the end.
    let mut r = Reader::new(&[0x01, 0x00, 0x05, 0xAA]);
    assert_eq!(
        r.read_tagged_fields().err(),
        Some(DecodeError::UnexpectedEof)
    );
}

#[test]
fn test_invalid_lengths() {
    assert_eq!(
        Reader::new(&[0xFF, 0xFE]).read_nullable_string(),
        Err(DecodeError::InvalidLength)
    );
    assert_eq!(
        Reader::new(&[0x00, 0x05, b'a']).read_string(),
        Err(DecodeError::InvalidLength)
    );
    assert_eq!(
        Reader::new(&[0x00, 0x01, 0xFF]).read_string(),
        Err(DecodeError::InvalidUtf8)
    );
    assert_eq!(
        Reader::new(&[0xFF, 0xFF]).read_string(),
        Err(DecodeError::UnexpectedNull)
    );
    assert_eq!(
        Reader::new(&[0x7F, 0xFF, 0xFF, 0xFF]).read_array_len(),
        Err(DecodeError::InvalidLength)
    );
    assert_eq!(
        Reader::new(&[0x03]).read_varint_bytes(),
        Err(DecodeError::InvalidLength)
    );
}

#[test]
fn test_writer_buffer_too_small_writes_nothing() {
    let mut buf = [0u8; 4];
    let mut w = Writer::new(&mut buf);
    w.write_i16(1).unwrap();
    assert_eq!(
        w.write_i32(1),
        Err(EncodeError::BufferTooSmall {
            needed: 4,
            available: 2
        })
    );
    assert_eq!(
        w.write_string("ab"),
        Err(EncodeError::BufferTooSmall {
            needed: 4,
            available: 2
        })
    );
    assert_eq!(w.position(), 2);
    w.write_varint(-1).unwrap();
    assert_eq!(w.written(), &[0, 1, 1]);
}

#[test]
fn test_string_length_overflow() {
    let long = "x".repeat(40_000);
    let mut buf = [0u8; 8];
    assert_eq!(
        Writer::new(&mut buf).write_string(&long),
        Err(EncodeError::LengthOverflow)
    );
}

proptest! {
    #[test]
    fn prop_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), ops in proptest::collection::vec(0u8..20, 0..16)) {
        let mut r = Reader::new(&bytes);
        for op in ops {
            let _ = match op {
                0 => r.read_i8().map(drop),
                1 => r.read_i16().map(drop),
                2 => r.read_i32().map(drop),
                3 => r.read_i64().map(drop),
                4 => r.read_u32().map(drop),
                5 => r.read_varint().map(drop),
                6 => r.read_varlong().map(drop),
                7 => r.read_unsigned_varint().map(drop),
                8 => r.read_string().map(drop),
                9 => r.read_nullable_string().map(drop),
                10 => r.read_compact_string().map(drop),
                11 => r.read_compact_nullable_string().map(drop),
                12 => r.read_bytes32().map(drop),
                13 => r.read_nullable_bytes().map(drop),
                14 => r.read_compact_nullable_bytes().map(drop),
                15 => r.read_varint_bytes().map(drop),
                16 => r.read_array_len().map(drop),
                17 => r.read_compact_array_len().map(drop),
                18 => r.read_tagged_fields().map(|t| t.for_each(drop)),
                _ => r.skip(3),
            };
            prop_assert!(r.position() <= bytes.len());
        }
    }

    #[test]
    fn prop_varint_round_trip(v in any::<i32>(), l in any::<i64>(), u in any::<u32>()) {
        let mut buf = [0u8; 32];
        let mut w = Writer::new(&mut buf);
        w.write_varint(v).unwrap();
        w.write_varlong(l).unwrap();
        w.write_unsigned_varint(u).unwrap();
        prop_assert_eq!(w.position(), varint_len(v) + varlong_len(l) + unsigned_varint_len(u));
        let mut r = Reader::new(w.written());
        prop_assert_eq!(r.read_varint(), Ok(v));
        prop_assert_eq!(r.read_varlong(), Ok(l));
        prop_assert_eq!(r.read_unsigned_varint(), Ok(u));
        prop_assert!(r.is_empty());
    }

    #[test]
    fn prop_writer_never_panics(cap in 0usize..16, s in ".{0,20}", b in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20))) {
        let mut buf = [0u8; 16];
        let mut w = Writer::new(&mut buf[..cap]);
        let _ = w.write_compact_string(&s);
        let _ = w.write_nullable_bytes(b.as_deref());
        let _ = w.write_varint_bytes(b.as_deref());
        let _ = w.write_varlong(i64::MIN);
        prop_assert!(w.position() <= cap);
    }
}
