//! Topic and partition identifiers.

use core::fmt;

/// A topic handle: a dense index (below the capacity of the structures that take it)
/// assigned by whoever tracks topic metadata. The core never stores topic names on the
/// hot path; it keys everything by this handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicId(pub u16);

impl TopicId {
    /// The handle as an index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A topic partition: a topic handle and a partition number (`INT32` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicPartition {
    /// The topic.
    pub topic: TopicId,
    /// The partition number, `0..num_partitions`.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`'s partition `partition`.
    pub const fn new(topic: TopicId, partition: i32) -> Self {
        Self { topic, partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "topic#{}-{}", self.topic.0, self.partition)
    }
}

/// The id of a broker (`node.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub i32);
