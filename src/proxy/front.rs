//! The one proxy core for IMAP4, POP3 and submission (shared/STYLE.md §7): admission, TLS,
//! the protocol's own pre-login session, the login against the directory and its policy,
//! opening the back end, and the relay. What differs by protocol is the `PreLogin` session
//! and the back end's login dialect (`backend::open`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backend::{self, BackendError};
use super::Front;
use crate::auth::limits::{ConnectionLimits, Slot};
use crate::auth::login::Credentials;
use crate::auth::policy::Protocol;
use crate::directory::Account;
use crate::goodbye::{Goodbye, Wire};
use crate::net::Conn;
use crate::runtime::io::Stream;
use crate::runtime::Shutdown;
use crate::serve::login::{login_via, Failure, Gate};

/// What a pre-login session asks the core to do.
pub enum Step {
    /// Wait for more input.
    Read,
    StartTls,
    Login(Credentials),
    /// SCRAM asks for the user's stored keys.
    LookupScram(String),
    Close,
}

/// A protocol's session up to login, as the core drives it.
pub trait PreLogin {
    const PROTOCOL: Protocol;
    /// Its name in the protocol log, and its words for a session the front end ends on its
    /// own.
    type Wire: Wire;

    fn greeting(&self, out: &mut Vec<u8>);
    /// Takes client input; answers how much it used and what to do next.
    fn input(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Step);
    fn tls_started(&mut self);
    /// The stored SCRAM keys of the user `LookupScram` named, if the directory has them.
    fn scram_credentials(&mut self, keys: Option<crate::auth::scram::ScramCredentials>, out: &mut Vec<u8>) -> Step;
    fn login_failed(&mut self, failure: Failure, out: &mut Vec<u8>) -> Step;
    /// The back end took the login; `answer` is its reply (`backend::Opened::answer`).
    fn logged_in(&mut self, answer: &str, out: &mut Vec<u8>);
    /// What the protocol log may show of the input `input` took (passwords redacted).
    fn take_log(&mut self) -> Option<String>;
}

/// A listener's settings, as `serve` has them for the protocol.
pub struct Listener {
    pub implicit_tls: bool,
    pub pre_auth_timeout: Duration,
    pub limits: Arc<ConnectionLimits>,
    pub protocol_log: bool,
}

/// One client, from accept to the end of its relayed session.
pub async fn serve<S: PreLogin>(
    front: Arc<Front>,
    listener: &Listener,
    stream: Stream,
    peer: SocketAddr,
    make: impl FnOnce(bool) -> S,
    shutdown: Shutdown,
) {
    let limit = listener.pre_auth_timeout;
    // One deadline from accept to login, however the client trickles its bytes.
    let login_by = tokio::time::Instant::now() + limit;
    // The address the client connected to, for the back end's PROXY v2 header.
    let local = stream.local_addr().unwrap_or(peer);
    let tls = listener.implicit_tls.then_some((&front.tls, limit));
    let conn = Conn::new(stream, Some(peer.ip()));
    let refusal = |hit: crate::auth::limits::LimitHit| S::Wire::goodbye(Goodbye::Refused(&hit.to_string()));
    let Some((conn, mut slot)) = crate::serve::admit(conn, &listener.limits, tls, refusal).await else {
        return;
    };
    let mut c = Client {
        front: &front,
        conn,
        out: Vec::new(),
        id: front.session_id(),
        log: listener.protocol_log,
        protocol: S::Wire::NAME,
    };
    if c.log {
        c.logged('*', crate::serve::connected(c.conn.peer, None).as_bytes());
    }
    let mut session = make(c.conn.is_tls());
    session.greeting(&mut c.out);
    let mut input = Vec::new();
    let mut budget = crate::serve::Budget::default();
    loop {
        // Feed the session what the client sent, and carry out what it asks.
        let mut step = Step::Read;
        while !input.is_empty() {
            let (used, next) = session.input(&input, &mut c.out);
            if let Some(line) = session.take_log().filter(|_| c.log) {
                c.logged('<', line.as_bytes());
            }
            input.drain(..used);
            step = next;
            if !matches!(step, Step::Read) || used == 0 {
                break;
            }
            if budget.spend(c.out.len()) {
                if c.flush().await.is_err() {
                    return c.conn.close().await;
                }
                tokio::task::yield_now().await;
            }
        }
        // Commands pipelined behind one that needed the core (a failed login) are taken
        // before waiting for more input.
        let acted = !matches!(step, Step::Read);
        loop {
            step = match step {
                Step::Read => break,
                Step::Close => return c.close().await,
                Step::StartTls => {
                    if c.flush().await.is_err() {
                        return c.conn.close().await;
                    }
                    // Nothing sent in plaintext survives the upgrade (RFC 3207 §4.2, 2595 §4).
                    input.clear();
                    match tokio::time::timeout(limit, c.conn.start_tls(front.tls.clone())).await {
                        Ok(Ok(())) => session.tls_started(),
                        _ => return c.conn.close().await,
                    }
                    Step::Read
                }
                Step::LookupScram(user) => {
                    let directory = front.clone();
                    let keys = front.login_pool.run(move || directory.directory.scram(&user)).await;
                    let keys =
                        keys.and_then(|k| k.map_err(|e| tracing::error!(session = c.id, "SCRAM keys: {e}")).ok());
                    session.scram_credentials(keys.flatten(), &mut c.out)
                }
                Step::Login(credentials) => {
                    // Replies pipelined before the login go out before any penalty delay.
                    if c.flush().await.is_err() {
                        return c.conn.close().await;
                    }
                    match open::<S>(&c, &credentials, &mut slot, (peer, local)).await {
                        Ok(opened) => {
                            session.logged_in(&opened.answer, &mut c.out);
                            if c.flush().await.is_err() {
                                return c.conn.close().await;
                            }
                            // The relay is a task of its own, so the session and buffers of
                            // this one are not held for as long as the session lasts.
                            let pipelined = std::mem::take(&mut input);
                            let bytes = (pipelined, opened.rest);
                            crate::runtime::io::spawn(super::relay::relay(c.conn, opened.conn, bytes, slot, shutdown));
                            return;
                        }
                        Err(failure) => session.login_failed(failure, &mut c.out),
                    }
                }
            };
        }
        if acted && !input.is_empty() {
            continue;
        }
        if c.flush().await.is_err() {
            return c.conn.close().await;
        }
        let read = tokio::time::timeout_at(login_by, c.conn.read(&mut input));
        let outcome = tokio::select! {
            r = read => r,
            () = shutdown.wait() => {
                c.out.extend_from_slice(S::Wire::goodbye(Goodbye::ShuttingDown).as_bytes());
                return c.close().await;
            }
        };
        match outcome {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => return c.conn.close().await,
            Err(_) => {
                c.out
                    .extend_from_slice(S::Wire::goodbye(Goodbye::IdleTimeout).as_bytes());
                return c.close().await;
            }
        }
    }
}

/// A client connection before its relay.
struct Client<'a> {
    front: &'a Arc<Front>,
    conn: Conn,
    out: Vec<u8>,
    id: u64,
    log: bool,
    protocol: &'static str,
}

impl Client<'_> {
    fn logged(&self, direction: char, bytes: &[u8]) {
        if let Some(log) = &self.front.protolog {
            log.log(self.protocol, self.id, direction, bytes);
        }
    }

    async fn flush(&mut self) -> Result<(), ()> {
        if self.out.is_empty() {
            return Ok(());
        }
        if self.log {
            self.logged('>', &self.out);
        }
        crate::serve::link::timed(self.conn.write(&mut self.out))
            .await
            .map_err(|_| ())
    }

    async fn close(mut self) {
        let _ = self.flush().await;
        self.conn.close().await;
    }
}

/// Logs the client in at the directory and opens its session on the back end.
async fn open<S: PreLogin>(
    c: &Client<'_>,
    credentials: &Credentials,
    slot: &mut Slot,
    (peer, local): (SocketAddr, SocketAddr),
) -> Result<backend::Opened, Failure> {
    let front = c.front;
    let account = login(front, c.conn.peer, credentials, S::PROTOCOL, slot).await?;
    let cluster = &front.config.cluster;
    let backend = cluster.backend(&account.mail_host);
    let addr = backend.and_then(|b| match S::PROTOCOL {
        Protocol::Imap => b.imap,
        Protocol::Pop3 => b.pop3,
        Protocol::Submission => b.submission,
    });
    let Some(addr) = addr else {
        tracing::error!(
            user = %account.name,
            mail_host = %account.mail_host,
            "no {} back end by that name in cluster.backends",
            S::PROTOCOL.name()
        );
        return Err(Failure::Temporary);
    };
    let proxy = (cluster.proxy_user.as_str(), cluster.proxy_secret.as_str());
    let hostname = &front.config.server.hostname;
    let breakers = &front.breakers;
    let opened = if breakers.allow(addr, Instant::now()) {
        let tls = backend.and_then(|b| front.backend_tls(b));
        backend::open(S::PROTOCOL, addr, (peer, local), tls, &account.name, proxy, hostname).await
    } else {
        Err(BackendError::Down(addr))
    };
    match &opened {
        Ok(_) => breakers.succeeded(addr),
        Err(BackendError::Down(_)) => {}
        Err(e) if e.is_outage() => {
            if breakers.failed(addr, Instant::now()) {
                tracing::error!("{e}; not trying it again for {} s", super::breaker::OPEN_FOR.as_secs());
            }
        }
        // It answered: it is there.
        Err(_) => breakers.succeeded(addr),
    }
    opened.map_err(|e| {
        tracing::warn!(user = %account.name, "{e}");
        match e {
            BackendError::Refused(..) => Failure::Refused("the mailbox server refused the session".into()),
            _ => Failure::Temporary,
        }
    })
}

/// Checks `credentials` in the directory and the account's policy on the login pool, with
/// the failed-login penalty and the per-user limit as `serve` has them.
async fn login(
    front: &Arc<Front>,
    peer: std::net::IpAddr,
    credentials: &Credentials,
    protocol: Protocol,
    slot: &mut Slot,
) -> Result<Account, Failure> {
    let check = {
        let (front, credentials) = (front.clone(), credentials.clone());
        move || crate::auth::login::directory_account(&*front.directory, &credentials, protocol)
    };
    let gate = Gate {
        pool: &front.login_pool,
        penalties: &front.penalties,
        peer,
        session: 0,
    };
    login_via(gate, credentials.user(), slot, check, |a: &Account| &a.name).await
}
