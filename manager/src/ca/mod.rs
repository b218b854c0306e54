//! The cluster PKI (DESIGN.md §3 "Security"): the root CA, join tokens, node
//! certificates, the identity carried by a peer's certificate, renewal timing
//! and the rustls configurations every node-to-node connection uses.
//!
//! The model is Docker swarm's (swarmkit `ca/`), secure by default with
//! nothing to switch off:
//!
//! - `swarm init` makes a self-signed root CA ([`RootCa::generate`]); its
//!   certificate's SHA-256 digest, in base36, is pinned by every join token.
//! - A node makes its own key pair and a CSR ([`NodeKeyPair`]); the CA signs
//!   it with the node ID, role and cluster ID it decides itself and ignores
//!   whatever subject the CSR asked for ([`RootCa::issue_node_certificate`]).
//! - All node-to-node gRPC is mutual TLS 1.3 ([`server_config`],
//!   [`client_config`]); a joining node with no certificate yet connects
//!   with [`join_client_config`], which trusts the server only if it presents
//!   the CA whose digest the join token pins.
//! - The peer's node ID, role and cluster come from its certificate
//!   ([`NodeIdentity`]); the role is the certificate's OU, so a worker can
//!   never act as a manager without the CA issuing it a manager certificate.
//!
//! Module map: `root` (the CA and the trust root), `token` (join tokens),
//! `node_cert` (key pairs, CSRs, issued certificates, identities,
//! credentials), `renewal` (when to renew), `tls` (rustls configurations),
//! `encoding` (base36, PEM, hex).

mod encoding;
mod node_cert;
mod renewal;
mod root;
mod tls;
mod token;

use std::fmt;
use std::time::Duration;

pub use node_cert::{IssuedCert, NodeCredentials, NodeIdentity, NodeKeyPair};
pub use renewal::{now_unix_ms, renewal_at_ms, renewal_due};
pub use root::{RootCa, TrustRoot, ca_digest};
pub use tls::{
    ALPN_H2, PinnedCaObserver, client_config, handshake_ca_error, join_client_config,
    peer_identity, server_config,
};
pub use token::{JoinToken, TokenError, authorize_join};

/// How long a new root CA is valid: 20 years, as swarmkit's
/// `RootCAExpiration`.
pub const DEFAULT_ROOT_CA_VALIDITY: Duration = Duration::from_hours(20 * 365 * 24);

/// How long a node certificate is valid: 90 days, as swarmkit's
/// `DefaultNodeCertExpiration` (`docker swarm init --cert-expiry 2160h0m0s`).
pub const DEFAULT_NODE_CERT_VALIDITY: Duration = Duration::from_hours(90 * 24);

/// The shortest node certificate validity the CA accepts: one hour, as
/// swarmkit's `MinNodeCertExpiration`.
pub const MIN_NODE_CERT_VALIDITY: Duration = Duration::from_hours(1);

/// How far a certificate's `notBefore` is set back from the moment it is
/// issued, so that a node whose clock runs a little behind the CA's accepts
/// it at once (swarmkit's `CertBackdate`, one hour).
pub const CERT_BACKDATE: Duration = Duration::from_hours(1);

/// The common name of the root CA certificate, as in swarmkit.
pub const ROOT_CA_COMMON_NAME: &str = "swarm-ca";

/// The longest node or cluster ID accepted, in bytes (the same bound as the
/// state module's object IDs).
pub const MAX_ID_BYTES: usize = 64;

/// A node's role as written in its certificate: the subject's OU and a DNS
/// subject alternative name are `swarm-manager` or `swarm-worker`.
///
/// The state module has its own `NodeRole` for the desired role; this one is
/// what the CA certified, which is what a peer may be trusted with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeRole {
    /// A worker: runs tasks, talks to managers only as a client.
    Worker,
    /// A manager: a Raft voter and a server for the control-plane RPCs.
    Manager,
}

impl NodeRole {
    /// The OU and DNS name of this role: `swarm-manager` or `swarm-worker`.
    /// Clients connecting to a manager verify the server name `swarm-manager`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Worker => "swarm-worker",
            Self::Manager => "swarm-manager",
        }
    }

    /// The role whose OU/DNS name is `s`, if any.
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "swarm-worker" => Some(Self::Worker),
            "swarm-manager" => Some(Self::Manager),
            _ => None,
        }
    }
}

impl fmt::Display for NodeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the PKI. Join-token parsing has its own
/// [`TokenError`].
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The operating system's random number generator failed.
    #[error("cannot read random bytes for {purpose}: {error}")]
    Random {
        /// What the bytes were for.
        purpose: &'static str,
        /// The generator's error (not a `source`: getrandom implements
        /// `std::error::Error` only with its `std` feature, which is off).
        error: getrandom::Error,
    },
    /// rcgen failed to generate a key, build or sign a certificate or CSR.
    #[error("cannot {op}")]
    Rcgen {
        /// What was being done, e.g. "sign the node certificate".
        op: &'static str,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// A PEM input has no section of the expected kind or is not PEM.
    #[error("{what} is not valid PEM")]
    Pem {
        /// What the input was, e.g. "the node certificate".
        what: &'static str,
        /// The PEM decoder's error.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// A DER certificate or CSR does not parse as X.509.
    #[error("cannot parse {what}")]
    X509 {
        /// What the input was.
        what: &'static str,
        /// x509-parser's error.
        #[source]
        source: x509_parser::error::X509Error,
    },
    /// The certificate given as the root CA does not have `CA:TRUE` basic
    /// constraints.
    #[error("{what} is not a CA certificate (basic constraints CA:TRUE missing)")]
    NotACa {
        /// What the certificate was given as.
        what: &'static str,
    },
    /// The CA private key does not belong to the CA certificate.
    #[error("the CA private key does not match the CA certificate's public key")]
    KeyMismatch,
    /// The CSR's self-signature does not verify: whoever sent it does not
    /// hold the private key.
    #[error("the certificate signing request's signature does not verify")]
    CsrSignature {
        /// x509-parser's verification error.
        #[source]
        source: x509_parser::error::X509Error,
    },
    /// The CSR's public key is of a kind the CA does not certify.
    #[error(
        "the certificate signing request's key algorithm is not accepted \
         (only ECDSA P-256, ECDSA P-384 and Ed25519)"
    )]
    UnsupportedKeyAlgorithm,
    /// A node or cluster ID that cannot go into a certificate.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidId {
        /// "node ID" or "cluster ID".
        field: &'static str,
        /// The offending value.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A certificate validity that is too short or too long.
    #[error("invalid validity {validity:?} for {what}: {reason}")]
    InvalidValidity {
        /// "the root CA" or "a node certificate".
        what: &'static str,
        /// The requested validity.
        validity: Duration,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A certificate lacks a field a node certificate must have, or has it
    /// more than once.
    #[error("the certificate's {field} {reason}")]
    BadIdentity {
        /// The field: "subject CN", "subject OU", "subject O", "validity".
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The certificate's OU is not a role this cluster knows.
    #[error("the certificate's OU {ou:?} is neither swarm-manager nor swarm-worker")]
    UnknownRole {
        /// The OU found.
        ou: String,
    },
    /// rustls refused a configuration (bad key, key not matching the cert).
    #[error("cannot {op}")]
    Tls {
        /// What was being built.
        op: &'static str,
        /// rustls's error.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused to build a certificate verifier.
    #[error("cannot build the {what} certificate verifier")]
    Verifier {
        /// "client" or "server".
        what: &'static str,
        /// rustls's error.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// A CA digest that is not 50 characters of `[0-9a-z]`.
    #[error("malformed CA digest {digest:?}: expected 50 characters of [0-9a-z]")]
    MalformedDigest {
        /// The digest given.
        digest: String,
    },
    /// The server a joining node connected to does not present the CA its
    /// join token pins. Surfaces inside the handshake error as
    /// `rustls::Error::InvalidCertificate(CertificateError::Other(..))`.
    #[error(
        "the server's certificate chain holds no CA certificate with the pinned digest \
         {expected} (digests presented: {presented:?}); wrong join token or wrong cluster"
    )]
    PinnedCaMismatch {
        /// The digest from the join token.
        expected: String,
        /// The digests of the non-leaf certificates the server sent.
        presented: Vec<String>,
    },
    /// The clock or a requested validity is outside what an X.509 time can
    /// hold.
    #[error("certificate time out of range")]
    TimeOutOfRange,
}

/// Checks a node or cluster ID the way the state module checks object IDs:
/// 1–[`MAX_ID_BYTES`] bytes of ASCII letters, digits, `-`, `_`, `.`,
/// starting with a letter or digit. Such a string is a valid X.509
/// `UTF8String` and DNS `IA5String`.
pub(crate) fn validate_id(field: &'static str, value: &str) -> Result<(), CaError> {
    let invalid = |reason| {
        Err(CaError::InvalidId {
            field,
            value: value.to_owned(),
            reason,
        })
    };
    let Some(first) = value.chars().next() else {
        return invalid("must not be empty");
    };
    if value.len() > MAX_ID_BYTES {
        return invalid("longer than 64 bytes");
    }
    if !first.is_ascii_alphanumeric() {
        return invalid("must start with a letter or digit");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return invalid("only letters, digits, '-', '_', '.' are allowed");
    }
    Ok(())
}

/// Fills `N` bytes from the operating system's generator.
pub(crate) fn random_bytes<const N: usize>(purpose: &'static str) -> Result<[u8; N], CaError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|error| CaError::Random { purpose, error })?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in [NodeRole::Worker, NodeRole::Manager] {
            assert_eq!(NodeRole::from_name(role.as_str()), Some(role));
            assert_eq!(role.to_string(), role.as_str());
        }
        assert_eq!(NodeRole::from_name("swarm-ca"), None);
    }

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("node ID", "abc-1_2.3").is_ok());
        assert!(validate_id("node ID", "").is_err());
        assert!(validate_id("node ID", "-abc").is_err());
        assert!(validate_id("node ID", "a b").is_err());
        assert!(validate_id("node ID", "é").is_err());
        assert!(validate_id("node ID", &"a".repeat(65)).is_err());
        assert!(validate_id("node ID", &"a".repeat(64)).is_ok());
    }
}
