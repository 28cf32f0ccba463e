//! The outbound queue in LMDB: one JSON record per queued message (`queue`: id → entry) and
//! its bytes in chunks (`queue_bodies`: (id, chunk) → bytes), written only by the writer
//! thread like everything else.
//!
//! Invariants: a submission's local deliveries and its queue entry commit in one transaction
//! or not at all; an entry and its chunks are removed together; an attempt's outcome and the
//! bounce it causes commit together, so a crash never loses a bounce nor sends one twice.

use std::sync::Arc;

use heed::RwTxn;
use serde::{Deserialize, Serialize};

use super::envelope::{MailParams, RcptParams};
use super::feed::Change;
use super::read::{get_mailbox_by_name, get_usage, get_user, Snapshot};
use super::records::keys;
use super::stage::Staged;
use super::txn::{inclusive, next_counter, put_chunks, put_json};
use super::writer::Recipient;
use super::{messages, StoreError, Tables};
use crate::mime::Structure;

pub type QueueId = u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecipient {
    pub address: String,
    pub params: RcptParams,
}

/// One queued message and where its delivery stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub id: QueueId,
    /// The envelope sender.
    pub from: String,
    /// The user who submitted it: bounces go to their INBOX.
    pub user: String,
    pub params: MailParams,
    /// Recipients not yet delivered.
    pub recipients: Vec<QueuedRecipient>,
    pub size: u64,
    /// Unix seconds.
    pub created: i64,
    pub next_attempt: i64,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// A new entry; the writer gives it its id.
#[derive(Debug, Clone)]
pub struct NewQueueEntry {
    pub from: String,
    pub user: String,
    pub params: MailParams,
    pub recipients: Vec<QueuedRecipient>,
    pub now: i64,
}

/// A report delivered into a user's INBOX.
#[derive(Debug, Clone)]
pub struct Bounce {
    pub user: String,
    pub message: Vec<u8>,
    pub structure: Arc<Structure>,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone)]
pub struct QueueUpdate {
    /// Recipients to try again; none removes the entry.
    pub remaining: Vec<QueuedRecipient>,
    pub next_attempt: i64,
    pub last_error: Option<String>,
    pub bounce: Option<Bounce>,
}

/// Why a submission was not taken: the local recipient at `index` cannot receive it.
#[derive(Debug)]
pub struct Refused {
    pub index: usize,
    pub error: StoreError,
}

fn chunk_key(id: QueueId, n: u32) -> [u8; 12] {
    keys::chunk(id, n)
}

/// Local deliveries and the queue entry of one submission, all or nothing. Local recipients
/// are checked before anything is written, so a refusal leaves no trace.
pub(crate) fn submit(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    (message, structure, staged): (&[u8], &Structure, Staged),
    local: &[Recipient],
    (queue, report): (Option<NewQueueEntry>, Option<Bounce>),
    changes: &mut Vec<Change>,
) -> Result<Result<Option<QueueId>, Refused>, StoreError> {
    for (index, r) in local.iter().enumerate() {
        if let Err(error) = check_recipient(t, txn, r, message.len() as u64) {
            return Ok(Err(Refused { index, error }));
        }
    }
    if !local.is_empty() {
        for result in messages::deliver(t, txn, (message, staged.body), structure, local, changes)? {
            result?;
        }
    }
    if let Some(report) = report {
        deliver_report(t, txn, report, changes)?;
    }
    let Some(new) = queue else {
        return Ok(Ok(None));
    };
    let id = match staged.queued {
        Some(id) => id,
        None => {
            let id = next_counter(t, txn, "next_queue_id")?;
            put_chunks((&t.queue_bodies, t.page_size), txn, id, 0, message)?;
            id
        }
    };
    let entry = QueueEntry {
        id,
        from: new.from,
        user: new.user,
        params: new.params,
        recipients: new.recipients,
        size: message.len() as u64,
        created: new.now,
        next_attempt: new.now,
        attempts: 0,
        last_error: None,
    };
    put_json(&t.queue, txn, &id.to_be_bytes(), &entry)?;
    Ok(Ok(Some(id)))
}

fn check_recipient(t: &Tables, txn: &RwTxn<'_>, r: &Recipient, size: u64) -> Result<(), StoreError> {
    let user = get_user(t, txn, &r.user)?.ok_or_else(|| StoreError::NoSuchUser(r.user.clone()))?;
    get_mailbox_by_name(t, txn, user.id, &r.mailbox)?.ok_or(StoreError::NoSuchMailbox)?;
    let usage = get_usage(t, txn, user.id)?;
    if user.quota.is_some_and(|q| usage.bytes + size > q) {
        return Err(StoreError::OverQuota);
    }
    Ok(())
}

fn get_entry(t: &Tables, txn: &RwTxn<'_>, id: QueueId) -> Result<Option<QueueEntry>, StoreError> {
    match t.queue.get(txn, &id.to_be_bytes())? {
        None => Ok(None),
        Some(v) => Ok(Some(
            serde_json::from_slice(v).map_err(|_| StoreError::Corrupt("queue"))?,
        )),
    }
}

/// Records an attempt; an entry deleted meanwhile (`ringmail queue delete`) stays deleted and
/// bounces nothing.
pub(crate) fn attempted(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    id: QueueId,
    update: QueueUpdate,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let Some(mut entry) = get_entry(t, txn, id)? else {
        return Ok(());
    };
    if let Some(bounce) = update.bounce {
        deliver_report(t, txn, bounce, changes)?;
    }
    if update.remaining.is_empty() {
        return delete(t, txn, id).map(|_| ());
    }
    entry.recipients = update.remaining;
    entry.next_attempt = update.next_attempt;
    entry.last_error = update.last_error;
    entry.attempts += 1;
    put_json(&t.queue, txn, &id.to_be_bytes(), &entry)
}

/// A delivery status report into its user's INBOX. A user who is gone or over quota loses
/// it (logged), never the rest of the transaction.
fn deliver_report(
    t: &Tables,
    txn: &mut RwTxn<'_>,
    report: Bounce,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let inbox = [Recipient {
        user: report.user.clone(),
        mailbox: "INBOX".into(),
    }];
    let delivered = messages::deliver(t, txn, (&report.message, None), &report.structure, &inbox, changes)?;
    if let Some(Err(e)) = delivered.first() {
        tracing::warn!(user = report.user, "delivery status report not delivered: {e}");
    }
    Ok(())
}

/// Removes an entry and its bytes; false when there was none.
pub(crate) fn delete(t: &Tables, txn: &mut RwTxn<'_>, id: QueueId) -> Result<bool, StoreError> {
    if !t.queue.delete(txn, &id.to_be_bytes())? {
        return Ok(false);
    }
    super::txn::delete_chunks(&t.queue_bodies, txn, id)?;
    Ok(true)
}

/// Makes every entry due now; returns how many there are.
pub(crate) fn flush(t: &Tables, txn: &mut RwTxn<'_>) -> Result<usize, StoreError> {
    let mut entries = Vec::new();
    for item in t.queue.iter(txn)? {
        let (_, v) = item?;
        entries.push(serde_json::from_slice::<QueueEntry>(v).map_err(|_| StoreError::Corrupt("queue"))?);
    }
    for mut entry in entries.iter().cloned() {
        entry.next_attempt = 0;
        put_json(&t.queue, txn, &entry.id.to_be_bytes(), &entry)?;
    }
    Ok(entries.len())
}

impl Snapshot<'_> {
    /// Every queued message, oldest first.
    pub fn queue(&self) -> Result<Vec<QueueEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.t.queue.iter(&self.txn)? {
            let (_, v) = item?;
            out.push(serde_json::from_slice(v).map_err(|_| StoreError::Corrupt("queue"))?);
        }
        Ok(out)
    }

    /// A queued message's bytes, copied out so that no read transaction outlives the call.
    pub fn queue_message(&self, id: QueueId) -> Result<Vec<u8>, StoreError> {
        let (start, end) = (chunk_key(id, 0), chunk_key(id, u32::MAX));
        let mut out = Vec::new();
        for item in self.t.queue_bodies.range(&self.txn, &inclusive(&start, &end))? {
            out.extend_from_slice(item?.1);
        }
        Ok(out)
    }
}
