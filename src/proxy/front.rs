//! The one proxy core for IMAP4, POP3 and submission (shared/STYLE.md §7): admission, then
//! the protocol's own pre-login session on the one driver (`serve::driver`), the login against
//! the directory and its policy, opening the back end, and the relay. What differs by protocol
//! is the `PreLogin` session and the back end's login dialect (`backend::open`).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backend::{self, BackendError, LinkMode};
use super::rest::Rests;
use super::Front;
use crate::auth::limits::{ConnectionLimits, Slot};
use crate::auth::login::Credentials;
use crate::auth::policy::Protocol;
use crate::directory::Account;
use crate::engine::Engine;
use crate::goodbye::{Goodbye, Wire};
use crate::net::Conn;
use crate::runtime::io::Stream;
use crate::serve::driver::{self, Driver};
use crate::serve::link::{Closed, Link};
use crate::serve::login::{login_via, Check, Failure, Gate};

/// What a pre-login session asks of the front end.
pub enum Ask {
    Login(Credentials),
    /// SCRAM asks for the user's stored keys.
    LookupScram(String),
    /// Nothing else happens before login: the session is over.
    Nothing,
}

/// A protocol's session up to login, as a front end runs it: an engine whose input reads
/// nothing, and whose only actions are the login and SCRAM's key lookup.
pub trait PreLogin: for<'e> Engine<Env<'e> = ()> {
    const PROTOCOL: Protocol;
    /// Its name in the protocol log, and its words for a refusal at the door.
    type Wire: Wire;

    fn ask(action: Self::Action) -> Ask;
    /// The stored SCRAM keys of the user `LookupScram` named, if the directory has them.
    fn scram_credentials(
        &mut self,
        keys: Option<crate::auth::scram::ScramCredentials>,
        out: &mut Vec<u8>,
    ) -> Self::Action;
    fn login_failed(&mut self, failure: Failure, out: &mut Vec<u8>) -> Self::Action;
    /// The back end took the login; `answer` is its reply (`backend::Opened::answer`).
    fn logged_in(&mut self, answer: &str, out: &mut Vec<u8>);
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
    rests: Rc<Rests>,
) {
    let limit = listener.pre_auth_timeout;
    // The address the client connected to, for the back end's PROXY v2 header.
    let local = stream.local_addr().unwrap_or(peer);
    let tls = listener.implicit_tls.then_some((&front.tls, limit));
    let conn = Conn::new(stream, Some(peer.ip()));
    let refusal = |hit: crate::auth::limits::LimitHit| S::Wire::goodbye(Goodbye::Refused(&hit.to_string()));
    let Some((conn, slot)) = crate::serve::admit(conn, &listener.limits, tls, refusal).await else {
        return;
    };
    let log = front.protolog.as_ref().filter(|_| listener.protocol_log).cloned();
    let mut link = Link::new(conn, front.session_id(), log.map(|l| (l, S::Wire::NAME)));
    link.list(&front.sessions, S::Wire::NAME);
    link.log('*', crate::serve::connected(link.conn.peer, None).as_bytes());
    let mut session = make(link.conn.is_tls());
    let mut d = Driver::new(link, rests.shutdown().clone(), Some(front.tls.clone()));
    let mut door = Door {
        front: &front,
        slot,
        addrs: (peer, local),
        opened: None,
    };
    session.greeting(&mut d.link.out);
    let _ = driver::run(&mut d, &mut door, &mut session).await;
    let Door { slot, opened, .. } = door;
    match opened {
        // The relay is a task of its own, so the session and buffers of this one are not
        // held for as long as the session lasts.
        Some(mut opened) => {
            let mut to_backend = d.input.take();
            if opened.pass_tls {
                match pass_tls(&mut d.link, to_backend, &mut opened).await {
                    Some(pipelined) => to_backend = pipelined,
                    None => {
                        opened.conn.close().await;
                        d.link.close().await;
                        return;
                    }
                }
            }
            let bytes = (to_backend, opened.rest);
            let listed = d.link.listed.take();
            if let Some(listed) = &listed {
                listed.set_phase(crate::engine::Phase::Authenticated);
            }
            let r = super::rest::Resting {
                client: d.link.conn,
                backend: opened.conn,
                slot,
                listed,
            };
            crate::runtime::io::spawn(super::relay::relay(r, bytes, rests));
        }
        None => d.link.close().await,
    }
}

/// Sends the back end the client's TLS session (`net::handoff`), or the frame that says it
/// stays here; gives back what the client pipelined that is still to be relayed (none once
/// passed: the back end has it). `None` if the back end is gone.
async fn pass_tls(link: &mut Link, pipelined: Vec<u8>, opened: &mut backend::Opened) -> Option<Vec<u8>> {
    // The back end sends nothing between its answer and the frame; if it did, that is in
    // the clear and goes to the client under our records.
    let passed = if opened.rest.is_empty() {
        link.conn.pass_tls(pipelined)
    } else {
        Err(pipelined)
    };
    let (mut frame, pipelined) = match passed {
        Ok(frame) => {
            link.log('*', b"TLS session passed to the back end");
            crate::metrics::tls_pass("passed");
            (frame, Vec::new())
        }
        Err(pipelined) => {
            crate::metrics::tls_pass("kept");
            (crate::net::handoff::kept(), pipelined)
        }
    };
    let sent = opened.conn.write(&mut frame).await;
    crate::net::handoff::wipe(&mut frame);
    sent.ok()?;
    Some(pipelined)
}

/// The front end's part of the driver: the login at the directory, and opening the back end.
struct Door<'a> {
    front: &'a Arc<Front>,
    slot: Slot,
    /// The client's address, and the one it connected to.
    addrs: (SocketAddr, SocketAddr),
    /// The back end's session, once the login opened it: the relay takes over.
    opened: Option<backend::Opened>,
}

impl<S: PreLogin> driver::Protocol<S> for Door<'_> {
    fn input(&mut self, session: &mut S, input: &[u8], link: &mut Link) -> Result<(usize, S::Action), Closed> {
        Ok(session.input(input, &mut (), &mut link.out))
    }

    async fn act(&mut self, d: &mut Driver, session: &mut S, action: S::Action) -> Result<S::Action, Closed> {
        match S::ask(action) {
            Ask::Nothing => Err(Closed),
            Ask::LookupScram(user) => {
                let directory = self.front.clone();
                let keys = self
                    .front
                    .login_pool
                    .run(move || directory.directory.scram(&user))
                    .await;
                let id = d.link.id;
                let keys = keys.and_then(|k| k.map_err(|e| tracing::error!(session = id, "SCRAM keys: {e}")).ok());
                Ok(session.scram_credentials(keys.flatten(), &mut d.link.out))
            }
            Ask::Login(credentials) => {
                // Replies pipelined before the login go out before any penalty delay.
                d.link.flush().await?;
                let client = Client {
                    listed: d.link.listed.as_deref(),
                    addrs: self.addrs,
                    may_pass_tls: d.link.conn.may_pass_tls(),
                };
                match open::<S>(self.front, client, &credentials, &mut self.slot).await {
                    Ok(opened) => {
                        session.logged_in(&opened.answer, &mut d.link.out);
                        d.link.flush().await?;
                        self.opened = Some(opened);
                        // The session's part is over; what the client pipelined goes to the
                        // back end.
                        Err(Closed)
                    }
                    Err(failure) => Ok(session.login_failed(failure, &mut d.link.out)),
                }
            }
        }
    }
}

/// The client a login is for, as opening its back end needs it.
struct Client<'a> {
    listed: Option<&'a crate::sessions::Session>,
    /// The client's address, and the one it connected to.
    addrs: (SocketAddr, SocketAddr),
    /// Its TLS session could be passed to the back end (`Conn::may_pass_tls`).
    may_pass_tls: bool,
}

/// Logs the client in at the directory and opens its session on the back end.
async fn open<S: PreLogin>(
    front: &Arc<Front>,
    client: Client<'_>,
    credentials: &Credentials,
    slot: &mut Slot,
) -> Result<backend::Opened, Failure> {
    let account = login(
        front,
        (client.addrs.0.ip(), client.listed),
        credentials,
        S::PROTOCOL,
        slot,
    )
    .await?;
    let account = settled(front, account).await?;
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
        let mode = match backend.and_then(|b| front.backend_tls(b)) {
            Some(tls) => LinkMode::Tls(tls),
            None if client.may_pass_tls && cluster.pass_tls => LinkMode::PassTls,
            None => LinkMode::Clear,
        };
        backend::open(S::PROTOCOL, addr, client.addrs, mode, &account.name, proxy, hostname).await
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
/// How long a login waits for a mailbox move's final pass to end before it fails temporarily.
const MOVE_HOLD: Duration = Duration::from_secs(30);
const MOVE_POLL: Duration = Duration::from_millis(250);

/// The account once no move holds it: a login during a move's final pass waits for the flip
/// and then goes to the mailbox's new back end (DESIGN.md §7).
async fn settled(front: &Arc<Front>, mut account: Account) -> Result<Account, Failure> {
    let deadline = Instant::now() + MOVE_HOLD;
    while account.moving.as_ref().is_some_and(|m| m.locked) {
        if Instant::now() > deadline {
            tracing::warn!(user = %account.name, "a mailbox move kept the login waiting too long");
            return Err(Failure::Temporary);
        }
        tokio::time::sleep(MOVE_POLL).await;
        let (asked, name) = (front.clone(), account.name.clone());
        let fresh = front.login_pool.run(move || asked.directory.lookup_fresh(&name)).await;
        account = match fresh {
            Some(Ok(Some(fresh))) => fresh,
            _ => return Err(Failure::Temporary),
        };
    }
    Ok(account)
}

async fn login(
    front: &Arc<Front>,
    (peer, listed): (std::net::IpAddr, Option<&crate::sessions::Session>),
    credentials: &Credentials,
    protocol: Protocol,
    slot: &mut Slot,
) -> Result<Account, Failure> {
    let answered = crate::auth::login::directory_account_at_once(&*front.directory, credentials, protocol);
    let check = Check::or_pool(answered, || {
        let (front, credentials) = (front.clone(), credentials.clone());
        move || crate::auth::login::directory_account(&*front.directory, &credentials, protocol)
    });
    let gate = Gate {
        pool: &front.login_pool,
        penalties: &front.penalties,
        peer,
        session: 0,
        listed,
        mechanism: credentials.mechanism(),
    };
    login_via(gate, credentials.user(), slot, check, |a: &Account| &a.name).await
}
