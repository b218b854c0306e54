//! The lab of the variants without shoal: a switch (a bridge in a
//! namespace, like a world's) with the client, three whoami backends, two
//! routers and haproxy's namespace on it, the lab's directory, and the
//! commands run in those namespaces.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};
use shoal_netns_tests::{client::Host, netns::NetNs};

use super::{BACKEND_PORT, BACKENDS, CLIENT, HAPROXY, IPTABLES_ROUTER, NFT_ROUTER};
use crate::bench_shared::Background;

/// Sysctls of every namespace made here, so a new connection per request
/// does not run out of ports on any side (the same in every variant).
const PORT_SYSCTLS: [&str; 2] = [
    "net.ipv4.ip_local_port_range=1024 65000",
    "net.ipv4.tcp_tw_reuse=1",
];

/// Whether `program` is on the `PATH`.
pub(super) fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `command`, failing with its error output.
pub(super) fn checked(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Sets [`PORT_SYSCTLS`] (and `extra`) in `host`'s namespace.
pub(super) fn sysctls(host: &Host, extra: &[&str]) -> Result<()> {
    checked(
        host.command("sysctl")
            .arg("-qw")
            .args(PORT_SYSCTLS)
            .args(extra),
    )
    .map(drop)
}

/// Makes `host` a client: transmit checksum offload off, ports as every
/// namespace here has them.
pub(super) fn prepare_client(host: &Host) -> Result<()> {
    sysctls(host, &[])?;
    if !have("ethtool") {
        bail!(
            "ethtool is missing (cargo xtask setup installs it): cannot turn tx checksum offload off"
        );
    }
    checked(host.command("ethtool").args(["-K", "eth0", "tx", "off"])).map(drop)
}

/// A directory removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The namespaces of the variants without shoal: a switch (a bridge in
/// a namespace, like a world's), the client, three whoami backends, two
/// routers (iptables, nftables) and haproxy's namespace.
pub(super) struct Lab {
    // Drop order: the processes, then the namespaces, then the switch
    // and the files.
    processes: Vec<Background>,
    pub(super) client: Host,
    backends: Vec<Host>,
    pub(super) iptables: Host,
    pub(super) nft: Host,
    pub(super) haproxy: Host,
    _switch: NetNs,
    pub(super) dir: TempDir,
}

impl Lab {
    /// Builds the lab and starts the backends (`whoami` as `backend-N`).
    pub(super) fn new(whoami: &Path) -> Result<Self> {
        let prefix = format!("shoal-bmesh-{}", std::process::id());
        let dir = TempDir(std::env::temp_dir().join(&prefix));
        std::fs::create_dir_all(&dir.0).context("creating the benchmark's directory")?;
        let switch = NetNs::new(&format!("{prefix}-sw"));
        switch.ip(&["link", "add", "br0", "type", "bridge"]);
        switch.ip(&["link", "set", "br0", "up"]);
        let attach = |tag: &str, addr| Host::attach(&switch, &format!("{prefix}-{tag}"), tag, addr);
        let client = attach("c", CLIENT);
        let backends: Vec<Host> = BACKENDS
            .iter()
            .enumerate()
            .map(|(i, addr)| attach(&format!("b{}", i + 1), *addr))
            .collect();
        let iptables = attach("ipt", IPTABLES_ROUTER);
        let nft = attach("nft", NFT_ROUTER);
        let haproxy = attach("hap", HAPROXY);
        let mut lab = Self {
            processes: Vec::new(),
            client,
            backends,
            iptables,
            nft,
            haproxy,
            _switch: switch,
            dir,
        };
        prepare_client(&lab.client)?;
        for host in [&lab.iptables, &lab.nft, &lab.haproxy] {
            sysctls(host, &[])?;
        }
        for (i, backend) in lab.backends.iter().enumerate() {
            sysctls(backend, &[])?;
            // A hostname per backend (its own UTS namespace), so answers
            // say which one served them.
            let script = format!(
                "hostname backend-{} && exec {} --port {BACKEND_PORT}",
                i + 1,
                whoami.display()
            );
            let child = backend
                .command("unshare")
                .args(["--uts", "sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting a whoami backend")?;
            lab.processes.push(Background(child));
        }
        Ok(lab)
    }
}

/// Forwarding on, ICMP redirects off (the router forwards out of the
/// interface the packet came in by) in a router's namespace.
pub(super) fn forwarding(router: &Host) -> Result<()> {
    sysctls(
        router,
        &[
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.send_redirects=0",
            "net.ipv4.conf.eth0.send_redirects=0",
        ],
    )
}
