//! Topic and partition identifiers.

use core::fmt;

/// A topic handle: an index into the topic table and the generation of that entry. An
/// entry is reused for another topic after its topic was dropped (`metadata.max.idle.ms`),
/// with a new generation, so a handle kept past that names no topic instead of another.
/// The core never stores topic names on the hot path; it keys everything by this handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicId {
    index: u16,
    generation: u16,
}

impl TopicId {
    /// The handle of entry `index` at `generation`.
    pub const fn new(index: u16, generation: u16) -> Self {
        Self { index, generation }
    }

    /// The handle as an index.
    pub const fn index(self) -> usize {
        self.index as usize
    }

    /// The generation of the entry it names.
    pub const fn generation(self) -> u16 {
        self.generation
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
        write!(f, "topic#{}-{}", self.topic.index, self.partition)
    }
}

/// The id of a broker (`node.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub i32);
