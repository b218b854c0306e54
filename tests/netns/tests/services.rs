//! End-to-end: services and tasks on real runc containers in the nodes'
//! namespaces — placement, scaling, replacement of killed containers and
//! lost nodes, global services, constraints and drain, restart policies,
//! health checks, agent restarts — driven by `shoal` and by the stock
//! docker CLI.

use std::{collections::BTreeMap, time::Duration};

use shoal_netns_tests::{World, eventually, require_privileges, step};

/// How long a service may take to converge (pulling nothing, 2 cores).
const CONVERGE: Duration = Duration::from_mins(1);

/// A 3-node swarm (node 1 manager, 2 and 3 workers) with the demo image
/// on every node; dispatcher heartbeat 1 s so lost nodes are seen fast.
fn three_node_swarm(tag: &str) -> World {
    let mut world = World::new(tag, 3);
    world.start_all();
    world
        .form_swarm(&[], &[2, 3], &["--dispatcher-heartbeat", "1s"])
        .expect("forming the swarm");
    for node in world.nodes() {
        node.import_demo_image();
    }
    world
}

/// Runs docker against node 1, panicking on failure.
fn docker(world: &World, args: &[&str]) -> String {
    world
        .node(1)
        .docker(args)
        .expect("a docker client is installed")
        .unwrap_or_else(|e| panic!("docker {} failed: {e}", args.join(" ")))
}

/// `docker service ps` rows of a service: (name, node, desired, current
/// state, error).
fn docker_ps(world: &World, service: &str) -> Vec<[String; 5]> {
    docker(
        world,
        &[
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.Name}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}",
            service,
        ],
    )
    .lines()
    .map(|line| {
        let mut fields = line.split('|').map(|f| f.trim().to_owned());
        std::array::from_fn(|_| fields.next().unwrap_or_default())
    })
    .collect()
}

/// Running containers per node, by hostname.
fn running_per_node(world: &World) -> BTreeMap<String, usize> {
    world
        .nodes()
        .iter()
        .map(|n| (n.hostname().to_owned(), n.running_containers().len()))
        .collect()
}

/// Waits until the nodes run `expected` containers in total, returns the
/// spread (sorted counts, largest first).
fn wait_for_containers(world: &World, expected: usize) -> Vec<usize> {
    eventually(&format!("{expected} running containers"), CONVERGE, || {
        let per_node = running_per_node(world);
        let total: usize = per_node.values().sum();
        if total == expected {
            let mut spread: Vec<usize> = per_node.into_values().collect();
            spread.sort_unstable_by(|a, b| b.cmp(a));
            Ok(spread)
        } else {
            Err(format!("{per_node:?}"))
        }
    })
}

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, step by step")]
fn replicas_spread_scale_and_replace_killed_containers_with_docker_cli() {
    require_privileges!();
    let world = three_node_swarm("svc-docker");
    if world.node(1).docker(&["version"]).is_none() {
        eprintln!("skipping: no docker client");
        return;
    }

    step("docker service create --replicas 5: 5 containers spread 2/2/1");
    docker(
        &world,
        &[
            "service",
            "create",
            "--detach",
            "--name",
            "web",
            "--replicas",
            "5",
            "whoami:latest",
        ],
    );
    assert_eq!(wait_for_containers(&world, 5), [2, 2, 1]);
    eventually("docker service ls to show 5/5", CONVERGE, || {
        let ls = docker(
            &world,
            &[
                "service",
                "ls",
                "--format",
                "{{.Name}} {{.Mode}} {{.Replicas}}",
            ],
        );
        if ls.trim() == "web replicated 5/5" {
            Ok(())
        } else {
            Err(ls)
        }
    });

    step("docker service scale web=9, then web=2: containers really come and go");
    docker(&world, &["service", "scale", "--detach", "web=9"]);
    assert_eq!(wait_for_containers(&world, 9), [3, 3, 3]);
    docker(&world, &["service", "scale", "--detach", "web=2"]);
    wait_for_containers(&world, 2);
    eventually("stopped containers to be deleted", CONVERGE, || {
        let all: usize = world.nodes().iter().map(|n| n.containers().len()).sum();
        if all == 2 {
            Ok(())
        } else {
            Err(format!("{all} containers exist"))
        }
    });

    step("runc kill a task's container: a replacement runs, the old task failed");
    let (node, victim) = world
        .nodes()
        .iter()
        .find_map(|n| n.running_containers().first().map(|id| (n, id.clone())))
        .expect("a running container");
    node.runc_kill(&victim, "KILL");
    eventually("a replacement task", CONVERGE, || {
        let rows = docker_ps(&world, "web");
        let running = rows
            .iter()
            .filter(|r| r[2] == "Running" && r[3].starts_with("Running"))
            .count();
        let failed = rows.iter().any(|r| {
            r[2] == "Shutdown" && r[3].starts_with("Failed") && r[4].contains("non-zero exit (137)")
        });
        if running == 2 && failed {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });
    assert!(
        !world
            .nodes()
            .iter()
            .any(|n| n.running_containers().contains(&victim)),
        "the killed container stays down"
    );
    wait_for_containers(&world, 2);

    step("--constraint node.hostname==node-3: both replicas on node-3");
    docker(
        &world,
        &[
            "service",
            "create",
            "--detach",
            "--name",
            "pinned",
            "--replicas",
            "2",
            "--constraint",
            "node.hostname==node-3",
            "whoami:latest",
        ],
    );
    eventually("pinned tasks running on node-3", CONVERGE, || {
        let rows = docker_ps(&world, "pinned");
        if rows.len() == 2
            && rows
                .iter()
                .all(|r| r[1] == "node-3" && r[3].starts_with("Running"))
        {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });

    step("docker service rm: every container goes");
    docker(&world, &["service", "rm", "web", "pinned"]);
    eventually("no containers left", CONVERGE, || {
        let all: usize = world.nodes().iter().map(|n| n.containers().len()).sum();
        if all == 0 {
            Ok(())
        } else {
            Err(format!("{all} containers"))
        }
    });
    let ls = docker(&world, &["service", "ls", "-q"]);
    assert!(ls.trim().is_empty(), "{ls}");
}
