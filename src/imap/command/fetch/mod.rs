//! FETCH and UID FETCH (RFC 9051 §6.4.5), with CHANGEDSINCE/VANISHED (RFC 7162), PARTIAL
//! (RFC 9394), UIDONLY's UIDFETCH (RFC 9586) and INPROGRESS (RFC 9585).
//!
//! FETCH is resumable: it renders up to a budget of bytes, asks the caller to flush, and goes
//! on with a fresh read snapshot, so a `FETCH 1:* BODY.PEEK[]` of a gigabyte neither holds a
//! read transaction across a slow client nor a gigabyte of output.

pub(crate) mod parse;
pub mod referred;
pub mod render;

use super::message::{announce_keywords, in_set, resolve_among, WritePending};
use crate::imap::command::{Spec, States};
use crate::imap::fault::{Code, Fault};
use crate::imap::limit::{self, Cut};
use crate::imap::progress::Progress;
use crate::imap::search;
use crate::imap::session::{store_error, Action, Conn, Ctx, Enabled, Selected, Step, User};
use crate::imap::types::{FetchAttr, PartialRange, SequenceSet};
use crate::imap::view::{vanished_since, MailRead};
use crate::store::records::{flags, FlagMode, Uid};
use crate::store::{MessageRecord, StoreError, WriteOp};
use referred::Referred;
use render::{FetchEffect, FetchOptions, MessageMeta};

/// The command table's rows (`command::COMMANDS`).
pub(crate) const FETCH: Spec = Spec {
    name: "FETCH",
    extension: None,
    states: States::Selected,
    numbers: true,
    expunges: false,
    rfc: "RFC 9051 §6.4.5",
    parse: |c| parse::fetch(c, false),
};

/// Output rendered before FETCH yields to let the caller flush. Small enough that the kernel
/// copies it out of the core's cache, not memory: with 1 MiB a bulk download ran at about 70 %
/// of the raw loopback reference here, with 256 KiB at 93-103 % (128 KiB: 82 %; BENCHMARKS.md).
const FETCH_BUDGET: usize = 1 << 18;

/// FETCH modifiers (RFC 4466 §2.4): CHANGEDSINCE and VANISHED (RFC 7162), PARTIAL (RFC 9394).
pub(crate) struct FetchModifiers {
    pub changed_since: Option<u64>,
    pub vanished: bool,
    pub partial: Option<PartialRange>,
}

/// A FETCH in progress.
pub(crate) struct FetchJob {
    pub tag: String,
    uid: bool,
    attrs: Vec<FetchAttr>,
    targets: Vec<(u32, Uid)>,
    next: usize,
    set_seen: Vec<Uid>,
    /// RFC 7162 §3.1.4: only messages changed after this modseq.
    changed_since: Option<u64>,
    /// RFC 9585 INPROGRESS notifications between the parts of a long FETCH.
    progress: Progress,
    /// RFC 9738: the targets were cut to the message limit.
    cut: Option<Cut>,
}

/// How a session's FETCH responses are written: the attributes asked for, and the form the
/// session's extensions give them.
pub(crate) struct FetchForm<'a> {
    pub attrs: &'a [FetchAttr],
    /// A UID FETCH (or a notification as one): the UID is always in the response.
    pub uid_command: bool,
    pub opts: FetchOptions,
    /// What the items read of each message besides its record (`render::needs_structure`,
    /// `render::needs_bytes`): a FETCH of flags reads neither.
    needs: (bool, bool),
}

impl<'a> FetchForm<'a> {
    /// The form for a session with `enabled` extensions; `read_only` when the mailbox is
    /// (no implicit `\Seen`).
    pub fn new(attrs: &'a [FetchAttr], uid_command: bool, enabled: Enabled, read_only: bool) -> FetchForm<'a> {
        FetchForm {
            attrs,
            needs: (render::needs_structure(attrs), render::needs_bytes(attrs)),
            uid_command,
            opts: FetchOptions {
                imap4rev2: enabled.imap4rev2,
                utf8: enabled.utf8,
                condstore: enabled.condstore,
                read_only,
                uid_only: enabled.uid_only,
            },
        }
    }
}

/// The bytes of a message whose items read none.
static NO_BYTES: Vec<u8> = Vec::new();

/// Why one message's FETCH response could not be written.
pub(crate) enum FetchFailed {
    Store(StoreError),
    /// RFC 3516 §4.3: BINARY of a part in a transfer encoding we cannot undo.
    Cte(render::FetchError),
}

/// One message's FETCH response, for a FETCH command and for NOTIFY's MessageNew alike: the
/// message read from the store, a FLAGS announcement first when it carries a keyword the
/// client has not heard of (RFC 3501 §7.2.6), the response in the session's form. `Ok(None)`:
/// nothing to send, the message having been expunged since the client's view, or `skip`
/// saying so. A response that cannot be made leaves nothing of itself in `out` (or `refer`,
/// where section data may be noted instead of copied: `render::render`).
pub(crate) fn fetch_one(
    store: &dyn MailRead,
    sel: &mut Selected,
    (seq, uid): (u32, Uid),
    (form, skip): (&FetchForm<'_>, &dyn Fn(&MessageRecord) -> bool),
    (out, refer): (&mut Vec<u8>, Option<&mut Referred>),
) -> Result<Option<FetchEffect>, FetchFailed> {
    let record = match store.message(sel.mailbox, uid).map_err(FetchFailed::Store)? {
        Some(r) if !skip(&r) => r,
        _ => return Ok(None),
    };
    let (needs_structure, needs_bytes) = form.needs;
    let structure = if needs_structure {
        match store.structure(record.body_id).map_err(FetchFailed::Store)? {
            Some(structure) => Some(structure),
            None => return Ok(None),
        }
    } else {
        None
    };
    let body = if needs_bytes {
        Some(store.body(record.body_id).map_err(FetchFailed::Store)?)
    } else {
        None
    };
    let bytes = body.as_deref().unwrap_or(&NO_BYTES);
    announce_keywords(sel, &record.keywords, out);
    let meta = MessageMeta {
        seq,
        uid,
        record: &record,
        structure: structure.as_ref(),
        recent: sel.recent.contains(uid),
        include_flags: false,
    };
    render::render(&meta, form.attrs, form.uid_command, &form.opts, bytes, out, refer)
        .map(Some)
        .map_err(FetchFailed::Cte)
}

impl Conn {
    #[allow(clippy::too_many_arguments)] // one FETCH command's parts
    pub(crate) fn fetch_start(
        &mut self,
        user: &mut User,
        sel: &mut Selected,
        (tag, uid): (String, bool),
        set: &SequenceSet,
        attrs: Vec<FetchAttr>,
        modifiers: FetchModifiers,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        let FetchModifiers {
            changed_since,
            vanished,
            partial,
        } = modifiers;
        if changed_since.is_some() || attrs.contains(&FetchAttr::ModSeq) {
            self.enable_condstore(user, Some(sel), out);
        }
        if vanished && !(uid && changed_since.is_some() && user.enabled.qresync) {
            // RFC 7162 §3.2.6: VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC.
            Fault::bad("VANISHED needs UID FETCH with CHANGEDSINCE and QRESYNC").write(&tag, out);
            return Action::Continue;
        }
        if let (true, Some(since)) = (vanished, changed_since) {
            // `*` reaches every UID ever assigned here, expunged ones included: a client asking
            // `1:*` wants to hear about all of them.
            let star = Uid::MAX;
            let gone: Vec<Uid> = match ctx.store.mailbox_by_id(sel.mailbox) {
                Ok(Some(mailbox)) => vanished_since(ctx.store, &mailbox, since).unwrap_or_default(),
                _ => Vec::new(),
            };
            let gone: Vec<Uid> = gone.into_iter().filter(|u| in_set(set, *u, star)).collect();
            if !gone.is_empty() {
                out.extend_from_slice(b"* VANISHED (EARLIER) ");
                search::sequence_set(&gone, out);
                out.extend_from_slice(b"\r\n");
            }
        }
        // RFC 7162 §3.1.4: with CHANGEDSINCE, only what changed after it, found in the modseq
        // index rather than in every record of the set. RFC 9394 §4: a PARTIAL page is taken
        // from what this leaves, so that paging through changes works.
        let changed = match changed_since.map(|since| ctx.store.changed_since(sel.mailbox, since)) {
            Some(Err(e)) => {
                store_error(out, &tag, e);
                return Action::Continue;
            }
            Some(Ok(changed)) => Some(changed),
            None => None,
        };
        let mut targets = match resolve_among(set, &sel.view, uid, &sel.saved, changed.as_deref()) {
            Ok(t) => t,
            Err(why) => {
                Fault::bad(why).write(&tag, out);
                return Action::Continue;
            }
        };
        let processing = self.message_limit(user).processing();
        if let (Some(range), Some(limit)) = (partial, processing) {
            // RFC 9738 §3.1: a page is the client's own cut; one wider than the limit is
            // refused before any work.
            if range.width() > u64::from(limit) {
                limit::refuse(out, &tag, limit, None, "PARTIAL range wider than the message limit");
                return Action::Continue;
            }
        }
        if let Some(range) = partial {
            targets = range.select(&targets).to_vec();
        }
        let cut = match partial {
            Some(_) => None,
            None => limit::cut(&mut targets, processing, |(_, u)| u),
        };
        let mut attrs = attrs;
        if uid && !attrs.contains(&FetchAttr::Uid) {
            // RFC 9051 §6.4.9: UID FETCH always returns the UID.
            attrs.push(FetchAttr::Uid);
        }
        let job = FetchJob {
            tag,
            uid,
            attrs,
            targets,
            next: 0,
            set_seen: Vec::new(),
            changed_since,
            progress: Progress::start(ctx.now),
            cut,
        };
        self.fetch_resume(user, sel, job, ctx, out)
    }

    /// Renders the next part of a FETCH; the caller flushes after `Action::Flush`.
    pub(crate) fn fetch_resume(
        &mut self,
        user: &User,
        sel: &mut Selected,
        mut job: FetchJob,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        let (mailbox, read_only) = (sel.mailbox, sel.read_only);
        if job.next > 0 {
            // Resumed after a flush: a slow download hears how far it got (RFC 9585).
            let done = (job.next, job.targets.len());
            job.progress.report(ctx.now, &job.tag, done, "messages fetched", out);
        }
        let enabled = user.enabled;
        let attrs = std::mem::take(&mut job.attrs);
        let form = FetchForm::new(&attrs, job.uid, enabled, read_only);
        let changed_since = job.changed_since;
        // RFC 7162 §3.1.4: with CHANGEDSINCE, only messages changed after it.
        let unchanged = |r: &MessageRecord| changed_since.is_some_and(|since| r.modseq <= since);
        let finished = loop {
            if job.next >= job.targets.len() {
                break true;
            }
            let referred = ctx.referred.as_ref().map_or(0, |r| r.len());
            if out.len() + referred >= FETCH_BUDGET {
                break false;
            }
            let (seq, uid) = job.targets[job.next];
            job.next += 1;
            let to = (&mut *out, ctx.referred.as_deref_mut());
            match fetch_one(ctx.store, sel, (seq, uid), (&form, &unchanged), to) {
                Ok(Some(e)) if e.set_seen => job.set_seen.push(uid),
                Ok(_) => {}
                Err(FetchFailed::Store(e)) => {
                    store_error(out, &job.tag, e);
                    return Action::Continue;
                }
                Err(FetchFailed::Cte(e)) => {
                    Fault::no(Code::UnknownCte, e.to_string()).write(&job.tag, out);
                    return Action::Continue;
                }
            }
        };
        job.attrs = attrs;
        if !finished {
            self.step = Step::Fetch(Box::new(job));
            return Action::Flush;
        }
        let command = if job.uid { "UID FETCH" } else { "FETCH" };
        if job.set_seen.is_empty() {
            let code = self.highest_modseq_code();
            limit::tagged_ok(out, &job.tag, job.cut, &code, &format!("{command} completed"));
            return Action::Continue;
        }
        self.step = Step::Write(Box::new(WritePending::FetchSeen {
            tag: job.tag,
            cut: job.cut,
        }));
        Action::Write(WriteOp::StoreFlags {
            mailbox,
            uids: job.set_seen,
            mode: FlagMode::Add,
            flags: flags::SEEN,
            keywords: Vec::new(),
            unchanged_since: None,
        })
    }
}

impl Conn {
    /// The answer to the write of the `\Seen` flags a FETCH set.
    pub(crate) fn finish_fetch_seen(&mut self, tag: &str, cut: Option<Cut>, out: &mut Vec<u8>) {
        let code = self.highest_modseq_code();
        limit::tagged_ok(out, tag, cut, &code, "FETCH completed");
    }
}
