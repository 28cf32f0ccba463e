//! ringmail's storage, in a crate of its own so that the compiler keeps the layers apart: it
//! names no protocol, no session, no socket and no server module, and what the protocols
//! need of it (users, mailboxes, messages, the change feed, queued mail) it says in its own
//! types.
//!
//! - `store`: the LMDB message store (heed): schema, the writer thread, read snapshots, the
//!   typed change feed, the modseq index and the expunge log, the outbound queue, fsck;
//! - `mime`: MIME analysis, once, at ingest (the stored `Structure`);
//! - `spool`: where a large message waits while it arrives.

pub mod mime;
pub mod spool;
pub mod store;
