//! The submission front end: the SMTP session up to AUTH (EHLO, STARTTLS, AUTH with an
//! initial response) as a `PreLogin`.

use super::front::{Ask, PreLogin};
use crate::auth::policy::Protocol;
use crate::auth::scram::ScramCredentials;
use crate::serve::login::Failure;
use crate::smtp::{Action, Flavor, LoginFailure, Session, Settings, SubmissionPolicy};

pub fn front(config: &crate::config::Config, implicit_tls: bool, tls: bool) -> Session {
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
            oauth: config.oauth.is_configured(),
        }),
        spool: None,
        max_line: c.max_command_size,
        timeouts: c.timeouts(),
    };
    Session::new(settings, tls)
}

impl PreLogin for Session {
    const PROTOCOL: Protocol = Protocol::Submission;
    type Wire = crate::smtp::fault::Submission;

    fn ask(action: Action) -> Ask {
        match action {
            Action::Login(credentials) => Ask::Login(credentials),
            Action::LookupScram(user) => Ask::LookupScram(user),
            // Nothing else happens before AUTH: MAIL and DATA are refused until then.
            _ => Ask::Nothing,
        }
    }

    fn scram_credentials(&mut self, keys: Option<ScramCredentials>, out: &mut Vec<u8>) -> Action {
        Session::scram_credentials(self, keys, out)
    }

    fn login_failed(&mut self, failure: Failure, out: &mut Vec<u8>) -> Action {
        let failure = match failure {
            Failure::BadCredentials => LoginFailure::BadCredentials,
            Failure::Refused(why) => LoginFailure::Refused(why),
            Failure::Limit(why) => LoginFailure::Limit(why),
            Failure::Temporary => LoginFailure::Temporary,
        };
        self.login_result(Err(failure), out)
    }

    /// The back end's reply to the login (`235`) is the client's, as it is.
    fn logged_in(&mut self, answer: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(answer.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}
