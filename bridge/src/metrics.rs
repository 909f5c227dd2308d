//! Counters, served as Prometheus text on `/metrics` (with `/healthz`) by a listener of
//! their own, apart from the clients'.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::inspect::Refusal;

/// Why a connection was refused or closed before its end, beside the frame refusals of
/// [`Refusal::reason`].
pub const CONNECTION_REASONS: [&str; 18] = [
    "too_many_connections",
    "too_many_connections_per_ip",
    "handshake_timeout",
    "bad_handshake",
    "bad_path",
    "bad_origin",
    "no_token",
    "bad_token",
    "unknown_broker",
    "upstream_unreachable",
    "upstream_auth_failed",
    "upstream_tls_failed",
    "sasl_session_expiring",
    "idle_timeout",
    "write_timeout",
    "message_too_large",
    "websocket_error",
    "tls_error",
];

/// Every counter of the bridge; shared by all connections (atomics, one small lock for the
/// refusal map).
#[derive(Debug)]
pub struct Metrics {
    /// Client connections accepted (TCP).
    pub connections_total: AtomicU64,
    /// Client connections open now.
    pub connections_active: AtomicU64,
    /// WebSocket sessions established (handshake done, broker connected).
    pub sessions_total: AtomicU64,
    /// TCP connections the bridge opened to brokers for clients.
    pub upstream_connections_total: AtomicU64,
    /// Metadata requests the bridge sent on its own.
    pub metadata_refreshes_total: AtomicU64,
    /// Bytes of Kafka frames forwarded from clients to brokers.
    pub bytes_to_broker: AtomicU64,
    /// Bytes of Kafka frames forwarded from brokers to clients.
    pub bytes_to_client: AtomicU64,
    /// Requests forwarded, by API key (0..=63; others are never forwarded).
    requests: [AtomicU64; 64],
    refusals: Mutex<BTreeMap<&'static str, u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All counters at 0, every refusal reason listed.
    pub fn new() -> Self {
        let refusals = Refusal::REASONS
            .iter()
            .chain(CONNECTION_REASONS.iter())
            .map(|r| (*r, 0))
            .collect();
        Self {
            connections_total: AtomicU64::new(0),
            connections_active: AtomicU64::new(0),
            sessions_total: AtomicU64::new(0),
            upstream_connections_total: AtomicU64::new(0),
            metadata_refreshes_total: AtomicU64::new(0),
            bytes_to_broker: AtomicU64::new(0),
            bytes_to_client: AtomicU64::new(0),
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            refusals: Mutex::new(refusals),
        }
    }

    /// Counts a refusal or an abnormal close.
    pub fn refused(&self, reason: &'static str) {
        let mut m = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(reason).or_insert(0) += 1;
    }

    /// The count of `reason` so far.
    pub fn refusals(&self, reason: &str) -> u64 {
        let m = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        m.get(reason).copied().unwrap_or(0)
    }

    /// Counts a forwarded request.
    pub fn forwarded(&self, api_key: i16) {
        if let Some(c) = usize::try_from(api_key)
            .ok()
            .and_then(|k| self.requests.get(k))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(4096);
        let mut one = |name: &str, kind: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
            let _ = writeln!(s, "{name} {}", v.load(Ordering::Relaxed));
        };
        one(
            "kafka_edge_bridge_connections_total",
            "counter",
            "Client TCP connections accepted.",
            &self.connections_total,
        );
        one(
            "kafka_edge_bridge_connections_active",
            "gauge",
            "Client connections open now.",
            &self.connections_active,
        );
        one(
            "kafka_edge_bridge_sessions_total",
            "counter",
            "WebSocket sessions established with a broker connection.",
            &self.sessions_total,
        );
        one(
            "kafka_edge_bridge_upstream_connections_total",
            "counter",
            "Broker connections opened for clients.",
            &self.upstream_connections_total,
        );
        one(
            "kafka_edge_bridge_metadata_refreshes_total",
            "counter",
            "Metadata requests the bridge sent on its own.",
            &self.metadata_refreshes_total,
        );
        let _ = writeln!(
            s,
            "# HELP kafka_edge_bridge_bytes_total Bytes of Kafka frames forwarded.\n\
             # TYPE kafka_edge_bridge_bytes_total counter"
        );
        for (dir, v) in [
            ("to_broker", &self.bytes_to_broker),
            ("to_client", &self.bytes_to_client),
        ] {
            let _ = writeln!(
                s,
                "kafka_edge_bridge_bytes_total{{direction=\"{dir}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP kafka_edge_bridge_requests_total Requests forwarded, by API key.\n\
             # TYPE kafka_edge_bridge_requests_total counter"
        );
        for (key, v) in self.requests.iter().enumerate() {
            let v = v.load(Ordering::Relaxed);
            if v > 0 {
                let _ = writeln!(
                    s,
                    "kafka_edge_bridge_requests_total{{api_key=\"{key}\"}} {v}"
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP kafka_edge_bridge_refusals_total Connections refused or closed, by reason.\n\
             # TYPE kafka_edge_bridge_refusals_total counter"
        );
        let m = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        for (reason, v) in m.iter() {
            let _ = writeln!(
                s,
                "kafka_edge_bridge_refusals_total{{reason=\"{reason}\"}} {v}"
            );
        }
        s
    }
}

/// Serves `GET /metrics` and `GET /healthz` on `listener` until the task is dropped. A
/// tiny HTTP/1.0-style responder: one request per connection, heads over 4 KiB refused.
pub async fn serve(listener: TcpListener, metrics: std::sync::Arc<Metrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while len < buf.len() {
                    let Some(rest) = buf.get_mut(len..) else {
                        break;
                    };
                    match stream.read(rest).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => len += n,
                    }
                    if buf
                        .get(..len)
                        .is_some_and(|b| b.windows(4).any(|w| w == b"\r\n\r\n"))
                    {
                        break;
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let head = buf.get(..len).unwrap_or_default();
            let (status, body) = if head.starts_with(b"GET /metrics ") {
                ("200 OK", metrics.render())
            } else if head.starts_with(b"GET /healthz ") {
                ("200 OK", "ok\n".to_owned())
            } else {
                ("404 Not Found", "not found\n".to_owned())
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(resp.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
