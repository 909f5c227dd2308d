//! `EndTxn` (key 26), client versions 0-5 (flexible from 3): commits or aborts the ongoing
//! transaction of a transactional producer.
//!
//! Version notes from `EndTxnRequest.json` / `EndTxnResponse.json`: v1-v4 change no field
//! (v4 adds the `TRANSACTION_ABORTABLE` error); v5 is transaction version 2 (KIP-890 part
//! 2): the request is v4's, and the coordinator bumps the epoch at every end and returns the
//! producer id and epoch to use next (a new producer id with epoch 0 when the epoch ran
//! out). The producer sends v5 only when the cluster finalized `transaction.version` 2.

use super::codec::{
    DecodeError, EncodeError, Message, Reader, Writer, empty_tagged_fields_len, nullable_string_len,
};
use super::error::ErrorCode;
use super::header::{ApiKey, check_decode, check_encode};

const API: ApiKey = ApiKey::EndTxn;

/// `EndTxnRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnRequest<'a> {
    /// The transactional id.
    pub transactional_id: &'a str,
    /// The producer id from InitProducerId.
    pub producer_id: i64,
    /// The producer epoch from InitProducerId.
    pub producer_epoch: i16,
    /// `true` to commit, `false` to abort.
    pub committed: bool,
}

impl<'a> Message<'a> for EndTxnRequest<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        nullable_string_len(flexible, Some(self.transactional_id))
            .saturating_add(11 + empty_tagged_fields_len(flexible))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_string_in(flexible, self.transactional_id)?;
        w.write_i64(self.producer_id)?;
        w.write_i16(self.producer_epoch)?;
        w.write_bool(self.committed)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let req = Self {
            transactional_id: r.read_string_in(flexible)?,
            producer_id: r.read_i64()?,
            producer_epoch: r.read_i16()?,
            committed: r.read_bool()?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(req)
    }
}

/// `EndTxnResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// The error, `NONE` when the transaction ended as asked.
    pub error_code: ErrorCode,
    /// The producer id to use from now on (v5+; -1 before, and on errors).
    pub producer_id: i64,
    /// The producer epoch to use from now on (v5+; -1 before, and on errors).
    pub producer_epoch: i16,
}

impl EndTxnResponse {
    /// The version that returns the producer id and epoch (transaction version 2).
    pub const PRODUCER_ID_VERSION: i16 = 5;
}

impl Message<'_> for EndTxnResponse {
    fn encoded_len(&self, version: i16) -> usize {
        let pid = if version >= Self::PRODUCER_ID_VERSION {
            10
        } else {
            0
        };
        6 + pid + empty_tagged_fields_len(API.is_flexible(version))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_i32(self.throttle_time_ms)?;
        w.write_i16(self.error_code.0)?;
        if version >= Self::PRODUCER_ID_VERSION {
            w.write_i64(self.producer_id)?;
            w.write_i16(self.producer_epoch)?;
        }
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let mut resp = Self {
            throttle_time_ms: r.read_i32()?,
            error_code: ErrorCode(r.read_i16()?),
            producer_id: -1,
            producer_epoch: -1,
        };
        if version >= Self::PRODUCER_ID_VERSION {
            resp.producer_id = r.read_i64()?;
            resp.producer_epoch = r.read_i16()?;
        }
        r.skip_tagged_fields_in(flexible)?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::protocol::testing::encode;

    const REQ_V3: &[u8] = &[3, b't', b'x', 0, 0, 0, 0, 0, 0, 0, 7, 0, 1, 1, 0];
    const RESP_V0: &[u8] = &[0, 0, 0, 0, 0, 48];
    const RESP_V5: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 4, 0];

    #[test]
    fn test_both_ways() {
        let req = EndTxnRequest {
            transactional_id: "tx",
            producer_id: 7,
            producer_epoch: 1,
            committed: true,
        };
        assert_eq!(encode(&req, 3), REQ_V3);
        assert_eq!(EndTxnRequest::decode(3, &mut Reader::new(REQ_V3)), Ok(req));
        let resp = EndTxnResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode(48),
            producer_id: -1,
            producer_epoch: -1,
        };
        assert_eq!(encode(&resp, 0), RESP_V0);
        assert_eq!(
            EndTxnResponse::decode(0, &mut Reader::new(RESP_V0)),
            Ok(resp)
        );
        assert_eq!(
            EndTxnResponse::decode(6, &mut Reader::new(RESP_V0)),
            Err(DecodeError::UnsupportedVersion { version: 6 })
        );
        // v5 (transaction version 2) returns the producer id and the bumped epoch.
        let resp = EndTxnResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            producer_id: 9,
            producer_epoch: 4,
        };
        assert_eq!(encode(&resp, 5), RESP_V5);
        assert_eq!(
            EndTxnResponse::decode(5, &mut Reader::new(RESP_V5)),
            Ok(resp)
        );
        // v5's request is v4's.
        assert_eq!(encode(&req, 5), REQ_V3);
        // A v5 answer cut before its epoch does not decode.
        assert!(EndTxnResponse::decode(5, &mut Reader::new(&RESP_V5[..14])).is_err());
    }

    proptest! {
        #[test]
        fn prop_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32), v in -1i16..7) {
            let _ = EndTxnResponse::decode(v, &mut Reader::new(&bytes));
            let _ = EndTxnRequest::decode(v, &mut Reader::new(&bytes));
        }

        #[test]
        fn prop_round_trip(v in 0i16..=5, tx in "[a-z]{0,8}", pid in any::<i64>(), ep in any::<i16>(), c in any::<bool>(), err in any::<i16>(), t in any::<i32>()) {
            let req = EndTxnRequest { transactional_id: &tx, producer_id: pid, producer_epoch: ep, committed: c };
            let bytes = encode(&req, v);
            prop_assert_eq!(EndTxnRequest::decode(v, &mut Reader::new(&bytes)), Ok(req));
            let (producer_id, producer_epoch) = if v >= 5 { (pid, ep) } else { (-1, -1) };
            let resp = EndTxnResponse { throttle_time_ms: t, error_code: ErrorCode(err), producer_id, producer_epoch };
            let bytes = encode(&resp, v);
            prop_assert_eq!(EndTxnResponse::decode(v, &mut Reader::new(&bytes)), Ok(resp));
        }
    }
}
