//! Connections: plaintext or TLS over the io layer, STARTTLS/STLS upgrade, the
//! input buffer every driver reads into, gathered output for bulk replies, and a client's TLS
//! session passed from a front end to its back end; TLS records sealed from where their bytes
//! lie.

pub mod conn;
pub mod deflate;
pub mod fuzzing;
pub mod gather;
pub mod handoff;
pub mod input;
mod record;
mod schedule;
pub mod seal;
pub mod splice;
pub mod tls;

pub use conn::Conn;
pub use gather::Gather;
pub use input::Input;
