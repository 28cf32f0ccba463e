//! Message bytes a FETCH response refers to instead of holding: section data left in the
//! store's map, each piece noted with the place in the output buffer where it goes. Whoever
//! sends the output sends the pieces at their places (over TLS they are sealed from the map
//! straight into records, one copy fewer than through the output buffer).
//!
//! Invariants: a piece's place is an offset into the output buffer as it was when the piece
//! was noted, and nothing before that offset changes afterwards (the renderer only appends,
//! and takes back what it noted when it takes back what it wrote: `rewind`). Places are in
//! order. Every piece holds the read transaction it was read under, so the sender sends and
//! drops them within a bounded time, never across a wait for input.

use crate::store::MappedBytes;

#[derive(Default)]
pub struct Referred {
    pieces: Vec<(usize, MappedBytes)>,
    len: usize,
}

impl Referred {
    /// Bytes referred to so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// Notes `piece` as going out at offset `at` of the output buffer.
    pub fn push(&mut self, at: usize, piece: MappedBytes) {
        debug_assert!(self.pieces.last().is_none_or(|(last, _)| *last <= at));
        self.len += piece.len();
        self.pieces.push((at, piece));
    }

    /// How many pieces there are: a mark to `rewind` to.
    pub fn mark(&self) -> usize {
        self.pieces.len()
    }

    /// Forgets the pieces noted since `mark` (a response taken back out of the buffer).
    pub fn rewind(&mut self, mark: usize) {
        for (_, piece) in self.pieces.drain(mark.min(self.pieces.len())..) {
            self.len -= piece.len();
        }
    }

    /// The pieces in order with their places, leaving none here, nor their list's room: a
    /// session that has sent a download and waits for its next command keeps no list.
    pub fn take(&mut self) -> std::vec::IntoIter<(usize, MappedBytes)> {
        self.len = 0;
        std::mem::take(&mut self.pieces).into_iter()
    }
}
