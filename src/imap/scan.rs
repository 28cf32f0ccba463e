//! The scan behind SEARCH, SORT and THREAD, in steps: a search program looks at a bounded
//! number of messages, the session yields (`Action::Flush`), and the next step goes on from the
//! next UID with a fresh read snapshot. A search over a million messages therefore holds no
//! read transaction for seconds, lets the other connections of its core run between steps, and
//! tells its client how far it got (RFC 9585 INPROGRESS, `progress`).
//!
//! Owns the walk and its budget only: what the matches are for (the SEARCH, ESEARCH, SORT or
//! THREAD answer) is `command::search` and `command::sort`'s, run once the last step is done.
//!
//! Invariants: a step never reads past its budget by more than one message; messages are looked
//! at in UID order, each at most once; only messages of the client's view count (one delivered
//! since is not in it, one expunged since is no longer in the store, and both are skipped), so
//! the result is that of one pass over the mailbox as each message was when its step saw it.

use super::command::search::Lazy;
use super::progress::Progress;
use super::search::{Candidate, SearchContext, Searcher};
use super::session::{store_error, Action, Conn, Ctx, Selected, Step, User};
use super::types::SearchKey;
use super::view::{MailRead, UidView};
use crate::store::records::Uid;
use crate::store::{MessageRecord, StoreError};

/// How much one step may look at before it yields: whichever is reached first.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Message records examined.
    pub records: usize,
    /// Message bytes the matcher loaded (BODY, TEXT, HEADER keys).
    pub bytes: usize,
}

/// A step of a session's scan: a few milliseconds of work for records alone, and about as
/// long as reading and decoding 4 MiB of message text when keys need the bytes.
pub(crate) const STEP: Budget = Budget {
    records: 4096,
    bytes: 4 << 20,
};

/// One message the program matched, as its step saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Match {
    pub seq: u32,
    pub uid: Uid,
    pub modseq: u64,
}

/// A search program's walk over the selected mailbox.
pub(crate) struct Scan {
    key: SearchKey,
    /// Taken when the command started: `*`, `$` and the clock of OLDER/YOUNGER stay what they
    /// were for every step.
    context: SearchContext,
    /// RFC 9738 §3.1: nothing below the cut is looked at.
    floor: Uid,
    /// Where the next step starts; `None` once every message was looked at.
    next: Option<Uid>,
    /// In ascending UID order.
    matches: Vec<Match>,
    /// A program that requires `MODSEQ n` walks only the messages the store's modseq index
    /// lists from n (RFC 7162 §3.1.5): the UIDs, ascending, once the first step read them.
    changed: Option<Changed>,
}

enum Changed {
    Since(u64),
    Uids(Vec<Uid>),
}

impl Scan {
    pub fn new(key: SearchKey, context: SearchContext, floor: Uid) -> Scan {
        let changed = super::search::required_modseq(&key).map(|n| Changed::Since(n.saturating_sub(1)));
        Scan {
            changed,
            key,
            context,
            floor,
            next: Some(floor),
            matches: Vec::new(),
        }
    }

    /// Looks at the messages of `sel`'s view from where the last step stopped, until the end
    /// of the mailbox or of `budget`; true when the whole mailbox has been looked at.
    pub fn step(&mut self, store: &dyn MailRead, sel: &Selected, budget: Budget) -> Result<bool, StoreError> {
        let Some(from) = self.next else {
            return Ok(true);
        };
        let Some(last) = sel.view.last() else {
            self.next = None;
            return Ok(true);
        };
        // One searcher per step: its header and body buffers are reused from message to message.
        let mut searcher = Searcher::default();
        let (mut records, mut bytes, mut stopped_at) = (0, 0, None);
        let (key, context, matches) = (&self.key, &self.context, &mut self.matches);
        let mut look = |uid: Uid, record: &MessageRecord| {
            if uid > last {
                // Delivered after the client's view was taken: not in it, and neither is
                // anything after it.
                return false;
            }
            // At least one message a step, whatever the budget, so every step gets somewhere.
            if records > 0 && (records >= budget.records || bytes >= budget.bytes) {
                stopped_at = Some(uid);
                return false;
            }
            records += 1;
            let Some(seq) = sel.view.seq_of(uid) else {
                return true;
            };
            let candidate = Candidate {
                seq,
                uid,
                record,
                recent: sel.recent.contains(uid),
            };
            let mut lazy = Lazy::new(store, record.body_id);
            if searcher.matches(key, &candidate, &mut lazy, context) {
                matches.push(Match {
                    seq,
                    uid,
                    modseq: record.modseq,
                });
            }
            bytes += lazy.bytes_read();
            true
        };
        if let Some(Changed::Since(since)) = self.changed {
            self.changed = Some(Changed::Uids(store.changed_since(sel.mailbox, since)?));
        }
        match &self.changed {
            Some(Changed::Uids(uids)) => {
                for &uid in &uids[uids.partition_point(|&u| u < from)..] {
                    // One expunged since the index was read is simply not there any more.
                    let Some(record) = store.message(sel.mailbox, uid)? else {
                        continue;
                    };
                    if !look(uid, &record) {
                        break;
                    }
                }
            }
            _ => store.each_message_from(sel.mailbox, from, &mut look)?,
        }
        self.next = stopped_at;
        Ok(stopped_at.is_none())
    }

    /// Messages of `view` looked at so far, and how many the scan looks at in all: those from
    /// the floor up.
    pub fn progress(&self, view: &UidView) -> (usize, usize) {
        let before = view.count_below(self.floor);
        let reached = self.next.map_or(view.len(), |next| view.count_below(next));
        let (done, total) = (reached.saturating_sub(before), view.len() - before);
        (done as usize, total as usize)
    }

    /// The matches, in ascending UID order.
    pub fn matches(&self) -> &[Match] {
        &self.matches
    }
}

/// What the matches are for, answered once the scan is done.
pub(crate) enum Answer {
    Search(super::command::search::SearchAnswer),
    Sort(super::command::sort::SortAnswer),
}

/// A SEARCH, SORT or THREAD in progress.
pub(crate) struct ScanJob {
    pub tag: String,
    scan: Scan,
    /// RFC 9585 INPROGRESS notifications between steps.
    progress: Progress,
    answer: Answer,
}

impl Conn {
    /// The first step of a SEARCH, SORT or THREAD whose checks passed: `key` over the
    /// client's view from UID `floor` up.
    #[allow(clippy::too_many_arguments)] // one searching command's parts
    pub(crate) fn scan_start(
        &mut self,
        user: &User,
        sel: &mut Selected,
        tag: String,
        (key, floor): (SearchKey, Uid),
        answer: Answer,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        let job = ScanJob {
            tag,
            scan: Scan::new(key, sel.search_context(ctx.now), floor),
            progress: Progress::start(ctx.now),
            answer,
        };
        self.scan_resume(user, sel, job, ctx, out)
    }

    /// Runs the next step of a scan, and the answer when it was the last; the caller flushes
    /// after `Action::Flush` and resumes with a fresh snapshot.
    pub(crate) fn scan_resume(
        &mut self,
        user: &User,
        sel: &mut Selected,
        mut job: ScanJob,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        // Nothing is written before the first step: a notification is due only once
        // `progress::INTERVAL_SECS` have passed since the command started.
        let done = job.scan.progress(&sel.view);
        job.progress.report(ctx.now, &job.tag, done, "messages searched", out);
        match job.scan.step(ctx.store, sel, STEP) {
            Err(e) => {
                store_error(out, &job.tag, e);
                Action::Continue
            }
            Ok(false) => {
                self.step = Step::Scan(Box::new(job));
                Action::Flush
            }
            Ok(true) => {
                let ScanJob { tag, scan, answer, .. } = job;
                match answer {
                    Answer::Search(a) => self.search_answer((user, sel), &tag, a, scan.matches(), out),
                    Answer::Sort(a) => self.sort_answer(sel, &tag, a, scan.matches(), ctx.store, out),
                }
                Action::Continue
            }
        }
    }
}

#[cfg(test)]
mod tests;
