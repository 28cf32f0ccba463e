//! The live sessions of one server process, as the operator sees them: `ringmail who` lists
//! them, `ringmail kick` ends them, the metrics count them by protocol and state.
//!
//! Each core files its sessions in a table of its own, so a session's arrival and departure
//! only ever takes its own core's lock, which nothing else holds except the rare reader (the
//! admin socket, a metrics scrape) that looks at every table for a moment. A session's entry is
//! updated by its driver with plain atomic stores. Kicking one shuts its socket's reading side:
//! the read it waits in (for a command, or in IDLE) ends, and the driver, seeing the kick, says
//! goodbye over the writing side that is still open. So a kick costs the waiting sessions no
//! room at all, not even one more thing to wait for.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::engine::Phase;

/// The protocols a session may speak, as `who`, `kick` and the metrics name them.
pub const PROTOCOLS: [&str; 4] = ["imap", "pop3", "submission", "lmtp"];

/// One session, as `who` shows it. Every live session has one: its fields are kept narrow.
pub struct Session {
    pub id: u64,
    /// Unix seconds (`since`). Four bytes, not eight, keep the entry within 64 bytes, so each
    /// session's `Arc` takes an 80-byte block of the allocator, not a 96-byte one.
    since: u32,
    /// The client's address (for a proxied session, the client behind the front end).
    pub peer: Option<IpAddr>,
    /// Its place in `PROTOCOLS`.
    protocol: u8,
    core: u16,
    tls: AtomicBool,
    phase: AtomicU8,
    user: Mutex<Option<Box<str>>>,
    /// The socket, shut for reading by a kick (-1: none).
    fd: AtomicI32,
    kicked: AtomicBool,
}

impl Session {
    /// When it connected, in Unix seconds.
    pub fn since(&self) -> u64 {
        u64::from(self.since)
    }

    /// `imap`, `pop3`, `submission` or `lmtp`.
    pub fn protocol(&self) -> &'static str {
        PROTOCOLS[usize::from(self.protocol)]
    }

    /// The event loop it runs on.
    pub fn core(&self) -> usize {
        usize::from(self.core)
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    pub fn tls(&self) -> bool {
        self.tls.load(Ordering::Relaxed)
    }

    /// The user it is logged in as.
    pub fn user(&self) -> Option<String> {
        lock(&self.user).as_deref().map(str::to_owned)
    }

    /// Records where the session stands; back before login it is nobody's again (IMAP
    /// UNAUTHENTICATE).
    pub fn set_phase(&self, phase: Phase) {
        if self.phase.swap(phase as u8, Ordering::Relaxed) != phase as u8 && phase == Phase::PreAuth {
            *lock(&self.user) = None;
        }
    }

    pub fn logged_in(&self, user: &str) {
        *lock(&self.user) = Some(user.into());
    }

    pub fn tls_started(&self) {
        self.tls.store(true, Ordering::Relaxed);
    }

    /// Ends the session: the read it waits in, or its next one, ends, and it says goodbye.
    /// Called with its table locked, so the socket is still the session's.
    fn kick(&self) {
        self.kicked.store(true, Ordering::SeqCst);
        let fd = self.fd.load(Ordering::SeqCst);
        if fd >= 0 {
            crate::runtime::io::shut_read(fd);
        }
    }

    /// Whether the operator ended it: its reads end without input, and the goodbye is owed.
    pub fn is_kicked(&self) -> bool {
        self.kicked.load(Ordering::SeqCst)
    }
}

/// A poisoned lock only means a thread panicked while it held it; the entry is still whole.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Table = Mutex<HashMap<u64, Arc<Session>>>;

/// Every core's table of sessions.
pub struct Registry {
    tables: Box<[Arc<Table>]>,
    /// Users whose mailbox is being moved away (`ringmail move`, by lowercased name): no new
    /// session or delivery of theirs while they are here.
    held: Mutex<std::collections::HashSet<String>>,
}

/// What a new session is.
pub struct Arrival {
    pub id: u64,
    /// One of `PROTOCOLS`.
    pub protocol: &'static str,
    pub peer: Option<IpAddr>,
    pub tls: bool,
    /// Its socket, which a kick shuts for reading.
    pub fd: Option<std::os::fd::RawFd>,
}

impl Registry {
    pub fn new(cores: usize) -> Registry {
        Registry {
            tables: (0..cores.max(1)).map(|_| Arc::default()).collect(),
            held: Mutex::default(),
        }
    }

    /// Holds `user` (`on`) or lets them go again: while held, logins and deliveries of
    /// theirs fail temporarily.
    pub fn hold(&self, user: &str, on: bool) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if on {
            held.insert(user.to_ascii_lowercase());
        } else {
            held.remove(&user.to_ascii_lowercase());
        }
    }

    pub fn is_held(&self, user: &str) -> bool {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        !held.is_empty() && held.contains(&user.to_ascii_lowercase())
    }

    /// Files a session in the table of the core this runs on; it stays there until the
    /// handle is dropped.
    pub fn register(&self, arrival: Arrival) -> Handle {
        let core = crate::runtime::core_index() % self.tables.len();
        let protocol = PROTOCOLS.iter().position(|&p| p == arrival.protocol);
        debug_assert!(protocol.is_some(), "unknown protocol {}", arrival.protocol);
        let session = Arc::new(Session {
            id: arrival.id,
            protocol: protocol.unwrap_or(0) as u8,
            core: u16::try_from(core).unwrap_or(u16::MAX),
            peer: arrival.peer,
            since: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX)),
            tls: arrival.tls.into(),
            phase: AtomicU8::new(Phase::PreAuth as u8),
            user: Mutex::new(None),
            fd: AtomicI32::new(arrival.fd.unwrap_or(-1)),
            kicked: AtomicBool::new(false),
        });
        let table = self.tables[core].clone();
        lock(&table).insert(arrival.id, session.clone());
        Handle { session, table }
    }

    /// Every session, oldest first.
    pub fn list(&self) -> Vec<Arc<Session>> {
        let mut all: Vec<Arc<Session>> = self
            .tables
            .iter()
            .flat_map(|t| lock(t).values().cloned().collect::<Vec<_>>())
            .collect();
        all.sort_by_key(|s| s.id);
        all
    }

    /// Kicks every session of `user` (over `protocol` only, if given); how many.
    pub fn kick(&self, user: &str, protocol: Option<&str>) -> usize {
        let mut kicked = 0;
        for table in &self.tables {
            // Held while kicking: a session leaves its table before its socket closes.
            let table = lock(table);
            for session in table.values() {
                let theirs = session.user().is_some_and(|u| u == user);
                if theirs && protocol.is_none_or(|p| p == session.protocol()) {
                    session.kick();
                    kicked += 1;
                }
            }
        }
        kicked
    }
}

/// A session's place in its core's table, for as long as the session lives; it must go
/// before the session's socket is closed.
pub struct Handle {
    session: Arc<Session>,
    table: Arc<Table>,
}

impl std::ops::Deref for Handle {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.table).remove(&self.session.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(id: u64, protocol: &'static str) -> Arrival {
        Arrival {
            id,
            protocol,
            peer: Some([127, 0, 0, 1].into()),
            tls: false,
            fd: None,
        }
    }

    /// Every live session has one, in an `Arc`.
    #[test]
    fn an_entry_is_at_most_64_bytes() {
        let size = std::mem::size_of::<Session>();
        assert!(size <= 64, "a session's entry grew to {size} bytes");
    }

    #[test]
    fn a_session_is_listed_while_its_handle_lives() {
        let registry = Registry::new(2);
        let a = registry.register(arrival(1, "imap"));
        let b = registry.register(arrival(2, "pop3"));
        assert_eq!(registry.list().iter().map(|s| s.id).collect::<Vec<_>>(), [1, 2]);
        drop(a);
        assert_eq!(registry.list().iter().map(|s| s.id).collect::<Vec<_>>(), [2]);
        drop(b);
        assert!(registry.list().is_empty());
    }

    #[test]
    fn kick_reaches_only_that_users_sessions_of_that_protocol() {
        let registry = Registry::new(1);
        let (a, b, c) = (
            registry.register(arrival(1, "imap")),
            registry.register(arrival(2, "pop3")),
            registry.register(arrival(3, "imap")),
        );
        a.logged_in("alice");
        b.logged_in("alice");
        c.logged_in("bob");
        assert_eq!(registry.kick("alice", Some("imap")), 1);
        assert!(a.is_kicked() && !b.is_kicked() && !c.is_kicked());
        assert_eq!(registry.kick("alice", None), 2);
        assert!(b.is_kicked() && !c.is_kicked());
        assert_eq!(registry.kick("carol", None), 0);
    }

    #[test]
    fn going_back_before_login_forgets_the_user() {
        let registry = Registry::new(1);
        let s = registry.register(arrival(1, "imap"));
        s.logged_in("alice");
        s.set_phase(Phase::Selected);
        assert_eq!((s.user().as_deref(), s.phase()), (Some("alice"), Phase::Selected));
        s.set_phase(Phase::PreAuth);
        assert_eq!(s.user(), None);
        assert_eq!(registry.kick("alice", None), 0);
    }
}
