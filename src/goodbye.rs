//! Why the server ends a session unasked. Each protocol core says it in its own words
//! (`imap::fault::goodbye`, `pop3::fault::goodbye`, `smtp::fault::goodbye`); the drivers and
//! the front ends only choose the reason, so no protocol text lives in the io layer.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goodbye<'a> {
    /// A connection limit was hit before the greeting; the text says which.
    Refused(&'a str),
    ShuttingDown,
    /// The client said nothing for longer than the protocol's timeout.
    IdleTimeout,
    /// A newer session of the same user took this one's place (a per-user limit).
    Replaced,
}
