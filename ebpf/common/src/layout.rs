//! The layout of every pinned map ([`PINNED_LAYOUTS`]): what a pin left by
//! another build must match to be reused.

use crate::{
    MESH_COUNTER_SLOTS, MESH_MAX_CONNTRACK, MESH_MAX_PORTS, MeshConfig, MeshFlow, MeshPort,
    MeshPortKey, OVERLAY_MAGLEV_ENTRIES, OVERLAY_MAX_CONNTRACK, OVERLAY_MAX_ENDPOINTS,
    OVERLAY_MAX_INTERFACES, OVERLAY_MAX_SERVICES, OverlayConfig, OverlayEndpoint,
    OverlayEndpointKey, OverlayFlowKey, OverlayInterface, PROTOCOL_COUNTER_SLOTS, PacketCount,
    REASON_COUNTER_SLOTS, SOCK_MAX_REVERSE, SockReverseKey, map_names,
};

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
pub const PINNED_LAYOUTS: [MapLayout; 14] = [
    layout::<u32, PacketCount>(map_names::PROTOCOL_COUNTERS, PROTOCOL_COUNTER_SLOTS),
    layout::<u32, u64>(map_names::REASON_COUNTERS, REASON_COUNTER_SLOTS),
    layout::<OverlayEndpointKey, OverlayEndpoint>(
        map_names::OVERLAY_ENDPOINTS,
        OVERLAY_MAX_ENDPOINTS,
    ),
    layout::<u32, OverlayInterface>(map_names::OVERLAY_INTERFACES, OVERLAY_MAX_INTERFACES),
    layout::<u32, OverlayConfig>(map_names::OVERLAY_CONFIG, 1),
    layout::<OverlayEndpointKey, u32>(map_names::OVERLAY_SERVICES, OVERLAY_MAX_SERVICES),
    layout::<u32, u32>(map_names::OVERLAY_MAGLEV, OVERLAY_MAGLEV_ENTRIES),
    layout::<OverlayFlowKey, u32>(map_names::OVERLAY_CONNTRACK, OVERLAY_MAX_CONNTRACK),
    layout::<MeshPortKey, MeshPort>(map_names::MESH_PORTS, MESH_MAX_PORTS),
    layout::<u32, MeshConfig>(map_names::MESH_CONFIG, 1),
    layout::<OverlayFlowKey, MeshFlow>(map_names::MESH_CONNTRACK, MESH_MAX_CONNTRACK),
    layout::<u32, u64>(map_names::MESH_COUNTERS, MESH_COUNTER_SLOTS),
    layout::<u32, u32>(map_names::SOCK_SERVICES, OVERLAY_MAX_SERVICES),
    layout::<SockReverseKey, u32>(map_names::SOCK_REVERSE, SOCK_MAX_REVERSE),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pinned_map_has_its_layout() {
        let names: [&str; 14] = core::array::from_fn(|i| PINNED_LAYOUTS[i].name);
        assert_eq!(names, map_names::PINNED);
        assert_eq!(PINNED_LAYOUTS[1].max_entries, 9 * 33);
        assert_eq!(PINNED_LAYOUTS[7].key_size, 20);
        assert_eq!(PINNED_LAYOUTS[9].value_size, 12);
        assert_eq!(PINNED_LAYOUTS[11].max_entries, 1025 * 33);
        assert_eq!(PINNED_LAYOUTS[12].key_size, 4);
        assert_eq!(PINNED_LAYOUTS[13].key_size, 16);
    }
}
