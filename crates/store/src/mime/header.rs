//! Raw header access for one MIME entity: splitting a header block into fields, unfolding, and the
//! small RFC 2045 §5.1 / RFC 2183 §2 "token; attribute=value" grammar shared by Content-Type and
//! Content-Disposition.
//!
//! Everything here works on the bytes as sent. It never decodes RFC 2047 encoded-words or RFC 2231
//! parameter continuations: ENVELOPE and BODYSTRUCTURE must carry header text undecoded
//! (RFC 3501 §7.4.2), and clients do their own decoding.

use std::borrow::Cow;

/// One header field. `value` starts just after the colon and ends before the line break that
/// terminates the field; folds (CRLF + WSP) inside it are still present.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
}

/// The fields of one header block, in order.
#[derive(Debug, Default)]
pub(crate) struct Headers<'a> {
    fields: Vec<Field<'a>>,
}

impl<'a> Headers<'a> {
    /// Splits a header block (which may or may not include the terminating blank line).
    /// Lines that are not fields (no colon, or an invalid name) are skipped rather than failing
    /// the message: delivery must accept whatever the MTA accepted.
    pub fn parse(block: &'a [u8]) -> Self {
        let mut fields = Vec::new();
        // (name, value start, value end) of the field being accumulated across folds.
        let mut cur: Option<(&'a [u8], usize, usize)> = None;
        let mut pos = 0;
        while pos < block.len() {
            let line_end = memchr::memchr(b'\n', &block[pos..]).map_or(block.len(), |i| pos + i + 1);
            let content = strip_eol(&block[pos..line_end]);
            if content.is_empty() {
                break;
            }
            if matches!(content[0], b' ' | b'\t') {
                // RFC 5322 §2.2.3: a line starting with WSP continues the previous field.
                if let Some(c) = cur.as_mut() {
                    c.2 = pos + content.len();
                }
            } else {
                if let Some((name, start, end)) = cur.take() {
                    fields.push(Field {
                        name,
                        value: &block[start..end],
                    });
                }
                if let Some(colon) = memchr::memchr(b':', content) {
                    // RFC 5322 §4.5.1 (obsolete syntax) allows WSP before the colon.
                    let name = trim_end(&content[..colon]);
                    if is_field_name(name) {
                        cur = Some((name, pos + colon + 1, pos + content.len()));
                    }
                }
            }
            pos = line_end;
        }
        if let Some((name, start, end)) = cur {
            fields.push(Field {
                name,
                value: &block[start..end],
            });
        }
        Headers { fields }
    }

    /// The first field with this (ASCII, case-insensitive) name. RFC 5322 §3.6 allows at most one
    /// of each field the server looks at; with duplicates the first one wins, as in most servers.
    pub fn get(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The unfolded, trimmed value of the first field with this name.
    pub fn value(&self, name: &str) -> Option<Cow<'a, [u8]>> {
        self.get(name).map(|f| unfold(f.value))
    }
}

fn is_field_name(name: &[u8]) -> bool {
    // RFC 5322 §3.6.8: ftext is printable US-ASCII except colon.
    !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b) && b != b':')
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

pub(crate) fn is_wsp(b: u8) -> bool {
    matches!(b, b' ' | b'\t')
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if !is_wsp(*last) {
            break;
        }
        s = rest;
    }
    s
}

pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_wsp(*first) {
            break;
        }
        s = rest;
    }
    trim_end(s)
}

/// RFC 5322 §2.2.3 unfolding: the only line breaks inside a field value are folds, so removing
/// every CR and LF is exactly "remove CRLF that precedes WSP". Leading/trailing WSP is dropped.
pub(crate) fn unfold(value: &[u8]) -> Cow<'_, [u8]> {
    let value = trim(value);
    if memchr::memchr2(b'\r', b'\n', value).is_none() {
        return Cow::Borrowed(value);
    }
    let joined: Vec<u8> = value.iter().copied().filter(|b| !matches!(b, b'\r' | b'\n')).collect();
    Cow::Owned(trim(&joined).to_vec())
}

/// A parameter as written: name and value bytes (quoted-string already unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// A syntactically valid Content-Type, type and subtype lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentType {
    pub ty: String,
    pub sub: String,
    pub params: Vec<Param>,
}

/// RFC 2045 §5.1 `type "/" subtype *(";" parameter)`. `None` when type or subtype is missing,
/// which RFC 2045 §5.2 says must be treated as if the field were absent.
pub(crate) fn parse_content_type(value: &[u8]) -> Option<ContentType> {
    let mut c = Cursor { s: value, pos: 0 };
    c.skip_cfws();
    let ty = c.token()?;
    c.skip_cfws();
    if !c.eat(b'/') {
        return None;
    }
    c.skip_cfws();
    let sub = c.token()?;
    Some(ContentType {
        ty: lower(ty),
        sub: lower(sub),
        params: c.params(),
    })
}

/// RFC 2183 §2 `disposition-type *(";" disposition-parm)`; the type is lowercased.
pub(crate) fn parse_disposition(value: &[u8]) -> Option<(String, Vec<Param>)> {
    let mut c = Cursor { s: value, pos: 0 };
    c.skip_cfws();
    let ty = c.token()?;
    Some((lower(ty), c.params()))
}

/// RFC 3282 §2 Content-Language: a comma-separated list of language tags.
pub(crate) fn parse_language(value: &[u8]) -> Vec<Vec<u8>> {
    let mut c = Cursor { s: value, pos: 0 };
    let mut tags = Vec::new();
    loop {
        c.skip_cfws();
        if c.pos >= c.s.len() {
            break;
        }
        match c.loose_value(b",") {
            Some(tag) => tags.push(tag.to_vec()),
            // A stray separator or junk byte: step over it, never loop forever.
            None => c.pos += 1,
        }
    }
    tags
}

/// RFC 2045 §6.1: the mechanism is a case-insensitive token; absent means "7bit".
pub(crate) fn parse_encoding(value: Option<&[u8]>) -> String {
    let mut c = Cursor {
        s: value.unwrap_or_default(),
        pos: 0,
    };
    c.skip_cfws();
    c.token().map(lower).unwrap_or_else(|| "7bit".to_string())
}

fn lower(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_lowercase()
}

/// RFC 2045 §5.1 tspecials.
fn is_tspecial(b: u8) -> bool {
    b"()<>@,;:\\\"/[]?=".contains(&b)
}

fn is_token_byte(b: u8) -> bool {
    b > b' ' && b < 0x7f && !is_tspecial(b)
}

struct Cursor<'s> {
    s: &'s [u8],
    pos: usize,
}

impl<'s> Cursor<'s> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Skips whitespace and (nested) RFC 5322 §3.2.2 comments; an unclosed comment runs to the end.
    fn skip_cfws(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'(' => depth += 1,
                b')' if depth > 0 => depth -= 1,
                b'\\' if depth > 0 => self.pos += 1,
                b' ' | b'\t' | b'\r' | b'\n' => {}
                _ if depth > 0 => {}
                _ => return,
            }
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Option<&'s [u8]> {
        let start = self.pos;
        while self.peek().is_some_and(is_token_byte) {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.s[start..self.pos])
    }

    /// A quoted-string's content with quoted-pairs resolved; an unclosed quote runs to the end.
    fn quoted(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.pos += 1;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.pos += 1;
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
        }
        out
    }

    /// An unquoted value, read leniently: real mail carries unquoted values containing
    /// tspecials (`boundary==_x`, `name=a/b`) and 8-bit bytes, so only WSP, CTLs, `(`, `;`
    /// and the extra stop bytes end it.
    fn loose_value(&mut self, stop: &[u8]) -> Option<&'s [u8]> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b <= b' ' || b == 0x7f || b == b';' || b == b'(' || b == b'"' || stop.contains(&b) {
                break;
            }
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.s[start..self.pos])
    }

    fn skip_to_semicolon(&mut self) {
        match memchr::memchr(b';', &self.s[self.pos.min(self.s.len())..]) {
            Some(i) => self.pos += i,
            None => self.pos = self.s.len(),
        }
    }

    /// `*(";" attribute "=" value)`; malformed parameters are skipped, not fatal.
    fn params(&mut self) -> Vec<Param> {
        let mut params = Vec::new();
        loop {
            self.skip_cfws();
            match self.peek() {
                None => break,
                Some(b';') => self.pos += 1,
                Some(_) => {
                    // Junk between parameters (e.g. a missing ';'): resynchronise on the next one.
                    self.pos += 1;
                    self.skip_to_semicolon();
                    continue;
                }
            }
            self.skip_cfws();
            let Some(name) = self.token() else {
                self.skip_to_semicolon();
                continue;
            };
            self.skip_cfws();
            if !self.eat(b'=') {
                self.skip_to_semicolon();
                continue;
            }
            self.skip_cfws();
            let value = if self.peek() == Some(b'"') {
                self.quoted()
            } else {
                self.loose_value(b"").map(<[u8]>::to_vec).unwrap_or_default()
            };
            params.push(Param {
                name: name.to_vec(),
                value,
            });
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_folding() {
        let block = b"Subject: a\r\n  b\r\nX: 1\r\nbad line\r\n: empty\r\nTo : c\r\n\r\nBody: no\r\n";
        let h = Headers::parse(block);
        assert_eq!(&h.value("subject").unwrap()[..], b"a  b");
        assert_eq!(&h.value("x").unwrap()[..], b"1");
        assert_eq!(&h.value("TO").unwrap()[..], b"c");
        assert!(h.get("body").is_none());
        assert_eq!(h.fields.len(), 3);
    }

    #[test]
    fn content_type_table() {
        type Want<'a> = Option<(&'a str, &'a str, &'a [(&'a str, &'a str)])>;
        let cases: &[(&str, Want<'_>)] = &[
            ("text/plain", Some(("text", "plain", &[]))),
            (
                "TEXT/PLAIN; CHARSET=US-ASCII",
                Some(("text", "plain", &[("CHARSET", "US-ASCII")])),
            ),
            (
                " multipart/mixed; (c) boundary=\"a \\\"b\\\"\" ;x=y",
                Some(("multipart", "mixed", &[("boundary", "a \"b\""), ("x", "y")])),
            ),
            (
                "text/plain; boundary==_x; junk ; n=v",
                Some(("text", "plain", &[("boundary", "=_x"), ("n", "v")])),
            ),
            (
                "text/plain;; =v; a=\"unterminated",
                Some(("text", "plain", &[("a", "unterminated")])),
            ),
            ("text", None),
            ("/plain", None),
            ("", None),
            ("(comment only", None),
        ];
        for (input, want) in cases {
            let got = parse_content_type(input.as_bytes());
            let got = got.as_ref().map(|ct| {
                let params: Vec<(String, String)> = ct
                    .params
                    .iter()
                    .map(|p| {
                        (
                            String::from_utf8_lossy(&p.name).into(),
                            String::from_utf8_lossy(&p.value).into(),
                        )
                    })
                    .collect();
                (ct.ty.clone(), ct.sub.clone(), params)
            });
            let want = want.map(|(t, s, p)| {
                let params: Vec<(String, String)> = p.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
                (t.to_string(), s.to_string(), params)
            });
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn disposition_language_encoding() {
        let (ty, params) = parse_disposition(b"Attachment; filename=\"a b.txt\"").unwrap();
        assert_eq!(ty, "attachment");
        assert_eq!(
            params,
            vec![Param {
                name: b"filename".to_vec(),
                value: b"a b.txt".to_vec()
            }]
        );
        assert!(parse_disposition(b";").is_none());
        assert_eq!(
            parse_language(b" en-US, (c) fr ,,"),
            vec![b"en-US".to_vec(), b"fr".to_vec()]
        );
        assert_eq!(parse_encoding(Some(b" BASE64 ")), "base64");
        assert_eq!(parse_encoding(Some(b"")), "7bit");
        assert_eq!(parse_encoding(None), "7bit");
    }
}
