//! Why a manager operation failed: [`ManagerError`].

use std::path::PathBuf;

use crate::state::Rejected;

/// Why a manager operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The state machine refused the command (the message is Docker's).
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// No leader is known (no quorum, or an election is running).
    #[error(
        "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."
    )]
    NoLeader,
    /// Raft failed.
    #[error("raft: {0}")]
    Raft(String),
    /// Talking to another manager failed.
    #[error("manager {addr}: {message}")]
    Remote {
        /// The manager.
        addr: String,
        /// What went wrong.
        message: String,
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
