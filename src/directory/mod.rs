//! Where front ends find accounts and the back end that holds each mailbox (DESIGN.md §7):
//! the `Directory` trait, its static table (`[directory] users`, for two-box setups and
//! tests) and LDAP (`[directory] ldap_url`). Passwords are checked by the directory, so a
//! front end never sees a hash it does not need, and LDAP checks them with a bind.

#![forbid(unsafe_code)]

mod ldap;
mod ldap_admin;

pub use ldap::LdapDirectory;
pub use ldap_admin::{AccountPatch, LdapAdmin, MoveRecord, NewAccount};

use std::collections::HashMap;

use crate::auth::password;
use crate::auth::policy::Access;
use crate::auth::scram::{ScramCredentials, ScramKeys};
use crate::config::StaticUser;

/// An account as a front end needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    /// The back end holding the mailbox (`mailHost`).
    pub mail_host: String,
    pub access: Access,
    /// A mailbox move under way (`ringmailMoveState`, `ringmailMoveTarget`).
    pub moving: Option<Moving>,
}

/// A mailbox move as the directory records it while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moving {
    /// The final pass runs: the mailbox takes no change anywhere, logins wait.
    pub locked: bool,
    /// The back end it goes to.
    pub target: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The directory refused a change (`ringmail user`): the reason is told.
    #[error("{0}")]
    Refused(String),
}

pub trait Directory: Send + Sync {
    /// The account `name`, if `password` is its password; `Ok(None)` for a wrong name or
    /// password alike. Blocking (password hashing, network).
    fn authenticate(&self, name: &str, password: &str) -> Result<Option<Account>, DirectoryError>;

    /// The account `name`, without checking a password (LMTP routing, a SCRAM login that
    /// proved the password already). Blocking.
    fn lookup(&self, name: &str) -> Result<Option<Account>, DirectoryError>;

    /// The same, asked of the directory itself rather than a cache (a mailbox move, which
    /// must see the state it set a moment ago). Blocking.
    fn lookup_fresh(&self, name: &str) -> Result<Option<Account>, DirectoryError> {
        self.lookup(name)
    }

    /// The SCRAM-SHA-256 keys stored for `name`, if any. Blocking.
    fn scram(&self, name: &str) -> Result<Option<ScramCredentials>, DirectoryError>;

    /// `authenticate`'s yes where it is known without blocking (an account held in memory
    /// whose password the verified-credential cache knows), for an event loop to ask; `None`
    /// where only `authenticate` can tell.
    fn authenticate_at_once(&self, _name: &str, _password: &str) -> Option<Account> {
        None
    }

    /// `lookup`'s answer where it is known without blocking; `None` where only `lookup` can
    /// tell.
    fn lookup_at_once(&self, _name: &str) -> Option<Option<Account>> {
        None
    }
}

/// The directory `[directory]` configures.
pub fn open(config: &crate::config::Directory) -> Box<dyn Directory> {
    if config.is_ldap() {
        Box::new(LdapDirectory::new(config))
    } else {
        Box::new(StaticDirectory::new(config.users.clone()))
    }
}

/// The accounts of `[directory] users`.
pub struct StaticDirectory {
    /// By name: every login looks one up, in a table that may list thousands.
    users: HashMap<String, StaticUser>,
}

impl StaticDirectory {
    /// The table's accounts; of two with one name, the first counts (as a scan would find it).
    pub fn new(users: Vec<StaticUser>) -> StaticDirectory {
        let mut by_name = HashMap::with_capacity(users.len());
        for user in users {
            by_name.entry(user.name.clone()).or_insert(user);
        }
        StaticDirectory { users: by_name }
    }
}

impl StaticDirectory {
    fn account(user: &StaticUser) -> Account {
        Account {
            name: user.name.clone(),
            mail_host: user.mail_host.clone(),
            access: Access {
                admin: user.admin,
                pop: user.pop3,
                imap: user.imap,
                smtp: true,
            },
            moving: None,
        }
    }
}

impl Directory for StaticDirectory {
    fn authenticate(&self, name: &str, pw: &str) -> Result<Option<Account>, DirectoryError> {
        let Some(user) = self.users.get(name) else {
            // The same work as a real check, so timing does not tell which names exist.
            password::verify(pw, crate::auth::login::dummy_hash());
            return Ok(None);
        };
        if !password::check(pw, &user.password_hash) {
            return Ok(None);
        }
        Ok(Some(StaticDirectory::account(user)))
    }

    fn lookup(&self, name: &str) -> Result<Option<Account>, DirectoryError> {
        Ok(self.users.get(name).map(StaticDirectory::account))
    }

    fn authenticate_at_once(&self, name: &str, pw: &str) -> Option<Account> {
        let user = self.users.get(name)?;
        password::known(pw, &user.password_hash).then(|| StaticDirectory::account(user))
    }

    fn lookup_at_once(&self, name: &str) -> Option<Option<Account>> {
        Some(self.users.get(name).map(StaticDirectory::account))
    }

    fn scram(&self, name: &str) -> Result<Option<ScramCredentials>, DirectoryError> {
        let user = self.users.get(name);
        // The config was checked at load: a stored form that does not parse is not there.
        Ok(user
            .and_then(|u| u.scram.as_deref())
            .and_then(|s| ScramCredentials::from_rfc5803(s).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table with bob, on b1, allowed IMAP but not POP3, with `password` (hashed afresh:
    /// a new salt, so the credential cache does not know it yet).
    fn bob(password: &str) -> StaticDirectory {
        StaticDirectory::new(vec![StaticUser {
            name: "bob".into(),
            password_hash: password::hash(password).unwrap().phc,
            scram: None,
            mail_host: "b1".into(),
            admin: false,
            imap: true,
            pop3: false,
        }])
    }

    #[test]
    fn a_static_directory_checks_passwords_and_tells_the_back_end() {
        let dir = bob("secret");
        let bob = dir.authenticate("bob", "secret").unwrap().unwrap();
        assert_eq!(bob.mail_host, "b1");
        assert!(!bob.access.pop && bob.access.imap);
        assert!(dir.authenticate("bob", "wrong").unwrap().is_none());
        assert!(dir.authenticate("nobody", "secret").unwrap().is_none());
    }

    #[test]
    fn a_static_directory_answers_at_once_what_it_holds_and_the_cache_knows() {
        use crate::auth::login::{directory_account, directory_account_at_once, Credentials, LoginError};
        use crate::auth::policy::Protocol;
        let dir = bob("static at once");
        let login = |password: &str| Credentials::Password {
            authzid: None,
            user: "bob".into(),
            password: password.into(),
            mechanism: "PLAIN",
        };
        assert!(
            dir.authenticate_at_once("bob", "static at once").is_none(),
            "not verified yet"
        );
        assert!(directory_account_at_once(&dir, &login("static at once"), Protocol::Imap).is_none());
        directory_account(&dir, &login("static at once"), Protocol::Imap).unwrap();
        let bob = directory_account_at_once(&dir, &login("static at once"), Protocol::Imap);
        assert_eq!(bob.unwrap().unwrap().mail_host, "b1");
        let pop = directory_account_at_once(&dir, &login("static at once"), Protocol::Pop3);
        assert!(matches!(pop, Some(Err(LoginError::Refused(_)))), "{pop:?}");
        assert!(directory_account_at_once(&dir, &login("static at oncE"), Protocol::Imap).is_none());
        assert!(dir.authenticate_at_once("nobody", "static at once").is_none());
        let verified = |user: &str, authzid: Option<&str>| Credentials::Verified {
            authzid: authzid.map(str::to_owned),
            user: user.into(),
        };
        let proved = directory_account_at_once(&dir, &verified("bob", None), Protocol::Imap);
        assert_eq!(proved.unwrap().unwrap().name, "bob");
        for refused in [
            verified("nobody", None),
            verified("bob", Some("alice")),
            verified("guest", None),
        ] {
            let answer = directory_account_at_once(&dir, &refused, Protocol::Imap);
            assert!(
                matches!(answer, Some(Err(LoginError::BadCredentials))),
                "{refused:?}: {answer:?}"
            );
        }
    }
}
