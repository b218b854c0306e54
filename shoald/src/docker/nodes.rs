//! `/nodes…`: list with Docker's filters, inspect, update (role,
//! availability, labels; a demotion that would lose the quorum is refused)
//! and remove.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{get, post},
};
use serde::Deserialize;
use shoal_api::docker;
use shoal_manager::{
    docker_view,
    runtime::{Manager, ManagerError},
    state::{Availability, Command, NodeRole, Reachability},
};

use crate::{
    errors::Answer,
    node_state::{NodeState, manager, synced_manager},
    query::{FiltersQuery, ForceQuery, label_matches, parse_filters},
    swarm::SwarmError,
};

/// Routes of this module.
pub fn routes() -> Router<Arc<NodeState>> {
    Router::new()
        .route("/nodes", get(list_nodes))
        .route("/nodes/{id}", get(inspect_node).delete(remove_node))
        .route("/nodes/{id}/update", post(update_node))
}

/// Whether `node` passes Docker's node filters (values of one key are
/// alternatives; keys must all match).
fn node_matches(node: &docker::Node, filters: &BTreeMap<String, Vec<String>>) -> Answer<bool> {
    for (key, values) in filters {
        let ok = match key.as_str() {
            "id" => values.iter().any(|v| node.id.starts_with(v.as_str())),
            "name" => values.iter().any(|v| {
                node.description.hostname.starts_with(v.as_str())
                    || node.spec.name.starts_with(v.as_str())
            }),
            "role" => values.contains(&node.spec.role),
            "membership" => values.iter().any(|v| v == "accepted"),
            "label" => values
                .iter()
                .all(|v| label_matches(&node.description.engine.labels, v)),
            "node.label" => values.iter().all(|v| label_matches(&node.spec.labels, v)),
            other => {
                return Err(SwarmError::InvalidRequest(format!(
                    "invalid filter '{other}'"
                )));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn list_nodes(
    State(state): State<Arc<NodeState>>,
    Query(query): Query<FiltersQuery>,
) -> Answer<Json<Vec<docker::Node>>> {
    let filters = parse_filters(query.filters.as_deref())?;
    let manager = synced_manager(&state).await?;
    let leader = manager.leader();
    let nodes: Vec<docker::Node> = manager
        .read(|s| {
            s.nodes
                .values()
                .map(|n| docker_view::node(s, n, leader))
                .collect()
        })
        .await;
    let mut kept = Vec::with_capacity(nodes.len());
    for node in nodes {
        if node_matches(&node, &filters)? {
            kept.push(node);
        }
    }
    Ok(Json(kept))
}

async fn inspect_node(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
) -> Answer<Json<docker::Node>> {
    let manager = synced_manager(&state).await?;
    let leader = manager.leader();
    let node = manager
        .read(|s| s.node(&id).map(|n| docker_view::node(s, n, leader)))
        .await
        .map_err(ManagerError::from)?;
    Ok(Json(node))
}

#[derive(Debug, Deserialize)]
struct VersionQuery {
    version: u64,
}

async fn update_node(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
    Query(query): Query<VersionQuery>,
    Json(spec): Json<docker::NodeSpec>,
) -> Answer<StatusCode> {
    let manager = manager(&state).await?;
    let current = manager
        .read(|s| s.node(&id).cloned())
        .await
        .map_err(ManagerError::from)?;
    let role = match spec.role.as_str() {
        "" => current.spec.role,
        "worker" => NodeRole::Worker,
        "manager" => NodeRole::Manager,
        other => {
            return Err(SwarmError::InvalidRequest(format!(
                "invalid role {other:?}: worker or manager"
            )));
        }
    };
    if role == NodeRole::Worker && current.spec.role == NodeRole::Manager {
        refuse_quorum_loss(&manager, &current.id).await?;
    }
    let availability = match spec.availability.as_str() {
        "" => current.spec.availability,
        "active" => Availability::Active,
        "pause" => Availability::Pause,
        "drain" => Availability::Drain,
        other => {
            return Err(SwarmError::InvalidRequest(format!(
                "invalid availability {other:?}: active, pause or drain"
            )));
        }
    };
    let mut new_spec = current.spec.clone();
    new_spec.name = spec.name;
    new_spec.labels = spec.labels.into_iter().collect::<BTreeMap<_, _>>();
    new_spec.role = role;
    new_spec.availability = availability;
    manager
        .propose(Command::UpdateNodeSpec {
            id: current.id,
            expected_version: query.version,
            spec: new_spec,
        })
        .await?;
    Ok(StatusCode::OK)
}

/// Refuses to demote `id` when the managers left could not form a majority.
async fn refuse_quorum_loss(manager: &Manager, id: &str) -> Answer<()> {
    let (remaining, reachable) = manager
        .read(|s| {
            let others: Vec<_> = s.raft_members().filter(|n| n.id != id).collect();
            let reachable = others
                .iter()
                .filter(|n| {
                    n.manager
                        .as_ref()
                        .is_some_and(|m| m.reachability == Reachability::Reachable)
                })
                .count();
            (others.len(), reachable)
        })
        .await;
    if remaining > 0 && reachable < remaining / 2 + 1 {
        return Err(SwarmError::InvalidRequest(
            "can't remove member from the raft: this would result in a loss of quorum".into(),
        ));
    }
    Ok(())
}

async fn remove_node(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
    Query(query): Query<ForceQuery>,
) -> Answer<StatusCode> {
    let manager = manager(&state).await?;
    let id = manager
        .read(|s| s.node(&id).map(|n| n.id.clone()))
        .await
        .map_err(ManagerError::from)?;
    manager
        .propose(Command::RemoveNode {
            id,
            force: query.force,
        })
        .await?;
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, role: &str, labels: &[(&str, &str)]) -> docker::Node {
        let mut node = docker::Node {
            id: id.into(),
            ..docker::Node::default()
        };
        node.spec.role = role.into();
        node.description.hostname = format!("host-{id}");
        node.spec.labels = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        node
    }

    #[test]
    fn docker_node_filters() {
        let manager = node("abc", "manager", &[("zone", "a")]);
        let worker = node("abd", "worker", &[]);
        let filters = |raw: &str| parse_filters(Some(raw)).expect("valid filters");
        let keep =
            |n: &docker::Node, raw: &str| node_matches(n, &filters(raw)).expect("known filter");
        assert!(keep(&manager, r#"{"role":{"manager":true}}"#));
        assert!(!keep(&worker, r#"{"role":{"manager":true}}"#));
        assert!(keep(&worker, r#"{"id":{"ab":true}}"#));
        assert!(keep(&manager, r#"{"node.label":{"zone=a":true}}"#));
        assert!(!keep(&worker, r#"{"node.label":{"zone":true}}"#));
        assert!(keep(&worker, r#"{"name":["host-abd"]}"#));
        assert!(parse_filters(Some("not json")).is_err());
        assert!(node_matches(&worker, &filters(r#"{"colour":{"red":true}}"#)).is_err());
    }
}
