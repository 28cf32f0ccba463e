//! What a session view reports when the server breaks a rule that holds whatever other
//! sessions do: one variant per rule, each naming what was expected and what was seen, and a
//! short kind to count by.

use std::fmt;

use crate::model::{Flags, UidMisfit};

/// A rule of RFC 3501/9051 (or RFC 7162) the server's responses broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A FETCH showed a keyword the last `* FLAGS` did not list (RFC 3501 §7.2.6).
    KeywordNotAnnounced {
        uid: Option<u32>,
        keyword: String,
    },
    /// Two sessions were shown the same message as `\Recent` (RFC 3501 §2.3.2).
    RecentTwice {
        /// `user/name`.
        mailbox: String,
        uid: u32,
        session: u64,
        other: u64,
    },
    /// More messages shown `\Recent` than `* n RECENT` counts, or (at SELECT) RECENT above
    /// EXISTS.
    RecentCount {
        recent: u32,
        shown: usize,
        exists: usize,
    },
    /// EXISTS below the count the session knows: only EXPUNGE may lower it.
    ExistsShrank {
        known: usize,
        seen: u32,
    },
    ExpungeUnknownSeq {
        seq: u32,
        exists: usize,
    },
    /// EXPUNGE or VANISHED while answering FETCH, STORE or SEARCH by sequence number
    /// (RFC 9051 §7.5.1).
    ExpungeDuringSequenceCommand {
        response: String,
    },
    /// VANISHED named a UID that is not among the messages the session was told of
    /// (RFC 7162 §3.2.10).
    VanishedUnknown {
        uid: u32,
    },
    FetchUnknownSeq {
        seq: u32,
        exists: usize,
    },
    /// A sequence number answered with another message's UID.
    UidAtSeq {
        seq: u32,
        expected: u32,
        seen: u32,
    },
    /// A UID not between those of the messages around it.
    UidOrder {
        seq: u32,
        uid: u32,
        below: u32,
        above: Option<u32>,
    },
    /// A message's MODSEQ lower than one shown before (RFC 7162 §3.1.1).
    ModSeqBack {
        uid: u32,
        was: u64,
        seen: u64,
    },
    /// A message's flags changed, its MODSEQ did not (RFC 7162 §3.1.1).
    FlagsWithoutModSeq {
        uid: u32,
        modseq: u64,
        before: Flags,
        now: Flags,
    },
    HighestModSeqBack {
        was: u64,
        seen: u64,
    },
    /// UIDNEXT at or below a UID of the mailbox: one seen before, or one SELECT counted.
    UidNextNotAbove {
        mailbox: String,
        uid_next: u32,
        uid: u32,
    },
    UidNextBack {
        mailbox: String,
        was: u32,
        seen: u32,
    },
    /// A message announced after SELECT with a UID below SELECT's UIDNEXT.
    NewUidBelowUidNext {
        uid: u32,
        uid_next: u32,
    },
    UidValidity {
        mailbox: String,
        was: u32,
        seen: u32,
    },
}

impl Violation {
    /// Every kind, in the order the report lists them.
    pub const KINDS: [&'static str; 17] = [
        "keyword not announced in FLAGS",
        "\\Recent in two sessions",
        "more \\Recent than RECENT",
        "EXISTS shrank",
        "EXPUNGE of an unknown sequence number",
        "EXPUNGE during FETCH/STORE/SEARCH",
        "VANISHED of an unknown UID",
        "FETCH of an unknown sequence number",
        "sequence number maps to another UID",
        "UIDs out of order",
        "MODSEQ went backwards",
        "flags changed without a new MODSEQ",
        "HIGHESTMODSEQ went backwards",
        "UIDNEXT not above a UID",
        "UIDNEXT went backwards",
        "new message below UIDNEXT",
        "UIDVALIDITY changed",
    ];

    /// A short name to count violations by (one of `KINDS`).
    pub fn kind(&self) -> &'static str {
        let i = match self {
            Violation::KeywordNotAnnounced { .. } => 0,
            Violation::RecentTwice { .. } => 1,
            Violation::RecentCount { .. } => 2,
            Violation::ExistsShrank { .. } => 3,
            Violation::ExpungeUnknownSeq { .. } => 4,
            Violation::ExpungeDuringSequenceCommand { .. } => 5,
            Violation::VanishedUnknown { .. } => 6,
            Violation::FetchUnknownSeq { .. } => 7,
            Violation::UidAtSeq { .. } => 8,
            Violation::UidOrder { .. } => 9,
            Violation::ModSeqBack { .. } => 10,
            Violation::FlagsWithoutModSeq { .. } => 11,
            Violation::HighestModSeqBack { .. } => 12,
            Violation::UidNextNotAbove { .. } => 13,
            Violation::UidNextBack { .. } => 14,
            Violation::NewUidBelowUidNext { .. } => 15,
            Violation::UidValidity { .. } => 16,
        };
        Violation::KINDS[i]
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.kind())?;
        match self {
            Violation::KeywordNotAnnounced { uid, keyword } => {
                let uid = uid.map_or("a message".into(), |u| format!("UID {u}"));
                write!(f, "{uid} shown with {keyword}, which no FLAGS response listed")
            }
            Violation::RecentTwice {
                mailbox,
                uid,
                session,
                other,
            } => write!(
                f,
                "{mailbox} UID {uid} shown \\Recent to session {session} after session {other}"
            ),
            Violation::RecentCount { recent, shown, exists } => write!(
                f,
                "RECENT {recent} with {shown} messages shown \\Recent and EXISTS {exists}"
            ),
            Violation::ExistsShrank { known, seen } => {
                write!(f, "EXISTS {seen} with {known} messages and no expunge")
            }
            Violation::ExpungeUnknownSeq { seq, exists } => write!(f, "EXPUNGE {seq} with {exists} messages"),
            Violation::ExpungeDuringSequenceCommand { response } => {
                write!(f, "{response} while answering a command by sequence number")
            }
            Violation::VanishedUnknown { uid } => {
                write!(f, "VANISHED UID {uid}, which the session was not told of")
            }
            Violation::FetchUnknownSeq { seq, exists } => {
                write!(f, "FETCH response for sequence number {seq} with {exists} messages")
            }
            Violation::UidAtSeq { seq, expected, seen } => write!(
                f,
                "sequence number {seq} came back as UID {seen}, expected UID {expected}"
            ),
            Violation::UidOrder { seq, uid, below, above } => {
                write!(f, "UID {uid} at sequence number {seq} is not above UID {below}")?;
                match above {
                    Some(above) => write!(f, " and below UID {above}"),
                    None => Ok(()),
                }
            }
            Violation::ModSeqBack { uid, was, seen } => write!(f, "UID {uid} MODSEQ {seen} after {was}"),
            Violation::FlagsWithoutModSeq {
                uid,
                modseq,
                before,
                now,
            } => write!(f, "UID {uid} flags {before} then {now}, both at MODSEQ {modseq}"),
            Violation::HighestModSeqBack { was, seen } => write!(f, "HIGHESTMODSEQ {seen} after {was}"),
            Violation::UidNextNotAbove { mailbox, uid_next, uid } => {
                write!(f, "{mailbox} UIDNEXT {uid_next} with UID {uid} in the mailbox")
            }
            Violation::UidNextBack { mailbox, was, seen } => write!(f, "{mailbox} UIDNEXT {seen} after {was}"),
            Violation::NewUidBelowUidNext { uid, uid_next } => {
                write!(f, "UID {uid} announced after SELECT, whose UIDNEXT was {uid_next}")
            }
            Violation::UidValidity { mailbox, was, seen } => write!(f, "{mailbox} UIDVALIDITY {seen}, was {was}"),
        }
    }
}

impl std::error::Error for Violation {}

impl From<UidMisfit> for Violation {
    fn from(misfit: UidMisfit) -> Violation {
        match misfit {
            UidMisfit::AtSeq { seq, expected, seen } => Violation::UidAtSeq { seq, expected, seen },
            UidMisfit::Order { seq, uid, below, above } => Violation::UidOrder { seq, uid, below, above },
        }
    }
}
