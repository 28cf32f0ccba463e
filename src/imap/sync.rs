//! Telling a session's client what changed: the selected mailbox (EXPUNGE or VANISHED, EXISTS,
//! RECENT, flag FETCHes, SEARCH/SORT context updates), NOTIFY's other mailboxes, and which
//! messages are `\Recent` in this session. IDLE (`command::idle`) waits for it.
//!
//! Work per change is proportional to the change: the session reads the changes after its own
//! position from what its core shares of the mailbox (`shared`), and only the records those
//! changes name. A session with nothing shared, or too far behind, compares its view with the
//! current one and finds flag changes in the store's modseq index.

use std::rc::Rc;

use super::session::{untagged, Ctx, Selected, Session, State, User};
use super::view::UidView;
use crate::store::recent::RecentClaims;
use crate::store::records::Uid;
use crate::store::{ChangeKind, Mailbox, StoreError};

/// UIDs that are \Recent in one session (RFC 3501 §2.3.2), as the ranges it was handed; one
/// range for most sessions, a few more for one that stays selected while mail arrives.
#[derive(Debug, Default)]
pub(crate) struct RecentUids(thin_vec::ThinVec<std::ops::Range<Uid>>);

impl RecentUids {
    pub fn contains(&self, uid: Uid) -> bool {
        self.0.iter().any(|r| r.contains(&uid))
    }

    fn add(&mut self, range: std::ops::Range<Uid>) {
        if range.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some(last) if last.end >= range.start && range.end >= last.start => {
                *last = last.start.min(range.start)..last.end.max(range.end);
            }
            _ => self.0.push(range),
        }
    }

    /// Learns which of the messages up to `view`'s newest are \Recent here: a read-write
    /// session claims them, so no other session gets them; a read-only one (EXAMINE) only
    /// looks at what nobody has claimed yet (RFC 3501 §6.3.2); an IMAP4rev2 session has no
    /// \Recent at all (RFC 9051).
    pub fn learn(&mut self, (read_only, rev2): (bool, bool), mailbox: &Mailbox, view: &UidView, claims: &RecentClaims) {
        if rev2 {
            return;
        }
        let upto = view.last().map_or(0, |u| u + 1);
        let range = if read_only {
            claims.first_unclaimed(mailbox.id, mailbox.first_recent_uid)..upto
        } else {
            claims.claim(mailbox.id, mailbox.first_recent_uid, upto)
        };
        self.add(range);
    }

    /// How many of `view`'s messages are \Recent here. The ranges never overlap (claims and
    /// the first unclaimed UID only move up, and `add` merges what touches the last range), so
    /// each message is counted once.
    pub fn count(&self, view: &UidView) -> usize {
        self.0
            .iter()
            .map(|r| (view.count_below(r.end) - view.count_below(r.start)) as usize)
            .sum()
    }
}

impl Session {
    /// Reports what changed in the selected mailbox since the client last heard, and moves the
    /// session to the current view. No FETCH, STORE or SEARCH calls it: EXPUNGE may not be sent
    /// during them (RFC 9051 §7.5.1).
    pub(crate) fn sync(&mut self, ctx: &mut Ctx<'_>, out: &mut Vec<u8>) {
        let Some((user, sel)) = self.state.logged_in() else {
            return;
        };
        let selected = sel.as_ref().map(|s| s.mailbox);
        if let Some(sel) = sel {
            if let Gone::Deleted = sync_selected(self.conn.notify.as_deref(), user, sel, Mode::Everything, ctx, out) {
                // RFC 9051 §6.3.5 allows closing the session's selection.
                untagged(out, "BYE selected mailbox was deleted");
                self.state = State::Logout;
                return;
            }
        }
        // RFC 5465: the other mailboxes a NOTIFY covers.
        self.conn.notify_sync(user, selected, ctx, out);
    }

    /// At the end of any other command, while a mailbox is selected: new messages are
    /// announced (RFC 9051 §5.2: size changes are sent without being asked for), with the flag
    /// changes known by then. Where expunges are waiting and the command's row does not allow
    /// telling them (`Spec::expunges`), everything waits for the next command that syncs (an
    /// EXISTS may not count messages the client has not heard are gone), as it does while
    /// RFC 5267 contexts are open.
    pub(crate) fn sync_growth(&mut self, expunges: bool, ctx: &mut Ctx<'_>, out: &mut Vec<u8>) {
        let Some((user, Some(sel))) = self.state.logged_in() else {
            return;
        };
        sync_selected(
            self.conn.notify.as_deref(),
            user,
            sel,
            Mode::Growth { expunges },
            ctx,
            out,
        );
    }
}

/// How much a sync tells.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Everything,
    /// Only when the mailbox grew, and then everything unless expunges are waiting that may
    /// not be told (`expunges`) or, where they may not, RFC 5267 contexts are open.
    Growth {
        expunges: bool,
    },
}

/// Whether the selected mailbox is still there.
enum Gone {
    No,
    Deleted,
}

fn sync_selected(
    notify: Option<&super::command::notify::Notifier>,
    user: &User,
    sel: &mut Selected,
    mode: Mode,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<u8>,
) -> Gone {
    let mailbox = match ctx.store.mailbox_by_id(sel.mailbox) {
        Ok(Some(m)) => m,
        // The next command that syncs ends the session.
        Ok(None) if matches!(mode, Mode::Growth { .. }) => return Gone::No,
        Ok(None) => return Gone::Deleted,
        Err(e) => {
            tracing::error!("sync: {e}");
            return Gone::No;
        }
    };
    if mailbox.highest_modseq == sel.known_modseq && mailbox.highest_modseq == sel.view.highest_modseq {
        return Gone::No;
    }
    let Delta { current, gone, touched } = match what_changed(sel, ctx, &mailbox) {
        Ok(delta) => delta,
        Err(e) => {
            tracing::error!("sync: {e}");
            return Gone::No;
        }
    };
    let grew = current
        .iter()
        .rev()
        .take_while(|u| sel.view.seq_of(*u).is_none())
        .count();
    if let Mode::Growth { expunges } = mode {
        // RFC 5267 contexts are updated only where EXPUNGE may be sent (docs/rfcs.md).
        if grew == 0 || (!expunges && (!gone.is_empty() || !sel.contexts.is_empty())) {
            return Gone::No;
        }
    }
    // RFC 9586 §3: UIDONLY reports expunges as VANISHED, as QRESYNC does.
    let vanished = user.enabled.qresync || user.enabled.uid_only;
    // RFC 5267 §4.3.4: REMOVEFROM while the client's numbers still hold.
    sel.contexts.expunged(&gone, &sel.view, out);
    report_expunges(&sel.view, &gone, vanished, out);
    let rev2 = user.enabled.imap4rev2;
    sel.recent.learn((sel.read_only, rev2), &mailbox, &current, ctx.recent);
    if grew > 0 || current.len() != sel.view.len() {
        untagged(out, &format!("{} EXISTS", current.len()));
        // RFC 9051 removed RECENT.
        if !rev2 {
            untagged(out, &format!("{} RECENT", sel.recent.count(&current)));
        }
    }
    let mut new: Vec<Uid> = current.iter().rev().take(grew).collect();
    new.reverse();
    let known = sel.known_modseq;
    sel.view = current;
    if let Some(attrs) = notify.and_then(|n| n.new_message_attrs()).filter(|_| grew > 0) {
        let form = super::command::fetch::FetchForm::new(attrs, true, user.enabled, true);
        super::command::notify::fetch_new(ctx.store, sel, &form, &new, out);
    }
    // RFC 5267 §4.3: what the contexts must look at again, new messages and changed flags.
    let mut changed = Vec::new();
    let collect = (!sel.contexts.is_empty()).then_some(&mut changed);
    if mailbox.highest_modseq > known {
        let changes = (known, touched);
        super::command::message::report_flag_changes(ctx.store, sel, (user.enabled, changes), collect, out);
    }
    if !sel.contexts.is_empty() {
        // §4.3.3: ADDTO after the EXISTS that numbers the new messages.
        changed.extend(&new);
        changed.sort_unstable();
        changed.dedup();
        super::context::reevaluate(ctx.store, sel, ctx.now, &changed, out);
    }
    sel.known_modseq = mailbox.highest_modseq;
    if let Some(cursor) = &mut sel.cursor {
        cursor.move_to(mailbox.highest_modseq);
    }
    Gone::No
}

/// What changed in the selected mailbox since the session's position.
struct Delta {
    /// The view now (at the snapshot's HIGHESTMODSEQ).
    current: Rc<UidView>,
    /// UIDs of the session's view that are gone, ascending.
    gone: Vec<Uid>,
    /// UIDs added or flagged since, ascending, where the core's shared log says; None where
    /// the store's modseq index must.
    touched: Option<Vec<Uid>>,
}

/// From the changes the session's core shares, after the session's position; where nothing
/// is shared or the session fell behind what the log keeps, by comparing views.
fn what_changed(sel: &Selected, ctx: &mut Ctx<'_>, mailbox: &Mailbox) -> Result<Delta, StoreError> {
    let (mut gone, mut touched) = (Vec::new(), Vec::new());
    let shared = sel.cursor.as_ref().and_then(|cursor| {
        cursor.changes(mailbox.highest_modseq, &mut |change| match change {
            ChangeKind::Expunged { uids } => gone.extend(uids.iter().filter(|u| sel.view.seq_of(**u).is_some())),
            ChangeKind::Added { uid } | ChangeKind::Flags { uid, .. } => touched.push(*uid),
            _ => {}
        })
    });
    if let Some(current) = shared {
        gone.sort_unstable();
        gone.dedup();
        touched.sort_unstable();
        touched.dedup();
        return Ok(Delta {
            current,
            gone,
            touched: Some(touched),
        });
    }
    let current = ctx.views.current(ctx.store, mailbox)?;
    let gone = sel.view.iter().filter(|u| current.seq_of(*u).is_none()).collect();
    Ok(Delta {
        current,
        gone,
        touched: None,
    })
}

/// `* n EXPUNGE` for every UID of `gone` (ascending, all in `old`), with sequence numbers as the
/// client sees them one expunge after another; `* VANISHED` when QRESYNC is on (RFC 7162 §3.2.10).
fn report_expunges(old: &UidView, gone: &[Uid], qresync: bool, out: &mut Vec<u8>) {
    if gone.is_empty() {
        return;
    }
    if qresync {
        let mut line = b"* VANISHED ".to_vec();
        super::search::sequence_set(gone, &mut line);
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
        return;
    }
    for (removed, uid) in (0u32..).zip(gone) {
        let Some(seq) = old.seq_of(*uid) else {
            debug_assert!(false, "expunged UIDs come from the old view");
            continue;
        };
        untagged(out, &format!("{} EXPUNGE", seq - removed));
    }
}

#[cfg(test)]
mod tests;
