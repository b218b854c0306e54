//! A TCP or UDP packet's flow as the tc hooks read it, and the one way
//! they rewrite it: [`Flow`] (the 5-tuple and where the L4 header starts,
//! read with `bpf_skb_load_bytes`, which also works on non-linear skbs),
//! [`is_tcp_syn`], and [`rewrite`], which replaces an address (and a port)
//! with the checksums the skb helpers keep right, also for packets a
//! local stack left partially checksummed. Service VIPs and the routing
//! mesh both use them.

use aya_ebpf::{
    bindings::{BPF_F_MARK_MANGLED_0, BPF_F_PSEUDO_HDR},
    programs::TcContext,
};
use shoal_ebpf_common::{
    ETH_HDR_LEN, FLOW_REPLY, IPPROTO_TCP, IPPROTO_UDP, IPV4_CSUM_OFFSET, OverlayFlowKey, Reason,
    TCP_ACK, TCP_CSUM_OFFSET, TCP_FLAGS_OFFSET, TCP_SYN, UDP_CSUM_OFFSET,
};

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

/// The conntrack key (both conntrack maps use it) of the flow from
/// `src_be:sport_be` to `dst_be:dport_be` on network `vni`, for
/// `direction` (`FLOW_FORWARD` or `FLOW_REPLY`).
#[inline(always)]
pub fn key(
    vni: u32,
    (src_be, dst_be): (u32, u32),
    (sport_be, dport_be): (u16, u16),
    protocol: u8,
    direction: u8,
) -> OverlayFlowKey {
    OverlayFlowKey {
        vni,
        src_be,
        dst_be,
        sport_be,
        dport_be,
        protocol,
        direction,
        _pad: [0; 2],
    }
}

impl Flow {
    /// The flow's own conntrack key on network `vni`, for `direction`.
    #[inline(always)]
    pub fn key(&self, vni: u32, direction: u8) -> OverlayFlowKey {
        key(
            vni,
            (self.src_be, self.dst_be),
            (self.sport_be, self.dport_be),
            self.protocol,
            direction,
        )
    }

    /// The key, on network `vni`, of this flow's other direction: from
    /// its destination, seen as `(dst_be, dport_be)` (the address and port
    /// it was rewritten to, if it was), back to its source.
    #[inline(always)]
    pub fn reply_key(&self, vni: u32, (dst_be, dport_be): (u32, u16)) -> OverlayFlowKey {
        key(
            vni,
            (dst_be, self.src_be),
            (dport_be, self.sport_be),
            self.protocol,
            FLOW_REPLY,
        )
    }
}

/// Parses the 5-tuple of an IPv4 frame. `None` for anything but TCP and
/// UDP, and for non-first fragments, which carry no ports.
#[inline(always)]
pub fn flow(ctx: &TcContext) -> Result<Option<Flow>, Reason> {
    let header = ctx
        .load::<[u8; 20]>(ETH_HDR_LEN)
        .map_err(|_| Reason::DropBadHeader)?;
    let protocol = header[9];
    let fragment_offset = u16::from_be_bytes([header[6], header[7]]) & 0x1fff;
    if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) || fragment_offset != 0 {
        return Ok(None);
    }
    let l4_offset = ETH_HDR_LEN + usize::from(header[0] & 0x0f) * 4;
    let ports = ctx
        .load::<[u16; 2]>(l4_offset)
        .map_err(|_| Reason::DropBadHeader)?;
    Ok(Some(Flow {
        protocol,
        src_be: u32::from_ne_bytes([header[12], header[13], header[14], header[15]]),
        dst_be: u32::from_ne_bytes([header[16], header[17], header[18], header[19]]),
        sport_be: ports[0],
        dport_be: ports[1],
        l4_offset,
    }))
}

/// Whether `flow` is a TCP SYN without ACK: a connection being opened.
#[inline(always)]
pub fn is_tcp_syn(ctx: &TcContext, flow: &Flow) -> bool {
    flow.protocol == IPPROTO_TCP
        && ctx
            .load::<u8>(flow.l4_offset + TCP_FLAGS_OFFSET)
            .is_ok_and(|flags| flags & (TCP_SYN | TCP_ACK) == TCP_SYN)
}

/// Replaces the IPv4 address at `addr_offset` (source or destination)
/// from `old` to `new`, and, with `port`, the port at that offset from
/// the old to the new value, fixing the L4 checksum (pseudo header
/// included; a UDP checksum of zero stays zero) and the IPv4 header
/// checksum. Any helper failure is `DropHelperFailed`.
#[inline(always)]
pub fn rewrite(
    ctx: &TcContext,
    flow: &Flow,
    (addr_offset, old, new): (usize, u32, u32),
    port: Option<(usize, u16, u16)>,
) -> Result<(), Reason> {
    let (csum_offset, extra) = if flow.protocol == IPPROTO_TCP {
        (flow.l4_offset + TCP_CSUM_OFFSET, 0)
    } else {
        (
            flow.l4_offset + UDP_CSUM_OFFSET,
            u64::from(BPF_F_MARK_MANGLED_0),
        )
    };
    let failed = |_| Reason::DropHelperFailed;
    ctx.l4_csum_replace(
        csum_offset,
        u64::from(old),
        u64::from(new),
        u64::from(BPF_F_PSEUDO_HDR) | 4 | extra,
    )
    .map_err(failed)?;
    if let Some((port_offset, old_port, new_port)) = port {
        ctx.l4_csum_replace(
            csum_offset,
            u64::from(old_port),
            u64::from(new_port),
            2 | extra,
        )
        .map_err(failed)?;
        ctx.store(port_offset, &new_port, 0).map_err(failed)?;
    }
    ctx.l3_csum_replace(IPV4_CSUM_OFFSET, u64::from(old), u64::from(new), 4)
        .map_err(failed)?;
    ctx.store(addr_offset, &new, 0).map_err(failed)
}
