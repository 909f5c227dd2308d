//! `TxnOffsetCommit` (key 28), client versions 0-5 (flexible from 3): commits a consumer
//! group's offsets inside a transaction, to the group coordinator.
//!
//! Version notes from `TxnOffsetCommitRequest.json` / `TxnOffsetCommitResponse.json`: v2
//! adds `committed_leader_epoch`; v3 adds the group membership (`generation_id`,
//! `member_id`, `group_instance_id`, KIP-447); v5 has v4's fields and is transaction
//! version 2 (KIP-890 part 2: the coordinator adds the group's offsets partition to the
//! transaction itself, so no AddOffsetsToTxn comes first); v6 names topics by id and is not
//! spoken here (Java also falls back to v5 when a topic id is unknown).

use super::codec::{
    Array, DecodeError, EncodeError, Message, Reader, Writer, empty_tagged_fields_len,
    nullable_string_len,
};
use super::error::ErrorCode;
use super::header::{ApiKey, FieldVersions, check_decode, check_encode};

const API: ApiKey = ApiKey::TxnOffsetCommit;

mod field {
    use super::FieldVersions;
    pub(super) const LEADER_EPOCH: FieldVersions = FieldVersions::since(2);
    pub(super) const MEMBERSHIP: FieldVersions = FieldVersions::since(3);
}

/// The offset to commit for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnOffsetCommitRequestPartition<'a> {
    /// The partition index.
    pub partition_index: i32,
    /// The offset to commit: the next record the group will read.
    pub committed_offset: i64,
    /// The leader epoch of the last consumed record (v2+; `-1` when unknown).
    pub committed_leader_epoch: i32,
    /// Metadata kept with the offset, if any.
    pub committed_metadata: Option<&'a str>,
}

impl<'a> Message<'a> for TxnOffsetCommitRequestPartition<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        12 + if field::LEADER_EPOCH.has(version) {
            4
        } else {
            0
        } + nullable_string_len(flexible, self.committed_metadata)
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = API.is_flexible(version);
        w.write_i32(self.partition_index)?;
        w.write_i64(self.committed_offset)?;
        if field::LEADER_EPOCH.has(version) {
            w.write_i32(self.committed_leader_epoch)?;
        }
        w.write_nullable_string_in(flexible, self.committed_metadata)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = API.is_flexible(version);
        let partition_index = r.read_i32()?;
        let committed_offset = r.read_i64()?;
        let committed_leader_epoch = if field::LEADER_EPOCH.has(version) {
            r.read_i32()?
        } else {
            -1
        };
        let p = Self {
            partition_index,
            committed_offset,
            committed_leader_epoch,
            committed_metadata: r.read_nullable_string_in(flexible)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(p)
    }
}

/// The offsets to commit for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnOffsetCommitRequestTopic<'a> {
    /// The topic.
    pub name: &'a str,
    /// The offsets, by partition.
    pub partitions: Array<'a, TxnOffsetCommitRequestPartition<'a>>,
}

impl<'a> Message<'a> for TxnOffsetCommitRequestTopic<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        nullable_string_len(flexible, Some(self.name))
            .saturating_add(self.partitions.encoded_len(version, flexible))
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = API.is_flexible(version);
        w.write_string_in(flexible, self.name)?;
        self.partitions.encode(version, flexible, w)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = API.is_flexible(version);
        let t = Self {
            name: r.read_string_in(flexible)?,
            partitions: Array::decode(version, flexible, r)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(t)
    }
}

/// `TxnOffsetCommitRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnOffsetCommitRequest<'a> {
    /// The transactional id.
    pub transactional_id: &'a str,
    /// The consumer group.
    pub group_id: &'a str,
    /// The producer id from InitProducerId.
    pub producer_id: i64,
    /// The producer epoch from InitProducerId.
    pub producer_epoch: i16,
    /// The group generation (v3+; `-1` to commit without group membership checks).
    pub generation_id: i32,
    /// The member id (v3+; empty without membership).
    pub member_id: &'a str,
    /// The static member id, if any (v3+).
    pub group_instance_id: Option<&'a str>,
    /// The offsets, by topic.
    pub topics: Array<'a, TxnOffsetCommitRequestTopic<'a>>,
}

impl<'a> Message<'a> for TxnOffsetCommitRequest<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        let mut n = nullable_string_len(flexible, Some(self.transactional_id))
            .saturating_add(nullable_string_len(flexible, Some(self.group_id)))
            .saturating_add(10)
            .saturating_add(self.topics.encoded_len(version, flexible))
            + empty_tagged_fields_len(flexible);
        if field::MEMBERSHIP.has(version) {
            n = n
                .saturating_add(4)
                .saturating_add(nullable_string_len(flexible, Some(self.member_id)))
                .saturating_add(nullable_string_len(flexible, self.group_instance_id));
        }
        n
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_string_in(flexible, self.transactional_id)?;
        w.write_string_in(flexible, self.group_id)?;
        w.write_i64(self.producer_id)?;
        w.write_i16(self.producer_epoch)?;
        if field::MEMBERSHIP.has(version) {
            w.write_i32(self.generation_id)?;
            w.write_string_in(flexible, self.member_id)?;
            w.write_nullable_string_in(flexible, self.group_instance_id)?;
        }
        self.topics.encode(version, flexible, w)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let transactional_id = r.read_string_in(flexible)?;
        let group_id = r.read_string_in(flexible)?;
        let producer_id = r.read_i64()?;
        let producer_epoch = r.read_i16()?;
        let (generation_id, member_id, group_instance_id) = if field::MEMBERSHIP.has(version) {
            (
                r.read_i32()?,
                r.read_string_in(flexible)?,
                r.read_nullable_string_in(flexible)?,
            )
        } else {
            (-1, "", None)
        };
        let req = Self {
            transactional_id,
            group_id,
            producer_id,
            producer_epoch,
            generation_id,
            member_id,
            group_instance_id,
            topics: Array::decode(version, flexible, r)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(req)
    }
}

/// The result for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnOffsetCommitResponsePartition {
    /// The partition index.
    pub partition_index: i32,
    /// The error, `NONE` when the offset is committed with the transaction.
    pub error_code: ErrorCode,
}

impl Message<'_> for TxnOffsetCommitResponsePartition {
    fn encoded_len(&self, version: i16) -> usize {
        6 + empty_tagged_fields_len(API.is_flexible(version))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_i32(self.partition_index)?;
        w.write_i16(self.error_code.0)?;
        w.write_empty_tagged_fields_in(API.is_flexible(version))
    }

    fn decode(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let p = Self {
            partition_index: r.read_i32()?,
            error_code: ErrorCode(r.read_i16()?),
        };
        r.skip_tagged_fields_in(API.is_flexible(version))?;
        Ok(p)
    }
}

/// The results for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnOffsetCommitResponseTopic<'a> {
    /// The topic.
    pub name: &'a str,
    /// The results, by partition.
    pub partitions: Array<'a, TxnOffsetCommitResponsePartition>,
}

impl<'a> Message<'a> for TxnOffsetCommitResponseTopic<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        nullable_string_len(flexible, Some(self.name))
            .saturating_add(self.partitions.encoded_len(version, flexible))
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = API.is_flexible(version);
        w.write_string_in(flexible, self.name)?;
        self.partitions.encode(version, flexible, w)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = API.is_flexible(version);
        let t = Self {
            name: r.read_string_in(flexible)?,
            partitions: Array::decode(version, flexible, r)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(t)
    }
}

/// `TxnOffsetCommitResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnOffsetCommitResponse<'a> {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// The results, by topic.
    pub topics: Array<'a, TxnOffsetCommitResponseTopic<'a>>,
}

impl<'a> Message<'a> for TxnOffsetCommitResponse<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        4usize.saturating_add(self.topics.encoded_len(version, flexible))
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_i32(self.throttle_time_ms)?;
        self.topics.encode(version, flexible, w)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let resp = Self {
            throttle_time_ms: r.read_i32()?,
            topics: Array::decode(version, flexible, r)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;

    use crate::protocol::testing::encode;

    const REQ_V3: &[u8] = &[
        3, b't', b'x', // transactional_id
        2, b'g', // group_id
        0, 0, 0, 0, 0, 0, 0, 7, // producer_id
        0, 1, // epoch
        0xff, 0xff, 0xff, 0xff, // generation -1
        1,    // member id ""
        0,    // no instance id
        2,    // one topic
        2, b't', // name
        2,    // one partition
        0, 0, 0, 0, // partition 0
        0, 0, 0, 0, 0, 0, 0, 42, // offset 42
        0xff, 0xff, 0xff, 0xff, // leader epoch -1
        0,    // null metadata
        0,    // partition tags
        0,    // topic tags
        0,    // tags
    ];

    fn request<'a>(topics: &'a [TxnOffsetCommitRequestTopic<'a>]) -> TxnOffsetCommitRequest<'a> {
        TxnOffsetCommitRequest {
            transactional_id: "tx",
            group_id: "g",
            producer_id: 7,
            producer_epoch: 1,
            generation_id: -1,
            member_id: "",
            group_instance_id: None,
            topics: Array::from_slice(topics),
        }
    }

    #[test]
    fn test_request_both_ways() {
        let parts = [TxnOffsetCommitRequestPartition {
            partition_index: 0,
            committed_offset: 42,
            committed_leader_epoch: -1,
            committed_metadata: None,
        }];
        let topics = [TxnOffsetCommitRequestTopic {
            name: "t",
            partitions: Array::from_slice(&parts),
        }];
        let req = request(&topics);
        assert_eq!(encode(&req, 3), REQ_V3);
        assert_eq!(
            TxnOffsetCommitRequest::decode(3, &mut Reader::new(REQ_V3)),
            Ok(req)
        );
        for v in 0..=2 {
            let bytes = encode(&req, v);
            assert_eq!(
                TxnOffsetCommitRequest::decode(v, &mut Reader::new(&bytes)),
                Ok(req)
            );
        }
    }

    proptest! {
        #[test]
        fn prop_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80), v in -1i16..7) {
            let _ = TxnOffsetCommitResponse::decode(v, &mut Reader::new(&bytes));
            let _ = TxnOffsetCommitRequest::decode(v, &mut Reader::new(&bytes));
        }

        #[test]
        fn prop_round_trip(v in 0i16..=5, topic in "[a-z]{0,8}", off in any::<i64>(), p in any::<i32>(), md in proptest::option::of("[a-z]{0,4}"), err in any::<i16>()) {
            let parts = [TxnOffsetCommitRequestPartition { partition_index: p, committed_offset: off, committed_leader_epoch: if v >= 2 { 5 } else { -1 }, committed_metadata: md.as_deref() }];
            let topics = [TxnOffsetCommitRequestTopic { name: &topic, partitions: Array::from_slice(&parts) }];
            let mut req = request(&topics);
            if v >= 3 { req.generation_id = 3; req.member_id = "m"; req.group_instance_id = Some("i"); }
            let bytes = encode(&req, v);
            prop_assert_eq!(TxnOffsetCommitRequest::decode(v, &mut Reader::new(&bytes)), Ok(req));
            let rparts = [TxnOffsetCommitResponsePartition { partition_index: p, error_code: ErrorCode(err) }];
            let rtopics = [TxnOffsetCommitResponseTopic { name: &topic, partitions: Array::from_slice(&rparts) }];
            let resp = TxnOffsetCommitResponse { throttle_time_ms: 0, topics: Array::from_slice(&rtopics) };
            let bytes = encode(&resp, v);
            prop_assert_eq!(TxnOffsetCommitResponse::decode(v, &mut Reader::new(&bytes)), Ok(resp));
        }
    }
}
