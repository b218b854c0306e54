//! The flags `shoal service create` and `shoal service update` share
//! ([`ServiceFlags`]), as docker's: each one given sets its field of the
//! spec ([`ServiceFlags::apply`]), the others leave theirs as they are;
//! and the value parsers of service flags.

use clap::Args;
use shoal_api::service::{
    HealthConfig, PlacementPreference, RestartCondition, RestartPolicy, ServiceSpec, SpreadOver,
};

use crate::{
    duration::parse_go_duration,
    flag_values::{Words, parse_words},
    units::{parse_nano_cpus, parse_ram_bytes},
};

/// The flags `shoal service create` and `shoal service update` share, as
/// docker's: each one given sets its field of the spec, the others leave
/// theirs as they are.
#[derive(Debug, Args)]
pub(super) struct ServiceFlags {
    /// Exit immediately instead of waiting for the service to converge.
    #[arg(short, long)]
    pub(super) detach: bool,
    /// Suppress progress output.
    #[arg(short, long)]
    pub(super) quiet: bool,
    /// Number of tasks.
    #[arg(long, value_parser = parse_replicas, allow_hyphen_values = true)]
    pub(super) replicas: Option<u64>,
    /// Maximum number of tasks per node (default 0 = unlimited).
    #[arg(long)]
    pub(super) replicas_max_per_node: Option<u64>,
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

impl ServiceFlags {
    /// Refuses flags that contradict each other, whatever the spec.
    pub(super) fn check(&self) -> Result<(), String> {
        if self.no_healthcheck && self.any_health_setting() {
            return Err("--no-healthcheck conflicts with --health-* options".into());
        }
        Ok(())
    }

    /// Sets the fields of `spec` these flags give, as docker's `create`
    /// and `update` do; the others stay as they are.
    pub(super) fn apply(&self, spec: &mut ServiceSpec) -> Result<(), String> {
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
pub(super) fn parse_placement_pref(value: &str) -> Result<PlacementPreference, String> {
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
