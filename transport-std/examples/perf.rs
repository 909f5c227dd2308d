//! Throughput of the std producer: `cargo run --release -p kafka-edge-std --example perf --
//! BOOTSTRAP TOPIC [RECORDS] [RECORD_SIZE] [key=value ...]` sends RECORDS records of
//! RECORD_SIZE bytes (defaults: 1,000,000 of 100 bytes, acks=1, linger.ms=5) and prints
//! records/s, MB/s and the process's CPU seconds (user + system, from /proc/self/stat).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kafka_edge_std::{Producer, ProducerRecord};

/// User and system CPU seconds of this process so far (Linux; 0 elsewhere).
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 14th field.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (get(11) / tick, get(12) / tick)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bootstrap = args
        .first()
        .ok_or("usage: perf BOOTSTRAP TOPIC [RECORDS] [SIZE] [k=v..]")?;
    let topic = args
        .get(1)
        .ok_or("usage: perf BOOTSTRAP TOPIC [RECORDS] [SIZE] [k=v..]")?;
    let records: u64 = args.get(2).map_or(Ok(1_000_000), |s| s.parse())?;
    let size: usize = args.get(3).map_or(Ok(100), |s| s.parse())?;
    let mut builder = Producer::builder()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", 5)
        .set("client.id", "perf");
    for kv in args.iter().skip(4) {
        let (k, v) = kv.split_once('=').ok_or("extra arguments are key=value")?;
        builder = builder.set(k, v);
    }
    let producer = builder.build()?;
    let value = vec![b'x'; size];
    // Metadata and connections first.
    producer
        .send(&ProducerRecord::new(topic).value(&value))?
        .wait()?;
    let failed = Arc::new(AtomicU64::new(0));
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    for _ in 0..records {
        let failed = failed.clone();
        producer.send_with_callback(&ProducerRecord::new(topic).value(&value), move |r| {
            if r.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        })?;
    }
    let sent = t0.elapsed();
    producer.flush();
    let elapsed = t0.elapsed();
    let cpu1 = cpu_seconds();
    producer.close(Duration::from_secs(10));
    let secs = elapsed.as_secs_f64();
    let (user, sys) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
    println!(
        "{records} records of {size} B in {secs:.2} s (send loop {:.2} s): {:.0} records/s, \
         {:.1} MB/s; CPU {user:.2} s user + {sys:.2} s system = {:.0} ns/record; failed {}",
        sent.as_secs_f64(),
        records as f64 / secs,
        (records as f64 * size as f64) / secs / 1e6,
        (user + sys) * 1e9 / records as f64,
        failed.load(Ordering::Relaxed)
    );
    Ok(())
}
