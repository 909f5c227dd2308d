//! `FindCoordinator` (key 10), versions 0-6 (flexible from 3): the broker that coordinates a
//! transactional id (or a consumer group).
//!
//! Version notes from `FindCoordinatorRequest.json` / `FindCoordinatorResponse.json`: v1 adds
//! `key_type` and the throttle time and error message; v4 replaces the single `key` by a
//! batch of `coordinator_keys` and the single answer by one `Coordinator` per key (KIP-699);
//! v5 and v6 only add error codes and the share-group key type.

use super::codec::{
    Array, DecodeError, EncodeError, Message, Reader, Writer, empty_tagged_fields_len,
    nullable_string_len,
};
use super::error::ErrorCode;
use super::header::{ApiKey, FieldVersions, check_decode, check_encode};

const API: ApiKey = ApiKey::FindCoordinator;

mod field {
    use super::FieldVersions;
    pub(super) const SINGLE_KEY: FieldVersions = FieldVersions::range(0, 3);
    pub(super) const KEY_TYPE: FieldVersions = FieldVersions::since(1);
    pub(super) const COORDINATOR_KEYS: FieldVersions = FieldVersions::since(4);
    pub(super) const THROTTLE_TIME: FieldVersions = FieldVersions::since(1);
    pub(super) const ERROR_MESSAGE: FieldVersions = FieldVersions::range(1, 3);
}

/// One key of a batched request (v4+): a transactional id or a group id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinatorKey<'a>(pub &'a str);

impl<'a> Message<'a> for CoordinatorKey<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        nullable_string_len(API.is_flexible(version), Some(self.0))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_string_in(API.is_flexible(version), self.0)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.read_string_in(API.is_flexible(version)).map(Self)
    }
}

/// `FindCoordinatorRequest`.
///
/// Build one with [`FindCoordinatorRequest::new`], which fills the single `key` (v0-3) and
/// the `coordinator_keys` batch (v4+) from the same key, so that one value encodes at any
/// version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindCoordinatorRequest<'a> {
    /// The coordinator key (v0-3; empty in v4+).
    pub key: &'a str,
    /// [`FindCoordinatorRequest::KEY_TYPE_GROUP`] or
    /// [`FindCoordinatorRequest::KEY_TYPE_TRANSACTION`] (v1+; v0 only knows groups).
    pub key_type: i8,
    /// The coordinator keys (v4+; empty before).
    pub coordinator_keys: Array<'a, CoordinatorKey<'a>>,
}

impl<'a> FindCoordinatorRequest<'a> {
    /// Key type of a consumer group.
    pub const KEY_TYPE_GROUP: i8 = 0;
    /// Key type of a transactional id.
    pub const KEY_TYPE_TRANSACTION: i8 = 1;

    /// A request for the coordinator of `key` (`keys` holds the same key for v4+).
    pub const fn new(key_type: i8, key: &'a CoordinatorKey<'a>) -> Self {
        Self {
            key: key.0,
            key_type,
            coordinator_keys: Array::from_slice(core::slice::from_ref(key)),
        }
    }
}

impl<'a> Message<'a> for FindCoordinatorRequest<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        let mut n = empty_tagged_fields_len(flexible);
        if field::SINGLE_KEY.has(version) {
            n += nullable_string_len(flexible, Some(self.key));
        }
        if field::KEY_TYPE.has(version) {
            n += 1;
        }
        if field::COORDINATOR_KEYS.has(version) {
            n = n.saturating_add(self.coordinator_keys.encoded_len(version, flexible));
        }
        n
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        if field::SINGLE_KEY.has(version) {
            w.write_string_in(flexible, self.key)?;
        }
        if field::KEY_TYPE.has(version) {
            w.write_i8(self.key_type)?;
        } else if self.key_type != Self::KEY_TYPE_GROUP {
            // v0 cannot ask for a transaction coordinator (Kafka refuses to downgrade too).
            return Err(EncodeError::UnsupportedVersion { version });
        }
        if field::COORDINATOR_KEYS.has(version) {
            self.coordinator_keys.encode(version, flexible, w)?;
        }
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let mut req = Self {
            key: "",
            key_type: Self::KEY_TYPE_GROUP,
            coordinator_keys: Array::EMPTY,
        };
        if field::SINGLE_KEY.has(version) {
            req.key = r.read_string_in(flexible)?;
        }
        if field::KEY_TYPE.has(version) {
            req.key_type = r.read_i8()?;
        }
        if field::COORDINATOR_KEYS.has(version) {
            req.coordinator_keys = Array::decode(version, flexible, r)?;
        }
        r.skip_tagged_fields_in(flexible)?;
        Ok(req)
    }
}

/// One coordinator of a v4+ response, or the single answer of v0-3 (then `key` is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coordinator<'a> {
    /// The coordinator key this answers.
    pub key: &'a str,
    /// The coordinator's node id (`-1` on error).
    pub node_id: i32,
    /// The coordinator's host.
    pub host: &'a str,
    /// The coordinator's port.
    pub port: i32,
    /// The error, `NONE` on success.
    pub error_code: ErrorCode,
    /// The broker's message for the error, if any.
    pub error_message: Option<&'a str>,
}

impl<'a> Message<'a> for Coordinator<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        nullable_string_len(flexible, Some(self.key))
            + nullable_string_len(flexible, Some(self.host))
            + 10
            + nullable_string_len(flexible, self.error_message)
            + empty_tagged_fields_len(flexible)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = API.is_flexible(version);
        w.write_string_in(flexible, self.key)?;
        w.write_i32(self.node_id)?;
        w.write_string_in(flexible, self.host)?;
        w.write_i32(self.port)?;
        w.write_i16(self.error_code.0)?;
        w.write_nullable_string_in(flexible, self.error_message)?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = API.is_flexible(version);
        let c = Self {
            key: r.read_string_in(flexible)?,
            node_id: r.read_i32()?,
            host: r.read_string_in(flexible)?,
            port: r.read_i32()?,
            error_code: ErrorCode(r.read_i16()?),
            error_message: r.read_nullable_string_in(flexible)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(c)
    }
}

/// `FindCoordinatorResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindCoordinatorResponse<'a> {
    /// Throttle time (v1+; 0 before).
    pub throttle_time_ms: i32,
    /// The single answer of v0-3 (its `key` is empty); unused in v4+.
    pub single: Coordinator<'a>,
    /// One answer per key (v4+; empty before).
    pub coordinators: Array<'a, Coordinator<'a>>,
}

impl<'a> FindCoordinatorResponse<'a> {
    /// The answer for `key` whatever the version: the single answer of v0-3, or the entry
    /// of `coordinators` with that key in v4+.
    pub fn coordinator_for(&self, version: i16, key: &str) -> Option<Coordinator<'a>> {
        if field::COORDINATOR_KEYS.has(version) {
            self.coordinators.iter().find(|c| c.key == key)
        } else {
            Some(self.single)
        }
    }
}

impl<'a> Message<'a> for FindCoordinatorResponse<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        let mut n = empty_tagged_fields_len(flexible);
        if field::THROTTLE_TIME.has(version) {
            n += 4;
        }
        if field::SINGLE_KEY.has(version) {
            n += 10 + nullable_string_len(flexible, Some(self.single.host));
            if field::ERROR_MESSAGE.has(version) {
                n += nullable_string_len(flexible, self.single.error_message);
            }
        }
        if field::COORDINATOR_KEYS.has(version) {
            n = n.saturating_add(self.coordinators.encoded_len(version, flexible));
        }
        n
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        if field::THROTTLE_TIME.has(version) {
            w.write_i32(self.throttle_time_ms)?;
        }
        if field::SINGLE_KEY.has(version) {
            w.write_i16(self.single.error_code.0)?;
            if field::ERROR_MESSAGE.has(version) {
                w.write_nullable_string_in(flexible, self.single.error_message)?;
            }
            w.write_i32(self.single.node_id)?;
            w.write_string_in(flexible, self.single.host)?;
            w.write_i32(self.single.port)?;
        }
        if field::COORDINATOR_KEYS.has(version) {
            self.coordinators.encode(version, flexible, w)?;
        }
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let mut resp = Self {
            throttle_time_ms: 0,
            single: Coordinator {
                key: "",
                node_id: -1,
                host: "",
                port: -1,
                error_code: ErrorCode::NONE,
                error_message: None,
            },
            coordinators: Array::EMPTY,
        };
        if field::THROTTLE_TIME.has(version) {
            resp.throttle_time_ms = r.read_i32()?;
        }
        if field::SINGLE_KEY.has(version) {
            resp.single.error_code = ErrorCode(r.read_i16()?);
            if field::ERROR_MESSAGE.has(version) {
                resp.single.error_message = r.read_nullable_string_in(flexible)?;
            }
            resp.single.node_id = r.read_i32()?;
            resp.single.host = r.read_string_in(flexible)?;
            resp.single.port = r.read_i32()?;
        }
        if field::COORDINATOR_KEYS.has(version) {
            resp.coordinators = Array::decode(version, flexible, r)?;
        }
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

    const REQ_V1: &[u8] = &[0, 2, b't', b'x', 1];
    const REQ_V4: &[u8] = &[1, 2, 3, b't', b'x', 0];

    #[test]
    fn test_request_both_ways() {
        let key = CoordinatorKey("tx");
        let req = FindCoordinatorRequest::new(FindCoordinatorRequest::KEY_TYPE_TRANSACTION, &key);
        assert_eq!(encode(&req, 1), REQ_V1);
        let v1 = FindCoordinatorRequest::decode(1, &mut Reader::new(REQ_V1)).unwrap();
        assert_eq!((v1.key, v1.key_type), ("tx", 1));
        assert_eq!(encode(&req, 4), REQ_V4);
        let v4 = FindCoordinatorRequest::decode(4, &mut Reader::new(REQ_V4)).unwrap();
        assert_eq!(v4.key_type, 1);
        assert_eq!(
            v4.coordinator_keys.iter().collect::<std::vec::Vec<_>>(),
            [key]
        );
        // v0 has no key type: a transaction coordinator cannot be asked for.
        let mut buf = [0u8; 16];
        assert_eq!(
            req.encode(0, &mut Writer::new(&mut buf)),
            Err(EncodeError::UnsupportedVersion { version: 0 })
        );
    }

    const RESP_V2: &[u8] = &[
        0, 0, 0, 0, // throttle
        0, 0, // error
        0xff, 0xff, // null message
        0, 0, 0, 2, // node 2
        0, 9, b'1', b'2', b'7', b'.', b'0', b'.', b'0', b'.', b'1', // host
        0, 0, 0x23, 0x84, // port 9092
    ];
    const RESP_V4: &[u8] = &[
        0, 0, 0, 0, // throttle
        2, // one coordinator
        3, b't', b'x', // key
        0xff, 0xff, 0xff, 0xff, // node -1
        1,    // host ""
        0xff, 0xff, 0xff, 0xff, // port -1
        0, 15, // COORDINATOR_NOT_AVAILABLE
        1,  // null message
        0,  // tags
        0,  // tags
    ];

    #[test]
    fn test_response_both_ways() {
        let resp = FindCoordinatorResponse::decode(2, &mut Reader::new(RESP_V2)).unwrap();
        let c = resp.coordinator_for(2, "ignored").unwrap();
        assert_eq!(
            (c.node_id, c.host, c.port, c.error_code),
            (2, "127.0.0.1", 9092, ErrorCode::NONE)
        );
        assert_eq!(encode(&resp, 2), RESP_V2);
        let resp = FindCoordinatorResponse::decode(4, &mut Reader::new(RESP_V4)).unwrap();
        assert_eq!(encode(&resp, 4), RESP_V4);
        let c = resp.coordinator_for(4, "tx").unwrap();
        assert_eq!(
            (c.node_id, c.error_code),
            (-1, ErrorCode::COORDINATOR_NOT_AVAILABLE)
        );
        assert_eq!(resp.coordinator_for(4, "other"), None);
    }

    proptest! {
        #[test]
        fn prop_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), v in -1i16..8) {
            let _ = FindCoordinatorResponse::decode(v, &mut Reader::new(&bytes));
            let _ = FindCoordinatorRequest::decode(v, &mut Reader::new(&bytes));
        }

        #[test]
        fn prop_round_trip(v in 1i16..=6, key in "[a-z]{0,8}", host in "[a-z.]{0,8}", node in any::<i32>(), port in any::<i32>(), err in any::<i16>(), msg in proptest::option::of("[a-z]{0,8}")) {
            let k = CoordinatorKey(&key);
            let req = FindCoordinatorRequest::new(1, &k);
            let bytes = encode(&req, v);
            let back = FindCoordinatorRequest::decode(v, &mut Reader::new(&bytes)).unwrap();
            prop_assert_eq!(encode(&back, v), bytes);
            let c = Coordinator { key: &key, node_id: node, host: &host, port, error_code: ErrorCode(err), error_message: msg.as_deref() };
            let items = [c];
            let resp = FindCoordinatorResponse { throttle_time_ms: 3, single: Coordinator { key: "", ..c }, coordinators: Array::from_slice(&items) };
            let bytes = encode(&resp, v);
            let back = FindCoordinatorResponse::decode(v, &mut Reader::new(&bytes)).unwrap();
            let mut want = c;
            if v < 4 { want.key = ""; }
            if v < 1 { want.error_message = None; }
            prop_assert_eq!(back.coordinator_for(v, &key), Some(want));
        }
    }
}
