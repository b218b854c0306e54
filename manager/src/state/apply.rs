//! [`apply`]: the pure function that turns a committed [`Command`] into a
//! change of the [`ClusterState`].
//!
//! Contract: deterministic (no I/O, clock or randomness: everything comes
//! from the command and the [`ApplyMeta`]); all-or-nothing (each handler
//! validates everything first and mutates only once nothing can fail, so on
//! `Err` the state is exactly as before); every object it changes takes
//! `meta.index` as its version and `meta.now_unix_ms` as its update time.

use std::collections::BTreeMap;

use super::{
    ClusterState, apply_networks, apply_services,
    command::{ApplyMeta, Command, NewNode, Response},
    error::{ObjectRef, Rejected},
    types::{
        Cluster, JoinTokens, ManagerInfo, Node, NodeDescription, NodeResources, NodeRole, NodeSpec,
        NodeState, NodeStatusRecord, Reachability, RootCaRecord, SwarmSpec,
    },
    validate,
};

type Result<T = Response> = std::result::Result<T, Rejected>;

/// Applies `command`, committed at `meta.index`, to `state`.
///
/// Returns what changed, or why the command was refused; on `Err` the state
/// is unchanged. Called by the Raft state machine for every committed entry,
/// in log order, on every manager; unit tests call it directly.
#[tracing::instrument(level = "debug", skip_all, fields(index = meta.index, command = command.kind()))]
pub fn apply(state: &mut ClusterState, meta: &ApplyMeta, command: Command) -> Result {
    let result = match command {
        Command::InitCluster {
            cluster_id,
            spec,
            root_ca,
            join_tokens,
            default_addr_pool,
            subnet_size,
            data_path_port,
            first_node,
        } => init_cluster(
            state,
            meta,
            InitCluster {
                cluster_id,
                spec,
                root_ca,
                join_tokens,
                default_addr_pool,
                subnet_size,
                data_path_port,
                first_node,
            },
        ),
        Command::RegisterNode { node } => register_node(state, meta, node),
        Command::UpdateNodeSpec {
            id,
            expected_version,
            spec,
        } => update_node_spec(state, meta, &id, expected_version, spec),
        Command::SetNodeStatus {
            id,
            state: node_state,
            message,
            addr,
        } => set_node_status(state, meta, &id, node_state, message, addr),
        Command::SetManagerInfo { id, manager } => set_manager_info(state, meta, &id, manager),
        Command::UpdateNodeDescription {
            id,
            hostname,
            platform,
            engine_version,
            tls,
            resources,
        } => update_node_description(
            state,
            meta,
            &id,
            NodeDescription {
                hostname,
                platform,
                engine_version,
                tls,
                resources,
            },
        ),
        Command::RemoveNode { id, force } => remove_node(state, &id, force),
        Command::UpdateCluster {
            expected_version,
            spec,
            rotate_worker_token,
            rotate_manager_token,
        } => update_cluster(
            state,
            meta,
            expected_version,
            spec,
            rotate_worker_token,
            rotate_manager_token,
        ),
        Command::CreateNetwork { id, spec } => {
            apply_networks::create_network(state, meta, id, spec)
        }
        Command::RemoveNetwork { id } => apply_networks::remove_network(state, &id),
        Command::CreateService { id, spec } => {
            apply_services::create_service(state, meta, id, spec)
        }
        Command::UpdateService {
            id,
            expected_version,
            spec,
        } => apply_services::update_service(state, meta, &id, expected_version, spec),
        Command::RemoveService { id } => apply_services::remove_service(state, meta, &id),
        Command::PlanTasks {
            create,
            update,
            delete,
        } => apply_services::plan_tasks(state, meta, create, update, &delete),
        Command::ReportTaskStatus { node_id, updates } => {
            apply_services::report_task_status(state, meta, &node_id, updates)
        }
    };
    match &result {
        Ok(response) => tracing::debug!(?response, "applied"),
        Err(rejected) => tracing::debug!(%rejected, "rejected"),
    }
    result
}

/// The fields of [`Command::InitCluster`].
struct InitCluster {
    cluster_id: String,
    spec: SwarmSpec,
    root_ca: RootCaRecord,
    join_tokens: JoinTokens,
    default_addr_pool: Vec<String>,
    subnet_size: u8,
    data_path_port: u16,
    first_node: NewNode,
}

fn init_cluster(state: &mut ClusterState, meta: &ApplyMeta, init: InitCluster) -> Result {
    if let Some(cluster) = &state.cluster {
        return Err(Rejected::ClusterExists {
            id: cluster.id.clone(),
        });
    }
    validate::id("cluster_id", &init.cluster_id)?;
    validate::swarm_spec("spec", &init.spec)?;
    validate::root_ca("root_ca", &init.root_ca)?;
    validate::join_tokens("join_tokens", &init.join_tokens)?;
    validate::addr_pool(
        "default_addr_pool",
        &init.default_addr_pool,
        "subnet_size",
        init.subnet_size,
    )?;
    validate::data_path_port("data_path_port", init.data_path_port)?;

    let mut first_node = init.first_node;
    first_node.role = NodeRole::Manager;
    first_node.raft_id = Some(first_node.raft_id.unwrap_or(1));
    let manager = check_new_node(state, "first_node", &first_node)?;
    let node = node_record(
        meta,
        first_node,
        NodeState::Ready,
        manager,
        Reachability::Reachable,
    );

    let version = meta.index;
    let node_id = node.id.clone();
    let cluster_id = init.cluster_id;
    state.cluster = Some(Cluster {
        id: cluster_id.clone(),
        version,
        created_at_ms: meta.now_unix_ms,
        updated_at_ms: meta.now_unix_ms,
        spec: init.spec,
        root_ca: init.root_ca,
        join_tokens: init.join_tokens,
        default_addr_pool: init.default_addr_pool,
        subnet_size: init.subnet_size,
        data_path_port: init.data_path_port,
    });
    state.nodes.insert(node_id.clone(), node);
    // The routing mesh's network, as `docker swarm init` creates it.
    let ingress = apply_networks::create_network(
        state,
        meta,
        apply_networks::ingress_network_id(&cluster_id),
        apply_networks::ingress_network_spec(),
    );
    if let Err(rejected) = ingress {
        state.cluster = None;
        state.nodes.remove(&node_id);
        return Err(rejected);
    }
    Ok(Response::ClusterInitialized {
        cluster_id,
        node_id,
        version,
    })
}

fn register_node(state: &mut ClusterState, meta: &ApplyMeta, node: NewNode) -> Result {
    state.cluster()?;
    let manager = check_new_node(state, "node", &node)?;
    let node = node_record(
        meta,
        node,
        NodeState::Unknown,
        manager,
        Reachability::Unknown,
    );
    let id = node.id.clone();
    state.nodes.insert(id.clone(), node);
    Ok(Response::NodeRegistered {
        id,
        version: meta.index,
    })
}

/// Checks a joining node against the state; returns its Raft ID and
/// manager address when it is a manager.
fn check_new_node(
    state: &ClusterState,
    field: &str,
    node: &NewNode,
) -> Result<Option<(u64, String)>> {
    validate::id(&format!("{field}.id"), &node.id)?;
    validate::hostname(&format!("{field}.hostname"), &node.hostname)?;
    validate::platform(&format!("{field}.platform"), &node.platform)?;
    validate::word(
        &format!("{field}.engine_version"),
        &node.engine_version,
        validate::MAX_SHORT_TEXT_BYTES,
        true,
    )?;
    validate::ip_addr(&format!("{field}.addr"), &node.addr)?;
    if let Some(tls) = &node.tls {
        validate::tls(&format!("{field}.tls"), tls)?;
    }
    if state.nodes.contains_key(&node.id) {
        return Err(Rejected::NodeExists {
            id: node.id.clone(),
        });
    }
    if state.removed_nodes.contains(&node.id) {
        return Err(Rejected::NodeRemoved {
            id: node.id.clone(),
        });
    }
    match (node.role, node.raft_id, &node.manager_addr) {
        (NodeRole::Worker, None, None) => Ok(None),
        (NodeRole::Worker, Some(_), _) => Err(Rejected::invalid(
            format!("{field}.raft_id"),
            "a worker has no raft id",
        )),
        (NodeRole::Worker, None, Some(_)) => Err(Rejected::invalid(
            format!("{field}.manager_addr"),
            "a worker has no manager address",
        )),
        (NodeRole::Manager, None, _) => Err(Rejected::invalid(
            format!("{field}.raft_id"),
            "a manager needs a raft id",
        )),
        (NodeRole::Manager, Some(_), None) => Err(Rejected::invalid(
            format!("{field}.manager_addr"),
            "a manager needs an address",
        )),
        (NodeRole::Manager, Some(raft_id), Some(addr)) => {
            validate::raft_id(&format!("{field}.raft_id"), raft_id)?;
            validate::socket_addr(&format!("{field}.manager_addr"), addr)?;
            check_raft_id_free(state, &node.id, raft_id)?;
            Ok(Some((raft_id, addr.clone())))
        }
    }
}

/// Refuses `raft_id` when a node other than `id` is a member with it.
fn check_raft_id_free(state: &ClusterState, id: &str, raft_id: u64) -> Result<()> {
    match state.node_by_raft_id(raft_id) {
        Some(other) if other.id != id => Err(Rejected::RaftIdInUse {
            raft_id,
            node_id: other.id.clone(),
        }),
        _ => Ok(()),
    }
}

/// The node object for a validated joining node.
fn node_record(
    meta: &ApplyMeta,
    node: NewNode,
    state: NodeState,
    manager: Option<(u64, String)>,
    reachability: Reachability,
) -> Node {
    Node {
        id: node.id,
        version: meta.index,
        created_at_ms: meta.now_unix_ms,
        updated_at_ms: meta.now_unix_ms,
        spec: NodeSpec {
            name: String::new(),
            labels: BTreeMap::new(),
            role: node.role,
            availability: node.availability,
        },
        description: NodeDescription {
            hostname: node.hostname,
            platform: node.platform,
            engine_version: node.engine_version,
            tls: node.tls,
            resources: NodeResources::default(),
        },
        status: NodeStatusRecord {
            state,
            message: String::new(),
            addr: node.addr,
        },
        manager: manager.map(|(raft_id, addr)| ManagerInfo {
            raft_id,
            addr,
            reachability,
        }),
    }
}

/// The node `id`, for a command to change.
fn node_mut<'s>(state: &'s mut ClusterState, id: &str) -> Result<&'s mut Node> {
    state
        .nodes
        .get_mut(id)
        .ok_or_else(|| Rejected::NodeNotFound { id: id.to_owned() })
}

/// Marks `node` as changed by the entry at `meta`.
fn touch_node(node: &mut Node, meta: &ApplyMeta) -> Response {
    node.version = meta.index;
    node.updated_at_ms = meta.now_unix_ms;
    Response::NodeUpdated {
        id: node.id.clone(),
        version: meta.index,
    }
}

fn update_node_spec(
    state: &mut ClusterState,
    meta: &ApplyMeta,
    id: &str,
    expected_version: u64,
    spec: NodeSpec,
) -> Result {
    let node = state
        .nodes
        .get(id)
        .ok_or_else(|| Rejected::NodeNotFound { id: id.to_owned() })?;
    if node.version != expected_version {
        return Err(Rejected::StaleVersion {
            object: ObjectRef::Node(id.to_owned()),
            expected: expected_version,
            actual: node.version,
        });
    }
    validate::node_spec("spec", &spec)?;
    if node.spec.role == NodeRole::Manager
        && spec.role == NodeRole::Worker
        && state.manager_count() == 1
    {
        return Err(Rejected::LastManager { id: id.to_owned() });
    }

    let node = node_mut(state, id)?;
    node.spec = spec;
    Ok(touch_node(node, meta))
}

fn set_node_status(
    state: &mut ClusterState,
    meta: &ApplyMeta,
    id: &str,
    node_state: NodeState,
    message: String,
    addr: Option<String>,
) -> Result {
    validate::text("message", &message, validate::MAX_MESSAGE_BYTES, true)?;
    if let Some(addr) = &addr {
        validate::ip_addr("addr", addr)?;
    }
    let node = node_mut(state, id)?;
    node.status.state = node_state;
    node.status.message = message;
    if let Some(addr) = addr {
        node.status.addr = addr;
    }
    Ok(touch_node(node, meta))
}

fn set_manager_info(
    state: &mut ClusterState,
    meta: &ApplyMeta,
    id: &str,
    manager: Option<ManagerInfo>,
) -> Result {
    if !state.nodes.contains_key(id) {
        return Err(Rejected::NodeNotFound { id: id.to_owned() });
    }
    if let Some(manager) = &manager {
        validate::raft_id("manager.raft_id", manager.raft_id)?;
        validate::socket_addr("manager.addr", &manager.addr)?;
        check_raft_id_free(state, id, manager.raft_id)?;
    }
    let node = node_mut(state, id)?;
    node.manager = manager;
    Ok(touch_node(node, meta))
}

fn update_node_description(
    state: &mut ClusterState,
    meta: &ApplyMeta,
    id: &str,
    description: NodeDescription,
) -> Result {
    validate::hostname("hostname", &description.hostname)?;
    validate::platform("platform", &description.platform)?;
    validate::word(
        "engine_version",
        &description.engine_version,
        validate::MAX_SHORT_TEXT_BYTES,
        true,
    )?;
    if let Some(tls) = &description.tls {
        validate::tls("tls", tls)?;
    }
    let node = node_mut(state, id)?;
    node.description = description;
    Ok(touch_node(node, meta))
}

fn remove_node(state: &mut ClusterState, id: &str, force: bool) -> Result {
    let node = state
        .nodes
        .get(id)
        .ok_or_else(|| Rejected::NodeNotFound { id: id.to_owned() })?;
    if node.spec.role == NodeRole::Manager {
        return Err(Rejected::RemoveManager { id: id.to_owned() });
    }
    if node.manager.is_some() {
        return Err(Rejected::DemotionPending { id: id.to_owned() });
    }
    if !force && node.status.state != NodeState::Down {
        return Err(Rejected::NodeNotDown {
            id: id.to_owned(),
            state: node.status.state,
        });
    }
    state.nodes.remove(id);
    state.removed_nodes.insert(id.to_owned());
    Ok(Response::NodeRemoved { id: id.to_owned() })
}

fn update_cluster(
    state: &mut ClusterState,
    meta: &ApplyMeta,
    expected_version: u64,
    spec: SwarmSpec,
    rotate_worker_token: Option<String>,
    rotate_manager_token: Option<String>,
) -> Result {
    let cluster = state.cluster()?;
    if cluster.version != expected_version {
        return Err(Rejected::StaleVersion {
            object: ObjectRef::Cluster(cluster.id.clone()),
            expected: expected_version,
            actual: cluster.version,
        });
    }
    validate::swarm_spec("spec", &spec)?;
    if spec.name != cluster.spec.name {
        return Err(Rejected::invalid(
            "spec.name",
            "modification of cluster name is not allowed",
        ));
    }
    if spec.published_port_range != cluster.spec.published_port_range {
        return Err(Rejected::invalid(
            "spec.published_port_range",
            "the published port range is set at swarm init and cannot change",
        ));
    }
    let join_tokens = JoinTokens {
        worker: rotate_worker_token.unwrap_or_else(|| cluster.join_tokens.worker.clone()),
        manager: rotate_manager_token.unwrap_or_else(|| cluster.join_tokens.manager.clone()),
    };
    validate::join_tokens("join_tokens", &join_tokens)?;

    let cluster = state.cluster.as_mut().ok_or(Rejected::NoCluster)?;
    cluster.spec = spec;
    cluster.join_tokens = join_tokens;
    cluster.version = meta.index;
    cluster.updated_at_ms = meta.now_unix_ms;
    Ok(Response::ClusterUpdated {
        id: cluster.id.clone(),
        version: meta.index,
    })
}
