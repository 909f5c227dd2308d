//! `kafka-edge-bridge`: the gateway binary. See the library's crate documentation for what
//! it admits and refuses, and [`config`](kafka_edge_bridge::config) for the TOML file.
//!
//! On start it prints `LISTEN=addr` and (with a metrics listener) `METRICS=addr` on stdout,
//! the addresses actually bound (useful with port 0).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use kafka_edge_bridge::cluster::ClusterView;
use kafka_edge_bridge::config::{Access, Config, ConfigError};
use kafka_edge_bridge::metrics::{self, Metrics};
use kafka_edge_bridge::server::{self, Shared};
use kafka_edge_bridge::tls::{self, TlsError};
use kafka_edge_bridge::upstream::{Upstream, UpstreamError};
use tokio::net::TcpListener;

/// A producer-only WebSocket-to-Kafka gateway. Flags override the config file.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The TOML configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Where clients connect (host:port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// URL path prefix (default /kafka).
    #[arg(long)]
    path_prefix: Option<String>,
    /// Bootstrap servers, comma-separated host:port.
    #[arg(long, value_delimiter = ',')]
    bootstrap_servers: Vec<String>,
    /// Where /metrics and /healthz are served.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// An allowed Origin (repeatable).
    #[arg(long = "allow-origin")]
    allowed_origins: Vec<String>,
    /// A topic pattern for anonymous clients (repeatable; only without tokens).
    #[arg(long = "anonymous-topic")]
    anonymous_topics: Vec<String>,
    /// Largest Kafka frame, in bytes.
    #[arg(long)]
    max_frame_size: Option<usize>,
    /// Client connections at once.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Client connections at once per IP address.
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// Bytes per second per connection (0: unlimited).
    #[arg(long)]
    bytes_per_second: Option<u64>,
    /// Handshake timeout in ms.
    #[arg(long)]
    handshake_timeout_ms: Option<u64>,
    /// Idle timeout in ms (longest wait for the next whole client message).
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
    /// PEM certificate chain for wss:// (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for wss:// (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, default_value = "info")]
    log_level: tracing::Level,
    /// Worker threads of the runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

impl Cli {
    fn config(&self) -> Result<Config, ConfigError> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = &self.path_prefix {
            c.path_prefix = v.clone();
        }
        if !self.bootstrap_servers.is_empty() {
            c.bootstrap_servers = self.bootstrap_servers.clone();
        }
        if self.metrics_listen.is_some() {
            c.metrics_listen = self.metrics_listen;
        }
        if !self.allowed_origins.is_empty() {
            c.allowed_origins = self.allowed_origins.clone();
        }
        if !self.anonymous_topics.is_empty() {
            c.anonymous_topics = self.anonymous_topics.clone();
        }
        let l = &mut c.limits;
        l.max_frame_size = self.max_frame_size.unwrap_or(l.max_frame_size);
        l.max_connections = self.max_connections.unwrap_or(l.max_connections);
        l.max_connections_per_ip = self
            .max_connections_per_ip
            .unwrap_or(l.max_connections_per_ip);
        l.bytes_per_second = self.bytes_per_second.unwrap_or(l.bytes_per_second);
        l.handshake_timeout_ms = self.handshake_timeout_ms.unwrap_or(l.handshake_timeout_ms);
        l.idle_timeout_ms = self.idle_timeout_ms.unwrap_or(l.idle_timeout_ms);
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            c.tls = Some(kafka_edge_bridge::config::TlsConfig {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        Ok(c)
    }
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_max_level(cli.log_level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    if let Err(e) = start(&cli) {
        tracing::error!("{e}");
        eprintln!("kafka-edge-bridge: {e}");
        std::process::exit(1);
    }
}

fn start(cli: &Cli) -> Result<(), StartError> {
    let config = cli.config()?;
    let access = config.validate()?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.enable_all().build().map_err(StartError::Runtime)?;
    rt.block_on(run(config, access))
}

async fn run(config: Config, access: Access) -> Result<(), StartError> {
    match &access {
        Access::Anonymous(list) => {
            let patterns: Vec<&str> = list.patterns().iter().map(|p| p.as_str()).collect();
            tracing::warn!(
                "NO TOKENS CONFIGURED: ANY CLIENT THAT REACHES THIS BRIDGE MAY PRODUCE to topics \
                 matching {patterns:?}; configure [[tokens]] for anything but a trusted network"
            );
        }
        Access::Tokens(t) => tracing::info!("{} token(s) configured", t.len()),
    }
    if config.allowed_origins.is_empty() {
        tracing::warn!("no allowed_origins: pages of any site may connect");
    }
    let tls = match &config.tls {
        Some(t) => Some(tls::acceptor(&t.cert, &t.key)?),
        None => None,
    };
    let upstream = Upstream::new(&config.upstream)?;
    if upstream.does_sasl() {
        tracing::info!("the bridge authenticates to the brokers itself (SASL)");
    }
    let metrics = Arc::new(Metrics::new());
    let cluster = Arc::new(ClusterView::new(
        config.bootstrap_servers.clone(),
        config.limits.max_tracked_topics,
        Duration::from_millis(config.limits.connect_timeout_ms),
        metrics.clone(),
        upstream.clone(),
    ));
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(config.listen);
    let metrics_listener = match config.metrics_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Listen { addr, source })?,
        ),
        None => None,
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "LISTEN={local}");
        if let Some(m) = &metrics_listener {
            let _ = writeln!(out, "METRICS={}", m.local_addr().unwrap_or(local));
        }
        let _ = out.flush();
    }
    tracing::info!(
        "listening on {}://{local}{}/{{bootstrap/i,broker/node_id}}, cluster {:?}",
        if tls.is_some() { "wss" } else { "ws" },
        config.path_prefix.trim_end_matches('/'),
        config.bootstrap_servers
    );
    let period = Duration::from_millis(config.metadata_refresh_ms.max(1000));
    tokio::spawn(cluster.clone().run_refresher(period));
    if let Some(l) = metrics_listener {
        tokio::spawn(metrics::serve(l, metrics.clone()));
    }
    let shared = Arc::new(Shared::new(config, access, metrics, cluster, tls, upstream));
    tokio::select! {
        () = server::serve(listener, shared) => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, stopping"),
    }
    Ok(())
}
