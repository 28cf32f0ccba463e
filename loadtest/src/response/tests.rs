//! Table-driven parser tests: responses as ringmail and Dovecot send them, and malformed
//! ones, which must fail without panicking.

use super::*;

fn parse(line: &str) -> Untagged {
    parse_untagged(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn flags(names: &[&str]) -> Option<Flags> {
    Some(Flags::from_names(names.iter().copied()))
}

fn fetch(line: &str) -> Fetch {
    match parse(line) {
        Untagged::Fetch(f) => f,
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn counts() {
    assert_eq!(parse("* 172 EXISTS"), Untagged::Exists(172));
    assert_eq!(parse("* 0 exists"), Untagged::Exists(0));
    assert_eq!(parse("* 44 EXPUNGE"), Untagged::Expunge(44));
    assert_eq!(parse("* 1 RECENT"), Untagged::Recent(1));
    assert_eq!(
        parse("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label7)"),
        Untagged::Flags(
            ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "$Label7"]
                .map(String::from)
                .to_vec()
        )
    );
    assert_eq!(parse("* FLAGS ()"), Untagged::Flags(vec![]));
    // '[' is an atom character (only ']' is a resp-special); found by the imap_command fuzz
    // target when a client had set such a keyword.
    assert_eq!(
        parse("* FLAGS (\\Seen [Deleted a[b $x)"),
        Untagged::Flags(["\\Seen", "[Deleted", "a[b", "$x"].map(String::from).to_vec())
    );
    assert_eq!(
        parse("* FLAGS (\\Seen BODY[HEADER[[ $x)"),
        Untagged::Flags(["\\Seen", "BODY[HEADER[[", "$x"].map(String::from).to_vec())
    );
    assert!(parse_untagged(b"* FLAGS \\Seen").is_err());
    assert_eq!(parse("* ENABLED CONDSTORE"), Untagged::Other);
    assert_eq!(parse("+ go ahead"), Untagged::Other);
    assert_eq!(parse("* x EXISTS"), Untagged::Other);
    assert!(parse_untagged(b"* 1x EXISTS").is_err());
    assert!(parse_untagged(b"* 99999999999 EXISTS").is_err());
}

#[test]
fn ringmail_fetch_uid_first() {
    let f = fetch("* 12 FETCH (UID 40 FLAGS (\\Seen $Label))");
    assert_eq!(f.seq, 12);
    assert_eq!(f.uid, Some(40));
    assert_eq!(f.flags, flags(&["\\Seen", "$label"]));
    assert_eq!(f.envelope, None);
}

#[test]
fn dovecot_fetch_flags_first_and_extra_items() {
    // Dovecot answers UID STORE with FLAGS before UID, and adds MODSEQ under CONDSTORE.
    let f = fetch("* 3 FETCH (FLAGS (\\Flagged \\Seen \\Recent) UID 7 MODSEQ (12))");
    assert_eq!(f.uid, Some(7));
    assert_eq!(f.flags, flags(&["\\Seen", "\\Flagged"]), "\\Recent is dropped");
    assert!(f.recent, "but noted");
    assert_eq!(f.modseq, Some(12));
    let f = fetch("* 3 FETCH (FLAGS ())");
    assert_eq!(
        (f.uid, f.flags, f.recent, f.modseq),
        (None, Some(Flags::default()), false, None)
    );
    let f = fetch("* 3 FETCH (MODSEQ (9223372036854775807) FLAGS (\\recent))");
    assert_eq!((f.modseq, f.recent), (Some(9_223_372_036_854_775_807), true));
    let f = fetch("* 1 FETCH (RFC822.SIZE 1024 INTERNALDATE \"02-Mar-2026 10:00:00 +0000\" UID 1)");
    assert_eq!(f.uid, Some(1));
}

#[test]
fn envelope_with_quoted_literal_and_nil_fields() {
    let line = "* 2 FETCH (UID 9 FLAGS () ENVELOPE (\"Mon, 2 Mar 2026 10:00:00 +0000\" \
                \"load test (message) \\\"9\\\"\" ((\"Load Test\" NIL \"user3\" \"example.org\")) \
                ((\"Load Test\" NIL \"user3\" \"example.org\")) ((\"Load Test\" NIL \"user3\" \"example.org\")) \
                ((NIL NIL \"user5\" \"example.org\")) NIL NIL NIL \"<9.ab@loadtest.invalid>\"))";
    let f = fetch(line);
    let env = f.envelope.expect("envelope");
    assert_eq!(env.subject.as_deref(), Some("load test (message) \"9\""));
    assert_eq!(env.message_id.as_deref(), Some("<9.ab@loadtest.invalid>"));

    // A subject sent as a literal, and a missing Message-ID.
    let mut line = b"* 4 FETCH (ENVELOPE (NIL {11}\r\nsub) ject ( NIL NIL NIL NIL NIL NIL NIL NIL) UID 5)".to_vec();
    let f = match parse_untagged(&line).unwrap() {
        Untagged::Fetch(f) => f,
        other => panic!("{other:?}"),
    };
    let env = f.envelope.expect("envelope");
    assert_eq!(env.subject.as_deref(), Some("sub) ject ("));
    assert_eq!(env.message_id, None);
    assert_eq!(f.uid, Some(5));
    line.truncate(30);
    assert!(parse_untagged(&line).is_err(), "literal cut short");
}

#[test]
fn skipped_items_with_sections_and_literals() {
    let line = b"* 1 FETCH (BODY[HEADER.FIELDS (FROM TO)] {5}\r\nab)cd UID 3 BINARY.SIZE[1] 4)";
    match parse_untagged(line).unwrap() {
        Untagged::Fetch(f) => assert_eq!(f.uid, Some(3)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_fetches_fail() {
    for line in [
        "* 1 FETCH UID 3",
        "* 1 FETCH (UID x)",
        "* 1 FETCH (UID 3",
        "* 1 FETCH (FLAGS \\Seen)",
        "* 1 FETCH (FLAGS (\"x\"))",
        "* 1 FETCH (ENVELOPE (NIL))",
        "* 1 FETCH (UID 3) junk",
        "* 1 FETCH (ENVELOPE \"unterminated)",
        "* 1 FETCH (MODSEQ 5)",
        "* 1 FETCH (MODSEQ (x))",
    ] {
        assert!(parse_untagged(line.as_bytes()).is_err(), "{line}");
    }
    let deep = format!("* 1 FETCH (X {}{})", "(".repeat(100), ")".repeat(100));
    assert!(parse_untagged(deep.as_bytes()).is_err());
}

#[test]
fn search_results() {
    assert_eq!(parse("* SEARCH 2 84 882"), Untagged::Search(vec![2, 84, 882]));
    assert_eq!(parse("* SEARCH"), Untagged::Search(vec![]));
    assert_eq!(parse("* search 4 (MODSEQ 917162500)"), Untagged::Search(vec![4]));
    assert!(parse_untagged(b"* SEARCH 1 x").is_err());
}

#[test]
fn codes_in_untagged_and_tagged_replies() {
    assert_eq!(
        parse("* OK [UIDVALIDITY 3857529045] UIDs valid"),
        Untagged::Condition {
            bye: false,
            code: Some(Code::UidValidity(3_857_529_045))
        }
    );
    assert_eq!(
        parse("* OK [UIDNEXT 4392] Predicted next UID"),
        Untagged::Condition {
            bye: false,
            code: Some(Code::UidNext(4392))
        }
    );
    assert_eq!(
        parse("* BYE Logging out"),
        Untagged::Condition { bye: true, code: None }
    );
    assert_eq!(
        parse("* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited"),
        Untagged::Condition {
            bye: false,
            code: Some(Code::Other("PERMANENTFLAGS".into()))
        }
    );
    assert_eq!(
        response_code(b"[APPENDUID 38505 3955] APPEND completed").unwrap(),
        Some(Code::AppendUid {
            uid_validity: 38505,
            uids: vec![3955]
        })
    );
    assert_eq!(
        response_code(b"[APPENDUID 1 3:5,9] Append completed (0.001 + 0.000 secs).").unwrap(),
        Some(Code::AppendUid {
            uid_validity: 1,
            uids: vec![3, 4, 5, 9]
        })
    );
    assert_eq!(
        response_code(b"[CAPABILITY IMAP4rev1 UIDPLUS MOVE] Logged in").unwrap(),
        Some(Code::Capability(vec![
            "IMAP4rev1".into(),
            "UIDPLUS".into(),
            "MOVE".into()
        ]))
    );
    assert_eq!(response_code(b"LOGIN completed").unwrap(), None);
    assert!(response_code(b"[UIDNEXT x] y").is_err());
    assert!(response_code(b"[APPENDUID 1 *] y").is_err());
    assert!(response_code(b"[UIDNEXT 5").is_err());
    assert_eq!(
        parse("* CAPABILITY IMAP4rev1 UIDPLUS"),
        Untagged::Capability(vec!["IMAP4rev1".into(), "UIDPLUS".into()])
    );
}

#[test]
fn vanished_and_status() {
    assert_eq!(
        parse("* VANISHED 3:5,9"),
        Untagged::Vanished {
            earlier: false,
            uids: vec![3, 4, 5, 9]
        }
    );
    assert_eq!(
        parse("* VANISHED (EARLIER) 41"),
        Untagged::Vanished {
            earlier: true,
            uids: vec![41]
        }
    );
    assert!(parse_untagged(b"* VANISHED 1:*").is_err());
    assert_eq!(
        parse("* STATUS Archive (MESSAGES 12 UIDNEXT 40 UIDVALIDITY 7 HIGHESTMODSEQ 99 UNSEEN 2)"),
        Untagged::Status {
            mailbox: "Archive".into(),
            status: Status {
                messages: Some(12),
                uid_next: Some(40),
                uid_validity: Some(7),
                highest_modseq: Some(99)
            }
        }
    );
    assert_eq!(
        parse("* STATUS \"a \\\"b\" (UIDNEXT 3)"),
        Untagged::Status {
            mailbox: "a \"b".into(),
            status: Status {
                uid_next: Some(3),
                ..Status::default()
            }
        }
    );
    assert!(parse_untagged(b"* STATUS INBOX (UIDNEXT)").is_err());
    assert!(parse_untagged(b"* STATUS INBOX (UIDNEXT x)").is_err());
}

#[test]
fn modseq_and_copyuid_codes() {
    assert_eq!(
        parse("* OK [HIGHESTMODSEQ 715194045007] Highest"),
        Untagged::Condition {
            bye: false,
            code: Some(Code::HighestModSeq(715_194_045_007))
        }
    );
    assert_eq!(
        response_code(b"[COPYUID 38505 304,319:320 3956:3958] Done").unwrap(),
        Some(Code::CopyUid {
            uid_validity: 38505,
            uids: vec![3956, 3957, 3958]
        })
    );
    assert!(response_code(b"[COPYUID 1 2] x").is_err());
    assert!(response_code(b"[HIGHESTMODSEQ 1 2] x").is_err());
}

#[test]
fn uid_sets() {
    assert_eq!(uid_set(b"7"), Some(vec![7]));
    assert_eq!(uid_set(b"9:7,1"), Some(vec![1, 7, 8, 9]));
    assert_eq!(uid_set(b"1:*"), None);
    assert_eq!(uid_set(b""), None);
    assert_eq!(uid_set(b"1:4000000000"), None, "bounded");
}
