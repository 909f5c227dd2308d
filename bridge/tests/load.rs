//! Load run: N browser-like clients (the core producer over WebSockets, one WebSocket per
//! Kafka connection) producing 100-byte records for T seconds through the bridge, then the
//! same through websockify, on the one-node Apache Kafka (`KAFKA_EDGE_DIR_1`).
//!
//! Reports, for each gateway: records and MB forwarded (requests and responses), the
//! gateway's peak RSS (VmHWM from /proc; for websockify, which forks a process per
//! connection, the sum over its process tree, which counts shared pages once per process)
//! and its peak PSS sampled every 250 ms (shared pages split: the fair sum), and its CPU
//! time per MB forwarded (utime + stime from /proc, children included).
//!
//! Short by default (CI): 20 clients for 10 s, bridge only unless `BRIDGE_LOAD_WEBSOCKIFY`
//! names a websockify executable. The full run: `scripts/bridge load --clients 200
//! --seconds 60` (sets `BRIDGE_LOAD_CLIENTS`, `BRIDGE_LOAD_SECONDS`,
//! `BRIDGE_LOAD_WEBSOCKIFY`, and builds in release).

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Bridge, Outcome, WsClient, WsLoop, runtime, ws_producer};
use kafka_edge_core::{ProducerRecord, SendError};
use kafka_edge_tests::{Cluster, Ground, topic_name};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the clients did together.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    delivered: u64,
    failed: u64,
    bytes_out: u64,
    bytes_in: u64,
}

/// What a client keeps open until the gateway has been measured (its WebSockets: closing
/// them makes websockify's per-connection processes exit, and their CPU time would be lost
/// until reaped).
type KeepOpen = Box<dyn std::any::Any + Send>;

/// One client: sends records as fast as the producer takes them until `stop`, then
/// flushes and waits for every outcome.
fn client(
    rt: tokio::runtime::Handle,
    ws: WsClient,
    topic: String,
    stop: Arc<AtomicBool>,
) -> (Totals, KeepOpen) {
    let mut p = ws_producer(&[("linger.ms", "5")]);
    let mut lp = WsLoop::new(rt, ws);
    let value = [b'x'; 100];
    let mut sent = 0u64;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let rec = ProducerRecord {
            topic: &topic,
            partition: None,
            key: None,
            value: Some(&value),
            headers: &[],
            timestamp: 1_700_000_000_000,
        };
        match p.send(lp.now(), &rec) {
            Ok(_) => {
                sent += 1;
                i += 1;
                if i.is_multiple_of(256) {
                    lp.step(&mut p);
                }
            }
            Err(SendError::BufferFull | SendError::MetadataNotReady) => lp.step(&mut p),
            Err(e) => panic!("send: {e}"),
        }
    }
    p.flush(lp.now());
    let until = Instant::now() + Duration::from_secs(120);
    let counted = |lp: &WsLoop| lp.outcomes.iter().map(|o| o.count() as u64).sum::<u64>();
    while !(p.is_flushed() && counted(&lp) == sent) {
        assert!(
            Instant::now() < until,
            "outcomes missing 120 s after the run"
        );
        lp.step(&mut p);
    }
    let mut t = Totals {
        bytes_out: lp.bytes_out,
        bytes_in: lp.bytes_in,
        ..Totals::default()
    };
    for o in &lp.outcomes {
        match o {
            Outcome::Delivered { tickets, .. } => t.delivered += u64::from(tickets.count()),
            Outcome::Failed { tickets, .. } => t.failed += u64::from(tickets.count()),
        }
    }
    (t, Box::new((p, lp)))
}

/// A process and its descendants, from /proc.
fn tree(root: u32) -> Vec<u32> {
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        if let Ok(children) =
            std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        {
            all.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        i += 1;
    }
    all
}

/// CPU seconds of `pid` (user + system), with its waited-for children.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // utime, stime, cutime, cstime are fields 14-17 (1-based); `rest` starts at field 3.
    let ticks: f64 = f.get(11..15).map(|s| s.iter().sum()).unwrap_or(0.0);
    ticks / 100.0
}

fn hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Proportional set size of `pid` in KiB (shared pages split among the processes that
/// share them: the fair sum over websockify's forked processes).
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// One gateway's figures.
#[derive(Debug)]
struct Figures {
    gateway: &'static str,
    totals: Totals,
    seconds: f64,
    cpu_s: f64,
    peak_rss_mib: f64,
    peak_pss_mib: f64,
}

impl Figures {
    fn mb(&self) -> f64 {
        (self.totals.bytes_out + self.totals.bytes_in) as f64 / 1e6
    }

    fn row(&self) -> String {
        format!(
            "{:<11} {:>9} records {:>8.1} MB {:>7.1} MB/s  peak RSS {:>7.1} MiB (PSS {:>6.1} MiB)  CPU {:>6.2} s = {:>6.2} ms/MB",
            self.gateway,
            self.totals.delivered,
            self.mb(),
            self.mb() / self.seconds,
            self.peak_rss_mib,
            self.peak_pss_mib,
            self.cpu_s,
            1000.0 * self.cpu_s / self.mb().max(1e-9),
        )
    }
}

/// Runs `clients` clients through `ws` for `seconds`, measuring the process tree of `pid`.
fn run(
    gateway: &'static str,
    pid: u32,
    ws: &WsClient,
    topic: &str,
    clients: u64,
    seconds: u64,
) -> Figures {
    let rt = runtime();
    let stop = Arc::new(AtomicBool::new(false));
    let cpu0: f64 = tree(pid).into_iter().map(cpu_seconds).sum();
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (h, ws, topic, stop) = (
                rt.handle().clone(),
                ws.clone(),
                topic.to_owned(),
                stop.clone(),
            );
            std::thread::spawn(move || client(h, ws, topic, stop))
        })
        .collect();
    let mut peak_kib = 0;
    let mut peak_pss_kib = 0;
    let mut reported = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(250));
        let pids = tree(pid);
        peak_kib = peak_kib.max(pids.iter().copied().map(hwm_kib).sum());
        peak_pss_kib = peak_pss_kib.max(pids.into_iter().map(pss_kib).sum());
        let s = started.elapsed().as_secs();
        if s >= reported + 10 {
            reported = s;
            eprintln!(
                "{gateway}: {s}/{seconds} s, peak RSS so far {:.1} MiB",
                peak_kib as f64 / 1024.0
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut totals = Totals::default();
    let mut open = Vec::new();
    for h in handles {
        let (t, keep) = h.join().expect("client thread");
        open.push(keep);
        totals.delivered += t.delivered;
        totals.failed += t.failed;
        totals.bytes_out += t.bytes_out;
        totals.bytes_in += t.bytes_in;
    }
    let seconds = started.elapsed().as_secs_f64();
    let pids = tree(pid);
    peak_kib = peak_kib.max(pids.iter().copied().map(hwm_kib).sum());
    let cpu1: f64 = pids.into_iter().map(cpu_seconds).sum();
    drop(open);
    Figures {
        gateway,
        totals,
        seconds,
        cpu_s: (cpu1 - cpu0).max(0.0),
        peak_rss_mib: peak_kib as f64 / 1024.0,
        peak_pss_mib: peak_pss_kib as f64 / 1024.0,
    }
}

struct Websockify(Child);

impl Drop for Websockify {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_websockify(exe: &str, target: &str) -> (Websockify, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(exe)
        .arg(format!("127.0.0.1:{port}"))
        .arg(target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start websockify");
    let until = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "websockify did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    (Websockify(child), port)
}

#[test]
fn load_through_the_bridge_and_websockify() {
    let clients = env_or("BRIDGE_LOAD_CLIENTS", 20);
    let seconds = env_or("BRIDGE_LOAD_SECONDS", 10);
    let cluster = Cluster::wait(Ground::Kafka1);
    let topic = topic_name("bridge-ok-load");
    cluster.create_topic(&topic, 6, 1, &[]);

    let limits = format!("max_connections_per_ip = {}", clients * 4 + 16);
    let bridge = Bridge::start(&cluster, "", &limits);
    let fig = run(
        "bridge",
        bridge.pid(),
        &WsClient::of(&bridge),
        &topic,
        clients,
        seconds,
    );
    eprintln!("load: {clients} clients x {seconds} s, 100-byte records, acks=all, idempotent");
    eprintln!("{}", fig.row());
    assert_eq!(fig.totals.failed, 0, "records failed through the bridge");
    assert!(fig.totals.delivered > 0, "nothing delivered");
    let forwarded = bridge.metric("kafka_edge_bridge_bytes_total{direction=\"to_broker\"}")
        + bridge.metric("kafka_edge_bridge_bytes_total{direction=\"to_client\"}");
    assert_eq!(
        forwarded as u64,
        fig.totals.bytes_out + fig.totals.bytes_in,
        "the bridge forwarded other bytes than the clients exchanged"
    );
    // Bounded memory: per connection at most a frame each way plus buffers.
    let bound_mib = 64.0 + clients as f64 * 2.0;
    assert!(
        fig.peak_rss_mib < bound_mib,
        "bridge peak RSS {:.1} MiB over {bound_mib} MiB",
        fig.peak_rss_mib
    );
    drop(bridge);

    let Some(exe) = std::env::var("BRIDGE_LOAD_WEBSOCKIFY")
        .ok()
        .filter(|e| !e.is_empty())
    else {
        eprintln!("websockify: skipped (BRIDGE_LOAD_WEBSOCKIFY not set)");
        return;
    };
    let target = cluster.bootstrap.split(',').next().expect("bootstrap");
    let (ws_proc, port) = start_websockify(&exe, target);
    let client = WsClient {
        base: format!("ws://127.0.0.1:{port}/"),
        bridge_paths: false,
        token: None,
        origin: None,
        tls: None,
    };
    let wfig = run(
        "websockify",
        ws_proc.0.id(),
        &client,
        &topic,
        clients,
        seconds,
    );
    eprintln!("{}", wfig.row());
    assert_eq!(wfig.totals.failed, 0, "records failed through websockify");
    eprintln!(
        "bridge CPU per MB = {:.2} x websockify's; peak RSS {:.1} vs {:.1} MiB",
        (fig.cpu_s / fig.mb()) / (wfig.cpu_s / wfig.mb()).max(1e-12),
        fig.peak_rss_mib,
        wfig.peak_rss_mib
    );
}
