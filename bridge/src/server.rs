//! The listener: connection limits, TLS, the WebSocket handshake with its checks (path,
//! Origin, token), and the broker connection, then [`crate::relay`] for the rest.
//!
//! The shape is mini-redis's `server.rs`: one task per connection, a semaphore for the total,
//! a guard that gives back the per-IP slot when the task ends however it ends.
//!
//! The HTTP head of the upgrade request is read here (at most 8 KiB, within the handshake
//! timeout) and checked *before* anything else happens: a request that fails a check gets
//! its HTTP status and the bridge never dials a broker for it. Only then does the bridge
//! open the broker connection (a bootstrap server, or a node id of its own metadata view),
//! and only when that succeeded does it finish the WebSocket handshake (tungstenite), so a
//! client either gets a working session or an HTTP error.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::cluster::ClusterView;
use crate::config::{Access, Config, split_host_port};
use crate::metrics::Metrics;
use crate::relay::{self, Session};
use crate::topics::TopicAllowList;
use crate::upstream::{Connected, Upstream};

/// The subprotocol the bridge selects when a client offers a token.
pub const SUBPROTOCOL: &str = "kafka-edge";
/// The prefix of the subprotocol that carries a token: `kafka-edge.bearer.<token>`.
pub const BEARER_PREFIX: &str = "kafka-edge.bearer.";

/// The largest HTTP head of an upgrade request.
const MAX_HEAD: usize = 8 * 1024;

/// Everything the connection tasks share.
pub struct Shared {
    /// The configuration.
    pub config: Config,
    /// Who may connect.
    pub access: Access,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The metadata view.
    pub cluster: Arc<ClusterView>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    total: Arc<Semaphore>,
    tls: Option<TlsAcceptor>,
    upstream: Upstream,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Shared state for `config` (already validated into `access`).
    pub fn new(
        config: Config,
        access: Access,
        metrics: Arc<Metrics>,
        cluster: Arc<ClusterView>,
        tls: Option<TlsAcceptor>,
        upstream: Upstream,
    ) -> Self {
        let total = Arc::new(Semaphore::new(config.limits.max_connections));
        Self {
            config,
            access,
            metrics,
            cluster,
            per_ip: Mutex::new(HashMap::new()),
            total,
            tls,
            upstream,
        }
    }
}

/// Gives the per-IP slot back when dropped.
struct IpSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
        self.shared
            .metrics
            .connections_active
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts clients on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        shared
            .metrics
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        let Ok(permit) = shared.total.clone().try_acquire_owned() else {
            refuse_conn(&shared, peer, "too_many_connections");
            continue;
        };
        let slot = {
            let mut m = shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(peer.ip()).or_insert(0);
            if *n >= shared.config.limits.max_connections_per_ip {
                None
            } else {
                *n += 1;
                Some(())
            }
        };
        if slot.is_none() {
            refuse_conn(&shared, peer, "too_many_connections_per_ip");
            continue;
        }
        shared
            .metrics
            .connections_active
            .fetch_add(1, Ordering::Relaxed);
        let slot = IpSlot {
            shared: shared.clone(),
            ip: peer.ip(),
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _slot = slot;
            let _ = stream.set_nodelay(true);
            handle(stream, peer, shared).await;
        });
    }
}

fn refuse_conn(shared: &Shared, peer: SocketAddr, reason: &'static str) {
    shared.metrics.refused(reason);
    tracing::info!(%peer, reason, "connection refused");
}

async fn handle(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let deadline = Duration::from_millis(shared.config.limits.handshake_timeout_ms);
    let start = tokio::time::Instant::now();
    match shared.tls.clone() {
        Some(acceptor) => match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => session(tls, peer, shared, start).await,
            Ok(Err(e)) => {
                shared.metrics.refused("tls_error");
                tracing::info!(%peer, "TLS handshake failed: {e}");
            }
            Err(_) => {
                shared.metrics.refused("handshake_timeout");
                tracing::info!(%peer, "TLS handshake timed out");
            }
        },
        None => session(stream, peer, shared, start).await,
    }
}

/// What the HTTP head asked for, once checked.
struct Admitted {
    target: Target,
    topics: TopicAllowList,
    /// Whether the client offered `kafka-edge` (then it is selected).
    subprotocol: bool,
}

/// A broker named by the URL path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `/bootstrap/{i}`: bootstrap server `i` modulo the list's length (the next ones in
    /// turn when it cannot be reached).
    Bootstrap(u32),
    /// `/broker/{node_id}`: a node id of the bridge's metadata view.
    Node(i32),
}

/// Parses `{prefix}/bootstrap/{i}` or `{prefix}/broker/{node_id}` (decimal digits only; no
/// query string, no other form). Anything else, including any host or address, is `None`.
pub fn parse_path(prefix: &str, path: &str) -> Option<Target> {
    let prefix = prefix.trim_end_matches('/');
    let rest = path.strip_prefix(prefix)?;
    let (kind, num) = rest.strip_prefix('/')?.split_once('/')?;
    if num.is_empty() || num.len() > 10 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match kind {
        "bootstrap" => num.parse().ok().map(Target::Bootstrap),
        "broker" => num.parse().ok().map(Target::Node),
        _ => None,
    }
}

/// A refusal at the handshake: its HTTP status and counter.
struct HttpRefusal {
    status: u16,
    reason: &'static str,
}

fn check_head(shared: &Shared, req: &httparse::Request<'_, '_>) -> Result<Admitted, HttpRefusal> {
    let refuse = |status, reason| HttpRefusal { status, reason };
    if req.method != Some("GET") {
        return Err(refuse(400, "bad_handshake"));
    }
    let target = req
        .path
        .and_then(|p| parse_path(&shared.config.path_prefix, p))
        .ok_or(refuse(404, "bad_path"))?;
    fn header<'h>(
        req: &'h httparse::Request<'_, '_>,
        name: &'static str,
    ) -> impl Iterator<Item = &'h str> {
        req.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| std::str::from_utf8(h.value).unwrap_or(""))
    }
    // A WebSocket upgrade (RFC 6455 4.2.1), checked before any broker is dialled:
    // tungstenite checks it again when it answers.
    let has = |name: &'static str, token: &str| {
        header(req, name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    let key_ok = header(req, "sec-websocket-key").count() == 1;
    if !(has("upgrade", "websocket")
        && has("connection", "upgrade")
        && has("sec-websocket-version", "13")
        && key_ok)
    {
        return Err(refuse(400, "bad_handshake"));
    }
    let origins = &shared.config.allowed_origins;
    if !origins.is_empty() {
        let mut seen = header(req, "origin");
        let ok = match (seen.next(), seen.next()) {
            (Some(o), None) => origins.iter().any(|a| a == o),
            _ => false,
        };
        if !ok {
            return Err(refuse(403, "bad_origin"));
        }
    }
    let offered: Vec<&str> = header(req, "sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let bearer: Vec<&str> = offered
        .iter()
        .filter_map(|p| p.strip_prefix(BEARER_PREFIX))
        .collect();
    let topics = match &shared.access {
        Access::Anonymous(list) => list.clone(),
        Access::Tokens(tokens) => {
            let [token] = bearer.as_slice() else {
                return Err(refuse(401, "no_token"));
            };
            // Compare with every configured token, without stopping at a match, so the time
            // says nothing about which one or how many bytes matched (lengths may show).
            let mut found = None;
            for t in tokens {
                let eq: bool = t.secret.as_bytes().ct_eq(token.as_bytes()).into();
                if eq {
                    found = Some(t);
                }
            }
            found.ok_or(refuse(403, "bad_token"))?.topics.clone()
        }
    };
    if !bearer.is_empty() && !offered.contains(&SUBPROTOCOL) {
        return Err(refuse(400, "bad_handshake"));
    }
    Ok(Admitted {
        target,
        topics,
        // Selected only when offered: a client offering others (or none) gets none.
        subprotocol: offered.contains(&SUBPROTOCOL),
    })
}

async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(chunk.get(..n)?);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(buf);
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}

async fn http_refuse<S: AsyncWrite + Unpin>(stream: &mut S, status: u16) {
    let text = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Bad Gateway",
    };
    let resp =
        format!("HTTP/1.1 {status} {text}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn session<S>(
    mut stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    start: tokio::time::Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &shared.config.limits;
    let deadline = start + Duration::from_millis(limits.handshake_timeout_ms);
    let Ok(head) = tokio::time::timeout_at(deadline, read_head(&mut stream)).await else {
        shared.metrics.refused("handshake_timeout");
        tracing::info!(%peer, "handshake timed out");
        return;
    };
    let Some(head) = head else {
        shared.metrics.refused("bad_handshake");
        tracing::info!(%peer, "no valid HTTP head");
        return;
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let admitted = match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => check_head(&shared, &req),
        _ => Err(HttpRefusal {
            status: 400,
            reason: "bad_handshake",
        }),
    };
    let path = req.path.unwrap_or("").chars().take(200).collect::<String>();
    let admitted = match admitted {
        Ok(a) => a,
        Err(r) => {
            shared.metrics.refused(r.reason);
            tracing::info!(%peer, path, reason = r.reason, status = r.status, "handshake refused");
            http_refuse(&mut stream, r.status).await;
            return;
        }
    };
    let upstream = tokio::time::timeout_at(deadline, dial(&shared, admitted.target)).await;
    let (connected, broker) = match upstream {
        Ok(Ok(x)) => x,
        Ok(Err(reason)) => {
            shared.metrics.refused(reason);
            tracing::info!(%peer, path, reason, "handshake refused");
            let status = if reason == "unknown_broker" { 404 } else { 502 };
            http_refuse(&mut stream, status).await;
            return;
        }
        Err(_) => {
            shared.metrics.refused("handshake_timeout");
            tracing::info!(%peer, path, "broker connection timed out");
            http_refuse(&mut stream, 504).await;
            return;
        }
    };
    let mut ws_config = WebSocketConfig::default();
    // The whole message is one frame and its prefix: refuse larger ones from the WebSocket
    // frame header, before reading their payload.
    let max_message = limits.max_frame_size.saturating_add(4);
    ws_config.max_message_size = Some(max_message);
    ws_config.max_frame_size = Some(max_message);
    ws_config.write_buffer_size = 0;
    ws_config.max_write_buffer_size = max_message.saturating_mul(2);
    let subprotocol = admitted.subprotocol;
    // The type is tungstenite's callback signature.
    #[allow(clippy::result_large_err)]
    let callback = move |_req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if subprotocol {
            resp.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static(SUBPROTOCOL),
            );
        }
        Ok(resp)
    };
    let replay = Replay::new(head, stream);
    let ws = tokio::time::timeout_at(
        deadline,
        tokio_tungstenite::accept_hdr_async_with_config(replay, callback, Some(ws_config)),
    )
    .await;
    let ws = match ws {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            shared.metrics.refused("bad_handshake");
            tracing::info!(%peer, path, "WebSocket handshake failed: {e}");
            return;
        }
        Err(_) => {
            shared.metrics.refused("handshake_timeout");
            tracing::info!(%peer, path, "WebSocket handshake timed out");
            return;
        }
    };
    shared
        .metrics
        .sessions_total
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%peer, path, broker, "session open");
    relay::run(
        ws,
        connected,
        Session {
            peer,
            topics: admitted.topics,
            shared: shared.clone(),
        },
    )
    .await;
}

/// Opens the broker connection for `target`: only addresses from the configuration or the
/// bridge's own metadata (with TLS and SASL as configured). Fails with the refusal reason.
async fn dial(shared: &Shared, target: Target) -> Result<(Connected, String), &'static str> {
    let timeout = Duration::from_millis(shared.config.limits.connect_timeout_ms);
    let candidates: Vec<(String, u16)> = match target {
        Target::Bootstrap(i) => {
            let list = shared.cluster.bootstrap();
            let n = list.len().max(1);
            let first = usize::try_from(i).unwrap_or(0) % n;
            (0..list.len())
                .filter_map(|k| list.get((first + k) % n))
                .filter_map(|b| split_host_port(b).map(|(h, p)| (h.to_owned(), p)))
                .collect()
        }
        Target::Node(id) => {
            let addr = match shared.cluster.broker(id) {
                Some(a) => Some(a),
                None => {
                    shared.cluster.refresh_and_wait(timeout).await;
                    shared.cluster.broker(id)
                }
            };
            let addr = addr.ok_or("unknown_broker")?;
            vec![(addr.host, addr.port)]
        }
    };
    let mut reason = "upstream_unreachable";
    for (host, port) in candidates {
        shared
            .metrics
            .upstream_connections_total
            .fetch_add(1, Ordering::Relaxed);
        match shared.upstream.connect(&host, port, timeout).await {
            Ok(c) => return Ok((c, format!("{host}:{port}"))),
            Err(e) => {
                tracing::warn!("broker {host}:{port}: {e}");
                reason = e.reason();
            }
        }
    }
    Err(reason)
}

/// A stream that first yields bytes already read from it (the HTTP head the bridge checked),
/// then reads on; writes go straight through.
struct Replay<S> {
    head: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Replay<S> {
    fn new(head: Vec<u8>, inner: S) -> Self {
        Self { head, at: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(rest) = this.head.get(this.at..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            buf.put_slice(rest.get(..n).unwrap_or_default());
            this.at += n;
            if this.at == this.head.len() {
                this.head = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let p = "/kafka";
        assert_eq!(
            parse_path(p, "/kafka/bootstrap/0"),
            Some(Target::Bootstrap(0))
        );
        assert_eq!(parse_path(p, "/kafka/broker/3"), Some(Target::Node(3)));
        assert_eq!(
            parse_path("/kafka/", "/kafka/broker/3"),
            Some(Target::Node(3))
        );
        for bad in [
            "/kafka/broker/127.0.0.1:22",
            "/kafka/broker/evil.example.com:9092",
            "/kafka/broker/169.254.0.1",
            "/kafka/broker/-1",
            "/kafka/broker/",
            "/kafka/broker/99999999999",
            "/kafka/broker/1?x=y",
            "/kafka/bootstrap/0/x",
            "/other/broker/1",
            "/kafka/fetch/1",
            "/kafkabroker/1",
        ] {
            assert_eq!(parse_path(p, bad), None, "{bad}");
        }
    }
}
