//! A heap-free LZ4 compressor for firmware: [`Lz4`] writes the LZ4 frame Java's
//! `Lz4BlockOutputStream` writes (64 KiB independent blocks, no checksums), with LZ4's greedy
//! fast matcher over a hash table it owns (8 KiB, inside the value: put the producer that
//! holds it in a `static`). No maintained LZ4 crate compresses without a heap (`lz4_flex`
//! boxes its hash tables), hence this one; std hosts use `lz4_flex`.
//!
//! The block format (lz4's `lz4_Block_format.md`): sequences of a token (literal length and
//! match length, 4 bits each, 15 meaning "more bytes follow"), the literals, a 2-byte
//! little-endian offset and the rest of the match length; the last sequence is literals only.
//! A match is at least 4 bytes, starts at least 12 bytes before the block's end and ends at
//! least 5 bytes before it.

use super::{CodecError, CompressionType, Compressor};

/// The frame header: magic, FLG (version 1, independent blocks, no checksums, no content
/// size), BD (64 KiB blocks) and the header checksum `(xxh32(FLG BD) >> 8) & 0xff`.
pub const LZ4_FRAME_HEADER: [u8; 7] = [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82];
/// The largest block of the frame (BD = 64 KiB).
pub const LZ4_BLOCK: usize = 64 * 1024;
/// The size bit of a block stored as it is.
const STORED: u32 = 0x8000_0000;

const HASH_LOG: u32 = 12;
const MIN_MATCH: usize = 4;
/// A match starts at least this many bytes before the end of its block.
const MF_LIMIT: usize = 12;
/// The last bytes of a block are always literals.
const LAST_LITERALS: usize = 5;

/// The heap-free LZ4 [`Compressor`]: only [`CompressionType::Lz4`]. Java's levels other
/// than its default do not change the output (this is LZ4's fast compressor, as Java's
/// default level 9 is).
#[derive(Clone)]
pub struct Lz4 {
    /// Block positions by hash of the 4 bytes there (`u16`: a block is at most 64 KiB).
    table: [u16; 1 << HASH_LOG],
}

impl Default for Lz4 {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Lz4 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Lz4")
    }
}

impl Lz4 {
    /// A compressor with an empty table (a `const fn`: it can initialise a `static`).
    pub const fn new() -> Self {
        Self {
            table: [0; 1 << HASH_LOG],
        }
    }

    /// Compresses one block of at most [`LZ4_BLOCK`] bytes into `out`; `None` when the
    /// output does not fit.
    fn block(&mut self, input: &[u8], out: &mut [u8]) -> Option<usize> {
        let n = input.len();
        let mut w = Writer { out, at: 0 };
        let mut anchor = 0;
        if n > MF_LIMIT {
            self.table.fill(0);
            let last_match_start = n - MF_LIMIT;
            let match_end_limit = n - LAST_LITERALS;
            let mut i = 0;
            while i <= last_match_start {
                let seq = read_u32(input, i)?;
                let h = hash(seq);
                let candidate = usize::from(*self.table.get(h)?);
                // Positions are below 64 KiB: `i` fits.
                *self.table.get_mut(h)? = i as u16;
                let found = candidate < i
                    && i - candidate <= usize::from(u16::MAX)
                    && read_u32(input, candidate)? == seq;
                if !found {
                    // LZ4's acceleration: skip faster through data that does not match.
                    i += 1 + ((i - anchor) >> 6);
                    continue;
                }
                let mut end = i + MIN_MATCH;
                let mut from = candidate + MIN_MATCH;
                while end < match_end_limit && input.get(end)? == input.get(from)? {
                    end += 1;
                    from += 1;
                }
                w.sequence(input.get(anchor..i)?, Some((i - candidate, end - i)))?;
                anchor = end;
                i = end;
                // The position two bytes back, so that overlapping repeats are found.
                if let Some(back) = end.checked_sub(2)
                    && back <= last_match_start
                {
                    *self.table.get_mut(hash(read_u32(input, back)?))? = back as u16;
                }
            }
        }
        w.sequence(input.get(anchor..)?, None)?;
        Some(w.at)
    }
}

impl Compressor for Lz4 {
    fn supports(&self, codec: CompressionType) -> bool {
        codec == CompressionType::Lz4
    }

    /// The LZ4 frame: the header, per 64 KiB of input a little-endian size and the block
    /// (stored as it is, with the size's high bit, when compressing does not make it smaller
    /// or does not fit), then a zero end mark.
    fn compress(
        &mut self,
        codec: CompressionType,
        _level: i32,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, CodecError> {
        if codec != CompressionType::Lz4 {
            return Err(CodecError::Failed);
        }
        let mut pos = put(output, 0, &LZ4_FRAME_HEADER)?;
        for chunk in input.chunks(LZ4_BLOCK) {
            let size_at = pos;
            pos = put(output, pos, &[0; 4])?;
            let rest = output.get_mut(pos..).ok_or(CodecError::OutputTooSmall)?;
            let size = match self.block(chunk, rest) {
                Some(n) if n < chunk.len() => n as u32,
                _ => {
                    put(output, pos, chunk)?;
                    chunk.len() as u32 | STORED
                }
            };
            put(output, size_at, &size.to_le_bytes())?;
            pos += (size & !STORED) as usize;
        }
        put(output, pos, &[0; 4])
    }
}

/// Copies `bytes` to `output[at..]`; returns the position after them.
fn put(output: &mut [u8], at: usize, bytes: &[u8]) -> Result<usize, CodecError> {
    let end = at
        .checked_add(bytes.len())
        .ok_or(CodecError::OutputTooSmall)?;
    output
        .get_mut(at..end)
        .ok_or(CodecError::OutputTooSmall)?
        .copy_from_slice(bytes);
    Ok(end)
}

fn read_u32(input: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = input.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// LZ4's hash of 4 bytes (Knuth's multiplicative constant), `HASH_LOG` bits.
const fn hash(seq: u32) -> usize {
    (seq.wrapping_mul(2_654_435_761) >> (32 - HASH_LOG)) as usize
}

/// Sequences written into an output slice, every write bounds-checked.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn byte(&mut self, b: u8) -> Option<()> {
        *self.out.get_mut(self.at)? = b;
        self.at += 1;
        Some(())
    }

    /// The bytes of a length above 15: 255s, then the rest.
    fn length(&mut self, mut rest: usize) -> Option<()> {
        while rest >= 255 {
            self.byte(255)?;
            rest -= 255;
        }
        self.byte(rest as u8)
    }

    /// One sequence: `literals`, then the match `(offset, length)` (none for the last).
    fn sequence(&mut self, literals: &[u8], matched: Option<(usize, usize)>) -> Option<()> {
        let lit = literals.len();
        let ml = matched.map_or(0, |(_, len)| len - MIN_MATCH);
        let token = ((lit.min(15) as u8) << 4) | (ml.min(15) as u8);
        self.byte(token)?;
        if lit >= 15 {
            self.length(lit - 15)?;
        }
        let end = self.at.checked_add(lit)?;
        self.out.get_mut(self.at..end)?.copy_from_slice(literals);
        self.at = end;
        if let Some((offset, _)) = matched {
            let offset = (offset as u16).to_le_bytes();
            self.byte(offset[0])?;
            self.byte(offset[1])?;
            if ml >= 15 {
                self.length(ml - 15)?;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    /// The frame decoded with `lz4_flex` (an independent implementation).
    fn decode(frame: &[u8]) -> Vec<u8> {
        assert_eq!(&frame[..7], &LZ4_FRAME_HEADER);
        let mut back = Vec::new();
        let mut pos = 7;
        loop {
            let size = u32::from_le_bytes(frame[pos..pos + 4].try_into().unwrap());
            pos += 4;
            if size == 0 {
                break;
            }
            let n = (size & !STORED) as usize;
            if size & STORED != 0 {
                back.extend_from_slice(&frame[pos..pos + n]);
            } else {
                back.extend(lz4_flex::block::decompress(&frame[pos..pos + n], LZ4_BLOCK).unwrap());
            }
            pos += n;
        }
        assert_eq!(pos, frame.len(), "nothing after the end mark");
        back
    }

    fn frame(input: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; input.len() + input.len() / 255 + 64];
        let n = Lz4::new()
            .compress(CompressionType::Lz4, 9, input, &mut out)
            .unwrap();
        out.truncate(n);
        out
    }

    fn records_like(len: usize) -> Vec<u8> {
        let text = b"key-0042 {\"temp\":21.5,\"unit\":\"C\"} ";
        (0..len)
            .map(|i| text[i % text.len()] ^ ((i / 4096) as u8 & 1))
            .collect()
    }

    #[test]
    fn compressible_records_shrink_and_round_trip() {
        for len in [0, 1, 12, 13, 100, 4096, LZ4_BLOCK, LZ4_BLOCK + 1, 200_000] {
            let input = records_like(len);
            let out = frame(&input);
            assert_eq!(decode(&out), input, "{len} bytes");
            if len >= 4096 {
                assert!(out.len() * 5 < len, "{len} bytes -> {}", out.len());
            }
        }
    }

    #[test]
    fn long_runs_and_long_literals_use_extra_length_bytes() {
        let mut input = vec![7u8; 5000];
        let mut x = 1u32;
        input.extend((0..3000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        input.extend(vec![9u8; 5000]);
        assert_eq!(decode(&frame(&input)), input);
    }

    #[test]
    fn too_small_an_output_is_an_error() {
        let input = records_like(10_000);
        let mut out = vec![0u8; 20];
        assert_eq!(
            Lz4::new().compress(CompressionType::Lz4, 9, &input, &mut out),
            Err(CodecError::OutputTooSmall)
        );
        assert!(!Lz4::new().supports(CompressionType::Gzip));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_input_round_trips(
            input in prop::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..20_000)
        ) {
            prop_assert_eq!(decode(&frame(&input)), input);
        }

        #[test]
        fn a_short_output_never_panics(input in prop::collection::vec(any::<u8>(), 0..3000), cut in 0usize..3100) {
            let mut out = vec![0u8; cut];
            let _ = Lz4::new().compress(CompressionType::Lz4, 9, &input, &mut out);
        }
    }
}
