//! The IMAP front end: the IMAP session's own pre-login part (CAPABILITY, ID, STARTTLS,
//! LOGIN, AUTHENTICATE with SASL-IR) as the proxy core's `PreLogin`.

use std::time::Instant;

use super::front::{Ask, PreLogin};
use super::nostore::NoStore;
use crate::auth::policy::Protocol;
use crate::auth::scram::ScramCredentials;
use crate::engine::{Engine, Next, Phase};
use crate::goodbye::Goodbye;
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
            timeouts: c.timeouts(),
            idle_keepalive: std::time::Duration::from_secs(c.idle_keepalive),
            oauth: config.oauth.is_configured(),
            protocol_log: c.protocol_log,
        };
        ImapFront {
            session: Session::new(settings, tls),
            recent: RecentClaims::default(),
        }
    }
}

/// The IMAP session with nothing to read: before login no command touches the store.
impl Engine for ImapFront {
    type Action = Action;
    type Env<'e> = ();

    fn greeting(&self, out: &mut Vec<u8>) {
        self.session.greeting(out);
    }

    fn goodbye(&self, why: Goodbye<'_>) -> String {
        Engine::goodbye(&self.session, why)
    }

    fn input(&mut self, input: &[u8], _: &mut (), out: &mut Vec<u8>) -> (usize, Action) {
        let mut ctx = Ctx {
            store: &NoStore,
            views: &mut Unshared,
            recent: &self.recent,
            now: 0,
            referred: None,
        };
        self.session.input(input, &mut ctx, out)
    }

    fn next(action: Action) -> Next<Action> {
        Session::next(action)
    }

    fn tls_started(&mut self) {
        self.session.tls_started();
    }

    fn take_log(&mut self) -> Option<String> {
        self.session.take_log().map(String::from)
    }

    fn deadline(&mut self, now: Instant, begun: bool) -> Instant {
        Engine::deadline(&mut self.session, now, begun)
    }

    fn phase(&self) -> Phase {
        Engine::phase(&self.session)
    }

    fn take_command(&mut self) -> Option<&'static str> {
        Engine::take_command(&mut self.session)
    }
}

impl PreLogin for ImapFront {
    const PROTOCOL: Protocol = Protocol::Imap;
    type Wire = crate::imap::fault::Imap;

    fn ask(action: Action) -> Ask {
        match action {
            Action::Login(credentials) => Ask::Login(credentials),
            Action::LookupScram(user) => Ask::LookupScram(user),
            // Nothing else happens before login.
            _ => Ask::Nothing,
        }
    }

    fn scram_credentials(&mut self, keys: Option<ScramCredentials>, out: &mut Vec<u8>) -> Action {
        self.session.scram_credentials(keys, out)
    }

    fn login_failed(&mut self, failure: Failure, out: &mut Vec<u8>) -> Action {
        let failure = match failure {
            Failure::BadCredentials => LoginFailure::BadCredentials,
            Failure::Refused(why) | Failure::Limit(why) => LoginFailure::Refused(why),
            Failure::Temporary => LoginFailure::Temporary,
        };
        self.session.login_result(Err(failure), out)
    }

    fn logged_in(&mut self, answer: &str, out: &mut Vec<u8>) {
        self.session.login_passed_on(answer, out);
    }
}
