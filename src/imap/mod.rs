//! IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) as a sans-I/O core: command reading and
//! parsing, the session state machine, FETCH rendering and SEARCH evaluation. Never names a
//! socket, a clock or the store's database.

pub mod mutf7;
pub mod types;
