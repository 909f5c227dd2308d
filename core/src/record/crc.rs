//! CRC32C (Castagnoli), the checksum of record batches v2.
//!
//! The portable path uses the `crc` crate's slice-by-16 tables (16 KiB of read-only data,
//! about 10x faster than its default one-byte table); the `small-crc-table` feature takes
//! the one-byte table instead (1 KiB, for flash-tight boards). With the `hardware-crc` feature the
//! `crc32c` crate is used instead: SSE4.2 or ARMv8 CRC instructions, detected at run time,
//! with its own software fallback (that crate needs `std`).

/// Slices of the portable table: 16 (16 KiB), or 1 (1 KiB) with `small-crc-table`.
#[cfg(not(feature = "hardware-crc"))]
const SLICES: usize = if cfg!(feature = "small-crc-table") {
    1
} else {
    16
};

#[cfg(not(feature = "hardware-crc"))]
static CASTAGNOLI: crc::Crc<u32, crc::Table<SLICES>> =
    crc::Crc::<u32, crc::Table<SLICES>>::new(&crc::CRC_32_ISCSI);

/// The CRC32C of `data`, as Kafka's `Crc32C.compute`.
///
/// ```
/// assert_eq!(kafka_edge_core::crc32c(b"123456789"), 0xE306_9283);
/// ```
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    #[cfg(feature = "hardware-crc")]
    {
        crc32c::crc32c(data)
    }
    #[cfg(not(feature = "hardware-crc"))]
    {
        CASTAGNOLI.checksum(data)
    }
}

/// Continues a CRC32C: `crc32c_append(crc32c(a), b) == crc32c(a ++ b)`.
#[inline]
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(feature = "hardware-crc")]
    {
        crc32c::crc32c_append(crc, data)
    }
    #[cfg(not(feature = "hardware-crc"))]
    {
        // The register of this reflected CRC is the finalised value negated (`xorout = !0`);
        // `digest_with_initial` takes an unreflected initial value and reflects it.
        let mut digest = CASTAGNOLI.digest_with_initial((!crc).reverse_bits());
        digest.update(data);
        digest.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // Apache Kafka clients/src/test/java/org/apache/kafka/common/utils/Crc32CTest.java
        // (testValue: "Some String" -> 608512271).
        assert_eq!(crc32c(b"Some String"), 608_512_271);
        // The CRC catalogue check value of CRC-32/ISCSI.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn append_matches_one_shot() {
        let data = b"The quick brown fox jumps over the lazy dog";
        for split in 0..=data.len() {
            let (a, b) = data.split_at(split);
            assert_eq!(crc32c_append(crc32c(a), b), crc32c(data));
        }
    }
}
