//! End-to-end: east-west service load balancing on the overlay (DESIGN §5,
//! data path 4). Three nodes, a `web` service of three replicas and a
//! `client` service on the same overlay network; the client fetches the
//! service's VIP over HTTP with a new connection each time. Every backend
//! answers some, none fails, and the servers see the client's own overlay
//! address (no SNAT). After `web` is scaled down to one, no answer comes
//! from a removed task.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use shoal_netns_tests::{
    CONVERGE, Node, RunningTask, World, eventually, require_docker_client, require_privileges,
    service_create_args, step,
};

/// Requests sent through the VIP while all three backends run.
const REQUESTS: usize = 200;
/// Requests sent after the scale-down.
const REQUESTS_AFTER_SCALE: usize = 20;

/// One request from `client` to `vip`: the answering task's hostname,
/// after checking that it saw the client's own address.
fn fetch(world: &World, client: &RunningTask, vip: &str) -> Result<String, String> {
    let answer = world
        .node(client.node)
        .runc_exec(&client.id, &["whoami", "--get", vip])?;
    let hostname = answer
        .lines()
        .find_map(|l| l.strip_prefix("Hostname: "))
        .ok_or_else(|| format!("no Hostname line: {answer}"))?;
    if !answer.contains(&format!("RemoteAddr: {}:", client.addr)) {
        return Err(format!(
            "the server saw another address than the client's {}: {answer}",
            client.addr
        ));
    }
    Ok(hostname.to_owned())
}

#[test]
fn a_service_vip_balances_new_connections_over_running_tasks() {
    require_privileges!();
    require_docker_client!();
    let world = World::swarm("vip", 3).form().expect("forming the swarm");
    world.docker_ok(&["network", "create", "-d", "overlay", "front"]);
    for (name, replicas) in [("web", "3"), ("client", "1")] {
        world.docker_ok(&service_create_args(
            name,
            &["--replicas", replicas, "--network", "front"],
            &[],
        ));
    }
    let inspect: Value = serde_json::from_str(&world.docker_ok(&["service", "inspect", "web"]))
        .expect("service inspect is JSON");
    let vip = inspect[0]["Endpoint"]["VirtualIPs"][0]["Addr"]
        .as_str()
        .and_then(|a| a.split('/').next())
        .expect("web has a VIP")
        .to_owned();
    let web = world.wait_for_tasks("web", 3);
    let client = world.wait_for_tasks("client", 1).remove(0);
    let web_hosts: BTreeSet<String> = web.iter().map(|t| world.task_hostname(t)).collect();
    assert_eq!(web_hosts.len(), 3, "distinct hostnames: {web:?}");
    let web_nodes: BTreeSet<usize> = web.iter().map(|t| t.node).collect();
    eprintln!(
        "VIP {vip}; web on nodes {web_nodes:?}; client {} on node {}",
        client.addr, client.node
    );

    step("the VIP answers once the nodes have its Maglev table");
    eventually("a first answer through the VIP", CONVERGE, || {
        fetch(&world, &client, &vip)
    });

    step("200 new connections to the VIP: every backend answers some, none fails");
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..REQUESTS {
        let hostname = fetch(&world, &client, &vip)
            .unwrap_or_else(|e| panic!("request {i} through the VIP failed: {e}"));
        *answers.entry(hostname).or_default() += 1;
    }
    eprintln!("answers per backend: {answers:?}");
    let answered: BTreeSet<String> = answers.keys().cloned().collect();
    assert_eq!(
        answered, web_hosts,
        "every web task answered and nothing else did"
    );
    assert_eq!(answers.values().sum::<usize>(), REQUESTS);

    step("scaled to one task: after convergence no answer comes from a removed one");
    world.docker_ok(&["service", "scale", "--detach", "web=1"]);
    let survivor = world.wait_for_tasks("web", 1).remove(0);
    let survivor_host = world.task_hostname(&survivor);
    let removed: BTreeSet<&str> = web
        .iter()
        .map(|t| t.id.as_str())
        .filter(|id| *id != survivor.id)
        .collect();
    assert_eq!(removed.len(), 2, "the survivor is one of the three");
    eventually("the removed tasks have stopped", CONVERGE, || {
        let still: Vec<String> = world
            .nodes()
            .iter()
            .flat_map(Node::running_containers)
            .filter(|id| removed.contains(id.as_str()))
            .collect();
        if still.is_empty() {
            Ok(())
        } else {
            Err(format!("still running: {still:?}"))
        }
    });
    eventually("an answer from the survivor", CONVERGE, || {
        fetch(&world, &client, &vip).and_then(|h| {
            if h == survivor_host {
                Ok(())
            } else {
                Err(format!("answered by {h}"))
            }
        })
    });
    for i in 0..REQUESTS_AFTER_SCALE {
        let hostname = fetch(&world, &client, &vip)
            .unwrap_or_else(|e| panic!("request {i} after the scale-down failed: {e}"));
        assert_eq!(
            hostname, survivor_host,
            "request {i} answered by a removed task"
        );
    }
}
