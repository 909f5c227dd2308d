//! The codecs of `compression.type`: what the core's [`Compressor`] calls when it closes a
//! batch, framed as Kafka's Java producer frames each one (see the core's
//! `record::Compressor` for the list, read from `kafka-clients` 4.4).
//!
//! | codec  | crate (feature)          | framing written                                        |
//! |--------|--------------------------|--------------------------------------------------------|
//! | gzip   | `flate2` (`gzip`)        | one gzip member: 10-byte header, deflate, CRC32, size  |
//! | snappy | `snap` (`snappy`)        | xerial stream: 16-byte header, 32 KiB raw blocks       |
//! | lz4    | `lz4_flex` (`lz4`)       | LZ4 frame: 64 KiB independent blocks, no checksums     |
//! | zstd   | `zstd` (`zstd`)          | one zstd frame                                         |
//!
//! Levels are Java's (`compression.gzip.level`, `compression.lz4.level`,
//! `compression.zstd.level`). `lz4_flex` has only LZ4's fast compressor, the one Java uses
//! at the default level 9; other lz4 levels (Java's high-compression mode) compress as 9.
//!
//! Each codec keeps its state (deflate state, snappy and zstd contexts, a spill buffer)
//! across batches: one [`Codecs`] lives on the I/O thread, inside the core producer.

use kafka_edge_core::record::{CodecError, CompressionType, Compressor};

/// The codecs compiled in (features `gzip`, `snappy`, `lz4`, `zstd`), with their state.
#[derive(Default)]
pub(crate) struct Codecs {
    #[cfg(feature = "gzip")]
    gzip: Option<(i32, flate2::Compress)>,
    #[cfg(feature = "snappy")]
    snappy: Option<snap::raw::Encoder>,
    #[cfg(feature = "zstd")]
    zstd: Option<(i32, zstd::bulk::Compressor<'static>)>,
    /// A block that may not fit the rest of the output is compressed here first.
    #[cfg(any(feature = "snappy", feature = "lz4"))]
    spill: Vec<u8>,
}

impl std::fmt::Debug for Codecs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codecs").finish_non_exhaustive()
    }
}

impl Compressor for Codecs {
    // One arm per feature: with all features on it reads like `matches!`.
    #[allow(clippy::match_like_matches_macro)]
    fn supports(&self, codec: CompressionType) -> bool {
        match codec {
            CompressionType::None => true,
            CompressionType::Gzip => cfg!(feature = "gzip"),
            CompressionType::Snappy => cfg!(feature = "snappy"),
            CompressionType::Lz4 => cfg!(feature = "lz4"),
            CompressionType::Zstd => cfg!(feature = "zstd"),
            _ => false,
        }
    }

    #[allow(unused_variables)]
    fn compress(
        &mut self,
        codec: CompressionType,
        level: i32,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, CodecError> {
        match codec {
            #[cfg(feature = "gzip")]
            CompressionType::Gzip => self.gzip(level, input, output),
            #[cfg(feature = "snappy")]
            CompressionType::Snappy => self.snappy(input, output),
            #[cfg(feature = "lz4")]
            CompressionType::Lz4 => self.lz4(input, output),
            #[cfg(feature = "zstd")]
            CompressionType::Zstd => self.zstd(level, input, output),
            _ => Err(CodecError::Failed),
        }
    }
}

/// Copies `bytes` to `output[*pos..]` and advances `pos`.
#[cfg(any(feature = "gzip", feature = "snappy", feature = "lz4"))]
fn put(output: &mut [u8], pos: &mut usize, bytes: &[u8]) -> Result<(), CodecError> {
    let end = pos
        .checked_add(bytes.len())
        .ok_or(CodecError::OutputTooSmall)?;
    output
        .get_mut(*pos..end)
        .ok_or(CodecError::OutputTooSmall)?
        .copy_from_slice(bytes);
    *pos = end;
    Ok(())
}

/// Writes one compressed block at `output[*pos..]` with `compress`, through `spill` when
/// the rest of `output` is smaller than the block's worst case `bound` (the block
/// compressors want room for it). Returns the compressed length.
#[cfg(any(feature = "snappy", feature = "lz4"))]
fn block_into(
    output: &mut [u8],
    pos: usize,
    bound: usize,
    spill: &mut Vec<u8>,
    compress: impl FnOnce(&mut [u8]) -> Result<usize, CodecError>,
) -> Result<usize, CodecError> {
    let rest = output.get_mut(pos..).ok_or(CodecError::OutputTooSmall)?;
    if rest.len() >= bound {
        return compress(rest);
    }
    spill.resize(bound, 0);
    let n = compress(spill)?;
    let mut at = pos;
    put(output, &mut at, spill.get(..n).ok_or(CodecError::Failed)?)?;
    Ok(n)
}

#[cfg(feature = "gzip")]
impl Codecs {
    /// One gzip member as Java's `GZIPOutputStream` writes it (header without name or
    /// time), with a deflate state kept from batch to batch.
    fn gzip(&mut self, level: i32, input: &[u8], output: &mut [u8]) -> Result<usize, CodecError> {
        use flate2::{Compress, Compression, FlushCompress, Status};
        // Java's -1 is zlib's default level, 6.
        let level = u32::try_from(level).unwrap_or(6).min(9);
        if !matches!(&self.gzip, Some((l, _)) if *l == level as i32) {
            // Raw deflate: the gzip framing is written here.
            self.gzip = Some((level as i32, Compress::new(Compression::new(level), false)));
        }
        let Some((_, deflate)) = &mut self.gzip else {
            return Err(CodecError::Failed);
        };
        deflate.reset();
        let mut pos = 0;
        put(output, &mut pos, &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        let body = output.get_mut(pos..).ok_or(CodecError::OutputTooSmall)?;
        let status = deflate
            .compress(input, body, FlushCompress::Finish)
            .map_err(|_| CodecError::Failed)?;
        if status != Status::StreamEnd || deflate.total_in() != input.len() as u64 {
            return Err(CodecError::OutputTooSmall);
        }
        pos += usize::try_from(deflate.total_out()).map_err(|_| CodecError::Failed)?;
        let mut crc = flate2::Crc::new();
        crc.update(input);
        put(output, &mut pos, &crc.sum().to_le_bytes())?;
        put(output, &mut pos, &(input.len() as u32).to_le_bytes())?;
        Ok(pos)
    }
}

/// snappy-java's stream header: magic, version 1, compatible version 1.
#[cfg(feature = "snappy")]
const XERIAL_HEADER: [u8; 16] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
];
/// snappy-java's `SnappyOutputStream` default block size.
#[cfg(feature = "snappy")]
const XERIAL_BLOCK: usize = 32 * 1024;

#[cfg(feature = "snappy")]
impl Codecs {
    /// snappy-java's xerial stream, what Java's producer writes for snappy (v2 included):
    /// the header, then per 32 KiB of input a big-endian length and a raw snappy block.
    fn snappy(&mut self, input: &[u8], output: &mut [u8]) -> Result<usize, CodecError> {
        let encoder = self.snappy.get_or_insert_with(snap::raw::Encoder::new);
        let mut pos = 0;
        put(output, &mut pos, &XERIAL_HEADER)?;
        for chunk in input.chunks(XERIAL_BLOCK) {
            let len_at = pos;
            put(output, &mut pos, &[0; 4])?;
            let bound = snap::raw::max_compress_len(chunk.len());
            let n = block_into(output, pos, bound, &mut self.spill, |out| {
                encoder.compress(chunk, out).map_err(|_| CodecError::Failed)
            })?;
            let len = u32::try_from(n).map_err(|_| CodecError::Failed)?;
            put(output, &mut { len_at }, &len.to_be_bytes())?;
            pos += n;
        }
        Ok(pos)
    }
}

/// The LZ4 frame header Java's `Lz4BlockOutputStream` writes: magic, FLG (version 1,
/// independent blocks, no checksums, no content size), BD (64 KiB blocks), and the header
/// checksum `(xxh32(FLG BD) >> 8) & 0xff`.
#[cfg(feature = "lz4")]
const LZ4_FRAME_HEADER: [u8; 7] = [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x82];
#[cfg(feature = "lz4")]
const LZ4_BLOCK: usize = 64 * 1024;
/// Block size bit of a block stored uncompressed.
#[cfg(feature = "lz4")]
const LZ4_UNCOMPRESSED: u32 = 0x8000_0000;

#[cfg(feature = "lz4")]
impl Codecs {
    /// An LZ4 frame as Java writes it: per 64 KiB of input a little-endian size and the
    /// compressed block (or the block as is, with the high size bit, when compression
    /// does not make it smaller), then a zero end mark; no content checksum.
    fn lz4(&mut self, input: &[u8], output: &mut [u8]) -> Result<usize, CodecError> {
        use lz4_flex::block::{compress_into, get_maximum_output_size};
        let mut pos = 0;
        put(output, &mut pos, &LZ4_FRAME_HEADER)?;
        for chunk in input.chunks(LZ4_BLOCK) {
            let size_at = pos;
            put(output, &mut pos, &[0; 4])?;
            let bound = get_maximum_output_size(chunk.len());
            let n = block_into(output, pos, bound, &mut self.spill, |out| {
                compress_into(chunk, out).map_err(|_| CodecError::Failed)
            })?;
            let size = if n >= chunk.len() {
                // Stored: overwrite the compressed block with the input.
                let mut at = pos;
                put(output, &mut at, chunk)?;
                chunk.len() as u32 | LZ4_UNCOMPRESSED
            } else {
                n as u32
            };
            put(output, &mut { size_at }, &size.to_le_bytes())?;
            pos += (size & !LZ4_UNCOMPRESSED) as usize;
        }
        put(output, &mut pos, &[0; 4])?;
        Ok(pos)
    }
}

#[cfg(feature = "zstd")]
impl Codecs {
    /// One zstd frame, with a compression context kept from batch to batch.
    fn zstd(&mut self, level: i32, input: &[u8], output: &mut [u8]) -> Result<usize, CodecError> {
        if !matches!(&self.zstd, Some((l, _)) if *l == level) {
            let c = zstd::bulk::Compressor::new(level).map_err(|_| CodecError::Failed)?;
            self.zstd = Some((level, c));
        }
        let Some((_, compressor)) = &mut self.zstd else {
            return Err(CodecError::Failed);
        };
        compressor.compress_to_buffer(input, output).map_err(|_| {
            // libzstd says "Destination buffer is too small" through an io::Error.
            CodecError::OutputTooSmall
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records-like input: repetitive text with some noise.
    #[cfg_attr(not(feature = "lz4"), allow(dead_code))]
    fn sample(len: usize) -> Vec<u8> {
        let mut x = 0x2545_f491_u32;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                if i % 7 == 0 {
                    (x % 26) as u8 + b'A'
                } else {
                    b"kafka-edge "[i % 11]
                }
            })
            .collect()
    }

    #[cfg(any(
        feature = "gzip",
        feature = "snappy",
        feature = "lz4",
        feature = "zstd"
    ))]
    fn compress(codec: CompressionType, level: i32, input: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; input.len() + input.len() / 2 + 1024];
        let n = Codecs::default()
            .compress(codec, level, input, &mut out)
            .unwrap();
        out.truncate(n);
        out
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_round_trips_through_a_gzip_reader() {
        use std::io::Read as _;
        for len in [0, 1, 1000, 200_000] {
            let input = sample(len);
            for level in [-1, 1, 9] {
                let out = compress(CompressionType::Gzip, level, &input);
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&out[..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, input);
            }
        }
    }

    #[cfg(feature = "snappy")]
    #[test]
    fn snappy_writes_xerial_blocks_of_32_kib() {
        let input = sample(100_000);
        let out = compress(CompressionType::Snappy, 0, &input);
        assert_eq!(&out[..16], &XERIAL_HEADER);
        let mut back = Vec::new();
        let mut pos = 16;
        let mut blocks = 0;
        while pos < out.len() {
            let n = u32::from_be_bytes(out[pos..pos + 4].try_into().unwrap()) as usize;
            pos += 4;
            back.extend(
                snap::raw::Decoder::new()
                    .decompress_vec(&out[pos..pos + n])
                    .unwrap(),
            );
            pos += n;
            blocks += 1;
        }
        assert_eq!(blocks, 4);
        assert_eq!(back, input);
    }

    #[cfg(feature = "lz4")]
    #[test]
    fn lz4_writes_a_frame_with_javas_header() {
        for input in [sample(0), sample(10), sample(150_000), {
            // Incompressible: blocks stored as they are.
            let mut x = 1u64;
            (0..70_000)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 56) as u8
                })
                .collect()
        }] {
            let out = compress(CompressionType::Lz4, 9, &input);
            assert_eq!(&out[..7], &LZ4_FRAME_HEADER);
            let mut back = Vec::new();
            let mut pos = 7;
            loop {
                let size = u32::from_le_bytes(out[pos..pos + 4].try_into().unwrap());
                pos += 4;
                if size == 0 {
                    break;
                }
                let n = (size & !LZ4_UNCOMPRESSED) as usize;
                if size & LZ4_UNCOMPRESSED != 0 {
                    back.extend_from_slice(&out[pos..pos + n]);
                } else {
                    back.extend(
                        lz4_flex::block::decompress(&out[pos..pos + n], LZ4_BLOCK).unwrap(),
                    );
                }
                pos += n;
            }
            assert_eq!(pos, out.len());
            assert_eq!(back, input);
        }
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn zstd_round_trips() {
        let input = sample(100_000);
        for level in [-5, 3, 19] {
            let out = compress(CompressionType::Zstd, level, &input);
            assert_eq!(zstd::bulk::decompress(&out, input.len()).unwrap(), input);
        }
    }

    #[test]
    fn too_small_output_is_an_error_not_a_panic() {
        let input = sample(10_000);
        let mut codecs = Codecs::default();
        for codec in [
            CompressionType::Gzip,
            CompressionType::Snappy,
            CompressionType::Lz4,
            CompressionType::Zstd,
        ] {
            if !codecs.supports(codec) {
                continue;
            }
            for len in [0, 5, 17, 100] {
                let mut out = vec![0u8; len];
                assert!(codecs.compress(codec, 3, &input, &mut out).is_err());
            }
        }
    }
}
