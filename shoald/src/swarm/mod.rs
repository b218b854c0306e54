//! This node's membership in a swarm: `init`, `join`, resuming after a
//! restart, and `leave`. It owns the credentials the node keeps in
//! `<data-dir>/swarm/` (CA certificate, node certificate, node key with mode
//! 0600, `membership.json`), the manager role when the node has it, and the
//! agent's attachment to the managers.
//!
//! Each operation either completes or leaves the node as it was: a failed
//! init or join removes what it wrote.
//!
//! | module | owns |
//! | --- | --- |
//! | this one | the membership as a whole: resuming it, the manager role for control requests, `/info`'s swarm section, the agent attached while in a swarm |
//! | [`credentials`] | the files under `<data-dir>/swarm/` |
//! | [`formation`] | `init` and `join` |
//! | [`roles`] | promotion, demotion and certificate renewal |
//! | [`leave`] | `leave`, giving up a manager's Raft seat |

mod credentials;
mod formation;
mod leave;
mod roles;

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
};

use serde::{Deserialize, Serialize};
use shoal_agent::node::{Agent, Attachment};
use shoal_api::docker;
use shoal_manager::{
    ca::{self, NodeCredentials, NodeIdentity, TrustRoot},
    docker_view,
    runtime::{Manager, ManagerError, RaftTiming},
};
use tokio::sync::Mutex;
use tracing::info;

use self::credentials::{CA_CERT, MEMBERSHIP, NODE_CERT, NODE_KEY, read_file};

/// Errors with the messages the docker CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// `init`/`join` on a node already in a swarm.
    #[error(
        "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one."
    )]
    AlreadyInSwarm,
    /// A control request on a node outside any swarm.
    #[error(
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
    )]
    NotInSwarm,
    /// A control request on a worker.
    #[error(
        "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager."
    )]
    NotManager,
    /// Leaving would break the swarm without `--force`.
    #[error("{0}")]
    LeaveRefused(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// The join was refused or failed.
    #[error("{0}")]
    Join(String),
    /// The manager failed.
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// Certificates and keys.
    #[error(transparent)]
    Ca(#[from] ca::CaError),
    /// Local files.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What the node remembers about its swarm, besides its credentials.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Membership {
    cluster_id: String,
    /// `manager` or `worker`: the role the certificate grants.
    role: String,
    /// The node's Raft ID when it is a manager.
    raft_id: u64,
    /// Where the manager role serves gRPC.
    listen_addr: SocketAddr,
    /// `host:port` others reach the manager role at.
    manager_addr: String,
    /// Managers known at the last change, leader first.
    managers: Vec<String>,
}

/// Fixed facts about this node.
#[derive(Clone, Debug)]
pub struct NodeFacts {
    /// The node's ID.
    pub node_id: String,
    /// Its hostname.
    pub hostname: String,
    /// Its default advertise address.
    pub advertise_ip: IpAddr,
    /// `<data-dir>/swarm`.
    pub dir: PathBuf,
    /// Raft timing for the manager role.
    pub timing: RaftTiming,
    /// The node's agent, attached to the swarm while the node is in one.
    pub agent: Arc<Agent>,
}

struct Active {
    membership: Membership,
    creds: NodeCredentials,
    /// What `creds`' certificate says (parsed once, read every reconcile).
    identity: NodeIdentity,
    trust: TrustRoot,
    manager: Option<Manager>,
    /// The agent's session and task loops (stopped when dropped).
    agent: Attachment,
}

/// The node's swarm membership.
pub struct Swarm {
    facts: NodeFacts,
    active: Mutex<Option<Active>>,
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm")
            .field("facts", &self.facts)
            .finish_non_exhaustive()
    }
}

impl Swarm {
    /// Resumes the membership recorded in the data dir, if any.
    pub async fn open(facts: NodeFacts) -> Result<Self, SwarmError> {
        let swarm = Self {
            facts,
            active: Mutex::new(None),
        };
        let membership_path = swarm.facts.dir.join(MEMBERSHIP);
        if membership_path.exists() {
            let membership: Membership = serde_json::from_str(&read_file(&membership_path)?)
                .map_err(|e| {
                    SwarmError::InvalidRequest(format!("{}: {e}", membership_path.display()))
                })?;
            let creds = NodeCredentials {
                cert_pem: read_file(&swarm.facts.dir.join(NODE_CERT))?,
                key_pem: read_file(&swarm.facts.dir.join(NODE_KEY))?,
            };
            let trust = TrustRoot::from_pem(&read_file(&swarm.facts.dir.join(CA_CERT))?)?;
            let manager = if membership.role == "manager" {
                Some(swarm.start_manager(&membership, &creds, &trust).await?)
            } else {
                None
            };
            let active = swarm.activate(membership, manager, &creds, &trust)?;
            info!(cluster = %active.membership.cluster_id, role = %active.membership.role, "resumed swarm membership");
            *swarm.active.lock().await = Some(active);
        }
        Ok(swarm)
    }

    /// Attaches the agent to the swarm and bundles the running parts.
    fn activate(
        &self,
        membership: Membership,
        manager: Option<Manager>,
        creds: &NodeCredentials,
        trust: &TrustRoot,
    ) -> Result<Active, SwarmError> {
        let agent = self.facts.agent.join(
            ca::client_config(creds, trust)?,
            membership.managers.clone(),
        );
        Ok(Active {
            membership,
            identity: creds.identity()?,
            creds: creds.clone(),
            trust: trust.clone(),
            manager,
            agent,
        })
    }

    /// The manager role, for control requests (Docker's errors otherwise).
    pub async fn manager(&self) -> Result<Manager, SwarmError> {
        match self.active.lock().await.as_ref() {
            None => Err(SwarmError::NotInSwarm),
            Some(Active { manager: None, .. }) => Err(SwarmError::NotManager),
            Some(Active {
                manager: Some(manager),
                ..
            }) => Ok(manager.clone()),
        }
    }

    /// `/info`'s `Swarm` section.
    pub async fn info(&self) -> docker::SwarmInfo {
        let active = self.active.lock().await;
        let Some(current) = active.as_ref() else {
            return docker::SwarmInfo {
                local_node_state: "inactive".into(),
                ..docker::SwarmInfo::default()
            };
        };
        let session = current.agent.session();
        let mut info = docker::SwarmInfo {
            node_id: self.facts.node_id.clone(),
            node_addr: self.facts.advertise_ip.to_string(),
            local_node_state: "active".into(),
            control_available: current.manager.is_some(),
            ..docker::SwarmInfo::default()
        };
        if let Some(manager) = &current.manager {
            let (nodes, managers, cluster, peers) = manager
                .read(|s| {
                    let peers: Vec<docker::PeerNode> = s
                        .raft_members()
                        .filter_map(|n| {
                            n.manager.as_ref().map(|m| docker::PeerNode {
                                node_id: n.id.clone(),
                                addr: m.addr.clone(),
                            })
                        })
                        .collect();
                    (
                        s.nodes.len(),
                        s.raft_members().count(),
                        s.cluster.as_ref().map(docker_view::swarm),
                        peers,
                    )
                })
                .await;
            info.nodes = Some(nodes as u64);
            info.managers = Some(managers as u64);
            info.cluster = cluster;
            info.remote_managers = Some(peers);
        } else {
            info.remote_managers = Some(
                session
                    .managers
                    .iter()
                    .map(|addr| docker::PeerNode {
                        node_id: String::new(),
                        addr: addr.clone(),
                    })
                    .collect(),
            );
        }
        info
    }

    /// Stops the manager role and the session (the membership stays).
    pub async fn shutdown(&self) {
        if let Some(current) = self.active.lock().await.take() {
            stop(current).await;
        }
    }
}

async fn stop(active: Active) {
    drop(active.agent);
    if let Some(manager) = active.manager {
        manager.shutdown().await;
    }
}
