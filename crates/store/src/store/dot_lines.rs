//! Where a body's lines start with '.', found once at delivery so that POP3 byte-stuffing
//! (RFC 1939 §3) costs no scan of the message on every RETR.
//!
//! A body with such lines gets an entry in the `dot_lines` table: the offsets of those dots,
//! ascending, each a big-endian u32. Bodies without one are either dot-free (the message
//! record says so) or were stored before the index existed, or have so many dot lines that the
//! index would not be small (`MAX_SHARE`); POP3 scans those as it sends them.

/// An index is kept only while it is at most this fraction of the body (4 bytes per dot line:
/// a body of 76-character lines qualifies unless one line in four starts with '.').
const MAX_SHARE: usize = 64;

/// The offsets of every '.' that starts a line of `message`, encoded for the table, or `None`
/// when there is none or too many to be worth storing.
pub fn encode(message: &[u8]) -> Option<Vec<u8>> {
    let limit = message.len() / MAX_SHARE;
    let mut out = Vec::new();
    let mut over = false;
    Scan::default().feed(message, |offset| {
        over |= out.len() + 4 > limit;
        if !over {
            out.extend_from_slice(&offset.to_be_bytes());
        }
    });
    (!over && !out.is_empty()).then_some(out)
}

/// The offsets of the dots that start lines, ascending (a message's first byte included).
pub fn offsets(message: &[u8]) -> Vec<u32> {
    let mut found = Vec::new();
    Scan::default().feed(message, |offset| found.push(offset));
    found
}

/// Finds the dots that start lines in a message read a chunk at a time.
pub struct Scan {
    /// The byte before the next chunk is LF, or there was none.
    at_line_start: bool,
    /// Where the next chunk starts in the message. Messages are below 4 GiB: the store's
    /// sizes are checked far lower.
    base: u32,
}

impl Default for Scan {
    fn default() -> Scan {
        Scan {
            at_line_start: true,
            base: 0,
        }
    }
}

impl Scan {
    /// Hands `found` the message offset of every dot in `chunk` that starts a line.
    pub fn feed(&mut self, chunk: &[u8], mut found: impl FnMut(u32)) {
        if self.at_line_start && chunk.first() == Some(&b'.') {
            found(self.base);
        }
        for lf in memchr::memmem::find_iter(chunk, b"\n.") {
            found(self.base + lf as u32 + 1);
        }
        if let Some(last) = chunk.last() {
            self.at_line_start = *last == b'\n';
        }
        self.base = self.base.wrapping_add(chunk.len() as u32);
    }
}

/// The stored offsets; `None` if the value is empty (`encode` never stores one: read as "no
/// dot lines", it would send a dotted message unstuffed) or not a whole number of them — a
/// damaged entry, which the caller treats as absent.
pub fn decode(value: &[u8]) -> Option<Vec<u32>> {
    let (words, rest) = value.as_chunks::<4>();
    (rest.is_empty() && !words.is_empty()).then(|| words.iter().map(|w| u32::from_be_bytes(*w)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_dot_that_starts_a_line() {
        let mut message = b".a\r\n".to_vec();
        message.extend(std::iter::repeat_n(b'x', 3000));
        message.extend_from_slice(b"\r\n..b\r\nc.d\r\n.\r\n");
        let found = offsets(&message);
        assert_eq!(found, [0, 3006, 3016]);
        assert_eq!(decode(&encode(&message).unwrap()).unwrap(), found);
        // Read in pieces, split anywhere (between the LF and its dot too).
        for cut in 0..message.len() {
            let mut pieces = Vec::new();
            let mut scan = Scan::default();
            scan.feed(&message[..cut], |o| pieces.push(o));
            scan.feed(&message[cut..], |o| pieces.push(o));
            assert_eq!(pieces, found, "cut at {cut}");
        }
    }

    #[test]
    fn no_index_without_dots_or_with_too_many() {
        assert_eq!(encode(b"Subject: x\r\n\r\nno dots. here\r\n"), None);
        assert_eq!(encode(&b".\r\n".repeat(1000)), None);
        // One dot line in a body of 1 KiB: 4 bytes of index, within 1/64.
        let mut message = vec![b'x'; 1024];
        message.extend_from_slice(b"\n.\r\n");
        assert_eq!(encode(&message), Some(1025u32.to_be_bytes().to_vec()));
    }

    #[test]
    fn damaged_values_decode_to_nothing() {
        assert_eq!(decode(&[0, 0, 1]), None);
        // An empty entry too: `encode` never stores one, and read as an index it would say
        // "no dot lines" of a message that has some.
        assert_eq!(decode(&[]), None);
    }
}
