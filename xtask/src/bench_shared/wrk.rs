//! Measuring a target from the client: waiting for its first answer, a
//! few probes to show which backends answer and which client address they
//! saw, then wrk with keep-alive and with a new connection per request;
//! wrk's report and the client's TCP retransmits read back.

use std::{
    net::SocketAddrV4,
    time::{Duration, Instant},
};

use shoal_netns_tests::client::{Host, whoami_field};

use super::{CONNECTIONS, SECONDS, THREADS, report::Row};
use crate::interrupt;

/// How long a variant may take to answer its first request.
const FIRST_ANSWER: Duration = Duration::from_secs(30);
/// Requests sent one by one before measuring, to show who answers.
const PROBES: usize = 6;

/// Waits for `target` to answer from `client`, shows who answers a few
/// requests, then runs wrk with keep-alive and with a connection per
/// request.
pub(super) fn measure(
    name: &'static str,
    path: String,
    client: &Host,
    target: SocketAddrV4,
) -> Row {
    let deadline = Instant::now() + FIRST_ANSWER;
    let first = loop {
        match client.http_get(target, Duration::from_secs(2)) {
            Ok(answer) => break Ok(answer),
            Err(error) if Instant::now() > deadline || interrupt::interrupted() => {
                break Err(error);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    };
    if interrupt::interrupted() {
        return Row::failed(name, path, "interrupted".into());
    }
    if let Err(error) = first {
        return Row::failed(
            name,
            path,
            format!("{target} did not answer within {FIRST_ANSWER:?}: {error}"),
        );
    }
    let mut hostnames = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..PROBES {
        if let Ok(answer) = client.http_get(target, Duration::from_secs(2)) {
            let host = whoami_field(&answer, "Hostname").unwrap_or("?").to_owned();
            let saw = whoami_field(&answer, "RemoteAddr")
                .and_then(|a| a.rsplit_once(':'))
                .map_or("?", |(ip, _)| ip)
                .to_owned();
            if !hostnames.contains(&host) {
                hostnames.push(host);
            }
            if !seen.contains(&saw) {
                seen.push(saw);
            }
        }
    }
    let seen = format!(
        "{} ({} backends in {PROBES} requests)",
        seen.join(" "),
        hostnames.len()
    );
    let url = format!("http://{target}/");
    let keep_alive = wrk(client, &url, false);
    let close = wrk(client, &url, true);
    let row = Row {
        name,
        path,
        seen,
        keep_alive,
        close,
        note: String::new(),
    };
    println!(
        "    {name}: keep-alive {}, new connection per request {}; backends saw {}",
        brief(&row.keep_alive),
        brief(&row.close),
        row.seen
    );
    row
}

fn brief(result: &Result<Wrk, String>) -> String {
    match result {
        Ok(w) => format!("{:.0} req/s", w.requests_per_second),
        Err(error) => format!("failed ({error})"),
    }
}

/// What wrk measured.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Wrk {
    pub(super) requests_per_second: f64,
    pub(super) p50: Duration,
    pub(super) p99: Duration,
    /// wrk's `Socket errors:` and `Non-2xx` lines, if any.
    pub(super) errors: String,
    /// TCP segments the client retransmitted during the run: loss on the
    /// path shows here, while a latency tail without any is time spent
    /// waiting for a core.
    pub(super) retransmits: Option<u64>,
}

/// One wrk run from `client` to `url`.
fn wrk(client: &Host, url: &str, close: bool) -> Result<Wrk, String> {
    if interrupt::interrupted() {
        return Err("interrupted".into());
    }
    let mut command = client.command("wrk");
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
    let retransmits_before = retransmitted_segments(client);
    let output = command
        .arg(url)
        .output()
        .map_err(|e| format!("running wrk: {e}"))?;
    let retransmits = retransmitted_segments(client)
        .zip(retransmits_before)
        .map(|(after, before)| after.saturating_sub(before));
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed: {}{}",
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    parse_wrk(&text).map(|wrk| Wrk { retransmits, ..wrk })
}

/// The TCP segments `client`'s namespace has retransmitted so far.
fn retransmitted_segments(client: &Host) -> Option<u64> {
    let snmp = client
        .netns()
        .run(|| std::fs::read_to_string("/proc/thread-self/net/snmp").ok())?;
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
fn parse_wrk(text: &str) -> Result<Wrk, String> {
    let mut rate = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = Vec::new();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(value)) => rate = value.parse::<f64>().ok(),
            (Some("50%"), Some(value)) => p50 = parse_duration(value),
            (Some("99%"), Some(value)) => p99 = parse_duration(value),
            _ => {}
        }
        if line.starts_with("Socket errors:") || line.starts_with("Non-2xx") {
            errors.push(line.to_owned());
        }
    }
    match (rate, p50, p99) {
        (Some(requests_per_second), Some(p50), Some(p99)) => Ok(Wrk {
            requests_per_second,
            p50,
            p99,
            errors: errors.join("; "),
            retransmits: None,
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

    use super::{parse_duration, parse_wrk, tcp_retransmits};

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 8s test @ http://198.18.2.1:80/
  2 threads and 32 connections
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
        let wrk = parse_wrk(report).expect("parses");
        assert!((wrk.requests_per_second - 22287.61).abs() < 1e-6);
        assert_eq!(wrk.p50, Duration::from_micros(812));
        assert_eq!(wrk.p99, Duration::from_micros(10250));
        assert_eq!(
            wrk.errors,
            "Socket errors: connect 0, read 3, write 0, timeout 0"
        );
        assert!(parse_wrk("wrk: connection refused").is_err());
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
