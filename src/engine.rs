//! What the one driver (`serve::driver`) asks of every protocol's sans-I/O session: bytes in,
//! bytes and actions out, and the instant by which the client must have said more. The
//! sessions decide their own timeouts here, from the clock the driver hands them; the driver
//! only waits until the instant they name.

use std::time::{Duration, Instant};

use crate::goodbye::Goodbye;

/// What the driver does with an action a session returned.
pub enum Next<A> {
    /// Take more buffered input, or read more when none is left.
    Read,
    /// Send what is queued, drop what the client pipelined, run the TLS handshake, then
    /// `tls_started`.
    StartTls,
    /// Carry this out and hand the session its answer.
    Act(A),
    /// Send what is queued and close.
    Close,
}

/// Where a session stands, as the operator sees it (`ringmail who`, the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Not logged in yet (and LMTP, which has no login).
    PreAuth = 0,
    Authenticated = 1,
    /// IMAP with a mailbox selected.
    Selected = 2,
    /// IMAP IDLE: waiting for mail, not working.
    Idle = 3,
}

impl Phase {
    pub const ALL: [Phase; 4] = [Phase::PreAuth, Phase::Authenticated, Phase::Selected, Phase::Idle];

    pub fn name(self) -> &'static str {
        match self {
            Phase::PreAuth => "pre-auth",
            Phase::Authenticated => "authenticated",
            Phase::Selected => "selected",
            Phase::Idle => "idle",
        }
    }

    pub fn from_u8(n: u8) -> Phase {
        Phase::ALL.get(usize::from(n)).copied().unwrap_or(Phase::PreAuth)
    }
}

/// A protocol's session as the one driver runs it.
pub trait Engine {
    /// What it asks the driver to do.
    type Action;
    /// What its input reads (IMAP: a store snapshot and the core's views).
    type Env<'e>;

    fn greeting(&self, out: &mut Vec<u8>);
    /// Its words for ending the session unasked.
    fn goodbye(&self, why: Goodbye<'_>) -> String;
    /// Takes client input; answers how much it used and what to do next.
    fn input(&mut self, input: &[u8], env: &mut Self::Env<'_>, out: &mut Vec<u8>) -> (usize, Self::Action);
    /// What the driver does with `action`.
    fn next(action: Self::Action) -> Next<Self::Action>;
    fn tls_started(&mut self);
    /// What the protocol log may show of the input `input` took (passwords redacted).
    fn take_log(&mut self) -> Option<String>;
    /// The instant by which the client must have sent more, asked at `now` with `begun` true
    /// when the input left over is an unfinished command line. At it the driver ends the
    /// session with the protocol's idle goodbye.
    fn deadline(&mut self, now: Instant, begun: bool) -> Instant;
    /// Where it stands.
    fn phase(&self) -> Phase;
    /// The name of the command the last input began (once), for the metrics: one of a fixed
    /// set, so the names cannot grow without bound.
    fn take_command(&mut self) -> Option<&'static str>;
}

/// A session's two timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// For the login, and for a command line begun after it.
    pub pre_auth: Duration,
    /// Between commands once logged in.
    pub auth: Duration,
}

/// When a connection's next input must have come: before login, one deadline from the first
/// ask to login, however the client trickles its bytes (a slow sender cannot hold a connection
/// by sending a byte now and then); after it, `auth` of silence, and a command line once begun
/// must end within `pre_auth` (literal and message data are not lines: they only have to keep
/// coming).
#[derive(Debug, Clone, Default)]
pub struct Deadline {
    mark: Mark,
}

/// The instant a deadline is measured from, besides the last input: one per session, since a
/// session is either logged in or not.
#[derive(Debug, Clone, Copy, Default)]
enum Mark {
    #[default]
    None,
    /// The login deadline, while not logged in.
    LoginBy(Instant),
    /// When the unfinished line after login began.
    LineSince(Instant),
}

impl Deadline {
    /// The instant the next read times out under `timeouts` (the session's settings hold
    /// them, not every session), for a session that is (not) logged in and is (not) in the
    /// middle of a line. Leaving the logged-in state (IMAP UNAUTHENTICATE) starts a new login
    /// deadline.
    pub fn next(&mut self, now: Instant, timeouts: Timeouts, authenticated: bool, mid_line: bool) -> Instant {
        let Timeouts { pre_auth, auth } = timeouts;
        match (authenticated, self.mark) {
            (false, Mark::LoginBy(by)) => by,
            (false, _) => {
                self.mark = Mark::LoginBy(now + pre_auth);
                now + pre_auth
            }
            (true, _) if !mid_line => {
                self.mark = Mark::None;
                now + auth
            }
            (true, Mark::LineSince(since)) => (now + auth).min(since + pre_auth),
            (true, _) => {
                self.mark = Mark::LineSince(now);
                (now + auth).min(now + pre_auth)
            }
        }
    }
}

/// One CRLF line at a time out of client input, for the line protocols (POP3, SMTP, LMTP).
/// A bare LF ends a line too; a line longer than `max_line` (its CRLF counted) is reported
/// once, when its end arrives, so the session answers it in order and goes on.
#[derive(Debug, Clone)]
pub struct Lines {
    max_line: usize,
    /// The rest of an over-long line is being dropped.
    discarding: bool,
}

/// What `Lines::next` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// One line, without its line ending.
    Whole(&'a [u8]),
    /// An over-long line ended.
    TooLong,
    /// No line end yet.
    Partial,
}

impl Lines {
    pub fn new(max_line: usize) -> Lines {
        Lines {
            max_line,
            discarding: false,
        }
    }

    /// The first line of `input`, and how many bytes it took.
    pub fn next<'a>(&mut self, input: &'a [u8]) -> (usize, Line<'a>) {
        match memchr::memchr(b'\n', input) {
            Some(end) if std::mem::take(&mut self.discarding) || end + 1 > self.max_line => (end + 1, Line::TooLong),
            Some(end) => {
                let line = &input[..end];
                (end + 1, Line::Whole(line.strip_suffix(b"\r").unwrap_or(line)))
            }
            // Its end is all an over-long line still waits for; what came so far is dropped.
            None if input.len() > self.max_line => {
                self.discarding = true;
                (input.len(), Line::Partial)
            }
            None => (0, Line::Partial),
        }
    }

    /// Forgets a line being dropped (STARTTLS: nothing from before the handshake survives).
    pub fn reset(&mut self) {
        self.discarding = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(lines: &mut Lines, input: &mut Vec<u8>) -> Vec<Result<Vec<u8>, ()>> {
        let mut got = Vec::new();
        loop {
            let (used, line) = lines.next(input);
            let item = match line {
                Line::Whole(l) => Some(Ok(l.to_vec())),
                Line::TooLong => Some(Err(())),
                Line::Partial => None,
            };
            input.drain(..used);
            match item {
                Some(item) => got.push(item),
                None => return got,
            }
        }
    }

    #[test]
    fn every_split_gives_the_same_lines() {
        let input =
            b"USER bob\r\nPASS x\r\n\r\nSTAT\nLIST 1\r\nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\r\nQUIT\r\n";
        let expected = lines(&mut Lines::new(32), &mut input.to_vec());
        assert_eq!(expected.len(), 7);
        assert_eq!(expected[5], Err(()));
        assert_eq!(expected[2], Ok(Vec::new()));
        for cut in 0..input.len() {
            let mut l = Lines::new(32);
            let mut buf = input[..cut].to_vec();
            let mut got = lines(&mut l, &mut buf);
            buf.extend_from_slice(&input[cut..]);
            got.extend(lines(&mut l, &mut buf));
            assert_eq!(got, expected, "split at {cut}");
        }
    }

    #[test]
    fn limit_counts_the_crlf() {
        let mut buf = b"abcd\r\nabcde\r\nab\r\n".to_vec();
        let got = lines(&mut Lines::new(6), &mut buf);
        assert_eq!(got, vec![Ok(b"abcd".to_vec()), Err(()), Ok(b"ab".to_vec())]);
    }

    #[test]
    fn login_deadline_holds_however_the_client_trickles() {
        let t = Timeouts {
            pre_auth: Duration::from_secs(60),
            auth: Duration::from_secs(1800),
        };
        let start = Instant::now();
        let mut d = Deadline::default();
        let first = d.next(start, t, false, false);
        assert_eq!(first, start + t.pre_auth);
        assert_eq!(d.next(start + Duration::from_secs(30), t, false, true), first);
        // Logged in: silence is measured from now, a begun line from its start.
        let later = start + Duration::from_secs(100);
        assert_eq!(d.next(later, t, true, false), later + t.auth);
        assert_eq!(d.next(later, t, true, true), later + t.pre_auth);
        assert_eq!(
            d.next(later + Duration::from_secs(50), t, true, true),
            later + t.pre_auth
        );
        // Logged out again (UNAUTHENTICATE): a fresh login deadline.
        let out = later + Duration::from_secs(200);
        assert_eq!(d.next(out, t, false, false), out + t.pre_auth);
    }
}
