//! The bridge to the secured listeners of `scripts/kafka up --security`
//! (`KAFKA_EDGE_DIR_SECURE`): TLS and SASL done by the bridge on each broker connection
//! before any client frame, so the browser holds no Kafka credential; and `wss://` towards
//! the client. Records are read back by the judge over the broker's PLAINTEXT listener.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Bridge, Outcome, Seen, WsClient, WsLoop, partitions_of, produce_through, raw_exchange, runtime,
    ws_producer,
};
use kafka_edge_core::{ProducerRecord, SendError};
use kafka_edge_tests::{SecureBroker, assert_read_back_exactly, judge, keyed_records, topic_name};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_rustls::rustls;

fn upstream(b: &SecureBroker, protocol: &str, mechanism: &str, password: &str) -> String {
    format!(
        "[upstream]\nsecurity_protocol = \"{protocol}\"\nssl_ca = \"{}\"\n\
         sasl_mechanism = \"{mechanism}\"\nsasl_username = \"{}\"\nsasl_password = \"{password}\"\n",
        b.var("SSL_CA"),
        b.var("SASL_USER"),
    )
}

fn round_trip(b: &SecureBroker, bootstrap: &str, extra: &str, client_tls: bool) {
    let topic = topic_name("bridge-ok-secure");
    b.cluster.create_topic(&topic, 2, 1, &[]);
    let bridge = Bridge::start_with(bootstrap, extra, "", true);
    let rt = runtime();
    let mut client = WsClient::of(&bridge);
    if client_tls {
        client.base = client.base.replace("ws://", "wss://");
        client.tls = Some(trusting(b.var("SSL_CA")));
    }
    let records = keyed_records(3, 500, 50);
    let (tickets, lp) =
        produce_through(&rt, client, &topic, &records, &[], Duration::from_secs(60));
    let partitions = partitions_of(&tickets, &lp.outcomes);
    assert_read_back_exactly(&records, &judge(&b.cluster, &topic), |i| partitions[i]);
    assert!(bridge.metric("kafka_edge_bridge_upstream_connections_total") >= 2.0);
}

/// A TLS client config trusting the CA at `ca`.
fn trusting(ca: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(c.expect("ca cert")).expect("add ca");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("tls versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[test]
fn sasl_ssl_scram_sha_512_done_by_the_bridge() {
    let b = SecureBroker::get();
    let extra = upstream(&b, "SASL_SSL", "SCRAM-SHA-512", b.var("SASL_PASSWORD"));
    round_trip(&b, b.var("BOOTSTRAP_SASL_SSL"), &extra, false);
}

#[test]
fn sasl_plaintext_plain_done_by_the_bridge_with_wss_towards_the_client() {
    let b = SecureBroker::get();
    let certs = b.var("SSL_DIR");
    let extra = format!(
        "[tls]\ncert = \"{certs}/broker.pem\"\nkey = \"{certs}/broker.key\"\n{}",
        upstream(&b, "SASL_PLAINTEXT", "PLAIN", b.var("SASL_PASSWORD"))
    );
    round_trip(&b, b.var("BOOTSTRAP_SASL_PLAINTEXT"), &extra, true);
}

#[test]
fn ssl_upstream_round_trip() {
    let b = SecureBroker::get();
    let extra = format!(
        "[upstream]\nsecurity_protocol = \"SSL\"\nssl_ca = \"{}\"\n",
        b.var("SSL_CA")
    );
    round_trip(&b, b.var("BOOTSTRAP_SSL"), &extra, false);
}

/// The client's handshake fails with 502 and `reason` when the bridge cannot set up its
/// broker connection.
fn refused_upstream(bootstrap: &str, extra: &str, reason: &str) {
    let bridge = Bridge::start_with(bootstrap, extra, "", true);
    let rt = runtime();
    let seen = rt.block_on(raw_exchange(
        &WsClient::of(&bridge),
        &bridge.url("/bootstrap/0"),
        vec![],
        Duration::from_secs(10),
    ));
    assert!(matches!(seen, Seen::HttpStatus(502)), "saw {seen:?}");
    assert_eq!(bridge.wait_refusals(reason, 1.0), 1.0);
    assert_eq!(
        bridge.metric("kafka_edge_bridge_bytes_total{direction=\"to_broker\"}"),
        0.0
    );
}

#[test]
fn a_wrong_password_fails_the_clients_handshake() {
    let b = SecureBroker::get();
    let extra = upstream(&b, "SASL_SSL", "SCRAM-SHA-256", "not-the-password");
    refused_upstream(b.var("BOOTSTRAP_SASL_SSL"), &extra, "upstream_auth_failed");
}

#[test]
fn a_broker_certificate_for_another_host_is_refused() {
    let b = SecureBroker::get();
    let extra = format!(
        "[upstream]\nsecurity_protocol = \"SSL\"\nssl_ca = \"{}\"\n",
        b.var("SSL_CA")
    );
    refused_upstream(
        b.var("BOOTSTRAP_SSL_BADHOST"),
        &extra,
        "upstream_tls_failed",
    );
}

/// On a listener with `connections.max.reauth.ms=10000`, the bridge ends each session before
/// its SASL lifetime; the producer reconnects and every record is delivered once.
#[test]
fn sasl_sessions_end_before_their_lifetime_and_the_client_reconnects() {
    let b = SecureBroker::get();
    let topic = topic_name("bridge-ok-reauth");
    b.cluster.create_topic(&topic, 1, 1, &[]);
    let extra = upstream(
        &b,
        "SASL_PLAINTEXT",
        "SCRAM-SHA-256",
        b.var("SASL_PASSWORD"),
    );
    let bridge = Bridge::start_with(b.var("BOOTSTRAP_REAUTH"), &extra, "", true);
    let rt = runtime();
    let mut p = ws_producer(&[]);
    let mut lp = WsLoop::new(rt.handle().clone(), WsClient::of(&bridge));
    let records = keyed_records(4, 120, 10);
    let started = Instant::now();
    let mut tickets = Vec::new();
    for (i, r) in records.iter().enumerate() {
        // One record every 200 ms: 24 s, past two session lifetimes.
        while started.elapsed() < Duration::from_millis(200 * i as u64) {
            lp.step(&mut p);
        }
        let key = r.key.as_deref().map(kafka_edge_tests::unhex);
        let value = r.value.as_deref().map(kafka_edge_tests::unhex);
        let rec = ProducerRecord {
            topic: &topic,
            partition: None,
            key: key.as_deref(),
            value: value.as_deref(),
            headers: &[],
            timestamp: r.timestamp,
        };
        loop {
            match p.send(lp.now(), &rec) {
                Ok(t) => break tickets.push(t),
                Err(SendError::MetadataNotReady | SendError::BufferFull) => lp.step(&mut p),
                Err(e) => panic!("send: {e}"),
            }
        }
    }
    p.flush(lp.now());
    let until = Instant::now() + Duration::from_secs(60);
    while !(p.is_flushed() && lp.outcomes.iter().map(Outcome::count).sum::<usize>() == 120) {
        assert!(Instant::now() < until, "outcomes missing");
        lp.step(&mut p);
    }
    let partitions = partitions_of(&tickets, &lp.outcomes);
    let records: Vec<_> = records
        .into_iter()
        .map(|mut r| {
            r.headers.clear();
            r
        })
        .collect();
    assert_read_back_exactly(&records, &judge(&b.cluster, &topic), |i| partitions[i]);
    let ended = bridge.refusals("sasl_session_expiring");
    assert!(
        ended >= 2.0,
        "sessions ended before their lifetime: {ended}"
    );
    assert!(lp.opened >= 3, "the client reconnected {} times", lp.opened);
}
