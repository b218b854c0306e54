//! Node liveness, on the leader: the agents' heartbeats mark their node
//! Ready and record what it offers; a node silent for three heartbeat
//! periods is marked Down.

use std::time::{Duration, Instant};

use tracing::info;

use super::{Manager, ManagerError};
use crate::state::{Command, NodeResources, NodeState, Rejected};

impl Manager {
    /// On the leader: records a heartbeat; marks the node Ready if it was
    /// not, and records the resources it offers when they changed.
    pub(super) async fn heartbeat(
        &self,
        node_id: &str,
        addr: &str,
        resources: NodeResources,
    ) -> Result<(), ManagerError> {
        self.inner
            .last_seen
            .lock()
            .await
            .insert(node_id.to_owned(), Instant::now());
        let node = self
            .read(|s| s.nodes.get(node_id).cloned())
            .await
            .ok_or_else(|| Rejected::NodeNotFound {
                id: node_id.to_owned(),
            })?;
        if node.status.state != NodeState::Ready || node.status.addr != addr {
            self.propose(Command::SetNodeStatus {
                id: node_id.to_owned(),
                state: NodeState::Ready,
                message: String::new(),
                addr: Some(addr.to_owned()),
            })
            .await?;
        }
        if node.description.resources != resources {
            let description = node.description;
            self.propose(Command::UpdateNodeDescription {
                id: node_id.to_owned(),
                hostname: description.hostname,
                platform: description.platform,
                engine_version: description.engine_version,
                tls: description.tls,
                resources,
            })
            .await?;
        }
        Ok(())
    }

    /// The agents' heartbeat period.
    pub async fn heartbeat_period(&self) -> Duration {
        self.read(|s| {
            s.cluster.as_ref().map_or(Duration::from_secs(5), |c| {
                Duration::from_millis(c.spec.dispatcher.heartbeat_period_ms)
            })
        })
        .await
    }
}

/// A node is Down after three heartbeat periods of silence (counting from
/// when this manager became leader, for nodes it has not heard yet).
pub(super) async fn mark_down_nodes(
    manager: &Manager,
    leading_since: Instant,
) -> Result<(), ManagerError> {
    let grace = manager.heartbeat_period().await * 3;
    let ready: Vec<String> = manager
        .read(|s| {
            s.nodes
                .values()
                .filter(|n| n.status.state == NodeState::Ready)
                .map(|n| n.id.clone())
                .collect()
        })
        .await;
    let last_seen = manager.inner.last_seen.lock().await.clone();
    for id in ready {
        if id == manager.inner.config.node_id {
            continue;
        }
        let seen = last_seen
            .get(&id)
            .copied()
            .unwrap_or(leading_since)
            .max(leading_since);
        if seen.elapsed() > grace {
            info!(node = %id, "heartbeat failure: node down");
            manager
                .propose(Command::SetNodeStatus {
                    id,
                    state: NodeState::Down,
                    message: "heartbeat failure".into(),
                    addr: None,
                })
                .await?;
        }
    }
    Ok(())
}
