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
//! # Errors and the summary
//!
//! Records are sent asynchronously; a record that fails is reported on standard error as
//! `<source>:<line>: <error>` (source is `stdin` or the file name). Every file is opened
//! before anything is sent. When a topic's metadata does not arrive within `max.block.ms`
//! (the topic does not exist, or no broker can be reached), the following records of that
//! topic are not sent instead of each waiting again, as kcat fails them fast. The
//! producer's own log goes to standard error: warnings and errors by default (a broker that
//! cannot be resolved or refuses the connection is warned at once), more with `-v`, `-vv`,
//! `-vvv`, errors only with `-q`, nothing with `-qq`. At the end a summary goes to standard
//! error: records read, delivered, failed and not sent, elapsed time and records per second.
//!
//! # Signals
//!
//! On the first SIGINT, SIGTERM or SIGHUP the tool stops reading, gives the records it
//! accepted up to `--flush-timeout-ms` (30 s by default) to be delivered, then prints the
//! summary and exits as below. A second signal aborts at once: it says how many accepted
//! records were abandoned (their fate unknown) and exits 130. (kcat and Java's console
//! producer flush on these signals too.)
//!
//! # Exit status
//!
//! - 0: every record read was delivered (also after a signal, when the flush made it);
//! - 1: some records failed or were not sent (the summary says how many);
//! - 2: a usage or setup error (bad option, invalid producer property): nothing was sent;
//! - 3: an input file cannot be opened (nothing was sent) or read (the records before it
//!   were sent and the summary is printed);
//! - 130: aborted by a second signal.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use clap::{ArgAction, Parser};
use kafka_edge_examples::{metrics_table, parse_property};
use kafka_edge_std::{Producer, ProducerRecord, SendError};

/// Exit status when some records failed or were not sent.
const EXIT_NOT_DELIVERED: i32 = 1;
/// Exit status of a usage or setup error (clap's own for a bad option).
const EXIT_USAGE: i32 = 2;
/// Exit status when an input file cannot be opened or read.
const EXIT_INPUT: i32 = 3;
/// Exit status after a second signal (128 + SIGINT, as a shell reports Ctrl-C).
const EXIT_ABORTED: i32 = 130;

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
    /// After a signal, how long accepted records may take to be delivered (ms).
    #[arg(long = "flush-timeout-ms", default_value_t = 30_000)]
    flush_timeout_ms: u64,
    /// Print the producer's metrics on standard output at the end, by Java's names (as
    /// Java's `ProducerPerformance --print-metrics`).
    #[arg(long)]
    metrics: bool,
    /// More log: info (-v), debug (-vv), trace (-vvv).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    verbose: u8,
    /// Less log: errors only (-q), none (-qq).
    #[arg(short = 'q', long = "quiet", action = ArgAction::Count, conflicts_with = "verbose")]
    quiet: u8,
    /// Files to read lines from, in order (default: standard input).
    files: Vec<PathBuf>,
}

/// What happened to the records, shared by the reader, the delivery callbacks, the signal
/// handler and the summary.
#[derive(Default)]
struct Counters {
    /// Lines read.
    read: AtomicU64,
    /// Records the producer accepted (each gets one outcome).
    accepted: AtomicU64,
    /// Accepted and acknowledged.
    delivered: AtomicU64,
    /// Accepted and failed.
    failed_delivery: AtomicU64,
    /// Refused by `send` (too large, metadata timeout, ...).
    failed_send: AtomicU64,
}

impl Counters {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
    fn failed(&self) -> u64 {
        Self::get(&self.failed_delivery) + Self::get(&self.failed_send)
    }
    /// Read but never handed to the producer (after a signal or a metadata timeout), or
    /// refused because it was closing.
    fn not_sent(&self) -> u64 {
        Self::get(&self.read)
            .saturating_sub(Self::get(&self.accepted))
            .saturating_sub(Self::get(&self.failed_send))
    }
    /// Accepted records without an outcome yet.
    fn in_flight(&self) -> u64 {
        Self::get(&self.accepted)
            .saturating_sub(Self::get(&self.delivered))
            .saturating_sub(Self::get(&self.failed_delivery))
    }
}

/// An input: standard input or a file opened before anything is sent.
enum Input {
    Stdin,
    File(String, File),
}

/// What the main thread waits for.
enum Event {
    /// The reader reached the end of its input, or could not read it (the message).
    InputDone(Result<(), String>),
    /// The first SIGINT, SIGTERM or SIGHUP.
    Signal,
    /// Every accepted record has its outcome.
    Flushed,
}

fn main() {
    let args = Args::parse();
    init_log(&args);
    std::process::exit(run(args));
}

/// Opens every input up front, so that a missing file fails before anything is sent.
fn open_inputs(files: &[PathBuf]) -> Result<Vec<Input>, String> {
    if files.is_empty() {
        return Ok(vec![Input::Stdin]);
    }
    files
        .iter()
        .map(|path| {
            let name = path.display().to_string();
            let file = File::open(path).map_err(|e| format!("cannot open {name}: {e}"))?;
            // Opening a directory succeeds on Unix; reading it would fail mid-run.
            match file.metadata() {
                Ok(m) if m.is_dir() => Err(format!("cannot read {name}: is a directory")),
                _ => Ok(Input::File(name, file)),
            }
        })
        .collect()
}

/// Returns the exit status.
fn run(args: Args) -> i32 {
    let print_metrics = args.metrics;
    let inputs = match open_inputs(&args.files) {
        Ok(inputs) => inputs,
        Err(e) => {
            eprintln!("kafka-edge-produce: {e}; nothing sent");
            return EXIT_INPUT;
        }
    };
    let producer = match build_producer(&args) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("kafka-edge-produce: {e}");
            return EXIT_USAGE;
        }
    };
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (events, event) = mpsc::channel();
    let flush_timeout = Duration::from_millis(args.flush_timeout_ms);
    let start = Instant::now();

    let signals = AtomicU64::new(0);
    let on_signal = {
        let events = events.clone();
        let counters = Arc::clone(&counters);
        move || {
            if signals.fetch_add(1, Ordering::SeqCst) == 0 {
                let _ = events.send(Event::Signal);
                return;
            }
            eprintln!(
                "kafka-edge-produce: aborted by a second signal: {} accepted records abandoned \
                 (not known to be delivered), {} delivered, {} failed, {} not sent",
                counters.in_flight(),
                Counters::get(&counters.delivered),
                counters.failed(),
                counters.not_sent(),
            );
            std::process::exit(EXIT_ABORTED);
        }
    };
    if let Err(e) = ctrlc::set_handler(on_signal) {
        log::warn!("no signal handler ({e}): a signal ends the tool without a summary");
    }

    let reader = {
        let producer = Arc::clone(&producer);
        let counters = Arc::clone(&counters);
        let stop = Arc::clone(&stop);
        let events = events.clone();
        std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || {
                let mut reader = Reader {
                    producer: &producer,
                    args: &args,
                    counters: &counters,
                    stop: &stop,
                    metadata_timed_out: false,
                };
                let done = reader.produce_all(inputs);
                let _ = events.send(Event::InputDone(done));
            })
    };
    if let Err(e) = reader {
        eprintln!("kafka-edge-produce: cannot start the reader: {e}");
        return EXIT_USAGE;
    }

    let mut interrupted = false;
    let mut input_error = None;
    match event.recv() {
        Ok(Event::InputDone(Err(e))) => input_error = Some(e),
        Ok(Event::Signal) => interrupted = true,
        _ => {}
    }
    if !interrupted {
        // The input is done: wait for every outcome, unless a signal bounds the wait.
        let producer = Arc::clone(&producer);
        let events = events.clone();
        std::thread::spawn(move || {
            producer.flush();
            let _ = events.send(Event::Flushed);
        });
        interrupted = matches!(event.recv(), Ok(Event::Signal));
    }
    let close_timeout = if interrupted {
        stop.store(true, Ordering::SeqCst);
        let read = Counters::get(&counters.read);
        eprintln!(
            "kafka-edge-produce: interrupted: stopped reading after {read} records; \
             delivering the {} accepted (up to {} ms; a second signal aborts)",
            counters.in_flight(),
            flush_timeout.as_millis(),
        );
        flush_timeout
    } else {
        Duration::from_secs(30)
    };
    // Every accepted record has its outcome when `close` returns: undelivered ones fail
    // with the producer's "closed" error at the timeout.
    producer.close(close_timeout);
    let elapsed = start.elapsed();

    let delivered = Counters::get(&counters.delivered);
    let failed = counters.failed();
    let not_sent = counters.not_sent();
    let secs = elapsed.as_secs_f64();
    eprintln!(
        "kafka-edge-produce: {} records read, {delivered} delivered, {failed} failed, \
         {not_sent} not sent, in {secs:.3} s ({:.0} records/s){}",
        Counters::get(&counters.read),
        delivered as f64 / secs.max(1e-9),
        if interrupted { " (interrupted)" } else { "" },
    );
    if print_metrics {
        print!("{}", metrics_table(&producer.metrics()));
    }
    if let Some(e) = input_error {
        eprintln!("kafka-edge-produce: {e}; the records before it are counted above");
        return EXIT_INPUT;
    }
    if failed > 0 || not_sent > 0 {
        EXIT_NOT_DELIVERED
    } else {
        0
    }
}

fn build_producer(args: &Args) -> Result<Producer, Box<dyn std::error::Error>> {
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
    Ok(builder.build()?)
}

/// Reads the inputs and sends their lines (on its own thread, so that a signal is heard
/// while a read blocks).
struct Reader<'a> {
    producer: &'a Producer,
    args: &'a Args,
    counters: &'a Arc<Counters>,
    stop: &'a AtomicBool,
    /// The topic's metadata did not arrive within `max.block.ms` once: the rest of its
    /// records are not sent (the library itself waits again for each record, as Java).
    metadata_timed_out: bool,
}

impl Reader<'_> {
    /// Sends every line of every input, in order; `Err` names an input that could not be read.
    fn produce_all(&mut self, inputs: Vec<Input>) -> Result<(), String> {
        for input in inputs {
            let (source, result) = match input {
                Input::Stdin => (
                    "stdin".to_string(),
                    self.produce_lines("stdin", std::io::stdin().lock()),
                ),
                Input::File(name, file) => {
                    let result = self.produce_lines(&name, BufReader::with_capacity(1 << 16, file));
                    (name, result)
                }
            };
            if let Err(e) = result {
                return Err(format!("cannot read {source}: {e}"));
            }
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
        }
        Ok(())
    }

    /// Sends every line of `input` until its end or a signal.
    fn produce_lines(&mut self, source: &str, mut input: impl BufRead) -> std::io::Result<()> {
        let args = self.args;
        let counters = self.counters;
        let source: Arc<str> = Arc::from(source);
        let delimiter = args.key_delimiter.as_deref().map(str::as_bytes);
        let mut line = Vec::with_capacity(4096);
        let mut number = 0u64;
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 || self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            number += 1;
            counters.read.fetch_add(1, Ordering::Relaxed);
            if self.metadata_timed_out {
                continue;
            }
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
            let result = self
                .producer
                .send_with_callback(&record, move |result| match result {
                    Ok(_) => {
                        c.delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        c.failed_delivery.fetch_add(1, Ordering::Relaxed);
                        eprintln!("{src}:{number}: {e}");
                    }
                });
            match result {
                Ok(()) => {
                    counters.accepted.fetch_add(1, Ordering::Relaxed);
                    log::trace!("{source}:{number}: accepted");
                }
                // Closing after a signal: the record is counted as not sent.
                Err(SendError::Closed) => return Ok(()),
                Err(e @ SendError::MetadataTimeout { .. }) => {
                    counters.failed_send.fetch_add(1, Ordering::Relaxed);
                    // The error names the last connection error, if that is why.
                    eprintln!(
                        "{source}:{number}: {e} The following records of {} are not sent.",
                        args.topic
                    );
                    self.metadata_timed_out = true;
                }
                Err(e) => {
                    counters.failed_send.fetch_add(1, Ordering::Relaxed);
                    eprintln!("{source}:{number}: {e}");
                }
            }
        }
    }
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

/// The producer's log (and this tool's) on standard error, at the level `-v`/`-q` choose.
fn init_log(args: &Args) {
    let level = match (args.quiet, args.verbose) {
        (0, 0) => log::LevelFilter::Warn,
        (1, _) => log::LevelFilter::Error,
        (_, 0) => log::LevelFilter::Off,
        (_, 1) => log::LevelFilter::Info,
        (_, 2) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    if LOGGER.level.set(level).is_ok() && log::set_logger(&LOGGER).is_ok() {
        // Warnings always reach the logger, which keeps the last one for the errors it
        // explains even when `-q` hides it.
        log::set_max_level(level.max(log::LevelFilter::Warn));
    }
}

/// `kafka-edge-produce: WARN [Producer clientId=..] ...`: one line per log record on stderr.
struct StderrLogger {
    level: std::sync::OnceLock<log::LevelFilter>,
}

static LOGGER: StderrLogger = StderrLogger {
    level: std::sync::OnceLock::new(),
};

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level.get().copied().unwrap_or(log::LevelFilter::Warn)
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("kafka-edge-produce: {} {}", record.level(), record.args());
        }
    }
    fn flush(&self) {}
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
