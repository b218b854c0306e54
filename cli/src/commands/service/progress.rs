//! Convergence progress after `shoal service create|update|scale`, as docker's
//! CLI shows it: `overall progress: 2 out of 3 tasks`, one line per slot
//! (`1/3: running   [=====>]`) or per node for global services, a task's
//! error in its place (`1/3: task: non-zero exit (1)`), then
//! `verify: Service <id> converged` once every task has stayed up for the
//! update monitor period (5 s by default).
//!
//! The service and its up-to-date tasks are polled every 200 ms. On a
//! terminal the lines are redrawn in place; otherwise a line is printed
//! each time it changes. Ctrl-C stops waiting (the service goes on);
//! a service removed meanwhile ends the wait with its error.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    io::{IsTerminal as _, Write},
    time::{Duration, Instant},
};

use shoal_api::{
    Client,
    docker::{self, Service, Task},
    service::{DEFAULT_UPDATE_MONITOR, ServiceMode, ServiceSpec, TaskState, UpdateConfig},
};

use crate::{
    daemon::{inspect_service, list_tasks},
    docker_error::DockerError,
    filters::Filters,
};

/// Above this many tasks only the overall line is shown.
const MAX_PROGRESS_BARS: u64 = 20;
/// Width of the longest state docker pads to (`preparing`).
const LONGEST_STATE: usize = 9;
/// Between polls.
const POLL: Duration = Duration::from_millis(200);

/// Waits for `service` to converge, showing docker's progress on stdout
/// (nothing when `quiet`). Returns early, successfully, on Ctrl-C.
pub(super) async fn wait_on_service(
    client: &Client,
    service: &str,
    quiet: bool,
) -> Result<(), DockerError> {
    let stdout = std::io::stdout();
    let tty = !quiet && stdout.is_terminal();
    let sink: Box<dyn Write> = if quiet {
        Box::new(std::io::sink())
    } else {
        Box::new(stdout)
    };
    let mut board = Board::new(sink, tty);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut updater: Option<Updater> = None;
    let mut converged = false;
    let mut converged_at: Option<Instant> = None;
    loop {
        let current = inspect_service(client, service).await?;
        let monitor = monitor_period(&current.spec);
        let updater = updater.get_or_insert_with(|| Updater::new(&current.spec.mode));
        if converged && converged_at.is_some_and(|at| at.elapsed() >= monitor) {
            board.set("verify", &format!("Service {service} converged"));
            board.draw();
            return Ok(());
        }
        let tasks = list_tasks(client, &up_to_date_filters(&current.id)).await?;
        let active = active_nodes(client).await?;
        let mut lines = Vec::new();
        converged = updater.update(&current, &tasks, &active, &mut lines)?;
        for (id, text) in &lines {
            board.set(id, text);
        }
        if converged {
            let at = *converged_at.get_or_insert_with(Instant::now);
            if let Some(wait) = monitor.checked_sub(at.elapsed()) {
                board.set(
                    "verify",
                    &format!(
                        "Waiting {} seconds to verify that tasks are stable...",
                        wait.as_secs() + 1
                    ),
                );
            }
        } else {
            if converged_at.is_some() {
                board.set("verify", "Detected task failure");
            }
            converged_at = None;
        }
        board.draw();
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = &mut ctrl_c => {
                if !converged {
                    board.message("Operation continuing in background.");
                    board.message(&format!("Use `shoal service ps {service}` to check progress."));
                }
                return Ok(());
            }
        }
    }
}

/// What `create` and `update` show once the daemon took the spec, as
/// docker's CLI does: the daemon's warnings on stderr, the service on
/// stdout, then, unless `detach`, the progress until it converges
/// ([`wait_on_service`], silent when `quiet`).
pub(super) async fn report_and_wait(
    client: &Client,
    service: &str,
    warnings: &[String],
    detach: bool,
    quiet: bool,
) -> Result<(), DockerError> {
    for warning in warnings {
        eprintln!("{warning}");
    }
    println!("{service}");
    if detach {
        return Ok(());
    }
    wait_on_service(client, service, quiet).await
}

/// How long the tasks must stay up before the service counts as
/// converged: the update config's monitor, docker's 5 s by default.
fn monitor_period(spec: &ServiceSpec) -> Duration {
    spec.update_config
        .as_ref()
        .map_or(DEFAULT_UPDATE_MONITOR, UpdateConfig::monitor)
}

/// Filters for the up-to-date tasks of a service, as docker's progress
/// asks for them.
fn up_to_date_filters(service_id: &str) -> Filters {
    Filters::from([
        (
            "service".to_owned(),
            BTreeSet::from([service_id.to_owned()]),
        ),
        (
            "_up-to-date".to_owned(),
            BTreeSet::from(["true".to_owned()]),
        ),
    ])
}

/// The nodes that are not down, by ID.
async fn active_nodes(client: &Client) -> Result<BTreeSet<String>, DockerError> {
    let nodes: Vec<docker::Node> = client.get_json("/nodes").await?;
    Ok(nodes
        .into_iter()
        .filter(|n| n.status.state != "down")
        .map(|n| n.id)
        .collect())
}

/// Docker's order of task states for the progress bars (up to running)
/// and for choosing the task that stands for a slot (the final states);
/// 0 for the states left out.
fn numbered(state: TaskState) -> u64 {
    match state {
        TaskState::New => 1,
        TaskState::Pending => 3,
        TaskState::Assigned => 4,
        TaskState::Accepted => 5,
        TaskState::Preparing => 6,
        TaskState::Ready => 7,
        TaskState::Starting => 8,
        TaskState::Running => 9,
        TaskState::Complete => 10,
        TaskState::Shutdown => 11,
        TaskState::Failed => 12,
        TaskState::Rejected => 13,
        TaskState::Remove | TaskState::Orphaned => 0,
    }
}

/// Past running: complete, shut down, failed or rejected.
fn terminal(state: TaskState) -> bool {
    numbered(state) > numbered(TaskState::Running)
}

/// Whether `task` should stand for its slot (or node) rather than
/// `existing`: the one with the lowest desired state, then the lowest
/// observed state.
fn replaces(existing: Option<&&Task>, task: &Task) -> bool {
    existing.is_none_or(|e| {
        let (ed, td) = (numbered(e.desired_state), numbered(task.desired_state));
        ed > td || (ed == td && numbered(e.status.state) > numbered(task.status.state))
    })
}

/// `state   [=====>     ]`, or the task's error.
fn task_line(task: &Task) -> Option<String> {
    if !task.status.err.is_empty() {
        return Some(trunc_error(&task.status.err));
    }
    if terminal(task.desired_state) || terminal(task.status.state) {
        return None;
    }
    let percent = usize::try_from(numbered(task.status.state) * 100 / 9 / 2)
        .unwrap_or(50)
        .min(50);
    Some(format!(
        "{:<LONGEST_STATE$} [{}>{}]",
        task.status.state.as_str(),
        "=".repeat(percent),
        " ".repeat(50 - percent)
    ))
}

/// One line, at most 75 characters.
fn trunc_error(err: &str) -> String {
    let line = err.replace('\n', " ");
    if line.chars().count() > 75 {
        let mut cut: String = line.chars().take(74).collect();
        cut.push('…');
        cut
    } else {
        line
    }
}

fn overall(running: u64, total: u64) -> (String, String) {
    (
        "overall progress".to_owned(),
        format!("{running} out of {total} tasks"),
    )
}

/// Tracks a service's tasks towards convergence and says which lines to
/// show, as docker's replicated and global progress updaters.
#[derive(Debug)]
enum Updater {
    Replicated(ReplicatedProgress),
    Global(GlobalProgress),
}

impl Updater {
    fn new(mode: &ServiceMode) -> Self {
        match mode {
            ServiceMode::Replicated(_) => Self::Replicated(ReplicatedProgress::default()),
            ServiceMode::Global(_) => Self::Global(GlobalProgress::default()),
        }
    }

    /// Takes in one poll; pushes `(id, text)` lines to show; whether all
    /// tasks run.
    fn update(
        &mut self,
        service: &Service,
        tasks: &[Task],
        active: &BTreeSet<String>,
        lines: &mut Vec<(String, String)>,
    ) -> Result<bool, DockerError> {
        match self {
            Self::Replicated(progress) => {
                let replicas = service
                    .spec
                    .mode
                    .replicas()
                    .ok_or_else(|| DockerError("no replica count".into()))?;
                Ok(progress.update(replicas, tasks, active, lines))
            }
            Self::Global(progress) => Ok(progress.update(tasks, active, lines)),
        }
    }
}

/// Whether the task takes part in the progress at all.
fn counted(task: &Task) -> bool {
    numbered(task.desired_state) != 0 && numbered(task.status.state) != 0
}

/// One line per slot, `1/3`…
#[derive(Debug, Default)]
struct ReplicatedProgress {
    /// Slots mapped onto 1…N in the order they were seen.
    slots: BTreeMap<u64, u64>,
    initialized: bool,
    done: bool,
}

impl ReplicatedProgress {
    fn update(
        &mut self,
        replicas: u64,
        tasks: &[Task],
        active: &BTreeSet<String>,
        lines: &mut Vec<(String, String)>,
    ) -> bool {
        if !self.initialized {
            self.slots.clear();
            lines.push(overall(0, replicas));
            if replicas <= MAX_PROGRESS_BARS {
                for slot in 1..=replicas {
                    lines.push((format!("{slot}/{replicas}"), " ".to_owned()));
                }
            }
            self.initialized = true;
        }
        let mut by_slot: BTreeMap<u64, &Task> = BTreeMap::new();
        for task in tasks.iter().filter(|t| counted(t)) {
            if replaces(by_slot.get(&task.slot), task)
                && (task.node_id.is_empty() || active.contains(&task.node_id))
            {
                by_slot.insert(task.slot, task);
            }
        }
        if self.done
            && by_slot
                .values()
                .any(|t| t.status.state != TaskState::Running)
        {
            self.done = false;
        }
        let mut running = 0;
        for (slot, task) in &by_slot {
            let next = u64::try_from(self.slots.len()).unwrap_or(u64::MAX) + 1;
            let mapped = *self.slots.entry(*slot).or_insert(next);
            if !terminal(task.desired_state) && task.status.state == TaskState::Running {
                running += 1;
            }
            if self.done || replicas > MAX_PROGRESS_BARS || mapped > replicas {
                continue;
            }
            if let Some(text) = task_line(task) {
                lines.push((format!("{mapped}/{replicas}"), text));
            }
        }
        if !self.done {
            lines.push(overall(running, replicas));
            self.done = running == replicas;
        }
        running == replicas
    }
}

/// One line per node, by its short ID.
#[derive(Debug, Default)]
struct GlobalProgress {
    initialized: bool,
    done: bool,
}

impl GlobalProgress {
    fn update(
        &mut self,
        tasks: &[Task],
        active: &BTreeSet<String>,
        lines: &mut Vec<(String, String)>,
    ) -> bool {
        let mut by_node: BTreeMap<&str, &Task> = BTreeMap::new();
        for task in tasks.iter().filter(|t| counted(t)) {
            if replaces(by_node.get(task.node_id.as_str()), task) {
                by_node.insert(&task.node_id, task);
            }
        }
        // The orchestrator makes the tasks of every eligible node at once,
        // so they tell how many nodes there are to wait for.
        let nodes = u64::try_from(by_node.len()).unwrap_or(u64::MAX);
        if !self.initialized {
            if nodes == 0 {
                lines.push((
                    "overall progress".to_owned(),
                    "waiting for new tasks".to_owned(),
                ));
                return false;
            }
            lines.push(overall(0, nodes));
            self.initialized = true;
        }
        if self.done
            && by_node
                .values()
                .any(|t| t.status.state != TaskState::Running)
        {
            self.done = false;
        }
        let mut running = 0;
        for (node, task) in by_node.iter().filter(|(node, _)| active.contains(**node)) {
            if !self.done
                && nodes <= MAX_PROGRESS_BARS
                && let Some(text) = task_line(task)
            {
                lines.push((node.get(..12).unwrap_or(node).to_owned(), text));
            }
            if !terminal(task.desired_state) && task.status.state == TaskState::Running {
                running += 1;
            }
        }
        if !self.done {
            lines.push(overall(running, nodes));
            self.done = running == nodes;
        }
        running == nodes
    }
}

/// The progress lines, keyed by their ID and kept in first-seen order.
/// On a terminal they are redrawn in place; otherwise each change is
/// printed as a line of its own (blank placeholders are not).
struct Board<W: Write> {
    out: W,
    tty: bool,
    lines: Vec<(String, String)>,
    /// Lines on screen from the last draw.
    drawn: usize,
    dirty: bool,
}

impl<W: Write> Board<W> {
    fn new(out: W, tty: bool) -> Self {
        Self {
            out,
            tty,
            lines: Vec::new(),
            drawn: 0,
            dirty: false,
        }
    }

    /// Sets the line `id` to `text`.
    fn set(&mut self, id: &str, text: &str) {
        let text = text.trim_end();
        match self.lines.iter_mut().find(|(line_id, _)| line_id == id) {
            Some((_, current)) if current == text => return,
            Some((_, current)) => text.clone_into(current),
            None => self.lines.push((id.to_owned(), text.to_owned())),
        }
        self.dirty = true;
        if !self.tty && !text.is_empty() {
            // Progress goes to stdout like docker's; a closed stdout only
            // loses the progress, not the wait.
            let _ = writeln!(self.out, "{id}: {text}");
        }
    }

    /// Shows the changes: on a terminal, redraws every line in place.
    fn draw(&mut self) {
        if self.tty && self.dirty {
            let mut frame = String::new();
            if self.drawn > 0 {
                let _ = write!(frame, "\x1b[{}A", self.drawn);
            }
            for (id, text) in &self.lines {
                let _ = write!(frame, "\r\x1b[2K{id}: {text}\n");
            }
            let _ = self.out.write_all(frame.as_bytes());
            self.drawn = self.lines.len();
        }
        self.dirty = false;
        let _ = self.out.flush();
    }

    /// A line of its own below the progress.
    fn message(&mut self, text: &str) {
        self.draw();
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(mode: &serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "ID": "svc", "Version": {"Index": 1},
            "Spec": {"Name": "web", "Mode": mode, "TaskTemplate": {"ContainerSpec": {"Image": "img"}}}
        }))
        .expect("a service")
    }

    fn task(slot: u64, node: &str, desired: &str, state: &str, err: &str) -> Task {
        serde_json::from_value(json!({
            "ID": format!("t{slot}{node}{state}"), "ServiceID": "svc", "NodeID": node,
            "Slot": slot, "DesiredState": desired,
            "Status": {"Timestamp": "2025-06-01T12:00:00Z", "State": state, "Err": err}
        }))
        .expect("a task")
    }

    fn active(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|&id| id.to_owned()).collect()
    }

    fn text(lines: &[(String, String)]) -> Vec<String> {
        lines
            .iter()
            .map(|(id, text)| format!("{id}: {text}").trim_end().to_owned())
            .collect()
    }

    #[test]
    fn replicated_progress_like_docker() {
        let svc = service(&json!({"Replicated": {"Replicas": 3}}));
        let mut updater = Updater::new(&svc.spec.mode);
        let nodes = active(&["n1", "n2"]);
        let mut lines = Vec::new();
        let tasks = [
            task(1, "n1", "running", "running", ""),
            task(2, "n2", "running", "preparing", ""),
            task(3, "", "running", "pending", ""),
        ];
        assert!(
            !updater
                .update(&svc, &tasks, &nodes, &mut lines)
                .expect("updates")
        );
        let bar = |n: usize| format!("[{}>{}]", "=".repeat(n), " ".repeat(50 - n));
        assert_eq!(
            text(&lines),
            [
                "overall progress: 0 out of 3 tasks".to_owned(),
                "1/3:".to_owned(),
                "2/3:".to_owned(),
                "3/3:".to_owned(),
                format!("1/3: running   {}", bar(50)),
                format!("2/3: preparing {}", bar(33)),
                format!("3/3: pending   {}", bar(16)),
                "overall progress: 1 out of 3 tasks".to_owned(),
            ]
        );

        // A failure shows its error in the slot; its replacement, with a
        // lower desired state, takes the slot over once it exists.
        lines.clear();
        let tasks = [
            task(1, "n1", "running", "running", ""),
            task(2, "n2", "running", "failed", "task: non-zero exit (1)"),
            task(3, "n1", "running", "running", ""),
        ];
        assert!(
            !updater
                .update(&svc, &tasks, &nodes, &mut lines)
                .expect("updates")
        );
        assert!(text(&lines).contains(&"2/3: task: non-zero exit (1)".to_owned()));

        lines.clear();
        let tasks = [
            task(1, "n1", "running", "running", ""),
            task(2, "n2", "shutdown", "failed", "task: non-zero exit (1)"),
            task(2, "n2", "running", "running", ""),
            task(3, "n1", "running", "running", ""),
            // On a node that is down: left out.
            task(4, "n9", "running", "running", ""),
        ];
        assert!(
            updater
                .update(&svc, &tasks, &nodes, &mut lines)
                .expect("updates")
        );
        assert_eq!(
            text(&lines).last().map(String::as_str),
            Some("overall progress: 3 out of 3 tasks")
        );

        // Converged: nothing more to say while it stays so.
        lines.clear();
        assert!(
            updater
                .update(&svc, &tasks, &nodes, &mut lines)
                .expect("updates")
        );
        assert!(lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn a_rejected_task_without_replacement_shows_its_error() {
        let svc = service(&json!({"Replicated": {"Replicas": 1}}));
        let mut updater = Updater::new(&svc.spec.mode);
        let mut lines = Vec::new();
        let tasks = [task(
            1,
            "n1",
            "shutdown",
            "rejected",
            "No such image: nope:1",
        )];
        let converged = updater
            .update(&svc, &tasks, &active(&["n1"]), &mut lines)
            .expect("updates");
        assert!(!converged);
        assert_eq!(
            text(&lines),
            [
                "overall progress: 0 out of 1 tasks",
                "1/1:",
                "1/1: No such image: nope:1",
                "overall progress: 0 out of 1 tasks"
            ]
        );
    }

    #[test]
    fn global_progress_per_node() {
        let svc = service(&json!({"Global": {}}));
        let mut updater = Updater::new(&svc.spec.mode);
        let nodes = active(&["node1aaaaaaaaaaaaa", "node2bbbbbbbbbbbbb"]);
        let mut lines = Vec::new();
        assert!(
            !updater
                .update(&svc, &[], &nodes, &mut lines)
                .expect("updates")
        );
        assert_eq!(text(&lines), ["overall progress: waiting for new tasks"]);
        lines.clear();
        let tasks = [
            task(0, "node1aaaaaaaaaaaaa", "running", "running", ""),
            task(0, "node2bbbbbbbbbbbbb", "running", "starting", ""),
        ];
        assert!(
            !updater
                .update(&svc, &tasks, &nodes, &mut lines)
                .expect("updates")
        );
        let lines = text(&lines);
        assert_eq!(lines[0], "overall progress: 0 out of 2 tasks");
        assert!(
            lines[1].starts_with("node1aaaaaaa: running   [====="),
            "{lines:?}"
        );
        assert!(
            lines[2].starts_with("node2bbbbbbb: starting  [====="),
            "{lines:?}"
        );
        assert_eq!(lines[3], "overall progress: 1 out of 2 tasks");
    }

    #[test]
    fn many_replicas_show_only_the_overall_line() {
        let svc = service(&json!({"Replicated": {"Replicas": 21}}));
        let mut updater = Updater::new(&svc.spec.mode);
        let mut lines = Vec::new();
        let tasks = [task(1, "n1", "running", "running", "")];
        updater
            .update(&svc, &tasks, &active(&["n1"]), &mut lines)
            .expect("updates");
        assert_eq!(
            text(&lines),
            [
                "overall progress: 0 out of 21 tasks",
                "overall progress: 1 out of 21 tasks"
            ]
        );
    }

    #[test]
    fn errors_are_one_short_line() {
        let long = "x".repeat(80) + "\nmore";
        let cut = trunc_error(&long);
        assert_eq!(cut.chars().count(), 75);
        assert!(cut.ends_with('…'));
        assert_eq!(trunc_error("a\nb"), "a b");
    }

    #[test]
    fn board_prints_changes_or_redraws_in_place() {
        let mut plain = Board::new(Vec::new(), false);
        plain.set("1/1", " ");
        plain.set("overall progress", "0 out of 1 tasks");
        plain.set("overall progress", "0 out of 1 tasks");
        plain.set("1/1", "running");
        plain.draw();
        assert_eq!(
            String::from_utf8(plain.out).expect("utf-8"),
            "overall progress: 0 out of 1 tasks\n1/1: running\n"
        );

        let mut tty = Board::new(Vec::new(), true);
        tty.set("a", "1");
        tty.set("b", "2");
        tty.draw();
        tty.draw();
        tty.set("a", "3");
        tty.draw();
        assert_eq!(
            String::from_utf8(tty.out).expect("utf-8"),
            "\r\x1b[2Ka: 1\n\r\x1b[2Kb: 2\n\x1b[2A\r\x1b[2Ka: 3\n\r\x1b[2Kb: 2\n"
        );
    }
}
