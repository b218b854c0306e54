//! Why a manager operation failed: [`ManagerError`], keeping what failed
//! underneath (openraft's error, the call to another manager, the I/O) as
//! its source; [`RemoteError`] for calls to another manager.

use std::{net::SocketAddr, path::PathBuf};

use openraft::{
    ConfigError,
    error::{CheckIsLeaderError, ClientWriteError, Fatal, InitializeError, RaftError},
    metrics::WaitError,
};
use shoal_api::grpc::ChannelError;

use crate::{raft::RaftPeer, state::Rejected};

/// A Raft ID.
type RaftId = u64;

/// Why a manager operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The state machine refused the command.
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// No leader is known (no quorum, or an election is running).
    #[error(
        "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."
    )]
    NoLeader,
    /// openraft refused the configuration made from the Raft timing.
    #[error("raft: {0}")]
    RaftConfig(#[source] Box<ConfigError>),
    /// Raft stopped for good: its storage failed, or it was shut down.
    #[error("raft: {0}")]
    RaftStopped(#[source] Box<Fatal<RaftId>>),
    /// Making this manager the first voter of a new Raft group failed.
    #[error("raft: {0}")]
    RaftInitialize(#[source] Box<RaftError<RaftId, InitializeError<RaftId, RaftPeer>>>),
    /// A write through Raft failed: a proposal or a membership change.
    #[error("raft: {0}")]
    RaftWrite(#[source] Box<RaftError<RaftId, ClientWriteError<RaftId, RaftPeer>>>),
    /// Confirming this manager's leadership for a linearizable read failed.
    #[error("raft: {0}")]
    RaftReadIndex(#[source] Box<RaftError<RaftId, CheckIsLeaderError<RaftId, RaftPeer>>>),
    /// Waiting for this manager's Raft (to lead, to apply an index) timed
    /// out, or Raft shut down meanwhile.
    #[error("raft: {0}")]
    RaftWait(#[from] WaitError),
    /// A committed proposal came back without the state machine's answer.
    #[error("raft: the entry carried no command")]
    NoAnswer,
    /// Adding a voter for a node the state has no manager record of.
    #[error("raft: node {node_id} is not a registered manager")]
    NotRegisteredManager {
        /// The node.
        node_id: String,
    },
    /// Talking to another manager failed.
    #[error("manager {addr}: {source}")]
    Remote {
        /// The manager.
        addr: String,
        /// What went wrong.
        source: RemoteError,
    },
    /// Opening the Raft log failed.
    #[error("opening the Raft log {path}: {source}")]
    RaftLog {
        /// The log's file.
        path: PathBuf,
        /// The store's error.
        source: redb::Error,
    },
    /// The gRPC listener could not be bound.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The listen address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Local I/O failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl ManagerError {
    /// A [`ManagerError::Remote`] for the manager at `addr`.
    pub(super) fn remote(addr: &str, source: impl Into<RemoteError>) -> Self {
        Self::Remote {
            addr: addr.to_owned(),
            source: source.into(),
        }
    }
}

impl From<ConfigError> for ManagerError {
    fn from(error: ConfigError) -> Self {
        Self::RaftConfig(Box::new(error))
    }
}

impl From<Fatal<RaftId>> for ManagerError {
    fn from(error: Fatal<RaftId>) -> Self {
        Self::RaftStopped(Box::new(error))
    }
}

impl From<RaftError<RaftId, InitializeError<RaftId, RaftPeer>>> for ManagerError {
    fn from(error: RaftError<RaftId, InitializeError<RaftId, RaftPeer>>) -> Self {
        Self::RaftInitialize(Box::new(error))
    }
}

impl From<RaftError<RaftId, ClientWriteError<RaftId, RaftPeer>>> for ManagerError {
    fn from(error: RaftError<RaftId, ClientWriteError<RaftId, RaftPeer>>) -> Self {
        Self::RaftWrite(Box::new(error))
    }
}

impl From<RaftError<RaftId, CheckIsLeaderError<RaftId, RaftPeer>>> for ManagerError {
    fn from(error: RaftError<RaftId, CheckIsLeaderError<RaftId, RaftPeer>>) -> Self {
        Self::RaftReadIndex(Box::new(error))
    }
}

/// Why a call to another manager failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No channel can be made to its address.
    #[error("{0}")]
    Channel(#[from] ChannelError),
    /// The request could not be encoded.
    #[error("{0}")]
    Encode(#[source] serde_json::Error),
    /// The call failed, or the manager refused it (its message).
    #[error("{}", .0.message())]
    Call(#[source] Box<tonic::Status>),
    /// The answer could not be decoded.
    #[error("undecodable answer: {0}")]
    Decode(#[source] serde_json::Error),
}

impl From<tonic::Status> for RemoteError {
    fn from(status: tonic::Status) -> Self {
        Self::Call(Box::new(status))
    }
}
