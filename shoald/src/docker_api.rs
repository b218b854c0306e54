//! The Docker Engine API shoald serves: the swarm subset (`/swarm…`,
//! `/nodes…`, `/info`, `/version`, and `/services…`, `/tasks…` through
//! [`crate::docker_services`], `/networks…` through
//! [`crate::docker_networks`]), and the node's images through
//! [`crate::image_api`].
//! Swarm requests are answered by this node's manager role (images are the
//! node's own); a worker or a node outside any swarm answers with Docker's
//! own errors, so the docker CLI
//! prints what an operator expects.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use shoal_api::docker;
use shoal_manager::{
    ca::{JoinToken, RootCa},
    docker_view,
    runtime::{Manager, ManagerError},
    state::{Availability, Command, NodeRole, Reachability, Rejected},
};

use crate::{api::NodeState, swarm::SwarmError};

/// Routes of this module.
pub fn routes() -> Router<Arc<NodeState>> {
    Router::new()
        .route("/info", get(info))
        .route("/version", get(version))
        .route("/swarm/unlockkey", get(unlock_key))
        .route("/swarm", get(inspect_swarm))
        .route("/swarm/init", post(init))
        .route("/swarm/join", post(join))
        .route("/swarm/leave", post(leave))
        .route("/swarm/update", post(update_swarm))
        .route("/nodes", get(list_nodes))
        .route("/nodes/{id}", get(inspect_node).delete(remove_node))
        .route("/nodes/{id}/update", post(update_node))
        .merge(crate::image_api::routes())
        .merge(crate::docker_services::routes())
        .merge(crate::docker_networks::routes())
}

/// Docker's error body with the right status.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(docker::ErrorResponse {
            message: message.into(),
        }),
    )
        .into_response()
}

fn rejected_status(rejected: &Rejected) -> StatusCode {
    match rejected {
        Rejected::NodeNotFound { .. }
        | Rejected::ServiceNotFound { .. }
        | Rejected::TaskNotFound { .. }
        | Rejected::NetworkNotFound { .. }
        | Rejected::NoCluster => StatusCode::NOT_FOUND,
        Rejected::StaleVersion { .. }
        | Rejected::ClusterExists { .. }
        | Rejected::NodeExists { .. }
        | Rejected::ServiceExists { .. }
        | Rejected::NetworkExists { .. }
        | Rejected::NetworkInUse { .. } => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// What the docker CLI prints for a rejection: swarmkit's gRPC form
/// (`rpc error: code = … desc = …`) for the refusals Docker's daemon passes
/// through from swarmkit, the daemon's own sentences for the swarm's
/// absence or presence, and the rejection's message otherwise.
fn rejected_message(rejected: &Rejected) -> String {
    let code = match rejected {
        Rejected::ClusterExists { .. } => return SwarmError::AlreadyInSwarm.to_string(),
        Rejected::NoCluster => return "This node is not part of a swarm".to_owned(),
        Rejected::ServiceExists { .. } => "AlreadyExists",
        Rejected::PortInUse { .. }
        | Rejected::IngressPortWithDnsrr
        | Rejected::DuplicatePublishedPort { .. }
        | Rejected::IngressAttachment { .. } => "InvalidArgument",
        Rejected::IngressExists { .. } | Rejected::IngressInUse { .. } | Rejected::NoIngress => {
            "FailedPrecondition"
        }
        _ => return rejected.to_string(),
    };
    format!("rpc error: code = {code} desc = {rejected}")
}

impl IntoResponse for SwarmError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::AlreadyInSwarm | Self::NotInSwarm | Self::NotManager => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::InvalidRequest(_) | Self::Join(_) | Self::LeaveRefused(_) | Self::Ca(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::Manager(ManagerError::Rejected(rejected)) => rejected_status(rejected),
            Self::Manager(ManagerError::NoLeader) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Manager(_) | Self::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &self {
            Self::Manager(ManagerError::Rejected(rejected)) => rejected_message(rejected),
            other => other.to_string(),
        };
        error(status, message)
    }
}

pub type Answer<T> = Result<T, SwarmError>;

/// The manager role, for writes: every update carries the version it was
/// read at and the state machine refuses a stale one, so no read barrier.
pub async fn manager(state: &NodeState) -> Answer<Manager> {
    state.swarm().manager().await
}

/// The manager role caught up with every write acknowledged before the
/// request (`ReadIndex`), for reads: `inspect` then `update` through any
/// manager sees the current version, and a partitioned manager refuses to
/// answer rather than serve a stale view.
pub async fn synced_manager(state: &NodeState) -> Answer<Manager> {
    let manager = manager(state).await?;
    manager.sync_for_read().await?;
    Ok(manager)
}

async fn info(State(state): State<Arc<NodeState>>) -> Json<serde_json::Value> {
    let swarm = state.swarm().info().await;
    let node = state.info();
    Json(serde_json::json!({
        "ID": node.node_id,
        "Name": node.hostname,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "OperatingSystem": "shoal",
        "OSType": std::env::consts::OS,
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        "Containers": 0,
        "Images": 0,
        "Driver": "shoal",
        "Swarm": swarm,
    }))
}

/// `GET /version`: what `docker version` shows for the server.
async fn version() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "Platform": { "Name": "shoal" },
        "Components": [{ "Name": "shoald", "Version": env!("CARGO_PKG_VERSION"), "Details": {} }],
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": shoal_api::paths::DOCKER_API_VERSION,
        "MinAPIVersion": "1.24",
        "Os": std::env::consts::OS,
        "Arch": std::env::consts::ARCH,
        "KernelVersion": nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default(),
    }))
}

/// `GET /swarm/unlockkey`: shoal has no autolock yet, so there is no key,
/// which Docker reports the same way.
async fn unlock_key(State(state): State<Arc<NodeState>>) -> Answer<Response> {
    synced_manager(&state).await?;
    Ok(error(StatusCode::NOT_FOUND, "no unlock key is set"))
}

async fn init(
    State(state): State<Arc<NodeState>>,
    Json(request): Json<docker::SwarmInitRequest>,
) -> Answer<Json<String>> {
    state.swarm().init(&request).await.map(Json)
}

async fn join(
    State(state): State<Arc<NodeState>>,
    Json(request): Json<docker::SwarmJoinRequest>,
) -> Answer<StatusCode> {
    state.swarm().join(&request).await.map(|()| StatusCode::OK)
}

#[derive(Debug, Deserialize)]
struct ForceQuery {
    #[serde(default)]
    force: bool,
}

async fn leave(
    State(state): State<Arc<NodeState>>,
    Query(query): Query<ForceQuery>,
) -> Answer<StatusCode> {
    state
        .swarm()
        .leave(query.force)
        .await
        .map(|()| StatusCode::OK)
}

async fn inspect_swarm(State(state): State<Arc<NodeState>>) -> Answer<Json<docker::Swarm>> {
    let manager = synced_manager(&state).await?;
    let swarm = manager
        .read(|s| s.cluster().map(docker_view::swarm))
        .await
        .map_err(ManagerError::from)?;
    Ok(Json(swarm))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SwarmUpdateQuery {
    version: u64,
    #[serde(default)]
    rotate_worker_token: bool,
    #[serde(default)]
    rotate_manager_token: bool,
}

async fn update_swarm(
    State(state): State<Arc<NodeState>>,
    Query(query): Query<SwarmUpdateQuery>,
    Json(spec): Json<docker::SwarmSpec>,
) -> Answer<StatusCode> {
    let manager = manager(&state).await?;
    let cluster = manager
        .read(|s| s.cluster().cloned())
        .await
        .map_err(ManagerError::from)?;
    let new_spec = docker_view::swarm_spec_from_docker(&spec, cluster.spec.clone())
        .map_err(SwarmError::InvalidRequest)?;
    let new_token = || -> Answer<String> {
        let root = RootCa::from_pem(&cluster.root_ca.cert_pem, &cluster.root_ca.key_pem)?;
        Ok(JoinToken::generate(&root)?.to_string())
    };
    let command = Command::UpdateCluster {
        expected_version: query.version,
        spec: new_spec,
        rotate_worker_token: query.rotate_worker_token.then(new_token).transpose()?,
        rotate_manager_token: query.rotate_manager_token.then(new_token).transpose()?,
    };
    manager.propose(command).await?;
    Ok(StatusCode::OK)
}

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

/// Whether `labels` match a `label` filter value: `key` (present) or
/// `key=value`.
pub fn label_matches(labels: &BTreeMap<String, String>, wanted: &str) -> bool {
    match wanted.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(wanted),
    }
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

    #[test]
    fn rejections_read_as_docker_prints_them() {
        for (rejected, expected) in [
            (
                Rejected::ServiceExists { name: "web".into() },
                "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service web exists",
            ),
            (
                Rejected::PortInUse {
                    port: 8080,
                    service_name: "web".into(),
                    service_id: "s1".into(),
                    host_mode: false,
                },
                "rpc error: code = InvalidArgument desc = port '8080' is already in use by service 'web' (s1) as an ingress port",
            ),
            (
                Rejected::IngressPortWithDnsrr,
                "rpc error: code = InvalidArgument desc = EndpointSpec: port published with ingress mode can't be used with dnsrr mode",
            ),
            (
                Rejected::DuplicatePublishedPort {
                    port: 8080,
                    protocol: "tcp".into(),
                },
                "rpc error: code = InvalidArgument desc = EndpointSpec: duplicate published ports provided",
            ),
            (
                Rejected::IngressAttachment {
                    network: "ingress".into(),
                },
                "rpc error: code = InvalidArgument desc = Service cannot be explicitly attached to the ingress network \"ingress\"",
            ),
            (
                Rejected::IngressExists { id: "n1".into() },
                "rpc error: code = FailedPrecondition desc = ingress network (n1) is already present",
            ),
            (
                Rejected::IngressInUse {
                    service_id: "s1".into(),
                },
                "rpc error: code = FailedPrecondition desc = ingress network cannot be removed because service s1 depends on it",
            ),
            (
                Rejected::NoIngress,
                "rpc error: code = FailedPrecondition desc = service needs ingress network, but no ingress network is present",
            ),
            (
                Rejected::ClusterExists { id: "c1".into() },
                "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.",
            ),
            (Rejected::NoCluster, "This node is not part of a swarm"),
            (
                Rejected::NodeNotFound { id: "x".into() },
                "node x not found",
            ),
        ] {
            assert_eq!(rejected_message(&rejected), expected);
        }
    }
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
