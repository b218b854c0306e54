//! The Docker Engine API's services and tasks: `/services` (create, list
//! with status, inspect, update, delete) and `/tasks` (list with filters,
//! inspect), with Docker's `ServiceSpec` and `Task` JSON, answered by this
//! node's manager role like the rest of the swarm API.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use shoal_api::{id::ObjectId, service::ServiceSpec};
use shoal_manager::{
    docker_view,
    runtime::ManagerError,
    state::{ClusterState, Command, Task},
};

use crate::{
    api::NodeState,
    docker_api::{Answer, FiltersQuery, manager, parse_filters, synced_manager},
    swarm::SwarmError,
};

/// Routes of this module.
pub fn routes() -> Router<Arc<NodeState>> {
    Router::new()
        .route("/services", get(list_services))
        .route("/services/create", post(create_service))
        .route(
            "/services/{id}",
            get(inspect_service).delete(remove_service),
        )
        .route("/services/{id}/update", post(update_service))
        .route("/tasks", get(list_tasks))
        .route("/tasks/{id}", get(inspect_task))
}

/// Parses a request body as a `ServiceSpec`, with Docker's wording.
fn parse_spec(body: &[u8]) -> Answer<ServiceSpec> {
    serde_json::from_slice(body)
        .map_err(|e| SwarmError::InvalidRequest(format!("invalid service spec: {e}")))
}

/// Refuses an image the node cannot run from anywhere: a reference without
/// a registry host that this node's store does not hold.
fn check_image(state: &NodeState, spec: &ServiceSpec) -> Answer<()> {
    let image = &spec.task_template.container_spec.image;
    let first = image.split('/').next().unwrap_or_default();
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_registry || image.is_empty() {
        return Ok(());
    }
    match state.images().contains(image) {
        Ok(true) => Ok(()),
        Ok(false) => Err(SwarmError::InvalidRequest(format!(
            "image {image} not found: import it on the nodes (shoal image import) or use a registry reference (host[:port]/name:tag)"
        ))),
        Err(error) => Err(SwarmError::InvalidRequest(error.to_string())),
    }
}

async fn create_service(
    State(state): State<Arc<NodeState>>,
    body: axum::body::Bytes,
) -> Answer<(StatusCode, Json<Value>)> {
    let spec = parse_spec(&body)?;
    check_image(&state, &spec)?;
    let manager = manager(&state).await?;
    let id = ObjectId::generate().to_string();
    manager
        .propose(Command::CreateService {
            id: id.clone(),
            spec,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"ID": id, "Warnings": []}))))
}

#[derive(Debug, Deserialize)]
struct ListServicesQuery {
    filters: Option<String>,
    #[serde(default)]
    status: bool,
}

async fn list_services(
    State(state): State<Arc<NodeState>>,
    Query(query): Query<ListServicesQuery>,
) -> Answer<Json<Vec<Value>>> {
    let filters = parse_filters(query.filters.as_deref())?;
    for key in filters.keys() {
        if !["id", "name", "label", "mode"].contains(&key.as_str()) {
            return Err(SwarmError::InvalidRequest(format!(
                "invalid filter '{key}'"
            )));
        }
    }
    let manager = synced_manager(&state).await?;
    let services = manager
        .read(|s| {
            s.services
                .values()
                .filter(|service| {
                    filters.iter().all(|(key, values)| match key.as_str() {
                        "id" => values.iter().any(|v| service.id.starts_with(v.as_str())),
                        "name" => values
                            .iter()
                            .any(|v| service.spec.name.starts_with(v.as_str())),
                        "mode" => values.iter().any(|v| v == service.spec.mode.name()),
                        _ => values
                            .iter()
                            .all(|v| label_matches(&service.spec.labels, v)),
                    })
                })
                .map(|service| docker_view::service(s, service, query.status))
                .collect()
        })
        .await;
    Ok(Json(services))
}

fn label_matches(labels: &BTreeMap<String, String>, wanted: &str) -> bool {
    match wanted.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(wanted),
    }
}

async fn inspect_service(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
) -> Answer<Json<Value>> {
    let manager = synced_manager(&state).await?;
    let service = manager
        .read(|s| {
            s.service(&id)
                .map(|service| docker_view::service(s, service, false))
        })
        .await
        .map_err(ManagerError::from)?;
    Ok(Json(service))
}

#[derive(Debug, Deserialize)]
struct UpdateQuery {
    version: u64,
}

async fn update_service(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
    Query(query): Query<UpdateQuery>,
    body: axum::body::Bytes,
) -> Answer<Json<Value>> {
    let spec = parse_spec(&body)?;
    check_image(&state, &spec)?;
    let manager = manager(&state).await?;
    let id = manager
        .read(|s| s.service(&id).map(|service| service.id.clone()))
        .await
        .map_err(ManagerError::from)?;
    manager
        .propose(Command::UpdateService {
            id,
            expected_version: query.version,
            spec,
        })
        .await?;
    Ok(Json(json!({"Warnings": []})))
}

async fn remove_service(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
) -> Answer<StatusCode> {
    let manager = manager(&state).await?;
    let id = manager
        .read(|s| s.service(&id).map(|service| service.id.clone()))
        .await
        .map_err(ManagerError::from)?;
    manager.propose(Command::RemoveService { id }).await?;
    Ok(StatusCode::OK)
}

/// Whether `task` passes Docker's task filters (`id`, `name`, `service`,
/// `node`, `desired-state`, `label`, and the CLI's `_up-to-date`).
fn task_matches(
    state: &ClusterState,
    task: &Task,
    filters: &BTreeMap<String, Vec<String>>,
) -> bool {
    let service = state.services.get(&task.service_id);
    filters.iter().all(|(key, values)| match key.as_str() {
        "id" => values.iter().any(|v| task.id.starts_with(v.as_str())),
        "name" => {
            let name = service.map(|s| {
                if task.slot > 0 {
                    format!("{}.{}", s.spec.name, task.slot)
                } else {
                    format!("{}.{}", s.spec.name, task.node_id)
                }
            });
            values
                .iter()
                .any(|v| name.as_ref().is_some_and(|n| n.starts_with(v.as_str())))
        }
        "service" => values.iter().any(|v| {
            task.service_id == *v
                || service.is_some_and(|s| s.spec.name == *v || s.id.starts_with(v.as_str()))
        }),
        "node" => values.iter().any(|v| {
            task.node_id == *v
                || state
                    .nodes
                    .get(&task.node_id)
                    .is_some_and(|n| n.description.hostname == *v || n.id.starts_with(v.as_str()))
        }),
        "desired-state" => values.iter().any(|v| {
            v.parse::<shoal_api::service::TaskState>()
                .is_ok_and(|s| s == task.desired_state)
        }),
        "label" => values
            .iter()
            .all(|v| label_matches(&task.spec.container_spec.labels, v)),
        "_up-to-date" => service.is_some_and(|s| s.spec.task_template == task.spec),
        _ => false,
    })
}

async fn list_tasks(
    State(state): State<Arc<NodeState>>,
    Query(query): Query<FiltersQuery>,
) -> Answer<Json<Vec<Value>>> {
    let filters = parse_filters(query.filters.as_deref())?;
    for key in filters.keys() {
        let known = [
            "id",
            "name",
            "service",
            "node",
            "desired-state",
            "label",
            "_up-to-date",
        ];
        if !known.contains(&key.as_str()) {
            return Err(SwarmError::InvalidRequest(format!(
                "invalid filter '{key}'"
            )));
        }
    }
    let manager = synced_manager(&state).await?;
    let tasks = manager
        .read(|s| {
            s.tasks
                .values()
                .filter(|t| task_matches(s, t, &filters))
                .map(docker_view::task)
                .collect()
        })
        .await;
    Ok(Json(tasks))
}

async fn inspect_task(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
) -> Answer<Json<Value>> {
    let manager = synced_manager(&state).await?;
    manager
        .read(|s| s.tasks.get(&id).map(docker_view::task))
        .await
        .map(Json)
        .ok_or_else(|| {
            SwarmError::Manager(ManagerError::Rejected(
                shoal_manager::state::Rejected::TaskNotFound { id },
            ))
        })
}
