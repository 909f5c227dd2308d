//! The producer inside headless Chromium streaming through the kafka-edge bridge to a
//! three-node Apache Kafka while a broker is killed and restarted:
//! `scripts/wasm browser-cluster --dir D` (`tests/browser/cluster.mjs`) builds this test
//! with what it needs in the environment, kills and restarts a broker while it runs, and
//! reads every record back with the librdkafka judge (each exactly once, in order).
//!
//! Environment, read when the test is compiled: `KAFKA_EDGE_BROWSER_URL`,
//! `KAFKA_EDGE_BROWSER_TOKEN`, `KAFKA_EDGE_BROWSER_TOPIC` (as for `tests/browser.rs`), and
//! `KAFKA_EDGE_BROWSER_CALLS`: how many `send` calls of [`PER_CALL`] records to make, one
//! every [`EVERY_MS`] ms.
#![cfg(target_arch = "wasm32")]

mod common;

use common::object;
use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const CALLS: Option<&str> = option_env!("KAFKA_EDGE_BROWSER_CALLS");
/// Records per `send` call (`cluster.mjs` counts on it).
const PER_CALL: u32 = 25;
/// Milliseconds between calls.
const EVERY_MS: i32 = 50;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &Function, ms: i32);
}

async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| set_timeout(&resolve, ms));
    let _ = JsFuture::from(p).await;
}

/// A steady stream of keyed records (`key-i`, `value-i`), acks=all and idempotent, across
/// a broker's death and return: every call resolves, none rejects.
#[wasm_bindgen_test]
async fn a_stream_survives_a_broker_killed_and_restarted() {
    let (url, topic) = common::target("browser-cluster");
    let calls: u32 = CALLS
        .and_then(|c| c.parse().ok())
        .expect("KAFKA_EDGE_BROWSER_CALLS, a number set by scripts/wasm browser-cluster");
    let producer = common::connect(url, 60_000).await;

    let mut pending = Vec::new();
    for c in 0..calls {
        let messages = Array::new();
        for i in c * PER_CALL..(c + 1) * PER_CALL {
            messages.push(&object(&[
                ("key", JsValue::from_str(&format!("key-{i}"))),
                ("value", JsValue::from_str(&format!("value-{i}"))),
            ]));
        }
        pending.push(producer.send(object(&[
            ("topic", JsValue::from_str(topic)),
            ("messages", messages.into()),
        ])));
        sleep(EVERY_MS).await;
    }
    for (c, p) in pending.into_iter().enumerate() {
        if let Err(e) = JsFuture::from(p).await {
            let message = Reflect::get(&e, &JsValue::from_str("message")).unwrap_or_default();
            panic!("call {c} rejected: {message:?}");
        }
    }
    JsFuture::from(producer.close(None)).await.expect("close");
}
