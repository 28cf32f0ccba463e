//! Logging in, the same for every protocol and for front ends: the check (answered on the
//! event loop where it needs neither argon2 nor a network directory, as in a reconnect storm
//! that the verified-credential cache absorbs; else on the login pool), the failed-login
//! penalty (waited out here, before the failure is answered), and the per-user connection
//! limit.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::link::{Closed, Link};
use super::pool::Pool;
use super::Shared;
use crate::auth::limits::Slot;
use crate::auth::login::{self, Credentials, LoginError, ProxyLogin};
use crate::auth::penalty::Penalties;
use crate::auth::policy::Protocol;
use crate::auth::scram::ScramCredentials;
use crate::metrics::LoginResult;
use crate::store::{StoreError, User};

/// The stored SCRAM keys of `user`: the directory's where one holds the accounts (looked up
/// on the login pool), else the store's.
pub async fn scram_keys(shared: &Arc<Shared>, user: &str) -> Option<ScramCredentials> {
    if shared.directory.is_some() {
        let (directory, user) = (shared.directory.clone(), user.to_owned());
        let found = shared.login_pool.run(move || directory?.scram(&user).ok()?).await;
        return found.flatten();
    }
    let snapshot = shared.store.snapshot().ok()?;
    snapshot.user(user).ok().flatten().map(|u| u.scram)
}

pub enum Failure {
    /// Wrong name or password; the penalty delay has already passed.
    BadCredentials,
    /// Authenticated but not allowed: the reason is told.
    Refused(String),
    /// A connection limit for this user.
    Limit(String),
    Temporary,
}

/// Where a login is checked and counted: the pool its check runs on, the failed-login
/// penalties, and the client it is for.
pub(crate) struct Gate<'a> {
    pub pool: &'a Pool,
    pub penalties: &'a Penalties,
    pub peer: IpAddr,
    pub session: u64,
    /// The session's entry among the live ones, told who logged in.
    pub listed: Option<&'a crate::sessions::Session>,
    /// How the client proves itself (`Credentials::mechanism`), for the metrics.
    pub mechanism: &'static str,
}

/// A login's check: answered already on the event loop, or blocking work for the login pool.
pub(crate) enum Check<T, F> {
    Answered(Result<T, LoginError>),
    OnPool(F),
}

impl<T, F> Check<T, F> {
    /// `answered`, where the event loop could tell; else the blocking work `pool` makes.
    pub(crate) fn or_pool(answered: Option<Result<T, LoginError>>, pool: impl FnOnce() -> F) -> Self {
        match answered {
            Some(answer) => Check::Answered(answer),
            None => Check::OnPool(pool()),
        }
    }
}

/// Runs `check` for a client claiming to be `claimed`; on success counts the account (named
/// by `name_of`) against its connection limit.
pub(crate) async fn login_via<T: Send + 'static, F: FnOnce() -> Result<T, LoginError> + Send + 'static>(
    gate: Gate<'_>,
    claimed: &str,
    slot: &mut Slot,
    check: Check<T, F>,
    name_of: impl Fn(&T) -> &str,
) -> Result<T, Failure> {
    // One attempt per (address, claimed name) at a time: a failure's delay holds them all.
    let turn = gate.penalties.turn(gate.peer, claimed).await;
    let checked = async {
        match check {
            Check::Answered(result) => Some(result),
            Check::OnPool(work) => gate.pool.run(work).await,
        }
    };
    let result = gate.penalties.check(gate.peer, checked).await;
    let result = result.unwrap_or_else(|| {
        Err(LoginError::Temporary(StoreError::Io(std::io::Error::other(
            "login pool failed",
        ))))
    });
    let counted = |result| crate::metrics::login(gate.mechanism, result);
    let account = match result {
        Ok(account) => account,
        Err(LoginError::BadCredentials) => {
            counted(LoginResult::BadCredentials);
            let delay = turn.fail(Instant::now());
            crate::metrics::penalty(delay);
            tokio::time::sleep(delay).await;
            return Err(Failure::BadCredentials);
        }
        Err(LoginError::Refused(refusal)) => {
            counted(LoginResult::Refused);
            return Err(Failure::Refused(refusal.to_string()));
        }
        Err(e @ (LoginError::Temporary(_) | LoginError::Directory(_) | LoginError::Token(_))) => {
            counted(LoginResult::Temporary);
            tracing::error!(session = gate.session, "login: {e}");
            return Err(Failure::Temporary);
        }
    };
    let name = name_of(&account);
    turn.succeed(name);
    drop(turn);
    if let Err(hit) = slot.login(name) {
        counted(LoginResult::Limit);
        return Err(Failure::Limit(hit.to_string()));
    }
    counted(LoginResult::Ok);
    if let Some(listed) = gate.listed {
        listed.logged_in(name);
    }
    Ok(account)
}

/// A login to this server's own store (or its directory).
pub async fn login(
    shared: &Arc<Shared>,
    link: &Link,
    credentials: &Credentials,
    protocol: Protocol,
    slot: &mut Slot,
) -> Result<User, Failure> {
    // Without a directory, most logins are answered here (`authenticate_at_once`).
    let answered = match shared.accounts() {
        None => login::authenticate_at_once(&shared.store, credentials, protocol, proxy_login(shared, link.proxied)),
        Some(_) => None,
    };
    let check = Check::or_pool(answered, || {
        let (shared, checked, proxied) = (shared.clone(), credentials.clone(), link.proxied);
        move || {
            let proxy = proxy_login(&shared, proxied);
            login::authenticate(&shared.store, &checked, protocol, proxy, shared.accounts())
        }
    });
    let gate = Gate {
        pool: &shared.login_pool,
        penalties: &shared.penalties,
        peer: link.conn.peer,
        session: link.id,
        listed: link.listed.as_deref(),
        mechanism: credentials.mechanism(),
    };
    login_via(gate, credentials.user(), slot, check, |u: &User| &u.name).await
}

/// On a proxy-facing listener, the front end that may log in for its users.
fn proxy_login(shared: &Shared, proxied: bool) -> Option<ProxyLogin<'_>> {
    let cluster = &shared.config.cluster;
    proxied.then_some(ProxyLogin {
        user: &cluster.proxy_user,
        secret: &cluster.proxy_secret,
    })
}

/// How long a back end waits for the frame that follows a login whose front end passes the
/// client's TLS session.
const PASS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// After a login step: a session that logged in, whose front end passes the client's TLS
/// session, takes it over (`take_passed_tls`).
pub(crate) async fn after_login<E: crate::engine::Engine>(
    shared: &Shared,
    d: &mut super::driver::Driver,
    session: &E,
) -> Result<(), Closed> {
    if d.link.pass_tls && session.phase() != crate::engine::Phase::PreAuth {
        return Box::pin(take_passed_tls(shared, d)).await;
    }
    Ok(())
}

/// After a login whose front end passes the client's TLS session (`net::handoff`, announced
/// in its PROXY header): sends the answer to the login (in the clear, to the front end), then
/// takes the session over from the frame that follows, before anything else is read or
/// sent. A frame that says the front end keeps the session leaves the link as it was.
async fn take_passed_tls(shared: &Shared, d: &mut super::driver::Driver) -> Result<(), Closed> {
    use crate::net::handoff::{self, Frame};
    d.link.pass_tls = false;
    d.link.flush().await?;
    let suites = &shared.tls.crypto_provider().cipher_suites;
    let deadline = tokio::time::Instant::now() + PASS_TIMEOUT;
    let mut input = Vec::new();
    let (frame, used) = loop {
        match handoff::parse(&input, suites) {
            Ok(Some(found)) => break found,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(session = d.link.id, "from the front end: {e}");
                return Err(Closed);
            }
        }
        input.reserve(4096);
        match tokio::time::timeout_at(deadline, d.link.conn.read(&mut input)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return Err(Closed),
        }
    };
    // What followed the frame: the client's records, or its commands if the front end kept
    // the session.
    let after = input.split_off(used);
    crate::net::handoff::wipe(&mut input);
    match frame {
        Frame::Kept => d.input.read_buffer().extend_from_slice(&after),
        Frame::Passed(mut tls) => {
            tls.receive(after);
            let description = tls.description().unwrap_or_default();
            d.link.conn.take_passed(*tls);
            d.link.log(
                '*',
                format!("TLS session passed on by the front end: {description}").as_bytes(),
            );
        }
    }
    Ok(())
}
