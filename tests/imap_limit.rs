//! RFC 9738 MESSAGELIMIT and SAVELIMIT over real sockets: commands cut to the limit work on
//! the messages with the highest UIDs, from the highest down, and say where they stopped;
//! what is atomic is refused whole; EXPUNGE is never limited.

mod common;

use common::{has, message, raw, Extra, Server};
use loadtest::client::imap::{Imap, Response};

/// The `* n FETCH` sequence numbers of a response, in the order they came.
fn fetched(r: &Response) -> Vec<u32> {
    r.lines()
        .iter()
        .filter(|l| l.contains(" FETCH ("))
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect()
}

/// The numbers of a `* SEARCH` line, in the order they came.
fn searched(r: &Response) -> Vec<u32> {
    let line = r.lines().into_iter().find(|l| l.starts_with("* SEARCH")).unwrap();
    line["* SEARCH".len()..]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

fn ok_with(r: &Response, text: &str) {
    assert!(r.ok() && r.text.starts_with(text), "{r:?}");
}

fn no_with(r: &Response, text: &str) {
    assert!(r.status == "NO" && r.text.starts_with(text), "{r:?}");
}

/// A MULTIAPPEND (RFC 3502) of `n` small messages to `mailbox`, with LITERAL+.
fn multiappend(c: &mut Imap, mailbox: &str, n: usize) -> Response {
    let mut command = format!("APPEND {mailbox}").into_bytes();
    for i in 0..n {
        let m = message(&format!("append{i}"));
        command.extend_from_slice(format!(" {{{}+}}\r\n", m.len()).as_bytes());
        command.extend_from_slice(&m);
    }
    raw(c, &[&command])
}

fn server(imap: &'static str, messages: usize) -> Server {
    let server = Server::start_with(Extra {
        imap,
        ..Extra::default()
    });
    for user in ["bob", "carol"] {
        server.add_user(user);
        for i in 1..=messages {
            server.deliver(user, &message(&format!("m{i}")));
        }
    }
    server
}

#[test]
fn message_limit_cuts_from_the_highest_uid_and_refuses_what_is_atomic() {
    let server = server("message_limit = 3", 5);
    let mut c = server.imap_login("bob");
    let caps = c.cmd("CAPABILITY").unwrap();
    assert!(has(&caps, " MESSAGELIMIT=3") && !has(&caps, "SAVELIMIT"), "{caps:?}");
    c.cmd("CREATE Keep").unwrap().expect_ok().unwrap();
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();

    // The first CONDSTORE command's OK carries HIGHESTMODSEQ: the cut goes in an untagged NO.
    let r = c.cmd("FETCH 1:* (MODSEQ)").unwrap();
    ok_with(&r, "[HIGHESTMODSEQ ");
    assert!(has(&r, "* NO [MESSAGELIMIT 3 3] "), "{r:?}");
    assert_eq!(fetched(&r), vec![5, 4, 3]);

    // FETCH and UID FETCH: the highest three, highest first; within the limit, no code.
    let r = c.cmd("FETCH 1:* (UID)").unwrap();
    ok_with(&r, "[MESSAGELIMIT 3 3] ");
    assert_eq!(fetched(&r), vec![5, 4, 3]);
    let r = c.cmd("UID FETCH 1:2 (UID)").unwrap();
    assert!(r.ok() && !r.text.contains("MESSAGELIMIT"), "{r:?}");
    assert_eq!(fetched(&r), vec![1, 2]);

    // SEARCH counts the messages searched, not the matches; UID keys narrow them, NOT does not.
    let r = c.cmd("UID SEARCH ALL").unwrap();
    ok_with(&r, "[MESSAGELIMIT 3 3] ");
    assert_eq!(searched(&r), vec![5, 4, 3]);
    let r = c.cmd("UID SEARCH UIDBEFORE 3").unwrap();
    assert!(r.ok() && !r.text.contains("MESSAGELIMIT"), "{r:?}");
    assert_eq!(searched(&r), vec![1, 2]);
    let r = c.cmd("UID SEARCH UIDAFTER 1 NOT UID 5").unwrap();
    ok_with(&r, "[MESSAGELIMIT 3 3] ");
    assert_eq!(searched(&r), vec![4, 3]);
    let r = c.cmd("SEARCH UID 2:4 SUBJECT m").unwrap();
    assert!(r.ok() && !r.text.contains("MESSAGELIMIT"), "{r:?}");
    assert_eq!(searched(&r), vec![2, 3, 4]);
    assert_eq!(c.cmd("UID SEARCH UIDAFTER 0").unwrap().status, "BAD");
    assert_eq!(c.cmd("UID SEARCH UIDBEFORE 1:2").unwrap().status, "BAD");
    // ESEARCH answers a set; SEARCHRES keeps only what was returned.
    let r = c.cmd("UID SEARCH RETURN (ALL COUNT) ALL").unwrap();
    ok_with(&r, "[MESSAGELIMIT 3 3] ");
    assert!(has(&r, "COUNT 3 ALL 3:5"), "{r:?}");
    c.cmd("UID SEARCH RETURN (SAVE) ALL").unwrap().expect_ok().unwrap();
    let r = c.cmd("UID FETCH $ (UID)").unwrap();
    assert_eq!(fetched(&r), vec![3, 4, 5]);

    // SORT and THREAD over more than the limit are refused; narrowed, they run.
    no_with(&c.cmd("SORT (SUBJECT) UTF-8 ALL").unwrap(), "[MESSAGELIMIT 3] ");
    no_with(&c.cmd("THREAD REFERENCES UTF-8 ALL").unwrap(), "[MESSAGELIMIT 3] ");
    let r = c.cmd("UID SORT (REVERSE SUBJECT) UTF-8 UIDAFTER 2").unwrap();
    assert!(r.ok() && has(&r, "* SORT 5 4 3"), "{r:?}");

    // A PARTIAL page wider than the limit is refused before any work.
    no_with(&c.cmd("FETCH 1:* (UID) (PARTIAL 1:4)").unwrap(), "[MESSAGELIMIT 3] ");
    let r = c.cmd("FETCH 1:* (UID) (PARTIAL -1:-3)").unwrap();
    assert!(r.ok() && !r.text.contains("MESSAGELIMIT"), "{r:?}");
    assert_eq!(fetched(&r), vec![3, 4, 5]);

    // COPY and MULTIAPPEND are atomic: refused whole, nothing saved.
    no_with(&c.cmd("COPY 1:* Keep").unwrap(), "[MESSAGELIMIT 3 3] ");
    no_with(&multiappend(&mut c, "Keep", 4), "[MESSAGELIMIT 3] ");
    let r = c.cmd("STATUS Keep (MESSAGES)").unwrap();
    assert!(has(&r, "(MESSAGES 0)"), "{r:?}");
    ok_with(&c.cmd("COPY 1:3 Keep").unwrap(), "[COPYUID ");
    multiappend(&mut c, "Keep", 3).expect_ok().unwrap();

    // STORE: the highest three only.
    let r = c.cmd("STORE 1:* +FLAGS (\\Flagged)").unwrap();
    ok_with(&r, "[MESSAGELIMIT 3 3] ");
    assert_eq!(fetched(&r), vec![5, 4, 3]);
    let r = c.cmd("SEARCH FLAGGED").unwrap();
    assert_eq!(searched(&r), vec![5, 4, 3]);
    let r = c.cmd("UID SEARCH UIDBEFORE 3 FLAGGED").unwrap();
    assert_eq!(searched(&r), Vec::<u32>::new());

    // MOVE is done in part.
    let r = c.cmd("MOVE 1:* Keep").unwrap();
    ok_with(&r, "[MESSAGELIMIT 3 3] ");
    assert!(has(&r, "* OK [COPYUID "), "{r:?}");
    assert_eq!(r.lines().iter().filter(|l| l.ends_with(" EXPUNGE")).count(), 3, "{r:?}");
    let r = c.cmd("UID SEARCH ALL").unwrap();
    assert_eq!(searched(&r), vec![1, 2]);

    // UID EXPUNGE counts what it removes; EXPUNGE is never limited.
    for i in 6..=8 {
        server.deliver("bob", &message(&format!("m{i}")));
    }
    c.cmd("NOOP").unwrap().expect_ok().unwrap();
    c.cmd("STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("STORE 3:5 +FLAGS.SILENT (\\Deleted)")
        .unwrap()
        .expect_ok()
        .unwrap();
    let r = c.cmd("UID EXPUNGE 1:*").unwrap();
    ok_with(&r, "[MESSAGELIMIT 3 6] ");
    assert_eq!(r.lines().iter().filter(|l| l.ends_with(" EXPUNGE")).count(), 3, "{r:?}");
    for i in 9..=11 {
        server.deliver("bob", &message(&format!("m{i}")));
    }
    c.cmd("NOOP").unwrap().expect_ok().unwrap();
    c.cmd("STORE 3:5 +FLAGS.SILENT (\\Deleted)")
        .unwrap()
        .expect_ok()
        .unwrap();
    let r = c.cmd("EXPUNGE").unwrap();
    assert!(r.ok() && !r.text.contains("MESSAGELIMIT"), "{r:?}");
    assert_eq!(r.lines().iter().filter(|l| l.ends_with(" EXPUNGE")).count(), 5, "{r:?}");

    // An account let off the limit (`--imap-disable MESSAGELIMIT`) is told of none and has none.
    server.set_user("carol", &["--imap-disable", "MESSAGELIMIT"]);
    let mut carol = server.imap_login("carol");
    assert!(!has(&carol.cmd("CAPABILITY").unwrap(), "MESSAGELIMIT"));
    carol.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let r = carol.cmd("FETCH 1:* (UID)").unwrap();
    assert!(r.ok() && !r.text.contains("MESSAGELIMIT"), "{r:?}");
    assert_eq!(fetched(&r), vec![1, 2, 3, 4, 5]);

    // CPython's imaplib speaks UID SEARCH with the new keys.
    let out = server.imaplib(
        "carol",
        &[],
        "m.select('INBOX')\nprint(m.uid('SEARCH', 'UIDAFTER', '3'))\nprint(m.uid('SEARCH', 'UIDBEFORE', '3'))\n",
    );
    assert_eq!(out, "('OK', [b'4 5'])\n('OK', [b'1 2'])\n");
}

#[test]
fn save_limit_bounds_only_copy_and_append() {
    let server = server("message_limit = 0\nsave_limit = 2", 3);
    let mut c = server.imap_login("bob");
    let caps = c.cmd("CAPABILITY").unwrap();
    assert!(has(&caps, " SAVELIMIT=2") && !has(&caps, "MESSAGELIMIT"), "{caps:?}");
    c.cmd("CREATE Keep").unwrap().expect_ok().unwrap();
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let r = c.cmd("FETCH 1:* (UID)").unwrap();
    assert!(r.ok() && !r.text.contains("MESSAGELIMIT"), "{r:?}");
    assert_eq!(fetched(&r), vec![1, 2, 3]);
    assert!(c.cmd("SORT (SUBJECT) UTF-8 ALL").unwrap().ok());
    no_with(&c.cmd("COPY 1:3 Keep").unwrap(), "[MESSAGELIMIT 2 2] ");
    no_with(&multiappend(&mut c, "Keep", 3), "[MESSAGELIMIT 2] ");
    multiappend(&mut c, "Keep", 2).expect_ok().unwrap();
    let r = c.cmd("MOVE 1:3 Keep").unwrap();
    assert!(r.ok() && !r.text.contains("MESSAGELIMIT"), "{r:?}");
    let r = c.cmd("STATUS Keep (MESSAGES)").unwrap();
    assert!(has(&r, "(MESSAGES 5)"), "{r:?}");
}

#[test]
fn both_limits_at_once_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("both.toml");
    std::fs::write(&config, "[imap]\nmessage_limit = 10\nsave_limit = 10\n").unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["config", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("exclude each other") && err.lines().count() == 1, "{err}");
}
