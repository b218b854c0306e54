//! A system-wide profile of one run: `perf record -a -g` on software
//! clock events (`cpu-clock`, which work where hardware counters are not
//! exposed) while the run goes, then the top symbols by self time from
//! `perf report`: kernel functions by name, eBPF programs as
//! `bpf_prog_<tag>_<name>` (the kernel lists the programs it compiled in kallsyms).

use std::{
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use super::{Background, checked, have};

/// How many symbols and commands of the report are kept.
const TOP: usize = 25;
const TOP_COMMANDS: usize = 8;

/// Runs `run` under `perf record -a -g -e cpu-clock` (data in `dir`) and
/// returns its result with the profile's top symbols.
pub fn profiled<T>(dir: &Path, run: impl FnOnce() -> T) -> (T, Result<String>) {
    let data = dir.join("perf.data");
    let recording = start_recording(&data);
    let result = run();
    let report = recording.and_then(|perf| {
        stop_recording(perf)?;
        top_symbols(&data)
    });
    (result, report)
}

fn start_recording(data: &Path) -> Result<Background> {
    if !have("perf") {
        bail!("perf is missing: run cargo xtask setup (linux-perf)");
    }
    let child = Command::new("perf")
        .args(["record", "-a", "-g", "-e", "cpu-clock", "-q", "-o"])
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting perf record")?;
    Ok(Background(child))
}

/// Ends the recording as Ctrl-C would (perf writes its data on SIGINT).
fn stop_recording(mut perf: Background) -> Result<()> {
    let pid = i32::try_from(perf.0.id()).context("perf's PID")?;
    kill(Pid::from_raw(pid), Signal::SIGINT).context("stopping perf record")?;
    let status = perf.0.wait().context("waiting for perf record")?;
    // SIGINT is how perf record is meant to end: it exits 0 or by it.
    if !status.success() && status.code().is_some() {
        bail!("perf record failed with {status}");
    }
    Ok(())
}

/// Who used the CPU (the top [`TOP_COMMANDS`] commands: other work on
/// the machine shows here) and the top [`TOP`] symbols by self time of
/// the recording at `data`.
fn top_symbols(data: &Path) -> Result<String> {
    let report = |sort: &str| {
        checked(
            Command::new("perf")
                .args([
                    "report",
                    "--no-children",
                    "--sort",
                    sort,
                    "--stdio",
                    "-g",
                    "none",
                    "-i",
                ])
                .arg(data),
        )
    };
    Ok(format!(
        "by command: {}\n{}",
        symbol_lines(&report("comm")?, TOP_COMMANDS).join(", "),
        symbol_lines(&report("sym")?, TOP).join("\n")
    ))
}

/// The first `count` lines of a `perf report --stdio` (those that start
/// with a percentage), trimmed.
fn symbol_lines(report: &str, count: usize) -> Vec<String> {
    report
        .lines()
        .map(str::trim)
        .filter(|line| {
            line.split_whitespace()
                .next()
                .and_then(|first| first.strip_suffix('%'))
                .is_some_and(|number| number.parse::<f64>().is_ok())
        })
        .take(count)
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::symbol_lines;

    #[test]
    fn keeps_the_top_symbol_lines_of_a_report() {
        let report =
            "# To display the perf.data header info, please use --header/--header-only options.
#
# Samples: 40K of event 'cpu-clock:pppH'
# Event count (approx.): 10000000000
#
# Overhead  Symbol
# ........  ......................................
#
    12.50%  [k] _raw_spin_unlock_irqrestore
     3.25%  [k] bpf_prog_6deef7357e7b4530_xdp_underlay
     1.00%  [.] ngx_http_process_request_line


#
# (Tip: Use --no-children to see self time)
#
";
        assert_eq!(
            symbol_lines(report, 2),
            [
                "12.50% [k] _raw_spin_unlock_irqrestore",
                "3.25% [k] bpf_prog_6deef7357e7b4530_xdp_underlay"
            ]
        );
        assert_eq!(symbol_lines(report, 25).len(), 3);
    }
}
