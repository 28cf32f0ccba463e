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
use crate::cpu::CpuTime;
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
    /// The server's process id, to report its CPU time per login.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The front end's process id, when the logins go through `ringmail proxy`: its CPU
    /// time per login is reported beside the server's.
    #[arg(long)]
    pub front_pid: Option<u32>,
}

#[derive(Debug, Serialize)]
struct LoginReport {
    tls: bool,
    clients: usize,
    logins: u64,
    seconds: f64,
    logins_per_sec: f64,
    latency: LatencySummary,
    /// CPU time per completed login, in µs, of the server and of the front end.
    server_cpu_us_per_login: Option<f64>,
    front_cpu_us_per_login: Option<f64>,
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
    let (histograms, elapsed, (server_cpu, front_cpu)) = std::thread::scope(|scope| {
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
        let cpu_before = (CpuTime::of_pid(args.server_pid), CpuTime::of_pid(args.front_pid));
        std::thread::sleep(Duration::from_secs(args.duration));
        stop.store(true, Ordering::Relaxed);
        let results: Vec<anyhow::Result<_>> = threads
            .into_iter()
            .map(|th| {
                th.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked")))
            })
            .collect();
        // The logins the clients finished after the stop are counted, so the CPU they took is.
        let cpu_after = (CpuTime::of_pid(args.server_pid), CpuTime::of_pid(args.front_pid));
        let spent = |before: Option<CpuTime>, after: Option<CpuTime>| Some(after?.since(&before?));
        let cpu = (spent(cpu_before.0, cpu_after.0), spent(cpu_before.1, cpu_after.1));
        (results, began.elapsed(), cpu)
    });
    let mut histogram = report::latency_histogram();
    for h in histograms {
        histogram.add(&h?).context("merging histograms")?;
    }
    let logins = histogram.len();
    let per_login = |cpu: Option<Duration>| {
        cpu.filter(|_| logins > 0)
            .map(|c| c.as_secs_f64() * 1e6 / logins as f64)
    };
    let details = LoginReport {
        tls: t.tls,
        clients: args.clients,
        logins,
        seconds: elapsed.as_secs_f64(),
        logins_per_sec: logins as f64 / elapsed.as_secs_f64().max(1e-9),
        latency: LatencySummary::from_histogram(&histogram),
        server_cpu_us_per_login: per_login(server_cpu),
        front_cpu_us_per_login: per_login(front_cpu),
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
    for (who, cpu) in [
        ("server", details.server_cpu_us_per_login),
        ("front end", details.front_cpu_us_per_login),
    ] {
        if let Some(us) = cpu {
            println!("{who} CPU per login: {us:.0} µs");
            headlines.push(Headline::new(&format!("{who} CPU per login"), us, "µs", Better::Lower));
        }
    }
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
