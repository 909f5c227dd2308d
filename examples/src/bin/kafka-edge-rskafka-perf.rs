//! `kafka-edge-rskafka-perf` (feature `rskafka`): the pure-Rust `rskafka` client's run of
//! `kafka-edge-perf`, for `scripts/compare`. The same options, payloads, per-record latency
//! (send to acknowledgement) and output lines as `kafka-edge-perf` and Java's
//! `ProducerPerformance`.
//!
//! ```text
//! cargo run --release -p kafka-edge-examples --features rskafka --bin kafka-edge-rskafka-perf -- \
//!     --bootstrap-server B --topic T --num-records 1000000 --record-size 100 --throughput -1 \
//!     --producer-props linger.ms=5 batch.size=16384
//! ```
//!
//! rskafka has no producer of the Java kind: a `PartitionClient` per partition, and on top of
//! each a `BatchProducer` with a `RecordAggregator` of `batch.size` bytes and a linger of
//! `linger.ms` (its only producer settings). Every record is one `produce` future that
//! resolves at the acknowledgement; up to `--max-in-flight` of them are outstanding at once
//! (the stand-in for `buffer.memory`). What it cannot do, and what this tool therefore
//! refuses: `acks` other than `all` (rskafka always sends acks=-1), idempotence (it has no
//! producer id), compression other than none. Keyless records go to the partitions in turn,
//! one `batch.size` worth at a time (the sticky partitioner's effect); keyed records
//! (`--key-distribution range --record-key-range N`, as Java's tool) go where Java's murmur2
//! puts them.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::stream::{FuturesUnordered, StreamExt as _};
use kafka_edge_examples::{Payload, PerfStats, ProcessUsage, parse_property};
use rskafka::client::ClientBuilder;
use rskafka::client::partition::UnknownTopicHandling;
use rskafka::client::producer::aggregator::RecordAggregator;
use rskafka::client::producer::{BatchProducer, BatchProducerBuilder};
use rskafka::record::Record;

#[derive(Parser, Debug)]
#[command(
    name = "kafka-edge-rskafka-perf",
    about = "rskafka's peer of Java's ProducerPerformance"
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
    /// Producer properties, `key=value`: `linger.ms`, `batch.size`; `acks=all`/`-1`,
    /// `enable.idempotence=false` and `compression.type=none` are accepted, anything else
    /// rskafka cannot do is refused.
    #[arg(long = "producer-props", alias = "command-property", num_args = 1.., value_parser = parse_property)]
    producer_props: Vec<(String, String)>,
    /// Java's `--key-distribution`: `none` or `range`.
    #[arg(long = "key-distribution", default_value = "none", value_parser = ["none", "range"])]
    key_distribution: String,
    /// Java's `--record-key-range`: the number of distinct keys of `--key-distribution range`.
    #[arg(long = "record-key-range", value_parser = clap::value_parser!(u64).range(1..))]
    record_key_range: Option<u64>,
    /// Records awaiting their acknowledgement at most (the stand-in for `buffer.memory`).
    #[arg(long = "max-in-flight", default_value_t = 100_000)]
    max_in_flight: usize,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(&args)) {
        Ok(0) => {}
        Ok(_) => std::process::exit(1),
        Err(e) => {
            eprintln!("kafka-edge-rskafka-perf: {e}");
            std::process::exit(2);
        }
    }
}

async fn run(args: &Args) -> Result<u64, Box<dyn std::error::Error>> {
    let mut linger = Duration::from_millis(5);
    let mut batch_size = 16384usize;
    for (k, v) in &args.producer_props {
        match (k.as_str(), v.as_str()) {
            ("linger.ms", v) => linger = Duration::from_millis(v.parse()?),
            ("batch.size", v) => batch_size = v.parse()?,
            ("acks", "all" | "-1")
            | ("enable.idempotence", "false")
            | ("compression.type", "none") => {}
            ("client.id", _) => {}
            (k, v) => return Err(format!("rskafka cannot do {k}={v}").into()),
        }
    }
    let key_range = match (args.key_distribution.as_str(), args.record_key_range) {
        ("range", Some(n)) => Some(n),
        ("range", None) => return Err("--key-distribution range needs --record-key-range".into()),
        (_, Some(_)) => return Err("--record-key-range needs --key-distribution range".into()),
        _ => None,
    };
    let records = args.num_records;
    let size = args.record_size;
    // The clock starts before the metadata, as Java's tool.
    let start = Instant::now();
    let client = ClientBuilder::new(vec![args.bootstrap_server.clone()])
        .build()
        .await?;
    let partitions = client
        .list_topics()
        .await?
        .into_iter()
        .find(|t| t.name == args.topic)
        .map(|t| t.partitions.len())
        .ok_or_else(|| format!("no topic {}", args.topic))?;
    let mut producers: Vec<Arc<BatchProducer<RecordAggregator>>> = Vec::new();
    for p in 0..partitions {
        let pc = client
            .partition_client(args.topic.clone(), p as i32, UnknownTopicHandling::Retry)
            .await?;
        producers.push(Arc::new(
            BatchProducerBuilder::new(Arc::new(pc))
                .with_linger(linger)
                .build(RecordAggregator::new(batch_size)),
        ));
    }
    let n = NonZeroU32::new(partitions as u32).ok_or("topic without partitions")?;
    // Keyless: one batch's worth of records per partition, then the next.
    let per_batch = (batch_size / (size + 20).max(1)).max(1) as u64;
    let mut stats = PerfStats::with_capacity(usize::try_from(records).unwrap_or(0));
    let mut payload = Payload::new(size, 0x9e37_79b9_7f4a_7c15);
    let mut pending = FuturesUnordered::new();
    let account = |stats: &mut PerfStats,
                   r: (Instant, Result<(), rskafka::client::producer::Error>)| {
        match r.1 {
            Ok(()) => {
                if let Some(line) = stats.delivered(r.0.elapsed(), size) {
                    println!("{line}");
                }
            }
            Err(e) => {
                if stats.failed_count() < 10 {
                    eprintln!("kafka-edge-rskafka-perf: record not delivered: {e}");
                }
                stats.failed();
            }
        }
    };
    for i in 0..records {
        while pending.len() >= args.max_in_flight {
            if let Some(r) = pending.next().await {
                account(&mut stats, r);
            }
        }
        let key = key_range.map(|k| (i % k).to_string().into_bytes());
        let partition = match &key {
            Some(k) => kafka_edge_std::partition_for_key(k, n) as usize,
            None => ((i / per_batch) % u64::from(n.get())) as usize,
        };
        let record = Record {
            key,
            value: Some(payload.next_value().to_vec()),
            headers: BTreeMap::new(),
            timestamp: now_utc(),
        };
        let producer = Arc::clone(&producers[partition]);
        let sent_at = Instant::now();
        pending.push(async move { (sent_at, producer.produce(record).await.map(|_| ())) });
        // Let the futures run: the aggregator only fills while they are polled.
        while let Some(Some(r)) = futures::FutureExt::now_or_never(pending.next()) {
            account(&mut stats, r);
        }
        if args.throughput > 0.0 {
            let due = Duration::from_secs_f64((i + 1) as f64 / args.throughput);
            let elapsed = start.elapsed();
            if due > elapsed + Duration::from_millis(1) {
                let sleep = tokio::time::sleep(due - elapsed);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        () = &mut sleep => break,
                        Some(r) = pending.next() => account(&mut stats, r),
                    }
                }
            }
        }
    }
    while let Some(r) = pending.next().await {
        account(&mut stats, r);
    }
    let elapsed = start.elapsed();
    println!("{}", stats.java_summary(records, elapsed));
    drop(producers);
    println!("{}", ProcessUsage::now().line(records));
    if stats.failed_count() > 0 {
        eprintln!(
            "kafka-edge-rskafka-perf: {} of {records} records failed",
            stats.failed_count()
        );
    }
    Ok(stats.failed_count())
}

/// The wall clock as rskafka's record timestamp (its `chrono` has no clock of its own).
fn now_utc() -> rskafka::chrono::DateTime<rskafka::chrono::Utc> {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    rskafka::chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
