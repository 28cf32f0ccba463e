//! SORT and THREAD (RFC 5256, with RFC 5957 DISPLAY sort keys): the search runs as for
//! SEARCH, then the matches are ordered or threaded from their stored structures.

use super::session::{tagged, Ctx, Session};
use super::sort::{self, SortCandidate, Sorter};
use super::thread::{self, Threader};
use super::types::{SearchKey, SortCriterion, ThreadAlgorithm};

pub(crate) enum Order<'a> {
    Sort(&'a [SortCriterion]),
    Thread(ThreadAlgorithm),
}

impl Session {
    pub(crate) fn sort(
        &mut self,
        tag: &str,
        uid: bool,
        (charset, key): (&str, &SearchKey),
        order: Order<'_>,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) {
        let store = ctx.store;
        let mut sorter = match &order {
            Order::Sort(criteria) => Ok(Sorter::new(criteria, uid)),
            Order::Thread(algorithm) => Err(Threader::new(*algorithm, uid)),
        };
        let needs_structure = sorter.as_ref().map_or(true, Sorter::needs_structure);
        let ok = self.each_match(tag, (Some(charset), key), ctx, out, &mut |seq, u, record| {
            let structure = if needs_structure {
                store.structure(record.body_id).ok().flatten()
            } else {
                None
            };
            let candidate = SortCandidate {
                seq,
                uid: u,
                record,
                structure: structure.as_ref(),
            };
            match &mut sorter {
                Ok(s) => s.push(&candidate),
                Err(t) => t.push(&candidate),
            }
        });
        if !ok {
            return;
        }
        let command = match sorter {
            Ok(s) => {
                sort::render_sort(out, &s.finish());
                "SORT"
            }
            Err(t) => {
                thread::render_threads(out, &t.finish());
                "THREAD"
            }
        };
        let prefix = if uid { "UID " } else { "" };
        tagged(out, tag, "OK", &format!("{prefix}{command} completed"));
    }
}
