//! What goes through Raft: the [`Command`]s that change the cluster state,
//! the [`ApplyMeta`] the state machine adds when it applies one, and the
//! [`Response`] a successful command returns to its proposer.
//!
//! A command carries everything `apply` needs that is not deterministic:
//! IDs, tokens and keys are made by the proposer, times come from the
//! [`ApplyMeta`]. An update of a user-modifiable object carries the version
//! the user read it at, so concurrent updates cannot overwrite each other.

use serde::{Deserialize, Serialize};

use shoal_api::{
    network::NetworkSpec,
    service::{ServiceSpec, TaskState, TaskStatus},
};

use super::types::{
    Availability, JoinTokens, ManagerInfo, NodeResources, NodeRole, NodeSpec, NodeState,
    NodeTlsInfo, Platform, RootCaRecord, SwarmSpec,
};

/// What the state machine knows about the entry it applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyMeta {
    /// The entry's Raft log index; every object the command changes takes it
    /// as its new version.
    pub index: u64,
    /// The leader's clock when it proposed the entry (Unix ms); objects take
    /// it as their `updated_at_ms`.
    pub now_unix_ms: u64,
}

/// A node joining the swarm (or the first node, at init).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewNode {
    /// The node's ID, made by the proposer (the CA, when it signs the node's
    /// first certificate): 1–64 bytes of `[A-Za-z0-9_.-]`, starting with a
    /// letter or digit.
    pub id: String,
    /// The role the join token granted. Ignored for the first node, which is
    /// always a manager.
    pub role: NodeRole,
    /// The initial availability (`docker swarm init|join --availability`).
    pub availability: Availability,
    /// The node's hostname.
    pub hostname: String,
    /// The node's architecture and operating system.
    pub platform: Platform,
    /// The version of `shoald` on the node.
    pub engine_version: String,
    /// The node's IP address as the managers see it.
    pub addr: String,
    /// The node's Raft ID (≥ 1): required for a manager, absent for a
    /// worker. For the first node it defaults to 1.
    pub raft_id: Option<u64>,
    /// Where the manager serves Raft and gRPC (`ip:port`): required for a
    /// manager, absent for a worker.
    pub manager_addr: Option<String>,
    /// The node's certificate, when it already has one.
    pub tls: Option<NodeTlsInfo>,
}

/// A change to the cluster state. Applied by [`super::apply`], which either
/// applies it whole or rejects it and changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// `docker swarm init`: creates the swarm and its first node, a `Ready`
    /// manager that is a Raft member (Raft ID 1 unless given), `Reachable`.
    ///
    /// Rejected when a swarm exists, or when any field is invalid: the spec
    /// (see [`super::validate`]), the tokens (`SWMTKN-1-…`, distinct), the
    /// root CA (non-empty), the address pool (IPv4 CIDRs without host bits,
    /// not overlapping, each no longer than `subnet_size`, which is at most
    /// 29), the data path port (1024–49151) or the node.
    InitCluster {
        /// The swarm's ID.
        cluster_id: String,
        /// The initial spec.
        spec: SwarmSpec,
        /// The root CA the proposer created.
        root_ca: RootCaRecord,
        /// The initial join tokens.
        join_tokens: JoinTokens,
        /// IPv4 CIDRs overlay subnets are carved from.
        default_addr_pool: Vec<String>,
        /// Prefix length of each carved subnet.
        subnet_size: u8,
        /// UDP port of the VXLAN data path.
        data_path_port: u16,
        /// The node running `swarm init`.
        first_node: NewNode,
    },
    /// A node joins (`docker swarm join`). It starts in state `Unknown`
    /// until the dispatcher sees it; a manager is recorded as a Raft member
    /// with reachability `Unknown`.
    ///
    /// Rejected when there is no swarm, the ID exists or was removed, a
    /// manager lacks its Raft ID or address or uses another member's Raft
    /// ID, a worker has either, or a field is invalid.
    RegisterNode {
        /// The joining node.
        node: NewNode,
    },
    /// `docker node update|promote|demote`: replaces the node's spec. A role
    /// change only sets the desired role; Raft membership follows outside
    /// `apply` and is recorded with [`Command::SetManagerInfo`].
    ///
    /// Rejected when the node does not exist, `expected_version` is not its
    /// version, a label or the name is invalid, or it demotes the last
    /// manager.
    UpdateNodeSpec {
        /// The node's ID.
        id: String,
        /// The node's version when the user read it.
        expected_version: u64,
        /// The new spec.
        spec: NodeSpec,
    },
    /// The dispatcher's observation of a node (heartbeats seen → `Ready`,
    /// missed → `Down`). Not version-checked: the system's own observation
    /// always wins. Bumps the node's version.
    SetNodeStatus {
        /// The node's ID.
        id: String,
        /// The observed state.
        state: NodeState,
        /// Why, for humans (e.g. `heartbeat failure`).
        message: String,
        /// The node's IP address as seen now; `None` keeps the recorded one.
        addr: Option<String>,
    },
    /// Records a Raft membership change (`Some` after the node joined Raft,
    /// `None` after it left) or a reachability change. Not version-checked.
    ///
    /// Rejected when the node does not exist, the Raft ID is 0 or used by
    /// another member, or the address is not `ip:port`.
    SetManagerInfo {
        /// The node's ID.
        id: String,
        /// The node's membership, or `None` when it is no longer a member.
        manager: Option<ManagerInfo>,
    },
    /// The node reports its description again (on each new session).
    /// Not version-checked.
    UpdateNodeDescription {
        /// The node's ID.
        id: String,
        /// The node's hostname.
        hostname: String,
        /// The node's architecture and operating system.
        platform: Platform,
        /// The version of `shoald` on the node.
        engine_version: String,
        /// The node's current certificate.
        tls: Option<NodeTlsInfo>,
        /// What the node offers to reservations.
        resources: NodeResources,
    },
    /// `docker node rm [--force]`: deletes the node and refuses its ID (and
    /// so its certificate) forever.
    ///
    /// Rejected when the node does not exist, is a manager (demote it
    /// first), is still a Raft member, or, without `force`, is not `Down`.
    RemoveNode {
        /// The node's ID.
        id: String,
        /// Remove it even when it is not down.
        force: bool,
    },
    /// `docker swarm update` and `docker swarm join-token --rotate`:
    /// replaces the spec and optionally one or both join tokens.
    ///
    /// Rejected when there is no swarm, `expected_version` is not the
    /// cluster's version, the spec is invalid or renames the swarm, or a
    /// token is malformed or equal to the other one.
    UpdateCluster {
        /// The cluster's version when the user read it.
        expected_version: u64,
        /// The new spec.
        spec: SwarmSpec,
        /// A new worker token, made by the proposer.
        rotate_worker_token: Option<String>,
        /// A new manager token, made by the proposer.
        rotate_manager_token: Option<String>,
    },
    /// `docker network create -d overlay`: adds a network with a subnet
    /// (given, or the lowest free one of the default pool) and the lowest
    /// free VNI.
    ///
    /// Rejected when there is no swarm, the name or ID exists, the driver is
    /// not overlay, the subnet overlaps another network's, or nothing is
    /// left to allocate.
    CreateNetwork {
        /// The network's ID, made by the proposer.
        id: String,
        /// The spec.
        spec: NetworkSpec,
    },
    /// `docker network rm`. Rejected while a service or a running task uses
    /// the network.
    RemoveNetwork {
        /// The network's ID.
        id: String,
    },
    /// `docker service create`: adds a service; the orchestrator then
    /// creates its tasks.
    ///
    /// Rejected when there is no swarm, the ID exists, another service has
    /// the name, or the spec is invalid (see [`super::validate::service_spec`]).
    CreateService {
        /// The service's ID, made by the proposer.
        id: String,
        /// The spec.
        spec: ServiceSpec,
    },
    /// `docker service update|scale`: replaces the spec (the old one becomes
    /// `previous_spec`). The name cannot change, nor the mode between
    /// replicated and global.
    ///
    /// Rejected when the service does not exist, `expected_version` is not
    /// its version, or the spec is invalid.
    UpdateService {
        /// The service's ID.
        id: String,
        /// The service's version when the user read it.
        expected_version: u64,
        /// The new spec.
        spec: ServiceSpec,
    },
    /// `docker service rm`: deletes the service; each of its tasks is asked
    /// to shut down and is deleted once its node confirms (or is gone).
    RemoveService {
        /// The service's ID.
        id: String,
    },
    /// The orchestrator's and scheduler's decisions, applied together: new
    /// tasks, changes of desired state, assignments to nodes and deletions.
    /// Not version-checked (the leader's own reconciliation), but every
    /// referenced task and service must exist; a change to a task that
    /// already ended keeps its final observed state.
    PlanTasks {
        /// Tasks to create.
        create: Vec<NewTask>,
        /// Changes to existing tasks.
        update: Vec<TaskChange>,
        /// Tasks to delete (history beyond the retention limit, tasks of
        /// removed services that stopped).
        delete: Vec<String>,
    },
    /// A node reports what its tasks are doing. Updates of tasks that are
    /// not (or no longer) assigned to the node are ignored, and a task's
    /// observed state never moves backwards.
    ReportTaskStatus {
        /// The reporting node.
        node_id: String,
        /// `(task ID, status)` pairs.
        updates: Vec<(String, TaskStatus)>,
    },
}

/// A task the orchestrator creates; its spec is copied from the service at
/// apply time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTask {
    /// The task's ID, made by the proposer.
    pub id: String,
    /// The service's ID.
    pub service_id: String,
    /// The slot (replicated) or 0 (global).
    pub slot: u64,
    /// The node (global services know it at creation); empty otherwise.
    pub node_id: String,
    /// The state the task is created in (`pending`, or `assigned` with a
    /// node).
    pub state: TaskState,
    /// Why, for humans.
    pub message: String,
}

/// A change to one task; `None` fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskChange {
    /// The task's ID.
    pub id: String,
    /// A new desired state (only ever raised).
    pub desired_state: Option<TaskState>,
    /// Assigns the task to this node (with observed state `assigned`).
    pub assign_to: Option<String>,
    /// A new observed state and message from the managers (`pending` with
    /// the reason no node fits, `orphaned` when its node is gone).
    pub status: Option<(TaskState, String)>,
}

impl Command {
    /// The variant's name, for logs.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InitCluster { .. } => "InitCluster",
            Self::RegisterNode { .. } => "RegisterNode",
            Self::UpdateNodeSpec { .. } => "UpdateNodeSpec",
            Self::SetNodeStatus { .. } => "SetNodeStatus",
            Self::SetManagerInfo { .. } => "SetManagerInfo",
            Self::UpdateNodeDescription { .. } => "UpdateNodeDescription",
            Self::RemoveNode { .. } => "RemoveNode",
            Self::UpdateCluster { .. } => "UpdateCluster",
            Self::CreateNetwork { .. } => "CreateNetwork",
            Self::RemoveNetwork { .. } => "RemoveNetwork",
            Self::CreateService { .. } => "CreateService",
            Self::UpdateService { .. } => "UpdateService",
            Self::RemoveService { .. } => "RemoveService",
            Self::PlanTasks { .. } => "PlanTasks",
            Self::ReportTaskStatus { .. } => "ReportTaskStatus",
        }
    }
}

/// What an applied command did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The swarm was created with its first node.
    ClusterInitialized {
        /// The swarm's ID.
        cluster_id: String,
        /// The first node's ID.
        node_id: String,
        /// The version of both new objects.
        version: u64,
    },
    /// A node joined.
    NodeRegistered {
        /// The node's ID.
        id: String,
        /// Its version.
        version: u64,
    },
    /// A node changed.
    NodeUpdated {
        /// The node's ID.
        id: String,
        /// Its new version.
        version: u64,
    },
    /// A node was removed and its ID is refused from now on.
    NodeRemoved {
        /// The node's ID.
        id: String,
    },
    /// The cluster object changed.
    ClusterUpdated {
        /// The swarm's ID.
        id: String,
        /// Its new version.
        version: u64,
    },
    /// A network was created.
    NetworkCreated {
        /// The network's ID.
        id: String,
        /// Its version.
        version: u64,
    },
    /// A network was removed.
    NetworkRemoved {
        /// The network's ID.
        id: String,
    },
    /// A service was created or updated.
    ServiceWritten {
        /// The service's ID.
        id: String,
        /// Its new version.
        version: u64,
    },
    /// A service was removed.
    ServiceRemoved {
        /// The service's ID.
        id: String,
    },
    /// Tasks changed.
    TasksWritten {
        /// How many tasks were created, changed or deleted.
        count: usize,
    },
}
