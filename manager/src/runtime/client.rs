//! The Raft client side of a manager: proposals committed through Raft (a
//! follower forwards them to the leader and waits to have applied them),
//! linearizable reads (`ReadIndex`, asked of the leader from a follower),
//! reads of the applied state, and who leads.

use std::{sync::Arc, time::Duration};

use openraft::{
    Raft,
    error::{CheckIsLeaderError, ClientWriteError, RaftError},
};
use shoal_api::grpc::{
    MANAGER_SERVER_NAME, channel,
    proto::{ProposeRequest, ReadIndexRequest, control_client::ControlClient},
};
use tonic::transport::Channel;

use super::{Manager, ManagerError, error::RemoteError};
use crate::{
    ca::now_unix_ms,
    raft::cluster::{Proposal, TypeConfig},
    state::{ClusterState, Command, Rejected, Response},
};

impl Manager {
    /// The Raft instance, for the gRPC handlers.
    pub(super) fn raft(&self) -> &Raft<TypeConfig> {
        &self.inner.raft
    }

    /// Commits `command` through Raft and returns what applying it said.
    /// On a follower the command is forwarded to the leader.
    pub async fn propose(&self, command: Command) -> Result<Response, ManagerError> {
        let proposal = Proposal {
            now_unix_ms: now_unix_ms(),
            command,
        };
        Ok(self.commit(proposal).await?.0?)
    }

    /// Commits a stamped proposal and returns what applying it said and the
    /// log index it was committed at. On a follower the proposal is
    /// forwarded to the leader, and the answer waits until this manager has
    /// applied the entry too, so a client that reads back through the same
    /// manager sees its own write (read-your-writes).
    pub async fn commit(
        &self,
        proposal: Proposal,
    ) -> Result<(Result<Response, Rejected>, u64), ManagerError> {
        match self.inner.raft.client_write(proposal.clone()).await {
            Ok(written) => {
                let result = written.data.0.ok_or(ManagerError::NoAnswer)?;
                Ok((result, written.log_id.index))
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                let Some(leader) = forward.leader_node else {
                    return Err(ManagerError::NoLeader);
                };
                let (result, index) = self.forward(&leader.addr, &proposal).await?;
                self.inner
                    .raft
                    .wait(Some(Duration::from_secs(10)))
                    .applied_index_at_least(Some(index), "applying a forwarded write")
                    .await?;
                Ok((result, index))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Has the leader at `leader` commit `proposal`.
    async fn forward(
        &self,
        leader: &str,
        proposal: &Proposal,
    ) -> Result<(Result<Response, Rejected>, u64), ManagerError> {
        let command_json = serde_json::to_vec(proposal)
            .map_err(|e| ManagerError::remote(leader, RemoteError::Encode(e)))?;
        let answer = self
            .control_client(leader, Duration::from_secs(10))?
            .propose(ProposeRequest { command_json })
            .await
            .map_err(|status| ManagerError::remote(leader, status))?
            .into_inner();
        let result: Result<Response, Rejected> = serde_json::from_slice(&answer.result_json)
            .map_err(|e| ManagerError::remote(leader, RemoteError::Decode(e)))?;
        Ok((result, answer.log_index))
    }

    /// A client of the `Control` service of the manager at `addr`, each
    /// call limited to `timeout`. It connects on the first call.
    pub(super) fn control_client(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<ControlClient<Channel>, ManagerError> {
        let channel = channel(
            addr,
            Arc::clone(&self.inner.client_tls),
            MANAGER_SERVER_NAME,
            timeout,
        )
        .map_err(|e| ManagerError::remote(addr, e))?;
        Ok(ControlClient::new(channel))
    }

    /// The log index a linearizable read must see: from this manager's own
    /// Raft when it leads (after a quorum confirms its leadership), else from
    /// the leader (etcd's `ReadIndex`).
    pub async fn read_index(&self) -> Result<u64, ManagerError> {
        match self.inner.raft.get_read_log_id().await {
            Ok((read, _)) => Ok(read.map_or(0, |id| id.index)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => {
                let Some(leader) = forward.leader_node else {
                    return Err(ManagerError::NoLeader);
                };
                let answer = self
                    .control_client(&leader.addr, Duration::from_secs(10))?
                    .read_index(ReadIndexRequest {})
                    .await
                    .map_err(|status| ManagerError::remote(&leader.addr, status))?;
                Ok(answer.into_inner().index)
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_))) => {
                Err(ManagerError::NoLeader)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Waits until this manager has applied every write acknowledged before
    /// the call, so the reads that follow are linearizable, on a follower too.
    pub async fn sync_for_read(&self) -> Result<(), ManagerError> {
        let index = self.read_index().await?;
        self.inner
            .raft
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(index), "a linearizable read")
            .await?;
        Ok(())
    }

    /// Reads the replicated state as this manager has applied it.
    pub async fn read<T>(&self, f: impl FnOnce(&ClusterState) -> T) -> T {
        self.inner.store.read(f).await
    }

    /// The current leader's Raft ID, if one is known.
    #[must_use]
    pub fn leader(&self) -> Option<u64> {
        self.inner.raft.metrics().borrow().current_leader
    }

    /// Whether this manager leads.
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.inner.config.raft_id)
    }

    /// `host:port` of every voter, the leader first.
    #[must_use]
    pub fn manager_addrs(&self) -> Vec<String> {
        let metrics = self.inner.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let leader = metrics.current_leader;
        let mut addrs: Vec<(bool, String)> = membership
            .nodes()
            .filter(|(id, _)| membership.voter_ids().any(|v| v == **id))
            .map(|(id, peer)| (Some(*id) != leader, peer.addr.clone()))
            .collect();
        addrs.sort();
        addrs.into_iter().map(|(_, addr)| addr).collect()
    }
}
