//! Logging in, the same for every protocol: argon2 on the login pool, the failed-login
//! penalty (waited out here, before the failure is answered), and the per-user connection limit.

use std::net::IpAddr;
use std::time::Instant;

use super::Shared;
use crate::auth::limits::Slot;
use crate::auth::login::{self, Credentials, LoginError, ProxyLogin};
use crate::auth::policy::Protocol;
use crate::store::{StoreError, User};

pub enum Failure {
    /// Wrong name or password; the penalty delay has already passed.
    BadCredentials,
    /// Authenticated but not allowed: the reason is told.
    Refused(String),
    /// A connection limit for this user.
    Limit(String),
    Temporary,
}

pub async fn login(
    shared: &Shared,
    peer: IpAddr,
    credentials: &Credentials,
    protocol: Protocol,
    slot: &mut Slot,
    (session, proxied): (u64, bool),
) -> Result<User, Failure> {
    let store = shared.store.clone();
    let checked = credentials.clone();
    // On a proxy-facing listener the front end may log in for its users.
    let cluster = &shared.config.cluster;
    let proxy = proxied.then(|| (cluster.proxy_user.clone(), cluster.proxy_secret.clone()));
    let result = shared
        .login_pool
        .run(move || {
            let proxy = proxy.as_ref().map(|(user, secret)| ProxyLogin { user, secret });
            login::authenticate(&store, &checked, protocol, proxy)
        })
        .await
        .unwrap_or_else(|| {
            Err(LoginError::Temporary(StoreError::Io(std::io::Error::other(
                "login pool failed",
            ))))
        });
    let user = match result {
        Ok(user) => user,
        Err(LoginError::BadCredentials) => {
            let delay = shared.penalties.fail(Instant::now(), peer, credentials.user());
            tokio::time::sleep(delay).await;
            return Err(Failure::BadCredentials);
        }
        Err(LoginError::Refused(refusal)) => return Err(Failure::Refused(refusal.to_string())),
        Err(LoginError::Temporary(e)) => {
            tracing::error!(session, "login: {e}");
            return Err(Failure::Temporary);
        }
    };
    shared.penalties.succeed(peer, &user.name);
    slot.login(&user.name).map_err(|hit| Failure::Limit(hit.to_string()))?;
    Ok(user)
}
