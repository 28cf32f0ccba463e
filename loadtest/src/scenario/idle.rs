//! `idle`: N sessions log in, SELECT the mailbox and IDLE; the figures are the connect+login
//! rate, and the server's memory growth per session at rest (RSS and PSS of all its
//! processes, each reading after the server has settled: before the sessions, at half of
//! them and after all). With `--front-pid`, the
//! sessions go through a front end (`ringmail proxy`) whose memory is measured the same way,
//! apart from the server's; the kernel's TCP sockets are counted beside them.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use super::fleet::{Fleet, SessionArgs};
use loadtest::memory::{kernel_slab_kib, scrape_gauge, Memory, TcpSockets};
use loadtest::report::{self, Bar, Better, Headline, LatencyCurve, LatencySummary, Summary};

#[derive(Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    pub sessions: SessionArgs,
    /// Seconds to let the server settle before each reading of its memory (before the
    /// sessions, at half of them, after all are in IDLE): long enough for idle worker threads
    /// to exit (tokio's blocking pool keeps a thread 10 s) and freed memory to be handed back.
    #[arg(long, default_value_t = 12)]
    pub settle: u64,
    /// The front end (`ringmail proxy`) the sessions reach the server through: its memory
    /// (its process tree) is measured and reported apart from --server-pid's.
    #[arg(long)]
    pub front_pid: Option<u32>,
    /// The front end's metrics port: how many of its relayed sessions rest (as data, not
    /// tasks) is read with each memory reading.
    #[arg(long)]
    pub front_metrics: Option<u16>,
}

#[derive(Debug, Serialize)]
struct IdleReport {
    tls: bool,
    /// The sessions waited between commands after SELECT (`--no-idle`), not in IDLE.
    between_commands: bool,
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
    /// The same for the front end of --front-pid.
    front_memory_before: Option<Memory>,
    front_memory_half: Option<Memory>,
    front_memory_after: Option<Memory>,
    front_per_session: Option<Growth>,
    front_per_session_marginal: Option<Growth>,
    /// The front end's relayed sessions resting at each reading (`--front-metrics`).
    front_resting: [Option<f64>; 3],
    /// The kernel's TCP sockets, machine-wide, before and after all the sessions.
    tcp_before: Option<TcpSockets>,
    tcp_after: Option<TcpSockets>,
    tcp_per_session: Option<TcpGrowth>,
}

/// The server's, the front end's and the kernel's figures at one point of the run.
#[derive(Clone, Copy)]
struct Snapshot {
    server: Option<Memory>,
    front: Option<Memory>,
    tcp: Option<TcpSockets>,
    /// The kernel's slab memory, machine-wide, KiB.
    slab_kib: Option<u64>,
    front_resting: Option<f64>,
}

impl Snapshot {
    fn take(args: &IdleArgs) -> anyhow::Result<Snapshot> {
        Ok(Snapshot {
            server: process_memory(args.sessions.server_pid, "--server-pid")?,
            front: process_memory(args.front_pid, "--front-pid")?,
            tcp: TcpSockets::now(),
            slab_kib: kernel_slab_kib(),
            front_resting: args
                .front_metrics
                .and_then(|port| scrape_gauge(port, "ringmail_relays_resting")),
        })
    }
}

/// Sockets opened, socket buffer memory and kernel slab grown per session, machine-wide: a
/// session is two sockets (the harness's and the server's), four through a front end, and
/// the slab holds both ends' socket objects (and anything else the machine did meanwhile).
#[derive(Debug, Clone, Copy, Serialize)]
struct TcpGrowth {
    sockets: f64,
    buffer_kib: f64,
    slab_kib: Option<f64>,
}

impl TcpGrowth {
    fn between(before: &Snapshot, after: &Snapshot, sessions: u64) -> Option<TcpGrowth> {
        let per = |after: u64, before: u64| (after as f64 - before as f64) / sessions.max(1) as f64;
        let (b, a) = (before.tcp?, after.tcp?);
        Some(TcpGrowth {
            sockets: per(a.in_use, b.in_use),
            buffer_kib: per(a.mem_kib, b.mem_kib),
            slab_kib: before.slab_kib.zip(after.slab_kib).map(|(b, a)| per(a, b)),
        })
    }
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
    // The server at rest before the first reading too, as before the others: what it freed
    // just before (a warm-up's logins, an earlier scenario's bursts) is handed back to the
    // system within seconds, and read half-way it would move the whole-run figure by
    // megabytes either way (BENCHMARKS.md, the compare run of 2026-12-06 10:57).
    settle();
    let before = Snapshot::take(args)?;
    let first = Fleet::open_range(s, 0..half)?;
    settle();
    let at_half = Snapshot::take(args)?;
    let second = Fleet::open_range(s, half..s.sessions)?;
    let setup = Setup::of(&[&first, &second], s.target.tls);
    if setup.opened == 0 {
        bail!("no session could be opened");
    }
    settle();
    let after = Snapshot::take(args)?;
    let growth = |pick: fn(&Snapshot) -> Option<Memory>| {
        let whole = pick(&before)
            .zip(pick(&after))
            .map(|(b, a)| Growth::between(&b, &a, setup.opened));
        let marginal = pick(&at_half)
            .zip(pick(&after))
            .map(|(h, a)| Growth::between(&h, &a, second.ready.opened));
        (whole, marginal)
    };
    let (whole, marginal) = growth(|m| m.server);
    let (front_whole, front_marginal) = growth(|m| m.front);
    print_growth("server", after.server, whole, marginal);
    print_growth("front end", after.front, front_whole, front_marginal);
    let tcp_per_session = TcpGrowth::between(&before, &after, setup.opened);
    if let Some(t) = tcp_per_session {
        let slab = t
            .slab_kib
            .map(|k| format!(", {k:.2} KiB of kernel slab (both ends)"))
            .unwrap_or_default();
        println!(
            "kernel TCP per session: {:.2} sockets, {:.2} KiB of socket buffers{slab}",
            t.sockets, t.buffer_kib
        );
    }
    if let Some(n) = after.front_resting {
        println!("front end: {n} relayed sessions resting");
    }
    first.close().context("closing the sessions")?;
    second.close().context("closing the sessions")?;
    let details = IdleReport {
        tls: s.target.tls,
        between_commands: s.no_idle,
        sessions: s.sessions,
        opened: setup.opened,
        failed: setup.failed,
        first_error: setup.first_error.clone(),
        setup_seconds: setup.seconds,
        sessions_per_sec: setup.rate,
        setup_latency: setup.latency.clone(),
        memory_before: before.server,
        memory_half: at_half.server,
        memory_after: after.server,
        per_session: whole,
        per_session_marginal: marginal,
        front_memory_before: before.front,
        front_memory_half: at_half.front,
        front_memory_after: after.front,
        front_per_session: front_whole,
        front_per_session_marginal: front_marginal,
        front_resting: [before.front_resting, at_half.front_resting, after.front_resting],
        tcp_before: before.tcp,
        tcp_after: after.tcp,
        tcp_per_session,
    };
    let grown = [("", whole), (" (marginal)", marginal)];
    let front_grown = [("", front_whole), (" (marginal)", front_marginal)];
    let summary = Summary {
        headlines: headlines(&setup, grown, front_grown),
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

/// The figures a comparison pairs: setup, and memory per session of the server and the front
/// end (`label`: over the whole run, or marginal).
fn headlines(
    setup: &Setup,
    grown: [(&str, Option<Growth>); 2],
    front_grown: [(&str, Option<Growth>); 2],
) -> Vec<Headline> {
    let mut headlines = vec![
        Headline::new("sessions held", setup.opened as f64, "sessions", Better::Higher),
        Headline::new("session setup rate", setup.rate, "sessions/s", Better::Higher),
    ];
    headlines.extend(Headline::latencies("session setup", &setup.latency));
    // The server's figures keep the names they had before front ends were measured.
    let all = grown.map(|(label, g)| ("", label, g)).into_iter();
    let all = all.chain(front_grown.map(|(label, g)| ("front end: ", label, g)));
    for (who, label, growth) in all {
        let Some(g) = growth else { continue };
        let name = |what: &str| format!("{who}{what} per idle session{label}");
        headlines.push(Headline::new(&name("RSS"), g.rss_kib, "KiB", Better::Lower));
        headlines.push(Headline::new(&name("PSS"), g.pss_kib, "KiB", Better::Lower));
        headlines.push(Headline::new(
            &name("anonymous memory"),
            g.anon_kib,
            "KiB",
            Better::Lower,
        ));
    }
    headlines
}

/// Prints `who`'s memory at the end and its growth per session, where it was measured.
fn print_growth(who: &str, after: Option<Memory>, whole: Option<Growth>, marginal: Option<Growth>) {
    if let (Some(after), Some(whole), Some(marginal)) = (after, whole, marginal) {
        println!(
            "{who} memory ({} processes): RSS {} MiB, PSS {} MiB, anonymous {} MiB",
            after.processes,
            after.rss_kib / 1024,
            after.pss_kib / 1024,
            after.anon_kib / 1024,
        );
        println!("{who} growth per session, whole run:   {}", whole.line());
        println!("{who} growth per session, second half: {}", marginal.line());
    }
}

/// The memory of the process tree of `pid` (given as `flag`), if one was given: a pid given
/// but unreadable is an error, not a silent blank.
fn process_memory(pid: Option<u32>, flag: &str) -> anyhow::Result<Option<Memory>> {
    let Some(pid) = pid else { return Ok(None) };
    match Memory::of_tree(pid) {
        Some(memory) => Ok(Some(memory)),
        None => bail!("cannot read the memory of {flag} {pid} (is it running, on Linux?)"),
    }
}
