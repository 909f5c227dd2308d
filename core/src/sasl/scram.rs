//! SCRAM (RFC 5802, RFC 7677) for [`SaslClient`](super::SaslClient): parsing the server's
//! messages, the key derivation (PBKDF2-HMAC, ClientKey, StoredKey, ClientProof,
//! ServerSignature) and writing client-final. The exchange is told in the [module
//! docs](super).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Hmac;
use hmac::digest::{Digest, FixedOutput, KeyInit, Output, Update};
use sha2::{Sha256, Sha512};
use zeroize::Zeroize;

use super::{
    MAX_HASH_LEN, MAX_SALT_B64_LEN, MAX_SIGNATURE_B64_LEN, Malformed, SCRAM_MAX_ITERATIONS,
    SCRAM_MIN_ITERATIONS, SaslError, ScramServerError, put,
};
use crate::protocol::Writer;

/// The ServerSignature a SCRAM client expects in server-final (`len` bytes used).
#[derive(Clone)]
pub(super) struct ServerSignature {
    bytes: [u8; MAX_HASH_LEN],
    len: usize,
}

impl ServerSignature {
    pub(super) fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

/// Parses server-first, checks it, and writes client-final into `out`; returns its length
/// and the ServerSignature to expect in server-final.
pub(super) fn client_final(
    hash: ScramHashKind,
    username: &str,
    password: &str,
    client_nonce: &[u8],
    server: &[u8],
    out: &mut [u8],
) -> Result<(usize, ServerSignature), SaslError> {
    let first = ServerFirst::parse(server)?;
    if !first.nonce.starts_with(client_nonce) {
        return Err(SaslError::NonceMismatch);
    }
    if !(SCRAM_MIN_ITERATIONS..=SCRAM_MAX_ITERATIONS).contains(&first.iterations) {
        return Err(SaslError::IterationsOutOfRange {
            iterations: first.iterations,
        });
    }
    let mut salt = [0u8; MAX_SALT_B64_LEN / 4 * 3];
    let salt_len = STANDARD
        .decode_slice(first.salt_b64, &mut salt)
        .map_err(|_| Malformed::Salt)?;
    let salt = salt.get(..salt_len).unwrap_or_default();
    let proof_b64_len = hash.len().div_ceil(3) * 4;
    let needed = 12usize
        .saturating_add(first.nonce.len())
        .saturating_add(proof_b64_len);
    if out.len() < needed {
        return Err(SaslError::BufferTooSmall { needed });
    }
    let exchange = Exchange {
        username,
        client_nonce,
        server_first: server,
        nonce: first.nonce,
    };
    let mut proof = [0u8; MAX_HASH_LEN];
    let mut signature = [0u8; MAX_HASH_LEN];
    match hash {
        ScramHashKind::Sha256 => scram_keys::<Sha256>(
            password.as_bytes(),
            salt,
            first.iterations,
            &exchange,
            &mut proof,
            &mut signature,
        )?,
        ScramHashKind::Sha512 => scram_keys::<Sha512>(
            password.as_bytes(),
            salt,
            first.iterations,
            &exchange,
            &mut proof,
            &mut signature,
        )?,
    }
    let proof_bytes = proof.get(..hash.len()).unwrap_or_default();
    let mut w = Writer::new(out);
    put(&mut w, b"c=biws,r=")?;
    put(&mut w, first.nonce)?;
    put(&mut w, b",p=")?;
    let encoded = w
        .reserve(proof_b64_len)
        .ok()
        .and_then(|dst| STANDARD.encode_slice(proof_bytes, dst).ok());
    proof.zeroize();
    encoded.ok_or(SaslError::BufferTooSmall { needed })?;
    let signature = ServerSignature {
        bytes: signature,
        len: hash.len(),
    };
    Ok((w.position(), signature))
}

/// Bytes of `username` as a SCRAM `saslname` (`,` and `=` take 3 bytes each).
pub(super) fn saslname_len(username: &str) -> usize {
    username
        .bytes()
        .map(|b| if b == b',' || b == b'=' { 3 } else { 1 })
        .fold(0usize, usize::saturating_add)
}

/// Calls `f` with the pieces of `username` escaped as a `saslname` (`=` -> `=3D`, `,` ->
/// `=2C`, in Kafka's `ScramFormatter.saslName` order).
pub(super) fn for_saslname<E>(
    username: &str,
    mut f: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    for part in username
        .as_bytes()
        .split_inclusive(|&b| b == b',' || b == b'=')
    {
        match part.split_last() {
            Some((b',', plain)) => {
                f(plain)?;
                f(b"=2C")?;
            }
            Some((b'=', plain)) => {
                f(plain)?;
                f(b"=3D")?;
            }
            _ => f(part)?,
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScramHashKind {
    Sha256,
    Sha512,
}

impl ScramHashKind {
    pub(super) const fn len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

/// A SCRAM hash: its HMAC and its PBKDF2.
trait ScramHash: Digest {
    type Mac: KeyInit + Update + FixedOutput;
    fn salted_password(password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]);
}

impl ScramHash for Sha256 {
    type Mac = Hmac<Sha256>;
    fn salted_password(password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, out);
    }
}

impl ScramHash for Sha512 {
    type Mac = Hmac<Sha512>;
    fn salted_password(password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, out);
    }
}

/// The pieces of the SCRAM `AuthMessage`.
struct Exchange<'x> {
    username: &'x str,
    client_nonce: &'x [u8],
    server_first: &'x [u8],
    /// The combined nonce (`r=` of server-first).
    nonce: &'x [u8],
}

impl Exchange<'_> {
    /// Feeds `AuthMessage = client-first-bare "," server-first "," client-final-without-proof`
    /// (RFC 5802 §3) without building it.
    fn feed(&self, mac: &mut impl Update) {
        mac.update(b"n=");
        let _ = for_saslname::<()>(self.username, |part| {
            mac.update(part);
            Ok(())
        });
        mac.update(b",r=");
        mac.update(self.client_nonce);
        mac.update(b",");
        mac.update(self.server_first);
        mac.update(b",c=biws,r=");
        mac.update(self.nonce);
    }
}

/// HMAC keyed with `key`; HMAC takes keys of any length, so the error cannot happen.
fn hmac<M: KeyInit>(key: &[u8]) -> Result<M, SaslError> {
    <M as KeyInit>::new_from_slice(key).map_err(|_| SaslError::InvalidCredentials)
}

/// RFC 5802 §3: writes ClientProof into `proof` and ServerSignature into `signature` (their
/// first `H::output_size()` bytes).
fn scram_keys<H: ScramHash>(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    exchange: &Exchange<'_>,
    proof: &mut [u8; MAX_HASH_LEN],
    signature: &mut [u8; MAX_HASH_LEN],
) -> Result<(), SaslError> {
    let mut salted = Output::<H>::default();
    H::salted_password(password, salt, iterations, &mut salted);

    let mut client_key = hmac::<H::Mac>(&salted)?
        .chain(b"Client Key")
        .finalize_fixed();
    let mut stored_key = <H as Digest>::digest(&client_key);
    let mut mac = hmac::<H::Mac>(&stored_key)?;
    exchange.feed(&mut mac);
    let client_signature = mac.finalize_fixed();
    for ((p, k), s) in proof.iter_mut().zip(&client_key).zip(&client_signature) {
        *p = k ^ s;
    }

    let server_key = hmac::<H::Mac>(&salted)?
        .chain(b"Server Key")
        .finalize_fixed();
    let mut mac = hmac::<H::Mac>(&server_key)?;
    exchange.feed(&mut mac);
    for (d, s) in signature.iter_mut().zip(&mac.finalize_fixed()) {
        *d = *s;
    }

    salted.as_mut_slice().zeroize();
    client_key.as_mut_slice().zeroize();
    stored_key.as_mut_slice().zeroize();
    Ok(())
}

/// A parsed SCRAM server-first message: `r=<nonce>,s=<salt>,i=<count>[,ext=value]*`.
struct ServerFirst<'s> {
    nonce: &'s [u8],
    salt_b64: &'s [u8],
    iterations: u32,
}

impl<'s> ServerFirst<'s> {
    fn parse(msg: &'s [u8]) -> Result<Self, SaslError> {
        if msg.starts_with(b"m=") {
            return Err(Malformed::MandatoryExtension.into());
        }
        let mut fields = msg.splitn(4, |&b| b == b',');
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix(b"r="))
            .filter(|n| !n.is_empty() && n.iter().all(|&b| (0x21..=0x7e).contains(&b)))
            .ok_or(Malformed::Nonce)?;
        let salt_b64 = fields
            .next()
            .and_then(|f| f.strip_prefix(b"s="))
            .filter(|s| s.len() <= MAX_SALT_B64_LEN)
            .ok_or(Malformed::Salt)?;
        let iterations = fields
            .next()
            .and_then(|f| f.strip_prefix(b"i="))
            .and_then(parse_u32)
            .ok_or(Malformed::Iterations)?;
        if let Some(rest) = fields.next() {
            check_extensions(rest)?;
        }
        Ok(Self {
            nonce,
            salt_b64,
            iterations,
        })
    }
}

/// A non-empty decimal `u32` (digits only, as Java's `[0-9]+` then `parseInt`).
fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u32, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        } else {
            None
        }
    })
}

/// `name=value(,name=value)*` with `name` alphabetic and `value` non-empty 7-bit without `,`
/// (Kafka's `EXTENSIONS` pattern); the values are ignored.
fn check_extensions(rest: &[u8]) -> Result<(), SaslError> {
    let ok = rest.split(|&b| b == b',').all(|ext| {
        let mut kv = ext.splitn(2, |&b| b == b'=');
        let name = kv.next().unwrap_or_default();
        let value = kv.next().unwrap_or_default();
        !name.is_empty()
            && name.iter().all(u8::is_ascii_alphabetic)
            && !value.is_empty()
            && value.iter().all(|&b| (0x01..=0x7f).contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(Malformed::Extensions.into())
    }
}

/// Checks a SCRAM server-final message: `v=<base64 signature>[,ext]*` or `e=<error>`.
pub(super) fn verify_server_final(msg: &[u8], expected: &[u8]) -> Result<(), SaslError> {
    if let Some(value) = msg.strip_prefix(b"e=") {
        // Kafka's VALUE_SAFE: 7-bit without `,` or `=`.
        if value.is_empty()
            || !value
                .iter()
                .all(|&b| (0x01..=0x7f).contains(&b) && b != b',' && b != b'=')
        {
            return Err(Malformed::ServerFinal.into());
        }
        return Err(SaslError::ServerError(ScramServerError::from_value(value)));
    }
    let body = msg.strip_prefix(b"v=").ok_or(Malformed::ServerFinal)?;
    let mut fields = body.splitn(2, |&b| b == b',');
    let sig_b64 = fields.next().unwrap_or_default();
    if let Some(rest) = fields.next() {
        check_extensions(rest)?;
    }
    if sig_b64.len() > MAX_SIGNATURE_B64_LEN {
        return Err(Malformed::ServerFinal.into());
    }
    let mut sig = [0u8; MAX_SIGNATURE_B64_LEN / 4 * 3];
    let len = STANDARD
        .decode_slice(sig_b64, &mut sig)
        .map_err(|_| Malformed::ServerFinal)?;
    let sig = sig.get(..len).unwrap_or_default();
    if sig.len() != expected.len() {
        return Err(Malformed::ServerFinal.into());
    }
    // Constant time, as Java's `MessageDigest.isEqual`.
    let diff = sig
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff == 0 {
        Ok(())
    } else {
        Err(SaslError::ServerSignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::{Mechanism, SaslClient, Step};
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// RFC 7677 §3: the client nonce `rOprNGfwEbeRWgbNEkqO` is the base64 of these 15 bytes.
    fn rfc_nonce_random() -> Vec<u8> {
        let mut buf = [0u8; 15];
        let n = STANDARD
            .decode_slice("rOprNGfwEbeRWgbNEkqO", &mut buf)
            .unwrap();
        buf[..n].to_vec()
    }

    const RFC_SERVER_FIRST: &[u8] =
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

    /// Runs start and the server-first step; returns the client and the two client messages.
    fn scram_exchange(
        mechanism: Mechanism,
        server_first: &[u8],
    ) -> (SaslClient<'static>, Vec<u8>, Result<Vec<u8>, SaslError>) {
        let random = rfc_nonce_random();
        let mut c = SaslClient::scram(mechanism, "user", "pencil", &random).unwrap();
        let mut out = [0u8; 512];
        let n = c.start(&mut out).unwrap();
        assert_eq!(n, c.start_len());
        let first = out[..n].to_vec();
        let last = match c.step(server_first, &mut out) {
            Ok(Step::Send(n)) => Ok(out[..n].to_vec()),
            Ok(Step::Done) => panic!("done after server-first"),
            Err(e) => Err(e),
        };
        (c, first, last)
    }

    #[test]
    fn test_scram_sha256_rfc7677_vector() {
        let (mut c, first, last) = scram_exchange(Mechanism::ScramSha256, RFC_SERVER_FIRST);
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            last.unwrap(),
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        let mut out = [0u8; 8];
        assert!(!c.is_done());
        assert_eq!(
            c.step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", &mut out),
            Ok(Step::Done)
        );
        assert!(c.is_done());
        assert_eq!(c.step(b"", &mut out), Err(SaslError::OutOfOrder));
    }

    /// SCRAM-SHA-512 over the RFC 7677 inputs (user "user", password "pencil", the same
    /// nonces, salt and count). No RFC gives a SHA-512 vector; these values were computed
    /// independently with Python's `hashlib.pbkdf2_hmac("sha512", ...)` and `hmac` following
    /// RFC 5802 §3 (the same script reproduces the RFC 7677 SHA-256 vector above byte for
    /// byte):
    ///
    /// ```text
    /// sp = hashlib.pbkdf2_hmac(h, b"pencil", base64.b64decode(salt), 4096)
    /// ck = hmac.new(sp, b"Client Key", h).digest(); sk = hashlib.new(h, ck).digest()
    /// am = b"n=user,r=" + cnonce + b"," + server_first + b",c=biws,r=" + nonce
    /// proof = xor(ck, hmac.new(sk, am, h).digest())
    /// v = hmac.new(hmac.new(sp, b"Server Key", h).digest(), am, h).digest()
    /// ```
    #[test]
    fn test_scram_sha512_vector() {
        let (mut c, first, last) = scram_exchange(Mechanism::ScramSha512, RFC_SERVER_FIRST);
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            last.unwrap(),
            &b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ=="[..]
        );
        let mut out = [0u8; 8];
        assert_eq!(
            c.step(
                b"v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==",
                &mut out
            ),
            Ok(Step::Done)
        );
    }

    #[test]
    fn test_scram_wrong_server_signature() {
        for sig in [
            &b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="[..], // first byte differs
            b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            let (mut c, _, last) = scram_exchange(Mechanism::ScramSha256, RFC_SERVER_FIRST);
            last.unwrap();
            let mut out = [0u8; 8];
            assert_eq!(
                c.step(sig, &mut out),
                Err(SaslError::ServerSignatureMismatch)
            );
            assert!(!c.is_done());
            assert_eq!(c.step(sig, &mut out), Err(SaslError::OutOfOrder));
        }
        // The SHA-256 signature is the wrong length for SHA-512.
        let (mut c, _, last) = scram_exchange(Mechanism::ScramSha512, RFC_SERVER_FIRST);
        last.unwrap();
        assert_eq!(
            c.step(
                b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
                &mut [0u8; 8]
            ),
            Err(SaslError::Malformed(Malformed::ServerFinal))
        );
    }

    #[test]
    fn test_scram_server_error() {
        for (msg, err) in [
            (&b"e=invalid-proof"[..], ScramServerError::InvalidProof),
            (b"e=unknown-user", ScramServerError::UnknownUser),
            (b"e=something-else", ScramServerError::Unrecognized),
        ] {
            let (mut c, _, last) = scram_exchange(Mechanism::ScramSha256, RFC_SERVER_FIRST);
            last.unwrap();
            assert_eq!(c.step(msg, &mut [0u8; 8]), Err(SaslError::ServerError(err)));
        }
        assert_eq!(ScramServerError::InvalidProof.as_str(), "invalid-proof");
        assert_eq!(
            ScramServerError::Unrecognized.as_str(),
            "server-error-value-ext"
        );
    }

    #[test]
    fn test_scram_nonce_mismatch() {
        for server_first in [
            &b"r=XOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"[..],
            b"r=rOprNGfwEbeRWgbNEkq,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", // a prefix of ours
        ] {
            let (c, _, last) = scram_exchange(Mechanism::ScramSha256, server_first);
            assert_eq!(last, Err(SaslError::NonceMismatch));
            assert!(!c.is_done());
        }
    }

    #[test]
    fn test_scram_iterations_out_of_range() {
        for (i, ok) in [
            ("4095", false),
            ("1", false),
            ("16385", false),
            ("16384", true),
        ] {
            let msg = std::format!("r=rOprNGfwEbeRWgbNEkqOsrv,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={i}");
            let (_, _, last) = scram_exchange(Mechanism::ScramSha256, msg.as_bytes());
            if ok {
                last.unwrap();
            } else {
                assert_eq!(
                    last,
                    Err(SaslError::IterationsOutOfRange {
                        iterations: i.parse().unwrap()
                    })
                );
            }
        }
    }

    #[test]
    fn test_scram_malformed_server_first() {
        const N: &str = "r=rOprNGfwEbeRWgbNEkqOsrv";
        for (msg, m) in [
            (
                std::format!("m=x,{N},s=QUJD,i=4096"),
                Malformed::MandatoryExtension,
            ),
            (std::string::String::new(), Malformed::Nonce),
            ("s=QUJD,i=4096".into(), Malformed::Nonce),
            ("r=,s=QUJD,i=4096".into(), Malformed::Nonce),
            (
                "r=rOprNGfwEbeRWgbNEkqO x,s=QUJD,i=4096".into(),
                Malformed::Nonce,
            ),
            (N.into(), Malformed::Salt),
            (std::format!("{N},i=4096,s=QUJD"), Malformed::Salt),
            (std::format!("{N},s=QUJ,i=4096"), Malformed::Salt), // not padded
            (std::format!("{N},s=QU*D,i=4096"), Malformed::Salt),
            (
                std::format!("{N},s={},i=4096", "QUJD".repeat(44)),
                Malformed::Salt,
            ), // 132 bytes
            (std::format!("{N},s=QUJD"), Malformed::Iterations),
            (std::format!("{N},s=QUJD,i="), Malformed::Iterations),
            (std::format!("{N},s=QUJD,i=-4096"), Malformed::Iterations),
            (std::format!("{N},s=QUJD,i=4096x"), Malformed::Iterations),
            (
                std::format!("{N},s=QUJD,i=99999999999"),
                Malformed::Iterations,
            ),
            (std::format!("{N},s=QUJD,i=4096,"), Malformed::Extensions),
            (std::format!("{N},s=QUJD,i=4096,x"), Malformed::Extensions),
            (std::format!("{N},s=QUJD,i=4096,1=a"), Malformed::Extensions),
            (
                std::format!("{N},s=QUJD,i=4096,a=\u{e9}"),
                Malformed::Extensions,
            ),
        ] {
            let (_, _, last) = scram_exchange(Mechanism::ScramSha256, msg.as_bytes());
            assert_eq!(last, Err(SaslError::Malformed(m)), "{msg}");
        }
        // Extensions after the count are accepted and ignored.
        let msg = std::format!("{N},s=QUJD,i=4096,x=1,y=a=b");
        scram_exchange(Mechanism::ScramSha256, msg.as_bytes())
            .2
            .unwrap();
    }

    #[test]
    fn test_scram_malformed_server_final() {
        for msg in [
            &b""[..],
            b"v=",
            b"x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=6rri",
            b"e=",
            b"e=a=b",
        ] {
            let (mut c, _, last) = scram_exchange(Mechanism::ScramSha256, RFC_SERVER_FIRST);
            last.unwrap();
            assert_eq!(
                c.step(msg, &mut [0u8; 8]),
                Err(SaslError::Malformed(Malformed::ServerFinal)),
                "{msg:?}"
            );
        }
        // A verifier followed by a malformed extension.
        let (mut c, _, _) = scram_exchange(Mechanism::ScramSha256, RFC_SERVER_FIRST);
        assert_eq!(
            c.step(
                b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,",
                &mut [0u8; 8]
            ),
            Err(SaslError::Malformed(Malformed::Extensions))
        );
    }

    #[test]
    fn test_scram_saslname_escaping_and_buffer_too_small() {
        let random = [0xfbu8; 18]; // base64 "+/v7+/v7..." : printable, no ',' or '='
        let mut c = SaslClient::scram(Mechanism::ScramSha512, "a=b,c", "p", &random).unwrap();
        let needed = c.start_len();
        assert_eq!(
            c.start(&mut [0u8; 10]),
            Err(SaslError::BufferTooSmall { needed })
        );
        let mut out = [0u8; 64];
        let n = c.start(&mut out).unwrap();
        assert_eq!(n, needed);
        assert_eq!(&out[..n], b"n,,n=a=3Db=2Cc,r=+/v7+/v7+/v7+/v7+/v7+/v7");
        assert_eq!(c.start(&mut out), Err(SaslError::OutOfOrder));

        // client-final: 12 + 27 nonce + 88 proof; too small leaves the state as it was.
        let server_first = b"r=+/v7+/v7+/v7+/v7+/v7+/v7srv,s=QUJD,i=4096";
        let mut small = [0u8; 126];
        assert_eq!(
            c.step(server_first, &mut small),
            Err(SaslError::BufferTooSmall { needed: 127 })
        );
        let mut out = [0u8; 127];
        assert_eq!(c.step(server_first, &mut out), Ok(Step::Send(127)));
        assert!(out.starts_with(b"c=biws,r=+/v7+/v7+/v7+/v7+/v7+/v7srv,p="));
    }

    #[test]
    fn test_scram_nonce_bounds() {
        for (len, ok) in [(11, false), (12, true), (48, true), (49, false)] {
            let r = SaslClient::scram(Mechanism::ScramSha256, "u", "p", &[1; 64][..len]);
            assert_eq!(r.is_ok(), ok, "{len}");
        }
        let mut c = SaslClient::scram(Mechanism::ScramSha256, "u", "p", &[0xff; 48]).unwrap();
        assert_eq!(c.start_len(), 8 + 1 + 64);
        assert_eq!(c.start(&mut [0; 73]), Ok(73));
    }

    proptest! {
        /// Server-first messages that get past the nonce check, with arbitrary salts, counts
        /// and tails.
        #[test]
        fn prop_scram_server_first_never_panics(
            sha512 in any::<bool>(),
            suffix in "[!-+--~]{0,8}",
            salt in "[A-Za-z0-9+/=*]{0,12}",
            iterations in prop_oneof![Just(std::string::String::from("4096")), "[0-9-]{0,12}"],
            tail in proptest::collection::vec(any::<u8>(), 0..16),
            last in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let m = if sha512 { Mechanism::ScramSha512 } else { Mechanism::ScramSha256 };
            let mut c = SaslClient::scram(m, "u", "p", &[7; 18]).unwrap();
            let mut out = [0u8; 512];
            let n = c.start(&mut out).unwrap();
            let nonce = std::str::from_utf8(&out[..n]).unwrap().split("r=").nth(1).unwrap().as_bytes().to_vec();
            let nonce = std::string::String::from_utf8(nonce).unwrap();
            let mut msg = std::format!("r={nonce}{suffix},s={salt},i={iterations}").into_bytes();
            msg.extend_from_slice(&tail);
            if let Ok(Step::Send(n)) = c.step(&msg, &mut out) {
                prop_assert!(out[..n].starts_with(b"c=biws,r="));
                let r = c.step(&last, &mut out);
                prop_assert!(r.is_err() || r == Ok(Step::Done));
            }
        }
    }
}
