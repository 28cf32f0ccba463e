//! RFC 5267 over real sockets: ESORT answers in sort order, and CONTEXT=SEARCH / CONTEXT=SORT
//! results kept up to date while another session appends, stores and expunges (ADDTO and
//! REMOVEFROM in IDLE and after NOOP, REMOVEFROM before the EXPUNGE it is due to), NOUPDATE,
//! tag reuse and CANCELUPDATE.

mod common;

use std::time::Duration;

use common::{bob_with, has, message};
use loadtest::client::imap::{Imap, Response};

/// Sends `command` under a fresh tag; the tag and the response.
fn run(c: &mut Imap, command: &str) -> (String, Response) {
    let tag = c.tag();
    c.t.send_line(&format!("{tag} {command}")).unwrap();
    let r = c.finish(&tag).unwrap();
    (tag, r)
}

/// The untagged lines starting with `* ESEARCH`.
fn esearch(r: &Response) -> Vec<String> {
    r.lines().into_iter().filter(|l| l.starts_with("* ESEARCH")).collect()
}

/// Untagged lines that arrive within `wait`, until one equals `until`.
fn lines_until(c: &mut Imap, until: &str, wait: Duration) -> Vec<String> {
    common::lines_until(c, wait, |l| l == until)
}

fn position(lines: &[String], line: &str) -> usize {
    lines
        .iter()
        .position(|l| l == line)
        .unwrap_or_else(|| panic!("no {line:?} in {lines:?}"))
}

/// A message with a subject to sort by and a size growing with `pad`.
fn sized(subject: &str, pad: usize) -> Vec<u8> {
    let mut m = message(subject);
    m.extend(std::iter::repeat_n(b'x', pad));
    m.extend_from_slice(b"\r\n");
    m
}

#[test]
fn esort_answers_in_sort_order() {
    let server = bob_with(0);
    let mut c = server.imap_login("bob");
    let caps = c.cmd("CAPABILITY").unwrap();
    assert!(has(&caps, " ESORT CONTEXT=SEARCH CONTEXT=SORT "), "{:?}", caps.lines());
    // Subjects c a e b d; sizes grow with the message number.
    for (i, subject) in ["c", "a", "e", "b", "d"].iter().enumerate() {
        c.append("INBOX", "", &sized(subject, i * 10))
            .unwrap()
            .expect_ok()
            .unwrap();
    }
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();

    // Dovecot's imaptest `esort` rows.
    for (returns, want) in [
        ("MIN", "MIN 1"),
        ("MAX", "MAX 5"),
        ("ALL", "ALL 1:5"),
        ("COUNT", "COUNT 5"),
    ] {
        let (tag, r) = run(&mut c, &format!("SORT RETURN ({returns}) (ARRIVAL) US-ASCII 1:5"));
        assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{tag}\") {want}")], "{returns}");
    }
    // RFC 5267 §3.1: MIN and MAX by sort order, ALL in it; a range only where it ascends.
    let (tag, r) = run(&mut c, "SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL");
    assert_eq!(
        esearch(&r),
        [format!("* ESEARCH (TAG \"{tag}\") MIN 2 MAX 3 COUNT 5 ALL 2,4,1,5,3")]
    );
    let (tag, r) = run(&mut c, "UID SORT RETURN () (REVERSE SIZE) UTF-8 ALL");
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{tag}\") UID ALL 5,4,3,2,1")]);
    let (tag, r) = run(&mut c, "SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 1:2,4:5");
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{tag}\") ALL 5,1,4,2")]);
    let (tag, r) = run(&mut c, "SORT RETURN (MIN) (SUBJECT) UTF-8 KEYWORD none");
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{tag}\")")]);
    // PARTIAL pages through the sort order (RFC 9394 on RFC 5267 §4.4).
    let (tag, r) = run(&mut c, "UID SORT RETURN (PARTIAL 2:3 COUNT) (SUBJECT) UTF-8 ALL");
    assert_eq!(
        esearch(&r),
        [format!("* ESEARCH (TAG \"{tag}\") UID COUNT 5 PARTIAL (2:3 4,1)")]
    );
    let (tag, r) = run(&mut c, "SORT RETURN (PARTIAL -1:-2) (SUBJECT) UTF-8 ALL");
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{tag}\") PARTIAL (-1:-2 5,3)")]);
    // SAVE keeps what MIN returned: the first in sort order.
    let (_, r) = run(&mut c, "SORT RETURN (SAVE MIN) (SUBJECT) UTF-8 ALL");
    assert!(r.ok(), "{r:?}");
    let r = c.cmd("UID SEARCH $").unwrap().expect_ok().unwrap();
    assert_eq!(r.lines(), ["* SEARCH 2"]);
    // Without RETURN, SORT answers as before.
    let r = c.cmd("SORT (SUBJECT) UTF-8 ALL").unwrap().expect_ok().unwrap();
    assert_eq!(r.lines(), ["* SORT 2 4 1 5 3"]);
    let r = c.cmd("SORT RETURN (FOO) (SUBJECT) UTF-8 ALL").unwrap();
    assert_eq!(r.status, "BAD");
}

/// Dovecot's imaptest `search-context-update` and `-update3`, with the changes made by a
/// second session: ADDTO and REMOVEFROM after NOOP and in IDLE, and during this session's own
/// STORE.
#[test]
fn search_context_follows_another_session() {
    let server = bob_with(6);
    let mut watcher = server.imap_login("bob");
    let mut other = server.imap_login("bob");
    watcher.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    other.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();

    let (seen, r) = run(&mut watcher, "SEARCH RETURN (UPDATE) BODY Bob SEEN");
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{seen}\")")]);
    let (flagged, r) = run(&mut watcher, "UID SEARCH RETURN (UPDATE ALL COUNT) FLAGGED");
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{flagged}\") UID COUNT 0")]);

    // Another session's flag changes, heard at the next NOOP.
    other.cmd("STORE 1,2,5 +FLAGS (\\Seen)").unwrap().expect_ok().unwrap();
    let r = watcher.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{seen}\") ADDTO (0 1:2,5)")]);
    assert!(has(&r, "* 5 FETCH (FLAGS (\\Seen"), "{:?}", r.lines());
    other.cmd("STORE 1,2 -FLAGS (\\Seen)").unwrap().expect_ok().unwrap();
    other.cmd("STORE 4 +FLAGS (\\Flagged)").unwrap().expect_ok().unwrap();
    let r = watcher.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert_eq!(
        esearch(&r),
        [
            format!("* ESEARCH (TAG \"{seen}\") REMOVEFROM (0 1:2)"),
            format!("* ESEARCH (TAG \"{flagged}\") UID ADDTO (0 4)"),
        ]
    );

    // This session's own STORE: the update comes with the STORE's answer.
    let r = watcher.cmd("STORE 3 +FLAGS (\\Seen)").unwrap().expect_ok().unwrap();
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{seen}\") ADDTO (0 3)")]);
    let r = watcher.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert!(esearch(&r).is_empty(), "told once: {:?}", r.lines());

    // In IDLE: new mail that matches enters after its EXISTS; an expunge leaves before its
    // EXPUNGE, numbered as the client still numbers it.
    let idle = watcher.tag();
    watcher.t.send_line(&format!("{idle} IDLE")).unwrap();
    assert!(watcher.t.read_line_string().unwrap().starts_with('+'));
    let wait = Duration::from_secs(5);
    other
        .append("INBOX", "\\Seen \\Flagged", &message("m7"))
        .unwrap()
        .expect_ok()
        .unwrap();
    let lines = lines_until(
        &mut watcher,
        &format!("* ESEARCH (TAG \"{flagged}\") UID ADDTO (0 7)"),
        wait,
    );
    let exists = position(&lines, "* 7 EXISTS");
    assert!(
        exists < position(&lines, &format!("* ESEARCH (TAG \"{seen}\") ADDTO (0 7)")),
        "{lines:?}"
    );

    other
        .cmd("STORE 3,5 +FLAGS.SILENT (\\Deleted)")
        .unwrap()
        .expect_ok()
        .unwrap();
    other.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    let lines = lines_until(&mut watcher, "* 4 EXPUNGE", wait);
    let removed = position(&lines, &format!("* ESEARCH (TAG \"{seen}\") REMOVEFROM (0 3,5)"));
    assert!(removed < position(&lines, "* 3 EXPUNGE"), "{lines:?}");
    watcher.t.send_line("DONE").unwrap();
    let r = watcher.finish(&idle).unwrap().expect_ok().unwrap();
    assert!(esearch(&r).is_empty(), "{:?}", r.lines());
    // Now 1 2 4(7) 6 7(7): the SEEN result is message 5 (UID 7).
    let r = watcher.cmd("SEARCH SEEN").unwrap().expect_ok().unwrap();
    assert_eq!(r.lines(), ["* SEARCH 5"]);

    // CANCELUPDATE ends a context; the other goes on.
    watcher
        .cmd(&format!("CANCELUPDATE \"{seen}\""))
        .unwrap()
        .expect_ok()
        .unwrap();
    other
        .cmd("STORE 1 +FLAGS (\\Seen \\Flagged)")
        .unwrap()
        .expect_ok()
        .unwrap();
    let r = watcher.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{flagged}\") UID ADDTO (0 1)")]);
    let r = watcher.cmd(&format!("CANCELUPDATE \"{seen}\"")).unwrap();
    assert_eq!(r.status, "NO", "{r:?}");

    // Contexts end with the selection.
    watcher.cmd("UNSELECT").unwrap().expect_ok().unwrap();
    watcher.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    other.cmd("STORE 2 +FLAGS (\\Flagged)").unwrap().expect_ok().unwrap();
    let r = watcher.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert!(esearch(&r).is_empty(), "{:?}", r.lines());
    let r = watcher.cmd(&format!("CANCELUPDATE \"{flagged}\"")).unwrap();
    assert_eq!(r.status, "NO", "{r:?}");
}

/// A sorted context places each newcomer at its position in sort order and removes a leaver
/// where it stands, in UIDs (UID SORT) or message numbers (SORT).
#[test]
fn sort_context_keeps_its_order() {
    let server = bob_with(0);
    let mut watcher = server.imap_login("bob");
    let mut other = server.imap_login("bob");
    for subject in ["b", "d", "f"] {
        watcher
            .append("INBOX", "", &message(subject))
            .unwrap()
            .expect_ok()
            .unwrap();
    }
    watcher.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    other.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let (undeleted, r) = run(&mut watcher, "UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNDELETED");
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{undeleted}\") UID ALL 1:3")]);
    let (by_number, r) = run(&mut watcher, "SORT RETURN (UPDATE MIN) (REVERSE SUBJECT) UTF-8 ALL");
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{by_number}\") MIN 3")]);

    // a (UID 4) sorts first, e (UID 5) between d and f.
    other.append("INBOX", "", &message("a")).unwrap().expect_ok().unwrap();
    other.append("INBOX", "", &message("e")).unwrap().expect_ok().unwrap();
    let r = watcher.cmd("NOOP").unwrap().expect_ok().unwrap();
    let lines = r.lines();
    assert_eq!(
        esearch(&r),
        [
            format!("* ESEARCH (TAG \"{undeleted}\") UID ADDTO (1 4 4 5)"),
            // REVERSE SUBJECT: f e d b a, so 5 (e) at 2 and 4 (a) at 5.
            format!("* ESEARCH (TAG \"{by_number}\") ADDTO (2 5 5 4)"),
        ]
    );
    assert!(position(&lines, "* 5 EXISTS") < position(&lines, &esearch(&r)[0]));

    // d is deleted: it leaves the UNDELETED result from position 3 (a b d e f).
    other
        .cmd("UID STORE 2 +FLAGS (\\Deleted)")
        .unwrap()
        .expect_ok()
        .unwrap();
    let r = watcher.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert_eq!(
        esearch(&r),
        [format!("* ESEARCH (TAG \"{undeleted}\") UID REMOVEFROM (3 2)")]
    );
    // Expunged, it leaves the ALL result from position 3 (f e d b a), as message 2, before
    // the EXPUNGE that renumbers.
    other.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    let r = watcher.cmd("NOOP").unwrap().expect_ok().unwrap();
    let lines = r.lines();
    let removed = format!("* ESEARCH (TAG \"{by_number}\") REMOVEFROM (3 2)");
    assert_eq!(esearch(&r), std::slice::from_ref(&removed));
    assert!(
        position(&lines, &removed) < position(&lines, "* 2 EXPUNGE"),
        "{lines:?}"
    );
    // In message numbers now: 1 b, 2 f, 3 a, 4 e.
    let r = watcher.cmd("SORT RETURN (ALL) (REVERSE SUBJECT) UTF-8 ALL").unwrap();
    assert_eq!(esearch(&r).len(), 1);
    assert!(esearch(&r)[0].ends_with(" ALL 2,4,1,3"), "{:?}", r.lines());
}

/// RFC 5267 §4.3 and §4.3.1: a tag in use is BAD; past the limit, or for a result that changes
/// with time alone, the command answers with `* NO [NOUPDATE "tag"]` and still succeeds.
#[test]
fn contexts_refused_and_tags_reused() {
    let server = bob_with(2);
    let mut c = server.imap_login("bob");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let mut tags = Vec::new();
    for _ in 0..8 {
        let (tag, r) = run(&mut c, "SEARCH RETURN (UPDATE COUNT) ALL");
        assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{tag}\") COUNT 2")]);
        assert!(!has(&r, "NOUPDATE"), "{:?}", r.lines());
        tags.push(tag);
    }
    let (tag, r) = run(&mut c, "UID SORT RETURN (UPDATE COUNT) (ARRIVAL) UTF-8 ALL");
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        r.lines(),
        [
            format!("* ESEARCH (TAG \"{tag}\") UID COUNT 2"),
            format!("* NO [NOUPDATE \"{tag}\"] too many updating contexts"),
        ]
    );
    // Reusing a tag of a context is BAD; of a refused one it is not.
    c.t.send_line(&format!("{} SEARCH RETURN (UPDATE) ALL", tags[0]))
        .unwrap();
    let r = c.finish(&tags[0]).unwrap();
    assert_eq!(r.status, "BAD", "{r:?}");
    c.t.send_line(&format!("{tag} SEARCH RETURN (COUNT) ALL")).unwrap();
    assert!(c.finish(&tag).unwrap().ok());
    // Cancelling frees a place.
    let both = format!("CANCELUPDATE \"{}\" \"{}\"", tags[0], tags[1]);
    c.cmd(&both).unwrap().expect_ok().unwrap();
    let (_, r) = run(&mut c, "SEARCH RETURN (UPDATE) SEEN");
    assert!(r.ok() && !has(&r, "NOUPDATE"), "{r:?}");
    let (tag, r) = run(&mut c, "SEARCH RETURN (UPDATE MIN) YOUNGER 3600");
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        r.lines(),
        [
            format!("* ESEARCH (TAG \"{tag}\") MIN 1"),
            format!("* NO [NOUPDATE \"{tag}\"] OLDER and YOUNGER results change with time alone"),
        ]
    );
    // CANCELUPDATE needs a mailbox selected.
    c.cmd("UNSELECT").unwrap().expect_ok().unwrap();
    assert_eq!(c.cmd("CANCELUPDATE \"x\"").unwrap().status, "BAD");
}

/// Expunges and new mail heard in one sync: REMOVEFROM in the numbers before the expunge, then
/// EXPUNGE (or VANISHED under QRESYNC), EXISTS, and ADDTO in the numbers after.
#[test]
fn expunge_and_arrival_in_one_sync() {
    let server = bob_with(4);
    let mut numbers = server.imap_login("bob");
    let mut qresync = server.imap_login("bob");
    let mut other = server.imap_login("bob");
    numbers.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    qresync.cmd("ENABLE QRESYNC").unwrap().expect_ok().unwrap();
    qresync.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    other.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let (all, r) = run(&mut numbers, "SEARCH RETURN (UPDATE ALL) ALL");
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{all}\") ALL 1:4")]);
    let (uids, r) = run(&mut qresync, "UID SEARCH RETURN (UPDATE) ALL");
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{uids}\") UID")]);

    other
        .cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
        .unwrap()
        .expect_ok()
        .unwrap();
    other.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    other.append("INBOX", "", &message("m5")).unwrap().expect_ok().unwrap();

    let lines = numbers.cmd("NOOP").unwrap().expect_ok().unwrap().lines();
    let order = [
        format!("* ESEARCH (TAG \"{all}\") REMOVEFROM (0 2)"),
        "* 2 EXPUNGE".to_owned(),
        "* 4 EXISTS".to_owned(),
        format!("* ESEARCH (TAG \"{all}\") ADDTO (0 4)"),
    ];
    let at: Vec<usize> = order.iter().map(|l| position(&lines, l)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{lines:?}");

    let lines = qresync.cmd("NOOP").unwrap().expect_ok().unwrap().lines();
    let order = [
        format!("* ESEARCH (TAG \"{uids}\") UID REMOVEFROM (0 2)"),
        "* VANISHED 2".to_owned(),
        "* 4 EXISTS".to_owned(),
        format!("* ESEARCH (TAG \"{uids}\") UID ADDTO (0 5)"),
    ];
    let at: Vec<usize> = order.iter().map(|l| position(&lines, l)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{lines:?}");
}

/// `$` in a program with UPDATE is the result the command searched, not the one its own SAVE
/// leaves (RFC 5182 §2.1), and message numbers name the messages they named then.
#[test]
fn saved_results_and_numbers_are_those_searched() {
    let server = bob_with(4);
    let mut c = server.imap_login("bob");
    let mut other = server.imap_login("bob");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    other.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    c.cmd("STORE 1 +FLAGS (\\Flagged)").unwrap().expect_ok().unwrap();
    c.cmd("SEARCH RETURN (SAVE) 1:2").unwrap().expect_ok().unwrap();
    let (saved, r) = run(&mut c, "SEARCH RETURN (SAVE UPDATE ALL) $ FLAGGED");
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{saved}\") ALL 1")]);
    let (numbered, r) = run(&mut c, "UID SEARCH RETURN (UPDATE ALL) 2:3 FLAGGED");
    assert_eq!(esearch(&r), [format!("* ESEARCH (TAG \"{numbered}\") UID")]);

    // Message 1 goes; UIDs 2 (in the `$` searched, message 2 when searched) and 4 (message 3
    // by then, not when searched) are flagged.
    other
        .cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
        .unwrap()
        .expect_ok()
        .unwrap();
    other.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    other
        .cmd("UID STORE 2,4 +FLAGS (\\Flagged)")
        .unwrap()
        .expect_ok()
        .unwrap();
    let r = c.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert_eq!(
        esearch(&r),
        [
            format!("* ESEARCH (TAG \"{saved}\") REMOVEFROM (0 1)"),
            format!("* ESEARCH (TAG \"{saved}\") ADDTO (0 1)"),
            format!("* ESEARCH (TAG \"{numbered}\") UID ADDTO (0 2)"),
        ]
    );
}
