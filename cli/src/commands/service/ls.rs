//! `shoal service ls`: the services as `docker service ls` lists them,
//! sorted by name, published ports merged into ranges ([`ls_table`]).

use shoal_api::{
    Client,
    docker::Service,
    service::{PortConfig, ServiceMode},
};

use crate::{
    docker_error::DockerError,
    filters::{parse_filters, with_filters},
    output::{Table, display_image, natural_cmp, truncate_id},
};

/// Runs `shoal service ls`.
pub(super) async fn ls(client: &Client, quiet: bool, filter: &[String]) -> Result<(), DockerError> {
    let filters = parse_filters(filter)?;
    let path = if quiet {
        "/services"
    } else {
        "/services?status=true"
    };
    let mut services: Vec<Service> = client.get_json(&with_filters(path, &filters)).await?;
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
fn ls_table(mut services: Vec<Service>) -> String {
    services.sort_by(|a, b| natural_cmp(&a.spec.name, &b.spec.name));
    let mut table = Table::new(["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]);
    for service in &services {
        let (running, desired) = service
            .service_status
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
            ports_text(&service.endpoint.ports),
        ]);
    }
    table.render()
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
        let (published, target) = (u32::from(port.published_port), u32::from(port.target_port));
        let is_range = range.t_end != range.t_start;
        let overlaps = target <= range.t_end;
        if port.protocol() != range.protocol
            || published.wrapping_sub(range.p_end) > 1
            || target.wrapping_sub(range.t_end) > 1
            || (is_range && overlaps)
        {
            if range.p_start > 0 {
                out.push(text(&range));
            }
            range = Range {
                p_start: published,
                p_end: published,
                t_start: target,
                t_end: target,
                protocol: port.protocol(),
            };
            continue;
        }
        range.p_end = published;
        range.t_end = target;
    }
    if range.p_start > 0 {
        out.push(text(&range));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn service(json: Value) -> Service {
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
            ..PortConfig::default()
        };
        assert_eq!(
            ports_text(&[port(80, 80), port(81, 81), port(82, 80)]),
            "*:80-81->80-81/tcp, *:82->80/tcp"
        );
        assert_eq!(ports_text(&[port(80, 80), port(81, 80)]), "*:80-81->80/tcp");
        assert_eq!(ports_text(&[]), "");
    }
}
