//! SEARCH's address keys, SORT and THREAD over real sockets: regressions from an IMAP compliance
//! suite that Dovecot passes (RFC 9051 §6.4.4 FROM/TO/CC/BCC, RFC 5256 §3 SORT and
//! THREAD=REFERENCES, RFC 5957 SORT=DISPLAY).

mod common;

use common::Server;
use loadtest::client::imap::{Imap, Response};

/// A server with `user` holding `messages` in INBOX, in this order, and a session on it with
/// INBOX selected.
fn mailbox(user: &str, messages: &[&str]) -> (Server, Imap) {
    let server = Server::start();
    server.add_user(user);
    for m in messages {
        server.deliver(user, m.as_bytes());
    }
    let mut c = server.imap_login(user);
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    (server, c)
}

/// The one untagged line starting with `prefix` (`* SEARCH`, `* SORT`, `* THREAD`).
fn untagged(r: &Response, prefix: &str) -> String {
    let lines: Vec<String> = r.lines().into_iter().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(lines.len(), 1, "one {prefix} in {:?}", r.lines());
    lines[0].clone()
}

/// Runs each command and checks its untagged answer.
fn expect(c: &mut Imap, prefix: &str, cases: &[(&str, &str)]) {
    for (command, want) in cases {
        let r = c.cmd(command).unwrap().expect_ok().unwrap();
        assert_eq!(untagged(&r, prefix), *want, "{command}");
    }
}

/// Dovecot's imaptest `search-addresses` mailbox (messages 1–6), then an encoded display name,
/// a display name that is itself the searched address, and a group.
const ADDRESSED: [&str; 9] = [
    "From: user-from@domain.org\r\nTo: user-to@domain.org\r\nCc: user-cc@domain.org\r\n\
     Bcc: user-bcc@domain.org\r\n\r\nbody\r\n",
    "From: RealFrom <user-from@domain.org>\r\nTo: RealTo <user-to@domain.org>\r\n\
     Cc: RealCc <user-cc@domain.org>\r\nBcc: RealBcc <user-bcc@domain.org>\r\n\r\nbody2\r\n",
    "From: <user-from (comment)@ (comment) domain.org>\r\nTo: <user-to@domain.org>\r\n\
     Cc: <user-cc@domain.org>\r\nBcc: <user-bcc@domain.org>\r\n\r\nbody3\r\n",
    "From: user-from@domain.org (RealFrom)\r\nTo: user-to@domain.org (RealTo)\r\n\
     Cc: user-cc@domain.org (RealCc)\r\nBcc: user-bcc@domain.org (RealBcc)\r\n\r\nbody4\r\n",
    "From: user-from1@domain.org, user-from2@domain.org\r\nCc: user-cc@domain.org\r\n\r\nbody5\r\n",
    "To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\r\n  \
     groupname2: groupuser3@domain.org;\r\n\r\nbody6\r\n",
    "From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\r\n\r\nbody7\r\n",
    "From: \"user-from@domain.org\" <other@example.net>\r\n\r\nbody8\r\n",
    "From: \"User From\" <user-from@domain.org>\r\nTo: Undisclosed: a@b, c@d;\r\n\r\nbody9\r\n",
];

/// Regression: `SEARCH FROM user-from@domain.org` missed message 3, whose From has comments
/// inside the address. FROM, TO, CC and BCC match every address of the ENVELOPE field, its
/// display name decoded, and group names and members (RFC 9051 §6.4.4).
#[test]
fn search_address_keys_match_every_envelope_address() {
    let (_server, mut c) = mailbox("bob", &ADDRESSED);
    expect(
        &mut c,
        "* SEARCH",
        &[
            ("SEARCH FROM user-from@domain.org", "* SEARCH 1 2 3 4 8 9"),
            ("SEARCH TO user-to@domain.org", "* SEARCH 1 2 3 4"),
            ("SEARCH CC user-cc@domain.org", "* SEARCH 1 2 3 4 5"),
            ("SEARCH BCC user-bcc@domain.org", "* SEARCH 1 2 3 4"),
            ("SEARCH FROM realfrom", "* SEARCH 2 4"),
            ("SEARCH BCC ealbc", "* SEARCH 2 4"),
            ("SEARCH FROM ser-fro", "* SEARCH 1 2 3 4 5 8 9"),
            ("SEARCH FROM user-from2", "* SEARCH 5"),
            ("SEARCH TO groupname2", "* SEARCH 6"),
            ("SEARCH TO groupuser3", "* SEARCH 6"),
            ("SEARCH TO groupuser4", "* SEARCH"),
            ("SEARCH TO \"undisclosed: a@b, c@d\"", "* SEARCH 9"),
            // Only the decoded name has "rg M" in it (the encoded one has "rg_M").
            ("SEARCH FROM \"rg m\"", "* SEARCH 7"),
            ("SEARCH FROM \"User From <user-from@\"", "* SEARCH 9"),
            ("SEARCH FROM comment", "* SEARCH"),
            ("SEARCH NOT FROM domain.org", "* SEARCH 6 7"),
            ("UID SEARCH OR FROM joerg TO groupuser1", "* SEARCH 6 7"),
        ],
    );
}

/// Messages whose first Cc / To address is a group, or lacks a display name, or has an encoded
/// one; 5 and 6 tie on CC and have Dates.
const SORTED: [&str; 6] = [
    "From: \"Zoe\" <alpha@x>\r\nTo: undisclosed-recipients:;\r\nCc: Team: zz@x;\r\n\r\n1\r\n",
    "From: beta@x\r\nTo: =?utf-8?q?=C3=89mile?= <zed@x>\r\nCc: \"Aaron\" <mike@x>, aaa@x\r\n\r\n2\r\n",
    "From: Team: gamma@x;\r\nTo: \"\" <mary@x>\r\n\r\n3\r\n",
    "From: \"Adam\" <delta@x>\r\nTo: adam@x (Bob)\r\nCc: undisclosed-recipients:;\r\n\r\n4\r\n",
    "From: epsilon\r\nTo: carl@x\r\nCc: Bob <bob@x>\r\nDate: Sun, 1 Mar 2026 10:00:00 +0000\r\n\r\n5\r\n",
    "From: zeta@x\r\nTo: carl@x\r\nCc: BOB@y\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n6\r\n",
];

/// Regression: SORT (CC) and SORT (DISPLAYTO) gave wrong orders. The address keys are taken
/// from the first ENVELOPE address, a group's start marker (whose mailbox is the group name)
/// included: RFC 5256 §3 addr-mailbox, RFC 5957 §3 display name, else addr-spec, else mailbox.
/// REVERSE reverses one key; ties go to the next key, then to the sequence number, ascending.
#[test]
fn sort_address_keys_use_the_first_envelope_address() {
    let (_server, mut c) = mailbox("bob", &SORTED);
    expect(
        &mut c,
        "* SORT",
        &[
            // TEAM, MIKE, "", UNDISCLOSED-RECIPIENTS, BOB, BOB.
            ("SORT (CC) US-ASCII ALL", "* SORT 3 5 6 2 1 4"),
            ("SORT (REVERSE CC) US-ASCII ALL", "* SORT 4 1 2 5 6 3"),
            ("SORT (CC REVERSE DATE) US-ASCII ALL", "* SORT 3 6 5 2 1 4"),
            // UNDISCLOSED-RECIPIENTS, E\u{301}MILE, MARY@X, BOB, CARL@X, CARL@X.
            ("SORT (DISPLAYTO) UTF-8 ALL", "* SORT 4 5 6 2 3 1"),
            ("SORT (REVERSE DISPLAYTO) UTF-8 ALL", "* SORT 1 3 2 5 6 4"),
            // ZOE, BETA@X, TEAM, ADAM, EPSILON, ZETA@X.
            ("SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 4 2 5 3 6 1"),
            // ALPHA, BETA, TEAM, DELTA, EPSILON, ZETA.
            ("SORT (FROM) US-ASCII ALL", "* SORT 1 2 4 5 3 6"),
            // UNDISCLOSED-RECIPIENTS, ZED, MARY, ADAM, CARL, CARL.
            ("SORT (TO) US-ASCII ALL", "* SORT 4 5 6 3 1 2"),
            ("UID SORT (CC) US-ASCII NOT CC bob", "* SORT 3 2 1 4"),
        ],
    );
}

/// The three messages of the regression: 2 replies to 3 (its References end with 3's id) and
/// also names 1 before 3; 3 names 2, its own reply, as its parent.
const LOOPING: [&str; 3] = [
    "Message-ID: <a@b>\r\nDate: Fri, 22 Feb 2008 17:06:23 +0000\r\n\r\nbody\r\n",
    "Message-ID: <b@b>\r\nReferences: <a@b> <c@b>\r\nDate: Fri, 22 Feb 2008 15:06:23 +0000\r\n\r\nbody\r\n",
    "Message-ID: <c@b>\r\nReferences: <b@b>\r\nDate: Fri, 22 Feb 2008 16:06:25 +0000\r\n\r\nbody\r\n",
];

/// Regression: THREAD=REFERENCES answered `(1 3 2)` for [`LOOPING`]. RFC 5256 §3 step 1B breaks
/// the parent link 2's References guessed for 3 before refusing 3's own, which would close a
/// loop: 3 is a root, and threads are in the order of their root's sent date.
#[test]
fn thread_references_breaks_a_guessed_parent_before_a_looping_link() {
    let (_server, mut c) = mailbox("bob", &LOOPING);
    expect(
        &mut c,
        "* THREAD",
        &[
            ("THREAD REFERENCES US-ASCII ALL", "* THREAD (3 2)(1)"),
            ("UID THREAD REFERENCES US-ASCII ALL", "* THREAD (3 2)(1)"),
            // Without 2 nothing links the others.
            ("THREAD REFERENCES US-ASCII NOT 2", "* THREAD (3)(1)"),
        ],
    );
}

/// Dovecot's imaptest `thread` mailbox (References naming the parent's parent first): a link
/// that would close a loop is not made, and the rest of the chain stands.
#[test]
fn thread_references_keeps_a_chain_around_a_refused_loop() {
    let (_server, mut c) = mailbox(
        "bob",
        &[
            "Message-ID: <a@b>\r\nDate: Fri, 22 Feb 2008 17:06:23 +0000\r\n\r\nbody\r\n",
            "Message-Id: <b@b>\r\nReferences: <c@b> <a@b>\r\nDate: Fri, 22 Feb 2008 15:06:23 +0000\r\n\r\nbody\r\n",
            "Message-Id: <c@b>\r\nReferences: <b@b>\r\nDate: Fri, 22 Feb 2008 16:06:25 +0000\r\n\r\nbody\r\n",
        ],
    );
    expect(
        &mut c,
        "* THREAD",
        &[("THREAD REFERENCES US-ASCII ALL", "* THREAD (3 1 2)")],
    );
    c.cmd("STORE 1 +FLAGS (\\Deleted)").unwrap().expect_ok().unwrap();
    c.cmd("EXPUNGE").unwrap().expect_ok().unwrap();
    expect(
        &mut c,
        "* THREAD",
        &[("THREAD REFERENCES US-ASCII ALL", "* THREAD (2 1)")],
    );
}

/// The same three regressions through CPython's imaplib.
#[test]
fn python_imaplib_search_sort_thread() {
    let messages = [
        "From: <user-from (comment)@ (comment) domain.org>\r\nCc: undisclosed-recipients:;\r\n",
        "From: User From <user-from@domain.org>\r\nCc: b@x\r\n",
        "From: other@x\r\nCc: a@x\r\n",
    ];
    let server = Server::start();
    server.add_user("bob");
    for (header, rest) in messages.iter().zip(LOOPING) {
        server.deliver("bob", format!("{header}{rest}").as_bytes());
    }
    let body = r#"
m.select("INBOX")
typ, data = m.search(None, "FROM", '"user-from@domain.org"')
assert (typ, data) == ("OK", [b"1 2"]), data
typ, data = m.sort("(CC)", "UTF-8", "ALL")
assert (typ, data) == ("OK", [b"3 2 1"]), data
typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
assert (typ, data) == ("OK", [b"(3 2)(1)"]), data
m.logout()
print("imaplib ok")
"#;
    assert!(server.imaplib("bob", &[], body).contains("imaplib ok"));
}

/// Message `i` of the big mailbox: dated `i` seconds into 2024, "needle" in the body of every
/// 1,000th, about `size` bytes.
fn numbered(i: usize, size: usize) -> Vec<u8> {
    let word = if i.is_multiple_of(1000) || i == 5005 {
        "needle"
    } else {
        "hay"
    };
    let (h, m, s) = (i / 3600, i / 60 % 60, i % 60);
    let mut message = format!(
        "Date: Mon, 1 Jan 2024 {h:02}:{m:02}:{s:02} +0000\r\nSubject: s{i}\r\n\
         Message-ID: <{i}@example.org>\r\n\r\n"
    )
    .into_bytes();
    let line = [b'x'; 76];
    while message.len() + 80 < size {
        message.extend_from_slice(&line);
        message.extend_from_slice(b"\r\n");
    }
    message.extend_from_slice(format!("{word}\r\n").as_bytes());
    message
}

/// A command under a fresh tag: the tag and the response.
fn tagged(c: &mut Imap, command: &str) -> (String, Response) {
    let tag = c.tag();
    c.t.send_line(&format!("{tag} {command}")).unwrap();
    let r = c.finish(&tag).unwrap();
    assert!(r.ok(), "{command}: {r:?}");
    (tag, r)
}

/// SEARCH, SORT and THREAD run over a mailbox in steps of a few thousand messages or a few
/// MiB of message text (RFC 9585 INPROGRESS between them); over 5,000 small messages and five
/// of 1 MiB, more than one step either way, every form answers as one pass would.
#[test]
fn searching_a_mailbox_larger_than_one_step() {
    let server = Server::start();
    server.add_user("bob");
    let mut c = server.imap_login("bob");
    // MULTIAPPEND (RFC 3502) with LITERAL+, 1,000 messages a command.
    for batch in 0..5 {
        let tag = c.tag();
        let mut command = format!("{tag} APPEND INBOX").into_bytes();
        for i in batch * 1000 + 1..=batch * 1000 + 1000 {
            let m = numbered(i, 0);
            command.extend_from_slice(format!(" {{{}+}}\r\n", m.len()).as_bytes());
            command.extend_from_slice(&m);
        }
        command.extend_from_slice(b"\r\n");
        c.t.send_raw(&command).unwrap();
        assert!(c.finish(&tag).unwrap().ok());
    }
    for i in 5001..=5005 {
        c.append("INBOX", "", &numbered(i, 1 << 20))
            .unwrap()
            .expect_ok()
            .unwrap();
    }
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(common::has(&r, "* 5005 EXISTS"), "{:?}", r.lines());
    c.cmd("STORE 2500,4999 +FLAGS (\\Flagged)")
        .unwrap()
        .expect_ok()
        .unwrap();

    expect(
        &mut c,
        "* SEARCH",
        &[
            ("SEARCH BODY needle", "* SEARCH 1000 2000 3000 4000 5000 5005"),
            ("UID SEARCH TEXT needle UID 2000:*", "* SEARCH 2000 3000 4000 5000 5005"),
            ("SEARCH FLAGGED", "* SEARCH 2500 4999"),
            (
                "SEARCH NOT BODY hay NOT SUBJECT s5005",
                "* SEARCH 1000 2000 3000 4000 5000",
            ),
        ],
    );
    expect(
        &mut c,
        "* SORT",
        &[
            (
                "SORT (REVERSE DATE) UTF-8 BODY needle",
                "* SORT 5005 5000 4000 3000 2000 1000",
            ),
            // Ties in the order of the mailbox (RFC 5256 §3): the needles are 3 bytes larger.
            (
                "UID SORT (REVERSE SIZE) UTF-8 OR FLAGGED BODY needle",
                "* SORT 5005 1000 2000 3000 4000 5000 2500 4999",
            ),
        ],
    );
    expect(
        &mut c,
        "* THREAD",
        &[(
            "THREAD ORDEREDSUBJECT UTF-8 BODY needle",
            "* THREAD (1000)(2000)(3000)(4000)(5000)(5005)",
        )],
    );
    // ESEARCH (RFC 4731), ESORT (RFC 5267), SEARCHRES (RFC 5182) and CONTEXT=SEARCH's UPDATE.
    let (tag, r) = tagged(&mut c, "UID SEARCH RETURN (MIN MAX COUNT SAVE) BODY needle");
    let esearch = |r: &Response| untagged(r, "* ESEARCH");
    assert_eq!(
        esearch(&r),
        format!("* ESEARCH (TAG \"{tag}\") UID MIN 1000 MAX 5005 COUNT 6")
    );
    // RFC 5182 §2.1: with COUNT, all of them are saved.
    expect(
        &mut c,
        "* SEARCH",
        &[("UID SEARCH UID $", "* SEARCH 1000 2000 3000 4000 5000 5005")],
    );
    let (tag, r) = tagged(&mut c, "SORT RETURN (ALL) (REVERSE DATE) UTF-8 FLAGGED");
    assert_eq!(esearch(&r), format!("* ESEARCH (TAG \"{tag}\") ALL 4999,2500"));
    let (tag, r) = tagged(&mut c, "SEARCH RETURN (UPDATE COUNT) FLAGGED");
    assert_eq!(esearch(&r), format!("* ESEARCH (TAG \"{tag}\") COUNT 2"));
    let r = c.cmd("STORE 3 +FLAGS (\\Flagged)").unwrap().expect_ok().unwrap();
    assert!(
        common::has(&r, &format!("* ESEARCH (TAG \"{tag}\") ADDTO (0 3)")),
        "{:?}",
        r.lines()
    );
}
