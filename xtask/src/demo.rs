//! `cargo xtask demo`: a 3-node world in network namespaces, each node running
//! `shoald` with its data plane, some traffic between them, a 3-manager
//! swarm formed, a 3-replica `whoami` service running in runc containers
//! (its tasks and logs shown), every node's status printed, then kept up for
//! exploring (with `shoal` or `docker`) until Ctrl-C.

use anyhow::Result;
use shoal_netns_tests::{World, world::bin_dir};

use crate::interrupt;

/// Runs the demo; with `once`, tears down right after printing the status.
pub fn run(once: bool) -> Result<()> {
    if let Some(reason) = shoal_netns_tests::skip_reason() {
        anyhow::bail!("the demo {reason}");
    }
    interrupt::install()?;

    println!("==> creating 3 nodes (network namespaces on a bridge, underlay 198.18.0.0/15)");
    let mut world = World::new("demo", 3);
    for node in world.nodes() {
        println!(
            "    {}  {}  netns {}",
            node.hostname(),
            node.addr(),
            node.netns().name()
        );
    }
    println!("==> starting shoald on every node");
    world.start_all();
    println!("==> every node sends 100 UDP datagrams to each other node");
    for from in world.nodes() {
        for to in world.nodes() {
            if from.addr() != to.addr() {
                from.send_udp(to.addr(), 9, 100, 100);
            }
        }
    }
    println!(
        "\n==> forming a swarm: node-1 runs `shoal swarm init`, node-2 and node-3 join as managers"
    );
    world
        .form_swarm(&[2, 3], &[], &[])
        .map_err(anyhow::Error::msg)?;
    println!(
        "{}",
        world
            .node(1)
            .shoal(&["node", "ls"])
            .map_err(anyhow::Error::msg)?
    );
    run_a_service(&world);
    let shoal = bin_dir().join("shoal");
    for node in world.nodes() {
        println!(
            "\n==> {}: shoal -H unix://{} status",
            node.hostname(),
            node.socket().display()
        );
        match node.shoal(&["status"]) {
            Ok(text) => print!("{text}"),
            Err(error) => println!("status failed: {error}"),
        }
    }
    if once {
        println!("\n==> tearing down");
        return Ok(());
    }
    println!("\nThe cluster stays up until Ctrl-C. Explore it:");
    let first = world.node(1);
    for node in world.nodes() {
        println!(
            "  {} -H unix://{} status",
            shoal.display(),
            node.socket().display()
        );
    }
    println!(
        "  nsenter --net={} ip -d link show eth0   # the attached XDP program",
        first.netns().path()
    );
    println!(
        "  bpftool prog show pinned {}/prog_xdp_underlay   # if bpftool is installed",
        first
            .pin_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    );
    println!(
        "  {} -H unix://{} node ls",
        shoal.display(),
        first.socket().display()
    );
    println!(
        "  DOCKER_HOST=unix://{} docker node ls   # Docker's own client",
        first.socket().display()
    );
    println!(
        "  {} -H unix://{} service scale whoami=6   # then: service ps whoami",
        shoal.display(),
        first.socket().display()
    );
    println!(
        "  runc --root {} list   # node-1's task containers",
        first.runc_root().display()
    );
    println!("  logs: {}", first.log_path().display());
    while !interrupt::interrupted() {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    println!("\n==> Ctrl-C: stopping shoald on every node and removing the namespaces");
    drop(world);
    println!("==> done");
    Ok(())
}

/// Imports the demo image everywhere, creates a 3-replica `whoami`
/// service (its progress shown) and prints its tasks and logs.
fn run_a_service(world: &World) {
    println!("\n==> importing the demo image (busybox + whoami) on every node");
    for node in world.nodes() {
        node.import_demo_image();
    }
    let first = world.node(1);
    for args in [
        &["network", "create", "--driver", "overlay", "demo-net"][..],
        &[
            "service",
            "create",
            "--name",
            "whoami",
            "--replicas",
            "3",
            "--network",
            "demo-net",
            "whoami:latest",
        ],
        &["service", "ls"],
        &["service", "ps", "whoami"],
        &["service", "logs", "whoami"],
    ] {
        println!("\n==> shoal {}", args.join(" "));
        match first.shoal_streams(args) {
            Ok((stdout, stderr)) => print!("{stdout}{stderr}"),
            Err(error) => println!("failed: {error}"),
        }
    }
    request_across_the_overlay(world);
}

/// From node-1's task, one HTTP request to another node's task over the
/// overlay (`whoami --get`), showing who answered and whom it saw.
fn request_across_the_overlay(world: &World) {
    let task_on = |n: usize| {
        let node = world.node(n);
        let id = node.running_containers().into_iter().next()?;
        let addrs = node
            .runc_exec(&id, &["ip", "-o", "-4", "addr", "show", "eth0"])
            .ok()?;
        let addr = addrs
            .split_whitespace()
            .nth(3)?
            .split('/')
            .next()?
            .to_owned();
        Some((id, addr))
    };
    let (Some((client, client_addr)), Some((_, server_addr))) = (task_on(1), task_on(2)) else {
        println!("(no tasks on node-1 and node-2 to show the overlay with)");
        return;
    };
    println!(
        "\n==> node-1's task {client_addr} asks node-2's task {server_addr} over the overlay (VXLAN, eBPF):"
    );
    match world
        .node(1)
        .runc_exec(&client, &["whoami", "--get", &server_addr])
    {
        Ok(answer) => print!("{answer}"),
        Err(error) => println!("failed: {error}"),
    }
    println!(
        "\n==> the same task resolves the service name (task DNS at 127.0.0.11) and asks its VIP:"
    );
    let resolved = world
        .node(1)
        .runc_exec(&client, &["whoami", "--resolve", "whoami"])
        .unwrap_or_else(|error| error);
    print!("whoami → {resolved}");
    let Some(vip) = resolved
        .split_whitespace()
        .last()
        .filter(|w| w.contains('.'))
    else {
        return;
    };
    match world.node(1).runc_exec(&client, &["whoami", "--get", vip]) {
        Ok(answer) => print!("{answer}"),
        Err(error) => println!("failed: {error}"),
    }
}
