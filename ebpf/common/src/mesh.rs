//! The routing mesh's maps: published ports (`MESH_PORTS`), the node's
//! settings (`MESH_CONFIG`), tracked flows (`MESH_CONNTRACK` values), and
//! what the mesh counts per port: a row of [`Reason`]s per published port
//! and one for the node (`MESH_COUNTERS`, [`mesh_slot`]).

use crate::{REASONS, Reason};

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

/// [`MeshConfig::hook`]: the mesh is off (nothing written yet).
pub const MESH_HOOK_OFF: u32 = 0;
/// [`MeshConfig::hook`]: the XDP program runs the mesh and leaves the
/// balanced packets it does not tunnel itself to `tc_underlay_ingress` for
/// delivery, which knows them by their conntrack reply entry.
pub const MESH_HOOK_XDP: u32 = 1;
/// [`MeshConfig::hook`]: `tc_underlay_ingress` runs the whole mesh.
pub const MESH_HOOK_TC: u32 = 2;

/// The only value of `MESH_CONFIG` (index 0): node-wide mesh settings. The
/// address published ports answer on, the underlay interface and the VXLAN
/// port are the overlay's (`OverlayConfig`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeshConfig {
    /// [`MESH_HOOK_XDP`] or [`MESH_HOOK_TC`]; [`MESH_HOOK_OFF`] while unset.
    pub hook: u32,
    /// With the XDP hook: non-zero to tunnel packets for a backend on
    /// another node straight back out of the underlay interface from XDP
    /// (`XDP_TX`, VXLAN built in place); zero to leave that to
    /// `tc_underlay_ingress`, for underlays where `XDP_TX` cannot be
    /// relied on (a veth whose peer runs no NAPI drops such frames).
    pub xdp_tunnel: u32,
    /// The ingress network's VNI, host byte order (`0` until a port is
    /// published): `tc_underlay_ingress` looks the flows `xdp_underlay`
    /// balanced up on it.
    pub ingress_vni: u32,
}

const _: () = assert!(core::mem::size_of::<MeshConfig>() == 12);

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

/// The node's own row in `MESH_COUNTERS`: packets of no published port
/// (passed on, or dropped as truncated before their port was known) and
/// replies translated or tunnelled back.
pub const MESH_NODE_ROW: u32 = MESH_MAX_PORTS;
/// Size of `MESH_COUNTERS`: a row of [`REASONS`] per published port plus
/// the node's.
pub const MESH_COUNTER_SLOTS: u32 = (MESH_MAX_PORTS + 1) * REASONS;

/// Index into `MESH_COUNTERS`: packets of published port `row` (or of
/// [`MESH_NODE_ROW`]) counted under `reason`; rows past the node's are
/// clamped to it.
#[must_use]
pub const fn mesh_slot(row: u32, reason: Reason) -> u32 {
    let row = if row > MESH_NODE_ROW {
        MESH_NODE_ROW
    } else {
        row
    };
    row * REASONS + reason as u32
}

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
    fn mesh_slots_cover_every_row_and_reason_once() {
        assert_eq!(mesh_slot(0, Reason::PassIp), 0);
        assert_eq!(mesh_slot(1, Reason::PassIp), REASONS);
        assert_eq!(
            mesh_slot(MESH_NODE_ROW, Reason::DropFragment),
            MESH_COUNTER_SLOTS - 1
        );
        assert_eq!(
            mesh_slot(u32::MAX, Reason::Forward),
            mesh_slot(MESH_NODE_ROW, Reason::Forward)
        );
        assert_eq!(core::mem::offset_of!(MeshPort, maglev_slot), 12);
        assert_eq!(core::mem::offset_of!(MeshFlow, entry_node), 8);
    }
}
