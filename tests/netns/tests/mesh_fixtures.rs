//! Packet fixtures for the routing mesh (DESIGN §5, data path 5) through
//! `BPF_PROG_TEST_RUN`: `MESH_CONFIG`, `MESH_PORTS`, the Maglev tables and
//! the endpoints are written through the agent's typed accessors
//! ([`MeshMaps`], [`OverlayMaps`]) on maps pinned in a private directory,
//! hand-built frames go into the real `xdp_underlay`, and each case checks
//! the XDP verdict, the exact frame that comes out (destination and target
//! port rewritten with valid IPv4 and TCP/UDP checksums, or byte for byte
//! unchanged), that no XDP metadata comes with it (the test run returns
//! it ahead of the frame, `xdp_md.data` of the context telling its length;
//! `tc_underlay_ingress` knows a balanced packet by its flow's conntrack
//! reply entry instead, as some kernels refuse `bpf_xdp_adjust_meta` to
//! XDP programs), the conntrack entries
//! and every counter of the rows involved.
//!
//! Covered: balanced TCP and UDP flows (a new flow and a tracked one, a UDP
//! checksum of zero staying zero, IPv4 options before the ports); packets
//! for no published port (another port, another address, the wrong
//! protocol, ICMP, ARP, IPv6, later fragments) passing unchanged; drops for
//! a port without backends, truncated headers and first fragments; and the
//! reply path in `tc_endpoint_ingress`, where a backend's answer gets the
//! node's address and the published port back as its source (the test run
//! only records `bpf_redirect_neigh`'s target, so the rewritten frame is
//! what comes out). A drop is counted under one reason, the same in the
//! port's row and in the hook's (`xdp_underlay`'s, or with `--mesh-hook
//! tc` `tc_underlay_ingress`'s).

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddrV4},
};

use pnet_packet::{
    MutablePacket,
    ethernet::EtherTypes,
    ip::IpNextHeaderProtocols,
    ipv4::{self, MutableIpv4Packet},
    tcp::{self, MutableTcpPacket, TcpFlags},
    udp::{self, MutableUdpPacket},
};
use shoal_agent::dataplane::{
    Counters, Endpoint, EndpointLocation, Flow, FlowDirection, Interface, MeshHook, MeshMaps,
    OverlayMaps, PortTarget, PublishedPort, Underlay, load_object,
};
use shoal_ebpf_common::{Hook, MESH_NODE_ROW, OVERLAY_MAGLEV_SIZE, Reason, program_names};
use shoal_netns_tests::{
    fixtures::{
        PinDir, TC_ACT_REDIRECT, TC_ACT_SHOT, TcRan, XDP_DROP, XDP_PASS, XdpRan, classifier,
        load_classifier, load_xdp,
        packets::{L4, assert_checksums, ipv4_packet, ipv6_packet, underlay_frame},
        run_tc, run_xdp, xdp,
    },
    require_privileges,
};

/// The node's underlay address: published ports answer on it.
const NODE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Another address of the underlay (not this node's).
const OTHER_NODE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The underlay interface replies leave through (only recorded).
const UNDERLAY_IFINDEX: u32 = 1;
/// A client outside the swarm.
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);

/// The ingress network.
const VNI: u32 = 4096;
/// The service's VIP on it (part of the flow hash).
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The one running backend, behind a local veth.
const BACKEND: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const BACKEND_MAC: [u8; 6] = [0x02, 0x42, 10, 0, 0, 5];
const BACKEND_IF: u32 = 901;
const BACKEND_IF_MAC: [u8; 6] = [0x02, 0x5e, 0, 0, 0, 0x01];
/// In a Maglev table but no endpoint (its task is gone).
const GONE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);

const TCP: u8 = 6;
const UDP: u8 = 17;

/// The published ports: `(protocol, published, target, Maglev slot,
/// counter row)`. Slot 0's table is all [`BACKEND`], slot 1's is empty and
/// slot 2's is all [`GONE`].
const PORTS: [(u8, u16, u16, u32, u32); 4] = [
    (TCP, 8080, 80, 0, 0),
    (UDP, 8053, 53, 0, 1),
    (TCP, 8081, 80, 1, 2),
    (TCP, 8082, 80, 2, 3),
];
const TCP_ROW: u32 = 0;
const UDP_ROW: u32 = 1;
const EMPTY_ROW: u32 = 2;
const GONE_ROW: u32 = 3;

/// One loaded object with `xdp_underlay`, `tc_underlay_ingress` and
/// `tc_endpoint_ingress` loaded and the maps filled as described at
/// [`PORTS`], the mesh on the XDP hook unless [`Fixture::use_tc_hook`].
struct Fixture {
    ebpf: aya::Ebpf,
    mesh: MeshMaps,
    /// The hook running the mesh.
    mesh_hook: Hook,
    counters: Counters,
    _pins: PinDir,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let pins = PinDir::new(&format!("mesh-{name}"));
        let mut ebpf = load_object(pins.path()).expect("load object");
        load_xdp(&mut ebpf, program_names::XDP_UNDERLAY);
        load_classifier(&mut ebpf, program_names::TC_ENDPOINT_INGRESS);
        load_classifier(&mut ebpf, program_names::TC_UNDERLAY_INGRESS);
        let counters = Counters::from_pins(pins.path()).expect("counter maps");
        let mut mesh = MeshMaps::from_pins(pins.path()).expect("mesh maps");
        let mut overlay = OverlayMaps::from_pins(pins.path()).expect("overlay maps");
        // The backends are local: XDP hands every balanced packet to tc
        // (tunnelling in XDP is covered end to end in `mesh.rs`).
        mesh.configure(MeshHook::Xdp, true).expect("mesh config");
        overlay
            .set_underlay(&Underlay {
                vxlan_ifindex: 0,
                underlay_ifindex: UNDERLAY_IFINDEX,
                node_ip: NODE,
                vxlan_port: 4789,
            })
            .expect("underlay");
        let size = OVERLAY_MAGLEV_SIZE as usize;
        overlay
            .set_maglev_table(0, &vec![BACKEND; size])
            .expect("table");
        overlay
            .set_maglev_table(1, &vec![Ipv4Addr::UNSPECIFIED; size])
            .expect("table");
        overlay
            .set_maglev_table(2, &vec![GONE; size])
            .expect("table");
        overlay
            .upsert_endpoint(
                VNI,
                BACKEND,
                Endpoint {
                    mac: BACKEND_MAC,
                    location: EndpointLocation::Local {
                        ifindex: BACKEND_IF,
                    },
                },
            )
            .expect("endpoint");
        overlay
            .upsert_interface(
                BACKEND_IF,
                Interface {
                    vni: VNI,
                    mac: BACKEND_IF_MAC,
                },
            )
            .expect("interface");
        for (protocol, port, target_port, slot, counter_row) in PORTS {
            let vip = if slot == 0 {
                VIP
            } else {
                Ipv4Addr::new(10, 0, 0, 20 + u8::try_from(slot).expect("small"))
            };
            mesh.upsert_port(
                protocol,
                port,
                PublishedPort {
                    vni: VNI,
                    target_port,
                    target: PortTarget::Maglev { vip, slot },
                    counter_row,
                },
            )
            .expect("published port");
        }
        Self {
            ebpf,
            mesh,
            mesh_hook: Hook::XdpUnderlay,
            counters,
            _pins: pins,
        }
    }

    /// Runs the whole mesh in `tc_underlay_ingress` (`--mesh-hook tc`).
    fn use_tc_hook(&mut self) {
        self.mesh
            .configure(MeshHook::Tc, false)
            .expect("mesh config");
        self.mesh_hook = Hook::TcUnderlayIngress;
    }

    /// Runs `tc_underlay_ingress` on `frame`.
    fn tc_underlay(&self, frame: &[u8]) -> TcRan {
        run_tc(
            classifier(&self.ebpf, program_names::TC_UNDERLAY_INGRESS),
            frame,
            None,
        )
    }

    /// What `hook` counted under `reason`.
    fn hook_count(&self, hook: Hook, reason: Reason) -> u64 {
        self.counters.count(hook, reason).expect("read counter")
    }

    /// Runs `xdp_underlay` on `frame`.
    fn xdp(&self, frame: &[u8]) -> XdpRan {
        run_xdp(xdp(&self.ebpf, program_names::XDP_UNDERLAY), frame)
    }

    /// Runs `tc_endpoint_ingress` on `frame` as if it came from `ifindex`.
    fn tc(&self, frame: &[u8], ifindex: u32) -> TcRan {
        run_tc(
            classifier(&self.ebpf, program_names::TC_ENDPOINT_INGRESS),
            frame,
            Some(ifindex),
        )
    }

    /// The mesh conntrack entry of one direction of a flow.
    fn conntrack(
        &self,
        direction: FlowDirection,
        protocol: u8,
        src: SocketAddrV4,
        dst: SocketAddrV4,
    ) -> Option<(SocketAddrV4, Option<Ipv4Addr>)> {
        self.mesh
            .conntrack(VNI, direction, Flow { protocol, src, dst })
            .expect("read conntrack")
    }
}

/// The checks of what `xdp_underlay` made of a frame.
trait MeshChecks {
    fn assert_untouched(&self, sent: &[u8], what: &str);
    fn assert_balanced(&self, sent: &[u8], to: SocketAddrV4, what: &str);
}

impl MeshChecks for XdpRan {
    /// Asserts an `XDP_PASS` with the frame exactly as it was sent and no
    /// metadata.
    fn assert_untouched(&self, sent: &[u8], what: &str) {
        assert_eq!(self.action, XDP_PASS, "{what}: passed");
        assert!(self.meta.is_empty(), "{what}: no metadata");
        assert_eq!(self.frame, sent, "{what}: unchanged byte for byte");
    }

    /// Asserts an `XDP_PASS` of a balanced packet: no metadata in front
    /// (tc knows it by its conntrack reply entry, which the callers
    /// check), valid checksums, and the frame exactly `sent` with its
    /// destination and port turned into `to`.
    fn assert_balanced(&self, sent: &[u8], to: SocketAddrV4, what: &str) {
        assert_eq!(self.action, XDP_PASS, "{what}: passed up");
        assert!(self.meta.is_empty(), "{what}: no metadata");
        assert_checksums(&self.frame, what);
        assert_eq!(
            self.frame,
            redirected(sent, to),
            "{what}: only the destination changed"
        );
    }
}

/// An IPv4 packet of [`ipv4_packet`] in an underlay frame.
fn ipv4_frame(l4: L4, src: SocketAddrV4, dst: SocketAddrV4, options: &[u8]) -> Vec<u8> {
    underlay_frame(EtherTypes::Ipv4, &ipv4_packet(l4, src, dst, options))
}

fn tcp_frame(src: SocketAddrV4, dst: SocketAddrV4, flags: u8) -> Vec<u8> {
    ipv4_frame(L4::Tcp(flags), src, dst, &[])
}

/// `frame` with its IPv4 flags and fragment offset (in 8-byte units) set,
/// the header checksum fixed.
fn fragment(mut frame: Vec<u8>, more_fragments: bool, offset: u16) -> Vec<u8> {
    let mut ip = MutableIpv4Packet::new(&mut frame[14..]).expect("IPv4");
    // MF is the lowest of the three flag bits.
    ip.set_flags(u8::from(more_fragments));
    ip.set_fragment_offset(offset);
    let checksum = ipv4::checksum(&ip.to_immutable());
    ip.set_checksum(checksum);
    frame
}

/// `sent` with its destination address and port turned into `to`, and its
/// checksums recomputed from scratch (a UDP checksum of zero stays zero):
/// what a correct rewrite leaves.
fn redirected(sent: &[u8], to: SocketAddrV4) -> Vec<u8> {
    let mut frame = sent.to_vec();
    let mut ip = MutableIpv4Packet::new(&mut frame[14..]).expect("IPv4");
    ip.set_destination(*to.ip());
    let checksum = ipv4::checksum(&ip.to_immutable());
    ip.set_checksum(checksum);
    let (src, protocol) = (ip.get_source(), ip.get_next_level_protocol());
    if protocol == IpNextHeaderProtocols::Tcp {
        let mut tcp = MutableTcpPacket::new(ip.payload_mut()).expect("TCP");
        tcp.set_destination(to.port());
        let checksum = tcp::ipv4_checksum(&tcp.to_immutable(), &src, to.ip());
        tcp.set_checksum(checksum);
    } else {
        let mut udp = MutableUdpPacket::new(ip.payload_mut()).expect("UDP");
        udp.set_destination(to.port());
        if udp.get_checksum() != 0 {
            let checksum = udp::ipv4_checksum(&udp.to_immutable(), &src, to.ip());
            udp.set_checksum(if checksum == 0 { 0xffff } else { checksum });
        }
    }
    frame
}

/// `sent` with its source turned into `from`, like [`redirected`].
fn resourced(sent: &[u8], from: SocketAddrV4) -> Vec<u8> {
    let mut frame = sent.to_vec();
    let mut ip = MutableIpv4Packet::new(&mut frame[14..]).expect("IPv4");
    ip.set_source(*from.ip());
    let checksum = ipv4::checksum(&ip.to_immutable());
    ip.set_checksum(checksum);
    let dst = ip.get_destination();
    let mut tcp = MutableTcpPacket::new(ip.payload_mut()).expect("TCP");
    tcp.set_source(from.port());
    let checksum = tcp::ipv4_checksum(&tcp.to_immutable(), from.ip(), &dst);
    tcp.set_checksum(checksum);
    frame
}

/// Counts per (row, reason) that the cases are expected to add.
#[derive(Default)]
struct Expected(BTreeMap<(u32, u32), u64>);

impl Expected {
    fn add(&mut self, row: u32, reason: Reason) {
        *self.0.entry((row, reason as u32)).or_default() += 1;
    }

    /// Every reason of every port's row and of the node's row; and the
    /// row of the hook running the mesh, which counts every packet the
    /// mesh dropped under the same reason as the mesh's rows (and, in
    /// `xdp_underlay`, every packet it balanced: `new_flow`, `forward`).
    fn check(&self, fixture: &Fixture) {
        let rows = PORTS.iter().map(|port| port.4).chain([MESH_NODE_ROW]);
        for row in rows {
            for reason in Reason::ALL {
                let want = self.0.get(&(row, reason as u32)).copied().unwrap_or(0);
                let got = fixture.mesh.count(row, reason).expect("read counter");
                assert_eq!(
                    got,
                    want,
                    "row {row} {} counted {got}, expected {want}",
                    reason.as_str()
                );
            }
        }
        let xdp = fixture.mesh_hook == Hook::XdpUnderlay;
        let counted_alike = Reason::ALL
            .into_iter()
            .filter(|&r| r.is_drop() || (xdp && matches!(r, Reason::NewFlow | Reason::Forward)));
        for reason in counted_alike {
            let in_rows: u64 = self
                .0
                .iter()
                .filter(|&(&(_, r), _)| r == reason as u32)
                .map(|(_, packets)| packets)
                .sum();
            assert_eq!(
                fixture.hook_count(fixture.mesh_hook, reason),
                in_rows,
                "{} {} as in the mesh's rows",
                fixture.mesh_hook.as_str(),
                reason.as_str()
            );
        }
    }
}

fn client(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(CLIENT, port)
}

fn node(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(NODE, port)
}

fn backend(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(BACKEND, port)
}

#[test]
fn published_ports_balance_track_rewrite_and_mark_tcp_and_udp() {
    require_privileges!();
    let fixture = Fixture::new("hit");
    let mut expected = Expected::default();

    // A SYN to the published TCP port: to the backend's target port, the
    // client's address kept, both conntrack entries written.
    let syn = tcp_frame(client(40_000), node(8080), TcpFlags::SYN);
    fixture
        .xdp(&syn)
        .assert_balanced(&syn, backend(80), "TCP SYN");
    expected.add(TCP_ROW, Reason::NewFlow);
    assert_eq!(
        fixture.conntrack(FlowDirection::Forward, TCP, client(40_000), node(8080)),
        Some((backend(80), None)),
        "forward entry: the backend"
    );
    assert_eq!(
        fixture.conntrack(FlowDirection::Reply, TCP, backend(80), client(40_000)),
        Some((node(8080), None)),
        "reply entry: the address the client connected to, this node"
    );
    expected.check(&fixture);

    // The flow's next packets follow the tracked entry.
    let ack = tcp_frame(client(40_000), node(8080), TcpFlags::ACK);
    fixture
        .xdp(&ack)
        .assert_balanced(&ack, backend(80), "TCP ACK");
    expected.add(TCP_ROW, Reason::Forward);
    fixture
        .xdp(&ack)
        .assert_balanced(&ack, backend(80), "TCP ACK again");
    expected.add(TCP_ROW, Reason::Forward);
    expected.check(&fixture);

    // UDP on its own port: with a checksum, and with none (zero stays zero).
    let datagram = ipv4_frame(
        L4::Udp { checksummed: true },
        client(50_000),
        node(8053),
        &[],
    );
    fixture
        .xdp(&datagram)
        .assert_balanced(&datagram, backend(53), "UDP");
    expected.add(UDP_ROW, Reason::NewFlow);
    fixture
        .xdp(&datagram)
        .assert_balanced(&datagram, backend(53), "UDP again");
    expected.add(UDP_ROW, Reason::Forward);
    assert_eq!(
        fixture.conntrack(FlowDirection::Forward, UDP, client(50_000), node(8053)),
        Some((backend(53), None))
    );
    assert_eq!(
        fixture.conntrack(FlowDirection::Reply, UDP, backend(53), client(50_000)),
        Some((node(8053), None))
    );
    let unchecked = ipv4_frame(
        L4::Udp { checksummed: false },
        client(50_001),
        node(8053),
        &[],
    );
    let ran = fixture.xdp(&unchecked);
    ran.assert_balanced(&unchecked, backend(53), "UDP without checksum");
    assert_eq!(&ran.frame[14 + 20 + 6..14 + 20 + 8], &[0, 0], "still none");
    expected.add(UDP_ROW, Reason::NewFlow);

    // IP options (IHL 6: NOP NOP NOP EOL): the ports are read after them.
    let with_options = ipv4_frame(
        L4::Tcp(TcpFlags::SYN),
        client(40_001),
        node(8080),
        &[1, 1, 1, 0],
    );
    assert_eq!(with_options[14], 0x46);
    fixture.xdp(&with_options).assert_balanced(
        &with_options,
        backend(80),
        "TCP SYN with IP options",
    );
    expected.add(TCP_ROW, Reason::NewFlow);
    assert_eq!(
        fixture.conntrack(FlowDirection::Forward, TCP, client(40_001), node(8080)),
        Some((backend(80), None))
    );

    expected.check(&fixture);
}

#[test]
fn packets_for_no_published_port_pass_unchanged() {
    require_privileges!();
    let fixture = Fixture::new("miss");
    let mut expected = Expected::default();

    let mut ipv6 = ipv6_packet(IpNextHeaderProtocols::Tcp, 20);
    // TCP ports 40000 → 8080.
    ipv6[40..44].copy_from_slice(&[0x9c, 0x40, 0x1f, 0x90]);
    // Not IPv4 and TCP or UDP to the node on a published port: passed on as
    // they came, counted in the node's row (IPv6 too: it is IP).
    let misses = [
        (
            "TCP to an unpublished port",
            tcp_frame(client(40_000), node(9999), TcpFlags::SYN),
        ),
        (
            "TCP to another address on the port",
            tcp_frame(
                client(40_000),
                SocketAddrV4::new(OTHER_NODE, 8080),
                TcpFlags::SYN,
            ),
        ),
        (
            "UDP to the TCP port",
            ipv4_frame(
                L4::Udp { checksummed: true },
                client(40_000),
                node(8080),
                &[],
            ),
        ),
        (
            "ICMP to the node",
            ipv4_frame(L4::Icmp, client(0), node(0), &[]),
        ),
        (
            "a later fragment to the port",
            fragment(
                tcp_frame(client(40_000), node(8080), TcpFlags::SYN),
                false,
                185,
            ),
        ),
        ("IPv6", underlay_frame(EtherTypes::Ipv6, &ipv6)),
    ];
    for (what, frame) in &misses {
        fixture.xdp(frame).assert_untouched(frame, what);
        expected.add(MESH_NODE_ROW, Reason::PassNotMesh);
    }
    // ARP never reaches the mesh: not counted there.
    let arp = underlay_frame(EtherTypes::Arp, &[0u8; 46]);
    fixture.xdp(&arp).assert_untouched(&arp, "ARP");

    assert_eq!(
        fixture.conntrack(FlowDirection::Forward, TCP, client(40_000), node(8080)),
        None,
        "a later fragment is not tracked"
    );
    expected.check(&fixture);
}

#[test]
fn packets_without_backend_truncated_or_first_fragments_are_dropped_and_counted() {
    require_privileges!();
    let fixture = Fixture::new("drop");
    let mut expected = Expected::default();
    let dropped = |frame: &[u8], what: &str| {
        assert_eq!(fixture.xdp(frame).action, XDP_DROP, "{what}: dropped");
    };

    // An empty Maglev table, and one whose only backend is no endpoint.
    dropped(
        &tcp_frame(client(40_000), node(8081), TcpFlags::SYN),
        "no backend in the table",
    );
    expected.add(EMPTY_ROW, Reason::DropNoBackend);
    dropped(
        &tcp_frame(client(40_000), node(8082), TcpFlags::SYN),
        "a backend that is gone",
    );
    expected.add(GONE_ROW, Reason::DropNoBackend);
    assert_eq!(
        fixture.conntrack(FlowDirection::Forward, TCP, client(40_000), node(8082)),
        None,
        "nothing tracked"
    );

    // Cut inside the TCP header, after the ports (the port's row), and
    // before them (the node's row); UDP cut before its checksum.
    let syn = tcp_frame(client(40_000), node(8080), TcpFlags::SYN);
    dropped(&syn[..14 + 20 + 10], "TCP cut before its checksum");
    expected.add(TCP_ROW, Reason::DropTruncated);
    dropped(&syn[..14 + 20 + 2], "TCP cut inside its ports");
    expected.add(MESH_NODE_ROW, Reason::DropTruncated);
    let datagram = ipv4_frame(
        L4::Udp { checksummed: true },
        client(50_000),
        node(8053),
        &[],
    );
    dropped(&datagram[..14 + 20 + 6], "UDP cut before its checksum");
    expected.add(UDP_ROW, Reason::DropTruncated);

    // A first fragment: its datagram cannot be balanced whole.
    dropped(&fragment(syn.clone(), true, 0), "a first fragment");
    expected.add(TCP_ROW, Reason::DropFragment);
    assert_eq!(
        fixture.conntrack(FlowDirection::Forward, TCP, client(40_000), node(8080)),
        None,
        "nothing tracked"
    );

    // The same flow whole is balanced.
    fixture
        .xdp(&syn)
        .assert_balanced(&syn, backend(80), "the whole SYN");
    expected.add(TCP_ROW, Reason::NewFlow);

    expected.check(&fixture);
}

#[test]
fn backend_replies_get_the_published_address_back_in_tc_endpoint_ingress() {
    require_privileges!();
    let fixture = Fixture::new("reply");
    let mut expected = Expected::default();

    let syn = tcp_frame(client(40_000), node(8080), TcpFlags::SYN);
    fixture
        .xdp(&syn)
        .assert_balanced(&syn, backend(80), "TCP SYN");
    expected.add(TCP_ROW, Reason::NewFlow);

    // The backend's SYN-ACK from its veth: source back to the node's
    // address and the published port, sent out of the underlay interface.
    let answer = tcp_frame(backend(80), client(40_000), TcpFlags::SYN | TcpFlags::ACK);
    let TcRan { action, frame } = fixture.tc(&answer, BACKEND_IF);
    assert_eq!(action, TC_ACT_REDIRECT, "bpf_redirect_neigh");
    assert_checksums(&frame, "reply");
    assert_eq!(
        frame,
        resourced(&answer, node(8080)),
        "only the source changed"
    );
    expected.add(MESH_NODE_ROW, Reason::Reply);
    assert_eq!(
        fixture.hook_count(Hook::TcEndpointIngress, Reason::RedirectUnderlay),
        1
    );

    // A flow the mesh never balanced: nowhere to go.
    let stray = tcp_frame(backend(80), client(40_009), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(
        fixture.tc(&stray, BACKEND_IF).action,
        TC_ACT_SHOT,
        "no reply entry"
    );
    assert_eq!(
        fixture.hook_count(Hook::TcEndpointIngress, Reason::DropNoEndpoint),
        1
    );

    expected.check(&fixture);
}

#[test]
fn a_mesh_drop_in_tc_counts_its_own_reason_in_the_hooks_and_the_ports_row() {
    require_privileges!();
    let mut fixture = Fixture::new("tc-drop");
    fixture.use_tc_hook();
    let mut expected = Expected::default();

    // Cut inside the TCP header, after the ports: the port is known.
    let syn = tcp_frame(client(40_000), node(8080), TcpFlags::SYN);
    let truncated = fixture.tc_underlay(&syn[..14 + 20 + 10]);
    assert_eq!(truncated.action, TC_ACT_SHOT, "truncated TCP dropped");
    expected.add(TCP_ROW, Reason::DropTruncated);
    // A port whose Maglev table is empty.
    let nowhere = tcp_frame(client(40_000), node(8081), TcpFlags::SYN);
    assert_eq!(fixture.tc_underlay(&nowhere).action, TC_ACT_SHOT);
    expected.add(EMPTY_ROW, Reason::DropNoBackend);

    let hook = Hook::TcUnderlayIngress;
    assert_eq!(fixture.hook_count(hook, Reason::DropTruncated), 1);
    assert_eq!(fixture.hook_count(hook, Reason::DropNoBackend), 1);
    for translated_before in [Reason::DropHelperFailed, Reason::DropBadHeader] {
        assert_eq!(
            fixture.hook_count(hook, translated_before),
            0,
            "{} counts no mesh drop",
            translated_before.as_str()
        );
    }
    expected.check(&fixture);
}
