//! tc (TCX / clsact) egress on the node's underlay interface. Today it counts
//! what the node sends per IP protocol and never drops: the stack built these
//! packets. Overlay encapsulation checks will be added here.

use aya_ebpf::{bindings::TC_ACT_UNSPEC, macros::classifier, programs::TcContext};
use shoal_ebpf_common::{Classified, Direction, ETH_HDR_LEN, Verdict, classify, ip_next_offset};

use crate::counters::{count_protocol, count_verdict};

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
    match classify(frame_len, ethertype, first, next) {
        Classified::Ip { protocol } => {
            count_protocol(Direction::UnderlayEgress, protocol, frame_len as u64);
            count_verdict(Direction::UnderlayEgress, Verdict::PassIp);
        }
        Classified::Other(verdict) => count_verdict(Direction::UnderlayEgress, verdict),
    }
    TC_ACT_UNSPEC
}
