//! What the sessions of one core share: each open mailbox's current view and the typed
//! changes after the oldest session's position (`imap::shared`, one `Rc` for every session of
//! that mailbox), and the notifications that wake IDLE, fed by the store's change feed. Each
//! change is applied here once per core. Nothing here crosses cores but the lot's eviction
//! bell, which the connection limits ring from any core (`lot`).

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::Notify;

use super::lot::Lot;
use super::Shared;
use crate::imap::shared::Mailboxes;
use crate::imap::view::{Chunks, MailRead, MessageBytes};
use crate::mime::Structure;
use crate::runtime::Shutdown;
use crate::store::modseq::Expunged;
use crate::store::records::{BodyId, MailboxId, Uid, Usage, UserId};
use crate::store::urlauth::AccessKey;
use crate::store::{Change, FlagCounts, Mailbox, MessageRecord, Snapshot, StoreError, User};

pub struct Core {
    views: RefCell<Mailboxes>,
    /// The store's change feed, read by this core's feed task and, so a session's sync sees
    /// the changes committed before its snapshot, by `catch_up`.
    feed: RefCell<UnboundedReceiver<Arc<[Change]>>>,
    watchers: RefCell<HashMap<MailboxId, Rc<Notify>>>,
    /// NOTIFY sessions (RFC 5465) watch every mailbox of their user, and the subscriptions.
    user_watchers: RefCell<HashMap<UserId, Rc<Notify>>>,
    /// The IMAP sessions' settings, made once: without STARTTLS offered, and with.
    imap_settings: [OnceCell<Rc<crate::imap::Settings>>; 2],
    /// This core's IMAP sessions waiting in IDLE, as data.
    pub lot: Lot<super::imap::Parked>,
    /// The server's, for the sessions that wake from the lot (a parked one does not hold it).
    pub shutdown: Shutdown,
}

impl Core {
    /// Starts the task that applies the store's change feed on this core and wakes the
    /// sessions it concerns, the one that watches over its lot until `shutdown`, and the one
    /// that hands freed memory back (`runtime::tidy`).
    pub fn start(shared: &Arc<Shared>, shutdown: &Shutdown) -> Rc<Core> {
        let core = Rc::new(Core {
            views: RefCell::default(),
            feed: RefCell::new(shared.store.subscribe()),
            watchers: RefCell::default(),
            user_watchers: RefCell::default(),
            imap_settings: Default::default(),
            lot: Lot::new(),
            shutdown: shutdown.clone(),
        });
        crate::runtime::io::spawn(super::lot::watch_over(core.clone(), shared.clone(), shutdown.clone()));
        crate::runtime::io::spawn(crate::runtime::tidy(shutdown.clone()));
        let weak = Rc::downgrade(&core);
        crate::runtime::io::spawn(async move {
            loop {
                let next = std::future::poll_fn(|cx| match weak.upgrade() {
                    Some(core) => core.feed.borrow_mut().poll_recv(cx),
                    None => std::task::Poll::Ready(None),
                });
                let (Some(changes), Some(core)) = (next.await, weak.upgrade()) else {
                    return;
                };
                core.apply(&changes);
            }
        });
        core
    }

    /// Applies what the feed has delivered and no task has taken yet. The writer publishes a
    /// commit's changes before it answers, so after this a session sees its own writes, and
    /// any commit its snapshot shows unless the snapshot was taken between that commit and
    /// its publication (then the session compares views once).
    pub fn catch_up(&self) {
        loop {
            let next = self.feed.borrow_mut().try_recv();
            let Ok(changes) = next else {
                return;
            };
            self.apply(&changes);
        }
    }

    fn apply(&self, changes: &[Change]) {
        let mut views = self.views.borrow_mut();
        let watchers = self.watchers.borrow();
        let user_watchers = self.user_watchers.borrow();
        for change in changes {
            views.apply(change);
            if let Some(n) = watchers.get(&change.mailbox) {
                n.notify_waiters();
            }
            if let Some(n) = user_watchers.get(&change.user) {
                n.notify_waiters();
            }
            self.lot.touched(change.mailbox, change.user);
        }
    }

    pub fn views(&self) -> std::cell::RefMut<'_, Mailboxes> {
        self.views.borrow_mut()
    }

    /// The notification for changes to any mailbox of `user` or to their subscriptions; the
    /// entry goes when its last watcher does.
    pub fn watch_user(&self, user: UserId) -> Rc<Notify> {
        let mut watchers = self.user_watchers.borrow_mut();
        if watchers.len() > 256 {
            watchers.retain(|_, n| Rc::strong_count(n) > 1);
        }
        watchers.entry(user).or_default().clone()
    }

    /// The notification for changes to `mailbox`; the entry goes when its last watcher does.
    pub fn watch(&self, mailbox: MailboxId) -> Rc<Notify> {
        let mut watchers = self.watchers.borrow_mut();
        if watchers.len() > 256 {
            watchers.retain(|_, n| Rc::strong_count(n) > 1);
        }
        watchers.entry(mailbox).or_default().clone()
    }

    /// The settings of this core's IMAP sessions, shared rather than a copy in each (with
    /// `starttls` offered or not); `make` makes them the first time.
    pub fn imap_settings(
        &self,
        starttls: bool,
        make: impl FnOnce() -> crate::imap::Settings,
    ) -> Rc<crate::imap::Settings> {
        self.imap_settings[usize::from(starttls)]
            .get_or_init(|| Rc::new(make()))
            .clone()
    }
}

/// The store's read snapshot as the IMAP core reads it.
pub struct SnapRead<'a, 's>(pub &'a Snapshot<'s>);

impl MailRead for SnapRead<'_, '_> {
    fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.0.user(name)
    }
    fn mailboxes(&self, user: UserId) -> Result<Vec<Mailbox>, StoreError> {
        self.0.mailboxes(user)
    }
    fn mailbox(&self, user: UserId, name: &str) -> Result<Option<Mailbox>, StoreError> {
        self.0.mailbox(user, name)
    }
    fn metadata(&self, user: UserId, mailbox: MailboxId) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.0.metadata(user, mailbox)
    }
    fn subscriptions(&self, user: UserId) -> Result<Vec<String>, StoreError> {
        self.0.subscriptions(user)
    }
    fn mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>, StoreError> {
        self.0.mailbox_by_id(id)
    }
    fn each_message(&self, mailbox: MailboxId, f: &mut dyn FnMut(Uid, &MessageRecord)) -> Result<(), StoreError> {
        for item in self.0.messages(mailbox)? {
            let (uid, record) = item?;
            f(uid, &record);
        }
        Ok(())
    }
    fn each_message_from(
        &self,
        mailbox: MailboxId,
        from: Uid,
        f: &mut dyn FnMut(Uid, &MessageRecord) -> bool,
    ) -> Result<(), StoreError> {
        for item in self.0.messages_from(mailbox, from)? {
            let (uid, record) = item?;
            if !f(uid, &record) {
                break;
            }
        }
        Ok(())
    }
    fn each_uid(&self, mailbox: MailboxId, f: &mut dyn FnMut(Uid)) -> Result<(), StoreError> {
        for uid in self.0.message_uids(mailbox)? {
            f(uid?);
        }
        Ok(())
    }
    fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageRecord>, StoreError> {
        self.0.message(mailbox, uid)
    }
    fn structure(&self, body: BodyId) -> Result<Option<Structure>, StoreError> {
        self.0.structure(body)
    }
    fn body(&self, body: BodyId) -> Result<Box<dyn MessageBytes + '_>, StoreError> {
        let chunks = self.0.mapped_body(body)?.collect::<Result<Vec<_>, _>>()?;
        let len = chunks.iter().map(|c| c.len()).sum();
        Ok(Box::new(Chunks { chunks, len }))
    }
    fn expunged_since(&self, mailbox: &Mailbox, since: u64) -> Result<Expunged, StoreError> {
        self.0.expunged_since(mailbox, since)
    }
    fn flag_counts(&self, mailbox: &Mailbox) -> Result<FlagCounts, StoreError> {
        Ok(mailbox.flag_counts.clone())
    }
    fn each_unseen(&self, mailbox: MailboxId, f: &mut dyn FnMut(Uid) -> bool) -> Result<(), StoreError> {
        self.0.each_unseen(mailbox, f)
    }
    fn changed_since(&self, mailbox: MailboxId, since: u64) -> Result<Vec<Uid>, StoreError> {
        self.0.changed_since(mailbox, since)
    }
    fn usage(&self, user: UserId) -> Result<Usage, StoreError> {
        self.0.usage(user)
    }
    fn urlauth_key(&self, user: UserId, mailbox: MailboxId) -> Result<Option<AccessKey>, StoreError> {
        self.0.urlauth_key(user, mailbox)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::{Store, WriteOp};

    /// A store with bob and `n` messages in his INBOX; the INBOX's id.
    fn bob_with(n: u32) -> (tempfile::TempDir, Store, MailboxId) {
        use crate::store::NewUser;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        use crate::auth::scram::{ScramCredentials, ScramKeys};
        let scram = ScramCredentials::derive("pw", b"salt", 4096).unwrap();
        let user = NewUser {
            name: "bob".into(),
            password_hash: "x".into(),
            scram,
            admin: false,
        };
        store.write_blocking(WriteOp::AddUser(user)).unwrap();
        let mut inbox = 0;
        for i in 1..=n {
            inbox = deliver(&store, format!("A: b\r\n\r\n{i}\r\n").into_bytes()).0;
        }
        (dir, store, inbox)
    }

    /// Delivers `message` to bob's INBOX: the INBOX's id and the message's body.
    fn deliver(store: &Store, message: Vec<u8>) -> (MailboxId, BodyId) {
        use crate::store::{Recipient, WriteOutcome};
        let (message, structure) = crate::mime::ingest(message).unwrap();
        let op = WriteOp::Deliver {
            message: message.into(),
            structure: std::sync::Arc::new(structure),
            recipients: vec![Recipient {
                user: "bob".into(),
                mailbox: "INBOX".into(),
            }],
        };
        let WriteOutcome::Delivered(d) = store.write_blocking(op).unwrap() else {
            panic!("not delivered")
        };
        let delivered = d[0].as_ref().unwrap();
        let snapshot = store.snapshot().unwrap();
        let record = snapshot.message(delivered.mailbox, delivered.uid).unwrap().unwrap();
        (delivered.mailbox, record.body_id)
    }

    /// A body of several chunks gives exactly the bytes of any range, copied or referred to
    /// (every piece at the place it was asked for), and referred pieces outlive the snapshot.
    #[test]
    fn a_body_gives_any_range_copied_or_referred() {
        use crate::imap::view::Referred;
        use crate::store::CHUNK_SIZE;
        let (_dir, store, _) = bob_with(0);
        let text: Vec<u8> = (0..2 * CHUNK_SIZE / 40 + 10)
            .flat_map(|i| format!("{i:>38}\r\n").into_bytes())
            .collect();
        let whole = [b"A: b\r\n\r\n".as_slice(), &text].concat();
        let (_, body) = deliver(&store, whole.clone());
        let len = whole.len();
        let ranges = [
            (0, len),
            (0, 0),
            (CHUNK_SIZE - 1, CHUNK_SIZE + 1),
            (CHUNK_SIZE, 2 * CHUNK_SIZE),
            (10, len - 1),
            (len - 3, len),
            (len - 3, len + 10),
        ];
        let mut referred = Referred::default();
        {
            let snapshot = store.snapshot().unwrap();
            let read = SnapRead(&snapshot);
            let bytes = read.body(body).unwrap();
            assert_eq!(bytes.len(), len);
            for (n, &(a, b)) in ranges.iter().enumerate() {
                let mut out = Vec::new();
                bytes.copy(a..b, &mut out);
                assert_eq!(out, whole[a.min(len)..b.min(len)], "copied {a}..{b}");
                let mark = referred.mark();
                let within = bytes.refer(a..b, n, &mut referred);
                assert_eq!(within, b <= len, "referred {a}..{b}");
                if !within {
                    assert_eq!(referred.mark(), mark, "nothing noted for {a}..{b}");
                }
            }
        }
        // The snapshot is gone and the message too: the pieces still read as they did.
        let snapshot = store.snapshot().unwrap();
        let uids: Vec<_> = snapshot.messages(1).unwrap().map(|m| m.unwrap().0).collect();
        drop(snapshot);
        store.write_blocking(WriteOp::Expunge { mailbox: 1, uids }).unwrap();
        let total: usize = ranges.iter().filter(|r| r.1 <= len).map(|r| r.1 - r.0).sum();
        assert_eq!(referred.len(), total);
        let mut got = vec![Vec::new(); ranges.len()];
        for (at, piece) in referred.take() {
            got[at].extend_from_slice(&piece);
        }
        for (n, &(a, b)) in ranges.iter().enumerate().filter(|(_, r)| r.1 <= len) {
            assert_eq!(got[n], whole[a..b], "referred {a}..{b}");
        }
        assert!(referred.is_empty());
    }

    #[test]
    fn a_scan_resumes_at_a_uid_and_stops_when_told() {
        let (_dir, store, inbox) = bob_with(6);
        let snapshot = store.snapshot().unwrap();
        let read = SnapRead(&snapshot);
        let from = |uid, take: usize| {
            let mut seen = Vec::new();
            read.each_message_from(inbox, uid, &mut |u, _| {
                seen.push(u);
                seen.len() < take
            })
            .unwrap();
            seen
        };
        assert_eq!(from(3, 2), [3, 4]);
        assert_eq!(from(5, 10), [5, 6]);
        assert_eq!(from(0, 1), [1]);
        assert!(from(7, 10).is_empty());
    }
}
