//! Why a command was rejected or a lookup failed: [`Rejected`], one variant
//! per reason with what it is about, and a plain message (swarmkit's words
//! where Docker shows them). How Docker presents a rejection (the HTTP
//! status, swarmkit's `rpc error: code = … desc = …` form, the daemon's
//! sentences) is the API edge's business, not the state machine's.
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
    #[error("the swarm {id} exists already")]
    ClusterExists {
        /// The existing swarm's ID.
        id: String,
    },
    /// A command that needs a swarm, before `InitCluster`.
    #[error("no swarm has been initialised")]
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
    #[error("name conflicts with an existing object: service {name} exists")]
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
        "port '{port}' is already in use by service '{service_name}' ({service_id}) as {}",
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
    /// A port published in `ingress` mode by a service whose endpoint mode
    /// is `dnsrr` (no VIP for the routing mesh to balance).
    #[error("EndpointSpec: port published with ingress mode can't be used with dnsrr mode")]
    IngressPortWithDnsrr,
    /// Two ports of one spec publish the same number for one protocol.
    #[error("EndpointSpec: duplicate published ports provided")]
    DuplicatePublishedPort {
        /// The published port.
        port: u16,
        /// `tcp` or `udp`.
        protocol: String,
    },
    /// A service attaching itself to the ingress network: publishing
    /// ports attaches it.
    #[error("Service cannot be explicitly attached to the ingress network {network:?}")]
    IngressAttachment {
        /// The ingress network's name.
        network: String,
    },
    /// A second ingress network.
    #[error("ingress network ({id}) is already present")]
    IngressExists {
        /// The existing ingress network's ID.
        id: String,
    },
    /// `RemoveNetwork` of the ingress network while a service publishes
    /// ports through it.
    #[error("ingress network cannot be removed because service {service_id} depends on it")]
    IngressInUse {
        /// A service publishing ports.
        service_id: String,
    },
    /// A service publishing ports while the swarm has no ingress network.
    #[error("service needs ingress network, but no ingress network is present")]
    NoIngress,
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
