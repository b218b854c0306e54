//! The cluster's desired state as Raft replicates it: [`ClusterState`], the
//! [`Command`]s that change it and the pure [`apply`] function (DESIGN.md §3).
//!
//! Owns the swarm, node, service and task objects, their versions and the
//! list of removed node IDs; networks, secrets and configs will be added
//! here as further maps (and further `Command` variants). The Raft state
//! machine calls [`apply`] for each committed entry; the API layer reads
//! through the lookup helpers on [`ClusterState`].
//!
//! - [`types`] holds the objects (Docker's `Swarm`/`Node` vocabulary);
//! - [`command`] the commands, [`ApplyMeta`] and the responses;
//! - [`error`] the rejections ([`Rejected`]);
//! - [`validate`] the field validation and its bounds;
//! - `apply` the transition function (`apply_services` for services and
//!   tasks).

mod apply;
mod apply_networks;
mod apply_services;
pub mod command;
pub mod error;
pub mod types;
pub mod validate;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_services;

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Bound,
};

use serde::{Deserialize, Serialize};

pub use self::{
    apply::apply,
    command::{ApplyMeta, Command, NewNode, NewTask, Response, TaskChange},
    error::{ObjectRef, Rejected},
    types::{
        Availability, CaConfig, Cluster, DispatcherConfig, JoinTokens, ManagerInfo, Network, Node,
        NodeDescription, NodeResources, NodeRole, NodeSpec, NodeState, NodeStatusRecord,
        NodeTlsInfo, Platform, RaftConfig, Reachability, RootCaRecord, Service, SwarmSpec, Task,
    },
};

/// The replicated desired state of the cluster.
///
/// Change it only through [`apply`]. Missing fields deserialise empty, so a
/// snapshot taken before a field existed still loads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterState {
    /// The swarm, once initialised.
    pub cluster: Option<Cluster>,
    /// The nodes, by ID.
    pub nodes: BTreeMap<String, Node>,
    /// IDs of removed nodes: they may not join again, and their certificates
    /// must be refused forever.
    pub removed_nodes: BTreeSet<String>,
    /// The services, by ID.
    pub services: BTreeMap<String, Service>,
    /// The tasks, by ID, including ended ones kept as history.
    pub tasks: BTreeMap<String, Task>,
    /// The overlay networks, by ID.
    pub networks: BTreeMap<String, Network>,
}

impl ClusterState {
    /// The swarm, or [`Rejected::NoCluster`] before `swarm init`.
    pub fn cluster(&self) -> Result<&Cluster, Rejected> {
        self.cluster.as_ref().ok_or(Rejected::NoCluster)
    }

    /// Resolves a node the way `docker node inspect` does: an exact ID, else
    /// an exact name (hostname or spec name, ignoring ASCII case), else a
    /// unique ID prefix.
    ///
    /// Returns [`Rejected::NodeNotFound`] when nothing matches (or `query` is
    /// empty), [`Rejected::Ambiguous`] when several nodes share the name or
    /// the prefix.
    pub fn node(&self, query: &str) -> Result<&Node, Rejected> {
        lookup(
            &self.nodes,
            query,
            "node",
            |node| {
                node.description.hostname.eq_ignore_ascii_case(query)
                    || (!node.spec.name.is_empty() && node.spec.name.eq_ignore_ascii_case(query))
            },
            || Rejected::NodeNotFound {
                id: query.to_owned(),
            },
        )
    }

    /// Resolves a service the way `docker service inspect` does: an exact
    /// ID, else an exact name, else a unique ID prefix.
    pub fn service(&self, query: &str) -> Result<&Service, Rejected> {
        lookup(
            &self.services,
            query,
            "service",
            |service| service.spec.name == query,
            || Rejected::ServiceNotFound {
                id: query.to_owned(),
            },
        )
    }

    /// Resolves a network the way `docker network inspect` does: an exact
    /// ID, else an exact name, else a unique ID prefix.
    pub fn network(&self, query: &str) -> Result<&Network, Rejected> {
        lookup(
            &self.networks,
            query,
            "network",
            |network| network.spec.name == query,
            || Rejected::NetworkNotFound {
                id: query.to_owned(),
            },
        )
    }

    /// The routing mesh's network (`Ingress: true`), when there is one.
    #[must_use]
    pub fn ingress_network(&self) -> Option<&Network> {
        self.networks.values().find(|n| n.spec.ingress)
    }

    /// The tasks of a service, by ID.
    pub fn service_tasks<'a>(&'a self, service_id: &'a str) -> impl Iterator<Item = &'a Task> {
        self.tasks
            .values()
            .filter(move |task| task.service_id == service_id)
    }

    /// The nodes whose desired role is manager, by ID. (A just-promoted node
    /// is listed before Raft has added it; a just-demoted one is not,
    /// though it may still be a member: see [`Self::raft_members`].)
    pub fn managers(&self) -> impl Iterator<Item = &Node> {
        self.nodes
            .values()
            .filter(|node| node.spec.role == NodeRole::Manager)
    }

    /// How many nodes have the desired role manager.
    #[must_use]
    pub fn manager_count(&self) -> usize {
        self.managers().count()
    }

    /// The nodes recorded as Raft members (with [`ManagerInfo`]), by ID:
    /// what Docker shows as `MANAGER STATUS`.
    pub fn raft_members(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values().filter(|node| node.manager.is_some())
    }

    /// The Raft member with this Raft ID.
    #[must_use]
    pub fn node_by_raft_id(&self, raft_id: u64) -> Option<&Node> {
        self.raft_members().find(|node| {
            node.manager
                .as_ref()
                .is_some_and(|manager| manager.raft_id == raft_id)
        })
    }

    /// Whether the node `id` was removed (its certificate must be refused).
    #[must_use]
    pub fn is_removed(&self, id: &str) -> bool {
        self.removed_nodes.contains(id)
    }
}

/// An exact key, else the objects `by_name` accepts, else a unique key
/// prefix; several matches are [`Rejected::Ambiguous`].
fn lookup<'a, T>(
    objects: &'a BTreeMap<String, T>,
    query: &str,
    kind: &str,
    by_name: impl Fn(&T) -> bool,
    not_found: impl Fn() -> Rejected,
) -> Result<&'a T, Rejected> {
    if query.is_empty() {
        return Err(not_found());
    }
    if let Some(object) = objects.get(query) {
        return Ok(object);
    }
    let named: Vec<(&String, &T)> = objects.iter().filter(|(_, o)| by_name(o)).collect();
    let matches = if named.is_empty() {
        objects
            .range::<str, _>((Bound::Included(query), Bound::Unbounded))
            .take_while(|(id, _)| id.starts_with(query))
            .collect()
    } else {
        named
    };
    match matches.as_slice() {
        [] => Err(not_found()),
        [(_, object)] => Ok(object),
        several => Err(Rejected::Ambiguous {
            kind: kind.to_owned(),
            query: query.to_owned(),
            matches: several.iter().map(|(id, _)| (*id).clone()).collect(),
        }),
    }
}
