//! Helpers shared by the accumulator's tests.

extern crate std;
use super::*;
pub(super) use crate::record::{BatchMeta, Record};
use crate::topic::TopicId;

pub(super) const BATCH: usize = 256;
pub(super) type Acc = FixedAccumulator<std::vec::Vec<u8>, 8, 4, 12>;

pub(super) fn acc(config: AccumulatorConfig) -> Acc {
    let pool = BufferPool::new(std::vec![0u8; 8 * BATCH], BATCH).unwrap();
    RecordAccumulator::new(pool, config)
}

pub(super) fn tp(p: i32) -> TopicPartition {
    TopicPartition::new(TopicId::new(0, 0), p)
}

pub(super) fn rec(value: &[u8]) -> Record<'_> {
    Record {
        timestamp: 1_000,
        key: None,
        value: Some(value),
        headers: &[],
    }
}

pub(super) fn leader(_: TopicPartition) -> Option<NodeId> {
    Some(NodeId(1))
}

pub(super) fn meta(_: &ProducerBatch) -> BatchMeta {
    BatchMeta::default()
}

pub(super) fn cfg() -> AccumulatorConfig {
    AccumulatorConfig {
        linger_ms: 10,
        delivery_timeout_ms: 1_000,
        retry_backoff_ms: 100,
        max_request_size: 1_000,
        batching: true,
        ..AccumulatorConfig::DEFAULT
    }
}

/// The values of the records of drained batch `id`, read back (CRC checked) from its bytes.
pub(super) fn values_of(a: &Acc, id: BatchId) -> std::vec::Vec<std::vec::Vec<u8>> {
    let bytes = a.batch_bytes(id).unwrap();
    let batch = crate::record::RecordBatchReader::new(bytes)
        .next()
        .unwrap()
        .unwrap();
    batch
        .records()
        .unwrap()
        .map(|r| r.unwrap().value.unwrap().to_vec())
        .collect()
}
