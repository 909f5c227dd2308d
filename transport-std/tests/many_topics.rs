//! kafka-edge-std with many topics in one process: one producer sends to 500 single-partition
//! topics of one Apache Kafka node, and the librdkafka judge reads every record back and
//! compares it exactly with what the delivery results reported.
//!
//! The core keeps per-topic state in fixed tables; this is the end-to-end proof that one
//! producer serves hundreds of topics (a gateway's case), not just the few of the other tests.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{builder, cluster, init_log};
use kafka_edge_std::ProducerRecord;
use kafka_edge_tests::{Cluster, Ground, hex, repo_root, topic_name};

const TOPICS: usize = 500;
const PER_TOPIC: usize = 2;
const T: Duration = Duration::from_secs(60);

/// One record where it landed: as sent and reported by its delivery result, or as the judge
/// read it back (the judge's JSON line with `--topics-prefix`). Ordered, so that sets of
/// them compare whole.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
struct Placed {
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, Option<String>)>,
    timestamp: i64,
    timestamp_type: String,
}

/// The names `scripts/kafka topics` creates (`numbered_topics` in scripts/lib/admin.py):
/// prefix + index, zero-padded to at least 4 digits.
fn numbered_topics(prefix: &str, count: usize) -> Vec<String> {
    let width = count.saturating_sub(1).to_string().len().max(4);
    (0..count).map(|i| format!("{prefix}{i:0width$}")).collect()
}

/// Runs one of the project's scripts and returns its stdout; its stderr (progress) goes to
/// the test's.
fn script(name: &str, args: &[&str]) -> String {
    let what = format!("scripts/{name} {}", args.join(" "));
    let out = Command::new(repo_root().join("scripts").join(name))
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(out.status.success(), "{what} failed with {}", out.status);
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{what}: output not UTF-8: {e}"))
}

#[test]
fn one_producer_sends_to_500_topics_and_every_record_reads_back() {
    init_log();
    let c: Cluster = cluster(Ground::Kafka1);
    let dir = c.dir.to_string_lossy().into_owned();
    // Fresh names per run, so that a rerun on the same broker starts from empty topics.
    let prefix = format!("{}-", topic_name("std-many"));
    let count = TOPICS.to_string();
    let t0 = Instant::now();
    script(
        "kafka",
        &[
            "topics",
            "--prefix",
            &prefix,
            "--count",
            &count,
            "--partitions",
            "1",
            "--replication",
            "1",
            "--dir",
            &dir,
        ],
    );
    let created = t0.elapsed();
    let topics = numbered_topics(&prefix, TOPICS);

    let p = builder(&c, &[("linger.ms", "5")])
        .build()
        .expect("producer");
    let t1 = Instant::now();
    let mut pending = Vec::with_capacity(TOPICS * PER_TOPIC);
    for (t, topic) in topics.iter().enumerate() {
        for j in 0..PER_TOPIC {
            // Keys and values distinct across all topics, so a record in the wrong topic shows.
            let key = format!("key-{t}-{j}");
            let value = format!("value-{t}-{j}");
            let timestamp = 1_700_000_000_000 + (t * PER_TOPIC + j) as i64;
            let record = ProducerRecord::new(topic)
                .key(key.as_bytes())
                .value(value.as_bytes())
                .timestamp(timestamp);
            let future = p.send(&record).unwrap_or_else(|e| {
                panic!(
                    "send to topic #{} of {TOPICS} ({topic}), record {j}: {e}",
                    t + 1
                )
            });
            pending.push((topic, j, key, value, timestamp, future));
        }
    }
    let mut sent = BTreeSet::new();
    for (topic, j, key, value, timestamp, future) in pending {
        let m = future
            .wait_timeout(T)
            .unwrap_or_else(|| panic!("{topic} record {j}: no outcome within {T:?}"))
            .unwrap_or_else(|e| panic!("{topic} record {j}: {e}"));
        assert_eq!(&*m.topic, topic.as_str(), "record {j}: topic reported");
        assert_eq!(
            m.partition, 0,
            "{topic} record {j}: the topic's one partition"
        );
        // A fresh topic, records sent in order: offsets 0, 1, ...
        assert_eq!(m.offset, j as i64, "{topic} record {j}: offset");
        assert_eq!(m.timestamp, timestamp, "{topic} record {j}: timestamp");
        sent.insert(Placed {
            topic: topic.clone(),
            partition: m.partition,
            offset: m.offset,
            key: Some(hex(key.as_bytes())),
            value: Some(hex(value.as_bytes())),
            headers: vec![],
            timestamp,
            timestamp_type: "create".into(),
        });
    }
    let delivered = t1.elapsed();
    p.close(T);
    assert_eq!(sent.len(), TOPICS * PER_TOPIC, "distinct records delivered");

    let t2 = Instant::now();
    let expect = sent.len().to_string();
    let out = script(
        "judge",
        &[
            "--bootstrap",
            &c.bootstrap,
            "--topics-prefix",
            &prefix,
            "--topic-count",
            &count,
            "--expect",
            &expect,
            "--timeout",
            "120",
        ],
    );
    let judged: Vec<Placed> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("judge line {l}: {e}")))
        .collect();
    let judged_in = t2.elapsed();
    eprintln!(
        "{TOPICS} topics: created in {created:.2?}, {} records delivered in {delivered:.2?}, \
         read back in {judged_in:.2?}",
        sent.len()
    );
    // Counted before the set: a record written twice would vanish in it.
    assert_eq!(judged.len(), sent.len(), "records read back");
    let judged: BTreeSet<Placed> = judged.into_iter().collect();
    let missing: Vec<&Placed> = sent.difference(&judged).collect();
    let extra: Vec<&Placed> = judged.difference(&sent).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} reported records not read back (first: {:?}); {} read back but not reported \
         (first: {:?})",
        missing.len(),
        missing.first(),
        extra.len(),
        extra.first()
    );
}
