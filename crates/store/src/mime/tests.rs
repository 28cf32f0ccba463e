//! Fixture tests for `analyze`: rendered ENVELOPE / BODY / BODYSTRUCTURE against strings derived
//! from RFC 3501 §7.4.2 and §6.4.5, section slicing, decoded metadata and previews. The fixtures
//! are shared with `robust_tests`. Owns no production code.

use super::*;

/// `lines` lines of filler text totalling exactly `size` octets; CRLF-terminated when `crlf_end`.
/// No line starts with '.', so has_dot_line stays false.
fn filler(lines: usize, size: usize, crlf_end: bool) -> String {
    let breaks = if crlf_end { lines } else { lines - 1 };
    let text = size - 2 * breaks;
    let (base, extra) = (text / lines, text % lines);
    let mut out = String::with_capacity(size);
    for i in 0..lines {
        let len = base + usize::from(i < extra);
        out.extend((0..len).map(|j| char::from(b'a' + ((i + j) % 26) as u8)));
        if i + 1 < lines || crlf_end {
            out.push_str("\r\n");
        }
    }
    assert_eq!(out.len(), size);
    out
}

/// The message of the RFC 3501 §7.4.2 FETCH example (ENVELOPE and BODY of message 12).
fn rfc3501_text() -> String {
    "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\
     From: Terry Gray <gray@cac.washington.edu>\r\n\
     Subject: IMAP4rev1 WG mtg summary and minutes\r\n\
     To: imap@cac.washington.edu\r\n\
     cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n\
     Message-Id: <B27397-0100000@cac.washington.edu>\r\n\
     MIME-Version: 1.0\r\n\
     Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
     \r\n"
        .to_string()
        + &filler(92, 3028, true)
}

/// A message whose BODY is the RFC 3501 §7.4.2 BODYSTRUCTURE example.
fn rfc3501_mixed() -> String {
    "From: gray@cac.washington.edu\r\n\
     Content-Type: multipart/mixed; boundary=\"x\"\r\n\
     \r\n\
     --x\r\n\
     Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
     \r\n"
        .to_string()
        + &filler(23, 1152, false)
        + "\r\n--x\r\n\
           Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME=cc.diff\r\n\
           Content-ID: <960723163407.20117h@cac.washington.edu>\r\n\
           Content-Description: Compiler diff\r\n\
           Content-Transfer-Encoding: BASE64\r\n\
           \r\n"
        + &filler(73, 4554, false)
        + "\r\n--x--\r\n"
}

/// The part layout of the RFC 3501 §6.4.5 section-numbering example.
pub(super) const SECTIONS: &str = "\
From: a@example.com\r\n\
Subject: sections\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
part one\r\n\
--outer\r\n\
Content-Type: application/octet-stream\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAEC\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: three\r\n\
Content-Type: multipart/mixed; boundary=\"inner3\"\r\n\
\r\n\
--inner3\r\n\
\r\n\
three one\r\n\
--inner3\r\n\
Content-Type: application/octet-stream\r\n\
\r\n\
three two\r\n\
--inner3--\r\n\
--outer\r\n\
Content-Type: multipart/mixed; boundary=\"four\"\r\n\
\r\n\
--four\r\n\
Content-Type: image/gif\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
R0lG\r\n\
--four\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
Subject: four two\r\n\
Content-Type: multipart/mixed; boundary=\"m42\"\r\n\
\r\n\
--m42\r\n\
Content-Type: text/plain\r\n\
\r\n\
four two one\r\n\
--m42\r\n\
Content-Type: multipart/alternative; boundary=\"alt\"\r\n\
\r\n\
--alt\r\n\
Content-Type: text/plain\r\n\
\r\n\
plain alt\r\n\
--alt\r\n\
Content-Type: text/richtext\r\n\
\r\n\
<bold>rich</bold>\r\n\
--alt--\r\n\
--m42--\r\n\
--four--\r\n\
--outer--\r\n\
epilogue\r\n";

const ALTERNATIVE: &str = "From: \"Doe, Jane\" <jane@example.org>\r\n\
To: Team: bob@example.org, Carol <carol@example.org>;, dave@example.org\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and more\r\n\
Date: Tue, 1 Apr 2025 10:00:00 +0200\r\n\
Message-ID: <alt-1@example.org>\r\n\
In-Reply-To: <root@example.org>\r\n\
References: <root@example.org>\r\n <mid@example.org>\r\n\
Content-Type: multipart/alternative; boundary=\"=_alt\"\r\n\
\r\n\
--=_alt\r\n\
Content-Type: text/plain; charset=\"iso-8859-1\"\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Gr=FC=DFe  aus\r\n  Berlin=\r\n!\r\n\
--=_alt\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Gr&uuml;&szlig;e</p>\r\n\
--=_alt--\r\n";

const ATTACHMENT: &str = "From: sender@example.com\r\n\
Reply-To:\r\n\
To: undisclosed-recipients:;\r\n\
Subject: report\r\n\
Content-Type: multipart/mixed; boundary=b1\r\n\
\r\n\
--b1\r\n\
\r\n\
See attached.\r\n\
--b1\r\n\
Content-Type: application/pdf; name=\"r.pdf\"\r\n\
Content-Disposition: attachment; filename=\"r.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Language: en, de\r\n\
Content-Location: http://example.com/r.pdf\r\n\
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--b1--\r\n";

const FORWARD: &str = "From: a@example.com\r\n\
Subject: fwd\r\n\
Content-Type: multipart/mixed; boundary=o\r\n\
\r\n\
--o\r\n\
Content-Type: message/rfc822\r\n\
Content-Disposition: inline\r\n\
Content-Language: fr\r\n\
\r\n\
From: b@example.com\r\n\
Subject: inner\r\n\
\r\n\
hello\r\n\
--o--\r\n";

const EMPTY_HEADER: &str = "\r\nbody";

const EIGHT_BIT: &str = "From: Jörg <j@example.de>\r\nSubject: Grüße\r\n\r\nx\r\n";

const DIGEST: &str = "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: one\r\n\r\n1\r\n--d--\r\n";

const BROKEN: &str = "Content-Type: multipart/mixed\r\nContent-Transfer-Encoding: 8bit\r\n\r\nno boundary\r\n";

const TRUNCATED: &str =
    "Content-Type: multipart/mixed; boundary=t\r\n\r\n--t\r\nContent-Type: text/plain\r\n\r\nhalf a pa";

pub(super) fn fixtures() -> Vec<(&'static str, String)> {
    vec![
        ("rfc3501_text", rfc3501_text()),
        ("rfc3501_mixed", rfc3501_mixed()),
        ("sections", SECTIONS.to_string()),
        ("alternative", ALTERNATIVE.to_string()),
        ("attachment", ATTACHMENT.to_string()),
        ("forward", FORWARD.to_string()),
        ("empty_header", EMPTY_HEADER.to_string()),
        ("eight_bit", EIGHT_BIT.to_string()),
        ("digest", DIGEST.to_string()),
        ("broken", BROKEN.to_string()),
        ("truncated", TRUNCATED.to_string()),
    ]
}

pub(super) fn analyzed(msg: &str) -> Structure {
    analyze(msg.as_bytes()).expect("fixture must be accepted")
}

/// What must hold for any accepted message: part 0 is the whole message, section numbers are
/// unique, every range slices the message, and the stored form round-trips.
pub(super) fn check_invariants(msg: &[u8], s: &Structure) {
    check_offsets(msg, s);
    assert_eq!(Structure::from_bytes(&s.to_bytes()).unwrap(), *s);
}

/// `check_invariants` without the (comparatively slow) storage round trip.
pub(super) fn check_offsets(msg: &[u8], s: &Structure) {
    assert_eq!(s.size, msg.len() as u64);
    assert!(s.parts[0].path.is_empty());
    assert_eq!(s.parts[0].header_end, s.header_len);
    // Pre-order numbering is strictly increasing, hence unique.
    assert!(s.parts.windows(2).all(|w| w[0].path < w[1].path));
    for p in &s.parts {
        assert_eq!(p.header_end, p.body_start);
        assert!(p.header_start <= p.header_end && p.body_start <= p.inner_text_start);
        assert!(p.inner_text_start <= p.body_end && p.body_end as usize <= msg.len());
    }
    // `section` looks parts up linearly; probing the first ones keeps floods fast.
    for p in s.parts.iter().take(64) {
        for sec in [Section::Full, Section::Header, Section::Text, Section::Mime] {
            if let Some(r) = s.section(&p.path, sec) {
                assert!(r.start <= r.end && r.end <= msg.len(), "{:?} {sec:?}", p.path);
            }
        }
    }
}

#[test]
fn rfc3501_fetch_example() {
    let s = analyzed(&rfc3501_text());
    assert_eq!(
        s.envelope,
        "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
         ((NIL NIL \"imap\" \"cac.washington.edu\")) \
         ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) \
         NIL NIL \"<B27397-0100000@cac.washington.edu>\")"
    );
    assert_eq!(
        s.body,
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92)"
    );
    assert_eq!(
        s.bodystructure,
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92 NIL NIL NIL NIL)"
    );
    assert_eq!(s.body_lines, 92);
    assert_eq!(s.size, u64::from(s.header_len) + 3028);
    assert_eq!(s.date, Some(837_595_405));
    assert_eq!(s.message_id.as_deref(), Some("B27397-0100000@cac.washington.edu"));
    assert!(!s.has_dot_line);
    // RFC 3501 §6.4.5: a non-multipart message has exactly one part, 1, its body.
    let paths: Vec<_> = s.parts.iter().map(|p| p.path.clone()).collect();
    assert_eq!(paths, vec![vec![], vec![1]]);
    assert_eq!(s.section(&[1], Section::Full), s.section(&[], Section::Text));
    assert_eq!(s.section(&[1], Section::Mime), s.section(&[], Section::Header));
}

#[test]
fn rfc3501_bodystructure_example() {
    let s = analyzed(&rfc3501_mixed());
    assert_eq!(
        s.body,
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") \
         \"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) \
         \"MIXED\")"
    );
}

#[test]
fn rfc3501_section_numbering() {
    let msg = SECTIONS;
    let s = analyzed(msg);
    let paths: Vec<Vec<u32>> = s.parts.iter().map(|p| p.path.clone()).collect();
    let want: Vec<Vec<u32>> = vec![
        vec![],
        vec![1],
        vec![2],
        vec![3],
        vec![3, 1],
        vec![3, 2],
        vec![4],
        vec![4, 1],
        vec![4, 2],
        vec![4, 2, 1],
        vec![4, 2, 2],
        vec![4, 2, 2, 1],
        vec![4, 2, 2, 2],
    ];
    assert_eq!(paths, want);
    let types: Vec<&str> = s.parts.iter().map(|p| p.content_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "multipart/mixed",
            "text/plain",
            "application/octet-stream",
            "message/rfc822",
            "text/plain",
            "application/octet-stream",
            "multipart/mixed",
            "image/gif",
            "message/rfc822",
            "text/plain",
            "multipart/alternative",
            "text/plain",
            "text/richtext",
        ]
    );
    let slice = |path: &[u32], sec: Section| -> &str { s.section(path, sec).map_or("<none>", |r| &msg[r]) };
    assert_eq!(slice(&[], Section::Full), msg);
    assert!(slice(&[], Section::Header).ends_with("boundary=\"outer\"\r\n\r\n"));
    assert!(slice(&[], Section::Text).starts_with("preamble\r\n--outer\r\n"));
    assert_eq!(slice(&[1], Section::Full), "part one");
    assert_eq!(
        slice(&[1], Section::Mime),
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    );
    assert_eq!(slice(&[2], Section::Full), "AAEC");
    assert_eq!(
        slice(&[3], Section::Header),
        "Subject: three\r\nContent-Type: multipart/mixed; boundary=\"inner3\"\r\n\r\n"
    );
    assert_eq!(
        slice(&[3], Section::Text),
        "--inner3\r\n\r\nthree one\r\n--inner3\r\nContent-Type: application/octet-stream\r\n\r\n\
         three two\r\n--inner3--"
    );
    assert_eq!(slice(&[3], Section::Mime), "Content-Type: message/rfc822\r\n\r\n");
    assert_eq!(slice(&[3, 1], Section::Full), "three one");
    assert_eq!(slice(&[3, 1], Section::Mime), "\r\n");
    assert_eq!(slice(&[3, 2], Section::Full), "three two");
    assert!(slice(&[4], Section::Full).starts_with("--four\r\n") && slice(&[4], Section::Full).ends_with("--four--"));
    assert_eq!(
        slice(&[4, 1], Section::Mime),
        "Content-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    );
    assert_eq!(
        slice(&[4, 2], Section::Header),
        "Subject: four two\r\nContent-Type: multipart/mixed; boundary=\"m42\"\r\n\r\n"
    );
    assert_eq!(slice(&[4, 2, 1], Section::Full), "four two one");
    assert_eq!(slice(&[4, 2, 2, 1], Section::Full), "plain alt");
    assert_eq!(slice(&[4, 2, 2, 2], Section::Full), "<bold>rich</bold>");
    assert_eq!(
        slice(&[4, 2, 2, 2], Section::Mime),
        "Content-Type: text/richtext\r\n\r\n"
    );
    // Sections that do not exist.
    assert_eq!(slice(&[], Section::Mime), "<none>");
    assert_eq!(slice(&[1], Section::Header), "<none>");
    assert_eq!(slice(&[4, 1], Section::Text), "<none>");
    assert_eq!(slice(&[5], Section::Full), "<none>");
    assert_eq!(slice(&[3, 3], Section::Full), "<none>");

    assert_eq!(
        s.envelope,
        "(NIL \"sections\" ((NIL NIL \"a\" \"example.com\")) ((NIL NIL \"a\" \"example.com\")) \
         ((NIL NIL \"a\" \"example.com\")) NIL NIL NIL NIL NIL)"
    );
    let text_part = "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\"";
    assert_eq!(
        s.bodystructure,
        [
            "(",
            text_part,
            " 8 1 NIL NIL NIL NIL)",
            "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 4 NIL NIL NIL NIL)",
            "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 164 ",
            "(NIL \"three\" NIL NIL NIL NIL NIL NIL NIL NIL) ",
            "(",
            text_part,
            " 9 1 NIL NIL NIL NIL)",
            "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" 9 NIL NIL NIL NIL) ",
            "\"MIXED\" (\"BOUNDARY\" \"inner3\") NIL NIL NIL) 11 NIL NIL NIL NIL)",
            "((\"IMAGE\" \"GIF\" NIL NIL NIL \"BASE64\" 4 NIL NIL NIL NIL)",
            "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 298 ",
            "(NIL \"four two\" NIL NIL NIL NIL NIL NIL NIL NIL) ",
            "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL)",
            "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 9 1 NIL NIL NIL NIL)",
            "(\"TEXT\" \"RICHTEXT\" NIL NIL NIL \"7BIT\" 17 1 NIL NIL NIL NIL) ",
            "\"ALTERNATIVE\" (\"BOUNDARY\" \"alt\") NIL NIL NIL) ",
            "\"MIXED\" (\"BOUNDARY\" \"m42\") NIL NIL NIL) 20 NIL NIL NIL NIL) ",
            "\"MIXED\" (\"BOUNDARY\" \"four\") NIL NIL NIL) ",
            "\"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL)",
        ]
        .concat()
    );
    assert_eq!(s.size, 990);
    assert_eq!(s.header_len, 110);
    assert_eq!(s.body_lines, 58);
    assert_eq!(s.preview, "part one");
}

#[test]
fn alternative_encoded_subject_and_groups() {
    let s = analyzed(ALTERNATIVE);
    assert_eq!(
        s.envelope,
        "(\"Tue, 1 Apr 2025 10:00:00 +0200\" \"=?utf-8?q?Gr=C3=BC=C3=9Fe?= and more\" \
         ((\"Doe, Jane\" NIL \"jane\" \"example.org\")) ((\"Doe, Jane\" NIL \"jane\" \"example.org\")) \
         ((\"Doe, Jane\" NIL \"jane\" \"example.org\")) \
         ((NIL NIL \"Team\" NIL)(NIL NIL \"bob\" \"example.org\")(\"Carol\" NIL \"carol\" \"example.org\")\
         (NIL NIL NIL NIL)(NIL NIL \"dave\" \"example.org\")) \
         NIL NIL \"<root@example.org>\" \"<alt-1@example.org>\")"
    );
    assert_eq!(s.subject.as_deref(), Some("Grüße and more"));
    assert_eq!(s.date, Some(1_743_494_400));
    assert_eq!(s.message_id.as_deref(), Some("alt-1@example.org"));
    assert_eq!(s.in_reply_to.as_deref(), Some("root@example.org"));
    assert_eq!(s.references, ["root@example.org", "mid@example.org"]);
    assert_eq!(s.preview, "Grüße aus Berlin!");
    assert_eq!(
        s.bodystructure,
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"iso-8859-1\") NIL NIL \"QUOTED-PRINTABLE\" 28 3 NIL NIL NIL NIL)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 23 1 NIL NIL NIL NIL) \
         \"ALTERNATIVE\" (\"BOUNDARY\" \"=_alt\") NIL NIL NIL)"
    );
    assert_eq!(
        s.body,
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"iso-8859-1\") NIL NIL \"QUOTED-PRINTABLE\" 28 3)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 23 1) \"ALTERNATIVE\")"
    );
}

#[test]
fn attachment_extension_data() {
    let s = analyzed(ATTACHMENT);
    // Reply-To present but empty takes From (RFC 3501 §7.4.2); Sender absent likewise.
    assert_eq!(
        s.envelope,
        "(NIL \"report\" ((NIL NIL \"sender\" \"example.com\")) ((NIL NIL \"sender\" \"example.com\")) \
         ((NIL NIL \"sender\" \"example.com\")) ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) \
         NIL NIL NIL NIL)"
    );
    assert_eq!(
        s.bodystructure,
        "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 13 1 NIL NIL NIL NIL)\
         (\"APPLICATION\" \"PDF\" (\"NAME\" \"r.pdf\") NIL NIL \"BASE64\" 12 \"Q2hlY2sgSW50ZWdyaXR5IQ==\" \
         (\"ATTACHMENT\" (\"FILENAME\" \"r.pdf\")) (\"en\" \"de\") \"http://example.com/r.pdf\") \
         \"MIXED\" (\"BOUNDARY\" \"b1\") NIL NIL NIL)"
    );
    assert_eq!(s.preview, "See attached.");
    assert_eq!(s.parts[2].encoding, "base64");
    assert!(s.subject.is_some() && s.date.is_none() && s.message_id.is_none());
}

#[test]
fn nested_message_single_part() {
    let s = analyzed(FORWARD);
    let inner = "From: b@example.com\r\nSubject: inner\r\n\r\nhello";
    assert_eq!(
        s.bodystructure,
        format!(
            "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" {} \
             (NIL \"inner\" ((NIL NIL \"b\" \"example.com\")) ((NIL NIL \"b\" \"example.com\")) \
             ((NIL NIL \"b\" \"example.com\")) NIL NIL NIL NIL NIL) \
             (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 1 NIL NIL NIL NIL) 4 \
             NIL (\"INLINE\" NIL) \"fr\" NIL) \"MIXED\" (\"BOUNDARY\" \"o\") NIL NIL NIL)",
            inner.len()
        )
    );
    let paths: Vec<_> = s.parts.iter().map(|p| p.path.clone()).collect();
    assert_eq!(paths, vec![vec![], vec![1], vec![1, 1]]);
    let p11 = s.part(&[1, 1]).unwrap();
    assert!(s.parts[1].is_message && !p11.is_message);
    // RFC 3501 §6.4.5: 1.1 of a non-multipart encapsulated message is its body, and its MIME
    // header is the encapsulated message's header.
    let slice = |path: &[u32], sec| &FORWARD[s.section(path, sec).unwrap()];
    assert_eq!(slice(&[1, 1], Section::Full), "hello");
    assert_eq!(
        slice(&[1, 1], Section::Mime),
        "From: b@example.com\r\nSubject: inner\r\n\r\n"
    );
    assert_eq!(slice(&[1], Section::Header), slice(&[1, 1], Section::Mime));
    assert_eq!(slice(&[1], Section::Text), "hello");
    assert_eq!(slice(&[1], Section::Full), inner);
    // The preview does not reach into an encapsulated message.
    assert_eq!(s.preview, "");
}

#[test]
fn missing_headers_are_nil() {
    let s = analyzed(EMPTY_HEADER);
    assert_eq!(s.header_len, 2);
    assert_eq!(s.envelope, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    assert_eq!(
        s.body,
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 4 1)"
    );
    assert_eq!(s.subject, None);
    assert_eq!(s.date, None);
    assert_eq!(s.preview, "body");
}

#[test]
fn eight_bit_headers_become_literals() {
    let s = analyzed(EIGHT_BIT);
    assert_eq!(
        s.envelope,
        "(NIL {7}\r\nGrüße (({5}\r\nJörg NIL \"j\" \"example.de\")) (({5}\r\nJörg NIL \"j\" \"example.de\")) \
         (({5}\r\nJörg NIL \"j\" \"example.de\")) NIL NIL NIL NIL NIL)"
    );
    assert_eq!(s.subject.as_deref(), Some("Grüße"));
    // Invalid UTF-8 is replaced, and the literal length counts what is stored.
    let s = analyze(b"Subject: \xff\r\n\r\n").unwrap();
    assert_eq!(s.envelope, "(NIL {3}\r\n\u{fffd} NIL NIL NIL NIL NIL NIL NIL NIL)");
}

#[test]
fn digest_defaults_to_message() {
    let s = analyzed(DIGEST);
    assert_eq!(
        s.body,
        "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 17 (NIL \"one\" NIL NIL NIL NIL NIL NIL NIL NIL) \
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 1 1) 3) \"DIGEST\")"
    );
}

#[test]
fn broken_and_truncated_multiparts() {
    // RFC 2045 §5.2: an unusable Content-Type means text/plain; charset=us-ascii.
    let s = analyzed(BROKEN);
    assert_eq!(
        s.body,
        "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"8BIT\" 13 1)"
    );
    assert_eq!(s.parts[0].content_type, "text/plain");
    let s = analyze(b"Content-Type: multipart/mixed; boundary=zz\r\n\r\nno delimiter here\r\n").unwrap();
    assert_eq!(s.parts[0].content_type, "text/plain");
    // A missing close delimiter ends the last part at the end of the message.
    let s = analyzed(TRUNCATED);
    assert_eq!(s.body, "((\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 9 1) \"MIXED\")");
    assert_eq!(&TRUNCATED[s.section(&[1], Section::Full).unwrap()], "half a pa");
    // An encoded message/rfc822 cannot be sliced into sections; it is an opaque leaf.
    let s = analyze(b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n").unwrap();
    assert_eq!(s.body, "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 6)");
    assert!(!s.parts[0].is_message);
}

#[test]
fn preview_sources() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><title>t</title></head>\
              <body><p>Hi &amp;\r\n bye</p></body></html>\r\n",
            "Hi & bye",
        ),
        (
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n\
              R3LDvMOfZSBhdXMg\r\nQmVybGlu\r\n",
            "Grüße aus Berlin",
        ),
        (
            b"Content-Type: text/plain; charset=x-unknown\r\n\r\n  plain\r\n\r\n text ",
            "plain text",
        ),
        (b"Content-Type: image/png\r\n\r\nPNG", ""),
        (
            b"Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\
              Content-Disposition: attachment\r\n\r\nnot this\r\n--m\r\nContent-Type: text/html\r\n\r\n\
              <b>this</b>\r\n--m--\r\n",
            "this",
        ),
    ];
    for (msg, want) in cases {
        assert_eq!(analyze(msg).unwrap().preview, *want, "{}", String::from_utf8_lossy(msg));
    }
}

#[test]
fn message_global_and_prefix_boundaries() {
    let msg = b"Content-Type: message/global\r\n\r\nSubject: g\r\n\r\nbody\r\n";
    let s = analyze(msg).unwrap();
    assert!(s.parts[0].is_message && s.parts[1].is_message);
    assert_eq!(&msg[s.section(&[1], Section::Header).unwrap()], b"Subject: g\r\n\r\n");
    // An inner boundary that extends the outer one is not mistaken for it (RFC 2046 §5.1.1).
    let msg = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
        Content-Type: multipart/mixed; boundary=b-1\r\n\r\n--b-1\r\n\r\nin\r\n--b-1--\r\n--b--\r\n";
    let s = analyze(msg).unwrap();
    let paths: Vec<_> = s.parts.iter().map(|p| p.path.clone()).collect();
    assert_eq!(paths, vec![vec![], vec![1], vec![1, 1]]);
    assert_eq!(&msg[s.section(&[1, 1], Section::Full).unwrap()], b"in");
}

/// Structures stored by versions that kept SORT address fields (now read from the ENVELOPE)
/// still load: fields the structure no longer has are ignored.
#[test]
fn structures_with_retired_fields_load() {
    let s = analyzed(&rfc3501_text());
    let mut old: serde_json::Value = serde_json::from_slice(&s.to_bytes()).unwrap();
    let fields = old.as_object_mut().unwrap();
    for name in ["sort_from", "sort_to", "sort_cc", "display_from", "display_to"] {
        fields.insert(name.into(), serde_json::Value::String("gray".into()));
    }
    let loaded = Structure::from_bytes(&serde_json::to_vec(&old).unwrap()).unwrap();
    assert_eq!(loaded, s);
}
