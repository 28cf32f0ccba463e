//! RFC 5267 contexts: searches and sorts that the server keeps up to date (CONTEXT=SEARCH,
//! CONTEXT=SORT), and CANCELUPDATE.
//!
//! A SEARCH or SORT with RETURN (UPDATE) leaves a [`Context`] in the selected mailbox's state:
//! its tag, its search program and its current result, the matching UIDs in mailbox order for
//! SEARCH, in sort order with each message's sort values for SORT. When the session reports the
//! mailbox's changes to its client (`Session::sync`), each context is brought along with work
//! proportional to the change: expunged UIDs leave the result (REMOVEFROM before the EXPUNGE or
//! VANISHED, while the client's numbers still hold, §4.3.4); new messages and messages whose
//! flags changed are evaluated against the program once and enter or leave the result (ADDTO
//! after EXISTS, §4.3.3). No sort key depends on flags, so a message's place in a sorted result
//! is fixed by values computed once, when it enters.
//!
//! Invariants: a context's result holds only UIDs of the client's view (`Selected::view`), so
//! every position and message number sent is one the client knows; contexts live in `Selected`
//! and end with it (deselection, another SELECT, logout). Never touches the store's writer, a
//! socket or a clock.

use super::fault::{ok, Fault};
use std::cmp::Ordering;
use std::ops::Range;

use super::command::message::in_set;
use super::command::search::Lazy;
use super::format;
use super::search::{Candidate, SearchContext, SearchData, Searcher};
use super::session::Selected;
use super::sort::{self, SortCandidate, SortValues, Sorted};
use super::types::{SearchKey, SeqBound, SequenceSet, SortCriterion};
use super::view::{MailRead, UidView};
use crate::store::records::Uid;

/// What ringmail offers of RFC 5267, for the CAPABILITY response.
pub const CONTEXT_CAPABILITIES: &[&str] = &["ESORT", "CONTEXT=SEARCH", "CONTEXT=SORT"];

/// Updating contexts one session may hold at once. RFC 5267 §4.3.1: at least one, and more
/// SHOULD be offered; each holds its whole result, so the number is bounded.
pub const MAX_CONTEXTS: usize = 8;

/// About how many bytes the results of one session's contexts may hold: a SEARCH result costs
/// 4 bytes a message, a SORT result its sort values besides (DESIGN.md §4: a session holds
/// little). A context that would go past it is refused.
pub const CONTEXT_BUDGET: usize = 4 << 20;

/// The updating contexts of the selected mailbox (usually none).
#[derive(Debug, Default)]
pub(crate) struct Contexts(thin_vec::ThinVec<Context>);

#[derive(Debug)]
struct Context {
    /// The searching command's tag: the correlator of every update (§4.3).
    tag: String,
    /// UID SEARCH / UID SORT: updates carry UIDs, else message numbers (§4.3.2).
    uid: bool,
    /// The search program, message numbers and `$` made UIDs ([`freeze`]).
    key: SearchKey,
    results: Results,
}

#[derive(Debug)]
enum Results {
    /// SEARCH: the matching UIDs, ascending (mailbox order, §4.1).
    Search(Vec<Uid>),
    /// SORT: the matching messages in sort order, with their sort values.
    Sort {
        criteria: Vec<SortCriterion>,
        entries: Vec<(Uid, SortValues)>,
    },
}

/// A searching command's result, as the context starts from it.
pub(crate) enum Initial {
    /// The matching UIDs, ascending.
    Search(Vec<Uid>),
    /// The criteria and the messages in sort order.
    Sort(Vec<SortCriterion>, Vec<Sorted>),
}

/// One message's verdict under a context's program: `Some` (with its sort values; empty for
/// SEARCH) when it matches now.
type Verdict = (Uid, Option<SortValues>);

impl Contexts {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// REMOVEFROM for the UIDs of `gone` (ascending) that are in a result, numbered as the
    /// client numbers them before it hears of the expunges (`view`). RFC 5267 §4.3.4: sent
    /// before the EXPUNGE (or VANISHED) responses.
    pub fn expunged(&mut self, gone: &[Uid], view: &UidView, out: &mut Vec<u8>) {
        if gone.is_empty() {
            return;
        }
        for c in &mut self.0 {
            let removed = match &mut c.results {
                Results::Search(list) => {
                    // A few expunges against a long result: look each one up.
                    if !gone.iter().any(|u| list.binary_search(u).is_ok()) {
                        continue;
                    }
                    let runs = remove_runs(list, |u| gone.binary_search(u).is_ok());
                    vec![(0, runs.into_iter().flat_map(|(_, run)| run).collect())]
                }
                Results::Sort { entries, .. } => remove_runs(entries, |e| gone.binary_search(&e.0).is_ok())
                    .into_iter()
                    .map(|(position, run)| (position, run.into_iter().map(|e| e.0).collect()))
                    .collect(),
            };
            write_update(out, (&c.tag, c.uid), view, &removed, &[]);
        }
    }
}

impl Results {
    /// About how many bytes the result holds.
    fn footprint(&self) -> usize {
        match self {
            Results::Search(list) => list.len() * std::mem::size_of::<Uid>(),
            Results::Sort { entries, .. } => entries
                .iter()
                .map(|e| std::mem::size_of::<Uid>() + e.1.footprint())
                .sum(),
        }
    }
}

impl Context {
    /// Brings the result in line with `verdicts` (ascending UIDs, each in `view`): REMOVEFROM
    /// for those that left it, then ADDTO for those that entered, in one ESEARCH response.
    fn apply(&mut self, verdicts: Vec<Verdict>, view: &UidView, out: &mut Vec<u8>) {
        let (removed, added) = match &mut self.results {
            Results::Search(list) => {
                let (mut gone, mut new) = (Vec::new(), Vec::new());
                for (uid, verdict) in &verdicts {
                    match (list.binary_search(uid).is_ok(), verdict) {
                        (true, None) => gone.push(*uid),
                        (false, Some(_)) => new.push(*uid),
                        _ => {}
                    }
                }
                if !gone.is_empty() {
                    list.retain(|u| gone.binary_search(u).is_err());
                }
                insert_runs(list, new.clone(), Ord::cmp);
                // RFC 5267 §4.3.3-4: position 0, the set in mailbox order.
                let pair = |uids: Vec<Uid>| if uids.is_empty() { vec![] } else { vec![(0, uids)] };
                (pair(gone), pair(new))
            }
            Results::Sort { criteria, entries } => {
                let gone: Vec<Uid> = verdicts.iter().filter(|v| v.1.is_none()).map(|v| v.0).collect();
                let removed: Vec<(u32, Vec<Uid>)> = remove_runs(entries, |e| gone.binary_search(&e.0).is_ok())
                    .into_iter()
                    .map(|(position, run)| (position, run.into_iter().map(|e| e.0).collect()))
                    .collect();
                let order = |a: &(Uid, SortValues), b: &(Uid, SortValues)| compare(criteria, a, b);
                let mut new: Vec<(Uid, SortValues)> = verdicts
                    .into_iter()
                    .filter_map(|(uid, values)| Some((uid, values?)))
                    .filter(|e| entries.binary_search_by(|x| order(x, e)).is_err())
                    .collect();
                new.sort_by(order);
                let runs = insert_runs(entries, new, order);
                let added = runs
                    .into_iter()
                    .map(|(position, range)| (position, entries[range].iter().map(|e| e.0).collect()))
                    .collect();
                (removed, added)
            }
        };
        write_update(out, (&self.tag, self.uid), view, &removed, &added);
    }
}

fn compare(criteria: &[SortCriterion], a: &(Uid, SortValues), b: &(Uid, SortValues)) -> Ordering {
    // Within one view UIDs are in mailbox order, as sequence numbers are (RFC 5256 §3 ties).
    sort::compare(criteria, (&a.1, a.0), (&b.1, b.0))
}

/// Takes the entries `gone` picks out of `list`; returns each run of adjacent ones with its
/// 1-based position as the client finds it, the runs before it already removed (§4.3.4).
fn remove_runs<T>(list: &mut Vec<T>, mut gone: impl FnMut(&T) -> bool) -> Vec<(u32, Vec<T>)> {
    // What comes before the first leaver stays where it is.
    let Some(first) = list.iter().position(&mut gone) else {
        return Vec::new();
    };
    let rest = list.split_off(first);
    let mut runs: Vec<(u32, Vec<T>)> = Vec::new();
    let mut in_run = false;
    for item in rest {
        if !gone(&item) {
            list.push(item);
            in_run = false;
        } else if let (true, Some(run)) = (in_run, runs.last_mut()) {
            run.1.push(item);
        } else {
            runs.push((list.len() as u32 + 1, vec![item]));
            in_run = true;
        }
    }
    runs
}

/// Merges `new` (ordered by `order`, none of it in `list`) into `list` (ordered); returns each
/// run of adjacent newcomers as its 1-based position in the merged list and its index range
/// there. Inserted one run after another from the first, each lands at its position (§4.3.3).
fn insert_runs<T>(list: &mut Vec<T>, new: Vec<T>, order: impl Fn(&T, &T) -> Ordering) -> Vec<(u32, Range<usize>)> {
    if new.is_empty() {
        return Vec::new();
    }
    let old = std::mem::take(list);
    list.reserve(old.len() + new.len());
    let mut runs: Vec<(u32, Range<usize>)> = Vec::new();
    let (mut old, mut new) = (old.into_iter().peekable(), new.into_iter().peekable());
    loop {
        let take_new = match (old.peek(), new.peek()) {
            (Some(o), Some(n)) => order(n, o).is_lt(),
            (None, Some(_)) => true,
            (_, None) => false,
        };
        let next = if take_new { new.next() } else { old.next() };
        let Some(item) = next else {
            break;
        };
        let at = list.len();
        list.push(item);
        if !take_new {
            continue;
        }
        match runs.last_mut() {
            Some((_, range)) if range.end == at => range.end = at + 1,
            _ => runs.push((at as u32 + 1, at..at + 1)),
        }
    }
    runs
}

/// `* ESEARCH (TAG "t") [UID] [REMOVEFROM (pos set ...)] [ADDTO (pos set ...)]`, nothing when
/// neither has a pair. UIDs become message numbers of `view` for a non-UID context.
fn write_update(
    out: &mut Vec<u8>,
    (tag, uid): (&str, bool),
    view: &UidView,
    removed: &[(u32, Vec<Uid>)],
    added: &[(u32, Vec<Uid>)],
) {
    if removed.is_empty() && added.is_empty() {
        return;
    }
    out.extend_from_slice(b"* ESEARCH (TAG ");
    format::string(out, tag.as_bytes(), false);
    out.push(b')');
    if uid {
        out.extend_from_slice(b" UID");
    }
    for (item, pairs) in [(&b" REMOVEFROM ("[..], removed), (&b" ADDTO ("[..], added)] {
        if pairs.is_empty() {
            continue;
        }
        out.extend_from_slice(item);
        for (i, (position, uids)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            format::number(out, *position);
            out.push(b' ');
            let numbers: Vec<u32> = if uid {
                uids.clone()
            } else {
                // The invariant keeps every UID of a result in the view.
                uids.iter().filter_map(|u| view.seq_of(*u)).collect()
            };
            // In the requested order; ranges only where it ascends (§3.2).
            super::search::sequence_set(&numbers, out);
        }
        out.push(b')');
    }
    out.extend_from_slice(b"\r\n");
}

/// Re-evaluates `uids` (ascending, each in `sel.view`: new messages and messages whose flags
/// changed) against every context of `sel`, and tells the client what entered or left each
/// result. Each message's record is read once, its structure and text only if a program needs
/// them; a message that is gone from the store matches nothing.
pub(crate) fn reevaluate(store: &dyn MailRead, sel: &mut Selected, now: i64, uids: &[Uid], out: &mut Vec<u8>) {
    if sel.contexts.is_empty() || uids.is_empty() {
        return;
    }
    let contexts = &mut sel.contexts.0;
    let mut verdicts: Vec<Vec<Verdict>> = contexts.iter().map(|_| Vec::with_capacity(uids.len())).collect();
    // `$` and message numbers were made UIDs when each context began.
    let search = SearchContext {
        now,
        max_uid: sel.view.last().unwrap_or(0),
        max_seq: sel.view.len(),
        saved: None,
    };
    let mut searcher = Searcher::default();
    for &uid in uids {
        let Some(seq) = sel.view.seq_of(uid) else {
            debug_assert!(false, "reevaluate is given UIDs of the view only");
            continue;
        };
        let record = match store.message(sel.mailbox, uid) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("context update: {e}");
                None
            }
        };
        let mut lazy = record.as_ref().map(|r| Lazy::new(store, r.body_id));
        for (c, verdicts) in contexts.iter().zip(&mut verdicts) {
            let verdict = match (&record, lazy.as_mut()) {
                (Some(record), Some(lazy)) => {
                    let candidate = Candidate {
                        seq,
                        uid,
                        record,
                        recent: sel.recent.contains(uid),
                    };
                    searcher
                        .matches(&c.key, &candidate, &mut *lazy, &search)
                        .then(|| match &c.results {
                            Results::Search(_) => SortValues::default(),
                            Results::Sort { criteria, .. } => {
                                let structure = if sort::needs_structure(criteria) {
                                    lazy.structure()
                                } else {
                                    None
                                };
                                let candidate = SortCandidate {
                                    seq,
                                    uid,
                                    record,
                                    structure,
                                };
                                SortValues::of(criteria, &candidate)
                            }
                        })
                }
                _ => None,
            };
            verdicts.push((uid, verdict));
        }
    }
    for (c, verdicts) in contexts.iter_mut().zip(verdicts) {
        c.apply(verdicts, &sel.view, out);
    }
}

/// The program as updates evaluate it: message numbers (`*` included) and `$` stand for the
/// messages they named when the command ran, as UIDs. Later expunges renumber messages and a
/// later SAVE replaces `$`; neither may change what the client asked for.
fn freeze(key: &SearchKey, view: &UidView, saved: &[Uid]) -> SearchKey {
    use SearchKey::{And, Not, Or, Seq, Uid as UidKey};
    match key {
        Seq(set @ SequenceSet::Ranges(_)) => {
            let star = view.len();
            uid_key(
                view.iter()
                    .zip(1..)
                    .filter(|&(_, seq)| in_set(set, seq, star))
                    .map(|(uid, _)| uid),
            )
        }
        Seq(SequenceSet::Saved) | UidKey(SequenceSet::Saved) => uid_key(saved.iter().copied()),
        Not(k) => Not(Box::new(freeze(k, view, saved))),
        Or(a, b) => Or(Box::new(freeze(a, view, saved)), Box::new(freeze(b, view, saved))),
        And(keys) => And(keys.iter().map(|k| freeze(k, view, saved)).collect()),
        other => other.clone(),
    }
}

/// `UID` with ascending `uids` as ranges of consecutive UIDs; no UIDs match nothing.
fn uid_key(uids: impl Iterator<Item = Uid>) -> SearchKey {
    let mut ranges: Vec<(SeqBound, SeqBound)> = Vec::new();
    for uid in uids {
        match ranges.last_mut() {
            Some((_, SeqBound::Num(end))) if end.checked_add(1) == Some(uid) => *end = uid,
            _ => ranges.push((SeqBound::Num(uid), SeqBound::Num(uid))),
        }
    }
    SearchKey::Uid(SequenceSet::Ranges(ranges))
}

/// Why a context with `key` and `results` cannot join `contexts`, if it cannot (RFC 5267
/// §4.3.1 lets a server refuse).
fn refusal(contexts: &Contexts, key: &SearchKey, results: &Results) -> Option<&'static str> {
    if contexts.0.len() >= MAX_CONTEXTS {
        return Some("too many updating contexts");
    }
    if depends_on_time(key) {
        return Some("OLDER and YOUNGER results change with time alone");
    }
    let held: usize = contexts.0.iter().map(|c| c.results.footprint()).sum();
    if held + results.footprint() > CONTEXT_BUDGET {
        return Some("too large a result to keep up to date");
    }
    None
}

/// Whether the program's result changes with time alone (RFC 5032 OLDER, YOUNGER): no message
/// change would tell of it, so such a context is not offered.
fn depends_on_time(key: &SearchKey) -> bool {
    match key {
        SearchKey::Older(_) | SearchKey::Younger(_) => true,
        SearchKey::Not(k) => depends_on_time(k),
        SearchKey::Or(a, b) => depends_on_time(a) || depends_on_time(b),
        SearchKey::And(keys) => keys.iter().any(depends_on_time),
        _ => false,
    }
}

impl Selected {
    /// Whether `tag` is that of an updating context: RFC 5267 §4.3 answers a searching command
    /// with UPDATE under such a tag with BAD.
    pub(crate) fn update_tag_in_use(&self, tag: &str) -> bool {
        self.contexts.0.iter().any(|c| c.tag == tag)
    }

    /// The program of a searching command with UPDATE as its context will evaluate it
    /// ([`freeze`]); taken before the command runs, so that `$` is the one it searched, not the
    /// one its SAVE leaves (RFC 5182 §2.1).
    pub(crate) fn update_program(&self, key: &SearchKey) -> SearchKey {
        freeze(key, &self.view, &self.saved)
    }

    /// After the searching command `tag` wrote its results: keeps them up to date from here
    /// on, evaluating `key` (from [`update_program`](Selected::update_program)), or says why not
    /// with `* NO [NOUPDATE "tag"]` (RFC 5267 §4.3.1; the command itself still succeeds, its
    /// other return options honoured).
    pub(crate) fn start_context(&mut self, tag: &str, uid: bool, key: SearchKey, initial: Initial, out: &mut Vec<u8>) {
        let sel = self;
        let results = match initial {
            Initial::Search(uids) => Results::Search(uids),
            Initial::Sort(criteria, sorted) => Results::Sort {
                criteria,
                entries: sorted.into_iter().map(|s| (s.uid, s.values)).collect(),
            },
        };
        if let Some(why) = refusal(&sel.contexts, &key, &results) {
            out.extend_from_slice(b"* NO [NOUPDATE ");
            format::string(out, tag.as_bytes(), false);
            out.extend_from_slice(b"] ");
            out.extend_from_slice(why.as_bytes());
            out.extend_from_slice(b"\r\n");
            return;
        }
        sel.contexts.0.push(Context {
            tag: tag.to_owned(),
            uid,
            key,
            results,
        });
    }

    /// CANCELUPDATE (RFC 5267 §4.3.5): the contexts named stop, and their results are freed.
    /// A tag that names no context is `NO`, and then none stops.
    pub(crate) fn cancel_update(&mut self, tag: &str, tags: &[String], out: &mut Vec<u8>) {
        let sel = self;
        if let Some(unknown) = tags.iter().find(|t| !sel.contexts.0.iter().any(|c| &c.tag == *t)) {
            let mut text = b"no updating context has the tag ".to_vec();
            format::string(&mut text, unknown.as_bytes(), false);
            Fault::no_code(String::from_utf8_lossy(&text).into_owned()).write(tag, out);
            return;
        }
        sel.contexts.0.retain(|c| !tags.contains(&c.tag));
        ok(out, tag, "CANCELUPDATE completed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::types::SortKey;
    use crate::store::MessageRecord;

    fn rendered(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn runs_removed_and_inserted_at_their_positions() {
        // Positions as the client applies the pairs one after another.
        let mut list = vec![10, 11, 12, 13, 14, 15];
        let runs = remove_runs(&mut list, |&u| [11, 12, 14].contains(&u));
        assert_eq!(runs, [(2, vec![11, 12]), (3, vec![14])]);
        assert_eq!(list, [10, 13, 15]);
        let runs = insert_runs(&mut list, vec![9, 11, 12, 16], Ord::cmp);
        assert_eq!(runs, [(1, 0..1), (3, 2..4), (7, 6..7)]);
        assert_eq!(list, [9, 10, 11, 12, 13, 15, 16]);
        // Replaying the pairs on the client's old list gives the new one.
        let mut client = vec![10, 13, 15];
        for (position, range) in &runs {
            let at = *position as usize - 1;
            client.splice(at..at, list[range.clone()].iter().copied());
        }
        assert_eq!(client, list);
        assert!(insert_runs(&mut list, vec![], Ord::cmp).is_empty());
        assert!(remove_runs(&mut list, |_| false).is_empty());
    }

    /// A SEARCH context over UIDs 2734:2735 (the RFC 5267 §4.3.3 example) gains 2731:2733 and
    /// loses 2735; a message-number context says the same in the view's numbers.
    #[test]
    fn search_context_updates() {
        let view = UidView::new(vec![2730, 2731, 2732, 2733, 2734, 2735], 1);
        let mut c = Context {
            tag: "C01".into(),
            uid: true,
            key: SearchKey::All,
            results: Results::Search(vec![2734, 2735]),
        };
        let matches = |uid: Uid| (uid, Some(SortValues::default()));
        let verdicts = [matches(2731), matches(2732), matches(2733), matches(2734), (2735, None)];
        let got = rendered(|o| c.apply(verdicts.to_vec(), &view, o));
        assert_eq!(
            got,
            "* ESEARCH (TAG \"C01\") UID REMOVEFROM (0 2735) ADDTO (0 2731:2733)\r\n"
        );
        assert!(matches!(&c.results, Results::Search(l) if l == &[2731, 2732, 2733, 2734]));
        // Nothing changed: nothing sent.
        assert_eq!(rendered(|o| c.apply(verdicts.to_vec(), &view, o)), "");
        c.uid = false;
        let got = rendered(|o| c.apply(vec![(2731, None), (2733, None), matches(2735)], &view, o));
        assert_eq!(got, "* ESEARCH (TAG \"C01\") REMOVEFROM (0 2,4) ADDTO (0 6)\r\n");
        // Expunges: REMOVEFROM numbered as the client still numbers them.
        let mut contexts = Contexts(thin_vec::thin_vec![c]);
        let got = rendered(|o| contexts.expunged(&[2730, 2732, 2734], &view, o));
        assert_eq!(got, "* ESEARCH (TAG \"C01\") REMOVEFROM (0 3,5)\r\n");
        assert_eq!(rendered(|o| contexts.expunged(&[2731, 2733], &view, o)), "");
    }

    /// A SORT context by REVERSE SIZE keeps its order: newcomers land at their positions,
    /// leavers are removed where they are, in runs.
    #[test]
    fn sort_context_updates() {
        let criteria = vec![SortCriterion {
            reverse: true,
            key: SortKey::Size,
        }];
        let record = |size: u64| MessageRecord {
            flags: 0,
            keywords: Vec::new(),
            internal_date: 0,
            save_date: 0,
            size,
            modseq: 1,
            body_id: 1,
        };
        // UID u has size u * 10, except 5, as large as 3.
        let size = |uid: Uid| if uid == 5 { 30 } else { u64::from(uid) * 10 };
        let values = |uid: Uid| {
            let r = record(size(uid));
            let candidate = SortCandidate {
                seq: uid,
                uid,
                record: &r,
                structure: None,
            };
            SortValues::of(&criteria, &candidate)
        };
        let view = UidView::new((1..=9).collect(), 1);
        let entries = [8, 6, 3, 1].iter().map(|&u| (u, values(u))).collect();
        let mut c = Context {
            tag: "B01".into(),
            uid: true,
            key: SearchKey::All,
            results: Results::Sort {
                criteria: criteria.clone(),
                entries,
            },
        };
        // 9 goes first, 7 after 8, 5 after 3 (equal size, later in the mailbox); 6 leaves.
        let verdicts = [
            (1, Some(values(1))),
            (5, Some(values(5))),
            (6, None),
            (7, Some(values(7))),
            (9, Some(values(9))),
        ];
        let got = rendered(|o| c.apply(verdicts.to_vec(), &view, o));
        assert_eq!(
            got,
            "* ESEARCH (TAG \"B01\") UID REMOVEFROM (2 6) ADDTO (1 9 3 7 5 5)\r\n"
        );
        let order: Vec<Uid> = match &c.results {
            Results::Sort { entries, .. } => entries.iter().map(|e| e.0).collect(),
            Results::Search(_) => unreachable!(),
        };
        assert_eq!(order, [9, 8, 7, 3, 5, 1]);
        // Runs: 8 and 7 are adjacent, so are 5 and 1.
        c.uid = false;
        let mut contexts = Contexts(thin_vec::thin_vec![c]);
        let got = rendered(|o| contexts.expunged(&[1, 2, 5, 7, 8], &view, o));
        assert_eq!(got, "* ESEARCH (TAG \"B01\") REMOVEFROM (2 8,7 3 5,1)\r\n");
    }

    #[test]
    fn refusals() {
        let context = |n: u32| Context {
            tag: format!("t{n}"),
            uid: true,
            key: SearchKey::All,
            results: Results::Search((1..=n).collect()),
        };
        let small = Results::Search(vec![1, 2]);
        let mut contexts = Contexts((1..MAX_CONTEXTS as u32).map(context).collect());
        assert_eq!(refusal(&contexts, &SearchKey::All, &small), None);
        let older = SearchKey::Not(Box::new(SearchKey::Older(60)));
        assert!(refusal(&contexts, &older, &small).is_some_and(|w| w.contains("time")));
        // A result as large as the budget allows, with what the others hold.
        let held: usize = contexts.0.iter().map(|c| c.results.footprint()).sum();
        let fits = ((CONTEXT_BUDGET - held) / 4) as u32;
        assert_eq!(
            refusal(&contexts, &SearchKey::All, &Results::Search((1..=fits).collect())),
            None
        );
        let big = Results::Search((1..=fits + 1).collect());
        assert!(refusal(&contexts, &SearchKey::All, &big).is_some_and(|w| w.contains("large")));
        contexts.0.push(context(1));
        assert!(refusal(&contexts, &SearchKey::All, &small).is_some_and(|w| w.contains("many")));
    }

    #[test]
    fn programs_are_frozen_to_uids() {
        use SearchKey as K;
        let view = UidView::new(vec![3, 4, 5, 9, 12], 1);
        let uids = |ranges: &[(u32, u32)]| {
            K::Uid(SequenceSet::Ranges(
                ranges
                    .iter()
                    .map(|&(a, b)| (SeqBound::Num(a), SeqBound::Num(b)))
                    .collect(),
            ))
        };
        let seqs = |ranges: &[(u32, SeqBound)]| {
            K::Seq(SequenceSet::Ranges(
                ranges.iter().map(|&(a, b)| (SeqBound::Num(a), b)).collect(),
            ))
        };
        let cases = [
            (seqs(&[(2, SeqBound::Num(4))]), uids(&[(4, 5), (9, 9)])),
            (seqs(&[(4, SeqBound::Star)]), uids(&[(9, 9), (12, 12)])),
            (K::Seq(SequenceSet::Saved), uids(&[(3, 3), (12, 12)])),
            (
                K::Not(Box::new(K::Uid(SequenceSet::Saved))),
                K::Not(Box::new(uids(&[(3, 3), (12, 12)]))),
            ),
            (
                K::And(vec![K::Seen, seqs(&[(9, SeqBound::Num(9))])]),
                K::And(vec![K::Seen, uids(&[])]),
            ),
            (uids(&[(1, 4)]), uids(&[(1, 4)])),
        ];
        for (key, want) in cases {
            assert_eq!(freeze(&key, &view, &[3, 12]), want, "{key:?}");
        }
        assert!(depends_on_time(&K::Or(Box::new(K::Seen), Box::new(K::Younger(5)))));
        assert!(!depends_on_time(&K::And(vec![K::Seen, K::ModSeq(4)])));
    }
}
