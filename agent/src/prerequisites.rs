//! What a node needs before the agent starts, checked up front so that
//! `shoald` refuses with what to do instead of failing later, task by task:
//!
//! - a cgroup hierarchy visible in its mount namespace (runc puts every
//!   task in one; `ip netns exec` remounts `/sys` without it);
//! - `runc` on `PATH`;
//! - a bpffs that outlives the process: when none is mounted where pins go
//!   and shoald runs in a mount namespace of its own (as under `ip netns
//!   exec`), the bpffs it would mount is private to it and the pins that
//!   keep traffic flowing across restarts would vanish with it.
//!
//! It also says where the cgroup v2 hierarchy is ([`cgroup2_mount`]), which
//! the task cgroups the socket programs attach to live in.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
};

/// A missing prerequisite, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum PrerequisiteError {
    /// No cgroup filesystem is mounted in this mount namespace.
    #[error(
        "no cgroup hierarchy is visible in shoald's mount namespace (no cgroup2 or cgroup mount in /proc/self/mountinfo): runc runs every task in a cgroup. `ip netns exec` remounts /sys without one: start shoald with `nsenter --net=/run/netns/NAME` instead, or mount cgroup2 on /sys/fs/cgroup"
    )]
    NoCgroup,
    /// `runc` is not on `PATH`.
    #[error("runc was not found on PATH: shoald runs tasks with it (Debian: apt-get install runc)")]
    NoRunc,
    /// bpffs is not mounted and would be private to this process.
    #[error(
        "no bpffs is mounted on {bpffs} and shoald runs in a mount namespace of its own (as under `ip netns exec`): the bpffs it would mount there dies with it, and so would the pins that keep traffic flowing across restarts. Mount bpffs on {bpffs} in the host's mount namespace first (mount -t bpf bpf {bpffs}), or start shoald with `nsenter --net=/run/netns/NAME` instead"
    )]
    PrivateBpffs {
        /// Where the pins go.
        bpffs: PathBuf,
    },
    /// The mount table could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// What was read.
        path: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// One line of `/proc/self/mountinfo`: where and what.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    point: PathBuf,
    fstype: String,
}

/// The mounts of a `mountinfo` text (fields: ID, parent, major:minor, root,
/// mount point, options, optional fields, `-`, type, source, options).
fn mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let point = before.split(' ').nth(4)?;
            let fstype = after.split(' ').next()?;
            Some(Mount {
                point: PathBuf::from(unescape(point)),
                fstype: fstype.to_owned(),
            })
        })
        .collect()
}

/// `mountinfo` writes space, tab, newline and backslash as `\ooo` octal.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 4);
        if let Some(byte) = code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            out.push(char::from(byte));
            rest = &rest[at + 4..];
        } else {
            out.push('\\');
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

fn has_cgroup(mounts: &[Mount]) -> bool {
    mounts
        .iter()
        .any(|m| m.fstype == "cgroup2" || m.fstype == "cgroup")
}

/// The first cgroup v2 mount of a `mountinfo` text: `/sys/fs/cgroup` on
/// a unified host, `/sys/fs/cgroup/unified` on a hybrid one.
fn cgroup2_point(mounts: Vec<Mount>) -> Option<PathBuf> {
    mounts
        .into_iter()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| m.point)
}

/// Where the cgroup v2 hierarchy is mounted in shoald's mount namespace,
/// if it is (a cgroup v1-only host has none).
pub fn cgroup2_mount() -> Result<Option<PathBuf>, PrerequisiteError> {
    Ok(cgroup2_point(mounts(&read("/proc/self/mountinfo")?)))
}

fn is_bpffs(mounts: &[Mount], point: &Path) -> bool {
    mounts.iter().any(|m| m.fstype == "bpf" && m.point == point)
}

/// Whether `program` is an executable file in one of `path`'s directories.
fn on_path(program: &str, path: &OsStr) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::split_paths(path).any(|dir| {
        std::fs::metadata(dir.join(program))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

fn read(path: &'static str) -> Result<String, PrerequisiteError> {
    std::fs::read_to_string(path).map_err(|source| PrerequisiteError::Io { path, source })
}

/// Checks every prerequisite, `bpffs` being where the pins go.
pub fn check(bpffs: &Path) -> Result<(), PrerequisiteError> {
    let mounts = mounts(&read("/proc/self/mountinfo")?);
    if !has_cgroup(&mounts) {
        return Err(PrerequisiteError::NoCgroup);
    }
    if !on_path("runc", &std::env::var_os("PATH").unwrap_or_default()) {
        return Err(PrerequisiteError::NoRunc);
    }
    // Where init's namespace cannot be read (a sandbox), nothing tells a
    // private mount namespace apart; `ip netns exec` is caught above.
    let own_namespace = match (
        std::fs::read_link("/proc/self/ns/mnt"),
        std::fs::read_link("/proc/1/ns/mnt"),
    ) {
        (Ok(own), Ok(init)) => own != init,
        _ => false,
    };
    if own_namespace && !is_bpffs(&mounts, bpffs) {
        return Err(PrerequisiteError::PrivateBpffs {
            bpffs: bpffs.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host's table: cgroup2 and bpffs under /sys/fs, a mount point with
    /// a space.
    const HOST: &str = "\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
24 23 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:3 - cgroup2 cgroup2 rw,nsdelegate
25 23 0:23 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:4 - bpf bpf rw,mode=700
26 22 0:24 / /mnt/my\\040disk rw,relatime shared:5 - tmpfs tmpfs rw
";

    /// What `ip netns exec` leaves: a fresh sysfs, nothing under it.
    const IP_NETNS_EXEC: &str = "\
22 1 253:1 / / rw,relatime - ext4 /dev/vda rw
40 22 0:50 / /sys rw,relatime - sysfs ns1 rw
";

    #[test]
    fn mount_points_and_types_are_read_with_escapes_undone() {
        let host = mounts(HOST);
        assert_eq!(host.len(), 5);
        assert_eq!(
            host[4],
            Mount {
                point: PathBuf::from("/mnt/my disk"),
                fstype: "tmpfs".into()
            }
        );
        assert!(mounts("garbage without separator\n").is_empty());
    }

    #[test]
    fn a_host_has_cgroups_and_bpffs_where_pins_go() {
        let host = mounts(HOST);
        assert!(has_cgroup(&host));
        assert!(is_bpffs(&host, Path::new("/sys/fs/bpf")));
        assert!(!is_bpffs(&host, Path::new("/sys/fs/cgroup")));
        assert!(!is_bpffs(&host, Path::new("/tmp/bpf")));
    }

    #[test]
    fn ip_netns_exec_hides_both() {
        let private = mounts(IP_NETNS_EXEC);
        assert!(!has_cgroup(&private));
        assert!(!is_bpffs(&private, Path::new("/sys/fs/bpf")));
    }

    #[test]
    fn the_cgroup2_mount_is_found_on_unified_and_hybrid_hosts() {
        let unified = mounts(HOST);
        assert_eq!(
            cgroup2_point(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        let hybrid = mounts(
            "30 23 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             31 23 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(
            cgroup2_point(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let v1 = mounts("30 23 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
        assert_eq!(cgroup2_point(v1), None);
    }

    #[test]
    fn a_cgroup_v1_hierarchy_counts() {
        let v1 = mounts("30 23 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
        assert!(has_cgroup(&v1));
    }

    #[test]
    fn runc_is_looked_up_on_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = std::env::join_paths([dir.path()]).expect("path");
        assert!(!on_path("runc", &path));
        let runc = dir.path().join("runc");
        std::fs::write(&runc, "#!/bin/sh\n").expect("write");
        assert!(!on_path("runc", &path), "not executable yet");
        std::fs::set_permissions(&runc, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        assert!(on_path("runc", &path));
    }
}
