//! CATENATE (RFC 4469) over real sockets: messages put together from TEXT literals and IMAP URLs
//! (RFC 5092) naming messages and parts of the user's own mailboxes, alone, inside MULTIAPPEND
//! (RFC 3502) and inside REPLACE (RFC 8508); `[BADURL]` and `[TOOBIG]` refusals store nothing.

mod common;

use common::{bob_with, message, Server};
use loadtest::client::imap::{Imap, Response};

/// A message with a text part and a base64 attachment (the content `00 01 02 03 04`).
const SOURCE: &[u8] = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n\
Subject: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nHello Bob.\r\n\
--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQ=\r\n\
--b1--\r\n";

/// One piece of a command: text sent as is, or a synchronizing literal's data (its marker ends
/// the text before it), sent only after the server's `+`.
enum Piece<'a> {
    Text(&'a str),
    Literal(&'a [u8]),
}

/// Sends a command piece by piece, waiting for the continuation before each literal's data
/// (RFC 9051 §7.6): every literal inside a CATENATE list is announced on its own line.
fn send(c: &mut Imap, pieces: &[Piece]) -> Response {
    let tag = c.tag();
    c.t.send_raw(format!("{tag} ").as_bytes()).unwrap();
    for piece in pieces {
        match piece {
            Piece::Text(text) => c.t.send_raw(text.as_bytes()).unwrap(),
            Piece::Literal(data) => {
                c.t.send_raw(format!("{{{}}}\r\n", data.len()).as_bytes()).unwrap();
                let line = c.t.read_line_string().unwrap();
                assert!(line.starts_with("+ "), "no continuation: {line}");
                c.t.send_raw(data).unwrap();
            }
        }
    }
    c.t.send_raw(b"\r\n").unwrap();
    c.finish(&tag).unwrap()
}

/// The data of the one literal in a FETCH response, e.g. `BODY[TEXT] {12}\r\n...`; empty for
/// `""`.
fn literal_data(line: &[u8]) -> Vec<u8> {
    let Some(end) = line.windows(3).position(|w| w == b"}\r\n") else {
        assert!(line.ends_with(b"\"\")"), "no data: {}", String::from_utf8_lossy(line));
        return Vec::new();
    };
    let start = line[..end].iter().rposition(|&b| b == b'{').unwrap();
    let len: usize = std::str::from_utf8(&line[start + 1..end]).unwrap().parse().unwrap();
    line[end + 3..end + 3 + len].to_vec()
}

/// BODY.PEEK[section] of one message of the selected mailbox.
fn section(c: &mut Imap, uid: u32, section: &str) -> Vec<u8> {
    let r = c
        .cmd(&format!("UID FETCH {uid} (BODY.PEEK[{section}])"))
        .unwrap()
        .expect_ok()
        .unwrap();
    assert_eq!(r.untagged.len(), 1, "{:?}", r.lines());
    literal_data(&r.untagged[0])
}

/// The UIDs an APPEND's `[APPENDUID v set]` names (RFC 4315 §3), with `a:b` ranges expanded.
fn appended(r: &Response) -> Vec<u32> {
    assert!(r.ok(), "{r:?}");
    let code = r.text.strip_prefix("[APPENDUID ").unwrap().split(']').next().unwrap();
    let set = code.split(' ').nth(1).unwrap();
    set.split(',')
        .flat_map(|range| match range.split_once(':') {
            Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect::<Vec<u32>>(),
            None => vec![range.parse().unwrap()],
        })
        .collect()
}

fn uid_validity(c: &mut Imap, mailbox: &str) -> u32 {
    let r = c
        .cmd(&format!("STATUS {mailbox} (UIDVALIDITY)"))
        .unwrap()
        .expect_ok()
        .unwrap();
    let line = &r.lines()[0];
    let at = line.find("UIDVALIDITY ").unwrap() + "UIDVALIDITY ".len();
    line[at..].trim_end_matches(')').parse().unwrap()
}

fn messages(c: &mut Imap, mailbox: &str) -> u32 {
    let r = c
        .cmd(&format!("STATUS {mailbox} (MESSAGES)"))
        .unwrap()
        .expect_ok()
        .unwrap();
    let line = &r.lines()[0];
    let at = line.find("MESSAGES ").unwrap() + "MESSAGES ".len();
    line[at..].trim_end_matches(')').parse().unwrap()
}

/// A message forwarded with its attachment, as a client builds it with CATENATE: new headers
/// and MIME framing as TEXT, the attachment's MIME header and content by URL (the content still
/// base64: CATENATE copies a section raw, RFC 4469 §5), plus a header field by an absolute URL
/// and a ;PARTIAL= range. FETCH BODY[] of the result is exactly the concatenation, and the
/// attachment decodes as before.
#[test]
fn forward_with_attachment_round_trip() {
    let server = bob_with(0);
    server.deliver("bob", SOURCE);
    let mut c = server.imap_login("bob");
    let caps = c.cmd("CAPABILITY").unwrap().expect_ok().unwrap().lines()[0].clone();
    assert!(caps.split(' ').any(|c| c == "CATENATE"), "{caps}");
    c.cmd("CREATE Out").unwrap().expect_ok().unwrap();
    let v = uid_validity(&mut c, "INBOX");
    let head = b"From: bob@example.org\r\nTo: carol@example.org\r\nMIME-Version: 1.0\r\n";
    let framing = b"Content-Type: multipart/mixed; boundary=\"fw\"\r\n\r\n--fw\r\n\
        Content-Type: text/plain\r\n\r\nSee attached.\r\n--fw\r\n";
    let close = b"\r\n--fw--\r\n";
    let subject = "imap://bob@localhost/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20(Subject)/;PARTIAL=0.15";
    let attachment_mime = format!("/INBOX;UIDVALIDITY={v}/;UID=1/;SECTION=2.MIME");
    let r = send(
        &mut c,
        &[
            Piece::Text("APPEND Out (\\Seen) CATENATE (TEXT "),
            Piece::Literal(head),
            Piece::Text(&format!(" URL \"{subject}\" TEXT ")),
            Piece::Literal(b"\r\n"),
            Piece::Text(" TEXT "),
            Piece::Literal(framing),
            Piece::Text(&format!(
                " URL \"{attachment_mime}\" url \"/inbox/;uid=1/;section=2\" TEXT "
            )),
            Piece::Literal(close),
            Piece::Text(")"),
        ],
    );
    let new = appended(&r);
    assert_eq!(new.len(), 1);
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let mime = section(&mut c, 1, "2.MIME");
    let content = section(&mut c, 1, "2");
    assert_eq!(content, b"AAECAwQ=");
    let expected = [&head[..], b"Subject: report", b"\r\n", framing, &mime, &content, close].concat();
    c.cmd("SELECT Out").unwrap().expect_ok().unwrap();
    let body = section(&mut c, new[0], "");
    assert_eq!(String::from_utf8_lossy(&body), String::from_utf8_lossy(&expected));
    // The result is a message like any other: its attachment is part 2, and decodes.
    assert_eq!(section(&mut c, new[0], "2"), b"AAECAwQ=");
    let r = c
        .cmd(&format!("UID FETCH {} (FLAGS BINARY.PEEK[2])", new[0]))
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(r.lines()[0].contains("\\Seen"), "{:?}", r.lines());
    assert_eq!(literal_data(&r.untagged[0]), [0, 1, 2, 3, 4]);
    // The source was read with PEEK semantics: still unseen.
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let r = c.cmd("UID FETCH 1 FLAGS").unwrap().expect_ok().unwrap();
    assert!(!r.lines()[0].contains("\\Seen"), "{:?}", r.lines());
}

/// MULTIAPPEND with CATENATE (RFC 4469 §5 with RFC 3502): CATENATE and literal messages in one
/// command, relative URLs (`;UID=`) against the selected mailbox, non-synchronizing literals
/// and a literal8 TEXT; all stored in one step, in order.
#[test]
fn multiappend_with_catenate() {
    let server = bob_with(2);
    let mut c = server.imap_login("bob");
    c.cmd("CREATE Out").unwrap().expect_ok().unwrap();
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let header1 = section(&mut c, 1, "HEADER");
    let text2 = section(&mut c, 2, "TEXT");
    let whole1 = section(&mut c, 1, "");
    let plain = message("plain");
    let command = [
        &b"APPEND Out CATENATE (URL \";UID=1/;SECTION=HEADER\" TEXT {6+}\r\nfirst."[..],
        b") (\\Flagged) CATENATE (TEXT {19+}\r\nSubject: second\r\n\r\n URL \"/INBOX/;UID=2/;SECTION=TEXT\")",
        format!(" {{{}+}}\r\n", plain.len()).as_bytes(),
        &plain,
        b" CATENATE (url \"/INBOX/;UID=1\" TEXT ~{3+}\r\n!!!)",
        b"\r\n",
    ]
    .concat();
    let tag = c.tag();
    c.t.send_raw(format!("{tag} ").as_bytes()).unwrap();
    c.t.send_raw(&command).unwrap();
    let r = c.finish(&tag).unwrap();
    let uids = appended(&r);
    assert_eq!(uids.len(), 4, "{r:?}");
    c.cmd("SELECT Out").unwrap().expect_ok().unwrap();
    assert_eq!(section(&mut c, uids[0], ""), [&header1[..], b"first."].concat());
    assert_eq!(
        section(&mut c, uids[1], ""),
        [&b"Subject: second\r\n\r\n"[..], &text2].concat()
    );
    assert_eq!(section(&mut c, uids[2], ""), plain);
    assert_eq!(section(&mut c, uids[3], ""), [&whole1[..], b"!!!"].concat());
    let r = c
        .cmd(&format!("UID FETCH {} FLAGS", uids[1]))
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(r.lines()[0].contains("\\Flagged"), "{:?}", r.lines());
}

/// RFC 4469 §5: a URL that cannot be resolved is `NO [BADURL url]` and nothing is stored, not
/// even the other messages of the MULTIAPPEND; TRYCREATE (a missing target) comes first.
#[test]
fn bad_urls_store_nothing() {
    let server = bob_with(1);
    server.add_user("alice");
    server.deliver("alice", &message("alice's"));
    let mut c = server.imap_login("bob");
    c.cmd("CREATE Out").unwrap().expect_ok().unwrap();
    let v = uid_validity(&mut c, "INBOX");
    let bad: &[(String, &str)] = &[
        (
            format!("/INBOX;UIDVALIDITY={}/;UID=1", v + 1),
            "UIDVALIDITY does not match",
        ),
        ("/INBOX/;UID=2".into(), "no such message"),
        ("/INBOX/;UID=1/;SECTION=3".into(), "no such section"),
        ("/INBOX/;UID=1/;SECTION=BOGUS".into(), "invalid section"),
        ("/Nowhere/;UID=1".into(), "no such mailbox"),
        ("imap://alice@localhost/INBOX/;UID=1".into(), "URL names another user"),
        ("imap://localhost/INBOX/;UID=1".into(), "URL names another user"),
        (";UID=1".into(), "relative URL without a selected mailbox"),
        ("/INBOX".into(), "URL names no message (;UID= missing)"),
        ("/INBOX/;UID=x".into(), "invalid number"),
        (
            "imap://bob@localhost/INBOX/;UID=1;URLAUTH=anonymous".into(),
            "the URL is not authorized (:INTERNAL:token missing)",
        ),
        ("http://example.org/".into(), "not an IMAP URL"),
        (
            "Sent/;UID=1".into(),
            "relative mailbox paths are not resolved; start the URL with /",
        ),
    ];
    for (url, why) in bad {
        let r = c
            .cmd(&format!("APPEND Out CATENATE (TEXT {{3+}}\r\nhi: URL \"{url}\")"))
            .unwrap();
        assert_eq!(r.status, "NO", "{url}: {r:?}");
        assert_eq!(r.text, format!("[BADURL {url}] {why}"), "{url}");
    }
    // The second message of a MULTIAPPEND fails: the first is not stored either.
    let r = c
        .cmd("APPEND Out CATENATE (URL \"/INBOX/;UID=1\") CATENATE (URL \"/INBOX/;UID=9\")")
        .unwrap();
    assert!(
        r.status == "NO" && r.text.starts_with("[BADURL /INBOX/;UID=9]"),
        "{r:?}"
    );
    assert_eq!(messages(&mut c, "Out"), 0);
    // A missing target mailbox is reported as such, whatever the URLs.
    let r = c.cmd("APPEND Nowhere CATENATE (URL \"/INBOX/;UID=9\")").unwrap();
    assert!(r.status == "NO" && r.text.starts_with("[TRYCREATE]"), "{r:?}");
    // The connection is in step after each refusal, and good URLs work.
    let r = c.cmd("APPEND Out CATENATE (URL \"/INBOX/;UID=1\")").unwrap();
    assert_eq!(appended(&r).len(), 1);
}

/// RFC 4469 §5: a message over APPENDLIMIT, however it is put together, is `NO [TOOBIG]`.
#[test]
fn too_big_after_catenation() {
    let server = Server::start_with(common::Extra {
        imap: "append_limit = 3000",
        ..Default::default()
    });
    server.add_user("bob");
    let mut big = message("big");
    big.resize(2000, b'x');
    server.deliver("bob", &big);
    let mut c = server.imap_login("bob");
    let r = c
        .cmd("APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" TEXT {2+}\r\n\r\n URL \"/INBOX/;UID=1/;SECTION=TEXT\")")
        .unwrap();
    assert_eq!(r.status, "NO", "{r:?}");
    assert!(r.text.starts_with("[TOOBIG]"), "{r:?}");
    assert_eq!(messages(&mut c, "INBOX"), 1);
    // Within the limit it is stored.
    let r = c
        .cmd("APPEND INBOX CATENATE (URL \"/INBOX/;UID=1/;PARTIAL=0.1000\")")
        .unwrap();
    assert_eq!(appended(&r), [2]);
}

/// RFC 8508 §4.4: REPLACE takes CATENATE data; a draft saved again can reuse parts of the very
/// message it replaces.
#[test]
fn replace_with_catenate_reuses_the_old_draft() {
    let server = bob_with(0);
    server.deliver("bob", SOURCE);
    let mut c = server.imap_login("bob");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let old_part2 = section(&mut c, 1, "2");
    let r = c
        .cmd("UID REPLACE 1 INBOX CATENATE (TEXT {44+}\r\nSubject: v2\r\nContent-Type: text/plain\r\n\r\nv2: URL \";UID=1/;SECTION=2\")")
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert!(
        r.lines().iter().any(|l| l.starts_with("* OK [APPENDUID ")),
        "{:?}",
        r.lines()
    );
    let r = c.cmd("UID FETCH 1:* (UID)").unwrap().expect_ok().unwrap();
    assert_eq!(r.lines(), ["* 1 FETCH (UID 2)"]);
    assert_eq!(section(&mut c, 2, "TEXT"), [&b"v2:"[..], &old_part2].concat());
}
