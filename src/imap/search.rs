//! SEARCH evaluation (RFC 9051 §6.4.4, with RFC 7162 MODSEQ, RFC 5032 WITHIN and RFC 5182 `$`)
//! and the SEARCH / ESEARCH responses (RFC 9051 §7.3.4, RFC 4731, RFC 3501 §7.2.5), ESORT's
//! among them (RFC 5267 §3).
//!
//! Owns what each search key means for one message. It never touches the store, a socket or a
//! clock (`now` comes in the [`SearchContext`]), and never panics. Keys are evaluated cheapest
//! first: flags, dates, sizes and sets from the record; then SUBJECT, SENT* and the address keys
//! (FROM, TO, CC, BCC) from the [`Structure`]; only then header and body text from the message
//! bytes, which are fetched lazily, at most once per message, through [`SearchData`].
//!
//! Text matching: case-insensitive substring, ASCII case folding plus Unicode simple lowercase
//! (a character whose lowercase is a single character). Header values are unfolded and their
//! RFC 2047 encoded-words decoded. The address keys match the ENVELOPE's addresses written out
//! as text ([`envelope::write_text`]), names decoded. Body text is decoded from base64 and
//! quoted-printable, and from its charset to UTF-8: UTF-8 and US-ASCII are searched as they are,
//! other charsets known to mail-parser (ISO-8859-*, Windows-125x, KOI8, GB/Big5/Shift_JIS/EUC,
//! UTF-16, ...) are converted, unknown ones are searched as raw bytes (ASCII search strings still
//! match). Only text/* leaves and the headers of encapsulated messages count as body text.

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::HeaderValue;

use super::command::fetch::render::MessageBytes;
use super::format::{self, TransferEncoding};
use super::sort::envelope::{self, Field};
use super::types::{SearchKey, SearchReturn, SeqBound, SequenceSet};
use crate::mime::{Section as MimeSection, Structure};
use crate::store::records::{flags, MessageRecord};

/// One message as SEARCH sees it before anything is loaded.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub seq: u32,
    pub uid: u32,
    pub record: &'a MessageRecord,
    pub recent: bool,
}

/// What a key needs beyond the record, fetched on demand. `None` (the data cannot be read, e.g.
/// a damaged store) makes the keys that need it not match.
pub trait SearchData {
    /// The structure (SUBJECT, SENT*, FROM/TO/CC/BCC).
    fn structure(&mut self) -> Option<&Structure>;
    /// The structure and the message bytes together (HEADER, BODY, TEXT).
    fn message(&mut self) -> Option<(&Structure, &dyn MessageBytes)>;
}

/// The mailbox-wide facts keys refer to.
#[derive(Debug, Clone, Default)]
pub struct SearchContext {
    /// Unix seconds, for OLDER / YOUNGER.
    pub now: i64,
    /// What `*` means in a UID set and in a sequence set.
    pub max_uid: u32,
    pub max_seq: u32,
    /// RFC 5182 `$`: the saved result as UIDs, ascending. `None` (nothing saved) is empty.
    pub saved: Option<Vec<u32>>,
}

/// Whether `key` matches the message (a one-off [`Searcher`]; reuse one across a mailbox).
pub fn matches(key: &SearchKey, c: &Candidate<'_>, data: &mut dyn SearchData, ctx: &SearchContext) -> bool {
    Searcher::default().matches(key, c, data, ctx)
}

/// Whether the key uses MODSEQ, so the response carries the highest mod-sequence of the
/// results (RFC 7162 §3.1.5).
pub fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(keys) => keys.iter().any(uses_modseq),
        _ => false,
    }
}

/// The lowest modseq every match must have, when the program requires one at its top level
/// (`MODSEQ n`, alone or ANDed with other keys): then only the messages the modseq index
/// lists from there can match.
pub fn required_modseq(key: &SearchKey) -> Option<u64> {
    match key {
        SearchKey::ModSeq(n) => Some(*n),
        SearchKey::And(keys) => keys.iter().filter_map(required_modseq).max(),
        _ => None,
    }
}

/// Evaluates keys against one message after another, keeping its text buffers between messages
/// so a search over a mailbox does not allocate per message.
#[derive(Debug, Default)]
pub struct Searcher {
    /// The top-level header of the current message, once loaded.
    header: Option<Vec<u8>>,
    /// Decoded body text of the current message, once loaded.
    body: Option<Vec<u8>>,
    /// Buffers kept for reuse by the next message.
    spare_header: Vec<u8>,
    spare_body: Vec<u8>,
    value: Vec<u8>,
}

/// How much a key costs to evaluate: what it must load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cost {
    Record,
    Structure,
    Bytes,
}

fn cost(key: &SearchKey) -> Cost {
    match key {
        SearchKey::Subject(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::To(_) => Cost::Structure,
        SearchKey::Header(..) | SearchKey::Body(_) | SearchKey::Text(_) => Cost::Bytes,
        SearchKey::Not(k) => cost(k),
        SearchKey::Or(a, b) => cost(a).max(cost(b)),
        SearchKey::And(keys) => keys.iter().map(cost).max().unwrap_or(Cost::Record),
        _ => Cost::Record,
    }
}

const SECS_PER_DAY: i64 = 86_400;

impl Searcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `key` matches the message.
    pub fn matches(
        &mut self,
        key: &SearchKey,
        c: &Candidate<'_>,
        data: &mut dyn SearchData,
        ctx: &SearchContext,
    ) -> bool {
        if let Some(h) = self.header.take() {
            self.spare_header = h;
        }
        if let Some(b) = self.body.take() {
            self.spare_body = b;
        }
        self.eval(key, c, data, ctx)
    }

    fn eval(&mut self, key: &SearchKey, c: &Candidate<'_>, data: &mut dyn SearchData, ctx: &SearchContext) -> bool {
        let r = c.record;
        let has = |bit: u8| r.flags & bit != 0;
        let day = r.internal_date.div_euclid(SECS_PER_DAY);
        // RFC 5032 §3: the age of the message by its INTERNALDATE.
        let age = ctx.now.saturating_sub(r.internal_date);
        let secs = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        match key {
            SearchKey::All => true,
            SearchKey::Answered => has(flags::ANSWERED),
            SearchKey::Deleted => has(flags::DELETED),
            SearchKey::Draft => has(flags::DRAFT),
            SearchKey::Flagged => has(flags::FLAGGED),
            SearchKey::Seen => has(flags::SEEN),
            SearchKey::Unanswered => !has(flags::ANSWERED),
            SearchKey::Undeleted => !has(flags::DELETED),
            SearchKey::Undraft => !has(flags::DRAFT),
            SearchKey::Unflagged => !has(flags::FLAGGED),
            SearchKey::Unseen => !has(flags::SEEN),
            SearchKey::Recent => c.recent,
            // RFC 3501 §6.4.4: NEW is RECENT UNSEEN, OLD is NOT RECENT.
            SearchKey::New => c.recent && !has(flags::SEEN),
            SearchKey::Old => !c.recent,
            // RFC 9051 §2.3.2: flag names are case-insensitive.
            SearchKey::Keyword(k) => r.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)),
            SearchKey::Unkeyword(k) => !r.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)),
            // RFC 9051 §6.4.4: dates disregard time and timezone; INTERNALDATE's date is UTC.
            SearchKey::Before(d) => day < *d,
            SearchKey::On(d) => day == *d,
            SearchKey::Since(d) => day >= *d,
            SearchKey::SentBefore(d) => sent_day(data).is_some_and(|s| s < *d),
            SearchKey::SentOn(d) => sent_day(data).is_some_and(|s| s == *d),
            SearchKey::SentSince(d) => sent_day(data).is_some_and(|s| s >= *d),
            SearchKey::Larger(n) => r.size > *n,
            SearchKey::Smaller(n) => r.size < *n,
            SearchKey::ModSeq(n) => r.modseq >= *n,
            SearchKey::Older(n) => age > secs(*n),
            SearchKey::Younger(n) => age <= secs(*n),
            SearchKey::SavedBefore(d) => r.save_date.div_euclid(SECS_PER_DAY) < *d,
            SearchKey::SavedOn(d) => r.save_date.div_euclid(SECS_PER_DAY) == *d,
            SearchKey::SavedSince(d) => r.save_date.div_euclid(SECS_PER_DAY) >= *d,
            SearchKey::SaveDateSupported => true,
            SearchKey::EmailId(id) => {
                let mut mine = Vec::with_capacity(17);
                super::command::fetch::render::email_id(r.body_id, &mut mine);
                mine == id.as_bytes()
            }
            // THREADID is NIL here (RFC 8474 §5.2 allows it), so no message has one.
            SearchKey::ThreadId(_) => false,
            SearchKey::Uid(_) | SearchKey::Seq(_) | SearchKey::UidAfter(_) | SearchKey::UidBefore(_) => {
                in_scope(key, c.seq, c.uid, ctx)
            }
            SearchKey::Subject(s) => data
                .structure()
                .and_then(|st| st.subject.as_deref())
                .is_some_and(|subject| contains_folded(subject.as_bytes(), s)),
            SearchKey::Header(name, s) => self.header_field(data, name, s),
            SearchKey::From(s) => self.address_field(data, Field::From, s),
            SearchKey::To(s) => self.address_field(data, Field::To, s),
            SearchKey::Cc(s) => self.address_field(data, Field::Cc, s),
            SearchKey::Bcc(s) => self.address_field(data, Field::Bcc, s),
            SearchKey::Body(s) => self.body_text(data, s),
            // RFC 9051 §6.4.4 TEXT: header or body.
            SearchKey::Text(s) => self.header_text(data, s) || self.body_text(data, s),
            SearchKey::Not(k) => !self.eval(k, c, data, ctx),
            SearchKey::Or(a, b) => {
                let (first, second) = if cost(b) < cost(a) { (b, a) } else { (a, b) };
                self.eval(first, c, data, ctx) || self.eval(second, c, data, ctx)
            }
            SearchKey::And(keys) => [Cost::Record, Cost::Structure, Cost::Bytes].into_iter().all(|tier| {
                keys.iter()
                    .filter(|k| cost(k) == tier)
                    .all(|k| self.eval(k, c, data, ctx))
            }),
        }
    }

    /// The top-level header, loaded once per message.
    fn header<'s>(&'s mut self, data: &mut dyn SearchData) -> Option<&'s [u8]> {
        if self.header.is_none() {
            let (s, bytes) = data.message()?;
            let range = s.section(&[], MimeSection::Header)?;
            let mut buf = std::mem::take(&mut self.spare_header);
            buf.clear();
            let end = range.end.min(bytes.len());
            bytes.copy(range.start.min(end)..end, &mut buf);
            self.header = Some(buf);
        }
        self.header.as_deref()
    }

    /// RFC 9051 §6.4.4 HEADER: some field of that name contains the string; an empty string
    /// matches every message that has the field.
    fn header_field(&mut self, data: &mut dyn SearchData, name: &str, needle: &str) -> bool {
        let mut value = std::mem::take(&mut self.value);
        let found = self.header(data).is_some_and(|header| {
            format::header_fields(header).any(|f| {
                let field_name = &header[f.name.0..f.name.1];
                !field_name.is_empty()
                    && field_name.eq_ignore_ascii_case(name.as_bytes())
                    && contains_folded(decoded_value(&header[f.value.0..f.value.1], &mut value), needle)
            })
        });
        self.value = value;
        found
    }

    /// RFC 9051 §6.4.4 FROM, TO, CC, BCC: "the envelope structure's FROM field" contains the
    /// string. Every address of the field counts, each as `Name <mailbox@host>` with the name
    /// decoded, group names and members too ([`envelope::write_text`]), so an address, a domain,
    /// a display name or `Name <local` is found however the header spelled it: comments,
    /// quoting, folding and encoded-words are gone, as in the ENVELOPE. An empty string matches
    /// every message with an address in the field.
    fn address_field(&mut self, data: &mut dyn SearchData, field: Field, needle: &str) -> bool {
        let Some(s) = data.structure() else {
            return false;
        };
        let mut text = std::mem::take(&mut self.value);
        text.clear();
        let found =
            envelope::write_text(envelope::addresses(&s.envelope, field), &mut text) && contains_folded(&text, needle);
        self.value = text;
        found
    }

    /// TEXT's header half: the raw header, then each field's decoded value.
    fn header_text(&mut self, data: &mut dyn SearchData, needle: &str) -> bool {
        let mut value = std::mem::take(&mut self.value);
        let found = self.header(data).is_some_and(|header| {
            contains_folded(header, needle)
                || format::header_fields(header)
                    .any(|f| contains_folded(decoded_value(&header[f.value.0..f.value.1], &mut value), needle))
        });
        self.value = value;
        found
    }

    /// BODY: the decoded text of the message's text parts.
    fn body_text(&mut self, data: &mut dyn SearchData, needle: &str) -> bool {
        if self.body.is_none() {
            let Some((s, bytes)) = data.message() else {
                return false;
            };
            let mut buf = std::mem::take(&mut self.spare_body);
            buf.clear();
            collect_body_text(s, bytes, &mut buf);
            self.body = Some(buf);
        }
        self.body.as_deref().is_some_and(|body| contains_folded(body, needle))
    }
}

/// Appends, for every part but the whole message, the decoded content of text/* leaves and the
/// header of encapsulated messages, one line break between them.
fn collect_body_text(s: &Structure, bytes: &dyn MessageBytes, out: &mut Vec<u8>) {
    let len = bytes.len();
    let clamp = |a: u32, b: u32| {
        let end = (b as usize).min(len);
        (a as usize).min(end)..end
    };
    for p in s.parts.iter().skip(1) {
        if p.is_message {
            bytes.copy(clamp(p.body_start, p.inner_text_start), out);
            out.push(b'\n');
            continue;
        }
        if !p.content_type.starts_with("text/") {
            continue;
        }
        let base = out.len();
        bytes.copy(clamp(p.body_start, p.body_end), out);
        let n = match TransferEncoding::from_name(&p.encoding) {
            TransferEncoding::Unknown => out.len() - base,
            enc => enc.decode_in_place(&mut out[base..]),
        };
        out.truncate(base + n);
        // The MIME header gives the charset (the part table keeps only the media type).
        let header = clamp(p.header_start, p.header_end);
        if !out[base..].is_ascii() {
            let mut mime = Vec::new();
            bytes.copy(header, &mut mime);
            to_utf8(&mime, out, base);
        }
        out.push(b'\n');
    }
}

/// Converts `out[base..]` to UTF-8 per the charset in the Content-Type of `mime_header`, when
/// that charset is neither UTF-8/US-ASCII nor unknown.
fn to_utf8(mime_header: &[u8], out: &mut Vec<u8>, base: usize) {
    let Some(f) = format::header_fields(mime_header)
        .find(|f| mime_header[f.name.0..f.name.1].eq_ignore_ascii_case(b"content-type"))
    else {
        return;
    };
    let Some(charset) = charset_param(&mime_header[f.value.0..f.value.1]) else {
        return;
    };
    if charset.eq_ignore_ascii_case(b"utf-8") || charset.eq_ignore_ascii_case(b"us-ascii") {
        return;
    }
    if let Some(decode) = charset_decoder(charset) {
        let text = decode(&out[base..]);
        out.truncate(base);
        out.extend_from_slice(text.as_bytes());
    }
}

/// The `charset` parameter of a Content-Type value (RFC 2045 §5.1), quotes removed.
fn charset_param(value: &[u8]) -> Option<&[u8]> {
    value.split(|&b| b == b';').skip(1).find_map(|param| {
        let eq = memchr::memchr(b'=', param)?;
        let name = trim(&param[..eq]);
        if !name.eq_ignore_ascii_case(b"charset") {
            return None;
        }
        let v = trim(&param[eq + 1..]);
        Some(
            v.strip_prefix(b"\"")
                .map_or(v, |q| q.split(|&b| b == b'"').next().unwrap_or(q)),
        )
    })
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !first.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !last.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    s
}

/// A raw field value unfolded (RFC 5322 §2.2.3) and, when it holds encoded-words, decoded
/// (RFC 2047), written into `scratch`.
fn decoded_value<'v>(raw: &[u8], scratch: &'v mut Vec<u8>) -> &'v [u8] {
    scratch.clear();
    scratch.extend(raw.iter().copied().filter(|b| !matches!(b, b'\r' | b'\n')));
    if memchr::memmem::find(scratch, b"=?").is_some() {
        scratch.extend_from_slice(b"\r\n");
        let decoded = match MessageStream::new(scratch).parse_unstructured() {
            HeaderValue::Text(t) => Some(t.into_owned()),
            _ => None,
        };
        match decoded {
            Some(t) => {
                scratch.clear();
                scratch.extend_from_slice(t.as_bytes());
            }
            None => scratch.truncate(scratch.len() - 2),
        }
    }
    trim(scratch)
}

/// The day of the Date header in the sender's own timezone (RFC 9051 §6.4.4 SENT*: "disregarding
/// time and timezone"). The structure keeps the instant; the zone comes from the raw Date text at
/// the head of the stored ENVELOPE.
fn sent_day(data: &mut dyn SearchData) -> Option<i64> {
    let s = data.structure()?;
    let instant = s.date?;
    let offset = envelope::date(&s.envelope).map_or(0, |date| zone_offset(&date));
    Some(instant.saturating_add(offset).div_euclid(SECS_PER_DAY))
}

/// The zone of an RFC 5322 §3.3 date-time in seconds east of UTC: the last token that is not a
/// comment, numeric or one of the §4.3 obsolete names; 0 when unknown ("-0000" included).
fn zone_offset(date: &[u8]) -> i64 {
    // The last whitespace-separated token outside (nested) comments.
    let (mut depth, mut token, mut last) = (0usize, None::<usize>, None);
    for (i, &b) in date.iter().chain(b" ").enumerate() {
        let boundary = b.is_ascii_whitespace() || b == b'(' || b == b')' || depth > 0;
        if boundary {
            if let Some(start) = token.take() {
                last = Some((start, i));
            }
        } else if token.is_none() {
            token = Some(i);
        }
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let Some(zone) = last.map(|(a, z)| &date[a..z]) else {
        return 0;
    };
    if let [sign @ (b'+' | b'-'), digits @ ..] = zone {
        if digits.len() == 4 && digits.iter().all(u8::is_ascii_digit) {
            let d = |i: usize| i64::from(digits[i] - b'0');
            let secs = (d(0) * 10 + d(1)) * 3600 + (d(2) * 10 + d(3)) * 60;
            return if *sign == b'-' { -secs } else { secs };
        }
        return 0;
    }
    const NAMES: [(&[u8], i64); 8] = [
        (b"EDT", -4),
        (b"EST", -5),
        (b"CDT", -5),
        (b"CST", -6),
        (b"MDT", -6),
        (b"MST", -7),
        (b"PDT", -7),
        (b"PST", -8),
    ];
    NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(zone))
        .map_or(0, |(_, hours)| hours * 3600)
}

/// Whether the keys of `key` that name messages by number or UID (and its top-level list of
/// keys, all of which must match) admit message `seq`/`uid`; every other key does. These are
/// what RFC 9738 §3.1 counts as narrowing the messages a SEARCH looks at.
pub fn in_scope(key: &SearchKey, seq: u32, uid: u32, ctx: &SearchContext) -> bool {
    match key {
        SearchKey::And(keys) => keys.iter().all(|k| in_scope(k, seq, uid, ctx)),
        SearchKey::Uid(set) => in_set(set, uid, ctx.max_uid, uid, ctx),
        SearchKey::Seq(set) => in_set(set, seq, ctx.max_seq, uid, ctx),
        SearchKey::UidAfter(after) => uid > *after,
        SearchKey::UidBefore(before) => uid < *before,
        _ => true,
    }
}

/// Membership in a sequence set (RFC 9051 §9: `a:b` in either order, `*` the largest number in
/// use) or in the saved result `$` (RFC 5182 §2.1, which holds UIDs whatever the command).
fn in_set(set: &SequenceSet, number: u32, star: u32, uid: u32, ctx: &SearchContext) -> bool {
    let resolve = |b: &SeqBound| match b {
        SeqBound::Num(n) => *n,
        SeqBound::Star => star,
    };
    match set {
        SequenceSet::Saved => ctx.saved.as_ref().is_some_and(|s| s.binary_search(&uid).is_ok()),
        SequenceSet::Ranges(ranges) => ranges.iter().any(|(a, b)| {
            let (a, b) = (resolve(a), resolve(b));
            a.min(b) <= number && number <= a.max(b)
        }),
    }
}

/// Case-insensitive substring test (see the module doc). An empty needle always matches.
fn contains_folded(haystack: &[u8], needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if needle.is_ascii() {
        return ascii_find(haystack, needle.as_bytes());
    }
    let hay = String::from_utf8_lossy(haystack);
    let mut starts = hay.char_indices();
    loop {
        let rest = &hay[starts.offset()..];
        let mut h = rest.chars().map(fold);
        if needle.chars().map(fold).all(|n| h.next() == Some(n)) {
            return true;
        }
        if starts.next().is_none() {
            return false;
        }
    }
}

/// ASCII case-insensitive search; candidate positions are found with memchr on the first byte.
fn ascii_find(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, _)) = needle.split_first() else {
        return true;
    };
    if haystack.len() < needle.len() {
        return false;
    }
    let last_start = haystack.len() - needle.len();
    memchr::memchr2_iter(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        &haystack[..=last_start],
    )
    .any(|i| haystack[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

/// Simple case folding: the lowercase of a character when it is a single character.
fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Writes the result of a SEARCH.
///
/// Without RETURN on an IMAP4rev1 session: `* SEARCH 1 2 3` (RFC 3501 §7.2.5). Otherwise
/// `* ESEARCH (TAG "a") [UID] [MIN n] [MAX n] [COUNT n] [ALL set]` (RFC 4731 §3.1, RFC 9051
/// §7.3.4): RETURN () and IMAP4rev2 without RETURN mean ALL; MIN, MAX and ALL are left out when
/// nothing matched; RETURN (SAVE) alone sends nothing (RFC 5182 §2.1). `highest_modseq` is given
/// when the key used MODSEQ ([`uses_modseq`]) and is sent only when something matched
/// (RFC 7162 §3.1.5). `hits` are ascending.
pub fn render_results(
    tag: &str,
    uid: bool,
    returns: Option<&[SearchReturn]>,
    esearch_always: bool,
    hits: &[u32],
    highest_modseq: Option<u64>,
    out: &mut Vec<u8>,
) {
    let modseq = highest_modseq.filter(|_| !hits.is_empty());
    let Some(returns) = returns.or(esearch_always.then_some(&[][..])) else {
        out.extend_from_slice(b"* SEARCH");
        for &h in hits {
            out.push(b' ');
            format::number(out, h);
        }
        if let Some(m) = modseq {
            out.extend_from_slice(b" (MODSEQ ");
            format::number(out, m);
            out.push(b')');
        }
        out.extend_from_slice(b"\r\n");
        return;
    };
    let extremes = (hits.iter().min().copied(), hits.iter().max().copied());
    esearch(tag, uid, returns, extremes, hits, modseq, out);
}

/// Writes the result of an ESORT (RFC 5267 §3.1): as [`render_results`] does an ESEARCH, but
/// MIN and MAX are the first and the last message in sort order, and ALL lists `sorted` in
/// sort order, a range only where that order ascends (§3.2).
pub fn render_sorted_results(
    tag: &str,
    uid: bool,
    returns: &[SearchReturn],
    sorted: &[u32],
    highest_modseq: Option<u64>,
    out: &mut Vec<u8>,
) {
    let modseq = highest_modseq.filter(|_| !sorted.is_empty());
    let extremes = (sorted.first().copied(), sorted.last().copied());
    esearch(tag, uid, returns, extremes, sorted, modseq, out);
}

/// `* ESEARCH (TAG "a") [UID] [MIN n] [MAX n] [COUNT n] [ALL set] [MODSEQ m]`; nothing for
/// RETURN (SAVE) alone.
fn esearch(
    tag: &str,
    uid: bool,
    returns: &[SearchReturn],
    (min, max): (Option<u32>, Option<u32>),
    hits: &[u32],
    modseq: Option<u64>,
    out: &mut Vec<u8>,
) {
    let wants = |r: SearchReturn| returns.contains(&r) || returns.is_empty() && r == SearchReturn::All;
    if !returns.is_empty() && returns.iter().all(|r| *r == SearchReturn::Save) {
        return;
    }
    out.extend_from_slice(b"* ESEARCH (TAG ");
    format::string(out, tag.as_bytes(), false);
    out.push(b')');
    if uid {
        out.extend_from_slice(b" UID");
    }
    if let (true, Some(m)) = (wants(SearchReturn::Min), min) {
        out.extend_from_slice(b" MIN ");
        format::number(out, m);
    }
    if let (true, Some(m)) = (wants(SearchReturn::Max), max) {
        out.extend_from_slice(b" MAX ");
        format::number(out, m);
    }
    if wants(SearchReturn::Count) {
        out.extend_from_slice(b" COUNT ");
        format::number(out, hits.len());
    }
    if wants(SearchReturn::All) && !hits.is_empty() {
        out.extend_from_slice(b" ALL ");
        sequence_set(hits, out);
    }
    if let Some(m) = modseq {
        out.extend_from_slice(b" MODSEQ ");
        format::number(out, m);
    }
    out.extend_from_slice(b"\r\n");
}

/// What RETURN (SAVE ...) stores as `$` (RFC 5182 §2.1): with MIN and/or MAX but neither ALL nor
/// COUNT, only those messages; otherwise every hit. `hits` are ascending.
pub fn saved_hits(returns: &[SearchReturn], hits: &[u32]) -> Vec<u32> {
    let has = |r| returns.contains(&r);
    let min_max_only =
        (has(SearchReturn::Min) || has(SearchReturn::Max)) && !has(SearchReturn::All) && !has(SearchReturn::Count);
    if !min_max_only {
        return hits.to_vec();
    }
    let mut saved = Vec::with_capacity(2);
    if let (true, Some(&m)) = (has(SearchReturn::Min), hits.iter().min()) {
        saved.push(m);
    }
    if let (true, Some(&m)) = (has(SearchReturn::Max), hits.iter().max()) {
        if saved.last() != Some(&m) {
            saved.push(m);
        }
    }
    saved
}

/// Writes ascending numbers as a compact RFC 9051 §9 sequence-set: `1:3,5,7:9`. Duplicates are
/// merged; out-of-order input is still a correct (if less compact) set.
pub fn sequence_set(numbers: &[u32], out: &mut Vec<u8>) {
    let mut i = 0;
    let mut first = true;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        i += 1;
        while i < numbers.len() && (numbers[i] == end || Some(numbers[i]) == end.checked_add(1)) {
            end = numbers[i];
            i += 1;
        }
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        format::number(out, start);
        if end != start {
            out.push(b':');
            format::number(out, end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sent late on 1 April in New York (2 April in UTC), encoded-words in the header, text in
    /// ISO-8859-1 quoted-printable and UTF-8 base64, an image whose bytes must not be searched,
    /// and an encapsulated message.
    const MSG: &str = "Date: Tue, 1 Apr 2025 23:30:00 -0500 (EST)\r\n\
From: =?utf-8?q?J=C3=B6rg?= <j@example.de>\r\n\
To: Bob <bob@example.org>\r\n\
Cc: carol@example.org\r\n\
Bcc: dave@example.org\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= fixture-subject\r\n\
X-Custom: folded\r\n value\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=\"ISO-8859-1\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Gr=FC=DFe aus=\r\n Berlin\r\n\
--b\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
PHA+aHRtbC1vbmx5LXdvcmQ8L3A+\r\n\
--b\r\n\
Content-Type: image/png\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
c2VjcmV0IGltYWdl\r\n\
--b\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: nested-subject\r\n\
\r\n\
deep text\r\n\
--b--\r\n";

    const APR_1: i64 = 20_179;
    const APR_2: i64 = 20_180;
    /// 2025-04-02T10:00:00Z.
    const INTERNAL: i64 = 1_743_588_000;

    struct Data {
        structure: Structure,
        bytes: Vec<u8>,
        structure_loads: usize,
        message_loads: usize,
    }

    impl Data {
        fn new() -> Self {
            Data::of(MSG)
        }

        fn of(message: &str) -> Self {
            let (bytes, structure) = crate::mime::ingest(message.as_bytes().to_vec()).expect("fixture is valid");
            Data {
                structure,
                bytes,
                structure_loads: 0,
                message_loads: 0,
            }
        }
    }

    impl SearchData for Data {
        fn structure(&mut self) -> Option<&Structure> {
            self.structure_loads += 1;
            Some(&self.structure)
        }
        fn message(&mut self) -> Option<(&Structure, &dyn MessageBytes)> {
            self.message_loads += 1;
            Some((&self.structure, &self.bytes))
        }
    }

    /// A message whose structure and bytes cannot be read.
    struct Missing;

    impl SearchData for Missing {
        fn structure(&mut self) -> Option<&Structure> {
            None
        }
        fn message(&mut self) -> Option<(&Structure, &dyn MessageBytes)> {
            None
        }
    }

    fn record() -> MessageRecord {
        MessageRecord {
            flags: flags::SEEN | flags::FLAGGED,
            internal_date: INTERNAL,
            save_date: INTERNAL,
            size: 1234,
            modseq: 77,
            body_id: 1,
            keywords: vec!["Work".into()],
        }
    }

    fn ctx() -> SearchContext {
        SearchContext {
            now: INTERNAL + 3600,
            max_uid: 60,
            max_seq: 9,
            saved: Some(vec![10, 50]),
        }
    }

    fn set(ranges: &[(Option<u32>, Option<u32>)]) -> SequenceSet {
        let b = |n: Option<u32>| n.map_or(SeqBound::Star, SeqBound::Num);
        SequenceSet::Ranges(ranges.iter().map(|&(a, z)| (b(a), b(z))).collect())
    }

    fn s(text: &str) -> String {
        text.to_string()
    }

    #[test]
    fn every_key() {
        use SearchKey as K;
        let not = |k: K| K::Not(Box::new(k));
        let or = |a: K, b: K| K::Or(Box::new(a), Box::new(b));
        let cases: Vec<(K, bool)> = vec![
            (K::All, true),
            (K::Answered, false),
            (K::Unanswered, true),
            (K::Deleted, false),
            (K::Undeleted, true),
            (K::Draft, false),
            (K::Undraft, true),
            (K::Flagged, true),
            (K::Unflagged, false),
            (K::Seen, true),
            (K::Unseen, false),
            (K::Recent, true),
            (K::New, false),
            (K::Old, false),
            (K::Keyword(s("work")), true),
            (K::Keyword(s("home")), false),
            (K::Unkeyword(s("home")), true),
            (K::Unkeyword(s("WORK")), false),
            (K::Before(APR_2), false),
            (K::Before(APR_2 + 1), true),
            (K::On(APR_2), true),
            (K::On(APR_1), false),
            (K::Since(APR_2), true),
            (K::Since(APR_2 + 1), false),
            // The Date header's own day is 1 April (-0500), though it is 2 April in UTC.
            (K::SentOn(APR_1), true),
            (K::SentOn(APR_2), false),
            (K::SentBefore(APR_2), true),
            (K::SentBefore(APR_1), false),
            (K::SentSince(APR_1), true),
            (K::SentSince(APR_2), false),
            (K::Larger(1233), true),
            (K::Larger(1234), false),
            (K::Smaller(1235), true),
            (K::Smaller(1234), false),
            (K::Header(s("x-custom"), s("FOLDED VALUE")), true),
            (K::Header(s("X-Custom"), s("")), true),
            (K::Header(s("X-Custom"), s("other")), false),
            (K::Header(s("X-Missing"), s("")), false),
            (K::From(s("JÖRG")), true),
            (K::From(s("j@example.DE")), true),
            (K::From(s("bob")), false),
            (K::To(s("bob@")), true),
            (K::To(s("carol")), false),
            (K::Cc(s("Carol")), true),
            (K::Cc(s("bob")), false),
            (K::Bcc(s("dave")), true),
            (K::Bcc(s("carol")), false),
            (K::Subject(s("GRÜßE fixture")), true),
            (K::Subject(s("")), true),
            (K::Subject(s("tschüss")), false),
            (K::Body(s("grüße AUS")), true),
            (K::Body(s("Berlin")), true),
            (K::Body(s("HTML-only-word")), true),
            (K::Body(s("nested-subject")), true),
            (K::Body(s("deep text")), true),
            (K::Body(s("secret")), false),
            (K::Body(s("fixture-subject")), false),
            (K::Text(s("fixture-subject")), true),
            (K::Text(s("grüße fixture")), true),
            (K::Text(s("deep text")), true),
            (K::Text(s("absent")), false),
            (K::Uid(set(&[(Some(50), None)])), true),
            (K::Uid(set(&[(Some(1), Some(49)), (Some(51), Some(55))])), false),
            (K::Uid(set(&[(None, None)])), false),
            (K::Uid(set(&[(Some(55), Some(45))])), true),
            (K::Uid(set(&[(Some(70), None)])), false),
            (K::Uid(SequenceSet::Saved), true),
            (K::Seq(set(&[(Some(5), Some(5))])), true),
            (K::Seq(set(&[(None, Some(6))])), false),
            (K::Seq(set(&[(Some(1), None)])), true),
            (K::Seq(SequenceSet::Saved), true),
            (K::ModSeq(77), true),
            (K::ModSeq(78), false),
            (K::Older(3599), true),
            (K::Older(3600), false),
            (K::Younger(3600), true),
            (K::Younger(3599), false),
            (K::Older(u64::MAX), false),
            (not(K::Seen), false),
            (not(K::Deleted), true),
            (or(K::Answered, K::Flagged), true),
            (or(K::Answered, K::Deleted), false),
            (or(K::Body(s("deep")), K::Answered), true),
            (
                K::And(vec![K::Seen, K::Body(s("deep text")), K::Subject(s("fixture"))]),
                true,
            ),
            (K::And(vec![K::Body(s("deep text")), K::Unseen]), false),
            (K::And(vec![]), true),
        ];
        let r = record();
        let c = Candidate {
            seq: 5,
            uid: 50,
            record: &r,
            recent: true,
        };
        let ctx = ctx();
        let mut searcher = Searcher::new();
        for (key, want) in cases {
            let mut data = Data::new();
            assert_eq!(searcher.matches(&key, &c, &mut data, &ctx), want, "{key:?}");
            assert_eq!(matches(&key, &c, &mut Data::new(), &ctx), want, "{key:?} (one-off)");
        }
    }

    /// Regression (compliance suite, FROM user-from@domain.org missed a message that had it):
    /// the address keys match every address of the ENVELOPE field as text, however the header
    /// wrote it. Messages 1–6 are Dovecot's imaptest `search-addresses` mailbox.
    #[test]
    fn address_keys() {
        let messages = [
            "From: user-from@domain.org\nTo: user-to@domain.org\nCc: user-cc@domain.org\n\
             Bcc: user-bcc@domain.org\n\nbody\n",
            "From: RealFrom <user-from@domain.org>\nTo: RealTo <user-to@domain.org>\n\
             Cc: RealCc <user-cc@domain.org>\nBcc: RealBcc <user-bcc@domain.org>\n\nbody2\n",
            "From: <user-from (comment)@ (comment) domain.org>\nTo: <user-to@domain.org>\n\
             Cc: <user-cc@domain.org>\nBcc: <user-bcc@domain.org>\n\nbody3\n",
            "From: user-from@domain.org (RealFrom)\nTo: user-to@domain.org (RealTo)\n\
             Cc: user-cc@domain.org (RealCc)\nBcc: user-bcc@domain.org (RealBcc)\n\nbody4\n",
            "From: user-from1@domain.org, user-from2@domain.org\nCc: user-cc@domain.org\n\nbody5\n",
            "To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\n  \
             groupname2: groupuser3@domain.org;\n\nbody5\n",
            "From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\n\nbody7\n",
            "From: \"user-from@domain.org\" <other@example.net>\n\nbody8\n",
            "From: nobody@example.net\nTo: Undisclosed: a@b, c@d;\n\nbody9\n",
            "From: \"User From\" <user-from@domain.org>\n\nbody10\n",
        ];
        use SearchKey as K;
        let cases: Vec<(K, &[u32])> = vec![
            (K::From(s("user-from@domain.org")), &[1, 2, 3, 4, 8, 10]),
            (K::To(s("user-to@domain.org")), &[1, 2, 3, 4]),
            (K::Cc(s("user-cc@domain.org")), &[1, 2, 3, 4, 5]),
            (K::Bcc(s("user-bcc@domain.org")), &[1, 2, 3, 4]),
            // Display names, the c-client comment name included, and pieces of them.
            (K::From(s("realfrom")), &[2, 4]),
            (K::To(s("realto")), &[2, 4]),
            (K::Cc(s("realcc")), &[2, 4]),
            (K::Bcc(s("realbcc")), &[2, 4]),
            (K::From(s("ealfro")), &[2, 4]),
            (K::From(s("ser-fro")), &[1, 2, 3, 4, 5, 8, 10]),
            (K::From(s("DOMAIN.org")), &[1, 2, 3, 4, 5, 8, 10]),
            // Every address counts, not only the first.
            (K::From(s("user-from1")), &[5]),
            (K::From(s("user-from2@")), &[5]),
            // Groups: their names and members.
            (K::To(s("groupname")), &[6]),
            (K::To(s("groupname2")), &[6]),
            (K::To(s("groupuser1")), &[6]),
            (K::To(s("groupuser3@domain.org")), &[6]),
            (K::To(s("groupuser4")), &[]),
            (K::To(s("undisclosed: a@b")), &[9]),
            (K::To(s("c@d")), &[9]),
            // Names are decoded and unquoted, as in the ENVELOPE; comments are not addresses.
            (K::From(s("jörg MÜLLER")), &[7]),
            (K::From(s("=?utf-8?")), &[]),
            (K::From(s("User From <user-from@")), &[10]),
            (K::From(s("\"User From\"")), &[]),
            (K::From(s("comment")), &[]),
            // The empty string: every message with an address in the field.
            (K::From(s("")), &[1, 2, 3, 4, 5, 7, 8, 9, 10]),
            (K::Bcc(s("")), &[1, 2, 3, 4]),
        ];
        let r = record();
        let ctx = ctx();
        let mut searcher = Searcher::new();
        let mut mailbox: Vec<Data> = messages.iter().map(|m| Data::of(m)).collect();
        for (key, want) in cases {
            let mut hits = Vec::new();
            for (seq, data) in (1..).zip(mailbox.iter_mut()) {
                let c = Candidate {
                    seq,
                    uid: seq,
                    record: &r,
                    recent: false,
                };
                if searcher.matches(&key, &c, data, &ctx) {
                    hits.push(seq);
                }
            }
            assert_eq!(hits, want, "{key:?}");
        }
        // Address keys read the structure, never the message bytes.
        assert!(mailbox.iter().all(|d| d.message_loads == 0));
    }

    #[test]
    fn recency_saved_and_missing_data() {
        let mut r = record();
        r.flags = 0;
        let ctx_none = SearchContext { saved: None, ..ctx() };
        let c = |recent| Candidate {
            seq: 5,
            uid: 50,
            record: &r,
            recent,
        };
        let cases: Vec<(SearchKey, bool, &SearchContext, bool)> = vec![
            (SearchKey::New, true, &ctx_none, true),
            (SearchKey::New, false, &ctx_none, false),
            (SearchKey::Old, false, &ctx_none, true),
            (SearchKey::Recent, false, &ctx_none, false),
            (SearchKey::Uid(SequenceSet::Saved), true, &ctx_none, false),
            (SearchKey::Seq(SequenceSet::Saved), true, &ctx_none, false),
        ];
        for (key, recent, ctx, want) in cases {
            assert_eq!(matches(&key, &c(recent), &mut Data::new(), ctx), want, "{key:?}");
        }
        // RFC 9051 §9: "n:*" with n past the largest UID still holds the last message.
        let last = Candidate { uid: 60, ..c(false) };
        let beyond = SearchKey::Uid(set(&[(Some(70), None)]));
        assert!(matches(&beyond, &last, &mut Data::new(), &ctx_none));
        // Unreadable structure or bytes: keys that need them do not match.
        for key in [
            SearchKey::Subject(s("")),
            SearchKey::From(s("")),
            SearchKey::SentSince(0),
            SearchKey::Header(s("Date"), s("")),
            SearchKey::Body(s("")),
            SearchKey::Text(s("")),
        ] {
            assert!(!matches(&key, &c(false), &mut Missing, &ctx_none), "{key:?}");
        }
    }

    #[test]
    fn loads_lazily_and_once() {
        let r = record();
        let c = Candidate {
            seq: 5,
            uid: 50,
            record: &r,
            recent: false,
        };
        let ctx = ctx();
        let mut searcher = Searcher::new();
        // Cheap keys are decided first: the failing flag test spares the body.
        let key = SearchKey::And(vec![
            SearchKey::Body(s("deep")),
            SearchKey::Subject(s("x")),
            SearchKey::Unseen,
        ]);
        let mut data = Data::new();
        assert!(!searcher.matches(&key, &c, &mut data, &ctx));
        assert_eq!((data.structure_loads, data.message_loads), (0, 0));
        // Structure keys never load the bytes.
        let key = SearchKey::Or(Box::new(SearchKey::Subject(s("none"))), Box::new(SearchKey::SentOn(0)));
        let mut data = Data::new();
        assert!(!searcher.matches(&key, &c, &mut data, &ctx));
        assert_eq!(data.message_loads, 0);
        // The header and the body text are each read once per message, however many keys.
        let key = SearchKey::And(vec![
            SearchKey::Body(s("deep")),
            SearchKey::Body(s("berlin")),
            SearchKey::From(s("jörg")),
            SearchKey::To(s("bob")),
            SearchKey::Text(s("dave")),
        ]);
        let mut data = Data::new();
        assert!(searcher.matches(&key, &c, &mut data, &ctx));
        assert_eq!(data.message_loads, 2);
        // A new message starts from nothing.
        let mut other = Data::new();
        other.bytes = b"Subject: other\r\n\r\nplain\r\n".to_vec();
        other.structure = crate::mime::analyze(&other.bytes).unwrap();
        assert!(!searcher.matches(&SearchKey::Body(s("deep")), &c, &mut other, &ctx));
        assert!(searcher.matches(&SearchKey::Text(s("other")), &c, &mut other, &ctx));
    }

    #[test]
    fn folding_and_zones() {
        let cases: &[(&str, &str, bool)] = &[
            ("Hello World", "WORLD", true),
            ("Hello", "hello world", false),
            ("ÄRGER", "ärger", true),
            ("Ärger", "ÄRGER", true),
            ("straße", "STRASSE", false),
            ("ΣΟΦΊΑ", "σοφία", true),
            ("abc", "", true),
            ("", "a", false),
        ];
        for (hay, needle, want) in cases {
            assert_eq!(contains_folded(hay.as_bytes(), needle), *want, "{hay:?} {needle:?}");
        }
        assert!(contains_folded(b"caf\xe9 latin-1 bytes", "LATIN-1"));
        let zones: &[(&[u8], i64)] = &[
            (b"Tue, 1 Apr 2025 23:30:00 -0500 (EST)", -5 * 3600),
            (b"1 Apr 2025 10:00 +0530", 5 * 3600 + 30 * 60),
            (b"1 Apr 2025 10:00 PDT", -7 * 3600),
            (b"1 Apr 2025 10:00 GMT", 0),
            (b"1 Apr 2025 10:00 +05", 0),
            (b"1 Apr 2025 10:00 pst (Pacific (standard)) ", -8 * 3600),
            (b"(only a comment)", 0),
            (b"", 0),
        ];
        for (date, want) in zones {
            assert_eq!(zone_offset(date), *want, "{:?}", String::from_utf8_lossy(date));
        }
        assert_eq!(
            charset_param(b"text/plain; format=flowed; CharSet=\"koi8-r\""),
            Some(&b"koi8-r"[..])
        );
        assert_eq!(charset_param(b"text/plain"), None);
    }

    fn rendered(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn responses() {
        use SearchReturn as R;
        let hits = [1, 2, 3, 8, 9];
        type Case<'a> = (bool, Option<&'a [R]>, bool, &'a [u32], Option<u64>, &'a str);
        let cases: &[Case<'_>] = &[
            (false, None, false, &hits, None, "* SEARCH 1 2 3 8 9\r\n"),
            (true, None, false, &[], None, "* SEARCH\r\n"),
            (false, None, false, &[2, 5], Some(917), "* SEARCH 2 5 (MODSEQ 917)\r\n"),
            (false, None, false, &[], Some(917), "* SEARCH\r\n"),
            (false, None, true, &hits, None, "* ESEARCH (TAG \"a1\") ALL 1:3,8:9\r\n"),
            (
                true,
                None,
                true,
                &hits,
                None,
                "* ESEARCH (TAG \"a1\") UID ALL 1:3,8:9\r\n",
            ),
            (
                false,
                Some(&[]),
                false,
                &hits,
                None,
                "* ESEARCH (TAG \"a1\") ALL 1:3,8:9\r\n",
            ),
            (
                true,
                Some(&[R::All, R::Count, R::Max, R::Min]),
                false,
                &hits,
                Some(5),
                "* ESEARCH (TAG \"a1\") UID MIN 1 MAX 9 COUNT 5 ALL 1:3,8:9 MODSEQ 5\r\n",
            ),
            (
                false,
                Some(&[R::Min, R::Max, R::Count, R::All]),
                true,
                &[],
                Some(5),
                "* ESEARCH (TAG \"a1\") COUNT 0\r\n",
            ),
            (false, Some(&[R::Min]), false, &[], None, "* ESEARCH (TAG \"a1\")\r\n"),
            (false, Some(&[R::Save]), true, &hits, None, ""),
            (
                false,
                Some(&[R::Save, R::Count]),
                false,
                &hits,
                None,
                "* ESEARCH (TAG \"a1\") COUNT 5\r\n",
            ),
        ];
        for &(uid, returns, always, hits, modseq, want) in cases {
            let got = rendered(|o| render_results("a1", uid, returns, always, hits, modseq, o));
            assert_eq!(got, want, "{returns:?} {hits:?}");
        }
        assert_eq!(
            rendered(|o| render_results("q\"t", false, None, true, &[4], None, o)),
            "* ESEARCH (TAG \"q\\\"t\") ALL 4\r\n"
        );
        // ESORT (RFC 5267 §3.1): MIN and MAX by place in the sort order, ALL in it.
        let sorted = [9, 3, 4, 5, 1];
        type SortedCase<'a> = (&'a [R], &'a [u32], Option<u64>, &'a str);
        let cases: &[SortedCase<'_>] = &[
            (
                &[R::Min, R::Max, R::Count, R::All],
                &sorted,
                None,
                "* ESEARCH (TAG \"s\") UID MIN 9 MAX 1 COUNT 5 ALL 9,3:5,1\r\n",
            ),
            (
                &[R::All],
                &[5, 4, 3],
                Some(7),
                "* ESEARCH (TAG \"s\") UID ALL 5,4,3 MODSEQ 7\r\n",
            ),
            (&[R::Min, R::All], &[], Some(7), "* ESEARCH (TAG \"s\") UID\r\n"),
            (&[R::Update], &sorted, None, "* ESEARCH (TAG \"s\") UID\r\n"),
            (&[R::Save], &sorted, None, ""),
        ];
        for &(returns, sorted, modseq, want) in cases {
            let got = rendered(|o| render_sorted_results("s", true, returns, sorted, modseq, o));
            assert_eq!(got, want, "{returns:?} {sorted:?}");
        }
    }

    #[test]
    fn sequence_sets_and_saving() {
        let cases: &[(&[u32], &str)] = &[
            (&[], ""),
            (&[4], "4"),
            (&[1, 2, 3, 5, 7, 8, 9], "1:3,5,7:9"),
            (&[1, 1, 2, 4, 4], "1:2,4"),
            (&[3, 1, 2], "3,1:2"),
            (&[u32::MAX - 1, u32::MAX], "4294967294:4294967295"),
        ];
        for (numbers, want) in cases {
            assert_eq!(rendered(|o| sequence_set(numbers, o)), *want);
        }
        use SearchReturn as R;
        let hits = [3, 5, 9];
        assert_eq!(saved_hits(&[R::Save], &hits), hits);
        assert_eq!(saved_hits(&[R::Save, R::Min], &hits), [3]);
        assert_eq!(saved_hits(&[R::Save, R::Min, R::Max], &hits), [3, 9]);
        assert_eq!(saved_hits(&[R::Save, R::Min, R::Max], &[4]), [4]);
        assert_eq!(saved_hits(&[R::Save, R::Max, R::Count], &hits), hits);
        assert_eq!(saved_hits(&[R::Save, R::Min], &[]), Vec::<u32>::new());
        assert!(uses_modseq(&SearchKey::Not(Box::new(SearchKey::ModSeq(1)))));
        assert!(!uses_modseq(&SearchKey::And(vec![SearchKey::All])));
    }
}
