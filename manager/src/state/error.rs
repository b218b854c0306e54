//! Why a command was rejected or a lookup failed: [`Rejected`], phrased like
//! Docker's errors so the API layer can pass the message through.
//!
//! Rejections are results, not failures of the state machine: they are
//! replicated back to the proposer, so they serialise.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::types::NodeState;

/// The object a rejection is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectRef {
    /// The swarm, by ID.
    Cluster(String),
    /// A node, by ID.
    Node(String),
    /// A service, by ID.
    Service(String),
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cluster(id) => write!(f, "cluster {id}"),
            Self::Node(id) => write!(f, "node {id}"),
            Self::Service(id) => write!(f, "service {id}"),
        }
    }
}

/// Why `apply` refused a command (the state is then unchanged) or a lookup
/// found nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Rejected {
    /// `InitCluster` while a swarm exists.
    #[error(
        "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one."
    )]
    ClusterExists {
        /// The existing swarm's ID.
        id: String,
    },
    /// A command that needs a swarm, before `InitCluster`.
    #[error("This node is not part of a swarm")]
    NoCluster,
    /// No node has this ID (or, for lookups, this name or ID prefix).
    #[error("node {id} not found")]
    NodeNotFound {
        /// The ID or query.
        id: String,
    },
    /// `RegisterNode` with an ID that exists.
    #[error("node {id} already exists")]
    NodeExists {
        /// The node's ID.
        id: String,
    },
    /// `RegisterNode` with the ID of a removed node.
    #[error("node {id} was removed from the swarm and cannot join again with the same ID")]
    NodeRemoved {
        /// The node's ID.
        id: String,
    },
    /// A Raft ID another member already has.
    #[error("raft id {raft_id} is already used by manager {node_id}")]
    RaftIdInUse {
        /// The Raft ID.
        raft_id: u64,
        /// The member that has it.
        node_id: String,
    },
    /// An update read an older version of the object than the current one.
    #[error(
        "update out of sequence: {object} is at version {actual}, the update was based on version {expected}"
    )]
    StaleVersion {
        /// The object updated.
        object: ObjectRef,
        /// The version the update was based on.
        expected: u64,
        /// The object's current version.
        actual: u64,
    },
    /// Demoting the only node whose role is manager.
    #[error("attempting to demote the last manager of the swarm")]
    LastManager {
        /// The manager's ID.
        id: String,
    },
    /// `RemoveNode` without `force` of a node that is not down.
    #[error("node {id} is not down and can't be removed")]
    NodeNotDown {
        /// The node's ID.
        id: String,
        /// Its current state.
        state: NodeState,
    },
    /// `RemoveNode` of a node whose role is manager.
    #[error(
        "node {id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal"
    )]
    RemoveManager {
        /// The node's ID.
        id: String,
    },
    /// `RemoveNode` of a demoted node that Raft has not removed yet.
    #[error(
        "node {id} has been demoted but is still a member of the raft cluster. Try again once it has left"
    )]
    DemotionPending {
        /// The node's ID.
        id: String,
    },
    /// A lookup matched more than one object.
    #[error("{kind} {query} is ambiguous ({} matches found)", matches.len())]
    Ambiguous {
        /// `node` or `service`.
        kind: String,
        /// What was looked up.
        query: String,
        /// The IDs of the nodes it matched.
        matches: Vec<String>,
    },
    /// No service has this ID (or, for lookups, this name or ID prefix).
    #[error("service {id} not found")]
    ServiceNotFound {
        /// The ID or query.
        id: String,
    },
    /// No task has this ID.
    #[error("task {id} not found")]
    TaskNotFound {
        /// The ID.
        id: String,
    },
    /// A service (or its ID) exists already.
    #[error(
        "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service {name} exists"
    )]
    ServiceExists {
        /// The name or ID in conflict.
        name: String,
    },
    /// No network has this ID (or, for lookups, this name or ID prefix).
    #[error("network {id} not found")]
    NetworkNotFound {
        /// The ID or query.
        id: String,
    },
    /// A network with this name exists.
    #[error("network with name {name} already exists")]
    NetworkExists {
        /// The name.
        name: String,
    },
    /// `RemoveNetwork` of a network services or tasks still use.
    #[error("network {name} is in use by service {}", services.join(", "))]
    NetworkInUse {
        /// The network's name.
        name: String,
        /// The services using it.
        services: Vec<String>,
    },
    /// A published port another service holds (swarmkit's
    /// `checkPortConflicts`, in its words).
    #[error(
        "rpc error: code = InvalidArgument desc = port '{port}' is already in use by service '{service_name}' ({service_id}) as {}",
        if *host_mode { "a host-published port" } else { "an ingress port" }
    )]
    PortInUse {
        /// The published port.
        port: u16,
        /// The holder's name.
        service_name: String,
        /// The holder's ID.
        service_id: String,
        /// Whether the holder publishes it in `host` mode.
        host_mode: bool,
    },
    /// A request swarmkit refuses as an invalid argument, in its words
    /// (`EndpointSpec: …`).
    #[error("rpc error: code = InvalidArgument desc = {0}")]
    InvalidArgument(String),
    /// A request that cannot be served in the current state, in
    /// swarmkit's words (the ingress network is missing or in use).
    #[error("rpc error: code = FailedPrecondition desc = {0}")]
    FailedPrecondition(String),
    /// An allocation found nothing free: subnets, VNIs or addresses.
    #[error("{0}")]
    Exhausted(String),
    /// A field of the command is invalid.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, as a path (`spec.labels`, `node.addr`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Rejected {
    /// A [`Rejected::Invalid`] for `field`.
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
