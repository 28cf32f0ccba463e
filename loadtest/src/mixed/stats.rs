//! What a `mixed` client measures and counts, in either mode: a latency histogram per
//! command, operations, refusals, and inconsistencies (or, in the shared mode, violations) by
//! kind. Clients merge theirs at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::report;

/// The commands timed, each with a histogram of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    Select,
    UidFetch,
    Fetch,
    UidStore,
    UidSearch,
    Append,
    Expunge,
    UidExpunge,
    Noop,
    Logout,
    Login,
    /// `FETCH 1:* (UID FLAGS)` when learning the mailbox again after a fault.
    Sync,
    /// STORE by sequence number (the shared mode).
    Store,
    UidMove,
    Status,
    /// IDLE up to DONE's completion, the wait included.
    Idle,
}

impl Cmd {
    pub const ALL: [Cmd; 16] = [
        Cmd::Select,
        Cmd::UidFetch,
        Cmd::Fetch,
        Cmd::UidStore,
        Cmd::UidSearch,
        Cmd::Append,
        Cmd::Expunge,
        Cmd::UidExpunge,
        Cmd::Noop,
        Cmd::Logout,
        Cmd::Login,
        Cmd::Sync,
        Cmd::Store,
        Cmd::UidMove,
        Cmd::Status,
        Cmd::Idle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cmd::Select => "SELECT",
            Cmd::UidFetch => "UID FETCH",
            Cmd::Fetch => "FETCH",
            Cmd::UidStore => "UID STORE",
            Cmd::UidSearch => "UID SEARCH",
            Cmd::Append => "APPEND",
            Cmd::Expunge => "EXPUNGE",
            Cmd::UidExpunge => "UID EXPUNGE",
            Cmd::Noop => "NOOP",
            Cmd::Logout => "LOGOUT",
            Cmd::Login => "connect + LOGIN",
            Cmd::Sync => "FETCH 1:* (resync)",
            Cmd::Store => "STORE",
            Cmd::UidMove => "UID MOVE",
            Cmd::Status => "STATUS",
            Cmd::Idle => "IDLE",
        }
    }
}

/// What a client measured and counted.
pub struct Stats {
    pub latency: Vec<Histogram<u64>>,
    pub ops: u64,
    pub refused: BTreeMap<String, u64>,
    pub inconsistencies: BTreeMap<String, u64>,
    /// From the start of the clock to the last operation (the longest, once merged).
    pub elapsed: Duration,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats::new()
    }
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            latency: Cmd::ALL.iter().map(|_| report::latency_histogram()).collect(),
            ops: 0,
            refused: BTreeMap::new(),
            inconsistencies: BTreeMap::new(),
            elapsed: Duration::ZERO,
        }
    }

    pub fn merge(&mut self, other: &Stats) -> anyhow::Result<()> {
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            mine.add(theirs)?;
        }
        self.ops += other.ops;
        for (kind, n) in &other.refused {
            *self.refused.entry(kind.clone()).or_default() += n;
        }
        for (kind, n) in &other.inconsistencies {
            *self.inconsistencies.entry(kind.clone()).or_default() += n;
        }
        self.elapsed = self.elapsed.max(other.elapsed);
        Ok(())
    }

    /// Every command's latencies in one histogram.
    pub fn all_commands(&self) -> Histogram<u64> {
        let mut all = report::latency_histogram();
        for h in &self.latency {
            // Same bounds on both sides, so adding cannot fail.
            let _ = all.add(h);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_have_one_histogram_each() {
        let stats = Stats::new();
        assert_eq!(stats.latency.len(), Cmd::ALL.len());
        for (i, cmd) in Cmd::ALL.iter().enumerate() {
            assert_eq!(*cmd as usize, i, "{}", cmd.name());
        }
    }
}
