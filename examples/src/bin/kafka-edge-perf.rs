//! `kafka-edge-perf`: kafka-edge's peer of Java's `ProducerPerformance`
//! (`kafka-producer-perf-test`), with the same options and the same output.
//!
//! ```text
//! kafka-edge-perf --bootstrap-server 127.0.0.1:9092 --topic t --num-records 1000000 \
//!     --record-size 100 --throughput -1 --producer-props acks=1 linger.ms=5 batch.size=16384
//! ```
//!
//! Sends `--num-records` keyless records of `--record-size` random `A`-`Z` bytes (new bytes
//! for every record, as Java's tool), each with a callback measuring its latency from `send`
//! to the acknowledgement; prints a window line every 5 s and at the end Java's summary line
//!
//! ```text
//! 1000000 records sent, 612345.000000 records/sec (58.40 MB/sec), 12.30 ms avg latency, 40.00 ms max latency, 11 ms 50th, 25 ms 95th, 31 ms 99th, 38 ms 99.9th.
//! ```
//!
//! followed by the process's CPU seconds (user + system, whole process) and peak RSS:
//!
//! ```text
//! client CPU 0.42 s (0.35 s user + 0.07 s sys), 420 ns/record, peak RSS 62.4 MiB.
//! ```
//!
//! Like Java's tool, the clock starts before the first send (so it includes fetching the
//! topic's metadata) and stops once `flush` returned. Exit status 1 if any record failed.
//!
//! `--no-latency-samples` keeps no latency per record (the summary's percentiles are 0): for
//! measuring the producer's memory (`scripts/rss`) without the tool's 4 bytes per record.
//!
//! For `scripts/failover`: `--keyed` gives record `i` the key `i` (decimal, as the Java
//! oracle's `produce --count`), so every partition gets traffic; `--ack-log FILE` writes one
//! line per outcome, `UNIX_MICROS PARTITION OFFSET` (partition -1 and the error for a
//! failure), taken in the callback; `--log debug` puts the producer's log on stderr, each
//! line stamped with the same clock.
//!
//! Transactions: `--transactional-id ID` (Java's option) sends every record inside a
//! transaction, committed every `--transaction-duration-ms` (Java's option, default 3000 ms
//! there) or every `--records-per-transaction K` records, and at the end.
//!
//! For `scripts/compare --matrix`: Java's `--key-distribution range --record-key-range N`
//! (record `i` keyed `i % N` in decimal, the keys Java's tool writes).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use kafka_edge_examples::{Payload, PerfStats, ProcessUsage, metrics_table, parse_property};
use kafka_edge_std::{Producer, ProducerRecord, Properties};

#[derive(Parser, Debug)]
#[command(
    name = "kafka-edge-perf",
    about = "kafka-edge's peer of Java's ProducerPerformance"
)]
struct Args {
    /// Brokers (`bootstrap.servers`); also settable through --producer-props.
    #[arg(long = "bootstrap-server")]
    bootstrap_server: Option<String>,
    /// Topic to produce to.
    #[arg(long)]
    topic: String,
    /// Number of records to send.
    #[arg(long = "num-records")]
    num_records: u64,
    /// Size of each record's value in bytes.
    #[arg(long = "record-size", default_value_t = 100)]
    record_size: usize,
    /// Maximum records per second; -1 for no limit.
    #[arg(long, allow_negative_numbers = true, default_value_t = -1.0)]
    throughput: f64,
    /// Producer properties, `key=value` (Java's --producer-props).
    #[arg(long = "producer-props", num_args = 1.., value_parser = parse_property)]
    producer_props: Vec<(String, String)>,
    /// Producer properties, `key=value` (Java's newer name, --command-property).
    #[arg(long = "command-property", num_args = 1.., value_parser = parse_property)]
    command_property: Vec<(String, String)>,
    /// A producer properties file (Java's --producer.config).
    #[arg(long = "producer.config")]
    producer_config: Option<std::path::PathBuf>,
    /// Print the producer's metrics at the end, by Java's names (Java's --print-metrics).
    #[arg(long = "print-metrics", alias = "metrics")]
    print_metrics: bool,
    /// Key record `i` with `i` in decimal (default: no key).
    #[arg(long)]
    keyed: bool,
    /// Java's `--key-distribution`: `none` (no key) or `range` (record `i` gets the key
    /// `i % --record-key-range` in decimal, as Java's tool writes it).
    #[arg(long = "key-distribution", default_value = "none", value_parser = ["none", "range"])]
    key_distribution: String,
    /// Java's `--record-key-range`: the number of distinct keys of `--key-distribution range`.
    #[arg(long = "record-key-range", value_parser = clap::value_parser!(u64).range(1..))]
    record_key_range: Option<u64>,
    /// Java's `--transactional-id`: produce in transactions with this `transactional.id`.
    #[arg(long = "transactional-id")]
    transactional_id: Option<String>,
    /// Java's `--transaction-duration-ms`: commit a transaction after this long.
    #[arg(long = "transaction-duration-ms")]
    transaction_duration_ms: Option<u64>,
    /// Commit a transaction every this many records (with `--transactional-id`).
    #[arg(long = "records-per-transaction")]
    records_per_transaction: Option<u64>,
    /// Write `UNIX_MICROS PARTITION OFFSET` per acknowledged record to this file.
    #[arg(long = "ack-log")]
    ack_log: Option<std::path::PathBuf>,
    /// The producer's log on stderr from this level on (error, warn, info, debug, trace),
    /// each line prefixed with microseconds since the Unix epoch.
    #[arg(long, value_parser = parse_level)]
    log: Option<log::LevelFilter>,
    /// Keep no latency per record (percentiles print as 0): the tool's memory stays
    /// constant, for measuring the producer's.
    #[arg(long = "no-latency-samples")]
    no_latency_samples: bool,
}

fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse().map_err(|e: log::ParseLevelError| e.to_string())
}

/// `UNIX_MICROS LEVEL message` on stderr.
struct StampedLogger;

impl log::Log for StampedLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("{} {} {}", unix_micros(), record.level(), record.args());
        }
    }
    fn flush(&self) {}
}

/// Microseconds since the Unix epoch: the clock `scripts/failover` stamps its signals with.
fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn main() {
    let args = Args::parse();
    if let Some(level) = args.log
        && log::set_logger(&StampedLogger).is_ok()
    {
        log::set_max_level(level);
    }
    match run(&args) {
        Ok(0) => {}
        Ok(_) => std::process::exit(1),
        Err(e) => {
            eprintln!("kafka-edge-perf: {e}");
            std::process::exit(2);
        }
    }
}

/// Returns the number of failed records.
fn run(args: &Args) -> Result<u64, Box<dyn std::error::Error>> {
    let mut builder = Producer::builder().set("client.id", "perf-producer-client");
    if let Some(path) = &args.producer_config {
        builder = builder.properties(&Properties::load(path)?);
    }
    if let Some(b) = &args.bootstrap_server {
        builder = builder.set("bootstrap.servers", b);
    }
    for (k, v) in args.producer_props.iter().chain(&args.command_property) {
        builder = builder.set(k, v);
    }
    if let Some(id) = &args.transactional_id {
        builder = builder.set("transactional.id", id);
    }
    let producer = builder.build()?;
    let transactional = args.transactional_id.is_some();
    // Java's default transaction duration when neither cadence is given.
    let txn_duration = Duration::from_millis(args.transaction_duration_ms.unwrap_or(
        if args.records_per_transaction.is_some() {
            u64::MAX
        } else {
            3_000
        },
    ));
    let txn_records = args.records_per_transaction.unwrap_or(u64::MAX).max(1);

    let records = args.num_records;
    let size = args.record_size;
    // Callbacks run on the producer's I/O thread; a leaked `&'static` spares every record
    // a reference count.
    let stats: &'static Mutex<PerfStats> =
        Box::leak(Box::new(Mutex::new(if args.no_latency_samples {
            PerfStats::without_latencies()
        } else {
            PerfStats::with_capacity(usize::try_from(records).unwrap_or(0))
        })));
    // No lock per record without an ack log.
    let ack_log: Option<&'static Mutex<BufWriter<File>>> = match &args.ack_log {
        Some(path) => Some(Box::leak(Box::new(Mutex::new(BufWriter::new(
            File::create(path)?,
        ))))),
        None => None,
    };
    let mut payload = Payload::new(size, 0x9e37_79b9_7f4a_7c15);
    let topic = args.topic.as_str();
    let mut key = String::new();
    let key_range = match (args.key_distribution.as_str(), args.record_key_range) {
        ("range", Some(n)) => Some(n),
        ("range", None) => return Err("--key-distribution range needs --record-key-range".into()),
        (_, Some(_)) => return Err("--record-key-range needs --key-distribution range".into()),
        _ => None,
    };
    let key_of = |i: u64| match key_range {
        Some(n) => Some(i % n),
        None => args.keyed.then_some(i),
    };
    // As Java's tool: the clock starts after initTransactions (coordinator lookup, producer
    // id), before the first transaction begins.
    if transactional {
        producer.init_transactions(producer.max_block())?;
    }
    let start = Instant::now();
    let mut txn_start = start;
    if transactional {
        producer.begin_transaction()?;
    }
    for i in 0..records {
        if transactional && i > 0 && (i % txn_records == 0 || txn_start.elapsed() >= txn_duration) {
            producer.commit_transaction(producer.max_block())?;
            producer.begin_transaction()?;
            txn_start = Instant::now();
        }
        let sent_at = Instant::now();
        let mut record = ProducerRecord::new(topic).value(payload.next_value());
        if let Some(k) = key_of(i) {
            key.clear();
            std::fmt::Write::write_fmt(&mut key, format_args!("{k}"))?;
            record = record.key(key.as_bytes());
        }
        producer.send_with_callback(&record, move |result| {
            // One clock read per outcome: the latency and the window line's clock.
            let now = Instant::now();
            let latency = now.saturating_duration_since(sent_at);
            if let Some(log) = ack_log {
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                // A full disk shows as a short log, which scripts/failover reports.
                let _ = match &result {
                    Ok(m) => writeln!(log, "{} {} {}", unix_micros(), m.partition, m.offset),
                    Err(e) => writeln!(log, "{} -1 {e}", unix_micros()),
                };
            }
            let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(_) => {
                    if let Some(line) = s.delivered_at(now, latency, size) {
                        println!("{line}");
                    }
                }
                Err(e) => {
                    if s.failed_count() < 10 {
                        eprintln!("kafka-edge-perf: record not delivered: {e}");
                    }
                    s.failed();
                }
            }
        })?;
        if args.throughput > 0.0 {
            // Java's ThroughputThrottler: hold the average rate at --throughput.
            let due = Duration::from_secs_f64((i + 1) as f64 / args.throughput);
            let elapsed = start.elapsed();
            if due > elapsed + Duration::from_millis(1) {
                std::thread::sleep(due - elapsed);
            }
        }
    }
    if transactional {
        producer.commit_transaction(producer.max_block())?;
    }
    producer.flush();
    let elapsed = start.elapsed();
    if let Some(log) = ack_log {
        log.lock().unwrap_or_else(|e| e.into_inner()).flush()?;
    }
    // Taken, not cloned: no second copy of the latencies.
    let s = std::mem::replace(
        &mut *stats.lock().unwrap_or_else(|e| e.into_inner()),
        PerfStats::without_latencies(),
    );
    println!("{}", s.java_summary(records, elapsed));
    if args.print_metrics {
        print!("{}", metrics_table(&producer.metrics()));
    }
    producer.close(Duration::from_secs(30));
    println!("{}", ProcessUsage::now().line(records));
    if s.failed_count() > 0 {
        eprintln!(
            "kafka-edge-perf: {} of {records} records failed",
            s.failed_count()
        );
    }
    Ok(s.failed_count())
}
