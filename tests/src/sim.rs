//! Deterministic simulation of the core `Producer` against the [`ModelCluster`]: a virtual
//! clock that jumps to the next wake-up, a network that delays, splits and drops bytes, and
//! faults drawn from one seed, so that a failing seed replays exactly.

use std::collections::{BTreeMap, HashMap, VecDeque};

use kafka_edge_core::record::Header;
use kafka_edge_core::{
    ConnId, Event, Producer, ProducerConfig, ProducerRecord, SendError, Ticket, TicketRange,
};

use crate::TestRng;
use crate::model::{Faults, ModelCluster, Reply};

/// Capacities of the simulated producer.
pub type SimProducer = Producer<Vec<u8>, Vec<u8>, 64, 64, 256>;

/// A simulation's settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Records to send.
    pub records: usize,
    /// Topics (each with `partitions` partitions).
    pub topics: usize,
    /// Partitions per topic.
    pub partitions: usize,
    /// Brokers.
    pub brokers: i32,
    /// Kafka properties for the producer.
    pub props: Vec<(&'static str, String)>,
    /// Fault probabilities.
    pub faults: Faults,
    /// Probability (1/1000 per delivery) that a connection is cut while bytes travel.
    pub cut_per_mille: u32,
    /// Probability (1/1000 per step) of a clock jump of up to 2 s.
    pub jump_per_mille: u32,
}

/// What a simulation observed.
#[derive(Debug, Default)]
pub struct SimReport {
    /// Records accepted by `send`.
    pub accepted: usize,
    /// Records delivered.
    pub delivered: usize,
    /// Records failed, by error text.
    pub failed: BTreeMap<String, usize>,
    /// Virtual milliseconds the run took.
    pub elapsed_ms: u64,
    /// The model's counters.
    pub stats: BTreeMap<&'static str, u64>,
}

struct Conn {
    node: i32,
    up: bool,
    /// Bytes on their way to the broker: (arrival time, bytes).
    to_broker: VecDeque<(u64, Vec<u8>)>,
    /// Request bytes received by the broker, not yet a whole frame.
    broker_in: Vec<u8>,
    /// Bytes on their way to the producer.
    to_client: VecDeque<(u64, Vec<u8>)>,
    /// Pending connect result time.
    connect_at: Option<u64>,
}

struct Sent {
    topic: usize,
    value: Vec<u8>,
    outcome: Option<Result<(i32, i64), String>>,
}

fn record_value(i: usize, rng: &mut TestRng) -> Vec<u8> {
    let mut v = format!("rec-{i:08}-").into_bytes();
    let extra = rng.below(120) as usize;
    v.extend(rng.bytes(extra));
    v
}

/// Runs one seed. Panics (with the seed in the message) when an invariant breaks.
pub fn run(seed: u64, cfg: &SimConfig) -> SimReport {
    let mut rng = TestRng::new(seed);
    let produce_max = [9_i16, 11, 12, 13][rng.below(4) as usize];
    let mut cluster = ModelCluster::new(cfg.brokers, produce_max, cfg.faults);
    let topic_names: Vec<String> = (0..cfg.topics).map(|t| format!("topic-{t}")).collect();
    for t in &topic_names {
        cluster.create_topic(t, cfg.partitions);
    }
    let bootstrap: Vec<String> = cluster
        .brokers
        .iter()
        .map(|b| {
            let (h, p) = ModelCluster::address(*b);
            format!("{h}:{p}")
        })
        .collect();
    let mut config =
        ProducerConfig::new(&bootstrap.join(",")).unwrap_or_else(|e| panic!("config: {e}"));
    for (k, v) in &cfg.props {
        config
            .set(k, v)
            .unwrap_or_else(|e| panic!("seed {seed}: {k}={v}: {e}"));
    }
    let batch_size = 1024 + rng.below(4096) as usize;
    config
        .set("batch.size", &batch_size.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let pool = vec![0u8; 64 * batch_size];
    let io = vec![0u8; 512 * 1024];
    let mut p: SimProducer =
        Producer::new(config, pool, io, seed).unwrap_or_else(|e| panic!("seed {seed}: new: {e}"));

    let mut now: u64 = 1_000;
    let mut conns: HashMap<u16, Conn> = HashMap::new();
    let mut sent: Vec<Sent> = Vec::new();
    let mut by_ticket: HashMap<Ticket, usize> = HashMap::new();
    let mut next_send_at = now;
    let mut outcomes = 0usize;
    let start = now;
    let deadline = now + 3_600_000;
    let mut steps = 0u64;

    loop {
        steps += 1;
        assert!(
            steps < 2_000_000,
            "seed {seed}: no progress after {steps} steps"
        );
        assert!(
            now < deadline,
            "seed {seed}: simulation ran past one virtual hour"
        );

        // Outputs, drained after every input.
        while let Some(ev) = p.poll_event() {
            match ev {
                Event::Connect { conn, host, .. } => {
                    let node: i32 = host.trim_start_matches("broker-").parse().unwrap_or(-1);
                    let up = cluster.brokers.contains(&node);
                    let delay = 1 + rng.below(20);
                    conns.insert(
                        conn.0,
                        Conn {
                            node,
                            up,
                            to_broker: VecDeque::new(),
                            broker_in: Vec::new(),
                            to_client: VecDeque::new(),
                            connect_at: Some(now + delay),
                        },
                    );
                }
                Event::Disconnect { conn } => {
                    conns.remove(&conn.0);
                }
                Event::Delivered {
                    topic: _,
                    partition,
                    tickets,
                    base_offset,
                    ..
                } => {
                    outcomes += settle(
                        seed,
                        &mut sent,
                        &by_ticket,
                        tickets,
                        Ok((partition, base_offset)),
                    );
                }
                Event::Failed { tickets, error, .. } => {
                    outcomes += settle(
                        seed,
                        &mut sent,
                        &by_ticket,
                        tickets,
                        Err(format!("{error}")),
                    );
                }
                _ => {}
            }
        }
        while let Some(tx) = p.poll_transmit(now) {
            let conn = tx.conn();
            let bytes: Vec<u8> = tx.chunks().flat_map(|c| c.iter().copied()).collect();
            let n = bytes.len();
            if let Some(c) = conns.get_mut(&conn.0) {
                // The network splits the bytes into random pieces with random latency.
                let mut at = now;
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let k = 1 + rng.below(rest.len() as u64) as usize;
                    at += rng.below(3);
                    c.to_broker.push_back((at, rest[..k].to_vec()));
                    rest = &rest[k..];
                }
            }
            p.handle_transmitted(now, conn, n);
        }

        // The workload: records with keys, without keys, and with explicit partitions.
        if sent.len() < cfg.records && now >= next_send_at {
            let i = sent.len();
            let topic = (i * 7 + rng.below(2) as usize) % cfg.topics;
            let value = record_value(i, &mut rng);
            let key_bytes = format!("key-{}", rng.below(50)).into_bytes();
            let kind = rng.below(3);
            let headers = [Header {
                key: "i",
                value: Some(&value[4..12]),
            }];
            let record = ProducerRecord {
                topic: &topic_names[topic],
                partition: if kind == 2 {
                    Some(rng.below(cfg.partitions as u64) as i32)
                } else {
                    None
                },
                key: if kind == 0 { Some(&key_bytes) } else { None },
                value: Some(&value),
                headers: &headers,
                timestamp: 1_700_000_000_000 + i as i64,
            };
            match p.send(now, &record) {
                Ok(ticket) => {
                    assert!(
                        by_ticket.insert(ticket, sent.len()).is_none(),
                        "seed {seed}: ticket {ticket:?} given twice"
                    );
                    sent.push(Sent {
                        topic,
                        value,
                        outcome: None,
                    });
                    next_send_at = now + rng.below(3);
                }
                Err(SendError::BufferFull | SendError::MetadataNotReady) => {
                    next_send_at = now + 1 + rng.below(10)
                }
                Err(e) => panic!("seed {seed}: send {i}: {e}"),
            }
            continue;
        }
        if sent.len() == cfg.records && outcomes == sent.len() {
            break;
        }
        if sent.len() == cfg.records && !p.is_closed() && rng.below(2) == 0 {
            p.flush(now);
        }

        // The next instant anything happens.
        let mut next = p.poll_timeout().unwrap_or(u64::MAX);
        if sent.len() < cfg.records {
            next = next.min(next_send_at);
        }
        for c in conns.values() {
            if let Some(t) = c.connect_at {
                next = next.min(t);
            }
            if let Some((t, _)) = c.to_broker.front() {
                next = next.min(*t);
            }
            if let Some((t, _)) = c.to_client.front() {
                next = next.min(*t);
            }
        }
        assert!(
            next != u64::MAX,
            "seed {seed}: stalled with {} of {} outcomes and nothing scheduled",
            outcomes,
            sent.len()
        );
        if cfg.jump_per_mille > 0 && rng.below(1000) < u64::from(cfg.jump_per_mille) {
            next = next.max(now + rng.below(2_000));
        }
        now = now.max(next);

        // Deliver what is due.
        let ids: Vec<u16> = {
            let mut v: Vec<u16> = conns.keys().copied().collect();
            v.sort_unstable();
            v
        };
        for id in ids {
            let conn = ConnId(id);
            let Some(c) = conns.get_mut(&id) else {
                continue;
            };
            if let Some(t) = c.connect_at
                && t <= now
            {
                c.connect_at = None;
                if c.up {
                    p.handle_connected(now, conn);
                } else {
                    conns.remove(&id);
                    p.handle_closed(now, conn);
                    continue;
                }
            }
            let mut cut = false;
            while let Some(c) = conns.get_mut(&id)
                && c.to_broker.front().is_some_and(|(t, _)| *t <= now)
            {
                let Some((_, bytes)) = c.to_broker.pop_front() else {
                    break;
                };
                c.broker_in.extend_from_slice(&bytes);
                // Whole frames go to the model broker.
                while c.broker_in.len() >= 4 {
                    let len = i32::from_be_bytes([
                        c.broker_in[0],
                        c.broker_in[1],
                        c.broker_in[2],
                        c.broker_in[3],
                    ]) as usize;
                    if c.broker_in.len() < 4 + len {
                        break;
                    }
                    let frame: Vec<u8> = c.broker_in.drain(..4 + len).skip(4).collect();
                    match cluster.handle(c.node, &frame, &mut rng) {
                        Reply::Respond(resp) => {
                            let at = now + 1 + rng.below(5);
                            let mut rest = &resp[..];
                            let mut t = at;
                            while !rest.is_empty() {
                                let k = 1 + rng.below(rest.len() as u64) as usize;
                                c.to_client.push_back((t, rest[..k].to_vec()));
                                t += rng.below(2);
                                rest = &rest[k..];
                            }
                        }
                        Reply::Silent => {}
                        Reply::Drop => {
                            cut = true;
                            break;
                        }
                    }
                }
                if cut {
                    break;
                }
                if cfg.cut_per_mille > 0 && rng.below(1000) < u64::from(cfg.cut_per_mille) {
                    cut = true;
                    break;
                }
            }
            while !cut
                && let Some(c) = conns.get_mut(&id)
                && c.to_client.front().is_some_and(|(t, _)| *t <= now)
            {
                let Some((_, bytes)) = c.to_client.pop_front() else {
                    break;
                };
                let mut off = 0;
                while off < bytes.len() {
                    let took = p.handle_received(now, conn, &bytes[off..]);
                    if took == 0 {
                        break;
                    }
                    off += took;
                }
                if !conns.contains_key(&id) {
                    break;
                }
            }
            if cut && conns.remove(&id).is_some() {
                p.handle_closed(now, conn);
            }
        }
        p.handle_timeout(now);
        if cluster.brokers.len() > 1
            && cfg.faults.move_leader > 0
            && rng.below(5000) < u64::from(cfg.faults.move_leader)
        {
            cluster.move_random_leader(&mut rng);
        }
    }

    // Invariants.
    let mut report = SimReport {
        accepted: sent.len(),
        elapsed_ms: now - start,
        ..Default::default()
    };
    let idempotent = !cfg
        .props
        .iter()
        .any(|(k, v)| *k == "enable.idempotence" && v == "false");
    let acks0 = cfg.props.iter().any(|(k, v)| *k == "acks" && v == "0");
    let mut seen_in_log: HashMap<Vec<u8>, usize> = HashMap::new();
    for (name, topic) in &cluster.topics {
        for (pi, part) in topic.partitions.iter().enumerate() {
            let mut last_index: Option<usize> = None;
            let mut last_key_index: HashMap<Vec<u8>, usize> = HashMap::new();
            for r in &part.log {
                let v = r.value.as_deref().unwrap_or_default().to_vec();
                *seen_in_log.entry(v.clone()).or_default() += 1;
                let idx: usize = std::str::from_utf8(&v[4..12])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(usize::MAX);
                if idempotent {
                    // Records of a partition appear in the order they were sent.
                    if let Some(l) = last_index {
                        assert!(
                            idx > l,
                            "seed {seed}: {name}-{pi}: record {idx} after {l} in the log"
                        );
                    }
                    last_index = Some(idx);
                }
                let _ = last_key_index.insert(v, idx);
            }
        }
    }
    for (i, s) in sent.iter().enumerate() {
        match &s.outcome {
            None => panic!("seed {seed}: record {i} has no outcome"),
            Some(Ok((partition, base_offset))) => {
                report.delivered += 1;
                // A duplicate answered with DUPLICATE_SEQUENCE_NUMBER has no offset (-1).
                if !acks0 && *base_offset >= 0 {
                    let part =
                        &cluster.topics[&topic_names[s.topic]].partitions[*partition as usize];
                    let at = part.log.get(*base_offset as usize).unwrap_or_else(|| {
                        panic!("seed {seed}: record {i} delivered at {partition}/{base_offset}, past the log's end {}", part.log.len())
                    });
                    assert_eq!(
                        at.value.as_deref(),
                        Some(&s.value[..]),
                        "seed {seed}: record {i}: offset {base_offset} holds another record"
                    );
                }
                let n = seen_in_log.get(&s.value).copied().unwrap_or(0);
                if idempotent {
                    assert_eq!(n, 1, "seed {seed}: record {i} is in the log {n} times");
                } else if !acks0 {
                    assert!(
                        n >= 1,
                        "seed {seed}: delivered record {i} is not in the log"
                    );
                }
            }
            Some(Err(e)) => {
                *report.failed.entry(e.clone()).or_default() += 1;
                if idempotent {
                    let n = seen_in_log.get(&s.value).copied().unwrap_or(0);
                    assert!(
                        n <= 1,
                        "seed {seed}: failed record {i} is in the log {n} times"
                    );
                }
            }
        }
    }
    assert!(
        p.is_flushed(),
        "seed {seed}: producer not flushed after every outcome"
    );
    report.stats = cluster.stats.clone();
    report
}

/// Records the outcome of every ticket of `tickets`; each must get exactly one.
fn settle(
    seed: u64,
    sent: &mut [Sent],
    by_ticket: &HashMap<Ticket, usize>,
    tickets: TicketRange,
    outcome: Result<(i32, i64), String>,
) -> usize {
    let mut n = 0;
    for (k, t) in tickets.iter().enumerate() {
        let i = *by_ticket
            .get(&t)
            .unwrap_or_else(|| panic!("seed {seed}: outcome for unknown ticket {t:?}"));
        let s = &mut sent[i];
        assert!(
            s.outcome.is_none(),
            "seed {seed}: record {i} got a second outcome"
        );
        s.outcome = Some(match &outcome {
            Ok((p, base)) => Ok((*p, if *base >= 0 { base + k as i64 } else { -1 })),
            Err(e) => Err(e.clone()),
        });
        n += 1;
    }
    n
}
