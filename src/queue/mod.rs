//! The outbound queue's runner: a dedicated std thread that relays queued messages to the
//! smarthost with blocking I/O (so nothing blocks a core loop), retries with exponential
//! backoff, and bounces (RFC 3464) into the submitter's INBOX on permanent failure or when
//! a message has waited `max_queue_lifetime`.
//!
//! The queue itself lives in the store (`store::queue`), so it survives restarts: on start,
//! every due entry is tried. The runner polls the queue every few seconds (so `ringmail queue
//! flush` from another process is noticed) and is woken at once after a submission.

#![forbid(unsafe_code)]

pub mod cluster;
pub mod relay;
mod runner;

use std::sync::{mpsc, Arc};

pub use runner::{spawn, RunnerSettings};

use crate::mime;
use crate::smtp::command::Ret;
use crate::smtp::dsn::{self, ReportedRecipient};
use crate::store::Bounce;

/// How often the runner looks at the queue when nobody wakes it.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Retries and the lifetime of a queued message, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub base: u64,
    pub max: u64,
    pub lifetime: u64,
}

impl Schedule {
    /// When to try again after the `attempts`-th failed attempt (1 for the first):
    /// base, 2·base, 4·base, … up to max.
    pub fn next_attempt(&self, now: i64, attempts: u32) -> i64 {
        let factor = 1u64 << attempts.saturating_sub(1).min(30);
        let wait = self.base.saturating_mul(factor).min(self.max);
        now.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX))
    }

    pub fn expired(&self, created: i64, now: i64) -> bool {
        now.saturating_sub(created) >= i64::try_from(self.lifetime).unwrap_or(i64::MAX)
    }
}

/// Wakes the runner (after a submission queued something).
#[derive(Clone)]
pub struct Waker(mpsc::Sender<()>);

/// The runner's end of the wake-ups.
pub struct Wakeups(pub(crate) mpsc::Receiver<()>);

/// The wake-up channel, made before the runner starts so sessions can hold the waker.
pub fn waker() -> (Waker, Wakeups) {
    let (tx, rx) = mpsc::channel();
    (Waker(tx), Wakeups(rx))
}

impl Waker {
    pub fn wake(&self) {
        let _ = self.0.send(());
    }
}

/// Who a delivery status report goes to, and about which message.
pub struct ReportTo<'a> {
    pub hostname: &'a str,
    /// The submitter, whose INBOX gets the report.
    pub user: &'a str,
    /// The envelope sender.
    pub sender: &'a str,
    pub envid: Option<&'a str>,
    pub arrival: i64,
    pub ret: Ret,
}

/// An RFC 3464 report, parsed and ready to deliver; None when there is nothing to report.
pub fn report(to: &ReportTo<'_>, recipients: &[ReportedRecipient], original: &[u8], now: i64) -> Option<Bounce> {
    if recipients.is_empty() || to.user.is_empty() {
        return None;
    }
    let unique = format!("{now:x}.{:08x}", rand::random::<u32>());
    let bytes = dsn::report(&dsn::Report {
        hostname: to.hostname,
        now,
        unique: &unique,
        to: to.sender,
        envid: to.envid,
        arrival: to.arrival,
        recipients,
        original,
        ret: to.ret,
    });
    match mime::ingest(bytes) {
        Ok((message, structure)) => Some(Bounce {
            user: to.user.to_owned(),
            message,
            structure: Arc::new(structure),
        }),
        Err(e) => {
            tracing::error!("delivery status report not built: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_ceiling() {
        let s = Schedule {
            base: 60,
            max: 600,
            lifetime: 1000,
        };
        let waits: Vec<i64> = (1..=6).map(|n| s.next_attempt(0, n)).collect();
        assert_eq!(waits, [60, 120, 240, 480, 600, 600]);
        assert_eq!(s.next_attempt(0, u32::MAX), 600);
        assert!(!s.expired(0, 999) && s.expired(0, 1000));
    }
}
