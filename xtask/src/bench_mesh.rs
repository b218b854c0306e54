//! `cargo xtask bench mesh` (also the last part of `cargo xtask bench`):
//! HTTP requests per second and latency through a published port of the
//! routing mesh, against the alternatives a user would put in front of
//! three backends, in one run, with one tool and one client:
//!
//! - **direct**: to one backend, a static `whoami` in its own namespace
//!   on a switch (no balancing, no translation: the ceiling);
//! - **shoal mesh, XDP** and **shoal mesh, tc**: a 3-node world (1
//!   manager, 2 workers) per hook (`shoald --mesh-hook`), a 3-replica
//!   whoami service published on 8080, the client asking node 1's underlay
//!   address; the tasks are spread over the nodes, so most requests are
//!   carried to another node over VXLAN and their answers back;
//! - **shoal mesh, `XDP_TX` (gen.)**: XDP tunnels to other nodes itself
//!   (`--mesh-xdp-tunnel on`), which on veths takes generic XDP;
//! - **shoal mesh, XDP, local**: the same with every task on node 1, no
//!   tunnel: one hop, as the proxies have;
//! - **iptables**: a router namespace doing DNAT round robin (`statistic
//!   --mode nth`) and MASQUERADE to three backends like the direct one
//!   (what kube-proxy's iptables mode and Docker's own ingress do);
//! - **nftables**: the same with `numgen inc mod 3`;
//! - **haproxy**: TCP mode, round robin, in its own namespace.
//!
//! Each with keep-alive connections and with a new connection per request
//! (`Connection: close`), by `wrk` in a client namespace at `198.18.1.1`
//! on the same kind of switch (a bridge in a namespace, veth ports). The
//! client's veth has transmit checksum offload off in every variant: a
//! veth hands on partially checksummed packets, which an XDP program that
//! rewrites addresses must not see (a NIC delivers full checksums). The
//! client, the proxies and the backends share this machine's cores, so
//! the figures are costs per request as much as latencies.
//!
//! Each run also counts the TCP segments the client retransmitted, and
//! each mesh variant the packets the nodes' eBPF programs dropped (by
//! hook and reason), so that a latency tail can be told from loss: on a
//! machine whose cores all of these share, a tail without retransmits
//! is time spent waiting for a core.
//!
//! Figures are printed, never asserted; a variant that cannot run (a tool
//! missing, the mesh not answering) prints why and the others go on.
//! Everything made here carries a per-run prefix and goes with its guard,
//! also on failure or Ctrl-C: namespaces (their rules with them), the
//! processes started here (killed by PID), the temporary directory.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::{Ipv4Addr, SocketAddrV4},
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use shoal_api::status::NodeStatus;
use shoal_netns_tests::{
    World,
    client::{Host, whoami_field},
    netns::NetNs,
};

use crate::interrupt;

/// wrk's threads, connections and seconds per run.
const THREADS: &str = "2";
const CONNECTIONS: &str = "32";
const SECONDS: &str = "8";
/// The published (and proxies') port, and the backends' port.
const PUBLISHED: u16 = 8080;
const BACKEND_PORT: u16 = 80;
/// The client's address, on the lab's switch and on each world's.
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const IPTABLES_ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const NFT_ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 3);
const HAPROXY: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 4);
const BACKENDS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(198, 18, 2, 1),
    Ipv4Addr::new(198, 18, 2, 2),
    Ipv4Addr::new(198, 18, 2, 3),
];
/// How long a variant may take to answer its first request.
const FIRST_ANSWER: Duration = Duration::from_secs(30);
/// How long the service's tasks may take to run.
const CONVERGE: Duration = Duration::from_mins(2);
/// Requests sent one by one before measuring, to show who answers.
const PROBES: usize = 6;

/// Sysctls of every namespace made here, so a new connection per request
/// does not run out of ports on any side (the same in every variant).
const PORT_SYSCTLS: [&str; 2] = [
    "net.ipv4.ip_local_port_range=1024 65000",
    "net.ipv4.tcp_tw_reuse=1",
];

/// Runs the mesh benchmark and prints its table.
pub fn run() -> Result<()> {
    if let Some(reason) = shoal_netns_tests::skip_reason() {
        bail!("the benchmarks {reason}");
    }
    interrupt::install()?;
    if !have("wrk") {
        bail!("the mesh benchmark needs wrk: run cargo xtask setup");
    }
    let whoami = crate::bench_overlay::static_whoami()?;
    println!(
        "==> routing mesh: GET / by wrk from {CLIENT} ({THREADS} threads, {CONNECTIONS} connections, {SECONDS} s per run), keep-alive and a new connection per request"
    );
    println!(
        "    transmit checksum offload is off on the client's veth in every variant (a veth passes partial checksums; a NIC delivers full ones, which an XDP rewrite needs)"
    );
    let load_before = load_average();
    let mut rows = Vec::new();
    {
        let lab = Lab::new(&whoami)?;
        let variants: [fn(&Lab) -> Row; 4] =
            [Lab::direct, Lab::iptables, Lab::nftables, Lab::haproxy];
        for variant in variants {
            if interrupt::interrupted() {
                bail!("interrupted");
            }
            rows.push(variant(&lab));
        }
    }
    for variant in MESH_VARIANTS {
        if interrupt::interrupted() {
            bail!("interrupted");
        }
        rows.push(mesh(&variant));
    }
    print_table(&rows, &load_before);
    Ok(())
}

/// Whether `program` is on the `PATH`.
fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `command`, failing with its error output.
fn checked(command: &mut Command) -> Result<String> {
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
fn sysctls(host: &Host, extra: &[&str]) -> Result<()> {
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
fn prepare_client(host: &Host) -> Result<()> {
    sysctls(host, &[])?;
    if !have("ethtool") {
        bail!(
            "ethtool is missing (cargo xtask setup installs it): cannot turn tx checksum offload off"
        );
    }
    checked(host.command("ethtool").args(["-K", "eth0", "tx", "off"])).map(drop)
}

/// A process started here, killed by its PID and reaped on drop.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The namespaces of the variants without shoal: a switch (a bridge in
/// a namespace, like a world's), the client, three whoami backends, two
/// routers (iptables, nftables) and haproxy's namespace.
struct Lab {
    // Drop order: the processes, then the namespaces, then the switch
    // and the files.
    processes: Vec<Background>,
    client: Host,
    backends: Vec<Host>,
    iptables: Host,
    nft: Host,
    haproxy: Host,
    _switch: NetNs,
    dir: TempDir,
}

impl Lab {
    /// Builds the lab and starts the backends (`whoami` as `backend-N`).
    fn new(whoami: &Path) -> Result<Self> {
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

    fn direct(&self) -> Row {
        let target = SocketAddrV4::new(BACKENDS[0], BACKEND_PORT);
        measure(
            "direct",
            format!("to one backend, {target}"),
            &self.client,
            target,
        )
    }

    fn iptables(&self) -> Row {
        let name = "iptables";
        let path = "DNAT nth round robin + MASQUERADE in a router ns".to_owned();
        if !have("iptables") {
            return Row::failed(name, path, "iptables is missing (cargo xtask setup)".into());
        }
        let version = checked(Command::new("iptables").arg("-V"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        let path = format!("{path} ({version})");
        match self.iptables_rules() {
            Ok(()) => measure(
                name,
                path,
                &self.client,
                SocketAddrV4::new(IPTABLES_ROUTER, PUBLISHED),
            ),
            Err(error) => Row::failed(name, path, format!("{error:#}")),
        }
    }

    /// kube-proxy's pattern: rule `i` of `n` takes every `(n-i)`th of the
    /// connections left, the last takes the rest.
    fn iptables_rules(&self) -> Result<()> {
        forwarding(&self.iptables)?;
        let iptables = |args: &[String]| checked(self.iptables.command("iptables").args(args));
        let published = PUBLISHED.to_string();
        let count = BACKENDS.len();
        for (i, backend) in BACKENDS.iter().enumerate() {
            let mut rule: Vec<String> = [
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-d",
                &IPTABLES_ROUTER.to_string(),
                "-p",
                "tcp",
                "--dport",
                &published,
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            if i + 1 < count {
                rule.extend(
                    ["-m", "statistic", "--mode", "nth", "--every"]
                        .iter()
                        .map(|s| (*s).to_owned()),
                );
                rule.extend([(count - i).to_string(), "--packet".into(), "0".into()]);
            }
            rule.extend([
                "-j".into(),
                "DNAT".into(),
                "--to-destination".into(),
                format!("{backend}:{BACKEND_PORT}"),
            ]);
            iptables(&rule)?;
        }
        let masquerade: Vec<String> = [
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-d",
            "198.18.2.0/24",
            "-p",
            "tcp",
            "--dport",
            &BACKEND_PORT.to_string(),
            "-j",
            "MASQUERADE",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        iptables(&masquerade).map(drop)
    }

    fn nftables(&self) -> Row {
        let name = "nftables";
        let path = "DNAT numgen inc mod 3 + masquerade in a router ns".to_owned();
        if !have("nft") {
            return Row::failed(name, path, "nft is missing (cargo xtask setup)".into());
        }
        let map = BACKENDS
            .iter()
            .enumerate()
            .map(|(i, b)| format!("{i} : {b}"))
            .collect::<Vec<_>>()
            .join(", ");
        let ruleset = format!(
            "table ip shoalbench {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr {NFT_ROUTER} tcp dport {PUBLISHED} dnat to numgen inc mod {} map {{ {map} }} : {BACKEND_PORT}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip daddr 198.18.2.0/24 tcp dport {BACKEND_PORT} masquerade
  }}
}}
",
            BACKENDS.len()
        );
        let file = self.dir.0.join("nft.conf");
        let loaded = forwarding(&self.nft)
            .and_then(|()| std::fs::write(&file, ruleset).context("writing the nft ruleset"))
            .and_then(|()| checked(self.nft.command("nft").arg("-f").arg(&file)).map(drop));
        match loaded {
            Ok(()) => measure(
                name,
                path,
                &self.client,
                SocketAddrV4::new(NFT_ROUTER, PUBLISHED),
            ),
            Err(error) => Row::failed(name, path, format!("{error:#}")),
        }
    }

    fn haproxy(&self) -> Row {
        let name = "haproxy";
        let path = "TCP mode, round robin, in its own ns".to_owned();
        if !have("haproxy") {
            return Row::failed(name, path, "haproxy is missing (cargo xtask setup)".into());
        }
        let version = checked(Command::new("haproxy").arg("-v"))
            .ok()
            .and_then(|v| v.split_whitespace().nth(2).map(str::to_owned))
            .unwrap_or_default();
        let path = format!("{path} (haproxy {version})");
        let mut config = format!(
            "global
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend mesh
    bind {HAPROXY}:{PUBLISHED}
    default_backend backends
backend backends
    balance roundrobin
"
        );
        for (i, backend) in BACKENDS.iter().enumerate() {
            let _ = writeln!(config, "    server b{} {backend}:{BACKEND_PORT}", i + 1);
        }
        let (file, log) = (
            self.dir.0.join("haproxy.cfg"),
            self.dir.0.join("haproxy.log"),
        );
        let started = std::fs::write(&file, config)
            .context("writing haproxy's configuration")
            .and_then(|()| {
                let log = std::fs::File::create(&log).context("haproxy's log")?;
                let err = log.try_clone().context("haproxy's log")?;
                self.haproxy
                    .command("haproxy")
                    .arg("-db")
                    .arg("-f")
                    .arg(&file)
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(err)
                    .spawn()
                    .context("starting haproxy")
            });
        let _haproxy = match started {
            Ok(child) => Background(child),
            Err(error) => return Row::failed(name, path, format!("{error:#}")),
        };
        let mut row = measure(
            name,
            path,
            &self.client,
            SocketAddrV4::new(HAPROXY, PUBLISHED),
        );
        if row.keep_alive.is_err() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            if !log.trim().is_empty() {
                row.note = format!("haproxy said: {}", log.trim());
            }
        }
        row
    }
}

/// Forwarding on, ICMP redirects off (the router forwards out of the
/// interface the packet came in by) in a router's namespace.
fn forwarding(router: &Host) -> Result<()> {
    sysctls(
        router,
        &[
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.send_redirects=0",
            "net.ipv4.conf.eth0.send_redirects=0",
        ],
    )
}

/// A way through shoal's routing mesh.
struct MeshVariant {
    name: &'static str,
    /// World tag.
    tag: &'static str,
    /// shoald's flags: the hook.
    shoald_args: &'static [&'static str],
    /// A placement constraint for the service's tasks.
    constraint: Option<&'static str>,
}

const MESH_VARIANTS: [MeshVariant; 4] = [
    MeshVariant {
        name: "shoal mesh, XDP",
        tag: "bmeshxdp",
        shoald_args: &["--mesh-hook", "xdp"],
        constraint: None,
    },
    // XDP tunnelling to other nodes itself (XDP_TX), which on these veths
    // takes generic XDP.
    MeshVariant {
        name: "shoal mesh, XDP_TX (gen.)",
        tag: "bmeshtx",
        shoald_args: &[
            "--mesh-hook",
            "xdp",
            "--xdp-mode",
            "generic",
            "--mesh-xdp-tunnel",
            "on",
        ],
        constraint: None,
    },
    MeshVariant {
        name: "shoal mesh, tc",
        tag: "bmeshtc",
        shoald_args: &["--mesh-hook", "tc"],
        constraint: None,
    },
    // Every task on the entry node: no tunnel, one hop like the proxies'.
    MeshVariant {
        name: "shoal mesh, XDP, local",
        tag: "bmeshloc",
        shoald_args: &["--mesh-hook", "xdp"],
        constraint: Some("node.hostname==node-1"),
    },
];

/// One variant through shoal's routing mesh, in a world of its own; a
/// panic of the harness (a daemon that does not start, a swarm that does
/// not form) becomes the row's error.
fn mesh(variant: &MeshVariant) -> Row {
    let name = variant.name;
    let path = format!(
        "node-1 {}:{PUBLISHED}, 3 tasks",
        Ipv4Addr::new(198, 18, 0, 1)
    );
    println!("    {name}: a 3-node world, a 3-replica whoami service published on {PUBLISHED}");
    match catch_unwind(AssertUnwindSafe(|| mesh_world(variant, &path))) {
        Ok(Ok(row)) => row,
        Ok(Err(error)) => Row::failed(name, path, format!("{error:#}")),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".to_owned());
            Row::failed(name, path, message)
        }
    }
}

fn mesh_world(variant: &MeshVariant, path: &str) -> Result<Row> {
    let mut world = World::new(variant.tag, 3);
    for n in 1..=3 {
        world.node_mut(n).start_with(variant.shoald_args);
    }
    world
        .form_swarm(&[], &[2, 3], &["--dispatcher-heartbeat", "1s"])
        .map_err(anyhow::Error::msg)?;
    for node in world.nodes() {
        node.import_demo_image();
    }
    let published = format!("published={PUBLISHED},target={BACKEND_PORT}");
    let mut create = vec![
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--replicas",
        "3",
        "--publish",
        &published,
    ];
    if let Some(constraint) = variant.constraint {
        create.extend(["--constraint", constraint]);
    }
    create.push("whoami:latest");
    world
        .node(1)
        .shoal(&create)
        .map_err(|e| anyhow::anyhow!("service create --publish {published}: {}", e.trim()))?;
    wait_running(&world, "web", 3)?;
    let spread = world
        .nodes()
        .iter()
        .map(|node| {
            let tasks = node.running_containers().len();
            format!("{} ×{tasks}", node.hostname())
        })
        .collect::<Vec<_>>()
        .join(", ");
    let path = format!("{path} ({spread})");
    let client = world.attach_host("client", CLIENT);
    prepare_client(&client)?;
    let target = SocketAddrV4::new(world.node(1).addr(), PUBLISHED);
    let drops_before = dataplane_drops(&world);
    let mut row = measure(variant.name, path, &client, target);
    let drops = dataplane_drops(&world)
        .into_iter()
        .filter_map(|(counter, after)| {
            let during = after.saturating_sub(drops_before.get(&counter).copied().unwrap_or(0));
            (during > 0).then(|| format!("{counter} {during}"))
        })
        .collect::<Vec<_>>();
    row.note = format!(
        "packets the nodes' eBPF programs dropped during the runs: {}",
        if drops.is_empty() {
            "none".to_owned()
        } else {
            drops.join(", ")
        }
    );
    Ok(row)
}

/// Every drop counter in the nodes' status, keyed `node hook verdict`:
/// the data plane's hooks, the routing mesh's node row and each of its
/// published ports.
fn dataplane_drops(world: &World) -> BTreeMap<String, u64> {
    let mut drops = BTreeMap::new();
    for node in world.nodes() {
        let Some(status) = node
            .status()
            .ok()
            .and_then(|status| serde_json::from_value::<NodeStatus>(status).ok())
        else {
            continue;
        };
        let host = node.hostname();
        let hooks = status
            .dataplane
            .counters
            .iter()
            .map(|(hook, counters)| (hook.clone(), &counters.verdicts));
        let mesh = std::iter::once(("mesh".to_owned(), &status.mesh.node)).chain(
            status.mesh.ports.iter().map(|port| {
                (
                    format!("mesh {}/{}", port.published_port, port.protocol),
                    &port.verdicts,
                )
            }),
        );
        for (counter, verdicts) in hooks.chain(mesh) {
            for (verdict, packets) in verdicts {
                if verdict.starts_with("drop") {
                    drops.insert(format!("{host} {counter} {verdict}"), *packets);
                }
            }
        }
    }
    drops
}

/// Waits until `count` containers of `service` run.
fn wait_running(world: &World, service: &str, count: usize) -> Result<()> {
    let deadline = Instant::now() + CONVERGE;
    loop {
        if interrupt::interrupted() {
            bail!("interrupted");
        }
        let wanted = world
            .node(1)
            .shoal(&[
                "service",
                "ps",
                "-q",
                "--no-trunc",
                "--filter",
                "desired-state=running",
                service,
            ])
            .map_err(anyhow::Error::msg)?;
        let running = world
            .nodes()
            .iter()
            .flat_map(shoal_netns_tests::Node::running_containers)
            .filter(|id| wanted.lines().any(|w| w == id))
            .count();
        if running == count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{running} of {count} {service} tasks running after {CONVERGE:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One variant's figures.
#[derive(Debug)]
struct Row {
    name: &'static str,
    /// What the requests go through.
    path: String,
    /// The client addresses the backends saw, and which backends answered.
    seen: String,
    keep_alive: Result<Wrk, String>,
    close: Result<Wrk, String>,
    note: String,
}

impl Row {
    fn failed(name: &'static str, path: String, error: String) -> Self {
        println!("    {name}: skipped: {error}");
        Self {
            name,
            path,
            seen: String::new(),
            keep_alive: Err(error.clone()),
            close: Err(error),
            note: String::new(),
        }
    }
}

/// Waits for `target` to answer from `client`, shows who answers a few
/// requests, then runs wrk with keep-alive and with a connection per
/// request.
fn measure(name: &'static str, path: String, client: &Host, target: SocketAddrV4) -> Row {
    let deadline = Instant::now() + FIRST_ANSWER;
    let first = loop {
        match client.http_get(target, Duration::from_secs(2)) {
            Ok(answer) => break Ok(answer),
            Err(error) if Instant::now() > deadline || interrupt::interrupted() => {
                break Err(error);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    };
    if interrupt::interrupted() {
        return Row::failed(name, path, "interrupted".into());
    }
    if let Err(error) = first {
        return Row::failed(
            name,
            path,
            format!("{target} did not answer within {FIRST_ANSWER:?}: {error}"),
        );
    }
    let mut hostnames = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..PROBES {
        if let Ok(answer) = client.http_get(target, Duration::from_secs(2)) {
            let host = whoami_field(&answer, "Hostname").unwrap_or("?").to_owned();
            let saw = whoami_field(&answer, "RemoteAddr")
                .and_then(|a| a.rsplit_once(':'))
                .map_or("?", |(ip, _)| ip)
                .to_owned();
            if !hostnames.contains(&host) {
                hostnames.push(host);
            }
            if !seen.contains(&saw) {
                seen.push(saw);
            }
        }
    }
    let seen = format!(
        "{} ({} backends in {PROBES} requests)",
        seen.join(" "),
        hostnames.len()
    );
    let url = format!("http://{target}/");
    let keep_alive = wrk(client, &url, false);
    let close = wrk(client, &url, true);
    let row = Row {
        name,
        path,
        seen,
        keep_alive,
        close,
        note: String::new(),
    };
    println!(
        "    {name}: keep-alive {}, new connection per request {}; backends saw {}",
        brief(&row.keep_alive),
        brief(&row.close),
        row.seen
    );
    row
}

fn brief(result: &Result<Wrk, String>) -> String {
    match result {
        Ok(w) => format!("{:.0} req/s", w.requests_per_second),
        Err(error) => format!("failed ({error})"),
    }
}

/// What wrk measured.
#[derive(Debug, Clone, PartialEq)]
struct Wrk {
    requests_per_second: f64,
    p50: Duration,
    p99: Duration,
    /// wrk's `Socket errors:` and `Non-2xx` lines, if any.
    errors: String,
    /// TCP segments the client retransmitted during the run: loss on the
    /// path shows here, while a latency tail without any is time spent
    /// waiting for a core.
    retransmits: Option<u64>,
}

/// One wrk run from `client` to `url`.
fn wrk(client: &Host, url: &str, close: bool) -> Result<Wrk, String> {
    if interrupt::interrupted() {
        return Err("interrupted".into());
    }
    let mut command = client.command("wrk");
    command.args([
        "-t",
        THREADS,
        "-c",
        CONNECTIONS,
        "-d",
        &format!("{SECONDS}s"),
        "--timeout",
        "2s",
        "--latency",
    ]);
    if close {
        command.args(["-H", "Connection: close"]);
    }
    let retransmits_before = retransmitted_segments(client);
    let output = command
        .arg(url)
        .output()
        .map_err(|e| format!("running wrk: {e}"))?;
    let retransmits = retransmitted_segments(client)
        .zip(retransmits_before)
        .map(|(after, before)| after.saturating_sub(before));
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {}{}",
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    parse_wrk(&text).map(|wrk| Wrk { retransmits, ..wrk })
}

/// The TCP segments `client`'s namespace has retransmitted so far.
fn retransmitted_segments(client: &Host) -> Option<u64> {
    let snmp = client
        .netns()
        .run(|| std::fs::read_to_string("/proc/thread-self/net/snmp").ok())?;
    tcp_retransmits(&snmp)
}

/// `RetransSegs` of `/proc/net/snmp`: the second `Tcp:` line holds the
/// values of the names on the first.
fn tcp_retransmits(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|line| line.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let column = names.split_whitespace().position(|n| n == "RetransSegs")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

/// Reads wrk's `--latency` report.
fn parse_wrk(text: &str) -> Result<Wrk, String> {
    let mut rate = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = Vec::new();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(value)) => rate = value.parse::<f64>().ok(),
            (Some("50%"), Some(value)) => p50 = parse_duration(value),
            (Some("99%"), Some(value)) => p99 = parse_duration(value),
            _ => {}
        }
        if line.starts_with("Socket errors:") || line.starts_with("Non-2xx") {
            errors.push(line.to_owned());
        }
    }
    match (rate, p50, p99) {
        (Some(requests_per_second), Some(p50), Some(p99)) => Ok(Wrk {
            requests_per_second,
            p50,
            p99,
            errors: errors.join("; "),
            retransmits: None,
        }),
        _ => Err(format!("unexpected wrk output: {text}")),
    }
}

/// A wrk duration: `812.00us`, `1.25ms`, `2.01s`, `1.00m`.
fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// Prints every row, with ratios to direct and to iptables per connection mode.
fn print_table(rows: &[Row], load_before: &str) {
    let find = |name: &str| rows.iter().find(|r| r.name == name);
    let (direct, iptables) = (find("direct"), find("iptables"));
    println!(
        "\n==> routing mesh: requests through a published port and its alternatives (wrk, {CONNECTIONS} connections, {SECONDS} s; figures, not assertions)"
    );
    println!(
        "    {:<26} {:<10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}  through",
        "variant", "connection", "req/s", "p50 ms", "p99 ms", "/direct", "/iptab.", "retrans"
    );
    for row in rows {
        for (mode, keep_alive) in [("keep-alive", true), ("close", false)] {
            let pick = |r: &Row| {
                if keep_alive {
                    r.keep_alive.clone()
                } else {
                    r.close.clone()
                }
            };
            let result = &pick(row);
            let ratio = |base: Option<&Row>| {
                let base = base.and_then(|b| pick(b).ok());
                match (result, base) {
                    (Ok(w), Some(b)) if b.requests_per_second > 0.0 => {
                        format!("{:.2}", w.requests_per_second / b.requests_per_second)
                    }
                    _ => "-".to_owned(),
                }
            };
            match result {
                Ok(w) => println!(
                    "    {:<26} {:<10} {:>9.0} {:>9.3} {:>9.3} {:>8} {:>8} {:>8}  {}",
                    row.name,
                    mode,
                    w.requests_per_second,
                    w.p50.as_secs_f64() * 1e3,
                    w.p99.as_secs_f64() * 1e3,
                    ratio(direct),
                    ratio(iptables),
                    w.retransmits
                        .map_or_else(|| "-".to_owned(), |r| r.to_string()),
                    row.path
                ),
                Err(error) => println!(
                    "    {:<26} {:<10} did not run: {}",
                    row.name,
                    mode,
                    error.lines().next().unwrap_or_default()
                ),
            }
            if let Ok(w) = result
                && !w.errors.is_empty()
            {
                println!("    {:<26} {:<10} wrk: {}", "", "", w.errors);
            }
        }
    }
    println!("\n    client addresses the backends saw (source IP preserved or not):");
    for row in rows.iter().filter(|r| !r.seen.is_empty()) {
        println!("    {:<26} {}", row.name, row.seen);
    }
    for row in rows.iter().filter(|r| !r.note.is_empty()) {
        println!("    {}: {}", row.name, row.note);
    }
    println!(
        "\n    the mesh carries the requests of tasks on other nodes over VXLAN to them and back through node-1 (keeping the client's address); the proxies reach their backends on the same switch and hide it"
    );
    println!(
        "    client, proxies, backends and nodes share {} cores; load average before: {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        load_before
    );
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{parse_duration, parse_wrk, tcp_retransmits};

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 8s test @ http://198.18.2.1:80/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms    2.10ms  40.12ms   91.00%
    Req/Sec    11.20k     1.01k   13.40k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.40ms
     90%    3.01ms
     99%   10.25ms
  178301 requests in 8.00s, 40.12MB read
  Socket errors: connect 0, read 3, write 0, timeout 0
Requests/sec:  22287.61
Transfer/sec:      5.01MB
";
        let wrk = parse_wrk(report).expect("parses");
        assert!((wrk.requests_per_second - 22287.61).abs() < 1e-6);
        assert_eq!(wrk.p50, Duration::from_micros(812));
        assert_eq!(wrk.p99, Duration::from_micros(10250));
        assert_eq!(
            wrk.errors,
            "Socket errors: connect 0, read 3, write 0, timeout 0"
        );
        assert!(parse_wrk("wrk: connection refused").is_err());
    }

    #[test]
    fn reads_tcp_retransmits_from_snmp() {
        let snmp = "Ip: Forwarding DefaultTTL
Ip: 1 64
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 40 2 0 1 3 5812 5790 17 0 4 0
Udp: InDatagrams
Udp: 9
";
        assert_eq!(tcp_retransmits(snmp), Some(17));
        assert_eq!(tcp_retransmits("Tcp: RetransSegs\n"), None);
        assert_eq!(tcp_retransmits(""), None);
    }

    #[test]
    fn reads_wrk_durations() {
        assert_eq!(parse_duration("2.00s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.00m"), Some(Duration::from_mins(1)));
        assert_eq!(parse_duration("12"), None);
    }
}
