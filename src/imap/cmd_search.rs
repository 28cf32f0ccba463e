//! SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH (RFC 4731), SEARCHRES (RFC 5182),
//! PARTIAL (RFC 9394) and CONTEXT=SEARCH's UPDATE (RFC 5267): the program runs over the
//! client's view of the mailbox, reading a message's structure or bytes only for the keys
//! that need them.

use super::limit::{self, Cut};
use super::search::{self, Candidate, SearchContext, SearchData};
use super::session::{store_error, tagged, Ctx, Session, State};
use super::types::PartialRange;
use super::view::{MailRead, MessageBytes};
use crate::mime::Structure;
use crate::store::records::Uid;
use crate::store::MessageRecord;

/// The MODSEQ a SEARCH with a MODSEQ criterion reports: the highest of the messages it
/// returns, which with RETURN (MIN) and/or (MAX) alone are only those one or two (RFC 4731
/// §3.2 with RFC 7162 §3.1.5), and with PARTIAL those of the page (RFC 9394 §3);
/// `hit_modseqs` is in ascending message order.
pub(crate) fn returned_modseq(returns: Option<&[super::types::SearchReturn]>, hit_modseqs: &[u64]) -> u64 {
    use super::types::SearchReturn::{All, Count, Max, Min};
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
pub(crate) fn partial_return(returns: &[super::types::SearchReturn]) -> Option<PartialRange> {
    returns.iter().find_map(|r| match r {
        super::types::SearchReturn::Partial(range) => Some(*range),
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

impl Session {
    fn search_context(&self, now: i64) -> SearchContext {
        let sel = self.selected();
        SearchContext {
            now,
            max_uid: sel.view.last().unwrap_or(0),
            max_seq: sel.view.len(),
            saved: Some(sel.saved.clone()),
        }
    }

    /// The cut of a search by `key` under the session's message limit (RFC 9738 §3.1): only
    /// the messages its sequence sets and UID keys admit count.
    pub(crate) fn search_cut(&self, key: &super::types::SearchKey, now: i64) -> Option<Cut> {
        let limit = self.message_limit().processing()?;
        let context = self.search_context(now);
        limit::search_scope(&self.selected().view, Some(limit), |seq, uid| {
            search::in_scope(key, seq, uid, &context)
        })
    }

    /// Runs `key` over the client's view of the mailbox from UID `floor` up and calls `hit`
    /// for each match with its sequence number, UID and record. Errors are answered here;
    /// false means stop.
    pub(crate) fn each_match(
        &self,
        tag: &str,
        (charset, key, floor): (Option<&str>, &super::types::SearchKey, Uid),
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
        hit: &mut dyn FnMut(u32, Uid, &MessageRecord),
    ) -> bool {
        if let Some(cs) = charset {
            if !cs.eq_ignore_ascii_case("UTF-8") && !cs.eq_ignore_ascii_case("US-ASCII") {
                tagged(out, tag, "NO", "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset");
                return false;
            }
        }
        let sel = self.selected();
        // One searcher for the whole mailbox: its header and body buffers are reused.
        let mut searcher = search::Searcher::default();
        let context = self.search_context(ctx.now);
        let store = ctx.store;
        let scanned = store.each_message(sel.mailbox, &mut |u, record| {
            if u < floor {
                return;
            }
            let Some(seq) = sel.view.seq_of(u) else {
                return;
            };
            let candidate = Candidate {
                seq,
                uid: u,
                record,
                recent: sel.recent.contains(u),
            };
            let mut lazy = Lazy::new(store, record.body_id);
            if searcher.matches(key, &candidate, &mut lazy, &context) {
                hit(seq, u, record);
            }
        });
        match scanned {
            Ok(()) => true,
            Err(e) => {
                store_error(out, tag, &e);
                false
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // one SEARCH command's parts
    pub(super) fn search(
        &mut self,
        tag: &str,
        uid: bool,
        charset: Option<&str>,
        returns: Option<&[super::types::SearchReturn]>,
        key: &super::types::SearchKey,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) {
        let update = returns.is_some_and(|r| r.contains(&super::types::SearchReturn::Update));
        if update && self.update_tag_in_use(tag) {
            // RFC 5267 §4.3.
            tagged(out, tag, "BAD", "this tag already names an updating context");
            return;
        }
        let program = update.then(|| self.update_program(key));
        let uses_modseq = search::uses_modseq(key);
        if uses_modseq {
            self.enable_condstore(out);
        }
        let cut = self.search_cut(key, ctx.now);
        let floor = cut.map_or(0, |c| c.lowest);
        let (mut hits, mut hit_uids, mut hit_modseqs) = (Vec::new(), Vec::new(), Vec::new());
        let ok = self.each_match(tag, (charset, key, floor), ctx, out, &mut |seq, u, record| {
            hits.push(if uid { u } else { seq });
            hit_uids.push(u);
            hit_modseqs.push(record.modseq);
        });
        if !ok {
            return;
        }
        let partial = returns.and_then(partial_return);
        if let (Some(r), State::Selected(_, sel)) = (returns, &mut self.state) {
            if r.contains(&super::types::SearchReturn::Save) {
                // RFC 5182 §2.1: with MIN/MAX only, only those are saved; with PARTIAL (RFC 9394),
                // only the page: what is saved is what is returned.
                sel.saved = match partial {
                    Some(range) => range.select(&hit_uids).to_vec(),
                    None => search::saved_hits(r, &hit_uids),
                };
                sel.saved.sort_unstable();
            }
        }
        let modseq = uses_modseq.then(|| returned_modseq(returns, &hit_modseqs));
        // RFC 9051 §7.3.4: an IMAP4rev2 client always gets ESEARCH.
        let esearch = self.enabled().imap4rev2;
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
            self.start_context(tag, uid, program, super::context::Initial::Search(hit_uids), out);
        }
        let command = if uid { "UID SEARCH" } else { "SEARCH" };
        let code = self.highest_modseq_code();
        limit::tagged_ok(out, tag, cut, &code, &format!("{command} completed"));
    }
}
