//! What the browser tests share: plain objects from Rust, and a producer through the
//! gateway named at build time (`KAFKA_EDGE_BROWSER_URL`, `KAFKA_EDGE_BROWSER_TOKEN`).
#![allow(dead_code)]

use js_sys::{Object, Reflect};
use kafka_edge_wasm::Producer;
use wasm_bindgen::JsValue;

/// The gateway's `ws://` URL, set by the scripts that run these tests.
pub(crate) const URL: Option<&str> = option_env!("KAFKA_EDGE_BROWSER_URL");
/// The client token the gateway asks for, or empty.
pub(crate) const TOKEN: Option<&str> = option_env!("KAFKA_EDGE_BROWSER_TOKEN");
/// The topic to produce to.
pub(crate) const TOPIC: Option<&str> = option_env!("KAFKA_EDGE_BROWSER_TOPIC");

/// A plain object of `entries`.
pub(crate) fn object(entries: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in entries {
        assert!(Reflect::set(&o, &JsValue::from_str(k), v).unwrap_or(false));
    }
    o.into()
}

/// `o[key]`, or `undefined`.
pub(crate) fn get(o: &JsValue, key: &str) -> JsValue {
    Reflect::get(o, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `(URL, TOPIC)`, or a panic that says how to run the test.
pub(crate) fn target(script: &str) -> (&'static str, &'static str) {
    match (URL, TOPIC) {
        (Some(url), Some(topic)) => (url, topic),
        _ => panic!(
            "run through `scripts/wasm {script}`: it sets KAFKA_EDGE_BROWSER_* at build time"
        ),
    }
}

/// A producer through the gateway (acks=all, linger.ms 5, the token if any), with
/// `max.block.ms` as given.
pub(crate) async fn connect(url: &str, max_block_ms: u32) -> Producer {
    let mut properties = vec![
        ("bridge.url", JsValue::from_str(url)),
        ("acks", JsValue::from_str("all")),
        ("linger.ms", JsValue::from(5)),
        ("max.block.ms", JsValue::from(max_block_ms)),
    ];
    if let Some(token) = TOKEN.filter(|t| !t.is_empty()) {
        properties.push(("bridge.token", JsValue::from_str(token)));
    }
    Producer::connect(object(&properties))
        .await
        .expect("connect through the gateway")
}
