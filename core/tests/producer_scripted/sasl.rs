//! The SASL exchanges (feature `sasl`) against the scripted broker: PLAIN, SCRAM (with an
//! independent server side), OAUTHBEARER, refusals and re-authentication.

use super::*;

impl Harness {
    /// ApiVersions listing SaslHandshake 0-1 and SaslAuthenticate 0-2 too.
    fn api_versions_with_sasl(&mut self, conn: u16) {
        let req = self.expect(conn, kp::ApiKey::ApiVersions);
        let mut resp = kp::ApiVersionsResponse::default();
        for (k, min, max) in [
            (0, 3, 11),
            (3, 0, 12),
            (17, 0, 1),
            (18, 0, 3),
            (22, 0, 5),
            (36, 0, 2),
        ] {
            let mut v = kp::api_versions_response::ApiVersion::default();
            v.api_key = k;
            v.min_version = min;
            v.max_version = max;
            resp.api_keys.push(v);
        }
        self.respond(conn, &req, &resp);
    }

    /// Connects the pending connection `conn` and answers its ApiVersions (with SASL)
    /// and its SaslHandshake for `mechanism`, enabling `enabled`.
    fn sasl_connect(&mut self, conn: u16, mechanism: &str, enabled: &[&str]) {
        self.connect_pending();
        self.api_versions_with_sasl(conn);
        self.sasl_handshake(conn, mechanism, enabled);
    }

    /// Expects SaslHandshake v1 for `mechanism` and enables `enabled`.
    fn sasl_handshake(&mut self, conn: u16, mechanism: &str, enabled: &[&str]) {
        let req = self.expect(conn, kp::ApiKey::SaslHandshake);
        assert_eq!(req.version, 1);
        let r: kp::SaslHandshakeRequest = req.decode();
        assert_eq!(r.mechanism.as_str(), mechanism);
        let mut resp = kp::SaslHandshakeResponse::default();
        if !enabled.contains(&mechanism) {
            resp.error_code = 33; // UNSUPPORTED_SASL_MECHANISM
        }
        resp.mechanisms = enabled.iter().map(|m| s(m)).collect();
        self.respond(conn, &req, &resp);
    }

    /// Expects a SaslAuthenticate and answers it (no server bytes); returns the client's
    /// bytes.
    fn sasl_authenticate(
        &mut self,
        conn: u16,
        error: Option<&str>,
        session_lifetime_ms: i64,
    ) -> Vec<u8> {
        self.sasl_exchange(conn, |_| Vec::new(), error, session_lifetime_ms)
    }

    /// Expects a SaslAuthenticate and answers it with `server(client bytes)`; returns
    /// the client's bytes.
    fn sasl_exchange(
        &mut self,
        conn: u16,
        server: impl FnOnce(&[u8]) -> Vec<u8>,
        error: Option<&str>,
        session_lifetime_ms: i64,
    ) -> Vec<u8> {
        let req = self.expect(conn, kp::ApiKey::SaslAuthenticate);
        assert_eq!(req.version, 2);
        let r: kp::SaslAuthenticateRequest = req.decode();
        let mut resp = kp::SaslAuthenticateResponse::default();
        resp.auth_bytes = server(&r.auth_bytes).into();
        if let Some(message) = error {
            resp.error_code = 58; // SASL_AUTHENTICATION_FAILED
            resp.error_message = Some(s(message));
        }
        resp.session_lifetime_ms = session_lifetime_ms;
        self.respond(conn, &req, &resp);
        r.auth_bytes.to_vec()
    }
}

fn plain() -> [(&'static str, &'static str); 4] {
    [
        ("linger.ms", "0"),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "PLAIN"),
        (
            "sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"alice\" password=\"alice-secret\";",
        ),
    ]
}

#[test]
fn sasl_runs_before_any_other_request_and_again_before_the_session_ends() {
    let mut h = Harness::new(&plain());
    let boot = h.conn_to("boot");
    h.connect_pending();
    h.api_versions_with_sasl(boot);
    // The handshake, then PLAIN's one message (sent as soon as the handshake is
    // answered), and nothing else until authenticated.
    h.sasl_handshake(boot, "PLAIN", &["PLAIN", "SCRAM-SHA-256"]);
    let bytes = h.sasl_authenticate(boot, None, 10_000);
    assert_eq!(bytes, b"\0alice\0alice-secret");
    assert_eq!(h.p.metrics().sasl_authentications, 1);
    let authenticated_at = h.now;
    // Now the producer's own requests flow.
    h.metadata(boot, &[]);
    h.init_producer_id(boot, 4000, 0);
    // Re-authentication at 85-95% of the 10 s session, on the idle connection: the
    // handshake and the exchange again, with no new connection.
    let connections = h.net.conns.len();
    for _ in 0..120 {
        if h.net.conns.get(&boot).is_some_and(|c| c.out.len() >= 4) {
            break;
        }
        h.advance(100);
    }
    let waited = h.now - authenticated_at;
    assert!(
        (8_500..=9_600).contains(&waited),
        "re-authenticated after {waited} ms"
    );
    h.sasl_handshake(boot, "PLAIN", &["PLAIN"]);
    h.sasl_authenticate(boot, None, 10_000);
    assert_eq!(h.p.metrics().sasl_authentications, 2);
    assert_eq!(h.net.conns.len(), connections, "the same connection");
    assert!(h.p.authentication_failure().is_none());
}

#[test]
fn a_refused_password_fails_queued_records_at_once_and_refuses_new_ones() {
    let mut h = Harness::new(&plain());
    let boot = h.conn_to("boot");
    h.sasl_connect(boot, "PLAIN", &["PLAIN"]);
    h.sasl_authenticate(boot, None, 0);
    h.metadata(boot, &[]);
    h.init_producer_id(boot, 4000, 0);
    assert_eq!(h.send("t", None, b"x"), Err(SendError::MetadataNotReady));
    h.metadata(boot, &[("t", &[1])]);
    // A record queued for broker 1, whose connection refuses the password.
    let t = h.send("t", Some(0), b"queued").unwrap();
    let b1 = h.conn_to("broker-1");
    h.sasl_connect(b1, "PLAIN", &["PLAIN"]);
    h.sasl_authenticate(
        b1,
        Some("Authentication failed: Invalid username or password"),
        0,
    );
    let f = failed(&h);
    assert_eq!(f.len(), 1, "{:?}", h.net.events);
    assert!(f[0].0.contains(t));
    assert_eq!(
        f[0].1,
        ProduceError::Authentication(kafka_edge_core::security::AuthFailureKind::Sasl)
    );
    let failure = h.p.authentication_failure().expect("kept").clone();
    assert_eq!(
        failure.message.as_str(),
        "Authentication failed: Invalid username or password"
    );
    assert_eq!(failure.code.0, 58);
    assert!(matches!(
        h.send("t", Some(0), b"new"),
        Err(SendError::Authentication(_))
    ));
    // The connection was closed. A metadata update (on the authenticated bootstrap
    // connection) clears the failure, as in Java; the next record goes to broker 1,
    // whose connection now authenticates.
    assert!(h.net.events.contains(&Ev::Disconnect(b1)));
    h.wait_request(boot, 10);
    h.metadata(boot, &[("t", &[1])]);
    assert!(h.p.authentication_failure().is_none());
    h.send("t", Some(0), b"again").unwrap();
    // After broker 1's reconnect backoff.
    h.advance(1_000);
    let b1 = h.conn_to("broker-1");
    h.sasl_connect(b1, "PLAIN", &["PLAIN"]);
    h.sasl_authenticate(b1, None, 0);
    h.wait_request(b1, 3);
    let req = h.expect(b1, kp::ApiKey::Produce);
    let (_, batches) = produce_batches(&req);
    assert_eq!(batches[0].2[0].value.as_deref(), Some(&b"again"[..]));
}

#[test]
fn an_unsupported_mechanism_names_the_enabled_ones() {
    let mut h = Harness::new(&plain());
    let boot = h.conn_to("boot");
    h.sasl_connect(boot, "PLAIN", &["SCRAM-SHA-256", "SCRAM-SHA-512"]);
    let failure = h.p.authentication_failure().expect("failed");
    assert_eq!(
        failure.message.as_str(),
        "Client SASL mechanism 'PLAIN' not enabled in the server, enabled mechanisms are \
         [SCRAM-SHA-256, SCRAM-SHA-512]"
    );
    assert!(matches!(
        h.send("t", None, b"x"),
        Err(SendError::Authentication(_))
    ));
}

#[test]
fn garbage_in_place_of_a_sasl_response_closes_the_connection() {
    let mut h = Harness::new(&plain());
    let boot = h.conn_to("boot");
    h.connect_pending();
    h.api_versions_with_sasl(boot);
    let req = h.expect(boot, kp::ApiKey::SaslHandshake);
    // A frame with the right correlation id and a body that is not a response.
    let mut frame = req.correlation_id.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0xff; 3]);
    let mut bytes = (frame.len() as i32).to_be_bytes().to_vec();
    bytes.extend_from_slice(&frame);
    h.feed(boot, &bytes);
    assert!(h.net.events.contains(&Ev::Disconnect(boot)));
    assert!(
        h.p.authentication_failure().is_none(),
        "not an authentication answer"
    );
}

/// The broker's side of SCRAM-SHA-256 (RFC 5802), independent of the producer's.
mod scram_server {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    pub(super) const SALT: &[u8] = b"kafka-edge-salt!";
    pub(super) const ITERATIONS: u32 = 4096;

    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    /// server-first for `client_first` (`n,,n=user,r=nonce`).
    pub(super) fn first(client_first: &[u8]) -> String {
        let text = std::str::from_utf8(client_first).unwrap();
        let nonce = text.split(",r=").nth(1).unwrap();
        format!(
            "r={nonce}SRVNONCE,s={},i={ITERATIONS}",
            STANDARD.encode(SALT)
        )
    }

    /// Checks client-final's proof; returns server-final (`v=...`).
    pub(super) fn last(
        client_first: &[u8],
        server_first: &str,
        client_final: &[u8],
        password: &str,
    ) -> String {
        let client_first_bare = std::str::from_utf8(client_first)
            .unwrap()
            .strip_prefix("n,,")
            .unwrap();
        let client_final = std::str::from_utf8(client_final).unwrap();
        let (without_proof, proof) = client_final.rsplit_once(",p=").unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), SALT, ITERATIONS, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let expected: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(
            STANDARD.decode(proof).unwrap(),
            expected,
            "the client's proof"
        );
        let server_key = hmac(&salted, b"Server Key");
        format!(
            "v={}",
            STANDARD.encode(hmac(&server_key, auth_message.as_bytes()))
        )
    }
}

fn scram(password: &'static str) -> [(&'static str, &'static str); 5] {
    [
        ("linger.ms", "0"),
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", "alice"),
        ("sasl.password", password),
    ]
}

/// Runs SCRAM up to server-final on a new bootstrap connection; `tamper` changes the
/// server's signature.
fn scram_exchange(h: &mut Harness, tamper: bool) -> u16 {
    let boot = h.conn_to("boot");
    h.sasl_connect(boot, "SCRAM-SHA-256", &["SCRAM-SHA-256"]);
    let mut server_first = String::new();
    let client_first = h.sasl_exchange(
        boot,
        |cf| {
            server_first = scram_server::first(cf);
            server_first.clone().into_bytes()
        },
        None,
        0,
    );
    assert!(client_first.starts_with(b"n,,n=alice,r="));
    h.sasl_exchange(
        boot,
        |client_final| {
            let mut last =
                scram_server::last(&client_first, &server_first, client_final, "alice-secret");
            if tamper {
                last = format!("v={}", "A".repeat(43) + "=");
            }
            last.into_bytes()
        },
        None,
        0,
    );
    boot
}

#[test]
fn scram_sha_256_against_an_independent_server_side() {
    let mut h = Harness::new(&scram("alice-secret"));
    let boot = scram_exchange(&mut h, false);
    assert_eq!(h.p.metrics().sasl_authentications, 1);
    assert!(h.p.authentication_failure().is_none());
    // Authenticated: the producer's own requests follow.
    h.metadata(boot, &[]);
}

#[test]
fn a_server_signature_that_does_not_match_fails_on_the_client_side() {
    let mut h = Harness::new(&scram("alice-secret"));
    let boot = scram_exchange(&mut h, true);
    let failure =
        h.p.authentication_failure()
            .expect("the client refuses the server");
    assert_eq!(failure.code.0, 0, "a client-side failure");
    assert!(failure.message.contains("signature"), "{}", failure.message);
    assert!(h.net.events.contains(&Ev::Disconnect(boot)));
    assert_eq!(h.p.metrics().sasl_authentications, 0);
}
