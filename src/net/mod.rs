//! Connections: plaintext or TLS over the io layer, STARTTLS/STLS upgrade, and the resumable
//! line framer every protocol reads through.

pub mod conn;
pub mod deflate;
pub mod framer;

pub use conn::Conn;
pub use framer::{Frame, Framer};
