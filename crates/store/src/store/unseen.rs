//! What SELECT and STATUS tell of a mailbox's flags, answered without reading its messages:
//! the counts kept in its record (`Mailbox::flag_counts`: unseen, \Deleted, keywords in use)
//! and the unseen index (mailbox, UID) of every message without \Seen, whose first entry in
//! a session's view is SELECT's first unseen message.
//!
//! Invariants: the counts are those of the mailbox's records, and the index holds exactly
//! the UIDs of its records without \Seen (the writer changes all three in one transaction;
//! `fsck` checks them and builds them again from the records).

use heed::{RoTxn, RwTxn, WithoutTls};

use super::records::{flags, keys, FlagCounts, Mailbox, MailboxId, MessageRecord, Uid};
use super::txn::{inclusive, put_json};
use super::{StoreError, Tables};

/// The first and last keys of `mailbox`'s index entries.
fn range(mailbox: MailboxId) -> ([u8; 12], [u8; 12]) {
    (keys::message(mailbox, 0), keys::message(mailbox, Uid::MAX))
}

/// Counts message `uid` of `mailbox`, as `record` now is, in.
pub(crate) fn file(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox: &mut Mailbox,
    uid: Uid,
    record: &MessageRecord,
) -> Result<(), StoreError> {
    mailbox.flag_counts.add(record);
    if record.flags & flags::SEEN == 0 {
        t.unseen.put(txn, &keys::message(mailbox.id, uid), &[])?;
    }
    Ok(())
}

/// Counts message `uid` of `mailbox`, as `record` was, out.
pub(crate) fn unfile(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox: &mut Mailbox,
    uid: Uid,
    record: &MessageRecord,
) -> Result<(), StoreError> {
    mailbox.flag_counts.remove(record);
    if record.flags & flags::SEEN == 0 {
        t.unseen.delete(txn, &keys::message(mailbox.id, uid))?;
    }
    Ok(())
}

/// Counts message `uid` of `mailbox` again, from `before` to `after`: the index is only
/// touched when \Seen changed, so a flag change writes no page of it otherwise.
pub(crate) fn refile(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox: &mut Mailbox,
    uid: Uid,
    (before, after): (&MessageRecord, &MessageRecord),
) -> Result<(), StoreError> {
    mailbox.flag_counts.remove(before);
    mailbox.flag_counts.add(after);
    let key = keys::message(mailbox.id, uid);
    match (before.flags & flags::SEEN == 0, after.flags & flags::SEEN == 0) {
        (true, false) => {
            t.unseen.delete(txn, &key)?;
        }
        (false, true) => t.unseen.put(txn, &key, &[])?,
        _ => {}
    }
    Ok(())
}

/// The index of a mailbox whose messages are all gone.
pub(crate) fn forget_mailbox(t: &Tables, txn: &mut RwTxn<'_>, mailbox: MailboxId) -> Result<(), StoreError> {
    let (start, end) = range(mailbox);
    t.unseen.delete_range(txn, &inclusive(&start, &end))?;
    Ok(())
}

/// Counts and indexes `mailbox` again from its records (a store from before the counts, or
/// `fsck --repair`).
pub(crate) fn recount(t: &Tables, txn: &mut RwTxn<'_>, mailbox: MailboxId) -> Result<(), StoreError> {
    forget_mailbox(t, txn, mailbox)?;
    let Some(mut record) = super::read::get_mailbox(t, txn, mailbox)? else {
        return Ok(());
    };
    let (start, end) = range(mailbox);
    let mut messages = Vec::new();
    for item in t.messages.range(txn, &inclusive(&start, &end))? {
        let (key, value) = item?;
        let message = MessageRecord::decode(value).ok_or(StoreError::Corrupt("messages"))?;
        messages.push((keys::message_uid(key), message));
    }
    record.flag_counts = FlagCounts::default();
    for (uid, message) in &messages {
        file(t, txn, &mut record, *uid, message)?;
    }
    put_json(&t.mailboxes, txn, &keys::mailbox(mailbox), &record)
}

/// Counts every mailbox of a store from before the counts, once.
pub(crate) fn migrate(t: &Tables, txn: &mut RwTxn<'_>) -> Result<(), StoreError> {
    let mut ids = Vec::new();
    for item in t.mailboxes.iter(txn)? {
        let (_, v) = item?;
        ids.push(
            serde_json::from_slice::<Mailbox>(v)
                .map_err(|_| StoreError::Corrupt("mailboxes"))?
                .id,
        );
    }
    for id in ids {
        recount(t, txn, id)?;
    }
    Ok(())
}

/// Calls `f` with the UIDs of `mailbox`'s messages without \Seen, ascending, until it
/// returns false.
pub(crate) fn each(
    t: &Tables,
    txn: &RoTxn<'_, WithoutTls>,
    mailbox: MailboxId,
    f: &mut dyn FnMut(Uid) -> bool,
) -> Result<(), StoreError> {
    let (start, end) = range(mailbox);
    for item in t.unseen.range(txn, &inclusive(&start, &end))? {
        let (key, _) = item?;
        if !f(keys::message_uid(key)) {
            break;
        }
    }
    Ok(())
}
