//! Typed access to the overlay maps (`OVERLAY_ENDPOINTS`,
//! `OVERLAY_INTERFACES`, `OVERLAY_CONFIG`, `OVERLAY_COUNTERS`) that
//! `tc_endpoint_ingress` and `tc_vxlan_ingress` read. The data plane is their
//! only writer; the agent's reconcile loop calls these methods with what the
//! managers assigned and what netlink created. Every write is idempotent
//! (insert-or-replace, removing an absent entry is not an error), so a
//! restarted agent can simply replay its desired state onto the pinned maps.

use std::{collections::BTreeMap, net::Ipv4Addr, path::Path};

use aya::{
    Ebpf,
    maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray},
    sys::SyscallError,
};
use shoal_api::status::HookCounters;
use shoal_ebpf_common::{
    OverlayConfig, OverlayEndpoint, OverlayEndpointKey, OverlayHook, OverlayInterface,
    OverlayVerdict, map_names, overlay_slot,
};

use super::DataplaneError;

/// Largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// Where an overlay endpoint (a task's address on a network) lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointLocation {
    /// A task on this node, behind the host side of its veth.
    Local {
        /// ifindex of the host-side veth in the agent's network namespace.
        ifindex: u32,
    },
    /// A task on another node, reached through the VXLAN device.
    Remote {
        /// That node's underlay IPv4 address.
        node: Ipv4Addr,
    },
}

/// One entry of `OVERLAY_ENDPOINTS`, as the agent sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The task's MAC on that network (its interface inside its netns).
    pub mac: [u8; 6],
    /// Where it lives.
    pub location: EndpointLocation,
}

/// One entry of `OVERLAY_INTERFACES`: a local task's host-side veth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    /// The network's VNI.
    pub vni: u32,
    /// The host-side veth's MAC: what the task's ARP requests resolve to.
    pub mac: [u8; 6],
}

/// The overlay maps of one loaded or pinned object.
pub struct OverlayMaps {
    endpoints: HashMap<MapData, OverlayEndpointKey, OverlayEndpoint>,
    interfaces: HashMap<MapData, u32, OverlayInterface>,
    config: Array<MapData, OverlayConfig>,
    counters: PerCpuArray<MapData, u64>,
}

impl std::fmt::Debug for OverlayMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverlayMaps").finish_non_exhaustive()
    }
}

fn map_error(map: &'static str) -> impl FnOnce(MapError) -> DataplaneError {
    move |source| DataplaneError::Map { map, source }
}

fn invalid(reason: &'static str) -> DataplaneError {
    DataplaneError::InvalidOverlayEntry { reason }
}

fn check_vni(vni: u32) -> Result<(), DataplaneError> {
    if vni == 0 || vni > MAX_VNI {
        return Err(invalid("a VNI is between 1 and 2^24 - 1"));
    }
    Ok(())
}

fn endpoint_key(vni: u32, ip: Ipv4Addr) -> OverlayEndpointKey {
    OverlayEndpointKey {
        vni,
        // The octets in memory order: the address as it is in the packet.
        ip_be: u32::from_ne_bytes(ip.octets()),
    }
}

/// `Ok(false)` for a delete of a key that is not there.
fn removed(result: Result<(), MapError>, map: &'static str) -> Result<bool, DataplaneError> {
    match result {
        Ok(()) => Ok(true),
        Err(MapError::SyscallError(SyscallError { io_error, .. }))
            if io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(false)
        }
        Err(source) => Err(DataplaneError::Map { map, source }),
    }
}

/// `Ok(None)` for a lookup of a key that is not there.
fn found<V>(result: Result<V, MapError>, map: &'static str) -> Result<Option<V>, DataplaneError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(MapError::KeyNotFound) => Ok(None),
        Err(source) => Err(DataplaneError::Map { map, source }),
    }
}

impl OverlayMaps {
    /// Takes the overlay maps out of a freshly loaded object.
    pub fn from_ebpf(ebpf: &mut Ebpf) -> Result<Self, DataplaneError> {
        let mut take = |name: &'static str| {
            ebpf.take_map(name).ok_or(DataplaneError::Map {
                map: name,
                source: MapError::InvalidName {
                    name: name.to_owned(),
                },
            })
        };
        Self::from_maps(
            take(map_names::OVERLAY_ENDPOINTS)?,
            take(map_names::OVERLAY_INTERFACES)?,
            take(map_names::OVERLAY_CONFIG)?,
            take(map_names::OVERLAY_COUNTERS)?,
        )
    }

    /// Opens the overlay maps pinned in `pin_dir`.
    pub fn from_pins(pin_dir: &Path) -> Result<Self, DataplaneError> {
        let open =
            |name: &'static str| MapData::from_pin(pin_dir.join(name)).map_err(map_error(name));
        Self::from_maps(
            Map::HashMap(open(map_names::OVERLAY_ENDPOINTS)?),
            Map::HashMap(open(map_names::OVERLAY_INTERFACES)?),
            Map::Array(open(map_names::OVERLAY_CONFIG)?),
            Map::PerCpuArray(open(map_names::OVERLAY_COUNTERS)?),
        )
    }

    fn from_maps(
        endpoints: Map,
        interfaces: Map,
        config: Map,
        counters: Map,
    ) -> Result<Self, DataplaneError> {
        Ok(Self {
            endpoints: endpoints
                .try_into()
                .map_err(map_error(map_names::OVERLAY_ENDPOINTS))?,
            interfaces: interfaces
                .try_into()
                .map_err(map_error(map_names::OVERLAY_INTERFACES))?,
            config: config
                .try_into()
                .map_err(map_error(map_names::OVERLAY_CONFIG))?,
            counters: counters
                .try_into()
                .map_err(map_error(map_names::OVERLAY_COUNTERS))?,
        })
    }

    /// Adds or replaces the endpoint `ip` of network `vni`.
    ///
    /// Refuses a VNI outside 1..2^24, a local endpoint without an ifindex and
    /// a remote one at `0.0.0.0` (which the programs read as "this node").
    pub fn upsert_endpoint(
        &mut self,
        vni: u32,
        ip: Ipv4Addr,
        endpoint: Endpoint,
    ) -> Result<(), DataplaneError> {
        check_vni(vni)?;
        let (node_ip, ifindex) = match endpoint.location {
            EndpointLocation::Local { ifindex: 0 } => {
                return Err(invalid("a local endpoint needs its veth's ifindex"));
            }
            EndpointLocation::Local { ifindex } => (0, ifindex),
            EndpointLocation::Remote { node } if node.is_unspecified() => {
                return Err(invalid("a remote endpoint needs its node's address"));
            }
            EndpointLocation::Remote { node } => (u32::from(node), 0),
        };
        let value = OverlayEndpoint {
            node_ip,
            ifindex,
            mac: endpoint.mac,
            _pad: [0; 2],
        };
        self.endpoints
            .insert(endpoint_key(vni, ip), value, 0)
            .map_err(map_error(map_names::OVERLAY_ENDPOINTS))
    }

    /// Removes the endpoint `ip` of network `vni`; `false` if there was none.
    pub fn remove_endpoint(&mut self, vni: u32, ip: Ipv4Addr) -> Result<bool, DataplaneError> {
        removed(
            self.endpoints.remove(&endpoint_key(vni, ip)),
            map_names::OVERLAY_ENDPOINTS,
        )
    }

    /// The endpoint `ip` of network `vni`, if there is one.
    pub fn endpoint(&self, vni: u32, ip: Ipv4Addr) -> Result<Option<Endpoint>, DataplaneError> {
        let value = found(
            self.endpoints.get(&endpoint_key(vni, ip), 0),
            map_names::OVERLAY_ENDPOINTS,
        )?;
        Ok(value.map(|value| Endpoint {
            mac: value.mac,
            location: if value.is_local() {
                EndpointLocation::Local {
                    ifindex: value.ifindex,
                }
            } else {
                EndpointLocation::Remote {
                    node: Ipv4Addr::from(value.node_ip),
                }
            },
        }))
    }

    /// Registers (or updates) a local task's host-side veth: `ifindex` in the
    /// agent's network namespace, its network's VNI and the veth's MAC.
    pub fn upsert_interface(
        &mut self,
        ifindex: u32,
        interface: Interface,
    ) -> Result<(), DataplaneError> {
        check_vni(interface.vni)?;
        if ifindex == 0 {
            return Err(invalid("an interface needs its ifindex"));
        }
        let value = OverlayInterface {
            vni: interface.vni,
            mac: interface.mac,
            _pad: [0; 2],
        };
        self.interfaces
            .insert(ifindex, value, 0)
            .map_err(map_error(map_names::OVERLAY_INTERFACES))
    }

    /// Forgets a host-side veth; `false` if it was not registered.
    pub fn remove_interface(&mut self, ifindex: u32) -> Result<bool, DataplaneError> {
        removed(
            self.interfaces.remove(&ifindex),
            map_names::OVERLAY_INTERFACES,
        )
    }

    /// The registered interface `ifindex`, if any.
    pub fn interface(&self, ifindex: u32) -> Result<Option<Interface>, DataplaneError> {
        let value = found(
            self.interfaces.get(&ifindex, 0),
            map_names::OVERLAY_INTERFACES,
        )?;
        Ok(value.map(|value| Interface {
            vni: value.vni,
            mac: value.mac,
        }))
    }

    /// Sets the ifindex of the node's flow-based VXLAN device (`0`: none,
    /// frames for remote endpoints are then dropped).
    pub fn set_vxlan_ifindex(&mut self, ifindex: u32) -> Result<(), DataplaneError> {
        self.config
            .set(
                0,
                OverlayConfig {
                    vxlan_ifindex: ifindex,
                },
                0,
            )
            .map_err(map_error(map_names::OVERLAY_CONFIG))
    }

    /// The configured VXLAN device's ifindex, `0` when none.
    pub fn vxlan_ifindex(&self) -> Result<u32, DataplaneError> {
        self.config
            .get(&0, 0)
            .map(|config| config.vxlan_ifindex)
            .map_err(map_error(map_names::OVERLAY_CONFIG))
    }

    /// How many frames `hook` gave `verdict`, summed over CPUs.
    pub fn count(&self, hook: OverlayHook, verdict: OverlayVerdict) -> Result<u64, DataplaneError> {
        let per_cpu = self
            .counters
            .get(&overlay_slot(hook, verdict), 0)
            .map_err(map_error(map_names::OVERLAY_COUNTERS))?;
        Ok(per_cpu.iter().sum())
    }

    /// Every overlay hook's verdicts (all listed, zero or not), keyed by
    /// hook name, for the node's status next to the underlay counters.
    pub fn hook_counters(&self) -> Result<BTreeMap<String, HookCounters>, DataplaneError> {
        let mut out = BTreeMap::new();
        for hook in OverlayHook::ALL {
            let mut counters = HookCounters::default();
            for verdict in OverlayVerdict::ALL {
                counters
                    .verdicts
                    .insert(verdict.as_str().to_owned(), self.count(hook, verdict)?);
            }
            out.insert(hook.as_str().to_owned(), counters);
        }
        Ok(out)
    }
}
