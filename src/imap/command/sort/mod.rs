//! SORT and THREAD (RFC 5256, with RFC 5957 DISPLAY sort keys): the search runs in steps as
//! for SEARCH (`scan`), then the matches are ordered or threaded from their stored structures. SORT with
//! RETURN options is ESORT (RFC 5267 §3): an ESEARCH answer in sort order, and with UPDATE a
//! context kept up to date (§4, `context`).

pub(crate) mod parse;

use super::search::{add_partial, charset_refused, partial_return, returned_modseq};
use crate::imap::command::{Spec, States};
use crate::imap::context::Initial;
use crate::imap::fault::{ok, Fault};
use crate::imap::limit;
use crate::imap::scan::{Answer, Match};
use crate::imap::search;
use crate::imap::session::{store_error, Action, Conn, Ctx, Selected, User};
use crate::imap::sort::{self, SortCandidate, Sorted, Sorter};
use crate::imap::thread::{self, Threader};
use crate::imap::types::{SearchKey, SearchReturn, SortCriterion, ThreadAlgorithm};
use crate::imap::view::MailRead;
use crate::store::records::Uid;

/// The command table's rows (`command::COMMANDS`).
pub(crate) const SORT: Spec = Spec {
    name: "SORT",
    extension: Some("SORT"),
    states: States::Selected,
    numbers: true,
    expunges: false,
    rfc: "RFC 5256 §3",
    parse: |c| parse::sort(c, false),
};

pub(crate) const THREAD: Spec = Spec {
    name: "THREAD",
    extension: None,
    states: States::Selected,
    numbers: true,
    expunges: false,
    rfc: "RFC 5256 §3",
    parse: |c| parse::thread(c, false),
};

pub(crate) enum Order {
    /// The criteria, and ESORT's RETURN options when given.
    Sort(Vec<SortCriterion>, Option<Vec<SearchReturn>>),
    Thread(ThreadAlgorithm),
}

/// What a SORT or THREAD answers with once its scan is done.
pub(crate) struct SortAnswer {
    uid: bool,
    order: Order,
    /// RFC 5267 §4.3 UPDATE: the program its context will evaluate.
    program: Option<SearchKey>,
    /// RFC 7162 §3.1.5: ESORT's ESEARCH answer carries MODSEQ.
    uses_modseq: bool,
}

impl Conn {
    /// Starts a SORT or THREAD: the checks that need no scan, then its first step (`scan`).
    #[allow(clippy::too_many_arguments)] // one SORT or THREAD command's parts
    pub(crate) fn sort_start(
        &mut self,
        user: &mut User,
        sel: &mut Selected,
        (tag, uid): (String, bool),
        (charset, key): (&str, SearchKey),
        order: Order,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        let returns = match &order {
            Order::Sort(_, returns) => returns.as_deref(),
            Order::Thread(_) => None,
        };
        let update = returns.is_some_and(|r| r.contains(&SearchReturn::Update));
        if update && sel.update_tag_in_use(&tag) {
            // RFC 5267 §4.3.
            Fault::bad("this tag already names an updating context").write(&tag, out);
            return Action::Continue;
        }
        let program = update.then(|| sel.update_program(&key));
        // RFC 7162 §3.1.5 as SEARCH does it, for ESORT's ESEARCH answer.
        let uses_modseq = returns.is_some() && search::uses_modseq(&key);
        if uses_modseq {
            self.enable_condstore(user, Some(sel), out);
        }
        if let Some(cut) = self.search_cut((user, sel), &key, ctx.now) {
            // RFC 9738 §3.3: an order over part of the messages would be wrong; the client
            // narrows the search (UIDAFTER, UIDBEFORE) instead.
            limit::refuse(
                out,
                &tag,
                cut.limit,
                None,
                "too many messages to order; narrow the search",
            );
            return Action::Continue;
        }
        if charset_refused(&tag, Some(charset), out) {
            return Action::Continue;
        }
        let answer = SortAnswer {
            uid,
            order,
            program,
            uses_modseq,
        };
        self.scan_start(user, sel, tag, (key, 0), Answer::Sort(answer), ctx, out)
    }

    /// The answer to a SORT or THREAD whose scan is done: each match's record and structure
    /// are read now, in one snapshot, and a message expunged since its step matched it is left
    /// out. `matches` are in ascending UID order.
    pub(crate) fn sort_answer(
        &mut self,
        sel: &mut Selected,
        tag: &str,
        answer: SortAnswer,
        matches: &[Match],
        store: &dyn MailRead,
        out: &mut Vec<u8>,
    ) {
        let SortAnswer {
            uid,
            order,
            program,
            uses_modseq,
        } = answer;
        let mut sorter = match &order {
            Order::Sort(criteria, _) => Ok(Sorter::new(criteria, uid)),
            Order::Thread(algorithm) => Err(Threader::new(*algorithm, uid)),
        };
        let needs_structure = sorter.as_ref().map_or(true, Sorter::needs_structure);
        let mailbox = sel.mailbox;
        for m in matches {
            let record = match store.message(mailbox, m.uid) {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(e) => {
                    store_error(out, tag, e);
                    return;
                }
            };
            let structure = if needs_structure {
                store.structure(record.body_id).ok().flatten()
            } else {
                None
            };
            let candidate = SortCandidate {
                seq: m.seq,
                uid: m.uid,
                record: &record,
                structure: structure.as_ref(),
            };
            match &mut sorter {
                Ok(s) => s.push(&candidate),
                Err(t) => t.push(&candidate),
            }
        }
        let command = match (sorter, &order) {
            (Ok(s), Order::Sort(criteria, Some(returns))) => {
                let sorted = s.finish_sorted();
                let modseq = uses_modseq.then(|| {
                    // The modseq each match had when its step saw it, as SEARCH reports it.
                    let of = |u: Uid| {
                        matches
                            .binary_search_by_key(&u, |m| m.uid)
                            .map_or(0, |i| matches[i].modseq)
                    };
                    let in_order: Vec<u64> = sorted.iter().map(|e| of(e.uid)).collect();
                    returned_modseq(Some(returns), &in_order)
                });
                esort(sel, tag, uid, returns, &sorted, modseq, out);
                if let Some(program) = program {
                    sel.start_context(tag, uid, program, Initial::Sort(criteria.clone(), sorted), out);
                }
                "SORT"
            }
            (Ok(s), _) => {
                sort::render_sort(out, &s.finish());
                "SORT"
            }
            (Err(t), _) => {
                thread::render_threads(out, &t.finish());
                "THREAD"
            }
        };
        let prefix = if uid { "UID " } else { "" };
        let code = self.highest_modseq_code();
        ok(out, tag, &format!("{code}{prefix}{command} completed"));
    }
}

/// The ESEARCH answer of an ESORT (RFC 5267 §3.1), and `$` when SAVE is asked for (the
/// messages returned, as for SEARCH: RFC 5182 §2.1, RFC 9394 §3).
fn esort(
    sel: &mut Selected,
    tag: &str,
    uid: bool,
    returns: &[SearchReturn],
    sorted: &[Sorted],
    modseq: Option<u64>,
    out: &mut Vec<u8>,
) {
    let partial = partial_return(returns);
    if returns.contains(&SearchReturn::Save) {
        let uids: Vec<Uid> = sorted.iter().map(|e| e.uid).collect();
        sel.saved = match partial {
            Some(range) => range.select(&uids).into(),
            None => saved_in_order(returns, &uids).into(),
        };
        sel.saved.sort_unstable();
        sel.saved.dedup();
    }
    let numbers: Vec<u32> = sorted.iter().map(|e| if uid { e.uid } else { e.seq }).collect();
    let start = out.len();
    search::render_sorted_results(tag, uid, returns, &numbers, modseq, out);
    if let Some(range) = partial {
        add_partial(out, start, range, range.select(&numbers));
    }
}

/// What RETURN (SAVE ...) keeps of a sorted result: with MIN and/or MAX but neither ALL nor
/// COUNT, only the first and/or the last message in sort order (RFC 5182 §2.1 with RFC 5267
/// §3.1); otherwise all of them.
fn saved_in_order(returns: &[SearchReturn], uids: &[Uid]) -> Vec<Uid> {
    let has = |r| returns.contains(&r);
    if !(has(SearchReturn::Min) || has(SearchReturn::Max)) || has(SearchReturn::All) || has(SearchReturn::Count) {
        return uids.to_vec();
    }
    let first = uids.first().filter(|_| has(SearchReturn::Min));
    let last = uids.last().filter(|_| has(SearchReturn::Max));
    first.into_iter().chain(last).copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saving_a_sorted_result() {
        use SearchReturn as R;
        let sorted = [9, 3, 7];
        assert_eq!(saved_in_order(&[R::Save], &sorted), sorted);
        assert_eq!(saved_in_order(&[R::Save, R::Min], &sorted), [9]);
        assert_eq!(saved_in_order(&[R::Save, R::Max], &sorted), [7]);
        assert_eq!(saved_in_order(&[R::Save, R::Min, R::Max], &sorted), [9, 7]);
        assert_eq!(saved_in_order(&[R::Save, R::Min, R::Count], &sorted), sorted);
        assert!(saved_in_order(&[R::Save, R::Min], &[]).is_empty());
    }
}
