//! What the sessions of one core share: the current `UidView` of each selected mailbox (one
//! `Rc` for every session of that mailbox) and the change notifications that wake IDLE, fed
//! by the store's change feed. Nothing here crosses cores.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use tokio::sync::Notify;

use crate::imap::view::{Chunks, MailRead, MessageBytes, UidView, Views};
use crate::mime::Structure;
use crate::store::modseq::Expunged;
use crate::store::records::{BodyId, MailboxId, Uid, Usage, UserId};
use crate::store::urlauth::AccessKey;
use crate::store::{Mailbox, MessageRecord, Snapshot, Store, StoreError, User};

#[derive(Default)]
pub struct Core {
    views: RefCell<CoreViews>,
    watchers: RefCell<HashMap<MailboxId, Rc<Notify>>>,
    /// NOTIFY sessions (RFC 5465) watch every mailbox of their user, and the subscriptions.
    user_watchers: RefCell<HashMap<UserId, Rc<Notify>>>,
}

/// Cached views, each valid for one HIGHESTMODSEQ of its mailbox, and the keyword lists the
/// sessions of a mailbox share (DESIGN.md §4: nothing per mailbox copied per session).
#[derive(Default)]
pub struct CoreViews {
    map: HashMap<MailboxId, Rc<UidView>>,
    keywords: HashMap<MailboxId, Rc<Vec<String>>>,
}

impl Views for CoreViews {
    fn current(&mut self, store: &dyn MailRead, mailbox: &Mailbox) -> Result<Rc<UidView>, StoreError> {
        if let Some(v) = self.map.get(&mailbox.id) {
            if v.highest_modseq == mailbox.highest_modseq {
                return Ok(v.clone());
            }
        }
        let view = Rc::new(UidView::load(store, mailbox)?);
        // Views nobody holds any more are dropped on the way.
        if self.map.len() > 64 {
            self.map.retain(|_, v| Rc::strong_count(v) > 1);
        }
        self.map.insert(mailbox.id, view.clone());
        Ok(view)
    }

    fn shared_keywords(&mut self, mailbox: MailboxId, keywords: Vec<String>) -> Rc<Vec<String>> {
        if let Some(shared) = self.keywords.get(&mailbox).filter(|k| ***k == keywords) {
            return shared.clone();
        }
        if self.keywords.len() > 64 {
            self.keywords.retain(|_, k| Rc::strong_count(k) > 1);
        }
        let shared = Rc::new(keywords);
        self.keywords.insert(mailbox, shared.clone());
        shared
    }
}

impl Core {
    /// Starts the task that turns the store's change feed into wake-ups on this core.
    pub fn start(store: &Store) -> Rc<Core> {
        let core = Rc::new(Core::default());
        let mut feed = store.subscribe();
        let weak = Rc::downgrade(&core);
        crate::runtime::io::spawn(async move {
            while let Some(changes) = feed.recv().await {
                let Some(core) = weak.upgrade() else {
                    return;
                };
                let watchers = core.watchers.borrow();
                let user_watchers = core.user_watchers.borrow();
                for change in changes.iter() {
                    if let Some(n) = watchers.get(&change.mailbox) {
                        n.notify_waiters();
                    }
                    if let Some(n) = user_watchers.get(&change.user) {
                        n.notify_waiters();
                    }
                }
            }
        });
        core
    }

    pub fn views(&self) -> std::cell::RefMut<'_, CoreViews> {
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
    fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageRecord>, StoreError> {
        self.0.message(mailbox, uid)
    }
    fn structure(&self, body: BodyId) -> Result<Option<Structure>, StoreError> {
        self.0.structure(body)
    }
    fn body(&self, body: BodyId) -> Result<Box<dyn MessageBytes + '_>, StoreError> {
        let chunks = self.0.body(body, 0)?.collect::<Result<Vec<&[u8]>, _>>()?;
        let len = chunks.iter().map(|c| c.len()).sum();
        Ok(Box::new(Chunks { chunks, len }))
    }
    fn expunged_since(&self, mailbox: &Mailbox, since: u64) -> Result<Expunged, StoreError> {
        self.0.expunged_since(mailbox, since)
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

    #[test]
    fn a_scan_resumes_at_a_uid_and_stops_when_told() {
        use crate::store::{NewUser, Recipient, WriteOp, WriteOutcome};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let scram = crate::auth::scram::ScramCredentials::derive("pw", b"salt", 4096).unwrap();
        let user = NewUser {
            name: "bob".into(),
            password_hash: "x".into(),
            scram,
            admin: false,
        };
        store.write_blocking(WriteOp::AddUser(user)).unwrap();
        let mut inbox = 0;
        for i in 1..=6 {
            let (message, structure) = crate::mime::ingest(format!("A: b\r\n\r\n{i}\r\n").into_bytes()).unwrap();
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
            inbox = d[0].as_ref().unwrap().mailbox;
        }
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

    /// RFC 7162 §3.2.5.1: once the expunge log forgot, VANISHED (EARLIER) names every UID
    /// below UIDNEXT that is not there, rather than the few the log still has.
    #[test]
    fn a_forgotten_expunge_log_vanishes_the_whole_known_range() {
        use crate::store::{NewUser, Recipient, WriteOp, WriteOutcome};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let scram = crate::auth::scram::ScramCredentials::derive("pw", b"salt", 4096).unwrap();
        let user = NewUser {
            name: "bob".into(),
            password_hash: "x".into(),
            scram,
            admin: false,
        };
        store.write_blocking(WriteOp::AddUser(user)).unwrap();
        let keep = crate::store::modseq::EXPUNGE_LOG_KEEP;
        let mut inbox = 0;
        for i in 0..2 * keep + 4 {
            let (message, structure) = crate::mime::ingest(format!("A: b\r\n\r\n{i}\r\n").into_bytes()).unwrap();
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
            inbox = d[0].as_ref().unwrap().mailbox;
        }
        let before = store.snapshot().unwrap().mailbox_by_id(inbox).unwrap().unwrap();
        // Every other message, one expunge at a time, past what the log keeps.
        for uid in (2..=2 * keep + 2).step_by(2) {
            let op = WriteOp::Expunge {
                mailbox: inbox,
                uids: vec![uid],
            };
            store.write_blocking(op).unwrap();
        }
        let snapshot = store.snapshot().unwrap();
        let read = SnapRead(&snapshot);
        let mailbox = snapshot.mailbox_by_id(inbox).unwrap().unwrap();
        assert!(
            mailbox.expunge_floor > before.highest_modseq,
            "the log was trimmed: {mailbox:?}"
        );
        let gone: Vec<Uid> = (2..=2 * keep + 2).step_by(2).collect();
        let vanished = crate::imap::view::vanished_since(&read, &mailbox, before.highest_modseq).unwrap();
        assert_eq!(vanished, gone);
        // Recent enough for the log: only what it recorded since.
        let recent = crate::imap::view::vanished_since(&read, &mailbox, mailbox.highest_modseq - 1).unwrap();
        assert_eq!(recent, [*gone.last().unwrap()]);
    }

    #[test]
    fn sessions_of_a_mailbox_share_its_keyword_list() {
        let mut views = CoreViews::default();
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
