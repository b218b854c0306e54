//! Docker's query parameters shared by several endpoints: `filters` (every
//! list), `force` (leave, remove), and booleans read as Docker reads them.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::{errors::Answer, swarm::SwarmError};

#[derive(Debug, Deserialize)]
pub struct FiltersQuery {
    /// Docker's filters: JSON `{"key": {"value": true}}` (or `["value"]`).
    pub filters: Option<String>,
}

/// Docker's `filters` query parameter, decoded to key → accepted values.
pub fn parse_filters(raw: Option<&str>) -> Answer<BTreeMap<String, Vec<String>>> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let value: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| SwarmError::InvalidRequest(format!("invalid filters {raw:?}: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(SwarmError::InvalidRequest(format!(
            "invalid filters {raw:?}: expected an object"
        )));
    };
    let mut filters = BTreeMap::new();
    for (key, values) in object {
        let values: Vec<String> = match values {
            serde_json::Value::Object(map) => map.keys().cloned().collect(),
            serde_json::Value::Array(list) => list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => {
                return Err(SwarmError::InvalidRequest(format!(
                    "invalid filter {key:?}"
                )));
            }
        };
        filters.insert(key.clone(), values);
    }
    Ok(filters)
}

/// Refuses, as Docker does, a filter key the endpoint does not know.
pub fn accept_filters(filters: &BTreeMap<String, Vec<String>>, known: &[&str]) -> Answer<()> {
    match filters.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(SwarmError::InvalidRequest(format!(
            "invalid filter '{key}'"
        ))),
        None => Ok(()),
    }
}

/// Whether `labels` match a `label` filter value: `key` (present) or
/// `key=value`.
pub fn label_matches(labels: &BTreeMap<String, String>, wanted: &str) -> bool {
    match wanted.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(wanted),
    }
}

/// `?force=…` of `swarm/leave` and the remove endpoints.
#[derive(Debug, Deserialize)]
pub struct ForceQuery {
    #[serde(default, deserialize_with = "docker_bool")]
    pub force: bool,
}

/// Whether a boolean query parameter is set, as Docker's daemon reads one
/// (`httputils.BoolValue`): absent, empty, `0`, `no`, `false` and `none`,
/// in any case and with blanks around, are false; anything else is true.
/// Clients send `True`, `1`, `false`…
pub fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        !matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "no" | "false" | "none"
        )
    })
}

/// Deserializes a boolean query parameter with [`is_true`]; with
/// `#[serde(default, deserialize_with = "docker_bool")]`.
pub fn docker_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(is_true(
        Option::<String>::deserialize(deserializer)?.as_deref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_as_docker_reads_them() {
        for falsy in [
            None,
            Some(""),
            Some("0"),
            Some("no"),
            Some("false"),
            Some("False"),
            Some(" NONE "),
            Some("No"),
        ] {
            assert!(!is_true(falsy), "{falsy:?} is false");
        }
        for truthy in ["1", "true", "True", "TRUE", "yes", "on", "2"] {
            assert!(is_true(Some(truthy)), "{truthy:?} is true");
        }
    }

    #[test]
    fn force_query_takes_any_docker_boolean() {
        let parse = |query: &str| -> ForceQuery {
            let uri: axum::http::Uri = format!("/swarm/leave?{query}").parse().expect("uri");
            axum::extract::Query::try_from_uri(&uri)
                .expect("valid query")
                .0
        };
        assert!(parse("force=True").force);
        assert!(parse("force=1").force);
        assert!(!parse("force=False").force);
        assert!(!parse("force=0").force);
        assert!(!parse("").force);
    }
}
