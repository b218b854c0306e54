//! `cargo xtask bench`, overlay part: in a fresh 3-node world (1 manager,
//! 2 workers) with one overlay network,
//! - cross-node TCP throughput task → task over the overlay (`whoami
//!   --blast` in a task on node 1 to `whoami --sink` in a task on node 2),
//!   compared in the same run with the same tool between the two nodes'
//!   namespaces over the bare veth underlay, and over a plain kernel VXLAN
//!   device (static `remote`, no eBPF, UDP port 4790) made in the node
//!   namespaces for the run;
//! - new connections per second (connect, `GET /`, close) from a task to a
//!   service VIP with three backends, against a backend's own address (no
//!   load balancing), and through iptables DNAT round robin in the client's
//!   own namespace (what kube-proxy's iptables mode does; skipped, saying
//!   so, where `iptables` is missing). The direct
//!   address is measured first: right after a VIP run, direct connections
//!   that reuse its client ports mostly fail (stale state for the same
//!   4-tuple), which would measure that instead.
//!
//! Figures are printed, never asserted. Everything made here goes with the
//! world or with the guards below.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use shoal_netns_tests::{Node, RunningTask, World, service_create_args};

use crate::bench_shared::{Background, round_robin_dnat, static_whoami, wait_for_tasks};

/// Seconds of each throughput run.
const BLAST_SECONDS: &str = "5";
/// Seconds of each connection-rate run, and its threads.
const RATE_SECONDS: &str = "5";
const RATE_THREADS: &str = "2";
/// The TCP port of the sinks.
const SINK_PORT: u16 = 5001;
/// The plain VXLAN device's name, VNI, UDP port and subnet.
const BARE_VXLAN: &str = "benchvx0";
const BARE_VNI: &str = "4242";
const BARE_PORT: &str = "4790";
const BARE_SUBNET: &str = "192.168.242";

/// The plain VXLAN devices made in the nodes' namespaces, deleted on drop.
struct BareVxlan<'a>(Vec<&'a Node>);

impl Drop for BareVxlan<'_> {
    fn drop(&mut self) {
        for node in &self.0 {
            let _ = Command::new("ip")
                .args(["-n", node.netns().name(), "link", "del", BARE_VXLAN])
                .status();
        }
    }
}

/// Runs the overlay benchmarks and prints their figures.
pub fn run() -> Result<()> {
    let whoami = static_whoami()?;
    let world = World::swarm("bench-ovl", 3)
        .form()
        .map_err(anyhow::Error::msg)?;
    let manager = world.node(1);
    let shoal = |args: &[&str]| {
        manager
            .shoal(args)
            .map_err(|e| anyhow::anyhow!("shoal {}: {e}", args.join(" ")))
    };
    shoal(&["network", "create", "-d", "overlay", "bench"])?;
    let sink_port = SINK_PORT.to_string();
    shoal(&service_create_args(
        "sink",
        &["--mode", "global", "--network", "bench"],
        &["whoami", "--sink", &sink_port],
    ))?;
    shoal(&service_create_args(
        "web",
        &["--replicas", "3", "--network", "bench"],
        &[],
    ))?;
    let sinks = wait_for_tasks(&world, "sink", 3)?;
    let web = wait_for_tasks(&world, "web", 3)?;
    let inspect: serde_json::Value = serde_json::from_str(&shoal(&["service", "inspect", "web"])?)
        .context("service inspect is JSON")?;
    let vip = inspect[0]["Endpoint"]["VirtualIPs"][0]["Addr"]
        .as_str()
        .and_then(|a| a.split('/').next())
        .context("web has a VIP")?
        .to_owned();
    let from = &sinks[0];
    throughput(&world, &whoami, from, &sinks[1])?;

    println!(
        "==> new connections per second (connect, GET /, close), {RATE_THREADS} threads, {RATE_SECONDS} s, from node-{}",
        from.node
    );
    let backend = web
        .iter()
        .find(|t| t.node != from.node)
        .context("a web task on another node")?;
    let direct = rate(&world, from, &backend.addr)?;
    println!(
        "    to one backend's address {} on node-{} (no balancing): {direct:.0}/s",
        backend.addr, backend.node
    );
    let through_vip = rate(&world, from, &vip)?;
    println!("    to the VIP {vip} (Maglev at connect(), 3 backends): {through_vip:.0}/s");
    println!("    VIP/direct {:.2}", through_vip / direct);
    let iptables = Command::new("which")
        .arg("iptables")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if iptables {
        let dnat = rate_through_dnat(&world, from, &web)?;
        println!(
            "    to {DNAT_ADDRESS} DNATed by iptables round robin to the 3 backends in the client's namespace: {dnat:.0}/s"
        );
        println!("    VIP/iptables-DNAT {:.2}", through_vip / dnat);
    } else {
        println!("    iptables DNAT comparison skipped: no iptables on this machine");
    }
    Ok(())
}

/// An unused address of the benchmark network that the iptables rules
/// translate, as kube-proxy's iptables mode translates a Kubernetes service address.
const DNAT_ADDRESS: &str = "10.0.0.250";

/// Connections per second to [`DNAT_ADDRESS`], which iptables in the client
/// task's own namespace (`nat OUTPUT`, `statistic --mode nth` round robin)
/// rewrites to the backends; the overlay then carries them like any task
/// traffic. The rules go with the task's namespace.
fn rate_through_dnat(world: &World, from: &RunningTask, backends: &[RunningTask]) -> Result<f64> {
    let netns = world
        .node(from.node)
        .data_dir()
        .join("tasks")
        .join(&from.id)
        .join("netns");
    let backends: Vec<String> = backends
        .iter()
        .map(|backend| format!("{}:80", backend.addr))
        .collect();
    let matching = [
        "-t",
        "nat",
        "-A",
        "OUTPUT",
        "-d",
        DNAT_ADDRESS,
        "-p",
        "tcp",
        "--dport",
        "80",
    ];
    for rule in round_robin_dnat(&matching, &backends) {
        let status = Command::new("nsenter")
            .arg(format!("--net={}", netns.display()))
            .arg("iptables")
            .args(&rule)
            .status()
            .context("running iptables in the client task's namespace")?;
        if !status.success() {
            bail!("iptables {} failed", rule.join(" "));
        }
    }
    rate(world, from, DNAT_ADDRESS)
}

/// Cross-node TCP throughput: task `from` to task `to` over the overlay,
/// then their nodes' namespaces over the veth underlay and over a plain
/// kernel VXLAN device.
fn throughput(world: &World, whoami: &Path, from: &RunningTask, to: &RunningTask) -> Result<()> {
    println!(
        "==> TCP throughput across nodes, one connection, {BLAST_SECONDS} s (node-{} → node-{})",
        from.node, to.node
    );
    let overlay = gbits(&world.node(from.node).runc_exec(
        &from.id,
        &[
            "whoami",
            "--blast",
            &format!("{}:{SINK_PORT}", to.addr),
            "--seconds",
            BLAST_SECONDS,
        ],
    ))?;
    println!("    overlay (task → task, eBPF + shoal_vxlan, MTU 1450): {overlay:.2} Gbit/s");
    let (node_a, node_b) = (world.node(from.node), world.node(to.node));
    let veth = node_to_node(whoami, node_a, node_b, &node_b.addr().to_string())?;
    println!("    bare veth underlay (node ns → node ns, MTU 1500):      {veth:.2} Gbit/s");
    let bare = BareVxlan(vec![node_a, node_b]);
    for (node, peer, host) in [(node_a, node_b, 1), (node_b, node_a, 2)] {
        let (local, remote) = (node.addr().to_string(), peer.addr().to_string());
        node.netns().ip(&[
            "link", "add", BARE_VXLAN, "type", "vxlan", "id", BARE_VNI, "local", &local, "remote",
            &remote, "dstport", BARE_PORT, "dev", "eth0",
        ]);
        node.netns().ip(&[
            "addr",
            "add",
            &format!("{BARE_SUBNET}.{host}/24"),
            "dev",
            BARE_VXLAN,
        ]);
        node.netns().ip(&["link", "set", BARE_VXLAN, "up"]);
    }
    let vxlan = node_to_node(whoami, node_a, node_b, &format!("{BARE_SUBNET}.2"))?;
    drop(bare);
    println!("    bare kernel VXLAN (static remote, no eBPF, MTU 1450):  {vxlan:.2} Gbit/s");
    println!(
        "    overlay/veth {:.2}, overlay/bare VXLAN {:.2}",
        overlay / veth,
        overlay / vxlan
    );

    Ok(())
}

/// The Gbit/s of a `whoami --blast` answer.
fn gbits(answer: &Result<String, String>) -> Result<f64> {
    let answer = answer.as_ref().map_err(|e| anyhow::anyhow!("blast: {e}"))?;
    field(answer, "gbit_per_s=")
}

/// The number after `key` in `answer`.
fn field(answer: &str, key: &str) -> Result<f64> {
    answer
        .split_whitespace()
        .find_map(|f| f.strip_prefix(key))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {key} in {answer:?}"))
}

/// `whoami --blast` from `from`'s namespace to a `whoami --sink` in
/// `to`'s, at `addr`: Gbit/s.
fn node_to_node(whoami: &Path, from: &Node, to: &Node, addr: &str) -> Result<f64> {
    let port = (SINK_PORT + 1).to_string();
    let _sink = Background(
        Command::new("ip")
            .args(["netns", "exec", to.netns().name()])
            .arg(whoami)
            .args(["--sink", &port])
            .stderr(Stdio::null())
            .spawn()
            .context("starting a sink")?,
    );
    let target = format!("{addr}:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = Command::new("ip")
            .args(["netns", "exec", from.netns().name()])
            .arg(whoami)
            .args(["--blast", &target, "--seconds", BLAST_SECONDS])
            .output()
            .context("running a blast")?;
        let answer = if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        };
        if answer.is_ok() || Instant::now() > deadline {
            return gbits(&answer);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `whoami --connect-rate` from task `from` to `addr`:80, per second.
fn rate(world: &World, from: &RunningTask, addr: &str) -> Result<f64> {
    let answer = world
        .node(from.node)
        .runc_exec(
            &from.id,
            &[
                "whoami",
                "--connect-rate",
                &format!("{addr}:80"),
                "--seconds",
                RATE_SECONDS,
                "--threads",
                RATE_THREADS,
            ],
        )
        .map_err(|e| anyhow::anyhow!("connect-rate to {addr}: {e}"))?;
    let errors = field(&answer, "errors=")?;
    if errors > 0.0 {
        println!("    ({errors} failed connections to {addr})");
    }
    field(&answer, "per_second=")
}
