//! `loadtest`: the load harness behind BENCHMARKS.md. Its scenarios, and `report`:
//!
//! - `seed` fills mailboxes over LMTP with generated messages;
//! - `bulk` measures POP3 download throughput (plaintext and implicit TLS) beside a raw
//!   loopback TCP transfer measured in the same run (DESIGN.md §8: figures are ratios);
//! - `imap-bulk` measures IMAP download throughput (`FETCH 1:* BODY.PEEK[]`, plaintext and
//!   implicit TLS) the same way, beside raw loopback TCP;
//! - `deliver` measures LMTP delivery rate and latency with concurrent connections;
//! - `submit` measures SMTP submission rate and latency with concurrent logged-in clients
//!   over TLS;
//! - `idle` holds N IMAP sessions in IDLE (over several processes) and reports the setup
//!   rate and the server's memory per session;
//! - `fanout` delivers over LMTP at a set rate to users in IDLE and times delivery→EXISTS;
//! - `changes` times one flag change reaching N sessions in IDLE on a large mailbox, and a
//!   returning client's CHANGEDSINCE and SELECT QRESYNC;
//! - `login` measures connect + TLS + LOGIN rate and latency;
//! - `mixed` runs an imaptest-like random mix of IMAP commands, checking UIDs, flags and
//!   EXISTS against a model of each mailbox, and reports ops/s and per-command latency; with
//!   `--shared N` many clients share N users' mailboxes instead, each checking every response
//!   against what its session was told (keywords announced, `\Recent` in one session,
//!   EXISTS/EXPUNGE/VANISHED, MODSEQ, UIDNEXT) and counting violations by kind;
//! - `report` pairs the JSON summaries of two or more servers' runs and writes REPORT.md
//!   with a table and a chart per scenario.
//!
//! It only ever connects to loopback addresses, and every loop is bounded by a count and by
//! `--timeout`. Errors end the run with one line on stderr and a non-zero exit status.

mod compare;
mod cpu;
mod scenario;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use loadtest::chart;
use loadtest::report::Summary;

#[derive(Parser)]
#[command(
    name = "loadtest",
    about = "Load harness for ringmail (or any IMAP/POP3/LMTP server on loopback)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Deliver generated messages over LMTP to fill mailboxes.
    Seed(scenario::deliver::SeedArgs),
    /// Write the mail `seed` would deliver straight into one Maildir per user (for Dovecot,
    /// and for `ringmail import`), where LMTP would take too long.
    Maildir(scenario::maildir::MaildirArgs),
    /// POP3 download throughput, plaintext and TLS, against raw loopback TCP.
    Bulk(scenario::bulk::BulkArgs),
    /// IMAP download throughput (FETCH 1:* BODY.PEEK[]), plaintext and TLS, against raw
    /// loopback TCP.
    ImapBulk(scenario::imap_bulk::ImapBulkArgs),
    /// LMTP delivery rate and per-message latency with concurrent clients.
    Deliver(scenario::deliver::DeliverArgs),
    /// SMTP submission rate and per-message latency: concurrent clients over TLS, each
    /// logged in as its own user, submitting to local recipients.
    Submit(scenario::submit::SubmitArgs),
    /// N IMAP sessions in IDLE over worker processes: setup rate and the server's memory
    /// per session.
    Idle(scenario::idle::IdleArgs),
    /// N sessions in IDLE while messages arrive over LMTP at a set rate: delivery to
    /// untagged EXISTS latency.
    Fanout(scenario::fanout::FanoutArgs),
    /// Flag changes on one large mailbox told to N sessions in IDLE (change→FETCH latency),
    /// then CHANGEDSINCE and SELECT QRESYNC after a few changes, timed.
    Changes(scenario::changes::ChangesArgs),
    /// IMAP connection + TLS handshake + LOGIN rate and latency.
    Login(scenario::login::LoginArgs),
    /// A reconnect storm: N sessions in IDLE all dropped at once and all reconnecting at
    /// once; time until all are back in IDLE, login latency meanwhile, sessions not back.
    Storm(scenario::storm::StormArgs),
    /// A share of `idle`/`fanout`/`storm`'s sessions (started by them, not by hand).
    #[command(hide = true)]
    SessionWorker(scenario::fleet::WorkerArgs),
    /// A random mix of IMAP commands (imaptest-like), checked for consistent UIDs, flags and
    /// EXISTS counts: ops/s and latency per command. With --shared, many clients on the same
    /// mailboxes, each checking what its session is told.
    Mixed(scenario::mixed::MixedArgs),
    /// `mixed --shared` (2 users unless told): the state-checking stress run, reported as a
    /// scenario of its own so it can stand beside `mixed` in a comparison.
    Stress(scenario::mixed::MixedArgs),
    /// Crash consistency: a mixed load on a ringmail server it starts itself, `kill -9` at
    /// random moments, `ringmail fsck` and a check of every mailbox after each restart.
    Crash(scenario::crash::CrashArgs),
    /// Compare servers: pair the scenarios' JSON summaries by scenario between labels and
    /// write a Markdown report with tables, ratios and SVG charts.
    Report(compare::ReportArgs),
}

/// Options every scenario takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Server address; loopback only, this is a tool for measuring, not for load on others.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Give up (with an error) if the run takes longer than this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Write the results as JSON to this file as well.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The server's name in the JSON summary (`loadtest report` pairs runs by it).
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Draw this run's latency curves and throughput bars to this SVG file as well.
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

impl Common {
    pub fn check(&self) -> anyhow::Result<()> {
        if !self.host.is_loopback() {
            bail!(
                "--host {} is not a loopback address; the harness only targets this machine",
                self.host
            );
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    /// Writes `{"summary": ..., "details": ...}` to `--json`, if given; the summary is what
    /// every scenario reports alike, `details` the scenario's own figures. Draws the summary
    /// to `--svg`, if given.
    pub fn write_report(
        &self,
        scenario: &str,
        mut summary: Summary,
        details: &impl serde::Serialize,
    ) -> anyhow::Result<()> {
        summary.scenario = scenario.to_owned();
        summary.label = self.label.clone();
        #[derive(serde::Serialize)]
        struct Report<'a, T> {
            summary: &'a Summary,
            details: &'a T,
        }
        self.write_json(&Report {
            summary: &summary,
            details,
        })?;
        if let Some(path) = &self.svg {
            chart::write_svg(path, &[&summary])?;
        }
        Ok(())
    }

    /// Writes `value` as pretty JSON to `--json`, if given.
    pub fn write_json(&self, value: &impl serde::Serialize) -> anyhow::Result<()> {
        let Some(path) = &self.json else { return Ok(()) };
        let text = serde_json::to_string_pretty(value).context("encoding JSON")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Seed(args) => scenario::deliver::seed(&args),
        Command::Maildir(args) => scenario::maildir::write(&args),
        Command::Bulk(args) => scenario::bulk::run(&args),
        Command::ImapBulk(args) => scenario::imap_bulk::run(&args),
        Command::Deliver(args) => scenario::deliver::deliver(&args),
        Command::Submit(args) => scenario::submit::run(&args),
        Command::Idle(args) => scenario::idle::run(&args),
        Command::Fanout(args) => scenario::fanout::run(&args),
        Command::Changes(args) => scenario::changes::run(&args),
        Command::Login(args) => scenario::login::run(&args),
        Command::Storm(args) => scenario::storm::run(&args),
        Command::SessionWorker(args) => scenario::fleet::worker(&args),
        Command::Mixed(args) => scenario::mixed::run(&args),
        Command::Stress(args) => scenario::mixed::stress(args),
        Command::Report(args) => compare::run(&args),
        Command::Crash(args) => scenario::crash::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}
