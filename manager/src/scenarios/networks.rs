//! `apply` for overlay networks and the addresses of services and tasks:
//! subnets and VNIs carved lowest first, VIPs and task addresses allocated
//! and released, exhaustion refused up front, networks in use kept.

use std::net::Ipv4Addr;

use shoal_api::{
    network::{IpamConfig, NetworkAttachmentConfig, NetworkSpec},
    service::{ReplicatedService, ServiceMode, TaskState},
};

use crate::{
    orchestrator::simulation::Rounds,
    state::{
        Command, Rejected, Service,
        test_support::{Sim, node_with, service_with},
    },
};

fn network(name: &str, subnet: &str) -> NetworkSpec {
    let mut spec = NetworkSpec {
        name: name.to_owned(),
        driver: "overlay".to_owned(),
        ..NetworkSpec::default()
    };
    if !subnet.is_empty() {
        spec.ipam.config.push(IpamConfig {
            subnet: subnet.to_owned(),
            gateway: String::new(),
        });
    }
    spec
}

fn create_network(sim: &mut Sim, id: &str, name: &str, subnet: &str) {
    sim.ok(Command::CreateNetwork {
        id: id.to_owned(),
        spec: network(name, subnet),
    });
}

fn on_network(replicas: u64, network: &str) -> Service {
    let mut service = service_with(
        "s1",
        "web",
        ServiceMode::Replicated(ReplicatedService {
            replicas: Some(replicas),
        }),
    );
    service.spec.task_template.networks = vec![NetworkAttachmentConfig {
        target: network.to_owned(),
        aliases: Vec::new(),
    }];
    service
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().expect("an address")
}

#[test]
fn networks_get_the_lowest_free_subnet_and_vni() {
    let mut sim = Sim::new(&[]);
    create_network(&mut sim, "n1", "front", "");
    create_network(&mut sim, "n2", "back", "10.0.2.0/24");
    create_network(&mut sim, "n3", "third", "");
    let nets = &sim.state.networks;
    // The ingress network, made at init, holds the first ones.
    let ingress = sim.state.ingress_network().expect("ingress");
    assert_eq!(
        (ingress.subnet.as_str(), ingress.vni),
        ("10.0.0.0/24", 4096)
    );
    assert_eq!(
        (nets["n1"].subnet.as_str(), nets["n1"].vni),
        ("10.0.1.0/24", 4097)
    );
    assert_eq!(nets["n1"].gateway, ip("10.0.1.1"));
    assert_eq!(
        (nets["n2"].subnet.as_str(), nets["n2"].vni),
        ("10.0.2.0/24", 4098)
    );
    assert_eq!(
        (nets["n3"].subnet.as_str(), nets["n3"].vni),
        ("10.0.3.0/24", 4099)
    );
    assert_eq!(sim.state.network("back").map(|n| n.id.as_str()), Ok("n2"));
}

#[test]
fn bad_networks_are_refused_and_change_nothing() {
    let mut sim = Sim::new(&[]);
    create_network(&mut sim, "n1", "front", "10.1.0.0/16");
    let before = sim.state.clone();
    for (spec, what) in [
        (network("front", ""), "already exists"),
        (network("other", "10.1.5.0/24"), "overlaps"),
        (network("other", "10.2.0.1/24"), "host bits"),
        (network("bad name!", ""), "invalid network name"),
        (
            NetworkSpec {
                driver: "bridge".into(),
                ..network("other", "")
            },
            "overlay driver",
        ),
    ] {
        let error = sim.rejected(Command::CreateNetwork {
            id: "n9".into(),
            spec,
        });
        assert!(error.to_string().contains(what), "{error}");
    }
    assert_eq!(sim.state, before);
}

#[test]
fn services_get_a_vip_and_tasks_an_address_each() {
    let mut sim = Sim::new(&[node_with("a", "a", &[]), node_with("b", "b", &[])]);
    create_network(&mut sim, "n1", "front", "10.0.9.0/24");
    sim.create(&on_network(3, "n1"));
    sim.converge();
    assert_eq!(sim.state.services["s1"].virtual_ips["n1"], ip("10.0.9.2"));
    let mut addrs: Vec<Ipv4Addr> = sim
        .wanted_running("s1")
        .iter()
        .map(|t| t.addresses["n1"])
        .collect();
    addrs.sort();
    assert_eq!(addrs, [ip("10.0.9.3"), ip("10.0.9.4"), ip("10.0.9.5")]);

    // A scaled-down task's address is free again once it stopped.
    sim.update("s1", |spec| {
        spec.mode = ServiceMode::Replicated(ReplicatedService { replicas: Some(2) });
    });
    sim.converge();
    sim.update("s1", |spec| {
        spec.mode = ServiceMode::Replicated(ReplicatedService { replicas: Some(3) });
    });
    sim.converge();
    let mut addrs: Vec<Ipv4Addr> = sim
        .wanted_running("s1")
        .iter()
        .map(|t| t.addresses["n1"])
        .collect();
    addrs.sort();
    assert_eq!(addrs, [ip("10.0.9.3"), ip("10.0.9.4"), ip("10.0.9.5")]);
}

#[test]
fn exhaustion_is_an_error_at_create_and_scale() {
    let mut sim = Sim::new(&[node_with("a", "a", &[])]);
    // A /29 has 6 hosts: the gateway and 5 more.
    create_network(&mut sim, "n1", "tiny", "10.0.7.0/29");
    let error = sim.rejected(Command::CreateService {
        id: "s1".into(),
        spec: on_network(5, "n1").spec,
    });
    assert!(matches!(error, Rejected::Exhausted(_)), "{error}");
    assert!(
        error
            .to_string()
            .contains("has 5 free addresses, the service needs 6"),
        "{error}"
    );
    assert!(sim.state.services.is_empty());

    sim.create(&on_network(4, "n1"));
    sim.converge();
    let service = sim.state.services["s1"].clone();
    let mut spec = service.spec.clone();
    spec.mode = ServiceMode::Replicated(ReplicatedService { replicas: Some(5) });
    let error = sim.rejected(Command::UpdateService {
        id: "s1".into(),
        expected_version: service.version,
        spec,
    });
    assert!(matches!(error, Rejected::Exhausted(_)), "{error}");
}

#[test]
fn a_network_in_use_stays_and_an_unknown_one_is_refused() {
    let mut sim = Sim::new(&[node_with("a", "a", &[])]);
    create_network(&mut sim, "n1", "front", "");
    let error = sim.rejected(Command::CreateService {
        id: "s1".into(),
        spec: on_network(1, "nope").spec,
    });
    assert!(matches!(error, Rejected::NetworkNotFound { .. }), "{error}");
    sim.create(&on_network(1, "n1"));
    sim.converge();
    let error = sim.rejected(Command::RemoveNetwork { id: "n1".into() });
    assert_eq!(error.to_string(), "network front is in use by service web");
    sim.ok(Command::RemoveService { id: "s1".into() });
    sim.converge();
    assert!(
        sim.state
            .tasks
            .values()
            .all(|t| t.status.state.is_final() || t.desired_state >= TaskState::Shutdown)
    );
    sim.ok(Command::RemoveNetwork { id: "n1".into() });
    assert!(!sim.state.networks.contains_key("n1"));
}
