//! The POP3 front end: the POP3 session's AUTHORIZATION state (CAPA, STLS, USER/PASS, AUTH
//! with an initial response) as a `LineSession`.

use std::borrow::Cow;

use super::front::Step;
use super::lines::{LineFront, LineSession};
use crate::auth::policy::Protocol;
use crate::auth::scram::ScramCredentials;
use crate::pop3::{Action, LoginFailure, Session, Settings};
use crate::serve::login::Failure;

pub fn front(config: &crate::config::Config, implicit_tls: bool, tls: bool) -> LineFront<Session> {
    let c = &config.pop3;
    let settings = Settings {
        login_type: c.login_type,
        stls: !implicit_tls,
        banner: c.banner.clone(),
        max_login_failures: config.limits.max_login_failures,
    };
    LineFront::new(Session::new(settings, tls), c.max_command_size)
}

fn step(action: Action) -> Step {
    match action {
        Action::Continue => Step::Read,
        Action::StartTls => Step::StartTls,
        Action::Login(credentials) => Step::Login(credentials),
        Action::LookupScram(user) => Step::LookupScram(user),
        // Nothing else happens before login.
        _ => Step::Close,
    }
}

impl LineSession for Session {
    const PROTOCOL: Protocol = Protocol::Pop3;
    type Wire = crate::pop3::fault::Pop3;

    fn greeting(&self, out: &mut Vec<u8>) {
        Session::greeting(self, out);
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Step {
        step(self.on_line(line, out))
    }

    fn line_too_long(&mut self, out: &mut Vec<u8>) -> Step {
        step(self.too_long(out))
    }

    fn shown<'a>(&self, line: &'a [u8]) -> Cow<'a, [u8]> {
        self.loggable(line)
    }

    fn tls_started(&mut self) {
        Session::tls_started(self);
    }

    fn scram(&mut self, keys: Option<ScramCredentials>, out: &mut Vec<u8>) -> Step {
        step(self.scram_credentials(keys, out))
    }

    fn failed(&mut self, failure: Failure, out: &mut Vec<u8>) -> Step {
        let failure = match failure {
            Failure::BadCredentials => LoginFailure::BadCredentials,
            Failure::Refused(why) => LoginFailure::Refused(why),
            Failure::Limit(why) => LoginFailure::Limit(why),
            Failure::Temporary => LoginFailure::Temporary,
        };
        step(self.login_result(Err(failure), out))
    }
}
