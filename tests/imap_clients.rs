//! Clients that come back (issue 9): phones that switch networks and log in again while their
//! old IDLE sessions still count against the per-user limit, commands pipelined right after
//! DONE, and UID COPY/MOVE of messages the session has not been told of yet.

mod common;

use std::time::Duration;

use common::{has, message, Extra, Server, PASSWORD};
use loadtest::client::imap::Imap;

fn server_with_user_limit(limit: u32) -> Server {
    let imap: &'static str = Box::leak(format!("max_connections_per_user = {limit}").into_boxed_str());
    let server = Server::start_with(Extra {
        imap,
        ..Extra::default()
    });
    server.add_user("bob");
    for i in 1..=2 {
        server.deliver("bob", &message(&format!("m{i}")));
    }
    server
}

/// Selects INBOX and enters IDLE; returns the IDLE command's tag.
fn idle(c: &mut Imap) -> String {
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let tag = c.tag();
    c.t.send_line(&format!("{tag} IDLE")).unwrap();
    let cont = c.t.read_line_string().unwrap();
    assert!(cont.starts_with('+'), "{cont}");
    tag
}

#[test]
fn a_login_at_the_user_limit_takes_the_place_of_the_oldest_idle_session() {
    let server = server_with_user_limit(2);
    let (mut old, mut newer) = (server.imap_login("bob"), server.imap_login("bob"));
    let _old_tag = idle(&mut old);
    std::thread::sleep(Duration::from_millis(50));
    let newer_tag = idle(&mut newer);

    // A third login is not refused: the oldest IDLE session makes room.
    let mut third = server.imap_tls();
    let r = third.login("bob", PASSWORD).unwrap();
    assert!(r.ok(), "{r:?}");
    let bye = old.t.read_line_string().unwrap();
    assert!(bye.starts_with("* BYE"), "{bye}");
    assert!(old.t.read_line_string().is_err(), "closed after BYE");

    // The newer IDLE session goes on.
    newer.t.send_line("DONE").unwrap();
    assert!(newer.finish(&newer_tag).unwrap().ok());

    // No session in IDLE: a login past the limit is refused as before, also once the others
    // have been silent between commands for a while.
    third.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut fourth = server.imap_tls();
    let r = fourth.login("bob", PASSWORD).unwrap();
    assert_eq!(r.status, "NO", "{r:?}");
}

#[test]
fn commands_pipelined_after_done_are_executed() {
    let server = server_with_user_limit(16);
    let mut c = server.imap_login("bob");
    let tag = idle(&mut c);
    // DONE and the next commands in one write, as iOS sends them.
    c.t.send_raw(b"DONE\r\np1 NOOP\r\np2 FETCH 1 (FLAGS)\r\np3 UID SEARCH ALL\r\n")
        .unwrap();
    assert!(c.finish(&tag).unwrap().ok());
    assert!(c.finish("p1").unwrap().ok());
    assert!(has(&c.finish("p2").unwrap(), "FLAGS"));
    assert!(has(&c.finish("p3").unwrap(), "SEARCH 1 2"));
    // IDLE, DONE and a command all at once, before the continuation was even read.
    c.t.send_raw(b"q1 IDLE\r\nDONE\r\nq2 NOOP\r\n").unwrap();
    assert!(c.finish("q1").unwrap().ok());
    assert!(c.finish("q2").unwrap().ok());
}

#[test]
fn uid_copy_and_move_reach_messages_not_yet_announced() {
    let server = server_with_user_limit(16);
    let mut c = server.imap_login("bob");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    // UID 3 arrives; this session has not been told (no NOOP yet).
    server.deliver("bob", &message("m3"));
    let r = c.cmd("UID COPY 3 Trash").unwrap().expect_ok().unwrap();
    assert!(r.text.contains("[COPYUID "), "{r:?}");
    let r = c.cmd("UID MOVE 3 Archive").unwrap().expect_ok().unwrap();
    assert!(has(&r, "[COPYUID "), "{:?}", r.lines());
    // UIDs that do not exist are ignored, with OK.
    let r = c.cmd("UID COPY 77:99 Trash").unwrap();
    assert!(r.ok() && !r.text.contains("COPYUID"), "{r:?}");
    let r = c.cmd("UID MOVE 77 Trash").unwrap();
    assert!(r.ok(), "{r:?}");
    let mut check = server.imap_login("bob");
    for (mailbox, count) in [("Trash", 1), ("Archive", 1), ("INBOX", 2)] {
        let r = check
            .cmd(&format!("STATUS {mailbox} (MESSAGES)"))
            .unwrap()
            .expect_ok()
            .unwrap();
        assert!(has(&r, &format!("MESSAGES {count})")), "{mailbox}: {:?}", r.lines());
    }
}

#[test]
fn extensions_switched_off_for_one_account_are_hidden_and_refused() {
    let server = server_with_user_limit(16);
    server.add_user("alice");
    server.set_user("bob", &["--imap-disable", "uidonly,MOVE,sort"]);
    let shown = server.cli(&["user", "show", "bob"], b"");
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("imap disabled: UIDONLY,MOVE,SORT"),
        "{shown:?}"
    );
    let refused = server.cli(&["user", "set", "bob", "--imap-disable", "IMAP4rev1"], b"");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");

    let mut bob = server.imap_login("bob");
    let caps = bob.cmd("CAPABILITY").unwrap().expect_ok().unwrap();
    let line = caps.lines()[0].clone();
    for gone in [" UIDONLY", " MOVE", " SORT", "SORT=DISPLAY"] {
        assert!(!line.contains(gone), "{gone} still offered: {line}");
    }
    assert!(line.contains(" IDLE") && line.contains("THREAD=REFERENCES"), "{line}");
    // The client's ENABLE UIDONLY is a no-op, so its sequence numbers keep working.
    let r = bob.cmd("ENABLE UIDONLY").unwrap().expect_ok().unwrap();
    assert!(!has(&r, "UIDONLY"), "{:?}", r.lines());
    bob.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(has(&bob.cmd("FETCH 1 (FLAGS)").unwrap().expect_ok().unwrap(), "FLAGS"));
    assert_eq!(bob.cmd("MOVE 1 Trash").unwrap().status, "BAD");
    assert_eq!(bob.cmd("SORT (DATE) UTF-8 ALL").unwrap().status, "BAD");
    assert!(bob.cmd("COPY 1 Trash").unwrap().ok());

    // Another account keeps everything.
    let mut alice = server.imap_login("alice");
    let caps = alice.cmd("CAPABILITY").unwrap().expect_ok().unwrap();
    assert!(has(&caps, " UIDONLY") && has(&caps, " MOVE"));
    let r = alice.cmd("ENABLE UIDONLY").unwrap().expect_ok().unwrap();
    assert!(has(&r, "ENABLED UIDONLY"), "{:?}", r.lines());

    // An empty list gives bob everything back.
    server.set_user("bob", &["--imap-disable", ""]);
    let mut bob = server.imap_login("bob");
    assert!(has(&bob.cmd("CAPABILITY").unwrap(), " MOVE"));
}
