//! What one IMAP session has been told about the mailboxes it works on, for the shared mode
//! of `mixed`, where many sessions change the same mailboxes at once and no model can say
//! what a mailbox holds. A `SessionView` is handed the start of each command, every untagged
//! response in the order it came, and the tagged end, and holds the server to the rules that
//! stand whatever the other sessions do:
//!
//! - a keyword is listed in the last `* FLAGS` before a FETCH shows it (RFC 3501 §7.2.6,
//!   RFC 9051 §7.3.5);
//! - `\Recent` is shown in one session only (RFC 3501 §2.3.2): every read-write sighting is
//!   claimed in the `RecentClaims` all views of a run share; and a session is shown no more
//!   `\Recent` messages than `* n RECENT` counts, nor at SELECT more than EXISTS (§7.3.2);
//! - the message count moves only by EXISTS, never down, and by EXPUNGE and VANISHED
//!   (RFC 9051 §7.4.1, §7.5.1, RFC 7162 §3.2.10): EXPUNGE n and FETCH n name messages the
//!   session knows of, VANISHED only UIDs it knows of, and neither comes during a FETCH,
//!   STORE or SEARCH by sequence number; a sequence number keeps its UID until an expunge
//!   moves it, and UIDs ascend with sequence numbers (RFC 9051 §2.3.1.1);
//! - a message's MODSEQ never goes down and its flags never change without a new one
//!   (RFC 7162 §3.1.1); HIGHESTMODSEQ never goes down within a selection (§3.1.2.1);
//! - UIDNEXT (SELECT's, STATUS's) is above every UID the session has seen in that mailbox
//!   and never goes down; the messages SELECT counts lie below its UIDNEXT and the ones
//!   announced later do not (RFC 9051 §2.3.1.1); UIDVALIDITY does not change (nothing in the
//!   scenario deletes a mailbox).
//!
//! A tagged NO is no violation: a STORE or FETCH of a message another session expunged may
//! fail (RFC 9051 §7.5.1), or succeed showing nothing. What the session knows of a mailbox
//! (UIDVALIDITY, UIDNEXT, the highest UID, each message's MODSEQ) outlives a selection and a
//! reconnection; the selection's sequence numbers and `\Recent` do not. Server-free and
//! clock-free: each call returns the first violation it finds, and the caller selects the
//! mailbox again after one, so a fault is counted once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::model::Flags;
use crate::response::{Code, Status, Untagged};

mod messages;
mod violation;
pub use violation::Violation;

pub type Checked = Result<(), Violation>;

/// Which session was first shown each message as `\Recent`, across every session of a run:
/// by mailbox (`user/name`), then by (UIDVALIDITY, UID).
#[derive(Debug, Default)]
pub struct RecentClaims(Mutex<HashMap<String, ClaimsIn>>);

/// One mailbox's claims: the session first shown each (UIDVALIDITY, UID) as `\Recent`.
type ClaimsIn = HashMap<(u32, u32), u64>;

impl RecentClaims {
    /// Records that `session` was shown `uid` of `mailbox` (`user/name`) as `\Recent`; the
    /// other session that was shown it before, if one was.
    pub fn claim(&self, mailbox: &str, uid_validity: u32, uid: u32, session: u64) -> Option<u64> {
        // A poisoned lock only means another client panicked; its claims are still sound.
        let mut claims = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !claims.contains_key(mailbox) {
            claims.insert(mailbox.to_owned(), HashMap::new());
        }
        let by_uid = claims.get_mut(mailbox).expect("inserted above");
        let first = *by_uid.entry((uid_validity, uid)).or_insert(session);
        (first != session).then_some(first)
    }

    /// The messages claimed so far.
    pub fn len(&self) -> usize {
        let claims = self.0.lock().unwrap_or_else(|e| e.into_inner());
        claims.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The command whose responses follow: what it lets the server say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// SELECT (`read_only`: EXAMINE) of a mailbox: the responses describe it.
    Select { mailbox: String, read_only: bool },
    /// FETCH, STORE or SEARCH by sequence number: no EXPUNGE or VANISHED may come
    /// (RFC 9051 §7.5.1; RFC 7162 §3.2.10 puts VANISHED under the same rule).
    BySequence,
    /// APPEND to a mailbox: its APPENDUID names a UID there (RFC 4315 §3).
    Append { mailbox: String },
    /// COPY or MOVE to a mailbox: its COPYUID names UIDs there (RFC 4315 §3, RFC 6851 §4.3).
    Copy { mailbox: String },
    /// Anything else: the UID commands, EXPUNGE, NOOP, IDLE, STATUS.
    Other,
}

/// What the session knows of one mailbox, across selections and connections.
#[derive(Debug, Clone)]
struct Known {
    uid_validity: u32,
    /// The highest UIDNEXT reported.
    uid_next: u32,
    /// The highest UID seen: in a FETCH, an APPENDUID or a COPYUID.
    max_uid: u32,
    /// MESSAGES of the last STATUS (the mailbox's size when it is not selected).
    messages: Option<u32>,
    /// Each message's last MODSEQ, and the flags shown with it; only for the messages the
    /// mailbox held when the session last left it, so the memory stays as small as the
    /// mailbox while other sessions expunge unseen.
    modseqs: HashMap<u32, (u64, Option<Flags>)>,
}

/// One message of the selection, by sequence number.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    uid: Option<u32>,
    /// Shown with `\Recent`; claimed as soon as its UID is known.
    recent: bool,
    /// Announced after the SELECT completed: its UID is at least SELECT's UIDNEXT.
    later: bool,
}

#[derive(Debug, Clone)]
struct Selection {
    /// `user/name`.
    mailbox: String,
    read_only: bool,
    /// Set once the SELECT completed.
    open: bool,
    uid_validity: Option<u32>,
    /// SELECT's UIDNEXT.
    uid_next: Option<u32>,
    messages: Vec<Slot>,
    /// The keywords of the last `* FLAGS`, lowercased; `None` before the first.
    keywords: Option<HashSet<String>>,
    highest_modseq: Option<u64>,
    /// The last `* n RECENT`.
    recent: Option<u32>,
}

/// One session's view; see the module documentation.
#[derive(Debug)]
pub struct SessionView {
    user: String,
    session: u64,
    claims: Arc<RecentClaims>,
    command: Command,
    selected: Option<Selection>,
    /// By `user/name`.
    mailboxes: HashMap<String, Known>,
    /// Untagged responses checked, by what they were (`Checks`).
    checked: BTreeMap<&'static str, u64>,
}

impl SessionView {
    /// The view of session `session` (unique within the run) logged in as `user`.
    pub fn new(user: &str, session: u64, claims: Arc<RecentClaims>) -> SessionView {
        SessionView {
            user: user.to_owned(),
            session,
            claims,
            command: Command::Other,
            selected: None,
            mailboxes: HashMap::new(),
            checked: BTreeMap::new(),
        }
    }

    /// The same user on a new connection, session `session`: nothing is selected, and no
    /// `\Recent` the old session claimed may show again; what was learnt of each mailbox
    /// still holds.
    pub fn reconnected(&mut self, session: u64) {
        self.leave();
        self.session = session;
        self.command = Command::Other;
    }

    /// Deselects: what is kept of the mailbox's MODSEQs is what it held as last seen.
    fn leave(&mut self) {
        let Some(sel) = self.selected.take() else { return };
        if let Some(known) = self.mailboxes.get_mut(&sel.mailbox) {
            let present: HashSet<u32> = sel.messages.iter().filter_map(|m| m.uid).collect();
            known.modseqs.retain(|uid, _| present.contains(uid));
        }
    }

    /// Untagged responses checked so far, by what they were: `responses` in all, and
    /// EXISTS, EXPUNGE, VANISHED, FLAGS, RECENT, STATUS, FETCH, the FETCHes with a keyword,
    /// with `\Recent` and with MODSEQ, and the HIGHESTMODSEQ, UIDNEXT, APPENDUID and COPYUID
    /// codes (the tagged ones too), so a run can show that every rule met its case.
    pub fn checked(&self) -> &BTreeMap<&'static str, u64> {
        &self.checked
    }

    fn count(&mut self, what: &'static str) {
        *self.checked.entry(what).or_default() += 1;
    }

    /// Counts `response` under what it is.
    fn count_response(&mut self, response: &Untagged) {
        self.count("responses");
        let what = match response {
            Untagged::Exists(_) => "EXISTS",
            Untagged::Expunge(_) => "EXPUNGE",
            Untagged::Vanished { earlier: false, .. } => "VANISHED",
            Untagged::Recent(_) => "RECENT",
            Untagged::Flags(_) => "FLAGS",
            Untagged::Status { .. } => "STATUS",
            Untagged::Fetch(f) => {
                if f.flags.as_ref().is_some_and(|flags| flags.keywords().next().is_some()) {
                    self.count("FETCH with a keyword");
                }
                if f.recent {
                    self.count("FETCH with \\Recent");
                }
                if f.modseq.is_some() {
                    self.count("FETCH with MODSEQ");
                }
                "FETCH"
            }
            Untagged::Condition { code: Some(code), .. } => return self.count_code(code),
            _ => return,
        };
        self.count(what);
    }

    fn count_code(&mut self, code: &Code) {
        match code {
            Code::HighestModSeq(_) => self.count("HIGHESTMODSEQ"),
            Code::UidNext(_) => self.count("UIDNEXT"),
            Code::AppendUid { .. } => self.count("APPENDUID"),
            Code::CopyUid { .. } => self.count("COPYUID"),
            _ => {}
        }
    }

    /// The selected mailbox's name, once its SELECT completed.
    pub fn selected(&self) -> Option<&str> {
        let sel = self.selected.as_ref().filter(|s| s.open)?;
        Some(&sel.mailbox[self.user.len() + 1..])
    }

    /// Messages in the selected mailbox as the session knows it: the highest valid
    /// sequence number.
    pub fn len(&self) -> usize {
        self.selected.as_ref().map_or(0, |s| s.messages.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The UID at sequence number `seq`, if known.
    pub fn uid_at(&self, seq: usize) -> Option<u32> {
        self.selected.as_ref()?.messages.get(seq.checked_sub(1)?)?.uid
    }

    /// The first and last sequence numbers whose UID is not known yet.
    pub fn unknown_uids(&self) -> Option<(usize, usize)> {
        let messages = &self.selected.as_ref()?.messages;
        let first = messages.iter().position(|m| m.uid.is_none())?;
        let last = messages.iter().rposition(|m| m.uid.is_none())?;
        Some((first + 1, last + 1))
    }

    /// MESSAGES of the last STATUS of `mailbox`, if it was asked.
    pub fn status_messages(&self, mailbox: &str) -> Option<u32> {
        self.mailboxes.get(&self.key(mailbox))?.messages
    }

    fn key(&self, mailbox: &str) -> String {
        format!("{}/{mailbox}", self.user)
    }

    /// A command was sent; its responses follow.
    pub fn begin(&mut self, command: Command) {
        if let Command::Select { mailbox, read_only } = &command {
            // RFC 9051 §6.3.2: a SELECT deselects first, whether or not it succeeds.
            self.leave();
            self.selected = Some(Selection {
                mailbox: self.key(mailbox),
                read_only: *read_only,
                open: false,
                uid_validity: None,
                uid_next: None,
                messages: Vec::new(),
                keywords: None,
                highest_modseq: None,
                recent: None,
            });
        }
        self.command = command;
    }

    /// Applies and checks one untagged response of the command in progress.
    pub fn apply(&mut self, response: &Untagged) -> Checked {
        self.count_response(response);
        match response {
            Untagged::Exists(n) => self.exists(*n),
            Untagged::Expunge(seq) => self.expunge(*seq),
            Untagged::Vanished { earlier: false, uids } => self.vanished(uids),
            Untagged::Recent(n) => {
                if let Some(sel) = &mut self.selected {
                    sel.recent = Some(*n);
                }
                Ok(())
            }
            Untagged::Flags(names) => {
                if let Some(sel) = &mut self.selected {
                    let keywords = Flags::from_names(names);
                    sel.keywords = Some(keywords.keywords().map(str::to_owned).collect());
                }
                Ok(())
            }
            Untagged::Fetch(f) => self.fetch(f),
            Untagged::Status { mailbox, status } => self.status(mailbox, status),
            Untagged::Condition { code: Some(code), .. } => self.code(code),
            _ => Ok(()),
        }
    }

    /// Applies a command's untagged responses in order; stops at the first violation.
    pub fn apply_all(&mut self, responses: &[Untagged]) -> Checked {
        responses.iter().try_for_each(|r| self.apply(r))
    }

    /// The command completed (`ok`: with OK), its tagged reply carrying `code`.
    pub fn end(&mut self, ok: bool, code: Option<&Code>) -> Checked {
        let r = self.completed(ok, code);
        self.command = Command::Other;
        r
    }

    /// `end`, while the command that ends is still `self.command`: the tagged code
    /// (APPENDUID, COPYUID) belongs to it.
    fn completed(&mut self, ok: bool, code: Option<&Code>) -> Checked {
        if let Command::Select { .. } = self.command {
            if !ok {
                // RFC 9051 §6.3.2: a failed SELECT leaves nothing selected.
                self.selected = None;
                return Ok(());
            }
            self.opened()?;
        }
        if let Some(code) = code.filter(|_| ok) {
            self.count_code(code);
            self.code(code)?;
        }
        self.check_recent_count()
    }

    /// The SELECT completed: what it said of UIDVALIDITY and UIDNEXT must agree with what
    /// the session saw before.
    fn opened(&mut self) -> Checked {
        let Some(sel) = &mut self.selected else { return Ok(()) };
        sel.open = true;
        let (mailbox, uid_next, exists) = (sel.mailbox.clone(), sel.uid_next, sel.messages.len());
        if let Some(recent) = sel.recent.filter(|&r| r as usize > exists) {
            return Err(Violation::RecentCount {
                recent,
                shown: 0,
                exists,
            });
        }
        let (Some(uid_validity), Some(uid_next)) = (sel.uid_validity, uid_next) else {
            return Ok(());
        };
        self.uid_next(&mailbox, uid_validity, uid_next)
    }

    /// No more messages shown `\Recent` than RECENT counts. A RECENT the server did not
    /// update after an expunge only counts more, so the check holds either way.
    fn check_recent_count(&self) -> Checked {
        let Some(sel) = self.selected.as_ref().filter(|s| s.open) else {
            return Ok(());
        };
        let Some(recent) = sel.recent else { return Ok(()) };
        let shown = sel.messages.iter().filter(|m| m.recent).count();
        if shown > recent as usize {
            return Err(Violation::RecentCount {
                recent,
                shown,
                exists: sel.messages.len(),
            });
        }
        Ok(())
    }

    /// What the session knows of `mailbox` (`user/name`) under `uid_validity`; a changed
    /// UIDVALIDITY starts afresh, and is a violation.
    fn known(&mut self, mailbox: &str, uid_validity: u32) -> Result<&mut Known, Violation> {
        let fresh = Known {
            uid_validity,
            uid_next: 1,
            max_uid: 0,
            messages: None,
            modseqs: HashMap::new(),
        };
        let known = self
            .mailboxes
            .entry(mailbox.to_owned())
            .or_insert_with(|| fresh.clone());
        if known.uid_validity != uid_validity {
            let was = known.uid_validity;
            *known = fresh;
            return Err(Violation::UidValidity {
                mailbox: mailbox.to_owned(),
                was,
                seen: uid_validity,
            });
        }
        Ok(known)
    }

    /// A UIDNEXT reported for `mailbox`: above every UID seen there, and not below an
    /// earlier UIDNEXT.
    fn uid_next(&mut self, mailbox: &str, uid_validity: u32, uid_next: u32) -> Checked {
        let known = self.known(mailbox, uid_validity)?;
        let (was, max_uid) = (known.uid_next, known.max_uid);
        known.uid_next = known.uid_next.max(uid_next);
        if uid_next <= max_uid {
            return Err(Violation::UidNextNotAbove {
                mailbox: mailbox.to_owned(),
                uid_next,
                uid: max_uid,
            });
        }
        if uid_next < was {
            return Err(Violation::UidNextBack {
                mailbox: mailbox.to_owned(),
                was,
                seen: uid_next,
            });
        }
        Ok(())
    }

    /// UIDs seen in `mailbox`: in a FETCH, an APPENDUID or a COPYUID.
    fn saw_uids(&mut self, mailbox: &str, uid_validity: u32, uids: &[u32]) -> Checked {
        let known = self.known(mailbox, uid_validity)?;
        known.max_uid = uids.iter().fold(known.max_uid, |m, &u| m.max(u));
        Ok(())
    }

    fn code(&mut self, code: &Code) -> Checked {
        match code {
            Code::UidValidity(v) => {
                let Some(sel) = &mut self.selected else { return Ok(()) };
                sel.uid_validity = Some(*v);
                let mailbox = sel.mailbox.clone();
                self.known(&mailbox, *v).map(|_| ())
            }
            Code::UidNext(n) => {
                let Some(sel) = &mut self.selected else { return Ok(()) };
                if !sel.open {
                    // Checked when the SELECT completes, UIDVALIDITY known.
                    sel.uid_next = Some(*n);
                    return Ok(());
                }
                let (mailbox, v) = (sel.mailbox.clone(), sel.uid_validity);
                v.map_or(Ok(()), |v| self.uid_next(&mailbox, v, *n))
            }
            Code::HighestModSeq(h) => {
                let Some(sel) = &mut self.selected else { return Ok(()) };
                let was = sel.highest_modseq.replace(*h);
                match was {
                    Some(was) if *h < was => {
                        sel.highest_modseq = Some(was);
                        Err(Violation::HighestModSeqBack { was, seen: *h })
                    }
                    _ => Ok(()),
                }
            }
            Code::AppendUid { uid_validity, uids } | Code::CopyUid { uid_validity, uids } => {
                // Each names UIDs in the target of its own kind of command only.
                let mailbox = match (code, &self.command) {
                    (Code::AppendUid { .. }, Command::Append { mailbox })
                    | (Code::CopyUid { .. }, Command::Copy { mailbox }) => self.key(mailbox),
                    _ => return Ok(()),
                };
                self.saw_uids(&mailbox, *uid_validity, uids)
            }
            Code::Other(name) if name.eq_ignore_ascii_case("READ-ONLY") => {
                if let Some(sel) = &mut self.selected {
                    sel.read_only = true;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn status(&mut self, mailbox: &str, status: &Status) -> Checked {
        // UIDVALIDITY is an nz-number (RFC 9051 §9); Dovecot 2.3 answers STATUS of a Maildir
        // folder no session has opened yet with 0, meaning "not assigned yet": nothing to
        // hold the mailbox to.
        let Some(uid_validity) = status.uid_validity.filter(|v| *v != 0) else {
            return Ok(());
        };
        let key = self.key(mailbox);
        let known = self.known(&key, uid_validity)?;
        known.messages = status.messages;
        match status.uid_next {
            Some(n) => self.uid_next(&key, uid_validity, n),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
