//! `shoal swarm …`: init, join, join-token, leave, inspect, update, with
//! docker's flags and messages.

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use shoal_api::{Client, docker};

use crate::{daemon::swarm_info, duration::parse_go_duration};

/// `shoal swarm` verbs.
#[derive(Debug, Subcommand)]
pub enum SwarmCommand {
    /// Initialize a swarm with this node as its first manager.
    Init(InitArgs),
    /// Join a swarm as a worker or a manager.
    Join(JoinArgs),
    /// Manage join tokens.
    JoinToken(JoinTokenArgs),
    /// Leave the swarm.
    Leave {
        /// Leave even as a manager.
        #[arg(short, long)]
        force: bool,
    },
    /// Display the swarm as JSON.
    Inspect,
    /// Update the swarm's settings.
    Update(UpdateArgs),
}

/// `shoal swarm init` flags.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Advertised address (format: `<ip|interface>[:port]`).
    #[arg(long)]
    advertise_addr: Option<String>,
    /// Listen address (format: `<ip|interface>[:port]`).
    #[arg(long, default_value = "0.0.0.0:2377")]
    listen_addr: String,
    /// Dispatcher heartbeat period (ns|us|ms|s|m|h).
    #[arg(long, default_value = "5s", value_parser = parse_go_duration)]
    dispatcher_heartbeat: u64,
    /// Validity period for node certificates (ns|us|ms|s|m|h).
    #[arg(long, default_value = "2160h0m0s", value_parser = parse_go_duration)]
    cert_expiry: u64,
    /// Default address pool in CIDR format (repeatable).
    #[arg(long)]
    default_addr_pool: Vec<String>,
    /// Default address pool subnet mask length.
    #[arg(long, default_value_t = 24)]
    default_addr_pool_mask_length: u32,
    /// Port number used for data path traffic (1024 - 49151).
    #[arg(long, default_value_t = 4789)]
    data_path_port: u32,
    /// Range published ports without a number are taken from
    /// (`START-END`; default 30000-32767, as Docker). Fixed once the
    /// swarm exists.
    #[arg(long, value_parser = parse_port_range, value_name = "START-END")]
    published_port_range: Option<String>,
}

/// `START-END`, `1 <= START <= END <= 65535`; returned as given.
fn parse_port_range(text: &str) -> Result<String, String> {
    let bad = || format!("invalid port range {text:?}: expected START-END, 1-65535");
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let start: u16 = start.parse().map_err(|_| bad())?;
    let end: u16 = end.parse().map_err(|_| bad())?;
    if start == 0 || end < start {
        return Err(bad());
    }
    Ok(format!("{start}-{end}"))
}

/// `shoal swarm join` flags.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Token for entry into the swarm.
    #[arg(long)]
    token: String,
    /// Advertised address (format: `<ip|interface>[:port]`).
    #[arg(long)]
    advertise_addr: Option<String>,
    /// Listen address (format: `<ip|interface>[:port]`).
    #[arg(long, default_value = "0.0.0.0:2377")]
    listen_addr: String,
    /// A manager of the swarm, `HOST:PORT`.
    remote: String,
}

/// Which token.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Role {
    /// The worker token.
    Worker,
    /// The manager token.
    Manager,
}

/// `shoal swarm join-token` flags.
#[derive(Debug, Args)]
pub struct JoinTokenArgs {
    /// Only display the token.
    #[arg(short, long)]
    quiet: bool,
    /// Rotate the join token.
    #[arg(long)]
    rotate: bool,
    /// `worker` or `manager`.
    role: Role,
}

/// `shoal swarm update` flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Dispatcher heartbeat period (ns|us|ms|s|m|h).
    #[arg(long, value_parser = parse_go_duration)]
    dispatcher_heartbeat: Option<u64>,
    /// Validity period for node certificates (ns|us|ms|s|m|h).
    #[arg(long, value_parser = parse_go_duration)]
    cert_expiry: Option<u64>,
    /// Task history retention limit.
    #[arg(long)]
    task_history_limit: Option<i64>,
}

/// Runs a `shoal swarm` verb.
pub async fn run(client: &Client, command: SwarmCommand) -> Result<()> {
    match command {
        SwarmCommand::Init(args) => init(client, args).await,
        SwarmCommand::Join(args) => join(client, args).await,
        SwarmCommand::JoinToken(args) => join_token(client, &args).await,
        SwarmCommand::Leave { force } => {
            client
                .post(&format!("/swarm/leave?force={force}"), &())
                .await?;
            println!("Node left the swarm.");
            Ok(())
        }
        SwarmCommand::Inspect => {
            let swarm: serde_json::Value = client.get_json("/swarm").await?;
            println!("{}", serde_json::to_string_pretty(&[swarm])?);
            Ok(())
        }
        SwarmCommand::Update(args) => update(client, args).await,
    }
}

async fn init(client: &Client, args: InitArgs) -> Result<()> {
    let request = docker::SwarmInitRequest {
        listen_addr: args.listen_addr,
        advertise_addr: args.advertise_addr.unwrap_or_default(),
        data_path_port: args.data_path_port,
        default_addr_pool: args.default_addr_pool,
        subnet_size: args.default_addr_pool_mask_length,
        spec: docker::SwarmSpec {
            dispatcher: Some(docker::Dispatcher {
                heartbeat_period: Some(args.dispatcher_heartbeat),
            }),
            ca_config: Some(docker::CaConfig {
                node_cert_expiry: Some(args.cert_expiry),
                ..docker::CaConfig::default()
            }),
            published_port_range: args.published_port_range,
            ..docker::SwarmSpec::default()
        },
        ..docker::SwarmInitRequest::default()
    };
    let node_id: String = client.post_json("/swarm/init", &request).await?;
    println!("Swarm initialized: current node ({node_id}) is now a manager.\n");
    print_join_command(client, Role::Worker).await?;
    println!(
        "To add a manager to this swarm, run 'shoal swarm join-token manager' and follow the instructions.\n"
    );
    Ok(())
}

async fn join(client: &Client, args: JoinArgs) -> Result<()> {
    let request = docker::SwarmJoinRequest {
        listen_addr: args.listen_addr,
        advertise_addr: args.advertise_addr.unwrap_or_default(),
        remote_addrs: vec![args.remote],
        join_token: args.token,
        ..docker::SwarmJoinRequest::default()
    };
    client.post("/swarm/join", &request).await?;
    let info = swarm_info(client).await?;
    let role = if info.control_available {
        "manager"
    } else {
        "worker"
    };
    println!("This node joined a swarm as a {role}.");
    Ok(())
}

async fn print_join_command(client: &Client, role: Role) -> Result<()> {
    let swarm: docker::Swarm = client.get_json("/swarm").await?;
    let info = swarm_info(client).await?;
    let addr = info
        .remote_managers
        .unwrap_or_default()
        .into_iter()
        .find(|m| m.node_id == info.node_id)
        .map(|m| m.addr)
        .unwrap_or_default();
    let (name, token) = match role {
        Role::Worker => ("worker", swarm.join_tokens.worker),
        Role::Manager => ("manager", swarm.join_tokens.manager),
    };
    println!(
        "To add a {name} to this swarm, run the following command:\n\n    shoal swarm join --token {token} {addr}\n"
    );
    Ok(())
}

async fn join_token(client: &Client, args: &JoinTokenArgs) -> Result<()> {
    if args.rotate {
        let swarm: docker::Swarm = client.get_json("/swarm").await?;
        let which = match args.role {
            Role::Worker => "rotateWorkerToken=true",
            Role::Manager => "rotateManagerToken=true",
        };
        client
            .post(
                &format!("/swarm/update?version={}&{which}", swarm.version.index),
                &swarm.spec,
            )
            .await?;
        if !args.quiet {
            let name = if matches!(args.role, Role::Worker) {
                "worker"
            } else {
                "manager"
            };
            println!("Successfully rotated {name} join token.\n");
        }
    }
    if args.quiet {
        let swarm: docker::Swarm = client.get_json("/swarm").await?;
        let token = match args.role {
            Role::Worker => swarm.join_tokens.worker,
            Role::Manager => swarm.join_tokens.manager,
        };
        println!("{token}");
        return Ok(());
    }
    print_join_command(client, args.role).await
}

async fn update(client: &Client, args: UpdateArgs) -> Result<()> {
    let swarm: docker::Swarm = client.get_json("/swarm").await?;
    let mut spec = swarm.spec;
    if args.dispatcher_heartbeat.is_none()
        && args.cert_expiry.is_none()
        && args.task_history_limit.is_none()
    {
        bail!(
            "nothing to update: pass --dispatcher-heartbeat, --cert-expiry or --task-history-limit"
        );
    }
    if let Some(ns) = args.dispatcher_heartbeat {
        spec.dispatcher = Some(docker::Dispatcher {
            heartbeat_period: Some(ns),
        });
    }
    if let Some(ns) = args.cert_expiry {
        let mut ca = spec.ca_config.unwrap_or_default();
        ca.node_cert_expiry = Some(ns);
        spec.ca_config = Some(ca);
    }
    if let Some(limit) = args.task_history_limit {
        spec.orchestration = Some(docker::Orchestration {
            task_history_retention_limit: Some(limit),
        });
    }
    client
        .post(
            &format!("/swarm/update?version={}", swarm.version.index),
            &spec,
        )
        .await?;
    println!("Swarm updated.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_port_ranges() {
        assert_eq!(parse_port_range("30000-32767"), Ok("30000-32767".into()));
        assert_eq!(parse_port_range("8000-8000"), Ok("8000-8000".into()));
        for bad in ["8000", "0-10", "9000-8000", "1-65536", "a-b"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
    }
}
