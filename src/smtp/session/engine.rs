//! The session as the one driver runs it (`crate::engine`): command lines framed out of the
//! client's bytes, message data taken raw, and the timeouts — submission's login deadline and
//! idle limit, LMTP's one limit between any two reads.

use std::time::Instant;

use super::{Action, Flavor, Session};
use crate::engine::{Engine, Line, Next, Phase};
use crate::goodbye::Goodbye;

impl Engine for Session {
    type Action = Action;
    type Env<'e> = ();

    fn greeting(&self, out: &mut Vec<u8>) {
        Session::greeting(self, out);
    }

    fn goodbye(&self, why: Goodbye<'_>) -> String {
        let lmtp_host = self.is_lmtp().then_some(self.settings.hostname.as_str());
        crate::smtp::fault::goodbye(why, lmtp_host)
    }

    fn input(&mut self, input: &[u8], _: &mut (), out: &mut Vec<u8>) -> (usize, Action) {
        if self.in_data() {
            return self.data(input, out);
        }
        let (used, line) = self.lines.next(input);
        let action = match line {
            Line::Whole(line) => {
                self.log = Some(String::from_utf8_lossy(&self.loggable(line)).into_owned());
                self.on_line(line, out)
            }
            Line::TooLong => self.too_long(out),
            Line::Partial => Action::Continue,
        };
        (used, action)
    }

    fn next(action: Action) -> Next<Action> {
        match action {
            Action::Continue => Next::Read,
            Action::StartTls => Next::StartTls,
            Action::Close => Next::Close,
            action => Next::Act(action),
        }
    }

    fn tls_started(&mut self) {
        Session::tls_started(self);
        self.lines.reset();
    }

    fn take_log(&mut self) -> Option<String> {
        self.log.take()
    }

    fn deadline(&mut self, now: Instant, begun: bool) -> Instant {
        match self.settings.flavor {
            // An MTA has no login: it may take the limit between any two reads.
            Flavor::Lmtp => self.deadline.next(now, self.settings.timeouts, true, false),
            Flavor::Submission(_) => {
                let mid_line = begun && !self.in_data();
                self.deadline
                    .next(now, self.settings.timeouts, self.is_authenticated(), mid_line)
            }
        }
    }

    fn phase(&self) -> Phase {
        if self.is_authenticated() {
            Phase::Authenticated
        } else {
            Phase::PreAuth
        }
    }

    fn take_command(&mut self) -> Option<&'static str> {
        self.command.take()
    }
}
