//! kafka-edge-bridge: a producer-only WebSocket-to-Kafka gateway that a browser may reach
//! and an attacker cannot abuse.
//!
//! A browser running the kafka-edge wasm transport opens one WebSocket per Kafka
//! connection, at `{prefix}/bootstrap/{i}` or `{prefix}/broker/{node_id}`, and sends each
//! request as one binary message holding exactly one Kafka frame (length prefix included);
//! the bridge sends each response frame back the same way. Frames pass through unchanged,
//! so the browser's record batches reach the broker as the core wrote them (CRC, producer
//! id, sequence numbers), and the bridge stays cheap: it never re-encodes anything.
//!
//! What the bridge refuses, and where:
//! - at accept: connections over the total or per-IP limit ([`server`]);
//! - at the handshake, before any broker is dialled: a path other than the two above (no
//!   host or address from a client is ever dialled: brokers are the bootstrap list and the
//!   node ids of the bridge's own Metadata requests, [`cluster`]), an Origin not allowed, a
//!   missing or wrong token (subprotocol `kafka-edge.bearer.<token>`, compared in constant
//!   time; the bridge selects subprotocol `kafka-edge`), a slow handshake;
//! - on every message ([`inspect`]): text messages, a length prefix other than the message
//!   length minus 4 or over `max_frame_size`, and any request but ApiVersions, Metadata
//!   (explicit topic names, each allowed), Produce (each topic allowed, by name or by v13
//!   topic id; no transactional id) and InitProducerId (no transactional id);
//!   SaslHandshake/SaslAuthenticate only with `sasl_passthrough`;
//! - over time ([`relay`]): idle clients and clients trickling bytes (the next whole
//!   message must arrive within `idle_timeout_ms`), clients that do not read their answers
//!   (every write must complete within the same time), bytes per second per connection.
//!   Each direction holds one frame at a time: a slow side slows the other (TCP
//!   backpressure), it never makes the bridge buffer more.
//!
//! Broker connections ([`upstream`]) are plain TCP, TLS, and/or SASL (PLAIN, SCRAM) done by
//! the bridge itself before any client frame is forwarded.
//!
//! Every refusal closes the connection, is logged with its reason, and is counted in
//! `kafka_edge_bridge_refusals_total{reason}` on the metrics listener ([`metrics`]).
//!
//! Running it: `kafka-edge-bridge --config bridge.toml` (see `bridge.example.toml` and
//! [`config`]), or with flags only, e.g. `kafka-edge-bridge --bootstrap-servers
//! 127.0.0.1:9092 --listen 127.0.0.1:8080 --metrics-listen 127.0.0.1:9100` (anonymous: no
//! token configured). It prints `LISTEN=` and `METRICS=` with the bound addresses.
//!
//! Without the default feature `server` only [`inspect`] and [`topics`] are built (the
//! fuzz target uses them without an async runtime).

// Input from the network must never panic the bridge: no unwrap, expect, panic or
// unchecked indexing outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod inspect;
pub mod topics;

#[cfg(feature = "server")]
pub mod cluster;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod relay;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod tls;
#[cfg(feature = "server")]
pub mod upstream;
