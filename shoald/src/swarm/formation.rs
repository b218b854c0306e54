//! `docker swarm init` and `docker swarm join`: where the node listens and
//! is reached, the cluster's first state and CA, and a join that pins the
//! manager's CA to the token's digest. Each completes or leaves the node
//! as it was.

use std::{net::SocketAddr, time::Duration};

use shoal_api::{
    docker,
    grpc::{
        MANAGER_PORT, MANAGER_SERVER_NAME, channel,
        proto::{JoinRequest, JoinResponse, ca_client::CaClient},
    },
    id::ObjectId,
};
use shoal_manager::{
    ca::{self, JoinToken, NodeCredentials, NodeKeyPair, RootCa, TrustRoot},
    docker_view,
    state::{self, Availability, Command, NewNode, NodeRole, Platform, RootCaRecord},
};
use tracing::info;

use super::{Membership, Swarm, SwarmError};

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

/// `host:port`, adding `default_port` when `addr` has none.
fn with_port(addr: &str, default_port: u16) -> String {
    if addr.parse::<SocketAddr>().is_ok() || (addr.contains(':') && !addr.contains("::")) {
        addr.to_owned()
    } else {
        format!("{addr}:{default_port}")
    }
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

impl Swarm {
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
}
