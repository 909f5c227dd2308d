//! Choosing a partition for a record, as the Java producer does.

use core::fmt;
use core::num::NonZeroU32;

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with seed `0x9747b28c`, as the Java client
/// computes it to place keyed records.
///
/// ```
/// assert_eq!(kafka_edge_core::murmur2(b"foobar"), -790332482);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java arrays are shorter than 2^31, so `length` fits its `int`; wrap like it would.
    let mut h = SEED ^ (data.len() as u32);
    let (blocks, tail) = data.as_chunks::<4>();
    for &block in blocks {
        let mut k = u32::from_le_bytes(block);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    // Java's `switch (length % 4)` with fall-through.
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on `MIN`).
pub const fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition of a keyed record: `to_positive(murmur2(key)) % num_partitions`, as
/// Java's `BuiltInPartitioner.partitionForKey`.
pub fn partition_for_key(key: &[u8], num_partitions: NonZeroU32) -> i32 {
    // `to_positive` is in 0..=i32::MAX, so the remainder is too.
    ((to_positive(murmur2(key)) as u32) % num_partitions.get()) as i32
}

/// Why no partition could be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PartitionError {
    /// The topic has no partitions (its metadata is not known yet).
    NoPartitions,
    /// An explicit (or custom) partition is outside `0..num_partitions`.
    InvalidPartition {
        /// The partition asked for.
        partition: i32,
        /// The topic's partition count.
        num_partitions: u32,
    },
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoPartitions => f.write_str("topic has no known partitions"),
            Self::InvalidPartition {
                partition,
                num_partitions,
            } => write!(
                f,
                "invalid partition {partition}: not in the range [0...{num_partitions})"
            ),
        }
    }
}

impl core::error::Error for PartitionError {}

/// What the partitioner knows of a topic's partitions: how many there are, and which have a
/// leader (Java's `cluster.partitionsForTopic` size and `availablePartitionsForTopic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSet<'a> {
    num_partitions: u32,
    available: &'a [i32],
}

impl<'a> PartitionSet<'a> {
    /// `num_partitions` partitions, of which those listed in `available` have a leader.
    pub const fn new(num_partitions: u32, available: &'a [i32]) -> Self {
        Self {
            num_partitions,
            available,
        }
    }

    /// The number of partitions.
    pub const fn num_partitions(&self) -> u32 {
        self.num_partitions
    }

    /// The partitions with a leader.
    pub const fn available(&self) -> &'a [i32] {
        self.available
    }

    /// Whether `partition` is in `0..num_partitions`.
    pub fn contains(&self, partition: i32) -> bool {
        u32::try_from(partition).is_ok_and(|p| p < self.num_partitions)
    }
}

/// A custom partitioner (Java's `Partitioner` plugin interface, `partitioner.class`).
///
/// The producer calls it for records without an explicit partition when it is given to
/// [`Producer::send_with`](crate::Producer::send_with), with the topic's name and its
/// partitions; its answer is checked to be in range. Every append is reported back through
/// [`on_append`](Self::on_append), which custom partitioners may ignore.
pub trait Partitioner {
    /// The partition for a record of `topic` with `key` and `value`.
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: &PartitionSet<'_>,
    ) -> Result<i32, PartitionError>;

    /// Called after a record of `appended_bytes` was appended to `partition` of `topic`.
    /// `all_batches_full` is whether the partition's last batch is now full (Java's
    /// `allBatchesFull`).
    fn on_append(
        &mut self,
        topic: &str,
        partition: i32,
        appended_bytes: usize,
        all_batches_full: bool,
    ) {
        let _ = (topic, partition, appended_bytes, all_batches_full);
    }
}

/// The partition of a record: `explicit` if given, else what `choose` says; either is
/// checked to be in range, as `KafkaProducer.partition` does.
pub fn select_partition(
    explicit: Option<i32>,
    partitions: &PartitionSet<'_>,
    choose: impl FnOnce() -> Result<i32, PartitionError>,
) -> Result<i32, PartitionError> {
    if partitions.num_partitions == 0 {
        return Err(PartitionError::NoPartitions);
    }
    let partition = match explicit {
        Some(p) => p,
        None => choose()?,
    };
    if partitions.contains(partition) {
        Ok(partition)
    } else {
        Err(PartitionError::InvalidPartition {
            partition,
            num_partitions: partitions.num_partitions,
        })
    }
}

/// xorshift64* (Vigna): tiny, seedable, good enough to spread partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct XorShift64Star(u64);

impl XorShift64Star {
    const fn new(seed: u64) -> Self {
        // The state must not be zero; mix the seed so that small seeds differ at once.
        let s = seed ^ 0x9E37_79B9_7F4A_7C15;
        Self(if s == 0 { 0x9E37_79B9_7F4A_7C15 } else { s })
    }

    fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// A value in `0..n` (`n > 0`; modulo bias is negligible for partition counts).
    fn below(&mut self, n: u32) -> u32 {
        self.next_u32() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sticky {
    partition: i32,
    produced_bytes: usize,
}

/// A topic's sticky partition for keyless records (kept with the topic's metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StickyState(Option<Sticky>);

impl StickyState {
    /// The current sticky partition, if one was picked.
    pub const fn partition(&self) -> Option<i32> {
        match self.0 {
            Some(s) => Some(s.partition),
            None => None,
        }
    }
}

/// How loaded each partition of a topic is: the batches queued for it (Java's partition
/// load statistics, which the adaptive partitioner weighs partitions by).
pub trait PartitionLoad {
    /// Batches queued for `partition` (not yet sent).
    fn queued_batches(&self, partition: i32) -> usize;

    /// Whether `partition` is left out of the adaptive choice: batches wait for it and its
    /// leader has not been able to take them for longer than
    /// `partitioner.availability.timeout.ms` (KIP-794; Java's `RecordAccumulator` leaves
    /// such partitions out of the load statistics). Never, unless implemented.
    fn is_unavailable(&self, _partition: i32) -> bool {
        false
    }
}

/// No load known: every partition weighs the same (the uniform choice).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLoad;

impl PartitionLoad for NoLoad {
    fn queued_batches(&self, _partition: i32) -> usize {
        0
    }
}

/// The built-in partitioner (Java's `BuiltInPartitioner` with `DefaultPartitioner`
/// semantics): keyed records by murmur2, keyless records uniform sticky; each topic's
/// sticky state is a [`StickyState`] kept by the caller (with the topic's metadata).
///
/// - An explicit partition on the record wins ([`select_partition`]).
/// - A keyed record goes to `to_positive(murmur2(key)) % num_partitions`, over **all**
///   partitions of the topic, available or not ([`partition_for_key`]), unless
///   `partitioner.ignore.keys` is set.
/// - A keyless record goes to the topic's current *sticky* partition (KIP-794, Java's
///   `BuiltInPartitioner`): the producer stays on one partition until at least `batch.size`
///   bytes were produced to it, then switches to another picked at random among the
///   partitions that have a leader.
///
/// The core has no source of randomness: [`BuiltInPartitioner`] takes a seed and runs a
/// small xorshift generator, so that a run replays exactly from its seed.
///
/// With [`adaptive`](Self::adaptive) (Java's `partitioner.adaptive.partitioning.enable`,
/// on by default there and in [`Producer`](crate::Producer)), the switch weighs each
/// available partition by how few batches wait for it (KIP-794): a partition whose leader
/// keeps up gets more new records than one whose queue grows. Weights are Java's, `max + 1 -
/// queued`; when every partition has a leader and all queues are equally long the choice
/// is uniform.
///
/// Differences from Java, on purpose: randomness comes from a caller's seed; in the uniform
/// choice a switch never picks the partition it leaves when another is available (Java may
/// re-pick it); the queue lengths are read at the switch, where Java reads them at its
/// sender's last `ready` pass.
///
/// With adaptive partitioning, a partition the load calls
/// [`unavailable`](PartitionLoad::is_unavailable) (Java's `partitioner.availability.timeout.ms`:
/// its batches have waited longer than that for a leader that could not take them) is left
/// out of the weighted choice, as in Java; when every available partition is left out, the
/// choice is uniform among them.
#[derive(Debug, Clone)]
pub struct BuiltInPartitioner {
    rng: XorShift64Star,
    sticky_batch_size: usize,
    ignore_keys: bool,
    adaptive: bool,
}

impl BuiltInPartitioner {
    /// A partitioner that switches sticky partitions after `batch_size` bytes
    /// (`batch.size`), places keyed records by key unless `ignore_keys`
    /// (`partitioner.ignore.keys`), and draws random partitions from `seed`.
    pub const fn new(batch_size: usize, ignore_keys: bool, seed: u64) -> Self {
        Self {
            rng: XorShift64Star::new(seed),
            sticky_batch_size: batch_size,
            ignore_keys,
            adaptive: false,
        }
    }

    /// Weighs partitions by their queues when switching (see the type's docs).
    #[must_use]
    pub const fn adaptive(mut self, adaptive: bool) -> Self {
        self.adaptive = adaptive;
        self
    }

    /// A random partition among the available ones weighted by `load` (Java's cumulative
    /// frequency table, walked twice instead of stored), or `None` where the choice is
    /// uniform: not adaptive, no partition available, or every partition available with
    /// equally long queues.
    fn weighted_partition(
        &mut self,
        partitions: &PartitionSet<'_>,
        load: &impl PartitionLoad,
    ) -> Option<i32> {
        let available = partitions.available;
        if !self.adaptive || available.is_empty() {
            return None;
        }
        let included = |p: &&i32| !load.is_unavailable(**p);
        let count = available.iter().filter(included).count();
        if count == 0 {
            return None;
        }
        let mut max = 0usize;
        let mut first = None;
        let mut all_equal = true;
        for &p in available.iter().filter(included) {
            let q = load.queued_batches(p);
            max = max.max(q);
            match first {
                None => first = Some(q),
                Some(f) if f != q => all_equal = false,
                Some(_) => {}
            }
        }
        if all_equal && count == partitions.num_partitions as usize {
            return None;
        }
        let weight = |p: i32| (max + 1).saturating_sub(load.queued_batches(p)) as u64;
        let total: u64 = available.iter().filter(included).map(|&p| weight(p)).sum();
        let total = u32::try_from(total).unwrap_or(u32::MAX).max(1);
        let mut r = u64::from(self.rng.below(total));
        for &p in available.iter().filter(included) {
            let w = weight(p);
            if r < w {
                return Some(p);
            }
            r -= w;
        }
        available.iter().filter(included).last().copied()
    }

    /// A random partition among the available ones (or all, if none is available), other
    /// than `previous` whenever another exists, or weighted by `load` when adaptive. Java's
    /// `nextPartition`.
    fn next_partition(
        &mut self,
        previous: Option<i32>,
        partitions: &PartitionSet<'_>,
        load: &impl PartitionLoad,
    ) -> i32 {
        if let Some(p) = self.weighted_partition(partitions, load) {
            return p;
        }
        let available = partitions.available;
        if !available.is_empty() {
            let len = available.len() as u32;
            let skip = previous.and_then(|p| available.iter().position(|&a| a == p));
            let index = match skip {
                Some(skip) if len > 1 => {
                    let r = self.rng.below(len - 1) as usize;
                    if r >= skip { r + 1 } else { r }
                }
                _ => self.rng.below(len) as usize,
            };
            if let Some(&p) = available.get(index) {
                return p;
            }
        }
        let n = partitions.num_partitions.max(1);
        let previous = previous
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p < n);
        let r = match previous {
            Some(skip) if n > 1 => {
                let r = self.rng.below(n - 1);
                if r >= skip { r + 1 } else { r }
            }
            _ => self.rng.below(n),
        };
        r as i32
    }
}

impl BuiltInPartitioner {
    /// The partition for a record with `key` of a topic whose sticky state is `sticky`
    /// (queues not known: a switch is uniform).
    pub fn partition(
        &mut self,
        sticky: &mut StickyState,
        key: Option<&[u8]>,
        partitions: &PartitionSet<'_>,
    ) -> Result<i32, PartitionError> {
        self.partition_with_load(sticky, key, partitions, &NoLoad)
    }

    /// [`partition`](Self::partition), a new sticky partition weighted by `load` when
    /// adaptive.
    pub fn partition_with_load(
        &mut self,
        sticky: &mut StickyState,
        key: Option<&[u8]>,
        partitions: &PartitionSet<'_>,
        load: &impl PartitionLoad,
    ) -> Result<i32, PartitionError> {
        let num_partitions =
            NonZeroU32::new(partitions.num_partitions).ok_or(PartitionError::NoPartitions)?;
        if let (Some(key), false) = (key, self.ignore_keys) {
            return Ok(partition_for_key(key, num_partitions));
        }
        match sticky.0 {
            Some(s) if partitions.contains(s.partition) => Ok(s.partition),
            _ => {
                let partition = self.next_partition(None, partitions, load);
                sticky.0 = Some(Sticky {
                    partition,
                    produced_bytes: 0,
                });
                Ok(partition)
            }
        }
    }

    /// Java's `updatePartitionInfo`: counts bytes produced to the sticky partition and
    /// switches after `batch.size` bytes if the last batch is full, or after twice that in
    /// any case (queues not known: the switch is uniform).
    pub fn on_append(
        &mut self,
        sticky: &mut StickyState,
        partition: i32,
        appended_bytes: usize,
        all_batches_full: bool,
        partitions: &PartitionSet<'_>,
    ) {
        self.on_append_with_load(
            sticky,
            partition,
            appended_bytes,
            all_batches_full,
            partitions,
            &NoLoad,
        );
    }

    /// [`on_append`](Self::on_append), the next sticky partition weighted by `load` when
    /// adaptive.
    pub fn on_append_with_load(
        &mut self,
        sticky: &mut StickyState,
        partition: i32,
        appended_bytes: usize,
        all_batches_full: bool,
        partitions: &PartitionSet<'_>,
        load: &impl PartitionLoad,
    ) {
        let batch_size = self.sticky_batch_size;
        let Some(current) = sticky.0.as_mut() else {
            return;
        };
        if current.partition != partition {
            // A keyed or explicit record: not the sticky partition's business.
            return;
        }
        current.produced_bytes = current.produced_bytes.saturating_add(appended_bytes);
        let produced = current.produced_bytes;
        if (produced >= batch_size && all_batches_full) || produced >= batch_size.saturating_mul(2)
        {
            let next = self.next_partition(Some(partition), partitions, load);
            sticky.0 = Some(Sticky {
                partition: next,
                produced_bytes: 0,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    #[test]
    fn murmur2_matches_kafka_utils_test() {
        // Apache Kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
        // (testMurmur2).
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for &(key, hash) in cases {
            assert_eq!(murmur2(key), hash, "{:?}", core::str::from_utf8(key));
        }
    }

    #[test]
    fn murmur2_every_tail_length() {
        // Computed with kafka-clients 4.4.0 `Utils.murmur2` (lengths 0..=5 cover every
        // `length % 4` branch with and without a full block, plus bytes >= 0x80).
        let cases: &[(&[u8], i32)] = &[
            (b"", 275646681),
            (b"a", -1563381124),
            (b"ab", 316155434),
            (b"abc", 479470107),
            (b"abcd", -1323649548),
            (b"abcde", 461995741),
            (&[0xff, 0x80, 0x7f], 968261134),
        ];
        for &(key, hash) in cases {
            assert_eq!(murmur2(key), hash, "{key:?}");
        }
    }

    #[test]
    fn partition_for_key_matches_java() {
        // `Utils.toPositive(Utils.murmur2(key)) % 6` from kafka-clients 4.4.0.
        let cases: &[(&[u8], i32)] = &[
            (b"", 3),
            (b"a", 4),
            (b"foobar", 0),
            (b"a-little-bit-longer-string", 5),
            (b"key-0", 1),
            (b"key-1", 0),
            (b"key-42", 3),
        ];
        for &(key, p) in cases {
            assert_eq!(partition_for_key(key, n(6)), p, "{key:?}");
        }
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
    }

    #[test]
    fn explicit_partition_wins_and_is_checked() {
        let mut p = BuiltInPartitioner::new(100, false, 1);
        let mut st = StickyState::default();
        let set = PartitionSet::new(3, &[0, 1, 2]);
        assert_eq!(
            select_partition(Some(2), &set, || p.partition(
                &mut st,
                Some(b"foobar"),
                &set
            )),
            Ok(2)
        );
        assert_eq!(
            select_partition(Some(3), &set, || p.partition(&mut st, None, &set)),
            Err(PartitionError::InvalidPartition {
                partition: 3,
                num_partitions: 3
            })
        );
        let empty = PartitionSet::new(0, &[]);
        assert_eq!(
            select_partition(None, &empty, || p.partition(&mut st, None, &empty)),
            Err(PartitionError::NoPartitions)
        );
        // A custom choice out of range is refused too.
        assert_eq!(
            select_partition(None, &set, || Ok(7)),
            Err(PartitionError::InvalidPartition {
                partition: 7,
                num_partitions: 3
            })
        );
    }

    #[test]
    fn keyed_records_use_all_partitions_unless_ignored() {
        // Partition 0 has no leader: keyed records still go there, as in Java.
        let set = PartitionSet::new(6, &[1, 2, 3, 4, 5]);
        let mut p = BuiltInPartitioner::new(100, false, 1);
        let mut st = StickyState::default();
        assert_eq!(p.partition(&mut st, Some(b"foobar"), &set), Ok(0));
        let mut p = BuiltInPartitioner::new(100, true, 1);
        let mut st = StickyState::default();
        let chosen = p.partition(&mut st, Some(b"foobar"), &set).unwrap();
        assert!(set.available().contains(&chosen));
    }

    #[test]
    fn sticky_switches_after_batch_size_to_another_available_partition() {
        let set = PartitionSet::new(4, &[0, 2, 3]);
        let mut p = BuiltInPartitioner::new(100, false, 42);
        let mut st = StickyState::default();
        let mut visits = Vec::new();
        for _ in 0..200 {
            let first = p.partition(&mut st, None, &set).unwrap();
            assert!(set.available().contains(&first));
            // 40 bytes at a time with full batches: switch on the third append.
            for i in 0..3 {
                assert_eq!(p.partition(&mut st, None, &set), Ok(first));
                p.on_append(&mut st, first, 40, true, &set);
                if i < 2 {
                    assert_eq!(st.partition(), Some(first));
                }
            }
            let next = st.partition().unwrap();
            assert_ne!(next, first, "never the same partition twice in a row");
            visits.push(next);
        }
        for q in [0, 2, 3] {
            assert!(visits.contains(&q), "partition {q} never chosen");
        }
        assert!(!visits.contains(&1));
    }

    #[test]
    fn sticky_waits_for_full_batch_up_to_twice_batch_size() {
        let set = PartitionSet::new(2, &[0, 1]);
        let mut p = BuiltInPartitioner::new(100, false, 7);
        let mut st = StickyState::default();
        let first = p.partition(&mut st, None, &set).unwrap();
        p.on_append(&mut st, first, 150, false, &set);
        assert_eq!(st.partition(), Some(first));
        p.on_append(&mut st, first, 50, false, &set);
        assert_eq!(st.partition(), Some(1 - first));
        // Appends to other partitions (keyed) do not count.
        p.on_append(&mut st, first, 1000, true, &set);
        assert_eq!(st.partition(), Some(1 - first));
    }

    #[test]
    fn no_available_partition_falls_back_to_all() {
        let set = PartitionSet::new(3, &[]);
        let mut p = BuiltInPartitioner::new(10, false, 3);
        let mut st = StickyState::default();
        let mut prev = p.partition(&mut st, None, &set).unwrap();
        for _ in 0..50 {
            p.on_append(&mut st, prev, 10, true, &set);
            let next = p.partition(&mut st, None, &set).unwrap();
            assert!((0..3).contains(&next));
            assert_ne!(next, prev);
            prev = next;
        }
        // A single partition: always it.
        let one = PartitionSet::new(1, &[0]);
        let mut p = BuiltInPartitioner::new(10, false, 3);
        let mut st = StickyState::default();
        for _ in 0..5 {
            assert_eq!(p.partition(&mut st, None, &one), Ok(0));
            p.on_append(&mut st, 0, 10, true, &one);
        }
    }

    #[test]
    fn same_seed_same_choices() {
        let set = PartitionSet::new(16, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        let run = |seed| {
            let mut p = BuiltInPartitioner::new(1, false, seed);
            let mut st = StickyState::default();
            (0..20)
                .map(|_| {
                    let q = p.partition(&mut st, None, &set).unwrap();
                    p.on_append(&mut st, q, 1, true, &set);
                    q
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    /// Queue lengths by partition.
    struct Queues(&'static [usize]);

    impl PartitionLoad for Queues {
        fn queued_batches(&self, partition: i32) -> usize {
            self.0.get(partition as usize).copied().unwrap_or(0)
        }
    }

    /// How often each partition is picked as the new sticky partition over `draws`
    /// switches with queues `load`.
    fn picks(adaptive: bool, load: &'static [usize], draws: usize) -> Vec<usize> {
        let all: Vec<i32> = (0..load.len() as i32).collect();
        let set = PartitionSet::new(load.len() as u32, &all);
        let mut p = BuiltInPartitioner::new(10, false, 99).adaptive(adaptive);
        let mut st = StickyState::default();
        let mut counts = std::vec![0; load.len()];
        for _ in 0..draws {
            let q = p
                .partition_with_load(&mut st, None, &set, &Queues(load))
                .unwrap();
            counts[q as usize] += 1;
            p.on_append_with_load(&mut st, q, 10, true, &set, &Queues(load));
        }
        counts
    }

    #[test]
    fn adaptive_switches_weigh_partitions_as_java_does() {
        // Queues of 0, 1 and 2 batches: Java's weights max + 1 - queued are 3, 2 and 1.
        let c = picks(true, &[0, 1, 2], 60_000);
        for (got, want) in c.iter().zip([30_000, 20_000, 10_000]) {
            assert!(got.abs_diff(want) < 1_000, "{c:?}");
        }
        // A partition whose leader falls behind (9 batches queued) gets 1/51 of the switches.
        let c = picks(true, &[9, 0, 0, 0, 0, 0], 51_000);
        assert!(c[0] < 2_000, "{c:?}");
        for &n in &c[1..] {
            assert!(n.abs_diff(10_000) < 1_000, "{c:?}");
        }
        // Without adaptive partitioning the same queues change nothing: uniform.
        let c = picks(false, &[9, 0, 0, 0, 0, 0], 60_000);
        for &n in &c {
            assert!(n.abs_diff(10_000) < 1_000, "{c:?}");
        }
    }

    /// Queues, some of whose partitions' leaders are past the availability timeout.
    struct Slow(&'static [usize], &'static [i32]);

    impl PartitionLoad for Slow {
        fn queued_batches(&self, partition: i32) -> usize {
            self.0[partition as usize]
        }
        fn is_unavailable(&self, partition: i32) -> bool {
            self.1.contains(&partition)
        }
    }

    #[test]
    fn partitions_past_the_availability_timeout_are_left_out() {
        let all = [0, 1, 2, 3];
        let set = PartitionSet::new(4, &all);
        let draw = |adaptive: bool, load: &Slow| {
            let mut p = BuiltInPartitioner::new(10, false, 7).adaptive(adaptive);
            let mut st = StickyState::default();
            let mut seen = [0usize; 4];
            for _ in 0..4_000 {
                let q = p.partition_with_load(&mut st, None, &set, load).unwrap();
                seen[q as usize] += 1;
                p.on_append_with_load(&mut st, q, 10, true, &set, load);
            }
            seen
        };
        // Equal queues, partition 1's leader slow: never picked, the others uniformly.
        let seen = draw(true, &Slow(&[1, 1, 1, 1], &[1]));
        assert_eq!(seen[1], 0, "{seen:?}");
        for n in [seen[0], seen[2], seen[3]] {
            assert!(n.abs_diff(1_333) < 200, "{seen:?}");
        }
        // Even when only one partition is left.
        let seen = draw(true, &Slow(&[1, 1, 1, 1], &[0, 1, 2]));
        assert_eq!(seen, [0, 0, 0, 4_000]);
        // Every partition slow: the uniform choice among all of them.
        let seen = draw(true, &Slow(&[1, 1, 1, 1], &[0, 1, 2, 3]));
        assert!(seen.iter().all(|&n| n > 500), "{seen:?}");
        // Without adaptive partitioning (as in Java) the timeout changes nothing.
        let seen = draw(false, &Slow(&[1, 1, 1, 1], &[1]));
        assert!(seen[1] > 500, "{seen:?}");
    }

    #[test]
    fn equal_queues_keep_the_uniform_choice() {
        // Every partition available, every queue as long: uniform, never the one it leaves.
        let all = [0, 1, 2, 3];
        let set = PartitionSet::new(4, &all);
        let mut p = BuiltInPartitioner::new(10, false, 5).adaptive(true);
        let mut st = StickyState::default();
        let mut prev = p
            .partition_with_load(&mut st, None, &set, &Queues(&[2, 2, 2, 2]))
            .unwrap();
        for _ in 0..1_000 {
            p.on_append_with_load(&mut st, prev, 10, true, &set, &Queues(&[2, 2, 2, 2]));
            let next = p
                .partition_with_load(&mut st, None, &set, &Queues(&[2, 2, 2, 2]))
                .unwrap();
            assert_ne!(next, prev);
            prev = next;
        }
        // Partition 3 without a leader: only 0..=2 are weighed, all equally.
        let avail = [0, 1, 2];
        let set = PartitionSet::new(4, &avail);
        let mut seen = [0usize; 4];
        for _ in 0..3_000 {
            let q = p
                .partition_with_load(&mut st, None, &set, &Queues(&[1, 1, 1, 0]))
                .unwrap();
            seen[q as usize] += 1;
            p.on_append_with_load(&mut st, q, 10, true, &set, &Queues(&[1, 1, 1, 0]));
        }
        assert_eq!(seen[3], 0, "{seen:?}");
    }
}
