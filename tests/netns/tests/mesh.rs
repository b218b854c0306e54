//! End-to-end: the routing mesh (DESIGN §5, data path 5). A client
//! namespace on the underlay switch, outside the swarm, reaches a service's
//! published port on every node's address, including a node that runs none
//! of its tasks; every backend answers, every backend sees the client's own
//! address, a flow picks the same backend whichever node it enters, and
//! scaling moves new flows without breaking established ones. Then UDP,
//! auto-allocated ports, conflicts and `mode=host`.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket},
    os::fd::OwnedFd,
    time::Duration,
};

use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, setsockopt, socket,
    sockopt::ReuseAddr,
};
use serde_json::Value;
use shoal_ebpf_common::program_names::XDP_UNDERLAY;
use shoal_netns_tests::{
    CONVERGE, World, client::Host, eventually, require_docker_client, require_privileges,
    service_create_args, step, world::reason_packets,
};

/// The client's address on the underlay switch (outside every node).
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A 3-node swarm (shoald started with `shoald_args`) with the demo image
/// on every node and a client host.
fn world(tag: &str, shoald_args: &[&str]) -> (World, Host) {
    let world = World::swarm(tag, 3)
        .shoald_args(shoald_args)
        .form()
        .expect("forming the swarm");
    let client = world.attach_host("cl", CLIENT);
    // A wire carries complete checksums; a veth would pass the client
    // stack's partial ones, which the XDP rewrite cannot tell apart.
    let status = client
        .command("ethtool")
        .args(["-K", "eth0", "tx", "off"])
        .output();
    assert!(
        status.as_ref().is_ok_and(|o| o.status.success()),
        "ethtool -K eth0 tx off in the client: {status:?}"
    );
    (world, client)
}

/// A TCP connection from the client (from `src_port` when given) to `to`.
fn connect_from(
    client: &Host,
    src_port: Option<u16>,
    to: SocketAddrV4,
) -> Result<TcpStream, String> {
    client.netns().run(move || {
        let fd: OwnedFd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| format!("socket: {e}"))?;
        if let Some(port) = src_port {
            setsockopt(&fd, ReuseAddr, &true).map_err(|e| format!("SO_REUSEADDR: {e}"))?;
            bind(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                &SockaddrIn::from(SocketAddrV4::new(CLIENT, port)),
            )
            .map_err(|e| format!("binding port {port}: {e}"))?;
        }
        connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(to))
            .map_err(|e| format!("connecting to {to}: {e}"))?;
        let stream = TcpStream::from(fd);
        stream
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .map_err(|e| e.to_string())?;
        Ok(stream)
    })
}

/// One `GET /` on `stream` (HTTP/1.1, kept alive or not): the body.
fn get(stream: &TcpStream, keep_alive: bool) -> Result<String, String> {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut writer = stream;
    write!(
        writer,
        "GET / HTTP/1.1\r\nHost: mesh\r\nConnection: {connection}\r\n\r\n"
    )
    .map_err(|e| format!("sending: {e}"))?;
    let mut reader = BufReader::new(stream);
    let mut length = None;
    let mut status = String::new();
    reader
        .read_line(&mut status)
        .map_err(|e| format!("reading: {e}"))?;
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("answered {status:?}"));
    }
    loop {
        let mut header = String::new();
        reader
            .read_line(&mut header)
            .map_err(|e| format!("reading: {e}"))?;
        if header == "\r\n" || header.is_empty() {
            break;
        }
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length.ok_or("no Content-Length")?];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("reading: {e}"))?;
    String::from_utf8(body).map_err(|e| e.to_string())
}

/// What a whoami answer says: (hostname, the client address it saw).
fn who(answer: &str) -> Result<(String, String), String> {
    let field = |key: &str| {
        answer
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| format!("no {key} in {answer:?}"))
    };
    Ok((field("Hostname:")?, field("RemoteAddr:")?))
}

/// One request on a new connection: the backend's hostname, after
/// checking that it saw the client's own address.
fn fetch(client: &Host, to: SocketAddrV4) -> Result<String, String> {
    let stream = connect_from(client, None, to)?;
    let (hostname, seen) = who(&get(&stream, false)?)?;
    if !seen.starts_with(&format!("{CLIENT}:")) {
        return Err(format!("{hostname} saw {seen}, not the client {CLIENT}"));
    }
    Ok(hostname)
}

/// `requests` new connections spread over every node's `port`: how many
/// each backend answered. Panics on any failure.
fn spread(world: &World, client: &Host, port: u16, requests: usize) -> BTreeMap<String, usize> {
    spread_over(world, client, &[1, 2, 3], port, requests).unwrap_or_else(|e| panic!("{e}"))
}

/// `requests` new connections spread over `nodes`' `port`: how many each
/// backend answered, or the first failure.
fn spread_over(
    world: &World,
    client: &Host,
    nodes: &[usize],
    port: u16,
    requests: usize,
) -> Result<BTreeMap<String, usize>, String> {
    let mut answered = BTreeMap::new();
    for i in 0..requests {
        let to = SocketAddrV4::new(world.node(nodes[i % nodes.len()]).addr(), port);
        let hostname = fetch(client, to).map_err(|e| format!("request {i} to {to}: {e}"))?;
        *answered.entry(hostname).or_insert(0) += 1;
    }
    Ok(answered)
}

/// The task hostnames of `service` (its running tasks' names).
fn hostnames(world: &World, service: &str) -> BTreeSet<String> {
    world
        .running_tasks(service)
        .iter()
        .map(|task| world.task_hostname(task))
        .collect()
}

fn inspect(world: &World, service: &str) -> Value {
    serde_json::from_str(&world.docker_ok(&["service", "inspect", service]))
        .expect("service inspect is JSON")
}

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, step by step")]
fn a_published_port_answers_on_every_node_and_keeps_the_client_address() {
    require_privileges!();
    require_docker_client!();
    // The test world's switch runs NAPI on its ports, as a NIC's wire
    // would take the frames XDP sends back out.
    let (world, client) = world(
        "mesh",
        &["--mesh-xdp-tunnel", "on", "--xdp-mode", "generic"],
    );
    step("web: 3 replicas on nodes 1 and 2, published on 8080");
    world.docker_ok(&service_create_args(
        "web",
        &[
            "--replicas",
            "3",
            "--constraint",
            "node.hostname!=node-3",
            "--stop-grace-period",
            "10s",
            "-p",
            "8080:80",
        ],
        &[],
    ));
    let _ = world.wait_for_tasks("web", 3);
    let web = inspect(&world, "web");
    assert_eq!(
        web[0]["Endpoint"]["Ports"][0]["PublishedPort"], 8080,
        "{web}"
    );
    assert_eq!(web[0]["Endpoint"]["Ports"][0]["TargetPort"], 80, "{web}");
    assert!(
        world.running_tasks("web").iter().all(|t| t.node != 3),
        "node-3 runs no web task"
    );
    let backends = hostnames(&world, "web");

    step("300 requests through the 3 nodes: every backend, the client's address");
    // The first request through each node may race its agent's tables.
    for node in world.nodes() {
        let to = SocketAddrV4::new(node.addr(), 8080);
        eventually(&format!("{to} answers"), CONVERGE, || fetch(&client, to));
    }
    let answered = spread(&world, &client, 8080, 300);
    eprintln!("answers per backend: {answered:?}");
    assert_eq!(answered.keys().cloned().collect::<BTreeSet<_>>(), backends);

    step("node-3's status counts the flows that entered there");
    let status: Value =
        serde_json::from_str(&world.node(3).shoal_ok(&["status", "--format", "json"]))
            .expect("status is JSON");
    let web_port = status["mesh"]["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["PublishedPort"] == 8080))
        .unwrap_or_else(|| panic!("8080 in node-3's mesh status: {status}"));
    assert_eq!(web_port["ServiceName"], "web");
    let new_flows = web_port["Verdicts"]["new_flow"].as_u64().unwrap_or(0);
    // 100 of the 300 went through node-3, plus the first probe.
    assert!((100..=110).contains(&new_flows), "{web_port}");
    let dropped = web_port["Verdicts"]
        .as_object()
        .is_some_and(|reasons| reasons.keys().any(|reason| reason.starts_with("drop_")));
    assert!(
        !dropped,
        "only the reasons counted are listed, no drop: {web_port}"
    );
    assert!(
        status["mesh"]["node"]["reply"].as_u64() >= Some(100),
        "{status}"
    );
    // Node-3 runs no task: XDP sent every packet of those flows to a
    // backend's node itself; node-1 those for node-2's tasks.
    assert!(
        status["mesh"]["node"]["tunnelled_in_xdp"].as_u64() >= Some(100),
        "{status}"
    );
    assert!(
        reason_packets(&status, XDP_UNDERLAY, "tunnelled_in_xdp") >= 100,
        "the hook's row counts them under the same reason: {status}"
    );
    let node1: Value =
        serde_json::from_str(&world.node(1).shoal_ok(&["status", "--format", "json"]))
            .expect("status is JSON");
    if world.running_tasks("web").iter().any(|t| t.node == 2) {
        assert!(
            node1["mesh"]["node"]["tunnelled_in_xdp"].as_u64() > Some(0),
            "{node1}"
        );
    }

    step("the same client port through two nodes reaches the same backend");
    // Above the kernel's ephemeral range (32768-60999): a port the earlier
    // requests used, still in TIME_WAIT without SO_REUSEADDR, would refuse
    // the bind (EADDRINUSE), as it once did.
    for port in 61_000..61_006_u16 {
        let mut seen = Vec::new();
        for node in [1, 3] {
            let to = SocketAddrV4::new(world.node(node).addr(), 8080);
            let stream = connect_from(&client, Some(port), to)
                .unwrap_or_else(|e| panic!("from port {port}: {e}"));
            seen.push(
                who(&get(&stream, false).expect("answer"))
                    .expect("whoami")
                    .0,
            );
        }
        assert_eq!(seen[0], seen[1], "client port {port} via node-1 and node-3");
    }

    step("scale to 6: the new backends get traffic");
    world.docker_ok(&["service", "scale", "--detach", "web=6"]);
    let _ = world.wait_for_tasks("web", 6);
    let six = hostnames(&world, "web");
    eventually("every one of 6 backends answers", CONVERGE, || {
        let answered = spread(&world, &client, 8080, 120);
        if answered.keys().cloned().collect::<BTreeSet<_>>() == six {
            Ok(answered)
        } else {
            Err(format!("{answered:?}"))
        }
    });

    step("keep connections to slot 1 (stays) and slot 2 (drains), scale to 1");
    let keep = |slot: &str| {
        (0..300)
            .find_map(|i| {
                let to = SocketAddrV4::new(world.node(1 + i % 3).addr(), 8080);
                let stream = connect_from(&client, None, to).ok()?;
                let (hostname, _) = who(&get(&stream, true).ok()?).ok()?;
                hostname.starts_with(slot).then_some((stream, hostname))
            })
            .unwrap_or_else(|| panic!("a connection reaches {slot}"))
    };
    let (kept, survivor) = keep("web.1.");
    let (draining, drained) = keep("web.2.");
    world.docker_ok(&["service", "scale", "--detach", "web=1"]);
    let _ = world.wait_for_tasks("web", 1);
    // web.2 ignores SIGTERM (PID 1 without a handler): it runs out its
    // 10 s grace period, out of the tables but still an endpoint.
    let answer = get(&draining, true).expect("the draining backend's connection still answers");
    assert_eq!(who(&answer).expect("whoami").0, drained);
    eventually("new connections reach only the survivor", CONVERGE, || {
        let answered = spread(&world, &client, 8080, 30);
        if answered.keys().eq([&survivor]) {
            Ok(())
        } else {
            Err(format!("{answered:?}"))
        }
    });
    for _ in 0..3 {
        let answer = get(&kept, true).expect("the kept connection still answers");
        assert_eq!(who(&answer).expect("whoami").0, survivor);
    }
}

#[test]
fn losing_a_node_moves_its_flows_to_the_remaining_backends() {
    require_privileges!();
    require_docker_client!();
    let (mut world, client) = world("meshloss", &[]);
    world.docker_ok(&service_create_args(
        "web",
        &[
            "--replicas",
            "3",
            "--replicas-max-per-node",
            "1",
            "-p",
            "8080:80",
        ],
        &[],
    ));
    let _ = world.wait_for_tasks("web", 3);
    let before = hostnames(&world, "web");
    for node in world.nodes() {
        let to = SocketAddrV4::new(node.addr(), 8080);
        eventually(&format!("{to} answers"), CONVERGE, || fetch(&client, to));
    }
    let lost: BTreeSet<String> = world
        .running_tasks("web")
        .iter()
        .filter(|task| task.node == 3)
        .map(|task| {
            world
                .node(3)
                .runc_exec(&task.id, &["hostname"])
                .expect("hostname")
                .trim()
                .to_owned()
        })
        .collect();
    assert_eq!(lost.len(), 1, "one task per node: {before:?}");

    step("node-3 dies with its task; the survivors' tables follow");
    let node3 = world.node_mut(3);
    node3.kill9();
    node3.remove_containers();
    // Down after 3 missed heartbeats; its task cannot move (one per node).
    let _ = world.wait_for_tasks("web", 2);
    let survivors = hostnames(&world, "web");
    assert!(survivors.is_disjoint(&lost), "{survivors:?} {lost:?}");
    eventually(
        "nodes 1 and 2 balance over the survivors only",
        CONVERGE,
        || {
            let answered = spread_over(&world, &client, &[1, 2], 8080, 60)?;
            if answered.keys().cloned().collect::<BTreeSet<_>>() == survivors {
                Ok(answered)
            } else {
                Err(format!("{answered:?}"))
            }
        },
    );
}

#[test]
fn the_tc_hook_serves_the_same_mesh() {
    require_privileges!();
    require_docker_client!();
    let (world, client) = world("meshtc", &["--mesh-hook", "tc"]);
    world.docker_ok(&service_create_args(
        "web",
        &[
            "--replicas",
            "3",
            "--constraint",
            "node.hostname!=node-3",
            "-p",
            "8080:80",
        ],
        &[],
    ));
    let _ = world.wait_for_tasks("web", 3);
    let backends = hostnames(&world, "web");
    for node in world.nodes() {
        let to = SocketAddrV4::new(node.addr(), 8080);
        eventually(&format!("{to} answers"), CONVERGE, || fetch(&client, to));
    }
    let answered = spread(&world, &client, 8080, 150);
    assert_eq!(answered.keys().cloned().collect::<BTreeSet<_>>(), backends);
}

#[test]
fn udp_auto_allocated_conflicting_and_host_mode_ports() {
    require_privileges!();
    require_docker_client!();
    let (world, client) = world("mesh2", &[]);
    step("echo: UDP, published port left to the managers");
    world.docker_ok(&service_create_args(
        "echo",
        &["--replicas", "2", "--publish", "target=7,protocol=udp"],
        &["whoami", "--udp-echo", "7"],
    ));
    let _ = world.wait_for_tasks("echo", 2);
    let echo = inspect(&world, "echo");
    let port = &echo[0]["Endpoint"]["Ports"][0];
    assert_eq!(port["Protocol"], "udp", "{echo}");
    let published =
        u16::try_from(port["PublishedPort"].as_u64().expect("a published port")).expect("a port");
    assert!((30_000..=32_767).contains(&published), "{published}");

    for node in world.nodes() {
        let to = SocketAddrV4::new(node.addr(), published);
        eventually(&format!("UDP echo through {to}"), CONVERGE, || {
            client.netns().run(move || {
                let socket = UdpSocket::bind((CLIENT, 0)).map_err(|e| e.to_string())?;
                socket
                    .set_read_timeout(Some(Duration::from_secs(1)))
                    .map_err(|e| e.to_string())?;
                socket.send_to(b"ping", to).map_err(|e| e.to_string())?;
                let mut buffer = [0; 16];
                let (len, from) = socket.recv_from(&mut buffer).map_err(|e| e.to_string())?;
                if &buffer[..len] == b"ping" && from == SocketAddr::V4(to) {
                    Ok(())
                } else {
                    Err(format!("{:?} from {from}", &buffer[..len]))
                }
            })
        });
    }

    step("a taken port is refused, naming its holder; nothing is created");
    let refused = world.docker_err(&service_create_args(
        "clash",
        &[
            "--publish",
            &format!("published={published},target=9,protocol=udp"),
        ],
        &[],
    ));
    assert!(refused.contains("echo"), "{refused}");
    assert!(!world.docker_ok(&["service", "ls"]).contains("clash"));

    step("mode=host: only the node running the task answers");
    world.docker_ok(&service_create_args(
        "edge",
        &[
            "--constraint",
            "node.hostname==node-2",
            "--publish",
            "mode=host,published=9090,target=80",
        ],
        &[],
    ));
    let _ = world.wait_for_tasks("edge", 1);
    let on_node_2 = SocketAddrV4::new(world.node(2).addr(), 9090);
    eventually("node-2:9090 answers", CONVERGE, || {
        fetch(&client, on_node_2)
    });
    for node in [1, 3] {
        let to = SocketAddrV4::new(world.node(node).addr(), 9090);
        let result = fetch(&client, to);
        assert!(
            result.is_err(),
            "node-{node} answered on a host-mode port: {result:?}"
        );
    }

    step("ingress, which every publishing service shares, resolves no names");
    let echo_task = world.running_tasks("echo")[0].clone();
    let answer = world
        .node(echo_task.node)
        .runc_exec(&echo_task.id, &["whoami", "--resolve", "edge"])
        .unwrap_or_else(|e| e);
    assert!(answer.starts_with("NXDOMAIN"), "{answer}");
}
