//! Shared pieces of the kafka-edge example programs (`kafka-edge-produce`, `kafka-edge-perf`,
//! `kafka-edge-demo` and, behind the `peers` feature, `kafka-edge-rdkafka-perf`):
//!
//! - [`ProcessUsage`]: the process's CPU seconds (user and system) and peak RSS, from
//!   `/proc/self/stat` and `/proc/self/status` (Linux; zero elsewhere).
//! - [`PerfStats`]: per-record latencies and Java `ProducerPerformance`'s summary line, so
//!   every peer of `scripts/compare` prints the same figures the same way.
//! - [`RecordDigest`]: the per-partition digest that `scripts/judge --digest` prints, to check
//!   a million records read back without shipping them as JSON.
//! - [`Payload`]: 100-byte values as `ProducerPerformance` makes them (random `A`-`Z` bytes,
//!   new for every record).
//! - [`parse_property`]: `key=value` command-line arguments.
//! - [`http`]: the axum service of `kafka-edge-http` (HTTP POSTs produced with the async
//!   send).
//! - [`metrics_table`]: the producer's metrics as Java's tools print them (`--metrics`).

pub mod http;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// Splits a `key=value` command-line argument (for clap's `value_parser`).
///
/// ```
/// assert_eq!(
///     kafka_edge_examples::parse_property("linger.ms=5"),
///     Ok(("linger.ms".to_string(), "5".to_string()))
/// );
/// assert!(kafka_edge_examples::parse_property("linger.ms").is_err());
/// ```
pub fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// The producer's metrics as Java's `ToolsUtils.printMetrics` prints them for
/// `ProducerPerformance --print-metrics`: a `Metric Name   Value` header, then one line per
/// metric, `group:name:{tags}` padded to the longest, ` : `, the value with three decimals,
/// sorted by that name.
///
/// ```no_run
/// # fn show(p: &kafka_edge_std::Producer) {
/// print!("{}", kafka_edge_examples::metrics_table(&p.metrics()));
/// # }
/// ```
pub fn metrics_table(m: &kafka_edge_std::Metrics) -> String {
    let rows: BTreeMap<String, f64> = m
        .values()
        .into_iter()
        .map(|v| {
            let tags = match &v.topic {
                Some(t) => format!("{{client-id={}, topic={t}}}", m.client_id),
                None => format!("{{client-id={}}}", m.client_id),
            };
            (format!("{}:{}:{tags}", v.group, v.name), v.value)
        })
        .collect();
    let width = rows.keys().map(String::len).max().unwrap_or(0);
    let mut out = format!("\n{:<width$}   Value\n", "Metric Name");
    for (name, value) in &rows {
        let _ = writeln!(out, "{name:<width$} : {value:.3}");
    }
    out
}

/// CPU time and peak memory of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessUsage {
    /// User CPU seconds.
    pub user_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
    /// Peak resident set size (`VmHWM`) in KiB.
    pub peak_rss_kib: u64,
}

impl ProcessUsage {
    /// Reads the figures now: `utime` and `stime` of `/proc/self/stat` (in clock ticks of
    /// 1/100 s, Linux's `USER_HZ`) and `VmHWM` of `/proc/self/status`. Zero where `/proc` is
    /// missing.
    pub fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // The command name (field 2) is in parentheses and may hold spaces: count from
        // after it. utime and stime are fields 14 and 15, so 12 and 13 after the name.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let peak_rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        Self {
            user_s: ticks(11) / 100.0,
            sys_s: ticks(12) / 100.0,
            peak_rss_kib,
        }
    }

    /// User plus system CPU seconds.
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }

    /// The CPU spent since `earlier` (the peak RSS stays this reading's).
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            user_s: self.user_s - earlier.user_s,
            sys_s: self.sys_s - earlier.sys_s,
            peak_rss_kib: self.peak_rss_kib,
        }
    }

    /// `client CPU 0.42 s (0.35 s user + 0.07 s sys), 420 ns/record, peak RSS 62.4 MiB.`
    pub fn line(&self, records: u64) -> String {
        format!(
            "client CPU {:.2} s ({:.2} s user + {:.2} s sys), {:.0} ns/record, peak RSS {:.1} MiB.",
            self.cpu_s(),
            self.user_s,
            self.sys_s,
            self.cpu_s() * 1e9 / records.max(1) as f64,
            self.peak_rss_kib as f64 / 1024.0
        )
    }
}

/// Delivery statistics of a producer run: every record's latency (send to acknowledgement,
/// in microseconds), bytes and failures, and the 5-second windows `ProducerPerformance`
/// prints while it runs.
#[derive(Debug, Clone)]
pub struct PerfStats {
    latencies_us: Vec<u32>,
    /// Whether every latency is kept (for the percentiles).
    keep_latencies: bool,
    delivered: u64,
    total_us: u64,
    max_us: u32,
    bytes: u64,
    failed: u64,
    window: Window,
}

#[derive(Debug, Clone, Default)]
struct Window {
    start: Option<std::time::Instant>,
    count: u64,
    bytes: u64,
    total_us: u64,
    max_us: u32,
}

impl PerfStats {
    /// Room for `records` latencies.
    pub fn with_capacity(records: usize) -> Self {
        Self {
            latencies_us: Vec::with_capacity(records),
            keep_latencies: true,
            delivered: 0,
            total_us: 0,
            max_us: 0,
            bytes: 0,
            failed: 0,
            window: Window::default(),
        }
    }

    /// Keeps no latency per record: the summary has the average and the maximum, its
    /// percentiles are 0 (for measuring the producer's memory without the 4 bytes per
    /// record the percentiles take).
    pub fn without_latencies() -> Self {
        Self {
            keep_latencies: false,
            ..Self::with_capacity(0)
        }
    }

    /// Records a delivered record of `bytes` bytes acknowledged `latency` after its send.
    /// Returns a window line (as Java's, every 5 s) when one is due.
    pub fn delivered(&mut self, latency: Duration, bytes: usize) -> Option<String> {
        self.delivered_at(std::time::Instant::now(), latency, bytes)
    }

    /// [`delivered`](Self::delivered) with the clock already read (`now`, the instant the
    /// latency was taken at): one clock read per record.
    pub fn delivered_at(
        &mut self,
        now: std::time::Instant,
        latency: Duration,
        bytes: usize,
    ) -> Option<String> {
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        if self.keep_latencies {
            self.latencies_us.push(us);
        }
        self.delivered += 1;
        self.total_us += u64::from(us);
        self.max_us = self.max_us.max(us);
        self.bytes += bytes as u64;
        let w = &mut self.window;
        let start = *w.start.get_or_insert(now);
        w.count += 1;
        w.bytes += bytes as u64;
        w.total_us += u64::from(us);
        w.max_us = w.max_us.max(us);
        let elapsed = now - start;
        if elapsed < Duration::from_secs(5) {
            return None;
        }
        let secs = elapsed.as_secs_f64();
        let line = format!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
            w.count,
            w.count as f64 / secs,
            w.bytes as f64 / secs / (1024.0 * 1024.0),
            w.total_us as f64 / w.count as f64 / 1000.0,
            f64::from(w.max_us) / 1000.0
        );
        *w = Window {
            start: Some(now),
            ..Window::default()
        };
        Some(line)
    }

    /// Records a failed record.
    pub fn failed(&mut self) {
        self.failed += 1;
    }

    /// Records delivered so far.
    pub fn delivered_count(&self) -> u64 {
        self.delivered
    }

    /// Records failed so far.
    pub fn failed_count(&self) -> u64 {
        self.failed
    }

    /// The latency percentiles of the delivered records.
    pub fn latency_summary(&self) -> LatencySummary {
        if self.keep_latencies || self.delivered == 0 {
            return LatencySummary::of(&self.latencies_us);
        }
        LatencySummary {
            avg_us: self.total_us as f64 / self.delivered as f64,
            max_us: self.max_us,
            ..LatencySummary::default()
        }
    }

    /// Java `ProducerPerformance`'s final line, for `sent` records over `elapsed`:
    /// `N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency,
    /// p50 ms 50th, p95 ms 95th, p99 ms 99th, p99.9 ms 99.9th.` (MB are MiB there too;
    /// percentiles in whole milliseconds, as Java's).
    pub fn java_summary(&self, sent: u64, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let l = self.latency_summary();
        format!(
            "{sent} records sent, {:.6} records/sec ({:.2} MB/sec), {:.2} ms avg latency, \
             {:.2} ms max latency, {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
            sent as f64 / secs,
            self.bytes as f64 / secs / (1024.0 * 1024.0),
            l.avg_us / 1000.0,
            f64::from(l.max_us) / 1000.0,
            l.p50_us / 1000,
            l.p95_us / 1000,
            l.p99_us / 1000,
            l.p999_us / 1000,
        )
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LatencySummary {
    /// Mean.
    pub avg_us: f64,
    /// Median.
    pub p50_us: u32,
    /// 95th percentile.
    pub p95_us: u32,
    /// 99th percentile.
    pub p99_us: u32,
    /// 99.9th percentile.
    pub p999_us: u32,
    /// Maximum.
    pub max_us: u32,
}

impl LatencySummary {
    /// The summary of `latencies_us` (Java's rule: the value at index `p * n` once sorted).
    ///
    /// ```
    /// let l = kafka_edge_examples::LatencySummary::of(&(1..=1000).collect::<Vec<u32>>());
    /// assert_eq!((l.p50_us, l.p99_us, l.max_us), (501, 991, 1000));
    /// ```
    pub fn of(latencies_us: &[u32]) -> Self {
        if latencies_us.is_empty() {
            return Self::default();
        }
        let mut v = latencies_us.to_vec();
        v.sort_unstable();
        let at = |p: f64| v[((p * v.len() as f64) as usize).min(v.len() - 1)];
        Self {
            avg_us: v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64,
            p50_us: at(0.5),
            p95_us: at(0.95),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: v[v.len() - 1],
        }
    }

    /// `p50 1.9 ms, p95 4.1 ms, p99 6.0 ms, p99.9 8.2 ms, max 9.0 ms`
    pub fn line(&self) -> String {
        let ms = |us: u32| f64::from(us) / 1000.0;
        format!(
            "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
            ms(self.p50_us),
            ms(self.p95_us),
            ms(self.p99_us),
            ms(self.p999_us),
            ms(self.max_us)
        )
    }
}

/// Record values as `ProducerPerformance` makes them without a payload file: `size` random
/// bytes from `A` to `Z`, new for every record (from a xorshift generator here; Java uses a
/// `SplittableRandom`).
#[derive(Debug, Clone)]
pub struct Payload {
    bytes: Vec<u8>,
    state: u64,
}

impl Payload {
    /// A generator of `size`-byte values.
    pub fn new(size: usize, seed: u64) -> Self {
        Self {
            bytes: vec![b'A'; size],
            state: seed | 1,
        }
    }

    /// Fills the value anew and returns it.
    pub fn next_value(&mut self) -> &[u8] {
        let mut x = self.state;
        for chunk in self.bytes.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for (i, b) in chunk.iter_mut().enumerate() {
                // Eight letters from one 64-bit draw: 8 bits each, reduced to 0..26.
                *b = b'A' + (((x >> (i * 8)) & 0xff) * 26 / 256) as u8;
            }
        }
        self.state = x;
        &self.bytes
    }
}

/// The digest of a partition's records in offset order, as `scripts/judge --digest` prints
/// it: SHA-256 over, for every record, its key length as a 4-byte big-endian signed integer
/// (-1 for a null key), the key, the value length likewise and the value. Headers and
/// timestamps are not part of it.
#[derive(Debug, Clone, Default)]
pub struct RecordDigest {
    hasher: Sha256,
    count: u64,
}

impl RecordDigest {
    /// Adds the next record of the partition.
    pub fn update(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) {
        for part in [key, value] {
            match part {
                Some(b) => {
                    let len = i32::try_from(b.len()).unwrap_or(i32::MAX);
                    self.hasher.update(len.to_be_bytes());
                    self.hasher.update(b);
                }
                None => self.hasher.update((-1i32).to_be_bytes()),
            }
        }
        self.count += 1;
    }

    /// The number of records and the hex SHA-256.
    pub fn finish(self) -> (u64, String) {
        let mut hex = String::with_capacity(64);
        for b in self.hasher.finalize() {
            let _ = write!(hex, "{b:02x}");
        }
        (self.count, hex)
    }
}

/// Per partition: record count and hex SHA-256 ([`RecordDigest`]).
pub type TopicDigest = BTreeMap<i32, (u64, String)>;

/// Parses `scripts/judge --digest` output: one JSON object
/// `{"0": {"count": N, "sha256": "hex"}, ...}`. A small parser for exactly that shape, so
/// the examples need no JSON library.
///
/// ```
/// let d = kafka_edge_examples::parse_judge_digest(
///     r#"{"0": {"count": 2, "sha256": "ab"}, "1": {"count": 0, "sha256": "cd"}}"#,
/// ).unwrap();
/// assert_eq!(d[&0], (2, "ab".to_string()));
/// assert_eq!(d[&1].0, 0);
/// ```
pub fn parse_judge_digest(text: &str) -> Result<TopicDigest, String> {
    let bad = || format!("unexpected judge digest: {text:?}");
    let mut out = TopicDigest::new();
    let body = text.trim().strip_prefix('{').ok_or_else(bad)?;
    let body = body.strip_suffix('}').ok_or_else(bad)?;
    // Entries look like `"P": {"count": N, "sha256": "H"}`; split on the closing braces.
    for entry in body.split('}') {
        let entry = entry.trim().trim_start_matches(',').trim();
        if entry.is_empty() {
            continue;
        }
        let (part, fields) = entry.split_once(':').ok_or_else(bad)?;
        let part: i32 = part.trim().trim_matches('"').parse().map_err(|_| bad())?;
        let fields = fields.trim().trim_start_matches('{');
        let (mut count, mut sha) = (None, None);
        for field in fields.split(',') {
            let (k, v) = field.split_once(':').ok_or_else(bad)?;
            match k.trim().trim_matches('"') {
                "count" => count = v.trim().parse::<u64>().ok(),
                "sha256" => sha = Some(v.trim().trim_matches('"').to_string()),
                _ => {}
            }
        }
        out.insert(part, (count.ok_or_else(bad)?, sha.ok_or_else(bad)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_python() {
        // hashlib.sha256(b"\x00\x00\x00\x01k" b"\x00\x00\x00\x01v" b"\xff\xff\xff\xff"
        //                b"\x00\x00\x00\x00").hexdigest()
        let mut d = RecordDigest::default();
        d.update(Some(b"k"), Some(b"v"));
        d.update(None, Some(b""));
        let mut h = Sha256::new();
        h.update(b"\x00\x00\x00\x01k\x00\x00\x00\x01v\xff\xff\xff\xff\x00\x00\x00\x00");
        let want: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(d.finish(), (2, want));
    }

    #[test]
    fn payload_is_letters_and_changes() {
        let mut p = Payload::new(100, 7);
        let a = p.next_value().to_vec();
        let b = p.next_value().to_vec();
        assert_eq!(a.len(), 100);
        assert!(a.iter().chain(&b).all(u8::is_ascii_uppercase));
        assert_ne!(a, b);
    }

    #[test]
    fn java_summary_format() {
        let mut s = PerfStats::with_capacity(4);
        for ms in [1, 2, 3, 4] {
            let _ = s.delivered(Duration::from_millis(ms), 100);
        }
        assert_eq!(
            s.java_summary(4, Duration::from_secs(2)),
            "4 records sent, 2.000000 records/sec (0.00 MB/sec), 2.50 ms avg latency, \
             4.00 ms max latency, 3 ms 50th, 4 ms 95th, 4 ms 99th, 4 ms 99.9th."
        );
    }
}
