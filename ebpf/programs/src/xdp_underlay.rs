//! XDP on the node's underlay interface, ingress. It classifies every
//! frame, counts it per IP protocol and verdict, and drops runts and broken
//! IP headers. Unless the routing mesh runs in tc (`--mesh-hook tc`), it
//! is the mesh's first hook (DESIGN §5, data path 5): a packet to a
//! published port of this node gets its backend and its new destination
//! here ([`mesh`]) and goes up with [`MeshMeta`] in front of it, for
//! `tc_underlay_ingress` to deliver into the local task or tunnel to the
//! backend's node.

use aya_ebpf::{
    bindings::xdp_action, helpers::generated::bpf_xdp_adjust_meta, macros::xdp,
    programs::XdpContext,
};
use aya_log_ebpf::debug;
use shoal_ebpf_common::{
    Classified, Direction, ETH_HDR_LEN, MESH_HOOK_XDP, MESH_META_MAGIC, MESH_NODE_ROW, MeshMeta,
    MeshVerdict, Verdict, classify, ip_next_offset,
};

use crate::{
    counters::{count_protocol, count_verdict},
    mesh,
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
    match classify(frame_len, ethertype, first, next) {
        Classified::Ip { protocol } => {
            count_protocol(Direction::UnderlayIngress, protocol, frame_len as u64);
            count_verdict(Direction::UnderlayIngress, Verdict::PassIp);
            match mesh::config() {
                Some(config) if config.hook == MESH_HOOK_XDP => {
                    routing_mesh(&ctx, config.node_ip_be)
                }
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
/// untouched; a packet for one is balanced, rewritten and passed up with
/// its metadata, or dropped and counted.
#[inline(always)]
fn routing_mesh(ctx: &XdpContext, node_ip_be: u32) -> u32 {
    let hit = match mesh::classify(ctx.data(), ctx.data_end(), node_ip_be) {
        Ok(Some(hit)) => hit,
        Ok(None) => {
            mesh::count(MESH_NODE_ROW, MeshVerdict::PassNotMesh);
            return xdp_action::XDP_PASS;
        }
        Err((row, verdict)) => {
            mesh::count(row, verdict);
            return xdp_action::XDP_DROP;
        }
    };
    let row = hit.port.counter_row;
    match balance_and_mark(ctx, &hit) {
        Ok(new) => {
            mesh::count(
                row,
                if new {
                    MeshVerdict::NewFlow
                } else {
                    MeshVerdict::Forward
                },
            );
            xdp_action::XDP_PASS
        }
        Err(verdict) => {
            mesh::count(row, verdict);
            xdp_action::XDP_DROP
        }
    }
}

/// Balances `hit`, rewrites it and puts [`MeshMeta`] in front of it.
/// Returns whether the flow is new.
#[inline(always)]
fn balance_and_mark(ctx: &XdpContext, hit: &mesh::Hit) -> Result<bool, MeshVerdict> {
    let (backend, new) = mesh::balance(hit)?;
    mesh::rewrite_in_place(ctx.data(), ctx.data_end(), hit, backend)?;
    #[expect(clippy::cast_possible_wrap, reason = "8 bytes")]
    let delta = -(core::mem::size_of::<MeshMeta>() as i32);
    // SAFETY: the context pointer the kernel passed in.
    if unsafe { bpf_xdp_adjust_meta(ctx.ctx, delta) } != 0 {
        return Err(MeshVerdict::DropHelperFailed);
    }
    let meta =
        ptr_at::<MeshMeta>(ctx.metadata(), ctx.data(), 0).ok_or(MeshVerdict::DropHelperFailed)?;
    let value = MeshMeta {
        magic: MESH_META_MAGIC,
        vni: hit.port.vni,
    };
    // SAFETY: `ptr_at` checked that the metadata area holds a `MeshMeta`.
    unsafe { (meta as *mut MeshMeta).write_unaligned(value) };
    Ok(new)
}
