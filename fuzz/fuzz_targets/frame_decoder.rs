//! Fuzzes `FrameDecoder::feed` over any chunking: the first byte picks the chunk size and the
//! maximum frame size; the decoder must never panic, must take at least one byte of a
//! non-empty input unless it fails, never return a frame above the maximum, and, after a
//! `FrameTooLarge` or `InvalidSize`, keep failing.
#![no_main]

use kafka_edge_core::protocol::{FrameDecoder, FrameError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(cfg & 0x0f) + 1;
    let max = usize::from(cfg >> 4) * 8;
    let mut dec = FrameDecoder::with_max_frame_size([0u8; 128], max);
    let mut failed: Option<FrameError> = None;
    for mut input in stream.chunks(chunk) {
        while !input.is_empty() {
            match dec.feed(input) {
                Ok(out) => {
                    assert!(failed.is_none());
                    assert!(out.consumed > 0 && out.consumed <= input.len());
                    if let Some(frame) = out.frame {
                        assert!(frame.len() <= max);
                    }
                    input = &input[out.consumed..];
                }
                Err(e) => {
                    if let Some(prev) = failed {
                        assert_eq!(prev, e);
                    }
                    failed = Some(e);
                    break;
                }
            }
        }
    }
});
