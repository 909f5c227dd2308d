//! Fuzzes the bridge's request inspection (`check_frame` then `inspect`), what every client
//! WebSocket message passes: it must never panic, and what it forwards must hold up.
//! The first byte picks the options (SASL pass-through, which known topic id maps to an
//! allowed name); the rest is the message as a client sent it.
#![no_main]

use std::collections::HashMap;

use kafka_edge_bridge::inspect::{Policy, Refusal, check_frame, inspect};
use kafka_edge_bridge::topics::TopicAllowList;
use kafka_edge_core::protocol::{ApiKey, Uuid};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&opts, message)) = data.split_first() else {
        return;
    };
    let allow = TopicAllowList::parse(["ok-*", "t"]).expect("patterns");
    let ids: HashMap<Uuid, String> = [
        (Uuid([opts; 16]), "ok-known".to_owned()),
        (Uuid([!opts; 16]), "secret".to_owned()),
    ]
    .into();
    let policy = Policy {
        topics: &allow,
        sasl_passthrough: opts & 1 == 1,
    };
    let Ok(frame) = check_frame(message, 1 << 16) else {
        return;
    };
    assert_eq!(frame.len() + 4, message.len());
    let mut named = Vec::new();
    match inspect(frame, policy, &ids, |t| named.push(t)) {
        Ok(ok) => {
            // Only the producer's APIs pass, and every topic they named is allowed.
            assert!(matches!(
                ok.api,
                ApiKey::ApiVersions
                    | ApiKey::Metadata
                    | ApiKey::Produce
                    | ApiKey::InitProducerId
                    | ApiKey::SaslHandshake
                    | ApiKey::SaslAuthenticate
            ));
            if !policy.sasl_passthrough {
                assert!(!matches!(ok.api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate));
            }
            assert!(named.iter().all(|t| allow.allows(t)));
            assert!(named.is_empty() || ok.api == ApiKey::Metadata);
        }
        Err(r) => {
            assert!(Refusal::REASONS.contains(&r.reason()));
            let _ = r.to_string();
        }
    }
});
