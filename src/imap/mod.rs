//! IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) as a sans-I/O core: command reading and
//! parsing, the session state machine, FETCH rendering and SEARCH evaluation. Never names a
//! socket, a clock or the store's database.

#![forbid(unsafe_code)]

pub mod capability;
pub mod command;
mod context;
mod engine;
pub mod fault;
pub(crate) mod format;
pub mod limit;
pub mod mutf7;
pub mod parse;
pub(crate) mod progress;
pub mod reader;
mod scan;
pub mod search;
pub mod session;
pub mod shared;
pub mod sort;
pub mod switches;
mod sync;
#[cfg(test)]
pub(crate) mod testing;
pub mod thread;
pub mod types;
pub mod url;
pub mod urlauth;
pub mod view;

pub use session::{Action, Ctx, LoginFailure, Session, Settings};
