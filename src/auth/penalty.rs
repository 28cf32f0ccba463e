//! Failed-login penalties: each failure for one (source address, user name) pair doubles the
//! delay before its reply, up to a ceiling; a successful login clears the pair.
//!
//! Keyed by both so that one user's typos behind a shared NAT do not slow the others. Shared by
//! every core (a client may reconnect to any core); the lock is held for a map lookup only.
//! Clock-free: callers pass `now`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A pair with no failure for this long starts over.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Past this many tracked pairs, stale ones are swept on insert.
const SWEEP_AT: usize = 10_000;

pub struct Penalties {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<(IpAddr, String), (u32, Instant)>>,
}

impl Penalties {
    pub fn new(base: Duration, max: Duration) -> Penalties {
        Penalties {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure and returns how long to wait before answering it.
    pub fn fail(&self, now: Instant, ip: IpAddr, user: &str) -> Duration {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SWEEP_AT {
            map.retain(|_, (_, at)| now.saturating_duration_since(*at) < FORGET_AFTER);
        }
        let key = (ip, user.to_ascii_lowercase());
        let entry = map.entry(key).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= FORGET_AFTER {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        self.delay(entry.0)
    }

    pub fn succeed(&self, ip: IpAddr, user: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&(ip, user.to_ascii_lowercase()));
    }

    fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.base.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn delay_doubles_to_the_ceiling_and_resets() {
        let p = Penalties::new(secs(2), secs(15));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        let got: Vec<_> = (0..5).map(|_| p.fail(t, ip, "bob")).collect();
        assert_eq!(got, [secs(2), secs(4), secs(8), secs(15), secs(15)]);
        p.succeed(ip, "bob");
        assert_eq!(p.fail(t, ip, "bob"), secs(2));
    }

    #[test]
    fn pairs_are_independent() {
        let p = Penalties::new(secs(2), secs(15));
        let nat: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        p.fail(t, nat, "bob");
        p.fail(t, nat, "bob");
        assert_eq!(p.fail(t, nat, "carol"), secs(2));
        assert_eq!(p.fail(t, "192.0.2.2".parse().unwrap(), "bob"), secs(2));
    }

    #[test]
    fn old_failures_are_forgotten() {
        let p = Penalties::new(secs(2), secs(15));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        p.fail(t, ip, "bob");
        p.fail(t, ip, "bob");
        assert_eq!(p.fail(t + FORGET_AFTER, ip, "bob"), secs(2));
    }
}
