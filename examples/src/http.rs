//! The HTTP service of `kafka-edge-http`: an axum [`router`] that produces each POST's body
//! to Kafka with [`Producer::send_async`] (or [`Producer::try_send`] to shed load), never
//! blocking the tokio executor, and answers with where the record was written.
//!
//! | request | answer |
//! | --- | --- |
//! | `POST /topics/{topic}` body = value; key from `?key=` or the `x-kafka-key` header | `200 {"topic","partition","offset","timestamp"}` once the brokers acknowledged it |
//! | the same with `?mode=try` | the same, or `503` at once with `"kind":"BufferFull"` while buffer memory is full |
//! | `GET /health` | `200 ok` (answers while sends wait: they do not hold the executor) |
//!
//! Errors are JSON `{"error","kind","retriable","code","code_name"}`: the producer's typed
//! error ([`SendError`] or [`ProduceError`]) by name, with the broker's error code when a
//! broker refused. `503` (with `Retry-After`) means try again: buffer memory or metadata was
//! not ready within `max.block.ms`, or at once with `mode=try`.
//!
//! The smallest such service (the README's):
//!
//! ```no_run
//! use axum::{Router, body::Bytes, extract::{Path, State}, http::StatusCode, routing::post};
//! use kafka_edge_std::{Producer, ProducerRecord};
//!
//! async fn produce(State(p): State<Producer>, Path(topic): Path<String>, body: Bytes) -> (StatusCode, String) {
//!     let record = ProducerRecord::new(&topic).value(&body);
//!     let result = match p.send_async(&record).await {       // waits for buffer memory, cooperatively
//!         Ok(delivery) => delivery.await.map_err(|e| e.to_string()), // the broker's acknowledgement
//!         Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
//!     };
//!     match result {
//!         Ok(meta) => (StatusCode::OK, format!("{}-{}@{}", meta.topic, meta.partition, meta.offset)),
//!         Err(e) => (StatusCode::BAD_GATEWAY, e),
//!     }
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let producer = Producer::builder().set("bootstrap.servers", "127.0.0.1:9092").build()?;
//! let app = Router::new().route("/topics/{topic}", post(produce)).with_state(producer);
//! # axum::serve(tokio::net::TcpListener::bind("127.0.0.1:8080").await?, app).await?;
//! # Ok(()) }
//! ```

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kafka_edge_std::{ErrorCode, ProduceError, Producer, ProducerRecord, SendError};
use serde::{Deserialize, Serialize};

/// The request header that carries the record's key (when `?key=` is absent).
pub const KEY_HEADER: &str = "x-kafka-key";

/// How a POST hands its record to the producer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// [`Producer::send_async`]: wait (up to `max.block.ms`) for buffer memory.
    #[default]
    Wait,
    /// [`Producer::try_send`]: `503` at once when buffer memory is full.
    Try,
}

/// The query string of `POST /topics/{topic}`.
#[derive(Debug, Default, Deserialize)]
pub struct ProduceParams {
    /// The record's key (UTF-8); else the `x-kafka-key` header; else none.
    pub key: Option<String>,
    /// How to hand the record over.
    #[serde(default)]
    pub mode: Mode,
}

/// The answer to a produced POST: where the record was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The record's timestamp (ms since the Unix epoch): its `CreateTime`, or the broker's
    /// append time for `LogAppendTime` topics.
    pub timestamp: i64,
}

/// The answer to a POST that was not produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The producer's message.
    pub error: String,
    /// The error's variant: `BufferFull`, `BufferTimeout`, `MetadataTimeout`, `Broker`, ...
    pub kind: String,
    /// Whether the same POST may succeed later.
    pub retriable: bool,
    /// The broker's error code, when a broker refused.
    pub code: Option<i16>,
    /// Its name (`MESSAGE_TOO_LARGE`, ...).
    pub code_name: Option<String>,
}

/// The service: `POST /topics/{topic}` and `GET /health` over one shared [`Producer`].
pub fn router(producer: Producer) -> Router {
    Router::new()
        .route("/topics/{topic}", post(produce))
        .route("/health", get(health))
        .with_state(producer)
}

async fn health() -> &'static str {
    "ok"
}

async fn produce(
    State(producer): State<Producer>,
    Path(topic): Path<String>,
    Query(params): Query<ProduceParams>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match &params.key {
        Some(k) => Some(k.as_bytes()),
        None => headers.get(KEY_HEADER).map(|v| v.as_bytes()),
    };
    let mut record = ProducerRecord::new(&topic).value(&body);
    if let Some(key) = key {
        record = record.key(key);
    }
    let accepted = match params.mode {
        Mode::Wait => producer.send_async(&record).await,
        Mode::Try => producer.try_send(&record),
    };
    let delivery = match accepted {
        Ok(delivery) => delivery,
        Err(e) => return send_failure(&e),
    };
    match delivery.await {
        Ok(meta) => Json(Written {
            topic: meta.topic.to_string(),
            partition: meta.partition,
            offset: meta.offset,
            timestamp: meta.timestamp,
        })
        .into_response(),
        Err(e) => produce_failure(&e),
    }
}

fn failure(
    status: StatusCode,
    error: &dyn std::fmt::Display,
    kind: &str,
    retriable: bool,
    code: Option<ErrorCode>,
) -> Response {
    let body = Json(Failure {
        error: error.to_string(),
        kind: kind.to_string(),
        retriable,
        code: code.map(ErrorCode::code),
        code_name: code.map(|c| c.name().to_string()),
    });
    if status == StatusCode::SERVICE_UNAVAILABLE {
        (status, [(header::RETRY_AFTER, "1")], body).into_response()
    } else {
        (status, body).into_response()
    }
}

/// A record the producer did not accept.
fn send_failure(e: &SendError) -> Response {
    use StatusCode as S;
    let (status, kind) = match e {
        SendError::BufferFull => (S::SERVICE_UNAVAILABLE, "BufferFull"),
        SendError::MetadataNotReady { .. } => (S::SERVICE_UNAVAILABLE, "MetadataNotReady"),
        SendError::BufferTimeout { .. } => (S::SERVICE_UNAVAILABLE, "BufferTimeout"),
        SendError::MetadataTimeout { .. } => (S::SERVICE_UNAVAILABLE, "MetadataTimeout"),
        SendError::Closed => (S::SERVICE_UNAVAILABLE, "Closed"),
        SendError::RecordTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "RecordTooLarge"),
        SendError::InvalidTopic { .. } => (S::BAD_REQUEST, "InvalidTopic"),
        SendError::InvalidPartition { .. } => (S::BAD_REQUEST, "InvalidPartition"),
        SendError::TopicRefused { .. } => (S::BAD_GATEWAY, "TopicRefused"),
        SendError::Fatal { .. } => (S::BAD_GATEWAY, "Fatal"),
        SendError::Authentication(_) => (S::BAD_GATEWAY, "Authentication"),
        _ => (S::INTERNAL_SERVER_ERROR, "Other"),
    };
    failure(status, e, kind, e.is_retriable(), e.broker_code())
}

/// An accepted record that was not delivered.
fn produce_failure(e: &ProduceError) -> Response {
    use StatusCode as S;
    let (status, kind) = match e {
        ProduceError::Broker { .. } => (S::BAD_GATEWAY, "Broker"),
        ProduceError::Network => (S::BAD_GATEWAY, "Network"),
        ProduceError::DeliveryTimeout => (S::GATEWAY_TIMEOUT, "DeliveryTimeout"),
        ProduceError::Closed => (S::SERVICE_UNAVAILABLE, "Closed"),
        ProduceError::Fatal { .. } => (S::BAD_GATEWAY, "Fatal"),
        ProduceError::Authentication(_) => (S::BAD_GATEWAY, "Authentication"),
        _ => (S::INTERNAL_SERVER_ERROR, "Other"),
    };
    let retriable = e.broker_code().is_some_and(ErrorCode::is_retriable);
    failure(status, e, kind, retriable, e.broker_code())
}
