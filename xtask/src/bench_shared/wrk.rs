//! One measured run: the load (wrk's `--latency` report, or any
//! [`Load`]), the machine's busy time over it (`cpu`), the TCP segments
//! the client's namespace retransmitted and the packets the path dropped.
//! A latency tail with neither retransmits nor drops is time spent
//! waiting for a core: client, proxies, backends and nodes share them.

use std::{process::Command, time::Duration};

use super::cpu::CpuTimes;
use crate::interrupt;

/// wrk's threads and connections, and the seconds of every run.
pub const THREADS: &str = "2";
pub const CONNECTIONS: &str = "64";
pub const SECONDS: u64 = 10;

/// What a load generator reported for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Requests, connections or megabytes done.
    pub operations: f64,
    /// Per second (or Gbit/s for a stream).
    pub rate: f64,
    pub p99: Option<Duration>,
    /// wrk's `Socket errors:` and `Non-2xx` lines, failed connections.
    pub errors: String,
}

/// One run, measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub load: Load,
    /// The whole machine's busy time during the run.
    pub cpu: Duration,
    pub retransmits: Option<u64>,
    pub drops: Option<u64>,
}

impl Sample {
    /// Busy time per operation, µs.
    pub fn cpu_per_operation(&self) -> Option<f64> {
        (self.load.operations > 0.0).then(|| self.cpu.as_secs_f64() * 1e6 / self.load.operations)
    }
}

/// Where a run's side counters are read: the client's network namespace
/// (a path: `/run/netns/…` or a task's bind mount), for its
/// retransmits, and the packets dropped on the path so far.
pub struct Counters<'a> {
    pub client: String,
    pub drops: &'a dyn Fn() -> Option<u64>,
}

/// Runs `load`, measuring the machine's CPU and the counters around it.
pub fn sample(
    counters: &Counters<'_>,
    load: impl FnOnce() -> Result<Load, String>,
) -> Result<Sample, String> {
    if interrupt::interrupted() {
        return Err("interrupted".into());
    }
    let (retransmits_before, drops_before) =
        (retransmitted_segments(&counters.client), (counters.drops)());
    let cpu_before = CpuTimes::now();
    let load = load()?;
    let cpu = CpuTimes::now()
        .zip(cpu_before)
        .map(|(after, before)| after.busy_since(before))
        .ok_or("/proc/stat is unreadable")?;
    let retransmits = retransmitted_segments(&counters.client)
        .zip(retransmits_before)
        .map(|(after, before)| after.saturating_sub(before));
    let drops = (counters.drops)()
        .zip(drops_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(Sample {
        load,
        cpu,
        retransmits,
        drops,
    })
}

/// `nsenter --net=<netns> program`: a command run in the namespace at
/// `netns` (any path: a named namespace's or a task's).
pub fn in_netns(netns: &str, program: &str) -> Command {
    let mut command = Command::new("nsenter");
    command.arg(format!("--net={netns}")).arg(program);
    command
}

/// One wrk run from the namespace at `netns` to `url`, keep-alive or a
/// new connection per request (`Connection: close`).
pub fn wrk(netns: &str, url: &str, close: bool) -> Result<Load, String> {
    let mut command = in_netns(netns, "wrk");
    command.args([
        "-t",
        THREADS,
        "-c",
        CONNECTIONS,
        "-d",
        &format!("{SECONDS}s"),
        "--timeout",
        "2s",
        "--latency",
    ]);
    if close {
        command.args(["-H", "Connection: close"]);
    }
    let output = command
        .arg(url)
        .output()
        .map_err(|e| format!("running wrk: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {}{}",
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    parse_wrk(&text)
}

/// The TCP segments the namespace at `netns` has retransmitted so far.
fn retransmitted_segments(netns: &str) -> Option<u64> {
    let snmp = shoal_netns_tests::netns::run_in(netns, || {
        std::fs::read_to_string("/proc/thread-self/net/snmp").ok()
    })?;
    tcp_retransmits(&snmp)
}

/// `RetransSegs` of `/proc/net/snmp`: the second `Tcp:` line holds the
/// values of the names on the first.
fn tcp_retransmits(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|line| line.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let column = names.split_whitespace().position(|n| n == "RetransSegs")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

/// Reads wrk's `--latency` report.
fn parse_wrk(text: &str) -> Result<Load, String> {
    let (mut rate, mut requests, mut p99) = (None, None, None);
    let mut errors = Vec::new();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(value)) => rate = value.parse::<f64>().ok(),
            (Some("99%"), Some(value)) => p99 = parse_duration(value),
            (Some(count), Some("requests")) => requests = count.parse::<f64>().ok(),
            _ => {}
        }
        if line.starts_with("Socket errors:") || line.starts_with("Non-2xx") {
            errors.push(line.to_owned());
        }
    }
    match (rate, requests, p99) {
        (Some(rate), Some(operations), Some(p99)) => Ok(Load {
            operations,
            rate,
            p99: Some(p99),
            errors: errors.join("; "),
        }),
        _ => Err(format!("unexpected wrk output: {text}")),
    }
}

/// A wrk duration: `812.00us`, `1.25ms`, `2.01s`, `1.00m`.
fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Load, Sample, parse_duration, parse_wrk, tcp_retransmits};

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 10s test @ http://198.18.2.1:80/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms    2.10ms  40.12ms   91.00%
    Req/Sec    11.20k     1.01k   13.40k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.40ms
     90%    3.01ms
     99%   10.25ms
  178301 requests in 8.00s, 40.12MB read
  Socket errors: connect 0, read 3, write 0, timeout 0
Requests/sec:  22287.61
Transfer/sec:      5.01MB
";
        let load = parse_wrk(report).expect("parses");
        assert_eq!(
            load,
            Load {
                operations: 178_301.0,
                rate: 22287.61,
                p99: Some(Duration::from_micros(10250)),
                errors: "Socket errors: connect 0, read 3, write 0, timeout 0".into(),
            }
        );
        assert!(parse_wrk("wrk: connection refused").is_err());
    }

    #[test]
    fn cpu_per_operation_divides_the_busy_time() {
        let sample = |operations| Sample {
            load: Load {
                operations,
                rate: 0.0,
                p99: None,
                errors: String::new(),
            },
            cpu: Duration::from_millis(2500),
            retransmits: None,
            drops: None,
        };
        assert_eq!(sample(100_000.0).cpu_per_operation(), Some(25.0));
        assert_eq!(sample(0.0).cpu_per_operation(), None);
    }

    #[test]
    fn reads_tcp_retransmits_from_snmp() {
        let snmp = "Ip: Forwarding DefaultTTL
Ip: 1 64
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 40 2 0 1 3 5812 5790 17 0 4 0
Udp: InDatagrams
Udp: 9
";
        assert_eq!(tcp_retransmits(snmp), Some(17));
        assert_eq!(tcp_retransmits("Tcp: RetransSegs\n"), None);
        assert_eq!(tcp_retransmits(""), None);
    }

    #[test]
    fn reads_wrk_durations() {
        assert_eq!(parse_duration("2.00s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.00m"), Some(Duration::from_mins(1)));
        assert_eq!(parse_duration("12"), None);
    }
}
