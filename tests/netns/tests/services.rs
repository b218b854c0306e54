//! End-to-end: services and tasks on real runc containers in the nodes'
//! namespaces — placement, scaling, replacement of killed containers and
//! lost nodes, global services, constraints and drain, restart policies,
//! health checks, agent restarts — driven by `shoal` and by the stock
//! docker CLI.

use std::collections::BTreeMap;

use shoal_netns_tests::{
    CONVERGE, Node, World, eventually, registry::Registry, require_docker_client,
    require_privileges, service_create_args, step,
};

/// A 3-node swarm (node 1 manager, 2 and 3 workers) with the demo image
/// on every node; dispatcher heartbeat 1 s so lost nodes are seen fast.
fn three_node_swarm(tag: &str) -> World {
    World::swarm(tag, 3).form().expect("forming the swarm")
}

/// `docker service ps` rows of a service: (name, node, desired, current
/// state, error).
fn docker_ps(world: &World, service: &str) -> Vec<[String; 5]> {
    world
        .docker_ok(&[
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.Name}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}",
            service,
        ])
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

/// Which client drives a scenario: the project's `shoal` or the stock
/// docker CLI, against node 1.
#[derive(Clone, Copy, Debug)]
enum Cli {
    Shoal,
    Docker,
}

impl Cli {
    fn run(self, world: &World, args: &[&str]) -> String {
        match self {
            Self::Shoal => shoal(world, args),
            Self::Docker => world.docker_ok(args),
        }
    }

    fn ps(self, world: &World, service: &str) -> Vec<[String; 5]> {
        match self {
            Self::Shoal => task_rows(world, service),
            Self::Docker => docker_ps(world, service),
        }
    }

    /// `NAME MODE REPLICAS` of each service, from `service ls`.
    fn ls(self, world: &World) -> Vec<String> {
        match self {
            Self::Shoal => shoal(world, &["service", "ls"])
                .lines()
                .skip(1)
                .map(|l| {
                    let cells: Vec<&str> = l.split_whitespace().collect();
                    cells[1..4].join(" ")
                })
                .collect(),
            Self::Docker => world
                .docker_ok(&[
                    "service",
                    "ls",
                    "--format",
                    "{{.Name}} {{.Mode}} {{.Replicas}}",
                ])
                .lines()
                .map(str::to_owned)
                .collect(),
        }
    }
}

#[test]
fn replicas_spread_scale_and_replace_killed_containers_with_shoal() {
    require_privileges!();
    let world = three_node_swarm("svc-shoal");
    replicas_scenario(&world, Cli::Shoal);
}

#[test]
fn replicas_spread_scale_and_replace_killed_containers_with_docker_cli() {
    require_privileges!();
    require_docker_client!();
    let world = three_node_swarm("svc-docker");
    replicas_scenario(&world, Cli::Docker);
}

/// 5 replicas spread 2/2/1, logs, scale 9 and 2, a killed container
/// replaced, a constraint, removal — every step checked on the nodes' runc.
#[expect(clippy::too_many_lines, reason = "one scenario, step by step")]
fn replicas_scenario(world: &World, cli: Cli) {
    step("service create --replicas 5: 5 containers spread 2/2/1");
    cli.run(
        world,
        &service_create_args("web", &["--replicas", "5"], &[]),
    );
    assert_eq!(wait_for_containers(world, 5), [2, 2, 1]);
    eventually("service ls to show 5/5", CONVERGE, || {
        let ls = cli.ls(world);
        if ls == ["web replicated 5/5"] {
            Ok(())
        } else {
            Err(format!("{ls:?}"))
        }
    });

    step("service logs: each task's startup line, prefixed with task and node");
    eventually("5 startup lines", CONVERGE, || {
        let logs = match cli {
            // whoami writes to stderr: so does `docker service logs`.
            Cli::Docker => {
                world
                    .node(1)
                    .docker_streams(&["service", "logs", "--no-trunc", "web"])
                    .expect("docker")?
                    .1
            }
            Cli::Shoal => {
                world
                    .node(1)
                    .shoal_streams(&["service", "logs", "--no-trunc", "web"])?
                    .1
            }
        };
        let lines: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("| whoami: listening on port 80"))
            .collect();
        let prefixed = lines
            .iter()
            .all(|l| l.starts_with("web.") && l.contains("@node-"));
        if lines.len() == 5 && prefixed {
            Ok(())
        } else {
            Err(logs)
        }
    });

    step("service scale web=9, then web=2: containers really come and go");
    cli.run(world, &["service", "scale", "--detach", "web=9"]);
    assert_eq!(wait_for_containers(world, 9), [3, 3, 3]);
    cli.run(world, &["service", "scale", "--detach", "web=2"]);
    wait_for_containers(world, 2);
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
        let rows = cli.ps(world, "web");
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
    wait_for_containers(world, 2);

    step("--constraint node.hostname==node-3: both replicas on node-3");
    cli.run(
        world,
        &service_create_args(
            "pinned",
            &["--replicas", "2", "--constraint", "node.hostname==node-3"],
            &[],
        ),
    );
    eventually("pinned tasks running on node-3", CONVERGE, || {
        let rows = cli.ps(world, "pinned");
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
    assert!(world.node(3).running_containers().len() >= 2);

    step("service rm: every container goes");
    cli.run(world, &["service", "rm", "web", "pinned"]);
    eventually("no containers left", CONVERGE, || {
        let all: usize = world.nodes().iter().map(|n| n.containers().len()).sum();
        if all == 0 {
            Ok(())
        } else {
            Err(format!("{all} containers"))
        }
    });
    assert!(cli.ls(world).is_empty());
}

/// Runs `shoal` against node 1, panicking on failure.
fn shoal(world: &World, args: &[&str]) -> String {
    world.node(1).shoal_ok(args)
}

/// `shoal service ps --no-trunc` rows of a service, split at the header's
/// column starts: (name, node, desired state, current state, error).
fn task_rows(world: &World, service: &str) -> Vec<[String; 5]> {
    task_rows_on(world.node(1), service).unwrap_or_else(|e| panic!("service ps {service}: {e}"))
}

/// Waits until the [`task_rows`] of `service` satisfy `done`.
fn wait_for_rows(world: &World, service: &str, what: &str, done: impl Fn(&[[String; 5]]) -> bool) {
    eventually(what, CONVERGE, || {
        let rows = task_rows(world, service);
        if done(&rows) {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });
}

/// [`task_rows`] through `node`; the CLI's error when it fails.
fn task_rows_on(node: &Node, service: &str) -> Result<Vec<[String; 5]>, String> {
    let out = node.shoal(&["service", "ps", "--no-trunc", service])?;
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    let starts: Vec<usize> = [
        "NAME",
        "IMAGE",
        "NODE",
        "DESIRED STATE",
        "CURRENT STATE",
        "ERROR",
        "PORTS",
    ]
    .iter()
    .map(|column| {
        header
            .find(column)
            .unwrap_or_else(|| panic!("no {column} in {header:?}"))
    })
    .collect();
    let cell = |line: &str, from: usize, to: usize| -> String {
        line.get(from..to.min(line.len()))
            .unwrap_or_default()
            .trim()
            .trim_start_matches("\\_")
            .trim()
            .trim_matches('"')
            .to_owned()
    };
    Ok(lines
        .map(|line| {
            [
                cell(line, starts[0], starts[1]),
                cell(line, starts[2], starts[3]),
                cell(line, starts[3], starts[4]),
                cell(line, starts[4], starts[5]),
                cell(line, starts[5], starts[6]),
            ]
        })
        .collect())
}

#[test]
fn node_loss_reschedules_and_global_services_follow_nodes() {
    require_privileges!();
    let mut world = three_node_swarm("svc-nodes");

    step("6 replicas and a global service on 3 nodes");
    shoal(
        &world,
        &service_create_args("web", &["--replicas", "6"], &[]),
    );
    shoal(
        &world,
        &service_create_args("agent", &["--mode", "global"], &[]),
    );
    assert_eq!(wait_for_containers(&world, 9), [3, 3, 3]);

    step("kill -9 node-3's shoald and its containers: its tasks run elsewhere");
    let node3 = world.node_mut(3);
    node3.kill9();
    node3.remove_containers();
    wait_for_rows(
        &world,
        "web",
        "web back to 6 running on nodes 1 and 2",
        |rows| {
            let running: Vec<_> = rows
                .iter()
                .filter(|r| r[2] == "Running" && r[3].starts_with("Running"))
                .collect();
            running.len() == 6 && running.iter().all(|r| r[1] != "node-3")
        },
    );
    let spread = running_per_node(&world);
    assert_eq!(spread["node-1"] + spread["node-2"], 8, "{spread:?}");
    let agent_rows = task_rows(&world, "agent");
    assert_eq!(
        agent_rows.iter().filter(|r| r[2] == "Running").count(),
        2,
        "the global service keeps one task per Ready node: {agent_rows:?}"
    );

    step("a node joining gets the global service's task");
    let node3 = world.node_mut(3);
    node3.start();
    wait_for_rows(&world, "agent", "agent running on node-3 again", |rows| {
        rows.iter()
            .any(|r| r[1] == "node-3" && r[2] == "Running" && r[3].starts_with("Running"))
    });
    assert_eq!(
        world.node(3).running_containers().len(),
        1,
        "node-3 runs only the global task: web's replicas stay where they went"
    );
}

#[test]
fn drain_restart_none_and_health_checks() {
    require_privileges!();
    let world = three_node_swarm("svc-policies");

    step("drain node-2: its tasks move, it gets no new ones");
    shoal(
        &world,
        &service_create_args("web", &["--replicas", "3"], &[]),
    );
    wait_for_containers(&world, 3);
    shoal(
        &world,
        &["node", "update", "--availability", "drain", "node-2"],
    );
    eventually("no task on node-2", CONVERGE, || {
        let per_node = running_per_node(&world);
        if per_node["node-2"] == 0 && per_node.values().sum::<usize>() == 3 {
            Ok(())
        } else {
            Err(format!("{per_node:?}"))
        }
    });

    step("--restart-condition none: a crashed task stays down");
    shoal(
        &world,
        &service_create_args(
            "once",
            &["--restart-condition", "none"],
            &["sh", "-c", "sleep 1; exit 3"],
        ),
    );
    wait_for_rows(&world, "once", "the task failed with exit 3", |rows| {
        rows.len() == 1 && rows[0][3].starts_with("Failed") && rows[0][4].contains("(3)")
    });
    // A canary with the same command under `any` restarts meanwhile: once
    // it has been replaced twice, `once` had every chance to restart.
    shoal(
        &world,
        &service_create_args(
            "canary",
            &["--restart-delay", "500ms", "--restart-condition", "any"],
            &["sh", "-c", "sleep 1; exit 3"],
        ),
    );
    wait_for_rows(&world, "canary", "the canary restarted twice", |rows| {
        let failed = rows.iter().filter(|r| r[3].starts_with("Failed")).count();
        failed >= 3
    });
    let rows = task_rows(&world, "once");
    assert_eq!(rows.len(), 1, "no replacement: {rows:?}");
    assert!(rows[0][3].starts_with("Failed"), "{rows:?}");
    let ls = shoal(&world, &["service", "ls"]);
    assert!(
        ls.lines()
            .any(|l| l.contains("once") && l.contains(" 0/1 ")),
        "{ls}"
    );

    step("a failing health check keeps tasks out of running");
    shoal(
        &world,
        &service_create_args(
            "sick",
            &[
                "--health-cmd",
                "exit 1",
                "--health-interval",
                "200ms",
                "--health-retries",
                "2",
                "--restart-delay",
                "1s",
            ],
            &[],
        ),
    );
    wait_for_rows(&world, "sick", "an unhealthy task replaced", |rows| {
        let unhealthy = rows.iter().filter(|r| r[4].contains("unhealthy")).count();
        unhealthy >= 1
    });
    let rows = task_rows(&world, "sick");
    assert!(
        rows.iter().all(|r| !r[3].starts_with("Running")),
        "no unhealthy task ever counts as running: {rows:?}"
    );
    let ls = shoal(&world, &["service", "ls"]);
    assert!(
        ls.lines()
            .any(|l| l.contains("sick") && l.contains(" 0/1 ")),
        "{ls}"
    );

    step("a passing health check: running");
    shoal(
        &world,
        &service_create_args(
            "healthy",
            &["--health-cmd", "true", "--health-interval", "200ms"],
            &[],
        ),
    );
    wait_for_rows(&world, "healthy", "the healthy task running", |rows| {
        rows.len() == 1 && rows[0][3].starts_with("Running")
    });
}

#[test]
fn a_restarted_agent_adopts_its_containers() {
    require_privileges!();
    let mut world = three_node_swarm("svc-adopt");
    shoal(
        &world,
        &service_create_args("web", &["--replicas", "6"], &[]),
    );
    wait_for_containers(&world, 6);
    let before: Vec<Vec<String>> = world
        .nodes()
        .iter()
        .map(|n| {
            let mut ids = n.running_containers();
            ids.sort();
            ids
        })
        .collect();

    step("kill -9 shoald on node-2 and restart it: the same containers, no duplicates");
    let node2 = world.node_mut(2);
    node2.kill9();
    node2.start();
    // The agent reports again and the managers still see 6 running tasks.
    wait_for_rows(&world, "web", "6 running tasks after the restart", |rows| {
        let running = rows
            .iter()
            .filter(|r| r[2] == "Running" && r[3].starts_with("Running"))
            .count();
        running == 6 && rows.len() == 6
    });
    let after: Vec<Vec<String>> = world
        .nodes()
        .iter()
        .map(|n| {
            let mut ids = n.running_containers();
            ids.sort();
            ids
        })
        .collect();
    assert_eq!(before, after, "the same containers run, none added or lost");

    step("a container that exited while the agent was down is reported, and replaced");
    let node2 = world.node_mut(2);
    node2.kill9();
    let victim = world.node(2).running_containers()[0].clone();
    world.node(2).runc_kill(&victim, "KILL");
    world.node_mut(2).start();
    wait_for_rows(
        &world,
        "web",
        "the victim failed and was replaced",
        |rows| {
            let running = rows
                .iter()
                .filter(|r| r[2] == "Running" && r[3].starts_with("Running"))
                .count();
            let failed = rows
                .iter()
                .any(|r| r[3].starts_with("Failed") && r[4].contains("137"));
            running == 6 && failed
        },
    );
    assert_eq!(wait_for_containers(&world, 6).iter().sum::<usize>(), 6);
}

#[test]
fn tasks_pull_their_image_from_a_registry() {
    require_privileges!();
    let mut world = World::new("svc-pull", 3);
    let registry_addr = format!("{}:5000", world.node(1).addr());
    for n in 1..=3 {
        world
            .node_mut(n)
            .start_with(&["--insecure-registry", &registry_addr]);
    }
    world
        .form_swarm(&[], &[2, 3], &["--dispatcher-heartbeat", "1s"])
        .expect("forming the swarm");
    let first = world.node(1);
    first.import_demo_image();
    // Declared after the world: stopped before its namespace goes.
    let registry = Registry::start(first, &first.data_dir().join("../registry"));
    registry.push(
        &first.data_dir().join("images"),
        "whoami:latest",
        "whoami",
        "latest",
    );

    step("a service of a registry image: nodes 2 and 3 pull it, 3 tasks run");
    let reference = format!("{registry_addr}/whoami:latest");
    shoal(
        &world,
        &[
            "service",
            "create",
            "--detach",
            "--name",
            "pulled",
            "--replicas",
            "3",
            &reference,
        ],
    );
    assert_eq!(wait_for_containers(&world, 3), [1, 1, 1]);
    for n in [2, 3] {
        let images = world.node(n).shoal_ok(&["image", "ls"]);
        assert!(
            images.contains(&format!("{registry_addr}/whoami ")),
            "{images}"
        );
    }

    step("a tag the registry lacks: the tasks are rejected with the registry's error");
    let missing = format!("{registry_addr}/whoami:nope");
    shoal(
        &world,
        &[
            "service", "create", "--detach", "--name", "missing", &missing,
        ],
    );
    wait_for_rows(&world, "missing", "a rejected task", |rows| {
        rows.iter()
            .any(|r| r[3].starts_with("Rejected") && r[4].contains("not found"))
    });
    drop(registry);
}

#[test]
fn invalid_services_are_refused_and_nothing_is_created() {
    require_privileges!();
    let world = three_node_swarm("svc-invalid");
    shoal(&world, &service_create_args("web", &[], &[]));
    for (args, expected) in [
        (vec!["--replicas", "-1"], "replicas"),
        (vec!["--constraint", "node.colour==red"], "unknown key"),
        (vec!["--constraint", "node.role=manager"], "==, !="),
        (vec!["--restart-condition", "sometimes"], "sometimes"),
        (vec!["--name", "web"], "name conflicts"),
        (vec!["--name", "bad_name!"], "DNS"),
    ] {
        let mut create = vec!["service", "create", "--detach"];
        if !args.contains(&"--name") {
            create.extend(["--name", "other"]);
        }
        create.extend(args.iter().copied());
        create.push("whoami:latest");
        let error = world
            .node(1)
            .shoal(&create)
            .expect_err(&format!("{args:?} must be refused"));
        assert!(error.contains(expected), "{args:?}: {error}");
    }
    let error = world
        .node(1)
        .shoal(&[
            "service",
            "create",
            "--detach",
            "--name",
            "other",
            "nosuchimage:1",
        ])
        .expect_err("an unknown image without a registry");
    assert!(error.contains("image nosuchimage:1 not found"), "{error}");
    let ls = shoal(&world, &["service", "ls"]);
    let names: Vec<&str> = ls
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(names, ["web"], "{ls}");
    let all: usize = world.nodes().iter().map(|n| n.containers().len()).sum();
    assert!(all <= 1, "only web's task may run: {all} containers");
}

#[test]
fn a_new_leader_takes_over_the_services() {
    require_privileges!();
    let mut world = World::swarm("svc-leader", 3)
        .managers()
        .form()
        .expect("forming the swarm");
    shoal(
        &world,
        &service_create_args("web", &["--replicas", "6"], &[]),
    );
    assert_eq!(wait_for_containers(&world, 6), [2, 2, 2]);

    step("kill -9 the leader (node-1) and its containers: node-2 and node-3 run all 6");
    let leader = world.node_mut(1);
    leader.kill9();
    leader.remove_containers();
    let follower = world.node(2);
    eventually("6 tasks running on node-2 and node-3", CONVERGE, || {
        let rows = task_rows_on(follower, "web")?;
        let running: Vec<_> = rows
            .iter()
            .filter(|r| r[2] == "Running" && r[3].starts_with("Running"))
            .collect();
        if running.len() == 6 && running.iter().all(|r| r[1] != "node-1") {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });
    let per_node = running_per_node(&world);
    assert_eq!(per_node["node-2"] + per_node["node-3"], 6, "{per_node:?}");

    step("scale through a follower of the new leader");
    follower.shoal_ok(&["service", "scale", "--detach", "web=8"]);
    eventually("8 containers on node-2 and node-3", CONVERGE, || {
        let per_node = running_per_node(&world);
        if per_node["node-2"] + per_node["node-3"] == 8 {
            Ok(())
        } else {
            Err(format!("{per_node:?}"))
        }
    });
}
