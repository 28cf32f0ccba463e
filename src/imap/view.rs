//! What the IMAP core reads from the store, and the shared per-mailbox UID snapshot.
//!
//! `MailRead` is the read side of the store as the session sees it: a trait, so the core stays
//! testable with an in-memory store and never names heed. `UidView` is the sorted UID list of a
//! mailbox at one moment; every session of that mailbox on a core holds the same `Rc` of it
//! (DESIGN.md §4: no private copy of 10,000 UIDs per session), and moves to a newer one only
//! when it tells its client about the change.

use std::rc::Rc;

use crate::mime::Structure;
use crate::store::modseq::Expunged;
use crate::store::records::{flags, BodyId, MailboxId, Uid, Usage, UserId};
use crate::store::urlauth::AccessKey;
use crate::store::{FlagCounts, Mailbox, MappedBytes, MessageRecord, StoreError, User};

pub use super::command::fetch::referred::Referred;
pub use super::command::fetch::render::MessageBytes;

/// A body as the store keeps it: its chunks in the map, in order.
pub struct Chunks {
    pub chunks: Vec<MappedBytes>,
    pub len: usize,
}

impl Chunks {
    /// The chunks' parts that `range` covers, in order.
    fn parts(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = (&MappedBytes, std::ops::Range<usize>)> {
        let (lo, hi) = (range.start, range.end);
        let mut offset = 0;
        self.chunks
            .iter()
            .map(move |chunk| {
                let start = offset;
                offset += chunk.len();
                (chunk, start)
            })
            .skip_while(move |(chunk, start)| start + chunk.len() <= lo)
            .take_while(move |(_, start)| *start < hi)
            .map(move |(chunk, start)| (chunk, lo.max(start) - start..hi.min(start + chunk.len()) - start))
    }
}

impl MessageBytes for Chunks {
    fn len(&self) -> usize {
        self.len
    }
    fn copy(&self, range: std::ops::Range<usize>, out: &mut Vec<u8>) {
        for (chunk, part) in self.parts(range) {
            out.extend_from_slice(&chunk[part]);
        }
    }
    fn refer(&self, range: std::ops::Range<usize>, at: usize, into: &mut Referred) -> bool {
        if range.end > self.len {
            return false;
        }
        for (chunk, part) in self.parts(range) {
            into.push(at, chunk.slice(part));
        }
        true
    }
}

pub trait MailRead {
    fn user(&self, name: &str) -> Result<Option<User>, StoreError>;
    fn mailboxes(&self, user: UserId) -> Result<Vec<Mailbox>, StoreError>;
    /// `user`'s METADATA entries of one mailbox (0: the server's), in name order.
    fn metadata(&self, user: UserId, mailbox: MailboxId) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// The names `user` subscribed to, existing or not.
    fn subscriptions(&self, user: UserId) -> Result<Vec<String>, StoreError>;
    fn mailbox(&self, user: UserId, name: &str) -> Result<Option<Mailbox>, StoreError>;
    fn mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>, StoreError>;
    /// Calls `f` for every message of the mailbox in UID order.
    fn each_message(&self, mailbox: MailboxId, f: &mut dyn FnMut(Uid, &MessageRecord)) -> Result<(), StoreError>;
    /// Calls `f` for the messages of the mailbox from UID `from` up, in UID order, until it
    /// returns false: how a long scan goes on where its last step stopped. This default reads
    /// from the first message and suits small test stores; the store's own reads only from
    /// `from`.
    fn each_message_from(
        &self,
        mailbox: MailboxId,
        from: Uid,
        f: &mut dyn FnMut(Uid, &MessageRecord) -> bool,
    ) -> Result<(), StoreError> {
        let mut going = true;
        self.each_message(mailbox, &mut |uid, record| {
            if going && uid >= from {
                going = f(uid, record);
            }
        })
    }
    /// Calls `f` for every UID of the mailbox in order. This default reads every record; the
    /// store's own reads the keys alone.
    fn each_uid(&self, mailbox: MailboxId, f: &mut dyn FnMut(Uid)) -> Result<(), StoreError> {
        self.each_message(mailbox, &mut |uid, _| f(uid))
    }
    fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageRecord>, StoreError>;
    fn structure(&self, body: BodyId) -> Result<Option<Structure>, StoreError>;
    fn body(&self, body: BodyId) -> Result<Box<dyn MessageBytes + '_>, StoreError>;
    /// UIDs expunged from `mailbox` after modseq `since`, as far as the store remembers.
    fn expunged_since(&self, mailbox: &Mailbox, since: u64) -> Result<Expunged, StoreError>;
    /// The UIDs of `mailbox` whose modseq is above `since`, ascending. This default reads
    /// every message and suits small test stores; the store's own reads its modseq index,
    /// so the work is proportional to the changes.
    fn changed_since(&self, mailbox: MailboxId, since: u64) -> Result<Vec<Uid>, StoreError> {
        let mut uids = Vec::new();
        self.each_message(mailbox, &mut |uid, record| {
            if record.modseq > since {
                uids.push(uid);
            }
        })?;
        Ok(uids)
    }
    /// How many of `mailbox`'s messages are unseen and \Deleted, and the keywords in use.
    /// This default reads every message; the store's own has them in the mailbox's record.
    fn flag_counts(&self, mailbox: &Mailbox) -> Result<FlagCounts, StoreError> {
        let mut counts = FlagCounts::default();
        self.each_message(mailbox.id, &mut |_, record| counts.add(record))?;
        Ok(counts)
    }
    /// Calls `f` with the UIDs of `mailbox`'s messages without \Seen, ascending, until it
    /// returns false. This default reads every message; the store's own reads its unseen
    /// index.
    fn each_unseen(&self, mailbox: MailboxId, f: &mut dyn FnMut(Uid) -> bool) -> Result<(), StoreError> {
        self.each_message_from(mailbox, 0, &mut |uid, record| record.flags & flags::SEEN != 0 || f(uid))
    }
    fn usage(&self, user: UserId) -> Result<Usage, StoreError>;
    /// The URLAUTH access key of `user`'s `mailbox`, if one was made (RFC 4467 §3).
    fn urlauth_key(&self, user: UserId, mailbox: MailboxId) -> Result<Option<AccessKey>, StoreError>;
}

/// A mailbox's UIDs at one HIGHESTMODSEQ, in order: message sequence number n is the n-th.
///
/// Kept as runs of consecutive UIDs where that is smaller, which it is for most mailboxes
/// (UIDs are handed out in order; only expunges cut runs): a 1,000-message INBOX without
/// gaps is one run of 12 bytes instead of 4,000 bytes, for every mailbox a core has open.
/// A mailbox with many gaps keeps the plain list, so no view takes more than 4 bytes a
/// message.
///
/// The UIDs themselves are behind an `Rc`: a view one flag change newer has the same UIDs at
/// a higher modseq, and costs no copy of them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UidView {
    uids: Rc<Uids>,
    len: u32,
    pub highest_modseq: u64,
}

#[derive(Debug, PartialEq, Eq)]
enum Uids {
    Runs(Vec<Run>),
    Listed(Vec<Uid>),
}

impl Default for Uids {
    fn default() -> Uids {
        Uids::Runs(Vec::new())
    }
}

/// `count` consecutive UIDs from `first`, the first of them message number `before + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    first: Uid,
    before: u32,
    count: u32,
}

impl Run {
    fn uids(&self) -> std::ops::Range<Uid> {
        self.first..self.first + self.count
    }
}

impl UidView {
    pub fn load(store: &dyn MailRead, mailbox: &Mailbox) -> Result<UidView, StoreError> {
        let mut uids = Vec::with_capacity(mailbox.messages as usize);
        store.each_uid(mailbox.id, &mut |uid| uids.push(uid))?;
        Ok(UidView::new(uids, mailbox.highest_modseq))
    }

    /// A view of `uids`, which must be ascending.
    pub fn new(uids: Vec<Uid>, highest_modseq: u64) -> UidView {
        debug_assert!(uids.windows(2).all(|w| w[0] < w[1]), "UIDs out of order");
        let len = uids.len() as u32;
        let runs = 1 + uids.windows(2).filter(|w| w[1] != w[0] + 1).count();
        let uids = if uids.is_empty() || runs * 3 > uids.len() {
            let mut uids = uids;
            uids.shrink_to_fit();
            Uids::Listed(uids)
        } else {
            let mut out: Vec<Run> = Vec::with_capacity(runs);
            for (i, &uid) in uids.iter().enumerate() {
                match out.last_mut() {
                    Some(run) if run.first + run.count == uid => run.count += 1,
                    _ => out.push(Run {
                        first: uid,
                        before: i as u32,
                        count: 1,
                    }),
                }
            }
            Uids::Runs(out)
        };
        UidView {
            uids: Rc::new(uids),
            len,
            highest_modseq,
        }
    }

    /// The same UIDs at a later modseq (a flag change).
    pub fn with_modseq(&self, highest_modseq: u64) -> UidView {
        UidView {
            uids: self.uids.clone(),
            len: self.len,
            highest_modseq,
        }
    }

    /// This view with `uid`, above all of its UIDs, added (a delivery, APPEND, COPY).
    pub fn with_added(&self, uid: Uid, highest_modseq: u64) -> UidView {
        debug_assert!(self.last().is_none_or(|last| uid > last), "UIDs only grow");
        let uids = match &*self.uids {
            Uids::Runs(runs) => {
                let mut runs = runs.clone();
                match runs.last_mut() {
                    Some(run) if run.first + run.count == uid => run.count += 1,
                    _ => runs.push(Run {
                        first: uid,
                        before: self.len,
                        count: 1,
                    }),
                }
                if runs.len() * 3 > self.len as usize + 1 {
                    // Gaps made runs the larger form: a plain list, as `new` would choose.
                    return UidView::new(self.iter().chain([uid]).collect(), highest_modseq);
                }
                Uids::Runs(runs)
            }
            Uids::Listed(list) => {
                let mut list = list.clone();
                list.push(uid);
                Uids::Listed(list)
            }
        };
        UidView {
            uids: Rc::new(uids),
            len: self.len + 1,
            highest_modseq,
        }
    }

    /// This view without `gone` (an expunge; UIDs it does not hold are ignored).
    pub fn without(&self, gone: &[Uid], highest_modseq: u64) -> UidView {
        let mut gone = gone.to_vec();
        gone.sort_unstable();
        let kept = self.iter().filter(|u| gone.binary_search(u).is_err()).collect();
        UidView::new(kept, highest_modseq)
    }

    pub fn seq_of(&self, uid: Uid) -> Option<u32> {
        match &*self.uids {
            Uids::Listed(uids) => uids.binary_search(&uid).ok().map(|i| i as u32 + 1),
            Uids::Runs(runs) => {
                let run = runs[..runs.partition_point(|r| r.first <= uid)].last()?;
                run.uids().contains(&uid).then(|| run.before + (uid - run.first) + 1)
            }
        }
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many of the UIDs are below `uid`: the sequence number of the message before it.
    pub fn count_below(&self, uid: Uid) -> u32 {
        match &*self.uids {
            Uids::Listed(uids) => uids.partition_point(|&u| u < uid) as u32,
            Uids::Runs(runs) => match runs[..runs.partition_point(|r| r.first < uid)].last() {
                Some(run) => run.before + (uid - run.first).min(run.count),
                None => 0,
            },
        }
    }

    /// The highest UID, if any message.
    pub fn last(&self) -> Option<Uid> {
        match &*self.uids {
            Uids::Listed(uids) => uids.last().copied(),
            Uids::Runs(runs) => runs.last().map(|r| r.first + r.count - 1),
        }
    }

    /// The UIDs in message-number order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Uid> + '_ {
        let (listed, runs): (&[Uid], &[Run]) = match &*self.uids {
            Uids::Listed(uids) => (uids, &[]),
            Uids::Runs(runs) => (&[], runs),
        };
        listed.iter().copied().chain(runs.iter().flat_map(Run::uids))
    }
}

/// Why the message part a URL names is not there (any more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    UidValidity,
    Message,
    Section,
}

impl Missing {
    pub fn reason(self) -> &'static str {
        match self {
            Missing::UidValidity => "UIDVALIDITY does not match",
            Missing::Message => "no such message",
            Missing::Section => "no such section",
        }
    }
}

/// The octets message `uid` of `mailbox` has at `section` and `partial`: exactly what
/// `BODY.PEEK[section]<partial>` sends (RFC 5092 §5), for CATENATE (RFC 4469) and URLFETCH/BURL
/// (RFC 4467, RFC 4468) alike. Never sets `\Seen`.
pub fn section_of(
    store: &dyn MailRead,
    mailbox: &Mailbox,
    (uid_validity, uid): (Option<u32>, Uid),
    (section, partial): (&super::types::Section, Option<super::types::Partial>),
) -> Result<Result<Vec<u8>, Missing>, StoreError> {
    if uid_validity.is_some_and(|v| v != mailbox.uid_validity) {
        return Ok(Err(Missing::UidValidity));
    }
    let Some(record) = store.message(mailbox.id, uid)? else {
        return Ok(Err(Missing::Message));
    };
    let Some(structure) = store.structure(record.body_id)? else {
        return Ok(Err(Missing::Message));
    };
    let bytes = store.body(record.body_id)?;
    let mut out = Vec::new();
    if !super::command::fetch::render::section_bytes(&structure, &*bytes, section, partial, &mut out) {
        return Ok(Err(Missing::Section));
    }
    Ok(Ok(out))
}

/// The UIDs expunged from `mailbox` after modseq `since`, ascending. Where the store's log
/// was trimmed past `since`, every UID below UIDNEXT that is not in the mailbox now: RFC 7162
/// §3.2.5.1 lets VANISHED (EARLIER) name UIDs the client may never have seen.
pub fn vanished_since(store: &dyn MailRead, mailbox: &Mailbox, since: u64) -> Result<Vec<Uid>, StoreError> {
    match store.expunged_since(mailbox, since)? {
        Expunged::Known(uids) => Ok(uids),
        Expunged::Forgotten => {
            let (mut gone, mut next) = (Vec::new(), 1);
            store.each_message(mailbox.id, &mut |uid, _| {
                gone.extend(next..uid);
                next = uid + 1;
            })?;
            gone.extend(next..mailbox.uid_next);
            Ok(gone)
        }
    }
}

/// What SELECT reports besides the view: the sequence number of the first unseen message
/// in `view`, and the keywords in use. Neither reads the mailbox's messages: the first comes
/// from the unseen index, the second from the mailbox's counts by flag.
pub fn select_scan(
    store: &dyn MailRead,
    mailbox: &Mailbox,
    view: &UidView,
) -> Result<(Option<u32>, Vec<String>), StoreError> {
    let mut first_unseen = None;
    store.each_unseen(mailbox.id, &mut |uid| {
        first_unseen = view.seq_of(uid);
        first_unseen.is_none()
    })?;
    Ok((first_unseen, store.flag_counts(mailbox)?.keywords()))
}

/// Where sessions get the current shared view of a mailbox: one per core, kept fresh by the
/// store's change feed.
pub trait Views {
    /// The view of `mailbox` at the HIGHESTMODSEQ the snapshot shows.
    fn current(&mut self, store: &dyn MailRead, mailbox: &Mailbox) -> Result<Rc<UidView>, StoreError>;
    /// A session's place at modseq `at` in the changes this core shares for `mailbox` (see
    /// `shared`), once `current` has been asked for it; None where nothing is shared.
    fn cursor(&mut self, mailbox: MailboxId, at: u64) -> Option<super::shared::Cursor>;
    /// `keywords` (a mailbox's, as SELECT found them) as one list that the sessions of that
    /// mailbox on this core share while they have heard of the same keywords.
    fn shared_keywords(&mut self, mailbox: MailboxId, keywords: Vec<String>) -> Rc<Vec<String>>;
}

/// A `Views` that shares nothing: for tests and single sessions.
#[derive(Default)]
pub struct Unshared;

impl Views for Unshared {
    fn current(&mut self, store: &dyn MailRead, mailbox: &Mailbox) -> Result<Rc<UidView>, StoreError> {
        UidView::load(store, mailbox).map(Rc::new)
    }
    fn cursor(&mut self, _: MailboxId, _: u64) -> Option<super::shared::Cursor> {
        None
    }
    fn shared_keywords(&mut self, _mailbox: MailboxId, keywords: Vec<String>) -> Rc<Vec<String>> {
        Rc::new(keywords)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The view must answer exactly as the plain sorted list it stands for.
    fn check(uids: &[Uid]) {
        let view = UidView::new(uids.to_vec(), 7);
        assert_eq!(view.len() as usize, uids.len());
        assert_eq!(view.is_empty(), uids.is_empty());
        assert_eq!(view.last(), uids.last().copied());
        assert_eq!(view.iter().collect::<Vec<_>>(), uids);
        assert_eq!(
            view.iter().rev().collect::<Vec<_>>(),
            uids.iter().rev().copied().collect::<Vec<_>>()
        );
        // Every UID, its neighbours (the gaps' edges), and both ends.
        let probes = uids.iter().flat_map(|&u| [u - 1, u, u + 1]).chain([0, 1, u32::MAX]);
        for uid in probes {
            let expected = uids.binary_search(&uid).ok().map(|i| i as u32 + 1);
            assert_eq!(view.seq_of(uid), expected, "UID {uid} in {uids:?}");
            let below = uids.iter().filter(|&&u| u < uid).count() as u32;
            assert_eq!(view.count_below(uid), below, "below UID {uid} in {uids:?}");
        }
    }

    #[test]
    fn views_answer_as_the_uid_list() {
        check(&[]);
        check(&[1]);
        check(&[5]);
        check(&(1..=1000).collect::<Vec<_>>());
        check(&[1, 2, 3, 7, 8, 9, 10, 20, 21, 40]);
        // Every other UID gone: more runs than a list would cost, so listed.
        check(&(1..=200).filter(|u| u % 2 == 0).collect::<Vec<_>>());
        check(&[3, 4, 5, 6, 100, 4_000_000_000, 4_000_000_001]);
    }

    /// A view changed in place answers as one built from the changed list.
    #[test]
    fn changed_views_answer_as_views_built_from_their_uids() {
        let cases: [&[Uid]; 4] = [&[], &[1, 2, 3], &[2, 4, 6, 8, 10, 12], &[1, 2, 3, 7, 8, 20]];
        for uids in cases {
            let view = UidView::new(uids.to_vec(), 3);
            let next = uids.last().map_or(1, |u| u + 1);
            for added in [next, next + 5] {
                let grown = view.with_added(added, 4);
                let mut list = uids.to_vec();
                list.push(added);
                check(&list);
                assert_eq!(grown.iter().collect::<Vec<_>>(), list);
                for uid in list.iter().flat_map(|&u| [u - 1, u, u + 1]) {
                    assert_eq!(
                        grown.seq_of(uid),
                        UidView::new(list.clone(), 4).seq_of(uid),
                        "{uid} in {list:?}"
                    );
                    assert_eq!(grown.count_below(uid), UidView::new(list.clone(), 4).count_below(uid));
                }
                assert_eq!((grown.len() as usize, grown.highest_modseq), (list.len(), 4));
            }
            let gone: Vec<Uid> = uids.iter().copied().step_by(2).chain([999]).collect();
            let shrunk = view.without(&gone, 5);
            let kept: Vec<Uid> = uids.iter().copied().filter(|u| !gone.contains(u)).collect();
            assert_eq!(shrunk, UidView::new(kept, 5));
            // Grown by far-apart UIDs, it never takes more room than the plain list.
            let mut sparse = UidView::new(vec![1, 2, 3, 4, 5, 6], 1);
            for uid in (10..40).step_by(3) {
                sparse = sparse.with_added(uid, 2);
                if let Uids::Runs(runs) = &*sparse.uids {
                    assert!(runs.len() * 3 <= sparse.len() as usize, "{sparse:?}");
                }
            }
            let flagged = view.with_modseq(6);
            assert!(Rc::ptr_eq(&flagged.uids, &view.uids), "no copy for a flag change");
            assert_eq!(flagged.highest_modseq, 6);
        }
    }

    #[test]
    fn a_mailbox_without_gaps_is_one_run() {
        let view = UidView::new((1..=1000).collect(), 1);
        assert_eq!(
            *view.uids,
            Uids::Runs(vec![Run {
                first: 1,
                before: 0,
                count: 1000
            }])
        );
        let sparse = UidView::new((1..=30).map(|u| u * 3).collect(), 1);
        assert!(matches!(*sparse.uids, Uids::Listed(_)), "{sparse:?}");
    }
}
