//! The runner thread: finds due entries, relays each, and records the outcome — recipients
//! delivered, to retry (with the next backoff), or failed (bounced) — in one write per attempt.
//! It never holds a read transaction across network I/O: a message's bytes are copied out
//! first.

use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::relay::{self, Attempt, Outcome, Relay};
use super::{ReportTo, Schedule, Wakeups, POLL};
use crate::config::Config;
use crate::smtp::command::Ret;
use crate::smtp::dsn::{DsnAction, ReportedRecipient};
use crate::store::{QueueEntry, QueueUpdate, QueuedRecipient, Store, StoreError, WriteOp};

pub struct RunnerSettings {
    pub hostname: String,
    pub relay: Option<Relay>,
    pub schedule: Schedule,
    /// Where a directory holds the accounts: recipients on other back ends go there.
    pub cluster: Option<std::sync::Arc<super::cluster::Routes>>,
}

impl RunnerSettings {
    pub fn from_config(config: &Config) -> RunnerSettings {
        let s = &config.submission;
        let relay = s.relay_host_port().map(|(host, port)| Relay {
            host: host.to_owned(),
            port,
            tls: s
                .relay_starttls
                .then(|| crate::tls::client_config(s.relay_ca.as_deref(), "[submission] relay_ca")),
            auth: s.relay_user.clone().zip(s.relay_password.clone()),
            helo: config.server.hostname.clone(),
        });
        RunnerSettings {
            hostname: config.server.hostname.clone(),
            relay,
            schedule: Schedule {
                base: s.retry_base,
                max: s.retry_max,
                lifetime: s.max_queue_lifetime,
            },
            cluster: None,
        }
    }
}

/// Starts the runner thread; a wake-up makes it look at the queue at once.
pub fn spawn(store: Store, settings: RunnerSettings, wakeups: Wakeups) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("ringmail-queue".into())
        .spawn(move || run(&store, &settings, &wakeups.0))?;
    Ok(())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn run(store: &Store, settings: &RunnerSettings, wake: &mpsc::Receiver<()>) {
    loop {
        let now = unix_now();
        let wait = match pass(store, settings, now) {
            Ok(Some(due)) => Duration::from_secs(u64::try_from(due - now).unwrap_or(0)).min(POLL),
            Ok(None) => POLL,
            Err(e) => {
                tracing::error!("queue: {e}");
                POLL
            }
        };
        if let Err(mpsc::RecvTimeoutError::Disconnected) = wake.recv_timeout(wait) {
            return;
        }
        // Several wake-ups while we were busy need only one more pass.
        while wake.try_recv().is_ok() {}
    }
}

/// Tries every due entry; returns when the earliest of the others is due.
fn pass(store: &Store, settings: &RunnerSettings, now: i64) -> Result<Option<i64>, StoreError> {
    let entries = store.snapshot()?.queue()?;
    let mut next = None::<i64>;
    for entry in entries {
        if entry.next_attempt > now {
            next = Some(next.map_or(entry.next_attempt, |n| n.min(entry.next_attempt)));
            continue;
        }
        attempt(store, settings, entry)?;
    }
    Ok(next)
}

fn attempt(store: &Store, settings: &RunnerSettings, entry: QueueEntry) -> Result<(), StoreError> {
    let message = store.snapshot()?.queue_message(entry.id)?;
    let attempt = deliver(settings, &entry, &message);
    let update = settle(settings, &entry, &message, attempt, unix_now());
    store.write_blocking(WriteOp::QueueAttempted { id: entry.id, update })?;
    Ok(())
}

/// One attempt for every recipient: those on other back ends of the cluster over LMTP to
/// theirs, the rest to the smarthost.
fn deliver(settings: &RunnerSettings, entry: &QueueEntry, message: &[u8]) -> Attempt {
    let n = entry.recipients.len();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    if let Some(routes) = &settings.cluster {
        let mut routed = Vec::new();
        for (i, r) in entry.recipients.iter().enumerate() {
            match routes.route_address(&r.address) {
                Ok(Some(addr)) => routed.push((i, addr)),
                Ok(None) => {}
                Err(e) => outcomes[i] = Some(Outcome::Temporary(format!("directory: {e}"))),
            }
        }
        for (addr, members) in crate::smtp::client::by_server(routed) {
            let recipients: Vec<&QueuedRecipient> = members.iter().map(|&i| &entry.recipients[i]).collect();
            let results = relay::deliver_lmtp(addr, &settings.hostname, entry, &recipients, message);
            for (i, outcome) in members.into_iter().zip(results) {
                outcomes[i] = Some(outcome);
            }
        }
    }
    let mut dsn_passed_on = false;
    let rest: Vec<QueuedRecipient> = (0..n)
        .filter(|&i| outcomes[i].is_none())
        .map(|i| entry.recipients[i].clone())
        .collect();
    if !rest.is_empty() {
        let results = match &settings.relay {
            Some(relay) => {
                let part = QueueEntry {
                    recipients: rest,
                    ..entry.clone()
                };
                let attempt = relay::deliver(relay, &part, message);
                dsn_passed_on = attempt.dsn_passed_on;
                attempt.outcomes
            }
            None => {
                let why = "no smarthost configured ([submission] relay)".to_owned();
                vec![Outcome::Temporary(why); rest.len()]
            }
        };
        let mut results = results.into_iter();
        for slot in outcomes.iter_mut().filter(|o| o.is_none()) {
            *slot = results.next();
        }
    }
    Attempt {
        outcomes: outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Temporary("not attempted".into())))
            .collect(),
        dsn_passed_on,
    }
}

/// Sorts the recipients by outcome: done, to retry, or failed — and reports the failures and
/// the successes that asked for a report.
fn settle(settings: &RunnerSettings, entry: &QueueEntry, message: &[u8], attempt: Attempt, now: i64) -> QueueUpdate {
    let expired = settings.schedule.expired(entry.created, now);
    let remote_mta = settings.relay.as_ref().map(|r| r.host.clone());
    let mut remaining = Vec::new();
    let mut reported = Vec::new();
    let mut last_error = None;
    for (r, outcome) in entry.recipients.iter().zip(attempt.outcomes) {
        let id = entry.id;
        let (action, status, diagnostic, mta) = match outcome {
            Outcome::Delivered => {
                tracing::info!(queue_id = id, to = r.address, "relayed");
                // RFC 3461 §5.2.2: a smarthost without DSN cannot report success, so we do.
                let wanted = r.params.notify.is_some_and(|n| n.success) && !attempt.dsn_passed_on;
                if !wanted {
                    continue;
                }
                (DsnAction::Relayed, "2.0.0".to_owned(), None, remote_mta.clone())
            }
            Outcome::Stored => {
                tracing::info!(queue_id = id, to = r.address, "delivered to its back end");
                if !r.params.notify.is_some_and(|n| n.success) {
                    continue;
                }
                (DsnAction::Delivered, "2.0.0".to_owned(), None, None)
            }
            Outcome::Temporary(why) if !expired => {
                tracing::info!(queue_id = id, to = r.address, "deferred: {why}");
                last_error = Some(why);
                remaining.push(r.clone());
                continue;
            }
            // RFC 3463 X.4.7: delivery time expired.
            Outcome::Temporary(why) => (
                DsnAction::Failed,
                "5.4.7".into(),
                Some(format!("delivery time expired: {why}")),
                None,
            ),
            Outcome::Permanent { status, reply } => (DsnAction::Failed, status, Some(reply), remote_mta.clone()),
        };
        if action == DsnAction::Failed {
            tracing::info!(
                queue_id = id,
                to = r.address,
                "bounced: {}",
                diagnostic.as_deref().unwrap_or("")
            );
            // RFC 3461 §4.1: NOTIFY without FAILURE (NEVER included) asks for no report.
            if r.params.notify.is_some_and(|n| !n.failure) {
                continue;
            }
        }
        reported.push(ReportedRecipient {
            address: r.address.clone(),
            action,
            orcpt: r.params.orcpt.clone(),
            status,
            diagnostic,
            remote_mta: mta,
        });
    }
    let failed = reported.iter().any(|r| r.action == DsnAction::Failed);
    let to = ReportTo {
        hostname: &settings.hostname,
        user: &entry.user,
        sender: &entry.from,
        envid: entry.params.envid.as_deref(),
        arrival: entry.created,
        // RFC 3461 §4.3: RET is about failures; a success report carries the header only.
        ret: if failed {
            entry.params.ret.unwrap_or(Ret::Full)
        } else {
            Ret::Headers
        },
    };
    QueueUpdate {
        remaining,
        next_attempt: settings.schedule.next_attempt(now, entry.attempts + 1),
        last_error,
        bounce: super::report(&to, &reported, message, now),
    }
}
