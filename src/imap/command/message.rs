//! Message commands of the Selected state: STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE, CLOSE and
//! UNSELECT, with their UID forms; the dispatch of FETCH (`cmd_fetch`), SEARCH (`cmd_search`),
//! SORT and THREAD (`cmd_sort`); the answers to their store writes; and what they share:
//! resolving sequence sets, flag-change reports and keyword announcements.

use crate::imap::command::fetch::render as fetch;
use crate::imap::command::mailbox::split_flags;
use crate::imap::fault::{ok, Fault};
use crate::imap::limit::{self, Cut};
use crate::imap::search;
use crate::imap::session::{store_error, untagged, Action, Conn, Ctx, Enabled, Selected, Session, State, Step, User};
use crate::imap::types::{Qresync, SeqBound, SequenceSet, StoreMode};
use crate::imap::view::{vanished_since, MailRead, UidView};
use crate::store::records::{flags, FlagMode, Uid};
use crate::store::{Mailbox, MessageRecord, StoreError, WriteOp, WriteOutcome};

pub(crate) enum WritePending {
    /// CREATE, DELETE, RENAME, SUBSCRIBE, UNSELECT: OK or NO.
    Simple { tag: String, command: &'static str },
    Store {
        tag: String,
        uid: bool,
        silent: bool,
        cut: Option<Cut>,
    },
    Copy {
        tag: String,
        is_move: bool,
        cut: Option<Cut>,
    },
    Expunge {
        tag: String,
        command: &'static str,
        cut: Option<Cut>,
    },
    /// CLOSE: expunge silently, then leave the mailbox.
    Close { tag: String },
    /// A non-PEEK FETCH set \Seen; OK once that is durable.
    FetchSeen { tag: String, cut: Option<Cut> },
}

impl WritePending {
    /// The command's tag.
    pub(crate) fn tag(&self) -> &str {
        match self {
            WritePending::Simple { tag, .. }
            | WritePending::Store { tag, .. }
            | WritePending::Copy { tag, .. }
            | WritePending::Expunge { tag, .. }
            | WritePending::Close { tag }
            | WritePending::FetchSeen { tag, .. } => tag,
        }
    }
}

/// Message sequence numbers and UIDs a set names in `view` (RFC 9051 §9 seq-range semantics:
/// `a:b` equals `b:a`, `*` is the last message or largest UID).
pub(crate) fn resolve(set: &SequenceSet, view: &UidView, uid: bool, saved: &[Uid]) -> Result<Vec<(u32, Uid)>, String> {
    let ranges: Vec<(u32, u32)> = match set {
        SequenceSet::Saved => {
            let mut out: Vec<(u32, Uid)> = saved.iter().filter_map(|u| Some((view.seq_of(*u)?, *u))).collect();
            out.sort_unstable();
            return Ok(out);
        }
        SequenceSet::Ranges(r) => {
            let star = if uid { view.last().unwrap_or(0) } else { view.len() };
            let value = |b: SeqBound| match b {
                SeqBound::Num(n) => n,
                SeqBound::Star => star,
            };
            r.iter()
                .map(|(a, b)| {
                    let (a, b) = (value(*a), value(*b));
                    (a.min(b), a.max(b))
                })
                .collect()
        }
    };
    if !uid {
        if let Some(bad) = ranges.iter().find(|(_, hi)| *hi > view.len() || *hi == 0) {
            if !(view.is_empty() && bad.1 == 0) {
                return Err("invalid message sequence number".into());
            }
        }
    }
    let within = |n: u32| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&n));
    Ok(view
        .iter()
        .enumerate()
        .map(|(i, u)| (i as u32 + 1, u))
        .filter(|(seq, u)| within(if uid { *u } else { *seq }))
        .collect())
}

/// `* n FETCH (FLAGS (...) UID u)` for every message of the session's view changed after
/// modseq `known`: those `touched` names where the session's core logged them, else those the
/// store's modseq index lists. Their UIDs go to `changed` when given (for RFC 5267 contexts
/// to re-evaluate).
pub(crate) fn report_flag_changes(
    store: &dyn MailRead,
    sel: &mut Selected,
    (enabled, (known, touched)): (Enabled, (u64, Option<Vec<Uid>>)),
    mut changed: Option<&mut Vec<Uid>>,
    out: &mut Vec<u8>,
) {
    let shape = FlagsShape {
        with_uid: true,
        condstore: enabled.condstore,
        uid_only: enabled.uid_only,
    };
    let uids = match touched.map_or_else(|| store.changed_since(sel.mailbox, known), Ok) {
        Ok(uids) => uids,
        Err(e) => {
            tracing::error!("flag changes: {e}");
            return;
        }
    };
    for uid in uids {
        let Some(seq) = sel.view.seq_of(uid) else {
            continue;
        };
        let record = match store.message(sel.mailbox, uid) {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!("flag changes: {e}");
                return;
            }
        };
        if let Some(changed) = changed.as_deref_mut() {
            changed.push(uid);
        }
        announce_keywords(sel, &record.keywords, out);
        flags_response(seq, uid, &record, sel.recent.contains(uid), shape, out);
    }
}

/// `* FLAGS` and `* OK [PERMANENTFLAGS]` with every keyword this client knows of.
pub(crate) fn flags_responses(keywords: &[String], read_only: bool, out: &mut Vec<u8>) {
    let kw: String = keywords.iter().map(|k| format!(" {k}")).collect();
    untagged(
        out,
        &format!("FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft{kw})"),
    );
    let permanent = if read_only {
        String::new()
    } else {
        format!("\\Answered \\Flagged \\Deleted \\Seen \\Draft{kw} \\*")
    };
    untagged(out, &format!("OK [PERMANENTFLAGS ({permanent})] flags you can change"));
}

/// RFC 3501 §7.2.6, RFC 9051 §7.3.5: a client hears of a keyword in FLAGS before any FETCH
/// shows it, whoever set it and on whichever core.
pub(crate) fn announce_keywords(sel: &mut Selected, keywords: &[String], out: &mut Vec<u8>) {
    let mut grew = false;
    for k in keywords {
        if !sel.keywords.iter().any(|known| known.eq_ignore_ascii_case(k)) {
            std::rc::Rc::make_mut(&mut sel.keywords).push(k.clone());
            grew = true;
        }
    }
    if grew {
        flags_responses(&sel.keywords, sel.read_only, out);
    }
}

/// What a flags-only FETCH response carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlagsShape {
    /// `UID u` inside (UID commands, unsolicited updates).
    pub with_uid: bool,
    /// `MODSEQ (m)` inside (RFC 7162 §3.1.4.1).
    pub condstore: bool,
    /// RFC 9586 §3: `* u UIDFETCH (...)` in place of `* n FETCH (...)`.
    pub uid_only: bool,
}

/// `* seq FETCH (FLAGS (...) [UID u] [MODSEQ (m)])`, or `* uid UIDFETCH (FLAGS (...) [MODSEQ
/// (m)])` under UIDONLY, where the UID leads and is not repeated.
fn flags_response(seq: u32, uid: Uid, record: &MessageRecord, recent: bool, shape: FlagsShape, out: &mut Vec<u8>) {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"* ");
    if shape.uid_only {
        out.extend_from_slice(n.format(uid).as_bytes());
        out.extend_from_slice(b" UIDFETCH (FLAGS ");
    } else {
        out.extend_from_slice(n.format(seq).as_bytes());
        out.extend_from_slice(b" FETCH (FLAGS ");
    }
    fetch::flags_list(record, recent, out);
    let FlagsShape { condstore, .. } = shape;
    if shape.with_uid && !shape.uid_only {
        out.extend_from_slice(b" UID ");
        out.extend_from_slice(n.format(uid).as_bytes());
    }
    if condstore {
        // RFC 7162 §3.1.4.1: once CONDSTORE is on, every FETCH response carries MODSEQ.
        out.extend_from_slice(b" MODSEQ (");
        out.extend_from_slice(n.format(record.modseq).as_bytes());
        out.push(b')');
    }
    out.extend_from_slice(b")\r\n");
}

/// Whether `n` is in a set of UIDs or message numbers, with `*` meaning `star`; never in `$`.
pub(crate) fn in_set(set: &SequenceSet, n: u32, star: u32) -> bool {
    let SequenceSet::Ranges(ranges) = set else {
        return false;
    };
    let value = |b: SeqBound| match b {
        SeqBound::Num(x) => x,
        SeqBound::Star => star,
    };
    ranges.iter().any(|(a, b)| {
        let (a, b) = (value(*a), value(*b));
        (a.min(b)..=a.max(b)).contains(&n)
    })
}

/// RFC 7162 §3.2.5.1: what a resynchronising client missed since its modseq — the UIDs that
/// vanished (within its known UIDs) and the messages whose flags changed.
pub(crate) fn qresync_report(
    store: &dyn MailRead,
    (mailbox, sel): (&Mailbox, &mut Selected),
    q: &Qresync,
    uid_only: bool,
    out: &mut Vec<u8>,
) {
    let star = mailbox.uid_next.saturating_sub(1);
    let gone: Vec<Uid> = vanished_since(store, mailbox, q.mod_seq)
        .unwrap_or_default()
        .into_iter()
        .filter(|u| q.known_uids.as_ref().is_none_or(|k| in_set(k, *u, star)))
        .collect();
    if !gone.is_empty() {
        out.extend_from_slice(b"* VANISHED (EARLIER) ");
        search::sequence_set(&gone, out);
        out.extend_from_slice(b"\r\n");
    }
    // §3.2.5.1: the FETCHes carry MODSEQ whether or not CONDSTORE was named.
    let enabled = Enabled {
        condstore: true,
        uid_only,
        ..Enabled::default()
    };
    report_flag_changes(store, sel, (enabled, (q.mod_seq, None)), None, out);
}

impl Conn {
    /// CLOSE: the \Deleted messages go, silently (RFC 9051 §6.4.1), then the session leaves
    /// the mailbox. `None` when there is nothing to write (EXAMINE): the client has its OK.
    pub(crate) fn close(&mut self, sel: &Selected, tag: String, ctx: &Ctx<'_>, out: &mut Vec<u8>) -> Option<Action> {
        if sel.read_only {
            ok(out, &tag, "CLOSE completed");
            return None;
        }
        let uids = deleted_uids(sel, ctx.store, None);
        self.step = Step::Write(WritePending::Close { tag });
        Some(Action::Write(WriteOp::Expunge {
            mailbox: sel.mailbox,
            uids,
        }))
    }

    #[allow(clippy::too_many_arguments)] // one EXPUNGE command's parts
    pub(crate) fn expunge(
        &mut self,
        user: &User,
        sel: &Selected,
        tag: String,
        set: Option<SequenceSet>,
        command: &'static str,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        if sel.read_only {
            Fault::read_only().write(&tag, out);
            return Action::Continue;
        }
        let targets = match set.map(|s| resolve(&s, &sel.view, true, &sel.saved)).transpose() {
            Ok(t) => t,
            Err(why) => {
                Fault::bad(why).write(&tag, out);
                return Action::Continue;
            }
        };
        let mut uids = deleted_uids(sel, ctx.store, targets.as_deref());
        // RFC 9738 §3.1: UID EXPUNGE counts the messages it removes; EXPUNGE is never limited.
        let limit = targets.as_ref().and(self.message_limit(user).processing());
        let cut = limit::cut(&mut uids, limit, |u| u);
        self.step = Step::Write(WritePending::Expunge { tag, command, cut });
        Action::Write(WriteOp::Expunge {
            mailbox: sel.mailbox,
            uids,
        })
    }

    #[allow(clippy::too_many_arguments)] // one STORE command's parts
    pub(crate) fn store(
        &mut self,
        user: &User,
        sel: &Selected,
        (tag, uid): (String, bool),
        set: &SequenceSet,
        (mode, silent, flag_names): (StoreMode, bool, &[String]),
        unchanged_since: Option<u64>,
        out: &mut Vec<u8>,
    ) -> Action {
        if sel.read_only {
            Fault::read_only().write(&tag, out);
            return Action::Continue;
        }
        let mut targets = match resolve(set, &sel.view, uid, &sel.saved) {
            Ok(t) => t,
            Err(why) => {
                Fault::bad(why).write(&tag, out);
                return Action::Continue;
            }
        };
        let cut = limit::cut(&mut targets, self.message_limit(user).processing(), |(_, u)| u);
        let (bits, keywords) = match split_flags(flag_names) {
            Ok(f) => f,
            Err(why) => {
                Fault::bad(why).write(&tag, out);
                return Action::Continue;
            }
        };
        let mode = match mode {
            StoreMode::Replace => FlagMode::Replace,
            StoreMode::Add => FlagMode::Add,
            StoreMode::Remove => FlagMode::Remove,
        };
        self.step = Step::Write(WritePending::Store { tag, uid, silent, cut });
        Action::Write(WriteOp::StoreFlags {
            mailbox: sel.mailbox,
            uids: targets.into_iter().map(|(_, u)| u).collect(),
            mode,
            flags: bits,
            keywords,
            unchanged_since,
        })
    }

    /// COPY, or MOVE when `is_move`.
    #[allow(clippy::too_many_arguments)] // one COPY/MOVE command's parts
    pub(crate) fn copy(
        &mut self,
        user: &User,
        sel: &Selected,
        (tag, uid): (String, bool),
        set: &SequenceSet,
        target: &str,
        is_move: bool,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        if is_move && sel.read_only {
            Fault::read_only().write(&tag, out);
            return Action::Continue;
        }
        // UID COPY/MOVE acts on the mailbox as it is now: a UID that arrived since this
        // client was last told (an iOS client acts on IDLE's EXISTS before it FETCHes) is
        // found, and a UID that does not exist is ignored (RFC 9051 §6.4.9).
        let current = match (uid, ctx.store.mailbox_by_id(sel.mailbox)) {
            (true, Ok(Some(mailbox))) => ctx.views.current(ctx.store, &mailbox).ok(),
            _ => None,
        };
        let mut targets = match resolve(set, current.as_ref().unwrap_or(&sel.view), uid, &sel.saved) {
            Ok(t) => t,
            Err(why) => {
                Fault::bad(why).write(&tag, out);
                return Action::Continue;
            }
        };
        let from = sel.mailbox;
        // RFC 9738 §3.1: MOVE is done in part, from the highest UID down; COPY is atomic
        // (RFC 9051 §6.4.7), so it is done whole or not at all.
        let limits = self.message_limit(user);
        let cut = if is_move {
            let cut = limit::cut(&mut targets, limits.processing(), |(_, u)| u);
            // One transaction moves them all; ascending, COPYUID's two sets pair up as runs.
            targets.sort_unstable();
            cut
        } else if let Some(over) = limit::over(&targets, limits.saving(), |(_, u)| u) {
            let text = "too many messages to copy, nothing was copied";
            limit::refuse(out, &tag, over.limit, Some(over.lowest), text);
            return Action::Continue;
        } else {
            None
        };
        let Some(to) = Self::target_mailbox(user, &tag, target, ctx.store, out) else {
            return Action::Continue;
        };
        self.step = Step::Write(WritePending::Copy { tag, is_move, cut });
        Action::Write(WriteOp::Copy {
            from,
            uids: targets.into_iter().map(|(_, u)| u).collect(),
            to: to.id,
            expunge_source: is_move,
        })
    }
}

/// UIDs in the client's view carrying \Deleted (within `set` when given).
fn deleted_uids(sel: &Selected, store: &dyn MailRead, within: Option<&[(u32, Uid)]>) -> Vec<Uid> {
    let mut uids = Vec::new();
    let _ = store.each_message(sel.mailbox, &mut |uid, r| {
        let in_view = sel.view.seq_of(uid).is_some();
        let in_set = within.is_none_or(|w| w.iter().any(|(_, u)| *u == uid));
        if r.flags & flags::DELETED != 0 && in_view && in_set {
            uids.push(uid);
        }
    });
    uids
}

impl Session {
    pub(crate) fn finish_write(
        &mut self,
        pending: WritePending,
        result: Result<WriteOutcome, StoreError>,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        let tag = pending.tag().to_owned();
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                store_error(out, &tag, e);
                return Action::Continue;
            }
        };
        match (pending, outcome) {
            // RFC 8474 §4: CREATE tells the new mailbox's id.
            (WritePending::Simple { command, .. }, WriteOutcome::Mailbox(m)) => {
                let id = crate::imap::command::mailbox::mailbox_id(m.id);
                ok(out, &tag, &format!("[MAILBOXID ({id})] {command} completed"))
            }
            (WritePending::Simple { command, .. }, _) => ok(out, &tag, &format!("{command} completed")),
            (WritePending::Store { uid, silent, cut, .. }, WriteOutcome::Flags { changed, modified }) => {
                let State::Selected(user, sel) = &mut self.state else {
                    // Nothing but a command leaves the mailbox, and none ran since the write.
                    Fault::Internal("the mailbox was left during the command").write(&tag, out);
                    return Action::Continue;
                };
                let shape = FlagsShape {
                    with_uid: uid,
                    condstore: user.enabled.condstore,
                    uid_only: user.enabled.uid_only,
                };
                for c in &changed {
                    // A new keyword is announced even to a .SILENT STORE (RFC 3501 §7.2.6).
                    announce_keywords(sel, &c.keywords, out);
                    if silent {
                        continue;
                    }
                    if let Some(seq) = sel.view.seq_of(c.uid) {
                        let record = MessageRecord {
                            flags: c.flags,
                            keywords: c.keywords.clone(),
                            internal_date: 0,
                            save_date: 0,
                            size: 0,
                            modseq: c.modseq,
                            body_id: 0,
                        };
                        let recent = sel.recent.contains(c.uid);
                        flags_response(seq, c.uid, &record, recent, shape, out);
                    }
                }
                if !sel.contexts.is_empty() {
                    // RFC 5267 §4.3.2: updates may come during any command; these flag changes
                    // move no message numbers, so they need not wait for the next sync.
                    let mut uids: Vec<Uid> = changed
                        .iter()
                        .map(|c| c.uid)
                        .filter(|u| sel.view.seq_of(*u).is_some())
                        .collect();
                    uids.sort_unstable();
                    uids.dedup();
                    crate::imap::context::reevaluate(ctx.store, sel, ctx.now, &uids, out);
                }
                if modified.is_empty() {
                    let code = self.conn.highest_modseq_code();
                    let command = if uid { "UID STORE" } else { "STORE" };
                    limit::tagged_ok(out, &tag, cut, &code, &format!("{command} completed"));
                } else {
                    let mut set = Vec::new();
                    search::sequence_set(&modified, &mut set);
                    let code = format!("[MODIFIED {}] ", String::from_utf8_lossy(&set));
                    limit::tagged_ok(out, &tag, cut, &code, "conditional STORE failed");
                }
            }
            (WritePending::Copy { is_move, cut, .. }, WriteOutcome::Copied { uid_validity, pairs }) => {
                let (mut src, mut dst) = (Vec::new(), Vec::new());
                search::sequence_set(&pairs.iter().map(|p| p.0).collect::<Vec<_>>(), &mut src);
                search::sequence_set(&pairs.iter().map(|p| p.1).collect::<Vec<_>>(), &mut dst);
                let code = format!(
                    "COPYUID {uid_validity} {} {}",
                    String::from_utf8_lossy(&src),
                    String::from_utf8_lossy(&dst)
                );
                if is_move {
                    // RFC 6851 §4.3: COPYUID goes untagged, before the expunges.
                    if !pairs.is_empty() {
                        untagged(out, &format!("OK [{code}] moved"));
                    }
                    self.sync(ctx, out);
                    limit::tagged_ok(out, &tag, cut, "", "MOVE completed");
                } else {
                    self.sync(ctx, out);
                    let text = if pairs.is_empty() {
                        "COPY completed".to_string()
                    } else {
                        format!("[{code}] COPY completed")
                    };
                    ok(out, &tag, &text);
                }
            }
            (WritePending::Expunge { command, cut, .. }, WriteOutcome::Expunged(_)) => {
                self.sync(ctx, out);
                limit::tagged_ok(out, &tag, cut, "", &format!("{command} completed"));
            }
            (WritePending::Close { .. }, _) => {
                self.state.unselect();
                ok(out, &tag, "CLOSE completed");
            }
            (WritePending::FetchSeen { cut, .. }, _) => {
                let code = self.conn.highest_modseq_code();
                limit::tagged_ok(out, &tag, cut, &code, "FETCH completed");
            }
            (_, other) => {
                tracing::error!("unexpected store answer {other:?}");
                Fault::Internal("unexpected store answer").write(&tag, out);
            }
        }
        Action::Continue
    }
}
