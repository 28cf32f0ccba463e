//! Scripted IMAP sessions without sockets: an in-memory store behind the read trait, which
//! also makes the changes a writer would (and the typed changes its feed would carry), and
//! sessions driven one command line at a time at a virtual clock.
//!
//! The store counts the message records it hands out, so a test can show how much a command
//! or a change cost. Its `changed_since` stands for the store's modseq index: it answers
//! without counting, as the index answers without reading records.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::limit::MessageLimit;
use super::session::{Action, Ctx, Selected, Session, Settings, State};
use super::sync::RecentUids;
use super::view::{MailRead, MessageBytes, UidView, Views};
use crate::config::LoginType;
use crate::mime::Structure;
use crate::store::modseq::Expunged;
use crate::store::recent::RecentClaims;
use crate::store::records::{flags, BodyId, MailboxId, Uid, Usage, UserId};
use crate::store::urlauth::AccessKey;
use crate::store::{Change, ChangeKind, Mailbox, MessageRecord, StoreError, User};

pub const INBOX: MailboxId = 5;

/// One mailbox, INBOX of user 1. Message `uid` has body `uid % bodies.len()`; every tenth
/// message is \Flagged. Delivered messages get modseqs 1, 2, ... (so, until something else
/// changes, a message's modseq is its UID).
pub struct MemStore {
    pub messages: BTreeMap<Uid, MessageRecord>,
    /// Records handed out by whole-mailbox walks (`each_message`, `each_message_from`).
    pub walked: Cell<usize>,
    /// Records read one by one (`message`).
    pub looked_up: Cell<usize>,
    bodies: Vec<(Vec<u8>, Structure)>,
    uid_next: Uid,
    highest_modseq: u64,
    /// (modseq, UIDs expunged at it).
    expunged: Vec<(u64, Vec<Uid>)>,
    /// The expunge log forgot what was expunged at or below this modseq (`store::modseq`).
    pub expunge_floor: u64,
}

impl MemStore {
    /// `n` messages, UIDs 1 to n, over the given bodies in turn.
    pub fn new(n: u32, bodies: &[String]) -> MemStore {
        let bodies: Vec<(Vec<u8>, Structure)> = bodies
            .iter()
            .map(|b| crate::mime::ingest(b.as_bytes().to_vec()).unwrap())
            .collect();
        let mut store = MemStore {
            messages: BTreeMap::new(),
            walked: Cell::default(),
            looked_up: Cell::default(),
            bodies,
            uid_next: 1,
            highest_modseq: 0,
            expunged: Vec::new(),
            expunge_floor: 0,
        };
        for _ in 0..n {
            store.deliver();
        }
        store
    }

    /// Records read so far, both ways.
    pub fn reads(&self) -> usize {
        self.walked.get() + self.looked_up.get()
    }

    fn change(&self, kind: ChangeKind) -> Change {
        Change {
            user: 1,
            mailbox: INBOX,
            highest_modseq: self.highest_modseq,
            kind,
        }
    }

    /// A new message at the next UID.
    pub fn deliver(&mut self) -> Uid {
        self.deliver_change();
        self.uid_next - 1
    }

    /// `deliver`, and the change the feed would carry.
    pub fn deliver_change(&mut self) -> Change {
        let uid = self.uid_next;
        self.uid_next += 1;
        self.highest_modseq += 1;
        let body_id = BodyId::from(uid) % self.bodies.len() as BodyId;
        let record = MessageRecord {
            flags: if uid.is_multiple_of(10) { flags::FLAGGED } else { 0 },
            internal_date: 1_700_000_000 + i64::from(uid),
            save_date: 1_700_000_000,
            size: self.bodies[body_id as usize].0.len() as u64,
            modseq: self.highest_modseq,
            body_id,
            keywords: Vec::new(),
        };
        self.messages.insert(uid, record);
        self.change(ChangeKind::Added { uid })
    }

    /// Toggles \Seen on `uid`, as a STORE would.
    pub fn toggle_seen(&mut self, uid: Uid) -> Change {
        self.highest_modseq += 1;
        let modseq = self.highest_modseq;
        let record = self.messages.get_mut(&uid).expect("a message to flag");
        record.flags ^= flags::SEEN;
        record.modseq = modseq;
        self.change(ChangeKind::Flags { uid, modseq })
    }

    /// Removes `uids`, as an EXPUNGE would.
    pub fn expunge(&mut self, uids: &[Uid]) -> Change {
        self.highest_modseq += 1;
        let gone: Vec<Uid> = uids
            .iter()
            .copied()
            .filter(|u| self.messages.remove(u).is_some())
            .collect();
        self.expunged.push((self.highest_modseq, gone.clone()));
        self.change(ChangeKind::Expunged { uids: gone })
    }

    pub fn inbox(&self) -> Mailbox {
        Mailbox {
            uid_next: self.uid_next,
            highest_modseq: self.highest_modseq,
            messages: self.messages.len() as u32,
            first_recent_uid: self.uid_next,
            ..Mailbox::new(INBOX, 1, "INBOX", 9, None)
        }
    }

    /// The client's view of INBOX as it is now.
    pub fn selected(&self) -> Selected {
        Selected {
            mailbox: INBOX,
            read_only: true,
            view: Rc::new(UidView::new(self.messages.keys().copied().collect(), 1)),
            known_modseq: 1,
            cursor: None,
            recent: RecentUids::default(),
            keywords: Rc::new(Vec::new()),
            saved: thin_vec::ThinVec::new(),
            contexts: Default::default(),
        }
    }
}

impl MailRead for MemStore {
    fn user(&self, _: &str) -> Result<Option<User>, StoreError> {
        Ok(None)
    }
    fn mailboxes(&self, _: UserId) -> Result<Vec<Mailbox>, StoreError> {
        Ok(vec![self.inbox()])
    }
    fn metadata(&self, _: UserId, _: MailboxId) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(Vec::new())
    }
    fn subscriptions(&self, _: UserId) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    fn mailbox(&self, user: UserId, name: &str) -> Result<Option<Mailbox>, StoreError> {
        Ok((user == 1 && name == "INBOX").then(|| self.inbox()))
    }
    fn mailbox_by_id(&self, id: MailboxId) -> Result<Option<Mailbox>, StoreError> {
        Ok((id == INBOX).then(|| self.inbox()))
    }
    fn each_message(&self, mailbox: MailboxId, f: &mut dyn FnMut(Uid, &MessageRecord)) -> Result<(), StoreError> {
        if mailbox == INBOX {
            self.walked.set(self.walked.get() + self.messages.len());
            self.messages.iter().for_each(|(uid, record)| f(*uid, record));
        }
        Ok(())
    }
    fn each_message_from(
        &self,
        mailbox: MailboxId,
        from: Uid,
        f: &mut dyn FnMut(Uid, &MessageRecord) -> bool,
    ) -> Result<(), StoreError> {
        if mailbox == INBOX {
            for (uid, record) in self.messages.range(from..) {
                self.walked.set(self.walked.get() + 1);
                if !f(*uid, record) {
                    break;
                }
            }
        }
        Ok(())
    }
    /// As the store's modseq index answers: without walking the mailbox.
    fn changed_since(&self, mailbox: MailboxId, since: u64) -> Result<Vec<Uid>, StoreError> {
        let changed = self.messages.iter().filter(|(_, r)| r.modseq > since);
        Ok(changed.map(|(uid, _)| *uid).filter(|_| mailbox == INBOX).collect())
    }
    fn message(&self, mailbox: MailboxId, uid: Uid) -> Result<Option<MessageRecord>, StoreError> {
        self.looked_up.set(self.looked_up.get() + 1);
        Ok(self.messages.get(&uid).filter(|_| mailbox == INBOX).cloned())
    }
    fn structure(&self, body: BodyId) -> Result<Option<Structure>, StoreError> {
        Ok(self.bodies.get(body as usize).map(|b| b.1.clone()))
    }
    fn body(&self, body: BodyId) -> Result<Box<dyn MessageBytes + '_>, StoreError> {
        Ok(Box::new(self.bodies[body as usize].0.clone()))
    }
    fn expunged_since(&self, _: &Mailbox, since: u64) -> Result<Expunged, StoreError> {
        if since < self.expunge_floor {
            return Ok(Expunged::Forgotten);
        }
        let mut uids: Vec<Uid> = self
            .expunged
            .iter()
            .filter(|(m, _)| *m > since)
            .flat_map(|(_, u)| u.iter().copied())
            .collect();
        uids.sort_unstable();
        Ok(Expunged::Known(uids))
    }
    fn usage(&self, _: UserId) -> Result<Usage, StoreError> {
        Ok(Usage::default())
    }
    fn urlauth_key(&self, _: UserId, _: MailboxId) -> Result<Option<AccessKey>, StoreError> {
        Ok(None)
    }
}

/// A message of about `size` bytes whose body says `word`.
pub fn body(word: &str, size: usize) -> String {
    let filler = "x".repeat(size.saturating_sub(60));
    format!("Subject: {word}\r\n\r\n{word} {filler}\r\n")
}

/// A session over TLS, not logged in, under `limit`.
pub fn fresh(limit: MessageLimit) -> Session {
    let settings = Settings {
        login_type: LoginType::PlainTextLogin,
        starttls: false,
        max_login_failures: 3,
        max_command_size: 64 * 1024,
        append_limit: 1 << 20,
        message_limit: limit,
        server_name: "test".into(),
        parse: Default::default(),
        timeouts: crate::config::Config::default().imap.timeouts(),
        idle_keepalive: std::time::Duration::from_secs(120),
        oauth: false,
        protocol_log: true,
    };
    Session::new(settings, true)
}

/// A session logged in as bob, not yet in any mailbox.
pub fn logged_in(store: &MemStore, limit: MessageLimit, views: &mut dyn Views) -> Session {
    let mut session = fresh(limit);
    let (_, action) = run_in(&mut session, (store, views), 0, "a LOGIN bob pw\r\n");
    assert!(matches!(action, Action::Login(_)), "{action:?}");
    session.login_result(Ok((1, "bob".into(), Vec::new())), &mut Vec::new());
    session
}

/// A logged-in session with INBOX of `store` selected, under `limit`, sharing nothing.
pub fn selected_session(store: &MemStore, limit: MessageLimit) -> Session {
    selected_in(store, limit, &mut super::view::Unshared)
}

/// `selected_session` with the views of a core.
pub fn selected_in(store: &MemStore, limit: MessageLimit, views: &mut dyn Views) -> Session {
    let mut session = logged_in(store, limit, views);
    let (out, _) = run_in(&mut session, (store, views), 0, "b SELECT INBOX\r\n");
    assert!(out.contains("b OK [READ-WRITE]"), "{out}");
    assert!(matches!(session.state, State::Selected(..)));
    session
}

/// Feeds one command line at `now`; its output and the action.
pub fn run(session: &mut Session, store: &MemStore, now: i64, line: &str) -> (String, Action) {
    run_in(session, (store, &mut super::view::Unshared), now, line)
}

/// `run` with the views of a core.
pub fn run_in(
    session: &mut Session,
    (store, views): (&MemStore, &mut dyn Views),
    now: i64,
    line: &str,
) -> (String, Action) {
    let recent = RecentClaims::default();
    let mut ctx = Ctx {
        store,
        views,
        recent: &recent,
        now,
        referred: None,
    };
    let mut out = Vec::new();
    let (used, action) = session.input(line.as_bytes(), &mut ctx, &mut out);
    assert_eq!(used, line.len());
    (String::from_utf8(out).unwrap(), action)
}

/// Resumes after `Action::Flush` at `now`.
pub fn resume(session: &mut Session, store: &MemStore, now: i64) -> (String, Action) {
    let (recent, mut views) = (RecentClaims::default(), super::view::Unshared);
    let mut ctx = Ctx {
        store,
        views: &mut views,
        recent: &recent,
        now,
        referred: None,
    };
    let mut out = Vec::new();
    let action = session.resume(&mut ctx, &mut out);
    (String::from_utf8(out).unwrap(), action)
}
