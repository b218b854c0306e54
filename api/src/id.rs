//! Object identifiers in swarmkit's format: 25 characters of `[0-9a-z]`
//! from 128 random bits, as `docker node ls` shows them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Length of a generated identifier.
pub const ID_LEN: usize = 25;

/// A node, service, task or network identifier.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectId(String);

/// Why a string is not an [`ObjectId`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid ID {value:?}: expected {ID_LEN} characters of [0-9a-z]")]
pub struct InvalidId {
    /// The rejected input.
    pub value: String,
}

impl ObjectId {
    /// Generates a fresh random identifier.
    ///
    /// # Panics
    /// When the operating system has no randomness to give, which leaves
    /// nothing sensible to do.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random source is available");
        Self(encode_base36(u128::from_le_bytes(bytes)))
    }
}

impl ObjectId {
    /// The identifier of a 128-bit value, for IDs derived
    /// deterministically (e.g. from a digest) rather than drawn.
    #[must_use]
    pub fn from_u128(value: u128) -> Self {
        Self(encode_base36(value))
    }
}

/// Encodes `value` in base 36, left-padded with zeros to [`ID_LEN`] (36^25 >
/// 2^128, so every value fits).
fn encode_base36(mut value: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; ID_LEN];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value % 36) as usize];
        value /= 36;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

impl TryFrom<String> for ObjectId {
    type Error = InvalidId;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.len() == ID_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        {
            Ok(Self(value))
        } else {
            Err(InvalidId { value })
        }
    }
}

impl std::str::FromStr for ObjectId {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<ObjectId> for String {
    fn from(id: ObjectId) -> Self {
        id.0
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = ObjectId::generate();
        let b = ObjectId::generate();
        assert_ne!(a, b);
        assert_eq!(a.to_string().len(), ID_LEN);
        assert_eq!(a.to_string().parse::<ObjectId>(), Ok(a.clone()));
    }

    #[test]
    fn base36_bounds() {
        assert_eq!(encode_base36(0), "0".repeat(ID_LEN));
        assert_eq!(encode_base36(35), format!("{}z", "0".repeat(ID_LEN - 1)));
        assert_eq!(encode_base36(u128::MAX).len(), ID_LEN);
    }

    #[test]
    fn rejects_bad_ids() {
        assert!("short".parse::<ObjectId>().is_err());
        assert!("ABCDEFGHIJKLMNOPQRSTUVWXY".parse::<ObjectId>().is_err());
        assert!(serde_json::from_str::<ObjectId>("\"0123456789abcdefghijklmn!\"").is_err());
    }
}
