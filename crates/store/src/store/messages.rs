//! Message operations of the writer: delivery, APPEND, flag changes, COPY/MOVE and expunge.
//!
//! Every change raises the mailbox's HIGHESTMODSEQ and is reported on the feed; UIDs come from
//! UIDNEXT only, so they are never reused; usage is kept exact for quotas.

use heed::RwTxn;

use super::feed::{Change, ChangeKind};
use super::read::{get_mailbox, get_mailbox_by_name, get_usage, get_user};
use super::records::{flags, keys, BodyId, FlagMode, Mailbox, MailboxId, MessageRecord, Uid, Usage};
use super::txn::{next_counter, now, put_chunks, put_json, put_last, release_body};
use super::writer::{Delivered, ImportedMessage, NewMessage, Recipient};
use super::{dot_lines, modseq, unseen};
use super::{StoreError, Tables};
use crate::mime::Structure;

fn dot_free(structure: &Structure) -> u8 {
    if structure.has_dot_line {
        0
    } else {
        flags::DOT_FREE
    }
}

/// Stores a body once, with `refs` references, and where its lines start with '.'; its chunks
/// are there already if the writer staged them (`staged`).
fn put_body(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    (message, staged): (&[u8], Option<BodyId>),
    structure: &Structure,
    refs: u32,
) -> Result<BodyId, StoreError> {
    let body_id = match staged {
        Some(id) => id,
        None => {
            let id = next_counter(t, txn, "next_body_id")?;
            put_chunks((&t.bodies, t.page_size), txn, id, 0, message)?;
            id
        }
    };
    let key = body_id.to_be_bytes();
    put_last(&t.structures, txn, &key, &structure.to_bytes())?;
    if let Some(index) = structure.has_dot_line.then(|| dot_lines::encode(message)).flatten() {
        put_last(&t.dot_lines, txn, &key, &index)?;
    }
    put_last(&t.body_refs, txn, &key, &refs.to_be_bytes())?;
    Ok(body_id)
}

fn add_body_ref(t: &Tables, txn: &mut RwTxn<'_>, body: BodyId) -> Result<(), StoreError> {
    let key = body.to_be_bytes();
    let refs = t
        .body_refs
        .get(txn, &key)?
        .and_then(|v| v.try_into().ok())
        .map_or(0, u32::from_be_bytes);
    t.body_refs.put(txn, &key, &(refs + 1).to_be_bytes())?;
    Ok(())
}

pub(super) fn adjust_usage(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    user: u32,
    bytes: i64,
    messages: i64,
) -> Result<Usage, StoreError> {
    let mut usage = get_usage(t, txn, user)?;
    usage.bytes = usage.bytes.saturating_add_signed(bytes);
    usage.messages = usage.messages.saturating_add_signed(messages);
    t.usage.put(txn, &keys::user_id(user), &usage.encode())?;
    Ok(usage)
}

fn check_quota(t: &Tables, txn: &RwTxn<'_>, mailbox: &Mailbox, adding: u64) -> Result<(), StoreError> {
    let name = super::read::get_user_name(t, txn, mailbox.user_id)?.ok_or(StoreError::Corrupt("user_ids"))?;
    let user = get_user(t, txn, &name)?.ok_or(StoreError::Corrupt("users"))?;
    let usage = get_usage(t, txn, user.id)?;
    if user.quota.is_some_and(|q| usage.bytes + adding > q) {
        return Err(StoreError::OverQuota);
    }
    Ok(())
}

/// Gives `record` the next UID of `mailbox_id` and a fresh modseq; returns the UID.
fn insert(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox_id: MailboxId,
    record: MessageRecord,
    changes: &mut Vec<Change>,
) -> Result<(Mailbox, Uid), StoreError> {
    insert_at(t, txn, (mailbox_id, None), record, changes)
}

/// `insert` at the mailbox's UIDNEXT, or at `at`: an import keeping a message's UID, which may
/// be below UIDNEXT when the import reserved it (`import`).
fn insert_at(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    (mailbox_id, at): (MailboxId, Option<Uid>),
    mut record: MessageRecord,
    changes: &mut Vec<Change>,
) -> Result<(Mailbox, Uid), StoreError> {
    let mut mailbox = get_mailbox(t, txn, mailbox_id)?.ok_or(StoreError::NoSuchMailbox)?;
    if mailbox.noselect {
        return Err(StoreError::NoSuchMailbox);
    }
    let uid = match at {
        Some(0) => return Err(StoreError::Corrupt("UID 0")),
        Some(uid) => uid,
        None => mailbox.uid_next,
    };
    // An import fills UIDs it reserved below UIDNEXT; everything else takes UIDNEXT.
    mailbox.uid_next = mailbox
        .uid_next
        .max(uid.checked_add(1).ok_or(StoreError::Corrupt("uid_next"))?);
    mailbox.highest_modseq += 1;
    mailbox.messages += 1;
    mailbox.size += record.size;
    record.modseq = mailbox.highest_modseq;
    t.messages.put(txn, &keys::message(mailbox_id, uid), &record.encode())?;
    modseq::index(t, txn, mailbox_id, uid, record.modseq)?;
    unseen::file(t, txn, &mut mailbox, uid, &record)?;
    put_json(&t.mailboxes, txn, &keys::mailbox(mailbox_id), &mailbox)?;
    adjust_usage(t, txn, mailbox.user_id, record.size as i64, 1)?;
    changes.push(Change {
        user: mailbox.user_id,
        mailbox: mailbox_id,
        highest_modseq: mailbox.highest_modseq,
        kind: ChangeKind::Added { uid },
    });
    Ok((mailbox, uid))
}

pub(crate) fn deliver(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    (message, staged): (&[u8], Option<BodyId>),
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
    let body_id = put_body(t, txn, (message, staged), structure, wanted as u32)?;
    let now = now();
    let mut out = Vec::with_capacity(targets.len());
    for target in targets {
        let mailbox = match target {
            Ok(id) => id,
            Err(e) => {
                out.push(Err(e));
                continue;
            }
        };
        let record = MessageRecord {
            flags: dot_free(structure),
            internal_date: now,
            save_date: now,
            size,
            modseq: 0,
            body_id,
            keywords: Vec::new(),
        };
        let (_, uid) = insert(t, txn, mailbox, record, changes)?;
        out.push(Ok(Delivered { mailbox, uid }));
    }
    Ok(out)
}

/// IMAP APPEND and MULTIAPPEND: messages into one mailbox with their flags and INTERNALDATE.
/// The caller's nested transaction makes it all or nothing.
pub(crate) fn append(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox: MailboxId,
    messages: Vec<NewMessage>,
    changes: &mut Vec<Change>,
) -> Result<(u32, Vec<Uid>), StoreError> {
    let target = get_mailbox(t, txn, mailbox)?.ok_or(StoreError::NoSuchMailbox)?;
    check_quota(t, txn, &target, messages.iter().map(|m| m.message.len() as u64).sum())?;
    let now = now();
    let mut uids = Vec::with_capacity(messages.len());
    for m in messages {
        let record = stored(t, txn, m, now)?;
        uids.push(insert(t, txn, mailbox, record, changes)?.1);
    }
    Ok((target.uid_validity, uids))
}

/// A client's (or another server's) message stored: its body, and the record that will point
/// at it, saved `now`.
pub(super) fn stored(t: &Tables, txn: &mut RwTxn<'_>, m: NewMessage, now: i64) -> Result<MessageRecord, StoreError> {
    let body_id = put_body(t, txn, (&m.message, None), &m.structure, 1)?;
    Ok(MessageRecord {
        flags: (m.flags & !flags::INTERNAL) | dot_free(&m.structure),
        internal_date: m.internal_date.unwrap_or(now),
        save_date: now,
        size: m.message.len() as u64,
        modseq: 0,
        body_id,
        keywords: m.keywords,
    })
}

/// Messages from another server at the UIDs they had there (migration): into `user`'s mailbox
/// `name`, created with `uid_validity` if it is missing. One that exists must have that
/// UIDVALIDITY (an earlier run of the same import made it), or never have held a message, and
/// then takes it. The source's UIDs are reserved first — UIDNEXT is raised to `uid_next` with
/// the first batch — so mail delivered while an import runs gets UIDs above them, never one
/// of theirs; a message whose UID is taken already is skipped, so an import that is run again
/// (interrupted, or to catch up) adds only what is missing. Gives how many were added and
/// skipped.
pub(crate) fn import(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    (user, name): (super::records::UserId, &str),
    (uid_validity, uid_next): (Option<u32>, Uid),
    messages: Vec<ImportedMessage>,
    changes: &mut Vec<Change>,
) -> Result<(usize, usize), StoreError> {
    let mut mailbox = match get_mailbox_by_name(t, txn, user, name)? {
        Some(m) if !m.noselect => m,
        _ => super::mailboxes::create(t, txn, user, name, None, changes)?,
    };
    if let Some(uid_validity) = uid_validity.filter(|v| *v != mailbox.uid_validity) {
        if mailbox.uid_next != 1 || mailbox.messages != 0 {
            return Err(StoreError::MailboxRefused(
                "it holds mail under another UIDVALIDITY: import into a new account",
            ));
        }
        // Never held a message: no client can have cached anything of it under its own.
        mailbox.uid_validity = uid_validity;
        put_json(&t.mailboxes, txn, &keys::mailbox(mailbox.id), &mailbox)?;
    }
    let reserved = messages
        .iter()
        .map(|m| m.uid.saturating_add(1))
        .max()
        .unwrap_or(0)
        .max(uid_next);
    if mailbox.uid_next < reserved {
        mailbox.uid_next = reserved;
        put_json(&t.mailboxes, txn, &keys::mailbox(mailbox.id), &mailbox)?;
    }
    let mut adding = 0u64;
    for m in &messages {
        if t.messages.get(txn, &keys::message(mailbox.id, m.uid))?.is_none() {
            adding += m.message.message.len() as u64;
        }
    }
    check_quota(t, txn, &mailbox, adding)?;
    let now = now();
    let (mut added, mut skipped) = (0, 0);
    for ImportedMessage {
        uid,
        message: m,
        pop3_uidl,
    } in messages
    {
        if uid == 0 || t.messages.get(txn, &keys::message(mailbox.id, uid))?.is_some() {
            skipped += 1;
            continue;
        }
        let record = stored(t, txn, m, now)?;
        insert_at(t, txn, (mailbox.id, Some(uid)), record, changes)?;
        let own = format!("{}.{uid}", mailbox.uid_validity);
        if let Some(uidl) = pop3_uidl.filter(|u| *u != own) {
            t.pop3_uidls
                .put(txn, &keys::message(mailbox.id, uid), uidl.as_bytes())?;
        }
        added += 1;
    }
    Ok((added, skipped))
}

/// IMAP REPLACE (RFC 8508 §3): expunges `uid` from `from` and appends `message` to `to`, in the
/// caller's nested transaction, so both happen or neither. The old message goes first, so the
/// quota check counts the space it frees. Returns the target's UIDVALIDITY and the new UID.
pub(crate) fn replace(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    (from, uid): (MailboxId, Uid),
    to: MailboxId,
    message: NewMessage,
    changes: &mut Vec<Change>,
) -> Result<(u32, Uid), StoreError> {
    if t.messages.get(txn, &keys::message(from, uid))?.is_none() {
        return Err(StoreError::MailboxRefused("the message to replace has been expunged"));
    }
    expunge(t, txn, from, &[uid], changes)?;
    let (uid_validity, uids) = append(t, txn, to, vec![message], changes)?;
    let new_uid = *uids.first().ok_or(StoreError::Corrupt("messages"))?;
    Ok((uid_validity, new_uid))
}

/// One message's flags after a STORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagsChanged {
    pub uid: Uid,
    pub flags: u8,
    pub keywords: Vec<String>,
    pub modseq: u64,
}

fn apply_mode(mode: FlagMode, record: &mut MessageRecord, flags: u8, keywords: &[String]) {
    let has = |list: &[String], k: &str| list.iter().any(|x| x.eq_ignore_ascii_case(k));
    match mode {
        FlagMode::Replace => {
            record.flags = (record.flags & flags::INTERNAL) | (flags & !flags::INTERNAL);
            record.keywords = keywords.to_vec();
        }
        FlagMode::Add => {
            record.flags |= flags & !flags::INTERNAL;
            for k in keywords {
                if !has(&record.keywords, k) {
                    record.keywords.push(k.clone());
                }
            }
        }
        FlagMode::Remove => {
            record.flags &= !(flags & !flags::INTERNAL);
            record.keywords.retain(|k| !has(keywords, k));
        }
    }
}

/// IMAP STORE. Messages whose modseq is above `unchanged_since` are left alone and listed in
/// the second result (RFC 7162 §3.1.3 MODIFIED). A message whose flags do not change keeps
/// its modseq.
pub(crate) fn store_flags(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox_id: MailboxId,
    uids: &[Uid],
    (mode, flags, keywords): (FlagMode, u8, &[String]),
    unchanged_since: Option<u64>,
    changes: &mut Vec<Change>,
) -> Result<(Vec<FlagsChanged>, Vec<Uid>), StoreError> {
    let mut mailbox = get_mailbox(t, txn, mailbox_id)?.ok_or(StoreError::NoSuchMailbox)?;
    let mut changed = Vec::new();
    let mut modified = Vec::new();
    for &uid in uids {
        let key = keys::message(mailbox_id, uid);
        let Some(v) = t.messages.get(txn, &key)? else {
            continue;
        };
        let mut record = MessageRecord::decode(v).ok_or(StoreError::Corrupt("messages"))?;
        if unchanged_since.is_some_and(|since| record.modseq > since) {
            modified.push(uid);
            continue;
        }
        let before = record.clone();
        apply_mode(mode, &mut record, flags, keywords);
        if (record.flags, &record.keywords) != (before.flags, &before.keywords) {
            mailbox.highest_modseq += 1;
            modseq::unindex(t, txn, mailbox_id, uid, record.modseq)?;
            record.modseq = mailbox.highest_modseq;
            t.messages.put(txn, &key, &record.encode())?;
            modseq::index(t, txn, mailbox_id, uid, record.modseq)?;
            unseen::refile(t, txn, &mut mailbox, uid, (&before, &record))?;
            changes.push(Change {
                user: mailbox.user_id,
                mailbox: mailbox_id,
                highest_modseq: mailbox.highest_modseq,
                kind: ChangeKind::Flags {
                    uid,
                    modseq: record.modseq,
                },
            });
        }
        changed.push(FlagsChanged {
            uid,
            flags: record.flags,
            keywords: record.keywords,
            modseq: record.modseq,
        });
    }
    put_json(&t.mailboxes, txn, &keys::mailbox(mailbox_id), &mailbox)?;
    Ok((changed, modified))
}

/// IMAP COPY (and MOVE, with `expunge_source`): bodies are shared, not copied. Returns the
/// target's UIDVALIDITY and (source UID, new UID) pairs for COPYUID (RFC 4315).
pub(crate) fn copy(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    (from, uids): (MailboxId, &[Uid]),
    to: MailboxId,
    expunge_source: bool,
    changes: &mut Vec<Change>,
) -> Result<(u32, Vec<(Uid, Uid)>), StoreError> {
    let target = get_mailbox(t, txn, to)?.ok_or(StoreError::NoSuchMailbox)?;
    let mut records = Vec::with_capacity(uids.len());
    for &uid in uids {
        if let Some(v) = t.messages.get(txn, &keys::message(from, uid))? {
            records.push((uid, MessageRecord::decode(v).ok_or(StoreError::Corrupt("messages"))?));
        }
    }
    if !expunge_source {
        check_quota(t, txn, &target, records.iter().map(|(_, r)| r.size).sum())?;
    }
    let now = now();
    let mut pairs = Vec::with_capacity(records.len());
    for (uid, mut record) in records {
        add_body_ref(t, txn, record.body_id)?;
        record.save_date = now;
        let (_, new_uid) = insert(t, txn, to, record, changes)?;
        pairs.push((uid, new_uid));
    }
    if expunge_source {
        let moved: Vec<Uid> = pairs.iter().map(|(u, _)| *u).collect();
        expunge(t, txn, from, &moved, changes)?;
    }
    Ok((target.uid_validity, pairs))
}

pub(crate) fn expunge(
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
        t.pop3_uidls.delete(txn, &key)?;
        modseq::unindex(t, txn, mailbox_id, uid, record.modseq)?;
        unseen::unfile(t, txn, &mut mailbox, uid, &record)?;
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
    // RFC 7162 §3.2.5.1: remembered so a QRESYNC client can be told what VANISHED.
    modseq::log_expunge(t, txn, &mut mailbox, &removed)?;
    put_json(&t.mailboxes, txn, &keys::mailbox(mailbox_id), &mailbox)?;
    adjust_usage(t, txn, mailbox.user_id, -(freed as i64), -(removed.len() as i64))?;
    changes.push(Change {
        user: mailbox.user_id,
        mailbox: mailbox_id,
        highest_modseq: mailbox.highest_modseq,
        kind: ChangeKind::Expunged { uids: removed.clone() },
    });
    Ok(removed)
}

/// RFC 3501 §2.3.2: UIDs below `mark` were claimed as \Recent by some session (see
/// `recent`); later sessions, after a restart too, do not get them again. A mailbox deleted
/// since the claim needs nothing.
pub(crate) fn persist_recent(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox_id: MailboxId,
    mark: Uid,
) -> Result<(), StoreError> {
    let Some(mut mailbox) = get_mailbox(t, txn, mailbox_id)? else {
        return Ok(());
    };
    if mailbox.first_recent_uid < mark {
        mailbox.first_recent_uid = mark;
        put_json(&t.mailboxes, txn, &keys::mailbox(mailbox_id), &mailbox)?;
    }
    Ok(())
}
