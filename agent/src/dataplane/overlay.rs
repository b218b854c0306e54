//! Typed access to the overlay maps (`OVERLAY_ENDPOINTS`,
//! `OVERLAY_INTERFACES`, `OVERLAY_CONFIG`, and for
//! service VIPs `OVERLAY_SERVICES`, `OVERLAY_MAGLEV`, `OVERLAY_CONNTRACK`)
//! that `tc_endpoint_ingress` and `tc_vxlan_ingress` read. The data plane is their
//! only writer; the agent's reconcile loop calls these methods with what the
//! managers assigned and what netlink created. Every write is idempotent
//! (insert-or-replace, removing an absent entry is not an error), so a
//! restarted agent can simply replay its desired state onto the pinned maps.

use std::{
    collections::BTreeMap,
    net::{Ipv4Addr, SocketAddrV4},
    path::Path,
};

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, MapError},
    sys::SyscallError,
};
use shoal_ebpf_common::{
    FLOW_FORWARD, FLOW_REPLY, OVERLAY_MAGLEV_SIZE, OVERLAY_MAX_SERVICES, OverlayConfig,
    OverlayEndpoint, OverlayEndpointKey, OverlayFlowKey, OverlayInterface, map_names,
};

use super::DataplaneError;
use super::map_source::{MapSource, map_error};
use super::sock_lb::SocketLbMaps;

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

/// `OVERLAY_CONFIG`: the node's underlay, which the programs tunnel over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Underlay {
    /// The flow-based VXLAN device (`0`: none), for frames the programs
    /// leave to the kernel's VXLAN path.
    pub vxlan_ifindex: u32,
    /// The underlay interface, where tunnelled frames leave and arrive.
    pub underlay_ifindex: u32,
    /// The node's underlay address: the tunnels' source, and where
    /// published ports answer.
    pub node_ip: Ipv4Addr,
    /// The VXLAN UDP port.
    pub vxlan_port: u16,
}

/// Which of a balanced flow's two conntrack entries to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowDirection {
    /// Client → VIP; the entry holds the chosen backend.
    Forward,
    /// Backend → client; the entry holds the VIP.
    Reply,
}

/// One direction of a TCP or UDP flow, as a conntrack key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    /// IP protocol: 6 (TCP) or 17 (UDP).
    pub protocol: u8,
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
}

/// The overlay maps of one loaded or pinned object.
pub struct OverlayMaps {
    endpoints: HashMap<MapData, OverlayEndpointKey, OverlayEndpoint>,
    interfaces: HashMap<MapData, u32, OverlayInterface>,
    config: Array<MapData, OverlayConfig>,
    services: HashMap<MapData, OverlayEndpointKey, u32>,
    maglev: Array<MapData, u32>,
    conntrack: HashMap<MapData, OverlayFlowKey, u32>,
    /// The socket hooks' maps: `SOCK_SERVICES` mirrors `OVERLAY_SERVICES`.
    sockets: SocketLbMaps,
}

impl std::fmt::Debug for OverlayMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OverlayMaps").finish_non_exhaustive()
    }
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
pub(super) fn removed(
    result: Result<(), MapError>,
    map: &'static str,
) -> Result<bool, DataplaneError> {
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
pub(super) fn found<V>(
    result: Result<V, MapError>,
    map: &'static str,
) -> Result<Option<V>, DataplaneError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(MapError::KeyNotFound) => Ok(None),
        Err(source) => Err(DataplaneError::Map { map, source }),
    }
}

impl OverlayMaps {
    /// Takes the overlay maps out of a freshly loaded object.
    pub fn from_ebpf(ebpf: &mut Ebpf) -> Result<Self, DataplaneError> {
        Self::open(&mut MapSource::Loaded(ebpf))
    }

    /// Opens the overlay maps pinned in `pin_dir`.
    pub fn from_pins(pin_dir: &Path) -> Result<Self, DataplaneError> {
        Self::open(&mut MapSource::Pinned(pin_dir))
    }

    fn open(source: &mut MapSource<'_>) -> Result<Self, DataplaneError> {
        Ok(Self {
            endpoints: source.open(map_names::OVERLAY_ENDPOINTS)?,
            interfaces: source.open(map_names::OVERLAY_INTERFACES)?,
            config: source.open(map_names::OVERLAY_CONFIG)?,
            services: source.open(map_names::OVERLAY_SERVICES)?,
            maglev: source.open(map_names::OVERLAY_MAGLEV)?,
            conntrack: source.open(map_names::OVERLAY_CONNTRACK)?,
            sockets: SocketLbMaps::open(source)?,
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

    /// Writes the node's underlay, which the programs tunnel over.
    pub fn set_underlay(&mut self, underlay: &Underlay) -> Result<(), DataplaneError> {
        self.config
            .set(
                0,
                OverlayConfig {
                    vxlan_ifindex: underlay.vxlan_ifindex,
                    underlay_ifindex: underlay.underlay_ifindex,
                    node_ip_be: u32::from_ne_bytes(underlay.node_ip.octets()),
                    vxlan_port: u32::from(underlay.vxlan_port),
                },
                0,
            )
            .map_err(map_error(map_names::OVERLAY_CONFIG))
    }

    /// The node's underlay as written (all zero before
    /// [`Self::set_underlay`]).
    pub fn underlay(&self) -> Result<Underlay, DataplaneError> {
        let config = self
            .config
            .get(&0, 0)
            .map_err(map_error(map_names::OVERLAY_CONFIG))?;
        Ok(Underlay {
            vxlan_ifindex: config.vxlan_ifindex,
            underlay_ifindex: config.underlay_ifindex,
            node_ip: Ipv4Addr::from(config.node_ip_be.to_ne_bytes()),
            #[expect(clippy::cast_possible_truncation, reason = "written from a u16")]
            vxlan_port: config.vxlan_port as u16,
        })
    }

    /// Writes the Maglev table of service slot `slot`: exactly
    /// [`OVERLAY_MAGLEV_SIZE`] backend addresses (`0.0.0.0`: no backend).
    /// Entries are replaced one by one, each a valid backend at all times.
    pub fn set_maglev_table(
        &mut self,
        slot: u32,
        table: &[Ipv4Addr],
    ) -> Result<(), DataplaneError> {
        if slot >= OVERLAY_MAX_SERVICES {
            return Err(invalid("a service slot is below OVERLAY_MAX_SERVICES"));
        }
        if table.len() != OVERLAY_MAGLEV_SIZE as usize {
            return Err(invalid("a Maglev table has OVERLAY_MAGLEV_SIZE entries"));
        }
        for (index, backend) in (slot * OVERLAY_MAGLEV_SIZE..).zip(table) {
            self.maglev
                .set(index, u32::from_ne_bytes(backend.octets()), 0)
                .map_err(map_error(map_names::OVERLAY_MAGLEV))?;
        }
        Ok(())
    }

    /// Entry `index` of slot `slot`'s Maglev table.
    pub fn maglev_entry(&self, slot: u32, index: u32) -> Result<Ipv4Addr, DataplaneError> {
        if slot >= OVERLAY_MAX_SERVICES || index >= OVERLAY_MAGLEV_SIZE {
            return Err(invalid("outside the Maglev tables"));
        }
        let value = self
            .maglev
            .get(&(slot * OVERLAY_MAGLEV_SIZE + index), 0)
            .map_err(map_error(map_names::OVERLAY_MAGLEV))?;
        Ok(Ipv4Addr::from(value.to_ne_bytes()))
    }

    /// Makes `vip` a service VIP of network `vni` balanced by the Maglev
    /// table of `slot` (write the table first), for the tc path and the
    /// socket hooks alike.
    pub fn upsert_service(
        &mut self,
        vni: u32,
        vip: Ipv4Addr,
        slot: u32,
    ) -> Result<(), DataplaneError> {
        check_vni(vni)?;
        if slot >= OVERLAY_MAX_SERVICES {
            return Err(invalid("a service slot is below OVERLAY_MAX_SERVICES"));
        }
        self.services
            .insert(endpoint_key(vni, vip), slot, 0)
            .map_err(map_error(map_names::OVERLAY_SERVICES))?;
        self.sockets.upsert_service(vip, slot)
    }

    /// Stops balancing `vip` of network `vni`; `false` if it was not a VIP.
    pub fn remove_service(&mut self, vni: u32, vip: Ipv4Addr) -> Result<bool, DataplaneError> {
        self.sockets.remove_service(vip)?;
        removed(
            self.services.remove(&endpoint_key(vni, vip)),
            map_names::OVERLAY_SERVICES,
        )
    }

    /// Makes `SOCK_SERVICES` hold exactly the VIPs and slots of
    /// `OVERLAY_SERVICES`: after a start on pins an older build wrote,
    /// which may have had no socket hooks.
    pub fn mirror_services_to_sockets(&mut self) -> Result<(), DataplaneError> {
        let wanted: BTreeMap<Ipv4Addr, u32> = self
            .services()?
            .into_iter()
            .map(|((_, vip), slot)| (vip, slot))
            .collect();
        for vip in self.sockets.services()?.into_keys() {
            if !wanted.contains_key(&vip) {
                self.sockets.remove_service(vip)?;
            }
        }
        for (vip, slot) in wanted {
            self.sockets.upsert_service(vip, slot)?;
        }
        Ok(())
    }

    /// The socket hooks' maps (read-only: they follow the services).
    #[must_use]
    pub fn sockets(&self) -> &SocketLbMaps {
        &self.sockets
    }

    /// Every service VIP: `(VNI, VIP)` → slot, as written (by this agent or
    /// a previous run of it).
    pub fn services(&self) -> Result<BTreeMap<(u32, Ipv4Addr), u32>, DataplaneError> {
        self.services
            .iter()
            .map(|entry| {
                entry
                    .map(|(key, slot)| ((key.vni, Ipv4Addr::from(key.ip_be.to_ne_bytes())), slot))
                    .map_err(map_error(map_names::OVERLAY_SERVICES))
            })
            .collect()
    }

    /// What conntrack holds for one direction of a flow in network `vni`:
    /// the backend of a forward entry, the VIP of a reply entry.
    pub fn conntrack(
        &self,
        vni: u32,
        direction: FlowDirection,
        flow: Flow,
    ) -> Result<Option<Ipv4Addr>, DataplaneError> {
        let key = OverlayFlowKey {
            vni,
            src_be: u32::from_ne_bytes(flow.src.ip().octets()),
            dst_be: u32::from_ne_bytes(flow.dst.ip().octets()),
            sport_be: flow.src.port().to_be(),
            dport_be: flow.dst.port().to_be(),
            protocol: flow.protocol,
            direction: match direction {
                FlowDirection::Forward => FLOW_FORWARD,
                FlowDirection::Reply => FLOW_REPLY,
            },
            _pad: [0; 2],
        };
        let value = found(self.conntrack.get(&key, 0), map_names::OVERLAY_CONNTRACK)?;
        Ok(value.map(|value| Ipv4Addr::from(value.to_ne_bytes())))
    }
}
