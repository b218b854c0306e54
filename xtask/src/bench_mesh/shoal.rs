//! The variants through shoal's routing mesh: a 3-node world per variant
//! (the hook, how XDP tunnels, whether the switch's ports run `XDP_PASS`,
//! where the tasks run), a 2-replica nginx service published on 8080,
//! and the packets the nodes' eBPF programs dropped while it was measured.

use std::{
    net::SocketAddrV4,
    panic::{AssertUnwindSafe, catch_unwind},
    path::Path,
};

use anyhow::{Context, Result};
use shoal_netns_tests::World;

use super::{CLIENT, CLOSES, PUBLISHED, lab::prepare_client, wire};
use crate::bench_shared::{
    Plan, TempDir, dataplane_drops, grown_drops, nginx,
    runs::{HttpVariant, http},
    table::Row,
    wait_for_tasks, world_drops,
};

/// The service's replicas (as many as the lab's backends).
const REPLICAS: usize = super::BACKENDS.len();

/// A way through shoal's routing mesh.
pub(super) struct MeshVariant {
    pub(super) key: &'static str,
    name: &'static str,
    /// shoald's flags: the hook, how XDP tunnels.
    shoald_args: &'static [&'static str],
    /// Whether the switch's ports run an `XDP_PASS` program, like the wire
    /// behind a NIC (native `XDP_TX` on a veth needs one on the peer).
    xdp_pass_on_switch: bool,
    /// The tasks' placement.
    constraint: &'static str,
}

/// Both tasks on other nodes than the entry node, node 1.
const REMOTE: &str = "node.hostname!=node-1";

pub(super) const MESH_VARIANTS: [MeshVariant; 5] = [
    MeshVariant {
        key: "xdp",
        name: "shoal mesh, XDP hook",
        shoald_args: &["--mesh-hook", "xdp"],
        xdp_pass_on_switch: false,
        constraint: REMOTE,
    },
    MeshVariant {
        key: "tc",
        name: "shoal mesh, tc hook",
        shoald_args: &["--mesh-hook", "tc"],
        xdp_pass_on_switch: false,
        constraint: REMOTE,
    },
    MeshVariant {
        key: "xdp-tx-generic",
        name: "shoal mesh, XDP_TX, generic XDP",
        shoald_args: &[
            "--mesh-hook",
            "xdp",
            "--xdp-mode",
            "generic",
            "--mesh-xdp-tunnel",
            "on",
        ],
        xdp_pass_on_switch: false,
        constraint: REMOTE,
    },
    MeshVariant {
        key: "xdp-tx-native",
        name: "shoal mesh, XDP_TX, native (NIC-like)",
        shoald_args: &[
            "--mesh-hook",
            "xdp",
            "--xdp-mode",
            "native",
            "--mesh-xdp-tunnel",
            "on",
        ],
        xdp_pass_on_switch: true,
        constraint: REMOTE,
    },
    MeshVariant {
        key: "local",
        name: "shoal mesh, XDP hook, local tasks",
        shoald_args: &["--mesh-hook", "xdp"],
        xdp_pass_on_switch: false,
        constraint: "node.hostname==node-1",
    },
];

/// One variant through shoal's routing mesh, in a world of its own; a
/// panic of the harness (a daemon that does not start, a swarm that does
/// not form) becomes the row's error.
pub(super) fn mesh(variant: &MeshVariant, plan: &Plan, image: &Path) -> Row {
    let path = format!(
        "node-1 198.18.0.1:{PUBLISHED}, {REPLICAS} tasks ({})",
        variant.constraint
    );
    println!(
        "    {}: a 3-node world, a {REPLICAS}-replica nginx service published on {PUBLISHED}",
        variant.name
    );
    let failed =
        |error: &str| Row::failed(variant.key, variant.name, path.clone(), error, CLOSES.len());
    match catch_unwind(AssertUnwindSafe(|| mesh_world(variant, plan, image, &path))) {
        Ok(Ok(row)) => row,
        Ok(Err(error)) => failed(&format!("{error:#}")),
        Err(panic) => failed(
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic"),
        ),
    }
}

fn mesh_world(variant: &MeshVariant, plan: &Plan, image: &Path, path: &str) -> Result<Row> {
    let dir = TempDir::new(&format!(
        "shoal-bmesh-{}-{}",
        std::process::id(),
        variant.key
    ))?;
    let world = World::swarm(&format!("bm{}", variant.key), 3)
        .shoald_args(variant.shoald_args)
        .form()
        .map_err(anyhow::Error::msg)?;
    nginx::import(&world, image);
    let published = format!("published={PUBLISHED},target={}", nginx::PORT);
    let replicas = REPLICAS.to_string();
    world
        .node(1)
        .shoal(&[
            "service",
            "create",
            "--detach",
            "--name",
            "web",
            "--replicas",
            &replicas,
            "--publish",
            &published,
            "--constraint",
            variant.constraint,
            nginx::IMAGE,
        ])
        .map_err(|e| anyhow::anyhow!("service create --publish {published}: {}", e.trim()))?;
    wait_for_tasks(&world, "web", REPLICAS)?;
    let spread = world
        .nodes()
        .iter()
        .map(|node| format!("{} ×{}", node.hostname(), node.running_containers().len()))
        .collect::<Vec<_>>()
        .join(", ");
    let client = world.attach_host("client", CLIENT);
    prepare_client(&client)?;
    let wire = if variant.xdp_pass_on_switch {
        let ports = wire::xdp_pass_on_ports(world.switch(), &dir.0)
            .context("an XDP_PASS program on the switch's ports")?;
        format!("; XDP_PASS on the switch's ports {}", ports.join(" "))
    } else {
        String::new()
    };
    let drops_before = dataplane_drops(&world);
    let drops = || world_drops(&world);
    let mut row = http(
        plan,
        &dir.0,
        &HttpVariant {
            key: variant.key,
            name: variant.name,
            path: format!(
                "{path}: {spread}{wire}; shoald {}",
                variant.shoald_args.join(" ")
            ),
            client: client.netns().path(),
            target: SocketAddrV4::new(world.node(1).addr(), PUBLISHED),
            drops: &drops,
        },
        &CLOSES,
    );
    row.note = format!(
        "eBPF drop counters that grew: {}",
        grown_drops(&drops_before, &dataplane_drops(&world))
    );
    Ok(row)
}
