//! argon2id password hashes (PHC strings) and the SCRAM keys derived beside them.
//!
//! Verification costs tens of milliseconds by design: call it on a blocking pool, never on an
//! event loop.

use std::cell::RefCell;

use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::scram::{ScramCredentials, ScramKeys};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must not be empty")]
    Empty,
    #[error("password must not contain control characters")]
    Control,
    #[error("password is longer than 1024 bytes")]
    TooLong,
    #[error("cannot hash password: {0}")]
    Hash(String),
}

/// A password as the server stores it: the argon2id hash for PLAIN/LOGIN/USER+PASS and the
/// SCRAM-SHA-256 keys, both from the same password.
pub struct Hashed {
    pub phc: String,
    pub scram: ScramCredentials,
}

pub fn hash(password: &str) -> Result<Hashed, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > 1024 {
        return Err(PasswordError::TooLong);
    }
    if password.chars().any(char::is_control) {
        return Err(PasswordError::Control);
    }
    let phc = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| PasswordError::Hash(e.to_string()))?
        .to_string();
    let scram = ScramCredentials::generate(password).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Hashed { phc, scram })
}

thread_local! {
    /// argon2's work area (19 MiB at the default cost), kept by each thread that verifies:
    /// the server's login threads, one per core. Allocated and faulted in afresh for every
    /// login, it cost page faults on each and left the allocator holding freed arenas.
    static WORK_AREA: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Whether `phc` is an argon2 PHC string `verify` can check a password against.
pub fn well_formed(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        hash.salt.is_some()
            && hash.hash.is_some()
            && Algorithm::try_from(hash.algorithm.as_str()).is_ok()
            && Params::try_from(&hash).is_ok()
    })
}

/// Constant-time check of `password` against a PHC string. A malformed hash verifies nothing.
/// The hash's own algorithm, version and costs apply, so hashes made with other parameters
/// (by another implementation, or before a change of defaults) still verify.
pub fn verify(password: &str, phc: &str) -> bool {
    #[cfg(test)]
    VERIFICATIONS.set(VERIFICATIONS.get() + 1);
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut computed = vec![0u8; expected.len()];
    let hashed = WORK_AREA.with_borrow_mut(|area| {
        area.resize(blocks, Block::default());
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, &mut area[..blocks])
    });
    // Output's equality is constant-time.
    hashed.is_ok() && Output::new(&computed).is_ok_and(|computed| computed == *expected)
}

#[cfg(test)]
thread_local! {
    /// Full verifications (`verify`) made by this thread: what the cache saves, in tests.
    static VERIFICATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// `verify`, unless the process's verified-credential cache (`super::cache`) already knows
/// `password` for `phc`; a success is remembered there. What logins call.
pub fn check(password: &str, phc: &str) -> bool {
    if known(password, phc) {
        return true;
    }
    let now = std::time::Instant::now();
    // The lock is not held while argon2 runs: the other login threads go on meanwhile.
    if !verify(password, phc) {
        return false;
    }
    if let Some(cache) = super::cache::global().as_mut() {
        cache.remember(password, phc, now);
    }
    true
}

/// Whether the verified-credential cache knows `password` for `phc`: `check`'s yes at the
/// cost of an HMAC, fit for an event loop. No says nothing: only `check` can tell.
pub fn known(password: &str, phc: &str) -> bool {
    let now = std::time::Instant::now();
    super::cache::global()
        .as_mut()
        .is_some_and(|c| c.knows(password, phc, now))
}

/// A random password of 20 characters from an alphabet without look-alikes.
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_password_is_checked_again_without_argon2_and_a_wrong_one_never() {
        let phc = hash("correct horse").unwrap().phc;
        let runs = || VERIFICATIONS.get();
        let before = runs();
        assert!(check("correct horse", &phc));
        assert_eq!(runs(), before + 1);
        assert!(check("correct horse", &phc));
        assert_eq!(runs(), before + 1, "remembered");
        assert!(!check("correct horsE", &phc));
        assert!(!check("correct horsE", &phc));
        assert_eq!(runs(), before + 3, "a wrong password costs argon2 every time");
        // A new hash of the same password (it was set again): verified afresh.
        let again = hash("correct horse").unwrap().phc;
        assert!(check("correct horse", &again));
        assert_eq!(runs(), before + 4);
    }

    #[test]
    fn hash_then_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.phc.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h.phc));
        assert!(!verify("correct horsE", &h.phc));
        assert!(!verify("correct horse", "not a hash"));
        assert!(!verify("correct horse", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ"));
    }

    #[test]
    fn hashes_of_other_implementations_and_costs_verify() {
        // argon2-cffi (the reference C implementation), ringmail's parameters.
        let cffi = "$argon2id$v=19$m=19456,t=2,p=1$m+kBU565jJ/ZOFbnH+/NIQ$hP8W/TMqE26vAMsx1jrL+J+xGWtmFFEYikHt59m8Uok";
        assert!(verify("pw", cffi));
        assert!(!verify("pW", cffi));
        // Cheaper and dearer costs than the default, on the same thread's work area.
        for params in [
            Params::new(8, 1, 1, None).unwrap(),
            Params::new(32768, 3, 1, None).unwrap(),
        ] {
            let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"s3cret")
                .unwrap()
                .to_string();
            assert!(verify("s3cret", &phc), "{phc}");
            assert!(!verify("s3creT", &phc), "{phc}");
        }
        assert!(verify("pw", cffi), "after a bigger work area");
    }

    #[test]
    fn bad_passwords_are_refused() {
        assert!(matches!(hash(""), Err(PasswordError::Empty)));
        assert!(matches!(hash("a\nb"), Err(PasswordError::Control)));
    }

    #[test]
    fn generated_passwords_differ() {
        assert_ne!(generate(), generate());
        assert_eq!(generate().len(), 20);
    }
}
