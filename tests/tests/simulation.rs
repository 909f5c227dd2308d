//! Deterministic simulation of the core producer against the model cluster, over many
//! seeds: every accepted ticket gets exactly one outcome; delivered offsets hold the right
//! records; with idempotence no record is written twice or lost and partitions keep send
//! order, whatever the faults. A failing seed replays exactly:
//! `SIM_SEED=<seed> cargo test -p kafka-edge-tests --test simulation -- --nocapture`.
//!
//! `SIM_TRACE=<topic>-<partition>` (e.g. `topic-1-0`) prints what happens to one partition:
//! its batches as the model broker appends or refuses them, connections, outcomes.
//!
//! `SIM_SEEDS=<n>` sets the seed count of the small-cluster sweeps; `SIM_LARGE_SEEDS=<n>`
//! that of the large-cluster scenario (its own knob: one of its seeds costs as much as
//! hundreds of small ones).

use std::collections::{BTreeMap, BTreeSet};

use kafka_edge_tests::model::{ClusterShape, Faults, TopicShape};
use kafka_edge_tests::sim::{SimConfig, SimReport, TopicChoice, run};

/// `SIM_SEED` if set, else `count_var` (or `default_count`) seeds derived from `salt`.
fn seeds(count_var: &str, default_count: u64, salt: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("SIM_SEED") {
        return vec![s.parse().unwrap_or_else(|e| panic!("SIM_SEED: {e}"))];
    }
    let count = match std::env::var(count_var) {
        Ok(s) => s.parse().unwrap_or_else(|e| panic!("{count_var}={s}: {e}")),
        Err(_) => default_count,
    };
    (0..count).map(|i| i * 1_000_003 + salt).collect()
}

fn sweep(name: &str, count: u64, salt: u64, cfg: &SimConfig) -> Vec<SimReport> {
    sweep_seeds(name, seeds("SIM_SEEDS", count, salt), cfg)
}

fn sweep_seeds(name: &str, seeds: Vec<u64>, cfg: &SimConfig) -> Vec<SimReport> {
    let reports: Vec<SimReport> = seeds.into_iter().map(|seed| run(seed, cfg)).collect();
    let delivered: usize = reports.iter().map(|r| r.delivered).sum();
    let accepted: usize = reports.iter().map(|r| r.accepted).sum();
    let mut stats = BTreeMap::new();
    for r in &reports {
        for (k, v) in &r.stats {
            *stats.entry(*k).or_insert(0) += v;
        }
    }
    let partial_writes: u64 = reports.iter().map(|r| r.partial_writes).sum();
    eprintln!(
        "{name}: {} seeds, {accepted} records accepted, {delivered} delivered, \
         {partial_writes} partial writes; faults: {stats:?}",
        reports.len()
    );
    reports
}

fn base(props: &[(&'static str, &str)]) -> SimConfig {
    SimConfig {
        records: 300,
        shape: ClusterShape::default(),
        topic_choice: TopicChoice::Stride,
        props: props.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        faults: Faults::default(),
        cut_per_mille: 0,
        jump_per_mille: 0,
    }
}

#[test]
fn clean_cluster_delivers_everything_in_order() {
    let cfg = base(&[("linger.ms", "2")]);
    let reports = sweep("clean", 200, 1, &cfg);
    for r in &reports {
        assert_eq!(r.delivered, r.accepted, "{r:?}");
    }
    // Small send buffers took some requests in part: the rest waited for `handle_writable`.
    assert!(
        reports.iter().any(|r| r.partial_writes > 0),
        "no partial write in the sweep"
    );
}

#[test]
fn idempotent_producer_survives_lost_responses_cuts_and_leader_moves() {
    let mut cfg = base(&[
        ("linger.ms", "3"),
        ("request.timeout.ms", "500"),
        ("delivery.timeout.ms", "3600000"),
    ]);
    heavy_faults(&mut cfg);
    let reports = sweep("faults+idempotence", 1500, 2, &cfg);
    let mut injected = 0;
    for r in &reports {
        // The delivery timeout is an hour of virtual time: nothing may fail.
        assert_eq!(r.delivered, r.accepted, "{r:?}");
        injected += r.stats.values().sum::<u64>();
    }
    assert!(
        injected as usize > reports.len() * 3,
        "the sweep should inject many faults, injected {injected}"
    );
    assert!(
        reports.iter().any(|r| r.partition_in_flight_max > 1),
        "several batches of a partition should have been in flight at once"
    );
}

#[test]
fn idempotent_hot_partition_keeps_several_batches_in_flight_through_faults() {
    // One partition on three brokers, records sent faster than the broker answers: up to
    // five batches of the partition in flight at once (sequence numbers keep their order),
    // while responses and requests are lost, errors answered, leaders moved, connections
    // cut and the clock jumps. Nothing may be lost, duplicated, reordered or fail.
    let mut cfg = SimConfig {
        shape: ClusterShape {
            topics: vec![TopicShape {
                name: "hot".to_string(),
                partitions: 1,
            }],
            ..ClusterShape::default()
        },
        ..base(&[
            ("linger.ms", "0"),
            ("request.timeout.ms", "500"),
            ("delivery.timeout.ms", "3600000"),
        ])
    };
    heavy_faults(&mut cfg);
    let reports = sweep("hot partition", 500, 6, &cfg);
    for r in &reports {
        assert_eq!(r.delivered, r.accepted, "{r:?}");
    }
    let pipelined = reports
        .iter()
        .filter(|r| r.partition_in_flight_max > 1)
        .count();
    let full = reports
        .iter()
        .filter(|r| r.partition_in_flight_max == 5)
        .count();
    eprintln!(
        "hot partition: {pipelined} of {} seeds had several batches in flight, {full} five",
        reports.len()
    );
    assert!(
        pipelined * 2 > reports.len(),
        "most seeds should pipeline the partition: {pipelined} of {}",
        reports.len()
    );
    assert!(
        reports.iter().all(|r| r.partition_in_flight_max <= 5),
        "never more than max.in.flight.requests.per.connection batches of a partition"
    );
}

#[test]
fn short_delivery_timeout_gives_every_record_one_outcome() {
    let mut cfg = base(&[
        ("linger.ms", "5"),
        ("request.timeout.ms", "300"),
        ("delivery.timeout.ms", "1500"),
    ]);
    cfg.faults = Faults {
        retriable_error: 200,
        drop_after_append: 50,
        black_hole: 30,
        move_leader: 50,
        ..Faults::default()
    };
    cfg.cut_per_mille = 5;
    cfg.jump_per_mille = 20;
    let reports = sweep("timeouts", 500, 3, &cfg);
    let failed: usize = reports
        .iter()
        .map(|r| r.failed.values().sum::<usize>())
        .sum();
    assert!(
        failed > 0,
        "a short delivery timeout under heavy faults should fail some records"
    );
}

#[test]
fn without_idempotence_acks_1_and_acks_0_give_every_record_one_outcome() {
    for acks in ["1", "0"] {
        let mut cfg = base(&[
            ("enable.idempotence", "false"),
            ("acks", acks),
            ("max.in.flight.requests.per.connection", "5"),
        ]);
        cfg.faults = Faults {
            retriable_error: 20,
            drop_after_append: 10,
            move_leader: 10,
            ..Faults::default()
        };
        for r in sweep(&format!("acks={acks}"), 300, 4, &cfg) {
            assert_eq!(
                r.delivered + r.failed.values().sum::<usize>(),
                r.accepted,
                "{r:?}"
            );
        }
    }
}

/// The faults of the idempotent sweep: lost requests and responses, retriable errors,
/// black holes, leader moves, duplicates answered with an error, cut connections and
/// clock jumps.
fn heavy_faults(cfg: &mut SimConfig) {
    cfg.faults = Faults {
        retriable_error: 20,
        drop_after_append: 20,
        drop_before: 10,
        black_hole: 5,
        move_leader: 20,
        duplicate_error: 100,
    };
    cfg.cut_per_mille = 2;
    cfg.jump_per_mille = 5;
}

#[test]
fn large_cluster_every_record_once() {
    // 40 brokers, 200 topics of 10 partitions (2,000), three replicas, leaders spread over
    // every broker; each record picks one of the 200 topics (keyed, keyless or with an
    // explicit partition), so the producer keeps 200 topics, 2,000 partitions and a
    // connection to each of the 40 brokers. Default limits throughout: the tables are
    // unbounded and `max.response.size` (100 MiB) takes the ~90 KB Metadata responses.
    // `bootstrap.servers` names only the first three brokers (the simulation's choice, well
    // under the 32 it may name): the other 37 are found through Metadata.
    const BROKERS: i32 = 40;
    const TOPICS: usize = 200;
    let mut cfg = SimConfig {
        records: 3_000,
        shape: ClusterShape::uniform(BROKERS, TOPICS, 10),
        topic_choice: TopicChoice::Uniform,
        ..base(&[
            ("linger.ms", "3"),
            ("request.timeout.ms", "500"),
            ("delivery.timeout.ms", "3600000"),
        ])
    };
    heavy_faults(&mut cfg);
    let reports = sweep_seeds("large cluster", seeds("SIM_LARGE_SEEDS", 16, 5), &cfg);
    let mut topics = BTreeSet::new();
    let mut brokers = BTreeSet::new();
    let mut leader_moves = 0;
    for r in &reports {
        // The delivery timeout is an hour of virtual time: nothing may fail.
        assert_eq!(r.delivered, r.accepted, "{r:?}");
        topics.extend(r.accepted_by_topic.keys().cloned());
        brokers.extend(r.produce_requests.keys().copied());
        leader_moves += r.stats.get("leader_moves").copied().unwrap_or(0);
    }
    // The scenario did what it is for (even one seed does): every topic written, every
    // broker a leader that was sent to, leaders moved.
    assert_eq!(topics.len(), TOPICS, "topics written: {topics:?}");
    assert_eq!(
        brokers.len(),
        BROKERS as usize,
        "brokers produced to: {brokers:?}"
    );
    assert!(leader_moves > 0, "no leader moved in the sweep");
}
