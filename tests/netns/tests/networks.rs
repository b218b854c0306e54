//! End-to-end: overlay networks through the stock docker CLI — creation
//! with allocated or given subnets and VNIs, services attached to them with
//! a VIP and an address per task, refusals that change nothing. (The data
//! plane that carries traffic on them comes with the VXLAN programs.)

use std::{collections::BTreeSet, net::Ipv4Addr, time::Duration};

use serde_json::Value;
use shoal_ebpf_common::program_names::TC_ENDPOINT_INGRESS;
use shoal_netns_tests::{
    CONVERGE, World, eventually, require_docker_client, require_privileges, service_create_args,
    step, world::reason_packets,
};

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, step by step")]
fn overlay_networks_allocate_subnets_vips_and_task_addresses() {
    require_privileges!();
    require_docker_client!();
    let world = World::swarm("networks", 3)
        .form()
        .expect("forming the swarm");

    step(
        "docker network create -d overlay: subnets from the pool or given, VNIs from 4097 (ingress, made at init, has 10.0.0.0/24 and 4096)",
    );
    world.docker_ok(&["network", "create", "-d", "overlay", "front"]);
    world.docker_ok(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.20.0.0/24",
        "--attachable",
        "back",
    ]);
    let ls = world.docker_ok(&[
        "network",
        "ls",
        "--format",
        "{{.Name}} {{.Driver}} {{.Scope}}",
    ]);
    let rows: BTreeSet<&str> = ls.lines().collect();
    assert_eq!(
        rows,
        BTreeSet::from([
            "ingress overlay swarm",
            "front overlay swarm",
            "back overlay swarm"
        ]),
        "{ls}"
    );
    let ingress = json(&world.docker_ok(&["network", "inspect", "ingress"]));
    assert_eq!(ingress[0]["Ingress"], true);
    assert_eq!(ingress[0]["IPAM"]["Config"][0]["Subnet"], "10.0.0.0/24");
    assert_eq!(
        ingress[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"],
        "4096"
    );
    let front = json(&world.docker_ok(&["network", "inspect", "front"]));
    assert_eq!(front[0]["IPAM"]["Config"][0]["Subnet"], "10.0.1.0/24");
    assert_eq!(front[0]["IPAM"]["Config"][0]["Gateway"], "10.0.1.1");
    assert_eq!(front[0]["Ingress"], false);
    assert_eq!(
        front[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"],
        "4097"
    );
    let back = json(&world.docker_ok(&["network", "inspect", "back"]));
    assert_eq!(back[0]["IPAM"]["Config"][0]["Subnet"], "10.20.0.0/24");
    assert_eq!(back[0]["Attachable"], true);
    assert_eq!(
        back[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"],
        "4098"
    );

    step("refused, nothing created: a duplicate name, an overlapping subnet, another driver");
    let error = world.docker_err(&["network", "create", "-d", "overlay", "front"]);
    assert!(error.contains("already exists"), "{error}");
    let error = world.docker_err(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.20.0.128/25",
        "other",
    ]);
    assert!(error.contains("overlaps"), "{error}");
    let error = world.docker_err(&["network", "create", "-d", "bridge", "other"]);
    assert!(error.contains("overlay"), "{error}");
    assert_eq!(world.docker_ok(&["network", "ls", "-q"]).lines().count(), 3);

    step(
        "docker service create --network front --network back: a VIP per network, an address per task",
    );
    world.docker_ok(&service_create_args(
        "web",
        &["--replicas", "3", "--network", "front", "--network", "back"],
        &[],
    ));
    let service = json(&world.docker_ok(&["service", "inspect", "web"]));
    let vips: Vec<String> = service[0]["Endpoint"]["VirtualIPs"]
        .as_array()
        .expect("VirtualIPs")
        .iter()
        .map(|v| v["Addr"].as_str().unwrap_or_default().to_owned())
        .collect();
    let vips: BTreeSet<&str> = vips.iter().map(String::as_str).collect();
    assert_eq!(vips, BTreeSet::from(["10.0.1.2/24", "10.20.0.2/24"]));
    let addresses = eventually("3 tasks with 2 addresses each", CONVERGE, || {
        let ids = world.docker_ok(&["service", "ps", "-q", "--no-trunc", "web"]);
        let mut all = BTreeSet::new();
        for id in ids.lines() {
            let task = json(&world.docker_ok(&["inspect", "--type", "task", id]));
            for attachment in task[0]["NetworksAttachments"]
                .as_array()
                .into_iter()
                .flatten()
            {
                for addr in attachment["Addresses"].as_array().into_iter().flatten() {
                    all.insert(addr.as_str().unwrap_or_default().to_owned());
                }
            }
        }
        if all.len() == 6 {
            Ok(all)
        } else {
            Err(format!("{all:?}"))
        }
    });
    assert_eq!(
        addresses,
        [
            "10.0.1.3/24",
            "10.0.1.4/24",
            "10.0.1.5/24",
            "10.20.0.3/24",
            "10.20.0.4/24",
            "10.20.0.5/24"
        ]
        .into_iter()
        .map(str::to_owned)
        .collect()
    );

    step(
        "each task has eth0 and eth1 in its own namespace, MTU = underlay − 50, host sides in the node",
    );
    let (node, task) = eventually("a running task", CONVERGE, || {
        world
            .nodes()
            .iter()
            .find_map(|n| n.running_containers().first().map(|id| (n, id.clone())))
            .ok_or_else(|| world.docker_ok(&["service", "ps", "--no-trunc", "web"]))
    });
    let addrs = node
        .runc_exec(&task, &["ip", "-o", "-4", "addr", "show"])
        .unwrap_or_else(|e| panic!("runc exec: {e}"));
    let mine: BTreeSet<String> = addrs
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let ifname = words.get(1)?;
            let addr = words.get(3)?;
            ifname
                .starts_with("eth")
                .then(|| format!("{ifname} {addr}"))
        })
        .collect();
    assert_eq!(mine.len(), 2, "{addrs}");
    // One interface per network, eth0 and eth1 in the order of the spec
    // (docker's CLI sorts the networks by ID).
    assert!(mine.iter().any(|a| a.contains(" 10.0.1.")), "{mine:?}");
    assert!(mine.iter().any(|a| a.contains(" 10.20.0.")), "{mine:?}");
    assert!(
        mine.iter().any(|a| a.starts_with("eth0 ")) && mine.iter().any(|a| a.starts_with("eth1 ")),
        "{mine:?}"
    );
    assert!(
        mine.iter()
            .all(|a| addresses.contains(a.split(' ').nth(1).unwrap_or_default())),
        "the task's interfaces carry its allocated addresses: {mine:?} vs {addresses:?}"
    );
    let links = node
        .runc_exec(&task, &["ip", "-o", "link", "show", "eth0"])
        .unwrap_or_default();
    assert!(links.contains("mtu 1450"), "{links}");
    let host_side = format!("sh{}0", &task[..10]);
    let host_links = node.netns().ip(&["-o", "link", "show", &host_side]);
    assert!(host_links.status.success(), "no host-side veth {host_side}");

    step("a network in use cannot be removed; an unused one can");
    let error = world.docker_err(&["network", "rm", "front"]);
    assert!(error.contains("in use by service web"), "{error}");
    world.docker_ok(&["service", "rm", "web"]);
    eventually("front removable once web's tasks stopped", CONVERGE, || {
        world
            .node(1)
            .docker(&["network", "rm", "front"])
            .expect("docker")
    });
    world.docker_ok(&["network", "rm", "back"]);
    assert_eq!(
        world
            .docker_ok(&["network", "ls", "--format", "{{.Name}}"])
            .trim(),
        "ingress"
    );
}

/// Captures on the switch's bridge for up to 5 s (from a thread in the
/// switch namespace) and returns `(VNI, inner source, inner destination)`
/// of the VXLAN frames (UDP 4789) seen, stopping early once a frame from
/// `from` to `to` has been seen.
fn capture_vxlan(
    from: Ipv4Addr,
    to: Ipv4Addr,
) -> std::thread::JoinHandle<Vec<(u32, Ipv4Addr, Ipv4Addr)>> {
    let interface = pnet_datalink::interfaces()
        .into_iter()
        .find(|i| i.name == "br0")
        .expect("the switch's bridge");
    let config = pnet_datalink::Config {
        read_timeout: Some(Duration::from_millis(100)),
        ..pnet_datalink::Config::default()
    };
    let Ok(pnet_datalink::Channel::Ethernet(_, mut rx)) =
        pnet_datalink::channel(&interface, config)
    else {
        panic!("an AF_PACKET socket on br0");
    };
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        while std::time::Instant::now() < deadline {
            let Ok(frame) = rx.next() else { continue };
            if let Some(inner) = parse_vxlan(frame) {
                let done = inner.1 == from && inner.2 == to;
                seen.push(inner);
                if done {
                    break;
                }
            }
        }
        seen
    })
}

/// `(VNI, inner source, inner destination)` of an Ethernet frame that is
/// IPv4/UDP to port 4789 carrying VXLAN and an inner IPv4 packet.
fn parse_vxlan(frame: &[u8]) -> Option<(u32, Ipv4Addr, Ipv4Addr)> {
    use pnet_packet::{
        Packet,
        ethernet::{EtherTypes, EthernetPacket},
        ip::IpNextHeaderProtocols,
        ipv4::Ipv4Packet,
        udp::UdpPacket,
    };
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new(eth.payload())?;
    if ip.get_next_level_protocol() != IpNextHeaderProtocols::Udp {
        return None;
    }
    let udp = UdpPacket::new(ip.payload())?;
    if udp.get_destination() != 4789 {
        return None;
    }
    let vxlan = udp.payload();
    if vxlan.len() < 8 || vxlan[0] & 0x08 == 0 {
        return None;
    }
    let vni = u32::from_be_bytes([0, vxlan[4], vxlan[5], vxlan[6]]);
    let inner = EthernetPacket::new(&vxlan[8..])?;
    if inner.get_ethertype() != EtherTypes::Ipv4 {
        return None;
    }
    let inner_ip = Ipv4Packet::new(inner.payload())?;
    Some((vni, inner_ip.get_source(), inner_ip.get_destination()))
}

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, step by step")]
fn tasks_reach_each_other_over_the_overlay_and_networks_are_isolated() {
    require_privileges!();
    require_docker_client!();
    let world = World::swarm("overlay", 3)
        .form()
        .expect("forming the swarm");
    world.docker_ok(&["network", "create", "-d", "overlay", "front"]);
    world.docker_ok(&["network", "create", "-d", "overlay", "back"]);
    world.docker_ok(&service_create_args(
        "web",
        &["--replicas", "4", "--network", "front"],
        &[],
    ));
    world.docker_ok(&service_create_args(
        "db",
        &["--replicas", "1", "--network", "back"],
        &[],
    ));
    let web = world.wait_for_tasks("web", 4);
    let db = world.wait_for_tasks("db", 1);

    step("every web task answers every other one over HTTP, on the same node and across nodes");
    let mut same_node = 0;
    let mut cross_node = 0;
    for from in &web {
        for to in &web {
            if from.addr == to.addr {
                continue;
            }
            let answer = eventually(&format!("{} -> {}", from.addr, to.addr), CONVERGE, || {
                world
                    .node(from.node)
                    .runc_exec(&from.id, &["whoami", "--get", &to.addr])
            });
            assert!(answer.contains(&format!("IP: {}", to.addr)), "{answer}");
            assert!(
                answer.contains(&format!("RemoteAddr: {}:", from.addr)),
                "the server sees the client's own overlay address: {answer}"
            );
            if from.node == to.node {
                same_node += 1;
            } else {
                cross_node += 1;
            }
        }
    }
    assert!(
        same_node > 0 && cross_node > 0,
        "both paths used: {same_node} same-node, {cross_node} cross-node"
    );

    step("ICMP works too (tasks get Docker's default capabilities, CAP_NET_RAW among them)");
    let pinger = &web[0];
    let far = web
        .iter()
        .find(|t| t.node != pinger.node)
        .expect("a task on another node");
    let ping = world
        .node(pinger.node)
        .runc_exec(&pinger.id, &["ping", "-c", "1", "-W", "2", &far.addr]);
    assert!(
        ping.as_ref()
            .is_ok_and(|out| out.contains("1 packets received")),
        "{ping:?}"
    );

    step(
        "on the underlay (captured at the switch), cross-node task traffic is VXLAN with the network's VNI",
    );
    let from = web
        .iter()
        .find(|t| t.node == 1)
        .or_else(|| web.first())
        .expect("a web task");
    let to = web
        .iter()
        .find(|t| t.node != from.node)
        .expect("a web task on another node");
    let front = json(&world.docker_ok(&["network", "inspect", "front"]));
    let vni: u32 = front[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("the network's VNI");
    let (client_ip, server_ip): (Ipv4Addr, Ipv4Addr) = (
        from.addr.parse().expect("an address"),
        to.addr.parse().expect("an address"),
    );
    let capture = world
        .switch()
        .run(move || capture_vxlan(client_ip, server_ip));
    let request = world
        .node(from.node)
        .runc_exec(&from.id, &["whoami", "--get", &to.addr]);
    assert!(request.is_ok(), "{request:?}");
    let seen = capture.join().expect("the capture thread");
    assert!(
        seen.iter()
            .any(|(v, src, dst)| *v == vni && *src == client_ip && *dst == server_ip),
        "no VXLAN frame with VNI {vni} carrying {client_ip} -> {server_ip}: saw {seen:?}"
    );
    assert!(
        seen.iter().all(|(v, _, _)| *v == vni),
        "only this network's VNI: {seen:?}"
    );

    step("a web task cannot reach the db task on the other network, even by address");
    let refused = world
        .node(web[0].node)
        .runc_exec(&web[0].id, &["whoami", "--get", &db[0].addr]);
    assert!(refused.is_err(), "front reached back: {refused:?}");

    step("the overlay interfaces carry no IPv6 (Docker's default), so the programs dropped none");
    for task in web.iter().chain(&db) {
        let disabled = world.node(task.node).runc_exec(
            &task.id,
            &["cat", "/proc/sys/net/ipv6/conf/eth0/disable_ipv6"],
        );
        assert_eq!(
            disabled.as_deref().map(str::trim),
            Ok("1"),
            "IPv6 off on {}'s eth0",
            task.addr
        );
    }
    for (i, node) in world.nodes().iter().enumerate() {
        let status = node.status().expect("status");
        assert_eq!(
            reason_packets(&status, TC_ENDPOINT_INGRESS, "drop_not_ipv4"),
            0,
            "node-{}'s tasks sent nothing but IPv4 and ARP: {}",
            i + 1,
            status["dataplane"]["counters"][TC_ENDPOINT_INGRESS]
        );
    }
}

/// The overlay addresses (`eth*`) of every running task of `service`.
fn interface_addresses(world: &World, service: &str) -> Vec<BTreeSet<String>> {
    world
        .running_tasks(service)
        .iter()
        .map(|task| {
            world
                .node(task.node)
                .runc_exec(&task.id, &["ip", "-o", "-4", "addr", "show"])
                .unwrap_or_default()
                .lines()
                .filter_map(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    words[1].starts_with("eth").then(|| words[3].to_owned())
                })
                .collect()
        })
        .collect()
}

#[test]
fn network_add_and_rm_reattach_a_running_service() {
    require_privileges!();
    require_docker_client!();
    let world = World::swarm("netadd", 2).form().expect("forming the swarm");
    world.docker_ok(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.30.0.0/24",
        "front",
    ]);
    world.docker_ok(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.31.0.0/24",
        "back",
    ]);
    world.docker_ok(&service_create_args(
        "web",
        &["--replicas", "2", "--network", "front"],
        &[],
    ));
    let on = |prefixes: &[&str]| {
        let prefixes: Vec<String> = prefixes.iter().map(|p| (*p).to_owned()).collect();
        move |tasks: &Vec<BTreeSet<String>>| {
            tasks.len() == 2
                && tasks.iter().all(|addrs| {
                    addrs.len() == prefixes.len()
                        && prefixes
                            .iter()
                            .all(|p| addrs.iter().any(|a| a.starts_with(p.as_str())))
                })
        }
    };
    let front_only = on(&["10.30.0."]);
    eventually("2 tasks on front", CONVERGE, || {
        let tasks = interface_addresses(&world, "web");
        if front_only(&tasks) {
            Ok(())
        } else {
            Err(format!("{tasks:?}"))
        }
    });

    step(
        "service update --network-add back: the tasks are replaced with an interface on each network",
    );
    world.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--network-add",
        "back",
        "web",
    ]);
    let both = on(&["10.30.0.", "10.31.0."]);
    eventually("2 tasks on front and back", CONVERGE, || {
        let tasks = interface_addresses(&world, "web");
        if both(&tasks) {
            Ok(())
        } else {
            Err(format!("{tasks:?}"))
        }
    });

    step("service update --network-rm front: only back is left; front can be removed");
    world.docker_ok(&[
        "service",
        "update",
        "--detach",
        "--network-rm",
        "front",
        "web",
    ]);
    let back_only = on(&["10.31.0."]);
    eventually("2 tasks on back only", CONVERGE, || {
        let tasks = interface_addresses(&world, "web");
        if back_only(&tasks) {
            Ok(())
        } else {
            Err(format!("{tasks:?}"))
        }
    });
    eventually("front removable", CONVERGE, || {
        world
            .node(1)
            .docker(&["network", "rm", "front"])
            .expect("docker")
    });
    let error = world.docker_err(&["network", "rm", "back"]);
    assert!(error.contains("in use by service web"), "{error}");
}
