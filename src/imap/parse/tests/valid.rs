//! One row per valid command form and the `Command` it must give.

use super::super::*;
use crate::imap::types::*;

fn set(ranges: &[(u32, u32)]) -> SequenceSet {
    SequenceSet::Ranges(ranges.iter().map(|&(a, b)| (bound(a), bound(b))).collect())
}

/// 0 stands for `*` in these tables.
fn bound(n: u32) -> SeqBound {
    if n == 0 {
        SeqBound::Star
    } else {
        SeqBound::Num(n)
    }
}

fn s(text: &str) -> String {
    text.to_owned()
}

fn fetch(set: SequenceSet, attrs: Vec<FetchAttr>) -> Command {
    Command::Fetch {
        uid: false,
        set,
        attrs,
        changed_since: None,
        vanished: false,
        partial: None,
    }
}

fn section(part: &[u32], text: SectionText, peek: bool, partial: Option<(u32, u32)>) -> FetchAttr {
    FetchAttr::BodySection {
        peek,
        section: Section {
            part: part.to_vec(),
            text,
        },
        partial: partial.map(|(origin, count)| Partial { origin, count }),
    }
}

fn search(key: SearchKey) -> Command {
    Command::Search {
        uid: false,
        charset: None,
        returns: None,
        key,
    }
}

fn criterion(reverse: bool, key: SortKey) -> SortCriterion {
    SortCriterion { reverse, key }
}

fn days(text: &str) -> i64 {
    let mut c = lexer::Cursor::new(text.as_bytes());
    c.date().expect("test dates are valid")
}

pub(super) fn valid() -> Vec<(&'static [u8], Command)> {
    use FetchAttr as F;
    use SearchKey as K;
    vec![
        // Any state, no arguments; names in any case.
        (b"a CAPABILITY", Command::Capability),
        (b"a noop", Command::Noop),
        (b"a LoGoUt", Command::Logout),
        (b"a STARTTLS", Command::StartTls),
        (b"a NAMESPACE", Command::Namespace),
        (b"a IDLE", Command::Idle),
        (b"a CHECK", Command::Check),
        (b"a CLOSE", Command::Close),
        (b"a UNSELECT", Command::Unselect),
        (b"a EXPUNGE", Command::Expunge),
        (b"a.b]c~ NOOP", Command::Noop),
        // Authentication.
        (
            b"a LOGIN bob \"p \\\"w\\\\\"",
            Command::Login {
                user: s("bob"),
                password: s("p \"w\\"),
            },
        ),
        (
            b"a LOGIN {3}\r\nbob {2+}\r\npw",
            Command::Login {
                user: s("bob"),
                password: s("pw"),
            },
        ),
        (
            b"a LOGIN \"j\xc3\xb6rg\" {0}\n",
            Command::Login {
                user: s("jörg"),
                password: s(""),
            },
        ),
        (
            b"a LOGIN ~ ~x",
            Command::Login {
                user: s("~"),
                password: s("~x"),
            },
        ),
        (
            b"a AUTHENTICATE plain",
            Command::Authenticate {
                mechanism: s("PLAIN"),
                initial: None,
            },
        ),
        (
            b"a AUTHENTICATE PLAIN AGJvYgBwdw==",
            Command::Authenticate {
                mechanism: s("PLAIN"),
                initial: Some(s("AGJvYgBwdw==")),
            },
        ),
        (
            b"a AUTHENTICATE EXTERNAL =",
            Command::Authenticate {
                mechanism: s("EXTERNAL"),
                initial: Some(s("=")),
            },
        ),
        (b"a ENABLE condstore UTF8=ACCEPT", Command::Enable(vec![s("CONDSTORE"), s("UTF8=ACCEPT")])),
        (b"a ID NIL", Command::Id(None)),
        (b"a ID ()", Command::Id(Some(vec![]))),
        (
            b"a ID (\"name\" \"x\" \"version\" NIL)",
            Command::Id(Some(vec![(s("name"), Some(s("x"))), (s("version"), None)])),
        ),
        // Mailboxes.
        (
            b"a SELECT inbox",
            Command::Select {
                mailbox: s("INBOX"),
                params: SelectParams::default(),
            },
        ),
        (
            b"a EXAMINE \"Sent &AOQ-\"",
            Command::Examine {
                mailbox: s("Sent &AOQ-"),
                params: SelectParams::default(),
            },
        ),
        (
            b"a SELECT x (CONDSTORE)",
            Command::Select {
                mailbox: s("x"),
                params: SelectParams {
                    condstore: true,
                    qresync: None,
                },
            },
        ),
        (
            b"a SELECT x (QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
            Command::Select {
                mailbox: s("x"),
                params: SelectParams {
                    condstore: false,
                    qresync: Some(Qresync {
                        uid_validity: 67_890_007,
                        mod_seq: 20_050_715_194_045_000,
                        known_uids: Some(set(&[(41, 41), (43, 211), (214, 541)])),
                        seq_match: None,
                    }),
                },
            },
        ),
        (
            b"a SELECT x (QRESYNC (1 2 1:9 (1,5 3,7)) CONDSTORE)",
            Command::Select {
                mailbox: s("x"),
                params: SelectParams {
                    condstore: true,
                    qresync: Some(Qresync {
                        uid_validity: 1,
                        mod_seq: 2,
                        known_uids: Some(set(&[(1, 9)])),
                        seq_match: Some((set(&[(1, 1), (5, 5)]), set(&[(3, 3), (7, 7)]))),
                    }),
                },
            },
        ),
        (
            b"a SELECT x (QRESYNC (1 2 (1 3)))",
            Command::Select {
                mailbox: s("x"),
                params: SelectParams {
                    condstore: false,
                    qresync: Some(Qresync {
                        uid_validity: 1,
                        mod_seq: 2,
                        known_uids: None,
                        seq_match: Some((set(&[(1, 1)]), set(&[(3, 3)]))),
                    }),
                },
            },
        ),
        (
            b"a CREATE Drafts (USE (\\Drafts \\Sent))",
            Command::Create {
                mailbox: s("Drafts"),
                special_use: vec![s("\\Drafts"), s("\\Sent")],
            },
        ),
        (
            b"a CREATE a/b",
            Command::Create {
                mailbox: s("a/b"),
                special_use: vec![],
            },
        ),
        (b"a DELETE \"x y\"", Command::Delete { mailbox: s("x y") }),
        (
            b"a RENAME a INBOX.b",
            Command::Rename {
                from: s("a"),
                to: s("INBOX.b"),
            },
        ),
        (b"a SUBSCRIBE x", Command::Subscribe { mailbox: s("x") }),
        (b"a UNSUBSCRIBE Inbox", Command::Unsubscribe { mailbox: s("INBOX") }),
        (
            b"a LIST \"\" *",
            Command::List {
                reference: s(""),
                patterns: vec![s("*")],
                options: ListOptions::default(),
            },
        ),
        (
            b"a LIST (SUBSCRIBED REMOTE RECURSIVEMATCH) \"\" (INBOX% \"Other/*\") RETURN (CHILDREN)",
            Command::List {
                reference: s(""),
                patterns: vec![s("INBOX%"), s("Other/*")],
                options: ListOptions {
                    subscribed: true,
                    remote: true,
                    recursive_match: true,
                    return_children: true,
                    ..ListOptions::default()
                },
            },
        ),
        (
            b"a LIST () inbox % RETURN (SUBSCRIBED SPECIAL-USE STATUS (MESSAGES UNSEEN SIZE))",
            Command::List {
                reference: s("inbox"),
                patterns: vec![s("%")],
                options: ListOptions {
                    return_subscribed: true,
                    return_special_use: true,
                    return_status: vec![StatusItem::Messages, StatusItem::Unseen, StatusItem::Size],
                    ..ListOptions::default()
                },
            },
        ),
        (
            b"a LIST (SPECIAL-USE) \"\" * RETURN ()",
            Command::List {
                reference: s(""),
                patterns: vec![s("*")],
                options: ListOptions {
                    special_use: true,
                    ..ListOptions::default()
                },
            },
        ),
        (
            b"a LSUB \"#news.\" comp.mail.%",
            Command::Lsub {
                reference: s("#news."),
                pattern: s("comp.mail.%"),
            },
        ),
        (
            b"a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ)",
            Command::Status {
                mailbox: s("INBOX"),
                items: vec![
                    StatusItem::Messages,
                    StatusItem::Recent,
                    StatusItem::UidNext,
                    StatusItem::UidValidity,
                    StatusItem::Unseen,
                    StatusItem::Deleted,
                    StatusItem::Size,
                    StatusItem::HighestModSeq,
                ],
            },
        ),
        (
            b"a APPEND saved (\\Seen $Label) \"17-Jul-1996 02:44:25 -0700\" {5}\r\nHello",
            Command::Append {
                mailbox: s("saved"),
                messages: vec![AppendMessage {
                    flags: vec![s("\\Seen"), s("$Label")],
                    date: Some(837_596_665),
                    message: b"Hello".to_vec(),
                    binary: false,
                    span: None,
                    catenate: None,
                }],
            },
        ),
        (
            b"a APPEND x \" 1-Jan-1970 00:00:00 +0000\" ~{3+}\r\n\0\r\n (\\Draft) {1}\n!",
            Command::Append {
                mailbox: s("x"),
                messages: vec![
                    AppendMessage {
                        flags: vec![],
                        date: Some(0),
                        message: b"\0\r\n".to_vec(),
                        binary: true,
                        span: None,
                        catenate: None,
                    },
                    AppendMessage {
                        flags: vec![s("\\Draft")],
                        date: None,
                        message: b"!".to_vec(),
                        binary: false,
                        span: None,
                        catenate: None,
                    },
                ],
            },
        ),
        (
            b"a APPEND x () {0}\r\n",
            Command::Append {
                mailbox: s("x"),
                messages: vec![AppendMessage {
                    flags: vec![],
                    date: None,
                    message: vec![],
                    binary: false,
                    span: None,
                    catenate: None,
                }],
            },
        ),
        // FETCH.
        (
            b"a FETCH 1:* ALL",
            fetch(set(&[(1, 0)]), vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope]),
        ),
        (
            b"a FETCH 2,4:3,*:9 fast",
            fetch(set(&[(2, 2), (4, 3), (0, 9)]), vec![F::Flags, F::InternalDate, F::Rfc822Size]),
        ),
        (
            b"a FETCH * FULL",
            fetch(
                set(&[(0, 0)]),
                vec![F::Flags, F::InternalDate, F::Rfc822Size, F::Envelope, F::Body],
            ),
        ),
        (b"a FETCH $ UID", fetch(SequenceSet::Saved, vec![F::Uid])),
        (
            b"a FETCH 1 (FLAGS BODY BODYSTRUCTURE ENVELOPE RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE INTERNALDATE)",
            fetch(
                set(&[(1, 1)]),
                vec![
                    F::Flags,
                    F::Body,
                    F::BodyStructure,
                    F::Envelope,
                    F::Rfc822,
                    F::Rfc822Header,
                    F::Rfc822Text,
                    F::Rfc822Size,
                    F::InternalDate,
                ],
            ),
        ),
        (
            b"a FETCH 1 (BODY[] BODY.PEEK[HEADER] body[TEXT]<0.100> BODY[1.2.MIME] BODY[3])",
            fetch(
                set(&[(1, 1)]),
                vec![
                    section(&[], SectionText::Full, false, None),
                    section(&[], SectionText::Header, true, None),
                    section(&[], SectionText::Text, false, Some((0, 100))),
                    section(&[1, 2], SectionText::Mime, false, None),
                    section(&[3], SectionText::Full, false, None),
                ],
            ),
        ),
        (
            b"a FETCH 1 BODY[1.2.HEADER.FIELDS (A \"B c\" {1}\r\nD)]<0.100>",
            fetch(
                set(&[(1, 1)]),
                vec![section(
                    &[1, 2],
                    SectionText::HeaderFields(vec![s("A"), s("B c"), s("D")]),
                    false,
                    Some((0, 100)),
                )],
            ),
        ),
        (
            b"a FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Received)]<5.99999999999>",
            fetch(
                set(&[(1, 1)]),
                vec![section(
                    &[],
                    SectionText::HeaderFieldsNot(vec![s("Received")]),
                    true,
                    Some((5, u32::MAX)),
                )],
            ),
        ),
        (
            b"a FETCH 1 (BINARY.PEEK[1]<0.10> BINARY[] BINARY.SIZE[1.2])",
            fetch(
                set(&[(1, 1)]),
                vec![
                    F::Binary {
                        peek: true,
                        part: vec![1],
                        partial: Some(Partial { origin: 0, count: 10 }),
                    },
                    F::Binary {
                        peek: false,
                        part: vec![],
                        partial: None,
                    },
                    F::BinarySize { part: vec![1, 2] },
                ],
            ),
        ),
        (
            b"a FETCH 1 (MODSEQ SAVEDATE EMAILID THREADID PREVIEW PREVIEW (LAZY))",
            fetch(
                set(&[(1, 1)]),
                vec![
                    F::ModSeq,
                    F::SaveDate,
                    F::EmailId,
                    F::ThreadId,
                    F::Preview { lazy: false },
                    F::Preview { lazy: true },
                ],
            ),
        ),
        (
            b"a FETCH 1 PREVIEW (CHANGEDSINCE 7)",
            Command::Fetch {
                uid: false,
                set: set(&[(1, 1)]),
                attrs: vec![F::Preview { lazy: false }],
                changed_since: Some(7),
                vanished: false,
                partial: None,
            },
        ),
        (
            b"a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)",
            Command::Fetch {
                uid: true,
                set: set(&[(300, 500)]),
                attrs: vec![F::Flags],
                changed_since: Some(12345),
                vanished: true,
                partial: None,
            },
        ),
        // STORE.
        (
            b"a STORE 2:4 +FLAGS.SILENT (\\Deleted $Junk)",
            Command::Store {
                uid: false,
                set: set(&[(2, 4)]),
                mode: StoreMode::Add,
                silent: true,
                flags: vec![s("\\Deleted"), s("$Junk")],
                unchanged_since: None,
            },
        ),
        (
            b"a UID STORE 1 (UNCHANGEDSINCE 0) -flags \\Seen \\Flagged",
            Command::Store {
                uid: true,
                set: set(&[(1, 1)]),
                mode: StoreMode::Remove,
                silent: false,
                flags: vec![s("\\Seen"), s("\\Flagged")],
                unchanged_since: Some(0),
            },
        ),
        (
            b"a STORE 1 FLAGS.SILENT \\Answered",
            Command::Store {
                uid: false,
                set: set(&[(1, 1)]),
                mode: StoreMode::Replace,
                silent: true,
                flags: vec![s("\\Answered")],
                unchanged_since: None,
            },
        ),
        (
            b"a STORE $ FLAGS ()",
            Command::Store {
                uid: false,
                set: SequenceSet::Saved,
                mode: StoreMode::Replace,
                silent: false,
                flags: vec![],
                unchanged_since: None,
            },
        ),
        // COPY, MOVE, UID EXPUNGE.
        (
            b"a COPY 1:3 inbox",
            Command::Copy {
                uid: false,
                set: set(&[(1, 3)]),
                mailbox: s("INBOX"),
            },
        ),
        (
            b"a UID MOVE 42 \"Junk\"",
            Command::Move {
                uid: true,
                set: set(&[(42, 42)]),
                mailbox: s("Junk"),
            },
        ),
        (
            b"a MOVE 1 x",
            Command::Move {
                uid: false,
                set: set(&[(1, 1)]),
                mailbox: s("x"),
            },
        ),
        (b"a UID EXPUNGE 3000:3002", Command::UidExpunge(set(&[(3000, 3002)]))),
        // SEARCH.
        (b"a SEARCH ALL", search(K::All)),
        (
            b"a SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
            search(K::And(vec![
                K::Flagged,
                K::Since(8797),
                K::Not(Box::new(K::From(s("Smith")))),
            ])),
        ),
        (
            b"a UID SEARCH RETURN (MIN MAX ALL COUNT SAVE) CHARSET UTF-8 OR (SEEN 1:5) $ UID 3,*",
            Command::Search {
                uid: true,
                charset: Some(s("UTF-8")),
                returns: Some(vec![
                    SearchReturn::Min,
                    SearchReturn::Max,
                    SearchReturn::All,
                    SearchReturn::Count,
                    SearchReturn::Save,
                ]),
                key: K::And(vec![
                    K::Or(
                        Box::new(K::And(vec![K::Seen, K::Seq(set(&[(1, 5)]))])),
                        Box::new(K::Seq(SequenceSet::Saved)),
                    ),
                    K::Uid(set(&[(3, 3), (0, 0)])),
                ]),
            },
        ),
        (
            b"a SEARCH RETURN () CHARSET \"US-ASCII\" TEXT {3}\r\nabc",
            Command::Search {
                uid: false,
                charset: Some(s("US-ASCII")),
                returns: Some(vec![SearchReturn::All]),
                key: K::Text(s("abc")),
            },
        ),
        (
            b"a SEARCH ANSWERED DELETED DRAFT RECENT NEW OLD UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNSEEN",
            search(K::And(vec![
                K::Answered,
                K::Deleted,
                K::Draft,
                K::Recent,
                K::New,
                K::Old,
                K::Unanswered,
                K::Undeleted,
                K::Undraft,
                K::Unflagged,
                K::Unseen,
            ])),
        ),
        (
            b"a SEARCH KEYWORD $Forwarded UNKEYWORD x BEFORE \"1-Jan-2000\" ON 29-Feb-2000 SENTBEFORE 1-jan-1970 SENTON 01-Mar-1999 SENTSINCE 31-Dec-1969",
            search(K::And(vec![
                K::Keyword(s("$Forwarded")),
                K::Unkeyword(s("x")),
                K::Before(days("1-Jan-2000")),
                K::On(days("29-Feb-2000")),
                K::SentBefore(0),
                K::SentOn(days("1-Mar-1999")),
                K::SentSince(-1),
            ])),
        ),
        (
            b"a SEARCH LARGER 10 SMALLER 5000000000 HEADER Message-ID \"<x@y>\" BCC a CC b TO c SUBJECT d BODY e",
            search(K::And(vec![
                K::Larger(10),
                K::Smaller(5_000_000_000),
                K::Header(s("Message-ID"), s("<x@y>")),
                K::Bcc(s("a")),
                K::Cc(s("b")),
                K::To(s("c")),
                K::Subject(s("d")),
                K::Body(s("e")),
            ])),
        ),
        (
            b"a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338 OLDER 3600 YOUNGER 60 MODSEQ 0",
            search(K::And(vec![
                K::ModSeq(620_162_338),
                K::Older(3600),
                K::Younger(60),
                K::ModSeq(0),
            ])),
        ),
        (
            b"a SEARCH NOT (OR NOT SEEN (FLAGGED) DELETED)",
            search(K::Not(Box::new(K::And(vec![
                K::Or(
                    Box::new(K::Not(Box::new(K::Seen))),
                    Box::new(K::And(vec![K::Flagged])),
                ),
                K::Deleted,
            ])))),
        ),
        // SORT and THREAD (RFC 5256 §3, RFC 5957 §3).
        (
            b"a SORT (REVERSE DATE SUBJECT) UTF-8 ALL",
            Command::Sort {
                uid: false,
                returns: None,
                criteria: vec![criterion(true, SortKey::Date), criterion(false, SortKey::Subject)],
                charset: s("UTF-8"),
                key: K::All,
            },
        ),
        (
            b"a UID SORT (ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM DISPLAYTO) \"US-ASCII\" UNSEEN SINCE 1-Feb-1994",
            Command::Sort {
                uid: true,
                returns: None,
                criteria: [
                    SortKey::Arrival,
                    SortKey::Cc,
                    SortKey::Date,
                    SortKey::From,
                    SortKey::Size,
                    SortKey::Subject,
                    SortKey::To,
                    SortKey::DisplayFrom,
                    SortKey::DisplayTo,
                ]
                .into_iter()
                .map(|key| criterion(false, key))
                .collect(),
                charset: s("US-ASCII"),
                key: K::And(vec![K::Unseen, K::Since(8797)]),
            },
        ),
        (
            b"a sort (reverse displayto Reverse Size) utf-8 OR SEEN (FLAGGED 1:5)",
            Command::Sort {
                uid: false,
                returns: None,
                criteria: vec![
                    criterion(true, SortKey::DisplayTo),
                    criterion(true, SortKey::Size),
                ],
                charset: s("utf-8"),
                key: K::Or(
                    Box::new(K::Seen),
                    Box::new(K::And(vec![K::Flagged, K::Seq(set(&[(1, 5)]))])),
                ),
            },
        ),
        (
            b"a THREAD REFERENCES UTF-8 ALL",
            Command::Thread {
                uid: false,
                algorithm: ThreadAlgorithm::References,
                charset: s("UTF-8"),
                key: K::All,
            },
        ),
        (
            b"a UID THREAD orderedsubject US-ASCII SUBJECT {3}\r\nabc UID 1:*",
            Command::Thread {
                uid: true,
                algorithm: ThreadAlgorithm::OrderedSubject,
                charset: s("US-ASCII"),
                key: K::And(vec![K::Subject(s("abc")), K::Uid(set(&[(1, 0)]))]),
            },
        ),
        // Quota, compression.
        (b"a GETQUOTA \"\"", Command::GetQuota { root: s("") }),
        (b"a GETQUOTAROOT inbox", Command::GetQuotaRoot { mailbox: s("INBOX") }),
        (
            b"a COMPRESS deflate",
            Command::Compress {
                mechanism: s("DEFLATE"),
            },
        ),
    ]
}

#[test]
fn valid_commands() {
    for (raw, expected) in valid() {
        let shown = String::from_utf8_lossy(raw);
        match parse_command(raw) {
            Ok((tag, command)) => {
                assert!(!tag.is_empty(), "{shown}");
                assert_eq!(command, expected, "{shown}");
            }
            Err(e) => panic!("{shown}: {e:?}"),
        }
    }
}
