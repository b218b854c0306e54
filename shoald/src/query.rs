//! Docker's query parameters shared by several endpoints: `filters` (every
//! list) and `force` (leave, remove).

use std::collections::BTreeMap;

use serde::Deserialize;

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
    #[serde(default)]
    pub force: bool,
}
