//! XDP on the node's underlay interface, ingress. Today it classifies every
//! frame, counts it per IP protocol and verdict, passes what is well formed
//! and drops runts and broken IP headers. The routing mesh (published ports,
//! Maglev, conntrack) will be added here.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use aya_log_ebpf::debug;
use shoal_ebpf_common::{Classified, Direction, ETH_HDR_LEN, Verdict, classify, ip_next_offset};

use crate::{
    counters::{count_protocol, count_verdict},
    parse::read_at,
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
            xdp_action::XDP_PASS
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
