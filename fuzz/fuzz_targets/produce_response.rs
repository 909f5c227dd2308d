//! Fuzzes `ProduceResponse::decode`: the first byte picks the version; the decoder must never panic,
//! its lazy arrays must iterate to their length, and what it decoded must re-encode into
//! `encoded_len` bytes and decode back to the same value.
#![no_main]

use kafka_edge_core::protocol::{ApiKey, Message, Reader, Writer, ProduceResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&v, bytes)) = data.split_first() else {
        return;
    };
    // Mostly supported versions, sometimes not.
    let version = i16::from(v % 16);
    let Ok(msg) = ProduceResponse::decode(version, &mut Reader::new(bytes)) else {
        return;
    };
    assert!(ApiKey::Produce.supports(version));
    for t in &msg.responses {
        assert_eq!(t.partition_responses.iter().count(), t.partition_responses.len());
        for p in &t.partition_responses {
            assert_eq!(p.record_errors.iter().count(), p.record_errors.len());
            let _ = p.error_code.class();
        }
    }
    assert_eq!(msg.node_endpoints.iter().count(), msg.node_endpoints.len());
    let mut buf = vec![0u8; msg.encoded_len(version)];
    let mut w = Writer::new(&mut buf);
    msg.encode(version, &mut w).expect("re-encode");
    assert_eq!(w.position(), buf.len());
    let again = ProduceResponse::decode(version, &mut Reader::new(&buf)).expect("decode re-encoded");
    assert_eq!(again, msg);
});
