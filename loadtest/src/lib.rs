//! Small blocking protocol clients (POP3, LMTP) over plaintext or real TLS, shared by
//! ringmail's integration tests and the load harness, plus the harness's server-free parts:
//! the message generator, the multi-line response scanner, the report formatting, the charts
//! and the side-by-side comparison, server memory, the IMAP response parser, the mailbox
//! model and the session view the `mixed` scenario checks a server against, and the whole of
//! `mixed`'s shared mode, which ringmail's tests run too. They speak to any server, so the
//! harness can measure Dovecot the same way.

pub mod chart;
pub mod client;
pub mod comparison;
pub mod crash;
pub mod memory;
pub mod message;
pub mod mixed;
pub mod model;
pub mod multiline;
pub mod relay;
pub mod report;
pub mod response;
pub mod threads;
pub mod view;
