//! East-west service load balancing on the overlay (DESIGN §5, data path 4),
//! in the style of cilium's `lb.h` and katran: a task's packet to a service
//! VIP gets a backend from the service's Maglev table, a conntrack entry
//! keeps that choice for the rest of the flow, and the destination address
//! is rewritten to the backend's; the backend's replies get the VIP back as
//! their source from the flow's reverse entry, on the client's node. Backends
//! see the client's own address (no SNAT).
//!
//! Maps (the agent writes the first two; the programs write conntrack):
//!
//! - `OVERLAY_SERVICES`: `(VNI, VIP)` → the service's slot. A VIP balances
//!   every TCP and UDP port, as Docker's do: the port is kept.
//! - `OVERLAY_MAGLEV`: one flat array of `OVERLAY_MAX_SERVICES` tables of
//!   `OVERLAY_MAGLEV_SIZE` backend addresses each (`0`: no backend); the
//!   slot selects the table, `flow_hash % size` the entry. The addresses
//!   are the backends themselves, so no backend-id indirection is needed:
//!   `OVERLAY_ENDPOINTS` then says where each one lives.
//! - `OVERLAY_CONNTRACK` (LRU): the forward entry (client → VIP) holds the
//!   backend, the reverse entry (backend → client) the VIP. An established
//!   flow keeps its backend while the table changes, and while its backend
//!   drains (out of the table, still an endpoint); once the backend's
//!   endpoint is gone, the flow picks a new one. A TCP SYN always picks
//!   from the table: a new connection never goes to a draining backend.

use aya_ebpf::{
    bindings::{BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR},
    macros::map,
    maps::{Array, HashMap, LruHashMap},
    programs::TcContext,
};
use shoal_ebpf_common::{
    ETH_HDR_LEN, FLOW_FORWARD, FLOW_REPLY, OVERLAY_MAGLEV_ENTRIES, OVERLAY_MAGLEV_SIZE,
    OVERLAY_MAX_CONNTRACK, OVERLAY_MAX_SERVICES, OverlayEndpointKey, OverlayFlowKey,
    OverlayVerdict, flow_hash,
};

use crate::overlay::{IPV4_DST_OFFSET, endpoint};

#[map]
static OVERLAY_SERVICES: HashMap<OverlayEndpointKey, u32> =
    HashMap::pinned(OVERLAY_MAX_SERVICES, 0);

#[map]
static OVERLAY_MAGLEV: Array<u32> = Array::pinned(OVERLAY_MAGLEV_ENTRIES, 0);

#[map]
static OVERLAY_CONNTRACK: LruHashMap<OverlayFlowKey, u32> =
    LruHashMap::pinned(OVERLAY_MAX_CONNTRACK, 0);

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// Offset of the IPv4 header checksum in an Ethernet frame.
const IPV4_CSUM_OFFSET: usize = ETH_HDR_LEN + 10;
/// Offset of the IPv4 source address in an Ethernet frame.
const IPV4_SRC_OFFSET: usize = ETH_HDR_LEN + 12;

/// A TCP or UDP packet's 5-tuple (network byte order) and where its L4
/// header starts.
pub struct Flow {
    pub protocol: u8,
    pub src_be: u32,
    pub dst_be: u32,
    pub sport_be: u16,
    pub dport_be: u16,
    pub l4_offset: usize,
}

impl Flow {
    fn key(&self, vni: u32, direction: u8) -> OverlayFlowKey {
        OverlayFlowKey {
            vni,
            src_be: self.src_be,
            dst_be: self.dst_be,
            sport_be: self.sport_be,
            dport_be: self.dport_be,
            protocol: self.protocol,
            direction,
            _pad: [0; 2],
        }
    }
}

/// Parses the 5-tuple of an IPv4 frame (header already checked by
/// `ipv4_destination`). `None` for anything but TCP and UDP, and for
/// non-first fragments, which carry no ports.
#[inline(always)]
pub fn flow(ctx: &TcContext) -> Result<Option<Flow>, OverlayVerdict> {
    let header = ctx
        .load::<[u8; 20]>(ETH_HDR_LEN)
        .map_err(|_| OverlayVerdict::DropBadHeader)?;
    let protocol = header[9];
    let fragment_offset = u16::from_be_bytes([header[6], header[7]]) & 0x1fff;
    if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) || fragment_offset != 0 {
        return Ok(None);
    }
    let l4_offset = ETH_HDR_LEN + usize::from(header[0] & 0x0f) * 4;
    let ports = ctx
        .load::<[u16; 2]>(l4_offset)
        .map_err(|_| OverlayVerdict::DropBadHeader)?;
    Ok(Some(Flow {
        protocol,
        src_be: u32::from_ne_bytes([header[12], header[13], header[14], header[15]]),
        dst_be: u32::from_ne_bytes([header[16], header[17], header[18], header[19]]),
        sport_be: ports[0],
        dport_be: ports[1],
        l4_offset,
    }))
}

/// The reverse entry of `flow` once its destination is `backend`: the key
/// the backend's replies (backend → client) are looked up with.
#[inline(always)]
fn reply_key(vni: u32, flow: &Flow, backend_be: u32) -> OverlayFlowKey {
    OverlayFlowKey {
        vni,
        src_be: backend_be,
        dst_be: flow.src_be,
        sport_be: flow.dport_be,
        dport_be: flow.sport_be,
        protocol: flow.protocol,
        direction: FLOW_REPLY,
        _pad: [0; 2],
    }
}

/// Whether `flow` is a TCP SYN without ACK: a connection being opened.
#[inline(always)]
fn is_tcp_syn(ctx: &TcContext, flow: &Flow) -> bool {
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    flow.protocol == IPPROTO_TCP
        && ctx
            .load::<u8>(flow.l4_offset + 13)
            .is_ok_and(|flags| flags & (SYN | ACK) == SYN)
}

/// Replaces the IPv4 address at `offset` (source or destination) from `old`
/// to `new`, fixing the L4 checksum (pseudo header; a UDP checksum of zero
/// stays zero) and the IP header checksum.
#[inline(always)]
fn rewrite(
    ctx: &TcContext,
    flow: &Flow,
    offset: usize,
    old: u32,
    new: u32,
) -> Result<(), OverlayVerdict> {
    let (csum_offset, extra) = if flow.protocol == IPPROTO_TCP {
        (flow.l4_offset + 16, 0)
    } else {
        (flow.l4_offset + 6, u64::from(BPF_F_MARK_MANGLED_0))
    };
    let failed = |_| OverlayVerdict::DropHelperFailed;
    ctx.l4_csum_replace(
        csum_offset,
        u64::from(old),
        u64::from(new),
        u64::from(BPF_F_PSEUDO_HDR) | 4 | extra,
    )
    .map_err(failed)?;
    ctx.l3_csum_replace(IPV4_CSUM_OFFSET, u64::from(old), u64::from(new), 4)
        .map_err(failed)?;
    ctx.store(offset, &new, 0).map_err(failed)
}

/// The slot of the service VIP `dst_be` in network `vni`, if it is one.
#[inline(always)]
pub fn service(vni: u32, dst_be: u32) -> Option<u32> {
    let key = OverlayEndpointKey { vni, ip_be: dst_be };
    // SAFETY: the value is copied out at once; a concurrent update may
    // replace it but not fault.
    OVERLAY_SERVICES.get_ptr(&key).map(|p| unsafe { *p })
}

/// The backend at `hash` in the Maglev table of `slot`, unless the table
/// has none.
#[inline(always)]
pub fn maglev_backend(slot: u32, hash: u32) -> Option<u32> {
    let index = slot * OVERLAY_MAGLEV_SIZE + hash % OVERLAY_MAGLEV_SIZE;
    OVERLAY_MAGLEV
        .get(index)
        .copied()
        .filter(|&backend| backend != 0)
}

/// The backend a flow's conntrack entry holds, if that backend is still an
/// endpoint of the network (a drained task that has stopped is not).
#[inline(always)]
fn tracked(vni: u32, key: &OverlayFlowKey) -> Option<u32> {
    // SAFETY: as in `service`.
    let backend = OVERLAY_CONNTRACK.get_ptr(key).map(|p| unsafe { *p })?;
    endpoint(vni, backend).map(|_| backend)
}

/// Balances a frame to the VIP `vip_be` (slot `slot`) of network `vni`:
/// the flow's tracked backend, or, for a new flow or a TCP SYN, a new one
/// from the Maglev table (then tracked both ways); the destination is
/// rewritten to it. Returns the backend's address, to deliver to.
#[inline(always)]
pub fn balance(ctx: &TcContext, vni: u32, vip_be: u32, slot: u32) -> Result<u32, OverlayVerdict> {
    let flow = flow(ctx)?.ok_or(OverlayVerdict::DropVipProtocol)?;
    let forward = flow.key(vni, FLOW_FORWARD);
    // A SYN opens a new connection: it gets a backend from the table like
    // any new flow, even on a tuple tracked before (a reused client port
    // whose backend may since have left the table, draining, and refuse
    // it). The same table gives the same backend.
    let tracked = if is_tcp_syn(ctx, &flow) {
        None
    } else {
        tracked(vni, &forward)
    };
    let backend = if let Some(backend) = tracked {
        backend
    } else {
        let hash = flow_hash(
            flow.src_be,
            flow.dst_be,
            flow.sport_be,
            flow.dport_be,
            flow.protocol,
        );
        let backend = maglev_backend(slot, hash).ok_or(OverlayVerdict::DropVipNoBackend)?;
        // Written on every SYN too: a reused client port may find the reply
        // entry dropped by a direct connection in between.
        OVERLAY_CONNTRACK
            .insert(&reply_key(vni, &flow, backend), &vip_be, 0)
            .map_err(|_| OverlayVerdict::DropHelperFailed)?;
        OVERLAY_CONNTRACK
            .insert(&forward, &backend, 0)
            .map_err(|_| OverlayVerdict::DropHelperFailed)?;
        backend
    };
    rewrite(ctx, &flow, IPV4_DST_OFFSET, vip_be, backend)?;
    Ok(backend)
}

/// Puts the VIP back as the source of a backend's reply to a client whose
/// flow this node balanced (its reverse conntrack entry); anything else is
/// left alone.
#[inline(always)]
pub fn reverse(ctx: &TcContext, vni: u32) -> Result<(), OverlayVerdict> {
    let Some(flow) = flow(ctx)? else {
        return Ok(());
    };
    if is_tcp_syn(ctx, &flow) {
        // A task opens a connection straight to an address: any reply
        // entry left on this tuple by an earlier connection through a VIP
        // (the client port was reused) would hide this connection's replies
        // behind the VIP. A SYN is never a reply itself.
        let _ = OVERLAY_CONNTRACK.remove(&reply_key(vni, &flow, flow.dst_be));
        return Ok(());
    }
    let key = flow.key(vni, FLOW_REPLY);
    // SAFETY: as in `service`.
    let Some(vip_be) = OVERLAY_CONNTRACK.get_ptr(&key).map(|p| unsafe { *p }) else {
        return Ok(());
    };
    rewrite(ctx, &flow, IPV4_SRC_OFFSET, flow.src_be, vip_be)
}
