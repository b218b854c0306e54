//! Unit tests of the service and task commands: every success, every
//! rejection (each checked to leave the state unchanged by
//! [`Sim::rejected`]), versions taken from the log index.

use shoal_api::service::{
    GlobalService, PlacementPreference, ReplicatedService, ServiceMode, ServiceSpec, SpreadOver,
    TaskState, TaskStatus,
};

use super::{
    ClusterState, Command, NewTask, Rejected, Response, TaskChange,
    test_support::{SIM_T0_MS, Sim, node_with, service_with, swarm},
    validate::{MAX_REPLICAS, MAX_RESTART_ATTEMPTS},
};

fn spec(name: &str) -> ServiceSpec {
    service_with("unused", name, ServiceMode::default()).spec
}

fn create(id: &str, spec: ServiceSpec) -> Command {
    Command::CreateService {
        id: id.to_owned(),
        spec,
    }
}

/// Nodes `n1` and `n2`, and the service `s1` (`web`) created at index 2.
fn with_service() -> Sim {
    let mut sim = Sim::new(&[
        node_with("n1", "host-1", &[]),
        node_with("n2", "host-2", &[]),
    ]);
    sim.ok(create("s1", spec("web")));
    sim
}

fn new_task(id: &str, node: &str, slot: u64) -> NewTask {
    NewTask {
        id: id.to_owned(),
        service_id: "s1".to_owned(),
        slot,
        node_id: node.to_owned(),
        state: if node.is_empty() {
            TaskState::Pending
        } else {
            TaskState::Assigned
        },
        message: "planned".to_owned(),
    }
}

fn plan(create: Vec<NewTask>, update: Vec<TaskChange>, delete: &[&str]) -> Command {
    Command::PlanTasks {
        create,
        update,
        delete: delete.iter().map(|&id| id.to_owned()).collect(),
    }
}

/// `with_service()` plus tasks `t1` (slot 1 on n1), `t2` (slot 2 on n2)
/// and `t3` (slot 3, pending).
fn with_tasks() -> Sim {
    let mut sim = with_service();
    sim.ok(plan(
        vec![
            new_task("t1", "n1", 1),
            new_task("t2", "n2", 2),
            new_task("t3", "", 3),
        ],
        vec![],
        &[],
    ));
    sim
}

fn change(id: &str) -> TaskChange {
    TaskChange {
        id: id.to_owned(),
        ..TaskChange::default()
    }
}

fn status(state: TaskState, message: &str) -> TaskStatus {
    TaskStatus {
        state,
        message: message.to_owned(),
        ..TaskStatus::default()
    }
}

fn report(node: &str, updates: &[(&str, TaskStatus)]) -> Command {
    Command::ReportTaskStatus {
        node_id: node.to_owned(),
        updates: updates
            .iter()
            .map(|(id, status)| ((*id).to_owned(), status.clone()))
            .collect(),
    }
}

fn written(response: &Response) -> usize {
    match response {
        Response::TasksWritten { count } => *count,
        other => panic!("expected TasksWritten, got {other:?}"),
    }
}

fn invalid_field(rejected: &Rejected) -> &str {
    match rejected {
        Rejected::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---- CreateService ---------------------------------------------------------

/// A change that makes a valid spec invalid.
type Mutation = Box<dyn Fn(&mut ServiceSpec)>;

#[test]
fn create_service_stores_the_spec_as_given() {
    let mut sim = Sim::new(&[]);
    let mut spec = spec("web");
    spec.labels.insert("tier".into(), "front".into());
    spec.task_template.container_spec.env = vec!["A=1".into(), "EMPTY=".into()];
    let response = sim.ok(create("s1", spec.clone()));
    assert_eq!(
        response,
        Response::ServiceWritten {
            id: "s1".into(),
            version: sim.index,
        }
    );
    let service = &sim.state.services["s1"];
    assert_eq!(service.spec, spec);
    assert_eq!(service.version, sim.index);
    assert_eq!(service.created_at_ms, SIM_T0_MS);
    assert_eq!(service.updated_at_ms, SIM_T0_MS);
    assert_eq!(service.previous_spec, None);
    assert!(
        sim.state.tasks.is_empty(),
        "tasks are the orchestrator's job"
    );
}

#[test]
fn create_service_needs_a_swarm() {
    let mut state = ClusterState::default();
    let before = state.clone();
    let meta = super::ApplyMeta {
        index: 1,
        now_unix_ms: SIM_T0_MS,
    };
    assert_eq!(
        super::apply(&mut state, &meta, create("s1", spec("web"))),
        Err(Rejected::NoCluster)
    );
    assert_eq!(state, before);
    // And a swarm is all it needs.
    let mut state = swarm();
    assert!(super::apply(&mut state, &meta, create("s1", spec("web"))).is_ok());
}

#[test]
fn create_service_rejects_a_taken_name_or_id() {
    let mut sim = with_service();
    assert_eq!(
        sim.rejected(create("s2", spec("web"))),
        Rejected::ServiceExists { name: "web".into() }
    );
    assert_eq!(
        sim.rejected(create("s1", spec("other"))),
        Rejected::ServiceExists { name: "s1".into() }
    );
    sim.ok(create("s2", spec("web2")));
}

#[test]
fn create_service_rejects_invalid_specs() {
    let mut sim = with_service();
    let cases: Vec<(&str, Mutation)> = vec![
        ("spec.Name", Box::new(|s| s.name = String::new())),
        ("spec.Name", Box::new(|s| s.name = "-web".into())),
        ("spec.Name", Box::new(|s| s.name = "web-".into())),
        ("spec.Name", Box::new(|s| s.name = "web_".into())),
        ("spec.Name", Box::new(|s| s.name = "web.1".into())),
        ("spec.Name", Box::new(|s| s.name = "my web".into())),
        ("spec.Name", Box::new(|s| s.name = "x".repeat(64))),
        (
            "spec.Labels",
            Box::new(|s| {
                s.labels.insert("bad key".into(), "v".into());
            }),
        ),
        (
            "spec.Mode.Replicated.Replicas",
            Box::new(|s| {
                s.mode = ServiceMode::Replicated(ReplicatedService {
                    replicas: Some(MAX_REPLICAS + 1),
                });
            }),
        ),
        (
            "spec.TaskTemplate.ContainerSpec.Image",
            Box::new(|s| s.task_template.container_spec.image = String::new()),
        ),
        (
            "spec.TaskTemplate.ContainerSpec.Image",
            Box::new(|s| s.task_template.container_spec.image = "who ami".into()),
        ),
        (
            "spec.TaskTemplate.ContainerSpec.Env[1]",
            Box::new(|s| s.task_template.container_spec.env = vec!["A=1".into(), "=x".into()]),
        ),
        (
            "spec.TaskTemplate.ContainerSpec.Args[0]",
            Box::new(|s| s.task_template.container_spec.args = vec!["a\0b".into()]),
        ),
        (
            "spec.TaskTemplate.ContainerSpec.StopGracePeriod",
            Box::new(|s| s.task_template.container_spec.stop_grace_period = Some(-1)),
        ),
        (
            "spec.TaskTemplate.Resources.Reservations.MemoryBytes",
            Box::new(|s| s.task_template.resources.reservations.memory_bytes = -1),
        ),
        (
            "spec.TaskTemplate.Resources.Limits.NanoCPUs",
            Box::new(|s| s.task_template.resources.limits.nano_cpus = -5),
        ),
        (
            "spec.TaskTemplate.RestartPolicy.Delay",
            Box::new(|s| s.task_template.restart_policy.delay = Some(-1)),
        ),
        (
            "spec.TaskTemplate.RestartPolicy.Window",
            Box::new(|s| s.task_template.restart_policy.window = Some(-1_000)),
        ),
        (
            "spec.TaskTemplate.RestartPolicy.MaxAttempts",
            Box::new(|s| {
                s.task_template.restart_policy.max_attempts = Some(MAX_RESTART_ATTEMPTS + 1);
            }),
        ),
        (
            "spec.TaskTemplate.Placement.Constraints",
            Box::new(|s| s.task_template.placement.constraints = vec!["node.colour==red".into()]),
        ),
        (
            "spec.TaskTemplate.Placement.Constraints",
            Box::new(|s| s.task_template.placement.constraints = vec!["node.role=manager".into()]),
        ),
        (
            "spec.TaskTemplate.Placement.Preferences",
            Box::new(|s| {
                s.task_template.placement.preferences = vec![PlacementPreference {
                    spread: SpreadOver {
                        spread_descriptor: "node.hostname".into(),
                    },
                }];
            }),
        ),
    ];
    for (field, mutate) in cases {
        let mut spec = spec("api");
        mutate(&mut spec);
        let rejected = sim.rejected(create("s2", spec.clone()));
        assert_eq!(invalid_field(&rejected), field, "{spec:#?}");
    }
    let rejected = sim.rejected(create("bad/id", spec("api")));
    assert_eq!(invalid_field(&rejected), "id");
}

#[test]
fn service_names_follow_swarmkit() {
    let mut sim = with_service();
    for (i, name) in ["stack_web", "a", "web-2", "a__b--c", &"x".repeat(63)]
        .into_iter()
        .enumerate()
    {
        sim.ok(create(&format!("id{i}"), spec(name)));
    }
    let mut edge = spec("edge");
    edge.task_template.restart_policy.max_attempts = Some(MAX_RESTART_ATTEMPTS);
    sim.ok(create("edge", edge));
}

// ---- UpdateService ---------------------------------------------------------

fn update(sim: &Sim, id: &str, change: impl FnOnce(&mut ServiceSpec)) -> Command {
    let service = &sim.state.services[id];
    let mut spec = service.spec.clone();
    change(&mut spec);
    Command::UpdateService {
        id: id.to_owned(),
        expected_version: service.version,
        spec,
    }
}

#[test]
fn update_service_replaces_the_spec_and_keeps_the_previous_one() {
    let mut sim = with_service();
    let original = sim.state.services["s1"].spec.clone();
    sim.advance(7_000);
    let command = update(&sim, "s1", |s| {
        s.mode = ServiceMode::Replicated(ReplicatedService { replicas: Some(4) });
    });
    let response = sim.ok(command);
    assert_eq!(
        response,
        Response::ServiceWritten {
            id: "s1".into(),
            version: sim.index,
        }
    );
    let service = &sim.state.services["s1"];
    assert_eq!(service.spec.mode.replicas(), Some(4));
    assert_eq!(service.previous_spec.as_ref(), Some(&original));
    assert_eq!(service.version, sim.index);
    assert_eq!(service.created_at_ms, SIM_T0_MS);
    assert_eq!(service.updated_at_ms, SIM_T0_MS + 7_000);
}

#[test]
fn update_service_rejections() {
    let mut sim = with_service();
    let version = sim.state.services["s1"].version;

    let mut stale = update(&sim, "s1", |s| {
        s.labels.insert("a".into(), "b".into());
    });
    if let Command::UpdateService {
        expected_version, ..
    } = &mut stale
    {
        *expected_version = version - 1;
    }
    assert!(matches!(
        sim.rejected(stale),
        Rejected::StaleVersion { expected, actual, .. } if expected == version - 1 && actual == version
    ));

    let rename = update(&sim, "s1", |s| s.name = "web2".into());
    assert_eq!(invalid_field(&sim.rejected(rename)), "spec.Name");

    let to_global = update(&sim, "s1", |s| {
        s.mode = ServiceMode::Global(GlobalService {});
    });
    assert_eq!(invalid_field(&sim.rejected(to_global)), "spec.Mode");

    let invalid = update(&sim, "s1", |s| {
        s.task_template.container_spec.image = String::new();
    });
    assert_eq!(
        invalid_field(&sim.rejected(invalid)),
        "spec.TaskTemplate.ContainerSpec.Image"
    );

    assert_eq!(
        sim.rejected(Command::UpdateService {
            id: "nope".into(),
            expected_version: 1,
            spec: spec("web"),
        }),
        Rejected::ServiceNotFound { id: "nope".into() }
    );

    // The same update at the right version goes through, once.
    let fresh = update(&sim, "s1", |s| {
        s.labels.insert("a".into(), "b".into());
    });
    sim.ok(fresh.clone());
    assert!(matches!(sim.rejected(fresh), Rejected::StaleVersion { .. }));
}

// ---- RemoveService ---------------------------------------------------------

#[test]
fn remove_service_asks_every_task_to_shut_down() {
    let mut sim = with_tasks();
    sim.ok(plan(
        vec![],
        vec![TaskChange {
            desired_state: Some(TaskState::Shutdown),
            ..change("t2")
        }],
        &[],
    ));
    let t2_version = sim.task("t2").version;
    sim.ok(create("s2", spec("other")));
    sim.ok(Command::PlanTasks {
        create: vec![NewTask {
            service_id: "s2".into(),
            ..new_task("o1", "n1", 1)
        }],
        update: vec![],
        delete: vec![],
    });

    let response = sim.ok(Command::RemoveService { id: "s1".into() });
    assert_eq!(response, Response::ServiceRemoved { id: "s1".into() });
    assert!(!sim.state.services.contains_key("s1"));
    for id in ["t1", "t3"] {
        let task = sim.task(id);
        assert_eq!(task.desired_state, TaskState::Shutdown);
        assert_eq!(task.version, sim.index);
    }
    assert_eq!(sim.task("t2").version, t2_version, "already shutting down");
    assert_eq!(sim.task("o1").desired_state, TaskState::Running);

    assert_eq!(
        sim.rejected(Command::RemoveService { id: "s1".into() }),
        Rejected::ServiceNotFound { id: "s1".into() }
    );
}

// ---- PlanTasks -------------------------------------------------------------

#[test]
fn plan_tasks_creates_tasks_with_the_service_s_spec() {
    let mut sim = with_service();
    sim.advance(3_000);
    let response = sim.ok(plan(
        vec![new_task("t1", "n1", 1), new_task("t2", "", 2)],
        vec![],
        &[],
    ));
    assert_eq!(written(&response), 2);
    let service = sim.state.services["s1"].clone();
    let t1 = sim.task("t1");
    assert_eq!(t1.spec, service.spec.task_template);
    assert_eq!(t1.service_version, service.version);
    assert_eq!(t1.version, sim.index);
    assert_eq!(t1.created_at_ms, SIM_T0_MS + 3_000);
    assert_eq!(t1.desired_state, TaskState::Running);
    assert_eq!(
        (t1.slot, t1.node_id.as_str(), t1.status.state),
        (1, "n1", TaskState::Assigned)
    );
    assert_eq!(t1.status.message, "planned");
    assert_eq!(t1.status.timestamp_ms, SIM_T0_MS + 3_000);
    let t2 = sim.task("t2");
    assert_eq!(
        (t2.node_id.as_str(), t2.status.state),
        ("", TaskState::Pending)
    );
}

#[test]
fn plan_tasks_changes_and_deletes() {
    let mut sim = with_tasks();
    sim.advance(1_000);
    let response = sim.ok(plan(
        vec![new_task("t4", "n2", 4)],
        vec![
            TaskChange {
                desired_state: Some(TaskState::Shutdown),
                ..change("t1")
            },
            TaskChange {
                assign_to: Some("n2".into()),
                ..change("t3")
            },
        ],
        &["t2"],
    ));
    assert_eq!(written(&response), 4);
    assert_eq!(sim.task("t1").desired_state, TaskState::Shutdown);
    assert_eq!(sim.task("t1").version, sim.index);
    let t3 = sim.task("t3");
    assert_eq!(t3.node_id, "n2");
    assert_eq!(t3.status.state, TaskState::Assigned);
    assert_eq!(t3.status.message, "scheduler assigned task to node");
    assert_eq!(t3.status.timestamp_ms, SIM_T0_MS + 1_000);
    assert!(!sim.state.tasks.contains_key("t2"));
    assert!(sim.state.tasks.contains_key("t4"));
}

#[test]
fn plan_tasks_only_raises_desired_states_and_keeps_final_observations() {
    let mut sim = with_tasks();
    sim.ok(report("n1", &[("t1", status(TaskState::Failed, "exit 1"))]));
    sim.ok(plan(
        vec![],
        vec![
            TaskChange {
                desired_state: Some(TaskState::Complete),
                status: Some((TaskState::Orphaned, "node removed".into())),
                ..change("t1")
            },
            TaskChange {
                desired_state: Some(TaskState::Shutdown),
                ..change("t2")
            },
        ],
        &[],
    ));
    let t1 = sim.task("t1");
    assert_eq!(t1.desired_state, TaskState::Complete);
    assert_eq!(t1.status.state, TaskState::Failed, "a final state stays");
    assert_eq!(t1.status.message, "exit 1");

    sim.ok(plan(
        vec![],
        vec![TaskChange {
            desired_state: Some(TaskState::Running),
            ..change("t2")
        }],
        &[],
    ));
    assert_eq!(sim.task("t2").desired_state, TaskState::Shutdown);
}

#[test]
fn plan_tasks_is_rejected_whole() {
    let mut sim = with_tasks();
    let good = new_task("t9", "n1", 9);
    let cases: Vec<(Command, Rejected)> = vec![
        (
            plan(vec![good.clone()], vec![change("ghost")], &[]),
            Rejected::TaskNotFound { id: "ghost".into() },
        ),
        (
            plan(vec![good.clone()], vec![], &["t1", "ghost"]),
            Rejected::TaskNotFound { id: "ghost".into() },
        ),
        (
            plan(
                vec![good.clone()],
                vec![TaskChange {
                    assign_to: Some("n9".into()),
                    ..change("t3")
                }],
                &[],
            ),
            Rejected::NodeNotFound { id: "n9".into() },
        ),
        (
            plan(vec![good.clone(), new_task("t8", "n9", 8)], vec![], &[]),
            Rejected::NodeNotFound { id: "n9".into() },
        ),
        (
            plan(
                vec![
                    good.clone(),
                    NewTask {
                        service_id: "s9".into(),
                        ..new_task("t8", "n1", 8)
                    },
                ],
                vec![],
                &[],
            ),
            Rejected::ServiceNotFound { id: "s9".into() },
        ),
    ];
    for (command, expected) in cases {
        assert_eq!(sim.rejected(command), expected);
    }

    let invalid: Vec<(Command, &str)> = vec![
        (
            plan(vec![good.clone(), new_task("t1", "n1", 8)], vec![], &[]),
            "create[1].id",
        ),
        (
            plan(vec![good.clone(), new_task("t9", "n2", 8)], vec![], &[]),
            "create[1].id",
        ),
        (
            plan(vec![new_task("../x", "n1", 8)], vec![], &[]),
            "create[0].id",
        ),
        (
            plan(
                vec![NewTask {
                    message: "bell\u{7}".into(),
                    ..good.clone()
                }],
                vec![],
                &[],
            ),
            "create[0].message",
        ),
        (
            plan(
                vec![good.clone()],
                vec![
                    change("t1"),
                    TaskChange {
                        status: Some((TaskState::Pending, "x".repeat(5_000))),
                        ..change("t3")
                    },
                ],
                &[],
            ),
            "update[1].status",
        ),
    ];
    for (command, field) in invalid {
        assert_eq!(invalid_field(&sim.rejected(command)), field);
    }
}

// ---- ReportTaskStatus ------------------------------------------------------

#[test]
fn reports_move_tasks_forward_with_the_managers_clock() {
    let mut sim = with_tasks();
    sim.advance(2_000);
    let running = TaskStatus {
        timestamp_ms: 42, // the node's clock: not trusted
        container_id: "c0ffee".into(),
        pid: 123,
        ..status(TaskState::Running, "started")
    };
    let response = sim.ok(report(
        "n1",
        &[
            ("t1", status(TaskState::Preparing, "pulling")),
            ("t1", running),
        ],
    ));
    assert_eq!(written(&response), 2);
    let t1 = sim.task("t1");
    assert_eq!(t1.status.state, TaskState::Running);
    assert_eq!(t1.status.pid, 123);
    assert_eq!(t1.status.container_id, "c0ffee");
    assert_eq!(t1.status.timestamp_ms, SIM_T0_MS + 2_000);
    assert_eq!(t1.version, sim.index);
    assert_eq!(t1.updated_at_ms, SIM_T0_MS + 2_000);
}

#[test]
fn reports_for_other_nodes_unknown_or_unassigned_tasks_are_ignored() {
    let mut sim = with_tasks();
    let before = sim.state.clone();
    let response = sim.ok(report(
        "n2",
        &[
            ("t1", status(TaskState::Running, "not mine")),
            ("ghost", status(TaskState::Running, "who?")),
        ],
    ));
    assert_eq!(written(&response), 0);
    let response = sim.ok(report("", &[("t3", status(TaskState::Running, "pending"))]));
    assert_eq!(written(&response), 0);
    assert_eq!(sim.state, before);
}

#[test]
fn reports_never_move_backwards_nor_past_a_final_state() {
    let mut sim = with_tasks();
    sim.ok(report("n1", &[("t1", status(TaskState::Running, "up"))]));
    let before = sim.state.clone();
    sim.advance(1_000);
    let response = sim.ok(report(
        "n1",
        &[("t1", status(TaskState::Preparing, "late report"))],
    ));
    assert_eq!(written(&response), 0);
    assert_eq!(sim.state, before);

    sim.ok(report("n1", &[("t1", status(TaskState::Failed, "exit 2"))]));
    let ended = sim.task("t1").clone();
    sim.ok(report(
        "n1",
        &[("t1", status(TaskState::Shutdown, "stopped"))],
    ));
    assert_eq!(*sim.task("t1"), ended, "a final state is final");
}

#[test]
fn a_repeated_report_changes_nothing_and_details_keep_the_state_s_time() {
    let mut sim = with_tasks();
    sim.ok(report("n1", &[("t1", status(TaskState::Running, "up"))]));
    let entered = sim.task("t1").status.timestamp_ms;
    let before = sim.state.clone();
    sim.advance(30_000);
    let response = sim.ok(report("n1", &[("t1", status(TaskState::Running, "up"))]));
    assert_eq!(written(&response), 0);
    assert_eq!(sim.state, before, "a resync re-reports what is known");

    let healthy = TaskStatus {
        pid: 7,
        ..status(TaskState::Running, "healthy")
    };
    let response = sim.ok(report("n1", &[("t1", healthy)]));
    assert_eq!(written(&response), 1);
    let t1 = sim.task("t1");
    assert_eq!(t1.status.message, "healthy");
    assert_eq!(t1.status.pid, 7);
    assert_eq!(t1.status.timestamp_ms, entered, "still running since then");
    assert_eq!(t1.version, sim.index);
}

#[test]
fn invalid_reports_are_rejected_whole() {
    let mut sim = with_tasks();
    let good = status(TaskState::Running, "up");
    let cases: Vec<(TaskStatus, &str)> = vec![
        (
            status(TaskState::Failed, "line\nbreak"),
            "updates[1].message",
        ),
        (
            TaskStatus {
                err: "x".repeat(5_000),
                ..status(TaskState::Failed, "")
            },
            "updates[1].err",
        ),
        (
            TaskStatus {
                container_id: "a b".into(),
                ..good.clone()
            },
            "updates[1].container_id",
        ),
    ];
    for (bad, field) in cases {
        let rejected = sim.rejected(report("n1", &[("t1", good.clone()), ("t1", bad)]));
        assert_eq!(invalid_field(&rejected), field);
    }
}

#[test]
fn services_and_tasks_round_trip_through_json() {
    let mut sim = with_tasks();
    sim.ok(report("n2", &[("t2", status(TaskState::Running, "up"))]));
    let json = serde_json::to_string(&sim.state).expect("serialises");
    let back: ClusterState = serde_json::from_str(&json).expect("parses");
    assert_eq!(back, sim.state);
}
