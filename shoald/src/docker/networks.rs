//! The Docker Engine API's networks: `/networks` (create, list with
//! filters, inspect, delete) for swarm-scoped overlay networks, answered by
//! this node's manager role like the rest of the swarm API.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{get, post},
};
use shoal_api::{docker, id::ObjectId, network::NetworkSpec};
use shoal_manager::{docker_view, runtime::ManagerError, state::Command};

use crate::{
    errors::Answer,
    node_state::{NodeState, manager, synced_manager},
    query::{FiltersQuery, accept_filters, label_matches, parse_filters},
    swarm::SwarmError,
};

/// Routes of this module.
pub fn routes() -> Router<Arc<NodeState>> {
    Router::new()
        .route("/networks", get(list_networks))
        .route("/networks/create", post(create_network))
        .route(
            "/networks/{id}",
            get(inspect_network).delete(remove_network),
        )
}

async fn create_network(
    State(state): State<Arc<NodeState>>,
    body: axum::body::Bytes,
) -> Answer<(StatusCode, Json<docker::NetworkCreateResponse>)> {
    let spec: NetworkSpec = serde_json::from_slice(&body)
        .map_err(|e| SwarmError::InvalidRequest(format!("invalid network spec: {e}")))?;
    let manager = manager(&state).await?;
    let id = ObjectId::generate().to_string();
    manager
        .propose(Command::CreateNetwork {
            id: id.clone(),
            spec,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(docker::NetworkCreateResponse {
            id,
            warning: String::new(),
        }),
    ))
}

async fn list_networks(
    State(state): State<Arc<NodeState>>,
    Query(query): Query<FiltersQuery>,
) -> Answer<Json<Vec<docker::Network>>> {
    let filters = parse_filters(query.filters.as_deref())?;
    accept_filters(
        &filters,
        &["id", "name", "driver", "scope", "label", "type"],
    )?;
    let manager = synced_manager(&state).await?;
    let networks = manager
        .read(|s| {
            s.networks
                .values()
                .filter(|network| {
                    filters.iter().all(|(key, values)| match key.as_str() {
                        "id" => values.iter().any(|v| network.id.starts_with(v.as_str())),
                        "name" => values
                            .iter()
                            .any(|v| network.spec.name.contains(v.as_str())),
                        "driver" => values.contains(&network.spec.driver),
                        "scope" => values.iter().any(|v| v == "swarm"),
                        "type" => values.iter().any(|v| v == "custom"),
                        _ => values
                            .iter()
                            .all(|v| label_matches(&network.spec.labels, v)),
                    })
                })
                .map(docker_view::network)
                .collect()
        })
        .await;
    Ok(Json(networks))
}

async fn inspect_network(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
) -> Answer<Json<docker::Network>> {
    let manager = synced_manager(&state).await?;
    let network = manager
        .read(|s| s.network(&id).map(docker_view::network))
        .await
        .map_err(ManagerError::from)?;
    Ok(Json(network))
}

async fn remove_network(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
) -> Answer<StatusCode> {
    let manager = manager(&state).await?;
    let id = manager
        .read(|s| s.network(&id).map(|n| n.id.clone()))
        .await
        .map_err(ManagerError::from)?;
    manager.propose(Command::RemoveNetwork { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
