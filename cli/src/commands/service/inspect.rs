//! `shoal service inspect`: services as JSON, as `docker service inspect`
//! prints them, or with `--pretty` as docker's template lays them out
//! ([`pretty`]).

use std::fmt::Write as _;

use serde_json::Value;
use shoal_api::{
    Client,
    docker::Service,
    service::{ContainerSpec, Placement, ServiceMode, TaskSpec, UpdateConfig},
};

use crate::{
    docker_error::{DockerError, is_not_found},
    duration::format_go_duration,
    output::json_indented,
    units::bytes_size,
};

/// Runs `shoal service inspect`.
pub(super) async fn inspect(
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
            let service: Service = serde_json::from_value(value)
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

/// Go's `%v` of a `[]string`: `[a b]`.
fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// `docker service inspect --pretty` of one service (docker's template,
/// for the fields shoal has), without the final newline.
fn pretty(service: &Service) -> String {
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

fn pretty_endpoint(out: &mut String, service: &Service) {
    let endpoint_mode = service
        .spec
        .endpoint_spec
        .as_ref()
        .map_or("", |e| e.mode.as_str());
    let _ = write!(out, "\nEndpoint Mode:\t{endpoint_mode}");
    let ports = &service.endpoint.ports;
    if !ports.is_empty() {
        out.push_str("\nPorts:");
        for port in ports {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn service(json: Value) -> Service {
        serde_json::from_value(json).expect("a service")
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
}
