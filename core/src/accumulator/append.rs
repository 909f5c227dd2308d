//! Appending a record: into its partition's open batch (growing it up to `batch.max.size`
//! while it waits), or into a new batch from the pool. See [`RecordAccumulator::append`].

use crate::pool::{BufferPool, PoolError, Slot};
use crate::record::{BatchBuilder, MAX_RECORD_OVERHEAD, RECORD_BATCH_OVERHEAD, Record, WriteError};
use crate::storage::Table;
use crate::topic::{NodeId, TopicPartition};

use super::batch::{
    BatchEntry, BatchId, BatchState, ProducerBatch, Ticket, UNCOMPRESSED_PPM, batch_at_mut, ix,
};
use super::queue::PartitionQueue;
use super::{AccumulatorConfig, AppendError, AppendResult, RecordAccumulator, compresses};

/// Appends `record` to the open `batch` in its slot, within its capacity.
fn append_to<S: AsRef<[u8]> + AsMut<[u8]>, P: Table<Slot>>(
    pool: &mut BufferPool<S, P>,
    batch: &mut ProducerBatch,
    record: &Record<'_>,
    payload: usize,
) -> Result<usize, WriteError> {
    let Some(buf) = pool
        .buffer_mut(batch.slot)
        .ok()
        .and_then(|b| b.get_mut(..batch.capacity))
    else {
        return Err(WriteError::DoesNotFit {
            needed: payload,
            available: 0,
        });
    };
    batch.builder.append_with_payload(buf, record, payload)
}

/// Grows the open, uncompressed `batch` of `queue` so that a record of at most `upper`
/// bytes (batch overhead included) fits: to twice its capacity or what the record needs, at
/// most `batch.max.size` (and `max.request.size`). Only
/// - while the batch cannot be sent now: its partition has batches in requests, is muted or
///   held, or has batches queued before it (else it closes and goes, as in Java);
/// - while it is younger than a tenth of `delivery.timeout.ms`, so that a record joining it
///   keeps at least nine tenths of its delivery timeout (records share their batch's
///   creation time);
/// - while the partition's batches were never refused as too large (`no_growth`);
/// - with memory to spare: a quarter of the pool's slots (at least one), outside a run
///   reserved for a large record, stays free after it, so that growing never takes the
///   memory other partitions' new batches need.
///
/// Whether it grew.
fn grow<S: AsRef<[u8]> + AsMut<[u8]>, P: Table<Slot>>(
    pool: &mut BufferPool<S, P>,
    batch: &mut ProducerBatch,
    queue: &PartitionQueue,
    config: &AccumulatorConfig,
    now_ms: u64,
    upper: usize,
) -> bool {
    let waiting = queue.in_flight > 0 || queue.muted || queue.held || queue.len > 1;
    let young = now_ms.saturating_sub(batch.created_ms) < config.delivery_timeout_ms / 10;
    let limit = config.batch_max_size.min(config.max_request_size);
    let used = batch.builder.size_in_bytes();
    let needed = used.saturating_add(upper.saturating_sub(RECORD_BATCH_OVERHEAD));
    if !waiting
        || !young
        || queue.no_growth
        || batch.write_limit > 0
        || !config.batching
        || needed > limit
        || batch.capacity >= limit
    {
        return false;
    }
    let capacity = batch.capacity.saturating_mul(2).max(needed).min(limit);
    let extra = pool.slots_for(capacity).saturating_sub(batch.slot.count());
    if extra.saturating_add((pool.slot_count() / 4).max(1)) > pool.unreserved_free_slots() {
        return false;
    }
    match pool.grow(batch.slot, capacity, used) {
        Ok(slot) => {
            batch.slot = slot;
            batch.capacity = capacity;
            true
        }
        Err(_) => false,
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, P: Table<Slot>, B: Table<BatchEntry>, Q: Table<PartitionQueue>>
    RecordAccumulator<S, P, B, Q>
{
    /// Appends `record` to partition `tp` at instant `now_ms`.
    ///
    /// The record goes into the partition's open batch if it fits, or once that batch grew
    /// (see [`AccumulatorConfig::batch_max_size`]); otherwise that batch is closed for
    /// appends and a new one is opened with `max(batch.size, record upper bound)` bytes
    /// (several contiguous slots for a large record). The record bytes are copied
    /// once, into the pool. On error nothing changed, and the caller still owns the record.
    pub fn append(
        &mut self,
        now_ms: u64,
        tp: TopicPartition,
        record: &Record<'_>,
    ) -> Result<AppendResult, AppendError> {
        let ts = record.timestamp;
        if ts < 0 && ts != crate::record::NO_TIMESTAMP {
            return Err(AppendError::InvalidTimestamp { timestamp: ts });
        }
        // Java's `estimateSizeInBytesUpperBound`: batch overhead + the record's upper bound.
        let payload = record.payload_size().unwrap_or(usize::MAX);
        let upper = payload.saturating_add(MAX_RECORD_OVERHEAD + RECORD_BATCH_OVERHEAD);
        let max = self.config.max_request_size;
        if upper > max {
            return Err(AppendError::RecordTooLarge { size: upper, max });
        }
        let capacity = self.pool.capacity_bytes();
        if upper > capacity {
            return Err(AppendError::RecordTooLarge {
                size: upper,
                max: capacity,
            });
        }
        let q = self
            .queue_index(tp)
            .map_err(|_| AppendError::TooManyPartitions)?;
        let Self {
            pool,
            entries,
            queues,
            ..
        } = self;
        let Some(queue) = queues.get_mut(q) else {
            return Err(AppendError::TooManyPartitions);
        };

        // The last batch first.
        if let Some(tail) = queue.tail
            && let Some(batch) = batch_at_mut(entries, tail)
            && batch.state == BatchState::Open
        {
            let index = batch.builder.record_count();
            let was_full = batch.is_full();
            // A compressed batch takes a record while its estimated compressed size stays
            // within `batch.size` (Java's `hasRoomFor`), else a new batch opens below.
            let room = batch.write_limit == 0
                || batch.builder.is_empty()
                || batch
                    .builder
                    .next_record_size(record)
                    .is_ok_and(|size| batch.has_room_for(size));
            let mut appended = if room {
                append_to(pool, batch, record, payload)
            } else {
                Err(WriteError::DoesNotFit {
                    needed: upper,
                    available: 0,
                })
            };
            if room
                && matches!(appended, Err(WriteError::DoesNotFit { .. }))
                && grow(pool, batch, queue, &self.config, now_ms, upper)
            {
                appended = append_to(pool, batch, record, payload);
            }
            match appended {
                Ok(size) => {
                    // Full now, not before: a batch that grew past its first capacity
                    // reports it once, when it crosses it.
                    let full = batch.is_full() && !was_full;
                    let appended_bytes = if batch.write_limit > 0 {
                        batch.ratio.estimated_size(0, size)
                    } else {
                        size
                    };
                    let generation = entries.get(ix(tail)).map_or(0, |e| e.generation);
                    return Ok(AppendResult {
                        ticket: Ticket {
                            batch: BatchId {
                                index: tail,
                                generation,
                            },
                            index,
                        },
                        batch_is_full: queue.len > 1 || full,
                        new_batch_created: false,
                        appended_bytes,
                        all_batches_full: full,
                    });
                }
                // Does not fit: open a new batch below.
                Err(WriteError::DoesNotFit { .. }) => {}
                Err(WriteError::InvalidTimestamp { timestamp }) => {
                    return Err(AppendError::InvalidTimestamp { timestamp });
                }
                Err(_) => return Err(AppendError::RecordTooLarge { size: upper, max }),
            }
        }
        self.append_new_batch(now_ms, q, record, payload, upper)
    }

    fn append_new_batch(
        &mut self,
        now_ms: u64,
        q: usize,
        record: &Record<'_>,
        payload: usize,
        upper: usize,
    ) -> Result<AppendResult, AppendError> {
        let max = self.config.max_request_size;
        let index = self.free_index().ok_or(AppendError::TooManyBatches)?;
        let capacity = upper.max(self.pool.slot_size());
        let slot = match self.pool.allocate(capacity) {
            Ok(slot) => slot,
            Err(PoolError::TooLarge { capacity, .. }) => {
                return Err(AppendError::RecordTooLarge {
                    size: upper,
                    max: capacity,
                });
            }
            Err(_) => {
                self.pool_exhausted = true;
                return Err(AppendError::Full);
            }
        };
        let encoded = self
            .pool
            .buffer_mut(slot)
            .ok()
            .and_then(|b| b.get_mut(..capacity))
            .ok_or(AppendError::Full)
            .and_then(|buf| {
                let mut builder = BatchBuilder::start(buf)
                    .map_err(|_| AppendError::RecordTooLarge { size: upper, max })?;
                let n = builder
                    .append_with_payload(buf, record, payload)
                    .map_err(|e| match e {
                        WriteError::InvalidTimestamp { timestamp } => {
                            AppendError::InvalidTimestamp { timestamp }
                        }
                        _ => AppendError::RecordTooLarge { size: upper, max },
                    })?;
                Ok((builder, n))
            });
        let (builder, appended_bytes) = match encoded {
            Ok(v) => v,
            Err(e) => {
                let _ = self.pool.deallocate(slot);
                return Err(e);
            }
        };

        // Seal the previous last batch: it could not take this record.
        let Self {
            entries, queues, ..
        } = self;
        let Some(queue) = queues.get_mut(q) else {
            let _ = self.pool.deallocate(slot);
            return Err(AppendError::TooManyPartitions);
        };
        if let Some(prev) = queue.tail.and_then(|t| batch_at_mut(entries, t))
            && prev.state == BatchState::Open
        {
            prev.state = BatchState::Full;
        }
        let Some(entry) = entries.get_mut(ix(index)) else {
            let _ = self.pool.deallocate(slot);
            return Err(AppendError::TooManyBatches);
        };
        self.free_head = entry.next;
        let batch = ProducerBatch {
            topic_partition: queue.tp,
            slot,
            builder,
            capacity,
            ready_at: capacity,
            closed_len: 0,
            created_ms: now_ms,
            last_attempt_ms: now_ms,
            attempts: 0,
            sent_to: NodeId(-1),
            // Without batching the first record fills the batch (Java's write limit 0).
            state: if self.config.batching {
                BatchState::Open
            } else {
                BatchState::Full
            },
            seq: self.next_seq,
            origin: BatchId {
                index,
                generation: entry.generation,
            },
            origin_first: 0,
            write_limit: if compresses(&self.config) && self.config.batching {
                self.config.batch_size
            } else {
                0
            },
            ratio: queue.ratio,
            compression_ppm: UNCOMPRESSED_PPM,
            producer_state: None,
            stamp: None,
            in_request: false,
            resend: false,
        };
        let full = batch.is_full();
        let appended_bytes = if batch.write_limit > 0 {
            batch.ratio.estimated_size(0, appended_bytes)
        } else {
            appended_bytes
        };
        entry.batch = Some(batch);
        let generation = entry.generation;
        self.next_seq += 1;
        self.batch_count += 1;
        queue.push_back(entries, index);
        Ok(AppendResult {
            ticket: Ticket {
                batch: BatchId { index, generation },
                index: 0,
            },
            batch_is_full: queue.len > 1 || full,
            new_batch_created: true,
            appended_bytes,
            all_batches_full: full,
        })
    }
}
