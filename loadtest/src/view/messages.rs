//! The selection's side of a session view: EXISTS, EXPUNGE, VANISHED and FETCH, which move
//! and name messages by sequence number, and what each message shows (its UID, keywords,
//! `\Recent` and MODSEQ). The map from sequence number to UID is partial: messages
//! announced by EXISTS are known by position until a FETCH gives their UID, and a UID learnt
//! must fit between its neighbours'.

use super::{Checked, Command, SessionView, Slot, Violation};
use crate::model::{neighbour_uids, Flags};
use crate::response::Fetch;

impl SessionView {
    /// EXISTS: never below the count the session knows (RFC 9051 §7.4.1: only EXPUNGE
    /// lowers it).
    pub(super) fn exists(&mut self, n: u32) -> Checked {
        let Some(sel) = &mut self.selected else { return Ok(()) };
        let known = sel.messages.len();
        if (n as usize) < known {
            return Err(Violation::ExistsShrank { known, seen: n });
        }
        let later = sel.open;
        sel.messages.resize(
            n as usize,
            Slot {
                later,
                ..Slot::default()
            },
        );
        Ok(())
    }

    /// Whether an expunge may be reported now (RFC 9051 §7.5.1).
    fn may_expunge(&self, what: String) -> Checked {
        if self.command == Command::BySequence {
            return Err(Violation::ExpungeDuringSequenceCommand { response: what });
        }
        Ok(())
    }

    pub(super) fn expunge(&mut self, seq: u32) -> Checked {
        self.may_expunge(format!("{seq} EXPUNGE"))?;
        let Some(sel) = &mut self.selected else {
            return Err(Violation::ExpungeUnknownSeq { seq, exists: 0 });
        };
        let exists = sel.messages.len();
        let Some(i) = (seq as usize).checked_sub(1).filter(|&i| i < exists) else {
            return Err(Violation::ExpungeUnknownSeq { seq, exists });
        };
        // RFC 9051 §7.5.1: the messages after it move down by one at once.
        let gone = sel.messages.remove(i);
        self.forget(gone.uid);
        Ok(())
    }

    /// RFC 7162 §3.2.10: VANISHED (without EARLIER) removes messages the session was told
    /// of, and each lowers the count by one. A UID whose position is not known yet takes
    /// the place of a message of unknown UID between its known neighbours.
    pub(super) fn vanished(&mut self, uids: &[u32]) -> Checked {
        self.may_expunge(format!("VANISHED {}", uids.len()))?;
        for &uid in uids {
            let Some(sel) = &mut self.selected else {
                return Err(Violation::VanishedUnknown { uid });
            };
            let messages = &mut sel.messages;
            let at = match messages.iter().position(|m| m.uid == Some(uid)) {
                Some(i) => Some(i),
                None => {
                    // UIDs ascend, so past the last known one below `uid` the next known
                    // one is above it: the gap between them is where `uid` must be.
                    let below = messages.iter().rposition(|m| m.uid.is_some_and(|u| u < uid));
                    let gap = below.map_or(0, |i| i + 1);
                    messages.get(gap).filter(|m| m.uid.is_none()).map(|_| gap)
                }
            };
            let Some(i) = at else {
                return Err(Violation::VanishedUnknown { uid });
            };
            messages.remove(i);
            self.forget(Some(uid));
        }
        Ok(())
    }

    /// An expunged message's MODSEQ is not kept (UIDs are never reused).
    fn forget(&mut self, uid: Option<u32>) {
        let (Some(uid), Some(sel)) = (uid, &self.selected) else {
            return;
        };
        if let Some(known) = self.mailboxes.get_mut(&sel.mailbox) {
            known.modseqs.remove(&uid);
        }
    }

    pub(super) fn fetch(&mut self, f: &Fetch) -> Checked {
        let Some(sel) = &mut self.selected else {
            return Err(Violation::FetchUnknownSeq { seq: f.seq, exists: 0 });
        };
        let exists = sel.messages.len();
        let Some(i) = (f.seq as usize).checked_sub(1).filter(|&i| i < exists) else {
            return Err(Violation::FetchUnknownSeq { seq: f.seq, exists });
        };
        if let Some(uid) = f.uid {
            if neighbour_uids(&sel.messages, |m| m.uid, i, uid)? {
                self.learn_uid(i, uid)?;
            }
        }
        let Some(sel) = &mut self.selected else { return Ok(()) };
        let uid = sel.messages[i].uid;
        if let Some(flags) = &f.flags {
            let announced = sel.keywords.as_ref();
            if let Some(keyword) = flags.keywords().find(|k| !announced.is_some_and(|a| a.contains(*k))) {
                return Err(Violation::KeywordNotAnnounced {
                    uid,
                    keyword: keyword.to_owned(),
                });
            }
        }
        // Claimed once per selection: the first sighting, or when the UID is learnt.
        if f.recent && !sel.messages[i].recent {
            sel.messages[i].recent = true;
            if let Some(uid) = uid {
                self.claim_recent(uid)?;
            }
        }
        match (uid, f.modseq) {
            (Some(uid), Some(modseq)) => self.modseq(uid, modseq, f.flags.as_ref()),
            _ => Ok(()),
        }
    }

    /// Takes `uid` for the message at index `i`, whose UID was not known (and which
    /// `neighbour_uids` found between its neighbours'): it must lie on the right side of
    /// SELECT's UIDNEXT.
    fn learn_uid(&mut self, i: usize, uid: u32) -> Checked {
        let Some(sel) = &mut self.selected else { return Ok(()) };
        let slot = sel.messages[i];
        if let Some(uid_next) = sel.uid_next {
            if slot.later && uid < uid_next {
                return Err(Violation::NewUidBelowUidNext { uid, uid_next });
            }
            if !slot.later && uid >= uid_next {
                return Err(Violation::UidNextNotAbove {
                    mailbox: sel.mailbox.clone(),
                    uid_next,
                    uid,
                });
            }
        }
        sel.messages[i].uid = Some(uid);
        let (mailbox, uid_validity) = (sel.mailbox.clone(), sel.uid_validity);
        if let Some(v) = uid_validity {
            self.saw_uids(&mailbox, v, &[uid])?;
        }
        if slot.recent {
            self.claim_recent(uid)?;
        }
        Ok(())
    }

    /// This session was shown `uid` of the selected mailbox as `\Recent`.
    fn claim_recent(&mut self, uid: u32) -> Checked {
        let Some(sel) = self.selected.as_ref().filter(|s| !s.read_only) else {
            // RFC 3501 §2.3.2: a read-only session may see \Recent without taking it.
            return Ok(());
        };
        let Some(uid_validity) = sel.uid_validity else {
            return Ok(());
        };
        match self.claims.claim(&sel.mailbox, uid_validity, uid, self.session) {
            Some(other) => Err(Violation::RecentTwice {
                mailbox: sel.mailbox.clone(),
                uid,
                session: self.session,
                other,
            }),
            None => Ok(()),
        }
    }

    /// A MODSEQ shown for `uid` with `flags`: never below the last, and the flags the same
    /// while it is the same.
    fn modseq(&mut self, uid: u32, modseq: u64, flags: Option<&Flags>) -> Checked {
        let Some(sel) = &self.selected else { return Ok(()) };
        let Some(known) = self.mailboxes.get_mut(&sel.mailbox) else {
            return Ok(());
        };
        let last = known.modseqs.get(&uid).cloned();
        let kept = match last {
            Some((was, _)) if modseq < was => return Err(Violation::ModSeqBack { uid, was, seen: modseq }),
            Some((was, Some(before))) if modseq == was => match flags {
                Some(now) if *now != before => {
                    return Err(Violation::FlagsWithoutModSeq {
                        uid,
                        modseq,
                        before,
                        now: now.clone(),
                    })
                }
                _ => Some(before),
            },
            _ => flags.cloned(),
        };
        known.modseqs.insert(uid, (modseq, kept));
        Ok(())
    }
}
