//! The dispatcher's task side (DESIGN.md §3): what each node is told to run.
//! [`assignments_for`] is the node's view of the state; [`AssignmentDiff`]
//! turns successive views into the stream's messages (everything first,
//! then only changes and removals).

use std::collections::BTreeMap;

use shoal_api::service::{TaskAssignment, TaskNetwork};

use crate::{ipam::Subnet, state::ClusterState};

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
            let networks = task
                .addresses
                .iter()
                .filter_map(|(id, addr)| {
                    let network = state.networks.get(id)?;
                    Some(TaskNetwork {
                        network_id: id.clone(),
                        name: network.spec.name.clone(),
                        vni: network.vni,
                        addr: *addr,
                        prefix_len: Subnet::parse(&network.subnet).ok()?.len,
                        gateway: network.gateway,
                        mtu: network.spec.mtu().ok().flatten(),
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

/// What a stream has sent so far.
#[derive(Debug, Default)]
pub struct AssignmentDiff {
    sent: Option<BTreeMap<String, TaskAssignment>>,
}

/// One stream message: whether it is the full set, the new or changed
/// assignments, the removed IDs.
pub type DiffMessage = (bool, Vec<TaskAssignment>, Vec<String>);

impl AssignmentDiff {
    /// The message that brings the node from what was sent to `now`, or
    /// `None` when nothing changed. The first message is the full set.
    pub fn next(&mut self, now: BTreeMap<String, TaskAssignment>) -> Option<DiffMessage> {
        let message = match &self.sent {
            None => (true, now.values().cloned().collect(), Vec::new()),
            Some(sent) => {
                let changed: Vec<TaskAssignment> = now
                    .values()
                    .filter(|a| sent.get(&a.id) != Some(*a))
                    .cloned()
                    .collect();
                let removed: Vec<String> = sent
                    .keys()
                    .filter(|id| !now.contains_key(*id))
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

        let mut diff = AssignmentDiff::default();
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
}
