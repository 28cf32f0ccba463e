//! Who has been told of a message first: RFC 3501 §2.3.2 gives `\Recent` to exactly one
//! session, the first read-write session to be notified of the message.
//!
//! Sessions on every core claim new arrivals here, in memory, under one lock: a claim hands out
//! the UIDs from the mailbox's first unclaimed UID up to the newest message the session is
//! about to report, and moves the mark past them, so no two sessions can ever get the same UID.
//! The writer thread persists the marks into each mailbox's `first_recent_uid` with its next
//! commit (at the latest within `writer::RECENT_FLUSH`), so a restart does not hand the same
//! messages out again. A crash between a claim and its persistence makes those messages recent
//! once more, which RFC 3501 §2.3.2 prefers to losing them ("SHOULD be considered recent").
//!
//! Invariant: a mailbox's entry here, when present, is never below its persisted
//! `first_recent_uid`, since only the writer persists and it persists what is here.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;

use super::records::{MailboxId, Uid};

#[derive(Default)]
pub struct RecentClaims {
    inner: Mutex<Claims>,
}

#[derive(Default)]
struct Claims {
    /// First unclaimed UID per mailbox touched since start.
    marks: HashMap<MailboxId, Uid>,
    /// Marks moved since the writer last persisted them.
    dirty: Vec<MailboxId>,
}

impl RecentClaims {
    fn lock(&self) -> std::sync::MutexGuard<'_, Claims> {
        // The maps stay consistent even if a holder panicked: every update is one insert.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims every UID below `upto` that nobody has claimed yet, for a read-write session.
    /// `persisted` is the mailbox's `first_recent_uid` as the caller's snapshot has it.
    pub fn claim(&self, mailbox: MailboxId, persisted: Uid, upto: Uid) -> Range<Uid> {
        let mut claims = self.lock();
        let mark = claims.marks.entry(mailbox).or_insert(persisted);
        let first = (*mark).max(persisted).max(1);
        if upto <= first {
            return first..first;
        }
        *mark = upto;
        if !claims.dirty.contains(&mailbox) {
            claims.dirty.push(mailbox);
        }
        first..upto
    }

    /// The first UID nobody has claimed: from here on messages are \Recent for a read-only
    /// session or a STATUS, which never claim.
    pub fn first_unclaimed(&self, mailbox: MailboxId, persisted: Uid) -> Uid {
        let claims = self.lock();
        claims.marks.get(&mailbox).copied().unwrap_or(0).max(persisted).max(1)
    }

    /// The marks moved since the last call, for the writer to persist.
    pub(crate) fn take_dirty(&self) -> Vec<(MailboxId, Uid)> {
        let mut claims = self.lock();
        let dirty = std::mem::take(&mut claims.dirty);
        dirty.into_iter().map(|m| (m, claims.marks[&m])).collect()
    }

    /// Marks that could not be persisted go back to be tried with the next commit.
    pub(crate) fn put_back(&self, marks: &[(MailboxId, Uid)]) {
        let mut claims = self.lock();
        for (mailbox, _) in marks {
            if !claims.dirty.contains(mailbox) {
                claims.dirty.push(*mailbox);
            }
        }
    }

    pub(crate) fn has_dirty(&self) -> bool {
        !self.lock().dirty.is_empty()
    }

    /// A deleted mailbox's mark is of no further use (mailbox ids are never reused).
    pub(crate) fn forget(&self, mailbox: MailboxId) {
        let mut claims = self.lock();
        claims.marks.remove(&mailbox);
        claims.dirty.retain(|m| *m != mailbox);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_is_claimed_once() {
        let claims = RecentClaims::default();
        assert_eq!(claims.claim(7, 1, 4), 1..4);
        assert!(claims.claim(7, 1, 4).is_empty(), "the second session gets nothing");
        assert_eq!(claims.claim(7, 1, 6), 4..6, "only what arrived since");
        assert_eq!(claims.first_unclaimed(7, 1), 6);
        assert_eq!(claims.first_unclaimed(8, 3), 3, "an untouched mailbox: as persisted");
    }

    #[test]
    fn a_persisted_mark_is_never_undercut() {
        let claims = RecentClaims::default();
        // Persisted by an earlier run of the server: those UIDs were claimed then.
        assert_eq!(claims.claim(1, 10, 12), 10..12);
        // A stale snapshot's lower value does not hand them out again.
        assert!(claims.claim(1, 5, 12).is_empty());
    }

    #[test]
    fn dirty_marks_are_handed_to_the_writer_once() {
        let claims = RecentClaims::default();
        claims.claim(1, 1, 3);
        claims.claim(2, 1, 5);
        claims.claim(1, 1, 4);
        let mut dirty = claims.take_dirty();
        dirty.sort_unstable();
        assert_eq!(dirty, vec![(1, 4), (2, 5)]);
        assert!(!claims.has_dirty());
        claims.put_back(&dirty);
        assert!(claims.has_dirty());
        claims.forget(1);
        assert_eq!(claims.take_dirty(), vec![(2, 5)]);
    }
}
