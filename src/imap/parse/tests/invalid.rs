//! One row per syntax error: the command, the tag reported, the message.

use super::super::*;

/// Rows: command, expected tag, expected message.
pub(super) const INVALID: &[(&[u8], Option<&str>, &str)] = &[
    (b"", None, "empty command"),
    (b"+a NOOP", None, "invalid tag"),
    (b"(a NOOP", None, "invalid tag"),
    (b"a", Some("a"), "missing command"),
    (b"a\r\n", None, "invalid tag"),
    (b"a ", Some("a"), "missing command"),
    (b"a  NOOP", Some("a"), "invalid command name"),
    (b"a+b NOOP", None, "invalid tag"),
    (b"a\"b NOOP", None, "invalid tag"),
    (b"a XYZZY", Some("a"), "unknown command"),
    (b"a NOOP ", Some("a"), "unexpected characters at the end of the command"),
    (
        b"a NOOP x",
        Some("a"),
        "unexpected characters at the end of the command",
    ),
    (b"a LOGIN bob", Some("a"), "missing argument"),
    (b"a LOGIN bob  pw", Some("a"), "expected a string"),
    (b"a LOGIN bob \"pw", Some("a"), "unterminated quoted string"),
    (b"a LOGIN bob \"p\\w\"", Some("a"), "invalid escape in quoted string"),
    (b"a LOGIN bob {5}\r\npw", Some("a"), "literal shorter than announced"),
    (
        b"a LOGIN bob {2}pw",
        Some("a"),
        "expected a line end after the literal length",
    ),
    (b"a LOGIN bob {2}\r\np\0", Some("a"), "NUL in a literal; use literal8"),
    (
        b"a LOGIN bob ~{2}\r\npw",
        Some("a"),
        "literal8 is only allowed in APPEND",
    ),
    (b"a LOGIN bob {2}\r\n\xff\xfe", Some("a"), "string is not valid UTF-8"),
    (b"a AUTHENTICATE PLAIN abc", Some("a"), "initial response is not base64"),
    (b"a ENABLE", Some("a"), "missing argument"),
    (b"a ID", Some("a"), "missing argument"),
    (b"a ID (\"name\")", Some("a"), "expected a space"),
    (b"a SELECT", Some("a"), "missing argument"),
    (b"a SELECT x ()", Some("a"), "unknown SELECT parameter"),
    (b"a SELECT x (FOO)", Some("a"), "unknown SELECT parameter"),
    (b"a SELECT x (CONDSTORE CONDSTORE)", Some("a"), "CONDSTORE given twice"),
    (b"a SELECT x (QRESYNC (0 1))", Some("a"), "zero is not allowed here"),
    (
        b"a SELECT x (QRESYNC (1 0))",
        Some("a"),
        "mod-sequence must not be zero",
    ),
    (b"a SELECT x (QRESYNC (1 2 1:*))", Some("a"), "invalid sequence set"),
    (b"a CREATE x (USE (Drafts))", Some("a"), "invalid special-use attribute"),
    (b"a CREATE x (FOO)", Some("a"), "unknown CREATE parameter"),
    (
        b"a LIST (RECURSIVEMATCH) \"\" *",
        Some("a"),
        "RECURSIVEMATCH needs a selection option to modify",
    ),
    (b"a LIST (FOO) \"\" *", Some("a"), "unknown LIST selection option"),
    (b"a LIST \"\" * RETURN (FOO)", Some("a"), "unknown LIST return option"),
    (b"a LIST \"\"", Some("a"), "missing argument"),
    (b"a LIST \"\" ()", Some("a"), "expected a mailbox pattern"),
    (b"a STATUS x ()", Some("a"), "unknown STATUS item"),
    (b"a STATUS x (MESSAGES FOO)", Some("a"), "unknown STATUS item"),
    (b"a STATUS x MESSAGES", Some("a"), "expected a list"),
    (b"a APPEND x", Some("a"), "missing argument"),
    (b"a APPEND x \"msg\"", Some("a"), "invalid date-time"),
    (b"a APPEND x hello", Some("a"), "expected the message as a literal"),
    (
        b"a APPEND x \"31-Feb-2000 00:00:00 +0000\" {1}\r\nx",
        Some("a"),
        "invalid date-time",
    ),
    (
        b"a APPEND x \"1-Feb-2000 24:00:00 +0000\" {1}\r\nx",
        Some("a"),
        "invalid date-time",
    ),
    (b"a APPEND x {1}\r\nx ", Some("a"), "expected the message as a literal"),
    (b"a APPEND x {1}\r\n\0", Some("a"), "NUL in a literal; use literal8"),
    (b"a FETCH 0 FLAGS", Some("a"), "invalid sequence set"),
    (b"a FETCH 1: FLAGS", Some("a"), "invalid sequence set"),
    (b"a FETCH 1,,2 FLAGS", Some("a"), "invalid sequence set"),
    (b"a FETCH 1,$ FLAGS", Some("a"), "invalid sequence set"),
    (b"a FETCH 4294967296 FLAGS", Some("a"), "invalid sequence set"),
    (b"a FETCH 1x FLAGS", Some("a"), "invalid sequence set"),
    (b"a FETCH 1", Some("a"), "missing argument"),
    (b"a FETCH 1 ()", Some("a"), "missing FETCH attribute"),
    (b"a FETCH 1 (ALL)", Some("a"), "unknown FETCH attribute"),
    (b"a FETCH 1 FOO", Some("a"), "unknown FETCH attribute"),
    (b"a FETCH 1 (FLAGS  UID)", Some("a"), "missing FETCH attribute"),
    (b"a FETCH 1 BODY.PEEK", Some("a"), "expected a section"),
    (b"a FETCH 1 BODY[MIME]", Some("a"), "invalid section"),
    (b"a FETCH 1 BODY[1.]", Some("a"), "invalid section"),
    (b"a FETCH 1 BODY[0]", Some("a"), "invalid section part"),
    (b"a FETCH 1 BODY[HEADER.FIELDS]", Some("a"), "expected a space"),
    (b"a FETCH 1 BODY[HEADER.FIELDS ()]", Some("a"), "expected a string"),
    (b"a FETCH 1 BODY[]<0.0>", Some("a"), "invalid partial range"),
    (b"a FETCH 1 BODY[]<1>", Some("a"), "invalid partial range"),
    (b"a FETCH 1 BINARY[TEXT]", Some("a"), "invalid section part"),
    (b"a FETCH 1 BINARY.SIZE", Some("a"), "expected a section"),
    (b"a FETCH 1 PREVIEW (FOO)", Some("a"), "unknown FETCH modifier"),
    (
        b"a FETCH 1 FLAGS (VANISHED)",
        Some("a"),
        "VANISHED is only allowed in UID FETCH",
    ),
    (
        b"a UID FETCH 1 FLAGS (VANISHED)",
        Some("a"),
        "VANISHED requires CHANGEDSINCE",
    ),
    (
        b"a FETCH 1 FLAGS (CHANGEDSINCE 0)",
        Some("a"),
        "mod-sequence must not be zero",
    ),
    (
        b"a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)",
        Some("a"),
        "CHANGEDSINCE given twice",
    ),
    (b"a STORE 1 FLAGS", Some("a"), "missing argument"),
    (
        b"a STORE 1 +FLAGS.LOUD (\\Seen)",
        Some("a"),
        "expected FLAGS, +FLAGS or -FLAGS",
    ),
    (
        b"a STORE 1 SEEN (\\Seen)",
        Some("a"),
        "expected FLAGS, +FLAGS or -FLAGS",
    ),
    (b"a STORE 1 FLAGS (\\Seen", Some("a"), "missing argument"),
    (b"a STORE 1 FLAGS (\\*)", Some("a"), "invalid flag"),
    (b"a STORE 1 (FOO 1) FLAGS x", Some("a"), "unknown STORE modifier"),
    (b"a COPY 1", Some("a"), "missing argument"),
    (b"a UID", Some("a"), "missing argument"),
    (b"a UID NOOP", Some("a"), "unknown UID command"),
    (b"a UID EXPUNGE", Some("a"), "missing argument"),
    (b"a SEARCH", Some("a"), "missing argument"),
    (b"a SEARCH FOO", Some("a"), "unknown search key"),
    (b"a SEARCH ()", Some("a"), "invalid search key"),
    (b"a SEARCH OR SEEN", Some("a"), "missing argument"),
    (b"a SEARCH SINCE 1-Foo-2000", Some("a"), "invalid date"),
    (b"a SEARCH SINCE 30-Feb-2000", Some("a"), "invalid date"),
    (b"a SEARCH SINCE 1-Feb-94", Some("a"), "invalid date"),
    (b"a SEARCH SINCE 123-Feb-1994", Some("a"), "invalid date"),
    (b"a SEARCH RETURN (FOO) ALL", Some("a"), "unknown SEARCH return option"),
    (b"a SEARCH CHARSET UTF-8", Some("a"), "missing argument"),
    (b"a SEARCH SEEN  UNSEEN", Some("a"), "invalid search key"),
    (b"a SEARCH MODSEQ \"/flags/\" all 1", Some("a"), "invalid flag"),
    (b"a SEARCH MODSEQ \"/x\" all 1", Some("a"), "invalid MODSEQ entry name"),
    (
        b"a SEARCH MODSEQ \"/flags/\\\\Seen\" mine 1",
        Some("a"),
        "invalid MODSEQ entry type",
    ),
    (b"a SEARCH OLDER 0", Some("a"), "zero is not allowed here"),
    (b"a SEARCH LARGER 9223372036854775808", Some("a"), "number too large"),
    (b"a COMPRESS", Some("a"), "missing argument"),
    // SORT and THREAD (RFC 5256 §5).
    (b"a SORT", Some("a"), "missing argument"),
    (b"a SORT (DATE)", Some("a"), "missing argument"),
    (b"a SORT DATE UTF-8 ALL", Some("a"), "expected a list of sort criteria"),
    (b"a SORT () UTF-8 ALL", Some("a"), "empty list of sort criteria"),
    (b"a SORT (FOO) UTF-8 ALL", Some("a"), "unknown sort criterion"),
    (b"a SORT (DATE FROM2) UTF-8 ALL", Some("a"), "unknown sort criterion"),
    (b"a SORT (REVERSE) UTF-8 ALL", Some("a"), "REVERSE without a sort key"),
    (
        b"a SORT (DATE REVERSE) UTF-8 ALL",
        Some("a"),
        "REVERSE without a sort key",
    ),
    (
        b"a SORT (REVERSE REVERSE DATE) UTF-8 ALL",
        Some("a"),
        "REVERSE without a sort key",
    ),
    (
        b"a SORT (DATE  SUBJECT) UTF-8 ALL",
        Some("a"),
        "expected a sort criterion",
    ),
    (b"a SORT (DATE", Some("a"), "missing argument"),
    (b"a SORT (DATE)UTF-8 ALL", Some("a"), "expected a space"),
    // No charset: ALL is taken for one and no key follows.
    (b"a SORT (DATE) ALL", Some("a"), "missing charset or search key"),
    (b"a SORT (DATE) UTF-8", Some("a"), "missing charset or search key"),
    (b"a SORT (DATE) (UTF-8) ALL", Some("a"), "expected a charset"),
    (b"a SORT (DATE) UTF-8 FOO", Some("a"), "unknown search key"),
    (b"a SORT (DATE) UTF-8 ALL ", Some("a"), "missing search key"),
    (b"a UID SORT (DATE) UTF-8", Some("a"), "missing charset or search key"),
    (b"a THREAD", Some("a"), "missing argument"),
    (b"a THREAD FOO UTF-8 ALL", Some("a"), "unknown THREAD algorithm"),
    (
        b"a THREAD (REFERENCES) UTF-8 ALL",
        Some("a"),
        "expected a THREAD algorithm",
    ),
    (b"a THREAD REFERENCES", Some("a"), "missing argument"),
    (b"a THREAD REFERENCES UTF-8", Some("a"), "missing charset or search key"),
    (b"a UID THREAD REFS UTF-8 ALL", Some("a"), "unknown THREAD algorithm"),
];

#[test]
fn invalid_commands() {
    super::assert_refused(INVALID);
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for opener in ["(", "NOT ", "OR ALL "] {
        let raw = format!("a SEARCH {}ALL", opener.repeat(100_000));
        let error = parse_command(raw.as_bytes()).expect_err("nested past the bound");
        assert_eq!(
            error.message,
            "search keys nested too deeply ([limits] max_search_depth)"
        );
    }
    let raw = format!("a SEARCH {}ALL{}", "(".repeat(60), ")".repeat(60));
    assert!(parse_command(raw.as_bytes()).is_ok());
}
