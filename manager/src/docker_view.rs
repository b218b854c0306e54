//! The cluster state as the Docker Engine API shows it (`shoal_api::docker`):
//! names, enums and times converted, leadership filled in from Raft.

use shoal_api::docker;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::state::{self, Cluster, ClusterState, Node};

/// RFC 3339 text of a Unix-milliseconds time, as Docker prints times.
#[must_use]
pub fn rfc3339(unix_ms: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// A node of `state`, with `leader_raft_id` marking the Raft leader.
#[must_use]
pub fn node(state: &ClusterState, node: &Node, leader_raft_id: Option<u64>) -> docker::Node {
    let trust_root = state
        .cluster
        .as_ref()
        .map_or("", |c| c.root_ca.cert_pem.as_str());
    docker::Node {
        id: node.id.clone(),
        version: docker::ObjectVersion {
            index: node.version,
        },
        created_at: rfc3339(node.created_at_ms),
        updated_at: rfc3339(node.updated_at_ms),
        spec: docker::NodeSpec {
            name: node.spec.name.clone(),
            labels: node.spec.labels.clone(),
            role: node.spec.role.as_str().to_owned(),
            availability: node.spec.availability.as_str().to_owned(),
        },
        description: docker::NodeDescription {
            hostname: node.description.hostname.clone(),
            platform: docker::Platform {
                architecture: node.description.platform.architecture.clone(),
                os: node.description.platform.os.clone(),
            },
            engine: docker::EngineDescription {
                engine_version: node.description.engine_version.clone(),
                labels: std::collections::BTreeMap::new(),
            },
            tls_info: docker::TlsInfo {
                trust_root: trust_root.to_owned(),
                ..docker::TlsInfo::default()
            },
        },
        status: docker::NodeStatus {
            state: node.status.state.as_str().to_owned(),
            message: node.status.message.clone(),
            addr: node.status.addr.clone(),
        },
        manager_status: node.manager.as_ref().map(|m| docker::ManagerStatus {
            leader: Some(m.raft_id) == leader_raft_id,
            reachability: m.reachability.as_str().to_owned(),
            addr: m.addr.clone(),
        }),
    }
}

/// The swarm, with its join tokens.
#[must_use]
pub fn swarm(cluster: &Cluster) -> docker::Swarm {
    let spec = &cluster.spec;
    docker::Swarm {
        id: cluster.id.clone(),
        version: docker::ObjectVersion {
            index: cluster.version,
        },
        created_at: rfc3339(cluster.created_at_ms),
        updated_at: rfc3339(cluster.updated_at_ms),
        spec: docker::SwarmSpec {
            name: spec.name.clone(),
            labels: spec.labels.clone(),
            orchestration: Some(docker::Orchestration {
                task_history_retention_limit: Some(spec.task_history_retention_limit),
            }),
            raft: Some(docker::RaftSettings {
                snapshot_interval: Some(spec.raft.snapshot_interval),
                keep_old_snapshots: Some(spec.raft.keep_old_snapshots),
                log_entries_for_slow_followers: Some(spec.raft.log_entries_for_slow_followers),
                election_tick: Some(u64::from(spec.raft.election_tick)),
                heartbeat_tick: Some(u64::from(spec.raft.heartbeat_tick)),
            }),
            dispatcher: Some(docker::Dispatcher {
                heartbeat_period: Some(spec.dispatcher.heartbeat_period_ms * 1_000_000),
            }),
            ca_config: Some(docker::CaConfig {
                node_cert_expiry: Some(spec.ca_config.node_cert_expiry_ms * 1_000_000),
                ..docker::CaConfig::default()
            }),
            encryption_config: Some(docker::EncryptionConfig::default()),
            task_defaults: None,
        },
        tls_info: docker::TlsInfo {
            trust_root: cluster.root_ca.cert_pem.clone(),
            ..docker::TlsInfo::default()
        },
        root_rotation_in_progress: false,
        data_path_port: u32::from(cluster.data_path_port),
        default_addr_pool: cluster.default_addr_pool.clone(),
        subnet_size: u32::from(cluster.subnet_size),
        join_tokens: docker::JoinTokens {
            worker: cluster.join_tokens.worker.clone(),
            manager: cluster.join_tokens.manager.clone(),
        },
    }
}

/// Applies what a Docker `SwarmSpec` sets onto `base` (absent fields keep
/// `base`'s values; Docker durations are nanoseconds). Options shoal does not
/// support are refused rather than ignored.
pub fn swarm_spec_from_docker(
    spec: &docker::SwarmSpec,
    mut base: state::SwarmSpec,
) -> Result<state::SwarmSpec, String> {
    if !spec.name.is_empty() {
        base.name.clone_from(&spec.name);
    }
    if !spec.labels.is_empty() {
        base.labels.clone_from(&spec.labels);
    }
    if let Some(limit) = spec
        .orchestration
        .as_ref()
        .and_then(|o| o.task_history_retention_limit)
    {
        base.task_history_retention_limit = limit;
    }
    if let Some(raft) = &spec.raft {
        let tick = |v: Option<u64>, what: &str| -> Result<Option<u32>, String> {
            v.filter(|&t| t != 0)
                .map(|t| u32::try_from(t).map_err(|_| format!("{what} {t} is out of range")))
                .transpose()
        };
        if let Some(t) = tick(raft.election_tick, "election tick")? {
            base.raft.election_tick = t;
        }
        if let Some(t) = tick(raft.heartbeat_tick, "heartbeat tick")? {
            base.raft.heartbeat_tick = t;
        }
        if let Some(v) = raft.snapshot_interval.filter(|&v| v != 0) {
            base.raft.snapshot_interval = v;
        }
        if let Some(v) = raft.keep_old_snapshots {
            base.raft.keep_old_snapshots = v;
        }
        if let Some(v) = raft.log_entries_for_slow_followers.filter(|&v| v != 0) {
            base.raft.log_entries_for_slow_followers = v;
        }
    }
    if let Some(ns) = spec
        .dispatcher
        .as_ref()
        .and_then(|d| d.heartbeat_period)
        .filter(|&ns| ns != 0)
    {
        base.dispatcher.heartbeat_period_ms = ns / 1_000_000;
    }
    if let Some(ca) = &spec.ca_config {
        if ca.external_cas.as_ref().is_some_and(|v| !v.is_empty()) {
            return Err("external CAs are not supported: shoal runs its own CA".into());
        }
        if let Some(ns) = ca.node_cert_expiry.filter(|&ns| ns != 0) {
            base.ca_config.node_cert_expiry_ms = ns / 1_000_000;
        }
    }
    if spec
        .encryption_config
        .as_ref()
        .is_some_and(|e| e.auto_lock_managers)
    {
        return Err("autolock is not supported yet".into());
    }
    state::validate::swarm_spec("Spec", &base).map_err(|e| e.to_string())?;
    Ok(base)
}
