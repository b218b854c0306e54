//! The node's HTTP API on its unix socket: the Docker Engine API (`/_ping`
//! for version negotiation, and the swarm subset in [`crate::docker`]),
//! with or without the `/v1.NN` prefix the docker CLI puts in front, and
//! shoal's own `/shoal/v1/status`. Errors use Docker's body,
//! `{"message": "..."}`.

use std::{io, os::unix::fs::PermissionsExt, path::Path, sync::Arc};

use crate::{errors::error, node_state::NodeState};
use anyhow::{Context, Result, bail};
use axum::{
    Json, Router,
    extract::Request,
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use shoal_api::{
    paths::{DOCKER_API_VERSION, NODE_STATUS, PING},
    status::NodeStatus,
};
use tokio::net::UnixListener;

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
    let Some(dataplane) = state.agent().dataplane_status() else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shoald is shutting down");
    };
    let node = state.agent().config();
    match dataplane {
        Ok(dataplane) => Json(NodeStatus {
            node_id: node.node_id.clone(),
            hostname: node.hostname.clone(),
            advertise_addr: node.advertise_addr.to_string(),
            underlay_iface: node.underlay_iface.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            dataplane,
            mesh: state.agent().mesh().status(),
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
        .merge(crate::docker::routes())
        .fallback(not_found)
        .with_state(state);
    let app = tower::ServiceBuilder::new()
        .map_request(strip_api_version)
        .service(router);
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Removes the `/v1.NN` prefix docker clients put in front of every path.
fn strip_api_version(mut request: Request) -> Request {
    let uri = request.uri();
    let Some((version, rest)) = uri
        .path()
        .strip_prefix("/v")
        .and_then(|p| p.split_once('/'))
    else {
        return request;
    };
    if version.is_empty() || !version.split('.').all(|part| part.parse::<u32>().is_ok()) {
        return request;
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("/{rest}?{query}"),
        None => format!("/{rest}"),
    };
    if let Ok(stripped) = path_and_query.parse() {
        *request.uri_mut() = stripped;
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_docker_api_versions_only() {
        let strip = |uri: &str| {
            let request = Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .expect("request");
            strip_api_version(request).uri().to_string()
        };
        assert_eq!(
            strip("/v1.41/nodes?filters=%7B%7D"),
            "/nodes?filters=%7B%7D"
        );
        assert_eq!(strip("/v1.50/swarm/init"), "/swarm/init");
        assert_eq!(strip("/nodes"), "/nodes");
        assert_eq!(strip("/volumes/x"), "/volumes/x");
    }
}
