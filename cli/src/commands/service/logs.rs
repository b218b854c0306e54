//! `shoal service logs`: a service's (or a task's) logs as `docker service
//! logs` prints them. The daemon streams Docker's multiplexed frames (an
//! 8-byte header: stream 1 = stdout, 2 = stderr, big-endian length) whose
//! lines start with the optional timestamp and the details
//! `com.docker.swarm.node.id=…,com.docker.swarm.service.id=…,com.docker.swarm.task.id=… `;
//! each line is printed behind `<service>.<slot>.<task>@<node>    | ` on the
//! stream it was written to.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
};

use clap::Args;
use shoal_api::{
    Client,
    docker::{Service, Task},
};

use crate::{
    daemon::{list_tasks, node_names},
    docker_error::DockerError,
    filters::Filters,
};

/// `shoal service logs` arguments.
#[derive(Debug, Args)]
#[expect(clippy::struct_excessive_bools, reason = "docker's flags, one each")]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end of the logs ("all" for all).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    /// Do not truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Do not include task IDs in output.
    #[arg(long)]
    no_task_ids: bool,
    /// Do not neatly format logs (no prefix).
    #[arg(long)]
    raw: bool,
    /// Service or task (ID, ID prefix or name).
    target: String,
}

/// What names a line's prefix: service names, slots, node names.
#[derive(Debug, Default)]
struct Names {
    services: BTreeMap<String, String>,
    slots: BTreeMap<String, u64>,
    nodes: BTreeMap<String, String>,
}

/// Runs `shoal service logs`.
pub(super) async fn logs(client: &Client, args: &LogsArgs) -> Result<(), DockerError> {
    if args.tail != "all" && args.tail.parse::<u32>().is_err() {
        return Err(DockerError(format!(
            "invalid value {:?} for --tail: a number or \"all\"",
            args.tail
        )));
    }
    let target = shoal_api::client::query_value(&args.target);
    let (path, service_id) = if let Ok(service) = client
        .get_json::<Service>(&format!("/services/{target}"))
        .await
    {
        (format!("/services/{}/logs", service.id), service.id)
    } else {
        let task: Task = client
            .get_json(&format!("/tasks/{target}"))
            .await
            .map_err(|_| DockerError(format!("no such task or service: {}", args.target)))?;
        (format!("/tasks/{}/logs", task.id), task.service_id)
    };
    let names = names(client, &service_id).await?;
    let query = format!(
        "{path}?stdout=1&stderr=1&details=1&follow={}&timestamps={}&tail={}",
        u8::from(args.follow),
        u8::from(args.timestamps),
        args.tail
    );
    let mut printer = Printer {
        pending: Vec::new(),
        names,
        no_trunc: args.no_trunc,
        task_ids: !args.no_task_ids,
        raw: args.raw,
        timestamps: args.timestamps,
    };
    let mut on_chunk = |chunk: &[u8]| printer.feed(chunk);
    client.get_stream(&query, &mut on_chunk).await?;
    Ok(())
}

async fn names(client: &Client, service_id: &str) -> Result<Names, DockerError> {
    let mut names = Names::default();
    let services: Vec<Service> = client.get_json("/services").await?;
    names
        .services
        .extend(services.into_iter().map(|s| (s.id, s.spec.name)));
    let filters = Filters::from([(
        "service".to_owned(),
        BTreeSet::from([service_id.to_owned()]),
    )]);
    let tasks = list_tasks(client, &filters).await?;
    names
        .slots
        .extend(tasks.into_iter().map(|t| (t.id, t.slot)));
    names.nodes = node_names(client).await?;
    Ok(names)
}

/// Reassembles frames from the chunks and prints their lines.
#[derive(Debug)]
#[expect(clippy::struct_excessive_bools, reason = "the flags that shape a line")]
struct Printer {
    pending: Vec<u8>,
    names: Names,
    no_trunc: bool,
    task_ids: bool,
    raw: bool,
    timestamps: bool,
}

impl Printer {
    /// Takes a chunk of the body; prints every complete frame. `false`
    /// when output failed (e.g. a closed pipe).
    fn feed(&mut self, chunk: &[u8]) -> bool {
        self.pending.extend_from_slice(chunk);
        while self.pending.len() >= 8 {
            let len = u32::from_be_bytes([
                self.pending[4],
                self.pending[5],
                self.pending[6],
                self.pending[7],
            ]) as usize;
            if self.pending.len() < 8 + len {
                break;
            }
            let stderr = self.pending[0] == 2;
            let payload: Vec<u8> = self.pending.drain(..8 + len).skip(8).collect();
            let line = self.format(&String::from_utf8_lossy(&payload));
            let written = if stderr {
                std::io::stderr().write_all(line.as_bytes())
            } else {
                std::io::stdout().write_all(line.as_bytes())
            };
            if written.is_err() {
                return false;
            }
        }
        true
    }

    /// `[timestamp ]<context>    | <message>` (or the message alone with
    /// `--raw`).
    fn format(&self, payload: &str) -> String {
        let (timestamp, rest) = if self.timestamps {
            payload.split_once(' ').unwrap_or(("", payload))
        } else {
            ("", payload)
        };
        let (details, message) = match rest.split_once(' ') {
            Some((details, message)) if details.starts_with("com.docker.swarm.") => {
                (details, message)
            }
            _ => ("", rest),
        };
        let mut message = message.to_owned();
        if !message.ends_with('\n') {
            message.push('\n');
        }
        let stamp = if timestamp.is_empty() {
            String::new()
        } else {
            format!("{timestamp} ")
        };
        if self.raw {
            return format!("{stamp}{message}");
        }
        let detail = |key: &str| {
            details
                .split(',')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_default()
        };
        let (node, service, task) = (
            detail("com.docker.swarm.node.id"),
            detail("com.docker.swarm.service.id"),
            detail("com.docker.swarm.task.id"),
        );
        let service_name = self
            .names
            .services
            .get(service)
            .map_or(service, String::as_str);
        let slot = match self.names.slots.get(task) {
            Some(&slot) if slot > 0 => slot.to_string(),
            _ => node.to_owned(),
        };
        let mut name = format!("{service_name}.{slot}");
        if self.task_ids {
            let id = if self.no_trunc {
                task
            } else {
                task.get(..12).unwrap_or(task)
            };
            name = format!("{name}.{id}");
        }
        let node_name = self.names.nodes.get(node).map_or(node, String::as_str);
        format!("{stamp}{name}@{node_name}    | {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printer() -> Printer {
        Printer {
            pending: Vec::new(),
            names: Names {
                services: BTreeMap::from([("s1".into(), "web".into())]),
                slots: BTreeMap::from([("t0123456789abcdef".into(), 2)]),
                nodes: BTreeMap::from([("n1".into(), "node-1".into())]),
            },
            no_trunc: false,
            task_ids: true,
            raw: false,
            timestamps: false,
        }
    }

    #[test]
    fn lines_get_dockers_prefix() {
        let p = printer();
        let payload = "com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t0123456789abcdef hello\n";
        assert_eq!(p.format(payload), "web.2.t0123456789a@node-1    | hello\n");
        let raw = Printer {
            raw: true,
            ..printer()
        };
        assert_eq!(raw.format(payload), "hello\n");
        let stamped = Printer {
            timestamps: true,
            no_trunc: true,
            ..printer()
        };
        assert_eq!(
            stamped.format(&format!("2026-11-23T10:00:00.5Z {payload}")),
            "2026-11-23T10:00:00.5Z web.2.t0123456789abcdef@node-1    | hello\n"
        );
    }

    #[test]
    fn frames_split_across_chunks_are_reassembled() {
        let mut p = Printer {
            raw: true,
            ..printer()
        };
        let mut frame = vec![1, 0, 0, 0, 0, 0, 0, 3];
        frame.extend_from_slice(b"ok\n");
        assert!(p.feed(&frame[..5]));
        assert_eq!(p.pending.len(), 5, "an incomplete frame waits");
        assert!(p.feed(&frame[5..]));
        assert!(p.pending.is_empty(), "the complete frame was printed");
    }
}
