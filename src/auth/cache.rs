//! The verified-credential cache: a password that verified against a stored hash is
//! remembered for a while, so the next login with it costs an HMAC instead of an argon2
//! verification (tens of milliseconds and 19 MiB of a core). When a mobile network blips and
//! thousands of phones log in again at once, this is what lets them back in within seconds.
//!
//! - Keyed by the stored hash itself (the PHC string, whose salt is new with every password):
//!   a changed password has a new hash, so the old password stops working at once. Whether
//!   the account may log in (disabled, switches, administrator) is read afresh at every login
//!   by the callers; only the password check is skipped.
//! - Never stores the password: an entry is an HMAC of the hash and the password under a key
//!   made at random when the process starts and kept in memory only.
//! - Only successes are remembered: a wrong password always costs a full verification, so
//!   guessing is as slow as without the cache, and its timing tells nothing a success would not.
//! - Bounded: at most `max_entries`; when full, expired entries are dropped, and if none
//!   has expired the new one is not kept.
//!
//! The shape of Dovecot's auth cache (auth_cache_ttl), without its negative entries.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ring::hmac;
use ring::rand::SystemRandom;

/// Default lifetime of an entry: longer than the usual gap between a phone's reconnects, so a
/// reconnect storm finds its users here.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Default bound on entries (about 100 bytes each).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

pub struct CredentialCache {
    key: hmac::Key,
    ttl: Duration,
    max_entries: usize,
    entries: HashMap<[u8; 32], Entry>,
}

struct Entry {
    proof: [u8; 32],
    expires: Instant,
}

impl CredentialCache {
    /// An empty cache with a new random key; a `ttl` of zero remembers nothing.
    pub fn new(ttl: Duration, max_entries: usize) -> CredentialCache {
        // ring's generate fails only if the system's random source does; a key of zeros
        // would still never store a password, but it would make the entries guessable
        // offline from a memory dump, so then nothing is cached.
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new());
        let (key, max_entries) = match key {
            Ok(key) => (key, max_entries),
            Err(_) => (hmac::Key::new(hmac::HMAC_SHA256, &[]), 0),
        };
        CredentialCache {
            key,
            ttl,
            max_entries,
            entries: HashMap::new(),
        }
    }

    /// Whether `password` verified against `phc` within the last `ttl`.
    pub fn knows(&mut self, password: &str, phc: &str, now: Instant) -> bool {
        let slot = self.slot(phc);
        let Some(entry) = self.entries.get(&slot) else {
            return false;
        };
        if entry.expires <= now {
            self.entries.remove(&slot);
            return false;
        }
        // Constant-time comparison of the two tags.
        hmac::verify(&self.key, &proof_input(phc, password), &entry.proof).is_ok()
    }

    /// Remembers that `password` verified against `phc`.
    pub fn remember(&mut self, password: &str, phc: &str, now: Instant) {
        if self.ttl.is_zero() || self.max_entries == 0 {
            return;
        }
        if self.entries.len() >= self.max_entries {
            self.entries.retain(|_, e| e.expires > now);
            if self.entries.len() >= self.max_entries {
                return;
            }
        }
        let proof = bytes(hmac::sign(&self.key, &proof_input(phc, password)));
        // The config bounds the TTL; an Instant that would overflow is simply not kept.
        let Some(expires) = now.checked_add(self.ttl) else {
            return;
        };
        let entry = Entry { proof, expires };
        self.entries.insert(self.slot(phc), entry);
    }

    /// Where `phc`'s entry lives: its HMAC, so the map's keys are of one small size.
    fn slot(&self, phc: &str) -> [u8; 32] {
        bytes(hmac::sign(&self.key, phc.as_bytes()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// An HMAC-SHA256 tag's 32 bytes.
fn bytes(tag: hmac::Tag) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The hash and the password, length-prefixed so no two pairs give the same bytes.
fn proof_input(phc: &str, password: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(8 + phc.len() + password.len());
    input.extend_from_slice(&(phc.len() as u64).to_be_bytes());
    input.extend_from_slice(phc.as_bytes());
    input.extend_from_slice(password.as_bytes());
    input
}

/// The process's cache, shared by its login threads.
static CACHE: Mutex<Option<CredentialCache>> = Mutex::new(None);

/// Sets the process's cache up (at start, from `[limits]`). Other settings than it has
/// start it afresh; the same ones keep what it holds.
pub fn configure(ttl: Duration, max_entries: usize) {
    let mut cache = global();
    if cache
        .as_ref()
        .is_some_and(|c| c.ttl == ttl && c.max_entries == max_entries)
    {
        return;
    }
    *cache = Some(CredentialCache::new(ttl, max_entries));
}

/// The process's cache, made with the defaults if `configure` was not called.
pub(crate) fn global() -> MutexGuard<'static, Option<CredentialCache>> {
    // A login thread that panicked while holding the lock left the map whole (every
    // operation on it completes before the lock is let go), so poisoning is ignored.
    let mut cache = CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if cache.is_none() {
        *cache = Some(CredentialCache::new(DEFAULT_TTL, DEFAULT_MAX_ENTRIES));
    }
    cache
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    #[test]
    fn remembers_a_verified_password_for_its_hash_until_it_expires() {
        let mut cache = CredentialCache::new(Duration::from_secs(60), 10);
        let now = Instant::now();
        assert!(!cache.knows("secret", PHC, now));
        cache.remember("secret", PHC, now);
        assert!(cache.knows("secret", PHC, now + Duration::from_secs(59)));
        // Another password for the same hash, or the same password for another hash (the
        // password was changed: a new salt, a new hash), is not known.
        assert!(!cache.knows("Secret", PHC, now));
        assert!(!cache.knows("secret", &PHC.replace("c2Fsd", "c2FsX"), now));
        assert!(!cache.knows("secret", PHC, now + Duration::from_secs(60)));
        assert!(cache.is_empty(), "an expired entry is dropped when found");
    }

    #[test]
    fn holds_no_password_and_no_more_than_its_bound() {
        let mut cache = CredentialCache::new(Duration::from_secs(60), 2);
        let now = Instant::now();
        for (i, phc) in ["a", "b", "c"].iter().enumerate() {
            cache.remember("hunter2", phc, now + Duration::from_secs(i as u64));
        }
        assert_eq!(cache.len(), 2);
        assert!(!cache.knows("hunter2", "c", now), "full: the newest was not kept");
        // Once the first have expired, room is made.
        cache.remember("hunter2", "c", now + Duration::from_secs(61));
        assert!(cache.knows("hunter2", "c", now + Duration::from_secs(61)));
        assert_eq!(cache.len(), 1);
        // Entries are tags: neither the hash nor the password appears in them.
        for (slot, entry) in &cache.entries {
            for tag in [slot, &entry.proof] {
                assert!(!tag.windows(7).any(|w| w == b"hunter2"));
            }
        }
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let mut cache = CredentialCache::new(Duration::ZERO, 10);
        cache.remember("secret", PHC, Instant::now());
        assert!(cache.is_empty());
    }
}
