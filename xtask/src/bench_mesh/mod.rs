//! `cargo xtask bench mesh` (also the last part of `cargo xtask bench`):
//! HTTP requests per second, latency and CPU per request through a
//! published port of the routing mesh, against the alternatives a user
//! would put in front of two backends, in one run, with one tool and one
//! client. Every backend is the same nginx (`bench_shared::nginx`: 2
//! workers, `return 200`), fast enough that the path, not the backend,
//! is what saturates:
//!
//! - **direct** (`direct`): to one backend in its own namespace on a
//!   switch (no balancing, no translation: the ceiling);
//! - **iptables** (`iptables`): a router namespace doing DNAT round robin
//!   (`statistic --mode nth`) and MASQUERADE to two backends like the
//!   direct one (kube-proxy's iptables mode, Docker's own ingress);
//! - **nftables** (`nftables`): the same with `numgen inc mod 2`;
//! - **haproxy** (`haproxy`): TCP mode, round robin, in its own namespace;
//! - **shoal mesh** (`xdp`, `tc`, `xdp-tx-generic`, `xdp-tx-native`): a
//!   3-node world (1 manager, 2 workers) per variant, a 2-replica nginx
//!   service published on 8080 with both tasks on nodes 2 and 3
//!   (constraint), the client asking node 1: every request is carried to
//!   another node over VXLAN and its answer back. The variants differ by
//!   hook (`shoald --mesh-hook`) and by how XDP tunnels: through tc and
//!   the kernel's VXLAN device, or itself (`--mesh-xdp-tunnel on`, with
//!   `XDP_TX`), which on a veth needs either generic XDP or an XDP
//!   program on the peer: `xdp-tx-native` puts an `XDP_PASS` program on
//!   every port of the switch (`wire`), so the switch behaves like a NIC's
//!   wire and the nodes run native XDP;
//! - **shoal mesh, local** (`local`): both tasks on node 1, no tunnel: one
//!   hop, as the proxies have.
//!
//! Each with keep-alive connections and with a new connection per request
//! (`Connection: close`), by `wrk` (2 threads, 64 connections, 10 s) in a
//! client namespace at `198.18.1.1` on the same kind of switch (a bridge
//! in a namespace, veth ports), [`Plan::runs`] times, medians reported.
//! The client's veth has transmit checksum offload off in every variant:
//! a veth hands on partially checksummed packets, which an XDP program
//! that rewrites addresses must not see (a NIC delivers full checksums).
//! CPU per request is the whole machine's busy time over a run divided by
//! its requests; the table gives the extra over direct and its ratio to
//! the iptables hop's extra. `--profile KEY` runs that variant's
//! keep-alive load once more under `perf record -a -g` and prints the
//! top symbols.
//!
//! Figures are printed, never asserted; a variant that cannot run (a tool
//! missing, the mesh not answering) prints why and the others go on.
//! Everything made here carries a per-run prefix and goes with its guard,
//! also on failure or Ctrl-C: namespaces (their rules with them), the
//! processes started here (stopped by PID), the temporary directory.
//!
//! Module map:
//!
//! | module | owns |
//! | --- | --- |
//! | `lab` | the namespaces of the variants without shoal, and their backends |
//! | `proxies` | the variants without shoal: direct, iptables, nftables, haproxy |
//! | `shoal` | the routing mesh's variants, each in a world of its own |
//! | `wire` | the `XDP_PASS` program on a switch's ports |

mod lab;
mod proxies;
mod shoal;
mod wire;

use std::net::Ipv4Addr;

use anyhow::{Result, bail};

use crate::{
    bench_shared::{
        Plan, have, load_average,
        table::{Mode, Row, Table},
    },
    interrupt,
};
use lab::Lab;

/// The published (and proxies') port.
const PUBLISHED: u16 = 8080;
/// The client's address, on the lab's switch and on each world's.
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const IPTABLES_ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const NFT_ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 3);
const HAPROXY: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 4);
/// The lab's backends: as many as the service's replicas.
const BACKENDS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 2, 1), Ipv4Addr::new(198, 18, 2, 2)];
/// The connection modes, in the table's order: `Connection: close` or not.
const CLOSES: [bool; 2] = [false, true];
const MODES: [Mode; 2] = [
    Mode {
        name: "keep-alive",
        rate_unit: "req/s",
        operation: "req",
    },
    Mode {
        name: "close",
        rate_unit: "req/s",
        operation: "req",
    },
];
/// The keys of the variants without shoal, in the table's order.
const LAB_KEYS: [&str; 4] = ["direct", "iptables", "nftables", "haproxy"];

/// Runs the mesh benchmark and prints its table.
pub fn run(plan: &Plan) -> Result<()> {
    if let Some(reason) = shoal_netns_tests::skip_reason() {
        bail!("the benchmarks {reason}");
    }
    interrupt::install()?;
    if !have("wrk") {
        bail!("the mesh benchmark needs wrk: run cargo xtask setup");
    }
    let keys: Vec<&str> = LAB_KEYS
        .into_iter()
        .chain(shoal::MESH_VARIANTS.iter().map(|v| v.key))
        .collect();
    plan.check_profile(&keys)?;
    let image = crate::bench_shared::nginx::image()?;
    println!(
        "==> routing mesh: GET / to nginx (2 workers, return 200) by wrk from {CLIENT}, keep-alive and a new connection per request, {} run{} each",
        plan.runs,
        if plan.runs == 1 { "" } else { "s" }
    );
    let load_before = load_average();
    let mut rows = Vec::new();
    {
        let lab = Lab::new()?;
        let variants: [fn(&Lab, &Plan) -> Row; 4] =
            [Lab::direct, Lab::iptables, Lab::nftables, Lab::haproxy];
        for variant in variants {
            if interrupt::interrupted() {
                bail!("interrupted");
            }
            let row = variant(&lab, plan);
            row.print_brief(&MODES);
            rows.push(row);
        }
    }
    for variant in &shoal::MESH_VARIANTS {
        if interrupt::interrupted() {
            bail!("interrupted");
        }
        let row = shoal::mesh(variant, plan, &image);
        row.print_brief(&MODES);
        rows.push(row);
    }
    Table {
        title: "routing mesh: requests through a published port and its alternatives",
        modes: &MODES,
        base: "direct",
        reference: Some("iptables"),
        plan,
        load_before: &load_before,
    }
    .print(&rows);
    println!(
        "    the mesh carries requests to the tasks on nodes 2 and 3 over VXLAN and their answers back through node 1 (keeping the client's address); the proxies reach their backends on the same switch and hide it"
    );
    Ok(())
}
