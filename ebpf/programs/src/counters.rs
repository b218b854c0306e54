//! Per-CPU counters shared by every hook: packets and bytes per (direction,
//! IP protocol) and one slot per (direction, verdict). Both maps are pinned by
//! name so that the agent reuses them across restarts.

use aya_ebpf::{macros::map, maps::PerCpuArray};
use shoal_ebpf_common::{
    Direction, PROTOCOL_COUNTER_SLOTS, PacketCount, VERDICT_COUNTER_SLOTS, Verdict, protocol_slot,
    verdict_slot,
};

#[map]
static PROTOCOL_COUNTERS: PerCpuArray<PacketCount> = PerCpuArray::pinned(PROTOCOL_COUNTER_SLOTS, 0);

#[map]
static VERDICT_COUNTERS: PerCpuArray<u64> = PerCpuArray::pinned(VERDICT_COUNTER_SLOTS, 0);

/// Adds one packet of `bytes` to the protocol's slot. Per-CPU: no atomics.
#[inline(always)]
pub fn count_protocol(direction: Direction, protocol: u8, bytes: u64) {
    if let Some(slot) = PROTOCOL_COUNTERS.get_ptr_mut(protocol_slot(direction, protocol)) {
        // SAFETY: the pointer is this CPU's value in a per-CPU array; nothing
        // else writes it while this program runs on this CPU.
        unsafe {
            (*slot).packets += 1;
            (*slot).bytes += bytes;
        }
    }
}

/// Counts one packet under its verdict.
#[inline(always)]
pub fn count_verdict(direction: Direction, verdict: Verdict) {
    if let Some(slot) = VERDICT_COUNTERS.get_ptr_mut(verdict_slot(direction, verdict)) {
        // SAFETY: as in `count_protocol`.
        unsafe { *slot += 1 };
    }
}
