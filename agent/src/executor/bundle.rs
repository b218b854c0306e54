//! A task's OCI runtime bundle (`config.json` beside `rootfs/`), built with
//! `oci-spec` from the task's `ContainerSpec` and the image config, the way
//! Docker combines them:
//!
//! - arguments: the service's `Command` replaces the image's entrypoint
//!   (and drops the image's `Cmd`); its `Args` replace the image's `Cmd`;
//! - environment: a default `PATH`, then the image's, then the service's
//!   (later names win), plus `HOSTNAME`;
//! - user: the service's, else the image's; names resolve through the
//!   rootfs' `/etc/passwd` and `/etc/group`;
//! - working directory: the service's, else the image's, else `/`;
//! - hostname: the service's, else the task's name (truncated to 63 bytes);
//! - limits: `--limit-memory` → memory limit, `--limit-cpu` → CFS quota;
//! - `--read-only` → read-only root; `/etc/hostname`, `/etc/hosts` and
//!   `/etc/resolv.conf` are bind-mounted from the bundle so they work then;
//!   a task on overlay networks resolves through its resolver at
//!   `127.0.0.11` ([`crate::dns`]; `ndots:0`, as Docker: names are tried as
//!   they are), other tasks have only loopback and no resolver.
//!
//! The container gets its own network namespace: a new one with only
//! loopback, or the one the agent made and attached to the task's overlay
//! networks ([`crate::task_network`]). It lives in the cgroup
//! `/<cgroup parent>/<task ID>`.

use std::{collections::BTreeMap, fs, path::Path};

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilities, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespace, LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder,
    RootBuilder, Spec, UserBuilder,
};
use shoal_api::service::{ContainerSpec, TaskAssignment};

use crate::images::ImageRuntimeConfig;

/// Docker's default `PATH` for containers.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The CFS period CPU limits are expressed in (µs), as Docker.
const CFS_PERIOD_US: u64 = 100_000;
/// Longest hostname the kernel accepts.
const MAX_HOSTNAME: usize = 63;

/// Why a bundle could not be made; the task is rejected with this text.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Neither the service nor the image says what to run.
    #[error("no command specified")]
    NoCommand,
    /// The user or group is not in the image.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    UnknownUser(String),
    /// The group is not in the image.
    #[error("unable to find group {0}: no matching entries in group file")]
    UnknownGroup(String),
    /// oci-spec refused a value.
    #[error("building the OCI runtime config: {0}")]
    Spec(String),
    /// Writing the bundle failed.
    #[error("writing {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

fn spec_error(error: impl std::fmt::Display) -> BundleError {
    BundleError::Spec(error.to_string())
}

/// The process arguments Docker would run.
pub fn arguments(
    container: &ContainerSpec,
    image: &ImageRuntimeConfig,
) -> Result<Vec<String>, BundleError> {
    let (entrypoint, cmd) = if container.command.is_empty() {
        let cmd = if container.args.is_empty() {
            &image.cmd
        } else {
            &container.args
        };
        (&image.entrypoint, cmd)
    } else {
        (&container.command, &container.args)
    };
    let args: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if args.is_empty() {
        return Err(BundleError::NoCommand);
    }
    Ok(args)
}

/// The environment: default `PATH`, the image's, the service's, `HOSTNAME`;
/// a later name replaces an earlier one in place.
#[must_use]
pub fn environment(
    container: &ContainerSpec,
    image: &ImageRuntimeConfig,
    hostname: &str,
) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let hostname_entry = format!("HOSTNAME={hostname}");
    for entry in std::iter::once(DEFAULT_PATH)
        .chain(std::iter::once(hostname_entry.as_str()))
        .chain(image.env.iter().map(String::as_str))
        .chain(container.env.iter().map(String::as_str))
    {
        let name = entry.split_once('=').map_or(entry, |(n, _)| n).to_owned();
        if !values.contains_key(&name) {
            order.push(name.clone());
        }
        values.insert(name, entry.to_owned());
    }
    order
        .into_iter()
        .filter_map(|n| values.remove(&n))
        .collect()
}

/// `user[:group]` resolved to IDs through the rootfs' passwd and group
/// files; numbers are taken as they are. Returns (uid, gid).
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32), BundleError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let (uid, primary_gid) = if let Ok(uid) = user_part.parse::<u32>() {
        let gid = passwd_entries(&passwd)
            .find(|(_, id, _)| *id == uid)
            .map_or(uid, |(_, _, gid)| gid);
        (uid, gid)
    } else {
        passwd_entries(&passwd)
            .find(|(name, _, _)| *name == user_part)
            .map(|(_, uid, gid)| (uid, gid))
            .ok_or_else(|| BundleError::UnknownUser(user_part.to_owned()))?
    };
    let gid = match group_part {
        None => primary_gid,
        Some(group) => {
            if let Ok(gid) = group.parse::<u32>() {
                gid
            } else {
                let groups = fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
                groups
                    .lines()
                    .filter_map(|line| {
                        let mut fields = line.split(':');
                        let name = fields.next()?;
                        let gid = fields.nth(1)?.parse::<u32>().ok()?;
                        Some((name, gid))
                    })
                    .find(|(name, _)| *name == group)
                    .map(|(_, gid)| gid)
                    .ok_or_else(|| BundleError::UnknownGroup(group.to_owned()))?
            }
        }
    };
    Ok((uid, gid))
}

/// `(name, uid, gid)` of each well-formed passwd line.
fn passwd_entries(passwd: &str) -> impl Iterator<Item = (&str, u32, u32)> {
    passwd.lines().filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((name, uid, gid))
    })
}

/// The container's hostname: the spec's, else the task's full name,
/// truncated to what the kernel accepts.
#[must_use]
pub fn hostname(task: &TaskAssignment) -> String {
    let spec = &task.spec.container_spec.hostname;
    let mut name = if spec.is_empty() {
        task.full_name()
    } else {
        spec.clone()
    };
    name.truncate(MAX_HOSTNAME);
    name.trim_end_matches(['.', '-']).to_owned()
}

/// Writes `config.json` and the `/etc` files into `bundle` (whose `rootfs/`
/// holds the unpacked image).
pub fn write(
    bundle: &Path,
    task: &TaskAssignment,
    image: &ImageRuntimeConfig,
    cgroup_parent: &str,
    netns: Option<&Path>,
) -> Result<(), BundleError> {
    let rootfs = bundle.join("rootfs");
    let container = &task.spec.container_spec;
    let hostname = hostname(task);
    let (uid, gid) = resolve_user(
        &rootfs,
        if container.user.is_empty() {
            &image.user
        } else {
            &container.user
        },
    )?;
    let cwd = [container.dir.as_str(), image.working_dir.as_str()]
        .into_iter()
        .find(|d| !d.is_empty())
        .unwrap_or("/");
    let process = ProcessBuilder::default()
        .terminal(false)
        .args(arguments(container, image)?)
        .env(environment(container, image, &hostname))
        .cwd(cwd)
        .user(
            UserBuilder::default()
                .uid(uid)
                .gid(gid)
                .build()
                .map_err(spec_error)?,
        )
        .no_new_privileges(true)
        .build()
        .map_err(spec_error)?;
    // Docker's default capabilities; runc's default rlimits.
    let mut spec = Spec::default();
    let default_process = spec.process().clone().unwrap_or_default();
    let mut process = process;
    process.set_capabilities(Some(docker_capabilities()));
    process.set_rlimits(default_process.rlimits().clone());
    spec.set_process(Some(process));
    spec.set_hostname(Some(hostname.clone()));
    spec.set_root(Some(
        RootBuilder::default()
            .path("rootfs")
            .readonly(container.read_only)
            .build()
            .map_err(spec_error)?,
    ));

    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.extend(etc_mounts(bundle, &hostname, netns.is_some())?);
    spec.set_mounts(Some(mounts));

    let limits = task.spec.resources.limits;
    let mut resources = LinuxResourcesBuilder::default();
    if limits.memory_bytes > 0 {
        resources = resources.memory(
            LinuxMemoryBuilder::default()
                .limit(limits.memory_bytes)
                .build()
                .map_err(spec_error)?,
        );
    }
    if limits.nano_cpus > 0 {
        let quota = u64::try_from(limits.nano_cpus).unwrap_or(0) * CFS_PERIOD_US / 1_000_000_000;
        resources = resources.cpu(
            LinuxCpuBuilder::default()
                .period(CFS_PERIOD_US)
                .quota(i64::try_from(quota.max(1_000)).unwrap_or(i64::MAX))
                .build()
                .map_err(spec_error)?,
        );
    }
    let default_linux = spec.linux().clone().unwrap_or_default();
    let linux = LinuxBuilder::default()
        .namespaces(namespaces(
            default_linux.namespaces().clone().unwrap_or_default(),
            netns,
        ))
        .masked_paths(default_linux.masked_paths().clone().unwrap_or_default())
        .readonly_paths(default_linux.readonly_paths().clone().unwrap_or_default())
        .resources(resources.build().map_err(spec_error)?)
        .cgroups_path(format!("/{cgroup_parent}/{}", task.id))
        .build()
        .map_err(spec_error)?;
    spec.set_linux(Some(linux));
    let config = bundle.join("config.json");
    spec.save(&config).map_err(|e| BundleError::Io {
        path: config.display().to_string(),
        source: std::io::Error::other(e),
    })
}

/// Docker's default capability set (moby's `oci/caps/defaults.go`), in the
/// bounding, effective and permitted sets: what operators expect a task to
/// be able to do (e.g. `ping`, which needs `CAP_NET_RAW`), and no more.
fn docker_capabilities() -> LinuxCapabilities {
    let set: Capabilities = [
        Capability::Chown,
        Capability::DacOverride,
        Capability::Fsetid,
        Capability::Fowner,
        Capability::Mknod,
        Capability::NetRaw,
        Capability::Setgid,
        Capability::Setuid,
        Capability::Setfcap,
        Capability::Setpcap,
        Capability::NetBindService,
        Capability::SysChroot,
        Capability::Kill,
        Capability::AuditWrite,
    ]
    .into_iter()
    .collect();
    let mut capabilities = LinuxCapabilities::default();
    capabilities.set_bounding(Some(set.clone()));
    capabilities.set_effective(Some(set.clone()));
    capabilities.set_permitted(Some(set));
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);
    capabilities
}

/// runc's default namespaces, the network one joined at `netns` when the
/// agent made it (a task on overlay networks).
fn namespaces(mut defaults: Vec<LinuxNamespace>, netns: Option<&Path>) -> Vec<LinuxNamespace> {
    if let Some(path) = netns {
        for namespace in &mut defaults {
            if namespace.typ() == LinuxNamespaceType::Network {
                namespace.set_path(Some(path.to_owned()));
            }
        }
    }
    defaults
}

/// `/etc/resolv.conf` of a task: its resolver when it is on overlay
/// networks, else nothing.
#[must_use]
pub fn resolv_conf(on_overlays: bool) -> String {
    if on_overlays {
        format!(
            "nameserver {}\noptions ndots:0\n",
            crate::dns::RESOLVER_ADDR
        )
    } else {
        String::new()
    }
}

/// Writes `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` into the
/// bundle and returns their read-only bind mounts.
fn etc_mounts(bundle: &Path, hostname: &str, on_overlays: bool) -> Result<Vec<Mount>, BundleError> {
    let mut mounts = Vec::new();
    for (file, contents) in [
        ("hostname", format!("{hostname}\n")),
        (
            "hosts",
            format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
            ),
        ),
        ("resolv.conf", resolv_conf(on_overlays)),
    ] {
        let path = bundle.join(file);
        fs::write(&path, contents).map_err(|source| BundleError::Io {
            path: path.display().to_string(),
            source,
        })?;
        mounts.push(
            MountBuilder::default()
                .destination(format!("/etc/{file}"))
                .typ("bind")
                .source(path)
                .options(vec!["rbind".into(), "ro".into()])
                .build()
                .map_err(spec_error)?,
        );
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use shoal_api::service::{TaskSpec, TaskState, TaskStatus};

    use super::*;

    fn image() -> ImageRuntimeConfig {
        ImageRuntimeConfig {
            env: vec!["PATH=/image/bin".into(), "LANG=C".into()],
            entrypoint: vec![],
            cmd: vec!["/usr/local/bin/whoami".into()],
            working_dir: "/srv".into(),
            user: String::new(),
        }
    }

    #[test]
    fn arguments_follow_dockers_rules() {
        let mut container = ContainerSpec::default();
        assert_eq!(
            arguments(&container, &image()).expect("cmd"),
            ["/usr/local/bin/whoami"]
        );
        container.args = vec!["sleep".into(), "9".into()];
        assert_eq!(
            arguments(&container, &image()).expect("args"),
            ["sleep", "9"]
        );
        let mut with_entrypoint = image();
        with_entrypoint.entrypoint = vec!["/init".into()];
        assert_eq!(
            arguments(&container, &with_entrypoint).expect("entrypoint + args"),
            ["/init", "sleep", "9"]
        );
        container.command = vec!["sh".into(), "-c".into()];
        container.args = vec![];
        assert_eq!(
            arguments(&container, &with_entrypoint).expect("command drops image cmd"),
            ["sh", "-c"]
        );
        assert!(matches!(
            arguments(&ContainerSpec::default(), &ImageRuntimeConfig::default()),
            Err(BundleError::NoCommand)
        ));
    }

    #[test]
    fn environment_layers_and_overrides_in_place() {
        let container = ContainerSpec {
            env: vec!["LANG=en".into(), "PORT=8080".into()],
            ..ContainerSpec::default()
        };
        assert_eq!(
            environment(&container, &image(), "web.1.x"),
            [
                "PATH=/image/bin",
                "HOSTNAME=web.1.x",
                "LANG=en",
                "PORT=8080"
            ]
        );
    }

    #[test]
    fn users_resolve_through_the_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("etc")).expect("etc");
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .expect("passwd");
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\nstaff:x:50:\n",
        )
        .expect("group");
        let root = dir.path();
        assert_eq!(resolve_user(root, "").expect("root"), (0, 0));
        assert_eq!(resolve_user(root, "nobody").expect("name"), (65534, 65534));
        assert_eq!(
            resolve_user(root, "nobody:staff").expect("group"),
            (65534, 50)
        );
        assert_eq!(
            resolve_user(root, "1000:1000").expect("numbers"),
            (1000, 1000)
        );
        assert!(matches!(
            resolve_user(root, "alice"),
            Err(BundleError::UnknownUser(u)) if u == "alice"
        ));
        assert!(matches!(
            resolve_user(root, "nobody:wheel"),
            Err(BundleError::UnknownGroup(g)) if g == "wheel"
        ));
    }

    #[test]
    fn config_json_carries_the_task() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("rootfs/etc")).expect("rootfs");
        let mut spec = TaskSpec::default();
        spec.container_spec.read_only = true;
        spec.resources.limits.memory_bytes = 64 << 20;
        spec.resources.limits.nano_cpus = 500_000_000;
        let task = TaskAssignment {
            id: "t0123456789".into(),
            service_id: "s1".into(),
            name: "web.3".into(),
            spec,
            desired_state: TaskState::Running,
            status: TaskStatus::default(),
            networks: Vec::new(),
        };
        write(
            dir.path(),
            &task,
            &image(),
            "shoal/node1",
            Some(Path::new("/run/x/netns")),
        )
        .expect("bundle");
        let written = Spec::load(dir.path().join("config.json")).expect("loads");
        assert_eq!(written.hostname().as_deref(), Some("web.3.t0123456789"));
        assert_eq!(
            written
                .root()
                .as_ref()
                .and_then(oci_spec::runtime::Root::readonly),
            Some(true)
        );
        let process = written.process().as_ref().expect("process");
        let capabilities = process.capabilities().as_ref().expect("capabilities");
        let effective = capabilities.effective().as_ref().expect("effective");
        assert!(
            effective.contains(&Capability::NetRaw),
            "ping works, as in Docker"
        );
        assert!(
            !effective.contains(&Capability::SysAdmin),
            "nothing beyond Docker's set"
        );
        assert_eq!(effective.len(), 14);
        assert_eq!(process.cwd(), Path::new("/srv"));
        let linux = written.linux().as_ref().expect("linux");
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/shoal/node1/t0123456789"))
        );
        let network = linux
            .namespaces()
            .iter()
            .flatten()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .expect("a network namespace");
        assert_eq!(network.path().as_deref(), Some(Path::new("/run/x/netns")));
        let resources = linux.resources().as_ref().expect("resources");
        assert_eq!(
            resources
                .memory()
                .as_ref()
                .and_then(oci_spec::runtime::LinuxMemory::limit),
            Some(64 << 20)
        );
        assert_eq!(
            resources
                .cpu()
                .as_ref()
                .and_then(oci_spec::runtime::LinuxCpu::quota),
            Some(50_000)
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("hostname")).expect("hostname"),
            "web.3.t0123456789\n"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("resolv.conf")).expect("resolv.conf"),
            "nameserver 127.0.0.11\noptions ndots:0\n"
        );
        assert_eq!(resolv_conf(false), "");
    }
}
