//! What the end-to-end suites and benchmarks share about a running swarm:
//! the stock docker CLI against node 1 ([`World::docker_ok`],
//! [`World::docker_err`]), the arguments that create a service of the demo
//! image ([`service_create_args`]) and the running tasks of a service as they are on
//! the nodes ([`World::running_tasks`]: their node, container and overlay
//! address; [`World::task_hostname`]).

use std::{collections::BTreeSet, time::Duration};

use crate::{World, eventually};

/// How long a service may take to converge (pulling nothing, 2 cores).
pub const CONVERGE: Duration = Duration::from_mins(1);

/// The arguments of `service create --detach --name <name> <options…>
/// whoami:latest <command…>`: a service of the demo image, for
/// [`World::docker_ok`] and `shoal` alike.
#[must_use]
pub fn service_create_args<'a>(
    name: &'a str,
    options: &[&'a str],
    command: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["service", "create", "--detach", "--name", name];
    args.extend_from_slice(options);
    args.push("whoami:latest");
    args.extend_from_slice(command);
    args
}

/// A running task of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningTask {
    /// Its node, counting from 1.
    pub node: usize,
    /// Its container (= task) ID.
    pub id: String,
    /// The address of its `eth0` (its first overlay network).
    pub addr: String,
}

impl World {
    /// Runs docker against node 1 and returns its output.
    ///
    /// # Panics
    /// When no docker client is installed or the command fails.
    #[expect(clippy::must_use_candidate, reason = "often run for its effect alone")]
    pub fn docker_ok(&self, args: &[&str]) -> String {
        self.node(1)
            .docker(args)
            .expect("a docker client is installed")
            .unwrap_or_else(|e| panic!("docker {} failed: {e}", args.join(" ")))
    }

    /// Runs docker against node 1 and returns its error output.
    ///
    /// # Panics
    /// When no docker client is installed or the command succeeds.
    #[must_use]
    pub fn docker_err(&self, args: &[&str]) -> String {
        self.node(1)
            .docker(args)
            .expect("a docker client is installed")
            .expect_err(&format!("docker {} must fail", args.join(" ")))
    }

    /// Every running task of `service` (desired running, container
    /// running) that has an address on `eth0`, by node.
    ///
    /// # Panics
    /// When `shoal service ps` fails.
    #[must_use]
    pub fn running_tasks(&self, service: &str) -> Vec<RunningTask> {
        let wanted: BTreeSet<String> = self
            .node(1)
            .shoal_ok(&[
                "service",
                "ps",
                "-q",
                "--no-trunc",
                "--filter",
                "desired-state=running",
                service,
            ])
            .lines()
            .map(str::to_owned)
            .collect();
        let mut tasks = Vec::new();
        for (index, node) in self.nodes().iter().enumerate() {
            for id in node.running_containers() {
                if !wanted.contains(&id) {
                    continue;
                }
                let addrs = node
                    .runc_exec(&id, &["ip", "-o", "-4", "addr", "show", "eth0"])
                    .unwrap_or_default();
                if let Some(addr) = addrs
                    .split_whitespace()
                    .nth(3)
                    .and_then(|a| a.split('/').next())
                {
                    tasks.push(RunningTask {
                        node: index + 1,
                        id,
                        addr: addr.to_owned(),
                    });
                }
            }
        }
        tasks
    }

    /// The hostname of a running task (its name, as whoami answers it).
    ///
    /// # Panics
    /// When `runc exec` fails.
    #[must_use]
    pub fn task_hostname(&self, task: &RunningTask) -> String {
        self.node(task.node)
            .runc_exec(&task.id, &["hostname"])
            .unwrap_or_else(|e| panic!("hostname of {}: {e}", task.id))
            .trim()
            .to_owned()
    }

    /// The running tasks of `service`, once there are exactly `count`.
    ///
    /// # Panics
    /// When that does not happen within [`CONVERGE`].
    #[must_use]
    pub fn wait_for_tasks(&self, service: &str, count: usize) -> Vec<RunningTask> {
        eventually(
            &format!("{count} running {service} tasks"),
            CONVERGE,
            || {
                let tasks = self.running_tasks(service);
                if tasks.len() == count {
                    Ok(tasks)
                } else {
                    Err(format!("{tasks:?}"))
                }
            },
        )
    }
}
