//! `shoal service ps`: the tasks of services as `docker service ps` lists
//! them ([`ps_rows`]): named by slot (or node), each slot's history newest
//! first, IDs resolved to names.

use std::{collections::BTreeMap, time::Duration};

use clap::Args;
use shoal_api::{
    Client,
    docker::{Service, Task},
};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    daemon::{list_tasks, node_names, swarm_info},
    docker_error::DockerError,
    filters::{Filters, parse_filters, with_filters},
    output::{Table, display_image, natural_cmp, truncate_id},
    units::human_duration,
};

/// `shoal service ps` flags.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Filter output based on conditions provided (`key=value`: id, name,
    /// node, desired-state).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Do not map IDs to Names.
    #[arg(long)]
    no_resolve: bool,
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only display task IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Services (ID, ID prefix or name).
    #[arg(required = true)]
    services: Vec<String>,
}

/// Resolves `ps`'s SERVICE arguments as docker does (full ID, then full
/// name, then a unique ID prefix): the names of the services found by ID,
/// and the "no such service" messages of those that were not.
async fn resolve_services(
    client: &Client,
    wanted: &[String],
) -> Result<(BTreeMap<String, String>, Vec<String>), DockerError> {
    let set = |key: &str| Filters::from([(key.to_owned(), wanted.iter().cloned().collect())]);
    let by_id: Vec<Service> = client
        .get_json(&with_filters("/services", &set("id")))
        .await?;
    let by_name: Vec<Service> = client
        .get_json(&with_filters("/services", &set("name")))
        .await?;
    let mut found = BTreeMap::new();
    let mut missing = Vec::new();
    for name in wanted {
        let exact = by_id
            .iter()
            .find(|s| s.id == *name)
            .or_else(|| by_name.iter().find(|s| s.spec.name == *name));
        let service = if let Some(service) = exact {
            service
        } else {
            let prefixed: Vec<&Service> = by_id
                .iter()
                .filter(|s| s.id.starts_with(name.as_str()))
                .collect();
            match prefixed[..] {
                [] => {
                    missing.push(format!("no such service: {name}"));
                    continue;
                }
                [service] => service,
                _ => {
                    return Err(DockerError(format!(
                        "multiple services found with provided prefix: {name}"
                    )));
                }
            }
        };
        found.insert(service.id.clone(), service.spec.name.clone());
    }
    if found.is_empty() {
        return Err(DockerError(missing.join("\n")));
    }
    Ok((found, missing))
}

/// Runs `shoal service ps`.
pub(super) async fn ps(client: &Client, args: &PsArgs) -> Result<(), DockerError> {
    let mut filters = parse_filters(&args.filter)?;
    let (services, missing) = resolve_services(client, &args.services).await?;
    filters.insert("service".to_owned(), services.keys().cloned().collect());
    if let Some(nodes) = filters.get_mut("node")
        && nodes.remove("self")
    {
        let me = swarm_info(client)
            .await
            .map_err(|e| DockerError(format!("{e:#}")))?
            .node_id;
        nodes.insert(me);
    }
    let tasks = list_tasks(client, &filters).await?;
    let (service_names, nodes) = if args.no_resolve {
        (BTreeMap::new(), BTreeMap::new())
    } else {
        (services, node_names(client).await?)
    };
    let rows = ps_rows(
        tasks,
        &service_names,
        &nodes,
        OffsetDateTime::now_utc(),
        !(args.no_trunc || args.quiet),
    );
    if args.quiet {
        for row in rows {
            println!("{}", row[0]);
        }
    } else {
        print!("{}", ps_table(rows));
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DockerError(missing.join("\n")))
    }
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// The rows of `docker service ps`: tasks named `<service>.<slot>` (global:
/// `<service>.<node ID>`), sorted by name and, within a slot, newest first;
/// the older tasks of a slot indented with ` \_ `. IDs resolve to names
/// through the maps when they hold them. `trunc` shortens IDs, images and
/// errors as docker does without `--no-trunc`.
fn ps_rows(
    tasks: Vec<Task>,
    service_names: &BTreeMap<String, String>,
    node_names: &BTreeMap<String, String>,
    now: OffsetDateTime,
    trunc: bool,
) -> Vec<[String; 8]> {
    let mut named: Vec<(String, Option<OffsetDateTime>, Task)> = tasks
        .into_iter()
        .map(|task| {
            let service = service_names
                .get(&task.service_id)
                .unwrap_or(&task.service_id);
            let name = if task.slot == 0 {
                format!("{service}.{}", task.node_id)
            } else {
                format!("{service}.{}", task.slot)
            };
            (name, parse_time(&task.created_at), task)
        })
        .collect();
    named.sort_by(|(a, a_created, _), (b, b_created, _)| {
        natural_cmp(a, b).then_with(|| b_created.cmp(a_created))
    });
    let mut previous = None;
    named
        .into_iter()
        .map(|(name, _, task)| {
            let shown = if previous.as_deref() == Some(name.as_str()) {
                format!(" \\_ {name}")
            } else {
                name.clone()
            };
            previous = Some(name);
            let image = &task.spec.container_spec.image;
            let current = match parse_time(&task.status.timestamp) {
                Some(at) => {
                    let ago = Duration::try_from(now - at).unwrap_or_default();
                    format!(
                        "{} {} ago",
                        task.status.state.title(),
                        human_duration(ago).to_lowercase()
                    )
                }
                None => task.status.state.title(),
            };
            let mut error = task.status.err.clone();
            if trunc {
                error = ellipsis(&error, 30);
            }
            if !error.is_empty() {
                error = format!("\"{error}\"");
            }
            let ports = task
                .status
                .port_status
                .iter()
                .flat_map(|status| &status.ports)
                .map(|p| format!("*:{}->{}/{}", p.published_port, p.target_port, p.protocol()))
                .collect::<Vec<_>>()
                .join(",");
            [
                if trunc {
                    truncate_id(&task.id).to_owned()
                } else {
                    task.id.clone()
                },
                shown,
                if trunc {
                    display_image(image)
                } else {
                    image.clone()
                },
                node_names
                    .get(&task.node_id)
                    .unwrap_or(&task.node_id)
                    .clone(),
                task.desired_state.title(),
                current,
                error,
                ports,
            ]
        })
        .collect()
}

/// The `docker service ps` table of [`ps_rows`].
fn ps_table(rows: Vec<[String; 8]>) -> String {
    let mut table = Table::new([
        "ID",
        "NAME",
        "IMAGE",
        "NODE",
        "DESIRED STATE",
        "CURRENT STATE",
        "ERROR",
        "PORTS",
    ]);
    for row in rows {
        table.row(row);
    }
    table.render()
}

/// Docker's `formatter.Ellipsis`: at most `width` characters, the last one
/// `…` when cut.
fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn task(json: Value) -> Task {
        serde_json::from_value(json).expect("a task")
    }

    const NOW: &str = "2025-06-01T12:00:00Z";

    /// Tasks of service `svc1`, one row each: the ID (a letter 25 times),
    /// node, slot, creation, desired state, then the status's time, state
    /// and error.
    fn ps_fixture() -> Vec<Task> {
        let failed = "task: non-zero exit (1) and then some more words";
        #[rustfmt::skip]
        let rows = [
            ('a', "n1", 2, "11:59:00", "running", "11:59:55", "running", ""),
            ('b', "n2", 10, "11:00:00", "running", "11:58:30.5", "preparing", ""),
            ('c', "n1", 2, "11:58:00", "shutdown", "11:58:59", "failed", failed),
            ('d', "gone", 2, "10:00:00.250", "shutdown", "10:00:01", "shutdown", ""),
            ('e', "n2", 9, "11:59:59.999", "running", "11:59:59.999", "new", ""),
        ];
        rows.into_iter()
            .map(|(letter, node, slot, created, desired, at, state, err)| {
                task(serde_json::json!({
                    "ID": letter.to_string().repeat(25), "ServiceID": "svc1", "NodeID": node,
                    "Slot": slot, "CreatedAt": format!("2025-06-01T{created}Z"),
                    "DesiredState": desired,
                    "Spec": {"ContainerSpec": {"Image": "whoami:latest@sha256:0123456789abcdef"}},
                    "Status": {"Timestamp": format!("2025-06-01T{at}Z"), "State": state, "Err": err}
                }))
            })
            .collect()
    }

    fn render_ps(trunc: bool) -> String {
        let services = BTreeMap::from([("svc1".to_owned(), "web".to_owned())]);
        let nodes = BTreeMap::from([
            ("n1".to_owned(), "node-1".to_owned()),
            ("n2".to_owned(), "node-2".to_owned()),
        ]);
        let now = parse_time(NOW).expect("time");
        ps_table(ps_rows(ps_fixture(), &services, &nodes, now, trunc))
    }

    #[test]
    fn ps_groups_slot_history_newest_first_and_truncates() {
        let expected = "\
ID             NAME        IMAGE           NODE      DESIRED STATE   CURRENT STATE                  ERROR                              PORTS
aaaaaaaaaaaa   web.2       whoami:latest   node-1    Running         Running 5 seconds ago
cccccccccccc    \\_ web.2   whoami:latest   node-1    Shutdown        Failed about a minute ago      \"task: non-zero exit (1) and t…\"
dddddddddddd    \\_ web.2   whoami:latest   gone      Shutdown        Shutdown 2 hours ago
eeeeeeeeeeee   web.9       whoami:latest   node-2    Running         New less than a second ago
bbbbbbbbbbbb   web.10      whoami:latest   node-2    Running         Preparing about a minute ago
";
        assert_eq!(render_ps(true), expected);
    }

    #[test]
    fn ps_no_trunc_keeps_ids_images_and_errors_whole() {
        let text = render_ps(false);
        assert!(
            text.contains("aaaaaaaaaaaaaaaaaaaaaaaaa   web.2 "),
            "{text}"
        );
        assert!(
            text.contains("whoami:latest@sha256:0123456789abcdef"),
            "{text}"
        );
        assert!(
            text.contains("\"task: non-zero exit (1) and then some more words\""),
            "{text}"
        );
        assert_eq!(ellipsis("short", 30), "short");
    }

    #[test]
    fn ps_names_global_tasks_by_node_and_falls_back_to_ids() {
        let global = task(serde_json::json!({
            "ID": "t1", "ServiceID": "svc9", "NodeID": "n7", "DesiredState": "running",
            "Status": {"Timestamp": NOW, "State": "running"}
        }));
        let now = parse_time(NOW).expect("time");
        let rows = ps_rows(vec![global], &BTreeMap::new(), &BTreeMap::new(), now, true);
        assert_eq!(rows[0][1], "svc9.n7");
        assert_eq!(rows[0][3], "n7");
        assert_eq!(rows[0][5], "Running less than a second ago");
    }
}
