//! The firmware (`examples/firmware`: the async driver over embassy-net on an emulated
//! Cortex-M4F's LAN9118) under `qemu-system-arm`, producing to the test ground's one-node
//! Apache Kafka through `scripts/firmware` (QEMU's restricted user network, one forwarded
//! port). Every reading is read back by the librdkafka judge and compared exactly; a second
//! run SIGKILLs and restarts the broker mid-run.

#[path = "../../examples/firmware/src/readings.rs"]
#[allow(dead_code, unreachable_pub)]
mod readings;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::num::NonZeroU32;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_edge_core::partition_for_key;
use kafka_edge_tests::{Cluster, Ground, JudgedRecord, hex, judge_expect, repo_root, topic_name};
use readings::{HEADER_SEQ, HEADER_UNIT, Reading};

/// The runs share the one-node broker, and one of them kills it.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const SENSORS: u32 = 16;
const PARTITIONS: u32 = 6;

fn cluster() -> Cluster {
    Cluster::wait(Ground::Kafka1)
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs the firmware with `args`; `on_line` sees each line it prints. Returns its exit
/// status and its output.
fn run_firmware(c: &Cluster, args: &[String], mut on_line: impl FnMut(&str)) -> (i32, String) {
    let mut child = Command::new(repo_root().join("scripts/firmware"))
        .arg("--dir")
        .arg(&c.dir)
        .args(["--timeout", "300", "--"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("scripts/firmware");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut output = String::new();
    for line in rx {
        on_line(&line);
        output.push_str(&line);
        output.push('\n');
    }
    reader.join().expect("reader");
    let status = child.wait().expect("wait").code().unwrap_or(-1);
    (status, output)
}

/// Asserts that `judged` holds readings `0..count` exactly once each, with their bytes,
/// in their sensor's murmur2 partition, in order per partition, stamped between `from_ms`
/// and `to_ms`.
fn assert_readings(judged: &[JudgedRecord], count: u32, from_ms: i64, to_ms: i64) {
    assert_eq!(judged.len(), count as usize, "records read back");
    let mut by_value: HashMap<&str, &JudgedRecord> = HashMap::new();
    for j in judged {
        let value = j.value.as_deref().expect("a value");
        assert!(
            by_value.insert(value, j).is_none(),
            "a reading read back twice: {j:?}"
        );
    }
    let mut last_offset: HashMap<i32, i64> = HashMap::new();
    for seq in 0..count {
        let r = Reading::new(seq, SENSORS);
        let j = by_value
            .get(hex(r.value()).as_str())
            .unwrap_or_else(|| panic!("reading {seq} missing"));
        assert_eq!(
            j.key.as_deref(),
            Some(hex(r.key()).as_str()),
            "reading {seq}: key"
        );
        let p = partition_for_key(r.key(), NonZeroU32::new(PARTITIONS).expect("> 0"));
        assert_eq!(j.partition, p, "reading {seq}: murmur2 partition");
        assert_eq!(
            j.headers,
            vec![
                (HEADER_UNIT.0.to_string(), Some(hex(HEADER_UNIT.1))),
                (HEADER_SEQ.to_string(), Some(hex(r.seq()))),
            ],
            "reading {seq}: headers"
        );
        assert_eq!(j.timestamp_type, "create");
        assert!(
            (from_ms..=to_ms).contains(&j.timestamp),
            "reading {seq}: timestamp {} not in {from_ms}..={to_ms}",
            j.timestamp
        );
        // One sensor's readings keep their order in its partition.
        let last = last_offset.entry(j.partition).or_insert(-1);
        assert!(
            j.offset > *last,
            "reading {seq}: out of order in partition {p}"
        );
        *last = j.offset;
    }
}

#[test]
fn firmware_produces_every_reading_exactly_once() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let c = cluster();
    let topic = topic_name("firmware");
    c.create_topic(&topic, PARTITIONS, 1, &[]);
    let count = 20_000;
    // SYS_TIME has whole seconds: the firmware's wall clock may run up to 1 s behind.
    let from = unix_ms() - 2_000;
    let (status, out) = run_firmware(
        &c,
        &[
            format!("topic={topic}"),
            format!("count={count}"),
            format!("sensors={SENSORS}"),
        ],
        |_| {},
    );
    let to = unix_ms() + 1_000;
    assert_eq!(status, 0, "firmware failed:\n{out}");
    assert!(
        out.contains(&format!("{count} delivered, 0 failed")),
        "firmware output:\n{out}"
    );
    let judged = judge_expect(&c, &topic, count as usize);
    assert_readings(&judged, count, from, to);
}

#[test]
fn firmware_survives_a_broker_kill_and_restart() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let c = cluster();
    let topic = topic_name("firmware-kill");
    c.create_topic(&topic, PARTITIONS, 1, &[]);
    // 10 s of readings at 3000/s: the broker goes down after 6000 and comes back a few
    // seconds later, while readings keep coming.
    let count = 30_000;
    let from = unix_ms() - 2_000;
    let mut killed = false;
    let (status, out) = run_firmware(
        &c,
        &[
            format!("topic={topic}"),
            format!("count={count}"),
            format!("sensors={SENSORS}"),
            "rate=3000".to_string(),
            "progress=1000".to_string(),
        ],
        |line| {
            if !killed && line.contains("progress: 6000 accepted") {
                killed = true;
                c.kill(1);
                std::thread::sleep(Duration::from_secs(1));
                c.start(1);
            }
        },
    );
    let to = unix_ms() + 1_000;
    assert!(killed, "the run ended before the broker was killed:\n{out}");
    assert_eq!(status, 0, "firmware failed:\n{out}");
    assert!(
        out.contains(&format!("{count} delivered, 0 failed")),
        "firmware output:\n{out}"
    );
    let judged = judge_expect(&c, &topic, count as usize);
    assert_readings(&judged, count, from, to);
}
