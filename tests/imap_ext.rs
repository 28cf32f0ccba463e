//! IMAP extensions over real sockets: CONDSTORE, QRESYNC, ESEARCH, SEARCHRES, WITHIN.

mod common;

use common::{bob_with, has, message, Server};
use loadtest::client::imap::Response;

/// The number after `key` in the first line holding it.
fn number_after(r: &Response, key: &str) -> u64 {
    let line = r
        .lines()
        .into_iter()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("{key} in {:?}", r.lines()));
    let rest = &line[line.find(key).unwrap() + key.len()..];
    rest.trim_start_matches([' ', '('])
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn condstore_modseqs_and_conditional_store() {
    let server = bob_with(3);
    let mut c = server.imap_login("bob");
    let caps = c.cmd("CAPABILITY").unwrap();
    assert!(has(&caps, "CONDSTORE") && has(&caps, "QRESYNC") && has(&caps, "ESEARCH"));
    let r = c.cmd("SELECT INBOX (CONDSTORE)").unwrap().expect_ok().unwrap();
    let highest = number_after(&r, "HIGHESTMODSEQ");
    let r = c.cmd("FETCH 1:* (FLAGS)").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().all(|l| l.contains("MODSEQ (")), "{:?}", r.lines());
    let r = c.cmd("STORE 2 +FLAGS (\\Seen)").unwrap().expect_ok().unwrap();
    let m2 = number_after(&r, "MODSEQ");
    assert!(m2 > highest);
    let r = c
        .cmd(&format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})"))
        .unwrap()
        .expect_ok()
        .unwrap();
    assert_eq!(r.untagged.len(), 1, "only message 2 changed: {:?}", r.lines());
    let r = c
        .cmd(&format!("STORE 1:3 (UNCHANGEDSINCE {highest}) +FLAGS (\\Flagged)"))
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(r.text.contains("[MODIFIED 2]"), "{r:?}");
    let r = c.cmd(&format!("SEARCH MODSEQ {highest}")).unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SEARCH 1 2 3 (MODSEQ "), "{:?}", r.lines());
    let r = c.cmd("STATUS INBOX (HIGHESTMODSEQ)").unwrap().expect_ok().unwrap();
    assert!(number_after(&r, "HIGHESTMODSEQ") > m2);
}

#[test]
fn qresync_reports_what_vanished_and_changed() {
    let server = bob_with(4);
    let mut c = server.imap_login("bob");
    let r = c.cmd("ENABLE QRESYNC").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* ENABLED QRESYNC"), "{:?}", r.lines());
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let validity = number_after(&r, "UIDVALIDITY");
    let modseq = number_after(&r, "HIGHESTMODSEQ");
    c.cmd("LOGOUT").unwrap();
    // Meanwhile another client changes a flag and expunges two messages.
    let mut other = server.imap_login("bob");
    other.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    other.cmd("STORE 1 +FLAGS (\\Answered)").unwrap().expect_ok().unwrap();
    other.cmd("STORE 2,4 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    other.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    // A QRESYNC client expunging sees VANISHED, not EXPUNGE.
    other.cmd("ENABLE QRESYNC").unwrap().expect_ok().unwrap();
    other.cmd("STORE 1 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    let r = other.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* VANISHED 1") && !has(&r, "EXPUNGE"), "{:?}", r.lines());
    let mut c = server.imap_login("bob");
    c.cmd("ENABLE QRESYNC").unwrap().expect_ok().unwrap();
    let r = c
        .cmd(&format!("SELECT INBOX (QRESYNC ({validity} {modseq} 1:4))"))
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(has(&r, "* VANISHED (EARLIER) 1:2,4"), "{:?}", r.lines());
    let r = c
        .cmd(&format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)"))
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(has(&r, "* VANISHED (EARLIER) 1:2,4"), "{:?}", r.lines());
    assert_eq!(
        c.cmd("FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)").unwrap().status,
        "BAD",
        "needs UID FETCH"
    );
    let mut plain = server.imap_login("bob");
    assert_eq!(
        plain.cmd("SELECT INBOX (QRESYNC (1 1))").unwrap().status,
        "BAD",
        "needs ENABLE QRESYNC"
    );
}

#[test]
fn esearch_searchres_and_within() {
    let server = bob_with(5);
    let mut c = server.imap_login("bob");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    c.cmd("STORE 2,4 +FLAGS (\\Flagged)").unwrap().expect_ok().unwrap();
    let r = c
        .cmd("SEARCH RETURN (MIN MAX COUNT ALL) FLAGGED")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(has(&r, "MIN 2 MAX 4 COUNT 2 ALL 2,4"), "{:?}", r.lines());
    let r = c.cmd("UID SEARCH RETURN () ALL").unwrap().expect_ok().unwrap();
    assert!(has(&r, "UID ALL 1:5"), "{:?}", r.lines());
    let r = c.cmd("SEARCH RETURN (SAVE) FLAGGED").unwrap().expect_ok().unwrap();
    assert!(r.untagged.is_empty(), "SAVE alone answers nothing: {:?}", r.lines());
    let r = c.cmd("FETCH $ (UID)").unwrap().expect_ok().unwrap();
    assert_eq!(r.untagged.len(), 2, "{:?}", r.lines());
    let r = c.cmd("SEARCH YOUNGER 3600").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SEARCH 1 2 3 4 5"), "{:?}", r.lines());
    let r = c.cmd("SEARCH OLDER 3600").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SEARCH") && !has(&r, "* SEARCH 1"), "{:?}", r.lines());
}

#[test]
fn list_extended_status_and_special_use() {
    let server = bob_with(2);
    let mut c = server.imap_login("bob");
    c.cmd("CREATE Work/Deep").unwrap().expect_ok().unwrap();
    c.cmd("SUBSCRIBE Work/Deep").unwrap().expect_ok().unwrap();
    c.cmd("UNSUBSCRIBE Archive").unwrap().expect_ok().unwrap();
    let r = c.cmd("LIST (SUBSCRIBED) \"\" *").unwrap().expect_ok().unwrap();
    assert!(
        has(&r, "(\\HasNoChildren \\Subscribed) \"/\" \"Work/Deep\"") && !has(&r, "\"Archive\""),
        "{:?}",
        r.lines()
    );
    let r = c
        .cmd("LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(has(&r, "\"Work\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"), "{:?}", r.lines());
    let r = c.cmd("LIST (SPECIAL-USE) \"\" *").unwrap().expect_ok().unwrap();
    assert_eq!(r.untagged.len(), 5, "{:?}", r.lines());
    let r = c
        .cmd("LIST \"\" INBOX RETURN (STATUS (MESSAGES SIZE UNSEEN))")
        .unwrap()
        .expect_ok()
        .unwrap();
    let size = 2 * message("m1").len();
    assert!(
        has(&r, &format!("* STATUS \"INBOX\" (MESSAGES 2 SIZE {size} UNSEEN 2)")),
        "{:?}",
        r.lines()
    );
    let r = c
        .cmd("LIST \"\" (INBOX Sent) RETURN (SUBSCRIBED)")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert_eq!(r.untagged.len(), 2, "{:?}", r.lines());
    c.cmd("CREATE MyDrafts (USE (\\Drafts))").unwrap().expect_ok().unwrap();
    let r = c.cmd("LIST \"\" MyDrafts").unwrap().expect_ok().unwrap();
    assert!(has(&r, "\\Drafts"), "{:?}", r.lines());
    let r = c.cmd("CREATE Odd (USE (\\Important))").unwrap();
    assert!(r.status == "NO" && r.text.contains("[USEATTR]"), "{r:?}");
}

#[test]
fn preview_and_status_size() {
    let server = bob_with(1);
    let mut c = server.imap_login("bob");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let r = c.cmd("FETCH 1 (PREVIEW)").unwrap().expect_ok().unwrap();
    assert!(has(&r, "PREVIEW") && has(&r, "Hello Bob."), "{:?}", r.lines());
}

#[test]
fn multiappend_is_all_or_nothing() {
    let server = bob_with(0);
    let mut c = server.imap_login("bob");
    let (a, b) = (message("one"), message("two"));
    let wire = format!("m1 APPEND Drafts (\\Draft) {{{}+}}\r\n", a.len()).into_bytes();
    let wire = [
        wire,
        a.clone(),
        format!(" () {{{}+}}\r\n", b.len()).into_bytes(),
        b.clone(),
        b"\r\n".to_vec(),
    ]
    .concat();
    c.t.send_raw(&wire).unwrap();
    let r = c.finish("m1").unwrap();
    assert!(
        r.ok() && r.text.contains("[APPENDUID ") && r.text.contains(" 1:2]"),
        "{r:?}"
    );
    // The second message is broken: neither is stored.
    let bad = b"no header separator".to_vec();
    let wire = [
        format!("m2 APPEND Drafts {{{}+}}\r\n", a.len()).into_bytes(),
        a,
        format!(" {{{}+}}\r\n", bad.len()).into_bytes(),
        bad,
        b"\r\n".to_vec(),
    ]
    .concat();
    c.t.send_raw(&wire).unwrap();
    assert_eq!(c.finish("m2").unwrap().status, "NO");
    let r = c.cmd("STATUS Drafts (MESSAGES)").unwrap().expect_ok().unwrap();
    assert!(has(&r, "(MESSAGES 2)"), "{:?}", r.lines());
}

#[test]
fn compress_deflate_both_ways_over_tls() {
    use flate2::{Decompress, FlushDecompress};
    let server = bob_with(3);
    let mut c = server.imap_login("bob");
    // The command after COMPRESS is already compressed: pipeline it to prove buffered input
    // is inflated too.
    let mut squeeze = common::deflater();
    let mut inflate = Decompress::new(false);
    let mut wire = b"z1 COMPRESS DEFLATE\r\n".to_vec();
    wire.extend(squeeze(b"z2 SELECT INBOX\r\nz3 FETCH 1:* (UID RFC822.SIZE)\r\n"));
    c.t.send_raw(&wire).unwrap();
    assert_eq!(c.t.read_line_string().unwrap(), "z1 OK DEFLATE active");
    let text = common::inflate_until(&mut c, &mut inflate, "z3 OK");
    assert!(
        text.contains("* 3 EXISTS") && text.contains("* 3 FETCH (UID 3 RFC822.SIZE"),
        "{text}"
    );
    c.t.send_raw(&squeeze(b"z4 COMPRESS DEFLATE\r\n")).unwrap();
    let raw = c.t.read_some().unwrap();
    let mut out = Vec::with_capacity(4096);
    inflate.decompress_vec(&raw, &mut out, FlushDecompress::Sync).unwrap();
    assert!(String::from_utf8_lossy(&out).contains("z4 NO [COMPRESSIONACTIVE]"));
}

/// IDLE under COMPRESS over TLS: the parked session's updates are compressed, and the
/// compressed DONE wakes it.
#[test]
fn idle_under_compress_hears_mail_and_done() {
    let server = bob_with(1);
    let mut c = server.imap_login("bob");
    let mut squeeze = common::deflater();
    let mut inflate = flate2::Decompress::new(false);
    c.t.send_line("z1 COMPRESS DEFLATE").unwrap();
    assert_eq!(c.t.read_line_string().unwrap(), "z1 OK DEFLATE active");
    c.t.send_raw(&squeeze(b"z2 SELECT INBOX\r\nz3 IDLE\r\n")).unwrap();
    let text = common::inflate_until(&mut c, &mut inflate, "+ idling");
    assert!(text.contains("z2 OK"), "{text}");
    server.deliver("bob", &message("pushed"));
    let text = common::inflate_until(&mut c, &mut inflate, "* 2 EXISTS");
    assert!(!text.contains("z3 "), "{text}");
    c.t.send_raw(&squeeze(b"DONE\r\n")).unwrap();
    let text = common::inflate_until(&mut c, &mut inflate, "z3 OK");
    assert!(text.contains("IDLE terminated"), "{text}");
}

#[test]
fn sort_and_thread() {
    let server = Server::start();
    server.add_user("bob");
    let msg = |subject: &str, from: &str, date: &str, id: &str, refs: &str| {
        format!(
            "From: {from}\r\nTo: bob@example.org\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{id}>\r\n{refs}\r\nbody\r\n"
        )
        .into_bytes()
    };
    server.deliver(
        "bob",
        &msg(
            "Zebra",
            "Carol <carol@x.org>",
            "Mon, 2 Mar 2026 10:00:00 +0000",
            "a@x",
            "",
        ),
    );
    server.deliver(
        "bob",
        &msg("apple", "alice@x.org", "Sun, 1 Mar 2026 10:00:00 +0000", "b@x", ""),
    );
    server.deliver(
        "bob",
        &msg(
            "Re: Zebra",
            "Bob <bob@x.org>",
            "Tue, 3 Mar 2026 10:00:00 +0000",
            "c@x",
            "In-Reply-To: <a@x>\r\nReferences: <a@x>\r\n",
        ),
    );
    let mut c = server.imap_login("bob");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let r = c.cmd("SORT (SUBJECT) UTF-8 ALL").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SORT 2 1 3"), "{:?}", r.lines());
    let r = c.cmd("SORT (REVERSE DATE) UTF-8 ALL").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SORT 3 1 2"), "{:?}", r.lines());
    let r = c.cmd("UID SORT (FROM) US-ASCII ALL").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SORT 2 3 1"), "{:?}", r.lines());
    let r = c.cmd("SORT (DISPLAYFROM) UTF-8 ALL").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SORT 2 3 1"), "{:?}", r.lines());
    let r = c.cmd("THREAD REFERENCES UTF-8 ALL").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* THREAD (2)(1 3)"), "{:?}", r.lines());
    let r = c.cmd("THREAD ORDEREDSUBJECT UTF-8 ALL").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* THREAD (2)(1 3)"), "{:?}", r.lines());
    assert_eq!(c.cmd("SORT (SUBJECT) KOI8-R ALL").unwrap().status, "NO");
    assert_eq!(c.cmd("SORT () UTF-8 ALL").unwrap().status, "BAD");
}

#[test]
fn objectid_savedate_appendlimit() {
    let server = bob_with(1);
    let mut c = server.imap_login("bob");
    let r = c.cmd("CREATE Projects").unwrap().expect_ok().unwrap();
    assert!(r.text.starts_with("[MAILBOXID (F"), "{r:?}");
    let id = r.text[12..29].to_string();
    c.cmd("RENAME Projects Work").unwrap().expect_ok().unwrap();
    let r = c
        .cmd("STATUS Work (MAILBOXID APPENDLIMIT)")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(
        has(&r, &format!("(MAILBOXID ({id}) APPENDLIMIT 52428800)")),
        "{id} {:?}",
        r.lines()
    );
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(has(&r, "[MAILBOXID (F"), "{:?}", r.lines());
    let r = c
        .cmd("FETCH 1 (EMAILID THREADID SAVEDATE)")
        .unwrap()
        .expect_ok()
        .unwrap();
    let line = r.lines()[0].clone();
    assert!(line.contains("THREADID NIL") && line.contains("SAVEDATE \""), "{line}");
    let email = line
        .split("EMAILID (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string();
    c.cmd("COPY 1 Work").unwrap().expect_ok().unwrap();
    let r = c.cmd(&format!("SEARCH EMAILID {email}")).unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SEARCH 1"), "{:?}", r.lines());
    c.cmd("SELECT Work").unwrap().expect_ok().unwrap();
    let r = c.cmd("FETCH 1 (EMAILID)").unwrap().expect_ok().unwrap();
    assert!(has(&r, &email), "a copy keeps its EMAILID: {:?}", r.lines());
    let r = c
        .cmd("SEARCH SAVEDATESUPPORTED SAVEDSINCE 1-Jan-2020")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(has(&r, "* SEARCH 1"), "{:?}", r.lines());
    let r = c.cmd("SEARCH SAVEDBEFORE 1-Jan-2020").unwrap().expect_ok().unwrap();
    assert!(r.lines() == ["* SEARCH"], "{:?}", r.lines());
}

#[test]
fn nested_parts_partial_and_binary_fetches() {
    let server = Server::start();
    server.add_user("bob");
    let inner = "From: inner@x.org\r\nSubject: inner one\r\nContent-Type: text/plain\r\n\r\ninner body\r\n";
    let msg = format!(
        "From: outer@x.org\r\nSubject: outer\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n\
         --b\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--b--\r\n"
    );
    server.deliver("bob", msg.as_bytes());
    let mut c = server.imap_login("bob");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let r = c.cmd("FETCH 1 (BODY.PEEK[2.HEADER.FIELDS (SUBJECT)] BODY.PEEK[2.TEXT] BODY.PEEK[1]<0.5> BINARY.PEEK[1] BINARY.SIZE[1])").unwrap().expect_ok().unwrap();
    let text = r.lines().join("\n");
    assert!(text.contains("Subject: inner one"), "{text}");
    assert!(text.contains("inner body"), "{text}");
    assert!(text.contains("BODY[1]<0> {5}\r\naGVsb"), "{text}");
    assert!(
        text.contains("BINARY[1] {11}\r\nhello world") || text.contains("BINARY[1] \"hello world\""),
        "{text}"
    );
    assert!(text.contains("BINARY.SIZE[1] 11"), "{text}");
    let r = c.cmd("FETCH 1 BODYSTRUCTURE").unwrap().expect_ok().unwrap();
    assert!(
        has(&r, "\"MESSAGE\" \"RFC822\"") && has(&r, "\"MIXED\""),
        "{:?}",
        r.lines()
    );
}

#[test]
fn imap4rev2_after_enable() {
    let server = bob_with(2);
    let mut c = server.imap_login("bob");
    c.cmd("CREATE Entwürfe-alt").unwrap();
    let r = c.cmd("ENABLE IMAP4rev2").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* ENABLED IMAP4rev2"), "{:?}", r.lines());
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(!has(&r, "RECENT") && !has(&r, "[UNSEEN"), "{:?}", r.lines());
    let r = c.cmd("FETCH 1:* FLAGS").unwrap().expect_ok().unwrap();
    assert!(!has(&r, "\\Recent"), "{:?}", r.lines());
    let r = c.cmd("SEARCH ALL").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* ESEARCH (TAG \""), "{:?}", r.lines());
    // UTF-8 names, both ways.
    c.cmd("CREATE \"Entwürfe\"").unwrap().expect_ok().unwrap();
    let r = c.cmd("LIST \"\" Entw*").unwrap().expect_ok().unwrap();
    assert!(has(&r, "Entwürfe"), "{:?}", r.lines());
    let mut old = server.imap_login("bob");
    let r = old.cmd("LIST \"\" Entw*").unwrap().expect_ok().unwrap();
    assert!(
        has(&r, "Entw&APw-rfe"),
        "a rev1 session sees modified UTF-7: {:?}",
        r.lines()
    );
}

#[test]
fn binary_append() {
    let server = bob_with(0);
    let mut c = server.imap_login("bob");
    let msg = b"Subject: bin\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9\r\n";
    let wire = [
        format!("b1 APPEND INBOX ~{{{}+}}\r\n", msg.len()).into_bytes(),
        msg.to_vec(),
        b"\r\n".to_vec(),
    ]
    .concat();
    c.t.send_raw(&wire).unwrap();
    assert!(c.finish("b1").unwrap().ok());
    let nul = b"Subject: nul\r\n\r\na\0b\r\n";
    let wire = [
        format!("b2 APPEND INBOX ~{{{}+}}\r\n", nul.len()).into_bytes(),
        nul.to_vec(),
        b"\r\n".to_vec(),
    ]
    .concat();
    c.t.send_raw(&wire).unwrap();
    // Issue 9: NUL in a part's content is stored (base64) and given back by BINARY.
    assert!(c.finish("b2").unwrap().ok());
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let r = c.cmd("FETCH 2 BINARY.PEEK[1]").unwrap().expect_ok().unwrap();
    assert!(r.untagged[0].ends_with(b"~{5}\r\na\0b\r\n)"), "{:?}", r.lines());
    let r = c.cmd("FETCH 1 BINARY.PEEK[1]").unwrap().expect_ok().unwrap();
    assert!(
        String::from_utf8_lossy(&r.untagged[0]).contains("café"),
        "{:?}",
        r.lines()
    );
}

#[test]
fn utf8_accept() {
    let server = bob_with(0);
    let mut c = server.imap_login("bob");
    let r = c.cmd("ENABLE UTF8=ACCEPT").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* ENABLED UTF8=ACCEPT"), "{:?}", r.lines());
    c.cmd("CREATE \"Отправленные\"").unwrap().expect_ok().unwrap();
    let msg = "Subject: привет\r\nFrom: Ünïcode <u@example.org>\r\n\r\nтело\r\n".as_bytes();
    let wire = [
        format!("u1 APPEND \"Отправленные\" UTF8 (~{{{}+}}\r\n", msg.len()).into_bytes(),
        msg.to_vec(),
        b")\r\n".to_vec(),
    ]
    .concat();
    c.t.send_raw(&wire).unwrap();
    assert!(c.finish("u1").unwrap().ok());
    let r = c
        .cmd("STATUS \"Отправленные\" (MESSAGES)")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(has(&r, "(MESSAGES 1)"), "{:?}", r.lines());
    c.cmd("SELECT \"Отправленные\"").unwrap().expect_ok().unwrap();
    let r = c.cmd("SEARCH SUBJECT \"привет\"").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SEARCH 1"), "{:?}", r.lines());
}
