//! Flow tracking of service VIPs and the routing mesh: the key of
//! `OVERLAY_CONNTRACK` and `MESH_CONNTRACK` ([`OverlayFlowKey`]) and its two
//! directions.

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

#[cfg(feature = "user")]
// SAFETY: `#[repr(C)]`, `Copy`, padding spelled out as `_pad`; any bits are valid.
unsafe impl aya::Pod for OverlayFlowKey {}
