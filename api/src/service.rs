//! Docker's service and task vocabulary, shared by the manager (which stores
//! service specs and task specs in its Raft state as they are), the agent
//! (which runs task specs) and the CLI: `ServiceSpec`, `TaskSpec`,
//! `ContainerSpec`, `HealthConfig`, `ResourceRequirements`, `RestartPolicy`,
//! `Placement`, `ServiceMode`, `UpdateConfig` and `TaskState`, field for
//! field as
//! `reference/docker-engine-api-v1.56.yaml` defines them (Pascal-case names,
//! durations in nanoseconds). Unknown fields are ignored and absent ones
//! take Docker's defaults, as dockerd does.

use std::{collections::BTreeMap, fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};

use crate::{
    go_json::{is_default, nullable},
    network::NetworkAttachmentConfig,
};

/// Docker's default `--stop-grace-period`: 10 s.
pub const DEFAULT_STOP_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// Docker's default `--restart-delay`: 5 s.
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(5);
/// Docker's default health check interval and timeout: 30 s.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(30);
/// Docker's default health check retries: 3.
pub const DEFAULT_HEALTH_RETRIES: u32 = 3;
/// Docker's default `--update-monitor` (and `--rollback-monitor`): 5 s.
pub const DEFAULT_UPDATE_MONITOR: Duration = Duration::from_secs(5);

/// A Go `time.Duration` (nanoseconds) as a [`Duration`]; negative is zero.
#[must_use]
pub fn nanos(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

/// What `docker service create|update` sends.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceSpec {
    /// The service's name; unique in the swarm.
    pub name: String,
    /// User-defined metadata (`--label`).
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// What each task runs.
    pub task_template: TaskSpec,
    /// Replicated with a count, or global.
    pub mode: ServiceMode,
    /// Published ports and the load-balancing mode (the routing mesh), as
    /// sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_spec: Option<EndpointSpec>,
    /// Rolling update settings, kept as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    /// Rollback settings, kept as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<RollbackConfig>,
}

impl ServiceSpec {
    /// Whether the service gets a virtual IP per network (`vip`, the
    /// default) or is reached through its tasks' addresses (`dnsrr`).
    #[must_use]
    pub fn uses_vip(&self) -> bool {
        self.endpoint_spec
            .as_ref()
            .is_none_or(|e| e.mode != "dnsrr")
    }

    /// `EndpointSpec.Ports` as the user sent them.
    #[must_use]
    pub fn ports(&self) -> &[PortConfig] {
        self.endpoint_spec
            .as_ref()
            .map_or(&[][..], |e| e.ports.as_slice())
    }
}

/// How a service is reached (Docker's `EndpointSpec`): its resolution mode
/// and published ports, kept as sent (absent fields stay absent).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSpec {
    /// `vip` (the default when empty) or `dnsrr`.
    #[serde(
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub mode: String,
    /// The published ports.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortConfig>,
}

/// Replicated (with a count) or global (one task per eligible node).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum ServiceMode {
    /// A fixed number of tasks.
    Replicated(ReplicatedService),
    /// One task on every eligible node.
    Global(GlobalService),
}

impl Default for ServiceMode {
    /// Docker's default: replicated, one replica.
    fn default() -> Self {
        Self::Replicated(ReplicatedService { replicas: Some(1) })
    }
}

impl ServiceMode {
    /// `replicated` or `global`, as `docker service ls` prints it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Replicated(_) => "replicated",
            Self::Global(_) => "global",
        }
    }

    /// The desired replica count of a replicated service (global: `None`).
    #[must_use]
    pub fn replicas(&self) -> Option<u64> {
        match self {
            Self::Replicated(r) => Some(r.replicas.unwrap_or(1)),
            Self::Global(_) => None,
        }
    }
}

/// `{"Replicas": N}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReplicatedService {
    /// How many tasks; absent means 1.
    pub replicas: Option<u64>,
}

/// `{}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalService {}

/// What a task runs and where (Docker's `TaskSpec`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskSpec {
    /// The container.
    pub container_spec: ContainerSpec,
    /// Limits and reservations.
    pub resources: ResourceRequirements,
    /// When a finished task is replaced.
    pub restart_policy: RestartPolicy,
    /// Where tasks may go.
    pub placement: Placement,
    /// Bumped by `docker service update --force` to replace every task.
    pub force_update: u64,
    /// Overlay networks the task joins (`--network`).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkAttachmentConfig>,
}

/// The container of a task (Docker's `ContainerSpec`, the supported part).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerSpec {
    /// The image reference.
    pub image: String,
    /// User-defined metadata (`--container-label`).
    #[serde(deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    /// Replaces the image's entrypoint (`--entrypoint`).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Replaces the image's command (the words after the image).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The container's hostname (default: the task's name).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// `NAME=value` pairs added to the image's environment (`-e`).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// The working directory (`--workdir`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dir: String,
    /// `user[:group]`, names or numbers (`--user`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Mount the root filesystem read-only (`--read-only`).
    pub read_only: bool,
    /// The signal that asks the task to stop (default `SIGTERM`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    /// How long to wait after the stop signal before `SIGKILL`, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<i64>,
    /// The health check (`--health-cmd` …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// Run an init inside the container (`--init`); accepted, not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
}

impl ContainerSpec {
    /// The stop grace period, Docker's 10 s when unset.
    #[must_use]
    pub fn stop_grace(&self) -> Duration {
        self.stop_grace_period
            .map_or(DEFAULT_STOP_GRACE_PERIOD, nanos)
    }
}

/// A health check (Docker's `HealthConfig`); durations in ns, 0 = default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` off, `["CMD", args…]` or
    /// `["CMD-SHELL", command]`.
    #[serde(deserialize_with = "nullable")]
    pub test: Vec<String>,
    /// Between checks.
    pub interval: i64,
    /// A check running longer fails.
    pub timeout: i64,
    /// Consecutive failures that make the task unhealthy.
    pub retries: i64,
    /// Failures during this time after start do not count.
    pub start_period: i64,
}

impl HealthConfig {
    /// The command to run in the container, or `None` when checks are off.
    #[must_use]
    pub fn command(&self) -> Option<Vec<String>> {
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            Some((kind, [shell])) if kind == "CMD-SHELL" => {
                Some(vec!["/bin/sh".into(), "-c".into(), shell.clone()])
            }
            _ => None,
        }
    }

    /// The interval, 30 s when unset.
    #[must_use]
    pub fn interval(&self) -> Duration {
        non_zero_or(self.interval, DEFAULT_HEALTH_INTERVAL)
    }

    /// The timeout, 30 s when unset.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        non_zero_or(self.timeout, DEFAULT_HEALTH_INTERVAL)
    }

    /// The retries, 3 when unset.
    #[must_use]
    pub fn retries(&self) -> u32 {
        u32::try_from(self.retries)
            .ok()
            .filter(|&r| r > 0)
            .unwrap_or(DEFAULT_HEALTH_RETRIES)
    }

    /// The start period, 0 when unset.
    #[must_use]
    pub fn start_period(&self) -> Duration {
        nanos(self.start_period)
    }
}

fn non_zero_or(ns: i64, default: Duration) -> Duration {
    if ns > 0 { nanos(ns) } else { default }
}

/// Limits and reservations (Docker's `ResourceRequirements`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ResourceRequirements {
    /// What a task may use at most (`--limit-cpu`, `--limit-memory`).
    pub limits: Resources,
    /// What the scheduler sets aside on the node (`--reserve-cpu`,
    /// `--reserve-memory`).
    pub reservations: Resources,
}

/// CPU in billionths of a CPU, memory in bytes; 0 means none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Resources {
    /// Billionths of a CPU.
    #[serde(rename = "NanoCPUs")]
    pub nano_cpus: i64,
    /// Bytes.
    pub memory_bytes: i64,
}

/// When a task that ended is replaced (Docker's `RestartPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// `none`, `on-failure` or `any` (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<RestartCondition>,
    /// Between the end of a task and the start of its replacement, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<i64>,
    /// Restarts allowed (within `window` if set); 0 means unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    /// The window `max_attempts` counts in, ns; 0 means forever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<i64>,
}

impl RestartPolicy {
    /// The condition, `any` when unset.
    #[must_use]
    pub fn condition(&self) -> RestartCondition {
        self.condition.unwrap_or(RestartCondition::Any)
    }

    /// The delay, Docker's 5 s when unset.
    #[must_use]
    pub fn delay(&self) -> Duration {
        self.delay.map_or(DEFAULT_RESTART_DELAY, nanos)
    }
}

/// `none`, `on-failure` or `any`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    /// Never replace an ended task.
    None,
    /// Replace a task that failed (non-zero exit), not one that completed.
    OnFailure,
    /// Always replace.
    Any,
}

impl RestartCondition {
    /// Docker's spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::OnFailure => "on-failure",
            Self::Any => "any",
        }
    }
}

impl FromStr for RestartCondition {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "on-failure" => Ok(Self::OnFailure),
            "any" => Ok(Self::Any),
            other => Err(format!(
                "invalid restart condition {other:?}: expected none, on-failure or any"
            )),
        }
    }
}

/// How a service's tasks are replaced when its spec changes (Docker's
/// `UpdateConfig`, `--update-*`), kept as sent: a field the user did not
/// send stays absent, and Docker's default applies. Durations in ns.
/// `FailureAction` and `Order` stay text so that the spec's validation can
/// name an unknown value ([`UpdateConfig::failure_action`],
/// [`UpdateConfig::order`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateConfig {
    /// Tasks replaced at once; 0 means all at once (Docker's default: 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u64>,
    /// Between two batches, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<i64>,
    /// `pause` (the default when empty or absent), `continue` or `rollback`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_action: Option<String>,
    /// How long a new task is watched for failure, ns; 0 means Docker's 5 s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor: Option<i64>,
    /// The fraction of tasks (0 to 1) that may fail before the failure
    /// action is taken. Whole numbers are written as Go writes them (`0`,
    /// not `0.0`), so a spec from the docker CLI inspects back as sent.
    #[serde(serialize_with = "go_float", skip_serializing_if = "Option::is_none")]
    pub max_failure_ratio: Option<f64>,
    /// `stop-first` (the default when empty or absent) or `start-first`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// A JSON number cannot be NaN, and no other value breaks reflexivity of
/// `max_failure_ratio`, so the equality of configs is total.
impl Eq for UpdateConfig {}

/// How a failed update is rolled back (Docker's `RollbackConfig`,
/// `--rollback-*`): the same fields as [`UpdateConfig`].
pub type RollbackConfig = UpdateConfig;

impl UpdateConfig {
    /// The failure action, `pause` when empty or absent.
    ///
    /// Returns why the value is not one Docker knows.
    pub fn failure_action(&self) -> Result<UpdateFailureAction, String> {
        self.failure_action.as_deref().unwrap_or_default().parse()
    }

    /// The order, `stop-first` when empty or absent.
    ///
    /// Returns why the value is not one Docker knows.
    pub fn order(&self) -> Result<UpdateOrder, String> {
        self.order.as_deref().unwrap_or_default().parse()
    }

    /// The monitoring period, Docker's 5 s when unset or 0.
    #[must_use]
    pub fn monitor(&self) -> Duration {
        non_zero_or(self.monitor.unwrap_or(0), DEFAULT_UPDATE_MONITOR)
    }
}

/// What an update does when too many new tasks fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateFailureAction {
    /// Stop updating; the service stays half updated.
    Pause,
    /// Go on with the next batch.
    Continue,
    /// Go back to the previous spec.
    Rollback,
}

impl FromStr for UpdateFailureAction {
    type Err = String;

    /// Docker's spelling; empty is the default, `pause`, as dockerd reads it.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" | "pause" => Ok(Self::Pause),
            "continue" => Ok(Self::Continue),
            "rollback" => Ok(Self::Rollback),
            other => Err(format!("{other:?}: expected pause, continue or rollback")),
        }
    }
}

/// Whether a task's replacement starts before or after it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateOrder {
    /// Stop the old task, then start the new one.
    StopFirst,
    /// Start the new task, then stop the old one (both run for a while).
    StartFirst,
}

impl FromStr for UpdateOrder {
    type Err = String;

    /// Docker's spelling; empty is the default, `stop-first`, as dockerd
    /// reads it.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" | "stop-first" => Ok(Self::StopFirst),
            "start-first" => Ok(Self::StartFirst),
            other => Err(format!("{other:?}: expected stop-first or start-first")),
        }
    }
}

/// Writes a float as Go's `encoding/json` does: a whole number without a
/// fraction (`0`, `1`), any other as the shortest decimal that reads back.
#[expect(clippy::ref_option, reason = "serde's signature")]
fn go_float<S: serde::Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match *value {
        Some(v) => match go_whole_number(v) {
            Some(whole) => serializer.serialize_i64(whole),
            None => serializer.serialize_f64(v),
        },
        None => serializer.serialize_none(),
    }
}

/// `v` as an integer when it is a whole number an f64 holds exactly.
fn go_whole_number(v: f64) -> Option<i64> {
    /// 2^53: every whole number up to it is exact in an f64 and an i64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    #[expect(
        clippy::cast_possible_truncation,
        reason = "whole and within ±2^53, so exact"
    )]
    (v.fract() == 0.0 && v.abs() <= EXACT).then_some(v as i64)
}

/// Where tasks may go (Docker's `Placement`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Placement {
    /// `node.id|node.hostname|node.role|node.labels.X ==|!= value`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    /// `spread=node.labels.X`, in order of precedence.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub preferences: Vec<PlacementPreference>,
    /// Tasks of the service a node may hold; 0 means unlimited (and is
    /// left out, as Docker leaves it out).
    #[serde(skip_serializing_if = "is_default")]
    pub max_replicas: u64,
}

/// `{"Spread": {"SpreadDescriptor": "node.labels.X"}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PlacementPreference {
    /// Spread tasks evenly over the values of a label.
    pub spread: SpreadOver,
}

/// The label spread over.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SpreadOver {
    /// `node.labels.X` (or `engine.labels.X`).
    pub spread_descriptor: String,
}

/// The life of a task, in order (swarmkit's `TaskState`). A task only moves
/// forward; everything from [`TaskState::Complete`] on is final.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Created by the orchestrator.
    #[default]
    New,
    /// Waiting for resources or a node.
    Pending,
    /// Given to a node.
    Assigned,
    /// The node took it.
    Accepted,
    /// The node prepares it (image, bundle).
    Preparing,
    /// Prepared, not started.
    Ready,
    /// Started, not yet running (or not yet healthy).
    Starting,
    /// Running (and healthy, when it has a health check).
    Running,
    /// Exited with status 0.
    Complete,
    /// Stopped on request.
    Shutdown,
    /// Exited with a non-zero status, or could not be started.
    Failed,
    /// The node refused it.
    Rejected,
    /// To be removed.
    Remove,
    /// Its node is gone.
    Orphaned,
}

impl TaskState {
    /// Docker's spelling, lower case (`running`, `shutdown`…).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Pending => "pending",
            Self::Assigned => "assigned",
            Self::Accepted => "accepted",
            Self::Preparing => "preparing",
            Self::Ready => "ready",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Shutdown => "shutdown",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::Remove => "remove",
            Self::Orphaned => "orphaned",
        }
    }

    /// Whether the task has ended (complete or later).
    #[must_use]
    pub fn is_final(self) -> bool {
        self >= Self::Complete
    }

    /// The state `docker service ps` capitalises (`Running`, `Shutdown`…).
    #[must_use]
    pub fn title(self) -> String {
        let s = self.as_str();
        let mut chars = s.chars();
        chars.next().map_or_else(String::new, |first| {
            first.to_ascii_uppercase().to_string() + chars.as_str()
        })
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase()))
            .map_err(|_| format!("invalid task state {s:?}"))
    }
}

/// What a node reports about a task it runs (Docker's `TaskStatus`; time as
/// Unix milliseconds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskStatus {
    /// When the state was entered (Unix ms).
    pub timestamp_ms: u64,
    /// The observed state.
    pub state: TaskState,
    /// What is happening, for humans (`started`, `pulling image`…).
    pub message: String,
    /// Why the task failed or was rejected; shown by `docker service ps`.
    pub err: String,
    /// The runtime's container ID.
    pub container_id: String,
    /// The container's main process, while it runs.
    pub pid: u32,
    /// The exit status, once it exited.
    pub exit_code: Option<i64>,
}

/// A task as the dispatcher hands it to its node: what to run and in which
/// state the managers want it (on the wire: `shoal.v1.TaskAssignment`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskAssignment {
    /// The task's ID; also its container's ID.
    pub id: String,
    /// The service's ID.
    pub service_id: String,
    /// `<service>.<slot>` or `<service>.<node ID>`: the task's name without
    /// its ID.
    pub name: String,
    /// What to run.
    pub spec: TaskSpec,
    /// `running` to run it, `shutdown` (or later) to stop it.
    pub desired_state: TaskState,
    /// The last status the managers recorded.
    pub status: TaskStatus,
    /// The task's endpoint on each of its overlay networks.
    pub networks: Vec<TaskNetwork>,
}

/// Where a task's address on an overlay network lives: what every node's
/// data plane maps `(VNI, address)` to (on the wire:
/// `shoal.v1.OverlayEndpoint`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlayEndpoint {
    /// The network's VXLAN network identifier.
    pub vni: u32,
    /// The task's address on it.
    pub addr: std::net::Ipv4Addr,
    /// The node running the task.
    pub node_id: String,
    /// That node's underlay address (the VXLAN tunnel's far end).
    pub node_addr: std::net::Ipv4Addr,
    /// The task.
    pub task_id: String,
    /// The task's service.
    pub service_id: String,
    /// The service's name (what `tasks.<name>` resolves through).
    pub service_name: String,
    /// Whether the task is running (and healthy): only those are load
    /// balanced to and resolved.
    pub running: bool,
}

/// A service's virtual IP on one overlay network (`vip` endpoint mode; on
/// the wire: `shoal.v1.ServiceVip`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceVip {
    /// The service.
    pub service_id: String,
    /// Its name (what `<name>` resolves to).
    pub service_name: String,
    /// Its extra DNS names on this network (`--network name=…,alias=…`).
    pub aliases: Vec<String>,
    /// The network's VXLAN network identifier.
    pub vni: u32,
    /// The virtual IP.
    pub vip: std::net::Ipv4Addr,
    /// The service's published ports, resolved (auto-allocated ones
    /// filled in), on its VIP of the ingress network only: what the
    /// routing mesh of every node (`ingress` mode) or of the nodes running
    /// a task (`host` mode) serves.
    pub ports: Vec<PortConfig>,
}

/// A published port (Docker's `PortConfig`): `EndpointSpec.Ports` as the
/// user sent it and `Endpoint.Ports` as the managers resolved it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortConfig {
    /// An optional name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `tcp` (empty means tcp), `udp` or `sctp`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    /// The port inside the task.
    pub target_port: u16,
    /// The port on the nodes; `0` in a spec: allocated by the managers.
    #[serde(skip_serializing_if = "is_default")]
    pub published_port: u16,
    /// `ingress` (empty means ingress: every node, routing mesh) or `host`
    /// (only nodes running a task, straight to that task).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub publish_mode: String,
}

impl PortConfig {
    /// The protocol, `tcp` when unset.
    #[must_use]
    pub fn protocol(&self) -> &str {
        if self.protocol.is_empty() {
            "tcp"
        } else {
            &self.protocol
        }
    }

    /// Whether the port is published on the nodes running a task only
    /// (`mode=host`) rather than on every node (`mode=ingress`).
    #[must_use]
    pub fn is_host_mode(&self) -> bool {
        self.publish_mode == "host"
    }

    /// The publish mode, `ingress` when unset.
    #[must_use]
    pub fn publish_mode(&self) -> &str {
        if self.publish_mode.is_empty() {
            "ingress"
        } else {
            &self.publish_mode
        }
    }

    /// The port with its defaults spelled out (`tcp`, `ingress`), as
    /// Docker shows resolved ports in `Endpoint.Ports`.
    #[must_use]
    pub fn with_defaults(&self) -> Self {
        Self {
            name: self.name.clone(),
            protocol: self.protocol().to_owned(),
            target_port: self.target_port,
            published_port: self.published_port,
            publish_mode: self.publish_mode().to_owned(),
        }
    }
}

impl ServiceVip {
    /// `<service ID>/<VNI>`: the VIP's key in the dispatcher's stream.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}/{}", self.service_id, self.vni)
    }
}

impl OverlayEndpoint {
    /// `<VNI>/<address>`: the endpoint's key in the dispatcher's stream.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}/{}", self.vni, self.addr)
    }
}

/// A task's endpoint on one overlay network: what its interface gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskNetwork {
    /// The network's ID.
    pub network_id: String,
    /// The network's name.
    pub name: String,
    /// The network's VXLAN network identifier.
    pub vni: u32,
    /// The task's address.
    pub addr: std::net::Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix_len: u8,
    /// The network's gateway.
    pub gateway: std::net::Ipv4Addr,
    /// The MTU the network asks for (`com.docker.network.driver.mtu`);
    /// `None`: the node derives it from its underlay.
    pub mtu: Option<u32>,
    /// Whether this is the routing mesh's `ingress` network: the task's
    /// default route goes through it, so that its replies to clients
    /// outside the swarm go back through the mesh.
    #[serde(default)]
    pub ingress: bool,
}

impl TaskAssignment {
    /// `<service>.<slot>.<task ID>`: the container's hostname by default and
    /// the name `docker ps` would show.
    #[must_use]
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.name, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_cli_create_body_parses_with_defaults() {
        let body = r#"{"Name":"web","Labels":null,"TaskTemplate":{"ContainerSpec":{"Image":"whoami:latest","Init":false,"StopGracePeriod":10000000000,"DNSConfig":{},"Isolation":"default"},"Resources":{"Limits":{},"Reservations":{}},"RestartPolicy":{"Condition":"on-failure","MaxAttempts":0},"Placement":{"Constraints":["node.role==worker"]},"ForceUpdate":0,"Runtime":"container"},"Mode":{"Replicated":{"Replicas":5}},"EndpointSpec":{"Mode":"vip"}}"#;
        let spec: ServiceSpec = serde_json::from_str(body).expect("parses");
        assert_eq!(spec.name, "web");
        assert_eq!(spec.mode.replicas(), Some(5));
        assert_eq!(
            spec.task_template.container_spec.stop_grace(),
            Duration::from_secs(10)
        );
        let restart = &spec.task_template.restart_policy;
        assert_eq!(restart.condition(), RestartCondition::OnFailure);
        assert_eq!(restart.delay(), DEFAULT_RESTART_DELAY);
        assert_eq!(
            spec.task_template.placement.constraints,
            ["node.role==worker"]
        );
        let global: ServiceSpec =
            serde_json::from_str(r#"{"Name":"g","Mode":{"Global":{}}}"#).expect("parses");
        assert_eq!(global.mode.name(), "global");
        assert_eq!(global.mode.replicas(), None);
    }

    #[test]
    fn update_configs_read_back_as_sent() {
        // What docker 28 sends for `service create --update-parallelism 2
        // --update-delay 3s --update-failure-action rollback
        // --update-monitor 7s --update-max-failure-ratio 0.2 --update-order
        // start-first --rollback-…`, for `--update-parallelism 2` alone,
        // and what a spec with some of the fields (compose) has.
        for config in [
            r#"{"Parallelism":2,"Delay":3000000000,"FailureAction":"rollback","Monitor":7000000000,"MaxFailureRatio":0.2,"Order":"start-first"}"#,
            r#"{"Parallelism":0,"Delay":1000000000,"FailureAction":"continue","Monitor":2000000000,"MaxFailureRatio":0.5,"Order":"stop-first"}"#,
            r#"{"Parallelism":2,"FailureAction":"pause","Monitor":5000000000,"MaxFailureRatio":0,"Order":"stop-first"}"#,
            r#"{"Parallelism":1,"MaxFailureRatio":1,"Order":""}"#,
            r#"{"Delay":1000000000}"#,
            "{}",
        ] {
            let parsed: UpdateConfig = serde_json::from_str(config).expect("parses");
            assert_eq!(serde_json::to_string(&parsed).expect("json"), config);
        }
        let docker: UpdateConfig = serde_json::from_str(
            r#"{"Parallelism":2,"Delay":3000000000,"FailureAction":"rollback","Monitor":7000000000,"MaxFailureRatio":0.2,"Order":"start-first"}"#,
        )
        .expect("parses");
        assert_eq!(docker.parallelism, Some(2));
        assert_eq!(docker.max_failure_ratio, Some(0.2));
        assert_eq!(docker.failure_action(), Ok(UpdateFailureAction::Rollback));
        assert_eq!(docker.order(), Ok(UpdateOrder::StartFirst));
        assert_eq!(docker.monitor(), Duration::from_secs(7));
    }

    #[test]
    fn update_config_defaults_and_unknown_values() {
        let absent = UpdateConfig::default();
        assert_eq!(absent.failure_action(), Ok(UpdateFailureAction::Pause));
        assert_eq!(absent.order(), Ok(UpdateOrder::StopFirst));
        assert_eq!(absent.monitor(), DEFAULT_UPDATE_MONITOR);
        let bogus = UpdateConfig {
            failure_action: Some("bogus".into()),
            order: Some("sideways".into()),
            monitor: Some(0),
            ..UpdateConfig::default()
        };
        assert_eq!(
            bogus.failure_action(),
            Err(r#""bogus": expected pause, continue or rollback"#.into())
        );
        assert_eq!(
            bogus.order(),
            Err(r#""sideways": expected stop-first or start-first"#.into())
        );
        assert_eq!(bogus.monitor(), DEFAULT_UPDATE_MONITOR);
    }

    #[test]
    fn health_commands() {
        let shell = HealthConfig {
            test: vec!["CMD-SHELL".into(), "wget -q localhost".into()],
            ..HealthConfig::default()
        };
        assert_eq!(
            shell.command(),
            Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                "wget -q localhost".into()
            ])
        );
        assert_eq!(shell.retries(), 3);
        assert_eq!(shell.interval(), DEFAULT_HEALTH_INTERVAL);
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..HealthConfig::default()
        };
        assert_eq!(none.command(), None);
    }

    #[test]
    fn task_states_order_and_spell_like_docker() {
        assert!(TaskState::Pending < TaskState::Running);
        assert!(TaskState::Failed.is_final());
        assert!(!TaskState::Running.is_final());
        assert_eq!(TaskState::Shutdown.title(), "Shutdown");
        assert_eq!("Running".parse::<TaskState>(), Ok(TaskState::Running));
        assert!("bogus".parse::<TaskState>().is_err());
    }
}
