//! Why the server ends a session unasked. Each protocol core says it in its own words
//! (`imap::fault::goodbye`, `pop3::fault::goodbye`, `smtp::fault::goodbye`, and through
//! `Wire` for the drivers and front ends that are generic over the protocol); the drivers and
//! the front ends only choose the reason, so no protocol text lives in the io layer.

/// A protocol as the drivers and the front ends name it: its name in the protocol log, and
/// its words for ending a session unasked. Each client protocol's core implements it
/// (`imap::fault::Imap`, `pop3::fault::Pop3`, `smtp::fault::Submission`).
pub trait Wire {
    const NAME: &'static str;
    /// The line that ends a session for `why`.
    fn goodbye(why: Goodbye<'_>) -> String;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goodbye<'a> {
    /// A connection limit was hit before the greeting; the text says which.
    Refused(&'a str),
    ShuttingDown,
    /// The client said nothing for longer than the protocol's timeout.
    IdleTimeout,
    /// A newer session of the same user took this one's place (a per-user limit).
    Replaced,
    /// The operator ended it (`ringmail kick`).
    Kicked,
}
