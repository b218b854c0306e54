//! What the benchmarks share: processes started for a run and killed with
//! it ([`Background`]), the static `whoami` the demo image holds, waiting
//! for a service's tasks, and kube-proxy's iptables round robin.

use std::{
    path::PathBuf,
    process::Child,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use shoal_netns_tests::{RunningTask, World};

use crate::interrupt;

/// How long a benchmark's service may take to run its tasks.
const CONVERGE: Duration = Duration::from_mins(2);

/// A process started for a benchmark, killed by its PID and reaped on drop.
#[derive(Debug)]
pub struct Background(pub Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The static whoami the demo image holds (built by `demo-image`).
pub fn static_whoami() -> Result<PathBuf> {
    let binary = crate::demo_image::tarball_path()
        .parent()
        .and_then(|p| p.parent())
        .context("the target directory")?
        .join(format!(
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
            bail!(
                "{} of {n} {service} tasks running after {CONVERGE:?}",
                found.len()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
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

#[cfg(test)]
mod tests {
    use super::round_robin_dnat;

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
}
