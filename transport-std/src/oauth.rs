//! OAUTHBEARER tokens for the core (which authenticates with whatever token it is given):
//! a token the application sets (`sasl.oauthbearer.token`, this producer's own property), or
//! the unsecured JWT that Java's `OAuthBearerLoginModule` makes from its
//! `unsecuredLoginStringClaim_sub` option (for clusters with Kafka's unsecured validator,
//! such as test clusters). Tokens from an identity provider's token endpoint
//! (`sasl.oauthbearer.token.endpoint.url`) are not fetched here: pass them in.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kafka_edge_core::ProducerConfig;
use kafka_edge_core::sasl::Mechanism;
use kafka_edge_core::security::Jaas;

use crate::error::BuildError;
use crate::properties::Properties;

/// The properties this module reads (not the core's).
pub(crate) const OAUTH_KEYS: &[&str] = &["sasl.oauthbearer.token"];

/// The unsecured token's lifetime when the JAAS options give none (Java's default, 3600 s).
const DEFAULT_LIFETIME_S: u64 = 3600;

/// The token for `config`'s OAUTHBEARER authentication, if it uses OAUTHBEARER.
pub(crate) fn token(
    properties: &Properties,
    config: &ProducerConfig,
) -> Result<Option<String>, BuildError> {
    if !config.security_protocol.uses_sasl()
        || config.sasl.mechanism != Some(Mechanism::OAuthBearer)
    {
        return Ok(None);
    }
    if let Some(token) = properties.get("sasl.oauthbearer.token") {
        return Ok(Some(token.trim().to_string()));
    }
    let jaas = properties
        .get("sasl.jaas.config")
        .and_then(Jaas::parse)
        .filter(|j| j.module.ends_with("OAuthBearerLoginModule"));
    let Some(subject) = jaas.and_then(|j| j.option("unsecuredLoginStringClaim_sub")) else {
        return Err(BuildError::MissingOAuthToken);
    };
    let lifetime = jaas
        .and_then(|j| j.option("unsecuredLoginLifetimeSeconds"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_LIFETIME_S);
    Ok(Some(unsecured_jwt(subject, lifetime)))
}

/// An unsecured JWS (`"alg":"none"`, no signature) for `subject`, issued now and valid
/// for `lifetime_s` seconds, as Java's `OAuthBearerUnsecuredLoginCallbackHandler` makes it.
pub(crate) fn unsecured_jwt(subject: &str, lifetime_s: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = serde_json_free_claims(subject, now, now.saturating_add(lifetime_s));
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims)
    )
}

/// The claims as JSON, the subject escaped as a JSON string.
fn serde_json_free_claims(subject: &str, iat: u64, exp: u64) -> String {
    let mut sub = String::with_capacity(subject.len() + 2);
    for c in subject.chars() {
        match c {
            '"' => sub.push_str("\\\""),
            '\\' => sub.push_str("\\\\"),
            c if u32::from(c) < 0x20 => sub.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => sub.push(c),
        }
    }
    format!(r#"{{"sub":"{sub}","iat":{iat},"exp":{exp}}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsecured_jwt_is_header_claims_and_no_signature() {
        let t = unsecured_jwt("al\"ice", 60);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            br#"{"alg":"none"}"#
        );
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert!(claims.starts_with(r#"{"sub":"al\"ice","iat":"#), "{claims}");
    }

    #[test]
    fn token_from_the_property_or_the_jaas_options() {
        let mut p = Properties::new();
        p.set("bootstrap.servers", "localhost:9092")
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanism", "OAUTHBEARER");
        let config = p.to_config().unwrap();
        assert!(matches!(
            token(&p, &config),
            Err(BuildError::MissingOAuthToken)
        ));
        p.set(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
             unsecuredLoginStringClaim_sub=\"alice\";",
        );
        let config = p.to_config().unwrap();
        assert!(token(&p, &config).unwrap().unwrap().ends_with('.'));
        p.set("sasl.oauthbearer.token", "abc.def.ghi");
        assert_eq!(token(&p, &config).unwrap().as_deref(), Some("abc.def.ghi"));
    }
}
