//! The dispatcher's task side (DESIGN.md §3): what each node is told to run
//! ([`assignments_for`]), where every overlay endpoint lives
//! ([`overlay_endpoints`]) and every service's VIPs ([`service_vips`]);
//! [`MapDiff`] turns successive views into changes (everything first, then
//! only changes and removals) and [`assignments_message`] into the stream's
//! protobuf messages.

use std::collections::BTreeMap;

use shoal_api::{
    grpc::{convert::ConvertError, proto::AssignmentsMessage},
    service::{OverlayEndpoint, ServiceVip, TaskAssignment, TaskNetwork, TaskState},
};

use crate::{
    ipam::Subnet,
    state::{ClusterState, NodeState},
};

/// Every task assigned to `node_id`, by ID, including ended ones (the node
/// keeps their logs until the managers delete them).
#[must_use]
pub fn assignments_for(state: &ClusterState, node_id: &str) -> BTreeMap<String, TaskAssignment> {
    state
        .tasks
        .values()
        .filter(|task| task.node_id == node_id)
        .map(|task| {
            let service_name = state
                .services
                .get(&task.service_id)
                .map_or(task.service_id.as_str(), |s| s.spec.name.as_str());
            let name = if task.slot == 0 {
                format!("{service_name}.{}", task.node_id)
            } else {
                format!("{service_name}.{}", task.slot)
            };
            // The ingress network first (eth0, the default route), then
            // the spec's networks in order.
            let ingress = state.ingress_network().map(|n| n.id.clone());
            let networks = ingress
                .into_iter()
                .chain(task.spec.networks.iter().map(|a| a.target.clone()))
                .filter_map(|id| {
                    let addr = task.addresses.get(&id)?;
                    let network = state.networks.get(&id)?;
                    Some(TaskNetwork {
                        network_id: id.clone(),
                        name: network.spec.name.clone(),
                        vni: network.vni,
                        addr: *addr,
                        prefix_len: Subnet::parse(&network.subnet).ok()?.len,
                        gateway: network.gateway,
                        mtu: network.spec.mtu().ok().flatten(),
                        ingress: network.spec.ingress,
                    })
                })
                .collect();
            let assignment = TaskAssignment {
                id: task.id.clone(),
                service_id: task.service_id.clone(),
                name,
                spec: task.spec.clone(),
                desired_state: task.desired_state,
                status: task.status.clone(),
                networks,
            };
            (task.id.clone(), assignment)
        })
        .collect()
}

/// Every live overlay endpoint of the swarm (a task not ended, with an
/// address and a node), by [`OverlayEndpoint::key`]: what every node's
/// data plane needs to reach tasks on other nodes. A task being stopped
/// (desired shutdown, still running its grace period) stays an endpoint
/// but not `running`: it takes no new flows nor DNS answers while its
/// established flows finish (DESIGN §5, "Draining"), unless its node is
/// down.
#[must_use]
pub fn overlay_endpoints(state: &ClusterState) -> BTreeMap<String, OverlayEndpoint> {
    let mut endpoints = BTreeMap::new();
    for task in state.tasks.values() {
        let Some(node) = state.nodes.get(&task.node_id) else {
            continue;
        };
        // A task being stopped on a node that is down has nothing left
        // to drain: its node cannot answer.
        let stopping = task.desired_state > TaskState::Running;
        if task.status.state.is_final() || (stopping && node.status.state == NodeState::Down) {
            continue;
        }
        let Ok(node_addr) = node.status.addr.parse() else {
            continue;
        };
        for (network_id, addr) in &task.addresses {
            let Some(network) = state.networks.get(network_id) else {
                continue;
            };
            let endpoint = OverlayEndpoint {
                vni: network.vni,
                addr: *addr,
                node_id: task.node_id.clone(),
                node_addr,
                task_id: task.id.clone(),
                service_id: task.service_id.clone(),
                service_name: state
                    .services
                    .get(&task.service_id)
                    .map(|s| s.spec.name.clone())
                    .unwrap_or_default(),
                running: task.status.state == TaskState::Running
                    && task.desired_state <= TaskState::Running,
            };
            endpoints.insert(endpoint.key(), endpoint);
        }
    }
    endpoints
}

/// Every service VIP of the swarm, by [`ServiceVip::key`]; a VIP on the
/// ingress network carries the service's resolved published ports (both
/// modes), what the routing mesh serves.
#[must_use]
pub fn service_vips(state: &ClusterState) -> BTreeMap<String, ServiceVip> {
    let mut vips = BTreeMap::new();
    for service in state.services.values() {
        for (network_id, vip) in &service.virtual_ips {
            let Some(network) = state.networks.get(network_id) else {
                continue;
            };
            let aliases = service
                .spec
                .task_template
                .networks
                .iter()
                .find(|n| n.target == *network_id)
                .map(|n| n.aliases.clone())
                .unwrap_or_default();
            let entry = ServiceVip {
                service_id: service.id.clone(),
                service_name: service.spec.name.clone(),
                aliases,
                vni: network.vni,
                vip: *vip,
                ports: if network.spec.ingress {
                    service.ports.clone()
                } else {
                    Vec::new()
                },
            };
            vips.insert(entry.key(), entry);
        }
    }
    vips
}

/// What a stream has sent of one keyed set (assignments, endpoints).
#[derive(Debug)]
pub struct MapDiff<V> {
    sent: Option<BTreeMap<String, V>>,
}

impl<V> Default for MapDiff<V> {
    fn default() -> Self {
        Self { sent: None }
    }
}

/// One stream message's part for a set: whether it is the full set, the new
/// or changed values, the removed keys.
pub type DiffMessage<V> = (bool, Vec<V>, Vec<String>);

impl<V: Clone + PartialEq> MapDiff<V> {
    /// What brings the node from what was sent to `now`: everything the
    /// first time, then changes; `None` when nothing changed.
    pub fn next(&mut self, now: BTreeMap<String, V>) -> Option<DiffMessage<V>> {
        let message = match &self.sent {
            None => (true, now.values().cloned().collect(), Vec::new()),
            Some(sent) => {
                let changed: Vec<V> = now
                    .iter()
                    .filter(|(key, value)| sent.get(*key) != Some(*value))
                    .map(|(_, value)| value.clone())
                    .collect();
                let removed: Vec<String> = sent
                    .keys()
                    .filter(|key| !now.contains_key(*key))
                    .cloned()
                    .collect();
                if changed.is_empty() && removed.is_empty() {
                    return None;
                }
                (false, changed, removed)
            }
        };
        self.sent = Some(now);
        Some(message)
    }
}

/// The `Assignments` stream message for one round of [`MapDiff::next`]:
/// `None` when none of the three sets changed; an error when a task's spec
/// cannot be encoded.
pub fn assignments_message(
    tasks: Option<DiffMessage<TaskAssignment>>,
    endpoints: Option<DiffMessage<OverlayEndpoint>>,
    vips: Option<DiffMessage<ServiceVip>>,
) -> Result<Option<AssignmentsMessage>, ConvertError> {
    if tasks.is_none() && endpoints.is_none() && vips.is_none() {
        return Ok(None);
    }
    let (full, tasks, removed) = tasks.unwrap_or_default();
    let (_, endpoints, removed_endpoints) = endpoints.unwrap_or_default();
    let (_, vips, removed_vips) = vips.unwrap_or_default();
    Ok(Some(AssignmentsMessage {
        full,
        tasks: tasks
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?,
        removed,
        endpoints: endpoints.into_iter().map(Into::into).collect(),
        removed_endpoints,
        vips: vips.into_iter().map(Into::into).collect(),
        removed_vips,
    }))
}

#[cfg(test)]
mod tests {
    use shoal_api::service::{ServiceMode, TaskState, TaskStatus};

    use super::*;
    use crate::state::{Task, test_support::service_with};

    fn task(id: &str, node: &str, slot: u64) -> Task {
        Task {
            id: id.to_owned(),
            version: 1,
            created_at_ms: 0,
            updated_at_ms: 0,
            service_id: "s1".to_owned(),
            slot,
            node_id: node.to_owned(),
            spec: shoal_api::service::TaskSpec::default(),
            service_version: 1,
            desired_state: TaskState::Running,
            status: TaskStatus::default(),
            addresses: std::collections::BTreeMap::new(),
        }
    }

    #[test]
    fn a_node_sees_its_tasks_named_by_slot_then_only_changes() {
        let mut state = ClusterState::default();
        state.services.insert(
            "s1".into(),
            service_with("s1", "web", ServiceMode::default()),
        );
        for (id, node, slot) in [("t1", "n1", 1), ("t2", "n2", 2), ("t3", "n1", 0)] {
            state.tasks.insert(id.into(), task(id, node, slot));
        }
        let mine = assignments_for(&state, "n1");
        assert_eq!(mine.keys().collect::<Vec<_>>(), ["t1", "t3"]);
        assert_eq!(mine["t1"].name, "web.1");
        assert_eq!(mine["t3"].name, "web.n1");
        assert_eq!(mine["t1"].full_name(), "web.1.t1");

        let mut diff = MapDiff::default();
        let (full, tasks, removed) = diff.next(mine.clone()).expect("first message");
        assert!(full);
        assert_eq!(tasks.len(), 2);
        assert!(removed.is_empty());
        assert_eq!(diff.next(mine), None, "no change, no message");

        state.tasks.get_mut("t1").expect("t1").desired_state = TaskState::Shutdown;
        state.tasks.remove("t3");
        let (full, tasks, removed) = diff.next(assignments_for(&state, "n1")).expect("a change");
        assert!(!full);
        assert_eq!(
            tasks.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["t1"]
        );
        assert_eq!(removed, ["t3"]);
    }

    #[test]
    fn each_round_of_changes_is_one_protobuf_message() {
        let mut state = ClusterState::default();
        state.services.insert(
            "s1".into(),
            service_with("s1", "web", ServiceMode::default()),
        );
        state.tasks.insert("t1".into(), task("t1", "n1", 1));
        let (mut tasks, mut endpoints, mut vips) =
            (MapDiff::default(), MapDiff::default(), MapDiff::default());
        let mut round = |state: &ClusterState| {
            assignments_message(
                tasks.next(assignments_for(state, "n1")),
                endpoints.next(overlay_endpoints(state)),
                vips.next(service_vips(state)),
            )
            .expect("encodes")
        };

        let first = round(&state).expect("the first round is a message");
        assert!(first.full);
        let sent: Vec<TaskAssignment> = first
            .tasks
            .into_iter()
            .map(|t| t.try_into().expect("decodes"))
            .collect();
        assert_eq!(sent, [assignments_for(&state, "n1")["t1"].clone()]);
        assert!(first.endpoints.is_empty() && first.vips.is_empty());
        assert_eq!(round(&state), None, "no change, no message");

        state.tasks.remove("t1");
        let removal = round(&state).expect("a change");
        assert!(!removal.full);
        assert!(removal.tasks.is_empty());
        assert_eq!(removal.removed, ["t1"]);
    }

    #[test]
    fn endpoints_list_live_task_addresses_with_their_node() {
        let mut state = ClusterState::default();
        state.nodes.insert(
            "n1".into(),
            crate::state::test_support::node_with("n1", "a", &[]),
        );
        state.networks.insert(
            "net".into(),
            crate::state::Network {
                id: "net".into(),
                version: 1,
                created_at_ms: 0,
                spec: shoal_api::network::NetworkSpec::default(),
                subnet: "10.0.0.0/24".into(),
                gateway: "10.0.0.1".parse().expect("ip"),
                vni: 4096,
            },
        );
        let mut down = crate::state::test_support::node_with("n2", "b", &[]);
        down.status.state = NodeState::Down;
        state.nodes.insert("n2".into(), down);
        for (id, node, state_now, desired, addr) in [
            (
                "t1",
                "n1",
                TaskState::Running,
                TaskState::Running,
                "10.0.0.3",
            ),
            (
                "t2",
                "n1",
                TaskState::Failed,
                TaskState::Running,
                "10.0.0.4",
            ),
            (
                "t3",
                "n1",
                TaskState::Running,
                TaskState::Shutdown,
                "10.0.0.5",
            ),
            (
                "t4",
                "n2",
                TaskState::Running,
                TaskState::Shutdown,
                "10.0.0.6",
            ),
        ] {
            let mut t = task(id, node, 1);
            t.status.state = state_now;
            t.desired_state = desired;
            t.addresses.insert("net".into(), addr.parse().expect("ip"));
            state.tasks.insert(id.into(), t);
        }
        let endpoints = overlay_endpoints(&state);
        assert_eq!(
            endpoints.keys().collect::<Vec<_>>(),
            ["4096/10.0.0.3", "4096/10.0.0.5"],
            "ended tasks, and stopping ones on a node that is down, are not endpoints"
        );
        assert!(endpoints["4096/10.0.0.3"].running);
        assert!(
            !endpoints["4096/10.0.0.5"].running,
            "a task being stopped drains: an endpoint, but not balanced to"
        );
        let endpoint = &endpoints["4096/10.0.0.3"];
        assert_eq!(
            (endpoint.node_id.as_str(), endpoint.task_id.as_str()),
            ("n1", "t1")
        );
        assert_eq!(endpoint.node_addr.to_string(), "198.18.0.1");
    }
}
