//! The descriptor limit (RLIMIT_NOFILE) and the connections it leaves room for.
//!
//! Every connection holds a descriptor (a front end's holds two: client and back end). When
//! the protocols' limits add up to more than the process may open, the first protocol to
//! fill up would take the descriptors of all the others, and `accept` would fail for every
//! listener at once. So the limits share one budget that fits (`auth::limits::Descriptors`).

use std::time::{Duration, Instant};

/// Descriptors kept out of the budget: the store, logs, listeners, io_uring rings, outgoing
/// connections (the queue's, a front end's LMTP), and the accepts of clients being refused.
const RESERVED: u64 = 256;

/// Raises the soft descriptor limit to the hard one and returns how many connections fit,
/// at `per_connection` descriptors each. Warns when the configured `limits` (per protocol)
/// add up to more than that.
pub fn connection_budget(per_connection: u64, limits: &[(&str, u32)]) -> u32 {
    let descriptors = raise_limit();
    let budget = u32::try_from(descriptors.saturating_sub(RESERVED) / per_connection.max(1)).unwrap_or(u32::MAX);
    let configured: u64 = limits.iter().map(|(_, n)| u64::from(*n)).sum();
    if configured > u64::from(budget) {
        let each: Vec<String> = limits.iter().map(|(name, n)| format!("{name} {n}")).collect();
        tracing::warn!(
            "the connection limits add up to {configured} ({}), but the descriptor limit \
             ({descriptors}) leaves room for {budget}: connections past {budget} in all are \
             refused as too many; raise RLIMIT_NOFILE (LimitNOFILE=) or lower max_connections",
            each.join(", ")
        );
    }
    budget
}

/// The soft limit, raised to the hard one where it was lower.
fn raise_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit from a struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    limit.rlim_cur
}

/// What an accept loop does when `accept` fails (EMFILE, ENFILE, ENOBUFS): wait a little so
/// it does not spin, and log at most once per `QUIET` with the count of failures since.
#[derive(Default)]
pub struct AcceptFailures {
    logged: Option<Instant>,
    unlogged: u64,
}

const QUIET: Duration = Duration::from_secs(10);

impl AcceptFailures {
    pub async fn failed(&mut self, error: std::io::Error) {
        self.unlogged += 1;
        if self.logged.is_none_or(|at| at.elapsed() >= QUIET) {
            tracing::warn!("accept: {error} ({} failures since the last report)", self.unlogged);
            self.logged = Some(Instant::now());
            self.unlogged = 0;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
