//! argon2id password hashes (PHC strings) and the SCRAM keys derived beside them.
//!
//! Verification costs tens of milliseconds by design: call it on a blocking pool, never on an
//! event loop.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

use super::scram::ScramCredentials;

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

/// Constant-time check of `password` against a PHC string. A malformed hash verifies nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
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
    fn hash_then_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.phc.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h.phc));
        assert!(!verify("correct horsE", &h.phc));
        assert!(!verify("correct horse", "not a hash"));
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
