//! The primitive decoders never panic and never read past the input; every value they
//! decode re-encodes to a value that decodes the same.
#![no_main]

use kafka_edge_core::protocol::{Reader, Writer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes choose the reads, the rest is the input.
    let Some((ops, input)) = data.split_first_chunk::<8>() else {
        return;
    };
    let mut r = Reader::new(input);
    let mut out = [0u8; 64];
    for &op in ops {
        let before = r.position();
        let mut w = Writer::new(&mut out);
        match op % 16 {
            0 => {
                if let Ok(v) = r.read_varint() {
                    w.write_varint(v).unwrap();
                    assert_eq!(Reader::new(w.written()).read_varint(), Ok(v));
                }
            }
            1 => {
                if let Ok(v) = r.read_varlong() {
                    w.write_varlong(v).unwrap();
                    assert_eq!(Reader::new(w.written()).read_varlong(), Ok(v));
                }
            }
            2 => {
                if let Ok(v) = r.read_unsigned_varint() {
                    w.write_unsigned_varint(v).unwrap();
                    assert_eq!(Reader::new(w.written()).read_unsigned_varint(), Ok(v));
                }
            }
            3 => {
                let _ = r.read_i8();
            }
            4 => {
                let _ = r.read_i16();
            }
            5 => {
                let _ = r.read_i32();
            }
            6 => {
                let _ = r.read_i64();
            }
            7 => {
                if let Ok(Some(s)) = r.read_nullable_string() {
                    if w.write_string(s).is_ok() {
                        assert_eq!(Reader::new(w.written()).read_string(), Ok(s));
                    }
                }
            }
            8 => {
                if let Ok(Some(s)) = r.read_compact_nullable_string() {
                    if w.write_compact_string(s).is_ok() {
                        assert_eq!(Reader::new(w.written()).read_compact_string(), Ok(s));
                    }
                }
            }
            9 => {
                let _ = r.read_nullable_bytes();
            }
            10 => {
                let _ = r.read_compact_nullable_bytes();
            }
            11 => {
                if let Ok(b) = r.read_varint_bytes() {
                    if w.write_varint_bytes(b).is_ok() {
                        assert_eq!(Reader::new(w.written()).read_varint_bytes(), Ok(b));
                    }
                }
            }
            12 => {
                let _ = r.read_array_len();
            }
            13 => {
                let _ = r.read_compact_array_len();
            }
            14 => {
                if let Ok(fields) = r.read_tagged_fields() {
                    fields.for_each(drop);
                }
            }
            _ => {
                let _ = r.skip(usize::from(op >> 4));
            }
        }
        assert!(r.position() >= before && r.position() <= input.len());
    }
});
