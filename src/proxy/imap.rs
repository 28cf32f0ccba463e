//! The IMAP front end: the IMAP session's own pre-login part (CAPABILITY, ID, STARTTLS,
//! LOGIN, AUTHENTICATE with SASL-IR) as the proxy core's `PreLogin`.

use super::front::{PreLogin, Step};
use super::nostore::NoStore;
use crate::auth::policy::Protocol;
use crate::auth::scram::ScramCredentials;
use crate::imap::view::Unshared;
use crate::imap::{Action, Ctx, LoginFailure, Session, Settings};
use crate::serve::login::Failure;
use crate::store::recent::RecentClaims;

pub struct ImapFront {
    session: Session,
    recent: RecentClaims,
}

impl ImapFront {
    pub fn new(config: &crate::config::Config, implicit_tls: bool, tls: bool) -> ImapFront {
        let c = &config.imap;
        let settings = Settings {
            login_type: c.login_type,
            starttls: !implicit_tls,
            max_login_failures: config.limits.max_login_failures,
            max_command_size: c.max_command_size,
            append_limit: c.append_limit,
            message_limit: c.message_limit(),
            server_name: config.server.hostname.clone(),
            parse: config.parse_limits(),
        };
        ImapFront {
            session: Session::new(settings, tls),
            recent: RecentClaims::default(),
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

impl PreLogin for ImapFront {
    const PROTOCOL: Protocol = Protocol::Imap;
    type Wire = crate::imap::fault::Imap;

    fn greeting(&self, out: &mut Vec<u8>) {
        self.session.greeting(out);
    }

    fn input(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Step) {
        let mut ctx = Ctx {
            store: &NoStore,
            views: &mut Unshared,
            recent: &self.recent,
            now: 0,
        };
        let (used, action) = self.session.input(input, &mut ctx, out);
        (used, ImapFront::step(action))
    }

    fn tls_started(&mut self) {
        self.session.tls_started();
    }

    fn scram_credentials(&mut self, keys: Option<ScramCredentials>, out: &mut Vec<u8>) -> Step {
        ImapFront::step(self.session.scram_credentials(keys, out))
    }

    fn login_failed(&mut self, failure: Failure, out: &mut Vec<u8>) -> Step {
        let failure = match failure {
            Failure::BadCredentials => LoginFailure::BadCredentials,
            Failure::Refused(why) | Failure::Limit(why) => LoginFailure::Refused(why),
            Failure::Temporary => LoginFailure::Temporary,
        };
        ImapFront::step(self.session.login_result(Err(failure), out))
    }

    fn logged_in(&mut self, answer: &str, out: &mut Vec<u8>) {
        self.session.login_passed_on(answer, out);
    }

    fn take_log(&mut self) -> Option<String> {
        self.session.take_log()
    }
}
