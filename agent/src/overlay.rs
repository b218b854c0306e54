//! The node's overlay wiring (DESIGN.md §4–5, data paths 1 and 2), and the
//! only writer of the overlay maps:
//!
//! - the flow-based VXLAN device, with `tc_vxlan_ingress` on its ingress
//!   and its ifindex in `OVERLAY_CONFIG`;
//! - each local task interface (the host side of its veth), with
//!   `tc_endpoint_ingress` on its ingress, its VNI and MAC in
//!   `OVERLAY_INTERFACES` and the task's address as a local endpoint;
//! - every task address on another node, as the managers announce them
//!   ([`run_endpoint_sync`]), as a remote endpoint behind that node's
//!   underlay address.
//!
//! Links are pinned beside the programs, so traffic keeps flowing while the
//! agent restarts; writes are idempotent, so a restart replays them.

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    sync::Mutex,
};

use shoal_api::service::OverlayEndpoint;
use shoal_ebpf_common::program_names;
use tokio::sync::watch;
use tracing::warn;

use crate::{
    assignments::Directory,
    dataplane::{
        self, DataplaneError, Endpoint as MapEndpoint, EndpointLocation, Interface, OverlayMaps,
    },
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
}

impl Overlay {
    /// Creates (or finds) the VXLAN device on UDP `port` with `mtu`, opens
    /// the pinned maps under `pin_dir` and attaches `tc_vxlan_ingress`.
    pub async fn start(
        pin_dir: &Path,
        node_id: &str,
        port: u16,
        mtu: u32,
    ) -> Result<Self, OverlayError> {
        let vxlan = task_network::ensure_vxlan_device(port, mtu).await?;
        let mut maps = OverlayMaps::from_pins(pin_dir)?;
        maps.set_vxlan_ifindex(vxlan)?;
        dataplane::attach_overlay(
            pin_dir,
            program_names::TC_VXLAN_INGRESS,
            task_network::VXLAN_DEVICE,
            &pin_dir.join("link_overlay_vxlan"),
        )?;
        Ok(Self {
            pin_dir: pin_dir.to_owned(),
            node_id: node_id.to_owned(),
            maps: Mutex::new(maps),
            remote: Mutex::new(BTreeMap::new()),
        })
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

/// `<VNI>/<address>` back to its parts.
fn parse_key(key: &str) -> Option<(u32, Ipv4Addr)> {
    let (vni, addr) = key.split_once('/')?;
    Some((vni.parse().ok()?, addr.parse().ok()?))
}

/// Keeps the remote endpoints in step with what the managers announce,
/// until `shutdown`.
pub async fn run_endpoint_sync(
    overlay: std::sync::Arc<Overlay>,
    mut directory: watch::Receiver<Directory>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let current = directory.borrow_and_update().endpoints.clone();
        overlay.sync_remote(&current);
        tokio::select! {
            changed = directory.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
