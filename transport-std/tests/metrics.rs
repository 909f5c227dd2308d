//! Java's producer metrics against one Apache Kafka node: every value checked against
//! counts the test knows (records sent, errors, retries after a forced error, bytes,
//! buffer memory), per topic, over sampling windows, and through the Prometheus text.

mod common;

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{StallingProxy, builder, cluster, init_log};
use kafka_edge_std::{Metrics, ProducerRecord, SendError};
use kafka_edge_tests::{Ground, judge, topic_name};

const T: Duration = Duration::from_secs(60);

/// `a == b` for metric values, `NaN` equal to itself.
fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

/// Parses Prometheus text lines `name{k="v",...} value` (comments skipped) into
/// `(name, labels) -> value`, undoing the label escapes.
fn parse_prometheus(text: &str) -> HashMap<(String, Vec<(String, String)>), f64> {
    let mut out = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let open = line.find('{').expect("labels");
        let close = line.rfind('}').expect("labels end");
        let name = line[..open].to_string();
        let value: f64 = line[close + 1..].trim().parse().expect("a number");
        let mut labels = Vec::new();
        let mut rest = &line[open + 1..close];
        while !rest.is_empty() {
            let eq = rest.find("=\"").expect("k=\"v\"");
            let key = rest[..eq].to_string();
            let mut value = String::new();
            let mut chars = rest[eq + 2..].char_indices();
            let end = loop {
                let (i, c) = chars.next().expect("closing quote");
                match c {
                    '\\' => match chars.next().expect("escape").1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break eq + 2 + i + 1,
                    c => value.push(c),
                }
            };
            labels.push((key, value));
            rest = rest[end..].strip_prefix(',').unwrap_or(&rest[end..]);
        }
        labels.sort();
        assert!(
            out.insert((name.clone(), labels), value).is_none(),
            "one sample per name and labels: {name}"
        );
    }
    out
}

/// Every value of `m` appears in its Prometheus text, with Java's name turned into
/// Prometheus', and nothing else does.
fn assert_prometheus_matches(m: &Metrics) {
    let text = m.to_prometheus("kafka_producer", &[("env", "ci \"1\"")]);
    let parsed = parse_prometheus(&text);
    let values = m.values();
    assert_eq!(parsed.len(), values.len(), "{text}");
    for v in &values {
        let group = if v.topic.is_some() { "_topic" } else { "" };
        let name = format!("kafka_producer{group}_{}", v.name.replace('-', "_"));
        let mut labels = vec![
            ("client_id".to_string(), m.client_id.clone()),
            ("env".to_string(), "ci \"1\"".to_string()),
        ];
        if let Some(t) = &v.topic {
            labels.push(("topic".to_string(), t.clone()));
        }
        labels.sort();
        let got = parsed
            .get(&(name.clone(), labels))
            .unwrap_or_else(|| panic!("{name} missing from:\n{text}"));
        assert!(same(*got, v.value), "{name}: {got} != {}", v.value);
        let kind = match v.kind {
            kafka_edge_std::MetricKind::Counter => "counter",
            _ => "gauge",
        };
        assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
    }
}

/// Records to two topics and one record the broker refuses (`MESSAGE_TOO_LARGE`): totals,
/// rates over the window, per-topic counts, bytes, buffer memory back after flush, and
/// the Prometheus text parsed back.
#[test]
fn counts_records_bytes_and_errors_per_topic() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let (a, b, small) = (
        topic_name("std-metrics-a"),
        topic_name("std-metrics-b"),
        topic_name("std-metrics-small"),
    );
    c.create_topic(&a, 3, 1, &[]);
    c.create_topic(&b, 1, 1, &[]);
    c.create_topic(&small, 1, 1, &["max.message.bytes=2000"]);
    // A window longer than the test: every send is inside it, so rate = total / window.
    let p = builder(
        &c,
        &[
            ("client.id", "std-metrics"),
            ("linger.ms", "5"),
            ("batch.size", "16384"),
            ("buffer.memory", "1048576"),
            ("metrics.sample.window.ms", "120000"),
        ],
    )
    .build()
    .unwrap();
    let (n_a, n_b) = (3_000u64, 1_000u64);
    let value = vec![b'v'; 100];
    let mut futures = Vec::new();
    for i in 0..n_a + n_b {
        let topic = if i % 4 == 3 { &b } else { &a };
        futures.push(p.send(&ProducerRecord::new(topic).value(&value)).unwrap());
    }
    for f in futures {
        f.wait_timeout(T).expect("an outcome").expect("delivered");
    }
    // One record over the topic's max.message.bytes, alone in its batch: refused.
    let big = vec![b'X'; 5_000];
    let refused = p
        .send(&ProducerRecord::new(&small).value(&big))
        .unwrap()
        .wait_timeout(T)
        .expect("an outcome");
    assert!(refused.is_err(), "{refused:?}");
    p.flush();
    let m = p.metrics();
    eprintln!("{m:#?}");

    // Every record went into exactly one request (a healthy broker: no retries).
    assert_eq!(m.record_retry_total, 0, "{m:?}");
    assert_eq!(m.record_send_total, n_a + n_b + 1);
    assert_eq!(m.record_error_total, 1);
    assert_eq!(m.client_id, "std-metrics");
    // Rates are totals over the window (all of it inside the first window).
    assert!(m.window_ms >= 120_000, "{}", m.window_ms);
    let secs = m.window_ms as f64 / 1000.0;
    assert!(same(m.record_send_rate * secs, (n_a + n_b + 1) as f64));
    assert!(same(m.record_error_rate * secs, 1.0));
    assert!(same(m.record_retry_rate, 0.0));

    let topic = |name: &str| {
        m.topics
            .iter()
            .find(|t| t.topic == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", m.topics))
    };
    let (ta, tb, ts) = (topic(&a), topic(&b), topic(&small));
    assert_eq!(
        (
            ta.record_send_total,
            tb.record_send_total,
            ts.record_send_total
        ),
        (n_a, n_b, 1)
    );
    assert_eq!(
        (
            ta.record_error_total,
            tb.record_error_total,
            ts.record_error_total
        ),
        (0, 0, 1)
    );
    assert!(same(tb.record_send_rate * secs, n_b as f64));
    // Bytes: each 100-byte record takes 107..=112 bytes in a batch (attributes, varint
    // deltas and lengths, no key, no headers), each batch 61 more.
    let batches = m.counters.batches_sent;
    for (t, n) in [(ta, n_a), (tb, n_b)] {
        assert!(
            t.byte_total >= n * 107 + 61,
            "{}: {}",
            t.topic,
            t.byte_total
        );
        assert!(
            t.byte_total <= n * 112 + 61 * batches,
            "{}: {}",
            t.topic,
            t.byte_total
        );
        assert!(same(t.byte_rate * secs, t.byte_total as f64));
        assert!(same(t.compression_rate, 1.0));
    }
    assert!(ts.byte_total >= 5_000);
    // The batch bytes are the topics' bytes; the wire carries them plus request framing.
    let batch_bytes = ta.byte_total + tb.byte_total + ts.byte_total;
    assert!(same(m.batch_size_avg * batches as f64, batch_bytes as f64));
    assert!(m.batch_size_max >= ts.byte_total as f64);
    // A batch grows past batch.size while it waits, up to batch.max.size (256 KiB).
    assert!(m.batch_size_max <= 262_144.0 || m.batch_size_max == ts.byte_total as f64);
    assert!(m.outgoing_byte_total > batch_bytes);
    assert_eq!(m.outgoing_byte_total, m.counters.bytes_sent);
    assert!(same(
        m.outgoing_byte_rate * secs,
        m.outgoing_byte_total as f64
    ));
    assert!(same(
        m.records_per_request_avg * m.counters.produce_requests as f64,
        (n_a + n_b + 1) as f64
    ));
    assert!(same(m.compression_rate_avg, 1.0));
    // Latency: every Produce request answered and timed.
    assert!(m.request_latency_avg >= 0.0 && m.request_latency_max >= m.request_latency_avg);
    assert!(m.request_latency_max < 60_000.0);
    // Buffer memory is all back once every outcome is out.
    assert_eq!(m.buffer_total_bytes, 1_048_576);
    assert_eq!(m.buffer_available_bytes, m.buffer_total_bytes);
    assert!(same(m.bufferpool_wait_ratio, 0.0));
    assert_prometheus_matches(&m);
    p.close(T);
    assert_eq!(
        judge(&c, &b).len() as u64,
        n_b,
        "the broker holds topic b's records"
    );
}

/// A broker that stops answering: the request times out, the batch is retried on a new
/// connection once the broker answers again, and the retry is counted.
#[test]
fn counts_a_retry_after_a_request_timeout() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-metrics-retry");
    c.create_topic(&topic, 1, 1, &[]);
    let (proxy, p) = StallingProxy::with_producer(
        &c,
        &[
            ("linger.ms", "0"),
            ("request.timeout.ms", "1500"),
            ("delivery.timeout.ms", "60000"),
        ],
    );
    p.send(&ProducerRecord::new(&topic).value(b"warm-up"))
        .unwrap()
        .wait_timeout(T)
        .expect("an outcome")
        .expect("delivered");
    assert_eq!(p.metrics().record_retry_total, 0);
    proxy.stall(true);
    let f = p
        .send(&ProducerRecord::new(&topic).value(b"retried"))
        .unwrap();
    // The request times out after 1.5 s and the batch is re-enqueued.
    let deadline = Instant::now() + Duration::from_secs(20);
    while p.metrics().record_retry_total == 0 {
        assert!(Instant::now() < deadline, "no retry: {:?}", p.metrics());
        std::thread::sleep(Duration::from_millis(50));
    }
    proxy.stall(false);
    f.wait_timeout(T).expect("an outcome").expect("delivered");
    let m = p.metrics();
    eprintln!("{m:#?}");
    assert_eq!(m.record_retry_total, 1, "{m:?}");
    assert_eq!(m.record_error_total, 0);
    // warm-up, the first attempt, the retry.
    assert_eq!(m.record_send_total, 3);
    let t = m
        .topics
        .iter()
        .find(|t| t.topic == topic)
        .expect("the topic");
    assert_eq!((t.record_retry_total, t.record_send_total), (1, 3));
    assert!(
        m.counters.disconnects >= 1,
        "the timed-out connection was closed"
    );
    assert_prometheus_matches(&m);
    p.close(T);
}

/// A full buffer: `send` blocks for memory until `max.block.ms`, and the time blocked is
/// `bufferpool-wait-*`; `buffer-available-bytes` is 0 while every slot is held.
#[test]
fn counts_time_blocked_for_buffer_memory() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-metrics-block");
    c.create_topic(&topic, 1, 1, &[]);
    let (proxy, p) = StallingProxy::with_producer(
        &c,
        &[
            ("batch.size", "1024"),
            ("buffer.memory", "4096"),
            ("linger.ms", "0"),
            ("max.block.ms", "1000"),
            ("metrics.sample.window.ms", "60000"),
        ],
    );
    p.send(&ProducerRecord::new(&topic).value(b"warm-up"))
        .unwrap()
        .wait_timeout(T)
        .expect("an outcome")
        .expect("delivered");
    proxy.stall(true);
    let value = vec![7u8; 900];
    let mut accepted = Vec::new();
    let err = loop {
        match p.send(&ProducerRecord::new(&topic).value(&value)) {
            Ok(f) => accepted.push(f),
            Err(e) => break e,
        }
        assert!(accepted.len() < 100, "the buffer never filled");
    };
    assert_eq!(err, SendError::BufferTimeout { max_block_ms: 1000 });
    let m = p.metrics();
    eprintln!("{m:#?}");
    assert_eq!((m.buffer_total_bytes, m.buffer_available_bytes), (4096, 0));
    // About one max.block.ms blocked (the wait wakes on progress, so at least most of it).
    let waited_ms = m.bufferpool_wait_time_ns_total as f64 / 1e6;
    assert!((900.0..30_000.0).contains(&waited_ms), "{waited_ms} ms");
    assert!(same(
        m.bufferpool_wait_ratio,
        m.bufferpool_wait_time_ns_total as f64 / (m.window_ms as f64 * 1e6)
    ));
    assert!(
        m.requests_in_flight >= 1,
        "the stalled request is in flight"
    );
    assert_prometheus_matches(&m);
    p.close(Duration::ZERO);
    drop(accepted);
}

/// `metrics.sample.window.ms` of 500 ms: the callback comes every window from its own
/// thread with growing totals, rates fall to 0 once the sends are out of the window, and
/// gzip batches show a compression rate below 1.
#[test]
fn callback_every_window_and_rates_leave_the_window() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-metrics-window");
    c.create_topic(&topic, 1, 1, &[]);
    let (tx, rx) = mpsc::channel::<(Instant, Metrics, String)>();
    let p = builder(
        &c,
        &[
            ("client.id", "std-metrics-window"),
            ("compression.type", "gzip"),
            ("linger.ms", "5"),
            ("metrics.sample.window.ms", "500"),
            ("metrics.num.samples", "2"),
        ],
    )
    .metrics_callback(move |m| {
        let name = std::thread::current().name().unwrap_or("").to_string();
        let _ = tx.send((Instant::now(), m.clone(), name));
    })
    .build()
    .unwrap();
    let value = vec![b'z'; 1000];
    let futures: Vec<_> = (0..500)
        .map(|_| p.send(&ProducerRecord::new(&topic).value(&value)).unwrap())
        .collect();
    for f in futures {
        f.wait_timeout(T).expect("an outcome").expect("delivered");
    }
    let sent = p.metrics();
    assert_eq!(sent.record_send_total, 500);
    assert!(
        sent.compression_rate_avg > 0.0 && sent.compression_rate_avg < 0.5,
        "repetitive values compress: {}",
        sent.compression_rate_avg
    );
    // Two windows later the sends are out of the window: rates 0, totals kept.
    std::thread::sleep(Duration::from_millis(1_600));
    let idle = p.metrics();
    assert_eq!(idle.record_send_total, 500);
    assert!(same(idle.record_send_rate, 0.0), "{idle:?}");
    assert!(
        idle.request_latency_avg.is_nan(),
        "no request in the window"
    );
    assert!(idle.batch_size_avg.is_nan());
    assert!(
        idle.window_ms >= 500 && idle.window_ms < 1_600,
        "{}",
        idle.window_ms
    );
    p.close(T);
    let calls: Vec<_> = rx.try_iter().collect();
    // Each window in 1.6 s and more of sending: at least 3 calls, about 500 ms apart.
    assert!(calls.len() >= 3, "{} calls", calls.len());
    for (_, m, thread) in &calls {
        assert_eq!(thread, "kafka-producer-metrics | std-metrics-window");
        assert_eq!(m.client_id, "std-metrics-window");
    }
    for w in calls.windows(2) {
        let gap = w[1].0.duration_since(w[0].0);
        assert!(gap >= Duration::from_millis(250), "{gap:?}");
        assert!(w[1].1.record_send_total >= w[0].1.record_send_total);
    }
    assert_eq!(calls.last().map(|c| c.1.record_send_total), Some(500));
}
