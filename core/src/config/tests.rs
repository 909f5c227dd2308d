//! Unit tests of the `config` module.

use super::*;

#[test]
fn the_connection_settings_of_javas_client() {
    let mut c = ProducerConfig::new("h:1").unwrap();
    assert_eq!(c.connections_max_idle_ms, Some(540_000));
    assert_eq!(c.socket_connection_setup_timeout_max_ms, 30_000);
    assert!(c.rebootstrap);
    c.set("connections.max.idle.ms", "-1").unwrap();
    assert_eq!(c.connections_max_idle_ms, None);
    c.set("metadata.recovery.strategy", "None").unwrap();
    assert!(!c.rebootstrap);
    assert!(c.set("metadata.recovery.strategy", "sometimes").is_err());
    // reconnect.backoff.ms alone makes the reconnect backoff constant, as in Java...
    c.set("reconnect.backoff.ms", "200").unwrap();
    assert_eq!(c.reconnect_backoff_max_ms, 200);
    // ...and an explicit maximum wins, whichever comes first.
    c.set("reconnect.backoff.max.ms", "5000").unwrap();
    c.set("reconnect.backoff.ms", "300").unwrap();
    assert_eq!(c.reconnect_backoff_max_ms, 5000);
}

#[test]
fn defaults_are_javas() {
    let c = ProducerConfig::new("localhost:9092").unwrap();
    assert_eq!(c.bootstrap_servers.len(), 1);
    assert_eq!(
        c.bootstrap_servers.get(0).unwrap().host.as_str(),
        "localhost"
    );
    assert_eq!(c.bootstrap_servers.get(0).unwrap().port, 9092);
    assert_eq!(c.acks, Acks::All);
    assert_eq!(c.linger_ms, 5);
    assert_eq!(c.batch_size, 16_384);
    assert_eq!(c.delivery_timeout_ms, 120_000);
    assert_eq!(c.request_timeout_ms, 30_000);
    assert_eq!(c.retries, u32::MAX);
    assert_eq!(c.max_in_flight_requests_per_connection, 5);
    assert!(c.idempotence_enabled());
    assert!(c.validate().is_ok());
}

#[test]
fn parses_bootstrap_lists() {
    let c = ProducerConfig::new(" a:1 , [::1]:9093,b.example.com:65535 ").unwrap();
    let hosts: std::vec::Vec<_> = c.bootstrap_servers.iter().map(|a| a.host).collect();
    assert_eq!(hosts, ["a", "::1", "b.example.com"]);
    extern crate std;
    assert_eq!(c.bootstrap_servers.get(1).unwrap().port, 9093);
    use std::string::ToString;
    assert_eq!(
        c.bootstrap_servers.get(1).unwrap().to_string(),
        "[::1]:9093"
    );
    assert_eq!((&c.bootstrap_servers).into_iter().count(), 3);
    for bad in ["", "a", "a:", "a:x", ":9092", "a:0", "a:70000", ","] {
        assert!(ProducerConfig::new(bad).is_err(), "{bad:?}");
    }
    let list = |n: usize| {
        (1..=n)
            .map(|i| std::format!("a:{i}"))
            .collect::<std::vec::Vec<_>>()
            .join(",")
    };
    assert!(ProducerConfig::new(&list(MAX_BOOTSTRAP_SERVERS)).is_ok());
    assert_eq!(
        ProducerConfig::new(&list(MAX_BOOTSTRAP_SERVERS + 1)),
        Err(ConfigError::TooManyBootstrapServers)
    );
}

#[test]
fn set_by_property_name() {
    let mut c = ProducerConfig::new("h:1").unwrap();
    c.set("acks", "all").unwrap();
    c.set("acks", "-1").unwrap();
    assert_eq!(c.acks, Acks::All);
    c.set("linger.ms", "7").unwrap();
    c.set("batch.size", "1024").unwrap();
    c.set("retries", "2147483647").unwrap();
    assert_eq!(c.retries, u32::MAX);
    c.set("client.id", "me").unwrap();
    c.set("compression.type", "none").unwrap();
    assert_eq!(c.linger_ms, 7);
    assert_eq!(c.batch_size, 1024);
    assert_eq!(c.client_id.as_str(), "me");
    assert_eq!(c.set("nope", "1"), Err(ConfigError::UnknownKey));
    assert_eq!(
        c.set("linger.ms", "-1"),
        Err(ConfigError::InvalidValue { key: "linger.ms" })
    );
    assert_eq!(
        c.set("compression.type", "zstd"),
        if cfg!(feature = "compression") {
            Ok(())
        } else {
            Err(ConfigError::Unsupported {
                key: "compression.type",
            })
        }
    );
    assert_eq!(
        c.set("compression.type", "brotli"),
        Err(ConfigError::InvalidValue {
            key: "compression.type"
        })
    );
    c.set("compression.type", "none").unwrap();
    assert_eq!(
        c.set("acks", "2"),
        Err(ConfigError::InvalidValue { key: "acks" })
    );
    for key in ProducerConfig::KEYS {
        // Every listed key is known (the value may be wrong for it).
        assert_ne!(
            c.clone().set(key, "x"),
            Err(ConfigError::UnknownKey),
            "{key}"
        );
    }
}

#[test]
fn idempotence_rules_as_java() {
    let mut c = ProducerConfig::new("h:1").unwrap();
    c.set("acks", "1").unwrap();
    // Default idempotence silently off.
    assert!(!c.idempotence_enabled());
    assert!(c.validate().is_ok());
    c.set("enable.idempotence", "true").unwrap();
    assert!(matches!(c.validate(), Err(ConfigError::Conflict(_))));
    c.set("acks", "all").unwrap();
    c.set("max.in.flight.requests.per.connection", "6").unwrap();
    assert!(matches!(c.validate(), Err(ConfigError::Conflict(_))));
    c.set("enable.idempotence", "false").unwrap();
    assert!(c.validate().is_ok());
    assert!(!c.mutes_partitions());
    c.set("max.in.flight.requests.per.connection", "9").unwrap();
    assert!(c.validate().is_err());
    c.set("max.in.flight.requests.per.connection", "1").unwrap();
    assert!(c.mutes_partitions());
}

#[test]
fn delivery_timeout_must_cover_linger_and_request_timeout() {
    let mut c = ProducerConfig::new("h:1").unwrap();
    c.set("delivery.timeout.ms", "30004").unwrap();
    assert!(matches!(c.validate(), Err(ConfigError::Conflict(_))));
    c.set("delivery.timeout.ms", "30005").unwrap();
    assert!(c.validate().is_ok());
    assert_eq!(c.configure_delivery_timeout(), None);
}

// Java's `KafkaProducer.configureDeliveryTimeout`: "override deliveryTimeoutMs default
// value to lingerMs + requestTimeoutMs for backward compatibility".
#[test]
fn default_delivery_timeout_is_raised_to_linger_plus_request_timeout() {
    let mut c = ProducerConfig::new("h:1").unwrap();
    c.set("linger.ms", "100000").unwrap();
    assert!(c.validate().is_ok());
    assert!(!c.delivery_timeout_raised());
    assert_eq!(c.configure_delivery_timeout(), Some(130_000));
    assert_eq!(c.delivery_timeout_ms, 130_000);
    assert!(c.delivery_timeout_raised());
    assert!(c.validate().is_ok());
    // Idempotent: a second call changes nothing.
    assert_eq!(c.configure_delivery_timeout(), None);
    assert!(c.delivery_timeout_raised());

    let mut c = ProducerConfig::new("h:1").unwrap();
    c.set("request.timeout.ms", "120000").unwrap();
    assert!(c.validate().is_ok());
    assert_eq!(c.configure_delivery_timeout(), Some(120_005));

    // Capped at Integer.MAX_VALUE as Java's int arithmetic.
    let mut c = ProducerConfig::new("h:1").unwrap();
    c.set("linger.ms", "2147483647").unwrap();
    assert_eq!(c.configure_delivery_timeout(), Some(i32::MAX as u64));

    // Enough already: left alone.
    let mut c = ProducerConfig::new("h:1").unwrap();
    assert_eq!(c.configure_delivery_timeout(), None);
    assert_eq!(c.delivery_timeout_ms, DEFAULT_DELIVERY_TIMEOUT_MS);
}

// Java throws only "if the user explicitly set an inconsistent value".
#[test]
fn explicit_delivery_timeout_is_not_raised() {
    let mut c = ProducerConfig::new("h:1").unwrap();
    c.set("linger.ms", "100000").unwrap();
    // Set by name, even to the default value: explicit (Java's `originals()`).
    c.set("delivery.timeout.ms", "120000").unwrap();
    assert!(matches!(c.validate(), Err(ConfigError::Conflict(_))));
    assert_eq!(c.configure_delivery_timeout(), None);
    // Set through the field to another value: explicit too.
    let mut c = ProducerConfig::new("h:1").unwrap();
    c.linger_ms = 100_000;
    c.delivery_timeout_ms = 60_000;
    assert!(matches!(c.validate(), Err(ConfigError::Conflict(_))));
    assert_eq!(c.configure_delivery_timeout(), None);
}

// Java: "a batch size of zero will disable batching entirely" (atLeast(0)).
#[test]
fn batch_size_zero_means_no_batching() {
    let mut c = ProducerConfig::new("h:1").unwrap();
    assert!(c.batching());
    assert_eq!(c.slot_size(), DEFAULT_BATCH_SIZE);
    c.set("batch.size", "0").unwrap();
    assert!(c.validate().is_ok());
    assert!(!c.batching());
    assert_eq!(c.slot_size(), DEFAULT_BATCH_SIZE);
    c.set("batch.size", "1024").unwrap();
    assert!(c.batching());
    assert_eq!(c.slot_size(), 1024);
    // Between 0 and a batch header: no record fits a slot.
    c.set("batch.size", "10").unwrap();
    assert_eq!(
        c.validate(),
        Err(ConfigError::InvalidValue { key: "batch.size" })
    );
    assert_eq!(
        c.set("batch.size", "-1"),
        Err(ConfigError::InvalidValue { key: "batch.size" })
    );
}

#[test]
fn transactional_id_needs_the_transactions_feature_and_idempotence() {
    let mut c = ProducerConfig::new("h:9092").unwrap();
    if cfg!(feature = "transactions") {
        c.set("transactional.id", "tx").unwrap();
        c.set("transaction.timeout.ms", "30000").unwrap();
        assert!(c.is_transactional());
        assert_eq!(c.transaction_timeout_ms, 30_000);
        c.set("acks", "1").unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::Conflict(_))));
    } else {
        assert_eq!(
            c.set("transactional.id", "tx"),
            Err(ConfigError::Unsupported {
                key: "transactional.id"
            })
        );
        assert!(!c.is_transactional());
    }
    assert_eq!(
        c.set("transaction.timeout.ms", "0"),
        Err(ConfigError::InvalidValue {
            key: "transaction.timeout.ms"
        })
    );
}

// Java's `client.id` has no length limit; this core's is MAX_CLIENT_ID_LEN.
#[test]
fn client_id_up_to_255_bytes() {
    extern crate std;
    let mut c = ProducerConfig::new("h:1").unwrap();
    let id: std::string::String = core::iter::repeat_n('c', MAX_CLIENT_ID_LEN).collect();
    c.set("client.id", &id).unwrap();
    assert_eq!(c.client_id.len(), 255);
    assert_eq!(
        c.set("client.id", &std::format!("{id}x")),
        Err(ConfigError::InvalidValue { key: "client.id" })
    );
    assert_eq!(c.client_id.as_str(), id, "unchanged on error");
}

// Java's ConfigDef: `in("use_all_dns_ips", "resolve_canonical_bootstrap_servers_only")`.
#[test]
fn client_dns_lookup_values() {
    let mut c = ProducerConfig::new("h:1").unwrap();
    assert_eq!(c.client_dns_lookup, ClientDnsLookup::UseAllDnsIps);
    c.set(
        "client.dns.lookup",
        "resolve_canonical_bootstrap_servers_only",
    )
    .unwrap();
    assert_eq!(
        c.client_dns_lookup,
        ClientDnsLookup::ResolveCanonicalBootstrapServersOnly
    );
    assert_eq!(
        c.client_dns_lookup.as_str(),
        "resolve_canonical_bootstrap_servers_only"
    );
    c.set("client.dns.lookup", "use_all_dns_ips").unwrap();
    assert_eq!(c.client_dns_lookup, ClientDnsLookup::UseAllDnsIps);
    // Removed in Kafka 3.0.
    assert_eq!(
        c.set("client.dns.lookup", "default"),
        Err(ConfigError::InvalidValue {
            key: "client.dns.lookup"
        })
    );
}

#[test]
fn errors_name_the_key() {
    extern crate std;
    use std::string::ToString;
    let mut c = ProducerConfig::new("h:1").unwrap();
    let e = c.set("linger.ms", "abc").unwrap_err();
    assert_eq!(e.to_string(), "invalid value for configuration linger.ms");
}
