//! The lab of the variants without shoal: a switch (a bridge in a
//! namespace, like a world's) with the client, two nginx backends, two
//! routers and haproxy's namespace on it, the lab's directory, the
//! sysctls of its namespaces and the packets they dropped.

use anyhow::{Result, bail};
use shoal_netns_tests::{client::Host, netns::NetNs};

use super::{BACKENDS, CLIENT, HAPROXY, IPTABLES_ROUTER, NFT_ROUTER};
use crate::bench_shared::{Background, TempDir, checked, have, interface_drops, nginx};

/// Sysctls of every namespace made here, so a new connection per request
/// does not run out of ports on any side (the same in every variant).
const PORT_SYSCTLS: [&str; 2] = [
    "net.ipv4.ip_local_port_range=1024 65000",
    "net.ipv4.tcp_tw_reuse=1",
];

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

/// The namespaces of the variants without shoal: a switch (a bridge in
/// a namespace, like a world's), the client, two nginx backends, two
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
    switch: NetNs,
    pub(super) dir: TempDir,
}

impl Lab {
    /// Builds the lab and starts nginx on the backends.
    pub(super) fn new() -> Result<Self> {
        let prefix = format!("shoal-bmesh-{}", std::process::id());
        let dir = TempDir::new(&prefix)?;
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
            switch,
            dir,
        };
        prepare_client(&lab.client)?;
        for host in [&lab.iptables, &lab.nft, &lab.haproxy] {
            sysctls(host, &[])?;
        }
        for (i, backend) in lab.backends.iter().enumerate() {
            sysctls(backend, &[])?;
            let nginx = nginx::start_in(backend, &lab.dir.0.join(format!("backend-{}", i + 1)))?;
            lab.processes.push(nginx);
        }
        Ok(lab)
    }

    /// Packets the lab's namespaces dropped so far (every interface).
    pub(super) fn drops(&self) -> Option<u64> {
        [&self.client, &self.iptables, &self.nft, &self.haproxy]
            .into_iter()
            .chain(&self.backends)
            .map(|host| interface_drops(host.netns()))
            .chain([interface_drops(&self.switch)])
            .sum()
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
