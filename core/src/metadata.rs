//! `Metadata`: what the producer knows of the cluster (Java's `Metadata` and `Cluster`).
//!
//! Brokers (node id, host, port), the topics the producer uses (name, topic id, partition
//! count, per-partition leader and leader epoch, the partitions with a leader), and when to
//! refresh: on request (a new topic, a leader error, a partition without leader), and at
//! least every `metadata.max.age.ms`.
//!
//! Capacities are the limits of its tables (see [`crate::Limits`]): topics, brokers, and
//! partitions over all topics together. A topic that does not fit is reported
//! ([`TopicStatus::TooManyPartitions`]); brokers that do not fit are counted
//! ([`Metadata::brokers_dropped`]).

use heapless::String as HString;

use crate::backoff::exponential_backoff;
use crate::config::MAX_HOST_LEN;
use crate::partitioner::{PartitionSet, StickyState};
use crate::protocol::ErrorCode;
use crate::storage::Table;
use crate::topic::{NodeId, TopicId, TopicPartition};

/// Longest legal topic name (Kafka's `Topic.MAX_NAME_LENGTH`).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Whether `name` is a legal topic name (Kafka's `Topic.validate`): 1 to 249 characters of
/// `[a-zA-Z0-9._-]`, and neither `.` nor `..`.
pub fn is_valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOPIC_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// A broker from metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// Its node id.
    pub node: NodeId,
    /// Its advertised host.
    pub host: HString<MAX_HOST_LEN>,
    /// Its advertised port.
    pub port: u16,
    /// When the sender last had batches ready for it, and when it last could send them
    /// (Java's `NodeLatencyStats`, for `partitioner.availability.timeout.ms`); kept across
    /// metadata updates while the broker stays.
    latency: NodeLatency,
}

/// Java's `RecordAccumulator.NodeLatencyStats`: the difference says how long data has
/// waited for a broker that could not take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct NodeLatency {
    ready_ms: u64,
    drain_ms: u64,
    /// The times were set (Java creates the stats with both at the first ready pass).
    known: bool,
    /// Not named by the metadata response being applied (removed at its end).
    stale: bool,
}

impl Broker {
    fn new(node: NodeId, host: HString<MAX_HOST_LEN>, port: u16) -> Self {
        Self {
            node,
            host,
            port,
            latency: NodeLatency::default(),
        }
    }
}

/// The leaders of one topic's partitions and how long each broker has not been able to take
/// the data ready for it (see [`Metadata::sticky_partitions_and_latency`]).
pub(crate) struct LeaderLatency<'a> {
    partitions: &'a [PartitionEntry],
    brokers: &'a [Broker],
}

impl LeaderLatency<'_> {
    /// How long the leader of `partition` has had data ready that it could not be sent
    /// (Java's `readyTimeMs - drainTimeMs`); 0 when unknown.
    pub(crate) fn not_ready_ms(&self, partition: i32) -> u64 {
        let Some(p) = usize::try_from(partition)
            .ok()
            .and_then(|i| self.partitions.get(i))
        else {
            return 0;
        };
        self.brokers
            .iter()
            .find(|b| b.node.0 == p.leader)
            .map_or(0, |b| b.latency.ready_ms.saturating_sub(b.latency.drain_ms))
    }
}

/// What is known of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicStatus {
    /// Not (successfully) fetched yet, or the cluster does not know it (yet).
    Pending,
    /// Partitions known.
    Known,
    /// The cluster answered an error that will not go away by waiting (invalid topic,
    /// authorization).
    Failed(ErrorCode),
    /// The topic has more partitions than the partition table has room left for.
    TooManyPartitions,
}

/// One entry of the partition table (opaque; 8 bytes): a partition's leader and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionEntry {
    leader: i32,
    leader_epoch: i32,
}

const NO_PARTITION: PartitionEntry = PartitionEntry {
    leader: -1,
    leader_epoch: -1,
};

/// One entry of the topic table (opaque; about 300 bytes): a topic's name, id, status,
/// partitions and sticky partition.
#[derive(Debug, Clone)]
pub struct TopicEntry {
    name: HString<MAX_TOPIC_NAME_LEN>,
    topic_id: [u8; 16],
    status: TopicStatus,
    /// Its partitions are `partitions[first..first + count]`; `cap` entries are reserved.
    first: u32,
    cap: u32,
    count: u32,
    /// `available[first..first + available]` lists the partitions with a leader.
    available: u32,
    /// The built-in partitioner's state for keyless records.
    pub(crate) sticky: StickyState,
    /// In use (else free for another topic).
    live: bool,
    generation: u16,
    /// When a record was last sent to the topic (`now_ms` scale).
    last_used_ms: u64,
    /// The topic's send, retry and error counters (Java's `producer-topic-metrics`).
    #[cfg(feature = "metrics")]
    metrics: TopicMetrics,
}

/// Cumulative counters of one topic (Java's `producer-topic-metrics` group, before rates):
/// kept in the topic's entry of the topic table, so they start from zero when a topic
/// dropped after `metadata.max.idle.ms` is registered again.
#[cfg(feature = "metrics")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicMetrics {
    /// Records put in Produce requests, retries included (Java's topic `record-send-total`).
    pub records_sent: u64,
    /// Batch bytes put in Produce requests, retries included (Java's topic `byte-total`).
    pub bytes_sent: u64,
    /// Batches put in Produce requests, retries included (the count behind the average
    /// compression rate).
    pub batches_sent: u64,
    /// Sum over those batches of compressed size over uncompressed size, in millionths
    /// (1,000,000 for an uncompressed batch; Java's topic `compression-rate` is this sum
    /// over `batches_sent`).
    pub compression_ratio_ppm_sum: u64,
    /// Records re-enqueued for a retry (Java's topic `record-retry-total`).
    pub records_retried: u64,
    /// Records whose batch failed (Java's topic `record-error-total`).
    pub records_failed: u64,
}

/// Why a topic could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    /// Not a legal topic name.
    InvalidTopic,
    /// The topic table is full (its limit: `limit`).
    TooManyTopics {
        /// The table's limit.
        limit: usize,
    },
}

/// The cluster view: brokers (table `B`), the topics the producer uses (table `T`, with
/// their partitions in tables `P` and `A`), their leaders, and when to refresh.
#[derive(Debug, Clone)]
pub struct Metadata<T, P, A, B> {
    brokers: B,
    topics: T,
    partitions: P,
    available: A,
    /// Brokers of the last response that did not fit in the table (or had a bad address).
    brokers_dropped: usize,
    /// The entry the last lookup by name found: a producer mostly sends to the topic it
    /// sent to last, so that lookup skips the scan.
    last_hit: core::cell::Cell<usize>,
    /// Partition entries reserved by topics (sum of `cap`).
    used: usize,
    need_update: bool,
    last_refresh_ms: Option<u64>,
    /// Failed or empty attempts since the last successful refresh (for the backoff).
    attempts: u32,
    last_attempt_ms: u64,
    /// Successful updates so far.
    updates: u64,
}

impl<T, P, A, B> Metadata<T, P, A, B>
where
    T: Table<TopicEntry>,
    P: Table<PartitionEntry>,
    A: Table<i32>,
    B: Table<Broker>,
{
    /// Knows nothing, and wants an update; holds at most `topics` topics, `partitions`
    /// partitions over all of them, and `brokers` brokers (each also capped by its table).
    pub fn new(topics: usize, partitions: usize, brokers: usize) -> Self {
        let partitions = partitions.min(u32::MAX as usize);
        Self {
            brokers: B::with_limit(brokers),
            topics: T::with_limit(topics.min(u16::MAX as usize)),
            partitions: P::with_limit(partitions),
            available: A::with_limit(partitions),
            brokers_dropped: 0,
            last_hit: core::cell::Cell::new(0),
            used: 0,
            need_update: true,
            last_refresh_ms: None,
            attempts: 0,
            last_attempt_ms: 0,
            updates: 0,
        }
    }

    // ---- topics --------------------------------------------------------------------------

    /// The entry of `id`, if it still names a registered topic.
    fn live(&self, id: TopicId) -> Option<&TopicEntry> {
        self.topics
            .get(id.index())
            .filter(|t| t.live && t.generation == id.generation())
    }

    fn live_mut(&mut self, id: TopicId) -> Option<&mut TopicEntry> {
        self.topics
            .get_mut(id.index())
            .filter(|t| t.live && t.generation == id.generation())
    }

    fn handle(i: usize, t: &TopicEntry) -> Option<TopicId> {
        Some(TopicId::new(u16::try_from(i).ok()?, t.generation))
    }

    /// The handle of topic `name`, if registered.
    pub fn topic_id(&self, name: &str) -> Option<TopicId> {
        let last = self.last_hit.get();
        if let Some(t) = self.topics.get(last)
            && t.live
            && t.name.as_str() == name
        {
            return Self::handle(last, t);
        }
        let (i, t) = self
            .topics
            .iter()
            .enumerate()
            .find(|(_, t)| t.live && t.name.as_str() == name)?;
        self.last_hit.set(i);
        Self::handle(i, t)
    }

    /// The handle of the topic with Kafka topic id `uuid`, if registered and known.
    pub fn topic_by_uuid(&self, uuid: &[u8; 16]) -> Option<TopicId> {
        if *uuid == [0; 16] {
            return None;
        }
        let (i, t) = self
            .topics
            .iter()
            .enumerate()
            .find(|(_, t)| t.live && t.topic_id == *uuid)?;
        Self::handle(i, t)
    }

    /// Registers topic `name` (if new) in a free entry of the topic table, and asks for an
    /// update so that its partitions become known.
    pub fn register(&mut self, name: &str) -> Result<TopicId, RegisterError> {
        if let Some(id) = self.topic_id(name) {
            return Ok(id);
        }
        if !is_valid_topic_name(name) {
            return Err(RegisterError::InvalidTopic);
        }
        let mut n = HString::new();
        n.push_str(name).map_err(|_| RegisterError::InvalidTopic)?;
        let limit = self.topics.limit();
        let full = RegisterError::TooManyTopics { limit };
        let fresh = |generation| TopicEntry {
            name: n.clone(),
            topic_id: [0; 16],
            status: TopicStatus::Pending,
            first: 0,
            cap: 0,
            count: 0,
            available: 0,
            sticky: StickyState::default(),
            live: true,
            generation,
            last_used_ms: 0,
            #[cfg(feature = "metrics")]
            metrics: TopicMetrics::default(),
        };
        let i = match self.topics.iter().position(|t| !t.live) {
            Some(i) => {
                let t = self.topics.get_mut(i).ok_or(full)?;
                *t = fresh(t.generation);
                i
            }
            None => {
                if self.topics.len() >= usize::from(u16::MAX) {
                    return Err(full);
                }
                self.topics.push(fresh(0)).map_err(|_| full)?;
                self.topics.len() - 1
            }
        };
        self.need_update = true;
        let t = self.topics.get(i).ok_or(full)?;
        Self::handle(i, t).ok_or(full)
    }

    /// The counters of topic `id`, to update; `None` for a stale handle.
    #[cfg(feature = "metrics")]
    pub(crate) fn topic_metrics_mut(&mut self, id: TopicId) -> Option<&mut TopicMetrics> {
        self.live_mut(id).map(|t| &mut t.metrics)
    }

    /// The registered topics with their counters, in handle order.
    #[cfg(feature = "metrics")]
    pub fn topic_metrics(&self) -> impl Iterator<Item = (&str, &TopicMetrics)> + '_ {
        self.topics
            .iter()
            .filter(|t| t.live)
            .map(|t| (t.name.as_str(), &t.metrics))
    }

    /// Records that a record was sent to `id` at `now_ms` (for `metadata.max.idle.ms`).
    pub fn touch(&mut self, id: TopicId, now_ms: u64) {
        if let Some(t) = self.live_mut(id) {
            t.last_used_ms = now_ms;
        }
    }

    /// Drops every topic no record was sent to for `idle_ms` before `now_ms` and for which
    /// `in_use` is false (nothing queued or in flight), as Java's `ProducerMetadata` drops
    /// topics after `metadata.max.idle.ms`: its entries are reused for other topics, its
    /// handle goes stale (`evicted` sees it first). Returns how many were dropped.
    pub fn evict_idle(
        &mut self,
        now_ms: u64,
        idle_ms: u64,
        mut in_use: impl FnMut(TopicId) -> bool,
        mut evicted: impl FnMut(TopicId),
    ) -> usize {
        let mut dropped = 0;
        for i in 0..self.topics.len() {
            let Some(t) = self.topics.get(i) else { break };
            if !t.live || now_ms.saturating_sub(t.last_used_ms) < idle_ms {
                continue;
            }
            let Some(id) = Self::handle(i, t) else {
                continue;
            };
            if in_use(id) {
                continue;
            }
            evicted(id);
            self.release_partitions(i);
            if let Some(t) = self.topics.get_mut(i) {
                t.live = false;
                t.generation = t.generation.wrapping_add(1);
                t.status = TopicStatus::Pending;
                t.topic_id = [0; 16];
                t.sticky = StickyState::default();
            }
            dropped += 1;
        }
        dropped
    }

    /// Gives the partition entries of topic entry `ti` back (compacting the others).
    fn release_partitions(&mut self, ti: usize) {
        let Some(t) = self.topics.get(ti) else { return };
        let (first, cap) = (t.first as usize, t.cap as usize);
        if cap > 0 {
            let end = self.used;
            if let Some(range) = self.partitions.get_mut(first..end) {
                range.copy_within(cap.., 0);
            }
            if let Some(range) = self.available.get_mut(first..end) {
                range.copy_within(cap.., 0);
            }
            for other in self.topics.iter_mut() {
                if other.first as usize > first {
                    other.first -= t_cap_u32(cap);
                }
            }
            self.used -= cap;
        }
        if let Some(t) = self.topics.get_mut(ti) {
            t.first = 0;
            t.cap = 0;
            t.count = 0;
            t.available = 0;
        }
    }

    /// Registered topics.
    pub fn topic_count(&self) -> usize {
        self.topics.iter().filter(|t| t.live).count()
    }

    /// Names of the registered topics, in handle order (the topics of a Metadata request).
    pub fn topic_names(&self) -> impl Iterator<Item = &str> + Clone + '_ {
        self.topics
            .iter()
            .filter(|t| t.live)
            .map(|t| t.name.as_str())
    }

    /// The name of topic `id`; `None` for a stale handle.
    pub fn topic_name(&self, id: TopicId) -> Option<&str> {
        self.live(id).map(|t| t.name.as_str())
    }

    /// The Kafka topic id (UUID) of `id`, if the cluster sent one (Metadata v10+).
    pub fn topic_uuid(&self, id: TopicId) -> Option<[u8; 16]> {
        self.live(id).map(|t| t.topic_id).filter(|u| *u != [0; 16])
    }

    /// What is known of topic `id`.
    pub fn topic_status(&self, id: TopicId) -> Option<TopicStatus> {
        self.live(id).map(|t| t.status)
    }

    /// The partition count of `id`, once known.
    pub fn partition_count(&self, id: TopicId) -> Option<u32> {
        self.live(id)
            .filter(|t| t.status == TopicStatus::Known)
            .map(|t| t.count)
    }

    /// The partitions of `id` for the partitioner: their count and those with a leader.
    pub fn partition_set(&self, id: TopicId) -> PartitionSet<'_> {
        match self.live(id).filter(|t| t.status == TopicStatus::Known) {
            Some(t) => {
                let start = t.first as usize;
                let avail = self
                    .available
                    .get(start..start + t.available as usize)
                    .unwrap_or_default();
                PartitionSet::new(t.count, avail)
            }
            None => PartitionSet::new(0, &[]),
        }
    }

    fn partition(&self, tp: TopicPartition) -> Option<&PartitionEntry> {
        let t = self.live(tp.topic)?;
        let p = u32::try_from(tp.partition).ok().filter(|&p| p < t.count)?;
        self.partitions.get(t.first as usize + p as usize)
    }

    /// The sticky partitioner state and partitions of topic `id`, for the built-in
    /// partitioner, with the latency of each partition's leader (for
    /// `partitioner.availability.timeout.ms`).
    pub(crate) fn sticky_partitions_and_latency(
        &mut self,
        id: TopicId,
    ) -> Option<(&mut StickyState, PartitionSet<'_>, LeaderLatency<'_>)> {
        let Self {
            topics,
            partitions,
            available,
            brokers,
            ..
        } = self;
        let t = topics
            .get_mut(id.index())
            .filter(|t| t.live && t.generation == id.generation())
            .filter(|t| t.status == TopicStatus::Known)?;
        let start = t.first as usize;
        let avail = available
            .get(start..start + t.available as usize)
            .unwrap_or_default();
        let leaders = LeaderLatency {
            partitions: partitions
                .get(start..start + t.count as usize)
                .unwrap_or_default(),
            brokers,
        };
        Some((&mut t.sticky, PartitionSet::new(t.count, avail), leaders))
    }

    /// Most partitions over all topics (the partition tables' limit).
    pub(crate) fn partition_limit(&self) -> usize {
        self.partitions.limit().min(self.available.limit())
    }

    /// Brokers of the last metadata response that did not fit in the broker table, or had a
    /// host name longer than [`MAX_HOST_LEN`] or port 0 (0 normally).
    pub const fn brokers_dropped(&self) -> usize {
        self.brokers_dropped
    }

    /// The leader of `tp`, if known.
    pub fn leader(&self, tp: TopicPartition) -> Option<NodeId> {
        self.partition(tp)
            .filter(|p| p.leader >= 0)
            .map(|p| NodeId(p.leader))
    }

    /// The leader epoch of `tp`, or -1.
    pub fn leader_epoch(&self, tp: TopicPartition) -> i32 {
        self.partition(tp).map_or(-1, |p| p.leader_epoch)
    }

    /// Forgets the leader of `tp` until the next update (after a leader error), so that
    /// nothing is sent to the old one meanwhile, and asks for an update.
    pub fn invalidate_leader(&mut self, tp: TopicPartition) {
        let Some(t) = self.live(tp.topic) else {
            return;
        };
        let Some(p) = u32::try_from(tp.partition).ok().filter(|&p| p < t.count) else {
            return;
        };
        let at = t.first as usize + p as usize;
        if let Some(info) = self.partitions.get_mut(at) {
            info.leader = -1;
        }
        self.need_update = true;
    }

    /// Applies a leader hint of a Produce response (KIP-951's `current_leader`, with the
    /// broker's address from `node_endpoints` when the metadata does not know it yet), as
    /// Java's `Metadata.updatePartitionLeadership`: only a newer leader epoch than the one
    /// known is taken, and only for a broker whose address is known. Returns whether the
    /// leader of `tp` is now the hinted one (then no metadata update is needed for it).
    pub fn update_partition_leader(
        &mut self,
        tp: TopicPartition,
        leader: i32,
        leader_epoch: i32,
        endpoint: Option<(&str, u16)>,
    ) -> bool {
        if leader < 0 || leader_epoch < 0 {
            return false;
        }
        let Some(t) = self.live(tp.topic) else {
            return false;
        };
        let Some(p) = u32::try_from(tp.partition).ok().filter(|&p| p < t.count) else {
            return false;
        };
        let at = t.first as usize + p as usize;
        match self.partitions.get(at) {
            Some(known) if known.leader_epoch < 0 || leader_epoch > known.leader_epoch => {}
            _ => return false,
        }
        if !self.brokers.iter().any(|b| b.node.0 == leader) {
            let Some((host, port)) = endpoint.filter(|&(_, port)| port != 0) else {
                return false;
            };
            let mut h = HString::new();
            if h.push_str(host).is_err() {
                return false;
            }
            if self
                .brokers
                .push(Broker::new(NodeId(leader), h, port))
                .is_err()
            {
                return false;
            }
        }
        if let Some(info) = self.partitions.get_mut(at) {
            info.leader = leader;
            info.leader_epoch = leader_epoch;
        }
        true
    }

    // ---- brokers -------------------------------------------------------------------------

    /// The known brokers.
    pub fn brokers(&self) -> &[Broker] {
        &self.brokers
    }

    /// Broker `node`, if known.
    pub fn broker(&self, node: NodeId) -> Option<&Broker> {
        self.brokers.iter().find(|b| b.node == node)
    }

    // ---- refresh -------------------------------------------------------------------------

    /// Asks for an update at the next opportunity (Java's `requestUpdate`).
    pub fn request_update(&mut self) {
        self.need_update = true;
    }

    /// Whether an update was asked for.
    pub const fn update_requested(&self) -> bool {
        self.need_update
    }

    /// Successful updates so far.
    pub const fn update_count(&self) -> u64 {
        self.updates
    }

    /// The instant at which an update is due: now if one was asked for (after the backoff
    /// of failed attempts, `backoff_ms` doubling up to `backoff_max_ms`), else when the
    /// metadata is `max_age_ms` old.
    pub fn next_update_ms(&self, max_age_ms: u64, backoff_ms: u64, backoff_max_ms: u64) -> u64 {
        let backoff_until = if self.attempts == 0 {
            0
        } else {
            self.last_attempt_ms.saturating_add(exponential_backoff(
                self.attempts,
                backoff_ms,
                backoff_max_ms,
            ))
        };
        let due = match self.last_refresh_ms {
            _ if self.need_update => 0,
            Some(t) => t.saturating_add(max_age_ms),
            None => 0,
        };
        due.max(backoff_until)
    }

    /// Asks for an update unless the last one is younger than `min_age_ms` at `now_ms`: for
    /// asking again and again while something waits (a leader that cannot be reached)
    /// without a request per loop.
    pub fn request_update_after(&mut self, now_ms: u64, min_age_ms: u64) {
        if self
            .last_refresh_ms
            .is_none_or(|t| now_ms >= t.saturating_add(min_age_ms))
        {
            self.need_update = true;
        }
    }

    /// Records that a Metadata request was sent at `now_ms`.
    pub fn attempt_started(&mut self, now_ms: u64) {
        self.last_attempt_ms = now_ms;
    }

    /// Records that an attempt failed (no response, or an unusable one): the next one waits
    /// for the backoff.
    pub fn attempt_failed(&mut self, now_ms: u64) {
        self.attempts = self.attempts.saturating_add(1);
        self.last_attempt_ms = now_ms;
        self.need_update = true;
    }

    /// Starts applying a response: replaces the broker list with `brokers` (those past the
    /// table's limit or with a host longer than [`MAX_HOST_LEN`] are dropped and counted in
    /// [`brokers_dropped`](Self::brokers_dropped)). A broker named again keeps its place
    /// and its latency (for `partitioner.availability.timeout.ms`); new ones come after.
    pub fn update_brokers<'b>(&mut self, brokers: impl Iterator<Item = (i32, &'b str, u16)>) {
        for b in self.brokers.iter_mut() {
            b.latency.stale = true;
        }
        self.brokers_dropped = 0;
        for (node, host, port) in brokers {
            let mut h = HString::new();
            if h.push_str(host).is_err() || port == 0 {
                self.brokers_dropped += 1;
                continue;
            }
            if let Some(b) = self.brokers.iter_mut().find(|b| b.node.0 == node) {
                if b.latency.stale {
                    b.latency.stale = false;
                    b.host = h;
                    b.port = port;
                }
                continue;
            }
            if self
                .brokers
                .push(Broker::new(NodeId(node), h, port))
                .is_err()
            {
                self.brokers_dropped += 1;
            }
        }
        self.brokers.retain(|b| !b.latency.stale);
    }

    /// Java's `RecordAccumulator.updateNodeLatencyStats`: broker `node` had batches ready at
    /// `now_ms`, and could take them (`can_drain`) or not.
    pub(crate) fn update_node_latency(&mut self, node: NodeId, now_ms: u64, can_drain: bool) {
        if let Some(b) = self.brokers.iter_mut().find(|b| b.node == node) {
            if !b.latency.known {
                b.latency.known = true;
                b.latency.drain_ms = now_ms;
            }
            if can_drain {
                b.latency.drain_ms = now_ms;
            }
            b.latency.ready_ms = now_ms;
        }
    }

    /// Applies one topic of a response: its error, its topic id, and its partitions as
    /// `(partition_index, leader_id, leader_epoch)`. Topics not registered are ignored.
    /// Returns the topic's handle if it was registered.
    pub fn update_topic(
        &mut self,
        name: &str,
        error: ErrorCode,
        topic_id: [u8; 16],
        partitions: impl Iterator<Item = (i32, i32, i32)> + Clone,
    ) -> Option<TopicId> {
        let id = self.topic_id(name)?;
        let ti = id.index();
        let retriable_missing = matches!(
            error,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION | ErrorCode::LEADER_NOT_AVAILABLE
        ) || error.is_retriable();
        if !error.is_none() {
            if let Some(t) = self.topics.get_mut(ti) {
                if retriable_missing {
                    // Still being created, or not there yet: keep what we had, and retry.
                    self.need_update = true;
                } else {
                    t.status = TopicStatus::Failed(error);
                }
            }
            return Some(id);
        }
        // Partition count: one past the largest index (indices are dense on a sane broker).
        let mut count: usize = 0;
        for (index, _, _) in partitions.clone() {
            if let Ok(i) = usize::try_from(index) {
                count = count.max(i.saturating_add(1));
            }
        }
        if count == 0 {
            // A topic without partitions is not usable yet.
            self.need_update = true;
            return Some(id);
        }
        if !self.reserve(ti, count) {
            if let Some(t) = self.topics.get_mut(ti) {
                t.status = TopicStatus::TooManyPartitions;
            }
            return Some(id);
        }
        let Some(t) = self.topics.get_mut(ti) else {
            return Some(id);
        };
        if topic_id != [0; 16] {
            t.topic_id = topic_id;
        }
        let first = t.first as usize;
        let old_count = t.count as usize;
        // `reserve` guarantees `count <= cap <= u32::MAX`.
        t.count = u32::try_from(count).unwrap_or(t.cap);
        t.status = TopicStatus::Known;
        let Some(slots) = self.partitions.get_mut(first..first + count) else {
            return Some(id);
        };
        for (i, slot) in slots.iter_mut().enumerate() {
            if i >= old_count {
                *slot = NO_PARTITION;
            }
        }
        let mut missing_leader = false;
        let mut seen = 0usize;
        for (index, leader, leader_epoch) in partitions {
            let Some(slot) = usize::try_from(index).ok().and_then(|i| slots.get_mut(i)) else {
                continue;
            };
            seen += 1;
            // Java's `Metadata.updateLatestMetadata`: never go back to an older leader epoch.
            if leader_epoch >= 0 && slot.leader_epoch >= 0 && leader_epoch < slot.leader_epoch {
                continue;
            }
            slot.leader = if leader >= 0 { leader } else { -1 };
            slot.leader_epoch = leader_epoch;
        }
        let mut available = 0u32;
        for (i, slot) in slots.iter().enumerate() {
            let has_leader =
                slot.leader >= 0 && self.brokers.iter().any(|b| b.node.0 == slot.leader);
            if has_leader {
                if let Some(a) = self.available.get_mut(first + available as usize) {
                    *a = i32::try_from(i).unwrap_or(0);
                }
                available += 1;
            } else {
                missing_leader = true;
            }
        }
        t.available = available;
        if missing_leader || seen < count {
            self.need_update = true;
        }
        Some(id)
    }

    /// Ends applying a response received at `now_ms`: the metadata is fresh. Any
    /// registered topic still without partitions keeps an update requested.
    pub fn update_done(&mut self, now_ms: u64) {
        self.last_refresh_ms = Some(now_ms);
        self.last_attempt_ms = now_ms;
        self.updates = self.updates.wrapping_add(1);
        let pending = self
            .topics
            .iter()
            .any(|t| t.live && t.status == TopicStatus::Pending);
        let leaderless = self
            .topics
            .iter()
            .any(|t| t.live && t.status == TopicStatus::Known && t.available < t.count);
        self.need_update = pending || leaderless;
        // Keep asking while something is missing, with the backoff (Java's retry.backoff.ms).
        self.attempts = if self.need_update {
            self.attempts.saturating_add(1)
        } else {
            0
        };
    }

    /// Makes room for `count` partitions of topic `ti`: in place if its reservation is large
    /// enough, else moved to the end of the table (compacting the others).
    fn reserve(&mut self, ti: usize, count: usize) -> bool {
        let Some(t) = self.topics.get(ti) else {
            return false;
        };
        let (first, cap) = (t.first as usize, t.cap as usize);
        if count <= cap {
            return true;
        }
        let needed = self.used - cap + count;
        if needed > self.partitions.limit().min(self.available.limit())
            || self
                .partitions
                .resize(needed.max(self.partitions.len()), NO_PARTITION)
                .is_err()
            || self
                .available
                .resize(needed.max(self.available.len()), 0)
                .is_err()
        {
            return false;
        }
        // Remove the topic's range, shifting later ranges down.
        if cap > 0 {
            let end = self.used;
            self.partitions.copy_within(first + cap..end, first);
            self.available.copy_within(first + cap..end, first);
            for other in self.topics.iter_mut() {
                if other.first as usize > first {
                    other.first -= t_cap_u32(cap);
                }
            }
            self.used -= cap;
        }
        let new_first = self.used;
        let Some(t) = self.topics.get_mut(ti) else {
            return false;
        };
        let Ok(first32) = u32::try_from(new_first) else {
            return false;
        };
        let Ok(count32) = u32::try_from(count) else {
            return false;
        };
        // Partition states start afresh at the new place (leader epochs are relearnt).
        t.first = first32;
        t.cap = count32;
        t.count = 0;
        t.available = 0;
        for slot in self
            .partitions
            .get_mut(new_first..new_first + count)
            .into_iter()
            .flatten()
        {
            *slot = NO_PARTITION;
        }
        self.used += count;
        true
    }
}

fn t_cap_u32(cap: usize) -> u32 {
    u32::try_from(cap).unwrap_or(0)
}

#[cfg(test)]
mod tests;
