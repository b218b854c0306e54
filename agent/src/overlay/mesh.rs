//! The node's routing mesh (DESIGN §5, data path 5), the only writer of the
//! mesh maps: which published ports this node answers on and where their
//! flows go, from what the managers announce (each service's ingress VIP
//! carries its resolved ports):
//!
//! - `ingress` mode, on every node: the Maglev table the overlay keeps for
//!   the service's VIP on the ingress network (its running tasks there),
//!   so every node picks the same backend for a flow;
//! - `host` mode, only on nodes running one of the service's tasks: that
//!   task (the scheduler keeps it to one per node and port).
//!
//! Each published port has a counter row in `MESH_COUNTERS`, kept while the
//! port is and zeroed before another port gets it; [`RoutingMesh::status`]
//! reads them per service for `service inspect` and the node's status.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    path::Path,
    sync::{Mutex, MutexGuard, PoisonError},
};

use shoal_api::{
    service::{OverlayEndpoint, PortConfig, ServiceVip},
    status::{MeshStatus, PublishedPortCounters},
};
use shoal_ebpf_common::{MESH_MAX_PORTS, MESH_NODE_ROW};
use tracing::warn;

use crate::dataplane::{DataplaneError, MeshHook, MeshMaps, PortTarget, PublishedPort};

/// Where the routing mesh answers and which hook runs it.
#[derive(Clone, Debug)]
pub struct MeshSettings {
    /// The node's underlay address: published ports answer on it.
    pub node_ip: Ipv4Addr,
    /// The underlay interface, where replies to clients leave.
    pub underlay_iface: String,
    /// XDP (default) or tc.
    pub hook: MeshHook,
    /// Whether XDP tunnels packets for other nodes' backends itself
    /// (`XDP_TX`) rather than through `tc_underlay_ingress`.
    pub xdp_tunnel: bool,
}

/// IP protocol numbers of the protocols the mesh balances.
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// A published port this node should answer on, before it has a counter
/// row.
#[derive(Clone, Debug, PartialEq, Eq)]
struct WantedPort {
    service_id: String,
    service_name: String,
    config: PortConfig,
    vni: u32,
    target: PortTarget,
}

/// A published port as written, with its counter row.
#[derive(Clone, Debug)]
struct WrittenPort {
    wanted: Option<WantedPort>,
    row: u32,
}

/// The node's routing mesh: its maps and the ports written so far.
#[derive(Debug)]
pub struct RoutingMesh {
    node_id: String,
    maps: Mutex<MeshMaps>,
    written: Mutex<BTreeMap<(u8, u16), WrittenPort>>,
}

/// The protocol number of a published port, if the mesh balances it.
fn protocol_number(config: &PortConfig) -> Option<u8> {
    match config.protocol() {
        "tcp" => Some(IPPROTO_TCP),
        "udp" => Some(IPPROTO_UDP),
        _ => None,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RoutingMesh {
    /// Opens the mesh maps pinned under `pin_dir` and turns the mesh on
    /// as `settings` say (the overlay has written the node's underlay).
    pub fn start(
        pin_dir: &Path,
        node_id: &str,
        settings: &MeshSettings,
    ) -> Result<Self, DataplaneError> {
        let mut maps = MeshMaps::from_pins(pin_dir)?;
        let xdp_tunnel = settings.xdp_tunnel && enable_forwarding(&settings.underlay_iface);
        maps.configure(settings.hook, xdp_tunnel)?;
        // Ports a previous run wrote keep their rows (and counters) until
        // the first sync says whether they are still wanted.
        let written = maps
            .ports()?
            .into_iter()
            .map(|(key, row)| (key, WrittenPort { wanted: None, row }))
            .collect();
        Ok(Self {
            node_id: node_id.to_owned(),
            maps: Mutex::new(maps),
            written: Mutex::new(written),
        })
    }

    /// Writes the published ports `vips` and `endpoints` call for (the
    /// ingress VIPs' Maglev tables being at `vip_slots`) and removes the
    /// rest.
    pub fn sync(
        &self,
        vips: &BTreeMap<String, ServiceVip>,
        endpoints: &BTreeMap<String, OverlayEndpoint>,
        vip_slots: &BTreeMap<(u32, Ipv4Addr), u32>,
    ) {
        let wanted = wanted_ports(&self.node_id, vips, endpoints, vip_slots);
        let mut written = lock(&self.written);
        let mut maps = lock(&self.maps);
        if let Some(want) = wanted.values().next()
            && let Err(error) = maps.set_ingress_vni(want.vni)
        {
            warn!(%error, vni = want.vni, "recording the ingress network's VNI");
        }
        written.retain(|&(protocol, port), _| {
            if wanted.contains_key(&(protocol, port)) {
                return true;
            }
            if let Err(error) = maps.remove_port(protocol, port) {
                warn!(%error, protocol, port, "unpublishing a port");
            }
            false
        });
        for (&(protocol, port), want) in &wanted {
            let row = if let Some(w) = written.get(&(protocol, port)) {
                if w.wanted.as_ref() == Some(want) {
                    continue;
                }
                w.row
            } else {
                let used: BTreeSet<u32> = written.values().map(|w| w.row).collect();
                let Some(row) = (0..MESH_MAX_PORTS).find(|r| !used.contains(r)) else {
                    warn!(protocol, port, "no free counter row: port not published");
                    continue;
                };
                if let Err(error) = maps.clear_row(row) {
                    warn!(%error, row, "zeroing a published port's counters");
                }
                row
            };
            let published = PublishedPort {
                vni: want.vni,
                target_port: want.config.target_port,
                target: want.target,
                counter_row: row,
            };
            match maps.upsert_port(protocol, port, published) {
                Ok(()) => {
                    let wanted = Some(want.clone());
                    written.insert((protocol, port), WrittenPort { wanted, row });
                }
                Err(error) => warn!(%error, protocol, port, "publishing a port"),
            }
        }
    }

    /// The node's row and every published port's counters on this node.
    pub fn status(&self) -> MeshStatus {
        let written = lock(&self.written);
        let maps = lock(&self.maps);
        let node = maps.row(MESH_NODE_ROW).unwrap_or_else(|error| {
            warn!(%error, "reading the mesh's node counters");
            BTreeMap::new()
        });
        let mut ports = Vec::new();
        for (&(_, port), w) in written.iter() {
            let Some(want) = &w.wanted else { continue };
            let verdicts = maps.row(w.row).unwrap_or_else(|error| {
                warn!(%error, port, "reading a published port's counters");
                BTreeMap::new()
            });
            ports.push(PublishedPortCounters {
                service_id: want.service_id.clone(),
                service_name: want.service_name.clone(),
                protocol: want.config.protocol().to_owned(),
                published_port: port,
                target_port: want.config.target_port,
                publish_mode: if want.config.is_host_mode() {
                    "host".to_owned()
                } else {
                    "ingress".to_owned()
                },
                verdicts,
            });
        }
        MeshStatus { node, ports }
    }

    /// The mesh maps, for tests and tools that read conntrack.
    pub fn maps(&self) -> MutexGuard<'_, MeshMaps> {
        lock(&self.maps)
    }
}

/// Turns IPv4 forwarding on for `iface` (`net.ipv4.conf.<iface>.forwarding`,
/// in this network namespace only): the kernel's FIB lookup for XDP, which
/// finds the next hop of a packet XDP tunnels, answers only for an
/// interface that forwards (Cilium's XDP needs the same). The node gets no
/// route it did not have. `false`, with a warning, when it cannot be set:
/// XDP then leaves tunnelling to tc.
fn enable_forwarding(iface: &str) -> bool {
    let path = format!("/proc/sys/net/ipv4/conf/{iface}/forwarding");
    match std::fs::write(&path, "1") {
        Ok(()) => true,
        Err(error) => {
            warn!(%error, path, "cannot turn forwarding on: XDP leaves tunnelling to tc");
            false
        }
    }
}

/// The published ports node `node_id` answers on: every ingress-mode port
/// of a service whose ingress VIP is balanced (it has a slot), and the
/// host-mode ports of services with a running task here on the ingress
/// network.
fn wanted_ports(
    node_id: &str,
    vips: &BTreeMap<String, ServiceVip>,
    endpoints: &BTreeMap<String, OverlayEndpoint>,
    vip_slots: &BTreeMap<(u32, Ipv4Addr), u32>,
) -> BTreeMap<(u8, u16), WantedPort> {
    let mut wanted = BTreeMap::new();
    for vip in vips.values() {
        for config in &vip.ports {
            let Some(protocol) = protocol_number(config) else {
                continue;
            };
            let target = if config.is_host_mode() {
                let local = endpoints
                    .values()
                    .filter(|e| {
                        e.running
                            && e.vni == vip.vni
                            && e.service_id == vip.service_id
                            && e.node_id == node_id
                    })
                    .map(|e| e.addr)
                    .min();
                match local {
                    Some(task) => PortTarget::Host { task },
                    None => continue,
                }
            } else {
                match vip_slots.get(&(vip.vni, vip.vip)) {
                    Some(&slot) => PortTarget::Maglev { vip: vip.vip, slot },
                    None => continue,
                }
            };
            wanted.insert(
                (protocol, config.published_port),
                WantedPort {
                    service_id: vip.service_id.clone(),
                    service_name: vip.service_name.clone(),
                    config: config.clone(),
                    vni: vip.vni,
                    target,
                },
            );
        }
    }
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(published: u16, target: u16, protocol: &str, mode: &str) -> PortConfig {
        PortConfig {
            protocol: protocol.into(),
            target_port: target,
            published_port: published,
            publish_mode: mode.into(),
            ..PortConfig::default()
        }
    }

    fn endpoint(service: &str, node: &str, last: u8, running: bool) -> (String, OverlayEndpoint) {
        let endpoint = OverlayEndpoint {
            vni: 4096,
            addr: Ipv4Addr::new(10, 0, 0, last),
            node_id: node.into(),
            node_addr: Ipv4Addr::new(198, 18, 0, 2),
            task_id: format!("t{last}"),
            service_id: service.into(),
            service_name: service.into(),
            running,
        };
        (endpoint.key(), endpoint)
    }

    fn vip(service: &str, last: u8, ports: Vec<PortConfig>) -> (String, ServiceVip) {
        let vip = ServiceVip {
            service_id: service.into(),
            service_name: service.into(),
            aliases: Vec::new(),
            vni: 4096,
            vip: Ipv4Addr::new(10, 0, 0, last),
            ports,
        };
        (vip.key(), vip)
    }

    #[test]
    fn ingress_ports_use_the_vip_table_and_host_ports_the_local_task() {
        let vips = [
            vip(
                "web",
                2,
                vec![port(8080, 80, "", ""), port(8053, 53, "udp", "ingress")],
            ),
            vip("edge", 3, vec![port(9000, 90, "tcp", "host")]),
            vip("away", 4, vec![port(9001, 90, "tcp", "host")]),
            vip("sctp", 5, vec![port(9002, 90, "sctp", "ingress")]),
            vip("unbalanced", 6, vec![port(9003, 90, "tcp", "ingress")]),
        ]
        .into_iter()
        .collect();
        let endpoints = [
            endpoint("edge", "me", 20, false),
            endpoint("edge", "me", 21, true),
            endpoint("edge", "other", 22, true),
            endpoint("away", "other", 23, true),
        ]
        .into_iter()
        .collect();
        let slots = [
            ((4096, Ipv4Addr::new(10, 0, 0, 2)), 7),
            ((4096, Ipv4Addr::new(10, 0, 0, 5)), 8),
        ]
        .into_iter()
        .collect();
        let wanted = wanted_ports("me", &vips, &endpoints, &slots);
        let keys: Vec<(u8, u16)> = wanted.keys().copied().collect();
        assert_eq!(keys, [(6, 8080), (6, 9000), (17, 8053)]);
        let vip_table = PortTarget::Maglev {
            vip: Ipv4Addr::new(10, 0, 0, 2),
            slot: 7,
        };
        assert_eq!(wanted[&(6, 8080)].target, vip_table);
        assert_eq!(wanted[&(17, 8053)].target, vip_table);
        assert_eq!(
            wanted[&(6, 9000)].target,
            PortTarget::Host {
                task: Ipv4Addr::new(10, 0, 0, 21)
            }
        );
        assert_eq!(wanted[&(6, 9000)].service_name, "edge");
    }
}
