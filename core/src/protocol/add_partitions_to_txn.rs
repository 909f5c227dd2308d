//! `AddPartitionsToTxn` (key 24), client versions 0-3 (flexible from 3): adds partitions to
//! the ongoing transaction of a transactional producer, before it produces to them.
//!
//! Version notes from `AddPartitionsToTxnRequest.json` / `AddPartitionsToTxnResponse.json`:
//! v0-3 carry one transaction (`V3AndBelow*` fields); v4 and v5 are the broker-to-broker
//! batched form (KIP-890), which a client never sends and this crate does not speak.

use super::codec::{
    Array, DecodeError, EncodeError, Message, Reader, Writer, empty_tagged_fields_len,
    nullable_string_len,
};
use super::error::ErrorCode;
use super::header::{ApiKey, check_decode, check_encode};

const API: ApiKey = ApiKey::AddPartitionsToTxn;

/// A topic and the partitions of it to add.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddPartitionsToTxnTopic<'a> {
    /// The topic.
    pub name: &'a str,
    /// The partition indexes to add.
    pub partitions: Array<'a, i32>,
}

impl<'a> Message<'a> for AddPartitionsToTxnTopic<'a> {
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

/// `AddPartitionsToTxnRequest` (v0-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddPartitionsToTxnRequest<'a> {
    /// The transactional id.
    pub transactional_id: &'a str,
    /// The producer id from InitProducerId.
    pub producer_id: i64,
    /// The producer epoch from InitProducerId.
    pub producer_epoch: i16,
    /// The partitions to add, by topic.
    pub topics: Array<'a, AddPartitionsToTxnTopic<'a>>,
}

impl<'a> Message<'a> for AddPartitionsToTxnRequest<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        nullable_string_len(flexible, Some(self.transactional_id))
            .saturating_add(10)
            .saturating_add(self.topics.encoded_len(version, flexible))
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_string_in(flexible, self.transactional_id)?;
        w.write_i64(self.producer_id)?;
        w.write_i16(self.producer_epoch)?;
        self.topics.encode(version, flexible, w)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let req = Self {
            transactional_id: r.read_string_in(flexible)?,
            producer_id: r.read_i64()?,
            producer_epoch: r.read_i16()?,
            topics: Array::decode(version, flexible, r)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(req)
    }
}

/// The result for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddPartitionsToTxnPartitionResult {
    /// The partition index.
    pub partition_index: i32,
    /// The error, `NONE` when the partition is in the transaction.
    pub partition_error_code: ErrorCode,
}

impl Message<'_> for AddPartitionsToTxnPartitionResult {
    fn encoded_len(&self, version: i16) -> usize {
        6 + empty_tagged_fields_len(API.is_flexible(version))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_i32(self.partition_index)?;
        w.write_i16(self.partition_error_code.0)?;
        w.write_empty_tagged_fields_in(API.is_flexible(version))
    }

    fn decode(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let p = Self {
            partition_index: r.read_i32()?,
            partition_error_code: ErrorCode(r.read_i16()?),
        };
        r.skip_tagged_fields_in(API.is_flexible(version))?;
        Ok(p)
    }
}

/// The results for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddPartitionsToTxnTopicResult<'a> {
    /// The topic.
    pub name: &'a str,
    /// One result per partition asked for.
    pub results_by_partition: Array<'a, AddPartitionsToTxnPartitionResult>,
}

impl<'a> Message<'a> for AddPartitionsToTxnTopicResult<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        nullable_string_len(flexible, Some(self.name))
            .saturating_add(self.results_by_partition.encoded_len(version, flexible))
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = API.is_flexible(version);
        w.write_string_in(flexible, self.name)?;
        self.results_by_partition.encode(version, flexible, w)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = API.is_flexible(version);
        let t = Self {
            name: r.read_string_in(flexible)?,
            results_by_partition: Array::decode(version, flexible, r)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(t)
    }
}

/// `AddPartitionsToTxnResponse` (v0-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddPartitionsToTxnResponse<'a> {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// The results, by topic (`ResultsByTopicV3AndBelow`).
    pub results_by_topic: Array<'a, AddPartitionsToTxnTopicResult<'a>>,
}

impl<'a> Message<'a> for AddPartitionsToTxnResponse<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        4usize.saturating_add(self.results_by_topic.encoded_len(version, flexible))
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_i32(self.throttle_time_ms)?;
        self.results_by_topic.encode(version, flexible, w)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let resp = Self {
            throttle_time_ms: r.read_i32()?,
            results_by_topic: Array::decode(version, flexible, r)?,
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
        0, 0, 0, 0, 0, 0, 0, 7, // producer_id
        0, 1, // epoch
        2, // one topic
        2, b't', // name
        3, 0, 0, 0, 0, 0, 0, 0, 2, // partitions [0, 2]
        0, // topic tags
        0, // tags
    ];

    #[test]
    fn test_request_both_ways() {
        let parts = [0, 2];
        let topics = [AddPartitionsToTxnTopic {
            name: "t",
            partitions: Array::from_slice(&parts),
        }];
        let req = AddPartitionsToTxnRequest {
            transactional_id: "tx",
            producer_id: 7,
            producer_epoch: 1,
            topics: Array::from_slice(&topics),
        };
        assert_eq!(encode(&req, 3), REQ_V3);
        let mut r = Reader::new(REQ_V3);
        assert_eq!(AddPartitionsToTxnRequest::decode(3, &mut r), Ok(req));
        assert!(r.is_empty());
        let v0 = encode(&req, 0);
        assert_eq!(
            AddPartitionsToTxnRequest::decode(0, &mut Reader::new(&v0)),
            Ok(req)
        );
        assert_eq!(
            AddPartitionsToTxnRequest::decode(4, &mut Reader::new(REQ_V3)),
            Err(DecodeError::UnsupportedVersion { version: 4 })
        );
    }

    const RESP_V1: &[u8] = &[
        0, 0, 0, 0, // throttle
        0, 0, 0, 1, // one topic
        0, 1, b't', // name
        0, 0, 0, 1, // one partition
        0, 0, 0, 2, 0, 51, // partition 2: CONCURRENT_TRANSACTIONS
    ];

    #[test]
    fn test_response_both_ways() {
        let resp = AddPartitionsToTxnResponse::decode(1, &mut Reader::new(RESP_V1)).unwrap();
        let t = resp.results_by_topic.iter().next().unwrap();
        assert_eq!(t.name, "t");
        let p = t.results_by_partition.iter().next().unwrap();
        assert_eq!(
            p,
            AddPartitionsToTxnPartitionResult {
                partition_index: 2,
                partition_error_code: ErrorCode::CONCURRENT_TRANSACTIONS
            }
        );
        assert_eq!(encode(&resp, 1), RESP_V1);
    }

    proptest! {
        #[test]
        fn prop_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), v in -1i16..6) {
            let _ = AddPartitionsToTxnResponse::decode(v, &mut Reader::new(&bytes));
            let _ = AddPartitionsToTxnRequest::decode(v, &mut Reader::new(&bytes));
        }

        #[test]
        fn prop_round_trip(v in 0i16..=3, tx in "[a-z]{0,8}", topic in "[a-z]{0,8}", parts in proptest::collection::vec(any::<i32>(), 0..4), pid in any::<i64>(), ep in any::<i16>(), err in any::<i16>()) {
            let topics = [AddPartitionsToTxnTopic { name: &topic, partitions: Array::from_slice(&parts) }];
            let req = AddPartitionsToTxnRequest { transactional_id: &tx, producer_id: pid, producer_epoch: ep, topics: Array::from_slice(&topics) };
            let bytes = encode(&req, v);
            prop_assert_eq!(AddPartitionsToTxnRequest::decode(v, &mut Reader::new(&bytes)), Ok(req));
            let results: std::vec::Vec<_> = parts.iter().map(|&p| AddPartitionsToTxnPartitionResult { partition_index: p, partition_error_code: ErrorCode(err) }).collect();
            let topics = [AddPartitionsToTxnTopicResult { name: &topic, results_by_partition: Array::from_slice(&results) }];
            let resp = AddPartitionsToTxnResponse { throttle_time_ms: 1, results_by_topic: Array::from_slice(&topics) };
            let bytes = encode(&resp, v);
            prop_assert_eq!(AddPartitionsToTxnResponse::decode(v, &mut Reader::new(&bytes)), Ok(resp));
        }
    }
}
