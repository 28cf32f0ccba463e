//! The session as the one driver runs it (`crate::engine`). Its input reads the store and
//! the core's views (`Ctx`); IDLE and NOTIFY waits are the IMAP driver's, on the deadline and
//! keepalive the session names.

use std::time::Instant;

use super::session::State;
use super::session::{Action, Ctx, Session};
use crate::engine::{Engine, Next, Phase};
use crate::goodbye::Goodbye;

impl Engine for Session {
    type Action = Action;
    type Env<'e> = Ctx<'e>;

    fn greeting(&self, out: &mut Vec<u8>) {
        Session::greeting(self, out);
    }

    fn goodbye(&self, why: Goodbye<'_>) -> String {
        super::fault::goodbye(why)
    }

    fn input(&mut self, input: &[u8], ctx: &mut Ctx<'_>, out: &mut Vec<u8>) -> (usize, Action) {
        Session::input(self, input, ctx, out)
    }

    fn next(action: Action) -> Next<Action> {
        match action {
            // IDLE waits once the input is taken (the driver asks `is_idle`).
            Action::Continue | Action::Idle { .. } => Next::Read,
            Action::StartTls => Next::StartTls,
            Action::Close => Next::Close,
            action => Next::Act(action),
        }
    }

    fn tls_started(&mut self) {
        Session::tls_started(self);
    }

    fn take_log(&mut self) -> Option<String> {
        Session::take_log(self).map(String::from)
    }

    /// The reader knows whether a line is begun: literal data is not a line.
    fn deadline(&mut self, now: Instant, _begun: bool) -> Instant {
        let (authenticated, mid_line) = (self.is_authenticated(), self.mid_line());
        self.conn
            .deadline
            .next(now, self.conn.settings.timeouts, authenticated, mid_line)
    }

    fn phase(&self) -> Phase {
        match self.state {
            _ if self.is_idle() => Phase::Idle,
            State::NotAuthenticated | State::Logout => Phase::PreAuth,
            State::Authenticated(_) => Phase::Authenticated,
            State::Selected(..) => Phase::Selected,
        }
    }

    fn take_command(&mut self) -> Option<&'static str> {
        self.conn.command.take().map(|spec| spec.name)
    }
}
