//! IMAP's part of the driver (`driver::Protocol`): carries out `imap::Session`'s actions —
//! login, APPEND ingest on the blocking pool, writes through the store's
//! writer, flushing long FETCHes and yielding between the steps of a SEARCH, SORT or THREAD
//! scan, and IDLE, where the client's DONE, changes on the core's feed, the keepalive timer
//! and shutdown are awaited together without ever dropping a read.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use super::core::{Core, SnapRead};
use super::driver::{self, Driver, Protocol};
use super::link::{Closed, Link, Stop, Terms, WRITE_TIMEOUT};
use super::login::{self, Failure};
use super::{Shared, Via};
use crate::auth::limits::{Parked, Slot};
use crate::auth::policy::Protocol as Service;
use crate::engine::Engine;
use crate::goodbye::Goodbye;
use crate::imap::fault::Imap as Wire;
use crate::imap::{Action, Ctx, LoginFailure, Session, Settings};
use crate::net::conn::TLS_READ_IDLE;
use crate::runtime::io::Stream;
use crate::runtime::Shutdown;
use crate::store::StoreError;

/// IMAP's part of the driver.
struct Imap<'a> {
    shared: &'a Arc<Shared>,
    core: &'a Core,
    slot: Slot,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs `f` with a fresh read snapshot and this core's views.
fn with_ctx<T>(shared: &Shared, core: &Core, f: impl FnOnce(&mut Ctx<'_>) -> T) -> Result<T, StoreError> {
    let snapshot = shared.store.snapshot()?;
    let reader = SnapRead(&snapshot);
    core.catch_up();
    let mut views = core.views();
    let mut ctx = Ctx {
        store: &reader,
        views: &mut *views,
        recent: shared.store.recent(),
        now: now(),
    };
    Ok(f(&mut ctx))
}

/// Serves one IMAP connection to its end.
///
/// Not an `async fn`: that would keep its arguments twice in every session's future, as
/// arguments and as the locals they are moved into (rust-lang/rust#62958).
#[allow(clippy::manual_async_fn)] // see above
pub fn serve(
    shared: Arc<Shared>,
    core: Rc<Core>,
    stream: Stream,
    peer: Option<SocketAddr>,
    via: Via,
    shutdown: Shutdown,
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
        let (mut session, d) = start(&shared, &core, via, link, (shutdown, pre_auth));
        let mut imap = Imap {
            shared: &shared,
            core: &core,
            slot,
        };
        driver::drive(d, &mut imap, &mut session).await;
    }
}

/// A new connection's session and its driver. The link is moved in rather than looked at
/// where `serve` awaits: a local that is borrowed keeps its room in the session's future
/// for good.
fn start<'a>(
    shared: &'a Arc<Shared>,
    core: &Core,
    via: Via,
    link: Link<'a>,
    (shutdown, pre_auth): (Shutdown, Duration),
) -> (Session, Driver<'a>) {
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
    });
    // A front end took care of the client's TLS; the link to it is a trusted network's.
    let session = Session::new(settings, link.conn.is_tls() || link.proxied);
    (session, Driver::new(link, shutdown, Some((&shared.tls, pre_auth))))
}

impl Protocol<Session> for Imap<'_> {
    fn input(&mut self, session: &mut Session, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, Action), Closed> {
        let (used, action) =
            with_ctx(self.shared, self.core, |ctx| session.input(input, ctx, out)).map_err(|_| Closed)?;
        if matches!(action, Action::Close) {
            // LOGOUT's answer is about to go out: a client that logs in again the moment it
            // reads it must find its place at the per-user limit free already.
            self.slot.logout();
        }
        Ok((used, action))
    }

    async fn act(&mut self, d: &mut Driver<'_>, session: &mut Session, action: Action) -> Result<Action, Closed> {
        let shared = self.shared;
        Ok(match action {
            Action::Unauthenticated => {
                // RFC 8437: the connection no longer counts against the user.
                self.slot.logout();
                Action::Continue
            }
            Action::Login(credentials) => {
                d.link.flush().await?;
                let result = login::login(shared, &d.link, &credentials, Service::Imap, &mut self.slot)
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
                let parsed = tokio::task::spawn_blocking(move || ingest(message, &limits)).await;
                match parsed {
                    Ok(result) => session.ingested(result, &mut d.link.out),
                    Err(_) => Action::Close,
                }
            }
            Action::Write(op) => {
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
                let out = &mut d.link.out;
                with_ctx(shared, self.core, |ctx| session.write_result(result, ctx, out)).map_err(|_| Closed)?
            }
            Action::StartCompress => {
                d.link.flush().await?;
                d.link.conn.start_deflate(shared.config.limits.max_inflate_per_second);
                // Whatever the client pipelined after COMPRESS was compressed already.
                let raw = d.input.take();
                d.link.conn.inflate_buffered(&raw, d.input.read_buffer())?;
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
                let out = &mut d.link.out;
                with_ctx(shared, self.core, |ctx| session.resume(ctx, out)).map_err(|_| Closed)?
            }
            // The driver's own.
            action @ (Action::Continue | Action::Idle { .. } | Action::StartTls | Action::Close) => action,
        })
    }

    async fn wait(&mut self, d: &mut Driver<'_>, session: &mut Session) -> Result<(), Closed> {
        if session.is_idle() {
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
            Ok(())
        } else if session.notify_user().is_some() && !d.input.streaming() {
            // RFC 5465: a NOTIFY session hears of changes between commands too, so it waits
            // as IDLE does (a read stays pending beside the change feed), but is not parked.
            idle(d, session, (self.shared, self.core), None).await
        } else {
            d.read(session).await
        }
    }
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
/// mailbox changes and keepalives are written out beside it, until the deadline the session
/// names.
async fn idle(
    d: &mut Driver<'_>,
    session: &mut Session,
    (shared, core): (&Shared, &Core),
    parked: Option<&Parked>,
) -> Result<(), Closed> {
    let keepalive = session.keepalive();
    let deadline = tokio::time::Instant::from_std(session.deadline(Instant::now(), false));
    let watch = session.selected_mailbox().map(|m| core.watch(m));
    // NOTIFY (RFC 5465): every mailbox of the user, and the subscriptions.
    let user_watch = session.notify_user().map(|u| core.watch_user(u));
    d.link.conn.set_tls_read_size(TLS_READ_IDLE);
    d.release_output(false);
    d.input.release();
    // A small buffer: an idle connection parks next to nothing.
    let mut buf = Vec::with_capacity(64);
    let mut out = std::mem::take(&mut d.link.out);
    let link = &d.link;
    let result = {
        let read = link.conn.read(&mut buf);
        tokio::pin!(read);
        // Armed before every look at the store, so a change committed while the session
        // reads it or writes to the client wakes the next wait instead of being missed.
        let mut armed = Armed::new(watch.as_deref(), user_watch.as_deref());
        // What changed between the session's last look and arming is reported at once.
        let mut changed = true;
        loop {
            with_ctx(shared, core, |ctx| session.idle_tick(changed, ctx, &mut out)).map_err(|_| Closed)?;
            if !out.is_empty() {
                link.log_output(&out);
                // Boxed: the write and its timer are only alive while sending; inline they
                // would be part of every idle session's state.
                Box::pin(tokio::time::timeout(WRITE_TIMEOUT, link.conn.write(&mut out)))
                    .await
                    .map_err(|_| Closed)??;
            }
            // One timer for the keepalive and the deadline: each timer is room in every
            // idle session.
            let keepalive_due = tokio::time::Instant::now() + keepalive;
            let (wake, ends) = if deadline <= keepalive_due {
                (deadline, true)
            } else {
                (keepalive_due, false)
            };
            changed = tokio::select! {
                r = &mut read => break Ok(r),
                () = armed.fired() => true,
                () = tokio::time::sleep_until(wake) => {
                    if ends {
                        break Err(Goodbye::IdleTimeout);
                    }
                    false
                }
                () = d.shutdown.wait() => break Err(Goodbye::ShuttingDown),
                () = evicted(parked) => break Err(Goodbye::Replaced),
            };
            armed = Armed::new(watch.as_deref(), user_watch.as_deref());
        }
    };
    d.link.out = out;
    match result {
        Ok(Ok(n)) if n > 0 && !d.link.is_kicked() => {
            d.input.read_buffer().extend_from_slice(&buf);
            Ok(())
        }
        Ok(_) => {
            let stop = d.link.ended();
            Err(d.stopped(session, stop))
        }
        Err(why) => Err(d.stopped(session, Stop::Goodbye(why))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn returned_size<A, B, C, D, E, G, F>(_: impl FnOnce(A, B, C, D, E, G) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// What every connection holds for its life, in IDLE or not, is the session's future:
    /// it must not carry what it moved on (rust-lang/rust#62958) or what only runs briefly.
    #[test]
    fn a_session_future_stays_small() {
        let size = returned_size(serve);
        // 3,016 bytes before the driver's and `serve`'s arguments stopped being kept twice,
        // the write timeout's future once more, and IDLE's two timers became one; 2,320
        // before the settings were shared.
        assert!(size <= 2300, "an IMAP session's future grew to {size} bytes");
    }
}
