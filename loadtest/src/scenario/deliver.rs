//! LMTP delivery with concurrent connections: `seed` (fill mailboxes, report the rate) and
//! `deliver` (the measured scenario: messages/s and per-message latency).
//!
//! Each client is a thread with one connection: LHLO once, then transactions back to back,
//! as an MTA's LMTP client does. MAIL, RCPT and DATA go in one write when the server offers
//! PIPELINING (RFC 2033 §4.2 requires it of LMTP servers; RFC 2920). A message's latency
//! runs from sending MAIL to reading the final reply to the data, which ringmail sends after
//! the message is durable (fsync'd). Messages are generated and stuffed before the clock
//! starts. Threads claim message numbers from one counter, so the total is exact.

use super::txn::{self, is_timeout, lmtp_connect, transaction};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::{check_deadline, join_clients, spawn_clients, user_name, Clients};
use crate::{cpu, Common};
use loadtest::client::lmtp::{stuff, Lmtp};
use loadtest::message::{generate, MessageSpec};
use loadtest::report::{self, mib_per_sec, LatencySummary, Summary};

/// Refused transactions tolerated before a run is abandoned as misconfigured.
const MAX_REFUSED: u64 = 100;
/// Tries per message when transactions stall.
const MAX_ATTEMPTS: u32 = 3;

#[derive(Args, Debug, Clone)]
pub struct Target {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 24)]
    lmtp_port: u16,
    #[command(flatten)]
    mail: Mail,
    /// The server's process id, to report its CPU time per thread.
    #[arg(long)]
    server_pid: Option<u32>,
    /// A reply that takes longer than this many seconds marks the transaction stalled: the
    /// connection is dropped and the message retried on a new one (at most twice).
    #[arg(long, default_value_t = 5)]
    stall_timeout: u64,
}

/// The mail `seed` and `deliver` send and `maildir` writes: how many messages, to whom, how
/// large. Message `index` goes to user `index % user-count`, with the same bytes each time.
#[derive(Args, Debug, Clone)]
pub struct Mail {
    /// Recipient pattern; `%d` becomes 0..user-count, spread round-robin.
    #[arg(long, default_value = "user%d")]
    pub users: String,
    #[arg(long, default_value_t = 1)]
    pub user_count: u64,
    /// Messages in all.
    #[arg(long)]
    pub messages: u64,
    /// Size of each message in bytes, headers included.
    #[arg(long, default_value_t = 4096)]
    pub size: usize,
    /// The envelope sender, and the From: field.
    #[arg(long, default_value = "loadtest@example.org")]
    pub from: String,
}

impl Mail {
    /// Message `index`: the number of the user it goes to, and what it is (its recipient in
    /// `to`).
    pub fn message(&self, index: u64) -> (u64, MessageSpec) {
        let user = index % self.user_count;
        let spec = MessageSpec {
            index,
            size: self.size,
            from: self.from.clone(),
            to: format!("{}@example.org", user_name(&self.users, user)),
        };
        (user, spec)
    }
}

#[derive(Args, Debug)]
pub struct SeedArgs {
    #[command(flatten)]
    target: Target,
    /// Concurrent LMTP connections.
    #[arg(long, default_value_t = 4)]
    clients: usize,
}

#[derive(Args, Debug)]
pub struct DeliverArgs {
    #[command(flatten)]
    target: Target,
    /// Concurrent LMTP connections.
    #[arg(long, default_value_t = 16)]
    clients: usize,
}

#[derive(Debug, Serialize)]
struct DeliverReport {
    clients: usize,
    message_size: usize,
    delivered: u64,
    refused: u64,
    /// Transactions abandoned after `stall_timeout` without a reply (then retried).
    stalled: u64,
    seconds: f64,
    messages_per_sec: f64,
    mib_per_sec: f64,
    pipelining: bool,
    latency: LatencySummary,
    /// Server CPU per thread name over the run, % of one core (with --server-pid).
    server_cpu_percent: Vec<(String, f64)>,
    /// Every message's latency, for the summary's curve; `latency` has the figures.
    #[serde(skip)]
    histogram: Histogram<u64>,
}

impl DeliverReport {
    fn summary(&self) -> Summary {
        txn::summary("delivery", self.messages_per_sec, &self.histogram)
    }
}

pub fn seed(args: &SeedArgs) -> anyhow::Result<()> {
    let report = run(&args.target, args.clients)?;
    if report.stalled > 0 {
        println!(
            "stalled {} (no reply within {} s: connection dropped, message retried)",
            report.stalled, args.target.stall_timeout
        );
    }
    print_server_cpu(&report);
    println!(
        "seeded {} messages of {} bytes over {} clients in {:.1} s ({:.0} messages/s, {:.1} MiB/s)",
        report.delivered,
        report.message_size,
        report.clients,
        report.seconds,
        report.messages_per_sec,
        report.mib_per_sec
    );
    args.target.common.write_report("seed", report.summary(), &report)
}

/// One line: the server's busiest threads over the run.
fn print_server_cpu(report: &DeliverReport) {
    if report.server_cpu_percent.is_empty() {
        return;
    }
    let threads: Vec<String> = report
        .server_cpu_percent
        .iter()
        .map(|(name, pct)| format!("{name} {pct:.0} %"))
        .collect();
    println!("server cpu (% of one core): {}", threads.join(", "));
}

pub fn deliver(args: &DeliverArgs) -> anyhow::Result<()> {
    let report = run(&args.target, args.clients)?;
    println!(
        "LMTP delivery: {} clients, {} messages of {} bytes in {:.2} s",
        report.clients, report.delivered, report.message_size, report.seconds
    );
    println!(
        "{:.0} messages/s ({:.1} MiB/s), pipelining {}",
        report.messages_per_sec,
        report.mib_per_sec,
        if report.pipelining { "on" } else { "off" }
    );
    println!(
        "latency: {}  (mean {})",
        report.latency.line(),
        report::format_micros(report.latency.mean_us as u64)
    );
    args.target.common.write_report("deliver", report.summary(), &report)
}

/// What every client thread shares.
struct Shared {
    target: Target,
    addr: SocketAddr,
    next: AtomicU64,
    refused: AtomicU64,
    stalled: AtomicU64,
    /// Set by a failing client so the others stop instead of running out the clock.
    abort: AtomicBool,
    deadline: Instant,
    start: Barrier,
}

impl Clients for Shared {
    fn abort(&self) -> &AtomicBool {
        &self.abort
    }
}

struct ClientResult {
    histogram: Histogram<u64>,
    delivered: u64,
    pipelining: bool,
}

fn run(target: &Target, clients: usize) -> anyhow::Result<DeliverReport> {
    target.common.check()?;
    if clients == 0 || target.mail.user_count == 0 {
        bail!("--clients and --user-count must be at least 1");
    }
    let shared = Arc::new(Shared {
        target: target.clone(),
        addr: SocketAddr::new(target.common.host, target.lmtp_port),
        next: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        stalled: AtomicU64::new(0),
        abort: AtomicBool::new(false),
        deadline: Instant::now() + target.common.timeout(),
        // The clients and this thread: the clock starts when every connection is ready.
        start: Barrier::new(clients + 1),
    });
    let threads = spawn_clients(&shared, clients, |shared, _| client(shared));
    let threads_before = target.server_pid.map(cpu::by_thread);
    shared.start.wait();
    let started = Instant::now();
    let results = join_clients(threads)?;
    let elapsed = started.elapsed();
    let mut histogram = report::latency_histogram();
    let mut delivered = 0;
    let mut pipelining = true;
    for r in results {
        histogram.add(&r.histogram).context("merging histograms")?;
        delivered += r.delivered;
        pipelining &= r.pipelining;
    }
    let server_cpu_percent = match (target.server_pid, threads_before) {
        (Some(pid), Some(before)) => cpu::thread_percentages(&before, &cpu::by_thread(pid), elapsed),
        _ => Vec::new(),
    };
    let refused = shared.refused.load(Ordering::Relaxed);
    let stalled = shared.stalled.load(Ordering::Relaxed);
    Ok(DeliverReport {
        stalled,
        clients,
        message_size: target.mail.size,
        delivered,
        refused,
        seconds: elapsed.as_secs_f64(),
        messages_per_sec: delivered as f64 / elapsed.as_secs_f64().max(1e-9),
        mib_per_sec: mib_per_sec(delivered * target.mail.size as u64, elapsed),
        pipelining,
        latency: LatencySummary::from_histogram(&histogram),
        server_cpu_percent,
        histogram,
    })
}

/// One connection's life: connect, LHLO, wait for the others, then transactions until the
/// shared counter runs out.
fn client(shared: &Shared) -> anyhow::Result<ClientResult> {
    // Whatever happens, this thread must reach the barrier or the others wait forever.
    let connected = connect(shared);
    shared.start.wait();
    let (mut lmtp, pipelining) = connected?;
    let target = &shared.target;
    let mut histogram = report::latency_histogram();
    let mut delivered = 0;
    loop {
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= target.mail.messages || shared.abort.load(Ordering::Relaxed) {
            break;
        }
        check_deadline(shared.deadline, "delivering")?;
        let (_, spec) = target.mail.message(index);
        let wire = stuff(&generate(&spec));
        let rcpt = spec.to;
        for attempt in 1..=MAX_ATTEMPTS {
            let sent = Instant::now();
            match transaction(&mut lmtp, &target.mail.from, &rcpt, &wire, pipelining) {
                Ok(Ok(())) => {
                    report::record(&mut histogram, sent.elapsed());
                    delivered += 1;
                }
                Ok(Err(reply)) => {
                    let refused = shared.refused.fetch_add(1, Ordering::Relaxed) + 1;
                    if refused == 1 || refused >= MAX_REFUSED {
                        eprintln!("message {index} to {rcpt} refused: {} {}", reply.code, reply.text);
                    }
                    if refused >= MAX_REFUSED {
                        bail!("{refused} transactions refused; giving up");
                    }
                }
                Err(e) if is_timeout(&e) && attempt < MAX_ATTEMPTS => {
                    // The server may have lost part of the data (so it still waits for the
                    // final dot): this connection's state is unknown, start a new one.
                    let stalled = shared.stalled.fetch_add(1, Ordering::Relaxed) + 1;
                    if stalled == 1 {
                        eprintln!(
                            "message {index} to {rcpt}: no reply within {} s; reconnecting and retrying \
                             (further stalls are only counted)",
                            target.stall_timeout
                        );
                    }
                    lmtp = connect(shared)?.0;
                    continue;
                }
                Err(e) => return Err(anyhow::Error::new(e).context(format!("message {index} to {rcpt}"))),
            }
            break;
        }
    }
    // A polite end; the figures are already taken, so a failure here does not matter.
    let _ = lmtp.cmd("QUIT");
    Ok(ClientResult {
        histogram,
        delivered,
        pipelining,
    })
}

fn connect(shared: &Shared) -> anyhow::Result<(Lmtp, bool)> {
    lmtp_connect(shared.addr, Duration::from_secs(shared.target.stall_timeout.max(1)))
}
