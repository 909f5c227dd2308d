//! Deterministic simulation of the core `Producer` against the [`ModelCluster`]: a virtual
//! clock that jumps to the next wake-up, a network that delays, splits and drops bytes, and
//! faults drawn from one seed, so that a failing seed replays exactly.
//!
//! A scenario picks the cluster with [`SimConfig::shape`] (a [`ClusterShape`]: brokers,
//! topics and partition counts, replication, leader placement) and how records spread over
//! its topics with [`SimConfig::topic_choice`].
//!
//! The producer's type and constructor appear only in [`SimProducer`] and `new_producer`,
//! so that a change of the core's capacities or storage is made in one place.
//!
//! The simulated network is a [`Transport`] driven by the core's own drain step
//! ([`Producer::drain`]). Each connection has a send buffer of a size drawn when it opens
//! (a third of them unbounded): a transmit larger than the room left is written in part,
//! and the core holds the rest back until the bytes drained to the broker make room and the
//! simulation reports [`Producer::handle_writable`].

use std::collections::{BTreeMap, HashMap, VecDeque};

use kafka_edge_core::record::Header;
use kafka_edge_core::{
    BrokerRef, ConnId, HeapStorage, Limits, ProduceError, Producer, ProducerConfig, ProducerRecord,
    SendError, Ticket, TicketRange, Transmit, Transport,
};

use crate::TestRng;
use crate::model::{ClusterShape, Faults, ModelCluster, Reply};

/// The simulated producer: the pool in a `Vec`, every other table on the heap.
pub type SimProducer = Producer<Vec<u8>, HeapStorage>;

/// A producer with `config` (bootstrap servers and `batch.size` set), its partitioner
/// seeded with `seed`; panics (naming the seed) if the core refuses.
///
/// Its tables are [`Limits::UNBOUNDED`]: they grow with the cluster (topics, partitions,
/// brokers, connections, response sizes), so any shape fits and a `TableFull` refusal is a
/// defect.
fn new_producer(config: ProducerConfig, seed: u64) -> SimProducer {
    // 64 batches of memory: with many partitions, backpressure (`BufferFull`) is part of
    // the test.
    let pool = vec![0u8; 64 * config.batch_size];
    Producer::new(config, pool, Limits::UNBOUNDED, seed)
        .unwrap_or_else(|e| panic!("seed {seed}: Producer::new refused: {e} ({e:?})"))
}

/// How the workload picks each record's topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopicChoice {
    /// Record `i` goes to topic `(7 i + r) mod topics` with `r` in `{0, 1}`: every topic in
    /// turn (the historical workload).
    #[default]
    Stride,
    /// Each record picks one of the topics uniformly at random.
    Uniform,
}

/// A simulation's settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Records to send.
    pub records: usize,
    /// The model cluster: brokers, topics, partitions, replicas, leader placement.
    pub shape: ClusterShape,
    /// How records spread over the shape's topics.
    pub topic_choice: TopicChoice,
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
    /// Produce requests each broker handled, by broker id.
    pub produce_requests: BTreeMap<i32, u64>,
    /// Records accepted per topic, by topic name.
    pub accepted_by_topic: BTreeMap<String, usize>,
    /// Transmits the network took only in part (each then waited for `handle_writable`).
    pub partial_writes: u64,
    /// Most batches of one partition the producer had in flight at once.
    pub partition_in_flight_max: u64,
}

struct Conn {
    node: i32,
    up: bool,
    /// Bytes on their way to the broker: (arrival time, bytes).
    to_broker: VecDeque<(u64, Vec<u8>)>,
    /// Bytes in `to_broker`: the part of the send buffer in use.
    in_send_buffer: usize,
    /// The send buffer's size (`usize::MAX`: unbounded).
    send_buffer: usize,
    /// The last write was partial: `handle_writable` is due once the buffer has room.
    blocked: bool,
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
    /// The partition the outcome named, and the outcome's place among all outcomes.
    completed: Option<(i32, usize)>,
}

/// The simulated network and the test's bookkeeping, as the core's [`Transport`] for one
/// drain step at `now`.
struct Net<'a> {
    seed: u64,
    now: u64,
    rng: &'a mut TestRng,
    /// Draws send buffer sizes (apart from `rng`, so that they do not shift its stream).
    buffer_rng: &'a mut TestRng,
    cluster: &'a ModelCluster,
    topic_names: &'a [&'a str],
    conns: &'a mut HashMap<u16, Conn>,
    sent: &'a mut [Sent],
    by_ticket: &'a HashMap<Ticket, usize>,
    outcomes: &'a mut usize,
    partial_writes: &'a mut u64,
}

impl Net<'_> {
    /// Records the outcome of every ticket of `tickets`, reported for `topic`; each must
    /// get exactly one, for the topic it was sent to.
    fn settle(
        &mut self,
        topic: &str,
        partition: i32,
        tickets: TicketRange,
        outcome: Result<(i32, i64), String>,
    ) {
        let seed = self.seed;
        for (k, t) in tickets.iter().enumerate() {
            let i = *self
                .by_ticket
                .get(&t)
                .unwrap_or_else(|| panic!("seed {seed}: outcome for unknown ticket {t:?}"));
            let s = &mut self.sent[i];
            assert!(
                s.outcome.is_none(),
                "seed {seed}: record {i} got a second outcome"
            );
            assert_eq!(
                topic, self.topic_names[s.topic],
                "seed {seed}: record {i}: outcome reported for another topic"
            );
            s.outcome = Some(match &outcome {
                Ok((p, base)) => Ok((*p, if *base >= 0 { base + k as i64 } else { -1 })),
                Err(e) => Err(e.clone()),
            });
            s.completed = Some((partition, *self.outcomes));
            *self.outcomes += 1;
        }
    }
}

impl Transport for Net<'_> {
    fn connect(&mut self, conn: ConnId, _broker: BrokerRef, host: &str, _port: u16) {
        let node: i32 = host.trim_start_matches("broker-").parse().unwrap_or(-1);
        if crate::model::trace_target().is_some() {
            eprintln!(
                "sim trace: t {} conn {} connect to {node}",
                self.now, conn.0
            );
        }
        let up = self.cluster.brokers.contains(&node);
        let delay = 1 + self.rng.below(20);
        // A third of the connections have an unbounded send buffer; the others between
        // 64 bytes and 8 KiB, less than a request of a few batches.
        let send_buffer = match self.buffer_rng.below(3) {
            0 => usize::MAX,
            _ => 64 + self.buffer_rng.below(8 * 1024) as usize,
        };
        self.conns.insert(
            conn.0,
            Conn {
                node,
                up,
                to_broker: VecDeque::new(),
                in_send_buffer: 0,
                send_buffer,
                blocked: false,
                broker_in: Vec::new(),
                to_client: VecDeque::new(),
                connect_at: Some(self.now + delay),
            },
        );
    }

    fn disconnect(&mut self, conn: ConnId) {
        if crate::model::trace_target().is_some() {
            eprintln!(
                "sim trace: t {} conn {} closed by the producer",
                self.now, conn.0
            );
        }
        self.conns.remove(&conn.0);
    }

    fn delivered(
        &mut self,
        topic: &str,
        partition: i32,
        tickets: TicketRange,
        base_offset: i64,
        _log_append_time_ms: i64,
    ) {
        if crate::model::trace_target().is_some_and(|t| t == format!("{topic}-{partition}")) {
            eprintln!(
                "sim trace: t {} delivered {tickets:?} at {base_offset}",
                self.now
            );
        }
        self.settle(topic, partition, tickets, Ok((partition, base_offset)));
    }

    fn failed(&mut self, topic: &str, partition: i32, tickets: TicketRange, error: ProduceError) {
        self.settle(topic, partition, tickets, Err(format!("{error}")));
    }

    fn transmit(&mut self, tx: &Transmit<'_>) -> usize {
        let Some(c) = self.conns.get_mut(&tx.conn().0) else {
            // The core never transmits on a connection it was told is closed.
            panic!(
                "seed {}: transmit of {} bytes on {:?}, which is not open",
                self.seed,
                tx.len(),
                tx.conn()
            );
        };
        assert!(
            !c.blocked,
            "seed {}: transmit on {:?} before handle_writable after a partial write",
            self.seed,
            tx.conn()
        );
        // The send buffer takes what fits; the rest waits until the bytes drain.
        let room = c.send_buffer - c.in_send_buffer;
        let n = tx.len().min(room);
        if n < tx.len() {
            c.blocked = true;
            *self.partial_writes += 1;
        }
        let mut bytes = vec![0u8; n];
        let copied = tx.copy_to(&mut bytes);
        assert_eq!(copied, n, "seed {}: Transmit::copy_to", self.seed);
        c.in_send_buffer += n;
        // The network splits the bytes into random pieces with random latency.
        let mut at = self.now;
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let k = 1 + self.rng.below(rest.len() as u64) as usize;
            at += self.rng.below(3);
            c.to_broker.push_back((at, rest[..k].to_vec()));
            rest = &rest[k..];
        }
        n
    }
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
    let shape = &cfg.shape;
    assert!(
        !shape.topics.is_empty(),
        "the shape has no topic: {shape:?}"
    );
    let mut cluster = ModelCluster::new(shape, produce_max, cfg.faults);
    let topic_names: Vec<&str> = shape.topics.iter().map(|t| t.name.as_str()).collect();
    // The first three brokers, as applications list a few: the others are found through
    // Metadata.
    let bootstrap: Vec<String> = cluster
        .brokers
        .iter()
        .take(3)
        .map(|b| {
            let (h, p) = ModelCluster::address(*b);
            format!("{h}:{p}")
        })
        .collect();
    let mut config = ProducerConfig::new(&bootstrap.join(","))
        .unwrap_or_else(|e| panic!("seed {seed}: bootstrap.servers: {e}"));
    for (k, v) in &cfg.props {
        config
            .set(k, v)
            .unwrap_or_else(|e| panic!("seed {seed}: {k}={v}: {e}"));
    }
    let batch_size = 1024 + rng.below(4096) as usize;
    config
        .set("batch.size", &batch_size.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    // Batches that never grow (Java's), grow a little, or grow to the default 256 KiB (a
    // separate stream, so that the seeds' other draws stay as they were).
    if !cfg.props.iter().any(|(k, _)| *k == "batch.max.size") {
        let batch_max_size = match TestRng::new(seed ^ 0xba7c_49a0_5e1f).below(3) {
            0 => 0,
            1 => 2 * batch_size,
            _ => kafka_edge_core::DEFAULT_BATCH_MAX_SIZE,
        };
        config
            .set("batch.max.size", &batch_max_size.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut p = new_producer(config, seed);
    let mut buffer_rng = TestRng::new(seed ^ 0x5e4d_b0ff_e125_12e5);

    let mut now: u64 = 1_000;
    let tracing = crate::model::trace_target().is_some();
    let mut conns: HashMap<u16, Conn> = HashMap::new();
    let mut sent: Vec<Sent> = Vec::new();
    let mut by_ticket: HashMap<Ticket, usize> = HashMap::new();
    let mut next_send_at = now;
    // Topics `send` was called with so far (accepted or not), for refusal reports.
    let mut topic_tried = vec![false; topic_names.len()];
    let mut outcomes = 0usize;
    let mut partial_writes = 0u64;
    let start = now;
    let deadline = now + 3_600_000;
    let mut steps = 0u64;

    loop {
        steps += 1;
        assert!(
            steps < 2_000_000,
            "seed {seed}: no progress after {steps} steps ({outcomes} outcomes for {} of {} \
             records sent)",
            sent.len(),
            cfg.records
        );
        assert!(
            now < deadline,
            "seed {seed}: simulation ran past one virtual hour ({outcomes} outcomes for {} of \
             {} records sent)",
            sent.len(),
            cfg.records
        );

        // Outputs, drained after every input by the core's drain step.
        p.drain(
            now,
            &mut Net {
                seed,
                now,
                rng: &mut rng,
                buffer_rng: &mut buffer_rng,
                cluster: &cluster,
                topic_names: &topic_names,
                conns: &mut conns,
                sent: &mut sent,
                by_ticket: &by_ticket,
                outcomes: &mut outcomes,
                partial_writes: &mut partial_writes,
            },
        );

        // The workload: records with keys, without keys, and with explicit partitions.
        if sent.len() < cfg.records && now >= next_send_at {
            let i = sent.len();
            let topic = match cfg.topic_choice {
                TopicChoice::Stride => (i * 7 + rng.below(2) as usize) % topic_names.len(),
                TopicChoice::Uniform => rng.below(topic_names.len() as u64) as usize,
            };
            let value = record_value(i, &mut rng);
            let key_bytes = format!("key-{}", rng.below(50)).into_bytes();
            let kind = rng.below(3);
            let headers = [Header {
                key: "i",
                value: Some(&value[4..12]),
            }];
            let record = ProducerRecord {
                topic: topic_names[topic],
                partition: if kind == 2 {
                    Some(rng.below(shape.topics[topic].partitions as u64) as i32)
                } else {
                    None
                },
                key: if kind == 0 { Some(&key_bytes) } else { None },
                value: Some(&value),
                headers: &headers,
                timestamp: 1_700_000_000_000 + i as i64,
            };
            topic_tried[topic] = true;
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
                        completed: None,
                    });
                    next_send_at = now + rng.below(3);
                }
                Err(SendError::BufferFull | SendError::MetadataNotReady) => {
                    next_send_at = now + 1 + rng.below(10)
                }
                // Any other refusal (a full table (`TableFull`), an invalid record)
                // is a defect to report, not a record to drop.
                Err(e) => panic!(
                    "seed {seed}: send of record {i} to {} refused: {e} ({e:?}), after sends \
                     to {} distinct topics; only BufferFull and MetadataNotReady may be retried",
                    topic_names[topic],
                    topic_tried.iter().filter(|t| **t).count()
                ),
            }
            continue;
        }
        if sent.len() == cfg.records && outcomes == sent.len() {
            break;
        }
        if sent.len() == cfg.records && !p.is_closed() && rng.below(2) == 0 {
            p.flush(now);
        }

        // The next instant anything happens (now, if `send` or `flush` left an output).
        let mut next = p.poll_timeout().unwrap_or(u64::MAX);
        if p.has_output() {
            next = now;
        }
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
                c.in_send_buffer -= bytes.len();
                if c.blocked {
                    // The send buffer has room again.
                    c.blocked = false;
                    p.handle_writable(now, conn);
                }
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
                    if tracing {
                        eprintln!("sim trace: t {now} conn {id} frame");
                    }
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
            if cut && tracing {
                eprintln!("sim trace: t {now} conn {id} cut");
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
    // With idempotence, outcomes of a partition come in send order (Java completes callbacks
    // and futures so), whatever the retries, splits, expiries and failures on the way.
    // Without it, several requests in flight may land, and complete, out of order.
    let mut last_completed: HashMap<(usize, i32), (usize, usize)> = HashMap::new();
    for (i, s) in sent.iter().enumerate().filter(|_| idempotent) {
        if let Some((partition, place)) = s.completed
            && let Some((j, before)) = last_completed.insert((s.topic, partition), (i, place))
        {
            assert!(
                place > before,
                "seed {seed}: record {i}'s outcome came before record {j}'s, sent earlier \
                 to the same partition {}-{partition} ({:?} before {:?})",
                topic_names[s.topic],
                s.outcome,
                sent[j].outcome
            );
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
                        &cluster.topics[topic_names[s.topic]].partitions[*partition as usize];
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
    for s in &sent {
        *report
            .accepted_by_topic
            .entry(topic_names[s.topic].to_string())
            .or_default() += 1;
    }
    report.stats = cluster.stats.clone();
    report.produce_requests = cluster.produce_requests.clone();
    report.partial_writes = partial_writes;
    report.partition_in_flight_max = p.metrics().partition_batches_in_flight_max;
    report
}
