//! End-to-end: the overlay's path MTU across nodes. Three nodes, a global
//! UDP echo service (`whoami --udp-echo 7`) and a global TCP sink service
//! (`whoami --sink 9`) on one overlay network. A task's `eth0` has the
//! underlay's MTU less the 50 bytes of VXLAN encapsulation; from a task on
//! one node, a datagram with DF set making an IP packet of exactly that MTU
//! reaches an echo task on another node and comes back, one byte more does
//! not leave (EMSGSIZE); a second of full-size TCP segments crosses nodes.

use std::{collections::BTreeSet, time::Duration};

use shoal_netns_tests::{World, eventually, require_privileges, step};

/// How long allocations, task states and map updates may take to show.
const CONVERGE: Duration = Duration::from_mins(1);
/// VXLAN's overhead over IPv4: outer IP, UDP, VXLAN and inner Ethernet.
const VXLAN_OVERHEAD: u32 = 50;

fn docker(world: &World, args: &[&str]) -> String {
    world
        .node(1)
        .docker(args)
        .expect("a docker client is installed")
        .unwrap_or_else(|e| panic!("docker {} failed: {e}", args.join(" ")))
}

/// A running task: its node (1-based), container ID and overlay address.
#[derive(Clone, Debug)]
struct Task {
    node: usize,
    id: String,
    addr: String,
}

/// The running tasks of `service`, one per node once there are three.
fn wait_for_tasks(world: &World, service: &str) -> Vec<Task> {
    eventually(
        &format!("a running {service} task per node"),
        CONVERGE,
        || {
            let ids: BTreeSet<String> = docker(
                world,
                &[
                    "service",
                    "ps",
                    "-q",
                    "--no-trunc",
                    "--filter",
                    "desired-state=running",
                    service,
                ],
            )
            .lines()
            .map(str::to_owned)
            .collect();
            let mut found = Vec::new();
            for (index, node) in world.nodes().iter().enumerate() {
                for id in node.running_containers() {
                    if !ids.contains(&id) {
                        continue;
                    }
                    let addrs = node
                        .runc_exec(&id, &["ip", "-o", "-4", "addr", "show", "eth0"])
                        .unwrap_or_default();
                    if let Some(addr) = addrs
                        .split_whitespace()
                        .nth(3)
                        .and_then(|a| a.split('/').next())
                    {
                        found.push(Task {
                            node: index + 1,
                            id,
                            addr: addr.to_owned(),
                        });
                    }
                }
            }
            let nodes: BTreeSet<usize> = found.iter().map(|t| t.node).collect();
            if found.len() == 3 && nodes.len() == 3 {
                found.sort_by_key(|t| t.node);
                Ok(found)
            } else {
                Err(format!("{found:?}"))
            }
        },
    )
}

/// The `mtu N` of an `ip -o link show` line.
fn mtu(link: &str) -> u32 {
    link.split_whitespace()
        .skip_while(|w| *w != "mtu")
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no MTU in {link:?}"))
}

#[test]
fn df_packets_at_the_task_mtu_cross_nodes_and_one_byte_more_does_not() {
    require_privileges!();
    let mut world = World::new("mtu", 3);
    world.start_all();
    world
        .form_swarm(&[], &[2, 3], &["--dispatcher-heartbeat", "1s"])
        .expect("forming the swarm");
    if world.node(1).docker(&["version"]).is_none() {
        eprintln!("skipping: no docker client");
        return;
    }
    for node in world.nodes() {
        node.import_demo_image();
    }
    docker(&world, &["network", "create", "-d", "overlay", "front"]);
    for (name, command) in [("echo", ["--udp-echo", "7"]), ("sink", ["--sink", "9"])] {
        docker(
            &world,
            &[
                "service",
                "create",
                "--detach",
                "--name",
                name,
                "--mode",
                "global",
                "--network",
                "front",
                "whoami:latest",
                "whoami",
                command[0],
                command[1],
            ],
        );
    }
    let echo = wait_for_tasks(&world, "echo");
    let sink = wait_for_tasks(&world, "sink");
    // The client is node 1's sink task, the far end node 2's echo task.
    let (client, server) = (&sink[0], &echo[1]);
    assert_ne!(client.node, server.node);

    step("a task's eth0 has the underlay's MTU less VXLAN's 50 bytes");
    let underlay = String::from_utf8_lossy(
        &world
            .node(client.node)
            .netns()
            .ip(&["-o", "link", "show", "eth0"])
            .stdout,
    )
    .into_owned();
    let link = world
        .node(client.node)
        .runc_exec(&client.id, &["ip", "-o", "link", "show", "eth0"])
        .expect("ip link in the task");
    let task_mtu = mtu(&link);
    assert_eq!(task_mtu, mtu(&underlay) - VXLAN_OVERHEAD, "{link}");
    eprintln!(
        "task MTU {task_mtu}; probing {} on node {} from {} on node {}",
        server.addr, server.node, client.addr, client.node
    );
    let target = format!("{}:7", server.addr);
    let probe = |size: u32| {
        world.node(client.node).runc_exec(
            &client.id,
            &[
                "whoami",
                "--udp-probe",
                &target,
                "--ip-size",
                &size.to_string(),
            ],
        )
    };

    step("a DF datagram making an IP packet of exactly the MTU crosses nodes and is echoed");
    let answer = eventually("an echo of a first small datagram", CONVERGE, || probe(100));
    assert!(answer.contains("echoed"), "{answer}");
    let answer = probe(task_mtu).unwrap_or_else(|e| panic!("{task_mtu} bytes with DF: {e}"));
    assert!(
        answer.contains(&format!("echoed: {task_mtu} bytes")),
        "{answer}"
    );

    step("one byte more with DF does not leave the task");
    let error = probe(task_mtu + 1).expect_err("an IP packet one byte over the MTU with DF");
    assert!(error.contains("does not fit the path MTU"), "{error}");

    step("a second of full-size TCP segments to a sink task on another node");
    let sink_target = format!("{}:9", sink[2].addr);
    let answer = world
        .node(echo[0].node)
        .runc_exec(
            &echo[0].id,
            &["whoami", "--blast", &sink_target, "--seconds", "1"],
        )
        .unwrap_or_else(|e| panic!("blasting {sink_target}: {e}"));
    let bytes: u64 = answer
        .split_whitespace()
        .find_map(|f| f.strip_prefix("bytes="))
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no byte count: {answer}"));
    eprintln!("TCP across nodes: {answer}");
    assert!(bytes >= 1 << 20, "at least a MiB in a second: {answer}");
}
