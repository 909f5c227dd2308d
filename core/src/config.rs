//! `ProducerConfig`: the producer's settings, under the Java client's property names.
//!
//! Defaults are those of the Java producer (Kafka 4.x). Values are set either through the
//! public fields or, like Java's `Properties`, by name with string values through
//! [`ProducerConfig::set`]; [`ProducerConfig::validate`] checks the combination with the
//! rules and messages of Java's `ProducerConfig`.
//!
//! ```
//! use kafka_edge_core::{Acks, ProducerConfig};
//! let mut config = ProducerConfig::new("broker-1:9092,broker-2:9092")?;
//! config.set("linger.ms", "20")?;
//! config.set("acks", "1")?;
//! assert_eq!(config.acks, Acks::Leader);
//! assert!(!config.idempotence_enabled()); // acks=1 turns the default idempotence off
//! config.validate()?;
//! # Ok::<(), kafka_edge_core::ConfigError>(())
//! ```

use core::fmt;
use core::str::FromStr;

use heapless::String as HString;

use crate::record::CompressionType;
use crate::security::SecurityProtocol;

/// Longest host name kept for a broker address (bootstrap or from metadata): 255 bytes, the
/// longest DNS name (RFC 1035).
pub const MAX_HOST_LEN: usize = 255;

/// Most `bootstrap.servers` entries.
pub const MAX_BOOTSTRAP_SERVERS: usize = 32;

/// Longest `client.id`: 255 bytes. Java sets no limit of its own (only the request
/// header's 32767-byte string); this core keeps the id inline in [`ProducerConfig`] (no
/// heap) and copies it into every request header, so it is bounded, at the length of the
/// longest DNS name, which covers ids built from a host name plus a suffix.
pub const MAX_CLIENT_ID_LEN: usize = 255;

/// Longest `transactional.id` accepted, in bytes (Kafka's own limit is a short string).
pub const MAX_TRANSACTIONAL_ID_LEN: usize = 255;

/// `batch.size`'s default, and the pool's slot size when `batch.size=0` (no batching).
pub const DEFAULT_BATCH_SIZE: usize = 16_384;

/// `batch.max.size` default: 256 KiB, KIP-782's proposal (see
/// [`ProducerConfig::batch_max_size`]).
pub const DEFAULT_BATCH_MAX_SIZE: usize = 262_144;

/// How many times `batch.size` a pool slot holds when batches are compressed: a batch's
/// records stay uncompressed in their slot until it is closed, and a batch is full when its
/// estimated compressed size reaches `batch.size`, so records compressing better than 4:1
/// fill the slot before that (the batch then comes out smaller than Java's).
pub const COMPRESSED_SLOT_FACTOR: usize = 4;

/// `compression.gzip.level`'s default (`Deflater.DEFAULT_COMPRESSION`: zlib's level 6).
pub const DEFAULT_GZIP_LEVEL: i32 = -1;
/// `compression.lz4.level`'s default (lz4's fast compressor in Java).
pub const DEFAULT_LZ4_LEVEL: i32 = 9;
/// `compression.zstd.level`'s default.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// `delivery.timeout.ms`'s default.
pub const DEFAULT_DELIVERY_TIMEOUT_MS: u64 = 120_000;

/// Largest `max.in.flight.requests.per.connection` this core supports (its per-connection
/// request queue has this many entries).
pub const MAX_IN_FLIGHT_CAPACITY: usize = 8;

pub use crate::bootstrap::{BootstrapIter, BootstrapServers, BrokerAddress, MAX_BOOTSTRAP_LEN};

/// `acks`: how many replicas must acknowledge a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `acks=0`: no response; a batch counts as delivered once written to the socket.
    None,
    /// `acks=1`: the leader's acknowledgement.
    Leader,
    /// `acks=all` (`-1`): all in-sync replicas (the default).
    #[default]
    All,
}

impl Acks {
    /// The `acks` field of a Produce request: 0, 1 or -1.
    pub const fn wire(self) -> i16 {
        match self {
            Self::None => 0,
            Self::Leader => 1,
            Self::All => -1,
        }
    }
}

impl FromStr for Acks {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "0" => Ok(Self::None),
            "1" => Ok(Self::Leader),
            "-1" => Ok(Self::All),
            v if v.eq_ignore_ascii_case("all") => Ok(Self::All),
            _ => Err(ConfigError::InvalidValue { key: "acks" }),
        }
    }
}

/// `client.dns.lookup`: how a transport resolves broker host names (Java's
/// `ClientDnsLookup`). The core does no DNS; transports that do read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientDnsLookup {
    /// `use_all_dns_ips` (the default): every address a name resolves to may be used.
    #[default]
    UseAllDnsIps,
    /// `resolve_canonical_bootstrap_servers_only`: Java resolves each bootstrap name to its
    /// canonical host names first (for SASL/Kerberos host names); a bootstrap host that
    /// does not resolve is an error at construction.
    ResolveCanonicalBootstrapServersOnly,
}

impl ClientDnsLookup {
    /// The property value (`use_all_dns_ips`, `resolve_canonical_bootstrap_servers_only`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UseAllDnsIps => "use_all_dns_ips",
            Self::ResolveCanonicalBootstrapServersOnly => {
                "resolve_canonical_bootstrap_servers_only"
            }
        }
    }
}

impl FromStr for ClientDnsLookup {
    type Err = ConfigError;

    /// Exactly one of the two values, as Java's `ConfigDef` validator `in(..)` requires.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "use_all_dns_ips" => Ok(Self::UseAllDnsIps),
            "resolve_canonical_bootstrap_servers_only" => {
                Ok(Self::ResolveCanonicalBootstrapServersOnly)
            }
            _ => Err(ConfigError::InvalidValue {
                key: "client.dns.lookup",
            }),
        }
    }
}

/// A configuration that cannot be used, with the property concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `bootstrap.servers` is empty or an entry is not `host:port`.
    InvalidBootstrap,
    /// More than [`MAX_BOOTSTRAP_SERVERS`] bootstrap servers.
    TooManyBootstrapServers,
    /// A host name longer than [`MAX_HOST_LEN`].
    HostTooLong,
    /// A property this producer does not know.
    UnknownKey,
    /// A value that does not parse or is out of range for the property.
    InvalidValue {
        /// The property.
        key: &'static str,
    },
    /// A value this core does not support (yet), such as a compression codec.
    Unsupported {
        /// The property.
        key: &'static str,
    },
    /// Settings that contradict each other, with Java's explanation.
    Conflict(&'static str),
    /// Storage handed to the producer is too small.
    StorageTooSmall {
        /// Which storage (`"buffer.memory"` for the pool, `"io"` for connections).
        what: &'static str,
        /// Bytes needed at least.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InvalidBootstrap => {
                f.write_str("invalid url in bootstrap.servers (expected host:port)")
            }
            Self::TooManyBootstrapServers => write!(
                f,
                "bootstrap.servers lists more than {MAX_BOOTSTRAP_SERVERS} addresses"
            ),
            Self::HostTooLong => write!(f, "host name longer than {MAX_HOST_LEN} bytes"),
            Self::UnknownKey => f.write_str("unknown producer configuration"),
            Self::InvalidValue { key } => write!(f, "invalid value for configuration {key}"),
            Self::Unsupported { key } => write!(f, "unsupported value for configuration {key}"),
            Self::Conflict(why) => f.write_str(why),
            Self::StorageTooSmall {
                what,
                needed,
                available,
            } => write!(
                f,
                "{what} storage too small: {needed} bytes needed, {available} given"
            ),
        }
    }
}

impl core::error::Error for ConfigError {}

/// The producer's settings (Java's `ProducerConfig`): the Java producer's defaults (Kafka
/// 4.x), set through the fields or by property name with [`ProducerConfig::set`], checked
/// together by [`ProducerConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// `bootstrap.servers`: where to fetch the first metadata.
    pub bootstrap_servers: BootstrapServers,
    /// `client.id` (default `"kafka-edge"`; at most [`MAX_CLIENT_ID_LEN`] bytes).
    pub client_id: HString<MAX_CLIENT_ID_LEN>,
    /// `acks` (default `all`).
    pub acks: Acks,
    /// `linger.ms` (default 5).
    pub linger_ms: u64,
    /// `batch.size` (default 16384): the pool's slot size and the bytes a batch takes
    /// before it is sent without waiting for `linger.ms`. `0` means no batching, as in
    /// Java: every batch is closed after its first record, and the pool's slots have
    /// [`DEFAULT_BATCH_SIZE`] bytes (a record larger than a slot takes several, as always);
    /// see [`slot_size`](Self::slot_size).
    pub batch_size: usize,
    /// `batch.max.size` (default [`DEFAULT_BATCH_MAX_SIZE`]; KIP-782, not in Java's
    /// producer): how far an uncompressed batch full at `batch.size` may grow while it
    /// cannot be sent (its partition has batches in requests, is muted, or has batches
    /// queued before it). Kafka takes one batch per partition in a Produce request, so
    /// without growing a hot partition moves at most
    /// `max.in.flight.requests.per.connection` x `batch.size` per round trip. A batch grows
    /// only into free memory of the pool (a quarter of it stays free), while it is younger
    /// than a tenth of `delivery.timeout.ms`, and not once its topic's batches were refused
    /// as too large. `0`, or any value up to `batch.size`, keeps Java's behaviour: batches
    /// never grow.
    pub batch_max_size: usize,
    /// `buffer.memory`: informational here (default 33554432); the pool is the storage
    /// handed to [`Producer::new`](crate::Producer::new), and this field is set from it.
    pub buffer_memory: usize,
    /// `max.block.ms` (default 60000): how long a transport lets `send` wait for metadata
    /// or memory; the core itself never blocks.
    pub max_block_ms: u64,
    /// `delivery.timeout.ms` (default 120000): upper bound from a batch's creation to its
    /// outcome. Left at its default, it is raised to `linger.ms + request.timeout.ms` when
    /// smaller (see [`configure_delivery_timeout`](Self::configure_delivery_timeout)); set
    /// explicitly, a smaller value fails [`validate`](Self::validate), as in Java.
    pub delivery_timeout_ms: u64,
    delivery_timeout_explicit: bool,
    delivery_timeout_raised: bool,
    /// `request.timeout.ms` (default 30000): how long a request may wait for its response.
    pub request_timeout_ms: u64,
    /// `retries` (default `u32::MAX`, Java's `Integer.MAX_VALUE`).
    pub retries: u32,
    /// `retry.backoff.ms` (default 100): first backoff before a retry.
    pub retry_backoff_ms: u64,
    /// `retry.backoff.max.ms` (default 1000): the backoff doubles per attempt up to this.
    pub retry_backoff_max_ms: u64,
    /// `max.in.flight.requests.per.connection` (default 5, at most
    /// [`MAX_IN_FLIGHT_CAPACITY`]).
    pub max_in_flight_requests_per_connection: usize,
    /// `enable.idempotence` (default true; see [`idempotence_enabled`](Self::idempotence_enabled)).
    pub enable_idempotence: bool,
    idempotence_explicit: bool,
    /// `transactional.id` (default none, empty here): makes the producer transactional
    /// (see [`Producer::init_transactions`](crate::Producer::init_transactions)), which
    /// requires idempotence (so acks=all); at most [`MAX_TRANSACTIONAL_ID_LEN`] bytes.
    pub transactional_id: HString<MAX_TRANSACTIONAL_ID_LEN>,
    /// `transaction.timeout.ms` (default 60000): how long the transaction coordinator lets
    /// a transaction stay open before it aborts it.
    pub transaction_timeout_ms: u32,
    /// `compression.type` (default `none`): the codec of every batch (feature
    /// `compression`, and a producer built with a [`Compressor`](crate::record::Compressor)
    /// that has the codec; see [`record::Compressor`](crate::record::Compressor)).
    pub compression_type: CompressionType,
    /// `compression.gzip.level` (default -1, zlib's default level 6; else 1..=9).
    pub compression_gzip_level: i32,
    /// `compression.lz4.level` (default 9; 1..=17). Java uses lz4's fast compressor at the
    /// default level and its high-compression one otherwise.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level` (default 3; -131072..=22).
    pub compression_zstd_level: i32,
    /// `metadata.max.age.ms` (default 300000): metadata is refreshed at least this often.
    pub metadata_max_age_ms: u64,
    /// `metadata.max.idle.ms` (default 300000, at least 5000 as in Java): a topic no record
    /// was sent to for this long, with nothing queued or in flight, is dropped from the
    /// metadata and its table entries are reused.
    pub metadata_max_idle_ms: u64,
    /// `reconnect.backoff.ms` (default 50): wait before reconnecting to a broker.
    pub reconnect_backoff_ms: u64,
    /// `reconnect.backoff.max.ms` (default 1000): the reconnect backoff doubles up to this.
    /// As in Java, setting `reconnect.backoff.ms` without it sets it to the same value (a
    /// constant reconnect backoff).
    pub reconnect_backoff_max_ms: u64,
    reconnect_backoff_max_explicit: bool,
    /// `socket.connection.setup.timeout.ms` (default 10000): a connection attempt that the
    /// transport did not complete by then is abandoned.
    pub socket_connection_setup_timeout_ms: u64,
    /// `socket.connection.setup.timeout.max.ms` (default 30000): the setup timeout doubles
    /// with each consecutive failed attempt to the same broker, up to this (as in Java,
    /// but without Java's random 20% spread: the core draws no random numbers).
    pub socket_connection_setup_timeout_max_ms: u64,
    /// `connections.max.idle.ms` (default 540000): a connection with nothing in flight and
    /// no request or response for this long is closed; `None` (a negative value, as in
    /// Java) never closes one for idleness.
    pub connections_max_idle_ms: Option<u64>,
    /// `metadata.recovery.strategy` (default `rebootstrap`): whether the bootstrap servers
    /// are tried again, beside the brokers of the last metadata, when metadata is needed
    /// and no connection is ready (`false`: Java's `none`, only the known brokers once
    /// metadata has named some).
    pub rebootstrap: bool,
    /// `max.request.size` (default 1048576): largest Produce request (and record).
    pub max_request_size: usize,
    /// `partitioner.ignore.keys` (default false): keyed records are placed like keyless ones.
    pub partitioner_ignore_keys: bool,
    /// `partitioner.adaptive.partitioning.enable` (default true): the built-in partitioner
    /// weighs partitions by their queued batches when it switches sticky partitions
    /// (KIP-794; see [`BuiltInPartitioner`](crate::BuiltInPartitioner)).
    pub partitioner_adaptive: bool,
    /// `partitioner.availability.timeout.ms` (default 0, off): with adaptive partitioning,
    /// a partition whose leader has had batches ready that it could not take for longer
    /// than this is left out when the sticky partition switches (KIP-794).
    pub partitioner_availability_timeout_ms: u64,
    /// `client.dns.lookup` (default `use_all_dns_ips`): read by transports that resolve
    /// host names.
    pub client_dns_lookup: ClientDnsLookup,
    /// `max.response.size` (this core's own; default 104857600, Kafka's
    /// `socket.request.max.bytes`): the largest response frame accepted; a larger one closes
    /// the connection. A connection's receive buffer grows to the largest frame it received,
    /// up to this and the storage's [`Limits::response_bytes`](crate::Limits).
    pub max_response_size: usize,
    /// `security.protocol` (default `PLAINTEXT`): TLS is the transport's, SASL the core's
    /// (feature `sasl`; without it the SASL protocols are refused).
    pub security_protocol: SecurityProtocol,
    /// The SASL settings (`sasl.mechanism`, `sasl.jaas.config`, `sasl.username`,
    /// `sasl.password`).
    #[cfg(feature = "sasl")]
    pub sasl: crate::security::SaslConfig,
}

impl Default for ProducerConfig {
    /// The defaults with no bootstrap server (set some before use).
    fn default() -> Self {
        let mut client_id = HString::new();
        let _ = client_id.push_str("kafka-edge");
        Self {
            bootstrap_servers: BootstrapServers::default(),
            client_id,
            acks: Acks::All,
            linger_ms: 5,
            batch_size: DEFAULT_BATCH_SIZE,
            batch_max_size: DEFAULT_BATCH_MAX_SIZE,
            buffer_memory: 33_554_432,
            max_block_ms: 60_000,
            delivery_timeout_ms: DEFAULT_DELIVERY_TIMEOUT_MS,
            delivery_timeout_explicit: false,
            delivery_timeout_raised: false,
            request_timeout_ms: 30_000,
            retries: u32::MAX,
            retry_backoff_ms: 100,
            retry_backoff_max_ms: 1_000,
            max_in_flight_requests_per_connection: 5,
            enable_idempotence: true,
            idempotence_explicit: false,
            transactional_id: HString::new(),
            transaction_timeout_ms: 60_000,
            compression_type: CompressionType::None,
            compression_gzip_level: DEFAULT_GZIP_LEVEL,
            compression_lz4_level: DEFAULT_LZ4_LEVEL,
            compression_zstd_level: DEFAULT_ZSTD_LEVEL,
            metadata_max_age_ms: 300_000,
            metadata_max_idle_ms: 300_000,
            reconnect_backoff_ms: 50,
            reconnect_backoff_max_ms: 1_000,
            reconnect_backoff_max_explicit: false,
            socket_connection_setup_timeout_ms: 10_000,
            socket_connection_setup_timeout_max_ms: 30_000,
            connections_max_idle_ms: Some(540_000),
            rebootstrap: true,
            max_request_size: 1_048_576,
            partitioner_ignore_keys: false,
            partitioner_adaptive: true,
            partitioner_availability_timeout_ms: 0,
            client_dns_lookup: ClientDnsLookup::UseAllDnsIps,
            max_response_size: 104_857_600,
            security_protocol: SecurityProtocol::Plaintext,
            #[cfg(feature = "sasl")]
            sasl: crate::security::SaslConfig::default(),
        }
    }
}

fn parse<T: FromStr>(key: &'static str, value: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::InvalidValue { key })
}

fn parse_bool(key: &'static str, value: &str) -> Result<bool, ConfigError> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ConfigError::InvalidValue { key })
    }
}

/// A non-negative Java `int`/`long` duration or size.
fn parse_u64(key: &'static str, value: &str) -> Result<u64, ConfigError> {
    parse(key, value)
}

fn parse_usize(key: &'static str, value: &str) -> Result<usize, ConfigError> {
    let v: u64 = parse(key, value)?;
    usize::try_from(v).map_err(|_| ConfigError::InvalidValue { key })
}

impl ProducerConfig {
    /// The property names [`set`](Self::set) accepts.
    pub const KEYS: &'static [&'static str] = &[
        "bootstrap.servers",
        "client.id",
        "acks",
        "linger.ms",
        "batch.max.size",
        "batch.size",
        "buffer.memory",
        "max.block.ms",
        "delivery.timeout.ms",
        "request.timeout.ms",
        "retries",
        "retry.backoff.ms",
        "retry.backoff.max.ms",
        "max.in.flight.requests.per.connection",
        "enable.idempotence",
        "transactional.id",
        "transaction.timeout.ms",
        "compression.type",
        "compression.gzip.level",
        "compression.lz4.level",
        "compression.zstd.level",
        "metadata.max.age.ms",
        "metadata.max.idle.ms",
        "reconnect.backoff.ms",
        "reconnect.backoff.max.ms",
        "socket.connection.setup.timeout.ms",
        "socket.connection.setup.timeout.max.ms",
        "connections.max.idle.ms",
        "metadata.recovery.strategy",
        "max.request.size",
        "partitioner.ignore.keys",
        "partitioner.adaptive.partitioning.enable",
        "partitioner.availability.timeout.ms",
        "client.dns.lookup",
        "max.response.size",
        "security.protocol",
        #[cfg(feature = "sasl")]
        "sasl.mechanism",
        #[cfg(feature = "sasl")]
        "sasl.mechanisms",
        #[cfg(feature = "sasl")]
        "sasl.jaas.config",
        #[cfg(feature = "sasl")]
        "sasl.username",
        #[cfg(feature = "sasl")]
        "sasl.password",
    ];

    /// The defaults with `bootstrap.servers` set from a comma-separated list of
    /// `host:port` (`"h1:9092,h2:9092"`).
    pub fn new(bootstrap: &str) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        config.set_bootstrap_servers(bootstrap)?;
        Ok(config)
    }

    fn set_bootstrap_servers(&mut self, list: &str) -> Result<(), ConfigError> {
        self.bootstrap_servers = BootstrapServers::parse(list)?;
        Ok(())
    }

    /// Sets property `key` from its string form, as Java's `Properties` would. Unknown keys
    /// are an error (transports handle their own keys, such as TLS or SASL settings, first).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            "bootstrap.servers" => self.set_bootstrap_servers(value)?,
            "client.id" => {
                let mut id = HString::new();
                id.push_str(value.trim())
                    .map_err(|_| ConfigError::InvalidValue { key: "client.id" })?;
                self.client_id = id;
            }
            "acks" => self.acks = value.parse()?,
            "linger.ms" => self.linger_ms = parse_u64("linger.ms", value)?,
            "batch.size" => self.batch_size = parse_usize("batch.size", value)?,
            "batch.max.size" => self.batch_max_size = parse_usize("batch.max.size", value)?,
            "buffer.memory" => self.buffer_memory = parse_usize("buffer.memory", value)?,
            "max.block.ms" => self.max_block_ms = parse_u64("max.block.ms", value)?,
            "delivery.timeout.ms" => {
                self.delivery_timeout_ms = parse_u64("delivery.timeout.ms", value)?;
                self.delivery_timeout_explicit = true;
                self.delivery_timeout_raised = false;
            }
            "request.timeout.ms" => {
                self.request_timeout_ms = parse_u64("request.timeout.ms", value)?;
            }
            "retries" => {
                // Java's `int`: any value above i32::MAX is out of range.
                let v: u32 = parse("retries", value)?;
                if v > i32::MAX as u32 {
                    return Err(ConfigError::InvalidValue { key: "retries" });
                }
                self.retries = if v == i32::MAX as u32 { u32::MAX } else { v };
            }
            "retry.backoff.ms" => self.retry_backoff_ms = parse_u64("retry.backoff.ms", value)?,
            "retry.backoff.max.ms" => {
                self.retry_backoff_max_ms = parse_u64("retry.backoff.max.ms", value)?;
            }
            "max.in.flight.requests.per.connection" => {
                self.max_in_flight_requests_per_connection =
                    parse_usize("max.in.flight.requests.per.connection", value)?;
            }
            "enable.idempotence" => {
                self.enable_idempotence = parse_bool("enable.idempotence", value)?;
                self.idempotence_explicit = true;
            }
            "transactional.id" => {
                if !cfg!(feature = "transactions") && !value.trim().is_empty() {
                    return Err(ConfigError::Unsupported {
                        key: "transactional.id",
                    });
                }
                let mut id = HString::new();
                id.push_str(value.trim())
                    .map_err(|_| ConfigError::InvalidValue {
                        key: "transactional.id",
                    })?;
                self.transactional_id = id;
            }
            "transaction.timeout.ms" => {
                let v: u64 = parse("transaction.timeout.ms", value)?;
                self.transaction_timeout_ms = i32::try_from(v)
                    .ok()
                    .and_then(|v| u32::try_from(v).ok())
                    .filter(|&v| v > 0)
                    .ok_or(ConfigError::InvalidValue {
                        key: "transaction.timeout.ms",
                    })?;
            }
            "compression.type" => {
                let v = value.trim();
                let codec = [
                    CompressionType::None,
                    CompressionType::Gzip,
                    CompressionType::Snappy,
                    CompressionType::Lz4,
                    CompressionType::Zstd,
                ]
                .into_iter()
                .find(|c| v.eq_ignore_ascii_case(c.name()))
                .ok_or(ConfigError::InvalidValue {
                    key: "compression.type",
                })?;
                if codec != CompressionType::None && !cfg!(feature = "compression") {
                    return Err(ConfigError::Unsupported {
                        key: "compression.type",
                    });
                }
                self.compression_type = codec;
            }
            "compression.gzip.level" => {
                self.compression_gzip_level = parse("compression.gzip.level", value)?;
            }
            "compression.lz4.level" => {
                self.compression_lz4_level = parse("compression.lz4.level", value)?;
            }
            "compression.zstd.level" => {
                self.compression_zstd_level = parse("compression.zstd.level", value)?;
            }
            "metadata.max.idle.ms" => {
                self.metadata_max_idle_ms = parse_u64("metadata.max.idle.ms", value)?;
            }
            "metadata.max.age.ms" => {
                self.metadata_max_age_ms = parse_u64("metadata.max.age.ms", value)?;
            }
            "reconnect.backoff.ms" => {
                self.reconnect_backoff_ms = parse_u64("reconnect.backoff.ms", value)?;
                // Java's `postProcessReconnectBackoffConfigs`: the base set without the
                // maximum disables the exponential reconnect backoff.
                if !self.reconnect_backoff_max_explicit {
                    self.reconnect_backoff_max_ms = self.reconnect_backoff_ms;
                }
            }
            "reconnect.backoff.max.ms" => {
                self.reconnect_backoff_max_ms = parse_u64("reconnect.backoff.max.ms", value)?;
                self.reconnect_backoff_max_explicit = true;
            }
            "socket.connection.setup.timeout.ms" => {
                self.socket_connection_setup_timeout_ms =
                    parse_u64("socket.connection.setup.timeout.ms", value)?;
            }
            "socket.connection.setup.timeout.max.ms" => {
                self.socket_connection_setup_timeout_max_ms =
                    parse_u64("socket.connection.setup.timeout.max.ms", value)?;
            }
            "connections.max.idle.ms" => {
                let ms: i64 = parse("connections.max.idle.ms", value)?;
                self.connections_max_idle_ms = u64::try_from(ms).ok();
            }
            "metadata.recovery.strategy" => {
                self.rebootstrap = match value.trim() {
                    v if v.eq_ignore_ascii_case("rebootstrap") => true,
                    v if v.eq_ignore_ascii_case("none") => false,
                    _ => {
                        return Err(ConfigError::InvalidValue {
                            key: "metadata.recovery.strategy",
                        });
                    }
                };
            }
            "max.request.size" => {
                self.max_request_size = parse_usize("max.request.size", value)?;
            }
            "partitioner.ignore.keys" => {
                self.partitioner_ignore_keys = parse_bool("partitioner.ignore.keys", value)?;
            }
            "partitioner.adaptive.partitioning.enable" => {
                self.partitioner_adaptive =
                    parse_bool("partitioner.adaptive.partitioning.enable", value)?;
            }
            "partitioner.availability.timeout.ms" => {
                self.partitioner_availability_timeout_ms =
                    parse_u64("partitioner.availability.timeout.ms", value)?;
            }
            "client.dns.lookup" => self.client_dns_lookup = value.parse()?,
            "max.response.size" => {
                self.max_response_size = parse_usize("max.response.size", value)?;
            }
            "security.protocol" => {
                let protocol: SecurityProtocol = value.parse()?;
                if protocol.uses_sasl() && !cfg!(feature = "sasl") {
                    return Err(ConfigError::Unsupported {
                        key: "security.protocol",
                    });
                }
                self.security_protocol = protocol;
            }
            #[cfg(feature = "sasl")]
            _ if self.sasl.set(key, value)? => {}
            _ => return Err(ConfigError::UnknownKey),
        }
        Ok(())
    }

    /// Whether `enable.idempotence` was set explicitly (through [`set`](Self::set) or
    /// [`set_enable_idempotence`](Self::set_enable_idempotence)).
    pub const fn idempotence_explicit(&self) -> bool {
        self.idempotence_explicit
    }

    /// Sets `enable.idempotence` explicitly: conflicting settings then fail
    /// [`validate`](Self::validate) instead of turning idempotence off.
    pub fn set_enable_idempotence(&mut self, enable: bool) {
        self.enable_idempotence = enable;
        self.idempotence_explicit = true;
    }

    fn idempotence_conflict(&self) -> Option<&'static str> {
        if self.acks != Acks::All {
            Some("must set acks to all in order to use the idempotent producer")
        } else if self.retries == 0 {
            Some("must set retries to non-zero when using the idempotent producer")
        } else if self.max_in_flight_requests_per_connection > 5 {
            Some(
                "must set max.in.flight.requests.per.connection to at most 5 to use the \
                 idempotent producer",
            )
        } else {
            None
        }
    }

    /// The pool's slot size: `batch.size`, or [`DEFAULT_BATCH_SIZE`] for `batch.size=0`;
    /// times [`COMPRESSED_SLOT_FACTOR`] when batches are compressed, since a slot holds a
    /// batch's records uncompressed until it is closed while the batch is full only when
    /// its estimated compressed size reaches `batch.size` (as in Java).
    pub const fn slot_size(&self) -> usize {
        let size = if self.batch_size == 0 {
            DEFAULT_BATCH_SIZE
        } else {
            self.batch_size
        };
        if self.compresses() {
            size.saturating_mul(COMPRESSED_SLOT_FACTOR)
        } else {
            size
        }
    }

    /// Whether batches are compressed (`compression.type` is not `none`, feature
    /// `compression`).
    pub const fn compresses(&self) -> bool {
        cfg!(feature = "compression") && !matches!(self.compression_type, CompressionType::None)
    }

    /// The level of the configured codec, from its Java property (`compression.gzip.level`,
    /// `compression.lz4.level`, `compression.zstd.level`); 0 for snappy and none.
    pub const fn compression_level(&self) -> i32 {
        match self.compression_type {
            CompressionType::Gzip => self.compression_gzip_level,
            CompressionType::Lz4 => self.compression_lz4_level,
            CompressionType::Zstd => self.compression_zstd_level,
            _ => 0,
        }
    }

    /// Whether records are batched: `batch.size` is not 0. With `batch.size=0` every batch
    /// holds one record (Java's `MemoryRecordsBuilder` always takes a first record, then
    /// is full at a write limit of 0).
    pub const fn batching(&self) -> bool {
        self.batch_size != 0
    }

    /// `linger.ms + request.timeout.ms`, capped at Java's `Integer.MAX_VALUE` as Java's
    /// `configureDeliveryTimeout` computes it.
    fn linger_and_request_timeout_ms(&self) -> u64 {
        self.linger_ms
            .saturating_add(self.request_timeout_ms)
            .min(i32::MAX as u64)
    }

    /// Whether `delivery.timeout.ms` counts as set by the user: through [`set`](Self::set),
    /// or the field holds something other than the default (and not a raised default).
    fn delivery_timeout_is_explicit(&self) -> bool {
        self.delivery_timeout_explicit
            || (!self.delivery_timeout_raised
                && self.delivery_timeout_ms != DEFAULT_DELIVERY_TIMEOUT_MS)
    }

    /// Java's `KafkaProducer.configureDeliveryTimeout`: a `delivery.timeout.ms` left at its
    /// default and smaller than `linger.ms + request.timeout.ms` is raised to that sum.
    /// Returns the new value when it raised it; Java then logs a warning ("delivery.timeout.ms
    /// should be equal to or larger than linger.ms + request.timeout.ms. Setting it to
    /// {}."): the core has no logger, so a transport logs it (see
    /// [`delivery_timeout_raised`](Self::delivery_timeout_raised)).
    /// [`Producer::new`](crate::Producer::new) calls this.
    pub fn configure_delivery_timeout(&mut self) -> Option<u64> {
        let needed = self.linger_and_request_timeout_ms();
        if self.delivery_timeout_ms >= needed || self.delivery_timeout_is_explicit() {
            return None;
        }
        self.delivery_timeout_ms = needed;
        self.delivery_timeout_raised = true;
        Some(needed)
    }

    /// Whether [`configure_delivery_timeout`](Self::configure_delivery_timeout) raised the
    /// default `delivery.timeout.ms` (to the value now in the field).
    pub const fn delivery_timeout_raised(&self) -> bool {
        self.delivery_timeout_raised
    }

    /// Whether the producer is idempotent: `enable.idempotence`, unless it was left at its
    /// default and conflicting settings (acks other than all, retries=0, more than five
    /// requests in flight) turn it off, as in Java.
    pub fn idempotence_enabled(&self) -> bool {
        self.enable_idempotence && self.idempotence_conflict().is_none()
    }

    /// Whether `transactional.id` is set (always `false` without the `transactions`
    /// feature, which refuses it).
    pub fn is_transactional(&self) -> bool {
        cfg!(feature = "transactions") && !self.transactional_id.is_empty()
    }

    /// Whether a partition is muted while its batch is in flight, one batch per partition
    /// at a time (`max.in.flight.requests.per.connection=1`, Java's
    /// `guaranteeMessageOrder`). With idempotence and more requests in flight, order is
    /// kept by sequence numbers instead, with up to that many batches of a partition in
    /// flight at once.
    pub fn mutes_partitions(&self) -> bool {
        self.max_in_flight_requests_per_connection == 1
    }

    /// Checks the settings together, with Java's rules: idempotence set explicitly requires
    /// acks=all, retries > 0 and at most five requests in flight; an explicitly set
    /// `delivery.timeout.ms` must be at least `linger.ms + request.timeout.ms` (a default
    /// one is raised instead, see
    /// [`configure_delivery_timeout`](Self::configure_delivery_timeout)); sizes and counts
    /// in range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.is_empty() {
            return Err(ConfigError::InvalidBootstrap);
        }
        if self.enable_idempotence
            && self.idempotence_explicit
            && let Some(why) = self.idempotence_conflict()
        {
            return Err(ConfigError::Conflict(why));
        }
        if self.is_transactional() {
            // Java: a transactional producer is idempotent, whatever else is set.
            if !self.enable_idempotence {
                return Err(ConfigError::Conflict(
                    "Cannot set a transactional.id without also enabling idempotence.",
                ));
            }
            if let Some(why) = self.idempotence_conflict() {
                return Err(ConfigError::Conflict(why));
            }
        }
        if self.delivery_timeout_is_explicit()
            && self.delivery_timeout_ms < self.linger_and_request_timeout_ms()
        {
            return Err(ConfigError::Conflict(
                "delivery.timeout.ms should be equal to or larger than linger.ms + \
                 request.timeout.ms",
            ));
        }
        if self.max_in_flight_requests_per_connection == 0
            || self.max_in_flight_requests_per_connection > MAX_IN_FLIGHT_CAPACITY
        {
            return Err(ConfigError::InvalidValue {
                key: "max.in.flight.requests.per.connection",
            });
        }
        // The batch header alone is 61 bytes, so a smaller slot could hold nothing; 0 is
        // Java's "no batching" (see `batch_size`).
        if self.batch_size != 0 && self.batch_size < crate::record::RECORD_BATCH_OVERHEAD + 8 {
            return Err(ConfigError::InvalidValue { key: "batch.size" });
        }
        if self.max_request_size < crate::record::RECORD_BATCH_OVERHEAD + 8
            || self.max_request_size > i32::MAX as usize
        {
            return Err(ConfigError::InvalidValue {
                key: "max.request.size",
            });
        }
        if self.max_response_size < 64 || self.max_response_size > i32::MAX as usize {
            return Err(ConfigError::InvalidValue {
                key: "max.response.size",
            });
        }
        // Java's ConfigDef: atLeast(5000).
        if self.metadata_max_idle_ms < 5_000 {
            return Err(ConfigError::InvalidValue {
                key: "metadata.max.idle.ms",
            });
        }
        if self.request_timeout_ms == 0 || self.request_timeout_ms > i32::MAX as u64 {
            return Err(ConfigError::InvalidValue {
                key: "request.timeout.ms",
            });
        }
        if self.compression_type != CompressionType::None && !cfg!(feature = "compression") {
            return Err(ConfigError::Unsupported {
                key: "compression.type",
            });
        }
        // Java's ranges (GzipCompression, Lz4Compression, ZstdCompression).
        let gzip = self.compression_gzip_level;
        if gzip != DEFAULT_GZIP_LEVEL && !(1..=9).contains(&gzip) {
            return Err(ConfigError::InvalidValue {
                key: "compression.gzip.level",
            });
        }
        if !(1..=17).contains(&self.compression_lz4_level) {
            return Err(ConfigError::InvalidValue {
                key: "compression.lz4.level",
            });
        }
        if !(-131_072..=22).contains(&self.compression_zstd_level) {
            return Err(ConfigError::InvalidValue {
                key: "compression.zstd.level",
            });
        }
        #[cfg(feature = "sasl")]
        if self.security_protocol.uses_sasl() {
            match self.sasl.mechanism {
                // Java's default, GSSAPI (Kerberos), is not offered.
                None => {
                    return Err(ConfigError::Unsupported {
                        key: "sasl.mechanism",
                    });
                }
                Some(crate::sasl::Mechanism::OAuthBearer) => {}
                Some(_) if self.sasl.username.is_empty() => {
                    return Err(ConfigError::InvalidValue {
                        key: "sasl.jaas.config",
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
