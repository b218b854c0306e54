//! The scheduler: which node a new task goes to (DESIGN.md §3). Pure: it
//! reads the state plus what the round already decided: the tasks it
//! placed, and the tasks it stops, which no longer count (stop first).
//!
//! A node is eligible when it is Ready and `active` (a `pause`d or
//! `drain`ed node takes no new task), satisfies every constraint, holds
//! fewer than `max_replicas` tasks of the service, has the reserved CPU
//! and memory left, and runs no task that publishes one of the service's
//! `host`-mode ports (swarmkit's host-port filter). A global service's task, whose node is given, goes
//! through the same filters on that node ([`place_on`]). Among the eligible, placement preferences
//! (`spread=node.labels.X`) first pick the label value with the fewest tasks
//! of the service; then the node with the fewest tasks of the service, then
//! the fewest tasks overall, then the smallest ID wins (swarmkit's spread).
//! When no node fits, the reason counts the nodes each filter ruled out, in
//! Docker's words (`no suitable node (scheduling constraints not satisfied
//! on 2 nodes)`).

use std::collections::{BTreeMap, BTreeSet};

use shoal_api::service::TaskSpec;

use crate::{
    constraint::{self, Constraint},
    state::{Availability, ClusterState, Node, NodeState, Task},
};

/// Tasks a round has placed so far, on top of those in the state, and
/// tasks it stops (which no longer count against their node).
#[derive(Debug, Default)]
pub struct Placements {
    /// `(service ID, node ID)` → tasks placed this round.
    per_service: BTreeMap<(String, String), u64>,
    /// Node ID → tasks placed this round, and their reservations.
    per_node: BTreeMap<String, (u64, i64, i64)>,
    /// IDs of tasks this round stops.
    released: BTreeSet<String>,
}

impl Placements {
    fn record(&mut self, service_id: &str, node_id: &str, spec: &TaskSpec) {
        *self
            .per_service
            .entry((service_id.to_owned(), node_id.to_owned()))
            .or_default() += 1;
        let entry = self.per_node.entry(node_id.to_owned()).or_default();
        entry.0 += 1;
        entry.1 += spec.resources.reservations.nano_cpus;
        entry.2 += spec.resources.reservations.memory_bytes;
    }

    /// Records that the round stops `task_id`: its place and reservations
    /// are free for the tasks placed after it (stop first).
    pub fn release(&mut self, task_id: &str) {
        self.released.insert(task_id.to_owned());
    }
}

/// Whether a task holds resources and a place on its node: wanted running
/// and not ended.
#[must_use]
pub fn occupies_node(task: &Task) -> bool {
    task.desired_state <= shoal_api::service::TaskState::Running && !task.status.state.is_final()
}

/// The per-node counts the scheduler compares: tasks of the service, tasks
/// overall, CPU and memory reserved.
#[derive(Clone, Copy, Debug, Default)]
struct Load {
    of_service: u64,
    total: u64,
    nano_cpus: i64,
    memory_bytes: i64,
}

fn load(state: &ClusterState, placed: &Placements, service_id: &str, node_id: &str) -> Load {
    let mut load = Load::default();
    for task in state
        .tasks
        .values()
        .filter(|t| t.node_id == node_id && occupies_node(t) && !placed.released.contains(&t.id))
    {
        load.total += 1;
        if task.service_id == service_id {
            load.of_service += 1;
        }
        load.nano_cpus += task.spec.resources.reservations.nano_cpus;
        load.memory_bytes += task.spec.resources.reservations.memory_bytes;
    }
    if let Some(&(count, cpus, memory)) = placed.per_node.get(node_id) {
        load.total += count;
        load.nano_cpus += cpus;
        load.memory_bytes += memory;
    }
    load.of_service += placed
        .per_service
        .get(&(service_id.to_owned(), node_id.to_owned()))
        .copied()
        .unwrap_or(0);
    load
}

/// Why nodes were ruled out, counted.
#[derive(Debug, Default)]
struct Refusals {
    unavailable: usize,
    constraints: usize,
    max_replicas: usize,
    resources: usize,
    host_ports: usize,
}

impl Refusals {
    fn reason(&self) -> String {
        let mut parts = Vec::new();
        let nodes = |n: usize| {
            if n == 1 {
                "1 node".to_owned()
            } else {
                format!("{n} nodes")
            }
        };
        if self.unavailable > 0 {
            parts.push(format!(
                "{} not available for new tasks",
                nodes(self.unavailable)
            ));
        }
        if self.constraints > 0 {
            parts.push(format!(
                "scheduling constraints not satisfied on {}",
                nodes(self.constraints)
            ));
        }
        if self.max_replicas > 0 {
            parts.push(format!(
                "max replicas per node limit exceed on {}",
                nodes(self.max_replicas)
            ));
        }
        if self.resources > 0 {
            parts.push(format!(
                "insufficient resources on {}",
                nodes(self.resources)
            ));
        }
        if self.host_ports > 0 {
            parts.push(format!(
                "host-mode port already in use on {}",
                nodes(self.host_ports)
            ));
        }
        if parts.is_empty() {
            "no suitable node (no nodes in the swarm)".to_owned()
        } else {
            format!("no suitable node ({})", parts.join("; "))
        }
    }
}

/// Whether `node` may take a new task of `spec` at all (ignoring load):
/// Ready, `active`, and matching every constraint.
#[must_use]
pub fn accepts_new_tasks(node: &Node, constraints: &[Constraint]) -> bool {
    node.status.state == NodeState::Ready
        && node.spec.availability == Availability::Active
        && constraints.iter().all(|c| node.satisfies(c))
}

/// Runs the filters on one node: its load when it can take a task of
/// `service_id` with `spec`, or the refusal counted.
fn filter(
    state: &ClusterState,
    placed: &Placements,
    service_id: &str,
    spec: &TaskSpec,
    constraints: &[Constraint],
    node: &Node,
    refusals: &mut Refusals,
) -> Option<Load> {
    if node.status.state != NodeState::Ready || node.spec.availability != Availability::Active {
        refusals.unavailable += 1;
        return None;
    }
    if !constraints.iter().all(|c| node.satisfies(c)) {
        refusals.constraints += 1;
        return None;
    }
    let load = load(state, placed, service_id, &node.id);
    let max = spec.placement.max_replicas;
    if max > 0 && load.of_service >= max {
        refusals.max_replicas += 1;
        return None;
    }
    let wanted = spec.resources.reservations;
    let resources = node.description.resources;
    if load.nano_cpus + wanted.nano_cpus > resources.nano_cpus && wanted.nano_cpus > 0
        || load.memory_bytes + wanted.memory_bytes > resources.memory_bytes
            && wanted.memory_bytes > 0
    {
        refusals.resources += 1;
        return None;
    }
    if host_port_in_use(state, placed, service_id, &node.id) {
        refusals.host_ports += 1;
        return None;
    }
    Some(load)
}

/// The `(protocol, port)`s a service publishes in `host` mode.
fn host_ports(state: &ClusterState, service_id: &str) -> BTreeSet<(String, u16)> {
    state
        .services
        .get(service_id)
        .map(|s| {
            s.ports
                .iter()
                .filter(|p| p.is_host_mode())
                .map(|p| (p.protocol().to_owned(), p.published_port))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a task on `node_id` (in the state and not released, or placed
/// this round) publishes one of `service_id`'s `host`-mode ports.
fn host_port_in_use(
    state: &ClusterState,
    placed: &Placements,
    service_id: &str,
    node_id: &str,
) -> bool {
    let wanted = host_ports(state, service_id);
    if wanted.is_empty() {
        return false;
    }
    let on_node: BTreeSet<&str> = state
        .tasks
        .values()
        .filter(|t| t.node_id == node_id && occupies_node(t) && !placed.released.contains(&t.id))
        .map(|t| t.service_id.as_str())
        .chain(
            placed
                .per_service
                .keys()
                .filter(|(_, node)| node == node_id)
                .map(|(service, _)| service.as_str()),
        )
        .collect();
    on_node
        .into_iter()
        .any(|other| !host_ports(state, other).is_disjoint(&wanted))
}

/// Places a task of `service_id` with `spec` on `node_id` (a global
/// service's task), recording it in `placed`, when the node passes every
/// filter; or returns why it does not.
pub fn place_on(
    state: &ClusterState,
    placed: &mut Placements,
    service_id: &str,
    spec: &TaskSpec,
    node_id: &str,
) -> Result<(), String> {
    let Some(node) = state.nodes.get(node_id) else {
        return Err(format!(
            "no suitable node (node {node_id} is not in the swarm)"
        ));
    };
    let constraints = constraint::parse_all(&spec.placement.constraints).unwrap_or_default();
    let mut refusals = Refusals::default();
    filter(
        state,
        placed,
        service_id,
        spec,
        &constraints,
        node,
        &mut refusals,
    )
    .ok_or_else(|| refusals.reason())?;
    placed.record(service_id, node_id, spec);
    Ok(())
}

/// Picks the node for a task of `service_id` with `spec`, recording the
/// choice in `placed`; or returns why no node fits.
pub fn place(
    state: &ClusterState,
    placed: &mut Placements,
    service_id: &str,
    spec: &TaskSpec,
) -> Result<String, String> {
    // Specs were validated when the service was written.
    let constraints = constraint::parse_all(&spec.placement.constraints).unwrap_or_default();
    let mut refusals = Refusals::default();
    let mut eligible: Vec<(&Node, Load)> = state
        .nodes
        .values()
        .filter_map(|node| {
            filter(
                state,
                placed,
                service_id,
                spec,
                &constraints,
                node,
                &mut refusals,
            )
            .map(|load| (node, load))
        })
        .collect();
    for preference in &spec.placement.preferences {
        let Some(label) = preference
            .spread
            .spread_descriptor
            .strip_prefix("node.labels.")
        else {
            continue;
        };
        let mut per_value: BTreeMap<Option<&str>, u64> = BTreeMap::new();
        for (node, load) in &eligible {
            *per_value
                .entry(node.spec.labels.get(label).map(String::as_str))
                .or_default() += load.of_service;
        }
        // Values with no eligible node are not counted: swarmkit spreads
        // over the values present among the candidates.
        if let Some((&value, _)) = per_value.iter().min_by_key(|(_, count)| **count) {
            eligible.retain(|(node, _)| node.spec.labels.get(label).map(String::as_str) == value);
        }
    }
    let (node, _) = eligible
        .into_iter()
        .min_by(|(a, la), (b, lb)| {
            (la.of_service, la.total, &a.id).cmp(&(lb.of_service, lb.total, &b.id))
        })
        .ok_or_else(|| refusals.reason())?;
    placed.record(service_id, &node.id, spec);
    Ok(node.id.clone())
}

#[cfg(test)]
mod tests {
    use shoal_api::service::{PlacementPreference, ServiceMode, SpreadOver, TaskState, TaskStatus};

    use super::*;
    use crate::state::test_support::{node_with, service_with};

    fn cluster(nodes: &[Node]) -> ClusterState {
        ClusterState {
            nodes: nodes.iter().map(|n| (n.id.clone(), n.clone())).collect(),
            ..ClusterState::default()
        }
    }

    fn spec() -> TaskSpec {
        service_with("s1", "web", ServiceMode::default())
            .spec
            .task_template
    }

    fn place_many(state: &ClusterState, spec: &TaskSpec, n: usize) -> Vec<Result<String, String>> {
        let mut placed = Placements::default();
        (0..n)
            .map(|_| place(state, &mut placed, "s1", spec))
            .collect()
    }

    fn counts(results: &[Result<String, String>]) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for node in results.iter().flatten() {
            *counts.entry(node.clone()).or_default() += 1;
        }
        counts
    }

    #[test]
    fn spreads_evenly() {
        let state = cluster(&[
            node_with("a", "a", &[]),
            node_with("b", "b", &[]),
            node_with("c", "c", &[]),
        ]);
        let results = place_many(&state, &spec(), 5);
        let counts = counts(&results);
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), [2, 2, 1]);
    }

    #[test]
    fn drain_pause_down_and_constraints_filter() {
        let mut drained = node_with("a", "a", &[]);
        drained.spec.availability = Availability::Drain;
        let mut paused = node_with("b", "b", &[]);
        paused.spec.availability = Availability::Pause;
        let mut down = node_with("c", "c", &[]);
        down.status.state = NodeState::Down;
        let east = node_with("d", "d", &[("zone", "east")]);
        let west = node_with("e", "e", &[("zone", "west")]);
        let state = cluster(&[drained, paused, down, east, west]);
        let mut spec = spec();
        spec.placement.constraints = vec!["node.labels.zone==east".into()];
        let results = place_many(&state, &spec, 3);
        assert_eq!(counts(&results).keys().collect::<Vec<_>>(), ["d"]);

        spec.placement.constraints = vec!["node.labels.zone==north".into()];
        let err = place_many(&state, &spec, 1)
            .remove(0)
            .expect_err("nothing fits");
        assert_eq!(
            err,
            "no suitable node (3 nodes not available for new tasks; scheduling constraints not satisfied on 2 nodes)"
        );
    }

    #[test]
    fn max_replicas_and_reservations_limit() {
        let state = cluster(&[node_with("a", "a", &[]), node_with("b", "b", &[])]);
        let mut spec = spec();
        spec.placement.max_replicas = 1;
        let results = place_many(&state, &spec, 3);
        assert!(results[0].is_ok() && results[1].is_ok());
        assert_eq!(
            results[2].as_ref().expect_err("full"),
            "no suitable node (max replicas per node limit exceed on 2 nodes)"
        );

        let mut spec = self::spec();
        spec.resources.reservations.memory_bytes = 3 << 30; // nodes have 8 GiB
        let results = place_many(&state, &spec, 5);
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 4);
        assert_eq!(
            results[4].as_ref().expect_err("full"),
            "no suitable node (insufficient resources on 2 nodes)"
        );
    }

    #[test]
    fn spread_preference_balances_label_values_first() {
        let state = cluster(&[
            node_with("a", "a", &[("rack", "1")]),
            node_with("b", "b", &[("rack", "1")]),
            node_with("c", "c", &[("rack", "1")]),
            node_with("d", "d", &[("rack", "2")]),
        ]);
        let mut spec = spec();
        spec.placement.preferences = vec![PlacementPreference {
            spread: SpreadOver {
                spread_descriptor: "node.labels.rack".into(),
            },
        }];
        let counts = counts(&place_many(&state, &spec, 4));
        assert_eq!(counts["d"], 2, "rack 2 gets half: {counts:?}");
    }

    fn running_task(id: &str, node: &str, spec: &TaskSpec) -> Task {
        Task {
            id: id.to_owned(),
            version: 1,
            created_at_ms: 0,
            updated_at_ms: 0,
            service_id: "s1".to_owned(),
            slot: 1,
            node_id: node.to_owned(),
            spec: spec.clone(),
            service_version: 1,
            desired_state: TaskState::Running,
            status: TaskStatus {
                state: TaskState::Running,
                ..TaskStatus::default()
            },
            addresses: BTreeMap::new(),
        }
    }

    #[test]
    fn tasks_in_the_state_count_until_they_stop() {
        let mut state = cluster(&[node_with("a", "a", &[]), node_with("b", "b", &[])]);
        let spec = spec();
        state
            .tasks
            .insert("t1".into(), running_task("t1", "a", &spec));
        let mut placed = Placements::default();
        assert_eq!(place(&state, &mut placed, "s1", &spec), Ok("b".into()));
        assert_eq!(place(&state, &mut placed, "s1", &spec), Ok("a".into()));

        // An ended task or one wanted shut down holds nothing.
        let t1 = state.tasks.get_mut("t1").expect("t1");
        t1.desired_state = TaskState::Shutdown;
        let mut placed = Placements::default();
        assert_eq!(place(&state, &mut placed, "s1", &spec), Ok("a".into()));
    }

    #[test]
    fn a_released_task_frees_its_place_and_reservations() {
        let mut state = cluster(&[node_with("a", "a", &[])]);
        let mut spec = spec();
        spec.resources.reservations.memory_bytes = 6 << 30; // of 8 GiB
        state
            .tasks
            .insert("t1".into(), running_task("t1", "a", &spec));
        let mut placed = Placements::default();
        assert_eq!(
            place(&state, &mut placed, "s1", &spec),
            Err("no suitable node (insufficient resources on 1 node)".into())
        );
        placed.release("t1");
        assert_eq!(place(&state, &mut placed, "s1", &spec), Ok("a".into()));
        assert!(
            place(&state, &mut placed, "s1", &spec).is_err(),
            "the new task holds the memory now"
        );
    }

    #[test]
    fn place_on_runs_every_filter_on_one_node() {
        let mut paused = node_with("p", "p", &[]);
        paused.spec.availability = Availability::Pause;
        let state = cluster(&[
            node_with("a", "a", &[("zone", "east")]),
            node_with("b", "b", &[]),
            paused,
        ]);
        let mut spec = spec();
        spec.placement.constraints = vec!["node.labels.zone==east".into()];
        spec.placement.max_replicas = 1;
        let mut placed = Placements::default();
        assert_eq!(place_on(&state, &mut placed, "s1", &spec, "a"), Ok(()));
        assert_eq!(
            place_on(&state, &mut placed, "s1", &spec, "a"),
            Err("no suitable node (max replicas per node limit exceed on 1 node)".into()),
            "the first placement was recorded"
        );
        assert_eq!(
            place_on(&state, &mut placed, "s1", &spec, "b"),
            Err("no suitable node (scheduling constraints not satisfied on 1 node)".into())
        );
        assert_eq!(
            place_on(&state, &mut placed, "s1", &spec, "p"),
            Err("no suitable node (1 node not available for new tasks)".into())
        );
        assert_eq!(
            place_on(&state, &mut placed, "s1", &spec, "gone"),
            Err("no suitable node (node gone is not in the swarm)".into())
        );
        // What place_on recorded counts for place too.
        spec.placement.constraints.clear();
        assert_eq!(place(&state, &mut placed, "s1", &spec), Ok("b".into()));
    }
}
