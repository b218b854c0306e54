//! Reads the per-CPU counter maps and sums them into status counters.

use std::{collections::BTreeMap, path::Path};

use aya::{
    Ebpf,
    maps::{MapData, PerCpuArray},
};
use shoal_api::status::{HookCounters, PacketCount as StatusCount, protocol_name};
use shoal_ebpf_common::{Direction, PacketCount, Verdict, map_names, protocol_slot, verdict_slot};

use super::DataplaneError;
use super::map_source::{MapSource, map_error};

/// Read access to the counter maps.
pub struct Counters {
    protocols: PerCpuArray<MapData, PacketCount>,
    verdicts: PerCpuArray<MapData, u64>,
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
            verdicts: source.open(map_names::VERDICT_COUNTERS)?,
        })
    }

    /// Sums every slot over CPUs. Protocols never seen are left out;
    /// every verdict is listed.
    pub fn read(&self) -> Result<BTreeMap<String, HookCounters>, DataplaneError> {
        let mut out = BTreeMap::new();
        for direction in Direction::ALL {
            let mut hook = HookCounters::default();
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
                    hook.protocols.insert(protocol_name(protocol), total);
                }
            }
            for verdict in Verdict::ALL {
                let per_cpu = self
                    .verdicts
                    .get(&verdict_slot(direction, verdict), 0)
                    .map_err(map_error(map_names::VERDICT_COUNTERS))?;
                hook.verdicts
                    .insert(verdict.as_str().to_owned(), per_cpu.iter().sum());
            }
            out.insert(direction.as_str().to_owned(), hook);
        }
        Ok(out)
    }
}
