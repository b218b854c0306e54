//! XDP on the node's underlay interface, ingress. It classifies every
//! frame, counts it per IP protocol and under one [`Reason`] (the routing
//! mesh's, for a packet to a published port), and drops runts and broken
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
    Classified, Direction, ETH_HDR_LEN, ETH_P_IP, Hook, MESH_HOOK_XDP, MESH_NODE_ROW,
    OverlayConfig, OverlayEndpoint, Reason, VXLAN_ENCAP_LEN, classify, ip_next_offset,
    vxlan_outer_headers, vxlan_source_port,
};

use crate::{
    counters::{count, count_protocol},
    mesh::{self, Settings},
    overlay::endpoint,
    parse::{ptr_at, read_at},
};

#[xdp]
pub fn xdp_underlay(ctx: XdpContext) -> u32 {
    let data = ctx.data();
    let data_end = ctx.data_end();
    let frame_len = data_end - data;
    let ethertype = read_at::<u16>(data, data_end, 12).map_or(0, u16::from_be);
    let first = read_at::<u8>(data, data_end, ETH_HDR_LEN).unwrap_or(0);
    let next = read_at::<u8>(data, data_end, ETH_HDR_LEN + ip_next_offset(ethertype)).unwrap_or(0);
    let (reason, action) = match classify(frame_len, ethertype, first, next) {
        Classified::Ip { protocol } => {
            count_protocol(Direction::UnderlayIngress, protocol, frame_len as u64);
            match mesh::settings() {
                Some(settings) if settings.mesh.hook == MESH_HOOK_XDP => {
                    routing_mesh(&ctx, &settings)
                }
                _ => (Reason::PassIp, xdp_action::XDP_PASS),
            }
        }
        Classified::Other(reason) if reason.is_drop() => (reason, xdp_action::XDP_DROP),
        Classified::Other(reason) => (reason, xdp_action::XDP_PASS),
    };
    count(Hook::XdpUnderlay, reason);
    if action == xdp_action::XDP_DROP {
        debug!(
            &ctx,
            "xdp_underlay: drop reason={} len={}", reason as u32, frame_len
        );
    }
    action
}

/// The mesh's XDP part: anything not for a published port passes
/// untouched (`PassIp`); a packet for one is balanced and rewritten, then
/// tunnelled to its backend's node from here (`TunnelledInXdp`), or
/// passed up to `tc_underlay_ingress` (`NewFlow`, `Forward`); or it is
/// dropped. Returns the reason the hook counts and the action; the
/// mesh's rows are counted here.
#[inline(always)]
fn routing_mesh(ctx: &XdpContext, settings: &Settings) -> (Reason, u32) {
    let hit = match mesh::classify(ctx.data(), ctx.data_end(), settings.node.node_ip_be) {
        mesh::Classified::Hit(hit) => hit,
        mesh::Classified::NotMesh => {
            mesh::count(MESH_NODE_ROW, Reason::PassNotMesh);
            return (Reason::PassIp, xdp_action::XDP_PASS);
        }
        mesh::Classified::Drop(row, reason) => {
            mesh::count(row, reason);
            return (reason, xdp_action::XDP_DROP);
        }
    };
    let row = hit.port.counter_row;
    match balance_and_send(ctx, settings, &hit) {
        Ok((new, action)) => {
            let reason = if new {
                Reason::NewFlow
            } else {
                Reason::Forward
            };
            mesh::count(row, reason);
            if action == xdp_action::XDP_TX {
                mesh::count(MESH_NODE_ROW, Reason::TunnelledInXdp);
                return (Reason::TunnelledInXdp, action);
            }
            (reason, action)
        }
        Err(reason) => {
            mesh::count(row, reason);
            (reason, xdp_action::XDP_DROP)
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
    settings: &Settings,
    hit: &mesh::Hit,
) -> Result<(bool, u32), Reason> {
    let (backend, new) = mesh::balance(hit)?;
    mesh::rewrite_in_place(ctx.data(), ctx.data_end(), hit, backend)?;
    if settings.mesh.xdp_tunnel != 0
        && let Some(target) = endpoint(hit.port.vni, backend).filter(|t| !t.is_local())
        && tunnel_in_place(ctx, &settings.node, hit, target)
    {
        return Ok((new, xdp_action::XDP_TX));
    }
    Ok((new, xdp_action::XDP_PASS))
}

/// Wraps the frame in VXLAN (network `hit.port.vni`) for `target`'s node,
/// as `tc`'s tunnel would, with the next hop's MACs from the kernel's FIB
/// and neighbour tables and the inner destination MAC the backend task's.
/// `false`, with the frame untouched, when the next hop is unknown, is not
/// out of the underlay interface, or the frame would not fit its MTU: the
/// stack's path handles those.
#[inline(always)]
fn tunnel_in_place(
    ctx: &XdpContext,
    node: &OverlayConfig,
    hit: &mesh::Hit,
    target: OverlayEndpoint,
) -> bool {
    let inner_len = ctx.data_end() - ctx.data();
    // UDP source port: from the flow, for ECMP entropy, as Linux picks one
    // from the inner flow.
    let ports = (
        vxlan_source_port(hit.src_be ^ u32::from(hit.sport_be)),
        #[expect(clippy::cast_possible_truncation, reason = "a 16-bit UDP port")]
        (node.vxlan_port as u16),
    );
    // Identification: any value, the outer header is built fresh per packet.
    let id = hit.sport_be;
    let Some(outer) = vxlan_outer_headers(
        (node.node_ip_be, target.node_ip.to_be()),
        ports,
        hit.port.vni,
        id,
        inner_len,
    ) else {
        return false;
    };
    // SAFETY: plain data; all zeroes is a valid request before filling.
    let mut fib: bpf_fib_lookup = unsafe { core::mem::zeroed() };
    fib.family = 2; // AF_INET
    fib.l4_protocol = 17;
    fib.__bindgen_anon_1.tot_len = u16::from_be_bytes([outer[2], outer[3]]);
    fib.ifindex = node.underlay_ifindex;
    fib.__bindgen_anon_3.ipv4_src = node.node_ip_be;
    fib.__bindgen_anon_4.ipv4_dst = target.node_ip.to_be();
    // SAFETY: `fib` is a live request of the size passed.
    let ret = unsafe {
        fib_lookup(
            ctx.ctx.cast(),
            &raw mut fib,
            core::mem::size_of::<bpf_fib_lookup>() as i32,
            BPF_FIB_LOOKUP_OUTPUT,
        )
    };
    if ret != i64::from(BPF_FIB_LKUP_RET_SUCCESS) || fib.ifindex != node.underlay_ifindex {
        return false;
    }
    #[expect(clippy::cast_possible_wrap, reason = "50 bytes")]
    let grow = -(VXLAN_ENCAP_LEN as i32);
    // SAFETY: the context pointer the kernel passed in.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, grow) } != 0 {
        return false;
    }
    let Some(front) = ptr_at::<[u8; VXLAN_ENCAP_LEN + 6]>(ctx.data(), ctx.data_end(), 0) else {
        return false;
    };
    let mut header = [0u8; VXLAN_ENCAP_LEN + 6];
    header[0..6].copy_from_slice(&fib.dmac);
    header[6..12].copy_from_slice(&fib.smac);
    header[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
    header[ETH_HDR_LEN..VXLAN_ENCAP_LEN].copy_from_slice(&outer);
    // The inner frame's destination: the backend task's MAC.
    header[VXLAN_ENCAP_LEN..].copy_from_slice(&target.mac);
    // SAFETY: `ptr_at` checked that the headroom now holds the header.
    unsafe { (front as *mut [u8; VXLAN_ENCAP_LEN + 6]).write_unaligned(header) };
    true
}
