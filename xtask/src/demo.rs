//! `cargo xtask demo`: the seeds' demo, in network namespaces. Three nodes
//! (a namespace and a `shoald` each, on one switch) form a 3-manager
//! swarm; `shoal service create --name whoami --replicas 3 --publish
//! 8080:80 whoami:latest` runs with Docker's progress display; then a
//! client namespace on the same switch asks `http://<node>:8080/` through
//! every node, a few times each, and prints which task answered and which
//! client address it saw (the routing mesh keeps the client's own). Then
//! it prints how to explore the cluster (`shoal`, or `docker` with
//! `DOCKER_HOST`) and keeps it up until Ctrl-C; `--once` tears down right
//! after the requests. A request that fails is printed as such, per node.

use std::{
    net::{Ipv4Addr, SocketAddrV4},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use shoal_netns_tests::{
    Node, World,
    client::{Host, whoami_field},
    world::bin_dir,
};

use crate::interrupt;

/// The published port and the tasks' port.
const PUBLISHED: u16 = 8080;
/// The client namespace's underlay address.
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// Requests through each node.
const REQUESTS_PER_NODE: usize = 3;
/// How long the published port may take to answer once the tasks run.
const FIRST_ANSWER: Duration = Duration::from_secs(20);

/// Runs the demo; with `once`, tears down right after the requests.
pub fn run(once: bool) -> Result<()> {
    if let Some(reason) = shoal_netns_tests::skip_reason() {
        bail!("the demo {reason}");
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
    println!(
        "\n==> forming a swarm: node-1 runs `shoal swarm init`, node-2 and node-3 join as managers"
    );
    world
        .form_swarm(&[2, 3], &[], &[])
        .map_err(anyhow::Error::msg)?;
    show(world.node(1), &["node", "ls"]);
    if interrupt::interrupted() {
        teardown(world);
        return Ok(());
    }

    println!("\n==> importing the demo image (busybox + whoami) on every node");
    for node in world.nodes() {
        node.import_demo_image();
    }
    let first = world.node(1);
    let create = [
        "service",
        "create",
        "--name",
        "whoami",
        "--replicas",
        "3",
        "--publish",
        "8080:80",
        "whoami:latest",
    ];
    println!("\n==> shoal {}", create.join(" "));
    // Live, so the progress display shows as Docker's does.
    match shoal_command(first).args(create).status() {
        Ok(status) if status.success() => {}
        Ok(status) => println!("service create failed ({status})"),
        Err(error) => println!("service create could not run: {error}"),
    }
    show(first, &["service", "ls"]);
    show(first, &["service", "ps", "whoami"]);
    if let Some(result) = first.docker(&["service", "ls"]) {
        println!(
            "\n==> DOCKER_HOST=unix://{} docker service ls",
            first.socket().display()
        );
        match result {
            Ok(text) => print!("{text}"),
            Err(error) => println!("failed: {error}"),
        }
    }
    if interrupt::interrupted() {
        teardown(world);
        return Ok(());
    }

    let client = world.attach_host("client", CLIENT);
    // A veth passes partially checksummed packets; the routing mesh's XDP
    // program rewrites them as it would a NIC's, fully checksummed ones.
    if let Err(error) = client
        .command("ethtool")
        .args(["-K", "eth0", "tx", "off"])
        .output()
    {
        println!("(could not turn the client's tx checksum offload off: {error})");
    }
    request_every_node(&world, &client);
    mesh_counters(world.node(1));

    if once {
        teardown(world);
        return Ok(());
    }
    explain(&world, &client);
    while !interrupt::interrupted() {
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(client);
    teardown(world);
    Ok(())
}

/// `shoal -H unix://<node's socket>`.
fn shoal_command(node: &Node) -> Command {
    let mut command = Command::new(bin_dir().join("shoal"));
    command
        .arg("-H")
        .arg(format!("unix://{}", node.socket().display()));
    command
}

/// Runs `shoal args…` on `node` and prints its output (or its error).
fn show(node: &Node, args: &[&str]) {
    println!("\n==> shoal {}", args.join(" "));
    match node.shoal_streams(args) {
        Ok((stdout, stderr)) => print!("{stdout}{stderr}"),
        Err(error) => println!("failed: {error}"),
    }
}

/// The routing mesh's part of `shoal status` on `node` (all of it when
/// there is no such part).
fn mesh_counters(node: &Node) {
    println!(
        "\n==> {}'s routing mesh counters (the end of `shoal status`)",
        node.hostname()
    );
    match node.shoal(&["status"]) {
        Ok(text) => {
            let start = text.find("\nSERVICE ").map_or(0, |i| i + 1);
            print!("{}", &text[start..]);
        }
        Err(error) => println!("failed: {error}"),
    }
}

fn teardown(world: World) {
    println!("\n==> stopping shoald on every node and removing the namespaces");
    drop(world);
    println!("==> done");
}

/// From the client namespace, `GET /` on port 8080 of every node, a few
/// times each: who answered, and which client address it saw.
fn request_every_node(world: &World, client: &Host) {
    println!(
        "\n==> from a client namespace on the same switch ({}, netns {}): GET http://<node>:{PUBLISHED}/ through every node",
        client.addr(),
        client.netns().name()
    );
    // The tasks run; their published port may take a moment more.
    let probe = SocketAddrV4::new(world.node(1).addr(), PUBLISHED);
    let deadline = Instant::now() + FIRST_ANSWER;
    while client.http_get(probe, Duration::from_secs(1)).is_err()
        && Instant::now() < deadline
        && !interrupt::interrupted()
    {
        std::thread::sleep(Duration::from_millis(250));
    }
    let (mut answered, mut preserved, mut total) = (0, 0, 0);
    let mut tasks = Vec::new();
    for node in world.nodes() {
        let target = SocketAddrV4::new(node.addr(), PUBLISHED);
        for _ in 0..REQUESTS_PER_NODE {
            total += 1;
            match client.http_get(target, Duration::from_secs(2)) {
                Ok(answer) => {
                    answered += 1;
                    let task = whoami_field(&answer, "Hostname").unwrap_or("?");
                    let task_ip = answer
                        .lines()
                        .filter_map(|l| l.strip_prefix("IP: "))
                        .find(|ip| !ip.starts_with("127.") && !ip.contains(':'))
                        .unwrap_or("?");
                    let saw = whoami_field(&answer, "RemoteAddr").unwrap_or("?");
                    let own = saw
                        .rsplit_once(':')
                        .is_some_and(|(ip, _)| ip == client.addr().to_string());
                    if own {
                        preserved += 1;
                    }
                    if !tasks.iter().any(|t: &String| t == task) {
                        tasks.push(task.to_owned());
                    }
                    println!(
                        "    {} {target} → task {task} ({task_ip}), which saw the client as {saw}{}",
                        node.hostname(),
                        if own {
                            ""
                        } else {
                            "  (not the client's address)"
                        }
                    );
                }
                Err(error) => {
                    println!(
                        "    {} {target} → FAILED: {error}  (is the routing mesh up on {}?)",
                        node.hostname(),
                        node.hostname()
                    );
                    break;
                }
            }
        }
    }
    println!(
        "    {answered} answers to {total} requests, from {} different tasks; {preserved} saw the client's own address {}",
        tasks.len(),
        client.addr()
    );
}

/// How to look around while the cluster runs.
fn explain(world: &World, client: &Host) {
    let shoal = bin_dir().join("shoal");
    let first = world.node(1);
    let node2 = world.node(2).addr();
    println!("\nThe cluster stays up until Ctrl-C. Explore it (as root, in another shell):");
    println!("  export DOCKER_HOST=unix://{}", first.socket().display());
    println!(
        "  alias shoal='{} -H unix://{}'",
        shoal.display(),
        first.socket().display()
    );
    println!("  shoal service ls; shoal service ps whoami; shoal service inspect whoami");
    println!("  docker service ls   # Docker's own client, with DOCKER_HOST above");
    println!("  shoal service scale whoami=6");
    println!(
        "  ip netns exec {} curl -s http://{node2}:{PUBLISHED}/   # the client namespace, through node-2",
        client.netns().name()
    );
    for node in world.nodes() {
        println!(
            "  {} -H unix://{} status   # {}'s data plane and counters",
            shoal.display(),
            node.socket().display(),
            node.hostname()
        );
    }
    println!(
        "  nsenter --net={} ip -d link show eth0   # node-1's attached XDP program",
        first.netns().path()
    );
    println!(
        "  runc --root {} list   # node-1's task containers",
        first.runc_root().display()
    );
    println!("  logs: {}", first.log_path().display());
}
