//! The orchestrator (DESIGN.md §3): from the state, the one
//! [`Command::PlanTasks`] that moves every service towards its spec. Pure;
//! the leader runs it in a loop and proposes the plan when it is not empty.
//!
//! Replicated services have numbered slots. A slot is *held* while it has a
//! task wanted `running` (or `complete`: ended and deliberately not
//! restarted). Fewer held slots than replicas → new slots; more → the
//! surplus slots (not running first, then on the busiest nodes, then the
//! highest numbers) are shut down. Global services hold one task per node
//! that accepts it.
//!
//! A task that ended while wanted running is restarted per its restart
//! policy: `none` never, `on-failure` after a failure, `any` always, after
//! the delay, at most `max_attempts` times within the window (when set);
//! a task it will not restart is wanted `complete`. A task whose node went
//! Down, was removed or drained, or no longer satisfies a global service's
//! constraints is shut down and, for replicated services, replaced at once.
//! A task whose spec differs from its service's is replaced one at a time,
//! stop first, once the service has no task starting.
//!
//! New tasks go through the [`scheduler`](crate::scheduler); pending ones are
//! retried every round. Ended tasks are kept per slot up to the swarm's
//! task history limit; tasks of removed services are deleted once stopped.

use std::collections::{BTreeMap, BTreeSet};

use shoal_api::service::{RestartCondition, ServiceMode, TaskState, nanos};

use crate::{
    scheduler::{self, Placements, constraint},
    state::{
        Availability, ClusterState, Command, NewTask, NodeState, Service, Task, TaskChange,
        types::DEFAULT_TASK_HISTORY_RETENTION_LIMIT,
    },
};

/// The round's decisions, turned into one command.
#[derive(Debug, Default)]
struct Plan {
    create: Vec<NewTask>,
    update: BTreeMap<String, TaskChange>,
    delete: Vec<String>,
    placements: Placements,
}

impl Plan {
    fn change(&mut self, id: &str) -> &mut TaskChange {
        self.update
            .entry(id.to_owned())
            .or_insert_with(|| TaskChange {
                id: id.to_owned(),
                ..TaskChange::default()
            })
    }

    fn stop(&mut self, task: &Task, desired: TaskState) {
        if task.desired_state < desired {
            self.change(&task.id).desired_state = Some(desired);
        }
    }

    /// A new task for `service` in `slot` (or for `node_id`), scheduled now.
    fn add(
        &mut self,
        state: &ClusterState,
        service: &Service,
        slot: u64,
        node_id: Option<&str>,
        new_id: &mut dyn FnMut() -> String,
    ) {
        let placed = match node_id {
            Some(node) => Ok(node.to_owned()),
            None => scheduler::place(
                state,
                &mut self.placements,
                &service.id,
                &service.spec.task_template,
            ),
        };
        let (node_id, state, message) = match placed {
            Ok(node) => (
                node,
                TaskState::Assigned,
                "scheduler assigned task to node".to_owned(),
            ),
            Err(reason) => (String::new(), TaskState::Pending, reason),
        };
        self.create.push(NewTask {
            id: new_id(),
            service_id: service.id.clone(),
            slot,
            node_id,
            state,
            message,
        });
    }

    fn into_command(self) -> Option<Command> {
        if self.create.is_empty() && self.update.is_empty() && self.delete.is_empty() {
            return None;
        }
        Some(Command::PlanTasks {
            create: self.create,
            update: self.update.into_values().collect(),
            delete: self.delete,
        })
    }
}

/// The command that reconciles every service at `now_ms`, or `None` when
/// everything is as it should be. `new_id` makes task IDs.
pub fn plan(
    state: &ClusterState,
    now_ms: u64,
    new_id: &mut dyn FnMut() -> String,
) -> Option<Command> {
    let mut plan = Plan::default();
    stop_lost_tasks(state, &mut plan);
    for service in state.services.values() {
        let tasks: Vec<&Task> = state.service_tasks(&service.id).collect();
        match service.spec.mode {
            ServiceMode::Replicated(_) => {
                reconcile_replicated(state, service, &tasks, now_ms, &mut plan, new_id);
            }
            ServiceMode::Global(_) => {
                reconcile_global(state, service, &tasks, now_ms, &mut plan, new_id);
            }
        }
    }
    schedule_pending(state, &mut plan);
    collect_garbage(state, &mut plan);
    plan.into_command()
}

/// Whether the node of `task` is gone for good, Down or drained: its tasks
/// must stop and (replicated) run elsewhere.
fn node_lost(state: &ClusterState, task: &Task) -> bool {
    if task.node_id.is_empty() {
        return false;
    }
    state.nodes.get(&task.node_id).is_none_or(|node| {
        node.status.state == NodeState::Down || node.spec.availability == Availability::Drain
    })
}

/// Tasks wanted running on lost nodes are shut down; on a removed node,
/// they are marked orphaned (nobody will report them stopped).
fn stop_lost_tasks(state: &ClusterState, plan: &mut Plan) {
    for task in state.tasks.values() {
        if task.status.state.is_final() {
            continue;
        }
        if task.desired_state <= TaskState::Running && node_lost(state, task) {
            plan.stop(task, TaskState::Shutdown);
        }
        if !task.node_id.is_empty() && !state.nodes.contains_key(&task.node_id) {
            plan.change(&task.id).status = Some((TaskState::Orphaned, "node removed".to_owned()));
        } else if task.node_id.is_empty() && task.desired_state > TaskState::Running {
            plan.change(&task.id).status = Some((
                TaskState::Shutdown,
                "shut down before it was assigned".to_owned(),
            ));
        }
    }
}

/// The desired state the restart policy gives a task that ended while
/// wanted running: `Some(Shutdown)` to replace it now, `Some(Complete)` to
/// leave its slot ended, `None` to wait for the restart delay.
fn restart_decision(task: &Task, history: &[&Task], now_ms: u64) -> Option<TaskState> {
    let policy = &task.spec.restart_policy;
    let condition = policy.condition();
    let failed = task.status.state != TaskState::Complete;
    if condition == RestartCondition::None || (condition == RestartCondition::OnFailure && !failed)
    {
        return Some(TaskState::Complete);
    }
    if let Some(max) = policy.max_attempts.filter(|&m| m > 0) {
        let window_ms = policy.window.map_or(0, |w| {
            u64::try_from(nanos(w).as_millis()).unwrap_or(u64::MAX)
        });
        let restarts = history
            .iter()
            .filter(|t| t.id != task.id && t.desired_state == TaskState::Shutdown)
            .filter(|t| window_ms == 0 || t.created_at_ms + window_ms >= now_ms)
            .count();
        if u64::try_from(restarts).unwrap_or(u64::MAX) >= max {
            return Some(TaskState::Complete);
        }
    }
    let delay_ms = u64::try_from(policy.delay().as_millis()).unwrap_or(u64::MAX);
    (task.status.timestamp_ms + delay_ms <= now_ms).then_some(TaskState::Shutdown)
}

/// What one slot (or one global node) needs: handles its current task's
/// end, loss or staleness, and says what the slot needs.
fn reconcile_slot<'a>(
    state: &ClusterState,
    service: &Service,
    slot_tasks: &[&'a Task],
    now_ms: u64,
    plan: &mut Plan,
) -> SlotOutcome<'a> {
    let Some(current) = slot_tasks
        .iter()
        .filter(|t| t.desired_state <= TaskState::Complete)
        .max_by_key(|t| t.created_at_ms)
    else {
        return SlotOutcome::Released;
    };
    if current.desired_state == TaskState::Complete {
        return SlotOutcome::Held;
    }
    if node_lost(state, current) {
        return SlotOutcome::Replace;
    }
    if current.status.state.is_final() {
        return match restart_decision(current, slot_tasks, now_ms) {
            Some(TaskState::Complete) => {
                plan.stop(current, TaskState::Complete);
                SlotOutcome::Held
            }
            Some(_) => {
                plan.stop(current, TaskState::Shutdown);
                SlotOutcome::Replace
            }
            None => SlotOutcome::Held,
        };
    }
    if current.spec != service.spec.task_template {
        return SlotOutcome::Stale(current);
    }
    SlotOutcome::Held
}

enum SlotOutcome<'a> {
    /// The slot has a task that needs nothing.
    Held,
    /// The slot has no task wanted running or complete.
    Released,
    /// The slot's task is gone or ended: a new one is due.
    Replace,
    /// The slot's task runs an old spec.
    Stale(&'a Task),
}

fn reconcile_replicated(
    state: &ClusterState,
    service: &Service,
    tasks: &[&Task],
    now_ms: u64,
    plan: &mut Plan,
    new_id: &mut dyn FnMut() -> String,
) {
    let replicas = service.spec.mode.replicas().unwrap_or(0);
    let mut by_slot: BTreeMap<u64, Vec<&Task>> = BTreeMap::new();
    for task in tasks {
        by_slot.entry(task.slot).or_default().push(task);
    }
    // Held slots: (slot, its live task if any, whether it needs a new one).
    let mut held: Vec<(u64, Option<&Task>, bool)> = Vec::new();
    let mut outdated = Vec::new();
    for (&slot, slot_tasks) in &by_slot {
        let live = slot_tasks
            .iter()
            .filter(|t| t.desired_state <= TaskState::Running && !t.status.state.is_final())
            .max_by_key(|t| t.created_at_ms)
            .copied();
        match reconcile_slot(state, service, slot_tasks, now_ms, plan) {
            SlotOutcome::Released => {}
            SlotOutcome::Held => held.push((slot, live, false)),
            SlotOutcome::Replace => held.push((slot, None, true)),
            SlotOutcome::Stale(task) => {
                held.push((slot, live, false));
                outdated.push((slot, task));
            }
        }
    }
    let held_count = u64::try_from(held.len()).unwrap_or(u64::MAX);
    let mut removed = BTreeSet::new();
    if held_count > replicas {
        // Surplus slots: those without a running task first, then those on
        // the nodes with the most tasks of the service, then the highest.
        let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
        for task in held.iter().filter_map(|(_, task, _)| *task) {
            *per_node.entry(task.node_id.as_str()).or_default() += 1;
        }
        let mut order: Vec<(bool, usize, u64)> = held
            .iter()
            .map(|(slot, task, _)| {
                let running = task.is_some_and(|t| t.status.state == TaskState::Running);
                let crowd = task.map_or(0, |t| per_node[t.node_id.as_str()]);
                (running, crowd, *slot)
            })
            .collect();
        order.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(b.2.cmp(&a.2)));
        let surplus = usize::try_from(held_count - replicas).unwrap_or(usize::MAX);
        for &(_, _, slot) in order.iter().take(surplus) {
            removed.insert(slot);
            for task in &by_slot[&slot] {
                plan.stop(task, TaskState::Shutdown);
            }
        }
    }
    for &(slot, _, needs_task) in &held {
        if needs_task && !removed.contains(&slot) {
            plan.add(state, service, slot, None, new_id);
        }
    }
    let used: BTreeSet<u64> = held.iter().map(|(slot, _, _)| *slot).collect();
    let mut free_slots = (1..).filter(|slot| !used.contains(slot));
    for _ in held_count..replicas {
        if let Some(slot) = free_slots.next() {
            plan.add(state, service, slot, None, new_id);
        }
    }
    replace_one_stale(state, service, tasks, outdated, &removed, plan, new_id);
}

/// Replaces the first stale task (stop first), unless a task of the service
/// is still on its way to running.
fn replace_one_stale(
    state: &ClusterState,
    service: &Service,
    tasks: &[&Task],
    outdated: Vec<(u64, &Task)>,
    removed: &BTreeSet<u64>,
    plan: &mut Plan,
    new_id: &mut dyn FnMut() -> String,
) {
    let starting = tasks
        .iter()
        .any(|t| t.desired_state == TaskState::Running && t.status.state < TaskState::Running)
        || plan.create.iter().any(|t| t.service_id == service.id);
    if starting {
        return;
    }
    if let Some((slot, task)) = outdated
        .into_iter()
        .find(|(slot, _)| !removed.contains(slot))
    {
        plan.stop(task, TaskState::Shutdown);
        let node = (task.slot == 0).then_some(task.node_id.as_str());
        plan.add(state, service, slot, node, new_id);
    }
}

fn reconcile_global(
    state: &ClusterState,
    service: &Service,
    tasks: &[&Task],
    now_ms: u64,
    plan: &mut Plan,
    new_id: &mut dyn FnMut() -> String,
) {
    let constraints = constraint::parse_all(&service.spec.task_template.placement.constraints)
        .unwrap_or_default();
    let mut by_node: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for task in tasks {
        by_node.entry(task.node_id.as_str()).or_default().push(task);
    }
    let mut outdated = Vec::new();
    for node in state.nodes.values() {
        let node_tasks = by_node.remove(node.id.as_str()).unwrap_or_default();
        let wanted = node.status.state != NodeState::Down
            && node.spec.availability != Availability::Drain
            && constraints.iter().all(|c| c.matches(node));
        if !wanted {
            for task in node_tasks {
                plan.stop(task, TaskState::Shutdown);
            }
            continue;
        }
        let creatable = scheduler::accepts_new_tasks(node, &constraints);
        match reconcile_slot(state, service, &node_tasks, now_ms, plan) {
            SlotOutcome::Held => {}
            SlotOutcome::Released | SlotOutcome::Replace => {
                if creatable {
                    plan.add(state, service, 0, Some(&node.id), new_id);
                }
            }
            SlotOutcome::Stale(task) => outdated.push((0, task)),
        }
    }
    // Tasks on nodes that left the swarm were stopped by stop_lost_tasks.
    replace_one_stale(
        state,
        service,
        tasks,
        outdated,
        &BTreeSet::new(),
        plan,
        new_id,
    );
}

/// Retries placing tasks that are pending; updates the reason when it
/// changed.
fn schedule_pending(state: &ClusterState, plan: &mut Plan) {
    for task in state.tasks.values() {
        if task.status.state != TaskState::Pending
            || task.desired_state != TaskState::Running
            || !task.node_id.is_empty()
            || plan
                .update
                .get(&task.id)
                .is_some_and(|c| c.desired_state.is_some())
        {
            continue;
        }
        match scheduler::place(state, &mut plan.placements, &task.service_id, &task.spec) {
            Ok(node) => plan.change(&task.id).assign_to = Some(node),
            Err(reason) if reason != task.status.message => {
                plan.change(&task.id).status = Some((TaskState::Pending, reason));
            }
            Err(_) => {}
        }
    }
}

/// Deletes ended tasks beyond the history limit per slot, and tasks of
/// removed services once they stopped (or their node is gone).
fn collect_garbage(state: &ClusterState, plan: &mut Plan) {
    let limit = state
        .cluster
        .as_ref()
        .map_or(DEFAULT_TASK_HISTORY_RETENTION_LIMIT, |c| {
            c.spec.task_history_retention_limit
        });
    let mut history: BTreeMap<(&str, u64, &str), Vec<&Task>> = BTreeMap::new();
    for task in state.tasks.values() {
        let ended = task.desired_state > TaskState::Running
            && (task.status.state.is_final() || node_lost(state, task));
        if !state.services.contains_key(&task.service_id) {
            if ended || task.node_id.is_empty() {
                plan.delete.push(task.id.clone());
            }
            continue;
        }
        if ended {
            let node = if task.slot == 0 {
                task.node_id.as_str()
            } else {
                ""
            };
            history
                .entry((task.service_id.as_str(), task.slot, node))
                .or_default()
                .push(task);
        }
    }
    let Ok(limit) = usize::try_from(limit) else {
        return; // negative: keep everything
    };
    for mut ended in history.into_values() {
        if ended.len() > limit {
            ended.sort_by_key(|t| std::cmp::Reverse(t.created_at_ms));
            plan.delete
                .extend(ended[limit..].iter().map(|t| t.id.clone()));
        }
    }
    let deleted: BTreeSet<&String> = plan.delete.iter().collect();
    plan.update.retain(|id, _| !deleted.contains(id));
}
