//! The Docker Engine API shoald serves, one module per resource: the swarm
//! (`/swarm…`, `/info`, `/version`), nodes, services and tasks, networks,
//! and the node's images. Swarm requests are answered by this node's
//! manager role (images are the node's own); a worker or a node outside any
//! swarm answers with Docker's own errors, so the docker CLI prints what an
//! operator expects.

mod images;
mod networks;
mod nodes;
mod services;
mod swarm;

use std::sync::Arc;

use axum::Router;

use crate::node_state::NodeState;

/// Every route of the Docker Engine API shoald serves.
pub fn routes() -> Router<Arc<NodeState>> {
    Router::new()
        .merge(swarm::routes())
        .merge(nodes::routes())
        .merge(services::routes())
        .merge(networks::routes())
        .merge(images::routes())
}
