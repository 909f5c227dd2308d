//! The async driver on the host, over tokio TCP sockets through `embedded-io-adapters`,
//! against the real Apache Kafka of the test ground, with the firmware's heap-free tables;
//! every record is read back by the librdkafka judge.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::*;
use kafka_edge_core::{ProducerConfig, ProducerRecord};
use kafka_edge_embedded::{Error, Producer};
use kafka_edge_tests::{
    Ground, assert_read_back_exactly, judge, judge_expect, keyed_records, oracle, topic_name,
};
#[test]
fn keyed_records_through_the_async_driver_exactly_once() {
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("embedded-keyed");
    c.create_topic(&topic, 6, 1, &[]);
    let records = keyed_records(11, 20_000, 97);
    let bytes = owned(&records);
    let mut core = core(&c, &[("linger.ms", "5"), ("enable.idempotence", "true")]);
    let outcomes = Outcomes::default();
    let dialled = Rc::new(RefCell::new(Vec::new()));
    let conns: [Tcp; 4] = std::array::from_fn(|_| Tcp {
        stream: None,
        dialled: Rc::clone(&dialled),
    });
    let tickets = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4>::new(&mut core, conns, clock, recorder(&outcomes));
        let tickets = produce_all(&mut p, &topic, &bytes).await;
        let stats = *p.stats();
        assert_eq!(stats.connect_failures, 0, "{stats:?}");
        assert_eq!(stats.connections_lost, 0, "{stats:?}");
        assert!(stats.bytes_written > 20_000 * 16, "{stats:?}");
        tickets
    });
    assert!(core.is_closed());
    assert!(core.producer_id_and_epoch().is_some(), "idempotent");
    let placed = outcome_per_ticket(&tickets, &outcomes);
    for (i, (partition, offset)) in placed.iter().enumerate() {
        assert_eq!(*partition, murmur2(&records[i], 6), "record {i}: partition");
        assert!(*offset >= 0, "record {i}: offset");
    }
    assert!(!dialled.borrow().is_empty());
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&records, &judged, |i| murmur2(&records[i], 6));
    // The offsets reported are the offsets read back.
    let mut reported: Vec<(i32, i64)> = placed;
    reported.sort_unstable();
    let mut read: Vec<(i32, i64)> = judged.iter().map(|j| (j.partition, j.offset)).collect();
    read.sort_unstable();
    assert_eq!(reported, read);
}

/// `compression.type=lz4` with the core's heap-free compressor (no `alloc`, its hash table
/// inside the value): Apache Kafka accepts the batches (it decompresses them to assign
/// offsets) and librdkafka reads every record back exactly.
#[test]
fn lz4_batches_of_the_heap_free_compressor_read_back_exactly() {
    use kafka_edge_core::record::Lz4;
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("embedded-lz4");
    c.create_topic(&topic, 3, 1, &["compression.type=producer"]);
    // Sensor readings as text: compressible, as firmware's records are.
    let mut records = keyed_records(13, 5_000, 1);
    for (i, r) in records.iter_mut().enumerate() {
        let reading = format!(
            "{{\"sensor\":\"s-{:04}\",\"seq\":{i},\"temp\":{}.{},\"unit\":\"C\"}}",
            i % 16,
            18 + i % 7,
            i % 10
        );
        r.value = Some(kafka_edge_tests::hex(reading.as_bytes()));
    }
    let bytes = owned(&records);
    let mut config = ProducerConfig::new(&c.bootstrap).expect("bootstrap");
    for (k, v) in [("compression.type", "lz4"), ("linger.ms", "50")] {
        config.set(k, v).expect(k);
    }
    let mut core = Box::new(
        kafka_edge_core::Producer::<Vec<u8>, Tables, Lz4>::with_compressor(
            config,
            vec![0; 128 * 1024],
            LIMITS,
            7,
            Lz4::new(),
        )
        .expect("config"),
    );
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    let tickets = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4, 2048, 1024, Lz4>::new(
            &mut core,
            conns,
            clock,
            recorder(&outcomes),
        );
        produce_all(&mut p, &topic, &bytes).await
    });
    let placed = outcome_per_ticket(&tickets, &outcomes);
    assert_eq!(placed.len(), records.len());
    assert_eq!(
        core.compression_fallbacks(),
        0,
        "every batch went out compressed"
    );
    // Java reads every stored batch (`verify` asserts it) and names its codec.
    let codecs = oracle::batch_codecs(&oracle::stored_batches(&c, &topic, 3));
    let lz4 = codecs.iter().filter(|(codec, _)| codec == "lz4").count();
    assert!(
        lz4 > 0 && lz4 == codecs.len(),
        "{lz4} of {} stored batches are lz4",
        codecs.len()
    );
    assert_read_back_exactly(&records, &judge(&c, &topic), |i| murmur2(&records[i], 3));
}

#[test]
fn send_awaits_each_records_outcome() {
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("embedded-send");
    c.create_topic(&topic, 3, 1, &[]);
    let records = keyed_records(12, 40, 5);
    let bytes = owned(&records);
    // A long linger: `send` must not wait for it.
    let mut core = core(&c, &[("linger.ms", "60000")]);
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    let metas = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4>::new(&mut core, conns, clock, recorder(&outcomes));
        let mut metas = Vec::new();
        for r in &bytes {
            let started = p.now_ms();
            let headers = r.headers();
            let record = r.record(&topic, &headers);
            metas.push(p.send(&record).await.expect("delivered"));
            assert!(p.now_ms() - started < 30_000, "send waited for linger.ms");
        }
        // An invalid record is refused at once, typed.
        let bad = ProducerRecord {
            topic: "not a topic!",
            partition: None,
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp: -1,
        };
        assert!(matches!(p.send(&bad).await, Err(Error::Send(_))));
        p.close(10_000).await;
        metas
    });
    assert_eq!(
        outcomes.borrow().len(),
        records.len(),
        "one outcome per send"
    );
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&records, &judged, |i| murmur2(&records[i], 3));
    for (i, m) in metas.iter().enumerate() {
        assert_eq!(m.partition, murmur2(&records[i], 3), "record {i}");
        let j = judged
            .iter()
            .find(|j| j.partition == m.partition && j.offset == m.offset)
            .unwrap_or_else(|| panic!("record {i}: nothing at {m:?}"));
        assert_eq!(
            j.value, records[i].value,
            "record {i} at its reported offset"
        );
    }
}

#[test]
fn a_broker_killed_mid_run_loses_and_duplicates_nothing() {
    let c = cluster(Ground::Kafka3);
    let _one_at_a_time = c.exclusive();
    let topic = topic_name("embedded-kill");
    c.create_topic(&topic, 6, 3, &["min.insync.replicas=2"]);
    let records = keyed_records(13, 30_000, 101);
    let bytes = owned(&records);
    let mut core = core(
        &c,
        &[
            ("linger.ms", "5"),
            ("enable.idempotence", "true"),
            ("delivery.timeout.ms", "120000"),
            ("request.timeout.ms", "10000"),
        ],
    );
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    let (first, second) = bytes.split_at(bytes.len() / 2);
    let tickets = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4>::new(&mut core, conns, clock, recorder(&outcomes));
        let mut tickets = Vec::new();
        for (i, r) in first.iter().chain(second).enumerate() {
            if i == first.len() {
                // Half the records are accepted (many still in flight): kill a broker.
                let dir = c.clone();
                tokio::task::spawn_blocking(move || dir.kill(2))
                    .await
                    .expect("kill");
            }
            tickets.push(
                enqueue_one(&mut p, &topic, r)
                    .await
                    .unwrap_or_else(|e| panic!("record {i}: {e}")),
            );
        }
        p.flush().await;
        let stats = *p.stats();
        p.close(30_000).await;
        (tickets, stats)
    });
    let (tickets, stats) = tickets;
    c.start(2);
    c.wait_in_sync(&topic);
    let placed = outcome_per_ticket(&tickets, &outcomes);
    for (i, (partition, _)) in placed.iter().enumerate() {
        assert_eq!(*partition, murmur2(&records[i], 6), "record {i}: partition");
    }
    let judged = judge_expect(&c, &topic, records.len());
    assert_read_back_exactly(&records, &judged, |i| murmur2(&records[i], 6));
    eprintln!("driver stats across the kill: {stats:?}");
}

#[test]
fn tiny_buffers_force_partial_writes_and_reads_and_lose_nothing() {
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("embedded-tiny");
    c.create_topic(&topic, 6, 1, &[]);
    let records = keyed_records(14, 5_000, 31);
    let bytes = owned(&records);
    let mut core = core(&c, &[("linger.ms", "2")]);
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    let tickets = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        // 64-byte send and receive buffers: every request and response crosses many turns.
        let mut p =
            Producer::<_, _, _, _, _, 4, 64, 64>::new(&mut core, conns, clock, recorder(&outcomes));
        let mut tickets = Vec::new();
        for (i, r) in bytes.iter().enumerate() {
            tickets.push(
                enqueue_one(&mut p, &topic, r)
                    .await
                    .unwrap_or_else(|e| panic!("record {i}: {e}")),
            );
        }
        p.flush().await;
        let stats = *p.stats();
        p.close(10_000).await;
        assert!(stats.bytes_written > 64 * 100, "{stats:?}");
        tickets
    });
    outcome_per_ticket(&tickets, &outcomes);
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&records, &judged, |i| murmur2(&records[i], 6));
}

#[test]
fn an_unreachable_cluster_is_a_typed_timeout_after_max_block_ms() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut config = ProducerConfig::new(&format!("127.0.0.1:{port}")).expect("bootstrap");
    config.set("max.block.ms", "1500").expect("max.block.ms");
    let mut core = Box::new(Core::new(config, vec![0; 64 * 1024], LIMITS, 7).expect("config"));
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4>::new(&mut core, conns, clock, recorder(&outcomes));
        let record = ProducerRecord {
            topic: "nowhere",
            partition: None,
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp: -1,
        };
        let started = p.now_ms();
        let err = p.enqueue(&record).await.expect_err("no cluster");
        let waited = p.now_ms() - started;
        assert!(
            matches!(
                err,
                Error::Timeout {
                    max_block_ms: 1500,
                    cause: kafka_edge_core::SendError::MetadataNotReady
                }
            ),
            "{err:?}"
        );
        assert!((1500..10_000).contains(&waited), "waited {waited} ms");
        assert!(p.stats().connect_failures >= 1, "{:?}", p.stats());
        assert_eq!(p.stats().connects, 0);
        p.close(0).await;
    });
    assert!(outcomes.borrow().is_empty(), "nothing was accepted");
}

#[test]
fn cancelled_flushes_lose_no_bytes() {
    let c = cluster(Ground::Kafka1);
    let topic = topic_name("embedded-cancel");
    c.create_topic(&topic, 3, 1, &[]);
    let records = keyed_records(15, 3_000, 17);
    let bytes = owned(&records);
    let mut core = core(&c, &[("linger.ms", "1")]);
    let outcomes = Outcomes::default();
    let conns: [Tcp; 4] = Default::default();
    let (tickets, cancelled) = runtime().block_on(async {
        let clock = TokioClock(tokio::time::Instant::now());
        let mut p = Producer::<_, _, _, _, _, 4, 256, 256>::new(
            &mut core,
            conns,
            clock,
            recorder(&outcomes),
        );
        let mut tickets = Vec::new();
        let mut cancelled = 0;
        for (i, r) in bytes.iter().enumerate() {
            tickets.push(
                enqueue_one(&mut p, &topic, r)
                    .await
                    .unwrap_or_else(|e| panic!("record {i}: {e}")),
            );
            // Drop a flush midway (often while a read or write is pending) every few records.
            if i % 7 == 0
                && tokio::time::timeout(Duration::from_micros(200), p.flush())
                    .await
                    .is_err()
            {
                cancelled += 1;
            }
        }
        p.flush().await;
        p.close(10_000).await;
        (tickets, cancelled)
    });
    assert!(cancelled > 10, "only {cancelled} flushes were cancelled");
    outcome_per_ticket(&tickets, &outcomes);
    let judged = judge(&c, &topic);
    assert_read_back_exactly(&records, &judged, |i| murmur2(&records[i], 3));
}
