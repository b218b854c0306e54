//! JSON as Docker's Go code writes and reads it: `null` for a nil slice or
//! map, fields left out when they hold their zero value (`omitempty`).
//! Shared by the Docker views and the specs, below both.

use serde::Deserialize;

/// Reads `null` (Go's nil slice or map) as the type's default.
pub(crate) fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Whether a field holds its type's default, for the fields Go leaves out
/// then (`omitempty`).
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
