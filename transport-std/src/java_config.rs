//! Every property of the Java producer's configuration (Kafka 4.4's
//! `ProducerConfig.configDef()`), and what this producer does with it: [`Support`].
//!
//! A Java user's properties file works unchanged: each property is taken with Java's
//! meaning, or (where it only makes sense in a JVM: class names, JVM security providers)
//! accepted and ignored with one warning, or refused with the reason when set to anything
//! but Java's default. The table in `docs/producer-config.md` is written from
//! [`JAVA_PRODUCER_PROPERTIES`], and the test ground checks both against Java itself
//! (`tests/tests/java_config.rs`).

/// What this producer does with a property of the Java producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Taken with Java's meaning (defaults and validation rules included).
    Supported,
    /// Accepted and ignored, with one warning when the producer is built: why.
    Ignored(&'static str),
    /// Refused when set to anything but Java's default value: why.
    Refused(&'static str),
}

/// A property of the Java producer and what this producer does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JavaProperty {
    /// The property's name (`linger.ms`).
    pub name: &'static str,
    /// Java's default value, in Java's string form (`None`: null, or no default).
    pub java_default: Option<&'static str>,
    /// What this producer does with it.
    pub support: Support,
    /// A valid value other than Java's default (the test ground sets it, and checks that
    /// Java takes it too).
    pub example: &'static str,
}

use Support::{Ignored, Refused, Supported};

const fn p(
    name: &'static str,
    java_default: Option<&'static str>,
    support: Support,
    example: &'static str,
) -> JavaProperty {
    JavaProperty {
        name,
        java_default,
        support,
        example,
    }
}

const JVM_CLASS: &str = "a JVM class name; the Rust equivalent is a trait given to ProducerBuilder \
                         (Serializer, Partitioner, ProducerInterceptor, metrics_callback)";
const KERBEROS: &str =
    "used only with sasl.mechanism=GSSAPI (Kerberos), which this producer does not offer";
const TOKEN_LOGIN: &str = "configures Java's OAUTHBEARER login and token refresh; here the token \
                           comes from the application (sasl.oauthbearer.token, \
                           Producer::set_oauth_token)";
const JVM_TLS: &str = "a JVM security provider or algorithm name; TLS here is rustls with its \
                       own providers";

/// Every property of Kafka 4.4's `ProducerConfig.configDef()`, sorted by name.
pub const JAVA_PRODUCER_PROPERTIES: &[JavaProperty] = &[
    p("acks", Some("all"), Supported, "1"),
    p("batch.size", Some("16384"), Supported, "65536"),
    p(
        "bootstrap.resolve.timeout.ms",
        Some("0"),
        Refused(
            "asynchronous bootstrap resolution (an evolving Java feature) is not built: \
             bootstrap.servers resolve when the producer is built, as with Java's default 0",
        ),
        "30000",
    ),
    p(
        "bootstrap.servers",
        None,
        Supported,
        "localhost:9092,localhost:9093",
    ),
    p("buffer.memory", Some("33554432"), Supported, "67108864"),
    p(
        "buffer.memory.allocation.strategy",
        Some("full"),
        Refused(
            "the buffer pool is one fixed allocation of buffer.memory in batch.size slots: \
             Java's `full`",
        ),
        "incremental",
    ),
    p(
        "client.dns.lookup",
        Some("use_all_dns_ips"),
        Supported,
        "resolve_canonical_bootstrap_servers_only",
    ),
    p("client.id", Some(""), Supported, "my-service"),
    p(
        "client.rack",
        Some(""),
        Ignored("used only by rack-aware partitioning (partitioner.rack.aware), which is refused"),
        "rack-a",
    ),
    p("compression.gzip.level", Some("-1"), Supported, "6"),
    p("compression.lz4.level", Some("9"), Supported, "3"),
    p("compression.type", Some("none"), Supported, "zstd"),
    p("compression.zstd.level", Some("3"), Supported, "9"),
    p(
        "config.providers",
        Some(""),
        Ignored("Java's ConfigProvider classes; resolve values before handing them over"),
        "file",
    ),
    p(
        "connections.max.idle.ms",
        Some("540000"),
        Supported,
        "60000",
    ),
    p("delivery.timeout.ms", Some("120000"), Supported, "60000"),
    p("enable.idempotence", Some("true"), Supported, "false"),
    p(
        "enable.metrics.push",
        Some("true"),
        Ignored(
            "client telemetry push (KIP-714) is not built; the producer's metrics are \
             Producer::metrics and the metrics callback",
        ),
        "false",
    ),
    p(
        "interceptor.classes",
        Some(""),
        Ignored(JVM_CLASS),
        "com.example.Interceptor",
    ),
    p(
        "key.serializer",
        None,
        Ignored(JVM_CLASS),
        "org.apache.kafka.common.serialization.StringSerializer",
    ),
    p("linger.ms", Some("5"), Supported, "20"),
    p("max.block.ms", Some("60000"), Supported, "10000"),
    p(
        "max.in.flight.requests.per.connection",
        Some("5"),
        Supported,
        "3",
    ),
    p("max.request.size", Some("1048576"), Supported, "2097152"),
    p(
        "metadata.cluster.check.enable",
        Some("true"),
        Ignored(
            "the misrouted-connection check of Kafka 4.4 brokers is not sent; connections \
             are checked by the node ids of metadata responses",
        ),
        "false",
    ),
    p("metadata.max.age.ms", Some("300000"), Supported, "60000"),
    p("metadata.max.idle.ms", Some("300000"), Supported, "60000"),
    p(
        "metadata.recovery.rebootstrap.trigger.ms",
        Some("300000"),
        Ignored(
            "with metadata.recovery.strategy=rebootstrap the bootstrap servers are tried \
             beside the known brokers whenever metadata is needed and no connection is \
             ready, so recovery starts without waiting for this interval",
        ),
        "60000",
    ),
    p(
        "metadata.recovery.strategy",
        Some("rebootstrap"),
        Supported,
        "none",
    ),
    p(
        "metric.reporters",
        Some("org.apache.kafka.common.metrics.JmxReporter"),
        Ignored(JVM_CLASS),
        "com.example.Reporter",
    ),
    p("metrics.num.samples", Some("2"), Supported, "3"),
    p("metrics.recording.level", Some("INFO"), Supported, "DEBUG"),
    p(
        "metrics.sample.window.ms",
        Some("30000"),
        Supported,
        "10000",
    ),
    p(
        "partitioner.adaptive.partitioning.enable",
        Some("true"),
        Supported,
        "false",
    ),
    p(
        "partitioner.availability.timeout.ms",
        Some("0"),
        Supported,
        "1000",
    ),
    p(
        "partitioner.class",
        None,
        Ignored(JVM_CLASS),
        "org.apache.kafka.clients.producer.RoundRobinPartitioner",
    ),
    p("partitioner.ignore.keys", Some("false"), Supported, "true"),
    p(
        "partitioner.rack.aware",
        Some("false"),
        Refused("rack-aware partitioning is not built"),
        "true",
    ),
    p("receive.buffer.bytes", Some("32768"), Supported, "65536"),
    p("reconnect.backoff.max.ms", Some("1000"), Supported, "5000"),
    p("reconnect.backoff.ms", Some("50"), Supported, "100"),
    p("request.timeout.ms", Some("30000"), Supported, "20000"),
    p("retries", Some("2147483647"), Supported, "10"),
    p("retry.backoff.max.ms", Some("1000"), Supported, "2000"),
    p("retry.backoff.ms", Some("100"), Supported, "200"),
    p(
        "sasl.client.callback.handler.class",
        None,
        Ignored(JVM_CLASS),
        "org.apache.kafka.common.security.authenticator.SaslClientCallbackHandler",
    ),
    p(
        "sasl.jaas.config",
        None,
        Supported,
        "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" \
         password=\"p\";",
    ),
    p(
        "sasl.kerberos.kinit.cmd",
        Some("/usr/bin/kinit"),
        Ignored(KERBEROS),
        "/usr/local/bin/kinit",
    ),
    p(
        "sasl.kerberos.min.time.before.relogin",
        Some("60000"),
        Ignored(KERBEROS),
        "30000",
    ),
    p(
        "sasl.kerberos.service.name",
        None,
        Ignored(KERBEROS),
        "kafka",
    ),
    p(
        "sasl.kerberos.ticket.renew.jitter",
        Some("0.05"),
        Ignored(KERBEROS),
        "0.1",
    ),
    p(
        "sasl.kerberos.ticket.renew.window.factor",
        Some("0.8"),
        Ignored(KERBEROS),
        "0.9",
    ),
    p(
        "sasl.login.callback.handler.class",
        None,
        Ignored(JVM_CLASS),
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
    ),
    p(
        "sasl.login.class",
        None,
        Ignored(JVM_CLASS),
        "org.apache.kafka.common.security.authenticator.DefaultLogin",
    ),
    p(
        "sasl.login.connect.timeout.ms",
        None,
        Ignored(TOKEN_LOGIN),
        "5000",
    ),
    p(
        "sasl.login.read.timeout.ms",
        None,
        Ignored(TOKEN_LOGIN),
        "5000",
    ),
    p(
        "sasl.login.refresh.buffer.seconds",
        Some("300"),
        Ignored(TOKEN_LOGIN),
        "120",
    ),
    p(
        "sasl.login.refresh.min.period.seconds",
        Some("60"),
        Ignored(TOKEN_LOGIN),
        "30",
    ),
    p(
        "sasl.login.refresh.window.factor",
        Some("0.8"),
        Ignored(TOKEN_LOGIN),
        "0.9",
    ),
    p(
        "sasl.login.refresh.window.jitter",
        Some("0.05"),
        Ignored(TOKEN_LOGIN),
        "0.1",
    ),
    p(
        "sasl.login.retry.backoff.max.ms",
        Some("10000"),
        Ignored(TOKEN_LOGIN),
        "5000",
    ),
    p(
        "sasl.login.retry.backoff.ms",
        Some("100"),
        Ignored(TOKEN_LOGIN),
        "200",
    ),
    p("sasl.mechanism", Some("GSSAPI"), Supported, "PLAIN"),
    p(
        "sasl.oauthbearer.allow.unverified.audience",
        Some("false"),
        Ignored(TOKEN_LOGIN),
        "true",
    ),
    p(
        "sasl.oauthbearer.allow.unverified.issuer",
        Some("false"),
        Ignored(TOKEN_LOGIN),
        "true",
    ),
    p(
        "sasl.oauthbearer.assertion.algorithm",
        Some("RS256"),
        Ignored(TOKEN_LOGIN),
        "ES256",
    ),
    p(
        "sasl.oauthbearer.assertion.claim.aud",
        None,
        Ignored(TOKEN_LOGIN),
        "kafka",
    ),
    p(
        "sasl.oauthbearer.assertion.claim.exp.seconds",
        Some("300"),
        Ignored(TOKEN_LOGIN),
        "600",
    ),
    p(
        "sasl.oauthbearer.assertion.claim.iss",
        None,
        Ignored(TOKEN_LOGIN),
        "me",
    ),
    p(
        "sasl.oauthbearer.assertion.claim.jti.include",
        Some("false"),
        Ignored(TOKEN_LOGIN),
        "true",
    ),
    p(
        "sasl.oauthbearer.assertion.claim.nbf.seconds",
        Some("60"),
        Ignored(TOKEN_LOGIN),
        "30",
    ),
    p(
        "sasl.oauthbearer.assertion.claim.sub",
        None,
        Ignored(TOKEN_LOGIN),
        "me",
    ),
    p(
        "sasl.oauthbearer.assertion.file",
        None,
        Ignored(TOKEN_LOGIN),
        "/etc/assertion",
    ),
    p(
        "sasl.oauthbearer.assertion.private.key.file",
        None,
        Ignored(TOKEN_LOGIN),
        "/etc/key.pem",
    ),
    p(
        "sasl.oauthbearer.assertion.private.key.passphrase",
        None,
        Ignored(TOKEN_LOGIN),
        "secret",
    ),
    p(
        "sasl.oauthbearer.assertion.template.file",
        None,
        Ignored(TOKEN_LOGIN),
        "/etc/template.json",
    ),
    p(
        "sasl.oauthbearer.client.credentials.client.id",
        None,
        Ignored(TOKEN_LOGIN),
        "client",
    ),
    p(
        "sasl.oauthbearer.client.credentials.client.secret",
        None,
        Ignored(TOKEN_LOGIN),
        "secret",
    ),
    p(
        "sasl.oauthbearer.clock.skew.seconds",
        Some("30"),
        Ignored(TOKEN_LOGIN),
        "60",
    ),
    p(
        "sasl.oauthbearer.expected.audience",
        Some(""),
        Ignored(TOKEN_LOGIN),
        "kafka",
    ),
    p(
        "sasl.oauthbearer.expected.issuer",
        None,
        Ignored(TOKEN_LOGIN),
        "issuer",
    ),
    p(
        "sasl.oauthbearer.header.urlencode",
        Some("false"),
        Ignored(TOKEN_LOGIN),
        "true",
    ),
    p(
        "sasl.oauthbearer.jwks.endpoint.refresh.ms",
        Some("3600000"),
        Ignored(TOKEN_LOGIN),
        "60000",
    ),
    p(
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
        Some("10000"),
        Ignored(TOKEN_LOGIN),
        "5000",
    ),
    p(
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
        Some("100"),
        Ignored(TOKEN_LOGIN),
        "200",
    ),
    p(
        "sasl.oauthbearer.jwks.endpoint.url",
        None,
        Ignored(TOKEN_LOGIN),
        "https://idp/jwks",
    ),
    p(
        "sasl.oauthbearer.jwt.retriever.class",
        Some("org.apache.kafka.common.security.oauthbearer.DefaultJwtRetriever"),
        Ignored(JVM_CLASS),
        "org.apache.kafka.common.security.oauthbearer.ClientCredentialsJwtRetriever",
    ),
    p(
        "sasl.oauthbearer.jwt.validator.class",
        Some("org.apache.kafka.common.security.oauthbearer.DefaultJwtValidator"),
        Ignored(JVM_CLASS),
        "org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator",
    ),
    p(
        "sasl.oauthbearer.scope",
        None,
        Ignored(TOKEN_LOGIN),
        "produce",
    ),
    p(
        "sasl.oauthbearer.scope.claim.name",
        Some("scope"),
        Ignored(TOKEN_LOGIN),
        "scp",
    ),
    p(
        "sasl.oauthbearer.sub.claim.name",
        Some("sub"),
        Ignored(TOKEN_LOGIN),
        "subject",
    ),
    p(
        "sasl.oauthbearer.token.endpoint.url",
        None,
        Refused(
            "fetching tokens over HTTP is not built: the application gives the token \
             (sasl.oauthbearer.token, Producer::set_oauth_token)",
        ),
        "https://idp/token",
    ),
    p("security.protocol", Some("PLAINTEXT"), Supported, "SSL"),
    p(
        "security.providers",
        None,
        Ignored(JVM_TLS),
        "com.example.Provider",
    ),
    p("send.buffer.bytes", Some("131072"), Supported, "262144"),
    p(
        "socket.connection.setup.timeout.max.ms",
        Some("30000"),
        Supported,
        "60000",
    ),
    p(
        "socket.connection.setup.timeout.ms",
        Some("10000"),
        Supported,
        "5000",
    ),
    p(
        "ssl.cipher.suites",
        Some(""),
        Refused(
            "choosing cipher suites is not built: rustls offers only its own AEAD suites \
             of TLS 1.2 and 1.3",
        ),
        "TLS_AES_128_GCM_SHA256",
    ),
    p(
        "ssl.enabled.protocols",
        Some("TLSv1.2,TLSv1.3"),
        Supported,
        "TLSv1.3",
    ),
    p(
        "ssl.endpoint.identification.algorithm",
        Some("https"),
        Supported,
        "",
    ),
    p(
        "ssl.engine.factory.class",
        None,
        Ignored(JVM_CLASS),
        "org.apache.kafka.common.security.ssl.DefaultSslEngineFactory",
    ),
    p("ssl.key.password", None, Supported, "secret"),
    p(
        "ssl.keymanager.algorithm",
        Some("SunX509"),
        Ignored(JVM_TLS),
        "PKIX",
    ),
    p(
        "ssl.keystore.certificate.chain",
        None,
        Supported,
        "-----BEGIN CERTIFICATE-----",
    ),
    p(
        "ssl.keystore.key",
        None,
        Supported,
        "-----BEGIN PRIVATE KEY-----",
    ),
    p(
        "ssl.keystore.location",
        None,
        Supported,
        "/etc/kafka/client.pem",
    ),
    p("ssl.keystore.password", None, Supported, "secret"),
    p("ssl.keystore.type", Some("JKS"), Supported, "PEM"),
    p("ssl.protocol", Some("TLSv1.3"), Supported, "TLSv1.2"),
    p("ssl.provider", None, Ignored(JVM_TLS), "SunJSSE"),
    p(
        "ssl.secure.random.implementation",
        None,
        Ignored(JVM_TLS),
        "SHA1PRNG",
    ),
    p(
        "ssl.trustmanager.algorithm",
        Some("PKIX"),
        Ignored(JVM_TLS),
        "SunX509",
    ),
    p(
        "ssl.truststore.certificates",
        None,
        Supported,
        "-----BEGIN CERTIFICATE-----",
    ),
    p(
        "ssl.truststore.location",
        None,
        Supported,
        "/etc/kafka/ca.pem",
    ),
    p("ssl.truststore.password", None, Supported, "secret"),
    p("ssl.truststore.type", Some("JKS"), Supported, "PEM"),
    p("transaction.timeout.ms", Some("60000"), Supported, "30000"),
    p(
        "transaction.two.phase.commit.enable",
        Some("false"),
        Refused("two-phase commit (KIP-939) is not built"),
        "true",
    ),
    p("transactional.id", None, Supported, "my-transactions"),
    p(
        "value.serializer",
        None,
        Ignored(JVM_CLASS),
        "org.apache.kafka.common.serialization.StringSerializer",
    ),
];

/// The Java property `name`, if Java's producer has it.
pub fn java_property(name: &str) -> Option<&'static JavaProperty> {
    JAVA_PRODUCER_PROPERTIES
        .binary_search_by(|p| p.name.cmp(name))
        .ok()
        .and_then(|i| JAVA_PRODUCER_PROPERTIES.get(i))
}

/// What a supported property's values are here, where that is narrower than Java's or
/// worth knowing (the table's notes).
const NOTES: &[(&str, &str)] = &[
    (
        "compression.type",
        "the codecs of the crate features built (all by default)",
    ),
    (
        "connections.max.idle.ms",
        "a connection with requests in flight is never idle",
    ),
    (
        "metadata.recovery.strategy",
        "`none`: after the first metadata only its brokers are asked",
    ),
    (
        "partitioner.availability.timeout.ms",
        "with adaptive partitioning, as in Java; the wait is weighed when the sticky \
         partition switches",
    ),
    ("receive.buffer.bytes", "unset: the OS's auto-tuned size"),
    (
        "sasl.mechanism",
        "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER; GSSAPI is refused",
    ),
    ("send.buffer.bytes", "unset: the OS's auto-tuned size"),
    (
        "socket.connection.setup.timeout.max.ms",
        "without Java's random 20% spread",
    ),
    ("ssl.enabled.protocols", "TLSv1.2 and TLSv1.3 (rustls)"),
    (
        "ssl.keystore.type",
        "PEM and PKCS12; a JKS store is refused with the command that converts it",
    ),
    (
        "ssl.truststore.type",
        "PEM and PKCS12; a JKS store is refused with the command that converts it",
    ),
];

/// Java's default of property `name`, if it has a non-null one.
pub(crate) fn java_default(name: &str) -> Option<&'static str> {
    java_property(name)?.java_default
}

/// The table as Markdown (`docs/producer-config.md`): each property, Java's default, and
/// what this producer does with it.
pub fn markdown() -> String {
    let count = |f: fn(&Support) -> bool| {
        JAVA_PRODUCER_PROPERTIES
            .iter()
            .filter(|p| f(&p.support))
            .count()
    };
    let mut out = String::from(
        "# The Java producer's properties in kafka-edge-std\n\n\
         Every property of Kafka 4.4's `ProducerConfig` (Java's `configDef()`), and what \
         `kafka_edge_std::Properties` and `ProducerBuilder::set` do with it. Written from \
         `transport-std/src/java_config.rs` by `cargo test -p kafka-edge-std --test \
         java_config` (with `KAFKA_EDGE_WRITE_DOCS=1`), which also checks every row \
         against Java itself.\n\n\
         - **supported**: taken with Java's meaning, default and validation;\n\
         - **ignored**: accepted, with one warning when the producer is built;\n\
         - **refused**: a build error naming the property and the reason, unless the \
         value is Java's default.\n\n",
    );
    out.push_str(&format!(
        "{} properties: {} supported, {} ignored, {} refused.\n\n\
         Defaults that differ on purpose: `send.buffer.bytes` and `receive.buffer.bytes` \
         left unset keep the operating system's auto-tuned socket buffers (Java sets 131072 \
         and 32768, which turns Linux's auto-tuning off); set them to get Java's sizes. \
         `socket.connection.setup.timeout.ms` doubles per failure without Java's random \
         20% spread.\n\n\
         Properties of this producer that Java's has not: `batch.max.size` (KIP-782, \
         default 262144): an uncompressed batch full at `batch.size` that cannot be sent \
         yet (its partition has batches in requests) keeps taking records, growing in the \
         pool up to this size, so that one hot partition is not held to \
         `max.in.flight.requests.per.connection` x `batch.size` per round trip; `0` keeps \
         Java's batches. `sasl.oauthbearer.token`: a token the application sets, for \
         SASL/OAUTHBEARER without a login callback.\n\n\
         | property | Java's default | here |\n| --- | --- | --- |\n",
        JAVA_PRODUCER_PROPERTIES.len(),
        count(|s| *s == Supported),
        count(|s| matches!(s, Ignored(_))),
        count(|s| matches!(s, Refused(_))),
    ));
    for p in JAVA_PRODUCER_PROPERTIES {
        let default = match p.java_default {
            None => "(none)".to_string(),
            Some("") => "(empty)".to_string(),
            Some(d) if p.name.ends_with("password") || d.len() > 40 => {
                format!("`{}...`", d.get(..37).unwrap_or(d))
            }
            Some(d) => format!("`{d}`"),
        };
        let here = match p.support {
            Supported => match NOTES.iter().find(|(n, _)| *n == p.name) {
                Some((_, note)) => format!("supported: {note}"),
                None => "supported".to_string(),
            },
            Ignored(why) => format!("ignored: {why}"),
            Refused(why) => format!("refused: {why}"),
        };
        out.push_str(&format!("| `{}` | {default} | {here} |\n", p.name));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_without_duplicates() {
        for w in JAVA_PRODUCER_PROPERTIES.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        assert_eq!(
            java_property("linger.ms").map(|p| p.support),
            Some(Supported)
        );
        assert_eq!(java_property("linger"), None);
    }

    #[test]
    fn no_example_is_the_default() {
        for p in JAVA_PRODUCER_PROPERTIES {
            assert_ne!(p.java_default, Some(p.example), "{}", p.name);
        }
    }
}
