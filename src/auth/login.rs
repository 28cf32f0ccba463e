//! Turning what a client presented into an authenticated user, the same way for every
//! protocol: reserved names never log in, the password is checked (argon2 or a directory, so
//! call this on a blocking pool), proxy authorization is refused but to trusted front ends,
//! and then the account's policy applies.
//!
//! Where a directory holds the accounts (DESIGN.md §7), it checks the password and says what
//! the account may do and which back end holds its mailbox; the store keeps only the mailbox,
//! created the first time its account logs in or receives mail here.

use super::password;
use super::policy::{self, Protocol, Refusal};
use super::scram::ScramCredentials;
use crate::directory::{Account, Directory, DirectoryError};
use crate::store::{NewUser, Store, StoreError, User, WriteOp, WriteOutcome};

/// What a session learned from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A password to verify (USER/PASS, LOGIN, SASL PLAIN or LOGIN).
    Password {
        authzid: Option<String>,
        user: String,
        password: String,
        /// How it came, for the metrics: the SASL mechanism, or `LOGIN-command` (IMAP
        /// LOGIN), `USER` (POP3 USER/PASS).
        mechanism: &'static str,
    },
    /// SCRAM already proved the password.
    Verified { authzid: Option<String>, user: String },
    /// SCRAM proved the password wrong.
    Rejected { user: String },
    /// A bearer token to check (OAUTHBEARER, XOAUTH2); `authzid` is the user the client
    /// says it is for.
    Token {
        authzid: Option<String>,
        token: String,
        mechanism: &'static str,
    },
}

impl Credentials {
    /// How the client proved itself, as the metrics count logins.
    pub fn mechanism(&self) -> &'static str {
        match self {
            Credentials::Password { mechanism, .. } => mechanism,
            Credentials::Verified { .. } | Credentials::Rejected { .. } => "SCRAM-SHA-256",
            Credentials::Token { mechanism, .. } => mechanism,
        }
    }

    pub fn user(&self) -> &str {
        match self {
            Credentials::Password { user, .. }
            | Credentials::Verified { user, .. }
            | Credentials::Rejected { user } => user,
            // Who it is for is known once the token is checked; until then, who it claims.
            Credentials::Token { authzid, .. } => authzid.as_deref().unwrap_or_default(),
        }
    }

    /// A token's credentials checked: the user it proves, as if SCRAM had proved them.
    /// Blocking (the issuer's keys may have to be fetched). Any other credentials as they are.
    fn checked(&self) -> Result<std::borrow::Cow<'_, Credentials>, LoginError> {
        let Credentials::Token { authzid, token, .. } = self else {
            return Ok(std::borrow::Cow::Borrowed(self));
        };
        let user = match super::oauth::user_of(token, authzid.as_deref()) {
            Ok(user) => user,
            Err(super::oauth::TokenError::Refused(why)) => {
                tracing::info!("login: {why}");
                return Err(LoginError::BadCredentials);
            }
            Err(e @ super::oauth::TokenError::Keys(_)) => return Err(LoginError::Token(e)),
        };
        Ok(std::borrow::Cow::Owned(Credentials::Verified { authzid: None, user }))
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
    #[error("{0}")]
    Directory(#[from] crate::directory::DirectoryError),
    #[error("{0}")]
    Token(super::oauth::TokenError),
}

/// A front end's login on a back end's proxy-facing listener (DESIGN.md §7): `user` with
/// `secret` may act for anyone.
pub struct ProxyLogin<'a> {
    pub user: &'a str,
    pub secret: &'a str,
}

/// The directory that holds the accounts, and this back end's name in it (`mailHost`).
#[derive(Clone, Copy)]
pub struct Accounts<'a> {
    pub directory: &'a dyn Directory,
    pub home: &'a str,
    /// Users this back end holds for a mailbox move (`sessions::Registry::hold`).
    pub held: &'a crate::sessions::Registry,
}

/// Resolves credentials to a user allowed to open `protocol`. Blocking: argon2, a directory.
/// `proxy` is given on proxy-facing listeners only; `accounts` where a directory holds them.
pub fn authenticate(
    store: &Store,
    credentials: &Credentials,
    protocol: Protocol,
    proxy: Option<ProxyLogin<'_>>,
    accounts: Option<Accounts<'_>>,
) -> Result<User, LoginError> {
    let credentials = &*credentials.checked()?;
    let name = credentials.user();
    let (authzid, verified_password) = presented(credentials)?;
    // Acting as another user (SASL authzid): only a trusted front end, with its secret.
    if let Some(target) = acting_for(name, authzid) {
        if !trusted(proxy, name, verified_password) || policy::is_reserved(target) {
            return Err(LoginError::BadCredentials);
        }
        if let Some(accounts) = accounts {
            let account = accounts.directory.lookup(target)?.ok_or(LoginError::BadCredentials)?;
            account.access.may_open(protocol)?;
            return mailbox_of(store, accounts, account);
        }
        return allowed(store.snapshot()?.user(target)?, protocol);
    }
    if let Some(accounts) = accounts {
        let account = directory_account(accounts.directory, credentials, protocol)?;
        return mailbox_of(store, accounts, account);
    }
    let user = store.snapshot()?.user(name)?;
    let user = match (user, verified_password) {
        (Some(u), Some(pw)) if password::check(pw, &u.password_hash) => u,
        (Some(u), None) => u,
        (None, Some(pw)) => {
            // Same cost as a real check, so timing does not reveal which names exist.
            password::verify(pw, dummy_hash());
            return Err(LoginError::BadCredentials);
        }
        _ => return Err(LoginError::BadCredentials),
    };
    allowed(Some(user), protocol)
}

/// `authenticate`'s answer where it needs neither a directory, a token's keys nor argon2: a
/// SCRAM proof, a password the verified-credential cache knows, a front end's login for one
/// of its users. That costs a store read and an HMAC, so an event loop may ask, and a login
/// need not wait for a turn on the login pool behind others' argon2. `None`: only
/// `authenticate` can tell (a wrong password, and a name that does not exist, are among
/// these, so they take as long as ever).
pub fn authenticate_at_once(
    store: &Store,
    credentials: &Credentials,
    protocol: Protocol,
    proxy: Option<ProxyLogin<'_>>,
) -> Option<Result<User, LoginError>> {
    let at_once = || -> Result<Option<User>, LoginError> {
        if matches!(credentials, Credentials::Token { .. }) {
            return Ok(None);
        }
        let name = credentials.user();
        let (authzid, password) = presented(credentials)?;
        if let Some(target) = acting_for(name, authzid) {
            if !trusted(proxy, name, password) || policy::is_reserved(target) {
                return Err(LoginError::BadCredentials);
            }
            return allowed(store.snapshot()?.user(target)?, protocol).map(Some);
        }
        let user = store.snapshot()?.user(name)?;
        match (&user, password) {
            // A password the cache does not know costs argon2 to check, and so does one
            // for a name that does not exist (so timing does not tell which names exist).
            (None, Some(_)) => return Ok(None),
            (Some(u), Some(pw)) if !password::known(pw, &u.password_hash) => return Ok(None),
            _ => {}
        }
        allowed(user, protocol).map(Some)
    };
    at_once().transpose()
}

/// The authorization identity a client asked for and the password it gave (none for a SCRAM
/// proof), where its credentials may log in at all.
fn presented(credentials: &Credentials) -> Result<(&Option<String>, Option<&String>), LoginError> {
    if policy::is_reserved(credentials.user()) {
        return Err(LoginError::BadCredentials);
    }
    match credentials {
        Credentials::Rejected { .. } | Credentials::Token { .. } => Err(LoginError::BadCredentials),
        Credentials::Verified { authzid, .. } => Ok((authzid, None)),
        Credentials::Password { authzid, password, .. } => Ok((authzid, Some(password))),
    }
}

/// The user `name` would act as, when it is another (SASL authzid).
fn acting_for<'a>(name: &str, authzid: &'a Option<String>) -> Option<&'a str> {
    authzid.as_deref().filter(|z| !z.is_empty() && *z != name)
}

/// Whether `name` with `password` is the trusted front end of a proxy-facing listener.
fn trusted(proxy: Option<ProxyLogin<'_>>, name: &str, password: Option<&String>) -> bool {
    proxy.is_some_and(|p| {
        !p.secret.is_empty()
            && p.user == name
            && password.is_some_and(|pw| same_bytes(pw.as_bytes(), p.secret.as_bytes()))
    })
}

/// The store's `user`, if it exists and may open `protocol`.
fn allowed(user: Option<User>, protocol: Protocol) -> Result<User, LoginError> {
    let user = user.ok_or(LoginError::BadCredentials)?;
    policy::may_open(&user, protocol)?;
    Ok(user)
}

/// The directory account `credentials` prove (a password the directory checks, or a SCRAM
/// proof made against its keys), allowed to open `protocol`. Only a login as oneself: acting
/// for another user is for front ends at back ends (`authenticate`). Blocking (a directory).
pub fn directory_account(
    directory: &dyn Directory,
    credentials: &Credentials,
    protocol: Protocol,
) -> Result<Account, LoginError> {
    let credentials = &*credentials.checked()?;
    let name = credentials.user();
    let account = match presented(credentials)? {
        (authzid, _) if acting_for(name, authzid).is_some() => None,
        (_, Some(password)) => directory.authenticate(name, password)?,
        (_, None) => directory.lookup(name)?,
    };
    account_allowed(account, protocol)
}

/// `directory_account`'s answer where the directory knows it without blocking
/// (`Directory::authenticate_at_once`), for an event loop to ask; `None` where only
/// `directory_account` can tell.
pub fn directory_account_at_once(
    directory: &dyn Directory,
    credentials: &Credentials,
    protocol: Protocol,
) -> Option<Result<Account, LoginError>> {
    if matches!(credentials, Credentials::Token { .. }) {
        return None;
    }
    let name = credentials.user();
    let account = match presented(credentials) {
        Err(e) => return Some(Err(e)),
        Ok((authzid, _)) if acting_for(name, authzid).is_some() => None,
        Ok((_, Some(password))) => Some(directory.authenticate_at_once(name, password)?),
        Ok((_, None)) => directory.lookup_at_once(name)?,
    };
    Some(account_allowed(account, protocol))
}

/// The directory's `account`, if it exists and may open `protocol`.
fn account_allowed(account: Option<Account>, protocol: Protocol) -> Result<Account, LoginError> {
    let account = account.ok_or(LoginError::BadCredentials)?;
    account.access.may_open(protocol)?;
    Ok(account)
}

/// The store's user for a directory account (its policy checked) this back end holds, with
/// the directory's switches.
fn mailbox_of(store: &Store, accounts: Accounts<'_>, account: Account) -> Result<User, LoginError> {
    if !account.mail_host.eq_ignore_ascii_case(accounts.home) {
        return Err(Refusal::Elsewhere.into());
    }
    if account.moving.as_ref().is_some_and(|m| m.locked) || accounts.held.is_held(&account.name) {
        return Err(LoginError::Directory(DirectoryError::Unavailable(
            "the mailbox is being moved: try again in a moment".into(),
        )));
    }
    let user = provision(store, &account.name, account.access.admin)?;
    if user.home.is_some() {
        // A copy kept after the mailbox moved away, or one a move is filling: never opened
        // (a stale directory entry may still point here for a moment).
        return Err(LoginError::Directory(DirectoryError::Unavailable(
            "the mailbox is being moved: try again in a moment".into(),
        )));
    }
    Ok(User {
        admin: account.access.admin,
        pop: account.access.pop,
        imap: account.access.imap,
        smtp: account.access.smtp,
        ..user
    })
}

/// SCRAM keys no password opens (random keys), for an account whose password this server
/// does not know.
pub fn unusable_scram() -> ScramCredentials {
    ScramCredentials {
        salt: rand::random::<[u8; 16]>().to_vec(),
        iterations: 4096,
        stored_key: rand::random(),
        server_key: rand::random(),
    }
}

/// The store's user `name`, created (with the default folders) if this is its first use here.
/// Its password fields are never checked: the directory does that.
pub fn provision(store: &Store, name: &str, admin: bool) -> Result<User, StoreError> {
    if let Some(user) = store.snapshot()?.user(name)? {
        return Ok(user);
    }
    let never = unusable_scram();
    let op = WriteOp::AddUser(NewUser {
        name: name.to_owned(),
        password_hash: String::new(),
        scram: never,
        admin,
    });
    match store.write_blocking(op) {
        Ok(WriteOutcome::User(user)) => Ok(user),
        // Another session created it first.
        Ok(_) | Err(StoreError::UserExists(_)) => store
            .snapshot()?
            .user(name)?
            .ok_or(StoreError::NoSuchUser(name.to_owned())),
        Err(e) => Err(e),
    }
}

/// Compares in time that depends on the lengths only, so a guesser learns nothing from it.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A hash to verify against when the name does not exist.
pub(crate) fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| password::hash("ringmail-dummy").map(|h| h.phc).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scram::ScramKeys;
    use crate::store::UserPatch;

    /// A store with bob (password "pw"), and with alice, an administrator, with the same.
    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let phc = password::hash("pw").unwrap().phc;
        for (name, admin) in [("bob", false), ("alice", true)] {
            let user = NewUser {
                name: name.into(),
                password_hash: phc.clone(),
                scram: ScramCredentials::derive("pw", b"salt", 4096).unwrap(),
                admin,
            };
            store.write_blocking(WriteOp::AddUser(user)).unwrap();
        }
        (dir, store)
    }

    fn password(user: &str, password: &str, authzid: Option<&str>) -> Credentials {
        Credentials::Password {
            authzid: authzid.map(str::to_owned),
            user: user.into(),
            password: password.into(),
            mechanism: "PLAIN",
        }
    }

    fn at_once(store: &Store, credentials: &Credentials) -> Option<Result<User, LoginError>> {
        authenticate_at_once(store, credentials, Protocol::Imap, None)
    }

    #[test]
    fn a_password_is_answered_at_once_only_once_it_verified() {
        // The cache is keyed by the stored hash, whose salt is new: nothing knows it yet.
        let (_dir, store) = store();
        let right = password("bob", "pw", None);
        assert!(at_once(&store, &right).is_none(), "never verified: argon2's work");
        assert!(at_once(&store, &password("bob", "wrong", None)).is_none());
        assert!(at_once(&store, &password("nobody", "pw", None)).is_none());
        let user = authenticate(&store, &right, Protocol::Imap, None, None).unwrap();
        assert_eq!(user.name, "bob");
        let answered = at_once(&store, &right).expect("verified a moment ago").unwrap();
        assert_eq!(answered.name, "bob");
        assert!(
            at_once(&store, &password("bob", "pW", None)).is_none(),
            "a wrong one never"
        );
        // The account's switches are read afresh: a refusal is an answer too.
        let off = UserPatch {
            pop: Some(false),
            ..UserPatch::default()
        };
        store
            .write_blocking(WriteOp::UpdateUser {
                name: "bob".into(),
                patch: off,
            })
            .unwrap();
        let refused = authenticate_at_once(&store, &right, Protocol::Pop3, None).expect("answered");
        assert!(matches!(refused, Err(LoginError::Refused(_))), "{refused:?}");
    }

    #[test]
    fn scram_proofs_and_reserved_names_are_answered_at_once_and_tokens_never() {
        let (_dir, store) = store();
        let verified = |user: &str| Credentials::Verified {
            authzid: None,
            user: user.into(),
        };
        assert_eq!(at_once(&store, &verified("bob")).unwrap().unwrap().name, "bob");
        let admin = at_once(&store, &verified("alice")).unwrap();
        assert!(matches!(admin, Err(LoginError::Refused(_))), "{admin:?}");
        let nobody = at_once(&store, &verified("nobody")).unwrap();
        assert!(matches!(nobody, Err(LoginError::BadCredentials)));
        let rejected = at_once(&store, &Credentials::Rejected { user: "bob".into() }).unwrap();
        assert!(matches!(rejected, Err(LoginError::BadCredentials)));
        let reserved = at_once(&store, &password("anonymous", "x", None)).unwrap();
        assert!(matches!(reserved, Err(LoginError::BadCredentials)));
        let token = Credentials::Token {
            authzid: Some("bob".into()),
            token: "ey".into(),
            mechanism: "OAUTHBEARER",
        };
        assert!(at_once(&store, &token).is_none());
    }

    #[test]
    fn a_front_end_logs_in_for_its_users_at_once_with_its_secret_only() {
        let (_dir, store) = store();
        let proxy = || {
            Some(ProxyLogin {
                user: "front",
                secret: "s3cret",
            })
        };
        let as_bob = password("front", "s3cret", Some("bob"));
        let user = authenticate_at_once(&store, &as_bob, Protocol::Imap, proxy())
            .unwrap()
            .unwrap();
        assert_eq!(user.name, "bob");
        for refused in [
            authenticate_at_once(
                &store,
                &password("front", "s3creT", Some("bob")),
                Protocol::Imap,
                proxy(),
            ),
            authenticate_at_once(&store, &as_bob, Protocol::Imap, None),
            authenticate_at_once(
                &store,
                &password("front", "s3cret", Some("anonymous")),
                Protocol::Imap,
                proxy(),
            ),
            authenticate_at_once(
                &store,
                &password("front", "s3cret", Some("nobody")),
                Protocol::Imap,
                proxy(),
            ),
        ] {
            assert!(matches!(refused, Some(Err(LoginError::BadCredentials))), "{refused:?}");
        }
        let admin = authenticate_at_once(
            &store,
            &password("front", "s3cret", Some("alice")),
            Protocol::Imap,
            proxy(),
        );
        assert!(matches!(admin, Some(Err(LoginError::Refused(_)))), "{admin:?}");
    }
}
