//! The webhook's serving certificate: a self-generated CA and leaf (rcgen), kept in a Secret
//! so every replica serves the same certificate, renewed when a third of its lifetime is left.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use std::collections::BTreeMap;

use crate::error::Error;

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const TLS_CERT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
/// Unix seconds after which the leaf is invalid.
pub const NOT_AFTER_ANNOTATION: &str = "healthcheck.openstack.org/not-after";
/// The leaf's subject alternative names, comma-separated.
pub const SANS_ANNOTATION: &str = "healthcheck.openstack.org/sans";

const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
pub const LEAF_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// A CA and the leaf it signed, PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificates {
    pub ca_cert: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
    pub not_after: u64,
    pub sans: Vec<String>,
}

fn tls_error(err: impl std::fmt::Display) -> Error {
    Error::Tls(err.to_string())
}

/// Always built the same way, so a stored CA key can sign again without parsing its certificate.
fn ca_params(now: u64) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "healthcheck-operator webhook CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = at(now.saturating_sub(3600))?;
    params.not_after = at(now + CA_LIFETIME.as_secs())?;
    Ok(params)
}

fn at(unix: u64) -> Result<time::OffsetDateTime, Error> {
    time::OffsetDateTime::from_unix_timestamp(unix as i64).map_err(tls_error)
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Certificates {
    /// A new CA and leaf.
    pub fn generate(sans: &[String], now: u64) -> Result<Self, Error> {
        let ca_key = KeyPair::generate().map_err(tls_error)?;
        let ca_cert = ca_params(now)?.self_signed(&ca_key).map_err(tls_error)?;
        Self::issue(ca_cert.pem(), ca_key.serialize_pem(), sans, now)
    }

    /// A new leaf from this CA.
    pub fn renew(&self, sans: &[String], now: u64) -> Result<Self, Error> {
        Self::issue(self.ca_cert.clone(), self.ca_key.clone(), sans, now)
    }

    fn issue(ca_cert: String, ca_key: String, sans: &[String], now: u64) -> Result<Self, Error> {
        let issuer = Issuer::new(
            ca_params(now)?,
            KeyPair::from_pem(&ca_key).map_err(tls_error)?,
        );
        let mut params = CertificateParams::new(sans.to_vec()).map_err(tls_error)?;
        params.distinguished_name.push(
            DnType::CommonName,
            sans.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let not_after = now + LEAF_LIFETIME.as_secs();
        params.not_before = at(now.saturating_sub(3600))?;
        params.not_after = at(not_after)?;
        let key = KeyPair::generate().map_err(tls_error)?;
        let cert = params.signed_by(&key, &issuer).map_err(tls_error)?;
        Ok(Certificates {
            ca_cert,
            ca_key,
            cert: cert.pem(),
            key: key.serialize_pem(),
            not_after,
            sans: sans.to_vec(),
        })
    }

    /// Renew when a third of the lifetime is left or the names changed.
    pub fn needs_renewal(&self, sans: &[String], now: u64) -> bool {
        self.sans != sans || now + LEAF_LIFETIME.as_secs() / 3 >= self.not_after
    }

    pub fn from_secret(secret: &Secret) -> Option<Self> {
        let data = secret.data.as_ref()?;
        let text = |key: &str| String::from_utf8(data.get(key)?.0.clone()).ok();
        let annotations = secret.metadata.annotations.as_ref()?;
        Some(Certificates {
            ca_cert: text(CA_CERT)?,
            ca_key: text(CA_KEY)?,
            cert: text(TLS_CERT)?,
            key: text(TLS_KEY)?,
            not_after: annotations.get(NOT_AFTER_ANNOTATION)?.parse().ok()?,
            sans: annotations
                .get(SANS_ANNOTATION)?
                .split(',')
                .map(String::from)
                .collect(),
        })
    }

    pub fn to_secret(&self, name: &str, namespace: &str) -> Secret {
        let bytes = |text: &str| ByteString(text.as_bytes().to_vec());
        Secret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                annotations: Some(BTreeMap::from([
                    (NOT_AFTER_ANNOTATION.to_string(), self.not_after.to_string()),
                    (SANS_ANNOTATION.to_string(), self.sans.join(",")),
                ])),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_string()),
            data: Some(BTreeMap::from([
                (CA_CERT.to_string(), bytes(&self.ca_cert)),
                (CA_KEY.to_string(), bytes(&self.ca_key)),
                (TLS_CERT.to_string(), bytes(&self.cert)),
                (TLS_KEY.to_string(), bytes(&self.key)),
            ])),
            ..Secret::default()
        }
    }

    /// rustls server configuration with the ring provider (kube's; no second provider).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, Error> {
        server_config(&self.cert, &self.key)
    }
}

/// rustls server configuration from PEM, ALPN h2 and http/1.1.
pub fn server_config(cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(tls_error)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(tls_error)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(tls_error)?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(tls_error)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificates in the Secret, created or renewed first when needed. Replicas race
/// safely: creation and replacement are conditional, and the loser reads the winner's.
pub async fn load_or_create(
    secrets: &Api<Secret>,
    namespace: &str,
    name: &str,
    sans: &[String],
) -> Result<Certificates, Error> {
    let kube_error = |context: &str| {
        let context = format!("{context} Secret {name}");
        move |source| Error::Kube { context, source }
    };
    for _ in 0..3 {
        let now = unix_now();
        let existing = secrets.get_opt(name).await.map_err(kube_error("read"))?;
        let current = existing.as_ref().and_then(Certificates::from_secret);
        let fresh = match &current {
            Some(certs) if !certs.needs_renewal(sans, now) => return Ok(certs.clone()),
            Some(certs) => certs.renew(sans, now)?,
            None => Certificates::generate(sans, now)?,
        };
        let mut secret = fresh.to_secret(name, namespace);
        let written = match existing {
            Some(old) => {
                secret.metadata.resource_version = old.metadata.resource_version;
                secrets.replace(name, &PostParams::default(), &secret).await
            }
            None => secrets.create(&PostParams::default(), &secret).await,
        };
        match written {
            Ok(_) => return Ok(fresh),
            // Another replica wrote first: use theirs.
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(err) => return Err(kube_error("write")(err)),
        }
    }
    Err(Error::Tls(format!(
        "Secret {name} keeps changing under us; giving up for now"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sans() -> Vec<String> {
        vec![
            "healthcheck-operator.healthcheck-operator.svc".to_string(),
            "127.0.0.1".to_string(),
        ]
    }

    #[test]
    fn generated_certificates_round_trip_through_a_secret_and_serve() {
        let certs = Certificates::generate(&sans(), 1_800_000_000).unwrap();
        let secret = certs.to_secret("webhook-tls", "ns");
        assert_eq!(Certificates::from_secret(&secret), Some(certs.clone()));
        assert!(certs.server_config().is_ok());
        assert!(certs.cert.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn renewal_keeps_the_ca_and_follows_time_and_names() {
        let now = 1_800_000_000;
        let certs = Certificates::generate(&sans(), now).unwrap();
        assert!(!certs.needs_renewal(&sans(), now));
        let late = now + LEAF_LIFETIME.as_secs() * 2 / 3;
        assert!(certs.needs_renewal(&sans(), late));
        assert!(certs.needs_renewal(&sans()[..1], now));
        let renewed = certs.renew(&sans(), late).unwrap();
        assert_eq!(renewed.ca_cert, certs.ca_cert, "caBundle stays valid");
        assert_ne!(renewed.cert, certs.cert);
        assert!(!renewed.needs_renewal(&sans(), late));
    }

    #[test]
    fn incomplete_secrets_are_not_certificates() {
        let certs = Certificates::generate(&sans(), 1_800_000_000).unwrap();
        let mut secret = certs.to_secret("webhook-tls", "ns");
        secret.data.as_mut().unwrap().remove(TLS_KEY);
        assert_eq!(Certificates::from_secret(&secret), None);
        assert!(server_config("garbage", "garbage").is_err());
    }
}
