//! `InitProducerId` (key 22), versions 0-5 (flexible from 2): the producer id and epoch of an
//! idempotent or transactional producer.
//!
//! Version notes from `InitProducerIdRequest.json` / `InitProducerIdResponse.json`: v3 adds
//! the current `producer_id`/`producer_epoch` to the request (to bump the epoch after
//! `INVALID_PRODUCER_EPOCH`); v4 and v5 only add error codes (`PRODUCER_FENCED`,
//! `TRANSACTION_ABORTABLE`). v6 (two-phase commit, KIP-939) is not supported.

use super::codec::{
    DecodeError, EncodeError, Message, Reader, Writer, empty_tagged_fields_len, nullable_string_len,
};
use super::error::ErrorCode;
use super::header::{ApiKey, FieldVersions, check_decode, check_encode};

const API: ApiKey = ApiKey::InitProducerId;

mod field {
    use super::FieldVersions;
    pub(super) const PRODUCER_ID_AND_EPOCH: FieldVersions = FieldVersions::since(3);
}

/// `InitProducerIdRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitProducerIdRequest<'a> {
    /// The transactional id; `None` for an idempotent producer.
    pub transactional_id: Option<&'a str>,
    /// Transaction timeout (meaningful with a transactional id).
    pub transaction_timeout_ms: i32,
    /// The current producer id, to bump its epoch (v3+; `-1` for a new one).
    pub producer_id: i64,
    /// The current epoch (v3+; `-1` for a new producer id).
    pub producer_epoch: i16,
}

impl InitProducerIdRequest<'_> {
    /// A request for a new producer id of an idempotent (non-transactional) producer.
    pub const IDEMPOTENT: Self = Self {
        transactional_id: None,
        transaction_timeout_ms: i32::MAX,
        producer_id: -1,
        producer_epoch: -1,
    };
}

impl<'a> Message<'a> for InitProducerIdRequest<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        nullable_string_len(flexible, self.transactional_id)
            + 4
            + if field::PRODUCER_ID_AND_EPOCH.has(version) {
                10
            } else {
                0
            }
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_nullable_string_in(flexible, self.transactional_id)?;
        w.write_i32(self.transaction_timeout_ms)?;
        if field::PRODUCER_ID_AND_EPOCH.has(version) {
            w.write_i64(self.producer_id)?;
            w.write_i16(self.producer_epoch)?;
        }
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let mut req = Self {
            transactional_id: r.read_nullable_string_in(flexible)?,
            transaction_timeout_ms: r.read_i32()?,
            producer_id: -1,
            producer_epoch: -1,
        };
        if field::PRODUCER_ID_AND_EPOCH.has(version) {
            req.producer_id = r.read_i64()?;
            req.producer_epoch = r.read_i16()?;
        }
        r.skip_tagged_fields_in(flexible)?;
        Ok(req)
    }
}

/// `InitProducerIdResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// The error, `NONE` on success.
    pub error_code: ErrorCode,
    /// The producer id (`-1` on error).
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
}

impl Message<'_> for InitProducerIdResponse {
    fn encoded_len(&self, version: i16) -> usize {
        16 + empty_tagged_fields_len(API.is_flexible(version))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_i32(self.throttle_time_ms)?;
        w.write_i16(self.error_code.0)?;
        w.write_i64(self.producer_id)?;
        w.write_i16(self.producer_epoch)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let resp = Self {
            throttle_time_ms: r.read_i32()?,
            error_code: ErrorCode(r.read_i16()?),
            producer_id: r.read_i64()?,
            producer_epoch: r.read_i16()?,
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

    const REQ_V1: &[u8] = &[0xff, 0xff, 0x7f, 0xff, 0xff, 0xff];
    const REQ_V4: &[u8] = &[
        3, b't', b'x', // transactional_id "tx"
        0, 0, 0xea, 0x60, // transaction_timeout_ms 60000
        0, 0, 0, 0, 0, 0, 0x10, 0x00, // producer_id 4096
        0, 2, // producer_epoch 2
        0, // tags
    ];

    #[test]
    fn test_request_both_ways() {
        let tx = InitProducerIdRequest {
            transactional_id: Some("tx"),
            transaction_timeout_ms: 60_000,
            producer_id: 4096,
            producer_epoch: 2,
        };
        for (v, req, bytes) in [
            (1, InitProducerIdRequest::IDEMPOTENT, REQ_V1),
            (4, tx, REQ_V4),
        ] {
            assert_eq!(encode(&req, v), bytes);
            let mut r = Reader::new(bytes);
            assert_eq!(InitProducerIdRequest::decode(v, &mut r), Ok(req));
            assert!(r.is_empty());
        }
    }

    const RESP_V0: &[u8] = &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 1];
    const RESP_V2: &[u8] = &[
        0, 0, 0, 5, 0, 90, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,
    ];

    #[test]
    fn test_response_both_ways() {
        let ok = InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: ErrorCode::NONE,
            producer_id: 7,
            producer_epoch: 1,
        };
        let fenced = InitProducerIdResponse {
            throttle_time_ms: 5,
            error_code: ErrorCode::PRODUCER_FENCED,
            producer_id: -1,
            producer_epoch: -1,
        };
        for (v, resp, bytes) in [(0, ok, RESP_V0), (2, fenced, RESP_V2)] {
            assert_eq!(encode(&resp, v), bytes);
            let mut r = Reader::new(bytes);
            assert_eq!(InitProducerIdResponse::decode(v, &mut r), Ok(resp));
            assert!(r.is_empty());
        }
        assert_eq!(
            InitProducerIdResponse::decode(6, &mut Reader::new(RESP_V2)),
            Err(DecodeError::UnsupportedVersion { version: 6 })
        );
    }

    proptest! {
        #[test]
        fn prop_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40), v in -1i16..8) {
            let _ = InitProducerIdResponse::decode(v, &mut Reader::new(&bytes));
            let _ = InitProducerIdRequest::decode(v, &mut Reader::new(&bytes));
        }

        #[test]
        fn prop_round_trip(v in 0i16..=5, tx in proptest::option::of("[a-z]{0,8}"), t in any::<i32>(), pid in any::<i64>(), ep in any::<i16>(), err in any::<i16>()) {
            let req = InitProducerIdRequest {
                transactional_id: tx.as_deref(),
                transaction_timeout_ms: t,
                producer_id: if v >= 3 { pid } else { -1 },
                producer_epoch: if v >= 3 { ep } else { -1 },
            };
            let bytes = encode(&req, v);
            prop_assert_eq!(InitProducerIdRequest::decode(v, &mut Reader::new(&bytes)), Ok(req));
            let resp = InitProducerIdResponse { throttle_time_ms: t, error_code: ErrorCode(err), producer_id: pid, producer_epoch: ep };
            prop_assert_eq!(InitProducerIdResponse::decode(v, &mut Reader::new(&encode(&resp, v))), Ok(resp));
        }
    }
}
