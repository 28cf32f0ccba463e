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

use super::format::{self, TransferEncoding};
use super::types::{FetchAttr, Partial, Section, SectionText};
use crate::mime::{Section as MimeSection, Structure};
use crate::store::records::{flags, MessageRecord};

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
}

/// One message as FETCH sees it.
#[derive(Debug, Clone, Copy)]
pub struct MessageMeta<'a> {
    pub seq: u32,
    pub uid: u32,
    pub record: &'a MessageRecord,
    pub structure: &'a Structure,
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

/// Writes `* seq FETCH (...)\r\n` for `attrs`.
///
/// UID comes first when `uid_command` (RFC 9051 §6.4.9: UID FETCH always returns UID), MODSEQ
/// last when `opts.condstore`. When the items set `\Seen` on a message without it (and the
/// mailbox is writable), the response shows the flags with `\Seen` and includes FLAGS even if not
/// requested (RFC 9051 §6.4.5), and the effect tells the caller to store it.
///
/// On error nothing is written for this message.
pub fn render(
    meta: &MessageMeta<'_>,
    attrs: &[FetchAttr],
    uid_command: bool,
    opts: &FetchOptions,
    bytes: &dyn MessageBytes,
    out: &mut Vec<u8>,
) -> Result<FetchEffect, FetchError> {
    let start = out.len();
    let record = meta.record;
    let set_seen = !opts.read_only && record.flags & flags::SEEN == 0 && implies_seen(attrs);
    let shown = Flags {
        bits: record.flags | if set_seen { flags::SEEN } else { 0 },
        keywords: &record.keywords,
        recent: meta.recent && !opts.imap4rev2,
    };
    out.extend_from_slice(b"* ");
    format::number(out, meta.seq);
    out.extend_from_slice(b" FETCH (");
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
        if let Err(e) = item(&mut items, attr, meta, &shown, opts, bytes) {
            out.truncate(start);
            return Err(e);
        }
    }
    // Neither item can fail: they read only the record.
    if !flags_sent && (set_seen || meta.include_flags) {
        item(&mut items, &FetchAttr::Flags, meta, &shown, opts, bytes)?;
    }
    if opts.condstore && !modseq_sent {
        item(&mut items, &FetchAttr::ModSeq, meta, &shown, opts, bytes)?;
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
    bytes: &dyn MessageBytes,
) -> Result<(), FetchError> {
    let s = meta.structure;
    let record = meta.record;
    let out = items.next();
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
        FetchAttr::BodySection { section, partial, .. } => body_section(out, s, bytes, section, *partial),
        FetchAttr::Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            section_data(out, bytes, s.section(&[], MimeSection::Full), None);
        }
        FetchAttr::Rfc822Header => {
            out.extend_from_slice(b"RFC822.HEADER ");
            section_data(out, bytes, s.section(&[], MimeSection::Header), None);
        }
        FetchAttr::Rfc822Text => {
            out.extend_from_slice(b"RFC822.TEXT ");
            section_data(out, bytes, s.section(&[], MimeSection::Text), None);
        }
        FetchAttr::Binary { part, partial, .. } => binary(out, s, bytes, part, *partial)?,
        FetchAttr::BinarySize { part } => binary_size(out, s, bytes, part)?,
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
        FetchAttr::Preview { .. } => {
            // RFC 8970 §3: computed at delivery, so LAZY never has to wait; "" when the message
            // has no text to preview.
            out.extend_from_slice(b"PREVIEW ");
            format::string(out, s.preview.as_bytes(), opts.utf8 || opts.imap4rev2);
        }
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
/// without .PEEK, and gives only the origin of a partial fetch).
fn body_section(
    out: &mut Vec<u8>,
    s: &Structure,
    bytes: &dyn MessageBytes,
    section: &Section,
    partial: Option<Partial>,
) {
    out.extend_from_slice(b"BODY[");
    section_spec(out, section);
    out.push(b']');
    origin(out, partial);
    out.push(b' ');
    let (kind, filter) = match &section.text {
        SectionText::Full => (MimeSection::Full, None),
        SectionText::Header => (MimeSection::Header, None),
        SectionText::HeaderFields(names) => (MimeSection::Header, Some((names, true))),
        SectionText::HeaderFieldsNot(names) => (MimeSection::Header, Some((names, false))),
        SectionText::Text => (MimeSection::Text, None),
        SectionText::Mime => (MimeSection::Mime, None),
    };
    let range = s.section(&section.part, kind);
    match (range, filter) {
        (Some(r), Some((names, keep))) => {
            let r = clamp(r, bytes.len());
            transformed(out, bytes, r, partial, false, |buf| {
                format::filter_header(buf, names, keep)
            });
        }
        (range, _) => section_data(out, bytes, range, partial),
    }
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

/// Section data copied straight from the message: NIL when the section does not exist, "" when
/// it (or the part a partial fetch selects) is empty, else a literal.
fn section_data(out: &mut Vec<u8>, bytes: &dyn MessageBytes, range: Option<Range<usize>>, partial: Option<Partial>) {
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
    copy_exact(bytes, range.start + w.start..range.start + w.end, out);
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
    let w = window(len, partial);
    out.copy_within(base + w.start..base + w.end, base);
    out.truncate(base + w.len());
    if w.is_empty() {
        out.extend_from_slice(b"\"\"");
        return;
    }
    let nul = literal8 && memchr::memchr(0, &out[base..]).is_some();
    format::literal_prefix(out, w.len(), nul);
    let prefix = out.len() - base - w.len();
    out[base..].rotate_right(prefix);
}

/// The transfer encoding BINARY must undo for `part`, RFC 3516 §4.2. The whole message and
/// composite parts are sent as they are: RFC 2045 §6.4 allows only identity encodings on
/// multipart and message entities.
fn binary_encoding(s: &Structure, part: &[u32]) -> Option<Result<TransferEncoding, FetchError>> {
    let p = s.part(part)?;
    if part.is_empty() || p.is_message || p.content_type.starts_with("multipart/") {
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
    bytes: &dyn MessageBytes,
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
        (Some(TransferEncoding::Identity), range) | (None, range) => {
            // Stored messages never contain NUL (refused at delivery), so identity data never
            // needs literal8.
            section_data(out, bytes, range, partial);
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
