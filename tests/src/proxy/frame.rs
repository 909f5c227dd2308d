//! Kafka frames in a byte stream: a 4-byte big-endian size, then that many bytes.

/// Finds Kafka frames (a 4-byte big-endian size, then that many bytes) in one direction
/// of a connection.
#[derive(Debug, Default)]
pub(super) struct FrameTracker {
    pub(super) next_start: u64,
    header: [u8; 4],
    header_len: usize,
}

impl FrameTracker {
    /// Feeds `chunk`, which starts at stream offset `at`; returns the first frame whose
    /// size prefix completes in this chunk and which starts at or after `from`, as
    /// (start offset, size).
    pub(super) fn feed(&mut self, at: u64, chunk: &[u8], from: Option<u64>) -> Option<(u64, u64)> {
        let mut found = None;
        let mut i = 0usize;
        while i < chunk.len() {
            let pos = at + i as u64;
            if pos < self.next_start {
                let skip = (self.next_start - pos).min((chunk.len() - i) as u64);
                i += skip as usize;
                continue;
            }
            self.header[self.header_len] = chunk[i];
            self.header_len += 1;
            i += 1;
            if self.header_len == 4 {
                let size = u64::from(u32::from_be_bytes(self.header) & 0x7fff_ffff);
                let start = self.next_start;
                self.next_start = start + 4 + size;
                self.header_len = 0;
                if found.is_none() && from.is_some_and(|f| start >= f) {
                    found = Some((start, size));
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_tracker_finds_frames_split_across_chunks() {
        let mut t = FrameTracker::default();
        // Frame of 3 bytes, then a frame of 2 bytes whose size prefix is split.
        let stream = [0, 0, 0, 3, 9, 9, 9, 0, 0, 0, 2, 7, 7];
        assert_eq!(t.feed(0, &stream[..9], Some(0)), Some((0, 3)));
        assert_eq!(t.feed(9, &stream[9..], Some(1)), Some((7, 2)));
        assert_eq!(t.next_start, 13);
    }
}
