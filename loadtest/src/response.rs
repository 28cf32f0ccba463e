//! Parsing the IMAP responses the `mixed` scenario checks against its mailbox model and its
//! session views (RFC 9051 §7, RFC 3501 §7): `* n EXISTS`, `* n EXPUNGE`, `* n RECENT`,
//! `* FLAGS (...)`, `* VANISHED` (RFC 7162 §3.2.10), `* STATUS`, `* n FETCH (...)` with UID,
//! FLAGS, MODSEQ (RFC 7162 §3.1.4) and ENVELOPE in any order, `* SEARCH`, `* CAPABILITY`, and
//! the response codes UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, APPENDUID and COPYUID (RFC 4315 §3)
//! and CAPABILITY.
//!
//! Input is one response as `client::imap::Imap` returns it: no final CRLF, each literal's
//! bytes inlined after its `{n}\r\n`. Responses the model has no use for parse as `Other`
//! and never fail; the ones it uses fail with a `ParseError` naming what was wrong. Never
//! panics on input, and nesting is bounded.

use std::fmt;

use crate::model::Flags;

/// An untagged response, as far as the model cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Untagged {
    Exists(u32),
    Expunge(u32),
    /// `* n RECENT` (RFC 3501 §7.3.2).
    Recent(u32),
    /// `* FLAGS (...)`: the flags and keywords defined in the mailbox, as sent.
    Flags(Vec<String>),
    /// `* VANISHED [(EARLIER)] uid-set` (RFC 7162 §3.2.10): the UIDs, ascending.
    Vanished {
        earlier: bool,
        uids: Vec<u32>,
    },
    /// `* STATUS mailbox (...)`.
    Status {
        mailbox: String,
        status: Status,
    },
    Fetch(Fetch),
    /// The UIDs or sequence numbers of `* SEARCH`, in the order sent.
    Search(Vec<u32>),
    /// `* OK [code] text` (and NO, BAD, BYE, PREAUTH): the code, if there is one.
    Condition {
        bye: bool,
        code: Option<Code>,
    },
    Capability(Vec<String>),
    /// Anything else (LIST, ENABLED, ...).
    Other,
}

/// The STATUS items the session views check (RFC 9051 §7.3.4, RFC 7162 §3.1.3); others are
/// skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub messages: Option<u32>,
    pub uid_next: Option<u32>,
    pub uid_validity: Option<u32>,
    /// Parsed, but the session views do not read it: they check HIGHESTMODSEQ within a
    /// selection, from its response code (RFC 7162 §3.1.2.1), not from STATUS.
    pub highest_modseq: Option<u64>,
}

/// The items of one `* n FETCH` the model checks; other items are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetch {
    pub seq: u32,
    pub uid: Option<u32>,
    pub flags: Option<Flags>,
    /// Whether FLAGS held `\Recent`, which `Flags` leaves out.
    pub recent: bool,
    /// `MODSEQ (n)` (RFC 7162 §3.1.4.1).
    pub modseq: Option<u64>,
    pub envelope: Option<Envelope>,
}

/// The parts of an ENVELOPE (RFC 9051 §7.5.2) the model compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub subject: Option<String>,
    pub message_id: Option<String>,
}

/// A response code (RFC 9051 §7.1) the model uses; others are `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    UidValidity(u32),
    UidNext(u32),
    /// RFC 7162 §3.1.2.1.
    HighestModSeq(u64),
    /// RFC 4315 §3: the UIDVALIDITY of the target and the new messages' UIDs.
    AppendUid {
        uid_validity: u32,
        uids: Vec<u32>,
    },
    /// RFC 4315 §3 (and RFC 6851 §4.3 for MOVE): the UIDVALIDITY of the target and the
    /// new messages' UIDs there, ascending.
    CopyUid {
        uid_validity: u32,
        uids: Vec<u32>,
    },
    Capability(Vec<String>),
    Other(String),
}

/// A response the model needs that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub what: &'static str,
    /// The response (lossy, shortened).
    pub response: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unparsable response ({}): {}", self.what, self.response)
    }
}

impl std::error::Error for ParseError {}

/// Lists nested deeper than this are refused (an ENVELOPE is 3 deep).
const MAX_DEPTH: usize = 16;
/// A uid-set expanding to more UIDs than this is refused rather than allocated.
const MAX_SET: usize = 100_000;

/// Parses one untagged response (`* ...`); a line that is not untagged is `Other`.
pub fn parse_untagged(line: &[u8]) -> Result<Untagged, ParseError> {
    let Some(rest) = line.strip_prefix(b"* ") else {
        return Ok(Untagged::Other);
    };
    let mut r = Reader::new(rest, line);
    if r.peek().is_some_and(|b| b.is_ascii_digit()) {
        let n = r.number()?;
        r.expect(b' ', "space after the number")?;
        let word = r.atom()?;
        if word.eq_ignore_ascii_case(b"EXISTS") {
            return Ok(Untagged::Exists(n));
        }
        if word.eq_ignore_ascii_case(b"EXPUNGE") {
            return Ok(Untagged::Expunge(n));
        }
        if word.eq_ignore_ascii_case(b"RECENT") {
            return Ok(Untagged::Recent(n));
        }
        if word.eq_ignore_ascii_case(b"FETCH") {
            r.expect(b' ', "space after FETCH")?;
            return r.fetch(n).map(Untagged::Fetch);
        }
        return Ok(Untagged::Other);
    }
    let word = r.atom()?;
    if word.eq_ignore_ascii_case(b"SEARCH") {
        return r.search().map(Untagged::Search);
    }
    if word.eq_ignore_ascii_case(b"CAPABILITY") {
        return Ok(Untagged::Capability(words(r.rest())));
    }
    if word.eq_ignore_ascii_case(b"FLAGS") {
        r.expect(b' ', "space after FLAGS")?;
        return r.flag_names().map(Untagged::Flags);
    }
    if word.eq_ignore_ascii_case(b"VANISHED") {
        r.expect(b' ', "space after VANISHED")?;
        let earlier = r.rest().len() >= 10 && r.rest()[..10].eq_ignore_ascii_case(b"(EARLIER) ");
        let set = if earlier { &r.rest()[10..] } else { r.rest() };
        let uids = uid_set(set).ok_or_else(|| ParseError::new("VANISHED uid-set", line))?;
        return Ok(Untagged::Vanished { earlier, uids });
    }
    if word.eq_ignore_ascii_case(b"STATUS") {
        r.expect(b' ', "space after STATUS")?;
        return r.status();
    }
    let condition = [&b"OK"[..], b"NO", b"BAD", b"BYE", b"PREAUTH"];
    if condition.iter().any(|c| word.eq_ignore_ascii_case(c)) {
        let text = r.rest().strip_prefix(b" ").unwrap_or(r.rest());
        return Ok(Untagged::Condition {
            bye: word.eq_ignore_ascii_case(b"BYE"),
            code: response_code(text)?,
        });
    }
    Ok(Untagged::Other)
}

/// The response code at the start of a status text (`[APPENDUID 38505 3955] APPEND
/// completed`), as in a tagged reply after its status word.
pub fn response_code(text: &[u8]) -> Result<Option<Code>, ParseError> {
    let Some(inner) = text.strip_prefix(b"[") else {
        return Ok(None);
    };
    let Some(end) = inner.iter().position(|&b| b == b']') else {
        return Err(ParseError::new("response code without ']'", text));
    };
    let inner = &inner[..end];
    let mut r = Reader::new(inner, text);
    let name = r.atom()?;
    let args = r.rest().strip_prefix(b" ").unwrap_or(r.rest());
    let number = |what| {
        let mut r = Reader::new(args, text);
        let n = r.number()?;
        match r.rest() {
            [] => Ok(n),
            _ => Err(ParseError::new(what, text)),
        }
    };
    let code = if name.eq_ignore_ascii_case(b"UIDVALIDITY") {
        Code::UidValidity(number("UIDVALIDITY")?)
    } else if name.eq_ignore_ascii_case(b"UIDNEXT") {
        Code::UidNext(number("UIDNEXT")?)
    } else if name.eq_ignore_ascii_case(b"HIGHESTMODSEQ") {
        let mut r = Reader::new(args, text);
        let n = r.number64()?;
        if !r.rest().is_empty() {
            return Err(ParseError::new("HIGHESTMODSEQ", text));
        }
        Code::HighestModSeq(n)
    } else if name.eq_ignore_ascii_case(b"APPENDUID") {
        let mut r = Reader::new(args, text);
        let uid_validity = r.number()?;
        r.expect(b' ', "APPENDUID uid-set")?;
        let uids = uid_set(r.rest()).ok_or_else(|| ParseError::new("APPENDUID uid-set", text))?;
        Code::AppendUid { uid_validity, uids }
    } else if name.eq_ignore_ascii_case(b"COPYUID") {
        let mut r = Reader::new(args, text);
        let uid_validity = r.number()?;
        r.expect(b' ', "COPYUID source set")?;
        let rest = r.rest();
        let space = rest.iter().position(|&b| b == b' ');
        let target = space.map(|i| &rest[i + 1..]);
        let uids = target
            .and_then(uid_set)
            .ok_or_else(|| ParseError::new("COPYUID uid-sets", text))?;
        Code::CopyUid { uid_validity, uids }
    } else if name.eq_ignore_ascii_case(b"CAPABILITY") {
        Code::Capability(words(args))
    } else {
        Code::Other(String::from_utf8_lossy(name).into_owned())
    };
    Ok(Some(code))
}

/// A uid-set without `*` (`3`, `1:3,7`, `9:7`) as the UIDs it names, ascending.
pub fn uid_set(text: &[u8]) -> Option<Vec<u32>> {
    let text = std::str::from_utf8(text).ok()?;
    let mut uids = Vec::new();
    for part in text.split(',') {
        let (a, b) = part.split_once(':').unwrap_or((part, part));
        let (a, b): (u32, u32) = (number_str(a)?, number_str(b)?);
        let (lo, hi) = (a.min(b), a.max(b));
        if uids.len() + (hi - lo) as usize >= MAX_SET {
            return None;
        }
        uids.extend(lo..=hi);
    }
    uids.sort_unstable();
    uids.dedup();
    Some(uids)
}

fn number_str(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Space-separated words, as in a CAPABILITY list.
fn words(text: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(text)
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect()
}

/// A parsed IMAP value: an atom (numbers and NIL included), a string (quoted or literal) or a
/// parenthesized list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value<'a> {
    Atom(&'a [u8]),
    Str(Vec<u8>),
    List(Vec<Value<'a>>),
}

impl Value<'_> {
    /// An nstring as text: `None` for NIL.
    fn nstring(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// The whole response, for errors.
    response: &'a [u8],
}

impl ParseError {
    fn new(what: &'static str, response: &[u8]) -> ParseError {
        let shown = &response[..response.len().min(300)];
        ParseError {
            what,
            response: String::from_utf8_lossy(shown).into_owned(),
        }
    }
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8], response: &'a [u8]) -> Reader<'a> {
        Reader {
            input,
            pos: 0,
            response,
        }
    }

    fn error(&self, what: &'static str) -> ParseError {
        ParseError::new(what, self.response)
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn rest(&self) -> &'a [u8] {
        &self.input[self.pos..]
    }

    fn eat(&mut self, b: u8) -> bool {
        let found = self.peek() == Some(b);
        self.pos += usize::from(found);
        found
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<(), ParseError> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// An atom, or a fetch item name with a bracketed section (`BODY[HEADER.FIELDS (A)]<0>`).
    fn atom(&mut self) -> Result<&'a [u8], ParseError> {
        let start = self.pos;
        let mut brackets = 0usize;
        while let Some(b) = self.peek() {
            // A section opens only after a FETCH attribute that takes one; elsewhere '[' is
            // an ordinary atom character (a keyword such as `[Deleted` is a valid atom).
            let section = |name: &[u8]| {
                [
                    b"BODY".as_slice(),
                    b"BODY.PEEK",
                    b"BINARY",
                    b"BINARY.PEEK",
                    b"BINARY.SIZE",
                ]
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name))
            };
            // ... and only where its ']' follows on the line: `]` cannot be in an atom, so a
            // keyword such as `BODY[x` never has one after it.
            let closed = || memchr::memchr(b']', &self.input[self.pos..]).is_some();
            match b {
                b'[' if brackets > 0 || (section(&self.input[start..self.pos]) && closed()) => brackets += 1,
                b']' if brackets > 0 => brackets -= 1,
                b' ' | b'(' | b')' if brackets > 0 => {}
                b' ' | b'(' | b')' | b'"' | b'{' | b'\r' | b'\n' | b']' => break,
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("an atom"));
        }
        Ok(&self.input[start..self.pos])
    }

    fn number(&mut self) -> Result<u32, ParseError> {
        let n = self.number64()?;
        u32::try_from(n).map_err(|_| self.error("a number"))
    }

    fn number64(&mut self) -> Result<u64, ParseError> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.input[start..self.pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.error("a number"))
    }

    /// A parenthesized list of flag atoms (`FLAGS (...)`), as sent.
    fn flag_names(&mut self) -> Result<Vec<String>, ParseError> {
        let Value::List(items) = self.value(0)? else {
            return Err(self.error("FLAGS not a list"));
        };
        items
            .iter()
            .map(|item| match item {
                Value::Atom(a) => Ok(String::from_utf8_lossy(a).into_owned()),
                _ => Err(self.error("a flag that is not an atom")),
            })
            .collect()
    }

    /// `mailbox (name value ...)` of `* STATUS` (RFC 9051 §7.3.4).
    fn status(&mut self) -> Result<Untagged, ParseError> {
        let mailbox = match self.value(0)? {
            Value::Atom(a) => String::from_utf8_lossy(a).into_owned(),
            Value::Str(s) => String::from_utf8_lossy(&s).into_owned(),
            Value::List(_) => return Err(self.error("a STATUS mailbox name")),
        };
        self.expect(b' ', "space after the STATUS mailbox")?;
        let Value::List(items) = self.value(0)? else {
            return Err(self.error("STATUS items not a list"));
        };
        let mut status = Status::default();
        for pair in items.chunks(2) {
            let [Value::Atom(name), Value::Atom(value)] = pair else {
                return Err(self.error("a STATUS item without its number"));
            };
            let value = std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok());
            let value = value.ok_or_else(|| self.error("a STATUS value not a number"))?;
            let small = u32::try_from(value).ok();
            if name.eq_ignore_ascii_case(b"MESSAGES") {
                status.messages = small;
            } else if name.eq_ignore_ascii_case(b"UIDNEXT") {
                status.uid_next = small;
            } else if name.eq_ignore_ascii_case(b"UIDVALIDITY") {
                status.uid_validity = small;
            } else if name.eq_ignore_ascii_case(b"HIGHESTMODSEQ") {
                status.highest_modseq = Some(value);
            }
        }
        if !self.rest().is_empty() {
            return Err(self.error("text after the STATUS items"));
        }
        Ok(Untagged::Status { mailbox, status })
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, ParseError> {
        match self.peek() {
            Some(b'(') => {
                if depth >= MAX_DEPTH {
                    return Err(self.error("lists nested too deep"));
                }
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b')') {
                        return Ok(Value::List(items));
                    }
                    if !items.is_empty() {
                        self.expect(b' ', "space between list items")?;
                    }
                    items.push(self.value(depth + 1)?);
                }
            }
            Some(b'"') => self.quoted().map(Value::Str),
            Some(b'{') => self.literal().map(Value::Str),
            Some(b'~') if self.input.get(self.pos + 1) == Some(&b'{') => {
                self.pos += 1;
                self.literal().map(Value::Str)
            }
            _ => self.atom().map(Value::Atom),
        }
    }

    fn quoted(&mut self) -> Result<Vec<u8>, ParseError> {
        self.expect(b'"', "a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\r' | b'\n') => return Err(self.error("an unterminated quoted string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escaped = self.input.get(self.pos + 1).copied();
                    let Some(c @ (b'\\' | b'"')) = escaped else {
                        return Err(self.error("a bad escape in a quoted string"));
                    };
                    out.push(c);
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// `{n}\r\n` and n bytes, as `Imap::read_response_line` inlines them.
    fn literal(&mut self) -> Result<Vec<u8>, ParseError> {
        self.expect(b'{', "a literal")?;
        let n = self.number()? as usize;
        self.eat(b'+');
        self.expect(b'}', "'}' of a literal")?;
        self.expect(b'\r', "CRLF after a literal's length")?;
        self.expect(b'\n', "CRLF after a literal's length")?;
        let bytes = self
            .input
            .get(self.pos..self.pos + n)
            .ok_or_else(|| self.error("a literal shorter than announced"))?;
        self.pos += n;
        Ok(bytes.to_vec())
    }

    /// The parenthesized items of `* n FETCH (...)`, in any order (RFC 9051 §7.5.2).
    fn fetch(&mut self, seq: u32) -> Result<Fetch, ParseError> {
        let mut fetch = Fetch {
            seq,
            ..Fetch::default()
        };
        self.expect(b'(', "'(' of FETCH items")?;
        let mut first = true;
        while !self.eat(b')') {
            if !first {
                self.expect(b' ', "space between FETCH items")?;
            }
            first = false;
            let name = self.atom()?;
            self.expect(b' ', "space after a FETCH item name")?;
            let value = self.value(0)?;
            if name.eq_ignore_ascii_case(b"UID") {
                let uid = match value {
                    Value::Atom(a) => std::str::from_utf8(a).ok().and_then(number_str),
                    _ => None,
                };
                fetch.uid = Some(uid.ok_or_else(|| self.error("UID not a number"))?);
            } else if name.eq_ignore_ascii_case(b"FLAGS") {
                let Value::List(items) = value else {
                    return Err(self.error("FLAGS not a list"));
                };
                let mut names = Vec::with_capacity(items.len());
                for item in &items {
                    let Value::Atom(a) = item else {
                        return Err(self.error("a flag that is not an atom"));
                    };
                    fetch.recent |= a.eq_ignore_ascii_case(b"\\Recent");
                    names.push(String::from_utf8_lossy(a).into_owned());
                }
                fetch.flags = Some(Flags::from_names(names));
            } else if name.eq_ignore_ascii_case(b"MODSEQ") {
                let modseq = match &value {
                    Value::List(items) => match items.as_slice() {
                        [Value::Atom(a)] => std::str::from_utf8(a).ok().and_then(|s| s.parse().ok()),
                        _ => None,
                    },
                    _ => None,
                };
                fetch.modseq = Some(modseq.ok_or_else(|| self.error("MODSEQ not (number)"))?);
            } else if name.eq_ignore_ascii_case(b"ENVELOPE") {
                let Value::List(fields) = value else {
                    return Err(self.error("ENVELOPE not a list"));
                };
                if fields.len() != 10 {
                    return Err(self.error("ENVELOPE without its 10 fields"));
                }
                fetch.envelope = Some(Envelope {
                    subject: fields[1].nstring(),
                    message_id: fields[9].nstring(),
                });
            }
        }
        if !self.rest().is_empty() {
            return Err(self.error("text after the FETCH items"));
        }
        Ok(fetch)
    }

    /// The numbers of `* SEARCH`, before any `(MODSEQ n)` (RFC 7162 §3.1.5).
    fn search(&mut self) -> Result<Vec<u32>, ParseError> {
        let mut numbers = Vec::new();
        while self.eat(b' ') {
            if self.peek() == Some(b'(') {
                break;
            }
            numbers.push(self.number()?);
        }
        Ok(numbers)
    }
}

#[cfg(test)]
mod tests;
