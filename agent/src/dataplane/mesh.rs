//! Typed access to the routing mesh's maps (`MESH_PORTS`, `MESH_CONFIG`,
//! `MESH_CONNTRACK`, `MESH_COUNTERS`) that `xdp_underlay`,
//! `tc_underlay_ingress`, `tc_endpoint_ingress` and `tc_vxlan_ingress` read.
//! The agent's [`crate::overlay::mesh`] module is their only writer (conntrack
//! aside, which the programs write); writes are idempotent like the
//! overlay's.

use std::{collections::BTreeMap, net::Ipv4Addr, path::Path};

use aya::maps::{Array, HashMap, MapData, MapError, PerCpuArray};
use shoal_ebpf_common::{
    FLOW_FORWARD, FLOW_REPLY, MESH_HOOK_TC, MESH_HOOK_XDP, MESH_MAX_PORTS, MESH_PORT_HOST,
    MeshConfig, MeshFlow, MeshPort, MeshPortKey, OverlayFlowKey, Reason, map_names, mesh_slot,
};

use super::map_source::{MapSource, map_error};
use super::{DataplaneError, Flow, FlowDirection};

/// Which hook runs the routing mesh on the underlay interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MeshHook {
    /// XDP balances and rewrites, tc delivers (the default).
    #[default]
    Xdp,
    /// tc ingress does everything (interfaces where XDP is a poor fit).
    Tc,
}

/// A published port as the programs see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishedPort {
    /// The ingress network's VNI.
    pub vni: u32,
    /// The port inside the tasks.
    pub target_port: u16,
    /// Where its flows go.
    pub target: PortTarget,
    /// Its row in `MESH_COUNTERS`, below [`MESH_MAX_PORTS`].
    pub counter_row: u32,
}

/// Where a published port's new flows go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortTarget {
    /// `ingress` mode: the Maglev table of the service's ingress VIP.
    Maglev {
        /// The VIP (part of the flow hash).
        vip: Ipv4Addr,
        /// Its table's slot in `OVERLAY_MAGLEV`.
        slot: u32,
    },
    /// `host` mode: the one task on this node.
    Host {
        /// The task's ingress address.
        task: Ipv4Addr,
    },
}

/// The mesh maps of one loaded or pinned object.
pub struct MeshMaps {
    ports: HashMap<MapData, MeshPortKey, MeshPort>,
    config: Array<MapData, MeshConfig>,
    conntrack: HashMap<MapData, OverlayFlowKey, MeshFlow>,
    counters: PerCpuArray<MapData, u64>,
}

impl std::fmt::Debug for MeshMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshMaps").finish_non_exhaustive()
    }
}

fn be(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

fn port_key(protocol: u8, port: u16) -> MeshPortKey {
    MeshPortKey {
        port_be: port.to_be(),
        protocol,
        _pad: 0,
    }
}

impl MeshMaps {
    /// Opens the mesh maps pinned in `pin_dir`.
    pub fn from_pins(pin_dir: &Path) -> Result<Self, DataplaneError> {
        let mut source = MapSource::Pinned(pin_dir);
        Ok(Self {
            ports: source.open(map_names::MESH_PORTS)?,
            config: source.open(map_names::MESH_CONFIG)?,
            conntrack: source.open(map_names::MESH_CONNTRACK)?,
            counters: source.open(map_names::MESH_COUNTERS)?,
        })
    }

    /// Turns the mesh on: `hook` runs it; with `xdp_tunnel`, XDP sends
    /// packets for other nodes' backends straight back out in VXLAN. The
    /// address published ports answer on, the underlay interface and the
    /// VXLAN port are the overlay's ([`super::OverlayMaps::set_underlay`]).
    /// The ingress network's VNI a previous run wrote stays until
    /// [`Self::set_ingress_vni`].
    pub fn configure(&mut self, hook: MeshHook, xdp_tunnel: bool) -> Result<(), DataplaneError> {
        let config = MeshConfig {
            hook: match hook {
                MeshHook::Xdp => MESH_HOOK_XDP,
                MeshHook::Tc => MESH_HOOK_TC,
            },
            xdp_tunnel: u32::from(xdp_tunnel),
            ingress_vni: self.config()?.ingress_vni,
        };
        self.config
            .set(0, config, 0)
            .map_err(map_error(map_names::MESH_CONFIG))
    }

    /// Records the ingress network's VNI, which published ports are on
    /// (`tc_underlay_ingress` finds the flows XDP balanced with it).
    pub fn set_ingress_vni(&mut self, vni: u32) -> Result<(), DataplaneError> {
        let config = self.config()?;
        if config.ingress_vni == vni {
            return Ok(());
        }
        self.config
            .set(
                0,
                MeshConfig {
                    ingress_vni: vni,
                    ..config
                },
                0,
            )
            .map_err(map_error(map_names::MESH_CONFIG))
    }

    fn config(&self) -> Result<MeshConfig, DataplaneError> {
        self.config
            .get(&0, 0)
            .map_err(map_error(map_names::MESH_CONFIG))
    }

    /// Publishes `port` of `protocol` (6 or 17).
    pub fn upsert_port(
        &mut self,
        protocol: u8,
        port: u16,
        published: PublishedPort,
    ) -> Result<(), DataplaneError> {
        if published.counter_row >= MESH_MAX_PORTS {
            return Err(DataplaneError::InvalidOverlayEntry {
                reason: "a published port's counter row is below MESH_MAX_PORTS",
            });
        }
        let (addr, flags, maglev_slot) = match published.target {
            PortTarget::Maglev { vip, slot } => (vip, 0, slot),
            PortTarget::Host { task } => (task, MESH_PORT_HOST, 0),
        };
        let value = MeshPort {
            vni: published.vni,
            addr_be: be(addr),
            target_port_be: published.target_port.to_be(),
            flags,
            _pad: 0,
            maglev_slot,
            counter_row: published.counter_row,
        };
        self.ports
            .insert(port_key(protocol, port), value, 0)
            .map_err(map_error(map_names::MESH_PORTS))
    }

    /// Unpublishes `port` of `protocol`; absent is not an error.
    pub fn remove_port(&mut self, protocol: u8, port: u16) -> Result<(), DataplaneError> {
        match self.ports.remove(&port_key(protocol, port)) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(MapError::SyscallError(e)) if e.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(())
            }
            Err(source) => Err(DataplaneError::Map {
                map: map_names::MESH_PORTS,
                source,
            }),
        }
    }

    /// Every published port: `(protocol, port)` → its counter row, as
    /// written (by this agent or a previous run of it).
    pub fn ports(&self) -> Result<BTreeMap<(u8, u16), u32>, DataplaneError> {
        self.ports
            .iter()
            .map(|entry| {
                entry
                    .map(|(key, port)| {
                        ((key.protocol, u16::from_be(key.port_be)), port.counter_row)
                    })
                    .map_err(map_error(map_names::MESH_PORTS))
            })
            .collect()
    }

    /// How many packets of counter row `row` (or
    /// [`shoal_ebpf_common::MESH_NODE_ROW`]) were counted under `reason`,
    /// summed over CPUs.
    pub fn count(&self, row: u32, reason: Reason) -> Result<u64, DataplaneError> {
        let per_cpu = self
            .counters
            .get(&mesh_slot(row, reason), 0)
            .map_err(map_error(map_names::MESH_COUNTERS))?;
        Ok(per_cpu.iter().sum())
    }

    /// The reasons row `row` counted at least once, by name.
    pub fn row(&self, row: u32) -> Result<BTreeMap<String, u64>, DataplaneError> {
        let mut counted = BTreeMap::new();
        for reason in Reason::ALL {
            let packets = self.count(row, reason)?;
            if packets > 0 {
                counted.insert(reason.as_str().to_owned(), packets);
            }
        }
        Ok(counted)
    }

    /// Zeroes row `row` (a published port's row before it is reused).
    pub fn clear_row(&mut self, row: u32) -> Result<(), DataplaneError> {
        let cpus = aya::util::nr_cpus().map_err(|(_, error)| DataplaneError::Io {
            op: "counting",
            path: "/sys/devices/system/cpu/possible".into(),
            source: error,
        })?;
        for reason in Reason::ALL {
            let zeroes =
                aya::maps::PerCpuValues::try_from(vec![0_u64; cpus]).map_err(|source| {
                    DataplaneError::Io {
                        op: "zeroing",
                        path: map_names::MESH_COUNTERS.into(),
                        source,
                    }
                })?;
            self.counters
                .set(mesh_slot(row, reason), zeroes, 0)
                .map_err(map_error(map_names::MESH_COUNTERS))?;
        }
        Ok(())
    }

    /// What conntrack holds for one direction of a mesh flow on network
    /// `vni`: the backend (forward) or the address put back (reply), its
    /// port, and for a reply the entry node (`None`: this node).
    pub fn conntrack(
        &self,
        vni: u32,
        direction: FlowDirection,
        flow: Flow,
    ) -> Result<Option<(std::net::SocketAddrV4, Option<Ipv4Addr>)>, DataplaneError> {
        let key = OverlayFlowKey {
            vni,
            src_be: be(*flow.src.ip()),
            dst_be: be(*flow.dst.ip()),
            sport_be: flow.src.port().to_be(),
            dport_be: flow.dst.port().to_be(),
            protocol: flow.protocol,
            direction: match direction {
                FlowDirection::Forward => FLOW_FORWARD,
                FlowDirection::Reply => FLOW_REPLY,
            },
            _pad: [0; 2],
        };
        match self.conntrack.get(&key, 0) {
            Ok(value) => Ok(Some((
                std::net::SocketAddrV4::new(
                    Ipv4Addr::from(value.addr_be.to_ne_bytes()),
                    u16::from_be(value.port_be),
                ),
                (value.entry_node != 0).then(|| Ipv4Addr::from(value.entry_node)),
            ))),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(source) => Err(DataplaneError::Map {
                map: map_names::MESH_CONNTRACK,
                source,
            }),
        }
    }
}
