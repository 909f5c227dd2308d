//! SASL in the core, through the async driver, against the secured listeners of the test
//! ground's one-node Apache Kafka (`scripts/kafka up --security`, found through
//! `KAFKA_EDGE_DIR_SECURE`): PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 on SASL_PLAINTEXT,
//! OAUTHBEARER with an unsecured JWT, refusals (wrong password, unknown user, a mechanism the
//! listener does not enable), and a run across re-authentications (KIP-368). Records are
//! read back by the librdkafka judge.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use kafka_edge_core::security::AuthFailureKind;
use kafka_edge_core::{ProducerConfig, SendError};
use kafka_edge_embedded::{Error, Producer};
use kafka_edge_tests::{SecureBroker, assert_read_back_exactly, judge, keyed_records, topic_name};

type Secure = SecureBroker;

/// A core for `listener` of the secure broker with `props`.
fn secure_core(s: &Secure, listener: &str, props: &[(&str, &str)]) -> Box<Core> {
    let mut config = ProducerConfig::new(s.var(listener)).expect("bootstrap");
    for (k, v) in props {
        config
            .set(k, v)
            .unwrap_or_else(|e| panic!("{k}={v}: {e:?}"));
    }
    Box::new(Core::new(config, vec![0; 128 * 1024], LIMITS, 0x5a51).expect("config"))
}

fn jaas(module: &str, user: &str, password: &str) -> String {
    format!(
        "org.apache.kafka.common.security.{module} required username=\"{user}\" \
         password=\"{password}\";"
    )
}

/// Produces 2,000 keyed records through `core` and reads them back exactly.
fn produce_and_judge(s: &Secure, mut core: Box<Core>, name: &str) {
    let topic = topic_name(name);
    s.cluster.create_topic(&topic, 3, 1, &[]);
    let records = keyed_records(21, 2_000, 37);
    let bytes = owned(&records);
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    let (tickets, authentications) = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4>::new(&mut core, conns, clock, recorder(&outcomes));
        let tickets = produce_all(&mut p, &topic, &bytes).await;
        (tickets, p.core().metrics().sasl_authentications)
    });
    assert!(authentications >= 1, "no SASL exchange completed");
    outcome_per_ticket(&tickets, &outcomes);
    let judged = judge(&s.cluster, &topic);
    assert_read_back_exactly(&records, &judged, |i| murmur2(&records[i], 3));
}

/// `mechanism` with the user of Java's `sasl.jaas.config` for `module`, on SASL_PLAINTEXT.
fn jaas_round_trip(mechanism: &str, module: &str, name: &str) {
    let s = Secure::get();
    let jaas = jaas(module, s.var("SASL_USER"), s.var("SASL_PASSWORD"));
    let core = secure_core(
        &s,
        "BOOTSTRAP_SASL_PLAINTEXT",
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", mechanism),
            ("sasl.jaas.config", &jaas),
        ],
    );
    produce_and_judge(&s, core, name);
}

#[test]
fn sasl_plain_produces_exactly_once() {
    jaas_round_trip("PLAIN", "plain.PlainLoginModule", "sasl-plain");
}

#[test]
fn sasl_scram_sha_256_produces_exactly_once() {
    jaas_round_trip("SCRAM-SHA-256", "scram.ScramLoginModule", "sasl-scram256");
}

#[test]
fn sasl_scram_sha_512_with_librdkafka_property_names() {
    let s = Secure::get();
    let core = secure_core(
        &s,
        "BOOTSTRAP_SASL_PLAINTEXT",
        &[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", s.var("SASL_USER")),
            ("sasl.password", s.var("SASL_PASSWORD")),
        ],
    );
    produce_and_judge(&s, core, "sasl-scram512");
}

/// base64url without padding (RFC 4648 §5), for the unsecured JWT.
fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[test]
fn oauthbearer_with_a_token_from_the_application() {
    let s = Secure::get();
    let mut core = secure_core(
        &s,
        "BOOTSTRAP_OAUTH",
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "OAUTHBEARER"),
        ],
    );
    // An unsecured JWT ("alg": "none"), as Kafka's OAuthBearerUnsecuredLoginCallbackHandler
    // makes and its default validator accepts.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let token = format!(
        "{}.{}.",
        base64url(br#"{"alg":"none"}"#),
        base64url(format!(r#"{{"sub":"alice","iat":{now},"exp":{}}}"#, now + 3600).as_bytes())
    );
    core.set_sasl_token(&token).expect("token fits");
    produce_and_judge(&s, core, "sasl-oauth");
}

/// Sends one record with `max.block.ms` and `delivery.timeout.ms` at 120 s through `core`,
/// and returns the error, the authentication failure's message and how long it took.
fn refused(mut core: Box<Core>) -> (Error, String, Duration) {
    let conns: [Tcp; 4] = Default::default();
    let outcomes = Outcomes::default();
    let started = Instant::now();
    let (err, message) = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4>::new(&mut core, conns, clock, recorder(&outcomes));
        let r = Owned {
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: Vec::new(),
            timestamp: -1,
        };
        let err = enqueue_one(&mut p, "refused", &r)
            .await
            .expect_err("authentication must fail");
        let message = p
            .core()
            .authentication_failure()
            .map(|f| f.message.to_string())
            .unwrap_or_default();
        p.close(0).await;
        (err, message)
    });
    assert!(outcomes.borrow().is_empty(), "nothing was accepted");
    (err, message, started.elapsed())
}

const PATIENT: [(&str, &str); 2] = [
    ("max.block.ms", "120000"),
    ("delivery.timeout.ms", "120000"),
];

fn assert_sasl_refusal(err: Error, message: &str, took: Duration, expect: &str) {
    eprintln!("refused after {took:?}: {err}: {message}");
    assert_eq!(
        err,
        Error::Send(SendError::Authentication(AuthFailureKind::Sasl)),
        "{message}"
    );
    assert!(
        message.contains(expect),
        "message {message:?} does not say {expect:?}"
    );
}

#[test]
fn a_wrong_password_is_an_authentication_error_at_once() {
    let s = Secure::get();
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let core = secure_core(
            &s,
            "BOOTSTRAP_SASL_PLAINTEXT",
            &[
                PATIENT[0],
                PATIENT[1],
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", mechanism),
                ("sasl.username", s.var("SASL_USER")),
                ("sasl.password", "not-the-password"),
            ],
        );
        let (err, message, took) = refused(core);
        let expect = if mechanism == "PLAIN" {
            "Invalid username or password"
        } else {
            "invalid credentials"
        };
        assert_sasl_refusal(err, &message, took, expect);
    }
}

#[test]
fn an_unknown_user_is_an_authentication_error_at_once() {
    let s = Secure::get();
    let core = secure_core(
        &s,
        "BOOTSTRAP_SASL_PLAINTEXT",
        &[
            PATIENT[0],
            PATIENT[1],
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "mallory"),
            ("sasl.password", "whatever"),
        ],
    );
    let (err, message, took) = refused(core);
    assert_sasl_refusal(err, &message, took, "invalid credentials");
}

#[test]
fn a_mechanism_the_listener_does_not_enable_is_named() {
    let s = Secure::get();
    let core = secure_core(
        &s,
        "BOOTSTRAP_OAUTH",
        &[
            PATIENT[0],
            PATIENT[1],
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", s.var("SASL_USER")),
            ("sasl.password", s.var("SASL_PASSWORD")),
        ],
    );
    let (err, message, took) = refused(core);
    assert_sasl_refusal(
        err,
        &message,
        took,
        "Client SASL mechanism 'SCRAM-SHA-256' not enabled in the server, enabled mechanisms are [OAUTHBEARER]",
    );
}

#[test]
fn producing_across_re_authentications_fails_nothing() {
    let s = Secure::get();
    let reauth_ms: u64 = s.var("REAUTH_MS").parse().expect("REAUTH_MS");
    let topic = topic_name("sasl-reauth");
    s.cluster.create_topic(&topic, 3, 1, &[]);
    let mut core = secure_core(
        &s,
        "BOOTSTRAP_REAUTH",
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", s.var("SASL_USER")),
            ("sasl.password", s.var("SASL_PASSWORD")),
            ("linger.ms", "20"),
        ],
    );
    // Three sessions' worth of records at 100 per second.
    let run = Duration::from_millis(reauth_ms * 3);
    let count = (run.as_millis() / 10) as usize;
    let records = keyed_records(22, count, 11);
    let bytes = owned(&records);
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    let (tickets, authentications, lost) = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4>::new(&mut core, conns, clock, recorder(&outcomes));
        let mut tickets = Vec::new();
        let start = p.now_ms();
        for (i, r) in bytes.iter().enumerate() {
            let due = start + i as u64 * 10;
            while p.now_ms() < due {
                p.poll(Some(due)).await;
            }
            tickets.push(
                enqueue_one(&mut p, &topic, r)
                    .await
                    .unwrap_or_else(|e| panic!("record {i}: {e}")),
            );
        }
        p.flush().await;
        let lost = p.stats().connections_lost;
        let authentications = p.core().metrics().sasl_authentications;
        p.close(10_000).await;
        (tickets, authentications, lost)
    });
    eprintln!(
        "{count} records over {run:?}: {authentications} SASL exchanges, {lost} connections lost"
    );
    // At least two re-authentications on the connection that carried the records.
    assert!(authentications >= 3, "{authentications} SASL exchanges");
    outcome_per_ticket(&tickets, &outcomes);
    let judged = judge(&s.cluster, &topic);
    assert_read_back_exactly(&records, &judged, |i| murmur2(&records[i], 3));
}
