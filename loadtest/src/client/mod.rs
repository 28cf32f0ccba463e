//! Blocking clients: a line transport with STARTTLS, and IMAP, POP3, LMTP, SMTP submission and SCRAM on top of it.

pub mod imap;
pub mod lmtp;
pub mod pop3;
pub mod scram;
pub mod smtp;
pub mod transport;

pub use transport::{tls_config, Transport};
