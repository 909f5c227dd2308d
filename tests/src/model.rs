//! A model Kafka cluster for deterministic simulation of the core producer.
//!
//! The broker side is an independent implementation: requests are decoded and responses
//! encoded with the `kafka-protocol` crate, record batches read with its decoder (which
//! checks the CRC). Partitions keep a log and Kafka's idempotent producer state (the last
//! five batches per producer for duplicate detection, epochs, sequence checks), so that a
//! record written twice, lost or reordered shows in the log.
//!
//! The cluster's shape (brokers, topics and their partition counts, replicas and where
//! leaders sit) is a [`ClusterShape`]; its `Default` is the small cluster the seeded sweeps
//! have always used, so their seeds replay unchanged.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, InitProducerIdRequest, InitProducerIdResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, ProducerId, RequestHeader,
    ResponseHeader, TopicName,
    api_versions_response::ApiVersion,
    metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic},
    produce_response::{LeaderIdAndEpoch, PartitionProduceResponse, TopicProduceResponse},
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;

use crate::TestRng;

/// One record as a partition log holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Timestamp.
    pub timestamp: i64,
    /// Producer id of the batch.
    pub producer_id: i64,
    /// Sequence of the record.
    pub sequence: i32,
}

#[derive(Debug, Default, Clone)]
struct ProducerState {
    epoch: i16,
    last_seq: i32,
    /// (first sequence, last sequence, base offset) of the last five batches.
    recent: VecDeque<(i32, i32, i64)>,
}

/// One partition of the model.
#[derive(Debug, Clone)]
pub struct PartitionModel {
    /// Current leader, one of `replicas`.
    pub leader: i32,
    /// Broker ids holding a replica, ascending; leadership moves only among them.
    pub replicas: Vec<i32>,
    /// Current leader epoch.
    pub leader_epoch: i32,
    /// The log.
    pub log: Vec<StoredRecord>,
    producers: HashMap<i64, ProducerState>,
}

/// One topic of the model.
#[derive(Debug, Clone)]
pub struct TopicModel {
    /// Topic id.
    pub id: uuid::Uuid,
    /// Partitions.
    pub partitions: Vec<PartitionModel>,
}

/// Where partition leaders start out (they move later with [`Faults::move_leader`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeaderPlacement {
    /// Partition `p` of every topic is led by the `p mod n`-th broker: with fewer partitions
    /// per topic than brokers, the last brokers lead nothing. The historical placement.
    #[default]
    PerTopic,
    /// Partitions are numbered across all topics in creation order and the `k`-th is led by
    /// the `k mod n`-th broker, so every broker leads an equal share (Kafka's assignment
    /// spreads leaders likewise, with a rotating start broker per topic).
    Spread,
}

/// One topic of a [`ClusterShape`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicShape {
    /// Topic name.
    pub name: String,
    /// Number of partitions (at least 1).
    pub partitions: usize,
}

/// The shape of a [`ModelCluster`]: brokers, topics, replication and leader placement.
///
/// ```
/// use kafka_edge_tests::model::{ClusterShape, LeaderPlacement};
/// // 40 brokers, 200 topics of 10 partitions, 3 replicas, leaders spread over all brokers.
/// let big = ClusterShape::uniform(40, 200, 10);
/// assert_eq!(big.total_partitions(), 2_000);
/// assert_eq!(big.placement, LeaderPlacement::Spread);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterShape {
    /// Number of brokers; their ids are `1..=brokers`.
    pub brokers: i32,
    /// Topics in creation order (their topic ids follow this order).
    pub topics: Vec<TopicShape>,
    /// Replicas per partition, clamped to `1..=brokers`: the starting leader and the brokers
    /// after it in id order (wrapping). With 1 a leader never moves.
    pub replication_factor: usize,
    /// Where leaders start.
    pub placement: LeaderPlacement,
}

impl ClusterShape {
    /// `brokers` brokers and `topics` topics named `topic-0`, `topic-1`, ... of `partitions`
    /// partitions each, three replicas (fewer if there are fewer brokers), leaders
    /// [`Spread`](LeaderPlacement::Spread).
    pub fn uniform(brokers: i32, topics: usize, partitions: usize) -> Self {
        ClusterShape {
            brokers,
            topics: (0..topics)
                .map(|t| TopicShape {
                    name: format!("topic-{t}"),
                    partitions,
                })
                .collect(),
            replication_factor: 3.min(brokers.max(1) as usize),
            placement: LeaderPlacement::Spread,
        }
    }

    /// Partitions over all topics.
    pub fn total_partitions(&self) -> usize {
        self.topics.iter().map(|t| t.partitions).sum()
    }
}

impl Default for ClusterShape {
    /// The sweeps' historical cluster: 3 brokers, `topic-0` and `topic-1` of 4 partitions,
    /// every broker a replica of every partition, leaders [`PerTopic`](LeaderPlacement::PerTopic).
    fn default() -> Self {
        ClusterShape {
            placement: LeaderPlacement::PerTopic,
            ..Self::uniform(3, 2, 4)
        }
    }
}

/// Faults the model injects, each a probability in 1/1000 per request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// A Produce partition answers a retriable error (NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT)
    /// without appending.
    pub retriable_error: u32,
    /// The broker appends, but the connection drops before the response (response lost).
    pub drop_after_append: u32,
    /// The connection drops before the request is handled (request lost).
    pub drop_before: u32,
    /// The response is held back past any request timeout (the connection stays up).
    pub black_hole: u32,
    /// A partition's leadership moves to another broker after the request.
    pub move_leader: u32,
    /// The broker answers DUPLICATE_SEQUENCE_NUMBER for a duplicate instead of the
    /// original offset.
    pub duplicate_error: u32,
}

/// What the model did with one request frame.
#[derive(Debug)]
pub enum Reply {
    /// Send this response frame (size prefix included).
    Respond(Vec<u8>),
    /// No response (acks=0, or held back forever).
    Silent,
    /// Close the connection.
    Drop,
}

/// The model cluster.
#[derive(Debug)]
pub struct ModelCluster {
    /// Broker ids.
    pub brokers: Vec<i32>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicModel>,
    /// Highest Produce version advertised.
    pub produce_max_version: i16,
    /// Fault probabilities.
    pub faults: Faults,
    /// Replicas per new partition (see [`ClusterShape::replication_factor`]).
    pub replication_factor: usize,
    /// Where new partitions' leaders start.
    pub placement: LeaderPlacement,
    /// Partitions created so far over all topics (the [`LeaderPlacement::Spread`] counter).
    partitions_created: usize,
    next_producer_id: i64,
    /// Counters of what happened, for reports.
    pub stats: BTreeMap<&'static str, u64>,
    /// Produce requests handled, by broker id (to show that leaders were spread).
    pub produce_requests: BTreeMap<i32, u64>,
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

impl ModelCluster {
    /// A cluster of `shape`, its topics created.
    pub fn new(shape: &ClusterShape, produce_max_version: i16, faults: Faults) -> Self {
        assert!(shape.brokers >= 1, "a cluster needs a broker: {shape:?}");
        let mut cluster = ModelCluster {
            brokers: (1..=shape.brokers).collect(),
            topics: BTreeMap::new(),
            produce_max_version,
            faults,
            replication_factor: shape.replication_factor.clamp(1, shape.brokers as usize),
            placement: shape.placement,
            partitions_created: 0,
            next_producer_id: 1000,
            stats: BTreeMap::new(),
            produce_requests: BTreeMap::new(),
        };
        for t in &shape.topics {
            cluster.create_topic(&t.name, t.partitions);
        }
        cluster
    }

    /// Creates a topic, placing leaders and replicas as [`Self::placement`] and
    /// [`Self::replication_factor`] say.
    pub fn create_topic(&mut self, name: &str, partitions: usize) {
        let n = self.brokers.len();
        let rf = self.replication_factor.clamp(1, n);
        let id = uuid::Uuid::from_u128(
            0x1234_0000_0000_0000_0000_0000_0000_0000 + self.topics.len() as u128 + 1,
        );
        let first = match self.placement {
            LeaderPlacement::PerTopic => 0,
            LeaderPlacement::Spread => self.partitions_created,
        };
        self.partitions_created += partitions;
        let parts = (first..first + partitions)
            .map(|k| {
                let mut replicas: Vec<i32> = (0..rf).map(|r| self.brokers[(k + r) % n]).collect();
                replicas.sort_unstable();
                PartitionModel {
                    leader: self.brokers[k % n],
                    replicas,
                    leader_epoch: 0,
                    log: Vec::new(),
                    producers: HashMap::new(),
                }
            })
            .collect();
        self.topics.insert(
            name.to_string(),
            TopicModel {
                id,
                partitions: parts,
            },
        );
    }

    /// `host:port` of broker `id`, as Metadata advertises it.
    pub fn address(id: i32) -> (String, u16) {
        (format!("broker-{id}"), 9092)
    }

    fn stat(&mut self, what: &'static str) {
        *self.stats.entry(what).or_default() += 1;
    }

    /// Moves the leadership of a random partition to another of its replicas.
    pub fn move_random_leader(&mut self, rng: &mut TestRng) {
        let n = self.brokers.len();
        if n < 2 || self.topics.is_empty() {
            return;
        }
        let t = rng.below(self.topics.len() as u64) as usize;
        if let Some(topic) = self.topics.values_mut().nth(t) {
            let p = rng.below(topic.partitions.len() as u64) as usize;
            let part = &mut topic.partitions[p];
            let others: Vec<i32> = part
                .replicas
                .iter()
                .copied()
                .filter(|b| *b != part.leader)
                .collect();
            if others.is_empty() {
                return;
            }
            part.leader = others[rng.below(others.len() as u64) as usize];
            part.leader_epoch += 1;
        }
        self.stat("leader_moves");
    }

    /// Handles one request frame (without its size prefix) arriving at broker `node`.
    pub fn handle(&mut self, node: i32, frame: &[u8], rng: &mut TestRng) -> Reply {
        let mut buf = Bytes::copy_from_slice(frame);
        let peek = (
            i16::from_be_bytes([frame[0], frame[1]]),
            i16::from_be_bytes([frame[2], frame[3]]),
        );
        let Ok(api) = ApiKey::try_from(peek.0) else {
            return Reply::Drop;
        };
        let header_version = api.request_header_version(peek.1);
        let header = match RequestHeader::decode(&mut buf, header_version) {
            Ok(h) => h,
            Err(_) => return Reply::Drop,
        };
        let version = header.request_api_version;
        let correlation_id = header.correlation_id;
        if self.roll(rng, self.faults.drop_before) && api == ApiKey::Produce {
            self.stat("drop_before");
            return Reply::Drop;
        }
        let (body, response_header_version): (BytesMut, i16) = match api {
            ApiKey::ApiVersions => {
                let mut r = ApiVersionsResponse::default();
                for (key, max) in [
                    (ApiKey::ApiVersions, 4),
                    (ApiKey::Metadata, 12),
                    (ApiKey::Produce, self.produce_max_version),
                    (ApiKey::InitProducerId, 5),
                ] {
                    let min = if key == ApiKey::Produce { 3 } else { 0 };
                    r.api_keys.push(
                        ApiVersion::default()
                            .with_api_key(key as i16)
                            .with_min_version(min)
                            .with_max_version(max),
                    );
                }
                // ApiVersions answers with its own version if it knows it, else v0.
                let v = if version > 4 { 0 } else { version };
                if version > 4 {
                    r.error_code = 35;
                }
                (encode(&r, v), 0)
            }
            ApiKey::Metadata => {
                let Ok(req) = MetadataRequest::decode(&mut buf, version) else {
                    return Reply::Drop;
                };
                (
                    encode(&self.metadata(&req), version),
                    ApiKey::Metadata.response_header_version(version),
                )
            }
            ApiKey::InitProducerId => {
                let Ok(req) = InitProducerIdRequest::decode(&mut buf, version) else {
                    return Reply::Drop;
                };
                let mut r = InitProducerIdResponse::default();
                if req.producer_id.0 >= 0 {
                    // KIP-360 epoch bump of a known producer id.
                    r.producer_id = req.producer_id;
                    r.producer_epoch = req.producer_epoch + 1;
                    self.stat("epoch_bumps");
                } else {
                    r.producer_id = ProducerId(self.next_producer_id);
                    self.next_producer_id += 1;
                    r.producer_epoch = 0;
                }
                (
                    encode(&r, version),
                    ApiKey::InitProducerId.response_header_version(version),
                )
            }
            ApiKey::Produce => {
                let Ok(req) = ProduceRequest::decode(&mut buf, version) else {
                    return Reply::Drop;
                };
                *self.produce_requests.entry(node).or_default() += 1;
                let (resp, appended) = self.produce(node, &req, version, rng);
                if req.acks == 0 {
                    return Reply::Silent;
                }
                if appended && self.roll(rng, self.faults.drop_after_append) {
                    self.stat("drop_after_append");
                    return Reply::Drop;
                }
                if self.roll(rng, self.faults.black_hole) {
                    self.stat("black_hole");
                    return Reply::Silent;
                }
                (
                    encode(&resp, version),
                    ApiKey::Produce.response_header_version(version),
                )
            }
            _ => return Reply::Drop,
        };
        let mut out = BytesMut::new();
        let rh = ResponseHeader::default().with_correlation_id(correlation_id);
        let _ = rh.encode(&mut out, response_header_version);
        out.extend_from_slice(&body);
        let mut frame = (out.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&out);
        Reply::Respond(frame)
    }

    fn roll(&self, rng: &mut TestRng, per_mille: u32) -> bool {
        per_mille > 0 && rng.below(1000) < u64::from(per_mille)
    }

    fn metadata(&self, req: &MetadataRequest) -> MetadataResponse {
        let mut r = MetadataResponse::default();
        for &b in &self.brokers {
            let (host, port) = Self::address(b);
            r.brokers.push(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b))
                    .with_host(s(&host))
                    .with_port(i32::from(port)),
            );
        }
        r.controller_id = BrokerId(self.brokers[0]);
        r.cluster_id = Some(s("model-cluster"));
        let names: Vec<String> = match &req.topics {
            None => self.topics.keys().cloned().collect(),
            Some(ts) => ts
                .iter()
                .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                .collect(),
        };
        for name in names {
            let mut t = MetadataResponseTopic::default().with_name(Some(TopicName(s(&name))));
            match self.topics.get(&name) {
                None => t.error_code = 3,
                Some(topic) => {
                    t.topic_id = topic.id;
                    for (i, p) in topic.partitions.iter().enumerate() {
                        t.partitions.push(
                            MetadataResponsePartition::default()
                                .with_partition_index(i as i32)
                                .with_leader_id(BrokerId(p.leader))
                                .with_leader_epoch(p.leader_epoch)
                                .with_replica_nodes(
                                    p.replicas.iter().map(|b| BrokerId(*b)).collect(),
                                )
                                .with_isr_nodes(p.replicas.iter().map(|b| BrokerId(*b)).collect()),
                        );
                    }
                }
            }
            r.topics.push(t);
        }
        r
    }

    /// Appends what the request carries; returns the response and whether anything was
    /// appended.
    fn produce(
        &mut self,
        node: i32,
        req: &ProduceRequest,
        version: i16,
        rng: &mut TestRng,
    ) -> (ProduceResponse, bool) {
        let mut resp = ProduceResponse::default();
        let mut appended = false;
        let faults = self.faults;
        for td in &req.topic_data {
            let name = if version >= 13 {
                self.topics
                    .iter()
                    .find(|(_, t)| t.id == td.topic_id)
                    .map(|(n, _)| n.clone())
            } else {
                Some(td.name.0.to_string())
            };
            let mut tr = TopicProduceResponse::default()
                .with_name(td.name.clone())
                .with_topic_id(td.topic_id);
            for pd in &td.partition_data {
                let mut pr = PartitionProduceResponse::default()
                    .with_index(pd.index)
                    .with_base_offset(-1)
                    .with_log_append_time_ms(-1);
                let retriable = faults.retriable_error > 0
                    && rng.below(1000) < u64::from(faults.retriable_error);
                let dup_error = faults.duplicate_error > 0
                    && rng.below(1000) < u64::from(faults.duplicate_error);
                let part = name
                    .as_ref()
                    .and_then(|n| self.topics.get_mut(n))
                    .and_then(|t| t.partitions.get_mut(pd.index as usize));
                match part {
                    None => pr.error_code = if version >= 13 { 100 } else { 3 },
                    Some(p) if p.leader != node => {
                        pr.error_code = 6;
                        pr.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(p.leader))
                            .with_leader_epoch(p.leader_epoch);
                    }
                    Some(_) if retriable => pr.error_code = if rng.below(2) == 0 { 19 } else { 7 },
                    Some(p) => {
                        let records = pd.records.clone().unwrap_or_default();
                        let traced = trace_of(name.as_deref(), pd.index, &records);
                        let result = append(p, records, dup_error);
                        if let Some(t) = traced {
                            eprintln!("sim trace: node {node}: {t} -> {result:?}");
                        }
                        match result {
                            Ok((base, wrote)) => {
                                pr.base_offset = base;
                                appended |= wrote;
                            }
                            Err(code) => pr.error_code = code,
                        }
                    }
                }
                if pr.error_code != 0 {
                    *self.stats.entry("partition_errors").or_default() += 1;
                }
                tr.partition_responses.push(pr);
            }
            resp.responses.push(tr);
        }
        if self.roll(rng, self.faults.move_leader) {
            self.move_random_leader(rng);
        }
        (resp, appended)
    }
}

fn encode<M: Encodable>(m: &M, version: i16) -> BytesMut {
    let mut b = BytesMut::new();
    let _ = m.encode(&mut b, version);
    b
}

/// `SIM_TRACE=<topic>-<partition>`: the partition whose batches, connections and outcomes
/// the simulation prints (`sim trace:` lines on stderr), read once.
pub fn trace_target() -> Option<&'static str> {
    static TARGET: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    TARGET
        .get_or_init(|| std::env::var("SIM_TRACE").ok())
        .as_deref()
}

/// With `SIM_TRACE=<topic>-<partition>` set, a line describing a batch of that partition
/// (producer id, epoch, sequences, records), for following one partition through a seed.
fn trace_of(topic: Option<&str>, partition: i32, records: &Bytes) -> Option<String> {
    let wanted = trace_target()?;
    if format!("{}-{partition}", topic?) != wanted {
        return None;
    }
    let set = RecordBatchDecoder::decode(&mut records.clone()).ok()?;
    let first = set.records.first()?;
    let values: Vec<String> = set
        .records
        .iter()
        .filter_map(|r| {
            r.value
                .as_ref()
                .map(|v| String::from_utf8_lossy(v.get(..12).unwrap_or(v)).into_owned())
        })
        .collect();
    Some(format!(
        "pid {} epoch {} seq {}..{} values {}",
        first.producer_id,
        first.producer_epoch,
        first.sequence,
        first.sequence.wrapping_add(set.records.len() as i32 - 1),
        values.join(",")
    ))
}

/// Kafka's append with idempotent producer checks. Returns the base offset and whether
/// records were written, or an error code.
fn append(p: &mut PartitionModel, mut records: Bytes, dup_error: bool) -> Result<(i64, bool), i16> {
    let set = RecordBatchDecoder::decode(&mut records).map_err(|_| 2_i16)?; // CORRUPT_MESSAGE
    let recs = set.records;
    let Some(first) = recs.first() else {
        return Err(87);
    };
    let (pid, epoch, first_seq) = (first.producer_id, first.producer_epoch, first.sequence);
    let last_seq = first_seq.wrapping_add(recs.len() as i32 - 1);
    if pid >= 0 {
        let st = p.producers.get(&pid).cloned();
        match st {
            Some(st) if epoch < st.epoch => return Err(47), // INVALID_PRODUCER_EPOCH
            Some(st) if epoch == st.epoch => {
                if let Some(&(_, _, base)) = st
                    .recent
                    .iter()
                    .find(|(f, l, _)| *f == first_seq && *l == last_seq)
                {
                    return if dup_error {
                        Err(46)
                    } else {
                        Ok((base, false))
                    };
                }
                if first_seq != st.last_seq.wrapping_add(1) {
                    return Err(45); // OUT_OF_ORDER_SEQUENCE_NUMBER
                }
            }
            // A new epoch starts at sequence 0.
            Some(_) if first_seq != 0 => return Err(45),
            // Without state for the producer (a new one, or its state expired), Kafka
            // accepts any sequence (`ProducerAppendInfo.checkSequence`).
            _ => {}
        }
    }
    let base = p.log.len() as i64;
    for r in &recs {
        p.log.push(StoredRecord {
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            timestamp: r.timestamp,
            producer_id: r.producer_id,
            sequence: r.sequence,
        });
    }
    if pid >= 0 {
        let st = p.producers.entry(pid).or_default();
        if st.epoch != epoch {
            st.recent.clear();
        }
        st.epoch = epoch;
        st.last_seq = last_seq;
        st.recent.push_back((first_seq, last_seq, base));
        if st.recent.len() > 5 {
            st.recent.pop_front();
        }
    }
    Ok((base, true))
}
