//! Reading the DATA section: lines up to the lone ".", with dot-unstuffing (RFC 5321 §4.5.2),
//! over input that arrives in any pieces. Past the size limit bytes are counted, not kept, so
//! an oversized message costs no memory while it is read to its end.

use memchr::memchr;

use crate::spool::{Spool, SpoolError, Spooled};

pub struct DataReader {
    /// The message so far, canonical; it leaves memory for a file once large.
    spool: Option<Spool>,
    /// Octets received (after unstuffing), against the size limit.
    received: usize,
    at_line_start: bool,
    max_size: usize,
}

#[derive(Debug)]
pub enum DataEnd {
    Complete(Spooled),
    TooBig,
    /// The message could not be kept (the spool file): the client should try again later.
    Failed(SpoolError),
}

impl DataReader {
    pub fn new(max_size: usize, spool: Spool) -> DataReader {
        DataReader {
            spool: Some(spool),
            received: 0,
            at_line_start: true,
            max_size,
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

    fn append(&mut self, bytes: &[u8]) {
        self.received = self.received.saturating_add(bytes.len());
        if self.received > self.max_size {
            // Past the limit bytes are counted, not kept (the spool and its file go now).
            self.spool = None;
        }
        if let Some(spool) = &mut self.spool {
            spool.push(bytes);
        }
    }

    fn finish(&mut self) -> DataEnd {
        match self.spool.take() {
            None => DataEnd::TooBig,
            Some(spool) => match spool.finish() {
                Ok(message) => DataEnd::Complete(message),
                Err(e) => DataEnd::Failed(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WIRE: &[u8] = b"Subject: a\r\n\r\n..dot\r\nline\r\n.x\r\n.\r\nNEXT";

    fn complete(end: Option<DataEnd>) -> Vec<u8> {
        match end {
            Some(DataEnd::Complete(message)) => message.to_vec(),
            other => panic!("not complete: {other:?}"),
        }
    }

    fn read_split(input: &[u8], cut: usize, max: usize) -> (usize, Option<DataEnd>) {
        let mut r = DataReader::new(max, Spool::new(None, None));
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
            assert_eq!(complete(end), b"Subject: a\r\n\r\n.dot\r\nline\r\nx\r\n", "cut {cut}");
        }
    }

    #[test]
    fn oversized_data_is_read_to_the_end_but_not_kept() {
        let (used, end) = read_split(WIRE, 7, 10);
        assert_eq!(used, WIRE.len() - 4);
        assert!(matches!(end, Some(DataEnd::TooBig)));
    }

    #[test]
    fn a_dot_inside_a_line_is_data() {
        let mut r = DataReader::new(100, Spool::new(None, None));
        assert!(matches!(r.feed(b"a.\r\n"), (4, None)));
        assert_eq!(complete(r.feed(b".\r\n").1), b"a.\r\n");
    }
}
