//! The SMTP engine, sans-I/O: command parsing, DATA reading with dot-unstuffing, and the
//! session state machine. LMTP (RFC 2033) uses it today; submission will share it.

pub mod command;
pub mod data;
pub mod session;

pub use session::{Action, DeliveryStatus, Envelope, Recipient, Session, Settings};
