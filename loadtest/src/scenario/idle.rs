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
    /// With the first half of the sessions open.
    memory_half: Option<Memory>,
    memory_after: Option<Memory>,
    per_session: Option<Growth>,
    per_session_marginal: Option<Growth>,
}

/// What setting the sessions up cost, shared with `fanout`'s report.
pub struct Setup {
    pub opened: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub rate: f64,
    pub latency: LatencySummary,
    pub curve: LatencyCurve,
}

impl Setup {
    /// The figures of `fleets` together, printed.
    pub fn of(fleets: &[&Fleet], tls: bool) -> Setup {
        let mut histogram = report::latency_histogram();
        let (mut opened, mut failed, mut seconds, mut first_error) = (0, 0, 0.0, None);
        for fleet in fleets {
            fleet.ready.setup.merge_into(&mut histogram);
            opened += fleet.ready.opened;
            failed += fleet.ready.failed;
            seconds += fleet.setup_elapsed.as_secs_f64();
            first_error = first_error.or(fleet.ready.first_error.clone());
        }
        let rate = opened as f64 / f64::max(seconds, 1e-9);
        let latency = LatencySummary::from_histogram(&histogram);
        let mode = if tls { "TLS" } else { "plaintext" };
        println!("{opened} sessions in IDLE ({mode}), {failed} failed; set up in {seconds:.2} s: {rate:.0} sessions/s");
        println!("connect+login+select+idle latency: {}", latency.line());
        if let Some(e) = &first_error {
            println!("first failure: {e}");
        }
        Setup {
            opened,
            failed,
            first_error,
            seconds,
            rate,
            latency,
            curve: LatencyCurve::from_histogram("session setup", &histogram),
        }
    }
}

/// Memory grown per session: over the whole run (what a server costs at N sessions), and
/// from the first half of the sessions to all of them (the cost of one more session, without
/// one-time costs such as the login threads' work areas).
#[derive(Debug, Clone, Copy, Serialize)]
struct Growth {
    rss_kib: f64,
    pss_kib: f64,
    anon_kib: f64,
}

impl Growth {
    fn between(before: &Memory, after: &Memory, sessions: u64) -> Growth {
        let (rss, pss, anon) = after.per_session_since(before, sessions);
        Growth {
            rss_kib: rss / 1024.0,
            pss_kib: pss / 1024.0,
            anon_kib: anon / 1024.0,
        }
    }

    fn line(&self) -> String {
        format!(
            "RSS {:.2} KiB, PSS {:.2} KiB, anonymous {:.2} KiB",
            self.rss_kib, self.pss_kib, self.anon_kib
        )
    }
}

pub fn run(args: &IdleArgs) -> anyhow::Result<()> {
    let s = &args.sessions;
    s.target.common.check()?;
    let settle = || std::thread::sleep(Duration::from_secs(args.settle));
    let half = s.sessions / 2;
    let memory_before = server_memory(s.server_pid)?;
    let first = Fleet::open_range(s, 0..half)?;
    settle();
    let memory_half = server_memory(s.server_pid)?;
    let second = Fleet::open_range(s, half..s.sessions)?;
    let setup = Setup::of(&[&first, &second], s.target.tls);
    if setup.opened == 0 {
        bail!("no session could be opened");
    }
    settle();
    let memory_after = server_memory(s.server_pid)?;
    let whole = memory_before
        .zip(memory_after)
        .map(|(before, after)| Growth::between(&before, &after, setup.opened));
    let marginal = memory_half
        .zip(memory_after)
        .map(|(half, after)| Growth::between(&half, &after, second.ready.opened));
    if let (Some(after), Some(whole), Some(marginal)) = (memory_after, whole, marginal) {
        println!(
            "server memory ({} processes): RSS {} MiB, PSS {} MiB, anonymous {} MiB",
            after.processes,
            after.rss_kib / 1024,
            after.pss_kib / 1024,
            after.anon_kib / 1024,
        );
        println!("growth per session, whole run:      {}", whole.line());
        println!("growth per session, second half:    {}", marginal.line());
    }
    first.close().context("closing the sessions")?;
    second.close().context("closing the sessions")?;
    let details = IdleReport {
        tls: s.target.tls,
        sessions: s.sessions,
        opened: setup.opened,
        failed: setup.failed,
        first_error: setup.first_error.clone(),
        setup_seconds: setup.seconds,
        sessions_per_sec: setup.rate,
        setup_latency: setup.latency.clone(),
        memory_before,
        memory_half,
        memory_after,
        per_session: whole,
        per_session_marginal: marginal,
    };
    let mut headlines = vec![
        Headline::new("sessions held", setup.opened as f64, "sessions", Better::Higher),
        Headline::new("session setup rate", setup.rate, "sessions/s", Better::Higher),
    ];
    headlines.extend(Headline::latencies("session setup", &setup.latency));
    for (label, growth) in [("", whole), (" (marginal)", marginal)] {
        if let Some(g) = growth {
            headlines.push(Headline::new(
                &format!("RSS per idle session{label}"),
                g.rss_kib,
                "KiB",
                Better::Lower,
            ));
            headlines.push(Headline::new(
                &format!("PSS per idle session{label}"),
                g.pss_kib,
                "KiB",
                Better::Lower,
            ));
            headlines.push(Headline::new(
                &format!("anonymous memory per idle session{label}"),
                g.anon_kib,
                "KiB",
                Better::Lower,
            ));
        }
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
