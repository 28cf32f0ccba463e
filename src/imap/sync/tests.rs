//! Sessions told of changes from what their core shares (issue 13): scripted over an
//! in-memory store, several sessions on one mailbox with changes interleaved, against
//! sessions that compare views the slow way, and what one change costs.

use crate::imap::limit::MessageLimit;
use crate::imap::shared::Mailboxes;
use crate::imap::testing::{body, run_in, selected_in, MemStore};
use crate::imap::view::Unshared;

/// A small deterministic generator, so a failure replays.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn shared_changes_tell_each_client_what_comparing_views_tells_it() {
    let mut store = MemStore::new(40, &[body("a", 80)]);
    let mut core = Mailboxes::default();
    let limit = MessageLimit::None;
    // Pairs that see the same moments: one shares this core's changes, one compares views.
    let mut shared: Vec<_> = (0..3).map(|_| selected_in(&store, limit, &mut core)).collect();
    let mut alone: Vec<_> = (0..3).map(|_| selected_in(&store, limit, &mut Unshared)).collect();
    for (i, (a, b)) in shared.iter_mut().zip(&mut alone).enumerate() {
        // One of each pair hears of expunges as VANISHED with modseqs, one plain.
        let line = ["c ENABLE QRESYNC\r\n", "c ENABLE CONDSTORE\r\n", "c NOOP\r\n"][i];
        let (x, _) = run_in(a, (&store, &mut core), 0, line);
        let (y, _) = run_in(b, (&store, &mut Unshared), 0, line);
        assert_eq!(x, y);
    }
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let mut heard = 0;
    // Records read by the sessions that share, and by those that compare.
    let mut reads = (0, 0);
    for step in 0..400 {
        let change = match dice.roll(4) {
            0 => store.deliver_change(),
            1 | 2 => {
                let uids: Vec<u32> = store.messages.keys().copied().collect();
                match uids.get(dice.roll(uids.len().max(1) as u64) as usize) {
                    Some(&uid) => store.toggle_seen(uid),
                    None => store.deliver_change(),
                }
            }
            _ => {
                let uids: Vec<u32> = store.messages.keys().copied().collect();
                let picked: Vec<u32> = uids.into_iter().filter(|_| dice.roll(8) == 0).collect();
                store.expunge(&picked)
            }
        };
        core.apply(&change);
        // Session n looks every (n + 1) * 3 steps: some right away, some many changes later.
        for (n, (a, b)) in shared.iter_mut().zip(&mut alone).enumerate() {
            if step % ((n + 1) * 3) != 0 {
                continue;
            }
            let before = store.reads();
            let (x, _) = run_in(a, (&store, &mut core), step as i64, "d NOOP\r\n");
            let middle = store.reads();
            let (y, _) = run_in(b, (&store, &mut Unshared), step as i64, "d NOOP\r\n");
            reads.0 += middle - before;
            reads.1 += store.reads() - middle;
            assert_eq!(x, y, "session {n} at step {step}");
            heard += x.matches("\r\n").count();
        }
    }
    assert!(heard > 400, "the sessions heard of changes: {heard} lines");
    assert!(reads.0 * 4 < reads.1, "sharing reads less: {reads:?}");
}

/// One flag change in a 100,000-message mailbox with 50 sessions on it: each session reads
/// the one record that changed, not the mailbox (issue 13: was 5 million record reads).
#[test]
fn one_change_costs_each_session_what_the_change_names() {
    let mut store = MemStore::new(100_000, &[body("a", 80)]);
    let mut core = Mailboxes::default();
    let limit = MessageLimit::None;
    let mut sessions: Vec<_> = (0..50).map(|_| selected_in(&store, limit, &mut core)).collect();
    let mut costs = Vec::new();
    for step in 0..3 {
        let change = match step {
            0 => store.toggle_seen(777),
            1 => store.deliver_change(),
            _ => store.expunge(&[5, 6]),
        };
        core.apply(&change);
        let before = store.reads();
        for session in &mut sessions {
            let (out, _) = run_in(session, (&store, &mut core), 1, "e NOOP\r\n");
            assert!(out.ends_with("e OK NOOP completed\r\n") && out.len() > 30, "{out}");
        }
        costs.push(store.reads() - before);
    }
    // The flag change: one record each. The delivery: the new message's record each. The
    // expunge: nothing to read.
    assert_eq!(costs, [50, 50, 0]);
    // Comparing views instead walks the whole mailbox for each session.
    let mut alone = selected_in(&store, limit, &mut Unshared);
    core.apply(&store.toggle_seen(778));
    let before = store.reads();
    run_in(&mut alone, (&store, &mut Unshared), 2, "f NOOP\r\n");
    assert!(store.reads() - before >= 99_000, "{}", store.reads() - before);
}

/// A session further behind than the shared log keeps is told the same as one that compares
/// views, and is back on the shared changes afterwards.
#[test]
fn a_session_past_the_log_bound_catches_up_and_shares_again() {
    let mut store = MemStore::new(10, &[body("a", 80)]);
    let mut core = Mailboxes::default();
    let limit = MessageLimit::None;
    let mut behind = selected_in(&store, limit, &mut core);
    let mut alone = selected_in(&store, limit, &mut Unshared);
    let mut head = selected_in(&store, limit, &mut core);
    for i in 0..1100u32 {
        let change = if i % 3 == 2 {
            store.expunge(&[i])
        } else {
            store.deliver_change()
        };
        core.apply(&change);
        // One session keeps up, so the log is trimmed by its bound, not by positions.
        run_in(&mut head, (&store, &mut core), 0, "h NOOP\r\n");
    }
    let (x, _) = run_in(&mut behind, (&store, &mut core), 1, "b NOOP\r\n");
    let (y, _) = run_in(&mut alone, (&store, &mut Unshared), 1, "b NOOP\r\n");
    assert_eq!(x, y);
    assert!(
        x.contains("EXPUNGE") && x.contains("EXISTS"),
        "{}",
        &x[..200.min(x.len())]
    );
    // Back at the head: the next change costs it the record it names only.
    let last = *store.messages.keys().last().unwrap();
    core.apply(&store.toggle_seen(last));
    let before = store.reads();
    let (x, _) = run_in(&mut behind, (&store, &mut core), 2, "c NOOP\r\n");
    assert_eq!(store.reads() - before, 1, "{x}");
}

/// RFC 7162 §3.2.5.1: once the store's expunge log forgot, VANISHED (EARLIER) names every
/// UID below UIDNEXT that is not there, rather than the few the log still has.
#[test]
fn a_forgotten_expunge_log_vanishes_the_whole_known_range() {
    let mut store = MemStore::new(12, &[body("a", 80)]);
    let before = store.inbox().highest_modseq;
    for uid in [2, 4, 6] {
        store.expunge(&[uid]);
    }
    let recent = store.inbox().highest_modseq - 1;
    store.expunge_floor = recent;
    let inbox = store.inbox();
    let vanished = crate::imap::view::vanished_since(&store, &inbox, before).unwrap();
    assert_eq!(vanished, [2, 4, 6]);
    // Recent enough for the log: only what it recorded since.
    assert_eq!(crate::imap::view::vanished_since(&store, &inbox, recent).unwrap(), [6]);
    // Past UIDNEXT nothing is named, and neither is anything still there.
    store.deliver();
    let vanished = crate::imap::view::vanished_since(&store, &store.inbox(), 0).unwrap();
    assert_eq!(vanished, [2, 4, 6]);
}

/// Another process writes to the store (the admin CLI, `fsck --repair`): its changes never
/// reach the core's feed. The sessions must still be told what comparing views tells, and the
/// shared state must pick up from a snapshot rather than go on from a view that misses them.
#[test]
fn changes_the_feed_never_carried_are_picked_up_from_the_store() {
    let mut store = MemStore::new(20, &[body("a", 80)]);
    let mut core = Mailboxes::default();
    let limit = MessageLimit::None;
    let mut shared = selected_in(&store, limit, &mut core);
    let mut alone = selected_in(&store, limit, &mut Unshared);
    let mut other = selected_in(&store, limit, &mut core);
    // Written elsewhere: not applied to the core.
    store.deliver_change();
    store.expunge(&[3]);
    // Then one of this server's own, which the feed carries.
    core.apply(&store.toggle_seen(7));
    let (x, _) = run_in(&mut shared, (&store, &mut core), 1, "a NOOP\r\n");
    let (y, _) = run_in(&mut alone, (&store, &mut Unshared), 1, "a NOOP\r\n");
    assert_eq!(x, y);
    assert!(
        x.contains("EXPUNGE") && x.contains("20 EXISTS") && x.contains("\\Seen"),
        "{x}"
    );
    // Picked up again: the next change reaches both shared sessions from the log.
    core.apply(&store.deliver_change());
    let (x, _) = run_in(&mut shared, (&store, &mut core), 2, "b NOOP\r\n");
    let (y, _) = run_in(&mut alone, (&store, &mut Unshared), 2, "b NOOP\r\n");
    assert_eq!(x, y);
    let before = store.reads();
    let (z, _) = run_in(&mut other, (&store, &mut core), 2, "b NOOP\r\n");
    assert!(z.contains("EXISTS") && z.contains("EXPUNGE"), "{z}");
    assert!(store.reads() - before < 20, "{} reads", store.reads() - before);
}

/// What `out` says before its tagged line, and that line.
fn split_tagged(out: &str) -> (&str, &str) {
    let at = out.rfind("\r\nt ").map_or(0, |i| i + 2);
    out.split_at(at)
}

#[test]
fn every_command_ends_by_announcing_new_messages_before_its_tagged_line() {
    for line in [
        "t UID FETCH 1:* (FLAGS)",
        "t FETCH 1 (FLAGS)",
        "t UID SEARCH ALL",
        "t SEARCH ALL",
        "t STATUS INBOX (MESSAGES)",
        "t LIST \"\" *",
        "t CAPABILITY",
    ] {
        let mut store = MemStore::new(3, &[body("a", 80)]);
        let mut session = crate::imap::testing::selected_session(&store, MessageLimit::None);
        store.deliver();
        let (out, _) = crate::imap::testing::run(&mut session, &store, 0, &format!("{line}\r\n"));
        let (before, tagged) = split_tagged(&out);
        assert!(tagged.starts_with("t OK"), "{line}: {out}");
        assert!(before.contains("* 4 EXISTS\r\n"), "{line}: {out}");
        // Told once: the next NOOP has nothing more to say.
        let (again, _) = crate::imap::testing::run(&mut session, &store, 0, "t NOOP\r\n");
        assert!(!again.contains("EXISTS"), "{line}, then NOOP: {again}");
    }
}

#[test]
fn an_expunge_waiting_holds_the_announcement_where_it_may_not_be_told() {
    for (line, told) in [
        // RFC 9051 §7.5.1: not during FETCH, STORE or SEARCH; a UID command may tell it.
        ("t FETCH 1 (FLAGS)", false),
        ("t SEARCH ALL", false),
        ("t STATUS INBOX (MESSAGES)", false),
        ("t UID FETCH 1:* (FLAGS)", true),
        ("t UID SEARCH ALL", true),
    ] {
        let mut store = MemStore::new(3, &[body("a", 80)]);
        let mut session = crate::imap::testing::selected_session(&store, MessageLimit::None);
        store.expunge(&[2]);
        store.deliver();
        let (out, _) = crate::imap::testing::run(&mut session, &store, 0, &format!("{line}\r\n"));
        let (before, tagged) = split_tagged(&out);
        assert!(tagged.starts_with("t OK"), "{line}: {out}");
        if told {
            assert!(before.contains("* 2 EXPUNGE\r\n* 3 EXISTS\r\n"), "{line}: {out}");
        } else {
            assert!(
                !before.contains("EXPUNGE") && !before.contains("EXISTS"),
                "{line}: {out}"
            );
            let (noop, _) = crate::imap::testing::run(&mut session, &store, 0, "t NOOP\r\n");
            assert!(
                noop.contains("* 2 EXPUNGE\r\n* 3 EXISTS\r\n"),
                "{line}, then NOOP: {noop}"
            );
        }
    }
}

#[test]
fn open_contexts_wait_for_a_command_that_may_tell_expunges() {
    let mut store = MemStore::new(3, &[body("a", 80)]);
    let mut session = crate::imap::testing::selected_session(&store, MessageLimit::None);
    let (out, _) = crate::imap::testing::run(&mut session, &store, 0, "c SEARCH RETURN (UPDATE) ALL\r\n");
    assert!(out.contains("c OK"), "{out}");
    store.deliver();
    let (out, _) = crate::imap::testing::run(&mut session, &store, 0, "t FETCH 1 (FLAGS)\r\n");
    assert!(!out.contains("EXISTS") && !out.contains("ADDTO"), "{out}");
    let (out, _) = crate::imap::testing::run(&mut session, &store, 0, "t NOOP\r\n");
    assert!(out.contains("* 4 EXISTS") && out.contains("ADDTO"), "{out}");
}

#[test]
fn selected_delayed_holds_expunges_past_the_end_of_uid_commands() {
    let mut store = MemStore::new(3, &[body("a", 80)]);
    let mut session = crate::imap::testing::selected_session(&store, MessageLimit::None);
    let line = "n NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge))\r\n";
    let (out, _) = crate::imap::testing::run(&mut session, &store, 0, line);
    assert!(out.contains("n OK"), "{out}");
    store.expunge(&[2]);
    store.deliver();
    let (out, _) = crate::imap::testing::run(&mut session, &store, 0, "t UID FETCH 1:* (FLAGS)\r\n");
    assert!(!out.contains("EXPUNGE") && !out.contains("EXISTS"), "{out}");
    let (out, _) = crate::imap::testing::run(&mut session, &store, 0, "t NOOP\r\n");
    assert!(out.contains("* 2 EXPUNGE\r\n* 3 EXISTS\r\n"), "{out}");
}
