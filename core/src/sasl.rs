//! SASL client mechanisms (feature `sasl`): `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` and
//! `OAUTHBEARER`, as one sans-IO state machine, [`SaslClient`], that writes its tokens into
//! buffers the caller lends. No heap, no clock, no randomness: the SCRAM nonce is made of
//! random bytes the transport supplies.
//!
//! # The exchange, as Java's `SaslClientAuthenticator` drives it
//!
//! On a fresh connection (after `ApiVersions`), the sender:
//!
//! 1. sends `SaslHandshake` v1 with [`SaslClient::mechanism`]'s [`name`](Mechanism::name);
//!    an error (`UNSUPPORTED_SASL_MECHANISM`, with the broker's list) ends it;
//! 2. sends the bytes of [`SaslClient::start`] as the `auth_bytes` of a `SaslAuthenticate`
//!    request;
//! 3. for every `SaslAuthenticate` response: a non-`NONE` `error_code` ends authentication
//!    with the broker's `error_message` (wrong password, rejected token: the broker then
//!    closes the connection); otherwise its `auth_bytes` go to [`SaslClient::step`], which
//!    says either [`Step::Send`] (one more `SaslAuthenticate` request with those bytes) or
//!    [`Step::Done`] (authenticated; `session_lifetime_ms` of that last response says when
//!    to re-authenticate, which this module leaves to the sender).
//!
//! Per mechanism, the client messages and server answers are:
//!
//! | mechanism | client sends | server answers | client then |
//! |---|---|---|---|
//! | `PLAIN` (RFC 4616) | `\0<user>\0<password>` (empty authzid) | empty | done (bytes ignored, as Java does) |
//! | `SCRAM-*` (RFC 5802, 7677) | `n,,n=<saslname>,r=<nonce>` | `r=..,s=..,i=..` | `c=biws,r=..,p=<proof>` |
//! | | | `v=<server signature>` | done once the signature checks out |
//! | `OAUTHBEARER` (RFC 7628) | `n,,\x01auth=Bearer <token>[\x01key=value]*\x01\x01` | empty | done |
//! | | | a JSON error document | `\x01`; the broker answers `SASL_AUTHENTICATION_FAILED` |
//!
//! SCRAM follows Kafka's `ScramSaslClient`: the password is used as its UTF-8 bytes (Kafka
//! applies no SASLprep), the server nonce must start with the client nonce, and the iteration
//! count must lie in [`SCRAM_MIN_ITERATIONS`]`..=`[`SCRAM_MAX_ITERATIONS`] (Java's
//! `ScramMechanism` bounds; the client in Java checks only the minimum, this one also refuses
//! counts a Kafka broker cannot hold, which would stall a small CPU). SCRAM extensions are
//! neither sent nor required (Kafka's only one, `tokenauth`, is for delegation tokens).
//!
//! OAUTHBEARER follows Kafka's `OAuthBearerSaslClient` and `OAuthBearerClientInitialResponse`:
//! no authzid; optional SASL extensions (`key=value`, key `[A-Za-z]+` and not `auth`, value of
//! bytes `0x21..=0x7E`, space, tab, CR or LF) in the order given. On a rejected token the
//! broker answers a first time with `error_code` `NONE` and a JSON document in `auth_bytes`
//! (`{"status":"invalid_token",...}`, worth logging before calling `step`); `step` answers
//! `\x01` ([`Step::Send`] of one byte), and the broker answers that with
//! `SASL_AUTHENTICATION_FAILED` and its message. Calling `step` again after the `\x01` is
//! [`SaslError::OAuthBearerRejected`].
//!
//! # Buffer sizes
//!
//! Every message is written into the caller's `out`; a buffer too small is
//! [`SaslError::BufferTooSmall`] naming the bytes needed, and leaves the client as it was (call
//! again with a larger buffer and the same input).
//!
//! - `PLAIN`: `2 + username + password` bytes.
//! - SCRAM client-first: `8 + saslname + nonce` bytes, where the saslname is the username
//!   with `,` and `=` escaped to 3 bytes each, and the nonce is `4/3` of the random bytes
//!   (24 characters for the recommended 18 bytes, 64 at most); [`SaslClient::start_len`] says
//!   exactly.
//! - SCRAM client-final: `12 + server nonce + 44` bytes (SHA-256) or `+ 88` (SHA-512); Kafka's
//!   server nonce is the client nonce plus about 26 characters.
//!
//! So 512 bytes hold every SCRAM message for usernames up to 255 bytes without `,` or `=`,
//! and 1024 bytes for any username up to 255 bytes. `OAUTHBEARER`: `18 + token` bytes, plus
//! `2 + key + value` per extension; tokens (JWTs) are often over 1 KiB: size it for yours.
//! The server's messages are read in place from the response (a salt of at most
//! [`SCRAM_MAX_SALT_LEN`] bytes).
//!
//! # Example
//!
//! ```
//! use kafka_edge_core::sasl::{Mechanism, SaslClient, Step};
//! // 18 random bytes from the transport's RNG (fixed here for the example).
//! let random = [7u8; 18];
//! let mut client = SaslClient::scram(Mechanism::ScramSha256, "alice", "secret", &random)?;
//! let mut out = [0u8; 512];
//! let n = client.start(&mut out)?; // auth_bytes of the first SaslAuthenticate request
//! assert!(out[..n].starts_with(b"n,,n=alice,r="));
//! // ... then for each SaslAuthenticate response with error_code NONE:
//! // match client.step(response.auth_bytes, &mut out)? {
//! //     Step::Send(n) => send SaslAuthenticate { auth_bytes: &out[..n] },
//! //     Step::Done => authenticated,
//! // }
//! # Ok::<(), kafka_edge_core::sasl::SaslError>(())
//! ```

use core::fmt;
use core::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use crate::protocol::Writer;

mod scram;
use scram::{ScramHashKind, for_saslname, saslname_len, verify_server_final};

/// The smallest SCRAM iteration count accepted (Kafka's `ScramMechanism.minIterations`).
pub const SCRAM_MIN_ITERATIONS: u32 = 4096;
/// The largest SCRAM iteration count accepted (Kafka's `ScramMechanism.maxIterations`: a
/// broker cannot store credentials with more).
pub const SCRAM_MAX_ITERATIONS: u32 = 16384;
/// The longest SCRAM salt accepted, in bytes (Kafka's are about 26).
pub const SCRAM_MAX_SALT_LEN: usize = 128;
/// The fewest random bytes accepted for a SCRAM client nonce (18 recommended).
pub const SCRAM_MIN_NONCE_RANDOM_LEN: usize = 12;
/// The most random bytes accepted for a SCRAM client nonce (a 64-character nonce).
pub const SCRAM_MAX_NONCE_RANDOM_LEN: usize = 48;

/// Bytes of a SHA-512 output, the largest hash here.
const MAX_HASH_LEN: usize = 64;
const MAX_NONCE_LEN: usize = SCRAM_MAX_NONCE_RANDOM_LEN / 3 * 4;
/// Base64 characters of the longest salt accepted.
const MAX_SALT_B64_LEN: usize = SCRAM_MAX_SALT_LEN.div_ceil(3) * 4;
/// Base64 characters of a SHA-512 signature.
const MAX_SIGNATURE_B64_LEN: usize = MAX_HASH_LEN.div_ceil(3) * 4;

/// The SASL mechanisms this module speaks, named as Kafka's `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616): the password in clear text; use over TLS only.
    Plain,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512` (RFC 5802 with SHA-512).
    ScramSha512,
    /// `OAUTHBEARER` (RFC 7628): a bearer token the application obtained.
    OAuthBearer,
}

impl Mechanism {
    /// Every mechanism.
    pub const ALL: [Self; 4] = [
        Self::Plain,
        Self::ScramSha256,
        Self::ScramSha512,
        Self::OAuthBearer,
    ];

    /// The IANA name, as sent in `SaslHandshake` and written in `sasl.mechanism`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism of this name (exact, case-sensitive, as Java matches it).
    ///
    /// ```
    /// use kafka_edge_core::sasl::Mechanism;
    /// assert_eq!(Mechanism::from_name("SCRAM-SHA-512"), Some(Mechanism::ScramSha512));
    /// assert_eq!(Mechanism::from_name("GSSAPI"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    const fn scram_hash(self) -> Option<ScramHashKind> {
        match self {
            Self::ScramSha256 => Some(ScramHashKind::Sha256),
            Self::ScramSha512 => Some(ScramHashKind::Sha512),
            Self::Plain | Self::OAuthBearer => None,
        }
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mechanism {
    type Err = SaslError;

    /// [`Mechanism::from_name`], failing with [`SaslError::UnknownMechanism`].
    fn from_str(s: &str) -> Result<Self, SaslError> {
        Self::from_name(s).ok_or(SaslError::UnknownMechanism)
    }
}

/// What the client authenticates with, borrowed from the caller for the whole exchange.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// For `PLAIN` and SCRAM.
    Password {
        /// The user name (`authcid`); for PLAIN without NUL bytes.
        username: &'a str,
        /// The password; for PLAIN without NUL bytes.
        password: &'a str,
    },
    /// For `OAUTHBEARER`.
    Token {
        /// The bearer token (usually a JWT): bytes `0x21..=0x7E` only.
        token: &'a str,
        /// SASL extensions (`key`, `value`) sent after the token, in this order; usually
        /// none.
        extensions: &'a [(&'a str, &'a str)],
    },
}

/// Hides the secrets.
impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .finish_non_exhaustive(),
            Self::Token { extensions, .. } => f
                .debug_struct("Token")
                .field("extensions", &extensions.len())
                .finish_non_exhaustive(),
        }
    }
}

/// What to do after [`SaslClient::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send the first `n` bytes of `out` as the `auth_bytes` of one more `SaslAuthenticate`
    /// request.
    Send(usize),
    /// Authentication succeeded (for SCRAM: the server proved it knows the password too).
    Done,
}

/// Which part of a SCRAM server message is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// A mandatory extension (`m=`) the client cannot honour (RFC 5802 §5.1).
    MandatoryExtension,
    /// `r=` is missing or is not printable ASCII without `,`.
    Nonce,
    /// `s=` is missing, is not canonical base64, or is longer than [`SCRAM_MAX_SALT_LEN`].
    Salt,
    /// `i=` is missing or is not a decimal `u32`.
    Iterations,
    /// What follows is not a list of `,name=value` extensions.
    Extensions,
    /// The server-final message is neither `v=<base64 of one hash>` nor `e=<value>`.
    ServerFinal,
}

impl Malformed {
    const fn as_str(self) -> &'static str {
        match self {
            Self::MandatoryExtension => "an unsupported mandatory extension (m=)",
            Self::Nonce => "no valid nonce (r=)",
            Self::Salt => "no valid salt (s=)",
            Self::Iterations => "no valid iteration count (i=)",
            Self::Extensions => "malformed extensions",
            Self::ServerFinal => "neither a verifier (v=) nor an error (e=)",
        }
    }
}

/// The `server-error-value` of a SCRAM server-final `e=` message (RFC 5802 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScramServerError {
    /// `invalid-encoding`.
    InvalidEncoding,
    /// `extensions-not-supported`.
    ExtensionsNotSupported,
    /// `invalid-proof`: wrong password.
    InvalidProof,
    /// `channel-bindings-dont-match`.
    ChannelBindingsDontMatch,
    /// `server-does-support-channel-binding`.
    ServerDoesSupportChannelBinding,
    /// `channel-binding-not-supported`.
    ChannelBindingNotSupported,
    /// `unsupported-channel-binding-type`.
    UnsupportedChannelBindingType,
    /// `unknown-user`.
    UnknownUser,
    /// `invalid-username-encoding`.
    InvalidUsernameEncoding,
    /// `no-resources`.
    NoResources,
    /// `other-error`.
    OtherError,
    /// A value the RFC does not list (`server-error-value-ext`).
    Unrecognized,
}

impl ScramServerError {
    const KNOWN: [(&'static [u8], Self); 11] = [
        (b"invalid-encoding", Self::InvalidEncoding),
        (b"extensions-not-supported", Self::ExtensionsNotSupported),
        (b"invalid-proof", Self::InvalidProof),
        (
            b"channel-bindings-dont-match",
            Self::ChannelBindingsDontMatch,
        ),
        (
            b"server-does-support-channel-binding",
            Self::ServerDoesSupportChannelBinding,
        ),
        (
            b"channel-binding-not-supported",
            Self::ChannelBindingNotSupported,
        ),
        (
            b"unsupported-channel-binding-type",
            Self::UnsupportedChannelBindingType,
        ),
        (b"unknown-user", Self::UnknownUser),
        (b"invalid-username-encoding", Self::InvalidUsernameEncoding),
        (b"no-resources", Self::NoResources),
        (b"other-error", Self::OtherError),
    ];

    fn from_value(value: &[u8]) -> Self {
        Self::KNOWN
            .iter()
            .find(|(name, _)| *name == value)
            .map_or(Self::Unrecognized, |(_, e)| *e)
    }

    /// The value as the RFC spells it (`"server-error-value-ext"` for
    /// [`Unrecognized`](Self::Unrecognized)).
    pub fn as_str(self) -> &'static str {
        Self::KNOWN
            .iter()
            .find(|(_, e)| *e == self)
            .and_then(|(name, _)| core::str::from_utf8(name).ok())
            .unwrap_or("server-error-value-ext")
    }
}

impl fmt::Display for ScramServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a SASL exchange cannot go on. Apart from [`BufferTooSmall`](Self::BufferTooSmall), an
/// error during [`SaslClient::step`] ends the exchange: close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslError {
    /// No mechanism has this name.
    UnknownMechanism,
    /// The credentials do not fit the mechanism (a token for SCRAM, a password for
    /// OAUTHBEARER).
    CredentialsMismatch,
    /// Credentials the mechanism cannot carry: a NUL byte in a PLAIN username or password,
    /// a token that is empty or not printable ASCII, an invalid extension.
    InvalidCredentials,
    /// The random bytes for a SCRAM nonce are fewer than [`SCRAM_MIN_NONCE_RANDOM_LEN`] or
    /// more than [`SCRAM_MAX_NONCE_RANDOM_LEN`].
    InvalidNonce,
    /// `out` is too small; nothing changed: call again with `needed` bytes.
    BufferTooSmall {
        /// The size of `out` the message needs.
        needed: usize,
    },
    /// `start` after it already ran, `step` before it, or `step` after the exchange ended.
    OutOfOrder,
    /// The server's SCRAM message does not parse.
    Malformed(Malformed),
    /// The server nonce does not start with the client nonce.
    NonceMismatch,
    /// The SCRAM iteration count is outside
    /// [`SCRAM_MIN_ITERATIONS`]`..=`[`SCRAM_MAX_ITERATIONS`].
    IterationsOutOfRange {
        /// The count the server asked for.
        iterations: u32,
    },
    /// The server ended the SCRAM exchange with `e=<value>`.
    ServerError(ScramServerError),
    /// The server's SCRAM signature is wrong: it does not know the password (or a
    /// man in the middle answered).
    ServerSignatureMismatch,
    /// The broker rejected the OAUTHBEARER token (answered after the client's `\x01`).
    OAuthBearerRejected,
}

impl fmt::Display for SaslError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownMechanism => f.write_str("unknown SASL mechanism"),
            Self::CredentialsMismatch => {
                f.write_str("the credentials do not fit the SASL mechanism")
            }
            Self::InvalidCredentials => {
                f.write_str("the credentials contain bytes the SASL mechanism cannot carry")
            }
            Self::InvalidNonce => write!(
                f,
                "a SCRAM nonce takes {SCRAM_MIN_NONCE_RANDOM_LEN} to \
                 {SCRAM_MAX_NONCE_RANDOM_LEN} random bytes"
            ),
            Self::BufferTooSmall { needed } => {
                write!(f, "SASL output buffer too small: {needed} bytes needed")
            }
            Self::OutOfOrder => f.write_str("SASL step out of order"),
            Self::Malformed(m) => write!(f, "malformed SCRAM server message: {}", m.as_str()),
            Self::NonceMismatch => {
                f.write_str("invalid SCRAM server nonce: does not start with the client nonce")
            }
            Self::IterationsOutOfRange { iterations } => write!(
                f,
                "SCRAM iteration count {iterations} outside \
                 {SCRAM_MIN_ITERATIONS}..={SCRAM_MAX_ITERATIONS}"
            ),
            Self::ServerError(e) => write!(f, "SCRAM server error: {e}"),
            Self::ServerSignatureMismatch => f.write_str("invalid SCRAM server signature"),
            Self::OAuthBearerRejected => f.write_str("the broker rejected the OAUTHBEARER token"),
        }
    }
}

impl core::error::Error for SaslError {}

impl From<Malformed> for SaslError {
    fn from(m: Malformed) -> Self {
        Self::Malformed(m)
    }
}

/// The client side of one SASL exchange, over credentials borrowed from the caller.
///
/// Commands: [`start`](Self::start) once, then [`step`](Self::step) with the `auth_bytes` of
/// every `SaslAuthenticate` response whose `error_code` is `NONE`, until [`Step::Done`] or an
/// error. Getters: [`mechanism`](Self::mechanism), [`start_len`](Self::start_len),
/// [`is_done`](Self::is_done). See the [module docs](self) for the exchange and the buffer
/// sizes.
#[derive(Clone)]
pub struct SaslClient<'a> {
    mechanism: Mechanism,
    credentials: Credentials<'a>,
    /// The SCRAM client nonce (printable, no `,`); `nonce_len` bytes used.
    nonce: [u8; MAX_NONCE_LEN],
    nonce_len: u8,
    state: State,
}

/// An exchange without its credentials: what a [`SaslClient`] keeps between messages, for a
/// caller that cannot keep the credentials borrowed from one message to the next (the
/// producer's connections, whose credentials live in the configuration beside them). Get it
/// with [`SaslClient::suspend`], go on with [`SaslClient::resume`].
#[derive(Clone)]
pub struct SaslExchange {
    mechanism: Mechanism,
    nonce: [u8; MAX_NONCE_LEN],
    nonce_len: u8,
    state: State,
}

impl SaslExchange {
    /// The mechanism.
    pub const fn mechanism(&self) -> Mechanism {
        self.mechanism
    }
}

impl fmt::Debug for SaslExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslExchange")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
enum State {
    Initial,
    /// PLAIN and OAUTHBEARER sent their only message.
    AwaitOutcome,
    AwaitServerFirst,
    /// The expected ServerSignature, computed from the server-first message.
    AwaitServerFinal(scram::ServerSignature),
    /// OAUTHBEARER answered a JSON error with `\x01`.
    OAuthAwaitFailure,
    Done,
    Failed,
}

impl fmt::Debug for SaslClient<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslClient")
            .field("mechanism", &self.mechanism)
            .field("credentials", &self.credentials)
            .field("done", &self.is_done())
            .finish_non_exhaustive()
    }
}

impl<'a> SaslClient<'a> {
    /// A client for `mechanism`; `nonce_random` (for SCRAM only, ignored otherwise) are
    /// [`SCRAM_MIN_NONCE_RANDOM_LEN`]`..=`[`SCRAM_MAX_NONCE_RANDOM_LEN`] bytes from a
    /// cryptographic RNG, fresh for every exchange (18 recommended), which the client encodes
    /// as base64 (without padding, so without `,` or `=`).
    pub fn new(
        mechanism: Mechanism,
        credentials: Credentials<'a>,
        nonce_random: &[u8],
    ) -> Result<Self, SaslError> {
        let mut client = Self {
            mechanism,
            credentials,
            nonce: [0; MAX_NONCE_LEN],
            nonce_len: 0,
            state: State::Initial,
        };
        match (mechanism, credentials) {
            (Mechanism::Plain, Credentials::Password { username, password }) => {
                if username.contains('\0') || password.contains('\0') {
                    return Err(SaslError::InvalidCredentials);
                }
            }
            (Mechanism::ScramSha256 | Mechanism::ScramSha512, Credentials::Password { .. }) => {
                if !(SCRAM_MIN_NONCE_RANDOM_LEN..=SCRAM_MAX_NONCE_RANDOM_LEN)
                    .contains(&nonce_random.len())
                {
                    return Err(SaslError::InvalidNonce);
                }
                let n = STANDARD_NO_PAD
                    .encode_slice(nonce_random, &mut client.nonce)
                    .map_err(|_| SaslError::InvalidNonce)?;
                client.nonce_len = u8::try_from(n).map_err(|_| SaslError::InvalidNonce)?;
            }
            (Mechanism::OAuthBearer, Credentials::Token { token, extensions }) => {
                let printable = |s: &str| s.bytes().all(|b| (0x21..=0x7e).contains(&b));
                let valid_key = |k: &str| {
                    !k.is_empty() && k != "auth" && k.bytes().all(|b| b.is_ascii_alphabetic())
                };
                let valid_value = |v: &str| {
                    !v.is_empty()
                        && v.bytes()
                            .all(|b| matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
                };
                if token.is_empty()
                    || !printable(token)
                    || !extensions
                        .iter()
                        .all(|(k, v)| valid_key(k) && valid_value(v))
                {
                    return Err(SaslError::InvalidCredentials);
                }
            }
            _ => return Err(SaslError::CredentialsMismatch),
        }
        Ok(client)
    }

    /// A `PLAIN` client.
    pub fn plain(username: &'a str, password: &'a str) -> Result<Self, SaslError> {
        Self::new(
            Mechanism::Plain,
            Credentials::Password { username, password },
            &[],
        )
    }

    /// A SCRAM client (`mechanism` is [`Mechanism::ScramSha256`] or
    /// [`Mechanism::ScramSha512`]); `nonce_random` as for [`new`](Self::new).
    pub fn scram(
        mechanism: Mechanism,
        username: &'a str,
        password: &'a str,
        nonce_random: &[u8],
    ) -> Result<Self, SaslError> {
        if mechanism.scram_hash().is_none() {
            return Err(SaslError::CredentialsMismatch);
        }
        Self::new(
            mechanism,
            Credentials::Password { username, password },
            nonce_random,
        )
    }

    /// An `OAUTHBEARER` client sending `token` and `extensions` (usually `&[]`).
    pub fn oauthbearer(
        token: &'a str,
        extensions: &'a [(&'a str, &'a str)],
    ) -> Result<Self, SaslError> {
        Self::new(
            Mechanism::OAuthBearer,
            Credentials::Token { token, extensions },
            &[],
        )
    }

    /// The exchange so far without the credentials (see [`SaslExchange`]).
    pub fn suspend(self) -> SaslExchange {
        SaslExchange {
            mechanism: self.mechanism,
            nonce: self.nonce,
            nonce_len: self.nonce_len,
            state: self.state,
        }
    }

    /// Goes on with `exchange` and the same `credentials` it started with (other
    /// credentials of the right kind make the exchange fail, never panic; the wrong kind is
    /// [`SaslError::CredentialsMismatch`]).
    pub fn resume(exchange: SaslExchange, credentials: Credentials<'a>) -> Result<Self, SaslError> {
        let fits = match credentials {
            Credentials::Password { .. } => exchange.mechanism != Mechanism::OAuthBearer,
            Credentials::Token { .. } => exchange.mechanism == Mechanism::OAuthBearer,
        };
        if !fits {
            return Err(SaslError::CredentialsMismatch);
        }
        Ok(Self {
            mechanism: exchange.mechanism,
            credentials,
            nonce: exchange.nonce,
            nonce_len: exchange.nonce_len,
            state: exchange.state,
        })
    }

    /// The mechanism, whose [`name`](Mechanism::name) goes into `SaslHandshake`.
    pub const fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Whether the exchange succeeded ([`Step::Done`] was returned).
    pub const fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Bytes [`start`](Self::start) writes.
    pub fn start_len(&self) -> usize {
        match self.credentials {
            Credentials::Password { username, password } => match self.mechanism {
                Mechanism::Plain => 2usize
                    .saturating_add(username.len())
                    .saturating_add(password.len()),
                _ => 8usize
                    .saturating_add(saslname_len(username))
                    .saturating_add(self.nonce().len()),
            },
            Credentials::Token { token, extensions } => {
                extensions
                    .iter()
                    .fold(18usize.saturating_add(token.len()), |n, (k, v)| {
                        n.saturating_add(2)
                            .saturating_add(k.len())
                            .saturating_add(v.len())
                    })
            }
        }
    }

    /// Writes the client's first message (the `auth_bytes` of the first `SaslAuthenticate`
    /// request) into `out`, and says how many bytes it wrote.
    pub fn start(&mut self, out: &mut [u8]) -> Result<usize, SaslError> {
        if !matches!(self.state, State::Initial) {
            return Err(SaslError::OutOfOrder);
        }
        let needed = self.start_len();
        if out.len() < needed {
            return Err(SaslError::BufferTooSmall { needed });
        }
        let mut w = Writer::new(out);
        let written = match self.credentials {
            Credentials::Password { username, password } => {
                if self.mechanism == Mechanism::Plain {
                    put(&mut w, &[0])?;
                    put(&mut w, username.as_bytes())?;
                    put(&mut w, &[0])?;
                    put(&mut w, password.as_bytes())?;
                    self.state = State::AwaitOutcome;
                } else {
                    put(&mut w, b"n,,n=")?;
                    for_saslname(username, |part| put(&mut w, part))?;
                    put(&mut w, b",r=")?;
                    put(&mut w, self.nonce())?;
                    self.state = State::AwaitServerFirst;
                }
                w.position()
            }
            Credentials::Token { token, extensions } => {
                put(&mut w, b"n,,\x01auth=Bearer ")?;
                put(&mut w, token.as_bytes())?;
                for (k, v) in extensions {
                    put(&mut w, b"\x01")?;
                    put(&mut w, k.as_bytes())?;
                    put(&mut w, b"=")?;
                    put(&mut w, v.as_bytes())?;
                }
                put(&mut w, b"\x01\x01")?;
                self.state = State::AwaitOutcome;
                w.position()
            }
        };
        Ok(written)
    }

    /// Takes the server's message (the `auth_bytes` of a `SaslAuthenticate` response whose
    /// `error_code` is `NONE`) and says whether to send another message, written into `out`,
    /// or that authentication is complete.
    ///
    /// Never panics, whatever `server` holds. On any error but
    /// [`SaslError::BufferTooSmall`] the exchange is over and further calls fail with
    /// [`SaslError::OutOfOrder`].
    pub fn step(&mut self, server: &[u8], out: &mut [u8]) -> Result<Step, SaslError> {
        let result = self.step_inner(server, out);
        match result {
            Err(SaslError::BufferTooSmall { .. }) | Ok(_) => {}
            Err(_) => self.state = State::Failed,
        }
        result
    }

    fn step_inner(&mut self, server: &[u8], out: &mut [u8]) -> Result<Step, SaslError> {
        match &self.state {
            State::AwaitOutcome if self.mechanism == Mechanism::OAuthBearer => {
                if server.is_empty() {
                    self.state = State::Done;
                    Ok(Step::Done)
                } else {
                    // A JSON error: Kafka's client answers %x01 (RFC 7628 §3.2.3) and the
                    // broker then fails the exchange with its error message.
                    let first = out
                        .first_mut()
                        .ok_or(SaslError::BufferTooSmall { needed: 1 })?;
                    *first = 0x01;
                    self.state = State::OAuthAwaitFailure;
                    Ok(Step::Send(1))
                }
            }
            State::AwaitOutcome => {
                // PLAIN: once the token is sent the client is complete; Java ignores
                // whatever the broker sends back.
                self.state = State::Done;
                Ok(Step::Done)
            }
            State::AwaitServerFirst => {
                let n = self.client_final(server, out)?;
                Ok(Step::Send(n))
            }
            State::AwaitServerFinal(signature) => {
                verify_server_final(server, signature.as_slice())?;
                self.state = State::Done;
                Ok(Step::Done)
            }
            State::OAuthAwaitFailure => Err(SaslError::OAuthBearerRejected),
            State::Initial | State::Done | State::Failed => Err(SaslError::OutOfOrder),
        }
    }

    fn nonce(&self) -> &[u8] {
        self.nonce
            .get(..usize::from(self.nonce_len))
            .unwrap_or_default()
    }

    /// Parses server-first, checks it, writes client-final, and keeps the expected server
    /// signature.
    fn client_final(&mut self, server: &[u8], out: &mut [u8]) -> Result<usize, SaslError> {
        let (Credentials::Password { username, password }, Some(hash)) =
            (self.credentials, self.mechanism.scram_hash())
        else {
            return Err(SaslError::OutOfOrder);
        };
        let (n, signature) =
            scram::client_final(hash, username, password, self.nonce(), server, out)?;
        self.state = State::AwaitServerFinal(signature);
        Ok(n)
    }
}

/// Writes `bytes`; the caller has checked the size, so a failure only names the size.
fn put(w: &mut Writer<'_>, bytes: &[u8]) -> Result<(), SaslError> {
    w.write_raw(bytes).map_err(|_| SaslError::BufferTooSmall {
        needed: w.position().saturating_add(bytes.len()),
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn test_suspend_and_resume_scram() {
        // The RFC 7677 exchange, suspended between every message.
        let c = SaslClient::scram(Mechanism::ScramSha256, "user", "pencil", &[7; 18]).unwrap();
        let mut out = [0u8; 256];
        let mut c = SaslClient::resume(
            c.suspend(),
            Credentials::Password {
                username: "user",
                password: "pencil",
            },
        )
        .unwrap();
        let n = c.start(&mut out).unwrap();
        assert!(out[..n].starts_with(b"n,,n=user,r="));
        let e = c.suspend();
        assert_eq!(e.mechanism(), Mechanism::ScramSha256);
        assert_eq!(
            SaslClient::resume(
                e.clone(),
                Credentials::Token {
                    token: "t",
                    extensions: &[]
                }
            )
            .err(),
            Some(SaslError::CredentialsMismatch)
        );
        let mut c = SaslClient::resume(
            e,
            Credentials::Password {
                username: "user",
                password: "pencil",
            },
        )
        .unwrap();
        // A server nonce that does not extend the client's fails, typed.
        assert_eq!(
            c.step(b"r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", &mut out),
            Err(SaslError::NonceMismatch)
        );
    }

    #[test]
    fn test_plain_bytes() {
        let mut c = SaslClient::plain("alice", "s3cr3t").unwrap();
        assert_eq!(c.mechanism().name(), "PLAIN");
        let mut out = [0u8; 64];
        let n = c.start(&mut out).unwrap();
        assert_eq!(&out[..n], b"\0alice\0s3cr3t");
        assert_eq!(c.step(b"", &mut out), Ok(Step::Done));
        assert!(c.is_done());
        assert_eq!(
            SaslClient::plain("al\0ice", "p").err(),
            Some(SaslError::InvalidCredentials)
        );
        assert_eq!(
            SaslClient::plain("alice", "p").unwrap().start(&mut [0; 3]),
            Err(SaslError::BufferTooSmall { needed: 8 })
        );
    }

    #[test]
    fn test_oauthbearer_bytes() {
        let mut c = SaslClient::oauthbearer("eyJhbGciOi.e30.sig", &[]).unwrap();
        let mut out = [0u8; 64];
        let n = c.start(&mut out).unwrap();
        assert_eq!(n, c.start_len());
        assert_eq!(&out[..n], b"n,,\x01auth=Bearer eyJhbGciOi.e30.sig\x01\x01");
        assert_eq!(c.step(b"", &mut out), Ok(Step::Done));
        assert!(c.is_done());

        let ext = [("traceId", "abc 1"), ("logicalCluster", "lkc-1")];
        let mut c = SaslClient::oauthbearer("tok", &ext).unwrap();
        let n = c.start(&mut out).unwrap();
        assert_eq!(n, c.start_len());
        assert_eq!(
            &out[..n],
            b"n,,\x01auth=Bearer tok\x01traceId=abc 1\x01logicalCluster=lkc-1\x01\x01"
        );

        for (token, ext) in [
            ("", &[][..]),
            ("a b", &[]),
            ("a\x01b", &[]),
            ("t", &[("auth", "x")]),
            ("t", &[("a1", "x")]),
            ("t", &[("a", "")]),
            ("t", &[("a", "\x01")]),
        ] {
            assert_eq!(
                SaslClient::oauthbearer(token, ext).err(),
                Some(SaslError::InvalidCredentials),
                "{token:?} {ext:?}"
            );
        }
    }

    #[test]
    fn test_oauthbearer_error_answered_with_control_a() {
        let mut c = SaslClient::oauthbearer("tok", &[]).unwrap();
        let mut out = [0u8; 64];
        c.start(&mut out).unwrap();
        let json = br#"{"status":"invalid_token"}"#;
        assert_eq!(
            c.step(json, &mut []),
            Err(SaslError::BufferTooSmall { needed: 1 })
        );
        assert_eq!(c.step(json, &mut out), Ok(Step::Send(1)));
        assert_eq!(out[0], 0x01);
        assert_eq!(c.step(b"", &mut out), Err(SaslError::OAuthBearerRejected));
        assert_eq!(c.step(b"", &mut out), Err(SaslError::OutOfOrder));
        assert!(!c.is_done());
    }

    #[test]
    fn test_mechanism_names_and_mismatches() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::from_name(m.name()), Some(m));
            assert_eq!(m.name().parse::<Mechanism>(), Ok(m));
            assert_eq!(std::format!("{m}"), m.name());
        }
        assert_eq!(
            "scram-sha-256".parse::<Mechanism>(),
            Err(SaslError::UnknownMechanism)
        );
        let token = Credentials::Token {
            token: "t",
            extensions: &[],
        };
        let password = Credentials::Password {
            username: "u",
            password: "p",
        };
        assert_eq!(
            SaslClient::new(Mechanism::ScramSha256, token, &[0; 18]).err(),
            Some(SaslError::CredentialsMismatch)
        );
        assert_eq!(
            SaslClient::new(Mechanism::OAuthBearer, password, &[]).err(),
            Some(SaslError::CredentialsMismatch)
        );
        assert_eq!(
            SaslClient::scram(Mechanism::Plain, "u", "p", &[0; 18]).err(),
            Some(SaslError::CredentialsMismatch)
        );
        let mut c = SaslClient::plain("u", "p").unwrap();
        assert_eq!(c.step(b"", &mut [0; 8]), Err(SaslError::OutOfOrder));
        // Debug hides secrets.
        let dbg = std::format!("{c:?}");
        assert!(dbg.contains("\"u\"") && !dbg.contains("\"p\""), "{dbg}");
    }

    fn any_client(kind: u8) -> SaslClient<'static> {
        match kind % 4 {
            0 => SaslClient::plain("u", "p").unwrap(),
            1 => SaslClient::scram(Mechanism::ScramSha256, "u", "p", &[7; 18]).unwrap(),
            2 => SaslClient::scram(Mechanism::ScramSha512, "u", "p", &[7; 18]).unwrap(),
            _ => SaslClient::oauthbearer("t", &[]).unwrap(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn prop_server_bytes_never_panic(
            kind in any::<u8>(),
            msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 0..4),
            out_len in 0usize..300,
        ) {
            let mut c = any_client(kind);
            let mut out = std::vec![0u8; out_len];
            let _ = c.start(&mut out);
            for m in &msgs {
                let _ = c.step(m, &mut out);
            }
        }
    }
}
