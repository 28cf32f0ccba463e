//! Reading the DATA section: lines up to the lone ".", with dot-unstuffing (RFC 5321 §4.5.2),
//! over input that arrives in any pieces. Past the size limit bytes are counted, not kept, so
//! an oversized message costs no memory while it is read to its end.

use memchr::memchr;

pub struct DataReader {
    /// The message so far. A `Vec` left to double would copy itself each time and briefly
    /// hold the old copy beside the new (3× a large message at the peak), so a message past
    /// `RESERVE_AT` gets, once, room up to the size limit: address space, not memory, until
    /// written.
    message: Vec<u8>,
    /// Room up to the limit (or the size announced) is reserved already.
    reserved: bool,
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
        let message = expected
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n <= max_size)
            // A little room for a size that was estimated before the line endings were final.
            .map(|n| Vec::with_capacity(n + n / 64 + 4096));
        DataReader {
            reserved: message.is_some(),
            message: message.unwrap_or_default(),
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
        let len = self.message.len() + bytes.len();
        if len > self.max_size {
            self.oversized = true;
            self.message = Vec::new();
            return;
        }
        if len > RESERVE_AT && (!self.reserved || len > self.message.capacity()) {
            let room = (self.max_size - self.message.len()).min(MAX_RESERVATION);
            self.message.reserve_exact(room.max(bytes.len()));
            self.reserved = true;
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

/// Past this, a message without a size announced gets room up to the limit at once.
const RESERVE_AT: usize = 1 << 20;
/// The most address space reserved at once, whatever the limit.
const MAX_RESERVATION: usize = 1 << 30;

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
    fn a_large_message_is_never_copied_once_past_the_reservation() {
        let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n";
        let lines = 3 * RESERVE_AT / line.len() + 7;
        let mut wire = line.repeat(lines);
        wire.extend_from_slice(b".\r\n");
        let mut r = DataReader::new(8 * RESERVE_AT);
        let mut used = 0;
        let mut end = None;
        let mut pointers = std::collections::BTreeSet::new();
        for piece in wire.chunks(65_536) {
            let (n, e) = r.feed(piece);
            used += n;
            end = e.or(end);
            if r.message.len() > RESERVE_AT {
                pointers.insert(r.message.as_ptr());
            }
        }
        assert_eq!(used, wire.len());
        assert_eq!(end, Some(DataEnd::Complete(line.repeat(lines))));
        assert_eq!(pointers.len(), 1, "moved after the reservation");
    }

    #[test]
    fn a_message_of_the_size_announced_is_never_copied() {
        let body = b"x\r\n".repeat(2 * RESERVE_AT);
        let mut r = DataReader::with_hint(usize::MAX, Some(body.len() as u64));
        let pointer = r.message.as_ptr();
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
