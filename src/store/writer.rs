//! The single writer thread. LMDB allows one write transaction at a time, so every mutation is a
//! request on a channel to this thread. It takes whatever is queued, applies each request in a
//! nested transaction (so one failing request leaves no trace while the others stand), commits
//! the batch once with fsync (group commit), and only then answers each request and publishes
//! the changes to the feed.

use std::sync::{mpsc, Arc};
use std::time::{SystemTime, UNIX_EPOCH};

use heed::RwTxn;

use super::feed::{Change, ChangeKind, Feed};
use super::read::{get_mailbox, get_mailbox_by_name, get_usage, get_user};
use super::records::{keys, Mailbox, MailboxId, MessageRecord, Uid, Usage, User, UserId, DEFAULT_MAILBOXES};
use super::{Inner, StoreError, Tables, CHUNK_SIZE};
use crate::auth::scram::ScramCredentials;
use crate::mime::Structure;

/// Requests taken into one transaction at most; bounds the latency of the first one.
const MAX_BATCH: usize = 512;

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
    pub quota: Option<Option<u64>>,
    pub home: Option<Option<String>>,
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
        message: Arc<[u8]>,
        structure: Arc<Structure>,
        recipients: Vec<Recipient>,
    },
    /// Removes these UIDs (those still present) from a mailbox.
    Expunge {
        mailbox: MailboxId,
        uids: Vec<Uid>,
    },
}

#[derive(Debug)]
pub enum WriteOutcome {
    User(User),
    Done,
    /// One result per recipient, in order.
    Delivered(Vec<Result<Delivered, StoreError>>),
    Expunged(Vec<Uid>),
}

pub(crate) fn spawn(inner: Arc<Inner>, feed: Arc<Feed>) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("ringmail-writer".into())
        .spawn(move || run(&inner, &feed, rx))?;
    Ok(tx)
}

fn run(inner: &Inner, feed: &Feed, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(inner, feed, batch);
    }
}

fn commit_batch(inner: &Inner, feed: &Feed, batch: Vec<Job>) {
    let mut results = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    let mut changes = Vec::new();
    let committed = (|| -> Result<(), StoreError> {
        let mut wtxn = inner.env.write_txn()?;
        for job in batch {
            replies.push(job.reply);
            let mut child = inner.env.nested_write_txn(&mut wtxn)?;
            let mut job_changes = Vec::new();
            match apply(&inner.t, &mut child, job.op, &mut job_changes) {
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
        }
        wtxn.commit()?;
        Ok(())
    })();
    match committed {
        Ok(()) => {
            inner.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Published before the replies: whoever hears OK can count on the feed having it.
            feed.publish(changes);
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!("store commit failed: {e}");
            for reply in replies {
                let _ = reply.send(Err(StoreError::Io(std::io::Error::other(e.to_string()))));
            }
        }
    }
}

fn apply(t: &Tables, txn: &mut RwTxn<'_>, op: WriteOp, changes: &mut Vec<Change>) -> Result<WriteOutcome, StoreError> {
    match op {
        WriteOp::AddUser(new) => add_user(t, txn, new).map(WriteOutcome::User),
        WriteOp::UpdateUser { name, patch } => update_user(t, txn, &name, patch).map(WriteOutcome::User),
        WriteOp::DeleteUser { name } => delete_user(t, txn, &name).map(|()| WriteOutcome::Done),
        WriteOp::Deliver {
            message,
            structure,
            recipients,
        } => deliver(t, txn, &message, &structure, &recipients, changes).map(WriteOutcome::Delivered),
        WriteOp::Expunge { mailbox, uids } => expunge(t, txn, mailbox, &uids, changes).map(WriteOutcome::Expunged),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn next_counter(t: &Tables, txn: &mut RwTxn<'_>, name: &str) -> Result<u64, StoreError> {
    let current = t
        .meta
        .get(txn, name.as_bytes())?
        .and_then(|v| v.try_into().ok())
        .map_or(0, u64::from_be_bytes);
    let next = current + 1;
    t.meta.put(txn, name.as_bytes(), &next.to_be_bytes())?;
    Ok(next)
}

/// RFC 3501 §2.3.1.1: UIDVALIDITY must change whenever UIDs could repeat. Time-based and
/// strictly increasing, so a mailbox deleted and created again never gets the same value.
fn next_uid_validity(t: &Tables, txn: &mut RwTxn<'_>) -> Result<u32, StoreError> {
    let last = t
        .meta
        .get(txn, b"last_uid_validity")?
        .and_then(|v| v.try_into().ok())
        .map_or(0, u32::from_be_bytes);
    let value = (now() as u32).max(last + 1);
    t.meta.put(txn, b"last_uid_validity", &value.to_be_bytes())?;
    Ok(value)
}

fn put_json<T: serde::Serialize>(
    table: &super::Table,
    txn: &mut RwTxn<'_>,
    key: &[u8],
    v: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(v).expect("records serialize: plain data only");
    table.put(txn, key, &bytes)?;
    Ok(())
}

fn add_user(t: &Tables, txn: &mut RwTxn<'_>, new: NewUser) -> Result<User, StoreError> {
    if get_user(t, txn, &new.name)?.is_some() {
        return Err(StoreError::UserExists(new.name));
    }
    let id = UserId::try_from(next_counter(t, txn, "next_user_id")?).map_err(|_| StoreError::Corrupt("meta"))?;
    let user = User {
        id,
        name: new.name,
        password_hash: new.password_hash,
        scram: new.scram,
        admin: new.admin,
        pop: true,
        imap: true,
        quota: None,
        home: None,
    };
    put_json(&t.users, txn, user.name.as_bytes(), &user)?;
    t.user_ids.put(txn, &keys::user_id(id), user.name.as_bytes())?;
    t.usage.put(txn, &keys::user_id(id), &Usage::default().encode())?;
    for (name, special_use) in DEFAULT_MAILBOXES {
        let mailbox = Mailbox {
            id: next_counter(t, txn, "next_mailbox_id")?,
            user_id: id,
            name: name.into(),
            uid_validity: next_uid_validity(t, txn)?,
            uid_next: 1,
            highest_modseq: 1,
            special_use,
            subscribed: true,
            messages: 0,
            size: 0,
        };
        put_json(&t.mailboxes, txn, &keys::mailbox(mailbox.id), &mailbox)?;
        t.mailbox_names
            .put(txn, &keys::mailbox_name(id, name), &keys::mailbox(mailbox.id))?;
    }
    Ok(user)
}

fn update_user(t: &Tables, txn: &mut RwTxn<'_>, name: &str, patch: UserPatch) -> Result<User, StoreError> {
    let mut user = get_user(t, txn, name)?.ok_or_else(|| StoreError::NoSuchUser(name.into()))?;
    if let Some((hash, scram)) = patch.password {
        user.password_hash = hash;
        user.scram = scram;
    }
    if let Some(v) = patch.admin {
        user.admin = v;
    }
    if let Some(v) = patch.pop {
        user.pop = v;
    }
    if let Some(v) = patch.imap {
        user.imap = v;
    }
    if let Some(v) = patch.quota {
        user.quota = v;
    }
    if let Some(v) = patch.home {
        user.home = v;
    }
    put_json(&t.users, txn, name.as_bytes(), &user)?;
    Ok(user)
}

fn delete_user(t: &Tables, txn: &mut RwTxn<'_>, name: &str) -> Result<(), StoreError> {
    let user = get_user(t, txn, name)?.ok_or_else(|| StoreError::NoSuchUser(name.into()))?;
    let mut mailbox_ids = Vec::new();
    for item in t.mailbox_names.prefix_iter(txn, &keys::user_id(user.id))? {
        let (_, id) = item?;
        mailbox_ids.push(MailboxId::from_be_bytes(
            id.try_into().map_err(|_| StoreError::Corrupt("mailbox_names"))?,
        ));
    }
    for id in mailbox_ids {
        let mut bodies = Vec::new();
        for item in t.messages.prefix_iter(txn, &keys::mailbox(id))? {
            let (_, v) = item?;
            bodies.push(MessageRecord::decode(v).ok_or(StoreError::Corrupt("messages"))?.body_id);
        }
        for body in bodies {
            release_body(t, txn, body)?;
        }
        let start = keys::message(id, 0);
        let end = keys::message(id, Uid::MAX);
        t.messages.delete_range(txn, &inclusive(&start, &end))?;
        t.mailboxes.delete(txn, &keys::mailbox(id))?;
    }
    let prefix = keys::user_id(user.id);
    let names: Vec<Vec<u8>> = t
        .mailbox_names
        .prefix_iter(txn, &prefix)?
        .map(|r| r.map(|(k, _)| k.to_vec()))
        .collect::<Result<_, _>>()?;
    for k in names {
        t.mailbox_names.delete(txn, &k)?;
    }
    t.usage.delete(txn, &prefix)?;
    t.user_ids.delete(txn, &prefix)?;
    t.users.delete(txn, name.as_bytes())?;
    Ok(())
}

fn deliver(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    message: &[u8],
    structure: &Structure,
    recipients: &[Recipient],
    changes: &mut Vec<Change>,
) -> Result<Vec<Result<Delivered, StoreError>>, StoreError> {
    let size = message.len() as u64;
    let mut targets = Vec::with_capacity(recipients.len());
    for r in recipients {
        let target = (|| {
            let user = get_user(t, txn, &r.user)?.ok_or_else(|| StoreError::NoSuchUser(r.user.clone()))?;
            let mailbox = get_mailbox_by_name(t, txn, user.id, &r.mailbox)?.ok_or(StoreError::NoSuchMailbox)?;
            let usage = get_usage(t, txn, user.id)?;
            if user.quota.is_some_and(|q| usage.bytes + size > q) {
                return Err(StoreError::OverQuota);
            }
            Ok(mailbox.id)
        })();
        targets.push(target);
    }
    let wanted = targets.iter().filter(|t| t.is_ok()).count();
    if wanted == 0 {
        return Ok(targets
            .into_iter()
            .map(|t| Err(t.expect_err("no recipient succeeded")))
            .collect());
    }
    let body_id = next_counter(t, txn, "next_body_id")?;
    for (n, chunk) in message.chunks(CHUNK_SIZE).enumerate() {
        t.bodies.put(txn, &keys::chunk(body_id, n as u32), chunk)?;
    }
    t.structures.put(txn, &body_id.to_be_bytes(), &structure.to_bytes())?;
    t.body_refs
        .put(txn, &body_id.to_be_bytes(), &(wanted as u32).to_be_bytes())?;
    let now = now();
    let mut out = Vec::with_capacity(targets.len());
    for target in targets {
        let mailbox_id = match target {
            Ok(id) => id,
            Err(e) => {
                out.push(Err(e));
                continue;
            }
        };
        let mut mailbox = get_mailbox(t, txn, mailbox_id)?.ok_or(StoreError::NoSuchMailbox)?;
        let uid = mailbox.uid_next;
        mailbox.uid_next += 1;
        mailbox.highest_modseq += 1;
        mailbox.messages += 1;
        mailbox.size += size;
        let record = MessageRecord {
            flags: 0,
            internal_date: now,
            save_date: now,
            size,
            modseq: mailbox.highest_modseq,
            body_id,
            keywords: Vec::new(),
        };
        t.messages.put(txn, &keys::message(mailbox_id, uid), &record.encode())?;
        put_json(&t.mailboxes, txn, &keys::mailbox(mailbox_id), &mailbox)?;
        let mut usage = get_usage(t, txn, mailbox.user_id)?;
        usage.bytes += size;
        usage.messages += 1;
        t.usage.put(txn, &keys::user_id(mailbox.user_id), &usage.encode())?;
        changes.push(Change {
            mailbox: mailbox_id,
            highest_modseq: mailbox.highest_modseq,
            kind: ChangeKind::Added { uid },
        });
        out.push(Ok(Delivered {
            mailbox: mailbox_id,
            uid,
        }));
    }
    Ok(out)
}

fn expunge(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox_id: MailboxId,
    uids: &[Uid],
    changes: &mut Vec<Change>,
) -> Result<Vec<Uid>, StoreError> {
    let mut mailbox = get_mailbox(t, txn, mailbox_id)?.ok_or(StoreError::NoSuchMailbox)?;
    let mut removed = Vec::with_capacity(uids.len());
    let mut freed = 0u64;
    for &uid in uids {
        let key = keys::message(mailbox_id, uid);
        let Some(v) = t.messages.get(txn, &key)? else {
            continue;
        };
        let record = MessageRecord::decode(v).ok_or(StoreError::Corrupt("messages"))?;
        t.messages.delete(txn, &key)?;
        release_body(t, txn, record.body_id)?;
        freed += record.size;
        removed.push(uid);
    }
    if removed.is_empty() {
        return Ok(removed);
    }
    mailbox.highest_modseq += 1;
    mailbox.messages -= removed.len() as u32;
    mailbox.size = mailbox.size.saturating_sub(freed);
    put_json(&t.mailboxes, txn, &keys::mailbox(mailbox_id), &mailbox)?;
    let mut usage = get_usage(t, txn, mailbox.user_id)?;
    usage.bytes = usage.bytes.saturating_sub(freed);
    usage.messages = usage.messages.saturating_sub(removed.len() as u64);
    t.usage.put(txn, &keys::user_id(mailbox.user_id), &usage.encode())?;
    changes.push(Change {
        mailbox: mailbox_id,
        highest_modseq: mailbox.highest_modseq,
        kind: ChangeKind::Expunged { uids: removed.clone() },
    });
    Ok(removed)
}

/// Drops one reference to a body; the last one deletes its chunks and structure.
fn release_body(t: &Tables, txn: &mut RwTxn<'_>, body: u64) -> Result<(), StoreError> {
    let key = body.to_be_bytes();
    let refs = t
        .body_refs
        .get(txn, &key)?
        .and_then(|v| v.try_into().ok())
        .map_or(0, u32::from_be_bytes);
    if refs > 1 {
        t.body_refs.put(txn, &key, &(refs - 1).to_be_bytes())?;
        return Ok(());
    }
    t.body_refs.delete(txn, &key)?;
    t.structures.delete(txn, &key)?;
    let start = keys::chunk(body, 0);
    let end = keys::chunk(body, u32::MAX);
    t.bodies.delete_range(txn, &inclusive(&start, &end))?;
    Ok(())
}

fn inclusive<'a>(start: &'a [u8], end: &'a [u8]) -> (std::ops::Bound<&'a [u8]>, std::ops::Bound<&'a [u8]>) {
    (std::ops::Bound::Included(start), std::ops::Bound::Included(end))
}
