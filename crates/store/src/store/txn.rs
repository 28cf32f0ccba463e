//! Helpers shared by the write operations: counters, record encoding, body references.
//! Only the writer thread calls these, inside its write transaction.

use std::time::{SystemTime, UNIX_EPOCH};

use heed::RwTxn;

use super::records::keys;
use super::{StoreError, Table, Tables, CHUNK_SIZE};

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(crate) fn next_counter(t: &Tables, txn: &mut RwTxn<'_>, name: &str) -> Result<u64, StoreError> {
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
pub(crate) fn next_uid_validity(t: &Tables, txn: &mut RwTxn<'_>) -> Result<u32, StoreError> {
    let last = t
        .meta
        .get(txn, b"last_uid_validity")?
        .and_then(|v| v.try_into().ok())
        .map_or(0, u32::from_be_bytes);
    let value = (now() as u32).max(last + 1);
    t.meta.put(txn, b"last_uid_validity", &value.to_be_bytes())?;
    Ok(value)
}

pub(crate) fn put_json<T: serde::Serialize>(
    table: &Table,
    txn: &mut RwTxn<'_>,
    key: &[u8],
    v: &T,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(v).expect("records serialize: plain data only");
    table.put(txn, key, &bytes)?;
    Ok(())
}

/// Drops one reference to a body; the last one deletes its chunks and structure.
pub(crate) fn release_body(t: &Tables, txn: &mut RwTxn<'_>, body: u64) -> Result<(), StoreError> {
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
    delete_body(t, txn, body)
}

/// Writes `bytes` as the chunks of `id` in a chunked table (bodies, queued bytes), numbered
/// from `first`.
pub(crate) fn put_chunks(
    table: &Table,
    txn: &mut RwTxn<'_>,
    id: u64,
    first: u32,
    bytes: &[u8],
) -> Result<(), StoreError> {
    for (n, chunk) in (first..).zip(bytes.chunks(CHUNK_SIZE)) {
        table.put(txn, &keys::chunk(id, n), chunk)?;
    }
    Ok(())
}

/// Deletes a body whatever its count: its count, structure, dot-line index and chunks.
pub(crate) fn delete_body(t: &Tables, txn: &mut RwTxn<'_>, body: u64) -> Result<(), StoreError> {
    let key = body.to_be_bytes();
    t.body_refs.delete(txn, &key)?;
    t.structures.delete(txn, &key)?;
    t.dot_lines.delete(txn, &key)?;
    delete_chunks(&t.bodies, txn, body)
}

/// Deletes the chunks (id, n) of `id` in a chunked table (bodies, queued bytes).
pub(crate) fn delete_chunks(table: &Table, txn: &mut RwTxn<'_>, id: u64) -> Result<(), StoreError> {
    let (start, end) = (keys::chunk(id, 0), keys::chunk(id, u32::MAX));
    table.delete_range(txn, &inclusive(&start, &end))?;
    Ok(())
}

/// The ids that own chunks in a chunked table (the first 8 bytes of its keys), each once.
pub(crate) fn chunk_owners(
    table: &Table,
    txn: &heed::RoTxn<'_, heed::WithoutTls>,
) -> Result<std::collections::BTreeSet<u64>, StoreError> {
    let mut owners = std::collections::BTreeSet::new();
    for item in table.iter(txn)? {
        owners.insert(key_id(item?.0));
    }
    Ok(owners)
}

/// The big-endian id at the start of a key (0 for a key too short to hold one).
pub(crate) fn key_id(key: &[u8]) -> u64 {
    key.get(..8)
        .and_then(|k| k.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// Deletes every key of `table` that starts with `prefix` (a user's, a mailbox's).
pub(crate) fn delete_prefix(table: &Table, txn: &mut RwTxn<'_>, prefix: &[u8]) -> Result<(), StoreError> {
    let keys: Vec<Vec<u8>> = table
        .prefix_iter(txn, prefix)?
        .map(|r| r.map(|(k, _)| k.to_vec()))
        .collect::<Result<_, _>>()?;
    for k in keys {
        table.delete(txn, &k)?;
    }
    Ok(())
}

pub(crate) fn inclusive<'a>(start: &'a [u8], end: &'a [u8]) -> (std::ops::Bound<&'a [u8]>, std::ops::Bound<&'a [u8]>) {
    (std::ops::Bound::Included(start), std::ops::Bound::Included(end))
}
