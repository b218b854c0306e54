//! The executor (DESIGN.md §4): runs the tasks the managers assign to this
//! node as runc containers, one [`runner`] per task, and reports their
//! states back.
//!
//! It reconciles with what exists: when the first full set of assignments
//! arrives after a start, containers (and task directories) the node no
//! longer has a task for are killed and removed, and containers of assigned
//! tasks are adopted, never started twice. The runc state root is
//! `<data>/runc`, task directories (bundle, log, exit record) are under
//! `<data>/tasks`, cgroups under `/shoal/<node ID>/` (in the cgroup v2
//! hierarchy made ahead of runc by [`task_cgroup`], for the socket
//! programs).

pub mod bundle;
pub mod logs;
pub mod runc;
pub mod runner;
pub mod task_cgroup;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::PathBuf,
    sync::Arc,
};

use shoal_api::service::{TaskAssignment, TaskStatus};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracing::{info, warn};

use self::{
    runc::Runc,
    runner::{RunnerContext, TaskPaths},
};
use crate::{desired::Assignments, dns::Dns, images::ImageStore, overlay::Overlay, task_network};

/// What the executor needs to know about the node.
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// The node's data directory.
    pub data_dir: PathBuf,
    /// The node's ID (names its cgroup).
    pub node_id: String,
    /// The node's images.
    pub images: ImageStore,
    /// The executable to re-run as the task shim (`shoald`).
    pub shim_program: PathBuf,
    /// Registries pulled from over plain HTTP (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// The MTU of overlay interfaces unless a network sets one.
    pub overlay_mtu: u32,
    /// The node's overlay, which task interfaces are wired into.
    pub overlay: Arc<Overlay>,
    /// The node's DNS, which serves each overlay task's resolver.
    pub dns: Arc<Dns>,
}

impl ExecutorConfig {
    /// runc's state root.
    #[must_use]
    pub fn runc_root(&self) -> PathBuf {
        self.data_dir.join("runc")
    }

    /// The task directories' parent.
    #[must_use]
    pub fn tasks_dir(&self) -> PathBuf {
        self.data_dir.join("tasks")
    }
}

/// Runs until `shutdown`: follows `assignments`, sends status changes to
/// `reports`. Containers keep running when it stops (they belong to their
/// shims); the next start adopts them.
pub async fn run(
    config: ExecutorConfig,
    mut assignments: watch::Receiver<Assignments>,
    reports: mpsc::UnboundedSender<(String, TaskStatus)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cgroup_parent = format!("shoal/{}", config.node_id);
    let ctx = Arc::new(RunnerContext {
        tasks_dir: config.tasks_dir(),
        runc: Runc::new(config.runc_root()),
        images: config.images.clone(),
        cgroup2_parent: task_cgroup::parent_directory(&cgroup_parent),
        cgroup_parent,
        shim_program: config.shim_program.clone(),
        insecure_registries: config.insecure_registries.clone(),
        overlay_mtu: config.overlay_mtu,
        overlay: Arc::clone(&config.overlay),
        dns: Arc::clone(&config.dns),
        reports,
    });
    let mut runners: HashMap<String, (watch::Sender<TaskAssignment>, JoinHandle<()>)> =
        HashMap::new();
    let mut cleaned_up = false;
    loop {
        let current = assignments.borrow_and_update().clone();
        if let Some(current) = current {
            if !cleaned_up {
                remove_strays(&ctx, &current).await;
                cleaned_up = true;
            }
            let mut existing = None;
            for (id, task) in &current {
                if let Some((tx, _)) = runners.get(id) {
                    tx.send_if_modified(|old| {
                        let changed = old != task;
                        if changed {
                            old.clone_from(task);
                        }
                        changed
                    });
                    continue;
                }
                if existing.is_none() {
                    existing = Some(existing_containers(&ctx).await);
                }
                let adopt = existing.as_ref().is_some_and(|e| e.contains(id))
                    || TaskPaths::new(&ctx.tasks_dir, id).exit.exists();
                let (tx, rx) = watch::channel(task.clone());
                let handle = tokio::spawn(runner::run(Arc::clone(&ctx), rx, adopt));
                runners.insert(id.clone(), (tx, handle));
            }
            // Dropping the sender tells the runner its task was deleted.
            runners.retain(|id, _| current.contains_key(id));
        }
        tokio::select! {
            changed = assignments.changed() => if changed.is_err() { break },
            _ = shutdown.changed() => break,
        }
    }
    for (_, (_, handle)) in runners {
        handle.abort();
    }
}

/// IDs of the containers runc has.
async fn existing_containers(ctx: &RunnerContext) -> HashSet<String> {
    match ctx.runc.list().await {
        Ok(list) => list.into_iter().map(|c| c.id).collect(),
        Err(error) => {
            warn!(%error, "listing containers");
            HashSet::new()
        }
    }
}

/// Kills and removes the containers and task directories of tasks the node
/// no longer has (the managers deleted them while the agent was away).
async fn remove_strays(ctx: &RunnerContext, current: &BTreeMap<String, TaskAssignment>) {
    for id in existing_containers(ctx).await {
        if !current.contains_key(&id) {
            info!(container = %id, "removing a container no task owns");
            if let Err(error) = ctx.runc.delete(&id).await {
                warn!(container = %id, %error, "removing a stray container");
            }
        }
    }
    let Ok(entries) = std::fs::read_dir(&ctx.tasks_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !current.contains_key(&name) {
            ctx.overlay.detach_sockets(&name);
            if let Some(parent) = &ctx.cgroup2_parent {
                task_cgroup::remove(parent, &name);
            }
            task_network::remove_netns(&TaskPaths::new(&ctx.tasks_dir, &name).netns);
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes every container and task directory of the node (it left the
/// swarm), and the node's cgroup directories.
pub async fn remove_all(config: &ExecutorConfig) {
    let runc = Runc::new(config.runc_root());
    match runc.list().await {
        Ok(containers) => {
            for container in containers {
                if let Err(error) = runc.delete(&container.id).await {
                    warn!(container = %container.id, %error, "removing a container");
                }
            }
        }
        Err(error) => warn!(%error, "listing containers"),
    }
    if let Ok(entries) = std::fs::read_dir(config.tasks_dir()) {
        for entry in entries.flatten() {
            task_network::remove_netns(&entry.path().join("netns"));
        }
    }
    let _ = std::fs::remove_dir_all(config.tasks_dir());
    remove_cgroup_parent(&config.node_id);
}

/// Removes the (empty) `shoal/<node ID>` cgroup directories in every
/// hierarchy, then `shoal` if it is empty too.
pub fn remove_cgroup_parent(node_id: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for hierarchy in hierarchies.flatten() {
        let parent = hierarchy.path().join("shoal");
        let _ = std::fs::remove_dir(parent.join(node_id));
        let _ = std::fs::remove_dir(parent);
    }
}
