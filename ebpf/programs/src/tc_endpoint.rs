//! tc ingress on the host side of a local task's veth: every frame the task
//! sends (DESIGN §5, data paths 1 and 2). No bridge, no flooding:
//!
//! - an ARP request for any address but the sender's own is answered in
//!   place with the interface's MAC and sent straight back into the task
//!   (proxy ARP, like cilium's `arp.h`), so the gateway and every peer
//!   resolve to the host-side veth;
//! - an IPv4 packet is looked up in `OVERLAY_ENDPOINTS` under the VNI of the
//!   interface it came from, so networks are isolated by construction: a
//!   local endpoint gets it with `bpf_redirect_peer` (data path 1), a remote
//!   one is encapsulated in VXLAN for the endpoint's node and sent out of
//!   the underlay ([`crate::vxlan::tunnel`], data path 2);
//! - a packet to a service VIP of the interface's network is first balanced
//!   to a backend and its destination rewritten (data path 4, [`service`]);
//!   a local backend's reply to a balanced flow gets the VIP back as its
//!   source;
//! - a reply to a client of the routing mesh (an address outside the
//!   network) goes back the way its flow came ([`mesh::reply`]);
//! - anything else from an overlay interface is dropped and counted, and
//!   frames of interfaces the agent did not register pass unchanged.

use aya_ebpf::{bindings::TC_ACT_UNSPEC, macros::classifier, programs::TcContext};
use shoal_ebpf_common::{
    ARP_ETH_IPV4_LEN, ETH_HDR_LEN, ETH_P_ARP, ETH_P_IP, Hook, OverlayInterface, Reason,
};

use crate::{
    flow::flow,
    mesh,
    overlay::{Outcome, deliver_local, endpoint, finish, interface, ipv4_destination, redirect},
    service,
    vxlan::tunnel,
};

/// Runs on tc ingress (TCX or clsact) of a task's host-side veth. Returns
/// `TC_ACT_REDIRECT` for what it forwards or answers, `TC_ACT_SHOT` for
/// drops and `TC_ACT_UNSPEC` (next program / default) for foreign frames.
#[classifier]
pub fn tc_endpoint_ingress(ctx: TcContext) -> i32 {
    finish(Hook::TcEndpointIngress, try_endpoint_ingress(&ctx))
}

fn try_endpoint_ingress(ctx: &TcContext) -> Result<Outcome, Reason> {
    // On tc ingress the skb's input interface is the device the hook runs on.
    // SAFETY: `skb` is the context pointer the kernel passed in.
    let ifindex = unsafe { (*ctx.skb.skb).ingress_ifindex };
    let Some(iface) = interface(ifindex) else {
        return Ok(Outcome {
            reason: Reason::PassNotOurs,
            action: TC_ACT_UNSPEC,
        });
    };
    let ethertype = ctx
        .load::<u16>(12)
        .map(u16::from_be)
        .map_err(|_| Reason::DropBadHeader)?;
    match ethertype {
        ETH_P_ARP => proxy_arp(ctx, ifindex, &iface),
        ETH_P_IP => {
            let mut dst = ipv4_destination(ctx)?;
            let vip_slot = service::service(iface.vni, dst);
            if let Some(slot) = vip_slot {
                dst = service::balance(ctx, iface.vni, dst, slot)?;
            }
            let Some(target) = endpoint(iface.vni, dst) else {
                // A reply to a client of the routing mesh, or nothing.
                return mesh::reply(ctx, iface.vni);
            };
            if vip_slot.is_none()
                && let Some(flow) = flow(ctx)?
            {
                // Only a task's packet to another task can answer a flow
                // this node balanced to a VIP.
                service::reverse(ctx, iface.vni, &flow)?;
            }
            if target.is_local() {
                deliver_local(ctx, iface.vni, &target)
            } else {
                tunnel(ctx, iface.vni, &target)
            }
        }
        _ => Err(Reason::DropNotIpv4),
    }
}

/// Answers an Ethernet/IPv4 ARP request in place with `iface.mac` and sends
/// the reply back out of the interface, i.e. into the task. Replies,
/// gratuitous ARPs and probes (sender address `0.0.0.0`) are not answered:
/// answering a probe for the task's own address would look like a conflict.
#[inline(always)]
fn proxy_arp(ctx: &TcContext, ifindex: u32, iface: &OverlayInterface) -> Result<Outcome, Reason> {
    let arp = ctx
        .load::<[u8; ARP_ETH_IPV4_LEN]>(ETH_HDR_LEN)
        .map_err(|_| Reason::DropBadHeader)?;
    // hardware Ethernet (1), protocol IPv4, lengths 6 and 4, op request (1).
    if arp[..8] != [0, 1, 0x08, 0x00, 6, 4, 0, 1] {
        return Err(Reason::DropArpNotAnswered);
    }
    let sender_mac = &arp[8..14];
    let sender_ip = &arp[14..18];
    let target_ip = &arp[24..28];
    if sender_ip == [0; 4] || sender_ip == target_ip {
        return Err(Reason::DropArpNotAnswered);
    }
    let mut reply = [0u8; ETH_HDR_LEN + ARP_ETH_IPV4_LEN];
    reply[0..6].copy_from_slice(sender_mac);
    reply[6..12].copy_from_slice(&iface.mac);
    reply[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    reply[14..20].copy_from_slice(&arp[..6]);
    reply[20..22].copy_from_slice(&[0, 2]);
    reply[22..28].copy_from_slice(&iface.mac);
    reply[28..32].copy_from_slice(target_ip);
    reply[32..38].copy_from_slice(sender_mac);
    reply[38..42].copy_from_slice(sender_ip);
    ctx.store(0, &reply, 0)
        .map_err(|_| Reason::DropHelperFailed)?;
    redirect(ifindex, Reason::ArpReply)
}
