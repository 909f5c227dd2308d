//! One established session: WebSocket messages to the broker after inspection, broker
//! frames back as messages, both unchanged.
//!
//! Memory per session is bounded: a client message is at most `max_frame_size + 4` bytes
//! (tungstenite refuses larger ones from the frame header), a broker frame at most
//! `max_frame_size` (checked from its length prefix before it is read), and each direction
//! holds one message at a time: while the broker does not take a request, the bridge reads
//! no further message from the WebSocket (TCP backpressure to the client), and while the
//! client does not take a response, the bridge reads nothing more from the broker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::inspect::{self, Policy, Refusal};
use crate::server::Shared;
use crate::topics::TopicAllowList;
use crate::upstream::Connected;

/// Who the session is for.
#[derive(Debug)]
pub struct Session {
    /// The client's address.
    pub peer: SocketAddr,
    /// The topics it may name.
    pub topics: TopicAllowList,
    /// Shared state.
    pub shared: Arc<Shared>,
}

/// How a direction ended.
enum End {
    /// The client closed, or the broker did.
    Closed,
    /// A refusal or limit: counted, logged, and the client told in the Close frame.
    Refused(&'static str, String),
}

/// A token bucket over bytes per second (both directions share it).
struct RateLimit {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    fn new(bytes_per_second: u64) -> Option<Self> {
        (bytes_per_second > 0).then(|| Self {
            rate: bytes_per_second as f64,
            tokens: bytes_per_second as f64,
            last: Instant::now(),
        })
    }

    /// Takes `n` bytes, sleeping while the bucket is in debt (a frame larger than a second's
    /// worth is let through and paid for afterwards).
    async fn take(&mut self, n: usize) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.tokens -= n as f64;
        if self.tokens < 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(-self.tokens / self.rate)).await;
        }
    }
}

/// Runs the session until either side closes or a check fails.
///
/// When the broker gave the SASL session a lifetime, the session ends at 90% of it (the
/// client reconnects and the bridge authenticates afresh).
pub async fn run<S>(ws: WebSocketStream<S>, upstream: Connected, session: Session)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = session.shared.clone();
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut up_rx, mut up_tx) = tokio::io::split(upstream.stream);
    // Far enough away to never fire when the broker set no lifetime.
    let lifetime = upstream
        .session_lifetime
        .map_or(Duration::from_secs(100 * 365 * 86_400), |l| l.mul_f64(0.9));
    let rate = tokio::sync::Mutex::new(RateLimit::new(shared.config.limits.bytes_per_second));
    let end = {
        let to_broker = client_to_broker(&mut ws_rx, &mut up_tx, &session, &rate);
        let to_client = broker_to_client(&mut up_rx, &mut ws_tx, &session, &rate);
        tokio::select! {
            e = to_broker => e,
            e = to_client => e,
            () = tokio::time::sleep(lifetime) => {
                shared.metrics.refused("sasl_session_expiring");
                End::Closed
            }
        }
    };
    // A client that stopped reading must not hold the session (and its slots) forever:
    // closing gets a bounded time, then the task ends and drops both sockets.
    if let End::Refused(reason, detail) = &end {
        shared.metrics.refused(reason);
        tracing::info!(peer = %session.peer, reason, "closing: {detail}");
    }
    let close = async {
        let _ = up_tx.shutdown().await;
        match end {
            End::Closed => {
                let _ = ws_tx.close().await;
            }
            End::Refused(reason, _) => {
                let code = if reason == "message_too_large" {
                    CloseCode::Size
                } else {
                    CloseCode::Policy
                };
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = ws_tx.send(Message::Close(Some(frame))).await;
                let _ = ws_tx.close().await;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
}

/// How long closing a session may take (sending the Close frame to a client).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

async fn client_to_broker<W, R>(
    ws_rx: &mut R,
    up_tx: &mut W,
    session: &Session,
    rate: &tokio::sync::Mutex<Option<RateLimit>>,
) -> End
where
    R: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
    W: AsyncWrite + Unpin,
{
    let shared = &session.shared;
    let limits = &shared.config.limits;
    let idle = Duration::from_millis(limits.idle_timeout_ms);
    let policy = Policy {
        topics: &session.topics,
        sasl_passthrough: shared.config.sasl_passthrough,
    };
    loop {
        let msg = match tokio::time::timeout(idle, ws_rx.next()).await {
            Err(_) => {
                return End::Refused(
                    "idle_timeout",
                    format!("no whole message within {} ms", limits.idle_timeout_ms),
                );
            }
            Ok(None) => return End::Closed,
            Ok(Some(Err(e))) => {
                use tokio_tungstenite::tungstenite::Error as E;
                return match e {
                    E::Capacity(c) => End::Refused("message_too_large", c.to_string()),
                    E::ConnectionClosed | E::AlreadyClosed => End::Closed,
                    E::Io(e) if e.kind() == std::io::ErrorKind::ConnectionReset => End::Closed,
                    e => End::Refused("websocket_error", e.to_string()),
                };
            }
            Ok(Some(Ok(m))) => m,
        };
        let bytes: Bytes = match msg {
            Message::Binary(b) => b,
            Message::Text(_) => {
                let r = Refusal::TextMessage;
                return End::Refused(r.reason(), r.to_string());
            }
            Message::Close(_) => return End::Closed,
            // Pings are answered by tungstenite itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        if let Err(end) = check(&bytes, policy, session).await {
            return end;
        }
        if let Some(rl) = rate.lock().await.as_mut() {
            rl.take(bytes.len()).await;
        }
        // The broker takes no more while its answers wait for a client that does not read
        // them: the same bound as for an idle client.
        match tokio::time::timeout(idle, up_tx.write_all(&bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return End::Closed,
            Err(_) => {
                return End::Refused(
                    "write_timeout",
                    format!(
                        "the broker took no request for {} ms",
                        limits.idle_timeout_ms
                    ),
                );
            }
        }
        shared
            .metrics
            .bytes_to_broker
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
}

/// Frame and request checks; an unknown Produce v13 topic id gets one metadata refresh.
async fn check(bytes: &[u8], policy: Policy<'_>, session: &Session) -> Result<(), End> {
    let shared = &session.shared;
    let refused = |r: Refusal<'_>| End::Refused(r.reason(), r.to_string());
    let frame =
        inspect::check_frame(bytes, shared.config.limits.max_frame_size).map_err(refused)?;
    let view = &*shared.cluster;
    let mut wanted = Vec::new();
    let mut result = inspect::inspect(frame, policy, view, |t| wanted.push(t));
    if let Err(Refusal::UnknownTopicId { .. }) = result {
        let timeout = Duration::from_millis(shared.config.limits.connect_timeout_ms);
        view.refresh_and_wait(timeout).await;
        wanted.clear();
        result = inspect::inspect(frame, policy, view, |t| wanted.push(t));
    }
    match result {
        Ok(ok) => {
            view.want(wanted);
            shared.metrics.forwarded(ok.header.api_key);
            tracing::trace!(
                peer = %session.peer,
                api = %ok.api,
                version = ok.header.api_version,
                correlation_id = ok.header.correlation_id,
                client_id = ok.header.client_id.unwrap_or(""),
                "forward"
            );
            Ok(())
        }
        Err(r) => Err(refused(r)),
    }
}

async fn broker_to_client<R, W>(
    up_rx: &mut R,
    ws_tx: &mut W,
    session: &Session,
    rate: &tokio::sync::Mutex<Option<RateLimit>>,
) -> End
where
    R: AsyncRead + Unpin,
    W: futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    let shared = &session.shared;
    let max = shared.config.limits.max_frame_size;
    let idle = Duration::from_millis(shared.config.limits.idle_timeout_ms);
    loop {
        let mut prefix = [0u8; 4];
        if up_rx.read_exact(&mut prefix).await.is_err() {
            return End::Closed;
        }
        let Some(len) = usize::try_from(i32::from_be_bytes(prefix))
            .ok()
            .filter(|&l| l <= max)
        else {
            return End::Refused(
                "websocket_error",
                format!(
                    "broker frame of {} bytes over the limit {max}",
                    i32::from_be_bytes(prefix)
                ),
            );
        };
        let mut frame = vec![0u8; 4 + len];
        if let Some(p) = frame.get_mut(..4) {
            p.copy_from_slice(&prefix);
        }
        if up_rx
            .read_exact(frame.get_mut(4..).unwrap_or_default())
            .await
            .is_err()
        {
            return End::Closed;
        }
        if let Some(rl) = rate.lock().await.as_mut() {
            rl.take(frame.len()).await;
        }
        let n = frame.len() as u64;
        match tokio::time::timeout(idle, ws_tx.send(Message::Binary(frame.into()))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return End::Closed,
            Err(_) => {
                return End::Refused(
                    "write_timeout",
                    format!("the client read no answer for {} ms", idle.as_millis()),
                );
            }
        }
        shared
            .metrics
            .bytes_to_client
            .fetch_add(n, Ordering::Relaxed);
    }
}
