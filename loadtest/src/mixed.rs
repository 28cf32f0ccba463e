//! The parts of the `mixed` scenario the library holds, so ringmail's tests can run it as
//! well as the harness: the seeded choices (`rng`), the figures (`stats`), the logged-in
//! connection, what the client threads of a run share (`Control`), the command plumbing
//! every client goes through (`Exchange`: timing, the history kept for reports, refusals,
//! faults), and the whole of the shared mode (`shared`), where many clients work on the same
//! mailboxes and each checks what it is told against a `view::SessionView`.
//!
//! Nothing here reads the command line; the harness's `mixed` subcommand turns its options
//! into these types. What a client checks its responses against (the exact model or a session
//! view) stays with its session: an `Exchange` only parses, times and counts.

pub mod rng;
pub mod shared;
pub mod stats;

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rustls::ClientConfig;

use crate::client::imap::{Imap, Response};
use crate::client::Transport;
use crate::report;
use crate::response::{parse_untagged, response_code, Code, Untagged};
use crate::threads::check_deadline;
use stats::{Cmd, Stats};

/// Where the clients connect, and how.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// Implicit TLS with this configuration, the certificate checked against the name.
    pub tls: Option<(Arc<ClientConfig>, String)>,
}

/// A logged-in connection, and the capabilities the server offers after login (from the
/// LOGIN reply's CAPABILITY code, or asked for).
pub fn connect(endpoint: &Endpoint, user: &str, password: &str) -> anyhow::Result<(Imap, Vec<String>)> {
    let addr = endpoint.addr;
    let t = match &endpoint.tls {
        Some((config, name)) => {
            Transport::connect_tls(addr, config.clone(), name).with_context(|| format!("TLS to {addr}"))?
        }
        None => Transport::connect(addr).with_context(|| format!("connecting to {addr}"))?,
    };
    let mut imap = Imap::new(t).context("IMAP greeting")?;
    let login = imap.login(user, password).context("LOGIN")?;
    if !login.ok() {
        bail!("LOGIN as {user} refused: {} {}", login.status, login.text);
    }
    let capabilities = match response_code(login.text.as_bytes()) {
        Ok(Some(Code::Capability(caps))) => caps,
        _ => {
            let reply = imap.cmd("CAPABILITY").context("CAPABILITY")?;
            reply
                .untagged
                .iter()
                .find_map(|line| match parse_untagged(line) {
                    Ok(Untagged::Capability(caps)) => Some(caps),
                    _ => None,
                })
                .unwrap_or_default()
        }
    };
    Ok((imap, capabilities))
}

/// Whether `capabilities` holds `name` (compared as IMAP does, ignoring case).
pub fn offers(capabilities: &[String], name: &str) -> bool {
    capabilities.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// Faults (inconsistencies, or violations in the shared mode) printed in full, with the
/// commands before them, across all clients.
const MAX_REPORTED: u64 = 5;

/// What the client threads of a run share to start, run and stop together, in either mode.
pub struct Control {
    /// How long the clock runs; `None` leaves the bound to `ops`.
    duration: Option<Duration>,
    /// Operations in all, across the clients.
    ops: Option<u64>,
    /// Operations claimed so far, against `ops`.
    claimed: AtomicU64,
    /// Faults printed so far (only the first `MAX_REPORTED` are).
    reported: AtomicU64,
    /// Set by a failing client so the others stop instead of running out the clock.
    abort: AtomicBool,
    /// The whole run fails past this.
    deadline: Instant,
    /// The clients and the thread that started them: the clock starts when every client is
    /// open.
    start: Barrier,
}

impl Control {
    /// For `clients` clients that run for `duration` or `ops` operations in all, the run
    /// failing `timeout` from now.
    pub fn new(clients: usize, duration: Option<Duration>, ops: Option<u64>, timeout: Duration) -> Control {
        Control {
            duration,
            ops,
            claimed: AtomicU64::new(0),
            reported: AtomicU64::new(0),
            abort: AtomicBool::new(false),
            deadline: Instant::now() + timeout,
            start: Barrier::new(clients + 1),
        }
    }

    /// The flag a failing client raises (see `threads::Clients`).
    pub fn abort(&self) -> &AtomicBool {
        &self.abort
    }

    /// A client's start: `open` runs, then the client waits for the others and the
    /// starting thread. It reaches the barrier whatever `open` returns, or the others would
    /// wait forever.
    pub fn open<T>(&self, open: impl FnOnce() -> T) -> T {
        let opened = open();
        self.start.wait();
        opened
    }

    /// The starting thread's side of `open`: returns once every client is open.
    pub fn clients_open(&self) {
        self.start.wait();
    }

    /// Runs `step` until the clock or `ops` runs out or another client failed; fails past
    /// the deadline, saying it was `doing` this. How long the client ran.
    pub fn run(&self, doing: &str, mut step: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let end = self.duration.map(|d| started + d);
        loop {
            if self.abort.load(Ordering::Relaxed) || end.is_some_and(|end| Instant::now() >= end) {
                break;
            }
            if let Some(limit) = self.ops {
                if self.claimed.fetch_add(1, Ordering::Relaxed) >= limit {
                    break;
                }
            }
            check_deadline(self.deadline, doing)?;
            step()?;
        }
        Ok(started.elapsed())
    }
}

/// A command's outcome, its untagged responses parsed.
pub struct Reply {
    pub untagged: Vec<Untagged>,
    pub ok: bool,
    /// The tagged reply's text after the status.
    pub text: String,
}

/// One client's connection and what it measures: every command goes out and comes back
/// through here, timed, remembered for a fault's report, parsed, and counted as refused if
/// it was. What the responses must agree with is the session's to check; it hands any fault
/// back to `fault`.
pub struct Exchange<'a> {
    pub imap: Imap,
    /// The client's number within the run.
    pub number: usize,
    pub user: String,
    pub stats: Stats,
    /// Off while logging in and learning the mailbox before the clock starts, and for the
    /// final check: nothing is timed then.
    pub recording: bool,
    history: History,
    /// The run's count of faults printed.
    reported: &'a AtomicU64,
}

impl<'a> Exchange<'a> {
    /// Client `number`, logged in as `user` on `imap`, of the run `control` controls; not
    /// recording yet.
    pub fn new(imap: Imap, number: usize, user: &str, control: &'a Control) -> Exchange<'a> {
        Exchange {
            imap,
            number,
            user: user.to_owned(),
            stats: Stats::new(),
            recording: false,
            history: History::default(),
            reported: &control.reported,
        }
    }

    /// Sends `command` and reads its responses, timed as `cmd`.
    pub fn send(&mut self, cmd: Cmd, command: &str) -> anyhow::Result<Reply> {
        let started = Instant::now();
        let response = self.imap.cmd(command).with_context(|| command.to_owned())?;
        self.received(Some(cmd), command, started, response)
    }

    /// Times (from `started`), remembers and parses the response to `command`, and counts a
    /// NO or BAD. `cmd` is `None` for the setup commands (ENABLE), neither timed nor
    /// counted.
    pub fn received(
        &mut self,
        cmd: Option<Cmd>,
        command: &str,
        started: Instant,
        response: Response,
    ) -> anyhow::Result<Reply> {
        if let Some(cmd) = cmd.filter(|_| self.recording) {
            report::record(&mut self.stats.latency[cmd as usize], started.elapsed());
        }
        self.history.record(command, &response);
        let untagged = response
            .untagged
            .iter()
            .map(|line| parse_untagged(line))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("the reply to {command}"))?;
        let ok = response.ok();
        if let Some(cmd) = cmd.filter(|_| !ok) {
            *self
                .stats
                .refused
                .entry(format!("{} to {}", response.status, cmd.name()))
                .or_default() += 1;
        }
        Ok(Reply {
            untagged,
            ok,
            text: response.text,
        })
    }

    /// Counts a fault of `kind`, and prints the first few of the run with the commands and
    /// responses before them.
    pub fn fault(&mut self, kind: &str, fault: &dyn fmt::Display) {
        *self.stats.inconsistencies.entry(kind.to_owned()).or_default() += 1;
        if self.reported.fetch_add(1, Ordering::Relaxed) < MAX_REPORTED {
            eprintln!(
                "client {} ({}): {fault}\n  the last commands and responses:\n{}",
                self.number,
                self.user,
                self.history.show("    ")
            );
        }
    }

    /// A new connection replaces this one: `connect` logs `user` in, timed as a login.
    pub fn reconnect(&mut self, connect: impl FnOnce(&str) -> anyhow::Result<Imap>) -> anyhow::Result<()> {
        let started = Instant::now();
        let imap = connect(&self.user)?;
        if self.recording {
            report::record(&mut self.stats.latency[Cmd::Login as usize], started.elapsed());
        }
        self.imap = imap;
        Ok(())
    }
}

/// Commands and responses remembered for a fault's report.
const HISTORY_LINES: usize = 40;

/// The last commands and responses of one client, shortened, for the report of what led to
/// a fault.
#[derive(Debug, Default)]
pub struct History(VecDeque<String>);

impl History {
    pub fn record(&mut self, command: &str, response: &Response) {
        let shorten = |s: &str| s.chars().take(200).collect::<String>();
        self.0.push_back(format!("C: {}", shorten(command)));
        for line in response.lines().iter().take(10) {
            self.0.push_back(format!("S: {}", shorten(line)));
        }
        if response.untagged.len() > 10 {
            self.0
                .push_back(format!("S: ... {} more untagged", response.untagged.len() - 10));
        }
        self.0
            .push_back(format!("S: {} {}", response.status, shorten(&response.text)));
        while self.0.len() > HISTORY_LINES {
            self.0.pop_front();
        }
    }

    /// The lines, oldest first, each on a line of its own after `indent`.
    pub fn show(&self, indent: &str) -> String {
        let lines: Vec<&str> = self.0.iter().map(String::as_str).collect();
        format!("{indent}{}", lines.join(&format!("\n{indent}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_last_lines_shortened() {
        let mut history = History::default();
        let response = Response {
            untagged: (0..12).map(|i| format!("* {i} EXISTS").into_bytes()).collect(),
            status: "OK".into(),
            text: "x".repeat(300),
        };
        history.record("NOOP", &response);
        let shown = history.show("  ");
        assert!(shown.starts_with("  C: NOOP\n  S: * 0 EXISTS\n"), "{shown}");
        assert!(shown.contains("  S: ... 2 more untagged\n"), "{shown}");
        assert!(shown.ends_with(&format!("S: OK {}", "x".repeat(200))), "{shown}");
        for _ in 0..10 {
            history.record("NOOP", &response);
        }
        assert_eq!(history.0.len(), HISTORY_LINES);
    }

    #[test]
    fn capabilities_are_offered_whatever_their_case() {
        assert!(offers(&["IMAP4rev1".into(), "uidplus".into()], "UIDPLUS"));
    }
}
