//! Names of the maps the programs declare with `pinning = by-name`; the
//! agent pins each under `/sys/fs/bpf/shoal/<node-id>/<name>` and reuses the
//! pin on restart, so counters survive an agent restart.

/// `PerCpuArray<PacketCount>`, indexed by [`super::protocol_slot`].
pub const PROTOCOL_COUNTERS: &str = "PROTOCOL_COUNTERS";
/// `PerCpuArray<u64>`, indexed by [`super::reason_slot`]: one row per
/// hook, one slot per reason.
pub const REASON_COUNTERS: &str = "REASON_COUNTERS";
/// `HashMap<OverlayEndpointKey, OverlayEndpoint>`: every endpoint of
/// every overlay network this node takes part in, local and remote.
pub const OVERLAY_ENDPOINTS: &str = "OVERLAY_ENDPOINTS";
/// `HashMap<u32, OverlayInterface>`: host-side veth ifindex of a local
/// task's interface → its network and MAC.
pub const OVERLAY_INTERFACES: &str = "OVERLAY_INTERFACES";
/// `Array<OverlayConfig>` with one entry, index 0.
pub const OVERLAY_CONFIG: &str = "OVERLAY_CONFIG";
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
/// `PerCpuArray<u64>`, indexed by [`super::mesh_slot`]: one row per
/// published port and the node's, one slot per reason.
pub const MESH_COUNTERS: &str = "MESH_COUNTERS";
/// `HashMap<u32, u32>`: a service VIP (network byte order) → its slot in
/// `OVERLAY_MAGLEV`, for the socket hooks; the same VIPs and slots as
/// `OVERLAY_SERVICES`, keyed by address alone (subnets never overlap,
/// so the address names its network).
pub const SOCK_SERVICES: &str = "SOCK_SERVICES";
/// `LruHashMap<SockReverseKey, u32>`: per socket translated to a
/// backend, the VIP to show in the backend's place.
pub const SOCK_REVERSE: &str = "SOCK_REVERSE";
/// Every pinned map, for pinning, reuse and removal.
pub const PINNED: [&str; 14] = [
    PROTOCOL_COUNTERS,
    REASON_COUNTERS,
    OVERLAY_ENDPOINTS,
    OVERLAY_INTERFACES,
    OVERLAY_CONFIG,
    OVERLAY_SERVICES,
    OVERLAY_MAGLEV,
    OVERLAY_CONNTRACK,
    MESH_PORTS,
    MESH_CONFIG,
    MESH_CONNTRACK,
    MESH_COUNTERS,
    SOCK_SERVICES,
    SOCK_REVERSE,
];
