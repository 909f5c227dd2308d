//! The HTTP service of `kafka-edge-http` under load against the test ground's one-node
//! Apache Kafka (`KAFKA_EDGE_DIR_1`): a deliberately tiny `buffer.memory` keeps the buffer
//! full part of the time, while the service (on a single-threaded tokio runtime, so that
//! one blocked send would stall everything) keeps answering `/health`. Every POST answered
//! `200` is read back by the librdkafka judge at the offset the service reported.
//!
//! `HTTP_LOAD_POSTS` (default 2400) sets the number of POSTs for longer runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kafka_edge_examples::http::{self, Failure, Written};
use kafka_edge_std::Producer;
use kafka_edge_tests::{
    Cluster, Ground, TestRecord, assert_read_back_exactly, hex, judge, topic_name,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The one-node cluster, waiting (up to 5 minutes) for `scripts/kafka up` to finish.
fn cluster() -> Cluster {
    Cluster::wait(Ground::Kafka1)
}

/// One HTTP/1.1 request on its own connection: the status and the body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let key_header = key.map_or(String::new(), |k| format!("{}: {k}\r\n", http::KEY_HEADER));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n{key_header}\
         Connection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write");
    let mut response = Vec::new();
    s.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response);
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let at = text.find("\r\n\r\n").expect("end of headers") + 4;
    (status, response[at..].to_vec())
}

/// Latencies of `GET /health` every 5 ms until `stop`: each with the instant it was sent.
async fn probe_health(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<(Instant, Duration)> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let (status, body) = request(addr, "GET", "/health", None, b"").await;
        assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));
        out.push((t, t.elapsed()));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn posts_under_load_with_a_full_buffer_keep_the_service_responsive() {
    kafka_edge_tests::init_log();
    let c = cluster();
    let topic = topic_name("http-load");
    c.create_topic(&topic, 3, 1, &[]);
    let posts: usize = std::env::var("HTTP_LOAD_POSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2400);
    // Four 1 KiB slots, values of 500 to 900 bytes: four records fill the buffer.
    let producer = Producer::builder()
        .set("bootstrap.servers", &c.bootstrap)
        .set("client.id", "http-load")
        .set("batch.size", 1024)
        .set("buffer.memory", 4096)
        .set("linger.ms", 1)
        .set("acks", "all")
        .set("max.block.ms", 2000)
        .build()
        .unwrap();

    // The service alone on one thread.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let service_producer = producer.clone();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            axum::serve(listener, http::router(service_producer))
                .with_graceful_shutdown(async {
                    let _ = shutdown_rx.await;
                })
                .await
                .unwrap();
        });
    });

    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (accepted, shed, health, missing) = clients.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let prober = tokio::spawn(probe_health(addr, stop.clone()));
        // A POST to a topic that does not exist waits `max.block.ms` for its metadata.
        let missing = tokio::spawn(async move {
            let t = Instant::now();
            let path = format!("/topics/{}", topic_name("http-missing"));
            let (status, body) = request(addr, "POST", &path, None, b"v").await;
            (status, body, t, t.elapsed())
        });
        // One POST first, so that the topic's metadata is known when `mode=try` starts.
        let warm_up = format!("/topics/{topic}?key=warm-up");
        let (status, body) = request(addr, "POST", &warm_up, None, b"warm-up").await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let w: Written = serde_json::from_slice(&body).expect("json");
        let mut accepted = vec![("warm-up".to_string(), b"warm-up".to_vec(), w)];
        const CLIENTS: usize = 32;
        let mut tasks = Vec::new();
        for client in 0..CLIENTS {
            let topic = topic.clone();
            tasks.push(tokio::spawn(async move {
                // Odd clients shed load with `mode=try`; even ones wait for memory.
                let mode = if client % 2 == 1 { "&mode=try" } else { "" };
                let mut accepted = Vec::new();
                let mut shed = 0;
                for i in (client..posts).step_by(CLIENTS) {
                    let key = format!("user-{}", i % 50);
                    let value = format!("{i:06}-{}", "x".repeat(500 + i % 400)).into_bytes();
                    // Half the keys in the query string, half in the header.
                    let (path, header) = if i % 4 < 2 {
                        (format!("/topics/{topic}?key={key}{mode}"), None)
                    } else {
                        (
                            format!("/topics/{topic}?{}", mode.trim_start_matches('&')),
                            Some(key.as_str()),
                        )
                    };
                    let (status, body) = request(addr, "POST", &path, header, &value).await;
                    match status {
                        200 => {
                            let w: Written = serde_json::from_slice(&body).expect("json");
                            accepted.push((key.clone(), value, w));
                        }
                        503 if !mode.is_empty() => {
                            let f: Failure = serde_json::from_slice(&body).expect("json");
                            assert_eq!(f.kind, "BufferFull", "{f:?}");
                            assert!(f.retriable);
                            shed += 1;
                        }
                        _ => panic!("POST {path}: {status} {}", String::from_utf8_lossy(&body)),
                    }
                }
                (accepted, shed)
            }));
        }
        let mut shed = 0;
        for t in tasks {
            let (a, s) = t.await.expect("client");
            accepted.extend(a);
            shed += s;
        }
        let missing = missing.await.expect("missing-topic POST");
        stop.store(true, Ordering::Relaxed);
        let health = prober.await.expect("prober");
        (accepted, shed, health, missing)
    });
    let _ = shutdown_tx.send(());
    server.join().unwrap();
    drop(producer);

    // Responsiveness: every probe, and those sent while the missing-topic POST waited.
    let (status, body, sent_at, waited) = missing;
    let f: Failure = serde_json::from_slice(&body).expect("json");
    assert_eq!((status, f.kind.as_str()), (503, "MetadataTimeout"), "{f:?}");
    assert!(waited >= Duration::from_millis(1990), "{waited:?}");
    let during: Vec<Duration> = health
        .iter()
        .filter(|(t, _)| *t >= sent_at && *t + Duration::from_millis(1) < sent_at + waited)
        .map(|(_, l)| *l)
        .collect();
    let mut all: Vec<Duration> = health.iter().map(|(_, l)| *l).collect();
    all.sort();
    eprintln!(
        "{posts} POSTs: {} produced (200), {shed} shed (503 BufferFull); /health: {} probes, \
         p50 {:?}, p99 {:?}, max {:?}; {} probes during the {waited:?} metadata wait, max {:?}",
        accepted.len(),
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or_default(),
        during.len(),
        during.iter().max().copied().unwrap_or_default(),
    );
    assert!(shed > 0, "the buffer was never full: no try POST was shed");
    assert_eq!(
        accepted.len() + shed,
        posts + 1,
        "every POST answered 200 or 503"
    );
    assert!(
        during.len() >= 20,
        "only {} health probes answered during a 2 s wait for metadata",
        during.len()
    );
    // A service blocked by the waiting send would answer no probe for 2 s.
    assert!(
        during.iter().all(|l| *l < Duration::from_millis(1000)),
        "a health probe waited {:?}",
        during.iter().max()
    );

    // Every produced POST, read back in the order of the offsets reported.
    let mut accepted = accepted;
    accepted.sort_by_key(|(_, _, w)| (w.partition, w.offset));
    let sent: Vec<TestRecord> = accepted
        .iter()
        .map(|(key, value, w)| TestRecord {
            key: Some(hex(key.as_bytes())),
            value: Some(hex(value)),
            headers: vec![],
            timestamp: w.timestamp,
            partition: None,
        })
        .collect();
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&sent, &judged, |i| accepted[i].2.partition);
    // And each at the offset its answer named.
    let at: std::collections::HashMap<(i32, i64), &Option<String>> = judged
        .iter()
        .map(|j| ((j.partition, j.offset), &j.value))
        .collect();
    for (r, (_, _, w)) in sent.iter().zip(&accepted) {
        assert_eq!(at.get(&(w.partition, w.offset)), Some(&&r.value), "{w:?}");
    }
}
