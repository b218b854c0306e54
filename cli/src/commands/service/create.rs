//! `shoal service create`, as `docker service create`: the flags → spec
//! translation ([`CreateArgs::spec`], with the flags `update` shares in
//! [`ServiceFlags`]), the networks resolved to IDs, then, unless
//! `--detach`, the convergence progress.

use clap::Args;
use shoal_api::{
    Client,
    docker::ServiceCreateResponse,
    network::NetworkAttachmentConfig,
    service::{
        ContainerSpec, EndpointSpec, GlobalService, Placement, PlacementPreference, PortConfig,
        ReplicatedService, ServiceMode, ServiceSpec, TaskSpec,
    },
};

use super::{
    flags::{ServiceFlags, parse_placement_pref},
    networks::{parse_attachment, resolve_attachments},
    ports::parse_publish,
    progress::report_and_wait,
};
use crate::{
    docker_error::DockerError,
    flag_values::{make_env, parse_label},
};

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
    publish: Vec<PortConfig>,
    /// The image, then the command and its arguments (as docker, flags
    /// after the image belong to the command).
    #[arg(
        required = true,
        trailing_var_arg = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    image_and_args: Vec<String>,
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

/// Runs `shoal service create`.
pub(super) async fn create(client: &Client, args: &CreateArgs) -> Result<(), DockerError> {
    let mut spec = args.spec()?;
    resolve_attachments(client, &mut spec.task_template.networks).await?;
    let created: ServiceCreateResponse = client.post_json("/services/create", &spec).await?;
    report_and_wait(
        client,
        &created.id,
        &created.warnings,
        args.common.detach,
        args.common.quiet,
    )
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use shoal_api::service::{RestartCondition, RestartPolicy};

    use super::*;
    use crate::test_support::{attachments, parse_flags};

    /// The spec of `shoal service create <args>`.
    fn create(args: &[&str]) -> Result<ServiceSpec, String> {
        parse_flags::<CreateArgs>("create", args)?.spec()
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
        assert_eq!(
            attachments(&spec),
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
}
