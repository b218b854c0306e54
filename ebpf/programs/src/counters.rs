//! The per-CPU counters every hook counts into, and the one way they are
//! incremented ([`increment`], which the routing mesh's per-port rows use
//! too): one [`Reason`] per packet and hook (`REASON_COUNTERS`, [`count`])
//! and, on the underlay, packets and bytes per (direction, IP protocol)
//! (`PROTOCOL_COUNTERS`, [`count_protocol`]). Both maps are pinned by name
//! so that the agent reuses them across restarts.

use aya_ebpf::{macros::map, maps::PerCpuArray};
use shoal_ebpf_common::{
    Direction, Hook, PROTOCOL_COUNTER_SLOTS, PacketCount, REASON_COUNTER_SLOTS, Reason,
    protocol_slot, reason_slot,
};

#[map]
static PROTOCOL_COUNTERS: PerCpuArray<PacketCount> = PerCpuArray::pinned(PROTOCOL_COUNTER_SLOTS, 0);

#[map]
static REASON_COUNTERS: PerCpuArray<u64> = PerCpuArray::pinned(REASON_COUNTER_SLOTS, 0);

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

/// Counts one packet of `hook` under `reason`.
#[inline(always)]
pub fn count(hook: Hook, reason: Reason) {
    increment(&REASON_COUNTERS, reason_slot(hook, reason));
}

/// Adds one to `slot` of a per-CPU counter array (ignored past its end).
#[inline(always)]
pub fn increment(counters: &PerCpuArray<u64>, slot: u32) {
    if let Some(value) = counters.get_ptr_mut(slot) {
        // SAFETY: as in `count_protocol`.
        unsafe { *value += 1 };
    }
}
