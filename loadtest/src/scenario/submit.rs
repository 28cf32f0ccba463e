//! SMTP submission (RFC 6409) with concurrent authenticated clients: `submit` measures
//! messages/s and per-message latency through the submission path (TLS, AUTH, the header
//! edits) to local recipients.
//!
//! Each client is a thread with one connection over TLS — implicit (`--submissions-port`)
//! or STARTTLS (`--submission-port`) — that logs in once with AUTH PLAIN as its own user
//! (client `c` is user `c % user-count`), then runs transactions back to back, as a mail
//! client sending a batch does: MAIL FROM its own address, RCPT TO a local user (message `i`
//! goes to user `i % user-count`, as `deliver` spreads them), DATA. MAIL, RCPT and DATA go
//! in one write when the server offers PIPELINING (RFC 2920). Each message has a From: field
//! of the sender's own address, which a submission server checks against the login. A
//! message's latency runs from sending MAIL to reading the reply to the data, which ringmail
//! sends once local delivery is durable. Logging in happens before the clock starts.
//! Threads claim message numbers from one counter, so the total is exact.

use super::txn::{self, is_timeout, transaction};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hdrhistogram::Histogram;
use rustls::ClientConfig;
use serde::Serialize;

use super::{check_deadline, join_clients, spawn_clients, user_name, Clients};
use crate::cpu::{self, percent_of_core, CpuTime};
use crate::Common;
use loadtest::client::smtp::{stuff, Smtp};
use loadtest::client::{tls_config, Transport};
use loadtest::message::{generate, MessageSpec};
use loadtest::report::{self, mib_per_sec, LatencySummary};

/// Refused transactions tolerated before a run is abandoned as misconfigured.
const MAX_REFUSED: u64 = 100;
/// Tries per message when transactions stall.
const MAX_ATTEMPTS: u32 = 3;
/// The name the harness gives in EHLO.
const EHLO_NAME: &str = "loadtest.invalid";

#[derive(Args, Debug, Clone)]
pub struct SubmitArgs {
    #[command(flatten)]
    common: Common,
    /// Submission port (plaintext, upgraded with STARTTLS). Give this or --submissions-port.
    #[arg(long)]
    submission_port: Option<u16>,
    /// Implicit-TLS submission port (RFC 8314). Give this or --submission-port.
    #[arg(long)]
    submissions_port: Option<u16>,
    /// The server's certificate (ringmail: data_dir/cert.pem), the only one trusted.
    #[arg(long)]
    cafile: PathBuf,
    /// Name the certificate is checked against.
    #[arg(long, default_value = "localhost")]
    tls_name: String,
    /// Login name pattern; `%d` becomes 0..user-count. Each user's address is NAME@DOMAIN.
    #[arg(long, default_value = "user%d")]
    users: String,
    #[arg(long, default_value_t = 1)]
    user_count: u64,
    /// Domain of the users' addresses (ringmail: one of [server] domains).
    #[arg(long, default_value = "example.org")]
    domain: String,
    /// Every user's password.
    #[arg(long)]
    password: String,
    /// Concurrent connections, each logged in once.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Messages to submit in all.
    #[arg(long)]
    messages: u64,
    /// Size of each message in bytes as sent, headers included (the server adds Received:).
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// The server's process id, to report its CPU time per thread.
    #[arg(long)]
    server_pid: Option<u32>,
    /// A reply that takes longer than this many seconds marks the transaction stalled: the
    /// connection is dropped and the message retried on a new one (at most twice).
    #[arg(long, default_value_t = 5)]
    stall_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Tls {
    /// TLS from the first byte (port 465 style).
    Implicit,
    /// Plaintext, then STARTTLS (port 587 style).
    Starttls,
}

impl SubmitArgs {
    /// The port and how TLS starts there; exactly one of the two ports must be given.
    fn endpoint(&self) -> anyhow::Result<(u16, Tls)> {
        match (self.submission_port, self.submissions_port) {
            (Some(p), None) => Ok((p, Tls::Starttls)),
            (None, Some(p)) => Ok((p, Tls::Implicit)),
            _ => bail!("give exactly one of --submission-port (STARTTLS) and --submissions-port (implicit TLS)"),
        }
    }

    fn login_name(&self, user: u64) -> String {
        user_name(&self.users, user)
    }

    fn address(&self, user: u64) -> String {
        address(&self.users, user, &self.domain)
    }
}

/// The address of user `n`: the login name from `pattern`, at `domain`.
fn address(pattern: &str, n: u64, domain: &str) -> String {
    format!("{}@{domain}", user_name(pattern, n))
}

/// The user client `client` logs in as.
fn sender_of(client: usize, user_count: u64) -> u64 {
    client as u64 % user_count
}

/// The user message `index` goes to.
fn recipient_of(index: u64, user_count: u64) -> u64 {
    index % user_count
}

/// Message `index` from `from` to `to`, as the client writes it (not yet dot-stuffed).
fn message(index: u64, size: usize, from: &str, to: &str) -> Vec<u8> {
    generate(&MessageSpec {
        index,
        size,
        from: from.to_owned(),
        to: to.to_owned(),
    })
}

#[derive(Debug, Serialize)]
struct SubmitReport {
    tls: Tls,
    clients: usize,
    users: u64,
    message_size: usize,
    submitted: u64,
    refused: u64,
    /// Transactions abandoned after `stall_timeout` without a reply (then retried).
    stalled: u64,
    /// Connecting, TLS and AUTH of every client, before the clock starts.
    login_seconds: f64,
    seconds: f64,
    messages_per_sec: f64,
    mib_per_sec: f64,
    pipelining: bool,
    latency: LatencySummary,
    /// Server CPU over the run, % of one core (with --server-pid): all threads, and per
    /// thread name.
    server_cpu_percent: Option<f64>,
    server_threads_cpu_percent: Vec<(String, f64)>,
    /// This harness's CPU over the run, % of one core (it shares the machine).
    harness_cpu_percent: Option<f64>,
    /// Every message's latency, for the summary's curve; `latency` has the figures.
    #[serde(skip)]
    histogram: Histogram<u64>,
}

pub fn run(args: &SubmitArgs) -> anyhow::Result<()> {
    let report = measure(args)?;
    println!(
        "SMTP submission ({}): {} clients as {} users, {} messages of {} bytes in {:.2} s (logins took {:.2} s)",
        match report.tls {
            Tls::Implicit => "implicit TLS",
            Tls::Starttls => "STARTTLS",
        },
        report.clients,
        report.users,
        report.submitted,
        report.message_size,
        report.seconds,
        report.login_seconds
    );
    println!(
        "{:.0} messages/s ({:.1} MiB/s), pipelining {}, refused {}, stalled {}",
        report.messages_per_sec,
        report.mib_per_sec,
        if report.pipelining { "on" } else { "off" },
        report.refused,
        report.stalled
    );
    println!(
        "latency: {}  (mean {})",
        report.latency.line(),
        report::format_micros(report.latency.mean_us as u64)
    );
    if let Some(total) = report.server_cpu_percent {
        let threads: Vec<String> = report
            .server_threads_cpu_percent
            .iter()
            .map(|(name, pct)| format!("{name} {pct:.0} %"))
            .collect();
        println!(
            "server cpu (% of one core): {total:.0} % in all; {}",
            threads.join(", ")
        );
    }
    if let Some(harness) = report.harness_cpu_percent {
        println!("harness cpu: {harness:.0} % of one core");
    }
    let summary = txn::summary("submission", report.messages_per_sec, &report.histogram);
    args.common.write_report("submit", summary, &report)?;
    // A refused message is not in the figures, and a run that needs refusing is not the
    // measurement asked for (wrong users, domain or password): say so in the exit status.
    if report.refused > 0 {
        bail!(
            "{} transactions refused (the first is shown above); {} of {} messages submitted",
            report.refused,
            report.submitted,
            args.messages
        );
    }
    Ok(())
}

/// What every client thread shares.
struct Shared {
    args: SubmitArgs,
    addr: SocketAddr,
    tls: Tls,
    tls_config: Arc<ClientConfig>,
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
    submitted: u64,
    pipelining: bool,
}

fn measure(args: &SubmitArgs) -> anyhow::Result<SubmitReport> {
    args.common.check()?;
    let (port, tls) = args.endpoint()?;
    if args.clients == 0 || args.user_count == 0 {
        bail!("--clients and --user-count must be at least 1");
    }
    let tls_config = tls_config(&args.cafile).with_context(|| format!("reading {}", args.cafile.display()))?;
    let shared = Arc::new(Shared {
        args: args.clone(),
        addr: SocketAddr::new(args.common.host, port),
        tls,
        tls_config,
        next: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        stalled: AtomicU64::new(0),
        abort: AtomicBool::new(false),
        deadline: Instant::now() + args.common.timeout(),
        // The clients and this thread: the clock starts when every client has logged in.
        start: Barrier::new(args.clients + 1),
    });
    let login_started = Instant::now();
    let threads = spawn_clients(&shared, args.clients, client);
    shared.start.wait();
    let login_seconds = login_started.elapsed().as_secs_f64();
    let threads_before = args.server_pid.map(cpu::by_thread);
    let server_before = args.server_pid.and_then(|pid| CpuTime::of(Some(pid)));
    let harness_before = CpuTime::of(None);
    let started = Instant::now();
    let results = join_clients(threads)?;
    let elapsed = started.elapsed();
    let mut histogram = report::latency_histogram();
    let mut submitted = 0;
    let mut pipelining = true;
    for r in results {
        histogram.add(&r.histogram).context("merging histograms")?;
        submitted += r.submitted;
        pipelining &= r.pipelining;
    }
    let server_threads_cpu_percent = match (args.server_pid, threads_before) {
        (Some(pid), Some(before)) => cpu::thread_percentages(&before, &cpu::by_thread(pid), elapsed),
        _ => Vec::new(),
    };
    let since =
        |before: Option<CpuTime>, pid: Option<u32>| Some(percent_of_core(CpuTime::of(pid)?.since(&before?), elapsed));
    let server_cpu_percent = args.server_pid.and_then(|pid| since(server_before, Some(pid)));
    let harness_cpu_percent = since(harness_before, None);
    Ok(SubmitReport {
        tls,
        clients: args.clients,
        users: args.user_count,
        message_size: args.size,
        submitted,
        refused: shared.refused.load(Ordering::Relaxed),
        stalled: shared.stalled.load(Ordering::Relaxed),
        login_seconds,
        seconds: elapsed.as_secs_f64(),
        messages_per_sec: submitted as f64 / elapsed.as_secs_f64().max(1e-9),
        mib_per_sec: mib_per_sec(submitted * args.size as u64, elapsed),
        pipelining,
        latency: LatencySummary::from_histogram(&histogram),
        server_cpu_percent,
        server_threads_cpu_percent,
        harness_cpu_percent,
        histogram,
    })
}

/// One connection's life: connect, TLS, EHLO, AUTH, wait for the others, then transactions
/// until the shared counter runs out.
fn client(shared: &Shared, number: usize) -> anyhow::Result<ClientResult> {
    let args = &shared.args;
    let user = sender_of(number, args.user_count);
    // Whatever happens, this thread must reach the barrier or the others wait forever.
    let connected = login(shared, user);
    shared.start.wait();
    let (mut smtp, pipelining) = connected?;
    let from = args.address(user);
    let mut histogram = report::latency_histogram();
    let mut submitted = 0;
    loop {
        let index = shared.next.fetch_add(1, Ordering::Relaxed);
        if index >= args.messages || shared.abort.load(Ordering::Relaxed) {
            break;
        }
        check_deadline(shared.deadline, "submitting")?;
        let rcpt = args.address(recipient_of(index, args.user_count));
        let wire = stuff(&message(index, args.size, &from, &rcpt));
        for attempt in 1..=MAX_ATTEMPTS {
            let sent = Instant::now();
            match transaction(&mut smtp, &from, &rcpt, &wire, pipelining) {
                Ok(Ok(())) => {
                    report::record(&mut histogram, sent.elapsed());
                    submitted += 1;
                }
                Ok(Err(reply)) => {
                    let refused = shared.refused.fetch_add(1, Ordering::Relaxed) + 1;
                    if refused == 1 || refused >= MAX_REFUSED {
                        eprintln!(
                            "message {index} from {from} to {rcpt} refused: {} {}",
                            reply.code, reply.text
                        );
                    }
                    if refused >= MAX_REFUSED {
                        bail!("{refused} transactions refused; giving up");
                    }
                }
                Err(e) if is_timeout(&e) && attempt < MAX_ATTEMPTS => {
                    // The connection's state is unknown (the server may still be reading
                    // data): start a new one, logging in again.
                    let stalled = shared.stalled.fetch_add(1, Ordering::Relaxed) + 1;
                    if stalled == 1 {
                        eprintln!(
                            "message {index} from {from}: no reply within {} s; reconnecting and retrying \
                             (further stalls are only counted)",
                            args.stall_timeout
                        );
                    }
                    smtp = login(shared, user)?.0;
                    continue;
                }
                Err(e) => return Err(anyhow::Error::new(e).context(format!("message {index} from {from} to {rcpt}"))),
            }
            break;
        }
    }
    // A polite end; the figures are already taken, so a failure here does not matter.
    let _ = smtp.cmd("QUIT");
    Ok(ClientResult {
        histogram,
        submitted,
        pipelining,
    })
}

/// A connection logged in as `user` over TLS; whether the server offers PIPELINING.
fn login(shared: &Shared, user: u64) -> anyhow::Result<(Smtp, bool)> {
    let args = &shared.args;
    let addr = shared.addr;
    let mut smtp = match shared.tls {
        Tls::Implicit => {
            let t = Transport::connect_tls(addr, shared.tls_config.clone(), &args.tls_name)
                .with_context(|| format!("TLS to {addr}"))?;
            let mut smtp = Smtp::new(t).context("SMTP greeting")?;
            smtp.ehlo(EHLO_NAME).context("EHLO")?;
            smtp
        }
        Tls::Starttls => {
            let t = Transport::connect(addr).with_context(|| format!("connecting to {addr}"))?;
            let mut smtp = Smtp::new(t).context("SMTP greeting")?;
            let caps = smtp.ehlo(EHLO_NAME).context("EHLO")?;
            if !caps.iter().any(|k| k.eq_ignore_ascii_case("STARTTLS")) {
                bail!("the server at {addr} does not offer STARTTLS");
            }
            smtp.starttls(shared.tls_config.clone(), &args.tls_name)
                .context("STARTTLS")?;
            smtp
        }
    };
    smtp.t
        .set_read_timeout(Duration::from_secs(args.stall_timeout.max(1)))?;
    let name = args.login_name(user);
    let reply = smtp.auth_plain(&name, &args.password).context("AUTH PLAIN")?;
    if reply.code != 235 {
        bail!("AUTH PLAIN as {name} refused: {} {}", reply.code, reply.text);
    }
    let pipelining = smtp.caps.iter().any(|k| k.eq_ignore_ascii_case("PIPELINING"));
    Ok((smtp, pipelining))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SubmitArgs,
    }

    fn parse(extra: &[&str]) -> Result<SubmitArgs, clap::Error> {
        let base = ["submit", "--cafile", "cert.pem", "--password", "pw", "--messages", "10"];
        Cli::try_parse_from(base.iter().chain(extra)).map(|c| c.args)
    }

    #[test]
    fn addresses_from_the_user_template() {
        assert_eq!(address("user%d", 3, "example.org"), "user3@example.org");
        assert_eq!(address("bench", 3, "example.org"), "bench@example.org");
        let args = parse(&["--users", "s%d", "--domain", "mail.test"]).unwrap();
        assert_eq!(args.login_name(12), "s12");
        assert_eq!(args.address(12), "s12@mail.test");
    }

    #[test]
    fn clients_log_in_as_their_own_user_and_recipients_spread() {
        let senders: Vec<u64> = (0..6).map(|c| sender_of(c, 4)).collect();
        assert_eq!(senders, [0, 1, 2, 3, 0, 1]);
        let rcpts: Vec<u64> = (0..6).map(|i| recipient_of(i, 4)).collect();
        assert_eq!(rcpts, [0, 1, 2, 3, 0, 1]);
        assert_eq!(recipient_of(7, 1), 0);
    }

    #[test]
    fn message_has_the_senders_from_and_the_size() {
        let m = message(5, 4096, "user3@example.org", "user5@example.org");
        assert_eq!(m.len(), 4096);
        let text = String::from_utf8(m).unwrap();
        let (head, _) = text.split_once("\r\n\r\n").unwrap();
        let from: Vec<&str> = head.lines().filter(|l| l.starts_with("From:")).collect();
        assert_eq!(from, ["From: Load Test <user3@example.org>"]);
        assert!(head.lines().any(|l| l == "To: <user5@example.org>"), "{head}");
        // Stuffed for DATA: ends with the terminator, and no line is a lone dot.
        let wire = stuff(text.as_bytes());
        assert!(wire.ends_with(b"\r\n.\r\n"));
        assert!(!wire[..wire.len() - 5].windows(5).any(|w| w == b"\r\n.\r\n"));
    }

    #[test]
    fn exactly_one_port() {
        assert_eq!(
            parse(&["--submissions-port", "465"]).unwrap().endpoint().unwrap(),
            (465, Tls::Implicit)
        );
        assert_eq!(
            parse(&["--submission-port", "587"]).unwrap().endpoint().unwrap(),
            (587, Tls::Starttls)
        );
        assert!(parse(&[]).unwrap().endpoint().is_err());
        assert!(parse(&["--submission-port", "587", "--submissions-port", "465"])
            .unwrap()
            .endpoint()
            .is_err());
    }

    #[test]
    fn defaults() {
        let args = parse(&["--submissions-port", "465"]).unwrap();
        assert_eq!(args.clients, 16);
        assert_eq!(args.size, 4096);
        assert_eq!(args.users, "user%d");
        assert_eq!(args.domain, "example.org");
        assert_eq!(args.tls_name, "localhost");
    }
}
