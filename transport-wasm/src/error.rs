//! The errors promises reject with: JavaScript `Error` objects with a `name` naming what
//! failed, `code` (Kafka's error code name, such as `MESSAGE_TOO_LARGE`, or `null`),
//! `reason` (this crate's cause, always set), `retriable`, and `message`.
//!
//! | `name`                   | when                                                       |
//! |--------------------------|------------------------------------------------------------|
//! | `KafkaEdgeConfigError`   | `Producer.connect` refused a property                      |
//! | `KafkaEdgeSendError`     | a record was not accepted (at once, or after `max.block.ms`) |
//! | `KafkaEdgeProduceError`  | an accepted record failed (broker error, timeout, close)   |
//! | `TypeError`              | an argument of the wrong shape                             |

use js_sys::Reflect;
use kafka_edge_core::{ConfigError, ProduceError, SendError};
use wasm_bindgen::JsValue;

fn error(name: &str, message: &str, reason: &str, code: Option<&str>, retriable: bool) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name(name);
    let set = |key: &str, value: JsValue| {
        // Setting a property on a fresh Error object cannot fail.
        let _ = Reflect::set(&e, &JsValue::from_str(key), &value);
    };
    set("reason", JsValue::from_str(reason));
    set("code", code.map_or(JsValue::NULL, JsValue::from_str));
    set("retriable", JsValue::from_bool(retriable));
    e.into()
}

/// A property `Producer.connect` cannot use (`key` when it names one).
pub(crate) fn config_error(e: &ConfigError, key: Option<&str>) -> JsValue {
    let message = match key {
        Some(key) => format!("{e} ({key})"),
        None => e.to_string(),
    };
    let reason = match e {
        ConfigError::UnknownKey => "UNKNOWN_KEY",
        ConfigError::InvalidValue { .. } => "INVALID_VALUE",
        ConfigError::Unsupported { .. } => "UNSUPPORTED",
        ConfigError::Conflict(_) => "CONFLICT",
        ConfigError::InvalidBootstrap | ConfigError::TooManyBootstrapServers => "INVALID_BOOTSTRAP",
        _ => "INVALID_CONFIG",
    };
    error("KafkaEdgeConfigError", &message, reason, None, false)
}

/// A record the core refused at once.
pub(crate) fn send_error(e: &SendError) -> JsValue {
    let (reason, code) = match e {
        SendError::InvalidTopic => ("INVALID_TOPIC", Some("INVALID_TOPIC_EXCEPTION")),
        SendError::InvalidPartition { .. } => ("INVALID_PARTITION", None),
        // Java throws RecordTooLargeException, Kafka's MESSAGE_TOO_LARGE.
        SendError::RecordTooLarge { .. } => ("RECORD_TOO_LARGE", Some("MESSAGE_TOO_LARGE")),
        SendError::BufferFull => ("BUFFER_FULL", None),
        SendError::MetadataNotReady => ("METADATA_NOT_READY", None),
        SendError::TableFull(_) => ("TABLE_FULL", None),
        SendError::InvalidTimestamp { .. } => ("INVALID_TIMESTAMP", None),
        SendError::Topic { code } => ("TOPIC", Some(code.name())),
        SendError::Closed => ("CLOSED", None),
        SendError::Fatal(code) => ("FATAL", Some(code.name())),
        SendError::Authentication(_) => ("AUTHENTICATION", None),
        _ => ("SEND", None),
    };
    error(
        "KafkaEdgeSendError",
        &e.to_string(),
        reason,
        code,
        e.is_retriable(),
    )
}

/// A record not accepted within `max.block.ms` (`cause`: what was still missing). Java's
/// `TimeoutException`, which is retriable.
pub(crate) fn timeout_error(topic: &str, max_block_ms: u64, cause: &SendError) -> JsValue {
    let message = match cause {
        SendError::MetadataNotReady => {
            format!("Topic {topic} not present in metadata after {max_block_ms} ms.")
        }
        _ => format!("Record not accepted after {max_block_ms} ms: {cause}"),
    };
    error("KafkaEdgeSendError", &message, "TIMEOUT", None, true)
}

/// An accepted record that failed.
pub(crate) fn produce_error(e: &ProduceError) -> JsValue {
    let (reason, code, retriable) = match e {
        ProduceError::Broker { code } => ("BROKER", Some(code.name()), code.is_retriable()),
        ProduceError::Network => ("NETWORK", Some("NETWORK_EXCEPTION"), true),
        ProduceError::DeliveryTimeout => ("DELIVERY_TIMEOUT", None, true),
        ProduceError::Closed => ("CLOSED", None, false),
        ProduceError::Fatal(code) => ("FATAL", Some(code.name()), false),
        ProduceError::Authentication(_) => ("AUTHENTICATION", None, false),
        _ => ("PRODUCE", None, false),
    };
    error(
        "KafkaEdgeProduceError",
        &e.to_string(),
        reason,
        code,
        retriable,
    )
}

/// An argument of the wrong shape.
pub(crate) fn type_error(message: &str) -> JsValue {
    let e = js_sys::TypeError::new(message);
    let _ = Reflect::set(
        &e,
        &JsValue::from_str("reason"),
        &JsValue::from_str("ARGUMENT"),
    );
    let _ = Reflect::set(&e, &JsValue::from_str("code"), &JsValue::NULL);
    let _ = Reflect::set(&e, &JsValue::from_str("retriable"), &JsValue::FALSE);
    e.into()
}
