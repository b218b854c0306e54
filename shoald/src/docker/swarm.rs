//! `/swarm…`, `/info` and `/version`: the swarm's life cycle (init, join,
//! leave, inspect, update) through this node's membership and manager role.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Query, State},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use serde::Deserialize;
use shoal_api::docker;
use shoal_manager::{
    ca::{JoinToken, RootCa},
    docker_view,
    runtime::ManagerError,
    state::Command,
};

use crate::{
    errors::{Answer, error},
    node_state::{NodeState, manager, synced_manager},
    query::{ForceQuery, docker_bool},
    swarm::SwarmError,
};

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
}

async fn info(State(state): State<Arc<NodeState>>) -> Json<serde_json::Value> {
    let swarm = state.swarm().info().await;
    let node = state.agent().config();
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
    #[serde(default, deserialize_with = "docker_bool")]
    rotate_worker_token: bool,
    #[serde(default, deserialize_with = "docker_bool")]
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
