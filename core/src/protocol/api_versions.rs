//! `ApiVersions` (key 18), versions 0-4 (flexible from 3): which versions of which APIs the
//! broker supports.
//!
//! A broker that does not support the request's version answers with a v0 body carrying
//! `UNSUPPORTED_VERSION` and its own ApiVersions range; [`ApiVersionsResponse::decode_with_fallback`]
//! reads such an answer as Java's client does.
//!
//! Of the tagged fields of v3+ the response keeps what the producer needs and nothing that
//! would take heap: the finalized features' epoch (tag 1) and the finalized level of
//! `transaction.version` (tag 2), which says whether the cluster speaks transaction version
//! 2 (KIP-890). The supported features (tag 0) and the rest are skipped.

use core::ops::RangeInclusive;

use super::codec::{
    Array, DecodeError, EncodeError, Message, Reader, Writer, empty_tagged_fields_len,
    nullable_string_len,
};
use super::error::ErrorCode;
use super::header::{ApiKey, FieldVersions, check_decode, check_encode};

const API: ApiKey = ApiKey::ApiVersions;

mod field {
    use super::FieldVersions;
    pub(super) const CLIENT_SOFTWARE: FieldVersions = FieldVersions::since(3);
    pub(super) const THROTTLE_TIME_MS: FieldVersions = FieldVersions::since(1);
}

/// The highest version in both `ours` and `theirs_min..=theirs_max`, if any.
///
/// ```
/// use kafka_edge_core::protocol::negotiate;
/// assert_eq!(negotiate(3..=13, 0, 11), Some(11));
/// assert_eq!(negotiate(3..=13, 0, 2), None);
/// ```
pub fn negotiate(ours: RangeInclusive<i16>, theirs_min: i16, theirs_max: i16) -> Option<i16> {
    let max = (*ours.end()).min(theirs_max);
    (max >= *ours.start() && max >= theirs_min).then_some(max)
}

/// `ApiVersionsRequest`: the client names itself (v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApiVersionsRequest<'a> {
    /// `client.software.name` (v3+), e.g. `"kafka-edge"`.
    pub client_software_name: &'a str,
    /// `client.software.version` (v3+).
    pub client_software_version: &'a str,
}

impl<'a> Message<'a> for ApiVersionsRequest<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        let mut n = empty_tagged_fields_len(flexible);
        if field::CLIENT_SOFTWARE.has(version) {
            n += nullable_string_len(flexible, Some(self.client_software_name))
                + nullable_string_len(flexible, Some(self.client_software_version));
        }
        n
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        if field::CLIENT_SOFTWARE.has(version) {
            w.write_string_in(flexible, self.client_software_name)?;
            w.write_string_in(flexible, self.client_software_version)?;
        }
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let mut req = Self::default();
        if field::CLIENT_SOFTWARE.has(version) {
            req.client_software_name = r.read_string_in(flexible)?;
            req.client_software_version = r.read_string_in(flexible)?;
        }
        r.skip_tagged_fields_in(flexible)?;
        Ok(req)
    }
}

/// One API the broker supports, with its version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion {
    /// The API key.
    pub api_key: i16,
    /// Lowest supported version.
    pub min_version: i16,
    /// Highest supported version.
    pub max_version: i16,
}

impl Message<'_> for ApiVersion {
    fn encoded_len(&self, version: i16) -> usize {
        6 + empty_tagged_fields_len(API.is_flexible(version))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_i16(self.api_key)?;
        w.write_i16(self.min_version)?;
        w.write_i16(self.max_version)?;
        w.write_empty_tagged_fields_in(API.is_flexible(version))
    }

    fn decode(version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let v = Self {
            api_key: r.read_i16()?,
            min_version: r.read_i16()?,
            max_version: r.read_i16()?,
        };
        r.skip_tagged_fields_in(API.is_flexible(version))?;
        Ok(v)
    }
}

/// The finalized feature that names the transaction protocol (KIP-890).
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";

/// Tags of the top-level tagged fields of v3+.
const TAG_FINALIZED_FEATURES_EPOCH: u32 = 1;
const TAG_FINALIZED_FEATURES: u32 = 2;

/// `ApiVersionsResponse`. Of the tagged fields of v3+ only the finalized features' epoch
/// and the finalized `transaction.version` level are kept (and written back by `encode`);
/// the supported features and the ZK migration flag are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersionsResponse<'a> {
    /// Top-level error; `UNSUPPORTED_VERSION` when the broker does not speak our version.
    pub error_code: ErrorCode,
    /// The APIs the broker supports.
    pub api_keys: Array<'a, ApiVersion>,
    /// Throttle time (v1+; 0 otherwise).
    pub throttle_time_ms: i32,
    /// The epoch of the finalized features (tag 1 of v3+); -1 when absent.
    pub finalized_features_epoch: i64,
    /// The finalized `MaxVersionLevel` of [`TRANSACTION_VERSION_FEATURE`] (tag 2 of v3+); 0
    /// when the feature is not finalized (or the version has no features). 2 and above is
    /// transaction version 2.
    pub transaction_version: i16,
}

impl<'a> ApiVersionsResponse<'a> {
    /// The broker's range for `api_key`, if it listed it.
    pub fn find(&self, api_key: i16) -> Option<ApiVersion> {
        self.api_keys.iter().find(|v| v.api_key == api_key)
    }

    /// The highest version of `api` both the broker and this crate support.
    pub fn negotiate(&self, api: ApiKey) -> Option<i16> {
        let theirs = self.find(api.code())?;
        negotiate(
            api.supported_versions(),
            theirs.min_version,
            theirs.max_version,
        )
    }

    /// The bytes of the finalized features' tagged field (tag 2): a compact array with
    /// `transaction.version` in it.
    const FINALIZED_FEATURES_LEN: usize =
        // Array length, name (length and bytes), MaxVersionLevel, MinVersionLevel, tags.
        1 + 1 + TRANSACTION_VERSION_FEATURE.len() + 2 + 2 + 1;

    /// The top-level tagged fields written back: the epoch unless it is the default (-1),
    /// the feature unless it is absent (0).
    const fn tagged_fields(&self) -> (bool, bool) {
        (
            self.finalized_features_epoch != -1,
            self.transaction_version != 0,
        )
    }

    /// Reads the top-level tagged fields of v3+.
    fn read_features(&mut self, r: &mut Reader<'a>) -> Result<(), DecodeError> {
        for field in r.read_tagged_fields()? {
            let mut f = Reader::new(field.data);
            match field.tag {
                TAG_FINALIZED_FEATURES_EPOCH => self.finalized_features_epoch = f.read_i64()?,
                TAG_FINALIZED_FEATURES => {
                    let count = f.read_compact_array_len()?.unwrap_or(0);
                    for _ in 0..count {
                        let name = f.read_compact_string()?;
                        let max_level = f.read_i16()?;
                        let _min_level = f.read_i16()?;
                        f.skip_tagged_fields()?;
                        if name == TRANSACTION_VERSION_FEATURE {
                            self.transaction_version = max_level;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads a response to a request of `version`, falling back to v0 when that fails, as
    /// Java's `ApiVersionsResponse.parse` does: a broker that does not support `version`
    /// answers with a v0 body (`UNSUPPORTED_VERSION` and its own ApiVersions range). Returns
    /// the response and the version it was read as.
    pub fn decode_with_fallback(version: i16, body: &'a [u8]) -> Result<(Self, i16), DecodeError> {
        match Self::decode(version, &mut Reader::new(body)) {
            Ok(resp) => Ok((resp, version)),
            Err(e) if version == 0 => Err(e),
            Err(_) => Self::decode(0, &mut Reader::new(body)).map(|resp| (resp, 0)),
        }
    }
}

impl<'a> Message<'a> for ApiVersionsResponse<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        2 + self.api_keys.encoded_len(version, flexible)
            + if field::THROTTLE_TIME_MS.has(version) {
                4
            } else {
                0
            }
            + if flexible {
                // The count, then tag, size and value of each field.
                let (epoch, feature) = self.tagged_fields();
                1 + if epoch { 2 + 8 } else { 0 }
                    + if feature {
                        2 + Self::FINALIZED_FEATURES_LEN
                    } else {
                        0
                    }
            } else {
                0
            }
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_i16(self.error_code.0)?;
        self.api_keys.encode(version, flexible, w)?;
        if field::THROTTLE_TIME_MS.has(version) {
            w.write_i32(self.throttle_time_ms)?;
        }
        if !flexible {
            return Ok(());
        }
        let (epoch, feature) = self.tagged_fields();
        w.write_unsigned_varint(u32::from(epoch) + u32::from(feature))?;
        if epoch {
            w.write_unsigned_varint(TAG_FINALIZED_FEATURES_EPOCH)?;
            w.write_unsigned_varint(8)?;
            w.write_i64(self.finalized_features_epoch)?;
        }
        if feature {
            w.write_unsigned_varint(TAG_FINALIZED_FEATURES)?;
            w.write_unsigned_varint(Self::FINALIZED_FEATURES_LEN as u32)?;
            w.write_compact_array_len(Some(1))?;
            w.write_compact_string(TRANSACTION_VERSION_FEATURE)?;
            w.write_i16(self.transaction_version)?;
            w.write_i16(self.transaction_version)?;
            w.write_empty_tagged_fields_in(true)?;
        }
        Ok(())
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let error_code = ErrorCode(r.read_i16()?);
        let api_keys = Array::decode(version, flexible, r)?;
        let throttle_time_ms = if field::THROTTLE_TIME_MS.has(version) {
            r.read_i32()?
        } else {
            0
        };
        let mut resp = Self {
            error_code,
            api_keys,
            throttle_time_ms,
            finalized_features_epoch: -1,
            transaction_version: 0,
        };
        if flexible {
            resp.read_features(r)?;
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    use crate::protocol::testing::encode;

    const REQ_V3: &[u8] = &[
        0x05, b'e', b'd', b'g', b'e', // client_software_name "edge"
        0x04, b'0', b'.', b'1', // client_software_version "0.1"
        0x00, // tagged fields
    ];

    #[test]
    fn test_request_both_ways() {
        let req = ApiVersionsRequest {
            client_software_name: "edge",
            client_software_version: "0.1",
        };
        assert_eq!(encode(&req, 3), REQ_V3);
        assert_eq!(
            ApiVersionsRequest::decode(3, &mut Reader::new(REQ_V3)),
            Ok(req)
        );
        // v0-v2 have an empty body.
        assert_eq!(encode(&req, 2), &[] as &[u8]);
        assert_eq!(
            ApiVersionsRequest::decode(0, &mut Reader::new(&[])),
            Ok(ApiVersionsRequest::default())
        );
        assert_eq!(
            ApiVersionsRequest::decode(5, &mut Reader::new(&[])),
            Err(DecodeError::UnsupportedVersion { version: 5 })
        );
    }

    const KEYS: [ApiVersion; 2] = [
        ApiVersion {
            api_key: 0,
            min_version: 3,
            max_version: 11,
        },
        ApiVersion {
            api_key: 18,
            min_version: 0,
            max_version: 4,
        },
    ];

    const RESP_V1: &[u8] = &[
        0x00, 0x00, // error_code
        0x00, 0x00, 0x00, 0x02, // api_keys: 2
        0x00, 0x00, 0x00, 0x03, 0x00, 0x0b, // Produce 3..=11
        0x00, 0x12, 0x00, 0x00, 0x00, 0x04, // ApiVersions 0..=4
        0x00, 0x00, 0x00, 0x07, // throttle_time_ms
    ];

    const RESP_V3: &[u8] = &[
        0x00, 0x00, // error_code
        0x03, // api_keys: 2
        0x00, 0x00, 0x00, 0x03, 0x00, 0x0b, 0x00, // Produce 3..=11
        0x00, 0x12, 0x00, 0x00, 0x00, 0x04, 0x00, // ApiVersions 0..=4
        0x00, 0x00, 0x00, 0x07, // throttle_time_ms
        0x00, // tagged fields
    ];

    #[test]
    fn test_response_both_ways() {
        let resp = ApiVersionsResponse {
            error_code: ErrorCode::NONE,
            api_keys: Array::from_slice(&KEYS),
            throttle_time_ms: 7,
            finalized_features_epoch: -1,
            transaction_version: 0,
        };
        for (v, bytes) in [(1, RESP_V1), (3, RESP_V3)] {
            assert_eq!(encode(&resp, v), bytes);
            let mut r = Reader::new(bytes);
            assert_eq!(ApiVersionsResponse::decode(v, &mut r), Ok(resp));
            assert!(r.is_empty());
        }
        assert_eq!(resp.negotiate(ApiKey::Produce), Some(11));
        assert_eq!(resp.negotiate(ApiKey::Metadata), None);
    }

    #[test]
    fn test_unknown_tagged_fields_are_skipped() {
        // RESP_V3 with a top-level tagged section holding tag 1 (FinalizedFeaturesEpoch,
        // 8 bytes) and an unknown tag 9 (1 byte).
        let mut bytes = RESP_V3[..RESP_V3.len() - 1].to_vec();
        bytes.extend_from_slice(&[0x02, 0x01, 0x08, 0, 0, 0, 0, 0, 0, 0, 5, 0x09, 0x01, 0xff]);
        let resp = ApiVersionsResponse::decode(3, &mut Reader::new(&bytes)).unwrap();
        assert_eq!(resp.api_keys.iter().collect::<Vec<_>>(), KEYS);
        assert_eq!(resp.finalized_features_epoch, 5);
        assert_eq!(resp.transaction_version, 0, "no finalized features");
    }

    #[test]
    fn test_finalized_transaction_version() {
        // RESP_V3 with the tagged fields of a Kafka 4.4 node: supported features (tag 0),
        // the finalized features' epoch (tag 1) and two finalized features (tag 2).
        let mut bytes = RESP_V3[..RESP_V3.len() - 1].to_vec();
        bytes.push(3); // three tagged fields
        let supported = [&[0x02, 0x14][..], b"transaction.version", &[0, 0, 0, 2, 0]].concat();
        bytes.extend_from_slice(&[0x00, supported.len() as u8]);
        bytes.extend_from_slice(&supported);
        bytes.extend_from_slice(&[0x01, 0x08, 0, 0, 0, 0, 0, 0, 0x01, 0x2c]);
        let finalized = [
            &[0x03, 0x11][..],
            b"metadata.version",
            &[0, 29, 0, 29, 0, 0x14],
            b"transaction.version",
            &[0, 2, 0, 2, 0],
        ]
        .concat();
        bytes.extend_from_slice(&[0x02, finalized.len() as u8]);
        bytes.extend_from_slice(&finalized);
        let mut r = Reader::new(&bytes);
        let resp = ApiVersionsResponse::decode(3, &mut r).unwrap();
        assert!(r.is_empty());
        assert_eq!(resp.finalized_features_epoch, 300);
        assert_eq!(resp.transaction_version, 2);
        // What `encode` writes back keeps the two (and only the one feature).
        let again = encode(&resp, 3);
        assert_eq!(
            ApiVersionsResponse::decode(3, &mut Reader::new(&again)),
            Ok(resp)
        );
        assert_eq!(again.len(), resp.encoded_len(3));
        // A truncated feature is an error, not a panic or a default.
        let cut = &bytes[..bytes.len() - 3];
        assert!(ApiVersionsResponse::decode(3, &mut Reader::new(cut)).is_err());
    }

    #[test]
    fn test_unsupported_version_falls_back_to_v0() {
        // A v0 body: UNSUPPORTED_VERSION and the broker's ApiVersions range 0..=2.
        let body = [0x00, 0x23, 0, 0, 0, 1, 0x00, 0x12, 0x00, 0x00, 0x00, 0x02];
        let (resp, v) = ApiVersionsResponse::decode_with_fallback(4, &body).unwrap();
        assert_eq!(v, 0);
        assert_eq!(resp.error_code, ErrorCode::UNSUPPORTED_VERSION);
        assert_eq!(resp.find(18).map(|k| k.max_version), Some(2));
        assert_eq!(resp.negotiate(ApiKey::ApiVersions), Some(2));
    }

    #[test]
    fn test_negotiate() {
        assert_eq!(negotiate(0..=4, 0, 3), Some(3));
        assert_eq!(negotiate(0..=4, 0, 9), Some(4));
        assert_eq!(negotiate(3..=4, 5, 9), None);
        assert_eq!(negotiate(5..=9, 0, 4), None);
    }

    proptest! {
        #[test]
        fn prop_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), v in -1i16..6) {
            if let Ok(resp) = ApiVersionsResponse::decode(v, &mut Reader::new(&bytes)) {
                // Iterating a decoded array never fails or panics.
                prop_assert_eq!(resp.api_keys.iter().count(), resp.api_keys.len());
                // What was kept re-encodes to itself (the fuzz target's check).
                let again = encode(&resp, v);
                prop_assert_eq!(again.len(), resp.encoded_len(v));
                prop_assert_eq!(ApiVersionsResponse::decode(v, &mut Reader::new(&again)), Ok(resp));
            }
            let _ = ApiVersionsRequest::decode(v, &mut Reader::new(&bytes));
            let _ = ApiVersionsResponse::decode_with_fallback(v, &bytes);
        }

        #[test]
        fn prop_response_round_trip(keys in proptest::collection::vec((any::<i16>(), any::<i16>(), any::<i16>()), 0..8), err in any::<i16>(), t in any::<i32>(), v in 0i16..=4, epoch in -2i64..3, tv in -2i16..3) {
            let keys: Vec<_> = keys.into_iter().map(|(api_key, min_version, max_version)| ApiVersion { api_key, min_version, max_version }).collect();
            let resp = ApiVersionsResponse { error_code: ErrorCode(err), api_keys: Array::from_slice(&keys), throttle_time_ms: if v >= 1 { t } else { 0 }, finalized_features_epoch: if v >= 3 { epoch } else { -1 }, transaction_version: if v >= 3 { tv } else { 0 } };
            let bytes = encode(&resp, v);
            let mut r = Reader::new(&bytes);
            prop_assert_eq!(ApiVersionsResponse::decode(v, &mut r), Ok(resp));
            prop_assert!(r.is_empty());
        }

        #[test]
        fn prop_request_round_trip(name in "[a-z.-]{0,12}", ver in "[0-9.]{0,8}", v in 0i16..=4) {
            let req = ApiVersionsRequest { client_software_name: &name, client_software_version: &ver };
            let bytes = encode(&req, v);
            let expect = if v >= 3 { req } else { ApiVersionsRequest::default() };
            prop_assert_eq!(ApiVersionsRequest::decode(v, &mut Reader::new(&bytes)), Ok(expect));
        }
    }
}
