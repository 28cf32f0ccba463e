//! A circuit breaker per back end: after `TRIP_AFTER` failures in a row to reach one, the
//! front end stops trying it for `OPEN_FOR` and answers its users' logins with a temporary
//! failure at once, instead of making every client wait out a connect timeout and every
//! login hammer a machine that is down. After `OPEN_FOR` one login tries again; its success
//! closes the breaker, its failure opens it for another `OPEN_FOR`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures in a row that open the breaker.
pub const TRIP_AFTER: u32 = 3;
/// How long an open breaker refuses before it lets one attempt through.
pub const OPEN_FOR: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Breakers {
    states: Mutex<HashMap<SocketAddr, State>>,
}

#[derive(Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

impl Breakers {
    /// Whether `addr` may be tried now. An expired open breaker lets this one attempt through
    /// and refuses the others until it reports.
    pub fn allow(&self, addr: SocketAddr, now: Instant) -> bool {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let state = states.entry(addr).or_default();
        match state.open_until {
            Some(until) if now < until => false,
            Some(_) => {
                state.open_until = Some(now + OPEN_FOR);
                true
            }
            None => true,
        }
    }

    /// Whether logins to `addr` are refused now (the metrics' back-end health).
    pub fn is_open(&self, addr: SocketAddr, now: Instant) -> bool {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states
            .get(&addr)
            .and_then(|s| s.open_until)
            .is_some_and(|until| now < until)
    }

    pub fn succeeded(&self, addr: SocketAddr) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.remove(&addr);
    }

    /// Counts a failure to reach `addr`; whether that opened the breaker.
    pub fn failed(&self, addr: SocketAddr, now: Instant) -> bool {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let state = states.entry(addr).or_default();
        state.failures += 1;
        let opens = state.failures >= TRIP_AFTER;
        if opens {
            state.open_until = Some(now + OPEN_FOR);
        }
        opens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_in_a_row_and_lets_one_try_after_a_while() {
        let b = Breakers::default();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let t0 = Instant::now();
        assert!(b.allow(addr, t0));
        assert!(!b.failed(addr, t0));
        assert!(!b.failed(addr, t0));
        b.succeeded(addr);
        // A success starts the count again.
        assert!(!b.failed(addr, t0));
        assert!(!b.failed(addr, t0));
        assert!(b.failed(addr, t0));
        assert!(!b.allow(addr, t0 + OPEN_FOR / 2));
        // Half open: one attempt, the next waits for its outcome.
        let later = t0 + OPEN_FOR + Duration::from_millis(1);
        assert!(b.allow(addr, later));
        assert!(!b.allow(addr, later));
        assert!(b.failed(addr, later));
        assert!(!b.allow(addr, later + OPEN_FOR / 2));
        let again = later + OPEN_FOR + Duration::from_millis(1);
        assert!(b.allow(addr, again));
        b.succeeded(addr);
        assert!(b.allow(addr, again));
        // Other back ends are not affected.
        assert!(b.allow("127.0.0.1:2".parse().unwrap(), t0));
    }
}
