//! [`Partitioner`]: a custom choice of partition for records without an explicit one.

use std::num::NonZeroU32;

use kafka_edge_core::{PartitionError, PartitionSet, Partitioner as CorePartitioner};

/// What a [`Partitioner`] knows of a record's topic when it chooses: Java's `Cluster`
/// narrowed to that topic (`partitionCountForTopic` and `availablePartitionsForTopic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicPartitions<'a> {
    count: NonZeroU32,
    available: &'a [i32],
}

impl<'a> TopicPartitions<'a> {
    /// `count` partitions (at least one), of which those in `available` have a leader.
    pub const fn new(count: NonZeroU32, available: &'a [i32]) -> Self {
        Self { count, available }
    }

    /// The topic's partition count: a partitioner answers a partition in `0..count`.
    pub const fn count(&self) -> u32 {
        self.count.get()
    }

    /// The partitions that have a leader now, in ascending order (empty while no leader is
    /// known: Java's `availablePartitionsForTopic`).
    pub const fn available(&self) -> &'a [i32] {
        self.available
    }

    /// Java's default for a keyed record, `toPositive(murmur2(key)) % count`: what a
    /// custom partitioner falls back to for the records it does not place itself.
    pub fn partition_for_key(&self, key: &[u8]) -> i32 {
        kafka_edge_core::partition_for_key(key, self.count)
    }
}

/// Chooses the partition of records sent without one (Java's `Partitioner`, set with
/// `partitioner.class`), in place of Java's default (murmur2 of the key, or the uniform
/// sticky partitioner for keyless records). Give it to
/// [`ProducerBuilder::partitioner`](crate::ProducerBuilder::partitioner).
///
/// It sees the topic's name, the record's key and value bytes and the topic's partitions
/// (Java's `partition(topic, key, keyBytes, value, valueBytes, cluster)`). It is called on
/// the thread that sends, under the producer's lock: it must be quick and must not send.
/// An answer outside `0..count` fails the send with
/// [`SendError::InvalidPartition`](crate::SendError::InvalidPartition).
///
/// A closure with the same arguments is a partitioner:
///
/// ```
/// use kafka_edge_std::{Producer, TopicPartitions};
///
/// // Records whose key starts with "vip-" go to partition 0, the others as Java would.
/// let builder = Producer::builder().partitioner(
///     |_topic: &str, key: Option<&[u8]>, _value: Option<&[u8]>, p: TopicPartitions<'_>| match key {
///         Some(k) if k.starts_with(b"vip-") => 0,
///         Some(k) => p.partition_for_key(k),
///         None => p.available().first().copied().unwrap_or(0),
///     },
/// );
/// # drop(builder);
/// ```
pub trait Partitioner: Send {
    /// The partition, in `0..partitions.count()`, for a record of `topic` with `key` and
    /// `value` (`None`: a null key or value).
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: TopicPartitions<'_>,
    ) -> i32;
}

impl<F> Partitioner for F
where
    F: FnMut(&str, Option<&[u8]>, Option<&[u8]>, TopicPartitions<'_>) -> i32 + Send,
{
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: TopicPartitions<'_>,
    ) -> i32 {
        self(topic, key, value, partitions)
    }
}

/// A [`Partitioner`] as the core calls it (the core checks the answer's range).
pub(crate) struct CoreAdapter(pub(crate) Box<dyn Partitioner>);

impl CorePartitioner for CoreAdapter {
    fn partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: &PartitionSet<'_>,
    ) -> Result<i32, PartitionError> {
        let count =
            NonZeroU32::new(partitions.num_partitions()).ok_or(PartitionError::NoPartitions)?;
        let partitions = TopicPartitions::new(count, partitions.available());
        Ok(self.0.partition(topic, key, value, partitions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adapter_hands_over_topic_key_value_and_partitions() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let mut adapter = CoreAdapter(Box::new(
            move |topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, p: TopicPartitions<'_>| {
                log.lock().unwrap().push((
                    topic.to_string(),
                    key.map(<[u8]>::to_vec),
                    value.map(<[u8]>::to_vec),
                    p.count(),
                    p.available().to_vec(),
                ));
                p.partition_for_key(key.unwrap_or_default())
            },
        ));
        let available = [0, 2];
        let got = adapter.partition(
            "t",
            Some(b"foobar"),
            Some(b"v"),
            &PartitionSet::new(3, &available),
        );
        // Java: Utils.toPositive(Utils.murmur2("foobar".getBytes())) % 3 (murmur2 is
        // -790332482, so 1357151166 % 3).
        assert_eq!(got, Ok(1_357_151_166 % 3));
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            &[(
                "t".to_string(),
                Some(b"foobar".to_vec()),
                Some(b"v".to_vec()),
                3,
                vec![0, 2]
            )]
        );
        assert_eq!(
            adapter.partition("t", None, None, &PartitionSet::new(0, &[])),
            Err(PartitionError::NoPartitions)
        );
    }
}
