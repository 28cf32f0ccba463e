//! The single writer thread. LMDB allows one write transaction at a time, so every mutation is a
//! request on a channel to this thread. It takes whatever is queued, applies each request in a
//! nested transaction (so one failing request leaves no trace while the others stand), commits
//! the batch once with fsync (group commit), and only then answers each request and publishes
//! the changes to the feed. Between batches it keeps zeros written ahead of the end of the
//! data file (`room`), so that a commit makes only its pages durable, not a larger file.

use std::sync::{mpsc, Arc};

use heed::RwTxn;

use super::feed::{Change, Feed};
use super::messages::FlagsChanged;
use super::queue::{self, Bounce, NewQueueEntry, QueueId, QueueUpdate, Refused};
use super::records::ScramCredentials;
use super::records::{FlagMode, Mailbox, MailboxId, SpecialUse, Uid, User, UserId};
use super::room::Room;
use super::stage::{self, Staged};
use super::{mailboxes, messages, users, Inner, StoreError, Tables};
use crate::mime::Structure;
use crate::spool::Spooled;

/// Requests taken into one transaction at most; bounds the latency of the first one.
const MAX_BATCH: usize = 512;

/// \Recent claims are persisted with the next commit, or after this long without one.
pub(crate) const RECENT_FLUSH: std::time::Duration = std::time::Duration::from_millis(500);

pub(crate) struct Job {
    pub op: WriteOp,
    pub reply: tokio::sync::oneshot::Sender<Result<WriteOutcome, StoreError>>,
}

pub(crate) type Reply = tokio::sync::oneshot::Receiver<Result<WriteOutcome, StoreError>>;

#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub password_hash: String,
    pub scram: ScramCredentials,
    pub admin: bool,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub password: Option<(String, ScramCredentials)>,
    pub admin: Option<bool>,
    pub pop: Option<bool>,
    pub imap: Option<bool>,
    pub smtp: Option<bool>,
    pub quota: Option<Option<u64>>,
    pub home: Option<Option<String>>,
    pub imap_disabled: Option<Vec<String>>,
}

/// One message of an APPEND, parsed and ready to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub message: Vec<u8>,
    pub structure: Arc<Structure>,
    pub flags: u8,
    pub keywords: Vec<String>,
    pub internal_date: Option<i64>,
}

/// A message from another server, at the UID it had there.
#[derive(Debug)]
pub struct ImportedMessage {
    pub uid: Uid,
    pub message: NewMessage,
    /// The POP3 UIDL it had there, to keep (when not ringmail's own `UIDVALIDITY.UID`).
    pub pop3_uidl: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Recipient {
    pub user: String,
    pub mailbox: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub mailbox: MailboxId,
    pub uid: Uid,
}

#[derive(Debug)]
pub enum WriteOp {
    AddUser(NewUser),
    UpdateUser {
        name: String,
        patch: UserPatch,
    },
    DeleteUser {
        name: String,
    },
    /// One message to several recipients: the body is stored once and shared.
    Deliver {
        message: Spooled,
        structure: Arc<Structure>,
        recipients: Vec<Recipient>,
    },
    /// Removes these UIDs (those still present) from a mailbox.
    Expunge {
        mailbox: MailboxId,
        uids: Vec<Uid>,
    },
    /// APPEND (or MULTIAPPEND): all of the messages or none (RFC 3502 §6.3.11).
    Append {
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    },
    /// IMAP REPLACE (RFC 8508): `message` into `to` and `uid` out of `from`, all or nothing; fails
    /// with nothing written when `uid` is gone already.
    Replace {
        from: MailboxId,
        uid: Uid,
        to: MailboxId,
        message: NewMessage,
    },
    StoreFlags {
        mailbox: MailboxId,
        uids: Vec<Uid>,
        mode: FlagMode,
        flags: u8,
        keywords: Vec<String>,
        unchanged_since: Option<u64>,
    },
    /// COPY, or MOVE when `expunge_source`.
    Copy {
        from: MailboxId,
        uids: Vec<Uid>,
        to: MailboxId,
        expunge_source: bool,
    },
    CreateMailbox {
        user: UserId,
        name: String,
        special_use: Option<SpecialUse>,
    },
    /// Messages from another server at the UIDs they had there (`messages::import`).
    Import {
        user: UserId,
        name: String,
        /// The source's; `None` (a source that kept none) keeps the mailbox's own.
        uid_validity: Option<u32>,
        uid_next: Uid,
        messages: Vec<ImportedMessage>,
    },
    /// One step of a mailbox brought over exactly from another store (`restore`).
    Restore {
        user: UserId,
        mailbox: super::restore::MailboxState,
        step: super::restore::RestoreStep,
    },
    /// The end of a pass of `restore`: mailbox names, subscriptions and METADATA as the
    /// source has them.
    RestoreUser {
        user: UserId,
        state: super::restore::UserState,
    },
    DeleteMailbox {
        user: UserId,
        name: String,
    },
    RenameMailbox {
        user: UserId,
        from: String,
        to: String,
    },
    Subscribe {
        user: UserId,
        name: String,
        subscribed: bool,
    },
    /// A submitted message: delivered to local recipients and queued for remote ones, in one
    /// transaction (RFC 6409: one reply for the whole message).
    Submit {
        message: Spooled,
        structure: Arc<Structure>,
        local: Vec<Recipient>,
        queue: Option<NewQueueEntry>,
        /// RFC 3461 NOTIFY=SUCCESS: the "delivered" report for the submitter's INBOX.
        report: Option<Bounce>,
    },
    /// The outcome of one delivery attempt of a queued message.
    QueueAttempted {
        id: QueueId,
        update: QueueUpdate,
    },
    QueueDelete {
        id: QueueId,
    },
    /// Every queued message becomes due now.
    QueueFlush,
    /// Nothing but a commit: what the writer persists with every commit (\Recent claims) is
    /// on disk once this is answered.
    Flush,
    /// `ringmail fsck --repair`: checks every invariant and fixes what it can, in one
    /// transaction.
    Repair,
    /// SETMETADATA (RFC 5464 §4.3): every entry set (`Some`) or removed (`None`), or none;
    /// mailbox 0 holds the server entries.
    SetMetadata {
        user: UserId,
        mailbox: MailboxId,
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// GENURLAUTH (RFC 4467 §6.2): the access keys of these mailboxes of `user`, each made
    /// where it is missing.
    UrlauthKeys {
        user: UserId,
        mailboxes: Vec<MailboxId>,
    },
    /// RESETKEY (RFC 4467 §6.1): a new access key for `mailbox`, or, without one, none left for
    /// any mailbox of `user`.
    ResetUrlauthKeys {
        user: UserId,
        mailbox: Option<MailboxId>,
    },
}

#[derive(Debug)]
pub enum WriteOutcome {
    User(User),
    Done,
    /// One result per recipient, in order.
    Delivered(Vec<Result<Delivered, StoreError>>),
    Expunged(Vec<Uid>),
    /// APPEND (and REPLACE): UIDVALIDITY and the new UIDs (RFC 4315 APPENDUID).
    Appended {
        uid_validity: u32,
        uids: Vec<Uid>,
    },
    /// STORE: new flags of the messages touched, and UIDs refused by UNCHANGEDSINCE.
    Flags {
        changed: Vec<FlagsChanged>,
        modified: Vec<Uid>,
    },
    /// COPY/MOVE: the target's UIDVALIDITY and (source, new) UID pairs (RFC 4315 COPYUID).
    Copied {
        uid_validity: u32,
        pairs: Vec<(Uid, Uid)>,
    },
    Mailbox(Mailbox),
    /// Import: messages added, and skipped as there already.
    Imported {
        added: usize,
        skipped: usize,
    },
    /// A submission: its queue id when it has remote recipients, or the local recipient
    /// that refused it (nothing was written then).
    Submitted(Result<Option<QueueId>, Refused>),
    /// QueueDelete: whether there was such an entry; QueueFlush: how many entries there are.
    Queue(usize),
    /// UrlauthKeys: one key per mailbox asked for, in order.
    UrlauthKeys(Vec<super::urlauth::AccessKey>),
    /// Repair: what was found, and how many findings were fixed.
    Repaired {
        report: super::check::Report,
        repaired: usize,
    },
}

pub(crate) fn spawn(inner: Arc<Inner>, feed: Arc<Feed>) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    let room = Room::open(inner.env)
        .inspect_err(|e| tracing::warn!("no room kept ahead of the store's file ({e}): commits grow it themselves"))
        .ok();
    std::thread::Builder::new()
        .name("ringmail-writer".into())
        .spawn(move || run(&inner, &feed, rx, room))?;
    Ok(tx)
}

fn run(inner: &Inner, feed: &Feed, rx: mpsc::Receiver<Job>, mut room: Option<Room>) {
    // A request taken while looking whether any was waiting.
    let mut next = None;
    loop {
        let first = match next.take().map_or_else(|| rx.recv_timeout(RECENT_FLUSH), Ok) {
            Ok(job) => job,
            Err(e) => {
                // Idle for a while, or shutting down: \Recent claims made since the last
                // commit are persisted now.
                if inner.recent.has_dirty() {
                    commit_batch(inner, feed, Vec::new());
                }
                if e == mpsc::RecvTimeoutError::Disconnected {
                    return;
                }
                continue;
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(inner, feed, batch);
        next = rx.try_recv().ok();
        if let Some(r) = &room {
            if let Err(e) = r.make(inner.env, next.is_some()) {
                tracing::warn!("no more room kept ahead of the store's file ({e}): commits grow it themselves");
                room = None;
            }
        }
    }
}

/// Told of every commit: how many writes it held and how long it took (the metrics).
static COMMIT_OBSERVER: std::sync::OnceLock<fn(usize, std::time::Duration)> = std::sync::OnceLock::new();

/// Has `observer` told of every commit from now on (once per process; later calls are
/// ignored).
pub fn observe_commits(observer: fn(usize, std::time::Duration)) {
    let _ = COMMIT_OBSERVER.set(observer);
}

fn commit_batch(inner: &Inner, feed: &Feed, batch: Vec<Job>) {
    let began = std::time::Instant::now();
    let writes = batch.len();
    let mut results = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    let mut changes = Vec::new();
    let marks = inner.recent.take_dirty();
    // Large bodies first, in commits of their own (see `stage`).
    let staged: Vec<Result<Staged, StoreError>> = batch.iter().map(|job| stage::stage(inner, &job.op)).collect();
    let committed = (|| -> Result<(), StoreError> {
        let mut wtxn = inner.env.write_txn()?;
        for (job, staged) in batch.into_iter().zip(staged) {
            replies.push(job.reply);
            let staged = match staged {
                Ok(staged) => staged,
                Err(e) => {
                    results.push(Err(e));
                    continue;
                }
            };
            let mut child = inner.env.nested_write_txn(&mut wtxn)?;
            let mut job_changes = Vec::new();
            match apply(&inner.t, &mut child, (job.op, staged), &mut job_changes) {
                Ok(outcome) => {
                    child.commit()?;
                    changes.append(&mut job_changes);
                    results.push(Ok(outcome));
                }
                Err(e) => {
                    child.abort();
                    results.push(Err(e));
                }
            }
            stage::settle(&inner.t, &mut wtxn, staged)?;
        }
        for (mailbox, mark) in &marks {
            messages::persist_recent(&inner.t, &mut wtxn, *mailbox, *mark)?;
        }
        wtxn.commit()?;
        Ok(())
    })();
    match committed {
        Ok(()) => {
            inner.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(observe) = COMMIT_OBSERVER.get() {
                observe(writes, began.elapsed());
            }
            for change in changes
                .iter()
                .filter(|c| c.kind == super::feed::ChangeKind::MailboxDeleted)
            {
                inner.recent.forget(change.mailbox);
            }
            // Published before the replies: whoever hears OK can count on the feed having it.
            feed.publish(changes);
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!("store commit failed: {e}");
            inner.recent.put_back(&marks);
            for reply in replies {
                let _ = reply.send(Err(StoreError::Io(std::io::Error::other(e.to_string()))));
            }
        }
    }
}

/// Applies one operation; `staged` says which of its bodies the writer wrote ahead.
fn apply(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    (op, staged): (WriteOp, Staged),
    changes: &mut Vec<Change>,
) -> Result<WriteOutcome, StoreError> {
    match op {
        WriteOp::AddUser(new) => users::add_user(t, txn, new, changes).map(WriteOutcome::User),
        WriteOp::UpdateUser { name, patch } => users::update_user(t, txn, &name, patch).map(WriteOutcome::User),
        WriteOp::DeleteUser { name } => users::delete_user(t, txn, &name).map(|()| WriteOutcome::Done),
        WriteOp::Deliver {
            message,
            structure,
            recipients,
        } => messages::deliver(t, txn, (&message, staged.body), &structure, &recipients, changes)
            .map(WriteOutcome::Delivered),
        WriteOp::Expunge { mailbox, uids } => {
            messages::expunge(t, txn, mailbox, &uids, changes).map(WriteOutcome::Expunged)
        }
        WriteOp::Append { mailbox, messages } => messages::append(t, txn, mailbox, messages, changes)
            .map(|(uid_validity, uids)| WriteOutcome::Appended { uid_validity, uids }),
        WriteOp::Replace { from, uid, to, message } => messages::replace(t, txn, (from, uid), to, message, changes)
            .map(|(uid_validity, uid)| WriteOutcome::Appended {
                uid_validity,
                uids: vec![uid],
            }),
        WriteOp::StoreFlags {
            mailbox,
            uids,
            mode,
            flags,
            keywords,
            unchanged_since,
        } => messages::store_flags(
            t,
            txn,
            mailbox,
            &uids,
            (mode, flags, &keywords),
            unchanged_since,
            changes,
        )
        .map(|(changed, modified)| WriteOutcome::Flags { changed, modified }),
        WriteOp::Copy {
            from,
            uids,
            to,
            expunge_source,
        } => messages::copy(t, txn, (from, &uids), to, expunge_source, changes)
            .map(|(uid_validity, pairs)| WriteOutcome::Copied { uid_validity, pairs }),
        WriteOp::CreateMailbox {
            user,
            name,
            special_use,
        } => mailboxes::create(t, txn, user, &name, special_use, changes).map(WriteOutcome::Mailbox),
        WriteOp::Import {
            user,
            name,
            uid_validity,
            uid_next,
            messages,
        } => messages::import(t, txn, (user, &name), (uid_validity, uid_next), messages, changes)
            .map(|(added, skipped)| WriteOutcome::Imported { added, skipped }),
        WriteOp::Restore { user, mailbox, step } => {
            super::restore::step(t, txn, (user, &mailbox), step, changes).map(|()| WriteOutcome::Done)
        }
        WriteOp::RestoreUser { user, state } => {
            super::restore::user(t, txn, user, &state, changes).map(|()| WriteOutcome::Done)
        }
        WriteOp::DeleteMailbox { user, name } => {
            mailboxes::delete(t, txn, user, &name, changes).map(|()| WriteOutcome::Done)
        }
        WriteOp::RenameMailbox { user, from, to } => {
            mailboxes::rename(t, txn, user, (&from, &to), changes).map(|()| WriteOutcome::Done)
        }
        WriteOp::Subscribe { user, name, subscribed } => {
            mailboxes::subscribe(t, txn, user, (&name, subscribed), changes).map(|()| WriteOutcome::Done)
        }
        WriteOp::Submit {
            message,
            structure,
            local,
            queue,
            report,
        } => queue::submit(t, txn, (&message, &structure, staged), &local, (queue, report), changes)
            .map(WriteOutcome::Submitted),
        WriteOp::QueueAttempted { id, update } => {
            queue::attempted(t, txn, id, update, changes).map(|()| WriteOutcome::Done)
        }
        WriteOp::QueueDelete { id } => queue::delete(t, txn, id).map(|found| WriteOutcome::Queue(usize::from(found))),
        WriteOp::QueueFlush => queue::flush(t, txn).map(WriteOutcome::Queue),
        WriteOp::Flush => Ok(WriteOutcome::Done),
        WriteOp::Repair => {
            let report = super::check::inspect(t, txn)?;
            let repaired = super::check::repair(t, txn, &report)?;
            Ok(WriteOutcome::Repaired { report, repaired })
        }
        WriteOp::SetMetadata { user, mailbox, entries } => {
            super::metadata::set(t, txn, user, mailbox, &entries).map(|()| WriteOutcome::Done)
        }
        WriteOp::UrlauthKeys { user, mailboxes } => {
            super::urlauth::get_or_make(t, txn, user, &mailboxes).map(WriteOutcome::UrlauthKeys)
        }
        WriteOp::ResetUrlauthKeys { user, mailbox } => {
            super::urlauth::reset(t, txn, user, mailbox).map(|()| WriteOutcome::Done)
        }
    }
}
