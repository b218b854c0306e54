//! `shoal service …`: create, ls, ps, inspect, scale, rm (and update, in
//! [`super::service_update`]), with the flags, columns, messages and
//! convergence progress of `docker service …`.
//!
//! The pure parts live apart from the requests so they can be tested: the
//! flags → [`ServiceSpec`] translation ([`CreateArgs::spec`], with the
//! flags `update` shares in [`ServiceFlags::apply`]), the `ls`
//! and `ps` tables ([`ls_table`], [`ps_rows`]) and the `inspect --pretty`
//! text ([`pretty`]).

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    time::Duration,
};

use anyhow::Result;
use clap::{Args, Subcommand};
use serde::Deserialize;
use serde_json::Value;
use shoal_api::{
    Client, ClientError, docker,
    network::NetworkAttachmentConfig,
    service::{
        ContainerSpec, DEFAULT_UPDATE_MONITOR, EndpointSpec, GlobalService, HealthConfig,
        Placement, PlacementPreference, ReplicatedService, RestartCondition, RestartPolicy,
        ServiceMode, ServiceSpec, SpreadOver, TaskSpec, TaskState, UpdateConfig,
    },
};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    commands::{
        network::{parse_attachment, resolve_attachments},
        service_ports::parse_publish,
        swarm::info,
    },
    docker_error::DockerError,
    duration::{format_go_duration, parse_go_duration},
    output::Table,
    progress::wait_on_service,
    units::{bytes_size, human_duration, parse_nano_cpus, parse_ram_bytes},
};

/// `shoal service` verbs.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Create a new service.
    #[command(override_usage = "shoal service create [OPTIONS] IMAGE [COMMAND] [ARG...]")]
    Create(Box<CreateArgs>),
    /// Update a service.
    #[command(override_usage = "shoal service update [OPTIONS] SERVICE")]
    Update(Box<super::service_update::UpdateArgs>),
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
    Ps(PsArgs),
    /// Fetch the logs of a service or task.
    Logs(super::service_logs::LogsArgs),
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

/// `shoal service create` flags, as docker's.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The flags `create` shares with `update`.
    #[command(flatten)]
    common: ServiceFlags,
    /// Service name.
    #[arg(long)]
    name: Option<String>,
    /// Service mode ("replicated", "global").
    #[arg(long, default_value = "replicated")]
    mode: String,
    /// Set environment variables.
    #[arg(short, long)]
    env: Vec<String>,
    /// Placement constraints.
    #[arg(long)]
    constraint: Vec<String>,
    /// Add a placement preference (`spread=<label>`).
    #[arg(long, value_parser = parse_placement_pref)]
    placement_pref: Vec<PlacementPreference>,
    /// Service labels.
    #[arg(short, long, value_parser = parse_label)]
    label: Vec<(String, String)>,
    /// Container labels.
    #[arg(long, value_parser = parse_label)]
    container_label: Vec<(String, String)>,
    /// Network attachments (`NAME` or `name=NAME,alias=ALIAS…`).
    #[arg(long, value_parser = parse_attachment)]
    network: Vec<NetworkAttachmentConfig>,
    /// Publish a port as a node port (`published=P,target=T[,protocol=udp][,mode=host]`,
    /// `P:T[/udp]` or `T`).
    #[arg(short, long, value_parser = parse_publish)]
    publish: Vec<shoal_api::service::PortConfig>,
    /// The image, then the command and its arguments (as docker, flags
    /// after the image belong to the command).
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    image_and_args: Vec<String>,
}

/// The flags `shoal service create` and `shoal service update` share, as
/// docker's: each one given sets its field of the spec, the others leave
/// theirs as they are.
#[derive(Debug, Args)]
pub(crate) struct ServiceFlags {
    /// Exit immediately instead of waiting for the service to converge.
    #[arg(short, long)]
    pub(crate) detach: bool,
    /// Suppress progress output.
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Number of tasks.
    #[arg(long, value_parser = parse_replicas, allow_hyphen_values = true)]
    pub(crate) replicas: Option<u64>,
    /// Maximum number of tasks per node (default 0 = unlimited).
    #[arg(long)]
    replicas_max_per_node: Option<u64>,
    /// Restart when condition is met ("none", "on-failure", "any") (default "any").
    #[arg(long)]
    restart_condition: Option<RestartCondition>,
    /// Delay between restart attempts (ns|us|ms|s|m|h) (default 5s).
    #[arg(long, value_parser = go_duration_ns)]
    restart_delay: Option<i64>,
    /// Maximum number of restarts before giving up.
    #[arg(long)]
    restart_max_attempts: Option<u64>,
    /// Window used to evaluate the restart policy (ns|us|ms|s|m|h).
    #[arg(long, value_parser = go_duration_ns)]
    restart_window: Option<i64>,
    /// Command to run to check health.
    #[arg(long)]
    health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long, value_parser = go_duration_ns)]
    health_interval: Option<i64>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long, value_parser = go_duration_ns)]
    health_timeout: Option<i64>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..))]
    health_retries: Option<i64>,
    /// Start period for the container to initialize before counting
    /// retries towards unstable (ms|s|m|h).
    #[arg(long, value_parser = go_duration_ns)]
    health_start_period: Option<i64>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long)]
    no_healthcheck: bool,
    /// Limit CPUs.
    #[arg(long, value_parser = parse_nano_cpus)]
    limit_cpu: Option<i64>,
    /// Limit Memory.
    #[arg(long, value_parser = parse_ram_bytes)]
    limit_memory: Option<i64>,
    /// Reserve CPUs.
    #[arg(long, value_parser = parse_nano_cpus)]
    reserve_cpu: Option<i64>,
    /// Reserve Memory.
    #[arg(long, value_parser = parse_ram_bytes)]
    reserve_memory: Option<i64>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    user: Option<String>,
    /// Container hostname.
    #[arg(long)]
    hostname: Option<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    read_only: Option<bool>,
    /// Time to wait before force killing a container (ns|us|ms|s|m|h) (default 10s).
    #[arg(long, value_parser = go_duration_ns)]
    stop_grace_period: Option<i64>,
    /// Signal to stop the container.
    #[arg(long)]
    stop_signal: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long, value_parser = parse_words, allow_hyphen_values = true)]
    entrypoint: Option<Words>,
    /// Endpoint mode (vip or dnsrr).
    #[arg(long, value_parser = parse_endpoint_mode)]
    endpoint_mode: Option<String>,
}

/// `shoal service ps` flags.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Filter output based on conditions provided (`key=value`: id, name,
    /// node, desired-state).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Do not map IDs to Names.
    #[arg(long)]
    no_resolve: bool,
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only display task IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Services (ID, ID prefix or name).
    #[arg(required = true)]
    services: Vec<String>,
}

/// Runs a `shoal service` verb.
pub async fn run(client: &Client, command: ServiceCommand) -> Result<()> {
    match command {
        ServiceCommand::Create(args) => create(client, &args).await?,
        ServiceCommand::Update(args) => super::service_update::update(client, &args).await?,
        ServiceCommand::Ls { quiet, filter } => ls(client, quiet, &filter).await?,
        ServiceCommand::Ps(args) => ps(client, &args).await?,
        ServiceCommand::Logs(args) => super::service_logs::logs(client, &args).await?,
        ServiceCommand::Inspect { pretty, services } => inspect(client, pretty, &services).await?,
        ServiceCommand::Scale { detach, scales } => scale(client, detach, &scales).await?,
        ServiceCommand::Rm { services } => rm(client, &services).await?,
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// What the daemon answers.

/// A service as `GET /services` and `GET /services/{id}` show it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceView {
    /// The service ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its version, for updates.
    #[serde(default)]
    pub version: docker::ObjectVersion,
    /// The spec as stored.
    pub spec: ServiceSpec,
    /// Published ports.
    #[serde(default)]
    endpoint: EndpointView,
    /// Task counts, when asked for with `status=true`.
    service_status: Option<ServiceStatusView>,
}

impl ServiceView {
    /// How long the tasks must stay up before the service counts as
    /// converged: the update config's monitor, docker's 5 s by default.
    pub fn monitor(&self) -> Duration {
        self.spec
            .update_config
            .as_ref()
            .map_or(DEFAULT_UPDATE_MONITOR, UpdateConfig::monitor)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointView {
    ports: Option<Vec<PortConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ServiceStatusView {
    running_tasks: u64,
    desired_tasks: u64,
}

/// A published port (Docker's `PortConfig`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PortConfig {
    protocol: String,
    target_port: u32,
    published_port: u32,
    publish_mode: String,
}

impl PortConfig {
    fn protocol(&self) -> &str {
        if self.protocol.is_empty() {
            "tcp"
        } else {
            &self.protocol
        }
    }

    fn publish_mode(&self) -> &str {
        if self.publish_mode.is_empty() {
            "ingress"
        } else {
            &self.publish_mode
        }
    }
}

/// A task as `GET /tasks` shows it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskView {
    /// The task ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// RFC 3339.
    #[serde(default)]
    created_at: String,
    /// What it runs.
    #[serde(default)]
    spec: TaskSpec,
    /// Its service.
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    /// Its node, once assigned.
    #[serde(rename = "NodeID", default)]
    pub node_id: String,
    /// Replicated services: the slot; 0 for global ones.
    #[serde(default)]
    pub slot: u64,
    /// What the node reports.
    pub status: TaskStatusView,
    /// What the managers want.
    pub desired_state: TaskState,
}

/// A task's observed status.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskStatusView {
    /// When the state was entered, RFC 3339.
    timestamp: String,
    /// The observed state.
    pub state: TaskState,
    /// Why it failed, if it did.
    pub err: String,
    /// Ports published on the task's node.
    port_status: PortStatusView,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PortStatusView {
    ports: Option<Vec<PortConfig>>,
}

// ---------------------------------------------------------------------------
// create

/// `--replicas`: a non-negative whole number.
fn parse_replicas(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("invalid replicas value {text:?}: expected a whole number ≥ 0"))
}

/// A Go duration flag, in nanoseconds.
fn go_duration_ns(text: &str) -> Result<i64, String> {
    let ns = parse_go_duration(text)?;
    i64::try_from(ns).map_err(|_| format!("duration {text:?} is out of range"))
}

/// `--placement-pref spread=<label>` (and `update`'s `--placement-pref-add`
/// and `--placement-pref-rm`).
pub(crate) fn parse_placement_pref(value: &str) -> Result<PlacementPreference, String> {
    let fields: Vec<&str> = value.split('=').collect();
    let [strategy, descriptor] = fields[..] else {
        return Err(r#"placement preference must be of the format "<strategy>=<arg>""#.to_owned());
    };
    if strategy != "spread" {
        return Err(format!(
            "unsupported placement preference {strategy} (only spread is supported)"
        ));
    }
    Ok(PlacementPreference {
        spread: SpreadOver {
            spread_descriptor: descriptor.to_owned(),
        },
    })
}

/// The words of a command flag (`--entrypoint`, `update --args`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Words(pub(crate) Vec<String>);

/// Parses a command flag into [`Words`] with [`shell_words`].
pub(crate) fn parse_words(text: &str) -> Result<Words, String> {
    shell_words(text).map(Words)
}

/// `--endpoint-mode`: `vip` or `dnsrr`, any case, as docker lower-cases it
/// (the daemon would refuse anything else).
fn parse_endpoint_mode(text: &str) -> Result<String, String> {
    let mode = text.to_lowercase();
    if mode == "vip" || mode == "dnsrr" {
        Ok(mode)
    } else {
        Err(format!("invalid resolution mode: {mode:?} (vip or dnsrr)"))
    }
}

/// Splits a command flag into words as a POSIX shell would: blanks
/// separate, quotes group, backslashes escape.
fn shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("EOF found when expecting closing quote".to_owned()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => {
                                return Err("EOF found when expecting closing quote".to_owned());
                            }
                        },
                        Some(c) => word.push(c),
                        None => return Err("EOF found when expecting closing quote".to_owned()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(c) => word.push(c),
                    None => return Err("EOF found after escape character".to_owned()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// One `-e`/`--env-add` value as docker takes it: `NAME=value` as is, a
/// bare `NAME` from this environment when set there (`lookup`).
fn env_entry(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let (name, has_value) = match value.split_once('=') {
        Some((name, _)) => (name, true),
        None => (value, false),
    };
    if name.is_empty() {
        return Err(format!("invalid environment variable: {value}"));
    }
    Ok(match (has_value, lookup(name)) {
        (false, Some(local)) => format!("{name}={local}"),
        _ => value.to_owned(),
    })
}

/// [`env_entry`] with this process's environment, for `--env-add`.
pub(crate) fn local_env_entry(value: &str) -> Result<String, String> {
    env_entry(value, |name| std::env::var(name).ok())
}

/// The name of an environment entry (`NAME=value` or a bare `NAME`).
pub(crate) fn env_name(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(name, _)| name)
}

/// `-e` values as docker takes them ([`env_entry`]); a later value of a
/// name replaces an earlier one.
fn make_env(
    values: &[String],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut env: Vec<String> = Vec::new();
    for value in values {
        let entry = env_entry(value, &lookup)?;
        let name = env_name(&entry);
        env.retain(|e| e == &entry || env_name(e) != name);
        if !env.contains(&entry) {
            env.push(entry);
        }
    }
    Ok(env)
}

/// A `key=value` label (a bare key has an empty value), as docker's
/// `--label`, `--container-label` and their `-add` forms take it.
pub(crate) fn parse_label(value: &str) -> Result<(String, String), String> {
    let (key, label) = value.split_once('=').unwrap_or((value, ""));
    if key.trim().is_empty() {
        return Err(format!("invalid label '{value}': empty name"));
    }
    Ok((key.to_owned(), label.to_owned()))
}

impl CreateArgs {
    /// The spec docker's CLI would send for these flags (networks still
    /// named as given), or why they are refused.
    pub fn spec(&self) -> Result<ServiceSpec, String> {
        let (image, args) = self
            .image_and_args
            .split_first()
            .ok_or("\"shoal service create\" requires at least 1 argument")?;
        let flags = &self.common;
        let mode = match self.mode.as_str() {
            "replicated" => ServiceMode::Replicated(ReplicatedService {
                replicas: Some(flags.replicas.unwrap_or(1)),
            }),
            "global" => {
                if flags.replicas.is_some() {
                    return Err(
                        "replicas can only be used with replicated or replicated-job mode".into(),
                    );
                }
                if flags.replicas_max_per_node.unwrap_or(0) > 0 {
                    return Err("replicas-max-per-node can only be used with replicated or replicated-job mode".into());
                }
                ServiceMode::Global(GlobalService {})
            }
            other => {
                return Err(format!(
                    "Unknown mode: {other}, only replicated and global supported"
                ));
            }
        };
        let mut spec = ServiceSpec {
            name: self.name.clone().unwrap_or_default(),
            labels: self.label.iter().cloned().collect(),
            task_template: TaskSpec {
                container_spec: ContainerSpec {
                    image: image.clone(),
                    labels: self.container_label.iter().cloned().collect(),
                    args: args.to_vec(),
                    env: make_env(&self.env, |name| std::env::var(name).ok())?,
                    // Docker's CLI always sends it (`--init` defaults to false).
                    init: Some(false),
                    ..ContainerSpec::default()
                },
                placement: Placement {
                    constraints: self.constraint.clone(),
                    preferences: self.placement_pref.clone(),
                    max_replicas: 0,
                },
                networks: self.network.clone(),
                ..TaskSpec::default()
            },
            mode,
            endpoint_spec: Some(EndpointSpec {
                mode: "vip".into(),
                ports: Vec::new(),
            }),
            update_config: None,
            rollback_config: None,
        };
        flags.apply(&mut spec)?;
        if !self.publish.is_empty() {
            spec.endpoint_spec
                .get_or_insert_default()
                .ports
                .clone_from(&self.publish);
        }
        Ok(spec)
    }
}

impl ServiceFlags {
    /// Refuses flags that contradict each other, whatever the spec.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.no_healthcheck && self.any_health_setting() {
            return Err("--no-healthcheck conflicts with --health-* options".into());
        }
        Ok(())
    }

    /// Sets the fields of `spec` these flags give, as docker's `create`
    /// and `update` do; the others stay as they are.
    pub(crate) fn apply(&self, spec: &mut ServiceSpec) -> Result<(), String> {
        self.check()?;
        let task = &mut spec.task_template;
        let container = &mut task.container_spec;
        if let Some(Words(command)) = &self.entrypoint {
            container.command.clone_from(command);
        }
        for (field, flag) in [
            (&mut container.dir, &self.workdir),
            (&mut container.user, &self.user),
            (&mut container.hostname, &self.hostname),
            (&mut container.stop_signal, &self.stop_signal),
        ] {
            if let Some(value) = flag {
                field.clone_from(value);
            }
        }
        if self.stop_grace_period.is_some() {
            container.stop_grace_period = self.stop_grace_period;
        }
        if let Some(read_only) = self.read_only {
            container.read_only = read_only;
        }
        self.apply_health(&mut container.healthcheck);
        for (field, flag) in [
            (&mut task.resources.limits.nano_cpus, self.limit_cpu),
            (&mut task.resources.limits.memory_bytes, self.limit_memory),
            (&mut task.resources.reservations.nano_cpus, self.reserve_cpu),
            (
                &mut task.resources.reservations.memory_bytes,
                self.reserve_memory,
            ),
        ] {
            if let Some(value) = flag {
                *field = value;
            }
        }
        self.apply_restart(&mut task.restart_policy);
        if let Some(max) = self.replicas_max_per_node {
            task.placement.max_replicas = max;
        }
        if let Some(mode) = &self.endpoint_mode {
            spec.endpoint_spec
                .get_or_insert_default()
                .mode
                .clone_from(mode);
        }
        Ok(())
    }

    fn any_health_setting(&self) -> bool {
        self.health_cmd.is_some()
            || self.health_interval.is_some()
            || self.health_timeout.is_some()
            || self.health_retries.is_some()
            || self.health_start_period.is_some()
    }

    /// Docker's health check edit: `--no-healthcheck` turns checks off;
    /// `--health-*` flags set their fields (of an empty check if there is
    /// none, or checks are off); an empty `--health-cmd` inherits the
    /// image's command.
    fn apply_health(&self, health: &mut Option<HealthConfig>) {
        if self.no_healthcheck {
            *health = Some(HealthConfig {
                test: vec!["NONE".into()],
                ..HealthConfig::default()
            });
            return;
        }
        if !self.any_health_setting() {
            return;
        }
        let health = health.get_or_insert_with(HealthConfig::default);
        if health.test.first().is_some_and(|kind| kind == "NONE") {
            health.test.clear();
        }
        for (field, flag) in [
            (&mut health.interval, self.health_interval),
            (&mut health.timeout, self.health_timeout),
            (&mut health.start_period, self.health_start_period),
            (&mut health.retries, self.health_retries),
        ] {
            if let Some(value) = flag {
                *field = value;
            }
        }
        if let Some(cmd) = &self.health_cmd {
            health.test = if cmd.is_empty() {
                Vec::new()
            } else {
                vec!["CMD-SHELL".into(), cmd.clone()]
            };
        }
    }

    /// Docker's restart policy edit: with any `--restart-*` flag, a service
    /// without a policy gets docker's default one (any, 5 s, unlimited),
    /// then the flags given set their fields.
    fn apply_restart(&self, policy: &mut RestartPolicy) {
        if self.restart_condition.is_none()
            && self.restart_delay.is_none()
            && self.restart_max_attempts.is_none()
            && self.restart_window.is_none()
        {
            return;
        }
        if *policy == RestartPolicy::default() {
            *policy = RestartPolicy {
                condition: Some(RestartCondition::Any),
                delay: Some(5_000_000_000),
                max_attempts: Some(0),
                window: None,
            };
        }
        if self.restart_condition.is_some() {
            policy.condition = self.restart_condition;
        }
        if self.restart_delay.is_some() {
            policy.delay = self.restart_delay;
        }
        if self.restart_max_attempts.is_some() {
            policy.max_attempts = self.restart_max_attempts;
        }
        if self.restart_window.is_some() {
            policy.window = self.restart_window;
        }
    }
}

/// `POST /services/create`'s answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Created {
    #[serde(rename = "ID")]
    id: String,
    #[serde(default, deserialize_with = "nullable_strings")]
    warnings: Vec<String>,
}

/// Deserializes a JSON array of strings that may be `null`.
pub(crate) fn nullable_strings<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

async fn create(client: &Client, args: &CreateArgs) -> Result<(), DockerError> {
    let mut spec = args.spec()?;
    resolve_attachments(client, &mut spec.task_template.networks).await?;
    let created: Created = client.post_json("/services/create", &spec).await?;
    for warning in &created.warnings {
        eprintln!("{warning}");
    }
    println!("{}", created.id);
    if args.common.detach {
        return Ok(());
    }
    wait_on_service(client, &created.id, args.common.quiet).await
}

// ---------------------------------------------------------------------------
// Filters and lookups

pub(crate) type Filters = BTreeMap<String, BTreeSet<String>>;

/// `-f key=value` flags as docker's filters.
pub(crate) fn parse_filters(flags: &[String]) -> Result<Filters, DockerError> {
    let mut filters = Filters::new();
    for flag in flags {
        let (key, value) = flag
            .split_once('=')
            .ok_or_else(|| DockerError("bad format of filter (expected name=value)".into()))?;
        filters
            .entry(key.trim().to_lowercase())
            .or_default()
            .insert(value.trim().to_owned());
    }
    Ok(filters)
}

/// The `filters` query value: `{"key":{"value":true}}`, percent-encoded.
fn filters_query(filters: &Filters) -> String {
    let json: BTreeMap<&String, BTreeMap<&String, bool>> = filters
        .iter()
        .map(|(k, values)| (k, values.iter().map(|v| (v, true)).collect()))
        .collect();
    shoal_api::client::query_value(&serde_json::to_string(&json).unwrap_or_default())
}

pub(crate) fn with_filters(path: &str, filters: &Filters) -> String {
    if filters.is_empty() {
        path.to_owned()
    } else {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}filters={}", filters_query(filters))
    }
}

/// The tasks matching `filters`.
pub async fn list_tasks(client: &Client, filters: &Filters) -> Result<Vec<TaskView>, DockerError> {
    Ok(client.get_json(&with_filters("/tasks", filters)).await?)
}

/// Filters for the up-to-date tasks of a service, as docker's progress
/// asks for them.
pub fn up_to_date_filters(service_id: &str) -> Filters {
    Filters::from([
        (
            "service".to_owned(),
            BTreeSet::from([service_id.to_owned()]),
        ),
        (
            "_up-to-date".to_owned(),
            BTreeSet::from(["true".to_owned()]),
        ),
    ])
}

/// The nodes that are not down, by ID.
pub async fn active_nodes(client: &Client) -> Result<BTreeSet<String>, DockerError> {
    let nodes: Vec<docker::Node> = client.get_json("/nodes").await?;
    Ok(nodes
        .into_iter()
        .filter(|n| n.status.state != "down")
        .map(|n| n.id)
        .collect())
}

/// `GET /services/{id}`.
pub async fn inspect_service(client: &Client, service: &str) -> Result<ServiceView, ClientError> {
    client.get_json(&format!("/services/{service}")).await
}

pub(crate) fn is_not_found(error: &ClientError) -> bool {
    matches!(error, ClientError::Status { status, .. } if status.as_u16() == 404)
}

/// Docker's `stringid.TruncateID`: 12 characters.
pub(crate) fn truncate_id(id: &str) -> &str {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    id.get(..12).unwrap_or(id)
}

/// An image reference as docker lists it: a tagged reference loses its
/// digest and the default registry's prefix (`docker.io/library/`).
fn display_image(image: &str) -> String {
    let name = image.split_once('@').map_or(image, |(name, _)| name);
    let last = name.rsplit('/').next().unwrap_or(name);
    if !last.contains(':') {
        return image.to_owned();
    }
    let familiar = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .or_else(|| name.strip_prefix("index.docker.io/library/"))
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .unwrap_or(name);
    familiar.to_owned()
}

/// Natural order as docker sorts names (`web.2` before `web.10`).
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (da, db) = (a[i].is_ascii_digit(), b[j].is_ascii_digit());
        if da != db {
            return if da {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if !da {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
            continue;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let (start_a, start_b) = (i, j);
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let order = (i - start_a)
            .cmp(&(j - start_b))
            .then_with(|| a[start_a..i].cmp(&b[start_b..j]))
            .then_with(|| start_a.cmp(&start_b));
        if order != Ordering::Equal {
            return order;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

// ---------------------------------------------------------------------------
// ls

async fn ls(client: &Client, quiet: bool, filter: &[String]) -> Result<(), DockerError> {
    let filters = parse_filters(filter)?;
    let path = if quiet {
        "/services"
    } else {
        "/services?status=true"
    };
    let mut services: Vec<ServiceView> = client.get_json(&with_filters(path, &filters)).await?;
    if quiet {
        services.sort_by(|a, b| natural_cmp(&a.spec.name, &b.spec.name));
        for service in services {
            println!("{}", truncate_id(&service.id));
        }
        return Ok(());
    }
    print!("{}", ls_table(services));
    Ok(())
}

/// The `docker service ls` table, sorted by name.
fn ls_table(mut services: Vec<ServiceView>) -> String {
    services.sort_by(|a, b| natural_cmp(&a.spec.name, &b.spec.name));
    let mut table = Table::new(["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]);
    for service in &services {
        let (running, desired) = service
            .service_status
            .as_ref()
            .map_or((0, 0), |s| (s.running_tasks, s.desired_tasks));
        let max = match service.spec.mode {
            ServiceMode::Replicated(_) => service.spec.task_template.placement.max_replicas,
            ServiceMode::Global(_) => 0,
        };
        let replicas = if max > 0 {
            format!("{running}/{desired} (max {max} per node)")
        } else {
            format!("{running}/{desired}")
        };
        table.row([
            truncate_id(&service.id).to_owned(),
            service.spec.name.clone(),
            service.spec.mode.name().to_owned(),
            replicas,
            display_image(&service.spec.task_template.container_spec.image),
            ports_text(&service_ports(service)),
        ]);
    }
    table.render()
}

/// The service's published ports as the managers resolved them
/// (`Endpoint.Ports`), what docker's `ls` and `inspect --pretty` show.
fn service_ports(service: &ServiceView) -> Vec<PortConfig> {
    service.endpoint.ports.clone().unwrap_or_default()
}

/// Ingress ports as docker lists them, consecutive ones as ranges:
/// `*:8080->80/tcp`, `*:80-81->80-81/tcp`.
fn ports_text(ports: &[PortConfig]) -> String {
    struct Range<'a> {
        p_start: u32,
        p_end: u32,
        t_start: u32,
        t_end: u32,
        protocol: &'a str,
    }
    fn text(r: &Range<'_>) -> String {
        let side = |start: u32, end: u32| {
            if end > start {
                format!("{start}-{end}")
            } else {
                start.to_string()
            }
        };
        format!(
            "*:{}->{}/{}",
            side(r.p_start, r.p_end),
            side(r.t_start, r.t_end),
            r.protocol
        )
    }
    let mut sorted: Vec<&PortConfig> = ports.iter().collect();
    sorted.sort_by(|a, b| {
        a.protocol()
            .cmp(b.protocol())
            .then(a.published_port.cmp(&b.published_port))
    });
    let mut out = Vec::new();
    let mut range = Range {
        p_start: 0,
        p_end: 0,
        t_start: 0,
        t_end: 0,
        protocol: "",
    };
    for port in sorted.into_iter().filter(|p| p.publish_mode() == "ingress") {
        let is_range = range.t_end != range.t_start;
        let overlaps = port.target_port <= range.t_end;
        if port.protocol() != range.protocol
            || port.published_port.wrapping_sub(range.p_end) > 1
            || port.target_port.wrapping_sub(range.t_end) > 1
            || (is_range && overlaps)
        {
            if range.p_start > 0 {
                out.push(text(&range));
            }
            range = Range {
                p_start: port.published_port,
                p_end: port.published_port,
                t_start: port.target_port,
                t_end: port.target_port,
                protocol: port.protocol(),
            };
            continue;
        }
        range.p_end = port.published_port;
        range.t_end = port.target_port;
    }
    if range.p_start > 0 {
        out.push(text(&range));
    }
    out.join(", ")
}

// ---------------------------------------------------------------------------
// ps

/// Resolves `ps`'s SERVICE arguments as docker does (full ID, then full
/// name, then a unique ID prefix): the names of the services found by ID,
/// and the "no such service" messages of those that were not.
async fn resolve_services(
    client: &Client,
    wanted: &[String],
) -> Result<(BTreeMap<String, String>, Vec<String>), DockerError> {
    let set = |key: &str| Filters::from([(key.to_owned(), wanted.iter().cloned().collect())]);
    let by_id: Vec<ServiceView> = client
        .get_json(&with_filters("/services", &set("id")))
        .await?;
    let by_name: Vec<ServiceView> = client
        .get_json(&with_filters("/services", &set("name")))
        .await?;
    let mut found = BTreeMap::new();
    let mut missing = Vec::new();
    for name in wanted {
        let exact = by_id
            .iter()
            .find(|s| s.id == *name)
            .or_else(|| by_name.iter().find(|s| s.spec.name == *name));
        let service = if let Some(service) = exact {
            service
        } else {
            let prefixed: Vec<&ServiceView> = by_id
                .iter()
                .filter(|s| s.id.starts_with(name.as_str()))
                .collect();
            match prefixed[..] {
                [] => {
                    missing.push(format!("no such service: {name}"));
                    continue;
                }
                [service] => service,
                _ => {
                    return Err(DockerError(format!(
                        "multiple services found with provided prefix: {name}"
                    )));
                }
            }
        };
        found.insert(service.id.clone(), service.spec.name.clone());
    }
    if found.is_empty() {
        return Err(DockerError(missing.join("\n")));
    }
    Ok((found, missing))
}

async fn ps(client: &Client, args: &PsArgs) -> Result<(), DockerError> {
    let mut filters = parse_filters(&args.filter)?;
    let (services, missing) = resolve_services(client, &args.services).await?;
    filters.insert("service".to_owned(), services.keys().cloned().collect());
    if let Some(nodes) = filters.get_mut("node")
        && nodes.remove("self")
    {
        let me = info(client)
            .await
            .map_err(|e| DockerError(format!("{e:#}")))?
            .node_id;
        nodes.insert(me);
    }
    let tasks = list_tasks(client, &filters).await?;
    let mut service_names: BTreeMap<String, String> = BTreeMap::new();
    let mut node_names: BTreeMap<String, String> = BTreeMap::new();
    if !args.no_resolve {
        service_names.extend(services);
        let nodes: Vec<docker::Node> = client.get_json("/nodes").await?;
        node_names.extend(nodes.into_iter().map(|n| {
            let name = if n.spec.name.is_empty() {
                n.description.hostname
            } else {
                n.spec.name
            };
            (n.id, name)
        }));
    }
    let rows = ps_rows(
        tasks,
        &service_names,
        &node_names,
        OffsetDateTime::now_utc(),
        !(args.no_trunc || args.quiet),
    );
    if args.quiet {
        for row in rows {
            println!("{}", row[0]);
        }
    } else {
        let mut table = Table::new([
            "ID",
            "NAME",
            "IMAGE",
            "NODE",
            "DESIRED STATE",
            "CURRENT STATE",
            "ERROR",
            "PORTS",
        ]);
        for row in rows {
            table.row(row);
        }
        print!("{}", table.render());
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DockerError(missing.join("\n")))
    }
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// The rows of `docker service ps`: tasks named `<service>.<slot>` (global:
/// `<service>.<node ID>`), sorted by name and, within a slot, newest first;
/// the older tasks of a slot indented with ` \_ `. IDs resolve to names
/// through the maps when they hold them. `trunc` shortens IDs, images and
/// errors as docker does without `--no-trunc`.
fn ps_rows(
    tasks: Vec<TaskView>,
    service_names: &BTreeMap<String, String>,
    node_names: &BTreeMap<String, String>,
    now: OffsetDateTime,
    trunc: bool,
) -> Vec<[String; 8]> {
    let mut named: Vec<(String, Option<OffsetDateTime>, TaskView)> = tasks
        .into_iter()
        .map(|task| {
            let service = service_names
                .get(&task.service_id)
                .unwrap_or(&task.service_id);
            let name = if task.slot == 0 {
                format!("{service}.{}", task.node_id)
            } else {
                format!("{service}.{}", task.slot)
            };
            (name, parse_time(&task.created_at), task)
        })
        .collect();
    named.sort_by(|(a, a_created, _), (b, b_created, _)| {
        natural_cmp(a, b).then_with(|| b_created.cmp(a_created))
    });
    let mut previous = None;
    named
        .into_iter()
        .map(|(name, _, task)| {
            let shown = if previous.as_deref() == Some(name.as_str()) {
                format!(" \\_ {name}")
            } else {
                name.clone()
            };
            previous = Some(name);
            let image = &task.spec.container_spec.image;
            let current = match parse_time(&task.status.timestamp) {
                Some(at) => {
                    let ago = Duration::try_from(now - at).unwrap_or_default();
                    format!(
                        "{} {} ago",
                        task.status.state.title(),
                        human_duration(ago).to_lowercase()
                    )
                }
                None => task.status.state.title(),
            };
            let mut error = task.status.err.clone();
            if trunc {
                error = ellipsis(&error, 30);
            }
            if !error.is_empty() {
                error = format!("\"{error}\"");
            }
            let ports = task
                .status
                .port_status
                .ports
                .iter()
                .flatten()
                .map(|p| format!("*:{}->{}/{}", p.published_port, p.target_port, p.protocol()))
                .collect::<Vec<_>>()
                .join(",");
            [
                if trunc {
                    truncate_id(&task.id).to_owned()
                } else {
                    task.id.clone()
                },
                shown,
                if trunc {
                    display_image(image)
                } else {
                    image.clone()
                },
                node_names
                    .get(&task.node_id)
                    .unwrap_or(&task.node_id)
                    .clone(),
                task.desired_state.title(),
                current,
                error,
                ports,
            ]
        })
        .collect()
}

/// Docker's `formatter.Ellipsis`: at most `width` characters, the last one
/// `…` when cut.
fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

// ---------------------------------------------------------------------------
// inspect

async fn inspect(
    client: &Client,
    pretty_text: bool,
    services: &[String],
) -> Result<(), DockerError> {
    let mut found: Vec<Value> = Vec::new();
    let mut errors = Vec::new();
    for service in services {
        match client
            .get_json::<Value>(&format!("/services/{service}"))
            .await
        {
            Ok(value) => found.push(value),
            Err(error) if is_not_found(&error) => {
                errors.push(format!("Error: no such service: {service}"));
            }
            Err(error) => errors.push(DockerError::from(error).0),
        }
    }
    if pretty_text {
        for value in found {
            let service: ServiceView = serde_json::from_value(value)
                .map_err(|e| DockerError(format!("unexpected service from shoald: {e}")))?;
            println!("{}", pretty(&service));
        }
    } else {
        println!("{}", json_indented(&found));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DockerError(errors.join("\n")))
    }
}

/// JSON indented by four spaces, as `docker … inspect` prints it.
pub(crate) fn json_indented(value: &impl serde::Serialize) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    match value.serialize(&mut serializer) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(_) => "[]".to_owned(),
    }
}

/// Go's `%v` of a `[]string`: `[a b]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// `docker service inspect --pretty` of one service (docker's template,
/// for the fields shoal has), without the final newline.
fn pretty(service: &ServiceView) -> String {
    let spec = &service.spec;
    let mut out = String::new();
    let _ = write!(out, "\nID:\t\t{}\nName:\t\t{}", service.id, spec.name);
    if !spec.labels.is_empty() {
        out.push_str("\nLabels:");
        for (key, value) in &spec.labels {
            let _ = write!(out, "\n {key}");
            if !value.is_empty() {
                let _ = write!(out, "={value}");
            }
        }
    }
    out.push_str("\nService Mode:");
    match &spec.mode {
        ServiceMode::Global(_) => out.push_str("\tGlobal"),
        ServiceMode::Replicated(r) => {
            out.push_str("\tReplicated");
            if let Some(replicas) = r.replicas {
                let _ = write!(out, "\n Replicas:\t{replicas}");
            }
        }
    }
    pretty_placement(&mut out, &spec.task_template.placement);
    if let Some(config) = &spec.update_config {
        pretty_update_config(&mut out, "UpdateConfig", "Update", config);
    }
    if let Some(config) = &spec.rollback_config {
        pretty_update_config(&mut out, "RollbackConfig", "Rollback", config);
    }
    pretty_container(&mut out, &spec.task_template.container_spec);
    pretty_resources(&mut out, &spec.task_template);
    pretty_endpoint(&mut out, service);
    if let Some(health) = &spec.task_template.container_spec.healthcheck {
        let _ = write!(
            out,
            "\n Healthcheck:\n  Interval = {}\n  Retries = {}\n  StartPeriod =\t{}\n  Timeout =\t{}",
            format_go_duration(health.interval),
            health.retries,
            format_go_duration(health.start_period),
            format_go_duration(health.timeout)
        );
        if !health.test.is_empty() {
            out.push_str("\n  Tests:");
            for test in &health.test {
                let _ = write!(out, "\n\t Test = {test}");
            }
            out.push(' ');
        }
    }
    out.push('\n');
    out
}

fn pretty_placement(out: &mut String, placement: &Placement) {
    out.push_str("\nPlacement:");
    if !placement.constraints.is_empty() {
        let _ = write!(out, "\n Constraints:\t{}", go_list(&placement.constraints));
    }
    if !placement.preferences.is_empty() {
        let prefs: Vec<String> = placement
            .preferences
            .iter()
            .map(|p| format!("spread={}", p.spread.spread_descriptor))
            .collect();
        let _ = write!(out, "\n Preferences:   {}", go_list(&prefs));
    }
    if placement.max_replicas > 0 {
        let _ = write!(
            out,
            "\n Max Replicas Per Node:   {}",
            placement.max_replicas
        );
    }
}

/// `UpdateConfig:` or `RollbackConfig:` (absent fields as Go's zero
/// values, as docker's template prints them).
fn pretty_update_config(out: &mut String, title: &str, verb: &str, config: &UpdateConfig) {
    let _ = write!(
        out,
        "\n{title}:\n Parallelism:\t{}",
        config.parallelism.unwrap_or_default()
    );
    let delay = config.delay.unwrap_or_default();
    if delay > 0 {
        let _ = write!(out, "\n Delay:\t\t{}", format_go_duration(delay));
    }
    let _ = write!(
        out,
        "\n On failure:\t{}",
        config.failure_action.as_deref().unwrap_or_default()
    );
    let monitor = config.monitor.unwrap_or_default();
    if monitor > 0 {
        let _ = write!(out, "\n Monitoring Period: {}", format_go_duration(monitor));
    }
    let _ = write!(
        out,
        "\n Max failure ratio: {}\n {:<18} {}",
        config.max_failure_ratio.unwrap_or_default(),
        format!("{verb} order:"),
        config.order.as_deref().unwrap_or_default()
    );
}

fn pretty_container(out: &mut String, container: &ContainerSpec) {
    let _ = write!(out, "\nContainerSpec:\n Image:\t\t{}", container.image);
    for (title, words) in [("Args", &container.args), ("Env", &container.env)] {
        if !words.is_empty() {
            let _ = write!(out, "\n {title}:\t\t");
            for word in words {
                let _ = write!(out, "{word} ");
            }
        }
    }
    if !container.dir.is_empty() {
        let _ = write!(out, "\n Dir:\t\t{}", container.dir);
    }
    if let Some(init) = container.init {
        let _ = write!(out, "\n Init:\t\t{init}");
    }
    if !container.user.is_empty() {
        let _ = write!(out, "\n User: {}", container.user);
    }
}

fn pretty_resources(out: &mut String, task: &TaskSpec) {
    out.push_str("\nResources:");
    for (title, resources) in [
        ("Reservations", &task.resources.reservations),
        ("Limits", &task.resources.limits),
    ] {
        if resources.nano_cpus <= 0 && resources.memory_bytes <= 0 {
            continue;
        }
        let _ = write!(out, "\n {title}:");
        if resources.nano_cpus > 0 {
            #[expect(clippy::cast_precision_loss, reason = "shown as docker does, a float")]
            let cpus = resources.nano_cpus as f64 / 1e9;
            let _ = write!(out, "\n  CPU:\t\t{cpus}");
        }
        if resources.memory_bytes > 0 {
            let _ = write!(out, "\n  Memory:\t{}", bytes_size(resources.memory_bytes));
        }
    }
    if !task.networks.is_empty() {
        out.push_str("\nNetworks:");
        for network in &task.networks {
            let _ = write!(out, " {}", network.target);
        }
        out.push(' ');
    }
}

fn pretty_endpoint(out: &mut String, service: &ServiceView) {
    let endpoint_mode = service
        .spec
        .endpoint_spec
        .as_ref()
        .map_or("", |e| e.mode.as_str());
    let _ = write!(out, "\nEndpoint Mode:\t{endpoint_mode}");
    let ports = service_ports(service);
    if !ports.is_empty() {
        out.push_str("\nPorts:");
        for port in &ports {
            let _ = write!(
                out,
                "\n PublishedPort = {}\n  Protocol = {}\n  TargetPort = {}\n  PublishMode = {}",
                port.published_port,
                port.protocol(),
                port.target_port,
                port.publish_mode()
            );
        }
        out.push(' ');
    }
}

// ---------------------------------------------------------------------------
// scale and rm

async fn scale(client: &Client, detach: bool, scales: &[String]) -> Result<(), DockerError> {
    let mut pairs = Vec::new();
    for arg in scales {
        match arg.split_once('=') {
            Some((service, replicas)) if !service.is_empty() && !replicas.is_empty() => {
                pairs.push((service, replicas));
            }
            _ => {
                return Err(DockerError(format!(
                    "Invalid scale specifier '{arg}'.\nSee 'shoal service scale --help'.\n\nUsage:  shoal service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\nScale one or multiple replicated services"
                )));
            }
        }
    }
    let mut errors = Vec::new();
    let mut updated = Vec::new();
    for (service, replicas) in pairs {
        let Ok(replicas) = replicas.parse::<u64>() else {
            errors.push(format!(
                "{service}: invalid replicas value {replicas}: strconv.ParseUint: parsing \"{replicas}\": invalid syntax"
            ));
            continue;
        };
        match scale_one(client, service, replicas).await {
            Ok(()) => {
                println!("{service} scaled to {replicas}");
                updated.push(service);
            }
            Err(error) => errors.push(format!("{service}: {error}")),
        }
    }
    if !detach {
        for service in updated {
            if let Err(error) = wait_on_service(client, service, false).await {
                errors.push(format!("{service}: {error}"));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DockerError(errors.join("\n")))
    }
}

async fn scale_one(client: &Client, service: &str, replicas: u64) -> Result<(), DockerError> {
    let current = inspect_service(client, service).await?;
    let mut spec = current.spec;
    match &mut spec.mode {
        ServiceMode::Replicated(r) => r.replicas = Some(replicas),
        ServiceMode::Global(_) => {
            return Err(DockerError(
                "scale can only be used with replicated or replicated-job mode".into(),
            ));
        }
    }
    client
        .post(
            &format!(
                "/services/{}/update?version={}",
                current.id, current.version.index
            ),
            &spec,
        )
        .await?;
    Ok(())
}

async fn rm(client: &Client, services: &[String]) -> Result<(), DockerError> {
    let mut errors = Vec::new();
    for service in services {
        match client.delete(&format!("/services/{service}")).await {
            Ok(_) => println!("{service}"),
            Err(error) => errors.push(DockerError::from(error).0),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(DockerError(errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Parses `shoal service create …` flags.
    #[derive(Debug, Parser)]
    struct Create {
        #[command(flatten)]
        args: CreateArgs,
    }

    fn create(args: &[&str]) -> Result<ServiceSpec, String> {
        let parsed = Create::try_parse_from(std::iter::once("create").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        parsed.args.spec()
    }

    #[test]
    fn plain_create_is_one_replica_of_the_image() {
        let spec = create(&["whoami:latest"]).expect("valid");
        assert_eq!(spec.mode.replicas(), Some(1));
        assert_eq!(spec.task_template.container_spec.image, "whoami:latest");
        assert!(spec.task_template.container_spec.args.is_empty());
        assert_eq!(spec.task_template.restart_policy, RestartPolicy::default());
        assert_eq!(spec.task_template.container_spec.healthcheck, None);
        assert_eq!(spec.task_template.container_spec.init, Some(false));
        assert_eq!(
            serde_json::to_value(&spec.endpoint_spec).expect("json"),
            serde_json::json!({"Mode": "vip"})
        );
    }

    #[test]
    fn flags_become_docker_spec_fields() {
        let flags = "--name web --replicas 3 -e A=1 --env B=2 -e A=3 \
            --constraint node.role==worker --constraint node.labels.zone!=b \
            --placement-pref spread=node.labels.zone --replicas-max-per-node 2 \
            --restart-condition on-failure --restart-max-attempts 4 --restart-window 1m \
            --health-interval 2s --health-retries 5 \
            --limit-cpu 1.5 --limit-memory 64M --reserve-cpu 0.25 --reserve-memory 1g \
            -l tier=front --label bare --container-label c=d -w /srv -u 1000:1000 \
            --hostname h --read-only --stop-grace-period 1m30s --stop-signal SIGINT";
        let mut args: Vec<&str> = flags.split_whitespace().collect();
        args.extend([
            "--health-cmd",
            "wget -q localhost",
            "--entrypoint",
            "/bin/sh -c",
        ]);
        args.extend(["whoami:latest", "--port", "8080", "-d"]);
        let spec = create(&args).expect("valid");
        assert_eq!(spec.name, "web");
        assert_eq!(spec.mode.replicas(), Some(3));
        assert_eq!(
            spec.labels,
            BTreeMap::from([
                ("bare".into(), String::new()),
                ("tier".into(), "front".into())
            ])
        );
        let t = &spec.task_template;
        let c = &t.container_spec;
        assert_eq!(c.env, ["B=2", "A=3"]);
        assert_eq!(c.command, ["/bin/sh", "-c"]);
        assert_eq!(
            c.args,
            ["--port", "8080", "-d"],
            "flags after IMAGE are the command's"
        );
        assert_eq!(c.labels, BTreeMap::from([("c".into(), "d".into())]));
        assert_eq!(
            (c.dir.as_str(), c.user.as_str(), c.hostname.as_str()),
            ("/srv", "1000:1000", "h")
        );
        assert!(c.read_only);
        assert_eq!(c.stop_grace_period, Some(90_000_000_000));
        assert_eq!(c.stop_signal, "SIGINT");
        let health = c.healthcheck.as_ref().expect("health check");
        assert_eq!(health.test, ["CMD-SHELL", "wget -q localhost"]);
        assert_eq!(
            (health.interval, health.retries, health.timeout),
            (2_000_000_000, 5, 0)
        );
        assert_eq!(
            t.placement.constraints,
            ["node.role==worker", "node.labels.zone!=b"]
        );
        assert_eq!(
            t.placement.preferences[0].spread.spread_descriptor,
            "node.labels.zone"
        );
        assert_eq!(t.placement.max_replicas, 2);
        assert_eq!(
            t.restart_policy,
            RestartPolicy {
                condition: Some(RestartCondition::OnFailure),
                delay: Some(5_000_000_000),
                max_attempts: Some(4),
                window: Some(60_000_000_000),
            }
        );
        assert_eq!(t.resources.limits.nano_cpus, 1_500_000_000);
        assert_eq!(t.resources.limits.memory_bytes, 64 << 20);
        assert_eq!(t.resources.reservations.nano_cpus, 250_000_000);
        assert_eq!(t.resources.reservations.memory_bytes, 1 << 30);
    }

    #[test]
    fn global_mode_and_healthcheck_off() {
        let spec =
            create(&["--mode", "global", "--no-healthcheck", "img", "sleep", "1"]).expect("valid");
        assert_eq!(spec.mode, ServiceMode::Global(GlobalService {}));
        assert_eq!(spec.task_template.container_spec.args, ["sleep", "1"]);
        assert_eq!(
            spec.task_template
                .container_spec
                .healthcheck
                .map(|h| h.test),
            Some(vec!["NONE".to_owned()])
        );
    }

    #[test]
    fn networks_as_given_and_the_endpoint_mode() {
        let spec = create(&[
            "--network",
            "front",
            "--network",
            "name=back,alias=api",
            "--endpoint-mode",
            "DNSRR",
            "img",
        ])
        .expect("valid");
        let networks: Vec<(&str, &[String])> = spec
            .task_template
            .networks
            .iter()
            .map(|n| (n.target.as_str(), n.aliases.as_slice()))
            .collect();
        assert_eq!(
            networks,
            [("front", &[][..]), ("back", &["api".to_owned()][..])],
            "resolved to IDs and sorted when sent"
        );
        assert_eq!(
            serde_json::to_value(&spec.endpoint_spec).expect("json"),
            serde_json::json!({"Mode": "dnsrr"})
        );
    }

    #[test]
    fn bad_flags_are_refused_before_any_request() {
        let refused = |args: &[&str], wanted: &str| {
            let error = create(args).expect_err("refused");
            assert!(error.contains(wanted), "{args:?}: {error}");
        };
        refused(
            &["--replicas", "-1", "img"],
            "invalid replicas value \"-1\"",
        );
        refused(&["--replicas=abc", "img"], "invalid replicas value \"abc\"");
        refused(
            &["--replicas", "2", "--mode", "global", "img"],
            "replicas can only be used with replicated",
        );
        refused(
            &["--mode", "job", "img"],
            "Unknown mode: job, only replicated and global supported",
        );
        refused(&["--limit-memory", "64x", "img"], "invalid suffix: 'x'");
        refused(
            &["--limit-cpu", "lots", "img"],
            "failed to parse lots as a rational number",
        );
        refused(&["--restart-delay", "5", "img"], "invalid duration");
        refused(
            &["--restart-condition", "sometimes", "img"],
            "invalid restart condition",
        );
        refused(
            &["--placement-pref", "pack=node.labels.a", "img"],
            "unsupported placement preference pack",
        );
        refused(&["--placement-pref", "spread", "img"], "<strategy>=<arg>");
        refused(
            &["--no-healthcheck", "--health-cmd", "true", "img"],
            "--no-healthcheck conflicts with --health-* options",
        );
        refused(&["--health-retries", "-2", "img"], "-2");
        refused(&["-e", "=x", "img"], "invalid environment variable: =x");
        refused(&["--entrypoint", "'open", "img"], "closing quote");
        refused(
            &["--endpoint-mode", "bogus", "img"],
            "invalid resolution mode: \"bogus\"",
        );
        refused(
            &["--network", "alias=x", "img"],
            "network name/id is not specified",
        );
        refused(&["--label", "=x", "img"], "invalid label '=x': empty name");
        refused(&[], "required");
    }

    #[test]
    fn env_takes_bare_names_from_here() {
        let lookup = |name: &str| (name == "HOME").then(|| "/root".to_owned());
        assert_eq!(
            make_env(&["HOME".into(), "UNSET".into(), "X=1".into()], lookup),
            Ok(vec!["HOME=/root".into(), "UNSET".into(), "X=1".into()])
        );
    }

    #[test]
    fn shell_words_like_a_shell() {
        assert_eq!(
            shell_words(r#"/bin/sh -c 'echo "hi there"' a\ b "x\"y""#),
            Ok(vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo \"hi there\"".into(),
                "a b".into(),
                "x\"y".into()
            ])
        );
        assert_eq!(shell_words("  "), Ok(vec![]));
        assert_eq!(shell_words("''"), Ok(vec![String::new()]));
    }

    fn task(json: Value) -> TaskView {
        serde_json::from_value(json).expect("a task")
    }

    const NOW: &str = "2025-06-01T12:00:00Z";

    fn ps_fixture() -> Vec<TaskView> {
        let image = "whoami:latest@sha256:0123456789abcdef";
        vec![
            task(serde_json::json!({
                "ID": "aaaaaaaaaaaaaaaaaaaaaaaaa", "ServiceID": "svc1", "NodeID": "n1", "Slot": 2,
                "CreatedAt": "2025-06-01T11:59:00Z", "DesiredState": "running",
                "Spec": {"ContainerSpec": {"Image": image}},
                "Status": {"Timestamp": "2025-06-01T11:59:55Z", "State": "running"}
            })),
            task(serde_json::json!({
                "ID": "bbbbbbbbbbbbbbbbbbbbbbbbb", "ServiceID": "svc1", "NodeID": "n2", "Slot": 10,
                "CreatedAt": "2025-06-01T11:00:00Z", "DesiredState": "running",
                "Spec": {"ContainerSpec": {"Image": image}},
                "Status": {"Timestamp": "2025-06-01T11:58:30.5Z", "State": "preparing"}
            })),
            task(serde_json::json!({
                "ID": "ccccccccccccccccccccccccc", "ServiceID": "svc1", "NodeID": "n1", "Slot": 2,
                "CreatedAt": "2025-06-01T11:58:00Z", "DesiredState": "shutdown",
                "Spec": {"ContainerSpec": {"Image": image}},
                "Status": {"Timestamp": "2025-06-01T11:58:59Z", "State": "failed",
                           "Err": "task: non-zero exit (1) and then some more words"}
            })),
            task(serde_json::json!({
                "ID": "ddddddddddddddddddddddddd", "ServiceID": "svc1", "NodeID": "gone", "Slot": 2,
                "CreatedAt": "2025-06-01T10:00:00.250Z", "DesiredState": "shutdown",
                "Spec": {"ContainerSpec": {"Image": image}},
                "Status": {"Timestamp": "2025-06-01T10:00:01Z", "State": "shutdown"}
            })),
            task(serde_json::json!({
                "ID": "eeeeeeeeeeeeeeeeeeeeeeeee", "ServiceID": "svc1", "NodeID": "n2", "Slot": 9,
                "CreatedAt": "2025-06-01T11:59:59.999Z", "DesiredState": "running",
                "Spec": {"ContainerSpec": {"Image": image}},
                "Status": {"Timestamp": "2025-06-01T11:59:59.999Z", "State": "new"}
            })),
        ]
    }

    fn render_ps(trunc: bool) -> String {
        let services = BTreeMap::from([("svc1".to_owned(), "web".to_owned())]);
        let nodes = BTreeMap::from([
            ("n1".to_owned(), "node-1".to_owned()),
            ("n2".to_owned(), "node-2".to_owned()),
        ]);
        let now = parse_time(NOW).expect("time");
        let mut table = Table::new([
            "ID",
            "NAME",
            "IMAGE",
            "NODE",
            "DESIRED STATE",
            "CURRENT STATE",
            "ERROR",
            "PORTS",
        ]);
        for row in ps_rows(ps_fixture(), &services, &nodes, now, trunc) {
            table.row(row);
        }
        table.render()
    }

    #[test]
    fn ps_groups_slot_history_newest_first_and_truncates() {
        let expected = "\
ID             NAME        IMAGE           NODE      DESIRED STATE   CURRENT STATE                  ERROR                              PORTS
aaaaaaaaaaaa   web.2       whoami:latest   node-1    Running         Running 5 seconds ago
cccccccccccc    \\_ web.2   whoami:latest   node-1    Shutdown        Failed about a minute ago      \"task: non-zero exit (1) and t…\"
dddddddddddd    \\_ web.2   whoami:latest   gone      Shutdown        Shutdown 2 hours ago
eeeeeeeeeeee   web.9       whoami:latest   node-2    Running         New less than a second ago
bbbbbbbbbbbb   web.10      whoami:latest   node-2    Running         Preparing about a minute ago
";
        assert_eq!(render_ps(true), expected);
    }

    #[test]
    fn ps_no_trunc_keeps_ids_images_and_errors_whole() {
        let text = render_ps(false);
        assert!(
            text.contains("aaaaaaaaaaaaaaaaaaaaaaaaa   web.2 "),
            "{text}"
        );
        assert!(
            text.contains("whoami:latest@sha256:0123456789abcdef"),
            "{text}"
        );
        assert!(
            text.contains("\"task: non-zero exit (1) and then some more words\""),
            "{text}"
        );
    }

    #[test]
    fn ps_names_global_tasks_by_node_and_falls_back_to_ids() {
        let global = task(serde_json::json!({
            "ID": "t1", "ServiceID": "svc9", "NodeID": "n7", "DesiredState": "running",
            "Status": {"Timestamp": NOW, "State": "running"}
        }));
        let now = parse_time(NOW).expect("time");
        let rows = ps_rows(vec![global], &BTreeMap::new(), &BTreeMap::new(), now, true);
        assert_eq!(rows[0][1], "svc9.n7");
        assert_eq!(rows[0][3], "n7");
        assert_eq!(rows[0][5], "Running less than a second ago");
    }

    fn service(json: Value) -> ServiceView {
        serde_json::from_value(json).expect("a service")
    }

    #[test]
    fn ls_columns_like_docker() {
        let services = vec![
            service(serde_json::json!({
                "ID": "zzzzzzzzzzzzzzzzzzzzzzzzz", "Version": {"Index": 3},
                "Spec": {"Name": "web", "Mode": {"Replicated": {"Replicas": 3}},
                         "TaskTemplate": {"ContainerSpec": {"Image": "docker.io/library/nginx:1.27@sha256:abc"}},
                         "EndpointSpec": {"Mode": "vip", "Ports": [
                             {"Protocol": "tcp", "TargetPort": 90},
                             {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080}]}},
                // What the managers resolved, not the spec, is listed.
                "Endpoint": {"Spec": {}, "Ports": [
                    {"Protocol": "tcp", "TargetPort": 90, "PublishedPort": 30000, "PublishMode": "ingress"},
                    {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
                    {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 8081, "PublishMode": "ingress"},
                    {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "ingress"},
                    {"Protocol": "tcp", "TargetPort": 22, "PublishedPort": 2222, "PublishMode": "host"}]},
                "ServiceStatus": {"RunningTasks": 2, "DesiredTasks": 3, "CompletedTasks": 0}
            })),
            service(serde_json::json!({
                "ID": "yyyyyyyyyyyyyyyyyyyyyyyyy", "Version": {"Index": 4},
                "Spec": {"Name": "agent", "Mode": {"Global": {}},
                         "TaskTemplate": {"ContainerSpec": {"Image": "whoami:latest"}}},
                "ServiceStatus": {"RunningTasks": 3, "DesiredTasks": 3, "CompletedTasks": 0}
            })),
            service(serde_json::json!({
                "ID": "xxxxxxxxxxxxxxxxxxxxxxxxx", "Version": {"Index": 5},
                "Spec": {"Name": "capped", "Mode": {"Replicated": {"Replicas": 4}},
                         "TaskTemplate": {"ContainerSpec": {"Image": "busybox"},
                                          "Placement": {"MaxReplicas": 2}}}
            })),
        ];
        let expected = "\
ID             NAME      MODE         REPLICAS               IMAGE           PORTS
yyyyyyyyyyyy   agent     global       3/3                    whoami:latest
xxxxxxxxxxxx   capped    replicated   0/0 (max 2 per node)   busybox
zzzzzzzzzzzz   web       replicated   2/3                    nginx:1.27      *:8080-8081->80-81/tcp, *:30000->90/tcp, *:53->53/udp
";
        assert_eq!(ls_table(services), expected);
    }

    #[test]
    fn port_ranges_do_not_merge_overlapping_targets() {
        let port = |published, target| PortConfig {
            protocol: "tcp".into(),
            target_port: target,
            published_port: published,
            publish_mode: String::new(),
        };
        assert_eq!(
            ports_text(&[port(80, 80), port(81, 81), port(82, 80)]),
            "*:80-81->80-81/tcp, *:82->80/tcp"
        );
        assert_eq!(ports_text(&[port(80, 80), port(81, 80)]), "*:80-81->80/tcp");
        assert_eq!(ports_text(&[]), "");
    }

    #[test]
    fn names_sort_naturally() {
        let mut names = vec!["web.10", "web.9", "api", "web.1", "web.01"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["api", "web.1", "web.01", "web.9", "web.10"]);
    }

    #[test]
    fn images_lose_digests_like_docker_shows_them() {
        assert_eq!(display_image("whoami:latest@sha256:abc"), "whoami:latest");
        assert_eq!(
            display_image("registry:5000/app:v1"),
            "registry:5000/app:v1"
        );
        assert_eq!(display_image("busybox@sha256:abc"), "busybox@sha256:abc");
        assert_eq!(display_image("docker.io/library/redis:7"), "redis:7");
        assert_eq!(display_image("localhost:5000/app"), "localhost:5000/app");
    }

    #[test]
    fn pretty_follows_dockers_template() {
        let view = service(serde_json::json!({
            "ID": "svcid", "Version": {"Index": 1},
            "Spec": {
                "Name": "web", "Labels": {"tier": "front", "bare": ""},
                "Mode": {"Replicated": {"Replicas": 2}},
                "TaskTemplate": {
                    "ContainerSpec": {"Image": "whoami:latest", "Args": ["-port", "80"],
                                      "Env": ["A=1"], "Dir": "/srv", "User": "nobody",
                                      "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000}},
                    "Resources": {"Limits": {"NanoCPUs": 1_500_000_000, "MemoryBytes": 67_108_864},
                                  "Reservations": {}},
                    "Placement": {"Constraints": ["node.role==worker", "node.labels.a==b"],
                                  "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
                                  "MaxReplicas": 1}
                },
                "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5_000_000_000_i64,
                                 "MaxFailureRatio": 0, "Order": "stop-first"},
                "EndpointSpec": {"Mode": "vip"}
            }
        }));
        let expected = "
ID:\t\tsvcid
Name:\t\tweb
Labels:
 bare
 tier=front
Service Mode:\tReplicated
 Replicas:\t2
Placement:
 Constraints:\t[node.role==worker node.labels.a==b]
 Preferences:   [spread=node.labels.zone]
 Max Replicas Per Node:   1
UpdateConfig:
 Parallelism:\t1
 On failure:\tpause
 Monitoring Period: 5s
 Max failure ratio: 0
 Update order:      stop-first
ContainerSpec:
 Image:\t\twhoami:latest
 Args:\t\t-port 80 
 Env:\t\tA=1 
 Dir:\t\t/srv
 User: nobody
Resources:
 Limits:
  CPU:\t\t1.5
  Memory:\t64MiB
Endpoint Mode:\tvip
 Healthcheck:
  Interval = 2s
  Retries = 0
  StartPeriod =\t0s
  Timeout =\t0s
  Tests:
\t Test = CMD-SHELL
\t Test = true 
";
        assert_eq!(pretty(&view), expected);
    }

    #[test]
    fn pretty_lists_the_resolved_ports() {
        let view = service(serde_json::json!({
            "ID": "svcid",
            "Spec": {"Name": "web", "EndpointSpec": {"Mode": "vip", "Ports": [{"TargetPort": 80}]}},
            "Endpoint": {"Ports": [
                {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 30000, "PublishMode": "ingress"},
                {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "host"}]}
        }));
        let mut out = String::new();
        pretty_endpoint(&mut out, &view);
        assert_eq!(
            out,
            "\nEndpoint Mode:\tvip\nPorts:\n PublishedPort = 30000\n  Protocol = tcp\n  TargetPort = 80\n  PublishMode = ingress\n PublishedPort = 53\n  Protocol = udp\n  TargetPort = 53\n  PublishMode = host "
        );
    }

    #[test]
    fn publish_flags_become_endpoint_ports() {
        let spec = create(&[
            "-p",
            "8080:80",
            "--publish",
            "published=5353,target=53,protocol=udp,mode=host",
            "-p",
            "90",
            "whoami:latest",
        ])
        .expect("valid");
        assert_eq!(
            serde_json::to_value(&spec.endpoint_spec).expect("json"),
            serde_json::json!({"Mode": "vip", "Ports": [
                {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
                {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "host"},
                {"Protocol": "tcp", "TargetPort": 90, "PublishMode": "ingress"}]})
        );
        let error = create(&["-p", "1.2.3.4:80:80", "whoami:latest"]).expect_err("refused");
        assert!(error.contains("hostip is not supported"), "{error}");
    }

    #[test]
    fn filters_encode_as_dockers_json() {
        let filters =
            parse_filters(&["desired-state=running".into(), "node=n1".into()]).expect("valid");
        assert_eq!(
            filters_query(&filters),
            "%7B%22desired-state%22%3A%7B%22running%22%3Atrue%7D%2C%22node%22%3A%7B%22n1%22%3Atrue%7D%7D"
        );
        assert!(parse_filters(&["nonsense".into()]).is_err());
        assert_eq!(ellipsis("short", 30), "short");
    }
}
