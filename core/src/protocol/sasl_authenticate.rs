//! `SaslAuthenticate` (key 36), versions 0-2 (flexible from 2): one SASL token from the client,
//! one from the broker (KIP-152).
//!
//! Version notes from `SaslAuthenticateRequest.json` / `SaslAuthenticateResponse.json`: v1
//! adds `session_lifetime_ms` to the response (KIP-368 re-authentication); v2 is the first
//! flexible version (request header v2, response header v1). The request has one field in
//! every version.

use super::codec::{
    DecodeError, EncodeError, Message, Reader, Writer, empty_tagged_fields_len, nullable_bytes_len,
    nullable_string_len,
};
use super::error::ErrorCode;
use super::header::{ApiKey, FieldVersions, check_decode, check_encode};

const API: ApiKey = ApiKey::SaslAuthenticate;

mod field {
    use super::FieldVersions;
    pub(super) const SESSION_LIFETIME_MS: FieldVersions = FieldVersions::since(1);
}

/// Reads a non-nullable `BYTES` (compact when `flexible`).
fn read_bytes_in<'a>(r: &mut Reader<'a>, flexible: bool) -> Result<&'a [u8], DecodeError> {
    r.read_nullable_bytes_in(flexible)?
        .ok_or(DecodeError::UnexpectedNull)
}

/// `SaslAuthenticateRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslAuthenticateRequest<'a> {
    /// The client's SASL token, as the mechanism defines it (for example a SCRAM
    /// client-first message; see `crate::sasl` with feature `sasl`).
    pub auth_bytes: &'a [u8],
}

impl<'a> Message<'a> for SaslAuthenticateRequest<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        nullable_bytes_len(flexible, Some(self.auth_bytes.len()))
            .saturating_add(empty_tagged_fields_len(flexible))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_nullable_bytes_in(flexible, Some(self.auth_bytes))?;
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let req = Self {
            auth_bytes: read_bytes_in(r, flexible)?,
        };
        r.skip_tagged_fields_in(flexible)?;
        Ok(req)
    }
}

/// `SaslAuthenticateResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslAuthenticateResponse<'a> {
    /// `NONE`, or why the broker refused the token (`SASL_AUTHENTICATION_FAILED`,
    /// `ILLEGAL_SASL_STATE`); the connection is then closed by the broker.
    pub error_code: ErrorCode,
    /// The broker's explanation; `None` when there was no error.
    pub error_message: Option<&'a str>,
    /// The broker's SASL token, as the mechanism defines it (empty when it has none).
    pub auth_bytes: &'a [u8],
    /// How long the authenticated session lasts, in milliseconds, before the client must
    /// re-authenticate (KIP-368); `0` for no limit, and always `0` before v1.
    pub session_lifetime_ms: i64,
}

impl<'a> Message<'a> for SaslAuthenticateResponse<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        let flexible = API.is_flexible(version);
        2usize
            .saturating_add(nullable_string_len(flexible, self.error_message))
            .saturating_add(nullable_bytes_len(flexible, Some(self.auth_bytes.len())))
            .saturating_add(if field::SESSION_LIFETIME_MS.has(version) {
                8
            } else {
                0
            })
            .saturating_add(empty_tagged_fields_len(flexible))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        let flexible = check_encode(API, version)?;
        w.write_i16(self.error_code.0)?;
        w.write_nullable_string_in(flexible, self.error_message)?;
        w.write_nullable_bytes_in(flexible, Some(self.auth_bytes))?;
        if field::SESSION_LIFETIME_MS.has(version) {
            w.write_i64(self.session_lifetime_ms)?;
        }
        w.write_empty_tagged_fields_in(flexible)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let flexible = check_decode(API, version)?;
        let mut resp = Self {
            error_code: ErrorCode(r.read_i16()?),
            error_message: r.read_nullable_string_in(flexible)?,
            auth_bytes: read_bytes_in(r, flexible)?,
            session_lifetime_ms: 0,
        };
        if field::SESSION_LIFETIME_MS.has(version) {
            resp.session_lifetime_ms = r.read_i64()?;
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

    #[test]
    fn test_request_both_ways() {
        let req = SaslAuthenticateRequest {
            auth_bytes: b"\0u\0p",
        };
        for (v, bytes) in [
            (0, &[0, 0, 0, 4, 0, b'u', 0, b'p'][..]),
            (1, &[0, 0, 0, 4, 0, b'u', 0, b'p'][..]),
            (2, &[5, 0, b'u', 0, b'p', 0][..]),
        ] {
            assert_eq!(encode(&req, v), bytes);
            let mut r = Reader::new(bytes);
            assert_eq!(SaslAuthenticateRequest::decode(v, &mut r), Ok(req));
            assert!(r.is_empty());
        }
        // Null bytes are not a token.
        assert_eq!(
            SaslAuthenticateRequest::decode(2, &mut Reader::new(&[0, 0])),
            Err(DecodeError::UnexpectedNull)
        );
    }

    const RESP_V0: &[u8] = &[
        0, 58, // SASL_AUTHENTICATION_FAILED
        0, 3, b'b', b'a', b'd', // error_message "bad"
        0, 0, 0, 0, // auth_bytes: empty
    ];
    const RESP_V1: &[u8] = &[
        0, 0, // NONE
        0xff, 0xff, // error_message: null
        0, 0, 0, 2, b'v', b'=', // auth_bytes
        0, 0, 0, 0, 0, 0x36, 0xee, 0x80, // session_lifetime_ms 3_600_000
    ];
    const RESP_V2: &[u8] = &[
        0, 0, // NONE
        0, // error_message: null
        3, b'v', b'=', // auth_bytes
        0, 0, 0, 0, 0, 0x36, 0xee, 0x80, // session_lifetime_ms 3_600_000
        0,    // tags
    ];

    #[test]
    fn test_response_both_ways() {
        let failed = SaslAuthenticateResponse {
            error_code: ErrorCode::SASL_AUTHENTICATION_FAILED,
            error_message: Some("bad"),
            auth_bytes: b"",
            session_lifetime_ms: 0,
        };
        let ok = SaslAuthenticateResponse {
            error_code: ErrorCode::NONE,
            error_message: None,
            auth_bytes: b"v=",
            session_lifetime_ms: 3_600_000,
        };
        for (v, resp, bytes) in [(0, failed, RESP_V0), (1, ok, RESP_V1), (2, ok, RESP_V2)] {
            assert_eq!(encode(&resp, v), bytes);
            let mut r = Reader::new(bytes);
            assert_eq!(SaslAuthenticateResponse::decode(v, &mut r), Ok(resp));
            assert!(r.is_empty());
            for cut in 0..bytes.len() {
                assert!(
                    SaslAuthenticateResponse::decode(v, &mut Reader::new(&bytes[..cut])).is_err()
                );
            }
        }
        // v0 has no session lifetime: it is not written, and reads as 0.
        let v0 = encode(&ok, 0);
        assert_eq!(v0.len(), RESP_V1.len() - 8);
        assert_eq!(
            SaslAuthenticateResponse::decode(0, &mut Reader::new(&v0)),
            Ok(SaslAuthenticateResponse {
                session_lifetime_ms: 0,
                ..ok
            })
        );
        assert_eq!(
            SaslAuthenticateResponse::decode(3, &mut Reader::new(RESP_V2)),
            Err(DecodeError::UnsupportedVersion { version: 3 })
        );
    }

    proptest! {
        #[test]
        fn prop_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), v in -1i16..4) {
            let _ = SaslAuthenticateResponse::decode(v, &mut Reader::new(&bytes));
            let _ = SaslAuthenticateRequest::decode(v, &mut Reader::new(&bytes));
        }

        #[test]
        fn prop_round_trip(v in 0i16..=2, auth in proptest::collection::vec(any::<u8>(), 0..300), msg in proptest::option::of(".{0,10}"), err in any::<i16>(), life in any::<i64>()) {
            let req = SaslAuthenticateRequest { auth_bytes: &auth };
            let bytes = encode(&req, v);
            prop_assert_eq!(SaslAuthenticateRequest::decode(v, &mut Reader::new(&bytes)), Ok(req));
            let resp = SaslAuthenticateResponse {
                error_code: ErrorCode(err),
                error_message: msg.as_deref(),
                auth_bytes: &auth,
                session_lifetime_ms: if v >= 1 { life } else { 0 },
            };
            let bytes = encode(&resp, v);
            prop_assert_eq!(SaslAuthenticateResponse::decode(v, &mut Reader::new(&bytes)), Ok(resp));
        }
    }
}
