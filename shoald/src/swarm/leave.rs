//! `docker swarm leave`: the checks that keep a manager from breaking the
//! quorum without `--force`, giving up its Raft seat, and forgetting the
//! swarm.

use std::time::Duration;

use shoal_manager::{
    runtime::{Manager, ManagerError},
    state::{self, Command, NodeRole},
};
use tracing::{info, warn};

use super::{Swarm, SwarmError, stop};

impl Swarm {
    /// `docker swarm leave`. A manager needs `force` (as in Docker, leaving
    /// managers risk the quorum); the node forgets the swarm either way.
    pub async fn leave(&self, force: bool) -> Result<(), SwarmError> {
        let mut active = self.active.lock().await;
        let Some(current) = active.as_ref() else {
            return Err(SwarmError::NotInSwarm);
        };
        if let Some(manager) = &current.manager {
            self.leave_raft(manager, force).await?;
        }
        if let Some(current) = active.take() {
            stop(current).await;
        }
        self.facts.agent.remove_all_tasks().await;
        self.forget();
        info!("left the swarm");
        Ok(())
    }

    /// Refuses, as Docker does without `--force`, to remove the last manager
    /// or one whose departure loses quorum; otherwise gives up this node's
    /// Raft seat (it demotes itself and waits until the leader has removed
    /// it) so the remaining managers keep a majority of a smaller group.
    async fn leave_raft(&self, manager: &Manager, force: bool) -> Result<(), SwarmError> {
        let me = self.facts.node_id.clone();
        let (total, reachable, node) = manager
            .read(|s| {
                let members: Vec<_> = s.raft_members().collect();
                let reachable = members
                    .iter()
                    .filter(|n| {
                        n.id == me
                            || n.manager
                                .as_ref()
                                .is_some_and(|m| m.reachability == state::Reachability::Reachable)
                    })
                    .count();
                (members.len(), reachable, s.nodes.get(&me).cloned())
            })
            .await;
        if force {
            return Ok(());
        }
        if total <= 1 {
            return Err(SwarmError::LeaveRefused(
                "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.".into(),
            ));
        }
        let unreachable = total - reachable;
        if reachable - 1 <= unreachable {
            return Err(SwarmError::LeaveRefused(format!(
                "You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves {} managers out of {total}. Without a Raft quorum your swarm will be inaccessible. The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message.",
                total - 1
            )));
        }
        let Some(mut node) = node else { return Ok(()) };
        // Demote ourselves. This manager may be a follower whose copy of the
        // node lags a system update (status, reachability): retry on a stale
        // version with the fresh copy.
        for attempt in 0..20 {
            let mut spec = node.spec.clone();
            spec.role = NodeRole::Worker;
            let update = Command::UpdateNodeSpec {
                id: node.id.clone(),
                expected_version: node.version,
                spec,
            };
            match manager.propose(update).await {
                Err(ManagerError::Rejected(state::Rejected::StaleVersion { .. }))
                    if attempt < 19 =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    match manager.read(|s| s.nodes.get(&node.id).cloned()).await {
                        Some(fresh) => node = fresh,
                        None => return Ok(()),
                    }
                }
                result => {
                    result?;
                    break;
                }
            }
        }
        for _ in 0..100 {
            if manager
                .read(|s| s.nodes.get(&node.id).is_none_or(|n| n.manager.is_none()))
                .await
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        warn!("the leader did not remove this manager from Raft in time; leaving anyway");
        Ok(())
    }
}
