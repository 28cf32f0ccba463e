//! THREAD tests: the RFC 5256 §4 response examples, the REFERENCES algorithm rebuilding the
//! RFC's example thread, a mailing-list sample through both algorithms, and hostile input
//! (loops, duplicates, missing IDs, chains and nesting far deeper than any stack).

use super::*;
use crate::mime::Structure;
use crate::store::records::MessageRecord;

fn rendered(threads: &[Thread]) -> String {
    let mut out = Vec::new();
    render_threads(&mut out, threads);
    String::from_utf8(out).expect("the response is ASCII")
}

/// A thread from (number, children) pairs in pre-order; 0 stands for a dummy.
fn thread(nodes: &[(u32, u32)]) -> Thread {
    Thread {
        nodes: nodes
            .iter()
            .map(|&(n, children)| ThreadNode {
                number: (n != 0).then_some(n),
                children,
            })
            .collect(),
    }
}

#[test]
fn responses() {
    let rfc_example = vec![
        thread(&[(2, 0)]),
        thread(&[(3, 1), (6, 2), (4, 1), (23, 0), (44, 1), (7, 1), (96, 0)]),
    ];
    let cases: Vec<(Vec<Thread>, &str)> = vec![
        (vec![], "* THREAD\r\n"),
        // RFC 5256 §4.
        (rfc_example, "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"),
        (vec![thread(&[(0, 2), (3, 0), (5, 0)])], "* THREAD ((3)(5))\r\n"),
        (vec![thread(&[(1, 1), (2, 0)])], "* THREAD (1 2)\r\n"),
        (
            vec![thread(&[(1, 2), (2, 2), (3, 0), (4, 0), (5, 0)])],
            "* THREAD (1 (2 (3)(4))(5))\r\n",
        ),
        (
            vec![thread(&[(0, 2), (1, 2), (2, 0), (3, 0), (4, 1), (5, 0)])],
            "* THREAD ((1 (2)(3))(4 5))\r\n",
        ),
        // A dummy below the top (pruning leaves none) is transparent.
        (
            vec![thread(&[(1, 1), (0, 2), (3, 0), (5, 0)])],
            "* THREAD (1 (3)(5))\r\n",
        ),
        (vec![thread(&[]), thread(&[(9, 0)])], "* THREAD (9)\r\n"),
    ];
    for (threads, want) in cases {
        assert_eq!(rendered(&threads), want);
    }
}

/// Messages delivered with their header; the tests' "mailbox".
struct Mailbox {
    messages: Vec<(u32, MessageRecord, Option<Structure>)>,
}

/// A header: Message-ID (if any), Subject, extra fields, and a Date `minute` minutes into
/// 1 April 2025 UTC (no Date at all when `minute` is negative).
fn header(id: Option<&str>, subject: &str, extra: &str, minute: i32) -> String {
    let mut h = format!("Subject: {subject}\r\n");
    if let Some(id) = id {
        h.push_str(&format!("Message-ID: <{id}>\r\n"));
    }
    if minute >= 0 {
        h.push_str(&format!(
            "Date: Tue, 1 Apr 2025 {:02}:{:02}:00 +0000\r\n",
            minute / 60,
            minute % 60
        ));
    }
    h.push_str(extra);
    h
}

impl Mailbox {
    fn new(rows: &[(u32, String)]) -> Self {
        let messages = rows
            .iter()
            .map(|(seq, header)| {
                let message = format!("{header}\r\nbody\r\n");
                let structure = crate::mime::analyze(message.as_bytes()).expect("fixtures are valid");
                let record = MessageRecord {
                    flags: 0,
                    internal_date: i64::from(*seq),
                    save_date: 0,
                    size: 10,
                    modseq: 1,
                    body_id: u64::from(*seq),
                    keywords: Vec::new(),
                };
                (*seq, record, Some(structure))
            })
            .collect();
        Mailbox { messages }
    }

    /// Candidates in reverse order: the algorithms must not depend on it. UIDs are seq × 100.
    fn candidates(&self) -> Vec<SortCandidate<'_>> {
        self.messages
            .iter()
            .rev()
            .map(|(seq, record, structure)| SortCandidate {
                seq: *seq,
                uid: seq * 100,
                record,
                structure: structure.as_ref(),
            })
            .collect()
    }

    fn thread(&self, algorithm: ThreadAlgorithm, uid: bool) -> String {
        rendered(&thread_messages(algorithm, uid, &self.candidates()))
    }
}

/// REFERENCES rebuilds the RFC 5256 §4 example from the messages' References.
#[test]
fn references_rfc_example() {
    let refs = |ids: &[&str]| {
        let list: Vec<String> = ids.iter().map(|id| format!("<{id}>")).collect();
        format!("References: {}\r\n", list.join(" "))
    };
    let mailbox = Mailbox::new(&[
        (2, header(Some("m2@x"), "Lunch?", "", 1)),
        (3, header(Some("m3@x"), "Release", "", 2)),
        (4, header(Some("m4@x"), "Re: Release", &refs(&["m3@x", "m6@x"]), 4)),
        (6, header(Some("m6@x"), "Re: Release", &refs(&["m3@x"]), 3)),
        (
            7,
            header(Some("m7@x"), "Re: Release", &refs(&["m3@x", "m6@x", "m44@x"]), 7),
        ),
        (
            23,
            header(Some("m23@x"), "Re: Release", &refs(&["m3@x", "m6@x", "m4@x"]), 5),
        ),
        (44, header(Some("m44@x"), "Re: Release", &refs(&["m3@x", "m6@x"]), 6)),
        (
            96,
            header(
                Some("m96@x"),
                "Re: Release",
                &refs(&["m3@x", "m6@x", "m44@x", "m7@x"]),
                8,
            ),
        ),
    ]);
    assert_eq!(
        mailbox.thread(ThreadAlgorithm::References, false),
        "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"
    );
    assert_eq!(
        mailbox.thread(ThreadAlgorithm::OrderedSubject, false),
        "* THREAD (2)(3 (6)(4)(23)(44)(7)(96))\r\n"
    );
}

/// A list archive as it arrives: replies before their parents, a parent that never arrived, a
/// reply whose MUA dropped the references, a message without Message-ID, the list's second copy
/// of a post (same Message-ID), a reply through a message that is not in the mailbox, and two
/// messages that claim each other as parent.
fn mailing_list() -> Mailbox {
    let refs = |ids: &str| format!("References: {ids}\r\n");
    Mailbox::new(&[
        (
            1,
            header(Some("r1@x"), "Re: [rust-dev] async closures", &refs("<a1@x>"), 20),
        ),
        (2, header(Some("a1@x"), "[rust-dev] async closures", "", 10)),
        (
            3,
            header(
                Some("r2@x"),
                "Re: [rust-dev] async closures",
                &refs("<a1@x> <r1@x>"),
                30,
            ),
        ),
        (4, header(Some("b1@x"), "Build failures on nightly", "", 5)),
        (5, header(Some("p1@x"), "Re: Release planning", &refs("<lost@x>"), 40)),
        (
            6,
            header(Some("p2@x"), "RE: Release planning", "In-Reply-To: <lost@x>\r\n", 50),
        ),
        (7, header(Some("b2@x"), "Re: Build failures on nightly", "", 60)),
        (8, header(None, "Weekly digest", "", 2)),
        (9, header(Some("a1@x"), "[rust-dev] async closures", "", 70)),
        (
            10,
            header(
                Some("r3@x"),
                "Re: [rust-dev] async closures",
                &refs("<a1@x> <gone@x>"),
                25,
            ),
        ),
        (11, header(Some("x1@x"), "Loop one", &refs("<y1@x>"), 80)),
        (12, header(Some("y1@x"), "Re: Loop one", &refs("<x1@x>"), 90)),
    ])
}

#[test]
fn mailing_list_references() {
    let mailbox = mailing_list();
    // 8 alone; 7 joins 4 by subject (a reply); the copy 9 and the original 2 get a dummy
    // parent, 2 keeping 1 (with 3 below) and 10 (through the absent gone@x); 5 and 6 share the
    // dummy of the lost parent; 12 parents 11, as the second link would close a loop.
    assert_eq!(
        mailbox.thread(ThreadAlgorithm::References, false),
        "* THREAD (8)(4 7)((2 (1 3)(10))(9))((5)(6))(12 11)\r\n"
    );
    assert_eq!(
        mailbox.thread(ThreadAlgorithm::References, true),
        "* THREAD (800)(400 700)((200 (100 300)(1000))(900))((500)(600))(1200 1100)\r\n"
    );
}

#[test]
fn mailing_list_ordered_subject() {
    let mailbox = mailing_list();
    assert_eq!(
        mailbox.thread(ThreadAlgorithm::OrderedSubject, false),
        "* THREAD (8)(4 7)(2 (1)(10)(3)(9))(5 6)(11 12)\r\n"
    );
}

/// The pieces of RFC 5256 §3 step 5, each alone.
#[test]
fn subject_merging() {
    /// Sequence number, Subject, other fields, minute of the Date.
    type Row<'a> = (u32, &'a str, &'a str, i32);
    let cases: &[(&[Row<'_>], &str)] = &[
        // A reply joins the original, whatever their order.
        (&[(1, "Re: Hi", "", 1), (2, "Hi", "", 2)], "* THREAD (2 1)\r\n"),
        // Two originals: a dummy holds both.
        (&[(1, "Hi", "", 1), (2, "hi", "", 2)], "* THREAD ((1)(2))\r\n"),
        // Two replies: a dummy too (neither is the original).
        (&[(1, "Re: Hi", "", 1), (2, "Fwd: Hi", "", 2)], "* THREAD ((1)(2))\r\n"),
        // An existing dummy thread (the lost parent) takes the others in.
        (
            &[
                (1, "Re: Hi", "References: <lost@x>\r\n", 1),
                (2, "Re: Hi", "References: <lost@x>\r\n", 2),
                (3, "Hi", "", 3),
            ],
            "* THREAD ((1)(2)(3))\r\n",
        ),
        // Two dummy threads: their children become siblings.
        (
            &[
                (1, "Re: Hi", "References: <lost@x>\r\n", 1),
                (2, "Re: Hi", "References: <lost@x>\r\n", 2),
                (3, "Re: Hi", "References: <other@x>\r\n", 3),
                (4, "Re: Hi", "References: <other@x>\r\n", 4),
            ],
            "* THREAD ((1)(2)(3)(4))\r\n",
        ),
        // Empty subjects are never merged.
        (&[(1, "", "", 1), (2, "Re:", "", 2)], "* THREAD (1)(2)\r\n"),
    ];
    for (rows, want) in cases {
        let rows: Vec<(u32, String)> = rows
            .iter()
            .map(|&(seq, subject, extra, minute)| (seq, header(Some(&format!("{seq}@x")), subject, extra, minute)))
            .collect();
        let mailbox = Mailbox::new(&rows);
        assert_eq!(&mailbox.thread(ThreadAlgorithm::References, false), want, "{rows:?}");
    }
}

/// Sequence number, Message-ID, other fields, minute of the Date (none when negative).
type Row<'a> = (u32, Option<&'a str>, &'a str, i32);

/// Threads each case's messages with REFERENCES, every message under a subject of its own (so
/// step 5 merges nothing), and checks the response.
fn assert_references(cases: &[(&[Row<'_>], &str)]) {
    for (rows, want) in cases {
        let rows: Vec<(u32, String)> = rows
            .iter()
            .map(|&(seq, id, extra, minute)| (seq, header(id, &format!("Subject {seq}"), extra, minute)))
            .collect();
        let mailbox = Mailbox::new(&rows);
        assert_eq!(&mailbox.thread(ThreadAlgorithm::References, false), want, "{rows:?}");
    }
}

/// RFC 5256 §3 step 1B: the last reference is the parent, and a parent that someone else's
/// References guessed is broken first, even when the new link is then refused as a loop.
#[test]
fn step_one_parent_links() {
    assert_references(&[
        // Regression (compliance suite, `(1 3 2)` instead of `(3 2)(1)`): 2's References put 3
        // under 1; 3's own References name 2, its child, so that link would close a loop. The
        // guessed link to 1 is broken anyway: 3 is a root, placed by its date before 1.
        (
            &[
                (1, Some("a@b"), "", 17 * 60 + 6),
                (2, Some("b@b"), "References: <a@b> <c@b>\r\n", 15 * 60 + 6),
                (3, Some("c@b"), "References: <b@b>\r\n", 16 * 60 + 6),
            ],
            "* THREAD (3 2)(1)\r\n",
        ),
        // The same with the message naming itself as its parent.
        (
            &[
                (1, Some("a@x"), "", 1),
                (2, Some("b@x"), "References: <a@x> <c@x>\r\n", 2),
                (3, Some("c@x"), "References: <c@x>\r\n", 3),
            ],
            "* THREAD (1)(3 2)\r\n",
        ),
        // No references of its own: a root, whatever others guessed.
        (
            &[
                (1, Some("a@x"), "", 1),
                (2, Some("b@x"), "References: <a@x> <c@x>\r\n", 2),
                (3, Some("c@x"), "", 3),
            ],
            "* THREAD (1)(3 2)\r\n",
        ),
        // The guess stands when the message's own last reference agrees with it.
        (
            &[
                (1, Some("a@x"), "", 1),
                (2, Some("b@x"), "References: <a@x> <c@x>\r\n", 2),
                (3, Some("c@x"), "In-Reply-To: <a@x>\r\n", 3),
            ],
            "* THREAD (1 3 2)\r\n",
        ),
        // References holding no valid msg-id give way to In-Reply-To.
        (
            &[
                (1, Some("a@x"), "", 1),
                (2, Some("b@x"), "References: see below\r\nIn-Reply-To: <a@x>\r\n", 2),
            ],
            "* THREAD (1 2)\r\n",
        ),
        // An invalid Message-ID is no identity: nothing can refer to it, not even by the same
        // text, and the two messages carrying it are not one.
        (
            &[
                (1, None, "Message-ID: not-an-id\r\n", 1),
                (2, None, "Message-ID: not-an-id\r\n", 2),
                (3, Some("c@x"), "In-Reply-To: not-an-id\r\n", 3),
            ],
            "* THREAD (1)(2)(3)\r\n",
        ),
    ]);
}

/// RFC 5256 §3 step 3: dummies go; their children take their place, except that several
/// children of a dummy at the top stay together under it.
#[test]
fn dummy_pruning() {
    assert_references(&[
        // One child of an absent parent is promoted to the top.
        (&[(1, Some("a@x"), "References: <lost@x>\r\n", 1)], "* THREAD (1)\r\n"),
        // A chain of absent ancestors above one message: all of them go.
        (
            &[(1, Some("a@x"), "References: <l1@x> <l2@x> <l3@x>\r\n", 1)],
            "* THREAD (1)\r\n",
        ),
        // Two children of an absent parent are not promoted to the top.
        (
            &[
                (1, Some("a@x"), "References: <lost@x>\r\n", 1),
                (2, Some("b@x"), "References: <lost@x>\r\n", 2),
            ],
            "* THREAD ((1)(2))\r\n",
        ),
        // ... and stay under one dummy when there are absent ancestors above the absent parent.
        (
            &[
                (1, Some("a@x"), "References: <l1@x> <l2@x>\r\n", 2),
                (2, Some("b@x"), "References: <l1@x> <l2@x>\r\n", 1),
            ],
            "* THREAD ((2)(1))\r\n",
        ),
        // Below a message, a dummy's children are promoted, however many.
        (
            &[
                (1, Some("a@x"), "", 1),
                (2, Some("b@x"), "References: <a@x> <lost@x>\r\n", 3),
                (3, Some("c@x"), "References: <a@x> <lost@x>\r\n", 2),
            ],
            "* THREAD (1 (3)(2))\r\n",
        ),
        // A promoted child keeps its own subtree.
        (
            &[
                (1, Some("a@x"), "References: <lost@x>\r\n", 1),
                (2, Some("b@x"), "References: <lost@x> <a@x>\r\n", 2),
            ],
            "* THREAD (1 2)\r\n",
        ),
    ]);
}

/// RFC 5256 §3 steps 4 and 6 with §2.2 sent dates: threads in the order of their top message's
/// date (a dummy's earliest child's), siblings by date, ties by sequence number.
#[test]
fn thread_order() {
    assert_references(&[
        // The top message's date places a thread, not an earlier reply in it.
        (
            &[
                (1, Some("a@x"), "", 10),
                (2, Some("b@x"), "References: <a@x>\r\n", 1),
                (3, Some("c@x"), "", 5),
            ],
            "* THREAD (3)(1 2)\r\n",
        ),
        // A dummy thread by its earliest child, which also comes first under it.
        (
            &[
                (1, Some("a@x"), "References: <lost@x>\r\n", 30),
                (2, Some("b@x"), "References: <lost@x>\r\n", 20),
                (3, Some("c@x"), "", 25),
            ],
            "* THREAD ((2)(1))(3)\r\n",
        ),
        // Siblings by date, then sequence number.
        (
            &[
                (1, Some("a@x"), "", 0),
                (2, Some("b@x"), "References: <a@x>\r\n", 9),
                (3, Some("c@x"), "References: <a@x>\r\n", 5),
                (4, Some("d@x"), "References: <a@x>\r\n", 5),
            ],
            "* THREAD (1 (3)(4)(2))\r\n",
        ),
        // Dates compare in UTC: 11:00 +0200 is before 10:00 +0000.
        (
            &[
                (1, Some("a@x"), "Date: Tue, 1 Apr 2025 10:00:00 +0000\r\n", -1),
                (2, Some("b@x"), "Date: Tue, 1 Apr 2025 11:00:00 +0200\r\n", -1),
            ],
            "* THREAD (2)(1)\r\n",
        ),
        // A Date that is not a date counts as none: the INTERNALDATE stands in.
        (
            &[(1, Some("a@x"), "", 5), (2, Some("b@x"), "Date: yesterday\r\n", -1)],
            "* THREAD (2)(1)\r\n",
        ),
    ]);
}

/// RFC 5256 §2.2 dates, and what step 1 does with odd References.
#[test]
fn dates_and_references() {
    let cases: &[(&[Row<'_>], &str)] = &[
        // No Date: INTERNALDATE (here the sequence number, seconds after the epoch) is earlier.
        (
            &[(1, Some("a@x"), "", 5), (2, Some("b@x"), "", -1)],
            "* THREAD (2)(1)\r\n",
        ),
        // Equal dates: sequence order.
        (
            &[(2, Some("a@x"), "", 5), (1, Some("b@x"), "", 5)],
            "* THREAD (1)(2)\r\n",
        ),
        // A message naming itself as parent, and one naming an ancestor twice.
        (
            &[
                (1, Some("a@x"), "References: <p@x> <a@x>\r\n", 1),
                (2, Some("b@x"), "References: <a@x> <q@x> <a@x>\r\n", 2),
            ],
            "* THREAD (1 2)\r\n",
        ),
        // References win over In-Reply-To.
        (
            &[
                (1, Some("a@x"), "", 1),
                (2, Some("b@x"), "", 2),
                (3, Some("c@x"), "In-Reply-To: <a@x>\r\nReferences: <b@x>\r\n", 3),
            ],
            "* THREAD (1)(2 3)\r\n",
        ),
        // A reply's parent is replaced by the one its own References give (step 1B).
        (
            &[
                (1, Some("a@x"), "", 1),
                (2, Some("b@x"), "", 2),
                (3, Some("c@x"), "References: <a@x> <d@x>\r\n", 3),
                (4, Some("d@x"), "References: <b@x>\r\n", 4),
            ],
            "* THREAD (1)(2 4 3)\r\n",
        ),
        // Without Message-IDs nothing can refer to them.
        (&[(1, None, "", 1), (2, None, "", 2)], "* THREAD (1)(2)\r\n"),
    ];
    assert_references(cases);
}

/// A message whose structure cannot be read threads alone, by INTERNALDATE, under the empty
/// subject.
#[test]
fn unreadable_structures() {
    let mut mailbox = Mailbox::new(&[
        (1, header(Some("a@x"), "Hello", "", -1)),
        (2, header(Some("b@x"), "Re: Hello", "References: <a@x>\r\n", -1)),
    ]);
    mailbox.messages[0].2 = None;
    for algorithm in [ThreadAlgorithm::References, ThreadAlgorithm::OrderedSubject] {
        assert_eq!(mailbox.thread(algorithm, false), "* THREAD (1)(2)\r\n", "{algorithm:?}");
    }
    assert_eq!(thread_messages(ThreadAlgorithm::References, true, &[]), vec![]);
}

/// A message for the hostile tests, built directly (parsing thousands of headers would only
/// slow them down).
fn message(seq: u32, id: Option<String>, references: Vec<String>, date: i64) -> Message {
    Message {
        seq,
        number: seq,
        date,
        subject: String::new(),
        is_reply_or_forward: false,
        message_id: id,
        references,
    }
}

fn balanced(response: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in response.bytes() {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.checked_sub(1).expect("no unmatched ')'"),
            _ => continue,
        }
        deepest = deepest.max(depth);
    }
    assert_eq!(depth, 0, "every '(' is closed");
    deepest
}

#[test]
fn hostile_references() {
    let id = |n: usize| format!("m{n}@x");
    // One References chain of 100 000 absent messages: 100 000 dummies, pruned to nothing.
    let chain: Vec<String> = (0..100_000).map(id).collect();
    let threads = references(vec![
        message(1, Some(s("one@x")), chain.clone(), 1),
        message(2, Some(s("two@x")), vec![chain[50_000].clone()], 2),
    ]);
    assert_eq!(rendered(&threads), "* THREAD ((1)(2))\r\n");

    // 50 000 messages, each replying to the one after it in the mailbox (every parent arrives
    // after its reply): one thread 50 000 deep, written as one flat list.
    let n = 50_000;
    let messages = (1..=n)
        .map(|k| message(k as u32, Some(id(k)), vec![id(k + 1)], (n - k) as i64))
        .collect();
    let response = rendered(&references(messages));
    let flat: Vec<String> = (1..=n).rev().map(|k| k.to_string()).collect();
    assert_eq!(response, format!("* THREAD ({})\r\n", flat.join(" ")));

    // A comb: each message has a leaf reply and a reply that goes on, 20 000 levels of nested
    // lists.
    let levels = 20_000u32;
    let mut messages = Vec::new();
    for k in 0..levels {
        let parent = if k > 0 { vec![format!("c{}", k - 1)] } else { Vec::new() };
        messages.push(message(2 * k + 1, Some(format!("c{k}")), parent, i64::from(2 * k)));
        messages.push(message(2 * k + 2, None, vec![format!("c{k}")], i64::from(2 * k + 1)));
    }
    let threads = references(messages);
    let response = rendered(&threads);
    assert!(
        response.starts_with("* THREAD (1 (2)(3 (4)(5 (6)(7 "),
        "{}",
        &response[..40]
    );
    assert_eq!(balanced(&response), levels as usize);
    assert_eq!(threads.len(), 1);
    assert_eq!(threads[0].nodes.len(), 2 * levels as usize);

    // Loops and duplicates everywhere: every message claims every other as an ancestor, and
    // half of them share one Message-ID.
    let messages = (0..300)
        .map(|k| {
            let own = if k % 2 == 0 { s("same@x") } else { id(k) };
            let references = (0..300).rev().map(id).chain([s("same@x")]).collect();
            message(k as u32 + 1, Some(own), references, 0)
        })
        .collect();
    let threads = references(messages);
    let numbers: usize = threads
        .iter()
        .map(|t| t.nodes.iter().filter(|n| n.number.is_some()).count())
        .sum();
    assert_eq!(numbers, 300, "every message appears once");
    balanced(&rendered(&threads));
}

fn s(text: &str) -> String {
    text.to_owned()
}

#[test]
fn ordered_subject_runs() {
    let with_subject = |seq: u32, subject: &str, date: i64| Message {
        subject: subject.to_owned(),
        ..message(seq, None, Vec::new(), date)
    };
    let threads = ordered_subject(vec![
        with_subject(1, "B", 30),
        with_subject(2, "A", 20),
        with_subject(3, "B", 10),
        with_subject(4, "", 40),
        with_subject(5, "A", 20),
        with_subject(6, "A", 5),
    ]);
    // A: 6 (5), 2 (20), 5 (20, after 2 by sequence); B: 3, 1; "": 4.
    assert_eq!(rendered(&threads), "* THREAD (6 (2)(5))(3 1)(4)\r\n");
}
