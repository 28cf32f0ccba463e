//! The crash-consistency harness (`loadtest crash`): a mixed load on one ringmail server —
//! LMTP delivery, submission to local users and to a relay that never answers (the queue),
//! IMAP APPEND, STORE, EXPUNGE, MOVE, COPY, CREATE, RENAME and DELETE, POP3 DELE+QUIT — then
//! `kill -9` at a random moment, `ringmail fsck` on the stopped store, a restart, and a look
//! at every mailbox from the outside, round after round on one data directory.
//!
//! What must hold after every restart (`ledger`): each acknowledged message exactly once,
//! each acknowledged expunge gone for good, UIDs never reused and never below a UIDNEXT seen
//! before, UIDVALIDITY unchanged, UIDNEXT above every UID, HIGHESTMODSEQ never lower, the
//! queue holding every acknowledged relayed submission; and fsck's own invariants (bodies,
//! counts, quota usage, indexes, queue entries).

pub mod ledger;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::client::imap::Imap;
use crate::client::lmtp::Lmtp;
use crate::client::pop3::Pop3;
use crate::client::smtp::Smtp;
use crate::client::transport::Transport;
use crate::mixed::rng::Rng;
use ledger::{Fate, Ledger, Seen, Violation};

const PASSWORD: &str = "crash test";
/// The ledger's owner of u2's temporary folders (names, under the rules of messages).
const FOLDERS: &str = "u2 folders";
const DOMAIN: &str = "crash.test";
/// Where each user's messages live: (user, counted mailboxes, tracked mailboxes).
const USERS: [(&str, &[&str], &[&str]); 3] = [
    ("u1", &["INBOX", "Archive"], &["INBOX", "Archive", "Copies"]),
    ("u2", &["Work"], &["Work"]),
    ("u3", &["INBOX"], &["INBOX"]),
];

pub struct Settings {
    /// The `ringmail` binary.
    pub ringmail: PathBuf,
    /// Where the config and the data directory go (created; left in place).
    pub dir: PathBuf,
    pub rounds: u32,
    pub seed: u64,
    /// Milliseconds of load before each kill, drawn between the two.
    pub load_ms: (u64, u64),
    /// A line per round on stderr.
    pub verbose: bool,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub rounds: u32,
    pub kills: u32,
    /// Operations acknowledged by the server over all rounds.
    pub acknowledged: u64,
    /// The same, by kind.
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Invariant checks made (per message and per mailbox, per round, fsck's not counted).
    pub checks: u64,
    pub violations: Vec<String>,
}

/// Runs the rounds and returns what was found; an error means the harness itself could not
/// go on (the server would not start, say), not a broken invariant.
pub fn run(settings: &Settings) -> Result<Summary> {
    std::fs::create_dir_all(&settings.dir)?;
    let server = Server::prepare(settings)?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let counters = Arc::new(Counters::default());
    let mut summary = Summary::default();
    let mut rng = Rng::new(settings.seed, 0);
    for round in 0..settings.rounds {
        let mut child = server.start()?;
        if round == 0 {
            server.create_mailboxes()?;
        }
        let found = verify(&server, &ledger, &counters)?;
        report(&mut summary, round, "after restart", found);
        let stop = Arc::new(AtomicBool::new(false));
        let workers = spawn_workers(&server, &ledger, &counters, &stop, settings.seed, round);
        let (lo, hi) = settings.load_ms;
        std::thread::sleep(Duration::from_millis(lo + rng.next_u64() % (hi - lo + 1)));
        child.kill()?;
        child.wait()?;
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            let _ = w.join();
        }
        summary.kills += 1;
        let fsck = server.fsck()?;
        report(&mut summary, round, "fsck", fsck);
        server.wait_ports_free()?;
        if settings.verbose {
            eprintln!(
                "round {round}: {} acknowledged so far, {} violations",
                counters.acknowledged.load(Ordering::Relaxed),
                summary.violations.len()
            );
        }
        summary.rounds += 1;
    }
    // A last look after the last kill.
    let mut child = server.start()?;
    let found = verify(&server, &ledger, &counters)?;
    report(&mut summary, settings.rounds, "at the end", found);
    child.kill()?;
    child.wait()?;
    summary.acknowledged = counters.acknowledged.load(Ordering::Relaxed);
    summary.by_kind = counters.by_kind.lock().unwrap_or_else(|e| e.into_inner()).clone();
    summary.checks = ledger.lock().unwrap_or_else(|e| e.into_inner()).checked;
    Ok(summary)
}

fn report(summary: &mut Summary, round: u32, when: &str, found: Vec<Violation>) {
    for v in found {
        summary.violations.push(format!("round {round}, {when}: {v}"));
    }
}

/// What the load has done that the ledger does not hold: relayed submissions.
#[derive(Default)]
struct Counters {
    acknowledged: AtomicU64,
    by_kind: Mutex<BTreeMap<&'static str, u64>>,
    next_id: AtomicU64,
    relayed_sent: AtomicU64,
    relayed_acknowledged: AtomicU64,
}

impl Counters {
    fn id(&self, round: u32) -> String {
        format!("r{round}.{}@{DOMAIN}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn ack(&self, kind: &'static str) {
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
        *self
            .by_kind
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_default() += 1;
    }
}

/// The server under test: its binary, config and ports.
struct Server {
    ringmail: PathBuf,
    config: PathBuf,
    imap: SocketAddr,
    pop3: SocketAddr,
    submission: SocketAddr,
    lmtp: SocketAddr,
    log: PathBuf,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Server {
    /// Writes the config and creates the users (on a stopped store).
    fn prepare(settings: &Settings) -> Result<Server> {
        let port = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let server = Server {
            ringmail: settings.ringmail.clone(),
            config: settings.dir.join("crash.toml"),
            imap: port(free_port()?),
            pop3: port(free_port()?),
            submission: port(free_port()?),
            lmtp: port(free_port()?),
            log: settings.dir.join("server.log"),
        };
        let data = settings.dir.join("data");
        let config = format!(
            "[server]\ndata_dir = \"{data}\"\nworkers = 2\ndemo_user = false\ndomains = [\"{DOMAIN}\"]\n\
             [imap]\nlisten = [\"{imap}\"]\nlisten_tls = []\nlogin_type = \"plain-text-login\"\n\
             [pop3]\nlisten = [\"{pop3}\"]\nlisten_tls = []\nlogin_type = \"plain-text-login\"\n\
             [submission]\nlisten = [\"{submission}\"]\nlisten_tls = []\nlogin_type = \"plain-text-login\"\n\
             relay = \"127.0.0.1:1\"\nrelay_starttls = false\nretry_base = 3600\nretry_max = 3600\n\
             [lmtp]\nlisten = [\"{lmtp}\"]\n[limits]\nlogin_failure_delay = 0\n",
            data = data.display(),
            imap = server.imap,
            pop3 = server.pop3,
            submission = server.submission,
            lmtp = server.lmtp,
        );
        std::fs::write(&server.config, config)?;
        for (user, _, _) in USERS {
            let known = server.cli(&["user", "show", user], b"")?;
            if !known.status.success() {
                let out = server.cli(&["user", "add", user, "--password-stdin"], PASSWORD.as_bytes())?;
                if !out.status.success() {
                    bail!("user add {user}: {}", String::from_utf8_lossy(&out.stderr));
                }
            }
        }
        Ok(server)
    }

    fn cli(&self, args: &[&str], stdin: &[u8]) -> Result<std::process::Output> {
        let mut child = Command::new(&self.ringmail)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", self.ringmail.display()))?;
        child.stdin.take().expect("piped").write_all(stdin)?;
        Ok(child.wait_with_output()?)
    }

    /// Starts the server and waits for "ringmail ready".
    fn start(&self) -> Result<Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let mut child = Command::new(&self.ringmail)
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let ready = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l.starts_with("ringmail ready"));
            let _ = tx.send(ready);
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(true) => Ok(child),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the server did not start; see {}", self.log.display())
            }
        }
    }

    /// The mailboxes beyond the defaults that the load uses (there already on a rerun).
    fn create_mailboxes(&self) -> Result<()> {
        for (user, _, tracked) in USERS {
            let mut c = self.imap(user)?;
            for name in tracked {
                let r = c.cmd(&format!("CREATE {name}"))?;
                if !r.ok() && !r.text.contains("ALREADYEXISTS") {
                    bail!("CREATE {name} for {user}: {}", r.text);
                }
            }
        }
        Ok(())
    }

    /// `ringmail fsck` on the stopped store: a violation for each finding.
    fn fsck(&self) -> Result<Vec<Violation>> {
        let out = self.cli(&["fsck"], b"")?;
        if out.status.success() {
            return Ok(Vec::new());
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        Ok(text.lines().map(|l| Violation(format!("fsck: {l}"))).collect())
    }

    /// A killed server's io_uring (and its SO_REUSEPORT listeners) go a moment after it.
    fn wait_ports_free(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        for addr in [self.imap, self.pop3, self.submission, self.lmtp] {
            while TcpListener::bind(addr).is_err() {
                if Instant::now() > deadline {
                    bail!("{addr} still bound after the server died");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }

    fn transport(&self, addr: SocketAddr) -> io::Result<Transport> {
        let t = Transport::connect(addr)?;
        t.set_read_timeout(Duration::from_secs(30))?;
        Ok(t)
    }

    fn imap(&self, user: &str) -> io::Result<Imap> {
        let mut c = Imap::new(self.transport(self.imap)?)?;
        c.login(user, PASSWORD)?.expect_ok()?;
        Ok(c)
    }
}

/// Looks at every user's mailboxes (and the queue) and checks them against the ledger.
fn verify(server: &Server, ledger: &Mutex<Ledger>, counters: &Counters) -> Result<Vec<Violation>> {
    let mut found = Vec::new();
    for (user, counted, tracked) in USERS {
        let mut c = server
            .imap(user)
            .with_context(|| format!("verification login as {user}"))?;
        let mut now = BTreeMap::new();
        for name in tracked {
            now.insert((*name).to_owned(), look(&mut c, name)?);
        }
        let mut ledger = ledger.lock().unwrap_or_else(|e| e.into_inner());
        found.extend(ledger.check(user, &now, counted, tracked));
        // Copies need not be unique, but each is of a message that was sent.
        for (name, seen) in &now {
            for id in seen.messages.values() {
                if !counted.contains(&name.as_str()) && ledger.fate(user, id).is_none() {
                    found.push(Violation(format!("{user}/{name}: copy of {id}, which was never sent")));
                }
            }
        }
    }
    let mut c = server.imap("u2")?;
    let now = folders(&mut c, "tmp-")?;
    found.extend(
        ledger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check_names(FOLDERS, &now),
    );
    let out = server.cli(&["queue", "list"], b"")?;
    let queued = String::from_utf8_lossy(&out.stdout).matches("\tfrom=<").count() as u64;
    let (sent, acked) = (
        counters.relayed_sent.load(Ordering::Relaxed),
        counters.relayed_acknowledged.load(Ordering::Relaxed),
    );
    if queued < acked || queued > sent {
        found.push(Violation(format!(
            "queue: {queued} entries, {acked} acknowledged of {sent} sent"
        )));
    }
    Ok(found)
}

/// One mailbox: STATUS counters, then each message's UID and Message-ID.
fn look(c: &mut Imap, mailbox: &str) -> Result<Seen> {
    let status = c
        .cmd(&format!("STATUS {mailbox} (UIDVALIDITY UIDNEXT HIGHESTMODSEQ)"))?
        .expect_ok()?;
    let line = status.lines().join(" ");
    let number = |name: &str| -> Result<u64> {
        let at = line
            .find(&format!("{name} "))
            .with_context(|| format!("STATUS without {name}: {line}"))?;
        let digits: String = line[at + name.len() + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Ok(digits.parse()?)
    };
    let mut seen = Seen {
        uid_validity: number("UIDVALIDITY")? as u32,
        uid_next: number("UIDNEXT")? as u32,
        highest_modseq: number("HIGHESTMODSEQ")?,
        messages: BTreeMap::new(),
    };
    c.cmd(&format!("EXAMINE {mailbox}"))?.expect_ok()?;
    seen.messages = message_ids(c, "1:*")?;
    Ok(seen)
}

/// UID → Message-ID of the messages at `uids` in the selected mailbox.
fn message_ids(c: &mut Imap, uids: &str) -> io::Result<BTreeMap<u32, String>> {
    let r = c.cmd(&format!("UID FETCH {uids} (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"))?;
    let mut out = BTreeMap::new();
    for line in r.lines() {
        let Some(at) = line.find("UID ") else { continue };
        let uid: String = line[at + 4..].chars().take_while(char::is_ascii_digit).collect();
        let lower = line.to_ascii_lowercase();
        let Some(header) = lower.find("message-id:") else {
            continue;
        };
        let value = line[header + 11..].trim_start();
        let id: String = value
            .trim_start_matches('<')
            .chars()
            .take_while(|c| *c != '>')
            .collect();
        if let Ok(uid) = uid.parse() {
            out.insert(uid, id);
        }
    }
    Ok(out)
}

/// Lines for the body of a delivered or submitted message: mostly a few, now and then enough
/// (6 MB) that the server stages the body in commits of its own, so kills land in between.
fn lines(w: &mut Worker) -> usize {
    if w.rng.below(40) == 0 {
        LARGE_LINES
    } else {
        w.rng.below(200)
    }
}

/// Lines of a 6 MB body ("crash test body line\r\n" is 22 octets).
const LARGE_LINES: usize = (6 << 20) / 22;

fn message(id: &str, from: &str, to: &str, extra: usize) -> Vec<u8> {
    format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: crash test\r\nMessage-ID: <{id}>\r\n\r\n{}\r\n",
        "crash test body line\r\n".repeat(1 + extra)
    )
    .into_bytes()
}

fn spawn_workers(
    server: &Server,
    ledger: &Arc<Mutex<Ledger>>,
    counters: &Arc<Counters>,
    stop: &Arc<AtomicBool>,
    seed: u64,
    round: u32,
) -> Vec<std::thread::JoinHandle<()>> {
    let workers: [fn(&mut Worker) -> io::Result<()>; 5] =
        [lmtp_load, submission_load, imap_u1_load, imap_u2_load, pop3_load];
    workers
        .into_iter()
        .enumerate()
        .map(|(i, load)| {
            let mut w = Worker {
                server: Addrs {
                    imap: server.imap,
                    pop3: server.pop3,
                    submission: server.submission,
                    lmtp: server.lmtp,
                },
                ledger: ledger.clone(),
                counters: counters.clone(),
                stop: stop.clone(),
                rng: Rng::new(seed ^ (u64::from(round) << 20), i),
                round,
            };
            // A worker ends at its first error: the server was killed under it.
            std::thread::spawn(move || {
                let _ = load(&mut w);
            })
        })
        .collect()
}

#[derive(Clone, Copy)]
struct Addrs {
    imap: SocketAddr,
    pop3: SocketAddr,
    submission: SocketAddr,
    lmtp: SocketAddr,
}

struct Worker {
    server: Addrs,
    ledger: Arc<Mutex<Ledger>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    rng: Rng,
    round: u32,
}

impl Worker {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst)
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn transport(&self, addr: SocketAddr) -> io::Result<Transport> {
        let t = Transport::connect(addr)?;
        t.set_read_timeout(Duration::from_secs(30))?;
        Ok(t)
    }

    fn imap(&self, user: &str) -> io::Result<Imap> {
        let mut c = Imap::new(self.transport(self.server.imap)?)?;
        c.login(user, PASSWORD)?.expect_ok()?;
        Ok(c)
    }
}

/// LMTP deliveries to u1 and u3, now and then one message to both.
fn lmtp_load(w: &mut Worker) -> io::Result<()> {
    let mut c = Lmtp::new(w.transport(w.server.lmtp)?)?;
    while w.running() {
        let id = w.counters.id(w.round);
        let users: &[&str] = match w.rng.below(3) {
            0 => &["u1"],
            1 => &["u3"],
            _ => &["u1", "u3"],
        };
        let to: Vec<String> = users.iter().map(|u| format!("{u}@{DOMAIN}")).collect();
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        for u in users {
            w.ledger().sent(u, &id);
        }
        let body = message(&id, "sender@elsewhere.test", to[0], lines(w));
        let (rcpt, data) = c.send("sender@elsewhere.test", &to, &body)?;
        // One reply after the data per recipient accepted, in order (RFC 2033 §4.2).
        let accepted = users.iter().zip(&rcpt).filter(|(_, r)| r.code == 250).map(|(u, _)| u);
        for (u, reply) in accepted.zip(&data) {
            if reply.code == 250 {
                w.ledger().acknowledged(u, &id);
                w.counters.ack("lmtp delivery");
            }
        }
    }
    Ok(())
}

/// u2 submits to u1 (local) and to a remote address (queued for a relay that never answers).
fn submission_load(w: &mut Worker) -> io::Result<()> {
    let mut c = Smtp::new(w.transport(w.server.submission)?)?;
    c.ehlo("crash.client")?;
    if c.auth_plain("u2", PASSWORD)?.code != 235 {
        return Err(io::Error::other("AUTH refused"));
    }
    let from = format!("u2@{DOMAIN}");
    while w.running() {
        let id = w.counters.id(w.round);
        let local = w.rng.below(3) != 0;
        let to = if local {
            format!("u1@{DOMAIN}")
        } else {
            "someone@elsewhere.test".to_owned()
        };
        if local {
            w.ledger().sent("u1", &id);
        } else {
            w.counters.relayed_sent.fetch_add(1, Ordering::SeqCst);
        }
        let sent = c.send(&from, &[&to], &message(&id, &from, &to, lines(w)))?;
        if sent.data.is_some_and(|r| r.code == 250) {
            if local {
                w.ledger().acknowledged("u1", &id);
                w.counters.ack("submission, local");
            } else {
                w.counters.relayed_acknowledged.fetch_add(1, Ordering::SeqCst);
                w.counters.ack("submission, queued");
            }
        }
    }
    Ok(())
}

/// u1: MOVE between INBOX and Archive, COPY to Copies, STORE, EXPUNGE.
fn imap_u1_load(w: &mut Worker) -> io::Result<()> {
    let mut c = w.imap("u1")?;
    while w.running() {
        let (here, there) = if w.rng.one_in(2) {
            ("INBOX", "Archive")
        } else {
            ("Archive", "INBOX")
        };
        c.cmd(&format!("SELECT {here}"))?.expect_ok()?;
        let mut known = message_ids(&mut c, "1:*")?;
        for _ in 0..10 {
            if !w.running() {
                break;
            }
            // Only messages surely there: one still in doubt may yet be acknowledged.
            let candidates: Vec<(u32, String)> = {
                let ledger = w.ledger();
                known
                    .iter()
                    .filter(|(_, id)| ledger.fate("u1", id) == Some(Fate::Present))
                    .map(|(u, id)| (*u, id.clone()))
                    .collect()
            };
            if candidates.is_empty() {
                break;
            }
            let (uid, id) = candidates[w.rng.below(candidates.len())].clone();
            match w.rng.below(4) {
                0 => {
                    if c.cmd(&format!("UID MOVE {uid} {there}"))?.ok() {
                        w.counters.ack("imap move");
                    }
                    known.remove(&uid);
                }
                1 => {
                    if c.cmd(&format!("UID COPY {uid} Copies"))?.ok() {
                        w.counters.ack("imap copy");
                    }
                }
                2 => {
                    if c.cmd(&format!("UID STORE {uid} +FLAGS (\\Flagged $Crash)"))?.ok() {
                        w.counters.ack("imap store");
                    }
                }
                _ => {
                    c.cmd(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"))?;
                    w.ledger().expunging("u1", &id);
                    if c.cmd(&format!("UID EXPUNGE {uid}"))?.ok() {
                        w.ledger().expunged("u1", &id);
                        w.counters.ack("imap expunge");
                    }
                    known.remove(&uid);
                }
            }
        }
    }
    Ok(())
}

/// u2: APPEND to Work, and folders made, renamed and deleted.
fn imap_u2_load(w: &mut Worker) -> io::Result<()> {
    let mut c = w.imap("u2")?;
    let mut folders = 0u64;
    while w.running() {
        if w.rng.one_in(4) {
            let name = format!("tmp-{}-{folders}", w.round);
            let renamed = format!("{name}-r");
            folders += 1;
            w.ledger().sent(FOLDERS, &name);
            if !c.cmd(&format!("CREATE {name}"))?.ok() {
                continue;
            }
            w.ledger().acknowledged(FOLDERS, &name);
            w.ledger().expunging(FOLDERS, &name);
            w.ledger().sent(FOLDERS, &renamed);
            if !c.cmd(&format!("RENAME {name} {renamed}"))?.ok() {
                continue;
            }
            w.ledger().expunged(FOLDERS, &name);
            w.ledger().acknowledged(FOLDERS, &renamed);
            w.ledger().expunging(FOLDERS, &renamed);
            if c.cmd(&format!("DELETE {renamed}"))?.ok() {
                w.ledger().expunged(FOLDERS, &renamed);
                w.counters.ack("imap create+rename+delete");
            }
            continue;
        }
        let id = w.counters.id(w.round);
        w.ledger().sent("u2", &id);
        let body = message(&id, "u2@crash.test", "u2@crash.test", w.rng.below(100));
        if c.append("Work", "\\Seen", &body)?.ok() {
            w.ledger().acknowledged("u2", &id);
            w.counters.ack("imap append");
        }
    }
    Ok(())
}

/// u3: a POP3 session that deletes a few messages and commits them with QUIT.
fn pop3_load(w: &mut Worker) -> io::Result<()> {
    while w.running() {
        let mut c = Pop3::new(w.transport(w.server.pop3)?)?;
        if !c.login("u3", PASSWORD)?.ok {
            // The maildrop is still locked by the session the last kill cut off.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let (_, listing) = c.multi("LIST")?;
        let mut deleting = Vec::new();
        for line in listing.iter().take(40) {
            let n: u32 = match String::from_utf8_lossy(line)
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
            {
                Some(n) => n,
                None => continue,
            };
            if !w.rng.one_in(3) {
                continue;
            }
            let (status, head) = c.multi(&format!("TOP {n} 0"))?;
            if !status.ok {
                continue;
            }
            let id = head
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .find_map(|l| {
                    let lower = l.to_ascii_lowercase();
                    lower
                        .strip_prefix("message-id:")
                        .map(|_| l[11..].trim().trim_matches(|c| c == '<' || c == '>').to_owned())
                });
            let Some(id) = id else { continue };
            if w.ledger().fate("u3", &id) != Some(Fate::Present) {
                continue;
            }
            if c.cmd(&format!("DELE {n}"))?.ok {
                deleting.push(id);
            }
        }
        for id in &deleting {
            w.ledger().expunging("u3", id);
        }
        if c.cmd("QUIT")?.ok {
            for id in &deleting {
                w.ledger().expunged("u3", id);
                w.counters.ack("pop3 dele+quit");
            }
        }
    }
    Ok(())
}

/// The folders whose names start with `prefix`.
fn folders(c: &mut Imap, prefix: &str) -> io::Result<BTreeSet<String>> {
    let r = c.cmd(&format!("LIST \"\" \"{prefix}*\""))?;
    Ok(r.lines()
        .iter()
        .filter_map(|l| l.rsplit(' ').next().map(|n| n.trim_matches('"').to_owned()))
        .collect())
}

/// The default working directory of a run.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join(format!("ringmail-crash-{}", std::process::id()))
}

/// Removes a run's directory.
pub fn clean(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}
