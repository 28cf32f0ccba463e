//! Rendering of the IMAP ENVELOPE, BODY and BODYSTRUCTURE fetch items from the entity tree
//! (RFC 3501 §7.4.2, RFC 9051 §7.5.2, grammar in RFC 3501 §9 / RFC 9051 §9).
//!
//! Owns IMAP string syntax (quoted, literal, NIL). Produces text once, at delivery; it never
//! looks at a session's state, so it only emits forms every IMAP4rev1 client accepts: 8-bit or
//! multi-line values always go out as synchronizing literals. It never parses MIME itself.

use std::borrow::Cow;

use super::address::{parse_address_list, Address};
use super::header::{parse_disposition, parse_language, Headers, Param};
use super::structure::{count_lines, Entity, Kind};

/// Appends an IMAP `string`: quoted when every byte is a TEXT-CHAR (RFC 3501 §9 quoted), else a
/// literal `{n}\r\n` followed by the bytes.
///
/// Stored renderings are Rust strings, so bytes that are not UTF-8 (raw 8-bit headers in some
/// legacy charset, which RFC 5322 does not allow and RFC 6532 only allows as UTF-8) are replaced
/// by U+FFFD before the literal length is taken. The length always matches what is sent.
pub(crate) fn string(out: &mut String, bytes: &[u8]) {
    let quotable = bytes
        .iter()
        .all(|&b| (0x01..=0x7f).contains(&b) && b != b'\r' && b != b'\n');
    if quotable {
        out.reserve(bytes.len() + 2);
        out.push('"');
        for &b in bytes {
            if b == b'"' || b == b'\\' {
                out.push('\\');
            }
            out.push(char::from(b));
        }
        out.push('"');
    } else {
        let text = String::from_utf8_lossy(bytes);
        out.push('{');
        out.push_str(&text.len().to_string());
        out.push_str("}\r\n");
        out.push_str(&text);
    }
}

/// Appends an `nstring`: NIL when absent.
pub(crate) fn nstring(out: &mut String, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => string(out, b),
        None => out.push_str("NIL"),
    }
}

/// RFC 3501 §9 body-fld-param: `("NAME" "value" ...)` or NIL. Names are uppercased like the
/// other keywords; values are kept as sent.
fn params(out: &mut String, params: &[Param]) {
    if params.is_empty() {
        out.push_str("NIL");
        return;
    }
    out.push('(');
    for (i, p) in params.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        string(out, &p.name.to_ascii_uppercase());
        out.push(' ');
        string(out, &p.value);
    }
    out.push(')');
}

fn upper(out: &mut String, s: &str) {
    string(out, s.to_ascii_uppercase().as_bytes());
}

/// RFC 3501 §9 env-from etc.: `(` 1*address `)` or NIL. The grammar has no space between
/// addresses (the §7.4.2 example prints one; the grammar is normative).
fn address_list(out: &mut String, list: &[Address]) {
    if list.is_empty() {
        out.push_str("NIL");
        return;
    }
    out.push('(');
    for a in list {
        out.push('(');
        match a {
            Address::Mailbox {
                name,
                adl,
                mailbox,
                host,
            } => {
                nstring(out, name.as_deref());
                out.push(' ');
                nstring(out, adl.as_deref());
                out.push(' ');
                string(out, mailbox);
                out.push(' ');
                string(out, host);
            }
            Address::GroupStart(name) => {
                out.push_str("NIL NIL ");
                string(out, name);
                out.push_str(" NIL");
            }
            Address::GroupEnd => out.push_str("NIL NIL NIL NIL"),
        }
        out.push(')');
    }
    out.push(')');
}

/// The ENVELOPE of a message whose header is `h` (RFC 3501 §7.4.2, RFC 9051 §7.5.2).
///
/// RFC 9051 §7.5.2: Date, Subject, In-Reply-To and Message-ID are NIL when absent and "" when
/// present but empty; From, To, Cc and Bcc are NIL when absent or empty.
pub(crate) fn envelope(out: &mut String, h: &Headers<'_>) {
    let addresses = |name: &str| -> Option<Vec<Address>> { h.value(name).map(|v| parse_address_list(&v)) };
    let from = addresses("from").unwrap_or_default();
    // RFC 3501 §7.4.2: Sender and Reply-To, when absent or empty, take the value of From.
    let or_from = |list: Option<Vec<Address>>| -> Cow<'_, [Address]> {
        match list {
            Some(l) if !l.is_empty() => Cow::Owned(l),
            _ => Cow::Borrowed(&from[..]),
        }
    };
    out.push('(');
    nstring(out, h.value("date").as_deref());
    out.push(' ');
    nstring(out, h.value("subject").as_deref());
    out.push(' ');
    address_list(out, &from);
    out.push(' ');
    address_list(out, &or_from(addresses("sender")));
    out.push(' ');
    address_list(out, &or_from(addresses("reply-to")));
    for name in ["to", "cc", "bcc"] {
        out.push(' ');
        address_list(out, &addresses(name).unwrap_or_default());
    }
    out.push(' ');
    nstring(out, h.value("in-reply-to").as_deref());
    out.push(' ');
    nstring(out, h.value("message-id").as_deref());
    out.push(')');
}

/// BODY (`extended == false`) or BODYSTRUCTURE (`extended == true`) of an entity.
/// Recursion depth is bounded by `structure::MAX_DEPTH`.
pub(crate) fn body(out: &mut String, e: &Entity<'_>, msg: &[u8], extended: bool) {
    out.push('(');
    match &e.kind {
        Kind::Multipart(children) => {
            // RFC 3501 §9 body-type-mpart: 1*body SP media-subtype [SP body-ext-mpart]
            for child in children {
                body(out, child, msg, extended);
            }
            out.push(' ');
            upper(out, &e.media.sub);
            if extended {
                out.push(' ');
                params(out, &e.media.params);
                out.push(' ');
                extension_tail(out, &e.headers);
            }
        }
        _ => {
            single_part(out, e, msg, extended);
        }
    }
    out.push(')');
}

fn single_part(out: &mut String, e: &Entity<'_>, msg: &[u8], extended: bool) {
    let content = msg.get(e.body_start..e.end).unwrap_or_default();
    // RFC 3501 §9 body-fields: param, id, desc, enc, octets (size of the encoded body).
    upper(out, &e.media.ty);
    out.push(' ');
    upper(out, &e.media.sub);
    out.push(' ');
    params(out, &e.media.params);
    out.push(' ');
    nstring(out, e.headers.value("content-id").as_deref());
    out.push(' ');
    nstring(out, e.headers.value("content-description").as_deref());
    out.push(' ');
    upper(out, &e.encoding);
    out.push(' ');
    out.push_str(&content.len().to_string());
    match &e.kind {
        Kind::Message(inner) => {
            // RFC 3501 §9 body-type-msg: envelope, body and line count of the encapsulated
            // message (the whole of it, header included).
            out.push(' ');
            envelope(out, &inner.headers);
            out.push(' ');
            body(out, inner, msg, extended);
            out.push(' ');
            out.push_str(&count_lines(content).to_string());
        }
        _ if e.media.ty == "text" => {
            // RFC 3501 §9 body-type-text: body-fld-lines.
            out.push(' ');
            out.push_str(&count_lines(content).to_string());
        }
        _ => {}
    }
    if extended {
        // RFC 3501 §9 body-ext-1part: body-fld-md5 first (RFC 1864 Content-MD5 as sent).
        out.push(' ');
        nstring(out, e.headers.value("content-md5").as_deref());
        out.push(' ');
        extension_tail(out, &e.headers);
    }
}

/// body-fld-dsp SP body-fld-lang SP body-fld-loc, shared by both body-ext forms.
fn extension_tail(out: &mut String, h: &Headers<'_>) {
    // RFC 3501 §9 body-fld-dsp = "(" string SP body-fld-param ")" / nil (RFC 2183 §2).
    match h.value("content-disposition").and_then(|v| parse_disposition(&v)) {
        Some((ty, ps)) => {
            out.push('(');
            upper(out, &ty);
            out.push(' ');
            params(out, &ps);
            out.push(')');
        }
        None => out.push_str("NIL"),
    }
    out.push(' ');
    // RFC 3501 §9 body-fld-lang = nstring / "(" string *(SP string) ")" (RFC 3282 tags).
    let langs = h
        .value("content-language")
        .map(|v| parse_language(&v))
        .unwrap_or_default();
    match langs.as_slice() {
        [] => out.push_str("NIL"),
        [one] => string(out, one),
        many => {
            out.push('(');
            for (i, l) in many.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                string(out, l);
            }
            out.push(')');
        }
    }
    out.push(' ');
    // RFC 3501 §9 body-fld-loc = nstring (RFC 2557 Content-Location).
    nstring(out, h.value("content-location").as_deref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "\"\""),
            (b"plain", "\"plain\""),
            (b"a \"q\" \\ b", "\"a \\\"q\\\" \\\\ b\""),
            (b"two\r\nlines", "{10}\r\ntwo\r\nlines"),
            ("J\u{f6}rg".as_bytes(), "{5}\r\nJ\u{f6}rg"),
            (b"bad\xff", "{6}\r\nbad\u{fffd}"),
        ];
        for (input, want) in cases {
            let mut out = String::new();
            string(&mut out, input);
            assert_eq!(out, *want);
        }
        let mut out = String::new();
        nstring(&mut out, None);
        assert_eq!(out, "NIL");
    }
}
