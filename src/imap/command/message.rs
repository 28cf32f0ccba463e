//! What the commands on messages share: the writes they wait for (`WritePending`) and the
//! routing of each write's answer to its command's completion; resolving sequence sets;
//! flag-change reports (sync, QRESYNC) and keyword announcements.

use super::fetch::render as fetch;
use crate::imap::fault::{ok, Fault};
use crate::imap::limit::{self, Cut};
use crate::imap::session::{store_error, untagged, Action, Ctx, Enabled, Selected, Session, State};
use crate::imap::types::{SeqBound, SequenceSet};
use crate::imap::view::{MailRead, UidView};
use crate::store::records::{flags, Uid};
use crate::store::{MessageRecord, StoreError, WriteOutcome};

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

/// System flags a client may set, by name.
pub(crate) fn system_flag(name: &str) -> Option<u8> {
    const NAMES: [(&str, u8); 5] = [
        ("\\Seen", flags::SEEN),
        ("\\Answered", flags::ANSWERED),
        ("\\Flagged", flags::FLAGGED),
        ("\\Deleted", flags::DELETED),
        ("\\Draft", flags::DRAFT),
    ];
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, b)| *b)
}

/// Splits flags into system bits and keywords; `\Recent` is ignored (it cannot be set,
/// RFC 3501 §2.3.2); other backslash names are errors.
pub(crate) fn split_flags(list: &[String]) -> Result<(u8, Vec<String>), String> {
    let mut bits = 0;
    let mut keywords: Vec<String> = Vec::new();
    for f in list {
        if let Some(b) = system_flag(f) {
            bits |= b;
        } else if f.eq_ignore_ascii_case("\\Recent") {
        } else if f.starts_with('\\') {
            return Err(format!("unknown system flag {f}"));
        } else if f.len() > 255 {
            return Err("keyword too long".into());
        } else if !keywords.iter().any(|k| k.eq_ignore_ascii_case(f)) {
            keywords.push(f.clone());
        }
    }
    Ok((bits, keywords))
}

/// Message sequence numbers and UIDs a set names in `view` (RFC 9051 §9 seq-range semantics:
/// `a:b` equals `b:a`, `*` is the last message or largest UID).
pub(crate) fn resolve(set: &SequenceSet, view: &UidView, uid: bool, saved: &[Uid]) -> Result<Vec<(u32, Uid)>, String> {
    resolve_among(set, view, uid, saved, None)
}

/// `resolve`, narrowed to the UIDs `among` (ascending) when given: CHANGEDSINCE's changes are
/// looked up one by one instead of walking the whole view.
pub(crate) fn resolve_among(
    set: &SequenceSet,
    view: &UidView,
    uid: bool,
    saved: &[Uid],
    among: Option<&[Uid]>,
) -> Result<Vec<(u32, Uid)>, String> {
    let ranges: Vec<(u32, u32)> = match set {
        SequenceSet::Saved => {
            let kept = |u: &Uid| among.is_none_or(|among| among.binary_search(u).is_ok());
            let mut out: Vec<(u32, Uid)> = saved
                .iter()
                .filter(|u| kept(u))
                .filter_map(|u| Some((view.seq_of(*u)?, *u)))
                .collect();
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
    if let Some(among) = among {
        // A view's sequence numbers rise with its UIDs, so these stay in order.
        return Ok(among
            .iter()
            .filter_map(|&u| Some((view.seq_of(u)?, u)))
            .filter(|(seq, u)| within(if uid { *u } else { *seq }))
            .collect());
    }
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
pub(crate) fn flags_response(
    seq: u32,
    uid: Uid,
    record: &MessageRecord,
    recent: bool,
    shape: FlagsShape,
    out: &mut Vec<u8>,
) {
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
                let id = super::mailbox::mailbox_id(m.id);
                ok(out, &tag, &format!("[MAILBOXID ({id})] {command} completed"))
            }
            (WritePending::Simple { command, .. }, _) => ok(out, &tag, &format!("{command} completed")),
            (WritePending::Store { uid, silent, cut, .. }, WriteOutcome::Flags { changed, modified }) => {
                let State::Selected(user, sel) = &mut self.state else {
                    // Nothing but a command leaves the mailbox, and none ran since the write.
                    Fault::Internal("the mailbox was left during the command").write(&tag, out);
                    return Action::Continue;
                };
                let done = super::store::Done { uid, silent, cut };
                self.conn
                    .finish_store(user, sel, (&tag, done), (&changed, &modified), ctx, out);
            }
            (WritePending::Copy { is_move, cut, .. }, WriteOutcome::Copied { uid_validity, pairs }) => {
                self.finish_copy(&tag, (is_move, cut), (uid_validity, &pairs), ctx, out);
            }
            (WritePending::Expunge { command, cut, .. }, WriteOutcome::Expunged(_)) => {
                self.sync(ctx, out);
                limit::tagged_ok(out, &tag, cut, "", &format!("{command} completed"));
            }
            (WritePending::Close { .. }, _) => {
                self.state.unselect();
                ok(out, &tag, "CLOSE completed");
            }
            (WritePending::FetchSeen { cut, .. }, _) => self.conn.finish_fetch_seen(&tag, cut, out),
            (_, other) => {
                tracing::error!("unexpected store answer {other:?}");
                Fault::Internal("unexpected store answer").write(&tag, out);
            }
        }
        Action::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CHANGEDSINCE's narrowing gives what resolving the whole set and then keeping the
    /// changed UIDs gives, for UID and sequence-number sets, `*`, reversed ranges and `$`.
    #[test]
    fn resolving_among_changes_is_resolving_then_keeping_them() {
        use crate::imap::types::{SeqBound::*, SequenceSet};
        let uids: Vec<Uid> = [1, 2, 3, 5, 8, 9, 10, 20, 21, 22, 40].to_vec();
        let view = UidView::new(uids.clone(), 7);
        let sets = [
            SequenceSet::Ranges(vec![(Num(1), Star)]),
            SequenceSet::Ranges(vec![(Num(9), Num(3)), (Num(21), Num(21))]),
            SequenceSet::Ranges(vec![(Num(9), Num(3)), (Num(11), Num(11))]),
            SequenceSet::Ranges(vec![(Star, Num(6)), (Num(2), Num(2))]),
            SequenceSet::Saved,
        ];
        let saved = [40, 2, 9, 30];
        for among in [vec![], vec![2, 9], vec![1, 4, 10, 22, 40], uids.clone()] {
            for set in &sets {
                for uid in [true, false] {
                    let whole = resolve(set, &view, uid, &saved).map(|mut whole| {
                        whole.retain(|(_, u)| among.binary_search(u).is_ok());
                        whole
                    });
                    let narrowed = resolve_among(set, &view, uid, &saved, Some(&among));
                    assert_eq!(narrowed, whole, "{set:?} uid {uid} among {among:?}");
                }
            }
        }
        let bad = SequenceSet::Ranges(vec![(Num(1), Num(12))]);
        assert!(resolve_among(&bad, &view, false, &[], Some(&[1])).is_err());
    }

    #[test]
    fn flags_split() {
        let (bits, kw) = split_flags(&[
            "\\Seen".into(),
            "$Forwarded".into(),
            "\\recent".into(),
            "$forwarded".into(),
        ])
        .unwrap();
        assert_eq!((bits, kw), (flags::SEEN, vec!["$Forwarded".to_string()]));
        assert!(split_flags(&["\\Bogus".into()]).is_err());
    }
}
