//! The bridge's configuration: a TOML file, with a few command-line flags on top.
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! path_prefix = "/kafka"                 # ws://host:8080/kafka/bootstrap/0, .../broker/3
//! bootstrap_servers = ["10.0.0.5:9092", "10.0.0.6:9092"]
//! allowed_origins = ["https://app.example.com"]
//! metrics_listen = "127.0.0.1:9100"      # /metrics and /healthz
//!
//! [[tokens]]
//! token = "s3cr3t-token"                 # offered as subprotocol kafka-edge.bearer.<token>
//! topics = ["web-*", "clicks"]
//!
//! [limits]
//! max_frame_size = 4194304
//! max_connections = 10000
//! max_connections_per_ip = 64
//! bytes_per_second = 1048576             # per connection, 0 = unlimited
//! handshake_timeout_ms = 10000
//! idle_timeout_ms = 300000
//!
//! [tls]                                  # wss:// when given
//! cert = "/etc/bridge/cert.pem"
//! key = "/etc/bridge/key.pem"
//!
//! [upstream]                             # how the bridge reaches brokers
//! security_protocol = "SASL_SSL"         # PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL
//! ssl_ca = "/etc/bridge/kafka-ca.pem"
//! sasl_mechanism = "SCRAM-SHA-512"       # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
//! sasl_username = "bridge"
//! sasl_password = "..."
//! ```
//!
//! With no `[[tokens]]` at all the bridge admits anonymous clients, who may name the
//! topics of `anonymous_topics` (default `["*"]`: every topic except Kafka's internal `__*`
//! ones); it says so loudly at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::topics::{PatternError, TopicAllowList};

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A topic pattern is invalid.
    #[error("topic pattern {pattern:?}: {source}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why.
        source: PatternError,
    },
    /// A token holds characters outside `[A-Za-z0-9._~-]` or is empty.
    #[error("token #{index}: a token is 1 or more of A-Z a-z 0-9 . _ ~ -")]
    BadToken {
        /// Its place in `[[tokens]]` (from 0).
        index: usize,
    },
    /// No bootstrap server.
    #[error("bootstrap_servers is empty")]
    NoBootstrap,
    /// A bootstrap server is not `host:port`.
    #[error("bootstrap server {0:?} is not host:port")]
    BadBootstrap(String),
    /// The path prefix does not start with `/`.
    #[error("path_prefix {0:?} must start with '/'")]
    BadPrefix(String),
    /// `sasl_passthrough` with SASL done by the bridge itself.
    #[error("sasl_passthrough cannot be on when [upstream] authenticates with SASL")]
    SaslTwice,
    /// A limit is out of range.
    #[error("limits.{0} must be above 0")]
    ZeroLimit(&'static str),
}

/// A token and the topics its holder may name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The bearer token (`[A-Za-z0-9._~-]+`), offered by the client as WebSocket subprotocol
    /// `kafka-edge.bearer.<token>`.
    pub token: String,
    /// Topic patterns (see [`TopicPattern`](crate::topics::TopicPattern)).
    pub topics: Vec<String>,
}

/// Resource limits; every one bounds memory or work an unauthenticated peer can cause.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// The largest Kafka frame in either direction, in bytes after the length prefix;
    /// checked from the WebSocket frame header and from the length prefix, before the
    /// bytes are buffered. Default 4 MiB.
    pub max_frame_size: usize,
    /// Client connections at once (TCP, from accept to close). Default 10,000.
    pub max_connections: usize,
    /// Client connections at once from one IP address. Default 64.
    pub max_connections_per_ip: usize,
    /// Bytes per second per client connection, both directions together; 0 = unlimited.
    /// Default 0.
    pub bytes_per_second: u64,
    /// Time for TLS, the HTTP upgrade and the broker connection, from accept. Default 10 s.
    pub handshake_timeout_ms: u64,
    /// Longest wait for the client's next whole message (an idle producer reconnects
    /// transparently; a client that trickles bytes is cut here), and for a write to the
    /// client or the broker to complete (a client that does not read its answers holds
    /// both). Default 300 s.
    pub idle_timeout_ms: u64,
    /// Time to open a TCP connection to a broker. Default 5 s.
    pub connect_timeout_ms: u64,
    /// Topic names the bridge's own metadata view follows at most (names come from
    /// clients' Metadata requests). Default 10,000.
    pub max_tracked_topics: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 4 << 20,
            max_connections: 10_000,
            max_connections_per_ip: 64,
            bytes_per_second: 0,
            handshake_timeout_ms: 10_000,
            idle_timeout_ms: 300_000,
            connect_timeout_ms: 5_000,
            max_tracked_topics: 10_000,
        }
    }
}

/// TLS for `wss://`: a PEM certificate chain and its PEM private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The whole configuration, as in the TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where clients connect. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The URL path before `/bootstrap/{i}` and `/broker/{node_id}`. Default `/kafka`.
    pub path_prefix: String,
    /// The cluster's bootstrap servers, `host:port`; the only addresses the bridge dials
    /// besides those its own Metadata requests return.
    pub bootstrap_servers: Vec<String>,
    /// `Origin`s allowed at the handshake (exact match, e.g. `https://app.example.com`).
    /// When set, a handshake must carry exactly one `Origin`, one of these (non-browser
    /// clients must send one too). Empty: any Origin, or none.
    pub allowed_origins: Vec<String>,
    /// Tokens; empty: anonymous clients are admitted with `anonymous_topics`.
    pub tokens: Vec<TokenConfig>,
    /// The allow-list of anonymous clients when no token is configured. Default `["*"]`.
    pub anonymous_topics: Vec<String>,
    /// Forward SaslHandshake and SaslAuthenticate (clients then authenticate to the
    /// brokers themselves). Default false.
    pub sasl_passthrough: bool,
    /// Where `/metrics` and `/healthz` are served; `None`: not served.
    pub metrics_listen: Option<SocketAddr>,
    /// How often the bridge refreshes its metadata view, in ms. Default 30 s.
    pub metadata_refresh_ms: u64,
    /// Limits.
    pub limits: Limits,
    /// TLS for clients (`wss://`); `None`: plain `ws://`.
    pub tls: Option<TlsConfig>,
    /// How the bridge reaches brokers (TLS, SASL); default plain TCP.
    pub upstream: crate::upstream::UpstreamConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            path_prefix: "/kafka".to_owned(),
            bootstrap_servers: Vec::new(),
            allowed_origins: Vec::new(),
            tokens: Vec::new(),
            anonymous_topics: vec!["*".to_owned()],
            sasl_passthrough: false,
            metrics_listen: None,
            metadata_refresh_ms: 30_000,
            limits: Limits::default(),
            tls: None,
            upstream: crate::upstream::UpstreamConfig::default(),
        }
    }
}

/// A configured token with its parsed allow-list.
#[derive(Debug, Clone)]
pub struct Token {
    /// The secret.
    pub secret: String,
    /// What it may name.
    pub topics: TopicAllowList,
}

/// Who may connect, checked and ready for use.
#[derive(Debug, Clone)]
pub enum Access {
    /// Anyone, with this allow-list.
    Anonymous(TopicAllowList),
    /// A token is required.
    Tokens(Vec<Token>),
}

impl Config {
    /// Reads and parses a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Checks everything a running bridge relies on, and parses the tokens' patterns.
    pub fn validate(&self) -> Result<Access, ConfigError> {
        if self.bootstrap_servers.is_empty() {
            return Err(ConfigError::NoBootstrap);
        }
        for b in &self.bootstrap_servers {
            if split_host_port(b).is_none() {
                return Err(ConfigError::BadBootstrap(b.clone()));
            }
        }
        if !self.path_prefix.starts_with('/') {
            return Err(ConfigError::BadPrefix(self.path_prefix.clone()));
        }
        let l = &self.limits;
        for (name, v) in [
            ("max_frame_size", l.max_frame_size as u64),
            ("max_connections", l.max_connections as u64),
            ("max_connections_per_ip", l.max_connections_per_ip as u64),
            ("handshake_timeout_ms", l.handshake_timeout_ms),
            ("idle_timeout_ms", l.idle_timeout_ms),
            ("connect_timeout_ms", l.connect_timeout_ms),
        ] {
            if v == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        if self.sasl_passthrough
            && matches!(
                self.upstream.security_protocol,
                crate::upstream::SecurityProtocol::SaslPlaintext
                    | crate::upstream::SecurityProtocol::SaslSsl
            )
        {
            return Err(ConfigError::SaslTwice);
        }
        let parse = |patterns: &[String]| {
            TopicAllowList::parse(patterns.iter().map(String::as_str)).map_err(|source| {
                let pattern = patterns
                    .iter()
                    .find(|p| crate::topics::TopicPattern::new(p).is_err())
                    .cloned()
                    .unwrap_or_default();
                ConfigError::Pattern { pattern, source }
            })
        };
        if self.tokens.is_empty() {
            return Ok(Access::Anonymous(parse(&self.anonymous_topics)?));
        }
        self.tokens
            .iter()
            .enumerate()
            .map(|(index, t)| {
                if !is_token(&t.token) {
                    return Err(ConfigError::BadToken { index });
                }
                Ok(Token {
                    secret: t.token.clone(),
                    topics: parse(&t.topics)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Access::Tokens)
    }
}

/// Whether `s` is a valid token: 1 or more of `[A-Za-z0-9._~-]` (what a subprotocol can
/// carry).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

/// `host:port` (also `[v6]:port`) split in two, the port parsed.
pub fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let text = r#"
            listen = "0.0.0.0:8080"
            bootstrap_servers = ["10.0.0.5:9092"]
            allowed_origins = ["https://app.example.com"]
            [[tokens]]
            token = "s3cr3t-token"
            topics = ["web-*", "clicks"]
            [limits]
            max_connections_per_ip = 8
        "#;
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(c.limits.max_connections_per_ip, 8);
        assert_eq!(c.limits.max_frame_size, 4 << 20);
        let Access::Tokens(t) = c.validate().unwrap() else {
            panic!("tokens expected")
        };
        assert!(t[0].topics.allows("web-a"));
        assert!(!t[0].topics.allows("other"));
    }

    #[test]
    fn the_example_file_is_valid() {
        let c: Config = toml::from_str(include_str!("../bridge.example.toml")).unwrap();
        assert!(matches!(c.validate().unwrap(), Access::Tokens(_)));
    }

    #[test]
    fn refuses_bad_values() {
        let c = Config {
            bootstrap_servers: vec!["nope".into()],
            ..Config::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::BadBootstrap(_))));
        let c = Config {
            bootstrap_servers: vec!["h:1".into()],
            tokens: vec![TokenConfig {
                token: "a b".into(),
                topics: vec![],
            }],
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(ConfigError::BadToken { index: 0 })
        ));
        assert!(toml::from_str::<Config>("unknown = 1").is_err());
    }
}
