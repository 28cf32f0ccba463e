//! What the crash harness's clients were told, and the rules a store that was killed at any
//! moment must still keep. Server-free and clock-free.
//!
//! A message is known by (user, Message-ID). An operation whose reply came is certain; one
//! sent but cut off by the kill may or may not have happened, and the next look at the store
//! settles it for good: whatever is seen then must hold from then on.

use std::collections::BTreeMap;
use std::fmt;

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Acknowledged (or seen) and not expunged: exactly once in the user's mailboxes.
    Present,
    /// Expunged with an acknowledgement (or no longer seen): never again.
    Gone,
    /// Sent, never acknowledged: once or not at all.
    MaybePresent,
    /// Expunge sent, never acknowledged: once or not at all.
    MaybeGone,
}

/// One mailbox as a verification saw it.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub highest_modseq: u64,
    /// UID → Message-ID.
    pub messages: BTreeMap<u32, String>,
}

/// A broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Default)]
pub struct Ledger {
    messages: BTreeMap<(String, String), Fate>,
    /// (user, mailbox) as last seen.
    mailboxes: BTreeMap<(String, String), Seen>,
    /// Checks made so far, for the report.
    pub checked: u64,
}

impl Ledger {
    pub fn sent(&mut self, user: &str, id: &str) {
        self.messages.insert((user.into(), id.into()), Fate::MaybePresent);
    }

    /// The server said it is done. A message another client has expunged meanwhile (it saw
    /// the message before its sender heard back) stays gone.
    pub fn acknowledged(&mut self, user: &str, id: &str) {
        let fate = self
            .messages
            .entry((user.into(), id.into()))
            .or_insert(Fate::MaybePresent);
        if *fate == Fate::MaybePresent {
            *fate = Fate::Present;
        }
    }

    /// An expunge (or POP3 QUIT with DELE) was sent for a message.
    pub fn expunging(&mut self, user: &str, id: &str) {
        if let Some(fate) = self.messages.get_mut(&(user.into(), id.into())) {
            if *fate == Fate::Present {
                *fate = Fate::MaybeGone;
            }
        }
    }

    pub fn expunged(&mut self, user: &str, id: &str) {
        self.messages.insert((user.into(), id.into()), Fate::Gone);
    }

    pub fn fate(&self, user: &str, id: &str) -> Option<Fate> {
        self.messages.get(&(user.into(), id.into())).copied()
    }

    /// Message-IDs of `user` that are surely there, for the clients to act on.
    pub fn present(&self, user: &str) -> Vec<String> {
        self.messages
            .iter()
            .filter(|((u, _), fate)| u == user && **fate == Fate::Present)
            .map(|((_, id), _)| id.clone())
            .collect()
    }

    /// Checks what `user`'s mailboxes hold now against what was acknowledged and what was
    /// seen before, then takes it as the truth for the next round. `counted` are the
    /// mailboxes where each message must be exactly once (copies go elsewhere); `tracked`
    /// those whose identity (UIDVALIDITY) lives as long as the user.
    pub fn check(
        &mut self,
        user: &str,
        now: &BTreeMap<String, Seen>,
        counted: &[&str],
        tracked: &[&str],
    ) -> Vec<Violation> {
        let mut violations = Vec::new();
        let mut fail = |text: String| violations.push(Violation(text));
        for name in tracked {
            let key = (user.to_owned(), (*name).to_owned());
            let Some(seen) = now.get(*name) else {
                fail(format!("{user}: mailbox {name} is gone"));
                continue;
            };
            self.checked += 1;
            for uid in seen.messages.keys().filter(|uid| **uid >= seen.uid_next) {
                fail(format!(
                    "{user}/{name}: UID {uid} is not below UIDNEXT {}",
                    seen.uid_next
                ));
            }
            if let Some(before) = self.mailboxes.get(&key) {
                if before.uid_validity != seen.uid_validity {
                    fail(format!(
                        "{user}/{name}: UIDVALIDITY changed from {} to {}",
                        before.uid_validity, seen.uid_validity
                    ));
                }
                if seen.uid_next < before.uid_next {
                    fail(format!(
                        "{user}/{name}: UIDNEXT went down from {} to {}",
                        before.uid_next, seen.uid_next
                    ));
                }
                if seen.highest_modseq < before.highest_modseq {
                    fail(format!(
                        "{user}/{name}: HIGHESTMODSEQ went down from {} to {}",
                        before.highest_modseq, seen.highest_modseq
                    ));
                }
                for (uid, id) in &seen.messages {
                    match before.messages.get(uid) {
                        Some(was) if was != id => fail(format!("{user}/{name}: UID {uid} was {was}, now {id}")),
                        None if *uid < before.uid_next => fail(format!(
                            "{user}/{name}: new UID {uid} is below the UIDNEXT {} seen before",
                            before.uid_next
                        )),
                        _ => {}
                    }
                }
            }
            self.mailboxes.insert(key, seen.clone());
        }
        // Each message exactly once (or, if in doubt, at most once) in the counted mailboxes.
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for name in counted {
            for id in now.get(*name).into_iter().flat_map(|s| s.messages.values()) {
                *counts.entry(id).or_default() += 1;
            }
        }
        for id in counts.keys() {
            if !self.messages.contains_key(&(user.to_owned(), (*id).to_owned())) {
                fail(format!("{user}: message {id} was never sent"));
            }
        }
        violations.extend(self.settle(user, |id| counts.get(id).copied().unwrap_or(0)));
        violations
    }

    /// Names (folders) under the rules of messages: `now` are those that exist.
    pub fn check_names(&mut self, owner: &str, now: &std::collections::BTreeSet<String>) -> Vec<Violation> {
        let mut violations: Vec<Violation> = now
            .iter()
            .filter(|name| !self.messages.contains_key(&(owner.to_owned(), (*name).clone())))
            .map(|name| Violation(format!("{owner}: {name} was never made")))
            .collect();
        violations.extend(self.settle(owner, |name| usize::from(now.contains(name))));
        violations
    }

    /// Checks each of `owner`'s entries against how often it is there now, then takes that
    /// as settled: there means present from now on, not there gone for good.
    fn settle(&mut self, owner: &str, count: impl Fn(&str) -> usize) -> Vec<Violation> {
        let mut violations = Vec::new();
        for ((o, id), fate) in self.messages.iter_mut() {
            if o != owner {
                continue;
            }
            self.checked += 1;
            let n = count(id);
            let fine = match fate {
                Fate::Present => n == 1,
                Fate::Gone => n == 0,
                Fate::MaybePresent | Fate::MaybeGone => n <= 1,
            };
            if !fine {
                violations.push(Violation(format!("{owner}: {id} ({fate:?}) is there {n} times")));
            }
            *fate = if n > 0 { Fate::Present } else { Fate::Gone };
        }
        violations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(validity: u32, next: u32, modseq: u64, messages: &[(u32, &str)]) -> Seen {
        Seen {
            uid_validity: validity,
            uid_next: next,
            highest_modseq: modseq,
            messages: messages.iter().map(|(u, id)| (*u, (*id).to_owned())).collect(),
        }
    }

    fn view(boxes: &[(&str, Seen)]) -> BTreeMap<String, Seen> {
        boxes.iter().map(|(n, s)| ((*n).to_owned(), s.clone())).collect()
    }

    #[test]
    fn acknowledged_messages_stay_once_and_doubtful_ones_settle() {
        let mut l = Ledger::default();
        l.acknowledged("u", "a");
        l.sent("u", "b");
        l.sent("u", "c");
        let now = view(&[("INBOX", mailbox(7, 3, 5, &[(1, "a"), (2, "b")]))]);
        assert!(l.check("u", &now, &["INBOX"], &["INBOX"]).is_empty());
        assert_eq!(l.fate("u", "b"), Some(Fate::Present));
        assert_eq!(l.fate("u", "c"), Some(Fate::Gone), "not there: gone for good");
        // c turning up later is a message back from the dead, and b vanishing a loss.
        let later = view(&[("INBOX", mailbox(7, 4, 6, &[(1, "a"), (3, "c")]))]);
        let v = l.check("u", &later, &["INBOX"], &["INBOX"]);
        assert_eq!(v.len(), 2, "{v:?}");
    }

    #[test]
    fn uids_and_counters_only_go_forward() {
        let mut l = Ledger::default();
        for id in ["a", "b", "x"] {
            l.acknowledged("u", id);
        }
        let first = view(&[
            ("INBOX", mailbox(7, 3, 5, &[(1, "a"), (2, "b")])),
            ("Copies", mailbox(9, 2, 2, &[(1, "x")])),
        ]);
        assert!(l.check("u", &first, &["INBOX", "Copies"], &["INBOX"]).is_empty());
        let broken = view(&[("INBOX", mailbox(8, 2, 4, &[(1, "b"), (2, "a")]))]);
        let v: Vec<String> = l
            .check("u", &broken, &["INBOX"], &["INBOX"])
            .into_iter()
            .map(|v| v.0)
            .collect();
        for needle in [
            "UIDVALIDITY changed",
            "UIDNEXT went down",
            "HIGHESTMODSEQ went down",
            "UID 1 was a",
            "UID 2 is not below",
        ] {
            assert!(v.iter().any(|t| t.contains(needle)), "{needle}: {v:?}");
        }
        assert!(v.iter().any(|t| t.contains("x (Present) is there 0 times")), "{v:?}");
    }
}
