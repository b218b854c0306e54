//! The node's images over the API: `docker import`, `docker pull` and
//! `docker images` (`POST /images/create?fromSrc=-`,
//! `POST /images/create?fromImage=…`, `GET /images/json`), `docker image
//! inspect` (`GET /images/{name}/json`), and shoal's own
//! `POST /shoal/v1/images/load`, which copies in an OCI image layout sent as
//! a tar archive (`shoal image import DIR NAME:TAG`).

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use shoal_agent::{
    images::{ImageDetails, ImageError, ImageRuntimeConfig, ImageSummary, Reference},
    registry::{self, PullEvent},
};
use shoal_api::{docker, paths::IMAGE_LOAD_LAYOUT};
use shoal_manager::docker_view;
use tokio_stream::StreamExt as _;

use crate::{errors::error, node_state::NodeState};

/// Routes of this module.
pub fn routes() -> Router<Arc<NodeState>> {
    Router::new()
        .route(
            "/images/create",
            post(create_image).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .route("/images/json", get(list_images))
        // A name may hold slashes (`registry:5000/app:tag`): the rest of the
        // path is the name and `/json`.
        .route("/images/{*name_json}", get(inspect_image))
        .route(
            IMAGE_LOAD_LAYOUT,
            post(load_layout).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
}

/// The largest root filesystem tarball `docker import` may send (held in
/// memory while it is hashed and stored).
const MAX_IMPORT_BYTES: usize = 1 << 30;

/// The query of `POST /images/create`; `changes` may repeat, so it is read
/// from the raw pairs.
#[derive(Debug, Default)]
struct CreateImageQuery {
    /// `-`: the request body is the tarball (`docker import`).
    from_src: Option<String>,
    /// Pull from a registry (`docker pull`).
    from_image: Option<String>,
    repo: String,
    tag: String,
    /// Dockerfile instructions for the image config (`docker import -c`).
    changes: Vec<String>,
}

impl CreateImageQuery {
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut query = Self::default();
        for (key, value) in pairs {
            match key.as_str() {
                "fromSrc" => query.from_src = Some(value),
                "fromImage" => query.from_image = Some(value),
                "repo" => query.repo = value,
                "tag" => query.tag = value,
                "changes" => query.changes.push(value),
                _ => {}
            }
        }
        query
    }
}

/// `POST /images/create?fromSrc=-&repo=…&tag=…&changes=…`: `docker import`;
/// `POST /images/create?fromImage=…&tag=…`: `docker pull`. Answers
/// Docker's progress stream of JSON lines.
async fn create_image(
    State(state): State<Arc<NodeState>>,
    Query(pairs): Query<Vec<(String, String)>>,
    body: axum::body::Bytes,
) -> Response {
    let query = CreateImageQuery::from_pairs(pairs);
    if let Some(image) = query.from_image {
        return pull(state, &image, &query.tag);
    }
    if query.from_src.as_deref() != Some("-") {
        return error(
            StatusCode::BAD_REQUEST,
            "only importing from the request body (fromSrc=-) is supported",
        );
    }
    let reference = if query.tag.is_empty() {
        query.repo
    } else {
        format!("{}:{}", query.repo, query.tag)
    };
    let runtime = match ImageRuntimeConfig::from_changes(&query.changes) {
        Ok(runtime) => runtime,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let store = state.images().clone();
    let created = now();
    imported(
        tokio::task::spawn_blocking(move || {
            store.import_with(&mut body.as_ref(), &reference, &created, &runtime)
        })
        .await,
    )
}

/// `fromImage` and `tag` as the docker CLI sends them (a digest comes as
/// the tag) joined into one reference.
fn pull_reference(image: &str, tag: &str) -> String {
    if tag.is_empty() {
        image.to_owned()
    } else if tag.starts_with("sha256:") {
        format!("{image}@{tag}")
    } else {
        format!("{image}:{tag}")
    }
}

/// One line of Docker's progress stream.
fn progress_line(value: &serde_json::Value) -> String {
    format!("{value}\n")
}

/// The short ID Docker shows for a layer (12 hex digits of its digest).
fn short_id(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

/// `docker pull`: pulls in a task and streams Docker's progress lines: one
/// per blob, the manifest digest and a final status, or
/// `{"errorDetail":…,"error":…}` when the pull fails (as dockerd does once
/// the stream has begun). An invalid reference is refused with 400 at once.
fn pull(state: Arc<NodeState>, image: &str, tag: &str) -> Response {
    let reference = match Reference::parse(&pull_reference(image, tag)) {
        Ok(reference) => reference,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let (lines, receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    let wanted = reference.digest.clone().unwrap_or(reference.tag.clone());
    let _ = lines.send(progress_line(&serde_json::json!({
        "status": format!("Pulling from {}", reference.path),
        "id": wanted,
    })));
    tokio::spawn(async move {
        let store = state.images().clone();
        let insecure = state.agent().config().insecure_registries.clone();
        let resolved = std::sync::Mutex::new((String::new(), false));
        let progress = |event: PullEvent| {
            let line = match event {
                PullEvent::Manifest { digest, up_to_date } => {
                    *resolved
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = (digest, up_to_date);
                    return;
                }
                PullEvent::BlobExists { digest } => serde_json::json!({
                    "status": "Already exists", "progressDetail": {}, "id": short_id(&digest),
                }),
                PullEvent::BlobDownloaded { digest, size } => serde_json::json!({
                    "status": "Pull complete",
                    "progressDetail": { "current": size, "total": size },
                    "id": short_id(&digest),
                }),
            };
            let _ = lines.send(progress_line(&line));
        };
        let name = reference.to_string();
        let last = match registry::pull_with_progress(&store, &name, &insecure, &progress).await {
            Ok(image) => {
                let (digest, up_to_date) = resolved
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let _ = lines.send(progress_line(
                    &serde_json::json!({ "status": format!("Digest: {digest}") }),
                ));
                let status = if up_to_date {
                    format!("Status: Image is up to date for {}", image.reference)
                } else {
                    format!("Status: Downloaded newer image for {}", image.reference)
                };
                serde_json::json!({ "status": status })
            }
            Err(e) => {
                tracing::warn!(reference = %name, error = %e, "pull failed");
                serde_json::json!({ "errorDetail": { "message": e.to_string() }, "error": e.to_string() })
            }
        };
        let _ = lines.send(progress_line(&last));
    });
    let stream = tokio_stream::wrappers::UnboundedReceiverStream::new(receiver)
        .map(Ok::<_, std::convert::Infallible>);
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct LoadQuery {
    /// `name[:tag]` of the image.
    reference: String,
}

/// `POST /shoal/v1/images/load?reference=NAME:TAG`: the body is a tar
/// archive of an OCI image layout; its image is copied into the store.
/// Answers like `docker import`.
async fn load_layout(
    State(state): State<Arc<NodeState>>,
    Query(query): Query<LoadQuery>,
    body: axum::body::Bytes,
) -> Response {
    let store = state.images().clone();
    let created = now();
    imported(
        tokio::task::spawn_blocking(move || {
            store.import_layout_archive(&mut body.as_ref(), &query.reference, &created)
        })
        .await,
    )
}

/// Now, as image creation times are recorded.
fn now() -> String {
    docker_view::rfc3339(shoal_manager::ca::now_unix_ms())
}

/// The answer to an import: Docker's progress stream of one JSON line with
/// the image ID, or the error (400 for bad input).
fn imported(result: Result<Result<ImageSummary, ImageError>, tokio::task::JoinError>) -> Response {
    match result {
        Ok(Ok(image)) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            format!("{}\n", serde_json::json!({ "status": image.id })),
        )
            .into_response(),
        Ok(Err(
            e @ (ImageError::InvalidReference { .. }
            | ImageError::NotATarball { .. }
            | ImageError::NotALayout { .. }
            | ImageError::Corrupt { .. }),
        )) => error(StatusCode::BAD_REQUEST, e.to_string()),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("import task: {e}"),
        ),
    }
}

/// `GET /images/json`: `docker images`.
async fn list_images(State(state): State<Arc<NodeState>>) -> Response {
    let store = state.images().clone();
    match tokio::task::spawn_blocking(move || store.list()).await {
        Ok(Ok(images)) => Json(
            images
                .into_iter()
                .map(|image| {
                    let created = time::OffsetDateTime::parse(
                        &image.created,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .map_or(0, time::OffsetDateTime::unix_timestamp);
                    // Pulled by digest: no tag, as Docker lists them.
                    let (tags, digests) = if image.reference.contains('@') {
                        (vec![], vec![image.reference])
                    } else {
                        (vec![image.reference], vec![])
                    };
                    serde_json::json!({
                        "Id": image.id,
                        "ParentId": "",
                        "RepoTags": tags,
                        "RepoDigests": digests,
                        "Created": created,
                        "Size": image.size,
                        "SharedSize": -1,
                        "Labels": {},
                        "Containers": -1,
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("list task: {e}")),
    }
}

/// `GET /images/{name}/json`: `docker image inspect NAME`, by reference
/// or image ID; 404 "No such image: NAME" as Docker answers.
async fn inspect_image(
    State(state): State<Arc<NodeState>>,
    Path(name_json): Path<String>,
) -> Response {
    let Some(name) = name_json.strip_suffix("/json").filter(|n| !n.is_empty()) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("page not found: /images/{name_json}"),
        );
    };
    let store = state.images().clone();
    let lookup = name.to_owned();
    match tokio::task::spawn_blocking(move || store.inspect(&lookup)).await {
        Ok(Ok(Some(details))) => Json(image_inspect(details)).into_response(),
        Ok(Ok(None)) => error(StatusCode::NOT_FOUND, format!("No such image: {name}")),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("inspect task: {e}"),
        ),
    }
}

/// Docker's `ImageInspect` of an image in the store.
fn image_inspect(details: ImageDetails) -> docker::ImageInspect {
    let ImageDetails {
        summary,
        references,
        config,
    } = details;
    // Pulled by digest: no tag, as Docker shows them.
    let (repo_digests, repo_tags) = references.into_iter().partition(|r| r.contains('@'));
    let runtime = config.config().clone().unwrap_or_default();
    let list = |items: &Option<Vec<String>>| items.clone().unwrap_or_default();
    docker::ImageInspect {
        id: summary.id,
        repo_tags,
        repo_digests,
        created: config.created().clone().unwrap_or(summary.created),
        author: config.author().clone().unwrap_or_default(),
        config: docker::ImageConfig {
            user: runtime.user().clone().unwrap_or_default(),
            env: list(runtime.env()),
            cmd: list(runtime.cmd()),
            entrypoint: list(runtime.entrypoint()),
            working_dir: runtime.working_dir().clone().unwrap_or_default(),
            labels: runtime
                .labels()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            stop_signal: runtime.stop_signal().clone().unwrap_or_default(),
        },
        architecture: config.architecture().to_string(),
        os: config.os().to_string(),
        size: summary.size,
        root_fs: docker::RootFs {
            kind: config.rootfs().typ().clone(),
            layers: config.rootfs().diff_ids().clone(),
        },
        ..docker::ImageInspect::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_references_join_like_the_docker_cli_sends_them() {
        let digest = format!("sha256:{}", "0f".repeat(32));
        assert_eq!(
            pull_reference("198.18.0.1:5000/whoami", "latest"),
            "198.18.0.1:5000/whoami:latest"
        );
        assert_eq!(
            pull_reference("198.18.0.1:5000/whoami", &digest),
            format!("198.18.0.1:5000/whoami@{digest}")
        );
        assert_eq!(pull_reference("r.example/a", ""), "r.example/a");
        assert_eq!(short_id(&digest), "0f0f0f0f0f0f");
    }
}
