//! COPY, MOVE and their UID forms (RFC 9051 §6.4.7, §6.4.8, RFC 6851): one write copies (and
//! for MOVE expunges) the messages; the answer carries COPYUID (RFC 4315), untagged before the
//! expunges for MOVE.

use super::message::{resolve, WritePending};
use crate::imap::command::{Spec, States};
use crate::imap::fault::{ok, Fault};
use crate::imap::limit::{self, Cut};
use crate::imap::parse::lexer::{Cursor, Result};
use crate::imap::search;
use crate::imap::session::{untagged, Action, Conn, Ctx, Selected, Session, Step, User};
use crate::imap::types::Command;
use crate::imap::types::SequenceSet;
use crate::store::records::Uid;
use crate::store::WriteOp;

/// The command table's rows (`command::COMMANDS`).
pub(crate) const COPY: Spec = Spec {
    name: "COPY",
    extension: None,
    states: States::Selected,
    numbers: true,
    expunges: true,
    rfc: "RFC 9051 §6.4.7",
    parse: |c| parse_copy_or_move(c, false, false),
};

pub(crate) const MOVE: Spec = Spec {
    name: "MOVE",
    extension: Some("MOVE"),
    states: States::Selected,
    numbers: true,
    expunges: true,
    rfc: "RFC 9051 §6.4.8",
    parse: |c| parse_copy_or_move(c, false, true),
};

impl Conn {
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
        self.step = Step::Write(Box::new(WritePending::Copy { tag, is_move, cut }));
        Action::Write(WriteOp::Copy {
            from,
            uids: targets.into_iter().map(|(_, u)| u).collect(),
            to: to.id,
            expunge_source: is_move,
        })
    }
}

impl Session {
    /// The answer to the COPY or MOVE write.
    pub(crate) fn finish_copy(
        &mut self,
        tag: &str,
        (is_move, cut): (bool, Option<Cut>),
        (uid_validity, pairs): (u32, &[(Uid, Uid)]),
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) {
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
            limit::tagged_ok(out, tag, cut, "", "MOVE completed");
        } else {
            self.sync(ctx, out);
            let text = if pairs.is_empty() {
                "COPY completed".to_string()
            } else {
                format!("[{code}] COPY completed")
            };
            ok(out, tag, &text);
        }
    }
}

/// RFC 9051 §6.4.7 COPY, §6.4.8 MOVE: sequence-set SP mailbox.
pub(crate) fn parse_copy_or_move(c: &mut Cursor, uid: bool, is_move: bool) -> Result<Command> {
    c.sp()?;
    let set = c.sequence_set()?;
    c.sp()?;
    let mailbox = c.mailbox()?;
    c.end()?;
    Ok(if is_move {
        Command::Move { uid, set, mailbox }
    } else {
        Command::Copy { uid, set, mailbox }
    })
}
