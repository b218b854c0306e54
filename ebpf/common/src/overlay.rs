//! The overlay's maps: endpoints (`OVERLAY_ENDPOINTS`), task interfaces
//! (`OVERLAY_INTERFACES`), the node's settings (`OVERLAY_CONFIG`), and what
//! the overlay hooks count ([`OverlayHook`] × [`OverlayVerdict`] in
//! `OVERLAY_COUNTERS`).

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

/// The only value of `OVERLAY_CONFIG` (index 0): the node's underlay, which
/// the programs tunnel over themselves (`vxlan` in the programs), with the
/// kernel's VXLAN device for what they leave to the stack.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OverlayConfig {
    /// ifindex of the node's flow-based (`external`) VXLAN device; `0` while
    /// there is none, in which case frames for remote endpoints are dropped.
    pub vxlan_ifindex: u32,
    /// ifindex of the underlay interface: frames the programs encapsulate
    /// leave through it, and VXLAN arriving on it is decapsulated by
    /// `tc_underlay_ingress`.
    pub underlay_ifindex: u32,
    /// The node's underlay address, network byte order: the tunnels' source
    /// and where VXLAN (and the routing mesh's published ports) arrive. `0`
    /// while unset: the programs then tunnel only through the VXLAN device.
    pub node_ip_be: u32,
    /// The VXLAN UDP port, host byte order.
    pub vxlan_port: u32,
}

const _: () = assert!(core::mem::size_of::<OverlayConfig>() == 16);

/// An overlay program's hook. Each counts into its own range of
/// `OVERLAY_COUNTERS` slots.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverlayHook {
    /// `tc_endpoint_ingress`: frames sent by a local task.
    EndpointIngress = 0,
    /// `tc_vxlan_ingress`: frames decapsulated by the VXLAN device.
    VxlanIngress = 1,
    /// `tc_underlay_ingress`: VXLAN from other nodes, decapsulated and
    /// delivered, and frames the routing mesh balanced, delivered to a
    /// local task or tunnelled to the backend's node.
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
    /// Tunnelled to the endpoint's node: encapsulated in VXLAN by the
    /// program and sent out of the underlay interface.
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
    /// Tunnelled to the endpoint's node through the kernel's VXLAN device:
    /// the frame would not fit the underlay's MTU once encapsulated (the
    /// device's path fragments the outer packet), or tc could not
    /// encapsulate it.
    RedirectRemoteDevice = 16,
}

impl OverlayVerdict {
    /// Every verdict, in slot order.
    pub const ALL: [Self; 17] = [
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
        Self::RedirectRemoteDevice,
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
            Self::RedirectRemoteDevice => "redirect_remote_device",
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
// SAFETY: `#[repr(C)]`, `Copy`, four u32s; any bits are valid.
unsafe impl aya::Pod for OverlayConfig {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OverlayFlowKey;

    #[test]
    fn overlay_layouts_are_fixed() {
        assert_eq!(core::mem::size_of::<OverlayEndpointKey>(), 8);
        assert_eq!(core::mem::size_of::<OverlayEndpoint>(), 16);
        assert_eq!(core::mem::align_of::<OverlayEndpoint>(), 4);
        assert_eq!(core::mem::size_of::<OverlayInterface>(), 12);
        assert_eq!(core::mem::size_of::<OverlayConfig>(), 16);
        assert_eq!(core::mem::offset_of!(OverlayEndpoint, mac), 8);
        assert_eq!(core::mem::offset_of!(OverlayInterface, mac), 4);
        assert_eq!(core::mem::size_of::<OverlayFlowKey>(), 20);
        assert_eq!(core::mem::offset_of!(OverlayFlowKey, protocol), 16);
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
                OverlayVerdict::RedirectRemoteDevice
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
        assert!(!OverlayVerdict::RedirectRemoteDevice.is_drop());
        assert!(OverlayEndpoint::default().is_local());
    }
}
