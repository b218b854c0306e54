//! Builders for unit tests of the state machine and of the modules that
//! read the state (scheduler, orchestrator, dispatcher): objects made
//! directly, without `apply`; and [`Sim`], which drives `apply` the way the
//! Raft log and the agents do. The orchestrator's rounds on a [`Sim`] live
//! with the orchestrator (`orchestrator::simulation`), which reads the state.

use std::collections::BTreeMap;

use shoal_api::service::{ServiceMode, ServiceSpec, TaskSpec, TaskState, TaskStatus};

use super::{
    ApplyMeta, Availability, Cluster, ClusterState, Command, JoinTokens, Node, NodeDescription,
    NodeResources, NodeRole, NodeSpec, NodeState, NodeStatusRecord, Platform, Rejected, Response,
    RootCaRecord, Service, SwarmSpec, Task, apply,
    types::{DEFAULT_ADDR_POOL, DEFAULT_DATA_PATH_PORT, DEFAULT_SUBNET_SIZE},
};

/// A Ready, active worker with these labels, 4 CPUs and 8 GiB.
pub(crate) fn node_with(id: &str, hostname: &str, labels: &[(&str, &str)]) -> Node {
    Node {
        id: id.to_owned(),
        version: 1,
        created_at_ms: 0,
        updated_at_ms: 0,
        spec: NodeSpec {
            name: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            role: NodeRole::Worker,
            availability: Availability::Active,
        },
        description: NodeDescription {
            hostname: hostname.to_owned(),
            platform: Platform {
                architecture: "x86_64".to_owned(),
                os: "linux".to_owned(),
            },
            engine_version: "0.1.0".to_owned(),
            tls: None,
            resources: NodeResources {
                nano_cpus: 4_000_000_000,
                memory_bytes: 8 << 30,
            },
        },
        status: NodeStatusRecord {
            state: NodeState::Ready,
            message: String::new(),
            addr: "198.18.0.1".to_owned(),
        },
        manager: None,
    }
}

/// A service running `whoami:latest` in `mode`.
pub(crate) fn service_with(id: &str, name: &str, mode: ServiceMode) -> Service {
    let mut spec = ServiceSpec {
        name: name.to_owned(),
        mode,
        task_template: TaskSpec::default(),
        ..ServiceSpec::default()
    };
    spec.task_template.container_spec.image = "whoami:latest".to_owned();
    Service {
        id: id.to_owned(),
        version: 1,
        created_at_ms: 0,
        updated_at_ms: 0,
        spec,
        previous_spec: None,
        virtual_ips: BTreeMap::new(),
        ports: Vec::new(),
    }
}

/// A swarm with Docker's default spec and no nodes, as `apply` would have
/// it after `InitCluster` (without the first node, with the ingress
/// network).
pub(crate) fn swarm() -> ClusterState {
    let mut state = ClusterState {
        cluster: Some(Cluster {
            id: "swarm0".to_owned(),
            version: 1,
            created_at_ms: 0,
            updated_at_ms: 0,
            spec: SwarmSpec::default(),
            root_ca: RootCaRecord {
                cert_pem: String::new(),
                key_pem: String::new(),
                digest: String::new(),
            },
            join_tokens: JoinTokens {
                worker: "SWMTKN-1-d-w".to_owned(),
                manager: "SWMTKN-1-d-m".to_owned(),
            },
            default_addr_pool: vec![DEFAULT_ADDR_POOL.to_owned()],
            subnet_size: DEFAULT_SUBNET_SIZE,
            data_path_port: DEFAULT_DATA_PATH_PORT,
        }),
        ..ClusterState::default()
    };
    super::apply_networks::create_network(
        &mut state,
        &ApplyMeta {
            index: 1,
            now_unix_ms: 0,
        },
        super::apply_networks::ingress_network_id("swarm0"),
        super::apply_networks::ingress_network_spec(),
    )
    .expect("the ingress network");
    state
}

/// When a [`Sim`] starts (Unix ms).
pub(crate) const SIM_T0_MS: u64 = 1_700_000_000_000;

/// A swarm driven the way the leader drives it: every command is applied
/// at the next log index with the simulated clock, and agents are simulated
/// by reporting task states.
pub(crate) struct Sim {
    /// The replicated state.
    pub(crate) state: ClusterState,
    /// The index of the last applied entry.
    pub(crate) index: u64,
    /// The leader's clock (Unix ms).
    pub(crate) now_ms: u64,
    /// Task IDs handed out so far (new tasks are named `task0001`, …).
    pub(crate) next_task: u64,
}

impl Sim {
    /// A swarm with these nodes (inserted as they are).
    pub(crate) fn new(nodes: &[Node]) -> Self {
        let mut state = swarm();
        for node in nodes {
            state.nodes.insert(node.id.clone(), node.clone());
        }
        Self {
            state,
            index: 1,
            now_ms: SIM_T0_MS,
            next_task: 0,
        }
    }

    /// Applies `command` at the next index and the current time.
    pub(crate) fn apply(&mut self, command: Command) -> Result<Response, Rejected> {
        self.index += 1;
        let meta = ApplyMeta {
            index: self.index,
            now_unix_ms: self.now_ms,
        };
        apply(&mut self.state, &meta, command)
    }

    /// Applies `command`, which must succeed.
    pub(crate) fn ok(&mut self, command: Command) -> Response {
        let kind = command.kind();
        self.apply(command)
            .unwrap_or_else(|rejected| panic!("{kind} rejected: {rejected}"))
    }

    /// Applies `command`, which must be rejected without changing the state.
    pub(crate) fn rejected(&mut self, command: Command) -> Rejected {
        let before = self.state.clone();
        let kind = command.kind();
        let result = self.apply(command);
        assert_eq!(self.state, before, "a rejected {kind} changed the state");
        match result {
            Err(rejected) => rejected,
            Ok(response) => panic!("{kind} accepted: {response:?}"),
        }
    }

    /// Moves the clock.
    pub(crate) fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    /// The node of `task_id` reports `status` for it.
    pub(crate) fn report_status(&mut self, task_id: &str, status: TaskStatus) -> Response {
        let node_id = self.task(task_id).node_id.clone();
        self.ok(Command::ReportTaskStatus {
            node_id,
            updates: vec![(task_id.to_owned(), status)],
        })
    }

    /// The node of `task_id` reports it in `state`; a failure exits 1, a
    /// completion 0.
    pub(crate) fn report(&mut self, task_id: &str, state: TaskState) {
        let exit_code = match state {
            TaskState::Failed => Some(1),
            TaskState::Complete | TaskState::Shutdown => Some(0),
            _ => None,
        };
        self.report_status(
            task_id,
            TaskStatus {
                state,
                message: state.as_str().to_owned(),
                exit_code,
                ..TaskStatus::default()
            },
        );
    }

    /// Every Ready node does what the managers want: starts its assigned
    /// tasks wanted running (they report `running`) and stops those wanted
    /// shut down (`shutdown`). Returns how many tasks changed.
    pub(crate) fn agents(&mut self) -> usize {
        let mut reports: BTreeMap<String, Vec<(String, TaskStatus)>> = BTreeMap::new();
        for task in self.state.tasks.values() {
            let ready = self
                .state
                .nodes
                .get(&task.node_id)
                .is_some_and(|n| n.status.state == NodeState::Ready);
            if !ready || task.status.state.is_final() {
                continue;
            }
            let state = if task.desired_state > TaskState::Running {
                TaskState::Shutdown
            } else if task.status.state < TaskState::Running {
                TaskState::Running
            } else {
                continue;
            };
            reports.entry(task.node_id.clone()).or_default().push((
                task.id.clone(),
                TaskStatus {
                    state,
                    message: state.as_str().to_owned(),
                    ..TaskStatus::default()
                },
            ));
        }
        let mut changed = 0;
        for (node_id, updates) in reports {
            if let Response::TasksWritten { count } =
                self.ok(Command::ReportTaskStatus { node_id, updates })
            {
                changed += count;
            }
        }
        changed
    }

    /// Creates `service` (its ID and spec), which must succeed.
    pub(crate) fn create(&mut self, service: &Service) {
        self.ok(Command::CreateService {
            id: service.id.clone(),
            spec: service.spec.clone(),
        });
    }

    /// Updates the service `id` with `change` at its current version.
    pub(crate) fn update(&mut self, id: &str, change: impl FnOnce(&mut ServiceSpec)) {
        let service = &self.state.services[id];
        let mut spec = service.spec.clone();
        change(&mut spec);
        let expected_version = service.version;
        self.ok(Command::UpdateService {
            id: id.to_owned(),
            expected_version,
            spec,
        });
    }

    /// The dispatcher marks node `id` in `state`.
    pub(crate) fn set_node_state(&mut self, id: &str, state: NodeState) {
        self.ok(Command::SetNodeStatus {
            id: id.to_owned(),
            state,
            message: String::new(),
            addr: None,
        });
    }

    /// `docker node update --availability` of node `id`.
    pub(crate) fn set_availability(&mut self, id: &str, availability: Availability) {
        let node = &self.state.nodes[id];
        let mut spec = node.spec.clone();
        spec.availability = availability;
        let expected_version = node.version;
        self.ok(Command::UpdateNodeSpec {
            id: id.to_owned(),
            expected_version,
            spec,
        });
    }

    /// The task `id`.
    pub(crate) fn task(&self, id: &str) -> &Task {
        self.state
            .tasks
            .get(id)
            .unwrap_or_else(|| panic!("task {id} exists"))
    }

    /// The tasks of `service_id` wanted running, by slot (then node).
    pub(crate) fn wanted_running(&self, service_id: &str) -> Vec<&Task> {
        let mut tasks: Vec<&Task> = self
            .state
            .tasks
            .values()
            .filter(|t| t.service_id == service_id && t.desired_state == TaskState::Running)
            .collect();
        tasks.sort_by(|a, b| (a.slot, &a.node_id).cmp(&(b.slot, &b.node_id)));
        tasks
    }

    /// How many tasks of `service_id` are wanted running on each node.
    pub(crate) fn per_node(&self, service_id: &str) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for task in self.wanted_running(service_id) {
            *counts.entry(task.node_id.clone()).or_default() += 1;
        }
        counts
    }
}
