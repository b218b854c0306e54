//! End-to-end: swarm formation with real shoald processes, mutual TLS between
//! them, Raft among the managers; driven through the `shoal` CLI and the
//! stock docker CLI.

use std::time::Duration;

use shoal_netns_tests::{Node, World, eventually, require_privileges, step};

const WAIT: Duration = Duration::from_secs(30);
/// `swarm init` flags for tests that watch liveness: 1 s heartbeats.
const HEARTBEAT_1S: &[&str] = &["--dispatcher-heartbeat", "1s"];

/// `node ls` rows as (hostname, status, availability, manager status).
fn node_rows(node: &Node) -> Result<Vec<Row>, String> {
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

/// A `node ls` row: hostname, status, availability, manager status.
type Row = (String, String, String, String);

/// Waits until `node`'s `node ls` has a row for which `wanted` holds.
fn wait_for_row(node: &Node, what: &str, timeout: Duration, wanted: impl Fn(&Row) -> bool) {
    eventually(what, timeout, || {
        let rows = node_rows(node)?;
        rows.iter()
            .find(|r| wanted(r))
            .map(|_| ())
            .ok_or(format!("{rows:?}"))
    });
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

    step("node ls filters");
    let managers = world
        .node(1)
        .shoal_ok(&["node", "ls", "--filter", "role=manager"]);
    assert_eq!(
        managers.lines().count(),
        4,
        "header + 3 managers: {managers}"
    );
    let bad = world
        .node(1)
        .shoal(&["node", "ls", "--filter", "colour=red"])
        .expect_err("unknown filter");
    assert!(bad.contains("invalid filter 'colour'"), "{bad}");

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
        let workers = world
            .node(2)
            .docker(&["node", "ls", "-q", "-f", "role=worker"])
            .expect("docker")
            .expect("docker node ls -f");
        assert_eq!(workers.lines().count(), 2, "{workers}");
    } else {
        eprintln!("skipped the docker CLI part: no docker client installed");
    }
}

/// A `node ls` hostname list, sorted.
fn hostnames(node: &Node) -> Vec<String> {
    node_rows(node)
        .unwrap_or_else(|e| panic!("node ls: {e}"))
        .into_iter()
        .map(|r| r.0)
        .collect()
}

/// `text` with its last character changed (`0` ↔ `1`), which keeps a
/// base36 number in range.
fn bump_last(text: &str) -> String {
    let (head, last) = text.split_at(text.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

/// The token with another (valid) secret.
fn with_other_secret(token: &str) -> String {
    bump_last(token)
}

/// The token with another (valid) CA digest.
fn with_other_digest(token: &str) -> String {
    let parts: Vec<&str> = token.split('-').collect();
    format!(
        "{}-{}-{}-{}",
        parts[0],
        parts[1],
        bump_last(parts[2]),
        parts[3]
    )
}

/// Calls `Dispatcher.Heartbeat` on `manager` with a TLS client that trusts
/// the swarm's CA but presents no certificate. Run it inside a node's
/// namespace.
fn heartbeat_without_certificate(ca_pem: &str, manager: &str) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject as _;
    use shoal_api::grpc::{
        MANAGER_SERVER_NAME, channel,
        proto::{HeartbeatRequest, dispatcher_client::DispatcherClient},
    };
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| e.to_string())?;
    roots.add(ca).map_err(|e| e.to_string())?;
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let manager = manager.to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(async move {
            let channel = channel(
                &manager,
                std::sync::Arc::new(config),
                MANAGER_SERVER_NAME,
                Duration::from_secs(5),
            )
            .map_err(|e| e.to_string())?;
            DispatcherClient::new(channel)
                .heartbeat(HeartbeatRequest {
                    hostname: "intruder".into(),
                    addr: "198.18.0.99".into(),
                    ..HeartbeatRequest::default()
                })
                .await
                .map(|_| ())
                .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
        })
}

#[test]
fn bad_tokens_certificates_and_removed_nodes_are_refused() {
    require_privileges!();
    let mut world = World::new("refusals", 3);
    world.start_all();
    world.node(1).shoal_ok(&[
        "swarm",
        "init",
        "--advertise-addr",
        "198.18.0.1",
        "--dispatcher-heartbeat",
        "1s",
    ]);
    let worker_token = world
        .node(1)
        .shoal_ok(&["swarm", "join-token", "-q", "worker"])
        .trim()
        .to_owned();

    step("garbage, a wrong secret and another CA's digest are refused; nothing changes");
    let attempts = [
        ("not-a-token".to_owned(), "invalid join token"),
        (
            with_other_secret(&worker_token),
            "A valid join token is necessary to join this cluster",
        ),
        (with_other_digest(&worker_token), "CA"),
    ];
    for (token, expected) in &attempts {
        let error = world
            .node(2)
            .shoal(&["swarm", "join", "--token", token, "198.18.0.1:2377"])
            .expect_err("refused");
        assert!(error.contains(expected), "joining with {token}: {error}");
        assert!(
            world.node(2).shoal(&["node", "ls"]).is_err(),
            "node-2 stays outside the swarm"
        );
    }
    assert_eq!(hostnames(world.node(1)), ["node-1"]);

    step("a rotated-away token is refused, the new one works");
    let out = world
        .node(1)
        .shoal_ok(&["swarm", "join-token", "--rotate", "worker"]);
    assert!(
        out.contains("Successfully rotated worker join token."),
        "{out}"
    );
    let rotated = world
        .node(1)
        .shoal_ok(&["swarm", "join-token", "-q", "worker"])
        .trim()
        .to_owned();
    assert_ne!(rotated, worker_token);
    let error = world
        .node(2)
        .shoal(&["swarm", "join", "--token", &worker_token, "198.18.0.1:2377"])
        .expect_err("old token");
    assert!(error.contains("A valid join token is necessary"), "{error}");
    assert_eq!(hostnames(world.node(1)), ["node-1"]);
    join(&world, 2, &rotated);
    join(&world, 3, &rotated);
    wait_for_cluster(world.node(1), 3, 1);

    step("a gRPC client without a certificate is refused");
    let ca_pem =
        std::fs::read_to_string(world.node(1).data_dir().join("swarm/ca.crt")).expect("ca.crt");
    // From inside node-2's namespace: the world's addresses exist only there.
    let refused = world
        .node(2)
        .netns()
        .run(move || heartbeat_without_certificate(&ca_pem, "198.18.0.1:2377"))
        .expect_err("no certificate");
    assert!(refused.contains("Unauthenticated"), "{refused}");

    step("a removed node's certificate is refused at once");
    world.node_mut(3).kill9();
    wait_for_row(world.node(1), "node-3 to be down", WAIT, |r| {
        r.0 == "node-3" && r.1 == "Down"
    });
    world.node(1).shoal_ok(&["node", "rm", "node-3"]);
    assert_eq!(hostnames(world.node(1)), ["node-1", "node-2"]);
    world.node_mut(3).start();
    eventually(
        "node-3's refused heartbeats to show in its log",
        WAIT,
        || {
            let log = world.node(3).log();
            if log.contains("heartbeat failed") || log.contains("was removed from the swarm") {
                Ok(())
            } else {
                Err("no refusal yet".into())
            }
        },
    );
    assert_eq!(
        hostnames(world.node(1)),
        ["node-1", "node-2"],
        "the removed node does not come back"
    );
}

#[test]
fn a_killed_worker_goes_down_and_comes_back_ready() {
    require_privileges!();
    let mut world = World::new("down", 2);
    world.start_all();
    world.form_swarm(&[], &[2], HEARTBEAT_1S).expect("swarm");
    wait_for_cluster(world.node(1), 2, 1);

    step("kill -9 the worker: Down within a few heartbeat periods");
    world.node_mut(2).kill9();
    wait_for_row(
        world.node(1),
        "node-2 to be Down",
        Duration::from_secs(10),
        |r| r.0 == "node-2" && r.1 == "Down",
    );

    step("restart it: Ready again");
    world.node_mut(2).start();
    wait_for_cluster(world.node(1), 2, 1);
}

/// Label writes through the `shoal` CLI against whichever manager answers,
/// until `stop`; returns the acknowledged label keys.
fn write_labels(
    shoal: &std::path::Path,
    sockets: &[std::path::PathBuf],
    stop: &std::sync::atomic::AtomicBool,
) -> Vec<String> {
    let mut acked = Vec::new();
    let mut manager = 0;
    for i in 0..2000 {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let key = format!("w{i}");
        for attempt in 0..sockets.len() * 20 {
            let socket = &sockets[(manager + attempt) % sockets.len()];
            let ok = std::process::Command::new(shoal)
                .arg("-H")
                .arg(socket)
                .args([
                    "node",
                    "update",
                    "--label-add",
                    &format!("{key}=v"),
                    "node-3",
                ])
                .output()
                .is_ok_and(|o| o.status.success());
            if ok {
                manager = (manager + attempt) % sockets.len();
                acked.push(key);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    acked
}

#[test]
fn writes_continue_while_the_leader_is_killed() {
    require_privileges!();
    let mut world = three_managers("failover");

    step("a writer updates node labels through any manager throughout");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sockets: Vec<_> = (1..=3).map(|n| world.node(n).socket()).collect();
    let writer = {
        let stop = std::sync::Arc::clone(&stop);
        let shoal = shoal_netns_tests::world::bin_dir().join("shoal");
        std::thread::spawn(move || write_labels(&shoal, &sockets, &stop))
    };
    let labels = |world: &World, n: usize| -> Result<usize, String> {
        let out = world.node(n).shoal(&["node", "inspect", "node-3"])?;
        Ok(out.matches("\"w").count())
    };
    eventually("20 acknowledged writes before the kill", WAIT, || {
        let count = labels(&world, 2)?;
        if count >= 20 {
            Ok(())
        } else {
            Err(format!("{count} labels"))
        }
    });

    step("kill -9 the leader (node-1)");
    world.node_mut(1).kill9();
    let before = labels(&world, 2).unwrap_or(0);
    eventually("a new leader and 20 more writes", WAIT, || {
        let rows = node_rows(world.node(2))?;
        let leader = rows.iter().find(|r| r.3 == "Leader").map(|r| r.0.clone());
        let count = labels(&world, 2)?;
        match leader {
            Some(l) if l != "node-1" && count >= before + 20 => Ok(()),
            _ => Err(format!("leader {leader:?}, {count} labels")),
        }
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let acked = writer.join().expect("writer thread");
    eprintln!("{} writes acknowledged", acked.len());

    step("restart node-1: it catches up; every acknowledged write is on every manager");
    world.node_mut(1).start();
    for n in 1..=3 {
        eventually(
            &format!("node-{n} to hold every acknowledged write"),
            WAIT,
            || {
                let out = world.node(n).shoal(&["node", "inspect", "node-3"])?;
                let missing: Vec<&String> = acked
                    .iter()
                    .filter(|k| !out.contains(&format!("\"{k}\": \"v\"")))
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "missing {} e.g. {:?}",
                        missing.len(),
                        missing.first()
                    ))
                }
            },
        );
    }
    wait_for_cluster(world.node(1), 3, 3);
}

/// Runs the docker CLI on node `n`, or `None` (the caller skips) without one.
fn docker(world: &World, n: usize, args: &[&str]) -> Option<String> {
    world
        .node(n)
        .docker(args)
        .map(|r| r.unwrap_or_else(|e| panic!("docker {} on node-{n}: {e}", args.join(" "))))
}

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, narrated step by step")]
fn the_docker_cli_forms_and_manages_the_swarm() {
    require_privileges!();
    let mut world = World::new("dockercli", 3);
    world.start_all();
    step("docker swarm init");
    let Some(out) = docker(
        &world,
        1,
        &[
            "swarm",
            "init",
            "--advertise-addr",
            "198.18.0.1",
            "--dispatcher-heartbeat",
            "1s",
        ],
    ) else {
        eprintln!("skipped: no docker client installed");
        return;
    };
    assert!(out.contains("Swarm initialized: current node ("), "{out}");
    assert!(out.contains("docker swarm join --token SWMTKN-1-"), "{out}");
    let version =
        docker(&world, 1, &["version", "--format", "{{.Server.Version}}"]).expect("docker");
    assert_eq!(version.trim(), env!("CARGO_PKG_VERSION"));
    let state = docker(
        &world,
        1,
        &[
            "info",
            "--format",
            "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
        ],
    )
    .expect("docker");
    assert_eq!(state.trim(), "active true");
    assert!(out.contains("198.18.0.1:2377"), "{out}");

    step("docker swarm join-token, docker swarm join");
    let manager_token = docker(&world, 1, &["swarm", "join-token", "-q", "manager"])
        .expect("docker")
        .trim()
        .to_owned();
    let worker_token = docker(&world, 1, &["swarm", "join-token", "-q", "worker"])
        .expect("docker")
        .trim()
        .to_owned();
    let out = docker(
        &world,
        2,
        &[
            "swarm",
            "join",
            "--token",
            &manager_token,
            "198.18.0.1:2377",
        ],
    )
    .expect("docker");
    assert!(
        out.contains("This node joined a swarm as a manager."),
        "{out}"
    );
    let out = docker(
        &world,
        3,
        &["swarm", "join", "--token", &worker_token, "198.18.0.1:2377"],
    )
    .expect("docker");
    assert!(
        out.contains("This node joined a swarm as a worker."),
        "{out}"
    );
    wait_for_cluster(world.node(2), 3, 2);

    step("docker node ls / inspect / update");
    let listed = docker(
        &world,
        1,
        &[
            "node",
            "ls",
            "--format",
            "{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}",
        ],
    )
    .expect("docker");
    let mut rows: Vec<&str> = listed.lines().collect();
    rows.sort_unstable();
    assert_eq!(
        rows,
        [
            "node-1 Ready Active Leader",
            "node-2 Ready Active Reachable",
            "node-3 Ready Active "
        ],
        "{listed}"
    );
    docker(
        &world,
        2,
        &[
            "node",
            "update",
            "--availability",
            "drain",
            "--label-add",
            "zone=a",
            "node-3",
        ],
    )
    .expect("docker");
    let inspected = docker(
        &world,
        1,
        &[
            "node",
            "inspect",
            "--format",
            "{{.Spec.Availability}} {{index .Spec.Labels \"zone\"}} {{.Spec.Role}}",
            "node-3",
        ],
    )
    .expect("docker");
    assert_eq!(inspected.trim(), "drain a worker");
    let listed = world.node(1).shoal_ok(&["node", "ls"]);
    assert!(
        listed
            .lines()
            .any(|l| l.contains("node-3") && l.contains("Drain")),
        "{listed}"
    );

    step("docker swarm leave on the worker, docker node rm");
    let out = docker(&world, 3, &["swarm", "leave"]).expect("docker");
    assert!(out.contains("Node left the swarm."), "{out}");
    wait_for_row(
        world.node(1),
        "node-3 to be Down after leaving",
        WAIT,
        |r| r.0 == "node-3" && r.1 == "Down",
    );
    docker(&world, 1, &["node", "rm", "node-3"]).expect("docker");
    assert_eq!(hostnames(world.node(1)), ["node-1", "node-2"]);
}

#[test]
fn promote_and_demote_change_raft_membership() {
    require_privileges!();
    let mut world = World::new("roles", 3);
    world.start_all();
    world.form_swarm(&[], &[2, 3], HEARTBEAT_1S).expect("swarm");
    wait_for_cluster(world.node(1), 3, 1);

    step("demoting the only manager is refused");
    let refused = world
        .node(1)
        .shoal(&["node", "demote", "node-1"])
        .expect_err("last manager");
    assert!(refused.contains("last manager"), "{refused}");

    step("promote node-2: it becomes a Raft voter and answers control requests");
    let out = world.node(1).shoal_ok(&["node", "promote", "node-2"]);
    assert!(
        out.contains("Node node-2 promoted to a manager in the swarm."),
        "{out}"
    );
    wait_for_cluster(world.node(1), 3, 2);
    eventually("node-2 to serve node ls as a manager", WAIT, || {
        node_rows(world.node(2)).map(|_| ())
    });
    wait_for_cluster(world.node(2), 3, 2);

    step("drain shows in node ls");
    world
        .node(2)
        .shoal_ok(&["node", "update", "--availability", "drain", "node-3"]);
    let rows = node_rows(world.node(1)).expect("node ls");
    assert!(
        rows.iter().any(|r| r.0 == "node-3" && r.2 == "Drain"),
        "{rows:?}"
    );

    step("demote node-2: it stops voting and is a worker again");
    let out = world.node(1).shoal_ok(&["node", "demote", "node-2"]);
    assert!(
        out.contains("Manager node-2 demoted in the swarm."),
        "{out}"
    );
    wait_for_cluster(world.node(1), 3, 1);
    eventually("node-2 to answer as a worker", WAIT, || {
        match world.node(2).shoal(&["node", "ls"]) {
            Err(e) if e.contains("Worker nodes can't be used") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}

/// Three managers on nodes 1–3, heartbeat 1 s.
fn three_managers(tag: &str) -> World {
    let mut world = World::new(tag, 3);
    world.start_all();
    world.form_swarm(&[2, 3], &[], HEARTBEAT_1S).expect("swarm");
    wait_for_cluster(world.node(1), 3, 3);
    world
}

fn label(node: &Node, key: &str) -> Result<String, String> {
    node.shoal(&[
        "node",
        "update",
        "--label-add",
        &format!("{key}=v"),
        "node-1",
    ])
}

#[test]
fn a_partitioned_manager_cannot_commit_and_converges_after_healing() {
    require_privileges!();
    let world = three_managers("partition");

    step("partition node-3 (link down in its namespace)");
    world.node(3).netns().ip(&["link", "set", "eth0", "down"]);
    eventually("the majority to commit without node-3", WAIT, || {
        label(world.node(1), "during").map(|_| ())
    });
    assert!(
        label(world.node(3), "isolated").is_err(),
        "the isolated manager cannot commit"
    );
    let stale = world.node(3).shoal(&["node", "inspect", "node-1"]);
    assert!(
        stale.is_err(),
        "the isolated manager serves no stale reads (ReadIndex): {stale:?}"
    );

    step("heal: node-3 converges");
    world.node(3).netns().ip(&["link", "set", "eth0", "up"]);
    eventually(
        "node-3 to hold the write made during the partition",
        WAIT,
        || {
            let out = world.node(3).shoal(&["node", "inspect", "node-1"])?;
            if out.contains("\"during\": \"v\"") {
                Ok(())
            } else {
                Err("not yet".into())
            }
        },
    );
    let out = world.node(1).shoal_ok(&["node", "inspect", "node-1"]);
    assert!(
        !out.contains("isolated"),
        "the refused write never appears: {out}"
    );
    wait_for_cluster(world.node(3), 3, 3);
}

#[test]
fn managers_leave_as_in_docker() {
    require_privileges!();
    let mut world = three_managers("leave");

    step("with a manager down, leaving would lose quorum: refused without --force");
    world.node_mut(3).kill9();
    wait_for_row(world.node(1), "node-3 to be unreachable", WAIT, |r| {
        r.0 == "node-3" && r.3 == "Unreachable"
    });
    let refused = world
        .node(2)
        .shoal(&["swarm", "leave"])
        .expect_err("quorum");
    assert!(
        refused.contains("Without a Raft quorum your swarm will be inaccessible"),
        "{refused}"
    );
    world.node_mut(3).start();
    wait_for_cluster(world.node(1), 3, 3);

    step("with every manager up, node-3 leaves without --force and gives up its Raft seat");
    let out = world.node(3).shoal_ok(&["swarm", "leave"]);
    assert!(out.contains("Node left the swarm."), "{out}");
    wait_for_row(world.node(1), "node-3 to be a Down worker", WAIT, |r| {
        r.0 == "node-3" && r.1 == "Down" && r.3.is_empty()
    });
    label(world.node(2), "after-leave").expect("two managers still commit");

    step("the last manager needs --force");
    world.node(2).shoal_ok(&["swarm", "leave"]);
    let refused = world
        .node(1)
        .shoal(&["swarm", "leave"])
        .expect_err("last manager");
    assert!(
        refused.contains("Removing the last manager erases all current state of the swarm"),
        "{refused}"
    );
    world.node(1).shoal_ok(&["swarm", "leave", "--force"]);
    let outside = world.node(1).shoal(&["node", "ls"]).expect_err("left");
    assert!(outside.contains("docker swarm init"), "{outside}");
}

#[test]
fn a_killed_single_manager_recovers_its_state_from_disk() {
    require_privileges!();
    let mut world = World::new("recover", 1);
    world.start_all();
    world
        .node(1)
        .shoal_ok(&["swarm", "init", "--advertise-addr", "198.18.0.1"]);
    for i in 0..20 {
        label(world.node(1), &format!("k{i}")).expect("write");
    }
    step("kill -9 and restart the only manager");
    world.node_mut(1).kill9();
    world.node_mut(1).start();
    eventually("the manager to lead again with its 20 writes", WAIT, || {
        let out = world.node(1).shoal(&["node", "inspect", "node-1"])?;
        let count = (0..20)
            .filter(|i| out.contains(&format!("\"k{i}\": \"v\"")))
            .count();
        if count == 20 {
            Ok(())
        } else {
            Err(format!("{count} of 20"))
        }
    });
    wait_for_cluster(world.node(1), 1, 1);
}
