//! The sensor readings the firmware produces: the same bytes on the board and in the host
//! test that reads them back (`transport-embedded/tests/qemu.rs` includes this file), so that
//! every record can be compared exactly. No heap, no std.

use core::fmt::{self, Write};

/// The key's bytes at most: `sensor-NNNN`.
pub const KEY_MAX: usize = 16;
/// The value's bytes at most.
pub const VALUE_MAX: usize = 64;

/// One reading: key `sensor-<id>`, a small JSON value, and the `seq` header.
#[derive(Debug, Clone)]
pub struct Reading {
    key: Buf<KEY_MAX>,
    value: Buf<VALUE_MAX>,
    seq: Buf<10>,
}

impl Reading {
    /// Reading `seq` of `sensors` sensors (taken in turn): its sensor's temperature in
    /// milli-degrees Celsius follows a fixed pseudo-random walk around 20 °C.
    pub fn new(seq: u32, sensors: u32) -> Self {
        let sensor = seq % sensors.max(1);
        let milli_c = 20_000 + (seq.wrapping_mul(7919) ^ sensor.wrapping_mul(104_729)) % 5000;
        let mut r = Self {
            key: Buf::default(),
            value: Buf::default(),
            seq: Buf::default(),
        };
        // The buffers hold the longest values of u32 arguments: the writes cannot fail.
        let _ = write!(r.key, "sensor-{sensor:04}");
        let _ = write!(
            r.value,
            "{{\"seq\":{seq},\"sensor\":{sensor},\"milli_c\":{milli_c}}}"
        );
        let _ = write!(r.seq, "{seq}");
        r
    }

    /// The key (the sensor): records of one sensor share a partition.
    pub fn key(&self) -> &[u8] {
        self.key.bytes()
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        self.value.bytes()
    }

    /// The value of the `seq` header (the reading's number, in decimal).
    pub fn seq(&self) -> &[u8] {
        self.seq.bytes()
    }
}

/// The header keys, in order: `unit` (always `mC`) and `seq`.
pub const HEADER_UNIT: (&str, &[u8]) = ("unit", b"mC");
/// The key of the `seq` header.
pub const HEADER_SEQ: &str = "seq";

/// A fixed buffer that `write!` fills.
#[derive(Debug, Clone)]
struct Buf<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Buf<N> {
    fn default() -> Self {
        Self {
            bytes: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> Buf<N> {
    fn bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl<const N: usize> Write for Buf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
