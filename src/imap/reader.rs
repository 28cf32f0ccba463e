//! Assembles one IMAP command from the client's byte stream: the command line and every literal
//! it announces (RFC 9051 §4.3 and §7.6, RFC 7888 LITERAL+ and LITERAL-, RFC 3516 literal8).
//!
//! Owns: finding line ends, spotting literal markers at a line end, the limits on line and
//! literal size, the continuation handshake of synchronizing literals, and skipping what a
//! rejected command still sends. Never: parses anything beyond the marker and the tag (that is
//! `parse`), writes to the client (the caller sends `+` and `BAD`), reads a socket or a clock.
//!
//! Invariants: every input byte is examined once (a marker is looked for only in the last few
//! bytes of a line); between commands the reader holds no allocation, so an idle connection parks
//! nothing; a rejected command is reported once, when its last byte has arrived, so the session
//! answers commands in the order they were sent.

use memchr::memchr;

/// RFC 7888 §5: under LITERAL-, the largest literal a client may send non-synchronizing.
pub const LITERAL_MINUS_MAX: u64 = 4096;
/// Default `max_line`: the non-literal part of one command.
const DEFAULT_MAX_LINE: usize = 64 * 1024;
/// Default `max_literal` (APPENDLIMIT).
const DEFAULT_MAX_LITERAL: u64 = 64 * 1024 * 1024;
/// Most literal data one rejected command may make us read and throw away; past it the
/// connection is closed instead (RFC 7888 §4 allows either).
const MAX_DISCARD: u64 = 64 * 1024 * 1024;
/// How far back from a line end a literal marker is looked for: `~{` + 28 digits + `+}`.
/// A longer digit run is not taken for a marker, and the parser rejects the line.
const MARKER_WINDOW: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the non-literal parts of one command, line ends included.
    pub max_line: usize,
    /// Largest literal accepted (the APPENDLIMIT of RFC 7889).
    pub max_literal: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: DEFAULT_MAX_LINE,
            max_literal: DEFAULT_MAX_LITERAL,
        }
    }
}

/// Why a command was not accepted. The session maps it to the wire: `BAD` for a long line,
/// `NO [TOOBIG]` (or `BAD`) for a literal over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("command line too long")]
    LineTooLong,
    /// `len` is `u64::MAX` when the announced length does not even fit in 64 bits.
    #[error("literal too big ({len} octets)")]
    LiteralTooBig { len: u64 },
    /// RFC 7888 §5 (LITERAL-): a non-synchronizing literal over the limit for those; it must
    /// be sent synchronizing. `limit` is that limit.
    #[error("non-synchronizing literal too big ({len} octets, at most {limit}); send it synchronizing")]
    NonSyncLiteralTooBig { len: u64, limit: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// A complete command: the wire bytes as sent, literal markers and data included, the final
    /// line end removed, e.g. `A1 LOGIN {3}\r\nbob {2}\r\npw`.
    Command(Vec<u8>),
    /// Need more input.
    NeedMore,
    /// A synchronizing literal was announced and accepted: send `+ Ready for literal data\r\n`
    /// now (RFC 9051 §7.6), then keep feeding.
    Continue,
    /// The command is refused; everything it sent has been skipped. `tag` is there when the
    /// command began with one. `close`: the client is sending more than we are willing to read
    /// and discard, so the caller must answer and close the connection.
    Error {
        tag: Option<String>,
        kind: ReadError,
        close: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Reading the non-literal part of a line.
    #[default]
    Line,
    /// Taking (or, while rejecting, skipping) this many more bytes of literal data.
    Literal { remaining: u64 },
}

/// A command being skipped to its end before it is reported.
#[derive(Debug)]
struct Rejection {
    tag: Option<String>,
    kind: ReadError,
    /// The last bytes of the line being skipped, where a literal marker would be.
    tail: Tail,
}

pub struct CommandReader {
    limits: Limits,
    /// LITERAL- (RFC 7888 §5): the largest non-synchronizing literal taken; `None` under
    /// LITERAL+, where any literal up to `max_literal` may be non-synchronizing.
    max_nonsync: Option<u64>,
    /// The command under way. `None` between commands: a session waiting for its next
    /// command (parked in its core's lot, say) carries one word for it, not the whole.
    progress: Option<Box<Progress>>,
}

/// How far one command (or one line of a SASL or IDLE exchange) has come.
#[derive(Debug, Default)]
struct Progress {
    state: State,
    /// The command so far, as sent.
    command: Vec<u8>,
    /// Where in `command` the current line began (after the last literal's data): a marker is
    /// only looked for from there.
    line_start: usize,
    /// Non-literal bytes of this command so far, including any not kept.
    line_bytes: usize,
    /// Literal bytes of this command thrown away so far.
    discarded: u64,
    /// Boxed: rare.
    rejection: Option<Box<Rejection>>,
}

impl CommandReader {
    pub fn new(limits: Limits) -> Self {
        CommandReader {
            limits,
            max_nonsync: None,
            progress: None,
        }
    }

    /// Limits non-synchronizing literals to `limit` octets (LITERAL-, RFC 7888 §5), or lifts
    /// the limit (`None`, LITERAL+). Takes effect from the next literal marker.
    pub fn set_max_nonsync(&mut self, limit: Option<u64>) {
        self.max_nonsync = limit;
    }

    /// Takes what it can from `input` and says what happened; the caller drops the first
    /// `consumed` bytes from its buffer and calls again with the rest (a result other than
    /// `NeedMore` may leave input unconsumed). Input may be split anywhere.
    pub fn feed(&mut self, input: &[u8]) -> (usize, Read) {
        let rules = (self.limits, self.max_nonsync);
        self.with_progress(|p| p.feed(input, rules))
    }

    /// Reads one plain line, without literal processing, for IDLE's `DONE` and AUTHENTICATE's
    /// responses (RFC 9051 §6.3.13, §6.2.2); `None` while it is incomplete. Call it only between
    /// commands. A line longer than `max_line` comes back cut to `max_line` bytes, the rest
    /// dropped: neither `DONE` nor a SASL response we accept is that long, so the session's own
    /// check refuses it.
    pub fn line(&mut self, input: &[u8]) -> (usize, Option<Vec<u8>>) {
        let max_line = self.limits.max_line;
        self.with_progress(|p| p.line(input, max_line))
    }

    /// Runs `f` on the command under way (a new one if none is), and lets it go once it is
    /// back between commands.
    fn with_progress<T>(&mut self, f: impl FnOnce(&mut Progress) -> T) -> T {
        let progress = self.progress.get_or_insert_with(Box::default);
        let result = f(progress);
        // Back between commands, nothing of the command is kept (`reset` lets its bytes go).
        if progress.between_commands() {
            self.progress = None;
        }
        result
    }

    /// Whether a line (of a command, or of a SASL or IDLE exchange) has begun and not ended;
    /// false between commands and while literal data is being taken.
    pub fn mid_line(&self) -> bool {
        self.progress.as_ref().is_some_and(|p| p.mid_line())
    }

    /// No command begun: nothing of one kept, no line or literal under way.
    pub fn between_commands(&self) -> bool {
        self.progress.as_ref().is_none_or(|p| p.between_commands())
    }

    /// Memory held now, for idle-memory accounting: the command under way and its bytes; 0
    /// between commands.
    pub fn buffered(&self) -> usize {
        self.progress
            .as_ref()
            .map_or(0, |p| std::mem::size_of::<Progress>() + p.command.capacity())
    }
}

impl Progress {
    fn feed(&mut self, input: &[u8], (limits, max_nonsync): (Limits, Option<u64>)) -> (usize, Read) {
        let mut pos = 0;
        loop {
            match self.state {
                State::Literal { remaining } => {
                    let available = &input[pos..];
                    let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(available.len());
                    if self.rejection.is_none() {
                        self.command.extend_from_slice(&available[..take]);
                    }
                    pos += take;
                    let remaining = remaining - take as u64;
                    if remaining > 0 {
                        self.state = State::Literal { remaining };
                        return (pos, Read::NeedMore);
                    }
                    self.state = State::Line;
                    self.line_start = self.command.len();
                    if let Some(rejection) = &mut self.rejection {
                        rejection.tail.clear();
                    }
                }
                State::Line => {
                    let available = &input[pos..];
                    let Some(lf) = memchr(b'\n', available) else {
                        self.take_line_bytes(available, limits.max_line);
                        return (input.len(), Read::NeedMore);
                    };
                    self.take_line_bytes(&available[..=lf], limits.max_line);
                    pos += lf + 1;
                    if let Some(read) = self.line_ended(limits.max_literal, max_nonsync) {
                        return (pos, read);
                    }
                }
            }
        }
    }

    fn line(&mut self, input: &[u8], max_line: usize) -> (usize, Option<Vec<u8>>) {
        let (chunk, consumed, complete) = match memchr(b'\n', input) {
            Some(lf) => (&input[..lf], lf + 1, true),
            None => (input, input.len(), false),
        };
        let room = max_line.saturating_sub(self.command.len());
        self.command.extend_from_slice(&chunk[..chunk.len().min(room)]);
        self.line_bytes = self.line_bytes.saturating_add(chunk.len());
        if !complete {
            return (consumed, None);
        }
        let cut = self.line_bytes > self.command.len();
        if !cut && self.command.last() == Some(&b'\r') {
            self.command.pop();
        }
        let line = std::mem::take(&mut self.command);
        self.reset();
        (consumed, Some(line))
    }

    fn mid_line(&self) -> bool {
        matches!(self.state, State::Line)
            && (!self.command.is_empty() || self.line_bytes > 0 || self.rejection.is_some())
    }

    fn between_commands(&self) -> bool {
        matches!(self.state, State::Line) && !self.mid_line()
    }

    /// Keeps (or, while rejecting, skips) bytes of a line, up to and including its LF if there.
    fn take_line_bytes(&mut self, bytes: &[u8], max_line: usize) {
        if let Some(rejection) = &mut self.rejection {
            rejection.tail.push(bytes);
            return;
        }
        let room = max_line.saturating_sub(self.line_bytes);
        self.line_bytes = self.line_bytes.saturating_add(bytes.len());
        if bytes.len() <= room {
            self.command.extend_from_slice(bytes);
            return;
        }
        // Over the limit: keep only as much as fits (the tag is at the front), then skip the
        // command to its end so it can be answered in turn (STYLE: never close on a long line).
        self.command.extend_from_slice(&bytes[..room]);
        let mut tail = Tail::default();
        tail.push(&self.command[self.line_start..]);
        tail.push(&bytes[room..]);
        self.reject(ReadError::LineTooLong, tail);
    }

    fn reject(&mut self, kind: ReadError, tail: Tail) {
        let tag = tag_of(&self.command);
        self.command = Vec::new();
        self.line_start = 0;
        self.rejection = Some(Box::new(Rejection { tag, kind, tail }));
    }

    /// A line ended (its LF is taken): completes the command, starts a literal, or reports.
    fn line_ended(&mut self, max_literal: u64, max_nonsync: Option<u64>) -> Option<Read> {
        if let Some(rejection) = &self.rejection {
            return match marker_at_end(rejection.tail.bytes()) {
                // RFC 7888 §4: the client sends a non-synchronizing literal without waiting, so
                // it must be read and thrown away before the next command starts.
                Some(Marker { len, sync: false }) => self.discard(len),
                // No marker: the command ended. A synchronizing literal: the client waits for a
                // continuation it will not get, and takes the tagged answer as the end.
                _ => self.finish_rejection(false),
            };
        }
        let Some(Marker { len, sync }) = marker_at_end(&self.command[self.line_start..]) else {
            let end = self.line_start + strip_line_end(&self.command[self.line_start..]).len();
            self.command.truncate(end);
            if self.command.is_empty() {
                // A bare line end between commands: some clients send one after an APPEND's
                // literal. Ignored rather than answered with BAD (RFC 9051 §9 has no empty
                // command).
                self.reset();
                return None;
            }
            let command = std::mem::take(&mut self.command);
            self.reset();
            return Some(Read::Command(command));
        };
        if let Some(limit) = max_nonsync.filter(|&limit| !sync && len > limit) {
            // RFC 7888 §5: the client has sent the data anyway; it is read and thrown away
            // (within MAX_DISCARD) so the next command starts where the client thinks it does.
            self.reject(ReadError::NonSyncLiteralTooBig { len, limit }, Tail::default());
            return self.discard(len);
        }
        if len > max_literal {
            if sync {
                // RFC 9051 §7.6: refusing instead of sending "+"; the client will not send the
                // data, so there is nothing to skip.
                let tag = tag_of(&self.command);
                self.reset();
                return Some(Read::Error {
                    tag,
                    kind: ReadError::LiteralTooBig { len },
                    close: false,
                });
            }
            self.reject(ReadError::LiteralTooBig { len }, Tail::default());
            return self.discard(len);
        }
        self.state = State::Literal { remaining: len };
        sync.then_some(Read::Continue)
    }

    /// Skips a non-synchronizing literal of a rejected command, or gives up on the connection
    /// when the client has sent (or announced) more than is worth reading.
    fn discard(&mut self, len: u64) -> Option<Read> {
        match self.discarded.checked_add(len) {
            Some(total) if total <= MAX_DISCARD => {
                self.discarded = total;
                self.state = State::Literal { remaining: len };
                None
            }
            _ => self.finish_rejection(true),
        }
    }

    /// Reports the command being rejected, and forgets it.
    fn finish_rejection(&mut self, close: bool) -> Option<Read> {
        let rejection = self.rejection.take();
        self.reset();
        rejection.map(|r| {
            let Rejection { tag, kind, .. } = *r;
            Read::Error { tag, kind, close }
        })
    }

    /// Back to "between commands", holding no allocation.
    fn reset(&mut self) {
        self.state = State::Line;
        self.command = Vec::new();
        self.line_start = 0;
        self.line_bytes = 0;
        self.discarded = 0;
        self.rejection = None;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Marker {
    /// Announced length, `u64::MAX` if it overflows.
    len: u64,
    sync: bool,
}

/// The literal marker ending a line (given with its line end), looked for in the last
/// `MARKER_WINDOW` bytes only: `{n}`, `{n+}` (RFC 7888), `~{n}` and `~{n+}` (RFC 3516
/// literal8; the `~` stays in the command for the parser to see).
fn marker_at_end(line: &[u8]) -> Option<Marker> {
    let line = strip_line_end(line);
    let line = &line[line.len().saturating_sub(MARKER_WINDOW)..];
    let line = line.strip_suffix(b"}")?;
    let (line, sync) = match line.strip_suffix(b"+") {
        Some(rest) => (rest, false),
        None => (line, true),
    };
    let digits = line.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || line.len() == digits || line[line.len() - digits - 1] != b'{' {
        return None;
    }
    let len = line[line.len() - digits..]
        .iter()
        .try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')));
    Some(Marker {
        len: len.unwrap_or(u64::MAX),
        sync,
    })
}

/// Drops the LF and a CR before it; a bare LF ends a line too (lenient, like `engine::Lines`).
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The tag a refused command began with, if it has a well-formed one followed by SP
/// (RFC 9051 §9: tag = 1*<any ASTRING-CHAR except "+">).
fn tag_of(command: &[u8]) -> Option<String> {
    let end = memchr(b' ', command)?;
    let tag = &command[..end];
    if tag.is_empty() || !tag.iter().all(|&b| crate::imap::parse::is_tag_char(b)) {
        return None;
    }
    // Tag characters are ASCII.
    String::from_utf8(tag.to_vec()).ok()
}

/// Room for a marker window and a CRLF.
const TAIL: usize = MARKER_WINDOW + 2;

/// The last `TAIL` bytes pushed through it.
#[derive(Debug)]
struct Tail {
    buf: [u8; TAIL],
    len: usize,
}

impl Default for Tail {
    fn default() -> Self {
        Tail { buf: [0; TAIL], len: 0 }
    }
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        if bytes.len() >= TAIL {
            self.buf.copy_from_slice(&bytes[bytes.len() - TAIL..]);
            self.len = TAIL;
            return;
        }
        let keep = (TAIL - bytes.len()).min(self.len);
        self.buf.copy_within(self.len - keep..self.len, 0);
        self.buf[keep..keep + bytes.len()].copy_from_slice(bytes);
        self.len = keep + bytes.len();
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_line: 64,
        max_literal: 16,
    };

    /// Feeds `chunks` one after another the way a session does, collecting every outcome but
    /// `NeedMore`. Checks on the way that `NeedMore` always takes all the input (nothing is
    /// handed back to be scanned again) and that nothing is held between commands.
    fn drive(reader: &mut CommandReader, chunks: &[&[u8]]) -> Vec<Read> {
        let mut events = Vec::new();
        let mut pending = Vec::new();
        for chunk in chunks {
            pending.extend_from_slice(chunk);
            loop {
                let (consumed, read) = reader.feed(&pending);
                pending.drain(..consumed);
                match read {
                    Read::NeedMore => {
                        assert!(pending.is_empty(), "NeedMore left input behind");
                        break;
                    }
                    Read::Continue => events.push(Read::Continue),
                    done => {
                        assert_eq!(reader.buffered(), 0, "memory held after {done:?}");
                        events.push(done);
                    }
                }
            }
        }
        events
    }

    fn command(bytes: &[u8]) -> Read {
        Read::Command(bytes.to_vec())
    }

    fn error(tag: &str, kind: ReadError, close: bool) -> Read {
        Read::Error {
            tag: Some(tag.to_owned()),
            kind,
            close,
        }
    }

    fn fixture() -> (Vec<u8>, Vec<Read>) {
        let long = "x".repeat(70);
        let mut input = Vec::new();
        let mut expected = Vec::new();
        let mut case = |bytes: &[u8], reads: Vec<Read>| {
            input.extend_from_slice(bytes);
            expected.extend(reads);
        };
        case(b"a1 NOOP\r\n", vec![command(b"a1 NOOP")]);
        case(
            b"a2 LOGIN {3}\r\nbob {2+}\r\npw\r\n",
            vec![Read::Continue, command(b"a2 LOGIN {3}\r\nbob {2+}\r\npw")],
        );
        // Stray line ends between commands are skipped.
        case(b"\r\n\n", vec![]);
        case(
            b"a3 APPEND x ~{5}\r\n\0\r\n}\n\r\n",
            vec![Read::Continue, command(b"a3 APPEND x ~{5}\r\n\0\r\n}\n")],
        );
        case(b"a4 NOOP\n", vec![command(b"a4 NOOP")]);
        case(b"a5 LOGIN {1}\n{\n", vec![Read::Continue, command(b"a5 LOGIN {1}\n{")]);
        // A synchronizing literal over the limit: refused, the client sends nothing more.
        case(
            b"a6 APPEND x {17}\r\n",
            vec![error("a6", ReadError::LiteralTooBig { len: 17 }, false)],
        );
        // A non-synchronizing one: its data and the rest of the command are skipped.
        let mut a7 = b"a7 APPEND x {17+}\r\n".to_vec();
        a7.extend_from_slice(&[b'\n'; 17]);
        a7.extend_from_slice(b" (\\Seen) {2+}\r\nab\r\n");
        case(&a7, vec![error("a7", ReadError::LiteralTooBig { len: 17 }, false)]);
        case(
            format!("a8 {long}\r\n").as_bytes(),
            vec![error("a8", ReadError::LineTooLong, false)],
        );
        case(
            format!("a9 {long} {{3+}}\r\nabc rest\r\n").as_bytes(),
            vec![error("a9", ReadError::LineTooLong, false)],
        );
        case(
            b"b1 LOGIN {0}\r\n {0+}\r\n\r\n",
            vec![Read::Continue, command(b"b1 LOGIN {0}\r\n {0+}\r\n")],
        );
        case(
            format!("b2 {long} {{5}}\r\n").as_bytes(),
            vec![error("b2", ReadError::LineTooLong, false)],
        );
        case(
            b"b3 X {99999999999999999999999}\r\n",
            vec![error("b3", ReadError::LiteralTooBig { len: u64::MAX }, false)],
        );
        case(
            b"+bad X {20}\r\n",
            vec![Read::Error {
                tag: None,
                kind: ReadError::LiteralTooBig { len: 20 },
                close: false,
            }],
        );
        case(b"b4 CHECK\r\n", vec![command(b"b4 CHECK")]);
        // More than is worth discarding: the caller must close.
        case(
            b"b5 APPEND x {99999999999+}\r\n",
            vec![error("b5", ReadError::LiteralTooBig { len: 99_999_999_999 }, true)],
        );
        (input, expected)
    }

    #[test]
    fn whole_input() {
        let (input, expected) = fixture();
        let mut reader = CommandReader::new(LIMITS);
        assert_eq!(drive(&mut reader, &[&input]), expected);
    }

    #[test]
    fn every_split_gives_the_same_reads() {
        let (input, expected) = fixture();
        for cut in 0..=input.len() {
            let mut reader = CommandReader::new(LIMITS);
            let got = drive(&mut reader, &[&input[..cut], &input[cut..]]);
            assert_eq!(got, expected, "split at {cut}");
        }
    }

    #[test]
    fn byte_at_a_time() {
        let (input, expected) = fixture();
        let mut reader = CommandReader::new(LIMITS);
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(drive(&mut reader, &chunks), expected);
    }

    #[test]
    fn line_limit_counts_the_line_end() {
        let mut reader = CommandReader::new(Limits {
            max_line: 10,
            max_literal: 16,
        });
        assert_eq!(
            drive(&mut reader, &[b"a NOOP12\r\na NOOP123\r\n"]),
            vec![command(b"a NOOP12"), error("a", ReadError::LineTooLong, false)]
        );
        // The limit covers all lines of one command, not each.
        assert_eq!(
            drive(&mut reader, &[b"a {1+}\r\nx\r\n", b"a {1+}\r\nxyz\r\n"]),
            vec![command(b"a {1+}\r\nx"), error("a", ReadError::LineTooLong, false)]
        );
    }

    #[test]
    fn marker_window() {
        assert_eq!(marker_at_end(b"a ~{12+}\r\n"), Some(Marker { len: 12, sync: false }));
        assert_eq!(marker_at_end(b"{7}"), Some(Marker { len: 7, sync: true }));
        assert_eq!(marker_at_end(b"a {}\r\n"), None);
        assert_eq!(marker_at_end(b"a {x1}\r\n"), None);
        assert_eq!(marker_at_end(b"a 1}\r\n"), None);
        assert_eq!(marker_at_end(b"a {1+1}\r\n"), None);
        let long = format!("a {{{}}}\r\n", "1".repeat(MARKER_WINDOW));
        assert_eq!(marker_at_end(long.as_bytes()), None);
    }

    /// LITERAL- (RFC 7888 §5): a non-synchronizing literal over the limit is refused and its
    /// data skipped, split anywhere; synchronizing ones and small ones go through.
    #[test]
    fn literal_minus_limits_non_synchronizing_literals() {
        let input: &[u8] = b"a1 LOGIN {4+}\r\nbob1 {5+}\r\npass5\r\n\
            a2 LOGIN {5}\r\nbob12 {4+}\r\npass\r\n\
            a3 LOGIN bob {3+}\r\npw!\r\n";
        let too_big = ReadError::NonSyncLiteralTooBig { len: 5, limit: 4 };
        let expected = vec![
            error("a1", too_big, false),
            Read::Continue,
            command(b"a2 LOGIN {5}\r\nbob12 {4+}\r\npass"),
            command(b"a3 LOGIN bob {3+}\r\npw!"),
        ];
        for cut in 0..=input.len() {
            let mut reader = CommandReader::new(LIMITS);
            reader.set_max_nonsync(Some(4));
            let got = drive(&mut reader, &[&input[..cut], &input[cut..]]);
            assert_eq!(got, expected, "split at {cut}");
        }
        // Lifted (LITERAL+ after login): the same literal is taken.
        let mut reader = CommandReader::new(LIMITS);
        reader.set_max_nonsync(Some(4));
        reader.set_max_nonsync(None);
        assert_eq!(
            drive(&mut reader, &[b"a4 LOGIN {5+}\r\nbob12 x\r\n"]),
            vec![command(b"a4 LOGIN {5+}\r\nbob12 x")]
        );
    }

    #[test]
    fn discarding_is_bounded() {
        let mut reader = CommandReader::new(LIMITS);
        let len = 40 * 1024 * 1024;
        let data = vec![0u8; len];
        let marker = format!("{{{len}+}}\r\n");
        let first = format!("t APPEND x {marker}");
        let second = format!(" {marker}");
        let got = drive(&mut reader, &[first.as_bytes(), &data, second.as_bytes()]);
        assert_eq!(
            got,
            vec![error("t", ReadError::LiteralTooBig { len: len as u64 }, true)]
        );
    }

    #[test]
    fn plain_lines() {
        let mut reader = CommandReader::new(Limits {
            max_line: 8,
            max_literal: 16,
        });
        assert_eq!(reader.line(b"DO"), (2, None));
        assert_eq!(reader.line(b"NE\r\nx"), (4, Some(b"DONE".to_vec())));
        assert_eq!(reader.buffered(), 0);
        // Literal markers mean nothing here.
        assert_eq!(reader.line(b"{5}\n"), (4, Some(b"{5}".to_vec())));
        assert_eq!(reader.line(b"0123456789\r\n"), (12, Some(b"01234567".to_vec())));
        assert_eq!(reader.line(b"\r\n"), (2, Some(Vec::new())));
        assert_eq!(reader.buffered(), 0);
    }
}
