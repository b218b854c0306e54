//! The routing mesh (DESIGN §5, data path 5), shared by its hooks: a TCP or
//! UDP packet to the node's underlay address on a published port gets a
//! backend among the service's running tasks on the `ingress` network,
//! from the VIP's Maglev table (identical on every node, and hashed over
//! the client's address and port, the VIP and the target port, so a flow
//! picks the same backend whichever node it enters), a conntrack entry
//! keeps it, and its destination becomes the backend's address and target
//! port. The source is left alone: **the backend sees the client's
//! address**. The backend's replies come back through the entry node
//! (tunnelled there when the backend runs elsewhere), which puts its own
//! address and the published port back as their source.
//!
//! Hooks: `xdp_underlay` (parse, balance, rewrite with incremental
//! checksums, then tunnel the packet itself or leave it to
//! `tc_underlay_ingress`, which knows it by its conntrack reply entry) or,
//! with `--mesh-hook tc`, `tc_underlay_ingress` alone;
//! `tc_endpoint_ingress` and the VXLAN receive path for replies
//! ([`reply`]) and for learning which node a tunnelled flow entered at
//! ([`learn_entry_node`]).
//!
//! Maps: `MESH_PORTS` and `MESH_CONFIG` (written by the agent; the node's
//! address and underlay are the overlay's `OVERLAY_CONFIG`),
//! `MESH_CONNTRACK` (by the programs), `MESH_COUNTERS` (per published port
//! and per [`Reason`], per CPU: the same reasons as the hooks' rows, so a
//! drop is counted under one reason in its hook's row and its port's).

use aya_ebpf::{
    helpers::generated::bpf_redirect_neigh,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray},
    programs::TcContext,
};
use shoal_ebpf_common::{
    ETH_HDR_LEN, ETH_P_IP, FLOW_FORWARD, FLOW_REPLY, IPPROTO_TCP, IPPROTO_UDP, IPV4_CSUM_OFFSET,
    IPV4_DST_OFFSET, IPV4_SRC_OFFSET, MESH_COUNTER_SLOTS, MESH_HOOK_OFF, MESH_MAX_CONNTRACK,
    MESH_MAX_PORTS, MESH_NODE_ROW, MESH_PORT_HOST, MeshConfig, MeshFlow, MeshPort, MeshPortKey,
    OverlayConfig, OverlayEndpoint, OverlayFlowKey, Reason, TCP_ACK, TCP_CSUM_OFFSET,
    TCP_FLAGS_OFFSET, TCP_SYN, UDP_CSUM_OFFSET, csum_replace2, csum_replace4, flow_hash, mesh_slot,
};

use crate::{
    counters,
    flow::{self, Flow, rewrite},
    overlay::{self, Outcome, endpoint, redirected},
    parse::ptr_at,
    service,
    vxlan::tunnel,
};

#[map]
static MESH_PORTS: HashMap<MeshPortKey, MeshPort> = HashMap::pinned(MESH_MAX_PORTS, 0);

#[map]
static MESH_CONFIG: Array<MeshConfig> = Array::pinned(1, 0);

#[map]
static MESH_CONNTRACK: LruHashMap<OverlayFlowKey, MeshFlow> =
    LruHashMap::pinned(MESH_MAX_CONNTRACK, 0);

#[map]
static MESH_COUNTERS: PerCpuArray<u64> = PerCpuArray::pinned(MESH_COUNTER_SLOTS, 0);

/// Bytes `tc_underlay_ingress` makes linear before reading the headers
/// directly: Ethernet, the longest IPv4 header and a TCP header.
pub const MESH_HEADERS_LEN: u32 = (ETH_HDR_LEN + 60 + 20) as u32;

/// Counts one packet of `row` (a published port's, or [`MESH_NODE_ROW`])
/// under `reason`.
#[inline(always)]
pub fn count(row: u32, reason: Reason) {
    counters::increment(&MESH_COUNTERS, mesh_slot(row, reason));
}

/// What the mesh's hooks need to know: the mesh's settings and the node's
/// underlay (its address, where published ports answer).
pub struct Settings {
    pub mesh: MeshConfig,
    pub node: OverlayConfig,
}

/// The mesh's settings, once the agent has turned it on and written the
/// node's address.
#[inline(always)]
pub fn settings() -> Option<Settings> {
    let mesh = MESH_CONFIG
        .get(0)
        .copied()
        .filter(|config| config.hook != MESH_HOOK_OFF)?;
    let node = overlay::config().filter(|config| config.node_ip_be != 0)?;
    Some(Settings { mesh, node })
}

/// A packet for a published port of this node.
pub struct Hit {
    pub port: MeshPort,
    pub protocol: u8,
    pub src_be: u32,
    pub dst_be: u32,
    pub sport_be: u16,
    pub dport_be: u16,
    pub l4_offset: usize,
    /// A TCP SYN without ACK: a connection being opened.
    pub syn: bool,
}

impl Hit {
    /// The packet's flow, for the tc helpers.
    #[inline(always)]
    pub fn flow(&self) -> Flow {
        Flow {
            protocol: self.protocol,
            src_be: self.src_be,
            dst_be: self.dst_be,
            sport_be: self.sport_be,
            dport_be: self.dport_be,
            l4_offset: self.l4_offset,
        }
    }
}

/// What [`classify`] found in a frame.
///
/// `repr(u32)` keeps the tag at offset 0, as the BTF of a function that is
/// not inlined needs (crate doc): `Result<Option<Hit>, _>` kept it in a
/// niche inside `Hit`, and the kernel refused the object's BTF with
/// `Invalid member bits_offset`.
#[repr(u32)]
pub enum Classified {
    /// Not for a published port (not IPv4 TCP/UDP to the node's address,
    /// or a later fragment, which carries no ports).
    NotMesh,
    /// For a published port.
    Hit(Hit),
    /// To be dropped, counted in this row with this reason.
    Drop(u32, Reason),
}

/// Finds the published port an Ethernet frame at `[data, data_end)` is
/// for. Not inlined: LLVM's BPF backend reuses a register clobbered by
/// the map lookup when this is inlined into `xdp_underlay` (the verifier
/// rejects it, "R3 !read_ok").
#[inline(never)]
pub fn classify(data: usize, data_end: usize, node_ip_be: u32) -> Classified {
    let Some(ethertype) = ptr_at::<u16>(data, data_end, 12) else {
        return Classified::NotMesh;
    };
    // SAFETY: `ptr_at` checked the bounds.
    if u16::from_be(unsafe { ethertype.read_unaligned() }) != ETH_P_IP {
        return Classified::NotMesh;
    }
    let Some(header) = ptr_at::<[u8; 20]>(data, data_end, ETH_HDR_LEN) else {
        return Classified::NotMesh;
    };
    // SAFETY: as above.
    let header = unsafe { header.read_unaligned() };
    let dst_be = u32::from_ne_bytes([header[16], header[17], header[18], header[19]]);
    let protocol = header[9];
    if dst_be != node_ip_be
        || header[0] >> 4 != 4
        || (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)
    {
        return Classified::NotMesh;
    }
    let fragment = u16::from_be_bytes([header[6], header[7]]);
    if fragment & 0x1fff != 0 {
        return Classified::NotMesh;
    }
    let ihl = usize::from(header[0] & 0x0f);
    if ihl < 5 {
        return Classified::Drop(MESH_NODE_ROW, Reason::DropTruncated);
    }
    let l4_offset = ETH_HDR_LEN + ihl * 4;
    let Some(ports) = ptr_at::<[u16; 2]>(data, data_end, l4_offset) else {
        return Classified::Drop(MESH_NODE_ROW, Reason::DropTruncated);
    };
    // SAFETY: as above.
    let [sport_be, dport_be] = unsafe { ports.read_unaligned() };
    let key = MeshPortKey {
        port_be: dport_be,
        protocol,
        _pad: 0,
    };
    // SAFETY: the value is copied out at once; a concurrent update may
    // replace it but not fault.
    let Some(port) = MESH_PORTS.get_ptr(&key).map(|p| unsafe { *p }) else {
        return Classified::NotMesh;
    };
    let row = port.counter_row;
    if fragment & 0x2000 != 0 {
        return Classified::Drop(row, Reason::DropFragment);
    }
    // The whole L4 header, up to and including its checksum.
    let syn = if protocol == IPPROTO_TCP {
        let Some(flags) = ptr_at::<[u8; 20]>(data, data_end, l4_offset) else {
            return Classified::Drop(row, Reason::DropTruncated);
        };
        // SAFETY: as above.
        let flags = unsafe { flags.read_unaligned() }[TCP_FLAGS_OFFSET];
        flags & (TCP_SYN | TCP_ACK) == TCP_SYN
    } else {
        if ptr_at::<[u8; 8]>(data, data_end, l4_offset).is_none() {
            return Classified::Drop(row, Reason::DropTruncated);
        }
        false
    };
    Classified::Hit(Hit {
        port,
        protocol,
        src_be: u32::from_ne_bytes([header[12], header[13], header[14], header[15]]),
        dst_be,
        sport_be,
        dport_be,
        l4_offset,
        syn,
    })
}

/// Picks `hit`'s backend: the one its conntrack entry holds while that
/// backend is still an endpoint (a draining task keeps its flows), or,
/// for a new flow or a TCP SYN, one from the table (Maglev; the local
/// task in `host` mode), then tracked both ways. Returns the backend and
/// whether the flow is new.
#[inline(always)]
pub fn balance(hit: &Hit) -> Result<(u32, bool), Reason> {
    let port = &hit.port;
    let vni = port.vni;
    let forward = flow::key(
        vni,
        (hit.src_be, hit.dst_be),
        (hit.sport_be, hit.dport_be),
        hit.protocol,
        FLOW_FORWARD,
    );
    // A SYN opens a new connection: it gets a backend from the table like
    // any new flow, even on a tuple tracked before (a reused client port
    // whose backend may since have left the table, draining). The same
    // table gives the same backend.
    // SAFETY: copied out at once, as in `classify`.
    let tracked = MESH_CONNTRACK
        .get_ptr(&forward)
        .map(|p| unsafe { *p })
        .filter(|flow| {
            !hit.syn && flow.port_be == port.target_port_be && endpoint(vni, flow.addr_be).is_some()
        });
    let (backend, new) = if let Some(flow) = tracked {
        (flow.addr_be, false)
    } else {
        let backend = if port.flags & MESH_PORT_HOST != 0 {
            port.addr_be
        } else {
            let hash = flow_hash(
                hit.src_be,
                port.addr_be,
                hit.sport_be,
                port.target_port_be,
                hit.protocol,
            );
            service::maglev_backend(port.maglev_slot, hash).ok_or(Reason::DropNoBackend)?
        };
        if endpoint(vni, backend).is_none() {
            return Err(Reason::DropNoBackend);
        }
        let flow = MeshFlow {
            addr_be: backend,
            port_be: port.target_port_be,
            _pad: 0,
            entry_node: 0,
        };
        MESH_CONNTRACK
            .insert(&forward, &flow, 0)
            .map_err(|_| Reason::DropHelperFailed)?;
        (backend, true)
    };
    if new {
        // Every SYN is new, so a reused client port rewrites the reply
        // entry, which may be gone or another entry node's.
        let reply = flow::key(
            vni,
            (backend, hit.src_be),
            (port.target_port_be, hit.sport_be),
            hit.protocol,
            FLOW_REPLY,
        );
        let back = MeshFlow {
            addr_be: hit.dst_be,
            port_be: hit.dport_be,
            _pad: 0,
            entry_node: 0,
        };
        MESH_CONNTRACK
            .insert(&reply, &back, 0)
            .map_err(|_| Reason::DropHelperFailed)?;
    }
    Ok((backend, new))
}

/// Writes `new` over the `T` at `offset`, which `classify` checked lies
/// inside the packet.
#[inline(always)]
fn store<T>(data: usize, data_end: usize, offset: usize, new: T) -> Result<(), Reason> {
    let p = ptr_at::<T>(data, data_end, offset).ok_or(Reason::DropTruncated)?;
    // SAFETY: in bounds (checked), and packet memory is writable in XDP.
    unsafe { (p as *mut T).write_unaligned(new) };
    Ok(())
}

/// Reads the `u16` at `offset` (in packet byte order).
#[inline(always)]
fn load16(data: usize, data_end: usize, offset: usize) -> Result<u16, Reason> {
    let p = ptr_at::<u16>(data, data_end, offset).ok_or(Reason::DropTruncated)?;
    // SAFETY: in bounds (checked).
    Ok(unsafe { p.read_unaligned() })
}

/// Rewrites `hit`'s destination to `backend_be` and the target port in
/// packet memory (XDP), with incremental IPv4 and L4 checksums. A UDP
/// checksum of zero (none) stays zero. Assumes the checksums are complete,
/// as they are on a wire.
#[inline(always)]
pub fn rewrite_in_place(
    data: usize,
    data_end: usize,
    hit: &Hit,
    backend_be: u32,
) -> Result<(), Reason> {
    // `classify` (not inlined) bounds the offset; restate it for the
    // verifier, which lost the bound through the returned `Hit`.
    if hit.l4_offset > ETH_HDR_LEN + 60 {
        return Err(Reason::DropTruncated);
    }
    let ip_check = load16(data, data_end, IPV4_CSUM_OFFSET)?;
    store(
        data,
        data_end,
        IPV4_CSUM_OFFSET,
        csum_replace4(ip_check, hit.dst_be, backend_be),
    )?;
    store(data, data_end, IPV4_DST_OFFSET, backend_be)?;
    let csum_offset = hit.l4_offset
        + if hit.protocol == IPPROTO_TCP {
            TCP_CSUM_OFFSET
        } else {
            UDP_CSUM_OFFSET
        };
    let l4_check = load16(data, data_end, csum_offset)?;
    if hit.protocol == IPPROTO_TCP || l4_check != 0 {
        let check = csum_replace2(
            csum_replace4(l4_check, hit.dst_be, backend_be),
            hit.dport_be,
            hit.port.target_port_be,
        );
        let check = if hit.protocol == IPPROTO_UDP && check == 0 {
            0xffff
        } else {
            check
        };
        store(data, data_end, csum_offset, check)?;
    }
    store(data, data_end, hit.l4_offset + 2, hit.port.target_port_be)
}

/// Rewrites `hit`'s destination (tc hook) like [`rewrite_in_place`].
#[inline(always)]
pub fn rewrite_forward_skb(ctx: &TcContext, hit: &Hit, backend_be: u32) -> Result<(), Reason> {
    let flow = hit.flow();
    rewrite(
        ctx,
        &flow,
        (IPV4_DST_OFFSET, flow.dst_be, backend_be),
        Some((flow.l4_offset + 2, flow.dport_be, hit.port.target_port_be)),
    )
}

/// The ingress network's VNI when `xdp_underlay` balanced this packet on
/// this node and left it to tc (a local backend, or a next hop XDP could
/// not use): its destination is no longer the node's address, and the
/// flow's reply entry names this node as the entry node the client
/// connected to. XDP hands nothing else over: some kernels refuse
/// `bpf_xdp_adjust_meta` to XDP programs.
#[inline(always)]
pub fn balanced_by_xdp(ctx: &TcContext, settings: &Settings) -> Option<u32> {
    let vni = settings.mesh.ingress_vni;
    let node_ip_be = settings.node.node_ip_be;
    if vni == 0
        || ctx.load::<u16>(12).map(u16::from_be) != Ok(ETH_P_IP)
        || ctx.load::<u32>(IPV4_DST_OFFSET) == Ok(node_ip_be)
    {
        return None;
    }
    let flow = flow::flow(ctx).ok()??;
    let reply = flow::key(
        vni,
        (flow.dst_be, flow.src_be),
        (flow.dport_be, flow.sport_be),
        flow.protocol,
        FLOW_REPLY,
    );
    // SAFETY: copied out at once, as in `classify`.
    let entry = MESH_CONNTRACK.get_ptr(&reply).map(|p| unsafe { *p })?;
    (entry.entry_node == 0 && entry.addr_be == node_ip_be).then_some(vni)
}

/// A backend's packet to a client outside the swarm, on network `vni`:
/// the flow's reply entry says where it goes. On the entry node the source
/// becomes the address and port the client connected to and the packet
/// leaves through the underlay interface (next hop resolved by
/// `bpf_redirect_neigh`); elsewhere it is tunnelled to the entry node.
/// `DropNoEndpoint` when no flow of the mesh has this reply.
#[inline(always)]
pub fn reply(ctx: &TcContext, vni: u32) -> Result<Outcome, Reason> {
    let flow = flow::flow(ctx)?.ok_or(Reason::DropNoEndpoint)?;
    let key = flow::key(
        vni,
        (flow.src_be, flow.dst_be),
        (flow.sport_be, flow.dport_be),
        flow.protocol,
        FLOW_REPLY,
    );
    // SAFETY: copied out at once, as in `classify`.
    let entry = MESH_CONNTRACK
        .get_ptr(&key)
        .map(|p| unsafe { *p })
        .ok_or(Reason::DropNoEndpoint)?;
    if entry.entry_node != 0 {
        count(MESH_NODE_ROW, Reason::ReplyTunnelled);
        let entry_node = OverlayEndpoint {
            node_ip: entry.entry_node,
            ..OverlayEndpoint::default()
        };
        return tunnel(ctx, vni, &entry_node);
    }
    let node = overlay::config().ok_or(Reason::DropNoEndpoint)?;
    rewrite(
        ctx,
        &flow,
        (IPV4_SRC_OFFSET, flow.src_be, entry.addr_be),
        Some((flow.l4_offset, flow.sport_be, entry.port_be)),
    )?;
    count(MESH_NODE_ROW, Reason::Reply);
    // SAFETY: no parameters (null, 0): the helper looks the next hop up.
    let ret = unsafe { bpf_redirect_neigh(node.underlay_ifindex, core::ptr::null_mut(), 0, 0) };
    redirected(ret, Reason::RedirectUnderlay)
}

/// On the backend's node, for `flow` (as it arrived), which the entry node
/// `entry_node` (host byte order) tunnelled here: when its source is no
/// endpoint of the network (a client outside the swarm), records that the
/// flow's replies go back to `entry_node`.
#[inline(always)]
pub fn learn_entry_node(vni: u32, flow: &Flow, entry_node: u32) -> Result<(), Reason> {
    if entry_node == 0 || endpoint(vni, flow.src_be).is_some() {
        return Ok(());
    }
    let key = flow.reply_key(vni, (flow.dst_be, flow.dport_be));
    // SAFETY: copied out at once, as in `classify`.
    let known = MESH_CONNTRACK
        .get_ptr(&key)
        .map(|p| unsafe { (*p).entry_node });
    if known == Some(entry_node) {
        return Ok(());
    }
    let back = MeshFlow {
        entry_node,
        ..MeshFlow::default()
    };
    MESH_CONNTRACK
        .insert(&key, &back, 0)
        .map_err(|_| Reason::DropHelperFailed)
}
