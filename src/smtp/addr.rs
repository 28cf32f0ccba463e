//! Which mail addresses are served here and which belong to a user: the one rule LMTP
//! recipients, submission recipients, the submission envelope sender and the From: header
//! are all checked with.
//!
//! `name@domain` and `name+detail@domain` are user `name` when the domain is served; a bare
//! `name` always is. LMTP with no domains configured serves every domain (the MTA in front
//! decided); submission with none serves only the server's own host name and `localhost`,
//! so that mail to anyone else is relayed rather than misdelivered.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    Any,
    Domains(Vec<String>),
}

impl Served {
    pub fn for_lmtp(domains: &[String]) -> Served {
        if domains.is_empty() {
            Served::Any
        } else {
            Served::Domains(domains.to_vec())
        }
    }

    pub fn for_submission(domains: &[String], hostname: &str) -> Served {
        if domains.is_empty() {
            Served::Domains(vec![hostname.to_owned(), "localhost".into()])
        } else {
            Served::Domains(domains.to_vec())
        }
    }

    fn serves(&self, domain: &str) -> bool {
        match self {
            Served::Any => true,
            Served::Domains(list) => list.iter().any(|d| d.eq_ignore_ascii_case(domain)),
        }
    }

    /// The user and mailbox detail of a local address, or None for a foreign one.
    pub fn local_part<'a>(&self, address: &'a str) -> Option<(&'a str, &'a str)> {
        let (local, domain) = split(address);
        if domain.is_some_and(|d| !self.serves(d)) {
            return None;
        }
        let (user, detail) = local.split_once('+').unwrap_or((local, ""));
        if user.is_empty() {
            return None;
        }
        Some((user, detail))
    }

    /// Whether `address` is one of `user`'s addresses (RFC 6409 §4.1's "authorized" sender).
    pub fn owned_by(&self, address: &str, user: &str) -> bool {
        self.local_part(address)
            .is_some_and(|(u, _)| u.eq_ignore_ascii_case(user))
    }
}

/// `local@domain` → (local, Some(domain)); the last '@' separates them.
pub fn split(address: &str) -> (&str, Option<&str>) {
    match address.rsplit_once('@') {
        Some((l, d)) => (l, Some(d)),
        None => (address, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submission_serves_its_own_names_without_domains() {
        let s = Served::for_submission(&[], "mx.test");
        assert_eq!(s.local_part("bob@MX.test"), Some(("bob", "")));
        assert_eq!(s.local_part("bob+Work@localhost"), Some(("bob", "Work")));
        assert_eq!(s.local_part("bob"), Some(("bob", "")));
        assert_eq!(s.local_part("bob@gmail.com"), None);
        assert_eq!(s.local_part("@mx.test"), None);
        assert!(s.owned_by("Bob@mx.test", "bob"));
        assert!(!s.owned_by("bob@elsewhere.net", "bob"));
        assert!(!s.owned_by("carol@mx.test", "bob"));
        assert!(!s.owned_by("", "bob"));
    }

    #[test]
    fn configured_domains_decide() {
        let s = Served::for_submission(&["example.org".into()], "mx.test");
        assert!(s.owned_by("bob@example.org", "bob"));
        assert!(!s.owned_by("bob@mx.test", "bob"));
        assert_eq!(Served::for_lmtp(&[]).local_part("bob@anything"), Some(("bob", "")));
    }
}
