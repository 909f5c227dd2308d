//! Fuzzes the decoders of the transactional APIs' responses (FindCoordinator,
//! AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit): the first byte picks the
//! API and the version; a decoder must never panic, and what it decoded must re-encode into
//! `encoded_len` bytes that decode back to the same value.
#![no_main]

use kafka_edge_core::protocol::{
    AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, EndTxnResponse,
    FindCoordinatorResponse, Message, Reader, TxnOffsetCommitResponse, Writer,
};
use libfuzzer_sys::fuzz_target;

macro_rules! check {
    ($ty:ty, $version:expr, $bytes:expr) => {{
        let version = $version;
        let Ok(msg) = <$ty>::decode(version, &mut Reader::new($bytes)) else {
            return;
        };
        let mut buf = vec![0u8; msg.encoded_len(version)];
        let mut w = Writer::new(&mut buf);
        msg.encode(version, &mut w).expect("re-encode");
        assert_eq!(w.position(), buf.len());
        let mut r = Reader::new(&buf);
        let again = <$ty>::decode(version, &mut r).expect("decode re-encoded");
        assert!(r.is_empty());
        assert_eq!(again, msg);
    }};
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    // Mostly supported versions, sometimes not.
    let version = i16::from(sel % 8);
    match sel / 8 % 5 {
        0 => check!(FindCoordinatorResponse, version, bytes),
        1 => check!(AddPartitionsToTxnResponse, version, bytes),
        2 => check!(AddOffsetsToTxnResponse, version, bytes),
        3 => check!(EndTxnResponse, version, bytes),
        _ => check!(TxnOffsetCommitResponse, version, bytes),
    }
});
