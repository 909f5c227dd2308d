//! `kafka-edge-rdkafka-perf` (feature `peers`): librdkafka's run of `kafka-edge-perf`, for
//! `scripts/compare`. The same options, payloads (random `A`-`Z` bytes, new for every record),
//! per-record latency (send to delivery report) and output lines as `kafka-edge-perf` and
//! Java's `ProducerPerformance`, through the `rdkafka` crate's `BaseProducer` over its bundled
//! librdkafka.
//!
//! ```text
//! cargo run --release -p kafka-edge-examples --features peers --bin kafka-edge-rdkafka-perf -- \
//!     --bootstrap-server B --topic T --num-records 1000000 --record-size 100 --throughput -1 \
//!     --producer-props acks=1 linger.ms=5 batch.size=16384
//! ```
//!
//! librdkafka takes Java's property names used here (`acks`, `linger.ms`, `batch.size`) as
//! aliases of its own. Delivery reports are served by `poll` on the sending thread, as
//! librdkafka's applications do.
//!
//! `--keyed`, `--ack-log FILE` (for `scripts/failover`) and Java's `--key-distribution range
//! --record-key-range N` (for `scripts/compare --matrix`) as in `kafka-edge-perf`.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use kafka_edge_examples::{Payload, PerfStats, ProcessUsage, parse_property};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message as _};

#[derive(Parser, Debug)]
#[command(
    name = "kafka-edge-rdkafka-perf",
    about = "librdkafka's peer of Java's ProducerPerformance"
)]
struct Args {
    /// Brokers (`bootstrap.servers`).
    #[arg(long = "bootstrap-server")]
    bootstrap_server: String,
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
    /// Producer properties, `key=value` (librdkafka's names or their Java aliases).
    #[arg(long = "producer-props", alias = "command-property", num_args = 1.., value_parser = parse_property)]
    producer_props: Vec<(String, String)>,
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
    /// Write `UNIX_MICROS PARTITION OFFSET` per delivery report to this file.
    #[arg(long = "ack-log")]
    ack_log: Option<std::path::PathBuf>,
}

/// Collects delivery reports; the opaque of each record is its send time in nanoseconds
/// after the start (no allocation per record).
struct Context {
    start: Instant,
    stats: Mutex<PerfStats>,
    ack_log: Mutex<Option<BufWriter<File>>>,
}

/// Microseconds since the Unix epoch: the clock `scripts/failover` stamps its signals with.
fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let latency = self
            .start
            .elapsed()
            .saturating_sub(Duration::from_nanos(sent_ns as u64));
        if let Some(log) = self
            .ack_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            // A full disk shows as a short log, which scripts/failover reports.
            let _ = match result {
                Ok(m) => writeln!(log, "{} {} {}", unix_micros(), m.partition(), m.offset()),
                Err((e, _)) => writeln!(log, "{} -1 {e}", unix_micros()),
            };
        }
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(m) => {
                let bytes = m.payload_len();
                if let Some(line) = s.delivered(latency, bytes) {
                    println!("{line}");
                }
            }
            Err((e, _)) => {
                if s.failed_count() < 10 {
                    eprintln!("kafka-edge-rdkafka-perf: record not delivered: {e}");
                }
                s.failed();
            }
        }
    }
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(0) => {}
        Ok(_) => std::process::exit(1),
        Err(e) => {
            eprintln!("kafka-edge-rdkafka-perf: {e}");
            std::process::exit(2);
        }
    }
}

fn run(args: &Args) -> Result<u64, Box<dyn std::error::Error>> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap_server)
        .set("client.id", "perf-producer-client");
    for (k, v) in &args.producer_props {
        config.set(k, v);
    }
    let records = args.num_records;
    let start = Instant::now();
    let context = Context {
        start,
        stats: Mutex::new(PerfStats::with_capacity(
            usize::try_from(records).unwrap_or(0),
        )),
        ack_log: Mutex::new(match &args.ack_log {
            Some(path) => Some(BufWriter::new(File::create(path)?)),
            None => None,
        }),
    };
    let producer: BaseProducer<Context> = config.create_with_context(context)?;
    let mut payload = Payload::new(args.record_size, 0x9e37_79b9_7f4a_7c15);
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
    for i in 0..records {
        let value = payload.next_value();
        let sent_ns = start.elapsed().as_nanos() as usize;
        let mut record =
            BaseRecord::<[u8], [u8], usize>::with_opaque_to(&args.topic, sent_ns).payload(value);
        if let Some(k) = key_of(i) {
            key.clear();
            std::fmt::Write::write_fmt(&mut key, format_args!("{k}"))?;
            record = record.key(key.as_bytes());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
        if args.throughput > 0.0 {
            let due = Duration::from_secs_f64((i + 1) as f64 / args.throughput);
            let elapsed = start.elapsed();
            if due > elapsed + Duration::from_millis(1) {
                producer.poll(due - elapsed);
            }
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let elapsed = start.elapsed();
    if let Some(log) = producer
        .context()
        .ack_log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
    {
        log.flush()?;
    }
    let s = producer
        .context()
        .stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    println!("{}", s.java_summary(records, elapsed));
    drop(producer);
    println!("{}", ProcessUsage::now().line(records));
    if s.failed_count() > 0 {
        eprintln!(
            "kafka-edge-rdkafka-perf: {} of {records} records failed",
            s.failed_count()
        );
    }
    Ok(s.failed_count())
}
