//! CPU time of a process from /proc/PID/stat, so a run can say where the cycles went: in
//! the harness or in the server. Linux only; elsewhere the figures are simply absent.

use std::collections::BTreeMap;
use std::time::Duration;

/// /proc reports times in USER_HZ ticks, which the kernel fixes at 100 for user space.
const TICKS_PER_SEC: u64 = 100;

/// User and system CPU time consumed so far by process `pid` (`None`: this process).
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTime {
    pub fn of(pid: Option<u32>) -> Option<CpuTime> {
        let path = match pid {
            Some(pid) => format!("/proc/{pid}/stat"),
            None => "/proc/self/stat".to_owned(),
        };
        parse_stat(&std::fs::read_to_string(path).ok()?)
    }

    /// Process `pid`'s, if there is one.
    pub fn of_pid(pid: Option<u32>) -> Option<CpuTime> {
        CpuTime::of(Some(pid?))
    }

    /// Time spent between `earlier` and `self`, user + system.
    pub fn since(&self, earlier: &CpuTime) -> Duration {
        (self.user + self.system).saturating_sub(earlier.user + earlier.system)
    }
}

/// CPU time per thread name of process `pid` (threads with the same name summed), so a run
/// can tell the event loops from the store writer and the blocking pool.
pub fn by_thread(pid: u32) -> BTreeMap<String, CpuTime> {
    let mut out: BTreeMap<String, CpuTime> = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(name), Some(cpu)) = (thread_name(&stat), parse_stat(&stat)) else {
            continue;
        };
        let entry = out.entry(name).or_default();
        entry.user += cpu.user;
        entry.system += cpu.system;
    }
    out
}

/// Per-thread-name CPU used between two `by_thread` readings, as % of one core over `wall`,
/// busiest first.
pub fn thread_percentages(
    before: &BTreeMap<String, CpuTime>,
    after: &BTreeMap<String, CpuTime>,
    wall: Duration,
) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = after
        .iter()
        .map(|(name, cpu)| {
            let earlier = before.get(name).copied().unwrap_or_default();
            (name.clone(), percent_of_core(cpu.since(&earlier), wall))
        })
        .filter(|(_, pct)| *pct >= 0.5)
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// The command name between the first '(' and the last ')'.
fn thread_name(stat: &str) -> Option<String> {
    Some(stat[stat.find('(')? + 1..stat.rfind(')')?].to_owned())
}

/// Fields 14 and 15 (utime, stime) come after the command name, which is in parentheses
/// and may itself contain spaces and parentheses: split after the last ')'.
fn parse_stat(stat: &str) -> Option<CpuTime> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let ticks = |s: Option<&str>| -> Option<Duration> {
        let t: u64 = s?.parse().ok()?;
        Some(Duration::from_millis(t * 1000 / TICKS_PER_SEC))
    };
    let user = ticks(fields.next())?;
    let system = ticks(fields.next())?;
    Some(CpuTime { user, system })
}

/// CPU time over wall time as a percentage of one core, for the report.
pub fn percent_of_core(cpu: Duration, wall: Duration) -> f64 {
    if wall.is_zero() {
        0.0
    } else {
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_an_awkward_name() {
        let stat = "1234 (ring mail) x) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 3 0";
        let cpu = parse_stat(stat).expect("parses");
        assert_eq!(cpu.user, Duration::from_millis(2500));
        assert_eq!(cpu.system, Duration::from_millis(750));
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        assert!(CpuTime::of(None).is_some());
        let threads = by_thread(std::process::id());
        assert!(!threads.is_empty());
    }

    #[test]
    fn thread_shares_are_sorted_and_small_ones_dropped() {
        let at = |ms| CpuTime {
            user: Duration::from_millis(ms),
            system: Duration::ZERO,
        };
        let before = BTreeMap::from([("a".to_owned(), at(0)), ("b".to_owned(), at(0))]);
        let after = BTreeMap::from([
            ("a".to_owned(), at(100)),
            ("b".to_owned(), at(500)),
            ("c".to_owned(), at(1)),
        ]);
        let shares = thread_percentages(&before, &after, Duration::from_secs(1));
        assert_eq!(shares, vec![("b".to_owned(), 50.0), ("a".to_owned(), 10.0)]);
    }
}
