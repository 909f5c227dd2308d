//! Fuzzes the SCRAM client with arbitrary server messages: the first byte picks SHA-256 or
//! SHA-512, whether the client nonce is put in front of server-first (so that the input gets
//! past the nonce check and into the salt, iteration and key-derivation code), and the size
//! of the output buffer; the rest is split at the first `0xff` (never valid in a SCRAM
//! message) into server-first and server-final. Nothing may panic, a client-final must look
//! like one, and `Done` must only follow a server-final.
#![no_main]

use kafka_edge_core::sasl::{Mechanism, SaslClient, SaslError, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mechanism = if control & 1 == 0 {
        Mechanism::ScramSha256
    } else {
        Mechanism::ScramSha512
    };
    let prefix_nonce = control & 2 != 0;
    let out_len = if control & 4 != 0 { 64 } else { 1024 };
    let (first, last) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };

    let mut client =
        SaslClient::scram(mechanism, "user", "pencil", &[0x5a; 18]).expect("valid client");
    let mut out = vec![0u8; out_len];
    let n = client.start(&mut out).expect("client-first fits");
    // `n,,n=user,r=<nonce>`
    let nonce = out[..n].split(|&b| b == b'=').nth(2).expect("nonce").to_vec();

    let mut server_first = Vec::new();
    if prefix_nonce {
        server_first.extend_from_slice(b"r=");
        server_first.extend_from_slice(&nonce);
    }
    server_first.extend_from_slice(first);

    match client.step(&server_first, &mut out) {
        Ok(Step::Send(n)) => {
            assert!(n <= out.len());
            assert!(out[..n].starts_with(b"c=biws,r="));
            assert!(!client.is_done());
            match client.step(last, &mut out) {
                Ok(step) => {
                    assert_eq!(step, Step::Done);
                    assert!(client.is_done());
                }
                Err(SaslError::BufferTooSmall { .. }) => unreachable!("server-final writes nothing"),
                Err(_) => assert!(!client.is_done()),
            }
        }
        Ok(Step::Done) => unreachable!("done after server-first"),
        Err(SaslError::BufferTooSmall { needed }) => assert!(needed > out.len()),
        Err(_) => {
            assert!(!client.is_done());
            assert!(client.step(last, &mut out).is_err());
        }
    }
});
