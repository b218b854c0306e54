//! `shoald`, the shoal node daemon: flags and wiring only.
//!
//! It starts the node's agent (`shoal_agent::node::Agent`: data plane,
//! overlay, routing mesh, DNS, images, executor), resumes its swarm
//! membership ([`swarm`]: the manager role, and the agent attached to the
//! managers), serves the node's API on a unix socket ([`server`]), and on
//! SIGTERM or SIGINT stops serving and detaches the data plane (unless
//! `--keep-pins`).
//!
//! Module map, top down (each imports only modules below it):
//!
//! | layer | modules |
//! | --- | --- |
//! | HTTP server | [`server`]: the socket, `/_ping`, shoal's `/shoal/v1/status`, the `/v1.NN` prefix |
//! | Docker Engine API | [`docker`]: one module per resource (swarm, nodes, services and tasks, networks, images) |
//! | API edge | [`node_state`] (what handlers share), [`query`] (Docker's query parameters), [`errors`] (Docker's error bodies and wire text) |
//! | roles | [`swarm`]: membership, credentials, init/join/leave, promotion and demotion |
//! | leaves | [`identity`]: the node's ID, hostname and first address |

mod docker;
mod errors;
mod identity;
mod node_state;
mod query;
mod server;
mod swarm;

use std::{net::IpAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use shoal_agent::{
    dataplane::{MeshHook, XdpAttachMode},
    executor::runc,
    node::{Agent, AgentConfig, XdpTunnel},
};
use shoal_api::paths::DEFAULT_SOCKET;
use shoal_manager::runtime::RaftTiming;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info};

/// The shoal node daemon.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Directory holding this node's state (node ID, data-plane record).
    #[arg(long, default_value = "/var/lib/shoal")]
    data_dir: PathBuf,
    /// Unix socket serving the node's API (Docker Engine API subset).
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Address other nodes reach this node at [default: the underlay
    /// interface's first IPv4 address].
    #[arg(long)]
    advertise_addr: Option<IpAddr>,
    /// Interface carrying node-to-node traffic; the XDP program attaches here.
    #[arg(long, default_value = "eth0")]
    underlay_iface: String,
    /// XDP attach mode. `auto`: native, falling back to generic, on a NIC;
    /// generic on a veth, whose native XDP drops bulk traffic (its
    /// one-ring receive path overflows) and copies every packet.
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
    xdp_mode: XdpModeArg,
    /// Which hook runs the routing mesh (published ports) on the underlay
    /// interface: XDP balances and rewrites before the stack sees the
    /// packet; tc does all of it, for interfaces where XDP is a poor fit.
    #[arg(long, value_enum, default_value_t = MeshHookArg::Xdp)]
    mesh_hook: MeshHookArg,
    /// With the XDP hook, whether XDP also tunnels packets for backends on
    /// other nodes (`XDP_TX`, VXLAN built in place; turns forwarding on for
    /// the underlay interface, which the kernel's FIB lookup needs) instead
    /// of handing them to tc. `auto`: yes, unless the underlay is a veth:
    /// the kernel wakes a veth peer for `XDP_TX` frames only when the peer
    /// runs an XDP program itself, so on a veth use `on` with generic XDP
    /// (`--xdp-mode generic`) or an XDP program on the peer.
    #[arg(long, value_enum, default_value_t = XdpTunnelArg::Auto)]
    mesh_xdp_tunnel: XdpTunnelArg,
    /// Mount point of bpffs (mounted if it is not).
    #[arg(long, default_value = "/sys/fs/bpf")]
    bpffs: PathBuf,
    /// On shutdown, leave the programs attached and pinned, so the next
    /// shoald picks them up without a gap (upgrades, restarts).
    #[arg(long)]
    keep_pins: bool,
    /// Raft election timeout of the manager role (the longest is twice it).
    #[arg(long, default_value_t = 300)]
    raft_election_timeout_ms: u64,
    /// Raft heartbeat of the manager role's leader.
    #[arg(long, default_value_t = 100)]
    raft_heartbeat_ms: u64,
    /// A registry (`host[:port]`) to pull from over plain HTTP instead of
    /// HTTPS, like dockerd's `--insecure-registry`; repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registries: Vec<String>,
    /// TTL, in seconds, of the task resolvers' answers for swarm names.
    /// Docker's is a fixed 600; short, because tasks come and go (a scale,
    /// a rolling update, a failed node) and a client that caches an answer
    /// should follow within seconds, while a query costs only a lookup in
    /// the agent's memory over the task's loopback.
    #[arg(long, default_value_t = 10)]
    dns_ttl: u32,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info,shoal_agent=debug`.
    #[arg(long, env = "SHOAL_LOG", default_value = "info")]
    log: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum XdpModeArg {
    Auto,
    Native,
    Generic,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MeshHookArg {
    Xdp,
    Tc,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum XdpTunnelArg {
    Auto,
    On,
    Off,
}

impl From<MeshHookArg> for MeshHook {
    fn from(hook: MeshHookArg) -> Self {
        match hook {
            MeshHookArg::Xdp => Self::Xdp,
            MeshHookArg::Tc => Self::Tc,
        }
    }
}

impl From<XdpModeArg> for XdpAttachMode {
    fn from(mode: XdpModeArg) -> Self {
        match mode {
            XdpModeArg::Auto => Self::Auto,
            XdpModeArg::Native => Self::Native,
            XdpModeArg::Generic => Self::Generic,
        }
    }
}

impl From<XdpTunnelArg> for XdpTunnel {
    fn from(tunnel: XdpTunnelArg) -> Self {
        match tunnel {
            XdpTunnelArg::Auto => Self::Auto,
            XdpTunnelArg::On => Self::On,
            XdpTunnelArg::Off => Self::Off,
        }
    }
}

/// `shoald task-shim …`: the process that starts one task's container and
/// outlives the daemon (see `shoal_agent::executor::runc`). Not for people.
#[derive(Debug, Parser)]
#[command(name = "shoald task-shim")]
struct TaskShimArgs {
    #[arg(long)]
    runc_root: PathBuf,
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long)]
    id: String,
    #[arg(long)]
    log: PathBuf,
    #[arg(long)]
    exit_file: PathBuf,
}

fn main() -> Result<()> {
    if std::env::args_os().nth(1).is_some_and(|a| a == "task-shim") {
        let shim = TaskShimArgs::parse_from(std::env::args_os().skip(1));
        std::process::exit(runc::run_shim(&runc::ShimArgs {
            runc_root: shim.runc_root,
            bundle: shim.bundle,
            id: shim.id,
            log: shim.log,
            exit_file: shim.exit_file,
        }));
    }
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&args.log)
                .with_context(|| format!("invalid --log filter {:?}", args.log))?,
        )
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating data dir {}", args.data_dir.display()))?;
    let node_id = identity::load_or_create_node_id(&args.data_dir)?;
    let hostname = identity::hostname()?;
    let advertise_addr = match args.advertise_addr {
        Some(addr) => addr,
        None => identity::first_ipv4(&args.underlay_iface)?,
    };
    info!(%node_id, %hostname, %advertise_addr, iface = %args.underlay_iface, "starting shoald");

    let IpAddr::V4(underlay_ip) = advertise_addr else {
        anyhow::bail!("the advertise address {advertise_addr} is not IPv4: the data plane is IPv4");
    };
    let agent = Agent::start(AgentConfig {
        node_id: node_id.to_string(),
        hostname: hostname.clone(),
        advertise_addr: underlay_ip,
        data_dir: args.data_dir.clone(),
        bpffs: args.bpffs.clone(),
        underlay_iface: args.underlay_iface.clone(),
        xdp_mode: args.xdp_mode.into(),
        mesh_hook: args.mesh_hook.into(),
        mesh_xdp_tunnel: args.mesh_xdp_tunnel.into(),
        insecure_registries: args.insecure_registries.clone(),
        dns_ttl: args.dns_ttl,
        shim_program: std::env::current_exe().context("locating shoald's executable")?,
    })
    .await
    .context("starting the node agent")?;
    let agent = Arc::new(agent);

    let swarm = swarm::Swarm::open(swarm::NodeFacts {
        node_id: node_id.to_string(),
        hostname: hostname.clone(),
        advertise_ip: advertise_addr,
        dir: args.data_dir.join("swarm"),
        timing: RaftTiming {
            heartbeat: Duration::from_millis(args.raft_heartbeat_ms),
            election_timeout: Duration::from_millis(args.raft_election_timeout_ms),
        },
        agent: Arc::clone(&agent),
    })
    .await
    .context("resuming swarm membership")?;
    let swarm = Arc::new(swarm);
    let reconciler = tokio::spawn({
        let swarm = Arc::clone(&swarm);
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let Err(error) = swarm.reconcile().await {
                    error!(%error, "reconciling the node's role and certificate");
                }
            }
        }
    });
    let state = Arc::new(node_state::NodeState::new(agent, swarm));
    let listener = server::bind(&args.socket)?;
    info!(socket = %args.socket.display(), "serving the node API");
    let served = server::serve(listener, Arc::clone(&state), shutdown_signal()?).await;

    if let Err(error) = std::fs::remove_file(&args.socket) {
        error!(%error, socket = %args.socket.display(), "removing the socket");
    }
    reconciler.abort();
    state.swarm().shutdown().await;
    state
        .agent()
        .shutdown(args.keep_pins)
        .context("stopping the data plane")?;
    served.context("serving the node API")?;
    info!("shoald stopped");
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT.
fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: shutting down"),
            _ = int.recv() => info!("SIGINT: shutting down"),
        }
    })
}
