//! Whole-box CPU accounting: the time every core of this machine spent
//! busy (user, nice, system, irq, softirq, steal) between two reads of
//! `/proc/stat`. Everything a run costs counts: the client, the proxies,
//! the backends, the daemons, softirq work of the data plane, and also
//! whatever else the machine runs (hence the load average printed with
//! each table).

use std::time::Duration;

/// The unit of `/proc/stat`: `USER_HZ`, 100 per second in Linux's ABI on
/// every architecture this runs on (whatever the kernel's `HZ`).
const USER_HZ: u64 = 100;

/// The busy time of the whole machine so far, in `USER_HZ` ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    busy: u64,
}

impl CpuTimes {
    /// Reads `/proc/stat` now.
    pub fn now() -> Option<Self> {
        parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// The busy time between `earlier` and this read, over all cores.
    pub fn busy_since(self, earlier: Self) -> Duration {
        let ticks = self.busy.saturating_sub(earlier.busy);
        Duration::from_millis(ticks * 1000 / USER_HZ)
    }
}

/// The `cpu` line of `/proc/stat`: user nice system idle iowait irq
/// softirq steal guest `guest_nice`; guest time is already in user.
fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let at = |i: usize| ticks.get(i).copied();
    let busy = [0, 1, 2, 5, 6, 7]
        .into_iter()
        .map(at)
        .sum::<Option<u64>>()?;
    Some(CpuTimes { busy })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{CpuTimes, parse_proc_stat};

    #[test]
    fn busy_time_leaves_idle_iowait_and_guests_out() {
        let before = "cpu  100 5 50 9000 40 3 7 1 20 0
cpu0 50 2 25 4500 20 1 3 1 10 0
intr 12345
";
        let after = "cpu  400 5 150 9100 90 3 17 1 60 0
";
        let (before, after) = (
            parse_proc_stat(before).expect("parses"),
            parse_proc_stat(after).expect("parses"),
        );
        assert_eq!(before, CpuTimes { busy: 166 });
        // (300 user + 100 system + 10 softirq) ticks of 10 ms.
        assert_eq!(after.busy_since(before), Duration::from_millis(4100));
        assert_eq!(before.busy_since(after), Duration::ZERO);
    }

    #[test]
    fn a_short_or_garbled_cpu_line_is_refused() {
        assert_eq!(parse_proc_stat("cpu  1 2 3\n"), None);
        assert_eq!(parse_proc_stat("cpu  1 x 3 4 5 6 7 8\n"), None);
        assert_eq!(parse_proc_stat("intr 1\n"), None);
    }
}
