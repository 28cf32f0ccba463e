//! One `mixed` client: a logged-in session on its own user's INBOX, the model of that
//! mailbox, and the operations it picks at random. Each operation sends its commands through
//! the client's `Exchange` (which times, remembers and parses them) and hands every response
//! to the model, which checks it.
//!
//! A NO or BAD, or an inconsistency, leaves the model unsure of the mailbox, so before the
//! next operation the session learns it again (SELECT and `FETCH 1:* (UID FLAGS)`): each
//! fault is counted once. Only I/O failures and unparsable responses are errors.

use std::time::Instant;

use anyhow::{anyhow, bail, Context};

use super::pick::{self, Op, Rng};
use super::Shared;
use loadtest::client::imap::Imap;
use loadtest::message::{generate, MessageSpec};
use loadtest::mixed::stats::{Cmd, Stats};
use loadtest::mixed::{self, Exchange, Reply};
use loadtest::model::{Checked, ExpungeScope, Flags, MailboxModel, SearchKey, Selected, StoreOp};
use loadtest::response::{response_code, Code, Untagged};

/// The flags STORE sets and clears.
const STORE_FLAGS: [&str; 4] = ["\\Seen", "\\Flagged", "\\Answered", "$Label"];
/// The flags APPEND may give a new message.
const APPEND_FLAGS: [&str; 3] = ["\\Seen", "\\Flagged", "$Label"];
const MAILBOX: &str = "INBOX";

pub struct Session<'a> {
    shared: &'a Shared,
    exchange: Exchange<'a>,
    uidplus: bool,
    model: MailboxModel,
    rng: Rng,
    /// The model is unsure of the mailbox: learn it again before the next operation.
    resync: bool,
    appended: u64,
}

impl<'a> Session<'a> {
    /// Logs in, SELECTs INBOX and learns it.
    pub fn open(shared: &'a Shared, number: usize, user: &str) -> anyhow::Result<Session<'a>> {
        let (imap, uidplus) = connect(shared, user)?;
        let mut session = Session {
            shared,
            exchange: Exchange::new(imap, number, user, &shared.control),
            uidplus,
            model: MailboxModel::from_sync(
                &Selected {
                    exists: 0,
                    uid_validity: 0,
                    uid_next: 1,
                },
                &[],
            )
            .expect("an empty mailbox is consistent"),
            rng: Rng::new(shared.args.seed, number),
            resync: false,
            appended: 0,
        };
        session.learn().context("learning INBOX")?;
        session.exchange.recording = true;
        Ok(session)
    }

    pub fn uidplus(&self) -> bool {
        self.uidplus
    }

    pub fn into_stats(self) -> Stats {
        self.exchange.stats
    }

    /// One operation, picked at random.
    pub fn step(&mut self) -> anyhow::Result<()> {
        if self.resync {
            self.learn().context("learning INBOX again")?;
        }
        let op = pick::op(&mut self.rng, !self.shared.args.no_reconnect);
        match op {
            Op::Select => self.select_again(),
            Op::FetchFlags => self.fetch_flags(),
            Op::FetchEnvelope => self.fetch_envelope(),
            Op::Store => self.store(),
            Op::Search => self.search(),
            Op::Append => self.append(),
            Op::Expunge => self.expunge(),
            Op::Noop => self.noop(),
            Op::Reconnect => self.reconnect(),
        }
        .with_context(|| format!("{op:?}"))?;
        self.exchange.stats.ops += 1;
        Ok(())
    }

    /// After the clock: SELECT again and fetch every message once more, then LOG OUT.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        self.exchange.recording = false;
        if self.resync {
            self.learn()?;
        }
        let selected = self.select()?;
        let r = self.model.reselect(&selected);
        if self.checked(r) && selected.exists > 0 {
            let reply = self.send(Cmd::Sync, "FETCH 1:* (UID FLAGS)")?;
            if reply.ok {
                let r = self.model.apply_all(&reply.untagged);
                let all: Vec<u32> = self.model.uids().collect();
                let r = r.and_then(|()| self.model.check_fetched(&all, &reply.untagged));
                self.checked(r);
            }
        }
        // A polite end; the figures are already taken.
        let _ = self.exchange.imap.cmd("LOGOUT");
        Ok(())
    }

    /// Sends `command` and reads its responses, timed as `cmd`; a NO or BAD leaves the
    /// model unsure of the mailbox.
    fn send(&mut self, cmd: Cmd, command: &str) -> anyhow::Result<Reply> {
        let reply = self.exchange.send(cmd, command)?;
        self.resync |= !reply.ok;
        Ok(reply)
    }

    /// Counts an inconsistency (the first few of the run printed with the commands before
    /// them) and asks for the mailbox to be learnt again. Whether `result` was consistent.
    fn checked(&mut self, result: Checked) -> bool {
        let Err(e) = result else { return true };
        self.exchange.fault(e.kind(), &e);
        self.resync = true;
        false
    }

    fn select(&mut self) -> anyhow::Result<Selected> {
        let reply = self.send(Cmd::Select, &format!("SELECT {MAILBOX}"))?;
        if !reply.ok {
            bail!("SELECT {MAILBOX} as {} refused: {}", self.exchange.user, reply.text);
        }
        Selected::from_responses(&reply.untagged).map_err(|missing| anyhow!("SELECT {MAILBOX} gave no {missing}"))
    }

    /// SELECT and `FETCH 1:* (UID FLAGS)`: the model starts again from what they say.
    fn learn(&mut self) -> anyhow::Result<()> {
        self.resync = false;
        let selected = self.select()?;
        let mut fetched = Vec::new();
        if selected.exists > 0 {
            let reply = self.send(Cmd::Sync, "FETCH 1:* (UID FLAGS)")?;
            if !reply.ok {
                bail!("FETCH 1:* (UID FLAGS) refused: {}", reply.text);
            }
            fetched = reply.untagged;
        }
        match MailboxModel::from_sync(&selected, &fetched) {
            Ok(model) => {
                self.model = model;
                Ok(())
            }
            Err(e) => {
                let kind = e.kind();
                self.checked(Err(e));
                bail!("cannot learn {MAILBOX}: the server's own view is inconsistent ({kind})")
            }
        }
    }

    fn select_again(&mut self) -> anyhow::Result<()> {
        let selected = self.select()?;
        let r = self.model.reselect(&selected);
        self.checked(r);
        Ok(())
    }

    /// `UID FETCH first:last (FLAGS)` (or `first:*`): the UIDs in the range, each with the
    /// flags the model expects.
    fn fetch_flags(&mut self) -> anyhow::Result<()> {
        let n = self.model.len();
        if n == 0 {
            return self.append();
        }
        let (a, b) = self.rng.window(n);
        let (Some(first), Some(last)) = (self.model.uid_at(a + 1), self.model.uid_at(b + 1)) else {
            return self.noop();
        };
        let last = if b == n - 1 && self.rng.one_in(3) {
            None
        } else {
            Some(last)
        };
        let range = match last {
            Some(last) if last == first => first.to_string(),
            Some(last) => format!("{first}:{last}"),
            None => format!("{first}:*"),
        };
        let reply = self.send(Cmd::UidFetch, &format!("UID FETCH {range} (FLAGS)"))?;
        if !reply.ok {
            return Ok(());
        }
        let r = self.model.apply_all(&reply.untagged).and_then(|()| {
            let expected = self.model.uids_in(first, last);
            self.model.check_fetched(&expected, &reply.untagged)
        });
        self.checked(r);
        Ok(())
    }

    /// `FETCH s:e (UID FLAGS ENVELOPE)`: each sequence number's UID, flags and Message-ID.
    fn fetch_envelope(&mut self) -> anyhow::Result<()> {
        let n = self.model.len();
        if n == 0 {
            return self.append();
        }
        let (a, b) = self.rng.window(n);
        let range = if a == b {
            (a + 1).to_string()
        } else {
            format!("{}:{}", a + 1, b + 1)
        };
        let reply = self.send(Cmd::Fetch, &format!("FETCH {range} (UID FLAGS ENVELOPE)"))?;
        if !reply.ok {
            return Ok(());
        }
        let r = self.model.apply_all(&reply.untagged).and_then(|()| {
            let expected: Vec<u32> = (a + 1..=b + 1).filter_map(|seq| self.model.uid_at(seq)).collect();
            self.model.check_fetched(&expected, &reply.untagged)
        });
        self.checked(r);
        Ok(())
    }

    /// `k` random UIDs of the mailbox, ascending, as a UID set.
    fn pick_uids(&mut self, k: usize) -> (Vec<u32>, String) {
        let n = self.model.len();
        let picked = self.rng.positions(n, k);
        let uids: Vec<u32> = picked.iter().filter_map(|&i| self.model.uid_at(i + 1)).collect();
        let set: Vec<String> = uids.iter().map(u32::to_string).collect();
        (uids, set.join(","))
    }

    /// `UID STORE set ±FLAGS (...)`; the FETCH responses must show the new flags.
    fn store(&mut self) -> anyhow::Result<()> {
        if self.model.is_empty() {
            return self.append();
        }
        let k = 1 + self.rng.below(5);
        let (uids, set) = self.pick_uids(k);
        let names = self.rng.subset(&STORE_FLAGS, true);
        let op = if self.rng.one_in(2) {
            StoreOp::Add
        } else {
            StoreOp::Remove
        };
        self.store_flags(&uids, &set, op, &names)?;
        Ok(())
    }

    /// Sends the STORE; whether it went through consistently.
    fn store_flags(&mut self, uids: &[u32], set: &str, op: StoreOp, names: &[String]) -> anyhow::Result<bool> {
        let sign = if op == StoreOp::Add { '+' } else { '-' };
        let command = format!("UID STORE {set} {sign}FLAGS ({})", names.join(" "));
        let reply = self.send(Cmd::UidStore, &command)?;
        if !reply.ok {
            return Ok(false);
        }
        self.model.store(uids, op, &Flags::from_names(names));
        let r = self.model.apply_all(&reply.untagged);
        Ok(self.checked(r))
    }

    /// `UID SEARCH <flag criterion>`: exactly the model's matches.
    fn search(&mut self) -> anyhow::Result<()> {
        let keys = [
            SearchKey::All,
            SearchKey::Seen,
            SearchKey::Unseen,
            SearchKey::Flagged,
            SearchKey::Unflagged,
            SearchKey::Answered,
            SearchKey::Unanswered,
            SearchKey::Deleted,
            SearchKey::Undeleted,
            SearchKey::Keyword("$Label".into()),
            SearchKey::Unkeyword("$Label".into()),
        ];
        let key = keys[self.rng.below(keys.len())].clone();
        let reply = self.send(Cmd::UidSearch, &format!("UID SEARCH {}", key.criterion()))?;
        if !reply.ok {
            return Ok(());
        }
        // RFC 9051 §7.3.1 (RFC 3501 §7.2.5): `* SEARCH` comes even when nothing matches.
        let result = reply.untagged.iter().find_map(|r| match r {
            Untagged::Search(uids) => Some(uids.as_slice()),
            _ => None,
        });
        let r = self
            .model
            .apply_all(&reply.untagged)
            .and_then(|()| self.model.check_search(&key, result.unwrap_or_default()));
        self.checked(r);
        Ok(())
    }

    /// APPEND a generated message with random flags while the mailbox is below
    /// `--max-messages`; its UID comes from APPENDUID, or is learnt by FETCH.
    fn append(&mut self) -> anyhow::Result<()> {
        if self.model.total() >= self.shared.args.max_messages {
            return self.expunge();
        }
        let names = self.rng.subset(&APPEND_FLAGS, false);
        self.appended += 1;
        let address = format!("{}@example.org", self.exchange.user);
        let message = generate(&MessageSpec {
            // Distinct per client and per message within a run.
            index: (self.exchange.number as u64) << 32 | self.appended,
            size: 500 + self.rng.below(3500),
            from: address.clone(),
            to: address,
        });
        let message_id = header(&message, "Message-ID");
        let flags = names.join(" ");
        let command = format!("APPEND {MAILBOX} ({flags}) {{{}}}", message.len());
        let started = Instant::now();
        let response = self
            .exchange
            .imap
            .append(MAILBOX, &flags, &message)
            .with_context(|| command.clone())?;
        let reply = self.exchange.received(Some(Cmd::Append), &command, started, response)?;
        if !reply.ok {
            self.resync = true;
            return Ok(());
        }
        let appenduid = match response_code(reply.text.as_bytes()) {
            Ok(Some(Code::AppendUid { uid_validity, uids })) if self.uidplus && uids.len() == 1 => {
                Some((uid_validity, uids[0]))
            }
            _ => None,
        };
        let r = self
            .model
            .appended(appenduid, Flags::from_names(&names), message_id)
            .and_then(|()| self.model.apply_all(&reply.untagged));
        if self.checked(r) && appenduid.is_none() {
            self.learn_uids()?;
        }
        Ok(())
    }

    /// Without APPENDUID: NOOP until the message is announced, then FETCH its UID.
    fn learn_uids(&mut self) -> anyhow::Result<()> {
        if self.model.pending() > 0 {
            let reply = self.send(Cmd::Noop, "NOOP")?;
            let r = self.model.apply_all(&reply.untagged);
            if !self.checked(r) {
                return Ok(());
            }
        }
        let seqs = self.model.unknown_uid_seqs();
        let (Some(first), Some(last)) = (seqs.first(), seqs.last()) else {
            return Ok(());
        };
        let reply = self.send(Cmd::Fetch, &format!("FETCH {first}:{last} (UID FLAGS)"))?;
        let r = self.model.apply_all(&reply.untagged);
        if self.checked(r) && (self.model.has_unknown_uids() || self.model.pending() > 0) {
            // Not announced, or no UID given: SELECT again shows the mailbox as it is.
            self.resync = true;
        }
        Ok(())
    }

    /// `UID STORE set +FLAGS (\Deleted)`, then `UID EXPUNGE set` (with UIDPLUS, half the
    /// time) or `EXPUNGE`: exactly the messages to go must go, in order.
    fn expunge(&mut self) -> anyhow::Result<()> {
        if self.model.is_empty() {
            return self.noop();
        }
        let k = 1 + self.rng.below(4);
        let (uids, set) = self.pick_uids(k);
        if !self.store_flags(&uids, &set, StoreOp::Add, &["\\Deleted".to_owned()])? {
            return Ok(());
        }
        let (cmd, command, scope) = if self.uidplus && self.rng.one_in(2) {
            let scope = ExpungeScope::Uids(uids.iter().copied().collect());
            (Cmd::UidExpunge, format!("UID EXPUNGE {set}"), scope)
        } else {
            (Cmd::Expunge, "EXPUNGE".to_owned(), ExpungeScope::Deleted)
        };
        let reply = self.send(cmd, &command)?;
        if !reply.ok {
            return Ok(());
        }
        self.model.begin_expunge(scope);
        let r = self
            .model
            .apply_all(&reply.untagged)
            .and_then(|()| self.model.end_expunge());
        self.checked(r);
        Ok(())
    }

    fn noop(&mut self) -> anyhow::Result<()> {
        let reply = self.send(Cmd::Noop, "NOOP")?;
        let r = self.model.apply_all(&reply.untagged);
        self.checked(r);
        Ok(())
    }

    /// LOGOUT, a new connection and login, and SELECT: the new session must see the same
    /// mailbox.
    fn reconnect(&mut self) -> anyhow::Result<()> {
        let reply = self.send(Cmd::Logout, "LOGOUT")?;
        if !reply
            .untagged
            .iter()
            .any(|r| matches!(r, Untagged::Condition { bye: true, .. }))
        {
            // RFC 9051 §6.1.3: BYE before the tagged OK.
            *self
                .exchange
                .stats
                .refused
                .entry("LOGOUT without BYE".into())
                .or_default() += 1;
        }
        let shared = self.shared;
        self.exchange.reconnect(|user| Ok(connect(shared, user)?.0))?;
        self.select_again()
    }
}

/// A logged-in connection, and whether the server offers UIDPLUS (RFC 4315) and the
/// harness may use it.
fn connect(shared: &Shared, user: &str) -> anyhow::Result<(Imap, bool)> {
    let (imap, capabilities) = mixed::connect(&shared.endpoint, user, &shared.args.password)?;
    let uidplus = mixed::offers(&capabilities, "UIDPLUS");
    Ok((imap, uidplus && !shared.args.no_uidplus))
}

/// The value of the first header field `name` in `message`.
fn header(message: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(message);
    let head = text.split("\r\n\r\n").next()?;
    head.lines().find_map(|line| {
        let (field, value) = line.split_once(':')?;
        field.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_of_a_generated_message() {
        let message = generate(&MessageSpec::new(5, 1000));
        let id = header(&message, "message-id").expect("a Message-ID");
        assert!(id.starts_with("<5.") && id.ends_with("@loadtest.invalid>"), "{id}");
        assert_eq!(header(b"Subject: x\r\n\r\nMessage-ID: <no>\r\n", "Message-ID"), None);
    }
}
