//! TLS for `security.protocol=SSL` and `SASL_SSL`: the `ssl.*` properties (Java's names and
//! librdkafka's aliases) turned into a rustls [`ClientConfig`] (the `ring` provider), and the
//! sorting of handshake errors into authentication failures, which retrying will not fix
//! (reported to the core with `handle_authentication_failed`), and connection errors, which
//! it may (reported with `handle_closed` and retried after the reconnect backoff).
//!
//! The properties are listed in [`ProducerBuilder`](crate::ProducerBuilder)'s "TLS".
//!
//! The SNI is the broker's host name as the core names it (bootstrap or advertised); an IP
//! literal sends none and is checked against the certificate's IP addresses.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use log::{debug, warn};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
#[cfg(feature = "pkcs12")]
use rustls::pki_types::PrivatePkcs8KeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, Error as RustlsError,
    RootCertStore, SignatureScheme, SupportedProtocolVersion,
};

use crate::properties::Properties;

/// The `ssl.*` properties read here (the core refuses any other unknown key).
pub(crate) const TLS_KEYS: &[&str] = &[
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
    "ssl.ca.location",
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.password",
    "ssl.key.password",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.endpoint.identification.algorithm",
    "ssl.enabled.protocols",
    "ssl.protocol",
];

/// Properties whose values never print (`Debug` of [`Properties`], build errors).
pub(crate) fn is_secret(key: &str) -> bool {
    matches!(
        key,
        "ssl.key.password"
            | "ssl.keystore.password"
            | "ssl.truststore.password"
            | "ssl.keystore.key"
            | "sasl.password"
            | "sasl.jaas.config"
            | "sasl.oauthbearer.token"
    ) || key.ends_with(".password")
}

/// Why the `ssl.*` properties do not make a TLS configuration.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A key or trust store type not read here: `JKS` (with the commands that convert it),
    /// or an unknown name.
    UnsupportedStoreType {
        /// `ssl.keystore.type` or `ssl.truststore.type`.
        key: &'static str,
        /// The type given (or inferred from the file name).
        store_type: String,
    },
    /// A file could not be read.
    Read {
        /// The property naming it.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// PEM text that does not parse, or holds no item of the kind needed.
    Pem {
        /// The property.
        key: &'static str,
        /// What was looked for (`certificate`, `private key`).
        what: &'static str,
        /// The parser's error, when it had one.
        source: Option<rustls::pki_types::pem::Error>,
    },
    /// The private key is encrypted (`ssl.key.password`): not supported for PEM keys.
    EncryptedKey {
        /// The property holding the key.
        key: &'static str,
    },
    /// A PKCS#12 file that does not open (wrong password, unsupported algorithm) or has no
    /// key and chain (key store) or no certificate (trust store).
    Pkcs12 {
        /// The property naming the file.
        key: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A key store setting without its other half (a chain without a key, ...).
    Incomplete {
        /// The property given.
        key: &'static str,
        /// The property missing.
        missing: &'static str,
    },
    /// A value not understood (`ssl.enabled.protocols=SSLv3`, an unknown
    /// `ssl.endpoint.identification.algorithm`).
    InvalidValue {
        /// The property.
        key: &'static str,
        /// The value.
        value: String,
    },
    /// rustls refused the client certificate and key (they do not match, or the key type
    /// is not supported), or the versions and the provider do not fit together.
    Rustls(RustlsError),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedStoreType { key, store_type }
                if store_type.eq_ignore_ascii_case("JKS") =>
            {
                let what = if *key == "ssl.keystore.type" {
                    "keystore"
                } else {
                    "truststore"
                };
                write!(
                    f,
                    "{key}=JKS: Java key stores are not read here; convert it to PKCS12 with \
                     `keytool -importkeystore -srckeystore {what}.jks -destkeystore {what}.p12 \
                     -deststoretype PKCS12` and set {key}=PKCS12 (or to PEM: `openssl pkcs12 \
                     -in {what}.p12 -out {what}.pem -nodes`, then {key}=PEM)"
                )
            }
            Self::UnsupportedStoreType { key, store_type } => write!(
                f,
                "{key}={store_type}: only PEM and PKCS12 (feature `pkcs12`) are supported (`openssl pkcs12 -in \
                 store.p12 -out store.pem -nodes` converts PKCS12 to PEM)"
            ),
            Self::Read { key, path, source } => {
                write!(f, "{key}: cannot read {}: {source}", path.display())
            }
            Self::Pem {
                key,
                what,
                source: Some(e),
            } => write!(f, "{key}: invalid PEM {what}: {e}"),
            Self::Pem {
                key,
                what,
                source: None,
            } => write!(f, "{key}: no PEM {what} found"),
            Self::EncryptedKey { key } => write!(
                f,
                "{key}: the private key is encrypted (ssl.key.password), which is not supported; \
                 decrypt it with `openssl pkey -in encrypted.key -out client.key` and keep the \
                 file readable only by the producer's user"
            ),
            Self::Pkcs12 { key, reason } => write!(f, "{key}: PKCS12: {reason}"),
            Self::Incomplete { key, missing } => write!(f, "{key} is set but {missing} is not"),
            Self::InvalidValue { key, value } => write!(f, "{key}={value}: not understood"),
            Self::Rustls(e) => write!(f, "TLS configuration refused: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            Self::Pem {
                source: Some(e), ..
            } => Some(e),
            Self::Rustls(e) => Some(e),
            _ => None,
        }
    }
}

/// The TLS settings the I/O thread uses for every connection.
#[derive(Clone)]
pub(crate) struct TlsSettings {
    pub(crate) config: Arc<ClientConfig>,
    /// A client certificate is configured (to say so when the broker wants one).
    pub(crate) client_certificate: bool,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("client_certificate", &self.client_certificate)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS configuration of `props` (read only for a TLS `security.protocol`, as Java
/// ignores `ssl.*` otherwise).
pub(crate) fn settings(props: &Properties) -> Result<TlsSettings, TlsConfigError> {
    let provider = provider();
    let versions = protocol_versions(props)?;
    let roots = trust_anchors(props)?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(TlsConfigError::Rustls)?;
    let builder = if verify_host_name(props)? {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsConfigError::Rustls(RustlsError::General(e.to_string())))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier(inner)))
    };
    let (config, client_certificate) = match client_identity(props)? {
        Some((chain, key)) => (
            builder
                .with_client_auth_cert(chain, key)
                .map_err(TlsConfigError::Rustls)?,
            true,
        ),
        None => (builder.with_no_client_auth(), false),
    };
    Ok(TlsSettings {
        config: Arc::new(config),
        client_certificate,
    })
}

fn protocol_versions(
    props: &Properties,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsConfigError> {
    let mut versions = vec![&rustls::version::TLS13, &rustls::version::TLS12];
    if let Some(list) = props.get("ssl.enabled.protocols") {
        versions.clear();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "TLSv1.3" => versions.push(&rustls::version::TLS13),
                "TLSv1.2" => versions.push(&rustls::version::TLS12),
                "TLSv1.1" | "TLSv1" | "SSLv3" => {
                    warn!("ssl.enabled.protocols: {name} is not supported (TLS 1.2 and 1.3 are)");
                }
                _ => {
                    return Err(TlsConfigError::InvalidValue {
                        key: "ssl.enabled.protocols",
                        value: list.to_string(),
                    });
                }
            }
        }
    }
    match props.get("ssl.protocol").map(str::trim) {
        None | Some("TLSv1.3" | "TLS") => {}
        Some("TLSv1.2") => versions.retain(|v| v.version == rustls::ProtocolVersion::TLSv1_2),
        Some(other) => {
            return Err(TlsConfigError::InvalidValue {
                key: "ssl.protocol",
                value: other.to_string(),
            });
        }
    }
    if versions.is_empty() {
        return Err(TlsConfigError::InvalidValue {
            key: "ssl.enabled.protocols",
            value: format!(
                "{} (with ssl.protocol={}: no TLS 1.2 or 1.3 left)",
                props
                    .get("ssl.enabled.protocols")
                    .unwrap_or("TLSv1.2,TLSv1.3"),
                props.get("ssl.protocol").unwrap_or("TLSv1.3")
            ),
        });
    }
    Ok(versions)
}

fn verify_host_name(props: &Properties) -> Result<bool, TlsConfigError> {
    match props
        .get("ssl.endpoint.identification.algorithm")
        .map(str::trim)
    {
        None => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("https") => Ok(true),
        Some(v) if v.is_empty() || v.eq_ignore_ascii_case("none") => Ok(false),
        Some(v) => Err(TlsConfigError::InvalidValue {
            key: "ssl.endpoint.identification.algorithm",
            value: v.to_string(),
        }),
    }
}

fn read(key: &'static str, path: &str) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::Read {
        key,
        path: PathBuf::from(path),
        source,
    })
}

/// The store type of `type_key`, or inferred from the file: PEM text, or PKCS#12 by its
/// name; anything else is what Java would assume, JKS.
fn store_type(props: &Properties, type_key: &'static str, path: &str, bytes: &[u8]) -> String {
    if let Some(t) = props.get(type_key) {
        return t.trim().to_ascii_uppercase();
    }
    let lower = path.to_ascii_lowercase();
    if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        "PEM".into()
    } else if lower.ends_with(".p12") || lower.ends_with(".pfx") {
        "PKCS12".into()
    } else {
        "JKS".into()
    }
}

fn pem_certificates(
    key: &'static str,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::Pem {
            key,
            what: "certificate",
            source: Some(e),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::Pem {
            key,
            what: "certificate",
            source: None,
        });
    }
    Ok(certs)
}

fn pem_key(key: &'static str, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(TlsConfigError::EncryptedKey { key });
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsConfigError::Pem {
        key,
        what: "private key",
        source: match e {
            rustls::pki_types::pem::Error::NoItemsFound => None,
            e => Some(e),
        },
    })
}

#[cfg(feature = "pkcs12")]
fn pkcs12(
    key: &'static str,
    bytes: &[u8],
    password: &str,
) -> Result<p12_keystore::KeyStore, TlsConfigError> {
    p12_keystore::KeyStore::from_pkcs12(bytes, password, p12_keystore::Pkcs12ImportPolicy::Relaxed)
        .map_err(|e| TlsConfigError::Pkcs12 {
            key,
            reason: format!("{e} (check ssl.keystore.password)"),
        })
}

/// The CA certificates to trust: the truststore, librdkafka's `ssl.ca.location`, or the
/// system's.
fn trust_anchors(props: &Properties) -> Result<RootCertStore, TlsConfigError> {
    let mut certs: Vec<CertificateDer<'static>> = Vec::new();
    let mut configured = false;
    if let Some(pem) = props.get("ssl.truststore.certificates") {
        configured = true;
        certs.extend(pem_certificates(
            "ssl.truststore.certificates",
            pem.as_bytes(),
        )?);
    }
    if let Some(path) = props.get("ssl.truststore.location") {
        const KEY: &str = "ssl.truststore.location";
        configured = true;
        let bytes = read(KEY, path)?;
        match store_type(props, "ssl.truststore.type", path, &bytes).as_str() {
            "PEM" => certs.extend(pem_certificates(KEY, &bytes)?),
            #[cfg(feature = "pkcs12")]
            "PKCS12" => {
                let password = props.get("ssl.truststore.password").unwrap_or("");
                // Every certificate bag: Java's trusted-certificate attribute is only set by
                // keytool, and a store made by `openssl pkcs12 -export -nokeys` lacks it.
                let archive =
                    p12_keystore::Pkcs12Archive::from_pkcs12(&bytes, password).map_err(|e| {
                        TlsConfigError::Pkcs12 {
                            key: KEY,
                            reason: format!("{e} (check ssl.truststore.password)"),
                        }
                    })?;
                let before = certs.len();
                certs.extend(
                    archive
                        .certs
                        .iter()
                        .map(|b| CertificateDer::from(b.cert.as_der().to_vec())),
                );
                if certs.len() == before {
                    return Err(TlsConfigError::Pkcs12 {
                        key: KEY,
                        reason: "no certificate in the store".into(),
                    });
                }
            }
            other => {
                return Err(TlsConfigError::UnsupportedStoreType {
                    key: "ssl.truststore.type",
                    store_type: other.to_string(),
                });
            }
        }
    }
    if let Some(path) = props.get("ssl.ca.location") {
        const KEY: &str = "ssl.ca.location";
        configured = true;
        if Path::new(path).is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| TlsConfigError::Read {
                key: KEY,
                path: PathBuf::from(path),
                source,
            })?;
            for entry in entries.flatten() {
                let bytes = std::fs::read(entry.path()).unwrap_or_default();
                if let Ok(found) = pem_certificates(KEY, &bytes) {
                    certs.extend(found);
                }
            }
        } else {
            certs.extend(pem_certificates(KEY, &read(KEY, path)?)?);
        }
    }
    let mut roots = RootCertStore::empty();
    if configured {
        let (added, ignored) = roots.add_parsable_certificates(certs);
        debug!("TLS: {added} CA certificates from the truststore ({ignored} not usable)");
        if added == 0 {
            return Err(TlsConfigError::Pem {
                key: "ssl.truststore.location",
                what: "usable CA certificate",
                source: None,
            });
        }
    } else {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            debug!("TLS: system trust store: {e}");
        }
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            warn!(
                "TLS: no truststore configured and no CA certificate in the system's trust \
                 store: every broker certificate will be refused (set ssl.truststore.location)"
            );
        }
    }
    Ok(roots)
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The client's certificate chain and key, for mTLS.
fn client_identity(props: &Properties) -> Result<Option<Identity>, TlsConfigError> {
    if let Some(chain) = props.get("ssl.keystore.certificate.chain") {
        let key = props
            .get("ssl.keystore.key")
            .ok_or(TlsConfigError::Incomplete {
                key: "ssl.keystore.certificate.chain",
                missing: "ssl.keystore.key",
            })?;
        return Ok(Some((
            pem_certificates("ssl.keystore.certificate.chain", chain.as_bytes())?,
            pem_key("ssl.keystore.key", key.as_bytes())?,
        )));
    }
    if props.get("ssl.keystore.key").is_some() {
        return Err(TlsConfigError::Incomplete {
            key: "ssl.keystore.key",
            missing: "ssl.keystore.certificate.chain",
        });
    }
    if let Some(path) = props.get("ssl.keystore.location") {
        const KEY: &str = "ssl.keystore.location";
        let bytes = read(KEY, path)?;
        return match store_type(props, "ssl.keystore.type", path, &bytes).as_str() {
            "PEM" => Ok(Some((
                pem_certificates(KEY, &bytes)?,
                pem_key(KEY, &bytes)?,
            ))),
            #[cfg(feature = "pkcs12")]
            "PKCS12" => {
                let password = props.get("ssl.keystore.password").unwrap_or("");
                let store = pkcs12(KEY, &bytes, password)?;
                let (_, chain) = store.private_key_chain().ok_or(TlsConfigError::Pkcs12 {
                    key: KEY,
                    reason: "no private key with its certificate chain in the store".into(),
                })?;
                let certs = chain
                    .certs()
                    .iter()
                    .map(|c| CertificateDer::from(c.as_der().to_vec()))
                    .collect();
                let key =
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
                Ok(Some((certs, key)))
            }
            other => Err(TlsConfigError::UnsupportedStoreType {
                key: "ssl.keystore.type",
                store_type: other.to_string(),
            }),
        };
    }
    match (
        props.get("ssl.certificate.location"),
        props.get("ssl.key.location"),
    ) {
        (Some(cert), Some(key)) => Ok(Some((
            pem_certificates(
                "ssl.certificate.location",
                &read("ssl.certificate.location", cert)?,
            )?,
            pem_key("ssl.key.location", &read("ssl.key.location", key)?)?,
        ))),
        (Some(_), None) => Err(TlsConfigError::Incomplete {
            key: "ssl.certificate.location",
            missing: "ssl.key.location",
        }),
        (None, Some(_)) => Err(TlsConfigError::Incomplete {
            key: "ssl.key.location",
            missing: "ssl.certificate.location",
        }),
        (None, None) => Ok(None),
    }
}

/// `ssl.endpoint.identification.algorithm=` (empty): the webpki verifier, with only its
/// host name verdict ignored. webpki checks the chain (signatures, validity, usage,
/// revocation) before the name, so a name error means everything else passed.
#[derive(Debug)]
struct ChainOnlyVerifier(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, RustlsError> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(RustlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The words for a TLS error that retrying will not fix (Java's
/// `SslAuthenticationException`), or `None` for one that may pass on another try (a
/// connection cut mid-handshake, a corrupt record).
pub(crate) fn authentication_failure(
    e: &RustlsError,
    host: &str,
    client_certificate: bool,
) -> Option<String> {
    use AlertDescription as A;
    Some(match e {
        RustlsError::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "invalid peer certificate: UnknownIssuer (the broker's certificate is not signed \
             by a CA of the truststore)"
                .to_string()
        }
        RustlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "invalid peer certificate: NotValidForName (the broker's certificate does not name \
             the host {host}; ssl.endpoint.identification.algorithm= skips this check)"
        ),
        RustlsError::InvalidCertificate(c) => format!("invalid peer certificate: {c:?}"),
        RustlsError::AlertReceived(
            alert @ (A::BadCertificate
            | A::CertificateRequired
            | A::UnknownCA
            | A::CertificateUnknown
            | A::UnsupportedCertificate
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::AccessDenied),
        ) => {
            if client_certificate {
                format!("the broker refused the client certificate (alert {alert:?})")
            } else {
                format!(
                    "the broker wants a client certificate and none is configured (alert \
                     {alert:?}; set ssl.keystore.location)"
                )
            }
        }
        RustlsError::AlertReceived(A::ProtocolVersion) => {
            "no TLS protocol version in common with the broker (alert ProtocolVersion; see \
             ssl.enabled.protocols)"
                .to_string()
        }
        RustlsError::PeerIncompatible(p) => format!(
            "no TLS protocol version or cipher suite in common with the broker ({p:?}; see \
             ssl.enabled.protocols)"
        ),
        RustlsError::AlertReceived(alert @ (A::HandshakeFailure | A::InsufficientSecurity)) => {
            format!("the broker refused the handshake (alert {alert:?})")
        }
        RustlsError::NoCertificatesPresented => "the broker presented no certificate".to_string(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> Properties {
        kv.iter().copied().collect()
    }

    #[test]
    fn protocol_versions_from_java_names() {
        let v = protocol_versions(&props(&[])).unwrap();
        assert_eq!(v.len(), 2);
        let v = protocol_versions(&props(&[("ssl.enabled.protocols", "TLSv1.2")])).unwrap();
        assert_eq!(v, vec![&rustls::version::TLS12]);
        let v = protocol_versions(&props(&[("ssl.protocol", "TLSv1.2")])).unwrap();
        assert_eq!(v, vec![&rustls::version::TLS12]);
        assert!(
            protocol_versions(&props(&[
                ("ssl.enabled.protocols", "TLSv1.3"),
                ("ssl.protocol", "TLSv1.2")
            ]))
            .is_err()
        );
        assert!(protocol_versions(&props(&[("ssl.enabled.protocols", "TLSv1.1")])).is_err());
        assert!(protocol_versions(&props(&[("ssl.enabled.protocols", "QUIC")])).is_err());
    }

    #[test]
    fn jks_refused_with_keytool_command() {
        let dir = std::env::temp_dir().join(format!("kafka-edge-jks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("truststore.jks");
        std::fs::write(&path, [0xfe, 0xed, 0xfe, 0xed]).unwrap();
        let p = props(&[("ssl.truststore.location", path.to_str().unwrap())]);
        let e = settings(&p).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("keytool -importkeystore"), "{text}");
        assert!(text.contains("-deststoretype PKCS12"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn endpoint_identification_values() {
        assert!(verify_host_name(&props(&[])).unwrap());
        assert!(
            !verify_host_name(&props(&[("ssl.endpoint.identification.algorithm", "")])).unwrap()
        );
        assert!(
            !verify_host_name(&props(&[("ssl.endpoint.identification.algorithm", "none")]))
                .unwrap()
        );
        assert!(
            verify_host_name(&props(&[("ssl.endpoint.identification.algorithm", "ldap")])).is_err()
        );
    }

    #[test]
    fn encrypted_keys_are_refused() {
        let pem =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = pem_key("ssl.keystore.key", pem).unwrap_err();
        assert!(e.to_string().contains("openssl pkey"), "{e}");
    }

    #[test]
    fn secrets_are_named() {
        for k in [
            "ssl.key.password",
            "ssl.keystore.password",
            "ssl.keystore.key",
            "sasl.password",
            "sasl.jaas.config",
        ] {
            assert!(is_secret(k), "{k}");
        }
        assert!(!is_secret("ssl.keystore.location"));
    }
}
