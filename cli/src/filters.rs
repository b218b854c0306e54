//! Docker's list filters: `-f key=value` flags ([`parse_filters`]) and the
//! `filters` query parameter they travel in ([`with_filters`]), the JSON
//! `{"key":{"value":true}}` percent-encoded.

use std::collections::{BTreeMap, BTreeSet};

use crate::docker_error::DockerError;

/// Filter values by key.
pub type Filters = BTreeMap<String, BTreeSet<String>>;

/// `-f key=value` flags as docker's filters: keys trimmed and lower-cased,
/// values trimmed.
pub fn parse_filters(flags: &[String]) -> Result<Filters, DockerError> {
    let mut filters = Filters::new();
    for flag in flags {
        let (key, value) = flag
            .split_once('=')
            .ok_or_else(|| DockerError("bad format of filter (expected name=value)".into()))?;
        filters
            .entry(key.trim().to_lowercase())
            .or_default()
            .insert(value.trim().to_owned());
    }
    Ok(filters)
}

/// The `filters` query value: `{"key":{"value":true}}`, percent-encoded.
fn filters_query(filters: &Filters) -> String {
    let json: BTreeMap<&String, BTreeMap<&String, bool>> = filters
        .iter()
        .map(|(k, values)| (k, values.iter().map(|v| (v, true)).collect()))
        .collect();
    shoal_api::client::query_value(&serde_json::to_string(&json).unwrap_or_default())
}

/// `path` with the `filters` query parameter, when there are filters.
pub fn with_filters(path: &str, filters: &Filters) -> String {
    if filters.is_empty() {
        path.to_owned()
    } else {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}filters={}", filters_query(filters))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_encode_as_dockers_json() {
        let filters =
            parse_filters(&["desired-state=running".into(), "node=n1".into()]).expect("valid");
        assert_eq!(
            filters_query(&filters),
            "%7B%22desired-state%22%3A%7B%22running%22%3Atrue%7D%2C%22node%22%3A%7B%22n1%22%3Atrue%7D%7D"
        );
        assert!(parse_filters(&["nonsense".into()]).is_err());
    }
}
