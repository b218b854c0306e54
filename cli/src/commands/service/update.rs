//! `shoal service update`, as `docker service update`: reads the service,
//! edits its spec with the flags given (the others leave their fields as
//! they are), posts it with the version read and, unless `--detach`,
//! shows the convergence progress of `create`.
//!
//! The edit is pure ([`UpdateArgs::edit`]), given the IDs of the networks
//! the flags name, so docker's add/remove rules are tested without a
//! daemon.

use std::collections::{BTreeMap, BTreeSet};

use clap::Args;
use shoal_api::{
    Client,
    docker::ServiceUpdateResponse,
    network::NetworkAttachmentConfig,
    service::{PlacementPreference, PortConfig, ServiceMode, ServiceSpec},
};

use super::{
    flags::{ServiceFlags, parse_placement_pref},
    networks::{network_id, parse_attachment},
    ports::{edit_ports, parse_publish},
    progress::report_and_wait,
};
use crate::{
    daemon::inspect_service,
    docker_error::DockerError,
    flag_values::{Words, env_name, local_env_entry, parse_label, parse_words},
};

/// `shoal service update` flags, as docker's.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The flags `update` shares with `create`.
    #[command(flatten)]
    common: ServiceFlags,
    /// Service image tag.
    #[arg(long)]
    image: Option<String>,
    /// Service command args.
    #[arg(long, value_parser = parse_words, allow_hyphen_values = true)]
    args: Option<Words>,
    /// Force update even if no changes require it.
    #[arg(long)]
    force: bool,
    /// Add or update an environment variable.
    #[arg(long, value_parser = local_env_entry)]
    env_add: Vec<String>,
    /// Remove an environment variable.
    #[arg(long)]
    env_rm: Vec<String>,
    /// Add or update a service label.
    #[arg(long, value_parser = parse_label)]
    label_add: Vec<(String, String)>,
    /// Remove a label by its key.
    #[arg(long)]
    label_rm: Vec<String>,
    /// Add or update a container label.
    #[arg(long, value_parser = parse_label)]
    container_label_add: Vec<(String, String)>,
    /// Remove a container label by its key.
    #[arg(long)]
    container_label_rm: Vec<String>,
    /// Add or update a placement constraint.
    #[arg(long)]
    constraint_add: Vec<String>,
    /// Remove a constraint.
    #[arg(long)]
    constraint_rm: Vec<String>,
    /// Add a placement preference (`spread=<label>`).
    #[arg(long, value_parser = parse_placement_pref)]
    placement_pref_add: Vec<PlacementPreference>,
    /// Remove a placement preference (`spread=<label>`).
    #[arg(long, value_parser = parse_placement_pref)]
    placement_pref_rm: Vec<PlacementPreference>,
    /// Add a network (`NAME` or `name=NAME,alias=ALIAS…`).
    #[arg(long, value_parser = parse_attachment)]
    network_add: Vec<NetworkAttachmentConfig>,
    /// Remove a network (name or ID).
    #[arg(long)]
    network_rm: Vec<String>,
    /// Add or update a published port (`published=P,target=T…`, `P:T[/udp]` or `T`).
    #[arg(long, value_parser = parse_publish)]
    publish_add: Vec<PortConfig>,
    /// Remove a published port by its target port (`T[/udp]`, or the forms of
    /// `--publish-add`).
    #[arg(long, value_parser = parse_publish)]
    publish_rm: Vec<PortConfig>,
    /// The service (ID, ID prefix or name).
    service: String,
}

impl UpdateArgs {
    /// The networks the flags name (removed, then added), which
    /// [`Self::edit`] needs resolved to IDs.
    fn network_refs(&self) -> impl Iterator<Item = &str> {
        self.network_rm
            .iter()
            .map(String::as_str)
            .chain(self.network_add.iter().map(|a| a.target.as_str()))
    }

    /// Edits `spec` as docker's `service update` does with these flags;
    /// `network_ids` maps the networks named by `--network-add` and
    /// `--network-rm` to their IDs (a name missing from it is taken as an
    /// ID).
    pub fn edit(
        &self,
        spec: &mut ServiceSpec,
        network_ids: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        self.common.check()?;
        edit_labels(&mut spec.labels, &self.label_rm, &self.label_add);
        let container = &mut spec.task_template.container_spec;
        edit_labels(
            &mut container.labels,
            &self.container_label_rm,
            &self.container_label_add,
        );
        if let Some(image) = &self.image {
            container.image.clone_from(image);
        }
        if let Some(Words(args)) = &self.args {
            container.args.clone_from(args);
        }
        edit_env(&mut container.env, &self.env_rm, &self.env_add);
        let placement = &mut spec.task_template.placement;
        if !self.constraint_add.is_empty() || !self.constraint_rm.is_empty() {
            placement
                .constraints
                .extend(self.constraint_add.iter().cloned());
            placement
                .constraints
                .retain(|c| !self.constraint_rm.contains(c));
            placement.constraints.sort();
        }
        placement.preferences.retain(|p| {
            !self
                .placement_pref_rm
                .iter()
                .any(|rm| rm.spread.spread_descriptor == p.spread.spread_descriptor)
        });
        placement
            .preferences
            .extend(self.placement_pref_add.iter().cloned());
        if !self.network_add.is_empty() || !self.network_rm.is_empty() {
            edit_networks(
                &mut spec.task_template.networks,
                &self.network_rm,
                &self.network_add,
                network_ids,
            )?;
        }
        if !self.publish_add.is_empty() || !self.publish_rm.is_empty() {
            let ports = edit_ports(spec.ports(), &self.publish_rm, &self.publish_add);
            spec.endpoint_spec.get_or_insert_default().ports = ports;
        }
        if let Some(replicas) = self.common.replicas {
            match &mut spec.mode {
                ServiceMode::Replicated(r) => r.replicas = Some(replicas),
                ServiceMode::Global(_) => {
                    return Err("replicas can only be used with replicated mode".into());
                }
            }
        }
        self.common.apply(spec)?;
        if self.force {
            spec.task_template.force_update = spec.task_template.force_update.wrapping_add(1);
        }
        Ok(())
    }
}

/// `--label-rm` keys go, then `--label-add` pairs are set.
fn edit_labels(labels: &mut BTreeMap<String, String>, rm: &[String], add: &[(String, String)]) {
    for key in rm {
        labels.remove(key);
    }
    labels.extend(add.iter().cloned());
}

/// `--env-rm NAME` removes `NAME=anything` (only a name matches); then each
/// `--env-add` entry replaces the entry of its name, in place, or comes
/// last.
fn edit_env(env: &mut Vec<String>, rm: &[String], add: &[String]) {
    env.retain(|entry| !rm.iter().any(|name| name == env_name(entry)));
    for entry in add {
        match env.iter_mut().find(|e| env_name(e) == env_name(entry)) {
            Some(existing) => existing.clone_from(entry),
            None => env.push(entry.clone()),
        }
    }
}

/// Docker's network edit: the attachments to `rm`'s networks go, `add`'s
/// come (a network already attached is an error), sorted by network ID.
fn edit_networks(
    networks: &mut Vec<NetworkAttachmentConfig>,
    rm: &[String],
    add: &[NetworkAttachmentConfig],
    ids: &BTreeMap<String, String>,
) -> Result<(), String> {
    let id = |network: &str| {
        ids.get(network)
            .cloned()
            .unwrap_or_else(|| network.to_owned())
    };
    let removed: BTreeSet<String> = rm.iter().map(|n| id(n)).collect();
    networks.retain(|n| !removed.contains(&n.target));
    for attachment in add {
        let target = id(&attachment.target);
        if networks.iter().any(|n| n.target == target) {
            return Err(format!(
                "service is already attached to network {}",
                attachment.target
            ));
        }
        networks.push(NetworkAttachmentConfig {
            target,
            aliases: attachment.aliases.clone(),
        });
    }
    networks.sort_by(|a, b| a.target.cmp(&b.target));
    Ok(())
}

/// Runs `shoal service update`.
pub(super) async fn update(client: &Client, args: &UpdateArgs) -> Result<(), DockerError> {
    args.common.check()?;
    let current = inspect_service(client, &args.service).await?;
    let mut network_ids = BTreeMap::new();
    for network in args.network_refs() {
        if !network_ids.contains_key(network) {
            network_ids.insert(network.to_owned(), network_id(client, network).await?);
        }
    }
    let mut spec = current.spec;
    args.edit(&mut spec, &network_ids)?;
    let updated: ServiceUpdateResponse = client
        .post_json(
            &format!(
                "/services/{}/update?version={}",
                current.id, current.version.index
            ),
            &spec,
        )
        .await?;
    report_and_wait(
        client,
        &args.service,
        &updated.warnings,
        args.common.detach,
        args.common.quiet,
    )
    .await
}

#[cfg(test)]
mod tests {
    use shoal_api::service::{
        GlobalService, HealthConfig, RestartCondition, RestartPolicy, SpreadOver,
    };

    use super::*;
    use crate::test_support::{attachments, parse_flags};

    /// Parses `shoal service update <args> web`.
    fn parse(args: &[&str]) -> Result<UpdateArgs, String> {
        let with_service: Vec<&str> = args.iter().copied().chain(["web"]).collect();
        parse_flags("update", &with_service)
    }

    /// The spec docker's CLI leaves after `update <args> web` of `spec`.
    fn update(spec: &ServiceSpec, args: &[&str]) -> Result<ServiceSpec, String> {
        let ids = BTreeMap::from([
            ("front".to_owned(), "id-front".to_owned()),
            ("back".to_owned(), "id-back".to_owned()),
            ("id-b".to_owned(), "id-back".to_owned()),
        ]);
        let mut spec = spec.clone();
        parse(args)?.edit(&mut spec, &ids)?;
        Ok(spec)
    }

    fn web() -> ServiceSpec {
        serde_json::from_value(serde_json::json!({
            "Name": "web",
            "Labels": {"tier": "front", "x": "1"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "whoami:latest", "Args": ["-port", "80"],
                    "Env": ["A=1", "B=2", "C"], "Labels": {"c": "d"}, "Init": false,
                    "Healthcheck": {"Test": ["NONE"]}
                },
                "Resources": {"Limits": {"NanoCPUs": 1_000_000_000, "MemoryBytes": 1024},
                              "Reservations": {"MemoryBytes": 512}},
                "RestartPolicy": {"Condition": "on-failure", "MaxAttempts": 3},
                "Placement": {"Constraints": ["node.role==worker", "node.labels.a==b"],
                              "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]},
                "Networks": [{"Target": "id-front", "Aliases": ["www"]}],
                "ForceUpdate": 4
            },
            "Mode": {"Replicated": {"Replicas": 3}},
            "EndpointSpec": {"Mode": "vip", "Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}
        }))
        .expect("a spec")
    }

    #[test]
    fn no_flags_change_nothing() {
        assert_eq!(update(&web(), &[]), Ok(web()));
        assert_eq!(update(&web(), &["-d", "-q"]), Ok(web()));
    }

    #[test]
    fn env_rm_takes_names_and_env_add_replaces_in_place() {
        let spec = update(
            &web(),
            &[
                "--env-rm",
                "B",
                "--env-rm",
                "A=1",
                "--env-rm",
                "C",
                "--env-add",
                "A=9",
                "--env-add",
                "D=4",
                "--env-add",
                "D=5",
            ],
        )
        .expect("valid");
        assert_eq!(spec.task_template.container_spec.env, ["A=9", "D=5"]);
        let removed = update(&web(), &["--env-rm", "A", "--env-add", "A=2"]).expect("valid");
        assert_eq!(
            removed.task_template.container_spec.env,
            ["B=2", "C", "A=2"],
            "removal first, then the addition comes last"
        );
    }

    #[test]
    fn labels_are_removed_by_key_then_added() {
        let spec = update(
            &web(),
            &[
                "--label-rm",
                "x",
                "--label-rm",
                "absent",
                "--label-add",
                "tier=back",
                "--label-add",
                "bare",
                "--container-label-rm",
                "c",
                "--container-label-add",
                "e=f",
            ],
        )
        .expect("valid");
        assert_eq!(
            spec.labels,
            BTreeMap::from([
                ("bare".into(), String::new()),
                ("tier".into(), "back".into())
            ])
        );
        assert_eq!(
            spec.task_template.container_spec.labels,
            BTreeMap::from([("e".into(), "f".into())])
        );
    }

    #[test]
    fn constraints_and_preferences() {
        let spec = update(
            &web(),
            &[
                "--constraint-add",
                "node.hostname!=n3",
                "--constraint-rm",
                "node.labels.a==b",
                "--constraint-rm",
                "node.labels.none==x",
                "--placement-pref-rm",
                "spread=node.labels.zone",
                "--placement-pref-add",
                "spread=node.labels.rack",
            ],
        )
        .expect("valid");
        let placement = &spec.task_template.placement;
        assert_eq!(
            placement.constraints,
            ["node.hostname!=n3", "node.role==worker"],
            "sorted, as docker sorts them"
        );
        assert_eq!(
            placement.preferences,
            [PlacementPreference {
                spread: SpreadOver {
                    spread_descriptor: "node.labels.rack".into()
                }
            }]
        );
    }

    #[test]
    fn networks_by_name_or_id_sorted_by_id() {
        let spec =
            update(&web(), &["--network-add", "name=back,alias=api,alias=v1"]).expect("valid");
        assert_eq!(
            attachments(&spec),
            [
                ("id-back", &["api".to_owned(), "v1".to_owned()][..]),
                ("id-front", &["www".to_owned()][..])
            ]
        );
        let by_name = update(&spec, &["--network-rm", "back"]).expect("valid");
        assert_eq!(by_name.task_template.networks, web().task_template.networks);
        let by_id = update(&spec, &["--network-rm", "id-back"]).expect("valid");
        assert_eq!(by_id.task_template.networks, web().task_template.networks);
        let by_other_ref = update(&spec, &["--network-rm", "id-b"]).expect("valid");
        assert_eq!(
            by_other_ref.task_template.networks,
            web().task_template.networks
        );
        let moved = update(&web(), &["--network-rm", "front", "--network-add", "front"])
            .expect("removal comes first");
        assert_eq!(moved.task_template.networks[0].target, "id-front");
        assert!(moved.task_template.networks[0].aliases.is_empty());
        assert_eq!(
            update(&web(), &["--network-add", "front"]),
            Err("service is already attached to network front".into())
        );
    }

    #[test]
    fn replicas_image_args_force_and_endpoint_mode() {
        let spec = update(
            &web(),
            &[
                "--replicas",
                "5",
                "--image",
                "whoami:v2",
                "--args",
                "-port 81 'a b'",
                "--force",
                "--endpoint-mode",
                "DNSRR",
            ],
        )
        .expect("valid");
        assert_eq!(spec.mode.replicas(), Some(5));
        let container = &spec.task_template.container_spec;
        assert_eq!(container.image, "whoami:v2");
        assert_eq!(container.args, ["-port", "81", "a b"]);
        assert_eq!(spec.task_template.force_update, 5);
        assert_eq!(
            serde_json::to_value(&spec.endpoint_spec).expect("json"),
            serde_json::json!({"Mode": "dnsrr", "Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}),
            "the ports stay"
        );
        let cleared = update(&web(), &["--args", ""]).expect("valid");
        assert!(cleared.task_template.container_spec.args.is_empty());
        let global = ServiceSpec {
            mode: ServiceMode::Global(GlobalService {}),
            ..web()
        };
        assert_eq!(
            update(&global, &["--replicas", "2"]),
            Err("replicas can only be used with replicated mode".into())
        );
    }

    #[test]
    fn restart_resources_and_container_fields() {
        let spec = update(
            &web(),
            &[
                "--restart-delay",
                "3s",
                "--limit-memory",
                "0",
                "--reserve-cpu",
                "0.5",
                "--read-only",
                "-w",
                "/srv",
                "--stop-grace-period",
                "1m",
                "--entrypoint",
                "/bin/sh -c",
            ],
        )
        .expect("valid");
        let task = &spec.task_template;
        assert_eq!(
            task.restart_policy,
            RestartPolicy {
                condition: Some(RestartCondition::OnFailure),
                delay: Some(3_000_000_000),
                max_attempts: Some(3),
                window: None,
            },
            "the other restart fields stay"
        );
        assert_eq!(task.resources.limits.nano_cpus, 1_000_000_000);
        assert_eq!(task.resources.limits.memory_bytes, 0);
        assert_eq!(task.resources.reservations.nano_cpus, 500_000_000);
        assert_eq!(task.resources.reservations.memory_bytes, 512);
        let container = &task.container_spec;
        assert!(container.read_only);
        assert_eq!(container.dir, "/srv");
        assert_eq!(container.stop_grace_period, Some(60_000_000_000));
        assert_eq!(container.command, ["/bin/sh", "-c"]);
        let writable = update(&spec, &["--read-only=false"]).expect("valid");
        assert!(!writable.task_template.container_spec.read_only);
        let bare = ServiceSpec {
            task_template: shoal_api::service::TaskSpec::default(),
            ..web()
        };
        assert_eq!(
            update(&bare, &["--restart-max-attempts", "2"])
                .expect("valid")
                .task_template
                .restart_policy,
            RestartPolicy {
                condition: Some(RestartCondition::Any),
                delay: Some(5_000_000_000),
                max_attempts: Some(2),
                window: None,
            },
            "no policy yet: docker's default one, edited"
        );
    }

    #[test]
    fn health_checks_turn_on_and_off() {
        let on = update(&web(), &["--health-cmd", "true", "--health-retries", "2"]).expect("valid");
        assert_eq!(
            on.task_template.container_spec.healthcheck,
            Some(HealthConfig {
                test: vec!["CMD-SHELL".into(), "true".into()],
                retries: 2,
                ..HealthConfig::default()
            })
        );
        let interval = update(&on, &["--health-interval", "2s"]).expect("valid");
        let health = interval
            .task_template
            .container_spec
            .healthcheck
            .expect("a check");
        assert_eq!(
            (health.test.len(), health.retries, health.interval),
            (2, 2, 2_000_000_000)
        );
        let off = update(&on, &["--no-healthcheck"]).expect("valid");
        assert_eq!(
            off.task_template.container_spec.healthcheck,
            web().task_template.container_spec.healthcheck
        );
        let inherit = update(&web(), &["--health-timeout", "1s"]).expect("valid");
        assert_eq!(
            inherit.task_template.container_spec.healthcheck,
            Some(HealthConfig {
                timeout: 1_000_000_000,
                ..HealthConfig::default()
            }),
            "NONE gives way to the image's check"
        );
    }

    #[test]
    fn publish_add_and_rm_edit_the_ports_as_docker() {
        // web() publishes 8080:80 (protocol and mode left empty).
        let spec = update(
            &web(),
            &["--publish-add", "9090:90", "--publish-add", "53/udp"],
        )
        .expect("valid");
        assert_eq!(
            serde_json::to_value(&spec.endpoint_spec).expect("json"),
            serde_json::json!({"Mode": "vip", "Ports": [
                {"Protocol": "udp", "TargetPort": 53, "PublishMode": "ingress"},
                {"TargetPort": 80, "PublishedPort": 8080},
                {"Protocol": "tcp", "TargetPort": 90, "PublishedPort": 9090, "PublishMode": "ingress"}]}),
            "sorted as text by published:target/protocol/mode"
        );
        let spec = update(&web(), &["--publish-rm", "80"]).expect("valid");
        assert_eq!(
            serde_json::to_value(&spec.endpoint_spec).expect("json"),
            serde_json::json!({"Mode": "vip"})
        );
        let spec = update(&web(), &["--publish-rm", "80/udp"]).expect("valid");
        assert_eq!(spec.ports().len(), 1, "another protocol is another port");
    }

    #[test]
    fn bad_flags_are_refused_before_any_request() {
        let refused = |args: &[&str], wanted: &str| {
            let error = parse(args)
                .and_then(|a| a.common.check().map(|()| a))
                .expect_err("refused");
            assert!(error.contains(wanted), "{args:?}: {error}");
        };
        refused(&["--replicas", "-1"], "invalid replicas value \"-1\"");
        refused(&["--env-add", "=x"], "invalid environment variable: =x");
        refused(&["--label-add", "=x"], "invalid label '=x': empty name");
        refused(
            &["--container-label-add", " "],
            "invalid label ' ': empty name",
        );
        refused(
            &["--network-add", "name=,alias=x"],
            "network name/id is not specified",
        );
        refused(&["--network-add", "name=a,foo=x"], "invalid field key foo");
        refused(&["--args", "'x"], "closing quote");
        refused(
            &["--endpoint-mode", "bogus"],
            "invalid resolution mode: \"bogus\"",
        );
        refused(&["--limit-memory", "64x"], "invalid suffix: 'x'");
        refused(
            &["--restart-condition", "sometimes"],
            "invalid restart condition",
        );
        refused(
            &["--placement-pref-add", "pack=x"],
            "unsupported placement preference",
        );
        refused(
            &["--no-healthcheck", "--health-cmd", "x"],
            "--no-healthcheck conflicts with --health-* options",
        );
        assert!(
            parse_flags::<UpdateArgs>("update", &[]).is_err(),
            "a service is required"
        );
        assert!(
            parse_flags::<UpdateArgs>("update", &["a", "b"]).is_err(),
            "one service only"
        );
    }

    #[test]
    fn network_refs_are_resolved_removals_first() {
        let args = parse(&["--network-add", "name=x,alias=y", "--network-rm", "z"]).expect("valid");
        assert_eq!(args.network_refs().collect::<Vec<_>>(), ["z", "x"]);
    }
}
