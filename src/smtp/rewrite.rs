//! The header edits of message submission (RFC 6409 §8), on the raw bytes before ingest: a
//! Received: trace field on top (RFC 5321 §4.4), Bcc: removed, From:, Date: and Message-ID:
//! added when missing, and every From: address checked against the authenticated user.
//!
//! Works on a message with canonical CRLF line endings; nothing else in it is touched. Clock-
//! and randomness-free: the caller passes the time and a unique token.

use std::net::IpAddr;

use super::addr::Served;
use super::date;
use crate::mime;

/// What the Received: field and the added fields say.
pub struct Stamp<'a> {
    pub hostname: &'a str,
    pub helo: &'a str,
    pub peer: IpAddr,
    pub user: &'a str,
    /// e.g. "TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384"; None without TLS.
    pub tls: Option<&'a str>,
    /// This server's id for the transaction, in the Received: id clause.
    pub id: &'a str,
    pub now: i64,
    /// Unique within this host, for a Message-ID.
    pub unique: &'a str,
    /// The envelope sender, for a missing From:.
    pub sender: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("message has no header/body separator")]
    NoSeparator,
    /// RFC 6409 §6.1: the From: address is not one the user may use.
    #[error("From: address {0} is not the user's")]
    NotYours(String),
}

/// One header field: its name and all its bytes (name, value, folds, final CRLF).
struct Field<'a> {
    name: &'a [u8],
    raw: &'a [u8],
}

/// Applies the edits; returns the new header and where the body (the blank line that ends the
/// header, then the text) starts in `message`, so a large body is never copied here.
pub fn submission_header(message: &[u8], stamp: &Stamp<'_>, served: &Served) -> Result<(Vec<u8>, usize), RewriteError> {
    let header_end = header_end(message).ok_or(RewriteError::NoSeparator)?;
    let header = &message[..header_end];
    let fields = split_fields(header);
    let has = |name: &str| fields.iter().any(|f| f.name.eq_ignore_ascii_case(name.as_bytes()));
    for from in fields.iter().filter(|f| f.name.eq_ignore_ascii_case(b"From")) {
        check_from(from, stamp.user, served)?;
    }
    let mut out = Vec::with_capacity(header.len() + 512);
    received(&mut out, stamp);
    for f in &fields {
        // RFC 6409 §8 leaves Bcc: to the MSA; it must not reach any recipient.
        if !f.name.eq_ignore_ascii_case(b"Bcc") && !f.name.eq_ignore_ascii_case(b"Resent-Bcc") {
            out.extend_from_slice(f.raw);
        }
    }
    if !has("From") {
        push_field(&mut out, "From", &format!("<{}>", stamp.sender));
    }
    // RFC 6409 §8.2 and §8.3.
    if !has("Date") {
        push_field(&mut out, "Date", &date::rfc5322(stamp.now));
    }
    if !has("Message-ID") {
        push_field(
            &mut out,
            "Message-ID",
            &format!("<{}@{}>", stamp.unique, stamp.hostname),
        );
    }
    Ok((out, header_end))
}

/// Where the header ends: after the CRLF of its last field, where the blank line starts.
fn header_end(message: &[u8]) -> Option<usize> {
    if message.starts_with(b"\r\n") {
        return Some(0);
    }
    memchr::memmem::find(message, b"\r\n\r\n").map(|i| i + 2)
}

fn split_fields(header: &[u8]) -> Vec<Field<'_>> {
    // (name, where the field starts, where it ends so far)
    let mut spans: Vec<(&[u8], usize, usize)> = Vec::new();
    let mut start = 0;
    while start < header.len() {
        let end = memchr::memchr(b'\n', &header[start..]).map_or(header.len(), |i| start + i + 1);
        let line = &header[start..end];
        let continues = matches!(line.first(), Some(b' ' | b'\t'));
        match spans.last_mut() {
            // RFC 5322 §2.2.3: a folded line belongs to the field before it.
            Some(last) if continues => last.2 = end,
            _ => {
                let name = line.split(|&b| b == b':').next().unwrap_or_default();
                spans.push((name.trim_ascii_end(), start, end));
            }
        }
        start = end;
    }
    spans
        .into_iter()
        .map(|(name, from, to)| Field {
            name,
            raw: &header[from..to],
        })
        .collect()
}

fn check_from(field: &Field<'_>, user: &str, served: &Served) -> Result<(), RewriteError> {
    let value = field.raw.get(field.name.len() + 1..).unwrap_or_default();
    let value = value.trim_ascii_start();
    let addresses = mime::addr_specs(value);
    if addresses.is_empty() {
        // The field as written, unfolded (a folded field's line breaks must not reach a reply).
        let shown = String::from_utf8_lossy(value)
            .split_ascii_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        return Err(RewriteError::NotYours(shown));
    }
    match addresses.into_iter().find(|a| !served.owned_by(a, user)) {
        Some(foreign) => Err(RewriteError::NotYours(foreign)),
        None => Ok(()),
    }
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// RFC 5321 §4.4 trace field; RFC 3848 names the protocol: ESMTPSA with TLS, ESMTPA without.
fn received(out: &mut Vec<u8>, s: &Stamp<'_>) {
    let protocol = if s.tls.is_some() { "ESMTPSA" } else { "ESMTPA" };
    let mut text = format!(
        "from {} ([{}])\r\n\tby {} (ringmail) with {protocol} id {}",
        token(s.helo),
        s.peer,
        s.hostname,
        token(s.id)
    );
    if let Some(tls) = s.tls {
        text.push_str(&format!("\r\n\t(using {})", token_spaced(tls)));
    }
    text.push_str(&format!(
        "\r\n\t(authenticated as {});\r\n\t{}",
        token(s.user),
        date::rfc5322(s.now)
    ));
    push_field(out, "Received", &text);
}

/// Client-chosen text kept to characters that cannot break the field's syntax.
fn token(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._:[]@+".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn token_spaced(text: &str) -> String {
    text.split(' ').map(token).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp<'static> {
        Stamp {
            hostname: "mx.test",
            helo: "laptop (evil)",
            peer: "192.0.2.7".parse().unwrap(),
            user: "bob",
            tls: Some("TLSv1.3 with cipher TLS13_AES_128_GCM_SHA256"),
            id: "1A",
            now: 0,
            unique: "u1",
            sender: "bob@example.org",
        }
    }

    fn served() -> Served {
        Served::Domains(vec!["example.org".into()])
    }

    fn edit(message: &str) -> Result<String, RewriteError> {
        submission_header(message.as_bytes(), &stamp(), &served())
            .map(|(header, body)| String::from_utf8([&header, &message.as_bytes()[body..]].concat()).unwrap())
    }

    #[test]
    fn adds_trace_date_and_id_and_strips_bcc() {
        let out = edit(
            "From: Bob <bob@example.org>\r\nBcc: secret@x.org,\r\n\tother@y.org\r\nSubject: hi\r\n\r\nBcc: body\r\n",
        )
        .unwrap();
        let expected = "Received: from laptop??evil? ([192.0.2.7])\r\n\
                        \tby mx.test (ringmail) with ESMTPSA id 1A\r\n\
                        \t(using TLSv1.3 with cipher TLS13_AES_128_GCM_SHA256)\r\n\
                        \t(authenticated as bob);\r\n\
                        \tThu, 1 Jan 1970 00:00:00 +0000\r\n\
                        From: Bob <bob@example.org>\r\nSubject: hi\r\n\
                        Date: Thu, 1 Jan 1970 00:00:00 +0000\r\nMessage-ID: <u1@mx.test>\r\n\
                        \r\nBcc: body\r\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn keeps_what_is_there() {
        let msg = "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-Id: <x@y>\r\nFrom: bob@example.org\r\n\r\nhi\r\n";
        let out = edit(msg).unwrap();
        assert!(out.ends_with(msg), "{out}");
        let headerless = edit("\r\nbody only\r\n").unwrap();
        assert!(headerless.contains("From: <bob@example.org>\r\n"));
        assert!(headerless.ends_with("\r\n\r\nbody only\r\n"));
    }

    #[test]
    fn from_must_be_the_users() {
        assert_eq!(
            edit("From: Carol <carol@example.org>\r\n\r\nx\r\n"),
            Err(RewriteError::NotYours("carol@example.org".into()))
        );
        assert_eq!(
            edit("From: bob@example.org, eve@evil.net\r\n\r\nx\r\n"),
            Err(RewriteError::NotYours("eve@evil.net".into()))
        );
        assert!(matches!(
            edit("From: undisclosed-recipients:;\r\n\r\nx\r\n"),
            Err(RewriteError::NotYours(_))
        ));
        assert!(edit("FROM : \"Bob B.\" <BOB+x@Example.org>\r\n\r\nx\r\n").is_ok());
        assert_eq!(edit("Subject: no blank line\r\n"), Err(RewriteError::NoSeparator));
    }
}
