//! Small blocking protocol clients (POP3, LMTP) over plaintext or real TLS, shared by
//! ringmail's integration tests and the load harness. They speak to any server, so the
//! harness can measure Dovecot the same way.

pub mod client;
