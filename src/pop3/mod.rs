//! POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595), AUTH (RFC 5034) and response codes
//! (RFC 3206), as a sans-I/O core: the command table and parser, the session state machine,
//! and the RETR/TOP encoder. Never names a socket, a clock or the store.

#![forbid(unsafe_code)]

pub mod command;
pub mod fault;
pub mod retr;
pub mod session;

pub use retr::RetrEncoder;
pub use session::{Action, LoginFailure, Maildrop, Message, Session, Settings};
