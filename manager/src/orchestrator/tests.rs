//! The orchestrator driven the way the leader drives it: plan, apply the
//! plan at the next index, simulate the agents with `ReportTaskStatus`,
//! move the clock.

use std::collections::BTreeSet;

use shoal_api::service::{
    GlobalService, ReplicatedService, RestartCondition, RestartPolicy, ServiceMode, ServiceSpec,
    TaskState,
};

use super::{plan, simulation::Rounds};
use crate::state::{
    Availability, Command, NodeState, Service, Task,
    test_support::{Sim, node_with, service_with},
};

const SECOND: u64 = 1_000;

fn replicated(id: &str, replicas: u64) -> Service {
    service_with(
        id,
        &format!("svc-{id}"),
        ServiceMode::Replicated(ReplicatedService {
            replicas: Some(replicas),
        }),
    )
}

fn global(id: &str) -> Service {
    service_with(
        id,
        &format!("svc-{id}"),
        ServiceMode::Global(GlobalService {}),
    )
}

/// A swarm of Ready, active workers `a`, `b`, `c`.
fn three_nodes() -> Sim {
    Sim::new(&[
        node_with("a", "host-a", &[]),
        node_with("b", "host-b", &[]),
        node_with("c", "host-c", &[("zone", "east")]),
    ])
}

fn with_restart(mut service: Service, policy: RestartPolicy) -> Service {
    service.spec.task_template.restart_policy = policy;
    service
}

fn no_delay(condition: RestartCondition) -> RestartPolicy {
    RestartPolicy {
        condition: Some(condition),
        delay: Some(0),
        ..RestartPolicy::default()
    }
}

fn set_replicas(spec: &mut ServiceSpec, replicas: u64) {
    spec.mode = ServiceMode::Replicated(ReplicatedService {
        replicas: Some(replicas),
    });
}

fn ids(tasks: &[&Task]) -> Vec<String> {
    tasks.iter().map(|t| t.id.clone()).collect()
}

fn slots(tasks: &[&Task]) -> Vec<u64> {
    tasks.iter().map(|t| t.slot).collect()
}

/// The tasks of `service_id` in `slot`, oldest first.
fn slot_tasks<'s>(sim: &'s Sim, service_id: &str, slot: u64) -> Vec<&'s Task> {
    let mut tasks: Vec<&Task> = sim
        .state
        .tasks
        .values()
        .filter(|t| t.service_id == service_id && t.slot == slot)
        .collect();
    tasks.sort_by_key(|t| (t.created_at_ms, t.id.clone()));
    tasks
}

/// The one task of `service_id` wanted running in `slot`.
fn current(sim: &Sim, service_id: &str, slot: u64) -> String {
    let running: Vec<&Task> = sim
        .wanted_running(service_id)
        .into_iter()
        .filter(|t| t.slot == slot)
        .collect();
    assert_eq!(running.len(), 1, "slot {slot}: {running:#?}");
    running[0].id.clone()
}

fn plan_parts(sim: &mut Sim) -> (usize, usize, usize) {
    match sim.plan() {
        Some(Command::PlanTasks {
            create,
            update,
            delete,
        }) => (create.len(), update.len(), delete.len()),
        other => panic!("expected a plan, got {other:?}"),
    }
}

// ---- replicated services ---------------------------------------------------

#[test]
fn five_replicas_spread_over_three_nodes_in_distinct_slots() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 5));
    assert_eq!(plan_parts(&mut sim), (5, 0, 0));
    assert!(sim.round());

    let tasks = sim.wanted_running("s1");
    assert_eq!(slots(&tasks), [1, 2, 3, 4, 5]);
    for task in &tasks {
        assert_eq!(task.status.state, TaskState::Assigned);
        assert_eq!(task.status.message, "scheduler assigned task to node");
        assert_eq!(task.spec, sim.state.services["s1"].spec.task_template);
        assert_eq!(task.service_version, sim.state.services["s1"].version);
    }
    let mut counts: Vec<usize> = sim.per_node("s1").into_values().collect();
    counts.sort_unstable();
    assert_eq!(counts, [1, 2, 2]);

    assert_eq!(sim.plan(), None, "nothing changed: nothing to do");
    assert!(sim.agents() > 0);
    assert_eq!(sim.plan(), None, "running tasks need nothing either");
}

#[test]
fn plan_is_deterministic() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 4));
    sim.create(&global("g1"));
    let plan_with_ids = |sim: &Sim| {
        let mut n = 0;
        plan(&sim.state, sim.now_ms, &mut || {
            n += 1;
            format!("t{n}")
        })
    };
    let first = plan_with_ids(&sim);
    assert!(first.is_some());
    assert_eq!(first, plan_with_ids(&sim));
}

#[test]
fn scaling_up_then_down_keeps_slots_unique() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 3));
    sim.converge();
    sim.update("s1", |spec| set_replicas(spec, 9));
    sim.converge();
    let tasks = sim.wanted_running("s1");
    assert_eq!(slots(&tasks), (1..=9).collect::<Vec<_>>());
    assert!(sim.per_node("s1").values().all(|&n| n == 3));

    sim.update("s1", |spec| set_replicas(spec, 2));
    assert!(sim.round());
    let running = sim.wanted_running("s1");
    assert_eq!(running.len(), 2);
    let distinct: BTreeSet<u64> = running.iter().map(|t| t.slot).collect();
    assert_eq!(distinct.len(), 2);
    let shutdown = sim
        .state
        .service_tasks("s1")
        .filter(|t| t.desired_state == TaskState::Shutdown)
        .count();
    assert_eq!(shutdown, 7);
    assert_eq!(sim.per_node("s1").len(), 2, "the two left are on two nodes");

    sim.converge();
    assert_eq!(sim.wanted_running("s1").len(), 2);
    assert!(
        sim.state
            .service_tasks("s1")
            .filter(|t| t.desired_state == TaskState::Shutdown)
            .all(|t| t.status.state == TaskState::Shutdown)
    );

    // Scaling up again reuses free slot numbers.
    sim.update("s1", |spec| set_replicas(spec, 4));
    sim.converge();
    let tasks = sim.wanted_running("s1");
    assert_eq!(slots(&tasks), [1, 2, 3, 4]);
}

#[test]
fn scaling_down_takes_from_the_busiest_nodes_first() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 8)); // 3 / 3 / 2
    sim.converge();
    sim.update("s1", |spec| set_replicas(spec, 3));
    sim.converge();
    let counts = sim.per_node("s1");
    assert_eq!(counts.len(), 3, "one left on each node: {counts:?}");
}

#[test]
fn scaling_down_removes_tasks_not_running_first() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 3));
    assert!(sim.round());
    let slot2 = current(&sim, "s1", 2);
    for slot in [1, 3] {
        let id = current(&sim, "s1", slot);
        sim.report(&id, TaskState::Running);
    }
    sim.update("s1", |spec| set_replicas(spec, 2));
    assert!(sim.round());
    assert_eq!(sim.task(&slot2).desired_state, TaskState::Shutdown);
    assert_eq!(slots(&sim.wanted_running("s1")), [1, 3]);
}

// ---- restart policies ------------------------------------------------------

#[test]
fn a_failed_task_is_replaced_in_its_slot_after_the_default_delay() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 2));
    sim.converge();
    let old = current(&sim, "s1", 1);
    sim.report(&old, TaskState::Failed);

    assert_eq!(sim.plan(), None, "the 5 s delay has not passed");
    sim.advance(5 * SECOND - 1);
    assert_eq!(sim.plan(), None, "the 5 s delay has not passed");
    sim.advance(1);
    assert!(sim.round());
    let new = current(&sim, "s1", 1);
    assert_ne!(new, old);
    assert_eq!(sim.task(&old).desired_state, TaskState::Shutdown);
    assert_eq!(sim.task(&old).status.state, TaskState::Failed);
    assert_eq!(sim.task(&new).status.state, TaskState::Assigned);
    assert_eq!(sim.wanted_running("s1").len(), 2);
    sim.converge();
    assert_eq!(sim.task(&new).status.state, TaskState::Running);
}

#[test]
fn restart_condition_none_leaves_the_slot_ended() {
    let mut sim = three_nodes();
    sim.create(&with_restart(
        replicated("s1", 3),
        no_delay(RestartCondition::None),
    ));
    sim.converge();
    let failed = current(&sim, "s1", 1);
    let completed = current(&sim, "s1", 2);
    sim.report(&failed, TaskState::Failed);
    sim.report(&completed, TaskState::Complete);
    assert!(sim.round());
    assert_eq!(sim.task(&failed).desired_state, TaskState::Complete);
    assert_eq!(sim.task(&completed).desired_state, TaskState::Complete);

    sim.advance(3_600 * SECOND);
    sim.converge();
    assert_eq!(
        sim.wanted_running("s1").len(),
        1,
        "the scale logic does not refill ended slots"
    );
    assert_eq!(sim.state.service_tasks("s1").count(), 3);
}

#[test]
fn on_failure_restarts_failures_but_not_completions() {
    let mut sim = three_nodes();
    sim.create(&with_restart(
        replicated("s1", 2),
        no_delay(RestartCondition::OnFailure),
    ));
    sim.converge();
    let completed = current(&sim, "s1", 1);
    let failed = current(&sim, "s1", 2);
    sim.report(&completed, TaskState::Complete);
    sim.report(&failed, TaskState::Failed);
    sim.converge();
    assert_eq!(sim.task(&completed).desired_state, TaskState::Complete);
    assert_eq!(sim.task(&failed).desired_state, TaskState::Shutdown);
    assert_eq!(slots(&sim.wanted_running("s1")), [2]);
    assert_ne!(current(&sim, "s1", 2), failed);
}

#[test]
fn restart_any_restarts_completions_too() {
    let mut sim = three_nodes();
    sim.create(&with_restart(
        replicated("s1", 1),
        no_delay(RestartCondition::Any),
    ));
    sim.converge();
    let old = current(&sim, "s1", 1);
    sim.report(&old, TaskState::Complete);
    sim.converge();
    assert_ne!(current(&sim, "s1", 1), old);
    assert_eq!(sim.task(&old).desired_state, TaskState::Shutdown);
}

/// Fails the task of slot 1 until the slot stops being restarted (at most
/// `limit` times); returns how many restarts happened.
fn fail_until_given_up(sim: &mut Sim, limit: usize, between_ms: u64) -> usize {
    for restarts in 0..limit {
        let task = current(sim, "s1", 1);
        sim.advance(between_ms);
        sim.report(&task, TaskState::Failed);
        sim.converge();
        if sim.task(&task).desired_state == TaskState::Complete {
            return restarts;
        }
        assert_eq!(sim.task(&task).desired_state, TaskState::Shutdown);
    }
    panic!("still restarting after {limit} failures");
}

#[test]
fn max_attempts_without_a_window_counts_every_restart() {
    let mut sim = three_nodes();
    let policy = RestartPolicy {
        max_attempts: Some(2),
        ..no_delay(RestartCondition::Any)
    };
    sim.create(&with_restart(replicated("s1", 1), policy));
    sim.converge();
    assert_eq!(fail_until_given_up(&mut sim, 10, 3_600 * SECOND), 2);
    assert!(sim.wanted_running("s1").is_empty());
    assert_eq!(slot_tasks(&sim, "s1", 1).len(), 3);
}

#[test]
fn max_attempts_beyond_the_history_limit_is_honoured() {
    let mut sim = three_nodes();
    let policy = RestartPolicy {
        max_attempts: Some(8),
        ..no_delay(RestartCondition::OnFailure)
    };
    sim.create(&with_restart(replicated("s1", 1), policy));
    sim.converge();
    assert_eq!(fail_until_given_up(&mut sim, 20, SECOND), 8);
}

#[test]
fn max_attempts_within_a_window_forgets_old_restarts() {
    let mut sim = three_nodes();
    let policy = RestartPolicy {
        max_attempts: Some(1),
        window: Some(60_000_000_000), // 60 s
        ..no_delay(RestartCondition::Any)
    };
    sim.create(&with_restart(replicated("s1", 1), policy));
    sim.converge();
    // Failures 2 minutes apart: the previous restart is out of the window.
    for _ in 0..4 {
        let task = current(&sim, "s1", 1);
        sim.advance(120 * SECOND);
        sim.report(&task, TaskState::Failed);
        sim.converge();
        assert_eq!(sim.task(&task).desired_state, TaskState::Shutdown);
    }
    // Two failures within 60 s: the second is not restarted.
    let task = current(&sim, "s1", 1);
    sim.advance(120 * SECOND);
    sim.report(&task, TaskState::Failed);
    sim.converge();
    let task = current(&sim, "s1", 1);
    sim.advance(10 * SECOND);
    sim.report(&task, TaskState::Failed);
    sim.converge();
    assert_eq!(sim.task(&task).desired_state, TaskState::Complete);
    assert!(sim.wanted_running("s1").is_empty());
}

#[test]
fn max_attempts_counts_restarts_of_the_current_spec_only() {
    let mut sim = three_nodes();
    let policy = RestartPolicy {
        max_attempts: Some(1),
        ..no_delay(RestartCondition::Any)
    };
    sim.create(&with_restart(replicated("s1", 1), policy));
    sim.converge();
    let first = current(&sim, "s1", 1);
    sim.report(&first, TaskState::Failed);
    sim.converge();
    // An update replaces the task: not a restart, and a fresh budget.
    sim.update("s1", |spec| {
        spec.task_template.container_spec.env = vec!["V=2".into()];
    });
    sim.converge();
    let updated = current(&sim, "s1", 1);
    assert_eq!(sim.task(&updated).spec.container_spec.env, ["V=2"]);
    sim.report(&updated, TaskState::Failed);
    sim.converge();
    assert_eq!(
        sim.task(&updated).desired_state,
        TaskState::Shutdown,
        "restarted: the new spec has not used its attempt"
    );
    let again = current(&sim, "s1", 1);
    sim.report(&again, TaskState::Failed);
    sim.converge();
    assert_eq!(sim.task(&again).desired_state, TaskState::Complete);
}

#[test]
fn scale_downs_are_not_counted_as_restarts() {
    let mut sim = three_nodes();
    let policy = RestartPolicy {
        max_attempts: Some(1),
        ..no_delay(RestartCondition::Any)
    };
    sim.create(&with_restart(replicated("s1", 1), policy));
    sim.converge();
    sim.update("s1", |spec| set_replicas(spec, 0));
    sim.converge();
    sim.update("s1", |spec| set_replicas(spec, 1));
    sim.converge();
    let task = current(&sim, "s1", 1);
    sim.report(&task, TaskState::Failed);
    sim.converge();
    assert_eq!(sim.task(&task).desired_state, TaskState::Shutdown);
    assert_eq!(sim.wanted_running("s1").len(), 1);
}

// ---- nodes going away ------------------------------------------------------

#[test]
fn tasks_of_a_down_node_are_replaced_elsewhere_at_once() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 6));
    sim.converge();
    let on_c: Vec<String> = sim
        .wanted_running("s1")
        .iter()
        .filter(|t| t.node_id == "c")
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(on_c.len(), 2);
    sim.set_node_state("c", NodeState::Down);
    assert!(sim.round(), "no delay for a lost node");
    for id in &on_c {
        let task = sim.task(id);
        assert_eq!(task.desired_state, TaskState::Shutdown);
        assert_eq!(task.status.state, TaskState::Running, "nobody saw it stop");
    }
    let running = sim.wanted_running("s1");
    assert_eq!(slots(&running), [1, 2, 3, 4, 5, 6]);
    assert!(running.iter().all(|t| t.node_id != "c"));
    sim.converge();

    // The node comes back: it stops the old tasks and gets nothing new.
    sim.set_node_state("c", NodeState::Ready);
    sim.converge();
    for id in &on_c {
        assert_eq!(sim.task(id).status.state, TaskState::Shutdown);
    }
    assert!(!sim.per_node("s1").contains_key("c"));
}

#[test]
fn an_ended_task_on_a_down_node_follows_its_restart_policy() {
    let mut sim = three_nodes();
    sim.create(&with_restart(
        replicated("s1", 3),
        no_delay(RestartCondition::None),
    ));
    sim.create(&replicated("s2", 3));
    sim.converge();
    let none = sim
        .wanted_running("s1")
        .iter()
        .find(|t| t.node_id == "c")
        .map(|t| t.id.clone())
        .expect("a task on c");
    let any = sim
        .wanted_running("s2")
        .iter()
        .find(|t| t.node_id == "c")
        .map(|t| t.id.clone())
        .expect("a task on c");
    sim.report(&none, TaskState::Complete);
    sim.report(&any, TaskState::Failed);
    sim.set_node_state("c", NodeState::Down);

    assert!(sim.round());
    assert_eq!(sim.task(&none).desired_state, TaskState::Complete);
    assert_eq!(
        sim.wanted_running("s1").len(),
        2,
        "condition none: no restart"
    );
    assert_eq!(
        sim.task(&any).desired_state,
        TaskState::Running,
        "waits for its restart delay"
    );
    sim.advance(5 * SECOND);
    sim.converge();
    assert_eq!(sim.task(&any).desired_state, TaskState::Shutdown);
    assert_eq!(sim.wanted_running("s2").len(), 3);
}

#[test]
fn tasks_of_a_removed_node_are_orphaned_and_replaced() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 3));
    sim.converge();
    let on_c = sim
        .wanted_running("s1")
        .iter()
        .find(|t| t.node_id == "c")
        .map(|t| t.id.clone())
        .expect("a task on c");
    sim.ok(Command::RemoveNode {
        id: "c".into(),
        force: true,
    });
    assert!(sim.round());
    let task = sim.task(&on_c);
    assert_eq!(task.status.state, TaskState::Orphaned);
    assert_eq!(task.status.message, "node removed");
    assert_eq!(task.desired_state, TaskState::Shutdown);
    assert_eq!(sim.wanted_running("s1").len(), 3);
    sim.converge();
    assert!(!sim.per_node("s1").contains_key("c"));
}

#[test]
fn draining_moves_tasks_and_pausing_keeps_them() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 3));
    sim.converge();
    let on_a = current(&sim, "s1", 1);
    assert_eq!(sim.task(&on_a).node_id, "a");

    sim.set_availability("b", Availability::Pause);
    assert_eq!(sim.plan(), None, "a paused node keeps its tasks");
    sim.update("s1", |spec| set_replicas(spec, 5));
    sim.converge();
    assert_eq!(sim.per_node("s1")["b"], 1, "a paused node gets no new task");

    sim.set_availability("a", Availability::Drain);
    assert!(sim.round());
    assert_eq!(sim.task(&on_a).desired_state, TaskState::Shutdown);
    sim.converge();
    assert_eq!(sim.task(&on_a).status.state, TaskState::Shutdown);
    let counts = sim.per_node("s1");
    assert!(!counts.contains_key("a"), "{counts:?}");
    assert_eq!(counts["c"], 4, "{counts:?}");
    assert_eq!(sim.wanted_running("s1").len(), 5);
}

// ---- global services -------------------------------------------------------

#[test]
fn a_global_service_runs_one_task_per_eligible_node() {
    let mut sim = three_nodes();
    sim.set_availability("b", Availability::Pause);
    sim.create(&global("g1"));
    sim.converge();
    let tasks = sim.wanted_running("g1");
    assert_eq!(tasks.len(), 2, "not on the paused node");
    assert!(tasks.iter().all(|t| t.slot == 0));
    assert_eq!(sim.per_node("g1").keys().collect::<Vec<_>>(), ["a", "c"]);

    // A joining node gets one.
    sim.state
        .nodes
        .insert("d".into(), node_with("d", "host-d", &[]));
    assert!(sim.round());
    assert_eq!(sim.per_node("g1").get("d"), Some(&1));
    sim.converge();

    // Down and drained nodes lose theirs, and nobody gets a second one.
    sim.set_node_state("d", NodeState::Down);
    sim.set_availability("c", Availability::Drain);
    sim.converge();
    assert_eq!(sim.per_node("g1").keys().collect::<Vec<_>>(), ["a"]);

    // A node back up and active gets a new one.
    sim.set_node_state("d", NodeState::Ready);
    sim.set_availability("b", Availability::Active);
    sim.converge();
    assert_eq!(
        sim.per_node("g1").keys().collect::<Vec<_>>(),
        ["a", "b", "d"]
    );
    assert!(sim.per_node("g1").values().all(|&n| n == 1));
}

#[test]
fn global_constraints_exclude_nodes() {
    let mut sim = three_nodes();
    let mut service = global("g1");
    service.spec.task_template.placement.constraints = vec!["node.labels.zone!=east".into()];
    sim.create(&service);
    sim.converge();
    assert_eq!(sim.per_node("g1").keys().collect::<Vec<_>>(), ["a", "b"]);

    // A label change that makes a node fail the constraint stops its task.
    let mut spec = sim.state.nodes["a"].spec.clone();
    spec.labels.insert("zone".into(), "east".into());
    let expected_version = sim.state.nodes["a"].version;
    sim.ok(Command::UpdateNodeSpec {
        id: "a".into(),
        expected_version,
        spec,
    });
    sim.converge();
    assert_eq!(sim.per_node("g1").keys().collect::<Vec<_>>(), ["b"]);
}

#[test]
fn a_failed_global_task_is_restarted_on_its_node() {
    let mut sim = three_nodes();
    sim.create(&with_restart(global("g1"), no_delay(RestartCondition::Any)));
    sim.converge();
    let on_b = sim
        .wanted_running("g1")
        .iter()
        .find(|t| t.node_id == "b")
        .map(|t| t.id.clone())
        .expect("a task on b");
    sim.report(&on_b, TaskState::Failed);
    sim.converge();
    assert_eq!(sim.task(&on_b).desired_state, TaskState::Shutdown);
    let tasks = sim.wanted_running("g1");
    assert_eq!(tasks.len(), 3);
    assert_eq!(sim.per_node("g1").get("b"), Some(&1));
}

#[test]
fn ended_global_tasks_of_a_removed_node_are_shut_down() {
    let mut sim = three_nodes();
    sim.create(&global("g1"));
    sim.converge();
    let on_c = sim
        .wanted_running("g1")
        .iter()
        .find(|t| t.node_id == "c")
        .map(|t| t.id.clone())
        .expect("a task on c");
    sim.report(&on_c, TaskState::Failed);
    sim.ok(Command::RemoveNode {
        id: "c".into(),
        force: true,
    });
    sim.converge();
    assert!(
        sim.state
            .tasks
            .get(&on_c)
            .is_none_or(|t| t.desired_state > TaskState::Running),
        "{:?}",
        sim.state.tasks.get(&on_c)
    );
    assert_eq!(sim.wanted_running("g1").len(), 2);
}

#[test]
fn a_global_service_respects_reservations() {
    let mut sim = three_nodes();
    let mut big = global("g1");
    big.spec.task_template.resources.reservations.memory_bytes = 6 << 30; // of 8 GiB
    let mut other = global("g2");
    other.spec.task_template.resources.reservations.memory_bytes = 3 << 30;
    sim.create(&big);
    sim.create(&other);
    sim.converge();
    assert_eq!(sim.wanted_running("g1").len(), 3);
    assert!(
        sim.wanted_running("g2").is_empty(),
        "no node has 3 GiB left: {:?}",
        sim.per_node("g2")
    );
}

// ---- pending tasks ---------------------------------------------------------

#[test]
fn a_task_nothing_fits_stays_pending_until_a_node_fits() {
    let mut sim = three_nodes();
    let mut service = replicated("s1", 2);
    service.spec.task_template.placement.constraints = vec!["node.labels.zone==mars".into()];
    sim.create(&service);
    assert!(sim.round());
    let pending = ids(&sim.wanted_running("s1"));
    assert_eq!(pending.len(), 2);
    for task in sim.wanted_running("s1") {
        assert_eq!(task.status.state, TaskState::Pending);
        assert_eq!(task.node_id, "");
        assert_eq!(
            task.status.message,
            "no suitable node (scheduling constraints not satisfied on 3 nodes)"
        );
    }
    assert_eq!(sim.plan(), None, "same reason: nothing to write");

    // The reason follows the cluster.
    sim.set_availability("a", Availability::Drain);
    assert!(sim.round());
    assert_eq!(
        sim.wanted_running("s1")[0].status.message,
        "no suitable node (1 node not available for new tasks; scheduling constraints not \
         satisfied on 2 nodes)"
    );

    sim.state
        .nodes
        .insert("m".into(), node_with("m", "mars-1", &[("zone", "mars")]));
    assert!(sim.round());
    for task in sim.wanted_running("s1") {
        assert_eq!(task.node_id, "m");
        assert_eq!(task.status.state, TaskState::Assigned);
    }
    assert_eq!(ids(&sim.wanted_running("s1")), pending);
}

#[test]
fn updating_a_pending_service_replaces_its_pending_tasks() {
    let mut sim = three_nodes();
    let mut service = replicated("s1", 2);
    service.spec.task_template.placement.constraints = vec!["node.labels.zone==mars".into()];
    sim.create(&service);
    sim.converge();
    let pending = ids(&sim.wanted_running("s1"));
    sim.update("s1", |spec| {
        spec.task_template.placement.constraints = vec!["node.labels.zone==east".into()];
    });
    sim.converge();
    let running = sim.wanted_running("s1");
    assert_eq!(running.len(), 2);
    assert!(
        running
            .iter()
            .all(|t| t.node_id == "c" && t.status.state == TaskState::Running)
    );
    for id in &pending {
        let task = sim.task(id);
        assert_eq!(task.desired_state, TaskState::Shutdown);
        assert_eq!(task.status.state, TaskState::Shutdown);
        assert_eq!(task.status.message, "shut down before it was assigned");
    }

    // A stale pending task never lands with its old constraints.
    sim.update("s1", |spec| {
        spec.task_template.placement.constraints = vec!["node.labels.zone==venus".into()];
    });
    sim.state
        .nodes
        .insert("m".into(), node_with("m", "mars-1", &[("zone", "mars")]));
    sim.converge();
    assert!(sim.state.tasks.values().all(|t| t.node_id != "m"));
}

// ---- rolling updates -------------------------------------------------------

#[test]
fn a_spec_update_replaces_one_task_at_a_time() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 3));
    sim.converge();
    let before = ids(&sim.wanted_running("s1"));
    sim.update("s1", |spec| {
        spec.task_template.container_spec.env = vec!["COLOUR=blue".into()];
    });
    let new_spec = sim.state.services["s1"].spec.task_template.clone();

    let mut replaced = Vec::new();
    for step in 0..3 {
        assert_eq!(plan_parts(&mut sim), (1, 1, 0), "step {step}");
        assert!(sim.round());
        let fresh: Vec<&Task> = sim
            .wanted_running("s1")
            .into_iter()
            .filter(|t| t.spec == new_spec)
            .collect();
        assert_eq!(fresh.len(), step + 1, "one more each step");
        let newest = fresh
            .iter()
            .find(|t| t.status.state < TaskState::Running)
            .map(|t| t.id.clone())
            .expect("the new one is starting");
        assert_eq!(sim.plan(), None, "waits for the replacement to run");
        sim.report(&newest, TaskState::Starting);
        assert_eq!(sim.plan(), None, "starting is not running");
        sim.report(&newest, TaskState::Running);
        replaced.push(newest);
        assert_eq!(sim.wanted_running("s1").len(), 3);
    }
    assert_eq!(sim.plan(), None);
    let running = sim.wanted_running("s1");
    assert_eq!(slots(&running), [1, 2, 3]);
    assert!(running.iter().all(|t| t.spec == new_spec));
    for id in &before {
        assert_eq!(sim.task(id).desired_state, TaskState::Shutdown);
    }
    assert_eq!(replaced.len(), 3);
}

#[test]
fn an_update_stops_first_so_the_replacement_gets_the_reservation() {
    let mut sim = Sim::new(&[node_with("a", "host-a", &[])]);
    let mut service = replicated("s1", 1);
    service
        .spec
        .task_template
        .resources
        .reservations
        .memory_bytes = 6 << 30; // of 8 GiB
    let mut agent = global("g1");
    agent.spec.task_template.resources.reservations.memory_bytes = 1 << 30;
    sim.create(&service);
    sim.create(&agent);
    sim.converge();
    let old = current(&sim, "s1", 1);
    for id in ["s1", "g1"] {
        sim.update(id, |spec| {
            spec.task_template.container_spec.env = vec!["V=2".into()];
        });
    }
    assert_eq!(plan_parts(&mut sim), (2, 2, 0));
    assert!(sim.round());
    let new = current(&sim, "s1", 1);
    assert_ne!(new, old);
    assert_eq!(sim.task(&new).node_id, "a");
    assert_eq!(sim.task(&new).status.state, TaskState::Assigned);
    assert_eq!(sim.per_node("g1").get("a"), Some(&1));
}

#[test]
fn a_global_update_replaces_on_the_same_node_but_not_on_paused_ones() {
    let mut sim = three_nodes();
    sim.create(&global("g1"));
    sim.converge();
    sim.set_availability("b", Availability::Pause);
    let old_on_b = sim
        .wanted_running("g1")
        .iter()
        .find(|t| t.node_id == "b")
        .map(|t| t.id.clone())
        .expect("a task on b");
    sim.update("g1", |spec| {
        spec.task_template.container_spec.args = vec!["--v2".into()];
    });
    sim.converge();
    let new_spec = sim.state.services["g1"].spec.task_template.clone();
    let counts = sim.per_node("g1");
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    for task in sim.wanted_running("g1") {
        if task.node_id == "b" {
            assert_eq!(task.id, old_on_b, "a paused node keeps its task");
        } else {
            assert_eq!(task.spec, new_spec);
        }
    }
}

// ---- removal and history ---------------------------------------------------

#[test]
fn a_removed_service_s_tasks_are_deleted_once_stopped() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 3));
    sim.create(&replicated("s2", 1));
    sim.converge();
    sim.set_node_state("c", NodeState::Down);
    sim.set_availability("b", Availability::Drain);
    sim.ok(Command::RemoveService { id: "s1".into() });
    assert!(
        sim.state
            .service_tasks("s1")
            .all(|t| t.desired_state == TaskState::Shutdown)
    );
    sim.settle();
    let left: BTreeSet<&str> = sim
        .state
        .service_tasks("s1")
        .map(|t| t.node_id.as_str())
        .collect();
    assert_eq!(
        left,
        BTreeSet::from(["a", "b"]),
        "the task of the down node is gone; the others run until they stop"
    );
    sim.converge();
    assert_eq!(sim.state.service_tasks("s1").count(), 0);
    assert_eq!(
        sim.wanted_running("s2").len(),
        1,
        "other services untouched"
    );
}

#[test]
fn a_removed_service_s_tasks_on_a_removed_node_are_deleted() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 3));
    sim.converge();
    sim.ok(Command::RemoveNode {
        id: "c".into(),
        force: true,
    });
    sim.ok(Command::RemoveService { id: "s1".into() });
    sim.settle();
    let left: BTreeSet<&str> = sim
        .state
        .service_tasks("s1")
        .map(|t| t.node_id.as_str())
        .collect();
    assert_eq!(left, BTreeSet::from(["a", "b"]));
    sim.converge();
    assert!(sim.state.tasks.is_empty());
}

#[test]
fn scaling_to_zero_stops_everything_and_settles() {
    let mut sim = three_nodes();
    sim.create(&replicated("s1", 3));
    sim.converge();
    sim.update("s1", |spec| set_replicas(spec, 0));
    sim.converge();
    assert!(sim.wanted_running("s1").is_empty());
    assert!(
        sim.state
            .service_tasks("s1")
            .all(|t| t.status.state == TaskState::Shutdown)
    );
    assert_eq!(sim.plan(), None);
}

#[test]
fn history_beyond_the_retention_limit_is_deleted_oldest_first() {
    let mut sim = three_nodes();
    sim.create(&with_restart(
        replicated("s1", 2),
        no_delay(RestartCondition::Any),
    ));
    sim.converge();
    let mut failed = Vec::new();
    for _ in 0..8 {
        let task = current(&sim, "s1", 1);
        sim.advance(SECOND);
        sim.report(&task, TaskState::Failed);
        sim.converge();
        failed.push(task);
    }
    let history = slot_tasks(&sim, "s1", 1);
    assert_eq!(history.len(), 6, "5 ended and the current one");
    let kept: Vec<String> = history[..5].iter().map(|t| t.id.clone()).collect();
    assert_eq!(kept, failed[3..], "the 3 oldest were deleted");
    assert_eq!(slot_tasks(&sim, "s1", 2).len(), 1, "slot 2 untouched");

    let cluster = sim.state.cluster.clone().expect("swarm");
    let mut spec = cluster.spec.clone();
    spec.task_history_retention_limit = 1;
    sim.ok(Command::UpdateCluster {
        expected_version: cluster.version,
        spec,
        rotate_worker_token: None,
        rotate_manager_token: None,
    });
    sim.converge();
    let history = slot_tasks(&sim, "s1", 1);
    assert_eq!(ids(&history[..1]), failed[7..]);
    assert_eq!(history.len(), 2);
}

#[test]
fn a_zero_history_limit_keeps_ended_slots_that_hold_their_place() {
    let mut sim = three_nodes();
    let cluster = sim.state.cluster.clone().expect("swarm");
    let mut spec = cluster.spec.clone();
    spec.task_history_retention_limit = 0;
    sim.ok(Command::UpdateCluster {
        expected_version: cluster.version,
        spec,
        rotate_worker_token: None,
        rotate_manager_token: None,
    });
    sim.create(&with_restart(
        replicated("s1", 1),
        no_delay(RestartCondition::None),
    ));
    sim.converge();
    let task = current(&sim, "s1", 1);
    sim.report(&task, TaskState::Complete);
    sim.converge();
    assert_eq!(sim.task(&task).desired_state, TaskState::Complete);
    assert_eq!(
        sim.state.service_tasks("s1").count(),
        1,
        "not refilled after being deleted"
    );
}

#[test]
fn global_history_is_kept_per_node() {
    let mut sim = three_nodes();
    sim.create(&with_restart(global("g1"), no_delay(RestartCondition::Any)));
    sim.converge();
    for _ in 0..7 {
        let on_a = sim
            .wanted_running("g1")
            .iter()
            .find(|t| t.node_id == "a")
            .map(|t| t.id.clone())
            .expect("a task on a");
        sim.report(&on_a, TaskState::Failed);
        sim.converge();
    }
    let on = |node: &str| {
        sim.state
            .service_tasks("g1")
            .filter(|t| t.node_id == node)
            .count()
    };
    assert_eq!(on("a"), 6);
    assert_eq!(on("b"), 1);
}
