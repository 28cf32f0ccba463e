//! Authentication: password hashes, SASL mechanisms, and the login policy (who may log in over
//! which protocol, failed-login penalties, connection limits).
//!
//! Nothing here does I/O. Password verification (argon2, tens of milliseconds) is a plain
//! function that the caller must run off the event loops; `password::check` goes through the
//! process's verified-credential cache (`cache`) first.

#![forbid(unsafe_code)]

pub mod cache;
pub mod limits;
pub mod login;
pub mod oauth;
pub mod password;
pub mod penalty;
pub mod policy;
pub mod sasl;
pub mod scram;
