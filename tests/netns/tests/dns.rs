//! End-to-end: the tasks' DNS (DESIGN.md §4) through the stock docker CLI.
//! From a task on `front`, its resolver at `127.0.0.11` (UDP and TCP)
//! answers a VIP service's name with its VIP (where a task answers),
//! `tasks.<service>` with exactly its running tasks' addresses, a `dnsrr`
//! service's name with its tasks' addresses, and a service on a network the
//! task does not share with NXDOMAIN; answers follow a scale within the TTL,
//! other names get an answer (SERVFAIL here: the world has no upstream
//! resolver) instead of a hang, and a restarted agent serves its adopted
//! tasks again.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use serde_json::Value;
use shoal_netns_tests::{
    CONVERGE, RunningTask, World, eventually, require_docker_client, require_privileges,
    service_create_args, step,
};

/// The agents' default `--dns-ttl`.
const TTL: Duration = Duration::from_secs(10);

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// What the task's resolver answers for `name`: the response code, the TTL
/// (when there are records) and the addresses.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    code: String,
    ttl: Option<u64>,
    addresses: BTreeSet<String>,
}

fn resolve(
    world: &World,
    (node, id): (usize, &str),
    name: &str,
    tcp: bool,
) -> Result<Answer, String> {
    let mut args = vec!["whoami", "--resolve", name];
    if tcp {
        args.push("--tcp");
    }
    let line = world.node(node).runc_exec(id, &args)?;
    let mut words = line.split_whitespace();
    let code = words.next().ok_or_else(|| format!("no answer: {line:?}"))?;
    let mut answer = Answer {
        code: code.to_owned(),
        ttl: None,
        addresses: BTreeSet::new(),
    };
    for word in words {
        match word.strip_prefix("ttl=") {
            Some(ttl) => answer.ttl = ttl.parse().ok(),
            None => {
                answer.addresses.insert(word.to_owned());
            }
        }
    }
    Ok(answer)
}

fn records(addresses: &[&str]) -> Answer {
    Answer {
        code: "NOERROR".into(),
        ttl: Some(TTL.as_secs()),
        addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
    }
}

fn nxdomain() -> Answer {
    Answer {
        code: "NXDOMAIN".into(),
        ttl: None,
        addresses: BTreeSet::new(),
    }
}

/// Waits until `name` resolves to `want` from the client task.
fn expect_answer(world: &World, client: (usize, &str), name: &str, tcp: bool, want: &Answer) {
    eventually(
        &format!("{name} -> {want:?}{}", if tcp { " over TCP" } else { "" }),
        CONVERGE,
        || match resolve(world, client, name, tcp) {
            Ok(answer) if answer == *want => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

fn create_service(world: &World, name: &str, replicas: &str, network: &str, extra: &[&str]) {
    let mut options = vec!["--replicas", replicas, "--network", network];
    options.extend(extra);
    world.docker_ok(&service_create_args(name, &options, &[]));
}

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, step by step")]
fn task_resolvers_answer_service_names_on_shared_networks() {
    require_privileges!();
    require_docker_client!();
    let mut world = World::swarm("dns", 3).form().expect("forming the swarm");
    world.docker_ok(&["network", "create", "-d", "overlay", "front"]);
    world.docker_ok(&["network", "create", "-d", "overlay", "back"]);
    create_service(&world, "web", "3", "front", &[]);
    create_service(
        &world,
        "dnsweb",
        "2",
        "front",
        &["--endpoint-mode", "dnsrr"],
    );
    create_service(&world, "other", "1", "back", &[]);
    create_service(&world, "client", "1", "front", &[]);
    let web = world.wait_for_tasks("web", 3);
    let dnsweb = world.wait_for_tasks("dnsweb", 2);
    let _ = world.wait_for_tasks("other", 1);
    let RunningTask {
        node: client_node,
        id: client_id,
        ..
    } = world.wait_for_tasks("client", 1).remove(0);
    let client = (client_node, client_id.as_str());

    step("an overlay task's /etc/resolv.conf names its resolver");
    let resolv_conf = world
        .node(client_node)
        .runc_exec(&client_id, &["cat", "/etc/resolv.conf"])
        .expect("cat /etc/resolv.conf");
    assert_eq!(resolv_conf, "nameserver 127.0.0.11\noptions ndots:0\n");

    step("web -> its VIP on front, as docker service inspect shows it");
    let front_id = json(&world.docker_ok(&["network", "inspect", "front"]))[0]["Id"]
        .as_str()
        .expect("front's ID")
        .to_owned();
    let service = json(&world.docker_ok(&["service", "inspect", "web"]));
    let vip = service[0]["Endpoint"]["VirtualIPs"]
        .as_array()
        .expect("VirtualIPs")
        .iter()
        .find(|v| v["NetworkID"].as_str() == Some(front_id.as_str()))
        .and_then(|v| v["Addr"].as_str())
        .and_then(|a| a.split('/').next())
        .expect("web's VIP on front")
        .to_owned();
    expect_answer(&world, client, "web", false, &records(&[&vip]));
    expect_answer(&world, client, "WEB.", false, &records(&[&vip]));
    let through_vip = eventually("a web task answers at the resolved VIP", CONVERGE, || {
        world
            .node(client_node)
            .runc_exec(&client_id, &["whoami", "--get", &vip])
    });
    assert!(
        web.iter()
            .any(|t| through_vip.contains(&format!("IP: {}", t.addr))),
        "{through_vip}"
    );

    step("tasks.web -> exactly its 3 task addresses, over UDP and TCP");
    let web_addrs: Vec<&str> = web.iter().map(|t| t.addr.as_str()).collect();
    expect_answer(&world, client, "tasks.web", false, &records(&web_addrs));
    expect_answer(&world, client, "tasks.web", true, &records(&web_addrs));

    step("dnsweb (dnsrr) -> its 2 task addresses");
    let dnsweb_addrs: Vec<&str> = dnsweb.iter().map(|t| t.addr.as_str()).collect();
    expect_answer(&world, client, "dnsweb", false, &records(&dnsweb_addrs));
    expect_answer(
        &world,
        client,
        "tasks.dnsweb",
        false,
        &records(&dnsweb_addrs),
    );

    step("other, on a network the client does not share -> NXDOMAIN");
    assert_eq!(resolve(&world, client, "other", false), Ok(nxdomain()));
    assert_eq!(
        resolve(&world, client, "tasks.other", false),
        Ok(nxdomain())
    );
    assert_eq!(
        resolve(&world, client, "nosuchservice", true),
        Ok(nxdomain())
    );

    step("a name outside the swarm gets an answer (no upstream here: SERVFAIL), not a hang");
    let started = Instant::now();
    let outside = resolve(&world, client, "example.com", false).expect("an answer");
    assert_eq!(outside.code, "SERVFAIL", "{outside:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );

    step("docker service scale web=1: tasks.web follows within the TTL");
    world.docker_ok(&["service", "scale", "--detach", "web=1"]);
    let left = world.wait_for_tasks("web", 1).remove(0).addr;
    let gone = Instant::now();
    expect_answer(&world, client, "tasks.web", false, &records(&[&left]));
    eprintln!(
        "tasks.web followed {:?} after the containers went",
        gone.elapsed()
    );
    assert!(gone.elapsed() <= TTL, "took {:?}", gone.elapsed());
    expect_answer(&world, client, "web", false, &records(&[&vip]));

    step("a restarted agent serves its adopted task's resolver again");
    world.node_mut(client_node).kill9();
    world.node_mut(client_node).start();
    expect_answer(&world, client, "tasks.web", false, &records(&[&left]));
    expect_answer(&world, client, "dnsweb", true, &records(&dnsweb_addrs));
}
