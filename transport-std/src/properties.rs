//! [`Properties`]: producer settings by Kafka property name, as Java's `Properties`, from
//! code, a `.properties` file, JSON or TOML (any serde format).

use std::collections::BTreeMap;
use std::path::Path;

use kafka_edge_core::{ConfigError as CoreConfigError, ProducerConfig};

use crate::error::{BuildError, PropertiesError};
use crate::java_config::{Support, java_default, java_property};

/// Producer settings under the Java client's property names (`bootstrap.servers`, `acks`,
/// `linger.ms`, ...), with string values.
///
/// ```
/// use kafka_edge_std::Properties;
/// let mut props = Properties::new();
/// props.set("bootstrap.servers", "localhost:9092").set("linger.ms", 20);
/// let from_file = Properties::parse("acks=all\n# a comment\nlinger.ms: 5\n")?;
/// props.extend(&from_file);
/// assert_eq!(props.get("linger.ms"), Some("5"));
/// # Ok::<(), kafka_edge_std::PropertiesError>(())
/// ```
///
/// With the `serde` feature (on by default), `Properties` deserializes from a map of
/// strings, numbers and booleans in any serde format; nested tables are flattened with
/// dots, so TOML's `linger.ms = 5` (a table `linger` with a key `ms`) means `linger.ms`.
///
/// Secrets (`ssl.key.password`, `ssl.keystore.password`, `ssl.keystore.key`,
/// `sasl.password`, `sasl.jaas.config`, any `*.password`) print as `[hidden]` in `Debug`
/// output and in build errors.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Properties {
    map: BTreeMap<String, String>,
}

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Properties")
            .field("map", &DebugMap(self))
            .finish()
    }
}

struct DebugMap<'a>(&'a Properties);

impl std::fmt::Debug for DebugMap<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, shown(k, v))))
            .finish()
    }
}

/// `value` as it may be printed: `[hidden]` for a secret.
pub(crate) fn shown<'a>(key: &str, value: &'a str) -> &'a str {
    if crate::tls::is_secret(key) {
        "[hidden]"
    } else {
        value
    }
}

impl Properties {
    /// No properties.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` (any `Display`: strings, numbers, booleans).
    pub fn set(&mut self, key: impl Into<String>, value: impl ToString) -> &mut Self {
        self.map.insert(key.into(), value.to_string());
        self
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.map.remove(key)
    }

    /// The properties, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Sets every property of `other` here (its values win).
    pub fn extend(&mut self, other: &Properties) -> &mut Self {
        for (k, v) in other.iter() {
            self.set(k, v);
        }
        self
    }

    /// Parses Java `.properties` text: `key=value` or `key: value` lines, `#` and `!`
    /// comments, blank lines; keys and values are trimmed. (Line continuations and escapes
    /// are not supported.)
    pub fn parse(text: &str) -> Result<Self, PropertiesError> {
        let mut props = Self::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let at = line
                .find(['=', ':'])
                .ok_or(PropertiesError::Syntax { line: i + 1 })?;
            let (key, value) = (line[..at].trim(), line[at + 1..].trim());
            if key.is_empty() {
                return Err(PropertiesError::Syntax { line: i + 1 });
            }
            props.set(key, value);
        }
        Ok(props)
    }

    /// Parses a JSON object of properties (`{"bootstrap.servers": "h:9092", "linger.ms": 5}`).
    #[cfg(feature = "json")]
    pub fn from_json(text: &str) -> Result<Self, PropertiesError> {
        serde_json::from_str(text).map_err(PropertiesError::Json)
    }

    /// Parses a TOML document of properties (`"bootstrap.servers" = "h:9092"`, or
    /// `linger.ms = 5`, which TOML reads as a table and this flattens back).
    #[cfg(feature = "toml")]
    pub fn from_toml(text: &str) -> Result<Self, PropertiesError> {
        toml::from_str(text).map_err(PropertiesError::Toml)
    }

    /// Reads a file: JSON for `.json`, TOML for `.toml` (with those features), Java
    /// `.properties` syntax otherwise.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PropertiesError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| PropertiesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            #[cfg(feature = "json")]
            Some("json") => Self::from_json(&text),
            #[cfg(feature = "toml")]
            Some("toml") => Self::from_toml(&text),
            _ => Self::parse(&text),
        }
    }

    /// The properties set here that this producer ignores (see
    /// [`java_config`](crate::java_config)), each with the reason; the producer logs one
    /// warning for each when it is built.
    pub fn ignored(&self) -> Vec<(&str, &'static str)> {
        self.iter()
            .filter_map(|(key, _)| match java_property(key)?.support {
                Support::Ignored(why) => Some((key, why)),
                _ => None,
            })
            .collect()
    }

    /// The core configuration these properties describe (Java's defaults for the rest),
    /// validated. Every property of Java's producer is taken, ignored or refused as
    /// [`java_config`](crate::java_config) says; the `ssl.*` keys of TLS are this
    /// transport's (see [`ProducerBuilder`](crate::ProducerBuilder)'s "TLS"); any other
    /// unknown key is an error.
    pub fn to_config(&self) -> Result<ProducerConfig, BuildError> {
        let mut config = ProducerConfig::default();
        for (key, value) in self.iter() {
            match java_property(key).map(|p| p.support) {
                Some(Support::Ignored(_)) => continue,
                Some(Support::Refused(why)) => {
                    let at_default =
                        java_default(key).is_some_and(|d| d.eq_ignore_ascii_case(value.trim()));
                    if at_default {
                        continue;
                    }
                    return Err(BuildError::Refused {
                        key: key.to_string(),
                        value: shown(key, value).to_string(),
                        why,
                    });
                }
                Some(Support::Supported) | None => {}
            }
            // TLS is this transport's: `tls_settings` reads the `ssl.*` keys; so are the
            // OAUTHBEARER token (`oauth::token`) and the `metrics.*` sampling settings.
            if crate::tls::TLS_KEYS.contains(&key)
                || crate::oauth::OAUTH_KEYS.contains(&key)
                || crate::metrics::METRICS_KEYS.contains(&key)
                || crate::socket::SOCKET_KEYS.contains(&key)
            {
                continue;
            }
            config
                .set(key, value)
                .map_err(|source| BuildError::Config {
                    key: Some(key.to_string()),
                    value: Some(shown(key, value).to_string()),
                    source,
                })?;
        }
        config
            .validate()
            .map_err(|source| self.config_error(source))?;
        Ok(config)
    }

    /// `source` from a check of the whole configuration, with the property and the value
    /// given for it when the check is about one property set here.
    pub(crate) fn config_error(&self, source: CoreConfigError) -> BuildError {
        let key = match source {
            CoreConfigError::InvalidValue { key } | CoreConfigError::Unsupported { key } => {
                Some(key)
            }
            CoreConfigError::StorageTooSmall {
                what: "buffer.memory",
                ..
            } => Some("buffer.memory"),
            _ => None,
        };
        BuildError::Config {
            key: key.map(str::to_string),
            value: key
                .and_then(|k| self.get(k).map(|v| shown(k, v)))
                .map(str::to_string),
            source,
        }
    }
}

impl<K: Into<String>, V: ToString> FromIterator<(K, V)> for Properties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut props = Self::new();
        for (k, v) in iter {
            props.set(k, v);
        }
        props
    }
}

#[cfg(feature = "serde")]
mod serde_impl {
    use super::Properties;
    use serde::de::{Deserialize, Deserializer, Error};
    use std::collections::BTreeMap;

    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Value {
        Bool(bool),
        Int(i64),
        UInt(u64),
        Float(f64),
        Str(String),
        Table(BTreeMap<String, Value>),
    }

    fn flatten(
        prefix: &str,
        map: BTreeMap<String, Value>,
        out: &mut Properties,
    ) -> Result<(), String> {
        for (k, v) in map {
            let key = if prefix.is_empty() {
                k
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Bool(b) => out.set(key, b),
                Value::Int(i) => out.set(key, i),
                Value::UInt(u) => out.set(key, u),
                Value::Float(f) => out.set(key, f),
                Value::Str(s) => out.set(key, s),
                Value::Table(t) => {
                    flatten(&key, t, out)?;
                    continue;
                }
            };
        }
        Ok(())
    }

    impl<'de> Deserialize<'de> for Properties {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let map = BTreeMap::<String, Value>::deserialize(d)?;
            let mut props = Properties::new();
            flatten("", map, &mut props).map_err(D::Error::custom)?;
            Ok(props)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_properties_syntax() {
        let p = Properties::parse(
            "# comment\n! other\n\nbootstrap.servers = a:1,b:2\nacks:all\nlinger.ms=5\n",
        )
        .unwrap();
        assert_eq!(p.get("bootstrap.servers"), Some("a:1,b:2"));
        assert_eq!(p.get("acks"), Some("all"));
        assert_eq!(p.len(), 3);
        assert!(matches!(
            Properties::parse("ok=1\nnope\n"),
            Err(PropertiesError::Syntax { line: 2 })
        ));
        let c = p.to_config().unwrap();
        assert_eq!(c.linger_ms, 5);
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_values_of_any_scalar_type() {
        let p = Properties::from_json(
            r#"{"bootstrap.servers":"h:1","linger.ms":7,"enable.idempotence":false}"#,
        )
        .unwrap();
        assert_eq!(p.get("linger.ms"), Some("7"));
        assert_eq!(p.get("enable.idempotence"), Some("false"));
        assert!(!p.to_config().unwrap().enable_idempotence);
    }

    #[cfg(feature = "toml")]
    #[test]
    fn toml_dotted_keys_flatten() {
        let p = Properties::from_toml(
            "\"bootstrap.servers\" = \"h:1\"\nlinger.ms = 9\nbatch.size = 1024\nacks = \"1\"\n",
        )
        .unwrap();
        assert_eq!(p.get("linger.ms"), Some("9"));
        assert_eq!(p.get("batch.size"), Some("1024"));
        let c = p.to_config().unwrap();
        assert_eq!(c.batch_size, 1024);
    }

    #[test]
    fn secrets_print_hidden() {
        let p: Properties = [
            ("bootstrap.servers", "h:1"),
            ("ssl.key.password", "k-secret"),
            ("ssl.keystore.password", "s-secret"),
            ("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----"),
            ("sasl.password", "p-secret"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"a\" password=\"j-secret\";",
            ),
        ]
        .into_iter()
        .collect();
        let debug = format!("{p:?}");
        for secret in [
            "k-secret",
            "s-secret",
            "BEGIN PRIVATE",
            "p-secret",
            "j-secret",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(
            debug.contains("h:1") && debug.contains("[hidden]"),
            "{debug}"
        );
        let b = crate::Producer::builder().properties(&p);
        assert!(!format!("{b:?}").contains("secret"));
        // A refused secret is not printed back either.
        let p: Properties = [
            ("bootstrap.servers", "h:1"),
            ("sasl.jaas.config", "not jaas p-secret"),
        ]
        .into_iter()
        .collect();
        let e = p.to_config().unwrap_err().to_string();
        assert!(!e.contains("p-secret") && e.contains("[hidden]"), "{e}");
    }

    #[test]
    fn security_protocols_are_accepted() {
        for proto in ["PLAINTEXT", "SSL", "ssl"] {
            let p: Properties = [("bootstrap.servers", "h:1"), ("security.protocol", proto)]
                .into_iter()
                .collect();
            assert!(p.to_config().is_ok(), "{proto}");
        }
        let p: Properties = [
            ("bootstrap.servers", "h:1"),
            ("security.protocol", "SSL"),
            ("ssl.truststore.location", "/nonexistent/ca.pem"),
            ("ssl.endpoint.identification.algorithm", ""),
        ]
        .into_iter()
        .collect();
        let c = p.to_config().unwrap();
        assert!(c.security_protocol.uses_tls());
    }

    #[test]
    fn unknown_keys_name_the_key() {
        let p: Properties = [("bootstrap.servers", "h:1"), ("lingerms", "1")]
            .into_iter()
            .collect();
        match p.to_config() {
            Err(BuildError::Config { key: Some(k), .. }) => assert_eq!(k, "lingerms"),
            other => panic!("{other:?}"),
        }
        let p: Properties = [("bootstrap.servers", "h:1"), ("key.serializer", "x")]
            .into_iter()
            .collect();
        assert!(p.to_config().is_ok());
    }
}
