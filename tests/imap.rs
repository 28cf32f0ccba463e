//! IMAP over real sockets: login policy, mailbox and message commands, literals, pipelining,
//! two sessions on one mailbox, IDLE woken by LMTP delivery, and bad input.

mod common;

use std::time::{Duration, Instant};

use common::{bob_with, has, message, Extra, Server, PASSWORD};

#[test]
fn login_needs_tls_first_under_secure_login() {
    let server = bob_with(0);
    let mut c = server.imap_plain();
    assert!(
        c.greeting.contains("STARTTLS") && c.greeting.contains("LOGINDISABLED"),
        "{}",
        c.greeting
    );
    let r = c.login("bob", PASSWORD).unwrap();
    assert_eq!(r.status, "NO");
    assert!(r.text.contains("PRIVACYREQUIRED"), "{}", r.text);
    c.starttls(server.tls(), "localhost").unwrap();
    let caps = c.cmd("CAPABILITY").unwrap();
    assert!(has(&caps, "AUTH=PLAIN") && !has(&caps, "LOGINDISABLED") && !has(&caps, "STARTTLS"));
    let r = c.login("bob", PASSWORD).unwrap();
    assert!(r.ok() && r.text.contains("CAPABILITY"), "{r:?}");
    let mut c = server.imap_tls();
    assert!(!c.login("bob", "wrong").unwrap().ok());
    assert!(c.login("bob", PASSWORD).unwrap().ok());
}

#[test]
fn authenticate_plain_with_sasl_ir_and_policy() {
    let server = bob_with(0);
    let mut c = server.imap_tls();
    let blob = "AGJvYgBzM2NyZXQgcGFzcw=="; // \0bob\0s3cret pass
    assert!(c.cmd(&format!("AUTHENTICATE PLAIN {blob}")).unwrap().ok());
    server.set_user("bob", &["--imap", "off"]);
    let mut c = server.imap_tls();
    let r = c.login("bob", PASSWORD).unwrap();
    assert!(r.status == "NO" && r.text.contains("IMAP4 access is disabled"), "{r:?}");
    let mut c = server.imap_tls();
    assert_eq!(c.login("anonymous", "x").unwrap().status, "NO");
}

#[test]
fn select_fetch_and_flags() {
    let server = bob_with(2);
    let mut c = server.imap_login("bob");
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(r.text.contains("[READ-WRITE]"));
    for needle in [
        "* 2 EXISTS",
        "* 2 RECENT",
        "[UIDVALIDITY ",
        "[UIDNEXT 3]",
        "[UNSEEN 1]",
        "PERMANENTFLAGS",
    ] {
        assert!(has(&r, needle), "{needle} missing from {:?}", r.lines());
    }
    let r = c.cmd("FETCH 1:* (UID FLAGS RFC822.SIZE)").unwrap().expect_ok().unwrap();
    let size = message("m1").len();
    assert!(
        has(&r, &format!("* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE {size})")),
        "{:?}",
        r.lines()
    );
    let r = c.cmd("FETCH 2 BODY.PEEK[]").unwrap().expect_ok().unwrap();
    let body = &r.untagged[0];
    assert!(
        body.windows(message("m2").len()).any(|w| w == message("m2")),
        "{}",
        String::from_utf8_lossy(body)
    );
    let r = c.cmd("FETCH 1 (ENVELOPE BODYSTRUCTURE)").unwrap().expect_ok().unwrap();
    assert!(has(&r, "\"m1\"") && has(&r, "\"TEXT\" \"PLAIN\""), "{:?}", r.lines());
    // A non-PEEK BODY[] sets \Seen, and says so.
    let r = c
        .cmd("FETCH 1 BODY[HEADER.FIELDS (SUBJECT)]")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(has(&r, "\\Seen") && has(&r, "Subject: m1"), "{:?}", r.lines());
    let r = c.cmd("STORE 2 +FLAGS (\\Flagged $Work)").unwrap().expect_ok().unwrap();
    assert!(
        has(&r, "* 2 FETCH (FLAGS (\\Flagged \\Recent $Work))"),
        "{:?}",
        r.lines()
    );
    let r = c.cmd("UID STORE 2 -FLAGS.SILENT ($Work)").unwrap().expect_ok().unwrap();
    assert!(r.untagged.is_empty(), "{:?}", r.lines());
    let r = c.cmd("SEARCH UNSEEN").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SEARCH 2"), "{:?}", r.lines());
    let r = c.cmd("UID SEARCH FLAGGED SUBJECT m2").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SEARCH 2"), "{:?}", r.lines());
    assert_eq!(c.cmd("FETCH 3 FLAGS").unwrap().status, "BAD", "no message 3");
    assert!(c.cmd("LOGOUT").unwrap().ok());
}

#[test]
fn copy_move_expunge_and_uidplus() {
    let server = bob_with(3);
    let mut c = server.imap_login("bob");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let r = c.cmd("COPY 1 Archive").unwrap().expect_ok().unwrap();
    assert!(r.text.contains("[COPYUID "), "{r:?}");
    let r = c.cmd("UID MOVE 2 Trash").unwrap().expect_ok().unwrap();
    assert!(has(&r, "[COPYUID ") && has(&r, "* 2 EXPUNGE"), "{:?}", r.lines());
    assert!(c.cmd("COPY 1 Nowhere").unwrap().text.contains("TRYCREATE"));
    c.cmd("STORE 1 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    let r = c.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 1 EXPUNGE"), "{:?}", r.lines());
    let r = c
        .cmd("STATUS Archive (MESSAGES UIDNEXT UNSEEN)")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(
        has(&r, "* STATUS \"Archive\" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)"),
        "{:?}",
        r.lines()
    );
    c.cmd("STORE 1 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    c.cmd("CLOSE").unwrap().expect_ok().unwrap();
    let r = c.cmd("EXAMINE INBOX").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 0 EXISTS") && r.text.contains("READ-ONLY"), "{:?}", r.lines());
}

#[test]
fn mailboxes_append_and_list() {
    let server = bob_with(0);
    let mut c = server.imap_login("bob");
    let r = c.cmd("LIST \"\" *").unwrap().expect_ok().unwrap();
    for needle in [
        "\"INBOX\"",
        "(\\HasNoChildren \\Sent) \"/\" \"Sent\"",
        "\\Trash",
        "\\Drafts",
        "\\Junk",
        "\\Archive",
    ] {
        assert!(has(&r, needle), "{needle} missing from {:?}", r.lines());
    }
    let r = c.cmd("LIST \"\" \"\"").unwrap().expect_ok().unwrap();
    assert!(has(&r, "(\\Noselect) \"/\" \"\""));
    c.cmd("CREATE Projects/Rust").unwrap().expect_ok().unwrap();
    assert_eq!(c.cmd("CREATE Projects").unwrap().status, "NO");
    c.cmd("CREATE \"Entw&APw-rfe\"").unwrap().expect_ok().unwrap();
    let r = c.cmd("LIST \"\" %").unwrap().expect_ok().unwrap();
    assert!(
        has(&r, "(\\HasChildren) \"/\" \"Projects\"") && has(&r, "\"Entw&APw-rfe\""),
        "{:?}",
        r.lines()
    );
    c.cmd("RENAME Projects Work").unwrap().expect_ok().unwrap();
    let r = c.cmd("LIST Work/ %").unwrap().expect_ok().unwrap();
    assert!(has(&r, "\"Work/Rust\""), "{:?}", r.lines());
    c.cmd("SUBSCRIBE Work/Rust").unwrap().expect_ok().unwrap();
    let r = c.cmd("LSUB \"\" *").unwrap().expect_ok().unwrap();
    assert!(has(&r, "Work/Rust") && has(&r, "INBOX"), "{:?}", r.lines());
    let msg = message("appended");
    let r = c.append("Work/Rust", "\\Seen", &msg).unwrap().expect_ok().unwrap();
    assert!(r.text.contains("[APPENDUID "), "{r:?}");
    let r = c.append("Nowhere", "", &msg).unwrap();
    assert!(r.status == "NO" && r.text.contains("TRYCREATE"), "{r:?}");
    let r = c
        .cmd("STATUS Work/Rust (MESSAGES UNSEEN)")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(has(&r, "(MESSAGES 1 UNSEEN 0)"), "{:?}", r.lines());
    assert_eq!(c.cmd("DELETE INBOX").unwrap().status, "NO");
    c.cmd("DELETE Work").unwrap().expect_ok().unwrap();
    let r = c.cmd("LIST \"\" Work").unwrap().expect_ok().unwrap();
    assert!(has(&r, "\\Noselect"), "{:?}", r.lines());
    let r = c.cmd("NAMESPACE").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* NAMESPACE ((\"\" \"/\")) NIL NIL"));
    // The appended message round-trips, literal and all.
    c.cmd("SELECT Work/Rust").unwrap().expect_ok().unwrap();
    let r = c.cmd("FETCH 1 BODY.PEEK[]").unwrap().expect_ok().unwrap();
    assert!(
        r.untagged[0].ends_with(&[msg.as_slice(), b")"].concat()),
        "{:?}",
        r.lines()
    );
}

#[test]
fn two_sessions_see_each_others_changes() {
    let server = bob_with(2);
    let mut a = server.imap_login("bob");
    let mut b = server.imap_login("bob");
    a.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    b.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    b.cmd("STORE 1 +FLAGS (\\Deleted \\Seen)").unwrap().expect_ok().unwrap();
    let r = a.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 1 FETCH (FLAGS (\\Seen \\Deleted"), "{:?}", r.lines());
    b.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    server.deliver("bob", &message("m3"));
    // A FETCH must not announce the expunge; NOOP does.
    let r = a.cmd("FETCH 1 UID").unwrap().expect_ok().unwrap();
    assert!(!has(&r, "EXPUNGE"), "{:?}", r.lines());
    let r = a.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 1 EXPUNGE") && has(&r, "* 2 EXISTS"), "{:?}", r.lines());
}

/// RFC 9051 §5.2: new mail is announced at the end of any command, not only NOOP or IDLE; an
/// expunge waiting holds it back where EXPUNGE may not be sent (FETCH), not during a UID
/// command.
#[test]
fn new_mail_is_announced_at_the_end_of_every_command() {
    let server = bob_with(1);
    let mut a = server.imap_login("bob");
    let mut b = server.imap_login("bob");
    a.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    for (round, command) in [
        "UID FETCH 1:* (UID)",
        "UID SEARCH ALL",
        "STATUS INBOX (MESSAGES)",
        "LIST \"\" INBOX",
    ]
    .iter()
    .enumerate()
    {
        server.deliver("bob", &message(&format!("m{round}")));
        let r = a.cmd(command).unwrap().expect_ok().unwrap();
        assert!(
            has(&r, &format!("* {} EXISTS", round + 2)),
            "{command}: {:?}",
            r.lines()
        );
    }
    b.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    b.cmd("STORE 1 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    b.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    server.deliver("bob", &message("m9"));
    let r = a.cmd("FETCH 1 (UID)").unwrap().expect_ok().unwrap();
    assert!(
        !has(&r, "* 1 EXPUNGE") && !r.lines().iter().any(|l| l.ends_with("EXISTS")),
        "{:?}",
        r.lines()
    );
    let r = a.cmd("UID FETCH 1:* (UID)").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 1 EXPUNGE") && has(&r, "* 5 EXISTS"), "{:?}", r.lines());
    // Commands that end after a store write (STORE) or after flushing a long answer in parts
    // (a FETCH of 3 MB) announce too.
    server.deliver("bob", &message("m10"));
    let r = a.cmd("STORE 1 +FLAGS (\\Flagged)").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 6 EXISTS"), "{:?}", r.lines());
    let big = format!("Subject: big\r\n\r\n{}", "0123456789abcdef\r\n".repeat(3 << 16));
    server.deliver("bob", big.as_bytes());
    server.deliver("bob", &message("m11"));
    let r = a.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 8 EXISTS"), "{:?}", r.lines());
    server.deliver("bob", &message("m12"));
    let r = a.cmd("FETCH 7:8 BODY.PEEK[]").unwrap().expect_ok().unwrap();
    let short: Vec<_> = r.lines().into_iter().filter(|l| l.len() < 200).collect();
    assert!(has(&r, "* 9 EXISTS"), "{short:?}");
}

#[test]
fn idle_hears_new_mail_at_once() {
    let server = bob_with(1);
    let mut a = server.imap_login("bob");
    a.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    a.t.send_line("i1 IDLE").unwrap();
    assert!(a.t.read_line_string().unwrap().starts_with('+'));
    let started = Instant::now();
    server.deliver("bob", &message("pushed"));
    let line = a.t.read_line_string().unwrap();
    assert_eq!(line, "* 2 EXISTS");
    assert!(started.elapsed() < Duration::from_secs(5));
    a.t.send_line("DONE").unwrap();
    let r = a.finish("i1").unwrap();
    assert!(r.ok(), "{r:?}");
    assert!(a.cmd("NOOP").unwrap().ok());
}

/// A session in IDLE with nothing buffered is parked (its task ends; it lies in its core's
/// lot, whose epoll set and change feed stand for it). Over TLS it still hears every
/// delivery, a DONE that comes in pieces ends it (the first piece wakes the session, which
/// parks again until the rest), it parks again at the next IDLE, and the server's shutdown
/// reaches it with a BYE.
#[test]
fn a_parked_idle_session_hears_mail_wakes_for_done_in_pieces_and_hears_the_shutdown() {
    let mut server = bob_with(1);
    let mut a = server.imap_login("bob");
    a.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    for round in 0..3 {
        let tag = format!("i{round}");
        a.t.send_line(&format!("{tag} IDLE")).unwrap();
        assert!(a.t.read_line_string().unwrap().starts_with('+'));
        server.deliver("bob", &message("pushed"));
        assert_eq!(a.t.read_line_string().unwrap(), format!("* {} EXISTS", round + 2));
        a.t.send_raw(b"DO").unwrap();
        std::thread::sleep(Duration::from_millis(150));
        a.t.send_raw(b"NE\r\n").unwrap();
        let r = a.finish(&tag).unwrap();
        assert!(r.ok(), "{r:?}");
    }
    a.t.send_line("i9 IDLE").unwrap();
    assert!(a.t.read_line_string().unwrap().starts_with('+'));
    assert!(server.terminate().success());
    let line = a.t.read_line_string().unwrap();
    assert!(line.starts_with("* BYE"), "{line}");
}

/// A logged-in session quiet between commands for a second parks too (data in its core's
/// lot, not a task), over implicit TLS and STARTTLS alike: it hears nothing while parked, its
/// next command wakes it and is told what changed meanwhile, a command begun and left
/// unfinished keeps it awake, and the server's shutdown reaches it with a BYE.
#[test]
fn a_session_quiet_between_commands_parks_and_wakes_for_its_next_command() {
    let port = common::free_port();
    let tail = Box::leak(format!("[metrics]\nlisten = [\"127.0.0.1:{port}\"]\n").into_boxed_str());
    let mut server = Server::start_with(Extra {
        tail,
        ..Extra::default()
    });
    server.add_user("bob");
    server.deliver("bob", &message("first"));
    let parked = || parked_sessions(port);
    let wait_parked = |n: f64| wait_parked_sessions(port, n);
    let mut tls = server.imap_login("bob");
    tls.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let mut upgraded = server.imap_starttls();
    upgraded.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    upgraded.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    wait_parked(2.0);

    server.deliver("bob", &message("second"));
    // Between commands nothing is sent; the next command hears of it.
    tls.t.set_read_timeout(Duration::from_millis(300)).unwrap();
    assert!(
        tls.t.read_line_string().is_err(),
        "a parked session spoke between commands"
    );
    tls.t.set_read_timeout(Duration::from_secs(10)).unwrap();
    let r = tls.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
    // A command begun keeps its session awake until it ends, however long that takes.
    upgraded.t.send_raw(b"a1 NO").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(parked(), Some(1.0), "only the quiet session is parked");
    upgraded.t.send_raw(b"OP\r\n").unwrap();
    let r = upgraded.finish("a1").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
    let r = upgraded.cmd("UID FETCH 1:* (FLAGS)").unwrap().expect_ok().unwrap();
    assert_eq!(r.lines().iter().filter(|l| l.contains(" FETCH (")).count(), 2, "{r:?}");
    wait_parked(2.0);

    assert!(server.terminate().success());
    for c in [&mut tls, &mut upgraded] {
        let line = c.t.read_line_string().unwrap();
        assert!(line.starts_with("* BYE"), "{line}");
    }
}

/// How many sessions lie parked in the server's lots, by its metrics.
fn parked_sessions(metrics_port: u16) -> Option<f64> {
    common::metrics::scrape(metrics_port)
        .get("ringmail_sessions_parked")
        .copied()
}

/// Waits (bounded) until `n` sessions are parked.
fn wait_parked_sessions(metrics_port: u16, n: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while parked_sessions(metrics_port) != Some(n) {
        let now = parked_sessions(metrics_port);
        assert!(Instant::now() < deadline, "{now:?} sessions parked, not {n}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A client in IDLE that has sent part of its DONE: the session takes it and parks again
/// (what it read of the line is the session's, not input left with the connection), still
/// hears of a delivery, and the rest of the DONE, however late, ends the IDLE.
#[test]
fn idle_with_part_of_done_parks_and_hears_of_changes() {
    let port = common::free_port();
    let tail = Box::leak(format!("[metrics]\nlisten = [\"127.0.0.1:{port}\"]\n").into_boxed_str());
    let server = Server::start_with(Extra {
        tail,
        ..Extra::default()
    });
    server.add_user("bob");
    let wait_parked = |n: f64| wait_parked_sessions(port, n);
    let mut c = server.imap_starttls();
    c.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    c.t.send_line("i1 IDLE").unwrap();
    assert!(c.t.read_line_string().unwrap().starts_with('+'));
    wait_parked(1.0);
    c.t.send_raw(b"DO").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    wait_parked(1.0);
    server.deliver("bob", &message("while half done"));
    assert_eq!(c.t.read_line_string().unwrap(), "* 1 EXISTS");
    c.t.send_raw(b"NE\r\n").unwrap();
    assert!(c.finish("i1").unwrap().ok());
    c.t.send_line("i2 IDLE").unwrap();
    assert!(c.t.read_line_string().unwrap().starts_with('+'));
    wait_parked(1.0);
    c.t.send_line("DONE").unwrap();
    assert!(c.finish("i2").unwrap().ok());
}

/// Sessions of several users wait in IDLE together in their core's lot: a delivery reaches
/// every session of its user, once, and no other session; plaintext and TLS sessions alike;
/// each, woken by DONE, finishes its IDLE and sees the count its user's deliveries left.
#[test]
fn parked_sessions_hear_only_their_own_mailbox() {
    let server = Server::start();
    let users = ["ann", "ben", "cat"];
    let mut sessions = Vec::new();
    for user in users {
        server.add_user(user);
        for plain in [false, true, false] {
            let mut c = if plain {
                let mut c = server.imap_starttls();
                c.login(user, PASSWORD).unwrap().expect_ok().unwrap();
                c
            } else {
                server.imap_login(user)
            };
            c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
            c.t.send_line("i1 IDLE").unwrap();
            assert!(c.t.read_line_string().unwrap().starts_with('+'));
            sessions.push((user, c));
        }
    }
    for (round, to) in ["ben", "ann", "ben"].into_iter().enumerate() {
        server.deliver(to, &message(&format!("m{round}")));
        let count = 1 + ["ben", "ann", "ben"][..round].iter().filter(|u| **u == to).count();
        for (user, c) in &mut sessions {
            let exists = format!("* {count} EXISTS");
            let mut heard = Vec::new();
            if *user == to {
                c.t.set_read_timeout(Duration::from_secs(10)).unwrap();
                while heard.last() != Some(&exists) {
                    heard.push(c.t.read_line_string().unwrap());
                }
            }
            // And whatever else comes until the session has been silent for a while.
            c.t.set_read_timeout(Duration::from_millis(200)).unwrap();
            heard.extend(std::iter::from_fn(|| c.t.read_line_string().ok()));
            if *user == to {
                assert_eq!(
                    heard.iter().filter(|l| **l == exists).count(),
                    1,
                    "{user} heard {heard:?}"
                );
                let news = |l: &String| l.ends_with("EXISTS") || l.ends_with("RECENT") || l.contains(" FETCH (");
                assert!(heard.iter().all(news), "{heard:?}");
            } else {
                assert!(heard.is_empty(), "{user} heard {to}'s delivery: {heard:?}");
            }
        }
    }
    for (user, c) in &mut sessions {
        c.t.set_read_timeout(Duration::from_secs(10)).unwrap();
        c.t.send_line("DONE").unwrap();
        assert!(c.finish("i1").unwrap().ok(), "{user}");
        let r = c.cmd("STATUS INBOX (MESSAGES)").unwrap().expect_ok().unwrap();
        let want = match *user {
            "ann" => 1,
            "ben" => 2,
            _ => 0,
        };
        assert!(has(&r, &format!("(MESSAGES {want})")), "{user}: {:?}", r.lines());
    }
}

/// Sessions silent between commands for a while, over TLS, STARTTLS or before login: the next
/// command is answered in the state they left (the selected mailbox, news of a delivery made
/// meanwhile; a login), and the server's shutdown reaches them with a BYE.
#[test]
fn sessions_silent_between_commands_answer_their_next_command_and_hear_the_shutdown() {
    let mut server = bob_with(1);
    let mut tls = server.imap_login("bob");
    tls.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let mut upgraded = server.imap_starttls();
    upgraded.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    let mut fresh = server.imap_tls();
    std::thread::sleep(Duration::from_millis(1500));
    server.deliver("bob", &message("while silent"));
    let r = tls.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 2 EXISTS"), "{:?}", r.lines());
    let r = tls.cmd("FETCH 2 (FLAGS)").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 2 FETCH (FLAGS"), "{:?}", r.lines());
    let r = upgraded.cmd("STATUS INBOX (MESSAGES)").unwrap().expect_ok().unwrap();
    assert!(has(&r, "(MESSAGES 2)"), "{:?}", r.lines());
    assert!(fresh.login("bob", PASSWORD).unwrap().ok());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(server.terminate().success());
    for c in [&mut tls, &mut upgraded, &mut fresh] {
        let line = c.t.read_line_string().unwrap();
        assert!(line.starts_with("* BYE"), "{line}");
    }
}

#[test]
fn idle_keepalive() {
    let server = Server::start_with(Extra {
        imap: "idle_keepalive = 1",
        ..Extra::default()
    });
    server.add_user("bob");
    let mut a = server.imap_login("bob");
    a.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    a.t.send_line("i1 IDLE").unwrap();
    assert!(a.t.read_line_string().unwrap().starts_with('+'));
    assert_eq!(a.t.read_line_string().unwrap(), "* OK Still here");
    a.t.send_line("DONE").unwrap();
    assert!(a.finish("i1").unwrap().ok());
}

#[test]
fn literals_pipelining_and_bad_input() {
    let server = bob_with(1);
    let mut c = server.imap_tls();
    // LOGIN with a synchronizing literal for the password.
    c.t.send_line(&format!("l1 LOGIN bob {{{}}}", PASSWORD.len())).unwrap();
    assert!(c.t.read_line_string().unwrap().starts_with('+'));
    c.t.send_line(PASSWORD).unwrap();
    assert!(c.finish("l1").unwrap().ok());
    // Pipelined commands with a non-synchronizing literal.
    c.t.send_raw(b"p1 SELECT {5+}\r\nINBOX\r\np2 FETCH 1 UID\r\np3 NOOP\r\n")
        .unwrap();
    assert!(c.finish("p1").unwrap().ok());
    assert!(c.finish("p2").unwrap().ok());
    assert!(c.finish("p3").unwrap().ok());
    for bad in [
        "b1 FETCH",
        "b2 FETCH x FLAGS",
        "b3 BOGUS",
        "b4 STORE 1 +FLAGS (\\Bogus)",
        "b5 SELECT \"unterminated",
    ] {
        let tag = bad.split(' ').next().unwrap();
        c.t.send_line(bad).unwrap();
        let r = c.finish(tag).unwrap();
        assert_eq!(r.status, "BAD", "{bad} -> {r:?}");
    }
    let long = format!("x1 FETCH 1 ({})", "FLAGS ".repeat(20_000));
    c.t.send_line(&long).unwrap();
    assert_eq!(c.finish("x1").unwrap().status, "BAD");
    assert!(c.cmd("NOOP").unwrap().ok(), "the session survives");
    // Issue 9: a name that is not modified UTF-7 is refused as a name, not as syntax.
    assert_eq!(
        c.cmd("CREATE \"&Jjo!-\"").unwrap().status,
        "NO",
        "invalid modified UTF-7"
    );
}

#[test]
fn python_imaplib() {
    let server = bob_with(2);
    let script = r#"
import imaplib, ssl, sys
port, tls_port, cafile, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)
m = imaplib.IMAP4("localhost", port)
m.starttls(ssl_context=ctx)
m.login("bob", password)
typ, data = m.select("INBOX")
assert typ == "OK" and data == [b"2"], data
typ, data = m.search(None, "ALL")
assert data == [b"1 2"], data
typ, data = m.fetch("2", "(RFC822)")
assert b"Subject: m2" in data[0][1], data
typ, data = m.uid("STORE", "1", "+FLAGS", "(\\Flagged)")
assert typ == "OK", data
typ, data = m.list()
assert any(b"INBOX" in l for l in data), data
m.append("Drafts", "(\\Draft)", None, b"Subject: draft\r\n\r\nhi\r\n")
m.logout()
s = imaplib.IMAP4_SSL("localhost", tls_port, ssl_context=ctx)
s.login("bob", password)
s.select("Drafts")
typ, data = s.fetch("1", "(FLAGS BODY.PEEK[HEADER])")
assert b"\\Draft" in data[0][0] and b"Subject: draft" in data[0][1], data
s.logout()
print("imaplib ok")
"#;
    run_python(&server, script, &[]);
}

#[test]
fn curl_imap_and_imaps() {
    let server = bob_with(1);
    let curl = |url: String, extra: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["--silent", "--show-error", "--max-time", "30", "--cacert"])
            .arg(server.data_dir().join("cert.pem"))
            .args(["--user", &format!("bob:{PASSWORD}")])
            .args(extra)
            .arg(url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let body = curl(format!("imaps://localhost:{}/INBOX;UID=1", server.ports.imaps), &[]);
    assert_eq!(body.as_bytes(), message("m1"));
    let list = curl(format!("imap://localhost:{}/", server.ports.imap), &["--ssl-reqd"]);
    assert!(list.contains("INBOX") && list.contains("Sent"), "{list}");
    let search = curl(
        format!("imaps://localhost:{}/INBOX", server.ports.imaps),
        &["--request", "SEARCH ALL"],
    );
    assert!(search.contains("SEARCH 1"), "{search}");
}

#[test]
fn quota_roots() {
    let server = bob_with(1);
    server.set_user("bob", &["--quota", "10240"]);
    let mut c = server.imap_login("bob");
    let r = c.cmd("GETQUOTAROOT INBOX").unwrap().expect_ok().unwrap();
    assert!(
        has(&r, "* QUOTAROOT \"INBOX\" \"\"") && has(&r, "* QUOTA \"\" (STORAGE 1 10)"),
        "{:?}",
        r.lines()
    );
    let r = c.cmd("GETQUOTA \"\"").unwrap().expect_ok().unwrap();
    assert!(has(&r, "(STORAGE 1 10)"));
    assert_eq!(c.cmd("GETQUOTA \"other\"").unwrap().status, "NO");
    let big = vec![b'x'; 20_000];
    let msg = [b"Subject: big\r\n\r\n".as_slice(), &big].concat();
    let r = c.append("INBOX", "", &msg).unwrap();
    assert!(r.status == "NO" && r.text.contains("OVERQUOTA"), "{r:?}");
}

#[test]
fn oversized_append_is_refused_and_the_session_goes_on() {
    let server = Server::start_with(Extra {
        imap: "append_limit = 1000",
        ..Extra::default()
    });
    server.add_user("bob");
    let mut c = server.imap_login("bob");
    c.t.send_line("t1 APPEND INBOX {5000}").unwrap();
    let r = c.finish("t1").unwrap();
    assert!(r.status == "NO" && r.text.contains("[TOOBIG]"), "{r:?}");
    assert!(c.cmd("NOOP").unwrap().ok());
    let r = c.append("INBOX", "", &message("small")).unwrap();
    assert!(r.ok(), "{r:?}");
}

#[test]
fn protocol_log_hides_passwords() {
    let server = Server::start_with(Extra {
        imap: "protocol_log = true",
        ..Extra::default()
    });
    server.add_user("bob");
    let mut c = server.imap_tls();
    c.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    c.cmd("AUTHENTICATE PLAIN AGJvYgBzM2NyZXQgcGFzcw==").unwrap();
    c.cmd("LOGOUT").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let logs = server.data_dir().join("logs");
    let text: String = std::fs::read_dir(&logs)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    assert!(
        text.contains("LOGIN \"bob\" <redacted>") && text.contains("AUTHENTICATE PLAIN <redacted>"),
        "{text}"
    );
    assert!(!text.contains("s3cret") && !text.contains("AGJvYgBz"), "{text}");
    assert!(
        text.contains("> a3 OK LOGOUT completed") || text.contains("OK LOGOUT completed"),
        "{text}"
    );
}

#[test]
fn readme_lists_the_capabilities_the_server_offers() {
    let server = bob_with(0);
    let mut c = server.imap_login("bob");
    let caps = c.cmd("CAPABILITY").unwrap().expect_ok().unwrap().lines()[0].clone();
    let offered = caps.strip_prefix("* CAPABILITY ").unwrap();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.lines().any(|l| l == offered),
        "README.md does not list: {offered}"
    );
}

#[test]
fn reselect_says_closed() {
    let server = bob_with(1);
    let mut c = server.imap_login("bob");
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(!has(&r, "[CLOSED]"));
    let r = c.cmd("EXAMINE Sent").unwrap().expect_ok().unwrap();
    assert_eq!(r.lines()[0], "* OK [CLOSED] previous mailbox closed");
    let r = c.cmd("SELECT Nowhere").unwrap();
    assert!(r.status == "NO" && has(&r, "[CLOSED]"));
    assert_eq!(
        c.cmd("FETCH 1 UID").unwrap().status,
        "BAD",
        "a failed SELECT leaves nothing selected"
    );
}

/// SELECT waits for a write (taking \Recent); messages appended meanwhile must be counted in
/// EXISTS and UIDNEXT alike: UIDNEXT above every UID the mailbox then holds. Found by
/// `loadtest mixed`'s model with two sessions on one mailbox.
#[test]
fn select_during_appends_reports_a_uidnext_above_every_uid() {
    let server = bob_with(1);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let mut w = server.imap_login("bob");
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                w.append("INBOX", "", b"Subject: s\r\n\r\nx\r\n")
                    .unwrap()
                    .expect_ok()
                    .unwrap();
            }
        })
    };
    let mut a = server.imap_login("bob");
    for _ in 0..150 {
        let select = a.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
        let number = |prefix: &str, suffix: &str| -> u32 {
            let line = select
                .lines()
                .into_iter()
                .find(|l| l.starts_with(prefix) && l.ends_with(suffix));
            let line = line.unwrap_or_else(|| panic!("no {prefix}..{suffix} in {:?}", select.lines()));
            line[prefix.len()..].split([' ', ']']).next().unwrap().parse().unwrap()
        };
        let (exists, uid_next) = (number("* ", " EXISTS"), number("* OK [UIDNEXT ", "next UID"));
        let fetch = a.cmd(&format!("FETCH {exists} (UID)")).unwrap().expect_ok().unwrap();
        let last = fetch.lines().into_iter().find_map(|l| {
            let rest = l.strip_prefix(&format!("* {exists} FETCH (UID "))?;
            rest.trim_end_matches(')').parse::<u32>().ok()
        });
        let last = last.unwrap_or_else(|| panic!("no UID for message {exists}: {:?}", fetch.lines()));
        assert!(
            last < uid_next,
            "EXISTS {exists} UIDNEXT {uid_next}, but message {exists} has UID {last}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

#[test]
fn dot_and_dot_dot_levels_are_refused_in_mailbox_names() {
    let server = Server::start();
    server.add_user("bob");
    let mut c = server.imap_login("bob");
    for name in ["..", "a/../b", "../../etc", ".", "a/.", "./a", "a/.."] {
        let r = c.cmd(&format!("CREATE \"{name}\"")).unwrap();
        assert!(r.status == "NO" && r.text.contains("[CANNOT]"), "{name}: {r:?}");
        let r = c.cmd(&format!("RENAME INBOX \"{name}\"")).unwrap();
        assert!(
            r.status == "NO" && r.text.contains("[CANNOT]"),
            "RENAME to {name}: {r:?}"
        );
    }
    // Dots inside a level are ordinary characters.
    for name in ["...", "a..b", ".hidden", "v1.2/notes."] {
        c.cmd(&format!("CREATE \"{name}\"")).unwrap().expect_ok().unwrap();
    }
    let list = c.cmd("LIST \"\" *").unwrap();
    assert!(
        !list
            .lines()
            .iter()
            .any(|l| l.ends_with(" \"..\"") || l.contains("/../")),
        "{list:?}"
    );
}

/// Large bodies go out from the store's map (`render`'s referred section data): every
/// byte and every literal's length must come out as stored, whole or partial, many messages to
/// a FETCH and across its flushes, with and without `\Seen` to store, and just before LOGOUT.
/// Checked by CPython's imaplib and ssl over implicit TLS and STARTTLS, and in plaintext.
#[test]
fn large_bodies_arrive_exactly_over_tls_starttls_and_plaintext() {
    let server = Server::start_with(Extra {
        imap: "login_type = \"plain-text-login\"",
        ..Extra::default()
    });
    server.add_user("bob");
    // Four of 300 KB (three store chunks each; together past one FETCH step's 256 KiB), one of
    // 5 KB and one below the size that is referred to rather than copied.
    let lines = [7680, 125, 7680, 12, 7680, 7680];
    for (i, n) in lines.iter().enumerate() {
        server.deliver("bob", &big_message(i + 1, *n));
    }
    let script = r#"
import imaplib, socket, ssl, sys
port, tls_port, cafile, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = [int(n) for n in sys.argv[5].split(",")]
def message(i, n):
    text = "".join("%d:%36d\r\n" % (i, k) for k in range(n))
    return ("Subject: big%d\r\n\r\n" % i + text).encode()
want = [message(i + 1, n) for i, n in enumerate(lines)]
ctx = ssl.create_default_context(cafile=cafile)

def check(m, how):
    m.login("bob", password)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [str(len(want)).encode()], data
    typ, data = m.fetch("1:*", "(UID BODY.PEEK[])")
    got = [d[1] for d in data if isinstance(d, tuple)]
    assert got == want, (how, [len(g) for g in got])
    typ, data = m.fetch("3", "(BODY.PEEK[]<1000.200000> RFC822.SIZE BODY.PEEK[TEXT])")
    assert data[0][1] == want[2][1000:201000], how
    assert data[1][1] == want[2][want[2].index(b"\r\n\r\n") + 4:], how
    typ, data = m.uid("FETCH", "1:*", "(BINARY.PEEK[1] RFC822.HEADER)")
    parts = [d[1] for d in data if isinstance(d, tuple)]
    assert parts[0::2] == [w[w.index(b"\r\n\r\n") + 4:] for w in want], how
    # Not a peek: \Seen is stored after the data, which goes out first.
    typ, data = m.fetch("5:6", "(RFC822)")
    assert [d[1] for d in data if isinstance(d, tuple)] == want[4:], how
    assert b"".join(d if isinstance(d, bytes) else d[0] for d in data).count(b"\\Seen") == 2, (how, data[1::2])
    typ, data = m.fetch("1:*", "FLAGS")
    assert [b"\\Seen" in d for d in data] == [False] * 4 + [True] * 2, (how, data)
    m.store("5:6", "-FLAGS", "(\\Seen)")
    m.logout()

check(imaplib.IMAP4_SSL("localhost", tls_port, ssl_context=ctx), "implicit TLS")
m = imaplib.IMAP4("localhost", port)
m.starttls(ssl_context=ctx)
check(m, "STARTTLS")
check(imaplib.IMAP4("localhost", port), "plaintext")

# A FETCH pipelined with LOGOUT (of less than one wake's output, so nothing is sent between
# them): its data is all sent before the goodbye, over TLS and in plaintext.
def pipelined(s, how):
    s.sendall(b"a LOGIN bob \"" + password.encode() + b"\"\r\nb SELECT INBOX\r\nc FETCH 2 BODY.PEEK[]\r\nd LOGOUT\r\n")
    got = b""
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        got += chunk
    literal = b"BODY[] {%d}\r\n" % len(want[1])
    assert literal in got, (how, got[:600])
    at = got.index(literal) + len(literal)
    assert got[at:at + len(want[1])] == want[1], how
    rest = got[at + len(want[1]):]
    assert rest.startswith(b")\r\nc OK"), (how, rest[:80])
    assert b"* BYE" in rest and b"d OK" in rest, (how, rest)

pipelined(ctx.wrap_socket(socket.create_connection(("localhost", tls_port)), server_hostname="localhost"), "implicit TLS")
pipelined(socket.create_connection(("localhost", port)), "plaintext")
print("large bodies ok")
"#;
    let lines: Vec<String> = lines.iter().map(|n| n.to_string()).collect();
    run_python(&server, script, &[lines.join(",")]);
}

/// Runs a CPython `script` (`common::python`) with the server's IMAP and IMAPS ports, its CA
/// file and the password as its first arguments, then `extra`.
fn run_python(server: &Server, script: &str, extra: &[String]) {
    let mut args = vec![
        server.ports.imap.to_string(),
        server.ports.imaps.to_string(),
        server.data_dir().join("cert.pem").display().to_string(),
        PASSWORD.to_string(),
    ];
    args.extend_from_slice(extra);
    common::python(script, &args);
}

/// Message `i` of `big_message`'s kind: a subject and `lines` numbered lines of 40 bytes.
fn big_message(i: usize, lines: usize) -> Vec<u8> {
    let text: String = (0..lines).map(|k| format!("{i}:{k:>36}\r\n")).collect();
    format!("Subject: big{i}\r\n\r\n{text}").into_bytes()
}
