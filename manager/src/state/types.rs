//! The objects of the replicated state: the swarm itself ([`Cluster`]) and
//! its nodes ([`Node`]), named as in the Docker Engine API (`SwarmSpec`,
//! `ClusterInfo`, `JoinTokens`, `Node`, `NodeSpec`, `NodeStatus`,
//! `ManagerStatus`).
//!
//! These are internal types, not the wire JSON: times are Unix milliseconds,
//! durations are milliseconds, and an object's version is the Raft log index
//! of the entry that last changed it. The API layer maps them to Docker's
//! JSON. The enums serialise in lower case, as Docker prints them
//! (`worker`, `ready`, `drain`, …).
//!
//! Services keep Docker's `ServiceSpec` as given (it is the user's
//! document, shown back by `docker service inspect`); tasks copy their
//! service's `TaskSpec` when they are created, so a running task keeps the
//! spec it was started with.
//!
//! Leadership is not stored: it is read from Raft's metrics at query time.

use std::{collections::BTreeMap, fmt, net::Ipv4Addr};

use serde::{Deserialize, Serialize};
use shoal_api::{
    network::NetworkSpec,
    service::{PortConfig, ServiceSpec, TaskSpec, TaskState, TaskStatus},
};

use crate::{
    constraint::{Constraint, ConstraintKey},
    ports::PortRange,
};

/// The swarm's name; Docker's swarm is always called `default` and refuses
/// to rename it.
pub const DEFAULT_CLUSTER_NAME: &str = "default";
/// Docker's default dispatcher heartbeat period (`--dispatcher-heartbeat`): 5 s.
pub const DEFAULT_HEARTBEAT_PERIOD_MS: u64 = 5_000;
/// Docker's default node certificate lifetime (`--cert-expiry`): 90 days.
pub const DEFAULT_NODE_CERT_EXPIRY_MS: u64 = 90 * 24 * 60 * 60 * 1_000;
/// Docker's default number of finished tasks kept per slot
/// (`--task-history-limit`).
pub const DEFAULT_TASK_HISTORY_RETENTION_LIMIT: i64 = 5;
/// Docker's default VXLAN data path port (`--data-path-port`); the API layer
/// turns a requested `0` into this.
pub const DEFAULT_DATA_PATH_PORT: u16 = 4789;
/// Docker's default size of the subnets carved from the address pool
/// (`--default-addr-pool-mask-length`).
pub const DEFAULT_SUBNET_SIZE: u8 = 24;
/// Docker's default address pool (`--default-addr-pool`).
pub const DEFAULT_ADDR_POOL: &str = "10.0.0.0/8";
/// The name of the routing mesh's network, created at `swarm init`.
pub const INGRESS_NETWORK_NAME: &str = "ingress";
/// The swarm: its identity, user-modifiable spec, root CA and join tokens,
/// and the network settings fixed at `swarm init`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// The swarm's ID, chosen by whoever proposes `InitCluster`.
    pub id: String,
    /// The Raft log index of the entry that last changed the cluster object.
    pub version: u64,
    /// When the swarm was initialised (Unix ms, the leader's clock).
    pub created_at_ms: u64,
    /// When the cluster object last changed (Unix ms, the leader's clock).
    pub updated_at_ms: u64,
    /// What `docker swarm update` changes.
    pub spec: SwarmSpec,
    /// The root CA every node certificate chains to.
    pub root_ca: RootCaRecord,
    /// The current join tokens; rotating one replaces it.
    pub join_tokens: JoinTokens,
    /// IPv4 CIDRs overlay subnets are carved from (`--default-addr-pool`).
    pub default_addr_pool: Vec<String>,
    /// Prefix length of each carved subnet (`--default-addr-pool-mask-length`).
    pub subnet_size: u8,
    /// UDP port of the VXLAN data path (`--data-path-port`).
    pub data_path_port: u16,
}

/// The root CA: certificate and private key (PEM) and the certificate's
/// digest, which join tokens embed so a joining node can pin the CA.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootCaRecord {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA private key, PEM. Never printed by `Debug`.
    pub key_pem: String,
    /// The certificate's digest, in the form the join tokens embed it.
    pub digest: String,
}

impl fmt::Debug for RootCaRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootCaRecord")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .field("digest", &self.digest)
            .finish()
    }
}

/// The tokens workers and managers present to join
/// (`SWMTKN-1-<CA digest>-<secret>`). Secrets: `Debug` does not print them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTokens {
    /// The token that joins a node as a worker.
    pub worker: String,
    /// The token that joins a node as a manager.
    pub manager: String,
}

impl fmt::Debug for JoinTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinTokens")
            .field("worker", &"<redacted>")
            .field("manager", &"<redacted>")
            .finish()
    }
}

/// The user-modifiable swarm configuration (Docker's `SwarmSpec`).
///
/// Missing fields deserialise to their defaults, so the struct can grow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwarmSpec {
    /// The swarm's name; fixed after init (Docker: always `default`).
    pub name: String,
    /// User-defined key/value metadata.
    pub labels: BTreeMap<String, String>,
    /// Dispatcher settings (`--dispatcher-heartbeat`).
    pub dispatcher: DispatcherConfig,
    /// CA settings (`--cert-expiry`).
    pub ca_config: CaConfig,
    /// Raft settings (`--snapshot-interval`, `--max-snapshots`).
    pub raft: RaftConfig,
    /// Finished tasks kept per slot; negative keeps them all
    /// (`--task-history-limit`).
    pub task_history_retention_limit: i64,
    /// Where published ports without a number come from (shoal's
    /// `--published-port-range`); fixed at init.
    pub published_port_range: PortRange,
}

impl Default for SwarmSpec {
    /// Docker's defaults: name `default`, no labels, heartbeat 5 s,
    /// certificates for 90 days, Raft as in [`RaftConfig::default`], and 5
    /// finished tasks kept per slot.
    fn default() -> Self {
        Self {
            name: DEFAULT_CLUSTER_NAME.to_owned(),
            labels: BTreeMap::new(),
            dispatcher: DispatcherConfig::default(),
            ca_config: CaConfig::default(),
            raft: RaftConfig::default(),
            task_history_retention_limit: DEFAULT_TASK_HISTORY_RETENTION_LIMIT,
            published_port_range: PortRange::default(),
        }
    }
}

/// Dispatcher settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DispatcherConfig {
    /// How often agents send a heartbeat; a node that misses them is marked
    /// down.
    pub heartbeat_period_ms: u64,
}

impl Default for DispatcherConfig {
    /// Docker's 5 s heartbeat period.
    fn default() -> Self {
        Self {
            heartbeat_period_ms: DEFAULT_HEARTBEAT_PERIOD_MS,
        }
    }
}

/// CA settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaConfig {
    /// Lifetime of the node certificates the CA issues.
    pub node_cert_expiry_ms: u64,
}

impl Default for CaConfig {
    /// Docker's 90-day node certificates.
    fn default() -> Self {
        Self {
            node_cert_expiry_ms: DEFAULT_NODE_CERT_EXPIRY_MS,
        }
    }
}

/// Raft settings, in Docker's vocabulary (ticks). The Raft layer decides how
/// a tick maps to time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RaftConfig {
    /// Ticks a follower waits for the leader before starting an election;
    /// must be greater than `heartbeat_tick`.
    pub election_tick: u32,
    /// Ticks between the leader's heartbeats; at least 1.
    pub heartbeat_tick: u32,
    /// Log entries between snapshots; at least 1.
    pub snapshot_interval: u64,
    /// Snapshots kept beyond the current one.
    pub keep_old_snapshots: u64,
    /// Log entries kept after a snapshot to catch slow followers up.
    pub log_entries_for_slow_followers: u64,
}

impl Default for RaftConfig {
    /// swarmkit's `DefaultRaftConfig`: election tick 10, heartbeat tick 1,
    /// a snapshot every 10000 entries, no old snapshots kept, 500 entries
    /// kept for slow followers.
    fn default() -> Self {
        Self {
            election_tick: 10,
            heartbeat_tick: 1,
            snapshot_interval: 10_000,
            keep_old_snapshots: 0,
            log_entries_for_slow_followers: 500,
        }
    }
}

/// One node of the swarm (Docker's `Node`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The node's ID; also the identity in its certificate.
    pub id: String,
    /// The Raft log index of the entry that last changed the node.
    pub version: u64,
    /// When the node joined (Unix ms, the leader's clock).
    pub created_at_ms: u64,
    /// When the node object last changed (Unix ms, the leader's clock).
    pub updated_at_ms: u64,
    /// What `docker node update|promote|demote` changes.
    pub spec: NodeSpec,
    /// What the node reports about itself.
    pub description: NodeDescription,
    /// What the dispatcher observes.
    pub status: NodeStatusRecord,
    /// Raft membership, when the node is a member (Docker's `ManagerStatus`
    /// without `Leader`). A demoted manager keeps it until Raft has removed
    /// it.
    pub manager: Option<ManagerInfo>,
}

impl Node {
    /// The attribute a constraint key reads (`None`: a label the node
    /// lacks).
    #[must_use]
    pub fn constraint_attribute(&self, key: &ConstraintKey) -> Option<&str> {
        match key {
            ConstraintKey::Id => Some(&self.id),
            ConstraintKey::Hostname => Some(&self.description.hostname),
            ConstraintKey::Role => Some(self.spec.role.as_str()),
            ConstraintKey::Os => Some(&self.description.platform.os),
            ConstraintKey::Arch => Some(&self.description.platform.architecture),
            ConstraintKey::Label(label) => self.spec.labels.get(label).map(String::as_str),
        }
    }

    /// Whether the node satisfies a placement constraint.
    #[must_use]
    pub fn satisfies(&self, constraint: &Constraint) -> bool {
        constraint.accepts(self.constraint_attribute(&constraint.key))
    }
}

/// The user-modifiable node configuration (Docker's `NodeSpec`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// A user-given name; empty means "use the hostname".
    pub name: String,
    /// User-defined key/value metadata (`--label-add`).
    pub labels: BTreeMap<String, String>,
    /// The desired role; Raft membership follows it outside `apply`.
    pub role: NodeRole,
    /// Whether the scheduler may place tasks on the node.
    pub availability: Availability,
}

/// A node's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// Runs tasks only.
    Worker,
    /// A Raft voter; also runs tasks unless drained.
    Manager,
}

impl NodeRole {
    /// Docker's spelling: `worker` or `manager`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Worker => "worker",
            Self::Manager => "manager",
        }
    }
}

impl fmt::Display for NodeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the scheduler may use a node.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    /// New tasks may be placed on the node.
    #[default]
    Active,
    /// No new tasks; running ones stay.
    Pause,
    /// No tasks; running ones are moved elsewhere.
    Drain,
}

impl Availability {
    /// Docker's spelling: `active`, `pause` or `drain`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pause => "pause",
            Self::Drain => "drain",
        }
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a node reports about itself (Docker's `NodeDescription`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDescription {
    /// The node's hostname.
    pub hostname: String,
    /// Architecture and operating system.
    pub platform: Platform,
    /// The version of `shoald` on the node.
    pub engine_version: String,
    /// The node's certificate, once it has one.
    pub tls: Option<NodeTlsInfo>,
    /// CPUs and memory the scheduler may reserve on the node.
    #[serde(default)]
    pub resources: NodeResources,
}

/// What a node offers to reservations (Docker's `ResourceObject`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeResources {
    /// Billionths of a CPU.
    pub nano_cpus: i64,
    /// Bytes of memory.
    pub memory_bytes: i64,
}

/// Architecture and operating system (Docker's `Platform`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// e.g. `x86_64`.
    pub architecture: String,
    /// e.g. `linux`.
    pub os: String,
}

/// The node's current certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTlsInfo {
    /// The root CA certificate the node trusts, PEM.
    pub trust_root_pem: String,
    /// The serial number of the node's certificate.
    pub cert_serial: String,
    /// When the node's certificate expires (Unix ms).
    pub cert_not_after_ms: u64,
}

/// What the dispatcher observes about a node (Docker's `NodeStatus`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatusRecord {
    /// The node's state.
    pub state: NodeState,
    /// Why it is in that state, for humans.
    pub message: String,
    /// The node's IP address as the managers see it.
    pub addr: String,
}

/// A node's state (Docker's `NodeState`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Not heard from since it registered or since a leader change.
    #[default]
    Unknown,
    /// Missed its heartbeats.
    Down,
    /// Holds a session with the dispatcher.
    Ready,
    /// Its session ended; it is looking for a manager.
    Disconnected,
}

impl NodeState {
    /// Docker's spelling: `unknown`, `down`, `ready` or `disconnected`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Down => "down",
            Self::Ready => "ready",
            Self::Disconnected => "disconnected",
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node's Raft membership (Docker's `ManagerStatus` without `Leader`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerInfo {
    /// The node's Raft ID (openraft `NodeId`); unique among members, ≥ 1.
    pub raft_id: u64,
    /// Where the manager serves Raft and gRPC: `ip:port`.
    pub addr: String,
    /// Whether the leader reaches it.
    pub reachability: Reachability,
}

/// Whether the leader reaches a manager (Docker's `Reachability`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Reachability {
    /// Not known yet.
    #[default]
    Unknown,
    /// The leader cannot reach it.
    Unreachable,
    /// The leader reaches it.
    Reachable,
}

impl Reachability {
    /// Docker's spelling: `unknown`, `unreachable` or `reachable`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Unreachable => "unreachable",
            Self::Reachable => "reachable",
        }
    }
}

impl fmt::Display for Reachability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A service (Docker's `Service`): a spec and the tasks the orchestrator
/// keeps for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The service's ID.
    pub id: String,
    /// The Raft log index of the entry that last changed the service.
    pub version: u64,
    /// When the service was created (Unix ms, the leader's clock).
    pub created_at_ms: u64,
    /// When the service last changed (Unix ms, the leader's clock).
    pub updated_at_ms: u64,
    /// What the user asked for.
    pub spec: ServiceSpec,
    /// The spec before the last update (`PreviousSpec`).
    pub previous_spec: Option<ServiceSpec>,
    /// The service's virtual IP on each of its networks (`vip` mode), by
    /// network ID; on the ingress network whenever it publishes ports.
    #[serde(default)]
    pub virtual_ips: BTreeMap<String, Ipv4Addr>,
    /// Its published ports, resolved (`Endpoint.Ports`): the spec's, in
    /// its order, protocol and mode spelled out, numbers allocated.
    #[serde(default)]
    pub ports: Vec<PortConfig>,
}

impl Service {
    /// Whether the service publishes ports, and so is attached to the
    /// ingress network.
    #[must_use]
    pub fn needs_ingress(&self) -> bool {
        !self.ports.is_empty()
    }
}

/// One task of a service: a container on a node, in a slot (replicated) or
/// for a node (global).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The task's ID; also its container's ID.
    pub id: String,
    /// The Raft log index of the entry that last changed the task.
    pub version: u64,
    /// When the task was created (Unix ms, the leader's clock).
    pub created_at_ms: u64,
    /// When the task last changed (Unix ms, the leader's clock).
    pub updated_at_ms: u64,
    /// The service's ID.
    pub service_id: String,
    /// The slot of a replicated service's task (1, 2, …); 0 for a global
    /// service's task.
    pub slot: u64,
    /// The node the task is assigned to; empty while pending.
    pub node_id: String,
    /// The service's task spec when the task was created.
    pub spec: TaskSpec,
    /// The service's version when the task was created.
    pub service_version: u64,
    /// What the managers want: `running`, or `shutdown` to stop it.
    pub desired_state: TaskState,
    /// What was last observed (by the scheduler, then the node).
    pub status: TaskStatus,
    /// The task's address on each of its networks, by network ID.
    #[serde(default)]
    pub addresses: BTreeMap<String, Ipv4Addr>,
}

/// A swarm-scoped overlay network (Docker's `Network`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The network's ID.
    pub id: String,
    /// The Raft log index of the entry that last changed the network.
    pub version: u64,
    /// When the network was created (Unix ms, the leader's clock).
    pub created_at_ms: u64,
    /// What the user asked for.
    pub spec: NetworkSpec,
    /// Its subnet (given or carved from the default pool).
    pub subnet: String,
    /// Its gateway address (given or the subnet's first host).
    pub gateway: Ipv4Addr,
    /// Its VXLAN network identifier.
    pub vni: u32,
}

#[cfg(test)]
mod tests {
    use crate::{constraint::Constraint, state::test_support::node_with};

    #[test]
    fn nodes_satisfy_constraints_like_swarmkit() {
        let node = node_with("n1", "host-1", &[("zone", "East")]);
        let yes = |t: &str| node.satisfies(&Constraint::parse(t).expect("parses"));
        assert!(yes("node.hostname==HOST-1"));
        assert!(yes("node.labels.zone==east"));
        assert!(!yes("node.labels.zone!=east"));
        assert!(
            !yes("node.labels.rack==1"),
            "a missing label equals nothing"
        );
        assert!(yes("node.labels.rack!=1"));
        assert!(yes("node.role==worker"));
        assert!(yes("node.id!=n2"));
    }
}
