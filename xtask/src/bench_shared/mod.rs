//! What the benchmarks share: how many runs and what to profile
//! ([`Plan`]), processes started for a run and stopped with it
//! ([`Background`]), their files ([`TempDir`]), running tools in namespaces ([`have`], [`checked`]),
//! the static `whoami` the demo image holds, the VIP and overlay benches'
//! world ([`overlay_world`]), waiting for a service's
//! tasks, kube-proxy's iptables round robin, medians, the packets a world
//! dropped, and the load average printed with each table.
//!
//! | module | owns |
//! | --- | --- |
//! | `cpu` | whole-box busy time from `/proc/stat` |
//! | `nginx` | the nginx backend: its one config, in a lab namespace, as an image |
//! | `wrk` | a measured run: wrk's report, the client's retransmits, drops, CPU |
//! | `runs` | a variant's runs, their medians and the optional profile |
//! | `profile` | `perf record -a -g` around a run and its top symbols |
//! | `table` | a bench's table of medians, ratios and extra CPU |

pub mod cpu;
pub mod nginx;
pub mod profile;
pub mod runs;
pub mod table;
pub mod wrk;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use shoal_api::status::NodeStatus;
use shoal_netns_tests::{RunningTask, World, netns::NetNs};

use crate::interrupt;

/// How long a benchmark's service may take to run its tasks.
const CONVERGE: Duration = Duration::from_mins(2);
/// The overlay network the VIP and overlay benches create.
pub const BENCH_NETWORK: &str = "bench";

/// A formed 3-node swarm (1 manager, 2 workers) tagged `tag`, with the
/// nginx image `image` on every node and the overlay network
/// [`BENCH_NETWORK`]: what the VIP and overlay benches start from.
pub fn overlay_world(tag: &str, image: &std::path::Path) -> Result<World> {
    let world = World::swarm(tag, 3).form().map_err(anyhow::Error::msg)?;
    nginx::import(&world, image);
    manager_shoal(
        &world,
        &["network", "create", "-d", "overlay", BENCH_NETWORK],
    )?;
    Ok(world)
}

/// `shoal ARGS` on node 1 (the manager); its output.
pub fn manager_shoal(world: &World, args: &[&str]) -> Result<String> {
    world
        .node(1)
        .shoal(args)
        .map_err(|e| anyhow::anyhow!("shoal {}: {e}", args.join(" ")))
}

/// How long a background process may take to end on SIGTERM.
const STOP: Duration = Duration::from_secs(5);

/// How a bench runs its variants: `runs` measured runs per variant and
/// connection mode (medians reported), and the variant whose first mode
/// is run once more under `perf`.
#[derive(Debug, Clone)]
pub struct Plan {
    pub runs: usize,
    pub profile: Option<String>,
}

impl Plan {
    /// Fails when the variant to profile is none of `keys` (a bench's).
    pub fn check_profile(&self, keys: &[&str]) -> Result<()> {
        match &self.profile {
            Some(profile) if !keys.contains(&profile.as_str()) => {
                bail!(
                    "no variant {profile} to profile here: one of {}",
                    keys.join(", ")
                )
            }
            _ => Ok(()),
        }
    }
}

/// A process started for a benchmark, stopped on drop by its PID: SIGTERM
/// (nginx's master then stops its workers), SIGKILL if it is still there
/// after [`STOP`], then reaped.
#[derive(Debug)]
pub struct Background(pub Child);

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            let deadline = Instant::now() + STOP;
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory of a bench's files (configs, perf data), removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Makes `name` in the system's temporary directory.
    pub fn new(name: &str) -> Result<Self> {
        let dir = Self(std::env::temp_dir().join(name));
        std::fs::create_dir_all(&dir.0).with_context(|| format!("creating {}", dir.0.display()))?;
        Ok(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `program` is on the `PATH`.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `command`, failing with its error output; its output.
pub fn checked(command: &mut Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The static whoami the demo image holds (built by `demo-image`).
pub fn static_whoami() -> Result<PathBuf> {
    let binary = crate::demo_image::target_dir().join(format!(
        "{}-unknown-linux-gnu/release/whoami",
        std::env::consts::ARCH
    ));
    if binary.exists() {
        Ok(binary)
    } else {
        bail!(
            "{} is missing: run cargo xtask demo-image",
            binary.display()
        )
    }
}

/// The `n` running tasks of `service`, by node, once there are that many
/// (within two minutes, unless interrupted).
pub fn wait_for_tasks(world: &World, service: &str, n: usize) -> Result<Vec<RunningTask>> {
    let deadline = Instant::now() + CONVERGE;
    loop {
        if interrupt::interrupted() {
            bail!("interrupted");
        }
        let mut found = world.running_tasks(service);
        if found.len() == n {
            found.sort_by_key(|t| t.node);
            return Ok(found);
        }
        if Instant::now() > deadline {
            let tasks = world
                .node(1)
                .shoal(&["service", "ps", "--no-trunc", service])
                .unwrap_or_else(|error| error);
            bail!(
                "{} of {n} {service} tasks running after {CONVERGE:?}:\n{tasks}",
                found.len()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The network namespace of a running task: its bind mount under the
/// node's data directory.
pub fn task_netns(world: &World, task: &RunningTask) -> String {
    world
        .node(task.node)
        .data_dir()
        .join("tasks")
        .join(&task.id)
        .join("netns")
        .display()
        .to_string()
}

/// The iptables rules of kube-proxy's round robin over `backends`
/// (`address:port` each): `matching` (table, chain and match) then, for
/// rule `i` of `n`, `statistic --mode nth --every n-i` (the last takes
/// the rest) and the DNAT to backend `i`.
pub fn round_robin_dnat(matching: &[&str], backends: &[String]) -> Vec<Vec<String>> {
    let count = backends.len();
    backends
        .iter()
        .enumerate()
        .map(|(i, backend)| {
            let mut rule: Vec<String> = matching.iter().map(|s| (*s).to_owned()).collect();
            if i + 1 < count {
                rule.extend(
                    ["-m", "statistic", "--mode", "nth", "--every"]
                        .iter()
                        .map(|s| (*s).to_owned()),
                );
                rule.extend([(count - i).to_string(), "--packet".into(), "0".into()]);
            }
            rule.extend([
                "-j".into(),
                "DNAT".into(),
                "--to-destination".into(),
                backend.clone(),
            ]);
            rule
        })
        .collect()
}

/// The number after `key` (`per_second=`, `bytes=`, …) in what one of
/// whoami's load modes printed.
pub fn whoami_figure(answer: &str, key: &str) -> Result<f64, String> {
    answer
        .split_whitespace()
        .find_map(|f| f.strip_prefix(key))
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| format!("no {key} in {answer:?}"))
}

/// The median of `values` (the upper one of an even count); `None` when
/// there are none.
pub fn median<T: Copy + PartialOrd>(values: &[T]) -> Option<T> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    sorted.get(sorted.len() / 2).copied()
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Packets dropped so far by the interfaces of `netns` (received and
/// sent, from its `/proc/net/dev`).
pub fn interface_drops(netns: &NetNs) -> Option<u64> {
    netns
        .run(|| std::fs::read_to_string("/proc/thread-self/net/dev").ok())
        .map(|text| netdev_drops(&text))
}

/// The sum of the `drop` columns (receive and transmit) of a
/// `/proc/net/dev`.
fn netdev_drops(text: &str) -> u64 {
    // After `iface:`, receive has bytes packets errs drop …(8 columns),
    // then transmit bytes packets errs drop ….
    text.lines()
        .filter_map(|line| line.split_once(':').map(|(_, counters)| counters))
        .map(|counters| {
            let columns: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect();
            columns.get(3).copied().unwrap_or(0) + columns.get(11).copied().unwrap_or(0)
        })
        .sum()
}

/// Every drop counter of the nodes' eBPF programs, keyed `node hook
/// verdict`: the data plane's hooks, the routing mesh's node row and each
/// of its published ports.
pub fn dataplane_drops(world: &World) -> BTreeMap<String, u64> {
    let mut drops = BTreeMap::new();
    for node in world.nodes() {
        let Some(status) = node
            .status()
            .ok()
            .and_then(|status| serde_json::from_value::<NodeStatus>(status).ok())
        else {
            continue;
        };
        let host = node.hostname();
        let hooks = status
            .dataplane
            .counters
            .iter()
            .map(|(hook, counters)| (hook.clone(), &counters.verdicts));
        let mesh = std::iter::once(("mesh".to_owned(), &status.mesh.node)).chain(
            status.mesh.ports.iter().map(|port| {
                (
                    format!("mesh {}/{}", port.published_port, port.protocol),
                    &port.verdicts,
                )
            }),
        );
        for (counter, verdicts) in hooks.chain(mesh) {
            for (verdict, packets) in verdicts {
                if verdict.starts_with("drop") {
                    drops.insert(format!("{host} {counter} {verdict}"), *packets);
                }
            }
        }
    }
    drops
}

/// Packets a world dropped so far: its nodes' eBPF drop counters and
/// the interfaces of its switch and nodes (the tasks' veths among them).
pub fn world_drops(world: &World) -> Option<u64> {
    let ebpf: u64 = dataplane_drops(world).values().sum();
    std::iter::once(world.switch())
        .chain(world.nodes().iter().map(shoal_netns_tests::Node::netns))
        .map(interface_drops)
        .sum::<Option<u64>>()
        .map(|interfaces| interfaces + ebpf)
}

/// The eBPF drop counters that grew between `before` and `after`, as
/// `counter +n` items (`none` when none did).
pub fn grown_drops(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> String {
    let grown: Vec<String> = after
        .iter()
        .filter_map(|(counter, after)| {
            let during = after.saturating_sub(before.get(counter).copied().unwrap_or(0));
            (during > 0).then(|| format!("{counter} +{during}"))
        })
        .collect();
    if grown.is_empty() {
        "none".to_owned()
    } else {
        grown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::{median, netdev_drops, round_robin_dnat};

    #[test]
    fn round_robin_rules_take_every_nth_of_what_is_left() {
        let backends = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"].map(String::from);
        let rules = round_robin_dnat(&["-A", "OUTPUT"], &backends);
        let text: Vec<String> = rules.iter().map(|r| r.join(" ")).collect();
        assert_eq!(
            text,
            [
                "-A OUTPUT -m statistic --mode nth --every 3 --packet 0 -j DNAT --to-destination 10.0.0.1:80",
                "-A OUTPUT -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 10.0.0.2:80",
                "-A OUTPUT -j DNAT --to-destination 10.0.0.3:80",
            ]
        );
    }

    #[test]
    fn medians_take_the_middle_of_the_sorted_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[5u64, 1, 9, 7]), Some(7));
        assert_eq!(median(&[4u64]), Some(4));
        assert_eq!(median::<f64>(&[]), None);
    }

    #[test]
    fn netdev_drops_add_receive_and_transmit_drops() {
        let dev = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
  eth0: 5000000   40000    0    7    0     0          0         0  4000000   30000    0    5    0     0       0          0
";
        assert_eq!(netdev_drops(dev), 12);
        assert_eq!(netdev_drops(""), 0);
    }
}
