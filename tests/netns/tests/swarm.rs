//! End-to-end: swarm formation with real shoald processes, mutual TLS between
//! them, Raft among the managers; driven through the `shoal` CLI and the
//! stock docker CLI.

use std::time::Duration;

use shoal_netns_tests::{Node, World, eventually, require_privileges, step};

const WAIT: Duration = Duration::from_secs(30);

/// `node ls` rows as (hostname, status, availability, manager status).
fn node_rows(node: &Node) -> Result<Vec<(String, String, String, String)>, String> {
    let text = node.shoal(&["node", "ls"])?;
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty output")?;
    let col = |name: &str| {
        header
            .find(name)
            .ok_or(format!("no {name} column in {header:?}"))
    };
    let (host, status, avail, manager, engine) = (
        col("HOSTNAME")?,
        col("STATUS")?,
        col("AVAILABILITY")?,
        col("MANAGER STATUS")?,
        col("ENGINE VERSION")?,
    );
    Ok(lines
        .map(|l| {
            let cell = |from: usize, to: usize| {
                l.get(from..to.min(l.len())).unwrap_or("").trim().to_owned()
            };
            (
                cell(host, status),
                cell(status, avail),
                cell(avail, manager),
                cell(manager, engine),
            )
        })
        .collect())
}

/// Waits until `node` lists `expected` Ready nodes with exactly one Leader.
fn wait_for_cluster(node: &Node, expected: usize, managers: usize) {
    eventually(
        &format!(
            "{} to list {expected} ready nodes and one leader",
            node.hostname()
        ),
        WAIT,
        || {
            let rows = node_rows(node)?;
            let ready = rows.iter().filter(|r| r.1 == "Ready").count();
            let leaders = rows.iter().filter(|r| r.3 == "Leader").count();
            let reachable = rows.iter().filter(|r| r.3 == "Reachable").count();
            if rows.len() == expected
                && ready == expected
                && leaders == 1
                && reachable == managers - 1
            {
                Ok(())
            } else {
                Err(format!("{rows:?}"))
            }
        },
    );
}

fn join(world: &World, n: usize, token: &str) -> String {
    world
        .node(n)
        .shoal_ok(&["swarm", "join", "--token", token, "198.18.0.1:2377"])
}

#[test]
fn three_managers_and_two_workers_form_a_swarm() {
    require_privileges!();
    let mut world = World::new("swarm", 5);
    world.start_all();

    step("node-1: shoal swarm init");
    let out = world.node(1).shoal_ok(&[
        "swarm",
        "init",
        "--advertise-addr",
        "198.18.0.1",
        "--dispatcher-heartbeat",
        "1s",
    ]);
    assert!(out.contains("Swarm initialized: current node ("), "{out}");
    assert!(out.contains("shoal swarm join --token SWMTKN-1-"), "{out}");
    assert!(out.contains("198.18.0.1:2377"), "{out}");
    let manager_token = world
        .node(1)
        .shoal_ok(&["swarm", "join-token", "-q", "manager"])
        .trim()
        .to_owned();
    let worker_token = world
        .node(1)
        .shoal_ok(&["swarm", "join-token", "-q", "worker"])
        .trim()
        .to_owned();
    assert_ne!(manager_token, worker_token);
    assert_eq!(
        manager_token.len(),
        "SWMTKN-1-".len() + 50 + 1 + 25,
        "{manager_token}"
    );

    step("node-2 and node-3 join as managers, node-4 and node-5 as workers");
    for n in 2..=3 {
        assert!(join(&world, n, &manager_token).contains("joined a swarm as a manager"));
    }
    for n in 4..=5 {
        assert!(join(&world, n, &worker_token).contains("joined a swarm as a worker"));
    }

    step("every manager lists 5 ready nodes and exactly one leader");
    for n in 1..=3 {
        wait_for_cluster(world.node(n), 5, 3);
    }

    eprintln!("{}", world.node(3).shoal_ok(&["node", "ls"]));

    step("a worker answers control requests with Docker's error");
    let refused = world
        .node(4)
        .shoal(&["node", "ls"])
        .expect_err("workers cannot list nodes");
    assert!(
        refused.contains("This node is not a swarm manager. Worker nodes can't be used"),
        "{refused}"
    );

    step("the stock docker CLI sees the same cluster");
    if let Some(listed) = world.node(2).docker(&["node", "ls"]) {
        let listed = listed.unwrap_or_else(|e| panic!("docker node ls: {e}"));
        eprintln!("{listed}");
        assert_eq!(listed.lines().count(), 6, "{listed}");
        assert_eq!(listed.matches("Leader").count(), 1, "{listed}");
        assert_eq!(
            listed.matches(" * ").count(),
            1,
            "the local node is marked: {listed}"
        );
        for n in 1..=5 {
            assert!(listed.contains(&format!("node-{n}")), "{listed}");
        }
    } else {
        eprintln!("skipped the docker CLI part: no docker client installed");
    }
}
