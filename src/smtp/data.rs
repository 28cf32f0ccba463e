//! Reading the DATA section: lines up to the lone ".", with dot-unstuffing (RFC 5321 §4.5.2),
//! over input that arrives in any pieces. Past the size limit bytes are counted, not kept, so
//! an oversized message costs no memory while it is read to its end.

use memchr::memchr;

pub struct DataReader {
    message: Vec<u8>,
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
        DataReader {
            message: Vec::new(),
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

    fn append(&mut self, bytes: &[u8]) {
        if self.oversized {
            return;
        }
        if self.message.len() + bytes.len() > self.max_size {
            self.oversized = true;
            self.message = Vec::new();
            return;
        }
        self.message.extend_from_slice(bytes);
    }

    fn finish(&mut self) -> DataEnd {
        if self.oversized {
            DataEnd::TooBig
        } else {
            DataEnd::Complete(std::mem::take(&mut self.message))
        }
    }
}

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
    fn a_dot_inside_a_line_is_data() {
        let mut r = DataReader::new(100);
        assert_eq!(r.feed(b"a.\r\n"), (4, None));
        assert_eq!(r.feed(b".\r\n").1, Some(DataEnd::Complete(b"a.\r\n".to_vec())));
    }
}
