//! Rendering a stored message for RETR and TOP: byte-stuffing of lines that begin with '.',
//! the header/body split of TOP, and the terminating ".", over chunks as the store hands them
//! out. Resumable: a message may arrive in any number of pieces, split anywhere.
//!
//! The output is described as `Piece`s — runs of the chunk as stored, and the stuffing dots
//! between them — so a caller can send the runs from where they already are (the store's
//! map) instead of copying them; `encode` is the same output copied into a buffer.

use std::ops::Range;

use memchr::memmem;

/// One piece of a rendered chunk, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// These bytes of the chunk, unchanged. A run may begin at the dot the previous run
    /// ended with: that dot goes out twice, once as its own stuffing.
    Run(Range<usize>),
    /// A '.' that is not in the message: the stuffing of a line that starts with '.'.
    Dot,
}

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
    /// The store knows where the lines starting with '.' are: stuffed there, unscanned.
    Indexed {
        /// Message offsets of those dots, ascending.
        dots: Vec<u32>,
        /// The first of `dots` not yet reached.
        next: usize,
        /// Message offset of the next chunk.
        offset: u64,
    },
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

    /// For a message whose lines starting with '.' the store indexed at delivery (their
    /// dots' offsets, ascending). Offsets out of order, repeated or past the end are ignored.
    pub fn indexed(dots: Vec<u32>) -> RetrEncoder {
        RetrEncoder {
            at_line_start: true,
            mode: Mode::Indexed {
                dots,
                next: 0,
                offset: 0,
            },
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

    /// Renders `chunk` into `out`.
    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len() + 8);
        self.encode_pieces(chunk, |piece| match piece {
            Piece::Run(range) => out.extend_from_slice(&chunk[range]),
            Piece::Dot => out.push(b'.'),
        });
    }

    /// Renders `chunk` as pieces handed to `emit` in order; runs are never empty.
    pub fn encode_pieces(&mut self, chunk: &[u8], mut emit: impl FnMut(Piece)) {
        if self.done || chunk.is_empty() {
            return;
        }
        match &mut self.mode {
            Mode::Whole => self.stuff(chunk, 0, &mut emit),
            Mode::Verbatim => {
                emit(Piece::Run(0..chunk.len()));
                self.at_line_start = chunk.last() == Some(&b'\n');
            }
            Mode::Indexed { dots, next, offset } => {
                let (mut start, mut stuffed) = (0, None);
                while let Some(&dot) = dots.get(*next) {
                    let Some(at) = u64::from(dot).checked_sub(*offset) else {
                        *next += 1; // out of order: not a dot of this message
                        continue;
                    };
                    let Some(at) = usize::try_from(at).ok().filter(|&at| at < chunk.len()) else {
                        break; // in a later chunk
                    };
                    *next += 1;
                    // The bytes at `at` are not looked at: each look would be a cache miss
                    // of its own, dearer than the scan the index saves (fsck checks indexes).
                    if stuffed.is_some_and(|s| at <= s) {
                        continue;
                    }
                    // The dot goes out twice from where it is, instead of as a piece of its
                    // own: half the pieces for the kernel or TLS to gather.
                    emit(Piece::Run(start..at + 1));
                    (start, stuffed) = (at, Some(at));
                }
                emit(Piece::Run(start..chunk.len()));
                *offset += chunk.len() as u64;
                self.at_line_start = chunk.last() == Some(&b'\n');
            }
            Mode::Top { .. } => self.encode_top(chunk, &mut emit),
        }
    }

    /// Emits `part` (which starts at `base` in the chunk), with a `Dot` before every '.' that
    /// starts a line.
    fn stuff(&mut self, part: &[u8], base: usize, emit: &mut impl FnMut(Piece)) {
        if self.at_line_start && part[0] == b'.' {
            emit(Piece::Dot);
        }
        let finder = memmem::Finder::new(b"\n.");
        let mut start = 0;
        while let Some(i) = finder.find(&part[start..]) {
            // The run ends with the LF; the '.' after it starts the next run.
            let end = start + i + 1;
            emit(Piece::Run(base + start..base + end));
            emit(Piece::Dot);
            start = end;
        }
        emit(Piece::Run(base + start..base + part.len()));
        self.at_line_start = part.last() == Some(&b'\n');
    }

    fn encode_top(&mut self, chunk: &[u8], emit: &mut impl FnMut(Piece)) {
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
            self.stuff(line, chunk.len() - rest.len(), emit);
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

    /// What ends the response: a CRLF if the message did not end with one, then ".".
    pub fn trailer(&self) -> &'static [u8] {
        if self.at_line_start {
            b".\r\n"
        } else {
            b"\r\n.\r\n"
        }
    }

    /// Ends the response in `out`.
    pub fn finish(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.trailer());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dot_lines;

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
        for mode in 0..5u32 {
            let make = || match mode {
                0 => RetrEncoder::whole(),
                1 => RetrEncoder::indexed(dot_lines::offsets(MSG)),
                n => RetrEncoder::top(n - 2),
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
    fn an_index_out_of_order_or_repeated_is_read_safely() {
        let whole = render(RetrEncoder::whole(), &[MSG]);
        let mut repeated = dot_lines::offsets(MSG);
        repeated.extend(dot_lines::offsets(MSG));
        repeated.sort();
        repeated.extend([1000, u32::MAX]);
        assert_eq!(render(RetrEncoder::indexed(repeated), &[&MSG[..20], &MSG[20..]]), whole);
        // Out of order: what comes after an offset already passed is lost, never a panic.
        let disordered = render(RetrEncoder::indexed(vec![26, 12, 41]), &[MSG]);
        assert_eq!(
            disordered,
            b"Subject: x\r\n.Hidden: y\r\n\r\n..line1\r\nline2\r\n...line3\r\nline4\r\n.\r\n"
        );
        assert_eq!(
            render(RetrEncoder::indexed(Vec::new()), &[MSG]),
            [MSG, b".\r\n"].concat()
        );
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

    fn pieces(enc: &mut RetrEncoder, chunk: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        enc.encode_pieces(chunk, |p| out.push(p));
        out
    }

    #[test]
    fn pieces_point_into_the_chunk_and_add_only_dots() {
        let mut enc = RetrEncoder::whole();
        let chunk = b".a\r\nb\r\n..c\r\nd";
        assert_eq!(
            pieces(&mut enc, chunk),
            [Piece::Dot, Piece::Run(0..7), Piece::Dot, Piece::Run(7..13)]
        );
        assert_eq!(enc.trailer(), b"\r\n.\r\n");
        // A chunk that starts a line with '.' right after a chunk that ended with LF.
        let mut enc = RetrEncoder::whole();
        assert_eq!(pieces(&mut enc, b"x\r\n"), [Piece::Run(0..3)]);
        assert_eq!(pieces(&mut enc, b".y\r\n"), [Piece::Dot, Piece::Run(0..4)]);
        assert_eq!(enc.trailer(), b".\r\n");
    }

    #[test]
    fn verbatim_is_one_run_per_chunk() {
        let mut enc = RetrEncoder::verbatim();
        assert_eq!(pieces(&mut enc, b"A: b\r\n\r\nbody"), [Piece::Run(0..12)]);
        assert_eq!(pieces(&mut enc, b" more\r\n"), [Piece::Run(0..7)]);
        assert_eq!(enc.trailer(), b".\r\n");
    }

    #[test]
    fn top_pieces_stop_at_the_last_line() {
        let mut enc = RetrEncoder::top(1);
        let mut out = Vec::new();
        for p in pieces(&mut enc, MSG) {
            match p {
                Piece::Run(r) => out.extend_from_slice(&MSG[r]),
                Piece::Dot => out.push(b'.'),
            }
        }
        enc.finish(&mut out);
        assert_eq!(out, b"Subject: x\r\n..Hidden: y\r\n\r\n..line1\r\n.\r\n");
    }

    #[test]
    fn top_stops_asking_for_chunks() {
        let mut enc = RetrEncoder::top(1);
        let mut out = Vec::new();
        enc.encode(MSG, &mut out);
        assert!(enc.is_done());
    }
}
