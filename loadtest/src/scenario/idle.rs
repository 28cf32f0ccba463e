//! `idle`: N sessions log in, SELECT the mailbox and IDLE; the figures are the connect+login
//! rate, and the server's memory growth per session at rest (RSS and PSS of all its
//! processes, measured before the sessions and after they settle).

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use super::fleet::{Fleet, SessionArgs};
use loadtest::memory::Memory;
use loadtest::report::{self, Bar, Better, Headline, LatencyCurve, LatencySummary, Summary};

#[derive(Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    pub sessions: SessionArgs,
    /// Seconds to let the server settle after the last session is in IDLE, before its
    /// memory is read (long enough for idle worker threads to exit: tokio's blocking pool
    /// keeps a thread 10 s).
    #[arg(long, default_value_t = 12)]
    pub settle: u64,
}

#[derive(Debug, Serialize)]
struct IdleReport {
    tls: bool,
    sessions: u64,
    opened: u64,
    failed: u64,
    first_error: Option<String>,
    setup_seconds: f64,
    sessions_per_sec: f64,
    setup_latency: LatencySummary,
    memory_before: Option<Memory>,
    memory_after: Option<Memory>,
    rss_bytes_per_session: Option<f64>,
    pss_bytes_per_session: Option<f64>,
    anon_bytes_per_session: Option<f64>,
}

/// What setting the sessions up cost, shared with `fanout`'s report.
pub struct Setup {
    pub rate: f64,
    pub latency: LatencySummary,
    pub curve: LatencyCurve,
}

impl Setup {
    pub fn of(fleet: &Fleet, tls: bool) -> Setup {
        let mut histogram = report::latency_histogram();
        fleet.ready.setup.merge_into(&mut histogram);
        let rate = fleet.ready.opened as f64 / fleet.setup_elapsed.as_secs_f64().max(1e-9);
        let latency = LatencySummary::from_histogram(&histogram);
        let mode = if tls { "TLS" } else { "plaintext" };
        println!(
            "{} sessions in IDLE ({mode}), {} failed; set up in {:.2} s: {rate:.0} sessions/s",
            fleet.ready.opened,
            fleet.ready.failed,
            fleet.setup_elapsed.as_secs_f64()
        );
        println!("connect+login+select+idle latency: {}", latency.line());
        if let Some(e) = &fleet.ready.first_error {
            println!("first failure: {e}");
        }
        Setup {
            rate,
            latency,
            curve: LatencyCurve::from_histogram("session setup", &histogram),
        }
    }
}

pub fn run(args: &IdleArgs) -> anyhow::Result<()> {
    let s = &args.sessions;
    s.target.common.check()?;
    let memory_before = server_memory(s.server_pid)?;
    let fleet = Fleet::open(s)?;
    let setup = Setup::of(&fleet, s.target.tls);
    if fleet.ready.opened == 0 {
        bail!("no session could be opened");
    }
    std::thread::sleep(Duration::from_secs(args.settle));
    let memory_after = server_memory(s.server_pid)?;
    let opened = fleet.ready.opened;
    let per_session = memory_before
        .zip(memory_after)
        .map(|(before, after)| after.per_session_since(&before, opened));
    if let (Some((rss, pss, anon)), Some(after)) = (per_session, memory_after) {
        println!(
            "server memory ({} processes): RSS {} MiB, PSS {} MiB, anonymous {} MiB",
            after.processes,
            after.rss_kib / 1024,
            after.pss_kib / 1024,
            after.anon_kib / 1024,
        );
        println!(
            "growth per session: RSS {:.2} KiB, PSS {:.2} KiB, anonymous {:.2} KiB",
            rss / 1024.0,
            pss / 1024.0,
            anon / 1024.0
        );
    }
    let details = IdleReport {
        tls: s.target.tls,
        sessions: s.sessions,
        opened,
        failed: fleet.ready.failed,
        first_error: fleet.ready.first_error.clone(),
        setup_seconds: fleet.setup_elapsed.as_secs_f64(),
        sessions_per_sec: setup.rate,
        setup_latency: setup.latency.clone(),
        memory_before,
        memory_after,
        rss_bytes_per_session: per_session.map(|p| p.0),
        pss_bytes_per_session: per_session.map(|p| p.1),
        anon_bytes_per_session: per_session.map(|p| p.2),
    };
    let mut headlines = vec![
        Headline::new("sessions held", opened as f64, "sessions", Better::Higher),
        Headline::new("session setup rate", setup.rate, "sessions/s", Better::Higher),
    ];
    headlines.extend(Headline::latencies("session setup", &setup.latency));
    if let Some((rss, pss, anon)) = per_session {
        headlines.push(Headline::new(
            "RSS per idle session",
            rss / 1024.0,
            "KiB",
            Better::Lower,
        ));
        headlines.push(Headline::new(
            "PSS per idle session",
            pss / 1024.0,
            "KiB",
            Better::Lower,
        ));
        headlines.push(Headline::new(
            "anonymous memory per idle session",
            anon / 1024.0,
            "KiB",
            Better::Lower,
        ));
    }
    let summary = Summary {
        headlines,
        latency: vec![setup.curve],
        throughput: vec![Bar {
            name: "session setup".into(),
            value: setup.rate,
            unit: "sessions/s".into(),
        }],
        ..Summary::default()
    };
    fleet.close().context("closing the sessions")?;
    let scenario = if s.target.tls { "idle-tls" } else { "idle" };
    s.target.common.write_report(scenario, summary, &details)
}

/// The memory of the server's process tree, if `--server-pid` was given: a pid given but
/// unreadable is an error, not a silent blank.
pub fn server_memory(pid: Option<u32>) -> anyhow::Result<Option<Memory>> {
    let Some(pid) = pid else { return Ok(None) };
    match Memory::of_tree(pid) {
        Some(memory) => Ok(Some(memory)),
        None => bail!("cannot read the memory of --server-pid {pid} (is it running, on Linux?)"),
    }
}
