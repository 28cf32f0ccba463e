//! What the IMAP core reads from the store, and the shared per-mailbox UID snapshot.
//!
//! `MailRead` is the read side of the store as the session sees it: a trait, so the core stays
//! testable with an in-memory store and never names heed. `UidView` is the sorted UID list of a
//! mailbox at one moment; every session of that mailbox on a core holds the same `Rc` of it
//! (DESIGN.md §4: no private copy of 10,000 UIDs per session), and moves to a newer one only
//! when it tells its client about the change.

use std::rc::Rc;

use crate::mime::Structure;
use crate::store::records::{flags, BodyId, MailboxId, Uid, Usage, UserId};
use crate::store::{Mailbox, MessageRecord, StoreError, User};

pub use super::fetch::MessageBytes;

/// A body as the store keeps it: chunks borrowed from the map, in order.
pub struct Chunks<'a> {
    pub chunks: Vec<&'a [u8]>,
    pub len: usize,
}

impl MessageBytes for Chunks<'_> {
    fn len(&self) -> usize {
        self.len
    }
    fn copy(&self, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
        let mut offset = 0;
        for chunk in &self.chunks {
            let (start, end) = (offset, offset + chunk.len());
            offset = end;
            if end <= range.start {
                continue;
            }
            if start >= range.end {
                break;
            }
            let from = range.start.max(start) - start;
            let to = range.end.min(end) - start;
            out.extend_from_slice(&chunk[from..to]);
        }
    }
}

pub trait MailRead {
    fn user(&self, name: &str) -> Result<Option<User>, StoreError>;
    fn mailboxes(&self, user: UserId) -> Result<Vec<Mailbox>, StoreError>;
    fn mailbox(&self, user: UserId, name: &str) -> Result<Option<Mailbox>, StoreError>;
    fn mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>, StoreError>;
    /// Calls `f` for every message of the mailbox in UID order.
    fn each_message(&self, mailbox: MailboxId, f: &mut dyn FnMut(Uid, &MessageRecord)) -> Result<(), StoreError>;
    fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageRecord>, StoreError>;
    fn structure(&self, body: BodyId) -> Result<Option<Structure>, StoreError>;
    fn body(&self, body: BodyId) -> Result<Box<dyn MessageBytes + '_>, StoreError>;
    fn expunged_since(&self, mailbox: MailboxId, modseq: u64) -> Result<Vec<Uid>, StoreError>;
    fn usage(&self, user: UserId) -> Result<Usage, StoreError>;
}

/// A mailbox's UIDs at one HIGHESTMODSEQ, sorted; message sequence number n is `uids[n-1]`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UidView {
    pub uids: Vec<Uid>,
    pub highest_modseq: u64,
}

impl UidView {
    pub fn load(store: &dyn MailRead, mailbox: &Mailbox) -> Result<UidView, StoreError> {
        let mut uids = Vec::with_capacity(mailbox.messages as usize);
        store.each_message(mailbox.id, &mut |uid, _| uids.push(uid))?;
        Ok(UidView {
            uids,
            highest_modseq: mailbox.highest_modseq,
        })
    }

    pub fn seq_of(&self, uid: Uid) -> Option<u32> {
        self.uids.binary_search(&uid).ok().map(|i| i as u32 + 1)
    }

    pub fn len(&self) -> u32 {
        self.uids.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
    }
}

/// What SELECT reports besides the view: the sequence number of the first unseen message
/// and the keywords in use, from one pass over the mailbox's records. Only messages in
/// `view` count, so the numbers agree with the EXISTS it reports.
pub fn select_scan(
    store: &dyn MailRead,
    mailbox: MailboxId,
    view: &UidView,
) -> Result<(Option<u32>, Vec<String>), StoreError> {
    let mut keywords: Vec<String> = Vec::new();
    let mut first_unseen = None;
    store.each_message(mailbox, &mut |uid, record| {
        let Some(seq) = view.seq_of(uid) else { return };
        if first_unseen.is_none() && record.flags & flags::SEEN == 0 {
            first_unseen = Some(seq);
        }
        for k in &record.keywords {
            if !keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                keywords.push(k.clone());
            }
        }
    })?;
    Ok((first_unseen, keywords))
}

/// Where sessions get the current shared view of a mailbox: one per core, kept fresh by the
/// store's change feed.
pub trait Views {
    fn current(&mut self, store: &dyn MailRead, mailbox: &Mailbox) -> Result<Rc<UidView>, StoreError>;
}

/// A `Views` that shares nothing: for tests and single sessions.
#[derive(Default)]
pub struct Unshared;

impl Views for Unshared {
    fn current(&mut self, store: &dyn MailRead, mailbox: &Mailbox) -> Result<Rc<UidView>, StoreError> {
        UidView::load(store, mailbox).map(Rc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_copy_any_range() {
        let whole: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let chunks = Chunks {
            chunks: whole.chunks(64).collect(),
            len: whole.len(),
        };
        for (a, b) in [
            (0, 1000),
            (0, 0),
            (63, 65),
            (64, 128),
            (10, 999),
            (990, 2000),
            (5000, 6000),
        ] {
            let mut out = Vec::new();
            chunks.copy(a..b, &mut out);
            let (x, y) = (a.min(whole.len()), b.min(whole.len()));
            let expected = whole[x..y].to_vec();
            assert_eq!(out, expected, "{a}..{b}");
        }
    }
}
