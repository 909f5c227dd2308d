//! How the producer authenticates, as Java configures it: `security.protocol` (read by the
//! transports, which do TLS), and with feature `sasl` the SASL settings the core's
//! connections use (`sasl.mechanism`, `sasl.jaas.config` and librdkafka's
//! `sasl.username`/`sasl.password`), with secrets that never print.

use core::fmt;
use core::str::FromStr;

use heapless::String as HString;

use crate::config::ConfigError;

/// `security.protocol`: TLS (done by the transport) and SASL (done by the core) on every
/// broker connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecurityProtocol {
    /// `PLAINTEXT` (the default): neither.
    #[default]
    Plaintext,
    /// `SSL`: TLS.
    Ssl,
    /// `SASL_PLAINTEXT`: SASL without TLS.
    SaslPlaintext,
    /// `SASL_SSL`: SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// The property value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections use TLS (`SSL`, `SASL_SSL`).
    pub const fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether connections authenticate with SASL (`SASL_PLAINTEXT`, `SASL_SSL`).
    pub const fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

impl FromStr for SecurityProtocol {
    type Err = ConfigError;

    /// One of the four names, in any case (Java upper-cases the value).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        [
            Self::Plaintext,
            Self::Ssl,
            Self::SaslPlaintext,
            Self::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(s))
        .ok_or(ConfigError::InvalidValue {
            key: "security.protocol",
        })
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthFailureKind {
    /// SASL: the broker refused the credentials or the mechanism (Java's
    /// `SaslAuthenticationException`), or its answers broke the exchange.
    Sasl,
    /// TLS: the handshake failed (an untrusted certificate, a host name mismatch, no common
    /// protocol version; Java's `SslAuthenticationException`), as the transport reports it.
    Tls,
}

impl fmt::Display for AuthFailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sasl => "SASL authentication failed",
            Self::Tls => "SSL handshake failed",
        })
    }
}

/// The longest message kept with an [`AuthFailure`] (bytes; longer ones are cut).
pub const MAX_AUTH_MESSAGE_LEN: usize = 255;

/// Why the last authentication failed, until one succeeds: while it is set, `send` refuses
/// records with it and queued records fail with it, as soon as the broker (or the TLS
/// handshake) said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    /// SASL or TLS.
    pub kind: AuthFailureKind,
    /// The broker's error code (`SASL_AUTHENTICATION_FAILED`, `UNSUPPORTED_SASL_MECHANISM`,
    /// `ILLEGAL_SASL_STATE`), or `NONE` when the client side failed (TLS, a SCRAM server
    /// signature that does not match).
    pub code: crate::protocol::ErrorCode,
    /// The broker's `error_message`, or the transport's or the exchange's own words.
    pub message: HString<MAX_AUTH_MESSAGE_LEN>,
}

impl AuthFailure {
    /// A failure with `message` (cut at a character boundary to fit).
    pub fn new(kind: AuthFailureKind, code: crate::protocol::ErrorCode, message: &str) -> Self {
        let mut end = message.len().min(MAX_AUTH_MESSAGE_LEN);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut m = HString::new();
        let _ = m.push_str(message.get(..end).unwrap_or_default());
        Self {
            kind,
            code,
            message: m,
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

/// The longest SASL user name or password (bytes).
pub const MAX_SASL_CREDENTIAL_LEN: usize = 255;

/// A secret (a password): kept as given, printed as `[hidden]` (Java's `Password` type).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<const N: usize>(HString<N>);

impl<const N: usize> Secret<N> {
    /// The secret, for the exchange that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[cfg_attr(not(any(feature = "sasl", test)), allow(dead_code))]
    fn set(&mut self, value: &str, key: &'static str) -> Result<(), ConfigError> {
        let mut s = HString::new();
        s.push_str(value)
            .map_err(|_| ConfigError::InvalidValue { key })?;
        self.0 = s;
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

/// The SASL settings (feature `sasl`): the mechanism and the user's name and password.
/// OAUTHBEARER tokens are not configuration: the transport hands them to the producer
/// (`Producer::set_sasl_token`) and refreshes them.
#[cfg(feature = "sasl")]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslConfig {
    /// `sasl.mechanism` (librdkafka: `sasl.mechanisms`); `None` is Java's default,
    /// `GSSAPI` (Kerberos), which this producer does not offer: with a SASL
    /// `security.protocol` it fails validation, naming the property.
    pub mechanism: Option<crate::sasl::Mechanism>,
    /// The user: `username="..."` of `sasl.jaas.config` (`PlainLoginModule`,
    /// `ScramLoginModule`), or librdkafka's `sasl.username`.
    pub username: HString<MAX_SASL_CREDENTIAL_LEN>,
    /// The password: `password="..."` of `sasl.jaas.config`, or `sasl.password`.
    pub password: Secret<MAX_SASL_CREDENTIAL_LEN>,
}

#[cfg(feature = "sasl")]
impl SaslConfig {
    /// Sets a SASL property; `Ok(false)` when `key` is not one.
    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        match key {
            "sasl.mechanism" | "sasl.mechanisms" => {
                let v = value.trim();
                self.mechanism = if v.eq_ignore_ascii_case("GSSAPI") {
                    None
                } else {
                    Some(
                        crate::sasl::Mechanism::from_name(v).ok_or(ConfigError::Unsupported {
                            key: "sasl.mechanism",
                        })?,
                    )
                };
            }
            "sasl.username" => {
                let mut s = HString::new();
                s.push_str(value).map_err(|_| ConfigError::InvalidValue {
                    key: "sasl.username",
                })?;
                self.username = s;
            }
            "sasl.password" => self.password.set(value, "sasl.password")?,
            "sasl.jaas.config" => self.set_jaas(value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `sasl.jaas.config`: `<LoginModule class> required|requisite|sufficient|optional
    /// key="value" ... ;` with the `username` and `password` of `PlainLoginModule` or
    /// `ScramLoginModule` (Java's `JaasConfig` grammar; other options are ignored).
    /// `OAuthBearerLoginModule` takes no password: its token comes from the transport.
    fn set_jaas(&mut self, value: &str) -> Result<(), ConfigError> {
        const KEY: ConfigError = ConfigError::InvalidValue {
            key: "sasl.jaas.config",
        };
        let jaas = Jaas::parse(value).ok_or(KEY)?;
        let module = jaas.module.rsplit('.').next().unwrap_or(jaas.module);
        match module {
            "PlainLoginModule" | "ScramLoginModule" => {
                let mut username = HString::new();
                username
                    .push_str(jaas.option("username").ok_or(KEY)?)
                    .map_err(|_| KEY)?;
                self.password
                    .set(jaas.option("password").ok_or(KEY)?, "sasl.jaas.config")?;
                self.username = username;
                Ok(())
            }
            "OAuthBearerLoginModule" => Ok(()),
            _ => Err(ConfigError::Unsupported {
                key: "sasl.jaas.config",
            }),
        }
    }

    /// The credentials for the configured mechanism (`token` for OAUTHBEARER).
    pub fn credentials<'a>(&'a self, token: &'a str) -> Option<crate::sasl::Credentials<'a>> {
        use crate::sasl::{Credentials, Mechanism};
        Some(match self.mechanism? {
            Mechanism::OAuthBearer => Credentials::Token {
                token,
                extensions: &[],
            },
            _ => Credentials::Password {
                username: &self.username,
                password: self.password.expose(),
            },
        })
    }
}

/// One JAAS login module entry: `class flag key="value" ...;` (Java's `JaasConfig`
/// tokenizer: values quoted with `"`, backslash escapes not needed for Kafka's options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jaas<'a> {
    /// The login module's class name.
    pub module: &'a str,
    options: &'a str,
}

impl<'a> Jaas<'a> {
    /// Parses one entry; `None` when it is not `class flag options... ;`.
    pub fn parse(text: &'a str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_suffix(';')?.trim_end();
        let (module, rest) = text.split_once(char::is_whitespace)?;
        let rest = rest.trim_start();
        let (flag, options) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        if !["required", "requisite", "sufficient", "optional"]
            .iter()
            .any(|f| f.eq_ignore_ascii_case(flag))
        {
            return None;
        }
        let jaas = Self { module, options };
        // Every option must be well formed.
        jaas.options().try_for_each(|o| o.map(|_| ()))?;
        Some(jaas)
    }

    /// The value of option `key`, if given.
    pub fn option(&self, key: &str) -> Option<&'a str> {
        self.options()
            .map_while(|o| o)
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The options in order, `None` for a malformed one (and the iteration stops after it).
    fn options(&self) -> impl Iterator<Item = Option<(&'a str, &'a str)>> + 'a {
        let mut rest = self.options;
        let mut failed = false;
        core::iter::from_fn(move || {
            rest = rest.trim_start();
            if rest.is_empty() || failed {
                return None;
            }
            let parsed = (|| {
                let (key, after) = rest.split_once('=')?;
                let after = after.trim_start();
                let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
                    let end = quoted.find('"')?;
                    (quoted.get(..end)?, quoted.get(end + 1..)?)
                } else {
                    let end = after.find(char::is_whitespace).unwrap_or(after.len());
                    (after.get(..end)?, after.get(end..)?)
                };
                Some(((key.trim(), value), tail))
            })();
            match parsed {
                Some((kv, tail)) => {
                    rest = tail;
                    Some(Some(kv))
                }
                None => {
                    failed = true;
                    Some(None)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_security_protocol_names() {
        assert_eq!(
            "sasl_ssl".parse::<SecurityProtocol>(),
            Ok(SecurityProtocol::SaslSsl)
        );
        assert_eq!(
            " PLAINTEXT ".parse::<SecurityProtocol>(),
            Ok(SecurityProtocol::Plaintext)
        );
        assert!("TLS".parse::<SecurityProtocol>().is_err());
        assert!(SecurityProtocol::SaslSsl.uses_tls() && SecurityProtocol::SaslSsl.uses_sasl());
        assert!(!SecurityProtocol::Ssl.uses_sasl());
    }

    #[test]
    fn test_jaas_entries() {
        let j = Jaas::parse(
            "org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"alice\" password=\"a b=c;\";",
        )
        .unwrap();
        assert_eq!(
            j.module,
            "org.apache.kafka.common.security.scram.ScramLoginModule"
        );
        assert_eq!(j.option("username"), Some("alice"));
        assert_eq!(j.option("password"), Some("a b=c;"));
        assert_eq!(j.option("other"), None);
        let j = Jaas::parse("X required;").unwrap();
        assert_eq!(j.option("username"), None);
        assert!(
            Jaas::parse("X required username=\"alice\"").is_none(),
            "no ;"
        );
        assert!(Jaas::parse("X maybe username=\"a\";").is_none(), "bad flag");
        assert!(
            Jaas::parse("X required username=\"a;").is_none(),
            "unclosed"
        );
    }

    #[test]
    fn test_secret_hides() {
        extern crate std;
        let mut s = Secret::<8>::default();
        s.set("hunter2", "k").unwrap();
        assert_eq!(std::format!("{s:?}"), "[hidden]");
        assert_eq!(s.expose(), "hunter2");
        assert!(s.set("123456789", "k").is_err());
    }

    #[cfg(feature = "sasl")]
    #[test]
    fn test_sasl_properties() {
        extern crate std;
        use crate::sasl::Mechanism;
        let mut c = SaslConfig::default();
        assert_eq!(c.set("sasl.mechanism", "SCRAM-SHA-512"), Ok(true));
        assert_eq!(c.mechanism, Some(Mechanism::ScramSha512));
        c.set(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"bob\" password=\"pw\";",
        )
        .unwrap();
        assert_eq!(c.username.as_str(), "bob");
        assert_eq!(c.password.expose(), "pw");
        assert!(!std::format!("{c:?}").contains("pw\""));
        assert_eq!(c.set("sasl.username", "carol"), Ok(true));
        assert_eq!(c.username.as_str(), "carol");
        assert_eq!(c.set("sasl.mechanism", "GSSAPI"), Ok(true));
        assert_eq!(c.mechanism, None);
        assert!(c.set("sasl.mechanism", "NTLM").is_err());
        assert!(
            c.set("sasl.jaas.config", "com.example.Krb5LoginModule required;")
                .is_err()
        );
        assert_eq!(c.set("linger.ms", "5"), Ok(false));
    }
}
