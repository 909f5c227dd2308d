//! Compression of a batch's records section: the [`Compressor`] a transport plugs in (its
//! documentation tells the whole story: framings per codec, where compressed bytes live,
//! how batches fill) and Java's running [`CompressionRatio`] estimate.

use super::batch_header::CompressionType;
use super::builder::CodecError;

/// Compresses the records section of a batch, as Kafka's producer does (implemented by
/// transports).
///
/// The core ships no codec (it has no heap, and the codecs want one): a transport plugs one
/// in with [`Producer::with_compressor`](crate::Producer::with_compressor) (`kafka-edge-std`
/// has gzip, snappy, lz4 and zstd). When a batch is closed the core hands the compressor
/// the records section (every byte after the 61-byte header) and the level Java names for
/// the codec (`compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`,
/// KIP-390), then writes the output in place of the records and fills the header: the
/// codec in attributes bits 0-2, `batchLength` over the compressed size and the CRC32C
/// over the compressed bytes
/// ([`BatchBuilder::close_compressed`](super::BatchBuilder::close_compressed)).
///
/// What Kafka's Java producer writes in the records section of a v2 batch, per codec (read
/// from `kafka-clients` 4.4, `org.apache.kafka.common.compress`):
/// - gzip: one gzip member (`GZIPOutputStream`);
/// - snappy: snappy-java's xerial stream (`SnappyOutputStream`: the 16-byte header
///   `82 'SNAPPY' 00`, version 1, compatible 1, then blocks of at most 32 KiB, each a
///   big-endian length and a raw snappy block) for every magic, v2 included;
/// - lz4: the LZ4 frame format (`Lz4BlockOutputStream`: 64 KiB independent blocks, no
///   block or content checksum; the broken header checksum is only for magic 0);
/// - zstd: one zstd frame.
///
/// Where the compressed bytes live: the accumulator keeps one pool slot aside as scratch
/// while compression is on; a batch is compressed into it and copied back over its own
/// records (the slot holds the uncompressed records until then). When the output does not
/// fit back (incompressible records filling their slot), the batch is sent uncompressed:
/// valid for every broker, where Java would send the slightly larger compressed bytes.
///
/// A compressed batch that the broker refuses as too large cannot be split as Java splits
/// it (that needs the records back, and the core has no decompressor): it fails with
/// `MESSAGE_TOO_LARGE`. Retries re-stamp the producer id, epoch and sequence in the header
/// and recompute the CRC, which works on compressed batches as on others.
///
/// Batches fill as Java's do: a batch is full when its *estimated* compressed size reaches
/// `batch.size` ([`CompressionRatio`], Java's `CompressionRatioEstimator`, one per topic as
/// in Java; a batch takes the estimate of when it was opened),
/// so a slot holds several times `batch.size` of uncompressed records (see
/// [`ProducerConfig::slot_size`](crate::ProducerConfig::slot_size)).
///
/// # Contract
///
/// `compress` gets the whole uncompressed records section of one batch and must write it,
/// compressed as Kafka frames it for `codec` (above), into `output`, returning the bytes
/// written; [`CodecError::OutputTooSmall`] when `output` is too small (the core then sends
/// the batch uncompressed). `level` is the value of Java's level property for `codec`
/// ([`ProducerConfig::compression_level`](crate::ProducerConfig::compression_level)).
///
/// ```
/// use kafka_edge_core::record::{CodecError, CompressionType, Compressor};
/// /// Stores the records as they are, in a one-byte frame (a test codec, not Kafka's).
/// struct Stored;
/// impl Compressor for Stored {
///     fn supports(&self, codec: CompressionType) -> bool {
///         codec == CompressionType::Lz4
///     }
///     fn compress(&mut self, _: CompressionType, _: i32, input: &[u8], output: &mut [u8])
///         -> Result<usize, CodecError>
///     {
///         let out = output.get_mut(..input.len() + 1).ok_or(CodecError::OutputTooSmall)?;
///         out[0] = 0;
///         out[1..].copy_from_slice(input);
///         Ok(input.len() + 1)
///     }
/// }
/// ```
pub trait Compressor {
    /// Whether this compressor has `codec` (a producer configured with a codec its
    /// compressor lacks is refused when it is built).
    fn supports(&self, codec: CompressionType) -> bool;

    /// Compresses `input` into `output` with `codec` at `level`, and returns the number of
    /// bytes written.
    fn compress(
        &mut self,
        codec: CompressionType,
        level: i32,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, CodecError>;
}

impl<C: Compressor + ?Sized> Compressor for &mut C {
    fn supports(&self, codec: CompressionType) -> bool {
        (**self).supports(codec)
    }
    fn compress(
        &mut self,
        codec: CompressionType,
        level: i32,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<usize, CodecError> {
        (**self).compress(codec, level, input, output)
    }
}

/// The compressor of a producer without codecs: supports only `compression.type=none`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoCompression;

impl Compressor for NoCompression {
    fn supports(&self, codec: CompressionType) -> bool {
        codec == CompressionType::None
    }
    fn compress(
        &mut self,
        _: CompressionType,
        _: i32,
        _: &[u8],
        _: &mut [u8],
    ) -> Result<usize, CodecError> {
        Err(CodecError::Failed)
    }
}

/// A running estimate of the compression ratio (compressed batch size / uncompressed
/// records size), as Java's `CompressionRatioEstimator`: it starts at 1.0, jumps up by at
/// least 0.05 when a batch compresses worse than estimated and creeps down by at most 0.005
/// when it compresses better. Kept in ten-thousandths, so that no float is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionRatio(u32);

impl CompressionRatio {
    /// Fixed-point scale: 10 000 is a ratio of 1.0.
    pub const ONE: u32 = 10_000;
    /// Java's `COMPRESSION_RATIO_DETERIORATE_STEP` (0.05).
    const DETERIORATE_STEP: u32 = 500;
    /// Java's `COMPRESSION_RATIO_IMPROVING_STEP` (0.005).
    const IMPROVING_STEP: u32 = 50;

    /// The initial estimate, 1.0.
    pub const INITIAL: Self = Self(Self::ONE);

    /// The estimate in ten-thousandths (10 000 = 1.0).
    pub const fn per_ten_thousand(self) -> u32 {
        self.0
    }

    /// Updates the estimate with a batch whose `uncompressed` record bytes took
    /// `compressed` bytes (the records section, header excluded, as Java's
    /// `MemoryRecordsBuilder.close` measures it), as Java's `updateEstimation`.
    pub fn update(&mut self, compressed: usize, uncompressed: usize) {
        if uncompressed == 0 {
            return;
        }
        let observed = (compressed as u64)
            .saturating_mul(u64::from(Self::ONE))
            .checked_div(uncompressed as u64)
            .unwrap_or(u64::from(Self::ONE));
        let observed = u32::try_from(observed).unwrap_or(u32::MAX);
        self.0 = if observed > self.0 {
            observed.max(self.0.saturating_add(Self::DETERIORATE_STEP))
        } else if observed < self.0 {
            observed.max(self.0.saturating_sub(Self::IMPROVING_STEP))
        } else {
            self.0
        };
    }

    /// Java's `estimatedBytesWritten` of a compressed batch: the header plus the
    /// uncompressed record bytes times the estimate times 1.05
    /// (`COMPRESSION_RATE_ESTIMATION_FACTOR`).
    pub const fn estimated_size(self, header: usize, uncompressed: usize) -> usize {
        let scaled = (uncompressed as u128) * (self.0 as u128) * 105 / (Self::ONE as u128 * 100);
        header.saturating_add(if scaled > usize::MAX as u128 {
            usize::MAX
        } else {
            scaled as usize
        })
    }
}

impl Default for CompressionRatio {
    fn default() -> Self {
        Self::INITIAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_moves_as_javas_estimator() {
        let mut r = CompressionRatio::INITIAL;
        // Better than estimated: down by at most 0.005.
        r.update(300, 1000);
        assert_eq!(r.per_ten_thousand(), 9_950);
        // Worse: up by at least 0.05, or to the observed ratio.
        r.update(1010, 1000);
        assert_eq!(r.per_ten_thousand(), 10_450);
        r.update(2000, 1000);
        assert_eq!(r.per_ten_thousand(), 20_000);
        // Equal: unchanged; nothing to learn from an empty batch.
        r.update(2000, 1000);
        r.update(10, 0);
        assert_eq!(r.per_ten_thousand(), 20_000);
        // Converges on a good ratio a step at a time, never below the observed one.
        let mut r = CompressionRatio::INITIAL;
        for _ in 0..1000 {
            r.update(250, 1000);
        }
        assert_eq!(r.per_ten_thousand(), 2_500);
    }

    #[test]
    fn estimated_size_is_header_plus_scaled_records() {
        let r = CompressionRatio::INITIAL;
        assert_eq!(r.estimated_size(61, 1000), 61 + 1050);
        let mut r = CompressionRatio::INITIAL;
        for _ in 0..1000 {
            r.update(500, 1000);
        }
        assert_eq!(r.estimated_size(61, 1000), 61 + 525);
        assert_eq!(
            CompressionRatio::INITIAL.estimated_size(61, usize::MAX),
            usize::MAX
        );
    }
}
