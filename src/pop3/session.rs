//! The POP3 session state machine (RFC 1939, 2449, 2595, 5034, 3206), sans-I/O.
//!
//! Lines and results go in; reply bytes go into a buffer the caller owns, and an `Action` tells
//! the caller what to do next. No socket, no clock, no store: the caller resolves logins,
//! streams message bodies and commits deletions, and reports back.
//!
//! States are types: only a successful login builds a `Transaction`, and deletions exist only
//! inside it, so nothing is deleted unless QUIT reaches the UPDATE state (RFC 1939 §6).

use super::fault::{Code, Fault};
use std::borrow::Cow;

use super::command::{self, Command, ParseError, Phase};
use crate::auth::login::Credentials;
use crate::auth::sasl::{self, Mechanism, SaslError, SaslExchange, SaslStep};
use crate::auth::scram::ScramCredentials;
use crate::config::LoginType;
use crate::engine::{Deadline, Engine, Line, Lines, Next, Timeouts};
use crate::goodbye::Goodbye;

pub struct Settings {
    pub login_type: LoginType,
    /// STLS can be offered (a plaintext listener with TLS configured).
    pub stls: bool,
    pub banner: String,
    pub max_login_failures: u32,
    /// Longest command line, its CRLF counted.
    pub max_line: usize,
    pub timeouts: Timeouts,
    /// Bearer tokens are checked (`[oauth]`): OAUTHBEARER and XOAUTH2 are offered.
    pub oauth: bool,
}

/// One message as POP3 sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub uid: u32,
    pub size: u64,
    pub body_id: u64,
    /// No line starts with '.': the body goes out as stored.
    pub dot_free: bool,
}

/// The maildrop as locked at login, in presentation order (message 1 first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maildrop {
    pub mailbox: u64,
    pub uid_validity: u32,
    pub messages: Vec<Message>,
    /// UIDLs imported messages keep from the server they came from, by UID (most maildrops
    /// have none).
    pub imported_uidls: std::collections::HashMap<u32, String>,
}

/// Why a login did not open the maildrop; each has its RFC 3206 response code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginFailure {
    /// Wrong name or password: `[AUTH]`, counts toward the disconnect.
    BadCredentials,
    /// Authenticated but not allowed here (admin, POP3 off, limits): `[AUTH]` with the reason.
    Refused(String),
    /// A connection limit for this user: `[SYS/TEMP]`, try again later.
    Limit(String),
    /// Another session holds the maildrop: `[IN-USE]`.
    InUse,
    /// Store trouble: `[SYS/TEMP]`.
    Temporary,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Go on with the next buffered line, or read more.
    Continue,
    /// Resolve these credentials, then call `login_result`.
    Login(Credentials),
    /// Look up the SCRAM keys of this user, then call `scram_credentials`.
    LookupScram(String),
    /// Flush, drop all buffered input, run the TLS handshake, then call `tls_started`.
    StartTls,
    /// Stream this body through a `RetrEncoder` (whole or TOP n), then continue.
    Retrieve {
        body_id: u64,
        top: Option<u32>,
        dot_free: bool,
    },
    /// Delete these UIDs durably, then call `commit_result`.
    Commit { mailbox: u64, uids: Vec<u32> },
    /// Flush and close the connection.
    Close,
}

enum State {
    Authorization(Authorization),
    Transaction(Transaction),
    Closed,
}

enum Authorization {
    Idle,
    GotUser(String),
    Sasl(Box<SaslExchange>),
    /// Waiting for `login_result` or `scram_credentials`.
    Pending(Option<Box<SaslExchange>>),
}

struct Transaction {
    maildrop: Maildrop,
    deleted: Vec<bool>,
}

pub struct Session {
    settings: Settings,
    tls: bool,
    state: State,
    failures: u32,
    /// The SCRAM user being authenticated, so a failed proof is penalised under its name.
    scram_user: String,
    lines: Lines,
    deadline: Deadline,
    /// The last command line as the protocol log may show it.
    log: Option<String>,
    /// The command the last input began, until the driver takes it for the metrics.
    command: Option<&'static str>,
}

/// Appends one line: status, text, CRLF.
fn reply(out: &mut Vec<u8>, status: &str, text: &str) {
    out.extend_from_slice(status.as_bytes());
    if !text.is_empty() {
        out.push(b' ');
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

fn ok(out: &mut Vec<u8>, text: &str) {
    reply(out, "+OK", text);
}

impl Session {
    pub fn new(settings: Settings, tls: bool) -> Session {
        Session {
            lines: Lines::new(settings.max_line),
            deadline: Deadline::default(),
            settings,
            tls,
            state: State::Authorization(Authorization::Idle),
            failures: 0,
            scram_user: String::new(),
            log: None,
            command: None,
        }
    }

    pub fn greeting(&self, out: &mut Vec<u8>) {
        ok(out, &self.settings.banner);
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Transaction(_))
    }

    /// The line as the protocol log may show it: passwords and SASL data redacted.
    pub fn loggable<'a>(&self, line: &'a [u8]) -> Cow<'a, [u8]> {
        if matches!(self.state, State::Authorization(Authorization::Sasl(_))) {
            return Cow::Borrowed(b"<sasl response redacted>");
        }
        let upper: Vec<u8> = line.iter().take(5).map(u8::to_ascii_uppercase).collect();
        if upper.starts_with(b"PASS ") {
            return Cow::Borrowed(b"PASS <redacted>");
        }
        if upper.starts_with(b"AUTH ") {
            let mut words = line.splitn(3, |&b| b == b' ');
            let (_, mech) = (words.next(), words.next().unwrap_or_default());
            if words.next().is_some() {
                let mut shown = b"AUTH ".to_vec();
                shown.extend_from_slice(mech);
                shown.extend_from_slice(b" <redacted>");
                return Cow::Owned(shown);
            }
        }
        Cow::Borrowed(line)
    }

    /// A line longer than `max_command_size` arrived; RFC 2449 §4 wants an error, not a hangup.
    pub fn too_long(&mut self, out: &mut Vec<u8>) -> Action {
        if let State::Authorization(a @ Authorization::Sasl(_)) = &mut self.state {
            *a = Authorization::Idle;
        }
        Fault::client("line too long").write(out);
        Action::Continue
    }

    pub fn on_line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Action {
        if let State::Authorization(Authorization::Sasl(_)) = self.state {
            return self.sasl_response(line, out);
        }
        let command = match command::parse(line) {
            Ok(c) => {
                self.command = Some(c.name());
                c
            }
            Err(e) => {
                let text = match e {
                    ParseError::Unknown => "unknown command",
                    ParseError::Syntax => "syntax error",
                    ParseError::BadNumber => "invalid message number",
                };
                Fault::client(text).write(out);
                return Action::Continue;
            }
        };
        let phase = match self.state {
            State::Authorization(_) => Phase::Authorization,
            State::Transaction(_) => Phase::Transaction,
            State::Closed => return Action::Close,
        };
        if !command.spec().phases.contains(&phase) {
            Fault::client("command not valid in this state").write(out);
            return Action::Continue;
        }
        match command {
            Command::Capa => {
                self.capa(out);
                Action::Continue
            }
            Command::Quit => self.quit(out),
            Command::User(_) | Command::Pass(_) | Command::Auth(_) | Command::Stls => self.authorization(command, out),
            other => self.transaction(other, out),
        }
    }

    /// RFC 2449 §5: capabilities depend on the state and on TLS.
    fn capa(&self, out: &mut Vec<u8>) {
        ok(out, "Capability list follows");
        let mut line = |s: &str| {
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        line("TOP");
        line("UIDL");
        line("RESP-CODES");
        line("AUTH-RESP-CODE");
        line("PIPELINING");
        line("EXPIRE NEVER");
        line("IMPLEMENTATION ringmail");
        if matches!(self.state, State::Authorization(_)) {
            if self.settings.login_type.allows_plain_command(self.tls) {
                line("USER");
            }
            if self.settings.login_type.allows_sasl(self.tls) {
                line(&format!("SASL {}", self.mechanisms().join(" ")));
            }
            if self.settings.stls && !self.tls {
                line("STLS");
            }
        }
        line(".");
    }

    fn mechanisms(&self) -> Vec<&'static str> {
        Mechanism::offered(self.settings.oauth)
            .filter(|_| self.sasl_allowed())
            .map(|m| m.name())
            .collect()
    }

    /// `plain-text-authentication` allows SASL without TLS; `secure-login` allows nothing.
    fn sasl_allowed(&self) -> bool {
        self.settings.login_type.allows_sasl(self.tls)
    }

    fn quit(&mut self, out: &mut Vec<u8>) -> Action {
        match std::mem::replace(&mut self.state, State::Closed) {
            State::Transaction(t) => {
                let uids: Vec<u32> = t
                    .maildrop
                    .messages
                    .iter()
                    .zip(&t.deleted)
                    .filter(|(_, &d)| d)
                    .map(|(m, _)| m.uid)
                    .collect();
                if uids.is_empty() {
                    ok(out, "ringmail signing off");
                    return Action::Close;
                }
                // RFC 1939 §6: the UPDATE state; the reply waits for the commit.
                Action::Commit {
                    mailbox: t.maildrop.mailbox,
                    uids,
                }
            }
            _ => {
                ok(out, "ringmail signing off");
                Action::Close
            }
        }
    }

    pub fn commit_result(&mut self, result: Result<usize, ()>, out: &mut Vec<u8>) -> Action {
        match result {
            Ok(n) => ok(out, &format!("ringmail signing off ({n} messages deleted)")),
            Err(()) => Fault::refused(Code::SysTemp, "some deleted messages not removed").write(out),
        }
        Action::Close
    }

    fn authorization(&mut self, command: Command, out: &mut Vec<u8>) -> Action {
        let State::Authorization(auth) = &mut self.state else {
            unreachable!("the command table admits these in AUTHORIZATION only")
        };
        let plain_ok = self.settings.login_type.allows_plain_command(self.tls);
        match command {
            Command::Stls if self.tls => Fault::client("already using TLS").write(out),
            Command::Stls if !self.settings.stls => Fault::client("TLS is not available").write(out),
            Command::Stls => {
                *auth = Authorization::Idle;
                ok(out, "Begin TLS negotiation now");
                return Action::StartTls;
            }
            Command::User(_) | Command::Pass(_) if !plain_ok => {
                *auth = Authorization::Idle;
                let text = "Plaintext authentication disallowed on non-secure connections";
                Fault::refused(Code::Auth, text).write(out);
            }
            Command::User(name) => {
                *auth = Authorization::GotUser(name);
                ok(out, "send PASS");
            }
            Command::Pass(password) => match std::mem::replace(auth, Authorization::Idle) {
                Authorization::GotUser(user) => {
                    *auth = Authorization::Pending(None);
                    return Action::Login(Credentials::Password {
                        authzid: None,
                        user,
                        password,
                        mechanism: "USER",
                    });
                }
                _ => Fault::client("USER first").write(out),
            },
            Command::Auth(None) => {
                ok(out, "Supported mechanisms follow");
                for m in self.mechanisms() {
                    out.extend_from_slice(m.as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b".\r\n");
            }
            Command::Auth(Some((mechanism, initial))) => return self.auth_start(&mechanism, initial, out),
            _ => unreachable!("dispatched by on_line"),
        }
        Action::Continue
    }

    fn auth_start(&mut self, mechanism: &str, initial: Option<String>, out: &mut Vec<u8>) -> Action {
        let Some(mechanism) = Mechanism::parse(mechanism.as_bytes(), self.settings.oauth) else {
            Fault::refused(Code::Auth, "unsupported mechanism").write(out);
            return Action::Continue;
        };
        if !self.sasl_allowed() {
            Fault::refused(Code::Auth, "Authentication disallowed on non-secure connections").write(out);
            return Action::Continue;
        }
        let Ok((exchange, step)) = sasl::begin(mechanism, initial.as_deref()) else {
            Fault::refused(Code::Auth, "invalid initial response").write(out);
            return Action::Continue;
        };
        self.sasl_step(Box::new(exchange), step, out)
    }

    fn sasl_response(&mut self, line: &[u8], out: &mut Vec<u8>) -> Action {
        let State::Authorization(auth) = &mut self.state else {
            unreachable!("checked by on_line")
        };
        let Authorization::Sasl(mut exchange) = std::mem::replace(auth, Authorization::Idle) else {
            unreachable!("checked by on_line")
        };
        let step = sasl::respond_line(&mut exchange, line);
        if step == SaslStep::Failed(SaslError::TokenRefused) {
            // The answer to a refused token's error challenge: now the failure.
            return self.login_result(Err(LoginFailure::BadCredentials), out);
        }
        self.sasl_step(exchange, step, out)
    }

    pub fn scram_credentials(&mut self, credentials: Option<ScramCredentials>, out: &mut Vec<u8>) -> Action {
        let State::Authorization(auth) = &mut self.state else {
            return Action::Close;
        };
        let Authorization::Pending(Some(mut exchange)) = std::mem::replace(auth, Authorization::Idle) else {
            return Action::Close;
        };
        let step = exchange.credentials(credentials.as_ref());
        self.sasl_step(exchange, step, out)
    }

    fn sasl_step(&mut self, exchange: Box<SaslExchange>, step: SaslStep, out: &mut Vec<u8>) -> Action {
        let State::Authorization(auth) = &mut self.state else {
            unreachable!("SASL runs in AUTHORIZATION only")
        };
        match step {
            SaslStep::Challenge(data) => {
                out.extend_from_slice(b"+ ");
                out.extend_from_slice(sasl::encode_challenge(&data).as_bytes());
                out.extend_from_slice(b"\r\n");
                *auth = Authorization::Sasl(exchange);
                Action::Continue
            }
            SaslStep::NeedCredentials { authcid } => {
                *auth = Authorization::Pending(Some(exchange));
                self.scram_user.clone_from(&authcid);
                Action::LookupScram(authcid)
            }
            SaslStep::VerifyPassword {
                authzid,
                authcid,
                password,
            } => {
                *auth = Authorization::Pending(None);
                Action::Login(Credentials::Password {
                    authzid,
                    user: authcid,
                    password,
                    mechanism: exchange.mechanism().name(),
                })
            }
            SaslStep::Authenticated { authzid, authcid } => {
                *auth = Authorization::Pending(None);
                Action::Login(Credentials::Verified { authzid, user: authcid })
            }
            SaslStep::VerifyToken { authzid, token } => {
                let mechanism = exchange.mechanism().name();
                // Kept: a refused token owes the client its error challenge.
                *auth = Authorization::Pending(Some(exchange));
                Action::Login(Credentials::Token {
                    authzid,
                    token,
                    mechanism,
                })
            }
            SaslStep::Failed(SaslError::AuthFailed) => {
                *auth = Authorization::Pending(None);
                let user = std::mem::take(&mut self.scram_user);
                Action::Login(Credentials::Rejected { user })
            }
            SaslStep::Failed(SaslError::Cancelled) => {
                *auth = Authorization::Idle;
                Fault::refused(Code::Auth, "authentication cancelled").write(out);
                Action::Continue
            }
            SaslStep::Failed(_) => {
                *auth = Authorization::Idle;
                Fault::refused(Code::Auth, "malformed authentication exchange").write(out);
                Action::Continue
            }
        }
    }

    /// The outcome of `Action::Login`. The caller has already waited out any penalty delay.
    pub fn login_result(&mut self, result: Result<Maildrop, LoginFailure>, out: &mut Vec<u8>) -> Action {
        match result {
            Ok(maildrop) => {
                let n = maildrop.messages.len();
                let size: u64 = maildrop.messages.iter().map(|m| m.size).sum();
                self.state = State::Transaction(Transaction {
                    deleted: vec![false; n],
                    maildrop,
                });
                ok(out, &format!("maildrop has {n} messages ({size} octets)"));
                Action::Continue
            }
            Err(failure) => {
                let pending = std::mem::replace(&mut self.state, State::Authorization(Authorization::Idle));
                if let (
                    LoginFailure::BadCredentials,
                    State::Authorization(Authorization::Pending(Some(mut exchange))),
                ) = (&failure, pending)
                {
                    // RFC 7628 §3.2.3: a refused token gets its error challenge first; the
                    // failure comes after the client's answer (`sasl_response`).
                    let step = exchange.token_refused();
                    if matches!(step, SaslStep::Challenge(_)) {
                        return self.sasl_step(exchange, step, out);
                    }
                }
                match failure {
                    LoginFailure::BadCredentials => {
                        self.failures += 1;
                        Fault::refused(Code::Auth, "authentication failed").write(out);
                        if self.failures >= self.settings.max_login_failures {
                            Fault::client("too many failed logins, closing").write(out);
                            self.state = State::Closed;
                            return Action::Close;
                        }
                    }
                    LoginFailure::Refused(reason) => Fault::refused(Code::Auth, reason.to_string()).write(out),
                    LoginFailure::Limit(reason) => Fault::refused(Code::SysTemp, reason.to_string()).write(out),
                    LoginFailure::InUse => {
                        Fault::refused(Code::InUse, "maildrop is in use by another session").write(out)
                    }
                    LoginFailure::Temporary => {
                        Fault::refused(Code::SysTemp, "temporary failure, try again later").write(out)
                    }
                }
                Action::Continue
            }
        }
    }

    /// Called after a successful handshake: all plaintext-era state is gone (RFC 2595 §4).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.state = State::Authorization(Authorization::Idle);
    }

    fn transaction(&mut self, command: Command, out: &mut Vec<u8>) -> Action {
        let State::Transaction(t) = &mut self.state else {
            unreachable!("the command table admits these in TRANSACTION only")
        };
        t.execute(command, out)
    }
}

impl Transaction {
    /// The message numbered `n` (1-based), unless it does not exist or is marked deleted.
    fn live(&self, n: u32) -> Option<&Message> {
        let i = (n as usize).checked_sub(1)?;
        if *self.deleted.get(i)? {
            return None;
        }
        self.maildrop.messages.get(i)
    }

    fn live_messages(&self) -> impl Iterator<Item = (usize, &Message)> {
        self.maildrop
            .messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
            .map(|(i, m)| (i + 1, m))
    }

    fn uidl(&self, m: &Message) -> String {
        if let Some(imported) = self.maildrop.imported_uidls.get(&m.uid) {
            // What POP3 clients knew it by on the server it came from (`ringmail import`).
            return imported.clone();
        }
        // RFC 1939 §7: unique within the maildrop and stable across sessions; UIDVALIDITY
        // and UID together are never reused.
        format!("{}.{}", self.maildrop.uid_validity, m.uid)
    }

    fn execute(&mut self, command: Command, out: &mut Vec<u8>) -> Action {
        let mut buf = itoa::Buffer::new();
        match command {
            Command::Stat => {
                let (count, size) = self
                    .live_messages()
                    .fold((0u64, 0u64), |(c, s), (_, m)| (c + 1, s + m.size));
                ok(out, &format!("{count} {size}"));
            }
            Command::List(Some(n)) => match self.live(n) {
                Some(m) => ok(out, &format!("{n} {}", m.size)),
                None => Fault::client("no such message").write(out),
            },
            Command::List(None) => {
                ok(out, "scan listing follows");
                for (n, m) in self.live_messages() {
                    out.extend_from_slice(buf.format(n).as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(buf.format(m.size).as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b".\r\n");
            }
            Command::Uidl(Some(n)) => match self.live(n) {
                Some(m) => ok(out, &format!("{n} {}", self.uidl(m))),
                None => Fault::client("no such message").write(out),
            },
            Command::Uidl(None) => {
                ok(out, "unique-id listing follows");
                for (n, m) in self.live_messages() {
                    out.extend_from_slice(buf.format(n).as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(self.uidl(m).as_bytes());
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b".\r\n");
            }
            Command::Retr(n) => match self.live(n) {
                Some(m) => {
                    ok(out, &format!("{} octets", m.size));
                    return Action::Retrieve {
                        body_id: m.body_id,
                        top: None,
                        dot_free: m.dot_free,
                    };
                }
                None => Fault::client("no such message").write(out),
            },
            Command::Top(n, lines) => match self.live(n) {
                Some(m) => {
                    ok(out, "top of message follows");
                    return Action::Retrieve {
                        body_id: m.body_id,
                        top: Some(lines),
                        dot_free: m.dot_free,
                    };
                }
                None => Fault::client("no such message").write(out),
            },
            Command::Dele(n) => match self.live(n) {
                Some(_) => {
                    self.deleted[n as usize - 1] = true;
                    ok(out, &format!("message {n} deleted"));
                }
                None => Fault::client("no such message").write(out),
            },
            Command::Rset => {
                self.deleted.iter_mut().for_each(|d| *d = false);
                let n = self.maildrop.messages.len();
                ok(out, &format!("maildrop has {n} messages"));
            }
            Command::Noop => ok(out, ""),
            _ => unreachable!("dispatched by on_line"),
        }
        Action::Continue
    }
}

/// The session as the one driver runs it (`crate::engine`).
impl Engine for Session {
    type Action = Action;
    type Env<'e> = ();

    fn greeting(&self, out: &mut Vec<u8>) {
        Session::greeting(self, out);
    }

    fn goodbye(&self, why: Goodbye<'_>) -> String {
        super::fault::goodbye(why)
    }

    fn input(&mut self, input: &[u8], _: &mut (), out: &mut Vec<u8>) -> (usize, Action) {
        let (used, line) = self.lines.next(input);
        let action = match line {
            Line::Whole(line) => {
                self.log = Some(String::from_utf8_lossy(&self.loggable(line)).into_owned());
                self.on_line(line, out)
            }
            Line::TooLong => self.too_long(out),
            Line::Partial => Action::Continue,
        };
        (used, action)
    }

    fn next(action: Action) -> Next<Action> {
        match action {
            Action::Continue => Next::Read,
            Action::StartTls => Next::StartTls,
            Action::Close => Next::Close,
            action => Next::Act(action),
        }
    }

    fn tls_started(&mut self) {
        Session::tls_started(self);
        self.lines.reset();
    }

    fn take_log(&mut self) -> Option<String> {
        self.log.take()
    }

    /// RFC 1939 §3: the autologout timer; what is buffered is a line begun.
    fn deadline(&mut self, now: std::time::Instant, begun: bool) -> std::time::Instant {
        self.deadline
            .next(now, self.settings.timeouts, self.is_authenticated(), begun)
    }

    fn phase(&self) -> crate::engine::Phase {
        if self.is_authenticated() {
            crate::engine::Phase::Authenticated
        } else {
            crate::engine::Phase::PreAuth
        }
    }

    fn take_command(&mut self) -> Option<&'static str> {
        self.command.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(login_type: LoginType, tls: bool) -> Session {
        Session::new(
            Settings {
                login_type,
                stls: true,
                banner: "hi".into(),
                max_login_failures: 2,
                max_line: 255,
                timeouts: crate::engine::Timeouts {
                    pre_auth: std::time::Duration::from_secs(60),
                    auth: std::time::Duration::from_secs(600),
                },
                oauth: true,
            },
            tls,
        )
    }

    fn maildrop() -> Maildrop {
        Maildrop {
            imported_uidls: Default::default(),
            mailbox: 7,
            uid_validity: 100,
            messages: vec![
                Message {
                    uid: 3,
                    size: 10,
                    body_id: 30,
                    dot_free: true,
                },
                Message {
                    uid: 5,
                    size: 20,
                    body_id: 50,
                    dot_free: false,
                },
            ],
        }
    }

    /// Feeds one line; returns the action and the reply text.
    /// `wire` fed through the engine in two reads split at `cut`, as the driver feeds it,
    /// with every login succeeding; returns the replies and the log lines.
    fn fed(wire: &[u8], cut: usize) -> (String, Vec<String>) {
        let mut s = session(LoginType::PlainTextLogin, false);
        let (mut out, mut log, mut input) = (Vec::new(), Vec::new(), Vec::new());
        for piece in [&wire[..cut], &wire[cut..]] {
            input.extend_from_slice(piece);
            loop {
                let (used, mut action) = s.input(&input, &mut (), &mut out);
                input.drain(..used);
                log.extend(s.take_log());
                while let Action::Login(_) = action {
                    action = s.login_result(Ok(maildrop()), &mut out);
                }
                if used == 0 {
                    break;
                }
            }
        }
        (String::from_utf8(out).unwrap(), log)
    }

    #[test]
    fn engine_input_gives_the_same_session_at_every_split() {
        let long = "X".repeat(300);
        let wire = format!("CAPA\r\nUSER bob\r\nPASS secret\r\n{long}\r\nSTAT\nNOOP\r\n");
        let (replies, log) = fed(wire.as_bytes(), wire.len());
        assert_eq!(replies.matches("+OK").count(), 5, "{replies}");
        assert_eq!(replies.matches("-ERR").count(), 1, "{replies}");
        // The password never reaches the protocol log; the over-long line is not logged.
        assert_eq!(log, ["CAPA", "USER bob", "PASS <redacted>", "STAT", "NOOP"]);
        for cut in 0..wire.len() {
            assert_eq!(fed(wire.as_bytes(), cut), (replies.clone(), log.clone()), "cut {cut}");
        }
    }

    fn say(s: &mut Session, line: &str) -> (Action, String) {
        let mut out = Vec::new();
        let action = s.on_line(line.as_bytes(), &mut out);
        (action, String::from_utf8(out).unwrap())
    }

    fn logged_in() -> Session {
        let mut s = session(LoginType::SecureLogin, true);
        say(&mut s, "USER bob");
        let (action, _) = say(&mut s, "PASS pw");
        assert!(matches!(action, Action::Login(Credentials::Password { .. })));
        let mut out = Vec::new();
        assert_eq!(s.login_result(Ok(maildrop()), &mut out), Action::Continue);
        assert_eq!(out, b"+OK maildrop has 2 messages (30 octets)\r\n");
        s
    }

    #[test]
    fn transaction_script() {
        let mut s = logged_in();
        assert_eq!(say(&mut s, "STAT").1, "+OK 2 30\r\n");
        assert_eq!(
            say(&mut s, "LIST").1,
            "+OK scan listing follows\r\n1 10\r\n2 20\r\n.\r\n"
        );
        assert_eq!(say(&mut s, "UIDL 2").1, "+OK 2 100.5\r\n");
        let (action, text) = say(&mut s, "RETR 2");
        assert_eq!(
            action,
            Action::Retrieve {
                body_id: 50,
                top: None,
                dot_free: false
            }
        );
        assert_eq!(text, "+OK 20 octets\r\n");
        assert_eq!(
            say(&mut s, "TOP 1 3").0,
            Action::Retrieve {
                body_id: 30,
                top: Some(3),
                dot_free: true
            }
        );
        assert_eq!(say(&mut s, "DELE 1").1, "+OK message 1 deleted\r\n");
        assert_eq!(say(&mut s, "LIST").1, "+OK scan listing follows\r\n2 20\r\n.\r\n");
        assert!(say(&mut s, "RETR 1").1.starts_with("-ERR"));
        assert_eq!(
            say(&mut s, "QUIT").0,
            Action::Commit {
                mailbox: 7,
                uids: vec![3]
            }
        );
        let mut out = Vec::new();
        assert_eq!(s.commit_result(Ok(1), &mut out), Action::Close);
        assert!(out.starts_with(b"+OK"));
    }

    #[test]
    fn quit_without_deletions_commits_nothing() {
        let mut s = logged_in();
        say(&mut s, "DELE 2");
        say(&mut s, "RSET");
        let (action, text) = say(&mut s, "QUIT");
        assert_eq!(action, Action::Close);
        assert!(text.starts_with("+OK"));
    }

    #[test]
    fn failed_logins_close_after_the_limit() {
        let mut s = session(LoginType::SecureLogin, true);
        for round in 1..=2 {
            say(&mut s, "USER bob");
            say(&mut s, "PASS wrong");
            let mut out = Vec::new();
            let action = s.login_result(Err(LoginFailure::BadCredentials), &mut out);
            assert_eq!(action == Action::Close, round == 2, "round {round}");
        }
    }

    #[test]
    fn secure_login_refuses_before_tls_and_stls_resets() {
        let mut s = session(LoginType::SecureLogin, false);
        assert!(say(&mut s, "USER bob").1.starts_with("-ERR [AUTH]"));
        assert!(say(&mut s, "AUTH PLAIN AGJvYgBwdw==").1.starts_with("-ERR [AUTH]"));
        let (action, text) = say(&mut s, "STLS");
        assert_eq!(
            (action, text.as_str()),
            (Action::StartTls, "+OK Begin TLS negotiation now\r\n")
        );
        s.tls_started();
        assert!(say(&mut s, "USER bob").1.starts_with("+OK"));
        assert!(say(&mut s, "STLS").1.starts_with("-ERR"));
    }

    #[test]
    fn sasl_plain_with_and_without_initial_response() {
        let mut s = session(LoginType::PlainTextAuthentication, false);
        let (action, _) = say(&mut s, "AUTH PLAIN AGJvYgBwdw==");
        assert_eq!(
            action,
            Action::Login(Credentials::Password {
                authzid: None,
                user: "bob".into(),
                password: "pw".into(),
                mechanism: "PLAIN",
            })
        );
        let mut s = session(LoginType::PlainTextAuthentication, false);
        assert_eq!(say(&mut s, "AUTH PLAIN").1, "+ \r\n");
        assert!(matches!(say(&mut s, "AGJvYgBwdw==").0, Action::Login(_)));
        let mut s = session(LoginType::PlainTextAuthentication, false);
        say(&mut s, "AUTH PLAIN");
        assert!(say(&mut s, "*").1.starts_with("-ERR [AUTH]"));
        assert!(
            say(&mut s, "NOOP").1.starts_with("-ERR"),
            "back to normal commands, NOOP not valid yet"
        );
        assert!(say(&mut s, "AUTH PLAIN !!!").1.starts_with("-ERR"));
    }

    #[test]
    fn redaction() {
        let s = session(LoginType::SecureLogin, true);
        assert_eq!(&*s.loggable(b"PASS hunter2"), b"PASS <redacted>");
        assert_eq!(&*s.loggable(b"pass hunter2"), b"PASS <redacted>");
        assert_eq!(&*s.loggable(b"AUTH PLAIN AGJvYgBwdw=="), b"AUTH PLAIN <redacted>");
        assert_eq!(&*s.loggable(b"USER bob"), b"USER bob");
    }

    #[test]
    fn over_long_lines_and_wrong_states() {
        let mut s = session(LoginType::SecureLogin, true);
        let mut out = Vec::new();
        assert_eq!(s.too_long(&mut out), Action::Continue);
        assert!(out.starts_with(b"-ERR"));
        assert!(say(&mut s, "STAT").1.starts_with("-ERR"));
        assert!(say(&mut s, "PASS x").1.starts_with("-ERR"), "PASS needs USER first");
        let mut s = logged_in();
        assert!(say(&mut s, "USER bob").1.starts_with("-ERR"));
        assert!(say(&mut s, "CAPA").1.starts_with("+OK"));
    }
}
