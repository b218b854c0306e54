//! The part of [`super::apply`] that handles overlay networks and the
//! addresses of services and tasks on them, under the same contract:
//! deterministic (allocation takes the lowest free subnet, VNI and address,
//! see [`crate::ipam`]), all-or-nothing, versions from the [`ApplyMeta`].

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
};

use sha2::{Digest as _, Sha256};
use shoal_api::{
    id::ObjectId,
    network::{NetworkSpec, OVERLAY_DRIVER},
    service::ServiceSpec,
};

use super::{
    ClusterState,
    command::{ApplyMeta, Response},
    error::Rejected,
    types::{Cluster, INGRESS_NETWORK_NAME, Network},
    validate,
};
use crate::ipam::{self, Subnet};

type Result<T = Response> = std::result::Result<T, Rejected>;

/// The ID of the ingress network `swarm init` creates: derived from the
/// swarm's ID, so that every manager applying the init makes the same.
pub(super) fn ingress_network_id(cluster_id: &str) -> String {
    let digest = Sha256::digest(format!("shoal ingress network {cluster_id}").as_bytes());
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    ObjectId::from_u128(u128::from_le_bytes(bytes)).to_string()
}

/// The spec of the ingress network `swarm init` creates (Docker's):
/// `ingress`, overlay, its subnet carved from the pool like any network's
/// (so `10.0.0.0/24` and the first VNI in a new default swarm).
pub(super) fn ingress_network_spec() -> NetworkSpec {
    NetworkSpec {
        name: INGRESS_NETWORK_NAME.to_owned(),
        driver: OVERLAY_DRIVER.to_owned(),
        ingress: true,
        ..NetworkSpec::default()
    }
}

pub(super) fn create_network(
    state: &mut ClusterState,
    meta: &ApplyMeta,
    id: String,
    mut spec: NetworkSpec,
) -> Result {
    let cluster = state.cluster()?;
    validate::id("id", &id)?;
    validate::network_name("Name", &spec.name)?;
    validate::labels("Labels", &spec.labels)?;
    if spec.driver.is_empty() {
        OVERLAY_DRIVER.clone_into(&mut spec.driver);
    }
    if spec.driver != OVERLAY_DRIVER {
        return Err(Rejected::invalid(
            "Driver",
            format!("{}: swarm networks use the overlay driver", spec.driver),
        ));
    }
    spec.mtu().map_err(|e| Rejected::invalid("Options", e))?;
    if spec.ingress
        && let Some(ingress) = state.ingress_network()
    {
        return Err(Rejected::IngressExists {
            id: ingress.id.clone(),
        });
    }
    if state.networks.contains_key(&id) || state.networks.values().any(|n| n.spec.name == spec.name)
    {
        return Err(Rejected::NetworkExists { name: spec.name });
    }
    let (subnet, gateway) = choose_subnet(state, cluster, &spec)?;
    let vnis: BTreeSet<u32> = state.networks.values().map(|n| n.vni).collect();
    let vni = ipam::free_vni(&vnis)
        .ok_or_else(|| Rejected::Exhausted("no VXLAN network identifier left".into()))?;
    state.networks.insert(
        id.clone(),
        Network {
            id: id.clone(),
            version: meta.index,
            created_at_ms: meta.now_unix_ms,
            spec,
            subnet: subnet.to_string(),
            gateway,
            vni,
        },
    );
    Ok(Response::NetworkCreated {
        id,
        version: meta.index,
    })
}

/// The subnet and gateway of a new network: the spec's (checked: a
/// subnet with room for the gateway and one host, not overlapping another
/// network's; a gateway inside it), or the lowest free subnet of the
/// swarm's pools and its first host.
fn choose_subnet(
    state: &ClusterState,
    cluster: &Cluster,
    spec: &NetworkSpec,
) -> Result<(Subnet, Ipv4Addr)> {
    let used: Vec<Subnet> = state
        .networks
        .values()
        .filter_map(|n| Subnet::parse(&n.subnet).ok())
        .collect();
    match spec.ipam.config.as_slice() {
        [] => {
            let pools: Vec<Subnet> = cluster
                .default_addr_pool
                .iter()
                .filter_map(|p| Subnet::parse(p).ok())
                .collect();
            let subnet = ipam::carve_subnet(&pools, cluster.subnet_size, &used).ok_or_else(|| {
                Rejected::Exhausted(format!(
                    "could not find an available, non-overlapping IPv4 address pool among the defaults ({}) to assign to the network",
                    cluster.default_addr_pool.join(", ")
                ))
            })?;
            Ok((subnet, subnet.first_host()))
        }
        [config] => {
            let subnet = Subnet::parse(&config.subnet)
                .map_err(|e| Rejected::invalid("IPAM.Config.Subnet", e))?;
            if subnet.hosts() < 2 {
                return Err(Rejected::invalid(
                    "IPAM.Config.Subnet",
                    format!("{subnet} is too small"),
                ));
            }
            if let Some(taken) = used.iter().find(|u| u.overlaps(subnet)) {
                return Err(Rejected::invalid(
                    "IPAM.Config.Subnet",
                    format!("{subnet} overlaps the subnet {taken} of another network"),
                ));
            }
            let gateway = if config.gateway.is_empty() {
                subnet.first_host()
            } else {
                let gateway: Ipv4Addr = config.gateway.parse().map_err(|_| {
                    Rejected::invalid(
                        "IPAM.Config.Gateway",
                        format!("{:?} is not an IPv4 address", config.gateway),
                    )
                })?;
                if !subnet.is_host(gateway) {
                    return Err(Rejected::invalid(
                        "IPAM.Config.Gateway",
                        format!("{gateway} is not a host address of {subnet}"),
                    ));
                }
                gateway
            };
            Ok((subnet, gateway))
        }
        _ => Err(Rejected::invalid(
            "IPAM.Config",
            "one IPv4 subnet per network",
        )),
    }
}

pub(super) fn remove_network(state: &mut ClusterState, id: &str) -> Result {
    let network = state
        .networks
        .get(id)
        .ok_or_else(|| Rejected::NetworkNotFound { id: id.to_owned() })?;
    if network.spec.ingress
        && let Some(service) = state.services.values().find(|s| s.needs_ingress())
    {
        return Err(Rejected::IngressInUse {
            service_id: service.id.clone(),
        });
    }
    let mut services: BTreeSet<String> = state
        .services
        .values()
        .filter(|s| s.spec.task_template.networks.iter().any(|n| n.target == id))
        .map(|s| s.spec.name.clone())
        .collect();
    services.extend(
        state
            .tasks
            .values()
            .filter(|t| t.addresses.contains_key(id) && !t.status.state.is_final())
            .map(|t| {
                state
                    .services
                    .get(&t.service_id)
                    .map_or_else(|| t.service_id.clone(), |s| s.spec.name.clone())
            }),
    );
    if !services.is_empty() {
        return Err(Rejected::NetworkInUse {
            name: network.spec.name.clone(),
            services: services.into_iter().collect(),
        });
    }
    state.networks.remove(id);
    Ok(Response::NetworkRemoved { id: id.to_owned() })
}

/// Addresses of `network_id` that are taken: the gateway, every virtual
/// IP, and the address of every task that has not ended.
pub(super) fn used_addresses(state: &ClusterState, network_id: &str) -> BTreeSet<Ipv4Addr> {
    let mut used: BTreeSet<Ipv4Addr> = state
        .services
        .values()
        .filter_map(|s| s.virtual_ips.get(network_id).copied())
        .collect();
    used.extend(
        state
            .tasks
            .values()
            .filter(|t| !t.status.state.is_final())
            .filter_map(|t| t.addresses.get(network_id).copied()),
    );
    used
}

/// The networks a service's tasks join, by ID, in interface order: the
/// ingress network first when the service publishes ports (implicitly,
/// as Docker: it is not in the spec), then its spec's.
pub(super) fn service_networks(
    state: &ClusterState,
    spec: &ServiceSpec,
    publishes: bool,
) -> Vec<String> {
    let ingress = state
        .ingress_network()
        .filter(|_| publishes)
        .map(|n| n.id.clone());
    ingress
        .into_iter()
        .chain(spec.task_template.networks.iter().map(|n| n.target.clone()))
        .collect()
}

/// Checks a service spec's networks (they exist, none twice, not the
/// ingress network explicitly) and how many addresses it will need on
/// each: its virtual IP (unless `dnsrr`; always on the ingress network,
/// which it joins when it publishes ports) plus one per task it wants,
/// beyond what `service_id` already holds. Returns the service's virtual
/// IPs on its networks, keeping those it has.
pub(super) fn plan_service_addresses(
    state: &ClusterState,
    service_id: &str,
    spec: &ServiceSpec,
    publishes: bool,
) -> Result<BTreeMap<String, Ipv4Addr>> {
    let current = state.services.get(service_id);
    let mut seen = BTreeSet::new();
    let mut vips = BTreeMap::new();
    let tasks_wanted = spec
        .mode
        .replicas()
        .unwrap_or_else(|| u64::try_from(state.nodes.len()).unwrap_or(u64::MAX));
    for attachment in &spec.task_template.networks {
        if let Some(network) = state.networks.get(&attachment.target)
            && network.spec.ingress
        {
            return Err(Rejected::IngressAttachment {
                network: network.spec.name.clone(),
            });
        }
    }
    if publishes && state.ingress_network().is_none() {
        return Err(Rejected::NoIngress);
    }
    for network_id in service_networks(state, spec, publishes) {
        let network = state
            .networks
            .get(&network_id)
            .ok_or_else(|| Rejected::NetworkNotFound {
                id: network_id.clone(),
            })?;
        if !seen.insert(&network.id) {
            return Err(Rejected::invalid(
                "TaskTemplate.Networks",
                format!("network {} is attached twice", network.spec.name),
            ));
        }
        let wants_vip = spec.uses_vip() || network.spec.ingress;
        let subnet = Subnet::parse(&network.subnet).map_err(Rejected::Exhausted)?;
        let mut used = used_addresses(state, &network.id);
        used.insert(network.gateway);
        let held_vip = current
            .and_then(|s| s.virtual_ips.get(&network.id))
            .copied();
        let held_tasks = u64::try_from(
            state
                .service_tasks(service_id)
                .filter(|t| !t.status.state.is_final() && t.addresses.contains_key(&network.id))
                .count(),
        )
        .unwrap_or(0);
        let needs_vip = wants_vip && held_vip.is_none();
        let needed = u64::from(needs_vip) + tasks_wanted.saturating_sub(held_tasks);
        let free = subnet
            .hosts()
            .saturating_sub(u64::try_from(used.len()).unwrap_or(u64::MAX));
        if needed > free {
            return Err(Rejected::Exhausted(format!(
                "network {} ({subnet}) has {free} free addresses, the service needs {needed} more",
                network.spec.name
            )));
        }
        if wants_vip {
            let vip = match held_vip {
                Some(vip) => vip,
                None => ipam::free_address(subnet, network.gateway, &used).ok_or_else(|| {
                    Rejected::Exhausted(format!(
                        "could not find an available IP while allocating VIP on network {}",
                        network.spec.name
                    ))
                })?,
            };
            vips.insert(network.id.clone(), vip);
        }
    }
    Ok(vips)
}

/// An address for a new task on each network of its spec, or the error
/// naming the network that has none left.
pub(super) fn task_addresses(
    state: &ClusterState,
    networks: &[String],
    taken_now: &BTreeMap<String, BTreeSet<Ipv4Addr>>,
) -> std::result::Result<BTreeMap<String, Ipv4Addr>, String> {
    let mut addresses = BTreeMap::new();
    for network_id in networks {
        let Some(network) = state.networks.get(network_id) else {
            return Err(format!("network {network_id} not found"));
        };
        let subnet = Subnet::parse(&network.subnet)?;
        let mut used = used_addresses(state, network_id);
        if let Some(taken) = taken_now.get(network_id) {
            used.extend(taken);
        }
        let addr = ipam::free_address(subnet, network.gateway, &used).ok_or_else(|| {
            format!(
                "no free address left on network {} ({subnet})",
                network.spec.name
            )
        })?;
        addresses.insert(network_id.clone(), addr);
    }
    Ok(addresses)
}
