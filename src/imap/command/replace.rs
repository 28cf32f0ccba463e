//! REPLACE and UID REPLACE (RFC 8508): a new version of a message (a draft saved again, say)
//! stored and the old one expunged in one step, so no client ever sees both or neither.
//!
//! The new message goes through APPEND's path (parsed off the event loop, then one write);
//! the write is `WriteOp::Replace`, which appends and expunges in one nested transaction.
//! Responses are APPEND's and MOVE's together: APPENDUID in an untagged OK, then the expunge
//! as EXPUNGE or VANISHED, and EXISTS when the target is the selected mailbox.

use super::append::Replacing;
use crate::imap::command::{Spec, States};
use crate::imap::fault::{ok, Fault};
use crate::imap::session::{store_error, untagged, Action, Conn, Ctx, Selected, Session, User};
use crate::imap::types::{AppendMessage, SeqBound};
use crate::store::{StoreError, WriteOutcome};

/// The command table's rows (`command::COMMANDS`).
pub(crate) const REPLACE: Spec = Spec {
    name: "REPLACE",
    extension: Some("REPLACE"),
    states: States::Selected,
    numbers: true,
    expunges: true,
    rfc: "RFC 8508 §3",
    parse: |c| super::append::parse::replace(c, false),
};

impl Conn {
    /// Starts a REPLACE: checks what it replaces and where the new message goes, then parses the
    /// message as APPEND does.
    #[allow(clippy::too_many_arguments)] // one REPLACE command's parts
    pub(crate) fn replace(
        &mut self,
        user: &User,
        sel: &Selected,
        (tag, uid): (String, bool),
        target: SeqBound,
        (mailbox, message): (&str, AppendMessage),
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        if sel.read_only {
            // §3: the old message cannot be expunged from a mailbox opened with EXAMINE.
            Fault::read_only().write(&tag, out);
            return Action::Continue;
        }
        let view = &sel.view;
        let old = match (uid, target) {
            (_, SeqBound::Star) => view.last(),
            (true, SeqBound::Num(u)) => match view.seq_of(u) {
                Some(_) => Some(u),
                None => {
                    Fault::no_code("no message with that UID").write(&tag, out);
                    return Action::Continue;
                }
            },
            (false, SeqBound::Num(n)) => n.checked_sub(1).and_then(|i| view.iter().nth(i as usize)),
        };
        let Some(old) = old else {
            // A message number past the end, or `*` in an empty mailbox (RFC 9051 §9).
            Fault::bad("invalid message sequence number").write(&tag, out);
            return Action::Continue;
        };
        let replacing = Replacing {
            mailbox: sel.mailbox,
            uid: old,
            command: if uid { "UID REPLACE" } else { "REPLACE" },
        };
        self.append(user, Some(sel), tag, mailbox, vec![message], Some(replacing), ctx, out)
    }
}

impl Session {
    /// The answer to the REPLACE write: `* OK [APPENDUID ...]`, the expunge (and EXISTS), OK.
    pub(crate) fn finish_replace(
        &mut self,
        tag: &str,
        command: &str,
        result: Result<WriteOutcome, StoreError>,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        match result {
            Ok(WriteOutcome::Appended { uid_validity, uids }) => {
                let mut set = Vec::new();
                crate::imap::search::sequence_set(&uids, &mut set);
                let set = String::from_utf8_lossy(&set);
                // RFC 8508 §3: APPENDUID goes untagged, before the expunge, as for MOVE.
                untagged(out, &format!("OK [APPENDUID {uid_validity} {set}] replacement stored"));
                self.sync(ctx, out);
                ok(out, tag, &format!("{command} completed"));
            }
            Ok(_) => Fault::Internal("unexpected store answer").write(tag, out),
            Err(e) => {
                // The old message may be gone (another session expunged it): say so first.
                self.sync(ctx, out);
                store_error(out, tag, e);
            }
        }
        Action::Continue
    }
}
