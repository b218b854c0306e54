//! The overlay's maps: endpoints (`OVERLAY_ENDPOINTS`), task interfaces
//! (`OVERLAY_INTERFACES`) and the node's settings (`OVERLAY_CONFIG`). The
//! overlay hooks count in `REASON_COUNTERS` ([`crate::Reason`]).

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
        assert!(OverlayEndpoint::default().is_local());
    }
}
