//! `shoal`, the command-line client: argument parsing and dispatch, with
//! docker's flags, columns and messages.
//!
//! Module map (each module imports only from those listed below it):
//!
//! - [`commands`]: one module per verb (`status`, `swarm`, `node`, `image`,
//!   `network`, `service`); no verb imports another. `service` is a tree:
//!   one child per subcommand (`create`, `update`, `ls`, `ps`, `logs`,
//!   `inspect`, `scale`, `rm`) over its shared children (`flags`, `ports`,
//!   `networks`, `progress`).
//! - [`daemon`]: reads of the daemon more than one verb makes (swarm info,
//!   node names, a service, tasks).
//! - [`filters`]: `-f key=value` flags and the `filters` query parameter.
//! - [`flag_values`]: flag values several verbs take (labels, environment
//!   entries, command words).
//! - [`output`]: tables, short IDs, natural order, image names and
//!   `inspect`'s JSON, as docker prints them.
//! - [`docker_error`]: errors worded as docker's CLI words them.
//! - [`duration`], [`units`]: Go durations, CPU and memory sizes, ages.
//! - `test_support` (tests only): parsing a verb's flags as clap does.

mod commands;
mod daemon;
mod docker_error;
mod duration;
mod filters;
mod flag_values;
mod output;
#[cfg(test)]
mod test_support;
mod units;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use shoal_api::{Client, paths::DEFAULT_SOCKET};

/// Docker swarm mode, rebuilt around an eBPF data plane.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Daemon socket to connect to, `unix:///path` or a path.
    #[arg(short = 'H', long, env = "SHOAL_HOST", default_value = DEFAULT_SOCKET, global = true)]
    host: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show this node's identity, data-plane programs and counters.
    Status(commands::status::StatusArgs),
    /// Manage the swarm.
    #[command(subcommand)]
    Swarm(commands::swarm::SwarmCommand),
    /// Manage swarm nodes.
    #[command(subcommand)]
    Node(commands::node::NodeCommand),
    /// Manage this node's images.
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Manage swarm services.
    #[command(subcommand)]
    Service(commands::service::ServiceCommand),
    /// Manage swarm networks.
    #[command(subcommand)]
    Network(commands::network::NetworkCommand),
}

/// Accepts `unix:///path` (as `docker -H` does) or a bare path.
fn socket_path(host: &str) -> Result<PathBuf> {
    if let Some(path) = host.strip_prefix("unix://") {
        return Ok(PathBuf::from(path));
    }
    if host.contains("://") {
        bail!("unsupported host {host:?}: shoald listens on a unix socket (unix:///path)");
    }
    Ok(PathBuf::from(host))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = (|| -> Result<()> {
        let client = Client::new(socket_path(&cli.host)?);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            match cli.command {
                Command::Status(args) => commands::status::run(&client, &args).await,
                Command::Swarm(command) => commands::swarm::run(&client, command).await,
                Command::Node(command) => commands::node::run(&client, command).await,
                Command::Image(command) => commands::image::run(&client, command).await,
                Command::Service(command) => commands::service::run(&client, command).await,
                Command::Network(command) => commands::network::run(&client, command).await,
            }
        })
    })();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // Docker-worded errors print as docker prints them.
            match error.downcast_ref::<docker_error::DockerError>() {
                Some(docker) => eprintln!("{docker}"),
                None => eprintln!("Error: {error:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_forms() {
        assert_eq!(
            socket_path("unix:///run/x.sock").ok(),
            Some(PathBuf::from("/run/x.sock"))
        );
        assert_eq!(
            socket_path("/run/x.sock").ok(),
            Some(PathBuf::from("/run/x.sock"))
        );
        assert!(socket_path("tcp://127.0.0.1:2375").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
