//! The SMTP engine, sans-I/O: command and parameter parsing, DATA and BDAT reading, the session
//! state machine shared by LMTP and submission, the header edits of submission, delivery
//! status notifications, and the client side the outbound queue speaks to its smarthost.
//! Nothing here opens a socket or reads a clock: times and peers are passed in.

#![forbid(unsafe_code)]

pub mod addr;
pub mod chunk;
pub mod client;
pub mod command;
pub mod data;
pub mod date;
pub mod dsn;
pub mod fault;
pub mod params;
pub mod rewrite;
pub mod session;

pub use session::{
    Action, DeliveryStatus, Envelope, Flavor, LoginFailure, Lookup, Recipient, RemoteRecipient, Session, Settings,
    SubmissionPolicy, SubmitOutcome,
};
