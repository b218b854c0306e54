//! The one space of reasons every hook counts a packet under ([`Reason`]:
//! what the hook did with it; the `Drop*` ones are the typed drop
//! reasons), the programs that count ([`Hook`]) and their slots in
//! `REASON_COUNTERS` ([`reason_slot`]). The routing mesh's per-port rows
//! (`MESH_COUNTERS`, [`crate::mesh_slot`]) count the same reasons, so a
//! mesh drop is the same reason in its hook's row and in its port's.

use crate::program_names;

/// A program that counts: each has its own row of `REASON_COUNTERS`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// `xdp_underlay`: what the node's underlay interface receives, and
    /// the routing mesh's first hook.
    XdpUnderlay = 0,
    /// `tc_underlay_ingress`: VXLAN from other nodes, decapsulated and
    /// delivered, and the routing mesh's packets, delivered to a local
    /// task or tunnelled to the backend's node.
    TcUnderlayIngress = 1,
    /// `tc_underlay_egress`: what the node sends on its underlay.
    TcUnderlayEgress = 2,
    /// `tc_endpoint_ingress`: frames sent by a local task.
    TcEndpointIngress = 3,
    /// `tc_vxlan_ingress`: frames decapsulated by the VXLAN device.
    TcVxlanIngress = 4,
    /// `sock_lb_connect4`: a task's TCP or UDP `connect()` (calls, not
    /// packets, are what the socket hooks count).
    SockConnect4 = 5,
    /// `sock_lb_sendmsg4`: a task's UDP `sendmsg()` with a destination.
    SockSendmsg4 = 6,
    /// `sock_lb_recvmsg4`: a task's UDP `recvmsg()`, its source address.
    SockRecvmsg4 = 7,
    /// `sock_lb_getpeername4`: a task's `getpeername()`.
    SockGetpeername4 = 8,
}

impl Hook {
    /// Every hook, in row order.
    pub const ALL: [Self; 9] = [
        Self::XdpUnderlay,
        Self::TcUnderlayIngress,
        Self::TcUnderlayEgress,
        Self::TcEndpointIngress,
        Self::TcVxlanIngress,
        Self::SockConnect4,
        Self::SockSendmsg4,
        Self::SockRecvmsg4,
        Self::SockGetpeername4,
    ];

    /// The hook's program name, which status output keys its counters by.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::XdpUnderlay => program_names::XDP_UNDERLAY,
            Self::TcUnderlayIngress => program_names::TC_UNDERLAY_INGRESS,
            Self::TcUnderlayEgress => program_names::TC_UNDERLAY_EGRESS,
            Self::TcEndpointIngress => program_names::TC_ENDPOINT_INGRESS,
            Self::TcVxlanIngress => program_names::TC_VXLAN_INGRESS,
            Self::SockConnect4 => program_names::SOCK_LB_CONNECT4,
            Self::SockSendmsg4 => program_names::SOCK_LB_SENDMSG4,
            Self::SockRecvmsg4 => program_names::SOCK_LB_RECVMSG4,
            Self::SockGetpeername4 => program_names::SOCK_LB_GETPEERNAME4,
        }
    }
}

/// What a hook did with a packet. Every packet a hook sees lands in
/// exactly one reason of the hook's row; a packet for a published port is
/// also counted in the port's row of the routing mesh. The passes and
/// redirects come first, then the drops (`Drop*`, from
/// [`Reason::DropShortFrame`] on).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// An IPv4 or IPv6 packet, counted by protocol and passed on.
    PassIp = 0,
    /// Not IP (ARP, LLDP, VLAN-tagged …): passed on untouched, not parsed.
    PassNotIp = 1,
    /// Arrived on an interface that is not in `OVERLAY_INTERFACES`: not an
    /// overlay interface, handed on unchanged.
    PassNotOurs = 2,
    /// Not for a published port of this node (the mesh's node row).
    PassNotMesh = 3,
    /// An ARP request answered in place (proxy ARP) and sent back to the task.
    ArpReply = 4,
    /// Delivered into a task on this node (`bpf_redirect_peer`).
    RedirectLocal = 5,
    /// Tunnelled to the endpoint's node: encapsulated in VXLAN by the
    /// program and sent out of the underlay interface.
    RedirectRemote = 6,
    /// Tunnelled to the endpoint's node through the kernel's VXLAN device:
    /// the frame would not fit the underlay's MTU once encapsulated (the
    /// device's path fragments the outer packet), or tc could not
    /// encapsulate it.
    RedirectRemoteDevice = 7,
    /// A backend's reply to a client outside the swarm, reverse-translated
    /// by the routing mesh and sent out of the underlay interface.
    RedirectUnderlay = 8,
    /// The first packet of a routing mesh flow: a backend picked with
    /// Maglev (in `xdp_underlay`, then passed up to tc for delivery).
    NewFlow = 9,
    /// A packet of a tracked routing mesh flow, sent to its backend (in
    /// `xdp_underlay`, passed up to tc for delivery).
    Forward = 10,
    /// A backend's reply, reverse-translated here (the mesh's node row).
    Reply = 11,
    /// A backend's reply tunnelled back to the flow's entry node (the
    /// mesh's node row).
    ReplyTunnelled = 12,
    /// Sent to a backend's node straight from XDP: VXLAN built in place
    /// and transmitted back out of the underlay interface.
    TunnelledInXdp = 13,
    /// A socket call to no service VIP (or neither TCP nor UDP), or one with
    /// no translation to undo: left as it was.
    PassNotService = 14,
    /// A socket call's VIP replaced by a backend's address (connect,
    /// sendmsg).
    Translated = 15,
    /// A socket call's backend address shown as the VIP it was chosen for
    /// (recvmsg, getpeername).
    Reversed = 16,
    /// A socket's reverse entry whose VIP is gone: removed, the address
    /// shown as it is.
    StaleReverse = 17,
    /// Frame shorter than an Ethernet header.
    DropShortFrame = 18,
    /// EtherType says IPv4/IPv6 but the header is truncated or invalid
    /// (wrong version, IHL below 5): the kernel would drop it too.
    DropBadIpHeader = 19,
    /// Runt frame, truncated or malformed ARP/IPv4 header, or VXLAN
    /// without a VNI or around anything but IPv4.
    DropBadHeader = 20,
    /// Neither IPv4 nor ARP (IPv6, LLDP, VLAN tags …) from a task.
    DropNotIpv4 = 21,
    /// An ARP frame that is not answered: a reply, a gratuitous ARP or a
    /// probe for the task's own address, a non-Ethernet/IPv4 ARP.
    DropArpNotAnswered = 22,
    /// No endpoint has the destination address in this network (also what
    /// an address of another network looks like: isolation).
    DropNoEndpoint = 23,
    /// VXLAN ingress: the destination is an endpoint on another node.
    DropNotLocal = 24,
    /// VXLAN ingress: the frame carries no tunnel metadata.
    DropNoTunnelKey = 25,
    /// A local endpoint whose host-side interface is missing from
    /// `OVERLAY_INTERFACES` (maps being updated).
    DropNoTargetInterface = 26,
    /// A remote endpoint but no VXLAN device configured in `OVERLAY_CONFIG`.
    DropNoVxlanDevice = 27,
    /// A helper (store bytes, checksum, tunnel key, redirect, map update)
    /// failed.
    DropHelperFailed = 28,
    /// A service VIP's Maglev table, or a published port's, has no
    /// running backend.
    DropNoBackend = 29,
    /// To a service VIP, but neither TCP nor UDP (ICMP, …): a VIP only
    /// balances TCP and UDP, as Docker's do.
    DropVipProtocol = 30,
    /// To a published port, but the IPv4, TCP or UDP header is truncated.
    DropTruncated = 31,
    /// A first fragment to a published port: later fragments carry no
    /// ports, so the datagram could not be balanced whole.
    DropFragment = 32,
}

impl Reason {
    /// Every reason, in slot order.
    pub const ALL: [Self; 33] = [
        Self::PassIp,
        Self::PassNotIp,
        Self::PassNotOurs,
        Self::PassNotMesh,
        Self::ArpReply,
        Self::RedirectLocal,
        Self::RedirectRemote,
        Self::RedirectRemoteDevice,
        Self::RedirectUnderlay,
        Self::NewFlow,
        Self::Forward,
        Self::Reply,
        Self::ReplyTunnelled,
        Self::TunnelledInXdp,
        Self::PassNotService,
        Self::Translated,
        Self::Reversed,
        Self::StaleReverse,
        Self::DropShortFrame,
        Self::DropBadIpHeader,
        Self::DropBadHeader,
        Self::DropNotIpv4,
        Self::DropArpNotAnswered,
        Self::DropNoEndpoint,
        Self::DropNotLocal,
        Self::DropNoTunnelKey,
        Self::DropNoTargetInterface,
        Self::DropNoVxlanDevice,
        Self::DropHelperFailed,
        Self::DropNoBackend,
        Self::DropVipProtocol,
        Self::DropTruncated,
        Self::DropFragment,
    ];

    /// Stable snake-case name used in status output; the drops' start
    /// with `drop_`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PassIp => "pass_ip",
            Self::PassNotIp => "pass_not_ip",
            Self::PassNotOurs => "pass_not_ours",
            Self::PassNotMesh => "pass_not_mesh",
            Self::ArpReply => "arp_reply",
            Self::RedirectLocal => "redirect_local",
            Self::RedirectRemote => "redirect_remote",
            Self::RedirectRemoteDevice => "redirect_remote_device",
            Self::RedirectUnderlay => "redirect_underlay",
            Self::NewFlow => "new_flow",
            Self::Forward => "forward",
            Self::Reply => "reply",
            Self::ReplyTunnelled => "reply_tunnelled",
            Self::TunnelledInXdp => "tunnelled_in_xdp",
            Self::PassNotService => "pass_not_service",
            Self::Translated => "translated",
            Self::Reversed => "reversed",
            Self::StaleReverse => "stale_reverse",
            Self::DropShortFrame => "drop_short_frame",
            Self::DropBadIpHeader => "drop_bad_ip_header",
            Self::DropBadHeader => "drop_bad_header",
            Self::DropNotIpv4 => "drop_not_ipv4",
            Self::DropArpNotAnswered => "drop_arp_not_answered",
            Self::DropNoEndpoint => "drop_no_endpoint",
            Self::DropNotLocal => "drop_not_local",
            Self::DropNoTunnelKey => "drop_no_tunnel_key",
            Self::DropNoTargetInterface => "drop_no_target_interface",
            Self::DropNoVxlanDevice => "drop_no_vxlan_device",
            Self::DropHelperFailed => "drop_helper_failed",
            Self::DropNoBackend => "drop_no_backend",
            Self::DropVipProtocol => "drop_vip_protocol",
            Self::DropTruncated => "drop_truncated",
            Self::DropFragment => "drop_fragment",
        }
    }

    /// Whether the hook drops the packet.
    #[must_use]
    pub const fn is_drop(self) -> bool {
        self as u32 >= Self::DropShortFrame as u32
    }
}

/// Number of [`Reason`]s: the slots of a row.
#[expect(clippy::cast_possible_truncation, reason = "a few dozen reasons")]
pub const REASONS: u32 = Reason::ALL.len() as u32;

/// Size of the `REASON_COUNTERS` array: a row per [`Hook`].
#[expect(clippy::cast_possible_truncation, reason = "a handful of hooks")]
pub const REASON_COUNTER_SLOTS: u32 = Hook::ALL.len() as u32 * REASONS;

/// Index into `REASON_COUNTERS`.
#[must_use]
pub const fn reason_slot(hook: Hook, reason: Reason) -> u32 {
    hook as u32 * REASONS + reason as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason's slot and name, as pinned maps and status readers
    /// know them: changing one is a visible change.
    const STABLE: [(u32, &str); 33] = [
        (0, "pass_ip"),
        (1, "pass_not_ip"),
        (2, "pass_not_ours"),
        (3, "pass_not_mesh"),
        (4, "arp_reply"),
        (5, "redirect_local"),
        (6, "redirect_remote"),
        (7, "redirect_remote_device"),
        (8, "redirect_underlay"),
        (9, "new_flow"),
        (10, "forward"),
        (11, "reply"),
        (12, "reply_tunnelled"),
        (13, "tunnelled_in_xdp"),
        (14, "pass_not_service"),
        (15, "translated"),
        (16, "reversed"),
        (17, "stale_reverse"),
        (18, "drop_short_frame"),
        (19, "drop_bad_ip_header"),
        (20, "drop_bad_header"),
        (21, "drop_not_ipv4"),
        (22, "drop_arp_not_answered"),
        (23, "drop_no_endpoint"),
        (24, "drop_not_local"),
        (25, "drop_no_tunnel_key"),
        (26, "drop_no_target_interface"),
        (27, "drop_no_vxlan_device"),
        (28, "drop_helper_failed"),
        (29, "drop_no_backend"),
        (30, "drop_vip_protocol"),
        (31, "drop_truncated"),
        (32, "drop_fragment"),
    ];

    #[test]
    fn every_reason_has_a_unique_stable_name_and_slot() {
        let listed: [(u32, &str); 33] =
            core::array::from_fn(|i| (Reason::ALL[i] as u32, Reason::ALL[i].as_str()));
        assert_eq!(listed, STABLE);
        for (i, (slot, name)) in STABLE.iter().enumerate() {
            assert_eq!(*slot as usize, i, "slots are dense, in order");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name} is snake case"
            );
            for (other, _) in STABLE.iter().filter(|(_, n)| n == name) {
                assert_eq!(other, slot, "{name} names one reason");
            }
        }
    }

    #[test]
    fn drops_are_the_reasons_named_drop() {
        for reason in Reason::ALL {
            assert_eq!(
                reason.is_drop(),
                reason.as_str().starts_with("drop_"),
                "{}",
                reason.as_str()
            );
        }
        assert!(!Reason::TunnelledInXdp.is_drop());
        assert!(Reason::DropShortFrame.is_drop());
    }

    #[test]
    fn hooks_have_their_program_names_and_disjoint_rows() {
        for (i, hook) in Hook::ALL.iter().enumerate() {
            assert_eq!(*hook as usize, i);
        }
        let names: [&str; 9] = core::array::from_fn(|i| Hook::ALL[i].as_str());
        assert_eq!(
            names,
            [
                "xdp_underlay",
                "tc_underlay_ingress",
                "tc_underlay_egress",
                "tc_endpoint_ingress",
                "tc_vxlan_ingress",
                "sock_lb_connect4",
                "sock_lb_sendmsg4",
                "sock_lb_recvmsg4",
                "sock_lb_getpeername4",
            ]
        );
        assert_eq!(reason_slot(Hook::XdpUnderlay, Reason::PassIp), 0);
        assert_eq!(
            reason_slot(Hook::TcUnderlayIngress, Reason::PassIp),
            REASONS
        );
        assert_eq!(
            reason_slot(Hook::SockGetpeername4, Reason::DropFragment),
            REASON_COUNTER_SLOTS - 1
        );
        assert_eq!(core::mem::size_of::<Reason>(), 4);
        assert_eq!(core::mem::size_of::<Hook>(), 4);
    }
}
