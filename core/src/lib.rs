//! kafka-edge-core: the heap-free, sans-IO core of a Kafka producer.
#![no_std]

mod accumulator;
mod partitioner;
mod pool;
pub mod protocol;
pub mod record;
mod topic;

pub use accumulator::{
    AccumulatorConfig, AccumulatorError, AppendError, AppendResult, BatchId, BatchState,
    ProducerBatch, ReadyCheck, RecordAccumulator, ReleasedBatch, Ticket, TicketRange,
};
pub use partitioner::{
    BuiltInPartitioner, PartitionError, PartitionSet, Partitioner, murmur2, partition_for_key,
    select_partition, to_positive,
};
pub use pool::{BufferPool, PoolError, SlotId};
pub use record::crc32c;
pub use topic::{NodeId, TopicId, TopicPartition};
