//! The ENVELOPE rendered at delivery (RFC 3501 §7.4.2, RFC 9051 §7.5.2), read back for the keys
//! the RFCs define on it: SEARCH FROM, TO, CC and BCC ("the envelope structure's FROM field",
//! RFC 9051 §6.4.4), SORT FROM, TO and CC (the addr-mailbox of the first address, RFC 5256 §3),
//! SORT DISPLAYFROM and DISPLAYTO (RFC 5957 §3), and SEARCH SENT*'s Date text.
//!
//! Reads only the IMAP syntax the MIME layer wrote (quoted strings, literals, NIL, lists), never
//! the message: addresses are parsed once, at ingest. Group syntax (RFC 5322 §3.4) comes back as
//! the ENVELOPE has it: a start marker whose addr-mailbox is the group name and whose addr-host
//! is NIL, the members, and an end marker that is all NIL. Never panics; the reader borrows from
//! the stored text, copying only a quoted string that holds a `\`, and text that does not parse
//! (a damaged store) reads as no addresses.

use std::borrow::Cow;

use mail_parser::parsers::MessageStream;
use mail_parser::HeaderValue;

/// An address field of the ENVELOPE, numbered by its place in it (RFC 9051 §7.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    From = 2,
    To = 5,
    Cc = 6,
    Bcc = 7,
}

/// One ENVELOPE address structure: `(addr-name addr-adl addr-mailbox addr-host)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address<'e> {
    /// The display name as sent, RFC 2047 encoded-words still encoded.
    pub name: Option<Cow<'e, [u8]>>,
    /// The obsolete source route (RFC 5322 §4.4).
    pub adl: Option<Cow<'e, [u8]>>,
    /// The local part; the group name in a group start marker.
    pub mailbox: Option<Cow<'e, [u8]>>,
    /// The domain; NIL in group markers.
    pub host: Option<Cow<'e, [u8]>>,
}

// The MIME layer writes MISSING_HOST as the host of an address that has none ("To:
// undisclosed"), since a NIL host would make it a group marker (c-client's convention); it
// stands for NIL wherever a key looks at the host.
use crate::mime::MISSING_HOST;

impl Address<'_> {
    /// The host, `None` when NIL, empty (`<>`) or the missing-host placeholder.
    pub fn host(&self) -> Option<&[u8]> {
        self.host.as_deref().filter(|h| !h.is_empty() && *h != MISSING_HOST)
    }

    /// RFC 5957 §3, the DISPLAY sort value of an address: the addr-name with RFC 2047
    /// encoded-words decoded (§6.2), when that is not empty; else `addr-mailbox@addr-host`; else
    /// the addr-mailbox (a group's name); else empty.
    pub fn display(&self) -> Cow<'_, str> {
        if let Some(name) = self.name.as_deref() {
            let name = decode_words(name);
            if !name.is_empty() {
                return name;
            }
        }
        let mailbox = self.mailbox.as_deref().map(String::from_utf8_lossy);
        match (mailbox, self.host()) {
            (Some(mailbox), Some(host)) => format!("{mailbox}@{}", String::from_utf8_lossy(host)).into(),
            (Some(mailbox), None) => mailbox,
            (None, _) => Cow::Borrowed(""),
        }
    }
}

/// The first address of a field (a group's start marker, when the field opens with a group).
pub fn first_address(envelope: &str, field: Field) -> Option<Address<'_>> {
    addresses(envelope, field).next()
}

/// The addresses of a field, in order, group markers included; none when it is NIL.
pub fn addresses(envelope: &str, field: Field) -> Addresses<'_> {
    let mut c = Cursor(envelope.as_bytes());
    let at_field = c.eat(b'(') && (0..field as usize).all(|_| c.skip_item() && c.eat(b' '));
    Addresses {
        cursor: if at_field && c.eat(b'(') { c } else { Cursor(b"") },
    }
}

/// The Date text that opens the ENVELOPE; `None` for NIL.
pub fn date(envelope: &str) -> Option<Cow<'_, [u8]>> {
    let mut c = Cursor(envelope.as_bytes());
    if !c.eat(b'(') {
        return None;
    }
    c.nstring()?
}

/// Iterator over the address structures of one field.
#[derive(Debug, Clone)]
pub struct Addresses<'e> {
    cursor: Cursor<'e>,
}

impl<'e> Iterator for Addresses<'e> {
    type Item = Address<'e>;

    fn next(&mut self) -> Option<Address<'e>> {
        let address = self.cursor.address();
        if address.is_none() {
            // The closing ')' or damage: either way the list is over.
            self.cursor = Cursor(b"");
        }
        address
    }
}

/// Writes a field's addresses as one line of text, the form SEARCH FROM/TO/CC/BCC match
/// against (as Dovecot does): `Name <mailbox@host>` or `mailbox@host`, `, ` between addresses,
/// `group: member, member;` for groups. Display names have their encoded-words decoded and
/// appear unquoted, as the ENVELOPE has them; comments are not part of it, except the c-client
/// comment name the ENVELOPE uses as addr-name. Returns whether the field has any address.
pub fn write_text(addresses: Addresses<'_>, out: &mut Vec<u8>) -> bool {
    let mut any = false;
    let mut in_group = false;
    // What goes before the next address or group: nothing, ", ", or " " after a group's ':'.
    let mut separator: &[u8] = b"";
    for a in addresses {
        any = true;
        match (&a.mailbox, &a.host) {
            // RFC 3501 §7.4.2: a NIL host marks group syntax; a NIL mailbox ends the group.
            (Some(group), None) if !in_group => {
                out.extend_from_slice(separator);
                out.extend_from_slice(group);
                out.push(b':');
                in_group = true;
                separator = b" ";
            }
            (None, None) => {
                out.push(b';');
                in_group = false;
                separator = b", ";
            }
            _ => {
                out.extend_from_slice(separator);
                write_address(&a, out);
                separator = b", ";
            }
        }
    }
    any
}

fn write_address(a: &Address<'_>, out: &mut Vec<u8>) {
    let name = a.name.as_deref().map(decode_words).filter(|n| !n.is_empty());
    let angle = name.is_some() || a.adl.is_some();
    if let Some(name) = &name {
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
    }
    if angle {
        out.push(b'<');
    }
    if let Some(adl) = &a.adl {
        out.extend_from_slice(adl);
        out.push(b':');
    }
    out.extend_from_slice(a.mailbox.as_deref().unwrap_or_default());
    if let Some(host) = a.host() {
        out.push(b'@');
        out.extend_from_slice(host);
    }
    if angle {
        out.push(b'>');
    }
}

/// Text with RFC 2047 encoded-words decoded (§6.2: whitespace between adjacent encoded-words
/// goes too); text without any is returned as it is.
fn decode_words(text: &[u8]) -> Cow<'_, str> {
    if memchr::memmem::find(text, b"=?").is_none() {
        return String::from_utf8_lossy(text);
    }
    let mut line = Vec::with_capacity(text.len() + 2);
    line.extend_from_slice(text);
    line.extend_from_slice(b"\r\n");
    match MessageStream::new(&line).parse_unstructured() {
        HeaderValue::Text(t) => Cow::Owned(t.into_owned()),
        _ => String::from_utf8_lossy(text),
    }
}

/// A position in the rendered ENVELOPE.
#[derive(Debug, Clone, Copy)]
struct Cursor<'e>(&'e [u8]);

impl<'e> Cursor<'e> {
    fn eat(&mut self, b: u8) -> bool {
        match self.0.split_first() {
            Some((&first, rest)) if first == b => {
                self.0 = rest;
                true
            }
            _ => false,
        }
    }

    fn take(&mut self, n: usize) -> Option<&'e [u8]> {
        let taken = self.0.get(..n)?;
        self.0 = &self.0[n..];
        Some(taken)
    }

    /// nstring: `Some(None)` for NIL, `None` when the text is not an nstring.
    fn nstring(&mut self) -> Option<Option<Cow<'e, [u8]>>> {
        match self.0.first()? {
            b'N' if self.0.starts_with(b"NIL") => {
                self.0 = &self.0[3..];
                Some(None)
            }
            b'"' => self.quoted().map(Some),
            b'{' => self.literal().map(|l| Some(Cow::Borrowed(l))),
            _ => None,
        }
    }

    /// quoted = DQUOTE *QUOTED-CHAR DQUOTE, `\"` and `\\` unescaped.
    fn quoted(&mut self) -> Option<Cow<'e, [u8]>> {
        let body = &self.0[1..];
        let mut i = 0;
        let mut escaped = false;
        while *body.get(i)? != b'"' {
            escaped |= body[i] == b'\\';
            i += if body[i] == b'\\' { 2 } else { 1 };
        }
        self.0 = &body[i + 1..];
        let raw = &body[..i];
        if !escaped {
            return Some(Cow::Borrowed(raw));
        }
        let mut text = Vec::with_capacity(raw.len());
        let mut bytes = raw.iter();
        while let Some(&b) = bytes.next() {
            text.push(if b == b'\\' { *bytes.next()? } else { b });
        }
        Some(Cow::Owned(text))
    }

    /// literal = "{" number "}" CRLF *CHAR8.
    fn literal(&mut self) -> Option<&'e [u8]> {
        let close = memchr::memchr(b'}', self.0)?;
        let n: usize = std::str::from_utf8(&self.0[1..close]).ok()?.parse().ok()?;
        self.take(close + 1)?;
        self.take(2).filter(|crlf| *crlf == b"\r\n")?;
        self.take(n)
    }

    /// One field of the ENVELOPE, whatever it is: an nstring or a parenthesized list.
    fn skip_item(&mut self) -> bool {
        if !self.eat(b'(') {
            return self.nstring().is_some();
        }
        // An address list is a list of lists: count the depth rather than recurse.
        let mut depth = 1usize;
        while depth > 0 {
            if self.eat(b'(') {
                depth += 1;
            } else if self.eat(b')') {
                depth -= 1;
            } else if !self.eat(b' ') && self.nstring().is_none() {
                return false;
            }
        }
        true
    }

    /// One `(name adl mailbox host)`, or `None` at the list's `)` or on damage.
    fn address(&mut self) -> Option<Address<'e>> {
        if !self.eat(b'(') {
            return None;
        }
        let name = self.nstring()?;
        let mut next = || if self.eat(b' ') { self.nstring() } else { None };
        let (adl, mailbox, host) = (next()?, next()?, next()?);
        self.eat(b')').then_some(Address {
            name,
            adl,
            mailbox,
            host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ENVELOPE the MIME layer renders for a header block.
    fn envelope(header: &str) -> String {
        let message = format!("{header}\r\n\r\nbody\r\n");
        crate::mime::analyze(message.as_bytes())
            .expect("fixtures are valid")
            .envelope
    }

    fn text(envelope: &str, field: Field) -> (String, bool) {
        let mut out = Vec::new();
        let any = write_text(addresses(envelope, field), &mut out);
        (String::from_utf8(out).expect("fixtures are UTF-8"), any)
    }

    #[test]
    fn address_text() {
        // Rows: header, field, text, whether the field has addresses.
        let cases: &[(&str, Field, &str, bool)] = &[
            ("From: user@domain.org", Field::From, "user@domain.org", true),
            (
                "From: User <user@domain.org>",
                Field::From,
                "User <user@domain.org>",
                true,
            ),
            ("From: \"Doe, Jane\" <j@x>", Field::From, "Doe, Jane <j@x>", true),
            ("From: \"a \\\"q\\\" b\" <j@x>", Field::From, "a \"q\" b <j@x>", true),
            ("From: <u (c)@ (c) d.org>", Field::From, "u@d.org", true),
            ("From: u@d.org (Real Name)", Field::From, "Real Name <u@d.org>", true),
            (
                "From: =?utf-8?q?J=C3=B6rg?= =?utf-8?q?_M?= <j@x>",
                Field::From,
                "Jörg M <j@x>",
                true,
            ),
            ("From: \"Jörg\" <j@x>", Field::From, "Jörg <j@x>", true),
            ("To: a@x, B <b@y>", Field::To, "a@x, B <b@y>", true),
            (
                "To: g1: a@x, b@y;, g2: c@z;",
                Field::To,
                "g1: a@x, b@y;, g2: c@z;",
                true,
            ),
            (
                "Cc: undisclosed-recipients:;",
                Field::Cc,
                "undisclosed-recipients:;",
                true,
            ),
            ("Cc: G:; c@z", Field::Cc, "G:;, c@z", true),
            ("Bcc: undisclosed", Field::Bcc, "undisclosed", true),
            (
                "Bcc: Joe <@a.x,@b.x:joe@c.x>",
                Field::Bcc,
                "Joe <@a.x,@b.x:joe@c.x>",
                true,
            ),
            ("To: a@x", Field::Cc, "", false),
            ("Cc:", Field::Cc, "", false),
        ];
        for &(header, field, want, any) in cases {
            let env = envelope(header);
            assert_eq!(text(&env, field), (want.to_string(), any), "{header:?}");
        }
    }

    #[test]
    fn first_addresses_and_display() {
        // Rows: header, field, addr-mailbox of the first address, its DISPLAY value.
        let cases: &[(&str, Field, Option<&str>, &str)] = &[
            ("From: Terry Gray <gray@cac>", Field::From, Some("gray"), "Terry Gray"),
            ("From: gray@cac (Terry Gray)", Field::From, Some("gray"), "Terry Gray"),
            ("From: \"\" <bob@x>", Field::From, Some("bob"), "bob@x"),
            ("From: =?utf-8?q?=C3=89mile?= <e@x>", Field::From, Some("e"), "Émile"),
            ("From: =?utf-8?q?_?= <blank@x>", Field::From, Some("blank"), " "),
            // RFC 5957 §3: a group's start marker has no host, so its mailbox, the group name.
            ("To: Team: a@x, B <b@y>;", Field::To, Some("Team"), "Team"),
            (
                "To: undisclosed-recipients:;",
                Field::To,
                Some("undisclosed-recipients"),
                "undisclosed-recipients",
            ),
            ("To: undisclosed", Field::To, Some("undisclosed"), "undisclosed"),
            (
                "To: \"john doe\"@example.com",
                Field::To,
                Some("\"john doe\""),
                "\"john doe\"@example.com",
            ),
            ("Cc: , c@z", Field::Cc, Some("c"), "c@z"),
            ("Subject: none", Field::Cc, None, ""),
        ];
        for &(header, field, mailbox, display) in cases {
            let env = envelope(header);
            let first = first_address(&env, field);
            let got_mailbox = first
                .as_ref()
                .and_then(|a| a.mailbox.as_deref())
                .map(String::from_utf8_lossy);
            assert_eq!(got_mailbox.as_deref(), mailbox, "{header:?}");
            assert_eq!(
                first.as_ref().map_or(Cow::Borrowed(""), Address::display),
                display,
                "{header:?}"
            );
        }
    }

    #[test]
    fn dates_and_damage() {
        let env = envelope("Date: Tue, 1 Apr 2025 10:00:00 +0000\r\nFrom: a@x");
        assert_eq!(date(&env).as_deref(), Some(&b"Tue, 1 Apr 2025 10:00:00 +0000"[..]));
        assert_eq!(date("(\"a \\\" b\" NIL)").as_deref(), Some(&b"a \" b"[..]));
        assert_eq!(date("({5}\r\nGr\u{fc} NIL)").as_deref(), Some("Gr\u{fc} ".as_bytes()));
        assert_eq!(date("(NIL NIL)"), None);
        assert_eq!(date("({99}\r\nshort"), None);
        // Damaged or truncated text gives no addresses and never panics.
        let whole = envelope("From: A <a@x>\r\nTo: b@y\r\nCc: G: c@z;");
        for cut in 0..whole.len() {
            let Some(part) = whole.get(..cut) else { continue };
            for field in [Field::From, Field::To, Field::Cc, Field::Bcc] {
                let _ = text(part, field);
                let _ = first_address(part, field).map(|a| a.display().into_owned());
            }
        }
        for junk in [
            "",
            "(",
            "((",
            "(NIL NIL ((",
            "(\"",
            "({x}",
            "(NIL NIL ((NIL NIL \"a\"",
            "(NIL NIL ((\"\\",
        ] {
            assert_eq!(text(junk, Field::From), (String::new(), false), "{junk:?}");
        }
        // A list cut short still gives the addresses before the cut.
        assert_eq!(
            text("(NIL NIL ((NIL NIL \"g\" NIL)(NIL NIL \"a\"", Field::From),
            ("g:".to_string(), true)
        );
    }
}
