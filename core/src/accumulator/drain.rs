//! Draining: the batches of one request for a broker, each closed on the way (header and
//! CRC written; compressed first when a codec is configured). See
//! [`RecordAccumulator::drain`] and [`RecordAccumulator::drain_into`].

use crate::pool::{BufferPool, Slot, SlotId};
use crate::record::{
    BatchMeta, Compressor, NoCompression, RECORD_BATCH_OVERHEAD, WriteError, set_producer_state,
};
use crate::storage::Table;
use crate::topic::{NodeId, TopicPartition};

use super::batch::{
    BatchEntry, BatchId, BatchState, ProducerBatch, ProducerState, batch_at_mut, ix, ratio_ppm,
};
use super::queue::PartitionQueue;
use super::queue::share_topic_ratio;
use super::{AccumulatorConfig, RecordAccumulator, compresses};

/// Closes `batch` compressed: compresses its records into `scratch`, copies them back and
/// writes the header. `Err` leaves the records intact, with the compressed size when that
/// was what did not fit.
fn close_compressed<S, P, C>(
    pool: &mut BufferPool<S, P>,
    scratch: SlotId,
    config: &AccumulatorConfig,
    batch: &ProducerBatch,
    meta: &BatchMeta,
    compressor: &mut C,
) -> Result<usize, Option<usize>>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    P: Table<Slot>,
    C: Compressor + ?Sized,
{
    let (buf, out) = pool.buffers_mut(batch.slot, scratch).map_err(|_| None)?;
    let buf = buf.get_mut(..batch.capacity).ok_or(None)?;
    batch
        .builder
        .close_compressed(
            buf,
            meta,
            compressor,
            config.compression,
            config.compression_level,
            out,
        )
        .map_err(|e| match e {
            WriteError::DoesNotFit { needed, .. } => Some(needed),
            _ => None,
        })
}

impl<S: AsRef<[u8]> + AsMut<[u8]>, P: Table<Slot>, B: Table<BatchEntry>, Q: Table<PartitionQueue>>
    RecordAccumulator<S, P, B, Q>
{
    /// Takes batches for broker `node` at `now_ms`: at most one per partition led by `node`
    /// (per `leader_of`), skipping muted partitions, batches backing off and (with
    /// idempotence) partitions whose order makes them wait (see
    /// [`set_idempotent`](Self::set_idempotent)), until `max_request_size` bytes (the first
    /// batch always goes, whatever its size) or until `out` is full. Each batch is closed
    /// (header and CRC written; `meta_for` gives the producer id, epoch and base sequence
    /// of a batch closed for the first time), marked in flight, and its id written to
    /// `out`. Returns how many ids were written.
    ///
    /// With idempotence, `meta_for` is also asked about a retry, which then carries a
    /// sequence ([`ProducerBatch::producer_state`]): when it answers another producer
    /// state (an epoch bump since), the batch is re-stamped.
    ///
    /// Partitions are visited round-robin across calls so that none starves.
    pub fn drain<F, M>(
        &mut self,
        now_ms: u64,
        node: NodeId,
        max_request_size: usize,
        leader_of: F,
        meta_for: M,
        out: &mut [BatchId],
    ) -> usize
    where
        F: FnMut(TopicPartition) -> Option<NodeId>,
        M: FnMut(&ProducerBatch) -> BatchMeta,
    {
        if out.is_empty() {
            return 0;
        }
        let mut slots = out.iter_mut();
        self.drain_into(
            now_ms,
            node,
            max_request_size,
            leader_of,
            meta_for,
            &mut NoCompression,
            |id| {
                if let Some(slot) = slots.next() {
                    *slot = id;
                }
                slots.len() > 0
            },
        )
    }

    /// [`drain`](Self::drain) into a sink, closing batches with `compressor` when the
    /// configuration names a codec: `out` takes each batch id and says whether it takes
    /// more (a request of unbounded batch count writes them straight into its pieces).
    ///
    /// A batch is compressed into the scratch slot and copied back over its records; when
    /// the compressor fails or the output does not fit back into the batch's slot, the
    /// batch is closed uncompressed ([`compression_fallbacks`](Self::compression_fallbacks)
    /// counts them). [`drain`](Self::drain) closes every batch uncompressed.
    #[allow(clippy::too_many_arguments)]
    pub fn drain_into<F, M, C, O>(
        &mut self,
        now_ms: u64,
        node: NodeId,
        max_request_size: usize,
        mut leader_of: F,
        mut meta_for: M,
        compressor: &mut C,
        mut out: O,
    ) -> usize
    where
        F: FnMut(TopicPartition) -> Option<NodeId>,
        M: FnMut(&ProducerBatch) -> BatchMeta,
        C: Compressor + ?Sized,
        O: FnMut(BatchId) -> bool,
    {
        let n = self.queues.len();
        if n == 0 {
            return 0;
        }
        let start = self.drain_index % n;
        let mut next_start = (start + 1) % n;
        let mut size = 0usize;
        let mut count = 0usize;
        let (retry_backoff_ms, retry_backoff_max_ms) =
            (self.config.retry_backoff_ms, self.retry_backoff_max_ms);
        for step in 0..n {
            let qi = (start + step) % n;
            let Self {
                pool,
                entries,
                queues,
                config,
                scratch,
                compression_fallbacks,
                idempotent,
                sequence_window,
                partition_in_flight_max,
                ..
            } = self;
            let Some(queue) = queues.get_mut(qi) else {
                continue;
            };
            if queue.muted || queue.held || leader_of(queue.tp) != Some(node) {
                continue;
            }
            let Some(head) = queue.head else { continue };
            let Some(batch) = batch_at_mut(entries, head) else {
                continue;
            };
            // Java's `shouldStopDrainBatchesForPartition` (see `set_idempotent`).
            if *idempotent && queue.sequence_must_wait(batch, node) {
                continue;
            }
            if *idempotent && batch.producer_state.is_none() {
                // A new batch: stamped batches come before it in the queue, so with none
                // in a request none is without an outcome.
                if queue.in_flight == 0 {
                    queue.resync_window();
                }
                if queue.window_full(*sequence_window) {
                    continue;
                }
            }
            if batch.backing_off(
                now_ms,
                batch.retry_backoff(retry_backoff_ms, retry_backoff_max_ms),
                node,
            ) {
                continue;
            }
            let batch_size = batch.size_in_bytes();
            if count > 0 && size.saturating_add(batch_size) > max_request_size {
                next_start = qi;
                break;
            }
            let mut learnt = false;
            let resend = batch.producer_state.is_some();
            if matches!(batch.state, BatchState::Open | BatchState::Full) {
                let meta = meta_for(batch);
                let mut closed = None;
                if compresses(config) {
                    let compressed = match *scratch {
                        Some(scratch) => {
                            close_compressed(pool, scratch, config, batch, &meta, compressor)
                        }
                        None => Err(None),
                    };
                    match compressed {
                        Ok(len) => {
                            // Java's ratio: compressed over uncompressed records, no header.
                            let compressed = len.saturating_sub(RECORD_BATCH_OVERHEAD);
                            queue.ratio.update(compressed, batch.builder.records_size());
                            learnt = true;
                            batch.compression_ppm =
                                ratio_ppm(compressed, batch.builder.records_size());
                            closed = Some(Ok(len));
                        }
                        Err(needed) => {
                            // Learn from a batch that did not compress (its compressed size
                            // when known, else its uncompressed size).
                            let records = batch.builder.records_size();
                            queue.ratio.update(needed.unwrap_or(records), records);
                            learnt = true;
                            *compression_fallbacks += 1;
                        }
                    }
                }
                let closed = closed.or_else(|| {
                    pool.buffer_mut(batch.slot)
                        .ok()
                        .and_then(|b| b.get_mut(..batch.capacity))
                        .map(|buf| batch.builder.close(buf, &meta))
                });
                match closed {
                    Some(Ok(len)) => {
                        batch.closed_len = len;
                        // A batch that grew gives back the slots its bytes do not use.
                        if batch.capacity > batch.ready_at
                            && let Ok(slot) = pool.shrink(batch.slot, len)
                        {
                            batch.slot = slot;
                            batch.capacity = len;
                        }
                    }
                    // Cannot happen (a batch always holds a record and fits its slot);
                    // leave it queued rather than send bytes that are not a batch.
                    _ => continue,
                }
                batch.producer_state = producer_state(&meta);
                if batch.producer_state.is_some() {
                    batch.stamp = Some(queue.take_stamp());
                }
            } else if *idempotent {
                // A retry: stamped again when its producer state changed (an epoch bump).
                let meta = meta_for(batch);
                let wanted = producer_state(&meta);
                if wanted != batch.producer_state
                    && let Some(w) = wanted
                {
                    let restamped = pool
                        .buffer_mut(batch.slot)
                        .ok()
                        .and_then(|b| b.get_mut(..batch.closed_len))
                        .is_some_and(|buf| {
                            set_producer_state(
                                buf,
                                w.producer_id,
                                w.producer_epoch,
                                w.base_sequence,
                            )
                            .is_ok()
                        });
                    if !restamped {
                        continue;
                    }
                    batch.producer_state = wanted;
                    batch.stamp = Some(queue.take_stamp());
                }
            }
            batch.state = BatchState::InFlight;
            batch.sent_to = node;
            batch.in_request = true;
            batch.resend = resend;
            queue.in_flight = queue.in_flight.saturating_add(1);
            queue.in_flight_node = node;
            queue.resend_in_flight |= resend;
            *partition_in_flight_max = (*partition_in_flight_max).max(queue.in_flight);
            size = size.saturating_add(batch.closed_len);
            queue.pop_front(entries);
            if learnt {
                share_topic_ratio(queues, qi);
            }
            let generation = entries.get(ix(head)).map_or(0, |e| e.generation);
            let more = out(BatchId {
                index: head,
                generation,
            });
            count += 1;
            if !more {
                next_start = (qi + 1) % n;
                break;
            }
        }
        self.drain_index = next_start;
        count
    }
}

/// The sequence `meta` stamps, if it has one.
const fn producer_state(meta: &BatchMeta) -> Option<ProducerState> {
    if meta.base_sequence < 0 || meta.producer_id < 0 {
        None
    } else {
        Some(ProducerState {
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            base_sequence: meta.base_sequence,
        })
    }
}

#[cfg(all(test, feature = "compression"))]
mod tests {
    extern crate std;
    use super::super::testing::{leader, meta, rec, tp};
    use super::super::*;
    use super::*;
    use crate::record::{CodecError, RecordBatchHeader, RecordBatchReader, crc32c};
    use crate::topic::TopicId;
    use std::vec::Vec;

    /// A test codec with a 4:1 ratio: a marker byte, then every fourth input byte.
    struct Quarter;
    impl Compressor for Quarter {
        fn supports(&self, _: CompressionType) -> bool {
            true
        }
        fn compress(
            &mut self,
            codec: CompressionType,
            level: i32,
            input: &[u8],
            output: &mut [u8],
        ) -> Result<usize, CodecError> {
            assert_eq!((codec, level), (CompressionType::Lz4, 9));
            let n = 1 + input.len().div_ceil(4);
            let out = output.get_mut(..n).ok_or(CodecError::OutputTooSmall)?;
            out[0] = 0xC4;
            for (o, i) in out[1..].iter_mut().zip(input.iter().step_by(4)) {
                *o = *i;
            }
            Ok(n)
        }
    }

    /// A test codec that makes everything 10% larger (incompressible records).
    struct Expand;
    impl Compressor for Expand {
        fn supports(&self, _: CompressionType) -> bool {
            true
        }
        fn compress(
            &mut self,
            _: CompressionType,
            _: i32,
            input: &[u8],
            output: &mut [u8],
        ) -> Result<usize, CodecError> {
            let n = input.len() + input.len() / 10 + 1;
            output
                .get_mut(..n)
                .ok_or(CodecError::OutputTooSmall)?
                .fill(0xEE);
            Ok(n)
        }
    }

    const BATCH_SIZE: usize = 1024;
    const SLOT: usize = BATCH_SIZE * crate::config::COMPRESSED_SLOT_FACTOR;
    type Acc = FixedAccumulator<Vec<u8>, 8, 4, 12>;

    fn lz4_acc() -> Acc {
        let pool = BufferPool::new(std::vec![0u8; 8 * SLOT], SLOT).unwrap();
        RecordAccumulator::new(
            pool,
            AccumulatorConfig {
                max_request_size: 1 << 20,
                compression: CompressionType::Lz4,
                compression_level: 9,
                batch_size: BATCH_SIZE,
                ..AccumulatorConfig::DEFAULT
            },
        )
    }

    /// Appends 57-byte records to partition 0 until a second batch opens; drains and
    /// completes the first with `codec`, returning its record count and bytes.
    fn one_batch(a: &mut Acc, codec: &mut impl Compressor) -> (u32, Vec<u8>) {
        let value = [b'x'; 50];
        // The first record of the batch may be there already (it opened it).
        let mut appended = 0;
        loop {
            let r = a.append(0, tp(0), &rec(&value)).unwrap();
            if r.new_batch_created && (appended > 0 || a.queued_batches(tp(0)) > 1) {
                break;
            }
            appended += 1;
        }
        let mut out = [BatchId::PLACEHOLDER; 1];
        let n = a.drain_into(0, NodeId(1), 1 << 20, leader, meta, codec, |id| {
            out[0] = id;
            false
        });
        assert_eq!(n, 1);
        let bytes = a.batch_bytes(out[0]).unwrap().to_vec();
        let released = a.complete(out[0]).unwrap();
        (released.tickets.count(), bytes)
    }

    #[test]
    fn compressed_batch_header_names_codec_and_crc_covers_compressed_bytes() {
        let mut a = lz4_acc();
        assert!(a.has_compression_scratch());
        // The scratch slot is set aside for the accumulator's life.
        assert_eq!(a.pool().free_slots(), 7);
        let (records, bytes) = one_batch(&mut a, &mut Quarter);
        // At the initial ratio of 1.0 a batch holds what fits in `batch.size` (Java's
        // estimate: 61 + 16 * 57 * 1.05 = 1018.6; with a 17th record it would pass 1024).
        assert_eq!(records, 16);
        let h = RecordBatchHeader::new_checked(&bytes[..]).unwrap();
        assert_eq!(h.compression(), Ok(CompressionType::Lz4));
        assert_eq!(h.attributes() & 7, 3);
        assert_eq!(h.record_count(), 16);
        assert_eq!(bytes.len(), 61 + 1 + (16 * 57usize).div_ceil(4));
        assert_eq!(h.batch_length() as usize, bytes.len() - 12);
        assert_eq!(h.crc(), crc32c(&bytes[21..]));
        assert_eq!(bytes[61], 0xC4);
        assert_eq!(a.compression_fallbacks(), 0);
    }

    #[test]
    fn appended_bytes_are_estimated_compressed_bytes() {
        let mut a = lz4_acc();
        let value = [b'x'; 50];
        // 57 bytes at the initial ratio 1.0, times Java's 1.05.
        let first = a.append(0, tp(0), &rec(&value)).unwrap();
        let second = a.append(0, tp(0), &rec(&value)).unwrap();
        assert_eq!((first.appended_bytes, second.appended_bytes), (59, 59));
        // Learned 4:1, the same record counts for a quarter (and a bit).
        for _ in 0..300 {
            one_batch(&mut a, &mut Quarter);
        }
        let r = a.append(0, tp(0), &rec(&value)).unwrap();
        assert!(r.appended_bytes < 20, "{}", r.appended_bytes);
        // One estimate per topic, as Java keeps it: a new partition of the topic starts
        // from it, a partition of another topic at 1.0.
        let r = a.append(0, tp(1), &rec(&value)).unwrap();
        assert!(r.appended_bytes < 20, "{}", r.appended_bytes);
        let other = TopicPartition::new(TopicId::new(1, 0), 0);
        let r = a.append(0, other, &rec(&value)).unwrap();
        assert_eq!(r.appended_bytes, 59, "another topic starts at 1.0");
    }

    #[test]
    fn a_topics_partitions_share_one_ratio_estimate() {
        let mut a = lz4_acc();
        let value = [b'x'; 50];
        // Partitions 1 and 2 exist (queued, at 1.0) before partition 0 learns 4:1.
        a.append(0, tp(1), &rec(&value)).unwrap();
        a.append(0, tp(2), &rec(&value)).unwrap();
        let other = TopicPartition::new(TopicId::new(1, 0), 0);
        a.append(0, other, &rec(&value)).unwrap();
        for _ in 0..300 {
            one_batch(&mut a, &mut Quarter);
        }
        let ratio = |a: &Acc, tp| {
            a.queues
                .iter()
                .find(|q| q.tp == tp)
                .unwrap()
                .ratio
                .per_ten_thousand()
        };
        let learnt = ratio(&a, tp(0));
        assert!(learnt < 3_500, "{learnt}");
        assert_eq!(ratio(&a, tp(1)), learnt);
        assert_eq!(ratio(&a, tp(2)), learnt);
        // Its one batch (drained in turn) taught it its own, near 1.0.
        assert!(ratio(&a, other) > 9_000, "another topic keeps its own");
    }

    #[test]
    fn batches_grow_as_the_ratio_estimate_learns() {
        let mut a = lz4_acc();
        let (first, _) = one_batch(&mut a, &mut Quarter);
        let mut last = first;
        for _ in 0..400 {
            last = one_batch(&mut a, &mut Quarter).0;
        }
        // The observed ratio, (61 + 1 + 57n/4) / 57n, tends to 0.25 + 62/57n; with it the
        // estimate lets more records in (61 + 57n * ratio * 1.05 + 57 <= 1024).
        assert!(last > 2 * first, "first {first}, last {last}");
        let ratio = a.queues.first().unwrap().ratio.per_ten_thousand();
        assert!(ratio < 3_500, "ratio {ratio}");
        assert_eq!(a.compression_fallbacks(), 0);
    }

    #[test]
    fn incompressible_batch_that_does_not_fit_back_goes_uncompressed() {
        let mut a = lz4_acc();
        // A record filling (more than) its slot; 10% larger once "compressed".
        let value = std::vec![0x5Au8; SLOT - 60];
        let r = a.append(0, tp(0), &rec(&value)).unwrap();
        assert!(r.batch_is_full);
        let mut out = [BatchId::PLACEHOLDER; 1];
        let n = a.drain_into(0, NodeId(1), 1 << 20, leader, meta, &mut Expand, |id| {
            out[0] = id;
            false
        });
        assert_eq!(n, 1);
        assert_eq!(a.compression_fallbacks(), 1);
        let bytes = a.batch_bytes(out[0]).unwrap();
        let batch = RecordBatchReader::new(bytes).next().unwrap().unwrap();
        assert_eq!(batch.header().compression(), Ok(CompressionType::None));
        let first = batch.records().unwrap().next().unwrap().unwrap();
        assert_eq!(first.value, Some(&value[..]));
        // The estimate learned that this partition does not compress (at least 1.0).
        assert!(a.queues.first().unwrap().ratio.per_ten_thousand() >= 10_000);
        a.complete(out[0]).unwrap();

        // A compressed batch that still fits its slot is sent compressed.
        let (records, bytes) = one_batch(&mut a, &mut Expand);
        assert!(records >= 1);
        assert_eq!(
            RecordBatchHeader::new_checked(&bytes[..])
                .unwrap()
                .compression(),
            Ok(CompressionType::Lz4)
        );
    }

    #[test]
    fn drain_without_a_compressor_sends_uncompressed() {
        let mut a = lz4_acc();
        a.append(0, tp(0), &rec(b"v")).unwrap();
        a.begin_flush();
        let mut out = [BatchId::PLACEHOLDER; 1];
        assert_eq!(a.drain(0, NodeId(1), 1 << 20, leader, meta, &mut out), 1);
        let h = RecordBatchHeader::new_checked(a.batch_bytes(out[0]).unwrap()).unwrap();
        assert_eq!(h.compression(), Ok(CompressionType::None));
        assert_eq!(h.verify_crc(), Ok(()));
        assert_eq!(a.compression_fallbacks(), 1);
    }
}
