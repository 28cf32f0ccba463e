//! Reading BDAT chunks (RFC 3030 §2): exactly the announced number of octets, taken as they
//! are (no dot-stuffing, no end marker), over input that arrives in any pieces. The message
//! grows chunk by chunk; past the size limit octets are counted, not kept, so every chunk is
//! still read to its end and the session stays in step with the client. A BURL chunk (RFC 4468
//! §4) is the data its URL names, added whole, between BDAT chunks or instead of them.

use crate::spool::{Spool, SpoolError, Spooled};

pub struct ChunkReader {
    /// The message so far, canonical; `None` once past the size limit.
    spool: Option<Spool>,
    /// Octets received, against the size limit.
    received: u64,
    max_size: usize,
    /// Octets of the current chunk still to come.
    remaining: u64,
    last: bool,
}

#[derive(Debug)]
pub enum ChunkEnd {
    /// A chunk ended that was not the last: the octets received so far.
    More(u64),
    Complete(Spooled),
    TooBig,
    /// The message could not be kept (the spool file): the client should try again later.
    Failed(SpoolError),
}

impl ChunkReader {
    pub fn new(max_size: usize, spool: Spool) -> ChunkReader {
        ChunkReader {
            spool: Some(spool),
            received: 0,
            max_size,
            remaining: 0,
            last: false,
        }
    }

    /// Starts the next chunk of `size` octets.
    pub fn start(&mut self, size: u64, last: bool) {
        self.remaining = size;
        self.last = last;
        if size > self.max_size as u64 {
            self.spool = None;
        }
    }

    /// True once the current chunk has all its octets.
    pub fn chunk_done(&self) -> bool {
        self.remaining == 0
    }

    /// Takes what belongs to the current chunk; returns the octets used.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        let take = usize::try_from(self.remaining).map_or(input.len(), |r| r.min(input.len()));
        let bytes = &input[..take];
        self.received = self.received.saturating_add(take as u64);
        if self.received > self.max_size as u64 {
            self.spool = None;
        }
        if let Some(spool) = &mut self.spool {
            spool.push(bytes);
        }
        self.remaining -= take as u64;
        take
    }

    /// Adds a whole chunk at once: the data of a BURL URL (RFC 4468 §4). Call only when
    /// `chunk_done`.
    pub fn append(&mut self, data: &[u8], last: bool) -> ChunkEnd {
        self.start(data.len() as u64, last);
        self.feed(data);
        self.end_of_chunk()
    }

    /// What a finished chunk means. Call only when `chunk_done`.
    pub fn end_of_chunk(&mut self) -> ChunkEnd {
        if !self.last {
            return match self.spool {
                Some(_) => ChunkEnd::More(self.received),
                None => ChunkEnd::TooBig,
            };
        }
        match self.spool.take().map(Spool::finish) {
            None => ChunkEnd::TooBig,
            Some(Ok(message)) => ChunkEnd::Complete(message),
            Some(Err(e)) => ChunkEnd::Failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(end: ChunkEnd) -> Vec<u8> {
        match end {
            ChunkEnd::Complete(message) => message.to_vec(),
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn chunks_join_at_every_split() {
        let wire = b"Subject: x\r\n\r\n.body\r\nNEXT";
        for cut in 0..=wire.len() {
            let mut r = ChunkReader::new(100, Spool::new(None, None));
            r.start(8, false);
            let mut used = r.feed(&wire[..cut.min(8)]);
            used += r.feed(&wire[used..8]);
            assert!(r.chunk_done());
            assert!(matches!(r.end_of_chunk(), ChunkEnd::More(8)));
            r.start(13, true);
            let first = r.feed(&wire[used..cut.max(used)]);
            let rest = r.feed(&wire[used + first..]);
            assert_eq!(used + first + rest, wire.len() - 4, "cut {cut}");
            assert_eq!(complete(r.end_of_chunk()), wire[..21].to_vec());
        }
    }

    #[test]
    fn oversized_chunks_are_read_but_not_kept() {
        let mut r = ChunkReader::new(10, Spool::new(None, None));
        r.start(8, false);
        assert_eq!(r.feed(&[b'a'; 8]), 8);
        r.start(8, true);
        assert_eq!(r.feed(&[b'a'; 20]), 8);
        assert!(matches!(r.end_of_chunk(), ChunkEnd::TooBig));
        let mut r = ChunkReader::new(10, Spool::new(None, None));
        r.start(u64::MAX, true);
        assert_eq!(r.feed(&[b'a'; 20]), 20);
        assert!(!r.chunk_done());
    }

    #[test]
    fn burl_data_joins_bdat_chunks() {
        let mut r = ChunkReader::new(10, Spool::new(None, None));
        r.start(3, false);
        r.feed(b"abc");
        assert!(matches!(r.end_of_chunk(), ChunkEnd::More(3)));
        assert!(matches!(r.append(b"def", false), ChunkEnd::More(6)));
        assert_eq!(complete(r.append(b"g", true)), b"abcdefg".to_vec());
        let mut r = ChunkReader::new(4, Spool::new(None, None));
        assert!(matches!(r.append(b"abc", false), ChunkEnd::More(3)));
        assert!(matches!(r.append(b"de", true), ChunkEnd::TooBig));
    }

    #[test]
    fn an_empty_last_chunk_completes() {
        let mut r = ChunkReader::new(10, Spool::new(None, None));
        r.start(3, false);
        r.feed(b"abc");
        r.end_of_chunk();
        r.start(0, true);
        assert!(r.chunk_done());
        assert_eq!(complete(r.end_of_chunk()), b"abc".to_vec());
    }
}
