//! What changed in a mailbox since a modseq, answered without reading its messages: the
//! modseq index (mailbox, modseq, UID) of every message, and the expunge log (mailbox,
//! modseq) → UIDs expunged at that modseq (RFC 7162: CHANGEDSINCE, SEARCH MODSEQ, QRESYNC).
//!
//! Invariants: every message record has exactly one index key, with the record's modseq,
//! and no key points anywhere else (the writer changes both in one transaction; `fsck`
//! checks it). The expunge log keeps at most `EXPUNGE_LOG_KEEP` entries per mailbox; what
//! it forgot lies at or below the mailbox's `expunge_floor`, and a question reaching below
//! that is answered "forgotten", never with a short list.

use heed::{RoTxn, RwTxn, WithoutTls};

use super::records::{keys, Mailbox, MailboxId, MessageRecord, Uid};
use super::txn::inclusive;
use super::{StoreError, Tables};

/// Expunge log entries kept per mailbox. One entry is one EXPUNGE (or MOVE, or delete), so a
/// client resynchronising after this many of them gets the whole known range instead.
/// (Small in unit tests, so trimming is reached in a few writes.)
pub(crate) const EXPUNGE_LOG_KEEP: u32 = if cfg!(test) { 8 } else { 4096 };

/// The first and last keys of `mailbox`'s modseq index entries.
fn index_range(mailbox: MailboxId) -> ([u8; 20], [u8; 20]) {
    (keys::modseq(mailbox, 0, 0), keys::modseq(mailbox, u64::MAX, Uid::MAX))
}

/// The first and last keys of `mailbox`'s expunge log entries.
fn log_range(mailbox: MailboxId) -> ([u8; 16], [u8; 16]) {
    (keys::expunged(mailbox, 0), keys::expunged(mailbox, u64::MAX))
}

/// Files message `uid` of `mailbox` under `modseq`.
pub(crate) fn index(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox: MailboxId,
    uid: Uid,
    modseq: u64,
) -> Result<(), StoreError> {
    t.modseqs.put(txn, &keys::modseq(mailbox, modseq, uid), &[])?;
    Ok(())
}

/// Removes the entry `index` made.
pub(crate) fn unindex(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox: MailboxId,
    uid: Uid,
    modseq: u64,
) -> Result<(), StoreError> {
    t.modseqs.delete(txn, &keys::modseq(mailbox, modseq, uid))?;
    Ok(())
}

/// Both indexes of a mailbox whose messages are all gone, and its unseen index.
pub(crate) fn forget_mailbox(t: &Tables, txn: &mut RwTxn<'_>, mailbox: MailboxId) -> Result<(), StoreError> {
    super::unseen::forget_mailbox(t, txn, mailbox)?;
    let (start, end) = index_range(mailbox);
    t.modseqs.delete_range(txn, &inclusive(&start, &end))?;
    let (start, end) = log_range(mailbox);
    t.expunged.delete_range(txn, &inclusive(&start, &end))?;
    Ok(())
}

/// Indexes `mailbox` again from its records (a store from before the index, or `fsck
/// --repair`).
pub(crate) fn reindex(t: &Tables, txn: &mut RwTxn<'_>, mailbox: MailboxId) -> Result<(), StoreError> {
    let (start, end) = index_range(mailbox);
    t.modseqs.delete_range(txn, &inclusive(&start, &end))?;
    let mut entries = Vec::new();
    let (start, end) = (keys::message(mailbox, 0), keys::message(mailbox, Uid::MAX));
    for item in t.messages.range(txn, &inclusive(&start, &end))? {
        let (key, value) = item?;
        let record = MessageRecord::decode(value).ok_or(StoreError::Corrupt("messages"))?;
        entries.push((keys::message_uid(key), record.modseq));
    }
    for (uid, modseq) in entries {
        index(t, txn, mailbox, uid, modseq)?;
    }
    Ok(())
}

/// The UIDs of `mailbox` whose modseq is above `since`, ascending.
pub(crate) fn changed_since(
    t: &Tables,
    txn: &RoTxn<'_, WithoutTls>,
    mailbox: MailboxId,
    since: u64,
) -> Result<Vec<Uid>, StoreError> {
    let Some(from) = since.checked_add(1) else {
        return Ok(Vec::new());
    };
    let (start, end) = (
        keys::modseq(mailbox, from, 0),
        keys::modseq(mailbox, u64::MAX, Uid::MAX),
    );
    let mut uids = Vec::new();
    for item in t.modseqs.range(txn, &inclusive(&start, &end))? {
        let (key, _) = item?;
        uids.push(keys::modseq_entry(key).ok_or(StoreError::Corrupt("modseqs"))?.1);
    }
    uids.sort_unstable();
    Ok(uids)
}

/// Records that `uids` were expunged from `mailbox` at its current HIGHESTMODSEQ, and trims
/// the log to `EXPUNGE_LOG_KEEP` entries; the caller writes `mailbox` back.
pub(crate) fn log_expunge(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    mailbox: &mut Mailbox,
    uids: &[Uid],
) -> Result<(), StoreError> {
    let log: Vec<u8> = uids.iter().flat_map(|u| u.to_be_bytes()).collect();
    t.expunged
        .put(txn, &keys::expunged(mailbox.id, mailbox.highest_modseq), &log)?;
    mailbox.expunge_log += 1;
    if mailbox.expunge_log <= EXPUNGE_LOG_KEEP {
        return Ok(());
    }
    // Half at a time, so trimming costs O(1) per expunge on average.
    let drop = (mailbox.expunge_log - EXPUNGE_LOG_KEEP / 2) as usize;
    let (start, end) = log_range(mailbox.id);
    let mut floor = mailbox.expunge_floor;
    let mut doomed = Vec::with_capacity(drop);
    for item in t.expunged.range(txn, &inclusive(&start, &end))?.take(drop) {
        let (key, _) = item?;
        floor = floor.max(keys::expunged_modseq(key).ok_or(StoreError::Corrupt("expunged"))?);
        doomed.push(key.to_vec());
    }
    for key in &doomed {
        t.expunged.delete(txn, key)?;
    }
    mailbox.expunge_log -= doomed.len() as u32;
    mailbox.expunge_floor = floor;
    Ok(())
}

/// What the expunge log knows of expunges after a modseq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expunged {
    /// The UIDs expunged after it, ascending.
    Known(Vec<Uid>),
    /// The log was trimmed past it: any UID below UIDNEXT that is not in the mailbox may have
    /// gone since (RFC 7162 §3.2.5.1 lets the server report all of them).
    Forgotten,
}

/// UIDs expunged from `mailbox` at modseqs above `since`.
pub(crate) fn expunged_since(
    t: &Tables,
    txn: &RoTxn<'_, WithoutTls>,
    mailbox: &Mailbox,
    since: u64,
) -> Result<Expunged, StoreError> {
    if since < mailbox.expunge_floor {
        return Ok(Expunged::Forgotten);
    }
    let start = keys::expunged(mailbox.id, since.saturating_add(1));
    let end = keys::expunged(mailbox.id, u64::MAX);
    let mut uids = Vec::new();
    for item in t.expunged.range(txn, &inclusive(&start, &end))? {
        let (_, v) = item?;
        uids.extend(v.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])));
    }
    uids.sort_unstable();
    Ok(Expunged::Known(uids))
}

/// Expunge log entries: the UIDs that went at each modseq, in modseq order.
pub type LogEntries = Vec<(u64, Vec<Uid>)>;

/// The expunge log entries of `mailbox` above `since`, each with its modseq, in modseq order;
/// `None` when the log forgot some of them (`Expunged::Forgotten`).
pub(crate) fn log_since(
    t: &Tables,
    txn: &RoTxn<'_, WithoutTls>,
    mailbox: &Mailbox,
    since: u64,
) -> Result<Option<LogEntries>, StoreError> {
    if since < mailbox.expunge_floor {
        return Ok(None);
    }
    let start = keys::expunged(mailbox.id, since.saturating_add(1));
    let end = keys::expunged(mailbox.id, u64::MAX);
    let mut entries = Vec::new();
    for item in t.expunged.range(txn, &inclusive(&start, &end))? {
        let (k, v) = item?;
        let at = keys::expunged_modseq(k).ok_or(StoreError::Corrupt("expunged"))?;
        let uids = v.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        entries.push((at, uids.collect()));
    }
    Ok(Some(entries))
}

/// Builds the modseq index of every mailbox of a store written before it existed, and counts
/// their expunge logs.
pub(crate) fn migrate(t: &Tables, txn: &mut RwTxn<'_>) -> Result<(), StoreError> {
    let mut mailboxes = Vec::new();
    for item in t.mailboxes.iter(txn)? {
        let (_, v) = item?;
        mailboxes.push(serde_json::from_slice::<Mailbox>(v).map_err(|_| StoreError::Corrupt("mailboxes"))?);
    }
    for mut mailbox in mailboxes {
        reindex(t, txn, mailbox.id)?;
        let (start, end) = log_range(mailbox.id);
        mailbox.expunge_log = t.expunged.range(txn, &inclusive(&start, &end))?.count() as u32;
        super::txn::put_json(&t.mailboxes, txn, &keys::mailbox(mailbox.id), &mailbox)?;
    }
    Ok(())
}
