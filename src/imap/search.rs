//! SEARCH evaluation (RFC 9051 §6.4.4, with RFC 7162 MODSEQ, RFC 5032 WITHIN and RFC 5182 `$`)
//! and the SEARCH / ESEARCH responses (RFC 9051 §7.3.4, RFC 4731, RFC 3501 §7.2.5).
//!
//! Owns what each search key means for one message. It never touches the store, a socket or a
//! clock (`now` comes in the [`SearchContext`]), and never panics. Keys are evaluated cheapest
//! first: flags, dates, sizes and sets from the record; then SUBJECT and SENT* from the
//! [`Structure`]; only then header and body text from the message bytes, which are fetched
//! lazily, at most once per message, through [`SearchData`].
//!
//! Text matching: case-insensitive substring, ASCII case folding plus Unicode simple lowercase
//! (a character whose lowercase is a single character). Header values are unfolded and their
//! RFC 2047 encoded-words decoded. Body text is decoded from base64 and quoted-printable, and from
//! its charset to UTF-8: UTF-8 and US-ASCII are searched as they are, other charsets known to
//! mail-parser (ISO-8859-*, Windows-125x, KOI8, GB/Big5/Shift_JIS/EUC, UTF-16, ...) are
//! converted, unknown ones are searched as raw bytes (ASCII search strings still match). Only
//! text/* leaves and the headers of encapsulated messages count as body text.

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::HeaderValue;

use super::fetch::MessageBytes;
use super::format::{self, TransferEncoding};
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
    /// The structure (SUBJECT, SENT*).
    fn structure(&mut self) -> Option<&Structure>;
    /// The structure and the message bytes together (HEADER, FROM/TO/CC/BCC, BODY, TEXT).
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
        SearchKey::Subject(_) | SearchKey::SentBefore(_) | SearchKey::SentOn(_) | SearchKey::SentSince(_) => {
            Cost::Structure
        }
        SearchKey::Header(..)
        | SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::To(_)
        | SearchKey::Body(_)
        | SearchKey::Text(_) => Cost::Bytes,
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
            SearchKey::Uid(set) => in_set(set, c.uid, ctx.max_uid, c.uid, ctx),
            SearchKey::Seq(set) => in_set(set, c.seq, ctx.max_seq, c.uid, ctx),
            SearchKey::Subject(s) => data
                .structure()
                .and_then(|st| st.subject.as_deref())
                .is_some_and(|subject| contains_folded(subject.as_bytes(), s)),
            SearchKey::Header(name, s) => self.header_field(data, name, s),
            SearchKey::From(s) => self.header_field(data, "from", s),
            SearchKey::To(s) => self.header_field(data, "to", s),
            SearchKey::Cc(s) => self.header_field(data, "cc", s),
            SearchKey::Bcc(s) => self.header_field(data, "bcc", s),
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

    /// RFC 9051 §6.4.4 HEADER (and FROM, TO, CC, BCC): some field of that name contains the
    /// string; an empty string matches every message that has the field.
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
    let offset = envelope_date(s.envelope.as_bytes()).map_or(0, zone_offset);
    Some(instant.saturating_add(offset).div_euclid(SECS_PER_DAY))
}

/// The date nstring that opens a rendered ENVELOPE: quoted or literal, `None` for NIL.
fn envelope_date(env: &[u8]) -> Option<&[u8]> {
    let rest = env.strip_prefix(b"(")?;
    if let Some(q) = rest.strip_prefix(b"\"") {
        let mut i = 0;
        while i < q.len() && q[i] != b'"' {
            i += if q[i] == b'\\' { 2 } else { 1 };
        }
        return q.get(..i);
    }
    let lit = rest.strip_prefix(b"{")?;
    let close = memchr::memchr(b'}', lit)?;
    let n: usize = std::str::from_utf8(&lit[..close]).ok()?.parse().ok()?;
    lit.get(close + 3..close + 3 + n)
}

/// The zone of an RFC 5322 §3.3 date-time in seconds east of UTC: the last token that is not a
/// comment, numeric or one of the §4.3 obsolete names; 0 when unknown ("-0000" included).
fn zone_offset(date: &[u8]) -> i64 {
    let mut depth = 0usize;
    let mut clean = Vec::with_capacity(date.len());
    for &b in date {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => clean.push(b),
            _ => {}
        }
    }
    let Some(zone) = clean.split(|b| b.is_ascii_whitespace()).rfind(|t| !t.is_empty()) else {
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
    let hours = match zone.to_ascii_uppercase().as_slice() {
        b"EDT" => -4,
        b"EST" | b"CDT" => -5,
        b"CST" | b"MDT" => -6,
        b"MST" | b"PDT" => -7,
        b"PST" => -8,
        _ => 0,
    };
    hours * 3600
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
    let (min, max) = (hits.iter().min(), hits.iter().max());
    if let (true, Some(&m)) = (wants(SearchReturn::Min), min) {
        out.extend_from_slice(b" MIN ");
        format::number(out, m);
    }
    if let (true, Some(&m)) = (wants(SearchReturn::Max), max) {
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
