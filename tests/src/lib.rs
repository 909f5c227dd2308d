//! Helpers shared by the integration tests: the test ground's brokers, the Java oracle and
//! the librdkafka judge, each reached through the project's own scripts (`scripts/kafka`,
//! `scripts/oracle`, `scripts/judge`).
//!
//! Clusters are started by `scripts/test` before the tests run and named to them through
//! environment variables that hold a `scripts/kafka` directory:
//! `KAFKA_EDGE_DIR_1` (one Apache Kafka node), `KAFKA_EDGE_DIR_3` (three nodes),
//! `KAFKA_EDGE_DIR_TANSU` and `KAFKA_EDGE_DIR_39` (one node of the older Kafka 3.9 line, with
//! secured listeners). A test whose cluster is missing fails with the command to start it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

pub mod drive;
pub mod model;
pub mod proxy;
pub mod sim;

/// The repository root (where `scripts/` lives).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

fn script(name: &str) -> Command {
    Command::new(repo_root().join("scripts").join(name))
}

fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(out.status.success(), "{what} failed with {}", out.status);
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{what}: output not UTF-8: {e}"))
}

/// Hex encoding used on every boundary with the oracle and the judge.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Inverse of [`hex`]; panics on malformed input (test helper).
pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("bad hex {s}: {e}"))
        })
        .collect()
}

/// The Python of the test ground's venv (confluent-kafka, kafka-python).
pub fn venv_python() -> Command {
    let cache = std::env::var("KAFKA_EDGE_CACHE").unwrap_or_else(|_| {
        format!(
            "{}/.cache/kafka-edge",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    Command::new(format!("{cache}/venv/bin/python"))
}

/// Runs `cmd` with `input` on stdin and returns its stdout lines; panics if it fails.
fn lines_through(mut cmd: Command, input: &str) -> Vec<String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("no stdin"));
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let _ = writer.join();
    assert!(out.status.success(), "{what} failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Reads batch bytes with kafka-python's `DefaultRecordBatch` (a second independent
/// implementation): `{"valid","crc_ok","records":[...]}` per batch.
pub fn kafka_python_verify(batches: &[Vec<u8>]) -> Vec<serde_json::Value> {
    let input: String = batches.iter().map(|b| format!("{}\n", hex(b))).collect();
    let mut cmd = venv_python();
    cmd.arg(repo_root().join("scripts/lib/pyverify.py"));
    let out = lines_through(cmd, &input);
    assert_eq!(out.len(), batches.len(), "pyverify: one answer per batch");
    out.iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("pyverify {l}: {e}")))
        .collect()
}

/// Which running cluster a test uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ground {
    /// One Apache Kafka node (combined broker and controller).
    Kafka1,
    /// Three Apache Kafka nodes (RF 3, `min.insync.replicas=2`).
    Kafka3,
    /// The tansu broker.
    Tansu,
    /// One Apache Kafka node of the older line pinned as `KAFKA_OLD_VERSION` (3.9), with the
    /// secured listeners of `scripts/kafka up --security`.
    Kafka39,
}

impl Ground {
    fn var(self) -> &'static str {
        match self {
            Ground::Kafka1 => "KAFKA_EDGE_DIR_1",
            Ground::Kafka3 => "KAFKA_EDGE_DIR_3",
            Ground::Tansu => "KAFKA_EDGE_DIR_TANSU",
            Ground::Kafka39 => "KAFKA_EDGE_DIR_39",
        }
    }
    fn up_args(self) -> &'static str {
        match self {
            Ground::Kafka1 => "--brokers 1",
            Ground::Kafka3 => "--brokers 3",
            Ground::Tansu => "--engine tansu",
            Ground::Kafka39 => "--old --security --brokers 1",
        }
    }
}

/// A cluster started by `scripts/kafka up`, read from its env file.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The `scripts/kafka` directory of the cluster.
    pub dir: PathBuf,
    /// `host:port[,host:port...]`.
    pub bootstrap: String,
    /// Number of brokers.
    pub brokers: usize,
    /// `kafka` or `tansu`.
    pub engine: String,
}

static KAFKA3_LOCK: Mutex<()> = Mutex::new(());

impl Cluster {
    /// The cluster the test ground started for `ground`; panics with the command to run when
    /// there is none.
    pub fn get(ground: Ground) -> Cluster {
        let dir = std::env::var_os(ground.var())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "{} is not set: run the tests through scripts/test, or start a cluster with \
                 `scripts/kafka up {} --dir D` and export {}=D",
                    ground.var(),
                    ground.up_args(),
                    ground.var()
                )
            });
        let env = std::fs::read_to_string(dir.join("env"))
            .unwrap_or_else(|e| panic!("{}: no env file in {}: {e}", ground.var(), dir.display()));
        let vars: HashMap<&str, &str> = env.lines().filter_map(|l| l.split_once('=')).collect();
        let get = |k: &str| {
            vars.get(k)
                .copied()
                .unwrap_or_else(|| panic!("{k} missing in {}/env", dir.display()))
                .to_string()
        };
        Cluster {
            bootstrap: get("BOOTSTRAP"),
            brokers: get("BROKERS").parse().unwrap_or(1),
            engine: get("ENGINE"),
            dir,
        }
    }

    /// The cluster of `ground`, waiting (up to five minutes) for `scripts/kafka up` to finish
    /// when the test ground is still starting it.
    pub fn wait(ground: Ground) -> Cluster {
        if let Some(dir) = std::env::var_os(ground.var()).map(PathBuf::from) {
            let _ = read_env_when_up(&dir);
        }
        Cluster::get(ground)
    }

    /// Serializes the tests that share the three-node cluster, since some kill brokers.
    pub fn exclusive(&self) -> MutexGuard<'static, ()> {
        KAFKA3_LOCK.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn kafka(&self, args: &[&str]) -> String {
        let mut cmd = script("kafka");
        cmd.args(args).arg("--dir").arg(&self.dir);
        run(cmd, &format!("scripts/kafka {}", args.join(" ")))
    }

    /// Creates a topic and waits until every partition has a leader.
    pub fn create_topic(&self, name: &str, partitions: u32, replication: u32, configs: &[&str]) {
        let p = partitions.to_string();
        let r = replication.to_string();
        let mut args = vec!["topic", name, "--partitions", &p, "--replication", &r];
        for c in configs {
            args.push("--config");
            args.push(c);
        }
        self.kafka(&args);
    }

    /// SIGKILLs broker `n` (1-based).
    pub fn kill(&self, n: usize) {
        self.kafka(&["kill", &n.to_string()]);
    }

    /// Stops broker `n` with SIGTERM (Kafka's controlled shutdown: its partitions get new
    /// leaders first) and waits until it has exited.
    pub fn stop(&self, n: usize) {
        self.kafka(&["stop", &n.to_string()]);
    }

    /// Restarts broker `n` and waits until it answers Metadata.
    pub fn start(&self, n: usize) {
        self.kafka(&["start", &n.to_string()]);
    }

    /// Waits until every partition of `topic` has all its replicas in sync again (after a
    /// broker was restarted), so that reads see settled leaders.
    pub fn wait_in_sync(&self, topic: &str) {
        self.kafka(&["insync", topic]);
    }

    /// The Apache Kafka version the cluster runs (`KAFKA_VERSION` of its env file; a cluster
    /// whose env file does not name one runs the default of `scripts/versions`).
    pub fn kafka_version(&self) -> Option<String> {
        let env = std::fs::read_to_string(self.dir.join("env"))
            .unwrap_or_else(|e| panic!("no env file in {}: {e}", self.dir.display()));
        env.lines()
            .find_map(|l| l.strip_prefix("KAFKA_VERSION="))
            .map(str::to_string)
    }

    /// Log file of broker `n`.
    pub fn log(&self, n: usize) -> PathBuf {
        self.dir.join(format!("node{n}")).join("server.log")
    }
}

/// `dir/env` of `scripts/kafka up` once it says the cluster is up (`UP_MS=`), waiting up to
/// five minutes; what it holds by then otherwise.
fn read_env_when_up(dir: &std::path::Path) -> String {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        let text = std::fs::read_to_string(dir.join("env")).unwrap_or_default();
        if text.contains("UP_MS=") || std::time::Instant::now() >= until {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The one-node broker with secured listeners (`scripts/kafka up --security`, named by
/// `KAFKA_EDGE_DIR_SECURE`): its cluster (the PLAINTEXT listener, for topics) and its env
/// file (`BOOTSTRAP_SSL`, `SSL_CA`, `SASL_USER`, ...).
#[derive(Debug, Clone)]
pub struct SecureBroker {
    /// The cluster, through its PLAINTEXT listener.
    pub cluster: Cluster,
    env: HashMap<String, String>,
}

impl SecureBroker {
    /// The secured broker of the test ground, waiting for it like [`Cluster::wait`].
    pub fn get() -> SecureBroker {
        Self::named_by("KAFKA_EDGE_DIR_SECURE", "--security")
    }

    /// The secured listeners of `ground`'s broker (one started with `--security`).
    pub fn of(ground: Ground) -> SecureBroker {
        Self::named_by(ground.var(), ground.up_args())
    }

    /// The secured broker with ACLs (`scripts/kafka up --security --acl`, named by
    /// `KAFKA_EDGE_DIR_ACL`), waiting for it like [`Cluster::wait`].
    pub fn get_acl() -> SecureBroker {
        let b = Self::named_by("KAFKA_EDGE_DIR_ACL", "--security --acl");
        assert_eq!(
            b.var("ACL"),
            "1",
            "{} was not started with --acl",
            b.cluster.dir.display()
        );
        b
    }

    fn named_by(var: &str, up_args: &str) -> SecureBroker {
        let dir = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
            panic!(
                "{var} is not set: run the tests through scripts/test, or start the broker with \
                 `scripts/kafka up {up_args} --dir D` and export {var}=D"
            )
        });
        let env: HashMap<String, String> = read_env_when_up(&dir)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches(['"', '\'']).to_string()))
            .collect();
        assert_eq!(
            env.get("SECURITY").map(String::as_str),
            Some("1"),
            "{} was not started with --security",
            dir.display()
        );
        let get = |k: &str| env.get(k).cloned().unwrap_or_default();
        let cluster = Cluster {
            bootstrap: get("BOOTSTRAP"),
            brokers: 1,
            engine: get("ENGINE"),
            dir,
        };
        SecureBroker { cluster, env }
    }

    /// A variable of the env file; panics naming it when it is missing.
    pub fn var(&self, k: &str) -> &str {
        self.env
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing in {}/env", self.cluster.dir.display()))
    }
}

/// A unique topic name for one test.
pub fn topic_name(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{test}-{}-{nanos}", std::process::id())
}

/// One record as the judge read it back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JudgedRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key (hex), `None` for a null key.
    pub key: Option<String>,
    /// Value (hex), `None` for a null value.
    pub value: Option<String>,
    /// Headers: name and value (hex or null).
    pub headers: Vec<(String, Option<String>)>,
    /// Timestamp in ms.
    pub timestamp: i64,
    /// `create` or `log_append`.
    pub timestamp_type: String,
}

/// Reads every record of `topic` back with librdkafka (`check.crcs=true`).
pub fn judge(cluster: &Cluster, topic: &str) -> Vec<JudgedRecord> {
    judge_expect(cluster, topic, 0)
}

/// Like [`judge`], but first waits (up to two minutes) until the topic holds at least
/// `expected` records: after a broker was killed, a new leader's high watermark can lag
/// behind what the old leader acknowledged for a moment.
pub fn judge_expect(cluster: &Cluster, topic: &str, expected: usize) -> Vec<JudgedRecord> {
    let mut cmd = script("judge");
    cmd.args([
        "--bootstrap",
        &cluster.bootstrap,
        "--topic",
        topic,
        "--timeout",
        "120",
    ]);
    cmd.args(["--expect", &expected.to_string()]);
    run(cmd, "scripts/judge")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("judge line {l}: {e}")))
        .collect()
}

/// Reads every record of `topic` back with librdkafka at `isolation.level` `isolation`
/// (`read_committed` or `read_uncommitted`): records of aborted transactions are skipped by
/// `read_committed`; offsets may have gaps (transaction markers). Every transaction on the
/// topic must have ended.
pub fn judge_isolation(cluster: &Cluster, topic: &str, isolation: &str) -> Vec<JudgedRecord> {
    let mut cmd = script("judge");
    cmd.args([
        "--bootstrap",
        &cluster.bootstrap,
        "--topic",
        topic,
        "--timeout",
        "120",
        "--isolation",
        isolation,
    ]);
    run(cmd, "scripts/judge")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("judge line {l}: {e}")))
        .collect()
}

/// Like [`judge_expect`], through a secured listener: `props` are librdkafka consumer
/// properties passed with `-X` (`security.protocol`, `ssl.ca.location`, ...), except
/// `bootstrap.servers`, which replaces the cluster's PLAINTEXT bootstrap.
pub fn judge_with(
    cluster: &Cluster,
    topic: &str,
    expected: usize,
    props: &[(&str, &str)],
) -> Vec<JudgedRecord> {
    let bootstrap = props
        .iter()
        .find(|(k, _)| *k == "bootstrap.servers")
        .map_or(cluster.bootstrap.as_str(), |(_, v)| v);
    let mut cmd = script("judge");
    cmd.args([
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--timeout",
        "120",
    ]);
    cmd.args(["--expect", &expected.to_string()]);
    for (k, v) in props.iter().filter(|(k, _)| *k != "bootstrap.servers") {
        cmd.arg("-X").arg(format!("{k}={v}"));
    }
    run(cmd, "scripts/judge")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("judge line {l}: {e}")))
        .collect()
}

/// A record as the tests describe it to the oracle (hex bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestRecord {
    /// Key (hex) or null.
    pub key: Option<String>,
    /// Value (hex) or null.
    pub value: Option<String>,
    /// Headers.
    pub headers: Vec<(String, Option<String>)>,
    /// Create timestamp (ms).
    pub timestamp: i64,
    /// Explicit partition, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
}

/// A deterministic pseudo-random generator for test data (xorshift64*).
#[derive(Debug, Clone)]
pub struct TestRng(u64);

impl TestRng {
    /// Seeded generator; seed 0 is mapped to a fixed non-zero state.
    pub fn new(seed: u64) -> Self {
        TestRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// `n` keyed records with headers, some null and empty values, increasing timestamps.
pub fn keyed_records(seed: u64, n: usize, distinct_keys: u64) -> Vec<TestRecord> {
    let mut rng = TestRng::new(seed);
    let t0 = 1_700_000_000_000_i64;
    (0..n)
        .map(|i| {
            let key = format!("key-{}", rng.below(distinct_keys));
            let value = match rng.below(50) {
                0 => None,
                1 => Some(String::new()),
                _ => {
                    let len = 1 + rng.below(200) as usize;
                    Some(hex(&rng.bytes(len)))
                }
            };
            let headers = (0..rng.below(3))
                .map(|h| {
                    let v = if rng.below(10) == 0 {
                        None
                    } else {
                        Some(hex(&rng.bytes(8)))
                    };
                    (format!("h{h}"), v)
                })
                .collect();
            TestRecord {
                key: Some(hex(key.as_bytes())),
                value,
                headers,
                timestamp: t0 + i as i64,
                partition: None,
            }
        })
        .collect()
}

/// The Java reference oracle (`scripts/oracle`).
pub mod oracle {
    use super::*;

    /// Outcome of one record sent by Java's `KafkaProducer`.
    #[derive(Debug, Clone, Deserialize)]
    pub struct PeerOutcome {
        /// Index of the record in the input.
        pub i: usize,
        /// Partition, on success.
        pub partition: Option<i32>,
        /// Offset, on success.
        pub offset: Option<i64>,
        /// Error text, on failure.
        pub error: Option<String>,
    }

    fn lines_through(args: &[&str], input: &str) -> Vec<String> {
        let mut cmd = script("oracle");
        cmd.args(args);
        super::lines_through(cmd, input)
    }

    /// RecordBatch v2 bytes exactly as Java's `MemoryRecordsBuilder` writes them, one per
    /// batch description (see `tests/oracle` for the JSON shape).
    pub fn batch(descriptions: &[serde_json::Value]) -> Vec<Vec<u8>> {
        let input: String = descriptions.iter().map(|d| format!("{d}\n")).collect();
        let out = lines_through(&["batch"], &input);
        assert_eq!(
            out.len(),
            descriptions.len(),
            "oracle batch: one answer per description"
        );
        out.iter().map(|l| unhex(l.trim())).collect()
    }

    /// Java's reading of batch bytes: `{"valid":bool,"batches":[...],"records":n}` per input.
    pub fn verify(batches: &[Vec<u8>]) -> Vec<serde_json::Value> {
        let input: String = batches.iter().map(|b| format!("{}\n", hex(b))).collect();
        let out = lines_through(&["verify"], &input);
        assert_eq!(
            out.len(),
            batches.len(),
            "oracle verify: one answer per batch"
        );
        out.iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("oracle verify {l}: {e}")))
            .collect()
    }

    /// Java's reading of the batches the one-node broker of `c` stored for `topic` (every
    /// partition's segments under `node1/data`, concatenated per partition): one `verify`
    /// answer per partition that has data.
    pub fn stored_batches(c: &Cluster, topic: &str, partitions: u32) -> Vec<serde_json::Value> {
        let mut segments = Vec::new();
        for p in 0..partitions {
            let dir: PathBuf = c.dir.join("node1/data").join(format!("{topic}-{p}"));
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "log"))
                .collect();
            files.sort();
            let bytes: Vec<u8> = files
                .iter()
                .flat_map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
                .collect();
            if !bytes.is_empty() {
                segments.push(bytes);
            }
        }
        assert!(!segments.is_empty(), "no stored batches for {topic}");
        let answers = verify(&segments);
        for a in &answers {
            assert_eq!(a["valid"], true, "Java could not read a stored batch: {a}");
        }
        answers
    }

    /// `(codec, record count)` of every stored batch.
    pub fn batch_codecs(answers: &[serde_json::Value]) -> Vec<(String, u64)> {
        answers
            .iter()
            .flat_map(|a| a["batches"].as_array().cloned().unwrap_or_default())
            .map(|b| {
                (
                    b["compression"].as_str().unwrap_or("?").to_string(),
                    b["records"].as_array().map_or(0, |r| r.len() as u64),
                )
            })
            .collect()
    }

    /// A property of Java's `ProducerConfig.configDef()`.
    #[derive(Debug, Clone, Deserialize)]
    pub struct JavaConfigKey {
        /// The property's name.
        pub name: String,
        /// Its type (`INT`, `LONG`, `STRING`, `LIST`, `CLASS`, `PASSWORD`, ...).
        #[serde(rename = "type")]
        pub kind: String,
        /// Its default in Java's string form (`None`: no default, or null).
        pub default: Option<String>,
        /// Whether it has a default (null counts as one).
        pub has_default: bool,
        /// Java's validator, as Java prints it (`[0,...]`, `[all, -1, 0, 1]`).
        pub validator: Option<String>,
    }

    /// Every property of Java's producer configuration.
    pub fn producer_config() -> Vec<JavaConfigKey> {
        lines_through(&["config"], "")
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("oracle config {l}: {e}")))
            .collect()
    }

    /// For each `(key, value)`: `Ok(())` when Java's `ProducerConfig` takes it (the rest at
    /// their defaults), else Java's message.
    pub fn producer_config_check(pairs: &[(String, String)]) -> Vec<Result<(), String>> {
        let input: String = pairs
            .iter()
            .map(|(k, v)| format!("{}\n", serde_json::json!({"key": k, "value": v})))
            .collect();
        let out = lines_through(&["config-check"], &input);
        assert_eq!(
            out.len(),
            pairs.len(),
            "oracle config-check: one answer per line"
        );
        out.iter()
            .map(|l| match l.strip_prefix("refused: ") {
                Some(why) => Err(why.to_string()),
                None if l == "ok" => Ok(()),
                None => panic!("oracle config-check: {l}"),
            })
            .collect()
    }

    /// Java's `KafkaProducer` sends `count` records (key `i`, value `topic-i`) to `topic`
    /// with `props` and stops at the first error: its summary (`acked`, `errors`,
    /// `error_class`, `error`, `ms`, ...; see `tests/oracle`).
    pub fn produce_summary(
        bootstrap: &str,
        topic: &str,
        count: usize,
        props: &[(&str, &str)],
    ) -> serde_json::Value {
        let mut cmd = script("oracle");
        cmd.args(["produce", "--bootstrap", bootstrap, "--topic", topic])
            .args(["--count", &count.to_string()]);
        for (k, v) in props {
            cmd.arg("-X").arg(format!("{k}={v}"));
        }
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("oracle produce: cannot run: {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| panic!("oracle produce: {e}: {text}"))
    }

    /// Java's `ProducerPerformance` (kafka-producer-perf-test) with `args`: its output.
    pub fn perf(args: &[&str]) -> String {
        let mut cmd = script("oracle");
        cmd.arg("perf").args(args);
        run(cmd, "oracle perf")
    }

    /// Sets (or, with `None`, removes) the broker quota `producer_byte_rate` of `client_id`,
    /// through Java's `Admin`.
    pub fn set_producer_byte_rate(bootstrap: &str, client_id: &str, rate: Option<u64>) {
        let rate = rate.map_or_else(|| "-".to_string(), |r| r.to_string());
        let out = lines_through(&["client-quota", bootstrap, client_id, &rate], "");
        assert_eq!(out, ["ok"], "oracle client-quota");
    }

    /// Java's transactional `KafkaProducer` runs `steps` (`"commit:300,abort:200,..."`: per
    /// step a transaction of N records, key `k{i}`, value `{commit|abort}-{a,b,..}-{i}`,
    /// flushed then committed or aborted) on `topic`: its summary (`committed`, `aborted`).
    pub fn transactions(
        bootstrap: &str,
        topic: &str,
        steps: &str,
        props: &[(&str, &str)],
    ) -> serde_json::Value {
        let mut cmd = script("oracle");
        cmd.args(["txn", "--bootstrap", bootstrap, "--topic", topic])
            .args(["--steps", steps]);
        for (k, v) in props {
            cmd.arg("-X").arg(format!("{k}={v}"));
        }
        let out = cmd
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("oracle txn: cannot run: {e}"));
        assert!(out.status.success(), "oracle txn failed: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| panic!("oracle txn: {e}: {text}"))
    }

    /// Java's `Utils.murmur2` and `toPositive(h) % partitions` for each key.
    pub fn murmur2(keys: &[Vec<u8>], partitions: u32) -> Vec<(i32, u32)> {
        let input: String = keys.iter().map(|k| format!("{}\n", hex(k))).collect();
        let out = lines_through(&["murmur2", &partitions.to_string()], &input);
        assert_eq!(out.len(), keys.len(), "oracle murmur2: one answer per key");
        out.iter()
            .map(|l| {
                let (h, p) = l
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("oracle murmur2: {l}"));
                (
                    h.parse().unwrap_or_else(|e| panic!("{l}: {e}")),
                    p.parse().unwrap_or_else(|e| panic!("{l}: {e}")),
                )
            })
            .collect()
    }

    /// A peer producer in its own process, fed record by record so a test can act mid-run:
    /// Java's own `KafkaProducer` (the oracle) or kafka-python's.
    pub struct PeerProducer {
        child: Child,
        stdin: Option<ChildStdin>,
        reader: Option<JoinHandle<Vec<PeerOutcome>>>,
    }

    impl PeerProducer {
        /// Starts Java's producer for `topic` with Kafka properties `props` (`key=value`).
        pub fn start(bootstrap: &str, topic: &str, props: &[&str]) -> PeerProducer {
            let mut cmd = script("oracle");
            cmd.arg("produce").arg(bootstrap).arg(topic).args(props);
            Self::spawn(cmd)
        }

        /// Starts kafka-python's producer (a third implementation) with the same contract;
        /// for brokers that Java's client cannot talk to.
        pub fn start_kafka_python(bootstrap: &str, topic: &str, props: &[&str]) -> PeerProducer {
            let cache = std::env::var("KAFKA_EDGE_CACHE").unwrap_or_else(|_| {
                format!(
                    "{}/.cache/kafka-edge",
                    std::env::var("HOME").unwrap_or_default()
                )
            });
            let mut cmd = Command::new(format!("{cache}/venv/bin/python"));
            cmd.arg(repo_root().join("scripts/lib/pyproduce.py"))
                .arg(bootstrap)
                .arg(topic)
                .args(props);
            Self::spawn(cmd)
        }

        fn spawn(mut cmd: Command) -> PeerProducer {
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|e| panic!("peer producer: {e}"));
            let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
            let reader = std::thread::spawn(move || {
                BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                    .map(|l| {
                        serde_json::from_str(&l).unwrap_or_else(|e| panic!("outcome {l}: {e}"))
                    })
                    .collect()
            });
            PeerProducer {
                stdin: child.stdin.take(),
                child,
                reader: Some(reader),
            }
        }

        /// Hands records to the producer (it sends them as they arrive).
        pub fn send(&mut self, records: &[TestRecord]) {
            let stdin = self
                .stdin
                .as_mut()
                .unwrap_or_else(|| panic!("producer closed"));
            let mut buf = String::new();
            for r in records {
                buf.push_str(&serde_json::to_string(r).unwrap_or_default());
                buf.push('\n');
            }
            stdin
                .write_all(buf.as_bytes())
                .unwrap_or_else(|e| panic!("oracle produce stdin: {e}"));
            stdin
                .flush()
                .unwrap_or_else(|e| panic!("oracle produce stdin: {e}"));
        }

        /// Flushes, closes and returns every record's outcome in input order.
        pub fn finish(mut self) -> Vec<PeerOutcome> {
            drop(self.stdin.take());
            let outcomes = self
                .reader
                .take()
                .map(|r| r.join().unwrap_or_default())
                .unwrap_or_default();
            let status = self
                .child
                .wait()
                .unwrap_or_else(|e| panic!("oracle produce: {e}"));
            let errors: Vec<_> = outcomes
                .iter()
                .filter(|o| o.error.is_some())
                .take(5)
                .collect();
            assert!(
                status.success() && errors.is_empty(),
                "peer producer failed ({status}): {errors:?}"
            );
            outcomes
        }
    }

    /// Sends all `records` with Java's `KafkaProducer` and returns their outcomes.
    pub fn produce(
        bootstrap: &str,
        topic: &str,
        props: &[&str],
        records: &[TestRecord],
    ) -> Vec<PeerOutcome> {
        let mut p = PeerProducer::start(bootstrap, topic, props);
        p.send(records);
        p.finish()
    }
}

/// Asserts that `judged` holds exactly `sent`, each record once, in send order within each
/// partition, in the partition `expected_partition(i)` names, with key, value, headers and
/// timestamp intact. Returns the number of records per partition.
pub fn assert_read_back_exactly(
    sent: &[TestRecord],
    judged: &[JudgedRecord],
    expected_partition: impl Fn(usize) -> i32,
) -> HashMap<i32, usize> {
    if judged.len() != sent.len() {
        // Say what differs: records missing, or records written more than once.
        let mut count: HashMap<(&Option<String>, &Option<String>, i64), i64> = HashMap::new();
        for s in sent {
            *count.entry((&s.key, &s.value, s.timestamp)).or_default() += 1;
        }
        for j in judged {
            *count.entry((&j.key, &j.value, j.timestamp)).or_default() -= 1;
        }
        let missing = count.values().filter(|v| **v > 0).count();
        let extra = count.values().filter(|v| **v < 0).count();
        panic!(
            "read back {} records, sent {}: {missing} sent records missing, {extra} read back more \
             often than sent",
            judged.len(),
            sent.len()
        );
    }
    let mut per_partition: HashMap<i32, Vec<&JudgedRecord>> = HashMap::new();
    for r in judged {
        per_partition.entry(r.partition).or_default().push(r);
    }
    let mut next: HashMap<i32, usize> = HashMap::new();
    for (i, s) in sent.iter().enumerate() {
        let p = expected_partition(i);
        let list = per_partition
            .get(&p)
            .unwrap_or_else(|| panic!("record {i}: partition {p} is empty"));
        let at = next.entry(p).or_insert(0);
        let got = list.get(*at).unwrap_or_else(|| {
            panic!(
                "record {i}: partition {p} holds only {} records",
                list.len()
            )
        });
        *at += 1;
        assert_eq!(got.key, s.key, "record {i}: key");
        assert_eq!(got.value, s.value, "record {i}: value");
        assert_eq!(got.headers, s.headers, "record {i}: headers");
        assert_eq!(got.timestamp, s.timestamp, "record {i}: timestamp");
        assert_eq!(got.timestamp_type, "create", "record {i}: timestamp type");
    }
    per_partition
        .into_iter()
        .map(|(p, v)| (p, v.len()))
        .collect()
}

/// Installs, once per test binary, a logger that writes the producers' logs to stderr with
/// a millisecond wall-clock stamp (to line them up with the fault proxy's events) and the
/// thread. Level from `KAFKA_EDGE_LOG`, else `RUST_LOG` (`trace`, `debug`, `info`,
/// `error`; default `warn`).
pub fn init_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let var = std::env::var("KAFKA_EDGE_LOG").or_else(|_| std::env::var("RUST_LOG"));
        let level = match var.as_deref() {
            Ok("trace") => log::LevelFilter::Trace,
            Ok("debug") => log::LevelFilter::Debug,
            Ok("info") => log::LevelFilter::Info,
            Ok("error") => log::LevelFilter::Error,
            _ => log::LevelFilter::Warn,
        };
        let _ = log::set_logger(&LOGGER);
        log::set_max_level(level);
    });
}

struct StderrLogger;
static LOGGER: StderrLogger = StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        eprintln!(
            "{} {} [{}] {}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
            record.level(),
            std::thread::current().name().unwrap_or("?"),
            record.args()
        );
    }
    fn flush(&self) {}
}
