//! Size-delimited frames over a byte stream: every Kafka request and response is an `INT32`
//! size followed by that many bytes.
//!
//! [`FrameDecoder`] reassembles frames from any chunking of the stream into a fixed receive
//! buffer the caller hands in; it never grows. A frame that arrives whole in one input chunk
//! is returned straight from that chunk, without a copy.

use core::fmt;

use super::codec::{EncodeError, Writer};

/// Why the stream cannot be framed; the connection is to be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame declared more bytes than the configured maximum.
    FrameTooLarge {
        /// The declared size.
        size: usize,
        /// The maximum frame size.
        max: usize,
    },
    /// A frame declared a negative size.
    InvalidSize {
        /// The declared size.
        size: i32,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::FrameTooLarge { size, max } => {
                write!(f, "frame of {size} bytes exceeds the maximum of {max}")
            }
            Self::InvalidSize { size } => write!(f, "invalid frame size {size}"),
        }
    }
}

impl core::error::Error for FrameError {}

/// What one call to [`FrameDecoder::feed`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Feed<'a> {
    /// Input bytes taken; the caller keeps the rest for the next call.
    pub consumed: usize,
    /// A complete frame (without its size prefix), valid until the next call.
    pub frame: Option<&'a [u8]>,
}

/// Reassembles size-delimited frames from a byte stream into caller-provided storage.
///
/// `feed` takes bytes until it has completed one frame or used up its input, and says how
/// many it took; it never takes bytes of the frame after the one it returns.
///
/// ```
/// use kafka_edge_core::protocol::FrameDecoder;
/// let mut dec = FrameDecoder::new([0u8; 64]);
/// let stream = [0, 0, 0, 2, b'h', b'i', 0, 0, 0, 1, b'!'];
/// let mut frames = Vec::new();
/// for chunk in stream.chunks(3) {
///     let mut input = chunk;
///     while !input.is_empty() {
///         let out = dec.feed(input)?;
///         input = &input[out.consumed..];
///         if let Some(frame) = out.frame {
///             frames.push(frame.to_vec());
///         }
///     }
/// }
/// assert_eq!(frames, [b"hi".to_vec(), b"!".to_vec()]);
/// # Ok::<(), kafka_edge_core::protocol::FrameError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder<S> {
    buf: S,
    max_frame_size: usize,
    size_prefix: [u8; 4],
    /// Bytes of the size prefix received so far (0..=4).
    prefix_len: u8,
    /// Bytes of the current frame's body received so far.
    body_len: usize,
    /// `Some` once the size prefix is complete.
    frame_size: Option<usize>,
    /// Set after a framing error: the stream cannot be resynchronised.
    error: Option<FrameError>,
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> FrameDecoder<S> {
    /// A decoder over `buf`, whose length is the maximum frame size.
    pub fn new(buf: S) -> Self {
        let max = buf.as_ref().len();
        Self::with_max_frame_size(buf, max)
    }

    /// A decoder over `buf` that refuses frames larger than `max_frame_size` (at most the
    /// length of `buf`).
    pub fn with_max_frame_size(buf: S, max_frame_size: usize) -> Self {
        let max_frame_size = max_frame_size.min(buf.as_ref().len());
        Self {
            buf,
            max_frame_size,
            size_prefix: [0; 4],
            prefix_len: 0,
            body_len: 0,
            frame_size: None,
            error: None,
        }
    }

    /// The largest frame accepted.
    pub fn max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// Whether part of a frame has been received (closing now would cut it).
    pub fn in_progress(&self) -> bool {
        self.prefix_len > 0
    }

    /// Forgets any partial frame and a previous error (for a new connection).
    pub fn reset(&mut self) {
        self.prefix_len = 0;
        self.body_len = 0;
        self.frame_size = None;
        self.error = None;
    }

    /// Takes bytes of `input` until one frame is complete or `input` is used up.
    ///
    /// After an error every call returns the same error until [`reset`](Self::reset).
    pub fn feed<'s>(&'s mut self, input: &'s [u8]) -> Result<Feed<'s>, FrameError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut consumed = 0;
        let size = match self.frame_size {
            Some(size) => size,
            None => {
                let have = usize::from(self.prefix_len);
                let take = (4 - have).min(input.len());
                if let (Some(dst), Some(src)) = (
                    self.size_prefix.get_mut(have..have + take),
                    input.get(..take),
                ) {
                    dst.copy_from_slice(src);
                }
                consumed = take;
                self.prefix_len += take as u8;
                if self.prefix_len < 4 {
                    return Ok(Feed {
                        consumed,
                        frame: None,
                    });
                }
                let size = self.check_size(i32::from_be_bytes(self.size_prefix))?;
                self.frame_size = Some(size);
                // Fast path: the whole body is in this chunk; hand it out without a copy.
                if let Some(frame) = input.get(consumed..consumed + size) {
                    self.finish();
                    return Ok(Feed {
                        consumed: consumed + size,
                        frame: Some(frame),
                    });
                }
                size
            }
        };
        let rest = input.get(consumed..).unwrap_or_default();
        let take = (size - self.body_len).min(rest.len());
        let start = self.body_len;
        if let (Some(dst), Some(src)) = (
            self.buf.as_mut().get_mut(start..start + take),
            rest.get(..take),
        ) {
            dst.copy_from_slice(src);
        }
        self.body_len += take;
        consumed += take;
        if self.body_len < size {
            return Ok(Feed {
                consumed,
                frame: None,
            });
        }
        self.finish();
        Ok(Feed {
            consumed,
            frame: self.buf.as_ref().get(..size),
        })
    }

    fn check_size(&mut self, size: i32) -> Result<usize, FrameError> {
        let err = match usize::try_from(size) {
            Err(_) => FrameError::InvalidSize { size },
            Ok(size) if size > self.max_frame_size => FrameError::FrameTooLarge {
                size,
                max: self.max_frame_size,
            },
            Ok(size) => return Ok(size),
        };
        self.error = Some(err);
        Err(err)
    }

    fn finish(&mut self) {
        self.prefix_len = 0;
        self.body_len = 0;
        self.frame_size = None;
    }
}

/// The 4-byte size prefix of a frame whose body is `size` bytes.
pub fn frame_size_prefix(size: usize) -> Result<[u8; 4], EncodeError> {
    i32::try_from(size)
        .map(i32::to_be_bytes)
        .map_err(|_| EncodeError::LengthOverflow)
}

/// Writes the 4-byte size prefix of a frame whose body is `size` bytes.
pub fn write_frame_size(w: &mut Writer<'_>, size: usize) -> Result<(), EncodeError> {
    w.write_raw(&frame_size_prefix(size)?)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn decode_all<S: AsRef<[u8]> + AsMut<[u8]>>(
        dec: &mut FrameDecoder<S>,
        stream: &[u8],
        chunk: usize,
    ) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut frames = Vec::new();
        for mut input in stream.chunks(chunk.max(1)) {
            while !input.is_empty() {
                let out = dec.feed(input)?;
                assert!(out.consumed > 0);
                input = &input[out.consumed..];
                if let Some(f) = out.frame {
                    frames.push(f.to_vec());
                }
            }
        }
        Ok(frames)
    }

    #[test]
    fn test_frames_in_any_chunking() {
        let stream = [0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        for chunk in 1..=stream.len() {
            let mut dec = FrameDecoder::new([0u8; 8]);
            let frames = decode_all(&mut dec, &stream, chunk).unwrap();
            assert_eq!(frames, [&[1u8, 2, 3][..], &[], &[9]], "chunk {chunk}");
            assert!(!dec.in_progress());
        }
    }

    #[test]
    fn test_one_frame_per_feed() {
        let stream = [0, 0, 0, 1, 7, 0, 0, 0, 1, 8];
        let mut dec = FrameDecoder::new([0u8; 4]);
        let out = dec.feed(&stream).unwrap();
        assert_eq!(
            out,
            Feed {
                consumed: 5,
                frame: Some(&[7][..])
            }
        );
        let out = dec.feed(&stream[5..8]).unwrap();
        assert_eq!(out.consumed, 3);
        assert!(dec.in_progress());
    }

    #[test]
    fn test_frame_too_large_and_invalid_size() {
        let mut dec = FrameDecoder::with_max_frame_size([0u8; 64], 16);
        assert_eq!(dec.max_frame_size(), 16);
        let err = FrameError::FrameTooLarge { size: 17, max: 16 };
        assert_eq!(dec.feed(&[0, 0, 0, 17, 0]), Err(err));
        // Sticky until reset.
        assert_eq!(dec.feed(&[0]), Err(err));
        dec.reset();
        assert_eq!(
            dec.feed(&[0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::InvalidSize { size: -1 })
        );
    }

    #[test]
    fn test_frame_size_prefix() {
        assert_eq!(frame_size_prefix(258), Ok([0, 0, 1, 2]));
        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf);
        write_frame_size(&mut w, 1).unwrap();
        assert_eq!(w.written(), &[0, 0, 0, 1]);
        #[cfg(target_pointer_width = "64")]
        assert_eq!(frame_size_prefix(1 << 31), Err(EncodeError::LengthOverflow));
    }

    proptest! {
        #[test]
        fn prop_frames_survive_any_chunking(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..6), chunk in 1usize..30) {
            let mut stream = Vec::new();
            for b in &bodies {
                stream.extend_from_slice(&frame_size_prefix(b.len()).unwrap());
                stream.extend_from_slice(b);
            }
            let mut dec = FrameDecoder::new([0u8; 20]);
            prop_assert_eq!(decode_all(&mut dec, &stream, chunk).unwrap(), bodies);
        }

        #[test]
        fn prop_feed_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), chunk in 1usize..9, max in 0usize..16) {
            let mut dec = FrameDecoder::with_max_frame_size([0u8; 12], max);
            let _ = decode_all(&mut dec, &bytes, chunk);
        }
    }
}
