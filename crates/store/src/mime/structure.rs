//! The MIME entity tree of one stored message, and the flat part table derived from it.
//!
//! Owns where every entity's header and body start and end (byte offsets into the canonical
//! message), how multipart bodies split at their boundaries (RFC 2046 §5.1.1), how
//! message/rfc822 bodies nest (RFC 2046 §5.2.1), and IMAP section numbering (RFC 3501 §6.4.5,
//! RFC 9051 §6.4.5). It never decodes content transfer encodings and never renders IMAP syntax.
//! Limits on depth and part count keep hostile input linear in size.

use memchr::memmem;

use super::header::{parse_content_type, parse_encoding, Headers, Param};
use super::Part;

/// The defaults of `Limits::max_depth` and `max_parts`; `max_depth` is never above this, as it
/// bounds recursion (stack) and the repeated boundary scans of nested multiparts.
pub(crate) const MAX_DEPTH: usize = 64;
pub(crate) const MAX_PARTS: usize = 10_000;

/// Bounds on what one message's structure may hold (`[limits]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Composite entities nested deeper than this are stored as opaque leaves.
    pub max_depth: usize,
    /// Entities beyond this count are not split out: bounds the part table and BODYSTRUCTURE.
    pub max_parts: usize,
    /// Fields in one entity's header; a message with more is refused.
    pub max_header_fields: usize,
    /// Bytes in one line of a header; a message with a longer one is refused.
    pub max_header_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: MAX_DEPTH,
            max_parts: MAX_PARTS,
            max_header_fields: 10_000,
            max_header_line: 64 * 1024,
        }
    }
}

/// The effective media type of an entity: type and subtype lowercased, parameters as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Media {
    pub ty: String,
    pub sub: String,
    pub params: Vec<Param>,
}

impl Media {
    fn new(ty: &str, sub: &str, params: Vec<Param>) -> Self {
        Media {
            ty: ty.to_string(),
            sub: sub.to_string(),
            params,
        }
    }

    /// RFC 2045 §5.2: no (or an unparseable) Content-Type means text/plain; charset=us-ascii.
    fn default_text() -> Self {
        let charset = Param {
            name: b"charset".to_vec(),
            value: b"us-ascii".to_vec(),
        };
        Media::new("text", "plain", vec![charset])
    }

    pub fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name.as_bytes()))
            .map(|p| p.value.as_slice())
    }
}

#[derive(Debug)]
pub(crate) enum Kind<'a> {
    Leaf,
    Multipart(Vec<Entity<'a>>),
    /// message/rfc822 or message/global: the encapsulated message spans this entity's body.
    Message(Box<Entity<'a>>),
}

/// One MIME entity: `start..body_start` is its header (with the blank line, when present),
/// `body_start..end` its body.
#[derive(Debug)]
pub(crate) struct Entity<'a> {
    pub start: usize,
    pub body_start: usize,
    pub end: usize,
    pub headers: Headers<'a>,
    pub media: Media,
    /// Content-Transfer-Encoding, lowercased, "7bit" when absent.
    pub encoding: String,
    pub kind: Kind<'a>,
}

impl Entity<'_> {
    pub fn is_message(&self) -> bool {
        matches!(self.kind, Kind::Message(_))
    }
}

/// Offset where the body of the entity at `start..end` begins: just past the first CRLFCRLF, or
/// past a leading CRLF (empty header). Without a separator the whole entity is header.
pub(crate) fn body_start(msg: &[u8], start: usize, end: usize) -> Option<usize> {
    let slice = msg.get(start..end)?;
    if slice.starts_with(b"\r\n") {
        return Some(start + 2);
    }
    memmem::find(slice, b"\r\n\r\n").map(|i| start + i + 4)
}

/// Lines in `bytes`: line terminators, plus one for a final unterminated line.
pub(crate) fn count_lines(bytes: &[u8]) -> u32 {
    let full = memchr::memchr_iter(b'\n', bytes).count();
    let partial = usize::from(bytes.last().is_some_and(|&b| b != b'\n'));
    u32::try_from(full + partial).unwrap_or(u32::MAX)
}

#[derive(Clone, Copy)]
enum DefaultType {
    Text,
    /// RFC 2046 §5.1.5: inside multipart/digest the default is message/rfc822.
    Message,
}

struct Builder<'a> {
    msg: &'a [u8],
    budget: usize,
    limits: Limits,
    /// The first header over a limit.
    refused: Option<super::IngestError>,
}

/// Builds the entity tree of a whole message (already validated by `analyze`).
pub(crate) fn build(msg: &[u8]) -> Entity<'_> {
    build_with(msg, &Limits::default()).0
}

/// `build` under `limits`, with the first header found over one of them.
pub(crate) fn build_with<'a>(msg: &'a [u8], limits: &Limits) -> (Entity<'a>, Option<super::IngestError>) {
    let mut b = Builder {
        msg,
        budget: limits.max_parts,
        limits: Limits {
            max_depth: limits.max_depth.min(MAX_DEPTH),
            ..*limits
        },
        refused: None,
    };
    let root = b.entity(0, msg.len(), DefaultType::Text, 0);
    (root, b.refused)
}

/// Whether a header block keeps to `limits`, counted before anything is parsed (a field is a
/// line that does not start with white space).
fn check_header(block: &[u8], limits: &Limits) -> Result<(), super::IngestError> {
    let mut fields = 0;
    for line in block.split(|b| *b == b'\n') {
        if line.len() > limits.max_header_line {
            return Err(super::IngestError::HeaderLineTooLong(limits.max_header_line));
        }
        if !matches!(line.first(), None | Some(b' ' | b'\t' | b'\r')) {
            fields += 1;
            if fields > limits.max_header_fields {
                return Err(super::IngestError::TooManyHeaderFields(limits.max_header_fields));
            }
        }
    }
    Ok(())
}

impl<'a> Builder<'a> {
    fn entity(&mut self, start: usize, end: usize, default: DefaultType, depth: usize) -> Entity<'a> {
        self.budget = self.budget.saturating_sub(1);
        let body_start = body_start(self.msg, start, end).unwrap_or(end);
        let block = self.msg.get(start..body_start).unwrap_or_default();
        let headers = match check_header(block, &self.limits) {
            Ok(()) => Headers::parse(block),
            Err(e) => {
                self.refused.get_or_insert(e);
                Headers::parse(&[])
            }
        };
        let encoding = parse_encoding(headers.value("content-transfer-encoding").as_deref());
        let media = match headers.value("content-type").and_then(|v| parse_content_type(&v)) {
            Some(ct) => Media {
                ty: ct.ty,
                sub: ct.sub,
                params: ct.params,
            },
            None => match default {
                DefaultType::Text => Media::default_text(),
                DefaultType::Message => Media::new("message", "rfc822", Vec::new()),
            },
        };
        let mut e = Entity {
            start,
            body_start,
            end,
            headers,
            media,
            encoding,
            kind: Kind::Leaf,
        };
        let too_deep = depth >= self.limits.max_depth || self.budget == 0;
        if e.media.ty == "multipart" {
            if too_deep {
                make_opaque(&mut e);
            } else {
                self.multipart(&mut e, depth);
            }
        } else if e.media.ty == "message" && matches!(e.media.sub.as_str(), "rfc822" | "global") {
            // RFC 2046 §5.2.1: message/rfc822 may only be 7bit, 8bit or binary. An encoded one
            // cannot be served by slicing (BODY[n.HEADER] would be base64), and the
            // BODYSTRUCTURE grammar (RFC 3501 §9 body-type-msg) requires an envelope for it,
            // so it is presented as the opaque blob it is.
            if too_deep || !matches!(e.encoding.as_str(), "7bit" | "8bit" | "binary") {
                make_opaque(&mut e);
            } else {
                let inner = self.entity(e.body_start, e.end, DefaultType::Text, depth + 1);
                e.kind = Kind::Message(Box::new(inner));
            }
        }
        e
    }

    fn multipart(&mut self, e: &mut Entity<'a>, depth: usize) {
        let ranges = match e.media.param("boundary") {
            Some(b) if !b.is_empty() => split(self.msg, e.body_start, e.end, b),
            _ => Vec::new(),
        };
        if ranges.is_empty() {
            // RFC 2046 §5.1.1 makes the boundary mandatory and a multipart needs at least one
            // body part (RFC 3501 §9 body-type-mpart = 1*body); without them the Content-Type
            // is unusable, so RFC 2045 §5.2's default applies.
            e.media = Media::default_text();
            return;
        }
        let ranges = cap(ranges, self.budget.max(1));
        let default = if e.media.sub == "digest" {
            DefaultType::Message
        } else {
            DefaultType::Text
        };
        let children = ranges
            .into_iter()
            .map(|(s, end)| self.entity(s, end, default, depth + 1))
            .collect();
        e.kind = Kind::Multipart(children);
    }
}

/// Presents a composite entity as application/octet-stream (parameters kept).
fn make_opaque(e: &mut Entity<'_>) {
    e.media.ty = "application".to_string();
    e.media.sub = "octet-stream".to_string();
    e.kind = Kind::Leaf;
}

/// Keeps at most `max` parts; the last kept one absorbs the rest (delimiters included).
fn cap(mut ranges: Vec<(usize, usize)>, max: usize) -> Vec<(usize, usize)> {
    if ranges.len() > max {
        let last_end = ranges.last().map_or(0, |r| r.1);
        ranges.truncate(max);
        if let Some(r) = ranges.last_mut() {
            r.1 = last_end;
        }
    }
    ranges
}

/// Splits the multipart body `start..end` into body-part ranges (RFC 2046 §5.1.1).
///
/// A delimiter is a line "--" boundary [ "--" ] *LWSP. The CRLF before it belongs to the
/// delimiter, so part ranges exclude it (that is what BODY[n] returns and what the BODYSTRUCTURE
/// size counts). The preamble and epilogue belong to no part. A missing close delimiter
/// (truncated message) ends the last part at `end`.
fn split(msg: &[u8], start: usize, end: usize, boundary: &[u8]) -> Vec<(usize, usize)> {
    let Some(body) = msg.get(start..end) else {
        return Vec::new();
    };
    let mut dash = Vec::with_capacity(boundary.len() + 2);
    dash.extend_from_slice(b"--");
    dash.extend_from_slice(boundary);
    let finder = memmem::Finder::new(&dash);
    let mut parts = Vec::new();
    let mut current: Option<usize> = None;
    let mut pos = 0;
    while let Some(i) = finder.find(&body[pos..]) {
        let cand = pos + i;
        pos = cand + 1;
        if cand > 0 && body[cand - 1] != b'\n' {
            continue;
        }
        let mut k = cand + dash.len();
        let close = body[k..].starts_with(b"--");
        if close {
            k += 2;
        }
        while body.get(k).copied().is_some_and(|b| b == b' ' || b == b'\t') {
            k += 1;
        }
        let line_end = if k == body.len() {
            k
        } else if body[k..].starts_with(b"\r\n") {
            k + 2
        } else if body[k] == b'\n' {
            k + 1
        } else {
            // "--boundaryX": a longer boundary (e.g. a nested one sharing this prefix).
            continue;
        };
        if let Some(s) = current.take() {
            let crlf = if body[..cand].ends_with(b"\r\n") { 2 } else { 1 };
            parts.push((s, cand.saturating_sub(crlf).max(s)));
        } else if close {
            // A close delimiter before any part: stray text in the preamble, ignore it.
            continue;
        }
        if close {
            return offset(parts, start);
        }
        current = Some(line_end);
        pos = line_end;
    }
    if let Some(s) = current {
        parts.push((s, body.len()));
    }
    offset(parts, start)
}

fn offset(parts: Vec<(usize, usize)>, by: usize) -> Vec<(usize, usize)> {
    parts.into_iter().map(|(s, e)| (s + by, e + by)).collect()
}

/// Flattens the tree into the part table, pre-order, with RFC 3501 §6.4.5 section numbers.
pub(crate) fn part_table(root: &Entity<'_>) -> Vec<Part> {
    let mut out = Vec::new();
    out.push(part(root, Vec::new()));
    number_message(root, &[], &mut out);
    out
}

/// Numbers the parts of a message (the root, or one encapsulated in message/rfc822).
/// RFC 3501 §6.4.5: a multipart message's parts are 1, 2, ...; a non-multipart message has
/// exactly one part, 1, which is its body; neither the multipart itself nor the encapsulated
/// message gets a number of its own (they are reached as TEXT / HEADER).
fn number_message(m: &Entity<'_>, path: &[u32], out: &mut Vec<Part>) {
    match &m.kind {
        Kind::Multipart(children) => number_children(children, path, out),
        _ => emit(m, child_path(path, 1), out),
    }
}

fn number_children(children: &[Entity<'_>], path: &[u32], out: &mut Vec<Part>) {
    for (i, child) in (1u32..).zip(children) {
        emit(child, child_path(path, i), out);
    }
}

fn emit(e: &Entity<'_>, path: Vec<u32>, out: &mut Vec<Part>) {
    out.push(part(e, path.clone()));
    match &e.kind {
        Kind::Leaf => {}
        Kind::Multipart(children) => number_children(children, &path, out),
        Kind::Message(inner) => number_message(inner, &path, out),
    }
}

fn child_path(path: &[u32], n: u32) -> Vec<u32> {
    let mut p = Vec::with_capacity(path.len() + 1);
    p.extend_from_slice(path);
    p.push(n);
    p
}

fn part(e: &Entity<'_>, path: Vec<u32>) -> Part {
    // Saturating keeps offsets ordered (so stored structures still validate) for >4 GiB input.
    let off = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    let inner_text_start = match &e.kind {
        Kind::Message(inner) => inner.body_start,
        _ => e.body_start,
    };
    Part {
        path,
        header_start: off(e.start),
        header_end: off(e.body_start),
        body_start: off(e.body_start),
        body_end: off(e.end),
        inner_text_start: off(inner_text_start),
        content_type: format!("{}/{}", e.media.ty, e.media.sub),
        encoding: e.encoding.clone(),
        is_message: e.is_message(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(body: &str, boundary: &str) -> Vec<(usize, usize)> {
        split(body.as_bytes(), 0, body.len(), boundary.as_bytes())
    }

    #[test]
    fn split_table() {
        let cases: &[(&str, Vec<(usize, usize)>)] = &[
            ("--b\r\nA\r\n--b--\r\n", vec![(5, 6)]),
            ("pre\r\n--b\r\nA\r\n--b\r\nBB\r\n--b--\r\nepi", vec![(10, 11), (18, 20)]),
            ("--b  \r\nA\r\n--b-- \r\n", vec![(7, 8)]),
            ("--b\r\n--b\r\nX\r\n--b--", vec![(5, 5), (10, 11)]),
            ("--b\r\nA\r\n--bb\r\nB", vec![(5, 15)]),
            ("--b\r\ntruncated", vec![(5, 14)]),
            ("--b--\r\n--b\r\nA\r\n--b--", vec![(12, 13)]),
            ("x--b\r\nA", vec![]),
            ("--b", vec![(3, 3)]),
            ("", vec![]),
        ];
        for (body, want) in cases {
            assert_eq!(&ranges(body, "b"), want, "body {body:?}");
        }
    }

    #[test]
    fn cap_merges_tail() {
        assert_eq!(cap(vec![(0, 1), (3, 4), (6, 7)], 2), vec![(0, 1), (3, 7)]);
        assert_eq!(cap(vec![(0, 1)], 5), vec![(0, 1)]);
    }

    #[test]
    fn lines() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a"), 1);
        assert_eq!(count_lines(b"a\r\n"), 1);
        assert_eq!(count_lines(b"a\r\nb"), 2);
        assert_eq!(count_lines(b"\r\n\r\n"), 2);
    }
}
