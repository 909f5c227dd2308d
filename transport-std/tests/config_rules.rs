//! Java's producer configuration rules as a user of kafka-edge-std meets them: error
//! messages that name the property and echo its value, defaults adjusted as Java adjusts
//! them, and bootstrap servers that must resolve (`ClientUtils.parseAndValidateAddresses`).
//! No broker is needed: producers that build point at a closed local port.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use kafka_edge_std::{BuildError, Producer, ProducerBuilder};

/// A closed port on this host: connections fail, which these tests never wait for.
const CLOSED: &str = "127.0.0.1:9";

/// Warnings logged so far (this test binary's logger).
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            WARNINGS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

fn init_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = log::set_logger(&CAPTURE);
        log::set_max_level(log::LevelFilter::Warn);
    });
}

fn warned(needle: &str) -> bool {
    WARNINGS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|w| w.contains(needle))
}

fn builder(bootstrap: &str) -> ProducerBuilder {
    init_log();
    Producer::builder()
        .set("bootstrap.servers", bootstrap)
        .drop_close_timeout(Duration::from_millis(100))
}

fn build_error(b: ProducerBuilder) -> BuildError {
    match b.build() {
        Ok(p) => panic!("built {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn a_value_that_does_not_parse_is_named_and_echoed() {
    let e = build_error(builder(CLOSED).set("linger.ms", "abc"));
    assert_eq!(
        e.to_string(),
        "invalid producer configuration linger.ms=abc: invalid value for configuration linger.ms"
    );
    match e {
        BuildError::Config {
            key: Some(k),
            value: Some(v),
            ..
        } => assert_eq!((k.as_str(), v.as_str()), ("linger.ms", "abc")),
        other => panic!("{other:?}"),
    }
    let e = build_error(builder(CLOSED).set("client.dns.lookup", "default"));
    assert!(
        e.to_string()
            .starts_with("invalid producer configuration client.dns.lookup=default: "),
        "{e}"
    );
}

#[test]
fn a_value_refused_by_the_whole_config_check_is_named_and_echoed() {
    // Parses, but is refused by `validate`: still named with its value.
    let e = build_error(builder(CLOSED).set("batch.size", 10));
    assert_eq!(
        e.to_string(),
        "invalid producer configuration batch.size=10: invalid value for configuration batch.size"
    );
    // A rule on several properties names none.
    let e = build_error(
        builder(CLOSED)
            .set("acks", "1")
            .set("enable.idempotence", "true"),
    );
    assert_eq!(
        e.to_string(),
        "invalid producer configuration: must set acks to all in order to use the idempotent \
         producer"
    );
}

#[test]
fn explicit_delivery_timeout_below_linger_plus_request_timeout_is_refused() {
    let e = build_error(
        builder(CLOSED)
            .set("linger.ms", 100_000)
            .set("delivery.timeout.ms", 120_000),
    );
    assert_eq!(
        e.to_string(),
        "invalid producer configuration: delivery.timeout.ms should be equal to or larger than \
         linger.ms + request.timeout.ms"
    );
}

#[test]
fn default_delivery_timeout_is_raised_with_javas_warning() {
    let p = builder(CLOSED)
        .set("client.id", "raise-linger")
        .set("linger.ms", 100_000)
        .build()
        .expect("Java raises the default delivery.timeout.ms instead of refusing");
    drop(p);
    assert!(warned(
        "[Producer clientId=raise-linger] delivery.timeout.ms should be equal to or larger than \
         linger.ms + request.timeout.ms. Setting it to 130000."
    ));
    let p = builder(CLOSED)
        .set("client.id", "raise-request")
        .set("request.timeout.ms", 120_000)
        .build()
        .expect("request.timeout.ms=120000 accepted");
    drop(p);
    assert!(warned("[Producer clientId=raise-request] delivery.timeout.ms") && warned("120005."));
}

#[test]
fn batch_size_zero_and_long_client_ids_build() {
    builder(CLOSED)
        .set("batch.size", 0)
        .build()
        .expect("batch.size=0 is no batching");
    let id = "c".repeat(255);
    let p = builder(CLOSED)
        .set("client.id", &id)
        .build()
        .expect("255-byte client.id");
    assert_eq!(p.client_id(), id);
    let e = build_error(builder(CLOSED).set("client.id", "c".repeat(256)));
    assert!(
        e.to_string()
            .starts_with("invalid producer configuration client.id=ccc"),
        "{e}"
    );
}

#[test]
fn unresolvable_bootstrap_is_refused() {
    let e = build_error(builder("nope.invalid:9092"));
    assert_eq!(
        e.to_string(),
        "no resolvable bootstrap urls given in bootstrap.servers (cannot resolve \
         nope.invalid:9092)"
    );
    match e {
        BuildError::NoResolvableBootstrap { urls } => assert_eq!(urls, ["nope.invalid:9092"]),
        other => panic!("{other:?}"),
    }
    assert!(warned(
        "Couldn't resolve server nope.invalid:9092 from bootstrap.servers as DNS resolution \
         failed for nope.invalid"
    ));
}

#[test]
fn use_all_dns_ips_skips_unresolvable_entries_while_one_resolves() {
    builder(&format!("nope.invalid:9092,{CLOSED}"))
        .build()
        .expect("one resolvable entry is enough");
    builder(&format!("nope.invalid:9092,{CLOSED}"))
        .set("client.dns.lookup", "use_all_dns_ips")
        .build()
        .expect("explicit use_all_dns_ips");
}

#[test]
fn resolve_canonical_refuses_any_unknown_bootstrap_host() {
    let e = build_error(builder(&format!("{CLOSED},nope.invalid:9092")).set(
        "client.dns.lookup",
        "resolve_canonical_bootstrap_servers_only",
    ));
    assert!(
        e.to_string()
            .starts_with("unknown host in bootstrap.servers: nope.invalid:9092"),
        "{e}"
    );
    assert!(
        matches!(e, BuildError::UnknownBootstrapHost { ref url, .. } if url == "nope.invalid:9092")
    );
    builder(CLOSED)
        .set(
            "client.dns.lookup",
            "resolve_canonical_bootstrap_servers_only",
        )
        .build()
        .expect("an IP literal resolves");
}

#[test]
fn a_custom_resolver_decides_what_resolves() {
    let closed: SocketAddr = CLOSED.parse().unwrap();
    builder("broker.internal:9092")
        .resolver(move |host, _| {
            if host == "broker.internal" {
                Ok(vec![closed])
            } else {
                Ok(vec![])
            }
        })
        .build()
        .expect("the resolver knows broker.internal");
    let e = build_error(
        builder(CLOSED).resolver(|_, _| Err(std::io::Error::other("resolver says no"))),
    );
    assert!(matches!(e, BuildError::NoResolvableBootstrap { ref urls } if urls == &[CLOSED]));
    let e = build_error(
        builder("a.internal:1")
            .set(
                "client.dns.lookup",
                "resolve_canonical_bootstrap_servers_only",
            )
            .resolver(|_, _| Ok(vec![])),
    );
    assert!(matches!(e, BuildError::UnknownBootstrapHost { ref url, .. } if url == "a.internal:1"));
}
