//! The overlay programs (DESIGN §5, data paths 1, 2 and 4), tested two ways.
//!
//! Packet fixtures through `BPF_PROG_TEST_RUN`: the maps are filled through
//! the agent's typed accessors ([`OverlayMaps`]), hand-built frames go into
//! the real programs, and each case checks the tc verdict, the exact frame
//! that comes out and what it added to the overlay counters. The interface a
//! frame arrives on is the `ingress_ifindex` of the `__sk_buff` context
//! passed in, which test runs take as given; those ifindexes exist only in
//! the maps. Redirect helpers only record their target in a test run and
//! return `TC_ACT_REDIRECT`, the tunnel key is not part of a test run's
//! output, and a test run cannot attach tunnel metadata to a frame, so
//! `tc_vxlan_ingress` can only be shown to refuse frames without it.
//!
//! Service VIPs (data path 4) get their own fixture: a VIP balanced by a
//! Maglev table the test writes, conntrack read back through the agent's
//! accessors, and every rewritten frame's IPv4 and L4 checksums verified.
//!
//! The underlay hook's decapsulation gets a fixture of its own: VXLAN for
//! this node in, the inner frame out to the task; anything else left to
//! the stack or dropped. The encapsulation is checked byte for byte in the
//! first fixture (`tc_endpoint_ingress` tunnelling to another node).
//!
//! Hence one end-to-end test as well: two node namespaces of the harness's
//! [`World`] (no shoald), task namespaces joined to them by veth pairs, a
//! flow-based VXLAN device per node for what tc leaves to it, the programs
//! attached with TCX by the test itself, and pings and a TCP transfer
//! between the tasks.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::{Ipv4Addr, SocketAddrV4},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use aya::programs::TcAttachType;
use pnet_packet::{
    Packet,
    arp::{ArpHardwareTypes, ArpOperation, ArpOperations, ArpPacket, MutableArpPacket},
    ethernet::{EtherTypes, EthernetPacket},
    ip::IpNextHeaderProtocols,
    ipv4::Ipv4Packet,
    tcp::{TcpFlags, TcpPacket},
    udp::UdpPacket,
};
use shoal_agent::dataplane::{
    Counters, Endpoint, EndpointLocation, Flow, FlowDirection, Interface, OverlayMaps, Underlay,
    load_object,
};
use shoal_ebpf_common::{
    Hook, OVERLAY_MAGLEV_SIZE, PINNED_LAYOUTS, REASON_COUNTER_SLOTS, Reason, VXLAN_ENCAP_LEN,
    map_names, program_names,
};
use shoal_netns_tests::{
    World, eventually,
    fixtures::{
        PinDir, TC_ACT_REDIRECT, TC_ACT_SHOT, TC_NEXT, TcRan, classifier, load_classifier,
        packets::{
            ETHERNET_LEN, L4, VXLAN_PORT, assert_checksums, assert_vxlan, ethernet, ipv4_packet,
            ipv6_packet, vxlan_frame, with_tcp_flags,
        },
        run_tc,
    },
    netns::NetNs,
    require_privileges, step,
};

const BLUE: u32 = 4097;
const RED: u32 = 4098;

/// Host-side veths of local tasks (they exist only in the maps).
const IF_A: u32 = 901;
const IF_B: u32 = 902;
const IF_RED: u32 = 903;
/// Not registered in `OVERLAY_INTERFACES`.
const IF_FOREIGN: u32 = 999;
const VXLAN_IFINDEX: u32 = 950;

const IF_A_MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 0x01];
const IF_B_MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 0x02];
const IF_RED_MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 0x03];

const TASK_A: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const TASK_A_MAC: [u8; 6] = [0x02, 0x42, 10, 0, 1, 2];
const TASK_B: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 3);
const TASK_B_MAC: [u8; 6] = [0x02, 0x42, 10, 0, 1, 3];
/// On another node.
const TASK_D: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 4);
const TASK_D_MAC: [u8; 6] = [0x02, 0x42, 10, 0, 1, 4];
/// This node's and another node's underlay addresses.
const NODE_1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const NODE_2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The underlay interface the programs send tunnelled frames out of: `lo`,
/// the one interface whose MTU a test run can check in any namespace.
const UNDERLAY_IFINDEX: u32 = 1;
/// The node's underlay as `fill_maps` writes it.
const UNDERLAY: Underlay = Underlay {
    vxlan_ifindex: VXLAN_IFINDEX,
    underlay_ifindex: UNDERLAY_IFINDEX,
    node_ip: NODE_1,
    vxlan_port: VXLAN_PORT,
};
/// The same subnet's address, but only in the red network.
const RED_TASK: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 7);
const RED_TASK_MAC: [u8; 6] = [0x02, 0x42, 10, 0, 1, 7];
/// In the blue network, but its interface is registered as red's.
const MISWIRED: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 8);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
const NOBODY: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 99);

fn arp(
    operation: ArpOperation,
    sender_mac: [u8; 6],
    sender: Ipv4Addr,
    target: Ipv4Addr,
) -> Vec<u8> {
    let mut l3 = vec![0u8; 28];
    let mut arp = MutableArpPacket::new(&mut l3).expect("buffer fits");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    arp.set_operation(operation);
    arp.set_sender_hw_addr(sender_mac.into());
    arp.set_sender_proto_addr(sender);
    arp.set_target_hw_addr([0; 6].into());
    arp.set_target_proto_addr(target);
    // Padded to Ethernet's 60-byte minimum, as a real request is.
    ethernet(
        [0xff; 6],
        sender_mac,
        EtherTypes::Arp,
        &[l3, vec![0; 18]].concat(),
    )
}

/// A UDP datagram without a checksum from `src`:40000 to `dst`:8080 in a
/// frame from task A.
fn udp4(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    l4(
        L4::Udp { checksummed: false },
        SocketAddrV4::new(src, 40000),
        SocketAddrV4::new(dst, 8080),
    )
}

fn ipv6() -> Vec<u8> {
    ethernet(
        IF_A_MAC,
        TASK_A_MAC,
        EtherTypes::Ipv6,
        &ipv6_packet(IpNextHeaderProtocols::Udp, 8),
    )
}

/// An IPv4 packet of [`ipv4_packet`] from `src` to `dst` in a frame from
/// task A.
fn l4(l4: L4, src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
    ethernet(
        IF_A_MAC,
        TASK_A_MAC,
        EtherTypes::Ipv4,
        &ipv4_packet(l4, src, dst, &[]),
    )
}

/// A TCP SYN (a new connection).
const SYN: L4 = L4::Tcp(TcpFlags::SYN);
/// A UDP datagram with a checksum.
const UDP: L4 = L4::Udp { checksummed: true };

/// The addresses and ports of a TCP or UDP frame, after checking that its
/// IPv4 header checksum and its L4 checksum (pseudo header included; a UDP
/// one present) are correct and that the L4 payload is what was sent. A
/// frame tunnelled to node 2 is checked inside its (checked) VXLAN.
fn checked_flow(frame: &[u8], sent: &[u8]) -> (SocketAddrV4, SocketAddrV4) {
    let frame = if frame.len() == sent.len() + VXLAN_ENCAP_LEN {
        let inner = &frame[VXLAN_ENCAP_LEN..];
        assert_vxlan(frame, (NODE_1, NODE_2), BLUE, inner);
        inner
    } else {
        frame
    };
    assert_checksums(frame, "rewritten");
    let ip = Ipv4Packet::new(&frame[ETHERNET_LEN..]).expect("ipv4");
    let (src, dst) = (ip.get_source(), ip.get_destination());
    let tcp = ip.get_next_level_protocol() == IpNextHeaderProtocols::Tcp;
    let ports = if tcp {
        let tcp = TcpPacket::new(ip.payload()).expect("tcp");
        (tcp.get_source(), tcp.get_destination())
    } else {
        let udp = UdpPacket::new(ip.payload()).expect("udp");
        assert_ne!(udp.get_checksum(), 0, "UDP checksum");
        (udp.get_source(), udp.get_destination())
    };
    let header = ETHERNET_LEN + 20 + if tcp { 16 } else { 6 };
    assert_eq!(
        &frame[header + 2..],
        &sent[header + 2..],
        "L4 payload unchanged"
    );
    (
        SocketAddrV4::new(src, ports.0),
        SocketAddrV4::new(dst, ports.1),
    )
}

fn fill_maps(maps: &mut OverlayMaps) {
    let interfaces = [
        (IF_A, BLUE, IF_A_MAC),
        (IF_B, BLUE, IF_B_MAC),
        (IF_RED, RED, IF_RED_MAC),
    ];
    for (ifindex, vni, mac) in interfaces {
        maps.upsert_interface(ifindex, Interface { vni, mac })
            .expect("insert interface");
    }
    let local = |ifindex| EndpointLocation::Local { ifindex };
    let endpoints = [
        (BLUE, TASK_A, TASK_A_MAC, local(IF_A)),
        (BLUE, TASK_B, TASK_B_MAC, local(IF_B)),
        (
            BLUE,
            TASK_D,
            TASK_D_MAC,
            EndpointLocation::Remote { node: NODE_2 },
        ),
        (RED, RED_TASK, RED_TASK_MAC, local(IF_RED)),
        (BLUE, MISWIRED, RED_TASK_MAC, local(IF_RED)),
    ];
    for (vni, ip, mac, location) in endpoints {
        maps.upsert_endpoint(vni, ip, Endpoint { mac, location })
            .expect("insert endpoint");
    }
    maps.set_underlay(&UNDERLAY).expect("set config");
}

/// One loaded object with `programs` loaded, its overlay maps filled as
/// [`fill_maps`] does, and its counters, pinned under a directory of its
/// own (`tag`).
struct Plane {
    ebpf: aya::Ebpf,
    maps: OverlayMaps,
    counters: Counters,
    pins: PinDir,
}

impl Plane {
    fn new(tag: &str, programs: &[&str]) -> Self {
        let pins = PinDir::new(tag);
        let mut ebpf = load_object(pins.path()).expect("load object");
        for program in programs {
            load_classifier(&mut ebpf, program);
        }
        let mut maps = OverlayMaps::from_ebpf(&mut ebpf).expect("overlay maps");
        let counters = Counters::from_ebpf(&mut ebpf).expect("counter maps");
        fill_maps(&mut maps);
        Self {
            ebpf,
            maps,
            counters,
            pins,
        }
    }
}

/// Counts per (hook, reason) that the cases below are expected to add.
#[derive(Default)]
struct Expected(BTreeMap<(u32, u32), u64>);

impl Expected {
    fn add(&mut self, hook: Hook, reason: Reason) {
        *self.0.entry((hook as u32, reason as u32)).or_default() += 1;
    }

    /// Every hook's row, as the node's status shows them: exactly the
    /// reasons expected, nothing else counted.
    fn check(&self, counters: &Counters) {
        let status = counters.read().expect("read counters");
        assert_eq!(status.len(), Hook::ALL.len(), "{status:?}");
        for hook in Hook::ALL {
            let want: BTreeMap<String, u64> = Reason::ALL
                .into_iter()
                .filter_map(|reason| {
                    let packets = self.0.get(&(hook as u32, reason as u32))?;
                    Some((reason.as_str().to_owned(), *packets))
                })
                .collect();
            assert_eq!(
                status[hook.as_str()].verdicts,
                want,
                "{} counted as expected",
                hook.as_str()
            );
        }
    }
}

fn assert_arp_reply(ran: &TcRan, asked_for: Ipv4Addr, iface_mac: [u8; 6]) {
    assert_eq!(ran.action, TC_ACT_REDIRECT, "ARP reply sent back");
    let eth = EthernetPacket::new(&ran.frame).expect("ethernet");
    assert_eq!(eth.get_destination().octets(), TASK_A_MAC, "to the asker");
    assert_eq!(eth.get_source().octets(), iface_mac);
    assert_eq!(eth.get_ethertype(), EtherTypes::Arp);
    let arp = ArpPacket::new(eth.payload()).expect("arp");
    assert_eq!(arp.get_hardware_type(), ArpHardwareTypes::Ethernet);
    assert_eq!(arp.get_protocol_type(), EtherTypes::Ipv4);
    assert_eq!(arp.get_hw_addr_len(), 6);
    assert_eq!(arp.get_proto_addr_len(), 4);
    assert_eq!(arp.get_operation(), ArpOperations::Reply);
    assert_eq!(arp.get_sender_hw_addr().octets(), iface_mac);
    assert_eq!(arp.get_sender_proto_addr(), asked_for);
    assert_eq!(arp.get_target_hw_addr().octets(), TASK_A_MAC);
    assert_eq!(arp.get_target_proto_addr(), TASK_A);
    assert_eq!(ran.frame.len(), 60, "the frame keeps its length");
}

/// Asserts a forwarded frame: the action, the new Ethernet addresses and an
/// IP packet (and everything after it) identical to what was sent.
fn assert_forwarded(ran: &TcRan, sent: &[u8], dst: [u8; 6], src: [u8; 6]) {
    assert_eq!(ran.action, TC_ACT_REDIRECT);
    let eth = EthernetPacket::new(&ran.frame).expect("ethernet");
    assert_eq!(eth.get_destination().octets(), dst, "destination MAC");
    assert_eq!(eth.get_source().octets(), src, "source MAC");
    assert_eq!(eth.get_ethertype(), EtherTypes::Ipv4);
    assert_eq!(&ran.frame[12..], &sent[12..], "IP packet unchanged");
}

fn assert_dropped(ran: &TcRan) {
    assert_eq!(ran.action, TC_ACT_SHOT, "dropped");
}

#[test]
fn overlay_programs_answer_arp_forward_isolate_and_count() {
    require_privileges!();
    let Plane {
        ebpf,
        maps: _,
        counters,
        pins: _pins,
    } = Plane::new(
        "overlay-fixtures",
        &[
            program_names::TC_ENDPOINT_INGRESS,
            program_names::TC_VXLAN_INGRESS,
        ],
    );
    let endpoint = classifier(&ebpf, program_names::TC_ENDPOINT_INGRESS);
    let mut expected = Expected::default();
    let ingress = Hook::TcEndpointIngress;

    // Proxy ARP: the gateway and a peer both resolve to the interface's MAC.
    for asked_for in [GATEWAY, TASK_B, NOBODY] {
        let request = arp(ArpOperations::Request, TASK_A_MAC, TASK_A, asked_for);
        assert_arp_reply(&run_tc(endpoint, &request, Some(IF_A)), asked_for, IF_A_MAC);
        expected.add(ingress, Reason::ArpReply);
    }
    let red_request = arp(ArpOperations::Request, TASK_A_MAC, TASK_A, GATEWAY);
    assert_arp_reply(
        &run_tc(endpoint, &red_request, Some(IF_RED)),
        GATEWAY,
        IF_RED_MAC,
    );
    expected.add(ingress, Reason::ArpReply);
    // Gratuitous ARP, a probe (sender 0.0.0.0) and a reply: not answered.
    for unanswered in [
        arp(ArpOperations::Request, TASK_A_MAC, TASK_A, TASK_A),
        arp(
            ArpOperations::Request,
            TASK_A_MAC,
            Ipv4Addr::UNSPECIFIED,
            TASK_A,
        ),
        arp(ArpOperations::Reply, TASK_A_MAC, TASK_A, GATEWAY),
    ] {
        assert_dropped(&run_tc(endpoint, &unanswered, Some(IF_A)));
        expected.add(ingress, Reason::DropArpNotAnswered);
    }

    // Data path 1: A → B on this node, MACs as B resolved them.
    let to_b = udp4(TASK_A, TASK_B);
    assert_forwarded(
        &run_tc(endpoint, &to_b, Some(IF_A)),
        &to_b,
        TASK_B_MAC,
        IF_B_MAC,
    );
    expected.add(ingress, Reason::RedirectLocal);

    // Unknown address, and an address that exists only in the red network:
    // blue cannot reach it (isolation), red can.
    for dst in [NOBODY, RED_TASK] {
        assert_dropped(&run_tc(endpoint, &udp4(TASK_A, dst), Some(IF_A)));
        expected.add(ingress, Reason::DropNoEndpoint);
    }
    let red_to_red = udp4(TASK_A, RED_TASK);
    assert_forwarded(
        &run_tc(endpoint, &red_to_red, Some(IF_RED)),
        &red_to_red,
        RED_TASK_MAC,
        IF_RED_MAC,
    );
    expected.add(ingress, Reason::RedirectLocal);
    // A blue endpoint behind a red interface is never delivered to.
    assert_dropped(&run_tc(endpoint, &udp4(TASK_A, MISWIRED), Some(IF_A)));
    expected.add(ingress, Reason::DropNoTargetInterface);

    // Not IPv4, and broken IPv4 headers (IHL below 5, version 6), from an
    // overlay interface. (Test runs refuse frames with truncated headers.)
    assert_dropped(&run_tc(endpoint, &ipv6(), Some(IF_A)));
    expected.add(ingress, Reason::DropNotIpv4);
    for version_ihl in [0x44, 0x65] {
        let mut broken = to_b.clone();
        broken[14] = version_ihl;
        assert_dropped(&run_tc(endpoint, &broken, Some(IF_A)));
        expected.add(ingress, Reason::DropBadHeader);
    }

    // Frames of interfaces the agent did not register pass unchanged.
    for (frame, ifindex) in [
        (&to_b, Some(IF_FOREIGN)),
        (&to_b, None),
        (&red_request, None),
    ] {
        let ran = run_tc(endpoint, frame, ifindex);
        assert_eq!(ran.action, TC_NEXT, "passed on");
        assert_eq!(&ran.frame, frame, "unchanged");
        expected.add(ingress, Reason::PassNotOurs);
    }

    // The VXLAN hook trusts only what the VXLAN device decapsulated: a frame
    // without tunnel metadata (all a test run can make) is dropped.
    let vxlan = classifier(&ebpf, program_names::TC_VXLAN_INGRESS);
    let ran = run_tc(vxlan, &to_b, Some(VXLAN_IFINDEX));
    assert_dropped(&ran);
    assert_eq!(ran.frame, to_b, "left as it was");
    expected.add(Hook::TcVxlanIngress, Reason::DropNoTunnelKey);

    expected.check(&counters);
}

#[test]
fn frames_for_other_nodes_are_tunnelled_by_tc_or_through_the_device() {
    require_privileges!();
    let Plane {
        ebpf,
        mut maps,
        counters,
        pins: _pins,
    } = Plane::new("overlay-tunnel", &[program_names::TC_ENDPOINT_INGRESS]);
    let endpoint = classifier(&ebpf, program_names::TC_ENDPOINT_INGRESS);
    let mut expected = Expected::default();
    let ingress = Hook::TcEndpointIngress;

    // Data path 2: A → D on node 2, encapsulated here: outer headers from
    // this node to D's, the inner frame untouched but for D's MAC.
    let to_d = udp4(TASK_A, TASK_D);
    let ran = run_tc(endpoint, &to_d, Some(IF_A));
    assert_eq!(ran.action, TC_ACT_REDIRECT, "sent out of the underlay");
    let inner = [&TASK_D_MAC[..], &to_d[6..]].concat();
    assert_vxlan(&ran.frame, (NODE_1, NODE_2), BLUE, &inner);
    expected.add(ingress, Reason::RedirectRemote);
    // Without the node's address (or an underlay whose MTU can be checked)
    // the frame goes through the VXLAN device, with the same inner frame.
    for underlay in [
        Underlay {
            node_ip: Ipv4Addr::UNSPECIFIED,
            ..UNDERLAY
        },
        Underlay {
            underlay_ifindex: IF_FOREIGN,
            ..UNDERLAY
        },
    ] {
        maps.set_underlay(&underlay).expect("set config");
        assert_forwarded(
            &run_tc(endpoint, &to_d, Some(IF_A)),
            &to_d,
            TASK_D_MAC,
            TASK_A_MAC,
        );
        expected.add(ingress, Reason::RedirectRemoteDevice);
    }
    // Without a VXLAN device either there is nowhere to send it.
    maps.set_underlay(&Underlay {
        vxlan_ifindex: 0,
        node_ip: Ipv4Addr::UNSPECIFIED,
        ..UNDERLAY
    })
    .expect("clear config");
    assert_dropped(&run_tc(endpoint, &to_d, Some(IF_A)));
    expected.add(ingress, Reason::DropNoVxlanDevice);
    expected.check(&counters);
}

#[test]
fn the_underlay_hook_decapsulates_vxlan_for_this_node_and_delivers_it() {
    require_privileges!();
    let Plane {
        ebpf,
        maps: _,
        counters,
        pins: _pins,
    } = Plane::new("overlay-decap", &[program_names::TC_UNDERLAY_INGRESS]);
    let underlay = classifier(&ebpf, program_names::TC_UNDERLAY_INGRESS);
    let mut expected = Expected::default();
    let hook = Hook::TcUnderlayIngress;
    let from_d = udp4(TASK_D, TASK_B);
    let tunnelled = |vni, inner: &[u8]| vxlan_frame((NODE_2, NODE_1), VXLAN_PORT, vni, inner);

    // D's frame for B: the outer headers go, B gets the inner IPv4 packet
    // with the MACs it resolved.
    let ran = run_tc(underlay, &tunnelled(Some(BLUE), &from_d), None);
    assert_forwarded(&ran, &from_d, TASK_B_MAC, IF_B_MAC);
    assert_eq!(ran.frame.len(), from_d.len(), "exactly the inner frame");
    expected.add(hook, Reason::RedirectLocal);

    // Not VXLAN for this node: left to the stack, byte for byte.
    let mut fragment = tunnelled(Some(BLUE), &from_d);
    fragment[ETHERNET_LEN + 6] = 0x20; // more fragments
    for frame in [
        vxlan_frame((NODE_1, NODE_2), VXLAN_PORT, Some(BLUE), &from_d),
        vxlan_frame((NODE_2, NODE_1), VXLAN_PORT + 1, Some(BLUE), &from_d),
        fragment,
        udp4(TASK_D, TASK_B),
    ] {
        let ran = run_tc(underlay, &frame, None);
        assert_eq!(ran.action, TC_NEXT, "passed on");
        assert_eq!(ran.frame, frame, "unchanged");
        expected.add(hook, Reason::PassNotOurs);
    }

    // VXLAN without a VNI, or around something else than IPv4: dropped.
    for frame in [tunnelled(None, &from_d), tunnelled(Some(BLUE), &ipv6())] {
        assert_dropped(&run_tc(underlay, &frame, None));
        expected.add(hook, Reason::DropBadHeader);
    }
    // For an address of another network, or a task on another node.
    assert_dropped(&run_tc(underlay, &tunnelled(Some(RED), &from_d), None));
    expected.add(hook, Reason::DropNoEndpoint);
    let to_d = udp4(TASK_B, TASK_D);
    assert_dropped(&run_tc(underlay, &tunnelled(Some(BLUE), &to_d), None));
    expected.add(hook, Reason::DropNotLocal);

    expected.check(&counters);
}

/// A service VIP of the blue network.
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 50);
/// Its Maglev slot in the fixture.
const VIP_SLOT: u32 = 7;

#[test]
#[expect(
    clippy::too_many_lines,
    reason = "one flow followed through table changes, replies and drains"
)]
fn service_vips_balance_track_flows_and_translate_replies() {
    require_privileges!();
    let Plane {
        ebpf,
        mut maps,
        counters,
        pins,
    } = Plane::new("overlay-vip", &[program_names::TC_ENDPOINT_INGRESS]);
    let endpoint = classifier(&ebpf, program_names::TC_ENDPOINT_INGRESS);
    let mut expected = Expected::default();
    let ingress = Hook::TcEndpointIngress;
    let size = OVERLAY_MAGLEV_SIZE as usize;
    let client = |port| SocketAddrV4::new(TASK_A, port);
    let vip = |port| SocketAddrV4::new(VIP, port);

    // The VIP with every slot on B (local): a SYN to VIP:80 goes to B:80,
    // checksums fixed, both conntrack entries written.
    maps.set_maglev_table(VIP_SLOT, &vec![TASK_B; size])
        .expect("table");
    maps.upsert_service(BLUE, VIP, VIP_SLOT).expect("service");
    sockets_mirror_the_services(&mut maps, pins.path());
    let syn = l4(SYN, client(40_001), vip(80));
    let ran = run_tc(endpoint, &syn, Some(IF_A));
    assert_eq!(ran.action, TC_ACT_REDIRECT);
    assert_eq!(
        &ran.frame[..12],
        &[TASK_B_MAC, IF_B_MAC].concat(),
        "to B's veth"
    );
    assert_eq!(
        checked_flow(&ran.frame, &syn),
        (client(40_001), SocketAddrV4::new(TASK_B, 80))
    );
    expected.add(ingress, Reason::RedirectLocal);
    let forward = Flow {
        protocol: 6,
        src: client(40_001),
        dst: vip(80),
    };
    let reply = Flow {
        protocol: 6,
        src: SocketAddrV4::new(TASK_B, 80),
        dst: client(40_001),
    };
    assert_eq!(
        maps.conntrack(BLUE, FlowDirection::Forward, forward)
            .expect("ct"),
        Some(TASK_B)
    );
    assert_eq!(
        maps.conntrack(BLUE, FlowDirection::Reply, reply)
            .expect("ct"),
        Some(VIP)
    );

    // The table moves every slot to D (remote): the tracked flow's next
    // segments stay on B, a new flow goes to D through the tunnel.
    maps.set_maglev_table(VIP_SLOT, &vec![TASK_D; size])
        .expect("table");
    let segment = with_tcp_flags(syn.clone(), TcpFlags::ACK);
    let ran = run_tc(endpoint, &segment, Some(IF_A));
    assert_eq!(&ran.frame[..6], &TASK_B_MAC, "still B");
    assert_eq!(
        checked_flow(&ran.frame, &segment).1,
        SocketAddrV4::new(TASK_B, 80)
    );
    expected.add(ingress, Reason::RedirectLocal);
    let other = l4(SYN, client(40_002), vip(80));
    let ran = run_tc(endpoint, &other, Some(IF_A));
    assert_eq!(ran.action, TC_ACT_REDIRECT);
    assert_eq!(&ran.frame[..6], &TASK_D_MAC, "to D, tunnelled");
    assert_eq!(
        checked_flow(&ran.frame, &other).1,
        SocketAddrV4::new(TASK_D, 80)
    );
    expected.add(ingress, Reason::RedirectRemote);

    // B's reply to the first flow leaves B's veth with the VIP as source.
    let answer = {
        let mut frame = with_tcp_flags(
            l4(SYN, SocketAddrV4::new(TASK_B, 80), client(40_001)),
            TcpFlags::SYN | TcpFlags::ACK,
        );
        frame[6..12].copy_from_slice(&TASK_B_MAC);
        frame
    };
    let ran = run_tc(endpoint, &answer, Some(IF_B));
    assert_eq!(ran.action, TC_ACT_REDIRECT);
    assert_eq!(
        &ran.frame[..12],
        &[TASK_A_MAC, IF_A_MAC].concat(),
        "to A's veth"
    );
    assert_eq!(checked_flow(&ran.frame, &answer), (vip(80), client(40_001)));
    expected.add(ingress, Reason::RedirectLocal);
    // The same packet from a flow that was never balanced is left alone.
    let direct = {
        let mut frame = with_tcp_flags(
            l4(SYN, SocketAddrV4::new(TASK_B, 80), client(40_009)),
            TcpFlags::SYN | TcpFlags::ACK,
        );
        frame[6..12].copy_from_slice(&TASK_B_MAC);
        frame
    };
    let ran = run_tc(endpoint, &direct, Some(IF_B));
    assert_eq!(&ran.frame[12..], &direct[12..], "not translated");
    expected.add(ingress, Reason::RedirectLocal);

    // A reused client port: A opens a direct connection to B:80 from the
    // port of the balanced flow. Its SYN drops the flow's reply entry, so
    // B's answer to the direct connection keeps B's address.
    let direct_syn = l4(SYN, client(40_001), SocketAddrV4::new(TASK_B, 80));
    let ran = run_tc(endpoint, &direct_syn, Some(IF_A));
    assert_eq!(
        &ran.frame[12..],
        &direct_syn[12..],
        "a direct SYN is not translated"
    );
    expected.add(ingress, Reason::RedirectLocal);
    assert_eq!(
        maps.conntrack(BLUE, FlowDirection::Reply, reply)
            .expect("ct"),
        None,
        "the stale reply entry is gone"
    );
    let ran = run_tc(endpoint, &answer, Some(IF_B));
    assert_eq!(&ran.frame[12..], &answer[12..], "B's own address stays");
    expected.add(ingress, Reason::RedirectLocal);
    // Through the VIP again on the same port: a SYN is a new connection,
    // so it takes its backend from the table (D now, not the tracked B),
    // and both entries are written for it.
    let ran = run_tc(endpoint, &syn, Some(IF_A));
    assert_eq!(
        checked_flow(&ran.frame, &syn).1,
        SocketAddrV4::new(TASK_D, 80)
    );
    expected.add(ingress, Reason::RedirectRemote);
    assert_eq!(
        maps.conntrack(BLUE, FlowDirection::Forward, forward)
            .expect("ct"),
        Some(TASK_D)
    );
    assert_eq!(
        maps.conntrack(
            BLUE,
            FlowDirection::Reply,
            Flow {
                src: SocketAddrV4::new(TASK_D, 80),
                ..reply
            }
        )
        .expect("ct"),
        Some(VIP)
    );

    // UDP to any port of the VIP is balanced too, the port kept.
    let datagram = l4(UDP, client(53_000), vip(5353));
    let ran = run_tc(endpoint, &datagram, Some(IF_A));
    assert_eq!(
        checked_flow(&ran.frame, &datagram),
        (client(53_000), SocketAddrV4::new(TASK_D, 5353))
    );
    expected.add(ingress, Reason::RedirectRemote);

    // A table split between B and D: new flows land on both, by hash.
    let split: Vec<Ipv4Addr> = (0..size)
        .map(|i| if i % 2 == 0 { TASK_B } else { TASK_D })
        .collect();
    maps.set_maglev_table(VIP_SLOT, &split).expect("table");
    let mut per_backend = BTreeMap::<Ipv4Addr, u32>::new();
    let mut ports_on_b = Vec::new();
    for port in 41_000..41_040 {
        let ran = run_tc(endpoint, &l4(SYN, client(port), vip(80)), Some(IF_A));
        let backend = *checked_flow(&ran.frame, &l4(SYN, client(port), vip(80)))
            .1
            .ip();
        *per_backend.entry(backend).or_default() += 1;
        let reason = if backend == TASK_B {
            ports_on_b.push(port);
            Reason::RedirectLocal
        } else {
            Reason::RedirectRemote
        };
        expected.add(ingress, reason);
        let tracked = maps.conntrack(
            BLUE,
            FlowDirection::Forward,
            Flow {
                protocol: 6,
                src: client(port),
                dst: vip(80),
            },
        );
        assert_eq!(tracked.expect("ct"), Some(backend));
    }
    assert_eq!(per_backend.len(), 2, "{per_backend:?}");
    assert!(per_backend.values().all(|&n| n >= 8), "{per_backend:?}");

    // Draining: with B out of the table its established flows stay and a
    // new connection on a tracked tuple (a SYN) goes to the table's D;
    // once B's endpoint is gone (the task stopped), its flows move to a
    // backend that exists.
    maps.set_maglev_table(VIP_SLOT, &vec![TASK_D; size])
        .expect("table");
    let on_b = |i: usize| with_tcp_flags(l4(SYN, client(ports_on_b[i]), vip(80)), TcpFlags::ACK);
    let ran = run_tc(endpoint, &on_b(0), Some(IF_A));
    assert_eq!(
        checked_flow(&ran.frame, &on_b(0)).1,
        SocketAddrV4::new(TASK_B, 80),
        "an established flow stays on the draining B"
    );
    expected.add(ingress, Reason::RedirectLocal);
    let reused = l4(SYN, client(ports_on_b[0]), vip(80));
    let ran = run_tc(endpoint, &reused, Some(IF_A));
    assert_eq!(
        checked_flow(&ran.frame, &reused).1,
        SocketAddrV4::new(TASK_D, 80),
        "a new connection never goes to the draining B"
    );
    expected.add(ingress, Reason::RedirectRemote);
    maps.remove_endpoint(BLUE, TASK_B).expect("remove B");
    let ran = run_tc(endpoint, &on_b(1), Some(IF_A));
    assert_eq!(
        checked_flow(&ran.frame, &on_b(1)).1,
        SocketAddrV4::new(TASK_D, 80)
    );
    expected.add(ingress, Reason::RedirectRemote);
    let moved = Flow {
        protocol: 6,
        src: client(ports_on_b[1]),
        dst: vip(80),
    };
    assert_eq!(
        maps.conntrack(BLUE, FlowDirection::Forward, moved)
            .expect("ct"),
        Some(TASK_D)
    );

    // ICMP to a VIP, and a VIP without backends, are dropped and counted;
    // the VIP is only a VIP in its own network.
    let echo = l4(L4::Icmp, client(0), vip(0));
    assert_dropped(&run_tc(endpoint, &echo, Some(IF_A)));
    expected.add(ingress, Reason::DropVipProtocol);
    maps.set_maglev_table(VIP_SLOT, &vec![Ipv4Addr::UNSPECIFIED; size])
        .expect("table");
    assert_dropped(&run_tc(
        endpoint,
        &l4(SYN, client(40_100), vip(80)),
        Some(IF_A),
    ));
    expected.add(ingress, Reason::DropNoBackend);
    assert_dropped(&run_tc(
        endpoint,
        &l4(SYN, client(40_101), vip(80)),
        Some(IF_RED),
    ));
    expected.add(ingress, Reason::DropNoEndpoint);

    // A removed VIP is an unknown address again, at the socket too.
    assert!(maps.remove_service(BLUE, VIP).expect("remove"));
    assert!(!maps.remove_service(BLUE, VIP).expect("remove again"));
    assert!(maps.services().expect("services").is_empty());
    assert!(
        maps.sockets()
            .services()
            .expect("socket services")
            .is_empty()
    );
    assert_dropped(&run_tc(
        endpoint,
        &l4(SYN, client(40_102), vip(80)),
        Some(IF_A),
    ));
    expected.add(ingress, Reason::DropNoEndpoint);

    // What the programs could not use is refused.
    assert!(maps.set_maglev_table(VIP_SLOT, &[TASK_B]).is_err());
    assert!(maps.set_maglev_table(1 << 20, &vec![TASK_B; size]).is_err());
    assert!(maps.upsert_service(0, VIP, VIP_SLOT).is_err());
    assert_eq!(
        maps.maglev_entry(VIP_SLOT, 0).expect("entry"),
        Ipv4Addr::UNSPECIFIED
    );

    expected.check(&counters);
}

/// The socket hooks balance the VIP written by `upsert_service` over the
/// same slot, keyed by its address alone; a start mirrors
/// `OVERLAY_SERVICES` into `SOCK_SERVICES` (a VIP missing there is
/// written, a stray one removed).
fn sockets_mirror_the_services(maps: &mut OverlayMaps, pins: &Path) {
    assert_eq!(
        maps.sockets().service(VIP).expect("socket service"),
        Some(VIP_SLOT)
    );
    let pinned = aya::maps::MapData::from_pin(pins.join(map_names::SOCK_SERVICES))
        .and_then(aya::maps::Map::from_map_data)
        .expect("SOCK_SERVICES pinned");
    let mut sock_services: aya::maps::HashMap<_, u32, u32> =
        aya::maps::HashMap::try_from(pinned).expect("a hash map");
    sock_services
        .remove(&u32::from_ne_bytes(VIP.octets()))
        .expect("remove the VIP");
    let stray = Ipv4Addr::new(10, 0, 9, 9);
    sock_services
        .insert(u32::from_ne_bytes(stray.octets()), 3, 0)
        .expect("insert a stray VIP");
    maps.mirror_services_to_sockets().expect("mirror");
    assert_eq!(
        maps.sockets().services().expect("socket services"),
        BTreeMap::from([(VIP, VIP_SLOT)])
    );
}

/// `(key size, value size, entries)` of the map pinned at `path`.
fn pinned_layout(path: &Path) -> (u32, u32, u32) {
    let info = aya::maps::MapData::from_pin(path)
        .and_then(|map| map.info())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (info.key_size(), info.value_size(), info.max_entries())
}

#[test]
fn pinned_maps_have_their_declared_layouts_and_stale_pins_are_recreated() {
    require_privileges!();
    let pins = PinDir::new("overlay-layouts");
    let ebpf = load_object(pins.path()).expect("load object");
    for layout in PINNED_LAYOUTS {
        assert_eq!(
            pinned_layout(&pins.path().join(layout.name)),
            (layout.key_size, layout.value_size, layout.max_entries),
            "{} as the programs declare it",
            layout.name
        );
    }
    // An older build's counters (another size) pinned under the name, and
    // an endpoint that a reload must keep.
    let stale = pins.path().join("stale");
    ebpf.map(map_names::OVERLAY_CONFIG)
        .expect("map")
        .pin(&stale)
        .expect("pin");
    let counters = pins.path().join(map_names::REASON_COUNTERS);
    std::fs::rename(&stale, &counters).expect("replace the pin");
    assert_eq!(pinned_layout(&counters), (4, 16, 1));
    let endpoint = Endpoint {
        mac: TASK_A_MAC,
        location: EndpointLocation::Local { ifindex: IF_A },
    };
    OverlayMaps::from_ebpf(&mut load_object(pins.path()).expect("reload"))
        .expect("maps")
        .upsert_endpoint(BLUE, TASK_A, endpoint)
        .expect("insert");
    drop(ebpf);

    let mut ebpf = load_object(pins.path()).expect("load again");
    assert_eq!(pinned_layout(&counters), (4, 8, REASON_COUNTER_SLOTS));
    let maps = OverlayMaps::from_ebpf(&mut ebpf).expect("overlay maps");
    let status = Counters::from_ebpf(&mut ebpf)
        .expect("counter maps")
        .read()
        .expect("every counter slot readable");
    assert_eq!(status.len(), Hook::ALL.len());
    assert_eq!(maps.endpoint(BLUE, TASK_A).expect("lookup"), Some(endpoint));
}

#[test]
fn overlay_accessors_round_trip_and_refuse_what_the_programs_cannot_use() {
    require_privileges!();
    let pins = PinDir::new("overlay-accessors");
    let mut ebpf = load_object(pins.path()).expect("load object");
    let mut maps = OverlayMaps::from_ebpf(&mut ebpf).expect("overlay maps");
    fill_maps(&mut maps);

    // The pinned maps are the same maps: what was written is read back.
    let pinned = OverlayMaps::from_pins(pins.path()).expect("pinned overlay maps");
    assert_eq!(
        pinned.endpoint(BLUE, TASK_D).expect("lookup"),
        Some(Endpoint {
            mac: TASK_D_MAC,
            location: EndpointLocation::Remote { node: NODE_2 },
        })
    );
    assert_eq!(
        pinned.endpoint(BLUE, TASK_A).expect("lookup"),
        Some(Endpoint {
            mac: TASK_A_MAC,
            location: EndpointLocation::Local { ifindex: IF_A },
        })
    );
    assert_eq!(pinned.endpoint(RED, TASK_A).expect("lookup"), None);
    assert_eq!(
        pinned.interface(IF_RED).expect("lookup"),
        Some(Interface {
            vni: RED,
            mac: IF_RED_MAC
        })
    );
    assert_eq!(pinned.underlay().expect("config"), UNDERLAY);

    // Removal is idempotent.
    assert!(maps.remove_endpoint(BLUE, TASK_B).expect("remove"));
    assert!(!maps.remove_endpoint(BLUE, TASK_B).expect("remove again"));
    assert_eq!(pinned.endpoint(BLUE, TASK_B).expect("lookup"), None);
    assert!(maps.remove_interface(IF_B).expect("remove"));
    assert!(!maps.remove_interface(IF_B).expect("remove again"));
    assert_eq!(pinned.interface(IF_B).expect("lookup"), None);

    // What the programs would misread is refused.
    let mac = TASK_A_MAC;
    let refused = [
        maps.upsert_endpoint(
            0,
            TASK_A,
            Endpoint {
                mac,
                location: EndpointLocation::Local { ifindex: IF_A },
            },
        ),
        maps.upsert_endpoint(
            1 << 24,
            TASK_A,
            Endpoint {
                mac,
                location: EndpointLocation::Local { ifindex: IF_A },
            },
        ),
        maps.upsert_endpoint(
            BLUE,
            TASK_A,
            Endpoint {
                mac,
                location: EndpointLocation::Local { ifindex: 0 },
            },
        ),
        maps.upsert_endpoint(
            BLUE,
            TASK_A,
            Endpoint {
                mac,
                location: EndpointLocation::Remote {
                    node: Ipv4Addr::UNSPECIFIED,
                },
            },
        ),
        maps.upsert_interface(0, Interface { vni: BLUE, mac }),
        maps.upsert_interface(IF_A, Interface { vni: 0, mac }),
    ];
    for (i, result) in refused.into_iter().enumerate() {
        assert!(result.is_err(), "case {i} refused");
    }
    // …and left the entries as they were.
    assert_eq!(
        pinned.endpoint(BLUE, TASK_A).expect("lookup"),
        Some(Endpoint {
            mac: TASK_A_MAC,
            location: EndpointLocation::Local { ifindex: IF_A },
        })
    );
    assert_eq!(
        pinned.interface(IF_A).expect("lookup"),
        Some(Interface {
            vni: BLUE,
            mac: IF_A_MAC
        })
    );
}

/// A task of the end-to-end test: its netns, the host side of its veth in
/// the node's netns, and its address and MACs.
struct Task {
    netns: NetNs,
    host_if: &'static str,
    host_mac: [u8; 6],
    ip: Ipv4Addr,
    mac: [u8; 6],
    vni: u32,
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.map(|b| format!("{b:02x}")).join(":")
}

fn ifindex(netns: &NetNs, dev: &str) -> u32 {
    let out = netns.ip(&["-j", "link", "show", dev]);
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j output");
    links[0]["ifindex"]
        .as_u64()
        .and_then(|i| u32::try_from(i).ok())
        .unwrap_or_else(|| panic!("no ifindex for {dev}: {links}"))
}

/// Creates a task netns joined to `node` by a veth pair, as the agent's
/// executor does: `host_if` stays in the node, `eth0` goes to the task.
fn add_task(
    node: &NetNs,
    host_if: &'static str,
    (host_mac, ip, mac, vni): ([u8; 6], Ipv4Addr, [u8; 6], u32),
) -> Task {
    let netns = NetNs::new(&format!("{}-{host_if}", node.name()));
    node.ip(&[
        "link",
        "add",
        host_if,
        "address",
        &mac_text(host_mac),
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "address",
        &mac_text(mac),
        "netns",
        netns.name(),
    ]);
    node.ip(&["link", "set", host_if, "up"]);
    netns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    netns.ip(&["link", "set", "eth0", "up"]);
    Task {
        netns,
        host_if,
        host_mac,
        ip,
        mac,
        vni,
    }
}

/// One node's loaded object (owning the tc links), its overlay maps and
/// its counters.
struct NodePlane {
    _ebpf: aya::Ebpf,
    maps: OverlayMaps,
    counters: Counters,
    _pins: PinDir,
}

/// Loads the object in `node`'s netns with its own pins, attaches
/// `tc_endpoint_ingress` to every task's host veth, `tc_vxlan_ingress` to
/// the VXLAN device `vx` and `tc_underlay_ingress` to the underlay `eth0`
/// (TCX, tc ingress), and registers the tasks' interfaces and the node's
/// underlay (`addr`, `eth0`, the device) in the maps.
fn start_plane(node: &NetNs, addr: Ipv4Addr, tasks: &[&Task]) -> NodePlane {
    let pins = PinDir::new(node.name());
    let pin_dir = pins.path().to_owned();
    let host_ifs: Vec<&'static str> = tasks.iter().map(|t| t.host_if).collect();
    let (ebpf, mut maps, counters) = node.run(move || {
        let mut ebpf = load_object(&pin_dir).expect("load object");
        let attach = [
            (program_names::TC_ENDPOINT_INGRESS, host_ifs),
            (program_names::TC_VXLAN_INGRESS, vec!["vx"]),
            (program_names::TC_UNDERLAY_INGRESS, vec!["eth0"]),
        ];
        for (name, ifaces) in attach {
            let program = load_classifier(&mut ebpf, name);
            for iface in ifaces {
                program
                    .attach(iface, TcAttachType::Ingress)
                    .unwrap_or_else(|e| panic!("attaching {name} to {iface}: {e}"));
            }
        }
        let maps = OverlayMaps::from_ebpf(&mut ebpf).expect("overlay maps");
        let counters = Counters::from_ebpf(&mut ebpf).expect("counter maps");
        (ebpf, maps, counters)
    });
    for task in tasks {
        maps.upsert_interface(
            ifindex(node, task.host_if),
            Interface {
                vni: task.vni,
                mac: task.host_mac,
            },
        )
        .expect("insert interface");
    }
    maps.set_underlay(&Underlay {
        vxlan_ifindex: ifindex(node, "vx"),
        underlay_ifindex: ifindex(node, "eth0"),
        node_ip: addr,
        vxlan_port: VXLAN_PORT,
    })
    .expect("set config");
    NodePlane {
        _ebpf: ebpf,
        maps,
        counters,
        _pins: pins,
    }
}

/// Whether one ping of `size` bytes of data from `from` to `to` is answered.
fn ping_sized(from: &Task, to: Ipv4Addr, size: usize) -> bool {
    Command::new("ip")
        .args(["netns", "exec", from.netns.name(), "busybox", "ping"])
        .args([
            "-c",
            "1",
            "-W",
            "2",
            "-s",
            &size.to_string(),
            &to.to_string(),
        ])
        .output()
        .expect("running busybox ping")
        .status
        .success()
}

fn ping(from: &Task, to: Ipv4Addr) -> bool {
    ping_sized(from, to, 56)
}

/// Serves `seq 1 20000` (109 kB) once over TCP from `server` and returns
/// what `client` read: segmentation offload and `CHECKSUM_PARTIAL` survive
/// the redirects and the tunnel, or the bytes do not arrive.
fn fetch_over_tcp(client: &Task, server: &Task) -> String {
    let mut listener = Command::new("ip")
        .args(["netns", "exec", server.netns.name()])
        .args([
            "busybox", "timeout", "10", "busybox", "nc", "-l", "-p", "8080",
        ])
        .args(["-e", "busybox", "seq", "1", "20000"])
        .stdout(Stdio::null())
        .spawn()
        .expect("starting nc -l");
    let got = eventually("a TCP transfer", Duration::from_secs(8), || {
        let out = Command::new("ip")
            .args(["netns", "exec", client.netns.name()])
            .args(["busybox", "timeout", "5", "busybox", "nc"])
            .args([&server.ip.to_string(), "8080"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.stdout.is_empty() {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        } else {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
    });
    let _ = listener.wait();
    got
}

#[test]
fn pings_and_tcp_cross_the_overlay_on_one_node_and_between_nodes_but_not_between_networks() {
    require_privileges!();
    let world = World::new("overlay", 2);
    let (n1, n2) = (world.node(1).netns(), world.node(2).netns());

    step("tasks a, b (blue) and r (red) on node-1, d (blue) on node-2");
    let a = add_task(n1, "ha", (IF_A_MAC, TASK_A, TASK_A_MAC, BLUE));
    let b = add_task(n1, "hb", (IF_B_MAC, TASK_B, TASK_B_MAC, BLUE));
    let r = add_task(n1, "hr", (IF_RED_MAC, RED_TASK, RED_TASK_MAC, RED));
    let d = add_task(n2, "hd", (IF_A_MAC, TASK_D, TASK_D_MAC, BLUE));
    for node in [n1, n2] {
        node.ip(&[
            "link", "add", "vx", "type", "vxlan", "external", "dstport", "4789",
        ]);
        node.ip(&["link", "set", "vx", "mtu", "1450", "up"]);
    }

    step("load and attach the overlay programs, fill the maps");
    let mut plane1 = start_plane(n1, world.node(1).addr(), &[&a, &b, &r]);
    let mut plane2 = start_plane(n2, world.node(2).addr(), &[&d]);
    let here = |netns: &NetNs, task: &Task| EndpointLocation::Local {
        ifindex: ifindex(netns, task.host_if),
    };
    let on = |node: usize| EndpointLocation::Remote {
        node: world.node(node).addr(),
    };
    let entries = [
        (&a, here(n1, &a), on(1)),
        (&b, here(n1, &b), on(1)),
        (&r, here(n1, &r), on(1)),
        (&d, on(2), here(n2, &d)),
    ];
    for (task, on_node1, on_node2) in entries {
        for (plane, location) in [(&mut plane1, on_node1), (&mut plane2, on_node2)] {
            plane
                .maps
                .upsert_endpoint(
                    task.vni,
                    task.ip,
                    Endpoint {
                        mac: task.mac,
                        location,
                    },
                )
                .expect("insert endpoint");
        }
    }

    step("a → b on node-1 (bpf_redirect_peer both ways)");
    assert!(ping(&a, TASK_B), "a pings b");
    step("a → d on node-2 and back (VXLAN both ways, built and stripped by tc)");
    assert!(ping(&a, TASK_D), "a pings d");
    assert!(ping(&d, TASK_A), "d pings a");
    step("a → d with 1500-byte packets: too big to encapsulate, the VXLAN device fragments");
    assert!(
        ping_sized(&a, TASK_D, 1472),
        "a pings d with full-size packets"
    );
    step("TCP a ← b and a ← d");
    let expected = (1..=20_000).fold(String::new(), |mut text, i| {
        let _ = writeln!(text, "{i}");
        text
    });
    for server in [&b, &d] {
        let got = fetch_over_tcp(&a, server);
        assert!(
            got == expected,
            "{} of {} bytes from {}",
            got.len(),
            expected.len(),
            server.ip
        );
    }
    step("a → r: another network, same subnet");
    assert!(!ping(&a, RED_TASK), "blue cannot reach red");

    let count =
        |plane: &NodePlane, hook, reason| plane.counters.count(hook, reason).expect("count");
    let (ingress, vxlan, underlay) = (
        Hook::TcEndpointIngress,
        Hook::TcVxlanIngress,
        Hook::TcUnderlayIngress,
    );
    assert!(count(&plane1, ingress, Reason::ArpReply) >= 2);
    assert!(count(&plane1, ingress, Reason::RedirectLocal) >= 2);
    for plane in [&plane1, &plane2] {
        // Pings and the TCP transfer's small segments go through tc both
        // ways; the full-size ping and the GSO super-packets of the
        // transfer through the device on receive (and send, if too big).
        assert!(count(plane, ingress, Reason::RedirectRemote) >= 2);
        assert!(count(plane, underlay, Reason::RedirectLocal) >= 2);
        assert_eq!(count(plane, vxlan, Reason::DropNoEndpoint), 0);
        assert_eq!(count(plane, vxlan, Reason::DropNotLocal), 0);
        assert_eq!(count(plane, underlay, Reason::DropNoEndpoint), 0);
        assert_eq!(count(plane, underlay, Reason::DropNotLocal), 0);
    }
    assert!(count(&plane1, ingress, Reason::RedirectRemoteDevice) >= 1);
    assert!(count(&plane2, vxlan, Reason::RedirectLocal) >= 1);
    assert!(count(&plane1, ingress, Reason::DropNoEndpoint) >= 1);
}
