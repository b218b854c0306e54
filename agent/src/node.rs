//! The node agent as one owner ([`Agent`]): everything a node does locally,
//! started once per `shoald` and kept across swarm membership changes.
//!
//! [`Agent::start`] checks the node's prerequisites ([`crate::prerequisites`]),
//! brings up the data plane ([`crate::dataplane`]: programs, links and maps,
//! pinned), the overlay with its routing mesh ([`crate::overlay`], which
//! writes the overlay maps, and its [`crate::overlay::mesh`], which writes the mesh
//! maps), the tasks' DNS ([`crate::dns`]) and the one image store
//! ([`crate::images`]) that the executor and the API share.
//! [`Agent::join`] attaches it to a swarm with the node's mutual-TLS
//! credentials: the session with the managers ([`crate::session`]), the
//! assignment follower and status reports ([`crate::assignments`]), the
//! overlay and DNS sync from the desired state ([`crate::desired`]), and the
//! executor ([`crate::executor`]); dropping the returned [`Attachment`]
//! detaches it, and the containers keep running for the next one to adopt.

use std::{
    net::Ipv4Addr,
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
};

use shoal_api::{grpc::VXLAN_PORT, status::DataplaneStatus};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tracing::{error, warn};

use crate::{
    assignments,
    dataplane::{self, Dataplane, DataplaneConfig, DataplaneError, MeshHook, XdpAttachMode},
    desired::Directory,
    dns::{self, Dns},
    executor::{self, ExecutorConfig},
    images::ImageStore,
    overlay::{
        self, Overlay, OverlayError,
        mesh::{MeshSettings, RoutingMesh},
    },
    prerequisites::{self, PrerequisiteError},
    session::{self, SessionConfig, SessionState},
    task_network::{self, TaskNetworkError},
};

/// Bytes VXLAN adds to a frame over IPv4 (outer IP, UDP, VXLAN and inner
/// Ethernet headers): overlay interfaces get the underlay MTU minus this.
const VXLAN_OVERHEAD: u32 = 50;

/// Whether XDP tunnels packets for backends on other nodes itself
/// (`--mesh-xdp-tunnel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpTunnel {
    /// Yes, unless the underlay is a veth: the kernel wakes a veth peer for
    /// `XDP_TX` frames only when the peer runs an XDP program itself.
    Auto,
    /// Always.
    On,
    /// Never: tc tunnels them.
    Off,
}

/// What the agent needs to know about the node and how to run it.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The node's ID (names its pins and cgroups).
    pub node_id: String,
    /// The node's hostname, reported to the managers.
    pub hostname: String,
    /// The node's underlay address: published ports answer on it, other
    /// nodes reach it there.
    pub advertise_addr: Ipv4Addr,
    /// The node's data directory.
    pub data_dir: PathBuf,
    /// Mount point of bpffs.
    pub bpffs: PathBuf,
    /// The interface carrying node-to-node traffic.
    pub underlay_iface: String,
    /// How XDP attaches to it.
    pub xdp_mode: XdpAttachMode,
    /// Which hook runs the routing mesh.
    pub mesh_hook: MeshHook,
    /// Whether XDP tunnels to other nodes itself.
    pub mesh_xdp_tunnel: XdpTunnel,
    /// Registries pulled from over plain HTTP (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// TTL of the task resolvers' answers for swarm names, in seconds.
    pub dns_ttl: u32,
    /// The executable re-run as the task shim (`shoald`).
    pub shim_program: PathBuf,
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The node lacks something shoald needs.
    #[error(transparent)]
    Prerequisite(#[from] PrerequisiteError),
    /// The data plane could not be loaded or attached.
    #[error("starting the data plane: {0}")]
    Dataplane(#[from] DataplaneError),
    /// The underlay interface could not be read.
    #[error("reading the underlay's MTU: {0}")]
    Underlay(#[from] TaskNetworkError),
    /// The overlay (VXLAN device, its programs, the mesh) could not be wired.
    #[error("wiring the overlay (VXLAN device and programs): {0}")]
    Overlay(#[from] OverlayError),
}

/// The node agent: the one owner of the node's data plane, overlay, DNS,
/// images and task executor.
#[derive(Debug)]
pub struct Agent {
    config: AgentConfig,
    /// `None` once shut down.
    dataplane: Mutex<Option<Dataplane>>,
    /// Where and how tasks run (the image store, overlay and DNS shared).
    executor: ExecutorConfig,
    log_forwarder: Option<JoinHandle<()>>,
}

impl Agent {
    /// Checks the prerequisites and brings up the data plane, the overlay
    /// and the routing mesh (reusing what a previous run pinned).
    pub async fn start(config: AgentConfig) -> Result<Self, AgentError> {
        prerequisites::check(&config.bpffs)?;
        let underlay = task_network::link_facts(&config.underlay_iface).await?;
        let dataplane_config = DataplaneConfig {
            node_id: config.node_id.clone(),
            bpffs: config.bpffs.clone(),
            underlay_iface: config.underlay_iface.clone(),
            xdp_mode: match config.xdp_mode {
                // A veth running native XDP takes its peer's packets, GSO
                // bursts included, through one NAPI ring that overflows
                // under a bulk transfer (its peer counts the drops), and
                // copies each packet into a page first; generic XDP runs
                // on the skb as the stack has it.
                XdpAttachMode::Auto if underlay.is_veth => XdpAttachMode::Generic,
                mode => mode,
            },
            record_file: config.data_dir.join("dataplane.json"),
        };
        let pin_dir = dataplane_config.pin_dir();
        let mut dataplane = Dataplane::start(dataplane_config)?;
        let mesh = MeshSettings {
            node_ip: config.advertise_addr,
            underlay_iface: config.underlay_iface.clone(),
            hook: config.mesh_hook,
            xdp_tunnel: match config.mesh_xdp_tunnel {
                XdpTunnel::Auto => !underlay.is_veth,
                XdpTunnel::On => true,
                XdpTunnel::Off => false,
            },
        };
        let overlay =
            Overlay::start(&pin_dir, &config.node_id, VXLAN_PORT, underlay.mtu, &mesh).await?;
        let log_forwarder = dataplane.take_logs().map(|logs| {
            tokio::spawn(async move {
                if let Err(error) = dataplane::forward_ebpf_logs(logs).await {
                    error!(%error, "eBPF log forwarding stopped");
                }
            })
        });
        let executor = ExecutorConfig {
            data_dir: config.data_dir.clone(),
            node_id: config.node_id.clone(),
            images: ImageStore::new(config.data_dir.join("images")),
            shim_program: config.shim_program.clone(),
            insecure_registries: config.insecure_registries.clone(),
            overlay_mtu: underlay.mtu.saturating_sub(VXLAN_OVERHEAD),
            overlay: Arc::new(overlay),
            dns: Arc::new(Dns::new(config.dns_ttl, dns::node_upstreams())),
        };
        Ok(Self {
            config,
            dataplane: Mutex::new(Some(dataplane)),
            executor,
            log_forwarder,
        })
    }

    /// What the agent was started with: the node's ID, hostname, address,
    /// underlay and registries.
    #[must_use]
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The node's image store (the executor's too: one lock for both).
    #[must_use]
    pub fn images(&self) -> &ImageStore {
        &self.executor.images
    }

    /// The node's routing mesh (its counters, for status and inspect).
    #[must_use]
    pub fn mesh(&self) -> &RoutingMesh {
        self.executor.overlay.mesh()
    }

    /// The data plane's programs and counters; `None` once shut down.
    pub fn dataplane_status(&self) -> Option<Result<DataplaneStatus, DataplaneError>> {
        self.dataplane
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(Dataplane::status)
    }

    /// Attaches the agent to a swarm: heartbeats to `managers` (leader
    /// first) and follows this node's assignments with `tls`, the node's
    /// mutual-TLS client configuration, until the [`Attachment`] is
    /// dropped.
    #[must_use]
    pub fn join(&self, tls: Arc<rustls::ClientConfig>, managers: Vec<String>) -> Attachment {
        let (state_tx, session_state) = watch::channel(SessionState::default());
        let (stop, stop_rx) = watch::channel(false);
        let session = SessionConfig {
            managers,
            tls: Arc::clone(&tls),
            hostname: self.config.hostname.clone(),
            addr: self.config.advertise_addr.to_string(),
            resources: session::node_resources(),
        };
        let (assignments_tx, assignments_rx) = watch::channel(None);
        let (directory_tx, directory_rx) = watch::channel(Directory::default());
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let loops = vec![
            tokio::spawn(session::run(session, state_tx, stop_rx.clone())),
            tokio::spawn(assignments::follow(
                Arc::clone(&tls),
                session_state.clone(),
                assignments_tx,
                directory_tx,
                stop_rx.clone(),
            )),
            tokio::spawn(overlay::run_endpoint_sync(
                Arc::clone(&self.executor.overlay),
                directory_rx.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(Arc::clone(&self.executor.dns).follow(directory_rx, stop_rx.clone())),
            tokio::spawn(assignments::report(
                Arc::clone(&tls),
                session_state.clone(),
                reports_rx,
            )),
            tokio::spawn(assignments::serve_logs(
                tls,
                session_state.clone(),
                self.executor.tasks_dir(),
                stop_rx.clone(),
            )),
            tokio::spawn(executor::run(
                self.executor.clone(),
                assignments_rx,
                reports_tx,
                stop_rx,
            )),
        ];
        Attachment {
            session_state,
            stop,
            loops,
        }
    }

    /// Removes every container, task directory and cgroup of the node
    /// (it left the swarm).
    pub async fn remove_all_tasks(&self) {
        executor::remove_all(&self.executor).await;
    }

    /// Stops the data plane: with `keep_pins` the programs stay attached
    /// for the next start; otherwise they are detached and the pins
    /// removed. Later calls do nothing.
    pub fn shutdown(&self, keep_pins: bool) -> Result<(), DataplaneError> {
        if let Some(task) = &self.log_forwarder {
            task.abort();
        }
        let dataplane = self
            .dataplane
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(dataplane) = dataplane {
            dataplane.shutdown(keep_pins)
        } else {
            warn!("the data plane was already stopped");
            Ok(())
        }
    }
}

/// The agent attached to a swarm ([`Agent::join`]): its session and task
/// loops, which stop when this is dropped.
#[derive(Debug)]
pub struct Attachment {
    session_state: watch::Receiver<SessionState>,
    stop: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
}

impl Attachment {
    /// What the session last learned from the managers.
    #[must_use]
    pub fn session(&self) -> SessionState {
        self.session_state.borrow().clone()
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task_loop in &self.loops {
            task_loop.abort();
        }
    }
}
