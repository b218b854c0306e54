//! `cargo xtask bench`, services part: in a 3-node world (1 manager, 2
//! workers, dispatcher heartbeat 1 s, the demo image on every node), the
//! time from `service create --replicas 30` to 30 tasks running (real runc
//! containers), and from `kill -9` of a worker's shoald (and its
//! containers) to its tasks running on the other nodes. Medians of a few
//! runs; each run starts from a fresh service.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};
use shoal_api::{Client, client::query_value};
use shoal_netns_tests::World;

use crate::{bench_shared::median, interrupt};

const REPLICAS: usize = 30;
const RUNS: usize = 3;
const TIMEOUT: Duration = Duration::from_mins(3);

/// Runs the services benchmarks and prints their figures.
pub fn run(runtime: &tokio::runtime::Runtime) -> Result<()> {
    let mut world = World::swarm("bench-svc", 3)
        .form()
        .map_err(anyhow::Error::msg)?;
    let client = Client::new(world.node(1).socket());

    println!("==> service create --replicas {REPLICAS} until all run ({RUNS} runs)");
    let mut creates = Vec::new();
    for run in 1..=RUNS {
        let start = Instant::now();
        let id = create(runtime, &client, &format!("bench{run}"))?;
        runtime.block_on(wait_running(&client, &id, None))?;
        let elapsed = start.elapsed();
        println!("    run {run}: {:.2} s", elapsed.as_secs_f64());
        creates.push(elapsed);
        runtime.block_on(client.delete(&format!("/services/{id}")))?;
        runtime.block_on(wait_no_containers(&world))?;
    }
    println!(
        "    median {:.2} s",
        median(&creates).unwrap_or_default().as_secs_f64()
    );

    println!(
        "==> node loss: kill -9 a worker's shoald and containers, until its tasks run elsewhere"
    );
    let id = create(runtime, &client, "survivor")?;
    runtime.block_on(wait_running(&client, &id, None))?;
    let lost_id = world.node(3).node_id().unwrap_or_default();
    let on_lost = runtime.block_on(tasks_on(&client, &id, &lost_id))?;
    let node3 = world.node_mut(3);
    node3.kill9();
    node3.remove_containers();
    let start = Instant::now();
    runtime.block_on(wait_running(&client, &id, Some(&lost_id)))?;
    println!(
        "    {on_lost} tasks of node-3 running again after {:.2} s (heartbeat 1 s: Down after 3 missed)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn create(runtime: &tokio::runtime::Runtime, client: &Client, name: &str) -> Result<String> {
    let spec = json!({
        "Name": name,
        "TaskTemplate": {"ContainerSpec": {"Image": "whoami:latest"}},
        "Mode": {"Replicated": {"Replicas": REPLICAS}},
    });
    let created: Value = runtime.block_on(client.post_json("/services/create", &spec))?;
    Ok(created["ID"].as_str().unwrap_or_default().to_owned())
}

async fn tasks_on(client: &Client, service: &str, node: &str) -> Result<usize> {
    let filters = json!({"service": {service: true}, "node": {node: true}, "desired-state": {"running": true}});
    let tasks: Vec<Value> = client
        .get_json(&format!(
            "/tasks?filters={}",
            query_value(&filters.to_string())
        ))
        .await?;
    Ok(tasks.len())
}

/// Waits until `REPLICAS` tasks of `service` run, none on `not_on`.
async fn wait_running(client: &Client, service: &str, not_on: Option<&str>) -> Result<()> {
    let filters = json!({"service": {service: true}, "desired-state": {"running": true}});
    let path = format!("/tasks?filters={}", query_value(&filters.to_string()));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if interrupt::interrupted() {
            bail!("interrupted");
        }
        let tasks: Vec<Value> = client.get_json(&path).await?;
        let running = tasks
            .iter()
            .filter(|t| t["Status"]["State"] == "running")
            .filter(|t| not_on.is_none_or(|n| t["NodeID"] != n))
            .count();
        if running == REPLICAS {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {running} of {REPLICAS} tasks running after {TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_no_containers(world: &World) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while world.nodes().iter().any(|n| !n.containers().is_empty()) {
        if Instant::now() > deadline {
            bail!("containers still exist after {TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
