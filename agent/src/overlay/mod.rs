//! The node's overlay wiring (DESIGN.md §4–5, data paths 1 and 2), and the
//! only writer of the overlay maps:
//!
//! - the node's underlay in `OVERLAY_CONFIG` (its address and interface,
//!   the VXLAN port), over which the programs tunnel themselves, and the
//!   flow-based VXLAN device for what they leave to the kernel, with
//!   `tc_vxlan_ingress` on its ingress;
//! - each local task interface (the host side of its veth), with
//!   `tc_endpoint_ingress` on its ingress, its VNI and MAC in
//!   `OVERLAY_INTERFACES` and the task's address as a local endpoint;
//! - every task address on another node, as the managers announce them
//!   ([`run_endpoint_sync`]), as a remote endpoint behind that node's
//!   underlay address;
//! - every service VIP (data path 4): `(VNI, VIP)` → a slot in
//!   `OVERLAY_SERVICES`, and that slot's Maglev table in `OVERLAY_MAGLEV`,
//!   built from the service's running endpoints on the VIP's network
//!   ([`Overlay::sync_services`]). A task that stops running leaves the
//!   table (no new flows) but keeps its endpoint, and so its established
//!   flows, until it is gone (DESIGN §5, "Draining").
//!
//!   The same VIPs and slots go to `SOCK_SERVICES` for the socket
//!   programs, which the executor attaches to each task's cgroup
//!   ([`Overlay::attach_sockets`]) and which translate a connection to a
//!   VIP once, at `connect()`, from the same tables.
//!
//! - the routing mesh's published ports ([`mesh`]), after the VIPs
//!   whose tables they share.
//!
//! Links are pinned beside the programs, so traffic keeps flowing while the
//! agent restarts; writes are idempotent, so a restart replays them.

pub mod mesh;

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    sync::Mutex,
};

use shoal_api::service::{OverlayEndpoint, ServiceVip};
use shoal_ebpf_common::{OVERLAY_MAGLEV_SIZE, OVERLAY_MAX_SERVICES, program_names};
use tokio::sync::watch;
use tracing::warn;

use self::mesh::{MeshSettings, RoutingMesh};
use crate::{
    dataplane::{
        self, DataplaneError, Endpoint as MapEndpoint, EndpointLocation, Interface, OverlayMaps,
        Underlay,
        maglev::{self, Backend, NO_BACKEND},
    },
    desired::Directory,
    task_network::{self, AttachedInterface, TaskNetworkError},
};

/// Why the overlay could not be wired.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// A map or program operation failed.
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
    /// Creating the VXLAN device failed.
    #[error(transparent)]
    Netlink(#[from] TaskNetworkError),
}

/// The node's overlay: its maps and where its links are pinned.
#[derive(Debug)]
pub struct Overlay {
    pin_dir: PathBuf,
    node_id: String,
    maps: Mutex<OverlayMaps>,
    /// The remote endpoints written so far, by key.
    remote: Mutex<BTreeMap<String, Ipv4Addr>>,
    /// The service VIPs written so far, by `(VNI, VIP)`.
    services: Mutex<BTreeMap<(u32, Ipv4Addr), WrittenService>>,
    /// The routing mesh, whose ingress ports use the VIPs' tables.
    mesh: RoutingMesh,
}

/// A service VIP as written into the maps.
#[derive(Debug)]
struct WrittenService {
    slot: u32,
    /// The backends its Maglev table was built from; `None` when the VIP
    /// was found in the pinned maps at start (a previous run wrote it).
    backends: Option<Vec<Ipv4Addr>>,
}

impl Overlay {
    /// Creates (or finds) the VXLAN device on UDP `port` with `mtu`, opens
    /// the pinned maps under `pin_dir`, attaches `tc_vxlan_ingress` and
    /// turns the routing mesh on.
    pub async fn start(
        pin_dir: &Path,
        node_id: &str,
        port: u16,
        mtu: u32,
        mesh: &MeshSettings,
    ) -> Result<Self, OverlayError> {
        let vxlan = task_network::ensure_vxlan_device(port, mtu).await?;
        let mut maps = OverlayMaps::from_pins(pin_dir)?;
        maps.set_underlay(&Underlay {
            vxlan_ifindex: vxlan,
            underlay_ifindex: dataplane::ifindex(&mesh.underlay_iface)?,
            node_ip: mesh.node_ip,
            vxlan_port: port,
        })?;
        maps.mirror_services_to_sockets()?;
        let services = maps
            .services()?
            .into_iter()
            .map(|(vip, slot)| {
                let written = WrittenService {
                    slot,
                    backends: None,
                };
                (vip, written)
            })
            .collect();
        dataplane::attach_overlay(
            pin_dir,
            program_names::TC_VXLAN_INGRESS,
            task_network::VXLAN_DEVICE,
            &pin_dir.join("link_overlay_vxlan"),
        )?;
        let mesh = RoutingMesh::start(pin_dir, node_id, mesh)?;
        Ok(Self {
            pin_dir: pin_dir.to_owned(),
            node_id: node_id.to_owned(),
            maps: Mutex::new(maps),
            remote: Mutex::new(BTreeMap::new()),
            services: Mutex::new(services),
            mesh,
        })
    }

    /// The node's routing mesh.
    #[must_use]
    pub fn mesh(&self) -> &RoutingMesh {
        &self.mesh
    }

    fn link_pin(&self, ifname: &str) -> PathBuf {
        self.pin_dir.join(format!("link_task_{ifname}"))
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, OverlayMaps> {
        self.maps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Wires a local task's interfaces: entries for the programs, then
    /// `tc_endpoint_ingress` on each host side.
    pub fn add_task(&self, interfaces: &[AttachedInterface]) -> Result<(), OverlayError> {
        for interface in interfaces {
            let vni = interface.network.vni;
            {
                let mut maps = self.maps();
                maps.upsert_interface(
                    interface.host_ifindex,
                    Interface {
                        vni,
                        mac: interface.host_mac,
                    },
                )?;
                maps.upsert_endpoint(
                    vni,
                    interface.network.addr,
                    MapEndpoint {
                        mac: interface.task_mac,
                        location: EndpointLocation::Local {
                            ifindex: interface.host_ifindex,
                        },
                    },
                )?;
            }
            dataplane::attach_overlay(
                &self.pin_dir,
                program_names::TC_ENDPOINT_INGRESS,
                &interface.host_ifname,
                &self.link_pin(&interface.host_ifname),
            )?;
        }
        Ok(())
    }

    /// Unwires a local task's interfaces (before its namespace goes).
    pub fn remove_task(&self, interfaces: &[AttachedInterface]) {
        for interface in interfaces {
            let mut maps = self.maps();
            let results = [
                maps.remove_endpoint(interface.network.vni, interface.network.addr)
                    .map(drop),
                maps.remove_interface(interface.host_ifindex).map(drop),
                dataplane::detach_overlay(&self.link_pin(&interface.host_ifname)),
            ];
            for error in results.into_iter().filter_map(Result::err) {
                warn!(%error, iface = %interface.host_ifname, "unwiring a task interface");
            }
        }
    }

    /// Attaches the socket programs to the cgroup v2 directory `cgroup` of
    /// task `task` (idempotent; the links are pinned beside the programs).
    pub fn attach_sockets(&self, task: &str, cgroup: &Path) -> Result<(), OverlayError> {
        Ok(dataplane::attach_socket_lb(&self.pin_dir, task, cgroup)?)
    }

    /// Detaches the socket programs from task `task`'s cgroup (its
    /// container is gone or going).
    pub fn detach_sockets(&self, task: &str) {
        if let Err(error) = dataplane::detach_socket_lb(&self.pin_dir, task) {
            warn!(%error, task, "detaching the socket load balancer");
        }
    }

    /// Writes every endpoint of another node in `endpoints` as remote and
    /// removes the remote ones that are gone. Local endpoints are the
    /// executor's ([`Self::add_task`]).
    pub fn sync_remote(&self, endpoints: &BTreeMap<String, OverlayEndpoint>) {
        let mut remote = self
            .remote
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut maps = self.maps();
        let wanted: BTreeMap<&String, &OverlayEndpoint> = endpoints
            .iter()
            .filter(|(_, e)| e.node_id != self.node_id)
            .collect();
        remote.retain(|key, _| {
            if wanted.contains_key(key) {
                return true;
            }
            if let Some((vni, addr)) = parse_key(key)
                && let Err(error) = maps.remove_endpoint(vni, addr)
            {
                warn!(%error, endpoint = %key, "removing a remote endpoint");
            }
            false
        });
        for (key, endpoint) in wanted {
            if remote.get(key) == Some(&endpoint.node_addr) {
                continue;
            }
            let written = maps.upsert_endpoint(
                endpoint.vni,
                endpoint.addr,
                MapEndpoint {
                    // The far side's tc_vxlan_ingress writes the real MACs.
                    mac: [0; 6],
                    location: EndpointLocation::Remote {
                        node: endpoint.node_addr,
                    },
                },
            );
            match written {
                Ok(()) => {
                    remote.insert(key.clone(), endpoint.node_addr);
                }
                Err(error) => warn!(%error, endpoint = %key, "writing a remote endpoint"),
            }
        }
    }
}

impl Overlay {
    /// Balances every VIP in `vips` over its service's running endpoints
    /// on its network: a Maglev table (rewritten when the backends change)
    /// and the VIP's entry; VIPs that are gone are removed. Then the
    /// routing mesh follows (its ingress ports use the VIPs' tables).
    pub fn sync_services(
        &self,
        vips: &BTreeMap<String, ServiceVip>,
        endpoints: &BTreeMap<String, OverlayEndpoint>,
    ) {
        let mut written = self
            .services
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut maps = self.maps();
        let wanted = wanted_services(vips, endpoints);
        written.retain(|&(vni, vip), _| {
            if wanted.contains_key(&(vni, vip)) {
                return true;
            }
            if let Err(error) = maps.remove_service(vni, vip) {
                warn!(%error, vni, %vip, "removing a service VIP");
            }
            false
        });
        for (&(vni, vip), backends) in &wanted {
            if written
                .get(&(vni, vip))
                .is_some_and(|w| w.backends.as_ref() == Some(backends))
            {
                continue;
            }
            let slot = if let Some(w) = written.get(&(vni, vip)) {
                w.slot
            } else {
                let used: std::collections::BTreeSet<u32> =
                    written.values().map(|w| w.slot).collect();
                let Some(slot) = (0..OVERLAY_MAX_SERVICES).find(|s| !used.contains(s)) else {
                    warn!(vni, %vip, "no free service slot: VIP not balanced");
                    continue;
                };
                slot
            };
            let result = maglev_table(backends)
                .map_err(|error| error.to_string())
                .and_then(|table| {
                    maps.set_maglev_table(slot, &table)
                        .and_then(|()| maps.upsert_service(vni, vip, slot))
                        .map_err(|error| error.to_string())
                });
            match result {
                Ok(()) => {
                    written.insert(
                        (vni, vip),
                        WrittenService {
                            slot,
                            backends: Some(backends.clone()),
                        },
                    );
                }
                Err(error) => warn!(%error, vni, %vip, "writing a service VIP"),
            }
        }
        let slots = written.iter().map(|(&key, w)| (key, w.slot)).collect();
        drop(maps);
        drop(written);
        self.mesh.sync(vips, endpoints, &slots);
    }
}

/// Each VIP's backends, sorted: the addresses of its service's endpoints on
/// the VIP's network that are running.
fn wanted_services(
    vips: &BTreeMap<String, ServiceVip>,
    endpoints: &BTreeMap<String, OverlayEndpoint>,
) -> BTreeMap<(u32, Ipv4Addr), Vec<Ipv4Addr>> {
    let mut wanted: BTreeMap<(u32, Ipv4Addr), Vec<Ipv4Addr>> = vips
        .values()
        .map(|vip| ((vip.vni, vip.vip), Vec::new()))
        .collect();
    for vip in vips.values() {
        let backends = wanted.entry((vip.vni, vip.vip)).or_default();
        backends.extend(
            endpoints
                .values()
                .filter(|e| e.running && e.vni == vip.vni && e.service_id == vip.service_id)
                .map(|e| e.addr),
        );
        backends.sort_unstable();
        backends.dedup();
    }
    wanted
}

/// The Maglev table of `backends` (keyed by address, equal weights), as the
/// addresses the programs read; `0.0.0.0` in every entry when there are none.
fn maglev_table(backends: &[Ipv4Addr]) -> Result<Vec<Ipv4Addr>, maglev::MaglevError> {
    let keyed: Vec<Backend> = backends
        .iter()
        .map(|&addr| Backend {
            key: std::net::SocketAddr::from((addr, 0)).into(),
            weight: std::num::NonZeroU32::MIN,
        })
        .collect();
    Ok(maglev::build(&keyed, OVERLAY_MAGLEV_SIZE)?
        .into_iter()
        .map(|index| {
            if index == NO_BACKEND {
                Ipv4Addr::UNSPECIFIED
            } else {
                backends[index as usize]
            }
        })
        .collect())
}

/// `<VNI>/<address>` back to its parts.
fn parse_key(key: &str) -> Option<(u32, Ipv4Addr)> {
    let (vni, addr) = key.split_once('/')?;
    Some((vni.parse().ok()?, addr.parse().ok()?))
}

/// Keeps the remote endpoints and the service VIPs in step with what the
/// managers announce, until `shutdown`.
pub async fn run_endpoint_sync(
    overlay: std::sync::Arc<Overlay>,
    mut directory: watch::Receiver<Directory>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let current = directory.borrow_and_update().clone();
        overlay.sync_remote(&current.endpoints);
        overlay.sync_services(&current.vips, &current.endpoints);
        tokio::select! {
            changed = directory.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(service: &str, vni: u32, last: u8, running: bool) -> (String, OverlayEndpoint) {
        let endpoint = OverlayEndpoint {
            vni,
            addr: Ipv4Addr::new(10, 0, 1, last),
            node_id: "n".into(),
            node_addr: Ipv4Addr::new(198, 18, 0, 2),
            task_id: format!("t{last}"),
            service_id: service.into(),
            service_name: service.into(),
            running,
        };
        (endpoint.key(), endpoint)
    }

    #[test]
    fn a_vip_balances_the_running_endpoints_of_its_service_on_its_network() {
        let web = ServiceVip {
            service_id: "web".into(),
            service_name: "web".into(),
            aliases: Vec::new(),
            vni: 4097,
            vip: Ipv4Addr::new(10, 0, 1, 2),
            ports: Vec::new(),
        };
        let idle = ServiceVip {
            service_id: "idle".into(),
            vip: Ipv4Addr::new(10, 0, 1, 3),
            ..web.clone()
        };
        let vips = [web.clone(), idle]
            .into_iter()
            .map(|v| (v.key(), v))
            .collect();
        let endpoints = [
            endpoint("web", 4097, 12, true),
            endpoint("web", 4097, 11, true),
            endpoint("web", 4097, 13, false),
            endpoint("web", 4098, 14, true),
            endpoint("api", 4097, 15, true),
        ]
        .into_iter()
        .collect();
        let wanted = wanted_services(&vips, &endpoints);
        assert_eq!(
            wanted[&(4097, web.vip)],
            [Ipv4Addr::new(10, 0, 1, 11), Ipv4Addr::new(10, 0, 1, 12)]
        );
        assert!(wanted[&(4097, Ipv4Addr::new(10, 0, 1, 3))].is_empty());
        assert_eq!(wanted.len(), 2);

        let table = maglev_table(&wanted[&(4097, web.vip)]).expect("table");
        assert_eq!(table.len(), OVERLAY_MAGLEV_SIZE as usize);
        let first = table
            .iter()
            .filter(|&&a| a == Ipv4Addr::new(10, 0, 1, 11))
            .count();
        assert!(first.abs_diff(510) <= 1, "{first} slots of 1021");
        let empty = maglev_table(&[]).expect("table");
        assert!(empty.iter().all(Ipv4Addr::is_unspecified));
    }

    #[test]
    fn endpoint_keys_parse_back() {
        let endpoint = OverlayEndpoint {
            vni: 4097,
            addr: Ipv4Addr::new(10, 0, 1, 7),
            node_id: "n".into(),
            node_addr: Ipv4Addr::new(198, 18, 0, 2),
            task_id: "t".into(),
            service_id: "s".into(),
            service_name: "web".into(),
            running: true,
        };
        assert_eq!(
            parse_key(&endpoint.key()),
            Some((4097, Ipv4Addr::new(10, 0, 1, 7)))
        );
        assert_eq!(parse_key("nonsense"), None);
    }
}
