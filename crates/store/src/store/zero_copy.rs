//! Message bytes that outlive the borrow they were read under, so plaintext bodies can go from
//! the LMDB map to the socket without a copy (DESIGN.md §3).
//!
//! A `MappedSnapshot` is a read transaction owned by reference count; every `MappedBytes` taken
//! from it points into the memory map and holds the transaction. Nothing here names the io
//! layer: `runtime::io` is what hands `MappedBytes` to the kernel.
//!
//! Invariants: a `MappedBytes` points at a value read in the transaction it holds. LMDB never
//! changes or reuses a page that a live reader can see, and the environment is never closed
//! (it is leaked for `'static`), so the bytes stay valid and unchanged while any `MappedBytes`
//! of that transaction lives. Whoever holds one holds a read transaction: callers bound how
//! much one transaction covers and drop it within a bounded time (a write timeout that closes
//! the connection ends the write that owns it).

use std::ops::{Deref, Range};
use std::ptr::NonNull;
use std::rc::Rc;

use heed::{RoTxn, WithoutTls};

use super::records::{keys, BodyId};
use super::{Inner, StoreError, Table};

/// A read transaction that can be shared by the slices of the map read under it.
pub struct MappedSnapshot {
    txn: Rc<RoTxn<'static, WithoutTls>>,
    bodies: Table,
    dot_lines: Table,
}

impl MappedSnapshot {
    pub(crate) fn new(inner: &Inner) -> Result<MappedSnapshot, StoreError> {
        Ok(MappedSnapshot {
            txn: Rc::new(inner.env.read_txn()?),
            bodies: inner.t.bodies,
            dot_lines: inner.t.dot_lines,
        })
    }

    /// Where the body's lines start with '.', if the store indexed them (`dot_lines`); a
    /// damaged entry reads as none.
    pub fn dot_lines(&self, body: BodyId) -> Result<Option<Vec<u32>>, StoreError> {
        let value = self.dot_lines.get(&self.txn, &body.to_be_bytes())?;
        Ok(value.and_then(super::dot_lines::decode))
    }

    /// The body's chunks in order, starting at chunk `from`, each still in the map.
    pub fn body(&self, body: BodyId, from: u32) -> Result<MappedChunks<'_>, StoreError> {
        MappedChunks::new(&self.txn, &self.bodies, body, from)
    }
}

pub struct MappedChunks<'t> {
    txn: &'t Rc<RoTxn<'static, WithoutTls>>,
    iter: heed::RoRange<'t, heed::types::Bytes, heed::types::Bytes>,
}

impl<'t> MappedChunks<'t> {
    /// `body`'s chunks from chunk `from` on, read under `txn`.
    pub(crate) fn new(
        txn: &'t Rc<RoTxn<'static, WithoutTls>>,
        bodies: &Table,
        body: BodyId,
        from: u32,
    ) -> Result<MappedChunks<'t>, StoreError> {
        let start = keys::chunk(body, from);
        let end = keys::chunk(body + 1, 0);
        let range = (
            std::ops::Bound::Included(&start[..]),
            std::ops::Bound::Excluded(&end[..]),
        );
        Ok(MappedChunks {
            txn,
            iter: bodies.range(txn, &range)?,
        })
    }
}

impl Iterator for MappedChunks<'_> {
    type Item = Result<MappedBytes, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.iter.next()?;
        Some(item.map_err(StoreError::from).map(|(_, value)| MappedBytes {
            txn: self.txn.clone(),
            bytes: NonNull::from(value),
        }))
    }
}

/// Bytes in the memory map, kept valid by the read transaction they hold.
#[derive(Clone)]
pub struct MappedBytes {
    txn: Rc<RoTxn<'static, WithoutTls>>,
    bytes: NonNull<[u8]>,
}

impl MappedBytes {
    /// A part of these bytes, under the same transaction. Panics if `range` is out of bounds,
    /// as slicing does.
    pub fn slice(&self, range: Range<usize>) -> MappedBytes {
        MappedBytes {
            txn: self.txn.clone(),
            bytes: NonNull::from(&self[range]),
        }
    }
}

impl Deref for MappedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `bytes` is a value (or part of one) that heed returned under `self.txn`,
        // which this struct keeps alive. LMDB leaves every page visible to a live read
        // transaction in place and unchanged until that transaction ends, and the environment
        // is never closed, so the pointer is valid for reads of its length and nothing writes
        // there while `self` exists.
        unsafe { self.bytes.as_ref() }
    }
}

impl std::fmt::Debug for MappedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MappedBytes({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::*;
    use crate::store::records::ScramCredentials;

    fn deliver(store: &Store, body: &[u8]) -> Delivered {
        let (message, structure) = crate::mime::ingest(body.to_vec()).unwrap();
        let op = WriteOp::Deliver {
            message: message.into(),
            structure: Arc::new(structure),
            recipients: vec![Recipient {
                user: "bob".into(),
                mailbox: "INBOX".into(),
            }],
        };
        match store.write_blocking(op).unwrap() {
            WriteOutcome::Delivered(mut r) => r.remove(0).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mapped_bytes_outlive_their_snapshot_and_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write_blocking(WriteOp::AddUser(NewUser {
                name: "bob".into(),
                password_hash: "x".into(),
                scram: ScramCredentials::placeholder(),
                admin: false,
            }))
            .unwrap();
        let big: Vec<u8> = [b"Subject: big\r\n\r\n".as_slice(), &vec![b'x'; 2 * CHUNK_SIZE + 5]].concat();
        let delivered = deliver(&store, &big);
        let body_id = store
            .snapshot()
            .unwrap()
            .message(delivered.mailbox, delivered.uid)
            .unwrap()
            .unwrap()
            .body_id;

        let snapshot = store.mapped_snapshot().unwrap();
        let chunks: Vec<MappedBytes> = snapshot.body(body_id, 0).unwrap().map(Result::unwrap).collect();
        assert_eq!(chunks.len(), 3);
        let tail = snapshot.body(body_id, 1).unwrap().count();
        assert_eq!(tail, 2, "starts at the chunk asked for");
        let part = chunks[0].slice(2..9);
        drop(snapshot);

        // Free the body and write over the store: pages a live reader sees are not reused.
        store
            .write_blocking(WriteOp::Expunge {
                mailbox: delivered.mailbox,
                uids: vec![delivered.uid],
            })
            .unwrap();
        for _ in 0..4 {
            deliver(
                &store,
                &[b"Subject: other\r\n\r\n".as_slice(), &vec![b'y'; 3 * CHUNK_SIZE]].concat(),
            );
        }
        assert_eq!(chunks.iter().map(|c| c.to_vec()).collect::<Vec<_>>().concat(), big);
        assert_eq!(&part[..], &big[2..9]);
        assert_eq!(
            store.mapped_snapshot().unwrap().body(body_id, 0).unwrap().count(),
            0,
            "a new snapshot sees the expunge"
        );
    }
}
