//! `SaslHandshake` (key 17), versions 0-1 (never flexible): the client names the SASL
//! mechanism it wants; the broker answers with the mechanisms it has enabled.
//!
//! Version notes from `SaslHandshakeRequest.json` / `SaslHandshakeResponse.json`: both
//! versions have the same fields. After a v0 handshake the SASL tokens travel as raw
//! size-prefixed frames; after v1 they travel inside `SaslAuthenticate` requests (KIP-152),
//! which is what this crate speaks: always send v1. The response's version cannot be bumped
//! (KAFKA-9577), so v1 is also the last one.

use super::codec::{Array, DecodeError, EncodeError, Message, Reader, Writer, nullable_string_len};
use super::error::ErrorCode;
use super::header::{ApiKey, check_decode, check_encode};

const API: ApiKey = ApiKey::SaslHandshake;

/// `SaslHandshakeRequest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslHandshakeRequest<'a> {
    /// The SASL mechanism the client chose, as its IANA name (`"SCRAM-SHA-256"`).
    pub mechanism: &'a str,
}

impl<'a> Message<'a> for SaslHandshakeRequest<'a> {
    fn encoded_len(&self, _version: i16) -> usize {
        nullable_string_len(false, Some(self.mechanism))
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        check_encode(API, version)?;
        w.write_string(self.mechanism)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        check_decode(API, version)?;
        Ok(Self {
            mechanism: r.read_string()?,
        })
    }
}

/// One element of [`SaslHandshakeResponse::mechanisms`]: a mechanism name (`STRING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MechanismName<'a>(pub &'a str);

impl<'a> Message<'a> for MechanismName<'a> {
    fn encoded_len(&self, _version: i16) -> usize {
        nullable_string_len(false, Some(self.0))
    }

    fn encode(&self, _version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        w.write_string(self.0)
    }

    fn decode(_version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        r.read_string().map(Self)
    }
}

/// `SaslHandshakeResponse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslHandshakeResponse<'a> {
    /// `NONE`, or `UNSUPPORTED_SASL_MECHANISM` when the broker has not enabled the
    /// requested mechanism (then [`mechanisms`](Self::mechanisms) says which it has).
    pub error_code: ErrorCode,
    /// The mechanisms enabled on the broker's listener.
    pub mechanisms: Array<'a, MechanismName<'a>>,
}

impl SaslHandshakeResponse<'_> {
    /// Whether the broker listed the mechanism `name` (compared exactly, as Java does).
    pub fn supports(&self, name: &str) -> bool {
        self.mechanisms.iter().any(|m| m.0 == name)
    }
}

impl<'a> Message<'a> for SaslHandshakeResponse<'a> {
    fn encoded_len(&self, version: i16) -> usize {
        2 + self.mechanisms.encoded_len(version, false)
    }

    fn encode(&self, version: i16, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        check_encode(API, version)?;
        w.write_i16(self.error_code.0)?;
        self.mechanisms.encode(version, false, w)
    }

    fn decode(version: i16, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        check_decode(API, version)?;
        Ok(Self {
            error_code: ErrorCode(r.read_i16()?),
            mechanisms: Array::decode(version, false, r)?,
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    use crate::protocol::testing::encode;

    const REQ: &[u8] = &[
        0, 13, b'S', b'C', b'R', b'A', b'M', b'-', b'S', b'H', b'A', b'-', b'2', b'5', b'6',
    ];

    #[test]
    fn test_request_both_ways() {
        let req = SaslHandshakeRequest {
            mechanism: "SCRAM-SHA-256",
        };
        for v in 0..=1 {
            assert_eq!(encode(&req, v), REQ);
            let mut r = Reader::new(REQ);
            assert_eq!(SaslHandshakeRequest::decode(v, &mut r), Ok(req));
            assert!(r.is_empty());
        }
        assert_eq!(
            SaslHandshakeRequest::decode(2, &mut Reader::new(REQ)),
            Err(DecodeError::UnsupportedVersion { version: 2 })
        );
    }

    const RESP: &[u8] = &[
        0, 33, // UNSUPPORTED_SASL_MECHANISM
        0, 0, 0, 2, // two mechanisms
        0, 5, b'P', b'L', b'A', b'I', b'N', //
        0, 11, b'O', b'A', b'U', b'T', b'H', b'B', b'E', b'A', b'R', b'E', b'R',
    ];

    #[test]
    fn test_response_both_ways() {
        const NAMES: [MechanismName<'static>; 2] =
            [MechanismName("PLAIN"), MechanismName("OAUTHBEARER")];
        let resp = SaslHandshakeResponse {
            error_code: ErrorCode::UNSUPPORTED_SASL_MECHANISM,
            mechanisms: Array::from_slice(&NAMES),
        };
        for v in 0..=1 {
            assert_eq!(encode(&resp, v), RESP);
            let mut r = Reader::new(RESP);
            let decoded = SaslHandshakeResponse::decode(v, &mut r).unwrap();
            assert!(r.is_empty());
            assert_eq!(decoded, resp);
            assert!(decoded.supports("PLAIN") && decoded.supports("OAUTHBEARER"));
            assert!(!decoded.supports("SCRAM-SHA-256") && !decoded.supports("plain"));
            let names: Vec<&str> = decoded.mechanisms.iter().map(|m| m.0).collect();
            assert_eq!(names, ["PLAIN", "OAUTHBEARER"]);
            // Re-encoding the decoded (wire) array gives the same bytes.
            assert_eq!(encode(&decoded, v), RESP);
        }
        // Truncated anywhere: an error, never a panic.
        for cut in 0..RESP.len() {
            assert!(SaslHandshakeResponse::decode(1, &mut Reader::new(&RESP[..cut])).is_err());
        }
        // A null array is refused.
        assert_eq!(
            SaslHandshakeResponse::decode(1, &mut Reader::new(&[0, 0, 0xff, 0xff, 0xff, 0xff])),
            Err(DecodeError::UnexpectedNull)
        );
    }

    proptest! {
        #[test]
        fn prop_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), v in -1i16..4) {
            if let Ok(resp) = SaslHandshakeResponse::decode(v, &mut Reader::new(&bytes)) {
                let _ = resp.mechanisms.iter().count();
            }
            let _ = SaslHandshakeRequest::decode(v, &mut Reader::new(&bytes));
        }

        #[test]
        fn prop_round_trip(v in 0i16..=1, names in proptest::collection::vec("[A-Z0-9-]{0,20}", 0..5), err in any::<i16>()) {
            let items: Vec<MechanismName<'_>> = names.iter().map(|n| MechanismName(n)).collect();
            let resp = SaslHandshakeResponse { error_code: ErrorCode(err), mechanisms: Array::from_slice(&items) };
            let bytes = encode(&resp, v);
            prop_assert_eq!(SaslHandshakeResponse::decode(v, &mut Reader::new(&bytes)), Ok(resp));
            for n in &names {
                let req = SaslHandshakeRequest { mechanism: n };
                let bytes = encode(&req, v);
                prop_assert_eq!(SaslHandshakeRequest::decode(v, &mut Reader::new(&bytes)), Ok(req));
            }
        }
    }
}
