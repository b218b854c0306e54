//! A variant's measurement: its loads (one per connection mode) run
//! [`Plan::runs`] times each, interleaved, each run measured
//! ([`sample`]); the medians of each mode ([`Summary`]); and, when the
//! variant is the one to profile, one more run of its first mode under
//! `perf`, whose figures count in no median (perf costs CPU too). [`http`]
//! does all of it for a client asking nginx with wrk.

use std::{net::SocketAddrV4, path::Path, time::Duration};

use super::{
    Plan, median, nginx,
    profile::profiled,
    table::Row,
    wrk::{Counters, Load, Sample, sample, wrk},
};

/// The medians of a mode's runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Runs that succeeded (the medians are theirs).
    pub runs: usize,
    pub rate: f64,
    pub p99: Option<Duration>,
    /// Busy time of the machine per operation, µs.
    pub cpu_per_operation: Option<f64>,
    pub retransmits: Option<u64>,
    pub drops: Option<u64>,
    /// What the load generator complained about, per run.
    pub errors: String,
}

impl Summary {
    /// The medians of `samples`; `None` when there are none.
    pub fn of(samples: &[Sample]) -> Option<Self> {
        let each = |f: &dyn Fn(&Sample) -> Option<f64>| {
            median(&samples.iter().filter_map(f).collect::<Vec<_>>())
        };
        let each_count = |f: &dyn Fn(&Sample) -> Option<u64>| {
            median(&samples.iter().filter_map(f).collect::<Vec<_>>())
        };
        Some(Self {
            runs: samples.len(),
            rate: each(&|s| Some(s.load.rate))?,
            p99: median(
                &samples
                    .iter()
                    .filter_map(|s| s.load.p99)
                    .collect::<Vec<_>>(),
            ),
            cpu_per_operation: each(&Sample::cpu_per_operation),
            retransmits: each_count(&|s| s.retransmits),
            drops: each_count(&|s| s.drops),
            errors: samples
                .iter()
                .map(|s| s.load.errors.as_str())
                .filter(|e| !e.is_empty())
                .collect::<Vec<_>>()
                .join(" | "),
        })
    }
}

/// What measuring a variant gave: per mode, the medians or why no run
/// succeeded; the profile's top symbols when it was profiled.
pub struct Measured {
    pub modes: Vec<Result<Summary, String>>,
    pub profile: Option<String>,
}

/// Runs each of `loads` `plan.runs` times (run 1 of every mode, then run
/// 2, …), measured with `counters`; then, when `key` is the variant to
/// profile, the first load once more under perf (data in `dir`).
pub fn measure(
    plan: &Plan,
    key: &str,
    dir: &Path,
    counters: &Counters<'_>,
    loads: &[&dyn Fn() -> Result<Load, String>],
) -> Measured {
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); loads.len()];
    let mut errors: Vec<Option<String>> = vec![None; loads.len()];
    for _ in 0..plan.runs {
        for (mode, load) in loads.iter().enumerate() {
            match sample(counters, load) {
                Ok(sample) => samples[mode].push(sample),
                Err(error) => errors[mode] = Some(error),
            }
        }
    }
    let profile = (plan.profile.as_deref() == Some(key))
        .then(|| loads.first())
        .flatten()
        .map(|load| {
            let (run, report) = profiled(dir, load);
            match (run, report) {
                (Ok(load), Ok(top)) => format!(
                    "{key}, one more run of the first mode ({:.0}/s), top symbols by self time (perf record -a -g -e cpu-clock):\n{top}",
                    load.rate
                ),
                (Err(error), _) => format!("{key}: the profiled run failed: {error}"),
                (_, Err(error)) => format!("{key}: no profile: {error:#}"),
            }
        });
    let modes = samples
        .iter()
        .zip(errors)
        .map(|(samples, error)| {
            Summary::of(samples).ok_or_else(|| error.unwrap_or_else(|| "no run".to_owned()))
        })
        .collect();
    Measured { modes, profile }
}

/// A variant whose client asks nginx over HTTP.
pub struct HttpVariant<'a> {
    pub key: &'static str,
    pub name: &'a str,
    /// What the requests go through.
    pub path: String,
    /// The client's namespace (a path) and what it asks.
    pub client: String,
    pub target: SocketAddrV4,
    /// The packets dropped on the path so far.
    pub drops: &'a dyn Fn() -> Option<u64>,
}

/// Waits for `variant` to answer, probes who answers, then runs wrk in
/// each of `closes` modes (`Connection: close` or keep-alive) as `plan`
/// says: the variant's row.
pub fn http(plan: &Plan, dir: &Path, variant: &HttpVariant<'_>, closes: &[bool]) -> Row {
    let (client, target) = (variant.client.clone(), variant.target);
    let seen = match nginx::probe(&|| nginx::get_from(&client, target)) {
        Ok(seen) => seen,
        Err(error) => {
            return Row::failed(
                variant.key,
                variant.name,
                variant.path.clone(),
                &format!("{target}: {error}"),
                closes.len(),
            );
        }
    };
    let url = format!("http://{target}/");
    let loads: Vec<Box<dyn Fn() -> Result<Load, String>>> = closes
        .iter()
        .map(|&close| {
            let (client, url) = (client.clone(), url.clone());
            Box::new(move || wrk(&client, &url, close)) as Box<dyn Fn() -> Result<Load, String>>
        })
        .collect();
    let loads: Vec<&dyn Fn() -> Result<Load, String>> = loads.iter().map(AsRef::as_ref).collect();
    let counters = Counters {
        client: client.clone(),
        drops: variant.drops,
    };
    let measured = measure(plan, variant.key, dir, &counters, &loads);
    Row {
        key: variant.key,
        name: variant.name.to_owned(),
        path: variant.path.clone(),
        seen,
        modes: measured.modes,
        note: String::new(),
        profile: measured.profile,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{
        super::wrk::{Load, Sample},
        Summary,
    };

    fn sample(rate: f64, cpu_ms: u64, retransmits: u64) -> Sample {
        Sample {
            load: Load {
                operations: rate * 10.0,
                rate,
                p99: Some(Duration::from_millis(cpu_ms / 100)),
                errors: String::new(),
            },
            cpu: Duration::from_millis(cpu_ms),
            retransmits: Some(retransmits),
            drops: None,
        }
    }

    #[test]
    fn a_summary_holds_the_median_of_each_figure() {
        let summary = Summary::of(&[
            sample(1000.0, 500, 3),
            sample(3000.0, 900, 0),
            sample(2000.0, 400, 1),
        ])
        .expect("three runs");
        assert_eq!(summary.runs, 3);
        assert!((summary.rate - 2000.0).abs() < 1e-9);
        // 50, 30 and 20 µs per request: the median is 30.
        assert!((summary.cpu_per_operation.expect("cpu") - 30.0).abs() < 1e-9);
        assert_eq!(summary.retransmits, Some(1));
        assert_eq!(summary.p99, Some(Duration::from_millis(5)));
        assert_eq!(summary.drops, None);
        assert_eq!(Summary::of(&[]), None);
    }
}
