//! Connection limits per server, per source address and per user, counting idle sessions too.
//!
//! One registry per protocol, shared by every core. A `Slot` holds a connection's place and
//! gives it back when dropped, so a session that dies any way at all frees its count.
//!
//! Under all of them, one `Descriptors` budget per process: connections past what the
//! descriptor limit leaves room for are refused with a reason, rather than `accept` failing
//! with EMFILE for every protocol at once.
//!
//! A session waiting in IMAP IDLE can be *parked* here: a user at the per-user limit who logs
//! in again then takes the place of their oldest parked session, which is told to close, since
//! phones that change networks leave dead IDLE sessions behind and a refused client backs off
//! for an hour.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    #[error("too many connections to this server")]
    Server,
    #[error("too many connections from your address")]
    Address,
    #[error("too many connections for this user")]
    User,
}

impl LimitHit {
    /// Which limit, as the metrics name it.
    pub fn name(self) -> &'static str {
        match self {
            LimitHit::Server => "server",
            LimitHit::Address => "address",
            LimitHit::User => "user",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    /// The protocol's name, for the metrics.
    pub protocol: &'static str,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    pub max_connections_per_user: u32,
}

#[derive(Default)]
struct Counts {
    total: u32,
    by_ip: HashMap<IpAddr, u32>,
    by_user: HashMap<String, u32>,
    /// Each user's parked sessions, oldest first.
    parked: HashMap<String, Vec<Arc<Parked>>>,
}

/// A session parked in IDLE. When a newer login takes its place, `evicted` is set (its user
/// count already moved to the newcomer) and `evict` is rung to have it say BYE and close: a
/// bell of its own, or one a core's parked sessions share (`serve::lot`).
pub struct Parked {
    evict: Arc<Notify>,
    evicted: AtomicBool,
}

impl Parked {
    /// Resolves once a newer login of the same user has taken this session's place (a bell
    /// of its own only).
    pub fn evicted(&self) -> tokio::sync::futures::Notified<'_> {
        self.evict.notified()
    }
}

pub struct ConnectionLimits {
    settings: LimitSettings,
    descriptors: Arc<Descriptors>,
    counts: Mutex<Counts>,
}

/// The connections a process may still open, over every protocol (see `runtime::nofile`).
pub struct Descriptors {
    free: AtomicU32,
}

impl Descriptors {
    pub fn new(connections: u32) -> Arc<Descriptors> {
        Arc::new(Descriptors {
            free: AtomicU32::new(connections),
        })
    }

    fn take(&self) -> bool {
        self.free
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    fn give(&self) {
        self.free.fetch_add(1, Ordering::AcqRel);
    }
}

/// Every protocol's limits, all inside one descriptor budget.
pub struct ProtocolLimits {
    pub imap: Arc<ConnectionLimits>,
    pub pop3: Arc<ConnectionLimits>,
    pub submission: Arc<ConnectionLimits>,
    pub lmtp: Arc<ConnectionLimits>,
}

impl ProtocolLimits {
    /// The configured limits, each connection holding `per_connection` descriptors (a front
    /// end's relayed session holds two: its client's and its back end's).
    pub fn from_config(config: &crate::config::Config, per_connection: u64) -> ProtocolLimits {
        let budget = crate::runtime::nofile::connection_budget(per_connection, &config.connection_limits());
        let descriptors = Descriptors::new(budget);
        let limits = |protocol, max_connections, max_connections_per_ip, max_connections_per_user| {
            let settings = LimitSettings {
                protocol,
                max_connections,
                max_connections_per_ip,
                max_connections_per_user,
            };
            ConnectionLimits::new(settings, &descriptors)
        };
        let (i, p, s, l) = (&config.imap, &config.pop3, &config.submission, &config.lmtp);
        ProtocolLimits {
            imap: limits(
                "imap",
                i.max_connections,
                i.max_connections_per_ip,
                i.max_connections_per_user,
            ),
            pop3: limits(
                "pop3",
                p.max_connections,
                p.max_connections_per_ip,
                p.max_connections_per_user,
            ),
            submission: limits(
                "submission",
                s.max_connections,
                s.max_connections_per_ip,
                s.max_connections_per_user,
            ),
            // LMTP has no users.
            lmtp: limits("lmtp", l.max_connections, l.max_connections_per_ip, u32::MAX),
        }
    }
}

/// One connection's place in the counts.
pub struct Slot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
    user: Option<Box<str>>,
    parked: Option<Arc<Parked>>,
}

impl ConnectionLimits {
    pub fn new(settings: LimitSettings, descriptors: &Arc<Descriptors>) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            settings,
            descriptors: descriptors.clone(),
            counts: Mutex::new(Counts::default()),
        })
    }

    /// The protocol these limits are for.
    pub fn protocol(&self) -> &'static str {
        self.settings.protocol
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn connect(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, LimitHit> {
        let mut c = self.lock();
        if c.total >= self.settings.max_connections {
            return Err(LimitHit::Server);
        }
        let per_ip = c.by_ip.get(&ip).copied().unwrap_or(0);
        if per_ip >= self.settings.max_connections_per_ip {
            return Err(LimitHit::Address);
        }
        if !self.descriptors.take() {
            return Err(LimitHit::Server);
        }
        c.total += 1;
        *c.by_ip.entry(ip).or_insert(0) += 1;
        Ok(Slot {
            limits: self.clone(),
            ip,
            user: None,
            parked: None,
        })
    }

    /// Current connections of `user`, for tests and the admin view.
    pub fn user_count(&self, user: &str) -> u32 {
        self.lock().by_user.get(user).copied().unwrap_or(0)
    }
}

impl Slot {
    /// Counts this connection against `user` once it has logged in.
    pub fn login(&mut self, user: &str) -> Result<(), LimitHit> {
        if self.user.as_deref() == Some(user) {
            return Ok(());
        }
        let limits = self.limits.clone();
        let mut c = limits.lock();
        if let Some(previous) = self.user.take() {
            release(&mut c.by_user, &*previous);
        }
        let n = c.by_user.get(user).copied().unwrap_or(0);
        if n >= limits.settings.max_connections_per_user && !evict_oldest(&mut c, user) {
            return Err(LimitHit::User);
        }
        *c.by_user.entry(user.to_owned()).or_insert(0) += 1;
        self.user = Some(user.into());
        Ok(())
    }

    /// The session is no longer logged in (IMAP UNAUTHENTICATE, RFC 8437): it stops counting
    /// against its user, and is no longer parked.
    pub fn logout(&mut self) {
        let Some(user) = self.user.take() else {
            return;
        };
        let limits = self.limits.clone();
        let mut c = limits.lock();
        match self.parked.take() {
            // Its user count went to the login that took its place already.
            Some(p) if p.evicted.load(Ordering::Acquire) => {}
            Some(p) => {
                unlist(&mut c, &user, &p);
                release(&mut c.by_user, &*user);
            }
            None => release(&mut c.by_user, &*user),
        }
    }

    /// Parks this logged-in session (it waits in IDLE) so that a newer login of its user may
    /// take its place; `None` before login.
    pub fn park(&mut self) -> Option<Arc<Parked>> {
        self.park_ringing(Arc::default())
    }

    /// Parks this logged-in session with `bell` as what an eviction rings; the bell's owner
    /// then finds the session by `evicted`.
    pub fn park_ringing(&mut self, bell: Arc<Notify>) -> Option<Arc<Parked>> {
        let user = self.user.as_deref()?.to_owned();
        let parked = Arc::new(Parked {
            evict: bell,
            evicted: AtomicBool::new(false),
        });
        self.limits.lock().parked.entry(user).or_default().push(parked.clone());
        self.parked = Some(parked.clone());
        Some(parked)
    }

    /// Back from IDLE: no longer to be taken over. One already taken over stays marked so,
    /// for `Drop` must not give back the user count that went to the newer login.
    pub fn unpark(&mut self) {
        let (Some(parked), Some(user)) = (&self.parked, &self.user) else {
            return;
        };
        let mut c = self.limits.lock();
        if !parked.evicted.load(Ordering::Acquire) {
            unlist(&mut c, user, parked);
            drop(c);
            self.parked = None;
        }
    }

    /// Whether this session is parked (and not back from IDLE yet).
    pub fn is_parked(&self) -> bool {
        self.parked.is_some()
    }

    /// Whether a newer login took this session's place.
    pub fn evicted(&self) -> bool {
        self.parked.as_ref().is_some_and(|p| p.evicted.load(Ordering::Acquire))
    }
}

/// Gives the user count of `user`'s oldest parked session to a new login and wakes that
/// session to close; false when none is parked.
fn evict_oldest(c: &mut Counts, user: &str) -> bool {
    let Some(list) = c.parked.get_mut(user).filter(|l| !l.is_empty()) else {
        return false;
    };
    let oldest = list.remove(0);
    if list.is_empty() {
        c.parked.remove(user);
    }
    oldest.evicted.store(true, Ordering::Release);
    // A permit is kept if the session is not waiting yet, so it cannot miss this.
    oldest.evict.notify_one();
    release(&mut c.by_user, user);
    true
}

fn unlist(c: &mut Counts, user: &str, parked: &Arc<Parked>) {
    if let Some(list) = c.parked.get_mut(user) {
        list.retain(|p| !Arc::ptr_eq(p, parked));
        if list.is_empty() {
            c.parked.remove(user);
        }
    }
}

fn release<K: Eq + Hash + std::borrow::Borrow<Q>, Q: Eq + Hash + ?Sized>(map: &mut HashMap<K, u32>, key: &Q) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.limits.lock();
        c.total -= 1;
        release(&mut c.by_ip, &self.ip);
        drop(c);
        self.limits.descriptors.give();
        self.logout();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(server: u32, ip: u32, user: u32) -> Arc<ConnectionLimits> {
        let settings = LimitSettings {
            protocol: "imap",
            max_connections: server,
            max_connections_per_ip: ip,
            max_connections_per_user: user,
        };
        ConnectionLimits::new(settings, &Descriptors::new(u32::MAX))
    }

    #[test]
    fn every_protocol_shares_the_descriptor_budget() {
        let descriptors = Descriptors::new(2);
        let settings = LimitSettings {
            protocol: "imap",
            max_connections: 10,
            max_connections_per_ip: 10,
            max_connections_per_user: 10,
        };
        let (imap, lmtp) = (
            ConnectionLimits::new(settings, &descriptors),
            ConnectionLimits::new(settings, &descriptors),
        );
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = imap.connect(ip).unwrap();
        let _b = lmtp.connect(ip).unwrap();
        assert_eq!(lmtp.connect(ip).err(), Some(LimitHit::Server));
        assert_eq!(imap.connect(ip).err(), Some(LimitHit::Server));
        drop(a);
        assert!(lmtp.connect(ip).is_ok());
    }

    #[test]
    fn each_limit_applies_and_slots_give_back() {
        let l = limits(3, 2, 1);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mut s1 = l.connect(a).unwrap();
        let mut s2 = l.connect(a).unwrap();
        assert_eq!(l.connect(a).err(), Some(LimitHit::Address));
        let s3 = l.connect(b).unwrap();
        assert_eq!(l.connect(b).err(), Some(LimitHit::Server));
        s1.login("bob").unwrap();
        assert_eq!(s2.login("bob"), Err(LimitHit::User));
        drop(s1);
        assert_eq!(l.user_count("bob"), 0);
        s2.login("bob").unwrap();
        drop((s2, s3));
        assert!(l.connect(a).is_ok());
    }

    #[test]
    fn a_new_login_takes_the_place_of_the_oldest_parked_session() {
        let l = limits(10, 10, 2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let (mut s1, mut s2, mut s3) = (l.connect(ip).unwrap(), l.connect(ip).unwrap(), l.connect(ip).unwrap());
        s1.login("bob").unwrap();
        s2.login("bob").unwrap();
        assert_eq!(s3.login("bob"), Err(LimitHit::User), "nobody parked");
        s1.park().unwrap();
        s2.park().unwrap();
        s3.login("bob").unwrap();
        assert!(s1.evicted() && !s2.evicted(), "the oldest goes");
        assert_eq!(l.user_count("bob"), 2);
        s1.unpark();
        drop(s1);
        assert_eq!(l.user_count("bob"), 2, "its count went to s3");
        s2.unpark();
        let mut s4 = l.connect(ip).unwrap();
        assert_eq!(s4.login("bob"), Err(LimitHit::User), "s2 is busy again");
        drop((s2, s3));
        assert_eq!(l.user_count("bob"), 0);
        assert!(l.lock().parked.is_empty());
    }

    #[test]
    fn logging_out_gives_the_user_count_back_and_keeps_the_connection() {
        let l = limits(10, 10, 1);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut s = l.connect(ip).unwrap();
        s.login("bob").unwrap();
        s.park().unwrap();
        s.logout();
        assert_eq!(l.user_count("bob"), 0);
        assert!(l.lock().parked.is_empty());
        l.connect(ip).unwrap().login("bob").unwrap();
        s.login("alice").unwrap();
        drop(s);
        assert_eq!((l.user_count("alice"), l.lock().total), (0, 0));
    }
}
