//! The variants through shoal's routing mesh: a 3-node world per variant
//! (the hook and how XDP tunnels, where the tasks run), a 3-replica whoami
//! service published on 8080, and the packets the nodes' eBPF programs
//! dropped while it was measured.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddrV4},
    panic::{AssertUnwindSafe, catch_unwind},
};

use anyhow::Result;
use shoal_api::status::NodeStatus;
use shoal_netns_tests::{World, service_create_args};

use super::{BACKEND_PORT, CLIENT, PUBLISHED, lab::prepare_client, report::Row, wrk::measure};
use crate::bench_shared::wait_for_tasks;

/// A way through shoal's routing mesh.
pub(super) struct MeshVariant {
    name: &'static str,
    /// World tag.
    tag: &'static str,
    /// shoald's flags: the hook.
    shoald_args: &'static [&'static str],
    /// A placement constraint for the service's tasks.
    constraint: Option<&'static str>,
}

pub(super) const MESH_VARIANTS: [MeshVariant; 4] = [
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
pub(super) fn mesh(variant: &MeshVariant) -> Row {
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
    let world = World::swarm(variant.tag, 3)
        .shoald_args(variant.shoald_args)
        .form()
        .map_err(anyhow::Error::msg)?;
    let published = format!("published={PUBLISHED},target={BACKEND_PORT}");
    let mut options = vec!["--replicas", "3", "--publish", &published];
    if let Some(constraint) = variant.constraint {
        options.extend(["--constraint", constraint]);
    }
    world
        .node(1)
        .shoal(&service_create_args("web", &options, &[]))
        .map_err(|e| anyhow::anyhow!("service create --publish {published}: {}", e.trim()))?;
    wait_for_tasks(&world, "web", 3)?;
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
