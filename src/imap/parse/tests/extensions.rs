//! The commands and forms of the newer extensions: UNAUTHENTICATE (RFC 8437), REPLACE
//! (RFC 8508), PARTIAL (RFC 9394), CATENATE (RFC 4469). One row per form and per error, as in
//! `valid` and `invalid`.

use super::super::*;
use crate::imap::types::*;

fn message(flags: &[&str], date: Option<i64>, message: &[u8], binary: bool) -> AppendMessage {
    AppendMessage {
        flags: flags.iter().map(|f| f.to_string()).collect(),
        date,
        message: message.to_vec(),
        binary,
        span: None,
        catenate: None,
    }
}

/// A CATENATE message: `Ok` parts are TEXT, `Err` parts URLs.
fn catenate(flags: &[&str], parts: &[std::result::Result<&[u8], &str>], binary: bool) -> AppendMessage {
    let parts = parts
        .iter()
        .map(|p| match p {
            Ok(text) => CatPart::Text(text.to_vec()),
            Err(url) => CatPart::Url((*url).to_owned()),
        })
        .collect();
    AppendMessage {
        catenate: Some(parts),
        ..message(flags, None, b"", binary)
    }
}

fn append(mailbox: &str, messages: Vec<AppendMessage>) -> Command {
    Command::Append {
        mailbox: mailbox.to_owned(),
        messages,
    }
}

fn replace(uid: bool, target: SeqBound, mailbox: &str, message: AppendMessage) -> Command {
    Command::Replace {
        uid,
        target,
        mailbox: mailbox.to_owned(),
        message,
    }
}

fn range(from_end: bool, first: u32, last: u32) -> PartialRange {
    PartialRange { from_end, first, last }
}

fn sort(uid: bool, returns: Option<Vec<SearchReturn>>, key: SearchKey) -> Command {
    Command::Sort {
        uid,
        returns,
        criteria: vec![SortCriterion {
            reverse: false,
            key: SortKey::Arrival,
        }],
        charset: if uid { "UTF-8" } else { "US-ASCII" }.into(),
        key,
    }
}

fn seq(a: u32, b: u32) -> SequenceSet {
    SequenceSet::Ranges(vec![(SeqBound::Num(a), SeqBound::Num(b))])
}

fn search(uid: bool, returns: Vec<SearchReturn>, key: SearchKey) -> Command {
    Command::Search {
        uid,
        charset: None,
        returns: Some(returns),
        key,
    }
}

fn fetch(changed_since: Option<u64>, partial: PartialRange) -> Command {
    Command::Fetch {
        uid: true,
        set: SequenceSet::Ranges(vec![(SeqBound::Num(1), SeqBound::Star)]),
        attrs: vec![FetchAttr::Flags],
        changed_since,
        vanished: false,
        partial: Some(partial),
    }
}

pub(super) fn valid() -> Vec<(&'static [u8], Command)> {
    use SearchReturn as R;
    vec![
        (b"a UNAUTHENTICATE", Command::Unauthenticate),
        (b"a unauthenticate", Command::Unauthenticate),
        // RFC 4469 §6: append-data =/ "CATENATE" SP "(" cat-part *(SP cat-part) ")".
        (
            b"a APPEND Drafts (\\Seen) CATENATE (URL \"/INBOX/;UID=3/;SECTION=HEADER\" TEXT {5}\r\nhello)",
            append(
                "Drafts",
                vec![catenate(&["\\Seen"], &[Err("/INBOX/;UID=3/;SECTION=HEADER"), Ok(b"hello")], false)],
            ),
        ),
        (
            b"a append x catenate (text {0}\r\n url ;uid=1)",
            append("x", vec![catenate(&[], &[Ok(b""), Err(";uid=1")], false)]),
        ),
        // MULTIAPPEND (RFC 3502) mixes CATENATE and literal messages; a literal8 TEXT (RFC 3516)
        // or a UTF8 one (RFC 6855 §4) makes its message binary; a URL may be a literal.
        (
            b"a APPEND x CATENATE (TEXT {1+}\r\na) \"1-Jan-1970 00:00:00 +0000\" CATENATE (url {9}\r\n/x/;uid=1 TEXT ~{1}\r\n\0) (\\Draft) {1}\r\n! CATENATE (UTF8 (~{2}\r\nhi))",
            append(
                "x",
                vec![
                    catenate(&[], &[Ok(b"a")], false),
                    AppendMessage {
                        date: Some(0),
                        ..catenate(&[], &[Err("/x/;uid=1"), Ok(b"\0")], true)
                    },
                    message(&["\\Draft"], None, b"!", false),
                    catenate(&[], &[Ok(b"hi")], true),
                ],
            ),
        ),
        // RFC 8508 §4.4: REPLACE takes CATENATE data as APPEND does.
        (
            b"a UID REPLACE 4 Drafts CATENATE (URL \";UID=4/;SECTION=1\" TEXT {1}\r\nx)",
            replace(
                true,
                SeqBound::Num(4),
                "Drafts",
                catenate(&[], &[Err(";UID=4/;SECTION=1"), Ok(b"x")], false),
            ),
        ),
        // RFC 8508 §6: seq-number SP mailbox append-message.
        (
            b"a REPLACE 4 Drafts (\\Seen \\Draft) {5}\r\nhello",
            replace(
                false,
                SeqBound::Num(4),
                "Drafts",
                message(&["\\Seen", "\\Draft"], None, b"hello", false),
            ),
        ),
        (
            b"a UID replace * inbox \"17-Jul-1996 02:44:25 -0700\" ~{3+}\r\na\0b",
            replace(
                true,
                SeqBound::Star,
                "INBOX",
                message(&[], Some(837_596_665), b"a\0b", true),
            ),
        ),
        (
            b"a Replace 12 x () {0}\r\n",
            replace(false, SeqBound::Num(12), "x", message(&[], None, b"", false)),
        ),
        // RFC 9394 §5: RETURN (PARTIAL range) and the PARTIAL FETCH modifier.
        (
            b"a UID SEARCH RETURN (PARTIAL 1:100) ALL",
            search(true, vec![R::Partial(range(false, 1, 100))], SearchKey::All),
        ),
        (
            b"a SEARCH RETURN (MIN partial -1:-100 COUNT) SEEN",
            search(
                false,
                vec![R::Min, R::Partial(range(true, 1, 100)), R::Count],
                SearchKey::Seen,
            ),
        ),
        (
            b"a SEARCH RETURN (PARTIAL 4:2 SAVE) ALL",
            search(false, vec![R::Partial(range(false, 2, 4)), R::Save], SearchKey::All),
        ),
        (
            b"a SEARCH RETURN (PARTIAL -30:-10) ALL",
            search(false, vec![R::Partial(range(true, 10, 30))], SearchKey::All),
        ),
        // RFC 5267: ESORT's RETURN options, CONTEXT (a hint, dropped), UPDATE, CANCELUPDATE.
        (
            b"a SORT RETURN (MIN MAX ALL COUNT) (ARRIVAL) US-ASCII 1:5",
            sort(false, Some(vec![R::Min, R::Max, R::All, R::Count]), SearchKey::Seq(seq(1, 5))),
        ),
        (
            b"a UID SORT RETURN () (ARRIVAL) UTF-8 ALL",
            sort(true, Some(vec![R::All]), SearchKey::All),
        ),
        (
            b"a UID SORT return (update COUNT partial -1:-10 SAVE) (ARRIVAL) UTF-8 ALL",
            sort(
                true,
                Some(vec![R::Update, R::Count, R::Partial(range(true, 1, 10)), R::Save]),
                SearchKey::All,
            ),
        ),
        (
            b"a SEARCH RETURN (CONTEXT COUNT) DELETED",
            search(false, vec![R::Count], SearchKey::Deleted),
        ),
        (b"a SEARCH RETURN (CONTEXT) ALL", search(false, vec![R::All], SearchKey::All)),
        (
            b"a UID SEARCH RETURN (UPDATE) SEEN",
            search(true, vec![R::Update], SearchKey::Seen),
        ),
        (
            b"a SEARCH RETURN (CONTEXT UPDATE MIN) CHARSET UTF-8 SEEN",
            Command::Search {
                uid: false,
                charset: Some("UTF-8".into()),
                returns: Some(vec![R::Update, R::Min]),
                key: SearchKey::Seen,
            },
        ),
        (b"a CANCELUPDATE \"B01\"", Command::CancelUpdate(vec!["B01".into()])),
        (
            b"a cancelupdate \"B01\" \"x y\"",
            Command::CancelUpdate(vec!["B01".into(), "x y".into()]),
        ),
        (
            b"a UID FETCH 1:* (FLAGS) (PARTIAL -1:-30)",
            fetch(None, range(true, 1, 30)),
        ),
        (
            b"a UID FETCH 1:* FLAGS (CHANGEDSINCE 5 PARTIAL 1:10)",
            fetch(Some(5), range(false, 1, 10)),
        ),
    ]
}

/// Rows: command, expected tag, expected message.
pub(super) const INVALID: &[(&[u8], Option<&str>, &str)] = &[
    (b"a APPEND x CATENATE ()", Some("a"), "expected TEXT or URL"),
    (
        b"a APPEND x CATENATE (BODY {1}\r\nx)",
        Some("a"),
        "expected TEXT or URL",
    ),
    (
        b"a APPEND x CATENATE (TEXT \"abc\")",
        Some("a"),
        "expected the TEXT as a literal",
    ),
    (b"a APPEND x CATENATE (URL)", Some("a"), "expected a space"),
    (b"a APPEND x CATENATE (URL \"/x/;uid=1\"", Some("a"), "missing argument"),
    (
        b"a APPEND x CATENATE (UTF8 ({1}\r\nx))",
        Some("a"),
        "UTF8 data must be a literal8",
    ),
    (
        b"a APPEND x CATENATE (TEXT {1}\r\n\0)",
        Some("a"),
        "NUL in a literal; use literal8",
    ),
    (b"a APPEND x CATENATE TEXT {1}\r\nx", Some("a"), "expected a list"),
    (b"a APPEND x CATENATE", Some("a"), "missing argument"),
    (
        b"a UNAUTHENTICATE now",
        Some("a"),
        "unexpected characters at the end of the command",
    ),
    (
        b"a REPLACE 0 INBOX {1}\r\nx",
        Some("a"),
        "expected a message number or UID",
    ),
    (b"a REPLACE 1:2 INBOX {1}\r\nx", Some("a"), "expected a space"),
    (b"a REPLACE 1 INBOX", Some("a"), "missing argument"),
    (b"a UID REPLACE 1 INBOX (\\Seen)", Some("a"), "missing argument"),
    (b"a REPLACE 1 INBOX x", Some("a"), "expected the message as a literal"),
    (
        b"a REPLACE 1 INBOX {1}\r\nx {1}\r\ny",
        Some("a"),
        "unexpected characters at the end of the command",
    ),
    (
        b"a REPLACE $ INBOX {1}\r\nx",
        Some("a"),
        "expected a message number or UID",
    ),
    (b"a SEARCH RETURN (PARTIAL 1) ALL", Some("a"), "invalid partial range"),
    (b"a SEARCH RETURN (PARTIAL 1:*) ALL", Some("a"), "invalid partial range"),
    (b"a SEARCH RETURN (PARTIAL *:1) ALL", Some("a"), "invalid partial range"),
    (
        b"a SEARCH RETURN (PARTIAL -1:5) ALL",
        Some("a"),
        "invalid partial range",
    ),
    (
        b"a SEARCH RETURN (PARTIAL 1:-5) ALL",
        Some("a"),
        "invalid partial range",
    ),
    (b"a SEARCH RETURN (PARTIAL 0:5) ALL", Some("a"), "invalid partial range"),
    (b"a SEARCH RETURN (PARTIAL) ALL", Some("a"), "expected a space"),
    (
        b"a SEARCH RETURN (PARTIAL 1:5 ALL) ALL",
        Some("a"),
        "PARTIAL and ALL cannot be combined",
    ),
    (
        b"a SEARCH RETURN (PARTIAL 1:5 PARTIAL 1:2) ALL",
        Some("a"),
        "PARTIAL given twice",
    ),
    (
        b"a SORT RETURN (FOO) (DATE) UTF-8 ALL",
        Some("a"),
        "unknown SEARCH return option",
    ),
    (
        b"a SORT RETURN (PARTIAL 1:5 ALL) (DATE) UTF-8 ALL",
        Some("a"),
        "PARTIAL and ALL cannot be combined",
    ),
    (b"a SORT RETURN (ALL)(DATE) UTF-8 ALL", Some("a"), "expected a space"),
    // RETURN goes before the criteria; after them it is read as the charset.
    (b"a SORT (DATE) RETURN (ALL) UTF-8 ALL", Some("a"), "unknown search key"),
    (b"a CANCELUPDATE", Some("a"), "missing argument"),
    (b"a CANCELUPDATE B01", Some("a"), "expected a quoted tag"),
    (b"a CANCELUPDATE {3}\r\nB01", Some("a"), "expected a quoted tag"),
    (b"a CANCELUPDATE \"B01\" ", Some("a"), "expected a quoted tag"),
    (b"a CANCELUPDATE \"B01", Some("a"), "unterminated quoted string"),
    (
        b"a UID FETCH 1:* FLAGS (PARTIAL 1:2 PARTIAL 1:2)",
        Some("a"),
        "PARTIAL given twice",
    ),
    (
        b"a UID FETCH 1:* FLAGS (PARTIAL -2:-0)",
        Some("a"),
        "invalid partial range",
    ),
];

#[test]
fn extension_commands() {
    for (raw, expected) in valid() {
        let shown = String::from_utf8_lossy(raw);
        assert_eq!(parse_command(raw).map(|(_, c)| c), Ok(expected.clone()), "{shown}");
        let (_, owned) = parse_command_owned(raw.to_vec()).unwrap();
        assert_eq!(owned, expected, "owned: {shown}");
    }
    super::assert_refused(INVALID);
}

/// RFC 9586 §3: which commands name messages by sequence number (refused under UIDONLY).
#[test]
fn sequence_numbers_under_uidonly() {
    let rows: &[(&[u8], bool)] = &[
        (b"a FETCH 1 FLAGS", true),
        (b"a UID FETCH 1:* FLAGS", false),
        (b"a STORE 1 +FLAGS (\\Seen)", true),
        (b"a UID STORE 1 +FLAGS (\\Seen)", false),
        (b"a COPY 1:2 Drafts", true),
        (b"a UID MOVE 1:2 Drafts", false),
        (b"a MOVE $ Drafts", true),
        (b"a SEARCH ALL", true),
        (b"a UID SEARCH ALL", false),
        (b"a UID SEARCH UID 1:3", false),
        (b"a UID SEARCH 1:3", true),
        (b"a UID SEARCH NOT (SEEN OR FLAGGED 2)", true),
        (b"a UID SEARCH $ SEEN", false),
        (b"a UID FETCH $ FLAGS", false),
        (b"a UID SORT (DATE) UTF-8 1", true),
        (b"a SORT (DATE) UTF-8 ALL", true),
        (b"a UID THREAD REFERENCES UTF-8 ALL", false),
        (b"a REPLACE 1 INBOX {1}\r\nx", true),
        (b"a UID REPLACE 1 INBOX {1}\r\nx", false),
        (b"a SELECT INBOX (QRESYNC (1 2 1:5 (1,3 1,3)))", true),
        (b"a SELECT INBOX (QRESYNC (1 2 1:5))", false),
        (b"a EXPUNGE", false),
        (b"a UID EXPUNGE 1:3", false),
        (b"a NOOP", false),
    ];
    for &(raw, expected) in rows {
        let (_, command) = parse_command(raw).unwrap();
        assert_eq!(
            command.uses_sequence_numbers(),
            expected,
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

/// RFC 9394 §3: a range picks positions from the start or from the end, in ascending order.
#[test]
fn partial_ranges_select_pages() {
    let results = [10, 20, 30, 40, 50];
    let rows: &[(PartialRange, &[u32])] = &[
        (range(false, 1, 1), &[10]),
        (range(false, 2, 4), &[20, 30, 40]),
        (range(false, 1, 6), &results),
        (range(false, 6, 9), &[]),
        (range(true, 1, 2), &[40, 50]),
        (range(true, 1, 100), &results),
        (range(true, 5, 5), &[10]),
        (range(true, 6, 7), &[]),
    ];
    for (r, expected) in rows {
        assert_eq!(r.select(&results), *expected, "{r}");
    }
    assert_eq!(range(true, 1, 100).to_string(), "-1:-100");
    assert_eq!(range(false, 2, 4).to_string(), "2:4");
}
