//! Rendering a stored message for RETR and TOP: byte-stuffing of lines that begin with '.',
//! the header/body split of TOP, and the terminating ".", over chunks as the store hands them
//! out. Resumable: a message may arrive in any number of pieces, split anywhere.

use memchr::memmem;

/// Streams one message onto the wire format of RFC 1939 §3 (multi-line responses).
pub struct RetrEncoder {
    /// The previous byte was LF (or nothing was written yet): a '.' here must be stuffed.
    at_line_start: bool,
    mode: Mode,
    done: bool,
}

enum Mode {
    Whole,
    /// The message has no line starting with '.': copied as stored, unscanned.
    Verbatim,
    /// TOP: the header, the blank line, then `lines_left` lines of the body.
    Top {
        in_header: bool,
        /// The current header line is empty so far (so its CRLF ends the header).
        line_empty: bool,
        lines_left: u32,
    },
}

impl RetrEncoder {
    pub fn whole() -> RetrEncoder {
        RetrEncoder {
            at_line_start: true,
            mode: Mode::Whole,
            done: false,
        }
    }

    /// For a message known to have no line starting with '.' (recorded at delivery).
    pub fn verbatim() -> RetrEncoder {
        RetrEncoder {
            at_line_start: true,
            mode: Mode::Verbatim,
            done: false,
        }
    }

    /// RFC 1939 §7 TOP: the header, the blank line, and the first `lines` body lines.
    pub fn top(lines: u32) -> RetrEncoder {
        RetrEncoder {
            at_line_start: true,
            mode: Mode::Top {
                in_header: true,
                line_empty: true,
                lines_left: lines,
            },
            done: false,
        }
    }

    /// True once TOP has all it wants; further chunks are not needed.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.done || chunk.is_empty() {
            return;
        }
        match self.mode {
            Mode::Whole => self.stuff(chunk, out),
            Mode::Verbatim => {
                out.extend_from_slice(chunk);
                self.at_line_start = chunk.last() == Some(&b'\n');
            }
            Mode::Top { .. } => self.encode_top(chunk, out),
        }
    }

    /// Copies `chunk`, doubling every '.' that starts a line.
    fn stuff(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len() + 8);
        let mut rest = chunk;
        if self.at_line_start && rest[0] == b'.' {
            out.push(b'.');
        }
        let finder = memmem::Finder::new(b"\n.");
        while let Some(i) = finder.find(rest) {
            out.extend_from_slice(&rest[..=i]);
            out.push(b'.');
            rest = &rest[i + 1..];
        }
        out.extend_from_slice(rest);
        self.at_line_start = chunk.last() == Some(&b'\n');
    }

    fn encode_top(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut rest = chunk;
        while !rest.is_empty() && !self.done {
            let Mode::Top {
                in_header,
                line_empty,
                lines_left,
            } = &mut self.mode
            else {
                unreachable!("encode_top runs in Top mode only")
            };
            if !*in_header && *lines_left == 0 {
                self.done = true;
                break;
            }
            let (line, tail, complete) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..=i], &rest[i + 1..], true),
                None => (rest, &rest[rest.len()..], false),
            };
            if *in_header {
                let content = line.strip_suffix(b"\n").unwrap_or(line);
                let content = content.strip_suffix(b"\r").unwrap_or(content);
                if !content.is_empty() {
                    *line_empty = false;
                }
                if complete {
                    if *line_empty {
                        *in_header = false;
                    }
                    *line_empty = true;
                }
            } else if complete {
                *lines_left -= 1;
            }
            self.stuff(line, out);
            rest = tail;
        }
        if let Mode::Top {
            in_header: false,
            lines_left: 0,
            ..
        } = self.mode
        {
            self.done = true;
        }
    }

    /// Ends the response: a CRLF if the message did not end with one, then ".".
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(mut enc: RetrEncoder, pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in pieces {
            enc.encode(p, &mut out);
        }
        enc.finish(&mut out);
        out
    }

    const MSG: &[u8] = b"Subject: x\r\n.Hidden: y\r\n\r\n.line1\r\nline2\r\n..line3\r\nline4\r\n";

    #[test]
    fn whole_message_is_stuffed() {
        let out = render(RetrEncoder::whole(), &[MSG]);
        assert_eq!(
            out,
            b"Subject: x\r\n..Hidden: y\r\n\r\n..line1\r\nline2\r\n...line3\r\nline4\r\n.\r\n"
        );
    }

    #[test]
    fn every_split_renders_the_same() {
        for mode in 0..4u32 {
            let make = || match mode {
                0 => RetrEncoder::whole(),
                n => RetrEncoder::top(n - 1),
            };
            let expected = render(make(), &[MSG]);
            for cut in 0..=MSG.len() {
                assert_eq!(
                    render(make(), &[&MSG[..cut], &MSG[cut..]]),
                    expected,
                    "mode {mode} cut {cut}"
                );
            }
            let bytes: Vec<&[u8]> = MSG.chunks(1).collect();
            assert_eq!(render(make(), &bytes), expected, "mode {mode} bytewise");
        }
    }

    #[test]
    fn top_takes_header_and_n_lines() {
        assert_eq!(
            render(RetrEncoder::top(0), &[MSG]),
            b"Subject: x\r\n..Hidden: y\r\n\r\n.\r\n"
        );
        assert_eq!(
            render(RetrEncoder::top(2), &[MSG]),
            b"Subject: x\r\n..Hidden: y\r\n\r\n..line1\r\nline2\r\n.\r\n"
        );
        assert_eq!(
            render(RetrEncoder::top(100), &[MSG]),
            render(RetrEncoder::whole(), &[MSG])
        );
    }

    #[test]
    fn verbatim_copies_dot_free_messages() {
        let msg = b"A: b\r\n\r\nplain\r\nlines\r\n";
        let pieces: Vec<&[u8]> = msg.chunks(3).collect();
        assert_eq!(
            render(RetrEncoder::verbatim(), &pieces),
            render(RetrEncoder::whole(), &[msg])
        );
        assert_eq!(
            render(RetrEncoder::verbatim(), &[b"A: b\r\n\r\nno end"]),
            b"A: b\r\n\r\nno end\r\n.\r\n"
        );
    }

    #[test]
    fn missing_final_crlf_is_added() {
        assert_eq!(
            render(RetrEncoder::whole(), &[b"A: b\r\n\r\nno end"]),
            b"A: b\r\n\r\nno end\r\n.\r\n"
        );
    }

    #[test]
    fn top_stops_asking_for_chunks() {
        let mut enc = RetrEncoder::top(1);
        let mut out = Vec::new();
        enc.encode(MSG, &mut out);
        assert!(enc.is_done());
    }
}
