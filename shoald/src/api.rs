//! The node's HTTP API on its unix socket: the Docker Engine API's `/_ping`
//! (so the docker CLI can negotiate a version) and shoal's own
//! `/shoal/v1/status`. Errors use Docker's body, `{"message": "..."}`.

use std::{
    io,
    os::unix::fs::PermissionsExt,
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};

use anyhow::{Context, Result, bail};
use axum::{
    Json, Router,
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use shoal_agent::dataplane::Dataplane;
use shoal_api::{
    paths::{DOCKER_API_VERSION, NODE_STATUS, PING},
    status::NodeStatus,
};
use tokio::net::UnixListener;

/// Static facts about this node.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node_id: String,
    pub hostname: String,
    pub advertise_addr: String,
    pub underlay_iface: String,
}

/// What the handlers share.
#[derive(Debug)]
pub struct NodeState {
    info: NodeInfo,
    dataplane: Mutex<Option<Dataplane>>,
}

impl NodeState {
    pub fn new(info: NodeInfo, dataplane: Dataplane) -> Self {
        Self {
            info,
            dataplane: Mutex::new(Some(dataplane)),
        }
    }

    /// Takes the data plane out for shutdown; handlers then answer 503.
    pub fn take_dataplane(&self) -> Option<Dataplane> {
        self.dataplane
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Docker's error body.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({ "message": message.into() })),
    )
        .into_response()
}

async fn ping() -> impl IntoResponse {
    (
        [
            (
                HeaderName::from_static("api-version"),
                HeaderValue::from_static(DOCKER_API_VERSION),
            ),
            (
                HeaderName::from_static("ostype"),
                HeaderValue::from_static("linux"),
            ),
            (
                HeaderName::from_static("docker-experimental"),
                HeaderValue::from_static("false"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, no-store, must-revalidate"),
            ),
        ],
        "OK",
    )
}

async fn status(state: axum::extract::State<Arc<NodeState>>) -> Response {
    let guard = state
        .dataplane
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let Some(dataplane) = guard.as_ref() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shoald is shutting down");
    };
    match dataplane.status() {
        Ok(dataplane) => Json(NodeStatus {
            node_id: state.info.node_id.clone(),
            hostname: state.info.hostname.clone(),
            advertise_addr: state.info.advertise_addr.clone(),
            underlay_iface: state.info.underlay_iface.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            dataplane,
        })
        .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the data plane: {e}"),
        ),
    }
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("page not found: {}", uri.path()),
    )
}

/// Binds the socket: refuses when another shoald answers on it, replaces a
/// stale socket file left by a crash. Mode 0660 like docker.sock.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("another shoald is already serving {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting permissions on {}", path.display()))?;
    Ok(listener)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: UnixListener,
    state: Arc<NodeState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let router = Router::new()
        .route(PING, get(ping).head(ping))
        .route(NODE_STATUS, get(status))
        .fallback(not_found)
        .with_state(state);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
