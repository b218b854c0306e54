//! A bench's table: per variant ([`Row`]) and mode, the medians of its
//! runs: the rate and its ratio to the base variant (direct, or the bare
//! device), p99, the machine's busy time per operation, the extra over
//! the base and its ratio to the reference's extra (the iptables hop),
//! retransmits and drops; then who answered, the notes, the profiles and
//! the load average.

use super::{Plan, load_average, runs::Summary};

/// A connection mode: its name and units.
pub struct Mode {
    pub name: &'static str,
    /// The rate's unit (`req/s`, `conn/s`, `Gbit/s`).
    pub rate_unit: &'static str,
    /// What an operation is (`req`, `conn`, `MB`), for CPU per operation.
    pub operation: &'static str,
}

/// One variant's figures.
#[derive(Debug)]
pub struct Row {
    /// Short name (`--profile` takes it).
    pub key: &'static str,
    pub name: String,
    /// What the traffic goes through.
    pub path: String,
    /// The client addresses the backends saw, and which backends answered.
    pub seen: String,
    /// Per mode, in the table's order.
    pub modes: Vec<Result<Summary, String>>,
    pub note: String,
    pub profile: Option<String>,
}

impl Row {
    /// A variant that could not run, in every one of `modes` modes.
    pub fn failed(key: &'static str, name: &str, path: String, error: &str, modes: usize) -> Self {
        Self {
            key,
            name: name.to_owned(),
            path,
            seen: String::new(),
            modes: vec![Err(error.to_owned()); modes],
            note: String::new(),
            profile: None,
        }
    }

    /// Prints the variant's medians as they come.
    pub fn print_brief(&self, modes: &[Mode]) {
        if let [Err(first), rest @ ..] = self.modes.as_slice()
            && rest.iter().all(|m| m.as_ref().err() == Some(first))
        {
            println!("    {}: did not run: {first}", self.name);
            return;
        }
        let figures: Vec<String> = modes
            .iter()
            .zip(&self.modes)
            .map(|(mode, result)| match result {
                Ok(s) => format!("{} {} {}", mode.name, rate(s.rate), mode.rate_unit),
                Err(error) => format!("{} failed ({error})", mode.name),
            })
            .collect();
        println!("    {}: {}; {}", self.name, figures.join(", "), self.seen);
    }
}

/// What a bench's table compares.
pub struct Table<'a> {
    pub title: &'a str,
    pub modes: &'a [Mode],
    /// The key of the variant the rates and CPU are compared with.
    pub base: &'a str,
    /// The key of the variant whose extra CPU the others' is compared with.
    pub reference: Option<&'a str>,
    pub plan: &'a Plan,
    pub load_before: &'a str,
}

/// The table's columns.
const COLUMNS: [&str; 10] = [
    "variant",
    "mode",
    "rate",
    "×base",
    "p99 ms",
    "CPU µs/op",
    "extra µs",
    "÷ref.",
    "retrans",
    "drops",
];

/// Prints one line of the table.
fn line(cells: &[String; 10]) {
    println!(
        "    {:<38} {:<10} {:>8} {:>6} {:>7} {:>9} {:>8} {:>6} {:>7} {:>6}",
        cells[0],
        cells[1],
        cells[2],
        cells[3],
        cells[4],
        cells[5],
        cells[6],
        cells[7],
        cells[8],
        cells[9]
    );
}

impl Table<'_> {
    /// Prints `rows`, then what each went through and the load average.
    pub fn print(&self, rows: &[Row]) {
        println!(
            "\n==> {} (medians of {} run{}; figures, not assertions)",
            self.title,
            self.plan.runs,
            if self.plan.runs == 1 { "" } else { "s" }
        );
        line(&COLUMNS.map(str::to_owned));
        let find = |key: &str| rows.iter().find(|r| r.key == key);
        let (base, reference) = (find(self.base), self.reference.and_then(find));
        for row in rows {
            for (index, mode) in self.modes.iter().enumerate() {
                match row.modes.get(index) {
                    Some(Ok(summary)) => {
                        line(&self.cells(
                            row,
                            mode,
                            summary,
                            summary_of(base, index),
                            summary_of(reference, index),
                        ));
                        if !summary.errors.is_empty() {
                            println!("    {:<38} {:<10} errors: {}", "", "", summary.errors);
                        }
                    }
                    Some(Err(error)) => println!(
                        "    {:<38} {:<10} did not run: {}",
                        row.name,
                        mode.name,
                        error.lines().next().unwrap_or_default()
                    ),
                    None => {}
                }
            }
        }
        self.print_legend(rows);
    }

    /// One row's cells in one mode, against the base's and reference's
    /// figures in that mode.
    fn cells(
        &self,
        row: &Row,
        mode: &Mode,
        summary: &Summary,
        base: Option<&Summary>,
        reference: Option<&Summary>,
    ) -> [String; 10] {
        let dash = || "-".to_owned();
        let extra = |s: &Summary| {
            s.cpu_per_operation
                .zip(base.and_then(|b| b.cpu_per_operation))
                .map(|(cpu, base)| cpu - base)
        };
        let count = |n: Option<u64>| n.map_or_else(dash, |n| n.to_string());
        [
            row.name.clone(),
            mode.name.to_owned(),
            rate(summary.rate),
            base.filter(|b| b.rate > 0.0)
                .map_or_else(dash, |b| format!("{:.2}", summary.rate / b.rate)),
            summary
                .p99
                .map_or_else(dash, |p| format!("{:.2}", p.as_secs_f64() * 1e3)),
            summary
                .cpu_per_operation
                .map_or_else(dash, |c| format!("{c:.1}")),
            extra(summary).map_or_else(dash, |e| format!("{e:+.1}")),
            extra(summary)
                .zip(reference.and_then(extra))
                .filter(|(_, reference)| *reference > 0.0 && self.reference.is_some())
                .map_or_else(dash, |(extra, reference)| {
                    format!("{:.2}", extra / reference)
                }),
            count(summary.retransmits),
            count(summary.drops),
        ]
    }

    /// What the columns mean, what each variant went through, the
    /// profiles and the load average.
    fn print_legend(&self, rows: &[Row]) {
        let units: Vec<String> = self
            .modes
            .iter()
            .map(|m| {
                format!(
                    "{}: {} and µs of busy CPU per {}",
                    m.name, m.rate_unit, m.operation
                )
            })
            .collect();
        let reference = self
            .reference
            .map(|r| format!("; ÷ref.: extra CPU over {r}'s extra"))
            .unwrap_or_default();
        println!(
            "    ×base and extra µs: against {}{reference} ({})",
            self.base,
            units.join("; ")
        );
        println!(
            "    CPU: the whole machine's busy time (/proc/stat) over a run / its operations; retrans: the client's TCP retransmits; drops: the path's interfaces and eBPF programs"
        );
        println!("\n    what each variant goes through, and what the backends saw:");
        for row in rows {
            println!("    {:<38} {}", row.name, row.path);
            if !row.seen.is_empty() {
                println!("    {:<38} saw {}", "", row.seen);
            }
            if !row.note.is_empty() {
                println!("    {:<38} {}", "", row.note);
            }
        }
        for profile in rows.iter().filter_map(|r| r.profile.as_ref()) {
            println!("\n    profile: {}", profile.replace('\n', "\n      "));
        }
        println!(
            "\n    {} cores shared by everything above (and other work); load average before: {}, after: {}",
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            self.load_before,
            load_average()
        );
    }
}

/// A rate as the table prints it: whole numbers, or two decimals below 100
/// (Gbit/s, a few connections a second).
fn rate(rate: f64) -> String {
    if rate < 100.0 {
        format!("{rate:.2}")
    } else {
        format!("{rate:.0}")
    }
}

/// The medians of `row`'s mode `index`, when it ran.
fn summary_of(row: Option<&Row>, index: usize) -> Option<&Summary> {
    row.and_then(|r| r.modes.get(index))
        .and_then(|m| m.as_ref().ok())
}
