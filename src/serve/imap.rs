//! The IMAP driver: moves bytes between a connection and `imap::Session` and carries out its
//! actions — login, STARTTLS, APPEND ingest on the blocking pool, writes through the store's
//! writer, flushing long FETCHes and yielding between the steps of a SEARCH, SORT or THREAD
//! scan, and IDLE, where the client's DONE, changes on the core's feed, the keepalive timer
//! and shutdown are awaited together without ever dropping a read.

use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use super::core::{Core, SnapRead};
use super::link::{Closed, Link, Terms, WRITE_TIMEOUT};
use super::login::{self, Failure};
use super::{Shared, Via};
use crate::auth::limits::{Parked, Slot};
use crate::auth::policy::Protocol;
use crate::goodbye::Goodbye;
use crate::imap::fault::{goodbye, Imap};
use crate::imap::{Action, Ctx, LoginFailure, Session, Settings};
use crate::net::conn::{TLS_READ_BULK, TLS_READ_IDLE};
use crate::runtime::io::Stream;
use crate::runtime::Shutdown;
use crate::store::StoreError;

/// Largest single read of client input.
const READ_SIZE: usize = 64 * 1024;
/// A read while the client is probably just thinking: commands are short.
const SMALL_READ: usize = 512;
/// Output buffers up to this size are kept between commands while input streams in.
const KEEP_OUTPUT: usize = 4096;

struct Driver<'a> {
    link: Link<'a, Imap>,
    core: &'a Core,
    /// Client bytes not yet taken by the session.
    input: Vec<u8>,
    /// The last read filled its buffer: more input is likely waiting.
    bulk: bool,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Driver<'_> {
    /// Before waiting for the client: the (sent, empty) output buffer is given back, so a
    /// waiting connection parks none, unless more input is likely (`keep`) and it is small.
    fn release_output(&mut self, keep: bool) {
        if self.link.out.is_empty() && !(keep && self.link.out.capacity() <= KEEP_OUTPUT) {
            self.link.out = Vec::new();
        }
    }

    /// Runs `f` with a fresh read snapshot and this core's views.
    fn with_ctx<T>(&mut self, f: impl FnOnce(&mut Ctx<'_>, &mut Vec<u8>) -> T) -> Result<T, StoreError> {
        let snapshot = self.link.shared.store.snapshot()?;
        let reader = SnapRead(&snapshot);
        self.core.catch_up();
        let mut views = self.core.views();
        let mut ctx = Ctx {
            store: &reader,
            views: &mut *views,
            recent: self.link.shared.store.recent(),
            now: now(),
        };
        Ok(f(&mut ctx, &mut self.link.out))
    }
}

pub async fn serve(
    shared: Arc<Shared>,
    core: Rc<Core>,
    stream: Stream,
    peer: Option<SocketAddr>,
    via: Via,
    shutdown: Shutdown,
) {
    let config = &shared.config.imap;
    let terms = Terms {
        limits: &shared.imap_limits,
        pre_auth: Duration::from_secs(config.pre_auth_timeout),
        auth: Duration::from_secs(config.auth_timeout),
        logged: config.protocol_log,
    };
    let Some((link, mut slot)) = Link::open(&shared, (stream, peer, via), terms).await else {
        return;
    };
    let mut d = Driver {
        link,
        core: &core,
        input: Vec::new(),
        bulk: false,
    };
    let mut session = Session::new(
        Settings {
            login_type: config.login_type,
            starttls: via == Via::Plain,
            max_login_failures: shared.config.limits.max_login_failures,
            max_command_size: config.max_command_size,
            append_limit: config.append_limit,
            message_limit: config.message_limit(),
            server_name: shared.config.backend_name().to_owned(),
            parse: shared.config.parse_limits(),
        },
        // A front end took care of the client's TLS; the link to it is a trusted network's.
        d.link.conn.is_tls() || d.link.proxied,
    );
    session.greeting(&mut d.link.out);
    let _ = run(&mut d, &mut session, &mut slot, &shutdown).await;
    d.link.close().await;
}

async fn run(d: &mut Driver<'_>, session: &mut Session, slot: &mut Slot, shutdown: &Shutdown) -> Result<(), Closed> {
    let mut budget = super::Budget::default();
    loop {
        // Give the session everything buffered, one step at a time.
        while !d.input.is_empty() {
            let input = std::mem::take(&mut d.input);
            let (used, action) = d
                .with_ctx(|ctx, out| session.input(&input, ctx, out))
                .map_err(|_| Closed)?;
            d.input = input;
            d.input.drain(..used);
            if let Some(line) = session.take_log() {
                d.link.log('<', line.as_bytes());
            }
            let stop = match action {
                Action::Continue | Action::Idle { .. } => false,
                // Boxed: the actions' futures (login, store writes, TLS) are ~2.5 KiB, and
                // inline they would be part of every session's state, idle or not.
                action => Box::pin(act(d, session, slot, action)).await?,
            };
            if stop {
                return Ok(());
            }
            if used == 0 {
                break;
            }
            if budget.spend(d.link.out.len()) {
                d.link.flush().await?;
                tokio::task::yield_now().await;
            }
        }
        d.link.flush().await?;
        if session.is_idle() {
            // Parked while it waits, so a newer login of the same user at the per-user limit
            // may take its place (auth::limits).
            let parked = slot.park();
            let waited = idle(d, session, shutdown, parked.as_deref()).await;
            slot.unpark();
            waited?;
            if slot.evicted() {
                // Taken over just as the client ended IDLE: its place is gone all the same.
                d.link.out.extend_from_slice(goodbye(Goodbye::Replaced).as_bytes());
                return Ok(());
            }
        } else if session.notify_user().is_some() && !d.bulk {
            // RFC 5465: a NOTIFY session hears of changes between commands too, so it waits
            // as IDLE does (a read stays pending beside the change feed), but is not parked.
            idle(d, session, shutdown, None).await?;
        } else {
            read_more(d, session, shutdown).await?;
        }
    }
}

/// Carries out an action and whatever it leads to; true when the session is over.
async fn act(d: &mut Driver<'_>, session: &mut Session, slot: &mut Slot, mut action: Action) -> Result<bool, Closed> {
    loop {
        action = match action {
            Action::Continue | Action::Idle { .. } => return Ok(false),
            Action::Close => return Ok(true),
            Action::Unauthenticated => {
                // RFC 8437: the connection no longer counts against the user.
                slot.logout();
                Action::Continue
            }
            Action::Login(credentials) => {
                d.link.flush().await?;
                let result = login::login(
                    d.link.shared,
                    d.link.conn.peer,
                    &credentials,
                    Protocol::Imap,
                    slot,
                    (d.link.id, d.link.proxied),
                )
                .await
                .map(|u| (u.id, u.name, u.imap_disabled))
                .map_err(|f| match f {
                    Failure::BadCredentials => LoginFailure::BadCredentials,
                    Failure::Refused(why) | Failure::Limit(why) => LoginFailure::Refused(why),
                    Failure::Temporary => LoginFailure::Temporary,
                });
                session.login_result(result, &mut d.link.out)
            }
            Action::LookupScram(user) => {
                let keys = login::scram_keys(d.link.shared, &user).await;
                session.scram_credentials(keys, &mut d.link.out)
            }
            Action::StartTls => {
                d.link.flush().await?;
                // RFC 9051 §6.2.1: nothing pipelined before the handshake survives it.
                d.input.clear();
                let limit = Duration::from_secs(d.link.shared.config.imap.pre_auth_timeout);
                match tokio::time::timeout(limit, d.link.conn.start_tls(d.link.shared.tls.clone())).await {
                    Ok(Ok(())) => session.tls_started(),
                    _ => return Ok(true),
                }
                Action::Continue
            }
            Action::Ingest { message, binary } => {
                let ingest = if binary {
                    crate::mime::ingest_binary_with
                } else {
                    crate::mime::ingest_with
                };
                let limits = d.link.shared.config.mime_limits();
                let parsed = tokio::task::spawn_blocking(move || ingest(message, &limits)).await;
                match parsed {
                    Ok(result) => session.ingested(result, &mut d.link.out),
                    Err(_) => return Ok(true),
                }
            }
            Action::Write(op) => {
                let shared = d.link.shared;
                let mut write = std::pin::pin!(shared.store.write(op));
                // A write that takes long (a COPY of a million messages, a busy writer) is not
                // silence: the client hears every few seconds that its command is at work.
                let every = Duration::from_secs(crate::imap::progress::INTERVAL_SECS as u64);
                let result = loop {
                    tokio::select! {
                        r = &mut write => break r,
                        () = tokio::time::sleep(every) => {
                            session.write_progress(&mut d.link.out);
                            d.link.flush().await?;
                        }
                    }
                };
                d.with_ctx(|ctx, out| session.write_result(result, ctx, out))
                    .map_err(|_| Closed)?
            }
            Action::StartCompress => {
                d.link.flush().await?;
                d.link
                    .conn
                    .start_deflate(d.link.shared.config.limits.max_inflate_per_second);
                // Whatever the client pipelined after COMPRESS was compressed already.
                let raw = std::mem::take(&mut d.input);
                d.link.conn.inflate_buffered(&raw, &mut d.input)?;
                Action::Continue
            }
            Action::Flush => {
                if d.link.out.is_empty() {
                    // A SEARCH between two steps of its scan has often nothing to send: the
                    // other connections of this core run before its next step all the same.
                    tokio::task::yield_now().await;
                } else {
                    d.link.flush().await?;
                }
                d.with_ctx(|ctx, out| session.resume(ctx, out)).map_err(|_| Closed)?
            }
        };
    }
}

/// Waits for client bytes under the session's timeout, or shutdown.
async fn read_more(d: &mut Driver<'_>, session: &Session, shutdown: &Shutdown) -> Result<(), Closed> {
    // While input streams in (the last read filled its buffer), read big; otherwise the
    // connection is probably waiting, and parks only a small buffer (DESIGN.md §4).
    let mut buf = std::mem::take(&mut d.input);
    let size = if d.bulk { READ_SIZE } else { SMALL_READ };
    d.link
        .conn
        .set_tls_read_size(if d.bulk { TLS_READ_BULK } else { TLS_READ_IDLE });
    if buf.is_empty() {
        buf = Vec::with_capacity(size);
    } else {
        buf.reserve(size);
    }
    d.release_output(d.bulk);
    let spare = buf.capacity() - buf.len();
    let read = d
        .link
        .read(&mut buf, (session.is_authenticated(), session.mid_line()), shutdown)
        .await;
    d.input = buf;
    d.bulk = read? >= spare;
    Ok(())
}

/// The change notifications an idle wait listens to (the selected mailbox's, and a NOTIFY
/// session's user's), registered at creation: `Notify::notify_waiters` reaches a `Notified`
/// once it is enabled, before it is first polled.
struct Armed<'a> {
    mailbox: Option<Pin<Box<Notified<'a>>>>,
    user: Option<Pin<Box<Notified<'a>>>>,
}

impl<'a> Armed<'a> {
    fn new(mailbox: Option<&'a Notify>, user: Option<&'a Notify>) -> Armed<'a> {
        let arm = |n: &'a Notify| {
            let mut notified = Box::pin(n.notified());
            notified.as_mut().enable();
            notified
        };
        Armed {
            mailbox: mailbox.map(arm),
            user: user.map(arm),
        }
    }

    /// Resolves once either has been notified; never when there is nothing to watch.
    async fn fired(&mut self) {
        tokio::select! {
            () = wait(self.mailbox.as_mut()) => {}
            () = wait(self.user.as_mut()) => {}
        }
    }
}

async fn wait(notified: Option<&mut Pin<Box<Notified<'_>>>>) {
    match notified {
        Some(n) => n.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Resolves when a newer login took a parked session's place; never for one not parked.
async fn evicted(parked: Option<&Parked>) {
    match parked {
        Some(p) => p.evicted().await,
        None => std::future::pending().await,
    }
}

/// IDLE: one read stays pending throughout (tokio-uring cannot cancel one safely) while
/// mailbox changes and keepalives are written out beside it.
async fn idle(
    d: &mut Driver<'_>,
    session: &mut Session,
    shutdown: &Shutdown,
    parked: Option<&Parked>,
) -> Result<(), Closed> {
    let config = &d.link.shared.config.imap;
    let keepalive = Duration::from_secs(config.idle_keepalive);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(config.auth_timeout);
    let watch = session.selected_mailbox().map(|m| d.core.watch(m));
    // NOTIFY (RFC 5465): every mailbox of the user, and the subscriptions.
    let user_watch = session.notify_user().map(|u| d.core.watch_user(u));
    d.link.conn.set_tls_read_size(TLS_READ_IDLE);
    d.release_output(false);
    d.input = Vec::new();
    // A small buffer: an idle connection parks next to nothing.
    let mut buf = Vec::with_capacity(64);
    let (shared, core, id) = (d.link.shared, d.core, d.link.id);
    let conn = &d.link.conn;
    let out = &mut d.link.out;
    let result = {
        let read = conn.read(&mut buf);
        tokio::pin!(read);
        // Armed before every look at the store, so a change committed while the session
        // reads it or writes to the client wakes the next wait instead of being missed.
        let mut armed = Armed::new(watch.as_deref(), user_watch.as_deref());
        // What changed between the session's last look and arming is reported at once.
        let mut changed = true;
        loop {
            {
                let snapshot = shared.store.snapshot().map_err(|_| Closed)?;
                let reader = SnapRead(&snapshot);
                core.catch_up();
                let mut views = core.views();
                let mut ctx = Ctx {
                    store: &reader,
                    views: &mut *views,
                    recent: shared.store.recent(),
                    now: now(),
                };
                session.idle_tick(changed, &mut ctx, out);
            }
            if !out.is_empty() {
                if shared.config.imap.protocol_log {
                    if let Some(log) = &shared.protolog {
                        log.log("imap", id, '>', out);
                    }
                }
                // Boxed: the write and its timer are only alive while sending; inline they
                // would be part of every idle session's state.
                Box::pin(tokio::time::timeout(WRITE_TIMEOUT, conn.write(out)))
                    .await
                    .map_err(|_| Closed)??;
            }
            changed = tokio::select! {
                r = &mut read => break r,
                () = armed.fired() => true,
                () = tokio::time::sleep(keepalive) => false,
                () = tokio::time::sleep_until(deadline) => {
                    out.extend_from_slice(goodbye(Goodbye::IdleTimeout).as_bytes());
                    return Err(Closed);
                }
                () = shutdown.wait() => {
                    out.extend_from_slice(goodbye(Goodbye::ShuttingDown).as_bytes());
                    return Err(Closed);
                }
                () = evicted(parked) => {
                    out.extend_from_slice(goodbye(Goodbye::Replaced).as_bytes());
                    return Err(Closed);
                }
            };
            armed = Armed::new(watch.as_deref(), user_watch.as_deref());
        }
    };
    match result {
        Ok(n) if n > 0 => {
            // A full small buffer: more is likely waiting (a NOTIFY client's next command).
            d.bulk = n >= buf.capacity();
            d.input.extend_from_slice(&buf);
            Ok(())
        }
        _ => Err(Closed),
    }
}
