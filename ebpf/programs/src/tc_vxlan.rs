//! tc ingress on the node's flow-based VXLAN device: frames other nodes
//! tunnelled to a task here (DESIGN §5, data path 2, receiving side) that
//! `tc_underlay_ingress` left to the stack (outer fragments, GRO
//! super-packets) and those of nodes still tunnelling through their device.
//! The tunnel key gives the VNI and the sending node, and
//! [`vxlan::receive`] does the rest, as for the frames tc decapsulates: (VNI,
//! inner IPv4 destination) must be a local endpoint, which gets the frame
//! with `bpf_redirect_peer`. A remote
//! backend's reply to a flow this node balanced to a service VIP gets the
//! VIP back as its source first (data path 4). For the routing mesh
//! (data path 5), a flow from a client outside the swarm records which node
//! tunnelled it here, so that its replies go back there, and a reply
//! tunnelled back here for a client that entered at this node is
//! reverse-translated and sent out of the underlay. Everything else is
//! dropped and counted: nothing reaches the node's own stack through the
//! overlay.

use aya_ebpf::{
    bindings::bpf_tunnel_key, helpers::generated::bpf_skb_get_tunnel_key, macros::classifier,
    programs::TcContext,
};
use shoal_ebpf_common::{ETH_P_IP, Hook, Reason};

use crate::{
    overlay::{Outcome, finish},
    vxlan,
};

/// Runs on tc ingress of the VXLAN device. Returns `TC_ACT_REDIRECT` for
/// frames delivered to a local task and `TC_ACT_SHOT` for the rest.
#[classifier]
pub fn tc_vxlan_ingress(ctx: TcContext) -> i32 {
    finish(Hook::TcVxlanIngress, try_vxlan_ingress(&ctx))
}

fn try_vxlan_ingress(ctx: &TcContext) -> Result<Outcome, Reason> {
    // SAFETY: plain data, overwritten by the helper.
    let mut key: bpf_tunnel_key = unsafe { core::mem::zeroed() };
    // SAFETY: `key` is a live `bpf_tunnel_key` and the size passed is its size.
    let ret = unsafe {
        bpf_skb_get_tunnel_key(
            ctx.skb.skb,
            &raw mut key,
            core::mem::size_of::<bpf_tunnel_key>() as u32,
            0,
        )
    };
    if ret != 0 {
        return Err(Reason::DropNoTunnelKey);
    }
    let ethertype = ctx
        .load::<u16>(12)
        .map(u16::from_be)
        .map_err(|_| Reason::DropBadHeader)?;
    if ethertype != ETH_P_IP {
        return Err(Reason::DropNotIpv4);
    }
    // SAFETY: the key was filled by the helper; IPv4 is its only use here.
    let remote_node = unsafe { key.__bindgen_anon_1.remote_ipv4 };
    vxlan::receive(ctx, key.tunnel_id, remote_node)
}
