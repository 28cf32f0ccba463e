//! Small blocking protocol clients (POP3, LMTP) over plaintext or real TLS, shared by
//! ringmail's integration tests and the load harness, plus the harness's server-free parts:
//! the message generator, the multi-line response scanner, the report formatting and the charts. They
//! speak to any server, so the harness can measure Dovecot the same way.

pub mod chart;
pub mod client;
pub mod message;
pub mod multiline;
pub mod report;
