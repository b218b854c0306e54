//! The orchestrator (DESIGN.md §3): from the state, the one
//! [`Command::PlanTasks`] that moves every service towards its spec. Pure;
//! the leader runs it in a loop and proposes the plan when it is not empty.
//!
//! Replicated services have numbered slots. A slot is *held* while it has a
//! task wanted `running` (or `complete`: ended and deliberately not
//! restarted). Fewer held slots than replicas → new slots; more → the
//! surplus slots (not running first, then on the node with the most of the
//! remaining tasks, then the highest numbers) are shut down. Global
//! services hold one task per node that accepts it.
//!
//! A task that ended while wanted running is restarted per its restart
//! policy, whatever became of its node: `none` never, `on-failure` after a
//! failure, `any` always, after the delay, at most `max_attempts` times
//! (counting the restarts of the slot's failed or completed tasks with the
//! same spec, within the window when set, by when they ended); a task it
//! will not restart is wanted `complete`. A live task whose node went Down,
//! was removed or drained, or no longer satisfies a global service's
//! constraints is shut down and, for replicated services, replaced at once.
//! A task whose spec differs from its service's is replaced one at a time,
//! stop first, once no task of the service's current spec is starting; a
//! stale task still pending is replaced at once, and a global task on a
//! node that takes no new tasks (paused) keeps running.
//!
//! New tasks go through the [`crate::scheduler`] (global ones are
//! only created when their node passes its filters); pending ones are
//! retried every round. Ended tasks are kept per slot up to the swarm's
//! task history limit, plus those still counted against `max_attempts`;
//! tasks of removed services are deleted once stopped (or their node is
//! Down or removed).

use std::collections::{BTreeMap, BTreeSet};

use shoal_api::service::{RestartCondition, ServiceMode, TaskSpec, TaskState, nanos};

use crate::{
    constraint,
    scheduler::{self, Placements},
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
            self.placements.release(&task.id);
        }
    }

    /// A new task for `service` in `slot`, scheduled now; or, for a global
    /// service, on `node_id` if the node passes the scheduler's filters.
    fn add(
        &mut self,
        state: &ClusterState,
        service: &Service,
        slot: u64,
        node_id: Option<&str>,
        new_id: &mut dyn FnMut() -> String,
    ) {
        let spec = &service.spec.task_template;
        let placed = match node_id {
            Some(node) => {
                if scheduler::place_on(state, &mut self.placements, &service.id, spec, node)
                    .is_err()
                {
                    return;
                }
                Ok(node.to_owned())
            }
            None => scheduler::place(state, &mut self.placements, &service.id, spec),
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
    collect_garbage(state, now_ms, &mut plan);
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

/// Whether the node of `task` was removed or is Down: nobody will see its
/// tasks stop (soon), so they count as ended.
fn node_gone(state: &ClusterState, task: &Task) -> bool {
    !task.node_id.is_empty()
        && state
            .nodes
            .get(&task.node_id)
            .is_none_or(|node| node.status.state == NodeState::Down)
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

/// Whether `task`, in the history of a slot whose current spec is `spec`,
/// was a restart counted against `max_attempts` at `now_ms`: it ended on
/// its own (completed, failed or rejected) and was replaced, it ran the
/// same spec, and it ended within the restart window (if any).
fn counted_restart(task: &Task, spec: &TaskSpec, now_ms: u64) -> bool {
    let window_ms = spec.restart_policy.window.map_or(0, |w| {
        u64::try_from(nanos(w).as_millis()).unwrap_or(u64::MAX)
    });
    task.desired_state == TaskState::Shutdown
        && matches!(
            task.status.state,
            TaskState::Complete | TaskState::Failed | TaskState::Rejected
        )
        && task.spec == *spec
        && (window_ms == 0 || task.status.timestamp_ms.saturating_add(window_ms) >= now_ms)
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
        let restarts = history
            .iter()
            .filter(|t| t.id != task.id && counted_restart(t, &task.spec, now_ms))
            .count();
        if u64::try_from(restarts).unwrap_or(u64::MAX) >= max {
            return Some(TaskState::Complete);
        }
    }
    let delay_ms = u64::try_from(policy.delay().as_millis()).unwrap_or(u64::MAX);
    (task.status.timestamp_ms.saturating_add(delay_ms) <= now_ms).then_some(TaskState::Shutdown)
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
    if node_lost(state, current) {
        plan.stop(current, TaskState::Shutdown);
        return SlotOutcome::Replace;
    }
    if !runs_current_spec(state, service, current) {
        if current.node_id.is_empty() {
            // Pending: nothing runs, and it must not land with its old spec.
            plan.stop(current, TaskState::Shutdown);
            return SlotOutcome::Replace;
        }
        return SlotOutcome::Stale(current);
    }
    SlotOutcome::Held
}

/// Whether `task` runs what `service` asks for now: its task spec, and an
/// attachment to the ingress network exactly when the service publishes
/// ports (an update that starts or stops publishing replaces the tasks,
/// which get or lose their ingress interface).
fn runs_current_spec(state: &ClusterState, service: &Service, task: &Task) -> bool {
    let on_ingress = state
        .ingress_network()
        .is_some_and(|n| task.addresses.contains_key(&n.id));
    task.spec == service.spec.task_template && on_ingress == service.needs_ingress()
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
        // Surplus slots, one at a time: those without a running task first,
        // then those on the node with the most remaining tasks of the
        // service, then the highest.
        let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
        for task in held.iter().filter_map(|(_, task, _)| *task) {
            *per_node.entry(task.node_id.as_str()).or_default() += 1;
        }
        let mut candidates: Vec<(bool, Option<&str>, u64)> = held
            .iter()
            .map(|(slot, task, _)| {
                let running = task.is_some_and(|t| t.status.state == TaskState::Running);
                (running, task.map(|t| t.node_id.as_str()), *slot)
            })
            .collect();
        for _ in replicas..held_count {
            let crowd = |node: Option<&str>| node.map_or(0, |n| per_node[n]);
            let Some(pick) = (0..candidates.len()).max_by_key(|&i| {
                let (running, node, slot) = candidates[i];
                (!running, crowd(node), slot)
            }) else {
                break;
            };
            let (_, node, slot) = candidates.swap_remove(pick);
            if let Some(count) = node.and_then(|n| per_node.get_mut(n)) {
                *count -= 1;
            }
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

/// Replaces the first stale task (stop first), unless a task of the
/// service's current spec is still on its way to running.
fn replace_one_stale(
    state: &ClusterState,
    service: &Service,
    tasks: &[&Task],
    outdated: Vec<(u64, &Task)>,
    removed: &BTreeSet<u64>,
    plan: &mut Plan,
    new_id: &mut dyn FnMut() -> String,
) {
    let starting = tasks.iter().any(|t| {
        t.desired_state == TaskState::Running
            && t.status.state < TaskState::Running
            && runs_current_spec(state, service, t)
    }) || plan.create.iter().any(|t| t.service_id == service.id);
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
            && constraints.iter().all(|c| node.satisfies(c));
        if !wanted {
            for task in node_tasks {
                plan.stop(task, TaskState::Shutdown);
            }
            continue;
        }
        match reconcile_slot(state, service, &node_tasks, now_ms, plan) {
            SlotOutcome::Released | SlotOutcome::Replace => {
                plan.add(state, service, 0, Some(&node.id), new_id);
            }
            // A node that takes no new task keeps its old one.
            SlotOutcome::Stale(task) if scheduler::accepts_new_tasks(node, &constraints) => {
                outdated.push((0, task));
            }
            SlotOutcome::Held | SlotOutcome::Stale(_) => {}
        }
    }
    // Nodes that left the swarm: their live tasks were orphaned by
    // stop_lost_tasks; the ended ones are not restarted anywhere.
    for task in by_node.into_values().flatten() {
        plan.stop(task, TaskState::Shutdown);
    }
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

/// Deletes ended tasks beyond the history limit per slot (keeping those
/// still counted against `max_attempts`), and tasks of removed services
/// once they stopped (or their node is gone).
fn collect_garbage(state: &ClusterState, now_ms: u64, plan: &mut Plan) {
    let limit = state
        .cluster
        .as_ref()
        .map_or(DEFAULT_TASK_HISTORY_RETENTION_LIMIT, |c| {
            c.spec.task_history_retention_limit
        });
    let mut history: BTreeMap<(&str, u64, &str), Vec<&Task>> = BTreeMap::new();
    for task in state.tasks.values() {
        // Wanted complete is not history: it holds its slot.
        let ended = task.desired_state > TaskState::Complete
            && (task.status.state.is_final() || node_gone(state, task));
        let Some(service) = state.services.get(&task.service_id) else {
            if ended || task.node_id.is_empty() {
                plan.delete.push(task.id.clone());
            }
            continue;
        };
        if ended {
            let node = if task.slot == 0 {
                task.node_id.as_str()
            } else {
                ""
            };
            history
                .entry((service.id.as_str(), task.slot, node))
                .or_default()
                .push(task);
        }
    }
    if let Ok(limit) = usize::try_from(limit) {
        // (A negative limit keeps everything.)
        for ((service_id, _, _), mut ended) in history {
            if ended.len() <= limit {
                continue;
            }
            let spec = &state.services[service_id].spec.task_template;
            let max_attempts = spec
                .restart_policy
                .max_attempts
                .and_then(|m| usize::try_from(m).ok())
                .unwrap_or(0);
            ended.sort_by_key(|t| std::cmp::Reverse(t.created_at_ms));
            let mut evidence = 0;
            for (i, task) in ended.iter().enumerate() {
                let counted = evidence < max_attempts && counted_restart(task, spec, now_ms);
                if counted {
                    evidence += 1;
                }
                if i >= limit && !counted {
                    plan.delete.push(task.id.clone());
                }
            }
        }
    }
    let deleted: BTreeSet<&String> = plan.delete.iter().collect();
    plan.update.retain(|id, _| !deleted.contains(id));
}

#[cfg(test)]
pub(crate) mod simulation;
#[cfg(test)]
mod tests;
