//! `cargo xtask bench overlay` (also part of `cargo xtask bench`): the
//! overlay across nodes, in a 3-node world (1 manager, 2 workers) with one
//! overlay network, from a task on node 1 to tasks on node 2:
//!
//! - one TCP stream (`whoami --blast` to a `whoami --sink` task);
//! - keep-alive requests by wrk (2 threads, 64 connections) to an nginx
//!   task (the same nginx as every bench's backend).
//!
//! Against, in the same run on the same switch, the same loads between
//! two plain namespaces (no shoal, no eBPF): over a bare flow-based VXLAN
//! device pair (`external`, routes with `encap ip id … dst …`, MTU 1450
//! like the overlay's), and over the bare underlay (veth, MTU 1500).
//! Medians of `--runs` runs; CPU is the whole machine's busy time per
//! megabyte or per request. Figures are printed, never asserted.

use std::{
    net::{Ipv4Addr, SocketAddrV4},
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use shoal_netns_tests::{RunningTask, World, client::Host, service_create_args};

use crate::{
    bench_shared::{
        BENCH_NETWORK, Background, Plan, TempDir, dataplane_drops, grown_drops, interface_drops,
        load_average, manager_shoal, nginx, overlay_world,
        runs::{HttpVariant, http, measure},
        static_whoami,
        table::{Mode, Row, Table},
        task_netns, wait_for_tasks, whoami_figure, world_drops,
        wrk::{Counters, Load, SECONDS, in_netns},
    },
    interrupt,
};

/// The TCP port of the sinks.
const SINK_PORT: u16 = 5001;
/// The plain namespaces' underlay addresses, their VXLAN device, VNI,
/// UDP port and overlay addresses.
const BARE_HOSTS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 1, 11), Ipv4Addr::new(198, 18, 1, 12)];
const BARE_VXLAN: &str = "vx0";
const BARE_VNI: &str = "4242";
const BARE_PORT: &str = "4789";
const BARE_OVERLAY: [Ipv4Addr; 2] = [Ipv4Addr::new(10, 242, 0, 1), Ipv4Addr::new(10, 242, 0, 2)];
const KEYS: [&str; 3] = ["overlay", "vxlan", "underlay"];
const STREAM: [Mode; 1] = [Mode {
    name: "stream",
    rate_unit: "Gbit/s",
    operation: "MB",
}];
const REQUESTS: [Mode; 1] = [Mode {
    name: "keep-alive",
    rate_unit: "req/s",
    operation: "req",
}];

/// Runs the overlay benchmark and prints its tables.
pub fn run(plan: &Plan) -> Result<()> {
    if let Some(reason) = shoal_netns_tests::skip_reason() {
        bail!("the benchmarks {reason}");
    }
    interrupt::install()?;
    plan.check_profile(&KEYS)?;
    let whoami = static_whoami()?;
    let image = nginx::image()?;
    let dir = TempDir::new(&format!("shoal-bovl-{}", std::process::id()))?;
    let (world, sinks, web) = world_with_tasks(&image)?;
    let (from, to) = (&sinks[0], &sinks[1]);
    println!(
        "==> overlay across nodes: one TCP stream and keep-alive requests, task on node-{} → tasks on node-{}, against a bare flow-based VXLAN pair and the bare underlay, {} run{} each",
        from.node,
        to.node,
        plan.runs,
        if plan.runs == 1 { "" } else { "s" }
    );
    let load_before = load_average();
    let bare = BarePair::new(&world, &dir.0, &whoami)?;
    let ebpf_before = dataplane_drops(&world);
    let (overlay_drops, bare_drops) = (|| world_drops(&world), || bare.drops());
    let web_addr: Ipv4Addr = web.addr.parse().context("the nginx task's address")?;
    let mut crossings = vec![Crossing {
        key: "overlay",
        name: "shoal overlay, task → task",
        path: format!(
            "{} → {} and {web_addr} (eBPF + VXLAN, MTU 1450)",
            from.addr, to.addr
        ),
        client: task_netns(&world, from),
        drops: &overlay_drops,
        blast: Box::new(|| blast_in_task(&world, from, &to.addr)),
        target: web_addr,
    }];
    let (bare_client, whoami) = (&bare.client, &whoami);
    for (key, name, path, target) in BarePair::paths() {
        crossings.push(Crossing {
            key,
            name,
            path,
            client: bare.client.netns().path(),
            drops: &bare_drops,
            blast: Box::new(move || blast(bare_client, whoami, target)),
            target,
        });
    }
    let streams: Vec<Row> = crossings.iter().map(|c| c.stream(plan, &dir.0)).collect();
    let mut requests: Vec<Row> = crossings.iter().map(|c| c.requests(plan, &dir.0)).collect();
    requests[0].note = format!(
        "eBPF drop counters that grew (both tables): {}",
        grown_drops(&ebpf_before, &dataplane_drops(&world))
    );
    for (title, modes, rows) in [
        ("overlay: one TCP stream across nodes", &STREAM, &streams),
        (
            "overlay: keep-alive requests across nodes",
            &REQUESTS,
            &requests,
        ),
    ] {
        Table {
            title,
            modes,
            base: "vxlan",
            reference: None,
            plan,
            load_before: &load_before,
        }
        .print(rows);
    }
    Ok(())
}

/// A way across: the overlay between tasks, or a bare path between the
/// plain namespaces.
struct Crossing<'a> {
    key: &'static str,
    name: &'static str,
    path: String,
    /// The client's namespace (a path).
    client: String,
    drops: &'a dyn Fn() -> Option<u64>,
    /// One stream to the sink, for [`SECONDS`].
    blast: Box<dyn Fn() -> Result<Load, String> + 'a>,
    /// nginx's address.
    target: Ipv4Addr,
}

impl Crossing<'_> {
    /// The stream's row: the blast run and measured as `plan` says.
    fn stream(&self, plan: &Plan, dir: &Path) -> Row {
        let counters = Counters {
            client: self.client.clone(),
            drops: self.drops,
        };
        let measured = measure(plan, self.key, dir, &counters, &[&*self.blast]);
        let row = Row {
            key: self.key,
            name: self.name.to_owned(),
            path: self.path.clone(),
            seen: String::new(),
            modes: measured.modes,
            note: String::new(),
            profile: measured.profile,
        };
        row.print_brief(&STREAM);
        row
    }

    /// The keep-alive requests' row.
    fn requests(&self, plan: &Plan, dir: &Path) -> Row {
        let variant = HttpVariant {
            key: self.key,
            name: self.name,
            path: self.path.clone(),
            client: self.client.clone(),
            target: SocketAddrV4::new(self.target, nginx::PORT),
            drops: self.drops,
        };
        let row = http(plan, dir, &variant, &[false]);
        row.print_brief(&REQUESTS);
        row
    }
}

/// A world with the bench's overlay network, a whoami sink task on every
/// node and an nginx task on node 2: the world, the sinks by node, the
/// nginx task.
fn world_with_tasks(image: &Path) -> Result<(World, Vec<RunningTask>, RunningTask)> {
    let world = overlay_world("bench-ovl", image)?;
    let shoal = |args: &[&str]| manager_shoal(&world, args);
    let sink_port = SINK_PORT.to_string();
    shoal(&service_create_args(
        "sink",
        &["--mode", "global", "--network", BENCH_NETWORK],
        &["whoami", "--sink", &sink_port],
    ))?;
    shoal(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--network",
        BENCH_NETWORK,
        "--constraint",
        "node.hostname==node-2",
        nginx::IMAGE,
    ])?;
    let sinks = wait_for_tasks(&world, "sink", 3)?;
    let web = wait_for_tasks(&world, "web", 1)?.remove(0);
    Ok((world, sinks, web))
}

/// Two plain namespaces on the world's switch: `client` and `server`,
/// each with a flow-based VXLAN device, and a sink and nginx on the
/// server. Removed on drop (processes first).
struct BarePair {
    _processes: [Background; 2],
    client: Host,
    server: Host,
}

impl BarePair {
    fn new(world: &World, dir: &Path, whoami: &Path) -> Result<Self> {
        let client = world.attach_host("vxa", BARE_HOSTS[0]);
        let server = world.attach_host("vxb", BARE_HOSTS[1]);
        for (host, peer) in [(&client, 1), (&server, 0)] {
            let netns = host.netns();
            netns.ip(&[
                "link", "add", BARE_VXLAN, "type", "vxlan", "external", "dstport", BARE_PORT,
            ]);
            let own = BARE_OVERLAY[1 - peer].to_string();
            netns.ip(&["addr", "add", &format!("{own}/32"), "dev", BARE_VXLAN]);
            netns.ip(&["link", "set", BARE_VXLAN, "mtu", "1450", "up"]);
            netns.ip(&[
                "route",
                "add",
                &format!("{}/32", BARE_OVERLAY[peer]),
                "encap",
                "ip",
                "id",
                BARE_VNI,
                "dst",
                &BARE_HOSTS[peer].to_string(),
                "dev",
                BARE_VXLAN,
            ]);
        }
        let sink = server
            .command(whoami)
            .args(["--sink", &SINK_PORT.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting a sink")?;
        let sink = Background(sink);
        let nginx = nginx::start_in(&server, &dir.join("bare-nginx"))?;
        Ok(Self {
            _processes: [sink, nginx],
            client,
            server,
        })
    }

    /// The bare variants: key, name, path and the server's address.
    fn paths() -> [(&'static str, &'static str, String, Ipv4Addr); 2] {
        [
            (
                "vxlan",
                "bare flow-based VXLAN",
                format!(
                    "{} → {} over {BARE_VXLAN} (external, VNI {BARE_VNI}, MTU 1450) between plain namespaces",
                    BARE_OVERLAY[0], BARE_OVERLAY[1]
                ),
                BARE_OVERLAY[1],
            ),
            (
                "underlay",
                "bare underlay",
                format!(
                    "{} → {} over the veths and the switch (MTU 1500)",
                    BARE_HOSTS[0], BARE_HOSTS[1]
                ),
                BARE_HOSTS[1],
            ),
        ]
    }

    /// Packets the pair's interfaces dropped so far.
    fn drops(&self) -> Option<u64> {
        [&self.client, &self.server]
            .into_iter()
            .map(|host| interface_drops(host.netns()))
            .sum()
    }
}

/// `whoami --blast` for [`SECONDS`] from task `from` to the sink at `to`.
fn blast_in_task(world: &World, from: &RunningTask, to: &str) -> Result<Load, String> {
    let target = format!("{to}:{SINK_PORT}");
    let seconds = SECONDS.to_string();
    world
        .node(from.node)
        .runc_exec(
            &from.id,
            &["whoami", "--blast", &target, "--seconds", &seconds],
        )
        .and_then(|answer| blast_load(&answer))
}

/// `whoami --blast` for [`SECONDS`] from `client`'s namespace to the sink
/// at `to`, retried until the sink listens (10 s at most).
fn blast(client: &Host, whoami: &Path, to: Ipv4Addr) -> Result<Load, String> {
    let target = format!("{to}:{SINK_PORT}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = in_netns(&client.netns().path(), &whoami.display().to_string())
            .args(["--blast", &target, "--seconds", &SECONDS.to_string()])
            .output()
            .map_err(|e| format!("running a blast: {e}"))?;
        if output.status.success() {
            return blast_load(&String::from_utf8_lossy(&output.stdout));
        }
        if Instant::now() > deadline || interrupt::interrupted() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What `whoami --blast` printed: `bytes=B seconds=S gbit_per_s=G`.
fn blast_load(answer: &str) -> Result<Load, String> {
    let field = |key: &str| whoami_figure(answer, key);
    Ok(Load {
        operations: field("bytes=")? / 1e6,
        rate: field("gbit_per_s=")?,
        p99: None,
        errors: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::blast_load;

    #[test]
    fn reads_a_blast_answer_in_megabytes() {
        let load =
            blast_load("bytes=12500000000 seconds=10.000 gbit_per_s=10.000\n").expect("parses");
        assert!((load.operations - 12500.0).abs() < 1e-9);
        assert!((load.rate - 10.0).abs() < 1e-9);
        assert!(blast_load("whoami: refused").is_err());
    }
}
