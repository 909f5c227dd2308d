//! Connections from the bridge to brokers: TCP, optionally TLS (tokio-rustls, `ring`), and
//! optionally SASL (the core's [`SaslClient`]: PLAIN, SCRAM-SHA-256/512), done by the
//! bridge on each connection *before* any client frame is forwarded, so browsers never hold
//! Kafka credentials and their frames are never rewritten.
//!
//! When the broker gives the SASL session a lifetime (`connections.max.reauth.ms`), the
//! bridge does not re-authenticate inside the client's stream (that would interleave its own
//! requests with the client's): [`Connected::session_lifetime`] tells the relay to close the
//! session before it expires, and the client reconnects (its core retries what was in
//! flight, idempotently).

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use kafka_edge_core::protocol::{
    ApiKey, ErrorCode, Message, Reader, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse, Writer,
};
use kafka_edge_core::sasl::{Mechanism, SaslClient, SaslError, Step};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;

/// Kafka's `security.protocol` for the bridge's broker connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SecurityProtocol {
    /// Plain TCP.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL over plain TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

/// How the bridge reaches brokers (`[upstream]` in the configuration file).
///
/// ```toml
/// [upstream]
/// security_protocol = "SASL_SSL"
/// ssl_ca = "/etc/bridge/kafka-ca.pem"
/// sasl_mechanism = "SCRAM-SHA-512"
/// sasl_username = "bridge"
/// sasl_password = "..."
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL.
    pub security_protocol: SecurityProtocol,
    /// PEM file of the CAs that sign the brokers' certificates (required with TLS).
    pub ssl_ca: Option<PathBuf>,
    /// PEM client certificate chain, for brokers that require one (mTLS).
    pub ssl_cert: Option<PathBuf>,
    /// PEM private key of `ssl_cert`.
    pub ssl_key: Option<PathBuf>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with SASL).
    pub sasl_mechanism: Option<String>,
    /// SASL user name.
    pub sasl_username: Option<String>,
    /// SASL password.
    pub sasl_password: Option<String>,
}

/// Why the upstream settings are unusable, or a broker connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// A setting is missing or wrong.
    #[error("[upstream]: {0}")]
    Config(&'static str),
    /// A PEM file could not be read.
    #[error("{path}: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls_pki_types::pem::Error,
    },
    /// rustls refused the settings, or the TLS handshake failed.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// TCP or TLS I/O failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The SASL exchange failed locally (e.g. a SCRAM server signature that does not check).
    #[error("SASL: {0}")]
    Sasl(SaslError),
    /// The broker refused the mechanism or the credentials.
    #[error("SASL refused by the broker: {code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    SaslRefused {
        /// The broker's error code.
        code: ErrorCode,
        /// The broker's message.
        message: Option<String>,
    },
    /// The broker's answer could not be decoded.
    #[error("undecodable SASL answer: {0}")]
    Decode(kafka_edge_core::protocol::DecodeError),
    /// Took longer than the connect timeout.
    #[error("timed out")]
    Timeout,
}

impl UpstreamError {
    /// The refusal reason a client's handshake is counted under.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Sasl(_) | Self::SaslRefused { .. } => "upstream_auth_failed",
            Self::Tls(_) => "upstream_tls_failed",
            _ => "upstream_unreachable",
        }
    }
}

struct Sasl {
    mechanism: Mechanism,
    username: String,
    password: String,
}

/// Dials brokers as configured. Cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct Upstream {
    tls: Option<TlsConnector>,
    sasl: Option<Arc<Sasl>>,
    random: &'static dyn rustls::crypto::SecureRandom,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl.as_ref().map(|s| s.mechanism))
            .finish()
    }
}

/// A broker connection, authenticated if configured.
#[derive(Debug)]
pub struct Connected {
    /// The stream, ready for the client's frames.
    pub stream: UpstreamStream,
    /// The SASL session's lifetime, when the broker set one: the session must end before.
    pub session_lifetime: Option<Duration>,
}

fn pem_err(path: &std::path::Path) -> impl Fn(rustls_pki_types::pem::Error) -> UpstreamError + '_ {
    move |source| UpstreamError::Pem {
        path: path.to_owned(),
        source,
    }
}

impl Upstream {
    /// Checks `config` and prepares TLS.
    pub fn new(config: &UpstreamConfig) -> Result<Self, UpstreamError> {
        use SecurityProtocol as P;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let random = provider.secure_random;
        let tls = match config.security_protocol {
            P::Ssl | P::SaslSsl => {
                let ca = config
                    .ssl_ca
                    .as_deref()
                    .ok_or(UpstreamError::Config("ssl_ca is required with TLS"))?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(ca).map_err(pem_err(ca))? {
                    roots.add(cert.map_err(pem_err(ca))?)?;
                }
                let builder = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(roots);
                let tls = match (&config.ssl_cert, &config.ssl_key) {
                    (Some(cert), Some(key)) => {
                        let chain = CertificateDer::pem_file_iter(cert)
                            .map_err(pem_err(cert))?
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(pem_err(cert))?;
                        let key = PrivateKeyDer::from_pem_file(key).map_err(pem_err(key))?;
                        builder.with_client_auth_cert(chain, key)?
                    }
                    (None, None) => builder.with_no_client_auth(),
                    _ => return Err(UpstreamError::Config("ssl_cert and ssl_key go together")),
                };
                Some(TlsConnector::from(Arc::new(tls)))
            }
            P::Plaintext | P::SaslPlaintext => None,
        };
        let sasl = match config.security_protocol {
            P::SaslPlaintext | P::SaslSsl => {
                let name = config
                    .sasl_mechanism
                    .as_deref()
                    .ok_or(UpstreamError::Config(
                        "sasl_mechanism is required with SASL",
                    ))?;
                let mechanism = Mechanism::from_name(name)
                    .filter(|m| !matches!(m, Mechanism::OAuthBearer))
                    .ok_or(UpstreamError::Config(
                        "sasl_mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                    ))?;
                let username = config
                    .sasl_username
                    .clone()
                    .ok_or(UpstreamError::Config("sasl_username is required with SASL"))?;
                let password = config
                    .sasl_password
                    .clone()
                    .ok_or(UpstreamError::Config("sasl_password is required with SASL"))?;
                Some(Arc::new(Sasl {
                    mechanism,
                    username,
                    password,
                }))
            }
            P::Plaintext | P::Ssl => None,
        };
        Ok(Self { tls, sasl, random })
    }

    /// Whether the bridge authenticates to brokers itself.
    pub fn does_sasl(&self) -> bool {
        self.sasl.is_some()
    }

    /// Connects to `host:port` within `timeout`: TCP, TLS (the certificate must name `host`),
    /// SASL.
    pub async fn connect(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<Connected, UpstreamError> {
        tokio::time::timeout(timeout, self.connect_inner(host, port))
            .await
            .map_err(|_| UpstreamError::Timeout)?
    }

    async fn connect_inner(&self, host: &str, port: u16) -> Result<Connected, UpstreamError> {
        let tcp = TcpStream::connect((host, port)).await?;
        let _ = tcp.set_nodelay(true);
        let mut stream = match &self.tls {
            Some(tls) => {
                let name = ServerName::try_from(host.to_owned())
                    .map_err(|_| UpstreamError::Config("broker host is not a valid TLS name"))?;
                let s = tls.connect(name, tcp).await.map_err(|e| {
                    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                        Some(t) => UpstreamError::Tls(t.clone()),
                        None => UpstreamError::Io(e),
                    }
                })?;
                UpstreamStream::Tls(Box::new(s))
            }
            None => UpstreamStream::Plain(tcp),
        };
        let session_lifetime = match &self.sasl {
            Some(sasl) => authenticate(&mut stream, sasl, self.random).await?,
            None => None,
        };
        Ok(Connected {
            stream,
            session_lifetime,
        })
    }
}

async fn exchange<'m, S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &impl Message<'m>,
) -> Result<Vec<u8>, UpstreamError> {
    let header = RequestHeader::new(api, version, correlation_id, Some("kafka-edge-bridge"));
    let size = header.encoded_len() + body.encoded_len(version);
    let mut buf = vec![0u8; 4 + size];
    let mut w = Writer::new(&mut buf);
    let encode = |w: &mut Writer<'_>| -> Result<(), kafka_edge_core::protocol::EncodeError> {
        kafka_edge_core::protocol::write_frame_size(w, size)?;
        header.encode(w)?;
        body.encode(version, w)
    };
    encode(&mut w).map_err(|_| UpstreamError::Config("SASL message too large"))?;
    stream.write_all(&buf).await?;
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).await?;
    let len = usize::try_from(i32::from_be_bytes(prefix))
        .ok()
        .filter(|&l| l <= 1 << 20)
        .ok_or(UpstreamError::Decode(
            kafka_edge_core::protocol::DecodeError::InvalidLength,
        ))?;
    let mut frame = vec![0u8; len];
    stream.read_exact(&mut frame).await?;
    Ok(frame)
}

/// SaslHandshake v1, then SaslAuthenticate v2 until the mechanism is done. Returns the
/// session lifetime the broker gave.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    sasl: &Sasl,
    random: &dyn rustls::crypto::SecureRandom,
) -> Result<Option<Duration>, UpstreamError> {
    let hs = SaslHandshakeRequest {
        mechanism: sasl.mechanism.name(),
    };
    let frame = exchange(stream, ApiKey::SaslHandshake, 1, 1, &hs).await?;
    let mut r = Reader::new(&frame);
    ResponseHeader::decode(0, &mut r).map_err(UpstreamError::Decode)?;
    let resp = SaslHandshakeResponse::decode(1, &mut r).map_err(UpstreamError::Decode)?;
    if resp.error_code != ErrorCode(0) {
        return Err(UpstreamError::SaslRefused {
            code: resp.error_code,
            message: None,
        });
    }
    let mut nonce = [0u8; 18];
    random
        .fill(&mut nonce)
        .map_err(|_| UpstreamError::Config("no randomness for the SCRAM nonce"))?;
    let mut client = match sasl.mechanism {
        Mechanism::Plain => SaslClient::plain(&sasl.username, &sasl.password),
        m => SaslClient::scram(m, &sasl.username, &sasl.password, &nonce),
    }
    .map_err(UpstreamError::Sasl)?;
    let mut out = vec![0u8; 1024 + sasl.username.len() * 3 + sasl.password.len()];
    let mut n = client.start(&mut out).map_err(UpstreamError::Sasl)?;
    let version = 2;
    let header_version = ApiKey::SaslAuthenticate.response_header_version(version);
    for correlation_id in 2..10 {
        let req = SaslAuthenticateRequest {
            auth_bytes: out.get(..n).unwrap_or_default(),
        };
        let frame = exchange(
            stream,
            ApiKey::SaslAuthenticate,
            version,
            correlation_id,
            &req,
        )
        .await?;
        let mut r = Reader::new(&frame);
        ResponseHeader::decode(header_version, &mut r).map_err(UpstreamError::Decode)?;
        let resp =
            SaslAuthenticateResponse::decode(version, &mut r).map_err(UpstreamError::Decode)?;
        if resp.error_code != ErrorCode(0) {
            return Err(UpstreamError::SaslRefused {
                code: resp.error_code,
                message: resp.error_message.map(str::to_owned),
            });
        }
        let lifetime = u64::try_from(resp.session_lifetime_ms)
            .ok()
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis);
        let mut next = vec![0u8; out.len()];
        match client
            .step(resp.auth_bytes, &mut next)
            .map_err(UpstreamError::Sasl)?
        {
            Step::Done => return Ok(lifetime),
            Step::Send(m) => {
                out = next;
                n = m;
            }
        }
    }
    Err(UpstreamError::Config("SASL exchange did not end"))
}

/// A broker connection: TCP or TLS.
#[derive(Debug)]
pub enum UpstreamStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
