//! `Produce` (key 0), versions 3-13 (flexible from 9; v13 names topics by id).
//!
//! Requests are written by [`ProduceRequestEncoder`], piece by piece, so that record batches
//! never pass through the encoder: it writes everything *around* the batches into a small
//! buffer and the transport sends the batch bytes straight from the pool (vectored writes).
//! [`ProduceRequest`] is the whole-message form (encode for tests, decode for the bridge).
//!
//! Version notes from `ProduceRequest.json` / `ProduceResponse.json`: v5 adds
//! `log_start_offset`; v8 `record_errors` and `error_message`; v10 the tagged
//! `current_leader` (per partition) and `node_endpoints` (top level); v11 and v12 only add
//! error codes; v13 replaces topic names with topic ids.

use super::codec::{
    Array, DecodeError, EncodeError, Message, Reader, TaggedFields, Uuid, Writer,
    empty_tagged_fields_len, len_prefix_len, nullable_string_len,
};
use super::error::ErrorCode;
use super::header::{ApiKey, FieldVersions, check_decode, check_encode};
use super::varint::unsigned_varint_len;

const API: ApiKey = ApiKey::Produce;

mod field {
    use super::FieldVersions;
    pub(super) const TOPIC_NAME: FieldVersions = FieldVersions::range(0, 12);
    pub(super) const TOPIC_ID: FieldVersions = FieldVersions::since(13);
    pub(super) const LOG_START_OFFSET: FieldVersions = FieldVersions::since(5);
    pub(super) const RECORD_ERRORS: FieldVersions = FieldVersions::since(8);
    pub(super) const ERROR_MESSAGE: FieldVersions = FieldVersions::since(8);
    /// Tag 0 of a partition response, and tag 0 of the response.
    pub(super) const CURRENT_LEADER: FieldVersions = FieldVersions::since(10);
    pub(super) const NODE_ENDPOINTS: FieldVersions = FieldVersions::since(10);
}

const fn flexible(version: i16) -> bool {
    API.is_flexible(version)
}

/// Writes the request around its record batches, for zero-copy sending.
///
/// Call, in this order: [`begin`](Self::begin); per topic [`topic`](Self::topic), then per
/// partition [`partition_records_prefix`](Self::partition_records_prefix) (after which the
/// caller sends `records_len` batch bytes of its own) and
/// [`end_partition`](Self::end_partition); [`end_topic`](Self::end_topic); finally
/// [`end`](Self::end). Each piece has a `*_len` twin, so the frame size is known before
/// anything is written. The counts passed must match the pieces that follow.
///
/// ```
/// use kafka_edge_core::protocol::{ApiKey, ProduceRequestEncoder, RequestHeader, Uuid, Writer,
///     write_frame_size};
/// let batch: &[u8] = &[0xba; 70]; // a record batch in a pool buffer
/// let version = 9;
/// let enc = ProduceRequestEncoder::new(version)?;
/// let header = RequestHeader::new(ApiKey::Produce, version, 1, Some("edge"));
/// let size = header.encoded_len()
///     + enc.begin_len(None, 1)
///     + enc.topic_len("t", 1)
///     + enc.partition_len(batch.len())
///     + enc.end_topic_len()
///     + enc.end_len();
/// let mut buf = [0u8; 64];
/// let mut w = Writer::new(&mut buf);
/// write_frame_size(&mut w, size)?;
/// header.encode(&mut w)?;
/// enc.begin(&mut w, None, -1, 30_000, 1)?;
/// enc.topic(&mut w, "t", Uuid::ZERO, 1)?;
/// enc.partition_records_prefix(&mut w, 0, batch.len())?;
/// let split = w.position(); // the batch goes here
/// enc.end_partition(&mut w)?;
/// enc.end_topic(&mut w)?;
/// enc.end(&mut w)?;
/// let out = w.written();
/// // writev([&out[..split], batch, &out[split..]])
/// assert_eq!(out.len() + batch.len(), 4 + size);
/// # Ok::<(), kafka_edge_core::protocol::EncodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceRequestEncoder {
    version: i16,
    flexible: bool,
}

impl ProduceRequestEncoder {
    /// An encoder for `version` (3..=13).
    pub const fn new(version: i16) -> Result<Self, EncodeError> {
        match check_encode(API, version) {
            Ok(flexible) => Ok(Self { version, flexible }),
            Err(e) => Err(e),
        }
    }

    /// The version written.
    pub const fn version(&self) -> i16 {
        self.version
    }

    /// Bytes [`begin`](Self::begin) writes.
    pub const fn begin_len(&self, transactional_id: Option<&str>, topic_count: usize) -> usize {
        nullable_string_len(self.flexible, transactional_id)
            .saturating_add(6 + len_prefix_len(self.flexible, Some(topic_count)))
    }

    /// Writes the request fields before the topics, and the topic count.
    pub fn begin(
        &self,
        w: &mut Writer<'_>,
        transactional_id: Option<&str>,
        acks: i16,
        timeout_ms: i32,
        topic_count: usize,
    ) -> Result<(), EncodeError> {
        w.write_nullable_string_in(self.flexible, transactional_id)?;
        w.write_i16(acks)?;
        w.write_i32(timeout_ms)?;
        w.write_array_len_in(self.flexible, Some(topic_count))
    }

    /// Bytes [`topic`](Self::topic) writes (`name` is not written from v13 on).
    pub const fn topic_len(&self, name: &str, partition_count: usize) -> usize {
        let id = if field::TOPIC_NAME.has(self.version) {
            nullable_string_len(self.flexible, Some(name))
        } else {
            16
        };
        id.saturating_add(len_prefix_len(self.flexible, Some(partition_count)))
    }

    /// Writes a topic's name (v3-12) or id (v13+), and its partition count.
    pub fn topic(
        &self,
        w: &mut Writer<'_>,
        name: &str,
        topic_id: Uuid,
        partition_count: usize,
    ) -> Result<(), EncodeError> {
        if field::TOPIC_NAME.has(self.version) {
            w.write_string_in(self.flexible, name)?;
        }
        if field::TOPIC_ID.has(self.version) {
            w.write_uuid(topic_id)?;
        }
        w.write_array_len_in(self.flexible, Some(partition_count))
    }

    /// Bytes [`partition_records_prefix`](Self::partition_records_prefix) writes.
    pub const fn partition_records_prefix_len(&self, records_len: usize) -> usize {
        4 + len_prefix_len(self.flexible, Some(records_len))
    }

    /// Writes a partition's index and the length prefix of its records; the caller then
    /// sends exactly `records_len` bytes of record batches.
    pub fn partition_records_prefix(
        &self,
        w: &mut Writer<'_>,
        index: i32,
        records_len: usize,
    ) -> Result<(), EncodeError> {
        self.partition_prefix(w, index, Some(records_len))
    }

    fn partition_prefix(
        &self,
        w: &mut Writer<'_>,
        index: i32,
        records_len: Option<usize>,
    ) -> Result<(), EncodeError> {
        w.write_i32(index)?;
        w.write_bytes_len_in(self.flexible, records_len)
    }

    /// Bytes [`end_partition`](Self::end_partition) writes.
    pub const fn end_partition_len(&self) -> usize {
        empty_tagged_fields_len(self.flexible)
    }

    /// Ends a partition (its tagged fields, in flexible versions).
    pub fn end_partition(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_empty_tagged_fields_in(self.flexible)
    }

    /// Bytes of a whole partition with `records_len` bytes of records: prefix, records and
    /// end.
    pub const fn partition_len(&self, records_len: usize) -> usize {
        self.partition_records_prefix_len(records_len)
            .saturating_add(records_len)
            .saturating_add(self.end_partition_len())
    }

    /// Bytes [`end_topic`](Self::end_topic) writes.
    pub const fn end_topic_len(&self) -> usize {
        empty_tagged_fields_len(self.flexible)
    }

    /// Ends a topic.
    pub fn end_topic(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_empty_tagged_fields_in(self.flexible)
    }

    /// Bytes [`end`](Self::end) writes.
    pub const fn end_len(&self) -> usize {
        empty_tagged_fields_len(self.flexible)
    }

    /// Ends the request.
    pub fn end(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_empty_tagged_fields_in(self.flexible)
    }
}

/// The records for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionProduceData<'a> {
    /// The partition.
    pub index: i32,
    /// Record batches (`None` only from odd clients).
    pub records: Option<&'a [u8]>,
}

impl<'a> Message<'a> for PartitionProduceData<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = flexible(version);
        4 + len_prefix_len(flexible, self.records.map(<[u8]>::len))
            + self.records.map_or(0, <[u8]>::len)
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let enc = ProduceRequestEncoder::new(version)?;
        enc.partition_prefix(w, self.index, self.records.map(<[u8]>::len))?;
        if let Some(records) = self.records {
            w.write_raw(records)?;
        }
        enc.end_partition(w)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = flexible(version);
        let p = Self {
            index: r.read_i32()?,
            records: r.read_nullable_bytes_in(flexible)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(p)
    }
}

/// The partitions of one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicProduceData<'a> {
    /// Topic name (v3-12; empty when decoded from v13+).
    pub name: &'a str,
    /// Topic id (v13+; [`Uuid::ZERO`] when decoded from older versions).
    pub topic_id: Uuid,
    /// The partitions.
    pub partition_data: Array<'a, PartitionProduceData<'a>>,
}

impl<'a> Message<'a> for TopicProduceData<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let Ok(enc) = ProduceRequestEncoder::new(version) else {
            return 0;
        };
        self.partition_data.iter().fold(
            enc.topic_len(self.name, self.partition_data.len()) + enc.end_topic_len(),
            |n, p| n.saturating_add(p.encoded_len(version)),
        )
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let enc = ProduceRequestEncoder::new(version)?;
        enc.topic(w, self.name, self.topic_id, self.partition_data.len())?;
        for p in self.partition_data.iter() {
            p.encode(version, w)?;
        }
        enc.end_topic(w)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = flexible(version);
        let (name, topic_id) = read_topic_name_and_id(version, flexible, r)?;
        let partition_data = Array::decode(version, flexible, r)?;
        r.skip_tagged_fields_in(flexible)?;
        Ok(Self {
            name,
            topic_id,
            partition_data,
        })
    }
}

/// `ProduceRequest` as a whole; see [`ProduceRequestEncoder`] for the zero-copy path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceRequest<'a> {
    /// The transactional id, `None` unless transactional.
    pub transactional_id: Option<&'a str>,
    /// `acks`: 0, 1 or -1 (all).
    pub acks: i16,
    /// How long the broker may wait for replication.
    pub timeout_ms: i32,
    /// The topics.
    pub topic_data: Array<'a, TopicProduceData<'a>>,
}

impl<'a> Message<'a> for ProduceRequest<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let Ok(enc) = ProduceRequestEncoder::new(version) else {
            return 0;
        };
        self.topic_data.iter().fold(
            enc.begin_len(self.transactional_id, self.topic_data.len()) + enc.end_len(),
            |n, t| n.saturating_add(t.encoded_len(version)),
        )
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let enc = ProduceRequestEncoder::new(version)?;
        enc.begin(
            w,
            self.transactional_id,
            self.acks,
            self.timeout_ms,
            self.topic_data.len(),
        )?;
        for t in self.topic_data.iter() {
            t.encode(version, w)?;
        }
        enc.end(w)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let req = Self {
            transactional_id: r.read_nullable_string_in(flexible)?,
            acks: r.read_i16()?,
            timeout_ms: r.read_i32()?,
            topic_data: Array::decode(version, flexible, r)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(req)
    }
}

/// A record that made the broker drop its batch (v8+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchIndexAndErrorMessage<'a> {
    /// Index of the record in the batch.
    pub batch_index: i32,
    /// Why, if the broker said.
    pub batch_index_error_message: Option<&'a str>,
}

impl<'a> Message<'a> for BatchIndexAndErrorMessage<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = flexible(version);
        4 + nullable_string_len(flexible, self.batch_index_error_message)
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = flexible(version);
        w.write_i32(self.batch_index)?;
        w.write_nullable_string_in(flexible, self.batch_index_error_message)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = flexible(version);
        let e = Self {
            batch_index: r.read_i32()?,
            batch_index_error_message: r.read_nullable_string_in(flexible)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(e)
    }
}

/// The partition's current leader, sent with `NOT_LEADER_OR_FOLLOWER` (v10+, KIP-951).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderIdAndEpoch {
    /// The leader's node id, `-1` if unknown.
    pub leader_id: i32,
    /// The leader epoch, `-1` if unknown.
    pub leader_epoch: i32,
}

impl LeaderIdAndEpoch {
    /// "Unknown" (`-1`, `-1`): the default, not written.
    pub const UNKNOWN: Self = Self {
        leader_id: -1,
        leader_epoch: -1,
    };
}

impl Default for LeaderIdAndEpoch {
    fn default() -> Self {
        Self::UNKNOWN
    }
}

impl Message<'_> for LeaderIdAndEpoch {
    fn encoded_len(&self, _version: i16) -> usize {
        9
    }

    fn encode(&self, _version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_i32(self.leader_id)?;
        w.write_i32(self.leader_epoch)?;
        w.write_empty_tagged_fields()
    }

    fn decode(_version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let l = Self {
            leader_id: r.read_i32()?,
            leader_epoch: r.read_i32()?,
        };
        r.skip_tagged_fields()?;
        Ok(l)
    }
}

/// A broker named in `current_leader` (v10+, KIP-951).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeEndpoint<'a> {
    /// `node.id`.
    pub node_id: i32,
    /// Host name.
    pub host: &'a str,
    /// Port.
    pub port: i32,
    /// `broker.rack`, if any.
    pub rack: Option<&'a str>,
}

impl<'a> Message<'a> for NodeEndpoint<'a> {
    fn encoded_len(&self, _version: i16) -> usize {
        8 + nullable_string_len(true, Some(self.host)) + nullable_string_len(true, self.rack) + 1
    }

    fn encode(&self, _version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_i32(self.node_id)?;
        w.write_compact_string(self.host)?;
        w.write_i32(self.port)?;
        w.write_compact_nullable_string(self.rack)?;
        w.write_empty_tagged_fields()
    }

    fn decode(_version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let n = Self {
            node_id: r.read_i32()?,
            host: r.read_compact_string()?,
            port: r.read_i32()?,
            rack: r.read_compact_nullable_string()?,
        };
        r.skip_tagged_fields()?;
        Ok(n)
    }
}

/// Bytes of a tagged-field section holding at most one field, tag 0, of `len` bytes.
const fn tag0_section_len(len: Option<usize>) -> usize {
    match len {
        None => 1,
        // count, tag, size, data
        Some(len) => 2 + unsigned_varint_len(len as u32) + len,
    }
}

/// Writes a tagged-field section holding at most one field, tag 0.
fn write_tag0_section<'a, M: Message<'a>>(
    w: &mut Writer<'_>,
    version: i16,
    field: Option<&M>,
) -> Result<(), EncodeError> {
    let Some(field) = field else {
        return w.write_empty_tagged_fields();
    };
    let len = u32::try_from(field.encoded_len(version)).map_err(|_| EncodeError::LengthOverflow)?;
    w.write_unsigned_varint(1)?;
    w.write_unsigned_varint(0)?;
    w.write_unsigned_varint(len)?;
    field.encode(version, w)
}

/// Decodes tag 0 of `tags` as `M` when `known`; other tags are skipped.
fn read_tag0<'a, M: Message<'a>>(
    tags: TaggedFields<'a>,
    version: i16,
    known: bool,
) -> Result<Option<M>, DecodeError> {
    let mut found = None;
    for f in tags {
        if known && f.tag == 0 {
            found = Some(M::decode(version, &mut Reader::new(f.data))?);
        }
    }
    Ok(found)
}

/// The outcome for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionProduceResponse<'a> {
    /// The partition.
    pub index: i32,
    /// The error, `NONE` on success.
    pub error_code: ErrorCode,
    /// Offset of the first record written.
    pub base_offset: i64,
    /// Broker time of the append for `LogAppendTime` topics, else `-1`.
    pub log_append_time_ms: i64,
    /// The log start offset (v5+; `-1` otherwise).
    pub log_start_offset: i64,
    /// Records that made the batch fail (v8+).
    pub record_errors: Array<'a, BatchIndexAndErrorMessage<'a>>,
    /// Summary of the failure (v8+).
    pub error_message: Option<&'a str>,
    /// The current leader (tagged, v10+; [`LeaderIdAndEpoch::UNKNOWN`] when absent).
    pub current_leader: LeaderIdAndEpoch,
}

impl PartitionProduceResponse<'_> {
    fn current_leader(&self, version: i16) -> Option<&LeaderIdAndEpoch> {
        (field::CURRENT_LEADER.has(version) && self.current_leader != LeaderIdAndEpoch::UNKNOWN)
            .then_some(&self.current_leader)
    }
}

impl<'a> Message<'a> for PartitionProduceResponse<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = flexible(version);
        let mut n = 22;
        if field::LOG_START_OFFSET.has(version) {
            n += 8;
        }
        if field::RECORD_ERRORS.has(version) {
            n += self.record_errors.encoded_len(version, flexible);
        }
        if field::ERROR_MESSAGE.has(version) {
            n += nullable_string_len(flexible, self.error_message);
        }
        if flexible {
            n += tag0_section_len(self.current_leader(version).map(|l| l.encoded_len(version)));
        }
        n
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = flexible(version);
        w.write_i32(self.index)?;
        w.write_i16(self.error_code.0)?;
        w.write_i64(self.base_offset)?;
        w.write_i64(self.log_append_time_ms)?;
        if field::LOG_START_OFFSET.has(version) {
            w.write_i64(self.log_start_offset)?;
        }
        if field::RECORD_ERRORS.has(version) {
            self.record_errors.encode(version, flexible, w)?;
        }
        if field::ERROR_MESSAGE.has(version) {
            w.write_nullable_string_in(flexible, self.error_message)?;
        }
        if flexible {
            write_tag0_section(w, version, self.current_leader(version))?;
        }
        Ok(())
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = flexible(version);
        let index = r.read_i32()?;
        let error_code = ErrorCode(r.read_i16()?);
        let base_offset = r.read_i64()?;
        let log_append_time_ms = r.read_i64()?;
        let log_start_offset = if field::LOG_START_OFFSET.has(version) {
            r.read_i64()?
        } else {
            -1
        };
        let record_errors = if field::RECORD_ERRORS.has(version) {
            Array::decode(version, flexible, r)?
        } else {
            Array::EMPTY
        };
        let error_message = if field::ERROR_MESSAGE.has(version) {
            r.read_nullable_string_in(flexible)?
        } else {
            None
        };
        let current_leader = if flexible {
            read_tag0(
                r.read_tagged_fields()?,
                version,
                field::CURRENT_LEADER.has(version),
            )?
            .unwrap_or_default()
        } else {
            LeaderIdAndEpoch::UNKNOWN
        };
        Ok(Self {
            index,
            error_code,
            base_offset,
            log_append_time_ms,
            log_start_offset,
            record_errors,
            error_message,
            current_leader,
        })
    }
}

/// The outcomes for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicProduceResponse<'a> {
    /// Topic name (v3-12; empty from v13 on).
    pub name: &'a str,
    /// Topic id (v13+; [`Uuid::ZERO`] before).
    pub topic_id: Uuid,
    /// The partitions.
    pub partition_responses: Array<'a, PartitionProduceResponse<'a>>,
}

impl<'a> Message<'a> for TopicProduceResponse<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = flexible(version);
        let id = if field::TOPIC_NAME.has(version) {
            nullable_string_len(flexible, Some(self.name))
        } else {
            16
        };
        id + self.partition_responses.encoded_len(version, flexible)
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = flexible(version);
        if field::TOPIC_NAME.has(version) {
            w.write_string_in(flexible, self.name)?;
        }
        if field::TOPIC_ID.has(version) {
            w.write_uuid(self.topic_id)?;
        }
        self.partition_responses.encode(version, flexible, w)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = flexible(version);
        let (name, topic_id) = read_topic_name_and_id(version, flexible, r)?;
        let partition_responses = Array::decode(version, flexible, r)?;
        r.skip_tagged_fields_in(flexible)?;
        Ok(Self {
            name,
            topic_id,
            partition_responses,
        })
    }
}

/// `ProduceResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProduceResponse<'a> {
    /// Per topic outcomes.
    pub responses: Array<'a, TopicProduceResponse<'a>>,
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Brokers named by `current_leader`s (tagged, v10+; empty when absent).
    pub node_endpoints: Array<'a, NodeEndpoint<'a>>,
}

impl ProduceResponse<'_> {
    fn node_endpoints(&self, version: i16) -> Option<&Self> {
        (field::NODE_ENDPOINTS.has(version) && !self.node_endpoints.is_empty()).then_some(self)
    }
}

/// The `node_endpoints` array as the content of a tagged field.
#[derive(Clone, Copy)]
struct NodeEndpoints<'a>(Array<'a, NodeEndpoint<'a>>);

impl<'a> Message<'a> for NodeEndpoints<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        self.0.encoded_len(version, true)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        self.0.encode(version, true, w)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        Array::decode(version, true, r).map(Self)
    }
}

impl<'a> Message<'a> for ProduceResponse<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = flexible(version);
        let tags = if flexible {
            tag0_section_len(
                self.node_endpoints(version)
                    .map(|s| s.node_endpoints.encoded_len(version, true)),
            )
        } else {
            0
        };
        self.responses.encoded_len(version, flexible) + 4 + tags
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        self.responses.encode(version, flexible, w)?;
        w.write_i32(self.throttle_time_ms)?;
        if flexible {
            let endpoints = self
                .node_endpoints(version)
                .map(|s| NodeEndpoints(s.node_endpoints));
            write_tag0_section(w, version, endpoints.as_ref())?;
        }
        Ok(())
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let responses = Array::decode(version, flexible, r)?;
        let throttle_time_ms = r.read_i32()?;
        let node_endpoints = if flexible {
            read_tag0::<NodeEndpoints<'a>>(
                r.read_tagged_fields()?,
                version,
                field::NODE_ENDPOINTS.has(version),
            )?
            .map_or(Array::EMPTY, |e| e.0)
        } else {
            Array::EMPTY
        };
        Ok(Self {
            responses,
            throttle_time_ms,
            node_endpoints,
        })
    }
}

/// A topic's name (up to v12) and id (v13+), as Produce requests and responses name it.
fn read_topic_name_and_id<'a>(
    version: i16,
    flexible: bool,
    r: &mut Reader<'a>,
) -> Result<(&'a str, Uuid), DecodeError> {
    let name = if field::TOPIC_NAME.has(version) {
        r.read_string_in(flexible)?
    } else {
        ""
    };
    let topic_id = if field::TOPIC_ID.has(version) {
        r.read_uuid()?
    } else {
        Uuid::ZERO
    };
    Ok((name, topic_id))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    use crate::protocol::testing::encode;

    const BATCH: &[u8] = &[0xaa, 0xbb, 0xcc];

    const REQ_V7: &[u8] = &[
        0xff, 0xff, // transactional_id null
        0xff, 0xff, // acks -1
        0, 0, 0x75, 0x30, // timeout_ms 30000
        0, 0, 0, 1, // topics: 1
        0, 1, b't', // name
        0, 0, 0, 1, // partitions: 1
        0, 0, 0, 2, // index 2
        0, 0, 0, 3, 0xaa, 0xbb, 0xcc, // records
    ];

    const REQ_V9: &[u8] = &[
        0x00, // transactional_id null
        0xff, 0xff, // acks -1
        0, 0, 0x75, 0x30, // timeout_ms 30000
        2,    // topics: 1
        2, b't', // name
        2,    // partitions: 1
        0, 0, 0, 2, // index 2
        4, 0xaa, 0xbb, 0xcc, // records
        0,    // partition tags
        0,    // topic tags
        0,    // tags
    ];

    fn request<'a>(
        parts: &'a [PartitionProduceData<'a>],
        topics: &'a mut Vec<TopicProduceData<'a>>,
    ) -> ProduceRequest<'a> {
        topics.push(TopicProduceData {
            name: "t",
            topic_id: Uuid::ZERO,
            partition_data: Array::from_slice(parts),
        });
        ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 30_000,
            topic_data: Array::from_slice(topics),
        }
    }

    #[test]
    fn test_request_both_ways() {
        let parts = [PartitionProduceData {
            index: 2,
            records: Some(BATCH),
        }];
        let mut topics = Vec::new();
        let req = request(&parts, &mut topics);
        for (v, bytes) in [(7, REQ_V7), (9, REQ_V9)] {
            assert_eq!(encode(&req, v), bytes, "v{v}");
            let mut r = Reader::new(bytes);
            assert_eq!(ProduceRequest::decode(v, &mut r), Ok(req));
            assert!(r.is_empty());
        }
    }

    /// The streaming encoder writes the same bytes as `ProduceRequest::encode`, minus the
    /// batches, at the split points it reports.
    #[test]
    fn test_streaming_encoder_matches_whole_request() {
        for v in 3..=13 {
            let enc = ProduceRequestEncoder::new(v).unwrap();
            let batches: [&[u8]; 3] = [BATCH, &[1, 2], &[]];
            let size = enc.begin_len(Some("tx"), 2)
                + enc.topic_len("a", 2)
                + enc.partition_len(batches[0].len())
                + enc.partition_len(batches[1].len())
                + enc.end_topic_len()
                + enc.topic_len("b", 1)
                + enc.partition_len(batches[2].len())
                + enc.end_topic_len()
                + enc.end_len();
            let mut buf = [0u8; 128];
            let mut w = Writer::new(&mut buf);
            let mut splits = Vec::new();
            enc.begin(&mut w, Some("tx"), 1, 5, 2).unwrap();
            for (name, id, parts) in [
                ("a", Uuid([1; 16]), &batches[..2]),
                ("b", Uuid([2; 16]), &batches[2..]),
            ] {
                enc.topic(&mut w, name, id, parts.len()).unwrap();
                for (i, b) in parts.iter().enumerate() {
                    enc.partition_records_prefix(&mut w, i as i32, b.len())
                        .unwrap();
                    splits.push(w.position());
                    enc.end_partition(&mut w).unwrap();
                }
                enc.end_topic(&mut w).unwrap();
            }
            enc.end(&mut w).unwrap();
            let out = w.written();
            let mut stream = Vec::new();
            let mut at = 0;
            for (split, b) in splits.iter().zip(batches) {
                stream.extend_from_slice(&out[at..*split]);
                stream.extend_from_slice(b);
                at = *split;
            }
            stream.extend_from_slice(&out[at..]);
            assert_eq!(stream.len(), size, "v{v}");

            let (pa, pb) = (
                [
                    PartitionProduceData {
                        index: 0,
                        records: Some(batches[0]),
                    },
                    PartitionProduceData {
                        index: 1,
                        records: Some(batches[1]),
                    },
                ],
                [PartitionProduceData {
                    index: 0,
                    records: Some(batches[2]),
                }],
            );
            let topics = [
                TopicProduceData {
                    name: "a",
                    topic_id: Uuid([1; 16]),
                    partition_data: Array::from_slice(&pa),
                },
                TopicProduceData {
                    name: "b",
                    topic_id: Uuid([2; 16]),
                    partition_data: Array::from_slice(&pb),
                },
            ];
            let req = ProduceRequest {
                transactional_id: Some("tx"),
                acks: 1,
                timeout_ms: 5,
                topic_data: Array::from_slice(&topics),
            };
            assert_eq!(encode(&req, v), stream, "v{v}");
        }
        assert_eq!(
            ProduceRequestEncoder::new(2),
            Err(EncodeError::UnsupportedVersion { version: 2 })
        );
    }

    const RESP_V8: &[u8] = &[
        0, 0, 0, 1, // responses: 1
        0, 1, b't', // name
        0, 0, 0, 1, // partitions: 1
        0, 0, 0, 2, // index 2
        0, 0x57, // error INVALID_RECORD
        0, 0, 0, 0, 0, 0, 0, 0x10, // base_offset 16
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // log_append_time_ms -1
        0, 0, 0, 0, 0, 0, 0, 0, // log_start_offset 0
        0, 0, 0, 1, 0, 0, 0, 1, 0, 1, b'x', // record_errors [(1, "x")]
        0, 2, b'b', b'd', // error_message "bd"
        0, 0, 0, 0, // throttle_time_ms
    ];

    const RESP_V10: &[u8] = &[
        2, // responses: 1
        2, b't', // name
        2,    // partitions: 1
        0, 0, 0, 2, // index 2
        0, 6, // error NOT_LEADER_OR_FOLLOWER
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // base_offset -1
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // log_append_time_ms -1
        0, 0, 0, 0, 0, 0, 0, 0, // log_start_offset 0
        1, // record_errors []
        0, // error_message null
        1, 0, 9, 0, 0, 0, 3, 0, 0, 0, 7, 0, // tag 0: current_leader 3 epoch 7
        0, // topic tags
        0, 0, 0, 0, // throttle_time_ms
        1, 0, 13, 2, 0, 0, 0, 3, 2, b'h', 0, 0, 0x23, 0x84, 0, 0, // tag 0: [3 h:9092]
    ];

    #[test]
    fn test_response_both_ways() {
        let errors = [BatchIndexAndErrorMessage {
            batch_index: 1,
            batch_index_error_message: Some("x"),
        }];
        let p8 = [PartitionProduceResponse {
            index: 2,
            error_code: ErrorCode::INVALID_RECORD,
            base_offset: 16,
            log_append_time_ms: -1,
            log_start_offset: 0,
            record_errors: Array::from_slice(&errors),
            error_message: Some("bd"),
            current_leader: LeaderIdAndEpoch::UNKNOWN,
        }];
        let p10 = [PartitionProduceResponse {
            index: 2,
            error_code: ErrorCode::NOT_LEADER_OR_FOLLOWER,
            base_offset: -1,
            log_append_time_ms: -1,
            log_start_offset: 0,
            record_errors: Array::EMPTY,
            error_message: None,
            current_leader: LeaderIdAndEpoch {
                leader_id: 3,
                leader_epoch: 7,
            },
        }];
        let nodes = [NodeEndpoint {
            node_id: 3,
            host: "h",
            port: 9092,
            rack: None,
        }];
        for (v, bytes, parts, nodes) in [
            (8, RESP_V8, &p8, Array::EMPTY),
            (10, RESP_V10, &p10, Array::from_slice(&nodes)),
        ] {
            let topics = [TopicProduceResponse {
                name: "t",
                topic_id: Uuid::ZERO,
                partition_responses: Array::from_slice(parts),
            }];
            let resp = ProduceResponse {
                responses: Array::from_slice(&topics),
                throttle_time_ms: 0,
                node_endpoints: nodes,
            };
            assert_eq!(encode(&resp, v), bytes, "v{v}");
            let mut r = Reader::new(bytes);
            assert_eq!(ProduceResponse::decode(v, &mut r), Ok(resp));
            assert!(r.is_empty());
        }
    }

    #[test]
    fn test_unknown_tags_are_skipped() {
        // RESP_V10 with an extra unknown tag 5 in the partition's tagged fields.
        let mut bytes = RESP_V10.to_vec();
        let at = RESP_V10.iter().position(|&b| b == 9).unwrap() - 2; // the partition's tag count
        bytes.splice(at..at + 1, [2]);
        let end = at + 3 + 9;
        bytes.splice(end..end, [5, 1, 0xee]);
        let resp = ProduceResponse::decode(10, &mut Reader::new(&bytes)).unwrap();
        let p = resp
            .responses
            .iter()
            .next()
            .unwrap()
            .partition_responses
            .iter()
            .next()
            .unwrap();
        assert_eq!(
            p.current_leader,
            LeaderIdAndEpoch {
                leader_id: 3,
                leader_epoch: 7
            }
        );
    }

    proptest! {
        #[test]
        fn prop_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128), v in 2i16..15) {
            if let Ok(resp) = ProduceResponse::decode(v, &mut Reader::new(&bytes)) {
                for t in resp.responses.iter() {
                    for p in t.partition_responses.iter() {
                        prop_assert_eq!(p.record_errors.iter().count(), p.record_errors.len());
                    }
                }
                prop_assert_eq!(resp.node_endpoints.iter().count(), resp.node_endpoints.len());
            }
            if let Ok(req) = ProduceRequest::decode(v, &mut Reader::new(&bytes)) {
                for t in req.topic_data.iter() {
                    prop_assert_eq!(t.partition_data.iter().count(), t.partition_data.len());
                }
            }
        }

        #[test]
        fn prop_response_round_trip(
            v in 3i16..=13,
            parts in proptest::collection::vec((any::<i32>(), any::<i16>(), any::<i64>(), any::<i64>(), any::<i64>(), proptest::option::of("[a-z]{0,5}"), any::<(i32, i32)>()), 0..4),
            errs in proptest::collection::vec((any::<i32>(), proptest::option::of("[a-z]{0,5}")), 0..3),
            nodes in proptest::collection::vec((any::<i32>(), "[a-z]{0,5}", any::<i32>()), 0..3),
            throttle in any::<i32>(),
        ) {
            let errs: Vec<_> = errs.iter().map(|(i, m)| BatchIndexAndErrorMessage { batch_index: *i, batch_index_error_message: m.as_deref() }).collect();
            let parts: Vec<_> = parts.iter().map(|(i, e, b, t, s, m, (l, ep))| PartitionProduceResponse {
                index: *i,
                error_code: ErrorCode(*e),
                base_offset: *b,
                log_append_time_ms: *t,
                log_start_offset: if v >= 5 { *s } else { -1 },
                record_errors: if v >= 8 { Array::from_slice(&errs) } else { Array::EMPTY },
                error_message: if v >= 8 { m.as_deref() } else { None },
                current_leader: if v >= 10 { LeaderIdAndEpoch { leader_id: *l, leader_epoch: *ep } } else { LeaderIdAndEpoch::UNKNOWN },
            }).collect();
            let nodes: Vec<_> = nodes.iter().map(|(n, h, p)| NodeEndpoint { node_id: *n, host: h, port: *p, rack: None }).collect();
            let topics = [TopicProduceResponse {
                name: if v <= 12 { "topic" } else { "" },
                topic_id: if v >= 13 { Uuid([9; 16]) } else { Uuid::ZERO },
                partition_responses: Array::from_slice(&parts),
            }];
            let resp = ProduceResponse {
                responses: Array::from_slice(&topics),
                throttle_time_ms: throttle,
                node_endpoints: if v >= 10 { Array::from_slice(&nodes) } else { Array::EMPTY },
            };
            let mut buf = [0u8; 2048];
            let mut w = Writer::new(&mut buf);
            resp.encode(v, &mut w).unwrap();
            prop_assert_eq!(w.position(), resp.encoded_len(v));
            let mut r = Reader::new(w.written());
            prop_assert_eq!(ProduceResponse::decode(v, &mut r), Ok(resp));
            prop_assert!(r.is_empty());
        }

        #[test]
        fn prop_request_round_trip(v in 3i16..=13, tx in proptest::option::of("[a-z]{0,6}"), batches in proptest::collection::vec(proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)), 0..4)) {
            let parts: Vec<_> = batches.iter().enumerate().map(|(i, b)| PartitionProduceData { index: i as i32, records: b.as_deref() }).collect();
            let topics = [TopicProduceData {
                name: if v <= 12 { "t" } else { "" },
                topic_id: if v >= 13 { Uuid([4; 16]) } else { Uuid::ZERO },
                partition_data: Array::from_slice(&parts),
            }];
            let req = ProduceRequest { transactional_id: tx.as_deref(), acks: 1, timeout_ms: 100, topic_data: Array::from_slice(&topics) };
            let bytes = encode(&req, v);
            prop_assert_eq!(ProduceRequest::decode(v, &mut Reader::new(&bytes)), Ok(req));
        }
    }
}
