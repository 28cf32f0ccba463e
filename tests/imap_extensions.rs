//! IMAP extensions over real sockets: LITERAL- (RFC 7888), UNAUTHENTICATE (RFC 8437), REPLACE
//! (RFC 8508), UIDONLY (RFC 9586), PARTIAL (RFC 9394).

mod common;

use common::{bob_with, has, message, raw, Server, PASSWORD};
use loadtest::client::imap::Imap;

/// The offered capabilities, from a CAPABILITY command.
fn capabilities(c: &mut Imap) -> Vec<String> {
    let r = c.cmd("CAPABILITY").unwrap().expect_ok().unwrap();
    let line = r.lines().into_iter().find(|l| l.starts_with("* CAPABILITY ")).unwrap();
    line["* CAPABILITY ".len()..].split(' ').map(str::to_owned).collect()
}

/// RFC 7888 §5: before login the server offers LITERAL- and refuses a non-synchronizing literal
/// over 4096 octets with BAD [TOOBIG], skipping its data; after login it offers LITERAL+.
#[test]
fn literal_minus_before_login_literal_plus_after() {
    let server = bob_with(0);
    let mut c = server.imap_tls();
    let caps = capabilities(&mut c);
    assert!(caps.iter().any(|c| c == "LITERAL-"), "{caps:?}");
    assert!(!caps.iter().any(|c| c == "LITERAL+"), "never both: {caps:?}");
    let big = vec![b'x'; 5000];
    let r = raw(&mut c, &[b"LOGIN {3+}\r\nbob {5000+}\r\n", &big]);
    assert_eq!(r.status, "BAD", "{r:?}");
    assert!(r.text.starts_with("[TOOBIG]"), "{r:?}");
    // The literal was skipped: the connection is in step.
    assert!(c.cmd("NOOP").unwrap().ok());
    // Up to 4096 octets non-synchronizing is fine.
    let password = format!("{{{}+}}\r\n{PASSWORD}", PASSWORD.len());
    let r = raw(&mut c, &[b"LOGIN {3+}\r\nbob ", password.as_bytes()]);
    assert!(r.ok(), "{r:?}");
    let caps = capabilities(&mut c);
    assert!(caps.iter().any(|c| c == "LITERAL+"), "{caps:?}");
    assert!(!caps.iter().any(|c| c == "LITERAL-"), "{caps:?}");
    // After login a large non-synchronizing literal is taken.
    let mut big = message("big");
    big.resize(big.len() + 6000, b'y');
    let marker = format!("APPEND INBOX {{{}+}}\r\n", big.len());
    let r = raw(&mut c, &[marker.as_bytes(), &big]);
    assert!(r.ok() && r.text.contains("APPENDUID"), "{r:?}");
}

/// RFC 8437: UNAUTHENTICATE forgets the user, its mailbox and its ENABLEs, frees its connection
/// slot, and the next LOGIN on the same connection is somebody else's.
#[test]
fn unauthenticate_then_log_in_as_another_user() {
    let server = Server::start_with(common::Extra {
        imap: "max_connections_per_user = 1",
        ..Default::default()
    });
    server.add_user("bob");
    server.add_user("alice");
    for subject in ["bob1", "bob2"] {
        server.deliver("bob", &message(subject));
    }
    server.deliver("alice", &message("alice1"));
    let mut c = server.imap_login("bob");
    assert!(capabilities(&mut c).iter().any(|c| c == "UNAUTHENTICATE"));
    let r = c.cmd("ENABLE CONDSTORE").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* ENABLED CONDSTORE"), "{:?}", r.lines());
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 2 EXISTS"), "{:?}", r.lines());
    // bob's one connection is taken.
    let mut second = server.imap_tls();
    let r = second.login("bob", PASSWORD).unwrap();
    assert_eq!(r.status, "NO", "{r:?}");

    let r = c.cmd("UNAUTHENTICATE").unwrap().expect_ok().unwrap();
    assert!(r.untagged.is_empty(), "{:?}", r.lines());
    assert_eq!(c.cmd("FETCH 1 UID").unwrap().status, "BAD", "nothing is selected");
    assert_eq!(c.cmd("LIST \"\" *").unwrap().status, "BAD", "not logged in");
    let caps = capabilities(&mut c);
    assert!(caps.iter().any(|c| c == "LITERAL-") && !caps.iter().any(|c| c == "UNAUTHENTICATE"));
    // The slot is free: bob can log in elsewhere now.
    second.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    second.cmd("LOGOUT").unwrap();

    c.login("alice", PASSWORD).unwrap().expect_ok().unwrap();
    let r = c.cmd("ENABLE CONDSTORE").unwrap().expect_ok().unwrap();
    assert!(
        has(&r, "* ENABLED CONDSTORE"),
        "ENABLE state was reset: {:?}",
        r.lines()
    );
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 1 EXISTS"), "{:?}", r.lines());
    let r = c
        .cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(has(&r, "Subject: alice1"), "{:?}", r.lines());
    // From Selected state too.
    c.cmd("UNAUTHENTICATE").unwrap().expect_ok().unwrap();
    assert_eq!(c.cmd("NOOP").unwrap().status, "OK");
    c.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    let r = c.cmd("STATUS INBOX (MESSAGES)").unwrap().expect_ok().unwrap();
    assert!(has(&r, "(MESSAGES 2)"), "{:?}", r.lines());
}

/// UNAUTHENTICATE as CPython's imaplib sends it (it knows no such command: taught one here).
#[test]
fn python_imaplib_unauthenticate() {
    let server = bob_with(2);
    server.add_user("alice");
    let body = r#"
typ, data = m.select("INBOX")
assert typ == "OK" and data == [b"2"], data
typ, data = m._simple_command("UNAUTHENTICATE")
assert typ == "OK", data
m.state = "NONAUTH"
m.login("alice", password)
typ, data = m.select("INBOX")
assert typ == "OK" and data == [b"0"], data
m.logout()
print("ok")
"#;
    assert!(server.imaplib("bob", &["UNAUTHENTICATE"], body).contains("ok"));
}

/// `[UID] REPLACE target mailbox literal` with the message sent non-synchronizing.
fn replace(c: &mut Imap, command: &str, flags: &str, message: &[u8]) -> loadtest::client::imap::Response {
    let head = format!("{command} {flags}{{{}+}}\r\n", message.len());
    raw(c, &[head.as_bytes(), message])
}

/// RFC 8508: the new message is stored and the old one expunged in one step, reported as
/// APPENDUID, then the expunge (EXPUNGE, or VANISHED under QRESYNC) and EXISTS.
#[test]
fn replace_stores_the_new_message_and_expunges_the_old() {
    let server = bob_with(3);
    let mut c = server.imap_login("bob");
    assert!(capabilities(&mut c).iter().any(|c| c == "REPLACE"));
    let mut other = server.imap_login("bob");
    other.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 3 EXISTS"));

    let r = replace(&mut c, "REPLACE 2 INBOX", "(\\Seen) ", &message("m2 v2"));
    assert!(r.ok() && r.text == "REPLACE completed", "{r:?}");
    let lines = r.lines();
    assert!(
        lines[0].starts_with("* OK [APPENDUID ") && lines[0].contains(" 4]"),
        "{lines:?}"
    );
    assert!(lines.contains(&"* 2 EXPUNGE".to_string()), "{lines:?}");
    assert!(lines.contains(&"* 3 EXISTS".to_string()), "{lines:?}");
    let r = c
        .cmd("FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        .unwrap();
    let fetched = r.lines().join("\n");
    assert!(
        fetched.contains("UID 4") && fetched.contains("Subject: m2 v2"),
        "{fetched}"
    );
    assert!(!fetched.contains("Subject: m2\r"), "the old one is gone: {fetched}");
    // Another session hears of both.
    let r = other.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 2 EXPUNGE") && has(&r, "* 3 EXISTS"), "{:?}", r.lines());

    // Into another mailbox.
    let r = replace(&mut c, "UID REPLACE 1 Drafts", "(\\Draft) ", &message("draft"));
    assert!(r.ok() && r.text == "UID REPLACE completed", "{r:?}");
    assert!(has(&r, "* OK [APPENDUID ") && has(&r, "* 1 EXPUNGE"), "{:?}", r.lines());
    let r = c.cmd("STATUS Drafts (MESSAGES)").unwrap().expect_ok().unwrap();
    assert!(has(&r, "(MESSAGES 1)"), "{:?}", r.lines());

    // Under QRESYNC the expunge is a VANISHED.
    c.cmd("ENABLE QRESYNC").unwrap().expect_ok().unwrap();
    let r = replace(&mut c, "UID REPLACE 3 INBOX", "", &message("m3 v2"));
    assert!(
        r.ok() && has(&r, "* VANISHED 3") && !has(&r, "EXPUNGE"),
        "{:?}",
        r.lines()
    );

    // What cannot be replaced leaves everything as it was.
    let r = replace(&mut c, "UID REPLACE 99 INBOX", "", &message("x"));
    assert_eq!(r.status, "NO", "{r:?}");
    let r = replace(&mut c, "REPLACE 9 INBOX", "", &message("x"));
    assert_eq!(r.status, "BAD", "{r:?}");
    let r = replace(&mut c, "REPLACE 1 Nowhere", "", &message("x"));
    assert!(r.status == "NO" && r.text.starts_with("[TRYCREATE]"), "{r:?}");
    let r = c.cmd("UID SEARCH ALL").unwrap().expect_ok().unwrap();
    assert!(has(&r, "4 5"), "{:?}", r.lines());
    c.cmd("EXAMINE INBOX").unwrap().expect_ok().unwrap();
    let r = replace(&mut c, "REPLACE 1 INBOX", "", &message("x"));
    assert!(r.status == "NO" && r.text.starts_with("[READ-ONLY]"), "{r:?}");
}

/// REPLACE as CPython's imaplib sends a command with a literal (taught the command here).
#[test]
fn python_imaplib_replace() {
    let server = bob_with(2);
    let body = r#"
m.select("INBOX")
m.literal = b"Subject: again\r\n\r\nnew text\r\n"
typ, data = m._simple_command("REPLACE", "1", "INBOX", "(\\Seen)")
assert typ == "OK", (typ, data)
assert "APPENDUID" in m.untagged_responses, m.untagged_responses
typ, data = m.fetch("2", "(FLAGS BODY.PEEK[HEADER])")
fetched = [d for d in data if isinstance(d, tuple)]
assert b"\\Seen" in fetched[0][0] and b"Subject: again" in fetched[0][1], data
typ, data = m.search(None, "ALL")
assert data == [b"1 2"], data
m.logout()
print("ok")
"#;
    assert!(server.imaplib("bob", &["REPLACE"], body).contains("ok"));
}

/// RFC 9586: after ENABLE UIDONLY, message numbers are refused with BAD [UIDREQUIRED] and never
/// sent: FETCH becomes UIDFETCH, EXPUNGE becomes VANISHED, SELECT has no [UNSEEN n].
#[test]
fn uidonly_refuses_and_never_sends_message_numbers() {
    let server = bob_with(4);
    let mut c = server.imap_login("bob");
    assert!(capabilities(&mut c).iter().any(|c| c == "UIDONLY"));
    let r = c.cmd("ENABLE UIDONLY").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* ENABLED UIDONLY"), "{:?}", r.lines());
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* 4 EXISTS") && !has(&r, "[UNSEEN"), "{:?}", r.lines());
    for command in [
        "FETCH 1 FLAGS",
        "STORE 1 +FLAGS (\\Seen)",
        "SEARCH ALL",
        "COPY 1 Drafts",
        "MOVE 1:* Drafts",
        "UID SEARCH 1:2",
        "SORT (DATE) UTF-8 ALL",
        "UID THREAD REFERENCES UTF-8 OR 1 SEEN",
    ] {
        let r = c.cmd(command).unwrap();
        assert!(
            r.status == "BAD" && r.text.starts_with("[UIDREQUIRED]"),
            "{command}: {r:?}"
        );
    }
    let r = replace(&mut c, "REPLACE 1 INBOX", "", &message("x"));
    assert!(r.status == "BAD" && r.text.starts_with("[UIDREQUIRED]"), "{r:?}");

    let r = c.cmd("UID FETCH 1:2 (FLAGS)").unwrap().expect_ok().unwrap();
    assert_eq!(
        r.lines(),
        [
            "* 1 UIDFETCH (UID 1 FLAGS (\\Recent))",
            "* 2 UIDFETCH (UID 2 FLAGS (\\Recent))"
        ]
    );
    let r = c.cmd("UID STORE 3 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    assert_eq!(r.lines(), ["* 3 UIDFETCH (FLAGS (\\Deleted \\Recent))"]);
    let r = c.cmd("UID EXPUNGE 3").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* VANISHED 3") && !has(&r, "EXPUNGE"), "{:?}", r.lines());
    let r = c.cmd("UID SEARCH ALL").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SEARCH 1 2 4"), "{:?}", r.lines());

    // Changes by another session arrive the same way.
    let mut other = server.imap_login("bob");
    other.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    other.cmd("STORE 1 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    other.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    other
        .cmd("UID STORE 2 +FLAGS (\\Flagged)")
        .unwrap()
        .expect_ok()
        .unwrap();
    let r = c.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* VANISHED 1"), "{:?}", r.lines());
    assert!(has(&r, "* 2 UIDFETCH (FLAGS (\\Flagged \\Recent))"), "{:?}", r.lines());
    assert!(
        !r.lines()
            .iter()
            .any(|l| l.contains(" FETCH ") || l.ends_with("EXPUNGE")),
        "{:?}",
        r.lines()
    );

    // UID REPLACE answers with VANISHED too.
    let r = replace(&mut c, "UID REPLACE 2 INBOX", "", &message("m2 v2"));
    assert!(r.ok() && has(&r, "* VANISHED 2"), "{r:?}");
    // QRESYNC's sequence match data is made of message numbers.
    c.cmd("ENABLE QRESYNC").unwrap().expect_ok().unwrap();
    let r = c.cmd("SELECT INBOX (QRESYNC (1 1 1:9 (1 1)))").unwrap();
    assert!(r.status == "BAD" && r.text.starts_with("[UIDREQUIRED]"), "{r:?}");
}

/// FETCH responses up to their first item (`* 4 FETCH (UID 4`).
fn heads(r: &loadtest::client::imap::Response) -> Vec<String> {
    r.lines()
        .iter()
        .map(|l| l.split(" MODSEQ").next().unwrap().trim_end_matches(')').to_owned())
        .collect()
}

/// The ESEARCH line of a response.
fn esearch(r: &loadtest::client::imap::Response) -> String {
    r.lines()
        .into_iter()
        .find(|l| l.starts_with("* ESEARCH"))
        .unwrap_or_else(|| panic!("no ESEARCH in {:?}", r.lines()))
}

/// RFC 9394: RETURN (PARTIAL range) pages through search results from either end, and the
/// PARTIAL FETCH modifier pages through messages, after CHANGEDSINCE.
#[test]
fn partial_pages_search_results_and_fetches() {
    let server = bob_with(5);
    let mut c = server.imap_login("bob");
    assert!(capabilities(&mut c).iter().any(|c| c == "PARTIAL"));
    let r = c.cmd("SELECT INBOX (CONDSTORE)").unwrap().expect_ok().unwrap();
    let modseq: u64 = r
        .lines()
        .iter()
        .find_map(|l| l.strip_prefix("* OK [HIGHESTMODSEQ ")?.split(']').next()?.parse().ok())
        .unwrap();
    for (range, page) in [
        ("1:1", "1:1 1"),
        ("2:4", "2:4 2:4"),
        ("4:2", "2:4 2:4"),
        ("1:6", "1:6 1:5"),
        ("6:9", "6:9 NIL"),
        ("-1:-2", "-1:-2 4:5"),
        ("-5:-5", "-5:-5 1"),
    ] {
        let r = c
            .cmd(&format!("SEARCH RETURN (PARTIAL {range}) ALL"))
            .unwrap()
            .expect_ok()
            .unwrap();
        assert!(
            esearch(&r).ends_with(&format!(" PARTIAL ({page})")),
            "{range}: {:?}",
            r.lines()
        );
    }
    let r = c
        .cmd("UID SEARCH RETURN (COUNT PARTIAL -1:-2) ALL")
        .unwrap()
        .expect_ok()
        .unwrap();
    let line = esearch(&r);
    assert!(
        line.contains(" UID COUNT 5") && line.ends_with(" PARTIAL (-1:-2 4:5)"),
        "{line}"
    );
    for bad in [
        "PARTIAL 1",
        "PARTIAL 1:*",
        "PARTIAL *:1",
        "PARTIAL 0:1",
        "PARTIAL 1:2 ALL",
    ] {
        let r = c.cmd(&format!("SEARCH RETURN ({bad}) ALL")).unwrap();
        assert_eq!(r.status, "BAD", "{bad}: {r:?}");
    }
    // SAVE keeps the page.
    c.cmd("SEARCH RETURN (SAVE PARTIAL -1:-2) ALL")
        .unwrap()
        .expect_ok()
        .unwrap();
    let r = c.cmd("FETCH $ (UID)").unwrap().expect_ok().unwrap();
    assert_eq!(heads(&r), ["* 4 FETCH (UID 4", "* 5 FETCH (UID 5"]);

    let r = c
        .cmd("UID FETCH 1:* (FLAGS) (PARTIAL -1:-2)")
        .unwrap()
        .expect_ok()
        .unwrap();
    let uids: Vec<bool> = r
        .lines()
        .iter()
        .map(|l| l.contains("UID 4") || l.contains("UID 5"))
        .collect();
    assert_eq!(uids, [true, true], "{:?}", r.lines());
    let r = c.cmd("FETCH 1:* (UID) (PARTIAL 2:3)").unwrap().expect_ok().unwrap();
    assert_eq!(heads(&r), ["* 2 FETCH (UID 2", "* 3 FETCH (UID 3"]);
    // With CHANGEDSINCE the page is taken from the changed messages.
    c.cmd("STORE 1,3,5 +FLAGS.SILENT (\\Flagged)")
        .unwrap()
        .expect_ok()
        .unwrap();
    let r = c
        .cmd(&format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} PARTIAL 1:2)"))
        .unwrap()
        .expect_ok()
        .unwrap();
    let lines = r.lines();
    assert!(
        lines.len() == 2 && lines[0].starts_with("* 1 FETCH") && lines[1].starts_with("* 3 FETCH"),
        "{lines:?}"
    );
}

/// RFC 9585: a FETCH whose client reads slowly hears `* OK [INPROGRESS ("tag" done total)]`
/// between its parts. The client here stops reading for longer than the notification interval
/// while the server has megabytes left to send.
#[test]
fn a_slow_fetch_reports_its_progress() {
    let server = bob_with(0);
    let mut c = server.imap_login("bob");
    let mut big = message("big");
    let line = format!("{}\r\n", "x".repeat(76));
    while big.len() < 2 << 20 {
        big.extend_from_slice(line.as_bytes());
    }
    let count = 12;
    for _ in 0..count {
        let marker = format!("APPEND INBOX {{{}+}}\r\n", big.len());
        raw(&mut c, &[marker.as_bytes(), &big]).expect_ok().unwrap();
    }
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let tag = c.tag();
    c.t.send_line(&format!("{tag} FETCH 1:* BODY.PEEK[]")).unwrap();
    // Far more than the socket buffers hold is on its way; the server waits for us.
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let r = c.finish(&tag).unwrap().expect_ok().unwrap();
    let prefix = format!("* OK [INPROGRESS (\"{tag}\" ");
    let progress: Vec<(usize, usize)> = r
        .untagged
        .iter()
        .filter(|l| l.starts_with(prefix.as_bytes()))
        .map(|l| {
            let text = String::from_utf8_lossy(&l[prefix.len()..]).into_owned();
            let numbers = text.split(')').next().unwrap().to_owned();
            let (done, total) = numbers.split_once(' ').unwrap();
            (done.parse().unwrap(), total.parse().unwrap())
        })
        .collect();
    assert!(!progress.is_empty(), "no progress reported");
    assert!(
        progress
            .iter()
            .all(|&(done, total)| done > 0 && done < total && total == count),
        "{progress:?}"
    );
    let fetched = r
        .untagged
        .iter()
        .filter(|l| l.starts_with(b"* ") && l.windows(7).any(|w| w == b" FETCH "))
        .count();
    assert_eq!(fetched, count);
}

/// RFC 8508: a replacement that cannot be stored (over quota here) leaves the old message where
/// it was: the append and the expunge are one transaction.
#[test]
fn replace_is_all_or_nothing() {
    let server = bob_with(2);
    server.set_user("bob", &["--quota", "2000"]);
    let mut c = server.imap_login("bob");
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let mut big = message("too big");
    big.resize(5000, b'x');
    let r = replace(&mut c, "UID REPLACE 1 INBOX", "", &big);
    assert!(r.status == "NO" && r.text.starts_with("[OVERQUOTA]"), "{r:?}");
    assert!(!has(&r, "EXPUNGE"), "{:?}", r.lines());
    let r = c.cmd("UID SEARCH ALL").unwrap().expect_ok().unwrap();
    assert!(has(&r, "* SEARCH 1 2"), "{:?}", r.lines());
    // Within quota once the old message's space is counted as freed.
    let r = replace(&mut c, "UID REPLACE 1 INBOX", "", &message("fits"));
    assert!(r.ok() && has(&r, "* 1 EXPUNGE"), "{r:?}");
}
