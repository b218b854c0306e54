//! The part of [`super::apply`] that handles services and tasks, under the
//! same contract: deterministic, all-or-nothing (everything is checked before
//! anything changes), versions and times from the [`ApplyMeta`].

use shoal_api::service::{PortConfig, ServiceSpec, TaskState, TaskStatus};

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
};

use crate::ports::{self, Holder, PortError};

use super::{
    ClusterState, apply_networks,
    command::{ApplyMeta, NewTask, Response, TaskChange},
    error::{ObjectRef, Rejected},
    types::{Service, Task},
    validate,
};

type Result<T = Response> = std::result::Result<T, Rejected>;

pub(super) fn create_service(
    state: &mut ClusterState,
    meta: &ApplyMeta,
    id: String,
    spec: ServiceSpec,
) -> Result {
    state.cluster()?;
    validate::id("id", &id)?;
    validate::service_spec("spec", &spec)?;
    if state.services.contains_key(&id) {
        return Err(Rejected::ServiceExists { name: id });
    }
    if state.services.values().any(|s| s.spec.name == spec.name) {
        return Err(Rejected::ServiceExists { name: spec.name });
    }
    let ports = resolve_ports(state, &id, &spec)?;
    let virtual_ips = apply_networks::plan_service_addresses(state, &id, &spec, !ports.is_empty())?;
    state.services.insert(
        id.clone(),
        Service {
            id: id.clone(),
            version: meta.index,
            created_at_ms: meta.now_unix_ms,
            updated_at_ms: meta.now_unix_ms,
            spec,
            previous_spec: None,
            virtual_ips,
            ports,
        },
    );
    Ok(Response::ServiceWritten {
        id,
        version: meta.index,
    })
}

pub(super) fn update_service(
    state: &mut ClusterState,
    meta: &ApplyMeta,
    id: &str,
    expected_version: u64,
    spec: ServiceSpec,
) -> Result {
    validate::service_spec("spec", &spec)?;
    if !state.services.contains_key(id) {
        return Err(Rejected::ServiceNotFound { id: id.to_owned() });
    }
    let ports = resolve_ports(state, id, &spec)?;
    let virtual_ips = apply_networks::plan_service_addresses(state, id, &spec, !ports.is_empty())?;
    let service = state
        .services
        .get_mut(id)
        .ok_or_else(|| Rejected::ServiceNotFound { id: id.to_owned() })?;
    if service.version != expected_version {
        return Err(Rejected::StaleVersion {
            object: ObjectRef::Service(id.to_owned()),
            expected: expected_version,
            actual: service.version,
        });
    }
    if spec.name != service.spec.name {
        return Err(Rejected::invalid(
            "spec.Name",
            "renaming services is not supported",
        ));
    }
    if spec.mode.name() != service.spec.mode.name() {
        return Err(Rejected::invalid(
            "spec.Mode",
            "service mode change is not allowed",
        ));
    }
    let previous = std::mem::replace(&mut service.spec, spec);
    service.previous_spec = Some(previous);
    service.virtual_ips = virtual_ips;
    service.ports = ports;
    service.version = meta.index;
    service.updated_at_ms = meta.now_unix_ms;
    Ok(Response::ServiceWritten {
        id: id.to_owned(),
        version: meta.index,
    })
}

/// The published ports of `spec` for the service `id` (new or updated),
/// resolved against every other service's in the swarm's range (see
/// [`ports::resolve`]).
fn resolve_ports(state: &ClusterState, id: &str, spec: &ServiceSpec) -> Result<Vec<PortConfig>> {
    let cluster = state.cluster()?;
    let wanted = spec.ports();
    let held = state
        .services
        .get(id)
        .map_or(&[][..], |s| s.ports.as_slice());
    let others: Vec<Holder<'_>> = state
        .services
        .values()
        .filter(|s| s.id != id)
        .map(|s| Holder {
            service_id: &s.id,
            service_name: &s.spec.name,
            ports: &s.ports,
        })
        .collect();
    ports::resolve(wanted, held, &others, cluster.spec.published_port_range).map_err(|e| match e {
        PortError::InUse {
            port,
            service_id,
            service_name,
            host_mode,
        } => Rejected::PortInUse {
            port,
            service_name,
            service_id,
            host_mode,
        },
        PortError::Exhausted { range, protocol } => Rejected::Exhausted(format!(
            "could not find an available {protocol} port in the published port range {range}"
        )),
    })
}

pub(super) fn remove_service(state: &mut ClusterState, meta: &ApplyMeta, id: &str) -> Result {
    if state.services.remove(id).is_none() {
        return Err(Rejected::ServiceNotFound { id: id.to_owned() });
    }
    for task in state.tasks.values_mut().filter(|t| t.service_id == id) {
        if task.desired_state < TaskState::Shutdown {
            task.desired_state = TaskState::Shutdown;
            touch(task, meta);
        }
    }
    Ok(Response::ServiceRemoved { id: id.to_owned() })
}

pub(super) fn plan_tasks(
    state: &mut ClusterState,
    meta: &ApplyMeta,
    create: Vec<NewTask>,
    update: Vec<TaskChange>,
    delete: &[String],
) -> Result {
    for (i, new) in create.iter().enumerate() {
        let field = format!("create[{i}]");
        validate::id(&format!("{field}.id"), &new.id)?;
        if state.tasks.contains_key(&new.id) || create[..i].iter().any(|t| t.id == new.id) {
            return Err(Rejected::invalid(
                format!("{field}.id"),
                format!("task {} exists", new.id),
            ));
        }
        if !state.services.contains_key(&new.service_id) {
            return Err(Rejected::ServiceNotFound {
                id: new.service_id.clone(),
            });
        }
        check_node(state, &new.node_id)?;
        validate::text(
            &format!("{field}.message"),
            &new.message,
            validate::MAX_MESSAGE_BYTES,
            true,
        )?;
    }
    for (i, change) in update.iter().enumerate() {
        if !state.tasks.contains_key(&change.id) {
            return Err(Rejected::TaskNotFound {
                id: change.id.clone(),
            });
        }
        if let Some(node) = &change.assign_to {
            check_node(state, node)?;
        }
        if let Some((_, message)) = &change.status {
            validate::text(
                &format!("update[{i}].status"),
                message,
                validate::MAX_MESSAGE_BYTES,
                true,
            )?;
        }
    }
    if let Some(missing) = delete.iter().find(|id| !state.tasks.contains_key(*id)) {
        return Err(Rejected::TaskNotFound {
            id: missing.clone(),
        });
    }

    let count = create.len() + update.len() + delete.len();
    create_tasks(state, meta, create);
    for change in update {
        let Some(task) = state.tasks.get_mut(&change.id) else {
            continue;
        };
        if let Some(desired) = change.desired_state
            && desired > task.desired_state
        {
            task.desired_state = desired;
        }
        if !task.status.state.is_final() {
            if let Some(node) = change.assign_to {
                task.node_id = node;
                set_state(
                    task,
                    meta,
                    TaskState::Assigned,
                    "scheduler assigned task to node",
                );
            }
            if let Some((observed, message)) = change.status {
                set_state(task, meta, observed, &message);
            }
        }
        touch(task, meta);
    }
    for id in delete {
        state.tasks.remove(id);
    }
    Ok(Response::TasksWritten { count })
}

/// Adds the plan's new tasks, each with an address on its service's
/// networks (a task that gets none is rejected with the reason).
fn create_tasks(state: &mut ClusterState, meta: &ApplyMeta, create: Vec<NewTask>) {
    // Addresses given to earlier tasks of this plan, by network.
    let mut taken: BTreeMap<String, BTreeSet<Ipv4Addr>> = BTreeMap::new();
    for new in create {
        let service = &state.services[&new.service_id];
        let networks =
            apply_networks::service_networks(state, &service.spec, service.needs_ingress());
        let (addresses, state_now, message, err) =
            match apply_networks::task_addresses(state, &networks, &taken) {
                Ok(addresses) => (addresses, new.state, new.message, String::new()),
                Err(error) => (
                    BTreeMap::new(),
                    TaskState::Rejected,
                    "address allocation failed".to_owned(),
                    error,
                ),
            };
        for (network, addr) in &addresses {
            taken.entry(network.clone()).or_default().insert(*addr);
        }
        let task = Task {
            id: new.id.clone(),
            version: meta.index,
            created_at_ms: meta.now_unix_ms,
            updated_at_ms: meta.now_unix_ms,
            service_id: new.service_id,
            slot: new.slot,
            node_id: new.node_id,
            spec: service.spec.task_template.clone(),
            service_version: service.version,
            desired_state: TaskState::Running,
            status: TaskStatus {
                timestamp_ms: meta.now_unix_ms,
                state: state_now,
                message,
                err,
                ..TaskStatus::default()
            },
            addresses,
        };
        state.tasks.insert(new.id, task);
    }
}

pub(super) fn report_task_status(
    state: &mut ClusterState,
    meta: &ApplyMeta,
    node_id: &str,
    updates: Vec<(String, TaskStatus)>,
) -> Result {
    for (i, (_, status)) in updates.iter().enumerate() {
        let field = format!("updates[{i}]");
        validate::text(
            &format!("{field}.message"),
            &status.message,
            validate::MAX_MESSAGE_BYTES,
            true,
        )?;
        validate::text(
            &format!("{field}.err"),
            &status.err,
            validate::MAX_MESSAGE_BYTES,
            true,
        )?;
        validate::word(
            &format!("{field}.container_id"),
            &status.container_id,
            validate::MAX_ID_BYTES,
            true,
        )?;
    }
    let mut count = 0;
    for (id, mut status) in updates {
        let Some(task) = state.tasks.get_mut(&id) else {
            continue;
        };
        if task.node_id.is_empty() || task.node_id != node_id || task.status.state.is_final() {
            continue;
        }
        // The timestamp is when the state was entered: the managers' clock
        // for a new state, unchanged when only the details change.
        status.timestamp_ms = if status.state == task.status.state {
            task.status.timestamp_ms
        } else {
            meta.now_unix_ms
        };
        if status.state < task.status.state || status == task.status {
            continue;
        }
        task.status = status;
        touch(task, meta);
        count += 1;
    }
    Ok(Response::TasksWritten { count })
}

/// An assignment's node must exist; empty means "none".
fn check_node(state: &ClusterState, node_id: &str) -> Result<()> {
    if node_id.is_empty() || state.nodes.contains_key(node_id) {
        Ok(())
    } else {
        Err(Rejected::NodeNotFound {
            id: node_id.to_owned(),
        })
    }
}

fn set_state(task: &mut Task, meta: &ApplyMeta, state: TaskState, message: &str) {
    task.status = TaskStatus {
        timestamp_ms: meta.now_unix_ms,
        state,
        message: message.to_owned(),
        ..TaskStatus::default()
    };
}

fn touch(task: &mut Task, meta: &ApplyMeta) {
    task.version = meta.index;
    task.updated_at_ms = meta.now_unix_ms;
}
