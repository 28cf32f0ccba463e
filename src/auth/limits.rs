//! Connection limits per server, per source address and per user, counting idle sessions too.
//!
//! One registry per protocol, shared by every core. A `Slot` holds a connection's place and
//! gives it back when dropped, so a session that dies any way at all frees its count.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitHit {
    #[error("too many connections to this server")]
    Server,
    #[error("too many connections from your address")]
    Address,
    #[error("too many connections for this user")]
    User,
}

#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
    pub max_connections_per_user: u32,
}

#[derive(Default)]
struct Counts {
    total: u32,
    by_ip: HashMap<IpAddr, u32>,
    by_user: HashMap<String, u32>,
}

pub struct ConnectionLimits {
    settings: LimitSettings,
    counts: Mutex<Counts>,
}

/// One connection's place in the counts.
pub struct Slot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
    user: Option<String>,
}

impl ConnectionLimits {
    pub fn new(settings: LimitSettings) -> Arc<ConnectionLimits> {
        Arc::new(ConnectionLimits {
            settings,
            counts: Mutex::new(Counts::default()),
        })
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
        c.total += 1;
        *c.by_ip.entry(ip).or_insert(0) += 1;
        Ok(Slot {
            limits: self.clone(),
            ip,
            user: None,
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
            release(&mut c.by_user, &previous);
        }
        let n = c.by_user.get(user).copied().unwrap_or(0);
        if n >= limits.settings.max_connections_per_user {
            return Err(LimitHit::User);
        }
        *c.by_user.entry(user.to_owned()).or_insert(0) += 1;
        self.user = Some(user.to_owned());
        Ok(())
    }
}

fn release<K: Eq + Hash>(map: &mut HashMap<K, u32>, key: &K) {
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
        if let Some(user) = &self.user {
            release(&mut c.by_user, user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(server: u32, ip: u32, user: u32) -> Arc<ConnectionLimits> {
        ConnectionLimits::new(LimitSettings {
            max_connections: server,
            max_connections_per_ip: ip,
            max_connections_per_user: user,
        })
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
}
