//! Unit tests of the state machine: every command's success and every
//! rejection, each rejection checked to leave the state unchanged.

use std::collections::BTreeMap;

use super::*;

const T0_MS: u64 = 1_700_000_000_000;
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n";
const WORKER_TOKEN: &str = "SWMTKN-1-digest-workersecret";
const MANAGER_TOKEN: &str = "SWMTKN-1-digest-managersecret";
const FIRST: &str = "mgr1node";

fn meta(index: u64) -> ApplyMeta {
    ApplyMeta {
        index,
        now_unix_ms: T0_MS + index * 1_000,
    }
}

fn worker(id: &str, hostname: &str) -> NewNode {
    NewNode {
        id: id.to_owned(),
        role: NodeRole::Worker,
        availability: Availability::Active,
        hostname: hostname.to_owned(),
        platform: Platform {
            architecture: "x86_64".to_owned(),
            os: "linux".to_owned(),
        },
        engine_version: "0.1.0".to_owned(),
        addr: "10.99.0.2".to_owned(),
        raft_id: None,
        manager_addr: None,
        tls: None,
    }
}

fn manager(id: &str, hostname: &str, raft_id: u64) -> NewNode {
    NewNode {
        role: NodeRole::Manager,
        raft_id: Some(raft_id),
        manager_addr: Some(format!("10.99.0.{raft_id}:2377")),
        ..worker(id, hostname)
    }
}

fn tls_info() -> NodeTlsInfo {
    NodeTlsInfo {
        trust_root_pem: CA_PEM.to_owned(),
        cert_serial: "7f3a".to_owned(),
        cert_not_after_ms: T0_MS + 90 * 24 * 3_600_000,
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The fields of `Command::InitCluster`, for tests to edit.
struct Init {
    cluster_id: String,
    spec: SwarmSpec,
    root_ca: RootCaRecord,
    join_tokens: JoinTokens,
    default_addr_pool: Vec<String>,
    subnet_size: u8,
    data_path_port: u16,
    first_node: NewNode,
}

impl Init {
    fn valid() -> Self {
        Self {
            cluster_id: "swarm0id".to_owned(),
            spec: SwarmSpec::default(),
            root_ca: RootCaRecord {
                cert_pem: CA_PEM.to_owned(),
                key_pem: KEY_PEM.to_owned(),
                digest: "sha256:0123abcd".to_owned(),
            },
            join_tokens: JoinTokens {
                worker: WORKER_TOKEN.to_owned(),
                manager: MANAGER_TOKEN.to_owned(),
            },
            default_addr_pool: vec!["10.0.0.0/8".to_owned()],
            subnet_size: 24,
            data_path_port: 4789,
            first_node: NewNode {
                raft_id: None,
                ..manager(FIRST, "host-m1", 1)
            },
        }
    }

    fn into_command(self) -> Command {
        Command::InitCluster {
            cluster_id: self.cluster_id,
            spec: self.spec,
            root_ca: self.root_ca,
            join_tokens: self.join_tokens,
            default_addr_pool: self.default_addr_pool,
            subnet_size: self.subnet_size,
            data_path_port: self.data_path_port,
            first_node: self.first_node,
        }
    }
}

fn init_command() -> Command {
    Init::valid().into_command()
}

/// Applies `command` at `index`, which must succeed.
fn ok(state: &mut ClusterState, index: u64, command: Command) -> Response {
    match apply(state, &meta(index), command) {
        Ok(response) => response,
        Err(rejected) => panic!("command at index {index} rejected: {rejected}"),
    }
}

/// Applies `command` at `index`, which must be rejected without changing
/// the state.
fn rejected(state: &mut ClusterState, index: u64, command: Command) -> Rejected {
    let before = state.clone();
    let result = apply(state, &meta(index), command);
    assert_eq!(*state, before, "a rejected command changed the state");
    match result {
        Err(rejected) => rejected,
        Ok(response) => panic!("command at index {index} accepted: {response:?}"),
    }
}

fn invalid_field(rejected: &Rejected) -> &str {
    match rejected {
        Rejected::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// A swarm initialised at index 1 with the manager `FIRST`.
fn initialized() -> ClusterState {
    let mut state = ClusterState::default();
    ok(&mut state, 1, init_command());
    state
}

/// `initialized()` plus the Ready workers `abc123` (index 2) and `abd456`
/// (index 3).
fn with_workers() -> ClusterState {
    let mut state = initialized();
    ok(
        &mut state,
        2,
        Command::RegisterNode {
            node: worker("abc123", "host-w1"),
        },
    );
    ok(
        &mut state,
        3,
        Command::RegisterNode {
            node: worker("abd456", "host-w2"),
        },
    );
    for (index, id) in [(4, "abc123"), (5, "abd456")] {
        ok(&mut state, index, status(id, NodeState::Ready, None));
    }
    state
}

fn status(id: &str, state: NodeState, addr: Option<&str>) -> Command {
    Command::SetNodeStatus {
        id: id.to_owned(),
        state,
        message: String::new(),
        addr: addr.map(str::to_owned),
    }
}

fn node<'s>(state: &'s ClusterState, id: &str) -> &'s Node {
    state.nodes.get(id).expect("node exists")
}

fn cluster(state: &ClusterState) -> &Cluster {
    state.cluster().expect("cluster exists")
}

fn spec_update(state: &ClusterState, id: &str, change: impl FnOnce(&mut NodeSpec)) -> Command {
    let node = node(state, id);
    let mut spec = node.spec.clone();
    change(&mut spec);
    Command::UpdateNodeSpec {
        id: id.to_owned(),
        expected_version: node.version,
        spec,
    }
}

fn cluster_update(state: &ClusterState, change: impl FnOnce(&mut SwarmSpec)) -> Command {
    let cluster = cluster(state);
    let mut spec = cluster.spec.clone();
    change(&mut spec);
    Command::UpdateCluster {
        expected_version: cluster.version,
        spec,
        rotate_worker_token: None,
        rotate_manager_token: None,
    }
}

// ---- InitCluster ----------------------------------------------------------

#[test]
fn init_creates_the_swarm_and_a_ready_reachable_manager() {
    let mut state = ClusterState::default();
    let response = ok(&mut state, 1, init_command());
    assert_eq!(
        response,
        Response::ClusterInitialized {
            cluster_id: "swarm0id".to_owned(),
            node_id: FIRST.to_owned(),
            version: 1,
        }
    );

    let cluster = cluster(&state);
    assert_eq!(cluster.id, "swarm0id");
    assert_eq!(cluster.version, 1);
    assert_eq!(cluster.created_at_ms, T0_MS + 1_000);
    assert_eq!(cluster.updated_at_ms, T0_MS + 1_000);
    assert_eq!(cluster.spec, SwarmSpec::default());
    assert_eq!(cluster.join_tokens.worker, WORKER_TOKEN);
    assert_eq!(cluster.default_addr_pool, ["10.0.0.0/8"]);
    assert_eq!(cluster.subnet_size, 24);
    assert_eq!(cluster.data_path_port, 4789);

    let first = node(&state, FIRST);
    assert_eq!(first.version, 1);
    assert_eq!(first.spec.role, NodeRole::Manager);
    assert_eq!(first.spec.availability, Availability::Active);
    assert_eq!(first.spec.name, "");
    assert_eq!(first.status.state, NodeState::Ready);
    assert_eq!(first.status.addr, "10.99.0.2");
    assert_eq!(first.description.hostname, "host-m1");
    assert_eq!(
        first.manager,
        Some(ManagerInfo {
            raft_id: 1,
            addr: "10.99.0.1:2377".to_owned(),
            reachability: Reachability::Reachable,
        })
    );
    assert_eq!(state.manager_count(), 1);
    assert!(state.removed_nodes.is_empty());

    // The routing mesh's network, as Docker makes it: the pool's first
    // subnet and the lowest VNI, its ID derived from the swarm's.
    let ingress = state.ingress_network().expect("an ingress network");
    assert_eq!(ingress.spec.name, "ingress");
    assert_eq!(ingress.spec.driver, "overlay");
    assert!(ingress.spec.ingress);
    assert_eq!(
        (
            ingress.subnet.as_str(),
            ingress.gateway.to_string().as_str()
        ),
        ("10.0.0.0/24", "10.0.0.1")
    );
    assert_eq!(ingress.vni, 4096);
    assert_eq!(ingress.version, 1);
    assert_eq!(ingress.id.len(), 25);
    let mut again = ClusterState::default();
    ok(&mut again, 1, init_command());
    assert_eq!(again, state, "every manager applies the same init");
    assert_eq!(cluster.spec.published_port_range.to_string(), "30000-32767");
}

#[test]
fn init_makes_the_first_node_a_manager_with_the_given_raft_id() {
    let mut init = Init::valid();
    init.first_node.role = NodeRole::Worker;
    init.first_node.raft_id = Some(7);
    init.first_node.availability = Availability::Drain;
    let mut state = ClusterState::default();
    ok(&mut state, 1, init.into_command());
    let first = node(&state, FIRST);
    assert_eq!(first.spec.role, NodeRole::Manager);
    assert_eq!(first.spec.availability, Availability::Drain);
    assert_eq!(first.manager.as_ref().map(|m| m.raft_id), Some(7));
}

#[test]
fn init_twice_is_rejected() {
    let mut state = initialized();
    let err = rejected(&mut state, 2, init_command());
    assert_eq!(
        err,
        Rejected::ClusterExists {
            id: "swarm0id".to_owned()
        }
    );
    assert_eq!(err.to_string(), "the swarm swarm0id exists already");
}

#[test]
fn init_rejects_each_invalid_field() {
    type Edit = fn(&mut Init);
    let cases: &[(&str, Edit)] = &[
        ("cluster_id", |i| i.cluster_id = "../x".into()),
        ("cluster_id", |i| i.cluster_id = String::new()),
        ("spec.name", |i| i.spec.name = String::new()),
        ("spec.labels", |i| {
            i.spec.labels = labels(&[("has space", "v")]);
        }),
        ("spec.dispatcher.heartbeat_period_ms", |i| {
            i.spec.dispatcher.heartbeat_period_ms = 999;
        }),
        ("spec.dispatcher.heartbeat_period_ms", |i| {
            i.spec.dispatcher.heartbeat_period_ms = 3_600_001;
        }),
        ("spec.ca_config.node_cert_expiry_ms", |i| {
            i.spec.ca_config.node_cert_expiry_ms = 3_599_999;
        }),
        ("spec.ca_config.node_cert_expiry_ms", |i| {
            i.spec.ca_config.node_cert_expiry_ms = u64::MAX;
        }),
        ("spec.raft.heartbeat_tick", |i| {
            i.spec.raft.heartbeat_tick = 0;
        }),
        ("spec.raft.election_tick", |i| i.spec.raft.election_tick = 1),
        ("spec.raft.snapshot_interval", |i| {
            i.spec.raft.snapshot_interval = 0;
        }),
        ("root_ca.cert_pem", |i| i.root_ca.cert_pem = String::new()),
        ("root_ca.key_pem", |i| i.root_ca.key_pem = "key".into()),
        ("root_ca.digest", |i| i.root_ca.digest = String::new()),
        ("join_tokens.worker", |i| {
            i.join_tokens.worker = "secret".into();
        }),
        ("join_tokens.manager", |i| {
            i.join_tokens.manager = "SWMTKN-1-".into();
        }),
        ("join_tokens", |i| {
            i.join_tokens.manager = WORKER_TOKEN.into();
        }),
        ("default_addr_pool", |i| i.default_addr_pool.clear()),
        ("default_addr_pool", |i| {
            i.default_addr_pool = vec!["10.0.0.1/8".into()];
        }),
        ("default_addr_pool", |i| {
            i.default_addr_pool = vec!["fd00::/8".into()];
        }),
        ("default_addr_pool", |i| {
            i.default_addr_pool = vec!["10.0.0.0/8".into(), "10.20.0.0/16".into()];
        }),
        ("subnet_size", |i| i.subnet_size = 30),
        ("subnet_size", |i| {
            i.default_addr_pool = vec!["10.0.0.0/26".into()];
        }),
        ("data_path_port", |i| i.data_path_port = 0),
        ("data_path_port", |i| i.data_path_port = 49152),
        ("first_node.id", |i| i.first_node.id = "a/b".into()),
        ("first_node.hostname", |i| {
            i.first_node.hostname = String::new();
        }),
        ("first_node.addr", |i| {
            i.first_node.addr = "10.99.0.2:2377".into();
        }),
        ("first_node.manager_addr", |i| {
            i.first_node.manager_addr = None;
        }),
        ("first_node.manager_addr", |i| {
            i.first_node.manager_addr = Some("10.99.0.1".into());
        }),
        ("first_node.raft_id", |i| i.first_node.raft_id = Some(0)),
        ("first_node.tls.trust_root_pem", |i| {
            i.first_node.tls = Some(NodeTlsInfo {
                trust_root_pem: "nope".into(),
                ..tls_info()
            });
        }),
    ];
    for (field, edit) in cases {
        let mut init = Init::valid();
        edit(&mut init);
        let mut state = ClusterState::default();
        let err = rejected(&mut state, 1, init.into_command());
        assert_eq!(invalid_field(&err), *field, "{err}");
    }
}

// ---- RegisterNode ---------------------------------------------------------

#[test]
fn register_adds_a_worker_in_state_unknown() {
    let mut state = initialized();
    let mut new = worker("abc123", "host-w1");
    new.availability = Availability::Pause;
    new.tls = Some(tls_info());
    let response = ok(&mut state, 2, Command::RegisterNode { node: new });
    assert_eq!(
        response,
        Response::NodeRegistered {
            id: "abc123".to_owned(),
            version: 2
        }
    );
    let w = node(&state, "abc123");
    assert_eq!(w.version, 2);
    assert_eq!(w.created_at_ms, T0_MS + 2_000);
    assert_eq!(w.spec.role, NodeRole::Worker);
    assert_eq!(w.spec.availability, Availability::Pause);
    assert_eq!(w.status.state, NodeState::Unknown);
    assert_eq!(w.description.tls, Some(tls_info()));
    assert_eq!(w.manager, None);
    assert_eq!(state.manager_count(), 1);
}

#[test]
fn register_adds_a_manager_as_a_raft_member_of_unknown_reachability() {
    let mut state = initialized();
    ok(
        &mut state,
        2,
        Command::RegisterNode {
            node: manager("mgr2node", "host-m2", 2),
        },
    );
    let m = node(&state, "mgr2node");
    assert_eq!(m.spec.role, NodeRole::Manager);
    assert_eq!(
        m.manager,
        Some(ManagerInfo {
            raft_id: 2,
            addr: "10.99.0.2:2377".to_owned(),
            reachability: Reachability::Unknown,
        })
    );
    assert_eq!(state.manager_count(), 2);
    assert_eq!(
        state.node_by_raft_id(2).map(|n| n.id.as_str()),
        Some("mgr2node")
    );
}

#[test]
fn register_before_init_is_rejected() {
    let mut state = ClusterState::default();
    let err = rejected(
        &mut state,
        1,
        Command::RegisterNode {
            node: worker("abc123", "host-w1"),
        },
    );
    assert_eq!(err, Rejected::NoCluster);
    assert_eq!(err.to_string(), "no swarm has been initialised");
}

#[test]
fn register_of_an_existing_id_is_rejected() {
    let mut state = with_workers();
    let err = rejected(
        &mut state,
        6,
        Command::RegisterNode {
            node: worker("abc123", "other-host"),
        },
    );
    assert_eq!(
        err,
        Rejected::NodeExists {
            id: "abc123".to_owned()
        }
    );
}

#[test]
fn register_checks_the_manager_fields() {
    let mut state = initialized();
    let cases = [
        (
            NewNode {
                raft_id: None,
                ..manager("mgr2node", "h", 2)
            },
            "node.raft_id",
        ),
        (
            NewNode {
                manager_addr: None,
                ..manager("mgr2node", "h", 2)
            },
            "node.manager_addr",
        ),
        (
            NewNode {
                raft_id: Some(2),
                ..worker("abc123", "h")
            },
            "node.raft_id",
        ),
        (
            NewNode {
                manager_addr: Some("10.99.0.9:2377".to_owned()),
                ..worker("abc123", "h")
            },
            "node.manager_addr",
        ),
        (
            NewNode {
                engine_version: "0.1 beta".to_owned(),
                ..worker("abc123", "h")
            },
            "node.engine_version",
        ),
        (
            NewNode {
                platform: Platform {
                    architecture: "x86\n64".to_owned(),
                    os: "linux".to_owned(),
                },
                ..worker("abc123", "h")
            },
            "node.platform.architecture",
        ),
    ];
    for (new, field) in cases {
        let err = rejected(&mut state, 2, Command::RegisterNode { node: new });
        assert_eq!(invalid_field(&err), field, "{err}");
    }
}

#[test]
fn register_of_a_manager_with_a_used_raft_id_is_rejected() {
    let mut state = initialized();
    let err = rejected(
        &mut state,
        2,
        Command::RegisterNode {
            node: manager("mgr2node", "host-m2", 1),
        },
    );
    assert_eq!(
        err,
        Rejected::RaftIdInUse {
            raft_id: 1,
            node_id: FIRST.to_owned()
        }
    );
}

#[test]
fn a_removed_id_cannot_register_again() {
    let mut state = with_workers();
    ok(
        &mut state,
        6,
        Command::RemoveNode {
            id: "abc123".to_owned(),
            force: true,
        },
    );
    let err = rejected(
        &mut state,
        7,
        Command::RegisterNode {
            node: worker("abc123", "host-w1"),
        },
    );
    assert_eq!(
        err,
        Rejected::NodeRemoved {
            id: "abc123".to_owned()
        }
    );
}

// ---- UpdateNodeSpec -------------------------------------------------------

#[test]
fn update_node_spec_replaces_the_spec_and_bumps_the_version() {
    let mut state = with_workers();
    let command = spec_update(&state, "abc123", |spec| {
        spec.name = "edge-1".to_owned();
        spec.availability = Availability::Drain;
        spec.labels = labels(&[("zone", "eu-west"), ("com.example.ssd", "")]);
    });
    let response = ok(&mut state, 6, command);
    assert_eq!(
        response,
        Response::NodeUpdated {
            id: "abc123".to_owned(),
            version: 6
        }
    );
    let w = node(&state, "abc123");
    assert_eq!(w.version, 6);
    assert_eq!(w.updated_at_ms, T0_MS + 6_000);
    assert_eq!(w.created_at_ms, T0_MS + 2_000);
    assert_eq!(w.spec.name, "edge-1");
    assert_eq!(w.spec.availability, Availability::Drain);
    assert_eq!(
        w.spec.labels.get("zone").map(String::as_str),
        Some("eu-west")
    );
}

#[test]
fn a_stale_node_update_is_rejected_and_the_fresh_one_accepted() {
    let mut state = with_workers();
    let read_at = node(&state, "abc123").version;
    ok(&mut state, 6, status("abc123", NodeState::Down, None));

    let outdated = Command::UpdateNodeSpec {
        id: "abc123".to_owned(),
        expected_version: read_at,
        spec: NodeSpec {
            availability: Availability::Drain,
            ..node(&state, "abc123").spec.clone()
        },
    };
    let err = rejected(&mut state, 7, outdated);
    assert_eq!(
        err,
        Rejected::StaleVersion {
            object: ObjectRef::Node("abc123".to_owned()),
            expected: read_at,
            actual: 6,
        }
    );
    assert!(
        err.to_string().starts_with("update out of sequence"),
        "{err}"
    );

    let fresh = spec_update(&state, "abc123", |spec| {
        spec.availability = Availability::Drain;
    });
    ok(&mut state, 7, fresh);
    assert_eq!(
        node(&state, "abc123").spec.availability,
        Availability::Drain
    );
}

#[test]
fn update_node_spec_validates_labels_and_name() {
    let mut state = with_workers();
    let long_key = "k".repeat(257);
    let cases: Vec<(BTreeMap<String, String>, &str, &str)> = vec![
        (labels(&[("", "v")]), "", "spec.labels"),
        (labels(&[("a key", "v")]), "", "spec.labels"),
        (labels(&[("a\tkey", "v")]), "", "spec.labels"),
        (labels(&[(long_key.as_str(), "v")]), "", "spec.labels"),
        (labels(&[("zone", "a\nb")]), "", "spec.labels.zone"),
        (BTreeMap::new(), "bad\u{7}name", "spec.name"),
    ];
    for (labels, name, field) in cases {
        let command = spec_update(&state, "abc123", |spec| {
            spec.labels = labels;
            name.clone_into(&mut spec.name);
        });
        let err = rejected(&mut state, 6, command);
        assert_eq!(invalid_field(&err), field, "{err}");
    }
    // The longest key allowed is accepted.
    let key = "k".repeat(256);
    let command = spec_update(&state, "abc123", |spec| {
        spec.labels = labels(&[(key.as_str(), "v w")]);
    });
    ok(&mut state, 6, command);
}

#[test]
fn update_node_spec_of_an_unknown_node_is_rejected() {
    let mut state = initialized();
    let spec = node(&state, FIRST).spec.clone();
    let err = rejected(
        &mut state,
        2,
        Command::UpdateNodeSpec {
            id: "nosuch".to_owned(),
            expected_version: 1,
            spec,
        },
    );
    assert_eq!(
        err,
        Rejected::NodeNotFound {
            id: "nosuch".to_owned()
        }
    );
    assert_eq!(err.to_string(), "node nosuch not found");
}

#[test]
fn demoting_the_last_manager_is_rejected() {
    let mut state = with_workers();
    let command = spec_update(&state, FIRST, |spec| spec.role = NodeRole::Worker);
    let err = rejected(&mut state, 6, command);
    assert_eq!(
        err,
        Rejected::LastManager {
            id: FIRST.to_owned()
        }
    );
    assert_eq!(
        err.to_string(),
        "attempting to demote the last manager of the swarm"
    );
}

#[test]
fn promote_then_demote_only_set_the_desired_role() {
    let mut state = with_workers();
    let promote = spec_update(&state, "abc123", |spec| spec.role = NodeRole::Manager);
    ok(&mut state, 6, promote);
    assert_eq!(node(&state, "abc123").spec.role, NodeRole::Manager);
    assert_eq!(node(&state, "abc123").manager, None, "membership is Raft's");
    assert_eq!(state.manager_count(), 2);
    assert_eq!(state.raft_members().count(), 1);

    // With two managers, the first may be demoted; it stays a member.
    let demote = spec_update(&state, FIRST, |spec| spec.role = NodeRole::Worker);
    ok(&mut state, 7, demote);
    assert_eq!(node(&state, FIRST).spec.role, NodeRole::Worker);
    assert!(node(&state, FIRST).manager.is_some());
    assert_eq!(state.manager_count(), 1);

    // Now abc123 is the last one.
    let demote = spec_update(&state, "abc123", |spec| spec.role = NodeRole::Worker);
    assert!(matches!(
        rejected(&mut state, 8, demote),
        Rejected::LastManager { .. }
    ));
}

// ---- SetNodeStatus --------------------------------------------------------

#[test]
fn set_node_status_records_the_observation_without_a_version_check() {
    let mut state = with_workers();
    let response = ok(
        &mut state,
        6,
        Command::SetNodeStatus {
            id: "abc123".to_owned(),
            state: NodeState::Down,
            message: "heartbeat failure".to_owned(),
            addr: None,
        },
    );
    assert_eq!(
        response,
        Response::NodeUpdated {
            id: "abc123".to_owned(),
            version: 6
        }
    );
    let w = node(&state, "abc123");
    assert_eq!(w.status.state, NodeState::Down);
    assert_eq!(w.status.message, "heartbeat failure");
    assert_eq!(w.status.addr, "10.99.0.2", "None keeps the address");
    assert_eq!(w.version, 6);

    ok(
        &mut state,
        7,
        status("abc123", NodeState::Ready, Some("fd00::7")),
    );
    let w = node(&state, "abc123");
    assert_eq!(w.status.state, NodeState::Ready);
    assert_eq!(w.status.message, "");
    assert_eq!(w.status.addr, "fd00::7");
    assert_eq!(w.version, 7);
}

#[test]
fn set_node_status_rejections() {
    let mut state = with_workers();
    let err = rejected(&mut state, 6, status("nosuch", NodeState::Down, None));
    assert!(matches!(err, Rejected::NodeNotFound { .. }));
    let err = rejected(
        &mut state,
        6,
        status("abc123", NodeState::Ready, Some("host-w1")),
    );
    assert_eq!(invalid_field(&err), "addr");
    let err = rejected(
        &mut state,
        6,
        Command::SetNodeStatus {
            id: "abc123".to_owned(),
            state: NodeState::Down,
            message: "x".repeat(4_097),
            addr: None,
        },
    );
    assert_eq!(invalid_field(&err), "message");
}

// ---- SetManagerInfo -------------------------------------------------------

#[test]
fn set_manager_info_records_membership_and_reachability() {
    let mut state = with_workers();
    let info = ManagerInfo {
        raft_id: 2,
        addr: "[fd00::2]:2377".to_owned(),
        reachability: Reachability::Reachable,
    };
    let response = ok(
        &mut state,
        6,
        Command::SetManagerInfo {
            id: "abc123".to_owned(),
            manager: Some(info.clone()),
        },
    );
    assert_eq!(
        response,
        Response::NodeUpdated {
            id: "abc123".to_owned(),
            version: 6
        }
    );
    assert_eq!(node(&state, "abc123").manager, Some(info.clone()));
    assert_eq!(state.raft_members().count(), 2);

    // The same member may update its own record (same raft id).
    let unreachable = ManagerInfo {
        reachability: Reachability::Unreachable,
        ..info
    };
    ok(
        &mut state,
        7,
        Command::SetManagerInfo {
            id: "abc123".to_owned(),
            manager: Some(unreachable),
        },
    );
    assert_eq!(node(&state, "abc123").version, 7);

    ok(
        &mut state,
        8,
        Command::SetManagerInfo {
            id: "abc123".to_owned(),
            manager: None,
        },
    );
    assert_eq!(node(&state, "abc123").manager, None);
    assert_eq!(node(&state, "abc123").version, 8);
    assert_eq!(state.node_by_raft_id(2), None);
}

#[test]
fn set_manager_info_rejections() {
    let mut state = with_workers();
    let info = |raft_id: u64, addr: &str| {
        Some(ManagerInfo {
            raft_id,
            addr: addr.to_owned(),
            reachability: Reachability::Reachable,
        })
    };
    let cmd = |id: &str, manager| Command::SetManagerInfo {
        id: id.to_owned(),
        manager,
    };
    let err = rejected(&mut state, 6, cmd("nosuch", None));
    assert!(matches!(err, Rejected::NodeNotFound { .. }));
    let err = rejected(&mut state, 6, cmd("abc123", info(1, "10.99.0.3:2377")));
    assert_eq!(
        err,
        Rejected::RaftIdInUse {
            raft_id: 1,
            node_id: FIRST.to_owned()
        }
    );
    let err = rejected(&mut state, 6, cmd("abc123", info(0, "10.99.0.3:2377")));
    assert_eq!(invalid_field(&err), "manager.raft_id");
    let err = rejected(&mut state, 6, cmd("abc123", info(2, "10.99.0.3")));
    assert_eq!(invalid_field(&err), "manager.addr");
    let err = rejected(&mut state, 6, cmd("abc123", info(2, "10.99.0.3:0")));
    assert_eq!(invalid_field(&err), "manager.addr");
}

// ---- UpdateNodeDescription ------------------------------------------------

fn description(id: &str, hostname: &str, tls: Option<NodeTlsInfo>) -> Command {
    Command::UpdateNodeDescription {
        id: id.to_owned(),
        hostname: hostname.to_owned(),
        platform: Platform {
            architecture: "aarch64".to_owned(),
            os: "linux".to_owned(),
        },
        engine_version: "0.2.0".to_owned(),
        tls,
        resources: NodeResources {
            nano_cpus: 2_000_000_000,
            memory_bytes: 1 << 30,
        },
    }
}

#[test]
fn update_node_description_replaces_the_description() {
    let mut state = with_workers();
    ok(
        &mut state,
        6,
        description("abc123", "renamed", Some(tls_info())),
    );
    let w = node(&state, "abc123");
    assert_eq!(w.version, 6);
    assert_eq!(
        w.description,
        NodeDescription {
            hostname: "renamed".to_owned(),
            platform: Platform {
                architecture: "aarch64".to_owned(),
                os: "linux".to_owned(),
            },
            engine_version: "0.2.0".to_owned(),
            tls: Some(tls_info()),
            resources: NodeResources {
                nano_cpus: 2_000_000_000,
                memory_bytes: 1 << 30,
            },
        }
    );
}

#[test]
fn update_node_description_rejections() {
    let mut state = with_workers();
    let err = rejected(&mut state, 6, description("nosuch", "h", None));
    assert!(matches!(err, Rejected::NodeNotFound { .. }));
    let err = rejected(&mut state, 6, description("abc123", "", None));
    assert_eq!(invalid_field(&err), "hostname");
    let err = rejected(&mut state, 6, description("abc123", "two words", None));
    assert_eq!(invalid_field(&err), "hostname");
    let bad_tls = NodeTlsInfo {
        cert_serial: String::new(),
        ..tls_info()
    };
    let err = rejected(&mut state, 6, description("abc123", "h", Some(bad_tls)));
    assert_eq!(invalid_field(&err), "tls.cert_serial");
}

// ---- RemoveNode -----------------------------------------------------------

fn remove(id: &str, force: bool) -> Command {
    Command::RemoveNode {
        id: id.to_owned(),
        force,
    }
}

#[test]
fn removing_a_ready_worker_needs_force() {
    let mut state = with_workers();
    let err = rejected(&mut state, 6, remove("abc123", false));
    assert_eq!(
        err,
        Rejected::NodeNotDown {
            id: "abc123".to_owned(),
            state: NodeState::Ready
        }
    );
    assert_eq!(
        err.to_string(),
        "node abc123 is not down and can't be removed"
    );

    let response = ok(&mut state, 6, remove("abc123", true));
    assert_eq!(
        response,
        Response::NodeRemoved {
            id: "abc123".to_owned()
        }
    );
    assert!(!state.nodes.contains_key("abc123"));
    assert!(state.is_removed("abc123"));
    assert!(matches!(
        state.node("abc123"),
        Err(Rejected::NodeNotFound { .. })
    ));
}

#[test]
fn removing_a_down_worker_needs_no_force() {
    let mut state = with_workers();
    ok(&mut state, 6, status("abd456", NodeState::Down, None));
    ok(&mut state, 7, remove("abd456", false));
    assert!(state.is_removed("abd456"));
    assert_eq!(state.nodes.len(), 2);
}

#[test]
fn removing_a_node_in_state_unknown_or_disconnected_needs_force() {
    let mut state = with_workers();
    for (index, node_state) in [(6, NodeState::Unknown), (7, NodeState::Disconnected)] {
        ok(&mut state, index, status("abd456", node_state, None));
        let err = rejected(&mut state, index + 1, remove("abd456", false));
        assert_eq!(
            err,
            Rejected::NodeNotDown {
                id: "abd456".to_owned(),
                state: node_state
            }
        );
    }
}

#[test]
fn removing_a_manager_is_rejected_even_with_force() {
    let mut state = with_workers();
    ok(&mut state, 6, status(FIRST, NodeState::Down, None));
    for force in [false, true] {
        let err = rejected(&mut state, 7, remove(FIRST, force));
        assert_eq!(
            err,
            Rejected::RemoveManager {
                id: FIRST.to_owned()
            }
        );
        assert!(
            err.to_string()
                .contains("It must be demoted to worker before removal")
        );
    }
}

#[test]
fn removing_a_demoted_node_still_in_raft_is_rejected() {
    let mut state = with_workers();
    ok(
        &mut state,
        6,
        Command::RegisterNode {
            node: manager("mgr2node", "host-m2", 2),
        },
    );
    let demote = spec_update(&state, "mgr2node", |spec| spec.role = NodeRole::Worker);
    ok(&mut state, 7, demote);
    let err = rejected(&mut state, 8, remove("mgr2node", true));
    assert_eq!(
        err,
        Rejected::DemotionPending {
            id: "mgr2node".to_owned()
        }
    );
    // Once Raft has removed it, it can go.
    ok(
        &mut state,
        8,
        Command::SetManagerInfo {
            id: "mgr2node".to_owned(),
            manager: None,
        },
    );
    ok(&mut state, 9, remove("mgr2node", true));
    assert!(state.is_removed("mgr2node"));
}

#[test]
fn removing_an_unknown_node_is_rejected() {
    let mut state = with_workers();
    let err = rejected(&mut state, 6, remove("nosuch", true));
    assert!(matches!(err, Rejected::NodeNotFound { .. }));
}

// ---- UpdateCluster --------------------------------------------------------

#[test]
fn update_cluster_replaces_the_spec() {
    let mut state = with_workers();
    let command = cluster_update(&state, |spec| {
        spec.dispatcher.heartbeat_period_ms = 1_000;
        spec.ca_config.node_cert_expiry_ms = 3_600_000;
        spec.raft.snapshot_interval = 500;
        spec.raft.keep_old_snapshots = 2;
        spec.task_history_retention_limit = -1;
        spec.labels = labels(&[("com.example.env", "prod")]);
    });
    let response = ok(&mut state, 6, command);
    assert_eq!(
        response,
        Response::ClusterUpdated {
            id: "swarm0id".to_owned(),
            version: 6
        }
    );
    let cluster = cluster(&state);
    assert_eq!(cluster.version, 6);
    assert_eq!(cluster.updated_at_ms, T0_MS + 6_000);
    assert_eq!(cluster.created_at_ms, T0_MS + 1_000);
    assert_eq!(cluster.spec.dispatcher.heartbeat_period_ms, 1_000);
    assert_eq!(cluster.spec.raft.snapshot_interval, 500);
    assert_eq!(cluster.spec.task_history_retention_limit, -1);
    assert_eq!(cluster.join_tokens.worker, WORKER_TOKEN, "not rotated");
    assert_eq!(cluster.join_tokens.manager, MANAGER_TOKEN, "not rotated");
}

#[test]
fn join_tokens_rotate_one_at_a_time() {
    let mut state = initialized();
    let Command::UpdateCluster {
        expected_version,
        spec,
        ..
    } = cluster_update(&state, |_| {})
    else {
        unreachable!()
    };
    ok(
        &mut state,
        2,
        Command::UpdateCluster {
            expected_version,
            spec: spec.clone(),
            rotate_worker_token: Some("SWMTKN-1-digest-newworker".to_owned()),
            rotate_manager_token: None,
        },
    );
    assert_eq!(
        cluster(&state).join_tokens.worker,
        "SWMTKN-1-digest-newworker"
    );
    assert_eq!(cluster(&state).join_tokens.manager, MANAGER_TOKEN);
    ok(
        &mut state,
        3,
        Command::UpdateCluster {
            expected_version: 2,
            spec,
            rotate_worker_token: None,
            rotate_manager_token: Some("SWMTKN-1-digest-newmanager".to_owned()),
        },
    );
    assert_eq!(
        cluster(&state).join_tokens.worker,
        "SWMTKN-1-digest-newworker"
    );
    assert_eq!(
        cluster(&state).join_tokens.manager,
        "SWMTKN-1-digest-newmanager"
    );
    assert_eq!(cluster(&state).version, 3);
}

#[test]
fn a_stale_cluster_update_is_rejected_and_the_fresh_one_accepted() {
    let mut state = initialized();
    let outdated = cluster_update(&state, |spec| spec.raft.snapshot_interval = 42);
    let unchanged = cluster_update(&state, |_| {});
    ok(&mut state, 2, unchanged);
    let err = rejected(&mut state, 3, outdated);
    assert_eq!(
        err,
        Rejected::StaleVersion {
            object: ObjectRef::Cluster("swarm0id".to_owned()),
            expected: 1,
            actual: 2,
        }
    );
    assert_eq!(
        err.to_string(),
        "update out of sequence: cluster swarm0id is at version 2, the update was based on \
         version 1"
    );
    let fresh = cluster_update(&state, |spec| spec.raft.snapshot_interval = 42);
    ok(&mut state, 3, fresh);
    assert_eq!(cluster(&state).spec.raft.snapshot_interval, 42);
}

#[test]
fn update_cluster_rejections() {
    let mut state = initialized();
    let rename = cluster_update(&state, |spec| spec.name = "prod".to_owned());
    let err = rejected(&mut state, 2, rename);
    assert_eq!(
        err,
        Rejected::invalid("spec.name", "modification of cluster name is not allowed")
    );
    let short_certs = cluster_update(&state, |spec| spec.ca_config.node_cert_expiry_ms = 60_000);
    let err = rejected(&mut state, 2, short_certs);
    assert_eq!(invalid_field(&err), "spec.ca_config.node_cert_expiry_ms");
    assert!(
        err.to_string()
            .contains("minimum certificate expiry time is 1h")
    );
    let new_range = cluster_update(&state, |spec| {
        spec.published_port_range = "8000-9000".parse().expect("a range");
    });
    let err = rejected(&mut state, 2, new_range);
    assert_eq!(invalid_field(&err), "spec.published_port_range");
    let no_heartbeat = cluster_update(&state, |spec| spec.dispatcher.heartbeat_period_ms = 0);
    let err = rejected(&mut state, 2, no_heartbeat);
    assert_eq!(invalid_field(&err), "spec.dispatcher.heartbeat_period_ms");

    let with_tokens = |worker: Option<&str>, manager: Option<&str>| Command::UpdateCluster {
        expected_version: 1,
        spec: SwarmSpec::default(),
        rotate_worker_token: worker.map(str::to_owned),
        rotate_manager_token: manager.map(str::to_owned),
    };
    let err = rejected(&mut state, 2, with_tokens(Some(MANAGER_TOKEN), None));
    assert_eq!(invalid_field(&err), "join_tokens");
    let err = rejected(&mut state, 2, with_tokens(None, Some("SWMTKN-1-a b")));
    assert_eq!(invalid_field(&err), "join_tokens.manager");
    let err = rejected(&mut state, 2, with_tokens(Some("plain"), None));
    assert_eq!(invalid_field(&err), "join_tokens.worker");

    let mut empty = ClusterState::default();
    let err = rejected(&mut empty, 1, with_tokens(None, None));
    assert_eq!(err, Rejected::NoCluster);
}

// ---- Versions -------------------------------------------------------------

type MakeCommand = Box<dyn Fn(&ClusterState) -> Command>;

#[test]
fn every_change_sets_the_version_to_the_log_index() {
    let mut state = initialized();
    let commands: Vec<MakeCommand> = vec![
        Box::new(|_| Command::RegisterNode {
            node: worker("abc123", "host-w1"),
        }),
        Box::new(|_| status("abc123", NodeState::Ready, None)),
        Box::new(|s| spec_update(s, "abc123", |spec| spec.availability = Availability::Pause)),
        Box::new(|_| description("abc123", "host-w1", None)),
        Box::new(|_| Command::SetManagerInfo {
            id: FIRST.to_owned(),
            manager: Some(ManagerInfo {
                raft_id: 1,
                addr: "10.99.0.1:2377".to_owned(),
                reachability: Reachability::Unreachable,
            }),
        }),
    ];
    // Raft indexes are increasing but not contiguous for this state machine
    // (membership entries take some).
    let mut index = 1;
    for make in commands {
        index += 3;
        let command = make(&state);
        let id = match &command {
            Command::SetManagerInfo { id, .. } => id.clone(),
            _ => "abc123".to_owned(),
        };
        let response = ok(&mut state, index, command);
        let expected = if index == 4 {
            Response::NodeRegistered {
                id: id.clone(),
                version: index,
            }
        } else {
            Response::NodeUpdated {
                id: id.clone(),
                version: index,
            }
        };
        assert_eq!(response, expected);
        assert_eq!(node(&state, &id).version, index);
        assert_eq!(node(&state, &id).updated_at_ms, meta(index).now_unix_ms);
    }
    assert_eq!(node(&state, "abc123").created_at_ms, meta(4).now_unix_ms);
    assert_eq!(
        cluster(&state).version,
        1,
        "node changes leave the cluster alone"
    );
    let unchanged = cluster_update(&state, |_| {});
    ok(&mut state, 100, unchanged);
    assert_eq!(cluster(&state).version, 100);
    assert_eq!(
        node(&state, FIRST).version,
        16,
        "cluster changes leave nodes alone"
    );
}

// ---- Lookups --------------------------------------------------------------

#[test]
fn node_lookup_resolves_id_then_name_then_unique_prefix() {
    let mut state = with_workers();
    let named = spec_update(&state, "abd456", |spec| spec.name = "Edge".to_owned());
    ok(&mut state, 6, named);

    let id_of = |query: &str| state.node(query).map(|node| node.id.clone());
    assert_eq!(id_of("abc123"), Ok("abc123".to_owned()), "exact ID");
    assert_eq!(id_of("host-w1"), Ok("abc123".to_owned()), "hostname");
    assert_eq!(
        id_of("HOST-W1"),
        Ok("abc123".to_owned()),
        "hostname, any case"
    );
    assert_eq!(id_of("edge"), Ok("abd456".to_owned()), "spec name");
    assert_eq!(id_of("abc"), Ok("abc123".to_owned()), "unique prefix");
    assert_eq!(id_of("mgr"), Ok(FIRST.to_owned()), "unique prefix");

    let err = state.node("ab").expect_err("two IDs start with ab");
    assert_eq!(
        err,
        Rejected::Ambiguous {
            kind: "node".to_owned(),
            query: "ab".to_owned(),
            matches: vec!["abc123".to_owned(), "abd456".to_owned()],
        }
    );
    assert_eq!(err.to_string(), "node ab is ambiguous (2 matches found)");

    for query in ["", "zzz", "abc1234", "host"] {
        assert_eq!(
            state.node(query),
            Err(Rejected::NodeNotFound {
                id: query.to_owned()
            }),
            "{query:?}"
        );
    }
}

#[test]
fn node_lookup_prefers_exact_id_and_reports_shared_names() {
    let mut state = initialized();
    for (index, id, hostname) in [(2, "abc", "same"), (3, "abcd", "same"), (4, "same", "x")] {
        ok(
            &mut state,
            index,
            Command::RegisterNode {
                node: worker(id, hostname),
            },
        );
    }
    assert_eq!(state.node("abc").map(|n| n.id.as_str()), Ok("abc"));
    // An exact ID beats a hostname.
    assert_eq!(state.node("same").map(|n| n.id.as_str()), Ok("same"));
    // A name shared by two nodes is ambiguous, and beats an ID prefix.
    ok(&mut state, 5, description("same", "y", None));
    assert_eq!(
        state.node("SAME"),
        Err(Rejected::Ambiguous {
            kind: "node".to_owned(),
            query: "SAME".to_owned(),
            matches: vec!["abc".to_owned(), "abcd".to_owned()],
        })
    );
}

#[test]
fn manager_helpers() {
    let mut state = with_workers();
    ok(
        &mut state,
        6,
        Command::RegisterNode {
            node: manager("mgr2node", "host-m2", 2),
        },
    );
    let ids: Vec<&str> = state.managers().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, [FIRST, "mgr2node"]);
    assert_eq!(state.manager_count(), 2);
    assert_eq!(state.raft_members().count(), 2);
    assert_eq!(state.node_by_raft_id(1).map(|n| n.id.as_str()), Some(FIRST));
    assert_eq!(state.node_by_raft_id(3), None);
    assert!(!state.is_removed("abc123"));
    assert_eq!(ClusterState::default().manager_count(), 0);
    assert_eq!(ClusterState::default().cluster(), Err(Rejected::NoCluster));
}

// ---- Serialisation and defaults --------------------------------------------

#[test]
fn a_populated_state_round_trips_through_json() {
    let mut state = with_workers();
    let command = spec_update(&state, "abc123", |spec| {
        spec.labels = labels(&[("zone", "a")]);
        spec.availability = Availability::Drain;
    });
    ok(&mut state, 6, command);
    ok(
        &mut state,
        7,
        description("abd456", "host-w2", Some(tls_info())),
    );
    ok(&mut state, 8, status("abd456", NodeState::Down, None));
    ok(&mut state, 9, remove("abd456", false));

    let json = serde_json::to_string(&state).expect("serialises");
    let back: ClusterState = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, state);

    let value = serde_json::to_value(&state).expect("serialises");
    let w = &value["nodes"]["abc123"];
    assert_eq!(w["spec"]["role"], "worker");
    assert_eq!(w["spec"]["availability"], "drain");
    assert_eq!(w["status"]["state"], "ready");
    assert_eq!(
        value["nodes"][FIRST]["manager"]["reachability"],
        "reachable"
    );
    assert_eq!(value["removed_nodes"], serde_json::json!(["abd456"]));
}

#[test]
fn commands_and_results_round_trip_through_json() {
    let commands = [
        init_command(),
        Command::RegisterNode {
            node: manager("mgr2node", "h", 2),
        },
        status("abc123", NodeState::Disconnected, Some("10.0.0.1")),
        remove("abc123", true),
    ];
    for command in commands {
        let json = serde_json::to_string(&command).expect("serialises");
        let back: Command = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, command);
    }
    let results: [Result<Response, Rejected>; 2] = [
        Ok(Response::NodeRemoved {
            id: "abc123".to_owned(),
        }),
        Err(Rejected::StaleVersion {
            object: ObjectRef::Node("abc123".to_owned()),
            expected: 1,
            actual: 2,
        }),
    ];
    for result in results {
        let json = serde_json::to_string(&result).expect("serialises");
        let back: Result<Response, Rejected> = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, result);
    }
}

#[test]
fn defaults_are_dockers() {
    let spec = SwarmSpec::default();
    assert_eq!(spec.name, "default");
    assert_eq!(spec.dispatcher.heartbeat_period_ms, 5_000);
    assert_eq!(spec.ca_config.node_cert_expiry_ms, 7_776_000_000);
    assert_eq!(spec.raft.snapshot_interval, 10_000);
    assert_eq!(spec.raft.election_tick, 10);
    assert_eq!(spec.raft.heartbeat_tick, 1);
    assert_eq!(spec.raft.keep_old_snapshots, 0);
    assert_eq!(spec.raft.log_entries_for_slow_followers, 500);
    assert_eq!(spec.task_history_retention_limit, 5);
    assert!(validate::swarm_spec("spec", &spec).is_ok());

    let empty: SwarmSpec = serde_json::from_str("{}").expect("deserialises");
    assert_eq!(empty, spec);
    let partial: SwarmSpec =
        serde_json::from_str(r#"{"raft":{"snapshot_interval":7}}"#).expect("deserialises");
    assert_eq!(partial.raft.snapshot_interval, 7);
    assert_eq!(partial.raft.election_tick, 10);
    let state: ClusterState = serde_json::from_str("{}").expect("deserialises");
    assert_eq!(state, ClusterState::default());
}

#[test]
fn debug_hides_the_ca_key_and_the_tokens() {
    let state = initialized();
    let debug = format!("{state:?}");
    assert!(!debug.contains("MIGH"), "CA key printed");
    assert!(!debug.contains("secret"), "token printed");
    assert!(debug.contains("<redacted>"));
}

// ---- Validation helpers ----------------------------------------------------

#[test]
fn address_pools() {
    let pool = |cidrs: &[&str], size| {
        let cidrs: Vec<String> = cidrs.iter().map(|c| (*c).to_owned()).collect();
        validate::addr_pool("pool", &cidrs, "size", size)
    };
    assert!(pool(&["10.0.0.0/8"], 24).is_ok());
    assert!(
        pool(&["10.0.0.0/24", "10.0.1.0/24"], 24).is_ok(),
        "adjacent"
    );
    assert!(pool(&["10.0.0.0/16", "192.168.0.0/16"], 29).is_ok());
    assert!(
        pool(&["10.0.1.0/24", "10.0.0.0/16"], 24).is_err(),
        "overlap"
    );
    assert!(
        pool(&["10.0.0.0/8", "10.0.0.0/8"], 24).is_err(),
        "duplicate"
    );
    assert!(pool(&["10.0.0.0"], 24).is_err(), "no prefix");
    assert!(pool(&["10.0.0.0/33"], 24).is_err());
    assert!(pool(&["0.0.0.0/0"], 8).is_ok());
    assert_eq!(
        validate::ipv4_cidr("f", "10.1.2.3/16"),
        Err(Rejected::invalid(
            "f",
            "10.1.2.3/16 has host bits set; did you mean 10.1.0.0/16?"
        ))
    );
}
