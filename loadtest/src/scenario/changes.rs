//! `changes`: what a change to one mailbox costs the sessions that have it selected, and what
//! a client that was away pays to catch up (issue 13's figures). The mailbox is filled
//! beforehand (`seed`); the scenario never adds or removes messages, it only flags them.
//!
//! 1. **Fan-out of a flag change**: `--watchers` sessions of the user select the INBOX and wait
//!    in IDLE; a writer session sets `\Flagged` on one message after another at `--rate`,
//!    each a message not flagged before, so each is one change every watcher must be told of
//!    (an untagged FETCH). The figure is the time from each STORE's scheduled send (a writer
//!    that falls behind does not hide the delay) to each watcher's FETCH for it. With
//!    `--server-pid`, the server's memory growth per watcher, selected and in IDLE, beside it.
//! 2. **Catching up**: `--rounds` times, `--batch` (10) more messages are flagged after a
//!    reader session noted the mailbox's HIGHESTMODSEQ m; the reader then times
//!    `UID FETCH 1:* (FLAGS) (CHANGEDSINCE m)` and `SELECT INBOX (QRESYNC (uidvalidity m))`,
//!    and each must report exactly the messages flagged since m.
//!
//! Before it starts, the writer clears `\Flagged` from the whole mailbox, so runs repeat.

use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use super::fleet::{wall_micros, ImapTarget};
use super::user_name;
use loadtest::client::imap::Imap;
use loadtest::client::Transport;
use loadtest::memory::Memory;
use loadtest::report::{self, Better, Headline, LatencyCurve, LatencySummary, Summary};

#[derive(Args, Debug)]
pub struct ChangesArgs {
    #[command(flatten)]
    pub target: ImapTarget,
    /// The user whose INBOX is measured (`--users` names the pattern; this is its `%d`).
    #[arg(long, default_value_t = 0)]
    pub user: u64,
    /// Sessions selected on the INBOX, in IDLE, that must hear of each change.
    #[arg(long, default_value_t = 50)]
    pub watchers: usize,
    /// Flag changes made while the watchers wait.
    #[arg(long, default_value_t = 200)]
    pub changes: usize,
    /// Flag changes per second, on a fixed schedule.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Rounds of "flag --batch messages, then CHANGEDSINCE and SELECT QRESYNC".
    #[arg(long, default_value_t = 50)]
    pub rounds: usize,
    /// Messages flagged in each round.
    #[arg(long, default_value_t = 10)]
    pub batch: usize,
    /// The server's process, for its memory per watcher.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Seconds to wait after the last change for FETCHes still missing.
    #[arg(long, default_value_t = 10)]
    pub wait: u64,
}

#[derive(Debug, Serialize)]
struct ChangesReport {
    tls: bool,
    messages: usize,
    watchers: usize,
    changes: usize,
    target_rate: f64,
    achieved_rate: f64,
    /// Watcher × change pairs never told.
    missing: u64,
    /// From each change's scheduled STORE to each watcher's FETCH.
    change_to_fetch: LatencySummary,
    /// The writer's STORE commands themselves.
    store_latency: LatencySummary,
    rounds: usize,
    batch: usize,
    changedsince: LatencySummary,
    select_qresync: LatencySummary,
    /// Server memory growth per watcher session (selected, in IDLE), bytes: RSS, anonymous.
    rss_per_watcher: Option<f64>,
    anon_per_watcher: Option<f64>,
}

pub fn run(args: &ChangesArgs) -> anyhow::Result<()> {
    let t = &args.target;
    t.common.check()?;
    if args.rate.is_nan() || args.rate <= 0.0 || args.batch == 0 {
        bail!("--rate and --batch must be positive");
    }
    let deadline = Instant::now() + t.common.timeout();
    let user = user_name(&t.users, args.user);
    let mut writer = Session::open(t, &user)?;
    writer.cmd("SELECT INBOX")?;
    writer.cmd("UID STORE 1:* -FLAGS.SILENT (\\Flagged)")?;
    let uids = writer.all_uids()?;
    let needed = args.changes + args.rounds * args.batch;
    if uids.len() < needed {
        bail!(
            "{user}'s INBOX has {} messages; {needed} are flagged one by one (seed more)",
            uids.len()
        );
    }
    let mut unflagged = spread(&uids, needed).into_iter();

    let before = args.server_pid.and_then(Memory::of_tree);
    let watchers = (0..args.watchers)
        .map(|_| Watcher::open(t, &user))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The last watcher's IDLE is answered; let the server settle before reading its memory.
    std::thread::sleep(Duration::from_millis(500));
    let after = args.server_pid.and_then(Memory::of_tree);
    let per_watcher = match (before, after) {
        (Some(b), Some(a)) => Some(a.per_session_since(&b, args.watchers as u64)),
        _ => None,
    };

    let arrivals: Vec<Mutex<Vec<u64>>> = (0..args.watchers).map(|_| Mutex::new(Vec::new())).collect();
    let (scheduled, store, elapsed) = std::thread::scope(|scope| -> anyhow::Result<_> {
        let handles: Vec<_> = watchers
            .into_iter()
            .zip(&arrivals)
            .map(|(w, into)| {
                let stop = w.stopper()?;
                let h = scope.spawn(move || w.collect(args.changes, into));
                Ok((h, stop))
            })
            .collect::<anyhow::Result<_>>()?;
        let started = Instant::now();
        let flagged = flag_on_schedule(&mut writer, &mut unflagged, args, deadline);
        let elapsed = started.elapsed();
        let give_up = Instant::now() + Duration::from_secs(args.wait);
        while handles.iter().any(|(h, _)| !h.is_finished()) && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(50));
        }
        for (h, stop) in handles {
            // A watcher still waiting is told to stop by closing its socket under it.
            let _ = stop.shutdown(std::net::Shutdown::Both);
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a watcher thread panicked")))?;
        }
        let (scheduled, store) = flagged?;
        Ok((scheduled, store, elapsed))
    })?;

    let mut to_fetch = report::latency_histogram();
    let mut missing = 0;
    for seen in &arrivals {
        let seen = seen.lock().expect("not poisoned");
        missing += scheduled.len().saturating_sub(seen.len()) as u64;
        for (at, due) in seen.iter().zip(&scheduled) {
            report::record(&mut to_fetch, Duration::from_micros(at.saturating_sub(*due)));
        }
    }

    let (changedsince, select) = catch_up(t, &user, &mut writer, &mut unflagged, args, deadline)?;
    let _ = writer.cmd("LOGOUT");

    let details = ChangesReport {
        tls: t.tls,
        messages: uids.len(),
        watchers: args.watchers,
        changes: args.changes,
        target_rate: args.rate,
        achieved_rate: args.changes as f64 / elapsed.as_secs_f64().max(1e-9),
        missing,
        change_to_fetch: LatencySummary::from_histogram(&to_fetch),
        store_latency: LatencySummary::from_histogram(&store),
        rounds: args.rounds,
        batch: args.batch,
        changedsince: LatencySummary::from_histogram(&changedsince),
        select_qresync: LatencySummary::from_histogram(&select),
        rss_per_watcher: per_watcher.map(|(rss, _, _)| rss),
        anon_per_watcher: per_watcher.map(|(_, _, anon)| anon),
    };
    print(&details);
    let mut headlines = Headline::latencies("change→FETCH", &details.change_to_fetch);
    headlines.extend(Headline::latencies("CHANGEDSINCE", &details.changedsince));
    headlines.extend(Headline::latencies("SELECT QRESYNC", &details.select_qresync));
    if let Some(anon) = details.anon_per_watcher {
        headlines.push(Headline::new(
            "anonymous memory per watcher",
            anon / 1024.0,
            "KiB",
            Better::Lower,
        ));
    }
    let summary = Summary {
        headlines,
        latency: vec![
            LatencyCurve::from_histogram("change→FETCH", &to_fetch),
            LatencyCurve::from_histogram("UID FETCH CHANGEDSINCE", &changedsince),
            LatencyCurve::from_histogram("SELECT QRESYNC", &select),
        ],
        ..Summary::default()
    };
    t.common.write_report("changes", summary, &details)?;
    if details.missing > 0 {
        bail!("{} flag changes were never told to a watcher", details.missing);
    }
    Ok(())
}

fn print(r: &ChangesReport) {
    println!(
        "{} messages, {} watchers in IDLE: {} flag changes at {:.1}/s (target {:.1}/s), {} never told",
        r.messages, r.watchers, r.changes, r.achieved_rate, r.target_rate, r.missing
    );
    println!("change→FETCH (each watcher): {}", r.change_to_fetch.line());
    println!("STORE:                       {}", r.store_latency.line());
    println!(
        "{} rounds of {} changes, then UID FETCH 1:* (FLAGS) (CHANGEDSINCE m): {}",
        r.rounds,
        r.batch,
        r.changedsince.line()
    );
    println!(
        "... and SELECT INBOX (QRESYNC (v m)):                  {}",
        r.select_qresync.line()
    );
    if let (Some(rss), Some(anon)) = (r.rss_per_watcher, r.anon_per_watcher) {
        println!(
            "server memory per watcher: RSS {:.2} KiB, anonymous {:.2} KiB",
            rss / 1024.0,
            anon / 1024.0
        );
    }
}

/// Flags one message after another on the `--rate` schedule; returns each change's scheduled
/// wall-clock time (µs) and the STORE latencies.
fn flag_on_schedule(
    writer: &mut Session,
    uids: &mut impl Iterator<Item = u32>,
    args: &ChangesArgs,
    deadline: Instant,
) -> anyhow::Result<(Vec<u64>, hdrhistogram::Histogram<u64>)> {
    let (start, start_wall) = (Instant::now(), wall_micros());
    let interval_us = 1e6 / args.rate;
    let mut scheduled = Vec::with_capacity(args.changes);
    let mut latency = report::latency_histogram();
    for i in 0..args.changes {
        super::check_deadline(deadline, "flagging")?;
        let offset = Duration::from_micros((i as f64 * interval_us) as u64);
        if let Some(wait) = (start + offset).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let uid = uids.next().context("out of messages to flag")?;
        let began = Instant::now();
        writer.cmd(&format!("UID STORE {uid} +FLAGS.SILENT (\\Flagged)"))?;
        report::record(&mut latency, began.elapsed());
        scheduled.push(start_wall + offset.as_micros() as u64);
    }
    Ok((scheduled, latency))
}

/// Part 2: rounds of `--batch` changes, each followed by a timed CHANGEDSINCE and a timed
/// SELECT QRESYNC from a reader that knew the mailbox before them.
fn catch_up(
    t: &ImapTarget,
    user: &str,
    writer: &mut Session,
    uids: &mut impl Iterator<Item = u32>,
    args: &ChangesArgs,
    deadline: Instant,
) -> anyhow::Result<(hdrhistogram::Histogram<u64>, hdrhistogram::Histogram<u64>)> {
    let mut reader = Session::open(t, user)?;
    reader.cmd("ENABLE QRESYNC")?;
    let mut known = reader.cmd("SELECT INBOX")?;
    let (mut changedsince, mut select) = (report::latency_histogram(), report::latency_histogram());
    for round in 0..args.rounds {
        super::check_deadline(deadline, "catching up")?;
        let validity = code_number(&known, "UIDVALIDITY").context("SELECT gave no UIDVALIDITY")?;
        let modseq = code_number(&known, "HIGHESTMODSEQ").context("SELECT gave no HIGHESTMODSEQ")?;
        for _ in 0..args.batch {
            let uid = uids.next().context("out of messages to flag")?;
            writer.cmd(&format!("UID STORE {uid} +FLAGS.SILENT (\\Flagged)"))?;
        }
        // The reader is selected too, so it may be told of them at its next command: a NOOP
        // takes that first, and what is timed is the command alone.
        reader.cmd("NOOP")?;
        let began = Instant::now();
        let fetched = reader.cmd(&format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})"))?;
        report::record(&mut changedsince, began.elapsed());
        let began = Instant::now();
        known = reader.cmd(&format!("SELECT INBOX (QRESYNC ({validity} {modseq}))"))?;
        report::record(&mut select, began.elapsed());
        for (what, lines) in [("CHANGEDSINCE", &fetched), ("SELECT QRESYNC", &known)] {
            let fetches = lines.iter().filter(|l| l.contains(" FETCH ")).count();
            if fetches != args.batch {
                bail!(
                    "round {round}: {what} since modseq {modseq} reported {fetches} messages, {} were flagged",
                    args.batch
                );
            }
        }
    }
    let _ = reader.cmd("LOGOUT");
    Ok((changedsince, select))
}

/// `[CODE n]` from an untagged OK among `lines`.
fn code_number(lines: &[String], code: &str) -> Option<u64> {
    let prefix = format!("[{code} ");
    lines.iter().find_map(|l| {
        let rest = &l[l.find(&prefix)? + prefix.len()..];
        rest[..rest.find(']')?].parse().ok()
    })
}

/// `count` of `uids`, spread evenly over the mailbox.
fn spread(uids: &[u32], count: usize) -> Vec<u32> {
    let step = uids.len() / count.max(1);
    (0..count).map(|i| uids[i * step.max(1)]).collect()
}

/// A logged-in session whose commands must succeed.
struct Session(Imap);

impl Session {
    fn open(t: &ImapTarget, user: &str) -> anyhow::Result<Session> {
        let addr = t.addr();
        let transport = match t.tls_config()? {
            Some(config) => Transport::connect_tls(addr, config, &t.tls_name),
            None => Transport::connect(addr),
        }
        .with_context(|| format!("connecting to {addr}"))?;
        let mut imap = Imap::new(transport).context("greeting")?;
        imap.login(user, &t.password)
            .context("LOGIN")?
            .expect_ok()
            .with_context(|| format!("LOGIN as {user}"))?;
        Ok(Session(imap))
    }

    /// The command's untagged lines; an error unless it ended in OK.
    fn cmd(&mut self, command: &str) -> anyhow::Result<Vec<String>> {
        let response = self
            .0
            .cmd(command)
            .with_context(|| format!("sending {command}"))?
            .expect_ok()
            .with_context(|| command.to_owned())?;
        Ok(response.lines())
    }

    fn all_uids(&mut self) -> anyhow::Result<Vec<u32>> {
        let lines = self.cmd("UID SEARCH ALL")?;
        let line = lines
            .iter()
            .find(|l| l.starts_with("* SEARCH"))
            .context("UID SEARCH gave no SEARCH response")?;
        line["* SEARCH".len()..]
            .split_ascii_whitespace()
            .map(|n| n.parse().with_context(|| format!("UID {n:?} in SEARCH")))
            .collect()
    }
}

/// A session selected on the INBOX and in IDLE.
struct Watcher(Imap);

impl Watcher {
    fn open(t: &ImapTarget, user: &str) -> anyhow::Result<Watcher> {
        let Session(mut imap) = Session::open(t, user)?;
        imap.cmd("SELECT INBOX")
            .context("SELECT")?
            .expect_ok()
            .context("SELECT INBOX")?;
        let tag = imap.tag();
        imap.t.send_line(&format!("{tag} IDLE")).context("IDLE")?;
        let reply = imap.read_response_line().context("IDLE")?;
        if !reply.starts_with(b"+") {
            bail!("IDLE answered {}", String::from_utf8_lossy(&reply));
        }
        Ok(Watcher(imap))
    }

    /// A handle that ends `collect` by closing the socket.
    fn stopper(&self) -> anyhow::Result<TcpStream> {
        self.0.t.tcp().try_clone().context("cloning a watcher's socket")
    }

    /// Notes the wall-clock time of each untagged FETCH until `count` have come or the
    /// socket is closed.
    fn collect(mut self, count: usize, into: &Mutex<Vec<u64>>) -> anyhow::Result<()> {
        let mut seen = 0;
        while seen < count {
            let Ok(line) = self.0.read_response_line() else {
                return Ok(());
            };
            if line.starts_with(b"* ") && line.windows(7).any(|w| w == b" FETCH ") {
                into.lock().expect("not poisoned").push(wall_micros());
                seen += 1;
            }
        }
        let _ = self.0.t.send_line("DONE");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_codes_are_read_from_untagged_lines() {
        let lines = vec![
            "* 3 EXISTS".to_owned(),
            "* OK [UIDVALIDITY 1700000000] UIDs valid".to_owned(),
            "* OK [HIGHESTMODSEQ 42] Highest".to_owned(),
        ];
        assert_eq!(code_number(&lines, "UIDVALIDITY"), Some(1_700_000_000));
        assert_eq!(code_number(&lines, "HIGHESTMODSEQ"), Some(42));
        assert_eq!(code_number(&lines, "UIDNEXT"), None);
    }

    #[test]
    fn the_messages_flagged_are_spread_and_distinct() {
        let uids: Vec<u32> = (1..=1000).collect();
        let picked = spread(&uids, 300);
        assert_eq!(picked.len(), 300);
        let mut unique = picked.clone();
        unique.dedup();
        assert_eq!(unique, picked);
        assert_eq!(spread(&uids, 10), [1, 101, 201, 301, 401, 501, 601, 701, 801, 901]);
    }
}
