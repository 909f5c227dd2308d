//! Variable-length integers as Kafka's `ByteUtils` writes them: LEB128 ("unsigned varint"
//! of flexible versions and tagged fields) and zig-zag LEB128 (`VARINT`/`VARLONG` of record
//! fields). The one set of helpers for the protocol codec and the record batch builder.
//!
//! Everything here is `const` and `#[inline(always)]`: the record builder sizes every field
//! of every record with these on its hot path.

/// Zig-zag encoding of an `i32`: small magnitudes of either sign give small values.
#[inline(always)]
pub(crate) const fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// Zig-zag encoding of an `i64`.
#[inline(always)]
pub(crate) const fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag32`].
#[inline(always)]
pub(crate) const fn unzigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// The inverse of [`zigzag64`].
#[inline(always)]
pub(crate) const fn unzigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Bytes taken by `v` as LEB128 (1..=10): `ceil(bits / 7)`, computed as
/// `(bits * 9 + 64) / 64`, which is exact for 1..=64 bits and avoids a division.
#[inline(always)]
pub(crate) const fn unsigned_varlong_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros();
    ((bits * 9 + 64) >> 6) as usize
}

/// Bytes taken by `v` as an unsigned varint (1..=5), as Kafka's
/// `ByteUtils.sizeOfUnsignedVarint`.
#[inline(always)]
pub const fn unsigned_varint_len(v: u32) -> usize {
    unsigned_varlong_len(v as u64)
}

/// Bytes taken by `v` as a zig-zag varint (1..=5), as Kafka's `ByteUtils.sizeOfVarint`.
#[inline(always)]
pub const fn varint_len(v: i32) -> usize {
    unsigned_varint_len(zigzag32(v))
}

/// Bytes taken by `v` as a zig-zag varlong (1..=10), as Kafka's `ByteUtils.sizeOfVarlong`.
#[inline(always)]
pub const fn varlong_len(v: i64) -> usize {
    unsigned_varlong_len(zigzag64(v))
}

/// Writes `v` as LEB128 into `dst`, which must be exactly `unsigned_varlong_len(v)` long.
#[inline(always)]
pub(crate) fn put_uvarint_exact(dst: &mut [u8], mut v: u64) {
    for b in dst.iter_mut() {
        *b = (v as u8) | 0x80;
        v >>= 7;
    }
    if let Some(last) = dst.last_mut() {
        *last &= 0x7f;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of `v` as LEB128, counted the slow way.
    fn leb128_len(mut v: u64) -> usize {
        let mut n = 1;
        while v >= 0x80 {
            v >>= 7;
            n += 1;
        }
        n
    }

    #[test]
    fn lengths_at_every_bit_boundary() {
        for bits in 0..64 {
            for v in [1u64 << bits, (1u64 << bits) - 1, (1u64 << bits) + 1] {
                assert_eq!(unsigned_varlong_len(v), leb128_len(v), "{v}");
                assert_eq!(varlong_len(v as i64), leb128_len(zigzag64(v as i64)));
                assert_eq!(
                    unsigned_varint_len(v as u32),
                    leb128_len(u64::from(v as u32))
                );
                assert_eq!(varint_len(v as i32), leb128_len(zigzag32(v as i32).into()));
            }
        }
        assert_eq!(unsigned_varlong_len(u64::MAX), 10);
        assert_eq!(unsigned_varint_len(u32::MAX), 5);
    }

    /// Kafka's `ByteUtilsTest`: zig-zag values and sizes.
    #[test]
    fn zigzag_round_trips_like_byte_utils() {
        for (v, z) in [
            (0, 0u32),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (i32::MAX, u32::MAX - 1),
        ] {
            assert_eq!(zigzag32(v), z);
            assert_eq!(unzigzag32(z), v);
        }
        assert_eq!(zigzag32(i32::MIN), u32::MAX);
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, 1 << 40, -(1 << 40)] {
            assert_eq!(unzigzag64(zigzag64(v)), v);
        }
        assert_eq!(varint_len(-64), 1);
        assert_eq!(varint_len(64), 2);
        assert_eq!(varlong_len(i64::MIN), 10);
    }

    #[test]
    fn put_writes_leb128() {
        let mut buf = [0u8; 3];
        put_uvarint_exact(&mut buf, 300 << 7 | 5);
        assert_eq!(buf, [0x85, 0xAC, 0x02]);
        let mut one = [0xFFu8; 1];
        put_uvarint_exact(&mut one, 1);
        assert_eq!(one, [1]);
    }
}
