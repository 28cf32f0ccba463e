//! Who may open a mailbox over which protocol (DESIGN.md §6, parity with Exchange).
//!
//! The checks that depend on the account run only after the password checked out, so a refusal
//! reveals nothing to someone guessing passwords.

use crate::store::User;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Pop3,
    Imap,
    Submission,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Pop3 => "POP3",
            Protocol::Imap => "IMAP4",
            Protocol::Submission => "SMTP submission",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("administrator mailboxes cannot be opened over {}", .0.name())]
    Admin(Protocol),
    #[error("{} access is disabled for this account", .0.name())]
    Disabled(Protocol),
    /// The directory puts the mailbox on another back end (reach it through a front end).
    #[error("this mailbox is held by another server")]
    Elsewhere,
}

/// Names that never log in, whatever the password: no anonymous or guest access.
pub fn is_reserved(name: &str) -> bool {
    ["anonymous", "guest"].iter().any(|r| name.eq_ignore_ascii_case(r))
}

/// Whether an authenticated user may open a session of `protocol`.
pub fn may_open(user: &User, protocol: Protocol) -> Result<(), Refusal> {
    let access = Access {
        admin: user.admin,
        pop: user.pop,
        imap: user.imap,
        smtp: user.smtp,
    };
    access.may_open(protocol)
}

/// An account's switches, wherever the account is kept (the store, a directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub admin: bool,
    pub pop: bool,
    pub imap: bool,
    pub smtp: bool,
}

impl Access {
    pub fn may_open(self, protocol: Protocol) -> Result<(), Refusal> {
        match protocol {
            Protocol::Pop3 | Protocol::Imap if self.admin => Err(Refusal::Admin(protocol)),
            Protocol::Pop3 if !self.pop => Err(Refusal::Disabled(protocol)),
            Protocol::Imap if !self.imap => Err(Refusal::Disabled(protocol)),
            Protocol::Submission if !self.smtp => Err(Refusal::Disabled(protocol)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::scram::{ScramCredentials, ScramKeys};

    fn user() -> User {
        let scram = ScramCredentials::derive("x", b"salt", 4096).unwrap();
        User::new(1, "alice".into(), String::new(), scram)
    }

    #[test]
    fn reserved_names_in_any_case() {
        assert!(is_reserved("anonymous"));
        assert!(is_reserved("GUEST"));
        assert!(!is_reserved("guests"));
    }

    #[test]
    fn admin_and_switches() {
        let mut u = user();
        assert_eq!(may_open(&u, Protocol::Pop3), Ok(()));
        u.pop = false;
        assert_eq!(may_open(&u, Protocol::Pop3), Err(Refusal::Disabled(Protocol::Pop3)));
        assert_eq!(may_open(&u, Protocol::Imap), Ok(()));
        u.admin = true;
        assert_eq!(may_open(&u, Protocol::Imap), Err(Refusal::Admin(Protocol::Imap)));
        assert_eq!(may_open(&u, Protocol::Submission), Ok(()));
        u.smtp = false;
        let off = may_open(&u, Protocol::Submission);
        assert_eq!(off, Err(Refusal::Disabled(Protocol::Submission)));
    }
}
