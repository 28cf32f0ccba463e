//! One mailbox as the sessions of one core share it: its current UID view, the typed changes
//! the store committed since the oldest session's position, and where each session stands.
//!
//! The core applies each change of the store's feed here once (`Shared::apply`); a session
//! then renders its untagged responses from the changes after its own position (`Cursor`),
//! so the work per change per session is proportional to the change, not to the mailbox.
//!
//! `Mailboxes` holds them for one core: the `Views` its sessions use.
//!
//! Invariants: the log holds every change with a modseq in (`log_from`, the view's modseq],
//! in order; it never holds a change every session has already passed; a session whose
//! position fell out of the log (the log is bounded) is told so and compares views instead.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use super::view::{MailRead, UidView, Views};
use crate::store::records::MailboxId;
use crate::store::{Change, ChangeKind, Mailbox, StoreError};

/// The most changes a log keeps for sessions that are behind; one further behind compares
/// views the slow way (proportional to the mailbox, once).
const LOG_MAX: usize = 1024;

#[derive(Debug)]
pub struct Shared {
    view: Rc<UidView>,
    log: VecDeque<Logged>,
    /// The log holds every change after this modseq.
    log_from: u64,
    /// How many sessions stand at each modseq.
    positions: Positions,
    /// The keywords in use as the last SELECT found them, one list for the sessions that
    /// selected since (`Views::shared_keywords`).
    keywords: Option<Rc<Vec<String>>>,
    /// A change came that the feed never announced the ones before (another process wrote to
    /// the store, or `fsck --repair` raised a modseq): the view cannot be kept up from the
    /// feed until it is loaded again from a snapshot (`reset`).
    stale: bool,
}

#[derive(Debug)]
struct Logged {
    modseq: u64,
    kind: ChangeKind,
}

impl Shared {
    pub fn new(view: Rc<UidView>) -> Rc<RefCell<Shared>> {
        let log_from = view.highest_modseq;
        Rc::new(RefCell::new(Shared {
            view,
            log: VecDeque::new(),
            log_from,
            positions: Positions::default(),
            keywords: None,
            stale: false,
        }))
    }

    /// Whether the view has fallen out of step with the store (`stale`).
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// Starts again from `view`, loaded from a snapshot at least as new as this state; the
    /// changes logged so far are let go (a session behind them compares views once).
    pub fn reset(&mut self, view: Rc<UidView>) {
        self.log_from = view.highest_modseq;
        self.view = view;
        self.log.clear();
        self.stale = false;
    }

    /// The HIGHESTMODSEQ this state is at.
    pub fn modseq(&self) -> u64 {
        self.view.highest_modseq
    }

    pub fn view(&self) -> Rc<UidView> {
        self.view.clone()
    }

    /// Whether any session stands in this mailbox.
    pub fn is_watched(&self) -> bool {
        !self.positions.is_empty()
    }

    /// Applies one change the store committed to this mailbox; `modseq` is its HIGHESTMODSEQ
    /// after the change. A change the view already holds (it was loaded after the change
    /// was committed) or one that changes no modseq (a rename) is skipped.
    pub fn apply(&mut self, modseq: u64, kind: &ChangeKind) {
        if modseq <= self.modseq() || self.stale {
            return;
        }
        // Every change raises its mailbox's modseq by one, so a larger step means changes
        // this core never heard of: nothing derived from the view can be trusted now.
        if modseq != self.modseq() + 1 {
            self.stale = true;
            self.log.clear();
            return;
        }
        let view = match kind {
            ChangeKind::Added { uid } => self.view.with_added(*uid, modseq),
            ChangeKind::Expunged { uids } => self.view.without(uids, modseq),
            _ => self.view.with_modseq(modseq),
        };
        self.view = Rc::new(view);
        self.log.push_back(Logged {
            modseq,
            kind: kind.clone(),
        });
        self.trim();
    }

    /// Drops what every session has passed, and what is past the bound.
    fn trim(&mut self) {
        let oldest = self.positions.oldest().unwrap_or(u64::MAX);
        while let Some(front) = self.log.front() {
            if front.modseq > oldest && self.log.len() <= LOG_MAX {
                break;
            }
            self.log_from = front.modseq;
            self.log.pop_front();
        }
    }

    fn enter(&mut self, at: u64) {
        self.positions.enter(at);
    }

    fn leave(&mut self, at: u64) {
        self.positions.leave(at);
        self.trim();
    }
}

/// How many sessions stand at each modseq, oldest first. Nearly always one modseq (every
/// session of the core has heard of every change), so a vector sized to what it holds, not a
/// tree whose first node has room for eleven: each mailbox with sessions on a core has one.
#[derive(Debug, Default)]
struct Positions(Vec<(u64, u32)>);

impl Positions {
    fn oldest(&self) -> Option<u64> {
        self.0.first().map(|&(at, _)| at)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn enter(&mut self, at: u64) {
        match self.0.binary_search_by_key(&at, |&(m, _)| m) {
            Ok(i) => self.0[i].1 += 1,
            Err(i) => {
                if self.0.capacity() == 0 {
                    self.0.reserve_exact(1);
                }
                self.0.insert(i, (at, 1));
            }
        }
    }

    fn leave(&mut self, at: u64) {
        if let Ok(i) = self.0.binary_search_by_key(&at, |&(m, _)| m) {
            self.0[i].1 -= 1;
            if self.0[i].1 == 0 {
                self.0.remove(i);
                if self.0.capacity() > 2 * self.0.len() {
                    self.0.shrink_to_fit();
                }
            }
        }
    }
}

/// A session's position in a shared mailbox: the HIGHESTMODSEQ its client has been told of.
#[derive(Debug)]
pub struct Cursor {
    shared: Rc<RefCell<Shared>>,
    at: u64,
}

impl Cursor {
    pub fn new(shared: Rc<RefCell<Shared>>, at: u64) -> Cursor {
        shared.borrow_mut().enter(at);
        Cursor { shared, at }
    }

    /// Calls `f` with each change after this position, in order, and returns the view they
    /// lead to, when that view is the one at `upto` (the snapshot the session reads) and the
    /// log still reaches back here; otherwise None, having called nothing.
    pub fn changes(&self, upto: u64, f: &mut dyn FnMut(&ChangeKind)) -> Option<Rc<UidView>> {
        let shared = self.shared.borrow();
        if shared.stale || shared.modseq() != upto || self.at < shared.log_from {
            return None;
        }
        let first = shared.log.partition_point(|l| l.modseq <= self.at);
        shared.log.range(first..).for_each(|l| f(&l.kind));
        Some(shared.view())
    }

    /// The session has been told everything up to `modseq`.
    pub fn move_to(&mut self, modseq: u64) {
        if modseq == self.at {
            return;
        }
        let mut shared = self.shared.borrow_mut();
        shared.enter(modseq);
        shared.leave(self.at);
        self.at = modseq;
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        self.shared.borrow_mut().leave(self.at);
    }
}

/// The open mailboxes of one core (DESIGN.md §4: nothing per mailbox copied per session).
#[derive(Default)]
pub struct Mailboxes {
    open: HashMap<MailboxId, Rc<RefCell<Shared>>>,
}

impl Mailboxes {
    /// One committed change, to the mailbox's shared state if it is open here.
    pub fn apply(&mut self, change: &Change) {
        if let Some(shared) = self.open.get(&change.mailbox) {
            shared.borrow_mut().apply(change.highest_modseq, &change.kind);
        }
    }
}

impl Views for Mailboxes {
    fn current(&mut self, store: &dyn MailRead, mailbox: &Mailbox) -> Result<Rc<UidView>, StoreError> {
        if let Some(shared) = self.open.get(&mailbox.id) {
            let shared = shared.borrow();
            if !shared.is_stale() && shared.modseq() == mailbox.highest_modseq {
                return Ok(shared.view());
            }
        }
        // The feed and the snapshot disagree for a moment (a commit between them), the shared
        // state fell out of step, or the mailbox is not open here yet.
        let view = Rc::new(UidView::load(store, mailbox)?);
        if let Some(shared) = self.open.get(&mailbox.id) {
            let mut shared = shared.borrow_mut();
            // A snapshot newer than the shared state (or one out of step): start it again from
            // there; the feed's changes up to it are then skipped as already held.
            if shared.is_stale() || shared.modseq() < view.highest_modseq {
                shared.reset(view.clone());
            }
        } else {
            // Mailboxes no session stands in are dropped on the way.
            if self.open.len() > 64 {
                self.open.retain(|_, s| s.borrow().is_watched());
            }
            self.open.insert(mailbox.id, Shared::new(view.clone()));
        }
        Ok(view)
    }

    fn cursor(&mut self, mailbox: MailboxId, at: u64) -> Option<Cursor> {
        let shared = self.open.get(&mailbox)?;
        Some(Cursor::new(shared.clone(), at))
    }

    fn shared_keywords(&mut self, mailbox: MailboxId, keywords: Vec<String>) -> Rc<Vec<String>> {
        let Some(shared) = self.open.get(&mailbox) else {
            return Rc::new(keywords);
        };
        let kept = &mut shared.borrow_mut().keywords;
        match kept {
            Some(list) if **list == keywords => list.clone(),
            _ => kept.insert(Rc::new(keywords)).clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(cursor: &Cursor, upto: u64) -> Option<Vec<ChangeKind>> {
        let mut seen = Vec::new();
        cursor.changes(upto, &mut |k| seen.push(k.clone()))?;
        Some(seen)
    }

    #[test]
    fn each_session_sees_the_changes_after_its_own_position() {
        let shared = Shared::new(Rc::new(UidView::new(vec![1, 2, 3], 10)));
        let mut early = Cursor::new(shared.clone(), 10);
        shared.borrow_mut().apply(11, &ChangeKind::Added { uid: 4 });
        let late = Cursor::new(shared.clone(), 11);
        shared.borrow_mut().apply(12, &ChangeKind::Flags { uid: 2, modseq: 12 });
        shared
            .borrow_mut()
            .apply(13, &ChangeKind::Expunged { uids: vec![1, 3] });
        // A change the view was loaded after is not applied twice.
        shared.borrow_mut().apply(12, &ChangeKind::Added { uid: 9 });
        let view = shared.borrow().view();
        assert_eq!(view.iter().collect::<Vec<_>>(), [2, 4]);
        assert_eq!(view.highest_modseq, 13);
        assert_eq!(changes(&early, 13).unwrap().len(), 3);
        assert_eq!(
            changes(&late, 13).unwrap(),
            [
                ChangeKind::Flags { uid: 2, modseq: 12 },
                ChangeKind::Expunged { uids: vec![1, 3] }
            ]
        );
        // Only a snapshot at the shared state's modseq is answered from it.
        assert_eq!(changes(&late, 12), None);
        assert_eq!(changes(&late, 14), None);
        // Once every session has passed a change, the log lets it go.
        early.move_to(13);
        assert_eq!(shared.borrow().log.len(), 2);
        drop(late);
        assert_eq!(shared.borrow().log.len(), 0);
        assert_eq!(changes(&early, 13).unwrap(), []);
        drop(early);
        assert!(!shared.borrow().is_watched());
    }

    #[test]
    fn positions_count_sessions_by_modseq_oldest_first() {
        let mut p = Positions::default();
        assert_eq!(p.oldest(), None);
        for at in [7, 5, 9, 5, 7] {
            p.enter(at);
        }
        assert_eq!(p.0, [(5, 2), (7, 2), (9, 1)]);
        p.leave(5);
        assert_eq!(p.oldest(), Some(5));
        p.leave(5);
        assert_eq!(p.oldest(), Some(7));
        // A modseq nobody stands at is left alone.
        p.leave(8);
        p.leave(7);
        p.leave(7);
        p.leave(9);
        assert!(p.is_empty());
        p.enter(3);
        assert_eq!(p.0.capacity(), 1, "one position takes the room of one");
    }

    #[test]
    fn a_change_after_one_never_announced_makes_the_state_stale_until_reset() {
        let shared = Shared::new(Rc::new(UidView::new(vec![1, 2], 5)));
        let cursor = Cursor::new(shared.clone(), 5);
        // Modseq 6 was written by someone the feed does not hear (another process).
        shared.borrow_mut().apply(7, &ChangeKind::Added { uid: 4 });
        assert!(shared.borrow().is_stale());
        assert_eq!(changes(&cursor, 7), None);
        shared.borrow_mut().apply(8, &ChangeKind::Added { uid: 5 });
        assert_eq!(shared.borrow().modseq(), 5, "nothing is derived from a stale view");
        shared.borrow_mut().reset(Rc::new(UidView::new(vec![1, 2, 3, 4, 5], 8)));
        shared.borrow_mut().apply(9, &ChangeKind::Expunged { uids: vec![2] });
        assert_eq!(shared.borrow().view().iter().collect::<Vec<_>>(), [1, 3, 4, 5]);
        assert_eq!(changes(&cursor, 9), None, "the cursor is behind the reset");
        let fresh = Cursor::new(shared.clone(), 8);
        assert_eq!(changes(&fresh, 9).unwrap(), [ChangeKind::Expunged { uids: vec![2] }]);
    }

    #[test]
    fn a_session_too_far_behind_is_told_so() {
        let shared = Shared::new(Rc::new(UidView::new(vec![], 1)));
        let behind = Cursor::new(shared.clone(), 1);
        let head = Cursor::new(shared.clone(), 1);
        for uid in 1..=LOG_MAX as u32 + 1 {
            shared
                .borrow_mut()
                .apply(1 + u64::from(uid), &ChangeKind::Added { uid });
        }
        let top = shared.borrow().modseq();
        assert_eq!(changes(&behind, top), None, "the log is bounded");
        assert_eq!(shared.borrow().log.len(), LOG_MAX);
        drop(head);
        assert_eq!(shared.borrow().view().len(), LOG_MAX as u32 + 1);
    }

    #[test]
    fn sessions_of_a_mailbox_share_its_keyword_list() {
        let mut views = Mailboxes::default();
        // Shared once open, as SELECT opens a mailbox (`current`) before it asks.
        for mailbox in [1, 2] {
            views.open.insert(mailbox, Shared::new(Rc::new(UidView::default())));
        }
        let kw = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = views.shared_keywords(1, kw(&["$Label1", "$Junk"]));
        let b = views.shared_keywords(1, kw(&["$Label1", "$Junk"]));
        assert!(Rc::ptr_eq(&a, &b), "one list for both sessions");
        let other = views.shared_keywords(2, kw(&["$Label1", "$Junk"]));
        assert!(!Rc::ptr_eq(&a, &other), "per mailbox");
        let grown = views.shared_keywords(1, kw(&["$Label1", "$Junk", "$New"]));
        assert!(!Rc::ptr_eq(&a, &grown) && grown.len() == 3);
        // A session that hears of a keyword copies the list for itself only.
        let mut mine = b;
        Rc::make_mut(&mut mine).push("$Mine".into());
        assert_eq!((a.len(), mine.len()), (2, 3));
    }
}
