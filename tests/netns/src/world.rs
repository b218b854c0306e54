//! A world: one switch namespace with a bridge, N node namespaces joined to
//! it by veth pairs, one `shoald` per node.

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::{
    eventually,
    netns::{NetNs, plug_into_switch},
    process::DaemonProcess,
};

/// Where the bpffs pins of node `id` live (see `shoal_agent::dataplane`).
#[must_use]
pub fn pin_dir(node_id: &str) -> PathBuf {
    Path::new("/sys/fs/bpf/shoal").join(node_id)
}

/// Directory holding `shoald` and `shoal`: `$SHOAL_BIN_DIR`, else the cargo
/// target directory this test (or xtask) binary was built into.
///
/// # Panics
/// When the binaries are not there; they are built by `cargo xtask test`.
#[must_use]
pub fn bin_dir() -> PathBuf {
    let dir = std::env::var_os("SHOAL_BIN_DIR").map_or_else(
        || {
            let exe = std::env::current_exe().expect("current_exe");
            let dir = exe.parent().expect("exe has a parent").to_path_buf();
            if dir.ends_with("deps") {
                dir.parent().expect("deps has a parent").into()
            } else {
                dir
            }
        },
        PathBuf::from,
    );
    for bin in ["shoald", "shoal"] {
        assert!(
            dir.join(bin).is_file(),
            "{} not found: build the binaries first (`cargo xtask test` does, or `cargo build --bins`)",
            dir.join(bin).display()
        );
    }
    dir
}

/// The demo image's root filesystem tarball (busybox and a static
/// `whoami`): `$SHOAL_DEMO_IMAGE`, else `shoal/demo-image.tar` in the cargo
/// target directory.
///
/// # Panics
/// When it is not there; `cargo xtask demo-image` builds it (and `cargo
/// xtask test` does).
#[must_use]
pub fn demo_image_tarball() -> PathBuf {
    let path = std::env::var_os("SHOAL_DEMO_IMAGE").map_or_else(
        || {
            bin_dir()
                .parent()
                .expect("the binaries' directory has a parent")
                .join("shoal/demo-image.tar")
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "{} not found: run `cargo xtask demo-image`",
        path.display()
    );
    path
}

/// The stock docker CLI, when one is installed.
#[must_use]
pub fn docker_client() -> Option<&'static Path> {
    ["/usr/local/bin/docker", "/usr/bin/docker"]
        .into_iter()
        .map(Path::new)
        .find(|path| path.exists())
}

/// The changes `Node::import_demo_image` gives the demo image: `whoami` by
/// default, and a `PATH` for busybox.
pub const DEMO_IMAGE_CHANGES: [&str; 2] = [
    r#"CMD ["/usr/local/bin/whoami"]"#,
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
];

static WORLD_SEQ: AtomicU32 = AtomicU32::new(0);

/// One node: its namespace, address, data dir and daemon.
#[derive(Debug)]
pub struct Node {
    // Field order matters for drop: the daemon stops before the namespace goes.
    shoald: Option<DaemonProcess>,
    netns: NetNs,
    hostname: String,
    addr: Ipv4Addr,
    dir: PathBuf,
    bin_dir: PathBuf,
}

/// A private multi-node network. Dropping it stops every daemon and removes
/// every namespace, pin and file it made.
#[derive(Debug)]
pub struct World {
    // Field order matters for drop: nodes (daemons, namespaces) go first.
    nodes: Vec<Node>,
    switch: NetNs,
    dir: PathBuf,
}

impl World {
    /// Builds a world of `nodes` nodes named `node-1…`, with underlay
    /// addresses `198.18.0.1…/15` on each node's `eth0`. Daemons are not
    /// started yet.
    ///
    /// # Panics
    /// When a namespace or device cannot be created.
    #[must_use]
    pub fn new(tag: &str, nodes: usize) -> Self {
        assert!((1..=250).contains(&nodes), "1 to 250 nodes");
        let tag: String = tag
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(10)
            .collect();
        let prefix = format!(
            "shoal-{tag}-{}-{}",
            std::process::id(),
            WORLD_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&prefix);
        std::fs::create_dir_all(&dir).expect("creating the world's directory");
        let bin_dir = bin_dir();
        let switch = NetNs::new(&format!("{prefix}-sw"));
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        switch.ip(&["link", "set", "br0", "up"]);
        let mut world = Self {
            nodes: Vec::new(),
            switch,
            dir,
        };
        for index in 1..=nodes {
            let netns = NetNs::new(&format!("{prefix}-n{index}"));
            let addr = Ipv4Addr::new(198, 18, 0, u8::try_from(index).expect("≤ 250 nodes"));
            plug_into_switch(&world.switch, &format!("n{index}"), &netns, addr);
            let node_dir = world.dir.join(format!("node-{index}"));
            std::fs::create_dir_all(&node_dir).expect("creating a node directory");
            world.nodes.push(Node {
                shoald: None,
                netns,
                hostname: format!("node-{index}"),
                addr,
                dir: node_dir,
                bin_dir: bin_dir.clone(),
            });
        }
        world
    }

    /// Node `n`, counting from 1 like the names.
    ///
    /// # Panics
    /// When there is no such node.
    #[must_use]
    pub fn node(&self, n: usize) -> &Node {
        &self.nodes[n - 1]
    }

    /// Node `n`, mutable.
    ///
    /// # Panics
    /// When there is no such node.
    pub fn node_mut(&mut self, n: usize) -> &mut Node {
        &mut self.nodes[n - 1]
    }

    /// All nodes.
    #[must_use]
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The switch namespace, whose bridge `br0` carries every frame
    /// between nodes (where tests capture the underlay).
    #[must_use]
    pub fn switch(&self) -> &NetNs {
        &self.switch
    }

    /// Forms a swarm with the `shoal` CLI: `swarm init --advertise-addr` on
    /// node 1 (plus `init_args`), then `managers` and `workers` (node
    /// numbers) join with the matching token. Waits until node 1 lists every
    /// member Ready, a leader and every other manager Reachable.
    pub fn form_swarm(
        &self,
        managers: &[usize],
        workers: &[usize],
        init_args: &[&str],
    ) -> Result<(), String> {
        let first = self.node(1);
        let addr = first.addr().to_string();
        let mut init = vec!["swarm", "init", "--advertise-addr", &addr];
        init.extend_from_slice(init_args);
        first.shoal(&init)?;
        let remote = format!("{addr}:2377");
        for (role, nodes) in [("manager", managers), ("worker", workers)] {
            let token = first
                .shoal(&["swarm", "join-token", "-q", role])?
                .trim()
                .to_owned();
            for &n in nodes {
                self.node(n)
                    .shoal(&["swarm", "join", "--token", &token, &remote])?;
            }
        }
        let members = 1 + managers.len() + workers.len();
        eventually("the swarm to settle", Duration::from_secs(30), || {
            let listed = first.shoal(&["node", "ls"])?;
            let ready = listed.lines().filter(|l| l.contains(" Ready ")).count();
            let reachable = listed.lines().filter(|l| l.contains(" Reachable ")).count();
            if ready == members && reachable == managers.len() && listed.contains("Leader") {
                Ok(())
            } else {
                Err(listed)
            }
        });
        Ok(())
    }

    /// Starts `shoald` on every node and waits until each answers.
    pub fn start_all(&mut self) {
        for node in &mut self.nodes {
            node.start();
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.nodes.clear();
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("warning: could not remove {}: {e}", self.dir.display());
        }
    }
}

impl Node {
    /// The node's host name (`node-N`).
    #[must_use]
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The node's underlay address.
    #[must_use]
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The node's network namespace.
    #[must_use]
    pub fn netns(&self) -> &NetNs {
        &self.netns
    }

    /// The node's API socket.
    #[must_use]
    pub fn socket(&self) -> PathBuf {
        self.dir.join("shoald.sock")
    }

    /// The daemon's log file.
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("shoald.log")
    }

    /// The daemon's data dir (node ID, data-plane record).
    #[must_use]
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The node ID shoald persisted, once it has started once.
    #[must_use]
    pub fn node_id(&self) -> Option<String> {
        std::fs::read_to_string(self.data_dir().join("node-id"))
            .ok()
            .map(|s| s.trim().to_owned())
    }

    /// The node's bpffs pin directory, once it has started once.
    #[must_use]
    pub fn pin_dir(&self) -> Option<PathBuf> {
        self.node_id().map(|id| pin_dir(&id))
    }

    /// Starts `shoald` and waits until its status answers.
    pub fn start(&mut self) {
        self.start_with(&[]);
    }

    /// Starts `shoald` with extra arguments and waits until its status answers.
    ///
    /// # Panics
    /// When it is already running, exits, or does not answer within 30 s.
    pub fn start_with(&mut self, extra: &[&str]) {
        assert!(
            self.shoald.is_none(),
            "{}: shoald already running",
            self.hostname
        );
        let mut args: Vec<String> = [
            "--data-dir",
            &self.data_dir().display().to_string(),
            "--socket",
            &self.socket().display().to_string(),
            "--underlay-iface",
            "eth0",
            "--advertise-addr",
            &self.addr.to_string(),
            "--log",
            "info,shoal_agent=debug",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let process = DaemonProcess::spawn(
            &self.bin_dir.join("shoald"),
            &args,
            &self.netns.path(),
            &self.hostname,
            &self.log_path(),
        );
        self.shoald = Some(process);
        eventually(
            &format!("shoald on {} to answer", self.hostname),
            Duration::from_secs(30),
            || {
                let exited = self.shoald.as_mut().is_some_and(DaemonProcess::has_exited);
                assert!(
                    !exited,
                    "shoald on {} exited:\n{}",
                    self.hostname,
                    self.log()
                );
                self.status()
            },
        );
    }

    /// SIGKILLs the daemon (no cleanup runs) and reaps it.
    ///
    /// # Panics
    /// When no daemon runs.
    pub fn kill9(&mut self) {
        let mut process = self.shoald.take().expect("shoald is running");
        process.stop(Signal::SIGKILL, Duration::from_secs(5));
    }

    /// SIGTERMs the daemon and waits for it to exit by itself.
    ///
    /// # Panics
    /// When no daemon runs or it does not exit within 10 s.
    pub fn stop(&mut self) {
        let mut process = self.shoald.take().expect("shoald is running");
        assert!(
            process.stop(Signal::SIGTERM, Duration::from_secs(10)),
            "shoald on {} did not exit on SIGTERM:\n{}",
            self.hostname,
            self.log()
        );
    }

    /// The daemon's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs the real `shoal` CLI against this node.
    pub fn shoal(&self, args: &[&str]) -> Result<String, String> {
        self.shoal_streams(args).map(|(stdout, _)| stdout)
    }

    /// Like [`Self::shoal`], with both output streams on success (`service
    /// logs` writes a task's stderr to its own stderr).
    pub fn shoal_streams(&self, args: &[&str]) -> Result<(String, String), String> {
        let output = Command::new(self.bin_dir.join("shoal"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .output()
            .map_err(|e| format!("running shoal: {e}"))?;
        if output.status.success() {
            Ok((
                String::from_utf8_lossy(&output.stdout).into_owned(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
            ))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Runs the real `shoal` CLI and returns its output.
    ///
    /// # Panics
    /// When the command fails, with its error output.
    #[expect(clippy::must_use_candidate, reason = "often run for its effect alone")]
    pub fn shoal_ok(&self, args: &[&str]) -> String {
        self.shoal(args)
            .unwrap_or_else(|e| panic!("shoal {} on {} failed: {e}", args.join(" "), self.hostname))
    }

    /// Runs the stock docker CLI (`/usr/local/bin/docker`) against this
    /// node's socket; `None` when no docker client is installed.
    #[must_use]
    pub fn docker(&self, args: &[&str]) -> Option<Result<String, String>> {
        self.docker_streams(args)
            .map(|result| result.map(|(stdout, _)| stdout))
    }

    /// Like [`Self::docker`], with both output streams on success
    /// (`docker logs` writes a container's stderr to its own stderr).
    #[must_use]
    pub fn docker_streams(&self, args: &[&str]) -> Option<Result<(String, String), String>> {
        let docker = docker_client()?;
        let output = Command::new(docker)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.join("docker-config"))
            .args(args)
            .output();
        Some(match output {
            Ok(o) if o.status.success() => Ok((
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
            Err(e) => Err(format!("running docker: {e}")),
        })
    }

    /// runc's state root of this node's tasks.
    #[must_use]
    pub fn runc_root(&self) -> PathBuf {
        self.data_dir().join("runc")
    }

    /// `runc list` under the node's root: (container ID, status) pairs.
    ///
    /// # Panics
    /// When runc cannot be run.
    #[must_use]
    pub fn containers(&self) -> Vec<(String, String)> {
        let output = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["list", "--format", "json"])
            .output()
            .expect("running runc list");
        let list: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        list.as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|c| {
                        (
                            c["id"].as_str().unwrap_or_default().to_owned(),
                            c["status"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// IDs of the node's running containers.
    #[must_use]
    pub fn running_containers(&self) -> Vec<String> {
        self.containers()
            .into_iter()
            .filter(|(_, status)| status == "running")
            .map(|(id, _)| id)
            .collect()
    }

    /// Runs `args` in the container `id` (`runc exec`); its output, or its
    /// error output when it fails.
    pub fn runc_exec(&self, id: &str, args: &[&str]) -> Result<String, String> {
        let output = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["exec", id])
            .args(args)
            .output()
            .map_err(|e| format!("running runc exec: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// The PID (in the host's namespace) of task `id`'s first process,
    /// from `runc state`.
    ///
    /// # Errors
    /// When runc does not know the container or it has no process.
    pub fn task_pid(&self, id: &str) -> Result<u32, String> {
        let output = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["state", id])
            .output()
            .map_err(|e| format!("running runc state: {e}"))?;
        let state: Value = serde_json::from_slice(&output.stdout).map_err(|e| {
            format!(
                "runc state {id}: {e}: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        state["pid"]
            .as_u64()
            .and_then(|pid| u32::try_from(pid).ok())
            .filter(|&pid| pid > 0)
            .ok_or_else(|| format!("runc state {id} has no pid: {state}"))
    }

    /// `runc kill <id> <signal>` on this node.
    ///
    /// # Panics
    /// When runc fails.
    pub fn runc_kill(&self, id: &str, signal: &str) {
        let status = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["kill", id, signal])
            .status()
            .expect("running runc kill");
        assert!(status.success(), "runc kill {id} {signal} failed");
    }

    /// PIDs of the task shims of this node (they outlive shoald by design).
    fn shims(&self) -> Vec<i32> {
        let root = self.runc_root().display().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
                let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
                let is_ours = args.iter().any(|a| *a == b"task-shim")
                    && args
                        .windows(2)
                        .any(|w| w[0] == b"--runc-root" && w[1] == root.as_bytes());
                is_ours.then_some(pid)
            })
            .collect()
    }

    /// Kills and deletes every container of the node (until no shim of
    /// the node is left, so a container still being started is caught
    /// too) and removes its cgroup directories.
    pub fn remove_containers(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            for (id, _) in self.containers() {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(self.runc_root())
                    .args(["delete", "--force", &id])
                    .output();
            }
            let shims = self.shims();
            if shims.is_empty() {
                break;
            }
            if std::time::Instant::now() > deadline {
                eprintln!(
                    "warning: task shims {shims:?} of {} did not end",
                    self.hostname
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Task network namespaces are bind mounts under the data dir.
        if let Ok(tasks) = std::fs::read_dir(self.data_dir().join("tasks")) {
            for task in tasks.flatten() {
                let netns = task.path().join("netns");
                if netns.exists() {
                    let _ = Command::new("umount").arg("-l").arg(&netns).output();
                }
            }
        }
        if let (Some(node_id), Ok(hierarchies)) =
            (self.node_id(), std::fs::read_dir("/sys/fs/cgroup"))
        {
            for hierarchy in hierarchies.flatten() {
                let parent = hierarchy.path().join("shoal");
                let _ = std::fs::remove_dir(parent.join(&node_id));
                let _ = std::fs::remove_dir(parent);
            }
        }
    }

    /// Imports the demo image ([`demo_image_tarball`]) as `whoami:latest`
    /// with `shoal image import`, its command `/usr/local/bin/whoami`;
    /// returns the image ID.
    ///
    /// # Panics
    /// When the tarball is missing or the import fails.
    #[expect(clippy::must_use_candidate, reason = "often run for its effect alone")]
    pub fn import_demo_image(&self) -> String {
        self.import_image(&demo_image_tarball(), &DEMO_IMAGE_CHANGES, "whoami:latest")
    }

    /// Imports the root filesystem `tarball` as `reference` with `shoal
    /// image import` and `changes` (Dockerfile instructions); returns the
    /// image ID.
    ///
    /// # Panics
    /// When the import fails.
    #[expect(clippy::must_use_candidate, reason = "often run for its effect alone")]
    pub fn import_image(&self, tarball: &Path, changes: &[&str], reference: &str) -> String {
        let mut args = vec!["image", "import"];
        for change in changes {
            args.extend(["--change", change]);
        }
        args.extend([tarball.to_str().expect("utf-8 path"), reference]);
        self.shoal_ok(&args).trim().to_owned()
    }

    /// `shoal status --format json`, parsed.
    pub fn status(&self) -> Result<Value, String> {
        let text = self.shoal(&["status", "--format", "json"])?;
        serde_json::from_str(&text).map_err(|e| format!("bad status JSON ({e}): {text}"))
    }

    /// Sends `count` UDP datagrams of `size` bytes from this node to
    /// `to:port`, from inside its namespace.
    ///
    /// # Panics
    /// When a send fails.
    pub fn send_udp(&self, to: Ipv4Addr, port: u16, count: u32, size: usize) {
        self.netns.run(move || {
            let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind UDP");
            let payload = vec![0x5a; size];
            for _ in 0..count {
                socket
                    .send_to(&payload, SocketAddrV4::new(to, port))
                    .expect("send UDP");
            }
        });
    }

    /// `ip -d link show eth0` inside the node: shows attached XDP programs.
    #[must_use]
    pub fn underlay_link_details(&self) -> String {
        String::from_utf8_lossy(&self.netns.ip(&["-d", "link", "show", "eth0"]).stdout).into_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Stop the daemon (it removes its pins), then remove whatever a
        // killed daemon left pinned, and the node's containers (their
        // shims outlive the daemon by design) and cgroups.
        self.shoald = None;
        self.remove_containers();
        let Some(dir) = self.pin_dir() else { return };
        if dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            eprintln!("warning: could not remove pins {}: {e}", dir.display());
        }
        if let Some(parent) = dir.parent() {
            // Fails while other nodes still have pins there: that is fine.
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// Packets a hook counted for `protocol` in a status document (0 if absent).
#[must_use]
pub fn protocol_packets(status: &Value, hook: &str, protocol: &str) -> u64 {
    status["dataplane"]["counters"][hook]["protocols"][protocol]["packets"]
        .as_u64()
        .unwrap_or(0)
}

/// Packets a hook counted under `reason` (0 if absent: status lists only
/// the reasons counted).
#[must_use]
pub fn reason_packets(status: &Value, hook: &str, reason: &str) -> u64 {
    status["dataplane"]["counters"][hook]["verdicts"][reason]
        .as_u64()
        .unwrap_or(0)
}

/// Kernel program IDs of the attached programs, in order.
#[must_use]
pub fn program_ids(status: &Value) -> Vec<u64> {
    status["dataplane"]["programs"]
        .as_array()
        .map(|programs| {
            programs
                .iter()
                .filter_map(|p| p["program_id"].as_u64())
                .collect()
        })
        .unwrap_or_default()
}
