//! Reading BDAT chunks (RFC 3030 §2): exactly the announced number of octets, taken as they
//! are (no dot-stuffing, no end marker), over input that arrives in any pieces. The message
//! grows chunk by chunk; past the size limit octets are counted, not kept, so every chunk is
//! still read to its end and the session stays in step with the client. A BURL chunk (RFC 4468
//! §4) is the data its URL names, added whole, between BDAT chunks or instead of them.

pub struct ChunkReader {
    message: Vec<u8>,
    max_size: usize,
    oversized: bool,
    /// Octets of the current chunk still to come.
    remaining: u64,
    last: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ChunkEnd {
    /// A chunk ended that was not the last: the octets received so far.
    More(u64),
    Complete(Vec<u8>),
    TooBig,
}

impl ChunkReader {
    pub fn new(max_size: usize) -> ChunkReader {
        ChunkReader {
            message: Vec::new(),
            max_size,
            oversized: false,
            remaining: 0,
            last: false,
        }
    }

    /// Starts the next chunk of `size` octets.
    pub fn start(&mut self, size: u64, last: bool) {
        self.remaining = size;
        self.last = last;
        if size > self.max_size as u64 {
            self.drop_message();
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
        if !self.oversized {
            if self.message.len() + bytes.len() > self.max_size {
                self.drop_message();
            } else {
                self.message.extend_from_slice(bytes);
            }
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
        match (self.oversized, self.last) {
            (true, _) => ChunkEnd::TooBig,
            (false, true) => ChunkEnd::Complete(std::mem::take(&mut self.message)),
            (false, false) => ChunkEnd::More(self.message.len() as u64),
        }
    }

    fn drop_message(&mut self) {
        self.oversized = true;
        self.message = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_join_at_every_split() {
        let wire = b"Subject: x\r\n\r\n.body\r\nNEXT";
        for cut in 0..=wire.len() {
            let mut r = ChunkReader::new(100);
            r.start(8, false);
            let mut used = r.feed(&wire[..cut.min(8)]);
            used += r.feed(&wire[used..8]);
            assert!(r.chunk_done());
            assert_eq!(r.end_of_chunk(), ChunkEnd::More(8));
            r.start(13, true);
            let first = r.feed(&wire[used..cut.max(used)]);
            let rest = r.feed(&wire[used + first..]);
            assert_eq!(used + first + rest, wire.len() - 4, "cut {cut}");
            assert_eq!(r.end_of_chunk(), ChunkEnd::Complete(wire[..21].to_vec()));
        }
    }

    #[test]
    fn oversized_chunks_are_read_but_not_kept() {
        let mut r = ChunkReader::new(10);
        r.start(8, false);
        assert_eq!(r.feed(&[b'a'; 8]), 8);
        r.start(8, true);
        assert_eq!(r.feed(&[b'a'; 20]), 8);
        assert_eq!(r.end_of_chunk(), ChunkEnd::TooBig);
        let mut r = ChunkReader::new(10);
        r.start(u64::MAX, true);
        assert_eq!(r.feed(&[b'a'; 20]), 20);
        assert!(!r.chunk_done());
    }

    #[test]
    fn burl_data_joins_bdat_chunks() {
        let mut r = ChunkReader::new(10);
        r.start(3, false);
        r.feed(b"abc");
        assert_eq!(r.end_of_chunk(), ChunkEnd::More(3));
        assert_eq!(r.append(b"def", false), ChunkEnd::More(6));
        assert_eq!(r.append(b"g", true), ChunkEnd::Complete(b"abcdefg".to_vec()));
        let mut r = ChunkReader::new(4);
        assert_eq!(r.append(b"abc", false), ChunkEnd::More(3));
        assert_eq!(r.append(b"de", true), ChunkEnd::TooBig);
    }

    #[test]
    fn an_empty_last_chunk_completes() {
        let mut r = ChunkReader::new(10);
        r.start(3, false);
        r.feed(b"abc");
        r.end_of_chunk();
        r.start(0, true);
        assert!(r.chunk_done());
        assert_eq!(r.end_of_chunk(), ChunkEnd::Complete(b"abc".to_vec()));
    }
}
