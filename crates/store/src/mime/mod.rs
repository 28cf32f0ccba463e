//! MIME structure computed once, at delivery, and stored beside the message.
//!
//! `analyze` turns a canonical (CRLF-only, see `normalize_line_endings`) message into a
//! [`Structure`]: sizes and line counts, the IMAP ENVELOPE / BODY / BODYSTRUCTURE already rendered,
//! a table of every addressable part as byte offsets, and decoded search/sort facts (Date,
//! Subject, message identifiers, the first From/To/Cc mailboxes). Serving a message afterwards
//! (POP3 RETR/TOP, IMAP FETCH of any section) is slicing the stored bytes with these offsets;
//! nothing on the serving path parses MIME again.
//!
//! This module does no I/O, holds no state between calls and never panics on any input: every
//! malformed construct degrades to the RFC-specified default or to an opaque part.

#![forbid(unsafe_code)]

mod address;
mod binary;
mod header;
mod imap;
mod meta;
mod normalize;
#[cfg(test)]
mod robust_tests;
mod structure;
#[cfg(test)]
mod tests;

use std::ops::Range;

pub use address::MISSING_HOST;
pub use binary::with_encoding;
pub use binary::{ingest_binary, ingest_binary_with};
pub(crate) use normalize::first_bare;
pub use normalize::normalize_line_endings;
pub use structure::Limits;

/// Why a message was refused at delivery.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IngestError {
    #[error("message has no header/body separator")]
    NoSeparator,
    #[error("message contains NUL bytes")]
    Nul,
    #[error("message is empty")]
    Empty,
    #[error("a header of the message has more than {0} fields")]
    TooManyHeaderFields(usize),
    #[error("a header line of the message is longer than {0} bytes")]
    HeaderLineTooLong(usize),
}

impl IngestError {
    /// The reason as a protocol reply's text.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::NoSeparator => "message has no header/body separator",
            IngestError::Nul => "message contains NUL bytes",
            IngestError::Empty => "message is empty",
            IngestError::TooManyHeaderFields(_) => "message has too many header fields",
            IngestError::HeaderLineTooLong(_) => "message has a header line that is too long",
        }
    }
}

/// Why a stored structure could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("stored structure is not valid: {0}")]
    Format(#[from] serde_json::Error),
    /// Offsets that do not fit the message they describe: slicing with them could panic.
    #[error("stored structure has inconsistent offsets")]
    Inconsistent,
}

/// Everything the server needs to serve a message without parsing it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Structure {
    /// `msg.len()`: RFC 1939 LIST/STAT octets, IMAP RFC822.SIZE.
    pub size: u64,
    /// Offset where the body starts (just after the first CRLFCRLF; 2 for an empty header).
    pub header_len: u32,
    /// Lines in the body, a final unterminated line included (POP3 TOP, RFC 1939 §7).
    pub body_lines: u32,
    /// Some line (header or body) begins with '.': when false POP3 can send the message
    /// without RFC 1939 §3 byte-stuffing.
    pub has_dot_line: bool,
    /// IMAP ENVELOPE, rendered (RFC 3501 §7.4.2, RFC 9051 §7.5.2).
    pub envelope: String,
    /// IMAP BODY, the non-extensible BODYSTRUCTURE, rendered.
    pub body: String,
    /// IMAP BODYSTRUCTURE with extension data (md5, disposition, language, location), rendered.
    pub bodystructure: String,
    /// Every addressable part, pre-order; `parts[0]` is the whole message (path `[]`).
    pub parts: Vec<Part>,
    /// Date header as Unix seconds (SORT DATE, SEARCH SENTBEFORE/SENTON/SENTSINCE).
    pub date: Option<i64>,
    /// Subject with RFC 2047 encoded-words decoded (SEARCH SUBJECT, SORT SUBJECT).
    pub subject: Option<String>,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// First msg-id of In-Reply-To, without angle brackets.
    pub in_reply_to: Option<String>,
    /// msg-ids of References, in order, without angle brackets.
    pub references: Vec<String>,
    /// RFC 8970 PREVIEW text (at most 200 characters).
    pub preview: String,
}

/// One addressable part. All offsets index the stored (canonical) message.
///
/// | request | range |
/// |---|---|
/// | `BODY[]` | `0..size` |
/// | `BODY[HEADER]` | `parts[0].header_start..header_end` |
/// | `BODY[TEXT]` | `parts[0].body_start..body_end` |
/// | `BODY[n]` | `body_start..body_end` |
/// | `BODY[n.MIME]` | `header_start..header_end` |
/// | `BODY[n.HEADER]` (message parts) | `body_start..inner_text_start` |
/// | `BODY[n.TEXT]` (message parts) | `inner_text_start..body_end` |
///
/// [`Structure::section`] applies this table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Part {
    /// IMAP section number (RFC 3501 §6.4.5): `[]` whole message, `[1]`, `[2, 1]`, ...
    /// A non-multipart message (top level or encapsulated) has one part, `.1`, its body, whose
    /// MIME header is the message header. The multipart body of an encapsulated message has no
    /// number (it is `n.TEXT`); its children are `n.1`, `n.2`, ...
    pub path: Vec<u32>,
    /// This part's MIME header, blank line included (`BODY[n.MIME]`); for `[]` the message header.
    pub header_start: u32,
    pub header_end: u32,
    /// This part's content (`BODY[n]`), excluding the CRLF that belongs to the next boundary
    /// delimiter (RFC 2046 §5.1.1); for `[]` the message body. Its length is the BODYSTRUCTURE size.
    pub body_start: u32,
    pub body_end: u32,
    /// For message parts (`is_message`): where the encapsulated message's body begins, so its
    /// header is `body_start..inner_text_start` and its text `inner_text_start..body_end`.
    /// Equal to `body_start` for other parts.
    pub inner_text_start: u32,
    /// Effective media type, lowercased ("text/plain" when absent or unparseable).
    pub content_type: String,
    /// Content-Transfer-Encoding, lowercased, "7bit" by default (RFC 2045 §6.1).
    pub encoding: String,
    /// message/rfc822 or message/global with an identity encoding, parsed as a nested message.
    pub is_message: bool,
}

/// The part specifier of an IMAP section (RFC 3501 §6.4.5), HEADER.FIELDS being a filter over
/// `Header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `BODY[]` or `BODY[n]`.
    Full,
    /// `BODY[HEADER]` or `BODY[n.HEADER]`.
    Header,
    /// `BODY[TEXT]` or `BODY[n.TEXT]`.
    Text,
    /// `BODY[n.MIME]`.
    Mime,
}

/// Validates a canonical message and computes its [`Structure`].
///
/// Rejects an empty message, any NUL byte, and a message without the blank line that ends the
/// header (RFC 5322 §2.1); a message starting with CRLF has an empty header and is accepted.
///
/// Offsets are u32: in a message of 4 GiB or more, offsets past 4 GiB saturate at `u32::MAX`
/// (`size` stays exact, so whole-message POP3/IMAP retrieval is unaffected). Deployments should
/// keep `lmtp.max_message_size` below that.
/// Ingest of a raw message as received: line endings normalised (so every size we report is
/// exact), then the one MIME parse every later FETCH, RETR and TOP relies on.
pub fn ingest(raw: Vec<u8>) -> Result<(Vec<u8>, Structure), IngestError> {
    ingest_with(raw, &Limits::default())
}

/// `ingest` under `limits`.
pub fn ingest_with(raw: Vec<u8>, limits: &Limits) -> Result<(Vec<u8>, Structure), IngestError> {
    let message = match normalize_line_endings(&raw) {
        std::borrow::Cow::Borrowed(_) => raw,
        std::borrow::Cow::Owned(fixed) => fixed,
    };
    let structure = analyze_with(&message, limits)?;
    Ok((message, structure))
}

/// `ingest_with` for a message as received: a spooled message is canonical already (the spool
/// normalises as it takes bytes), so it is analysed where it lies, in memory or mapped.
pub fn ingest_spooled(
    message: crate::spool::Spooled,
    limits: &Limits,
) -> Result<(crate::spool::Spooled, Structure), IngestError> {
    if first_bare(&message).is_some() {
        let (message, structure) = ingest_with(message.to_vec(), limits)?;
        return Ok((message.into(), structure));
    }
    let structure = analyze_with(&message, limits)?;
    Ok((message, structure))
}

/// The addr-specs (`local@domain`, quotes kept) of one address-list header value, as written;
/// a mailbox without a domain comes back without one. Group markers are skipped.
pub fn addr_specs(value: &[u8]) -> Vec<String> {
    address::parse_address_list(&header::unfold(value))
        .into_iter()
        .filter_map(|a| match a {
            address::Address::Mailbox { mailbox, host, .. } => {
                let mailbox = String::from_utf8_lossy(&mailbox).into_owned();
                if host == address::MISSING_HOST || host.is_empty() {
                    Some(mailbox)
                } else {
                    Some(format!("{mailbox}@{}", String::from_utf8_lossy(&host)))
                }
            }
            _ => None,
        })
        .collect()
}

pub fn analyze(msg: &[u8]) -> Result<Structure, IngestError> {
    analyze_with(msg, &Limits::default())
}

/// `analyze` under `limits`.
pub fn analyze_with(msg: &[u8], limits: &Limits) -> Result<Structure, IngestError> {
    if msg.is_empty() {
        return Err(IngestError::Empty);
    }
    if memchr::memchr(0, msg).is_some() {
        return Err(IngestError::Nul);
    }
    let header_len = structure::body_start(msg, 0, msg.len()).ok_or(IngestError::NoSeparator)?;

    let (root, refused) = structure::build_with(msg, limits);
    if let Some(e) = refused {
        return Err(e);
    }
    let mut envelope = String::new();
    imap::envelope(&mut envelope, &root.headers);
    let mut body = String::new();
    imap::body(&mut body, &root, msg, false);
    let mut bodystructure = String::new();
    imap::body(&mut bodystructure, &root, msg, true);

    let h = &root.headers;
    Ok(Structure {
        size: msg.len() as u64,
        header_len: u32::try_from(header_len).unwrap_or(u32::MAX),
        body_lines: structure::count_lines(&msg[header_len..]),
        has_dot_line: msg[0] == b'.' || memchr::memmem::find(msg, b"\n.").is_some(),
        envelope,
        body,
        bodystructure,
        parts: structure::part_table(&root),
        date: meta::date(h),
        subject: meta::subject(h),
        message_id: meta::ids(h, "message-id").into_iter().next(),
        in_reply_to: meta::ids(h, "in-reply-to").into_iter().next(),
        references: meta::ids(h, "references"),
        preview: meta::preview(&root, msg),
    })
}

impl Structure {
    /// Serialized form for the store (JSON: self-describing, tolerant of added fields).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Infallible here: only strings, integers, options and sequences, no map keys.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Loads a stored structure, checking that every offset fits inside `size`, so that slicing
    /// the message with them cannot panic even if the store was damaged.
    pub fn from_bytes(bytes: &[u8]) -> Result<Structure, DecodeError> {
        let s: Structure = serde_json::from_slice(bytes)?;
        let size = s.size;
        let ordered = |a: u32, b: u32| a <= b && u64::from(b) <= size;
        let parts_ok = s.parts.iter().all(|p| {
            ordered(p.header_start, p.header_end)
                && ordered(p.header_end, p.body_start)
                && ordered(p.body_start, p.inner_text_start)
                && ordered(p.inner_text_start, p.body_end)
        });
        let root_ok = s.parts.first().is_some_and(|p| p.path.is_empty());
        if u64::from(s.header_len) > size || !parts_ok || !root_ok {
            return Err(DecodeError::Inconsistent);
        }
        Ok(s)
    }

    /// The part with this section number, if the message has one.
    pub fn part(&self, path: &[u32]) -> Option<&Part> {
        self.parts.iter().find(|p| p.path == path)
    }

    /// Byte range of `BODY[path.section]` in the stored message, or `None` when the section does
    /// not exist (no such part, `MIME` of the whole message, `HEADER`/`TEXT` of a part that is
    /// not a message). RFC 3501 §6.4.5.
    pub fn section(&self, path: &[u32], section: Section) -> Option<Range<usize>> {
        let p = self.part(path)?;
        let r = |a: u32, b: u32| a as usize..b as usize;
        if path.is_empty() {
            return match section {
                Section::Full => Some(0..self.size as usize),
                Section::Header => Some(r(p.header_start, p.header_end)),
                Section::Text => Some(r(p.body_start, p.body_end)),
                Section::Mime => None,
            };
        }
        match section {
            Section::Full => Some(r(p.body_start, p.body_end)),
            Section::Mime => Some(r(p.header_start, p.header_end)),
            Section::Header if p.is_message => Some(r(p.body_start, p.inner_text_start)),
            Section::Text if p.is_message => Some(r(p.inner_text_start, p.body_end)),
            Section::Header | Section::Text => None,
        }
    }
}
