//! `login`: how fast a server takes people in. Each client thread connects, does the TLS
//! handshake (with --tls), reads the greeting and LOGs IN, then LOGs OUT and starts over, for
//! --duration seconds. A login's latency runs from connect to the tagged OK of LOGIN; the
//! rate counts completed logins.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use super::fleet::ImapTarget;
use super::user_name;
use loadtest::client::imap::Imap;
use loadtest::client::Transport;
use loadtest::report::{self, Bar, Better, Headline, LatencyCurve, LatencySummary, Summary};

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    pub target: ImapTarget,
    /// Concurrent clients, each logging in over and over.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
}

#[derive(Debug, Serialize)]
struct LoginReport {
    tls: bool,
    clients: usize,
    logins: u64,
    seconds: f64,
    logins_per_sec: f64,
    latency: LatencySummary,
}

pub fn run(args: &LoginArgs) -> anyhow::Result<()> {
    let t = &args.target;
    t.common.check()?;
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let tls = t.tls_config()?;
    let users = t.user_count.unwrap_or(1).max(1);
    let next_user = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let start = Barrier::new(args.clients + 1);
    let deadline = Instant::now() + t.common.timeout();
    let (histograms, elapsed) = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..args.clients)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let mut histogram = report::latency_histogram();
                    while !stop.load(Ordering::Relaxed) {
                        if Instant::now() > deadline {
                            bail!("timed out while logging in (see --timeout)");
                        }
                        let user = user_name(&t.users, next_user.fetch_add(1, Ordering::Relaxed) % users);
                        let began = Instant::now();
                        let mut imap = connect(t, tls.clone())?;
                        imap.login(&user, &t.password)
                            .context("LOGIN")?
                            .expect_ok()
                            .with_context(|| format!("LOGIN as {user}"))?;
                        report::record(&mut histogram, began.elapsed());
                        imap.cmd("LOGOUT").context("LOGOUT")?;
                    }
                    Ok(histogram)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        std::thread::sleep(Duration::from_secs(args.duration));
        stop.store(true, Ordering::Relaxed);
        let results: Vec<anyhow::Result<_>> = threads
            .into_iter()
            .map(|th| {
                th.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked")))
            })
            .collect();
        (results, began.elapsed())
    });
    let mut histogram = report::latency_histogram();
    for h in histograms {
        histogram.add(&h?).context("merging histograms")?;
    }
    let details = LoginReport {
        tls: t.tls,
        clients: args.clients,
        logins: histogram.len(),
        seconds: elapsed.as_secs_f64(),
        logins_per_sec: histogram.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        latency: LatencySummary::from_histogram(&histogram),
    };
    let mode = if t.tls { "TLS" } else { "plaintext" };
    println!(
        "{} logins ({mode}) by {} clients in {:.1} s: {:.0} logins/s",
        details.logins, details.clients, details.seconds, details.logins_per_sec
    );
    println!("connect to LOGIN OK: {}", details.latency.line());
    let mut headlines = vec![Headline::new(
        "logins/s",
        details.logins_per_sec,
        "logins/s",
        Better::Higher,
    )];
    headlines.extend(Headline::latencies("login", &details.latency));
    let summary = Summary {
        headlines,
        latency: vec![LatencyCurve::from_histogram("connect to LOGIN OK", &histogram)],
        throughput: vec![Bar {
            name: "logins".into(),
            value: details.logins_per_sec,
            unit: "logins/s".into(),
        }],
        ..Summary::default()
    };
    let scenario = if t.tls { "login-tls" } else { "login" };
    t.common.write_report(scenario, summary, &details)
}

fn connect(t: &ImapTarget, tls: Option<Arc<rustls::ClientConfig>>) -> anyhow::Result<Imap> {
    let addr = t.addr();
    let transport = match tls {
        Some(config) => Transport::connect_tls(addr, config, &t.tls_name).with_context(|| format!("TLS to {addr}"))?,
        None => Transport::connect(addr).with_context(|| format!("connecting to {addr}"))?,
    };
    Imap::new(transport).context("greeting")
}
