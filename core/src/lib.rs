//! kafka-edge-core: the heap-free, sans-IO core of a Kafka producer.
#![no_std]

mod partitioner;
mod pool;
pub mod protocol;
pub mod record;
mod topic;

pub use partitioner::{
    BuiltInPartitioner, PartitionError, PartitionSet, Partitioner, murmur2, partition_for_key,
    select_partition, to_positive,
};
pub use pool::{BufferPool, PoolError, SlotId};
pub use record::crc32c;
pub use topic::{NodeId, TopicId, TopicPartition};
