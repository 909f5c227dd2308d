//! `kafka-edge-demo`: the main job of the README, run by `scripts/demo`.
//!
//! 1. Without `--bootstrap`, starts a local one-node Apache Kafka (KRaft) with
//!    `scripts/kafka up --dir <tmp>`, and stops it at the end, also after an error or Ctrl-C.
//! 2. Creates a fresh topic `demo-<time>` (6 partitions) with `scripts/kafka topic`.
//! 3. Produces `--records` (default 1,000,000) records with keys (`key-<i>`, so Java's murmur2
//!    partitioner spreads them) and 100-byte values that differ for every record, with a
//!    progress bar; every record's delivery report (partition, offset, latency) is kept.
//! 4. Has the independent judge (librdkafka, `check.crcs=true`) read the whole topic back
//!    with `scripts/judge --digest`, which prints per partition the record count and a
//!    SHA-256 over the records in offset order, and compares it exactly with the same digest
//!    computed from what was sent, placed at the partition and offset of each delivery
//!    report. Any difference is reported per partition and the exit status is 1.
//! 5. Prints throughput (records/s, MB/s of values), delivery-latency percentiles, the
//!    client's CPU seconds and peak RSS.
//!
//! ```text
//! kafka-edge-demo [--bootstrap host:port] [--records N] [--partitions P] [-X key=value]...
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use kafka_edge_examples::{
    LatencySummary, ProcessUsage, RecordDigest, TopicDigest, parse_judge_digest, parse_property,
};
use kafka_edge_std::{Producer, ProducerRecord};

#[derive(Parser, Debug)]
#[command(
    name = "kafka-edge-demo",
    about = "Produce a million records with kafka-edge, read them back with librdkafka, check every byte"
)]
struct Args {
    /// Use this cluster instead of starting a local Apache Kafka.
    #[arg(long)]
    bootstrap: Option<String>,
    /// Records to produce.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Partitions of the demo topic.
    #[arg(long, default_value_t = 6)]
    partitions: u32,
    /// Size of each value in bytes (at least 16).
    #[arg(long = "value-size", default_value_t = 100)]
    value_size: usize,
    /// Producer properties `name=value` (repeatable), over the demo's `linger.ms=5`.
    #[arg(short = 'X', long = "property", value_parser = parse_property)]
    properties: Vec<(String, String)>,
    /// The project's scripts/ directory (default: the one beside this crate).
    #[arg(long, env = "KAFKA_EDGE_SCRIPTS")]
    scripts: Option<PathBuf>,
}

/// The cluster directory to tear down (`scripts/kafka down`) and remove at exit, shared
/// with the Ctrl-C handler so that exactly one of them does it.
static CLEANUP: Mutex<Option<Cleanup>> = Mutex::new(None);

struct Cleanup {
    scripts: PathBuf,
    dir: PathBuf,
    /// Whether a broker of ours runs there (else the directory only holds an env file).
    broker: bool,
}

fn cleanup() {
    let job = CLEANUP.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(c) = job {
        if c.broker {
            eprintln!("== stopping the local Kafka");
            let _ = Command::new(c.scripts.join("kafka"))
                .arg("down")
                .arg("--dir")
                .arg(&c.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&c.dir);
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = ctrlc::set_handler(|| {
        eprintln!("\n== interrupted");
        cleanup();
        std::process::exit(130);
    }) {
        eprintln!("kafka-edge-demo: no Ctrl-C handler: {e}");
    }
    let result = run(&args);
    cleanup();
    match result {
        Ok(()) => {}
        Err(e) => {
            eprintln!("!! {e}");
            std::process::exit(1);
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Runs a command, returning its standard output; its standard error goes to ours.
fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stderr(Stdio::inherit()).output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed ({})", out.status).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The key of record `i`.
fn key_of(i: u64, buf: &mut Vec<u8>) {
    use std::io::Write as _;
    buf.clear();
    let _ = write!(buf, "key-{i}");
}

/// The value of record `i`: its number in 16 digits, then letters from a generator seeded
/// with it, so that every value differs and a swapped or corrupted one shows.
fn value_of(i: u64, buf: &mut [u8]) {
    let digits = format!("{i:016}");
    let n = digits.len().min(buf.len());
    buf[..n].copy_from_slice(&digits.as_bytes()[..n]);
    // splitmix64 seeds a xorshift per record.
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    x |= 1;
    for chunk in buf[n..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for (j, b) in chunk.iter_mut().enumerate() {
            *b = b'a' + (((x >> (j * 8)) & 0xff) * 26 / 256) as u8;
        }
    }
}

/// What the delivery callbacks record, indexed by record number.
struct Deliveries {
    partition: Vec<AtomicI32>,
    offset: Vec<AtomicI64>,
    latency_us: Vec<AtomicU32>,
    delivered: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<Vec<String>>,
}

fn run(args: &Args) -> Result<()> {
    let scripts = args
        .scripts
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts"));
    let scripts = scripts.canonicalize().map_err(|e| {
        format!(
            "scripts directory {}: {e} (pass --scripts)",
            scripts.display()
        )
    })?;
    if args.value_size < 16 {
        return Err("--value-size must be at least 16".into());
    }
    let dir = std::env::temp_dir().join(format!("kafka-edge-demo.{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let bootstrap = match &args.bootstrap {
        Some(b) => {
            // `scripts/kafka topic` finds the cluster through DIR/env.
            std::fs::write(dir.join("env"), format!("BOOTSTRAP={b}\n"))?;
            *CLEANUP.lock().unwrap_or_else(|e| e.into_inner()) = Some(Cleanup {
                scripts: scripts.clone(),
                dir: dir.clone(),
                broker: false,
            });
            b.clone()
        }
        None => {
            *CLEANUP.lock().unwrap_or_else(|e| e.into_inner()) = Some(Cleanup {
                scripts: scripts.clone(),
                dir: dir.clone(),
                broker: true,
            });
            println!(
                "== starting a local Apache Kafka (KRaft, one node) in {}",
                dir.display()
            );
            let out = output(
                Command::new(scripts.join("kafka"))
                    .arg("up")
                    .arg("--dir")
                    .arg(&dir),
            )?;
            out.lines()
                .find_map(|l| l.strip_prefix("BOOTSTRAP="))
                .ok_or("scripts/kafka up printed no BOOTSTRAP=")?
                .to_string()
        }
    };
    let topic = format!(
        "demo-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
    );
    print!(
        "{}",
        output(
            Command::new(scripts.join("kafka"))
                .args(["topic", &topic, "--partitions"])
                .arg(args.partitions.to_string())
                .args(["--replication", "1", "--dir"])
                .arg(&dir),
        )?
    );
    println!(
        "== bootstrap {bootstrap}, topic {topic} ({} partitions)",
        args.partitions
    );

    let records = args.records;
    let n = usize::try_from(records)?;
    let mut builder = Producer::builder()
        .set("bootstrap.servers", &bootstrap)
        .set("client.id", "kafka-edge-demo")
        .set("linger.ms", 5);
    for (k, v) in &args.properties {
        builder = builder.set(k, v);
    }
    let producer = builder.build()?;
    let settings = {
        let mut s = String::from("linger.ms=5 (defaults: acks=all, enable.idempotence=true)");
        for (k, v) in &args.properties {
            s.push_str(&format!(" {k}={v}"));
        }
        s
    };
    println!(
        "== producing {records} records (keys key-<i>, {}-byte values) with kafka-edge: {settings}",
        args.value_size
    );

    let log: &'static Deliveries = Box::leak(Box::new(Deliveries {
        partition: (0..n).map(|_| AtomicI32::new(-1)).collect(),
        offset: (0..n).map(|_| AtomicI64::new(-1)).collect(),
        latency_us: (0..n).map(|_| AtomicU32::new(0)).collect(),
        delivered: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        errors: Mutex::new(Vec::new()),
    }));
    let bar = ProgressBar::new(records).with_style(
        ProgressStyle::with_template(
            "   {bar:40.cyan/blue} {pos:>9}/{len} acknowledged  {per_sec:>14}  {elapsed_precise}",
        )?
        .progress_chars("=> "),
    );
    let ticker = {
        let bar = bar.clone();
        std::thread::spawn(move || {
            loop {
                let done =
                    log.delivered.load(Ordering::Relaxed) + log.failed.load(Ordering::Relaxed);
                bar.set_position(done);
                if done >= records || bar.is_finished() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let usage0 = ProcessUsage::now();
    let start = Instant::now();
    let mut key = Vec::with_capacity(32);
    let mut value = vec![0u8; args.value_size];
    let mut send_errors = 0u64;
    for i in 0..records {
        key_of(i, &mut key);
        value_of(i, &mut value);
        let sent_at = Instant::now();
        let idx = i as usize;
        let record = ProducerRecord::new(&topic).key(&key).value(&value);
        let result = producer.send_with_callback(&record, move |r| {
            let us = u32::try_from(sent_at.elapsed().as_micros()).unwrap_or(u32::MAX);
            match r {
                Ok(meta) => {
                    log.partition[idx].store(meta.partition, Ordering::Relaxed);
                    log.offset[idx].store(meta.offset, Ordering::Relaxed);
                    log.latency_us[idx].store(us, Ordering::Relaxed);
                    log.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    let mut errors = log.errors.lock().unwrap_or_else(|e| e.into_inner());
                    if errors.len() < 10 {
                        errors.push(format!("record {idx}: {e}"));
                    }
                    log.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        if let Err(e) = result {
            send_errors += 1;
            if send_errors <= 10 {
                bar.println(format!("!! record {i} not accepted: {e}"));
            }
        }
    }
    producer.flush();
    let elapsed = start.elapsed();
    let usage = ProcessUsage::now().since(&usage0);
    bar.finish();
    let _ = ticker.join();
    producer.close(Duration::from_secs(30));

    let delivered = log.delivered.load(Ordering::Relaxed);
    let failed = log.failed.load(Ordering::Relaxed) + send_errors;
    let secs = elapsed.as_secs_f64();
    println!(
        "   {delivered} delivered, {failed} failed in {secs:.2} s: {:.0} records/s, {:.1} MB/s of values",
        delivered as f64 / secs,
        delivered as f64 * args.value_size as f64 / secs / 1e6
    );
    let latencies: Vec<u32> = log
        .latency_us
        .iter()
        .zip(&log.partition)
        .filter(|(_, p)| p.load(Ordering::Relaxed) >= 0)
        .map(|(l, _)| l.load(Ordering::Relaxed))
        .collect();
    let lat = LatencySummary::of(&latencies);
    println!("   delivery latency (send to ack): {}", lat.line());
    println!(
        "   {} (whole process; the demo's own delivery log of {records} records is {:.0} MiB of it)",
        usage.line(records),
        (n * 12) as f64 / (1024.0 * 1024.0)
    );
    for e in log.errors.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        println!("!! {e}");
    }

    println!("== reading back with the librdkafka judge (check.crcs=true), digest per partition");
    let t0 = Instant::now();
    let judged = output(
        Command::new(scripts.join("judge"))
            .args(["--bootstrap", &bootstrap, "--topic", &topic, "--digest"])
            .args(["--timeout", "900"]),
    )?;
    let judged = parse_judge_digest(&judged)?;
    let read: u64 = judged.values().map(|(c, _)| c).sum();
    println!(
        "   the judge read {read} records in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let expected = expected_digest(log, records, args.value_size)?;
    let mut ok = failed == 0 && delivered == records;
    println!(
        "   partition    records  sha256 (judge)                                                    "
    );
    let parts: std::collections::BTreeSet<i32> =
        judged.keys().chain(expected.keys()).copied().collect();
    for p in parts {
        // A partition without records has the digest of nothing on both sides.
        let empty = || RecordDigest::default().finish();
        let want = expected.get(&p).cloned().unwrap_or_else(empty);
        let got = judged.get(&p).cloned().unwrap_or_else(empty);
        let same = want == got;
        ok &= same;
        println!(
            "   {p:>9} {:>10}  {}  {}",
            got.0,
            got.1,
            if same {
                "= sent".to_string()
            } else {
                format!("!! sent {} records, sha256 {}", want.0, want.1)
            }
        );
    }
    if !ok {
        return Err(format!(
            "MISMATCH: {delivered} of {records} records delivered ({failed} failed); the judge read {read}; see the partitions marked !!"
        )
        .into());
    }
    println!(
        "== ok: all {records} records read back by librdkafka, byte for byte, at the partition and offset kafka-edge reported"
    );
    Ok(())
}

/// The digest of what was sent: the records of each partition in the order of the offsets
/// their delivery reports gave. Checks that offsets of a partition are 0, 1, 2, ... first.
fn expected_digest(log: &Deliveries, records: u64, value_size: usize) -> Result<TopicDigest> {
    let mut placed: Vec<(i32, i64, u64)> = (0..records)
        .filter_map(|i| {
            let p = log.partition[i as usize].load(Ordering::Relaxed);
            (p >= 0).then(|| (p, log.offset[i as usize].load(Ordering::Relaxed), i))
        })
        .collect();
    placed.sort_unstable();
    let mut digests: std::collections::BTreeMap<i32, RecordDigest> = Default::default();
    let mut key = Vec::with_capacity(32);
    let mut value = vec![0u8; value_size];
    let mut next: (i32, i64) = (-1, 0);
    for &(p, offset, i) in &placed {
        if p != next.0 {
            next = (p, 0);
        }
        if offset != next.1 {
            println!(
                "!! partition {p}: record {i} was reported at offset {offset}, expected {}",
                next.1
            );
        }
        next.1 = offset + 1;
        key_of(i, &mut key);
        value_of(i, &mut value);
        digests
            .entry(p)
            .or_default()
            .update(Some(&key), Some(&value));
    }
    Ok(digests.into_iter().map(|(p, d)| (p, d.finish())).collect())
}
