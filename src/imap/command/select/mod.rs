//! SELECT and EXAMINE (RFC 9051 §6.3.2, §6.3.3), with CONDSTORE and QRESYNC's parameters
//! (RFC 7162): the session leaves any mailbox it had, then enters this one with the view its
//! core shares, told FLAGS, EXISTS, RECENT, UNSEEN, UIDVALIDITY, UIDNEXT, MAILBOXID,
//! HIGHESTMODSEQ and, for QRESYNC, what changed since the client's modseq.

pub(crate) mod parse;

use super::mailbox::mailbox_id;
use super::message::{flags_responses, in_set, report_flag_changes};
use crate::imap::command::{Spec, States};
use crate::imap::fault::{ok, Code, Fault};
use crate::imap::search;
use crate::imap::session::Enabled;
use crate::imap::session::{store_error, untagged, Action, Conn, Ctx, Selected, Session, State, User};
use crate::imap::sync::RecentUids;
use crate::imap::types::Command;
use crate::imap::types::{Qresync, SelectParams};
use crate::imap::view::{select_scan, vanished_since, MailRead};
use crate::store::records::Uid;
use crate::store::Mailbox;

/// The command table's rows (`command::COMMANDS`).
pub(crate) const SELECT: Spec = Spec {
    name: "SELECT",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.3.2",
    parse: |c| parse::select(c).map(|(mailbox, params)| Command::Select { mailbox, params }),
};

pub(crate) const EXAMINE: Spec = Spec {
    name: "EXAMINE",
    extension: None,
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.3.3",
    parse: |c| parse::select(c).map(|(mailbox, params)| Command::Examine { mailbox, params }),
};

impl Session {
    /// SELECT or EXAMINE (`read_only`). RFC 9051 §6.3.2: a SELECT, even a failing one, first
    /// leaves the current mailbox, and says so with [CLOSED] (RFC 7162 §3.2.11) so the client
    /// knows where responses belong.
    pub(crate) fn select(
        &mut self,
        tag: String,
        name: &str,
        read_only: bool,
        params: SelectParams,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        // The mailbox left stays open here until the new one is: when it is the same one, what
        // this core shares of it (`shared`) is not dropped and built again.
        let left = self.state.unselect();
        if left.is_some() {
            untagged(out, "OK [CLOSED] previous mailbox closed");
        }
        let State::Authenticated(user) = &mut self.state else {
            return Action::Continue;
        };
        if params.qresync.is_some() && !user.enabled.qresync {
            // RFC 7162 §3.2.5: QRESYNC parameters need ENABLE QRESYNC first.
            Fault::bad("QRESYNC is not enabled").write(&tag, out);
            return Action::Continue;
        }
        if params.condstore {
            // SELECT reports HIGHESTMODSEQ itself once it is on.
            self.conn.enable_condstore(user, None, out);
        }
        let Some(name) = Conn::mailbox_name(user, &tag, name, out) else {
            return Action::Continue;
        };
        let mailbox = match ctx.store.mailbox(user.id, &name) {
            Ok(Some(m)) if !m.noselect => m,
            Ok(_) => {
                Fault::no(Code::Nonexistent, "no such mailbox").write(&tag, out);
                return Action::Continue;
            }
            Err(e) => {
                store_error(out, &tag, e);
                return Action::Continue;
            }
        };
        let Some(sel) = enter_selected(user, &tag, &mailbox, read_only, params.qresync, ctx, out) else {
            return Action::Continue;
        };
        self.state.enter(sel);
        drop(left);
        let command = if read_only { "EXAMINE" } else { "SELECT" };
        let access = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        ok(out, &tag, &format!("[{access}] {command} completed"));
        Action::Continue
    }
}

/// The SELECT/EXAMINE responses (RFC 9051 §6.3.2, RFC 3501 §6.3.1).
/// `None` once the client is told why not.
fn enter_selected(
    user: &User,
    tag: &str,
    mailbox: &Mailbox,
    read_only: bool,
    qresync: Option<Qresync>,
    ctx: &mut Ctx<'_>,
    out: &mut Vec<u8>,
) -> Option<Selected> {
    let view = match ctx.views.current(ctx.store, mailbox) {
        Ok(v) => v,
        Err(e) => {
            store_error(out, tag, e);
            return None;
        }
    };
    let (first_unseen, keywords) = match select_scan(ctx.store, mailbox, &view) {
        Ok(scan) => scan,
        Err(e) => {
            store_error(out, tag, e);
            return None;
        }
    };
    flags_responses(&keywords, read_only, out);
    let keywords = ctx.views.shared_keywords(mailbox.id, keywords);
    untagged(out, &format!("{} EXISTS", view.len()));
    // EXAMINE leaves \Recent as it is (RFC 3501 §6.3.2); SELECT takes what is new.
    let mut recent = RecentUids::default();
    recent.learn((read_only, user.enabled.imap4rev2), mailbox, &view, ctx.recent);
    // RFC 9051 dropped RECENT and the UNSEEN response code.
    if !user.enabled.imap4rev2 {
        untagged(out, &format!("{} RECENT", recent.count(&view)));
        // RFC 9586 §3: no message numbers under UIDONLY.
        if let Some(n) = first_unseen.filter(|_| !user.enabled.uid_only) {
            untagged(out, &format!("OK [UNSEEN {n}] first unseen message"));
        }
    }
    untagged(out, &format!("OK [UIDVALIDITY {}] UIDs valid", mailbox.uid_validity));
    untagged(out, &format!("OK [UIDNEXT {}] predicted next UID", mailbox.uid_next));
    untagged(out, &format!("OK [MAILBOXID ({})] object id", mailbox_id(mailbox.id)));
    if user.enabled.condstore {
        untagged(out, &format!("OK [HIGHESTMODSEQ {}] highest", mailbox.highest_modseq));
    }
    if !crate::imap::switches::hidden("URLAUTH", &user.disabled) {
        // RFC 4467 URLMECH: the mechanisms this mailbox's URLs can be authorized with, so a
        // client knows before GENURLAUTH (Cyrus sends it here too).
        untagged(out, "OK [URLMECH INTERNAL] URLAUTH mechanisms");
    }
    let known_modseq = mailbox.highest_modseq.max(view.highest_modseq);
    let mut sel = Selected {
        mailbox: mailbox.id,
        read_only,
        known_modseq,
        cursor: ctx.views.cursor(mailbox.id, known_modseq),
        view,
        recent,
        keywords,
        saved: thin_vec::ThinVec::new(),
        contexts: Default::default(),
    };
    if let Some(q) = qresync.filter(|q| q.uid_validity == mailbox.uid_validity) {
        let uid_only = user.enabled.uid_only;
        qresync_report(ctx.store, (mailbox, &mut sel), &q, uid_only, out);
    }
    Some(sel)
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
