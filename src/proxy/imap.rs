//! The IMAP front end: the IMAP session's own pre-login part (CAPABILITY, ID, STARTTLS,
//! LOGIN, AUTHENTICATE PLAIN/LOGIN with SASL-IR) talks to the client; at login the
//! credentials are checked in the directory and the account's policy applies, then the
//! session moves to the back end and the bytes are relayed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::backend::{self, BackendError};
use super::nostore::NoStore;
use super::Front;
use crate::auth::limits::Slot;
use crate::auth::login::{Credentials, LoginError};
use crate::auth::policy::{self, Protocol};
use crate::directory::Account;
use crate::imap::view::Unshared;
use crate::imap::{Action, Ctx, LoginFailure, Session, Settings};
use crate::net::Conn;
use crate::runtime::io::Stream;
use crate::runtime::Shutdown;
use crate::serve::login::{login_via, Failure, Gate};
use crate::store::recent::RecentClaims;

/// A client that does not take our output for this long is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn serve(front: Arc<Front>, stream: Stream, peer: SocketAddr, implicit_tls: bool, shutdown: Shutdown) {
    let config = &front.config.imap;
    let limit = Duration::from_secs(config.pre_auth_timeout);
    let tls = implicit_tls.then_some((&front.tls, limit));
    let conn = Conn::new(stream, Some(peer.ip()));
    let refusal = |hit| format!("* BYE [UNAVAILABLE] {hit}\r\n");
    let Some((conn, mut slot)) = crate::serve::admit(conn, &front.imap_limits, tls, refusal).await else {
        return;
    };
    let mut session = Session::new(
        Settings {
            login_type: config.login_type,
            starttls: !implicit_tls,
            max_login_failures: front.config.limits.max_login_failures,
            max_command_size: config.max_command_size,
            append_limit: config.append_limit,
            message_limit: config.message_limit(),
        },
        conn.is_tls(),
    );
    let mut out = Vec::new();
    session.greeting(&mut out);
    let mut input = Vec::new();
    let recent = RecentClaims::default();
    loop {
        // Feed the session what the client sent, and carry out what it asks.
        while !input.is_empty() {
            let mut views = Unshared;
            let mut ctx = Ctx {
                store: &NoStore,
                views: &mut views,
                recent: &recent,
                now: 0,
            };
            let (used, action) = session.input(&input, &mut ctx, &mut out);
            input.drain(..used);
            match action {
                Action::Continue => {}
                Action::StartTls => {
                    if flush(&conn, &mut out).await.is_err() {
                        return conn.close().await;
                    }
                    input.clear();
                    match tokio::time::timeout(limit, conn.start_tls(front.tls.clone())).await {
                        Ok(Ok(())) => session.tls_started(),
                        _ => return conn.close().await,
                    }
                }
                Action::LookupScram(_) => {
                    // A directory of password hashes holds no SCRAM keys: the exchange goes on
                    // with made-up ones and fails at its end, as for an unknown user.
                    if let Action::Close = session.scram_credentials(None, &mut out) {
                        let _ = flush(&conn, &mut out).await;
                        return conn.close().await;
                    }
                }
                Action::Login(credentials) => {
                    let _ = flush(&conn, &mut out).await;
                    match login(&front, &conn, &credentials, &mut slot).await {
                        Ok((account, addr)) => {
                            let local = front.config.imap.listen.first().copied().unwrap_or(peer);
                            let proxy = (
                                front.config.cluster.proxy_user.as_str(),
                                front.config.cluster.proxy_secret.as_str(),
                            );
                            match backend::open_imap(addr, (peer, local), &account.name, proxy).await {
                                Ok(opened) => {
                                    session.login_passed_on(&opened.answer, &mut out);
                                    if flush(&conn, &mut out).await.is_err() {
                                        return conn.close().await;
                                    }
                                    let pipelined = std::mem::take(&mut input);
                                    tokio::select! {
                                        () = super::relay::relay(conn, opened.stream, pipelined, opened.rest) => {}
                                        () = shutdown.wait() => {}
                                    }
                                    return;
                                }
                                Err(e) => {
                                    tracing::warn!(user = %account.name, "{e}");
                                    let failure = match e {
                                        BackendError::Refused(..) => {
                                            LoginFailure::Refused("the mailbox server refused the session".into())
                                        }
                                        _ => LoginFailure::Temporary,
                                    };
                                    session.login_result(Err(failure), &mut out);
                                }
                            }
                        }
                        Err(failure) => {
                            if let Action::Close = session.login_result(Err(failure), &mut out) {
                                let _ = flush(&conn, &mut out).await;
                                return conn.close().await;
                            }
                        }
                    }
                }
                Action::Close => {
                    let _ = flush(&conn, &mut out).await;
                    return conn.close().await;
                }
                // Nothing else happens before login.
                _ => return conn.close().await,
            }
        }
        if flush(&conn, &mut out).await.is_err() {
            return conn.close().await;
        }
        let read = tokio::time::timeout(limit, conn.read(&mut input));
        let outcome = tokio::select! {
            r = read => r,
            () = shutdown.wait() => {
                let mut bye = b"* BYE [UNAVAILABLE] server shutting down\r\n".to_vec();
                let _ = flush(&conn, &mut bye).await;
                return conn.close().await;
            }
        };
        match outcome {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => return conn.close().await,
            Err(_) => {
                let mut bye = b"* BYE autologout; idle for too long\r\n".to_vec();
                let _ = flush(&conn, &mut bye).await;
                return conn.close().await;
            }
        }
    }
}

async fn flush(conn: &Conn, out: &mut Vec<u8>) -> Result<(), ()> {
    match tokio::time::timeout(WRITE_TIMEOUT, conn.write(out)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Checks `credentials` in the directory and the account's policy on the login pool, with
/// the failed-login penalty and the per-user limit as `serve` has them, and finds the
/// account's back end.
async fn login(
    front: &Arc<Front>,
    conn: &Conn,
    credentials: &Credentials,
    slot: &mut Slot,
) -> Result<(Account, SocketAddr), LoginFailure> {
    // Only a password for oneself: acting for another user is for front ends at back ends.
    let password = match credentials {
        Credentials::Password {
            authzid,
            user,
            password,
        } if authzid.as_deref().is_none_or(|z| z.is_empty() || z == user) => Some(password.clone()),
        _ => None,
    };
    let name = credentials.user().to_owned();
    let check = {
        let (front, name) = (front.clone(), name.clone());
        move || {
            let password = password.filter(|_| !policy::is_reserved(&name));
            let account = match password {
                Some(pw) => front.directory.authenticate(&name, &pw)?,
                None => None,
            };
            let account = account.ok_or(LoginError::BadCredentials)?;
            account.access.may_open(Protocol::Imap)?;
            Ok(account)
        }
    };
    let gate = Gate {
        pool: &front.login_pool,
        penalties: &front.penalties,
        peer: conn.peer,
        session: 0,
    };
    let account = login_via(gate, &name, slot, check, |a: &Account| &a.name)
        .await
        .map_err(|f| match f {
            Failure::BadCredentials => LoginFailure::BadCredentials,
            Failure::Refused(why) | Failure::Limit(why) => LoginFailure::Refused(why),
            Failure::Temporary => LoginFailure::Temporary,
        })?;
    let backend = front.config.cluster.backend(&account.mail_host).and_then(|b| b.imap);
    let Some(addr) = backend else {
        tracing::error!(user = %account.name, mail_host = %account.mail_host, "no IMAP back end by that name");
        return Err(LoginFailure::Temporary);
    };
    Ok((account, addr))
}
