//! Join tokens, byte for byte Docker's: `SWMTKN-1-<digest>-<secret>`.
//!
//! - `SWMTKN`: the literal prefix; `1`: the format version.
//! - `<digest>`: the root CA's digest ([`super::ca_digest`]): SHA-256 of the
//!   CA certificate's DER, base36 `[0-9a-z]`, left-padded with `0` to 50
//!   characters. A joining node pins the CA with it.
//! - `<secret>`: 128 random bits, base36, left-padded to 25 characters.
//!
//! A cluster has two independent tokens, one that joins a worker and one
//! that joins a manager; rotating one leaves the other valid. Secrets are
//! compared in constant time and never printed by `Debug` or errors.

use std::fmt;
use std::str::FromStr;

use super::encoding::{base36_decode, base36_encode};
use super::root::{DIGEST_CHARS, is_well_formed_digest};
use super::{CaError, NodeRole, RootCa, TrustRoot, random_bytes};

/// The token prefix.
const PREFIX: &str = "SWMTKN";
/// The only format version shoal (and Docker without FIPS) writes.
const VERSION: &str = "1";
/// The secret's random bytes: 16 (128 bits), as swarmkit.
const SECRET_BYTES: usize = 16;
/// The secret's base36 characters: 25 (36^25 > 2^128).
const SECRET_CHARS: usize = 25;

/// A parsed join token. `Display` writes the token; `FromStr` parses it.
/// Equality compares the secret in constant time. `Debug` hides the secret.
#[derive(Clone, Eq)]
pub struct JoinToken {
    /// The pinned CA digest: 50 characters of `[0-9a-z]`.
    pub ca_digest: String,
    /// The secret: 25 characters of `[0-9a-z]`.
    pub secret: String,
}

impl JoinToken {
    /// A new token for `ca` with a fresh 128-bit secret. Call it once for
    /// the worker token and once for the manager token.
    pub fn generate(ca: &RootCa) -> Result<Self, CaError> {
        let secret = random_bytes::<SECRET_BYTES>("a join token secret")?;
        Ok(Self {
            ca_digest: ca.digest().to_owned(),
            secret: base36_encode(&secret, SECRET_CHARS),
        })
    }

    /// Whether the token pins `trust`'s CA certificate.
    #[must_use]
    pub fn matches_ca(&self, trust: &TrustRoot) -> bool {
        self.matches_digest(trust.digest())
    }

    /// Whether the token pins the CA whose digest is `digest`.
    #[must_use]
    pub fn matches_digest(&self, digest: &str) -> bool {
        self.ca_digest == digest
    }

    /// Whether `presented` is this token: same CA digest, same secret. The
    /// secrets are compared in constant time.
    #[must_use]
    pub fn verify(&self, presented: &JoinToken) -> bool {
        // Evaluate both halves, no short cut on the public digest either.
        let digest_ok = self.ca_digest == presented.ca_digest;
        let secret_ok = constant_time_eq(self.secret.as_bytes(), presented.secret.as_bytes());
        digest_ok & secret_ok
    }
}

impl PartialEq for JoinToken {
    fn eq(&self, other: &Self) -> bool {
        self.verify(other)
    }
}

impl fmt::Display for JoinToken {
    /// `SWMTKN-1-<ca_digest>-<secret>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}-{VERSION}-{}-{}", self.ca_digest, self.secret)
    }
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca_digest", &self.ca_digest)
            .field("secret", &"[elided]")
            .finish()
    }
}

impl FromStr for JoinToken {
    type Err = TokenError;

    /// Parses `SWMTKN-1-<50 × [0-9a-z]>-<25 × [0-9a-z]>`, ignoring white
    /// space around it (tokens get pasted). Upper-case letters are refused:
    /// Docker never writes them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fields: Vec<&str> = s.trim().split('-').collect();
        if fields.first() != Some(&PREFIX) || fields.len() < 2 {
            return Err(TokenError::NotASwarmToken);
        }
        if fields[1] != VERSION {
            return Err(TokenError::UnsupportedVersion {
                version: fields[1].chars().take(16).collect(),
            });
        }
        let [_, _, digest, secret] = fields[..] else {
            return Err(TokenError::WrongFieldCount {
                found: fields.len(),
            });
        };
        if !is_well_formed_digest(digest) {
            return Err(TokenError::MalformedDigest { len: digest.len() });
        }
        if secret.len() != SECRET_CHARS || base36_decode::<SECRET_BYTES>(secret).is_none() {
            return Err(TokenError::MalformedSecret { len: secret.len() });
        }
        Ok(Self {
            ca_digest: digest.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

/// Why a string is not a join token. Never contains the secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The string does not start with `SWMTKN-`.
    #[error("not a swarm join token (expected SWMTKN-1-<digest>-<secret>)")]
    NotASwarmToken,
    /// The version field is not `1` (`2` is Docker's FIPS variant).
    #[error("unsupported join token version {version:?} (only 1 is supported)")]
    UnsupportedVersion {
        /// The version found (at most 16 characters of it).
        version: String,
    },
    /// Not exactly four `-`-separated fields.
    #[error("malformed join token: {found} '-'-separated fields, expected 4")]
    WrongFieldCount {
        /// How many fields there were.
        found: usize,
    },
    /// The digest field is not 50 characters of `[0-9a-z]` or exceeds 256
    /// bits.
    #[error(
        "malformed join token: the CA digest must be {DIGEST_CHARS} characters of [0-9a-z] \
         (found {len} characters)"
    )]
    MalformedDigest {
        /// The digest field's length.
        len: usize,
    },
    /// The secret field is not 25 characters of `[0-9a-z]` or exceeds 128
    /// bits.
    #[error(
        "malformed join token: the secret must be {SECRET_CHARS} characters of [0-9a-z] \
         (found {len} characters)"
    )]
    MalformedSecret {
        /// The secret field's length.
        len: usize,
    },
}

/// The role a presented token grants: [`NodeRole::Worker`] if it is the
/// worker token, [`NodeRole::Manager`] if it is the manager token, `None`
/// otherwise (wrong secret, rotated token, other cluster). Both comparisons
/// always run, in constant time over the secrets. Were both tokens equal
/// (they never are when generated), the less privileged role wins.
#[must_use]
pub fn authorize_join(
    presented: &JoinToken,
    worker: &JoinToken,
    manager: &JoinToken,
) -> Option<NodeRole> {
    let is_worker = worker.verify(presented);
    let is_manager = manager.verify(presented);
    match (is_worker, is_manager) {
        (true, _) => Some(NodeRole::Worker),
        (false, true) => Some(NodeRole::Manager),
        (false, false) => None,
    }
}

/// Whether `a == b`, in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::DEFAULT_ROOT_CA_VALIDITY;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const DIGEST: &str = "4bl65z15zd6nt4y0xc0mf639z4hhwphqn5l523bo6ws0yp230v";
    const SECRET: &str = "3hmyg7ttnl0khbhfm3mefncgg";

    #[test]
    fn round_trip() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let token = JoinToken::generate(&ca)?;
        let text = token.to_string();
        assert_eq!(text.len(), "SWMTKN-1-".len() + 50 + 1 + 25);
        assert!(text.starts_with("SWMTKN-1-"));
        let parsed: JoinToken = text.parse()?;
        assert_eq!(parsed, token);
        assert_eq!(parsed.ca_digest, ca.digest());
        assert!(parsed.matches_ca(&ca.trust_root()));
        let other = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        assert!(!parsed.matches_ca(&other.trust_root()));
        assert!(!format!("{token:?}").contains(&token.secret));
        Ok(())
    }

    #[test]
    fn parses_a_docker_token() -> TestResult {
        let text = format!("  SWMTKN-1-{DIGEST}-{SECRET}\n");
        let token: JoinToken = text.parse()?;
        assert_eq!(token.ca_digest, DIGEST);
        assert_eq!(token.secret, SECRET);
        assert_eq!(token.to_string(), text.trim());
        assert!(token.matches_digest(DIGEST));
        Ok(())
    }

    #[test]
    fn each_parse_error() {
        let parse = |s: &str| s.parse::<JoinToken>().map(|_| ());
        assert_eq!(parse(""), Err(TokenError::NotASwarmToken));
        assert_eq!(parse("SWMTKN"), Err(TokenError::NotASwarmToken));
        assert_eq!(
            parse(&format!("SWMTKX-1-{DIGEST}-{SECRET}")),
            Err(TokenError::NotASwarmToken)
        );
        assert_eq!(
            parse(&format!("SWMTKN-2-{DIGEST}-{SECRET}-FIPS")),
            Err(TokenError::UnsupportedVersion {
                version: "2".to_owned()
            })
        );
        assert_eq!(
            parse(&format!("SWMTKN-1-{DIGEST}")),
            Err(TokenError::WrongFieldCount { found: 3 })
        );
        assert_eq!(
            parse(&format!("SWMTKN-1-{DIGEST}-{SECRET}-x")),
            Err(TokenError::WrongFieldCount { found: 5 })
        );
        assert_eq!(
            parse(&format!("SWMTKN-1-{}-{SECRET}", &DIGEST[1..])),
            Err(TokenError::MalformedDigest { len: 49 })
        );
        assert_eq!(
            parse(&format!("SWMTKN-1-{}-{SECRET}", DIGEST.to_uppercase())),
            Err(TokenError::MalformedDigest { len: 50 })
        );
        // 50 base36 digits can exceed 256 bits.
        assert_eq!(
            parse(&format!("SWMTKN-1-{}-{SECRET}", "z".repeat(50))),
            Err(TokenError::MalformedDigest { len: 50 })
        );
        assert_eq!(
            parse(&format!("SWMTKN-1-{DIGEST}-{SECRET}0")),
            Err(TokenError::MalformedSecret { len: 26 })
        );
        assert_eq!(
            parse(&format!("SWMTKN-1-{DIGEST}-{}", "z".repeat(25))),
            Err(TokenError::MalformedSecret { len: 25 })
        );
        assert_eq!(
            parse(&format!("SWMTKN-1-{DIGEST}-{}", "_".repeat(25))),
            Err(TokenError::MalformedSecret { len: 25 })
        );
        // Errors never echo the secret.
        let Err(err) = format!("SWMTKN-1-{DIGEST}-{SECRET}0").parse::<JoinToken>() else {
            panic!("a 26-character secret parsed");
        };
        assert!(!err.to_string().contains(SECRET));
    }

    #[test]
    fn worker_and_manager_tokens_are_independent() -> TestResult {
        let ca = RootCa::generate("cluster1", DEFAULT_ROOT_CA_VALIDITY)?;
        let worker = JoinToken::generate(&ca)?;
        let manager = JoinToken::generate(&ca)?;
        assert_ne!(worker.secret, manager.secret);
        assert_eq!(worker.ca_digest, manager.ca_digest);
        assert_eq!(
            authorize_join(&worker.to_string().parse()?, &worker, &manager),
            Some(NodeRole::Worker)
        );
        assert_eq!(
            authorize_join(&manager.to_string().parse()?, &worker, &manager),
            Some(NodeRole::Manager)
        );
        // A rotated manager token no longer joins; the worker token still does.
        let rotated = JoinToken::generate(&ca)?;
        assert_eq!(authorize_join(&manager, &worker, &rotated), None);
        assert_eq!(
            authorize_join(&worker, &worker, &rotated),
            Some(NodeRole::Worker)
        );
        // Right secret, other CA: refused.
        let forged = JoinToken {
            ca_digest: DIGEST.to_owned(),
            secret: worker.secret.clone(),
        };
        assert_eq!(authorize_join(&forged, &worker, &manager), None);
        Ok(())
    }

    #[test]
    fn constant_time_eq_basics() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
