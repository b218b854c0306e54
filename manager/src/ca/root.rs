//! The cluster's root CA: generating it at `swarm init`, reloading it from
//! the Raft store, its digest (what join tokens pin) and the signing of node
//! certificates. [`TrustRoot`] is the CA certificate without the key, what
//! every node (manager or worker) holds to verify its peers.

use std::fmt;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData as _, SanType, SerialNumber,
    SubjectPublicKeyInfo,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, CertificateSigningRequestDer};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer as _;

use super::encoding::{base36_encode, pem_encode};
use super::node_cert::{IssuedCert, NodeIdentity, parse_certificate, x509_error};
use super::{
    CERT_BACKDATE, CaError, MIN_NODE_CERT_VALIDITY, NodeRole, ROOT_CA_COMMON_NAME, random_bytes,
    validate_id,
};

/// The longest validity accepted for any certificate: 100 years. Beyond
/// that the arithmetic risks X.509's year 9999 limit for no benefit.
const MAX_VALIDITY: Duration = Duration::from_hours(100 * 365 * 24);

/// The number of base36 characters of a CA digest: 50, enough for any
/// 256-bit value (36^50 > 2^256).
pub(crate) const DIGEST_CHARS: usize = 50;

/// The digest of a CA certificate as Docker's join tokens carry it: the
/// SHA-256 of the certificate's DER bytes, read as a 256-bit big-endian
/// unsigned integer, written in base36 (`0-9a-z`) and left-padded with `0`
/// to exactly 50 characters, e.g.
/// `4bl65z15zd6nt4y0xc0mf639z4hhwphqn5l523bo6ws0yp230v`.
#[must_use]
pub fn ca_digest(cert_der: &[u8]) -> String {
    base36_encode(&Sha256::digest(cert_der), DIGEST_CHARS)
}

/// Whether `digest` has the form [`ca_digest`] produces: 50 characters of
/// `[0-9a-z]` whose value fits in 256 bits.
pub(crate) fn is_well_formed_digest(digest: &str) -> bool {
    digest.len() == DIGEST_CHARS && super::encoding::base36_decode::<32>(digest).is_some()
}

/// The cluster's root CA, key included. Only managers hold it.
///
/// Invariants: the key belongs to the certificate, and the certificate has
/// `CA:TRUE` basic constraints. `Debug` never prints the key.
pub struct RootCa {
    /// The CA certificate, PEM (one `CERTIFICATE` section, LF line ends).
    cert_pem: String,
    /// The CA private key, PEM (PKCS#8 `PRIVATE KEY`).
    key_pem: String,
    /// The CA certificate, DER.
    cert_der: Vec<u8>,
    /// [`ca_digest`] of `cert_der`.
    digest: String,
    /// The subject's O, if the certificate has one: the cluster ID.
    cluster_id: Option<String>,
    /// The certificate's `notAfter`, Unix milliseconds.
    not_after_unix_ms: u64,
    /// The signer: subject DN, key identifier and key.
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for RootCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootCa")
            .field("digest", &self.digest)
            .field("cluster_id", &self.cluster_id)
            .field("not_after_unix_ms", &self.not_after_unix_ms)
            .field("key_pem", &"[elided]")
            .finish_non_exhaustive()
    }
}

impl RootCa {
    /// Makes a new self-signed root CA for the cluster `cluster_id`: an
    /// ECDSA P-256 key, subject `CN=swarm-ca, O=<cluster_id>`, `CA:TRUE`
    /// with path length 0 (it signs node certificates directly), key usage
    /// certificate signing + CRL signing + digital signature, a random
    /// 20-byte serial, valid from one hour ago ([`CERT_BACKDATE`]) for
    /// `validity` (see [`super::DEFAULT_ROOT_CA_VALIDITY`]).
    pub fn generate(cluster_id: &str, validity: Duration) -> Result<Self, CaError> {
        validate_id("cluster ID", cluster_id)?;
        check_validity("the root CA", validity, MIN_NODE_CERT_VALIDITY)?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
            CaError::Rcgen {
                op: "generate the root CA key",
                source,
            }
        })?;
        let (not_before, not_after) = validity_window(validity, None)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(ROOT_CA_COMMON_NAME, None, cluster_id);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial()?);
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params.self_signed(&key).map_err(|source| CaError::Rcgen {
            op: "self-sign the root CA certificate",
            source,
        })?;
        let key_pem = key.serialize_pem();
        let cert_der = cert.der().to_vec();
        // Load through the parser so both constructors share one path and
        // the issuer's DN is byte-for-byte the certificate's subject.
        Self::from_parts(cert_der, key_pem, key)
    }

    /// Reloads a root CA from its certificate and key, PEM (as stored in the
    /// Raft store). Takes the first `CERTIFICATE` section of `cert_pem` and
    /// the first private key of `key_pem` (PKCS#8, SEC1 or PKCS#1).
    ///
    /// Fails with [`CaError::NotACa`] if the certificate lacks `CA:TRUE` and
    /// [`CaError::KeyMismatch`] if the key is not the certificate's.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CaError> {
        let cert_der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|source| CaError::Pem {
                what: "the root CA certificate",
                source,
            })?;
        let key = KeyPair::from_pem(key_pem).map_err(|source| CaError::Rcgen {
            op: "parse the root CA private key",
            source,
        })?;
        Self::from_parts(cert_der.to_vec(), key.serialize_pem(), key)
    }

    fn from_parts(cert_der: Vec<u8>, key_pem: String, key: KeyPair) -> Result<Self, CaError> {
        const WHAT: &str = "the root CA certificate";
        let x509 = parse_certificate(&cert_der, WHAT)?;
        if !x509.is_ca() {
            return Err(CaError::NotACa { what: WHAT });
        }
        if key.subject_public_key_info() != x509.public_key().raw {
            return Err(CaError::KeyMismatch);
        }
        let cluster_id = x509
            .subject()
            .iter_organization()
            .next()
            .and_then(|o| o.as_str().ok())
            .map(str::to_owned);
        let not_after_unix_ms = super::node_cert::unix_ms(x509.validity().not_after.timestamp())?;
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(cert_der.as_slice()), key)
            .map_err(|source| CaError::Rcgen {
                op: "load the root CA as an issuer",
                source,
            })?;
        Ok(Self {
            cert_pem: pem_encode("CERTIFICATE", &cert_der),
            key_pem,
            digest: ca_digest(&cert_der),
            cert_der,
            cluster_id,
            not_after_unix_ms,
            issuer,
        })
    }

    /// The CA certificate, PEM: one `CERTIFICATE` section, base64 lines of
    /// 64 characters, LF line ends.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PEM (PKCS#8 `PRIVATE KEY`). Secret: store it
    /// only in the Raft store, never log it.
    #[must_use]
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The CA certificate, DER.
    #[must_use]
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA digest ([`ca_digest`]): 50 characters of `[0-9a-z]`.
    #[must_use]
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The cluster ID written in the CA's subject O, if it has one.
    #[must_use]
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// When the CA certificate expires, Unix milliseconds.
    #[must_use]
    pub fn not_after_unix_ms(&self) -> u64 {
        self.not_after_unix_ms
    }

    /// The CA certificate alone, for nodes that verify but do not sign.
    #[must_use]
    pub fn trust_root(&self) -> TrustRoot {
        TrustRoot {
            cert_pem: self.cert_pem.clone(),
            cert_der: self.cert_der.clone(),
            digest: self.digest.clone(),
        }
    }

    /// Signs a node certificate for the public key in `csr_pem` (a PEM
    /// `CERTIFICATE REQUEST`, PKCS#10).
    ///
    /// The CSR's self-signature must verify (the requester holds the key)
    /// and its key must be ECDSA P-256, ECDSA P-384 or Ed25519. Everything
    /// else in the CSR — subject, SANs, requested extensions — is ignored:
    /// the CA alone decides what the certificate says, so a CSR asking to be
    /// a manager does not make one.
    ///
    /// The certificate has subject `CN=<node_id>, OU=<swarm-manager |
    /// swarm-worker>, O=<cluster_id>` (swarmkit's layout), DNS SANs
    /// `<node_id>` and the role name, `CA:FALSE`, key usage digital
    /// signature + key encipherment, extended key usage serverAuth +
    /// clientAuth, the CA's authority key identifier and a random 20-byte
    /// serial. It is valid from one hour ago ([`CERT_BACKDATE`]) for
    /// `validity` (at least [`MIN_NODE_CERT_VALIDITY`]), but never beyond the
    /// CA's own `notAfter`.
    ///
    /// `cluster_id` must equal the CA's subject O when the CA has one.
    pub fn issue_node_certificate(
        &self,
        csr_pem: &str,
        node_id: &str,
        role: NodeRole,
        cluster_id: &str,
        validity: Duration,
    ) -> Result<IssuedCert, CaError> {
        validate_id("node ID", node_id)?;
        validate_id("cluster ID", cluster_id)?;
        if self
            .cluster_id
            .as_deref()
            .is_some_and(|ca| ca != cluster_id)
        {
            return Err(CaError::InvalidId {
                field: "cluster ID",
                value: cluster_id.to_owned(),
                reason: "differs from the root CA's subject O",
            });
        }
        check_validity("a node certificate", validity, MIN_NODE_CERT_VALIDITY)?;
        let public_key = csr_public_key(csr_pem)?;
        let (not_before, not_after) = validity_window(validity, Some(self.not_after_unix_ms))?;

        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(node_id, Some(role), cluster_id);
        params.subject_alt_names = vec![dns_san(node_id)?, dns_san(role.as_str())?];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .map_err(|source| CaError::Rcgen {
                op: "sign the node certificate",
                source,
            })?;
        let identity = NodeIdentity::from_der(cert.der())?;
        Ok(IssuedCert {
            cert_pem: pem_encode("CERTIFICATE", cert.der()),
            not_before_unix_ms: identity.not_before_unix_ms,
            not_after_unix_ms: identity.not_after_unix_ms,
            serial_hex: identity.serial_hex,
        })
    }
}

/// The root CA certificate without its key: what a node trusts. Built from
/// [`RootCa::trust_root`] on managers, or from the PEM/DER a node received
/// when it joined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustRoot {
    cert_pem: String,
    cert_der: Vec<u8>,
    digest: String,
}

impl TrustRoot {
    /// Loads the first `CERTIFICATE` section of `cert_pem`, which must be a
    /// CA certificate.
    pub fn from_pem(cert_pem: &str) -> Result<Self, CaError> {
        let der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|source| CaError::Pem {
                what: "the trust root certificate",
                source,
            })?;
        Self::from_der(&der)
    }

    /// Loads a CA certificate from DER, e.g. what
    /// [`super::PinnedCaObserver::ca_cert_der`] recorded during a join.
    pub fn from_der(cert_der: &[u8]) -> Result<Self, CaError> {
        const WHAT: &str = "the trust root certificate";
        let x509 = parse_certificate(cert_der, WHAT)?;
        if !x509.is_ca() {
            return Err(CaError::NotACa { what: WHAT });
        }
        Ok(Self {
            cert_pem: pem_encode("CERTIFICATE", cert_der),
            cert_der: cert_der.to_vec(),
            digest: ca_digest(cert_der),
        })
    }

    /// The CA certificate, PEM (one `CERTIFICATE` section, LF line ends).
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    #[must_use]
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA digest ([`ca_digest`]): 50 characters of `[0-9a-z]`.
    #[must_use]
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

/// The public key of a PEM CSR, after checking the CSR's self-signature and
/// the key's algorithm. Nothing else of the CSR is read.
fn csr_public_key(csr_pem: &str) -> Result<SubjectPublicKeyInfo, CaError> {
    const WHAT: &str = "the certificate signing request";
    let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .map_err(|source| CaError::Pem { what: WHAT, source })?;
    let (_, csr) = X509CertificationRequest::from_der(der.as_ref()).map_err(|e| CaError::X509 {
        what: WHAT,
        source: x509_error(e),
    })?;
    csr.verify_signature()
        .map_err(|source| CaError::CsrSignature { source })?;
    let spki = SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
        .map_err(|source| match source {
            rcgen::Error::UnsupportedSignatureAlgorithm => CaError::UnsupportedKeyAlgorithm,
            source => CaError::Rcgen {
                op: "read the certificate signing request's public key",
                source,
            },
        })?;
    let accepted = [
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_ED25519,
    ];
    if !accepted.contains(&spki.algorithm()) {
        return Err(CaError::UnsupportedKeyAlgorithm);
    }
    Ok(spki)
}

/// `CN=<common_name>[, OU=<role>], O=<cluster_id>`, in that order.
fn distinguished_name(
    common_name: &str,
    role: Option<NodeRole>,
    cluster_id: &str,
) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(role) = role {
        dn.push(DnType::OrganizationalUnitName, role.as_str());
    }
    dn.push(DnType::OrganizationName, cluster_id);
    dn
}

fn dns_san(name: &str) -> Result<SanType, CaError> {
    Ok(SanType::DnsName(name.try_into().map_err(|source| {
        CaError::Rcgen {
            op: "encode a DNS subject alternative name",
            source,
        }
    })?))
}

fn check_validity(what: &'static str, validity: Duration, min: Duration) -> Result<(), CaError> {
    let reason = if validity < min {
        "shorter than one hour"
    } else if validity > MAX_VALIDITY {
        "longer than 100 years"
    } else {
        return Ok(());
    };
    Err(CaError::InvalidValidity {
        what,
        validity,
        reason,
    })
}

/// `(now - CERT_BACKDATE, min(now + validity, cap))`, `cap` in Unix ms.
fn validity_window(
    validity: Duration,
    cap_unix_ms: Option<u64>,
) -> Result<(OffsetDateTime, OffsetDateTime), CaError> {
    let to_time = |d: Duration| time::Duration::try_from(d).map_err(|_| CaError::TimeOutOfRange);
    let now = OffsetDateTime::now_utc();
    let not_before = now
        .checked_sub(to_time(CERT_BACKDATE)?)
        .ok_or(CaError::TimeOutOfRange)?;
    let mut not_after = now
        .checked_add(to_time(validity)?)
        .ok_or(CaError::TimeOutOfRange)?;
    if let Some(cap) = cap_unix_ms {
        let cap = OffsetDateTime::from_unix_timestamp_nanos(i128::from(cap) * 1_000_000)
            .map_err(|_| CaError::TimeOutOfRange)?;
        not_after = not_after.min(cap);
    }
    Ok((not_before, not_after))
}

/// 20 random bytes (RFC 5280's maximum), the top bit cleared so the DER
/// INTEGER stays positive and 20 bytes long, the next bit set so it never
/// shrinks: 158 random bits.
fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = random_bytes::<20>("a certificate serial number")?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

#[cfg(test)]
mod tests {
    use x509_parser::x509::AttributeTypeAndValue;

    use super::*;
    use crate::ca::DEFAULT_ROOT_CA_VALIDITY;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn digest_is_50_base36_chars_and_stable() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        assert_eq!(ca.digest().len(), 50);
        assert!(
            ca.digest()
                .bytes()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
        assert_eq!(ca.digest(), ca_digest(ca.cert_der()));
        assert_eq!(ca.trust_root().digest(), ca.digest());
        let reloaded = RootCa::from_pem(ca.cert_pem(), ca.key_pem())?;
        assert_eq!(reloaded.digest(), ca.digest());
        assert_eq!(reloaded.cert_pem(), ca.cert_pem());
        assert_eq!(TrustRoot::from_pem(ca.cert_pem())?, ca.trust_root());
        assert!(is_well_formed_digest(ca.digest()));
        Ok(())
    }

    #[test]
    fn digest_encoding_matches_go_big_int_text() {
        // SHA-256("") = e3b0c442…b855 in base36, computed independently
        // (Python `int(hex, 16)` in base 36), as Go's `big.Int.Text(36)`.
        assert_eq!(
            ca_digest(b""),
            "5oaq0bjhj6un82wg98mgigso5q7qlhc63je4gw7ivixqqhkd3p"
        );
    }

    #[test]
    fn two_cas_have_different_digests() -> TestResult {
        let a = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let b = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        assert_ne!(a.digest(), b.digest());
        Ok(())
    }

    #[test]
    fn root_ca_subject_and_constraints() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let x509 = parse_certificate(ca.cert_der(), "test")?;
        assert!(x509.is_ca());
        let cn: Vec<_> = x509
            .subject()
            .iter_common_name()
            .map(AttributeTypeAndValue::as_str)
            .collect();
        assert_eq!(cn, [Ok("swarm-ca")]);
        let o: Vec<_> = x509
            .subject()
            .iter_organization()
            .map(AttributeTypeAndValue::as_str)
            .collect();
        assert_eq!(o, [Ok("cluster1")]);
        assert_eq!(x509.subject(), x509.issuer());
        assert_eq!(ca.cluster_id(), Some("cluster1"));
        assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
        Ok(())
    }

    #[test]
    fn reload_refuses_a_foreign_key_and_a_non_ca() -> TestResult {
        let a = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let b = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        assert!(matches!(
            RootCa::from_pem(a.cert_pem(), b.key_pem()),
            Err(CaError::KeyMismatch)
        ));
        let node_key = KeyPair::generate()?;
        let leaf = CertificateParams::new(vec!["x".to_owned()])?.self_signed(&node_key)?;
        assert!(matches!(
            RootCa::from_pem(&leaf.pem(), &node_key.serialize_pem()),
            Err(CaError::NotACa { .. })
        ));
        assert!(matches!(
            TrustRoot::from_pem(&leaf.pem()),
            Err(CaError::NotACa { .. })
        ));
        assert!(matches!(
            TrustRoot::from_pem("not pem"),
            Err(CaError::Pem { .. })
        ));
        Ok(())
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(matches!(
            RootCa::generate("", DEFAULT_ROOT_CA_VALIDITY),
            Err(CaError::InvalidId { .. })
        ));
        assert!(matches!(
            RootCa::generate("c", Duration::from_mins(1)),
            Err(CaError::InvalidValidity { .. })
        ));
        assert!(matches!(
            RootCa::generate("c", Duration::from_secs(u64::MAX)),
            Err(CaError::InvalidValidity { .. })
        ));
    }
}
