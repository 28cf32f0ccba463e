//! METADATA and METADATA-SERVER (RFC 5464) over real sockets: server and mailbox entries,
//! DEPTH and MAXSIZE, NIL removes, all-or-nothing SETMETADATA, entries kept across sessions
//! and restarts and removed with their mailbox; and CPython's imaplib speaking it.

mod common;

use common::{bob_with, has};

#[test]
fn server_and_mailbox_entries_round_trip() {
    let mut server = bob_with(0);
    let mut c = server.imap_login("bob");
    let caps = c.cmd("CAPABILITY").unwrap();
    assert!(
        has(&caps, " METADATA") && has(&caps, "METADATA-SERVER"),
        "{:?}",
        caps.lines()
    );

    c.cmd("SETMETADATA \"\" (/private/vendor/ringmail/push-token \"tok-1\" /shared/comment \"hello\")")
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("SETMETADATA INBOX (/private/color \"#ff0000\" /private/a/b \"deep\")")
        .unwrap()
        .expect_ok()
        .unwrap();
    // A binary value in a literal8.
    let tag = c.tag();
    c.t.send_raw(format!("{tag} SETMETADATA INBOX (/private/bin ~{{3}}\r\n").as_bytes())
        .unwrap();
    c.t.send_raw(b"a\0b)\r\n").unwrap();
    assert!(c.finish(&tag).unwrap().ok());

    let r = c
        .cmd("GETMETADATA \"\" /private/vendor/ringmail/push-token")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert_eq!(
        r.lines(),
        vec!["* METADATA \"\" (/private/vendor/ringmail/push-token \"tok-1\")".to_string()]
    );
    // Names compare in any case; an entry that does not exist is NIL.
    let r = c
        .cmd("GETMETADATA INBOX (/PRIVATE/COLOR /private/none)")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert_eq!(
        r.lines(),
        vec!["* METADATA \"INBOX\" (/private/color \"#ff0000\" /private/none NIL)".to_string()]
    );
    let r = c
        .cmd("GETMETADATA (DEPTH 1) INBOX /private")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(has(&r, "/private/color") && has(&r, "/private/bin ~{3}") && !has(&r, "/private/a/b"));
    let r = c
        .cmd("GETMETADATA (DEPTH infinity) INBOX /private")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(has(&r, "/private/a/b \"deep\""), "{:?}", r.lines());
    let r = c
        .cmd("GETMETADATA (MAXSIZE 4) INBOX (/private/color /private/bin)")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(r.text.contains("[METADATA LONGENTRIES 7]"), "{}", r.text);
    assert!(has(&r, "/private/bin") && !has(&r, "/private/color"), "{:?}", r.lines());

    // All or nothing: one value too large, nothing is set.
    let big = "x".repeat(70_000);
    let r = c
        .cmd(&format!(
            "SETMETADATA INBOX (/private/color NIL /private/big {{{}+}}\r\n{big})",
            big.len()
        ))
        .unwrap();
    assert!(r.status == "NO" && r.text.contains("[METADATA MAXSIZE"), "{r:?}");
    let r = c.cmd("GETMETADATA INBOX /private/color").unwrap().expect_ok().unwrap();
    assert!(has(&r, "#ff0000"));
    // Bad names and a mailbox that does not exist.
    assert_eq!(c.cmd("SETMETADATA INBOX (/other/x \"v\")").unwrap().status, "BAD");
    assert_eq!(c.cmd("SETMETADATA INBOX (/private/a* \"v\")").unwrap().status, "BAD");
    assert_eq!(c.cmd("GETMETADATA Nowhere /private/x").unwrap().status, "NO");

    // Kept across a restart; NIL removes; a deleted mailbox takes its entries along.
    server.terminate();
    server.spawn();
    let mut c = server.imap_login("bob");
    let r = c.cmd("GETMETADATA \"\" /shared/comment").unwrap().expect_ok().unwrap();
    assert!(has(&r, "\"hello\""), "{:?}", r.lines());
    c.cmd("SETMETADATA \"\" (/shared/comment NIL)")
        .unwrap()
        .expect_ok()
        .unwrap();
    let r = c.cmd("GETMETADATA \"\" /shared/comment").unwrap().expect_ok().unwrap();
    assert!(has(&r, "/shared/comment NIL"), "{:?}", r.lines());
    c.cmd("CREATE Project").unwrap().expect_ok().unwrap();
    c.cmd("SETMETADATA Project (/private/comment \"p\")")
        .unwrap()
        .expect_ok()
        .unwrap();
    c.cmd("DELETE Project").unwrap().expect_ok().unwrap();
    c.cmd("CREATE Project").unwrap().expect_ok().unwrap();
    let r = c
        .cmd("GETMETADATA Project /private/comment")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(has(&r, "/private/comment NIL"), "{:?}", r.lines());
}

#[test]
fn imaplib_sets_and_gets_metadata() {
    let server = bob_with(0);
    let body = r#"
typ, data = m._simple_command("SETMETADATA", "INBOX", '(/private/comment "from python")')
assert typ == "OK", (typ, data)
typ, data = m._simple_command("GETMETADATA", "INBOX", "/private/comment")
assert typ == "OK", (typ, data)
typ, data = m._untagged_response(typ, data, "METADATA")
print(data[0].decode())
m.logout()
"#;
    let stdout = server.imaplib("bob", &["SETMETADATA", "GETMETADATA"], body);
    assert!(stdout.contains("/private/comment \"from python\""), "{stdout}");
}
