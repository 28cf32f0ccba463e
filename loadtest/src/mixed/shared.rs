//! The shared mode of `mixed`: many clients on the mailboxes of a few users at once, each
//! checking every untagged response it gets against a `view::SessionView` of what the server
//! has told it, and counting the violations by kind.
//!
//! Client `c` logs in as user `c % users`, and every client of a user works on that user's
//! INBOX and Archive together: STORE of system flags and of keywords (`$Label0` up to
//! `--keywords`, each new to the mailbox when first set), APPEND (sometimes with keywords,
//! sometimes to the other mailbox), STORE \Deleted then EXPUNGE or UID EXPUNGE, UID MOVE to
//! the other mailbox, FETCH by sequence number and by UID, SELECT of either mailbox (and a
//! `FETCH 1:*` to learn its UIDs), STATUS of the other one, NOOP, a short IDLE, and now and
//! then a new connection. A quarter of the clients turn CONDSTORE on with ENABLE, a quarter
//! with `SELECT (CONDSTORE)`, a quarter enable QRESYNC (expunges come as VANISHED), and the
//! rest use neither. Every `\Recent` any of them is shown goes into one `RecentClaims`.
//!
//! Nothing here can know what a mailbox holds, so what is checked is what must hold whatever
//! the others did (the list is in `view`); a tagged NO for a message another client expunged
//! is counted as a refusal, not a violation. APPEND goes to a mailbox only while the client
//! knows it to hold fewer than `max_messages`, so mailboxes stay bounded. A protocol or I/O
//! failure of any client ends the run with an error.

mod session;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use super::stats::Stats;
use super::{Control, Endpoint};
use crate::threads::{join_clients, spawn_clients, Clients};
use crate::view::{RecentClaims, Violation};
use session::Session;

/// The two mailboxes every user's clients share, and move messages between.
pub const MAILBOXES: [&str; 2] = ["INBOX", "Archive"];

/// How a shared run goes.
#[derive(Clone)]
pub struct Options {
    pub endpoint: Endpoint,
    /// The users whose mailboxes are shared; client `c` is `users[c % users.len()]`.
    pub users: Vec<String>,
    pub password: String,
    pub clients: usize,
    /// How long the clock runs; `None` leaves the bound to `ops`.
    pub duration: Option<Duration>,
    /// Operations in all, across the clients.
    pub ops: Option<u64>,
    /// The whole run fails past this.
    pub timeout: Duration,
    pub seed: u64,
    /// APPEND only while a mailbox is known to hold fewer messages than this.
    pub max_messages: usize,
    /// Keywords are `$Label0` to `$Label<keywords - 1>`.
    pub keywords: usize,
}

impl Options {
    pub fn check(&self) -> anyhow::Result<()> {
        if self.clients == 0 || self.users.is_empty() {
            bail!("a shared run needs at least one client and one user");
        }
        if self.max_messages == 0 || self.keywords == 0 {
            bail!("max_messages and keywords must be at least 1");
        }
        if self.duration.is_none() && self.ops.is_none() {
            bail!("a shared run needs a duration or a number of operations");
        }
        Ok(())
    }
}

/// What a shared run measured and found.
pub struct Outcome {
    /// Violations are in `stats.inconsistencies`, by `Violation::kind`.
    pub stats: Stats,
    /// Whether every client could use UIDPLUS (UID EXPUNGE, APPENDUID).
    pub uidplus: bool,
    /// Untagged responses checked across the clients, by what they were (see
    /// `SessionView::checked`).
    pub checked: BTreeMap<&'static str, u64>,
    /// Messages some session was shown `\Recent` (each must have been shown to one only).
    pub recent_claims: usize,
}

impl Outcome {
    /// Untagged responses checked, in all.
    pub fn responses_checked(&self) -> u64 {
        self.checked.get("responses").copied().unwrap_or(0)
    }

    pub fn violations(&self) -> u64 {
        self.stats.inconsistencies.values().sum()
    }

    /// Every kind of violation with its count, zeros included, in `Violation::KINDS` order.
    pub fn violations_by_kind(&self) -> Vec<(&'static str, u64)> {
        Violation::KINDS
            .iter()
            .map(|&kind| (kind, self.stats.inconsistencies.get(kind).copied().unwrap_or(0)))
            .collect()
    }
}

/// What the client threads share.
struct Run {
    options: Options,
    claims: Arc<RecentClaims>,
    /// Session numbers, one per connection, for the `\Recent` claims.
    sessions: AtomicU64,
    control: Control,
}

impl Clients for Run {
    fn abort(&self) -> &AtomicBool {
        self.control.abort()
    }
}

impl Run {
    fn next_session(&self) -> u64 {
        self.sessions.fetch_add(1, Ordering::Relaxed)
    }
}

/// Runs the clients; `on_start` is called when every client is logged in and has learnt
/// its first mailbox, as the clock starts.
pub fn run(options: &Options, on_start: impl FnOnce()) -> anyhow::Result<Outcome> {
    options.check()?;
    create_mailboxes(options)?;
    let run = Arc::new(Run {
        options: options.clone(),
        claims: Arc::new(RecentClaims::default()),
        sessions: AtomicU64::new(1),
        control: Control::new(options.clients, options.duration, options.ops, options.timeout),
    });
    let threads = spawn_clients(&run, options.clients, client);
    run.control.clients_open();
    on_start();
    let results = join_clients(threads)?;
    let mut outcome = Outcome {
        stats: Stats::new(),
        uidplus: true,
        checked: BTreeMap::new(),
        recent_claims: run.claims.len(),
    };
    for (stats, uidplus, checked) in results {
        outcome.stats.merge(&stats).context("merging histograms")?;
        outcome.uidplus &= uidplus;
        for (what, n) in checked {
            *outcome.checked.entry(what).or_default() += n;
        }
    }
    Ok(outcome)
}

/// Every mailbox of `MAILBOXES` exists for every user before the clients start: a server
/// without an Archive folder of its own (Dovecot's Maildir) would otherwise refuse each MOVE
/// to it, and answer STATUS for it with nonsense. "Already exists" is fine.
fn create_mailboxes(options: &Options) -> anyhow::Result<()> {
    for user in &options.users {
        let (mut imap, _) = crate::mixed::connect(&options.endpoint, user, &options.password)?;
        for mailbox in MAILBOXES.iter().filter(|m| **m != "INBOX") {
            imap.cmd(&format!("CREATE {mailbox}")).context("CREATE")?;
        }
        let _ = imap.cmd("LOGOUT");
    }
    Ok(())
}

/// One client's life: log in and learn INBOX, wait for the others, run operations until
/// the clock or `ops` runs out, check the mailbox once more, log out.
fn client(run: &Run, number: usize) -> anyhow::Result<(Stats, bool, BTreeMap<&'static str, u64>)> {
    let options = &run.options;
    let user = &options.users[number % options.users.len()];
    let opened = run.control.open(|| Session::open(run, number, user));
    let mut session = opened.with_context(|| format!("client {number} ({user}): opening"))?;
    let elapsed = run.control.run("running the shared mix", || {
        session.step().with_context(|| format!("client {number} ({user})"))
    })?;
    session
        .finish()
        .with_context(|| format!("client {number} ({user}): final check"))?;
    Ok(session.into_results(elapsed))
}
