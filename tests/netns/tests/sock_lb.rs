//! End-to-end: service VIPs translated at the socket (DESIGN §5, data path
//! 4; `ebpf/programs/src/sock_lb.rs`). Two nodes, a `client` task and, on
//! the same overlay network, an HTTP service `web`, a UDP echo service
//! `echo` and a service `idle` without tasks.
//!
//! - TCP: new connections from the client to `web`'s VIP reach every
//!   backend, which sees the client's own address; the client's socket
//!   reports the VIP as its peer (`getpeername`, through the host's
//!   `whoami` run as a process of the client task); `SOCK_REVERSE` holds
//!   the socket's translation and `OVERLAY_CONNTRACK` nothing for the flow
//!   (the tc path did not balance it).
//! - UDP: a datagram to `echo`'s VIP is echoed, its source shown as the
//!   VIP (`recvmsg`).
//! - `idle`'s VIP refuses a TCP connection and a UDP send at once
//!   (`ECONNREFUSED`).
//! - The programs stay attached while the client's `shoald` is killed and
//!   after it restarts (pinned links, adopted task); scaling `echo` to
//!   zero detaches them from its tasks' cgroups (the link pins go).

use std::{
    collections::BTreeSet,
    fs::File,
    net::{Ipv4Addr, SocketAddrV4},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use nix::sched::{CloneFlags, setns};
use serde_json::Value;
use shoal_agent::{
    dataplane::{Counters, Flow, FlowDirection, OverlayMaps},
    prerequisites,
};
use shoal_ebpf_common::{Hook, Reason};
use shoal_netns_tests::{
    CONVERGE, RunningTask, World, eventually, require_docker_client, require_privileges,
    service_create_args, step, world::bin_dir,
};

/// New connections sent through `web`'s VIP.
const REQUESTS: usize = 40;
/// The echo service's UDP port.
const ECHO_PORT: u16 = 5353;

/// The first VIP of `service`.
fn vip(world: &World, service: &str) -> Ipv4Addr {
    let inspect: Value = serde_json::from_str(&world.docker_ok(&["service", "inspect", service]))
        .expect("service inspect is JSON");
    inspect[0]["Endpoint"]["VirtualIPs"][0]["Addr"]
        .as_str()
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("{service} has no VIP: {inspect}"))
}

/// The cgroup v2 directory process `pid` is in: its `0::` line of
/// `/proc/<pid>/cgroup`, under the hierarchy's mount point.
fn cgroup2_directory(pid: u32) -> Result<PathBuf, String> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map_err(|e| format!("reading the cgroups of {pid}: {e}"))?;
    let path = cgroups
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or_else(|| format!("process {pid} is in no cgroup v2: {cgroups}"))?;
    let mount = prerequisites::cgroup2_mount()
        .map_err(|e| e.to_string())?
        .ok_or("no cgroup v2 hierarchy is mounted")?;
    Ok(mount.join(path.trim_start_matches('/')))
}

/// Runs `program` (a host binary the task's image need not have) with
/// `args` as a process of `task`: in its network namespace and its cgroup
/// v2, so the socket programs on that cgroup see its calls as the task's
/// own. Its stdout, or why it failed (its stderr).
fn run_in_task(
    world: &World,
    task: &RunningTask,
    program: &Path,
    args: &[&str],
) -> Result<String, String> {
    let pid = world.node(task.node).task_pid(&task.id)?;
    let procs_path = cgroup2_directory(pid)?.join("cgroup.procs");
    let procs = File::options()
        .write(true)
        .open(&procs_path)
        .map_err(|e| format!("opening {}: {e}", procs_path.display()))?;
    let netns = File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| format!("opening the network namespace of {pid}: {e}"))?;
    let mut command = Command::new(program);
    command.args(args);
    // SAFETY: between fork and exec the closure only makes system calls
    // (write, setns), which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // "0" moves the writing process itself.
            nix::unistd::write(&procs, b"0")?;
            setns(&netns, CloneFlags::CLONE_NEWNET)?;
            Ok(())
        });
    }
    let output = command
        .output()
        .map_err(|e| format!("running {}: {e}", program.display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The value of the first `<prefix>` line of a whoami answer.
fn line<'a>(answer: &'a str, prefix: &str) -> &'a str {
    answer
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line: {answer}"))
}

/// The world after setup: the network's VNI, the three VIPs, `web`'s
/// tasks and the client task.
struct Services {
    vni: u32,
    web_vip: Ipv4Addr,
    echo_vip: Ipv4Addr,
    idle_vip: Ipv4Addr,
    web: Vec<RunningTask>,
    echo: Vec<RunningTask>,
    client: RunningTask,
}

/// Creates the network and the four services; waits for their tasks.
fn create_services(world: &World) -> Services {
    world.docker_ok(&["network", "create", "-d", "overlay", "front"]);
    let echo_port = ECHO_PORT.to_string();
    for (name, replicas, command) in [
        ("web", "2", vec![]),
        ("echo", "2", vec!["whoami", "--udp-echo", &echo_port]),
        ("idle", "0", vec![]),
        ("client", "1", vec![]),
    ] {
        world.docker_ok(&service_create_args(
            name,
            &["--replicas", replicas, "--network", "front"],
            &command,
        ));
    }
    let network: Value =
        serde_json::from_str(&world.docker_ok(&["network", "inspect", "front"])).expect("JSON");
    let vni = network[0]["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("front has no VNI: {network}"));
    let services = Services {
        vni,
        web_vip: vip(world, "web"),
        echo_vip: vip(world, "echo"),
        idle_vip: vip(world, "idle"),
        web: world.wait_for_tasks("web", 2),
        echo: world.wait_for_tasks("echo", 2),
        client: world.wait_for_tasks("client", 1).remove(0),
    };
    eprintln!(
        "VIPs web {}, echo {}, idle {}; client {:?}; web {:?}; echo {:?}",
        services.web_vip,
        services.echo_vip,
        services.idle_vip,
        services.client,
        services.web,
        services.echo
    );
    services
}

/// `whoami ARGS` in the client task.
fn exec(world: &World, s: &Services, args: &[&str]) -> Result<String, String> {
    world.node(s.client.node).runc_exec(&s.client.id, args)
}

/// How many calls the client node's socket `hook` counted under `reason`.
fn count(counters: &Counters, hook: Hook, reason: Reason) -> u64 {
    counters.count(hook, reason).expect("REASON_COUNTERS")
}

#[test]
fn a_task_reaches_service_vips_through_its_sockets() {
    require_privileges!();
    require_docker_client!();
    let mut world = World::swarm("socklb", 2).form().expect("forming the swarm");
    let s = create_services(&world);
    let pins = world
        .node(s.client.node)
        .pin_dir()
        .expect("the client's node has pins");
    let maps = OverlayMaps::from_pins(&pins).expect("the client node's maps");
    let counters = Counters::from_pins(&pins).expect("the client node's counters");

    step("TCP: new connections to the VIP reach every backend, which sees the client");
    let web_vip = s.web_vip.to_string();
    eventually("a first answer through the VIP", CONVERGE, || {
        exec(&world, &s, &["whoami", "--get", &web_vip])
    });
    let mut answered = BTreeSet::new();
    for i in 0..REQUESTS {
        let answer = exec(&world, &s, &["whoami", "--get", &web_vip])
            .unwrap_or_else(|e| panic!("request {i} through the VIP failed: {e}"));
        assert!(
            line(&answer, "RemoteAddr: ").starts_with(&format!("{}:", s.client.addr)),
            "the backend saw another address than the client's: {answer}"
        );
        answered.insert(line(&answer, "Hostname: ").to_owned());
    }
    let web_hosts: BTreeSet<String> = s.web.iter().map(|t| world.task_hostname(t)).collect();
    assert_eq!(answered, web_hosts, "every backend answered, nothing else");
    assert!(count(&counters, Hook::SockConnect4, Reason::Translated) >= REQUESTS as u64);

    tcp_flow_is_translated_at_the_socket(&world, &s, (&maps, &counters));
    udp_datagrams_are_translated_both_ways(&world, &s, (&maps, &counters));

    step("a VIP without a backend refuses at once");
    eventually("the idle VIP is balanced at the socket", CONVERGE, || {
        maps.sockets()
            .service(s.idle_vip)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} is not in SOCK_SERVICES", s.idle_vip))
    });
    let refused = exec(&world, &s, &["whoami", "--get", &s.idle_vip.to_string()])
        .expect_err("a connection to idle");
    assert!(refused.contains("Connection refused"), "{refused}");
    let idle_target = format!("{}:{ECHO_PORT}", s.idle_vip);
    let refused = exec(
        &world,
        &s,
        &["whoami", "--udp-probe", &idle_target, "--ip-size", "100"],
    )
    .expect_err("a datagram to idle");
    assert!(refused.contains("Connection refused"), "{refused}");
    assert!(count(&counters, Hook::SockConnect4, Reason::DropNoBackend) >= 1);
    assert!(count(&counters, Hook::SockSendmsg4, Reason::DropNoBackend) >= 1);

    links_outlive_the_agent_and_go_with_their_tasks(&mut world, &s);
}

/// The client task's links stay while its node's `shoald` is killed and
/// restarts; scaling `echo` to zero removes its tasks' links.
fn links_outlive_the_agent_and_go_with_their_tasks(world: &mut World, s: &Services) {
    let web_vip = s.web_vip.to_string();
    step("the client's shoald killed: its task's sockets are still translated");
    world.node_mut(s.client.node).kill9();
    let translated = |world: &World| {
        run_in_task(
            world,
            &s.client,
            &bin_dir().join("whoami"),
            &["--get", &web_vip],
        )
        .and_then(|answer| {
            let peer = line(&answer, "Peer: ");
            if peer == format!("{web_vip}:80") {
                Ok(())
            } else {
                Err(format!("peer {peer}: {answer}"))
            }
        })
    };
    translated(world).unwrap_or_else(|e| panic!("with shoald down: {e}"));
    step("restarted, it adopts the task and keeps its links");
    world.node_mut(s.client.node).start();
    eventually(
        "a translated connection after the restart",
        CONVERGE,
        || translated(world),
    );
    assert_eq!(link_pins(world, s.client.node, &s.client.id), 4);

    step("echo scaled to zero: its tasks' links are removed");
    assert!(s.echo.iter().all(|t| link_pins(world, t.node, &t.id) == 4));
    eventually("echo scaled to zero", CONVERGE, || {
        world
            .node(1)
            .docker(&["service", "scale", "--detach", "echo=0"])
            .expect("a docker client")
    });
    eventually("the echo tasks' link pins are gone", CONVERGE, || {
        let left: Vec<&str> = s
            .echo
            .iter()
            .filter(|t| link_pins(world, t.node, &t.id) > 0)
            .map(|t| t.id.as_str())
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("link pins left for {left:?}"))
        }
    });
}

/// How many socket program links of task `task` are pinned on node `node`.
fn link_pins(world: &World, node: usize, task: &str) -> usize {
    let pins = world.node(node).pin_dir().expect("the node has pins");
    let prefix = format!("link_sock_{task}_");
    std::fs::read_dir(&pins)
        .unwrap_or_else(|e| panic!("reading {}: {e}", pins.display()))
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .count()
}

/// One connection to `web`'s VIP from the host's `whoami` run as a
/// process of the client task: its peer is the VIP, `SOCK_REVERSE` holds
/// its translation and `OVERLAY_CONNTRACK` nothing for its flow.
fn tcp_flow_is_translated_at_the_socket(
    world: &World,
    s: &Services,
    (maps, counters): (&OverlayMaps, &Counters),
) {
    step("the client's socket reports the VIP as its peer");
    let whoami = bin_dir().join("whoami");
    let answer = run_in_task(
        world,
        &s.client,
        &whoami,
        &["--get", &s.web_vip.to_string()],
    )
    .unwrap_or_else(|e| panic!("whoami in the client task: {e}"));
    let vip_side = SocketAddrV4::new(s.web_vip, 80);
    assert_eq!(line(&answer, "Peer: "), vip_side.to_string(), "{answer}");
    let backend: Ipv4Addr = s
        .web
        .iter()
        .find(|t| answer.contains(&format!("IP: {}", t.addr)))
        .and_then(|t| t.addr.parse().ok())
        .unwrap_or_else(|| panic!("answered by no web task: {answer}"));
    let client_side: SocketAddrV4 = line(&answer, "RemoteAddr: ")
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("RemoteAddr: {e}: {answer}"));
    assert!(count(counters, Hook::SockGetpeername4, Reason::Reversed) >= 1);

    step("the socket map held the translation; conntrack holds nothing for the flow");
    let backend_side = SocketAddrV4::new(backend, 80);
    let reverse = maps.sockets().reverse_entries().expect("SOCK_REVERSE");
    assert!(
        reverse
            .iter()
            .any(|e| e.vip == vip_side && e.backend == backend_side),
        "no SOCK_REVERSE entry {backend_side} -> {vip_side}: {reverse:?}"
    );
    for (direction, src, dst) in [
        (FlowDirection::Forward, client_side, vip_side),
        (FlowDirection::Reply, backend_side, client_side),
    ] {
        let flow = Flow {
            protocol: 6,
            src,
            dst,
        };
        assert_eq!(
            maps.conntrack(s.vni, direction, flow).expect("conntrack"),
            None,
            "the tc path tracked {flow:?}"
        );
    }
}

/// A datagram to `echo`'s VIP is echoed, its source shown as the VIP.
fn udp_datagrams_are_translated_both_ways(
    world: &World,
    s: &Services,
    (maps, counters): (&OverlayMaps, &Counters),
) {
    step("UDP: a datagram to the VIP is echoed, from the VIP");
    let echo_target = SocketAddrV4::new(s.echo_vip, ECHO_PORT);
    let target = echo_target.to_string();
    let echoed = eventually("an echo through the VIP", CONVERGE, || {
        exec(
            world,
            s,
            &["whoami", "--udp-probe", &target, "--ip-size", "100"],
        )
    });
    assert!(
        echoed.trim_end().ends_with(&format!(", {target}")),
        "the echo's source is not the VIP: {echoed}"
    );
    let reverse = maps.sockets().reverse_entries().expect("SOCK_REVERSE");
    assert!(
        reverse.iter().any(|e| e.vip == echo_target),
        "no SOCK_REVERSE entry for {target}: {reverse:?}"
    );
    assert!(count(counters, Hook::SockSendmsg4, Reason::Translated) >= 1);
    assert!(count(counters, Hook::SockRecvmsg4, Reason::Reversed) >= 1);
}
