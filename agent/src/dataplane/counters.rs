//! Reads the per-CPU counter maps every hook counts into
//! (`REASON_COUNTERS`, `PROTOCOL_COUNTERS`) and sums them into status
//! counters.

use std::{collections::BTreeMap, path::Path};

use aya::{
    Ebpf,
    maps::{MapData, PerCpuArray},
};
use shoal_api::status::{HookCounters, PacketCount as StatusCount, protocol_name};
use shoal_ebpf_common::{
    Direction, Hook, PacketCount, Reason, map_names, protocol_slot, reason_slot,
};

use super::DataplaneError;
use super::map_source::{MapSource, map_error};

/// Read access to the counter maps.
pub struct Counters {
    protocols: PerCpuArray<MapData, PacketCount>,
    reasons: PerCpuArray<MapData, u64>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

impl Counters {
    /// Takes the counter maps out of a freshly loaded object.
    pub fn from_ebpf(ebpf: &mut Ebpf) -> Result<Self, DataplaneError> {
        Self::open(&mut MapSource::Loaded(ebpf))
    }

    /// Opens the counter maps pinned in `pin_dir`.
    pub fn from_pins(pin_dir: &Path) -> Result<Self, DataplaneError> {
        Self::open(&mut MapSource::Pinned(pin_dir))
    }

    fn open(source: &mut MapSource<'_>) -> Result<Self, DataplaneError> {
        Ok(Self {
            protocols: source.open(map_names::PROTOCOL_COUNTERS)?,
            reasons: source.open(map_names::REASON_COUNTERS)?,
        })
    }

    /// How many packets `hook` counted under `reason`, summed over CPUs.
    pub fn count(&self, hook: Hook, reason: Reason) -> Result<u64, DataplaneError> {
        let per_cpu = self
            .reasons
            .get(&reason_slot(hook, reason), 0)
            .map_err(map_error(map_names::REASON_COUNTERS))?;
        Ok(per_cpu.iter().sum())
    }

    /// Every hook's counters, keyed by its program name, summed over CPUs:
    /// the reasons it counted at least once, and for the underlay hooks
    /// the IP protocols they saw.
    pub fn read(&self) -> Result<BTreeMap<String, HookCounters>, DataplaneError> {
        let mut out = BTreeMap::new();
        for hook in Hook::ALL {
            let mut counters = HookCounters::default();
            for reason in Reason::ALL {
                let packets = self.count(hook, reason)?;
                if packets > 0 {
                    counters
                        .verdicts
                        .insert(reason.as_str().to_owned(), packets);
                }
            }
            for direction in Direction::ALL.into_iter().filter(|d| d.hook() == hook) {
                counters.protocols.extend(self.protocols(direction)?);
            }
            out.insert(hook.as_str().to_owned(), counters);
        }
        Ok(out)
    }

    /// The IP protocols seen in `direction`, by name, summed over CPUs.
    fn protocols(
        &self,
        direction: Direction,
    ) -> Result<BTreeMap<String, StatusCount>, DataplaneError> {
        let mut seen = BTreeMap::new();
        for protocol in 0..=u8::MAX {
            let per_cpu = self
                .protocols
                .get(&protocol_slot(direction, protocol), 0)
                .map_err(map_error(map_names::PROTOCOL_COUNTERS))?;
            let total = per_cpu
                .iter()
                .fold(StatusCount::default(), |acc, c| StatusCount {
                    packets: acc.packets + c.packets,
                    bytes: acc.bytes + c.bytes,
                });
            if total.packets > 0 {
                seen.insert(protocol_name(protocol), total);
            }
        }
        Ok(seen)
    }
}
