//! A resumable line framer over an input buffer it owns.
//!
//! "Need more bytes" is an outcome, not an error; bytes already searched are never searched
//! again; an over-long line is reported once, when its end arrives, so the session can answer
//! it in order and go on. The buffer starts small and grows only while input is arriving in
//! bulk, so an idle connection parks next to nothing.

use memchr::memchr;

/// Capacity of an idle connection's input buffer.
const IDLE_CAPACITY: usize = 256;
/// Largest single read into the buffer.
const MAX_READ: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One line without its CRLF (a bare LF is accepted as the end of a line too).
    Line(&'a [u8]),
    /// A line longer than the limit ended here; its bytes were dropped.
    TooLong,
    /// No complete line yet: read more.
    NeedMore,
}

pub struct Framer {
    buf: Vec<u8>,
    /// Start of unconsumed input.
    start: usize,
    /// Bytes from `start` already known to hold no LF.
    scanned: usize,
    max_line: usize,
    /// Dropping the rest of an over-long line.
    discarding: bool,
}

impl Framer {
    pub fn new(max_line: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_line,
            discarding: false,
        }
    }

    pub fn set_max_line(&mut self, max_line: usize) {
        self.max_line = max_line;
    }

    pub fn next_line(&mut self) -> Frame<'_> {
        loop {
            let pending = &self.buf[self.start..];
            match memchr(b'\n', &pending[self.scanned..]) {
                Some(i) => {
                    let end = self.scanned + i;
                    let line_start = self.start;
                    self.start += end + 1;
                    self.scanned = 0;
                    if std::mem::take(&mut self.discarding) || end + 1 > self.max_line {
                        return Frame::TooLong;
                    }
                    let mut line = &self.buf[line_start..line_start + end];
                    if let [head @ .., b'\r'] = line {
                        line = head;
                    }
                    return Frame::Line(line);
                }
                None if pending.len() > self.max_line => {
                    // Keep nothing of an over-long line: its end is all we wait for.
                    self.discarding = true;
                    self.start = self.buf.len();
                    self.scanned = 0;
                    continue;
                }
                None => {
                    self.scanned = pending.len();
                    return Frame::NeedMore;
                }
            }
        }
    }

    /// Unconsumed input, for protocols that read raw bytes (message data, literals).
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.buf.len() - self.start, "consume past the input");
        self.start += n;
        self.scanned = self.scanned.saturating_sub(n);
    }

    /// Drops everything buffered (STARTTLS: nothing sent in plaintext may survive the upgrade).
    pub fn discard(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
        self.scanned = 0;
        self.discarding = false;
    }

    /// The buffer to read into (append to its spare capacity), with consumed bytes dropped and
    /// room made.
    pub fn read_buffer(&mut self) -> &mut Vec<u8> {
        if self.start == self.buf.len() {
            // A read that filled the buffer means input is streaming: read more at once.
            let was_full = !self.buf.is_empty() && self.buf.len() == self.buf.capacity();
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > MAX_READ {
                self.buf = Vec::new();
            } else if was_full {
                self.buf.reserve((self.buf.capacity() * 2).min(MAX_READ));
            }
        } else if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let spare = self.buf.capacity() - self.buf.len();
        if spare < IDLE_CAPACITY / 2 {
            let want = self.buf.capacity().clamp(IDLE_CAPACITY, MAX_READ);
            self.buf.reserve(want);
        }
        &mut self.buf
    }

    /// Returns an idle, empty buffer's memory.
    pub fn shrink_idle(&mut self) {
        if self.start == self.buf.len() && self.buf.capacity() > IDLE_CAPACITY {
            self.buf = Vec::new();
            self.start = 0;
            self.scanned = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(framer: &mut Framer) -> Vec<Result<Vec<u8>, ()>> {
        let mut out = Vec::new();
        loop {
            match framer.next_line() {
                Frame::Line(l) => out.push(Ok(l.to_vec())),
                Frame::TooLong => out.push(Err(())),
                Frame::NeedMore => return out,
            }
        }
    }

    fn feed(framer: &mut Framer, bytes: &[u8]) {
        framer.read_buffer().extend_from_slice(bytes);
    }

    #[test]
    fn every_split_gives_the_same_lines() {
        let input =
            b"USER bob\r\nPASS x\r\n\r\nSTAT\nLIST 1\r\nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\nQUIT\r\n";
        let mut whole = Framer::new(32);
        feed(&mut whole, input);
        let expected = lines(&mut whole);
        assert_eq!(expected.len(), 7);
        assert_eq!(expected[5], Err(()));
        for cut in 0..input.len() {
            let mut f = Framer::new(32);
            feed(&mut f, &input[..cut]);
            let mut got = lines(&mut f);
            feed(&mut f, &input[cut..]);
            got.extend(lines(&mut f));
            assert_eq!(got, expected, "split at {cut}");
        }
    }

    #[test]
    fn byte_at_a_time() {
        let input = b"a\r\nbb\r\nccc\r\n";
        let mut f = Framer::new(16);
        let mut got = Vec::new();
        for b in input {
            feed(&mut f, &[*b]);
            got.extend(lines(&mut f));
        }
        assert_eq!(got, vec![Ok(b"a".to_vec()), Ok(b"bb".to_vec()), Ok(b"ccc".to_vec())]);
    }

    #[test]
    fn limit_counts_the_crlf() {
        let mut f = Framer::new(6);
        feed(&mut f, b"abcd\r\nabcde\r\n");
        assert_eq!(f.next_line(), Frame::Line(b"abcd"));
        assert_eq!(f.next_line(), Frame::TooLong);
    }

    #[test]
    fn raw_access_and_discard() {
        let mut f = Framer::new(64);
        feed(&mut f, b"STLS\r\nUSER x\r\n");
        assert_eq!(f.next_line(), Frame::Line(b"STLS"));
        assert_eq!(f.pending(), b"USER x\r\n");
        f.discard();
        assert_eq!(f.next_line(), Frame::NeedMore);
        feed(&mut f, b"abc");
        f.consume(2);
        assert_eq!(f.pending(), b"c");
    }

    #[test]
    fn idle_buffer_is_small() {
        let mut f = Framer::new(512);
        feed(&mut f, &vec![b'x'; 10_000]);
        feed(&mut f, b"\r\n");
        assert_eq!(f.next_line(), Frame::TooLong);
        f.shrink_idle();
        assert!(f.read_buffer().capacity() <= 1024);
    }
}
