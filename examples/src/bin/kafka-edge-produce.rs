//! `kafka-edge-produce`: a command-line producer in the spirit of `kcat -P`, on the std
//! producer (`kafka-edge-std`).
//!
//! ```text
//! printf 'k1:hello\nk2:world\n' | kafka-edge-produce -b 127.0.0.1:9092 -t events -K : -H source=cli
//! kafka-edge-produce -b 127.0.0.1:9092 -t events --acks all -X compression.type=none lines.txt more.txt
//! ```
//!
//! Every line (without its `\n`) of standard input, or of each file given as an argument in
//! turn, is one record. Unlike `kcat -P`, which sends each file as one message unless `-l`
//! is given, files are read line by line too. With `-K <delim>` the part of a line before
//! the first `<delim>` is the key and the rest the value; a line without `<delim>` is all
//! value with a null key (as kcat). Empty lines are sent as empty values.
//!
//! Records are sent asynchronously; a record that fails is reported on standard error as
//! `<source>:<line>: <error>` (source is `stdin` or the file name). At the end a summary goes
//! to standard error: records delivered and failed, elapsed time and records per second.
//! The exit status is 1 if any record failed, 2 on a usage or setup error.

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use kafka_edge_examples::parse_property;
use kafka_edge_std::{Producer, ProducerRecord};

#[derive(Parser, Debug)]
#[command(
    name = "kafka-edge-produce",
    about = "Produce lines as Kafka records (in the spirit of kcat -P)"
)]
struct Args {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    #[arg(short = 'b', long = "brokers")]
    brokers: String,
    /// Topic to produce to.
    #[arg(short = 't', long)]
    topic: String,
    /// Key delimiter: the part of each line before it is the key.
    #[arg(short = 'K', long = "key-delimiter")]
    key_delimiter: Option<String>,
    /// A header `name=value` for every record (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_property)]
    headers: Vec<(String, String)>,
    /// Partition to produce to (default: the partitioner chooses).
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Any producer property `name=value` (repeatable).
    #[arg(short = 'X', long = "property", value_parser = parse_property)]
    properties: Vec<(String, String)>,
    /// `acks`: 0, 1 or all.
    #[arg(long)]
    acks: Option<String>,
    /// `linger.ms`.
    #[arg(long = "linger-ms")]
    linger_ms: Option<u64>,
    /// `batch.size` in bytes.
    #[arg(long = "batch-size")]
    batch_size: Option<u64>,
    /// Files to read lines from, in order (default: standard input).
    files: Vec<std::path::PathBuf>,
}

/// Counters shared with the delivery callbacks.
#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(0) => {}
        Ok(_) => std::process::exit(1),
        Err(e) => {
            eprintln!("kafka-edge-produce: {e}");
            std::process::exit(2);
        }
    }
}

/// Returns the number of failed records.
fn run(args: &Args) -> Result<u64, Box<dyn std::error::Error>> {
    let mut builder = Producer::builder().set("bootstrap.servers", &args.brokers);
    if let Some(acks) = &args.acks {
        builder = builder.set("acks", acks);
    }
    if let Some(ms) = args.linger_ms {
        builder = builder.set("linger.ms", ms);
    }
    if let Some(bytes) = args.batch_size {
        builder = builder.set("batch.size", bytes);
    }
    for (k, v) in &args.properties {
        builder = builder.set(k, v);
    }
    let producer = builder.build()?;
    let counters = Arc::new(Counters::default());
    let start = Instant::now();
    let mut sent = 0u64;
    if args.files.is_empty() {
        let stdin = std::io::stdin();
        sent += produce_lines(&producer, args, "stdin", stdin.lock(), &counters)?;
    } else {
        for path in &args.files {
            let file = std::fs::File::open(path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let name = path.display().to_string();
            sent += produce_lines(
                &producer,
                args,
                &name,
                BufReader::with_capacity(1 << 16, file),
                &counters,
            )?;
        }
    }
    producer.flush();
    let elapsed = start.elapsed();
    producer.close(Duration::from_secs(30));
    let delivered = counters.delivered.load(Ordering::Relaxed);
    let failed = counters.failed.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64();
    eprintln!(
        "kafka-edge-produce: {sent} records read, {delivered} delivered, {failed} failed, \
         in {secs:.3} s ({:.0} records/s)",
        delivered as f64 / secs.max(1e-9)
    );
    Ok(failed)
}

/// Sends every line of `input`; returns how many were read.
fn produce_lines(
    producer: &Producer,
    args: &Args,
    source: &str,
    mut input: impl BufRead,
    counters: &Arc<Counters>,
) -> Result<u64, Box<dyn std::error::Error>> {
    let source: Arc<str> = Arc::from(source);
    let delimiter = args.key_delimiter.as_deref().map(str::as_bytes);
    let mut line = Vec::with_capacity(4096);
    let mut number = 0u64;
    loop {
        line.clear();
        let n = input.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let (key, value) = split_key(&line, delimiter);
        let mut record = ProducerRecord::new(&args.topic).value(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(p) = args.partition {
            record = record.partition(p);
        }
        for (name, value) in &args.headers {
            record = record.header(name, value.as_bytes());
        }
        let c = Arc::clone(counters);
        let src = Arc::clone(&source);
        let result = producer.send_with_callback(&record, move |result| match result {
            Ok(_) => {
                c.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                c.failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("{src}:{number}: {e}");
            }
        });
        if let Err(e) = result {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            eprintln!("{source}:{number}: {e}");
        }
    }
    Ok(number)
}

/// Splits a line at the first `delimiter` into key and value (kcat's `-K`): without the
/// delimiter in the line, the key is null and the line is the value.
fn split_key<'a>(line: &'a [u8], delimiter: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    match delimiter {
        Some(d) if !d.is_empty() => match line.windows(d.len()).position(|w| w == d) {
            Some(at) => (Some(&line[..at]), &line[at + d.len()..]),
            None => (None, line),
        },
        _ => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::split_key;

    #[test]
    fn key_delimiter_as_kcat() {
        assert_eq!(
            split_key(b"k:v:w", Some(b":")),
            (Some(&b"k"[..]), &b"v:w"[..])
        );
        assert_eq!(split_key(b"vw", Some(b":")), (None, &b"vw"[..]));
        assert_eq!(
            split_key(b"a::b", Some(b"::")),
            (Some(&b"a"[..]), &b"b"[..])
        );
        assert_eq!(split_key(b"k:v", None), (None, &b"k:v"[..]));
        assert_eq!(split_key(b":v", Some(b":")), (Some(&b""[..]), &b"v"[..]));
    }
}
