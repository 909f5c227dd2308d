//! Helpers for the bridge's tests against the real Apache Kafka of the test ground: the
//! bridge binary as a child process, a producer driver that runs the core `Producer` over
//! WebSockets (one per Kafka connection, as the browser transport does), raw WebSocket
//! clients for the attacks, and a direct look at the broker.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use kafka_edge_core::protocol::{
    ApiKey, Array, ErrorCode, Message, MetadataRequest, MetadataRequestTopic, MetadataResponse,
    Reader, RequestHeader, ResponseHeader, Uuid, Writer,
};
use kafka_edge_core::record::Header;
use kafka_edge_core::{
    BrokerRef, ConnId, HeapStorage, Limits, ProduceError, Producer, ProducerConfig, ProducerRecord,
    SendError, Ticket, TicketRange, Transmit, Transport,
};
use kafka_edge_tests::{Cluster, TestRecord, unhex};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

/// The token of the test configuration, allowed `bridge-ok-*`.
pub const TOKEN: &str = "good-token_1";
/// The Origin the test configuration allows.
pub const ORIGIN: &str = "http://app.test";

/// The bridge binary running as a child.
pub struct Bridge {
    child: Child,
    /// Client address.
    pub addr: SocketAddr,
    /// Metrics address.
    pub metrics_addr: SocketAddr,
    config_path: std::path::PathBuf,
}

impl Bridge {
    /// Starts the bridge for `cluster` with the test configuration plus `extra` TOML lines
    /// (top-level keys) and `limits` lines (under `[limits]`).
    pub fn start(cluster: &Cluster, extra: &str, limits: &str) -> Bridge {
        Self::start_with(&cluster.bootstrap, extra, limits, true)
    }

    /// As [`start`](Self::start), naming the bootstrap list; `tokens`: with the test token
    /// (else anonymous).
    pub fn start_with(bootstrap: &str, extra: &str, limits: &str, tokens: bool) -> Bridge {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let config_path =
            std::env::temp_dir().join(format!("bridge-test-{}-{n}.toml", std::process::id()));
        let servers: Vec<String> = bootstrap.split(',').map(|s| format!("{s:?}")).collect();
        let token_block = if tokens {
            format!("[[tokens]]\ntoken = \"{TOKEN}\"\ntopics = [\"bridge-ok-*\"]\n")
        } else {
            String::new()
        };
        let toml = format!(
            "listen = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n\
             bootstrap_servers = [{}]\nallowed_origins = [\"{ORIGIN}\"]\n\
             metadata_refresh_ms = 5000\n{extra}\n{token_block}\n[limits]\n{limits}\n",
            servers.join(", ")
        );
        std::fs::write(&config_path, toml).expect("write bridge config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kafka-edge-bridge"))
            .arg("--config")
            .arg(&config_path)
            .arg("--log-level")
            .arg(std::env::var("BRIDGE_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kafka-edge-bridge");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut addr = None;
        let mut metrics_addr = None;
        while addr.is_none() || metrics_addr.is_none() {
            let line = lines
                .next()
                .expect("bridge exited before listening")
                .expect("bridge stdout");
            if let Some(a) = line.strip_prefix("LISTEN=") {
                addr = Some(a.parse().expect("LISTEN addr"));
            }
            if let Some(a) = line.strip_prefix("METRICS=") {
                metrics_addr = Some(a.parse().expect("METRICS addr"));
            }
        }
        Bridge {
            child,
            addr: addr.expect("addr"),
            metrics_addr: metrics_addr.expect("metrics addr"),
            config_path,
        }
    }

    /// The process id (for /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `ws://addr/kafka{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}/kafka{path}", self.addr)
    }

    /// GETs `path` on the metrics listener: (status line, body).
    pub fn http_get(&self, path: &str) -> (String, String) {
        let mut s = TcpStream::connect(self.metrics_addr).expect("metrics connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("metrics write");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("metrics read");
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (
            head.lines().next().unwrap_or("").to_owned(),
            body.to_owned(),
        )
    }

    /// Every sample of `/metrics`, by its name with labels.
    pub fn metrics(&self) -> HashMap<String, f64> {
        let (status, body) = self.http_get("/metrics");
        assert!(status.contains("200"), "metrics: {status}");
        body.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
            .collect()
    }

    /// One sample (0 when absent).
    pub fn metric(&self, name: &str) -> f64 {
        self.metrics().get(name).copied().unwrap_or(0.0)
    }

    /// `kafka_edge_bridge_refusals_total{reason="..."}`.
    pub fn refusals(&self, reason: &str) -> f64 {
        self.metric(&format!(
            "kafka_edge_bridge_refusals_total{{reason=\"{reason}\"}}"
        ))
    }

    /// Waits until the refusal counter of `reason` reaches `at_least` (counted when the
    /// connection task ends, a moment after the client saw the close).
    pub fn wait_refusals(&self, reason: &str, at_least: f64) -> f64 {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.refusals(reason);
            if v >= at_least || Instant::now() > until {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_path);
    }
}

/// How a test client opens its WebSockets.
#[derive(Clone, Debug)]
pub struct WsClient {
    /// `ws://host:port/prefix` of a bridge; the driver appends `/bootstrap/{i}` or
    /// `/broker/{id}`. `None` path mapping (websockify): every connection goes to `base`.
    pub base: String,
    /// Whether `base` is a bridge (paths appended) or websockify (one target).
    pub bridge_paths: bool,
    /// Token offered, if any.
    pub token: Option<String>,
    /// Origin sent, if any.
    pub origin: Option<String>,
    /// For `wss://`: the TLS client settings (trusting the bridge's CA).
    pub tls: Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl WsClient {
    /// A client of `bridge` with the test token and Origin.
    pub fn of(bridge: &Bridge) -> Self {
        WsClient {
            base: format!("ws://{}/kafka", bridge.addr),
            bridge_paths: true,
            token: Some(TOKEN.to_owned()),
            origin: Some(ORIGIN.to_owned()),
            tls: None,
        }
    }

    /// Opens `url` (`ws://` or, with [`tls`](Self::tls), `wss://` to an IP address).
    pub async fn connect(
        &self,
        url: &str,
    ) -> Result<tokio_tungstenite::WebSocketStream<ClientStream>, tungstenite::Error> {
        let req = self.request(url);
        let host = req.uri().host().unwrap_or("127.0.0.1").to_owned();
        let port = req.uri().port_u16().unwrap_or(80);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
        let stream = match &self.tls {
            None => ClientStream::Plain(tcp),
            Some(cfg) => {
                let name = rustls_pki_types::ServerName::try_from(host)
                    .map_err(|_| std::io::Error::other("bad TLS name"))?;
                let s = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, tcp)
                    .await?;
                ClientStream::Tls(Box::new(s))
            }
        };
        tokio_tungstenite::client_async(req, stream)
            .await
            .map(|(ws, _)| ws)
    }

    fn url(&self, broker: BrokerRef) -> String {
        if !self.bridge_paths {
            return self.base.clone();
        }
        match broker {
            BrokerRef::Bootstrap(i) => format!("{}/bootstrap/{i}", self.base),
            BrokerRef::Node(id) => format!("{}/broker/{}", self.base, id.0),
        }
    }

    /// A handshake request for `url` with this client's token and Origin.
    pub fn request(&self, url: &str) -> tungstenite::handshake::client::Request {
        let mut req = url.into_client_request().expect("ws url");
        if let Some(t) = &self.token {
            req.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(&format!("kafka-edge, kafka-edge.bearer.{t}"))
                    .expect("header"),
            );
        }
        if let Some(o) = &self.origin {
            req.headers_mut()
                .insert("origin", HeaderValue::from_str(o).expect("header"));
        }
        req
    }
}

/// A test client's stream: TCP or TLS.
pub enum ClientStream {
    /// Plain.
    Plain(tokio::net::TcpStream),
    /// TLS.
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl tokio::io::AsyncRead for ClientStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for ClientStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Self::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

enum NetEvent {
    Connected(u16, u64),
    Data(u16, u64, Vec<u8>),
    Closed(u16, u64),
}

/// One outcome as the driver saw it (the test ground's, shared with its TCP loop).
pub use kafka_edge_tests::drive::Outcome;

/// Drives a core `Producer` over WebSockets: each connection the core asks for is a
/// WebSocket task on a tokio runtime; each request goes out as one binary message holding
/// one whole frame; each message received is handed to the core as bytes.
pub struct WsLoop {
    rt: tokio::runtime::Handle,
    client: WsClient,
    tx: mpsc::Sender<NetEvent>,
    rx: mpsc::Receiver<NetEvent>,
    /// Per connection: its generation and the sender of its task.
    conns: HashMap<u16, (u64, tokio::sync::mpsc::UnboundedSender<Vec<u8>>)>,
    /// Bytes of a transmit not yet a whole frame.
    partial: HashMap<u16, Vec<u8>>,
    connects: Vec<(ConnId, BrokerRef)>,
    generation: u64,
    start: Instant,
    /// Every outcome so far.
    pub outcomes: Vec<Outcome>,
    /// WebSocket connections opened.
    pub opened: usize,
    /// The URL of each WebSocket opened, in order.
    pub urls: Vec<String>,
    /// Bytes of Kafka frames sent (requests).
    pub bytes_out: u64,
    /// Bytes of Kafka frames received (responses).
    pub bytes_in: u64,
}

impl WsLoop {
    /// A loop whose connections run on `rt`.
    pub fn new(rt: tokio::runtime::Handle, client: WsClient) -> Self {
        let (tx, rx) = mpsc::channel();
        WsLoop {
            rt,
            client,
            tx,
            rx,
            conns: HashMap::new(),
            partial: HashMap::new(),
            connects: Vec::new(),
            generation: 0,
            start: Instant::now(),
            outcomes: Vec::new(),
            opened: 0,
            urls: Vec::new(),
            bytes_out: 0,
            bytes_in: 0,
        }
    }

    /// Milliseconds since the loop started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    fn open(&mut self, conn: ConnId, broker: BrokerRef) {
        self.generation += 1;
        let generation = self.generation;
        let id = conn.0;
        let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        self.conns.insert(id, (generation, out_tx));
        self.partial.remove(&id);
        self.opened += 1;
        let events = self.tx.clone();
        let url = self.client.url(broker);
        self.urls.push(url.clone());
        let client = self.client.clone();
        self.rt.spawn(async move {
            let ws = tokio::time::timeout(Duration::from_secs(10), client.connect(&url)).await;
            let Ok(Ok(ws)) = ws else {
                let _ = events.send(NetEvent::Closed(id, generation));
                return;
            };
            let _ = events.send(NetEvent::Connected(id, generation));
            let (mut wtx, mut wrx) = ws.split();
            loop {
                tokio::select! {
                    out = out_rx.recv() => match out {
                        Some(frame) => {
                            if wtx.send(WsMessage::Binary(frame.into())).await.is_err() {
                                let _ = events.send(NetEvent::Closed(id, generation));
                                return;
                            }
                        }
                        // The core disconnected it: no `Closed` for it.
                        None => {
                            let _ = wtx.close().await;
                            return;
                        }
                    },
                    msg = wrx.next() => match msg {
                        Some(Ok(WsMessage::Binary(b))) => {
                            let _ = events.send(NetEvent::Data(id, generation, b.to_vec()));
                        }
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                        _ => {
                            let _ = events.send(NetEvent::Closed(id, generation));
                            return;
                        }
                    },
                }
            }
        });
    }

    fn drain(&mut self, p: &mut Producer<Vec<u8>, HeapStorage>) -> Option<u64> {
        loop {
            let timeout = p.drain(self.now(), self);
            if self.connects.is_empty() {
                return timeout;
            }
            for (conn, broker) in std::mem::take(&mut self.connects) {
                self.open(conn, broker);
            }
        }
    }

    /// One round: outputs, then network events (waiting up to the core's timeout, at most
    /// 5 ms), then timers.
    pub fn step(&mut self, p: &mut Producer<Vec<u8>, HeapStorage>) {
        let timeout = self.drain(p);
        let wait = timeout
            .map(|t| t.saturating_sub(self.now()))
            .unwrap_or(5)
            .clamp(0, 5);
        let first = self.rx.recv_timeout(Duration::from_millis(wait)).ok();
        let mut events: Vec<NetEvent> = first.into_iter().collect();
        events.extend(self.rx.try_iter());
        for ev in events {
            let current = |id: u16, g: u64, conns: &HashMap<u16, (u64, _)>| {
                conns.get(&id).is_some_and(|(cg, _)| *cg == g)
            };
            match ev {
                NetEvent::Connected(id, g) if current(id, g, &self.conns) => {
                    p.handle_connected(self.now(), ConnId(id));
                }
                NetEvent::Data(id, g, bytes) if current(id, g, &self.conns) => {
                    self.bytes_in += bytes.len() as u64;
                    let mut off = 0;
                    while off < bytes.len() {
                        let took = p.handle_received(self.now(), ConnId(id), &bytes[off..]);
                        if took == 0 {
                            break;
                        }
                        off += took;
                    }
                }
                NetEvent::Closed(id, g) if current(id, g, &self.conns) => {
                    self.conns.remove(&id);
                    self.partial.remove(&id);
                    p.handle_closed(self.now(), ConnId(id));
                }
                _ => {}
            }
            self.drain(p);
        }
        p.handle_timeout(self.now());
    }
}

impl Transport for WsLoop {
    fn connect(&mut self, conn: ConnId, broker: BrokerRef, _host: &str, _port: u16) {
        self.connects.push((conn, broker));
    }

    fn disconnect(&mut self, conn: ConnId) {
        self.conns.remove(&conn.0);
        self.partial.remove(&conn.0);
        self.connects.retain(|(c, _)| *c != conn);
    }

    fn delivered(&mut self, _t: &str, partition: i32, tickets: TicketRange, base: i64, _: i64) {
        self.outcomes.push(Outcome::Delivered {
            partition,
            tickets,
            base_offset: base,
        });
    }

    fn failed(&mut self, _t: &str, _p: i32, tickets: TicketRange, error: ProduceError) {
        self.outcomes.push(Outcome::Failed {
            tickets,
            error: error.to_string(),
        });
    }

    fn transmit(&mut self, tx: &Transmit<'_>) -> usize {
        let id = tx.conn().0;
        let buf = self.partial.entry(id).or_default();
        for chunk in tx.chunks() {
            buf.extend_from_slice(chunk);
        }
        // One message per whole frame (a transmit is one request; this also holds if not).
        while buf.len() >= 4 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            if buf.len() < 4 + len {
                break;
            }
            let frame: Vec<u8> = buf.drain(..4 + len).collect();
            self.bytes_out += frame.len() as u64;
            if let Some((_, sender)) = self.conns.get(&id) {
                let _ = sender.send(frame);
            }
        }
        tx.len()
    }
}

/// A producer for `topic`s through `client`: config `props` on top of fast metadata.
pub fn ws_producer(props: &[(&str, &str)]) -> Producer<Vec<u8>, HeapStorage> {
    // The client knows no broker address: the bootstrap entry is a placeholder the bridge
    // replaces by its own list (`/bootstrap/0`).
    let mut config = ProducerConfig::new("bridge:9092").expect("config");
    config.set("client.id", "bridge-test").expect("client.id");
    for (k, v) in props {
        config.set(k, v).unwrap_or_else(|e| panic!("{k}={v}: {e}"));
    }
    Producer::new(config, vec![0; 64 * 16384], Limits::UNBOUNDED, 7).expect("producer")
}

/// Sends `records` to `topic` through `client` and waits for every outcome (up to
/// `timeout`); returns the tickets in record order and the loop (outcomes).
pub fn produce_through(
    rt: &tokio::runtime::Runtime,
    client: WsClient,
    topic: &str,
    records: &[TestRecord],
    props: &[(&str, &str)],
    timeout: Duration,
) -> (Vec<Ticket>, WsLoop) {
    let mut p = ws_producer(props);
    let mut lp = WsLoop::new(rt.handle().clone(), client);
    let until = Instant::now() + timeout;
    let mut tickets = Vec::with_capacity(records.len());
    for r in records {
        let key = r.key.as_deref().map(unhex);
        let value = r.value.as_deref().map(unhex);
        let hvals: Vec<(&str, Option<Vec<u8>>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref().map(unhex)))
            .collect();
        let headers: Vec<Header<'_>> = hvals
            .iter()
            .map(|(k, v)| Header {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let rec = ProducerRecord {
            topic,
            partition: r.partition,
            key: key.as_deref(),
            value: value.as_deref(),
            headers: &headers,
            timestamp: r.timestamp,
        };
        loop {
            match p.send(lp.now(), &rec) {
                Ok(t) => {
                    tickets.push(t);
                    break;
                }
                Err(SendError::BufferFull | SendError::MetadataNotReady) => {
                    assert!(Instant::now() < until, "send blocked until the timeout");
                    lp.step(&mut p);
                }
                Err(e) => panic!("send: {e}"),
            }
        }
    }
    p.flush(lp.now());
    let n = records.len();
    while !(p.is_flushed() && lp.outcomes.iter().map(Outcome::count).sum::<usize>() == n) {
        assert!(
            Instant::now() < until,
            "not every record got an outcome in time"
        );
        lp.step(&mut p);
    }
    (tickets, lp)
}

/// The partition of each ticket's record; panics on a failed record.
pub fn partitions_of(tickets: &[Ticket], outcomes: &[Outcome]) -> Vec<i32> {
    let mut by_ticket = HashMap::new();
    for o in outcomes {
        match o {
            Outcome::Delivered {
                partition, tickets, ..
            } => {
                for t in tickets.iter() {
                    by_ticket.insert(t, *partition);
                }
            }
            Outcome::Failed { tickets, error } => {
                panic!("{} records failed: {error}", tickets.count())
            }
        }
    }
    tickets
        .iter()
        .map(|t| *by_ticket.get(t).expect("ticket without outcome"))
        .collect()
}

/// A WebSocket runtime for the tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// What a raw client saw.
#[derive(Debug)]
pub enum Seen {
    /// The handshake failed with this HTTP status.
    HttpStatus(u16),
    /// The handshake failed otherwise.
    HandshakeError(String),
    /// Connected; then the server closed with this code and reason (or `None`: the TCP
    /// connection ended without a close frame).
    Closed(Option<(u16, String)>),
    /// Connected and got binary messages (count), no close within the wait.
    Answered(usize),
}

/// Opens `url` with `client`'s headers, sends `messages`, and reports what happened
/// within `wait`.
pub async fn raw_exchange(
    client: &WsClient,
    url: &str,
    messages: Vec<WsMessage>,
    wait: Duration,
) -> Seen {
    let ws = match tokio::time::timeout(wait, client.connect(url)).await {
        Err(_) => return Seen::HandshakeError("timeout".into()),
        Ok(Err(tungstenite::Error::Http(resp))) => return Seen::HttpStatus(resp.status().as_u16()),
        Ok(Err(e)) => return Seen::HandshakeError(e.to_string()),
        Ok(Ok(ws)) => ws,
    };
    let (mut tx, mut rx) = ws.split();
    for m in messages {
        if tx.send(m).await.is_err() {
            break;
        }
    }
    let mut answers = 0;
    let until = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, rx.next()).await {
            Err(_) => return Seen::Answered(answers),
            Ok(Some(Ok(WsMessage::Binary(_)))) => answers += 1,
            Ok(Some(Ok(WsMessage::Close(frame)))) => {
                return Seen::Closed(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return Seen::Closed(None),
        }
    }
}

/// A Kafka request frame (prefix included) of `api_key`/`version` with `body`.
pub fn request_frame(api_key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let h = RequestHeader {
        api_key,
        api_version: version,
        correlation_id: 1,
        client_id: Some("attacker"),
    };
    let size = h.encoded_len() + body.len();
    let mut buf = vec![0u8; 4 + size];
    buf[..4].copy_from_slice(&(size as i32).to_be_bytes());
    let mut w = Writer::new(&mut buf[4..]);
    h.encode(&mut w).expect("header");
    w.write_raw(body).expect("body");
    buf
}

/// A Kafka request frame of a core message.
pub fn message_frame<'a>(api: ApiKey, version: i16, m: &impl Message<'a>) -> Vec<u8> {
    let mut body = vec![0u8; m.encoded_len(version)];
    let mut w = Writer::new(&mut body);
    m.encode(version, &mut w).expect("encode");
    request_frame(api.code(), version, &body)
}

/// Asks the broker directly (not through the bridge) whether each topic exists, and its id.
pub fn broker_topics(cluster: &Cluster, names: &[&str]) -> HashMap<String, Option<Uuid>> {
    let addr = cluster.bootstrap.split(',').next().expect("bootstrap");
    let mut s = TcpStream::connect(addr).expect("connect broker");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let topics: Vec<MetadataRequestTopic<'_>> = names
        .iter()
        .map(|n| MetadataRequestTopic {
            topic_id: Uuid::ZERO,
            name: Some(n),
        })
        .collect();
    let mut md = MetadataRequest::new(Some(Array::from_slice(&topics)));
    md.allow_auto_topic_creation = false;
    let version = 12;
    s.write_all(&message_frame(ApiKey::Metadata, version, &md))
        .expect("write");
    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix).expect("read");
    let mut frame = vec![0u8; i32::from_be_bytes(prefix) as usize];
    s.read_exact(&mut frame).expect("read");
    let mut r = Reader::new(&frame);
    ResponseHeader::decode(1, &mut r).expect("header");
    let resp = MetadataResponse::decode(version, &mut r).expect("metadata");
    resp.topics
        .iter()
        .filter_map(|t| {
            let name = t.name?.to_owned();
            let exists = t.error_code == ErrorCode(0);
            Some((name, exists.then_some(t.topic_id)))
        })
        .collect()
}
