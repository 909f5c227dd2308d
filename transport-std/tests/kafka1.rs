//! kafka-edge-std against one Apache Kafka node: every record read back by the librdkafka
//! judge and compared exactly.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{
    StallingProxy, builder, cluster, init_log, keyless_records, murmur2_partition, owned, send_all,
};
use kafka_edge_std::{
    DeliveryResult, ErrorCode, ProduceError, Producer, ProducerInterceptor, ProducerRecord,
    Properties, RecordMetadata, SendError, StringSerializer, TypedProducer, TypedRecord,
};
use kafka_edge_tests::{
    Ground, TestRecord, assert_read_back_exactly, hex, judge, keyed_records, topic_name,
};

const T: Duration = Duration::from_secs(60);

#[test]
fn keyed_records_land_in_murmur2_partitions() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-keyed");
    c.create_topic(&topic, 6, 1, &[]);
    let p = builder(&c, &[("linger.ms", "5")]).build().unwrap();
    let records = keyed_records(1, 3000, 97);
    let metas = send_all(&p, &topic, &records);
    for (i, (r, m)) in records.iter().zip(&metas).enumerate() {
        assert_eq!(m.partition, murmur2_partition(r, 6), "record {i}");
        assert_eq!(m.timestamp, r.timestamp);
        assert_eq!(&*m.topic, topic.as_str());
        assert!(m.offset >= 0);
    }
    p.close(T);
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&records, &judged, |i| murmur2_partition(&records[i], 6));
    // Offsets reported equal offsets read back.
    let by_pos: HashMap<(i32, i64), usize> = judged
        .iter()
        .enumerate()
        .map(|(i, j)| ((j.partition, j.offset), i))
        .collect();
    for (i, m) in metas.iter().enumerate() {
        let j = &judged[by_pos[&(m.partition, m.offset)]];
        assert_eq!(
            j.value, records[i].value,
            "record {i} at its reported offset"
        );
    }
}

#[test]
fn keyless_records_spread_by_the_sticky_partitioner() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-keyless");
    c.create_topic(&topic, 4, 1, &[]);
    // Small batches so that the sticky partition switches often.
    let p = builder(&c, &[("batch.size", "1024"), ("linger.ms", "2")])
        .build()
        .unwrap();
    let records = keyless_records(4000);
    let metas = send_all(&p, &topic, &records);
    p.close(T);
    let used: std::collections::BTreeSet<i32> = metas.iter().map(|m| m.partition).collect();
    assert!(used.len() > 1, "sticky partitioner used only {used:?}");
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&records, &judged, |i| metas[i].partition);
}

#[test]
fn explicit_partitions_are_kept() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-explicit");
    c.create_topic(&topic, 3, 1, &[]);
    let p = builder(&c, &[]).build().unwrap();
    let mut records = keyed_records(7, 600, 5);
    for (i, r) in records.iter_mut().enumerate() {
        r.partition = Some((i % 3) as i32);
    }
    let metas = send_all(&p, &topic, &records);
    assert!(
        metas
            .iter()
            .enumerate()
            .all(|(i, m)| m.partition == (i % 3) as i32)
    );
    // A partition out of range is refused at once.
    let err = p
        .send(&ProducerRecord::new(&topic).value(b"x").partition(3))
        .unwrap_err();
    assert_eq!(
        err,
        SendError::InvalidPartition {
            topic: topic.clone(),
            partition: 3,
            num_partitions: 3
        }
    );
    p.close(T);
    assert_read_back_exactly(&records, &judge(&c, &topic), |i| (i % 3) as i32);
}

#[test]
fn acks_and_idempotence_matrix() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let cases: [(&str, &str); 4] = [
        ("0", "false"),
        ("1", "false"),
        ("all", "false"),
        ("all", "true"),
    ];
    for (acks, idempotence) in cases {
        let topic = topic_name(&format!("std-acks{acks}-idem{idempotence}"));
        c.create_topic(&topic, 2, 1, &[]);
        let p = builder(&c, &[("acks", acks), ("enable.idempotence", idempotence)])
            .build()
            .unwrap();
        let records = keyed_records(11, 1500, 31);
        let metas = send_all(&p, &topic, &records);
        for m in &metas {
            if acks == "0" {
                assert_eq!(m.offset, -1, "acks=0 has no offsets");
            } else {
                assert!(m.offset >= 0);
            }
        }
        p.close(T);
        assert_read_back_exactly(&records, &judge(&c, &topic), |i| {
            murmur2_partition(&records[i], 2)
        });
    }
}

#[test]
fn four_threads_share_one_producer() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-threads");
    c.create_topic(&topic, 3, 1, &[]);
    let p = builder(&c, &[("linger.ms", "1")]).build().unwrap();
    let per_thread = 2500;
    let results: Vec<Vec<(TestRecord, RecordMetadata)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let p = &p;
                let topic = &topic;
                s.spawn(move || {
                    let mut records = keyed_records(100 + t, per_thread, 13);
                    for (i, r) in records.iter_mut().enumerate() {
                        r.value = Some(kafka_edge_tests::hex(format!("t{t}-{i}").as_bytes()));
                    }
                    let metas = send_all(p, topic, &records);
                    records.into_iter().zip(metas).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    p.close(T);
    // Per thread, records of one partition got increasing offsets (send order kept).
    for thread in &results {
        let mut last: HashMap<i32, i64> = HashMap::new();
        for (_, m) in thread {
            let prev = last.insert(m.partition, m.offset);
            assert!(prev.is_none_or(|o| o < m.offset), "order within a thread");
        }
    }
    // All records, in offset order per partition, are exactly what the judge reads.
    let mut all: Vec<(TestRecord, RecordMetadata)> = results.into_iter().flatten().collect();
    all.sort_by_key(|(_, m)| (m.partition, m.offset));
    let sent: Vec<TestRecord> = all.iter().map(|(r, _)| r.clone()).collect();
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&sent, &judged, |i| all[i].1.partition);
}

#[test]
fn flush_waits_for_every_outcome_and_close_rejects_new_sends() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-flush");
    c.create_topic(&topic, 2, 1, &[]);
    // A long linger: only flush makes the batches go.
    let p = builder(
        &c,
        &[("linger.ms", "60000"), ("delivery.timeout.ms", "120000")],
    )
    .build()
    .unwrap();
    // Metadata first, so that the records below wait in batches.
    let _warm = p
        .send(&ProducerRecord::new(&topic).value(b"warm-up").partition(0))
        .unwrap();
    p.flush();
    let records = keyed_records(21, 40, 10);
    let owned = owned(&records);
    let futures: Vec<_> = owned
        .iter()
        .map(|r| p.send(&r.record(&topic)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(futures.iter().all(|f| !f.is_done()), "lingering");
    let t0 = Instant::now();
    p.flush();
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert!(futures.iter().all(|f| f.is_done()), "flush returned early");
    assert!(futures.iter().all(|f| f.try_result().unwrap().is_ok()));

    // Close: records pending are delivered, then new sends fail at once.
    let late: Vec<_> = owned
        .iter()
        .take(20)
        .map(|r| p.send(&r.record(&topic)).unwrap())
        .collect();
    p.close(T);
    assert!(
        late.iter()
            .all(|f| f.is_done() && f.try_result().unwrap().is_ok())
    );
    let t0 = Instant::now();
    let err = p
        .send(&ProducerRecord::new(&topic).value(b"x"))
        .unwrap_err();
    assert_eq!(err, SendError::Closed);
    assert!(t0.elapsed() < Duration::from_millis(500));
    let mut expected = vec![TestRecord {
        key: None,
        value: Some(kafka_edge_tests::hex(b"warm-up")),
        headers: vec![],
        timestamp: 0,
        partition: Some(0),
    }];
    expected.extend(records.iter().cloned());
    expected.extend(records.iter().take(20).cloned());
    let judged = judge(&c, &topic);
    assert_eq!(judged.len(), expected.len());
    let sent_rest: Vec<TestRecord> = expected[1..].to_vec();
    let rest: Vec<_> = judged
        .iter()
        .filter(|j| j.value.as_deref() != Some(&kafka_edge_tests::hex(b"warm-up")))
        .cloned()
        .collect();
    assert_read_back_exactly(&sent_rest, &rest, |i| murmur2_partition(&sent_rest[i], 2));
}

#[test]
fn close_with_zero_timeout_fails_what_is_pending() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-close0");
    c.create_topic(&topic, 1, 1, &[]);
    let p = builder(&c, &[("linger.ms", "60000")]).build().unwrap();
    let _warm = p.send(&ProducerRecord::new(&topic).value(b"w")).unwrap();
    p.flush();
    let futures: Vec<_> = (0..10)
        .map(|_| p.send(&ProducerRecord::new(&topic).value(b"v")).unwrap())
        .collect();
    p.close(Duration::ZERO);
    for f in futures {
        let r = f.try_result().expect("an outcome at close");
        assert_eq!(r, Err(ProduceError::Closed));
    }
}

#[test]
fn unknown_topic_times_out_after_max_block_ms() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let p = builder(&c, &[("max.block.ms", "1500")]).build().unwrap();
    let topic = topic_name("std-missing");
    let t0 = Instant::now();
    let err = p
        .send(&ProducerRecord::new(&topic).value(b"v"))
        .unwrap_err();
    let waited = t0.elapsed();
    assert_eq!(
        err,
        SendError::MetadataTimeout {
            topic: topic.clone(),
            max_block_ms: 1500,
            cause: None,
        },
        "the cluster is reachable: no connection error to report"
    );
    assert_eq!(
        err.to_string(),
        format!("Topic {topic} not present in metadata after 1500 ms.")
    );
    assert!(
        waited >= Duration::from_millis(1450) && waited < Duration::from_millis(5000),
        "{waited:?}"
    );
}

#[test]
fn unreachable_cluster_times_out_after_max_block_ms() {
    init_log();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = Producer::builder()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("max.block.ms", 1500)
        .build()
        .unwrap();
    let t0 = Instant::now();
    let err = p.send(&ProducerRecord::new("t").value(b"v")).unwrap_err();
    assert!(matches!(err, SendError::MetadataTimeout { .. }), "{err:?}");
    assert!(t0.elapsed() >= Duration::from_millis(1450));
    // The error says why: the connection was refused.
    let text = err.to_string();
    assert!(
        text.contains(&format!("cannot connect to 127.0.0.1:{port}"))
            && text.to_lowercase().contains("connection refused"),
        "{text}"
    );
    let t0 = Instant::now();
    drop(p);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "drop with nothing pending"
    );
}

/// A producer through a proxy to the 1-node cluster, with metadata and a producer id
/// already known for `topic`, then the proxy stalled: nothing the producer sends is
/// answered, so no memory frees up until `delivery.timeout.ms`.
fn stalled_producer(props: &[(&str, &str)]) -> (Producer, StallingProxy, String) {
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-stall");
    c.create_topic(&topic, 1, 1, &[]);
    let (proxy, p) = StallingProxy::with_producer(&c, props);
    p.send(&ProducerRecord::new(&topic).value(b"warm-up"))
        .unwrap()
        .wait()
        .unwrap();
    proxy.stall(true);
    (p, proxy, topic)
}

#[test]
fn full_buffer_blocks_up_to_max_block_ms() {
    init_log();
    let (p, _proxy, topic) = stalled_producer(&[
        ("batch.size", "1024"),
        ("buffer.memory", "4096"),
        ("linger.ms", "0"),
        ("max.block.ms", "1000"),
    ]);
    let value = vec![7u8; 900];
    let mut accepted = Vec::new();
    let err = loop {
        let t0 = Instant::now();
        match p.send(&ProducerRecord::new(&topic).value(&value)) {
            Ok(f) => accepted.push(f),
            Err(e) => break (e, t0.elapsed()),
        }
        assert!(accepted.len() < 100, "the buffer never filled");
    };
    assert_eq!(err.0, SendError::BufferTimeout { max_block_ms: 1000 });
    assert_eq!(
        err.0.to_string(),
        "Failed to allocate memory within the configured max blocking time 1000 ms."
    );
    assert!(err.1 >= Duration::from_millis(950), "{:?}", err.1);
    assert!(p.buffer_used_bytes() <= 4096);
    assert_eq!(accepted.len(), 4, "one 900-byte record per 1 KiB slot");
    p.close(Duration::ZERO);
    for f in &accepted {
        assert_eq!(f.try_result(), Some(Err(ProduceError::Closed)));
    }
}

#[test]
fn blocked_send_resumes_when_outcomes_free_memory() {
    init_log();
    let (p, _proxy, topic) = stalled_producer(&[
        ("batch.size", "1024"),
        ("buffer.memory", "2048"),
        ("linger.ms", "0"),
        ("request.timeout.ms", "1000"),
        ("delivery.timeout.ms", "2000"),
        ("max.block.ms", "20000"),
    ]);
    let value = vec![1u8; 900];
    let first = p.send(&ProducerRecord::new(&topic).value(&value)).unwrap();
    let second = p.send(&ProducerRecord::new(&topic).value(&value)).unwrap();
    // The pool (2 slots) is full: this one waits until the first batches expire.
    let t0 = Instant::now();
    let third = p.send(&ProducerRecord::new(&topic).value(&value)).unwrap();
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(1000), "{waited:?}");
    assert!(waited < Duration::from_millis(15000), "{waited:?}");
    for f in [first, second] {
        let r = f.wait_timeout(T).unwrap();
        assert!(r.is_err(), "{r:?}");
    }
    p.close(Duration::ZERO);
    assert!(third.try_result().is_some());
}

/// Callbacks that fill `COMPLETION_MEMORY` make the next send wait, and the queued batches
/// go at once (as when buffer memory is full) instead of after `linger.ms`: with a linger
/// of a minute every send still returns within seconds and every record is delivered.
#[test]
fn completion_memory_full_sends_lingering_batches_at_once() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-completion-memory");
    c.create_topic(&topic, 1, 1, &[]);
    let p = builder(
        &c,
        &[
            ("linger.ms", "60000"),
            ("batch.size", "1048576"),
            ("max.block.ms", "30000"),
        ],
    )
    .build()
    .unwrap();
    // Room for a batch's callbacks is reserved up front (a `batch.size` of records): with
    // 1 MiB batches and closures of 256 bytes the first record of a batch fills the budget,
    // so every later send waits for the outcomes of the records before it.
    const PAD: usize = 256;
    const N: usize = 50;
    let (tx, rx) = mpsc::channel();
    let t0 = Instant::now();
    for i in 0..N {
        let pad = [i as u8; PAD];
        let tx = tx.clone();
        p.send_with_callback(
            &ProducerRecord::new(&topic).value(format!("v{i}").as_bytes()),
            move |r| {
                let _ = tx.send((pad[0], r.map(|m| m.offset)));
            },
        )
        .unwrap_or_else(|e| panic!("send {i} after {:?}: {e}", t0.elapsed()));
    }
    let sent_in = t0.elapsed();
    assert!(sent_in < Duration::from_secs(20), "{sent_in:?}");
    p.flush();
    drop(tx);
    let outcomes: Vec<_> = rx.iter().collect();
    assert_eq!(outcomes.len(), N);
    for (k, (pad, offset)) in outcomes.iter().enumerate() {
        assert_eq!(usize::from(*pad), k);
        assert_eq!(offset.as_ref().ok(), Some(&(k as i64)), "record {k}");
    }
    p.close(T);
}

/// The broker gone for longer than `delivery.timeout.ms` while records keep coming: every
/// accepted record fails with the delivery timeout (none is lost without an outcome, none
/// written), sends beyond the pool wait `max.block.ms` and are refused with a type, the
/// buffer never holds more than `buffer.memory`, and all of it is free again once the
/// outcomes are in. The broker back, the same producer delivers again.
#[test]
fn broker_gone_past_the_delivery_timeout_fails_every_record_and_frees_memory() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-gone");
    c.create_topic(&topic, 1, 1, &[]);
    const MEMORY: usize = 16 * 16384;
    let (proxy, p) = StallingProxy::with_producer(
        &c,
        &[
            ("batch.size", "16384"),
            ("buffer.memory", &MEMORY.to_string()),
            ("linger.ms", "5"),
            ("request.timeout.ms", "1000"),
            ("delivery.timeout.ms", "2000"),
            ("max.block.ms", "500"),
        ],
    );
    p.send(&ProducerRecord::new(&topic).value(b"before"))
        .unwrap()
        .wait()
        .unwrap();
    proxy.gone(true);
    let outcomes = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let (mut accepted, mut refused) = (0usize, 0usize);
    let value = [b'g'; 100];
    let t0 = Instant::now();
    // Three delivery timeouts' worth of sending: the pool fills, expires, fills again.
    while t0.elapsed() < Duration::from_millis(6000) {
        let seen = outcomes.clone();
        match p.send_with_callback(&ProducerRecord::new(&topic).value(&value), move |r| {
            let kind = match r {
                Ok(_) => "delivered".to_string(),
                Err(e) => format!("{e:?}"),
            };
            *seen.lock().unwrap().entry(kind).or_default() += 1;
        }) {
            Ok(()) => accepted += 1,
            Err(SendError::BufferTimeout { max_block_ms: 500 }) => refused += 1,
            Err(e) => panic!("send: {e}"),
        }
        assert!(p.buffer_used_bytes() <= MEMORY, "{}", p.buffer_used_bytes());
    }
    let deadline = Instant::now() + T;
    while outcomes.lock().unwrap().values().sum::<usize>() < accepted {
        assert!(Instant::now() < deadline, "outcomes missing: {outcomes:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let outcomes = outcomes.lock().unwrap().clone();
    let expired = format!("{:?}", ProduceError::DeliveryTimeout);
    assert_eq!(
        outcomes,
        HashMap::from([(expired, accepted)]),
        "every accepted record expired, once"
    );
    assert!(
        accepted > 2 * MEMORY / 150,
        "the pool filled more than twice: {accepted}"
    );
    assert!(
        refused > 0,
        "some sends waited max.block.ms and were refused"
    );
    assert_eq!(p.buffer_used_bytes(), 0, "all buffer memory is free again");
    proxy.gone(false);
    p.send(&ProducerRecord::new(&topic).value(b"after"))
        .unwrap()
        .wait_timeout(T)
        .expect("an outcome")
        .expect("delivered once the broker is back");
    p.close(T);
    let values: Vec<_> = judge(&c, &topic).into_iter().map(|r| r.value).collect();
    assert_eq!(
        values,
        [Some(hex(b"before")), Some(hex(b"after"))],
        "nothing that expired was written"
    );
}

#[test]
fn record_above_max_request_size_is_refused_at_once() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-toolarge");
    c.create_topic(&topic, 1, 1, &[]);
    let p = builder(&c, &[("max.request.size", "1024")])
        .build()
        .unwrap();
    let big = vec![0u8; 2000];
    let t0 = Instant::now();
    let err = p
        .send(&ProducerRecord::new(&topic).value(&big))
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_millis(500));
    assert!(
        matches!(
            err,
            SendError::RecordTooLarge {
                size: 2000,
                max: 1024
            }
        ),
        "{err:?}"
    );
    // Once metadata is known the core's exact check applies (the batch overhead counts).
    p.send(&ProducerRecord::new(&topic).value(b"small"))
        .unwrap()
        .wait()
        .unwrap();
    let err = p
        .send(&ProducerRecord::new(&topic).value(&big[..1000]))
        .unwrap_err();
    assert!(matches!(err, SendError::RecordTooLarge { .. }), "{err:?}");
}

#[test]
fn message_too_large_from_the_broker_fails_that_record() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-brokertoolarge");
    c.create_topic(&topic, 1, 1, &["max.message.bytes=1024"]);
    let p = builder(&c, &[("max.request.size", "1048576"), ("linger.ms", "0")])
        .build()
        .unwrap();
    let ok = p
        .send(&ProducerRecord::new(&topic).value(b"small"))
        .unwrap();
    ok.wait().unwrap();
    let big = vec![3u8; 4096];
    let r = p
        .send(&ProducerRecord::new(&topic).value(&big))
        .unwrap()
        .wait_timeout(T)
        .unwrap();
    let err = r.unwrap_err();
    assert_eq!(
        err.broker_code(),
        Some(ErrorCode::MESSAGE_TOO_LARGE),
        "{err}"
    );
    // The producer goes on.
    p.send(&ProducerRecord::new(&topic).value(b"after"))
        .unwrap()
        .wait()
        .unwrap();
    p.close(T);
    let judged = judge(&c, &topic);
    let values: Vec<_> = judged.iter().map(|j| j.value.clone().unwrap()).collect();
    assert_eq!(
        values,
        [
            kafka_edge_tests::hex(b"small"),
            kafka_edge_tests::hex(b"after")
        ]
    );
}

/// A minimal executor: polls the future, parking the thread until its waker unparks it.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn futures_can_be_awaited_without_a_runtime() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-async");
    c.create_topic(&topic, 2, 1, &[]);
    let p = builder(&c, &[]).build().unwrap();
    let records = keyed_records(31, 300, 17);
    let owned = owned(&records);
    let metas: Vec<RecordMetadata> = block_on(async {
        let mut futures = Vec::new();
        for r in &owned {
            futures.push(p.send(&r.record(&topic)).unwrap());
        }
        let mut metas = Vec::new();
        for f in futures {
            metas.push(f.await.unwrap());
        }
        metas
    });
    assert_eq!(metas.len(), records.len());
    p.close(T);
    assert_read_back_exactly(&records, &judge(&c, &topic), |i| metas[i].partition);
}

#[derive(Default)]
struct Counting {
    sent: AtomicUsize,
    acked: AtomicUsize,
    errors: AtomicUsize,
}

impl ProducerInterceptor for Counting {
    fn on_send(&self, _: &ProducerRecord<'_>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }
    fn on_acknowledgement(&self, result: &DeliveryResult) {
        if result.is_ok() {
            self.acked.fetch_add(1, Ordering::Relaxed);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn callbacks_and_interceptors_see_every_record_once() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-callback");
    c.create_topic(&topic, 3, 1, &[]);
    let counting = Arc::new(Counting::default());
    let p = builder(&c, &[])
        .interceptor(counting.clone())
        .build()
        .unwrap();
    let records = keyed_records(41, 2000, 50);
    let owned = owned(&records);
    let (tx, rx) = mpsc::channel();
    for (i, r) in owned.iter().enumerate() {
        let tx = tx.clone();
        p.send_with_callback(&r.record(&topic), move |res| {
            tx.send((i, res)).unwrap();
        })
        .unwrap();
    }
    drop(tx);
    p.flush();
    let mut got: Vec<Option<RecordMetadata>> = vec![None; records.len()];
    for (i, res) in rx.try_iter() {
        assert!(got[i].is_none(), "callback {i} called twice");
        got[i] = Some(res.unwrap());
    }
    assert!(
        got.iter().all(Option::is_some),
        "flush returned before callbacks"
    );
    assert_eq!(counting.sent.load(Ordering::Relaxed), records.len());
    assert_eq!(counting.acked.load(Ordering::Relaxed), records.len());
    assert_eq!(counting.errors.load(Ordering::Relaxed), 0);
    p.close(T);
    assert_read_back_exactly(&records, &judge(&c, &topic), |i| {
        murmur2_partition(&records[i], 3)
    });
}

#[test]
fn typed_producer_and_properties_files() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-typed");
    c.create_topic(&topic, 1, 1, &[]);
    let dir = std::env::temp_dir().join(format!("std-props-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("producer.toml");
    std::fs::write(
        &toml,
        format!(
            "\"bootstrap.servers\" = \"{}\"\nlinger.ms = 1\nacks = \"all\"\nclient.id = \"typed\"\n",
            c.bootstrap
        ),
    )
    .unwrap();
    let props = Properties::load(&toml).unwrap();
    let producer = Producer::new(&props).unwrap();
    assert_eq!(producer.client_id(), "typed");
    let typed = TypedProducer::<str, str, _, _>::new(producer, StringSerializer, StringSerializer);
    let m = typed
        .send(TypedRecord::new(&topic, "hello").key("greeting"))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(m.offset, 0);
    let json = dir.join("producer.json");
    std::fs::write(
        &json,
        format!(
            r#"{{"bootstrap.servers": "{}", "linger.ms": 0}}"#,
            c.bootstrap
        ),
    )
    .unwrap();
    let p2 = Producer::new(&Properties::load(&json).unwrap()).unwrap();
    let json_typed = TypedProducer::<str, serde_json::Value, _, _>::new(
        p2,
        StringSerializer,
        kafka_edge_std::JsonSerializer,
    );
    let v = serde_json::json!({"n": 1});
    json_typed
        .send(TypedRecord::new(&topic, &v).key("json"))
        .unwrap()
        .wait()
        .unwrap();
    drop(typed);
    drop(json_typed);
    let judged = judge(&c, &topic);
    assert_eq!(judged.len(), 2);
    assert_eq!(judged[0].key, Some(kafka_edge_tests::hex(b"greeting")));
    assert_eq!(judged[0].value, Some(kafka_edge_tests::hex(b"hello")));
    assert_eq!(judged[1].value, Some(kafka_edge_tests::hex(br#"{"n":1}"#)));
    let _ = std::fs::remove_dir_all(dir);
}

/// A custom partitioner written with kafka-edge-std alone: keys starting with `pin-` go to
/// the last partition, other keys where Java's murmur2 puts them, keyless records to
/// partition `len(value) % n`. It records what it was shown.
struct Pinning {
    seen: Arc<Mutex<Vec<(String, u32, usize)>>>,
}

impl kafka_edge_std::Partitioner for Pinning {
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: kafka_edge_std::TopicPartitions<'_>,
    ) -> i32 {
        self.seen.lock().unwrap().push((
            topic.to_string(),
            partitions.count(),
            partitions.available().len(),
        ));
        match key {
            Some(k) if k.starts_with(b"pin-") => partitions.count() as i32 - 1,
            Some(k) => partitions.partition_for_key(k),
            None => (value.map_or(0, <[u8]>::len) as u32 % partitions.count()) as i32,
        }
    }
}

#[test]
fn a_custom_partitioner_places_records() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-custom-part");
    c.create_topic(&topic, 3, 1, &[]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let p = builder(&c, &[("linger.ms", "5")])
        .partitioner(Pinning { seen: seen.clone() })
        .build()
        .unwrap();
    let mut records: Vec<TestRecord> = keyed_records(7, 60, 40);
    for (i, r) in records.iter_mut().enumerate() {
        match i % 3 {
            0 => r.key = Some(kafka_edge_tests::hex(format!("pin-{i}").as_bytes())),
            1 => r.key = None,
            _ => {}
        }
    }
    let expected = |r: &TestRecord| -> i32 {
        match &r.key {
            Some(k) if k.starts_with(&kafka_edge_tests::hex(b"pin-")) => 2,
            Some(_) => murmur2_partition(r, 3),
            None => (r.value.as_ref().map_or(0, |v| v.len() / 2) % 3) as i32,
        }
    };
    let metas = send_all(&p, &topic, &records);
    for (i, (r, m)) in records.iter().zip(&metas).enumerate() {
        assert_eq!(m.partition, expected(r), "record {i}");
    }
    p.close(T);
    // The partitioner saw the topic's name and its 3 partitions, all with a leader.
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), records.len());
    assert!(
        seen.iter().all(|s| *s == (topic.clone(), 3, 3)),
        "{:?}",
        seen[0]
    );
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&records, &judged, |i| expected(&records[i]));
}

#[test]
fn many_senders_and_a_shared_count_of_outcomes() {
    // Exactly-once outcomes under contention: 4 threads, callbacks counting per record.
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-count");
    c.create_topic(&topic, 4, 1, &[]);
    let p = builder(&c, &[("batch.size", "4096")]).build().unwrap();
    let seen = Arc::new(Mutex::new(vec![0u8; 40_000]));
    std::thread::scope(|s| {
        for t in 0..4 {
            let p = &p;
            let topic = &topic;
            let seen = seen.clone();
            s.spawn(move || {
                for i in 0..10_000 {
                    let n = t * 10_000 + i;
                    let seen = seen.clone();
                    let value = n.to_string();
                    p.send_with_callback(
                        &ProducerRecord::new(topic).value(value.as_bytes()),
                        move |r| {
                            r.unwrap();
                            seen.lock().unwrap()[n] += 1;
                        },
                    )
                    .unwrap();
                }
            });
        }
    });
    p.close(T);
    assert!(seen.lock().unwrap().iter().all(|&n| n == 1));
    assert_eq!(judge(&c, &topic).len(), 40_000);
}

#[test]
fn partial_writes_resume_when_the_socket_drains() {
    // The proxy stops reading while 8 MB of batches are written: the socket buffers fill,
    // writes go partial and block; once it reads again every record arrives intact.
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-partial");
    c.create_topic(&topic, 4, 1, &[]);
    let (proxy, p) = StallingProxy::with_producer(
        &c,
        &[
            ("batch.size", "262144"),
            ("buffer.memory", "33554432"),
            ("linger.ms", "5"),
            ("acks", "1"),
        ],
    );
    p.send(&ProducerRecord::new(&topic).value(b"warm-up").partition(0))
        .unwrap()
        .wait()
        .unwrap();
    proxy.stall(true);
    let mut records = keyed_records(77, 8000, 1000);
    for (i, r) in records.iter_mut().enumerate() {
        let mut v = format!("{i}:").into_bytes();
        v.resize(1000, b'a' + (i % 26) as u8);
        r.value = Some(kafka_edge_tests::hex(&v));
    }
    let owned = owned(&records);
    let futures: Vec<_> = owned
        .iter()
        .map(|r| p.send(&r.record(&topic)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(futures.iter().all(|f| !f.is_done()), "stalled");
    proxy.stall(false);
    let metas: Vec<_> = futures
        .into_iter()
        .map(|f| f.wait_timeout(T).unwrap().unwrap())
        .collect();
    p.close(T);
    let judged: Vec<_> = judge(&c, &topic)
        .into_iter()
        .filter(|j| j.value.as_deref() != Some(&kafka_edge_tests::hex(b"warm-up")))
        .collect();
    assert_read_back_exactly(&records, &judged, |i| metas[i].partition);
}

#[test]
fn a_panicking_callback_does_not_stop_the_producer() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-panic");
    c.create_topic(&topic, 1, 1, &[]);
    let p = builder(&c, &[]).build().unwrap();
    p.send_with_callback(&ProducerRecord::new(&topic).value(b"a"), |_| {
        panic!("callback panics (expected in this test)")
    })
    .unwrap();
    p.flush();
    let m = p
        .send(&ProducerRecord::new(&topic).value(b"b"))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(m.offset, 1);
}

#[test]
fn java_kafka_producer_puts_every_record_in_the_same_partition_as_ours() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let ours = topic_name("std-vs-java-edge");
    let theirs = topic_name("std-vs-java-java");
    c.create_topic(&ours, 7, 1, &[]);
    c.create_topic(&theirs, 7, 1, &[]);
    // Keyed records, some with an explicit partition, the same settings for both clients.
    let mut records = keyed_records(21, 4000, 333);
    for (i, r) in records.iter_mut().enumerate() {
        if i % 10 == 0 {
            r.partition = Some((i % 7) as i32);
        }
    }
    let props = [("acks", "all"), ("linger.ms", "5")];
    let p = builder(&c, &props).build().unwrap();
    let metas = send_all(&p, &ours, &records);
    p.close(T);
    let java_props: Vec<String> = props.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let java_props: Vec<&str> = java_props.iter().map(String::as_str).collect();
    let java = kafka_edge_tests::oracle::produce(&c.bootstrap, &theirs, &java_props, &records);
    assert_eq!(java.len(), records.len());
    for o in &java {
        assert_eq!(
            o.partition,
            Some(metas[o.i].partition),
            "record {}: Java's partition differs from ours",
            o.i
        );
    }
    // Both topics hold the same records in the same partitions, in the same order.
    let a = judge(&c, &ours);
    let b = judge(&c, &theirs);
    let strip = |v: Vec<kafka_edge_tests::JudgedRecord>| -> Vec<_> {
        v.into_iter()
            .map(|j| {
                (
                    j.partition,
                    j.offset,
                    j.key,
                    j.value,
                    j.headers,
                    j.timestamp,
                )
            })
            .collect()
    };
    assert_eq!(strip(a), strip(b), "the two topics differ");
}

#[test]
fn message_too_large_fails_only_the_record_that_is_too_large() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-split");
    c.create_topic(&topic, 1, 1, &["max.message.bytes=2000"]);
    // A long linger puts every record into one batch, which the broker refuses whole.
    let p = builder(&c, &[("linger.ms", "200"), ("max.request.size", "1048576")])
        .build()
        .unwrap();
    let values: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            if i == 17 {
                vec![b'X'; 5000]
            } else {
                vec![b'a' + (i % 26) as u8; 300]
            }
        })
        .collect();
    let futures: Vec<_> = values
        .iter()
        .map(|v| p.send(&ProducerRecord::new(&topic).value(v)).unwrap())
        .collect();
    let results: Vec<DeliveryResult> = futures
        .into_iter()
        .map(|f| f.wait_timeout(T).expect("an outcome"))
        .collect();
    p.close(T);
    for (i, r) in results.iter().enumerate() {
        if i == 17 {
            let err = r.as_ref().expect_err("the 5000-byte record must fail");
            assert_eq!(
                err.broker_code(),
                Some(ErrorCode::MESSAGE_TOO_LARGE),
                "{err}"
            );
        } else {
            assert!(r.is_ok(), "record {i}: {r:?}");
        }
    }
    let judged = judge(&c, &topic);
    let expected: Vec<String> = values
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 17)
        .map(|(_, v)| kafka_edge_tests::hex(v))
        .collect();
    let got: Vec<String> = judged.iter().map(|j| j.value.clone().unwrap()).collect();
    assert_eq!(got, expected, "the other records, each once, in order");
    for (i, r) in results.iter().enumerate() {
        if let Ok(m) = r {
            let j = &judged[m.offset as usize];
            assert_eq!(
                j.value.as_deref(),
                Some(kafka_edge_tests::hex(&values[i]).as_str())
            );
        }
    }
}

/// `metadata.max.idle.ms` on the real broker: an idempotent producer sends to topic A, A
/// stays idle past the idle time and is dropped when the next metadata request is made
/// (for topic B), the producer bumps its epoch, and records sent to A afterwards are
/// accepted by Kafka (sequence 0 under the new epoch) and land after the first ones, each
/// exactly once.
#[test]
fn an_idle_topic_is_dropped_and_comes_back_under_idempotence() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let a = topic_name("std-idle-a");
    let b = topic_name("std-idle-b");
    c.create_topic(&a, 1, 1, &[]);
    c.create_topic(&b, 1, 1, &[]);
    let p = builder(
        &c,
        &[
            ("metadata.max.idle.ms", "5000"),
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "0"),
        ],
    )
    .build()
    .unwrap();
    let send_a = |from: usize| -> Vec<i64> {
        (from..from + 10)
            .map(|i| {
                p.send(&ProducerRecord::new(&a).value(format!("a-{i}").as_bytes()))
                    .unwrap()
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|f| f.wait().unwrap().offset)
            .collect()
    };
    assert_eq!(send_a(0), (0..10).collect::<Vec<i64>>());
    let before = p.metrics();
    assert_eq!(before.counters.topics_evicted, 0);
    std::thread::sleep(Duration::from_millis(5_500));
    // A new topic makes a metadata request, which drops the idle one.
    let mb = p
        .send(&ProducerRecord::new(&b).value(b"b-0"))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(mb.offset, 0);
    let after = p.metrics();
    assert_eq!(after.counters.topics_evicted, 1, "{after:?}");
    assert_eq!(
        after.counters.producer_id_changes,
        before.counters.producer_id_changes + 1,
        "the epoch is bumped before the dropped partition's sequences are reused"
    );
    assert_eq!(send_a(10), (10..20).collect::<Vec<i64>>());
    drop(p);
    let judged = judge(&c, &a);
    let values: Vec<_> = judged.iter().map(|r| r.value.clone()).collect();
    let want: Vec<_> = (0..20)
        .map(|i| Some(kafka_edge_tests::hex(format!("a-{i}").as_bytes())))
        .collect();
    assert_eq!(values, want, "every record once, in order");
    assert_eq!(judge(&c, &b).len(), 1);
}

/// Records every acknowledgement in the order the producer completes them.
struct AckOrder(Arc<Mutex<Vec<i64>>>);

impl ProducerInterceptor for AckOrder {
    fn on_acknowledgement(&self, result: &DeliveryResult) {
        let offset = result.as_ref().map_or(-1, |m| m.offset);
        self.0.lock().unwrap().push(offset);
    }
}

/// Java completes the callbacks and futures of one partition in send order; so does this
/// producer, with callbacks and futures mixed and the batch split after MESSAGE_TOO_LARGE
/// (its parts are sent and completed one after the other).
#[test]
fn outcomes_of_a_partition_complete_in_send_order_through_a_split() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-order");
    c.create_topic(&topic, 1, 1, &["max.message.bytes=2000"]);
    let acks = Arc::new(Mutex::new(Vec::new()));
    let p = builder(&c, &[("linger.ms", "200")])
        .interceptor(AckOrder(acks.clone()))
        .build()
        .unwrap();
    let callbacks = Arc::new(Mutex::new(Vec::new()));
    let mut futures = Vec::new();
    const N: usize = 200;
    for i in 0..N {
        let value = vec![b'a' + (i % 26) as u8; 300];
        let record = ProducerRecord::new(&topic).value(&value);
        if i % 2 == 0 {
            let seen = callbacks.clone();
            p.send_with_callback(&record, move |r| {
                let offset = r.as_ref().map_or(-1, |m| m.offset);
                seen.lock().unwrap().push((i, offset));
            })
            .unwrap();
        } else {
            futures.push((i, p.send(&record).unwrap()));
        }
    }
    for (i, f) in futures {
        let m = f.wait_timeout(T).expect("an outcome").unwrap();
        assert_eq!(m.offset, i as i64, "record {i}: offsets follow send order");
    }
    p.flush();
    assert!(
        p.metrics().counters.batches_split > 0,
        "the batch was split"
    );
    p.close(T);
    let callbacks = callbacks.lock().unwrap().clone();
    assert_eq!(callbacks.len(), N / 2);
    for w in callbacks.windows(2) {
        assert!(w[0].0 < w[1].0, "callbacks in send order: {w:?}");
    }
    for (i, offset) in &callbacks {
        assert_eq!(*offset, *i as i64, "record {i}");
    }
    let acks = acks.lock().unwrap().clone();
    assert_eq!(
        acks,
        (0..N as i64).collect::<Vec<_>>(),
        "every outcome, in send order"
    );
}
