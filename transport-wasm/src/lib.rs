//! kafka-edge for JavaScript: the kafka-edge core producer compiled to WebAssembly and
//! driven from the JavaScript event loop, with a KafkaJS-shaped API. One ES module serves
//! browsers and Node:
//! - in a browser, `bridge.url` names a kafka-edge bridge next to the cluster: one WebSocket
//!   per broker connection, at `{bridge.url}/bootstrap/{i}` or `{bridge.url}/broker/{node
//!   id}` (the bridge dials only its own cluster's brokers), each binary message one whole
//!   Kafka frame, length prefix included, both ways; `bridge.token` is offered as the
//!   subprotocol `kafka-edge.bearer.<token>` beside `kafka-edge`;
//! - in Node (20.16 and later), `bootstrap.servers` over TCP (`net.Socket`).
//!
//! ```js
//! import { Producer } from 'kafka-edge';
//! const producer = await Producer.connect({
//!   'bootstrap.servers': '127.0.0.1:9092', 'linger.ms': 5, acks: 'all',
//!   // in a browser instead: 'bridge.url': 'wss://gateway.example/kafka', 'bridge.token': '...'
//! });
//! const meta = await producer.send({
//!   topic: 'events',
//!   messages: [{ key: 'k1', value: 'v1', headers: { trace: 'abc' } }],
//! });
//! // meta: [{ topicName: 'events', partition: 3, errorCode: 0, baseOffset: '41', ... }]
//! const one = await producer.sendOne({ topic: 'events', key: 'k2', value: new Uint8Array([1]) });
//! // one: { topic: 'events', partition: 0, offset: '7', timestamp: '1764441600000' }
//! await producer.flush();
//! await producer.close();
//! ```
//!
//! - Properties are Java's producer properties (`ProducerConfig::set` of the core), with
//!   string, number or boolean values; Java's defaults, so idempotence is on unless `acks`
//!   says otherwise.
//! - Keys, values and header values are strings (UTF-8), `Uint8Array`s (a Node `Buffer`
//!   is one) or `null`; a header value may also be an array of them (one header each).
//! - `send` waits up to `max.block.ms` for a topic's metadata or for buffer memory, as
//!   Java's `send` blocks, then resolves once every record of the call has its outcome.
//! - Promises reject with `Error` objects whose `name`, `code`, `reason` and `retriable`
//!   are described in the `error` module: never with a bare string.
//! - In a browser, timers of hidden tabs are throttled (`linger.ms` and timeouts stretch),
//!   and a closing tab loses what was not acknowledged: `pending` says how many records
//!   that is, and `flush()` on `visibilitychange`/`pagehide` sends them at once
//!   (`examples/browser` shows both).
//!
//! How the core is driven: see the `driver` module.

mod driver;
mod error;
mod js;
mod message;

use std::collections::BTreeMap;
use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect};
use kafka_edge_core::record::Header;
use kafka_edge_core::{ConfigError, Limits, ProduceError, ProducerConfig, ProducerRecord};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::driver::{Backend, CoreProducer, Placed, Shared};
use crate::message::OwnedRecord;

/// The property naming the WebSocket gateway (`ws://` or `wss://`) in place of TCP.
const BRIDGE_URL: &str = "bridge.url";
/// The property with the bearer token the gateway asks for.
const BRIDGE_TOKEN: &str = "bridge.token";

/// The socket back-end `properties` ask for, checked against what this host has.
fn backend(properties: &BTreeMap<String, String>) -> Result<Backend, JsValue> {
    let Some(url) = properties.get(BRIDGE_URL).cloned() else {
        if !js::has_tcp() {
            return Err(error::type_error(
                "this JavaScript host has no TCP sockets (a browser): set bridge.url to a \
                 kafka-edge bridge (ws:// or wss://)",
            ));
        }
        return Ok(Backend::Tcp);
    };
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        return Err(error::type_error(&format!(
            "bridge.url must be a ws:// or wss:// URL, not {url:?}"
        )));
    }
    if !js::has_websocket() {
        return Err(error::type_error(
            "this JavaScript host has no WebSocket (Node before 22): use bootstrap.servers",
        ));
    }
    let token = properties.get(BRIDGE_TOKEN).cloned();
    if let Some(t) = &token
        && (t.is_empty()
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b)))
    {
        return Err(error::type_error(
            "bridge.token must be non-empty, of letters, digits and . _ ~ -",
        ));
    }
    Ok(Backend::Bridge {
        url: url.trim_end_matches('/').to_owned(),
        token,
    })
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** Java producer properties, as strings, numbers or booleans: `bootstrap.servers` (TCP, in
 * Node), or `bridge.url` (`ws://`/`wss://`: a kafka-edge bridge, in browsers) with an
 * optional `bridge.token`. */
export type ProducerProperties =
  ({ "bootstrap.servers": string } | { "bridge.url": string; "bridge.token"?: string })
  & Record<string, string | number | boolean>;
/** Bytes: a string (sent as UTF-8), a Uint8Array (a Node Buffer is one), or null. */
export type Bytes = string | Uint8Array | null;
/** KafkaJS's `Message`. */
export interface Message {
  key?: Bytes;
  value: Bytes;
  headers?: Record<string, Bytes | Bytes[]>;
  partition?: number;
  /** Milliseconds since the Unix epoch (default: now). */
  timestamp?: string | number;
}
/** KafkaJS's `ProducerRecord`. */
export interface ProducerRecord { topic: string; messages: Message[] }
/** KafkaJS's `RecordMetadata`: one per partition a `send` call wrote to. */
export interface RecordMetadata {
  topicName: string;
  partition: number;
  errorCode: number;
  baseOffset: string;
  logAppendTime: string;
  logStartOffset: string;
}
/** Where `sendOne`'s record landed. */
export interface RecordPosition { topic: string; partition: number; offset: string; timestamp: string }
/** What promises reject with (`name` KafkaEdgeConfigError, KafkaEdgeSendError,
 * KafkaEdgeProduceError or TypeError). */
export interface KafkaEdgeError extends Error {
  /** Kafka's error code name (`MESSAGE_TOO_LARGE`), or null. */
  code: string | null;
  /** This package's cause (`TIMEOUT`, `RECORD_TOO_LARGE`, `BROKER`, ...). */
  reason: string;
  retriable: boolean;
}
"#;

/// A Kafka producer (KafkaJS's `producer()`, connected): create it with
/// `Producer.connect(properties)`.
#[wasm_bindgen]
pub struct Producer {
    shared: Rc<Shared>,
}

/// Java producer properties from a plain object, each value as Java's `Properties` would
/// hold it: strings as they are, booleans as `true`/`false`, integers without a fraction
/// (`5`, not `5.0`: the core parses integers), other numbers as JavaScript prints them.
fn parse_properties(object: &JsValue) -> Result<BTreeMap<String, String>, JsValue> {
    let object = object
        .dyn_ref::<Object>()
        .filter(|o| !o.is_instance_of::<Array>())
        .ok_or_else(|| error::type_error("properties must be an object"))?;
    let mut out = BTreeMap::new();
    for entry in Object::entries(object).iter() {
        let entry = Array::from(&entry);
        let key = entry.get(0).as_string().unwrap_or_default();
        let value = entry.get(1);
        let text = if let Some(s) = value.as_string() {
            s
        } else if let Some(b) = value.as_bool() {
            if b { "true" } else { "false" }.to_owned()
        } else if let Some(n) = value.as_f64() {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                (n as i64).to_string()
            } else {
                String::from(
                    js_sys::Number::from(n)
                        .to_string_with_radix(10)
                        .unwrap_or_default(),
                )
            }
        } else {
            return Err(error::type_error(&format!(
                "property {key} must be a string, a number or a boolean"
            )));
        };
        out.insert(key, text);
    }
    Ok(out)
}

#[wasm_bindgen]
impl Producer {
    /// Creates a producer from Java producer properties (`bootstrap.servers` required) and
    /// starts its driver; rejects with a `KafkaEdgeConfigError` for a property it cannot use.
    pub async fn connect(
        #[wasm_bindgen(unchecked_param_type = "ProducerProperties")] properties: JsValue,
    ) -> Result<Producer, JsValue> {
        let properties = parse_properties(&properties)?;
        let backend = backend(&properties)?;
        // Behind a bridge the brokers are named by index and node id, never by address: a
        // bridge needs no `bootstrap.servers` (its one entry stands for the bridge's list).
        let bootstrap = match (properties.get("bootstrap.servers"), &backend) {
            (Some(b), _) => b.clone(),
            (None, Backend::Bridge { .. }) => "bridge:9092".to_owned(),
            (None, Backend::Tcp) => {
                return Err(error::config_error(
                    &ConfigError::InvalidBootstrap,
                    Some("bootstrap.servers"),
                ));
            }
        };
        let mut config = ProducerConfig::new(&bootstrap)
            .map_err(|e| error::config_error(&e, Some("bootstrap.servers")))?;
        for (key, value) in properties
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "bootstrap.servers" | BRIDGE_URL | BRIDGE_TOKEN))
        {
            config
                .set(key, value)
                .map_err(|e| error::config_error(&e, Some(key)))?;
        }
        // `buffer.memory` in whole slots of `batch.size`; zeroed pages are cheap until used.
        let slot = config.slot_size();
        let pool_len = (config.buffer_memory / slot).saturating_mul(slot);
        let seed = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
        let core = CoreProducer::new(config, vec![0; pool_len], Limits::UNBOUNDED, seed)
            .map_err(|e| error::config_error(&e, None))?;
        Ok(Self {
            shared: Shared::start(core, backend),
        })
    }

    /// Sends `{ topic, messages: [{ key, value, headers, partition, timestamp }] }`;
    /// resolves to KafkaJS's `RecordMetadata[]`, one entry per partition written
    /// (`baseOffset`: the offset of the call's first record there, a string; `"-1"` with
    /// `acks=0`), or rejects with the first record's error.
    #[wasm_bindgen(unchecked_return_type = "Promise<RecordMetadata[]>")]
    pub fn send(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ProducerRecord")] record: JsValue,
    ) -> Promise {
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            let topic = topic_of(&record)?;
            let messages = get(&record, "messages");
            let messages = messages
                .dyn_ref::<Array>()
                .ok_or_else(|| error::type_error("messages must be an array"))?;
            let (buf, records) = OwnedRecord::parse_all(messages, js::wall_clock_ms())?;
            let placed = send_records(&shared, &topic, &records, &buf).await?;
            Ok(record_metadata(&topic, &placed))
        })
    }

    /// Sends one record `{ topic, key, value, headers, partition, timestamp }`; resolves to
    /// `{ topic, partition, offset, timestamp }` (`offset` a string, `"-1"` with `acks=0`;
    /// `timestamp` the broker's append time on `LogAppendTime` topics, else the record's).
    #[wasm_bindgen(js_name = sendOne, unchecked_return_type = "Promise<RecordPosition>")]
    pub fn send_one(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Message & { topic: string }")] record: JsValue,
    ) -> Promise {
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            let topic = topic_of(&record)?;
            let records = [OwnedRecord::parse(&record, js::wall_clock_ms())?];
            let placed = send_records(&shared, &topic, &records, &[]).await?;
            let (p, timestamp) = match (placed.first(), records.first()) {
                (Some(p), Some(r)) => (*p, r.timestamp),
                _ => return Err(error::produce_error(&ProduceError::Closed)),
            };
            let timestamp = if p.log_append_time_ms >= 0 {
                p.log_append_time_ms
            } else {
                timestamp
            };
            let out = Object::new();
            set(&out, "topic", JsValue::from_str(&topic));
            set(&out, "partition", JsValue::from(p.partition));
            set(&out, "offset", JsValue::from_str(&p.offset.to_string()));
            set(&out, "timestamp", JsValue::from_str(&timestamp.to_string()));
            Ok(out.into())
        })
    }

    /// Records accepted and not yet acknowledged or failed: what a closing page would lose
    /// (call `flush()` on `pagehide`, and say what is still pending).
    #[wasm_bindgen(getter)]
    pub fn pending(&self) -> u32 {
        self.shared.pending()
    }

    /// Sends every record accepted so far without waiting for `linger.ms`; resolves once
    /// each has its outcome.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn flush(&self) -> Promise {
        let shared = Rc::clone(&self.shared);
        future_to_promise(async move {
            {
                let mut d = shared.driver.borrow_mut();
                if d.done || d.core.is_flushed() {
                    return Ok(JsValue::UNDEFINED);
                }
                d.core.flush(js::now_ms());
            }
            shared.flushed().await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Refuses new records, delivers what it can within `timeoutMs` (default: no limit;
    /// the rest fails with a `KafkaEdgeProduceError` of reason `CLOSED`), then closes the
    /// sockets, which lets Node exit.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self, #[wasm_bindgen(js_name = timeoutMs)] timeout_ms: Option<f64>) -> Promise {
        let shared = Rc::clone(&self.shared);
        let timeout_ms = timeout_ms.map_or(u64::from(u32::MAX), |t| t.max(0.0) as u64);
        future_to_promise(async move {
            shared.closed(timeout_ms).await;
            Ok(JsValue::UNDEFINED)
        })
    }
}

/// Appends `records` (waiting up to `max.block.ms` for metadata or memory, as Java's `send`
/// blocks) and waits for their outcomes.
async fn send_records(
    shared: &Shared,
    topic: &str,
    records: &[OwnedRecord],
    buf: &[u8],
) -> Result<Vec<Placed>, JsValue> {
    let call = shared.open_call(records.len());
    let max_block_ms = shared.driver.borrow().core.config().max_block_ms;
    let mut now = js::now_ms();
    let deadline = now.saturating_add(max_block_ms);
    for (i, r) in records.iter().enumerate() {
        let headers: Vec<Header<'_>> = r
            .headers
            .iter()
            .map(|(key, value)| Header {
                key,
                value: value.as_deref(),
            })
            .collect();
        let record = ProducerRecord {
            topic,
            partition: r.partition,
            key: r.key.get(buf),
            value: r.value.get(buf),
            headers: &headers,
            timestamp: r.timestamp,
        };
        loop {
            let sent = shared.driver.borrow_mut().core.send(now, &record);
            // A command leaves outputs (a metadata request, a full batch): drain them.
            shared.inbox.borrow_mut().kick();
            match sent {
                Ok(ticket) => {
                    shared.accepted(call, i, ticket);
                    break;
                }
                Err(e) if e.is_retriable() => {
                    if now >= deadline {
                        shared.abandon(call);
                        return Err(error::timeout_error(topic, max_block_ms, &e));
                    }
                    shared.progress(deadline).await;
                    now = js::now_ms();
                }
                Err(e) => {
                    shared.abandon(call);
                    return Err(error::send_error(&e));
                }
            }
        }
    }
    let Some(call) = shared.finish(call).await else {
        return Err(error::produce_error(&ProduceError::Closed));
    };
    call.outcomes
        .into_iter()
        .map(|o| match o {
            Some(Ok(placed)) => Ok(placed),
            Some(Err(e)) => Err(error::produce_error(&e)),
            None => Err(error::produce_error(&ProduceError::Closed)),
        })
        .collect()
}

/// KafkaJS's `RecordMetadata[]`: one entry per partition, in partition order.
fn record_metadata(topic: &str, placed: &[Placed]) -> JsValue {
    let mut partitions: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for p in placed {
        let e = partitions
            .entry(p.partition)
            .or_insert((p.offset, p.log_append_time_ms));
        if p.offset >= 0 && (e.0 < 0 || p.offset < e.0) {
            *e = (p.offset, p.log_append_time_ms);
        }
    }
    let out = Array::new();
    for (partition, (base_offset, log_append_time)) in partitions {
        let m = Object::new();
        set(&m, "topicName", JsValue::from_str(topic));
        set(&m, "partition", JsValue::from(partition));
        set(&m, "errorCode", JsValue::from(0));
        set(
            &m,
            "baseOffset",
            JsValue::from_str(&base_offset.to_string()),
        );
        set(
            &m,
            "logAppendTime",
            JsValue::from_str(&log_append_time.to_string()),
        );
        // The core does not keep the Produce response's log start offset.
        set(&m, "logStartOffset", JsValue::from_str("-1"));
        out.push(&m);
    }
    out.into()
}

fn topic_of(record: &JsValue) -> Result<String, JsValue> {
    get(record, "topic")
        .as_string()
        .ok_or_else(|| error::type_error("topic must be a string"))
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn set(obj: &Object, key: &str, value: JsValue) {
    // Defining a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value);
}
