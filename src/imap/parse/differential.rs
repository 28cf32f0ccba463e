//! Differential test against the `imap-codec` crate's command decoder: on a corpus of valid and
//! invalid commands both must agree on valid/invalid and, for valid ones, on the tag, the command
//! name, the UID flag, the number of FETCH items and the first sequence set's bounds.
//!
//! Where the two disagree, `KNOWN_DIFFERENCES` lists the case and why; ringmail follows the
//! RFC, or imap-codec lacks the extension.

use super::parse_command;
use crate::imap::types::{Command, SeqBound, SequenceSet};
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::MacroOrMessageDataItemNames;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
use imap_codec::CommandCodec;

const VALID: &[&[u8]] = &[
    b"a1 CAPABILITY",
    b"a2 noop",
    b"a3 LOGOUT",
    b"a4 STARTTLS",
    b"a5 LOGIN bob secret",
    b"a6 LOGIN \"bob\" \"se \\\"cr\\\\et\"",
    b"a7 LOGIN {3}\r\nbob {6}\r\nsecret",
    b"a8 LOGIN {3+}\r\nbob {0+}\r\n",
    b"a9 AUTHENTICATE PLAIN",
    b"b1 AUTHENTICATE PLAIN AGJvYgBwdw==",
    b"b2 AUTHENTICATE EXTERNAL =",
    b"b3 ENABLE CONDSTORE",
    b"b4 ENABLE CONDSTORE QRESYNC",
    b"b5 ID NIL",
    b"b6 ID (\"name\" \"x\" \"version\" NIL)",
    b"b7 SELECT INBOX",
    b"b8 SELECT \"Sent Items\"",
    b"b9 SELECT x (CONDSTORE)",
    b"c1 SELECT x (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
    b"c2 EXAMINE inbox",
    b"c3 CREATE x",
    b"c4 DELETE x",
    b"c5 RENAME a b",
    b"c6 SUBSCRIBE x",
    b"c7 UNSUBSCRIBE x",
    b"c8 LIST \"\" *",
    b"c9 LIST \"\" %",
    b"d1 LIST ~/Mail/ %",
    b"d2 LSUB \"#news.\" comp.mail.*",
    b"d3 STATUS INBOX (MESSAGES UNSEEN)",
    b"d4 STATUS x (UIDNEXT UIDVALIDITY RECENT DELETED SIZE HIGHESTMODSEQ)",
    b"d5 APPEND x {5}\r\nHello",
    b"d6 APPEND x (\\Seen) {5}\r\nHello",
    b"d7 APPEND x (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {5}\r\nHello",
    b"d8 APPEND x ~{3}\r\n\0ab",
    b"d9 NAMESPACE",
    b"e1 IDLE",
    b"e2 CHECK",
    b"e3 CLOSE",
    b"e4 UNSELECT",
    b"e5 EXPUNGE",
    b"e6 UID EXPUNGE 1:3",
    b"e7 FETCH 1 ALL",
    b"e8 FETCH 1:* FAST",
    b"e9 FETCH 1,2,5:7 FULL",
    b"f1 FETCH * (FLAGS UID)",
    b"f2 FETCH 1 (BODY[] BODY.PEEK[HEADER] BODY[TEXT]<0.100>)",
    b"f3 FETCH 1 BODY[1.2.HEADER.FIELDS (A B)]<0.100>",
    b"f4 FETCH 1 (BODY[HEADER.FIELDS.NOT (Received)] BODY[1.MIME] BODY[3])",
    b"f5 FETCH 1 (BINARY.PEEK[1]<0.10> BINARY[] BINARY.SIZE[1])",
    b"f6 FETCH 1 (ENVELOPE BODYSTRUCTURE BODY RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE INTERNALDATE)",
    b"f7 FETCH 1:10 (FLAGS) (CHANGEDSINCE 12345)",
    b"f8 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
    b"f9 FETCH 4:2 MODSEQ",
    b"g1 STORE 1 +FLAGS (\\Deleted)",
    b"g2 STORE 1:3 -FLAGS.SILENT (\\Seen \\Flagged)",
    b"g3 STORE 1 FLAGS \\Seen",
    b"g4 UID STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)",
    b"g5 COPY 1:2 INBOX",
    b"g6 UID COPY 1 x",
    b"g7 MOVE 1 x",
    b"g8 UID MOVE 1:* x",
    b"g9 SEARCH ALL",
    b"h1 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
    b"h2 UID SEARCH CHARSET UTF-8 TEXT {3}\r\nabc",
    b"h3 SEARCH OR SEEN (FLAGGED DELETED) 1:5",
    b"h4 SEARCH HEADER Message-ID \"<x@y>\" LARGER 10 SMALLER 20",
    b"h5 SEARCH OLDER 3600 YOUNGER 60",
    b"h6 SEARCH UID 1,3:*",
    b"h7 GETQUOTA \"\"",
    b"h8 GETQUOTAROOT INBOX",
    b"h9 COMPRESS DEFLATE",
    b"i1 SEARCH MODSEQ 5 UNSEEN",
    b"i2 SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338",
    b"i3 SORT (REVERSE DATE SUBJECT) UTF-8 ALL",
    b"i4 UID SORT (ARRIVAL CC FROM SIZE TO) US-ASCII UNSEEN 1:5",
    b"i5 THREAD REFERENCES UTF-8 ALL",
    b"i6 UID THREAD ORDEREDSUBJECT UTF-8 SUBJECT x",
];

const INVALID: &[&[u8]] = &[
    b"",
    b"+a NOOP",
    b"a XYZZY",
    b"a NOOP x",
    b"a NOOP ",
    b"a  NOOP",
    b"a LOGIN bob",
    b"a LOGIN bob  pw",
    b"a LOGIN bob \"pw",
    b"a LOGIN bob {5}\r\npw",
    b"a LOGIN bob ~{2}\r\npw",
    b"a SELECT",
    b"a SELECT x (FOO)",
    b"a STATUS x (FOO)",
    b"a APPEND x",
    b"a APPEND x hello",
    b"a FETCH 0 FLAGS",
    b"a FETCH 1: FLAGS",
    b"a FETCH 1,,2 FLAGS",
    b"a FETCH 1",
    b"a FETCH 1 (ALL)",
    b"a FETCH 1 FOO",
    b"a FETCH 1 BODY[MIME]",
    b"a FETCH 1 BODY[]<0.0>",
    b"a STORE 1 FLAGS",
    b"a STORE 1 SEEN (\\Seen)",
    b"a COPY 1",
    b"a UID NOOP",
    b"a SEARCH",
    b"a SEARCH FOO",
    b"a SEARCH SINCE 1-Foo-2000",
    b"a SEARCH OLDER 0",
    b"a COMPRESS",
    b"a ENABLE",
    b"a LIST ~{1}\r\nx %",
    b"a SEARCH TEXT ~{1}\r\nx",
    b"a SORT () UTF-8 ALL",
    b"a SORT (DATE) ALL",
    b"a SORT (REVERSE) UTF-8 ALL",
];

/// Cases where ringmail and imap-codec disagree on purpose: the command, whether ringmail
/// accepts it, and why.
const KNOWN_DIFFERENCES: &[(&[u8], bool, &str)] = &[
    // Extensions imap-codec does not parse.
    (b"a APPEND x {1}\r\na {1}\r\nb", true, "RFC 3502 MULTIAPPEND"),
    (b"a LIST (SUBSCRIBED) \"\" *", true, "RFC 5258 LIST-EXTENDED"),
    (
        b"a LIST \"\" * RETURN (STATUS (MESSAGES))",
        true,
        "RFC 5819 LIST-STATUS",
    ),
    (b"a CREATE x (USE (\\Drafts))", true, "RFC 6154 CREATE-SPECIAL-USE"),
    (b"a SEARCH RETURN (MIN) ALL", true, "RFC 4731 ESEARCH"),
    (b"a FETCH $ FLAGS", true, "RFC 5182 SEARCHRES"),
    (b"a FETCH 1 (SAVEDATE EMAILID THREADID)", true, "RFC 8514, RFC 8474"),
    (b"a FETCH 1 PREVIEW (LAZY)", true, "RFC 8970 PREVIEW"),
    // RFC 9051 §9 partial = "<" number64 "." nz-number64 ">": imap-codec keeps RFC 3501's
    // 32-bit numbers.
    (b"a FETCH 1 BODY[]<0.4294967296>", true, "RFC 9051 number64 in partial"),
    // RFC 9051 §9 search-key nests without bound; imap-codec stops at 9 levels, ringmail at 64.
    (
        b"a SEARCH ((((((((((ALL))))))))))",
        true,
        "RFC 9051 §9 search-key nesting",
    ),
    // RFC 9051 §9 requires at least one item in both lists; imap-codec accepts none.
    (b"a STATUS x ()", false, "RFC 9051 §9 status: empty item list"),
    (b"a FETCH 1 ()", false, "RFC 9051 §9 fetch: empty attribute list"),
    // RFC 7162 §3.2.6: VANISHED needs UID FETCH and CHANGEDSINCE, else BAD.
    (
        b"a FETCH 1 FLAGS (VANISHED)",
        false,
        "RFC 7162 §3.2.6 VANISHED without UID",
    ),
    (
        b"a UID FETCH 1 FLAGS (VANISHED)",
        false,
        "RFC 7162 §3.2.6 VANISHED without CHANGEDSINCE",
    ),
];

/// What both parsers must agree on.
#[derive(Debug, PartialEq, Eq)]
struct Essentials {
    tag: String,
    name: &'static str,
    uid: Option<bool>,
    fetch_items: Option<usize>,
    /// First sequence set, `*` as 0.
    bounds: Option<Vec<(u32, u32)>>,
}

fn ours(raw: &[u8]) -> Option<Essentials> {
    let (tag, command) = parse_command(raw).ok()?;
    let bounds = |set: &SequenceSet| match set {
        SequenceSet::Ranges(ranges) => Some(ranges.iter().map(|&(a, b)| (seq_bound(a), seq_bound(b))).collect()),
        SequenceSet::Saved => None,
    };
    let (uid, fetch_items, set) = match &command {
        Command::Fetch { uid, set, attrs, .. } => (Some(*uid), Some(attrs.len()), bounds(set)),
        Command::Store { uid, set, .. } | Command::Copy { uid, set, .. } | Command::Move { uid, set, .. } => {
            (Some(*uid), None, bounds(set))
        }
        Command::Search { uid, .. } => (Some(*uid), None, None),
        Command::UidExpunge(set) => (None, None, bounds(set)),
        _ => (None, None, None),
    };
    Some(Essentials {
        tag,
        name: name(&command),
        uid,
        fetch_items,
        bounds: set,
    })
}

fn seq_bound(bound: SeqBound) -> u32 {
    match bound {
        SeqBound::Num(n) => n,
        SeqBound::Star => 0,
    }
}

fn name(command: &Command) -> &'static str {
    command.verb()
}

fn theirs(raw: &[u8]) -> Option<Essentials> {
    let mut wire = raw.to_vec();
    wire.extend_from_slice(b"\r\n");
    let (rest, command) = CommandCodec::default().decode(&wire).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let bounds = |set: &imap_codec::imap_types::sequence::SequenceSet| {
        let value = |s: &SeqOrUid| match s {
            SeqOrUid::Value(n) => n.get(),
            SeqOrUid::Asterisk => 0,
        };
        Some(
            set.0
                .as_ref()
                .iter()
                .map(|seq| match seq {
                    Sequence::Single(s) => (value(s), value(s)),
                    Sequence::Range(a, b) => (value(a), value(b)),
                })
                .collect(),
        )
    };
    let (uid, fetch_items, set) = match &command.body {
        CommandBody::Fetch {
            uid,
            sequence_set,
            macro_or_item_names,
            ..
        } => {
            let items = match macro_or_item_names {
                MacroOrMessageDataItemNames::Macro(m) => m.expand().len(),
                MacroOrMessageDataItemNames::MessageDataItemNames(items) => items.len(),
            };
            (Some(*uid), Some(items), bounds(sequence_set))
        }
        CommandBody::Store { uid, sequence_set, .. }
        | CommandBody::Copy { uid, sequence_set, .. }
        | CommandBody::Move { uid, sequence_set, .. } => (Some(*uid), None, bounds(sequence_set)),
        CommandBody::Search { uid, .. } => (Some(*uid), None, None),
        CommandBody::ExpungeUid { sequence_set } => (None, None, bounds(sequence_set)),
        _ => (None, None, None),
    };
    Some(Essentials {
        tag: command.tag.inner().to_owned(),
        name: command.body.name(),
        uid,
        fetch_items,
        bounds: set,
    })
}

/// Every command of this test, for the no-panic test.
pub(super) fn corpus() -> Vec<Vec<u8>> {
    VALID
        .iter()
        .chain(INVALID)
        .copied()
        .chain(KNOWN_DIFFERENCES.iter().map(|(raw, _, _)| *raw))
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn agrees_with_imap_codec() {
    let mut failures = Vec::new();
    for raw in VALID {
        let (ours, theirs) = (ours(raw), theirs(raw));
        if ours.is_none() || ours != theirs {
            failures.push(format!(
                "{:?}: ours {ours:?}, imap-codec {theirs:?}",
                String::from_utf8_lossy(raw)
            ));
        }
    }
    for raw in INVALID {
        let (ours, theirs) = (ours(raw), theirs(raw));
        if ours.is_some() || theirs.is_some() {
            failures.push(format!(
                "{:?} should be invalid: ours {ours:?}, imap-codec {theirs:?}",
                String::from_utf8_lossy(raw)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(VALID.len() >= 60 && INVALID.len() >= 30);
}

#[test]
fn known_differences_still_differ() {
    for &(raw, we_accept, why) in KNOWN_DIFFERENCES {
        let shown = String::from_utf8_lossy(raw);
        assert_eq!(ours(raw).is_some(), we_accept, "{shown} ({why})");
        assert_eq!(theirs(raw).is_some(), !we_accept, "{shown} ({why}): imap-codec changed");
    }
}
