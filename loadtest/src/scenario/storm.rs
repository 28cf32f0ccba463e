//! `storm`: a reconnect storm, as when a mobile network blips. N sessions are set up in
//! IDLE (as `idle` does: connect, TLS with --tls, LOGIN, SELECT, IDLE), then every one is
//! dropped at the same moment and all reconnect at once. The figures: how long until the last
//! session is back in IDLE, the login latency during the storm (connect to LOGIN's OK), and
//! how many sessions could not come back (refused, failed or timed out).
//!
//! With --silent-drop the drop sends nothing: the old sessions stay open at the server, as
//! after a real blip, and each new login of a user must take the place of one of them.
//!
//! With --server-pid, the server's CPU during the storm is reported per thread, and the
//! busiest event loop's share of all the event loops' CPU (ringmail's `ringmail-core-N`
//! threads, `ringmail-proxy-N` for a front end): how evenly SO_REUSEPORT spread the work.
//!
//! A server that verifies each login with argon2 needs tens of milliseconds of a core per
//! session here; one that remembers verified credentials needs an HMAC (issue 14's target:
//! 15,000 TLS sessions back within 30 s on two cores, p99 login ≤ 2 s, none refused).

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use super::fleet::{Fleet, SessionArgs};
use super::idle::Setup;
use crate::cpu;
use loadtest::report::{self, Bar, Better, Headline, LatencyCurve, LatencySummary, Summary};

#[derive(Args, Debug)]
pub struct StormArgs {
    #[command(flatten)]
    pub sessions: SessionArgs,
}

#[derive(Debug, Serialize)]
struct StormReport {
    tls: bool,
    /// The drop sent no FIN: the server still held the old sessions (`--silent-drop`).
    silent_drop: bool,
    sessions: u64,
    /// Before the storm.
    opened: u64,
    setup_seconds: f64,
    /// After it.
    reopened: u64,
    /// Of those, sessions whose TLS handshake resumed their last TLS session (`--resume-tls`).
    resumed: u64,
    failed: u64,
    first_error: Option<String>,
    /// From the drop to the last session back in IDLE.
    back_seconds: f64,
    login_latency: LatencySummary,
    setup_latency: LatencySummary,
    /// The server's threads during the storm, % of one core, busiest first.
    server_threads: Vec<(String, f64)>,
    /// The busiest event loop's share of the event loops' CPU during the storm, %.
    busiest_loop_share: Option<f64>,
}

/// Event-loop threads by name: ringmail's cores, or a front end's.
fn is_event_loop(thread: &str) -> bool {
    ["ringmail-core-", "ringmail-proxy-"]
        .iter()
        .any(|prefix| thread.strip_prefix(prefix).is_some_and(|n| n.parse::<u32>().is_ok()))
}

/// The largest share, in %, of the event loops' CPU that one of them took.
fn busiest_loop_share(threads: &[(String, f64)]) -> Option<f64> {
    let loops: Vec<f64> = threads
        .iter()
        .filter(|(n, _)| is_event_loop(n))
        .map(|(_, p)| *p)
        .collect();
    let total: f64 = loops.iter().sum();
    (total > 0.0).then(|| 100.0 * loops.iter().copied().fold(0.0, f64::max) / total)
}

pub fn run(args: &StormArgs) -> anyhow::Result<()> {
    let s = &args.sessions;
    s.target.common.check()?;
    let mut fleet = Fleet::open(s)?;
    let setup = Setup::of(&[&fleet], s.target.tls);
    if setup.opened == 0 {
        bail!("no session could be opened");
    }
    let how = if s.silent_drop {
        " without a word (left open, unread)"
    } else {
        ""
    };
    println!(
        "== storm: {} sessions dropped at once{how}, all reconnecting at once",
        setup.opened
    );
    let before = s.server_pid.map(cpu::by_thread);
    let started = std::time::Instant::now();
    let stormed = fleet.storm().context("the storm")?;
    let wall = started.elapsed();
    let server_threads = match (s.server_pid, before) {
        (Some(pid), Some(before)) => cpu::thread_percentages(&before, &cpu::by_thread(pid), wall),
        _ => Vec::new(),
    };
    fleet.close().context("closing the sessions")?;
    let busiest = busiest_loop_share(&server_threads);
    let back_seconds = stormed.last_back.saturating_sub(stormed.dropped_at) as f64 / 1e6;
    let histogram = |data: &loadtest::report::HistogramData| {
        let mut h = report::latency_histogram();
        data.merge_into(&mut h);
        h
    };
    let (login, in_idle) = (histogram(&stormed.login), histogram(&stormed.setup));
    let login_latency = LatencySummary::from_histogram(&login);
    let setup_latency = LatencySummary::from_histogram(&in_idle);
    println!(
        "{} of {} sessions back in IDLE {:.2} s after the drop, {} failed",
        stormed.reopened, setup.opened, back_seconds, stormed.failed
    );
    if s.resume_tls {
        println!("{} of them resumed their TLS session", stormed.resumed);
    }
    println!("connect to LOGIN OK during the storm: {}", login_latency.line());
    println!("connect to IDLE during the storm: {}", setup_latency.line());
    if let Some(e) = &stormed.first_error {
        println!("first failure: {e}");
    }
    if !server_threads.is_empty() {
        let threads: Vec<String> = server_threads.iter().map(|(n, p)| format!("{n} {p:.0} %")).collect();
        println!("server CPU during the storm, % of one core: {}", threads.join(", "));
    }
    if let Some(share) = busiest {
        println!("busiest event loop: {share:.1} % of the event loops' CPU");
    }
    let mut headlines = vec![
        Headline::new("sessions back", stormed.reopened as f64, "sessions", Better::Higher),
        Headline::new("sessions not back", stormed.failed as f64, "sessions", Better::Lower),
        Headline::new("all back in IDLE after", back_seconds, "s", Better::Lower),
    ];
    headlines.extend(Headline::latencies("storm login", &login_latency));
    if let Some(share) = busiest {
        headlines.push(Headline::new("busiest event loop's share", share, "%", Better::Lower));
    }
    let summary = Summary {
        headlines,
        latency: vec![
            LatencyCurve::from_histogram("storm: connect to LOGIN OK", &login),
            LatencyCurve::from_histogram("storm: connect to IDLE", &in_idle),
        ],
        throughput: vec![Bar {
            name: "sessions back per second".into(),
            value: stormed.reopened as f64 / back_seconds.max(1e-9),
            unit: "sessions/s".into(),
        }],
        ..Summary::default()
    };
    let details = StormReport {
        tls: s.target.tls,
        silent_drop: s.silent_drop,
        sessions: s.sessions,
        opened: setup.opened,
        setup_seconds: setup.seconds,
        reopened: stormed.reopened,
        resumed: stormed.resumed,
        failed: stormed.failed,
        first_error: stormed.first_error.clone(),
        back_seconds,
        login_latency,
        setup_latency,
        server_threads,
        busiest_loop_share: busiest,
    };
    let scenario = if s.target.tls { "storm-tls" } else { "storm" };
    s.target.common.write_report(scenario, summary, &details)?;
    if stormed.failed > 0 {
        bail!("{} sessions did not come back after the storm", stormed.failed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_loop_is_found_among_the_event_loops_only() {
        let threads = [
            ("ringmail-login-0".to_owned(), 90.0),
            ("ringmail-core-0".to_owned(), 30.0),
            ("ringmail-core-1".to_owned(), 10.0),
            ("ringmail-core-x".to_owned(), 50.0),
        ];
        assert_eq!(busiest_loop_share(&threads), Some(75.0));
        assert_eq!(busiest_loop_share(&threads[..1]), None);
    }
}
