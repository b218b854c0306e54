//! XDP on the node's underlay interface, ingress. It classifies every
//! frame, counts it per IP protocol and verdict, and drops runts and broken
//! IP headers. Unless the routing mesh runs in tc (`--mesh-hook tc`), it
//! is the mesh's first hook (DESIGN §5, data path 5): a packet to a
//! published port of this node gets its backend and its new destination
//! here ([`mesh`]) and is either tunnelled to the backend's node from here
//! or goes up for `tc_underlay_ingress` to deliver into the local task or
//! tunnel, which knows it by the flow's conntrack reply entry. (No XDP
//! metadata: some kernels refuse `bpf_xdp_adjust_meta` to XDP programs.)

use aya_ebpf::{
    bindings::{BPF_FIB_LKUP_RET_SUCCESS, BPF_FIB_LOOKUP_OUTPUT, bpf_fib_lookup, xdp_action},
    helpers::generated::{bpf_fib_lookup as fib_lookup, bpf_xdp_adjust_head},
    macros::xdp,
    programs::XdpContext,
};
use aya_log_ebpf::debug;
use shoal_ebpf_common::{
    Classified, Direction, ETH_HDR_LEN, ETH_P_IP, MESH_HOOK_XDP, MESH_NODE_ROW, MeshConfig,
    MeshVerdict, Verdict, classify, ip_next_offset,
};

use crate::{
    counters::{count_protocol, count_verdict},
    mesh,
    overlay::endpoint,
    parse::{ptr_at, read_at},
};

/// What VXLAN over IPv4 puts in front of a frame: outer Ethernet, IPv4
/// (no options), UDP and VXLAN headers.
const VXLAN_ENCAP_LEN: usize = 14 + 20 + 8 + 8;
/// TTL of the outer IPv4 header, as the VXLAN device's tunnels use.
const TUNNEL_TTL: u8 = 64;

#[xdp]
pub fn xdp_underlay(ctx: XdpContext) -> u32 {
    let data = ctx.data();
    let data_end = ctx.data_end();
    let frame_len = data_end - data;
    let ethertype = read_at::<u16>(data, data_end, 12).map_or(0, u16::from_be);
    let first = read_at::<u8>(data, data_end, ETH_HDR_LEN).unwrap_or(0);
    let next = read_at::<u8>(data, data_end, ETH_HDR_LEN + ip_next_offset(ethertype)).unwrap_or(0);
    match classify(frame_len, ethertype, first, next) {
        Classified::Ip { protocol } => {
            count_protocol(Direction::UnderlayIngress, protocol, frame_len as u64);
            count_verdict(Direction::UnderlayIngress, Verdict::PassIp);
            match mesh::config() {
                Some(config) if config.hook == MESH_HOOK_XDP => routing_mesh(&ctx, &config),
                _ => xdp_action::XDP_PASS,
            }
        }
        Classified::Other(verdict) => {
            count_verdict(Direction::UnderlayIngress, verdict);
            if verdict.is_drop() {
                debug!(
                    &ctx,
                    "xdp_underlay: drop verdict={} len={}", verdict as u32, frame_len
                );
                xdp_action::XDP_DROP
            } else {
                xdp_action::XDP_PASS
            }
        }
    }
}

/// The mesh's XDP part: anything not for a published port passes
/// untouched; a packet for one is balanced and rewritten, then tunnelled
/// to its backend's node from here, or passed up to
/// `tc_underlay_ingress`; or it is dropped and counted.
#[inline(always)]
fn routing_mesh(ctx: &XdpContext, config: &MeshConfig) -> u32 {
    let hit = match mesh::classify(ctx.data(), ctx.data_end(), config.node_ip_be) {
        mesh::Classified::Hit(hit) => hit,
        mesh::Classified::NotMesh => {
            mesh::count(MESH_NODE_ROW, MeshVerdict::PassNotMesh);
            return xdp_action::XDP_PASS;
        }
        mesh::Classified::Drop(row, verdict) => {
            mesh::count(row, verdict);
            return xdp_action::XDP_DROP;
        }
    };
    let row = hit.port.counter_row;
    match balance_and_send(ctx, config, &hit) {
        Ok((new, action)) => {
            let verdict = if new {
                MeshVerdict::NewFlow
            } else {
                MeshVerdict::Forward
            };
            mesh::count(row, verdict);
            if action == xdp_action::XDP_TX {
                mesh::count(MESH_NODE_ROW, MeshVerdict::TunnelledInXdp);
            }
            action
        }
        Err(verdict) => {
            mesh::count(row, verdict);
            xdp_action::XDP_DROP
        }
    }
}

/// Balances `hit` and rewrites it; a packet for a backend on another node
/// is tunnelled there from here when the configuration allows and the
/// next hop is known (`XDP_TX`), any other goes up to tc (`XDP_PASS`).
/// Returns whether the flow is new, and the action.
#[inline(always)]
fn balance_and_send(
    ctx: &XdpContext,
    config: &MeshConfig,
    hit: &mesh::Hit,
) -> Result<(bool, u32), MeshVerdict> {
    let (backend, new) = mesh::balance(hit)?;
    mesh::rewrite_in_place(ctx.data(), ctx.data_end(), hit, backend)?;
    if config.xdp_tunnel != 0
        && let Some(target) = endpoint(hit.port.vni, backend).filter(|t| !t.is_local())
        && tunnel_in_place(ctx, config, hit, target.node_ip)
    {
        return Ok((new, xdp_action::XDP_TX));
    }
    Ok((new, xdp_action::XDP_PASS))
}

/// Wraps the frame in VXLAN (network `hit.port.vni`) for `node` (host
/// byte order), as the node's VXLAN device would, with the next hop's
/// MACs from the kernel's FIB and neighbour tables. `false`, with the
/// frame untouched, when the next hop is unknown, is not out of the
/// underlay interface, or the frame would not fit its MTU: the stack's
/// path handles those.
#[inline(always)]
fn tunnel_in_place(ctx: &XdpContext, config: &MeshConfig, hit: &mesh::Hit, node: u32) -> bool {
    let inner_len = ctx.data_end() - ctx.data();
    let Ok(outer_ip_len) = u16::try_from(inner_len + VXLAN_ENCAP_LEN - ETH_HDR_LEN) else {
        return false;
    };
    // SAFETY: plain data; all zeroes is a valid request before filling.
    let mut fib: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    fib.family = 2; // AF_INET
    fib.l4_protocol = 17;
    fib.__bindgen_anon_1.tot_len = outer_ip_len;
    fib.ifindex = config.underlay_ifindex;
    fib.__bindgen_anon_3.ipv4_src = config.node_ip_be;
    fib.__bindgen_anon_4.ipv4_dst = node.to_be();
    // SAFETY: `fib` is a live request of the size passed.
    let ret = unsafe {
        fib_lookup(
            ctx.ctx.cast(),
            &raw mut fib,
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            BPF_FIB_LOOKUP_OUTPUT,
        )
    };
    if ret != i64::from(BPF_FIB_LKUP_RET_SUCCESS) || fib.ifindex != config.underlay_ifindex {
        return false;
    }
    #[expect(clippy::cast_possible_wrap, reason = "50 bytes")]
    let grow = -(VXLAN_ENCAP_LEN as i32);
    // SAFETY: the context pointer the kernel passed in.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, grow) } != 0 {
        return false;
    }
    let Some(outer) = ptr_at::<[u8; VXLAN_ENCAP_LEN]>(ctx.data(), ctx.data_end(), 0) else {
        return false;
    };
    let mut header = [0u8; VXLAN_ENCAP_LEN];
    header[0..6].copy_from_slice(&fib.dmac);
    header[6..12].copy_from_slice(&fib.smac);
    header[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
    // Outer IPv4: version 4, IHL 5, no DF (the stack would fragment too).
    header[14] = 0x45;
    header[16..18].copy_from_slice(&outer_ip_len.to_be_bytes());
    header[22] = TUNNEL_TTL;
    header[23] = 17;
    header[26..30].copy_from_slice(&config.node_ip_be.to_ne_bytes());
    header[30..34].copy_from_slice(&node.to_be_bytes());
    let mut sum = 0u32;
    let mut i = 14;
    while i < 34 {
        sum += u32::from(u16::from_be_bytes([header[i], header[i + 1]]));
        i += 2;
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    #[expect(clippy::cast_possible_truncation, reason = "folded to 16 bits")]
    let check = !(sum as u16);
    header[24..26].copy_from_slice(&check.to_be_bytes());
    // UDP: a source port from the flow for ECMP entropy, as Linux picks
    // one from the inner flow; no checksum (RFC 7348 allows it over IPv4).
    let entropy = (hit.src_be ^ u32::from(hit.sport_be)) & 0x3fff;
    #[expect(clippy::cast_possible_truncation, reason = "below 2^14")]
    let sport = 0xc000_u16 | entropy as u16;
    header[34..36].copy_from_slice(&sport.to_be_bytes());
    #[expect(clippy::cast_possible_truncation, reason = "a 16-bit UDP port")]
    header[36..38].copy_from_slice(&(config.vxlan_port as u16).to_be_bytes());
    header[38..40].copy_from_slice(&(outer_ip_len - 20).to_be_bytes());
    // VXLAN: the I flag, then the 24-bit VNI.
    header[42] = 0x08;
    header[46..49].copy_from_slice(&hit.port.vni.to_be_bytes()[1..4]);
    // SAFETY: `ptr_at` checked that the headroom now holds the header.
    unsafe { (outer as *mut [u8; VXLAN_ENCAP_LEN]).write_unaligned(header) };
    true
}
