//! URLAUTH (RFC 4467) and BURL (RFC 4468) over real sockets: GENURLAUTH → URLFETCH, who may
//! fetch what, tampered tokens, RESETKEY, expiry, and a phone's forward: a message submitted
//! with BDAT and BURL chunks, its attachment taken from the store instead of uploaded again.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{bob_with, message, Server};
use loadtest::client::imap::{quote, Imap};
use loadtest::client::smtp::Smtp;

/// The URL a GENURLAUTH of one rump URL gives back.
fn authorize(c: &mut Imap, rump: &str) -> String {
    let r = c.cmd(&format!("GENURLAUTH {} INTERNAL", quote(rump))).unwrap();
    assert!(r.ok(), "{rump}: {r:?}");
    let line = &r.lines()[0];
    let url = line.strip_prefix("* GENURLAUTH \"").and_then(|l| l.strip_suffix('"'));
    url.unwrap_or_else(|| panic!("{line}")).to_owned()
}

/// The data URLFETCH gives for `url`, or None for NIL.
fn fetch(c: &mut Imap, url: &str) -> Option<Vec<u8>> {
    let r = c.cmd(&format!("URLFETCH {}", quote(url))).unwrap().expect_ok().unwrap();
    assert_eq!(r.untagged.len(), 1, "{r:?}");
    let line = &r.untagged[0];
    let head = format!("* URLFETCH {} ", quote(url));
    let rest = line.strip_prefix(head.as_bytes()).expect("the URL comes back as sent");
    if rest == b"NIL" {
        return None;
    }
    let start = rest.windows(3).position(|w| w == b"}\r\n").expect("a literal") + 3;
    Some(rest[start..].to_vec())
}

/// BODY.PEEK[] of message `uid` in the selected mailbox.
fn body(c: &mut Imap, uid: u32) -> Vec<u8> {
    let r = c
        .cmd(&format!("UID FETCH {uid} BODY.PEEK[]"))
        .unwrap()
        .expect_ok()
        .unwrap();
    let line = &r.untagged[0];
    let start = line.windows(3).position(|w| w == b"}\r\n").expect("a literal") + 3;
    line[start..line.len() - 1].to_vec()
}

/// 2026-05-26T20:37:00Z for unix seconds (RFC 3339, UTC).
fn rfc3339(unix: u64) -> String {
    let (date, time) = ringmail::protolog::civil(unix);
    format!("{date}T{time}Z")
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn genurlauth_then_urlfetch_round_trip() {
    let server = bob_with(2);
    server.add_user("alice");
    let mut bob = server.imap_login("bob");
    let caps = bob.cmd("CAPABILITY").unwrap().lines()[0].clone();
    assert!(caps.split(' ').any(|c| c == "URLAUTH"), "{caps}");
    bob.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let stored = body(&mut bob, 1);

    let rump = "imap://bob@localhost/INBOX/;UID=1;URLAUTH=user+bob";
    let url = authorize(&mut bob, rump);
    let token = url
        .strip_prefix(&format!("{rump}:INTERNAL:"))
        .expect("rump:INTERNAL:token");
    assert_eq!(token.len(), 64, "HMAC-SHA256 in hex: {url}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(authorize(&mut bob, rump), url, "one key per mailbox, kept");
    assert_eq!(fetch(&mut bob, &url).as_deref(), Some(&stored[..]));

    // UIDVALIDITY, when the URL has one, must still be the mailbox's.
    let status = bob.cmd("STATUS INBOX (UIDVALIDITY)").unwrap().lines()[0].clone();
    let uid_validity: u32 = status
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let current = authorize(
        &mut bob,
        &format!("imap://bob@localhost/INBOX;UIDVALIDITY={uid_validity}/;UID=1;URLAUTH=user+bob"),
    );
    let stale = authorize(
        &mut bob,
        &format!(
            "imap://bob@localhost/INBOX;UIDVALIDITY={}/;UID=1;URLAUTH=user+bob",
            uid_validity + 1
        ),
    );
    // Several URLs in one command; NIL for the one that gives nothing.
    let r = bob
        .cmd(&format!("URLFETCH {} {}", quote(&current), quote(&stale)))
        .unwrap();
    let line = r.untagged[0].clone();
    assert!(line.ends_with(format!(" {} NIL", quote(&stale)).as_bytes()), "{r:?}");
    assert!(line.windows(stored.len()).any(|w| w == stored), "{r:?}");

    // A part, and a partial range of it.
    let text = authorize(
        &mut bob,
        "imap://bob@localhost/INBOX/;UID=2/;SECTION=TEXT/;PARTIAL=6.4;URLAUTH=authuser",
    );
    assert_eq!(fetch(&mut bob, &text).as_deref(), Some(&b"Bob."[..]));

    // authuser: any logged-in user; user+bob: bob only; submit+bob: BURL only.
    let mut alice = server.imap_login("alice");
    assert_eq!(fetch(&mut alice, &text).as_deref(), Some(&b"Bob."[..]));
    assert_eq!(fetch(&mut alice, &url), None);
    let submit = authorize(&mut bob, "imap://bob@localhost/INBOX/;UID=1;URLAUTH=submit+bob");
    assert_eq!(fetch(&mut bob, &submit), None);
    let for_alice = authorize(&mut bob, "imap://bob@localhost/INBOX/;UID=1;URLAUTH=user+alice");
    assert_eq!(fetch(&mut alice, &for_alice).as_deref(), Some(&stored[..]));

    // URLFETCH is a peek.
    let flags = bob.cmd("UID FETCH 1:2 FLAGS").unwrap().lines().join("\n");
    assert!(!flags.contains("\\Seen"), "{flags}");
}

#[test]
fn tampered_and_foreign_urls_are_refused() {
    let server = bob_with(2);
    server.add_user("alice");
    let mut bob = server.imap_login("bob");
    let url = authorize(&mut bob, "imap://bob@localhost/INBOX/;UID=1;URLAUTH=user+bob");
    let last = url.len() - 1;
    let flipped = if url.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{flipped}", &url[..last]);
    assert_eq!(fetch(&mut bob, &tampered), None);
    // The token covers the rump: another message with the same token is nothing.
    assert_eq!(fetch(&mut bob, &url.replace(";UID=1;", ";UID=2;")), None);
    assert_eq!(fetch(&mut bob, &url.replace(":INTERNAL:", ":OTHER:")), None);
    assert_eq!(fetch(&mut bob, &url.replace("/INBOX/", "/Nope/")), None);
    assert_eq!(fetch(&mut bob, "imap://bob@localhost/INBOX/;UID=1"), None);
    assert!(fetch(&mut bob, &url).is_some());

    let refused = |c: &mut Imap, args: &str| {
        let r = c.cmd(&format!("GENURLAUTH {args}")).unwrap();
        (r.status, r.text)
    };
    let (status, text) = refused(
        &mut bob,
        "\"imap://bob@localhost/INBOX/;UID=1;URLAUTH=anonymous\" INTERNAL",
    );
    assert_eq!(
        (status.as_str(), text.as_str()),
        ("NO", "anonymous access is not offered")
    );
    let (status, _) = refused(
        &mut bob,
        "\"imap://alice@localhost/INBOX/;UID=1;URLAUTH=user+bob\" INTERNAL",
    );
    assert_eq!(status, "NO", "only alice authorizes URLs of her mailboxes");
    let (status, _) = refused(&mut bob, "\"imap://bob@localhost/INBOX/;UID=1;URLAUTH=user+bob\" XYZ");
    assert_eq!(status, "NO");
    let (status, text) = refused(
        &mut bob,
        "\"imap://bob@localhost/Nope/;UID=1;URLAUTH=user+bob\" INTERNAL",
    );
    assert_eq!(
        (status.as_str(), text.as_str()),
        ("NO", "[NONEXISTENT] no such mailbox")
    );
    let (status, _) = refused(&mut bob, &format!("{} INTERNAL", quote(&url)));
    assert_eq!(status, "NO", "already authorized");
    let (status, _) = refused(&mut bob, "\"imap://bob@localhost/INBOX;URLAUTH=user+bob\" INTERNAL");
    assert_eq!(status, "BAD", "no UID");
}

#[test]
fn resetkey_revokes_urls() {
    let server = bob_with(1);
    let mut bob = server.imap_login("bob");
    let r = bob.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    // SELECT says which mechanisms this mailbox's URLs can be authorized with.
    assert!(
        r.lines().iter().any(|l| l.starts_with("* OK [URLMECH INTERNAL]")),
        "{r:?}"
    );
    bob.cmd("UID COPY 1 Archive").unwrap().expect_ok().unwrap();
    let inbox = authorize(&mut bob, "imap://bob@localhost/INBOX/;UID=1;URLAUTH=user+bob");
    let archive = authorize(&mut bob, "imap://bob@localhost/Archive/;UID=1;URLAUTH=user+bob");
    assert!(fetch(&mut bob, &inbox).is_some() && fetch(&mut bob, &archive).is_some());

    let r = bob.cmd("RESETKEY INBOX INTERNAL").unwrap();
    assert_eq!(
        (r.status.as_str(), r.text.as_str()),
        ("OK", "[URLMECH INTERNAL] RESETKEY completed")
    );
    assert_eq!(fetch(&mut bob, &inbox), None, "the old key's URLs are revoked");
    assert!(fetch(&mut bob, &archive).is_some(), "other mailboxes keep theirs");
    let again = authorize(&mut bob, "imap://bob@localhost/INBOX/;UID=1;URLAUTH=user+bob");
    assert_ne!(again, inbox);
    assert!(fetch(&mut bob, &again).is_some());
    assert_eq!(bob.cmd("RESETKEY INBOX OTHER").unwrap().status, "NO");
    assert_eq!(bob.cmd("RESETKEY Nope").unwrap().status, "NO");

    bob.cmd("RESETKEY").unwrap().expect_ok().unwrap();
    assert_eq!((fetch(&mut bob, &again), fetch(&mut bob, &archive)), (None, None));

    // Keys are durable: a URL made now still works after a restart.
    let url = authorize(&mut bob, "imap://bob@localhost/INBOX/;UID=1;URLAUTH=user+bob");
    let mut server = server;
    server.restart();
    let mut bob = server.imap_login("bob");
    assert!(fetch(&mut bob, &url).is_some());

    // An account denied URLAUTH is not told of its mechanisms either.
    server.set_user("bob", &["--imap-disable", "URLAUTH"]);
    let mut bob = server.imap_login("bob");
    let r = bob.cmd("EXAMINE INBOX").unwrap().expect_ok().unwrap();
    assert!(!r.lines().iter().any(|l| l.contains("URLMECH")), "{r:?}");
}

#[test]
fn expired_urls_are_refused() {
    let server = bob_with(1);
    let mut bob = server.imap_login("bob");
    let rump = |at: u64| {
        format!(
            "imap://bob@localhost/INBOX/;UID=1;EXPIRE={};URLAUTH=user+bob",
            rfc3339(at)
        )
    };
    let r = bob
        .cmd(&format!("GENURLAUTH {} INTERNAL", quote(&rump(unix_now() - 60))))
        .unwrap();
    assert_eq!(r.status, "NO", "expired already: {r:?}");
    let lasting = authorize(&mut bob, &rump(unix_now() + 3600));
    assert!(fetch(&mut bob, &lasting).is_some());
    let expires = unix_now() + 1;
    let brief = authorize(&mut bob, &rump(expires));
    while unix_now() <= expires + 1 {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(fetch(&mut bob, &brief), None);
    assert!(fetch(&mut bob, &lasting).is_some());
}

/// bob's IMAP session, his message's URL for submission, and a submission session as `user`.
fn burl_setup(server: &Server, user: &str) -> (String, Smtp) {
    let mut bob = server.imap_login("bob");
    let url = authorize(&mut bob, "imap://bob@localhost/INBOX/;UID=1;URLAUTH=submit+bob");
    let c = server.smtp_login(user);
    assert!(c.caps.iter().any(|k| k == "BURL imap"), "{:?}", c.caps);
    (url, c)
}

fn bdat(c: &mut Smtp, chunk: &[u8], last: bool) -> u16 {
    let last = if last { " LAST" } else { "" };
    let mut wire = format!("BDAT {}{last}\r\n", chunk.len()).into_bytes();
    wire.extend_from_slice(chunk);
    c.t.send_raw(&wire).unwrap();
    c.reply().unwrap().code
}

/// Every message in `user`'s INBOX.
fn inbox(server: &Server, user: &str) -> Vec<Vec<u8>> {
    let mut c = server.imap_login(user);
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let exists = r.lines().iter().find_map(|l| {
        l.strip_suffix(" EXISTS")
            .and_then(|n| n.strip_prefix("* "))
            .map(|n| n.parse::<u32>().unwrap())
    });
    (1..=exists.unwrap()).map(|uid| body(&mut c, uid)).collect()
}

#[test]
fn burl_submits_a_message_built_from_a_url() {
    let server = bob_with(1);
    server.add_user("alice");
    let (url, mut c) = burl_setup(&server, "bob");
    let mut bob = server.imap_login("bob");
    bob.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let stored = String::from_utf8(body(&mut bob, 1)).unwrap();
    assert!(stored.ends_with(&String::from_utf8(message("m1")).unwrap()));

    // A forward: our header and the first MIME boundary, the stored message, the last boundary.
    assert_eq!(c.cmd("MAIL FROM:<bob@localhost>").unwrap().code, 250);
    assert_eq!(c.cmd("RCPT TO:<alice@localhost>").unwrap().code, 250);
    let head = b"From: bob@localhost\r\nTo: alice@localhost\r\nSubject: Fwd: m1\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n";
    assert_eq!(bdat(&mut c, head, false), 250);
    let added = c.cmd(&format!("BURL {url}")).unwrap();
    assert_eq!(added.code, 250, "{added:?}");
    assert!(added.text.starts_with("2.5.0 "), "{added:?}");
    let sent = bdat(&mut c, b"\r\n--b--\r\n", true);
    assert_eq!(sent, 250);

    // A quote: our header, then the URL's body text as the last chunk.
    let text_url = authorize(
        &mut bob,
        "imap://bob@localhost/INBOX/;UID=1/;SECTION=TEXT;URLAUTH=submit+bob",
    );
    c.cmd("MAIL FROM:<bob@localhost>").unwrap();
    c.cmd("RCPT TO:<alice@localhost>").unwrap();
    assert_eq!(
        bdat(&mut c, b"From: bob@localhost\r\nSubject: quote\r\n\r\n", false),
        250
    );
    let done = c.cmd(&format!("BURL {text_url} LAST")).unwrap();
    assert_eq!(done.code, 250, "{done:?}");
    assert_eq!(c.cmd("QUIT").unwrap().code, 221);

    let got = inbox(&server, "alice");
    assert_eq!(got.len(), 2);
    let forward = String::from_utf8(got[0].clone()).unwrap();
    assert!(
        forward.starts_with("Received: "),
        "the submission edits apply: {forward}"
    );
    assert!(forward.contains("Subject: Fwd: m1\r\n"), "{forward}");
    assert!(
        forward.contains(&format!("message/rfc822\r\n\r\n{stored}\r\n--b--\r\n")),
        "{forward}"
    );
    let quote_msg = String::from_utf8(got[1].clone()).unwrap();
    assert!(quote_msg.contains("\r\nSubject: quote\r\n"), "{quote_msg}");
    assert!(
        quote_msg.ends_with("\r\n\r\nHello Bob.\r\n.leading dot\r\nBye.\r\n"),
        "{quote_msg}"
    );
}

#[test]
fn burl_refuses_urls_not_for_this_submitter() {
    let server = bob_with(1);
    server.add_user("alice");
    let (url, mut c) = burl_setup(&server, "alice");
    let attempt = |c: &mut Smtp, url: &str| {
        assert_eq!(c.cmd("MAIL FROM:<alice@localhost>").unwrap().code, 250);
        assert_eq!(c.cmd("RCPT TO:<bob@localhost>").unwrap().code, 250);
        let reply = c.cmd(&format!("BURL {url} LAST")).unwrap();
        assert_eq!(bdat(c, b"", true), 503, "the transaction is over");
        c.cmd("RSET").unwrap();
        (reply.code, reply.text)
    };
    // bob's submit+bob URL is not alice's to send.
    let (code, text) = attempt(&mut c, &url);
    assert_eq!(code, 554);
    assert!(text.starts_with("5.7.0 "), "{text}");

    let mut bob_imap = server.imap_login("bob");
    let user_url = authorize(&mut bob_imap, "imap://bob@localhost/INBOX/;UID=1;URLAUTH=user+bob");
    let mut bob = server.smtp_login("bob");
    let for_bob = |c: &mut Smtp, url: &str| {
        assert_eq!(c.cmd("MAIL FROM:<bob@localhost>").unwrap().code, 250);
        assert_eq!(c.cmd("RCPT TO:<alice@localhost>").unwrap().code, 250);
        let reply = c.cmd(&format!("BURL {url} LAST")).unwrap();
        c.cmd("RSET").unwrap();
        (reply.code, reply.text)
    };
    // Only submit+ URLs are for submission, and a token must verify.
    let (code, text) = for_bob(&mut bob, &user_url);
    assert_eq!((code, &text[..6]), (554, "5.7.0 "), "{text}");
    let tampered = url.replace(";UID=1;", ";UID=2;");
    let (code, text) = for_bob(&mut bob, &tampered);
    assert_eq!((code, &text[..6]), (554, "5.7.0 "), "{text}");
    let (code, text) = for_bob(&mut bob, "imap://bob@localhost/INBOX/;UID=1");
    assert_eq!((code, &text[..6]), (554, "5.6.6 "), "{text}");
    assert!(inbox(&server, "alice").is_empty());
    assert_eq!(inbox(&server, "bob").len(), 1);
}

/// RFC 4469 §5: CATENATE takes an authorized URL as URLFETCH does, so alice can put a part of
/// bob's message into her own mail when bob authorized it for her, and only then.
#[test]
fn catenate_takes_urls_authorized_for_the_user() {
    let server = bob_with(1);
    server.add_user("alice");
    let mut bob = server.imap_login("bob");
    bob.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let stored = body(&mut bob, 1);
    let for_alice = authorize(&mut bob, "imap://bob@localhost/INBOX/;UID=1;URLAUTH=user+alice");
    let for_bob = authorize(&mut bob, "imap://bob@localhost/INBOX/;UID=1;URLAUTH=user+bob");

    let mut alice = server.imap_login("alice");
    let catenate = |c: &mut Imap, url: &str| {
        c.cmd(&format!(
            "APPEND INBOX CATENATE (TEXT {{10+}}\r\nX-Fwd: 1\r\n URL {})",
            quote(url)
        ))
        .unwrap()
    };
    let r = catenate(&mut alice, &for_alice);
    assert!(r.ok() && r.text.contains("APPENDUID"), "{r:?}");
    alice.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert_eq!(body(&mut alice, 1), [b"X-Fwd: 1\r\n".as_slice(), &stored].concat());
    // Bob's own URL, or a tampered one, is not hers to use.
    let r = catenate(&mut alice, &for_bob);
    assert!(r.status == "NO" && r.text.contains("[BADURL "), "{r:?}");
    let flipped = if for_alice.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{flipped}", &for_alice[..for_alice.len() - 1]);
    let r = catenate(&mut alice, &tampered);
    assert!(r.status == "NO" && r.text.contains("does not verify"), "{r:?}");
}
