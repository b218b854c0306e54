//! End-to-end: the overlay's path MTU across nodes. Three nodes, a global
//! UDP echo service (`whoami --udp-echo 7`) and a global TCP sink service
//! (`whoami --sink 9`) on one overlay network. A task's `eth0` has the
//! underlay's MTU less the 50 bytes of VXLAN encapsulation; from a task on
//! one node, a datagram with DF set making an IP packet of exactly that MTU
//! reaches an echo task on another node and comes back, one byte more does
//! not leave (EMSGSIZE); a second of full-size TCP segments crosses nodes.

use shoal_netns_tests::{
    CONVERGE, RunningTask, World, eventually, require_docker_client, require_privileges,
    service_create_args, step,
};

/// VXLAN's overhead over IPv4: outer IP, UDP, VXLAN and inner Ethernet.
const VXLAN_OVERHEAD: u32 = 50;

/// The tasks of the global `service`, one per node, by node.
fn one_per_node(world: &World, service: &str) -> Vec<RunningTask> {
    let mut tasks = world.wait_for_tasks(service, 3);
    tasks.sort_by_key(|t| t.node);
    let nodes: Vec<usize> = tasks.iter().map(|t| t.node).collect();
    assert_eq!(nodes, [1, 2, 3], "a {service} task per node: {tasks:?}");
    tasks
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
    require_docker_client!();
    let world = World::swarm("mtu", 3).form().expect("forming the swarm");
    world.docker_ok(&["network", "create", "-d", "overlay", "front"]);
    for (name, command) in [("echo", ["--udp-echo", "7"]), ("sink", ["--sink", "9"])] {
        world.docker_ok(&service_create_args(
            name,
            &["--mode", "global", "--network", "front"],
            &["whoami", command[0], command[1]],
        ));
    }
    let echo = one_per_node(&world, "echo");
    let sink = one_per_node(&world, "sink");
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
