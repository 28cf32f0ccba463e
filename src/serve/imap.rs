//! IMAP's part of the driver (`driver::Protocol`): carries out `imap::Session`'s actions —
//! login, APPEND ingest on the ingest pool, writes through the store's
//! writer, flushing long FETCHes and yielding between the steps of a SEARCH, SORT or THREAD
//! scan, and IDLE, where the client's DONE, changes on the core's feed, the keepalive timer
//! and shutdown are awaited together without ever dropping a read.
//!
//! A session in IDLE with nothing buffered parks (issue 14): its task ends, and what it is
//! (`Parked`: the session, its connection, its place at the limits) lies in its core's lot
//! (`serve::lot`) as an entry of one slab, its socket in the lot's epoll set. A change, its
//! keepalive or its socket's readiness rouses it into a task of its own: `tend` sends what
//! changed and lays it down again; readiness starts its session's task again, which reads. So
//! a session in IDLE costs its data, not a future.
//!
//! A logged-in session quiet between commands for `PARK_AFTER` parks too (a client that polls
//! instead of IDLE, or one left open): it waits for its next command with a readiness poll
//! instead of a read, and if none comes in that time it lies in the lot until its socket is
//! readable or its deadline comes, hearing of nothing else (changes are told at its next
//! command). A client in use, whose next command comes sooner, never parks between commands.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::Either;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use super::core::{Core, SnapRead};
use super::driver::{self, Driver, Protocol, Waited};
use super::link::{timed, Closed, Link, Stop, Terms};
use super::login::{self, Failure};
use super::lot::{Due, Rouse, Sleep, Watch};
use super::{SessionGuard, Shared, Via};
use crate::auth::limits::{Parked as LimitParked, Slot};
use crate::auth::policy::Protocol as Service;
use crate::engine::Engine;
use crate::goodbye::Goodbye;
use crate::imap::fault::Imap as Wire;
use crate::imap::view::Referred;
use crate::imap::{Action, Ctx, LoginFailure, Session, Settings};
use crate::net::conn::TLS_READ_IDLE;
use crate::net::Gather;
use crate::runtime::io::Stream;
use crate::runtime::Shutdown;
use crate::store::StoreError;

/// How long a logged-in session quiet between commands keeps its task before it parks: longer
/// than a client in use takes between an answer and its next command (parking and rousing
/// cost a few system calls and a task), short against how long a polling client is quiet.
const PARK_AFTER: Duration = Duration::from_secs(1);

/// IMAP's part of the driver.
struct Imap<'a> {
    shared: &'a Arc<Shared>,
    core: &'a Core,
    slot: &'a mut Slot,
    /// The session was parked and its socket is readable: the next wait reads.
    woken: bool,
    /// Section data the session's FETCH responses left in the store's map, sent with the
    /// output at the next flush (`refers`).
    referred: Referred,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs `f` with a fresh read snapshot and this core's views; FETCH notes section data in
/// `referred` instead of copying it, when given one.
fn with_ctx<T>(
    (shared, core): (&Shared, &Core),
    referred: Option<&mut Referred>,
    f: impl FnOnce(&mut Ctx<'_>) -> T,
) -> Result<T, StoreError> {
    let snapshot = shared.store.snapshot()?;
    let reader = SnapRead(&snapshot);
    core.catch_up();
    let mut views = core.views();
    let mut ctx = Ctx {
        store: &reader,
        views: &mut *views,
        recent: shared.store.recent(),
        now: now(),
        referred,
    };
    Ok(f(&mut ctx))
}

impl Imap<'_> {
    /// Runs a step of the session (`f`) with a fresh snapshot, its answers going to `link`'s
    /// output; FETCH refers to section data in the map where `refers` allows.
    fn step<T>(&mut self, link: &mut Link, f: impl FnOnce(&mut Ctx<'_>, &mut Vec<u8>) -> T) -> Result<T, Closed> {
        let referred = refers(&link.conn).then_some(&mut self.referred);
        let out = &mut link.out;
        with_ctx((self.shared, self.core), referred, |ctx| f(ctx, out)).map_err(|_| Closed)
    }
}

/// Whether FETCH output on `conn` may refer to section data in the store's map: in plaintext
/// the kernel copies the pieces from the map into the socket (DESIGN.md §3: bodies straight
/// from the map), over TLS they are sealed into records straight from it. In plaintext the
/// pieces hold one FETCH step's read transaction (at most `FETCH_BUDGET` of output) until the
/// kernel has taken them, as POP3's gathered RETR does, never across an idle wait; TLS lets go
/// of them once they are sealed. DEFLATE compresses from a copy anyway.
fn refers(conn: &crate::net::conn::Conn) -> bool {
    !conn.is_compressed()
}

/// Serves one IMAP connection to its end, counted open (`guard`) until then, parked or not.
///
/// Not an `async fn`: that would keep its arguments twice in every session's future, as
/// arguments and as the locals they are moved into (rust-lang/rust#62958).
#[allow(clippy::manual_async_fn)] // see above
pub(crate) fn serve(
    shared: Arc<Shared>,
    core: Rc<Core>,
    stream: Stream,
    peer: Option<SocketAddr>,
    via: Via,
    shutdown: Shutdown,
    guard: SessionGuard,
) -> impl Future<Output = ()> {
    async move {
        let config = &shared.config.imap;
        let pre_auth = Duration::from_secs(config.pre_auth_timeout);
        let terms = Terms {
            limits: &shared.imap_limits,
            pre_auth,
            logged: config.protocol_log,
        };
        let Some((link, slot)) = Link::open::<Wire>(&shared, (stream, peer, via), terms).await else {
            return;
        };
        let (session, d) = start(&shared, &core, via, link, shutdown);
        let parts = Awake {
            session,
            d,
            slot,
            _open: guard,
        };
        live(shared, core, parts, false).await;
    }
}

/// A session with its driver, running in a task of its own.
struct Awake {
    session: Session,
    d: Driver,
    slot: Slot,
    /// Counts the session open until it ends, parked or not.
    _open: SessionGuard,
}

/// A session waiting in IDLE or between commands, as data: the session, its connection and
/// its place at the limits, with no suspended future of its own. It waits in its core's lot
/// (`serve::lot`). Its driver's other parts are empty or the core's while it waits (input
/// is taken before it parks, STARTTLS is over once a session is logged in, shutdown is the
/// core's), so it holds only the link and gets them back when it wakes.
pub(super) struct Parked {
    session: Session,
    link: Link,
    slot: Slot,
    _open: SessionGuard,
}

impl Awake {
    /// What waits in the lot: a session parks only with no input pending (`wait`).
    fn parked(self) -> Parked {
        let Awake {
            session,
            d,
            slot,
            _open,
        } = self;
        debug_assert!(d.input.pending().is_empty());
        Parked {
            session,
            link: d.link,
            slot,
            _open,
        }
    }
}

impl Parked {
    fn awake(self, core: &Core) -> Awake {
        let Parked {
            session,
            link,
            slot,
            _open,
        } = self;
        Awake {
            session,
            d: Driver::new(link, core.shutdown.clone(), None),
            slot,
            _open,
        }
    }
}

impl Sleep for Parked {
    fn fd(&self) -> std::os::fd::RawFd {
        self.link.conn.raw_fd()
    }

    /// In IDLE, its selected mailbox, and for a NOTIFY session (RFC 5465) every mailbox of its
    /// user; between commands, nothing: what changed is told at its next command.
    fn watch(&self) -> Watch {
        if !self.session.is_idle() {
            return Watch {
                mailbox: None,
                user: None,
            };
        }
        Watch {
            mailbox: self.session.selected_mailbox(),
            user: self.session.notify_user(),
        }
    }

    fn evicted(&self) -> bool {
        self.slot.evicted()
    }
}

/// Runs a session until it ends or parks; a parked one goes on in `tend` and its core's lot.
/// A `woken` one was parked and its socket became readable: its first wait reads.
///
/// Not an `async fn`, and `parts` is only borrowed: the session is not held twice in its
/// future (rust-lang/rust#62958).
#[allow(clippy::manual_async_fn)] // see above
fn live(shared: Arc<Shared>, core: Rc<Core>, mut parts: Awake, woken: bool) -> impl Future<Output = ()> {
    async move {
        let Awake { session, d, slot, .. } = &mut parts;
        let mut imap = Imap {
            shared: &shared,
            core: &core,
            slot,
            woken,
            referred: Referred::default(),
        };
        if let Ok(driver::Ended::Parked) = driver::run(d, &mut imap, session).await {
            // The client's deadline runs from here, whatever the session is roused for.
            let deadline = tokio::time::Instant::from_std(parts.session.deadline(Instant::now(), false));
            let parts = parts.parked();
            if parts.session.is_idle() {
                // What changed since the command that began IDLE is told before it lies down.
                crate::runtime::io::spawn(tend(shared, core, parts, true, deadline));
            } else {
                lay_down(&shared, &core, parts, deadline);
            }
            return;
        }
        // A FETCH answered just before LOGOUT: its data goes out ahead of the goodbye.
        if !imap.referred.is_empty() {
            let _ = imap.flush(d).await;
        }
        end(parts.d.link).await;
    }
}

/// Sends what is left (a goodbye) and closes. Boxed: sending over TLS takes room that a
/// session's future, or a parked session's turn awake, would otherwise hold all the time.
fn end(link: Link) -> Pin<Box<impl Future<Output = ()>>> {
    Box::pin(link.close())
}

/// A session leaves its core's lot (`serve::lot`) for a task of its own: to read what its
/// client sent, to send what changed or a keepalive, or to say goodbye.
pub(super) fn rouse(shared: &Arc<Shared>, core: &Rc<Core>, mut parts: Parked, why: Rouse) {
    let (shared, core) = (shared.clone(), core.clone());
    match why {
        Rouse::Changed { deadline } => crate::runtime::io::spawn(tend(shared, core, parts, true, deadline)),
        Rouse::Keepalive { deadline } => crate::runtime::io::spawn(tend(shared, core, parts, false, deadline)),
        Rouse::Ready => {
            parts.slot.unpark();
            if parts.slot.evicted() {
                // Taken over just as the client spoke: its place is gone all the same.
                crate::runtime::io::spawn(goodbye(parts, Goodbye::Replaced));
            } else {
                let parts = parts.awake(&core);
                crate::runtime::io::spawn(live(shared, core, parts, true));
            }
        }
        Rouse::Goodbye(why) => {
            parts.slot.unpark();
            crate::runtime::io::spawn(goodbye(parts, why));
        }
    }
}

async fn goodbye(mut parts: Parked, why: Goodbye<'static>) {
    let bye = parts.session.goodbye(why);
    parts.link.out.extend_from_slice(bye.as_bytes());
    end(parts.link).await;
}

/// A parked session's turn awake: tells its client what changed (`changed`) or that the server
/// is still here, and lies down in the lot again. Every look at the store and the lying down
/// that follows it happen without an await between them, so no change slips past.
#[allow(clippy::manual_async_fn)] // see `live`
fn tend(
    shared: Arc<Shared>,
    core: Rc<Core>,
    mut parts: Parked,
    changed: bool,
    deadline: tokio::time::Instant,
) -> impl Future<Output = ()> {
    async move {
        let mut changed = changed;
        loop {
            let Parked { session, link, .. } = &mut parts;
            let out = &mut link.out;
            if with_ctx((&shared, &core), None, |ctx| session.idle_tick(changed, ctx, out)).is_err() {
                return end(parts.link).await;
            }
            if link.out.is_empty() {
                break;
            }
            if link.flush().await.is_err() {
                return end(parts.link).await;
            }
            changed = true;
        }
        lay_down(&shared, &core, parts, deadline);
    }
}

/// Puts a session in IDLE with nothing to send, or one quiet between commands, into its core's
/// lot, unless something already calls for it: a newer login in its place, shutdown, input its
/// TLS or DEFLATE layer holds, or a lot that takes no sleepers (then it waits in a task of its
/// own, reading).
fn lay_down(shared: &Arc<Shared>, core: &Rc<Core>, mut parts: Parked, deadline: tokio::time::Instant) {
    let why = if parts.slot.evicted() {
        Some(Rouse::Goodbye(Goodbye::Replaced))
    } else if core.shutdown.is_triggered() {
        Some(Rouse::Goodbye(Goodbye::ShuttingDown))
    } else if parts.link.conn.holds_input() {
        Some(Rouse::Ready)
    } else {
        None
    };
    if let Some(why) = why {
        return rouse(shared, core, parts, why);
    }
    settle_link(&mut parts.link);
    parts.link.conn.rest();
    let idle = parts.session.is_idle();
    if idle && !parts.slot.is_parked() {
        // A newer login of the same user at the per-user limit may take its place
        // (auth::limits); the lot hears of it by its bell.
        parts.slot.park_ringing(core.lot.bell());
    }
    // Only IDLE is kept alive (RFC 2177 §3); between commands the client's deadline is all.
    let keepalive = if idle {
        tokio::time::Instant::now() + parts.session.keepalive()
    } else {
        deadline
    };
    let due = Due { keepalive, deadline };
    if let Err(parts) = core.lot.park(parts, due) {
        // Its own task reads instead, and hears the shutdown there if that is why.
        rouse(shared, core, parts, Rouse::Ready);
    }
}

/// A new connection's session and its driver, with the greeting to send. The link is moved
/// in rather than looked at where `serve` awaits: a local that is borrowed keeps its room in
/// the session's future for good.
fn start(shared: &Arc<Shared>, core: &Core, via: Via, link: Link, shutdown: Shutdown) -> (Session, Driver) {
    let config = &shared.config.imap;
    let starttls = via == Via::Plain;
    let settings = core.imap_settings(starttls, || Settings {
        login_type: config.login_type,
        starttls,
        max_login_failures: shared.config.limits.max_login_failures,
        max_command_size: config.max_command_size,
        append_limit: config.append_limit,
        message_limit: config.message_limit(),
        server_name: shared.config.backend_name().to_owned(),
        parse: shared.config.parse_limits(),
        timeouts: config.timeouts(),
        idle_keepalive: Duration::from_secs(config.idle_keepalive),
        oauth: shared.config.oauth.is_configured(),
        protocol_log: config.protocol_log,
    });
    // A front end took care of the client's TLS; the link to it is a trusted network's.
    let session = Session::new(settings, link.conn.is_tls() || link.proxied);
    let mut d = Driver::new(link, shutdown, Some(shared.tls.clone()));
    session.greeting(&mut d.link.out);
    (session, d)
}

impl Protocol<Session> for Imap<'_> {
    fn input(&mut self, session: &mut Session, input: &[u8], link: &mut Link) -> Result<(usize, Action), Closed> {
        let (used, action) = self.step(link, |ctx, out| session.input(input, ctx, out))?;
        if matches!(action, Action::Close) {
            // LOGOUT's answer is about to go out: a client that logs in again the moment it
            // reads it must find its place at the per-user limit free already.
            self.slot.logout();
        }
        Ok((used, action))
    }

    async fn act(&mut self, d: &mut Driver, session: &mut Session, action: Action) -> Result<Action, Closed> {
        let shared = self.shared;
        Ok(match action {
            Action::Unauthenticated => {
                // RFC 8437: the connection no longer counts against the user.
                self.slot.logout();
                Action::Continue
            }
            Action::Login(credentials) => {
                self.flush(d).await?;
                let result = login::login(shared, &d.link, &credentials, Service::Imap, self.slot)
                    .await
                    .map(|u| (u.id, u.name, u.imap_disabled))
                    .map_err(|f| match f {
                        Failure::BadCredentials => LoginFailure::BadCredentials,
                        Failure::Refused(why) | Failure::Limit(why) => LoginFailure::Refused(why),
                        Failure::Temporary => LoginFailure::Temporary,
                    });
                let next = session.login_result(result, &mut d.link.out);
                login::after_login(shared, d, session).await?;
                next
            }
            Action::LookupScram(user) => {
                let keys = login::scram_keys(shared, &user).await;
                session.scram_credentials(keys, &mut d.link.out)
            }
            Action::Ingest { message, binary } => {
                let ingest = if binary {
                    crate::mime::ingest_binary_with
                } else {
                    crate::mime::ingest_with
                };
                let limits = shared.config.mime_limits();
                match shared.ingest_pool.run(move || ingest(message, &limits)).await {
                    Some(result) => session.ingested(result, &mut d.link.out),
                    None => Action::Close,
                }
            }
            Action::Write(op) => {
                // What FETCH referred to is not held while the write waits for the disk.
                if !self.referred.is_empty() {
                    self.flush(d).await?;
                }
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
                self.step(&mut d.link, |ctx, out| session.write_result(result, ctx, out))?
            }
            Action::StartCompress => {
                self.flush(d).await?;
                d.link.conn.start_deflate(shared.config.limits.max_inflate_per_second);
                // Whatever the client pipelined after COMPRESS was compressed already.
                let raw = d.input.take();
                d.link.conn.inflate_buffered(&raw, d.input.read_buffer())?;
                Action::Continue
            }
            Action::Flush => {
                if self.queued(d) == 0 {
                    // A SEARCH between two steps of its scan has often nothing to send: the
                    // other connections of this core run before its next step all the same.
                    tokio::task::yield_now().await;
                } else {
                    self.flush(d).await?;
                }
                self.step(&mut d.link, |ctx, out| session.resume(ctx, out))?
            }
            // The driver's own.
            action @ (Action::Continue | Action::Idle { .. } | Action::StartTls | Action::Close) => action,
        })
    }

    async fn flush(&mut self, d: &mut Driver) -> Result<(), Closed> {
        if self.referred.is_empty() {
            return d.link.flush().await;
        }
        // Boxed: a gathered write over TLS takes room every session's future would carry.
        Box::pin(send_referred(&mut d.link, &mut self.referred)).await
    }

    fn queued(&self, d: &Driver) -> usize {
        d.link.out.len() + self.referred.len()
    }

    async fn wait(&mut self, d: &mut Driver, session: &mut Session) -> Result<Waited, Closed> {
        let woken = std::mem::take(&mut self.woken);
        if session.is_idle() {
            settle(d);
            if !woken && !d.link.conn.holds_input() && d.input.pending().is_empty() {
                // Nothing to read until the socket says so: the session waits as data. (Input
                // the session left unread keeps it awake: a parked session holds none.)
                return Ok(Waited::Park);
            }
            // Parked while it waits, so a newer login of the same user at the per-user limit
            // may take its place (auth::limits).
            let parked = self.slot.park();
            let waited = idle(d, session, (self.shared, self.core), parked.as_deref()).await;
            self.slot.unpark();
            waited?;
            if self.slot.evicted() {
                // Taken over just as the client ended IDLE: its place is gone all the same.
                return Err(d.stopped(session, Stop::Goodbye(Goodbye::Replaced)));
            }
            return Ok(Waited::Input);
        }
        if session.notify_user().is_some() && !d.input.streaming() {
            // RFC 5465: a NOTIFY session hears of changes between commands too, so it waits
            // as IDLE does (a read stays pending beside the change feed).
            settle(d);
            idle(d, session, (self.shared, self.core), None).await?;
            return Ok(Waited::Input);
        }
        // A NOTIFY session streaming input gets here too; it never parks between commands,
        // where it would not hear of changes.
        let waits = session.between_commands()
            && session.notify_user().is_none()
            && d.input.pending().is_empty()
            && !d.link.conn.holds_input();
        // Boxed: inline, the wait's room would be part of every session's future.
        if !woken && waits && Box::pin(quiet(d)).await {
            return Ok(Waited::Park);
        }
        d.read(session).await?;
        Ok(Waited::Input)
    }
}

/// Waits up to `PARK_AFTER` for the socket to be readable; true if it was not and the session
/// is to park, with no operation of the wait left in flight. False when the client spoke (or
/// went away, or its socket failed) or the server shuts down: the read that follows tells.
async fn quiet(d: &Driver) -> bool {
    let fd = d.link.conn.raw_fd();
    // Bytes already queued (or a socket that will not say): the read that follows tells.
    if !matches!(crate::runtime::io::queued(fd), Ok(0)) {
        return false;
    }
    let waited = tokio::select! {
        biased;
        _ = crate::runtime::io::poll_readable(fd, ()) => false,
        () = d.shutdown.wait() => false,
        () = tokio::time::sleep(PARK_AFTER) => true,
    };
    if waited {
        // The poll was dropped still in flight, and would stay with the kernel until the
        // socket is readable: taken back, so the parked session holds no operation.
        crate::runtime::io::cancel_all(fd).await;
    }
    waited
}

/// Sends the output with the section data FETCH referred to, each piece at its place, as
/// one gathered write; leaves both empty.
async fn send_referred(link: &mut Link, referred: &mut Referred) -> Result<(), Closed> {
    let out = std::mem::take(&mut link.out);
    let mut gather = Gather::default();
    let mut from = 0;
    for (at, piece) in referred.take() {
        gather.text(&out[from..at]);
        gather.mapped(piece);
        from = at;
    }
    gather.text(&out[from..]);
    // The output around the pieces goes back for reuse. Nothing is logged: with a piece of at
    // least `render::REFER_FROM` bytes this is message data, which the protocol log leaves out (as
    // `Link::log_output` does any output of that size).
    link.out = out;
    link.out.clear();
    timed(link.conn.write_gather(&mut gather)).await
}

/// Before an idle wait: small reads, and no buffers kept (DESIGN.md §4).
fn settle(d: &mut Driver) {
    settle_link(&mut d.link);
    d.input.release();
}

/// `settle`'s part for the connection, all a parked session has.
fn settle_link(link: &mut Link) {
    link.conn.set_tls_read_size(TLS_READ_IDLE);
    link.release_output(false);
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
fn evicted(parked: Option<&LimitParked>) -> impl Future<Output = ()> + '_ {
    match parked {
        Some(p) => Either::Left(p.evicted()),
        None => Either::Right(std::future::pending()),
    }
}

/// IDLE, or a NOTIFY session between commands, waiting in its session's task: a read stays
/// pending throughout (tokio-uring cannot cancel one safely).
async fn idle(
    d: &mut Driver,
    session: &mut Session,
    (shared, core): (&Shared, &Core),
    parked: Option<&LimitParked>,
) -> Result<(), Closed> {
    // A small buffer: an idle connection parks next to nothing.
    let mut buf = Vec::with_capacity(64);
    let mut out = std::mem::take(&mut d.link.out);
    let woke = {
        let read = std::pin::pin!(d.link.conn.read(&mut buf));
        let env = (shared, core, &d.shutdown, parked);
        idle_loop(&d.link, &mut out, session, env, read).await
    };
    d.link.out = out;
    match woke? {
        Woke::Input(Ok(n)) if n > 0 && !d.link.is_kicked() => {
            d.input.read_buffer().extend_from_slice(&buf);
            Ok(())
        }
        Woke::Input(_) => {
            let stop = d.link.ended();
            Err(d.stopped(session, stop))
        }
        Woke::Goodbye(why) => Err(d.stopped(session, Stop::Goodbye(why))),
    }
}

/// What an idle wait needs besides its connection: the store and this core's change feed, the
/// server's shutdown, and the session's place at the per-user limit if it gave it up for now.
type IdleEnv<'a> = (&'a Shared, &'a Core, &'a Shutdown, Option<&'a LimitParked>);

/// How an idle wait ended.
enum Woke<T> {
    /// Its read completed, with this.
    Input(T),
    /// The deadline, shutdown or eviction: the session says goodbye.
    Goodbye(Goodbye<'static>),
}

/// The idle wait itself, in the session's task (`idle`): changes and keepalives are written out
/// as they come, until `input`, the pending read, completes, or the deadline the session
/// names, shutdown or eviction ends the wait with a goodbye.
async fn idle_loop<T>(
    link: &Link,
    out: &mut Vec<u8>,
    session: &mut Session,
    (shared, core, shutdown, parked): IdleEnv<'_>,
    mut input: Pin<&mut impl Future<Output = T>>,
) -> Result<Woke<T>, Closed> {
    let keepalive = session.keepalive();
    let deadline = tokio::time::Instant::from_std(session.deadline(Instant::now(), false));
    let watch = session.selected_mailbox().map(|m| core.watch(m));
    // NOTIFY (RFC 5465): every mailbox of the user, and the subscriptions.
    let user_watch = session.notify_user().map(|u| core.watch_user(u));
    // Armed before every look at the store, so a change committed while the session reads it
    // or writes to the client wakes the next wait instead of being missed.
    let mut armed = Armed::new(watch.as_deref(), user_watch.as_deref());
    // What changed between the session's last look and arming is reported at once.
    let mut changed = true;
    loop {
        with_ctx((shared, core), None, |ctx| session.idle_tick(changed, ctx, out)).map_err(|_| Closed)?;
        if !out.is_empty() {
            link.log_output(out);
            // Boxed: the write and its timer are only alive while sending; inline they would
            // be part of every idle session's state.
            if let Some(early) = Box::pin(send(link, out, input.as_mut())).await? {
                return Ok(Woke::Input(early));
            }
        }
        // One timer for the keepalive and the deadline: each timer is room in every idle
        // session.
        let keepalive_due = tokio::time::Instant::now() + keepalive;
        let (wake, ends) = if deadline <= keepalive_due {
            (deadline, true)
        } else {
            (keepalive_due, false)
        };
        changed = tokio::select! {
            r = input.as_mut() => return Ok(Woke::Input(r)),
            () = armed.fired() => true,
            () = tokio::time::sleep_until(wake) => {
                if ends {
                    return Ok(Woke::Goodbye(Goodbye::IdleTimeout));
                }
                false
            }
            () = shutdown.wait() => return Ok(Woke::Goodbye(Goodbye::ShuttingDown)),
            () = evicted(parked) => return Ok(Woke::Goodbye(Goodbye::Replaced)),
        };
        armed = Armed::new(watch.as_deref(), user_watch.as_deref());
    }
}

/// Sends an idle session's updates, polling its `input` meanwhile: a TLS read may be sending
/// what rustls had to say (an alert, a key update) and hold the writes' turn until it is
/// polled again. What the input came to, if it completed first.
async fn send<T>(
    link: &Link,
    out: &mut Vec<u8>,
    mut input: Pin<&mut impl Future<Output = T>>,
) -> Result<Option<T>, Closed> {
    let mut write = std::pin::pin!(timed(link.conn.write(out)));
    let mut early = None;
    loop {
        tokio::select! {
            biased;
            sent = &mut write => {
                sent?;
                return Ok(early);
            }
            r = input.as_mut(), if early.is_none() => early = Some(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn returned_size<A, B, C, D, E, G, H, F>(_: impl FnOnce(A, B, C, D, E, G, H) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// What every connection holds while it is not parked is the session's future: it must
    /// not carry what it moved on (rust-lang/rust#62958) or what only runs briefly.
    #[test]
    fn a_session_future_stays_small() {
        let size = returned_size(serve);
        // 3,016 bytes before the driver's and `serve`'s arguments stopped being kept twice,
        // the write timeout's future once more, and IDLE's two timers became one; 2,320
        // before the settings were shared; 2,224 before sessions parked (what a parked
        // session keeps is gathered in `Parked`), the session's rare parts (steps, a refused
        // command) were boxed, its deadline stopped copying the timeouts and waiting for
        // shutdown became a bare `Notified`.
        assert!(size <= 2100, "an IMAP session's future grew to {size} bytes");
    }
}
