//! Decoded, search-oriented facts about a message: the Date as a timestamp, the RFC 2047-decoded
//! Subject, message identifiers for threading, the first From/To/Cc mailbox for SORT (RFC 5256,
//! RFC 5957), and the RFC 8970 PREVIEW text.
//!
//! This is the only place that decodes anything (encoded-words, transfer encodings, charsets);
//! mail-parser's decoders do the work. Nothing decoded here ever feeds ENVELOPE or
//! BODYSTRUCTURE, which must stay raw. Decoding failures degrade to "absent", never to errors.

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::parsers::MessageStream;
use mail_parser::{DateTime, HeaderValue};

use super::header::{parse_disposition, Headers};
use super::structure::{Entity, Kind};

/// RFC 8970 §3.1 caps previews at 256 characters; ringmail stores at most 200.
pub(crate) const PREVIEW_CHARS: usize = 200;
/// Only this much of a part's encoded body is decoded for the preview: 200 characters of text
/// are found long before it, and hostile multi-megabyte parts stay cheap.
const PREVIEW_SCAN_TEXT: usize = 32 * 1024;
const PREVIEW_SCAN_HTML: usize = 128 * 1024;

/// A header value unfolded and terminated by CRLF, the shape mail-parser's field parsers need.
fn field_line(h: &Headers<'_>, name: &str) -> Option<Vec<u8>> {
    h.value(name).map(|v| {
        let mut line = v.into_owned();
        line.extend_from_slice(b"\r\n");
        line
    })
}

/// The Subject with RFC 2047 encoded-words decoded; `Some("")` when present but empty.
pub(crate) fn subject(h: &Headers<'_>) -> Option<String> {
    let line = field_line(h, "subject")?;
    Some(match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(t) => t.into_owned(),
        _ => String::new(),
    })
}

/// The Date header as Unix seconds (RFC 5322 §3.3), `None` when absent or not a valid date.
pub(crate) fn date(h: &Headers<'_>) -> Option<i64> {
    let value = h.value("date")?;
    let dt = DateTime::parse_rfc822(&String::from_utf8_lossy(&value))?;
    dt.is_valid().then(|| dt.to_timestamp())
}

/// The msg-ids of an identifier field (RFC 5322 §3.6.4), without angle brackets.
pub(crate) fn ids(h: &Headers<'_>, name: &str) -> Vec<String> {
    let Some(line) = field_line(h, name) else {
        return Vec::new();
    };
    match MessageStream::new(&line).parse_id() {
        HeaderValue::Text(t) => vec![t.into_owned()],
        HeaderValue::TextList(l) => l.into_iter().map(Cow::into_owned).collect(),
        _ => Vec::new(),
    }
}

/// RFC 8970 PREVIEW: the first text/plain part that is not an attachment (or, failing that, the
/// first such text/html part with markup removed), decoded, whitespace collapsed, at most
/// `PREVIEW_CHARS` characters. Encapsulated messages are not looked into: their text is not
/// this message's text.
pub(crate) fn preview(root: &Entity<'_>, msg: &[u8]) -> String {
    let mut html = None;
    let Some(plain) = first_text(root, &mut html) else {
        return match html {
            Some(e) => collapse(&strip_html(&decode(e, msg, PREVIEW_SCAN_HTML))),
            None => String::new(),
        };
    };
    collapse(&decode(plain, msg, PREVIEW_SCAN_TEXT))
}

/// Depth-first search for the first inline text/plain leaf, remembering the first text/html.
fn first_text<'e, 'a>(e: &'e Entity<'a>, html: &mut Option<&'e Entity<'a>>) -> Option<&'e Entity<'a>> {
    match &e.kind {
        Kind::Multipart(children) => children.iter().find_map(|c| first_text(c, html)),
        Kind::Message(_) => None,
        Kind::Leaf => {
            let attachment = e
                .headers
                .value("content-disposition")
                .and_then(|v| parse_disposition(&v))
                .is_some_and(|(ty, _)| ty == "attachment");
            if attachment || e.media.ty != "text" {
                None
            } else if e.media.sub == "plain" {
                Some(e)
            } else {
                if e.media.sub == "html" && html.is_none() {
                    *html = Some(e);
                }
                None
            }
        }
    }
}

/// Transfer-decodes (RFC 2045 §6) and charset-decodes the start of a leaf's body.
fn decode(e: &Entity<'_>, msg: &[u8], scan: usize) -> String {
    let body = msg.get(e.body_start..e.end).unwrap_or_default();
    let body = &body[..body.len().min(scan)];
    let bytes: Cow<'_, [u8]> = match e.encoding.as_str() {
        "base64" => {
            // Cut at a 4-character group so a truncated scan still decodes.
            let clean: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
            let whole = &clean[..clean.len() - clean.len() % 4];
            base64_decode(whole).map_or(Cow::Borrowed(&[][..]), Cow::Owned)
        }
        "quoted-printable" => quoted_printable_decode(body).map_or(Cow::Borrowed(body), Cow::Owned),
        _ => Cow::Borrowed(body),
    };
    match e.media.param("charset").and_then(charset_decoder) {
        Some(decoder) => decoder(&bytes),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Whitespace runs become one space; control characters are dropped; the result is trimmed and
/// cut at `PREVIEW_CHARS` characters (RFC 8970 §3.1 counts characters, not octets).
fn collapse(text: &str) -> String {
    let mut out = String::new();
    let mut count = 0;
    let mut pending_space = false;
    for ch in text.chars() {
        if ch.is_whitespace() {
            pending_space = count > 0;
            continue;
        }
        if ch.is_control() {
            continue;
        }
        if pending_space {
            if count + 1 >= PREVIEW_CHARS {
                break;
            }
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        if count >= PREVIEW_CHARS {
            break;
        }
        out.push(ch);
        count += 1;
    }
    out
}

/// Removes tags, comments and the contents of `<style>`, `<script>` and `<head>`, and resolves
/// the common character references. A preview, not an HTML parser.
fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        push_text(&mut out, &rest[..lt]);
        rest = &rest[lt..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |i| &rest[i + 3..]);
            continue;
        }
        let tag_end = rest.find('>').map_or(rest.len(), |i| i + 1);
        let closing = rest[1..].starts_with('/');
        let tag = rest[1..tag_end].trim_start_matches('/');
        let name_len = tag.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(tag.len());
        let name = tag[..name_len].to_ascii_lowercase();
        rest = &rest[tag_end..];
        if !closing
            && matches!(name.as_str(), "style" | "script" | "head" | "title")
            && !rest.is_empty()
            && !html[..html.len() - rest.len()].ends_with("/>")
        {
            rest = find_close(rest, &name).map_or("", |i| &rest[i..]);
            continue;
        }
        // Tags separate words ("a<br>b" is two words).
        out.push(' ');
    }
    push_text(&mut out, rest);
    out
}

/// Offset of the `</name` that closes a raw-text element, matched case-insensitively.
/// Each search stops at its match and the caller skips past it, so scanning stays linear.
fn find_close(rest: &str, name: &str) -> Option<usize> {
    rest.match_indices("</").map(|(i, _)| i).find(|&i| {
        rest.as_bytes()
            .get(i + 2..i + 2 + name.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
    })
}

fn push_text(out: &mut String, mut text: &str) {
    while let Some(amp) = text.find('&') {
        out.push_str(&text[..amp]);
        text = &text[amp..];
        // Byte search: a char-index slice could split a multi-byte character.
        let end = memchr::memchr(b';', &text.as_bytes()[..text.len().min(12)]);
        let decoded = end.and_then(|e| entity(&text[1..e]));
        match (end, decoded) {
            (Some(e), Some(ch)) => {
                out.push(ch);
                text = &text[e + 1..];
            }
            _ => {
                out.push('&');
                text = &text[1..];
            }
        }
    }
    out.push_str(text);
}

fn entity(name: &str) -> Option<char> {
    let code = if let Some(num) = name.strip_prefix('#') {
        match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        }
    } else {
        // The references mail generators actually emit; others stay as written.
        match name {
            "amp" => 0x26,
            "lt" => 0x3c,
            "gt" => 0x3e,
            "quot" => 0x22,
            "apos" => 0x27,
            "nbsp" => 0xa0,
            "copy" => 0xa9,
            "reg" => 0xae,
            "Auml" => 0xc4,
            "Ouml" => 0xd6,
            "Uuml" => 0xdc,
            "szlig" => 0xdf,
            "agrave" => 0xe0,
            "aacute" => 0xe1,
            "auml" => 0xe4,
            "ccedil" => 0xe7,
            "egrave" => 0xe8,
            "eacute" => 0xe9,
            "ntilde" => 0xf1,
            "ouml" => 0xf6,
            "uuml" => 0xfc,
            "ndash" => 0x2013,
            "mdash" => 0x2014,
            "lsquo" => 0x2018,
            "rsquo" => 0x2019,
            "ldquo" => 0x201c,
            "rdquo" => 0x201d,
            "bull" => 0x2022,
            "hellip" => 0x2026,
            "euro" => 0x20ac,
            "trade" => 0x2122,
            _ => return None,
        }
    };
    char::from_u32(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_table() {
        assert_eq!(collapse("  a \r\n\t b  "), "a b");
        assert_eq!(collapse("x\u{0}\u{7}y"), "xy");
        let long = "é".repeat(500);
        assert_eq!(collapse(&long).chars().count(), PREVIEW_CHARS);
        let words = "ab ".repeat(300);
        let got = collapse(&words);
        assert!(got.chars().count() <= PREVIEW_CHARS && !got.ends_with(' '));
    }

    #[test]
    fn html_table() {
        let cases = [
            ("<p>Hello&nbsp;<b>world</b> &amp; co</p>", "Hello world & co"),
            ("<p>Gr&uuml;&szlig;e&hellip;</p>", "Grüße…"),
            (
                "<html><head><title>T</title><style>p{}</style></head><body>Hi</body>",
                "Hi",
            ),
            ("<!-- hidden -->shown<script>x()</script>", "shown"),
            ("a<br/>b &bogus; &#233; &#x41;", "a b &bogus; é A"),
            ("unclosed <tag", "unclosed"),
            ("<", ""),
            ("&", "&"),
            ("<STYLE>x", ""),
            ("é<é>é", "é é"),
        ];
        for (input, want) in cases {
            assert_eq!(collapse(&strip_html(input)), want, "input {input:?}");
        }
    }
}
