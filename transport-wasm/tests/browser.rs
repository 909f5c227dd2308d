//! The producer inside headless Chromium, through a WebSocket gateway, to the real Apache
//! Kafka: `scripts/wasm browser --dir D` creates the topic, asks Java for the keys'
//! partitions, starts the gateway (websockify in front of a one-node cluster), builds this
//! test with what it needs in the environment, runs it under `wasm-bindgen-test-runner`,
//! and then reads every record back with the librdkafka judge
//! (`tests/browser/check.mjs`).
//!
//! Environment, read when the test is compiled:
//! - `KAFKA_EDGE_BROWSER_URL`: the gateway's `ws://` URL (`bridge.url`);
//! - `KAFKA_EDGE_BROWSER_TOKEN`: the client token the gateway asks for (`bridge.token`), or
//!   empty;
//! - `KAFKA_EDGE_BROWSER_TOPIC`: a topic with several partitions;
//! - `KAFKA_EDGE_BROWSER_PARTITIONS`: Java's partition of `key-0`, `key-1`, ..., comma
//!   separated (the number of entries is the number of keyed records to send).
#![cfg(target_arch = "wasm32")]

mod common;

use common::{get, object};
use js_sys::{Array, Promise, Uint8Array};
use kafka_edge_wasm::Producer;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const PARTITIONS: Option<&str> = option_env!("KAFKA_EDGE_BROWSER_PARTITIONS");

/// Record `i` as `check.mjs` expects it: key `key-i`, value `value-i` (bytes for odd `i`),
/// headers `trace: t-i` and `seq: [i as 4 big-endian bytes]`.
fn message(i: u32) -> Vec<(&'static str, JsValue)> {
    let value = format!("value-{i}");
    let value = if i % 2 == 1 {
        Uint8Array::from(value.as_bytes()).into()
    } else {
        JsValue::from_str(&value)
    };
    let headers = object(&[
        ("trace", JsValue::from_str(&format!("t-{i}"))),
        ("seq", Uint8Array::from(&i.to_be_bytes()[..]).into()),
    ]);
    vec![
        ("key", JsValue::from_str(&format!("key-{i}"))),
        ("value", value),
        ("headers", headers),
    ]
}

async fn settle(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

/// Keyed records with headers from the browser: the first half one `sendOne` each (all in
/// flight at once), the second half in one `send`; every key lands in Java's partition.
#[wasm_bindgen_test]
async fn keyed_records_with_headers_land_in_javas_partitions() {
    let (url, topic) = common::target("browser");
    let partitions =
        PARTITIONS.expect("KAFKA_EDGE_BROWSER_PARTITIONS, set by scripts/wasm browser");
    let expected: Vec<i32> = partitions
        .split(',')
        .map(|p| p.trim().parse().expect("a partition number"))
        .collect();
    let n = expected.len() as u32;
    let half = n / 2;

    let producer = common::connect(url, 30_000).await;

    // One record per call, all in flight together.
    let pending: Vec<Promise> = (0..half)
        .map(|i| {
            let mut m = message(i);
            m.push(("topic", JsValue::from_str(topic)));
            producer.send_one(object(&m))
        })
        .collect();
    let mut offsets = std::collections::BTreeSet::new();
    for (i, p) in pending.into_iter().enumerate() {
        let pos = settle(p).await.expect("sendOne resolves");
        let partition = get(&pos, "partition").as_f64().expect("partition") as i32;
        assert_eq!(partition, expected[i], "key-{i}: Java's partition");
        let offset = get(&pos, "offset").as_string().expect("offset is a string");
        assert!(offset.parse::<i64>().expect("an integer") >= 0);
        assert!(offsets.insert((partition, offset)), "one offset per record");
        assert_eq!(get(&pos, "topic").as_string().as_deref(), Some(topic));
    }

    // The rest in one call: KafkaJS's RecordMetadata, one entry per partition written.
    let messages = Array::new();
    for i in half..n {
        messages.push(&object(&message(i)));
    }
    let meta = settle(producer.send(object(&[
        ("topic", JsValue::from_str(topic)),
        ("messages", messages.into()),
    ])))
    .await
    .expect("send resolves");
    let meta = Array::from(&meta);
    let mut written: Vec<i32> = meta
        .iter()
        .map(|m| {
            assert_eq!(get(&m, "errorCode").as_f64(), Some(0.0));
            assert_eq!(get(&m, "topicName").as_string().as_deref(), Some(topic));
            get(&m, "partition").as_f64().expect("partition") as i32
        })
        .collect();
    let mut want: Vec<i32> = expected[half as usize..].to_vec();
    want.sort_unstable();
    want.dedup();
    written.sort_unstable();
    assert_eq!(
        written, want,
        "the partitions of the second half, as Java picks them"
    );

    settle(producer.flush()).await.expect("flush");
    settle(producer.close(None)).await.expect("close");
}

/// A browser has no TCP: `bootstrap.servers` alone is refused with a typed error naming
/// `bridge.url`, not a failure at the first send.
#[wasm_bindgen_test]
async fn bootstrap_servers_without_a_bridge_is_refused_in_a_browser() {
    let err = match Producer::connect(object(&[(
        "bootstrap.servers",
        JsValue::from_str("127.0.0.1:9092"),
    )]))
    .await
    {
        Ok(_) => panic!("a browser producer without bridge.url was created"),
        Err(e) => e,
    };
    let message = get(&err, "message").as_string().unwrap_or_default();
    assert!(message.contains("bridge.url"), "{message}");
    assert_eq!(get(&err, "name").as_string().as_deref(), Some("TypeError"));
}
