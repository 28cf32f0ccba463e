//! The scan in steps: over an in-memory store, step by step against one pass, and as a
//! scripted session with a virtual clock.

use super::*;
use crate::imap::limit::MessageLimit;
use crate::imap::session::Session;
use crate::imap::testing::{body, resume, run, selected_session, MemStore};
use crate::imap::types::SearchKey;

fn context(sel: &Selected) -> SearchContext {
    SearchContext {
        now: 1_800_000_000,
        max_uid: sel.view.last().unwrap_or(0),
        max_seq: sel.view.len(),
        saved: None,
    }
}

/// The UIDs a scan finds in one step with no budget to speak of.
fn one_pass(store: &MemStore, sel: &Selected, key: &SearchKey) -> Vec<Uid> {
    let mut scan = Scan::new(key.clone(), context(sel), 0);
    let unbounded = Budget {
        records: usize::MAX,
        bytes: usize::MAX,
    };
    assert!(scan.step(store, sel, unbounded).unwrap());
    scan.matches().iter().map(|m| m.uid).collect()
}

/// Steps until done; the progress after each step.
fn steps(scan: &mut Scan, store: &MemStore, sel: &Selected, budget: Budget) -> Vec<(usize, usize)> {
    let mut seen = Vec::new();
    loop {
        let done = scan.step(store, sel, budget).unwrap();
        seen.push(scan.progress(&sel.view));
        if done {
            return seen;
        }
        assert!(seen.len() < 100_000, "the scan never ends");
    }
}

fn uids(scan: &Scan) -> Vec<Uid> {
    scan.matches().iter().map(|m| m.uid).collect()
}

#[test]
fn a_scan_over_more_records_than_its_budget_takes_several_steps() {
    let store = MemStore::new(10, &[body("hay", 100), body("needle", 100)]);
    let sel = store.selected();
    let key = SearchKey::Body("needle".into());
    let mut scan = Scan::new(key.clone(), context(&sel), 0);
    assert_eq!(scan.progress(&sel.view), (0, 10));
    let budget = Budget {
        records: 3,
        bytes: usize::MAX,
    };
    let seen = steps(&mut scan, &store, &sel, budget);
    assert_eq!(seen, [(3, 10), (6, 10), (9, 10), (10, 10)]);
    assert_eq!(uids(&scan), [1, 3, 5, 7, 9]);
    assert_eq!(uids(&scan), one_pass(&store, &sel, &key));
    let m = scan.matches()[2];
    assert_eq!(
        m,
        Match {
            seq: 5,
            uid: 5,
            modseq: 5
        }
    );
    // A step that ends on the last message leaves none for another.
    let mut scan = Scan::new(key, context(&sel), 0);
    let budget = Budget {
        records: 5,
        bytes: usize::MAX,
    };
    assert_eq!(steps(&mut scan, &store, &sel, budget), [(5, 10), (10, 10)]);
}

#[test]
fn message_bytes_read_count_against_the_budget() {
    let store = MemStore::new(12, &[body("hay", 1000), body("needle", 1000)]);
    let sel = store.selected();
    let budget = Budget {
        records: 100,
        bytes: 2500,
    };
    // BODY reads every message: three of them fill a step.
    let key = SearchKey::Body("needle".into());
    let mut scan = Scan::new(key.clone(), context(&sel), 0);
    assert_eq!(
        steps(&mut scan, &store, &sel, budget),
        [(3, 12), (6, 12), (9, 12), (12, 12)]
    );
    assert_eq!(uids(&scan), one_pass(&store, &sel, &key));
    // Flags and structures are no message bytes: one step.
    for key in [SearchKey::Flagged, SearchKey::Subject("needle".into())] {
        let mut scan = Scan::new(key.clone(), context(&sel), 0);
        assert_eq!(steps(&mut scan, &store, &sel, budget), [(12, 12)], "{key:?}");
        assert_eq!(uids(&scan), one_pass(&store, &sel, &key));
    }
}

#[test]
fn messages_expunged_or_delivered_between_steps() {
    let mut store = MemStore::new(20, &[body("hay", 100), body("needle", 100)]);
    let sel = store.selected();
    let key = SearchKey::Body("needle".into());
    let budget = Budget {
        records: 6,
        bytes: usize::MAX,
    };
    let mut scan = Scan::new(key.clone(), context(&sel), 0);
    assert!(!scan.step(&store, &sel, budget).unwrap());
    assert_eq!(uids(&scan), [1, 3, 5]);
    // Gone: one already matched, one the next step would have started at, one further on.
    for uid in [3, 7, 15] {
        store.messages.remove(&uid);
    }
    // New, and not in the client's view.
    let new = store.deliver();
    assert!(sel.view.seq_of(new).is_none());
    let seen = steps(&mut scan, &store, &sel, budget);
    assert_eq!(seen.last(), Some(&(20, 20)), "{seen:?}");
    // What was matched stays matched; from there on, the mailbox as it is now, without the
    // new message, with the sequence numbers of the client's view.
    assert_eq!(uids(&scan), [1, 3, 5, 9, 11, 13, 17, 19]);
    let m = scan.matches().iter().find(|m| m.uid == 17).unwrap();
    assert_eq!((m.seq, m.modseq), (17, 17));
    let mut now: Vec<Uid> = one_pass(&store, &sel, &key);
    now.push(3);
    now.sort_unstable();
    assert_eq!(uids(&scan), now);
}

#[test]
fn a_scan_starts_at_its_floor() {
    let store = MemStore::new(10, &[body("hay", 100)]);
    let sel = store.selected();
    let budget = Budget {
        records: 2,
        bytes: usize::MAX,
    };
    let mut scan = Scan::new(SearchKey::All, context(&sel), 7);
    assert_eq!(scan.progress(&sel.view), (0, 4));
    assert_eq!(steps(&mut scan, &store, &sel, budget), [(2, 4), (4, 4)]);
    assert_eq!(uids(&scan), [7, 8, 9, 10]);
}

#[test]
fn the_session_budget_splits_a_large_mailbox() {
    let store = MemStore::new(10_000, &[body("hay", 100)]);
    let sel = store.selected();
    let mut scan = Scan::new(SearchKey::Flagged, context(&sel), 0);
    let seen = steps(&mut scan, &store, &sel, STEP);
    assert_eq!(seen, [(4096, 10_000), (8192, 10_000), (10_000, 10_000)]);
    assert_eq!(scan.matches().len(), 1000);
    assert_eq!(uids(&scan), one_pass(&store, &sel, &SearchKey::Flagged));
}

/// Runs a command to its end, one second between steps: everything it wrote, and how many
/// times it yielded.
fn complete(session: &mut Session, store: &MemStore, line: &str) -> (String, usize) {
    let mut now = 100;
    let (mut out, mut action) = run(session, store, now, line);
    let mut yields = 0;
    while matches!(action, Action::Flush) {
        yields += 1;
        now += 1;
        let (more, next) = resume(session, store, now);
        out.push_str(&more);
        action = next;
    }
    assert!(matches!(action, Action::Continue), "{action:?}");
    (out, yields)
}

fn without_progress(out: &str) -> String {
    out.split_inclusive("\r\n")
        .filter(|l| !l.contains("[INPROGRESS"))
        .collect()
}

#[test]
fn a_long_search_yields_and_tells_how_far_it_got() {
    let store = MemStore::new(10_000, &[body("hay", 100)]);
    let mut session = selected_session(&store, MessageLimit::None);
    let (out, action) = run(&mut session, &store, 100, "c SEARCH FLAGGED\r\n");
    assert!(matches!(action, Action::Flush) && out.is_empty(), "{out}");
    // Within RFC 9585's interval: nothing to tell yet.
    let (out, action) = resume(&mut session, &store, 101);
    assert!(matches!(action, Action::Flush) && out.is_empty(), "{out}");
    let (out, action) = resume(&mut session, &store, 102);
    assert!(matches!(action, Action::Continue));
    let flagged: Vec<String> = (1..=1000).map(|n| (n * 10).to_string()).collect();
    let want = format!(
        "* OK [INPROGRESS (\"c\" 8192 10000)] 8192 of 10000 messages searched\r\n\
         * SEARCH {}\r\nc OK SEARCH completed\r\n",
        flagged.join(" ")
    );
    assert_eq!(out, want);
    // Another command runs as usual after it.
    let (out, _) = run(&mut session, &store, 103, "d NOOP\r\n");
    assert_eq!(out, "d OK NOOP completed\r\n");
}

/// The numbers `range` as a SEARCH or SORT response writes them.
fn numbers(range: impl Iterator<Item = u32>) -> String {
    range.map(|n| n.to_string()).collect::<Vec<_>>().join(" ")
}

#[test]
fn stepped_answers_are_those_of_one_pass() {
    let store = MemStore::new(10_000, &[body("hay", 100), body("needle", 100)]);
    let mut session = selected_session(&store, MessageLimit::None);
    let flagged = numbers((1..=1000).map(|n| n * 10));
    let latest = numbers((9990..=10_000).rev());
    // Message n has body n % 2: "needle" for the odd ones.
    let odd_latest = numbers((9991..=9999).step_by(2));
    for (command, want) in [
        (
            "UID SEARCH RETURN (MIN MAX COUNT) FLAGGED",
            "* ESEARCH (TAG \"t\") UID MIN 10 MAX 10000 COUNT 1000\r\nt OK UID SEARCH completed\r\n".to_string(),
        ),
        (
            "SEARCH FLAGGED BODY hay",
            format!("* SEARCH {flagged}\r\nt OK SEARCH completed\r\n"),
        ),
        (
            "SORT (REVERSE ARRIVAL) UTF-8 UID 9990:*",
            format!("* SORT {latest}\r\nt OK SORT completed\r\n"),
        ),
        (
            "UID SORT (ARRIVAL) UTF-8 BODY needle UID 9990:*",
            format!("* SORT {odd_latest}\r\nt OK UID SORT completed\r\n"),
        ),
        (
            "UID THREAD ORDEREDSUBJECT UTF-8 SUBJECT needle UID 9996:*",
            "* THREAD (9997 9999)\r\nt OK UID THREAD completed\r\n".to_string(),
        ),
    ] {
        let (out, yields) = complete(&mut session, &store, &format!("t {command}\r\n"));
        assert_eq!(yields, 2, "{command}: three steps");
        assert_eq!(without_progress(&out), want, "{command}");
    }
}

#[test]
fn a_cut_search_scans_from_its_floor_in_steps() {
    let store = MemStore::new(10_000, &[body("hay", 100)]);
    let mut session = selected_session(&store, MessageLimit::Message(5000));
    let (out, yields) = complete(&mut session, &store, "e SEARCH UID 1:*\r\n");
    assert_eq!(yields, 1, "5,000 messages: two steps");
    let want = format!(
        "* SEARCH {}\r\ne OK [MESSAGELIMIT 5000 5001] SEARCH completed\r\n",
        numbers((5001..=10_000).rev())
    );
    assert_eq!(without_progress(&out), want);
    // SORT over as many is refused before any step.
    let (out, yields) = complete(&mut session, &store, "f SORT (ARRIVAL) UTF-8 ALL\r\n");
    assert_eq!(
        (out.as_str(), yields),
        (
            "f NO [MESSAGELIMIT 5000] too many messages to order; narrow the search\r\n",
            0
        )
    );
}

#[test]
fn refusals_come_before_any_step() {
    let store = MemStore::new(10_000, &[body("hay", 100)]);
    let mut session = selected_session(&store, MessageLimit::None);
    for command in ["g SEARCH CHARSET KOI8-R ALL", "g SORT (ARRIVAL) KOI8-R ALL"] {
        let (out, yields) = complete(&mut session, &store, &format!("{command}\r\n"));
        let want = "g NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset\r\n";
        assert_eq!((out.as_str(), yields), (want, 0), "{command}");
    }
}

/// Issue 13: SEARCH MODSEQ reads the messages the modseq index lists, not the mailbox, and
/// finds what a walk over every message finds, in steps too.
#[test]
fn a_modseq_program_walks_only_what_changed() {
    let mut store = MemStore::new(100, &[body("hay", 100), body("needle", 100)]);
    store.messages.get_mut(&7).unwrap().modseq = 200;
    let sel = store.selected();
    let key = SearchKey::And(vec![SearchKey::ModSeq(96), SearchKey::Body("needle".into())]);
    assert_eq!(one_pass(&store, &sel, &key), [7, 97, 99]);
    assert_eq!(store.walked.get(), 0, "no record beyond the changed ones was read");
    let mut scan = Scan::new(key, context(&sel), 0);
    let budget = Budget {
        records: 2,
        bytes: usize::MAX,
    };
    let seen = steps(&mut scan, &store, &sel, budget);
    assert_eq!(seen.len(), 3, "6 changed messages, 2 a step: {seen:?}");
    assert_eq!(uids(&scan), [7, 97, 99]);
    // Under OR the requirement is not the program's: the whole mailbox is walked.
    let either = SearchKey::Or(Box::new(SearchKey::ModSeq(96)), Box::new(SearchKey::Flagged));
    assert_eq!(one_pass(&store, &sel, &either).len(), 6 + 9);
    assert_eq!(store.walked.get(), 100);
}
