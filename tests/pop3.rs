//! POP3 over real sockets: every command, on STLS and implicit TLS; pipelining; UIDL across a
//! restart; the UPDATE state's all-or-nothing deletions; bad input.

mod common;

use common::{bob_with, message, Extra, Server, PASSWORD};
use loadtest::client::pop3::{join, Pop3};

fn logged_in(mut c: Pop3) -> Pop3 {
    c.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    c
}

fn exercise_every_command(mut c: Pop3) {
    let capa = c.capa().unwrap();
    for cap in [
        "TOP",
        "UIDL",
        "USER",
        "RESP-CODES",
        "PIPELINING",
        "AUTH-RESP-CODE",
        "EXPIRE NEVER",
    ] {
        assert!(capa.iter().any(|l| l == cap), "{cap} missing from {capa:?}");
    }
    assert!(capa.iter().any(|l| l.starts_with("SASL PLAIN LOGIN SCRAM-SHA-256")));
    assert!(!capa.iter().any(|l| l == "STLS"), "STLS offered on TLS: {capa:?}");
    let mut c = logged_in(c);
    let stat = c.cmd("STAT").unwrap().expect_ok().unwrap();
    let one = message("m1").len();
    assert_eq!(stat.text, format!("2 {}", 2 * one));
    let (s, list) = c.multi("LIST").unwrap();
    assert!(s.ok);
    assert_eq!(
        list,
        vec![format!("1 {one}").into_bytes(), format!("2 {one}").into_bytes()]
    );
    assert_eq!(c.cmd("LIST 2").unwrap().text, format!("2 {one}"));
    assert!(!c.cmd("LIST 3").unwrap().ok);
    assert!(!c.cmd("LIST 0").unwrap().ok);
    let (_, uidl) = c.multi("UIDL").unwrap();
    assert_eq!(uidl.len(), 2);
    let uid2 = c.cmd("UIDL 2").unwrap().text;
    assert_eq!(uid2.as_bytes(), &uidl[1][..]);
    assert_eq!(
        c.retr(1).unwrap(),
        message("m1"),
        "RETR round-trips, dot-stuffing included"
    );
    let (s, top) = c.multi("TOP 2 1").unwrap();
    assert!(s.ok);
    let top = join(top);
    assert!(
        top.ends_with(b"Message-ID: <m2@example.org>\r\n\r\nHello Bob.\r\n"),
        "{top:?}"
    );
    let (_, top0) = c.multi("TOP 2 0").unwrap();
    assert!(join(top0).ends_with(b"\r\n\r\n"));
    assert!(c.cmd("NOOP").unwrap().ok);
    assert!(c.cmd("DELE 1").unwrap().ok);
    assert!(
        !c.cmd("DELE 1").unwrap().ok,
        "a deleted message cannot be deleted again"
    );
    assert!(!c.cmd("RETR 1").unwrap().ok, "nor retrieved");
    assert_eq!(c.cmd("STAT").unwrap().text, format!("1 {one}"));
    assert!(c.cmd("RSET").unwrap().ok);
    assert_eq!(c.cmd("STAT").unwrap().text, format!("2 {}", 2 * one));
    assert!(!c.cmd("USER bob").unwrap().ok, "USER is not valid in TRANSACTION");
    assert!(c.cmd("QUIT").unwrap().ok);
}

#[test]
fn every_command_over_stls() {
    let server = bob_with(2);
    exercise_every_command(server.pop3_stls());
}

#[test]
fn every_command_over_implicit_tls() {
    let server = bob_with(2);
    exercise_every_command(server.pop3_tls());
}

#[test]
fn plaintext_capabilities_offer_stls_and_hide_passwords() {
    let server = bob_with(0);
    let mut c = server.pop3_plain();
    let capa = c.capa().unwrap();
    assert!(capa.iter().any(|l| l == "STLS"));
    assert!(!capa.iter().any(|l| l == "USER" || l.starts_with("SASL")), "{capa:?}");
    let mut c = server.pop3_stls();
    assert!(!c.cmd("STLS").unwrap().ok, "no second STLS");
}

#[test]
fn sasl_mechanisms_log_in() {
    let server = bob_with(1);
    // Each session QUITs: the maildrop lock allows one at a time.
    let quit = |mut c: Pop3| assert!(c.cmd("QUIT").unwrap().ok);
    let mut c = server.pop3_tls();
    c.auth_plain("bob", PASSWORD, true).unwrap().expect_ok().unwrap();
    quit(c);
    let mut c = server.pop3_tls();
    c.auth_plain("bob", PASSWORD, false).unwrap().expect_ok().unwrap();
    quit(c);
    let mut c = server.pop3_tls();
    c.auth_login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    quit(c);
    let mut c = server.pop3_tls();
    c.auth_scram("bob", PASSWORD).unwrap().expect_ok().unwrap();
    assert_eq!(c.cmd("STAT").unwrap().text, format!("1 {}", message("m1").len()));
    quit(c);
    let mut c = server.pop3_tls();
    assert!(!c.auth_scram("bob", "wrong").unwrap().ok);
    let mut c = server.pop3_tls();
    let (s, mechs) = c.multi("AUTH").unwrap();
    assert!(s.ok);
    assert_eq!(
        mechs,
        vec![b"PLAIN".to_vec(), b"LOGIN".to_vec(), b"SCRAM-SHA-256".to_vec()]
    );
    c.t.send_line("AUTH PLAIN").unwrap();
    assert_eq!(c.t.read_line().unwrap(), b"+ ");
    assert!(!c.cmd("*").unwrap().ok, "cancelled");
    assert!(!c.cmd("AUTH CRAM-MD5").unwrap().ok);
    assert!(c.cmd("QUIT").unwrap().ok);
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let server = bob_with(2);
    let mut c = server.pop3_tls();
    c.t.send_raw(
        format!("USER bob\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST\r\nRETR 2\r\nNOOP\r\nBOGUS\r\nQUIT\r\n").as_bytes(),
    )
    .unwrap();
    assert!(c.status().unwrap().ok);
    assert!(c.status().unwrap().ok);
    assert!(c.status().unwrap().text.starts_with("2 "));
    assert!(c.status().unwrap().ok);
    assert_eq!(c.lines().unwrap().len(), 2);
    assert!(c.status().unwrap().ok);
    assert_eq!(join(c.lines().unwrap()), message("m2"));
    assert!(c.status().unwrap().ok);
    assert!(!c.status().unwrap().ok);
    assert!(c.status().unwrap().ok);
}

#[test]
fn uidl_is_stable_across_sessions_and_restarts() {
    let mut server = bob_with(3);
    let uidl = |server: &Server| {
        let mut c = logged_in(server.pop3_tls());
        let (_, lines) = c.multi("UIDL").unwrap();
        c.cmd("QUIT").unwrap();
        lines
            .into_iter()
            .map(|l| String::from_utf8(l).unwrap().split_once(' ').unwrap().1.to_owned())
            .collect::<Vec<_>>()
    };
    let before = uidl(&server);
    assert_eq!(before.len(), 3);
    assert_eq!(uidl(&server), before);
    server.restart();
    assert_eq!(uidl(&server), before);
    // Delete the last one; a new message must not get its UID back, even after a restart.
    let mut c = logged_in(server.pop3_tls());
    c.cmd("DELE 3").unwrap().expect_ok().unwrap();
    c.cmd("QUIT").unwrap().expect_ok().unwrap();
    server.restart();
    server.deliver("bob", &message("m4"));
    let after = uidl(&server);
    assert_eq!(&after[..2], &before[..2]);
    assert!(!before.contains(&after[2]), "UID reused: {after:?} vs {before:?}");
}

#[test]
fn deletions_happen_only_at_quit() {
    let server = bob_with(3);
    // DELE then a dropped connection deletes nothing.
    let mut c = logged_in(server.pop3_tls());
    c.cmd("DELE 1").unwrap().expect_ok().unwrap();
    drop(c);
    // DELE then RSET then QUIT deletes nothing.
    let mut c = loop {
        // The dropped session may still hold the maildrop lock for a moment.
        let mut c = server.pop3_tls();
        if c.login("bob", PASSWORD).unwrap().ok {
            break c;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(c.cmd("STAT").unwrap().text.starts_with("3 "));
    c.cmd("DELE 2").unwrap().expect_ok().unwrap();
    c.cmd("RSET").unwrap().expect_ok().unwrap();
    c.cmd("QUIT").unwrap().expect_ok().unwrap();
    // DELE then QUIT deletes.
    let mut c = logged_in(server.pop3_tls());
    assert!(c.cmd("STAT").unwrap().text.starts_with("3 "));
    c.cmd("DELE 1").unwrap().expect_ok().unwrap();
    c.cmd("DELE 3").unwrap().expect_ok().unwrap();
    let quit = c.cmd("QUIT").unwrap().expect_ok().unwrap();
    assert!(quit.text.contains("2 messages deleted"), "{quit:?}");
    let mut c = logged_in(server.pop3_tls());
    assert!(c.cmd("STAT").unwrap().text.starts_with("1 "));
    assert_eq!(c.retr(1).unwrap(), message("m2"));
}

#[test]
fn a_maildrop_in_use_is_refused() {
    let server = bob_with(1);
    let _first = logged_in(server.pop3_tls());
    let mut second = server.pop3_tls();
    let status = second.login("bob", PASSWORD).unwrap();
    assert!(!status.ok);
    assert!(status.text.starts_with("[IN-USE]"), "{status:?}");
}

#[test]
fn descending_order_lists_newest_first() {
    let server = Server::start_with(Extra {
        pop3: "message_retrieval_sort_order = \"descending\"",
        ..Extra::default()
    });
    server.add_user("bob");
    server.deliver("bob", &message("old"));
    server.deliver("bob", &message("new"));
    let mut c = logged_in(server.pop3_tls());
    assert_eq!(c.retr(1).unwrap(), message("new"));
    assert_eq!(c.retr(2).unwrap(), message("old"));
}

#[test]
fn bad_input_gets_an_error_and_the_session_goes_on() {
    let server = bob_with(1);
    let mut c = server.pop3_tls();
    for line in ["XYZZY", "", "LIST", "STAT 1", "RETR", "USER", "TOP 1", "\u{7f}\u{1}"] {
        let s = c.cmd(line).unwrap();
        assert!(!s.ok, "{line:?} -> {s:?}");
    }
    let long = "USER ".to_string() + &"x".repeat(600);
    assert!(!c.cmd(&long).unwrap().ok);
    let mut c = logged_in(c);
    for line in ["RETR x", "RETR 99999999999", "DELE 0", "TOP 1 -1", "LIST 1 2", "RETR 2"] {
        let s = c.cmd(line).unwrap();
        assert!(!s.ok, "{line:?} -> {s:?}");
    }
    c.t.send_raw(b"NOOP\xff\xfe\r\n").unwrap();
    assert!(!c.status().unwrap().ok);
    assert!(c.cmd("NOOP").unwrap().ok);
    assert_eq!(c.retr(1).unwrap(), message("m1"));
}

#[test]
fn stls_discards_pipelined_plaintext() {
    let server = bob_with(1);
    let mut c = server.pop3_plain();
    // A man in the middle could append commands to STLS; they must not run after the upgrade.
    c.t.send_raw(b"STLS\r\nUSER bob\r\n").unwrap();
    assert!(c.status().unwrap().ok);
    c.t.start_tls(server.tls(), "localhost").unwrap();
    assert!(
        !c.cmd(&format!("PASS {PASSWORD}")).unwrap().ok,
        "USER before TLS must be forgotten"
    );
}

/// Regression: bytes already buffered were overwritten by the next read (tokio-uring reads a
/// `Vec` at offset 0), so deep pipelines lost commands.
#[test]
fn deep_pipelines_lose_nothing() {
    let server = bob_with(3);
    for (name, mut c) in [("tls", server.pop3_tls()), ("stls", server.pop3_stls())] {
        c.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
        let mut wire = String::new();
        for i in 0..200 {
            wire.push_str(&format!("LIST {}\r\nNOOP\r\n", i % 3 + 1));
        }
        c.t.send_raw(wire.as_bytes()).unwrap();
        for i in 0..400 {
            let s = c.status().unwrap();
            assert!(s.ok, "{name}: reply {i}: {s:?}");
        }
        c.cmd("QUIT").unwrap();
    }
}

/// Once QUIT is answered the maildrop is free (RFC 1939 §6: the UPDATE state ends the
/// session's hold on it): a client that logs in again at once, on a connection it opened
/// before, is never told [IN-USE] — with and without deletions to commit.
#[test]
fn the_maildrop_is_free_once_quit_is_answered() {
    let server = bob_with(3);
    let mut current = server.pop3_tls();
    current.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    for round in 0..200 {
        let mut next = server.pop3_tls();
        if round == 199 {
            current.cmd("DELE 1").unwrap().expect_ok().unwrap();
        }
        current.cmd("QUIT").unwrap().expect_ok().unwrap();
        let s = next.login("bob", PASSWORD).unwrap();
        assert!(s.ok, "round {round}: {s:?}");
        current = next;
    }
    let stat = current.cmd("STAT").unwrap();
    assert!(stat.text.starts_with("2 "), "the DELE was committed: {stat:?}");
}

/// Bodies are stored in chunks of this many bytes (store::CHUNK_SIZE).
const CHUNK: usize = 128 * 1024;

/// A message of about `size` bytes of CRLF lines. With `dots`, some lines start with '.' (a
/// lone ".", "..", ".x"), one of them exactly where the second chunk begins.
fn big_message(subject: &str, size: usize, dots: bool) -> Vec<u8> {
    let mut m = format!("From: a@example.org\r\nSubject: {subject}\r\n\r\n").into_bytes();
    let mut n = 0;
    while m.len() < size {
        let line = if dots && CHUNK.saturating_sub(m.len()) < 80 && m.len() < CHUNK {
            // Pad up to the chunk boundary, so the next line starts the second chunk.
            let pad = CHUNK - m.len() - 2;
            m.extend(std::iter::repeat_n(b'p', pad));
            m.extend_from_slice(b"\r\n");
            ".on the chunk boundary".to_string()
        } else if dots && n % 97 == 0 {
            [".", "..", ".x leading dot"][n / 97 % 3].to_string()
        } else {
            format!("line {n} of {subject}: the quick brown fox jumps over the lazy dog")
        };
        m.extend_from_slice(line.as_bytes());
        m.extend_from_slice(b"\r\n");
        n += 1;
    }
    if dots {
        assert_eq!(&m[CHUNK - 2..CHUNK + 1], b"\r\n.", "a dot line starts the second chunk");
    }
    m
}

/// About 4,200 bytes whose line at byte 4,080 starts with '.': the store cuts a body just over
/// a page where the page ends (store's `txn::pieces`), so that dot line begins the second chunk.
fn page_message() -> Vec<u8> {
    const PAGE_END: usize = 4080;
    let mut m = b"From: a@example.org\r\nSubject: over a page\r\n\r\n".to_vec();
    while m.len() + 80 < PAGE_END {
        m.extend_from_slice(b"a line of the first page of the message\r\n");
    }
    let pad = PAGE_END - m.len() - 2;
    m.extend(std::iter::repeat_n(b'p', pad));
    m.extend_from_slice(b"\r\n.where the page ends\r\n");
    while m.len() < 4200 {
        m.extend_from_slice(b"..a tail line\r\n");
    }
    assert_eq!(&m[PAGE_END - 2..PAGE_END + 1], b"\r\n.");
    m
}

/// Header, blank line and the first `lines` body lines, as TOP returns them.
fn top_of(message: &[u8], lines: usize) -> Vec<u8> {
    let split = message.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut out = message[..split].to_vec();
    for line in message[split..].split_inclusive(|&b| b == b'\n').take(lines) {
        out.extend_from_slice(line);
    }
    out
}

/// RETR sends message bytes straight from the store (gathered writes over plaintext, encrypted
/// from the map over TLS): dot-free messages, dotted ones (stuffed where the store's index of
/// dot lines says, or scanned where a message has too many for one), bodies of several chunks,
/// a dot line on a chunk boundary (of full chunks, and where a body just over a page is cut),
/// deep pipelines mixing RETR, TOP and other commands, more than one gathered write's worth in
/// flight.
#[test]
fn bulk_retr_is_exact_over_every_transport() {
    let server = Server::start_with(Extra {
        pop3: "login_type = \"plain-text-login\"",
        ..Extra::default()
    });
    server.add_user("bob");
    let messages = [
        big_message("dot-free", 3 * CHUNK + 1000, false),
        big_message("dotted", 3 * CHUNK + 1000, true),
        page_message(),
        message("small dotted"),
        b"Subject: tiny\r\n\r\nno dots\r\n".to_vec(),
        // Every line starts with '.': stuffing everywhere, short runs copied.
        b"Subject: dense\r\n\r\n.a\r\n.\r\n..\r\n.b\r\n".to_vec(),
    ];
    for m in &messages {
        server.deliver("bob", m);
    }
    let sessions = [
        ("plain", server.pop3_plain()),
        ("stls", server.pop3_stls()),
        ("tls", server.pop3_tls()),
    ];
    for (name, c) in sessions {
        let mut c = logged_in(c);
        let mut wire = String::new();
        // Each reply: the lines of a multi-line one, or None for a single line (NOOP).
        let mut expected = Vec::new();
        for round in 0..3 {
            for (i, m) in messages.iter().enumerate() {
                wire.push_str(&format!("RETR {}\r\n", i + 1));
                expected.push(Some(m.clone()));
                if round == 1 {
                    wire.push_str(&format!("TOP {} 3\r\n", i + 1));
                    expected.push(Some(top_of(m, 3)));
                }
            }
            wire.push_str("NOOP\r\n");
            expected.push(None);
        }
        c.t.send_raw(wire.as_bytes()).unwrap();
        for (i, want) in expected.iter().enumerate() {
            let status = c.status().unwrap();
            assert!(status.ok, "{name}: reply {i}: {status:?}");
            if let Some(want) = want {
                let got = join(c.lines().unwrap());
                assert!(
                    got == *want,
                    "{name}: reply {i}: {} bytes, expected {}",
                    got.len(),
                    want.len()
                );
            }
        }
        assert!(c.cmd("QUIT").unwrap().ok, "{name}");
    }
}
