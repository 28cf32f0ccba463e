//! EXPUNGE, UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315 §2.1) and CLOSE (§6.4.1): the \\Deleted
//! messages of the client's view go in one write; EXPUNGE and UID EXPUNGE then tell the
//! client (EXPUNGE or VANISHED, from `sync`), CLOSE leaves the mailbox silently.

use super::message::{resolve, WritePending};
use crate::imap::command::{Spec, States};
use crate::imap::fault::{ok, Fault};
use crate::imap::limit;
use crate::imap::parse;
use crate::imap::session::{Action, Conn, Ctx, Selected, Step, User};
use crate::imap::types::Command;
use crate::imap::types::SequenceSet;
use crate::imap::view::MailRead;
use crate::store::records::{flags, Uid};
use crate::store::WriteOp;

/// The command table's rows (`command::COMMANDS`).
pub(crate) const CLOSE: Spec = Spec {
    name: "CLOSE",
    extension: None,
    states: States::Selected,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.4.1",
    parse: |c| parse::bare(c, Command::Close),
};

pub(crate) const EXPUNGE: Spec = Spec {
    name: "EXPUNGE",
    extension: None,
    states: States::Selected,
    numbers: false,
    expunges: true,
    rfc: "RFC 9051 §6.4.3",
    parse: |c| parse::bare(c, Command::Expunge),
};

impl Conn {
    /// CLOSE: the \Deleted messages go, silently (RFC 9051 §6.4.1), then the session leaves
    /// the mailbox. `None` when there is nothing to write (EXAMINE): the client has its OK.
    pub(crate) fn close(&mut self, sel: &Selected, tag: String, ctx: &Ctx<'_>, out: &mut Vec<u8>) -> Option<Action> {
        if sel.read_only {
            ok(out, &tag, "CLOSE completed");
            return None;
        }
        let uids = deleted_uids(sel, ctx.store, None);
        self.step = Step::Write(Box::new(WritePending::Close { tag }));
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
        self.step = Step::Write(Box::new(WritePending::Expunge { tag, command, cut }));
        Action::Write(WriteOp::Expunge {
            mailbox: sel.mailbox,
            uids,
        })
    }
}

/// UIDs in the client's view carrying \Deleted (within `set` when given). A mailbox whose
/// counts say none is \Deleted is not read.
fn deleted_uids(sel: &Selected, store: &dyn MailRead, within: Option<&[(u32, Uid)]>) -> Vec<Uid> {
    let mut uids = Vec::new();
    if let Ok(Some(mailbox)) = store.mailbox_by_id(sel.mailbox) {
        if store.flag_counts(&mailbox).is_ok_and(|c| c.deleted == 0) {
            return uids;
        }
    }
    let _ = store.each_message(sel.mailbox, &mut |uid, r| {
        let in_view = sel.view.seq_of(uid).is_some();
        let in_set = within.is_none_or(|w| w.iter().any(|(_, u)| *u == uid));
        if r.flags & flags::DELETED != 0 && in_view && in_set {
            uids.push(uid);
        }
    });
    uids
}
