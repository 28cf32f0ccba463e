//! Scripted sessions against the model: server replies as text (ringmail's and Dovecot's
//! forms), parsed as the scenario parses them. A correct session is accepted; each injected
//! server error is caught as the inconsistency it is.

use super::*;
use crate::response::{parse_untagged, response_code, Code};

fn responses(lines: &[&str]) -> Vec<Untagged> {
    lines
        .iter()
        .map(|l| parse_untagged(l.as_bytes()).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn flags(names: &[&str]) -> Flags {
    Flags::from_names(names.iter().copied())
}

fn selected(lines: &[&str]) -> Selected {
    Selected::from_responses(&responses(lines)).expect("complete SELECT")
}

/// INBOX with UIDs 3, 5, 9 (seq 1, 2, 3); 5 is \Seen; UIDNEXT 10.
fn inbox() -> MailboxModel {
    let select = selected(&[
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        "* 3 EXISTS",
        "* 0 RECENT",
        "* OK [UIDVALIDITY 1700000000] UIDs valid",
        "* OK [UIDNEXT 10] Predicted next UID",
    ]);
    let fetched = responses(&[
        "* 1 FETCH (UID 3 FLAGS ())",
        "* 2 FETCH (UID 5 FLAGS (\\Seen))",
        "* 3 FETCH (FLAGS (\\Recent) UID 9)",
    ]);
    MailboxModel::from_sync(&select, &fetched).expect("consistent")
}

fn appenduid(text: &str) -> Option<(u32, u32)> {
    match response_code(text.as_bytes()).unwrap() {
        Some(Code::AppendUid { uid_validity, uids }) => Some((uid_validity, uids[0])),
        _ => None,
    }
}

#[test]
fn a_correct_session_is_accepted() {
    let mut m = inbox();
    assert_eq!(m.uids().collect::<Vec<_>>(), [3, 5, 9]);
    assert_eq!((m.uid_validity(), m.uid_next()), (1_700_000_000, 10));

    // UID STORE 5,9 +FLAGS (\Flagged $Label): ringmail puts UID first, Dovecot FLAGS first.
    m.store(&[5, 9], StoreOp::Add, &flags(&["\\Flagged", "$Label"]));
    m.apply_all(&responses(&[
        "* 2 FETCH (UID 5 FLAGS (\\Seen \\Flagged $Label))",
        "* 3 FETCH (FLAGS (\\Flagged $label \\Recent) UID 9)",
    ]))
    .unwrap();
    m.check_search(&SearchKey::Flagged, &[9, 5]).unwrap();
    m.check_search(&SearchKey::Unseen, &[3, 9]).unwrap();
    m.check_search(&SearchKey::Keyword("$Label".into()), &[5, 9]).unwrap();

    // APPEND with APPENDUID; EXISTS in the same reply.
    m.appended(
        appenduid("[APPENDUID 1700000000 12] APPEND completed"),
        flags(&["\\Seen"]),
        Some("<1.a@loadtest.invalid>".into()),
    )
    .unwrap();
    assert_eq!((m.len(), m.total()), (3, 4));
    m.apply_all(&responses(&["* 4 EXISTS", "* 1 RECENT"])).unwrap();
    assert_eq!(m.uid_at(4), Some(12));

    // FETCH 2:4 (UID FLAGS ENVELOPE).
    let fetched = responses(&[
        "* 2 FETCH (UID 5 FLAGS (\\Seen \\Flagged $Label) ENVELOPE (NIL \"a\" NIL NIL NIL NIL NIL NIL NIL \"<x@y>\"))",
        "* 3 FETCH (UID 9 FLAGS (\\Flagged $Label) ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL))",
        "* 4 FETCH (UID 12 FLAGS (\\Seen) ENVELOPE (NIL \"s\" NIL NIL NIL NIL NIL NIL NIL \"<1.a@loadtest.invalid>\"))",
    ]);
    m.apply_all(&fetched).unwrap();
    m.check_fetched(&[5, 9, 12], &fetched).unwrap();

    // UID STORE 3,12 +FLAGS (\Deleted), then EXPUNGE: 3 goes first, so 12 is then seq 3.
    m.store(&[3, 12], StoreOp::Add, &flags(&["\\Deleted"]));
    m.apply_all(&responses(&[
        "* 1 FETCH (UID 3 FLAGS (\\Deleted))",
        "* 4 FETCH (UID 12 FLAGS (\\Seen \\Deleted))",
    ]))
    .unwrap();
    m.begin_expunge(ExpungeScope::Deleted);
    m.apply_all(&responses(&["* 1 EXPUNGE", "* 3 EXPUNGE"])).unwrap();
    m.end_expunge().unwrap();
    assert_eq!(m.uids().collect::<Vec<_>>(), [5, 9]);

    // UID FETCH 9:* after the renumbering: 9 is seq 2 now.
    let fetched = responses(&["* 2 FETCH (UID 9 FLAGS (\\Flagged $Label))"]);
    m.apply_all(&fetched).unwrap();
    m.check_fetched(&m.uids_in(9, None), &fetched).unwrap();

    // -FLAGS, and a reselect that sees the same mailbox.
    m.store(&[5], StoreOp::Remove, &flags(&["\\SEEN"]));
    m.apply_all(&responses(&["* 1 FETCH (FLAGS (\\Flagged $Label) UID 5)"]))
        .unwrap();
    m.check_search(&SearchKey::Unseen, &[5, 9]).unwrap();
    m.reselect(&selected(&[
        "* 2 EXISTS",
        "* OK [UIDVALIDITY 1700000000] Ok",
        "* OK [UIDNEXT 13] Ok",
    ]))
    .unwrap();
    assert_eq!(m.uid_next(), 13);
}

#[test]
fn uid_expunge_removes_only_its_set() {
    let mut m = inbox();
    m.store(&[3, 5, 9], StoreOp::Add, &flags(&["\\Deleted"]));
    m.begin_expunge(ExpungeScope::Uids([5].into()));
    // Expunging 3, \Deleted but outside the set, is an error.
    assert_eq!(
        m.clone().apply(&responses(&["* 1 EXPUNGE"])[0]),
        Err(Inconsistency::ExpungeUnexpected { seq: 1, uid: Some(3) })
    );
    m.apply_all(&responses(&["* 2 EXPUNGE"])).unwrap();
    m.end_expunge().unwrap();
    assert_eq!(m.uids().collect::<Vec<_>>(), [3, 9]);
}

#[test]
fn appended_uids_are_learnt_without_uidplus() {
    let mut m = inbox();
    m.appended(None, Flags::default(), None).unwrap();
    m.appended(None, flags(&["$Label"]), None).unwrap();
    m.apply(&Untagged::Exists(5)).unwrap();
    assert!(m.has_unknown_uids());
    assert_eq!(m.unknown_uid_seqs(), [4, 5]);
    m.apply_all(&responses(&[
        "* 4 FETCH (UID 10 FLAGS ())",
        "* 5 FETCH (FLAGS ($Label) UID 11)",
    ]))
    .unwrap();
    assert!(!m.has_unknown_uids());
    assert_eq!(m.uid_next(), 12);

    // A learnt UID must be above the UIDs before it.
    let mut m = inbox();
    m.appended(None, Flags::default(), None).unwrap();
    m.apply(&Untagged::Exists(4)).unwrap();
    assert_eq!(
        m.apply(&responses(&["* 4 FETCH (UID 8 FLAGS ())"])[0]),
        Err(Inconsistency::UidOrder {
            seq: 4,
            uid: 8,
            below: 9,
            above: None
        })
    );
}

#[test]
fn wrong_exists_is_caught() {
    let mut m = inbox();
    assert_eq!(
        m.clone().apply(&Untagged::Exists(4)),
        Err(Inconsistency::Exists {
            min: 3,
            max: 3,
            seen: 4
        }),
        "a message nobody appended"
    );
    assert_eq!(
        m.clone().apply(&Untagged::Exists(2)),
        Err(Inconsistency::Exists {
            min: 3,
            max: 3,
            seen: 2
        }),
        "shrinking without EXPUNGE"
    );
    m.appended(Some((1_700_000_000, 10)), Flags::default(), None).unwrap();
    assert_eq!(
        m.clone().apply(&Untagged::Exists(5)),
        Err(Inconsistency::Exists {
            min: 3,
            max: 4,
            seen: 5
        })
    );
    // On reselect EXISTS must count the appended message too.
    assert_eq!(
        m.reselect(&selected(&[
            "* 3 EXISTS",
            "* OK [UIDVALIDITY 1700000000]",
            "* OK [UIDNEXT 11]"
        ])),
        Err(Inconsistency::Exists {
            min: 4,
            max: 4,
            seen: 3
        })
    );
}

#[test]
fn flag_mismatches_are_caught() {
    let mut m = inbox();
    m.store(&[3], StoreOp::Add, &flags(&["\\Answered"]));
    let err = m
        .apply(&responses(&["* 1 FETCH (FLAGS (\\Seen) UID 3)"])[0])
        .unwrap_err();
    assert_eq!(
        err,
        Inconsistency::Flags {
            seq: 1,
            uid: Some(3),
            expected: flags(&["\\Answered"]),
            seen: flags(&["\\Seen"])
        }
    );
    assert_eq!(err.kind(), "flags differ");
    assert!(err.to_string().contains("UID 3"), "{err}");
    // An appended message's flags are what APPEND gave.
    let mut m = inbox();
    m.appended(Some((1_700_000_000, 10)), flags(&["\\Flagged"]), None)
        .unwrap();
    m.apply(&Untagged::Exists(4)).unwrap();
    assert!(matches!(
        m.apply(&responses(&["* 4 FETCH (UID 10 FLAGS ())"])[0]),
        Err(Inconsistency::Flags { .. })
    ));
}

#[test]
fn a_fetched_uid_must_fit_the_known_uids_around_it() {
    let known = [Some(3), None, None, Some(9)];
    let check = |i, uid| neighbour_uids(&known, |u| *u, i, uid);
    assert_eq!(check(0, 3), Ok(false), "already known");
    assert_eq!(
        check(0, 4),
        Err(UidMisfit::AtSeq {
            seq: 1,
            expected: 3,
            seen: 4
        })
    );
    assert_eq!(check(1, 4), Ok(true), "between 3 and 9");
    let order = |seq, uid| UidMisfit::Order {
        seq,
        uid,
        below: 3,
        above: Some(9),
    };
    assert_eq!(check(2, 3), Err(order(3, 3)));
    assert_eq!(check(2, 9), Err(order(3, 9)));
    assert_eq!(neighbour_uids(&[None, Some(2)], |u| *u, 0, 1), Ok(true), "none below");
}

#[test]
fn uids_that_go_backwards_are_caught() {
    let mut m = inbox();
    // APPENDUID reusing an old UID, or below UIDNEXT.
    assert_eq!(
        m.clone().appended(Some((1_700_000_000, 9)), Flags::default(), None),
        Err(Inconsistency::UidNotNew { uid: 9, at_least: 10 })
    );
    assert_eq!(
        m.clone().appended(Some((7, 10)), Flags::default(), None),
        Err(Inconsistency::UidValidity {
            expected: 1_700_000_000,
            seen: 7
        })
    );
    // A sequence number answered with another UID.
    assert_eq!(
        m.clone().apply(&responses(&["* 2 FETCH (UID 3 FLAGS (\\Seen))"])[0]),
        Err(Inconsistency::UidAtSeq {
            seq: 2,
            expected: 5,
            seen: 3
        })
    );
    // UIDNEXT lower than a UID handed out.
    m.appended(Some((1_700_000_000, 20)), Flags::default(), None).unwrap();
    assert_eq!(
        m.clone().reselect(&selected(&[
            "* 4 EXISTS",
            "* OK [UIDVALIDITY 1700000000]",
            "* OK [UIDNEXT 15]"
        ])),
        Err(Inconsistency::UidNext { at_least: 21, seen: 15 })
    );
    assert_eq!(
        m.reselect(&selected(&["* 4 EXISTS", "* OK [UIDVALIDITY 1]", "* OK [UIDNEXT 21]"])),
        Err(Inconsistency::UidValidity {
            expected: 1_700_000_000,
            seen: 1
        })
    );
}

#[test]
fn disappearing_and_unrequested_uids_are_caught() {
    let m = inbox();
    let fetched = responses(&["* 1 FETCH (UID 3 FLAGS ())", "* 3 FETCH (UID 9 FLAGS ())"]);
    assert_eq!(
        m.check_fetched(&[3, 5, 9], &fetched),
        Err(Inconsistency::Missing { uid: 5 })
    );
    assert_eq!(
        m.check_fetched(&[3], &fetched),
        Err(Inconsistency::Unrequested { uid: 9 })
    );
    assert_eq!(
        m.clone().apply(&Untagged::Fetch(crate::response::Fetch {
            seq: 4,
            uid: Some(10),
            ..Default::default()
        })),
        Err(Inconsistency::FetchUnknownSeq { seq: 4, exists: 3 })
    );
}

#[test]
fn search_differences_are_caught() {
    let m = inbox();
    m.check_search(&SearchKey::Seen, &[5]).unwrap();
    m.check_search(&SearchKey::All, &[3, 5, 9]).unwrap();
    m.check_search(&SearchKey::Deleted, &[]).unwrap();
    let err = m.check_search(&SearchKey::Unseen, &[3, 5]).unwrap_err();
    assert_eq!(
        err,
        Inconsistency::Search {
            criterion: "UNSEEN".into(),
            missing: vec![9],
            unexpected: vec![5]
        }
    );
    assert_eq!(
        err.to_string(),
        "SEARCH result differs: UID SEARCH UNSEEN: missing [9], unexpected [5]"
    );
}

#[test]
fn bad_expunges_are_caught() {
    let mut m = inbox();
    // Outside any expunge.
    assert_eq!(
        m.clone().apply(&Untagged::Expunge(1)),
        Err(Inconsistency::ExpungeUnexpected { seq: 1, uid: Some(3) })
    );
    m.store(&[9], StoreOp::Add, &flags(&["\\Deleted"]));
    m.begin_expunge(ExpungeScope::Deleted);
    // An unknown sequence number, and a message not marked \Deleted.
    assert_eq!(
        m.clone().apply(&Untagged::Expunge(4)),
        Err(Inconsistency::ExpungeUnknownSeq { seq: 4, exists: 3 })
    );
    assert_eq!(
        m.clone().apply(&Untagged::Expunge(2)),
        Err(Inconsistency::ExpungeUnexpected { seq: 2, uid: Some(5) })
    );
    // The same EXPUNGE twice: the second names what is now past the end.
    let mut twice = m.clone();
    twice.apply(&Untagged::Expunge(3)).unwrap();
    assert_eq!(
        twice.apply(&Untagged::Expunge(3)),
        Err(Inconsistency::ExpungeUnknownSeq { seq: 3, exists: 2 })
    );
    // No EXPUNGE at all: the \Deleted message survived.
    assert_eq!(m.end_expunge(), Err(Inconsistency::NotExpunged { uids: vec![9] }));
}

#[test]
fn message_ids_stay_with_their_uid() {
    let mut m = inbox();
    let envelope = |seq: u32, uid: u32, id: &str| {
        responses(&[&format!(
            "* {seq} FETCH (UID {uid} ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL \"{id}\"))"
        )])
    };
    m.apply_all(&envelope(1, 3, "<a@x>")).unwrap();
    m.apply_all(&envelope(1, 3, "<a@x>")).unwrap();
    assert!(matches!(
        m.apply_all(&envelope(1, 3, "<b@x>")),
        Err(Inconsistency::MessageId { uid: Some(3), .. })
    ));
}

#[test]
fn the_first_sync_is_checked() {
    let select = selected(&["* 3 EXISTS", "* OK [UIDVALIDITY 1]", "* OK [UIDNEXT 10]"]);
    let sync = |lines: &[&str]| MailboxModel::from_sync(&select, &responses(lines));
    assert_eq!(
        sync(&["* 1 FETCH (UID 3 FLAGS ())", "* 3 FETCH (UID 9 FLAGS ())"]),
        Err(Inconsistency::SyncIncomplete { seq: 2 })
    );
    assert_eq!(
        sync(&[
            "* 1 FETCH (UID 3 FLAGS ())",
            "* 2 FETCH (UID 2 FLAGS ())",
            "* 3 FETCH (UID 9 FLAGS ())"
        ]),
        Err(Inconsistency::UidOrder {
            seq: 2,
            uid: 2,
            below: 3,
            above: None
        })
    );
    assert_eq!(
        sync(&[
            "* 1 FETCH (UID 3 FLAGS ())",
            "* 2 FETCH (UID 5 FLAGS ())",
            "* 3 FETCH (UID 10 FLAGS ())"
        ]),
        Err(Inconsistency::UidNext { at_least: 11, seen: 10 })
    );
    assert!(matches!(
        sync(&["* 4 FETCH (UID 3 FLAGS ())"]),
        Err(Inconsistency::FetchUnknownSeq { seq: 4, .. })
    ));
    assert_eq!(
        Selected::from_responses(&responses(&["* 3 EXISTS", "* OK [UIDVALIDITY 1]"])),
        Err("UIDNEXT")
    );
    let empty = selected(&["* 0 EXISTS", "* OK [UIDVALIDITY 1]", "* OK [UIDNEXT 1]"]);
    assert!(MailboxModel::from_sync(&empty, &[]).unwrap().is_empty());
}
