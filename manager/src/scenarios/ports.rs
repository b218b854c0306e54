//! `apply` for published ports: allocation through Raft (lowest free of
//! the swarm's range, explicit ones checked across services), the
//! implicit attachment to the ingress network, updates that keep and free
//! ports, refusals that change nothing; and the scheduler's, the
//! dispatcher's and the Docker views' view of them.

use shoal_api::{
    network::NetworkAttachmentConfig,
    service::{EndpointSpec, PortConfig, ReplicatedService, ServiceMode, ServiceSpec, TaskState},
};

use crate::{
    dispatcher, docker_view,
    orchestrator::simulation::Rounds,
    ports::PortRange,
    state::{
        Command, Rejected, Service, SwarmSpec,
        test_support::{Sim, node_with, service_with},
    },
};

fn port(published: u16, target: u16) -> PortConfig {
    PortConfig {
        target_port: target,
        published_port: published,
        ..PortConfig::default()
    }
}

fn host(published: u16, target: u16) -> PortConfig {
    PortConfig {
        publish_mode: "host".into(),
        ..port(published, target)
    }
}

fn set_ports(spec: &mut ServiceSpec, ports: &[PortConfig]) {
    spec.endpoint_spec = Some(EndpointSpec {
        mode: "vip".into(),
        ports: ports.to_vec(),
    });
}

fn publishing(id: &str, name: &str, replicas: u64, ports: &[PortConfig]) -> Service {
    let mut service = service_with(
        id,
        name,
        ServiceMode::Replicated(ReplicatedService {
            replicas: Some(replicas),
        }),
    );
    set_ports(&mut service.spec, ports);
    service
}

fn published(sim: &Sim, id: &str) -> Vec<u16> {
    sim.state.services[id]
        .ports
        .iter()
        .map(|p| p.published_port)
        .collect()
}

#[test]
fn omitted_ports_get_the_lowest_free_and_explicit_ones_are_kept() {
    let mut sim = Sim::new(&[node_with("a", "a", &[])]);
    sim.create(&publishing("s1", "web", 1, &[port(0, 80), port(8080, 81)]));
    sim.create(&publishing("s2", "api", 1, &[port(0, 80)]));
    assert_eq!(published(&sim, "s1"), [30000, 8080]);
    assert_eq!(published(&sim, "s2"), [30001]);
    let resolved = &sim.state.services["s1"].ports[0];
    assert_eq!(
        (resolved.protocol.as_str(), resolved.publish_mode.as_str()),
        ("tcp", "ingress"),
        "resolved ports spell out their defaults"
    );
    // The spec is stored as sent.
    assert_eq!(sim.state.services["s1"].spec.ports()[0], port(0, 80));
}

#[test]
fn the_range_comes_from_the_swarm() {
    let mut sim = Sim::new(&[]);
    if let Some(cluster) = sim.state.cluster.as_mut() {
        cluster.spec.published_port_range = PortRange {
            start: 9000,
            end: 9001,
        };
    }
    sim.create(&publishing("s1", "web", 1, &[port(0, 80), port(0, 81)]));
    assert_eq!(published(&sim, "s1"), [9000, 9001]);
    let error = sim.rejected(Command::CreateService {
        id: "s2".into(),
        spec: publishing("s2", "api", 1, &[port(0, 80)]).spec,
    });
    assert_eq!(
        error.to_string(),
        "could not find an available tcp port in the published port range 9000-9001"
    );
}

#[test]
fn a_conflict_names_the_holder_and_changes_nothing() {
    let mut sim = Sim::new(&[]);
    sim.create(&publishing(
        "s1",
        "web",
        1,
        &[port(8080, 80), host(9090, 90)],
    ));
    let before = sim.state.clone();
    let error = sim.rejected(Command::CreateService {
        id: "s2".into(),
        spec: publishing("s2", "api", 1, &[port(8080, 80)]).spec,
    });
    assert_eq!(
        error,
        Rejected::PortInUse {
            port: 8080,
            service_name: "web".into(),
            service_id: "s1".into(),
            host_mode: false,
        }
    );
    assert_eq!(
        error.to_string(),
        "port '8080' is already in use by service 'web' (s1) as an ingress port"
    );
    let error = sim.rejected(Command::CreateService {
        id: "s2".into(),
        spec: publishing("s2", "api", 1, &[port(9090, 80)]).spec,
    });
    assert!(
        error.to_string().ends_with("as a host-published port"),
        "{error}"
    );
    assert_eq!(sim.state, before);
    // Another host-mode service may share a host port (the scheduler
    // keeps them apart); udp is another port space.
    sim.create(&publishing("s2", "api", 1, &[host(9090, 80)]));
    let mut udp = port(8080, 53);
    udp.protocol = "udp".into();
    sim.create(&publishing("s3", "dns", 1, &[udp]));
}

#[test]
fn invalid_endpoint_specs_are_refused() {
    let mut sim = Sim::new(&[]);
    let refused = |sim: &mut Sim, spec: ServiceSpec| {
        sim.rejected(Command::CreateService {
            id: "s1".into(),
            spec,
        })
        .to_string()
    };
    let mut dnsrr = publishing("s1", "web", 1, &[port(8080, 80)]).spec;
    dnsrr.endpoint_spec = Some(EndpointSpec {
        mode: "dnsrr".into(),
        ports: vec![port(8080, 80)],
    });
    assert_eq!(
        refused(&mut sim, dnsrr),
        "EndpointSpec: port published with ingress mode can't be used with dnsrr mode"
    );
    let twice = publishing("s1", "web", 1, &[port(8080, 80), port(8080, 81)]).spec;
    assert!(refused(&mut sim, twice).contains("duplicate published ports provided"));
    let managers = publishing("s1", "web", 1, &[port(2377, 80)]).spec;
    assert!(refused(&mut sim, managers).contains("2377/tcp is reserved"));
    let mut sctp = port(8080, 80);
    sctp.protocol = "sctp".into();
    let sctp = publishing("s1", "web", 1, &[sctp]).spec;
    assert!(refused(&mut sim, sctp).contains("sctp is not supported"));
    let no_target = publishing("s1", "web", 1, &[port(8080, 0)]).spec;
    assert!(refused(&mut sim, no_target).contains("TargetPort"));
    let host_any = publishing("s1", "web", 1, &[host(0, 80)]).spec;
    assert!(refused(&mut sim, host_any).contains("host mode needs its number"));
    let mut odd = port(8080, 80);
    odd.publish_mode = "bridge".into();
    let odd = publishing("s1", "web", 1, &[odd]).spec;
    assert!(refused(&mut sim, odd).contains("expected ingress or host"));
    // dnsrr with a host-mode port is fine, as Docker.
    let mut dnsrr_host = publishing("s1", "web", 1, &[]).spec;
    dnsrr_host.endpoint_spec = Some(EndpointSpec {
        mode: "dnsrr".into(),
        ports: vec![host(8080, 80)],
    });
    sim.ok(Command::CreateService {
        id: "s1".into(),
        spec: dnsrr_host,
    });
}

#[test]
fn an_update_keeps_asked_ports_and_frees_removed_ones() {
    let mut sim = Sim::new(&[node_with("a", "a", &[])]);
    sim.create(&publishing("s1", "web", 1, &[port(0, 80), port(0, 81)]));
    assert_eq!(published(&sim, "s1"), [30000, 30001]);
    // 80 stays, 81 goes, 82 comes: it takes the freed number.
    sim.update("s1", |spec| set_ports(spec, &[port(0, 82), port(0, 80)]));
    assert_eq!(published(&sim, "s1"), [30001, 30000]);
    // Removing every port frees them for another service.
    sim.update("s1", |spec| set_ports(spec, &[]));
    assert!(sim.state.services["s1"].ports.is_empty());
    sim.create(&publishing("s2", "api", 1, &[port(0, 80)]));
    assert_eq!(published(&sim, "s2"), [30000]);
    // A refused update changes nothing.
    let before = sim.state.clone();
    let service = &sim.state.services["s1"];
    let mut spec = service.spec.clone();
    set_ports(&mut spec, &[port(30000, 80)]);
    let error = sim.rejected(Command::UpdateService {
        id: "s1".into(),
        expected_version: service.version,
        spec,
    });
    assert!(matches!(error, Rejected::PortInUse { .. }), "{error}");
    assert_eq!(sim.state, before);
}

#[test]
fn publishing_attaches_to_ingress_first_with_the_ports_on_its_vip() {
    let mut sim = Sim::new(&[node_with("a", "a", &[])]);
    sim.ok(Command::CreateNetwork {
        id: "n1".into(),
        spec: shoal_api::network::NetworkSpec {
            name: "front".into(),
            ..Default::default()
        },
    });
    let ingress = sim.state.ingress_network().expect("ingress").clone();
    let mut web = publishing("s1", "web", 2, &[port(8080, 80), port(0, 90)]);
    web.spec.task_template.networks = vec![NetworkAttachmentConfig {
        target: "n1".into(),
        aliases: Vec::new(),
    }];
    sim.create(&web);
    sim.converge();
    let service = &sim.state.services["s1"];
    assert_eq!(
        service.virtual_ips.keys().collect::<Vec<_>>().len(),
        2,
        "a VIP on ingress and on front"
    );
    assert_eq!(service.virtual_ips[&ingress.id].to_string(), "10.0.0.2");
    assert!(
        service.spec.task_template.networks.len() == 1,
        "ingress is not added to the stored spec"
    );
    let tasks = sim.wanted_running("s1");
    assert_eq!(tasks.len(), 2);
    for task in &tasks {
        assert!(task.addresses.contains_key(&ingress.id));
        assert!(task.addresses.contains_key("n1"));
    }

    let assignments = dispatcher::assignments_for(&sim.state, "a");
    let assignment = &assignments[&tasks[0].id];
    let names: Vec<(&str, bool)> = assignment
        .networks
        .iter()
        .map(|n| (n.name.as_str(), n.ingress))
        .collect();
    assert_eq!(
        names,
        [("ingress", true), ("front", false)],
        "ingress is eth0"
    );

    let vips = dispatcher::service_vips(&sim.state);
    let on_ingress = &vips[&format!("s1/{}", ingress.vni)];
    assert_eq!(on_ingress.ports, service.ports);
    assert_eq!(on_ingress.ports[1].published_port, 30000);
    let on_front = vips.values().find(|v| v.vni != ingress.vni).expect("front");
    assert!(on_front.ports.is_empty());
    // Every task's ingress address is an overlay endpoint.
    let endpoints = dispatcher::overlay_endpoints(&sim.state);
    assert_eq!(
        endpoints.values().filter(|e| e.vni == ingress.vni).count(),
        2
    );

    // Explicitly attaching to ingress is refused, as Docker.
    let mut explicit = publishing("s2", "api", 1, &[]);
    explicit.spec.task_template.networks = vec![NetworkAttachmentConfig {
        target: ingress.id.clone(),
        aliases: Vec::new(),
    }];
    let error = sim.rejected(Command::CreateService {
        id: "s2".into(),
        spec: explicit.spec,
    });
    assert!(
        error
            .to_string()
            .contains("cannot be explicitly attached to the ingress network"),
        "{error}"
    );
}

#[test]
fn ingress_stays_while_a_service_publishes() {
    let mut sim = Sim::new(&[node_with("a", "a", &[])]);
    let ingress = sim.state.ingress_network().expect("ingress").id.clone();
    sim.create(&publishing("s1", "web", 1, &[port(8080, 80)]));
    sim.converge();
    let error = sim.rejected(Command::RemoveNetwork {
        id: ingress.clone(),
    });
    assert_eq!(
        error,
        Rejected::IngressInUse {
            service_id: "s1".into()
        }
    );
    assert_eq!(
        error.to_string(),
        "ingress network cannot be removed because service s1 depends on it"
    );
    sim.ok(Command::RemoveService { id: "s1".into() });
    sim.converge();
    sim.ok(Command::RemoveNetwork { id: ingress });
    assert!(sim.state.ingress_network().is_none());
    let error = sim.rejected(Command::CreateService {
        id: "s2".into(),
        spec: publishing("s2", "api", 1, &[port(8080, 80)]).spec,
    });
    assert!(
        error.to_string().contains("service needs ingress network"),
        "{error}"
    );
    // A service without ports does not need it.
    sim.create(&publishing("s3", "quiet", 1, &[]));
}

#[test]
fn a_node_runs_one_task_per_host_mode_port() {
    let mut sim = Sim::new(&[node_with("a", "a", &[]), node_with("b", "b", &[])]);
    sim.create(&publishing("s1", "web", 3, &[host(8080, 80)]));
    sim.converge();
    let tasks: Vec<_> = sim
        .state
        .service_tasks("s1")
        .filter(|t| t.desired_state == TaskState::Running)
        .collect();
    let running: Vec<_> = tasks
        .iter()
        .filter(|t| t.status.state == TaskState::Running)
        .collect();
    assert_eq!(running.len(), 2, "one per node");
    assert_ne!(running[0].node_id, running[1].node_id);
    let pending = tasks
        .iter()
        .find(|t| t.status.state == TaskState::Pending)
        .expect("the third waits");
    assert_eq!(
        pending.status.message,
        "no suitable node (host-mode port already in use on 2 nodes)"
    );
    // Another service's host port elsewhere does not clash.
    sim.create(&publishing("s2", "api", 1, &[host(9090, 80)]));
    sim.converge();
    assert_eq!(
        sim.state
            .service_tasks("s2")
            .filter(|t| t.status.state == TaskState::Running)
            .count(),
        1
    );
}

#[test]
fn publishing_by_update_replaces_the_tasks_with_ingress_ones() {
    let mut sim = Sim::new(&[node_with("a", "a", &[])]);
    let ingress = sim.state.ingress_network().expect("ingress").id.clone();
    sim.create(&publishing("s1", "web", 2, &[]));
    sim.converge();
    assert!(
        sim.wanted_running("s1")
            .iter()
            .all(|t| !t.addresses.contains_key(&ingress))
    );
    sim.update("s1", |spec| set_ports(spec, &[port(8080, 80)]));
    sim.converge();
    let tasks = sim.wanted_running("s1");
    assert_eq!(tasks.len(), 2);
    assert!(
        tasks.iter().all(|t| t.addresses.contains_key(&ingress)),
        "the tasks were replaced by ones on ingress"
    );
    // A new number for the same target keeps the tasks.
    let ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
    sim.update("s1", |spec| set_ports(spec, &[port(9090, 80)]));
    sim.converge();
    let again: Vec<String> = sim
        .wanted_running("s1")
        .iter()
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(again, ids);
    sim.update("s1", |spec| set_ports(spec, &[]));
    sim.converge();
    assert!(
        sim.wanted_running("s1")
            .iter()
            .all(|t| !t.addresses.contains_key(&ingress))
    );
    assert!(!sim.state.services["s1"].virtual_ips.contains_key(&ingress));
}

#[test]
fn the_docker_view_shows_spec_resolved_ports_and_ingress_first() {
    let mut sim = Sim::new(&[node_with("a", "a", &[])]);
    sim.ok(Command::CreateNetwork {
        id: "0front".into(),
        spec: shoal_api::network::NetworkSpec {
            name: "front".into(),
            ..Default::default()
        },
    });
    let ingress = sim.state.ingress_network().expect("ingress").id.clone();
    let mut web = publishing("s1", "web", 1, &[port(0, 80), host(9090, 90)]);
    web.spec.task_template.networks = vec![NetworkAttachmentConfig {
        target: "0front".into(),
        aliases: Vec::new(),
    }];
    sim.create(&web);
    sim.converge();
    let view = serde_json::to_value(docker_view::service(
        &sim.state,
        &sim.state.services["s1"],
        false,
    ))
    .expect("json");
    let endpoint = &view["Endpoint"];
    assert_eq!(
        endpoint["Spec"],
        serde_json::json!({"Mode": "vip", "Ports": [
            {"TargetPort": 80},
            {"TargetPort": 90, "PublishedPort": 9090, "PublishMode": "host"}]}),
        "the spec as sent"
    );
    assert_eq!(
        endpoint["Ports"],
        serde_json::json!([
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 30000, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 90, "PublishedPort": 9090, "PublishMode": "host"}])
    );
    // Ingress comes first whatever the IDs' order, as Docker lists it.
    assert_eq!(endpoint["VirtualIPs"][0]["NetworkID"], ingress.as_str());
    assert_eq!(endpoint["VirtualIPs"][0]["Addr"], "10.0.0.2/24");
    assert_eq!(endpoint["VirtualIPs"][1]["NetworkID"], "0front");

    let task = sim.wanted_running("s1")[0];
    let view = serde_json::to_value(docker_view::task(&sim.state, task)).expect("json");
    assert_eq!(
        view["NetworksAttachments"][0]["Network"]["ID"],
        ingress.as_str()
    );
    assert_eq!(
        view["NetworksAttachments"][0]["Network"]["Spec"]["Ingress"],
        true
    );
    assert_eq!(
        view["Status"]["PortStatus"],
        serde_json::json!({"Ports": [
            {"Protocol": "tcp", "TargetPort": 90, "PublishedPort": 9090, "PublishMode": "host"}]}),
        "a running task shows its host-mode ports"
    );
    let network =
        serde_json::to_value(docker_view::network(&sim.state.networks[&ingress])).expect("json");
    assert_eq!(network["Ingress"], true);
    assert_eq!(network["Name"], "ingress");
}

#[test]
fn the_range_is_read_from_the_init_spec_and_shown() {
    let docker = shoal_api::docker::SwarmSpec {
        published_port_range: Some("8000-8999".into()),
        ..shoal_api::docker::SwarmSpec::default()
    };
    let spec = docker_view::swarm_spec_from_docker(&docker, SwarmSpec::default()).expect("valid");
    assert_eq!(
        spec.published_port_range,
        PortRange {
            start: 8000,
            end: 8999
        }
    );
    // Absent (the docker CLI's swarm update): kept.
    let kept = docker_view::swarm_spec_from_docker(&shoal_api::docker::SwarmSpec::default(), spec)
        .expect("valid");
    assert_eq!(kept.published_port_range.to_string(), "8000-8999");
    for bad in ["9000-8000", "0-10", "x"] {
        let docker = shoal_api::docker::SwarmSpec {
            published_port_range: Some(bad.into()),
            ..shoal_api::docker::SwarmSpec::default()
        };
        assert!(
            docker_view::swarm_spec_from_docker(&docker, SwarmSpec::default()).is_err(),
            "{bad}"
        );
    }
    let sim = Sim::new(&[]);
    let cluster = sim.state.cluster.as_ref().expect("a swarm");
    let shown = docker_view::swarm(cluster);
    assert_eq!(
        shown.spec.published_port_range.as_deref(),
        Some("30000-32767")
    );
}
