//! The Docker Engine API's services and tasks: `/services` (create, list
//! with status, inspect, update, delete, logs) and `/tasks` (list with
//! filters, inspect, logs), with Docker's `ServiceSpec` and `Task` JSON, answered by this
//! node's manager role like the rest of the swarm API.

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    routing::{get, post},
};
use serde::Deserialize;
use shoal_agent::images::Reference;
use shoal_api::{
    docker,
    grpc::proto::LogSubscription,
    id::ObjectId,
    service::{ServiceMode, ServiceSpec},
};
use shoal_manager::{
    docker_view,
    runtime::{Manager, ManagerError},
    state::{ClusterState, Command, Task},
};
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    errors::Answer,
    node_state::{NodeState, manager, synced_manager},
    query::{FiltersQuery, accept_filters, docker_bool, is_true, label_matches, parse_filters},
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
        .route("/services/{id}/logs", get(service_logs))
        .route("/tasks/{id}/logs", get(task_logs))
        .route("/tasks", get(list_tasks))
        .route("/tasks/{id}", get(inspect_task))
}

/// Parses a request body as a `ServiceSpec`, with Docker's wording; an
/// absent replica count becomes 1, as dockerd stores it.
fn parse_spec(body: &[u8]) -> Answer<ServiceSpec> {
    let mut spec: ServiceSpec = serde_json::from_slice(body)
        .map_err(|e| SwarmError::InvalidRequest(format!("invalid service spec: {e}")))?;
    if let ServiceMode::Replicated(replicated) = &mut spec.mode {
        replicated.replicas.get_or_insert(1);
    }
    Ok(spec)
}

/// Refuses an image the node cannot run from anywhere: a reference without
/// a registry host that this node's store does not hold.
fn check_image(state: &NodeState, spec: &ServiceSpec) -> Answer<()> {
    let image = &spec.task_template.container_spec.image;
    if image.is_empty() {
        return Ok(()); // the spec's validation names the field
    }
    let reference =
        Reference::parse(image).map_err(|e| SwarmError::InvalidRequest(e.to_string()))?;
    if reference.registry.is_some() {
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

/// Replaces the network names of `TaskTemplate.Networks` with their IDs, as
/// dockerd stores them.
async fn resolve_networks(manager: &Manager, spec: &mut ServiceSpec) -> Answer<()> {
    for attachment in &mut spec.task_template.networks {
        let target = attachment.target.clone();
        attachment.target = manager
            .read(|s| s.network(&target).map(|n| n.id.clone()))
            .await
            .map_err(ManagerError::from)?;
    }
    Ok(())
}

async fn create_service(
    State(state): State<Arc<NodeState>>,
    body: axum::body::Bytes,
) -> Answer<(StatusCode, Json<docker::ServiceCreateResponse>)> {
    let mut spec = parse_spec(&body)?;
    check_image(&state, &spec)?;
    let manager = manager(&state).await?;
    resolve_networks(&manager, &mut spec).await?;
    let id = ObjectId::generate().to_string();
    manager
        .propose(Command::CreateService {
            id: id.clone(),
            spec,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(docker::ServiceCreateResponse {
            id,
            warnings: Vec::new(),
        }),
    ))
}

#[derive(Debug, Deserialize)]
struct ListServicesQuery {
    filters: Option<String>,
    #[serde(default, deserialize_with = "docker_bool")]
    status: bool,
}

async fn list_services(
    State(state): State<Arc<NodeState>>,
    Query(query): Query<ListServicesQuery>,
) -> Answer<Json<Vec<docker::Service>>> {
    let filters = parse_filters(query.filters.as_deref())?;
    accept_filters(&filters, &["id", "name", "label", "mode"])?;
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

/// Docker's service document, plus `MeshCounters` (shoal's): what this
/// node's routing mesh counted for each of the service's published ports
/// (new flows, forwarded packets, drops by reason).
async fn inspect_service(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
) -> Answer<Json<docker::Service>> {
    let manager = synced_manager(&state).await?;
    let mut service = manager
        .read(|s| {
            s.service(&id)
                .map(|service| docker_view::service(s, service, false))
        })
        .await
        .map_err(ManagerError::from)?;
    service.mesh_counters = state
        .agent()
        .mesh()
        .status()
        .ports
        .into_iter()
        .filter(|port| port.service_id == service.id)
        .collect();
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
) -> Answer<Json<docker::ServiceUpdateResponse>> {
    let mut spec = parse_spec(&body)?;
    check_image(&state, &spec)?;
    let manager = manager(&state).await?;
    resolve_networks(&manager, &mut spec).await?;
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
    Ok(Json(docker::ServiceUpdateResponse::default()))
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
) -> Answer<Json<Vec<docker::Task>>> {
    let filters = parse_filters(query.filters.as_deref())?;
    accept_filters(
        &filters,
        &[
            "id",
            "name",
            "service",
            "node",
            "desired-state",
            "label",
            "_up-to-date",
        ],
    )?;
    let manager = synced_manager(&state).await?;
    let tasks = manager
        .read(|s| {
            s.tasks
                .values()
                .filter(|t| task_matches(s, t, &filters))
                .map(|t| docker_view::task(s, t))
                .collect()
        })
        .await;
    Ok(Json(tasks))
}

async fn inspect_task(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
) -> Answer<Json<docker::Task>> {
    let manager = synced_manager(&state).await?;
    manager
        .read(|s| s.tasks.get(&id).map(|t| docker_view::task(s, t)))
        .await
        .map(Json)
        .ok_or_else(|| {
            SwarmError::Manager(ManagerError::Rejected(
                shoal_manager::state::Rejected::TaskNotFound { id },
            ))
        })
}

/// `GET /services/{id}/logs` and `/tasks/{id}/logs` parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LogsQuery {
    stdout: Option<String>,
    stderr: Option<String>,
    follow: Option<String>,
    timestamps: Option<String>,
    details: Option<String>,
    tail: Option<String>,
}

impl LogsQuery {
    /// Lines per task from the end: `all` (or absent) is everything.
    fn tail(&self) -> Answer<i64> {
        match self.tail.as_deref() {
            None | Some("" | "all") => Ok(-1),
            Some(n) => n.parse::<u32>().map(i64::from).map_err(|_| {
                SwarmError::InvalidRequest(format!("invalid tail {n:?}: a number or \"all\""))
            }),
        }
    }
}

async fn service_logs(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Answer<axum::response::Response> {
    let manager = synced_manager(&state).await?;
    let task_ids = manager
        .read(|s| {
            s.service(&id)
                .map(|service| s.service_tasks(&service.id).map(|t| t.id.clone()).collect())
        })
        .await
        .map_err(ManagerError::from)?;
    logs_response(&state, task_ids, &query).await
}

async fn task_logs(
    State(state): State<Arc<NodeState>>,
    Path(id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Answer<axum::response::Response> {
    logs_response(&state, vec![id], &query).await
}

/// Streams the tasks' logs in Docker's multiplexed framing: per line an
/// 8-byte header (1 stdout, 2 stderr; big-endian length), then the
/// optional timestamp and details (`com.docker.swarm.node.id=…,…`, which
/// `docker service logs` turns into its `name.slot.id@node |` prefix).
async fn logs_response(
    state: &NodeState,
    task_ids: Vec<String>,
    query: &LogsQuery,
) -> Answer<axum::response::Response> {
    let (stdout, stderr) = (
        is_true(query.stdout.as_deref()),
        is_true(query.stderr.as_deref()),
    );
    if !stdout && !stderr {
        return Err(SwarmError::InvalidRequest(
            "Bad parameters: you must choose at least one stream".into(),
        ));
    }
    let (timestamps, details) = (
        is_true(query.timestamps.as_deref()),
        is_true(query.details.as_deref()),
    );
    let manager = synced_manager(state).await?;
    let owners: BTreeMap<String, (String, String)> = manager
        .read(|s| {
            task_ids
                .iter()
                .filter_map(|id| s.tasks.get(id))
                .map(|t| (t.id.clone(), (t.node_id.clone(), t.service_id.clone())))
                .collect()
        })
        .await;
    let mut messages = manager
        .task_logs(LogSubscription {
            id: String::new(),
            task_ids: owners.keys().cloned().collect(),
            follow: is_true(query.follow.as_deref()),
            tail: query.tail()?,
        })
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
    tokio::spawn(async move {
        while let Some(message) = messages.recv().await {
            if (message.stderr && !stderr) || (!message.stderr && !stdout) {
                continue;
            }
            let mut payload = Vec::new();
            if timestamps {
                payload.extend_from_slice(rfc3339_nanos(message.time_unix_ns).as_bytes());
                payload.push(b' ');
            }
            if details && let Some((node, service)) = owners.get(&message.task_id) {
                payload.extend_from_slice(
                    format!(
                        "com.docker.swarm.node.id={node},com.docker.swarm.service.id={service},com.docker.swarm.task.id={} ",
                        message.task_id
                    )
                    .as_bytes(),
                );
            }
            payload.extend_from_slice(&message.data);
            let mut frame = vec![if message.stderr { 2 } else { 1 }, 0, 0, 0];
            frame.extend_from_slice(
                &u32::try_from(payload.len())
                    .unwrap_or(u32::MAX)
                    .to_be_bytes(),
            );
            frame.extend_from_slice(&payload);
            if tx.send(Ok(frame)).await.is_err() {
                return;
            }
        }
    });
    axum::response::Response::builder()
        .header("Content-Type", "application/vnd.docker.multiplexed-stream")
        .body(axum::body::Body::from_stream(ReceiverStream::new(rx)))
        .map_err(|e| SwarmError::InvalidRequest(e.to_string()))
}

/// RFC 3339 with nanoseconds, as Docker prints log timestamps.
fn rfc3339_nanos(unix_ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ns))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
