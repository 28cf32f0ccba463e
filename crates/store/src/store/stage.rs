//! Large bodies written ahead of the transaction that stores their message.
//!
//! A write transaction keeps every page it writes in memory until it commits, so a 50 MB body
//! written inside a batch's transaction would cost 50 MB beyond the message itself. The writer
//! instead writes a large body's chunks first, in commits of at most [`STEP`] bytes, under an
//! id marked as staged in `meta`; the operation then only links them. After the operation the
//! mark goes, and with it the chunks if the operation did not link them (it failed). Marks a
//! crash left behind are swept when the store opens, before anything reads it.

use heed::RwTxn;

use super::records::BodyId;
use super::txn::{delete_chunks, key_id, next_counter, put_chunks};
use super::writer::WriteOp;
use super::{Inner, QueueId, StoreError, Table, Tables, CHUNK_SIZE};

/// Bodies larger than this are staged.
pub(crate) const STAGE_AT: usize = 4 << 20;
/// Bytes of chunks per staging commit; a whole number of chunks.
const STEP: usize = 32 * CHUNK_SIZE;

const MARK: &[u8] = b"staged/";

/// What the writer staged for one operation.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Staged {
    /// In `bodies`, for the message's local deliveries.
    pub body: Option<BodyId>,
    /// In `queue_bodies`, for its queue entry.
    pub queued: Option<QueueId>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Body = 1,
    Queued = 2,
}

impl Kind {
    fn table(self, t: &Tables) -> &Table {
        match self {
            Kind::Body => &t.bodies,
            Kind::Queued => &t.queue_bodies,
        }
    }

    fn counter(self) -> &'static str {
        match self {
            Kind::Body => "next_body_id",
            Kind::Queued => "next_queue_id",
        }
    }

    /// Whether the stored record that owns chunks `id` exists.
    fn linked(self, t: &Tables, txn: &RwTxn<'_>, id: u64) -> Result<bool, StoreError> {
        let owner = match self {
            Kind::Body => &t.body_refs,
            Kind::Queued => &t.queue,
        };
        Ok(owner.get(txn, &id.to_be_bytes())?.is_some())
    }
}

fn mark(kind: Kind, id: u64) -> Vec<u8> {
    [MARK, &[kind as u8], &id.to_be_bytes()].concat()
}

/// Writes ahead the large bodies `op` will store, each in commits of its own.
pub(crate) fn stage(inner: &Inner, op: &WriteOp) -> Result<Staged, StoreError> {
    let mut staged = Staged::default();
    let result = (|| {
        match op {
            WriteOp::Deliver { message, .. } if message.len() > STAGE_AT => {
                staged.body = Some(write(inner, Kind::Body, message)?);
            }
            WriteOp::Submit {
                message, local, queue, ..
            } if message.len() > STAGE_AT => {
                if !local.is_empty() {
                    staged.body = Some(write(inner, Kind::Body, message)?);
                }
                if queue.is_some() {
                    staged.queued = Some(write(inner, Kind::Queued, message)?);
                }
            }
            _ => {}
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(staged),
        Err(e) => {
            // What was staged before the failure; if this fails too, the next open sweeps it.
            let _ = inner.env.write_txn().map_err(StoreError::from).and_then(|mut txn| {
                settle(&inner.t, &mut txn, staged)?;
                txn.commit().map_err(StoreError::from)
            });
            Err(e)
        }
    }
}

fn write(inner: &Inner, kind: Kind, bytes: &[u8]) -> Result<u64, StoreError> {
    let t = &inner.t;
    let mut txn = inner.env.write_txn()?;
    let id = next_counter(t, &mut txn, kind.counter())?;
    t.meta.put(&mut txn, &mark(kind, id), &[])?;
    // The id and its mark go with the first step.
    let mut first_step = Some(txn);
    for (step, first) in bytes.chunks(STEP).zip((0..).step_by(STEP / CHUNK_SIZE)) {
        let mut txn = match first_step.take() {
            Some(txn) => txn,
            None => inner.env.write_txn()?,
        };
        put_chunks((kind.table(t), t.page_size), &mut txn, id, first, step)?;
        txn.commit()?;
    }
    if let Some(txn) = first_step {
        txn.commit()?;
    }
    Ok(id)
}

/// After the operation (committed or not): the marks go, and chunks nothing links with them.
pub(crate) fn settle(t: &Tables, txn: &mut RwTxn<'_>, staged: Staged) -> Result<(), StoreError> {
    for (kind, id) in [(Kind::Body, staged.body), (Kind::Queued, staged.queued)] {
        if let Some(id) = id {
            release(t, txn, kind, id)?;
        }
    }
    Ok(())
}

/// One staged id: its mark goes, and its chunks unless a stored record links them.
fn release(t: &Tables, txn: &mut RwTxn<'_>, kind: Kind, id: u64) -> Result<(), StoreError> {
    t.meta.delete(txn, &mark(kind, id))?;
    if !kind.linked(t, txn, id)? {
        delete_chunks(kind.table(t), txn, id)?;
    }
    Ok(())
}

/// At open: what a crash left staged is removed; returns how many bodies that was.
pub(crate) fn sweep(t: &Tables, txn: &mut RwTxn<'_>) -> Result<usize, StoreError> {
    let marks: Vec<Vec<u8>> = t
        .meta
        .prefix_iter(txn, MARK)?
        .map(|r| r.map(|(k, _)| k.to_vec()))
        .collect::<Result<_, _>>()?;
    for key in &marks {
        let rest = &key[MARK.len()..];
        let id = key_id(rest.get(1..).unwrap_or_default());
        match rest.first() {
            Some(1) => release(t, txn, Kind::Body, id)?,
            Some(2) => release(t, txn, Kind::Queued, id)?,
            // Not a mark this version writes: nothing to release with it.
            _ => _ = t.meta.delete(txn, key)?,
        }
    }
    Ok(marks.len())
}
