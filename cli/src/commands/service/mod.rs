//! `shoal service …`: create, update, ls, ps, logs, inspect, scale, rm,
//! with the flags, columns, messages and convergence progress of `docker
//! service …`. This module holds the verbs' arguments and dispatch; each
//! verb lives in its own child module, over these shared ones:
//!
//! - [`flags`]: the flags `create` and `update` share ([`flags::ServiceFlags`])
//!   and their value parsers;
//! - [`ports`] and [`networks`]: the `--publish` and `--network` syntaxes
//!   and their edits;
//! - [`progress`]: the convergence progress after `create`, `update` and
//!   `scale`.
//!
//! The pure parts live apart from the requests so they can be tested: the
//! flags → `ServiceSpec` translation ([`create::CreateArgs::spec`],
//! [`update::UpdateArgs::edit`]), the `ls` and `ps` tables and the
//! `inspect --pretty` text.

mod create;
mod flags;
mod inspect;
mod logs;
mod ls;
mod networks;
mod ports;
mod progress;
mod ps;
mod rm;
mod scale;
mod update;

use anyhow::Result;
use clap::Subcommand;
use shoal_api::Client;

/// `shoal service` verbs.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create a new service.
    #[command(override_usage = "shoal service create [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    Create(Box<create::CreateArgs>),
    /// Update a service.
    #[command(override_usage = "shoal service update [OPTIONS] SERVICE")]
    Update(Box<update::UpdateArgs>),
    /// List services.
    #[command(alias = "list")]
    Ls {
        /// Only display IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Filter output based on conditions provided (`key=value`: id,
        /// name, label, mode).
        #[arg(short, long)]
        filter: Vec<String>,
    },
    /// List the tasks of one or more services.
    Ps(ps::PsArgs),
    /// Fetch the logs of a service or task.
    Logs(logs::LogsArgs),
    /// Display detailed information on one or more services.
    Inspect {
        /// Print the information in a human friendly format.
        #[arg(long)]
        pretty: bool,
        /// Services (ID, ID prefix or name).
        #[arg(required = true)]
        services: Vec<String>,
    },
    /// Scale one or multiple replicated services.
    #[command(override_usage = "shoal service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]")]
    Scale {
        /// Exit immediately instead of waiting for the service to converge.
        #[arg(short, long)]
        detach: bool,
        /// `SERVICE=REPLICAS` pairs.
        #[arg(required = true, value_name = "SERVICE=REPLICAS")]
        scales: Vec<String>,
    },
    /// Remove one or more services.
    #[command(alias = "remove")]
    Rm {
        /// Services (ID, ID prefix or name).
        #[arg(required = true)]
        services: Vec<String>,
    },
}

/// Runs a `shoal service` verb.
pub async fn run(client: &Client, command: ServiceCommand) -> Result<()> {
    match command {
        ServiceCommand::Create(args) => create::create(client, &args).await?,
        ServiceCommand::Update(args) => update::update(client, &args).await?,
        ServiceCommand::Ls { quiet, filter } => ls::ls(client, quiet, &filter).await?,
        ServiceCommand::Ps(args) => ps::ps(client, &args).await?,
        ServiceCommand::Logs(args) => logs::logs(client, &args).await?,
        ServiceCommand::Inspect { pretty, services } => {
            inspect::inspect(client, pretty, &services).await?;
        }
        ServiceCommand::Scale { detach, scales } => scale::scale(client, detach, &scales).await?,
        ServiceCommand::Rm { services } => rm::rm(client, &services).await?,
    }
    Ok(())
}
