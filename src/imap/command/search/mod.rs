//! SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH (RFC 4731), SEARCHRES (RFC 5182),
//! PARTIAL (RFC 9394) and CONTEXT=SEARCH's UPDATE (RFC 5267): the program runs over the
//! client's view of the mailbox in steps (`scan`, with RFC 9585 INPROGRESS between them),
//! reading a message's structure or bytes only for the keys that need them, and the answer is
//! written from the matches once the last step is done.

pub(crate) mod parse;

use crate::imap::command::{Spec, States};
use crate::imap::fault::{Code, Fault};
use crate::imap::limit::{self, Cut};
use crate::imap::scan::{Answer, Match};
use crate::imap::search::{self, SearchContext, SearchData};
use crate::imap::session::{Action, Conn, Ctx, Selected, User};
use crate::imap::types::{PartialRange, SearchKey, SearchReturn};
use crate::imap::view::{MailRead, MessageBytes};
use crate::mime::Structure;
use crate::store::records::Uid;

/// The command table's rows (`command::COMMANDS`).
pub(crate) const SEARCH: Spec = Spec {
    name: "SEARCH",
    extension: None,
    states: States::Selected,
    numbers: true,
    expunges: false,
    rfc: "RFC 9051 §6.4.4",
    parse: |c| parse::search(c, false),
};

pub(crate) const CANCELUPDATE: Spec = Spec {
    name: "CANCELUPDATE",
    extension: None,
    states: States::Selected,
    numbers: false,
    expunges: false,
    rfc: "RFC 5267 §4.3.5",
    parse: parse::cancel_update,
};

/// What a SEARCH answers with once its scan is done.
pub(crate) struct SearchAnswer {
    uid: bool,
    returns: Option<Vec<SearchReturn>>,
    /// RFC 9738 §3.1: the scan started at the cut's lowest UID.
    cut: Option<Cut>,
    /// RFC 5267 §4.3 UPDATE: the program its context will evaluate.
    program: Option<SearchKey>,
    /// RFC 7162 §3.1.5: the answer carries MODSEQ.
    uses_modseq: bool,
}

/// The MODSEQ a SEARCH with a MODSEQ criterion reports: the highest of the messages it
/// returns, which with RETURN (MIN) and/or (MAX) alone are only those one or two (RFC 4731
/// §3.2 with RFC 7162 §3.1.5), and with PARTIAL those of the page (RFC 9394 §3);
/// `hit_modseqs` is in ascending message order.
pub(crate) fn returned_modseq(returns: Option<&[SearchReturn]>, hit_modseqs: &[u64]) -> u64 {
    use SearchReturn::{All, Count, Max, Min};
    let all = hit_modseqs.iter().copied().max().unwrap_or(0);
    let Some(r) = returns.filter(|r| !r.is_empty() && !r.contains(&All) && !r.contains(&Count)) else {
        return all;
    };
    let (mut modseq, mut limited) = (0, false);
    if r.contains(&Min) {
        modseq = modseq.max(hit_modseqs.first().copied().unwrap_or(0));
        limited = true;
    }
    if r.contains(&Max) {
        modseq = modseq.max(hit_modseqs.last().copied().unwrap_or(0));
        limited = true;
    }
    if let Some(range) = partial_return(r) {
        modseq = modseq.max(range.select(hit_modseqs).iter().copied().max().unwrap_or(0));
        limited = true;
    }
    if limited {
        modseq
    } else {
        all
    }
}

/// RFC 9394 RETURN (PARTIAL range), if asked for.
pub(crate) fn partial_return(returns: &[SearchReturn]) -> Option<PartialRange> {
    returns.iter().find_map(|r| match r {
        SearchReturn::Partial(range) => Some(*range),
        _ => None,
    })
}

/// Adds RFC 9394's `PARTIAL (range results)` to the ESEARCH line just written (from `start`),
/// `NIL` when the page is empty.
pub(crate) fn add_partial(out: &mut Vec<u8>, start: usize, range: PartialRange, page: &[u32]) {
    if !out[start..].ends_with(b"\r\n") {
        debug_assert!(false, "render_results wrote no ESEARCH line");
        return;
    }
    out.truncate(out.len() - 2);
    out.extend_from_slice(format!(" PARTIAL ({range} ").as_bytes());
    if page.is_empty() {
        out.extend_from_slice(b"NIL");
    } else {
        search::sequence_set(page, out);
    }
    out.extend_from_slice(b")\r\n");
}

/// Lazy access to what SEARCH keys beyond flags need.
pub(crate) struct Lazy<'a> {
    store: &'a dyn MailRead,
    body_id: u64,
    structure: Option<Option<Structure>>,
    bytes: Option<Option<Box<dyn MessageBytes + 'a>>>,
}

impl<'a> Lazy<'a> {
    /// Nothing loaded yet.
    pub(crate) fn new(store: &'a dyn MailRead, body_id: u64) -> Lazy<'a> {
        Lazy {
            store,
            body_id,
            structure: None,
            bytes: None,
        }
    }

    /// The message bytes loaded, if they were: what a scan counts against its step's budget.
    pub(crate) fn bytes_read(&self) -> usize {
        match &self.bytes {
            Some(Some(bytes)) => bytes.len(),
            _ => 0,
        }
    }
}

impl SearchData for Lazy<'_> {
    fn structure(&mut self) -> Option<&Structure> {
        if self.structure.is_none() {
            self.structure = Some(self.store.structure(self.body_id).ok().flatten());
        }
        self.structure.as_ref().and_then(|s| s.as_ref())
    }

    fn message(&mut self) -> Option<(&Structure, &dyn MessageBytes)> {
        if self.structure.is_none() {
            self.structure = Some(self.store.structure(self.body_id).ok().flatten());
        }
        if self.bytes.is_none() {
            self.bytes = Some(self.store.body(self.body_id).ok());
        }
        let structure = self.structure.as_ref()?.as_ref()?;
        let bytes = self.bytes.as_ref()?.as_deref()?;
        Some((structure, bytes))
    }
}

impl Selected {
    pub(crate) fn search_context(&self, now: i64) -> SearchContext {
        SearchContext {
            now,
            max_uid: self.view.last().unwrap_or(0),
            max_seq: self.view.len(),
            saved: Some(self.saved.to_vec()),
        }
    }
}

impl Conn {
    /// The cut of a search by `key` under the session's message limit (RFC 9738 §3.1): only
    /// the messages its sequence sets and UID keys admit count.
    pub(crate) fn search_cut(&self, (user, sel): (&User, &Selected), key: &SearchKey, now: i64) -> Option<Cut> {
        let limit = self.message_limit(user).processing()?;
        let context = sel.search_context(now);
        limit::search_scope(&sel.view, Some(limit), |seq, uid| {
            search::in_scope(key, seq, uid, &context)
        })
    }

    /// Starts a SEARCH: the checks that need no scan, then its first step (`scan`).
    #[allow(clippy::too_many_arguments)] // one SEARCH command's parts
    pub(crate) fn search_start(
        &mut self,
        user: &mut User,
        sel: &mut Selected,
        (tag, uid): (String, bool),
        charset: Option<&str>,
        returns: Option<Vec<SearchReturn>>,
        key: SearchKey,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        let update = returns.as_ref().is_some_and(|r| r.contains(&SearchReturn::Update));
        if update && sel.update_tag_in_use(&tag) {
            // RFC 5267 §4.3.
            Fault::bad("this tag already names an updating context").write(&tag, out);
            return Action::Continue;
        }
        let program = update.then(|| sel.update_program(&key));
        let uses_modseq = search::uses_modseq(&key);
        if uses_modseq {
            self.enable_condstore(user, Some(sel), out);
        }
        let cut = self.search_cut((user, sel), &key, ctx.now);
        if charset_refused(&tag, charset, out) {
            return Action::Continue;
        }
        let answer = SearchAnswer {
            uid,
            returns,
            cut,
            program,
            uses_modseq,
        };
        let floor = cut.map_or(0, |c| c.lowest);
        self.scan_start(user, sel, tag, (key, floor), Answer::Search(answer), ctx, out)
    }

    /// The answer to a SEARCH whose scan is done; `matches` in ascending UID order.
    pub(crate) fn search_answer(
        &mut self,
        (user, sel): (&User, &mut Selected),
        tag: &str,
        answer: SearchAnswer,
        matches: &[Match],
        out: &mut Vec<u8>,
    ) {
        let SearchAnswer {
            uid,
            returns,
            cut,
            program,
            uses_modseq,
        } = answer;
        let returns = returns.as_deref();
        let mut hits: Vec<u32> = matches.iter().map(|m| if uid { m.uid } else { m.seq }).collect();
        let hit_uids: Vec<Uid> = matches.iter().map(|m| m.uid).collect();
        let partial = returns.and_then(partial_return);
        if let Some(r) = returns {
            if r.contains(&SearchReturn::Save) {
                // RFC 5182 §2.1: with MIN/MAX only, only those are saved; with PARTIAL (RFC 9394),
                // only the page: what is saved is what is returned.
                sel.saved = match partial {
                    Some(range) => range.select(&hit_uids).into(),
                    None => search::saved_hits(r, &hit_uids).into(),
                };
                sel.saved.sort_unstable();
            }
        }
        let modseq = uses_modseq.then(|| {
            let hit_modseqs: Vec<u64> = matches.iter().map(|m| m.modseq).collect();
            returned_modseq(returns, &hit_modseqs)
        });
        // RFC 9051 §7.3.4: an IMAP4rev2 client always gets ESEARCH.
        let esearch = user.enabled.imap4rev2;
        let start = out.len();
        if cut.is_some() && returns.is_none() && !esearch {
            // RFC 9738 §3.1: a cut SEARCH answers from the highest UID down.
            hits.reverse();
        }
        search::render_results(tag, uid, returns, esearch, &hits, modseq, out);
        if let Some(range) = partial {
            add_partial(out, start, range, range.select(&hits));
        }
        if let Some(program) = program {
            // RFC 5267 §4.3: "no interaction" with the other options: the whole result is kept.
            sel.start_context(tag, uid, program, crate::imap::context::Initial::Search(hit_uids), out);
        }
        let command = if uid { "UID SEARCH" } else { "SEARCH" };
        let code = self.highest_modseq_code();
        limit::tagged_ok(out, tag, cut, &code, &format!("{command} completed"));
    }
}

/// RFC 9051 §6.4.4: a charset other than UTF-8 and US-ASCII is refused with BADCHARSET, naming
/// those two; true when refused.
pub(crate) fn charset_refused(tag: &str, charset: Option<&str>, out: &mut Vec<u8>) -> bool {
    let refused = charset.is_some_and(|cs| !cs.eq_ignore_ascii_case("UTF-8") && !cs.eq_ignore_ascii_case("US-ASCII"));
    if refused {
        Fault::no(Code::BadCharset, "unsupported charset").write(tag, out);
    }
    refused
}
