//! Submission's STARTTLS (RFC 3207) and AUTH (RFC 4954) over the shared SASL exchanges, and
//! the protocol log's view of what the client sent (passwords and SASL data redacted).

use crate::smtp::fault::{Client, Fault, Refusal, Temporary};
use std::borrow::Cow;

use super::{line, Action, Auth, Session, State};
use crate::auth::login::Credentials;
use crate::auth::sasl::{self, Mechanism, SaslError, SaslExchange, SaslStep};
use crate::auth::scram::ScramCredentials;

/// Why a login did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginFailure {
    /// Wrong name or password; the penalty delay has already passed.
    BadCredentials,
    /// Authenticated but not allowed to submit: the reason is told.
    Refused(String),
    /// A connection limit for this user.
    Limit(String),
    Temporary,
}

impl Session {
    pub(super) fn starttls(&mut self, out: &mut Vec<u8>) -> Action {
        let offered = self.submission().is_some_and(|p| p.starttls);
        if self.tls {
            Fault::client(Client::Sequence, "TLS already active").write(out);
        } else if !offered {
            Fault::temporary(Temporary::Security, "TLS not available").write(out);
        } else {
            line(out, "220 2.0.0 ready to start TLS");
            return Action::StartTls;
        }
        Action::Continue
    }

    /// RFC 3207 §4.2: after the handshake the client starts over with EHLO, and nothing
    /// learnt before it counts (the driver has dropped any pipelined plaintext).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.auth = Auth::None;
        self.state = State::Ready;
    }

    pub(super) fn auth_start(&mut self, mechanism: &str, initial: Option<String>, out: &mut Vec<u8>) -> Action {
        let Some(policy) = self.submission() else {
            Fault::client(Client::NotRecognized, "command not recognized").write(out);
            return Action::Continue;
        };
        let refusal = if self.helo.is_none() {
            Some(Fault::client(Client::Sequence, "EHLO first"))
        } else if self.is_authenticated() {
            Some(Fault::client(Client::Sequence, "already authenticated"))
        } else if !matches!(self.state, State::Ready) {
            Some(Fault::client(
                Client::Sequence,
                "AUTH not permitted during a mail transaction",
            ))
        } else if !policy.login_type.allows_sasl(self.tls) {
            Some(Fault::refused(
                Refusal::EncryptionRequired,
                "encryption required for requested authentication mechanism",
            ))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            refusal.write(out);
            return Action::Continue;
        }
        let Some(mechanism) = Mechanism::parse(mechanism.as_bytes(), policy.oauth) else {
            Fault::client(Client::UnknownMechanism, "unrecognized authentication type").write(out);
            return Action::Continue;
        };
        let Ok((exchange, step)) = sasl::begin(mechanism, initial.as_deref()) else {
            Fault::client(Client::Syntax, "cannot decode the initial response").write(out);
            return Action::Continue;
        };
        self.sasl_step(Box::new(exchange), step, out)
    }

    pub(super) fn sasl_response(&mut self, input: &[u8], out: &mut Vec<u8>) -> Action {
        let Auth::Sasl(mut exchange) = std::mem::replace(&mut self.auth, Auth::None) else {
            return Action::Continue;
        };
        let step = sasl::respond_line(&mut exchange, input);
        if step == SaslStep::Failed(SaslError::TokenRefused) {
            // The answer to a refused token's error challenge: now the failure.
            return self.login_result(Err(LoginFailure::BadCredentials), out);
        }
        self.sasl_step(exchange, step, out)
    }

    pub fn scram_credentials(&mut self, credentials: Option<ScramCredentials>, out: &mut Vec<u8>) -> Action {
        let Auth::Pending(Some(mut exchange)) = std::mem::replace(&mut self.auth, Auth::None) else {
            return Action::Close;
        };
        let step = exchange.credentials(credentials.as_ref());
        self.sasl_step(exchange, step, out)
    }

    fn sasl_step(&mut self, exchange: Box<SaslExchange>, step: SaslStep, out: &mut Vec<u8>) -> Action {
        match step {
            SaslStep::Challenge(data) => {
                // RFC 4954 §4: challenges are 334 replies carrying base64.
                line(out, &format!("334 {}", sasl::encode_challenge(&data)));
                self.auth = Auth::Sasl(exchange);
                Action::Continue
            }
            SaslStep::NeedCredentials { authcid } => {
                self.auth = Auth::Pending(Some(exchange));
                self.scram_user.clone_from(&authcid);
                Action::LookupScram(authcid)
            }
            SaslStep::VerifyPassword {
                authzid,
                authcid,
                password,
            } => {
                self.auth = Auth::Pending(None);
                Action::Login(Credentials::Password {
                    authzid,
                    user: authcid,
                    password,
                    mechanism: exchange.mechanism().name(),
                })
            }
            SaslStep::Authenticated { authzid, authcid } => {
                self.auth = Auth::Pending(None);
                Action::Login(Credentials::Verified { authzid, user: authcid })
            }
            SaslStep::VerifyToken { authzid, token } => {
                let mechanism = exchange.mechanism().name();
                // Kept: a refused token owes the client its error challenge.
                self.auth = Auth::Pending(Some(exchange));
                Action::Login(Credentials::Token {
                    authzid,
                    token,
                    mechanism,
                })
            }
            SaslStep::Failed(SaslError::AuthFailed) => {
                self.auth = Auth::Pending(None);
                let user = std::mem::take(&mut self.scram_user);
                Action::Login(Credentials::Rejected { user })
            }
            SaslStep::Failed(SaslError::Cancelled) => {
                // RFC 4954 §4: a cancelled exchange is answered 501.
                Fault::client(Client::Cancelled, "authentication cancelled").write(out);
                Action::Continue
            }
            SaslStep::Failed(_) => {
                Fault::client(Client::Syntax, "malformed authentication exchange").write(out);
                Action::Continue
            }
        }
    }

    /// The outcome of `Action::Login`, the user's name on success. The caller has already
    /// waited out any penalty delay.
    pub fn login_result(&mut self, result: Result<String, LoginFailure>, out: &mut Vec<u8>) -> Action {
        let pending = std::mem::replace(&mut self.auth, Auth::None);
        if let (Err(LoginFailure::BadCredentials), Auth::Pending(Some(mut exchange))) = (&result, pending) {
            // RFC 7628 §3.2.3: a refused token gets its error challenge first; the failure
            // comes after the client's answer (`sasl_response`).
            let step = exchange.token_refused();
            if matches!(step, SaslStep::Challenge(_)) {
                return self.sasl_step(exchange, step, out);
            }
        }
        let failure = match result {
            Ok(user) => {
                self.auth = Auth::User(user);
                line(out, "235 2.7.0 authentication successful");
                return Action::Continue;
            }
            Err(f) => f,
        };
        match failure {
            LoginFailure::BadCredentials => {
                self.failures += 1;
                Fault::refused(Refusal::AuthFailed, "authentication credentials invalid").write(out);
                let max = self.submission().map_or(u32::MAX, |p| p.max_login_failures);
                if self.failures >= max {
                    Fault::temporary(
                        Temporary::Closing,
                        "too many failed authentications, closing connection",
                    )
                    .write(out);
                    return Action::Close;
                }
            }
            LoginFailure::Refused(why) => Fault::refused(Refusal::AuthFailed, why.to_string()).write(out),
            LoginFailure::Limit(why) => Fault::temporary(Temporary::Security, why.to_string()).write(out),
            LoginFailure::Temporary => {
                Fault::temporary(Temporary::Security, "temporary authentication failure").write(out)
            }
        }
        Action::Continue
    }

    /// The line as the protocol log may show it: SASL responses and initial responses redacted.
    pub fn loggable<'a>(&self, input: &'a [u8]) -> Cow<'a, [u8]> {
        if matches!(self.auth, Auth::Sasl(_)) {
            return Cow::Borrowed(b"<sasl response redacted>");
        }
        let mut words = input.splitn(3, |&b| b == b' ');
        let verb = words.next().unwrap_or_default();
        let mechanism = words.next();
        if verb.eq_ignore_ascii_case(b"AUTH") && words.next().is_some() {
            let mut shown = b"AUTH ".to_vec();
            shown.extend_from_slice(mechanism.unwrap_or_default());
            shown.extend_from_slice(b" <redacted>");
            return Cow::Owned(shown);
        }
        Cow::Borrowed(input)
    }
}
