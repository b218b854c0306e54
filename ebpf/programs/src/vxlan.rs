//! VXLAN in tc, without the kernel's VXLAN device on the common path
//! (DESIGN §5, data paths 2 and 5):
//!
//! - [`tunnel`] encapsulates a frame for another node in place
//!   (`bpf_skb_adjust_room` with the UDP-tunnel flags, so GSO packets stay
//!   GSO, then the outer IPv4/UDP/VXLAN headers) and sends it out of the
//!   underlay interface with `bpf_redirect_neigh`, which resolves the next
//!   hop. A frame that would not fit the underlay's MTU once encapsulated
//!   goes through the flow-based VXLAN device instead, whose path
//!   fragments the outer packet, as does one tc cannot encapsulate.
//! - [`decapsulate`] strips the VXLAN a node's underlay receives for this
//!   node (UDP to its address and VXLAN port, no outer options or
//!   fragments; a GSO packet stays one, its segment size kept, so a bulk
//!   transfer reaches the task unsegmented), and [`receive`] delivers the
//!   inner frame: to a local task, reverse-translated first when it
//!   answers a flow this node balanced, or back out to a client of the
//!   routing mesh. `tc_vxlan_ingress` runs [`receive`] for what the stack
//!   still hands to the device.

use aya_ebpf::{
    bindings::{
        BPF_F_ADJ_ROOM_ENCAP_L2_ETH, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4, BPF_F_ADJ_ROOM_ENCAP_L4_UDP,
        BPF_F_ADJ_ROOM_FIXED_GSO, BPF_F_ZERO_CSUM_TX, bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
        bpf_tunnel_key,
    },
    helpers::generated::{
        bpf_check_mtu, bpf_get_hash_recalc, bpf_get_prandom_u32, bpf_redirect_neigh,
        bpf_skb_set_tunnel_key,
    },
    programs::TcContext,
};
use shoal_ebpf_common::{
    ETH_HDR_LEN, ETH_P_IP, IPV4_MIN_HDR_LEN, OverlayConfig, OverlayEndpoint, Reason, TUNNEL_TTL,
    UDP_HDR_LEN, VXLAN_ENCAP_LEN, VXLAN_FLAG_VNI, VXLAN_OUTER_LEN, vxlan_outer_headers,
    vxlan_source_port,
};

use crate::{
    flow::flow,
    mesh,
    overlay::{Outcome, config, deliver_local, endpoint, ipv4_destination, redirect, redirected},
    service,
};

/// `BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HDR_LEN)`: the inner frame starts with an
/// Ethernet header of this length.
const ENCAP_L2_ETH_LEN: u64 = (ETH_HDR_LEN as u64) << 56;
/// Flags of the encapsulating `bpf_skb_adjust_room`: room at the MAC
/// header for IPv4 + UDP + an inner Ethernet frame, the segment size kept
/// (the task's MTU already leaves room for the tunnel).
const ENCAP_FLAGS: u64 = BPF_F_ADJ_ROOM_FIXED_GSO as u64
    | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 as u64
    | BPF_F_ADJ_ROOM_ENCAP_L4_UDP as u64
    | BPF_F_ADJ_ROOM_ENCAP_L2_ETH as u64
    | ENCAP_L2_ETH_LEN;
/// Flags of the decapsulating `bpf_skb_adjust_room`.
const DECAP_FLAGS: u64 = BPF_F_ADJ_ROOM_FIXED_GSO as u64;
#[expect(clippy::cast_possible_wrap, reason = "50 bytes")]
const ENCAP_GROWTH: i32 = VXLAN_ENCAP_LEN as i32;
/// Offsets in an underlay frame: the outer IPv4 header, the UDP header
/// (outer options are refused), the VXLAN header and the inner frame.
const OUTER_IP: usize = ETH_HDR_LEN;
const OUTER_UDP: usize = OUTER_IP + IPV4_MIN_HDR_LEN;
const VXLAN_HEADER: usize = OUTER_UDP + UDP_HDR_LEN;
const INNER_FRAME: usize = ETH_HDR_LEN + VXLAN_OUTER_LEN;

/// Sends the frame to `target`'s node on network `vni`, its inner
/// destination MAC the receiving task's: encapsulated here and out of the
/// underlay when it fits, else through the VXLAN device.
#[inline(always)]
pub fn tunnel(ctx: &TcContext, vni: u32, target: &OverlayEndpoint) -> Result<Outcome, Reason> {
    ctx.store(0, &target.mac, 0)
        .map_err(|_| Reason::DropHelperFailed)?;
    if let Some(config) = config().filter(|config| config.node_ip_be != 0)
        && fits_underlay(ctx, &config)
        && encapsulate(ctx, &config, vni, target.node_ip)
    {
        // SAFETY: no parameters (null, 0): the helper looks the next hop up.
        let ret =
            unsafe { bpf_redirect_neigh(config.underlay_ifindex, core::ptr::null_mut(), 0, 0) };
        return redirected(ret, Reason::RedirectRemote);
    }
    through_device(ctx, vni, target.node_ip)
}

/// Whether the frame, once encapsulated, fits the underlay interface's MTU
/// (each segment of a GSO packet).
#[inline(always)]
fn fits_underlay(ctx: &TcContext, config: &OverlayConfig) -> bool {
    let mut mtu_len = 0u32;
    // SAFETY: the context pointer the kernel passed in and a live u32.
    let ret = unsafe {
        bpf_check_mtu(
            ctx.skb.skb.cast(),
            config.underlay_ifindex,
            &raw mut mtu_len,
            ENCAP_GROWTH,
            0,
        )
    };
    ret == 0
}

/// Wraps the frame in VXLAN for `node` (host byte order): room at the MAC
/// header, then the outer IPv4, UDP and VXLAN headers behind the outer
/// Ethernet header, whose addresses `bpf_redirect_neigh` fills. The outer
/// source port follows the flow's hash, as the kernel's VXLAN device
/// picks it. `false`, with the frame as it was, when the room cannot be
/// made.
#[inline(always)]
fn encapsulate(ctx: &TcContext, config: &OverlayConfig, vni: u32, node: u32) -> bool {
    let inner_len = ctx.len() as usize;
    // SAFETY: the context pointer the kernel passed in.
    let hash = unsafe { bpf_get_hash_recalc(ctx.skb.skb) };
    // SAFETY: a helper without arguments.
    #[expect(clippy::cast_possible_truncation, reason = "an identification")]
    let id = unsafe { bpf_get_prandom_u32() } as u16;
    #[expect(clippy::cast_possible_truncation, reason = "a 16-bit UDP port")]
    let ports = (vxlan_source_port(hash), config.vxlan_port as u16);
    let Some(headers) =
        vxlan_outer_headers((config.node_ip_be, node.to_be()), ports, vni, id, inner_len)
    else {
        return false;
    };
    if ctx
        .adjust_room(ENCAP_GROWTH, BPF_ADJ_ROOM_MAC, ENCAP_FLAGS)
        .is_err()
    {
        return false;
    }
    // The inner frame's Ethernet header was moved to the front: copy it
    // behind the new headers, where the inner frame now starts.
    let Ok(inner_eth) = ctx.load::<[u8; ETH_HDR_LEN]>(0) else {
        return false;
    };
    ctx.store(OUTER_IP, &headers, 0).is_ok() && ctx.store(INNER_FRAME, &inner_eth, 0).is_ok()
}

/// Hands the frame to the flow-based VXLAN device with the tunnel key
/// (VNI, remote node, TTL); the outer UDP checksum is left zero, as RFC
/// 7348 allows over IPv4 and cilium does.
#[inline(always)]
fn through_device(ctx: &TcContext, vni: u32, node: u32) -> Result<Outcome, Reason> {
    let vxlan = config()
        .map(|config| config.vxlan_ifindex)
        .filter(|&ifindex| ifindex != 0)
        .ok_or(Reason::DropNoVxlanDevice)?;
    // SAFETY: plain data; all zeroes is a valid (IPv4, no options) key.
    let mut key: bpf_tunnel_key = unsafe { core::mem::zeroed() };
    key.tunnel_id = vni;
    key.__bindgen_anon_1.remote_ipv4 = node;
    key.tunnel_ttl = TUNNEL_TTL;
    // SAFETY: `key` is a live, fully initialised `bpf_tunnel_key` and the
    // size passed is its size.
    let ret = unsafe {
        bpf_skb_set_tunnel_key(
            ctx.skb.skb,
            &raw mut key,
            core::mem::size_of::<bpf_tunnel_key>() as u32,
            u64::from(BPF_F_ZERO_CSUM_TX),
        )
    };
    if ret != 0 {
        return Err(Reason::DropHelperFailed);
    }
    redirect(vxlan, Reason::RedirectRemoteDevice)
}

/// A VXLAN frame from another node, decapsulated: its network and the
/// sending node's underlay address (host byte order).
pub struct Decapsulated {
    pub vni: u32,
    pub remote_node: u32,
}

/// Strips the outer headers of VXLAN for this node, leaving the outer
/// Ethernet header in front of the inner IPv4 packet, as the VXLAN device
/// would hand the inner frame on. `Ok(None)`, with the frame untouched,
/// for anything else (and for what the stack's path handles better: outer
/// IPv4 options or fragments, packets the kernel cannot shrink in place).
#[inline(always)]
pub fn decapsulate(
    ctx: &TcContext,
    config: &OverlayConfig,
) -> Result<Option<Decapsulated>, Reason> {
    if config.node_ip_be == 0 || ctx.load::<u16>(12).map(u16::from_be) != Ok(ETH_P_IP) {
        return Ok(None);
    }
    let Ok(outer) = ctx.load::<[u8; VXLAN_OUTER_LEN]>(OUTER_IP) else {
        return Ok(None);
    };
    let dst_be = u32::from_ne_bytes([outer[16], outer[17], outer[18], outer[19]]);
    let fragment = u16::from_be_bytes([outer[6], outer[7]]) & 0x3fff;
    let dport = u16::from_be_bytes([outer[22], outer[23]]);
    if outer[0] != 0x45
        || outer[9] != 17
        || dst_be != config.node_ip_be
        || fragment != 0
        || u32::from(dport) != config.vxlan_port
    {
        return Ok(None);
    }
    let vxlan = VXLAN_HEADER - OUTER_IP;
    if outer[vxlan] & VXLAN_FLAG_VNI == 0
        || ctx.load::<u16>(INNER_FRAME + 12).map(u16::from_be) != Ok(ETH_P_IP)
    {
        return Err(Reason::DropBadHeader);
    }
    let vni = u32::from_be_bytes([0, outer[vxlan + 4], outer[vxlan + 5], outer[vxlan + 6]]);
    let remote_node = u32::from_be_bytes([outer[12], outer[13], outer[14], outer[15]]);
    // A GRO super-packet keeps its segment size: the inner segments are
    // what they were on the wire. The room cannot always be taken (a
    // packet the kernel cannot shrink there): the stack's path then has it.
    if ctx
        .adjust_room(-ENCAP_GROWTH, BPF_ADJ_ROOM_MAC, DECAP_FLAGS)
        .is_err()
    {
        return Ok(None);
    }
    Ok(Some(Decapsulated { vni, remote_node }))
}

/// Delivers a frame another node tunnelled here on network `vni`
/// (`remote_node`, host byte order, sent it): into the local task it is
/// for, with the VIP put back as the source when it answers a flow this
/// node balanced, and, for a flow of the routing mesh, the node it entered
/// at recorded; or, when it answers a client that entered the routing
/// mesh here, out of the underlay ([`mesh::reply`]). Anything else is
/// dropped: nothing reaches the node's own stack through the overlay.
#[inline(always)]
pub fn receive(ctx: &TcContext, vni: u32, remote_node: u32) -> Result<Outcome, Reason> {
    let dst = ipv4_destination(ctx)?;
    let Some(target) = endpoint(vni, dst) else {
        return mesh::reply(ctx, vni);
    };
    if !target.is_local() {
        return Err(Reason::DropNotLocal);
    }
    if let Some(flow) = flow(ctx)? {
        service::reverse(ctx, vni, &flow)?;
        mesh::learn_entry_node(vni, &flow, remote_node)?;
    }
    deliver_local(ctx, vni, &target)
}
