//! A model of one mailbox as one IMAP session sees it, for the `mixed` scenario: the UIDs in
//! sequence-number order, each message's flags and Message-ID, UIDVALIDITY and UIDNEXT, and
//! the messages appended but not yet announced by EXISTS. The scenario tells the model what
//! it asked for (a STORE, an APPEND, an EXPUNGE) and hands it every parsed response; each
//! check returns the first `Inconsistency` between what the server said and what the model
//! expected.
//!
//! The model is exact only while nobody else changes the mailbox: the scenario gives each
//! client a user of its own. It is server-free and clock-free. The rules it holds a server
//! to: UIDs ascend with sequence numbers and are never reused, UIDNEXT never goes down and
//! UIDVALIDITY never changes (RFC 9051 §2.3.1.1); EXISTS never shrinks without EXPUNGE and a
//! message is announced before it is referred to (§7.4.1); EXPUNGE n renumbers the messages
//! after n at once (§7.5.1); STORE and APPEND flags stick (§6.4.6, §6.3.12). `\Recent` is
//! session state, so it is left out of every comparison.

use std::collections::BTreeSet;
use std::fmt;

use crate::response::Untagged;

mod inconsistency;
pub use inconsistency::Inconsistency;

/// A UID a FETCH gave that does not fit the messages around it. The mailbox model reports
/// it as an `Inconsistency`, a session view as a `view::Violation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UidMisfit {
    /// The message at the sequence number is known by another UID.
    AtSeq { seq: u32, expected: u32, seen: u32 },
    /// A new UID not between those of the nearest known messages around it.
    Order {
        seq: u32,
        uid: u32,
        below: u32,
        above: Option<u32>,
    },
}

/// A FETCH gave `uid` for the message at index `i` of `messages`, whose UIDs `uid_of` tells
/// where they are known. Whether the UID is new, to be learnt: a known UID must be the same,
/// and a new one must lie between the nearest known UIDs below and above it, since UIDs
/// ascend with sequence numbers (RFC 9051 §2.3.1.1).
pub(crate) fn neighbour_uids<T>(
    messages: &[T],
    uid_of: impl Fn(&T) -> Option<u32>,
    i: usize,
    uid: u32,
) -> Result<bool, UidMisfit> {
    let seq = i as u32 + 1;
    if let Some(expected) = uid_of(&messages[i]) {
        if expected != uid {
            return Err(UidMisfit::AtSeq {
                seq,
                expected,
                seen: uid,
            });
        }
        return Ok(false);
    }
    let below = messages[..i].iter().rev().find_map(&uid_of).unwrap_or(0);
    let above = messages[i + 1..].iter().find_map(&uid_of);
    if uid <= below || above.is_some_and(|a| uid >= a) {
        return Err(UidMisfit::Order { seq, uid, below, above });
    }
    Ok(true)
}

/// A message's flags, compared as IMAP compares them: case-insensitively, `\Recent` aside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags(BTreeSet<String>);

impl Flags {
    pub fn from_names<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Flags {
        let mut flags = Flags::default();
        for name in names {
            flags.insert(name.as_ref());
        }
        flags
    }

    pub fn insert(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        if name != "\\recent" {
            self.0.insert(name);
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.remove(&name.to_ascii_lowercase());
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(&name.to_ascii_lowercase())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The keywords (RFC 9051 §2.3.2: the flags without a leading backslash), lowercased.
    pub fn keywords(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str).filter(|name| !name.starts_with('\\'))
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(String::as_str).collect();
        write!(f, "({})", names.join(" "))
    }
}

/// What SELECT reported (RFC 9051 §6.3.2: EXISTS, UIDVALIDITY and UIDNEXT are required).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    pub exists: u32,
    pub uid_validity: u32,
    pub uid_next: u32,
}

impl Selected {
    /// From a SELECT's untagged responses; names the first required one that is missing.
    pub fn from_responses(untagged: &[Untagged]) -> Result<Selected, &'static str> {
        use crate::response::Code;
        let (mut exists, mut uid_validity, mut uid_next) = (None, None, None);
        for response in untagged {
            match response {
                Untagged::Exists(n) => exists = Some(*n),
                Untagged::Condition {
                    code: Some(Code::UidValidity(v)),
                    ..
                } => uid_validity = Some(*v),
                Untagged::Condition {
                    code: Some(Code::UidNext(n)),
                    ..
                } => uid_next = Some(*n),
                _ => {}
            }
        }
        Ok(Selected {
            exists: exists.ok_or("EXISTS")?,
            uid_validity: uid_validity.ok_or("UIDVALIDITY")?,
            uid_next: uid_next.ok_or("UIDNEXT")?,
        })
    }
}

/// `+FLAGS` or `-FLAGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    Add,
    Remove,
}

/// Which messages an expunge may remove: every `\Deleted` one (EXPUNGE), or only those of
/// a UID set (UID EXPUNGE, RFC 4315 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpungeScope {
    Deleted,
    Uids(BTreeSet<u32>),
}

/// A search the model can answer from flags alone (RFC 9051 §6.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Seen,
    Unseen,
    Flagged,
    Unflagged,
    Answered,
    Unanswered,
    Deleted,
    Undeleted,
    Keyword(String),
    Unkeyword(String),
}

impl SearchKey {
    /// The search criterion as sent.
    pub fn criterion(&self) -> String {
        match self {
            SearchKey::All => "ALL".into(),
            SearchKey::Seen => "SEEN".into(),
            SearchKey::Unseen => "UNSEEN".into(),
            SearchKey::Flagged => "FLAGGED".into(),
            SearchKey::Unflagged => "UNFLAGGED".into(),
            SearchKey::Answered => "ANSWERED".into(),
            SearchKey::Unanswered => "UNANSWERED".into(),
            SearchKey::Deleted => "DELETED".into(),
            SearchKey::Undeleted => "UNDELETED".into(),
            SearchKey::Keyword(k) => format!("KEYWORD {k}"),
            SearchKey::Unkeyword(k) => format!("UNKEYWORD {k}"),
        }
    }

    pub fn matches(&self, flags: &Flags) -> bool {
        match self {
            SearchKey::All => true,
            SearchKey::Seen => flags.contains("\\Seen"),
            SearchKey::Unseen => !flags.contains("\\Seen"),
            SearchKey::Flagged => flags.contains("\\Flagged"),
            SearchKey::Unflagged => !flags.contains("\\Flagged"),
            SearchKey::Answered => flags.contains("\\Answered"),
            SearchKey::Unanswered => !flags.contains("\\Answered"),
            SearchKey::Deleted => flags.contains("\\Deleted"),
            SearchKey::Undeleted => !flags.contains("\\Deleted"),
            SearchKey::Keyword(k) => flags.contains(k),
            SearchKey::Unkeyword(k) => !flags.contains(k),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    /// `None` between an APPEND without APPENDUID and the FETCH that tells it.
    uid: Option<u32>,
    flags: Flags,
    /// From the APPEND, or learnt from the first ENVELOPE fetched.
    message_id: Option<String>,
}

/// One mailbox as one session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxModel {
    uid_validity: u32,
    /// The least UID a new message may get: the last UIDNEXT reported, raised past every UID
    /// seen since.
    uid_next: u32,
    /// Announced messages, by sequence number - 1.
    messages: Vec<Message>,
    /// Appended, not yet announced by EXISTS, in the order appended.
    pending: Vec<Message>,
    /// Set between `begin_expunge` and `end_expunge`.
    expunge: Option<ExpungeScope>,
}

pub type Checked = Result<(), Inconsistency>;

impl MailboxModel {
    /// The model after SELECT and `FETCH 1:* (UID FLAGS)`: every message must be in the
    /// fetch, UIDs ascending and below UIDNEXT.
    pub fn from_sync(selected: &Selected, fetched: &[Untagged]) -> Result<MailboxModel, Inconsistency> {
        let exists = selected.exists as usize;
        let mut slots: Vec<Option<Message>> = vec![None; exists];
        for response in fetched {
            let Untagged::Fetch(f) = response else { continue };
            let slot = (f.seq as usize)
                .checked_sub(1)
                .and_then(|i| slots.get_mut(i))
                .ok_or(Inconsistency::FetchUnknownSeq { seq: f.seq, exists })?;
            if let (Some(uid), Some(flags)) = (f.uid, &f.flags) {
                *slot = Some(Message {
                    uid: Some(uid),
                    flags: flags.clone(),
                    message_id: None,
                });
            }
        }
        let mut messages = Vec::with_capacity(exists);
        let mut below = 0;
        for (i, slot) in slots.into_iter().enumerate() {
            let seq = i as u32 + 1;
            let message = slot.ok_or(Inconsistency::SyncIncomplete { seq })?;
            let uid = message.uid.unwrap_or(0);
            if uid <= below {
                return Err(Inconsistency::UidOrder {
                    seq,
                    uid,
                    below,
                    above: None,
                });
            }
            below = uid;
            messages.push(message);
        }
        if selected.uid_next <= below {
            return Err(Inconsistency::UidNext {
                at_least: below + 1,
                seen: selected.uid_next,
            });
        }
        Ok(MailboxModel {
            uid_validity: selected.uid_validity,
            uid_next: selected.uid_next,
            messages,
            pending: Vec::new(),
            expunge: None,
        })
    }

    /// Announced messages: the highest valid sequence number.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Announced and pending messages: what the mailbox holds.
    pub fn total(&self) -> usize {
        self.messages.len() + self.pending.len()
    }

    pub fn uid_validity(&self) -> u32 {
        self.uid_validity
    }

    pub fn uid_next(&self) -> u32 {
        self.uid_next
    }

    /// The UID at sequence number `seq`, if known.
    pub fn uid_at(&self, seq: usize) -> Option<u32> {
        self.messages.get(seq.checked_sub(1)?)?.uid
    }

    /// The known UIDs of the announced messages, ascending.
    pub fn uids(&self) -> impl Iterator<Item = u32> + '_ {
        self.messages.iter().filter_map(|m| m.uid)
    }

    /// The known UIDs in `first..=last` (`last` None: to the end).
    pub fn uids_in(&self, first: u32, last: Option<u32>) -> Vec<u32> {
        self.uids()
            .filter(|&u| u >= first && last.is_none_or(|l| u <= l))
            .collect()
    }

    /// Whether an announced message's UID is still to be learnt (APPEND without APPENDUID).
    pub fn has_unknown_uids(&self) -> bool {
        self.messages.iter().any(|m| m.uid.is_none())
    }

    /// Sequence numbers of the announced messages whose UID is not known yet.
    pub fn unknown_uid_seqs(&self) -> Vec<u32> {
        (1..)
            .zip(&self.messages)
            .filter(|(_, m)| m.uid.is_none())
            .map(|(seq, _)| seq)
            .collect()
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Applies one untagged response, checking it: EXISTS, EXPUNGE and FETCH; the others
    /// carry nothing the model holds.
    pub fn apply(&mut self, response: &Untagged) -> Checked {
        match response {
            Untagged::Exists(n) => self.exists(*n),
            Untagged::Expunge(seq) => self.expunged(*seq),
            Untagged::Fetch(f) => self.fetched(f),
            _ => Ok(()),
        }
    }

    /// Applies a command's untagged responses in order; stops at the first inconsistency.
    pub fn apply_all(&mut self, responses: &[Untagged]) -> Checked {
        responses.iter().try_for_each(|r| self.apply(r))
    }

    fn exists(&mut self, n: u32) -> Checked {
        let (min, max) = (self.messages.len(), self.messages.len() + self.pending.len());
        let new = (n as usize).checked_sub(min).filter(|_| n as usize <= max);
        let Some(new) = new else {
            return Err(Inconsistency::Exists { min, max, seen: n });
        };
        self.messages.extend(self.pending.drain(..new));
        Ok(())
    }

    fn expunged(&mut self, seq: u32) -> Checked {
        let exists = self.messages.len();
        let Some(i) = (seq as usize).checked_sub(1).filter(|&i| i < exists) else {
            return Err(Inconsistency::ExpungeUnknownSeq { seq, exists });
        };
        let message = &self.messages[i];
        let deleted = message.flags.contains("\\Deleted");
        let expected = match &self.expunge {
            None => false,
            Some(ExpungeScope::Deleted) => deleted,
            Some(ExpungeScope::Uids(uids)) => deleted && message.uid.is_some_and(|u| uids.contains(&u)),
        };
        if !expected {
            return Err(Inconsistency::ExpungeUnexpected { seq, uid: message.uid });
        }
        // RFC 9051 §7.5.1: the messages after it move down by one at once.
        self.messages.remove(i);
        Ok(())
    }

    fn fetched(&mut self, f: &crate::response::Fetch) -> Checked {
        let exists = self.messages.len();
        let Some(i) = (f.seq as usize).checked_sub(1).filter(|&i| i < exists) else {
            return Err(Inconsistency::FetchUnknownSeq { seq: f.seq, exists });
        };
        if let Some(uid) = f.uid {
            if neighbour_uids(&self.messages, |m| m.uid, i, uid)? {
                self.learn_uid(i, uid);
            }
        }
        let message = &mut self.messages[i];
        if let Some(seen) = &f.flags {
            if *seen != message.flags {
                return Err(Inconsistency::Flags {
                    seq: f.seq,
                    uid: message.uid,
                    expected: message.flags.clone(),
                    seen: seen.clone(),
                });
            }
        }
        if let Some(envelope) = &f.envelope {
            match &message.message_id {
                Some(expected) if envelope.message_id.as_ref() != Some(expected) => {
                    return Err(Inconsistency::MessageId {
                        uid: message.uid,
                        expected: expected.clone(),
                        seen: envelope.message_id.clone(),
                    })
                }
                Some(_) => {}
                None => message.message_id = envelope.message_id.clone(),
            }
        }
        Ok(())
    }

    /// Takes `uid` for the message at index `i`, whose UID was not known (and which
    /// `neighbour_uids` found between its neighbours').
    fn learn_uid(&mut self, i: usize, uid: u32) {
        self.messages[i].uid = Some(uid);
        self.uid_next = self.uid_next.max(uid.saturating_add(1));
    }

    /// A STORE is about to be sent: changes the expected flags of `uids`.
    pub fn store(&mut self, uids: &[u32], op: StoreOp, flags: &Flags) {
        let targets = self.messages.iter_mut().chain(self.pending.iter_mut());
        for message in targets.filter(|m| m.uid.is_some_and(|u| uids.contains(&u))) {
            for name in &flags.0 {
                match op {
                    StoreOp::Add => message.flags.insert(name),
                    StoreOp::Remove => message.flags.remove(name),
                }
            }
        }
    }

    /// An APPEND completed: the message awaits its EXISTS. `appenduid` is the reply's
    /// `[APPENDUID uidvalidity uid]`, if any (RFC 4315 §3).
    pub fn appended(&mut self, appenduid: Option<(u32, u32)>, flags: Flags, message_id: Option<String>) -> Checked {
        let uid = appenduid.map(|(_, uid)| uid);
        let at_least = self.uid_next;
        self.pending.push(Message { uid, flags, message_id });
        let Some((uid_validity, uid)) = appenduid else {
            return Ok(());
        };
        self.uid_next = self.uid_next.max(uid.saturating_add(1));
        if uid_validity != self.uid_validity {
            return Err(Inconsistency::UidValidity {
                expected: self.uid_validity,
                seen: uid_validity,
            });
        }
        if uid < at_least {
            return Err(Inconsistency::UidNotNew { uid, at_least });
        }
        Ok(())
    }

    /// An expunge is about to be sent; `end_expunge` after its responses are applied.
    pub fn begin_expunge(&mut self, scope: ExpungeScope) {
        self.expunge = Some(scope);
    }

    /// The expunge completed: nothing it should have removed may be left.
    pub fn end_expunge(&mut self) -> Checked {
        let Some(scope) = self.expunge.take() else {
            return Ok(());
        };
        let left: Vec<u32> = self
            .messages
            .iter()
            .filter(|m| m.flags.contains("\\Deleted"))
            .filter_map(|m| m.uid)
            .filter(|u| match &scope {
                ExpungeScope::Deleted => true,
                ExpungeScope::Uids(uids) => uids.contains(u),
            })
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(Inconsistency::NotExpunged { uids: left })
        }
    }

    /// The mailbox was selected again (in this session or a new one): every message is
    /// announced now, in UID order, and EXISTS must count them all.
    pub fn reselect(&mut self, selected: &Selected) -> Checked {
        self.messages.append(&mut self.pending);
        self.expunge = None;
        let at_least = self.uid_next;
        self.uid_next = self.uid_next.max(selected.uid_next);
        if selected.uid_validity != self.uid_validity {
            return Err(Inconsistency::UidValidity {
                expected: self.uid_validity,
                seen: selected.uid_validity,
            });
        }
        if selected.exists as usize != self.messages.len() {
            return Err(Inconsistency::Exists {
                min: self.messages.len(),
                max: self.messages.len(),
                seen: selected.exists,
            });
        }
        if selected.uid_next < at_least {
            return Err(Inconsistency::UidNext {
                at_least,
                seen: selected.uid_next,
            });
        }
        Ok(())
    }

    /// A FETCH of `expected` UIDs completed: each must be in a response with its UID, and
    /// no other UID may be.
    pub fn check_fetched(&self, expected: &[u32], responses: &[Untagged]) -> Checked {
        let returned: BTreeSet<u32> = responses
            .iter()
            .filter_map(|r| match r {
                Untagged::Fetch(f) => f.uid,
                _ => None,
            })
            .collect();
        if let Some(&uid) = expected.iter().find(|u| !returned.contains(u)) {
            return Err(Inconsistency::Missing { uid });
        }
        if let Some(&uid) = returned.iter().find(|u| !expected.contains(u)) {
            return Err(Inconsistency::Unrequested { uid });
        }
        Ok(())
    }

    /// A `UID SEARCH key` returned `result`: it must be exactly the model's matches.
    pub fn check_search(&self, key: &SearchKey, result: &[u32]) -> Checked {
        let expected: BTreeSet<u32> = self
            .messages
            .iter()
            .filter(|m| key.matches(&m.flags))
            .filter_map(|m| m.uid)
            .collect();
        let seen: BTreeSet<u32> = result.iter().copied().collect();
        let missing: Vec<u32> = expected.difference(&seen).copied().collect();
        let unexpected: Vec<u32> = seen.difference(&expected).copied().collect();
        if missing.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        Err(Inconsistency::Search {
            criterion: key.criterion(),
            missing,
            unexpected,
        })
    }
}

#[cfg(test)]
mod tests;
