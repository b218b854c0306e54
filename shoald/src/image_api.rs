//! The node's images over the API: `docker import` and `docker images`
//! (`POST /images/create?fromSrc=-`, `GET /images/json`), and shoal's own
//! `POST /shoal/v1/images/load`, which copies in an OCI image layout sent as
//! a tar archive (`shoal image import DIR NAME:TAG`).

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use shoal_agent::images::{ImageError, ImageRuntimeConfig, ImageSummary};
use shoal_api::paths::IMAGE_LOAD_LAYOUT;
use shoal_manager::docker_view;

use crate::{api::NodeState, docker_api::error};

/// Routes of this module.
pub fn routes() -> Router<Arc<NodeState>> {
    Router::new()
        .route(
            "/images/create",
            post(create_image).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .route("/images/json", get(list_images))
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

/// `POST /images/create?fromSrc=-&repo=…&tag=…&changes=…`: `docker import`.
/// Answers Docker's progress stream, one JSON line with the image ID.
async fn create_image(
    State(state): State<Arc<NodeState>>,
    Query(pairs): Query<Vec<(String, String)>>,
    body: axum::body::Bytes,
) -> Response {
    let query = CreateImageQuery::from_pairs(pairs);
    if query.from_image.is_some() {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "pulling images from a registry is not supported yet: import a tarball",
        );
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
                    serde_json::json!({
                        "Id": image.id,
                        "ParentId": "",
                        "RepoTags": [image.reference],
                        "RepoDigests": [],
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
