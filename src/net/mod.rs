//! Connections: plaintext or TLS over the io layer, STARTTLS/STLS upgrade, the resumable
//! line framer every protocol reads through, and gathered output for bulk replies.

pub mod conn;
pub mod deflate;
pub mod framer;
pub mod gather;
pub mod splice;

pub use conn::Conn;
pub use framer::{Frame, Framer};
pub use gather::Gather;
