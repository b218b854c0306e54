//! The cluster store's Raft types: what a log entry carries and what
//! applying it returns.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use super::{RaftPeer, Replicated};
use crate::state::{self, ApplyMeta, ClusterState, Command, Rejected, Response};

openraft::declare_raft_types!(
    /// openraft's types for the cluster store.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = u64,
        Node = RaftPeer,
        SnapshotData = Cursor<Vec<u8>>,
);

/// A log entry's payload: a command stamped with the proposing leader's
/// clock, so every manager applies it identically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The leader's clock when it proposed the command (Unix ms).
    pub now_unix_ms: u64,
    /// The change.
    pub command: Command,
}

/// What applying an entry returned; `None` for Raft's own entries (blank,
/// membership).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied(pub Option<Result<Response, Rejected>>);

impl Replicated for ClusterState {
    type Request = Proposal;
    type Response = Applied;

    fn apply(&mut self, index: u64, request: &Proposal) -> Applied {
        let meta = ApplyMeta {
            index,
            now_unix_ms: request.now_unix_ms,
        };
        Applied(Some(state::apply(self, &meta, request.command.clone())))
    }
}
