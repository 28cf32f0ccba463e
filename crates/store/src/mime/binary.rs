//! Binary content APPENDed as a literal8 (RFC 3516 §4.4).
//!
//! A stored message never holds NUL: an IMAP literal may not carry one (RFC 9051 §4.3), and
//! POP3 and BODY[] serve the stored bytes as they are. So a part whose content has NUL octets
//! is stored base64-encoded, its Content-Transfer-Encoding field saying so, as Dovecot does:
//! `BODY[]` then shows that 7-bit view, and `BINARY[n]` (which decodes, RFC 3516 §4.2) gives
//! back the very octets that were appended. Everything outside such parts is only
//! canonicalised (line endings), exactly as `ingest` does; the content of a binary part is
//! not, since its CR and LF octets are data.

use base64::Engine;

use super::structure::{self, Entity, Kind};
use super::{analyze_with, normalize_line_endings, IngestError, Limits, Structure};

/// `ingest` for a literal8: parts with NUL octets are stored base64-encoded.
pub fn ingest_binary(raw: Vec<u8>) -> Result<(Vec<u8>, Structure), IngestError> {
    ingest_binary_with(raw, &Limits::default())
}

/// `ingest_binary` under `limits`.
pub fn ingest_binary_with(raw: Vec<u8>, limits: &Limits) -> Result<(Vec<u8>, Structure), IngestError> {
    if memchr::memchr(0, &raw).is_none() {
        return super::ingest_with(raw, limits);
    }
    let mut binary = Vec::new();
    leaves_with_nul(&structure::build(&raw), &raw, &mut binary);
    let mut message = Vec::with_capacity(raw.len() * 4 / 3 + 64);
    let mut at = 0;
    for leaf in binary {
        message.extend_from_slice(&normalize_line_endings(&raw[at..leaf.start]));
        let header = normalize_line_endings(&raw[leaf.start..leaf.body_start]);
        message.extend_from_slice(&with_encoding(&header, b"base64"));
        base64_lines(&raw[leaf.body_start..leaf.end], &mut message);
        at = leaf.end;
    }
    message.extend_from_slice(&normalize_line_endings(&raw[at..]));
    // NUL anywhere else (a header, a multipart preamble) cannot be stored: `analyze` refuses.
    let structure = analyze_with(&message, limits)?;
    Ok((message, structure))
}

/// A leaf entity's header and body, as offsets into the raw message.
struct Leaf {
    start: usize,
    body_start: usize,
    end: usize,
}

/// The leaves whose body holds NUL, in message order.
fn leaves_with_nul(e: &Entity<'_>, raw: &[u8], out: &mut Vec<Leaf>) {
    match &e.kind {
        Kind::Multipart(children) => children.iter().for_each(|c| leaves_with_nul(c, raw, out)),
        Kind::Message(inner) => leaves_with_nul(inner, raw, out),
        Kind::Leaf => {
            let body = raw.get(e.body_start..e.end).unwrap_or_default();
            // A part already in base64 or quoted-printable holds no raw NUL worth keeping.
            if memchr::memchr(0, body).is_some() && e.start < e.body_start {
                out.push(Leaf {
                    start: e.start,
                    body_start: e.body_start,
                    end: e.end,
                });
            }
        }
    }
}

/// `header` (a canonical header block, blank line included) with its Content-Transfer-Encoding
/// field, folded lines and all, replaced by one saying `encoding`, in the same place, or added
/// before the blank line when there was none.
pub fn with_encoding(header: &[u8], encoding: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 40);
    let mut field = b"Content-Transfer-Encoding: ".to_vec();
    field.extend_from_slice(encoding);
    field.extend_from_slice(b"\r\n");
    let mut replaced = false;
    let mut skipping = false;
    let mut lines = header.split_inclusive(|&b| b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if skipping && continuation {
            continue;
        }
        skipping = false;
        let is_blank = line == b"\r\n" || line == b"\n";
        if is_blank && lines.peek().is_none() && !replaced {
            out.extend_from_slice(&field);
            replaced = true;
        }
        let name_end = line.iter().position(|&b| b == b':');
        let is_cte = name_end.is_some_and(|n| {
            line[..n]
                .trim_ascii()
                .eq_ignore_ascii_case(b"content-transfer-encoding")
        });
        if is_cte && !continuation {
            skipping = true;
            if !replaced {
                out.extend_from_slice(&field);
                replaced = true;
            }
            continue;
        }
        out.extend_from_slice(line);
    }
    if !replaced {
        out.extend_from_slice(&field);
    }
    out
}

/// `data` in base64, 76 characters a line (RFC 2045 §6.8), each line ending in CRLF.
fn base64_lines(data: &[u8], out: &mut Vec<u8>) {
    let engine = base64::engine::general_purpose::STANDARD;
    for chunk in data.chunks(57) {
        out.extend_from_slice(engine.encode(chunk).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoding_field_is_replaced_where_it_stands() {
        let cases: [(&[u8], &[u8]); 4] = [
            (
                b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nX: y\r\n\r\n",
                b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nX: y\r\n\r\n",
            ),
            (
                b"content-transfer-encoding:\r\n  binary\r\nX: y\r\n\r\n",
                b"Content-Transfer-Encoding: base64\r\nX: y\r\n\r\n",
            ),
            (b"X: y\r\n\r\n", b"X: y\r\nContent-Transfer-Encoding: base64\r\n\r\n"),
            (b"\r\n", b"Content-Transfer-Encoding: base64\r\n\r\n"),
        ];
        for (header, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(&with_encoding(header, b"base64")),
                String::from_utf8_lossy(want)
            );
        }
    }

    #[test]
    fn a_single_part_with_nul_is_stored_base64() {
        let raw = b"Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\n\0\x01\r\n\x02\n\xff".to_vec();
        let (stored, s) = ingest_binary(raw).unwrap();
        assert!(memchr::memchr(0, &stored).is_none());
        let text = String::from_utf8(stored.clone()).unwrap();
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\n\r\nAAENCgIK/w==\r\n"),
            "{text}"
        );
        assert_eq!(s.part(&[1]).unwrap().encoding, "base64");
    }

    #[test]
    fn only_the_parts_with_nul_change() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\ntext\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\0\r\n--b--\r\n".to_vec();
        let (stored, s) = ingest_binary(raw).unwrap();
        let text = String::from_utf8(stored).unwrap();
        assert!(
            text.contains("plain\r\ntext\r\n--b\r\n"),
            "text parts are canonicalised: {text}"
        );
        assert!(
            text.contains("Content-Transfer-Encoding: base64\r\n\r\nAA==\r\n\r\n--b--"),
            "{text}"
        );
        assert_eq!(s.part(&[1]).unwrap().encoding, "7bit");
        assert_eq!(s.part(&[2]).unwrap().encoding, "base64");
    }

    #[test]
    fn nul_in_a_header_is_still_refused() {
        assert_eq!(
            ingest_binary(b"X: \0\r\n\r\nbody".to_vec()).unwrap_err(),
            IngestError::Nul
        );
        assert!(ingest_binary(b"Subject: fine\r\n\r\nno nul\n".to_vec()).is_ok());
    }
}
