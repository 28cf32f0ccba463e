//! ringmail: a mail access server — IMAP4, POP3, SMTP submission with an outbound queue, and
//! LMTP — built as per-core io_uring event loops over an LMDB store.
//!
//! The protocol modules (`imap`, `pop3`, `smtp`) are sans-I/O: bytes and events in, bytes and
//! actions out. Only `runtime` names tokio-uring and only `store` names heed; the outbound
//! queue's relay (`queue`) runs on a thread of its own with blocking std::net I/O.

pub use ringmail_store::{mime, spool, store};

pub mod admin;
pub mod auth;
pub mod autoconfig;
pub mod config;
pub mod directory;
pub mod engine;
pub mod goodbye;
pub mod http;
pub mod imap;
pub mod mailstream;
pub mod metrics;
pub mod net;
pub mod pop3;
pub mod protolog;
pub mod proxy;
pub mod queue;
pub mod runtime;
pub mod serve;
pub mod sessions;
pub mod smtp;
pub mod tls;
