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
//!
//! Module map:
//!
//! | module | owns |
//! | --- | --- |
//! | `lab` | the namespaces of the variants without shoal, and the commands run in them |
//! | `proxies` | the variants without shoal: direct, iptables, nftables, haproxy |
//! | `shoal` | the routing mesh's variants, each in a world of its own |
//! | `wrk` | measuring a target: probes, wrk runs and their reports, retransmits |
//! | `report` | a variant's figures (`Row`) and the table of them all |

mod lab;
mod proxies;
mod report;
mod shoal;
mod wrk;

use std::net::Ipv4Addr;

use anyhow::{Result, bail};

use crate::{bench_shared::static_whoami, interrupt};
use lab::{Lab, have};
use report::{Row, load_average, print_table};

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

/// Runs the mesh benchmark and prints its table.
pub fn run() -> Result<()> {
    if let Some(reason) = shoal_netns_tests::skip_reason() {
        bail!("the benchmarks {reason}");
    }
    interrupt::install()?;
    if !have("wrk") {
        bail!("the mesh benchmark needs wrk: run cargo xtask setup");
    }
    let whoami = static_whoami()?;
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
    for variant in shoal::MESH_VARIANTS {
        if interrupt::interrupted() {
            bail!("interrupted");
        }
        rows.push(shoal::mesh(&variant));
    }
    print_table(&rows, &load_before);
    Ok(())
}
