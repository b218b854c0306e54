//! Raft for the managers (openraft 0.9), split as openraft's examples are:
//! the durable log ([`log_store`]), the state machine with its snapshots
//! ([`state_machine`]) and the gRPC network ([`network`]). They are generic
//! over the openraft type config and the replicated state, so openraft's own
//! storage test suite checks the stores.

pub mod cluster;
pub mod log_store;
pub mod network;
pub mod state_machine;

use std::fmt;

use serde::{Deserialize, Serialize};

/// What Raft knows about a manager besides its Raft ID.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftPeer {
    /// `host:port` the manager serves gRPC (Raft included) on.
    pub addr: String,
    /// The manager's node ID.
    pub node_id: String,
}

impl fmt::Display for RaftPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.node_id, self.addr)
    }
}

pub use log_store::LogStore;
pub use state_machine::{Replicated, StateMachineStore};
