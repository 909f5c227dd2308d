//! Deterministic simulation of the core producer against the model cluster, over many
//! seeds: every accepted ticket gets exactly one outcome; delivered offsets hold the right
//! records; with idempotence no record is written twice or lost and partitions keep send
//! order, whatever the faults. A failing seed replays exactly:
//! `SIM_SEED=<seed> cargo test -p kafka-edge-tests --test simulation -- --nocapture`.

use kafka_edge_tests::model::Faults;
use kafka_edge_tests::sim::{SimConfig, SimReport, run};

fn seeds(default_count: u64, salt: u64) -> Vec<u64> {
    if let Ok(s) = std::env::var("SIM_SEED") {
        return vec![s.parse().unwrap_or_else(|e| panic!("SIM_SEED: {e}"))];
    }
    let count = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_count);
    (0..count).map(|i| i * 1_000_003 + salt).collect()
}

fn sweep(name: &str, count: u64, salt: u64, cfg: &SimConfig) -> Vec<SimReport> {
    let reports: Vec<SimReport> = seeds(count, salt)
        .into_iter()
        .map(|seed| run(seed, cfg))
        .collect();
    let delivered: usize = reports.iter().map(|r| r.delivered).sum();
    let accepted: usize = reports.iter().map(|r| r.accepted).sum();
    let mut stats = std::collections::BTreeMap::new();
    for r in &reports {
        for (k, v) in &r.stats {
            *stats.entry(*k).or_insert(0) += v;
        }
    }
    eprintln!(
        "{name}: {} seeds, {accepted} records accepted, {delivered} delivered; faults: {stats:?}",
        reports.len()
    );
    reports
}

fn base(props: &[(&'static str, &str)]) -> SimConfig {
    SimConfig {
        records: 300,
        topics: 2,
        partitions: 4,
        brokers: 3,
        props: props.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        faults: Faults::default(),
        cut_per_mille: 0,
        jump_per_mille: 0,
    }
}

#[test]
fn clean_cluster_delivers_everything_in_order() {
    let cfg = base(&[("linger.ms", "2")]);
    for r in sweep("clean", 200, 1, &cfg) {
        assert_eq!(r.delivered, r.accepted, "{r:?}");
    }
}

#[test]
fn idempotent_producer_survives_lost_responses_cuts_and_leader_moves() {
    let mut cfg = base(&[
        ("linger.ms", "3"),
        ("request.timeout.ms", "500"),
        ("delivery.timeout.ms", "3600000"),
    ]);
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
