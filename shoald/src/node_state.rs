//! What the API handlers share: the node's agent (and the facts it was
//! started with), its swarm membership, and the manager role for control
//! requests.

use std::sync::Arc;

use shoal_agent::{images::ImageStore, node::Agent};
use shoal_manager::runtime::Manager;

use crate::{errors::Answer, swarm::Swarm};

/// What the handlers share.
#[derive(Debug)]
pub struct NodeState {
    agent: Arc<Agent>,
    swarm: Arc<Swarm>,
}

impl NodeState {
    pub fn new(agent: Arc<Agent>, swarm: Arc<Swarm>) -> Self {
        Self { agent, swarm }
    }

    /// This node's image store.
    pub fn images(&self) -> &ImageStore {
        self.agent.images()
    }

    /// This node's agent.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// This node's swarm membership.
    pub fn swarm(&self) -> &Swarm {
        &self.swarm
    }
}

/// The manager role, for writes: every update carries the version it was
/// read at and the state machine refuses a stale one, so no read barrier.
pub async fn manager(state: &NodeState) -> Answer<Manager> {
    state.swarm().manager().await
}

/// The manager role caught up with every write acknowledged before the
/// request (`ReadIndex`), for reads: `inspect` then `update` through any
/// manager sees the current version, and a partitioned manager refuses to
/// answer rather than serve a stale view.
pub async fn synced_manager(state: &NodeState) -> Answer<Manager> {
    let manager = manager(state).await?;
    manager.sync_for_read().await?;
    Ok(manager)
}
