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
/// from `first`, in an environment of `page`-byte pages (`pieces`).
pub(crate) fn put_chunks(
    (table, page): (&Table, usize),
    txn: &mut RwTxn<'_>,
    id: u64,
    first: u32,
    bytes: &[u8],
) -> Result<(), StoreError> {
    for (n, chunk) in (first..).zip(pieces(bytes, page)) {
        put_last(table, txn, &keys::chunk(id, n), chunk)?;
    }
    Ok(())
}

/// `put` for a key that is normally the largest in its table: the records of a body or queued
/// message just numbered. Told so, LMDB starts a new leaf page when the last one is full
/// instead of splitting it in half, so such tables' leaves end full, not half empty. A key that
/// is not the largest (a staged body linked after later ones, or a writer in another process
/// in between) is put as any other.
pub(crate) fn put_last(table: &Table, txn: &mut RwTxn<'_>, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
    match table.put_with_flags(txn, heed::PutFlags::APPEND, key, value) {
        Err(heed::Error::Mdb(heed::MdbError::KeyExist)) => Ok(table.put(txn, key, value)?),
        done => Ok(done?),
    }
}

/// `bytes` cut into the values stored as chunks: `CHUNK_SIZE` each, except the last, shorter
/// piece. LMDB puts a value larger than about half a page in pages of its own (an overflow
/// run, after a 16-byte header), so a piece just over a page would take two pages, one of
/// them nearly empty. When what goes past the last whole page is small enough to lie in a
/// leaf page beside other records, the piece is cut there: a message of 4,200 bytes takes
/// one page and 120 bytes of a leaf, not two pages. A full piece is never cut, so a run of
/// whole pieces always makes one chunk each (`stage` numbers its steps by that).
pub(crate) fn pieces(bytes: &[u8], page: usize) -> impl Iterator<Item = &[u8]> {
    bytes.chunks(CHUNK_SIZE).flat_map(move |piece| {
        let cut = if piece.len() < CHUNK_SIZE {
            cut(piece.len(), page)
        } else {
            piece.len()
        };
        let (head, tail) = piece.split_at(cut);
        [head, tail].into_iter().filter(|p| !p.is_empty())
    })
}

/// Where a value of `len` bytes is cut (`pieces`); `len` when it is not.
fn cut(len: usize, page: usize) -> usize {
    // LMDB's page header, which an overflow run starts with.
    const HEADER: usize = 16;
    // Well under the largest record LMDB keeps in a leaf page (half a page less a few headers).
    let in_leaf = (page / 2).saturating_sub(128);
    let whole = (len + HEADER) / page * page;
    match whole.checked_sub(HEADER) {
        Some(head) if head > 0 && len - head <= in_leaf => head,
        _ => len,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lengths(len: usize) -> Vec<usize> {
        pieces(&vec![0; len], 4096).map(<[u8]>::len).collect()
    }

    #[test]
    fn a_last_piece_just_over_whole_pages_is_cut_where_they_end() {
        // One page holds 4,080 bytes after its header, two 8,176.
        assert_eq!(lengths(4200), [4080, 120]);
        assert_eq!(lengths(10_000), [8176, 1824]);
        assert_eq!(lengths(2 * CHUNK_SIZE + 4200), [CHUNK_SIZE, CHUNK_SIZE, 4080, 120]);
    }

    #[test]
    fn pieces_that_would_take_as_many_pages_are_left_whole() {
        // What is past the page is too large for a leaf page: it would take a page itself.
        assert_eq!(lengths(7000), [7000]);
        // Small enough for a leaf page, fills its pages exactly, or is less than one.
        assert_eq!(lengths(2000), [2000]);
        assert_eq!(lengths(4080), [4080]);
        assert_eq!(lengths(3000), [3000]);
        // A full piece is never cut: each makes one chunk.
        assert_eq!(lengths(2 * CHUNK_SIZE), [CHUNK_SIZE, CHUNK_SIZE]);
        assert_eq!(lengths(0), Vec::<usize>::new());
    }
}
