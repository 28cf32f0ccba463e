//! The POP3 front end: the POP3 session's AUTHORIZATION state (CAPA, STLS, USER/PASS, AUTH
//! with an initial response) as a `PreLogin`.

use super::front::{Ask, PreLogin};
use crate::auth::policy::Protocol;
use crate::auth::scram::ScramCredentials;
use crate::pop3::{Action, LoginFailure, Session, Settings};
use crate::serve::login::Failure;

pub fn front(config: &crate::config::Config, implicit_tls: bool, tls: bool) -> Session {
    let c = &config.pop3;
    let settings = Settings {
        login_type: c.login_type,
        stls: !implicit_tls,
        banner: c.banner.clone(),
        max_login_failures: config.limits.max_login_failures,
        max_line: c.max_command_size,
        timeouts: c.timeouts(),
        oauth: config.oauth.is_configured(),
    };
    Session::new(settings, tls)
}

impl PreLogin for Session {
    const PROTOCOL: Protocol = Protocol::Pop3;
    type Wire = crate::pop3::fault::Pop3;

    fn ask(action: Action) -> Ask {
        match action {
            Action::Login(credentials) => Ask::Login(credentials),
            Action::LookupScram(user) => Ask::LookupScram(user),
            // Nothing else happens before login.
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

    /// The back end's reply to the login (`+OK`) is the client's, as it is.
    fn logged_in(&mut self, answer: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(answer.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}
