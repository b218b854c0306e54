//! `cargo xtask bench`: measurements, not tests. Each prints its figures.
//!
//! Control plane, in a 3-manager world in namespaces:
//! - leader failover: `kill -9` of the leader's shoald until the first write
//!   succeeds through a surviving manager, median of 10 runs;
//! - committed writes per second through the API (node label updates, each
//!   a Raft entry fsync'd on a majority), one writer and three in parallel.
//!
//! Services (`bench_services`): time to 30 running replicas, and time for
//! a lost node's tasks to run elsewhere.
//!
//! The data plane, each part also alone (`cargo xtask bench vip|overlay|
//! mesh`), against nginx backends, with medians of `--runs` runs and the
//! machine's CPU per operation:
//! - service VIP (`bench_vip`): new connections per second from a task,
//!   against a backend directly and iptables DNAT;
//! - overlay (`bench_overlay`): one TCP stream and keep-alive requests
//!   across nodes, against a bare flow-based VXLAN device pair;
//! - routing mesh (`bench_mesh`): HTTP requests per second, latency and
//!   CPU per request through a published port, against direct, iptables,
//!   nftables and haproxy.
//!
//! Docker swarm cannot run here (no engine), so there is no side-by-side
//! figure for the control plane.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use shoal_api::{Client, docker};
use shoal_netns_tests::World;

use crate::{
    bench_shared::{Plan, median},
    interrupt,
};

const FAILOVER_RUNS: usize = 10;
const SEQUENTIAL_WRITES: usize = 300;
const PARALLEL_WRITES_EACH: usize = 150;

/// Runs every benchmark.
pub fn run(plan: &Plan) -> Result<()> {
    if let Some(reason) = shoal_netns_tests::skip_reason() {
        bail!("the benchmarks {reason}");
    }
    interrupt::install()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut world = World::new("bench", 3);
    world.start_all();
    let sockets: Vec<PathBuf> = world
        .nodes()
        .iter()
        .map(shoal_netns_tests::Node::socket)
        .collect();
    world
        .form_swarm(&[2, 3], &[], &["--dispatcher-heartbeat", "1s"])
        .map_err(anyhow::Error::msg)?;
    runtime.block_on(wait_for_three_voters(&sockets))?;

    println!("==> committed writes through the API (fsync on; 3 managers)");
    let (rate, p50) = runtime.block_on(sequential_writes(&sockets[0], SEQUENTIAL_WRITES))?;
    println!(
        "    1 writer:  {rate:.0} writes/s, median latency {:.1} ms ({SEQUENTIAL_WRITES} writes)",
        p50.as_secs_f64() * 1e3
    );
    let rate = runtime.block_on(parallel_writes(&sockets, PARALLEL_WRITES_EACH))?;
    println!(
        "    3 writers: {rate:.0} writes/s ({} writes, one node object each)",
        3 * PARALLEL_WRITES_EACH
    );

    println!(
        "==> leader failover: kill -9 the leader, time to the first successful write ({FAILOVER_RUNS} runs)"
    );
    let mut times = Vec::new();
    for run in 1..=FAILOVER_RUNS {
        if interrupt::interrupted() {
            bail!("interrupted");
        }
        let leader = runtime.block_on(leader_index(&sockets))?;
        world.node_mut(leader + 1).kill9();
        let killed_at = Instant::now();
        let survivors: Vec<PathBuf> = sockets
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != leader)
            .map(|(_, s)| s.clone())
            .collect();
        runtime.block_on(first_write(&survivors, run))?;
        let elapsed = killed_at.elapsed();
        println!(
            "    run {run:2}: node-{} killed, write accepted after {:.0} ms",
            leader + 1,
            elapsed.as_secs_f64() * 1e3
        );
        times.push(elapsed);
        world.node_mut(leader + 1).start();
        // A known flake (see the session notes): a restarted manager
        // sometimes does not catch up. Report it and go on to the other
        // benchmarks rather than lose them.
        if let Err(error) = runtime.block_on(wait_for_three_voters(&sockets)) {
            println!(
                "    run {run:2}: the managers did not settle, failover runs stop here: {error:#}"
            );
            break;
        }
    }
    times.sort();
    drop(world);
    println!(
        "    failover: median {:.0} ms, min {:.0} ms, max {:.0} ms over {} runs (heartbeat 100 ms, election timeout 300–600 ms)",
        median(&times).unwrap_or_default().as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        times.len()
    );
    crate::bench_services::run(&runtime)?;
    crate::bench_vip::run(plan)?;
    crate::bench_overlay::run(plan)?;
    crate::bench_mesh::run(plan)
}

/// One label update on node `target` (by hostname) through `client`.
async fn write(client: &Client, target: &str, key: &str) -> Result<()> {
    let node: docker::Node = client.get_json(&format!("/nodes/{target}")).await?;
    let mut spec = node.spec;
    spec.labels.insert(key.to_owned(), "v".to_owned());
    client
        .post(
            &format!("/nodes/{}/update?version={}", node.id, node.version.index),
            &spec,
        )
        .await?;
    Ok(())
}

async fn sequential_writes(socket: &PathBuf, count: usize) -> Result<(f64, Duration)> {
    let client = Client::new(socket);
    let mut latencies = Vec::with_capacity(count);
    let start = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        write(&client, "node-1", &format!("seq{i}")).await?;
        latencies.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    latencies.sort();
    #[expect(clippy::cast_precision_loss, reason = "a few hundred writes")]
    let rate = count as f64 / elapsed.as_secs_f64();
    Ok((rate, latencies[count / 2]))
}

async fn parallel_writes(sockets: &[PathBuf], each: usize) -> Result<f64> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, socket) in sockets.iter().enumerate() {
        let client = Client::new(socket);
        let target = format!("node-{}", i + 1);
        tasks.push(tokio::spawn(async move {
            for k in 0..each {
                write(&client, &target, &format!("par{k}")).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("writer task")??;
    }
    #[expect(clippy::cast_precision_loss, reason = "a few hundred writes")]
    let rate = (each * sockets.len()) as f64 / start.elapsed().as_secs_f64();
    Ok(rate)
}

/// Index (0-based) of the node whose manager leads, once every manager
/// agrees on it (a restarted manager may still believe in an old leader).
async fn leader_index(sockets: &[PathBuf]) -> Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut seen = Vec::new();
        for socket in sockets {
            let leader = Client::new(socket)
                .get_json::<Vec<docker::Node>>("/nodes")
                .await
                .ok()
                .and_then(|nodes| {
                    nodes
                        .iter()
                        .find(|n| n.manager_status.as_ref().is_some_and(|m| m.leader))
                        .map(|n| n.description.hostname.clone())
                });
            seen.push(leader);
        }
        if let Some(Some(first)) = seen.first()
            && seen.iter().all(|l| l.as_ref() == Some(first))
        {
            let index: usize = first.trim_start_matches("node-").parse()?;
            return Ok(index - 1);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the managers do not agree on a leader")
}

/// Retries a write through the survivors until one is accepted.
async fn first_write(survivors: &[PathBuf], run: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempt = 0usize;
    while Instant::now() < deadline {
        let client = Client::new(&survivors[attempt % survivors.len()]);
        if write(&client, "node-2", &format!("failover{run}"))
            .await
            .is_ok()
        {
            return Ok(());
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("no write accepted within 30 s of killing the leader")
}

/// Waits until every manager answers and sees 3 reachable managers.
async fn wait_for_three_voters(sockets: &[PathBuf]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last_seen = Vec::new();
    while Instant::now() < deadline {
        let mut healthy = 0;
        last_seen.clear();
        for socket in sockets {
            let answer = Client::new(socket)
                .get_json::<Vec<docker::Node>>("/nodes")
                .await;
            last_seen.push(match &answer {
                Ok(nodes) => nodes
                    .iter()
                    .map(|n| {
                        let status = n.manager_status.as_ref().map_or("-", |m| {
                            if m.leader {
                                "leader"
                            } else {
                                m.reachability.as_str()
                            }
                        });
                        format!("{} {} {status}", n.description.hostname, n.status.state)
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                Err(error) => error.to_string(),
            });
            if let Ok(nodes) = answer {
                let reachable = nodes
                    .iter()
                    .filter(|n| {
                        n.manager_status
                            .as_ref()
                            .is_some_and(|m| m.leader || m.reachability == "reachable")
                    })
                    .count();
                let leaders = nodes
                    .iter()
                    .filter(|n| n.manager_status.as_ref().is_some_and(|m| m.leader))
                    .count();
                if reachable == 3 && leaders == 1 {
                    healthy += 1;
                }
            }
        }
        if healthy == sockets.len() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "the managers did not settle with 3 reachable voters; last seen per manager: {last_seen:#?}"
    )
}
