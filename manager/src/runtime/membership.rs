//! Raft membership: a new manager asks the leader to make it a voter
//! ([`Manager::join_raft`]), the leader adds it (learner first, then
//! voter); and, on the leader, Raft membership and the managers'
//! reachability follow the nodes' desired roles (swarmkit's role manager).

use std::{collections::BTreeSet, time::Duration};

use openraft::ChangeMembers;
use shoal_api::grpc::proto::JoinRaftRequest;
use tracing::info;

use super::{Manager, ManagerError};
use crate::{
    raft::RaftPeer,
    state::{Command, ManagerInfo, NodeRole, NodeState, Reachability},
};

impl Manager {
    /// Asks the leader (trying `managers` in order) to make this manager a
    /// voter. Called once by a manager that has just joined.
    pub async fn join_raft(&self, managers: &[String]) -> Result<(), ManagerError> {
        let mut last = ManagerError::NoLeader;
        for _ in 0..50 {
            for addr in managers {
                let joined = async {
                    self.control_client(addr, Duration::from_secs(30))?
                        .join_raft(JoinRaftRequest {
                            addr: self.inner.config.advertise_addr.clone(),
                        })
                        .await
                        .map_err(|status| ManagerError::remote(addr, status))
                }
                .await;
                match joined {
                    Ok(_) => {
                        info!(leader = %addr, "joined the Raft group");
                        return Ok(());
                    }
                    Err(error) => last = error,
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last)
    }

    /// On the leader: adds the manager `node_id` (already registered with a
    /// Raft ID) as a learner, waits for it to catch up, then makes it a voter.
    pub(super) async fn add_voter(&self, node_id: &str, addr: &str) -> Result<u64, ManagerError> {
        let _guard = self.inner.membership_lock.lock().await;
        let mut info = self
            .read(|s| s.nodes.get(node_id).and_then(|n| n.manager.clone()))
            .await
            .ok_or_else(|| ManagerError::NotRegisteredManager {
                node_id: node_id.to_owned(),
            })?;
        let raft_id = info.raft_id;
        if info.addr != addr {
            // A promoted node serves where it says, not where the leader guessed.
            addr.clone_into(&mut info.addr);
            self.propose(Command::SetManagerInfo {
                id: node_id.to_owned(),
                manager: Some(info),
            })
            .await?;
        }
        let peer = RaftPeer {
            addr: addr.to_owned(),
            node_id: node_id.to_owned(),
        };
        self.inner.raft.add_learner(raft_id, peer, true).await?;
        self.inner
            .raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([raft_id])), false)
            .await?;
        info!(node_id, raft_id, "manager added to the Raft voters");
        Ok(raft_id)
    }
}

/// Makes Raft membership follow the nodes' desired roles (swarmkit's role
/// manager): a node promoted to manager gets a Raft ID (it then starts its
/// manager role and asks to become a voter); a demoted manager is removed
/// from the voters, then its manager record is cleared, which tells the node
/// to stop its manager role.
pub(super) async fn reconcile_roles(manager: &Manager) -> Result<(), ManagerError> {
    let (promoted, demoted, next_raft_id) = manager
        .read(|s| {
            let promoted: Vec<(String, String)> = s
                .nodes
                .values()
                .filter(|n| n.spec.role == NodeRole::Manager && n.manager.is_none())
                .map(|n| (n.id.clone(), n.status.addr.clone()))
                .collect();
            let demoted: Vec<(String, u64)> = s
                .nodes
                .values()
                .filter(|n| n.spec.role == NodeRole::Worker)
                .filter_map(|n| n.manager.as_ref().map(|m| (n.id.clone(), m.raft_id)))
                .collect();
            let next = s
                .raft_members()
                .filter_map(|n| n.manager.as_ref())
                .map(|m| m.raft_id)
                .max();
            (promoted, demoted, next.unwrap_or(0) + 1)
        })
        .await;
    let members: BTreeSet<u64> = {
        let metrics = manager.inner.raft.metrics().borrow().clone();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, _)| *id)
            .collect()
    };
    let first_free = next_raft_id.max(members.iter().max().map_or(1, |m| m + 1));
    for ((id, addr), raft_id) in promoted.into_iter().zip(first_free..) {
        info!(node = %id, raft_id, "promotion: assigning a Raft ID");
        let info = ManagerInfo {
            raft_id,
            addr: format!("{addr}:{}", shoal_api::grpc::MANAGER_PORT),
            reachability: Reachability::Unknown,
        };
        manager
            .propose(Command::SetManagerInfo {
                id,
                manager: Some(info),
            })
            .await?;
    }
    for (id, raft_id) in demoted {
        let _guard = manager.inner.membership_lock.lock().await;
        if members.contains(&raft_id) {
            info!(node = %id, raft_id, "demotion: removing the voter");
            manager
                .inner
                .raft
                .change_membership(
                    ChangeMembers::RemoveVoters(BTreeSet::from([raft_id])),
                    false,
                )
                .await?;
        }
        manager
            .propose(Command::SetManagerInfo { id, manager: None })
            .await?;
    }
    Ok(())
}

/// Records each manager's reachability: a voter is reachable while its node
/// heartbeats (Ready), which a crashed or partitioned manager stops doing; a
/// manager that is not a voter yet is unknown.
/// openraft 0.9 exposes no per-follower liveness, and the dispatcher's
/// heartbeats are what Docker's Down/Ready already rest on.
pub(super) async fn update_reachability(manager: &Manager) -> Result<(), ManagerError> {
    let voters: BTreeSet<u64> = {
        let metrics = manager.inner.raft.metrics().borrow().clone();
        metrics.membership_config.membership().voter_ids().collect()
    };
    let changes: Vec<(String, ManagerInfo)> = manager
        .read(|s| {
            s.nodes
                .values()
                .filter_map(|n| {
                    let info = n.manager.as_ref()?;
                    let is_self = info.raft_id == manager.inner.config.raft_id;
                    let wanted = if !is_self && !voters.contains(&info.raft_id) {
                        // Joining or being promoted: not a voter yet.
                        Reachability::Unknown
                    } else if is_self || n.status.state == NodeState::Ready {
                        Reachability::Reachable
                    } else {
                        Reachability::Unreachable
                    };
                    (wanted != info.reachability).then(|| {
                        (
                            n.id.clone(),
                            ManagerInfo {
                                reachability: wanted,
                                ..info.clone()
                            },
                        )
                    })
                })
                .collect()
        })
        .await;
    for (id, info) in changes {
        manager
            .propose(Command::SetManagerInfo {
                id,
                manager: Some(info),
            })
            .await?;
    }
    Ok(())
}
