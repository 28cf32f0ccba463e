//! `fanout`: with N sessions in IDLE, deliver M messages over LMTP at a set rate, each to a
//! random user with a session, and time each message from its delivery to the untagged
//! EXISTS that announces it.
//!
//! Two latencies per message. From the scheduled start of its delivery (message i is due
//! at i/rate seconds): a sender that falls behind does not hide the delay it causes
//! (coordinated omission), and the figure includes the LMTP transaction itself. And from
//! the LMTP reply that acknowledged it (the message is durable then): what the client
//! waits once the message is the server's. A server may announce a message before its
//! LMTP reply is read; such a latency counts as 0 and is counted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use super::fleet::{wall_micros, Fleet, SessionArgs};
use super::idle::Setup;
use super::txn::{lmtp_connect, transaction};
use super::{check_deadline, user_name};
use loadtest::client::lmtp::stuff;
use loadtest::message::{generate, MessageSpec};
use loadtest::report::{self, Bar, Better, Headline, LatencyCurve, LatencySummary, Summary};

#[derive(Args, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub sessions: SessionArgs,
    #[arg(long, default_value_t = 24)]
    pub lmtp_port: u16,
    /// Messages to deliver, each to one random user that has a session.
    #[arg(long, default_value_t = 1000)]
    pub deliveries: u64,
    /// Deliveries per second, on a fixed schedule.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Concurrent LMTP connections carrying the schedule.
    #[arg(long, default_value_t = 8)]
    pub lmtp_clients: usize,
    /// Size of each message in bytes.
    #[arg(long, default_value_t = 2048)]
    pub size: usize,
    #[arg(long, default_value = "loadtest@example.org")]
    pub from: String,
    /// Seed for the choice of recipients (the same seed, the same recipients).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds to wait after the last delivery for the EXISTS still missing.
    #[arg(long, default_value_t = 10)]
    pub wait: u64,
    /// Print each delivery whose LMTP reply came more than this many milliseconds after its
    /// scheduled start, with how late its sender began it and how long its transaction took
    /// (0: none). Says whether a tail is the server's (slow transactions, all connections at
    /// once) or a sender's (late starts).
    #[arg(long, default_value_t = 0.0)]
    pub slow_ms: f64,
}

/// One accepted delivery, wall-clock µs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub user: u64,
    pub scheduled_us: u64,
    pub acked_us: u64,
}

/// Deliveries paired with the EXISTS that announced them, user by user, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Matched {
    /// (from scheduled start, from acknowledgement) in µs, one pair per announced message.
    pub latencies: Vec<(u64, u64)>,
    /// Announced before their LMTP reply arrived.
    pub before_ack: u64,
    /// Delivered, never announced.
    pub missing: u64,
    /// Announced, never delivered by this run.
    pub unexpected: u64,
}

/// Pairs each user's deliveries with that user's arrivals, in time order: the k-th message
/// delivered to a user is the k-th new message its session saw.
pub fn match_arrivals(sent: &[Sent], arrivals: &HashMap<u64, Vec<u64>>) -> Matched {
    let mut by_user: HashMap<u64, Vec<Sent>> = HashMap::new();
    for s in sent {
        by_user.entry(s.user).or_default().push(*s);
    }
    let mut matched = Matched::default();
    for (user, sends) in &mut by_user {
        sends.sort_by_key(|s| s.scheduled_us);
        let mut seen = arrivals.get(user).cloned().unwrap_or_default();
        seen.sort_unstable();
        for (s, &at) in sends.iter().zip(&seen) {
            if at < s.acked_us {
                matched.before_ack += 1;
            }
            matched
                .latencies
                .push((at.saturating_sub(s.scheduled_us), at.saturating_sub(s.acked_us)));
        }
        matched.missing += sends.len().saturating_sub(seen.len()) as u64;
        matched.unexpected += seen.len().saturating_sub(sends.len()) as u64;
    }
    for (user, seen) in arrivals {
        if !by_user.contains_key(user) {
            matched.unexpected += seen.len() as u64;
        }
    }
    matched
}

/// A recipient for message `i`: splitmix64 of (seed, i), so runs repeat.
fn pick(seed: u64, i: u64, users: u64) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(i)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % users
}

#[derive(Debug, Serialize)]
struct FanoutReport {
    tls: bool,
    sessions_open: u64,
    setup_sessions_per_sec: f64,
    deliveries: u64,
    accepted: u64,
    refused: u64,
    target_rate: f64,
    achieved_rate: f64,
    announced: u64,
    missing: u64,
    unexpected: u64,
    announced_before_ack: u64,
    /// From each delivery's scheduled start to its EXISTS (coordinated-omission corrected).
    delivery_to_exists: LatencySummary,
    /// From each delivery's LMTP acknowledgement to its EXISTS.
    ack_to_exists: LatencySummary,
    /// The LMTP transactions themselves.
    lmtp_latency: LatencySummary,
    sessions_closed_by_server: u64,
}

pub fn run(args: &FanoutArgs) -> anyhow::Result<()> {
    let s = &args.sessions;
    s.target.common.check()?;
    if args.rate.is_nan() || args.rate <= 0.0 || args.lmtp_clients == 0 {
        bail!("--rate and --lmtp-clients must be positive");
    }
    let deadline = Instant::now() + s.target.common.timeout();
    let mut fleet = Fleet::open(s)?;
    let setup = Setup::of(&[&fleet], s.target.tls);
    if setup.failed > 0 {
        bail!("{} sessions could not be opened; fan-out needs them all", setup.failed);
    }
    // Each user's first session (index == user) is the one whose arrivals count.
    let tracked = s.sessions.min(s.user_count());
    let delivered = deliver(args, tracked, deadline)?;
    let wait_until = Instant::now() + Duration::from_secs(args.wait);
    let arrivals = loop {
        let all = fleet.arrivals()?;
        let by_user: HashMap<u64, Vec<u64>> = all.by_session.into_iter().filter(|(i, _)| *i < tracked).collect();
        let announced: usize = by_user.values().map(Vec::len).sum();
        if announced >= delivered.sent.len() || Instant::now() > wait_until {
            break (by_user, all.closed);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    fleet.close().context("closing the sessions")?;
    let matched = match_arrivals(&delivered.sent, &arrivals.0);
    let (mut from_start, mut from_ack) = (report::latency_histogram(), report::latency_histogram());
    for &(start, ack) in &matched.latencies {
        report::record(&mut from_start, Duration::from_micros(start));
        report::record(&mut from_ack, Duration::from_micros(ack));
    }
    let accepted = delivered.sent.len() as u64;
    let details = FanoutReport {
        tls: s.target.tls,
        sessions_open: setup.opened,
        setup_sessions_per_sec: setup.rate,
        deliveries: args.deliveries,
        accepted,
        refused: delivered.refused,
        target_rate: args.rate,
        achieved_rate: accepted as f64 / delivered.elapsed.as_secs_f64().max(1e-9),
        announced: matched.latencies.len() as u64,
        missing: matched.missing,
        unexpected: matched.unexpected,
        announced_before_ack: matched.before_ack,
        delivery_to_exists: LatencySummary::from_histogram(&from_start),
        ack_to_exists: LatencySummary::from_histogram(&from_ack),
        lmtp_latency: LatencySummary::from_histogram(&delivered.lmtp),
        sessions_closed_by_server: arrivals.1,
    };
    print(&details);
    let mut headlines = vec![Headline::new(
        "deliveries/s achieved",
        details.achieved_rate,
        "messages/s",
        Better::Higher,
    )];
    headlines.extend(Headline::latencies("delivery→EXISTS", &details.delivery_to_exists));
    headlines.extend(Headline::latencies("ack→EXISTS", &details.ack_to_exists));
    headlines.push(Headline::new(
        "never announced",
        details.missing as f64,
        "messages",
        Better::Lower,
    ));
    let summary = Summary {
        headlines,
        latency: vec![
            LatencyCurve::from_histogram("delivery→EXISTS", &from_start),
            LatencyCurve::from_histogram("ack→EXISTS", &from_ack),
            LatencyCurve::from_histogram("LMTP transaction", &delivered.lmtp),
        ],
        throughput: vec![Bar {
            name: "deliveries".into(),
            value: details.achieved_rate,
            unit: "messages/s".into(),
        }],
        ..Summary::default()
    };
    let scenario = if s.target.tls { "fanout-tls" } else { "fanout" };
    s.target.common.write_report(scenario, summary, &details)?;
    if details.missing > 0 {
        bail!("{} delivered messages were never announced by EXISTS", details.missing);
    }
    Ok(())
}

/// `--slow-ms`: one line for delivery `i` if it was acknowledged more than `over` after its
/// scheduled start.
fn note_if_slow(i: u64, late: Duration, transaction: Duration, over: Duration) {
    if late + transaction > over {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        eprintln!(
            "slow delivery {i}: sender {:.2} ms late, transaction {:.2} ms",
            ms(late),
            ms(transaction)
        );
    }
}

fn print(r: &FanoutReport) {
    println!(
        "delivered {} of {} at {:.0}/s (target {:.0}/s), {} refused; {} announced, {} missing, {} unexpected",
        r.accepted, r.deliveries, r.achieved_rate, r.target_rate, r.refused, r.announced, r.missing, r.unexpected
    );
    println!("delivery→EXISTS: {}", r.delivery_to_exists.line());
    println!(
        "ack→EXISTS:      {}  ({} announced before the ack)",
        r.ack_to_exists.line(),
        r.announced_before_ack
    );
    println!("LMTP transaction: {}", r.lmtp_latency.line());
}

struct Delivered {
    sent: Vec<Sent>,
    refused: u64,
    elapsed: Duration,
    lmtp: hdrhistogram::Histogram<u64>,
}

/// Runs the delivery schedule over `--lmtp-clients` connections.
fn deliver(args: &FanoutArgs, users: u64, deadline: Instant) -> anyhow::Result<Delivered> {
    let addr = SocketAddr::new(args.sessions.target.common.host, args.lmtp_port);
    let next = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let abort = AtomicBool::new(false);
    let sent = Mutex::new(Vec::with_capacity(args.deliveries as usize));
    let lmtp = Mutex::new(report::latency_histogram());
    let (start, start_wall) = (Instant::now(), wall_micros());
    let interval_us = 1e6 / args.rate;
    let slow = (args.slow_ms > 0.0).then(|| Duration::from_secs_f64(args.slow_ms / 1e3));
    let result = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.lmtp_clients)
            .map(|_| {
                scope.spawn(|| {
                    let result = (|| -> anyhow::Result<()> {
                        let (mut conn, pipelining) = lmtp_connect(addr, Duration::from_secs(30))?;
                        let mut histogram = report::latency_histogram();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= args.deliveries || abort.load(Ordering::Relaxed) {
                                break;
                            }
                            check_deadline(deadline, "delivering")?;
                            let offset = Duration::from_micros((i as f64 * interval_us) as u64);
                            if let Some(wait) = (start + offset).checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                            let user = pick(args.seed, i, users);
                            let rcpt = format!("{}@example.org", user_name(&args.sessions.target.users, user));
                            let spec = MessageSpec {
                                index: i,
                                size: args.size,
                                from: args.from.clone(),
                                to: rcpt.clone(),
                            };
                            let wire = stuff(&generate(&spec));
                            let began = Instant::now();
                            match transaction(&mut conn, &args.from, &rcpt, &wire, pipelining)
                                .with_context(|| format!("delivering message {i} to {rcpt}"))?
                            {
                                Ok(()) => {
                                    report::record(&mut histogram, began.elapsed());
                                    if let Some(over) = slow {
                                        note_if_slow(
                                            i,
                                            began.saturating_duration_since(start + offset),
                                            began.elapsed(),
                                            over,
                                        );
                                    }
                                    sent.lock().expect("not poisoned").push(Sent {
                                        user,
                                        scheduled_us: start_wall + offset.as_micros() as u64,
                                        acked_us: wall_micros(),
                                    });
                                }
                                Err(reply) => {
                                    if refused.fetch_add(1, Ordering::Relaxed) == 0 {
                                        eprintln!("message {i} to {rcpt} refused: {} {}", reply.code, reply.text);
                                    }
                                }
                            }
                        }
                        let _ = conn.cmd("QUIT");
                        lmtp.lock()
                            .expect("not poisoned")
                            .add(&histogram)
                            .context("merging histograms")?;
                        Ok(())
                    })();
                    if result.is_err() {
                        abort.store(true, Ordering::Relaxed);
                    }
                    result
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a delivery thread panicked")))
            })
            .collect::<anyhow::Result<Vec<()>>>()
    });
    result?;
    Ok(Delivered {
        sent: sent.into_inner().expect("not poisoned"),
        refused: refused.into_inner(),
        elapsed: start.elapsed(),
        lmtp: lmtp.into_inner().expect("not poisoned"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(user: u64, scheduled_us: u64, acked_us: u64) -> Sent {
        Sent {
            user,
            scheduled_us,
            acked_us,
        }
    }

    #[test]
    fn deliveries_pair_with_arrivals_in_order_per_user() {
        let sends = [
            sent(1, 100, 150),
            sent(2, 110, 170),
            sent(1, 200, 260),
            sent(3, 300, 350),
        ];
        // User 1 saw two messages (out of order in the list), user 2 one announced before
        // its ack, user 3 none; user 9 a message nobody sent.
        let arrivals = HashMap::from([(1, vec![290, 160]), (2, vec![165]), (9, vec![500])]);
        let m = match_arrivals(&sends, &arrivals);
        let mut latencies = m.latencies.clone();
        latencies.sort_unstable();
        assert_eq!(latencies, [(55, 0), (60, 10), (90, 30)]);
        assert_eq!((m.before_ack, m.missing, m.unexpected), (1, 1, 1));
    }

    #[test]
    fn recipients_are_spread_and_repeatable() {
        let picks: Vec<u64> = (0..1000).map(|i| pick(7, i, 10)).collect();
        assert_eq!(picks, (0..1000).map(|i| pick(7, i, 10)).collect::<Vec<_>>());
        for user in 0..10 {
            let n = picks.iter().filter(|&&p| p == user).count();
            assert!((50..=150).contains(&n), "user {user} got {n} of 1000");
        }
        assert_ne!(picks, (0..1000).map(|i| pick(8, i, 10)).collect::<Vec<_>>());
    }
}
