//! The node side of certificates: a node's key pair and CSR, the
//! certificate the CA returns, the identity a certificate carries (node ID,
//! role, cluster) and the credentials (certificate + key) a node keeps and
//! hands to the TLS configurations.

use std::fmt;

use rcgen::{CertificateParams, DistinguishedName, KeyPair, PublicKeyData as _};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::x509::AttributeTypeAndValue;

use super::encoding::hex;
use super::{CaError, NodeRole};

/// A node's own key pair: ECDSA P-256, generated on the node, never sent
/// anywhere. `Debug` never prints the private key.
pub struct NodeKeyPair {
    key: KeyPair,
}

impl fmt::Debug for NodeKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKeyPair")
            .field("algorithm", self.key.algorithm())
            .field("private_key", &"[elided]")
            .finish()
    }
}

impl NodeKeyPair {
    /// Generates a new ECDSA P-256 key pair from the system's generator.
    pub fn generate() -> Result<Self, CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
            CaError::Rcgen {
                op: "generate the node key pair",
                source,
            }
        })?;
        Ok(Self { key })
    }

    /// Loads a key pair from PEM (PKCS#8, SEC1 or PKCS#1), e.g. the
    /// `key_pem` of saved [`NodeCredentials`].
    pub fn from_pem(key_pem: &str) -> Result<Self, CaError> {
        let key = KeyPair::from_pem(key_pem).map_err(|source| CaError::Rcgen {
            op: "parse the node private key",
            source,
        })?;
        Ok(Self { key })
    }

    /// The private key, PEM (PKCS#8 `PRIVATE KEY`). Secret: write it only
    /// to the node's data dir with mode 0600.
    #[must_use]
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The public key as a DER `SubjectPublicKeyInfo` (RFC 5280 §4.1).
    #[must_use]
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.subject_public_key_info()
    }

    /// A PKCS#10 certificate signing request for this key, PEM
    /// (`CERTIFICATE REQUEST`), with an empty subject and no extensions:
    /// the CA decides the subject, SANs and usages (see
    /// [`super::RootCa::issue_node_certificate`]).
    pub fn csr_pem(&self) -> Result<String, CaError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .serialize_request(&self.key)
            .and_then(|csr| csr.pem())
            .map_err(|source| CaError::Rcgen {
                op: "make the certificate signing request",
                source,
            })
    }
}

/// A node certificate the CA signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate, PEM (one `CERTIFICATE` section, LF line ends).
    pub cert_pem: String,
    /// The certificate's `notBefore`, Unix milliseconds (issue time minus
    /// [`super::CERT_BACKDATE`]).
    pub not_before_unix_ms: u64,
    /// The certificate's `notAfter`, Unix milliseconds.
    pub not_after_unix_ms: u64,
    /// The serial number: lower-case hex of the DER INTEGER's magnitude,
    /// most significant byte first, no separators (40 digits for the CA's
    /// 20-byte serials).
    pub serial_hex: String,
}

/// Who a certificate says its holder is. Read from a peer's certificate
/// after rustls verified the chain against the cluster CA, so the fields are
/// what the CA certified.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeIdentity {
    /// The subject CN.
    pub node_id: String,
    /// The subject OU: `swarm-manager` or `swarm-worker`.
    pub role: NodeRole,
    /// The subject O.
    pub cluster_id: String,
    /// The serial number, encoded as [`IssuedCert::serial_hex`].
    pub serial_hex: String,
    /// `notBefore`, Unix milliseconds.
    pub not_before_unix_ms: u64,
    /// `notAfter`, Unix milliseconds.
    pub not_after_unix_ms: u64,
}

impl NodeIdentity {
    /// Reads the identity of a node certificate (DER). Does not verify any
    /// signature: call it on certificates rustls (or the CA) has verified.
    ///
    /// Fails if the certificate does not parse, is a CA certificate, or has
    /// not exactly one CN, one OU (naming a role) and one O.
    pub fn from_der(cert_der: &[u8]) -> Result<Self, CaError> {
        let x509 = parse_certificate(cert_der, "the node certificate")?;
        if x509.is_ca() {
            return Err(CaError::BadIdentity {
                field: "basic constraints",
                reason: "mark a CA certificate, not a node certificate",
            });
        }
        let subject = x509.subject();
        let node_id = single(subject.iter_common_name(), "subject CN")?;
        let ou = single(subject.iter_organizational_unit(), "subject OU")?;
        let role = NodeRole::from_name(&ou).ok_or(CaError::UnknownRole { ou })?;
        let cluster_id = single(subject.iter_organization(), "subject O")?;
        let serial = x509.raw_serial();
        let magnitude = match serial.iter().position(|b| *b != 0) {
            Some(first) => &serial[first..],
            None => &[0u8][..],
        };
        Ok(Self {
            node_id,
            role,
            cluster_id,
            serial_hex: hex(magnitude),
            not_before_unix_ms: unix_ms(x509.validity().not_before.timestamp())?,
            not_after_unix_ms: unix_ms(x509.validity().not_after.timestamp())?,
        })
    }

    /// [`Self::from_der`] on the first `CERTIFICATE` section of `cert_pem`.
    pub fn from_pem(cert_pem: &str) -> Result<Self, CaError> {
        let der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|source| CaError::Pem {
                what: "the node certificate",
                source,
            })?;
        Self::from_der(&der)
    }
}

/// What a node needs to speak mutual TLS: its certificate and private key,
/// both PEM. The CA certificate is kept apart, as a [`super::TrustRoot`].
/// `Debug` never prints the key.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeCredentials {
    /// The node certificate, PEM; only the first `CERTIFICATE` section is
    /// used.
    pub cert_pem: String,
    /// The node's private key, PEM (PKCS#8, SEC1 or PKCS#1).
    pub key_pem: String,
}

impl fmt::Debug for NodeCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCredentials")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[elided]")
            .finish()
    }
}

impl NodeCredentials {
    /// Pairs a key with the certificate the CA issued for it.
    #[must_use]
    pub fn new(key: &NodeKeyPair, issued: &IssuedCert) -> Self {
        Self {
            cert_pem: issued.cert_pem.clone(),
            key_pem: key.key_pem(),
        }
    }

    /// The node certificate, DER.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, CaError> {
        CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).map_err(|source| CaError::Pem {
            what: "the node certificate",
            source,
        })
    }

    /// The private key, DER, as rustls takes it.
    pub fn key_der(&self) -> Result<PrivateKeyDer<'static>, CaError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|source| CaError::Pem {
            what: "the node private key",
            source,
        })
    }

    /// The identity the certificate carries.
    pub fn identity(&self) -> Result<NodeIdentity, CaError> {
        NodeIdentity::from_der(&self.cert_der()?)
    }
}

/// Parses a DER certificate; trailing bytes after it are an error.
pub(crate) fn parse_certificate<'a>(
    der: &'a [u8],
    what: &'static str,
) -> Result<X509Certificate<'a>, CaError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((_, _)) => Err(CaError::X509 {
            what,
            source: X509Error::InvalidCertificate,
        }),
        Err(e) => Err(CaError::X509 {
            what,
            source: x509_error(e),
        }),
    }
}

/// Flattens x509-parser's `nom` wrapper into its error.
pub(crate) fn x509_error(e: x509_parser::nom::Err<X509Error>) -> X509Error {
    match e {
        x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e,
        x509_parser::nom::Err::Incomplete(_) => X509Error::InvalidCertificate,
    }
}

/// Unix seconds to Unix milliseconds; times before 1970 are refused.
pub(crate) fn unix_ms(secs: i64) -> Result<u64, CaError> {
    u64::try_from(secs)
        .ok()
        .and_then(|s| s.checked_mul(1000))
        .ok_or(CaError::TimeOutOfRange)
}

/// The value of the only attribute `attrs` yields.
fn single<'a, 'b: 'a>(
    mut attrs: impl Iterator<Item = &'a AttributeTypeAndValue<'b>>,
    field: &'static str,
) -> Result<String, CaError> {
    let bad = |reason| CaError::BadIdentity { field, reason };
    let first = attrs.next().ok_or_else(|| bad("is missing"))?;
    if attrs.next().is_some() {
        return Err(bad("appears more than once"));
    }
    first
        .as_str()
        .map(str::to_owned)
        .map_err(|_| bad("is not a string"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rcgen::{DnType, SanType};
    use x509_parser::extensions::GeneralName;

    use super::*;
    use crate::ca::{DEFAULT_NODE_CERT_VALIDITY, DEFAULT_ROOT_CA_VALIDITY, RootCa};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn dns_sans(der: &[u8]) -> Result<Vec<String>, CaError> {
        let x509 = parse_certificate(der, "test")?;
        let san = x509
            .subject_alternative_name()
            .map_err(|source| CaError::X509 {
                what: "test",
                source,
            })?;
        Ok(san
            .map(|ext| {
                ext.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DNSName(s) => Some((*s).to_owned()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    #[test]
    fn issued_certificate_carries_cn_ou_o_sans_and_usages() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let key = NodeKeyPair::generate()?;
        let issued = ca.issue_node_certificate(
            &key.csr_pem()?,
            "node1",
            NodeRole::Manager,
            "cluster1",
            DEFAULT_NODE_CERT_VALIDITY,
        )?;
        let creds = NodeCredentials::new(&key, &issued);
        let der = creds.cert_der()?;
        let id = NodeIdentity::from_der(&der)?;
        assert_eq!(id.node_id, "node1");
        assert_eq!(id.role, NodeRole::Manager);
        assert_eq!(id.cluster_id, "cluster1");
        assert_eq!(id.serial_hex, issued.serial_hex);
        assert_eq!(id.serial_hex.len(), 40);
        assert_eq!(id.not_after_unix_ms, issued.not_after_unix_ms);
        assert_eq!(creds.identity()?, id);
        assert_eq!(NodeIdentity::from_pem(&issued.cert_pem)?, id);
        let lifetime = issued.not_after_unix_ms - issued.not_before_unix_ms;
        let expected = (DEFAULT_NODE_CERT_VALIDITY + crate::ca::CERT_BACKDATE).as_millis();
        assert!(
            u128::from(lifetime).abs_diff(expected) <= 2_000,
            "{lifetime} vs {expected}"
        );

        assert_eq!(dns_sans(&der)?, ["node1", "swarm-manager"]);
        let x509 = parse_certificate(&der, "test")?;
        assert!(!x509.is_ca());
        let ku = x509.key_usage()?.ok_or("no key usage")?.value;
        assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
        let eku = x509.extended_key_usage()?.ok_or("no EKU")?.value;
        assert!(eku.server_auth && eku.client_auth && !eku.any);
        assert_eq!(x509.public_key().raw, key.public_key_der());
        let ca_x509 = parse_certificate(ca.cert_der(), "test")?;
        assert_eq!(x509.issuer(), ca_x509.subject());
        x509.verify_signature(Some(ca_x509.public_key()))?;
        Ok(())
    }

    #[test]
    fn the_csr_subject_and_sans_are_ignored() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let key = KeyPair::generate()?;
        // A worker asking to be a manager of another cluster, with a CA flag.
        let mut params =
            CertificateParams::new(vec!["swarm-manager".to_owned(), "evil.example".to_owned()])?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "admin");
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, "swarm-manager");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "other-cluster");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .subject_alt_names
            .push(SanType::DnsName("swarm-ca".try_into()?));
        let csr_pem = params.serialize_request(&key)?.pem()?;

        let issued = ca.issue_node_certificate(
            &csr_pem,
            "node2",
            NodeRole::Worker,
            "cluster1",
            DEFAULT_NODE_CERT_VALIDITY,
        )?;
        let id = NodeIdentity::from_pem(&issued.cert_pem)?;
        assert_eq!(id.node_id, "node2");
        assert_eq!(id.role, NodeRole::Worker);
        assert_eq!(id.cluster_id, "cluster1");
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())?;
        assert_eq!(dns_sans(&der)?, ["node2", "swarm-worker"]);
        assert!(!parse_certificate(&der, "test")?.is_ca());
        // Only the key was taken from the CSR.
        assert_eq!(
            parse_certificate(&der, "test")?.public_key().raw,
            key.subject_public_key_info()
        );
        Ok(())
    }

    #[test]
    fn a_tampered_or_foreign_csr_is_refused() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let key = NodeKeyPair::generate()?;
        let csr = key.csr_pem()?;
        let issue = |csr: &str| {
            ca.issue_node_certificate(
                csr,
                "n",
                NodeRole::Worker,
                "cluster1",
                DEFAULT_NODE_CERT_VALIDITY,
            )
        };
        assert!(matches!(issue("garbage"), Err(CaError::Pem { .. })));
        // Flip one bit of the signature (the last byte of the DER).
        let mut der =
            rustls::pki_types::CertificateSigningRequestDer::from_pem_slice(csr.as_bytes())?
                .as_ref()
                .to_vec();
        if let Some(last) = der.last_mut() {
            *last ^= 1;
        }
        let tampered = crate::ca::encoding::pem_encode("CERTIFICATE REQUEST", &der);
        assert!(matches!(
            issue(&tampered),
            Err(CaError::CsrSignature { .. })
        ));
        // RSA keys are not certified.
        let rsa = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?;
        let rsa_csr = CertificateParams::default()
            .serialize_request(&rsa)?
            .pem()?;
        assert!(matches!(
            issue(&rsa_csr),
            Err(CaError::UnsupportedKeyAlgorithm)
        ));
        // Wrong cluster, bad node ID, too short a validity.
        assert!(matches!(
            ca.issue_node_certificate(
                &csr,
                "n",
                NodeRole::Worker,
                "other",
                DEFAULT_NODE_CERT_VALIDITY
            ),
            Err(CaError::InvalidId {
                field: "cluster ID",
                ..
            })
        ));
        assert!(matches!(
            ca.issue_node_certificate(
                &csr,
                "a b",
                NodeRole::Worker,
                "cluster1",
                DEFAULT_NODE_CERT_VALIDITY
            ),
            Err(CaError::InvalidId {
                field: "node ID",
                ..
            })
        ));
        assert!(matches!(
            ca.issue_node_certificate(
                &csr,
                "n",
                NodeRole::Worker,
                "cluster1",
                Duration::from_secs(10)
            ),
            Err(CaError::InvalidValidity { .. })
        ));
        Ok(())
    }

    #[test]
    fn other_key_algorithms_are_certified() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        for alg in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
            let key = KeyPair::generate_for(alg)?;
            let csr = CertificateParams::default()
                .serialize_request(&key)?
                .pem()?;
            let issued = ca.issue_node_certificate(
                &csr,
                "n",
                NodeRole::Worker,
                "cluster1",
                DEFAULT_NODE_CERT_VALIDITY,
            )?;
            let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())?;
            assert_eq!(
                parse_certificate(&der, "test")?.public_key().raw,
                key.subject_public_key_info()
            );
        }
        Ok(())
    }

    #[test]
    fn node_certificates_never_outlive_the_ca() -> TestResult {
        let ca = RootCa::generate("cluster1", Duration::from_hours(2))?;
        let key = NodeKeyPair::generate()?;
        let issued = ca.issue_node_certificate(
            &key.csr_pem()?,
            "n",
            NodeRole::Worker,
            "cluster1",
            DEFAULT_NODE_CERT_VALIDITY,
        )?;
        assert!(issued.not_after_unix_ms <= ca.not_after_unix_ms());
        Ok(())
    }

    #[test]
    fn identity_refuses_ca_and_foreign_certificates() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        assert!(matches!(
            NodeIdentity::from_der(ca.cert_der()),
            Err(CaError::BadIdentity { .. })
        ));
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["x".to_owned()])?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "n");
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, "swarm-admin");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "c");
        let cert = params.self_signed(&key)?;
        assert!(matches!(
            NodeIdentity::from_der(cert.der()),
            Err(CaError::UnknownRole { ou }) if ou == "swarm-admin"
        ));
        let cert = CertificateParams::new(vec!["x".to_owned()])?.self_signed(&key)?;
        assert!(matches!(
            NodeIdentity::from_der(cert.der()),
            Err(CaError::BadIdentity {
                field: "subject OU",
                ..
            })
        ));
        assert!(matches!(
            NodeIdentity::from_der(b"\x30\x03junk"),
            Err(CaError::X509 { .. })
        ));
        Ok(())
    }

    #[test]
    fn secrets_stay_out_of_debug() -> TestResult {
        let key = NodeKeyPair::generate()?;
        let creds = NodeCredentials {
            cert_pem: String::new(),
            key_pem: key.key_pem(),
        };
        assert!(!format!("{key:?}{creds:?}").contains("PRIVATE KEY"));
        assert_eq!(
            NodeKeyPair::from_pem(&key.key_pem())?.public_key_der(),
            key.public_key_der()
        );
        Ok(())
    }
}
