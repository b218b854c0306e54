//! This node's membership in a swarm: `init`, `join`, resuming after a
//! restart, and `leave`. It owns the credentials the node keeps in
//! `<data-dir>/swarm/` (CA certificate, node certificate, node key with mode
//! 0600, `membership.json`), the manager role when the node has it, and the
//! agent's session with the managers.
//!
//! Each operation either completes or leaves the node as it was: a failed
//! init or join removes what it wrote.

use std::{
    net::{IpAddr, SocketAddr},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use shoal_agent::node::{Agent, Attachment};
use shoal_api::{
    docker,
    grpc::{
        MANAGER_PORT, MANAGER_SERVER_NAME, channel,
        proto::{JoinRequest, JoinResponse, RenewRequest, ca_client::CaClient},
    },
    id::ObjectId,
};
use shoal_manager::{
    ca::{self, JoinToken, NodeCredentials, NodeIdentity, NodeKeyPair, RootCa, TrustRoot},
    docker_view,
    runtime::{Manager, ManagerConfig, ManagerError, RaftTiming},
    state::{self, Availability, Command, NewNode, NodeRole, Platform, RootCaRecord},
};
use tokio::sync::Mutex;
use tracing::{info, warn};

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

/// Where this node serves and is reached, from `init`/`join`.
struct Endpoints {
    /// Where the manager role listens.
    listen_addr: SocketAddr,
    /// `host:port` other nodes reach the manager role at.
    manager_addr: String,
    /// The advertised address without port.
    advertise_ip: String,
}

/// What `init` made, for [`Swarm::init_command`].
struct InitParts<'a> {
    cluster_id: String,
    spec: state::SwarmSpec,
    root: &'a RootCa,
    join_tokens: state::JoinTokens,
    advertise_ip: String,
    manager_addr: String,
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

const CA_CERT: &str = "ca.crt";
const NODE_CERT: &str = "node.crt";
const NODE_KEY: &str = "node.key";
const MEMBERSHIP: &str = "membership.json";

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SwarmError + 'a {
    move |source| SwarmError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically with `mode`, fsync'd.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SwarmError> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io_err("creating", &tmp))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io_err("chmod", &tmp))?;
    file.write_all(bytes).map_err(io_err("writing", &tmp))?;
    file.sync_all().map_err(io_err("syncing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("renaming into", path))
}

fn read_file(path: &Path) -> Result<String, SwarmError> {
    std::fs::read_to_string(path).map_err(io_err("reading", path))
}

/// `host:port`, adding `default_port` when `addr` has none.
fn with_port(addr: &str, default_port: u16) -> String {
    if addr.parse::<SocketAddr>().is_ok() || (addr.contains(':') && !addr.contains("::")) {
        addr.to_owned()
    } else {
        format!("{addr}:{default_port}")
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

    async fn start_manager(
        &self,
        membership: &Membership,
        creds: &NodeCredentials,
        trust: &TrustRoot,
    ) -> Result<Manager, SwarmError> {
        Ok(Manager::start(
            ManagerConfig {
                dir: self.facts.dir.join("manager"),
                node_id: self.facts.node_id.clone(),
                raft_id: membership.raft_id,
                listen_addr: membership.listen_addr,
                advertise_addr: membership.manager_addr.clone(),
                timing: self.facts.timing,
            },
            ca::server_config(creds, trust)?,
            ca::client_config(creds, trust)?,
        )
        .await?)
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

    fn persist(
        &self,
        membership: &Membership,
        creds: &NodeCredentials,
        ca_pem: &str,
    ) -> Result<(), SwarmError> {
        let dir = &self.facts.dir;
        std::fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err("chmod", dir))?;
        write_file(&dir.join(CA_CERT), ca_pem.as_bytes(), 0o644)?;
        write_file(&dir.join(NODE_CERT), creds.cert_pem.as_bytes(), 0o644)?;
        write_file(&dir.join(NODE_KEY), creds.key_pem.as_bytes(), 0o600)?;
        let json = serde_json::to_vec_pretty(membership)
            .map_err(|e| SwarmError::InvalidRequest(e.to_string()))?;
        write_file(&dir.join(MEMBERSHIP), &json, 0o600)
    }

    /// Removes everything the node keeps about its swarm.
    fn forget(&self) {
        if let Err(error) = std::fs::remove_dir_all(&self.facts.dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            warn!(%error, dir = %self.facts.dir.display(), "removing swarm state");
        }
    }

    fn platform() -> Platform {
        Platform {
            architecture: std::env::consts::ARCH.to_owned(),
            os: std::env::consts::OS.to_owned(),
        }
    }

    /// Where the manager role listens and how others reach this node, from
    /// `init`/`join`'s `ListenAddr` and `AdvertiseAddr` (either may be empty).
    fn endpoints(&self, listen: &str, advertise: &str) -> Result<Endpoints, SwarmError> {
        let listen_addr: SocketAddr = if listen.is_empty() {
            SocketAddr::from(([0, 0, 0, 0], MANAGER_PORT))
        } else {
            with_port(listen, MANAGER_PORT).parse().map_err(|e| {
                SwarmError::InvalidRequest(format!("invalid listen address {listen:?}: {e}"))
            })?
        };
        let advertise = if advertise.is_empty() {
            self.facts.advertise_ip.to_string()
        } else {
            advertise.to_owned()
        };
        let manager_addr = with_port(&advertise, listen_addr.port());
        let advertise_ip = manager_addr
            .rsplit_once(':')
            .map_or(advertise.clone(), |(h, _)| h.to_owned());
        Ok(Endpoints {
            listen_addr,
            manager_addr,
            advertise_ip,
        })
    }

    /// The `InitCluster` command for `request`.
    fn init_command(
        &self,
        request: &docker::SwarmInitRequest,
        parts: InitParts<'_>,
    ) -> Result<Command, SwarmError> {
        let InitParts {
            cluster_id,
            spec,
            root,
            join_tokens,
            advertise_ip,
            manager_addr,
        } = parts;
        let subnet_size = if request.subnet_size == 0 {
            24
        } else {
            request.subnet_size
        };
        let data_path_port = if request.data_path_port == 0 {
            u32::from(shoal_api::grpc::VXLAN_PORT)
        } else {
            request.data_path_port
        };
        Ok(Command::InitCluster {
            cluster_id,
            spec,
            root_ca: RootCaRecord {
                cert_pem: root.cert_pem().to_owned(),
                key_pem: root.key_pem().to_owned(),
                digest: root.digest().to_owned(),
            },
            join_tokens,
            default_addr_pool: if request.default_addr_pool.is_empty() {
                vec!["10.0.0.0/8".into()]
            } else {
                request.default_addr_pool.clone()
            },
            subnet_size: u8::try_from(subnet_size)
                .map_err(|_| SwarmError::InvalidRequest("invalid subnet size".into()))?,
            data_path_port: u16::try_from(data_path_port)
                .map_err(|_| SwarmError::InvalidRequest("invalid data path port".into()))?,
            first_node: NewNode {
                id: self.facts.node_id.clone(),
                role: NodeRole::Manager,
                availability: Availability::Active,
                hostname: self.facts.hostname.clone(),
                platform: Self::platform(),
                engine_version: env!("CARGO_PKG_VERSION").to_owned(),
                addr: advertise_ip,
                raft_id: Some(1),
                manager_addr: Some(manager_addr),
                tls: None,
            },
        })
    }

    /// `docker swarm init`: a new swarm with this node as its first manager.
    pub async fn init(&self, request: &docker::SwarmInitRequest) -> Result<String, SwarmError> {
        let mut active = self.active.lock().await;
        if active.is_some() {
            return Err(SwarmError::AlreadyInSwarm);
        }
        if request.force_new_cluster {
            return Err(SwarmError::InvalidRequest(
                "--force-new-cluster is not supported".into(),
            ));
        }
        let Endpoints {
            listen_addr,
            manager_addr,
            advertise_ip,
        } = self.endpoints(&request.listen_addr, &request.advertise_addr)?;
        let spec = docker_view::swarm_spec_from_docker(&request.spec, state::SwarmSpec::default())
            .map_err(SwarmError::InvalidRequest)?;

        let cluster_id = ObjectId::generate().to_string();
        let root = RootCa::generate(&cluster_id, ca::DEFAULT_ROOT_CA_VALIDITY)?;
        let worker_token = JoinToken::generate(&root)?.to_string();
        let manager_token = JoinToken::generate(&root)?.to_string();
        let key = NodeKeyPair::generate()?;
        let issued = root.issue_node_certificate(
            &key.csr_pem()?,
            &self.facts.node_id,
            ca::NodeRole::Manager,
            &cluster_id,
            Duration::from_millis(spec.ca_config.node_cert_expiry_ms),
        )?;
        let creds = NodeCredentials::new(&key, &issued);
        let trust = root.trust_root();
        let membership = Membership {
            cluster_id: cluster_id.clone(),
            role: "manager".into(),
            raft_id: 1,
            listen_addr,
            manager_addr: manager_addr.clone(),
            managers: vec![manager_addr.clone()],
        };
        self.persist(&membership, &creds, root.cert_pem())?;
        let result = async {
            let manager = self.start_manager(&membership, &creds, &trust).await?;
            let parts = InitParts {
                cluster_id: cluster_id.clone(),
                spec,
                root: &root,
                join_tokens: state::JoinTokens {
                    worker: worker_token,
                    manager: manager_token,
                },
                advertise_ip,
                manager_addr,
            };
            let init = self.init_command(request, parts)?;
            if let Err(error) = manager.bootstrap(init).await {
                manager.shutdown().await;
                return Err(SwarmError::from(error));
            }
            Ok(manager)
        }
        .await;
        let manager = match result {
            Ok(manager) => manager,
            Err(error) => {
                self.forget();
                return Err(error);
            }
        };
        *active = Some(self.activate(membership, Some(manager), &creds, &trust)?);
        info!(cluster = %cluster_id, "swarm initialised");
        Ok(self.facts.node_id.clone())
    }

    /// `docker swarm join`: asks a manager for a certificate with the token,
    /// pinning the manager's CA to the token's digest.
    pub async fn join(&self, request: &docker::SwarmJoinRequest) -> Result<(), SwarmError> {
        let mut active = self.active.lock().await;
        if active.is_some() {
            return Err(SwarmError::AlreadyInSwarm);
        }
        let token: JoinToken = request
            .join_token
            .parse()
            .map_err(|e| SwarmError::InvalidRequest(format!("invalid join token: {e}")))?;
        let remote = request
            .remote_addrs
            .first()
            .map(|a| with_port(a, MANAGER_PORT))
            .ok_or_else(|| {
                SwarmError::InvalidRequest("a manager address to join is required".into())
            })?;
        let Endpoints {
            listen_addr,
            manager_addr,
            advertise_ip,
        } = self.endpoints(&request.listen_addr, &request.advertise_addr)?;

        let key = NodeKeyPair::generate()?;
        let (answer, trust) = self
            .request_certificate(&remote, request, &token, &key, advertise_ip, &manager_addr)
            .await?;
        let creds = NodeCredentials {
            cert_pem: answer.cert_pem,
            key_pem: key.key_pem(),
        };
        let is_manager = answer.role == "manager";
        let mut managers = answer.manager_addrs;
        if managers.is_empty() {
            managers.push(remote.clone());
        }
        let membership = Membership {
            cluster_id: answer.cluster_id,
            role: answer.role,
            raft_id: answer.raft_id,
            listen_addr,
            manager_addr,
            managers: managers.clone(),
        };
        self.persist(&membership, &creds, trust.cert_pem())?;
        let manager = if is_manager {
            let started = async {
                let manager = self.start_manager(&membership, &creds, &trust).await?;
                if let Err(error) = manager.join_raft(&managers).await {
                    manager.shutdown().await;
                    return Err(SwarmError::from(error));
                }
                Ok(manager)
            }
            .await;
            match started {
                Ok(manager) => Some(manager),
                Err(error) => {
                    self.forget();
                    return Err(error);
                }
            }
        } else {
            None
        };
        info!(cluster = %membership.cluster_id, role = %membership.role, "joined the swarm");
        *active = Some(self.activate(membership, manager, &creds, &trust)?);
        Ok(())
    }

    /// Asks the manager at `remote` for a certificate, pinning its CA to the
    /// token's digest.
    async fn request_certificate(
        &self,
        remote: &str,
        request: &docker::SwarmJoinRequest,
        token: &JoinToken,
        key: &NodeKeyPair,
        advertise_ip: String,
        manager_addr: &str,
    ) -> Result<(JoinResponse, TrustRoot), SwarmError> {
        let (tls, observer) = ca::join_client_config(&token.ca_digest)?;
        let channel = channel(remote, tls, MANAGER_SERVER_NAME, Duration::from_secs(30))
            .map_err(|e| SwarmError::InvalidRequest(e.to_string()))?;
        let answer = CaClient::new(channel)
            .join(JoinRequest {
                token: request.join_token.clone(),
                csr_pem: key.csr_pem()?,
                node_id: self.facts.node_id.clone(),
                hostname: self.facts.hostname.clone(),
                advertise_addr: advertise_ip,
                manager_addr: manager_addr.to_owned(),
                os: std::env::consts::OS.to_owned(),
                architecture: std::env::consts::ARCH.to_owned(),
                engine_version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .await
            .map_err(|status| SwarmError::Join(format!("joining {remote}: {}", explain(&status))))?
            .into_inner();
        let trust = TrustRoot::from_pem(&answer.ca_cert_pem)?;
        if trust.digest() != token.ca_digest
            || observer
                .ca_cert_der()
                .is_none_or(|der| der != trust.cert_der())
        {
            return Err(SwarmError::Join(
                "the manager's CA does not match the join token".into(),
            ));
        }
        Ok((answer, trust))
    }

    /// Brings the node in line with what the managers want; the node daemon
    /// calls it periodically.
    ///
    /// - Promotion: once the leader has given the node a Raft ID, renew the
    ///   certificate as a manager, start the manager role, join Raft.
    /// - Demotion: once the leader has removed the node from Raft, renew the
    ///   certificate as a worker and stop the manager role.
    /// - Renewal: past half of the certificate's lifetime, renew it.
    pub async fn reconcile(&self) -> Result<(), SwarmError> {
        let mut active = self.active.lock().await;
        let Some(current) = active.as_ref() else {
            return Ok(());
        };
        let session = current.agent.session();
        let is_manager = current.manager.is_some();
        let wants_manager = match session.desired_role.as_str() {
            "manager" => session.raft_id != 0,
            "worker" => session.raft_id != 0 && is_manager,
            _ => is_manager,
        };
        let identity = &current.identity;
        let renewal_due = ca::renewal_due(
            identity.not_before_unix_ms,
            identity.not_after_unix_ms,
            ca::now_unix_ms(),
        );
        if wants_manager == is_manager && !renewal_due {
            return Ok(());
        }
        let key = NodeKeyPair::generate()?;
        let cert_pem = renew(&session.managers, &current.creds, &current.trust, &key).await?;
        let creds = NodeCredentials {
            cert_pem,
            key_pem: key.key_pem(),
        };
        if (creds.identity()?.role == ca::NodeRole::Manager) != wants_manager {
            // The manager that answered has not seen the role change yet.
            return Ok(());
        }
        let trust = current.trust.clone();
        let mut membership = current.membership.clone();
        membership.role = if wants_manager { "manager" } else { "worker" }.into();
        membership.raft_id = if wants_manager { session.raft_id } else { 0 };
        if !session.managers.is_empty() {
            membership.managers.clone_from(&session.managers);
        }
        if let Some(previous) = active.take() {
            stop(previous).await;
        }
        self.persist(&membership, &creds, trust.cert_pem())?;
        let manager = if wants_manager {
            match self.promote(&membership, &creds, &trust).await {
                Ok(manager) => Some(manager),
                Err(error) => {
                    warn!(%error, "starting the manager role failed; staying a worker for now");
                    membership.role = "worker".into();
                    self.persist(&membership, &creds, trust.cert_pem())?;
                    None
                }
            }
        } else {
            let dir = self.facts.dir.join("manager");
            if let Err(error) = std::fs::remove_dir_all(&dir)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                warn!(%error, dir = %dir.display(), "removing the former manager's Raft data");
            }
            None
        };
        info!(role = %membership.role, renewed = renewal_due, "node role reconciled");
        *active = Some(self.activate(membership, manager, &creds, &trust)?);
        Ok(())
    }

    /// Starts the manager role of a promoted node and joins Raft.
    async fn promote(
        &self,
        membership: &Membership,
        creds: &NodeCredentials,
        trust: &TrustRoot,
    ) -> Result<Manager, SwarmError> {
        let manager = self.start_manager(membership, creds, trust).await?;
        if let Err(error) = manager.join_raft(&membership.managers).await {
            manager.shutdown().await;
            return Err(error.into());
        }
        Ok(manager)
    }

    /// `docker swarm leave`. A manager needs `force` (as in Docker, leaving
    /// managers risk the quorum); the node forgets the swarm either way.
    pub async fn leave(&self, force: bool) -> Result<(), SwarmError> {
        let mut active = self.active.lock().await;
        let Some(current) = active.as_ref() else {
            return Err(SwarmError::NotInSwarm);
        };
        if let Some(manager) = &current.manager {
            self.leave_raft(manager, force).await?;
        }
        if let Some(current) = active.take() {
            stop(current).await;
        }
        self.facts.agent.remove_all_tasks().await;
        self.forget();
        info!("left the swarm");
        Ok(())
    }

    /// Refuses, as Docker does without `--force`, to remove the last manager
    /// or one whose departure loses quorum; otherwise gives up this node's
    /// Raft seat (it demotes itself and waits until the leader has removed
    /// it) so the remaining managers keep a majority of a smaller group.
    async fn leave_raft(&self, manager: &Manager, force: bool) -> Result<(), SwarmError> {
        let me = self.facts.node_id.clone();
        let (total, reachable, node) = manager
            .read(|s| {
                let members: Vec<_> = s.raft_members().collect();
                let reachable = members
                    .iter()
                    .filter(|n| {
                        n.id == me
                            || n.manager
                                .as_ref()
                                .is_some_and(|m| m.reachability == state::Reachability::Reachable)
                    })
                    .count();
                (members.len(), reachable, s.nodes.get(&me).cloned())
            })
            .await;
        if force {
            return Ok(());
        }
        if total <= 1 {
            return Err(SwarmError::LeaveRefused(
                "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message.".into(),
            ));
        }
        let unreachable = total - reachable;
        if reachable - 1 <= unreachable {
            return Err(SwarmError::LeaveRefused(format!(
                "You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves {} managers out of {total}. Without a Raft quorum your swarm will be inaccessible. The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message.",
                total - 1
            )));
        }
        let Some(mut node) = node else { return Ok(()) };
        // Demote ourselves. This manager may be a follower whose copy of the
        // node lags a system update (status, reachability): retry on a stale
        // version with the fresh copy.
        for attempt in 0..20 {
            let mut spec = node.spec.clone();
            spec.role = NodeRole::Worker;
            let update = Command::UpdateNodeSpec {
                id: node.id.clone(),
                expected_version: node.version,
                spec,
            };
            match manager.propose(update).await {
                Err(ManagerError::Rejected(state::Rejected::StaleVersion { .. }))
                    if attempt < 19 =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    match manager.read(|s| s.nodes.get(&node.id).cloned()).await {
                        Some(fresh) => node = fresh,
                        None => return Ok(()),
                    }
                }
                result => {
                    result?;
                    break;
                }
            }
        }
        for _ in 0..100 {
            if manager
                .read(|s| s.nodes.get(&node.id).is_none_or(|n| n.manager.is_none()))
                .await
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        warn!("the leader did not remove this manager from Raft in time; leaving anyway");
        Ok(())
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

/// A new certificate for `key` from the first manager that answers; the
/// managers certify the role the node has in the cluster state.
async fn renew(
    managers: &[String],
    creds: &NodeCredentials,
    trust: &TrustRoot,
    key: &NodeKeyPair,
) -> Result<String, SwarmError> {
    let tls = ca::client_config(creds, trust)?;
    let csr_pem = key.csr_pem()?;
    let mut last = String::from("no manager known");
    for addr in managers {
        let channel = channel(
            addr,
            Arc::clone(&tls),
            MANAGER_SERVER_NAME,
            Duration::from_secs(10),
        )
        .map_err(|e| SwarmError::InvalidRequest(e.to_string()))?;
        match CaClient::new(channel)
            .renew(RenewRequest {
                csr_pem: csr_pem.clone(),
            })
            .await
        {
            Ok(answer) => return Ok(answer.into_inner().cert_pem),
            Err(status) => last = format!("{addr}: {}", status.message()),
        }
    }
    Err(SwarmError::Join(format!(
        "renewing the node certificate: {last}"
    )))
}

/// The reason a join RPC failed: the PKI's own words when the manager's CA
/// did not match the token, else the status message.
fn explain(status: &tonic::Status) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(status);
    while let Some(error) = source {
        if let Some(ca_error) = ca::handshake_ca_error(error) {
            return ca_error.to_string();
        }
        source = error.source();
    }
    status.message().to_owned()
}

async fn stop(active: Active) {
    drop(active.agent);
    if let Some(manager) = active.manager {
        manager.shutdown().await;
    }
}
