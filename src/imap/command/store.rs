//! STORE and UID STORE (RFC 9051 §6.4.6), with UNCHANGEDSINCE (RFC 7162 §3.1.3): the flags
//! change in one write; the answer reports each changed message's flags (unless .SILENT),
//! announces new keywords, and names in `[MODIFIED]` what a conditional STORE left alone.

use super::message::split_flags;
use super::message::{announce_keywords, flags_response, resolve, FlagsShape, WritePending};
use crate::imap::command::{Spec, States};
use crate::imap::fault::Fault;
use crate::imap::limit::{self, Cut};
use crate::imap::parse::lexer::{Cursor, Result, Syntax};
use crate::imap::search;
use crate::imap::session::{Action, Conn, Ctx, Selected, Step, User};
use crate::imap::types::{Command, SequenceSet, StoreMode};
use crate::store::records::{FlagMode, Uid};
use crate::store::{FlagsChanged, MessageRecord, WriteOp};

/// The command table's rows (`command::COMMANDS`).
pub(crate) const STORE: Spec = Spec {
    name: "STORE",
    extension: None,
    states: States::Selected,
    numbers: true,
    expunges: false,
    rfc: "RFC 9051 §6.4.6",
    parse: |c| parse(c, false),
};

/// How a STORE's answer is written once its write is done.
pub(crate) struct Done {
    pub uid: bool,
    pub silent: bool,
    pub cut: Option<Cut>,
}

impl Conn {
    #[allow(clippy::too_many_arguments)] // one STORE command's parts
    pub(crate) fn store(
        &mut self,
        user: &mut User,
        sel: &Selected,
        (tag, uid): (String, bool),
        set: &SequenceSet,
        (mode, silent, flag_names): (StoreMode, bool, &[String]),
        unchanged_since: Option<u64>,
        out: &mut Vec<u8>,
    ) -> Action {
        if unchanged_since.is_some() {
            self.enable_condstore(user, Some(sel), out);
        }
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
        self.step = Step::Write(Box::new(WritePending::Store { tag, uid, silent, cut }));
        Action::Write(WriteOp::StoreFlags {
            mailbox: sel.mailbox,
            uids: targets.into_iter().map(|(_, u)| u).collect(),
            mode,
            flags: bits,
            keywords,
            unchanged_since,
        })
    }

    /// The answer to the STORE write: `changed` messages' flags, then OK (or `[MODIFIED]`
    /// naming what UNCHANGEDSINCE kept from changing).
    pub(crate) fn finish_store(
        &mut self,
        user: &User,
        sel: &mut Selected,
        (tag, Done { uid, silent, cut }): (&str, Done),
        (changed, modified): (&[FlagsChanged], &[Uid]),
        ctx: &Ctx<'_>,
        out: &mut Vec<u8>,
    ) {
        let shape = FlagsShape {
            with_uid: uid,
            condstore: user.enabled.condstore,
            uid_only: user.enabled.uid_only,
        };
        for c in changed {
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
            let code = self.highest_modseq_code();
            let command = if uid { "UID STORE" } else { "STORE" };
            limit::tagged_ok(out, tag, cut, &code, &format!("{command} completed"));
        } else {
            let mut set = Vec::new();
            search::sequence_set(modified, &mut set);
            let code = format!("[MODIFIED {}] ", String::from_utf8_lossy(&set));
            limit::tagged_ok(out, tag, cut, &code, "conditional STORE failed");
        }
    }
}

/// store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags (RFC 9051 §9,
/// RFC 7162 §3.1.3); store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP
/// (flag-list / (flag *(SP flag))).
pub(crate) fn parse(c: &mut Cursor, uid: bool) -> Result<Command> {
    c.sp()?;
    let set = c.sequence_set()?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.peek() == Some(b'(') {
        for modifier in c.list1(|c| {
            if !c.word().eq_ignore_ascii_case(b"UNCHANGEDSINCE") {
                return Err(Syntax("unknown STORE modifier"));
            }
            c.sp()?;
            // mod-sequence-valzer: 0 is allowed here (RFC 7162 §3.1.3).
            c.number64()
        })? {
            if unchanged_since.replace(modifier).is_some() {
                return Err(Syntax("UNCHANGEDSINCE given twice"));
            }
        }
        c.sp()?;
    }
    let mode = if c.eat(b'+') {
        StoreMode::Add
    } else if c.eat(b'-') {
        StoreMode::Remove
    } else {
        StoreMode::Replace
    };
    let item = c.word();
    let silent = if item.eq_ignore_ascii_case(b"FLAGS") {
        false
    } else if item.eq_ignore_ascii_case(b"FLAGS.SILENT") {
        true
    } else {
        return Err(Syntax("expected FLAGS, +FLAGS or -FLAGS"));
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        c.flag_list()?
    } else {
        let mut flags = vec![c.flag()?];
        while c.more() {
            flags.push(c.flag()?);
        }
        flags
    };
    c.end()?;
    Ok(Command::Store {
        uid,
        set,
        mode,
        silent,
        flags,
        unchanged_since,
    })
}
