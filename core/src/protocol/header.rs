//! API keys, their versions, and the request and response headers.
//!
//! Source: Kafka's `RequestHeader.json` (v1: key, version, correlation id, client id; v2 adds
//! a tagged-field section) and `ResponseHeader.json` (v0: correlation id; v1 adds tagged
//! fields). A request uses header v2 exactly when its API version is flexible; a response
//! uses header v1 then, except ApiVersions responses, which always use v0 so that a client
//! can read the header of any version.

use core::fmt;
use core::ops::RangeInclusive;

use super::codec::{DecodeError, EncodeError, Reader, Writer, nullable_string_len};

/// Fails with `UnsupportedVersion` unless `api` supports `version`; else says whether the
/// version is flexible.
pub(crate) const fn check_decode(api: ApiKey, version: i16) -> Result<bool, DecodeError> {
    if api.supports(version) {
        Ok(api.is_flexible(version))
    } else {
        Err(DecodeError::UnsupportedVersion { version })
    }
}

/// [`check_decode`] for encoders.
pub(crate) const fn check_encode(api: ApiKey, version: i16) -> Result<bool, EncodeError> {
    if api.supports(version) {
        Ok(api.is_flexible(version))
    } else {
        Err(EncodeError::UnsupportedVersion { version })
    }
}

/// The versions in which a field exists: `min..=max`, as a schema's `"versions": "3+"` or
/// `"8-10"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldVersions {
    min: i16,
    max: i16,
}

impl FieldVersions {
    /// Present from `min` on (`"min+"`).
    pub(crate) const fn since(min: i16) -> Self {
        Self { min, max: i16::MAX }
    }

    /// Present in `min..=max` (`"min-max"`).
    pub(crate) const fn range(min: i16, max: i16) -> Self {
        Self { min, max }
    }

    /// Whether the field exists in `version`.
    #[inline]
    pub(crate) const fn has(self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

/// The Kafka APIs this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
#[non_exhaustive]
pub enum ApiKey {
    /// `Produce` (0).
    Produce = 0,
    /// `Metadata` (3).
    Metadata = 3,
    /// `FindCoordinator` (10).
    FindCoordinator = 10,
    /// `SaslHandshake` (17).
    SaslHandshake = 17,
    /// `ApiVersions` (18).
    ApiVersions = 18,
    /// `InitProducerId` (22).
    InitProducerId = 22,
    /// `AddPartitionsToTxn` (24).
    AddPartitionsToTxn = 24,
    /// `AddOffsetsToTxn` (25).
    AddOffsetsToTxn = 25,
    /// `EndTxn` (26).
    EndTxn = 26,
    /// `TxnOffsetCommit` (28).
    TxnOffsetCommit = 28,
    /// `SaslAuthenticate` (36).
    SaslAuthenticate = 36,
}

impl ApiKey {
    /// Every API this crate knows.
    pub const ALL: [Self; 11] = [
        Self::Produce,
        Self::Metadata,
        Self::FindCoordinator,
        Self::SaslHandshake,
        Self::ApiVersions,
        Self::InitProducerId,
        Self::AddPartitionsToTxn,
        Self::AddOffsetsToTxn,
        Self::EndTxn,
        Self::TxnOffsetCommit,
        Self::SaslAuthenticate,
    ];

    /// The key's number on the wire.
    pub const fn code(self) -> i16 {
        self as i16
    }

    /// The API with this number, if this crate knows it.
    pub const fn from_code(code: i16) -> Option<Self> {
        Some(match code {
            0 => Self::Produce,
            3 => Self::Metadata,
            10 => Self::FindCoordinator,
            17 => Self::SaslHandshake,
            18 => Self::ApiVersions,
            22 => Self::InitProducerId,
            24 => Self::AddPartitionsToTxn,
            25 => Self::AddOffsetsToTxn,
            26 => Self::EndTxn,
            28 => Self::TxnOffsetCommit,
            36 => Self::SaslAuthenticate,
            _ => return None,
        })
    }

    /// Kafka's name of the API.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Produce => "Produce",
            Self::Metadata => "Metadata",
            Self::FindCoordinator => "FindCoordinator",
            Self::SaslHandshake => "SaslHandshake",
            Self::ApiVersions => "ApiVersions",
            Self::InitProducerId => "InitProducerId",
            Self::AddPartitionsToTxn => "AddPartitionsToTxn",
            Self::AddOffsetsToTxn => "AddOffsetsToTxn",
            Self::EndTxn => "EndTxn",
            Self::TxnOffsetCommit => "TxnOffsetCommit",
            Self::SaslAuthenticate => "SaslAuthenticate",
        }
    }

    /// The versions this crate can encode and decode.
    ///
    /// The SASL messages themselves live in the transports; their ranges here are Kafka's.
    /// The transactional APIs reach transaction version 2 (KIP-890 part 2: EndTxn v5,
    /// TxnOffsetCommit v5), which the sender uses only when the cluster finalized
    /// `transaction.version` 2; AddPartitionsToTxn stops at v3 (v4+ is broker-to-broker),
    /// TxnOffsetCommit before v6 (topic ids).
    pub const fn supported_versions(self) -> RangeInclusive<i16> {
        match self {
            Self::Produce => 3..=13,
            Self::Metadata => 1..=13,
            Self::FindCoordinator => 0..=6,
            Self::AddPartitionsToTxn => 0..=3,
            Self::AddOffsetsToTxn => 0..=4,
            Self::EndTxn | Self::TxnOffsetCommit => 0..=5,
            Self::SaslHandshake => 0..=1,
            Self::ApiVersions => 0..=4,
            Self::InitProducerId => 0..=5,
            Self::SaslAuthenticate => 0..=2,
        }
    }

    /// Whether `version` is one of [`supported_versions`](Self::supported_versions).
    pub const fn supports(self, version: i16) -> bool {
        let r = self.supported_versions();
        *r.start() <= version && version <= *r.end()
    }

    /// The first flexible version (compact strings and arrays, tagged fields), from the
    /// schema's `flexibleVersions`.
    const fn first_flexible(self) -> i16 {
        match self {
            Self::Produce | Self::Metadata => 9,
            Self::ApiVersions => 3,
            Self::InitProducerId | Self::SaslAuthenticate => 2,
            Self::FindCoordinator
            | Self::AddPartitionsToTxn
            | Self::AddOffsetsToTxn
            | Self::EndTxn
            | Self::TxnOffsetCommit => 3,
            Self::SaslHandshake => i16::MAX,
        }
    }

    /// Whether `version` of this API is flexible.
    pub const fn is_flexible(self, version: i16) -> bool {
        version >= self.first_flexible()
    }

    /// Whether the broker, answering `version` of this API, sent the response at once and
    /// left the throttling (its `throttle_time_ms`, a quota) to the client, which then sends
    /// nothing more on that connection for that long (KIP-219; Java's
    /// `AbstractResponse.shouldClientThrottle`): Produce and Metadata from v6, ApiVersions
    /// and FindCoordinator from v2, InitProducerId and the transactional APIs from v1; the
    /// SASL APIs carry no throttle time.
    pub const fn client_throttles(self, version: i16) -> bool {
        let from = match self {
            Self::Produce | Self::Metadata => 6,
            Self::ApiVersions | Self::FindCoordinator => 2,
            Self::InitProducerId
            | Self::AddPartitionsToTxn
            | Self::AddOffsetsToTxn
            | Self::EndTxn
            | Self::TxnOffsetCommit => 1,
            Self::SaslHandshake | Self::SaslAuthenticate => return false,
        };
        version >= from
    }

    /// Whether `throttle_time_ms` is the first field of the response body of `version` of
    /// this API (every response decoded here but Produce's and ApiVersions'; Metadata's from
    /// v3, FindCoordinator's from v1), so it can be read without decoding the rest.
    pub const fn throttle_time_first(self, version: i16) -> bool {
        match self {
            Self::Metadata => version >= 3,
            Self::FindCoordinator => version >= 1,
            Self::InitProducerId
            | Self::AddPartitionsToTxn
            | Self::AddOffsetsToTxn
            | Self::EndTxn
            | Self::TxnOffsetCommit => true,
            Self::Produce | Self::ApiVersions | Self::SaslHandshake | Self::SaslAuthenticate => {
                false
            }
        }
    }

    /// The request header version for `version` of this API: 2 if flexible, else 1.
    pub const fn request_header_version(self, version: i16) -> i16 {
        if self.is_flexible(version) { 2 } else { 1 }
    }

    /// The response header version for `version` of this API: 1 if flexible, else 0;
    /// always 0 for ApiVersions.
    pub const fn response_header_version(self, version: i16) -> i16 {
        match self {
            Self::ApiVersions => 0,
            _ if self.is_flexible(version) => 1,
            _ => 0,
        }
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The header of every request (v1, or v2 with a tagged-field section for flexible
/// versions).
///
/// ```
/// use kafka_edge_core::protocol::{ApiKey, RequestHeader, Writer};
/// let h = RequestHeader::new(ApiKey::Metadata, 12, 7, Some("edge"));
/// let mut buf = [0u8; 32];
/// let mut w = Writer::new(&mut buf);
/// h.encode(&mut w)?;
/// assert_eq!(w.position(), h.encoded_len());
/// assert_eq!(w.written(), &[0, 3, 0, 12, 0, 0, 0, 7, 0, 4, b'e', b'd', b'g', b'e', 0]);
/// # Ok::<(), kafka_edge_core::protocol::EncodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader<'a> {
    /// The API key (see [`ApiKey`]).
    pub api_key: i16,
    /// The API version of the request.
    pub api_version: i16,
    /// Echoed by the broker in the response header.
    pub correlation_id: i32,
    /// `client.id`, always a classic `NULLABLE_STRING` (even in header v2).
    pub client_id: Option<&'a str>,
}

impl<'a> RequestHeader<'a> {
    /// A header for `version` of `api`.
    pub const fn new(
        api: ApiKey,
        api_version: i16,
        correlation_id: i32,
        client_id: Option<&'a str>,
    ) -> Self {
        Self {
            api_key: api.code(),
            api_version,
            correlation_id,
            client_id,
        }
    }

    /// The header version: 2 when the API is known and `api_version` is flexible, else 1.
    pub const fn header_version(&self) -> i16 {
        match ApiKey::from_code(self.api_key) {
            Some(api) => api.request_header_version(self.api_version),
            None => 1,
        }
    }

    const fn flexible(&self) -> bool {
        self.header_version() >= 2
    }

    /// Bytes [`encode`](Self::encode) writes.
    pub const fn encoded_len(&self) -> usize {
        8 + nullable_string_len(false, self.client_id) + self.flexible() as usize
    }

    /// Writes the header.
    pub fn encode(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_i16(self.api_key)?;
        w.write_i16(self.api_version)?;
        w.write_i32(self.correlation_id)?;
        w.write_nullable_string(self.client_id)?;
        w.write_empty_tagged_fields_in(self.flexible())
    }

    /// Reads a header; its version follows from the API key and version read (a key this
    /// crate does not know is read as header v1, and its body is the caller's to refuse).
    pub fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let header = Self {
            api_key: r.read_i16()?,
            api_version: r.read_i16()?,
            correlation_id: r.read_i32()?,
            client_id: r.read_nullable_string()?,
        };
        r.skip_tagged_fields_in(header.flexible())?;
        Ok(header)
    }
}

/// The header of every response: the correlation id (v0), plus tagged fields (v1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The correlation id of the request this answers.
    pub correlation_id: i32,
}

impl ResponseHeader {
    /// Bytes [`encode`](Self::encode) writes for `header_version` (0 or 1, see
    /// [`ApiKey::response_header_version`]).
    pub const fn encoded_len(&self, header_version: i16) -> usize {
        if header_version >= 1 { 5 } else { 4 }
    }

    /// Writes the header as `header_version`.
    pub fn encode(&self, header_version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_i32(self.correlation_id)?;
        w.write_empty_tagged_fields_in(header_version >= 1)
    }

    /// Reads a header of `header_version`, skipping any tagged fields.
    pub fn decode(header_version: i16, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let correlation_id = r.read_i32()?;
        r.skip_tagged_fields_in(header_version >= 1)?;
        Ok(Self { correlation_id })
    }

    /// Reads only the correlation id at the start of a response frame, to find its request
    /// before knowing its API (the id comes first in every header version).
    pub fn peek_correlation_id(frame: &[u8]) -> Result<i32, DecodeError> {
        Reader::new(frame).read_i32()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn test_client_throttle_versions() {
        // Java's `shouldClientThrottle` per response (KIP-219).
        for (api, from) in [
            (ApiKey::Produce, 6),
            (ApiKey::Metadata, 6),
            (ApiKey::ApiVersions, 2),
            (ApiKey::FindCoordinator, 2),
            (ApiKey::InitProducerId, 1),
            (ApiKey::AddPartitionsToTxn, 1),
            (ApiKey::AddOffsetsToTxn, 1),
            (ApiKey::EndTxn, 1),
            (ApiKey::TxnOffsetCommit, 1),
        ] {
            assert!(!api.client_throttles(from - 1), "{api} v{}", from - 1);
            assert!(api.client_throttles(from), "{api} v{from}");
        }
        assert!(!ApiKey::SaslAuthenticate.client_throttles(2));
        // Wherever the client throttles, the field is first or decoded by its handler.
        for api in ApiKey::ALL {
            for v in api.supported_versions() {
                if api.client_throttles(v) {
                    assert!(
                        api.throttle_time_first(v)
                            || matches!(api, ApiKey::Produce | ApiKey::ApiVersions),
                        "{api} v{v}"
                    );
                }
            }
        }
    }

    #[test]
    fn test_header_versions() {
        assert_eq!(ApiKey::Produce.request_header_version(8), 1);
        assert_eq!(ApiKey::Produce.request_header_version(9), 2);
        assert_eq!(ApiKey::Produce.response_header_version(9), 1);
        assert_eq!(ApiKey::ApiVersions.request_header_version(3), 2);
        assert_eq!(ApiKey::ApiVersions.response_header_version(4), 0);
        assert_eq!(ApiKey::InitProducerId.response_header_version(2), 1);
        assert_eq!(ApiKey::SaslHandshake.request_header_version(1), 1);
        for api in ApiKey::ALL {
            assert_eq!(ApiKey::from_code(api.code()), Some(api));
        }
        assert_eq!(ApiKey::from_code(1), None);
    }

    // Request header v1 for Produce v8, correlation id 1, client id "ab".
    const V1: &[u8] = &[0, 0, 0, 8, 0, 0, 0, 1, 0, 2, b'a', b'b'];
    // Request header v2 for ApiVersions v3, correlation id 258, null client id.
    const V2: &[u8] = &[0, 18, 0, 3, 0, 0, 1, 2, 0xff, 0xff, 0];

    #[test]
    fn test_parse_request_header() {
        let mut r = Reader::new(V1);
        let h = RequestHeader::decode(&mut r).unwrap();
        assert_eq!(h, RequestHeader::new(ApiKey::Produce, 8, 1, Some("ab")));
        assert!(r.is_empty());
        // Unknown tagged fields in a v2 header are skipped.
        let bytes = [0, 18, 0, 3, 0, 0, 1, 2, 0xff, 0xff, 1, 5, 1, 0xaa, 9];
        let mut r = Reader::new(&bytes);
        let h = RequestHeader::decode(&mut r).unwrap();
        assert_eq!(h, RequestHeader::new(ApiKey::ApiVersions, 3, 258, None));
        assert_eq!(r.rest(), &[9]);
    }

    #[test]
    fn test_emit_request_header() {
        for (h, bytes) in [
            (RequestHeader::new(ApiKey::Produce, 8, 1, Some("ab")), V1),
            (RequestHeader::new(ApiKey::ApiVersions, 3, 258, None), V2),
        ] {
            let mut buf = [0u8; 16];
            let mut w = Writer::new(&mut buf);
            h.encode(&mut w).unwrap();
            assert_eq!(w.written(), bytes);
            assert_eq!(h.encoded_len(), bytes.len());
        }
    }

    #[test]
    fn test_response_header_both_ways() {
        let h = ResponseHeader { correlation_id: 5 };
        for (v, bytes) in [(0, &[0u8, 0, 0, 5][..]), (1, &[0, 0, 0, 5, 0][..])] {
            let mut buf = [0u8; 8];
            let mut w = Writer::new(&mut buf);
            h.encode(v, &mut w).unwrap();
            assert_eq!(w.written(), bytes);
            assert_eq!(h.encoded_len(v), bytes.len());
            let mut r = Reader::new(bytes);
            assert_eq!(ResponseHeader::decode(v, &mut r), Ok(h));
            assert!(r.is_empty());
        }
        assert_eq!(
            ResponseHeader::peek_correlation_id(&[0, 0, 1, 0, 9]),
            Ok(256)
        );
    }

    proptest! {
        #[test]
        fn prop_request_header_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = RequestHeader::decode(&mut Reader::new(&bytes));
            let _ = ResponseHeader::decode(1, &mut Reader::new(&bytes));
        }

        #[test]
        fn prop_request_header_round_trip(key in prop::sample::select(&ApiKey::ALL[..]), v in 0i16..14, c in any::<i32>(), id in proptest::option::of("[a-z]{0,10}")) {
            let h = RequestHeader::new(key, v, c, id.as_deref());
            let mut buf = [0u8; 32];
            let mut w = Writer::new(&mut buf);
            h.encode(&mut w).unwrap();
            prop_assert_eq!(w.position(), h.encoded_len());
            let mut r = Reader::new(w.written());
            prop_assert_eq!(RequestHeader::decode(&mut r), Ok(h));
            prop_assert!(r.is_empty());
        }
    }
}
