//! One client of the shared mode: a logged-in session on a user's mailboxes that other
//! clients change at the same time, the view of what the server has told it, and the
//! operations it picks at random. Every command goes through the client's `Exchange`, which
//! times, remembers and parses its responses; `received` then hands each untagged response
//! to the view and counts what it finds.
//!
//! After a violation the view may be wrong about the mailbox, so before the next operation
//! the session selects it again and fetches its UIDs: each fault is counted once. Only I/O
//! failures, unparsable responses and a refused SELECT are errors.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use super::{Run, MAILBOXES};
use crate::client::imap::Response;
use crate::message::{generate, MessageSpec};
use crate::mixed::rng::Rng;
use crate::mixed::stats::{Cmd, Stats};
use crate::mixed::{connect, offers, Exchange, Reply};
use crate::model::Selected;
use crate::response::response_code;
use crate::view::{Checked, Command, SessionView};

/// The system flags STORE sets and clears (\Deleted is the expunge's).
const STORE_FLAGS: [&str; 4] = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft"];
/// The system flags APPEND may give a new message.
const APPEND_FLAGS: [&str; 2] = ["\\Seen", "\\Flagged"];
/// The most messages one STORE, EXPUNGE or MOVE names.
const MAX_PICK: usize = 4;

/// The operations a client picks from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Select,
    Fetch,
    UidFetch,
    Store,
    Keyword,
    Append,
    Expunge,
    Move,
    Noop,
    Idle,
    Status,
    Reconnect,
}

/// How often each operation is picked: weights out of their sum.
const OPS: [(Op, u32); 12] = [
    (Op::Select, 4),
    (Op::Fetch, 12),
    (Op::UidFetch, 10),
    (Op::Store, 14),
    (Op::Keyword, 12),
    (Op::Append, 14),
    (Op::Expunge, 8),
    (Op::Move, 8),
    (Op::Noop, 6),
    (Op::Idle, 6),
    (Op::Status, 5),
    (Op::Reconnect, 1),
];

/// How a client turns CONDSTORE on (RFC 7162 §3.1, §3.2.3), by its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condstore {
    Off,
    Enable,
    SelectParameter,
    /// `ENABLE QRESYNC`: CONDSTORE too, and expunges come as VANISHED.
    Qresync,
}

/// What the server offers that the operations use.
#[derive(Debug, Clone, Copy)]
struct Offers {
    uidplus: bool,
    moves: bool,
    idle: bool,
    literal_plus: bool,
    condstore: bool,
    qresync: bool,
}

impl Offers {
    fn of(capabilities: &[String]) -> Offers {
        Offers {
            uidplus: offers(capabilities, "UIDPLUS"),
            moves: offers(capabilities, "MOVE"),
            idle: offers(capabilities, "IDLE"),
            literal_plus: offers(capabilities, "LITERAL+"),
            condstore: offers(capabilities, "CONDSTORE"),
            qresync: offers(capabilities, "QRESYNC"),
        }
    }
}

pub(super) struct Session<'a> {
    run: &'a Run,
    exchange: Exchange<'a>,
    offers: Offers,
    condstore: Condstore,
    view: SessionView,
    rng: Rng,
    /// The view may be wrong: select the mailbox again before the next operation.
    resync: bool,
    /// The mailbox to select (again): the one selected.
    mailbox: &'static str,
    appended: u64,
}

impl<'a> Session<'a> {
    /// Logs in, turns CONDSTORE on as this client does, and selects INBOX (`run` created
    /// the other mailbox before any client started).
    pub fn open(run: &'a Run, number: usize, user: &str) -> anyhow::Result<Session<'a>> {
        let options = &run.options;
        let (imap, capabilities) = connect(&options.endpoint, user, &options.password)?;
        let offers = Offers::of(&capabilities);
        let condstore = match number % 4 {
            1 if offers.condstore => Condstore::Enable,
            2 if offers.condstore => Condstore::SelectParameter,
            3 if offers.qresync => Condstore::Qresync,
            _ => Condstore::Off,
        };
        let view = SessionView::new(user, run.next_session(), run.claims.clone());
        let mut session = Session {
            run,
            exchange: Exchange::new(imap, number, user, &run.control),
            offers,
            condstore,
            view,
            rng: Rng::new(options.seed, number),
            resync: false,
            mailbox: MAILBOXES[0],
            appended: 0,
        };
        session.enable()?;
        session.learn(MAILBOXES[0]).context("selecting INBOX")?;
        session.exchange.recording = true;
        Ok(session)
    }

    /// The figures, whether UIDPLUS was used, and the responses checked by what they were.
    pub fn into_results(self, elapsed: Duration) -> (Stats, bool, BTreeMap<&'static str, u64>) {
        let mut stats = self.exchange.stats;
        stats.elapsed = elapsed;
        (stats, self.offers.uidplus, self.view.checked().clone())
    }

    /// One operation, picked at random.
    pub fn step(&mut self) -> anyhow::Result<()> {
        if self.resync {
            self.learn(self.mailbox).context("selecting again")?;
        }
        let op = self.rng.weighted(&OPS);
        match op {
            Op::Select => self.select_either(),
            Op::Fetch => self.fetch(),
            Op::UidFetch => self.uid_fetch(),
            Op::Store => self.store(),
            Op::Keyword => self.keyword(),
            Op::Append => self.append(),
            Op::Expunge => self.expunge(),
            Op::Move => self.move_to_other(),
            Op::Noop => self.noop(),
            Op::Idle => self.idle(),
            Op::Status => self.status(),
            Op::Reconnect => self.reconnect(),
        }
        .with_context(|| format!("{op:?}"))?;
        self.exchange.stats.ops += 1;
        Ok(())
    }

    /// After the clock: select the mailbox again, fetch all of it, and LOG OUT.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        self.exchange.recording = false;
        self.learn(self.mailbox)?;
        // A polite end; the figures are already taken.
        let _ = self.exchange.imap.cmd("LOGOUT");
        Ok(())
    }

    /// Sends `command`, timed as `cmd`, and checks its responses as `view_command`'s.
    fn send(&mut self, cmd: Cmd, command: &str, view_command: Command) -> anyhow::Result<Reply> {
        let reply = self.exchange.send(cmd, command)?;
        self.check(view_command, &reply);
        Ok(reply)
    }

    /// The response to `command`, begun at `started`, through the exchange (see
    /// `Exchange::received`: a refusal is no fault, another client may have expunged what
    /// it named), then checked as `view_command`'s.
    fn received(
        &mut self,
        cmd: Option<Cmd>,
        command: &str,
        view_command: Command,
        started: Instant,
        response: Response,
    ) -> anyhow::Result<Reply> {
        let reply = self.exchange.received(cmd, command, started, response)?;
        self.check(view_command, &reply);
        Ok(reply)
    }

    /// Hands a reply to the view as `view_command`'s, and counts a violation it finds.
    fn check(&mut self, view_command: Command, reply: &Reply) {
        let code = response_code(reply.text.as_bytes()).ok().flatten();
        self.view.begin(view_command);
        let r = self
            .view
            .apply_all(&reply.untagged)
            .and_then(|()| self.view.end(reply.ok, code.as_ref()));
        self.checked(r);
    }

    /// Counts a violation (the first few of the run printed with the commands before them)
    /// and asks for the mailbox to be selected again.
    fn checked(&mut self, result: Checked) {
        let Err(e) = result else { return };
        self.exchange.fault(e.kind(), &e);
        self.resync = true;
    }

    /// ENABLE CONDSTORE or QRESYNC, as this client does.
    fn enable(&mut self) -> anyhow::Result<()> {
        let extension = match self.condstore {
            Condstore::Enable => "CONDSTORE",
            Condstore::Qresync => "QRESYNC",
            Condstore::Off | Condstore::SelectParameter => return Ok(()),
        };
        let command = format!("ENABLE {extension}");
        let started = Instant::now();
        let response = self.exchange.imap.cmd(&command).with_context(|| command.clone())?;
        self.received(None, &command, Command::Other, started, response)?;
        Ok(())
    }

    /// Whether FETCH asks for MODSEQ: once CONDSTORE is on.
    fn modseq(&self) -> bool {
        self.condstore != Condstore::Off
    }

    /// The other mailbox than the one selected.
    fn other(&self) -> &'static str {
        if self.mailbox == MAILBOXES[0] {
            MAILBOXES[1]
        } else {
            MAILBOXES[0]
        }
    }

    /// SELECT `mailbox` and `FETCH 1:* (UID FLAGS)`: every UID is known after.
    fn learn(&mut self, mailbox: &'static str) -> anyhow::Result<()> {
        self.resync = false;
        let parameter = if self.condstore == Condstore::SelectParameter {
            " (CONDSTORE)"
        } else {
            ""
        };
        let select = Command::Select {
            mailbox: mailbox.to_owned(),
            read_only: false,
        };
        let reply = self.send(Cmd::Select, &format!("SELECT {mailbox}{parameter}"), select)?;
        if !reply.ok {
            bail!("SELECT {mailbox} as {} refused", self.exchange.user);
        }
        Selected::from_responses(&reply.untagged).map_err(|missing| anyhow!("SELECT {mailbox} gave no {missing}"))?;
        self.mailbox = mailbox;
        if !self.view.is_empty() {
            let command = format!("FETCH 1:* ({})", self.items());
            self.send(Cmd::Sync, &command, Command::BySequence)?;
        }
        Ok(())
    }

    /// The FETCH items that show a message's state.
    fn items(&self) -> &'static str {
        if self.modseq() {
            "UID FLAGS MODSEQ"
        } else {
            "UID FLAGS"
        }
    }

    /// The same mailbox again (two times in three) or the other one.
    fn select_either(&mut self) -> anyhow::Result<()> {
        let mailbox = if self.rng.one_in(3) { self.other() } else { self.mailbox };
        self.learn(mailbox)
    }

    /// `FETCH s:e (UID FLAGS)`: the messages whose UIDs are not known yet, or a window.
    fn fetch(&mut self) -> anyhow::Result<()> {
        let n = self.view.len();
        if n == 0 {
            return self.append();
        }
        let (first, last) = match self.view.unknown_uids() {
            Some(unknown) => unknown,
            None => {
                let (a, b) = self.rng.window(n);
                (a + 1, b + 1)
            }
        };
        let command = format!("FETCH {first}:{last} ({})", self.items());
        self.send(Cmd::Fetch, &command, Command::BySequence)?;
        Ok(())
    }

    /// The known UIDs of the selected mailbox, ascending.
    fn known_uids(&self) -> Vec<u32> {
        (1..=self.view.len()).filter_map(|seq| self.view.uid_at(seq)).collect()
    }

    /// 1 to `MAX_PICK` random known UIDs (fewer if fewer are known), ascending, as a UID
    /// set. The count is drawn first, whether or not any UID is known.
    fn pick_uids(&mut self) -> Option<String> {
        let k = 1 + self.rng.below(MAX_PICK);
        let uids = self.known_uids();
        if uids.is_empty() {
            return None;
        }
        let picked = self.rng.positions(uids.len(), k);
        let set: Vec<String> = picked.iter().map(|&i| uids[i].to_string()).collect();
        Some(set.join(","))
    }

    /// `UID FETCH first:last (FLAGS)` (or `first:*`) over known UIDs.
    fn uid_fetch(&mut self) -> anyhow::Result<()> {
        let uids = self.known_uids();
        if uids.is_empty() {
            return self.fetch();
        }
        let (a, b) = self.rng.window(uids.len());
        let range = if b == uids.len() - 1 && self.rng.one_in(3) {
            format!("{}:*", uids[a])
        } else {
            format!("{}:{}", uids[a], uids[b])
        };
        let items = if self.modseq() { "FLAGS MODSEQ" } else { "FLAGS" };
        self.send(Cmd::UidFetch, &format!("UID FETCH {range} ({items})"), Command::Other)?;
        Ok(())
    }

    /// `UID STORE set ±FLAGS (system flags)`, or by sequence number one time in four.
    fn store(&mut self) -> anyhow::Result<()> {
        let n = self.view.len();
        if n == 0 {
            return self.append();
        }
        let names = self.rng.subset(&STORE_FLAGS, true).join(" ");
        let sign = if self.rng.one_in(2) { '+' } else { '-' };
        if self.rng.one_in(4) {
            let k = 1 + self.rng.below(MAX_PICK);
            let seqs: Vec<String> = self.rng.positions(n, k).iter().map(|i| (i + 1).to_string()).collect();
            let command = format!("STORE {} {sign}FLAGS ({names})", seqs.join(","));
            self.send(Cmd::Store, &command, Command::BySequence)?;
            return Ok(());
        }
        let Some(set) = self.pick_uids() else {
            return self.fetch();
        };
        self.uid_store(&set, sign, &names)?;
        Ok(())
    }

    /// `UID STORE set ±FLAGS (names)`.
    fn uid_store(&mut self, set: &str, sign: char, names: &str) -> anyhow::Result<Reply> {
        self.send(
            Cmd::UidStore,
            &format!("UID STORE {set} {sign}FLAGS ({names})"),
            Command::Other,
        )
    }

    /// One or two of the run's keywords, each new to the mailbox the first time any client
    /// sets it.
    fn keywords(&mut self) -> String {
        let count = self.run.options.keywords;
        let mut names = vec![format!("$Label{}", self.rng.below(count))];
        if self.rng.one_in(3) {
            names.push(format!("$Label{}", self.rng.below(count)));
        }
        names.join(" ")
    }

    /// `UID STORE set +FLAGS ($LabelN ...)`, or `-FLAGS` one time in three.
    fn keyword(&mut self) -> anyhow::Result<()> {
        let Some(set) = self.pick_uids() else {
            return self.fetch();
        };
        let sign = if self.rng.one_in(3) { '-' } else { '+' };
        let names = self.keywords();
        self.uid_store(&set, sign, &names)?;
        Ok(())
    }

    /// APPEND a generated message, with random flags and sometimes keywords, to the selected
    /// mailbox (three times in four) or the other, while it holds fewer than
    /// `max_messages` as far as this client knows.
    fn append(&mut self) -> anyhow::Result<()> {
        let target = if self.rng.one_in(4) { self.other() } else { self.mailbox };
        let size = if target == self.mailbox {
            self.view.len()
        } else {
            self.view.status_messages(target).unwrap_or(0) as usize
        };
        if size >= self.run.options.max_messages {
            return self.expunge();
        }
        let mut flags = self.rng.subset(&APPEND_FLAGS, false);
        if self.rng.one_in(3) {
            flags.push(self.keywords());
        }
        let flags = flags.join(" ");
        self.appended += 1;
        let address = format!("{}@example.org", self.exchange.user);
        let message = generate(&MessageSpec {
            // Distinct per client and per message within a run.
            index: (self.exchange.number as u64) << 32 | self.appended,
            size: 300 + self.rng.below(1700),
            from: address.clone(),
            to: address,
        });
        let started = Instant::now();
        let imap = &mut self.exchange.imap;
        let (command, response) = if self.offers.literal_plus {
            // RFC 7888: no round trip for the literal.
            let command = format!("APPEND {target} ({flags}) {{{}+}}", message.len());
            (
                command,
                imap.append_nonsync(target, &flags, &message).context("APPEND")?,
            )
        } else {
            let command = format!("APPEND {target} ({flags}) {{{}}}", message.len());
            (command, imap.append(target, &flags, &message).context("APPEND")?)
        };
        let append = Command::Append {
            mailbox: target.to_owned(),
        };
        self.received(Some(Cmd::Append), &command, append, started, response)?;
        Ok(())
    }

    /// `UID STORE set +FLAGS (\Deleted)`, then `UID EXPUNGE set` (with UIDPLUS, half the
    /// time) or `EXPUNGE`, which takes every client's \Deleted messages.
    fn expunge(&mut self) -> anyhow::Result<()> {
        let Some(set) = self.pick_uids() else {
            return self.noop();
        };
        if !self.uid_store(&set, '+', "\\Deleted")?.ok {
            return Ok(());
        }
        if self.offers.uidplus && self.rng.one_in(2) {
            self.send(Cmd::UidExpunge, &format!("UID EXPUNGE {set}"), Command::Other)?;
        } else {
            self.send(Cmd::Expunge, "EXPUNGE", Command::Other)?;
        }
        Ok(())
    }

    /// `UID MOVE set <other mailbox>` (RFC 6851).
    fn move_to_other(&mut self) -> anyhow::Result<()> {
        if !self.offers.moves {
            return self.store();
        }
        let Some(set) = self.pick_uids() else {
            return self.noop();
        };
        let target = self.other();
        let copy = Command::Copy {
            mailbox: target.to_owned(),
        };
        self.send(Cmd::UidMove, &format!("UID MOVE {set} {target}"), copy)?;
        Ok(())
    }

    fn noop(&mut self) -> anyhow::Result<()> {
        self.send(Cmd::Noop, "NOOP", Command::Other)?;
        Ok(())
    }

    /// IDLE for 10 to 50 ms, then DONE (RFC 2177): whatever came meanwhile is checked in
    /// the order it came.
    fn idle(&mut self) -> anyhow::Result<()> {
        if !self.offers.idle {
            return self.noop();
        }
        let started = Instant::now();
        let imap = &mut self.exchange.imap;
        let tag = imap.tag();
        imap.t.send_line(&format!("{tag} IDLE")).context("IDLE")?;
        let mut before = Vec::new();
        loop {
            let line = imap.read_response_line().context("IDLE")?;
            if line.starts_with(b"+") {
                break;
            }
            if let Some(rest) = line.strip_prefix(format!("{tag} ").as_bytes()) {
                // Refused (or ended) before it began: no DONE to send.
                let response = Response::tagged(before, rest);
                self.received(Some(Cmd::Idle), "IDLE", Command::Other, started, response)?;
                return Ok(());
            }
            before.push(line);
        }
        std::thread::sleep(Duration::from_millis(10 + self.rng.below(41) as u64));
        let imap = &mut self.exchange.imap;
        imap.t.send_line("DONE").context("DONE")?;
        let mut response = imap.finish(&tag).context("IDLE")?;
        before.append(&mut response.untagged);
        response.untagged = before;
        self.received(Some(Cmd::Idle), "IDLE ... DONE", Command::Other, started, response)?;
        Ok(())
    }

    /// STATUS of the other mailbox: its UIDNEXT must be above every UID seen there.
    fn status(&mut self) -> anyhow::Result<()> {
        let other = self.other();
        let modseq = if self.offers.condstore { " HIGHESTMODSEQ" } else { "" };
        let command = format!("STATUS {other} (MESSAGES UIDNEXT UIDVALIDITY{modseq})");
        self.send(Cmd::Status, &command, Command::Other)?;
        Ok(())
    }

    /// LOGOUT, a new connection (a new session for `\Recent`), and SELECT again.
    fn reconnect(&mut self) -> anyhow::Result<()> {
        self.send(Cmd::Logout, "LOGOUT", Command::Other)?;
        let options = &self.run.options;
        self.exchange
            .reconnect(|user| Ok(connect(&options.endpoint, user, &options.password)?.0))?;
        self.view.reconnected(self.run.next_session());
        self.enable()?;
        self.learn(self.mailbox)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_is_picked_and_offers_are_read() {
        let mut rng = Rng::new(1, 0);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20_000 {
            seen.insert(format!("{:?}", rng.weighted(&OPS)));
        }
        assert_eq!(seen.len(), OPS.len());
        let offers = Offers::of(&["IMAP4rev1".into(), "CONDSTORE".into(), "MOVE".into()]);
        assert!(offers.condstore && offers.moves && !offers.qresync && !offers.uidplus);
    }
}
