//! The cluster state as the Docker Engine API shows it (`shoal_api::docker`):
//! names, enums and times converted, leadership filled in from Raft;
//! services keep the spec the user sent, with their task counts.

use std::collections::BTreeMap;

use shoal_api::{docker, network::IpamConfig, service::TaskState};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

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
                labels: BTreeMap::new(),
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
pub fn service_status(state: &ClusterState, service: &Service) -> docker::ServiceStatus {
    let tasks: Vec<_> = state.service_tasks(&service.id).collect();
    let count = |keep: &dyn Fn(&Task) -> bool| {
        u64::try_from(tasks.iter().filter(|t| keep(t)).count()).unwrap_or(u64::MAX)
    };
    docker::ServiceStatus {
        running_tasks: count(&|t| {
            t.status.state == TaskState::Running
                && t.desired_state == TaskState::Running
                && state
                    .nodes
                    .get(&t.node_id)
                    .is_some_and(|n| n.status.state != state::NodeState::Down)
        }),
        desired_tasks: service
            .spec
            .mode
            .replicas()
            .unwrap_or_else(|| count(&|t| t.desired_state <= TaskState::Running)),
        completed_tasks: count(&|t| t.status.state == TaskState::Complete),
    }
}

/// A service as `GET /services/{id}` shows it; with its status when asked.
/// `Endpoint` has the spec as sent, the resolved ports (`Ports`, when it
/// publishes any) and the virtual IPs, the ingress network's first, as
/// Docker lists them.
#[must_use]
pub fn service(state: &ClusterState, service: &Service, with_status: bool) -> docker::Service {
    docker::Service {
        id: service.id.clone(),
        version: docker::ObjectVersion {
            index: service.version,
        },
        created_at: rfc3339(service.created_at_ms),
        updated_at: rfc3339(service.updated_at_ms),
        spec: service.spec.clone(),
        previous_spec: service.previous_spec.clone(),
        endpoint: docker::Endpoint {
            spec: service.spec.endpoint_spec.clone().unwrap_or_default(),
            ports: service.ports.clone(),
            virtual_ips: ingress_first(state, &service.virtual_ips)
                .map(|(network, addr)| docker::EndpointVirtualIp {
                    network_id: network.clone(),
                    addr: with_prefix(state, network, *addr),
                })
                .collect(),
        },
        update_status: None,
        service_status: with_status.then(|| service_status(state, service)),
        mesh_counters: Vec::new(),
    }
}

/// A task as `GET /tasks` shows it, with its addresses on its networks.
#[must_use]
pub fn task(state: &ClusterState, task: &Task) -> docker::Task {
    let status = &task.status;
    // The ports a running task publishes on its node (`host` mode), what
    // `docker service ps` shows as PORTS.
    let host_ports: Vec<_> = state
        .services
        .get(&task.service_id)
        .filter(|_| status.state == TaskState::Running)
        .map(|s| {
            s.ports
                .iter()
                .filter(|p| p.is_host_mode())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    docker::Task {
        id: task.id.clone(),
        version: docker::ObjectVersion {
            index: task.version,
        },
        created_at: rfc3339(task.created_at_ms),
        updated_at: rfc3339(task.updated_at_ms),
        name: String::new(),
        labels: BTreeMap::new(),
        spec: task.spec.clone(),
        service_id: task.service_id.clone(),
        slot: task.slot,
        node_id: task.node_id.clone(),
        status: docker::TaskStatus {
            timestamp: rfc3339(status.timestamp_ms),
            state: status.state,
            message: status.message.clone(),
            err: status.err.clone(),
            container_status: docker::ContainerStatus {
                container_id: status.container_id.clone(),
                pid: status.pid,
                exit_code: status.exit_code,
            },
            port_status: (!host_ports.is_empty())
                .then_some(docker::PortStatus { ports: host_ports }),
        },
        desired_state: task.desired_state,
        networks_attachments: ingress_first(state, &task.addresses)
            .map(|(id, addr)| docker::NetworkAttachment {
                network: docker::AttachedNetwork {
                    id: id.clone(),
                    spec: state.networks.get(id).map(|n| n.spec.clone()),
                },
                addresses: vec![with_prefix(state, id, *addr)],
            })
            .collect(),
    }
}

/// A network as `GET /networks/{id}` shows it (swarm scope, overlay).
#[must_use]
pub fn network(network: &Network) -> docker::Network {
    let mut options = network.spec.options.clone();
    options.insert(
        "com.docker.network.driver.overlay.vxlanid_list".to_owned(),
        network.vni.to_string(),
    );
    docker::Network {
        name: network.spec.name.clone(),
        id: network.id.clone(),
        created: rfc3339(network.created_at_ms),
        scope: "swarm".to_owned(),
        driver: network.spec.driver.clone(),
        enable_ipv4: true,
        enable_ipv6: false,
        ipam: docker::NetworkIpam {
            driver: "default".to_owned(),
            options: None,
            config: vec![IpamConfig {
                subnet: network.subnet.clone(),
                gateway: network.gateway.to_string(),
            }],
        },
        internal: network.spec.internal,
        attachable: network.spec.attachable,
        ingress: network.spec.ingress,
        config_from: docker::ConfigReference::default(),
        config_only: false,
        containers: BTreeMap::new(),
        options,
        labels: network.spec.labels.clone(),
        peers: Vec::new(),
    }
}

/// The entries of a by-network-ID map, the ingress network's first, then
/// by ID, as Docker lists a service's VIPs and a task's attachments.
fn ingress_first<'a, T>(
    state: &ClusterState,
    by_network: &'a BTreeMap<String, T>,
) -> impl Iterator<Item = (&'a String, &'a T)> {
    let ingress = state.ingress_network().map(|n| n.id.as_str());
    let mut entries: Vec<_> = by_network.iter().collect();
    entries.sort_by_key(|(network, _)| Some(network.as_str()) != ingress);
    entries.into_iter()
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

#[cfg(test)]
mod tests {
    //! The views serialize to exactly the JSON shoald has always served
    //! (the expected documents are what the `json!`-built views produced).

    use std::net::Ipv4Addr;

    use serde_json::json;
    use shoal_api::{
        network::NetworkSpec,
        service::{PortConfig, ServiceMode, ServiceSpec, TaskStatus},
    };

    use super::*;
    use crate::state::{
        NodeState,
        test_support::{node_with, service_with},
    };

    /// 2023-11-14T22:13:20.123Z.
    const T0_MS: u64 = 1_700_000_000_123;

    fn overlay(id: &str, name: &str, subnet: &str, gateway: [u8; 4], ingress: bool) -> Network {
        let spec: NetworkSpec = serde_json::from_value(json!({
            "Name": name, "Driver": "overlay", "Ingress": ingress,
            "Options": {"com.docker.network.driver.mtu": "1400"},
            "Labels": {"tier": "back"},
            "IPAM": {"Driver": "default", "Config": [{"Subnet": subnet}]},
        }))
        .expect("network spec");
        Network {
            id: id.to_owned(),
            version: 3,
            created_at_ms: T0_MS,
            spec,
            subnet: subnet.to_owned(),
            gateway: Ipv4Addr::from(gateway),
            vni: 4097,
        }
    }

    /// A swarm with the ingress network, a `back` network, two nodes (one
    /// down), a `web` service publishing an ingress and a host port, with
    /// VIPs on both networks and an update config, and three of its tasks.
    fn state() -> ClusterState {
        let mut state = ClusterState::default();
        for network in [
            overlay("ingressid", "ingress", "10.0.0.0/24", [10, 0, 0, 1], true),
            overlay("backid", "back", "10.1.0.0/16", [10, 1, 0, 1], false),
        ] {
            state.networks.insert(network.id.clone(), network);
        }
        state
            .nodes
            .insert("n1".into(), node_with("n1", "node-1", &[]));
        let mut down = node_with("n2", "node-2", &[]);
        down.status.state = NodeState::Down;
        state.nodes.insert("n2".into(), down);

        let mut web = service_with("svc1", "web", ServiceMode::default());
        web.spec = serde_json::from_value(json!({
            "Name": "web",
            "Labels": {"tier": "front"},
            "TaskTemplate": {"ContainerSpec": {"Image": "whoami:latest"}},
            "Mode": {"Replicated": {"Replicas": 3}},
            "UpdateConfig": {"Parallelism": 2, "FailureAction": "pause",
                             "Monitor": 5_000_000_000_i64, "MaxFailureRatio": 0,
                             "Order": "stop-first"},
            "RollbackConfig": {"Parallelism": 1, "MaxFailureRatio": 0.25},
            "EndpointSpec": {"Mode": "vip", "Ports": [
                {"TargetPort": 80, "PublishedPort": 8080},
                {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "host"}]},
        }))
        .expect("service spec");
        web.version = 12;
        web.created_at_ms = T0_MS;
        web.updated_at_ms = T0_MS + 1_000;
        web.ports = web
            .spec
            .ports()
            .iter()
            .map(PortConfig::with_defaults)
            .collect();
        web.virtual_ips = [
            ("backid".to_owned(), Ipv4Addr::new(10, 1, 0, 2)),
            ("ingressid".to_owned(), Ipv4Addr::new(10, 0, 0, 2)),
        ]
        .into();
        let mut previous = web.spec.clone();
        previous.mode = ServiceMode::default();
        web.previous_spec = Some(previous);
        state.services.insert(web.id.clone(), web.clone());

        let task = |id: &str, slot: u64, node: &str, state: TaskState| Task {
            id: id.to_owned(),
            version: 20,
            created_at_ms: T0_MS,
            updated_at_ms: T0_MS + 2_000,
            service_id: web.id.clone(),
            slot,
            node_id: node.to_owned(),
            spec: web.spec.task_template.clone(),
            service_version: web.version,
            desired_state: TaskState::Running,
            status: TaskStatus {
                timestamp_ms: T0_MS + 3_000,
                state,
                message: "started".to_owned(),
                ..TaskStatus::default()
            },
            addresses: BTreeMap::new(),
        };
        let mut running = task("t1", 1, "n1", TaskState::Running);
        running.status.container_id = "c1".to_owned();
        running.status.pid = 4242;
        running.addresses = [
            ("backid".to_owned(), Ipv4Addr::new(10, 1, 0, 5)),
            ("ingressid".to_owned(), Ipv4Addr::new(10, 0, 0, 5)),
            ("goneid".to_owned(), Ipv4Addr::new(10, 9, 0, 5)),
        ]
        .into();
        let mut failed = task("t2", 2, "n1", TaskState::Failed);
        failed.desired_state = TaskState::Shutdown;
        failed.status.err = "task: non-zero exit (3)".to_owned();
        failed.status.exit_code = Some(3);
        let on_down_node = task("t3", 0, "n2", TaskState::Running);
        let complete = task("t4", 3, "n1", TaskState::Complete);
        for task in [running, failed, on_down_node, complete] {
            state.tasks.insert(task.id.clone(), task);
        }
        state
    }

    fn web_spec() -> serde_json::Value {
        json!({
            "Name": "web",
            "Labels": {"tier": "front"},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "whoami:latest", "Labels": {}, "ReadOnly": false},
                "Resources": {"Limits": {"NanoCPUs": 0, "MemoryBytes": 0},
                              "Reservations": {"NanoCPUs": 0, "MemoryBytes": 0}},
                "RestartPolicy": {},
                "Placement": {},
                "ForceUpdate": 0,
            },
            "Mode": {"Replicated": {"Replicas": 3}},
            "EndpointSpec": {"Mode": "vip", "Ports": [
                {"TargetPort": 80, "PublishedPort": 8080},
                {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "host"}]},
            "UpdateConfig": {"Parallelism": 2, "FailureAction": "pause",
                             "Monitor": 5_000_000_000_i64, "MaxFailureRatio": 0,
                             "Order": "stop-first"},
            "RollbackConfig": {"Parallelism": 1, "MaxFailureRatio": 0.25},
        })
    }

    #[test]
    fn service_json_is_dockers() {
        let state = state();
        let web = &state.services["svc1"];
        let mut previous = web_spec();
        previous["Mode"] = json!({"Replicated": {"Replicas": 1}});
        let mut expected = json!({
            "ID": "svc1",
            "Version": {"Index": 12},
            "CreatedAt": "2023-11-14T22:13:20.123Z",
            "UpdatedAt": "2023-11-14T22:13:21.123Z",
            "Spec": web_spec(),
            "PreviousSpec": previous,
            "Endpoint": {
                "Spec": web_spec()["EndpointSpec"],
                "Ports": [
                    {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
                    {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "host"}],
                "VirtualIPs": [
                    {"NetworkID": "ingressid", "Addr": "10.0.0.2/24"},
                    {"NetworkID": "backid", "Addr": "10.1.0.2/16"}],
            },
        });
        let json =
            |with_status| serde_json::to_value(service(&state, web, with_status)).expect("json");
        assert_eq!(json(false), expected);
        expected["ServiceStatus"] =
            json!({"RunningTasks": 1, "DesiredTasks": 3, "CompletedTasks": 1});
        assert_eq!(json(true), expected);
    }

    #[test]
    fn bare_service_json_omits_what_it_lacks() {
        let mut state = state();
        state.tasks.clear();
        let mut bare = service_with(
            "svc2",
            "bare",
            ServiceMode::Global(shoal_api::service::GlobalService {}),
        );
        bare.spec = serde_json::from_value::<ServiceSpec>(json!({
            "Name": "bare", "TaskTemplate": {"ContainerSpec": {"Image": "whoami:latest"}},
            "Mode": {"Global": {}},
        }))
        .expect("spec");
        let json = serde_json::to_value(service(&state, &bare, true)).expect("json");
        assert_eq!(
            json,
            json!({
                "ID": "svc2",
                "Version": {"Index": 1},
                "CreatedAt": "1970-01-01T00:00:00Z",
                "UpdatedAt": "1970-01-01T00:00:00Z",
                "Spec": {
                    "Name": "bare", "Labels": {},
                    "TaskTemplate": {
                        "ContainerSpec": {"Image": "whoami:latest", "Labels": {}, "ReadOnly": false},
                        "Resources": {"Limits": {"NanoCPUs": 0, "MemoryBytes": 0},
                                      "Reservations": {"NanoCPUs": 0, "MemoryBytes": 0}},
                        "RestartPolicy": {},
                        "Placement": {},
                        "ForceUpdate": 0,
                    },
                    "Mode": {"Global": {}},
                },
                "Endpoint": {"Spec": {}},
                "ServiceStatus": {"RunningTasks": 0, "DesiredTasks": 0, "CompletedTasks": 0},
            })
        );
    }

    #[test]
    fn task_json_is_dockers() {
        let state = state();
        let task_spec = web_spec()["TaskTemplate"].clone();
        let json = |id: &str| serde_json::to_value(task(&state, &state.tasks[id])).expect("json");
        let back_spec = json!({
            "Name": "back", "Driver": "overlay", "Attachable": false, "Internal": false,
            "Ingress": false, "Options": {"com.docker.network.driver.mtu": "1400"},
            "Labels": {"tier": "back"},
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.1.0.0/16"}]},
        });
        let mut ingress_spec = back_spec.clone();
        ingress_spec["Name"] = json!("ingress");
        ingress_spec["Ingress"] = json!(true);
        ingress_spec["IPAM"]["Config"][0]["Subnet"] = json!("10.0.0.0/24");
        assert_eq!(
            json("t1"),
            json!({
                "ID": "t1",
                "Version": {"Index": 20},
                "CreatedAt": "2023-11-14T22:13:20.123Z",
                "UpdatedAt": "2023-11-14T22:13:22.123Z",
                "Labels": {},
                "Spec": task_spec,
                "ServiceID": "svc1",
                "Slot": 1,
                "NodeID": "n1",
                "Status": {
                    "Timestamp": "2023-11-14T22:13:23.123Z",
                    "State": "running",
                    "Message": "started",
                    "ContainerStatus": {"ContainerID": "c1", "PID": 4242},
                    "PortStatus": {"Ports": [
                        {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "host"}]},
                },
                "DesiredState": "running",
                "NetworksAttachments": [
                    {"Network": {"ID": "ingressid", "Spec": ingress_spec}, "Addresses": ["10.0.0.5/24"]},
                    {"Network": {"ID": "backid", "Spec": back_spec}, "Addresses": ["10.1.0.5/16"]},
                    {"Network": {"ID": "goneid"}, "Addresses": ["10.9.0.5/32"]},
                ],
            })
        );
        assert_eq!(
            json("t2"),
            json!({
                "ID": "t2",
                "Version": {"Index": 20},
                "CreatedAt": "2023-11-14T22:13:20.123Z",
                "UpdatedAt": "2023-11-14T22:13:22.123Z",
                "Labels": {},
                "Spec": task_spec,
                "ServiceID": "svc1",
                "Slot": 2,
                "NodeID": "n1",
                "Status": {
                    "Timestamp": "2023-11-14T22:13:23.123Z",
                    "State": "failed",
                    "Message": "started",
                    "Err": "task: non-zero exit (3)",
                    "ContainerStatus": {"ContainerID": "", "PID": 0, "ExitCode": 3},
                },
                "DesiredState": "shutdown",
            })
        );
        let global = json("t3");
        assert!(global.get("Slot").is_none(), "{global}");
        assert_eq!(global["NodeID"], "n2");
    }

    #[test]
    fn network_json_is_dockers() {
        let state = state();
        let json = serde_json::to_value(network(&state.networks["backid"])).expect("json");
        assert_eq!(
            json,
            json!({
                "Name": "back",
                "Id": "backid",
                "Created": "2023-11-14T22:13:20.123Z",
                "Scope": "swarm",
                "Driver": "overlay",
                "EnableIPv4": true,
                "EnableIPv6": false,
                "IPAM": {
                    "Driver": "default",
                    "Options": null,
                    "Config": [{"Subnet": "10.1.0.0/16", "Gateway": "10.1.0.1"}],
                },
                "Internal": false,
                "Attachable": false,
                "Ingress": false,
                "ConfigFrom": {"Network": ""},
                "ConfigOnly": false,
                "Containers": {},
                "Options": {
                    "com.docker.network.driver.mtu": "1400",
                    "com.docker.network.driver.overlay.vxlanid_list": "4097",
                },
                "Labels": {"tier": "back"},
            })
        );
    }
}
