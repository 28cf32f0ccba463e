//! What every client protocol's driver does alike with its connection, written once: taking
//! the client in (a front end's PROXY header, limits, implicit TLS: `accept_client`), the
//! protocol log, sending with a write timeout, and waiting for input under the session's read
//! deadline or the server's shutdown, with the protocol's goodbye when either ends the wait.
//! The drivers keep what differs: their sessions' actions, and how they buffer input.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{accept_client, connected, Shared, Via};
use crate::auth::limits::{ConnectionLimits, Slot};
use crate::goodbye::{Goodbye, Wire};
use crate::net::Conn;
use crate::runtime::io::Stream;
use crate::runtime::Shutdown;

/// A client that does not take our output for this long is gone.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// Output up to this size goes to the protocol log; longer output is message data.
const LOG_OUTPUT_MAX: usize = 4096;

/// The connection is over: nothing more is read, and only the goodbye is still sent.
pub(crate) struct Closed;

impl From<std::io::Error> for Closed {
    fn from(_: std::io::Error) -> Closed {
        Closed
    }
}

/// How a listener's connections are taken in and timed.
pub(crate) struct Terms<'a> {
    pub limits: &'a Arc<ConnectionLimits>,
    /// For the login, the TLS handshake and a line begun after login.
    pub pre_auth: Duration,
    /// Between commands once logged in.
    pub auth: Duration,
    /// The protocol log is on for this protocol.
    pub logged: bool,
}

/// One client connection.
pub(crate) struct Link<'a, P> {
    pub shared: &'a Arc<Shared>,
    pub conn: Conn,
    /// Output not yet sent.
    pub out: Vec<u8>,
    pub id: u64,
    /// On a proxy-facing listener: a front end's link, which counts as TLS and may log in for
    /// its users.
    pub proxied: bool,
    logged: bool,
    deadline: ReadDeadline,
    protocol: PhantomData<P>,
}

impl<'a, P: Wire> Link<'a, P> {
    /// Takes a client in; `None` once it was refused (and told why) or went away.
    pub async fn open(
        shared: &'a Arc<Shared>,
        (stream, peer, via): (Stream, Option<SocketAddr>, Via),
        terms: Terms<'_>,
    ) -> Option<(Link<'a, P>, Slot)> {
        let conn = Conn::new(stream, peer.map(|p| p.ip()));
        let refusal = |hit: crate::auth::limits::LimitHit| P::goodbye(Goodbye::Refused(&hit.to_string()));
        // `front`: the front end a proxied client came through, for the protocol log.
        let (conn, slot, front) = accept_client(shared, conn, via, (terms.limits, terms.pre_auth), refusal).await?;
        let link = Link {
            shared,
            conn,
            out: Vec::new(),
            id: shared.session_id(),
            proxied: via == Via::Proxy,
            logged: terms.logged,
            deadline: ReadDeadline::new(terms.pre_auth, terms.auth),
            protocol: PhantomData,
        };
        link.log('*', connected(link.conn.peer, front).as_bytes());
        Some((link, slot))
    }

    /// A line of the protocol log, when it is on: `<` client input, `>` output, `*` events.
    pub fn log(&self, direction: char, bytes: &[u8]) {
        if let Some(log) = self.shared.protolog.as_ref().filter(|_| self.logged) {
            log.log(P::NAME, self.id, direction, bytes);
        }
    }

    /// Sends the output.
    pub async fn flush(&mut self) -> Result<(), Closed> {
        if self.out.is_empty() {
            return Ok(());
        }
        if self.logged && self.out.len() < LOG_OUTPUT_MAX {
            self.log('>', &self.out);
        }
        timed(self.conn.write(&mut self.out)).await
    }

    /// Reads client bytes into `buf` before the session's deadline (for a session (not)
    /// logged in and (not) in the middle of a line), unless the server shuts down first.
    /// Shutdown and the deadline leave the protocol's goodbye in the output.
    pub async fn read(
        &mut self,
        buf: &mut Vec<u8>,
        (authenticated, mid_line): (bool, bool),
        shutdown: &Shutdown,
    ) -> Result<usize, Closed> {
        let deadline = self.deadline.next(authenticated, mid_line);
        let read = tokio::time::timeout_at(deadline, self.conn.read(buf));
        let outcome = tokio::select! {
            r = read => r,
            () = shutdown.wait() => {
                self.out.extend_from_slice(P::goodbye(Goodbye::ShuttingDown).as_bytes());
                return Err(Closed);
            }
        };
        match outcome {
            Ok(Ok(n)) if n > 0 => Ok(n),
            Ok(_) => Err(Closed),
            Err(_) => {
                self.out.extend_from_slice(P::goodbye(Goodbye::IdleTimeout).as_bytes());
                Err(Closed)
            }
        }
    }

    /// Sends what is left (the goodbye, say) and closes.
    pub async fn close(mut self) {
        let _ = self.flush().await;
        self.conn.close().await;
    }
}

/// `write` (a gathered message, say) under the write timeout.
pub(crate) async fn timed<T>(write: impl std::future::Future<Output = std::io::Result<T>>) -> Result<T, Closed> {
    Ok(tokio::time::timeout(WRITE_TIMEOUT, write).await.map_err(|_| Closed)??)
}

/// When a connection's next read must have come: before login, one deadline from accept to
/// login, however the client trickles its bytes (a slow sender cannot hold a connection by
/// sending a byte now and then); after it, `auth_timeout` of silence, and a command line once
/// begun must end within `pre_auth_timeout` (literal and message data are not lines: they
/// only have to keep coming).
pub(crate) struct ReadDeadline {
    pre_auth: Duration,
    auth: Duration,
    /// The login deadline, while not logged in.
    login_by: Option<tokio::time::Instant>,
    /// When the unfinished line after login began.
    line_since: Option<tokio::time::Instant>,
}

impl ReadDeadline {
    /// Starts the login deadline now (at accept).
    pub(crate) fn new(pre_auth: Duration, auth: Duration) -> ReadDeadline {
        ReadDeadline {
            pre_auth,
            auth,
            login_by: Some(tokio::time::Instant::now() + pre_auth),
            line_since: None,
        }
    }

    /// The instant the next read times out, for a session that is (not) logged in and is (not)
    /// in the middle of a line. Leaving the logged-in state (IMAP UNAUTHENTICATE) starts a new
    /// login deadline.
    pub(crate) fn next(&mut self, authenticated: bool, mid_line: bool) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        if !authenticated {
            self.line_since = None;
            return *self.login_by.get_or_insert(now + self.pre_auth);
        }
        self.login_by = None;
        if !mid_line {
            self.line_since = None;
            return now + self.auth;
        }
        let since = *self.line_since.get_or_insert(now);
        (now + self.auth).min(since + self.pre_auth)
    }
}
