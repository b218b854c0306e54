//! tc (TCX / clsact) on the node's underlay interface.
//!
//! - Egress counts what the node sends per IP protocol and never drops: the
//!   stack built these packets.
//! - Every packet is counted under one [`Reason`] in its hook's row; a
//!   packet for a published port also in the port's row of the routing
//!   mesh, a drop under the same reason in both.
//! - Ingress decapsulates the VXLAN other nodes send this node and delivers
//!   the inner frame ([`vxlan::decapsulate`], [`vxlan::receive`]; DESIGN
//!   §5, data path 2), and delivers the routing mesh's packets (data path
//!   5): those `xdp_underlay` balanced and left to tc
//!   ([`mesh::balanced_by_xdp`]), or, with `--mesh-hook tc`, those it
//!   balances itself ([`mesh`]). A backend on this node gets the packet
//!   with `bpf_redirect_peer`, one on another node tunnelled there
//!   ([`vxlan::tunnel`]), on the ingress network.

use aya_ebpf::{bindings::TC_ACT_UNSPEC, macros::classifier, programs::TcContext};
use shoal_ebpf_common::{
    Classified, Direction, ETH_HDR_LEN, Hook, MESH_HOOK_TC, MESH_HOOK_XDP, MESH_NODE_ROW, Reason,
    classify, ip_next_offset,
};

use crate::{
    counters::{count, count_protocol},
    mesh,
    overlay::{self, Outcome, deliver_local, endpoint, finish, ipv4_destination},
    vxlan::{self, tunnel},
};

/// Returns `TC_ACT_UNSPEC` (TCX "next") so that programs attached after ours
/// still run.
#[classifier]
pub fn tc_underlay_egress(ctx: TcContext) -> i32 {
    let frame_len = ctx.len() as usize;
    let ethertype = ctx.load::<u16>(12).map_or(0, u16::from_be);
    let first = ctx.load::<u8>(ETH_HDR_LEN).unwrap_or(0);
    let next = ctx
        .load::<u8>(ETH_HDR_LEN + ip_next_offset(ethertype))
        .unwrap_or(0);
    let reason = match classify(frame_len, ethertype, first, next) {
        Classified::Ip { protocol } => {
            count_protocol(Direction::UnderlayEgress, protocol, frame_len as u64);
            Reason::PassIp
        }
        Classified::Other(reason) => reason,
    };
    count(Hook::TcUnderlayEgress, reason);
    TC_ACT_UNSPEC
}

/// Runs on tc ingress (TCX) of the underlay interface. Returns
/// `TC_ACT_REDIRECT` for the mesh's packets, `TC_ACT_SHOT` for its drops and
/// `TC_ACT_UNSPEC` (next program / the stack) for everything else.
#[classifier]
pub fn tc_underlay_ingress(ctx: TcContext) -> i32 {
    finish(Hook::TcUnderlayIngress, try_underlay_ingress(&ctx))
}

const NOT_OURS: Outcome = Outcome {
    reason: Reason::PassNotOurs,
    action: TC_ACT_UNSPEC,
};

fn try_underlay_ingress(ctx: &TcContext) -> Result<Outcome, Reason> {
    let Some(node) = overlay::config() else {
        return Ok(NOT_OURS);
    };
    if let Some(tunnelled) = vxlan::decapsulate(ctx, &node)? {
        return vxlan::receive(ctx, tunnelled.vni, tunnelled.remote_node);
    }
    let Some(settings) = mesh::settings() else {
        return Ok(NOT_OURS);
    };
    if settings.mesh.hook == MESH_HOOK_XDP {
        return match mesh::balanced_by_xdp(ctx, &settings) {
            Some(vni) => deliver(ctx, vni),
            None => Ok(NOT_OURS),
        };
    }
    if settings.mesh.hook != MESH_HOOK_TC {
        return Ok(NOT_OURS);
    }
    // Direct reads need the headers in the linear part; a shorter packet
    // is pulled whole (and then fails `classify`'s bounds checks).
    let _ = ctx.pull_data(mesh::MESH_HEADERS_LEN.min(ctx.len()));
    let hit = match mesh::classify(ctx.data(), ctx.data_end(), node.node_ip_be) {
        mesh::Classified::Hit(hit) => hit,
        mesh::Classified::NotMesh => {
            mesh::count(MESH_NODE_ROW, Reason::PassNotMesh);
            return Ok(NOT_OURS);
        }
        mesh::Classified::Drop(row, reason) => {
            mesh::count(row, reason);
            return Err(reason);
        }
    };
    // A drop is counted under its reason in the port's row here, and in
    // the hook's by `finish`.
    let row = hit.port.counter_row;
    let counted = |reason| {
        mesh::count(row, reason);
        reason
    };
    let (backend, new) = mesh::balance(&hit).map_err(counted)?;
    mesh::rewrite_forward_skb(ctx, &hit, backend).map_err(counted)?;
    mesh::count(
        row,
        if new {
            Reason::NewFlow
        } else {
            Reason::Forward
        },
    );
    deliver(ctx, hit.port.vni)
}

/// Sends a balanced packet to its backend on network `vni`.
#[inline(always)]
fn deliver(ctx: &TcContext, vni: u32) -> Result<Outcome, Reason> {
    let backend = ipv4_destination(ctx)?;
    let target = endpoint(vni, backend).ok_or(Reason::DropNoEndpoint)?;
    if target.is_local() {
        deliver_local(ctx, vni, &target)
    } else {
        tunnel(ctx, vni, &target)
    }
}
