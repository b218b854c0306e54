//! Each task's cgroup in the cgroup v2 hierarchy, which the socket load
//! balancer's programs attach to (DESIGN §5, data path 4).
//!
//! runc puts a task in `/<cgroup parent>/<task ID>` of every hierarchy,
//! the v2 one included (on a hybrid host runc joins
//! `/sys/fs/cgroup/unified` too). The runner creates the task's v2
//! directory ([`create`]) and attaches the programs before runc starts
//! the task, so its first `connect()` is translated already; runc joins
//! the existing directory and removes it on `runc delete`, and [`remove`]
//! removes whatever is left. On a host without a cgroup v2 hierarchy there
//! is nothing to attach to, and the tc path balances the tasks' VIP
//! traffic.

use std::{
    io,
    path::{Path, PathBuf},
};

use tracing::{info, warn};

use crate::prerequisites;

/// The v2 directory holding the node's task cgroups,
/// `<cgroup2 mount>/<cgroup_parent>`; `None` without a v2 hierarchy.
#[must_use]
pub fn parent_directory(cgroup_parent: &str) -> Option<PathBuf> {
    match prerequisites::cgroup2_mount() {
        Ok(Some(mount)) => Some(mount.join(cgroup_parent)),
        Ok(None) => {
            info!("no cgroup v2 hierarchy: service VIPs are balanced per packet only");
            None
        }
        Err(error) => {
            warn!(%error, "finding the cgroup v2 hierarchy: service VIPs are balanced per packet only");
            None
        }
    }
}

/// Creates (or finds) task `task`'s cgroup under `parent`; returns it.
pub fn create(parent: &Path, task: &str) -> io::Result<PathBuf> {
    let directory = parent.join(task);
    std::fs::create_dir_all(&directory)?;
    Ok(directory)
}

/// Removes task `task`'s cgroup under `parent` if runc left it (empty:
/// its processes are gone).
pub fn remove(parent: &Path, task: &str) {
    match std::fs::remove_dir(parent.join(task)) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            warn!(task, %error, "removing the task's cgroup");
        }
        _ => {}
    }
}
