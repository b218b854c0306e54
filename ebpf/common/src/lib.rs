//! Map keys and values shared by shoal's eBPF programs (`ebpf/programs`) and
//! the agent's data-plane module.
//!
//! Every type is `#[repr(C)]`, `Copy`, has its padding spelled out, and has a
//! `const` size assertion, so the kernel and user-space views cannot drift.
//! Fields in network byte order carry a `_be` suffix. With the `user` feature
//! the value types implement `aya::Pod`.
#![no_std]

/// Names of the maps the programs declare with `pinning = by-name`; the agent
/// pins each under `/sys/fs/bpf/shoal/<node-id>/<name>` and reuses the pin on
/// restart, so counters survive an agent restart.
pub mod map_names {
    /// `PerCpuArray<PacketCount>`, indexed by [`super::protocol_slot`].
    pub const PROTOCOL_COUNTERS: &str = "PROTOCOL_COUNTERS";
    /// `PerCpuArray<u64>`, indexed by [`super::verdict_slot`].
    pub const VERDICT_COUNTERS: &str = "VERDICT_COUNTERS";
    /// `HashMap<OverlayEndpointKey, OverlayEndpoint>`: every endpoint of
    /// every overlay network this node takes part in, local and remote.
    pub const OVERLAY_ENDPOINTS: &str = "OVERLAY_ENDPOINTS";
    /// `HashMap<u32, OverlayInterface>`: host-side veth ifindex of a local
    /// task's interface → its network and MAC.
    pub const OVERLAY_INTERFACES: &str = "OVERLAY_INTERFACES";
    /// `Array<OverlayConfig>` with one entry, index 0.
    pub const OVERLAY_CONFIG: &str = "OVERLAY_CONFIG";
    /// `PerCpuArray<u64>`, indexed by [`super::overlay_slot`].
    pub const OVERLAY_COUNTERS: &str = "OVERLAY_COUNTERS";
    /// `HashMap<OverlayEndpointKey, u32>`: a service VIP `(VNI, address)`
    /// → its slot, the index of its Maglev table in `OVERLAY_MAGLEV`.
    pub const OVERLAY_SERVICES: &str = "OVERLAY_SERVICES";
    /// `Array<u32>` of [`super::OVERLAY_MAX_SERVICES`] ×
    /// [`super::OVERLAY_MAGLEV_SIZE`] backend addresses (network byte order,
    /// `0`: no backend): the Maglev table of slot `s` is the `s`-th run.
    pub const OVERLAY_MAGLEV: &str = "OVERLAY_MAGLEV";
    /// `LruHashMap<OverlayFlowKey, u32>`: per flow to a VIP, the chosen
    /// backend (forward entry) and the VIP to put back into replies
    /// (reverse entry).
    pub const OVERLAY_CONNTRACK: &str = "OVERLAY_CONNTRACK";
    /// `HashMap<MeshPortKey, MeshPort>`: the routing mesh's published
    /// ports on this node.
    pub const MESH_PORTS: &str = "MESH_PORTS";
    /// `Array<MeshConfig>` with one entry, index 0.
    pub const MESH_CONFIG: &str = "MESH_CONFIG";
    /// `LruHashMap<OverlayFlowKey, MeshFlow>`: per flow through the
    /// routing mesh, its backend (forward entry, on the entry node) and
    /// how to send the backend's replies back (reply entry, on the entry
    /// node and on the backend's node).
    pub const MESH_CONNTRACK: &str = "MESH_CONNTRACK";
    /// `PerCpuArray<u64>`, indexed by [`super::mesh_slot`].
    pub const MESH_COUNTERS: &str = "MESH_COUNTERS";
    /// Every pinned map, for pinning, reuse and removal.
    pub const PINNED: [&str; 13] = [
        PROTOCOL_COUNTERS,
        VERDICT_COUNTERS,
        OVERLAY_ENDPOINTS,
        OVERLAY_INTERFACES,
        OVERLAY_CONFIG,
        OVERLAY_COUNTERS,
        OVERLAY_SERVICES,
        OVERLAY_MAGLEV,
        OVERLAY_CONNTRACK,
        MESH_PORTS,
        MESH_CONFIG,
        MESH_CONNTRACK,
        MESH_COUNTERS,
    ];
}

/// A pinned map's layout as the kernel reports it (`bpf_map_info`): what a
/// pin left by another build must match to be reused. A map whose layout
/// changed between builds is recreated instead (its entries are lost), so
/// that the programs and the agent never index past its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapLayout {
    /// The map's name and pin name (one of [`map_names::PINNED`]).
    pub name: &'static str,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "map keys and values are small"
)]
const fn layout<K, V>(name: &'static str, max_entries: u32) -> MapLayout {
    MapLayout {
        name,
        key_size: core::mem::size_of::<K>() as u32,
        value_size: core::mem::size_of::<V>() as u32,
        max_entries,
    }
}

/// The layout of every pinned map, in [`map_names::PINNED`] order, as the
/// programs declare them.
pub const PINNED_LAYOUTS: [MapLayout; 13] = [
    layout::<u32, PacketCount>(map_names::PROTOCOL_COUNTERS, PROTOCOL_COUNTER_SLOTS),
    layout::<u32, u64>(map_names::VERDICT_COUNTERS, VERDICT_COUNTER_SLOTS),
    layout::<OverlayEndpointKey, OverlayEndpoint>(
        map_names::OVERLAY_ENDPOINTS,
        OVERLAY_MAX_ENDPOINTS,
    ),
    layout::<u32, OverlayInterface>(map_names::OVERLAY_INTERFACES, OVERLAY_MAX_INTERFACES),
    layout::<u32, OverlayConfig>(map_names::OVERLAY_CONFIG, 1),
    layout::<u32, u64>(map_names::OVERLAY_COUNTERS, OVERLAY_COUNTER_SLOTS),
    layout::<OverlayEndpointKey, u32>(map_names::OVERLAY_SERVICES, OVERLAY_MAX_SERVICES),
    layout::<u32, u32>(map_names::OVERLAY_MAGLEV, OVERLAY_MAGLEV_ENTRIES),
    layout::<OverlayFlowKey, u32>(map_names::OVERLAY_CONNTRACK, OVERLAY_MAX_CONNTRACK),
    layout::<MeshPortKey, MeshPort>(map_names::MESH_PORTS, MESH_MAX_PORTS),
    layout::<u32, MeshConfig>(map_names::MESH_CONFIG, 1),
    layout::<OverlayFlowKey, MeshFlow>(map_names::MESH_CONNTRACK, MESH_MAX_CONNTRACK),
    layout::<u32, u64>(map_names::MESH_COUNTERS, MESH_COUNTER_SLOTS),
];

/// Names of the program functions in the eBPF object.
pub mod program_names {
    /// XDP on the node's underlay interface (ingress).
    pub const XDP_UNDERLAY: &str = "xdp_underlay";
    /// tc (clsact/TCX) egress on the node's underlay interface.
    pub const TC_UNDERLAY_EGRESS: &str = "tc_underlay_egress";
    /// tc ingress on the host side of a task's veth: frames the task sends
    /// (proxy ARP, same-node delivery, VXLAN encapsulation).
    pub const TC_ENDPOINT_INGRESS: &str = "tc_endpoint_ingress";
    /// tc ingress on the node's flow-based VXLAN device: decapsulated frames
    /// for local tasks.
    pub const TC_VXLAN_INGRESS: &str = "tc_vxlan_ingress";
    /// tc (TCX) ingress on the node's underlay interface: the routing
    /// mesh's delivery (after `xdp_underlay` balanced a packet) or the
    /// whole mesh (`--mesh-hook tc`).
    pub const TC_UNDERLAY_INGRESS: &str = "tc_underlay_ingress";
    /// The overlay programs, which the agent attaches per interface.
    pub const OVERLAY: [&str; 2] = [TC_ENDPOINT_INGRESS, TC_VXLAN_INGRESS];
}

/// Where a packet was seen. Each hook counts into its own range of slots.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received on the underlay interface (XDP).
    UnderlayIngress = 0,
    /// Sent on the underlay interface (tc egress).
    UnderlayEgress = 1,
}

impl Direction {
    /// Every direction, in slot order.
    pub const ALL: [Self; 2] = [Self::UnderlayIngress, Self::UnderlayEgress];

    /// Stable lower-case name used in status output.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnderlayIngress => "underlay_ingress",
            Self::UnderlayEgress => "underlay_egress",
        }
    }
}

/// Number of [`Direction`]s.
#[expect(clippy::cast_possible_truncation, reason = "a handful of directions")]
pub const DIRECTIONS: u32 = Direction::ALL.len() as u32;

/// Per-protocol counter, one per (direction, IP protocol number) slot and CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketCount {
    /// Packets seen.
    pub packets: u64,
    /// Bytes seen, counting from the Ethernet header.
    pub bytes: u64,
}

const _: () = assert!(core::mem::size_of::<PacketCount>() == 16);

/// IP protocol numbers are one byte: 256 slots per direction.
pub const PROTOCOLS_PER_DIRECTION: u32 = 256;

/// Size of the `PROTOCOL_COUNTERS` array.
pub const PROTOCOL_COUNTER_SLOTS: u32 = DIRECTIONS * PROTOCOLS_PER_DIRECTION;

/// Index into `PROTOCOL_COUNTERS` for an IPv4 protocol or IPv6 next header.
#[must_use]
pub const fn protocol_slot(direction: Direction, protocol: u8) -> u32 {
    direction as u32 * PROTOCOLS_PER_DIRECTION + protocol as u32
}

/// Why a hook let a packet through or dropped it. Counted per direction, so
/// that every packet a hook sees lands in exactly one verdict slot.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An IPv4 or IPv6 packet, counted by protocol and passed on.
    PassIp = 0,
    /// Not IP (ARP, LLDP, VLAN-tagged …): passed on untouched, not parsed.
    PassNotIp = 1,
    /// Frame shorter than an Ethernet header: dropped.
    DropShortFrame = 2,
    /// EtherType says IPv4/IPv6 but the header is truncated or invalid
    /// (wrong version, IHL below 5): dropped, the kernel would drop it too.
    DropBadIpHeader = 3,
}

impl Verdict {
    /// Every verdict, in slot order.
    pub const ALL: [Self; 4] = [
        Self::PassIp,
        Self::PassNotIp,
        Self::DropShortFrame,
        Self::DropBadIpHeader,
    ];

    /// Stable snake-case name used in status output.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PassIp => "pass_ip",
            Self::PassNotIp => "pass_not_ip",
            Self::DropShortFrame => "drop_short_frame",
            Self::DropBadIpHeader => "drop_bad_ip_header",
        }
    }

    /// Whether the hook drops the packet.
    #[must_use]
    pub const fn is_drop(self) -> bool {
        matches!(self, Self::DropShortFrame | Self::DropBadIpHeader)
    }
}

/// Number of [`Verdict`]s per direction.
#[expect(clippy::cast_possible_truncation, reason = "a handful of verdicts")]
pub const VERDICTS_PER_DIRECTION: u32 = Verdict::ALL.len() as u32;

/// Size of the `VERDICT_COUNTERS` array.
pub const VERDICT_COUNTER_SLOTS: u32 = DIRECTIONS * VERDICTS_PER_DIRECTION;

/// Index into `VERDICT_COUNTERS`.
#[must_use]
pub const fn verdict_slot(direction: Direction, verdict: Verdict) -> u32 {
    direction as u32 * VERDICTS_PER_DIRECTION + verdict as u32
}

/// Result of classifying the start of an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Classified {
    /// An IP packet carrying this protocol / next header.
    Ip {
        /// IPv4 protocol or IPv6 next-header number.
        protocol: u8,
    },
    /// Anything else: the verdict says what to do.
    Other(Verdict),
}

/// EtherType of IPv4, host byte order.
pub const ETH_P_IP: u16 = 0x0800;
/// EtherType of IPv6, host byte order.
pub const ETH_P_IPV6: u16 = 0x86DD;
/// Length of an Ethernet header without VLAN tags.
pub const ETH_HDR_LEN: usize = 14;
/// Length of an IPv4 header without options.
pub const IPV4_MIN_HDR_LEN: usize = 20;
/// Length of the fixed IPv6 header.
pub const IPV6_HDR_LEN: usize = 40;

/// Classifies a frame from the bytes a hook could read.
///
/// `frame_len` is the whole frame's length; `ethertype` is host byte order;
/// `ip_first_byte` and `ip_next` are the IP header's first byte (version and
/// IHL) and its protocol/next-header byte, when the frame is long enough to
/// hold them. Pure and shared so that the XDP and tc hooks and the unit tests
/// agree on the rules.
#[must_use]
pub const fn classify(
    frame_len: usize,
    ethertype: u16,
    ip_first_byte: u8,
    ip_next: u8,
) -> Classified {
    if frame_len < ETH_HDR_LEN {
        return Classified::Other(Verdict::DropShortFrame);
    }
    let l3_len = frame_len - ETH_HDR_LEN;
    match ethertype {
        ETH_P_IP => {
            if l3_len < IPV4_MIN_HDR_LEN || ip_first_byte >> 4 != 4 || ip_first_byte & 0x0f < 5 {
                Classified::Other(Verdict::DropBadIpHeader)
            } else {
                Classified::Ip { protocol: ip_next }
            }
        }
        ETH_P_IPV6 => {
            if l3_len < IPV6_HDR_LEN || ip_first_byte >> 4 != 6 {
                Classified::Other(Verdict::DropBadIpHeader)
            } else {
                Classified::Ip { protocol: ip_next }
            }
        }
        _ => Classified::Other(Verdict::PassNotIp),
    }
}

/// Offset of the protocol / next-header byte from the start of the IP header.
#[must_use]
pub const fn ip_next_offset(ethertype: u16) -> usize {
    if ethertype == ETH_P_IPV6 { 6 } else { 9 }
}

/// Key of `OVERLAY_ENDPOINTS`: an IPv4 address within one overlay network.
/// Every lookup is keyed by the VNI of the interface (or tunnel) the frame
/// came from, which is what isolates networks from each other.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OverlayEndpointKey {
    /// VXLAN network identifier (24 bits used), host byte order.
    pub vni: u32,
    /// The endpoint's IPv4 address, network byte order (as in the packet).
    pub ip_be: u32,
}

const _: () = assert!(core::mem::size_of::<OverlayEndpointKey>() == 8);

/// Value of `OVERLAY_ENDPOINTS`: where a task's address lives.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OverlayEndpoint {
    /// Underlay IPv4 address of the node running the task, **host byte
    /// order** (what `bpf_skb_set_tunnel_key` takes); `0` means this node.
    pub node_ip: u32,
    /// For a local endpoint (`node_ip == 0`): ifindex of the host side of the
    /// task's veth, in the agent's network namespace. `0` for remote ones.
    pub ifindex: u32,
    /// The MAC address of the task's own interface (inside its netns).
    pub mac: [u8; 6],
    /// Zero.
    #[expect(
        clippy::pub_underscore_fields,
        reason = "explicit padding, named as the project's conventions ask"
    )]
    pub _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<OverlayEndpoint>() == 16);

impl OverlayEndpoint {
    /// Whether the endpoint is a task on this node.
    #[must_use]
    pub const fn is_local(&self) -> bool {
        self.node_ip == 0
    }
}

/// Value of `OVERLAY_INTERFACES`, keyed by the ifindex (host byte order) of
/// the host side of a local task's veth.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OverlayInterface {
    /// The network the interface belongs to, host byte order.
    pub vni: u32,
    /// MAC of this host-side veth. The task resolves its gateway and all its
    /// peers to it (proxy ARP), and frames delivered to the task carry it as
    /// their source.
    pub mac: [u8; 6],
    /// Zero.
    #[expect(
        clippy::pub_underscore_fields,
        reason = "explicit padding, named as the project's conventions ask"
    )]
    pub _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<OverlayInterface>() == 12);

/// The only value of `OVERLAY_CONFIG` (index 0): node-wide overlay settings.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OverlayConfig {
    /// ifindex of the node's flow-based (`external`) VXLAN device; `0` while
    /// there is none, in which case frames for remote endpoints are dropped.
    pub vxlan_ifindex: u32,
}

const _: () = assert!(core::mem::size_of::<OverlayConfig>() == 4);

/// An overlay program's hook. Each counts into its own range of
/// `OVERLAY_COUNTERS` slots.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayHook {
    /// `tc_endpoint_ingress`: frames sent by a local task.
    EndpointIngress = 0,
    /// `tc_vxlan_ingress`: frames decapsulated by the VXLAN device.
    VxlanIngress = 1,
    /// `tc_underlay_ingress`: frames the routing mesh balanced, delivered
    /// to a local task or tunnelled to the backend's node.
    UnderlayIngress = 2,
}

impl OverlayHook {
    /// Every hook, in slot order.
    pub const ALL: [Self; 3] = [
        Self::EndpointIngress,
        Self::VxlanIngress,
        Self::UnderlayIngress,
    ];

    /// Stable snake-case name used in status output.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::EndpointIngress => "endpoint_ingress",
            Self::VxlanIngress => "vxlan_ingress",
            Self::UnderlayIngress => "underlay_tc_ingress",
        }
    }
}

/// What an overlay hook did with a frame. Every frame lands in exactly one
/// slot; the `Drop*` ones are the typed drop reasons.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayVerdict {
    /// Arrived on an interface that is not in `OVERLAY_INTERFACES`: not an
    /// overlay interface, handed on unchanged.
    PassNotOurs = 0,
    /// An ARP request answered in place (proxy ARP) and sent back to the task.
    ArpReply = 1,
    /// Delivered into a task on this node (`bpf_redirect_peer`).
    RedirectLocal = 2,
    /// Tunnelled to the endpoint's node through the VXLAN device.
    RedirectRemote = 3,
    /// No endpoint has the destination address in this network (also what an
    /// address of another network looks like: isolation).
    DropNoEndpoint = 4,
    /// Neither IPv4 nor ARP (IPv6, LLDP, VLAN tags …).
    DropNotIpv4 = 5,
    /// Runt frame, truncated or malformed ARP/IPv4 header.
    DropBadHeader = 6,
    /// An ARP frame that is not answered: a reply, a gratuitous ARP or a
    /// probe for the task's own address, a non-Ethernet/IPv4 ARP.
    DropArpNotAnswered = 7,
    /// VXLAN ingress: the destination is an endpoint on another node.
    DropNotLocal = 8,
    /// VXLAN ingress: the frame carries no tunnel metadata.
    DropNoTunnelKey = 9,
    /// A local endpoint whose host-side interface is missing from
    /// `OVERLAY_INTERFACES` (maps being updated).
    DropNoTargetInterface = 10,
    /// A remote endpoint but no VXLAN device configured in `OVERLAY_CONFIG`.
    DropNoVxlanDevice = 11,
    /// A helper (store bytes, checksum, tunnel key, redirect) failed.
    DropHelperFailed = 12,
    /// To a service VIP whose Maglev table has no backend.
    DropVipNoBackend = 13,
    /// To a service VIP, but neither TCP nor UDP (ICMP, …): a VIP only
    /// balances TCP and UDP, as Docker's do.
    DropVipProtocol = 14,
    /// A backend's reply to a client outside the swarm, reverse-translated
    /// by the routing mesh and sent out of the underlay interface.
    RedirectUnderlay = 15,
}

impl OverlayVerdict {
    /// Every verdict, in slot order.
    pub const ALL: [Self; 16] = [
        Self::PassNotOurs,
        Self::ArpReply,
        Self::RedirectLocal,
        Self::RedirectRemote,
        Self::DropNoEndpoint,
        Self::DropNotIpv4,
        Self::DropBadHeader,
        Self::DropArpNotAnswered,
        Self::DropNotLocal,
        Self::DropNoTunnelKey,
        Self::DropNoTargetInterface,
        Self::DropNoVxlanDevice,
        Self::DropHelperFailed,
        Self::DropVipNoBackend,
        Self::DropVipProtocol,
        Self::RedirectUnderlay,
    ];

    /// Stable snake-case name used in status output.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PassNotOurs => "pass_not_ours",
            Self::ArpReply => "arp_reply",
            Self::RedirectLocal => "redirect_local",
            Self::RedirectRemote => "redirect_remote",
            Self::DropNoEndpoint => "drop_no_endpoint",
            Self::DropNotIpv4 => "drop_not_ipv4",
            Self::DropBadHeader => "drop_bad_header",
            Self::DropArpNotAnswered => "drop_arp_not_answered",
            Self::DropNotLocal => "drop_not_local",
            Self::DropNoTunnelKey => "drop_no_tunnel_key",
            Self::DropNoTargetInterface => "drop_no_target_interface",
            Self::DropNoVxlanDevice => "drop_no_vxlan_device",
            Self::DropHelperFailed => "drop_helper_failed",
            Self::DropVipNoBackend => "drop_vip_no_backend",
            Self::DropVipProtocol => "drop_vip_protocol",
            Self::RedirectUnderlay => "redirect_underlay",
        }
    }

    /// Whether the hook drops the frame.
    #[must_use]
    pub const fn is_drop(self) -> bool {
        let slot = self as u32;
        slot >= Self::DropNoEndpoint as u32 && slot <= Self::DropVipProtocol as u32
    }
}

/// Number of [`OverlayVerdict`]s per hook.
#[expect(clippy::cast_possible_truncation, reason = "a handful of verdicts")]
pub const OVERLAY_VERDICTS_PER_HOOK: u32 = OverlayVerdict::ALL.len() as u32;

/// Size of the `OVERLAY_COUNTERS` array.
#[expect(clippy::cast_possible_truncation, reason = "three hooks")]
pub const OVERLAY_COUNTER_SLOTS: u32 = OverlayHook::ALL.len() as u32 * OVERLAY_VERDICTS_PER_HOOK;

/// Index into `OVERLAY_COUNTERS`.
#[must_use]
pub const fn overlay_slot(hook: OverlayHook, verdict: OverlayVerdict) -> u32 {
    hook as u32 * OVERLAY_VERDICTS_PER_HOOK + verdict as u32
}

/// Maximum number of `OVERLAY_ENDPOINTS` entries: endpoints of all the
/// networks with a task on this node, cluster-wide.
pub const OVERLAY_MAX_ENDPOINTS: u32 = 65_536;
/// Maximum number of `OVERLAY_INTERFACES` entries: task interfaces on this node.
pub const OVERLAY_MAX_INTERFACES: u32 = 4_096;

/// Maximum number of service VIPs (`OVERLAY_SERVICES` entries, Maglev
/// tables) on one node: a VIP per (service, network) of the networks with a
/// task on this node.
pub const OVERLAY_MAX_SERVICES: u32 = 1_024;

/// Slots of each service's Maglev table in `OVERLAY_MAGLEV`: a prime, as
/// Maglev needs. Smaller than the routing mesh's 16381 because every node
/// keeps a table for every VIP it can reach and aya-ebpf 0.2.1 has no
/// map-of-maps: one flat array of 1024 tables × 1021 slots × 4 bytes is
/// 4 MiB per node (16381 would be 64 MiB). It keeps the imbalance under 1 %
/// up to 10 backends and about 10 % at 100 (`size ≥ 100·N`, Maglev §3.4);
/// established flows never depend on it (conntrack).
pub const OVERLAY_MAGLEV_SIZE: u32 = 1_021;

/// Size of `OVERLAY_MAGLEV`.
pub const OVERLAY_MAGLEV_ENTRIES: u32 = OVERLAY_MAX_SERVICES * OVERLAY_MAGLEV_SIZE;

/// Maximum number of `OVERLAY_CONNTRACK` entries (two per flow); the least
/// recently used are evicted first.
pub const OVERLAY_MAX_CONNTRACK: u32 = 262_144;

/// [`OverlayFlowKey::direction`] of the entry a client's packet to a VIP
/// looks up: `src` the client, `dst` the VIP; the value is the backend.
pub const FLOW_FORWARD: u8 = 0;
/// [`OverlayFlowKey::direction`] of the entry a backend's reply looks up:
/// `src` the backend, `dst` the client; the value is the VIP.
pub const FLOW_REPLY: u8 = 1;

/// Key of `OVERLAY_CONNTRACK`: one direction of a TCP or UDP flow within a
/// network. Addresses and ports in network byte order, as in the packet.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct OverlayFlowKey {
    /// The network, host byte order.
    pub vni: u32,
    /// Source IPv4 address.
    pub src_be: u32,
    /// Destination IPv4 address.
    pub dst_be: u32,
    /// Source port.
    pub sport_be: u16,
    /// Destination port.
    pub dport_be: u16,
    /// IP protocol (6 or 17).
    pub protocol: u8,
    /// [`FLOW_FORWARD`] or [`FLOW_REPLY`]: the two kinds of entries never
    /// collide.
    pub direction: u8,
    /// Zero.
    #[expect(
        clippy::pub_underscore_fields,
        reason = "explicit padding, named as the project's conventions ask"
    )]
    pub _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<OverlayFlowKey>() == 20);

/// The flow hash that indexes a service's Maglev table: the 5-tuple as in
/// the packet (network byte order), mixed with the murmur3 finaliser so
/// that neighbouring ports spread over the whole table. Pure and shared, so
/// that the agent's tests can predict the programs' choices.
#[must_use]
pub const fn flow_hash(
    src_be: u32,
    dst_be: u32,
    sport_be: u16,
    dport_be: u16,
    protocol: u8,
) -> u32 {
    let mut h = 0x9e37_79b9_u32 ^ protocol as u32;
    h = mix(h ^ src_be);
    h = mix(h ^ dst_be);
    h = mix(h ^ (((sport_be as u32) << 16) | dport_be as u32));
    h
}

/// Folds a one's-complement sum to 16 bits.
const fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    #[expect(clippy::cast_possible_truncation, reason = "folded to 16 bits")]
    let folded = sum as u16;
    folded
}

/// An Internet checksum after a 32-bit field of the data it covers changed
/// from `old` to `new` (RFC 1624, eqn. 3: `HC' = ~(~HC + ~m + m')`).
/// Byte-order agnostic: pass the checksum and both values as loaded from
/// the packet, and store the result the same way.
#[must_use]
pub const fn csum_replace4(check: u16, old: u32, new: u32) -> u16 {
    let not_old = !old;
    !fold(
        (!check) as u64
            + (not_old >> 16) as u64
            + (not_old & 0xffff) as u64
            + (new >> 16) as u64
            + (new & 0xffff) as u64,
    )
}

/// [`csum_replace4`] for a 16-bit field.
#[must_use]
pub const fn csum_replace2(check: u16, old: u16, new: u16) -> u16 {
    !fold((!check) as u64 + (!old) as u64 + new as u64)
}

/// murmur3's 32-bit finaliser.
const fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// EtherType of ARP, host byte order.
pub const ETH_P_ARP: u16 = 0x0806;
/// Length of an Ethernet/IPv4 ARP packet (RFC 826).
pub const ARP_ETH_IPV4_LEN: usize = 28;

/// Maximum number of published ports (`MESH_PORTS` entries) on one node;
/// also the number of per-port counter rows in `MESH_COUNTERS`.
pub const MESH_MAX_PORTS: u32 = 1_024;
/// Maximum number of `MESH_CONNTRACK` entries (two per flow on the entry
/// node, one on the backend's); the least recently used go first.
pub const MESH_MAX_CONNTRACK: u32 = 262_144;

/// [`MeshPort::flags`]: published in `host` mode, straight to the one
/// local task [`MeshPort::addr_be`] (no Maglev table).
pub const MESH_PORT_HOST: u8 = 1;

/// Key of `MESH_PORTS`: a published port.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeshPortKey {
    /// The published port, network byte order.
    pub port_be: u16,
    /// IP protocol, 6 (TCP) or 17 (UDP).
    pub protocol: u8,
    /// Zero.
    #[expect(
        clippy::pub_underscore_fields,
        reason = "explicit padding, named as the project's conventions ask"
    )]
    pub _pad: u8,
}

const _: () = assert!(core::mem::size_of::<MeshPortKey>() == 4);

/// Value of `MESH_PORTS`: where a published port's packets go.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeshPort {
    /// The ingress network's VNI, host byte order.
    pub vni: u32,
    /// `ingress` mode: the service's VIP on the ingress network (part of
    /// the flow hash, so every node picks the same backend for a flow);
    /// `host` mode: the local task's ingress address.
    pub addr_be: u32,
    /// The port inside the task, network byte order.
    pub target_port_be: u16,
    /// [`MESH_PORT_HOST`] or 0.
    pub flags: u8,
    /// Zero.
    #[expect(
        clippy::pub_underscore_fields,
        reason = "explicit padding, named as the project's conventions ask"
    )]
    pub _pad: u8,
    /// `ingress` mode: the slot of the VIP's Maglev table in `OVERLAY_MAGLEV`.
    pub maglev_slot: u32,
    /// The port's row in `MESH_COUNTERS`, below [`MESH_MAX_PORTS`].
    pub counter_row: u32,
}

const _: () = assert!(core::mem::size_of::<MeshPort>() == 20);

/// [`MeshConfig::hook`]: the XDP program runs the mesh and leaves the
/// balanced packets it does not tunnel itself to `tc_underlay_ingress` for
/// delivery, which knows them by their conntrack reply entry.
pub const MESH_HOOK_XDP: u32 = 0;
/// [`MeshConfig::hook`]: `tc_underlay_ingress` runs the whole mesh.
pub const MESH_HOOK_TC: u32 = 1;

/// The only value of `MESH_CONFIG` (index 0): node-wide mesh settings.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeshConfig {
    /// The node's underlay address, network byte order: published ports
    /// answer on it. `0` while unset: the mesh is off.
    pub node_ip_be: u32,
    /// ifindex of the underlay interface, where replies leave.
    pub underlay_ifindex: u32,
    /// [`MESH_HOOK_XDP`] or [`MESH_HOOK_TC`].
    pub hook: u32,
    /// With the XDP hook: non-zero to tunnel packets for a backend on
    /// another node straight back out of the underlay interface from XDP
    /// (`XDP_TX`, VXLAN built in place); zero to leave that to
    /// `tc_underlay_ingress`, for underlays where `XDP_TX` cannot be
    /// relied on (a veth whose peer runs no NAPI drops such frames).
    pub xdp_tunnel: u32,
    /// The VXLAN UDP port, host byte order.
    pub vxlan_port: u32,
    /// The ingress network's VNI, host byte order (`0` until a port is
    /// published): `tc_underlay_ingress` looks the flows `xdp_underlay`
    /// balanced up on it.
    pub ingress_vni: u32,
}

const _: () = assert!(core::mem::size_of::<MeshConfig>() == 24);

/// Value of `MESH_CONNTRACK`. A forward entry (client → node address and
/// published port, on the entry node) holds the backend and target port; a
/// reply entry (backend → client) holds the node address and published
/// port to put back as the reply's source, and the node that does it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeshFlow {
    /// Forward: the backend's address; reply: the address the client
    /// connected to. Network byte order.
    pub addr_be: u32,
    /// Forward: the target port; reply: the published port. Network byte
    /// order.
    pub port_be: u16,
    /// Zero.
    #[expect(
        clippy::pub_underscore_fields,
        reason = "explicit padding, named as the project's conventions ask"
    )]
    pub _pad: u16,
    /// Reply entries: the entry node's underlay address, **host byte
    /// order** (a tunnel key's), or `0` when this node is the entry node
    /// and translates the reply itself.
    pub entry_node: u32,
}

const _: () = assert!(core::mem::size_of::<MeshFlow>() == 12);

/// What the routing mesh did with a packet, counted per published port
/// (its row) or, for packets no port is known for, in the node's row
/// ([`MESH_NODE_ROW`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeshVerdict {
    /// Not for a published port of this node (node row): passed on.
    PassNotMesh = 0,
    /// A packet of a tracked flow, sent to its backend.
    Forward = 1,
    /// The first packet of a flow: a backend picked with Maglev.
    NewFlow = 2,
    /// A backend's reply, reverse-translated here (node row).
    Reply = 3,
    /// A backend's reply tunnelled back to the flow's entry node (node row).
    ReplyTunnelled = 4,
    /// No running backend for the port.
    DropNoBackend = 5,
    /// IPv4/TCP/UDP header truncated: dropped.
    DropTruncated = 6,
    /// A first fragment to a published port: later fragments carry no
    /// ports, so the datagram could not be balanced whole.
    DropFragment = 7,
    /// A helper (checksum, store, map update) failed.
    DropHelperFailed = 8,
    /// Sent to a backend's node straight from XDP: VXLAN built in place
    /// and transmitted back out of the underlay interface (node row).
    TunnelledInXdp = 9,
}

impl MeshVerdict {
    /// Every verdict, in slot order.
    pub const ALL: [Self; 10] = [
        Self::PassNotMesh,
        Self::Forward,
        Self::NewFlow,
        Self::Reply,
        Self::ReplyTunnelled,
        Self::DropNoBackend,
        Self::DropTruncated,
        Self::DropFragment,
        Self::DropHelperFailed,
        Self::TunnelledInXdp,
    ];

    /// Stable snake-case name used in status output.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PassNotMesh => "pass_not_mesh",
            Self::Forward => "forward",
            Self::NewFlow => "new_flow",
            Self::Reply => "reply",
            Self::ReplyTunnelled => "reply_tunnelled",
            Self::DropNoBackend => "drop_no_backend",
            Self::DropTruncated => "drop_truncated",
            Self::DropFragment => "drop_fragment",
            Self::DropHelperFailed => "drop_helper_failed",
            Self::TunnelledInXdp => "tunnelled_in_xdp",
        }
    }

    /// Whether the packet was dropped.
    #[must_use]
    pub const fn is_drop(self) -> bool {
        let slot = self as u32;
        slot >= Self::DropNoBackend as u32 && slot <= Self::DropHelperFailed as u32
    }
}

/// Number of [`MeshVerdict`]s per row.
#[expect(clippy::cast_possible_truncation, reason = "a handful of verdicts")]
pub const MESH_VERDICTS: u32 = MeshVerdict::ALL.len() as u32;
/// The node's own row in `MESH_COUNTERS`: packets of no published port.
pub const MESH_NODE_ROW: u32 = MESH_MAX_PORTS;
/// Size of `MESH_COUNTERS`: a row per published port plus the node's.
pub const MESH_COUNTER_SLOTS: u32 = (MESH_MAX_PORTS + 1) * MESH_VERDICTS;

/// Index into `MESH_COUNTERS`; rows past the node's are clamped to it.
#[must_use]
pub const fn mesh_slot(row: u32, verdict: MeshVerdict) -> u32 {
    let row = if row > MESH_NODE_ROW {
        MESH_NODE_ROW
    } else {
        row
    };
    row * MESH_VERDICTS + verdict as u32
}

#[cfg(feature = "user")]
// SAFETY: `PacketCount` is `#[repr(C)]`, `Copy`, has no padding (two u64s),
// and every bit pattern is valid.
unsafe impl aya::Pod for PacketCount {}

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, `Copy`, two u32s without padding; any bits are valid.
unsafe impl aya::Pod for OverlayEndpointKey {}

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, `Copy`, padding spelled out as `_pad`; any bits are valid.
unsafe impl aya::Pod for OverlayEndpoint {}

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, `Copy`, padding spelled out as `_pad`; any bits are valid.
unsafe impl aya::Pod for OverlayInterface {}

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, `Copy`, one u32; any bits are valid.
unsafe impl aya::Pod for OverlayConfig {}

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, `Copy`, padding spelled out as `_pad`; any bits are valid.
unsafe impl aya::Pod for OverlayFlowKey {}

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, `Copy`, padding spelled out as `_pad`; any bits are valid.
unsafe impl aya::Pod for MeshPortKey {}

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, `Copy`, padding spelled out as `_pad`; any bits are valid.
unsafe impl aya::Pod for MeshPort {}

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, `Copy`, three u32s; any bits are valid.
unsafe impl aya::Pod for MeshConfig {}

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, `Copy`, padding spelled out as `_pad`; any bits are valid.
unsafe impl aya::Pod for MeshFlow {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_do_not_overlap_between_directions() {
        assert_eq!(protocol_slot(Direction::UnderlayIngress, 255), 255);
        assert_eq!(protocol_slot(Direction::UnderlayEgress, 0), 256);
        assert_eq!(
            protocol_slot(Direction::UnderlayEgress, 255),
            PROTOCOL_COUNTER_SLOTS - 1
        );
        assert_eq!(
            verdict_slot(Direction::UnderlayEgress, Verdict::DropBadIpHeader),
            VERDICT_COUNTER_SLOTS - 1
        );
        assert_eq!(
            verdict_slot(Direction::UnderlayEgress, Verdict::PassIp),
            VERDICTS_PER_DIRECTION
        );
    }

    #[test]
    fn every_pinned_map_has_its_layout() {
        let names: [&str; 13] = core::array::from_fn(|i| PINNED_LAYOUTS[i].name);
        assert_eq!(names, map_names::PINNED);
        assert_eq!(PINNED_LAYOUTS[8].key_size, 20);
        assert_eq!(PINNED_LAYOUTS[5].max_entries, 48);
        assert_eq!(PINNED_LAYOUTS[10].value_size, 24);
        assert_eq!(PINNED_LAYOUTS[12].max_entries, 1025 * 10);
    }

    #[test]
    fn layouts_are_fixed() {
        assert_eq!(core::mem::size_of::<PacketCount>(), 16);
        assert_eq!(core::mem::align_of::<PacketCount>(), 8);
        assert_eq!(core::mem::size_of::<Direction>(), 4);
        assert_eq!(core::mem::size_of::<Verdict>(), 4);
    }

    #[test]
    fn verdict_order_matches_discriminants() {
        for (i, v) in Verdict::ALL.iter().enumerate() {
            assert_eq!(*v as usize, i);
        }
        for (i, d) in Direction::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
    }

    #[test]
    fn overlay_layouts_are_fixed() {
        assert_eq!(core::mem::size_of::<OverlayEndpointKey>(), 8);
        assert_eq!(core::mem::size_of::<OverlayEndpoint>(), 16);
        assert_eq!(core::mem::align_of::<OverlayEndpoint>(), 4);
        assert_eq!(core::mem::size_of::<OverlayInterface>(), 12);
        assert_eq!(core::mem::size_of::<OverlayConfig>(), 4);
        assert_eq!(core::mem::offset_of!(OverlayEndpoint, mac), 8);
        assert_eq!(core::mem::offset_of!(OverlayInterface, mac), 4);
        assert_eq!(core::mem::size_of::<OverlayFlowKey>(), 20);
        assert_eq!(core::mem::offset_of!(OverlayFlowKey, protocol), 16);
    }

    #[test]
    fn flow_hash_spreads_ports_and_depends_on_every_field() {
        let base = flow_hash(1, 2, 3, 4, 6);
        assert_ne!(base, flow_hash(9, 2, 3, 4, 6));
        assert_ne!(base, flow_hash(1, 9, 3, 4, 6));
        assert_ne!(base, flow_hash(1, 2, 9, 4, 6));
        assert_ne!(base, flow_hash(1, 2, 3, 9, 6));
        assert_ne!(base, flow_hash(1, 2, 3, 4, 17));
        // 3000 consecutive source ports over a table of 1021 slots reach
        // most of it (uniform hashing would reach ~95 %).
        let mut seen = [false; OVERLAY_MAGLEV_SIZE as usize];
        for port in 30_000..33_000_u16 {
            seen[(flow_hash(1, 2, port.to_be(), 80_u16.to_be(), 6) % OVERLAY_MAGLEV_SIZE)
                as usize] = true;
        }
        assert!(seen.iter().filter(|&&s| s).count() > 900);
    }

    #[test]
    fn overlay_slots_cover_every_hook_and_verdict_once() {
        for (i, v) in OverlayVerdict::ALL.iter().enumerate() {
            assert_eq!(*v as usize, i);
        }
        for (i, h) in OverlayHook::ALL.iter().enumerate() {
            assert_eq!(*h as usize, i);
        }
        assert_eq!(
            overlay_slot(
                OverlayHook::UnderlayIngress,
                OverlayVerdict::RedirectUnderlay
            ),
            OVERLAY_COUNTER_SLOTS - 1
        );
        assert_eq!(
            overlay_slot(OverlayHook::VxlanIngress, OverlayVerdict::PassNotOurs),
            OVERLAY_VERDICTS_PER_HOOK
        );
        let drops = OverlayVerdict::ALL.iter().filter(|v| v.is_drop()).count();
        assert_eq!(drops, 11);
        assert!(!OverlayVerdict::RedirectRemote.is_drop());
        assert!(OverlayVerdict::DropNoEndpoint.is_drop());
        assert!(!OverlayVerdict::RedirectUnderlay.is_drop());
        assert!(OverlayEndpoint::default().is_local());
    }

    /// The Internet checksum of `words`, computed from scratch.
    fn checksum(words: &[u16]) -> u16 {
        !fold(words.iter().map(|&w| u64::from(w)).sum())
    }

    #[test]
    fn incremental_checksums_match_a_full_recomputation() {
        let mut words = [
            0x4500, 0x003c, 0x1c46, 0x4000, 0x4006, 0, 0xc612, 0x0002, 0xc612, 0x0003,
        ];
        let check = checksum(&words);
        // The destination address (last two words) and then one word change.
        let old = u32::from(words[8]) | (u32::from(words[9]) << 16);
        let new = 0x0a00_0005_u32;
        words[8] = (new & 0xffff) as u16;
        words[9] = (new >> 16) as u16;
        let updated = csum_replace4(check, old, new);
        assert_eq!(updated, checksum(&words));
        let old_word = words[2];
        words[2] = 0xbeef;
        assert_eq!(csum_replace2(updated, old_word, 0xbeef), checksum(&words));
        // Replacing a value by itself changes nothing.
        assert_eq!(csum_replace4(check, 7, 7), check);
    }

    #[test]
    fn mesh_slots_cover_every_row_and_verdict_once() {
        for (i, v) in MeshVerdict::ALL.iter().enumerate() {
            assert_eq!(*v as usize, i);
        }
        assert_eq!(mesh_slot(0, MeshVerdict::PassNotMesh), 0);
        assert_eq!(mesh_slot(1, MeshVerdict::PassNotMesh), MESH_VERDICTS);
        assert_eq!(
            mesh_slot(MESH_NODE_ROW, MeshVerdict::TunnelledInXdp),
            MESH_COUNTER_SLOTS - 1
        );
        assert!(!MeshVerdict::TunnelledInXdp.is_drop());
        assert_eq!(
            mesh_slot(u32::MAX, MeshVerdict::Forward),
            mesh_slot(MESH_NODE_ROW, MeshVerdict::Forward)
        );
        assert!(MeshVerdict::DropNoBackend.is_drop());
        assert!(!MeshVerdict::ReplyTunnelled.is_drop());
        assert_eq!(core::mem::offset_of!(MeshPort, maglev_slot), 12);
        assert_eq!(core::mem::offset_of!(MeshFlow, entry_node), 8);
    }

    #[test]
    fn classify_rules() {
        // Runt frame.
        assert_eq!(
            classify(13, 0, 0, 0),
            Classified::Other(Verdict::DropShortFrame)
        );
        // ARP passes unparsed.
        assert_eq!(
            classify(42, 0x0806, 0, 0),
            Classified::Other(Verdict::PassNotIp)
        );
        // IPv4 UDP.
        assert_eq!(
            classify(60, ETH_P_IP, 0x45, 17),
            Classified::Ip { protocol: 17 }
        );
        // IPv4 truncated header, bad IHL, wrong version.
        assert_eq!(
            classify(30, ETH_P_IP, 0x45, 17),
            Classified::Other(Verdict::DropBadIpHeader)
        );
        assert_eq!(
            classify(60, ETH_P_IP, 0x44, 17),
            Classified::Other(Verdict::DropBadIpHeader)
        );
        assert_eq!(
            classify(60, ETH_P_IP, 0x65, 17),
            Classified::Other(Verdict::DropBadIpHeader)
        );
        // IPv6 TCP and a truncated IPv6 header.
        assert_eq!(
            classify(74, ETH_P_IPV6, 0x60, 6),
            Classified::Ip { protocol: 6 }
        );
        assert_eq!(
            classify(50, ETH_P_IPV6, 0x60, 6),
            Classified::Other(Verdict::DropBadIpHeader)
        );
        assert_eq!(ip_next_offset(ETH_P_IPV6), 6);
        assert_eq!(ip_next_offset(ETH_P_IP), 9);
    }
}
