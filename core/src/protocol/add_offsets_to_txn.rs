//! `AddOffsetsToTxn` (key 25), versions 0-4 (flexible from 3): adds a consumer group's
//! offsets topic partition to the transaction, before `TxnOffsetCommit` to the group
//! coordinator.
//!
//! Version notes from `AddOffsetsToTxnRequest.json` / `AddOffsetsToTxnResponse.json`: no
//! version changes a field (v4 adds the `TRANSACTION_ABORTABLE` error).

use super::codec::{
    DecodeError, EncodeError, Message, Reader, Writer, empty_tagged_fields_len, nullable_string_len,
};
use super::error::ErrorCode;
use super::header::{ApiKey, check_decode, check_encode};

const API: ApiKey = ApiKey::AddOffsetsToTxn;

/// `AddOffsetsToTxnRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddOffsetsToTxnRequest<'a> {
    /// The transactional id.
    pub transactional_id: &'a str,
    /// The producer id from InitProducerId.
    pub producer_id: i64,
    /// The producer epoch from InitProducerId.
    pub producer_epoch: i16,
    /// The consumer group whose offsets join the transaction.
    pub group_id: &'a str,
}

impl<'a> Message<'a> for AddOffsetsToTxnRequest<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        nullable_string_len(flexible, Some(self.transactional_id))
            .saturating_add(nullable_string_len(flexible, Some(self.group_id)))
            .saturating_add(10 + empty_tagged_fields_len(flexible))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_string_in(flexible, self.transactional_id)?;
        w.write_i64(self.producer_id)?;
        w.write_i16(self.producer_epoch)?;
        w.write_string_in(flexible, self.group_id)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let req = Self {
            transactional_id: r.read_string_in(flexible)?,
            producer_id: r.read_i64()?,
            producer_epoch: r.read_i16()?,
            group_id: r.read_string_in(flexible)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(req)
    }
}

/// `AddOffsetsToTxnResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddOffsetsToTxnResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// The error, `NONE` on success.
    pub error_code: ErrorCode,
}

impl Message<'_> for AddOffsetsToTxnResponse {
    fn encoded_len(&self, version: i16) -> usize {
        6 + empty_tagged_fields_len(API.is_flexible(version))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_i32(self.throttle_time_ms)?;
        w.write_i16(self.error_code.0)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let resp = Self {
            throttle_time_ms: r.read_i32()?,
            error_code: ErrorCode(r.read_i16()?),
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::protocol::testing::encode;

    const REQ_V0: &[u8] = &[0, 2, b't', b'x', 0, 0, 0, 0, 0, 0, 0, 7, 0, 1, 0, 1, b'g'];

    #[test]
    fn test_both_ways() {
        let req = AddOffsetsToTxnRequest {
            transactional_id: "tx",
            producer_id: 7,
            producer_epoch: 1,
            group_id: "g",
        };
        assert_eq!(encode(&req, 0), REQ_V0);
        assert_eq!(
            AddOffsetsToTxnRequest::decode(0, &mut Reader::new(REQ_V0)),
            Ok(req)
        );
        let resp = AddOffsetsToTxnResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
        };
        assert_eq!(encode(&resp, 3), [0, 0, 0, 0, 0, 0, 0]);
    }

    proptest! {
        #[test]
        fn prop_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32), v in -1i16..7) {
            let _ = AddOffsetsToTxnResponse::decode(v, &mut Reader::new(&bytes));
            let _ = AddOffsetsToTxnRequest::decode(v, &mut Reader::new(&bytes));
        }

        #[test]
        fn prop_round_trip(v in 0i16..=4, tx in "[a-z]{0,8}", g in "[a-z]{0,8}", pid in any::<i64>(), ep in any::<i16>(), err in any::<i16>()) {
            let req = AddOffsetsToTxnRequest { transactional_id: &tx, producer_id: pid, producer_epoch: ep, group_id: &g };
            let bytes = encode(&req, v);
            prop_assert_eq!(AddOffsetsToTxnRequest::decode(v, &mut Reader::new(&bytes)), Ok(req));
            let resp = AddOffsetsToTxnResponse { throttle_time_ms: 2, error_code: ErrorCode(err) };
            let bytes = encode(&resp, v);
            prop_assert_eq!(AddOffsetsToTxnResponse::decode(v, &mut Reader::new(&bytes)), Ok(resp));
        }
    }
}
