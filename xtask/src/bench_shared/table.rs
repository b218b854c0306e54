//! A variant's figures ([`Row`]) and the table that compares them all.

use super::{CONNECTIONS, SECONDS, wrk::Wrk};

/// One variant's figures.
#[derive(Debug)]
pub(super) struct Row {
    pub(super) name: &'static str,
    /// What the requests go through.
    pub(super) path: String,
    /// The client addresses the backends saw, and which backends answered.
    pub(super) seen: String,
    pub(super) keep_alive: Result<Wrk, String>,
    pub(super) close: Result<Wrk, String>,
    pub(super) note: String,
}

impl Row {
    pub(super) fn failed(name: &'static str, path: String, error: String) -> Self {
        println!("    {name}: skipped: {error}");
        Self {
            name,
            path,
            seen: String::new(),
            keep_alive: Err(error.clone()),
            close: Err(error),
            note: String::new(),
        }
    }
}

/// Prints every row, with ratios to direct and to iptables per connection mode.
pub(super) fn print_table(rows: &[Row], load_before: &str) {
    let find = |name: &str| rows.iter().find(|r| r.name == name);
    let (direct, iptables) = (find("direct"), find("iptables"));
    println!(
        "\n==> routing mesh: requests through a published port and its alternatives (wrk, {CONNECTIONS} connections, {SECONDS} s; figures, not assertions)"
    );
    println!(
        "    {:<26} {:<10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}  through",
        "variant", "connection", "req/s", "p50 ms", "p99 ms", "/direct", "/iptab.", "retrans"
    );
    for row in rows {
        for (mode, keep_alive) in [("keep-alive", true), ("close", false)] {
            let pick = |r: &Row| {
                if keep_alive {
                    r.keep_alive.clone()
                } else {
                    r.close.clone()
                }
            };
            let result = &pick(row);
            let ratio = |base: Option<&Row>| {
                let base = base.and_then(|b| pick(b).ok());
                match (result, base) {
                    (Ok(w), Some(b)) if b.requests_per_second > 0.0 => {
                        format!("{:.2}", w.requests_per_second / b.requests_per_second)
                    }
                    _ => "-".to_owned(),
                }
            };
            match result {
                Ok(w) => println!(
                    "    {:<26} {:<10} {:>9.0} {:>9.3} {:>9.3} {:>8} {:>8} {:>8}  {}",
                    row.name,
                    mode,
                    w.requests_per_second,
                    w.p50.as_secs_f64() * 1e3,
                    w.p99.as_secs_f64() * 1e3,
                    ratio(direct),
                    ratio(iptables),
                    w.retransmits
                        .map_or_else(|| "-".to_owned(), |r| r.to_string()),
                    row.path
                ),
                Err(error) => println!(
                    "    {:<26} {:<10} did not run: {}",
                    row.name,
                    mode,
                    error.lines().next().unwrap_or_default()
                ),
            }
            if let Ok(w) = result
                && !w.errors.is_empty()
            {
                println!("    {:<26} {:<10} wrk: {}", "", "", w.errors);
            }
        }
    }
    println!("\n    client addresses the backends saw (source IP preserved or not):");
    for row in rows.iter().filter(|r| !r.seen.is_empty()) {
        println!("    {:<26} {}", row.name, row.seen);
    }
    for row in rows.iter().filter(|r| !r.note.is_empty()) {
        println!("    {}: {}", row.name, row.note);
    }
    println!(
        "\n    the mesh carries the requests of tasks on other nodes over VXLAN to them and back through node-1 (keeping the client's address); the proxies reach their backends on the same switch and hide it"
    );
    println!(
        "    client, proxies, backends and nodes share {} cores; load average before: {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        load_before
    );
}

/// The 1, 5 and 15 minute load averages.
pub(super) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
