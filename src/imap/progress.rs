//! Progress notifications for long-running commands (RFC 9585): `* OK [INPROGRESS ("tag" done
//! total)] ...`, sent between parts of a command that yields to the caller (a FETCH that is
//! flushed every megabyte), so that a client waiting on a slow download or a slow network does
//! not take the silence for a dead server.
//!
//! Clock-free like the rest of the core: the time comes in through `Ctx::now`. RFC 9585 defines
//! a response code only, no capability, so nothing is announced; clients ignore codes they do
//! not know (RFC 9051 §7.1).

/// Seconds between two notifications of one command, and before the first.
pub(crate) const INTERVAL_SECS: i64 = 2;

/// When a command last told its client how far it got.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    last: i64,
}

impl Progress {
    /// A command starting at `now` (unix seconds).
    pub fn start(now: i64) -> Progress {
        Progress { last: now }
    }

    /// Writes a notification if `INTERVAL_SECS` have passed since the start or the last one.
    /// `done` of `total` items are processed; `what` names them for people reading logs.
    pub fn report(&mut self, now: i64, tag: &str, (done, total): (usize, usize), what: &str, out: &mut Vec<u8>) {
        if now - self.last < INTERVAL_SECS {
            return;
        }
        self.last = now;
        open(tag, out);
        let mut n = itoa::Buffer::new();
        out.push(b' ');
        out.extend_from_slice(n.format(done).as_bytes());
        out.push(b' ');
        // inprogress-state-known-goal = number SP nz-number.
        match total {
            0 => out.extend_from_slice(b"NIL"),
            _ => out.extend_from_slice(n.format(total).as_bytes()),
        }
        out.extend_from_slice(b")] ");
        out.extend_from_slice(n.format(done).as_bytes());
        out.extend_from_slice(b" of ");
        out.extend_from_slice(n.format(total).as_bytes());
        out.push(b' ');
        out.extend_from_slice(what.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// `* OK [INPROGRESS ("tag" ` up to the progress state.
fn open(tag: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"* OK [INPROGRESS (");
    // inprogress-tag = quoted / NIL (RFC 9585 §4): tag characters need no escaping in a quoted
    // string, but a "]" would end the response code early for a careless reader, so such a tag
    // goes as NIL, as Dovecot does.
    if tag.contains(']') {
        out.extend_from_slice(b"NIL");
    } else {
        out.push(b'"');
        out.extend_from_slice(tag.as_bytes());
        out.push(b'"');
    }
}

/// A notification for a command that cannot tell how far it got (one store write): progress
/// and goal NIL.
pub(crate) fn working(tag: &str, out: &mut Vec<u8>) {
    open(tag, out);
    out.extend_from_slice(b" NIL NIL)] still working\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reported(progress: &mut Progress, now: i64, tag: &str, done: usize, total: usize) -> String {
        let mut out = Vec::new();
        progress.report(now, tag, (done, total), "messages", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn notifications_are_spaced_and_well_formed() {
        let mut p = Progress::start(100);
        assert_eq!(reported(&mut p, 100, "a1", 0, 10), "");
        assert_eq!(reported(&mut p, 101, "a1", 3, 10), "");
        assert_eq!(
            reported(&mut p, 102, "a1", 4, 10),
            "* OK [INPROGRESS (\"a1\" 4 10)] 4 of 10 messages\r\n"
        );
        assert_eq!(reported(&mut p, 103, "a1", 5, 10), "");
        assert_eq!(
            reported(&mut p, 110, "x]y", 9, 10),
            "* OK [INPROGRESS (NIL 9 10)] 9 of 10 messages\r\n"
        );
        assert_eq!(
            reported(&mut p, 120, "a1", 0, 0),
            "* OK [INPROGRESS (\"a1\" 0 NIL)] 0 of 0 messages\r\n"
        );
        let mut out = Vec::new();
        working("c7", &mut out);
        assert_eq!(out, b"* OK [INPROGRESS (\"c7\" NIL NIL)] still working\r\n");
    }
}
