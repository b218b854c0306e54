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
    macros::map,
    maps::{Array, HashMap, LruHashMap},
    programs::TcContext,
};
use shoal_ebpf_common::{
    FLOW_FORWARD, FLOW_REPLY, IPV4_DST_OFFSET, IPV4_SRC_OFFSET, OVERLAY_MAGLEV_ENTRIES,
    OVERLAY_MAGLEV_SIZE, OVERLAY_MAX_CONNTRACK, OVERLAY_MAX_SERVICES, OverlayEndpointKey,
    OverlayFlowKey, Reason, flow_hash,
};

use crate::{
    flow::{Flow, flow, is_tcp_syn, rewrite},
    overlay::endpoint,
};

#[map]
static OVERLAY_SERVICES: HashMap<OverlayEndpointKey, u32> =
    HashMap::pinned(OVERLAY_MAX_SERVICES, 0);

#[map]
static OVERLAY_MAGLEV: Array<u32> = Array::pinned(OVERLAY_MAGLEV_ENTRIES, 0);

#[map]
static OVERLAY_CONNTRACK: LruHashMap<OverlayFlowKey, u32> =
    LruHashMap::pinned(OVERLAY_MAX_CONNTRACK, 0);

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
pub fn balance(ctx: &TcContext, vni: u32, vip_be: u32, slot: u32) -> Result<u32, Reason> {
    let flow = flow(ctx)?.ok_or(Reason::DropVipProtocol)?;
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
        let backend = maglev_backend(slot, hash).ok_or(Reason::DropNoBackend)?;
        // Written on every SYN too: a reused client port may find the reply
        // entry dropped by a direct connection in between.
        OVERLAY_CONNTRACK
            .insert(&flow.reply_key(vni, (backend, flow.dport_be)), &vip_be, 0)
            .map_err(|_| Reason::DropHelperFailed)?;
        OVERLAY_CONNTRACK
            .insert(&forward, &backend, 0)
            .map_err(|_| Reason::DropHelperFailed)?;
        backend
    };
    rewrite(ctx, &flow, (IPV4_DST_OFFSET, vip_be, backend), None)?;
    Ok(backend)
}

/// Puts the VIP back as the source of a backend's reply to a client whose
/// flow this node balanced (its reverse conntrack entry); anything else is
/// left alone.
#[inline(always)]
pub fn reverse(ctx: &TcContext, vni: u32, flow: &Flow) -> Result<(), Reason> {
    if is_tcp_syn(ctx, flow) {
        // A task opens a connection straight to an address: any reply
        // entry left on this tuple by an earlier connection through a VIP
        // (the client port was reused) would hide this connection's replies
        // behind the VIP. A SYN is never a reply itself.
        let _ = OVERLAY_CONNTRACK.remove(&flow.reply_key(vni, (flow.dst_be, flow.dport_be)));
        return Ok(());
    }
    let key = flow.key(vni, FLOW_REPLY);
    // SAFETY: as in `service`.
    let Some(vip_be) = OVERLAY_CONNTRACK.get_ptr(&key).map(|p| unsafe { *p }) else {
        return Ok(());
    };
    rewrite(ctx, flow, (IPV4_SRC_OFFSET, flow.src_be, vip_be), None)
}
