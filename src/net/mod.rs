//! Connections: plaintext or TLS over the io layer, STARTTLS/STLS upgrade, the
//! input buffer every driver reads into, and gathered output for bulk replies.

pub mod conn;
pub mod deflate;
pub mod fuzzing;
pub mod gather;
pub mod input;
mod record;
mod schedule;
pub mod splice;
pub mod tls;

pub use conn::Conn;
pub use gather::Gather;
pub use input::Input;
