//! A resumable scanner for the body of a POP3 multi-line response (RFC 1939 §3): it removes
//! the byte-stuffing of lines that begin with '.', and finds the terminating ".\r\n" however
//! the bytes are split between reads.
//!
//! It never allocates and never rescans: input is searched once with `memmem` for "\n.",
//! the only place where anything but a straight copy can happen, and the payload is handed
//! to the caller as long borrowed runs. That keeps the client cheap enough that a bulk
//! download measures the server, not the harness.

use memchr::memmem;

/// Where the previous input left us, relative to the start of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Inside a line.
    Mid,
    /// The previous byte was LF (or the body has just begun): a '.' here is special.
    LineStart,
    /// A '.' began this line: either a stuffing dot or the start of the terminator.
    Dot,
    /// ".\r" began this line: LF now ends the response.
    DotCr,
}

/// Un-stuffs one multi-line body; make a new one (or `reset`) for each response.
#[derive(Debug, Clone)]
pub struct MultilineScanner {
    state: State,
    finder: memmem::Finder<'static>,
}

impl Default for MultilineScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl MultilineScanner {
    /// A scanner positioned just after the status line, i.e. at the start of a line.
    pub fn new() -> MultilineScanner {
        MultilineScanner {
            state: State::LineStart,
            finder: memmem::Finder::new(b"\n."),
        }
    }

    pub fn reset(&mut self) {
        self.state = State::LineStart;
    }

    /// Feeds the next input bytes and passes the un-stuffed payload to `payload`, in order.
    /// Returns `Some(n)` once the terminator has been read, `n` being how many bytes of
    /// `input` it used (what follows belongs to the next response); `None` means all of
    /// `input` was payload and more is needed.
    pub fn feed(&mut self, input: &[u8], payload: &mut impl FnMut(&[u8])) -> Option<usize> {
        let mut pos = 0;
        while pos < input.len() {
            match self.state {
                State::LineStart => {
                    if input[pos] == b'.' {
                        self.state = State::Dot;
                        pos += 1;
                    } else {
                        self.state = State::Mid;
                    }
                }
                State::Dot => {
                    if input[pos] == b'\r' {
                        self.state = State::DotCr;
                        pos += 1;
                    } else {
                        // The stuffing dot is dropped; the line goes on from here.
                        self.state = State::Mid;
                    }
                }
                State::DotCr => {
                    if input[pos] == b'\n' {
                        self.state = State::LineStart;
                        return Some(pos + 1);
                    }
                    // ".\r" then something else: not a terminator (and a line the server
                    // should have stuffed). Keep what followed the dot, as a lenient reader.
                    payload(b"\r");
                    self.state = State::Mid;
                }
                State::Mid => {
                    let rest = &input[pos..];
                    match self.finder.find(rest) {
                        Some(i) => {
                            payload(&rest[..=i]);
                            pos += i + 2;
                            self.state = State::Dot;
                        }
                        None => {
                            payload(rest);
                            if rest.last() == Some(&b'\n') {
                                self.state = State::LineStart;
                            }
                            pos = input.len();
                        }
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `wire` through a scanner in the given pieces; the payload and how many bytes of
    /// the whole input were used when the terminator was found.
    fn scan(pieces: &[&[u8]]) -> (Vec<u8>, Option<usize>) {
        let mut scanner = MultilineScanner::new();
        let mut out = Vec::new();
        let mut offset = 0;
        for piece in pieces {
            if let Some(n) = scanner.feed(piece, &mut |p| out.extend_from_slice(p)) {
                return (out, Some(offset + n));
            }
            offset += piece.len();
        }
        (out, None)
    }

    const WIRE: &[u8] = b"Subject: x\r\n..Hidden: y\r\n\r\n..line1\r\nline2\r\n...line3\r\n.\r\nNEXT";
    const BODY: &[u8] = b"Subject: x\r\n.Hidden: y\r\n\r\n.line1\r\nline2\r\n..line3\r\n";

    #[test]
    fn unstuffs_and_stops_at_terminator() {
        let (out, used) = scan(&[WIRE]);
        assert_eq!(out, BODY);
        assert_eq!(used, Some(WIRE.len() - 4));
    }

    #[test]
    fn every_split_gives_the_same_result() {
        let whole = scan(&[WIRE]);
        for cut in 0..=WIRE.len() {
            assert_eq!(scan(&[&WIRE[..cut], &WIRE[cut..]]), whole, "cut at {cut}");
        }
        for a in 0..=WIRE.len() {
            for b in a..=WIRE.len() {
                assert_eq!(scan(&[&WIRE[..a], &WIRE[a..b], &WIRE[b..]]), whole, "cuts at {a}, {b}");
            }
        }
        let bytes: Vec<&[u8]> = WIRE.chunks(1).collect();
        assert_eq!(scan(&bytes), whole, "byte by byte");
    }

    #[test]
    fn empty_body_and_leading_dot_lines() {
        assert_eq!(scan(&[b".\r\n"]), (Vec::new(), Some(3)));
        assert_eq!(scan(&[b"..\r\n.\r\n"]), (b".\r\n".to_vec(), Some(7)));
        assert_eq!(scan(&[b"..a\r\n.\r\n"]), (b".a\r\n".to_vec(), Some(8)));
    }

    #[test]
    fn a_dot_inside_a_line_is_payload() {
        let (out, used) = scan(&[b"a.\r\nb .c\r\n.\r\n"]);
        assert_eq!(out, b"a.\r\nb .c\r\n");
        assert_eq!(used, Some(13));
    }

    #[test]
    fn incomplete_body_asks_for_more() {
        assert_eq!(scan(&[b"abc\r\n", b".\r"]), (b"abc\r\n".to_vec(), None));
    }

    #[test]
    fn round_trips_the_lmtp_stuffer() {
        let message = crate::message::generate(&crate::message::MessageSpec::new(7, 20_000));
        let wire = crate::client::lmtp::stuff(&message);
        let whole = scan(&[&wire]);
        assert_eq!(whole, (message.clone(), Some(wire.len())));
        for cut in (0..=wire.len()).step_by(97) {
            assert_eq!(scan(&[&wire[..cut], &wire[cut..]]), whole, "cut at {cut}");
        }
    }
}
