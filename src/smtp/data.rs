//! Reading the DATA section: lines up to the lone ".", with dot-unstuffing (RFC 5321 §4.5.2),
//! over input that arrives in any pieces. Past the size limit bytes are counted, not kept, so
//! an oversized message costs no memory while it is read to its end.

use memchr::memchr;

pub struct DataReader {
    /// The message so far, in blocks: a growing `Vec` would copy itself at every doubling and
    /// briefly hold the old copy beside the new (3× a large message at the peak).
    blocks: Vec<Vec<u8>>,
    len: usize,
    at_line_start: bool,
    max_size: usize,
    oversized: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum DataEnd {
    Complete(Vec<u8>),
    TooBig,
}

impl DataReader {
    pub fn new(max_size: usize) -> DataReader {
        DataReader::with_hint(max_size, None)
    }

    /// `new`, for a message the client said (MAIL SIZE=, RFC 1870) is about `expected` bytes:
    /// it goes into one buffer of that size, so it is never copied on the way.
    pub fn with_hint(max_size: usize, expected: Option<u64>) -> DataReader {
        let first = expected
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n <= max_size)
            // A little room for a size that was estimated before the line endings were final.
            .map(|n| vec![Vec::with_capacity(n + n / 64 + 4096)]);
        DataReader {
            blocks: first.unwrap_or_default(),
            len: 0,
            at_line_start: true,
            max_size,
            oversized: false,
        }
    }

    /// Takes what it can of `input`; returns the bytes consumed and, at the final ".", the end.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Option<DataEnd>) {
        let mut used = 0;
        while used < input.len() {
            let rest = &input[used..];
            let (line, complete) = match memchr(b'\n', rest) {
                Some(i) => (&rest[..=i], true),
                None => (rest, false),
            };
            if self.at_line_start && line[0] == b'.' {
                if line == b".\r\n" || line == b".\n" {
                    used += line.len();
                    return (used, Some(self.finish()));
                }
                // "." or ".\r" may yet be the end marker: wait for the rest of the line.
                if !complete && (line == b"." || line == b".\r") {
                    break;
                }
                self.append(&line[1..]);
            } else {
                self.append(line);
            }
            self.at_line_start = complete;
            used += line.len();
        }
        (used, None)
    }

    fn append(&mut self, mut bytes: &[u8]) {
        if self.oversized {
            return;
        }
        if self.len + bytes.len() > self.max_size {
            self.oversized = true;
            self.blocks = Vec::new();
            return;
        }
        self.len += bytes.len();
        while !bytes.is_empty() {
            // The first block grows as a Vec does, so a small message costs what it is; the
            // next ones are allocated whole.
            let first = self.blocks.len() == 1;
            let room = match self.blocks.last() {
                Some(block) if first => BLOCK.max(block.capacity()) - block.len(),
                Some(block) => block.capacity() - block.len(),
                None => 0,
            };
            if room == 0 {
                let capacity = if self.blocks.is_empty() { 0 } else { BLOCK };
                self.blocks.push(Vec::with_capacity(capacity));
                continue;
            }
            let take = bytes.len().min(room);
            self.blocks
                .last_mut()
                .expect("room in a block")
                .extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
    }

    fn finish(&mut self) -> DataEnd {
        if self.oversized {
            return DataEnd::TooBig;
        }
        let mut blocks = std::mem::take(&mut self.blocks);
        if blocks.len() <= 1 {
            return DataEnd::Complete(blocks.pop().unwrap_or_default());
        }
        // One exact copy, each block freed as soon as it is in.
        let mut message = Vec::with_capacity(self.len);
        for block in blocks {
            message.extend_from_slice(&block);
        }
        DataEnd::Complete(message)
    }
}

/// A large message is kept in blocks of this size while it arrives.
const BLOCK: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    const WIRE: &[u8] = b"Subject: a\r\n\r\n..dot\r\nline\r\n.x\r\n.\r\nNEXT";

    fn read_split(input: &[u8], cut: usize, max: usize) -> (usize, Option<DataEnd>) {
        let mut r = DataReader::new(max);
        let (a, end) = r.feed(&input[..cut]);
        if end.is_some() {
            return (a, end);
        }
        // The caller keeps unconsumed bytes and presents them again with what follows.
        let (b, end) = r.feed(&input[a..]);
        (a + b, end)
    }

    #[test]
    fn unstuffs_and_stops_at_the_dot_at_every_split() {
        for cut in 0..=WIRE.len() {
            let (used, end) = read_split(WIRE, cut, 1000);
            assert_eq!(used, WIRE.len() - 4, "cut {cut}");
            assert_eq!(
                end,
                Some(DataEnd::Complete(b"Subject: a\r\n\r\n.dot\r\nline\r\nx\r\n".to_vec())),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn oversized_data_is_read_to_the_end_but_not_kept() {
        let (used, end) = read_split(WIRE, 7, 10);
        assert_eq!(used, WIRE.len() - 4);
        assert_eq!(end, Some(DataEnd::TooBig));
    }

    #[test]
    fn a_large_message_comes_out_whole_from_its_blocks() {
        let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
        let lines = 3 * BLOCK / line.len() + 7;
        let mut wire = line.repeat(lines);
        wire.extend_from_slice(b".\r\n");
        let mut r = DataReader::new(usize::MAX);
        let mut used = 0;
        let mut end = None;
        for piece in wire.chunks(65_536) {
            let (n, e) = r.feed(piece);
            used += n;
            end = e.or(end);
        }
        assert_eq!(used, wire.len());
        assert_eq!(end, Some(DataEnd::Complete(line.repeat(lines))));
    }

    #[test]
    fn a_message_of_the_size_announced_is_never_copied() {
        let body = b"x\r\n".repeat(2 * BLOCK);
        let mut r = DataReader::with_hint(usize::MAX, Some(body.len() as u64));
        let pointer = r.blocks[0].as_ptr();
        let mut wire = body.clone();
        wire.extend_from_slice(b".\r\n");
        let mut end = None;
        for piece in wire.chunks(65_536) {
            end = r.feed(piece).1.or(end);
        }
        let Some(DataEnd::Complete(message)) = end else {
            panic!("incomplete")
        };
        assert_eq!((message.as_ptr(), message.len()), (pointer, body.len()));
    }

    #[test]
    fn a_dot_inside_a_line_is_data() {
        let mut r = DataReader::new(100);
        assert_eq!(r.feed(b"a.\r\n"), (4, None));
        assert_eq!(r.feed(b".\r\n").1, Some(DataEnd::Complete(b"a.\r\n".to_vec())));
    }
}
