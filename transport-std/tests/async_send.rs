//! kafka-edge-std from async tasks (tokio) against one Apache Kafka node: `send_async` waits
//! for a deliberately tiny `buffer.memory` without blocking the executor, `try_send` refuses
//! at once with the typed error, and every accepted record is read back exactly by the
//! librdkafka judge.
//!
//! The runtimes are single-threaded on purpose: a send that blocked its thread would stop
//! every other task, so a task that keeps running while sends wait proves they do not.

mod common;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{StallingProxy, builder, cluster, init_log, owned};
use kafka_edge_std::{
    DeliveryFuture, Producer, ProducerRecord, RecordMetadata, SendError, SendFuture,
};
use kafka_edge_tests::{
    Ground, TestRecord, assert_read_back_exactly, judge, keyed_records, topic_name,
};

const T: Duration = Duration::from_secs(60);

/// A task that ticks every millisecond until stopped: its count shows whether the executor
/// ran other tasks, its largest gap how long it was held up.
struct Ticker {
    ticks: Arc<AtomicU64>,
    max_gap_us: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Ticker {
    fn start() -> Self {
        let ticks = Arc::new(AtomicU64::new(0));
        let max_gap_us = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, g, s) = (ticks.clone(), max_gap_us.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut last = Instant::now();
            while !s.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let now = Instant::now();
                g.fetch_max((now - last).as_micros() as u64, Ordering::Relaxed);
                last = now;
                t.fetch_add(1, Ordering::Relaxed);
            }
        });
        Self {
            ticks,
            max_gap_us,
            stop,
            task,
        }
    }

    fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Stops it; returns its tick count and its largest gap.
    async fn stop(self) -> (u64, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        tokio::task::yield_now().await;
        let ticks = self.ticks();
        self.task.await.expect("ticker");
        (
            ticks,
            Duration::from_micros(self.max_gap_us.load(Ordering::Relaxed)),
        )
    }
}

/// Awaits `send`, counting the polls that found it waiting (`Pending`).
async fn counting_pending(
    mut send: SendFuture<'_, '_>,
) -> (Result<DeliveryFuture, SendError>, u64) {
    let mut pending = 0;
    let result = poll_fn(|cx| {
        let r = Pin::new(&mut send).poll(cx);
        if r.is_pending() {
            pending += 1;
        }
        r
    })
    .await;
    (result, pending)
}

/// Accepted records with their outcomes, ordered as the broker stored them: the order the
/// judge must read them back in.
fn in_log_order(mut accepted: Vec<(TestRecord, RecordMetadata)>) -> Vec<(TestRecord, i32)> {
    accepted.sort_by_key(|(_, m)| (m.partition, m.offset));
    for w in accepted.windows(2) {
        assert!(
            w[0].1.partition != w[1].1.partition || w[0].1.offset < w[1].1.offset,
            "two records reported at {}-{}",
            w[1].1.partition,
            w[1].1.offset
        );
    }
    accepted
        .into_iter()
        .map(|(r, m)| (r, m.partition))
        .collect()
}

#[test]
fn producer_handles_are_clone_send_and_sync() {
    fn clone_send_sync<T: Clone + Send + Sync + 'static>() {}
    fn send<T: Send>() {}
    clone_send_sync::<Producer>();
    clone_send_sync::<DeliveryFuture>();
    // What an async task holds across `.await` (a tokio or axum task must be `Send`).
    send::<SendFuture<'static, 'static>>();
    send::<SendError>();
}

#[tokio::test(flavor = "current_thread")]
async fn async_sends_wait_for_a_tiny_buffer_while_other_tasks_run() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-async-tiny");
    c.create_topic(&topic, 3, 1, &[]);
    // Four slots of 1 KiB: a few records each (values up to 200 bytes, headers).
    let producer = builder(
        &c,
        &[
            ("batch.size", "1024"),
            ("buffer.memory", "4096"),
            ("linger.ms", "1"),
            ("acks", "all"),
            ("max.block.ms", "60000"),
        ],
    )
    .build()
    .unwrap();
    const TASKS: usize = 8;
    const PER_TASK: usize = 300;
    let records = keyed_records(11, TASKS * PER_TASK, 40);
    let tried = keyed_records(12, 400, 40);
    let ticker = Ticker::start();
    let t0 = Instant::now();

    // Eight tasks awaiting `send_async`, each through its own clone of the handle.
    let mut senders = Vec::new();
    for chunk in records.chunks(PER_TASK) {
        let chunk = chunk.to_vec();
        let p = producer.clone();
        let topic = topic.clone();
        let ticks = ticker.ticks.clone();
        senders.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let (mut waits, mut pending_polls, mut ticks_while_waiting) = (0, 0, 0);
            for (r, o) in chunk.iter().zip(owned(&chunk)) {
                let record = o.record(&topic);
                let before = ticks.load(Ordering::Relaxed);
                let (result, pending) = counting_pending(p.send_async(&record)).await;
                if pending > 0 {
                    waits += 1;
                    pending_polls += pending;
                    ticks_while_waiting += ticks.load(Ordering::Relaxed) - before;
                }
                out.push((r.clone(), result.expect("accepted")));
            }
            (out, waits, pending_polls, ticks_while_waiting)
        }));
    }
    // One task shedding load with `try_send`: what it cannot hand over at once it drops.
    let p = producer.clone();
    let shed_topic = topic.clone();
    let shedder = tokio::spawn(async move {
        let mut out = Vec::new();
        let mut full = 0;
        for (r, o) in tried.iter().zip(owned(&tried)) {
            let record = o.record(&shed_topic);
            let t = Instant::now();
            match p.try_send(&record) {
                Ok(f) => out.push((r.clone(), f)),
                Err(SendError::BufferFull) => full += 1,
                // Before the first metadata arrives: shed as well, without waiting for it.
                Err(SendError::MetadataNotReady { .. }) => {}
                Err(e) => panic!("try_send: {e}"),
            }
            assert!(t.elapsed() < Duration::from_secs(1), "try_send waited");
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        (out, full)
    });

    let mut accepted = Vec::new();
    let (mut waits, mut pending_polls, mut ticks_while_waiting) = (0, 0, 0);
    for s in senders {
        let (out, w, p, t) = s.await.expect("sender task");
        waits += w;
        pending_polls += p;
        ticks_while_waiting += t;
        accepted.extend(out);
    }
    let (shed_out, full) = shedder.await.expect("shedder task");
    let shed_accepted = shed_out.len();
    accepted.extend(shed_out);
    let mut delivered = Vec::new();
    for (r, f) in accepted {
        delivered.push((r, f.await.expect("delivered")));
    }
    let elapsed = t0.elapsed();
    let (ticks, max_gap) = ticker.stop().await;
    eprintln!(
        "{} records in {elapsed:?}: {waits} sends waited ({pending_polls} pending polls, \
         {ticks_while_waiting} ticks meanwhile); try_send: {shed_accepted} accepted, {full} \
         BufferFull; ticker: {ticks} ticks, largest gap {max_gap:?}",
        delivered.len()
    );
    assert!(waits > 0, "the buffer was never full: no send waited");
    assert!(
        ticks_while_waiting > 0,
        "the ticker never ran while a send waited: the executor was blocked"
    );
    assert!(full > 0, "try_send never found the buffer full");
    assert!(shed_accepted > 0, "try_send never found room");
    assert_eq!(delivered.len(), TASKS * PER_TASK + shed_accepted);
    drop(producer);

    let expected = in_log_order(delivered);
    let sent: Vec<TestRecord> = expected.iter().map(|(r, _)| r.clone()).collect();
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&sent, &judged, |i| expected[i].1);
}

#[tokio::test(flavor = "current_thread")]
async fn try_send_refuses_at_once_when_full_and_a_cancelled_send_async_sends_nothing() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-async-full");
    c.create_topic(&topic, 1, 1, &[]);
    let (proxy, producer) = StallingProxy::with_producer(
        &c,
        &[
            ("batch.size", "1024"),
            ("buffer.memory", "4096"),
            ("linger.ms", "0"),
            ("max.block.ms", "60000"),
        ],
    );
    let records: Vec<TestRecord> = (0..7)
        .map(|i| TestRecord {
            key: None,
            value: Some(kafka_edge_tests::hex(&[b'0' + i as u8; 900])),
            headers: vec![],
            timestamp: 1_700_000_000_000 + i,
            partition: None,
        })
        .collect();
    let owned = owned(&records);
    let record = |i: usize| owned[i].record(&topic);
    let warm_up = producer.send_async(&record(0)).await.unwrap();
    warm_up.await.expect("warm-up delivered");
    proxy.stall(true);

    // The broker holds everything back: four 900-byte records fill the four 1 KiB slots,
    // then `try_send` refuses at once, whatever `max.block.ms` says.
    let mut accepted = vec![0];
    let mut futures = Vec::new();
    let full = loop {
        let i = accepted.len();
        let t = Instant::now();
        match producer.try_send(&record(i)) {
            Ok(f) => {
                futures.push(f);
                accepted.push(i);
            }
            Err(e) => break (e, t.elapsed()),
        }
        assert!(accepted.len() < 6, "the buffer never filled");
    };
    assert_eq!(full.0, SendError::BufferFull);
    assert!(full.0.is_retriable());
    assert!(
        full.1 < Duration::from_millis(100),
        "try_send took {:?}",
        full.1
    );
    assert_eq!(accepted.len(), 5, "the warm-up, then one record per slot");

    // `send_async` waits without blocking: the ticker runs while it waits out its limit.
    let ticker = Ticker::start();
    let t = Instant::now();
    let timed_out = producer
        .send_async(&record(5))
        .max_block(Duration::from_millis(500))
        .await;
    let waited = t.elapsed();
    assert_eq!(
        timed_out.map(|_| ()),
        Err(SendError::BufferTimeout { max_block_ms: 500 })
    );
    assert!(waited >= Duration::from_millis(490), "{waited:?}");
    // Cancelled while waiting: it was never accepted, so it is never written.
    let cancelled =
        tokio::time::timeout(Duration::from_millis(200), producer.send_async(&record(5))).await;
    assert!(cancelled.is_err(), "accepted while the buffer was full");
    let (ticks, max_gap) = ticker.stop().await;
    eprintln!(
        "while sends waited {:?}: {ticks} ticks, largest gap {max_gap:?}",
        t.elapsed()
    );
    assert!(
        ticks >= 50,
        "the ticker ticked {ticks} times in {:?} of waiting sends",
        t.elapsed()
    );

    // A send waiting when the broker answers again is woken by the freed memory.
    let last = records.len() - 1;
    let producer2 = producer.clone();
    let last_record = owned[last].clone();
    let topic2 = topic.clone();
    let waiting = tokio::spawn(async move {
        let r = last_record.record(&topic2);
        producer2.send_async(&r).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "accepted while the buffer was full");
    proxy.stall(false);
    let f = tokio::time::timeout(T, waiting)
        .await
        .expect("woken once memory was freed")
        .expect("task")
        .expect("accepted");
    futures.push(f);
    accepted.push(last);
    for f in futures {
        f.await.expect("delivered");
    }
    producer.close(T);
    let sent: Vec<TestRecord> = accepted.iter().map(|&i| records[i].clone()).collect();
    assert_read_back_exactly(&sent, &judge(&c, &topic), |_| 0);
}

#[tokio::test(flavor = "current_thread")]
async fn async_send_to_an_unknown_topic_times_out_without_blocking() {
    init_log();
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("std-async-missing");
    let producer = builder(&c, &[("max.block.ms", "1500")]).build().unwrap();
    let record = ProducerRecord::new(&topic).value(b"v");
    // `try_send` starts the metadata fetch and says so at once.
    let t = Instant::now();
    assert_eq!(
        producer.try_send(&record).map(|_| ()),
        Err(SendError::MetadataNotReady {
            topic: topic.clone()
        })
    );
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "{:?}",
        t.elapsed()
    );
    let ticker = Ticker::start();
    let t = Instant::now();
    let err = producer.send_async(&record).await.map(|_| ()).unwrap_err();
    let waited = t.elapsed();
    let (ticks, max_gap) = ticker.stop().await;
    eprintln!("metadata wait {waited:?}: {ticks} ticks, largest gap {max_gap:?}");
    assert!(
        matches!(&err, SendError::MetadataTimeout { topic: t, max_block_ms: 1500, .. } if *t == topic),
        "{err:?}"
    );
    assert!(err.is_retriable());
    assert_eq!(err.broker_code(), None);
    assert!(waited >= Duration::from_millis(1490), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(
        ticks >= 150,
        "{ticks} ticks in {waited:?}: the executor was held up"
    );
}
