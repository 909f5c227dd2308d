//! The errors of each boundary: building a producer ([`BuildError`]), loading properties
//! ([`PropertiesError`]), handing a record over ([`SendError`]) and a record's outcome
//! ([`ProduceError`]).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use kafka_edge_core::security::AuthFailureKind;

pub use crate::tls::TlsConfigError;

pub use kafka_edge_core::protocol::ErrorCode;
use kafka_edge_core::{
    ConfigError as CoreConfigError, ProduceError as CoreProduceError, SendError as CoreSendError,
};

/// Why a [`Producer`](crate::Producer) could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// A property has a value the producer refuses (the key is `None` for a check on the
    /// configuration as a whole, such as Java's idempotence rules).
    Config {
        /// The property concerned, when one is.
        key: Option<String>,
        /// The value refused, as given, when the property was set by name.
        value: Option<String>,
        /// What is wrong with it.
        source: CoreConfigError,
    },
    /// No `bootstrap.servers` entry resolves to an address (Java's "No resolvable bootstrap
    /// urls given in bootstrap.servers"); with `client.dns.lookup=use_all_dns_ips` entries
    /// that do not resolve are skipped while one does.
    NoResolvableBootstrap {
        /// The entries that did not resolve (`host:port`).
        urls: Vec<String>,
    },
    /// With `client.dns.lookup=resolve_canonical_bootstrap_servers_only`, a bootstrap host
    /// that does not resolve (Java's "Unknown host in bootstrap.servers").
    UnknownBootstrapHost {
        /// The entry (`host:port`).
        url: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The `ssl.*` properties do not make a TLS configuration (a file that cannot be read,
    /// a JKS store, an encrypted key, ...), with `security.protocol` `SSL` or `SASL_SSL`.
    Tls(TlsConfigError),
    /// `sasl.mechanism=OAUTHBEARER` without a token: set `sasl.oauthbearer.token`, or (for
    /// Kafka's unsecured validator) Java's `OAuthBearerLoginModule` with
    /// `unsecuredLoginStringClaim_sub` in `sasl.jaas.config`.
    MissingOAuthToken,
    /// A property of Java's producer that this producer does not offer, set to a value
    /// other than Java's default (see [`java_config`](crate::java_config)).
    Refused {
        /// The property.
        key: String,
        /// The value given (`[hidden]` for a secret).
        value: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// The poller, its waker or the I/O thread could not be created.
    Io(io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config {
                key: Some(key),
                value: Some(value),
                source,
            } => write!(f, "invalid producer configuration {key}={value}: {source}"),
            Self::Config {
                key: Some(key),
                value: None,
                source,
            } => write!(f, "invalid producer configuration {key}: {source}"),
            Self::Config {
                key: None, source, ..
            } => write!(f, "invalid producer configuration: {source}"),
            Self::NoResolvableBootstrap { urls } => write!(
                f,
                "no resolvable bootstrap urls given in bootstrap.servers (cannot resolve {})",
                urls.join(", ")
            ),
            Self::Refused { key, value, why } => {
                write!(f, "{key}={value} is not supported: {why}")
            }
            Self::UnknownBootstrapHost { url, source } => {
                write!(f, "unknown host in bootstrap.servers: {url} ({source})")
            }
            Self::Tls(e) => write!(f, "invalid TLS configuration: {e}"),
            Self::MissingOAuthToken => f.write_str(
                "sasl.mechanism=OAUTHBEARER needs a token: set sasl.oauthbearer.token, or \
                 OAuthBearerLoginModule with unsecuredLoginStringClaim_sub in sasl.jaas.config",
            ),
            Self::Io(e) => write!(f, "cannot start the producer's I/O: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config { source, .. } => Some(source),
            Self::NoResolvableBootstrap { .. } | Self::Refused { .. } => None,
            Self::UnknownBootstrapHost { source, .. } => Some(source),
            Self::Tls(e) => Some(e),
            Self::MissingOAuthToken => None,
            Self::Io(e) => Some(e),
        }
    }
}

impl From<TlsConfigError> for BuildError {
    fn from(e: TlsConfigError) -> Self {
        Self::Tls(e)
    }
}

impl From<io::Error> for BuildError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Why producer properties could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum PropertiesError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A `.properties` line that is neither `key=value`, `key: value`, a comment nor blank.
    Syntax {
        /// 1-based line number.
        line: usize,
    },
    /// A value that is not a string, a number or a boolean (or a table of those).
    UnsupportedValue {
        /// The property.
        key: String,
    },
    /// A JSON document that does not parse.
    #[cfg(feature = "json")]
    Json(serde_json::Error),
    /// A TOML document that does not parse.
    #[cfg(feature = "toml")]
    Toml(toml::de::Error),
}

impl fmt::Display for PropertiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Self::Syntax { line } => write!(f, "line {line}: expected key=value"),
            Self::UnsupportedValue { key } => {
                write!(f, "{key}: expected a string, a number or a boolean")
            }
            #[cfg(feature = "json")]
            Self::Json(e) => write!(f, "invalid JSON properties: {e}"),
            #[cfg(feature = "toml")]
            Self::Toml(e) => write!(f, "invalid TOML properties: {e}"),
        }
    }
}

impl std::error::Error for PropertiesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            #[cfg(feature = "json")]
            Self::Json(e) => Some(e),
            #[cfg(feature = "toml")]
            Self::Toml(e) => Some(e),
            _ => None,
        }
    }
}

/// Why [`Producer::send`](crate::Producer::send) (or [`send_async`](crate::Producer::send_async),
/// [`try_send`](crate::Producer::try_send)) did not accept a record. Nothing was sent and no
/// callback will be called for it.
///
/// [`is_retriable`](Self::is_retriable) says whether the same record may be accepted later
/// (the buffer or the metadata was not ready); [`broker_code`](Self::broker_code) gives the
/// broker's [`ErrorCode`] when the cluster refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The producer is closed (or closing): Java's `IllegalStateException`.
    Closed,
    /// Buffer memory is full now ([`try_send`](crate::Producer::try_send) only: the other
    /// sends wait for memory up to `max.block.ms`). Retry once records were delivered.
    BufferFull,
    /// The topic's partitions are not known yet and are being fetched
    /// ([`try_send`](crate::Producer::try_send) only: the other sends wait up to
    /// `max.block.ms`). Retry shortly.
    MetadataNotReady {
        /// The topic.
        topic: String,
    },
    /// The topic's metadata did not arrive within `max.block.ms` (it does not exist and is
    /// not auto-created, or the cluster cannot be reached).
    MetadataTimeout {
        /// The topic.
        topic: String,
        /// How long `send` waited.
        max_block_ms: u64,
        /// The last connection error of the producer, when no connection succeeded since
        /// (`cannot connect to 127.0.0.1:1: Connection refused`, `cannot resolve host:port:
        /// ...`): why the metadata did not come.
        cause: Option<String>,
    },
    /// No buffer memory came free within `max.block.ms` (the brokers do not keep up, or
    /// cannot be reached).
    BufferTimeout {
        /// How long `send` waited.
        max_block_ms: u64,
    },
    /// The record (with its batch overhead) is larger than `max.request.size` or than the
    /// buffer memory.
    RecordTooLarge {
        /// Bytes the record needs at least.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a legal topic name (empty, longer than 249 bytes, characters other than ASCII
    /// letters, digits, `.`, `_` and `-`), or the cluster says the topic is invalid.
    InvalidTopic {
        /// The topic.
        topic: String,
    },
    /// The record's partition (explicit, or chosen by a custom
    /// [`Partitioner`](crate::Partitioner)) is not in `0..num_partitions`.
    InvalidPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// The topic's partition count.
        num_partitions: u32,
    },
    /// The record's timestamp is negative (and not -1).
    InvalidTimestamp {
        /// The timestamp refused (ms since the Unix epoch).
        timestamp: i64,
    },
    /// One of the producer's tables is full (see [`LIMITS`](crate::LIMITS)): `table` names
    /// the limit (`topics`, `partitions`, `batches`, ...). Topics unused for
    /// `metadata.max.idle.ms` leave the topic table.
    TableFull {
        /// The limit's name in [`Limits`](crate::Limits) (`"topics"`, `"partitions"`, ...).
        table: &'static str,
        /// Its value, in entries.
        limit: usize,
    },
    /// The cluster refused the topic in its metadata (for example
    /// `TOPIC_AUTHORIZATION_FAILED`).
    TopicRefused {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: ErrorCode,
    },
    /// The producer hit a fatal broker error (for example `CLUSTER_AUTHORIZATION_FAILED`, or
    /// no common API version): nothing more can be sent.
    Fatal {
        /// The broker's error code.
        code: ErrorCode,
    },
    /// The key or value serializer failed.
    Serialization(SerializationError),
    /// The last authentication with the brokers failed and none succeeded since: a TLS
    /// handshake refused (an untrusted certificate, a host name mismatch, no common TLS
    /// version, the broker refusing the client certificate) or SASL refused (Java's
    /// `AuthenticationException`). Records are refused at once, not after `max.block.ms`.
    Authentication(AuthenticationError),
    /// The I/O thread is gone (it panicked): nothing can be sent any more.
    IoThreadGone,
    /// A refusal of the core that this version of the crate does not name, in the core's
    /// words.
    Other {
        /// What the core said.
        reason: String,
    },
    /// A transactional producer refused the record: outside a transaction, or the
    /// transaction must be aborted, or the producer was fenced.
    Transaction(TransactionError),
}

impl SendError {
    /// Whether the same record may be accepted later: the buffer was full or the metadata
    /// was not there yet (at once, or within `max.block.ms`).
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            Self::BufferFull
                | Self::MetadataNotReady { .. }
                | Self::BufferTimeout { .. }
                | Self::MetadataTimeout { .. }
        )
    }

    /// The broker's error code, when the cluster refused (the topic, or fatally).
    pub fn broker_code(&self) -> Option<ErrorCode> {
        match self {
            Self::TopicRefused { code, .. } | Self::Fatal { code } => Some(*code),
            _ => None,
        }
    }

    /// The core's refusal in this crate's words (`BufferFull` and `MetadataNotReady` come
    /// back as such: the callers decide whether to wait).
    pub(crate) fn from_core(e: CoreSendError, topic: &str) -> Self {
        match e {
            CoreSendError::Closed => Self::Closed,
            CoreSendError::BufferFull => Self::BufferFull,
            CoreSendError::MetadataNotReady => Self::MetadataNotReady {
                topic: topic.to_string(),
            },
            CoreSendError::RecordTooLarge { size, max } => Self::RecordTooLarge { size, max },
            CoreSendError::InvalidTopic => Self::InvalidTopic {
                topic: topic.to_string(),
            },
            CoreSendError::InvalidPartition {
                partition,
                num_partitions,
            } => Self::InvalidPartition {
                topic: topic.to_string(),
                partition,
                num_partitions,
            },
            CoreSendError::InvalidTimestamp { timestamp } => Self::InvalidTimestamp { timestamp },
            CoreSendError::TableFull(full) => Self::TableFull {
                table: full.table.limit_name(),
                limit: full.limit,
            },
            CoreSendError::Topic { code } => Self::TopicRefused {
                topic: topic.to_string(),
                code,
            },
            CoreSendError::Fatal(code) => Self::Fatal { code },
            CoreSendError::Authentication(kind) => Self::Authentication(AuthenticationError {
                kind,
                message: Arc::from(""),
            }),
            CoreSendError::Transaction(e) => Self::Transaction(TransactionError::from_core(e)),
            other => Self::Other {
                reason: other.to_string(),
            },
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => f.write_str("Cannot perform operation after producer has been closed"),
            Self::BufferFull => f.write_str(
                "buffer memory is full (buffer.memory): retry once records were delivered",
            ),
            Self::MetadataNotReady { topic } => {
                write!(
                    f,
                    "the partitions of topic {topic} are being fetched: retry shortly"
                )
            }
            Self::MetadataTimeout {
                topic,
                max_block_ms,
                cause,
            } => {
                write!(
                    f,
                    "Topic {topic} not present in metadata after {max_block_ms} ms."
                )?;
                match cause {
                    Some(cause) => write!(f, " Last connection error: {cause}."),
                    None => Ok(()),
                }
            }
            Self::BufferTimeout { max_block_ms } => write!(
                f,
                "Failed to allocate memory within the configured max blocking time \
                 {max_block_ms} ms."
            ),
            Self::RecordTooLarge { size, max } => write!(
                f,
                "The message is {size} bytes when serialized which is larger than {max}, the \
                 value of the max.request.size configuration or the buffer memory."
            ),
            Self::InvalidTopic { topic } => write!(f, "invalid topic name {topic:?}"),
            Self::InvalidPartition {
                topic,
                partition,
                num_partitions,
            } => write!(
                f,
                "Invalid partition given with record: {partition} is not in the range \
                 [0...{num_partitions}) of topic {topic}."
            ),
            Self::InvalidTimestamp { timestamp } => {
                write!(
                    f,
                    "Invalid timestamp: {timestamp}. Timestamp should always be non-negative or -1."
                )
            }
            Self::TableFull { table, limit } => {
                write!(f, "the producer's {table} table is full at {limit} entries")
            }
            Self::TopicRefused { topic, code } => {
                write!(f, "the cluster refused topic {topic}: {code}")
            }
            Self::Fatal { code } => write!(f, "the producer is in a fatal state: {code}"),
            Self::Serialization(e) => e.fmt(f),
            Self::Authentication(e) => e.fmt(f),
            Self::IoThreadGone => f.write_str("the producer's I/O thread is gone"),
            Self::Other { reason } => f.write_str(reason),
            Self::Transaction(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Serialization(e) => Some(e),
            Self::Authentication(e) => Some(e),
            _ => None,
        }
    }
}

/// Why authentication with the brokers failed (the core's
/// [`AuthFailure`](kafka_edge_core::security::AuthFailure)): for TLS the message names the
/// broker and the reason, as in `SSL handshake failed with broker 127.0.0.1:9093 (node 1):
/// invalid peer certificate: UnknownIssuer (...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationError {
    /// TLS or SASL.
    pub kind: AuthFailureKind,
    /// The reason: for TLS `broker HOST:PORT (node N): ...` (this transport's words), for
    /// SASL the broker's error message.
    pub message: Arc<str>,
}

impl fmt::Display for AuthenticationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AuthFailureKind::Tls => write!(f, "{} with {}", self.kind, self.message),
            _ => write!(f, "{}: {}", self.kind, self.message),
        }
    }
}

impl std::error::Error for AuthenticationError {}

impl From<SerializationError> for SendError {
    fn from(e: SerializationError) -> Self {
        Self::Serialization(e)
    }
}

/// A key or value that a [`Serializer`](crate::Serializer) could not turn into bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SerializationError {
    /// The key.
    Key {
        /// The serializer's explanation.
        reason: String,
    },
    /// The value.
    Value {
        /// The serializer's explanation.
        reason: String,
    },
}

impl fmt::Display for SerializationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key { reason } => write!(f, "cannot serialize the key: {reason}"),
            Self::Value { reason } => write!(f, "cannot serialize the value: {reason}"),
        }
    }
}

impl std::error::Error for SerializationError {}

/// Why an accepted record was not delivered: the outcome of a
/// [`DeliveryFuture`](crate::DeliveryFuture) or callback.
/// [`broker_code`](Self::broker_code) gives the broker's [`ErrorCode`] when a broker refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProduceError {
    /// A broker refused the record with an error that is not retriable (or retries ran out
    /// on a retriable one): `MESSAGE_TOO_LARGE` for a record too large on its own,
    /// `INVALID_RECORD`, `TOPIC_AUTHORIZATION_FAILED`, `NOT_ENOUGH_REPLICAS`, ...
    Broker {
        /// The broker's error code (its name, number and whether it is retriable).
        code: ErrorCode,
    },
    /// The connection failed while the record was in flight and `retries` ran out.
    Network,
    /// `delivery.timeout.ms` passed since the record's batch was created (Java's
    /// `TimeoutException`).
    DeliveryTimeout,
    /// The producer was closed and its close timeout passed before the record was
    /// delivered.
    Closed,
    /// The producer hit a fatal broker error (for example `CLUSTER_AUTHORIZATION_FAILED`,
    /// or no common API version): nothing more can be sent.
    Fatal {
        /// The broker's error code.
        code: ErrorCode,
    },
    /// Authentication with the brokers failed (TLS or SASL, with its reason): the record
    /// was not written.
    Authentication(AuthenticationError),
    /// The producer stopped tracking the record without an outcome from the core (its I/O
    /// thread panicked): the record may or may not have been written.
    Abandoned,
    /// An outcome of the core that this version of the crate does not name, in the core's
    /// words.
    Other {
        /// What the core said.
        reason: String,
    },
    /// The transaction was aborted before the record was sent (Java's
    /// `TransactionAbortedException`): it was not written.
    TransactionAborted,
}

impl ProduceError {
    /// The broker's error code, when a broker refused the record (or failed the producer).
    pub fn broker_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Broker { code } | Self::Fatal { code } => Some(*code),
            _ => None,
        }
    }

    /// The core's outcome in this crate's words (`auth`: the details of the last
    /// authentication failure, when known).
    pub(crate) fn from_core(e: CoreProduceError, auth: Option<&AuthenticationError>) -> Self {
        match e {
            CoreProduceError::Broker { code } => Self::Broker { code },
            CoreProduceError::Network => Self::Network,
            CoreProduceError::DeliveryTimeout => Self::DeliveryTimeout,
            CoreProduceError::Closed => Self::Closed,
            CoreProduceError::Fatal(code) => Self::Fatal { code },
            CoreProduceError::TransactionAborted => Self::TransactionAborted,
            CoreProduceError::Authentication(kind) => Self::Authentication(match auth {
                Some(a) if a.kind == kind => a.clone(),
                _ => AuthenticationError {
                    kind,
                    message: Arc::from(""),
                },
            }),
            other => Self::Other {
                reason: other.to_string(),
            },
        }
    }
}

impl fmt::Display for ProduceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Broker { code } => write!(f, "{code}"),
            Self::Network => f.write_str("the connection to the broker failed and retries ran out"),
            Self::DeliveryTimeout => f.write_str(
                "expiring record(s): delivery.timeout.ms has passed since batch creation",
            ),
            Self::Closed => f.write_str("producer closed forcefully before delivery"),
            Self::Fatal { code } => write!(f, "the producer is in a fatal state: {code}"),
            Self::Authentication(e) => e.fmt(f),
            Self::Abandoned => f.write_str(
                "the producer's I/O thread stopped before the record's outcome was known",
            ),
            Self::Other { reason } => f.write_str(reason),
            Self::TransactionAborted => f.write_str("Failing batch since transaction was aborted"),
        }
    }
}

impl std::error::Error for ProduceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Authentication(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_edge_core::{TableFull, TableKind};

    #[test]
    fn core_refusals_become_named_causes() {
        let topic = "events";
        assert_eq!(
            SendError::from_core(CoreSendError::BufferFull, topic),
            SendError::BufferFull
        );
        assert_eq!(
            SendError::from_core(
                CoreSendError::InvalidPartition {
                    partition: 7,
                    num_partitions: 3
                },
                topic
            ),
            SendError::InvalidPartition {
                topic: topic.into(),
                partition: 7,
                num_partitions: 3
            }
        );
        let full = SendError::from_core(
            CoreSendError::TableFull(TableFull {
                table: TableKind::Topics,
                limit: 65_535,
            }),
            topic,
        );
        assert_eq!(
            full,
            SendError::TableFull {
                table: "topics",
                limit: 65_535
            }
        );
        let refused = SendError::from_core(
            CoreSendError::Topic {
                code: ErrorCode::TOPIC_AUTHORIZATION_FAILED,
            },
            topic,
        );
        assert_eq!(
            refused.broker_code().map(|c| (c.code(), c.name())),
            Some((29, "TOPIC_AUTHORIZATION_FAILED"))
        );
        assert!(!refused.is_retriable());
        assert!(SendError::BufferFull.is_retriable());
    }

    #[test]
    fn outcomes_expose_the_broker_code() {
        let e = ProduceError::from_core(
            CoreProduceError::Broker {
                code: ErrorCode::MESSAGE_TOO_LARGE,
            },
            None,
        );
        assert_eq!(
            e,
            ProduceError::Broker {
                code: ErrorCode::MESSAGE_TOO_LARGE
            }
        );
        let code = e.broker_code().unwrap();
        assert_eq!((code.code(), code.name()), (10, "MESSAGE_TOO_LARGE"));
        assert!(e.to_string().starts_with("MESSAGE_TOO_LARGE (10)"), "{e}");
        assert_eq!(
            ProduceError::from_core(CoreProduceError::DeliveryTimeout, None).broker_code(),
            None
        );
        let auth = AuthenticationError {
            kind: AuthFailureKind::Sasl,
            message: "bad password".into(),
        };
        assert_eq!(
            ProduceError::from_core(
                CoreProduceError::Authentication(AuthFailureKind::Sasl),
                Some(&auth)
            ),
            ProduceError::Authentication(auth)
        );
    }
}

/// Why a transactional call ([`Producer::init_transactions`](crate::Producer::init_transactions),
/// `begin_transaction`, `commit_transaction`, `abort_transaction`) failed, in Java's classes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransactionError {
    /// A newer producer with the same `transactional.id` fenced this one (Java's
    /// `ProducerFencedException`; also what a commit gets after the coordinator aborted the
    /// transaction on `transaction.timeout.ms` under transaction version 1; under version 2
    /// that commit fails with [`Fatal`](Self::Fatal) `INVALID_TXN_STATE`, as in Java).
    /// Close the producer.
    Fenced {
        /// `PRODUCER_FENCED`, `INVALID_PRODUCER_EPOCH` or `TRANSACTION_COORDINATOR_FENCED`.
        code: ErrorCode,
    },
    /// The transaction cannot be committed; abort it, then the producer goes on (Java's
    /// `TransactionAbortableException` or the error that made it abortable).
    Abortable {
        /// What made the transaction abortable, in the core's words.
        cause: String,
        /// The broker's error code, when a broker refused.
        code: Option<ErrorCode>,
    },
    /// The producer cannot carry on (for example `TRANSACTIONAL_ID_AUTHORIZATION_FAILED`):
    /// close it.
    Fatal {
        /// The broker's error code.
        code: ErrorCode,
    },
    /// The operation did not finish within its timeout (Java's `TimeoutException`); call
    /// the same method again to resume it.
    Timeout {
        /// The timeout, in milliseconds.
        timeout_ms: u64,
    },
    /// The call is not allowed in the transaction's state (Java's `IllegalStateException`).
    InvalidState {
        /// Java's name of the state (`READY`, `IN_TRANSACTION`, `ABORTABLE_ERROR`, ...).
        state: &'static str,
    },
    /// The producer has no `transactional.id`.
    NotTransactional,
    /// The producer is closed.
    Closed,
    /// Another refusal of the core, in its words.
    Other {
        /// What the core said.
        reason: String,
    },
}

impl TransactionError {
    /// Whether the producer cannot carry on (fenced or fatal): close it.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Fenced { .. } | Self::Fatal { .. })
    }

    pub(crate) fn from_core(e: kafka_edge_core::TransactionError) -> Self {
        use kafka_edge_core::TransactionError as Core;
        match e {
            Core::Fenced(code) => Self::Fenced { code },
            Core::Abortable(cause) => Self::Abortable {
                cause: cause.to_string(),
                code: match cause {
                    CoreProduceError::Broker { code } => Some(code),
                    _ => None,
                },
            },
            Core::Fatal(code) => Self::Fatal { code },
            Core::InvalidState(state) => Self::InvalidState {
                state: state.name(),
            },
            Core::NotTransactional => Self::NotTransactional,
            other => Self::Other {
                reason: other.to_string(),
            },
        }
    }
}

impl fmt::Display for TransactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fenced { code } => write!(
                f,
                "there is a newer producer with the same transactionalId which fences the \
                 current one ({code})"
            ),
            Self::Abortable { cause, .. } => write!(
                f,
                "the transaction cannot be committed and must be aborted: {cause}"
            ),
            Self::Fatal { code } => write!(f, "the transactional producer failed: {code}"),
            Self::Timeout { timeout_ms } => write!(
                f,
                "Timeout expired after {timeout_ms}ms while awaiting the transaction operation"
            ),
            Self::InvalidState { state } => {
                write!(f, "Invalid transition attempted from state {state}")
            }
            Self::NotTransactional => f.write_str(
                "Cannot use transactional methods without enabling transactions by setting \
                 the transactional.id configuration property",
            ),
            Self::Closed => f.write_str("Cannot perform operation after producer has been closed"),
            Self::Other { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for TransactionError {}
