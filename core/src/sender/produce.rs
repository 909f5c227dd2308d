//! Produce requests: the ready batches of every ready broker are drained into one request
//! per broker (stamped with their sequences under idempotence), whose framing is written
//! into the connection's scratch between the batch bytes borrowed from the pool, for a
//! vectored write without a copy.

use crate::accumulator::{BatchId, ReadyCheck};
use crate::config::Acks;
use crate::protocol::{ApiKey, ProduceRequestEncoder, RequestHeader, Uuid, Writer};
use crate::record::BatchMeta;
use crate::record::Compressor;
use crate::storage::{Storage, Table, TableFull, TableKind};
use crate::topic::{NodeId, TopicPartition};

use super::connection::{ConnBuffers, InFlight, Piece, RequestKind, Target, size_prefix};
use super::idempotence::stamp;
use super::{ExtraState, Io, Sender};

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage, C: Compressor> Sender<S, St, C> {
    /// Drains the ready batches of every ready broker into Produce requests.
    pub(super) fn send_produce(&mut self, now_ms: u64, io: &mut Io<St>) -> ReadyCheck {
        let mut nodes = core::mem::replace(&mut self.nodes, St::Nodes::with_limit(0));
        nodes.clear();
        let metadata = &self.metadata;
        let check = self.acc.ready(now_ms, |tp| metadata.leader(tp), &mut nodes);
        if check.unknown_leader {
            self.metadata.request_update();
        }
        let track_latency = self.config.partitioner_availability_timeout_ms > 0;
        for &node in nodes.iter() {
            let target = Target::Node(node);
            let max = self.config.max_in_flight_requests_per_connection;
            let conn = self.find_conn(target);
            if track_latency {
                // Java's `updateNodeLatencyStats`: whether a ready node can take its batches
                // now (for partitioner.availability.timeout.ms).
                let can_drain = conn
                    .and_then(|k| self.conns.get(k))
                    .is_some_and(|c| c.can_send(max));
                self.metadata.update_node_latency(node, now_ms, can_drain);
            }
            match conn {
                Some(k) => {
                    if self.conns.get(k).is_some_and(|c| c.can_send(max)) {
                        self.build_produce(now_ms, k, node, io);
                    }
                }
                None => {
                    if self.metadata.broker(node).is_none() {
                        self.metadata.request_update();
                    } else if self.backing_off(target, now_ms) {
                        // The leader cannot be reached (a broker gone): ask, every
                        // `retry.backoff.ms`, whether another one leads now, rather than
                        // only after the next failed reconnect (librdkafka's fast leader
                        // query).
                        self.metadata
                            .request_update_after(now_ms, self.config.retry_backoff_ms);
                    } else {
                        let _ = self.open_connection(now_ms, target);
                    }
                }
            }
        }
        self.nodes = nodes;
        check
    }

    fn build_produce(&mut self, now_ms: u64, k: usize, node: NodeId, io: &mut Io<St>) {
        let Some(mut version) = self
            .conns
            .get(k)
            .and_then(|c| c.versions)
            .map(|v| v.produce)
        else {
            return;
        };
        if self.buffers(io, k).is_none() {
            return;
        }
        let Some(buffers) = io.get_mut(k) else { return };
        let pieces = &mut buffers.pieces;
        pieces.clear();
        // The request's pieces interleave framing and batches: `2n + 1` for `n` batches.
        let max_batches = pieces.limit().saturating_sub(1) / 2;
        if max_batches == 0 {
            return;
        }
        let (pid, epoch, idempotent) = (self.producer_id, self.producer_epoch, self.idempotent);
        let transactional = self.config.is_transactional();
        let n = {
            let Self {
                acc,
                metadata,
                sequences,
                compressor,
                ..
            } = self;
            acc.drain_into(
                now_ms,
                node,
                self.config.max_request_size,
                |tp| metadata.leader(tp),
                |b| {
                    if idempotent {
                        let mut meta = stamp(sequences, b, pid, epoch);
                        meta.is_transactional = transactional;
                        meta
                    } else {
                        BatchMeta::NON_IDEMPOTENT
                    }
                },
                compressor,
                |id| pieces.push(Piece::Batch(id)).is_ok() && pieces.len() < max_batches,
            )
        };
        if n == 0 {
            return;
        }
        let correlation_id = self.next_correlation_id();
        let k16 = u16::try_from(k).unwrap_or(0);
        for i in 0..n {
            let Some(Piece::Batch(id)) = io.get(k).and_then(|b| b.pieces.get(i)).copied() else {
                continue;
            };
            if self.mutes_partitions
                && let Ok(b) = self.acc.batch(id)
            {
                let tp = b.topic_partition();
                let _ = self.acc.mute(tp);
            }
            if let Some(e) = self.extra_mut(id) {
                e.state = ExtraState::InRequest {
                    conn: k16,
                    correlation_id,
                };
            }
        }
        if self.config.is_transactional() && !self.transaction_v2() {
            // Transaction version 1 (AddPartitionsToTxn): Java stops at v11 without TV2;
            // v12+ adds the partition to the transaction on the leader (KIP-890).
            version = version.min(11);
        }
        // v13 names topics by id: fall back to v12 when an id is unknown.
        let ids = io.get(k).map(|b| &b.pieces[..]).unwrap_or_default();
        if version >= 13
            && ids.iter().any(|piece| match *piece {
                Piece::Batch(id) => self.acc.batch(id).map_or(true, |b| {
                    self.metadata
                        .topic_uuid(b.topic_partition().topic)
                        .is_none()
                }),
                Piece::Scratch { .. } => false,
            })
        {
            version = 12;
        }
        if self.write_produce(now_ms, k, version, correlation_id, n, io) {
            self.metrics.produce_requests += 1;
            self.metrics.batches_sent += n as u64;
            self.metrics.partition_batches_in_flight_max =
                self.acc.partition_in_flight_max() as u64;
            self.count_produce_request(io.get(k).map(|b| &b.pieces[..]).unwrap_or_default());
        } else {
            // The framing did not fit the scratch's limit: put the batches back untouched.
            let mut i = 0;
            while let Some((j, id)) = self.next_request_batch(i, k, correlation_id) {
                i = j + 1;
                if let Ok(b) = self.acc.batch(id) {
                    let tp = b.topic_partition();
                    self.acc.unmute(tp);
                }
                let _ = self.acc.reenqueue(now_ms, id);
                if let Some(e) = self.extra_mut(id) {
                    e.state = ExtraState::Idle;
                }
            }
            if let Some(b) = io.get_mut(k) {
                b.pieces.clear();
            }
        }
    }

    /// Writes the framing of a Produce request for the `n` batches in connection `k`'s
    /// pieces into its scratch, interleaves the pieces (framing, batch, framing, ..., batch,
    /// framing), and starts its transmit.
    fn write_produce(
        &mut self,
        now_ms: u64,
        k: usize,
        version: i16,
        correlation_id: i32,
        n: usize,
        io: &mut Io<St>,
    ) -> bool {
        let Ok(enc) = ProduceRequestEncoder::new(version) else {
            return false;
        };
        let Some(buffers) = io.get_mut(k) else {
            return false;
        };
        let acc = &self.acc;
        let key = |piece: &Piece| match *piece {
            Piece::Batch(id) => acc
                .batch(id)
                .map(|b| b.topic_partition())
                .unwrap_or_default(),
            Piece::Scratch { .. } => TopicPartition::default(),
        };
        // Batches grouped by topic, in partition order within a topic.
        let Some(batches) = buffers.pieces.get_mut(..n) else {
            return false;
        };
        batches.sort_unstable_by_key(key);
        let batch = |i: usize| -> Option<(TopicPartition, usize)> {
            match buffers.pieces.get(i).copied()? {
                Piece::Batch(id) => Some((key(&Piece::Batch(id)), acc.batch_bytes(id).ok()?.len())),
                Piece::Scratch { .. } => None,
            }
        };
        let client_id = self.config.client_id.as_str();
        let header = RequestHeader::new(ApiKey::Produce, version, correlation_id, Some(client_id));
        let mut topic_count = 0usize;
        let mut size = header.encoded_len() + enc.end_len();
        let mut batch_bytes = 0usize;
        let mut i = 0;
        while let Some((tp, _)) = batch(i) {
            let name = self.metadata.topic_name(tp.topic).unwrap_or("");
            let in_topic = (i..n)
                .take_while(|&j| batch(j).is_some_and(|(t, _)| t.topic == tp.topic))
                .count();
            size = size
                .saturating_add(enc.topic_len(name, in_topic))
                .saturating_add(enc.end_topic_len());
            for j in i..i + in_topic {
                let len = batch(j).map_or(0, |(_, len)| len);
                size = size.saturating_add(enc.partition_len(len));
                batch_bytes = batch_bytes.saturating_add(len);
            }
            topic_count += 1;
            i += in_topic;
        }
        if i != n {
            return false;
        }
        let transactional_id = self
            .config
            .is_transactional()
            .then_some(self.config.transactional_id.as_str());
        size = size.saturating_add(enc.begin_len(transactional_id, topic_count));
        if size > i32::MAX as usize {
            return false;
        }
        let total = size + 4;
        // Spread the batches to the odd places: framing goes between them.
        let Ok(()) = buffers
            .pieces
            .resize(2 * n + 1, Piece::Scratch { start: 0, end: 0 })
        else {
            return false;
        };
        for j in (0..n).rev() {
            buffers.pieces.swap(j, 2 * j + 1);
        }
        let framing = total.saturating_sub(batch_bytes);
        let ConnBuffers {
            scratch, pieces, ..
        } = buffers;
        if scratch.len() < framing && scratch.resize(framing, 0).is_err() {
            self.table_full = Some(TableFull {
                table: TableKind::RequestBytes,
                limit: self.limits.request_bytes,
            });
            pieces.clear();
            return false;
        }
        let batch_at =
            |pieces: &St::Pieces, j: usize| -> Option<(TopicPartition, BatchId, usize)> {
                match *pieces.get(2 * j + 1)? {
                    Piece::Batch(id) => {
                        let b = acc.batch(id).ok()?;
                        Some((b.topic_partition(), id, acc.batch_bytes(id).ok()?.len()))
                    }
                    Piece::Scratch { .. } => None,
                }
            };
        let mut w = Writer::new(&mut scratch[..]);
        let mut piece_start = 0usize;
        let timeout = i32::try_from(self.config.request_timeout_ms).unwrap_or(i32::MAX);
        let acks = self.config.acks.wire();
        let mut ok = size_prefix(size).is_ok_and(|p| w.write_raw(&p).is_ok())
            && header.encode(&mut w).is_ok()
            && enc
                .begin(&mut w, transactional_id, acks, timeout, topic_count)
                .is_ok();
        let mut i = 0;
        while ok && let Some((tp, _, _)) = batch_at(pieces, i) {
            let name = self.metadata.topic_name(tp.topic).unwrap_or("");
            let uuid = Uuid(self.metadata.topic_uuid(tp.topic).unwrap_or([0; 16]));
            let in_topic = (i..n)
                .take_while(|&j| batch_at(pieces, j).is_some_and(|(t, _, _)| t.topic == tp.topic))
                .count();
            ok &= enc.topic(&mut w, name, uuid, in_topic).is_ok();
            for j in i..i + in_topic {
                let Some((tp, _, len)) = batch_at(pieces, j) else {
                    ok = false;
                    break;
                };
                if j > i {
                    ok &= enc.end_partition(&mut w).is_ok();
                }
                ok &= enc
                    .partition_records_prefix(&mut w, tp.partition, len)
                    .is_ok();
                let end = w.position();
                if let Some(p) = pieces.get_mut(2 * j) {
                    *p = Piece::Scratch {
                        start: u32::try_from(piece_start).unwrap_or(0),
                        end: u32::try_from(end).unwrap_or(0),
                    };
                }
                piece_start = end;
            }
            ok &= enc.end_partition(&mut w).is_ok() && enc.end_topic(&mut w).is_ok();
            i += in_topic;
        }
        ok &= enc.end(&mut w).is_ok();
        let end = w.position();
        if let Some(p) = pieces.get_mut(2 * n) {
            *p = Piece::Scratch {
                start: u32::try_from(piece_start).unwrap_or(0),
                end: u32::try_from(end).unwrap_or(0),
            };
        }
        if !ok {
            pieces.clear();
            return false;
        }
        let Some(c) = self.conns.get_mut(k) else {
            return false;
        };
        let request = InFlight {
            correlation_id,
            kind: RequestKind::Produce,
            version,
            sent_ms: now_ms,
            expects_response: self.config.acks != Acks::None,
        };
        if !c.start_transmit(request, total) {
            pieces.clear();
            return false;
        }
        self.metrics.requests_sent += 1;
        true
    }

    /// The first batch of Produce request `correlation_id` on connection `k` at or after
    /// index `from` of the sender's batch table, with its index.
    pub(super) fn next_request_batch(
        &self,
        from: usize,
        k: usize,
        correlation_id: i32,
    ) -> Option<(usize, BatchId)> {
        let k16 = u16::try_from(k).unwrap_or(u16::MAX);
        let wanted = ExtraState::InRequest {
            conn: k16,
            correlation_id,
        };
        self.extras
            .get(from..)?
            .iter()
            .position(|e| e.state == wanted)
            .and_then(|i| Some((from + i, self.extras.get(from + i)?.id)))
    }
}
