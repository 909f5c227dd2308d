//! kafka-edge-core: the heap-free, sans-IO core of a Kafka producer.
#![no_std]

mod accumulator;
mod config;
mod connection;
mod metadata;
mod partitioner;
mod pool;
mod producer;
pub mod protocol;
pub mod record;
mod sender;
mod topic;

pub use accumulator::{
    AccumulatorConfig, AccumulatorError, AppendError, AppendResult, BatchId, BatchState,
    ProducerBatch, ReadyCheck, RecordAccumulator, ReleasedBatch, Ticket, TicketRange,
};
pub use config::{
    Acks, BrokerAddress, ConfigError, MAX_BOOTSTRAP_SERVERS, MAX_CLIENT_ID_LEN, MAX_HOST_LEN,
    MAX_IN_FLIGHT_CAPACITY, ProducerConfig,
};
pub use connection::{ConnId, MAX_CONNECTIONS, MAX_REQUEST_BATCHES, REQUEST_SCRATCH_SIZE};
pub use metadata::{
    Broker, MAX_BROKERS, MAX_TOPIC_NAME_LEN, MAX_TOPICS, Metadata, RegisterError, TopicStatus,
    is_valid_topic_name,
};
pub use partitioner::{
    BuiltInPartitioner, PartitionError, PartitionSet, Partitioner, murmur2, partition_for_key,
    select_partition, to_positive,
};
pub use pool::{BufferPool, PoolError, SlotId};
pub use producer::{Producer, ProducerRecord, SendError};
pub use record::crc32c;
pub use sender::{Event, ProduceError, ProducerMetrics, Transmit};
pub use topic::{NodeId, TopicId, TopicPartition};
