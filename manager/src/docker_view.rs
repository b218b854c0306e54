//! The cluster state as the Docker Engine API shows it (`shoal_api::docker`):
//! names, enums and times converted, leadership filled in from Raft;
//! services keep the spec the user sent, with their task counts.

use shoal_api::docker;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use shoal_api::service::TaskState;

use crate::state::{self, Cluster, ClusterState, Network, Node, Service, Task};

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
            published_port_range: Some(spec.published_port_range.to_string()),
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
    if let Some(range) = &spec.published_port_range {
        base.published_port_range = range.parse()?;
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

/// Running, desired and completed task counts of a service (Docker's
/// `ServiceStatus`, what `docker service ls` shows as REPLICAS). A global
/// service desires one task per node that may run it.
#[must_use]
pub fn service_status(state: &ClusterState, service: &Service) -> serde_json::Value {
    let tasks: Vec<_> = state.service_tasks(&service.id).collect();
    let running = tasks
        .iter()
        .filter(|t| {
            t.status.state == TaskState::Running
                && t.desired_state == TaskState::Running
                && state
                    .nodes
                    .get(&t.node_id)
                    .is_some_and(|n| n.status.state != state::NodeState::Down)
        })
        .count();
    let completed = tasks
        .iter()
        .filter(|t| t.status.state == TaskState::Complete)
        .count();
    let desired = match service.spec.mode.replicas() {
        Some(replicas) => usize::try_from(replicas).unwrap_or(usize::MAX),
        None => tasks
            .iter()
            .filter(|t| t.desired_state <= TaskState::Running)
            .count(),
    };
    serde_json::json!({
        "RunningTasks": running,
        "DesiredTasks": desired,
        "CompletedTasks": completed,
    })
}

/// A service as `GET /services/{id}` shows it; with its status when asked.
/// `Endpoint` has the spec as sent, the resolved ports (`Ports`, when it
/// publishes any) and the virtual IPs, the ingress network's first, as
/// Docker lists them.
#[must_use]
pub fn service(state: &ClusterState, service: &Service, with_status: bool) -> serde_json::Value {
    let mut endpoint = serde_json::json!({
        "Spec": service.spec.endpoint_spec.clone().unwrap_or_default(),
    });
    if !service.ports.is_empty() {
        endpoint["Ports"] = serde_json::json!(service.ports);
    }
    let ingress = state.ingress_network().map(|n| n.id.as_str());
    let mut vips: Vec<(&String, &std::net::Ipv4Addr)> = service.virtual_ips.iter().collect();
    vips.sort_by_key(|(network, _)| Some(network.as_str()) != ingress);
    if !vips.is_empty() {
        endpoint["VirtualIPs"] = vips
            .into_iter()
            .map(|(network, addr)| {
                serde_json::json!({
                    "NetworkID": network,
                    "Addr": with_prefix(state, network, *addr),
                })
            })
            .collect();
    }
    let mut value = serde_json::json!({
        "ID": service.id,
        "Version": {"Index": service.version},
        "CreatedAt": rfc3339(service.created_at_ms),
        "UpdatedAt": rfc3339(service.updated_at_ms),
        "Spec": service.spec,
        "Endpoint": endpoint,
    });
    if let Some(previous) = &service.previous_spec {
        value["PreviousSpec"] = serde_json::json!(previous);
    }
    if with_status {
        value["ServiceStatus"] = service_status(state, service);
    }
    value
}

/// A task as `GET /tasks` shows it, with its addresses on its networks.
#[must_use]
pub fn task(state: &ClusterState, task: &Task) -> serde_json::Value {
    let status = &task.status;
    let mut container = serde_json::json!({
        "ContainerID": status.container_id,
        "PID": status.pid,
    });
    if let Some(code) = status.exit_code {
        container["ExitCode"] = serde_json::json!(code);
    }
    let mut value = serde_json::json!({
        "ID": task.id,
        "Version": {"Index": task.version},
        "CreatedAt": rfc3339(task.created_at_ms),
        "UpdatedAt": rfc3339(task.updated_at_ms),
        "Labels": {},
        "Spec": task.spec,
        "ServiceID": task.service_id,
        "NodeID": task.node_id,
        "Status": {
            "Timestamp": rfc3339(status.timestamp_ms),
            "State": status.state.as_str(),
            "Message": status.message,
            "ContainerStatus": container,
        },
        "DesiredState": task.desired_state.as_str(),
    });
    if task.slot > 0 {
        value["Slot"] = serde_json::json!(task.slot);
    }
    if !task.addresses.is_empty() {
        // The ingress network first, as Docker lists it.
        let ingress = state.ingress_network().map(|n| n.id.as_str());
        let mut addresses: Vec<_> = task.addresses.iter().collect();
        addresses.sort_by_key(|(network, _)| Some(network.as_str()) != ingress);
        value["NetworksAttachments"] = addresses
            .into_iter()
            .map(|(id, addr)| {
                serde_json::json!({
                    "Network": state.networks.get(id).map_or_else(
                        || serde_json::json!({"ID": id}),
                        |n| serde_json::json!({"ID": id, "Spec": n.spec}),
                    ),
                    "Addresses": [with_prefix(state, id, *addr)],
                })
            })
            .collect();
    }
    if !status.err.is_empty() {
        value["Status"]["Err"] = serde_json::json!(status.err);
    }
    // The ports a running task publishes on its node (`host` mode), what
    // `docker service ps` shows as PORTS.
    let host_ports: Vec<_> = state
        .services
        .get(&task.service_id)
        .filter(|_| status.state == TaskState::Running)
        .map(|s| s.ports.iter().filter(|p| p.is_host_mode()).collect())
        .unwrap_or_default();
    if !host_ports.is_empty() {
        value["Status"]["PortStatus"] = serde_json::json!({"Ports": host_ports});
    }
    value
}

/// A network as `GET /networks/{id}` shows it (swarm scope, overlay).
#[must_use]
pub fn network(network: &Network) -> serde_json::Value {
    let mut options = network.spec.options.clone();
    options.insert(
        "com.docker.network.driver.overlay.vxlanid_list".to_owned(),
        network.vni.to_string(),
    );
    serde_json::json!({
        "Name": network.spec.name,
        "Id": network.id,
        "Created": rfc3339(network.created_at_ms),
        "Scope": "swarm",
        "Driver": network.spec.driver,
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": null,
            "Config": [{"Subnet": network.subnet, "Gateway": network.gateway.to_string()}],
        },
        "Internal": network.spec.internal,
        "Attachable": network.spec.attachable,
        "Ingress": network.spec.ingress,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": {},
        "Options": options,
        "Labels": network.spec.labels,
    })
}

/// `addr/prefix` of `addr` on `network`, as Docker shows endpoint
/// addresses.
fn with_prefix(state: &ClusterState, network_id: &str, addr: std::net::Ipv4Addr) -> String {
    let prefix = state
        .networks
        .get(network_id)
        .and_then(|n| n.subnet.split_once('/').map(|(_, len)| len.to_owned()))
        .unwrap_or_else(|| "32".to_owned());
    format!("{addr}/{prefix}")
}
