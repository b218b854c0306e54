//! The swarm subset of the Docker Engine API's JSON, field for field as
//! `reference/docker-engine-api-v1.56.yaml` defines it (Pascal-case names,
//! durations in nanoseconds, times as RFC 3339 text). Unknown fields are
//! ignored on input and absent ones default, as Docker's server does.
//!
//! The swarm, nodes and `/info` are here; the service and task documents
//! in `docker/services.rs`, the network documents in `docker/networks.rs`,
//! all re-exported here. The specs users send (`ServiceSpec`, `NetworkSpec`) live in
//! [`crate::service`] and [`crate::network`].

mod images;
mod networks;
mod services;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use self::{
    images::{ImageConfig, ImageInspect, RootFs},
    networks::{
        ConfigReference, EndpointResource, Network, NetworkCreateResponse, NetworkIpam, PeerInfo,
    },
    services::{
        AttachedNetwork, ContainerStatus, Endpoint, EndpointVirtualIp, NetworkAttachment,
        PortStatus, Service, ServiceCreateResponse, ServiceStatus, ServiceUpdateResponse, Task,
        TaskStatus, UpdateStatus,
    },
};

pub(crate) use crate::go_json::{is_default, nullable};

/// `{"message": "..."}`, the body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error, phrased for a person.
    pub message: String,
}

/// An object's version; updates must quote the version they read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ObjectVersion {
    /// Raft index of the object's last change.
    pub index: u64,
}

/// `POST /swarm/init` body.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmInitRequest {
    /// `addr:port` to serve the managers' gRPC on (default `0.0.0.0:2377`).
    pub listen_addr: String,
    /// Address other nodes reach this one at (`addr` or `addr:port`).
    pub advertise_addr: String,
    /// Address for data traffic (overlay), default the advertise address.
    pub data_path_addr: String,
    /// UDP port for VXLAN (default 4789).
    pub data_path_port: u32,
    /// Pools overlay subnets are allocated from (CIDRs).
    #[serde(deserialize_with = "nullable")]
    pub default_addr_pool: Vec<String>,
    /// Not supported (refused when true).
    pub force_new_cluster: bool,
    /// Prefix length of allocated subnets (default 24).
    pub subnet_size: u32,
    /// Initial swarm settings.
    #[serde(deserialize_with = "nullable")]
    pub spec: SwarmSpec,
}

/// `POST /swarm/join` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmJoinRequest {
    /// `addr:port` to serve gRPC on when the node is a manager.
    pub listen_addr: String,
    /// Address other nodes reach this one at.
    pub advertise_addr: String,
    /// Address for data traffic.
    pub data_path_addr: String,
    /// Managers already in the swarm (`addr:port`).
    #[serde(deserialize_with = "nullable")]
    pub remote_addrs: Vec<String>,
    /// `SWMTKN-1-…`.
    pub join_token: String,
}

/// Swarm-wide settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmSpec {
    /// Name of the swarm (`default`).
    pub name: String,
    /// User labels.
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// Orchestration settings.
    pub orchestration: Option<Orchestration>,
    /// Raft settings.
    pub raft: Option<RaftSettings>,
    /// Dispatcher settings.
    pub dispatcher: Option<Dispatcher>,
    /// CA settings.
    #[serde(rename = "CAConfig")]
    pub ca_config: Option<CaConfig>,
    /// Encryption settings.
    pub encryption_config: Option<EncryptionConfig>,
    /// Defaults for tasks.
    pub task_defaults: Option<serde_json::Value>,
    /// shoal's addition: the range published ports without a number are
    /// given from, `START-END` (default `30000-32767`, as Docker's fixed
    /// range). Set at `swarm init` (`--published-port-range`); the docker
    /// CLI ignores the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_port_range: Option<String>,
}

/// `SwarmSpec.Orchestration`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Orchestration {
    /// Tasks kept per slot in history.
    pub task_history_retention_limit: Option<i64>,
}

/// `SwarmSpec.Raft`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RaftSettings {
    /// Log entries between snapshots.
    pub snapshot_interval: Option<u64>,
    /// Snapshots kept.
    pub keep_old_snapshots: Option<u64>,
    /// Entries kept for slow followers after a snapshot.
    pub log_entries_for_slow_followers: Option<u64>,
    /// Ticks without a leader before an election.
    pub election_tick: Option<u64>,
    /// Ticks between leader heartbeats.
    pub heartbeat_tick: Option<u64>,
}

/// `SwarmSpec.Dispatcher`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Dispatcher {
    /// Agent heartbeat period, nanoseconds.
    pub heartbeat_period: Option<u64>,
}

/// `SwarmSpec.CAConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CaConfig {
    /// Node certificate lifetime, nanoseconds.
    pub node_cert_expiry: Option<u64>,
    /// External CAs (not supported: refused when set).
    #[serde(rename = "ExternalCAs")]
    pub external_cas: Option<Vec<serde_json::Value>>,
    /// Force a CA rotation counter.
    pub force_rotate: Option<u64>,
}

/// `SwarmSpec.EncryptionConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EncryptionConfig {
    /// Lock managers with a key at restart.
    pub auto_lock_managers: bool,
}

/// `GET /swarm`: the cluster and its join tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Swarm {
    /// Cluster ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Version, for `POST /swarm/update?version=`.
    #[serde(deserialize_with = "nullable")]
    pub version: ObjectVersion,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// Settings.
    #[serde(deserialize_with = "nullable")]
    pub spec: SwarmSpec,
    /// The CA.
    #[serde(rename = "TLSInfo")]
    #[serde(deserialize_with = "nullable")]
    pub tls_info: TlsInfo,
    /// A CA rotation is in progress.
    pub root_rotation_in_progress: bool,
    /// VXLAN UDP port.
    pub data_path_port: u32,
    /// Overlay address pools.
    #[serde(deserialize_with = "nullable")]
    pub default_addr_pool: Vec<String>,
    /// Overlay subnet prefix length.
    pub subnet_size: u32,
    /// Join tokens (managers only).
    #[serde(deserialize_with = "nullable")]
    pub join_tokens: JoinTokens,
}

/// The worker and manager join tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JoinTokens {
    /// Token joining as a worker.
    pub worker: String,
    /// Token joining as a manager.
    pub manager: String,
}

/// The CA a certificate chains to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TlsInfo {
    /// PEM of the root CA.
    pub trust_root: String,
    /// Base64 DER of the issuer's subject.
    pub cert_issuer_subject: String,
    /// Base64 DER of the issuer's public key.
    pub cert_issuer_public_key: String,
}

/// `GET /nodes` item and `GET /nodes/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Node {
    /// Node ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Version, for `POST /nodes/{id}/update?version=`.
    #[serde(deserialize_with = "nullable")]
    pub version: ObjectVersion,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// What the user set.
    #[serde(deserialize_with = "nullable")]
    pub spec: NodeSpec,
    /// What the node reported.
    #[serde(deserialize_with = "nullable")]
    pub description: NodeDescription,
    /// Liveness as the managers see it.
    #[serde(deserialize_with = "nullable")]
    pub status: NodeStatus,
    /// Present for managers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager_status: Option<ManagerStatus>,
}

/// `NodeSpec`, the body of `POST /nodes/{id}/update`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeSpec {
    /// User-given name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// User labels.
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// `worker` or `manager`.
    pub role: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
}

/// What a node reported about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeDescription {
    /// Host name.
    pub hostname: String,
    /// OS and architecture.
    #[serde(deserialize_with = "nullable")]
    pub platform: Platform,
    /// Engine.
    #[serde(deserialize_with = "nullable")]
    pub engine: EngineDescription,
    /// The node's CA.
    #[serde(rename = "TLSInfo")]
    #[serde(deserialize_with = "nullable")]
    pub tls_info: TlsInfo,
}

/// OS and CPU architecture.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Platform {
    /// e.g. `x86_64`.
    pub architecture: String,
    /// e.g. `linux`.
    #[serde(rename = "OS")]
    pub os: String,
}

/// The engine a node runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EngineDescription {
    /// shoald's version.
    pub engine_version: String,
    /// Engine labels.
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
}

/// `Node.Status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeStatus {
    /// `unknown`, `down`, `ready` or `disconnected`.
    pub state: String,
    /// Why, when not ready.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The node's address as the managers see it.
    pub addr: String,
}

/// `Node.ManagerStatus`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ManagerStatus {
    /// This manager leads Raft.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub leader: bool,
    /// `unknown`, `unreachable` or `reachable`.
    pub reachability: String,
    /// `addr:port` of its Raft/gRPC endpoint.
    pub addr: String,
}

/// `GET /info`'s `Swarm` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SwarmInfo {
    /// This node's ID (empty outside a swarm).
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// This node's address.
    pub node_addr: String,
    /// `inactive`, `pending`, `active`, `error` or `locked`.
    pub local_node_state: String,
    /// This node is a manager.
    pub control_available: bool,
    /// Last error.
    pub error: String,
    /// Known managers.
    pub remote_managers: Option<Vec<PeerNode>>,
    /// Node count (managers only).
    pub nodes: Option<u64>,
    /// Manager count (managers only).
    pub managers: Option<u64>,
    /// The cluster (managers only).
    pub cluster: Option<Swarm>,
}

/// A manager as `/info` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PeerNode {
    /// Node ID.
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// `addr:port`.
    pub addr: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_json_uses_dockers_names() {
        let node = Node {
            id: "abc".into(),
            manager_status: Some(ManagerStatus {
                leader: true,
                reachability: "reachable".into(),
                addr: "198.18.0.1:2377".into(),
            }),
            ..Node::default()
        };
        let json = serde_json::to_value(&node).expect("serialize");
        assert_eq!(json["ID"], "abc");
        assert_eq!(json["Version"]["Index"], 0);
        assert_eq!(json["ManagerStatus"]["Leader"], true);
        assert!(json["Description"]["TLSInfo"].is_object());
    }

    #[test]
    fn docker_cli_bodies_parse() {
        // What docker 28 sends for `docker swarm init --advertise-addr 198.18.0.1`.
        let init: SwarmInitRequest = serde_json::from_str(
            r#"{"ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"198.18.0.1","DataPathAddr":"","DataPathPort":0,"DefaultAddrPool":null,"ForceNewCluster":false,"SubnetSize":0,"Spec":{"Labels":null,"Orchestration":{},"Raft":{"ElectionTick":0,"HeartbeatTick":0},"Dispatcher":{},"CAConfig":{},"TaskDefaults":{},"EncryptionConfig":{"AutoLockManagers":false}},"AutoLockManagers":false,"Availability":"active"}"#,
        )
        .expect("init body");
        assert_eq!(init.advertise_addr, "198.18.0.1");
        assert_eq!(init.listen_addr, "0.0.0.0:2377");
    }
}
