//! End-to-end: real `shoald` processes in node namespaces, real XDP and TCX
//! programs on their underlay interfaces, real traffic between them.

use std::{collections::HashMap, time::Duration};

use aya::programs::loaded_programs;
use serde_json::Value;
use shoal_ebpf_common::{Hook, map_names};
use shoal_netns_tests::{
    World, eventually, require_privileges, step,
    world::{program_ids, protocol_packets, reason_packets},
};

const INGRESS: &str = Hook::XdpUnderlay.as_str();
const EGRESS: &str = Hook::TcUnderlayEgress.as_str();
const WAIT: Duration = Duration::from_secs(20);
/// UDP payload size; the frame is 14 + 20 + 8 bytes longer.
const PAYLOAD: usize = 100;
const FRAME: u64 = 142;

fn status(world: &World, n: usize) -> Value {
    world
        .node(n)
        .status()
        .unwrap_or_else(|e| panic!("status of node-{n}: {e}"))
}

/// The BTF object of each program in `program_ids` (`None`: loaded
/// without BTF, or not loaded).
fn btf_ids(program_ids: &[u64]) -> Vec<Option<u32>> {
    let loaded: HashMap<u64, Option<u32>> = loaded_programs()
        .filter_map(Result::ok)
        .map(|info| (u64::from(info.id()), info.btf_id()))
        .collect();
    program_ids
        .iter()
        .map(|id| loaded.get(id).copied().flatten())
        .collect()
}

/// Sends one datagram from every node to every other and waits until each
/// has counted them, so neighbour resolution is done before counting.
fn warm_up(world: &World) {
    let n = world.nodes().len();
    for from in world.nodes() {
        for to in world.nodes() {
            if from.addr() != to.addr() {
                from.send_udp(to.addr(), 9, 1, PAYLOAD);
            }
        }
    }
    for i in 1..=n {
        eventually(&format!("node-{i} to count the warm-up"), WAIT, || {
            let got = protocol_packets(&status(world, i), INGRESS, "udp");
            if got >= (n - 1) as u64 {
                Ok(())
            } else {
                Err(format!("{got} udp packets"))
            }
        });
    }
}

/// node-1 sends `count` datagrams to node-2 (after the warm-up's one);
/// returns node-2's UDP count once it has them all.
fn send_and_count(world: &World, count: u32) -> u64 {
    world
        .node(1)
        .send_udp(world.node(2).addr(), 9, count, PAYLOAD);
    let expected = u64::from(count) + 1;
    eventually(
        &format!("node-2 to count {expected} datagrams"),
        WAIT,
        || {
            let got = protocol_packets(&status(world, 2), INGRESS, "udp");
            if got >= expected {
                Ok(got)
            } else {
                Err(got.to_string())
            }
        },
    )
}

#[test]
fn three_nodes_count_the_traffic_between_them() {
    const SENT: u32 = 300;
    require_privileges!();
    let mut world = World::new("traffic", 3);
    step("start shoald on 3 nodes");
    world.start_all();
    for i in 1..=3 {
        let s = status(&world, i);
        assert_eq!(s["dataplane"]["start"], "fresh", "node-{i}: {s}");
        assert_eq!(s["hostname"], format!("node-{i}"));
        assert_eq!(
            program_ids(&s).len(),
            3,
            "node-{i} has XDP and tc (egress, ingress) attached: {s}"
        );
        assert!(
            world.node(i).underlay_link_details().contains("prog/xdp"),
            "XDP on node-{i}'s eth0"
        );
        let log = world.node(i).log();
        let btf = btf_ids(&program_ids(&s));
        assert!(
            btf.iter().all(Option::is_some) && !log.contains("BPF_BTF_LOAD"),
            "node-{i}: the kernel took the object's BTF (BTF ids {btf:?}): {log}"
        );
    }
    warm_up(&world);
    let before: Vec<Value> = (1..=3).map(|i| status(&world, i)).collect();
    step("every node sends 300 UDP datagrams to each other node");
    for from in world.nodes() {
        for to in world.nodes() {
            if from.addr() != to.addr() {
                from.send_udp(to.addr(), 9, SENT, PAYLOAD);
            }
        }
    }
    let expected = u64::from(SENT) * 2;
    for i in 1..=3 {
        let after = eventually(
            &format!("node-{i} to count {expected} datagrams in and out"),
            WAIT,
            || {
                let now = status(&world, i);
                let got_in = protocol_packets(&now, INGRESS, "udp")
                    - protocol_packets(&before[i - 1], INGRESS, "udp");
                let got_out = protocol_packets(&now, EGRESS, "udp")
                    - protocol_packets(&before[i - 1], EGRESS, "udp");
                if got_in >= expected && got_out >= expected {
                    Ok(now)
                } else {
                    Err(format!("in {got_in}, out {got_out}"))
                }
            },
        );
        let bytes = |s: &Value| {
            s["dataplane"]["counters"][INGRESS]["protocols"]["udp"]["bytes"]
                .as_u64()
                .unwrap_or(0)
        };
        assert!(
            bytes(&after) - bytes(&before[i - 1]) >= expected * FRAME,
            "node-{i} byte count"
        );
        for reason in ["drop_short_frame", "drop_bad_ip_header"] {
            assert_eq!(
                reason_packets(&after, INGRESS, reason),
                0,
                "node-{i} dropped nothing: {after}"
            );
        }
        assert!(
            reason_packets(&after, INGRESS, "pass_not_ip") > 0,
            "node-{i} saw ARP"
        );
        eprintln!(
            "node-{i}: udp in {} out {}",
            protocol_packets(&after, INGRESS, "udp"),
            protocol_packets(&after, EGRESS, "udp")
        );
    }
}

#[test]
fn kill_9_leaves_programs_counting_and_restart_reuses_the_pins() {
    require_privileges!();
    let mut world = World::new("kill9", 2);
    world.start_all();
    warm_up(&world);
    let target = world.node(2).addr();

    step("node-1 sends 100 datagrams to node-2");
    let counted = send_and_count(&world, 100);
    let before = status(&world, 2);

    step("kill -9 node-2's shoald");
    world.node_mut(2).kill9();
    let pins = world.node(2).pin_dir().expect("node-2 has an ID");
    for pin in [
        "link_xdp_underlay",
        "link_tc_underlay_egress",
        map_names::PROTOCOL_COUNTERS,
        map_names::REASON_COUNTERS,
    ] {
        assert!(pins.join(pin).exists(), "{pin} still pinned after kill -9");
    }
    assert!(
        world.node(2).underlay_link_details().contains("prog/xdp"),
        "XDP still attached"
    );

    step("node-1 sends 50 more while node-2's shoald is down");
    world.node(1).send_udp(target, 9, 50, PAYLOAD);

    step("restart node-2's shoald");
    world.node_mut(2).start();
    let after = eventually(
        "node-2 to report the datagrams sent while it was down",
        WAIT,
        || {
            let now = status(&world, 2);
            let got = protocol_packets(&now, INGRESS, "udp");
            if got >= counted + 50 {
                Ok(now)
            } else {
                Err(format!("{got} < {counted} + 50"))
            }
        },
    );
    assert_eq!(after["dataplane"]["start"], "reused", "{after}");
    assert_eq!(
        program_ids(&after),
        program_ids(&before),
        "same programs, not reloaded"
    );
    eprintln!(
        "node-2 udp before kill {counted}, after restart {}",
        protocol_packets(&after, INGRESS, "udp")
    );
}

#[test]
fn shutdown_detaches_unless_pins_are_kept_and_a_new_build_replaces_programs_in_place() {
    require_privileges!();
    let mut world = World::new("lifecycle", 2);
    world.node_mut(1).start();
    world.node_mut(2).start_with(&["--keep-pins"]);
    warm_up(&world);
    let target = world.node(2).addr();
    let counted = send_and_count(&world, 100);
    let first = status(&world, 2);

    step("SIGTERM with --keep-pins: programs stay attached");
    world.node_mut(2).stop();
    let pins = world.node(2).pin_dir().expect("node-2 has an ID");
    assert!(pins.join("link_xdp_underlay").exists());
    assert!(world.node(2).underlay_link_details().contains("prog/xdp"));
    world.node(1).send_udp(target, 9, 30, PAYLOAD);

    step(
        "pretend the pins came from another build: the restart swaps programs into the same links",
    );
    let record = world.node(2).data_dir().join("dataplane.json");
    let mut recorded: Value =
        serde_json::from_slice(&std::fs::read(&record).expect("record")).expect("json");
    recorded["object_sha256"] = Value::from("an-older-build");
    std::fs::write(&record, serde_json::to_vec(&recorded).expect("json")).expect("write record");
    world.node_mut(2).start();
    let upgraded = status(&world, 2);
    assert_eq!(upgraded["dataplane"]["start"], "upgraded", "{upgraded}");
    let link_ids = |s: &Value| -> Vec<u64> {
        s["dataplane"]["programs"]
            .as_array()
            .expect("programs")
            .iter()
            .filter_map(|p| p["link_id"].as_u64())
            .collect()
    };
    assert_eq!(link_ids(&upgraded), link_ids(&first), "same links");
    assert_ne!(program_ids(&upgraded), program_ids(&first), "new programs");
    assert!(
        protocol_packets(&upgraded, INGRESS, "udp") >= counted + 30,
        "maps reused, datagrams sent while down counted: {upgraded}"
    );

    step("SIGTERM without --keep-pins: detached, pins removed");
    world.node_mut(2).stop();
    assert!(!pins.exists(), "{} removed", pins.display());
    assert!(
        !world.node(2).underlay_link_details().contains("prog/xdp"),
        "XDP detached"
    );
    let log = world.node(2).log();
    assert!(
        log.contains("data plane detached and pins removed"),
        "{log}"
    );
}
