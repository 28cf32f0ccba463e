//! `ringmail user` against an LDAP directory: accounts are added, changed and removed in the
//! directory itself, so an account exists in one place for every front and back end.
//!
//! New entries are `inetOrgPerson` + `inetLocalMailRecipient` + `ringmailAccount` under
//! `ldap_base`, named by `uid`. Passwords go through the Password Modify extended operation
//! (RFC 3062), so the directory hashes them with its own scheme; ringmail adds the SCRAM keys
//! (`ringmailScramSHA256`, RFC 5803 form) itself. Blocking: for the command line.

use std::collections::HashSet;
use std::time::Duration;

use ldap3::exop::PasswordModify;
use ldap3::{dn_escape, ldap_escape, LdapConn, Mod, Scope, SearchEntry};

use super::ldap::{connect_as_service, entry_of_account, unavailable, ATTRS};
use super::{Account, DirectoryError};
use crate::auth::scram::{ScramCredentials, ScramKeys};
use crate::config;

/// Changes to an account; `None` leaves a value as it is.
#[derive(Debug, Default)]
pub struct AccountPatch {
    pub pop: Option<bool>,
    pub imap: Option<bool>,
    pub smtp: Option<bool>,
    pub admin: Option<bool>,
    /// `mailHost`: the back end that holds the mailbox.
    pub mail_host: Option<String>,
}

pub struct LdapAdmin {
    conn: LdapConn,
    settings: config::Directory,
}

/// A new account.
pub struct NewAccount<'a> {
    pub name: &'a str,
    pub mail: &'a str,
    pub mail_host: &'a str,
    pub admin: bool,
    pub password: &'a str,
    pub scram: &'a ScramCredentials,
}

impl LdapAdmin {
    pub fn connect(settings: &config::Directory) -> Result<LdapAdmin, DirectoryError> {
        let tls = settings
            .ldap_ca
            .as_deref()
            .and_then(|ca| crate::tls::client_config(Some(ca), "[directory] ldap_ca"));
        Ok(LdapAdmin {
            conn: connect_as_service(settings, tls.as_ref())?,
            settings: settings.clone(),
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.ldap_timeout)
    }

    fn dn_of(&self, name: &str) -> String {
        format!("uid={},{}", dn_escape(name), self.settings.ldap_base)
    }

    /// The entry of account `name`: its DN and what ringmail reads of it.
    pub fn find(&mut self, name: &str) -> Result<Option<(String, Account)>, DirectoryError> {
        let filter = format!("(&{}(uid={}))", self.settings.ldap_user_filter, ldap_escape(name));
        let timeout = self.timeout();
        let (entries, _) = self
            .conn
            .with_timeout(timeout)
            .search(&self.settings.ldap_base, Scope::Subtree, &filter, ATTRS.to_vec())
            .and_then(|r| r.success())
            .map_err(unavailable)?;
        let mut found = entries.into_iter().map(SearchEntry::construct);
        let (first, more) = (found.next(), found.next());
        if more.is_some() {
            return Err(DirectoryError::Unavailable(format!("several entries have uid={name}")));
        }
        Ok(first.and_then(|e| entry_of_account(&e).map(|a| (e.dn, a))))
    }

    pub fn list(&mut self) -> Result<Vec<Account>, DirectoryError> {
        let timeout = self.timeout();
        let (entries, _) = self
            .conn
            .with_timeout(timeout)
            .search(
                &self.settings.ldap_base,
                Scope::Subtree,
                &self.settings.ldap_user_filter,
                ATTRS.to_vec(),
            )
            .and_then(|r| r.success())
            .map_err(unavailable)?;
        let mut accounts: Vec<Account> = entries
            .into_iter()
            .filter_map(|e| entry_of_account(&SearchEntry::construct(e)))
            .collect();
        accounts.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(accounts)
    }

    pub fn add(&mut self, new: &NewAccount<'_>) -> Result<(), DirectoryError> {
        if self.find(new.name)?.is_some() {
            return Err(DirectoryError::Refused(format!("account already exists: {}", new.name)));
        }
        let dn = self.dn_of(new.name);
        let scram = new.scram.to_rfc5803();
        let one = |v: &str| HashSet::from([v.to_owned()]);
        let mut attrs = vec![
            (
                "objectClass".to_owned(),
                HashSet::from([
                    "inetOrgPerson".to_owned(),
                    "inetLocalMailRecipient".to_owned(),
                    "ringmailAccount".to_owned(),
                ]),
            ),
            ("uid".to_owned(), one(new.name)),
            ("cn".to_owned(), one(new.name)),
            ("sn".to_owned(), one(new.name)),
            ("mail".to_owned(), one(new.mail)),
            ("mailHost".to_owned(), one(new.mail_host)),
            ("ringmailScramSHA256".to_owned(), one(&scram)),
        ];
        if new.admin {
            attrs.push(("ringmailAdmin".to_owned(), one("TRUE")));
        }
        let timeout = self.timeout();
        self.conn
            .with_timeout(timeout)
            .add(&dn, attrs)
            .and_then(|r| r.success())
            .map_err(unavailable)?;
        self.set_password_of(&dn, new.password, new.scram)
    }

    pub fn passwd(&mut self, name: &str, password: &str, scram: &ScramCredentials) -> Result<(), DirectoryError> {
        let (dn, _) = self.find(name)?.ok_or_else(|| no_such(name))?;
        self.set_password_of(&dn, password, scram)
    }

    fn set_password_of(&mut self, dn: &str, password: &str, scram: &ScramCredentials) -> Result<(), DirectoryError> {
        let timeout = self.timeout();
        let modify = PasswordModify {
            user_id: Some(dn),
            old_pass: None,
            new_pass: Some(password),
        };
        self.conn
            .with_timeout(timeout)
            .extended(modify)
            .and_then(|r| r.success())
            .map_err(|e| DirectoryError::Unavailable(format!("password modify: {e}")))?;
        let scram = scram.to_rfc5803();
        let mods = vec![Mod::Replace("ringmailScramSHA256", HashSet::from([scram.as_str()]))];
        self.conn
            .with_timeout(timeout)
            .modify(dn, mods)
            .and_then(|r| r.success())
            .map_err(unavailable)?;
        Ok(())
    }

    pub fn set(&mut self, name: &str, patch: &AccountPatch) -> Result<Account, DirectoryError> {
        let (dn, _) = self.find(name)?.ok_or_else(|| no_such(name))?;
        let flag = |v: bool| if v { "TRUE" } else { "FALSE" };
        let mut mods: Vec<Mod<String>> = Vec::new();
        for (attr, value) in [
            ("ringmailPOP3Enabled", patch.pop),
            ("ringmailIMAPEnabled", patch.imap),
            ("ringmailSubmissionEnabled", patch.smtp),
            ("ringmailAdmin", patch.admin),
        ] {
            if let Some(v) = value {
                mods.push(Mod::Replace(attr.to_owned(), HashSet::from([flag(v).to_owned()])));
            }
        }
        if let Some(host) = &patch.mail_host {
            mods.push(Mod::Replace("mailHost".to_owned(), HashSet::from([host.clone()])));
        }
        if !mods.is_empty() {
            let timeout = self.timeout();
            self.conn
                .with_timeout(timeout)
                .modify(&dn, mods)
                .and_then(|r| r.success())
                .map_err(unavailable)?;
        }
        self.find(name)?.map(|(_, a)| a).ok_or_else(|| no_such(name))
    }

    pub fn delete(&mut self, name: &str) -> Result<(), DirectoryError> {
        let (dn, _) = self.find(name)?.ok_or_else(|| no_such(name))?;
        let timeout = self.timeout();
        self.conn
            .with_timeout(timeout)
            .delete(&dn)
            .and_then(|r| r.success())
            .map_err(unavailable)?;
        Ok(())
    }
}

/// An account's entry as a mailbox move reads it.
#[derive(Debug, Clone)]
pub struct MoveRecord {
    pub dn: String,
    pub account: Account,
    /// `ringmailMoveGeneration`: moves so far (none yet: `None`).
    pub generation: Option<u64>,
}

/// LDAP's assertionFailed (RFC 4528 §5): the entry no longer matched the assertion.
const ASSERTION_FAILED: u32 = 122;

impl LdapAdmin {
    pub fn move_record(&mut self, name: &str) -> Result<Option<MoveRecord>, DirectoryError> {
        let filter = format!("(&{}(uid={}))", self.settings.ldap_user_filter, ldap_escape(name));
        Ok(self.move_records(&filter)?.into_iter().next())
    }

    /// Every account a move is under way for.
    pub fn moving(&mut self) -> Result<Vec<MoveRecord>, DirectoryError> {
        let filter = format!("(&{}(ringmailMoveState=*))", self.settings.ldap_user_filter);
        self.move_records(&filter)
    }

    /// Every account whose mailbox `backend` holds.
    pub fn on_backend(&mut self, backend: &str) -> Result<Vec<MoveRecord>, DirectoryError> {
        let filter = format!(
            "(&{}(mailHost={}))",
            self.settings.ldap_user_filter,
            ldap_escape(backend)
        );
        self.move_records(&filter)
    }

    fn move_records(&mut self, filter: &str) -> Result<Vec<MoveRecord>, DirectoryError> {
        let mut attrs = ATTRS.to_vec();
        attrs.push("ringmailMoveGeneration");
        let timeout = self.timeout();
        let (entries, _) = self
            .conn
            .with_timeout(timeout)
            .search(&self.settings.ldap_base, Scope::Subtree, filter, attrs)
            .and_then(|r| r.success())
            .map_err(unavailable)?;
        let mut records: Vec<MoveRecord> = entries
            .into_iter()
            .map(SearchEntry::construct)
            .filter_map(|e| {
                let generation = e
                    .attrs
                    .get("ringmailMoveGeneration")
                    .and_then(|v| v.first())
                    .and_then(|v| v.parse().ok());
                let account = entry_of_account(&e)?;
                Some(MoveRecord {
                    dn: e.dn,
                    account,
                    generation,
                })
            })
            .collect();
        records.sort_by(|a, b| a.account.name.cmp(&b.account.name));
        Ok(records)
    }

    /// Records the move's stage (`copying`, `locked`) and target.
    pub fn move_stage(&mut self, record: &MoveRecord, stage: &str, target: &str) -> Result<(), DirectoryError> {
        let mods = vec![
            Mod::Replace("ringmailMoveState".to_owned(), HashSet::from([stage.to_owned()])),
            Mod::Replace("ringmailMoveTarget".to_owned(), HashSet::from([target.to_owned()])),
        ];
        self.modify(&record.dn, mods)
    }

    /// Forgets a move: the mailbox stays where `mailHost` says.
    pub fn move_abort(&mut self, record: &MoveRecord) -> Result<(), DirectoryError> {
        let mods = vec![
            Mod::Replace("ringmailMoveState".to_owned(), HashSet::new()),
            Mod::Replace("ringmailMoveTarget".to_owned(), HashSet::new()),
        ];
        self.modify(&record.dn, mods)
    }

    /// The flip: `mailHost` becomes `target` (and `ringmailSite` its site), the generation
    /// grows by one and the move's stage goes — only if the generation is still the one
    /// `record` read (the assertion control, RFC 4528), so two moves of one mailbox cannot
    /// both win.
    pub fn move_flip(&mut self, record: &MoveRecord, target: &str, site: &str) -> Result<(), DirectoryError> {
        let assertion = match record.generation {
            Some(g) => format!("(ringmailMoveGeneration={g})"),
            None => "(!(ringmailMoveGeneration=*))".to_owned(),
        };
        let next = record.generation.unwrap_or(0) + 1;
        let mods = vec![
            Mod::Replace("mailHost".to_owned(), HashSet::from([target.to_owned()])),
            Mod::Replace("ringmailSite".to_owned(), HashSet::from([site.to_owned()])),
            Mod::Replace("ringmailMoveGeneration".to_owned(), HashSet::from([next.to_string()])),
            Mod::Replace("ringmailMoveState".to_owned(), HashSet::new()),
            Mod::Replace("ringmailMoveTarget".to_owned(), HashSet::new()),
        ];
        let timeout = self.timeout();
        let result = self
            .conn
            .with_timeout(timeout)
            .with_controls(ldap3::controls::RawControl {
                crit: true,
                ..ldap3::controls::Assertion::new(assertion)
            })
            .modify(&record.dn, mods)
            .map_err(unavailable)?;
        match result.rc {
            0 => Ok(()),
            ASSERTION_FAILED => Err(DirectoryError::Refused(format!(
                "{}'s entry changed during the move (another move?): mailHost not changed",
                record.account.name
            ))),
            _ => Err(DirectoryError::Unavailable(format!("modify: {result}"))),
        }
    }

    fn modify(&mut self, dn: &str, mods: Vec<Mod<String>>) -> Result<(), DirectoryError> {
        let timeout = self.timeout();
        self.conn
            .with_timeout(timeout)
            .modify(dn, mods)
            .and_then(|r| r.success())
            .map_err(unavailable)?;
        Ok(())
    }
}

fn no_such(name: &str) -> DirectoryError {
    DirectoryError::Refused(format!("no such account: {name}"))
}
