//! `mixed`: an imaptest-like random mix of IMAP commands against any server, checking that
//! UIDs, flags and EXISTS counts stay consistent, and measuring ops/s and the latency of
//! each command.
//!
//! Each client is a thread with one connection, logged in as a user of its own (client `c`
//! is user `c`), so no other session changes its INBOX and the model of it (the library's
//! `model`) is exact. A client SELECTs INBOX, learns it with `FETCH 1:* (UID FLAGS)` (the
//! mailbox may hold `loadtest seed`'s messages), waits for the others, then picks operations
//! by weight with a seeded RNG: re-SELECT, UID FETCH of flags, FETCH of UID, flags and
//! ENVELOPE, UID STORE, UID SEARCH, APPEND, STORE \Deleted + (UID) EXPUNGE, NOOP, and LOGOUT
//! with a new login. Every response is checked against the model (`session`). After the
//! clock stops, each client re-SELECTs and fetches its whole mailbox once more as a final
//! check. The mailbox is kept bounded: APPEND only while it holds fewer than
//! `--max-messages`.
//!
//! A refused command (NO/BAD) and each inconsistency are counted by kind; the client then
//! re-learns its mailbox so one fault is counted once. The run prints the report and fails
//! if any inconsistency was found. A protocol or I/O failure of any client ends the run.
//!
//! With `--shared N` the clients instead share the INBOX and Archive of N users, and check
//! every response against what their session was told rather than against an exact model
//! (the library's `mixed::shared` and `view`): keywords announced before use, `\Recent` in
//! one session only, EXISTS/EXPUNGE/VANISHED and sequence numbers consistent, MODSEQ and
//! HIGHESTMODSEQ never going back, UIDNEXT above every UID seen. The violations are counted
//! by kind, every kind printed, and the run fails if there is one.

mod pick;
mod session;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use super::{join_clients, spawn_clients, user_name, Clients};
use crate::cpu::{percent_of_core, CpuTime};
use crate::Common;
use loadtest::client::tls_config;
use loadtest::mixed::shared::{self, Outcome};
use loadtest::mixed::stats::{Cmd, Stats};
use loadtest::mixed::{Control, Endpoint};
use loadtest::report::{Bar, Better, Headline, LatencyCurve, LatencySummary, Summary};
use session::Session;

#[derive(Args, Debug, Clone)]
pub struct MixedArgs {
    #[command(flatten)]
    common: Common,
    /// Plaintext IMAP port; the server must allow LOGIN without TLS there (ringmail:
    /// `login_type = "plain-text-login"` under [imap]).
    #[arg(long, default_value_t = 143)]
    imap_port: u16,
    /// Connect over implicit TLS to --imaps-port instead, trusting --cafile.
    #[arg(long)]
    tls: bool,
    #[arg(long, default_value_t = 993)]
    imaps_port: u16,
    /// The server's certificate (ringmail: data_dir/cert.pem), the only one trusted.
    #[arg(long)]
    cafile: Option<PathBuf>,
    /// Name the certificate is checked against.
    #[arg(long, default_value = "localhost")]
    tls_name: String,
    /// Login name pattern; `%d` becomes the client's number.
    #[arg(long, default_value = "user%d")]
    users: String,
    /// Users to spread the clients over (client c is user c % user-count); at least
    /// --clients, since clients sharing a mailbox would see each other's changes, which the
    /// model cannot tell from the server's mistakes. Default: one per client.
    #[arg(long, conflicts_with = "shared")]
    user_count: Option<u64>,
    /// Share the mailboxes (INBOX and Archive) of this many users among all the clients
    /// (client c is user c % N), checking each session's responses against what it was told
    /// instead of against an exact model.
    #[arg(long)]
    shared: Option<u64>,
    /// With --shared: STORE and APPEND use keywords $Label0 up to this many.
    #[arg(long, default_value_t = 200)]
    keywords: usize,
    /// Every user's password.
    #[arg(long)]
    password: String,
    /// Concurrent clients, each a connection of its own.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seconds to run (default 20, or unlimited with --ops).
    #[arg(long)]
    duration: Option<u64>,
    /// Operations in all, across the clients.
    #[arg(long)]
    ops: Option<u64>,
    /// Seed of the random choices; the same seed gives each client the same choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// APPEND only while a mailbox holds fewer messages than this.
    #[arg(long, default_value_t = 200)]
    max_messages: usize,
    /// Act as if the server did not offer UIDPLUS: appended messages' UIDs are learnt by
    /// FETCH, and only EXPUNGE (not UID EXPUNGE) is used. Not with --shared, which uses
    /// UIDPLUS wherever the server offers it.
    #[arg(long, conflicts_with = "shared")]
    no_uidplus: bool,
    /// Never LOG OUT and log in again during the run (2 % of the mix otherwise): each login
    /// costs an argon2 verification, which on a small machine takes most of the CPU and so
    /// hides the cost of everything else. Not with --shared.
    #[arg(long, conflicts_with = "shared")]
    no_reconnect: bool,
    /// The server's process id, to report its CPU time over the run.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Connect through the harness's own relay (`loadtest::relay`: blocking threads that read
    /// and write), the reference a front end's relay is measured against.
    #[arg(long)]
    via_relay: bool,
}

impl MixedArgs {
    fn user_count(&self) -> u64 {
        self.shared.or(self.user_count).unwrap_or(self.clients as u64)
    }

    /// How long to run: `--duration`, or 20 s unless `--ops` bounds the run instead.
    fn duration(&self) -> Option<Duration> {
        match (self.duration, self.ops) {
            (Some(secs), _) => Some(Duration::from_secs(secs)),
            (None, None) => Some(Duration::from_secs(20)),
            (None, Some(_)) => None,
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        self.common.check()?;
        if self.clients == 0 {
            bail!("--clients must be at least 1");
        }
        if self.shared == Some(0) {
            bail!("--shared must be at least 1");
        }
        if self.shared.is_some() && self.no_uidplus {
            // `stress` turns --shared on after parsing, past clap's conflicts_with.
            bail!("--no-uidplus does not apply to shared mailboxes");
        }
        if self.shared.is_none() && self.user_count() < self.clients as u64 {
            bail!(
                "--user-count {} is below --clients {}: clients would share mailboxes, and the \
                 consistency model needs each to have its own",
                self.user_count(),
                self.clients
            );
        }
        if self.tls && self.cafile.is_none() {
            bail!("--tls needs --cafile (the server's certificate)");
        }
        // With --shared, `shared::Options::check` holds --max-messages and --keywords.
        if self.shared.is_none() && self.max_messages == 0 {
            bail!("--max-messages must be at least 1");
        }
        Ok(())
    }
}

/// What every client thread shares.
pub(super) struct Shared {
    args: MixedArgs,
    endpoint: Endpoint,
    /// Starts the clients together and stops them by `--duration`, `--ops` and `--timeout`.
    control: Control,
}

impl Clients for Shared {
    fn abort(&self) -> &AtomicBool {
        self.control.abort()
    }
}

#[derive(Debug, Serialize)]
struct CommandLatency {
    command: &'static str,
    latency: LatencySummary,
}

#[derive(Debug, Serialize)]
struct MixedReport {
    tls: bool,
    clients: usize,
    users: u64,
    /// Whether the users' mailboxes were shared among the clients (`--shared`).
    shared: bool,
    seed: u64,
    /// Whether APPENDUID and UID EXPUNGE were used (the server offers UIDPLUS).
    uidplus: bool,
    /// Whether clients logged out and in again during the run (not with --no-reconnect).
    reconnect: bool,
    /// Whether the clients went through the harness's relay (`--via-relay`).
    via_relay: bool,
    seconds: f64,
    ops: u64,
    ops_per_sec: f64,
    commands: u64,
    /// Per command, then "all".
    latency: Vec<CommandLatency>,
    /// NO or BAD where OK was expected, by "NO to APPEND" and so on.
    refused: BTreeMap<String, u64>,
    inconsistencies: BTreeMap<String, u64>,
    /// With --shared: untagged responses checked by what they were ("responses": all), and
    /// the messages some session was shown \Recent.
    checked: Option<BTreeMap<&'static str, u64>>,
    recent_claims: Option<usize>,
    /// Server CPU over the run, % of one core (with --server-pid).
    server_cpu_percent: Option<f64>,
}

/// `loadtest stress`: the shared mode, on 2 users unless `--shared` says otherwise.
pub fn stress(mut args: MixedArgs) -> anyhow::Result<()> {
    args.shared = Some(args.shared.unwrap_or(2));
    run(&args)
}

pub fn run(args: &MixedArgs) -> anyhow::Result<()> {
    args.check()?;
    let tls_config = match (&args.cafile, args.tls) {
        (Some(cafile), true) => Some(tls_config(cafile).with_context(|| format!("reading {}", cafile.display()))?),
        _ => None,
    };
    let port = if args.tls { args.imaps_port } else { args.imap_port };
    let mut addr = SocketAddr::new(args.common.host, port);
    if args.via_relay {
        addr = loadtest::relay::start(addr).context("starting the relay")?;
    }
    let endpoint = Endpoint {
        addr,
        tls: tls_config.map(|config| (config, args.tls_name.clone())),
    };
    // The server's CPU time and the clock, taken when the clients start.
    let mut clock = None;
    let start = || clock = Some((args.server_pid.and_then(|pid| CpuTime::of(Some(pid))), Instant::now()));
    // Whichever mode runs keeps its results here, and `total` borrows its figures.
    let (own_results, shared_outcome);
    let (total, uidplus, outcome): (&Stats, bool, Option<&Outcome>) = match args.shared {
        Some(users) => {
            shared_outcome = shared::run(&shared_options(args, endpoint, users), start)?;
            (&shared_outcome.stats, shared_outcome.uidplus, Some(&shared_outcome))
        }
        None => {
            own_results = run_own_mailboxes(args, endpoint, start)?;
            (&own_results.0, own_results.1, None)
        }
    };
    let server_cpu_percent = match (args.server_pid, clock) {
        (Some(pid), Some((Some(before), started))) => {
            CpuTime::of(Some(pid)).map(|now| percent_of_core(now.since(&before), started.elapsed()))
        }
        _ => None,
    };
    let report = make_report(args, total, uidplus, server_cpu_percent, outcome);
    print_report(args, &report, outcome);
    let inconsistencies: u64 = report.inconsistencies.values().sum();
    // The shared mode is its own scenario in a comparison (`loadtest stress`).
    let scenario = if args.shared.is_some() { "stress" } else { "mixed" };
    args.common
        .write_report(scenario, summary(&report, total, inconsistencies), &report)?;
    if inconsistencies > 0 {
        let what = if args.shared.is_some() {
            "violations"
        } else {
            "inconsistencies"
        };
        bail!("{inconsistencies} {what} (the first are shown above)");
    }
    Ok(())
}

/// The shared mode's options from the command line: users 0 to `users - 1` of `--users`.
fn shared_options(args: &MixedArgs, endpoint: Endpoint, users: u64) -> shared::Options {
    shared::Options {
        endpoint,
        users: (0..users).map(|n| user_name(&args.users, n)).collect(),
        password: args.password.clone(),
        clients: args.clients,
        duration: args.duration(),
        ops: args.ops,
        timeout: args.common.timeout(),
        seed: args.seed,
        max_messages: args.max_messages,
        keywords: args.keywords,
    }
}

/// Each client on a mailbox of its own, checked against an exact model; `start` is called
/// as the clock starts. The merged figures, and whether UIDPLUS was used.
fn run_own_mailboxes(args: &MixedArgs, endpoint: Endpoint, start: impl FnOnce()) -> anyhow::Result<(Stats, bool)> {
    let shared = Arc::new(Shared {
        args: args.clone(),
        endpoint,
        control: Control::new(args.clients, args.duration(), args.ops, args.common.timeout()),
    });
    let threads = spawn_clients(&shared, args.clients, client);
    // The clock starts when every mailbox is learnt.
    shared.control.clients_open();
    start();
    let results = join_clients(threads)?;
    let mut total = Stats::new();
    let mut uidplus = true;
    for (stats, client_uidplus) in results {
        total.merge(&stats).context("merging histograms")?;
        uidplus &= client_uidplus;
    }
    Ok((total, uidplus))
}

/// One client's life: log in and learn the mailbox, wait for the others, run operations
/// until the clock or `--ops` runs out, check the mailbox once more, log out.
fn client(shared: &Shared, number: usize) -> anyhow::Result<(Stats, bool)> {
    let args = &shared.args;
    let user = user_name(&args.users, number as u64 % args.user_count());
    let mut session = shared.control.open(|| Session::open(shared, number, &user))?;
    let elapsed = shared.control.run("running the mix", || {
        session.step().with_context(|| format!("client {number} ({user})"))
    })?;
    session
        .finish()
        .with_context(|| format!("client {number} ({user}): final check"))?;
    let uidplus = session.uidplus();
    let mut stats = session.into_stats();
    stats.elapsed = elapsed;
    Ok((stats, uidplus))
}

fn make_report(
    args: &MixedArgs,
    total: &Stats,
    uidplus: bool,
    server_cpu_percent: Option<f64>,
    shared: Option<&Outcome>,
) -> MixedReport {
    let mut latency: Vec<CommandLatency> = Cmd::ALL
        .iter()
        .filter(|cmd| !total.latency[**cmd as usize].is_empty())
        .map(|cmd| CommandLatency {
            command: cmd.name(),
            latency: LatencySummary::from_histogram(&total.latency[*cmd as usize]),
        })
        .collect();
    let all = total.all_commands();
    latency.push(CommandLatency {
        command: "all",
        latency: LatencySummary::from_histogram(&all),
    });
    let seconds = total.elapsed.as_secs_f64();
    MixedReport {
        tls: args.tls,
        clients: args.clients,
        users: args.user_count(),
        shared: shared.is_some(),
        seed: args.seed,
        uidplus,
        reconnect: !args.no_reconnect,
        via_relay: args.via_relay,
        seconds,
        ops: total.ops,
        ops_per_sec: total.ops as f64 / seconds.max(1e-9),
        commands: all.len(),
        latency,
        refused: total.refused.clone(),
        inconsistencies: total.inconsistencies.clone(),
        checked: shared.map(|o| o.checked.clone()),
        recent_claims: shared.map(|o| o.recent_claims),
        server_cpu_percent,
    }
}

fn print_report(args: &MixedArgs, report: &MixedReport, shared: Option<&Outcome>) {
    println!(
        "IMAP mixed ({}, port {}{}): {} clients, {} users{}, seed {}, UIDPLUS {}, {:.2} s",
        if report.tls { "implicit TLS" } else { "plaintext" },
        if report.tls { args.imaps_port } else { args.imap_port },
        if report.via_relay {
            " through the harness's relay"
        } else {
            ""
        },
        report.clients,
        report.users,
        if report.shared { " sharing their mailboxes" } else { "" },
        report.seed,
        if report.uidplus { "used" } else { "not used" },
        report.seconds
    );
    println!(
        "{} ops, {:.0} ops/s ({} commands)",
        report.ops, report.ops_per_sec, report.commands
    );
    for c in &report.latency {
        println!("  {:<18} {:>8}  {}", c.command, c.latency.count, c.latency.line());
    }
    println!("refused (NO/BAD): {}", counts(&report.refused));
    match shared {
        Some(outcome) => {
            println!(
                "violations: {} in {} untagged responses checked; {} messages shown \\Recent",
                counts(&report.inconsistencies),
                outcome.responses_checked(),
                outcome.recent_claims
            );
            let checked: Vec<String> = outcome
                .checked
                .iter()
                .filter(|(what, _)| **what != "responses")
                .map(|(what, n)| format!("{what} {n}"))
                .collect();
            println!("checked: {}", checked.join(", "));
            for (kind, n) in outcome.violations_by_kind() {
                println!("  {kind:<40} {n:>6}");
            }
        }
        None => println!("inconsistencies: {}", counts(&report.inconsistencies)),
    }
    if let Some(cpu) = report.server_cpu_percent {
        println!("server cpu: {cpu:.0} % of one core");
    }
}

/// `none`, or `3 (flags differ 2, wrong EXISTS 1)`.
fn counts(by_kind: &BTreeMap<String, u64>) -> String {
    let total: u64 = by_kind.values().sum();
    if total == 0 {
        return "none".into();
    }
    let kinds: Vec<String> = by_kind.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
    format!("{total} ({})", kinds.join(", "))
}

fn summary(report: &MixedReport, total: &Stats, inconsistencies: u64) -> Summary {
    let all = report.latency.last().map_or(0, |c| c.latency.p99_us);
    Summary {
        headlines: vec![
            Headline::new("ops/s", report.ops_per_sec, "ops/s", Better::Higher),
            Headline::new("p99 (all commands)", all as f64 / 1e3, "ms", Better::Lower),
            Headline::new("consistency errors", inconsistencies as f64, "errors", Better::Lower),
        ],
        latency: Cmd::ALL
            .iter()
            .filter(|cmd| !total.latency[**cmd as usize].is_empty())
            .map(|cmd| LatencyCurve::from_histogram(cmd.name(), &total.latency[*cmd as usize]))
            .collect(),
        throughput: vec![Bar {
            name: "mixed".into(),
            value: report.ops_per_sec,
            unit: "ops/s".into(),
        }],
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MixedArgs,
    }

    fn parse(extra: &[&str]) -> MixedArgs {
        let base = ["mixed", "--password", "pw"];
        Cli::try_parse_from(base.iter().chain(extra)).expect("valid").args
    }

    #[test]
    fn defaults() {
        let args = parse(&[]);
        assert_eq!((args.imap_port, args.imaps_port, args.clients), (143, 993, 8));
        assert_eq!(args.user_count(), 8, "one user per client");
        assert_eq!(args.duration(), Some(Duration::from_secs(20)));
        assert_eq!((args.seed, args.max_messages), (1, 200));
        assert!(!args.tls && !args.no_uidplus);
        args.check().unwrap();
    }

    #[test]
    fn ops_alone_bound_the_run() {
        assert_eq!(parse(&["--ops", "100"]).duration(), None);
        assert_eq!(
            parse(&["--ops", "100", "--duration", "5"]).duration(),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn shared_mailboxes_and_tls_without_a_certificate_are_refused() {
        assert!(parse(&["--clients", "4", "--user-count", "2"]).check().is_err());
        let shared = parse(&["--clients", "20", "--shared", "2"]);
        shared.check().unwrap();
        assert_eq!((shared.user_count(), shared.keywords), (2, 200));
        assert!(parse(&["--shared", "0"]).check().is_err());
        let both = ["mixed", "--password", "pw", "--shared", "2", "--user-count", "9"];
        assert!(
            Cli::try_parse_from(both).is_err(),
            "--shared conflicts with --user-count"
        );
        parse(&["--clients", "4", "--user-count", "6"]).check().unwrap();
        assert!(parse(&["--tls"]).check().is_err());
        parse(&["--tls", "--cafile", "cert.pem"]).check().unwrap();
        assert!(parse(&["--host", "192.0.2.1"]).check().is_err());
    }

    #[test]
    fn no_uidplus_is_refused_with_shared() {
        let both = ["mixed", "--password", "pw", "--shared", "2", "--no-uidplus"];
        assert!(Cli::try_parse_from(both).is_err(), "--shared ignores --no-uidplus");
        assert!(parse(&["--no-uidplus"]).no_uidplus);
    }

    #[test]
    fn counts_by_kind() {
        assert_eq!(counts(&BTreeMap::new()), "none");
        let by_kind = BTreeMap::from([("wrong EXISTS".to_string(), 1), ("flags differ".to_string(), 2)]);
        assert_eq!(counts(&by_kind), "3 (flags differ 2, wrong EXISTS 1)");
    }
}
