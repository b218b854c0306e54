//! `cargo xtask bench vip` (also part of `cargo xtask bench`): new
//! connections per second (connect, `GET /`, read to the end, close) from
//! a task to a service's VIP, in a 3-node world (1 manager, 2 workers)
//! with one overlay network: a whoami task on node 1 asks (`whoami
//! --connect-rate`, 2 threads, run inside the task with `runc exec`, so in
//! its namespace and cgroup, where socket-level balancing would act), a
//! 2-replica nginx service on nodes 2 and 3 answers. Against, in the same
//! world and from the same task:
//!
//! - **direct** (`direct`): one backend's own address (no balancing);
//! - **iptables** (`iptables`): an unused address that iptables DNATs
//!   round robin (`statistic --mode nth`, `nat OUTPUT`) to the backends in
//!   the client's own namespace, as kube-proxy's iptables mode does;
//! - **VIP** (`vip`): the service's VIP (shoal's balancing, at the
//!   task's sockets).
//!
//! iptables is measured last: its DNAT leaves conntrack entries in the
//! client's namespace after its rules go, and a later connection straight
//! to a backend that reuses a client port matches one of them as a reply
//! and is translated back (retransmits, a few hundred connections a second
//! instead of thousands), which would measure that instead. The VIP,
//! translated at the socket, leaves no state a later connection meets.
//! The iptables row pays for that order itself: its translated
//! connections land on 4-tuples the backends still hold in `TIME_WAIT` from
//! the earlier runs (the client's stack picks its port for the DNAT
//! address, not the backend's), so its figure is a lower bound. Medians of `--runs` runs;
//! CPU is the whole machine's busy time per connection. Figures are
//! printed, never asserted.

use std::{net::Ipv4Addr, path::Path};

use anyhow::{Context, Result, bail};
use shoal_netns_tests::{RunningTask, World, service_create_args};

use crate::{
    bench_shared::{
        BENCH_NETWORK, Plan, TempDir, dataplane_drops, grown_drops, have, load_average,
        manager_shoal, nginx, overlay_world, round_robin_dnat,
        runs::measure,
        table::{Mode, Row, Table},
        task_netns, wait_for_tasks, whoami_figure, world_drops,
        wrk::{Counters, Load, SECONDS, in_netns},
    },
    interrupt,
};

/// The connect-rate loop's threads.
const THREADS: &str = "2";
/// The last byte of an unused address in the VIP's /24 (the benchmark
/// network's) that the iptables rules translate, as kube-proxy's iptables
/// mode translates a service address.
const DNAT_HOST: u8 = 250;
const KEYS: [&str; 3] = ["direct", "iptables", "vip"];
const MODES: [Mode; 1] = [Mode {
    name: "new conn",
    rate_unit: "conn/s",
    operation: "conn",
}];

/// Runs the VIP benchmark and prints its table.
pub fn run(plan: &Plan) -> Result<()> {
    if let Some(reason) = shoal_netns_tests::skip_reason() {
        bail!("the benchmarks {reason}");
    }
    interrupt::install()?;
    plan.check_profile(&KEYS)?;
    let image = nginx::image()?;
    let dir = TempDir::new(&format!("shoal-bvip-{}", std::process::id()))?;
    let (world, web, client, vip) = world_with_tasks(&image)?;
    println!(
        "==> service VIP: new connections per second from a task on node-1 (whoami --connect-rate, {THREADS} threads, {SECONDS} s) to nginx tasks on nodes {}, {} run{} each",
        web.iter()
            .map(|t| t.node.to_string())
            .collect::<Vec<_>>()
            .join(" and "),
        plan.runs,
        if plan.runs == 1 { "" } else { "s" }
    );
    let load_before = load_average();
    let backend = &web[0];
    let measure = |key, name, addr: &str, path| {
        let row = rate_row(&world, plan, &dir, &client, key, name, addr, path);
        row.print_brief(&MODES);
        row
    };
    let mut rows = vec![measure(
        "direct",
        "direct to a backend",
        &backend.addr,
        format!(
            "{}:{} on node-{} (no balancing)",
            backend.addr,
            nginx::PORT,
            backend.node
        ),
    )];
    rows.push(measure(
        "vip",
        "shoal service VIP",
        &vip.to_string(),
        format!("the VIP {vip}, 2 backends (Maglev at connect())"),
    ));
    let (key, name) = ("iptables", "iptables DNAT in the task");
    let [a, b, c, _] = vip.octets();
    let dnat_address = Ipv4Addr::new(a, b, c, DNAT_HOST).to_string();
    let path =
        format!("{dnat_address} DNATed round robin to the 2 backends in the client's namespace");
    rows.push(if have("iptables") {
        match dnat(&world, &client, &web, &dnat_address) {
            Ok(()) => measure(key, name, &dnat_address, path),
            Err(error) => Row::failed(key, name, path, &format!("{error:#}"), MODES.len()),
        }
    } else {
        Row::failed(
            key,
            name,
            path,
            "iptables is missing (cargo xtask setup)",
            MODES.len(),
        )
    });
    Table {
        title: "service VIP: new connections per second from a task",
        modes: &MODES,
        base: "direct",
        reference: Some("iptables"),
        plan,
        load_before: &load_before,
    }
    .print(&rows);
    Ok(())
}

/// A world with the bench's overlay network, the nginx service `web` (2
/// tasks on nodes 2 and 3) and a whoami `client` task on node 1: the
/// world, web's tasks, the client task and web's VIP.
fn world_with_tasks(image: &Path) -> Result<(World, Vec<RunningTask>, RunningTask, Ipv4Addr)> {
    let world = overlay_world("bench-vip", image)?;
    let shoal = |args: &[&str]| manager_shoal(&world, args);
    shoal(&[
        "service",
        "create",
        "--detach",
        "--name",
        "web",
        "--replicas",
        "2",
        "--network",
        BENCH_NETWORK,
        "--constraint",
        "node.hostname!=node-1",
        nginx::IMAGE,
    ])?;
    shoal(&service_create_args(
        "client",
        &[
            "--network",
            BENCH_NETWORK,
            "--constraint",
            "node.hostname==node-1",
        ],
        &[],
    ))?;
    let web = wait_for_tasks(&world, "web", 2)?;
    let client = wait_for_tasks(&world, "client", 1)?.remove(0);
    let inspect: serde_json::Value = serde_json::from_str(&shoal(&["service", "inspect", "web"])?)
        .context("service inspect is JSON")?;
    let vip = inspect[0]["Endpoint"]["VirtualIPs"][0]["Addr"]
        .as_str()
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .context("web has a VIP")?;
    Ok((world, web, client, vip))
}

/// Measures new connections per second from `client` to `addr`:80.
#[expect(clippy::too_many_arguments, reason = "one variant's description")]
fn rate_row(
    world: &World,
    plan: &Plan,
    dir: &TempDir,
    client: &RunningTask,
    key: &'static str,
    name: &str,
    addr: &str,
    path: String,
) -> Row {
    let node = world.node(client.node);
    let url = format!("http://{addr}:{}/", nginx::PORT);
    let get = || node.runc_exec(&client.id, &["wget", "-q", "-O", "-", &url]);
    let seen = match nginx::probe(&get) {
        Ok(seen) => seen,
        Err(error) => {
            return Row::failed(key, name, path, &format!("{addr}: {error}"), MODES.len());
        }
    };
    let target = format!("{addr}:{}", nginx::PORT);
    let seconds = SECONDS.to_string();
    let load = || -> Result<Load, String> {
        let answer = node.runc_exec(
            &client.id,
            &[
                "whoami",
                "--connect-rate",
                &target,
                "--seconds",
                &seconds,
                "--threads",
                THREADS,
            ],
        )?;
        connect_rate(&answer)
    };
    let drops = || world_drops(world);
    let counters = Counters {
        client: task_netns(world, client),
        drops: &drops,
    };
    let ebpf_before = dataplane_drops(world);
    let measured = measure(plan, key, &dir.0, &counters, &[&load]);
    Row {
        key,
        name: name.to_owned(),
        path,
        seen,
        modes: measured.modes,
        note: format!(
            "eBPF drop counters that grew: {}",
            grown_drops(&ebpf_before, &dataplane_drops(world))
        ),
        profile: measured.profile,
    }
}

/// What `whoami --connect-rate` printed: `connections=C errors=E
/// seconds=S per_second=R`.
fn connect_rate(answer: &str) -> Result<Load, String> {
    let field = |key: &str| whoami_figure(answer, key);
    let errors = field("errors=")?;
    Ok(Load {
        operations: field("connections=")?,
        rate: field("per_second=")?,
        p99: None,
        errors: if errors > 0.0 {
            format!("{errors} failed connections")
        } else {
            String::new()
        },
    })
}

/// The iptables rules that DNAT `address`:80 round robin to `backends`
/// in `client`'s namespace (`nat OUTPUT`); they go with it.
fn dnat(
    world: &World,
    client: &RunningTask,
    backends: &[RunningTask],
    address: &str,
) -> Result<()> {
    let backends: Vec<String> = backends
        .iter()
        .map(|backend| format!("{}:{}", backend.addr, nginx::PORT))
        .collect();
    let port = nginx::PORT.to_string();
    let matching = [
        "-t", "nat", "-A", "OUTPUT", "-d", address, "-p", "tcp", "--dport", &port,
    ];
    for rule in round_robin_dnat(&matching, &backends) {
        let status = in_netns(&task_netns(world, client), "iptables")
            .args(&rule)
            .status()
            .context("running iptables in the client task's namespace")?;
        if !status.success() {
            bail!("iptables {} failed", rule.join(" "));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::connect_rate;

    #[test]
    fn reads_a_connect_rate_answer() {
        let load = connect_rate("connections=41000 errors=2 seconds=10.001 per_second=4099.6\n")
            .expect("parses");
        assert!((load.operations - 41000.0).abs() < 1e-9);
        assert!((load.rate - 4099.6).abs() < 1e-9);
        assert_eq!(load.errors, "2 failed connections");
        assert!(connect_rate("whoami: refused").is_err());
    }
}
