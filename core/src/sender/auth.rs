//! SASL on a connection (feature `sasl`; Java's `SaslClientAuthenticator`): after
//! ApiVersions, a `SaslHandshake` (v1) names the mechanism, then `SaslAuthenticate` requests
//! carry the mechanism's messages until it is done; nothing else goes on the connection
//! meanwhile. The broker's session lifetime (SaslAuthenticate v1+) schedules a
//! re-authentication (KIP-368) at 85-95% of it, as Java does: the connection takes no new
//! requests, and once idle runs the handshake and the exchange again.
//!
//! A refusal (`SASL_AUTHENTICATION_FAILED`, `UNSUPPORTED_SASL_MECHANISM`, a server message
//! the exchange rejects) is an authentication failure: the connection closes, queued
//! records fail with it at once, and new ones are refused until a connection authenticates.

use core::fmt::Write as _;

use heapless::String as HString;
use sha2::{Digest, Sha256};

use crate::protocol::{
    ErrorCode, Message, Reader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use crate::record::Compressor;
use crate::sasl::{SaslClient, SaslError, Step};
use crate::security::{AuthFailure, AuthFailureKind, MAX_AUTH_MESSAGE_LEN};
use crate::storage::{Storage, Table, TableFull};

use super::connection::{ConnState, RequestKind, SaslPhase};
use super::{Io, Sender};

/// Random bytes in a SCRAM client nonce (Java's `ScramFormatter` uses a 32-character
/// nonce; 18 bytes are 24 base64 characters).
const NONCE_RANDOM_LEN: usize = 18;

impl<S: AsRef<[u8]> + AsMut<[u8]>, St: Storage, C: Compressor> Sender<S, St, C> {
    /// Runs the SASL steps due on every connection: handshakes to send, and
    /// re-authentications that became due (or whose connection became idle).
    pub(super) fn drive_sasl(&mut self, now_ms: u64, io: &mut Io<St>) {
        if let Some((k, n, version)) = self.sasl_pending.take() {
            self.send_sasl_authenticate(now_ms, k, version, n, io);
        }
        for k in 0..self.conns.len() {
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            if c.state == ConnState::Ready && c.reauth_at.is_some_and(|at| now_ms >= at) {
                c.reauth_at = None;
                c.reauth_due = true;
            }
            let idle = c.in_flight.is_empty() && !c.has_transmit();
            if c.state == ConnState::Ready && c.reauth_due && idle {
                c.reauth_due = false;
                c.state = ConnState::Authenticating;
                c.sasl = SaslPhase::Handshake;
            }
            if c.state == ConnState::Authenticating
                && idle
                && matches!(c.sasl, SaslPhase::Handshake)
            {
                self.send_sasl_handshake(now_ms, k, io);
            }
        }
    }

    /// The earliest re-authentication due, for the next wake-up.
    pub(super) fn next_reauth_ms(&self) -> Option<u64> {
        self.conns.iter().filter_map(|c| c.reauth_at).min()
    }

    fn send_sasl_handshake(&mut self, now_ms: u64, k: usize, io: &mut Io<St>) {
        let Some(mechanism) = self.config.sasl.mechanism else {
            self.sasl_failed(now_ms, k, ErrorCode::NONE, "no sasl.mechanism");
            return;
        };
        let body = SaslHandshakeRequest {
            mechanism: mechanism.name(),
        };
        if self.send_request(now_ms, k, RequestKind::SaslHandshake, 1, &body, io) {
            if let Some(c) = self.conns.get_mut(k) {
                c.sasl = SaslPhase::HandshakeSent;
            }
        } else {
            self.close_connection(now_ms, k, true);
        }
    }

    pub(super) fn handle_sasl_handshake(
        &mut self,
        now_ms: u64,
        k: usize,
        version: i16,
        body: &[u8],
    ) -> bool {
        let Ok(resp) = SaslHandshakeResponse::decode(version, &mut Reader::new(body)) else {
            return false;
        };
        let name = self.config.sasl.mechanism.map_or("GSSAPI", |m| m.name());
        if resp.error_code == ErrorCode::UNSUPPORTED_SASL_MECHANISM {
            // Java's words: "Client SASL mechanism 'X' not enabled in the server, enabled
            // mechanisms are [A, B]".
            let mut m: HString<MAX_AUTH_MESSAGE_LEN> = HString::new();
            let _ = write!(
                m,
                "Client SASL mechanism '{name}' not enabled in the server, enabled mechanisms are ["
            );
            for (i, enabled) in resp.mechanisms.iter().enumerate() {
                let _ = write!(m, "{}{}", if i > 0 { ", " } else { "" }, enabled.0);
            }
            let _ = m.push(']');
            self.sasl_failed(now_ms, k, resp.error_code, &m);
            return true;
        }
        if !resp.error_code.is_none() {
            self.sasl_failed(now_ms, k, resp.error_code, resp.error_code.message());
            return true;
        }
        let Some(version) = self
            .conns
            .get(k)
            .and_then(|c| c.versions)
            .and_then(|v| v.sasl_authenticate)
        else {
            self.sasl_failed(
                now_ms,
                k,
                ErrorCode::UNSUPPORTED_VERSION,
                "the broker does not offer SaslAuthenticate",
            );
            return true;
        };
        let nonce = self.nonce_random();
        let Some(mechanism) = self.config.sasl.mechanism else {
            return false;
        };
        let token = core::str::from_utf8(&self.sasl_token).unwrap_or_default();
        let Some(credentials) = self.config.sasl.credentials(token) else {
            return false;
        };
        let started = SaslClient::new(mechanism, credentials, &nonce).and_then(|mut client| {
            let n = client.start_len();
            if self.sasl_out.len() < n && self.sasl_out.resize(n, 0).is_err() {
                return Err(SaslError::BufferTooSmall { needed: n });
            }
            let n = client.start(&mut self.sasl_out)?;
            Ok((client.suspend(), n))
        });
        match started {
            Ok((exchange, n)) => self.sasl_message_ready(k, version, exchange, n),
            Err(e) => self.sasl_client_failed(now_ms, k, e),
        }
        true
    }

    pub(super) fn handle_sasl_authenticate(
        &mut self,
        now_ms: u64,
        k: usize,
        version: i16,
        body: &[u8],
    ) -> bool {
        let Ok(resp) = SaslAuthenticateResponse::decode(version, &mut Reader::new(body)) else {
            return false;
        };
        if !resp.error_code.is_none() {
            let message = resp
                .error_message
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| resp.error_code.message());
            self.sasl_failed(now_ms, k, resp.error_code, message);
            return true;
        }
        let Some(exchange) = self.conns.get_mut(k).and_then(|c| {
            match core::mem::replace(&mut c.sasl, SaslPhase::Idle) {
                SaslPhase::Exchange(e) => Some(e),
                _ => None,
            }
        }) else {
            return false;
        };
        let token = core::str::from_utf8(&self.sasl_token).unwrap_or_default();
        let Some(credentials) = self.config.sasl.credentials(token) else {
            return false;
        };
        let stepped = SaslClient::resume(exchange, credentials).and_then(|mut client| {
            // The largest client message after the first: SCRAM's client-final.
            let need = 256usize.saturating_add(resp.auth_bytes.len());
            if self.sasl_out.len() < need {
                let _ = self.sasl_out.resize(need, 0);
            }
            let step = client.step(resp.auth_bytes, &mut self.sasl_out)?;
            Ok((client.suspend(), step))
        });
        match stepped {
            Ok((exchange, Step::Send(n))) => self.sasl_message_ready(k, version, exchange, n),
            Ok((_, Step::Done)) => self.sasl_done(now_ms, k, resp.session_lifetime_ms),
            Err(e) => self.sasl_client_failed(now_ms, k, e),
        }
        true
    }

    /// The client's next message is in `sasl_out[..n]`: it goes out at the end of this
    /// input's drive step (response handlers have no connection buffers to write into).
    fn sasl_message_ready(
        &mut self,
        k: usize,
        version: i16,
        exchange: crate::sasl::SaslExchange,
        n: usize,
    ) {
        if let Some(c) = self.conns.get_mut(k) {
            c.sasl = SaslPhase::Exchange(exchange);
        }
        // One message waits at a time: each input's drive step sends it before another
        // response is handled.
        self.sasl_pending = Some((k, n, version));
    }

    fn send_sasl_authenticate(
        &mut self,
        now_ms: u64,
        k: usize,
        version: i16,
        n: usize,
        io: &mut Io<St>,
    ) {
        if !self
            .conns
            .get(k)
            .is_some_and(|c| c.state == ConnState::Authenticating)
        {
            return;
        }
        let correlation_id = self.next_correlation_id();
        let written = {
            let body = SaslAuthenticateRequest {
                auth_bytes: self.sasl_out.get(..n).unwrap_or_default(),
            };
            self.write_whole(
                io,
                k,
                RequestKind::SaslAuthenticate,
                version,
                correlation_id,
                &body,
            )
        };
        if !self.start_whole(
            now_ms,
            k,
            RequestKind::SaslAuthenticate,
            version,
            correlation_id,
            written,
        ) {
            self.close_connection(now_ms, k, true);
        }
    }

    /// The exchange succeeded: the connection is ready, and re-authenticates at 85-95% of
    /// the session lifetime when the broker gave one.
    fn sasl_done(&mut self, now_ms: u64, k: usize, session_lifetime_ms: i64) {
        let jitter = self.next_random() % 11;
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        c.state = ConnState::Ready;
        c.sasl = SaslPhase::Idle;
        c.reauth_at = u64::try_from(session_lifetime_ms)
            .ok()
            .filter(|&ms| ms > 0)
            .map(|ms| now_ms.saturating_add(ms / 100 * (85 + jitter)));
        let target = c.target;
        self.auth_failure = None;
        self.metrics.sasl_authentications += 1;
        self.record_success(target);
    }

    fn sasl_client_failed(&mut self, now_ms: u64, k: usize, e: SaslError) {
        let mut m: HString<MAX_AUTH_MESSAGE_LEN> = HString::new();
        let _ = write!(m, "{e}");
        if matches!(e, SaslError::InvalidCredentials)
            && self.config.sasl.mechanism == Some(crate::sasl::Mechanism::OAuthBearer)
            && self.sasl_token.is_empty()
        {
            m.clear();
            let _ = m.push_str(
                "no OAUTHBEARER token: the application gives one (sasl.oauthbearer.token)",
            );
        }
        self.sasl_failed(now_ms, k, ErrorCode::NONE, &m);
    }

    fn sasl_failed(&mut self, now_ms: u64, k: usize, code: ErrorCode, message: &str) {
        if self.sasl_pending.is_some_and(|(p, _, _)| p == k) {
            self.sasl_pending = None;
        }
        self.authentication_failed(
            now_ms,
            k,
            AuthFailure::new(AuthFailureKind::Sasl, code, message),
        );
    }

    /// Random bytes for a SCRAM nonce: SHA-256 of the producer's seed and a counter (the
    /// seed comes from the transport, which takes it from the system's random source).
    fn nonce_random(&mut self) -> [u8; NONCE_RANDOM_LEN] {
        let n = self.next_random();
        let digest = Sha256::new()
            .chain_update(self.sasl_seed.to_le_bytes())
            .chain_update(n.to_le_bytes())
            .finalize();
        let mut out = [0u8; NONCE_RANDOM_LEN];
        for (o, d) in out.iter_mut().zip(digest.iter()) {
            *o = *d;
        }
        out
    }

    /// A counter-based random value (splitmix64 over the seed).
    fn next_random(&mut self) -> u64 {
        self.sasl_counter = self.sasl_counter.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.sasl_seed ^ self.sasl_counter;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The OAUTHBEARER token for the next authentications.
    pub(crate) fn set_sasl_token(&mut self, token: &str) -> Result<(), TableFull> {
        self.sasl_token.clear();
        self.sasl_token.resize(token.len(), 0)?;
        self.sasl_token.copy_from_slice(token.as_bytes());
        Ok(())
    }
}
