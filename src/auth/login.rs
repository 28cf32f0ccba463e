//! Turning what a client presented into an authenticated user, the same way for every
//! protocol: reserved names never log in, the password is checked (argon2, so call this on a
//! blocking pool), proxy authorization is refused, and then the account's policy applies.

use super::password;
use super::policy::{self, Protocol, Refusal};
use crate::store::{Store, StoreError, User};

/// What a session learned from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A password to verify (USER/PASS, LOGIN, SASL PLAIN or LOGIN).
    Password {
        authzid: Option<String>,
        user: String,
        password: String,
    },
    /// SCRAM already proved the password.
    Verified { authzid: Option<String>, user: String },
    /// SCRAM proved the password wrong.
    Rejected { user: String },
}

impl Credentials {
    pub fn user(&self) -> &str {
        match self {
            Credentials::Password { user, .. }
            | Credentials::Verified { user, .. }
            | Credentials::Rejected { user } => user,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("authentication failed")]
    BadCredentials,
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("temporary failure: {0}")]
    Temporary(#[from] StoreError),
}

/// Resolves credentials to a user allowed to open `protocol`. Blocking: argon2.
pub fn authenticate(store: &Store, credentials: &Credentials, protocol: Protocol) -> Result<User, LoginError> {
    let name = credentials.user();
    if policy::is_reserved(name) {
        return Err(LoginError::BadCredentials);
    }
    let (authzid, verified_password) = match credentials {
        Credentials::Rejected { .. } => return Err(LoginError::BadCredentials),
        Credentials::Verified { authzid, .. } => (authzid, None),
        Credentials::Password { authzid, password, .. } => (authzid, Some(password)),
    };
    // Acting as another user (SASL authzid) needs a master-user scheme we do not offer.
    if authzid.as_deref().is_some_and(|z| !z.is_empty() && z != name) {
        return Err(LoginError::BadCredentials);
    }
    let user = store.snapshot()?.user(name)?;
    let user = match (user, verified_password) {
        (Some(u), Some(pw)) if password::verify(pw, &u.password_hash) => u,
        (Some(u), None) => u,
        (None, Some(pw)) => {
            // Same cost as a real check, so timing does not reveal which names exist.
            password::verify(pw, dummy_hash());
            return Err(LoginError::BadCredentials);
        }
        _ => return Err(LoginError::BadCredentials),
    };
    policy::may_open(&user, protocol)?;
    Ok(user)
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| password::hash("ringmail-dummy").map(|h| h.phc).unwrap_or_default())
}
