//! Fuzzes `SaslHandshakeResponse::decode`: the first byte picks the version; the decoder must
//! never panic, its lazy `mechanisms` array must iterate to its length, and what it decoded
//! must re-encode into `encoded_len` bytes and decode back to the same value.
#![no_main]

use kafka_edge_core::protocol::{ApiKey, Message, Reader, SaslHandshakeResponse, Writer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&v, bytes)) = data.split_first() else {
        return;
    };
    // Mostly supported versions, sometimes not.
    let version = i16::from(v % 4);
    let Ok(msg) = SaslHandshakeResponse::decode(version, &mut Reader::new(bytes)) else {
        return;
    };
    assert!(ApiKey::SaslHandshake.supports(version));
    assert_eq!(msg.mechanisms.iter().count(), msg.mechanisms.len());
    let _ = msg.supports("SCRAM-SHA-256");
    let mut buf = vec![0u8; msg.encoded_len(version)];
    let mut w = Writer::new(&mut buf);
    msg.encode(version, &mut w).expect("re-encode");
    assert_eq!(w.position(), buf.len());
    let again =
        SaslHandshakeResponse::decode(version, &mut Reader::new(&buf)).expect("decode re-encoded");
    assert_eq!(again, msg);
});
