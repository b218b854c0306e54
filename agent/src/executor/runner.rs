//! One task's life on the node, from `assigned` to a final state: prepare
//! (the image, pulled from its registry when the node lacks it; the bundle), start (under the shim), watch (exit, health checks),
//! stop (stop signal, grace period, `SIGKILL`). Each step is reported to the
//! managers; a runner started for a container that already exists (agent
//! restart) adopts it instead of starting another. A task on overlay
//! networks has its DNS resolver ([`crate::dns`]) from before its container
//! starts (or from its adoption) until its container is gone.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use shoal_api::service::{TaskAssignment, TaskState, TaskStatus};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::{
    bundle::{self, BundleError},
    runc::{ExitRecord, Runc, read_exit},
    task_cgroup,
};
use crate::{
    dns::{Dns, TaskResolver},
    images::{ImageError, ImageStore, Reference},
    overlay::{Overlay, OverlayError},
    registry::{self, PullError},
    task_network::{self, AttachedInterface, TaskNetworkError},
};

/// Why a task did not start. Its status gets [`StartError::state`] and this
/// error's text, which `docker service ps` shows.
#[derive(Debug, thiserror::Error)]
enum StartError {
    /// The image is not on the node and names no registry to pull from.
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// The image store failed, or the reference is malformed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Pulling the image failed.
    #[error(transparent)]
    Pull(#[from] PullError),
    /// The task's network namespace or interfaces could not be made.
    #[error(transparent)]
    Network(#[from] TaskNetworkError),
    /// The task's interfaces could not be wired into the overlay.
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    /// The task's resolver could not start.
    #[error("starting the task's DNS: {0}")]
    Dns(#[source] std::io::Error),
    /// A file of the task could not be written.
    #[error("{op} {path}: {source}", path = path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The task's interfaces could not be recorded.
    #[error("recording the task's interfaces: {0}")]
    Interfaces(#[source] serde_json::Error),
    /// The OCI bundle could not be written.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The blocking preparation of the bundle did not finish.
    #[error("preparing the bundle: {0}")]
    Preparing(#[from] tokio::task::JoinError),
    /// The shim could not be started.
    #[error("starting the task shim: {0}")]
    Shim(#[source] std::io::Error),
    /// The shim recorded that runc could not start the container.
    #[error("{0}")]
    Runc(String),
    /// The container did not appear in time.
    #[error("the container did not start in time")]
    Timeout,
}

impl StartError {
    /// `rejected` when the task could not be prepared on this node,
    /// `failed` when its container did not start.
    fn state(&self) -> TaskState {
        match self {
            Self::Shim(_) | Self::Runc(_) | Self::Timeout => TaskState::Failed,
            _ => TaskState::Rejected,
        }
    }
}

fn io_error<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StartError + 'a {
    move |source| StartError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// How often a runner looks for its container's exit record.
const EXIT_POLL: Duration = Duration::from_millis(100);
/// How long a started container may take to show up in runc.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What every runner shares.
#[derive(Debug)]
pub struct RunnerContext {
    /// Where task directories live (`<data>/tasks`).
    pub tasks_dir: PathBuf,
    /// runc with the node's root.
    pub runc: Runc,
    /// The node's images.
    pub images: ImageStore,
    /// The cgroup under which task cgroups go (`shoal/<node ID>`).
    pub cgroup_parent: String,
    /// That cgroup's directory in the cgroup v2 hierarchy, where the
    /// socket programs attach; `None` on a host without one.
    pub cgroup2_parent: Option<PathBuf>,
    /// This executable, re-run as the task shim.
    pub shim_program: PathBuf,
    /// Registries pulled from over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// The MTU of overlay interfaces unless a network sets one (underlay
    /// MTU minus the VXLAN overhead).
    pub overlay_mtu: u32,
    /// The node's overlay.
    pub overlay: Arc<Overlay>,
    /// The node's DNS, serving the tasks' resolvers.
    pub dns: Arc<Dns>,
    /// Where status changes go (to the managers).
    pub reports: mpsc::UnboundedSender<(String, TaskStatus)>,
}

/// The files of one task.
#[derive(Clone, Debug)]
pub struct TaskPaths {
    /// `<tasks>/<task ID>`.
    pub dir: PathBuf,
    /// The OCI bundle.
    pub bundle: PathBuf,
    /// The container's stdout and stderr.
    pub log: PathBuf,
    /// The shim's [`ExitRecord`].
    pub exit: PathBuf,
    /// The task's network namespace, when it has overlay networks.
    pub netns: PathBuf,
    /// The task's interfaces ([`AttachedInterface`]s, JSON).
    pub interfaces: PathBuf,
}

impl TaskPaths {
    /// The files of task `id` under `tasks_dir`.
    #[must_use]
    pub fn new(tasks_dir: &Path, id: &str) -> Self {
        let dir = tasks_dir.join(id);
        Self {
            bundle: dir.join("bundle"),
            log: dir.join("container.log"),
            exit: dir.join("exit.json"),
            netns: dir.join("netns"),
            interfaces: dir.join("interfaces.json"),
            dir,
        }
    }
}

struct Runner {
    ctx: Arc<RunnerContext>,
    paths: TaskPaths,
    id: String,
    last: TaskStatus,
    /// The task's DNS resolver while it has one.
    resolver: Option<TaskResolver>,
}

impl Runner {
    fn report(&mut self, state: TaskState, message: &str, err: &str) {
        self.last = TaskStatus {
            timestamp_ms: 0,
            state,
            message: message.to_owned(),
            err: err.to_owned(),
            container_id: self.id.clone(),
            pid: 0,
            exit_code: None,
        };
        self.send();
    }

    fn send(&self) {
        let _ = self.ctx.reports.send((self.id.clone(), self.last.clone()));
    }
}

/// Runs task `assignment` to its end. `updates` carries newer versions of
/// the assignment; its sender dropping means the task was deleted (stop,
/// then remove everything). `adopt` says a container for it exists.
pub async fn run(
    ctx: Arc<RunnerContext>,
    mut updates: watch::Receiver<TaskAssignment>,
    adopt: bool,
) {
    let task = updates.borrow().clone();
    let paths = TaskPaths::new(&ctx.tasks_dir, &task.id);
    let mut runner = Runner {
        ctx,
        paths,
        id: task.id.clone(),
        last: task.status.clone(),
        resolver: None,
    };
    let started = if adopt {
        debug!(task = %task.id, "adopting the existing container");
        // Wire its interfaces again (idempotent): the agent may have died
        // between creating them and wiring them.
        let interfaces = read_interfaces(&runner.paths);
        if let Err(error) = runner.ctx.overlay.add_task(&interfaces) {
            warn!(task = %task.id, %error, "rewiring an adopted task's interfaces");
        }
        if !interfaces.is_empty() {
            attach_sockets(&runner.ctx, &task.id);
            match start_resolver(&runner.ctx, &runner.paths, &interfaces) {
                Ok(resolver) => runner.resolver = Some(resolver),
                Err(error) => warn!(task = %task.id, %error, "restarting an adopted task's DNS"),
            }
        }
        true
    } else if task.status.state >= TaskState::Accepted && !task.status.state.is_final() {
        // This node took the task before, and its container is gone.
        runner.report(
            TaskState::Failed,
            "container lost",
            "the task's container is gone",
        );
        false
    } else if task.status.state.is_final() || task.desired_state > TaskState::Running {
        if !task.status.state.is_final() {
            runner.report(TaskState::Shutdown, "shutdown", "");
        }
        false
    } else {
        match prepare_and_start(&mut runner, &task).await {
            Ok(()) => true,
            Err(error) => {
                warn!(task = %task.id, %error, "task did not start");
                runner.report(error.state(), "failed to start", &error.to_string());
                false
            }
        }
    };
    if started {
        watch_container(&mut runner, &task, &mut updates).await;
    }
    // Keep the logs until the managers delete the task.
    let _ = runner.ctx.runc.delete(&runner.id).await;
    runner.ctx.overlay.detach_sockets(&runner.id);
    if let Some(parent) = &runner.ctx.cgroup2_parent {
        task_cgroup::remove(parent, &runner.id);
    }
    runner.resolver = None;
    let interfaces = read_interfaces(&runner.paths);
    runner.ctx.overlay.remove_task(&interfaces);
    if let Err(error) = task_network::detach(&interfaces).await {
        warn!(task = %runner.id, %error, "removing the task's veths");
    }
    task_network::remove_netns(&runner.paths.netns);
    let _ = tokio::fs::remove_dir_all(&runner.paths.bundle).await;
    while updates.changed().await.is_ok() {}
    let _ = tokio::fs::remove_dir_all(&runner.paths.dir).await;
    debug!(task = %runner.id, "task removed");
}

/// Starts the DNS resolver of the task with `interfaces` in its namespace.
/// The `ingress` network resolves no names, as Docker's: every publishing
/// service is on it, and names there would join them all.
fn start_resolver(
    ctx: &Arc<RunnerContext>,
    paths: &TaskPaths,
    interfaces: &[AttachedInterface],
) -> Result<TaskResolver, std::io::Error> {
    let vnis = interfaces
        .iter()
        .filter(|i| !i.network.ingress)
        .map(|i| i.network.vni)
        .collect();
    ctx.dns.serve(&paths.netns, vnis)
}

/// Attaches the socket load balancer to task `task`'s cgroup, created
/// ahead of runc (which joins it), so that the task's first connection
/// to a VIP is translated already. Where it cannot, the tc path balances
/// the task's VIP traffic: a warning, not a failed task.
fn attach_sockets(ctx: &RunnerContext, task: &str) {
    let Some(parent) = &ctx.cgroup2_parent else {
        return;
    };
    match task_cgroup::create(parent, task) {
        Ok(cgroup) => {
            if let Err(error) = ctx.overlay.attach_sockets(task, &cgroup) {
                warn!(task, %error, "socket load balancing not attached: VIPs balanced per packet");
            }
        }
        Err(error) => {
            warn!(task, %error, "creating the task's cgroup: VIPs balanced per packet");
        }
    }
}

/// The interfaces recorded for a task (none without overlay networks).
fn read_interfaces(paths: &TaskPaths) -> Vec<AttachedInterface> {
    std::fs::read(&paths.interfaces)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or_default()
}

async fn prepare_and_start(runner: &mut Runner, task: &TaskAssignment) -> Result<(), StartError> {
    runner.report(TaskState::Accepted, "accepted", "");
    runner.report(TaskState::Preparing, "preparing", "");
    let image = task.spec.container_spec.image.clone();
    let store = runner.ctx.images.clone();
    let bundle = runner.paths.bundle.clone();
    if !store.contains(&image)? {
        if Reference::parse(&image)?.registry.is_none() {
            return Err(StartError::NoSuchImage(image));
        }
        runner.report(TaskState::Preparing, &format!("pulling {image}"), "");
        registry::pull(&store, &image, &runner.ctx.insecure_registries).await?;
    }
    let netns = if task.networks.is_empty() {
        None
    } else {
        let path = runner.paths.netns.clone();
        task_network::remove_netns(&path);
        std::fs::create_dir_all(&runner.paths.dir)
            .map_err(io_error("creating", &runner.paths.dir))?;
        task_network::create_netns(&path)?;
        let interfaces =
            task_network::attach(&path, &task.id, &task.networks, runner.ctx.overlay_mtu).await?;
        let json = serde_json::to_vec(&interfaces).map_err(StartError::Interfaces)?;
        std::fs::write(&runner.paths.interfaces, json)
            .map_err(io_error("writing", &runner.paths.interfaces))?;
        runner.ctx.overlay.add_task(&interfaces)?;
        attach_sockets(&runner.ctx, &task.id);
        runner.resolver =
            Some(start_resolver(&runner.ctx, &runner.paths, &interfaces).map_err(StartError::Dns)?);
        Some(path)
    };
    let cgroup_parent = runner.ctx.cgroup_parent.clone();
    let assignment = task.clone();
    tokio::task::spawn_blocking(move || -> Result<(), StartError> {
        let _ = std::fs::remove_dir_all(&bundle);
        std::fs::create_dir_all(&bundle).map_err(io_error("creating", &bundle))?;
        let config = store.unpack(&image, &bundle.join("rootfs"))?;
        bundle::write(
            &bundle,
            &assignment,
            &config,
            &cgroup_parent,
            netns.as_deref(),
        )?;
        Ok(())
    })
    .await??;
    runner.report(TaskState::Ready, "prepared", "");
    runner.report(TaskState::Starting, "starting", "");
    let _ = std::fs::remove_file(&runner.paths.exit);
    runner
        .ctx
        .runc
        .start_with_shim(
            &runner.ctx.shim_program,
            &runner.id,
            &runner.paths.bundle,
            &runner.paths.log,
            &runner.paths.exit,
        )
        .map_err(StartError::Shim)?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(exit) = read_exit(&runner.paths.exit)
            && exit.exit_code.is_none()
        {
            return Err(StartError::Runc(exit.error));
        }
        if runner.paths.bundle.join("init.pid").exists() || runner.paths.exit.exists() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(StartError::Timeout);
        }
        tokio::time::sleep(EXIT_POLL).await;
    }
}

/// The health of a task with a check.
struct Health {
    command: Vec<String>,
    interval: Duration,
    timeout: Duration,
    retries: u32,
    start_period_ends: Instant,
    failures: u32,
    healthy: bool,
    next: Instant,
}

async fn watch_container(
    runner: &mut Runner,
    task: &TaskAssignment,
    updates: &mut watch::Receiver<TaskAssignment>,
) {
    let container = &task.spec.container_spec;
    let mut health = container.healthcheck.as_ref().and_then(|h| {
        Some(Health {
            command: h.command()?,
            interval: h.interval(),
            timeout: h.timeout(),
            retries: h.retries(),
            start_period_ends: Instant::now() + h.start_period(),
            failures: 0,
            healthy: false,
            next: Instant::now(),
        })
    });
    let pid = std::fs::read_to_string(runner.paths.bundle.join("init.pid"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or(0);
    if health.is_none() && runner.last.state < TaskState::Running {
        runner.report(TaskState::Running, "started", "");
    }
    runner.last.pid = pid;
    runner.send();
    loop {
        if let Some(exit) = read_exit(&runner.paths.exit) {
            report_exit(runner, &exit);
            return;
        }
        if updates.borrow().desired_state > TaskState::Running {
            stop(runner, task).await;
            return;
        }
        if let Some(health) = health.as_mut()
            && Instant::now() >= health.next
        {
            let ok = runner
                .ctx
                .runc
                .exec_succeeds(&runner.id, &health.command, health.timeout)
                .await;
            health.next = Instant::now() + health.interval;
            if ok {
                health.failures = 0;
                if !health.healthy {
                    health.healthy = true;
                    runner.report(TaskState::Running, "started", "");
                    runner.last.pid = pid;
                    runner.send();
                }
            } else if Instant::now() >= health.start_period_ends || health.healthy {
                health.failures += 1;
                if health.failures >= health.retries {
                    info!(task = %runner.id, "health check failed {} times: stopping", health.failures);
                    let _ = runner.ctx.runc.kill(&runner.id, "KILL").await;
                    wait_exit(runner, Duration::from_secs(10)).await;
                    runner.report(TaskState::Failed, "unhealthy", "task: unhealthy container");
                    return;
                }
            }
        }
        let changed = tokio::select! {
            () = tokio::time::sleep(EXIT_POLL) => true,
            changed = updates.changed() => changed.is_ok(),
        };
        if !changed {
            // The task was deleted: stop it.
            stop(runner, task).await;
            return;
        }
    }
}

fn report_exit(runner: &mut Runner, exit: &ExitRecord) {
    match exit.exit_code {
        Some(0) => runner.report(TaskState::Complete, "finished", ""),
        Some(code) => {
            runner.report(
                TaskState::Failed,
                "task: non-zero exit",
                &format!("task: non-zero exit ({code})"),
            );
            runner.last.exit_code = Some(code);
            runner.send();
        }
        None => runner.report(TaskState::Failed, "failed to start", &exit.error),
    }
}

/// Asks the container to stop, then kills it after the grace period.
async fn stop(runner: &mut Runner, task: &TaskAssignment) {
    let container = &task.spec.container_spec;
    let signal = container.stop_signal.trim_start_matches("SIG").to_owned();
    let signal = if signal.is_empty() {
        "TERM".to_owned()
    } else {
        signal
    };
    if let Err(error) = runner.ctx.runc.kill(&runner.id, &signal).await {
        debug!(task = %runner.id, %error, "stop signal");
    }
    if !wait_exit(runner, container.stop_grace()).await {
        info!(task = %runner.id, "still running after the grace period: killing");
        let _ = runner.ctx.runc.kill(&runner.id, "KILL").await;
        wait_exit(runner, Duration::from_secs(10)).await;
    }
    let mut status = TaskStatus {
        state: TaskState::Shutdown,
        message: "shutdown".into(),
        container_id: runner.id.clone(),
        ..TaskStatus::default()
    };
    status.exit_code = read_exit(&runner.paths.exit).and_then(|e| e.exit_code);
    runner.last = status;
    runner.send();
}

/// Waits up to `timeout` for the exit record; whether it came.
async fn wait_exit(runner: &Runner, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if runner.paths.exit.exists() {
            return true;
        }
        tokio::time::sleep(EXIT_POLL).await;
    }
    runner.paths.exit.exists()
}
