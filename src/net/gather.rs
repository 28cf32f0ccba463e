//! Output gathered from pieces, for bulk replies: text the protocol wrote, constants, and
//! message bytes left where the store has them (its memory map). A plaintext connection
//! hands the pieces to the kernel in one gathered write; TLS feeds them to rustls. Either
//! way the message bytes are not first copied into an output buffer.
//!
//! Short mapped runs are copied instead (an iovec costs more than a small copy), so the number
//! of pieces stays proportional to the bytes. Pieces of mapped bytes hold a read transaction:
//! the caller sends and clears a `Gather` within a bounded time, never across a wait for input.

use crate::runtime::io::OutBuf;
use crate::store::MappedBytes;

/// Mapped runs shorter than this are copied into the text around them.
pub const MIN_MAPPED: usize = 1024;
/// Room a fresh text piece starts with (a status line and a trailer fit).
const TEXT_CAPACITY: usize = 128;

#[derive(Default)]
pub struct Gather {
    pieces: Vec<OutBuf>,
    len: usize,
}

impl Gather {
    /// Bytes gathered so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a copy of `bytes`.
    pub fn text(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        if let Some(OutBuf::Owned(last)) = self.pieces.last_mut() {
            last.extend_from_slice(bytes);
            return;
        }
        let mut text = Vec::with_capacity(bytes.len().max(TEXT_CAPACITY));
        text.extend_from_slice(bytes);
        self.pieces.push(OutBuf::Owned(text));
    }

    /// Appends a constant, without copying it unless text is being built anyway.
    pub fn literal(&mut self, bytes: &'static [u8]) {
        if let Some(OutBuf::Owned(_)) = self.pieces.last() {
            return self.text(bytes);
        }
        self.len += bytes.len();
        self.pieces.push(OutBuf::Static(bytes));
    }

    /// Appends bytes from the store's map, by reference unless they are short.
    pub fn mapped(&mut self, bytes: MappedBytes) {
        if bytes.len() < MIN_MAPPED {
            return self.text(&bytes);
        }
        self.len += bytes.len();
        self.pieces.push(OutBuf::Mapped(bytes));
    }

    /// The pieces, in order, for sending; the gather is left empty.
    pub fn take(&mut self) -> Vec<OutBuf> {
        self.len = 0;
        std::mem::take(&mut self.pieces)
    }

    /// Takes back a sent list of pieces to reuse its allocation; the pieces (and any read
    /// transaction they hold) are dropped.
    pub fn recycle(&mut self, mut sent: Vec<OutBuf>) {
        sent.clear();
        if self.pieces.capacity() == 0 {
            self.pieces = sent;
        }
    }

    /// Forgets everything gathered (a failed connection) and any spare allocation.
    pub fn clear(&mut self) {
        *self = Gather::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(g: &mut Gather) -> Vec<(char, Vec<u8>)> {
        g.take()
            .into_iter()
            .map(|p| {
                let kind = match p {
                    OutBuf::Owned(_) => 'o',
                    OutBuf::Static(_) => 's',
                    OutBuf::Mapped(_) => 'm',
                };
                (kind, p.to_vec())
            })
            .collect()
    }

    #[test]
    fn text_and_literals_coalesce() {
        let mut g = Gather::default();
        g.literal(b".");
        g.text(b"+OK\r\n");
        g.literal(b".\r\n");
        g.text(b"x");
        assert_eq!(g.len(), 10);
        assert_eq!(kinds(&mut g), [('s', b".".to_vec()), ('o', b"+OK\r\n.\r\nx".to_vec())]);
        assert!(g.is_empty());
    }
}
