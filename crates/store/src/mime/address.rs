//! RFC 5322 §3.4 address lists, parsed into the address structures of the IMAP ENVELOPE
//! (RFC 3501 §7.4.2, RFC 9051 §7.5.2): personal name, at-domain-list, mailbox, host, plus the
//! group start/end markers.
//!
//! Names stay as sent (quoted-strings are unquoted, encoded-words are left encoded) because
//! RFC 3501 hands the client the header text and the client decodes. Parsing is lenient and
//! total: any byte string yields some list, never an error, and never more than one entry per
//! input token, so cost is linear.

use std::borrow::Cow;

/// Placeholder host for an address without a domain ("To: undisclosed"). A NIL host would turn the
/// entry into a group marker (RFC 3501 §7.4.2), so the c-client/UW IMAP convention is used.
pub const MISSING_HOST: &[u8] = b".MISSING-HOST-NAME.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    Mailbox {
        name: Option<Vec<u8>>,
        adl: Option<Vec<u8>>,
        mailbox: Vec<u8>,
        host: Vec<u8>,
    },
    /// RFC 3501 §7.4.2: start of group, host NIL, mailbox holds the group name phrase.
    GroupStart(Vec<u8>),
    /// RFC 3501 §7.4.2: end of group, mailbox and host NIL.
    GroupEnd,
}

#[derive(Debug, Clone)]
enum Tok<'a> {
    /// An atom, quoted-string or domain literal: `raw` as written, `text` with quotes removed.
    Word {
        raw: &'a [u8],
        text: Cow<'a, [u8]>,
    },
    Comment(&'a [u8]),
    Special(u8),
}

fn is_special(b: u8) -> bool {
    b"<>@,;:".contains(&b)
}

fn tokenize(s: &[u8]) -> Vec<Tok<'_>> {
    let mut toks = Vec::new();
    let mut pos = 0;
    while let Some(&b) = s.get(pos) {
        match b {
            // White space and the control bytes no atom may hold (RFC 5322 §3.2.3) separate
            // words; the word arm below stops at them, so they must be stepped over here.
            0..=b' ' => pos += 1,
            b'(' => {
                let start = pos + 1;
                let mut depth = 0usize;
                while let Some(&c) = s.get(pos) {
                    pos += 1;
                    match c {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        b'\\' => pos += 1,
                        _ => {}
                    }
                }
                let end = if depth == 0 { pos - 1 } else { s.len() };
                toks.push(Tok::Comment(s.get(start..end).unwrap_or_default()));
            }
            b'"' => {
                let start = pos;
                let mut text = Vec::new();
                pos += 1;
                while let Some(&c) = s.get(pos) {
                    pos += 1;
                    match c {
                        b'"' => break,
                        b'\\' => {
                            if let Some(&next) = s.get(pos) {
                                text.push(next);
                                pos += 1;
                            }
                        }
                        _ => text.push(c),
                    }
                }
                let raw = &s[start..pos.min(s.len())];
                toks.push(Tok::Word {
                    raw,
                    text: Cow::Owned(text),
                });
            }
            b'[' => {
                // RFC 5322 §3.4.1 domain-literal, kept whole.
                let end = memchr::memchr(b']', &s[pos..]).map_or(s.len(), |i| pos + i + 1);
                let raw = &s[pos..end];
                toks.push(Tok::Word {
                    raw,
                    text: Cow::Borrowed(raw),
                });
                pos = end;
            }
            _ if is_special(b) => {
                toks.push(Tok::Special(b));
                pos += 1;
            }
            _ => {
                let start = pos;
                while let Some(&c) = s.get(pos) {
                    if c <= b' ' || is_special(c) || matches!(c, b'(' | b'"' | b'[') {
                        break;
                    }
                    pos += 1;
                }
                let raw = &s[start..pos];
                toks.push(Tok::Word {
                    raw,
                    text: Cow::Borrowed(raw),
                });
            }
        }
    }
    toks
}

/// Words of a phrase joined by single spaces (folding whitespace collapses to one SP).
fn phrase(toks: &[Tok<'_>]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for t in toks {
        if let Tok::Word { text, .. } = t {
            if !out.is_empty() {
                out.push(b' ');
            }
            out.extend_from_slice(text);
        }
    }
    (!out.is_empty()).then_some(out)
}

fn raw_concat(toks: &[Tok<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in toks {
        match t {
            Tok::Word { raw, .. } => out.extend_from_slice(raw),
            Tok::Special(b) => out.push(*b),
            Tok::Comment(_) => {}
        }
    }
    out
}

/// RFC 5322 §3.4.1 addr-spec: local-part "@" domain, split at the last '@'.
/// Local parts keep their quotes so `mailbox "@" host` reassembles a usable address.
fn addr_spec(toks: &[Tok<'_>]) -> (Vec<u8>, Vec<u8>) {
    let at = toks.iter().rposition(|t| matches!(t, Tok::Special(b'@')));
    let words = |ts: &[Tok<'_>]| {
        let mut out = Vec::new();
        for t in ts {
            if let Tok::Word { raw, .. } = t {
                out.extend_from_slice(raw);
            }
        }
        out
    };
    match at {
        Some(i) => (words(&toks[..i]), words(&toks[i + 1..])),
        None => (phrase_raw(toks), Vec::new()),
    }
}

/// Without an '@' there is no local-part grammar to rely on; keep the words as written.
fn phrase_raw(toks: &[Tok<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in toks {
        if let Tok::Word { raw, .. } = t {
            if !out.is_empty() {
                out.push(b' ');
            }
            out.extend_from_slice(raw);
        }
    }
    out
}

/// The tokens of one address between separators.
#[derive(Default)]
struct Entry<'a> {
    words: Vec<Tok<'a>>,
    angle: Option<Vec<Tok<'a>>>,
    comment: Option<&'a [u8]>,
}

impl Entry<'_> {
    fn flush(&mut self, out: &mut Vec<Address>) {
        let words = std::mem::take(&mut self.words);
        let angle = self.angle.take();
        let comment = self.comment.take();
        match angle {
            Some(route) => {
                // RFC 5322 §4.4 obs-route: "<@a,@b:user@host>", the part before ':' is the adl.
                let (adl, spec) = match route.first() {
                    Some(Tok::Special(b'@')) => match route.iter().position(|t| matches!(t, Tok::Special(b':'))) {
                        Some(colon) => (Some(raw_concat(&route[..colon])), &route[colon + 1..]),
                        None => (None, &route[..]),
                    },
                    _ => (None, &route[..]),
                };
                let (mailbox, mut host) = addr_spec(spec);
                if host.is_empty() && !mailbox.is_empty() {
                    host = MISSING_HOST.to_vec();
                }
                out.push(Address::Mailbox {
                    name: phrase(&words),
                    adl,
                    mailbox,
                    host,
                });
            }
            None if words.iter().any(|t| matches!(t, Tok::Word { .. })) => {
                let (mailbox, mut host) = addr_spec(&words);
                if host.is_empty() {
                    host = MISSING_HOST.to_vec();
                }
                // c-client convention: "user@host (Real Name)" uses the comment as the name.
                let name = comment
                    .map(|c| super::header::trim(c).to_vec())
                    .filter(|c| !c.is_empty());
                out.push(Address::Mailbox {
                    name,
                    adl: None,
                    mailbox,
                    host,
                });
            }
            // Nothing but separators or comments: no address at all.
            None => {}
        }
    }
}

/// Parses an unfolded address-list header value.
pub(crate) fn parse_address_list(value: &[u8]) -> Vec<Address> {
    let toks = tokenize(value);
    let mut out = Vec::new();
    let mut entry = Entry::default();
    let mut in_group = false;
    let mut i = 0;
    while let Some(t) = toks.get(i) {
        i += 1;
        match t {
            Tok::Special(b'<') => {
                if entry.angle.is_some() {
                    // A second angle-addr with no comma in between: treat as two addresses.
                    entry.flush(&mut out);
                }
                let mut route = Vec::new();
                while let Some(t) = toks.get(i) {
                    i += 1;
                    if matches!(t, Tok::Special(b'>')) {
                        break;
                    }
                    if !matches!(t, Tok::Comment(_)) {
                        route.push(t.clone());
                    }
                }
                entry.angle = Some(route);
            }
            Tok::Special(b',') => entry.flush(&mut out),
            Tok::Special(b':') if !in_group && entry.angle.is_none() => {
                // RFC 5322 §3.4 group: display-name ":" [group-list] ";"
                let name = phrase(&entry.words).unwrap_or_default();
                entry = Entry::default();
                out.push(Address::GroupStart(name));
                in_group = true;
            }
            Tok::Special(b';') => {
                entry.flush(&mut out);
                if in_group {
                    out.push(Address::GroupEnd);
                    in_group = false;
                }
            }
            Tok::Special(b'@') | Tok::Word { .. } => entry.words.push(t.clone()),
            Tok::Comment(c) => entry.comment = Some(c),
            // Stray '>' or a ':' that cannot start a group.
            Tok::Special(_) => {}
        }
    }
    entry.flush(&mut out);
    if in_group {
        // An unterminated group is closed so clients see balanced markers.
        out.push(Address::GroupEnd);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(name: Option<&str>, mailbox: &str, host: &str) -> Address {
        Address::Mailbox {
            name: name.map(|n| n.as_bytes().to_vec()),
            adl: None,
            mailbox: mailbox.as_bytes().to_vec(),
            host: host.as_bytes().to_vec(),
        }
    }

    #[test]
    fn table() {
        let missing = std::str::from_utf8(MISSING_HOST).unwrap();
        let cases: Vec<(&str, Vec<Address>)> = vec![
            ("gray@cac.washington.edu", vec![mb(None, "gray", "cac.washington.edu")]),
            (
                "Terry Gray <gray@cac.washington.edu>",
                vec![mb(Some("Terry Gray"), "gray", "cac.washington.edu")],
            ),
            (
                "\"Gray, Terry\" <gray@cac>",
                vec![mb(Some("Gray, Terry"), "gray", "cac")],
            ),
            ("gray@cac (Terry Gray)", vec![mb(Some("Terry Gray"), "gray", "cac")]),
            (
                "minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>",
                vec![
                    mb(None, "minutes", "CNRI.Reston.VA.US"),
                    mb(Some("John Klensin"), "KLENSIN", "MIT.EDU"),
                ],
            ),
            (
                "=?utf-8?q?J=C3=B6rg?= <j@x>",
                vec![mb(Some("=?utf-8?q?J=C3=B6rg?="), "j", "x")],
            ),
            (
                "\"john doe\"@example.com",
                vec![mb(None, "\"john doe\"", "example.com")],
            ),
            (
                "undisclosed-recipients:;",
                vec![
                    Address::GroupStart(b"undisclosed-recipients".to_vec()),
                    Address::GroupEnd,
                ],
            ),
            (
                "A Group: a@x, B <b@y>; c@z",
                vec![
                    Address::GroupStart(b"A Group".to_vec()),
                    mb(None, "a", "x"),
                    mb(Some("B"), "b", "y"),
                    Address::GroupEnd,
                    mb(None, "c", "z"),
                ],
            ),
            (
                "G: a@x",
                vec![
                    Address::GroupStart(b"G".to_vec()),
                    mb(None, "a", "x"),
                    Address::GroupEnd,
                ],
            ),
            ("undisclosed", vec![mb(None, "undisclosed", missing)]),
            ("<>", vec![mb(None, "", "")]),
            (", ,(only comment)", vec![]),
            ("<a@x> <b@y>", vec![mb(None, "a", "x"), mb(None, "b", "y")]),
            ("a@[127.0.0.1]", vec![mb(None, "a", "[127.0.0.1]")]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_address_list(input.as_bytes()), want, "input {input:?}");
        }
    }

    #[test]
    fn source_route() {
        let got = parse_address_list(b"Joe <@a.example,@b.example:joe@c.example>");
        assert_eq!(
            got,
            vec![Address::Mailbox {
                name: Some(b"Joe".to_vec()),
                adl: Some(b"@a.example,@b.example".to_vec()),
                mailbox: b"joe".to_vec(),
                host: b"c.example".to_vec(),
            }]
        );
    }

    #[test]
    fn garbage_terminates() {
        for input in [
            &b"((((("[..],
            b"\"",
            b"\\",
            b"<",
            b">;;::,,@@",
            b"a(b\\",
            b"\xff\xfe<\x80@\x81>",
            // Found by the mime_ingest fuzzer: a control byte stopped the word arm without
            // consuming it, and empty words were pushed until memory ran out.
            b"a\x01b",
            b"\x1f",
            b"<a\x00b@c\x7f>",
        ] {
            let _ = parse_address_list(input);
        }
    }

    #[test]
    fn control_bytes_separate_words() {
        let list = parse_address_list(b"Ann\x01Lee <ann@example.org>");
        assert_eq!(list.len(), 1, "{list:?}");
    }
}
