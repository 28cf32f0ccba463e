//! The submission front end: the SMTP session up to AUTH (EHLO, STARTTLS, AUTH with an
//! initial response) as the proxy core's `PreLogin`. The back end gets its own EHLO and AUTH
//! from the front end; after the client's `235` everything is relayed.

use super::front::{next_line, Input, PreLogin, Step, Texts};
use crate::auth::policy::Protocol;
use crate::auth::scram::ScramCredentials;
use crate::serve::login::Failure;
use crate::smtp::{Action, Flavor, LoginFailure, Session, Settings, SubmissionPolicy};

pub struct SubmissionFront {
    session: Session,
    max_line: usize,
    discarding: bool,
    log: Option<String>,
}

impl SubmissionFront {
    pub fn new(config: &crate::config::Config, implicit_tls: bool, tls: bool) -> SubmissionFront {
        let c = &config.submission;
        let settings = Settings {
            hostname: config.server.hostname.clone(),
            max_message_size: c.max_message_size,
            max_recipients: c.max_recipients,
            domains: config.server.domains.clone(),
            flavor: Flavor::Submission(SubmissionPolicy {
                login_type: c.login_type,
                starttls: !implicit_tls,
                relay: c.relay.is_some(),
                max_login_failures: config.limits.max_login_failures,
            }),
        };
        SubmissionFront {
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
            // Nothing else happens before AUTH: MAIL and DATA are refused until then.
            _ => Step::Close,
        }
    }
}

fn refusal(hit: &str) -> String {
    format!("421 4.7.0 {hit}\r\n")
}

impl PreLogin for SubmissionFront {
    const PROTOCOL: Protocol = Protocol::Submission;
    const LOG_NAME: &'static str = "submission";
    const TEXTS: Texts = Texts {
        refusal,
        shutting_down: b"421 4.3.2 server shutting down\r\n",
        idle: b"421 4.4.2 idle for too long, closing\r\n",
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
        (used, SubmissionFront::step(action))
    }

    fn tls_started(&mut self) {
        self.session.tls_started();
    }

    fn scram_credentials(&mut self, keys: Option<ScramCredentials>, out: &mut Vec<u8>) -> Step {
        SubmissionFront::step(self.session.scram_credentials(keys, out))
    }

    fn login_failed(&mut self, failure: Failure, out: &mut Vec<u8>) -> Step {
        let failure = match failure {
            Failure::BadCredentials => LoginFailure::BadCredentials,
            Failure::Refused(why) => LoginFailure::Refused(why),
            Failure::Limit(why) => LoginFailure::Limit(why),
            Failure::Temporary => LoginFailure::Temporary,
        };
        SubmissionFront::step(self.session.login_result(Err(failure), out))
    }

    /// The back end's `235` is the answer to the client's AUTH.
    fn logged_in(&mut self, answer: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(answer.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    fn take_log(&mut self) -> Option<String> {
        self.log.take()
    }
}
