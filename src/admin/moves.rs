//! `ringmail move USER --to BACKEND`, `ringmail move status`, `ringmail evacuate BACKEND`:
//! a user's mailboxes move, online, from the back end this config runs to another
//! (DESIGN.md §7; Exchange's New-MoveRequest, Dovecot's dsync).
//!
//! 1. The directory records the move (`ringmailMoveState: copying`, `ringmailMoveTarget`).
//! 2. Copy passes, while the user keeps working: a mailbox stream (`mailstream`) from one read
//!    snapshot of the store to the target's `[cluster] listen_move`, each pass carrying what
//!    changed since the target's marks, until a pass carries at most `QUIET_CHANGES` changes.
//! 3. The lock: `locked` in the directory (front ends hold new logins), and the running
//!    server here holds the user (logins and deliveries fail temporarily: LMTP 450 4.2.1)
//!    and closes the user's sessions; the move waits until none is left.
//! 4. The final pass, then the verification: every mailbox's UIDVALIDITY, UIDNEXT,
//!    HIGHESTMODSEQ, count and a digest of every message's UID, flags, modseq and size, here
//!    and there, must agree. Any difference leaves the mailbox here, unlocked.
//! 5. The flip: `mailHost` becomes the target in one modify guarded by the move generation
//!    (RFC 4528 assertion). Clients reconnect through the front ends to the new back end.
//! 6. The copy here is kept, marked as living elsewhere, for `--keep-source` days; then the
//!    running server here removes it (hourly; `ringmail move purge` does it at once). Until
//!    then the server here keeps refusing the user.
//!
//! The source is only read: the move never writes mail here. Every stage is safe to cut
//! off: run the same command again and it resumes (the target's marks say where), or
//! `ringmail move USER --abort` forgets it.

use std::io::{BufReader, BufWriter};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::directory::LdapAdmin;
use crate::mailstream::wire::{self, Applied, Verb};
use crate::mailstream::{self, Digest, Mark};
use crate::serve::control;
use crate::store::{Store, UserPatch, WriteOp};

/// Copy passes stop once one carries at most this many changes; the final pass then carries
/// about as few while the user waits.
const QUIET_CHANGES: u64 = 100;
const MAX_COPY_PASSES: usize = 5;
/// How long the lock waits for the user's sessions to close.
const DRAIN: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct MoveArgs {
    pub user: String,
    pub to: String,
    pub keep_source_days: u64,
}

/// A copy kept here after its mailbox moved: `data_dir/moved/USER.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    user: String,
    to: String,
    /// Unix seconds.
    moved_at: u64,
    keep_until: u64,
}

pub fn run(config: &Config, args: &MoveArgs) -> Result<()> {
    let plan = Plan::new(config, &args.to)?;
    let mut ldap = LdapAdmin::connect(&config.directory)?;
    let record = ldap
        .move_record(&args.user)?
        .with_context(|| format!("no account {:?} in the directory", args.user))?;
    let user = record.account.name.clone();
    let store = super::open(config)?;
    let unmarked = store.snapshot()?.user(&user)?.is_some_and(|u| u.home.is_none());
    if record.account.mail_host.eq_ignore_ascii_case(&args.to) && record.account.moving.is_none() && unmarked {
        // Cut off after the flip: only what follows it is left to do.
        println!(
            "{user}: the directory puts the mailbox on {} already; finishing the move",
            args.to
        );
        Server::new(config).hold(&user)?;
        return finish(config, &store, &plan, args, Duration::ZERO);
    }
    if !record.account.mail_host.eq_ignore_ascii_case(&plan.here) {
        bail!(
            "{user}'s mailbox is on {}, not here ({}): run the move there",
            record.account.mail_host,
            plan.here
        );
    }
    if let Some(moving) = record
        .account
        .moving
        .as_ref()
        .filter(|m| !m.target.eq_ignore_ascii_case(&args.to))
    {
        bail!(
            "a move of {user} to {} is under way: run `ringmail move {user} --to {}` to finish it, or `ringmail move {user} --abort`",
            moving.target,
            moving.target
        );
    }
    let started = Instant::now();
    ldap.move_stage(&record, "copying", &args.to)?;
    println!("{user}: moving from {} to {}", plan.here, args.to);

    for n in 1..=MAX_COPY_PASSES {
        let applied = plan.pass(&store, &user, &format!("copy pass {n}"))?;
        fail_point("copied");
        // After the first, a pass that carried little means the next, locked, one will too.
        if applied.changes == 0 || n > 1 && applied.changes <= QUIET_CHANGES {
            break;
        }
    }

    wait_point();
    ldap.move_stage(&record, "locked", &args.to)?;
    let server = Server::new(config);
    let locked_at = Instant::now();
    let outcome = (|| -> Result<()> {
        server.hold(&user)?;
        server.drain(&user)?;
        fail_point("locked");
        let applied = plan.pass(&store, &user, "final pass")?;
        verify(&store, &user, &applied.digests)?;
        fail_point("verified");
        ldap.move_flip(&record, &args.to, &plan.site)?;
        fail_point("flipped");
        Ok(())
    })();
    if let Err(e) = outcome {
        // The mailbox stays here, in charge; the copy there is resumed by the next run.
        server.release(&user);
        let _ = ldap.move_stage(&record, "copying", &args.to);
        return Err(e.context(format!("{user} stays on {}", plan.here)));
    }
    finish(config, &store, &plan, args, locked_at.elapsed())?;
    println!("{user}: the move took {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// After the flip: the target serves the mailbox as its own, the copy here is marked as
/// moved and kept for `keep_source_days`. Marked, it is never opened and takes no mail (LMTP
/// defers: a stale directory entry elsewhere may still route here for a moment), so the
/// server here lets go of the user.
fn finish(config: &Config, store: &Store, plan: &Plan, args: &MoveArgs, paused: Duration) -> Result<()> {
    let user = &args.user;
    if let Err(e) = plan.request(Verb::Activate, user) {
        eprintln!(
            "warning: {}: {e:#} (it serves the mailbox anyway; deliveries there look it up in the directory)",
            args.to
        );
    }
    store
        .write_blocking(WriteOp::UpdateUser {
            name: user.clone(),
            patch: UserPatch {
                home: Some(Some(args.to.clone())),
                ..UserPatch::default()
            },
        })
        .context("cannot mark the copy here as moved")?;
    // Marked as living elsewhere, the copy is never opened and takes nothing (deliveries are
    // deferred to their next, better-routed try): the server here can let go of the user.
    Server::new(config).release(user);
    keep(config, user, &args.to, args.keep_source_days)?;
    println!(
        "{user}: moved to {}; the mailbox was locked for {:.2} s; the copy here is kept {} days",
        args.to,
        paused.as_secs_f64(),
        args.keep_source_days
    );
    Ok(())
}

/// Benchmark hook: `RINGMAIL_MOVE_WAIT_BEFORE_LOCK=PATH` waits after the copy passes until PATH
/// exists, so a benchmark can make a known number of changes for the final pass to carry.
fn wait_point() {
    let Ok(path) = std::env::var("RINGMAIL_MOVE_WAIT_BEFORE_LOCK") else {
        return;
    };
    println!("waiting for {path} before the lock (RINGMAIL_MOVE_WAIT_BEFORE_LOCK)");
    let deadline = Instant::now() + Duration::from_secs(600);
    while !std::path::Path::new(&path).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Test hook: `RINGMAIL_MOVE_CRASH_AT=STAGE` ends the process at that stage as a crash would,
/// with nothing cleaned up, so tests can show that running the move again finishes it.
fn fail_point(stage: &str) {
    if std::env::var("RINGMAIL_MOVE_CRASH_AT").is_ok_and(|s| s == stage) {
        eprintln!("crashing at {stage} (RINGMAIL_MOVE_CRASH_AT)");
        std::process::exit(70);
    }
}

/// Forgets a move that did not finish: the mailbox stays here.
pub fn abort(config: &Config, user: &str) -> Result<()> {
    let mut ldap = LdapAdmin::connect(&config.directory)?;
    let record = ldap
        .move_record(user)?
        .with_context(|| format!("no account {user:?} in the directory"))?;
    if record.account.moving.is_none() {
        bail!("no move of {user} is under way");
    }
    ldap.move_abort(&record)?;
    Server::new(config).release(user);
    println!(
        "{user}: move forgotten; the mailbox stays on {}",
        record.account.mail_host
    );
    Ok(())
}

/// The moves under way (from the directory) and the copies kept here.
pub fn status(config: &Config) -> Result<()> {
    let mut ldap = LdapAdmin::connect(&config.directory)?;
    let moving = ldap.moving()?;
    if moving.is_empty() {
        println!("no move under way");
    }
    for r in &moving {
        let m = r.account.moving.as_ref().expect("the search asked for moves");
        let stage = if m.locked { "locked (final pass)" } else { "copying" };
        println!("{}: {} -> {}, {stage}", r.account.name, r.account.mail_host, m.target);
    }
    let now = unix_now();
    for kept in kept_copies(config)? {
        let days = kept.keep_until.saturating_sub(now).div_ceil(86_400);
        println!(
            "{}: moved to {} at {}; the copy here goes in {days} days",
            kept.user, kept.to, kept.moved_at
        );
    }
    Ok(())
}

/// `ringmail move purge`: removes now the copies kept here whose time is up (the running
/// server does it by itself every `PURGE_EVERY`).
pub fn purge(config: &Config) -> Result<()> {
    let store = super::open(config)?;
    let removed = purge_due(config, &store)?;
    for (user, to) in &removed {
        println!("{user}: the copy here is removed (it lives on {to})");
    }
    println!("{} copies removed", removed.len());
    Ok(())
}

/// How often a running back end removes the kept copies whose time is up.
pub const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Removes from `store` (this back end's) the copies kept here whose time is up and whose
/// mailbox the directory indeed puts elsewhere; returns each removed user with where it lives.
pub fn purge_due(config: &Config, store: &Store) -> Result<Vec<(String, String)>> {
    let now = unix_now();
    let due: Vec<Kept> = kept_copies(config)?
        .into_iter()
        .filter(|k| k.keep_until <= now)
        .collect();
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let mut ldap = LdapAdmin::connect(&config.directory)?;
    let mut removed = Vec::new();
    for kept in due {
        // One copy that cannot go does not keep the others.
        match purge_one(config, store, &mut ldap, &kept) {
            Ok(Some(home)) => removed.push((kept.user, home)),
            Ok(None) => {}
            Err(e) => tracing::warn!(user = %kept.user, "the kept copy stays: {e:#}"),
        }
    }
    Ok(removed)
}

/// Removes one kept copy if it is still only that: marked here as living elsewhere, and
/// elsewhere in the directory with no move under way (a move back here fills this very copy).
/// Returns where the mailbox lives, if the copy went.
fn purge_one(config: &Config, store: &Store, ldap: &mut LdapAdmin, kept: &Kept) -> Result<Option<String>> {
    let here = config.backend_name();
    let record = ldap
        .move_record(&kept.user)?
        .filter(|r| !r.account.mail_host.eq_ignore_ascii_case(here) && r.account.moving.is_none());
    let Some(record) = record else {
        tracing::info!(user = %kept.user, "a move is under way or the mailbox lives here again: its kept copy stays");
        return Ok(None);
    };
    match store.snapshot()?.user(&kept.user)? {
        Some(user) if user.home.is_some() => {
            store
                .write_blocking(WriteOp::DeleteUser {
                    name: kept.user.clone(),
                })
                .with_context(|| format!("cannot remove the copy of {}", kept.user))?;
        }
        // Gone already (`user del`): only the record is left.
        None => {}
        // Served here again.
        Some(_) => return Ok(None),
    }
    std::fs::remove_file(kept_path(config, &kept.user))?;
    Ok(Some(record.account.mail_host))
}

/// Moves every mailbox off `backend` (this one), `parallel` at a time, spread over the other
/// back ends that take moves (or all to `to`).
pub fn evacuate(
    config: &Config,
    backend: &str,
    to: Option<&str>,
    parallel: usize,
    keep_source_days: u64,
) -> Result<()> {
    if !backend.eq_ignore_ascii_case(config.backend_name()) {
        bail!(
            "run the evacuation on {backend} itself: moves read the mailboxes from the store of the back end they leave (this config is {})",
            config.backend_name()
        );
    }
    let targets: Vec<String> = match to {
        Some(to) => vec![to.to_owned()],
        None => config
            .cluster
            .backends
            .iter()
            .filter(|b| b.move_to.is_some() && !b.name.eq_ignore_ascii_case(backend))
            .map(|b| b.name.clone())
            .collect(),
    };
    if targets.is_empty() {
        bail!("cluster.backends names no other back end with a move address");
    }
    let users: Vec<String> = LdapAdmin::connect(&config.directory)?
        .on_backend(backend)?
        .into_iter()
        .map(|r| r.account.name)
        .collect();
    println!(
        "evacuating {} mailboxes from {backend} to {}",
        users.len(),
        targets.join(", ")
    );
    let queue = std::sync::Mutex::new(users.iter().enumerate());
    let failed = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1) {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some((i, user)) = next else {
                    return;
                };
                let args = MoveArgs {
                    user: user.clone(),
                    to: targets[i % targets.len()].clone(),
                    keep_source_days,
                };
                if let Err(e) = run(config, &args) {
                    eprintln!("{user}: {e:#}");
                    failed.lock().unwrap_or_else(|p| p.into_inner()).push(user.clone());
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    if !failed.is_empty() {
        bail!(
            "{} of {} mailboxes did not move: {}",
            failed.len(),
            users.len(),
            failed.join(", ")
        );
    }
    println!("{backend} holds no mailbox now");
    Ok(())
}

/// Where a move goes and how it gets there.
struct Plan {
    here: String,
    to: String,
    site: String,
    addr: SocketAddr,
    secret: String,
}

impl Plan {
    fn new(config: &Config, to: &str) -> Result<Plan> {
        if !config.directory.is_ldap() {
            bail!("moves need an LDAP directory ([directory] ldap_url): the flip of mailHost happens there");
        }
        if config.cluster.proxy_secret.is_empty() {
            bail!("[cluster] proxy_secret is empty: back ends prove it to each other in a move");
        }
        let here = config.backend_name().to_owned();
        if to.eq_ignore_ascii_case(&here) {
            bail!("{to} is this back end");
        }
        let backend = config
            .cluster
            .backend(to)
            .with_context(|| format!("cluster.backends names no back end {to:?}"))?;
        let addr = backend
            .move_to
            .with_context(|| format!("cluster.backends gives {to} no move address (its [cluster] listen_move)"))?;
        Ok(Plan {
            here,
            to: backend.name.clone(),
            site: backend.site.clone(),
            addr,
            secret: config.cluster.proxy_secret.clone(),
        })
    }

    /// Opens a connection and sends `verb`'s request; gives the connection and the answer.
    fn open(&self, verb: Verb, user: &str) -> Result<(TcpStream, BufReader<TcpStream>, String)> {
        let stream = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT)
            .with_context(|| format!("cannot reach {} at {}", self.to, self.addr))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut input = BufReader::new(stream.try_clone()?);
        let greeting = wire::read_line(&mut input)?;
        let nonce = greeting
            .strip_prefix(wire::GREETING)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .with_context(|| format!("{} does not speak the move protocol: {greeting:?}", self.to))?;
        let line = wire::request_line(&self.secret, verb, user, &self.here, nonce);
        std::io::Write::write_all(&mut &stream, line.as_bytes())?;
        let answer = wire::read_line(&mut input)?;
        let json = wire::parse_answer(&answer).map_err(|reason| anyhow::anyhow!("{} refused: {reason}", self.to))?;
        Ok((stream, input, json.to_owned()))
    }

    fn request(&self, verb: Verb, user: &str) -> Result<String> {
        Ok(self.open(verb, user)?.2)
    }

    /// One pass: the target's marks, then what changed since them, from one snapshot here.
    fn pass(&self, store: &Store, user: &str, what: &str) -> Result<Applied> {
        let started = Instant::now();
        let (stream, mut input, marks) = self.open(Verb::Pass, user)?;
        let marks: Vec<Mark> = serde_json::from_str(&marks).context("the target's marks")?;
        let snapshot = store.snapshot()?;
        let account = snapshot
            .user(user)?
            .with_context(|| format!("{user} has no mailboxes in this store"))?;
        let mut progress = super::progress::Progress::new("move", 0);
        let out = BufWriter::with_capacity(1 << 20, &stream);
        mailstream::dump(&snapshot, &account, &marks, out, &mut |n| progress.advance(n))?;
        drop(snapshot);
        progress.finish();
        let answer = wire::read_line(&mut input)?;
        let json =
            wire::parse_answer(&answer).map_err(|reason| anyhow::anyhow!("{} refused the pass: {reason}", self.to))?;
        let applied: Applied = serde_json::from_str(json).context("the target's answer")?;
        println!(
            "{user}: {what}: {} messages ({} bytes) and {} changes in {:.2} s",
            applied.messages,
            applied.bytes,
            applied.changes,
            started.elapsed().as_secs_f64()
        );
        Ok(applied)
    }
}

/// The mailboxes here and there must agree in everything a client can see.
fn verify(store: &Store, user: &str, there: &[Digest]) -> Result<()> {
    let here = mailstream::digests(&store.snapshot()?, user)?;
    if here == there {
        return Ok(());
    }
    for h in &here {
        match there.iter().find(|t| t.name == h.name) {
            Some(t) if t == h => {}
            Some(t) => bail!("verification: {:?} differs: here {h:?}, there {t:?}", h.name),
            None => bail!("verification: {:?} is missing there", h.name),
        }
    }
    bail!("verification: the target has mailboxes this back end does not")
}

/// The `ringmail serve` running on this data_dir, through its admin socket; none running
/// is fine (nothing here can change the mailbox then).
struct Server {
    dir: PathBuf,
}

impl Server {
    fn new(config: &Config) -> Server {
        Server {
            dir: config.server.data_dir.clone(),
        }
    }

    fn ask(&self, request: &str) -> Result<Option<String>> {
        match control::ask(&self.dir, control::ADMIN_SOCKET, request) {
            Ok(answer) => {
                if let Ok(r) = serde_json::from_str::<control::Refused>(&answer) {
                    bail!("the server refused {request:?}: {}", r.error);
                }
                Ok(Some(answer))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e).context("the server's admin socket"),
        }
    }

    fn hold(&self, user: &str) -> Result<()> {
        self.ask(&format!("hold {user}"))?;
        Ok(())
    }

    fn release(&self, user: &str) {
        let _ = self.ask(&format!("release {user}"));
    }

    /// Closes the user's sessions and waits until none is left.
    fn drain(&self, user: &str) -> Result<()> {
        let deadline = Instant::now() + DRAIN;
        loop {
            let Some(answer) = self.ask(&format!("who {user}"))? else {
                return Ok(());
            };
            let sessions: Vec<control::SessionInfo> = serde_json::from_str(&answer)?;
            if sessions.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} sessions of {user} did not close within {DRAIN:?}", sessions.len());
            }
            self.ask(&format!("kick {user}"))?;
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn kept_dir(config: &Config) -> PathBuf {
    config.server.data_dir.join("moved")
}

/// The record of the copy of `user`'s mailbox kept in `data_dir` after it moved away.
pub fn kept_record(data_dir: &std::path::Path, user: &str) -> PathBuf {
    data_dir.join("moved").join(format!("{user}.json"))
}

fn kept_path(config: &Config, user: &str) -> PathBuf {
    kept_record(&config.server.data_dir, user)
}

fn keep(config: &Config, user: &str, to: &str, days: u64) -> Result<()> {
    std::fs::create_dir_all(kept_dir(config))?;
    let now = unix_now();
    let kept = Kept {
        user: user.to_owned(),
        to: to.to_owned(),
        moved_at: now,
        keep_until: now.saturating_add(days.saturating_mul(86_400)),
    };
    std::fs::write(kept_path(config, user), serde_json::to_vec(&kept)?)?;
    Ok(())
}

fn kept_copies(config: &Config) -> Result<Vec<Kept>> {
    let dir = kept_dir(config);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let bytes = std::fs::read(&path)?;
        out.push(serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display()))?);
    }
    Ok(out)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
