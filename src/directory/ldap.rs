//! Accounts in an LDAP directory (OpenLDAP, as Exchange uses Active Directory): an entry with
//! `uid`, `userPassword` and `mailHost` (misc.schema's `inetLocalMailRecipient`) is an
//! account, and `docs/ldap/ringmail.schema`'s `ringmailAccount` carries its switches.
//!
//! Passwords are checked by binding as the account's entry, so the directory's own password
//! schemes and policies apply and no hash leaves it. Entries are cached for `cache_ttl`
//! seconds, and a content-synchronisation search (RFC 4533 refreshAndPersist) replaces or
//! drops a cached entry as soon as the directory changes it, where the server offers one.
//! Every call blocks (network): call it off the event loops.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ldap3::controls::{ControlType, RefreshMode, SyncRequest, SyncState};
use ldap3::{ldap_escape, LdapConn, LdapConnSettings, LdapError, Scope, SearchEntry};

use super::{Account, DirectoryError};
use crate::auth::policy::Access;
use crate::auth::scram::{ScramCredentials, ScramKeys};
use crate::config;

/// The attributes an account is read from.
pub(super) const ATTRS: [&str; 9] = [
    "uid",
    "ringmailScramSHA256",
    "mailHost",
    "ringmailIMAPEnabled",
    "ringmailPOP3Enabled",
    "ringmailSubmissionEnabled",
    "ringmailAdmin",
    "ringmailMoveState",
    "ringmailMoveTarget",
];

/// The Content Synchronization control (RFC 4533), as rootDSE's supportedControl lists it.
const SYNC_OID: &str = "1.3.6.1.4.1.4203.1.9.1.1";
/// LDAP result code invalidCredentials (RFC 4511 §4.1.9).
const INVALID_CREDENTIALS: u32 = 49;
/// How long the sync search waits before it connects again after losing the server.
const SYNC_RETRY: Duration = Duration::from_secs(5);

pub struct LdapDirectory {
    shared: Arc<Shared>,
}

struct Shared {
    settings: config::Directory,
    tls: Option<Arc<rustls::ClientConfig>>,
    cache: Mutex<Cache>,
    /// The connection that searches, bound as `ldap_bind_dn`.
    searcher: Mutex<Option<LdapConn>>,
    /// Connections free for a user's bind.
    binders: Mutex<Vec<LdapConn>>,
}

/// An account entry as the directory last said it.
#[derive(Debug, Clone)]
struct Entry {
    dn: String,
    account: Account,
    scram: Option<ScramCredentials>,
}

#[derive(Default)]
struct Cache {
    /// By lowercased name (`uid` matches without case); None: no such account.
    by_name: HashMap<String, (Option<Entry>, Instant)>,
    /// Entry UUID to name, for the sync search's deletes, which carry only the UUID.
    by_uuid: HashMap<Vec<u8>, String>,
}

impl LdapDirectory {
    /// Connects lazily: a directory that is down at start makes logins fail temporarily,
    /// not the server refuse to start.
    pub fn new(settings: &config::Directory) -> LdapDirectory {
        let tls = settings
            .ldap_ca
            .as_deref()
            .and_then(|ca| crate::tls::client_config(Some(ca), "[directory] ldap_ca"));
        let shared = Arc::new(Shared {
            settings: settings.clone(),
            tls,
            cache: Mutex::default(),
            searcher: Mutex::new(None),
            binders: Mutex::new(Vec::new()),
        });
        if settings.ldap_sync {
            let sync = shared.clone();
            let started = std::thread::Builder::new()
                .name("ringmail-ldap-sync".into())
                .spawn(move || sync.keep_in_sync());
            if let Err(e) = started {
                tracing::error!("ldap: cannot start the sync thread ({e}); entries expire after cache_ttl");
            }
        }
        LdapDirectory { shared }
    }
}

impl super::Directory for LdapDirectory {
    fn authenticate(&self, name: &str, password: &str) -> Result<Option<Account>, DirectoryError> {
        let entry = self.shared.entry(name)?;
        // An empty password would be an unauthenticated bind, which succeeds (RFC 4513 §5.1.2).
        if password.is_empty() {
            return Ok(None);
        }
        // A name that does not exist costs a bind too, so timing does not tell which exist.
        let dn = entry.as_ref().map_or_else(|| self.shared.nobody_dn(), |e| e.dn.clone());
        let bound = self.shared.bind(&dn, password)?;
        Ok(entry.filter(|_| bound).map(|e| e.account))
    }

    fn lookup(&self, name: &str) -> Result<Option<Account>, DirectoryError> {
        Ok(self.shared.entry(name)?.map(|e| e.account))
    }

    fn lookup_fresh(&self, name: &str) -> Result<Option<Account>, DirectoryError> {
        let entry = self.shared.search(name)?;
        let key = name.to_lowercase();
        self.shared.cache().by_name.insert(key, (entry.clone(), Instant::now()));
        Ok(entry.map(|e| e.account))
    }

    fn scram(&self, name: &str) -> Result<Option<ScramCredentials>, DirectoryError> {
        Ok(self.shared.entry(name)?.and_then(|e| e.scram))
    }
}

impl Shared {
    fn ttl(&self) -> Duration {
        Duration::from_secs(self.settings.cache_ttl)
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.ldap_timeout)
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The account entry `name`, from the cache while it is fresh.
    fn entry(&self, name: &str) -> Result<Option<Entry>, DirectoryError> {
        let key = name.to_lowercase();
        if let Some((entry, at)) = self.cache().by_name.get(&key) {
            if at.elapsed() < self.ttl() {
                return Ok(entry.clone());
            }
        }
        let entry = self.search(name)?;
        self.cache().by_name.insert(key, (entry.clone(), Instant::now()));
        Ok(entry)
    }

    fn search(&self, name: &str) -> Result<Option<Entry>, DirectoryError> {
        let filter = format!("(&{}(uid={}))", self.settings.ldap_user_filter, ldap_escape(name));
        let mut searcher = self.searcher.lock().unwrap_or_else(|p| p.into_inner());
        // A connection the server dropped since is found out here, and replaced once.
        for attempt in 0..2 {
            let conn = match searcher.as_mut() {
                Some(conn) => conn,
                None => searcher.insert(self.connect_as_service()?),
            };
            let result = conn
                .with_timeout(self.timeout())
                .search(&self.settings.ldap_base, Scope::Subtree, &filter, ATTRS.to_vec())
                .and_then(|r| r.success());
            match result {
                Ok((entries, _)) => {
                    let mut entries = entries.into_iter().map(SearchEntry::construct);
                    let (first, more) = (entries.next(), entries.next());
                    if more.is_some() {
                        tracing::error!(user = name, "ldap: several entries match; refusing the account");
                        return Ok(None);
                    }
                    return Ok(first.and_then(|e| entry_of(&e)));
                }
                Err(e) => {
                    *searcher = None;
                    if attempt == 1 || !is_connection_error(&e) {
                        return Err(unavailable(e));
                    }
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Binds as `dn`: Ok(false) for a wrong password, Err when the directory cannot say.
    fn bind(&self, dn: &str, password: &str) -> Result<bool, DirectoryError> {
        let pooled = self.binders.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let result = conn.with_timeout(self.timeout()).simple_bind(dn, password);
        let bound = match result {
            Ok(r) if r.rc == 0 => true,
            Ok(r) if r.rc == INVALID_CREDENTIALS => false,
            Ok(r) => return Err(DirectoryError::Unavailable(format!("bind: {r}"))),
            Err(e) => return Err(unavailable(e)),
        };
        self.binders.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        Ok(bound)
    }

    /// A DN under the base that no account has.
    fn nobody_dn(&self) -> String {
        format!("cn=ringmail-no-such-account,{}", self.settings.ldap_base)
    }

    fn connect(&self) -> Result<LdapConn, DirectoryError> {
        connect(&self.settings, self.tls.as_ref())
    }

    fn connect_as_service(&self) -> Result<LdapConn, DirectoryError> {
        connect_as_service(&self.settings, self.tls.as_ref())
    }

    /// Runs the content-synchronisation search for as long as the process lives.
    fn keep_in_sync(&self) {
        loop {
            match self.sync_once() {
                Ok(false) => {
                    tracing::info!(
                        "ldap: the server offers no content synchronisation; entries expire after cache_ttl"
                    );
                    return;
                }
                Ok(true) => tracing::warn!("ldap: the sync search ended; starting it again"),
                Err(e) => tracing::warn!("ldap sync: {e}"),
            }
            // What changed while the search was down is unknown: look everything up again.
            self.cache().by_name.clear();
            std::thread::sleep(SYNC_RETRY);
        }
    }

    /// One refreshAndPersist search, until it ends. Ok(false): the server does not sync.
    fn sync_once(&self) -> Result<bool, DirectoryError> {
        let mut conn = self.connect_as_service()?;
        if !offers_sync(&mut conn)? {
            return Ok(false);
        }
        let request = SyncRequest {
            mode: RefreshMode::RefreshAndPersist,
            cookie: None,
            reload_hint: false,
        };
        let mut stream = conn
            .with_controls(request)
            .streaming_search(
                &self.settings.ldap_base,
                Scope::Subtree,
                &self.settings.ldap_user_filter,
                ATTRS.to_vec(),
            )
            .map_err(unavailable)?;
        loop {
            let Some(found) = stream.next().map_err(unavailable)? else {
                return Ok(true);
            };
            // Sync Info messages carry cookies, which a search started afresh does not need.
            if found.is_intermediate() || found.is_ref() {
                continue;
            }
            // ldap3 panics on BER it cannot parse: a broken message ends this search, not the
            // process.
            let parsed = std::panic::catch_unwind(|| {
                let state = found
                    .1
                    .iter()
                    .find(|c| matches!(c.0, Some(ControlType::SyncState)))
                    .map(|c| c.1.parse::<SyncState>());
                (state, SearchEntry::construct(found))
            });
            let Ok((Some(state), entry)) = parsed else {
                return Err(DirectoryError::Unavailable(
                    "sync: a message without a sync state".into(),
                ));
            };
            self.apply(state, &entry);
        }
    }

    /// Brings the cache up to one change the sync search reported.
    fn apply(&self, state: SyncState, found: &SearchEntry) {
        use ldap3::controls::EntryState;
        let mut cache = self.cache();
        let known = cache.by_uuid.get(&state.entry_uuid).cloned();
        match state.state {
            EntryState::Add | EntryState::Modify | EntryState::Present => {
                let Some(entry) = entry_of(found) else {
                    return;
                };
                let key = entry.account.name.to_lowercase();
                // A renamed account leaves its old name behind.
                if let Some(old) = known.filter(|old| *old != key) {
                    cache.by_name.remove(&old);
                }
                cache.by_uuid.insert(state.entry_uuid, key.clone());
                cache.by_name.insert(key, (Some(entry), Instant::now()));
            }
            EntryState::Delete => {
                if let Some(old) = known {
                    cache.by_uuid.remove(&state.entry_uuid);
                    cache.by_name.insert(old, (None, Instant::now()));
                }
            }
        }
    }
}

/// A connection to the directory `settings` names, TLS checked against `tls` (else the
/// system's CAs).
fn connect(settings: &config::Directory, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<LdapConn, DirectoryError> {
    let mut conn = LdapConnSettings::new()
        .set_conn_timeout(Duration::from_secs(settings.ldap_timeout))
        .set_starttls(settings.ldap_starttls);
    if let Some(tls) = tls {
        conn = conn.set_config(tls.clone());
    }
    LdapConn::with_settings(conn, &settings.ldap_url).map_err(unavailable)
}

/// A connection bound as `ldap_bind_dn`.
pub(super) fn connect_as_service(
    settings: &config::Directory,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<LdapConn, DirectoryError> {
    let mut conn = connect(settings, tls)?;
    if !settings.ldap_bind_dn.is_empty() {
        conn.with_timeout(Duration::from_secs(settings.ldap_timeout))
            .simple_bind(&settings.ldap_bind_dn, &settings.ldap_bind_password)
            .and_then(|r| r.success())
            .map_err(|e| DirectoryError::Unavailable(format!("bind as ldap_bind_dn: {e}")))?;
    }
    Ok(conn)
}

/// Whether the server lists the Content Synchronization control in its root DSE.
fn offers_sync(conn: &mut LdapConn) -> Result<bool, DirectoryError> {
    let (entries, _) = conn
        .search("", Scope::Base, "(objectClass=*)", vec!["supportedControl"])
        .and_then(|r| r.success())
        .map_err(unavailable)?;
    Ok(entries.into_iter().map(SearchEntry::construct).any(|e| {
        e.attrs
            .get("supportedControl")
            .is_some_and(|oids| oids.iter().any(|o| o == SYNC_OID))
    }))
}

/// The account an entry describes; None without a `uid` or `mailHost`.
pub(super) fn entry_of_account(e: &SearchEntry) -> Option<Account> {
    entry_of(e).map(|entry| entry.account)
}

fn entry_of(e: &SearchEntry) -> Option<Entry> {
    let first = |attr: &str| e.attrs.get(attr).and_then(|v| v.first()).map(String::as_str);
    let switch = |attr: &str, default: bool| first(attr).map_or(default, |v| v.eq_ignore_ascii_case("TRUE"));
    let (Some(name), Some(mail_host)) = (first("uid"), first("mailHost")) else {
        tracing::warn!(dn = %e.dn, "ldap: an account entry without uid or mailHost");
        return None;
    };
    let scram = first("ringmailScramSHA256").and_then(|s| match ScramCredentials::from_rfc5803(s) {
        Ok(keys) => Some(keys),
        Err(err) => {
            tracing::warn!(dn = %e.dn, "ldap: ringmailScramSHA256: {err}");
            None
        }
    });
    Some(Entry {
        scram,
        dn: e.dn.clone(),
        account: Account {
            name: name.to_owned(),
            mail_host: mail_host.to_owned(),
            access: Access {
                admin: switch("ringmailAdmin", false),
                imap: switch("ringmailIMAPEnabled", true),
                pop: switch("ringmailPOP3Enabled", true),
                smtp: switch("ringmailSubmissionEnabled", true),
            },
            moving: first("ringmailMoveState").map(|state| super::Moving {
                locked: state.eq_ignore_ascii_case("locked"),
                target: first("ringmailMoveTarget").unwrap_or_default().to_owned(),
            }),
        },
    })
}

fn is_connection_error(e: &LdapError) -> bool {
    matches!(
        e,
        LdapError::Io { .. } | LdapError::EndOfStream | LdapError::OpSend { .. } | LdapError::ResultRecv { .. }
    )
}

pub(super) fn unavailable(e: LdapError) -> DirectoryError {
    DirectoryError::Unavailable(e.to_string())
}
