//! What every client protocol's driver does alike with its connection, written once: taking
//! the client in (a front end's PROXY header, limits, implicit TLS: `accept_client`), the
//! protocol log, sending with a write timeout, and waiting for input until the deadline the
//! session named or the server's shutdown, with the protocol's goodbye when either ends the
//! wait. The proxy's front end uses it too (`Link::new`), after its own admission.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use super::{accept_client, connected, Shared, Via};
use crate::auth::limits::{ConnectionLimits, Slot};
use crate::goodbye::{Goodbye, Wire};
use crate::net::Conn;
use crate::protolog::ProtoLog;
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

/// How a listener's connections are taken in.
pub(crate) struct Terms<'a> {
    pub limits: &'a Arc<ConnectionLimits>,
    /// For the implicit TLS handshake.
    pub pre_auth: Duration,
    /// The protocol log is on for this protocol.
    pub logged: bool,
}

/// Output buffers up to this size are kept between commands while input streams in.
const KEEP_OUTPUT: usize = 4096;

/// One client connection.
pub(crate) struct Link {
    /// Its entry among the server's live sessions (`ringmail who`, `kick`, the metrics).
    /// First, so it is dropped before the connection: a kick then never reaches a descriptor
    /// that has been closed and reused.
    pub listed: Option<crate::sessions::Handle>,
    pub conn: Conn,
    /// Output not yet sent.
    pub out: Vec<u8>,
    pub id: u64,
    /// On a proxy-facing listener: a front end's link, which counts as TLS and may log in for
    /// its users.
    pub proxied: bool,
    /// The front end passes the client's TLS session after its login (`net::handoff`).
    pub pass_tls: bool,
    /// The protocol log, when it is on for this protocol, and the protocol's name in it.
    /// Boxed: it is off by default, and every session would carry its room.
    log: Option<Box<(ProtoLog, &'static str)>>,
}

/// Why a read ended without input.
pub(crate) enum Stop {
    /// The client closed, or the connection failed.
    Closed,
    /// The deadline passed, or the server shuts down: the session says goodbye.
    Goodbye(Goodbye<'static>),
}

impl Link {
    /// Takes a client of `serve` in, for protocol `P`; `None` once it was refused (and told
    /// why) or went away.
    pub async fn open<P: Wire>(
        shared: &Arc<Shared>,
        (stream, peer, via): (Stream, Option<SocketAddr>, Via),
        terms: Terms<'_>,
    ) -> Option<(Link, Slot)> {
        let conn = Conn::new(stream, peer.map(|p| p.ip()));
        let refusal = |hit: crate::auth::limits::LimitHit| P::goodbye(Goodbye::Refused(&hit.to_string()));
        // `front`: the front end a proxied client came through, for the protocol log.
        let (conn, slot, front) = accept_client(shared, conn, via, (terms.limits, terms.pre_auth), refusal).await?;
        let log = shared.protolog.as_ref().filter(|_| terms.logged).cloned();
        let mut link = Link::new(conn, shared.session_id(), log.map(|l| (l, P::NAME)));
        link.proxied = via == Via::Proxy;
        link.pass_tls = front.is_some_and(|f| f.pass_tls);
        link.list(&shared.sessions, P::NAME);
        link.log('*', connected(link.conn.peer, front.map(|f| f.addr)).as_bytes());
        Some((link, slot))
    }

    /// A connection already admitted, as session `id`, logged to `log` under a protocol's
    /// name if given.
    pub fn new(conn: Conn, id: u64, log: Option<(ProtoLog, &'static str)>) -> Link {
        Link {
            conn,
            out: Vec::new(),
            id,
            proxied: false,
            pass_tls: false,
            log: log.map(Box::new),
            listed: None,
        }
    }

    /// Files the session among the server's live sessions as one of `protocol`.
    pub fn list(&mut self, registry: &crate::sessions::Registry, protocol: &'static str) {
        self.listed = Some(registry.register(crate::sessions::Arrival {
            id: self.id,
            protocol,
            peer: Some(self.conn.peer),
            tls: self.conn.is_tls() || self.proxied,
            fd: Some(self.conn.raw_fd()),
        }));
    }

    /// A line of the protocol log, when it is on: `<` client input, `>` output, `*` events.
    pub fn log(&self, direction: char, bytes: &[u8]) {
        if let Some((log, name)) = self.log.as_deref() {
            log.log(name, self.id, direction, bytes);
        }
    }

    /// Logs output about to be sent, unless it is message data.
    pub fn log_output(&self, out: &[u8]) {
        if self.log.is_some() && !out.is_empty() && out.len() < LOG_OUTPUT_MAX {
            self.log('>', out);
        }
    }

    /// Sends the output.
    pub async fn flush(&mut self) -> Result<(), Closed> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.log_output(&self.out);
        timed(self.conn.write(&mut self.out)).await
    }

    /// Reads client bytes into `buf` before `deadline`, unless the server shuts down first.
    pub async fn read(&mut self, buf: &mut Vec<u8>, deadline: Instant, shutdown: &Shutdown) -> Result<usize, Stop> {
        let read = tokio::time::timeout_at(deadline.into(), self.conn.read(buf));
        let outcome = tokio::select! {
            r = read => r,
            () = shutdown.wait() => return Err(Stop::Goodbye(Goodbye::ShuttingDown)),
        };
        match outcome {
            // Kicked while it kept sending: its socket's reading side is shut, but what was
            // queued (or sent since) is still read.
            Ok(Ok(n)) if n > 0 && self.is_kicked() => Err(Stop::Goodbye(Goodbye::Kicked)),
            Ok(Ok(n)) if n > 0 => Ok(n),
            Ok(_) => Err(self.ended()),
            Err(_) => Err(Stop::Goodbye(Goodbye::IdleTimeout)),
        }
    }

    /// Why a read found no more input: the client went, or the operator kicked the session
    /// (its socket's reading side was shut), which is owed a goodbye.
    pub fn ended(&self) -> Stop {
        if self.is_kicked() {
            Stop::Goodbye(Goodbye::Kicked)
        } else {
            Stop::Closed
        }
    }

    /// The operator ended the session (`ringmail kick`).
    pub fn is_kicked(&self) -> bool {
        self.listed.as_ref().is_some_and(|l| l.is_kicked())
    }

    /// Before waiting for the client: the (sent, empty) output buffer is given back, so a
    /// waiting connection parks none, unless more input is likely (`keep`) and it is small.
    pub fn release_output(&mut self, keep: bool) {
        if self.out.is_empty() && !(keep && self.out.capacity() <= KEEP_OUTPUT) {
            self.out = Vec::new();
        }
    }

    /// Sends what is left (the goodbye, say) and closes.
    pub async fn close(mut self) {
        let _ = self.flush().await;
        self.listed = None;
        self.conn.close().await;
    }
}

/// `write` (a gathered message, say) under the write timeout.
///
/// A combinator, not an `async fn`: that would keep `write` twice, as its argument and inside
/// the timeout, in every session's future.
pub(crate) fn timed<T>(
    write: impl std::future::Future<Output = std::io::Result<T>>,
) -> impl std::future::Future<Output = Result<T, Closed>> {
    tokio::time::timeout(WRITE_TIMEOUT, write).map(|r| Ok(r.map_err(|_| Closed)??))
}
