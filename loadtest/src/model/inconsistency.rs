//! What the model reports when the server's responses contradict it: one variant per rule
//! broken, each naming what was expected and what was seen, and a short kind to count by.

use std::fmt;

use super::{Flags, UidMisfit};

/// A difference between what the server said and what the model expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inconsistency {
    /// EXISTS outside `min..=max` (announced messages, plus appended ones not yet announced).
    Exists {
        min: usize,
        max: usize,
        seen: u32,
    },
    UidValidity {
        expected: u32,
        seen: u32,
    },
    /// UIDNEXT below a UID already used or a UIDNEXT already reported.
    UidNext {
        at_least: u32,
        seen: u32,
    },
    /// APPENDUID gave a UID that is not above every UID used before.
    UidNotNew {
        uid: u32,
        at_least: u32,
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
    Flags {
        seq: u32,
        uid: Option<u32>,
        expected: Flags,
        seen: Flags,
    },
    MessageId {
        uid: Option<u32>,
        expected: String,
        seen: Option<String>,
    },
    /// A FETCH that should have returned this UID did not.
    Missing {
        uid: u32,
    },
    /// A FETCH returned a UID it was not asked for.
    Unrequested {
        uid: u32,
    },
    FetchUnknownSeq {
        seq: u32,
        exists: usize,
    },
    ExpungeUnknownSeq {
        seq: u32,
        exists: usize,
    },
    /// An EXPUNGE of a message that was not to be expunged (or outside any expunge).
    ExpungeUnexpected {
        seq: u32,
        uid: Option<u32>,
    },
    /// Messages an expunge should have removed, still there after it completed.
    NotExpunged {
        uids: Vec<u32>,
    },
    Search {
        criterion: String,
        missing: Vec<u32>,
        unexpected: Vec<u32>,
    },
    /// The FETCH after SELECT gave no UID and FLAGS for this message.
    SyncIncomplete {
        seq: u32,
    },
}

impl Inconsistency {
    /// A short name to count inconsistencies by.
    pub fn kind(&self) -> &'static str {
        match self {
            Inconsistency::Exists { .. } => "wrong EXISTS",
            Inconsistency::UidValidity { .. } => "UIDVALIDITY changed",
            Inconsistency::UidNext { .. } => "UIDNEXT went backwards",
            Inconsistency::UidNotNew { .. } => "appended UID not new",
            Inconsistency::UidAtSeq { .. } => "sequence number maps to another UID",
            Inconsistency::UidOrder { .. } => "UIDs out of order",
            Inconsistency::Flags { .. } => "flags differ",
            Inconsistency::MessageId { .. } => "Message-ID changed",
            Inconsistency::Missing { .. } => "UID disappeared",
            Inconsistency::Unrequested { .. } => "unrequested UID",
            Inconsistency::FetchUnknownSeq { .. } => "FETCH of an unknown sequence number",
            Inconsistency::ExpungeUnknownSeq { .. } => "EXPUNGE of an unknown sequence number",
            Inconsistency::ExpungeUnexpected { .. } => "unexpected EXPUNGE",
            Inconsistency::NotExpunged { .. } => "message survived EXPUNGE",
            Inconsistency::Search { .. } => "SEARCH result differs",
            Inconsistency::SyncIncomplete { .. } => "FETCH 1:* incomplete",
        }
    }
}

/// `UID 7` or, for a UID not learnt yet, `sequence number 3`.
fn message_name(seq: u32, uid: Option<u32>) -> String {
    match uid {
        Some(uid) => format!("UID {uid} (sequence number {seq})"),
        None => format!("sequence number {seq}"),
    }
}

fn uid_list(uids: &[u32]) -> String {
    let shown: Vec<String> = uids.iter().take(20).map(u32::to_string).collect();
    let more = if uids.len() > 20 { " ..." } else { "" };
    format!("[{}{more}]", shown.join(" "))
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.kind())?;
        match self {
            Inconsistency::Exists { min, max, seen } if min == max => write!(f, "EXISTS {seen}, expected {min}"),
            Inconsistency::Exists { min, max, seen } => write!(f, "EXISTS {seen}, expected {min} to {max}"),
            Inconsistency::UidValidity { expected, seen } => write!(f, "UIDVALIDITY {seen}, was {expected}"),
            Inconsistency::UidNext { at_least, seen } => write!(f, "UIDNEXT {seen}, expected at least {at_least}"),
            Inconsistency::UidNotNew { uid, at_least } => {
                write!(f, "APPENDUID gave UID {uid}, expected at least {at_least}")
            }
            Inconsistency::UidAtSeq { seq, expected, seen } => {
                write!(
                    f,
                    "sequence number {seq} came back as UID {seen}, expected UID {expected}"
                )
            }
            Inconsistency::UidOrder { seq, uid, below, above } => {
                write!(f, "UID {uid} at sequence number {seq} is not above UID {below}")?;
                match above {
                    Some(above) => write!(f, " and below UID {above}"),
                    None => Ok(()),
                }
            }
            Inconsistency::Flags {
                seq,
                uid,
                expected,
                seen,
            } => write!(f, "{} has flags {seen}, expected {expected}", message_name(*seq, *uid)),
            Inconsistency::MessageId { uid, expected, seen } => write!(
                f,
                "UID {} has Message-ID {}, expected {expected}",
                uid.map_or("?".into(), |u| u.to_string()),
                seen.as_deref().unwrap_or("NIL")
            ),
            Inconsistency::Missing { uid } => write!(f, "UID {uid} was not returned by a FETCH that covers it"),
            Inconsistency::Unrequested { uid } => write!(f, "FETCH returned UID {uid}, which it was not asked for"),
            Inconsistency::FetchUnknownSeq { seq, exists } => {
                write!(f, "FETCH response for sequence number {seq} with {exists} messages")
            }
            Inconsistency::ExpungeUnknownSeq { seq, exists } => {
                write!(f, "EXPUNGE {seq} with {exists} messages")
            }
            Inconsistency::ExpungeUnexpected { seq, uid } => {
                write!(
                    f,
                    "EXPUNGE of {}, which was not to be expunged",
                    message_name(*seq, *uid)
                )
            }
            Inconsistency::NotExpunged { uids } => {
                write!(f, "UIDs {} still there after the expunge", uid_list(uids))
            }
            Inconsistency::Search {
                criterion,
                missing,
                unexpected,
            } => write!(
                f,
                "UID SEARCH {criterion}: missing {}, unexpected {}",
                uid_list(missing),
                uid_list(unexpected)
            ),
            Inconsistency::SyncIncomplete { seq } => {
                write!(f, "no UID and FLAGS for sequence number {seq}")
            }
        }
    }
}

impl std::error::Error for Inconsistency {}

impl From<UidMisfit> for Inconsistency {
    fn from(misfit: UidMisfit) -> Inconsistency {
        match misfit {
            UidMisfit::AtSeq { seq, expected, seen } => Inconsistency::UidAtSeq { seq, expected, seen },
            UidMisfit::Order { seq, uid, below, above } => Inconsistency::UidOrder { seq, uid, below, above },
        }
    }
}
