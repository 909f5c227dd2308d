//! kafka-edge-std against the older Apache Kafka line many managed clusters still run: one
//! KRaft node of `KAFKA_OLD_VERSION` (3.9, `scripts/versions`), started with the secured
//! listeners (`scripts/kafka up --old --security --dir D`, named by `KAFKA_EDGE_DIR_39`).
//!
//! A short suite: the versions negotiated with ApiVersions (seen on the wire by a proxy),
//! idempotent acks=all and plain acks=1 keyed records, each codec, SASL (PLAIN, SCRAM,
//! OAUTHBEARER), and transactions with transaction version 1 (3.9 does not finalize
//! `transaction.version` 2); every record read back by the librdkafka judge and compared
//! exactly.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{builder, init_log, murmur2_partition, send_all};
use kafka_edge_std::{Producer, ProducerBuilder};
use kafka_edge_tests::{
    Cluster, Ground, SecureBroker, TestRecord, TestRng, assert_read_back_exactly, hex, judge,
    judge_isolation, judge_with, keyed_records, oracle, topic_name,
};

const T: Duration = Duration::from_secs(60);

// API keys (Kafka's message schemas).
const PRODUCE: i16 = 0;
const METADATA: i16 = 3;
const API_VERSIONS: i16 = 18;
const INIT_PRODUCER_ID: i16 = 22;
const SASL_HANDSHAKE: i16 = 17;
const SASL_AUTHENTICATE: i16 = 36;
const ADD_PARTITIONS_TO_TXN: i16 = 24;
const END_TXN: i16 = 26;

/// The 3.9 node, checked to really be of the 3.x line (so that the suite never passes
/// against the newer broker by mistake).
fn cluster() -> Cluster {
    let c = Cluster::wait(Ground::Kafka39);
    let version = c.kafka_version().unwrap_or_default();
    assert!(
        version.starts_with("3."),
        "KAFKA_EDGE_DIR_39 ({}) runs Kafka {version:?}, not the 3.x line",
        c.dir.display()
    );
    c
}

/// `(api_key, api_version)` of each request seen, in order.
type Requests = Arc<Mutex<Vec<(i16, i16)>>>;

/// A TCP proxy in front of one broker that forwards bytes unchanged and notes the API key
/// and version of every request that passes (the first fields of the request header).
struct SniffingProxy {
    addr: SocketAddr,
    requests: Requests,
}

impl SniffingProxy {
    fn start(target: &str) -> Self {
        let target: SocketAddr = target.parse().expect("host:port");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Requests::default();
        let seen = requests.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || forward(server, client, None));
                let seen = seen.clone();
                std::thread::spawn(move || forward(c2, s2, Some(seen)));
            }
        });
        SniffingProxy { addr, requests }
    }

    /// A producer builder whose every connection goes through the proxy.
    fn builder(&self, props: &[(&str, &str)]) -> ProducerBuilder {
        let addr = self.addr;
        let mut b = Producer::builder()
            .set("bootstrap.servers", addr.to_string())
            .set("client.id", "std-kafka39-test")
            .resolver(move |_, _| Ok(vec![addr]));
        for (k, v) in props {
            b = b.set(*k, *v);
        }
        b
    }

    /// The versions the producer sent requests of `api_key` with, in order.
    fn versions(&self, api_key: i16) -> Vec<i16> {
        let requests = self.requests.lock().unwrap();
        requests
            .iter()
            .filter(|(k, _)| *k == api_key)
            .map(|(_, v)| *v)
            .collect()
    }
}

/// Every request of each `(api_key, name, version)` that passed `proxy` had that version, and
/// there was at least one.
fn assert_versions(proxy: &SniffingProxy, wanted: &[(i16, &str, i16)]) {
    for &(api, name, want) in wanted {
        let used = proxy.versions(api);
        assert!(!used.is_empty(), "no {name} request passed the proxy");
        assert!(
            used.iter().all(|v| *v == want),
            "{name}: versions sent {used:?}, want v{want}"
        );
    }
}

/// Copies `from` to `to`; with `seen`, splits the stream into size-prefixed frames and notes
/// each request's API key and version.
fn forward(mut from: TcpStream, mut to: TcpStream, seen: Option<Requests>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(seen) = &seen {
            pending.extend_from_slice(&buf[..n]);
            while pending.len() >= 8 {
                let size = i32::from_be_bytes(pending[..4].try_into().unwrap()) as usize;
                if pending.len() < 4 + size {
                    break;
                }
                let key = i16::from_be_bytes([pending[4], pending[5]]);
                let version = i16::from_be_bytes([pending[6], pending[7]]);
                seen.lock().unwrap().push((key, version));
                pending.drain(..4 + size);
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

/// Sends `records` through `p` to `topic` (created with `partitions`), closes it, and has
/// the judge read them back exactly, keyed records in Java's partition.
fn round_trip(c: &Cluster, p: Producer, topic: &str, partitions: u32, records: &[TestRecord]) {
    let metas = send_all(&p, topic, records);
    for (i, (r, m)) in records.iter().zip(&metas).enumerate() {
        assert_eq!(m.partition, murmur2_partition(r, partitions), "record {i}");
    }
    p.close(T);
    let judged = judge(c, topic);
    assert_read_back_exactly(records, &judged, |i| {
        murmur2_partition(&records[i], partitions)
    });
}

/// 3.9 lists Produce v0-11, Metadata v0-12, InitProducerId v0-5 and ApiVersions v0-4 (4.x
/// has Produce v12-13 and Metadata v13 beyond): the producer uses the highest of each that
/// both sides speak, and the broker stores the idempotent batches under one producer id.
#[test]
fn negotiates_the_highest_versions_both_sides_support() {
    init_log();
    let c = cluster();
    let topic = topic_name("std-k39-versions");
    c.create_topic(&topic, 2, 1, &[]);
    let proxy = SniffingProxy::start(&c.bootstrap);
    let p = proxy
        .builder(&[("acks", "all"), ("enable.idempotence", "true")])
        .build()
        .expect("producer");
    let records = keyed_records(39, 500, 50);
    round_trip(&c, p, &topic, 2, &records);
    assert_versions(
        &proxy,
        &[
            (API_VERSIONS, "ApiVersions", 4),
            (METADATA, "Metadata", 12),
            (INIT_PRODUCER_ID, "InitProducerId", 5),
            (PRODUCE, "Produce", 11),
        ],
    );
    // Idempotence as the broker stored it: one producer id, epoch 0, sequences from 0.
    let stored = oracle::stored_batches(&c, &topic, 2);
    let batches: Vec<_> = stored
        .iter()
        .flat_map(|a| a["batches"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(!batches.is_empty());
    let pid = batches[0]["producer_id"].as_i64().expect("producer_id");
    assert!(pid >= 0, "not idempotent: {}", batches[0]);
    for b in &batches {
        assert_eq!(b["producer_id"].as_i64(), Some(pid), "{b}");
        assert!(b["base_sequence"].as_i64().is_some_and(|s| s >= 0), "{b}");
    }
}

/// Transactions on 3.9 speak transaction version 1 (the cluster has not finalized
/// `transaction.version` 2): AddPartitionsToTxn before the partitions' first batches,
/// Produce v11 and EndTxn v4, and the epoch stays the same across transactions. A
/// read_committed reader sees the committed records and never the aborted ones.
#[test]
fn transactions_use_transaction_version_1() {
    init_log();
    let c = cluster();
    let topic = topic_name("std-k39-txn");
    c.create_topic(&topic, 3, 1, &[]);
    let proxy = SniffingProxy::start(&c.bootstrap);
    let p = proxy
        .builder(&[("transactional.id", topic.as_str()), ("linger.ms", "5")])
        .build()
        .expect("producer");
    p.init_transactions(T).unwrap();
    let send = |tag: &str, n: usize| {
        let futures: Vec<_> = (0..n)
            .map(|i| {
                let value = format!("{tag}-{i}");
                p.send(
                    &kafka_edge_std::ProducerRecord::new(&topic)
                        .key(format!("k{i}").as_bytes())
                        .value(value.as_bytes()),
                )
                .expect("accepted")
            })
            .collect();
        p.flush();
        assert!(
            futures
                .iter()
                .all(|f| f.try_result().is_some_and(|r| r.is_ok()))
        );
    };
    p.begin_transaction().unwrap();
    send("commit-a", 60);
    p.commit_transaction(T).unwrap();
    p.begin_transaction().unwrap();
    send("abort-b", 40);
    p.abort_transaction(T).unwrap();
    p.begin_transaction().unwrap();
    send("commit-c", 30);
    p.commit_transaction(T).unwrap();
    let counters = p.metrics().counters;
    p.close(T);
    assert!(counters.add_partitions_requests >= 3, "{counters:?}");
    assert_eq!(
        counters.producer_id_changes, 1,
        "no epoch bump: {counters:?}"
    );
    assert_versions(
        &proxy,
        &[
            (ADD_PARTITIONS_TO_TXN, "AddPartitionsToTxn", 3),
            (END_TXN, "EndTxn", 4),
            (PRODUCE, "Produce", 11),
        ],
    );
    assert_eq!(proxy.versions(END_TXN).len(), 3);
    let committed: std::collections::BTreeSet<String> =
        judge_isolation(&c, &topic, "read_committed")
            .into_iter()
            .map(|r| r.value.expect("a value"))
            .collect();
    let want: std::collections::BTreeSet<String> = (0..60)
        .map(|i| hex(format!("commit-a-{i}").as_bytes()))
        .chain((0..30).map(|i| hex(format!("commit-c-{i}").as_bytes())))
        .collect();
    assert_eq!(committed, want);
}

/// Keyed records with headers, idempotent with acks=all and plain with acks=1.
#[test]
fn idempotent_acks_all_and_acks_1_read_back_exactly() {
    init_log();
    let c = cluster();
    for (name, props) in [
        ("std-k39-idem", vec![("acks", "all")]),
        (
            "std-k39-acks1",
            vec![("acks", "1"), ("enable.idempotence", "false")],
        ),
    ] {
        let topic = topic_name(name);
        c.create_topic(&topic, 4, 1, &[]);
        let p = builder(&c, &props).build().expect("producer");
        round_trip(&c, p, &topic, 4, &keyed_records(40, 3000, 200));
    }
}

/// Keyed records with compressible values (text with some noise).
fn text_records(seed: u64, n: usize, value_len: usize) -> Vec<TestRecord> {
    let mut records = keyed_records(seed, n, 40);
    let mut rng = TestRng::new(seed);
    for r in &mut records {
        let text: Vec<u8> = (0..value_len)
            .map(|i| {
                if rng.below(32) == 0 {
                    b'a' + rng.below(26) as u8
                } else {
                    b"sensor=42 temperature=21.5 status=ok "[i % 37]
                }
            })
            .collect();
        r.value = Some(hex(&text));
    }
    records
}

/// gzip, snappy, lz4 and zstd (zstd needs Produce v7+, which 3.9 has): read back exactly,
/// and the batches the broker stored in our codec.
#[test]
fn each_codec_round_trips() {
    init_log();
    let c = cluster();
    let records = text_records(41, 1000, 120);
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = topic_name(&format!("std-k39-{codec}"));
        c.create_topic(&topic, 3, 1, &["compression.type=producer"]);
        let p = builder(&c, &[("compression.type", codec), ("linger.ms", "20")])
            .build()
            .expect("producer");
        round_trip(&c, p, &topic, 3, &records);
        let codecs = oracle::batch_codecs(&oracle::stored_batches(&c, &topic, 3));
        assert!(
            codecs.iter().all(|(name, _)| name == codec),
            "{codec}: {codecs:?}"
        );
        let stored: u64 = codecs.iter().map(|(_, n)| n).sum();
        assert_eq!(stored, records.len() as u64, "{codec}: records stored");
    }
}

/// SASL PLAIN and SCRAM-SHA-256 over SASL_PLAINTEXT, SCRAM-SHA-512 inside TLS (SASL_SSL),
/// and OAUTHBEARER with the unsecured token Kafka's default validator accepts: SaslHandshake
/// v1 and SaslAuthenticate v2, as on 4.x.
#[test]
fn sasl_plain_scram_and_oauthbearer_read_back_exactly() {
    init_log();
    let s = SecureBroker::of(Ground::Kafka39);
    let _ = cluster();
    let (user, password) = (s.var("SASL_USER"), s.var("SASL_PASSWORD"));
    let login = |module: &str| {
        format!(
            "org.apache.kafka.common.security.{module} required username=\"{user}\" \
             password=\"{password}\";"
        )
    };
    let oauth = format!(
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
         unsecuredLoginStringClaim_sub=\"{user}\";"
    );
    let principal = format!("principal={user}");
    let with_password = [("sasl.username", user), ("sasl.password", password)];
    let unsecured_jwt = [
        ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
        ("sasl.oauthbearer.config", principal.as_str()),
    ];
    for (listener, protocol, mechanism, jaas, credentials) in [
        (
            "SASL_PLAINTEXT",
            "SASL_PLAINTEXT",
            "PLAIN",
            login("plain.PlainLoginModule"),
            with_password,
        ),
        (
            "SASL_PLAINTEXT",
            "SASL_PLAINTEXT",
            "SCRAM-SHA-256",
            login("scram.ScramLoginModule"),
            with_password,
        ),
        (
            "SASL_SSL",
            "SASL_SSL",
            "SCRAM-SHA-512",
            login("scram.ScramLoginModule"),
            with_password,
        ),
        (
            "OAUTH",
            "SASL_PLAINTEXT",
            "OAUTHBEARER",
            oauth,
            unsecured_jwt,
        ),
    ] {
        let topic = topic_name(&format!("std-k39-{}", mechanism.to_lowercase()));
        s.cluster.create_topic(&topic, 1, 1, &[]);
        let bootstrap = s.var(&format!("BOOTSTRAP_{listener}"));
        // Without TLS, the proxy sees the SASL requests' versions.
        let proxy = (protocol == "SASL_PLAINTEXT").then(|| SniffingProxy::start(bootstrap));
        let mut b = match &proxy {
            Some(proxy) => proxy.builder(&[]),
            None => Producer::builder().set("bootstrap.servers", bootstrap),
        }
        .set("client.id", "std-kafka39-sasl")
        .set("security.protocol", protocol)
        .set("sasl.mechanism", mechanism)
        .set("sasl.jaas.config", &jaas);
        let mut judge_props = vec![
            ("bootstrap.servers", bootstrap),
            ("security.protocol", protocol),
            ("sasl.mechanisms", mechanism),
        ];
        judge_props.extend_from_slice(&credentials);
        if protocol == "SASL_SSL" {
            b = b
                .set("ssl.truststore.type", "PEM")
                .set("ssl.truststore.location", s.var("SSL_CA"));
            judge_props.push(("ssl.ca.location", s.var("SSL_CA")));
        }
        let p = b.build().unwrap_or_else(|e| panic!("{mechanism}: {e}"));
        let records = keyed_records(42, 300, 10);
        send_all(&p, &topic, &records);
        p.close(T);
        let judged = judge_with(&s.cluster, &topic, records.len(), &judge_props);
        assert_read_back_exactly(&records, &judged, |_| 0);
        for (api, name, want) in [
            (SASL_HANDSHAKE, "SaslHandshake", 1),
            (SASL_AUTHENTICATE, "SaslAuthenticate", 2),
        ] {
            let Some(proxy) = &proxy else { break };
            let used = proxy.versions(api);
            assert!(
                !used.is_empty(),
                "{mechanism}: no {name} request passed the proxy"
            );
            assert!(
                used.iter().all(|v| *v == want),
                "{mechanism}: {name} versions sent {used:?}, want v{want}"
            );
        }
    }
}
