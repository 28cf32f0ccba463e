//! Scripted sessions against the view: server replies as text, parsed as the scenario parses
//! them. What other sessions may legitimately do to a shared mailbox is accepted; each
//! injected server error is caught as the violation it is.

use super::*;
use crate::response::{parse_untagged, response_code};

/// Feeds one command: its untagged responses, then the tagged reply (`OK [code] text`,
/// `NO text`).
fn exchange(view: &mut SessionView, command: Command, lines: &[&str], tagged: &str) -> Checked {
    view.begin(command);
    for line in lines {
        let response = parse_untagged(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        view.apply(&response)?;
    }
    let (status, text) = tagged.split_once(' ').unwrap_or((tagged, ""));
    let code = response_code(text.as_bytes()).unwrap();
    view.end(status == "OK", code.as_ref())
}

fn select(mailbox: &str) -> Command {
    Command::Select {
        mailbox: mailbox.into(),
        read_only: false,
    }
}

fn new_view(session: u64, claims: &Arc<RecentClaims>) -> SessionView {
    SessionView::new("bob", session, claims.clone())
}

/// Session 1 with INBOX selected: UIDs 3, 5, 9 (9 \Recent here), UIDNEXT 10, HIGHESTMODSEQ 20,
/// keyword $Label0 announced.
fn inbox_with(claims: &Arc<RecentClaims>) -> SessionView {
    let mut view = new_view(1, claims);
    exchange(
        &mut view,
        select("INBOX"),
        &[
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label0)",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label0 \\*)] ok",
            "* 3 EXISTS",
            "* 1 RECENT",
            "* OK [UIDVALIDITY 1700000000] UIDs valid",
            "* OK [UIDNEXT 10] Predicted next UID",
            "* OK [HIGHESTMODSEQ 20] Highest",
        ],
        "OK [READ-WRITE] SELECT completed",
    )
    .unwrap();
    exchange(
        &mut view,
        Command::BySequence,
        &[
            "* 1 FETCH (UID 3 FLAGS () MODSEQ (4))",
            "* 2 FETCH (UID 5 FLAGS (\\Seen $Label0) MODSEQ (11))",
            "* 3 FETCH (FLAGS (\\Recent) UID 9 MODSEQ (20))",
        ],
        "OK FETCH completed",
    )
    .unwrap();
    view
}

fn inbox() -> SessionView {
    inbox_with(&Arc::new(RecentClaims::default()))
}

fn uids(view: &SessionView) -> Vec<Option<u32>> {
    (1..=view.len()).map(|seq| view.uid_at(seq)).collect()
}

#[test]
fn what_other_sessions_may_do_is_accepted() {
    let mut view = inbox();
    assert_eq!(view.selected(), Some("INBOX"));
    assert_eq!(uids(&view), [Some(3), Some(5), Some(9)]);

    // Another session sets a new keyword: FLAGS first, then the FETCH; and appends two.
    exchange(
        &mut view,
        Command::Other,
        &[
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label0 $Label7)",
            "* 1 FETCH (FLAGS ($label7) UID 3 MODSEQ (21))",
            "* 5 EXISTS",
            "* 2 RECENT",
        ],
        "OK NOOP completed",
    )
    .unwrap();
    assert_eq!(view.unknown_uids(), Some((4, 5)));
    exchange(
        &mut view,
        Command::BySequence,
        &[
            "* 4 FETCH (UID 12 FLAGS (\\Recent) MODSEQ (22))",
            "* 5 FETCH (UID 13 FLAGS () MODSEQ (23))",
        ],
        "OK FETCH completed",
    )
    .unwrap();
    // Our STORE of a message another session expunged: NO, or OK with nothing; then the
    // expunge is reported during a UID command, which may carry it.
    exchange(
        &mut view,
        Command::Other,
        &[],
        "NO [EXPUNGEISSUED] Some messages were expunged",
    )
    .unwrap();
    exchange(
        &mut view,
        Command::Other,
        &["* 2 EXPUNGE", "* 3 FETCH (UID 12 FLAGS (\\Recent \\Seen) MODSEQ (24))"],
        "OK [HIGHESTMODSEQ 24] STORE completed",
    )
    .unwrap();
    assert_eq!(uids(&view), [Some(3), Some(9), Some(12), Some(13)]);
    // The same MODSEQ with the same flags (a FETCH, not a change) is fine.
    exchange(
        &mut view,
        Command::Other,
        &["* 3 FETCH (UID 12 FLAGS (\\Seen \\Recent) MODSEQ (24))"],
        "OK UID FETCH completed",
    )
    .unwrap();

    // APPEND to and MOVE into Archive name UIDs there; STATUS must see UIDNEXT above them.
    let archive = || Command::Append {
        mailbox: "Archive".into(),
    };
    exchange(&mut view, archive(), &[], "OK [APPENDUID 77 40] APPEND completed").unwrap();
    exchange(
        &mut view,
        Command::Copy {
            mailbox: "Archive".into(),
        },
        &["* OK [COPYUID 77 13 41] Moved", "* 4 EXPUNGE"],
        "OK MOVE completed",
    )
    .unwrap();
    exchange(
        &mut view,
        Command::Other,
        &["* STATUS Archive (MESSAGES 2 UIDNEXT 42 UIDVALIDITY 77 HIGHESTMODSEQ 9)"],
        "OK STATUS completed",
    )
    .unwrap();
    assert_eq!(view.status_messages("Archive"), Some(2));

    // SELECT Archive: its messages lie below UIDNEXT; a later arrival above it.
    exchange(
        &mut view,
        select("Archive"),
        &[
            "* OK [CLOSED] previous mailbox closed",
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
            "* 2 EXISTS",
            "* 0 RECENT",
            "* OK [UIDVALIDITY 77] UIDs valid",
            "* OK [UIDNEXT 42] Predicted next UID",
        ],
        "OK [READ-WRITE] SELECT completed",
    )
    .unwrap();
    exchange(
        &mut view,
        Command::BySequence,
        &["* 1 FETCH (UID 40 FLAGS ())", "* 2 FETCH (UID 41 FLAGS ())"],
        "OK FETCH completed",
    )
    .unwrap();
    exchange(
        &mut view,
        Command::Other,
        &["* 3 EXISTS", "* 3 FETCH (FLAGS () UID 42)"],
        "OK NOOP completed",
    )
    .unwrap();
    // With QRESYNC, expunges come as VANISHED, and may name a UID not fetched yet.
    exchange(&mut view, Command::Other, &["* 5 EXISTS"], "OK NOOP completed").unwrap();
    exchange(
        &mut view,
        Command::Other,
        &["* VANISHED 41,43", "* VANISHED (EARLIER) 1:30"],
        "OK UID EXPUNGE completed",
    )
    .unwrap();
    assert_eq!(uids(&view), [Some(40), Some(42), None]);
    let checked = view.checked();
    assert_eq!(checked["responses"], 35);
    assert_eq!((checked["EXPUNGE"], checked["VANISHED"], checked["STATUS"]), (2, 1, 1));
    assert_eq!(
        (checked["FETCH with a keyword"], checked["FETCH with \\Recent"]),
        (2, 4)
    );
    assert_eq!(
        (checked["APPENDUID"], checked["COPYUID"], checked["HIGHESTMODSEQ"]),
        (1, 1, 2)
    );
}

#[test]
fn a_keyword_not_announced_in_flags_is_caught() {
    let mut view = inbox();
    let r = exchange(
        &mut view,
        Command::Other,
        &["* 2 FETCH (UID 5 FLAGS (\\Seen $Label0 $Label3))"],
        "OK STORE completed",
    );
    assert_eq!(
        r,
        Err(Violation::KeywordNotAnnounced {
            uid: Some(5),
            keyword: "$label3".into()
        })
    );
    assert_eq!(r.unwrap_err().kind(), "keyword not announced in FLAGS");
    // Announced after it was used is too late.
    let mut view = inbox();
    let r = exchange(
        &mut view,
        Command::Other,
        &[
            "* 2 FETCH (UID 5 FLAGS ($Label3))",
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label0 $Label3)",
        ],
        "OK STORE completed",
    );
    assert!(matches!(r, Err(Violation::KeywordNotAnnounced { .. })));
    // A FLAGS that drops a keyword leaves it unannounced again.
    let mut view = inbox();
    let r = exchange(
        &mut view,
        Command::Other,
        &["* FLAGS (\\Seen)", "* 2 FETCH (UID 5 FLAGS ($Label0))"],
        "OK NOOP completed",
    );
    assert!(matches!(r, Err(Violation::KeywordNotAnnounced { .. })));
    // A SELECT with no FLAGS announces nothing.
    let mut view = new_view(1, &Arc::new(RecentClaims::default()));
    exchange(
        &mut view,
        select("INBOX"),
        &["* 1 EXISTS", "* OK [UIDVALIDITY 1] x", "* OK [UIDNEXT 5] x"],
        "OK done",
    )
    .unwrap();
    let r = exchange(
        &mut view,
        Command::BySequence,
        &["* 1 FETCH (UID 4 FLAGS (work))"],
        "OK done",
    );
    assert!(matches!(r, Err(Violation::KeywordNotAnnounced { uid: Some(4), .. })));
}

#[test]
fn recent_in_two_sessions_is_caught() {
    let claims = Arc::new(RecentClaims::default());
    // Session 1 was shown UID 9 as \Recent (in `inbox_with`).
    let mut first = inbox_with(&claims);
    assert_eq!(claims.len(), 1);
    // Shown again to the same session: fine.
    exchange(
        &mut first,
        Command::Other,
        &["* 3 FETCH (UID 9 FLAGS (\\Recent) MODSEQ (20))"],
        "OK done",
    )
    .unwrap();
    // Session 2 on the same mailbox, shown the same message \Recent.
    let mut second = new_view(2, &claims);
    let select_lines = [
        "* FLAGS (\\Seen $Label0)",
        "* 3 EXISTS",
        "* 1 RECENT",
        "* OK [UIDVALIDITY 1700000000] x",
        "* OK [UIDNEXT 10] x",
    ];
    exchange(&mut second, select("INBOX"), &select_lines, "OK done").unwrap();
    let r = exchange(
        &mut second,
        Command::BySequence,
        &["* 3 FETCH (UID 9 FLAGS (\\Recent))"],
        "OK done",
    );
    assert_eq!(
        r,
        Err(Violation::RecentTwice {
            mailbox: "bob/INBOX".into(),
            uid: 9,
            session: 2,
            other: 1
        })
    );
    // Shown before its UID is known: claimed when it is learnt.
    let mut third = new_view(3, &claims);
    exchange(&mut third, select("INBOX"), &select_lines, "OK done").unwrap();
    exchange(&mut third, Command::Other, &["* 3 FETCH (FLAGS (\\Recent))"], "OK done").unwrap();
    let r = exchange(&mut third, Command::BySequence, &["* 3 FETCH (UID 9)"], "OK done");
    assert!(matches!(r, Err(Violation::RecentTwice { session: 3, .. })));
    // The same client on a new connection is another session.
    first.reconnected(4);
    exchange(&mut first, select("INBOX"), &select_lines, "OK done").unwrap();
    let r = exchange(
        &mut first,
        Command::BySequence,
        &["* 3 FETCH (UID 9 FLAGS (\\Recent))"],
        "OK done",
    );
    assert!(matches!(
        r,
        Err(Violation::RecentTwice {
            session: 4,
            other: 1,
            ..
        })
    ));
    // EXAMINE may show \Recent without taking it (RFC 3501 §2.3.2).
    let mut examine = new_view(5, &claims);
    let command = Command::Select {
        mailbox: "INBOX".into(),
        read_only: true,
    };
    exchange(&mut examine, command, &select_lines, "OK [READ-ONLY] done").unwrap();
    exchange(
        &mut examine,
        Command::BySequence,
        &["* 3 FETCH (UID 9 FLAGS (\\Recent))"],
        "OK done",
    )
    .unwrap();
}

#[test]
fn more_recent_than_counted_is_caught() {
    let mut view = inbox();
    // RECENT 1, and a second message shown \Recent.
    let r = exchange(
        &mut view,
        Command::Other,
        &["* 1 FETCH (UID 3 FLAGS (\\Recent))"],
        "OK done",
    );
    assert_eq!(
        r,
        Err(Violation::RecentCount {
            recent: 1,
            shown: 2,
            exists: 3
        })
    );
    assert_eq!(r.unwrap_err().kind(), "more \\Recent than RECENT");
    // At SELECT, RECENT above EXISTS.
    let mut view = new_view(1, &Arc::new(RecentClaims::default()));
    let r = exchange(
        &mut view,
        select("INBOX"),
        &[
            "* 2 EXISTS",
            "* 3 RECENT",
            "* OK [UIDVALIDITY 1] x",
            "* OK [UIDNEXT 5] x",
        ],
        "OK done",
    );
    assert_eq!(
        r,
        Err(Violation::RecentCount {
            recent: 3,
            shown: 0,
            exists: 2
        })
    );
}

#[test]
fn counts_that_do_not_add_up_are_caught() {
    // EXISTS below the known count, with no expunge.
    let r = exchange(&mut inbox(), Command::Other, &["* 2 EXISTS"], "OK done");
    assert_eq!(r, Err(Violation::ExistsShrank { known: 3, seen: 2 }));
    // After an expunge, the same EXISTS is right.
    exchange(&mut inbox(), Command::Other, &["* 3 EXPUNGE", "* 2 EXISTS"], "OK done").unwrap();
    // EXPUNGE outside 1..=count; the same EXPUNGE twice names what is now past the end.
    for line in ["* 0 EXPUNGE", "* 4 EXPUNGE"] {
        let r = exchange(&mut inbox(), Command::Other, &[line], "OK done");
        assert!(
            matches!(r, Err(Violation::ExpungeUnknownSeq { exists: 3, .. })),
            "{line}"
        );
    }
    let r = exchange(&mut inbox(), Command::Other, &["* 3 EXPUNGE", "* 3 EXPUNGE"], "OK done");
    assert_eq!(r, Err(Violation::ExpungeUnknownSeq { seq: 3, exists: 2 }));
    // EXPUNGE or VANISHED while answering FETCH/STORE/SEARCH by sequence number.
    for line in ["* 1 EXPUNGE", "* VANISHED 3"] {
        let r = exchange(&mut inbox(), Command::BySequence, &[line], "OK done");
        assert!(
            matches!(r, Err(Violation::ExpungeDuringSequenceCommand { .. })),
            "{line}: {r:?}"
        );
    }
    // VANISHED of a UID the session does not know of, nor has room for.
    let r = exchange(&mut inbox(), Command::Other, &["* VANISHED 4"], "OK done");
    assert_eq!(r, Err(Violation::VanishedUnknown { uid: 4 }));
    let r = exchange(
        &mut inbox(),
        Command::Other,
        &["* VANISHED 9", "* VANISHED 9"],
        "OK done",
    );
    assert_eq!(r, Err(Violation::VanishedUnknown { uid: 9 }), "the same UID twice");
    // FETCH of a sequence number past the count.
    let r = exchange(&mut inbox(), Command::BySequence, &["* 4 FETCH (FLAGS ())"], "OK done");
    assert_eq!(r, Err(Violation::FetchUnknownSeq { seq: 4, exists: 3 }));
    // After `* 1 EXPUNGE`, sequence number 1 is UID 5: a server that forgot is caught.
    let r = exchange(
        &mut inbox(),
        Command::Other,
        &["* 1 EXPUNGE", "* 1 FETCH (UID 3 FLAGS ())"],
        "OK done",
    );
    assert_eq!(
        r,
        Err(Violation::UidAtSeq {
            seq: 1,
            expected: 5,
            seen: 3
        })
    );
    // A new message's UID below the UIDs before it.
    let r = exchange(
        &mut inbox(),
        Command::Other,
        &["* 4 EXISTS", "* 4 FETCH (UID 8 FLAGS ())"],
        "OK done",
    );
    assert_eq!(
        r,
        Err(Violation::UidOrder {
            seq: 4,
            uid: 8,
            below: 9,
            above: None
        })
    );
}

#[test]
fn modseqs_that_go_back_are_caught() {
    // UID 5 was at MODSEQ 11.
    let r = exchange(
        &mut inbox(),
        Command::Other,
        &["* 2 FETCH (UID 5 FLAGS (\\Seen $Label0) MODSEQ (10))"],
        "OK done",
    );
    assert_eq!(
        r,
        Err(Violation::ModSeqBack {
            uid: 5,
            was: 11,
            seen: 10
        })
    );
    // Other flags at the same MODSEQ.
    let r = exchange(
        &mut inbox(),
        Command::Other,
        &["* 2 FETCH (UID 5 FLAGS (\\Seen) MODSEQ (11))"],
        "OK done",
    );
    assert_eq!(
        r,
        Err(Violation::FlagsWithoutModSeq {
            uid: 5,
            modseq: 11,
            before: Flags::from_names(["\\Seen", "$Label0"]),
            now: Flags::from_names(["\\Seen"])
        })
    );
    // Kept across a reselect of the same mailbox.
    let mut view = inbox();
    let lines = [
        "* FLAGS ($Label0)",
        "* 3 EXISTS",
        "* OK [UIDVALIDITY 1700000000] x",
        "* OK [UIDNEXT 10] x",
    ];
    exchange(&mut view, select("INBOX"), &lines, "OK done").unwrap();
    let r = exchange(
        &mut view,
        Command::BySequence,
        &["* 2 FETCH (UID 5 FLAGS () MODSEQ (9))"],
        "OK done",
    );
    assert!(matches!(r, Err(Violation::ModSeqBack { uid: 5, .. })));
    // What is kept is what the mailbox held when the session left it: UID 5, expunged in
    // the last selection, is forgotten; the others are not.
    let mut view = inbox();
    exchange(&mut view, Command::Other, &["* 2 EXPUNGE"], "OK done").unwrap();
    exchange(&mut view, select("Archive"), &[], "NO no such mailbox").unwrap();
    let mut kept: Vec<u32> = view.mailboxes["bob/INBOX"].modseqs.keys().copied().collect();
    kept.sort_unstable();
    assert_eq!(kept, [3, 9]);
    // HIGHESTMODSEQ lower than the selection's, untagged or tagged.
    let r = exchange(&mut inbox(), Command::Other, &["* OK [HIGHESTMODSEQ 19] x"], "OK done");
    assert_eq!(r, Err(Violation::HighestModSeqBack { was: 20, seen: 19 }));
    let r = exchange(&mut inbox(), Command::Other, &[], "OK [HIGHESTMODSEQ 2] done");
    assert_eq!(r, Err(Violation::HighestModSeqBack { was: 20, seen: 2 }));
}

#[test]
fn uidnext_at_or_below_a_seen_uid_is_caught() {
    // STATUS UIDNEXT not above a UID APPENDUID gave.
    let mut view = inbox();
    let append = Command::Append {
        mailbox: "Archive".into(),
    };
    exchange(&mut view, append, &[], "OK [APPENDUID 77 40] done").unwrap();
    let r = exchange(
        &mut view,
        Command::Other,
        &["* STATUS Archive (UIDNEXT 40 UIDVALIDITY 77)"],
        "OK done",
    );
    assert_eq!(
        r,
        Err(Violation::UidNextNotAbove {
            mailbox: "bob/Archive".into(),
            uid_next: 40,
            uid: 40
        })
    );
    assert_eq!(r.unwrap_err().kind(), "UIDNEXT not above a UID");
    // ... or below an earlier UIDNEXT.
    let mut view = inbox();
    let status = |n: u32| format!("* STATUS Archive (UIDNEXT {n} UIDVALIDITY 77)");
    exchange(&mut view, Command::Other, &[&status(50)], "OK done").unwrap();
    let r = exchange(&mut view, Command::Other, &[&status(45)], "OK done");
    assert_eq!(
        r,
        Err(Violation::UidNextBack {
            mailbox: "bob/Archive".into(),
            was: 50,
            seen: 45
        })
    );
    // SELECT counted a message whose UID is at UIDNEXT.
    let mut view = new_view(1, &Arc::new(RecentClaims::default()));
    let lines = [
        "* FLAGS ()",
        "* 2 EXISTS",
        "* OK [UIDVALIDITY 1] x",
        "* OK [UIDNEXT 7] x",
    ];
    exchange(&mut view, select("INBOX"), &lines, "OK done").unwrap();
    let r = exchange(
        &mut view,
        Command::BySequence,
        &["* 1 FETCH (UID 3 FLAGS ())", "* 2 FETCH (UID 7 FLAGS ())"],
        "OK done",
    );
    assert!(matches!(
        r,
        Err(Violation::UidNextNotAbove {
            uid_next: 7,
            uid: 7,
            ..
        })
    ));
    // A message announced after SELECT with a UID below the one before it: out of order
    // (the order is checked before UIDNEXT).
    let mut view = inbox();
    let r = exchange(
        &mut view,
        Command::Other,
        &[
            "* 4 EXISTS",
            "* 4 FETCH (UID 10 FLAGS ())",
            "* 5 EXISTS",
            "* 5 FETCH (UID 9 FLAGS ())",
        ],
        "OK done",
    );
    assert!(matches!(r, Err(Violation::UidOrder { .. })), "{r:?}");
    // A message announced after SELECT with a UID in order, but below SELECT's UIDNEXT.
    let mut view = new_view(1, &Arc::new(RecentClaims::default()));
    exchange(&mut view, select("INBOX"), &lines, "OK done").unwrap();
    let r = exchange(
        &mut view,
        Command::Other,
        &["* 3 EXISTS", "* 3 FETCH (UID 6 FLAGS ())"],
        "OK done",
    );
    assert_eq!(r, Err(Violation::NewUidBelowUidNext { uid: 6, uid_next: 7 }));
    // A reselect whose UIDNEXT is not above the UIDs the last selection showed.
    let mut view = inbox();
    let lines = ["* 3 EXISTS", "* OK [UIDVALIDITY 1700000000] x", "* OK [UIDNEXT 9] x"];
    let r = exchange(&mut view, select("INBOX"), &lines, "OK done");
    assert!(matches!(
        r,
        Err(Violation::UidNextNotAbove {
            uid_next: 9,
            uid: 9,
            ..
        })
    ));
    // UIDVALIDITY that changes.
    let mut view = inbox();
    let r = exchange(
        &mut view,
        Command::Other,
        &["* STATUS INBOX (UIDNEXT 12 UIDVALIDITY 5)"],
        "OK done",
    );
    assert_eq!(
        r,
        Err(Violation::UidValidity {
            mailbox: "bob/INBOX".into(),
            was: 1_700_000_000,
            seen: 5
        })
    );
}

#[test]
fn a_failed_select_leaves_nothing_selected() {
    let mut view = inbox();
    exchange(&mut view, select("Nowhere"), &["* OK [CLOSED] x"], "NO no such mailbox").unwrap();
    assert_eq!((view.selected(), view.len()), (None, 0));
    // Responses that need a selection are then out of place.
    let r = exchange(&mut view, Command::Other, &["* 1 EXPUNGE"], "OK done");
    assert_eq!(r, Err(Violation::ExpungeUnknownSeq { seq: 1, exists: 0 }));
}

#[test]
fn every_kind_is_listed_once() {
    let kinds: HashSet<&str> = Violation::KINDS.iter().copied().collect();
    assert_eq!(kinds.len(), Violation::KINDS.len());
    let shown = Violation::VanishedUnknown { uid: 4 }.to_string();
    assert_eq!(
        shown,
        "VANISHED of an unknown UID: VANISHED UID 4, which the session was not told of"
    );
}
