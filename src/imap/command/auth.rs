//! STARTTLS, LOGIN, AUTHENTICATE (with SASL-IR), UNAUTHENTICATE, ENABLE and ID.

use crate::auth::login::Credentials;
use crate::auth::sasl::{self, Mechanism, SaslExchange, SaslStep};
use crate::auth::scram::ScramCredentials;
use crate::imap::command::{Spec, States};
use crate::imap::fault::{ok, Code, Fault};
use crate::imap::parse;
use crate::imap::parse::lexer::{self, Cursor, Syntax};
use crate::imap::session::{untagged, Action, Conn, Enabled, LoginFailure, ScramLookup, Session, State, Step, User};
use crate::imap::types::Command;
use crate::store::records::UserId;

/// The command table's rows (`command::COMMANDS`).
pub(crate) const STARTTLS: Spec = Spec {
    name: "STARTTLS",
    extension: None,
    states: States::NotAuthenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.2.1",
    parse: |c| parse::bare(c, Command::StartTls),
};

pub(crate) const AUTHENTICATE: Spec = Spec {
    name: "AUTHENTICATE",
    extension: None,
    states: States::NotAuthenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.2.2",
    parse: parse_authenticate,
};

pub(crate) const LOGIN: Spec = Spec {
    name: "LOGIN",
    extension: None,
    states: States::NotAuthenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 9051 §6.2.3",
    parse: parse_login,
};

pub(crate) const UNAUTHENTICATE: Spec = Spec {
    name: "UNAUTHENTICATE",
    extension: Some("UNAUTHENTICATE"),
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 8437 §3",
    parse: |c| parse::bare(c, Command::Unauthenticate),
};

pub(crate) const ENABLE: Spec = Spec {
    name: "ENABLE",
    extension: Some("ENABLE"),
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 5161",
    parse: parse_enable,
};

impl Conn {
    pub(crate) fn starttls(&mut self, tag: &str, out: &mut Vec<u8>) -> Action {
        if self.tls || !self.settings.starttls {
            Fault::bad("TLS is already on or not available here").write(tag, out);
            return Action::Continue;
        }
        ok(out, tag, "begin TLS negotiation now");
        Action::StartTls
    }

    pub(crate) fn login(&mut self, tag: String, user: String, password: String, out: &mut Vec<u8>) -> Action {
        if !self.settings.login_type.allows_plain_command(self.tls) {
            // RFC 9051 §6.2.3 with LOGINDISABLED advertised.
            Fault::no(Code::PrivacyRequired, "LOGIN is disabled before STARTTLS").write(&tag, out);
            return Action::Continue;
        }
        self.step = Step::Login { tag, token: None };
        Action::Login(Credentials::Password {
            authzid: None,
            user,
            password,
            mechanism: "LOGIN-command",
        })
    }

    pub(crate) fn authenticate(
        &mut self,
        tag: String,
        mechanism: &str,
        initial: Option<String>,
        out: &mut Vec<u8>,
    ) -> Action {
        let Some(mechanism) = Mechanism::parse(mechanism.as_bytes(), self.settings.oauth) else {
            Fault::no(Code::Cannot, "unsupported mechanism").write(&tag, out);
            return Action::Continue;
        };
        if !self.settings.login_type.allows_sasl(self.tls) {
            Fault::no(Code::PrivacyRequired, "authentication needs TLS first").write(&tag, out);
            return Action::Continue;
        }
        let Ok((exchange, step)) = sasl::begin(mechanism, initial.as_deref()) else {
            Fault::bad("invalid initial response").write(&tag, out);
            return Action::Continue;
        };
        self.sasl_step(tag, Box::new(exchange), step, String::new(), out)
    }
}

/// RFC 5161. CONDSTORE (RFC 7162 §3.1), QRESYNC (§3.2.3, which implies CONDSTORE),
/// IMAP4rev2 (RFC 9051 §6.3.1), UTF8=ACCEPT (RFC 6855) and UIDONLY (RFC 9586) change what the
/// server sends; unknown names are ignored.
pub(crate) fn enable(user: &mut User, caps: &[String], out: &mut Vec<u8>) {
    let mut line = String::from("ENABLED");
    // An extension switched off for this account is as unknown as any other (`switches`).
    for cap in caps
        .iter()
        .filter(|c| !crate::imap::switches::hidden(c, &user.disabled))
    {
        if cap.eq_ignore_ascii_case("CONDSTORE") && !user.enabled.condstore {
            user.enabled.condstore = true;
            line.push_str(" CONDSTORE");
        } else if cap.eq_ignore_ascii_case("IMAP4rev2") && !user.enabled.imap4rev2 {
            user.enabled.imap4rev2 = true;
            line.push_str(" IMAP4rev2");
        } else if cap.eq_ignore_ascii_case("UTF8=ACCEPT") && !user.enabled.utf8 {
            user.enabled.utf8 = true;
            line.push_str(" UTF8=ACCEPT");
        } else if cap.eq_ignore_ascii_case("UIDONLY") && !user.enabled.uid_only {
            // RFC 9586 §3.1.
            user.enabled.uid_only = true;
            line.push_str(" UIDONLY");
        } else if cap.eq_ignore_ascii_case("QRESYNC") && !user.enabled.qresync {
            user.enabled.qresync = true;
            user.enabled.condstore = true;
            line.push_str(" QRESYNC");
        }
    }
    untagged(out, &line);
}

/// The answers to the login actions, and the SASL exchange between them.
impl Session {
    /// The answer to `Action::Login`.
    /// On success: the account's id, name and the IMAP extensions it may not use.
    /// A front end's login succeeded at the back end (`ringmail proxy`): the client hears the
    /// back end's own answer (`OK [CAPABILITY ...] ...`, its capabilities being the ones that
    /// count from now on) under its own tag. The session ends here; the bytes are relayed.
    pub fn login_passed_on(&mut self, answer: &str, out: &mut Vec<u8>) {
        if let Step::Login { tag, .. } = std::mem::replace(&mut self.conn.step, Step::Commands) {
            out.extend_from_slice(tag.as_bytes());
            out.push(b' ');
            out.extend_from_slice(answer.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.state = State::Logout;
    }

    pub fn login_result(
        &mut self,
        result: Result<(UserId, String, Vec<String>), LoginFailure>,
        out: &mut Vec<u8>,
    ) -> Action {
        let (tag, token) = match std::mem::replace(&mut self.conn.step, Step::Commands) {
            Step::Login { tag, token } => (tag, token),
            _ => return Action::Close,
        };
        if let (Err(LoginFailure::BadCredentials), Some(exchange)) = (&result, token) {
            // RFC 7628 §3.2.3: a refused token gets its error challenge first; the failure
            // comes after the client's answer (`sasl_line`).
            let step = exchange_refused(exchange);
            return self.conn.sasl_step(tag, step.0, step.1, String::new(), out);
        }
        match result {
            Ok((id, name, disabled)) => {
                self.state = State::Authenticated(User {
                    id,
                    name: name.into(),
                    enabled: Enabled::default(),
                    disabled: disabled.into(),
                });
                // LITERAL+ from here on (RFC 7888 §4): literals are bounded by APPENDLIMIT.
                self.conn.reader.set_max_nonsync(None);
                let caps = self.capability_string();
                ok(out, &tag, &format!("[CAPABILITY {caps}] logged in"));
                Action::Continue
            }
            Err(LoginFailure::BadCredentials) => {
                self.conn.failures += 1;
                Fault::no(Code::AuthenticationFailed, "authentication failed").write(&tag, out);
                if self.conn.failures >= self.conn.settings.max_login_failures {
                    untagged(out, "BYE too many failed logins");
                    self.state = State::Logout;
                    return Action::Close;
                }
                Action::Continue
            }
            Err(LoginFailure::Refused(reason)) => {
                Fault::no(Code::ContactAdmin, reason.to_string()).write(&tag, out);
                Action::Continue
            }
            Err(LoginFailure::Temporary) => {
                Fault::no(Code::Unavailable, "temporary failure, try again later").write(&tag, out);
                Action::Continue
            }
        }
    }

    /// The answer to `Action::LookupScram`.
    pub fn scram_credentials(&mut self, credentials: Option<ScramCredentials>, out: &mut Vec<u8>) -> Action {
        let Step::Scram(lookup) = std::mem::replace(&mut self.conn.step, Step::Commands) else {
            return Action::Close;
        };
        let ScramLookup {
            tag,
            mut exchange,
            user,
        } = *lookup;
        let step = exchange.credentials(credentials.as_ref());
        self.conn.sasl_step(tag, exchange, step, user, out)
    }

    pub(crate) fn sasl_line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Action {
        let Step::Sasl { tag, mut exchange } = std::mem::replace(&mut self.conn.step, Step::Commands) else {
            // `input` hands lines here in the SASL step only.
            return Action::Continue;
        };
        let step = sasl::respond_line(&mut exchange, line);
        if step == SaslStep::Failed(sasl::SaslError::TokenRefused) {
            // The answer to a refused token's error challenge: now the failure.
            self.conn.step = Step::Login { tag, token: None };
            return self.login_result(Err(LoginFailure::BadCredentials), out);
        }
        self.conn.sasl_step(tag, exchange, step, String::new(), out)
    }
}

/// A token's exchange after the token was refused, and the error challenge it owes.
fn exchange_refused(mut exchange: Box<SaslExchange>) -> (Box<SaslExchange>, SaslStep) {
    let step = exchange.token_refused();
    (exchange, step)
}

impl Conn {
    pub(crate) fn sasl_step(
        &mut self,
        tag: String,
        exchange: Box<SaslExchange>,
        step: SaslStep,
        user: String,
        out: &mut Vec<u8>,
    ) -> Action {
        match step {
            SaslStep::Challenge(data) => {
                out.extend_from_slice(b"+ ");
                out.extend_from_slice(sasl::encode_challenge(&data).as_bytes());
                out.extend_from_slice(b"\r\n");
                self.step = Step::Sasl { tag, exchange };
                Action::Continue
            }
            SaslStep::NeedCredentials { authcid } => {
                self.step = Step::Scram(Box::new(ScramLookup {
                    tag,
                    exchange,
                    user: authcid.clone(),
                }));
                Action::LookupScram(authcid)
            }
            SaslStep::VerifyPassword {
                authzid,
                authcid,
                password,
            } => {
                let mechanism = exchange.mechanism().name();
                self.step = Step::Login { tag, token: None };
                Action::Login(Credentials::Password {
                    authzid,
                    user: authcid,
                    password,
                    mechanism,
                })
            }
            SaslStep::Authenticated { authzid, authcid } => {
                self.step = Step::Login { tag, token: None };
                Action::Login(Credentials::Verified { authzid, user: authcid })
            }
            SaslStep::VerifyToken { authzid, token } => {
                let mechanism = exchange.mechanism().name();
                self.step = Step::Login {
                    tag,
                    token: Some(exchange),
                };
                Action::Login(Credentials::Token {
                    authzid,
                    token,
                    mechanism,
                })
            }
            SaslStep::Failed(sasl::SaslError::AuthFailed) => {
                self.step = Step::Login { tag, token: None };
                Action::Login(Credentials::Rejected { user })
            }
            SaslStep::Failed(sasl::SaslError::Cancelled) => {
                Fault::bad("authentication cancelled").write(&tag, out);
                Action::Continue
            }
            SaslStep::Failed(_) => {
                Fault::bad("malformed authentication exchange").write(&tag, out);
                Action::Continue
            }
        }
    }
}

/// RFC 9051 §6.2.2: "AUTHENTICATE" SP auth-type [SP initial-resp] (RFC 4959 SASL-IR).
/// The mechanism comes back in upper case (SASL names are, RFC 4422 §3.1).
fn parse_authenticate(c: &mut Cursor) -> lexer::Result<Command> {
    c.sp()?;
    let mechanism = c.atom()?.to_ascii_uppercase();
    let initial = if c.more() {
        let response = c.atom().map_err(|_| Syntax("invalid initial response"))?;
        if !is_base64(response.as_bytes()) && response != "=" {
            return Err(Syntax("initial response is not base64"));
        }
        Some(response)
    } else {
        None
    };
    c.end()?;
    Ok(Command::Authenticate { mechanism, initial })
}

/// base64 = *(4base64-char) [base64-terminal] (RFC 9051 §9).
fn is_base64(text: &[u8]) -> bool {
    if text.is_empty() || !text.len().is_multiple_of(4) {
        return false;
    }
    let data = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    data.iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// RFC 9051 §6.2.3: "LOGIN" SP userid SP password.
fn parse_login(c: &mut Cursor) -> lexer::Result<Command> {
    c.sp()?;
    let user = c.astring()?;
    c.sp()?;
    let password = c.astring()?;
    c.end()?;
    Ok(Command::Login { user, password })
}

/// RFC 5161 §4: "ENABLE" 1*(SP capability). Capability names come back in upper case.
fn parse_enable(c: &mut Cursor) -> lexer::Result<Command> {
    let mut capabilities = Vec::new();
    loop {
        c.sp()?;
        capabilities.push(c.atom()?.to_ascii_uppercase());
        if c.at_end() {
            return Ok(Command::Enable(capabilities));
        }
    }
}
