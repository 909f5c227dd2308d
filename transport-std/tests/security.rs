//! TLS and SASL against the secured listeners of `scripts/kafka up --security` (one Apache
//! Kafka node named by `KAFKA_EDGE_DIR_SECURE`): records written over SSL, mTLS,
//! SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256), SASL_SSL (SCRAM-SHA-256/512) and OAUTHBEARER read
//! back by librdkafka through the same listeners, authenticated the same way, and every
//! refusal arriving as its own typed error naming the cause, at once rather than after
//! `max.block.ms`.

mod common;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{init_log, owned};
use kafka_edge_std::partition_for_key;
use kafka_edge_std::{
    AuthFailureKind, BuildError, Producer, ProducerBuilder, ProducerRecord, SendError,
    TlsConfigError,
};
use rustls::pki_types::pem::PemObject;

use kafka_edge_tests::{
    SecureBroker, TestRecord, assert_read_back_exactly, judge_with, keyed_records, topic_name,
    unhex,
};

const T: Duration = Duration::from_secs(60);

/// The secured broker and its env file (`BOOTSTRAP_SSL`, `SSL_CA`, ...).
struct Secure(SecureBroker);

impl std::ops::Deref for Secure {
    type Target = SecureBroker;
    fn deref(&self) -> &SecureBroker {
        &self.0
    }
}

impl Secure {
    fn get() -> Secure {
        Secure(SecureBroker::get())
    }

    /// A producer builder for the listener `BOOTSTRAP_<listener>` with TLS and `props`.
    fn builder(&self, listener: &str, props: &[(&str, &str)]) -> ProducerBuilder {
        let mut b = Producer::builder()
            .set(
                "bootstrap.servers",
                self.var(&format!("BOOTSTRAP_{listener}")),
            )
            .set("client.id", "std-tls-test")
            .set("security.protocol", "SSL");
        for (k, v) in props {
            b = b.set(*k, *v);
        }
        b
    }

    /// The librdkafka properties that read back through `BOOTSTRAP_<listener>`.
    fn judge_props<'a>(&'a self, listener: &str, mtls: bool) -> Vec<(&'a str, &'a str)> {
        let bootstrap = self.var(&format!("BOOTSTRAP_{listener}"));
        let mut p = vec![
            ("bootstrap.servers", bootstrap),
            ("security.protocol", "SSL"),
            ("ssl.ca.location", self.var("SSL_CA")),
        ];
        if mtls {
            p.push(("ssl.certificate.location", self.var("SSL_CLIENT_CERT")));
            p.push(("ssl.key.location", self.var("SSL_CLIENT_KEY")));
        }
        p
    }
}

fn murmur2_partition(r: &TestRecord, partitions: u32) -> i32 {
    let key = unhex(r.key.as_deref().expect("keyed"));
    partition_for_key(&key, NonZeroU32::new(partitions).expect("> 0"))
}

/// Sends `records` to `topic` and waits for every acknowledgement.
fn produce_all(p: &Producer, topic: &str, records: &[TestRecord]) {
    let owned = owned(records);
    let futures: Vec<_> = owned
        .iter()
        .map(|r| p.send(&r.record(topic)).expect("send"))
        .collect();
    for (i, f) in futures.into_iter().enumerate() {
        f.wait_timeout(T)
            .unwrap_or_else(|| panic!("record {i}: no outcome in {T:?}"))
            .unwrap_or_else(|e| panic!("record {i}: {e}"));
    }
}

/// Sends `records` through `p`, closes it, and reads `topic` back with librdkafka
/// authenticated with `judge`: exactly `records`, record `i` in `partition(i)`.
fn send_and_read_back(
    s: &Secure,
    p: Producer,
    topic: &str,
    records: &[TestRecord],
    judge: &[(&str, &str)],
    partition: impl Fn(usize) -> i32,
) {
    produce_all(&p, topic, records);
    p.close(T);
    let judged = judge_with(&s.cluster, topic, records.len(), judge);
    assert_read_back_exactly(records, &judged, partition);
}

#[test]
fn ssl_keyed_records_read_back_exactly() {
    init_log();
    let s = Secure::get();
    let topic = topic_name("std-tls-ssl");
    s.cluster.create_topic(&topic, 3, 1, &[]);
    let p = s
        .builder(
            "SSL",
            &[
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.location", s.var("SSL_CA")),
                ("linger.ms", "5"),
            ],
        )
        .build()
        .unwrap();
    let records = keyed_records(41, 3000, 50);
    send_and_read_back(&s, p, &topic, &records, &s.judge_props("SSL", false), |i| {
        murmur2_partition(&records[i], 3)
    });
}

/// Requests far larger than rustls' 64 KiB buffer and the socket's: transmits stop part
/// way and go on after `handle_writable`, and nothing stalls.
#[test]
fn ssl_large_requests_cross_full_buffers() {
    init_log();
    let s = Secure::get();
    let topic = topic_name("std-tls-large");
    s.cluster.create_topic(&topic, 1, 1, &[]);
    let p = s
        .builder(
            "SSL",
            &[
                ("ssl.truststore.location", s.var("SSL_CA")),
                ("batch.size", "1048576"),
                ("linger.ms", "50"),
                ("max.request.size", "4194304"),
            ],
        )
        .build()
        .unwrap();
    let records: Vec<TestRecord> = (0..120u8)
        .map(|i| TestRecord {
            key: None,
            value: Some(kafka_edge_tests::hex(&vec![i; 100_000])),
            headers: Default::default(),
            timestamp: 1_700_000_000_000 + i64::from(i),
            partition: Some(0),
        })
        .collect();
    let t0 = Instant::now();
    send_and_read_back(&s, p, &topic, &records, &s.judge_props("SSL", false), |_| 0);
    println!("12 MB over TLS and read back in {:?}", t0.elapsed());
}

#[test]
fn mtls_with_client_certificate_read_back_exactly() {
    init_log();
    let s = Secure::get();
    let topic = topic_name("std-tls-mtls");
    s.cluster.create_topic(&topic, 2, 1, &[]);
    let p = s
        .builder(
            "MTLS",
            &[
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.location", s.var("SSL_CA")),
                ("ssl.keystore.type", "PEM"),
                ("ssl.keystore.location", s.var("SSL_CLIENT_KEYSTORE")),
            ],
        )
        .build()
        .unwrap();
    let records = keyed_records(42, 1000, 20);
    send_and_read_back(&s, p, &topic, &records, &s.judge_props("MTLS", true), |i| {
        murmur2_partition(&records[i], 2)
    });
}

/// The other ways to give the same trust and identity: inline PEM (Java), librdkafka's
/// file names, and PKCS#12 stores (made with openssl): each writes a record over mTLS.
#[test]
fn mtls_with_inline_pem_librdkafka_names_and_pkcs12() {
    init_log();
    let s = Secure::get();
    let topic = topic_name("std-tls-forms");
    s.cluster.create_topic(&topic, 1, 1, &[]);
    let read = |k: &str| std::fs::read_to_string(s.var(k)).unwrap();
    let (ca, cert, key) = (
        read("SSL_CA"),
        read("SSL_CLIENT_CERT"),
        read("SSL_CLIENT_KEY"),
    );
    let dir = std::env::temp_dir().join(format!("kafka-edge-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keystore = dir.join("client.p12");
    let truststore = dir.join("ca.p12");
    let openssl = |args: &[&str]| {
        let st = std::process::Command::new("openssl")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "openssl {args:?}");
    };
    openssl(&[
        "pkcs12",
        "-export",
        "-in",
        s.var("SSL_CLIENT_CERT"),
        "-inkey",
        s.var("SSL_CLIENT_KEY"),
        "-out",
        keystore.to_str().unwrap(),
        "-passout",
        "pass:store-secret",
    ]);
    openssl(&[
        "pkcs12",
        "-export",
        "-nokeys",
        "-in",
        s.var("SSL_CA"),
        "-out",
        truststore.to_str().unwrap(),
        "-passout",
        "pass:trust-secret",
    ]);
    let forms: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "inline PEM",
            vec![
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.certificates", &ca),
                ("ssl.keystore.type", "PEM"),
                ("ssl.keystore.certificate.chain", &cert),
                ("ssl.keystore.key", &key),
            ],
        ),
        (
            "librdkafka names",
            vec![
                ("ssl.ca.location", s.var("SSL_CA")),
                ("ssl.certificate.location", s.var("SSL_CLIENT_CERT")),
                ("ssl.key.location", s.var("SSL_CLIENT_KEY")),
            ],
        ),
        (
            "PKCS12",
            vec![
                ("ssl.truststore.type", "PKCS12"),
                ("ssl.truststore.location", truststore.to_str().unwrap()),
                ("ssl.truststore.password", "trust-secret"),
                ("ssl.keystore.type", "PKCS12"),
                ("ssl.keystore.location", keystore.to_str().unwrap()),
                ("ssl.keystore.password", "store-secret"),
            ],
        ),
    ];
    let mut sent = Vec::new();
    // PKCS12 needs the `pkcs12` feature (on by default).
    let forms = forms
        .into_iter()
        .filter(|(name, _)| cfg!(feature = "pkcs12") || *name != "PKCS12");
    for (i, (name, props)) in forms.enumerate() {
        let b = s.builder("MTLS", &props);
        let debug = format!("{b:?}");
        assert!(
            !debug.contains("BEGIN PRIVATE KEY") && !debug.contains("store-secret"),
            "{name}: a secret printed: {debug}"
        );
        let p = b.build().unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = TestRecord {
            key: None,
            value: Some(kafka_edge_tests::hex(name.as_bytes())),
            headers: Default::default(),
            timestamp: 1_700_000_000_000 + i as i64,
            partition: Some(0),
        };
        produce_all(&p, &topic, std::slice::from_ref(&r));
        p.close(T);
        sent.push(r);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    let judged = judge_with(&s.cluster, &topic, sent.len(), &s.judge_props("MTLS", true));
    assert_read_back_exactly(&sent, &judged, |_| 0);
}

/// SASL (the core's SCRAM exchange) inside TLS: the SASL_SSL listener.
/// Produces 500 keyed records through `listener` with `props` (no TLS unless `props` say
/// so) and reads them back with librdkafka authenticated with `judge`.
fn sasl_round_trip(
    s: &Secure,
    name: &str,
    listener: &str,
    props: &[(&str, &str)],
    judge: &[(&str, &str)],
) {
    let topic = topic_name(name);
    s.cluster.create_topic(&topic, 1, 1, &[]);
    let mut b = s
        .builder(listener, &[("security.protocol", "SASL_PLAINTEXT")])
        .set("client.id", "std-sasl-test");
    for (k, v) in props {
        b = b.set(*k, *v);
    }
    let p = b.build().unwrap_or_else(|e| panic!("{name}: {e}"));
    let records = keyed_records(44, 500, 10);
    let bootstrap = s.var(&format!("BOOTSTRAP_{listener}"));
    let mut props = vec![("bootstrap.servers", bootstrap)];
    props.extend_from_slice(judge);
    send_and_read_back(s, p, &topic, &records, &props, |_| 0);
}

fn jaas(module: &str, user: &str, password: &str) -> String {
    format!(
        "org.apache.kafka.common.security.{module} required username=\"{user}\" \
         password=\"{password}\";"
    )
}

#[test]
fn sasl_plaintext_plain_and_scram_sha_256_with_java_jaas_config() {
    init_log();
    let s = Secure::get();
    let (user, password) = (s.var("SASL_USER"), s.var("SASL_PASSWORD"));
    for (mechanism, module) in [
        ("PLAIN", "plain.PlainLoginModule"),
        ("SCRAM-SHA-256", "scram.ScramLoginModule"),
    ] {
        let jaas = jaas(module, user, password);
        sasl_round_trip(
            &s,
            "std-sasl-plaintext",
            "SASL_PLAINTEXT",
            &[("sasl.mechanism", mechanism), ("sasl.jaas.config", &jaas)],
            &[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanisms", mechanism),
                ("sasl.username", user),
                ("sasl.password", password),
            ],
        );
    }
}

#[test]
fn sasl_ssl_scram_sha_256_and_512_read_back_exactly() {
    init_log();
    let s = Secure::get();
    let (user, password) = (s.var("SASL_USER"), s.var("SASL_PASSWORD"));
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let jaas = jaas("scram.ScramLoginModule", user, password);
        sasl_round_trip(
            &s,
            "std-sasl-ssl",
            "SASL_SSL",
            &[
                ("security.protocol", "SASL_SSL"),
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.location", s.var("SSL_CA")),
                ("sasl.mechanism", mechanism),
                ("sasl.jaas.config", &jaas),
            ],
            &[
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.location", s.var("SSL_CA")),
                ("sasl.mechanisms", mechanism),
                ("sasl.username", user),
                ("sasl.password", password),
            ],
        );
    }
}

#[test]
fn oauthbearer_from_java_login_module_options_and_from_the_application() {
    init_log();
    let s = Secure::get();
    let judge = [
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanisms", "OAUTHBEARER"),
        ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
        ("sasl.oauthbearer.config", "principal=alice"),
    ];
    // Java's options, as a Java user's configuration has them: the producer makes the
    // unsecured token Kafka's default validator accepts.
    sasl_round_trip(
        &s,
        "std-oauth-jaas",
        "OAUTH",
        &[
            ("sasl.mechanism", "OAUTHBEARER"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                 unsecuredLoginStringClaim_sub=\"alice\";",
            ),
        ],
        &judge,
    );
    // A token the application obtained itself.
    let header = "eyJhbGciOiJub25lIn0"; // {"alg":"none"}
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = format!(r#"{{"sub":"alice","iat":{now},"exp":{}}}"#, now + 600);
    let token = format!("{header}.{}.", base64url(claims.as_bytes()));
    sasl_round_trip(
        &s,
        "std-oauth-token",
        "OAUTH",
        &[
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.oauthbearer.token", &token),
        ],
        &judge,
    );
    // An expired token is refused; the application's fresh token (as after a refresh) is
    // used by the next authentication, and sends resume.
    {
        let topic = topic_name("std-oauth-refresh");
        s.cluster.create_topic(&topic, 1, 1, &[]);
        let expired = format!(
            "{header}.{}.",
            base64url(
                format!(
                    r#"{{"sub":"alice","iat":{},"exp":{}}}"#,
                    now - 7200,
                    now - 3600
                )
                .as_bytes()
            )
        );
        let p = s
            .builder("OAUTH", &[("security.protocol", "SASL_PLAINTEXT")])
            .set("sasl.mechanism", "OAUTHBEARER")
            .set("sasl.oauthbearer.token", &expired)
            .set("max.block.ms", "30000")
            .build()
            .unwrap();
        let err = p
            .send(&ProducerRecord::new(&topic).value(b"first"))
            .expect_err("an expired token is refused");
        assert!(
            matches!(&err, SendError::Authentication(e) if e.kind == AuthFailureKind::Sasl),
            "{err}"
        );
        p.set_oauth_token(&token);
        let until = Instant::now() + Duration::from_secs(30);
        let records = keyed_records(45, 100, 5);
        loop {
            match p.send(&ProducerRecord::new(&topic).value(b"probe")) {
                Ok(f) => {
                    f.wait_timeout(T).expect("outcome").expect("delivered");
                    break;
                }
                Err(SendError::Authentication(_)) if Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("after the fresh token: {e}"),
            }
        }
        produce_all(&p, &topic, &records);
        p.close(T);
        let mut props = vec![("bootstrap.servers", s.var("BOOTSTRAP_OAUTH"))];
        props.extend_from_slice(&judge);
        let judged = judge_with(&s.cluster, &topic, records.len() + 1, &props);
        assert_eq!(judged.len(), records.len() + 1, "the probe and the records");
    }
    // Without a token the build says what to set.
    let err = s
        .builder("OAUTH", &[("security.protocol", "SASL_PLAINTEXT")])
        .set("sasl.mechanism", "OAUTHBEARER")
        .build()
        .expect_err("no token");
    assert!(matches!(err, BuildError::MissingOAuthToken), "{err}");
}

/// base64url without padding.
fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    bytes
        .chunks(3)
        .flat_map(|c| {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            (0..=c.len()).map(move |i| char::from(A[(n >> (18 - 6 * i) & 63) as usize]))
        })
        .collect()
}

#[test]
fn a_wrong_password_is_refused_at_once_with_the_brokers_message() {
    init_log();
    let s = Secure::get();
    for (mechanism, expect) in [
        ("PLAIN", "Invalid username or password"),
        ("SCRAM-SHA-512", "invalid credentials"),
    ] {
        let p = s
            .builder("SASL_PLAINTEXT", &[("security.protocol", "SASL_PLAINTEXT")])
            .set("sasl.mechanism", mechanism)
            .set("sasl.username", s.var("SASL_USER"))
            .set("sasl.password", "wrong")
            .set("max.block.ms", "120000")
            .set("delivery.timeout.ms", "120000")
            .build()
            .unwrap();
        let t0 = Instant::now();
        let err = p
            .send(&ProducerRecord::new("t").value(b"v"))
            .expect_err("authentication must fail");
        println!("{mechanism}: refused after {:?}: {err}", t0.elapsed());
        p.close(Duration::ZERO);
        match err {
            SendError::Authentication(e) => {
                assert_eq!(e.kind, AuthFailureKind::Sasl, "{e}");
                assert!(e.message.contains(expect), "{mechanism}: {e}");
            }
            other => panic!("{mechanism}: expected SendError::Authentication, got {other:?}"),
        }
    }
}

/// Sends one record with `max.block.ms` and `delivery.timeout.ms` at 120 s and returns the
/// refusal, printing how long it took.
fn refused(what: &str, b: ProducerBuilder) -> kafka_edge_std::AuthenticationError {
    let p = b
        .set("max.block.ms", "120000")
        .set("delivery.timeout.ms", "120000")
        .set("request.timeout.ms", "30000")
        .build()
        .unwrap();
    let topic = topic_name("std-tls-refused");
    let t0 = Instant::now();
    let err = p
        .send(&ProducerRecord::new(&topic).value(b"v"))
        .expect_err("the handshake must fail");
    println!("{what}: refused after {:?}: {err}", t0.elapsed());
    p.close(Duration::ZERO);
    match err {
        SendError::Authentication(e) => {
            assert_eq!(e.kind, AuthFailureKind::Tls, "{e}");
            e
        }
        other => panic!("{what}: expected SendError::Authentication, got {other:?}"),
    }
}

#[test]
fn untrusted_broker_certificate_is_refused_naming_the_broker() {
    init_log();
    let s = Secure::get();
    let b = s.builder(
        "SSL",
        &[("ssl.truststore.location", s.var("SSL_UNTRUSTED_CA"))],
    );
    let e = refused("untrusted CA", b);
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "SSL handshake failed with broker {} (bootstrap): invalid peer certificate: \
             UnknownIssuer",
            s.var("BOOTSTRAP_SSL")
        )),
        "{text}"
    );
    // Not verifying the name still verifies the chain.
    let b = s.builder(
        "SSL",
        &[
            ("ssl.truststore.location", s.var("SSL_UNTRUSTED_CA")),
            ("ssl.endpoint.identification.algorithm", ""),
        ],
    );
    let e = refused("untrusted CA, no host name check", b);
    assert!(e.message.contains("UnknownIssuer"), "{e}");
}

#[test]
fn host_name_mismatch_is_refused_unless_identification_is_off() {
    init_log();
    let s = Secure::get();
    let b = s.builder(
        "SSL_BADHOST",
        &[("ssl.truststore.location", s.var("SSL_CA"))],
    );
    let e = refused("host name mismatch", b);
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "SSL handshake failed with broker {} (bootstrap): invalid peer certificate: \
             NotValidForName",
            s.var("BOOTSTRAP_SSL_BADHOST")
        )),
        "{text}"
    );
    // `ssl.endpoint.identification.algorithm=` (empty): the same listener is accepted. Its
    // metadata advertises the same name, so the records go through it too.
    let topic = topic_name("std-tls-badhost");
    s.cluster.create_topic(&topic, 1, 1, &[]);
    let p = s
        .builder(
            "SSL_BADHOST",
            &[
                ("ssl.truststore.location", s.var("SSL_CA")),
                ("ssl.endpoint.identification.algorithm", ""),
            ],
        )
        .build()
        .unwrap();
    let records = keyed_records(43, 100, 5);
    produce_all(&p, &topic, &records);
    p.close(T);
    let judged = judge_with(
        &s.cluster,
        &topic,
        records.len(),
        &s.judge_props("SSL", false),
    );
    assert_read_back_exactly(&records, &judged, |_| 0);
}

#[test]
fn mtls_listener_without_client_certificate_is_refused() {
    init_log();
    let s = Secure::get();
    let b = s.builder("MTLS", &[("ssl.truststore.location", s.var("SSL_CA"))]);
    let e = refused("no client certificate", b);
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "SSL handshake failed with broker {} (bootstrap): the broker wants a client \
             certificate and none is configured",
            s.var("BOOTSTRAP_MTLS")
        )),
        "{text}"
    );
    // A certificate the broker's CA did not sign: the broker refuses it.
    let b = s.builder(
        "MTLS",
        &[
            ("ssl.truststore.location", s.var("SSL_CA")),
            (
                "ssl.keystore.location",
                s.var("SSL_UNTRUSTED_CLIENT_KEYSTORE"),
            ),
        ],
    );
    let e = refused("untrusted client certificate", b);
    assert!(
        e.message
            .contains("the broker refused the client certificate"),
        "{e}"
    );
}

/// Kafka's listeners allow TLS 1.2 and 1.3 (`ssl.enabled.protocols` default), so the broker
/// cannot refuse a version: a rustls server with the broker's certificate and TLS 1.3 only
/// stands in for one configured `ssl.enabled.protocols=TLSv1.3`.
#[test]
fn tls_version_mismatch_is_refused() {
    init_log();
    let s = Secure::get();
    let dir = PathBuf::from(s.var("SSL_DIR"));
    let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(dir.join("broker.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("broker.key")).unwrap();
    let server = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let mut conn = rustls::ServerConnection::new(server.clone()).unwrap();
            // Runs the handshake until rustls refuses the ClientHello and sends its alert.
            while conn.is_handshaking() {
                if conn.complete_io(&mut sock).is_err() {
                    break;
                }
            }
        }
    });
    let b = Producer::builder()
        .set("bootstrap.servers", addr.to_string())
        .set("security.protocol", "SSL")
        .set("ssl.truststore.location", s.var("SSL_CA"))
        .set("ssl.enabled.protocols", "TLSv1.2");
    let e = refused("TLS 1.2 client, TLS 1.3 server", b);
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "SSL handshake failed with broker {addr} (bootstrap): no TLS protocol version in \
             common"
        )),
        "{text}"
    );
}

/// A TCP proxy whose target can be switched: the connections open at the switch are cut,
/// and new ones go to the new target.
struct SwitchProxy {
    addr: std::net::SocketAddr,
    target: Arc<std::sync::atomic::AtomicU16>,
    open: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl SwitchProxy {
    fn start(port: u16) -> SwitchProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(std::sync::atomic::AtomicU16::new(port));
        let open = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (t, o) = (target.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let to = ("127.0.0.1", t.load(Ordering::SeqCst));
                let Ok(server) = std::net::TcpStream::connect(to) else {
                    continue;
                };
                o.lock().unwrap().push(client.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n @ 1..) = from.read(&mut buf) {
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        SwitchProxy { addr, target, open }
    }

    fn switch(&self, port: u16) {
        self.target.store(port, std::sync::atomic::Ordering::SeqCst);
        for c in self.open.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn port_of(bootstrap: &str) -> u16 {
    bootstrap.rsplit(':').next().unwrap().parse().unwrap()
}

/// Records queued when the handshake starts failing fail with it
/// ([`ProduceError::Authentication`](kafka_edge_std::ProduceError)), fast, naming the broker;
/// once a handshake succeeds again, records go through.
#[test]
fn queued_records_fail_with_the_tls_failure_and_the_producer_recovers() {
    init_log();
    let s = Secure::get();
    let topic = topic_name("std-tls-queued");
    s.cluster.create_topic(&topic, 1, 1, &[]);
    let ssl = port_of(s.var("BOOTSTRAP_SSL"));
    let proxy = SwitchProxy::start(ssl);
    let addr = proxy.addr;
    // The producer names the broker by its advertised 127.0.0.1:<ssl port>, which the
    // resolver sends through the proxy: the certificate check sees 127.0.0.1.
    let p = s
        .builder(
            "SSL",
            &[
                ("ssl.truststore.location", s.var("SSL_CA")),
                ("max.block.ms", "120000"),
                ("delivery.timeout.ms", "120000"),
                ("reconnect.backoff.ms", "300"),
                ("reconnect.backoff.max.ms", "300"),
            ],
        )
        .resolver(move |_, _| Ok(vec![addr]))
        .build()
        .unwrap();
    p.send(&ProducerRecord::new(&topic).value(b"before"))
        .unwrap()
        .wait_timeout(T)
        .unwrap()
        .unwrap();
    // From now on the same address serves a certificate that does not name 127.0.0.1.
    proxy.switch(port_of(s.var("BOOTSTRAP_SSL_BADHOST")));
    let t0 = Instant::now();
    let futures: Vec<_> = (0..10)
        .map(|i| {
            p.send(&ProducerRecord::new(&topic).value(format!("queued-{i}").as_bytes()))
                .expect("accepted before the handshake fails")
        })
        .collect();
    for (i, f) in futures.into_iter().enumerate() {
        let outcome = f.wait_timeout(T).expect("an outcome");
        match outcome {
            Err(kafka_edge_std::ProduceError::Authentication(e)) => {
                assert_eq!(e.kind, AuthFailureKind::Tls);
                assert!(e.message.contains("NotValidForName"), "{e}");
                assert!(
                    e.to_string()
                        .starts_with("SSL handshake failed with broker 127.0.0.1:")
                );
            }
            other => panic!("record {i}: {other:?}"),
        }
    }
    println!("queued records failed after {:?}", t0.elapsed());
    let e = p
        .send(&ProducerRecord::new(&topic).value(b"refused"))
        .expect_err("refused while the failure lasts");
    assert!(matches!(e, SendError::Authentication(_)), "{e:?}");
    // The broker's certificate is right again: the next handshake clears the failure.
    proxy.switch(ssl);
    let until = Instant::now() + T;
    loop {
        match p.send(&ProducerRecord::new(&topic).value(b"after")) {
            Ok(f) => {
                f.wait_timeout(T).unwrap().unwrap();
                break;
            }
            Err(SendError::Authentication(_)) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("{e}"),
        }
    }
    p.close(T);
    let judged = judge_with(&s.cluster, &topic, 2, &s.judge_props("SSL", false));
    let values: Vec<_> = judged.iter().map(|j| j.value.clone().unwrap()).collect();
    assert_eq!(
        values,
        [
            kafka_edge_tests::hex(b"before"),
            kafka_edge_tests::hex(b"after")
        ]
    );
}

#[test]
fn jks_store_is_refused_at_build_with_the_keytool_command() {
    init_log();
    let dir = std::env::temp_dir().join(format!("kafka-edge-jks-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jks = dir.join("client.keystore.jks");
    std::fs::write(&jks, [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]).unwrap();
    let err = Producer::builder()
        .set("bootstrap.servers", "127.0.0.1:9093")
        .set("security.protocol", "SSL")
        .set("ssl.keystore.type", "JKS")
        .set("ssl.keystore.location", jks.to_str().unwrap())
        .set("ssl.keystore.password", "changeit")
        .build()
        .expect_err("JKS is not read");
    std::fs::remove_dir_all(&dir).unwrap();
    let text = err.to_string();
    println!("{text}");
    assert!(
        matches!(
            &err,
            BuildError::Tls(TlsConfigError::UnsupportedStoreType {
                key: "ssl.keystore.type",
                ..
            })
        ),
        "{err:?}"
    );
    assert!(
        text.contains(
            "keytool -importkeystore -srckeystore keystore.jks -destkeystore keystore.p12 \
             -deststoretype PKCS12"
        ),
        "{text}"
    );
    assert!(!text.contains("changeit"), "{text}");
}
