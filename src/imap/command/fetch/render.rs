//! FETCH response rendering (RFC 9051 §6.4.5 and §7.5.2, RFC 3501 §6.4.5 and §7.4.2) with the
//! BINARY (RFC 3516), CONDSTORE (RFC 7162), SAVEDATE (RFC 8514), OBJECTID (RFC 8474) and PREVIEW
//! (RFC 8970) items.
//!
//! Owns turning one message's record, its [`Structure`] and its stored bytes into one
//! `* n FETCH (...)` line. It never parses MIME (every section is a byte range the structure
//! computed at delivery), never touches the store, a socket or a clock, and never panics: a
//! damaged structure or a short byte source yields NIL / empty strings, never a broken response.
//! Section data goes from [`MessageBytes`] straight into the caller's buffer; only HEADER.FIELDS
//! filtering and BINARY decoding rewrite it, in place, in that same buffer.
//!
//! Nonexistent sections: RFC 9051 §9 `msg-att-static` makes section data an `nstring`, and NIL is
//! the absence of a value, so a section that does not exist (BODY[5] of a 2-part message,
//! BODY[1.HEADER] of a part that is not a message, BODY[MIME]) is `NIL` (Gmail and Cyrus do the
//! same; Dovecot sends ""). A partial fetch whose origin is past the end of an existing section is
//! the empty string, as RFC 9051 §6.4.5 requires.

use std::ops::Range;

use crate::imap::format::{self, TransferEncoding};
use crate::imap::types::{FetchAttr, Partial, Section, SectionText};
use crate::mime::{Section as MimeSection, Structure};
use crate::store::records::{flags, MessageRecord};

use super::referred::Referred;

/// Section data shorter than this is copied into the output even where it could be referred
/// to: a piece costs a reference count, an entry and a seam in the output, which a copy of a
/// few kilobytes out of the core's cache does not.
const REFER_FROM: usize = 4096;

/// Random access to a stored message's bytes (the session implements it over the store's
/// chunks; tests over a `Vec`).
pub trait MessageBytes {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Appends exactly the bytes of `range` to `out`. Callers only ask for ranges inside
    /// `0..len()`.
    fn copy(&self, range: Range<usize>, out: &mut Vec<u8>);
    /// Notes exactly the bytes of `range` in `into`, as going out at offset `at` of the output,
    /// where they can be sent from where they lie; false (and nothing noted) where they
    /// cannot, and the caller copies them.
    fn refer(&self, _range: Range<usize>, _at: usize, _into: &mut Referred) -> bool {
        false
    }
}

impl MessageBytes for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    fn copy(&self, range: Range<usize>, out: &mut Vec<u8>) {
        out.extend_from_slice(self.get(range).unwrap_or_default());
    }
}

impl MessageBytes for Vec<u8> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn copy(&self, range: Range<usize>, out: &mut Vec<u8>) {
        self.as_slice().copy(range, out);
    }
}

/// What the session has enabled; decides the form of some items.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchOptions {
    /// ENABLE IMAP4rev2: no `\Recent` (RFC 9051 removed it), UTF-8 allowed in quoted strings.
    pub imap4rev2: bool,
    /// RFC 6855 UTF8=ACCEPT enabled: UTF-8 allowed in quoted strings.
    pub utf8: bool,
    /// Append `MODSEQ (n)` to every response: CONDSTORE is enabled, or the FETCH carried
    /// CHANGEDSINCE (RFC 7162 §3.1.4.1, §3.1.4).
    pub condstore: bool,
    /// The mailbox was opened with EXAMINE: fetching a body never sets `\Seen` (RFC 9051 §6.3.3).
    pub read_only: bool,
    /// RFC 9586 UIDONLY enabled: `* uid UIDFETCH (` instead of `* seq FETCH (`.
    pub uid_only: bool,
}

/// One message as FETCH sees it.
#[derive(Debug, Clone, Copy)]
pub struct MessageMeta<'a> {
    pub seq: u32,
    pub uid: u32,
    pub record: &'a MessageRecord,
    /// `None` when not read from the store: the items need none (`needs_structure`).
    pub structure: Option<&'a Structure>,
    /// The session holds this message as `\Recent` (shown to IMAP4rev1 clients only).
    pub recent: bool,
    /// Send FLAGS even if not requested: the flags changed and the client must hear it (e.g. the
    /// session already stored this FETCH's implicit `\Seen` before rendering, RFC 9051 §6.4.5).
    pub include_flags: bool,
}

/// What the caller must do after sending the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchEffect {
    /// Store `\Seen` on this message (RFC 9051 §6.4.5). The response already shows it.
    pub set_seen: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// RFC 3516 §4.3, RFC 9051 §7.1: BINARY of a part whose Content-Transfer-Encoding the server
    /// cannot decode. The session answers `NO [UNKNOWN-CTE]`.
    #[error("unknown content-transfer-encoding {encoding:?} in part {part:?}")]
    UnknownCte { part: Vec<u32>, encoding: String },
}

/// Whether these items set `\Seen`: BODY[...] and BINARY[...] without .PEEK, RFC822 and
/// RFC822.TEXT (RFC 9051 §6.4.5, RFC 3501 §6.4.5; RFC822.HEADER is a peek).
pub fn implies_seen(attrs: &[FetchAttr]) -> bool {
    attrs.iter().any(|a| match a {
        FetchAttr::BodySection { peek, .. } | FetchAttr::Binary { peek, .. } => !peek,
        FetchAttr::Rfc822 | FetchAttr::Rfc822Text => true,
        _ => false,
    })
}

/// Whether rendering `attrs` needs the message's stored structure: a FETCH of flags, or a
/// download, reads and decodes none (`reads`).
pub fn needs_structure(attrs: &[FetchAttr]) -> bool {
    attrs.iter().any(|a| reads(a).0)
}

/// Whether rendering `attrs` reads the message's bytes.
pub fn needs_bytes(attrs: &[FetchAttr]) -> bool {
    attrs.iter().any(|a| reads(a).1)
}

/// What rendering `attr` reads besides the message's record: (its stored structure, its
/// bytes). The whole message (`BODY[]<partial>`, `RFC822`) needs no structure: its range is
/// the record's size. Every item is named, so a new one must say what it reads.
fn reads(attr: &FetchAttr) -> (bool, bool) {
    use FetchAttr::*;
    match attr {
        Uid | Flags | InternalDate | Rfc822Size | ModSeq | SaveDate | EmailId | ThreadId => (false, false),
        Envelope | Body | BodyStructure | Preview { .. } => (true, false),
        Rfc822 => (false, true),
        BodySection { section, .. } => (!section.part.is_empty() || section.text != SectionText::Full, true),
        Rfc822Header | Rfc822Text | Binary { .. } | BinarySize { .. } => (true, true),
    }
}

/// Writes `* seq FETCH (...)\r\n` for `attrs` (`* uid UIDFETCH (...)` under UIDONLY).
///
/// UID comes first when `uid_command` (RFC 9051 §6.4.9: UID FETCH always returns UID), MODSEQ
/// last when `opts.condstore`. When the items set `\Seen` on a message without it (and the
/// mailbox is writable), the response shows the flags with `\Seen` and includes FLAGS even if not
/// requested (RFC 9051 §6.4.5), and the effect tells the caller to store it.
///
/// Section data sent as it is stored may be noted in `refer` instead of copied into `out`
/// (`MessageBytes::refer`). On error nothing is written (or noted) for this message.
pub fn render(
    meta: &MessageMeta<'_>,
    attrs: &[FetchAttr],
    uid_command: bool,
    opts: &FetchOptions,
    bytes: &dyn MessageBytes,
    out: &mut Vec<u8>,
    mut refer: Option<&mut Referred>,
) -> Result<FetchEffect, FetchError> {
    let start = out.len();
    let mark = refer.as_ref().map_or(0, |r| r.mark());
    let record = meta.record;
    let set_seen = !opts.read_only && record.flags & flags::SEEN == 0 && implies_seen(attrs);
    let shown = Flags {
        bits: record.flags | if set_seen { flags::SEEN } else { 0 },
        keywords: &record.keywords,
        recent: meta.recent && !opts.imap4rev2,
    };
    out.extend_from_slice(b"* ");
    if opts.uid_only {
        // RFC 9586 §3: the UID in place of the sequence number; UID is among the items too.
        format::number(out, meta.uid);
        out.extend_from_slice(b" UIDFETCH (");
    } else {
        format::number(out, meta.seq);
        out.extend_from_slice(b" FETCH (");
    }
    let mut items = Items { out, first: true };
    if uid_command {
        items.next().extend_from_slice(b"UID ");
        format::number(items.out, meta.uid);
    }
    let (mut flags_sent, mut modseq_sent) = (false, false);
    for attr in attrs {
        match attr {
            FetchAttr::Uid if uid_command => continue,
            FetchAttr::Flags => flags_sent = true,
            FetchAttr::ModSeq => modseq_sent = true,
            _ => {}
        }
        if let Err(e) = item(&mut items, attr, meta, &shown, opts, (bytes, refer.as_deref_mut())) {
            out.truncate(start);
            if let Some(r) = refer {
                r.rewind(mark);
            }
            return Err(e);
        }
    }
    // Neither item can fail: they read only the record.
    if !flags_sent && (set_seen || meta.include_flags) {
        item(&mut items, &FetchAttr::Flags, meta, &shown, opts, (bytes, None))?;
    }
    if opts.condstore && !modseq_sent {
        item(&mut items, &FetchAttr::ModSeq, meta, &shown, opts, (bytes, None))?;
    }
    out.extend_from_slice(b")\r\n");
    Ok(FetchEffect { set_seen })
}

/// Writes the items of one response, one space between them.
struct Items<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl Items<'_> {
    fn next(&mut self) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b' ');
        }
        self.first = false;
        self.out
    }
}

/// The flags as the response shows them.
struct Flags<'a> {
    bits: u8,
    keywords: &'a [String],
    recent: bool,
}

fn item(
    items: &mut Items<'_>,
    attr: &FetchAttr,
    meta: &MessageMeta<'_>,
    shown: &Flags<'_>,
    opts: &FetchOptions,
    source: Source<'_>,
) -> Result<(), FetchError> {
    let out = items.next();
    let record = meta.record;
    match attr {
        FetchAttr::Uid => {
            out.extend_from_slice(b"UID ");
            format::number(out, meta.uid);
        }
        FetchAttr::Flags => {
            out.extend_from_slice(b"FLAGS ");
            write_flags(out, shown);
        }
        FetchAttr::InternalDate => {
            out.extend_from_slice(b"INTERNALDATE ");
            internal_date(record.internal_date, out);
        }
        FetchAttr::Rfc822Size => {
            out.extend_from_slice(b"RFC822.SIZE ");
            format::number(out, record.size);
        }
        FetchAttr::ModSeq => {
            // RFC 7162 §3.1.4.1: MODSEQ (mod-sequence-value).
            out.extend_from_slice(b"MODSEQ (");
            format::number(out, record.modseq);
            out.push(b')');
        }
        FetchAttr::SaveDate => {
            // RFC 8514 §4: NIL when the save date is not known (records from before it was kept).
            out.extend_from_slice(b"SAVEDATE ");
            if record.save_date == 0 {
                out.extend_from_slice(b"NIL");
            } else {
                format::date_time(out, record.save_date);
            }
        }
        FetchAttr::EmailId => {
            // RFC 8474 §5.1: copies of a message share its body, hence its EMAILID.
            out.extend_from_slice(b"EMAILID (");
            email_id(record.body_id, out);
            out.push(b')');
        }
        FetchAttr::ThreadId => {
            // RFC 8474 §5.2: NIL when the server does not compute threads.
            out.extend_from_slice(b"THREADID NIL");
        }
        _ => content_item(out, attr, (meta.structure, record.size), opts, source)?,
    }
    Ok(())
}

/// A message's bytes, and where section data that can be sent as it lies is noted instead of
/// copied (`None`: copied).
type Source<'a> = (&'a dyn MessageBytes, Option<&'a mut Referred>);

/// What renders from when no structure was read: no parts, so no section but the whole
/// message has a range, and every rendering is the damaged structure's stand-in.
static NO_STRUCTURE: Structure = Structure {
    size: 0,
    header_len: 0,
    body_lines: 0,
    has_dot_line: false,
    envelope: String::new(),
    body: String::new(),
    bodystructure: String::new(),
    parts: Vec::new(),
    date: None,
    subject: None,
    message_id: None,
    in_reply_to: None,
    references: Vec::new(),
    preview: String::new(),
};

/// The items that come from the structure and the message bytes; without a structure
/// (`needs_structure`) the whole message is `0..size`, the record's size.
fn content_item(
    out: &mut Vec<u8>,
    attr: &FetchAttr,
    (structure, size): (Option<&Structure>, u64),
    opts: &FetchOptions,
    (bytes, refer): Source<'_>,
) -> Result<(), FetchError> {
    let s = structure.unwrap_or(&NO_STRUCTURE);
    let section = |part: &[u32], kind: MimeSection| match structure {
        Some(s) => s.section(part, kind),
        None => (part.is_empty() && kind == MimeSection::Full).then_some(0..size as usize),
    };
    match attr {
        FetchAttr::Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            rendered(out, &s.envelope, b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
        }
        FetchAttr::Body => {
            out.extend_from_slice(b"BODY ");
            rendered(out, &s.body, b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
        }
        FetchAttr::BodyStructure => {
            out.extend_from_slice(b"BODYSTRUCTURE ");
            rendered(out, &s.bodystructure, b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)");
        }
        FetchAttr::BodySection {
            section: spec, partial, ..
        } => {
            let range = section(&spec.part, section_kind(&spec.text).0);
            body_section(out, range, (bytes, refer), spec, *partial);
        }
        FetchAttr::Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            section_data(out, (bytes, refer), section(&[], MimeSection::Full), None);
        }
        FetchAttr::Rfc822Header => {
            out.extend_from_slice(b"RFC822.HEADER ");
            section_data(out, (bytes, refer), section(&[], MimeSection::Header), None);
        }
        FetchAttr::Rfc822Text => {
            out.extend_from_slice(b"RFC822.TEXT ");
            section_data(out, (bytes, refer), section(&[], MimeSection::Text), None);
        }
        FetchAttr::Binary { part, partial, .. } => binary(out, s, (bytes, refer), part, *partial)?,
        FetchAttr::BinarySize { part } => binary_size(out, s, bytes, part)?,
        FetchAttr::Preview { .. } => {
            // RFC 8970 §3: computed at delivery, so LAZY never has to wait; "" when the message
            // has no text to preview.
            out.extend_from_slice(b"PREVIEW ");
            format::string(out, s.preview.as_bytes(), opts.utf8 || opts.imap4rev2);
        }
        // The record's items are written by `item`.
        FetchAttr::Uid
        | FetchAttr::Flags
        | FetchAttr::InternalDate
        | FetchAttr::Rfc822Size
        | FetchAttr::ModSeq
        | FetchAttr::SaveDate
        | FetchAttr::EmailId
        | FetchAttr::ThreadId => {}
    }
    Ok(())
}

/// A rendering stored at delivery; a damaged (empty) one is replaced by a valid stand-in so the
/// response still parses.
fn rendered(out: &mut Vec<u8>, text: &str, fallback: &[u8]) {
    out.extend_from_slice(if text.is_empty() { fallback } else { text.as_bytes() });
}

/// RFC 8474 §5.1 objectid for the stored body: "M" and the body id in hex.
pub fn email_id(body_id: u64, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'M');
    for shift in (0..16).rev() {
        out.push(HEX[(body_id >> (shift * 4)) as usize & 0xf]);
    }
}

/// Appends an RFC 9051 §9 `date-time` (quotes included) in UTC: `"17-Jul-1996 09:23:25 +0000"`.
pub fn internal_date(unix: i64, out: &mut Vec<u8>) {
    format::date_time(out, unix);
}

/// Appends the flag list `(\Seen \Answered ... keywords)` (RFC 9051 §2.3.2). `recent` adds
/// `\Recent`, which only IMAP4rev1 sessions may see.
pub fn flags_list(record: &MessageRecord, recent: bool, out: &mut Vec<u8>) {
    let shown = Flags {
        bits: record.flags,
        keywords: &record.keywords,
        recent,
    };
    write_flags(out, &shown);
}

fn write_flags(out: &mut Vec<u8>, f: &Flags<'_>) {
    const SYSTEM: [(u8, &[u8]); 5] = [
        (flags::SEEN, b"\\Seen"),
        (flags::ANSWERED, b"\\Answered"),
        (flags::FLAGGED, b"\\Flagged"),
        (flags::DELETED, b"\\Deleted"),
        (flags::DRAFT, b"\\Draft"),
    ];
    out.push(b'(');
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b' ');
        }
    };
    for (bit, name) in SYSTEM {
        if f.bits & bit != 0 {
            sep(out);
            out.extend_from_slice(name);
        }
    }
    if f.recent {
        sep(out);
        out.extend_from_slice(b"\\Recent");
    }
    for k in f.keywords {
        // RFC 9051 §9 flag-keyword is an atom; anything else in a damaged record would break
        // the response's syntax, so it is not shown.
        let atom = !k.is_empty() && k.bytes().all(|b| b > b' ' && b < 0x7f && !b"(){%*\"\\]".contains(&b));
        if atom {
            sep(out);
            out.extend_from_slice(k.as_bytes());
        }
    }
    out.push(b')');
}

/// `BODY[section]<origin> data` (RFC 9051 §7.5.2: the response names the section as requested,
/// without .PEEK, and gives only the origin of a partial fetch); `range` is where the section
/// lies in the message, `None` when it has no such section.
fn body_section(
    out: &mut Vec<u8>,
    range: Option<Range<usize>>,
    (bytes, refer): Source<'_>,
    section: &Section,
    partial: Option<Partial>,
) {
    out.extend_from_slice(b"BODY[");
    section_spec(out, section);
    out.push(b']');
    origin(out, partial);
    out.push(b' ');
    let (_, filter) = section_kind(&section.text);
    match (range, filter) {
        (Some(r), Some((names, keep))) => {
            let r = clamp(r, bytes.len());
            transformed(out, bytes, r, partial, false, |buf| {
                format::filter_header(buf, names, keep)
            });
        }
        (range, _) => section_data(out, (bytes, refer), range, partial),
    }
}

/// The stored range a section text selects, and the HEADER.FIELDS filter (names, keep) on it.
fn section_kind(text: &SectionText) -> (MimeSection, Option<(&Vec<String>, bool)>) {
    match text {
        SectionText::Full => (MimeSection::Full, None),
        SectionText::Header => (MimeSection::Header, None),
        SectionText::HeaderFields(names) => (MimeSection::Header, Some((names, true))),
        SectionText::HeaderFieldsNot(names) => (MimeSection::Header, Some((names, false))),
        SectionText::Text => (MimeSection::Text, None),
        SectionText::Mime => (MimeSection::Mime, None),
    }
}

/// The octets `BODY.PEEK[section]<partial>` would send, appended to `out` without the literal
/// around them; `false` (and nothing appended) when the section does not exist. CATENATE copies
/// URL parts with it (RFC 4469 §5), so they are exactly what FETCH shows.
pub fn section_bytes(
    s: &Structure,
    bytes: &dyn MessageBytes,
    section: &Section,
    partial: Option<Partial>,
    out: &mut Vec<u8>,
) -> bool {
    let (kind, filter) = section_kind(&section.text);
    let Some(range) = s.section(&section.part, kind) else {
        return false;
    };
    let range = clamp(range, bytes.len());
    let base = out.len();
    match filter {
        Some((names, keep)) => {
            copy_exact(bytes, range, out);
            let len = format::filter_header(&mut out[base..], names, keep).min(out.len() - base);
            keep_window(out, base, len, partial);
        }
        None => {
            let w = window(range.len(), partial);
            copy_exact(bytes, range.start + w.start..range.start + w.end, out);
        }
    }
    true
}

/// The section-spec as the client wrote it, keywords uppercased (RFC 9051 §9 section-spec).
fn section_spec(out: &mut Vec<u8>, section: &Section) {
    part_path(out, &section.part);
    if !section.part.is_empty() && section.text != SectionText::Full {
        out.push(b'.');
    }
    let names = match &section.text {
        SectionText::Full => return,
        SectionText::Header => return out.extend_from_slice(b"HEADER"),
        SectionText::Text => return out.extend_from_slice(b"TEXT"),
        SectionText::Mime => return out.extend_from_slice(b"MIME"),
        SectionText::HeaderFields(names) => {
            out.extend_from_slice(b"HEADER.FIELDS (");
            names
        }
        SectionText::HeaderFieldsNot(names) => {
            out.extend_from_slice(b"HEADER.FIELDS.NOT (");
            names
        }
    };
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        format::astring(out, n.as_bytes());
    }
    out.push(b')');
}

fn part_path(out: &mut Vec<u8>, part: &[u32]) {
    for (i, n) in part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        format::number(out, *n);
    }
}

fn origin(out: &mut Vec<u8>, partial: Option<Partial>) {
    if let Some(p) = partial {
        out.push(b'<');
        format::number(out, p.origin);
        out.push(b'>');
    }
}

fn clamp(r: Range<usize>, len: usize) -> Range<usize> {
    let end = r.end.min(len);
    r.start.min(end)..end
}

/// The part of `0..len` a partial fetch selects: RFC 9051 §6.4.5, at most `count` octets from
/// `origin`, empty when the origin is past the end.
fn window(len: usize, partial: Option<Partial>) -> Range<usize> {
    match partial {
        None => 0..len,
        Some(p) => {
            let start = (p.origin as usize).min(len);
            start..start + (p.count as usize).min(len - start)
        }
    }
}

/// Section data straight from the message: NIL when the section does not exist, "" when it
/// (or the part a partial fetch selects) is empty, else a literal, whose bytes are referred to
/// where they lie when the source can and they are not few, else copied.
fn section_data(out: &mut Vec<u8>, (bytes, refer): Source<'_>, range: Option<Range<usize>>, partial: Option<Partial>) {
    let Some(range) = range else {
        out.extend_from_slice(b"NIL");
        return;
    };
    let range = clamp(range, bytes.len());
    let w = window(range.len(), partial);
    if w.is_empty() {
        out.extend_from_slice(b"\"\"");
        return;
    }
    format::literal_prefix(out, w.len(), false);
    let data = range.start + w.start..range.start + w.end;
    let referred = match refer {
        Some(into) if data.len() >= REFER_FROM => bytes.refer(data.clone(), out.len(), into),
        _ => false,
    };
    if !referred {
        copy_exact(bytes, data, out);
    }
}

/// Copies `range`, guaranteeing exactly `range.len()` bytes land in `out` even if a faulty
/// `MessageBytes` delivers fewer or more: a literal's length must match what follows it.
fn copy_exact(bytes: &dyn MessageBytes, range: Range<usize>, out: &mut Vec<u8>) {
    let want = out.len() + range.len();
    bytes.copy(range, out);
    out.resize(want, b' ');
}

/// Section data that must be rewritten before it is sent (HEADER.FIELDS filtering, BINARY
/// decoding): copied into `out`, rewritten in place, cut to the partial window, then given its
/// literal prefix by rotating it in front. `literal8` permits `~{n}` when the result holds NUL.
fn transformed(
    out: &mut Vec<u8>,
    bytes: &dyn MessageBytes,
    range: Range<usize>,
    partial: Option<Partial>,
    literal8: bool,
    rewrite: impl FnOnce(&mut [u8]) -> usize,
) {
    let base = out.len();
    copy_exact(bytes, range, out);
    let len = rewrite(&mut out[base..]).min(out.len() - base);
    literal_from(out, base, len, partial, literal8);
}

/// Turns the `len` bytes written from `base` into the partial window of them as an IMAP
/// string (`""` when empty, a literal — literal8 if allowed and needed — otherwise).
fn literal_from(out: &mut Vec<u8>, base: usize, len: usize, partial: Option<Partial>, literal8: bool) {
    let w = keep_window(out, base, len, partial);
    if w.is_empty() {
        out.extend_from_slice(b"\"\"");
        return;
    }
    let nul = literal8 && memchr::memchr(0, &out[base..]).is_some();
    format::literal_prefix(out, w.len(), nul);
    let prefix = out.len() - base - w.len();
    out[base..].rotate_right(prefix);
}

/// Keeps, of the `len` bytes written from `base`, only the partial window (moved down to
/// `base`); returns the window.
fn keep_window(out: &mut Vec<u8>, base: usize, len: usize, partial: Option<Partial>) -> Range<usize> {
    let w = window(len, partial);
    out.copy_within(base + w.start..base + w.end, base);
    out.truncate(base + w.len());
    w
}

/// Whether a part is a multipart or message entity (not a leaf).
fn is_container(p: &crate::mime::Part) -> bool {
    p.is_message || p.content_type.starts_with("multipart/")
}

/// Whether `part` is the whole message or a multipart or message entity: RFC 2045 §6.4 allows
/// only identity encodings on those, and BINARY decodes the leaves inside (`decode_composite`).
fn is_composite(s: &Structure, part: &[u32]) -> bool {
    part.is_empty() || s.part(part).is_some_and(is_container)
}

/// BINARY of a composite entity (RFC 3516 §4.2): each leaf inside that has a transfer
/// encoding is decoded and its Content-Transfer-Encoding field says `binary`, as Dovecot does.
/// So a message APPENDed as binary, which is stored base64 (`mime::ingest_binary`), comes back
/// byte for byte. A leaf in an encoding nobody knows stays as stored. Returns the length
/// written to `out`.
fn decode_composite(out: &mut Vec<u8>, s: &Structure, bytes: &dyn MessageBytes, range: Range<usize>) -> usize {
    let base = out.len();
    let mut at = range.start;
    for p in &s.parts {
        let leaf = !p.path.is_empty() && !is_container(p);
        let encoding = TransferEncoding::from_name(&p.encoding);
        let (start, end) = (p.header_start as usize, p.body_end as usize);
        if !leaf
            || start < at
            || end > range.end
            || !matches!(encoding, TransferEncoding::Base64 | TransferEncoding::QuotedPrintable)
        {
            continue;
        }
        copy_exact(bytes, at..start, out);
        let mut header = Vec::new();
        copy_exact(bytes, start..p.header_end as usize, &mut header);
        out.extend_from_slice(&crate::mime::with_encoding(&header, b"binary"));
        let body = out.len();
        copy_exact(bytes, p.body_start as usize..end, out);
        let decoded = encoding.decode_in_place(&mut out[body..]);
        out.truncate(body + decoded);
        at = end;
    }
    copy_exact(bytes, at..range.end, out);
    out.len() - base
}

/// The transfer encoding BINARY must undo for a leaf `part`, RFC 3516 §4.2.
fn binary_encoding(s: &Structure, part: &[u32]) -> Option<Result<TransferEncoding, FetchError>> {
    let p = s.part(part)?;
    if is_composite(s, part) {
        return Some(Ok(TransferEncoding::Identity));
    }
    Some(match TransferEncoding::from_name(&p.encoding) {
        TransferEncoding::Unknown => Err(FetchError::UnknownCte {
            part: part.to_vec(),
            encoding: p.encoding.clone(),
        }),
        enc => Ok(enc),
    })
}

/// `BINARY[part]<origin> data`: the part with its transfer encoding removed, partial applied to
/// the decoded data; literal8 when that data contains NUL (RFC 3516 §4.2, RFC 9051 §7.5.2, whose
/// text keeps the `<origin>` that erratum 7246 notes the ABNF lacks; clients accept both).
fn binary(
    out: &mut Vec<u8>,
    s: &Structure,
    (bytes, refer): Source<'_>,
    part: &[u32],
    partial: Option<Partial>,
) -> Result<(), FetchError> {
    let encoding = binary_encoding(s, part).transpose()?;
    out.extend_from_slice(b"BINARY[");
    part_path(out, part);
    out.push(b']');
    origin(out, partial);
    out.push(b' ');
    let range = s.section(part, MimeSection::Full);
    match (encoding, range) {
        (Some(TransferEncoding::Identity), Some(r)) if is_composite(s, part) => {
            let base = out.len();
            let len = decode_composite(out, s, bytes, clamp(r, bytes.len()));
            literal_from(out, base, len, partial, true);
        }
        (Some(TransferEncoding::Identity), range) | (None, range) => {
            // Stored messages never contain NUL (`mime::ingest_binary` encodes it), so
            // identity data never needs literal8.
            section_data(out, (bytes, refer), range, partial);
        }
        (Some(enc), Some(r)) => {
            let r = clamp(r, bytes.len());
            transformed(out, bytes, r, partial, true, |buf| enc.decode_in_place(buf));
        }
        (Some(_), None) => out.extend_from_slice(b"NIL"),
    }
    Ok(())
}

/// `BINARY.SIZE[part] n`: octets of the decoded part (RFC 3516 §4.2). The grammar has no NIL, so
/// a part that does not exist has size 0.
fn binary_size(out: &mut Vec<u8>, s: &Structure, bytes: &dyn MessageBytes, part: &[u32]) -> Result<(), FetchError> {
    let encoding = binary_encoding(s, part).transpose()?;
    let range = s.section(part, MimeSection::Full).map(|r| clamp(r, bytes.len()));
    let size = match (encoding, range) {
        (Some(TransferEncoding::Identity), Some(r)) if is_composite(s, part) => {
            let base = out.len();
            let n = decode_composite(out, s, bytes, r);
            out.truncate(base);
            n
        }
        (Some(TransferEncoding::Identity), Some(r)) => r.len(),
        (Some(enc), Some(r)) => {
            // Decoded in the output buffer's spare room, then dropped: no separate allocation.
            let base = out.len();
            copy_exact(bytes, r, out);
            let n = enc.decode_in_place(&mut out[base..]);
            out.truncate(base);
            n
        }
        _ => 0,
    };
    out.extend_from_slice(b"BINARY.SIZE[");
    part_path(out, part);
    out.extend_from_slice(b"] ");
    format::number(out, size);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3501 §6.4.5-style layout: a folded top-level header, a quoted-printable text part, a
    /// base64 binary part, an encapsulated multipart message, a part in an encoding nobody
    /// knows, and a base64 text part.
    const MSG: &str = "From: a@example.com\r\n\
Subject: fixture\r\n\
X-Folded: one\r\n  two\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Gr=C3=BC=C3=9Fe=\r\n Welt\r\n\
--outer\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAECAw==\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: inner\r\n\
X-Inner: a\r\n b\r\n\
Content-Type: multipart/alternative; boundary=\"alt\"\r\n\
\r\n\
--alt\r\n\
Content-Type: text/plain\r\n\
\r\n\
inner plain\r\n\
--alt\r\n\
Content-Type: text/html\r\n\
\r\n\
<b>inner</b>\r\n\
--alt--\r\n\
--outer\r\n\
Content-Type: text/plain\r\n\
Content-Transfer-Encoding: x-uuencode\r\n\
\r\n\
begin 644 x\r\n\
--outer\r\n\
Content-Type: text/plain\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
SGVsbG8s\r\nIHdvcmxk\r\n\
--outer--\r\n";

    const HEADER: &str = "From: a@example.com\r\nSubject: fixture\r\nX-Folded: one\r\n  two\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n";

    fn record(flag_bits: u8) -> MessageRecord {
        MessageRecord {
            flags: flag_bits,
            internal_date: 837_595_405,
            save_date: 1_700_000_000,
            size: MSG.len() as u64,
            modseq: 42,
            body_id: 0xabc,
            keywords: vec!["$Forwarded".into(), "work".into()],
        }
    }

    fn structure() -> Structure {
        crate::mime::ingest(MSG.as_bytes().to_vec())
            .expect("fixture is valid")
            .1
    }

    struct Run {
        record: MessageRecord,
        uid_command: bool,
        opts: FetchOptions,
        recent: bool,
        include_flags: bool,
    }

    impl Default for Run {
        fn default() -> Self {
            Run {
                record: record(flags::ANSWERED | flags::FLAGGED),
                uid_command: false,
                opts: FetchOptions::default(),
                recent: false,
                include_flags: false,
            }
        }
    }

    impl Run {
        fn fetch(&self, attrs: &[FetchAttr]) -> (String, Result<FetchEffect, FetchError>) {
            let s = structure();
            let meta = MessageMeta {
                seq: 7,
                uid: 70,
                record: &self.record,
                structure: Some(&s),
                recent: self.recent,
                include_flags: self.include_flags,
            };
            let bytes = MSG.as_bytes().to_vec();
            let mut out = b"prior ".to_vec();
            let r = render(&meta, attrs, self.uid_command, &self.opts, &bytes, &mut out, None);
            assert!(out.starts_with(b"prior "));
            (String::from_utf8_lossy(&out[6..]).into_owned(), r)
        }

        /// The items of a one-attribute response, without `* 7 FETCH (` and `)\r\n`.
        fn item(&self, attr: FetchAttr) -> String {
            let (out, r) = self.fetch(&[attr]);
            r.expect("no error");
            out.strip_prefix("* 7 FETCH (")
                .and_then(|o| o.strip_suffix(")\r\n"))
                .unwrap_or_else(|| panic!("framing: {out:?}"))
                .to_string()
        }
    }

    fn peek(part: &[u32], text: SectionText, partial: Option<(u32, u32)>) -> FetchAttr {
        FetchAttr::BodySection {
            peek: true,
            section: Section {
                part: part.to_vec(),
                text,
            },
            partial: partial.map(|(origin, count)| Partial { origin, count }),
        }
    }

    fn binary(part: &[u32], partial: Option<(u32, u32)>) -> FetchAttr {
        FetchAttr::Binary {
            peek: true,
            part: part.to_vec(),
            partial: partial.map(|(origin, count)| Partial { origin, count }),
        }
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn lit(data: &str) -> String {
        format!("{{{}}}\r\n{data}", data.len())
    }

    fn slice(path: &[u32], sec: MimeSection) -> &'static str {
        &MSG[structure().section(path, sec).expect("section exists")]
    }

    #[test]
    fn simple_items() {
        let s = structure();
        // \Seen already set: RFC822 and RFC822.TEXT would otherwise add FLAGS.
        let run = Run {
            record: record(flags::SEEN | flags::ANSWERED | flags::FLAGGED),
            ..Run::default()
        };
        let cases: Vec<(FetchAttr, String)> = vec![
            (
                FetchAttr::Flags,
                "FLAGS (\\Seen \\Answered \\Flagged $Forwarded work)".into(),
            ),
            (
                FetchAttr::InternalDate,
                "INTERNALDATE \"17-Jul-1996 09:23:25 +0000\"".into(),
            ),
            (FetchAttr::Rfc822Size, format!("RFC822.SIZE {}", MSG.len())),
            (FetchAttr::Envelope, format!("ENVELOPE {}", s.envelope)),
            (FetchAttr::Body, format!("BODY {}", s.body)),
            (FetchAttr::BodyStructure, format!("BODYSTRUCTURE {}", s.bodystructure)),
            (FetchAttr::Uid, "UID 70".into()),
            (FetchAttr::ModSeq, "MODSEQ (42)".into()),
            (FetchAttr::SaveDate, "SAVEDATE \"14-Nov-2023 22:13:20 +0000\"".into()),
            (FetchAttr::EmailId, "EMAILID (M0000000000000abc)".into()),
            (FetchAttr::ThreadId, "THREADID NIL".into()),
            (
                FetchAttr::Preview { lazy: true },
                format!("PREVIEW {}", lit("Grüße Welt")),
            ),
            (FetchAttr::Rfc822, format!("RFC822 {}", lit(MSG))),
            (FetchAttr::Rfc822Header, format!("RFC822.HEADER {}", lit(HEADER))),
            (
                FetchAttr::Rfc822Text,
                format!("RFC822.TEXT {}", lit(&MSG[HEADER.len()..])),
            ),
        ];
        for (attr, want) in cases {
            assert_eq!(run.item(attr.clone()), want, "{attr:?}");
        }
        let rev2 = Run {
            opts: FetchOptions {
                imap4rev2: true,
                ..FetchOptions::default()
            },
            ..Run::default()
        };
        assert_eq!(rev2.item(FetchAttr::Preview { lazy: false }), "PREVIEW \"Grüße Welt\"");
        let mut unknown_save = Run::default();
        unknown_save.record.save_date = 0;
        assert_eq!(unknown_save.item(FetchAttr::SaveDate), "SAVEDATE NIL");
    }

    #[test]
    fn body_sections() {
        let run = Run::default();
        let cases: Vec<(FetchAttr, String)> = vec![
            (peek(&[], SectionText::Full, None), format!("BODY[] {}", lit(MSG))),
            (peek(&[], SectionText::Header, None), format!("BODY[HEADER] {}", lit(HEADER))),
            (
                peek(&[], SectionText::Text, None),
                format!("BODY[TEXT] {}", lit(slice(&[], MimeSection::Text))),
            ),
            (
                peek(&[1], SectionText::Full, None),
                format!("BODY[1] {}", lit("Gr=C3=BC=C3=9Fe=\r\n Welt")),
            ),
            (
                peek(&[1], SectionText::Mime, None),
                format!(
                    "BODY[1.MIME] {}",
                    lit("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
                ),
            ),
            (
                peek(&[3], SectionText::Header, None),
                format!("BODY[3.HEADER] {}", lit(slice(&[3], MimeSection::Header))),
            ),
            (
                peek(&[3], SectionText::Text, None),
                format!("BODY[3.TEXT] {}", lit(slice(&[3], MimeSection::Text))),
            ),
            (
                peek(&[3], SectionText::Mime, None),
                format!("BODY[3.MIME] {}", lit("Content-Type: message/rfc822\r\n\r\n")),
            ),
            (peek(&[3, 1], SectionText::Full, None), format!("BODY[3.1] {}", lit("inner plain"))),
            (
                peek(&[3, 2], SectionText::Mime, None),
                format!("BODY[3.2.MIME] {}", lit("Content-Type: text/html\r\n\r\n")),
            ),
            (peek(&[3, 2], SectionText::Full, None), format!("BODY[3.2] {}", lit("<b>inner</b>"))),
            // Sections that do not exist are NIL.
            (peek(&[6], SectionText::Full, None), "BODY[6] NIL".into()),
            (peek(&[3, 3], SectionText::Full, None), "BODY[3.3] NIL".into()),
            (peek(&[1], SectionText::Header, None), "BODY[1.HEADER] NIL".into()),
            (peek(&[1], SectionText::Text, None), "BODY[1.TEXT] NIL".into()),
            (peek(&[], SectionText::Mime, None), "BODY[MIME] NIL".into()),
            (
                peek(&[1], SectionText::HeaderFields(names(&["Subject"])), None),
                "BODY[1.HEADER.FIELDS (Subject)] NIL".into(),
            ),
            (peek(&[0], SectionText::Full, None), "BODY[0] NIL".into()),
        ];
        for (attr, want) in cases {
            assert_eq!(run.item(attr.clone()), want, "{attr:?}");
        }
    }

    #[test]
    fn header_fields() {
        let run = Run::default();
        let cases: Vec<(FetchAttr, String)> = vec![
            (
                peek(&[], SectionText::HeaderFields(names(&["x-folded", "SUBJECT"])), None),
                format!(
                    "BODY[HEADER.FIELDS (x-folded SUBJECT)] {}",
                    lit("Subject: fixture\r\nX-Folded: one\r\n  two\r\n\r\n")
                ),
            ),
            (
                peek(
                    &[],
                    SectionText::HeaderFieldsNot(names(&["Content-Type", "x-folded"])),
                    None,
                ),
                format!(
                    "BODY[HEADER.FIELDS.NOT (Content-Type x-folded)] {}",
                    lit("From: a@example.com\r\nSubject: fixture\r\n\r\n")
                ),
            ),
            (
                peek(&[], SectionText::HeaderFields(names(&["Nothing"])), None),
                format!("BODY[HEADER.FIELDS (Nothing)] {}", lit("\r\n")),
            ),
            (
                peek(&[3], SectionText::HeaderFields(names(&["X-Inner"])), None),
                format!("BODY[3.HEADER.FIELDS (X-Inner)] {}", lit("X-Inner: a\r\n b\r\n\r\n")),
            ),
            (
                peek(&[], SectionText::HeaderFields(names(&["Subject"])), Some((2, 5))),
                format!("BODY[HEADER.FIELDS (Subject)]<2> {}", lit("bject")),
            ),
            (
                peek(&[], SectionText::HeaderFields(names(&["Subject"])), Some((100, 5))),
                "BODY[HEADER.FIELDS (Subject)]<100> \"\"".into(),
            ),
            (
                peek(&[], SectionText::HeaderFields(names(&["A]B", "two words"])), None),
                format!("BODY[HEADER.FIELDS (\"A]B\" \"two words\")] {}", lit("\r\n")),
            ),
        ];
        for (attr, want) in cases {
            assert_eq!(run.item(attr.clone()), want, "{attr:?}");
        }
    }

    /// CATENATE's URL parts (RFC 4469 §5) are exactly the data BODY.PEEK[section]<partial>
    /// sends, and nothing at all where FETCH says NIL.
    #[test]
    fn section_bytes_are_what_fetch_sends() {
        let run = Run::default();
        let s = structure();
        let fields = |n: &[&str]| SectionText::HeaderFields(names(n));
        type Case = (Vec<u32>, SectionText, Option<(u32, u32)>);
        let cases: Vec<Case> = vec![
            (vec![], SectionText::Full, None),
            (vec![], SectionText::Header, None),
            (vec![], SectionText::Text, Some((3, 10))),
            (vec![1], SectionText::Full, None),
            (vec![1], SectionText::Mime, None),
            (vec![1], SectionText::Full, Some((1000, 10))),
            (vec![3], fields(&["X-Inner"]), None),
            (vec![], fields(&["Subject"]), Some((2, 5))),
            (vec![], SectionText::HeaderFieldsNot(names(&["Subject"])), None),
            (vec![3], SectionText::Text, None),
            (vec![9], SectionText::Full, None),
            (vec![1], SectionText::Header, None),
            (vec![], SectionText::Mime, None),
        ];
        for (part, text, partial) in cases {
            let section = Section {
                part: part.clone(),
                text: text.clone(),
            };
            let item = run.item(peek(&part, text, partial));
            let (_, data) = item.split_once(']').expect("a section item");
            let data = data
                .strip_prefix('<')
                .map_or(data, |d| d.split_once('>').expect("origin").1);
            let data = data.strip_prefix(' ').expect("SP before the data");
            let expected = match data {
                "NIL" => None,
                "\"\"" => Some(String::new()),
                lit => Some(lit.split_once("}\r\n").expect("a literal").1.to_owned()),
            };
            let partial = partial.map(|(origin, count)| Partial { origin, count });
            let mut out = b"before".to_vec();
            let exists = section_bytes(&s, &MSG.as_bytes().to_vec(), &section, partial, &mut out);
            let got = exists.then(|| String::from_utf8_lossy(&out[6..]).into_owned());
            assert!(exists || out == b"before", "{section:?}");
            assert_eq!(got, expected, "{section:?} {partial:?}");
        }
    }

    #[test]
    fn partial_fetches() {
        let run = Run::default();
        let text = "Gr=C3=BC=C3=9Fe=\r\n Welt";
        let n = text.len() as u32;
        let cases: Vec<(Option<(u32, u32)>, String)> = vec![
            (Some((0, 2)), format!("BODY[1]<0> {}", lit("Gr"))),
            (Some((2, 3)), format!("BODY[1]<2> {}", lit("=C3"))),
            (Some((n - 4, 100)), format!("BODY[1]<{}> {}", n - 4, lit("Welt"))),
            (Some((n, 10)), format!("BODY[1]<{n}> \"\"")),
            (Some((n + 1, 10)), format!("BODY[1]<{}> \"\"", n + 1)),
            (Some((u32::MAX, u32::MAX)), format!("BODY[1]<{}> \"\"", u32::MAX)),
            (Some((0, u32::MAX)), format!("BODY[1]<0> {}", lit(text))),
        ];
        for (partial, want) in cases {
            assert_eq!(run.item(peek(&[1], SectionText::Full, partial)), want, "{partial:?}");
        }
    }

    #[test]
    fn binary_items() {
        let run = Run::default();
        let cases: Vec<(FetchAttr, String)> = vec![
            (binary(&[1], None), format!("BINARY[1] {}", lit("Grüße Welt"))),
            (binary(&[2], None), "BINARY[2] ~{4}\r\n\0\x01\x02\x03".into()),
            // literal8 only when the data sent holds NUL (RFC 3516 §4.2); CHAR8 allows the rest.
            (binary(&[2], Some((1, 2))), "BINARY[2]<1> {2}\r\n\x01\x02".into()),
            (binary(&[2], Some((0, 1))), "BINARY[2]<0> ~{1}\r\n\0".into()),
            (binary(&[2], Some((4, 9))), "BINARY[2]<4> \"\"".into()),
            (binary(&[5], None), format!("BINARY[5] {}", lit("Hello, world"))),
            (binary(&[5], Some((7, 100))), format!("BINARY[5]<7> {}", lit("world"))),
            (
                binary(&[3], None),
                format!("BINARY[3] {}", lit(slice(&[3], MimeSection::Full))),
            ),
            (binary(&[3, 1], None), format!("BINARY[3.1] {}", lit("inner plain"))),
            // The whole message: every encoded leaf decoded and labelled binary.
            (binary(&[], None), {
                let decoded = MSG
                    .replace(
                        "quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe=\r\n Welt",
                        "binary\r\n\r\nGrüße Welt",
                    )
                    .replace("base64\r\n\r\nAAECAw==", "binary\r\n\r\n\0\x01\x02\x03")
                    .replace("base64\r\n\r\nSGVsbG8s\r\nIHdvcmxk", "binary\r\n\r\nHello, world");
                format!("BINARY[] ~{{{}}}\r\n{decoded}", decoded.len())
            }),
            (binary(&[9], None), "BINARY[9] NIL".into()),
            (FetchAttr::BinarySize { part: vec![1] }, "BINARY.SIZE[1] 12".into()),
            (FetchAttr::BinarySize { part: vec![2] }, "BINARY.SIZE[2] 4".into()),
            (FetchAttr::BinarySize { part: vec![5] }, "BINARY.SIZE[5] 12".into()),
            (FetchAttr::BinarySize { part: vec![3, 2] }, "BINARY.SIZE[3.2] 12".into()),
            (FetchAttr::BinarySize { part: vec![9] }, "BINARY.SIZE[9] 0".into()),
        ];
        for (attr, want) in cases {
            assert_eq!(run.item(attr.clone()), want, "{attr:?}");
        }
        // RFC 3516 §4.3: UNKNOWN-CTE, and nothing written for the message.
        for attr in [binary(&[4], None), FetchAttr::BinarySize { part: vec![4] }] {
            let (out, r) = run.fetch(&[FetchAttr::Uid, attr]);
            assert_eq!(
                r,
                Err(FetchError::UnknownCte {
                    part: vec![4],
                    encoding: "x-uuencode".into()
                })
            );
            assert_eq!(out, "");
        }
    }

    #[test]
    fn seen_rules() {
        let unseen = Run::default();
        let seen = Run {
            record: record(flags::SEEN),
            ..Run::default()
        };
        let examine = Run {
            opts: FetchOptions {
                read_only: true,
                ..FetchOptions::default()
            },
            ..Run::default()
        };
        let body = |peek: bool| FetchAttr::BodySection {
            peek,
            section: Section {
                part: vec![1],
                text: SectionText::Full,
            },
            partial: None,
        };
        let bin = FetchAttr::Binary {
            peek: false,
            part: vec![1],
            partial: None,
        };
        let cases: Vec<(&Run, FetchAttr, bool)> = vec![
            (&unseen, body(false), true),
            (&unseen, body(true), false),
            (&unseen, FetchAttr::Rfc822, true),
            (&unseen, FetchAttr::Rfc822Text, true),
            (&unseen, FetchAttr::Rfc822Header, false),
            (&unseen, bin.clone(), true),
            (&unseen, FetchAttr::BinarySize { part: vec![1] }, false),
            (&unseen, FetchAttr::Body, false),
            (&seen, body(false), false),
            (&examine, body(false), false),
        ];
        for (run, attr, want) in cases {
            let (out, r) = run.fetch(std::slice::from_ref(&attr));
            assert_eq!(r, Ok(FetchEffect { set_seen: want }), "{attr:?}");
            // RFC 9051 §6.4.5: the changed flags go with the response.
            assert_eq!(
                out.ends_with(" FLAGS (\\Seen \\Answered \\Flagged $Forwarded work))\r\n"),
                want,
                "{attr:?}: {out}"
            );
        }
        // Requested FLAGS show \Seen once, not twice.
        let (out, _) = unseen.fetch(&[FetchAttr::Flags, body(false)]);
        assert!(out.starts_with("* 7 FETCH (FLAGS (\\Seen \\Answered \\Flagged $Forwarded work) BODY[1] {"));
        assert_eq!(out.matches("FLAGS").count(), 1);
        let told = Run {
            include_flags: true,
            ..Run::default()
        };
        assert_eq!(
            told.fetch(&[FetchAttr::Uid]).0,
            "* 7 FETCH (UID 70 FLAGS (\\Answered \\Flagged $Forwarded work))\r\n"
        );
    }

    #[test]
    fn uid_modseq_recent() {
        let run = Run {
            uid_command: true,
            recent: true,
            opts: FetchOptions {
                condstore: true,
                ..FetchOptions::default()
            },
            ..Run::default()
        };
        assert_eq!(
            run.fetch(&[FetchAttr::Flags, FetchAttr::Uid]).0,
            "* 7 FETCH (UID 70 FLAGS (\\Answered \\Flagged \\Recent $Forwarded work) MODSEQ (42))\r\n"
        );
        assert_eq!(
            run.fetch(&[FetchAttr::ModSeq, FetchAttr::Rfc822Size]).0,
            format!("* 7 FETCH (UID 70 MODSEQ (42) RFC822.SIZE {})\r\n", MSG.len())
        );
        let rev2 = Run {
            recent: true,
            opts: FetchOptions {
                imap4rev2: true,
                ..FetchOptions::default()
            },
            ..Run::default()
        };
        assert_eq!(
            rev2.fetch(&[FetchAttr::Flags]).0,
            "* 7 FETCH (FLAGS (\\Answered \\Flagged $Forwarded work))\r\n"
        );
        assert_eq!(Run::default().fetch(&[]).0, "* 7 FETCH ()\r\n");
    }

    #[test]
    fn flag_lists() {
        let mut out = Vec::new();
        let mut r = record(flags::SEEN | flags::ANSWERED | flags::FLAGGED | flags::DELETED | flags::DRAFT);
        r.keywords = vec!["ok".into(), "bad word".into(), "".into(), "(x".into()];
        flags_list(&r, true, &mut out);
        assert_eq!(out, b"(\\Seen \\Answered \\Flagged \\Deleted \\Draft \\Recent ok)");
        out.clear();
        r.flags = 0;
        r.keywords.clear();
        flags_list(&r, false, &mut out);
        assert_eq!(out, b"()");
        out.clear();
        internal_date(0, &mut out);
        assert_eq!(out, b"\"01-Jan-1970 00:00:00 +0000\"");
    }

    /// A byte source that lies about what it copies.
    struct Short(Vec<u8>);

    impl MessageBytes for Short {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn copy(&self, range: Range<usize>, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.0[range.start..range.end.saturating_sub(3).max(range.start)]);
        }
    }

    /// Every literal announces exactly the bytes that follow it.
    fn literals_consistent(out: &[u8]) -> bool {
        let mut pos = 0;
        while let Some(i) = memchr::memchr(b'{', &out[pos..]) {
            let open = pos + i;
            let Some(close) = memchr::memchr(b'}', &out[open..]).map(|c| open + c) else {
                return false;
            };
            let n: usize = std::str::from_utf8(&out[open + 1..close]).unwrap().parse().unwrap();
            if out.get(close + 1..close + 3) != Some(b"\r\n") || close + 3 + n > out.len() {
                return false;
            }
            pos = close + 3 + n;
        }
        out.ends_with(b")\r\n")
    }

    #[test]
    fn damaged_inputs_keep_the_syntax() {
        let mut s = structure();
        s.envelope.clear();
        s.body.clear();
        let r = record(0);
        let intact = structure();
        let meta = MessageMeta {
            seq: 1,
            uid: 1,
            record: &r,
            structure: Some(&intact),
            recent: false,
            include_flags: false,
        };
        let attrs = [
            FetchAttr::Envelope,
            FetchAttr::Body,
            peek(&[], SectionText::Full, None),
            peek(&[1], SectionText::Full, Some((1, 4))),
            peek(&[3], SectionText::HeaderFields(names(&["X-Inner"])), None),
            binary(&[2], None),
            binary(&[5], None),
            FetchAttr::BinarySize { part: vec![5] },
        ];
        let full = MSG.as_bytes().to_vec();
        // A message shorter than its structure says (damaged store), and a source that copies
        // fewer bytes than asked.
        let truncated = full[..300].to_vec();
        let sources: [&dyn MessageBytes; 3] = [&truncated, &Short(full.clone()), &full[..0].to_vec()];
        let damaged = MessageMeta {
            structure: Some(&s),
            ..meta
        };
        for bytes in sources {
            let mut out = Vec::new();
            render(&damaged, &attrs, false, &FetchOptions::default(), bytes, &mut out, None).unwrap();
            assert!(literals_consistent(&out), "{}", String::from_utf8_lossy(&out));
            assert!(out.starts_with(b"* 1 FETCH (ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) BODY ("));
        }
        // Offsets past the end of everything.
        for p in &mut s.parts {
            p.body_start = u32::MAX;
            p.header_start = u32::MAX - 1;
        }
        let meta = MessageMeta {
            structure: Some(&s),
            ..meta
        };
        let mut out = Vec::new();
        render(&meta, &attrs, false, &FetchOptions::default(), &full, &mut out, None).unwrap();
        assert!(literals_consistent(&out), "{}", String::from_utf8_lossy(&out));
    }

    /// Each item rendered without what `needs_structure` and `needs_bytes` say it does not
    /// read comes out exactly as with it, and each item said to need the structure or the
    /// bytes comes out otherwise without them.
    #[test]
    fn items_read_no_more_than_they_need() {
        use FetchAttr::*;
        let s = structure();
        let msg = MSG.as_bytes().to_vec();
        let none = Vec::new();
        let rec = record(flags::SEEN);
        let section = |part: Vec<u32>, text: SectionText, partial: Option<Partial>| BodySection {
            peek: true,
            section: Section { part, text },
            partial,
        };
        let attrs = [
            Uid,
            Flags,
            InternalDate,
            Rfc822Size,
            ModSeq,
            SaveDate,
            EmailId,
            ThreadId,
            Envelope,
            Body,
            BodyStructure,
            Rfc822,
            Rfc822Header,
            Rfc822Text,
            section(vec![], SectionText::Full, None),
            section(vec![], SectionText::Full, Some(Partial { origin: 5, count: 40 })),
            section(vec![], SectionText::Header, None),
            section(vec![], SectionText::Text, None),
            section(vec![], SectionText::HeaderFields(vec!["Subject".into()]), None),
            section(vec![1], SectionText::Full, None),
            section(vec![4], SectionText::Mime, None),
            Binary {
                peek: true,
                part: vec![],
                partial: None,
            },
            Binary {
                peek: true,
                part: vec![1],
                partial: None,
            },
            BinarySize { part: vec![2] },
            Preview { lazy: false },
        ];
        let opts = FetchOptions {
            condstore: true,
            ..FetchOptions::default()
        };
        for attr in attrs {
            let one = [attr.clone()];
            let render_from = |structure: Option<&Structure>, bytes: &Vec<u8>| {
                let meta = MessageMeta {
                    seq: 1,
                    uid: 9,
                    record: &rec,
                    structure,
                    recent: false,
                    include_flags: false,
                };
                let mut out = Vec::new();
                render(&meta, &one, true, &opts, bytes, &mut out, None).map(|_| out)
            };
            let full = render_from(Some(&s), &msg);
            let (structure, bytes) = (needs_structure(&one), needs_bytes(&one));
            let lean = render_from(structure.then_some(&s), if bytes { &msg } else { &none });
            assert_eq!(lean, full, "{attr:?}");
            if structure {
                assert_ne!(render_from(None, &msg), full, "{attr:?} said to need the structure");
            }
            if bytes {
                assert_ne!(render_from(Some(&s), &none), full, "{attr:?} said to need the bytes");
            }
        }
    }
}
