//! Failed-login penalties: each failure for one (source address, user name) pair doubles the
//! delay before its reply, up to a ceiling; a successful login clears the pair.
//!
//! Keyed by both so that one user's typos behind a shared NAT do not slow the others. Shared by
//! every core (a client may reconnect to any core); the lock is held for a map lookup only.
//!
//! The delay holds across connections: the attempts of one pair take turns (a `Turn`), and a
//! failed one keeps its turn until its delay has passed, so twenty connections guess no faster
//! than one (as Dovecot's anvil serialises them). Apart from that, the checks of one address
//! in flight at once are capped, so spraying many user names cannot take the login pool.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedMutexGuard, Semaphore};

/// A pair with no failure for this long starts over.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Past this many tracked pairs, stale ones are swept on insert.
const SWEEP_AT: usize = 10_000;

type Pair = (IpAddr, String);

pub struct Penalties {
    base: Duration,
    max: Duration,
    checks_per_address: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: HashMap<Pair, (u32, Instant)>,
    /// The pairs with an attempt under way (or waiting), and their turn.
    turns: HashMap<Pair, Arc<tokio::sync::Mutex<()>>>,
    /// The addresses with checks in flight (or waiting), and their permits.
    checks: HashMap<IpAddr, Arc<Semaphore>>,
}

/// A login attempt's turn for its (address, user) pair; the next attempt of the pair waits
/// until this one is dropped.
pub struct Turn<'a> {
    penalties: &'a Penalties,
    pair: Pair,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Penalties {
    pub fn new(base: Duration, max: Duration, checks_per_address: usize) -> Penalties {
        Penalties {
            base,
            max,
            checks_per_address: checks_per_address.max(1),
            state: Mutex::new(State::default()),
        }
    }

    pub fn from_config(limits: &crate::config::Limits) -> Penalties {
        Penalties::new(
            Duration::from_secs(limits.login_failure_delay),
            Duration::from_secs(limits.login_failure_delay_max),
            limits.max_logins_in_flight_per_ip as usize,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this pair's turn: until every earlier attempt of `user` from `ip` has been
    /// answered, its penalty included.
    pub async fn turn(&self, ip: IpAddr, user: &str) -> Turn<'_> {
        let pair = (ip, user.to_ascii_lowercase());
        let mutex = self.lock().turns.entry(pair.clone()).or_default().clone();
        let guard = mutex.lock_owned().await;
        Turn {
            penalties: self,
            pair,
            guard: Some(guard),
        }
    }

    /// Runs `check` once fewer than the cap of `ip`'s checks are in flight.
    pub async fn check<T>(&self, ip: IpAddr, check: impl std::future::Future<Output = T>) -> T {
        let permits = self
            .lock()
            .checks
            .entry(ip)
            .or_insert_with(|| Arc::new(Semaphore::new(self.checks_per_address)))
            .clone();
        // Never closed; were it, checking unthrottled is the safe side for users.
        let permit = permits.clone().acquire_owned().await.ok();
        let result = check.await;
        drop(permit);
        let mut state = self.lock();
        // The map's reference and ours: nobody else holds or waits for a permit.
        if Arc::strong_count(&permits) == 2 {
            state.checks.remove(&ip);
        }
        result
    }

    fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.base.saturating_mul(factor).min(self.max)
    }
}

impl Turn<'_> {
    /// Records a failure and returns how long to wait, keeping the turn, before answering it.
    pub fn fail(&self, now: Instant) -> Duration {
        let mut state = self.penalties.lock();
        if state.failures.len() >= SWEEP_AT {
            state
                .failures
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < FORGET_AFTER);
        }
        let entry = state.failures.entry(self.pair.clone()).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= FORGET_AFTER {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let failures = entry.0;
        drop(state);
        self.penalties.delay(failures)
    }

    /// A successful login clears `name`'s failures from this address (the account's name,
    /// which may be spelled otherwise than the claim).
    pub fn succeed(&self, name: &str) {
        let mut state = self.penalties.lock();
        state.failures.remove(&self.pair);
        state.failures.remove(&(self.pair.0, name.to_ascii_lowercase()));
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut state = self.penalties.lock();
        // Only the map holds it now: no attempt of this pair holds or awaits the turn (they
        // clone it under this same lock).
        if let Entry::Occupied(e) = state.turns.entry(self.pair.clone()) {
            if Arc::strong_count(e.get()) == 1 {
                e.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    impl Penalties {
        /// One attempt's failure, its turn taken and given back at once.
        fn fail(&self, t: Instant, ip: IpAddr, user: &str) -> Duration {
            block_on(self.turn(ip, user)).fail(t)
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn delay_doubles_to_the_ceiling_and_resets() {
        let p = Penalties::new(secs(2), secs(15), 4);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        let got: Vec<_> = (0..5).map(|_| p.fail(t, ip, "bob")).collect();
        assert_eq!(got, [secs(2), secs(4), secs(8), secs(15), secs(15)]);
        block_on(p.turn(ip, "BOB")).succeed("bob");
        assert_eq!(p.fail(t, ip, "bob"), secs(2));
        assert!(p.lock().turns.is_empty(), "turns given back leave nothing behind");
    }

    #[test]
    fn pairs_are_independent() {
        let p = Penalties::new(secs(2), secs(15), 4);
        let nat: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        p.fail(t, nat, "bob");
        p.fail(t, nat, "bob");
        assert_eq!(p.fail(t, nat, "carol"), secs(2));
        assert_eq!(p.fail(t, "192.0.2.2".parse().unwrap(), "bob"), secs(2));
    }

    #[test]
    fn old_failures_are_forgotten() {
        let p = Penalties::new(secs(2), secs(15), 4);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        p.fail(t, ip, "bob");
        p.fail(t, ip, "bob");
        assert_eq!(p.fail(t + FORGET_AFTER, ip, "bob"), secs(2));
    }

    #[test]
    fn attempts_of_one_pair_take_turns_and_others_do_not_wait() {
        let p = Penalties::new(secs(2), secs(15), 4);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        block_on(async {
            let first = p.turn(ip, "bob").await;
            let second = tokio::time::timeout(Duration::from_millis(50), p.turn(ip, "Bob")).await;
            assert!(second.is_err(), "the second attempt waits for the first");
            let other = tokio::time::timeout(Duration::from_millis(50), p.turn(ip, "carol")).await;
            assert!(other.is_ok(), "another user does not wait");
            drop(first);
            assert!(tokio::time::timeout(Duration::from_millis(50), p.turn(ip, "bob"))
                .await
                .is_ok());
        });
        assert!(p.lock().turns.is_empty());
    }

    #[test]
    fn checks_of_one_address_in_flight_are_capped() {
        let p = Penalties::new(secs(2), secs(15), 2);
        let (ip, other): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let most = std::cell::Cell::new(0);
        let now = std::cell::Cell::new(0);
        let check = |_| async {
            now.set(now.get() + 1);
            most.set(most.get().max(now.get()));
            tokio::time::sleep(Duration::from_millis(10)).await;
            now.set(now.get() - 1);
        };
        block_on(async {
            let ours = four_checks(&p, ip, &check);
            let theirs = p.check(other, check(()));
            tokio::join!(ours, theirs);
        });
        assert_eq!(most.get(), 3, "two of ours and the other address's one");
        assert!(p.lock().checks.is_empty());
    }

    async fn four_checks<'a, F: std::future::Future<Output = ()>>(
        p: &'a Penalties,
        ip: IpAddr,
        check: &'a impl Fn(()) -> F,
    ) {
        tokio::join!(
            p.check(ip, check(())),
            p.check(ip, check(())),
            p.check(ip, check(())),
            p.check(ip, check(()))
        );
    }
}
