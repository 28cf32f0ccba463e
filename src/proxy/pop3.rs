//! The POP3 front end: the POP3 session's AUTHORIZATION state (CAPA, STLS, USER/PASS, AUTH
//! with an initial response) as the proxy core's `PreLogin`.

use super::front::{next_line, Input, PreLogin, Step, Texts};
use crate::auth::policy::Protocol;
use crate::auth::scram::ScramCredentials;
use crate::pop3::{Action, LoginFailure, Session, Settings};
use crate::serve::login::Failure;

pub struct Pop3Front {
    session: Session,
    max_line: usize,
    discarding: bool,
    log: Option<String>,
}

impl Pop3Front {
    pub fn new(config: &crate::config::Config, implicit_tls: bool, tls: bool) -> Pop3Front {
        let c = &config.pop3;
        let settings = Settings {
            login_type: c.login_type,
            stls: !implicit_tls,
            banner: c.banner.clone(),
            max_login_failures: config.limits.max_login_failures,
        };
        Pop3Front {
            session: Session::new(settings, tls),
            max_line: c.max_command_size,
            discarding: false,
            log: None,
        }
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
}

fn refusal(hit: &str) -> String {
    format!("-ERR [SYS/TEMP] {hit}\r\n")
}

impl PreLogin for Pop3Front {
    const PROTOCOL: Protocol = Protocol::Pop3;
    const LOG_NAME: &'static str = "pop3";
    const TEXTS: Texts = Texts {
        refusal,
        shutting_down: b"-ERR [SYS/TEMP] server shutting down\r\n",
        // RFC 1939 §3: the autologout timer.
        idle: b"-ERR autologout: idle for too long\r\n",
    };

    fn greeting(&self, out: &mut Vec<u8>) {
        self.session.greeting(out);
    }

    fn input(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Step) {
        let (used, line) = next_line(input, self.max_line, &mut self.discarding);
        let action = match line {
            Input::Line(line) => {
                self.log = Some(String::from_utf8_lossy(&self.session.loggable(line)).into_owned());
                self.session.on_line(line, out)
            }
            Input::TooLong => self.session.too_long(out),
            Input::NeedMore => return (used, Step::Read),
        };
        (used, Pop3Front::step(action))
    }

    fn tls_started(&mut self) {
        self.session.tls_started();
    }

    fn scram_credentials(&mut self, keys: Option<ScramCredentials>, out: &mut Vec<u8>) -> Step {
        Pop3Front::step(self.session.scram_credentials(keys, out))
    }

    fn login_failed(&mut self, failure: Failure, out: &mut Vec<u8>) -> Step {
        let failure = match failure {
            Failure::BadCredentials => LoginFailure::BadCredentials,
            Failure::Refused(why) => LoginFailure::Refused(why),
            Failure::Limit(why) => LoginFailure::Limit(why),
            Failure::Temporary => LoginFailure::Temporary,
        };
        Pop3Front::step(self.session.login_result(Err(failure), out))
    }

    /// The back end's `+OK` (with its maildrop's size) is the answer to the client's login.
    fn logged_in(&mut self, answer: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(answer.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    fn take_log(&mut self) -> Option<String> {
        self.log.take()
    }
}
