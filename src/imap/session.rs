//! The IMAP session state machine, sans-I/O.
//!
//! Client bytes go in through `input`; responses go into the caller's buffer; an `Action` says
//! what the caller must do next (verify a login, start TLS, commit a write, ingest an APPEND,
//! wait in IDLE, close). Reads of the store go through `MailRead` on a snapshot the caller
//! opens per call; writes are actions, answered by `write_result` once durable, so a client
//! hears OK only for what is on disk.
//!
//! States are types: `NotAuthenticated → Authenticated(User) → Selected(User, Selected)`.
//! A session is its `State` and a `Conn` (what it holds in every state, with the `Step` it is
//! at: reading commands, inside AUTHENTICATE or IDLE, or waiting for an action's answer).
//! `command` runs each command with the state's parts it needs; handlers are methods of
//! `Conn`, so only the session's own methods move it from one state to another.
//! Untagged EXISTS/EXPUNGE/FETCH updates come from the changes the session's core shares after
//! the session's position (`sync`, `shared`), and are withheld where RFC 9051 §7.5.1 forbids
//! them.

use super::fault::{Code, Fault};
use std::rc::Rc;

use super::capability;
use super::parse::{self, ParseError};
use super::reader::{CommandReader, Limits, Read, ReadError, LITERAL_MINUS_MAX};
use super::sync::RecentUids;
use super::types::Command;
use super::view::{MailRead, Referred, UidView, Views};
use crate::auth::login::Credentials;
use crate::auth::sasl::SaslExchange;
use crate::config::LoginType;
use crate::engine::{Deadline, Timeouts};
use crate::mime::Structure;
use crate::store::recent::RecentClaims;
use crate::store::records::{MailboxId, Uid, UserId};
use crate::store::{StoreError, WriteOp, WriteOutcome};
use std::time::Duration;

pub struct Settings {
    pub login_type: LoginType,
    /// STARTTLS can be offered (a plaintext listener with TLS configured).
    pub starttls: bool,
    pub max_login_failures: u32,
    pub max_command_size: usize,
    /// Largest APPEND literal accepted.
    pub append_limit: u64,
    /// RFC 9738 MESSAGELIMIT or SAVELIMIT.
    pub message_limit: super::limit::MessageLimit,
    /// This server's name, told to logged-in clients in ID's `x-host`: behind a front end,
    /// which back end they reached (`ringmail check` shows it).
    pub server_name: String,
    /// Bounds on a command's structure (`[limits]`).
    pub parse: parse::ParseLimits,
    pub timeouts: Timeouts,
    /// Between "* OK Still here" lines in IDLE.
    pub idle_keepalive: Duration,
    /// Bearer tokens are checked (`[oauth]`): OAUTHBEARER and XOAUTH2 are offered.
    pub oauth: bool,
    /// The protocol log is on: the session keeps what it may show of each input.
    pub protocol_log: bool,
}

/// What the session needs from its surroundings for one call.
pub struct Ctx<'a> {
    pub store: &'a dyn MailRead,
    pub views: &'a mut dyn Views,
    /// Where read-write sessions on every core claim new messages as \Recent.
    pub recent: &'a RecentClaims,
    /// Unix seconds, for SEARCH WITHIN.
    pub now: i64,
    /// Where FETCH notes section data it leaves in the store's map rather than copying into
    /// the output (`None`: it copies). The io layer sends both, each piece at its place.
    pub referred: Option<&'a mut Referred>,
}

#[derive(Debug)]
pub enum Action {
    /// Keep feeding input (or read more if none is left).
    Continue,
    /// Resolve these credentials, then call `login_result`.
    Login(Credentials),
    /// Look up this user's SCRAM keys, then call `scram_credentials`.
    LookupScram(String),
    /// Flush, drop all buffered input, handshake, then call `tls_started`.
    StartTls,
    /// Parse this APPENDed message (off the event loop), then call `ingested`. A `binary` one
    /// came as a literal8 and may hold NUL octets (`mime::ingest_binary`).
    Ingest { message: Vec<u8>, binary: bool },
    /// Commit this write, then call `write_result`.
    Write(WriteOp),
    /// Send what is in the output buffer, then call `resume` with a fresh snapshot.
    Flush,
    /// Flush, then compress both directions from here on (RFC 4978), input already buffered
    /// included.
    StartCompress,
    /// In IDLE: wait for input, a change to `mailbox`, or the keepalive timer (`idle_tick`).
    Idle { mailbox: Option<MailboxId> },
    /// The session went back to Not Authenticated (RFC 8437 UNAUTHENTICATE): stop counting this
    /// connection against its user's connection limit, then go on.
    Unauthenticated,
    /// Flush and close.
    Close,
}

/// Why a login did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginFailure {
    BadCredentials,
    /// Authenticated, but not allowed (admin, IMAP off, limits): the reason is told.
    Refused(String),
    Temporary,
}

/// Options turned on with ENABLE (RFC 5161).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enabled {
    pub condstore: bool,
    pub qresync: bool,
    /// RFC 9051: UTF-8 mailbox names, no \Recent, ESEARCH answers.
    pub imap4rev2: bool,
    /// RFC 6855 UTF8=ACCEPT: UTF-8 mailbox names and quoted strings.
    pub utf8: bool,
    /// RFC 9586 UIDONLY: no message numbers either way; VANISHED and UIDFETCH responses.
    pub uid_only: bool,
}

pub(crate) struct User {
    pub id: UserId,
    /// For looking the account up again (its quota may change while logged in).
    pub name: Box<str>,
    pub enabled: Enabled,
    /// Extensions this account may not use (`switches`).
    pub disabled: thin_vec::ThinVec<String>,
}

pub(crate) struct Selected {
    pub mailbox: MailboxId,
    pub read_only: bool,
    /// The view this session's client knows: sequence numbers come from here.
    pub view: Rc<UidView>,
    /// Flag changes up to here have been reported.
    pub known_modseq: u64,
    /// Where this session stands in the changes its core shares for the mailbox.
    pub cursor: Option<super::shared::Cursor>,
    /// The messages that are \Recent in this session.
    pub recent: RecentUids,
    /// The keywords this client has been told of in FLAGS (RFC 3501 §7.2.6): a FETCH may
    /// show no other. Shared with the mailbox's other sessions on this core until one of
    /// them hears of a new keyword (copy on write).
    pub keywords: Rc<Vec<String>>,
    /// SEARCHRES `$` (RFC 5182), as UIDs.
    pub saved: thin_vec::ThinVec<Uid>,
    /// RFC 5267 searches and sorts kept up to date; they end with the selection.
    pub contexts: super::context::Contexts,
}

pub(crate) enum State {
    NotAuthenticated,
    Authenticated(User),
    Selected(User, Selected),
    Logout,
}

/// What a session is doing inside its state: reading commands, in a command that reads lines
/// of its own (AUTHENTICATE's responses, IDLE's DONE), or waiting for the answer to an
/// action it asked for. One at a time: the driver answers an action before it feeds more input.
pub(crate) enum Step {
    Commands,
    /// AUTHENTICATE continuation lines.
    Sasl {
        tag: String,
        exchange: Box<SaslExchange>,
    },
    /// IDLE: only DONE ends it.
    Idle {
        tag: String,
    },
    /// `Action::Login` is out; for a bearer token, with its exchange, which owes the client
    /// an error challenge if the token is refused (RFC 7628 §3.2.3).
    Login {
        tag: String,
        token: Option<Box<SaslExchange>>,
    },
    /// `Action::LookupScram` is out. Boxed: the largest step, and a brief one.
    Scram(Box<ScramLookup>),
    /// `Action::Ingest` or the APPEND's `Action::Write` is out.
    Append(Box<super::command::append::AppendPending>),
    /// `Action::Write` is out.
    Write(Box<super::command::message::WritePending>),
    /// A FETCH between two flushes.
    Fetch(Box<super::command::fetch::FetchJob>),
    /// A SEARCH, SORT or THREAD between two steps of its scan.
    Scan(Box<super::scan::ScanJob>),
    GenUrlauth(Box<super::command::urlauth::GenPending>),
}

/// An AUTHENTICATE SCRAM-SHA-256 waiting for the user's keys.
pub(crate) struct ScramLookup {
    pub tag: String,
    pub exchange: Box<SaslExchange>,
    pub user: String,
}

/// What a session holds in every state: its settings, the connection's properties, the
/// framer and the step it is at. Command handlers are methods of it, handed the state's
/// parts they work on (`&User`, `&mut Selected`), so the state they need is in their type.
pub(crate) struct Conn {
    /// One listener's, shared by its sessions on a core.
    pub settings: Rc<Settings>,
    pub tls: bool,
    pub step: Step,
    pub reader: CommandReader,
    pub failures: u32,
    pub compressed: bool,
    /// Set by `enable_condstore` for the enabling command's tagged OK.
    pub condstore_code: Option<u64>,
    /// NOTIFY SET (RFC 5465): what to tell, and what was told.
    pub notify: Option<Box<super::command::notify::Notifier>>,
    /// What the protocol log may show of the last client input (passwords and SASL redacted).
    pub log: Option<Box<str>>,
    /// The command the last input began (one of the table's), until the driver takes it for
    /// the metrics.
    pub command: Option<&'static super::command::Spec>,
    pub deadline: Deadline,
}

pub struct Session {
    pub(crate) conn: Conn,
    pub(crate) state: State,
}

pub(crate) fn untagged(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"* ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A store error as the command's tagged response (`fault`).
pub(crate) fn store_error(out: &mut Vec<u8>, tag: &str, e: StoreError) {
    Fault::Store(e).write(tag, out);
}

impl User {
    /// A client's mailbox name as stored: modified UTF-7 for IMAP4rev1 (RFC 3501 §5.1.3),
    /// UTF-8 once IMAP4rev2 is enabled (RFC 9051 §5.1).
    pub(crate) fn decode_name(&self, name: &str) -> Result<String, super::mutf7::Invalid> {
        if self.enabled.imap4rev2 || self.enabled.utf8 {
            if name.chars().any(char::is_control) {
                return Err(super::mutf7::Invalid);
            }
            return Ok(name.to_owned());
        }
        super::mutf7::decode(name)
    }

    /// A stored mailbox name as this client reads it.
    pub(crate) fn encode_name(&self, name: &str) -> String {
        if self.enabled.imap4rev2 || self.enabled.utf8 {
            name.to_owned()
        } else {
            super::mutf7::encode(name)
        }
    }
}

impl Conn {
    /// Turns CONDSTORE on for the rest of the session (RFC 7162 §3.1: any CONDSTORE-aware
    /// command enables it). The first such command while a mailbox is selected tells the
    /// client the mailbox's HIGHESTMODSEQ (§3.1): untagged at once, and in its tagged OK
    /// through `highest_modseq_code`.
    pub(crate) fn enable_condstore(&mut self, user: &mut User, sel: Option<&Selected>, out: &mut Vec<u8>) {
        if user.enabled.condstore {
            return;
        }
        user.enabled.condstore = true;
        if let Some(sel) = sel {
            let modseq = sel.known_modseq;
            untagged(out, &format!("OK [HIGHESTMODSEQ {modseq}] CONDSTORE enabled"));
            self.condstore_code = Some(modseq);
        }
    }

    /// `[HIGHESTMODSEQ n] ` for the tagged OK of the command that enabled CONDSTORE, once.
    pub(crate) fn highest_modseq_code(&mut self) -> String {
        self.condstore_code
            .take()
            .map_or_else(String::new, |m| format!("[HIGHESTMODSEQ {m}] "))
    }

    pub(crate) fn capability_string(&self, user: Option<&User>) -> String {
        let lt = self.settings.login_type;
        let all = capability::capabilities(
            user.is_some(),
            self.tls,
            self.settings.starttls,
            (
                lt.allows_sasl(self.tls),
                lt.allows_plain_command(self.tls),
                self.settings.oauth,
            ),
            (self.settings.append_limit, self.settings.message_limit),
        );
        super::switches::filter(&all, user.map_or(&[], |u| &u.disabled))
    }

    /// The RFC 9738 limit `user`'s client was told of: none where the account's switches
    /// hide it (an account may be let off the limit).
    pub(crate) fn message_limit(&self, user: &User) -> super::limit::MessageLimit {
        let limit = self.settings.message_limit;
        match limit.capability() {
            Some(cap) if !super::switches::hidden(&cap, &user.disabled) => limit,
            _ => super::limit::MessageLimit::None,
        }
    }
}

impl State {
    pub(crate) fn user(&self) -> Option<&User> {
        match self {
            State::Authenticated(u) | State::Selected(u, _) => Some(u),
            State::NotAuthenticated | State::Logout => None,
        }
    }

    /// The user, and the selection if there is one.
    pub(crate) fn logged_in(&mut self) -> Option<(&mut User, Option<&mut Selected>)> {
        match self {
            State::Authenticated(u) => Some((u, None)),
            State::Selected(u, s) => Some((u, Some(s))),
            State::NotAuthenticated | State::Logout => None,
        }
    }

    /// Leaves the selected mailbox (CLOSE, UNSELECT, SELECT of another); the selection left,
    /// if there was one.
    pub(crate) fn unselect(&mut self) -> Option<Selected> {
        match std::mem::replace(self, State::Logout) {
            State::Selected(user, left) => {
                *self = State::Authenticated(user);
                Some(left)
            }
            other => {
                *self = other;
                None
            }
        }
    }

    /// Enters `sel` from the Authenticated state.
    pub(crate) fn enter(&mut self, sel: Selected) {
        if let State::Authenticated(user) = std::mem::replace(self, State::Logout) {
            *self = State::Selected(user, sel);
        }
    }
}

/// Why a command is refused in a state: what the client must do first.
fn wrong_state(state: &State) -> &'static str {
    match state {
        State::NotAuthenticated => "log in first",
        State::Authenticated(_) => "select a mailbox first",
        State::Selected(..) | State::Logout => "not valid in this state",
    }
}

impl Session {
    pub(crate) fn enabled(&self) -> Enabled {
        self.state.user().map_or_else(Enabled::default, |u| u.enabled)
    }

    pub fn new(settings: impl Into<Rc<Settings>>, tls: bool) -> Session {
        let settings = settings.into();
        let reader = Self::reader(&settings);
        Session {
            conn: Conn {
                deadline: Deadline::default(),
                settings,
                tls,
                step: Step::Commands,
                reader,
                failures: 0,
                compressed: false,
                condstore_code: None,
                notify: None,
                log: None,
                command: None,
            },
            state: State::NotAuthenticated,
        }
    }

    /// The framer for a client not logged in: LITERAL- (RFC 7888 §5), so no unknown client
    /// can push a large literal at us without a continuation. Login lifts that (LITERAL+).
    fn reader(settings: &Settings) -> CommandReader {
        let mut reader = CommandReader::new(Limits {
            max_line: settings.max_command_size,
            max_literal: settings.append_limit,
        });
        reader.set_max_nonsync(Some(LITERAL_MINUS_MAX));
        reader
    }

    pub fn greeting(&self, out: &mut Vec<u8>) {
        let caps = self.capability_string();
        untagged(out, &format!("OK [CAPABILITY {caps}] ringmail IMAP4 ready"));
    }

    pub fn is_authenticated(&self) -> bool {
        self.state.user().is_some()
    }

    pub fn selected_mailbox(&self) -> Option<MailboxId> {
        match &self.state {
            State::Selected(_, s) => Some(s.mailbox),
            _ => None,
        }
    }

    /// The last client input as the protocol log may show it.
    pub fn take_log(&mut self) -> Option<Box<str>> {
        self.conn.log.take()
    }

    /// Whether the client is in the middle of a line (its end is bounded in time).
    pub fn mid_line(&self) -> bool {
        self.conn.reader.mid_line()
    }

    /// Logged in and waiting for its client's next command, with none begun.
    pub fn between_commands(&self) -> bool {
        self.is_authenticated() && matches!(self.conn.step, Step::Commands) && self.conn.reader.between_commands()
    }

    /// Memory held between commands (should be close to nothing).
    pub fn buffered(&self) -> usize {
        self.conn.reader.buffered()
    }

    pub(crate) fn capability_string(&self) -> String {
        self.conn.capability_string(self.state.user())
    }

    /// Feeds client bytes; returns how many were used and what to do next. Call again with
    /// the rest as long as it returns `Continue` and bytes remain.
    pub fn input(&mut self, input: &[u8], ctx: &mut Ctx<'_>, out: &mut Vec<u8>) -> (usize, Action) {
        match &self.conn.step {
            Step::Sasl { .. } => {
                let (used, line) = self.conn.reader.line(input);
                match line {
                    Some(line) => {
                        self.conn.log = self
                            .conn
                            .settings
                            .protocol_log
                            .then(|| "<sasl response redacted>".into());
                        (used, self.sasl_line(&line, out))
                    }
                    None => (used, Action::Continue),
                }
            }
            Step::Idle { .. } => {
                let (used, line) = self.conn.reader.line(input);
                match line {
                    Some(line) => (used, self.idle_line(&line, ctx, out)),
                    None => (used, Action::Continue),
                }
            }
            // A driver waits for an action's answer before it feeds more input; one that did
            // not would have the next command start, as a pipelining client's would.
            _ => self.command_input(input, ctx, out),
        }
    }

    fn command_input(&mut self, input: &[u8], ctx: &mut Ctx<'_>, out: &mut Vec<u8>) -> (usize, Action) {
        let (used, read) = self.conn.reader.feed(input);
        let action = match read {
            Read::NeedMore => Action::Continue,
            Read::Continue => {
                out.extend_from_slice(b"+ Ready for literal data\r\n");
                Action::Continue
            }
            Read::Error { tag, kind, close } => {
                let tag = tag.unwrap_or_else(|| "*".into());
                match kind {
                    // RFC 9051 §7.1: too big for this server is a refusal, not a syntax error.
                    ReadError::LiteralTooBig { .. } => Fault::no(Code::TooBig, kind.to_string()).write(&tag, out),
                    // RFC 7888 §5: LITERAL- refuses a large non-synchronizing literal with BAD.
                    ReadError::NonSyncLiteralTooBig { .. } => {
                        Fault::bad_code(Code::TooBig, kind.to_string()).write(&tag, out)
                    }
                    _ => Fault::bad(kind.to_string()).write(&tag, out),
                }
                if close {
                    untagged(out, "BYE too much input");
                    self.state = State::Logout;
                    Action::Close
                } else {
                    Action::Continue
                }
            }
            Read::Command(raw) => {
                if self.conn.settings.protocol_log {
                    self.conn.log = Some(redacted(&raw).into());
                }
                // The raw command is given away, so an APPEND's message is moved, not copied.
                match parse::parse_command_owned_with(raw, self.conn.settings.parse) {
                    Ok((tag, command)) => self.dispatch(tag, command, ctx, out),
                    Err(ParseError { tag, message }) => {
                        Fault::bad(message).write(tag.as_deref().unwrap_or("*"), out);
                        Action::Continue
                    }
                }
            }
        };
        (used, action)
    }

    /// Checks what holds for every command (the table knows it, the account may use it, its
    /// message numbers are allowed), then runs it in the state it needs (`command`).
    fn dispatch(&mut self, tag: String, command: Command, ctx: &mut Ctx<'_>, out: &mut Vec<u8>) -> Action {
        let name = command_name(&command);
        self.conn.command = super::command::spec(name);
        if self.conn.command.is_none() {
            Fault::bad(format!("{name} is not supported")).write(&tag, out);
            return Action::Continue;
        }
        let disabled = self.state.user().map_or(&[][..], |u| &u.disabled);
        if let Some(cap) = super::switches::refused(&command, disabled) {
            // As if it had never been offered: this account has it switched off.
            Fault::bad(format!("{cap} is not available to this account")).write(&tag, out);
            return Action::Continue;
        }
        if self.enabled().uid_only && command.uses_sequence_numbers() {
            // RFC 9586 §3.
            let text = "message sequence numbers are not allowed after ENABLE UIDONLY";
            Fault::bad_code(Code::UidRequired, text).write(&tag, out);
            return Action::Continue;
        }
        let (from, expunges) = (out.len(), self.conn.command.is_some_and(|spec| spec.expunges));
        match self.run(tag, command, ctx, out) {
            Ok(action) => {
                self.announce_at_end((from, expunges), &action, ctx, out);
                action
            }
            Err(Refused { tag, name }) => {
                let why = wrong_state(&self.state);
                Fault::bad(format!("{name}: {why}")).write(&tag, out);
                Action::Continue
            }
        }
    }

    /// The answer to `Action::Write`.
    /// While a store write is slow to commit (a COPY or EXPUNGE of many messages, a busy
    /// writer): tells the client the command is still at work (RFC 9585). The caller calls this
    /// every `progress::INTERVAL_SECS` until the write is done.
    pub fn write_progress(&self, out: &mut Vec<u8>) {
        if let Step::Write(p) = &self.conn.step {
            super::progress::working(p.tag(), out);
        }
    }

    pub fn write_result(
        &mut self,
        result: Result<WriteOutcome, StoreError>,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> Action {
        let from = out.len();
        let action = match std::mem::replace(&mut self.conn.step, Step::Commands) {
            Step::Write(p) => self.finish_write(*p, result, ctx, out),
            Step::Append(p) => self.finish_append(*p, result, ctx, out),
            Step::GenUrlauth(p) => self.conn.finish_gen_urlauth(*p, result, out),
            _ => Action::Close,
        };
        // The driver has taken the command's row by now: this may be a STORE, or a FETCH
        // that set \Seen, so expunges wait.
        self.announce_at_end((from, false), &action, ctx, out);
        action
    }

    /// When the command ended in this call (its tagged line is the last of `out`, which it
    /// wrote from `from` on) with a mailbox selected: what `sync_growth` tells goes before
    /// that line, so the client has it when it hears the command is done. `expunges`: whether
    /// the command may tell of expunges (its row's `expunges`).
    fn announce_at_end(
        &mut self,
        (from, expunges): (usize, bool),
        action: &Action,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) {
        let ended = matches!(action, Action::Continue) && matches!(self.conn.step, Step::Commands);
        let (true, State::Selected(..)) = (ended, &self.state) else {
            return;
        };
        let Some(line) = last_line(out, from).filter(|&at| !matches!(out[at], b'*' | b'+')) else {
            return;
        };
        let expunges = expunges && !self.conn.notify.as_ref().is_some_and(|n| n.delays_expunges());
        let mut told = Vec::new();
        self.sync_growth(expunges, ctx, &mut told);
        if !told.is_empty() {
            out.splice(line..line, told);
        }
    }

    /// After `Action::Flush`: goes on with the FETCH or the scan that yielded.
    pub fn resume(&mut self, ctx: &mut Ctx<'_>, out: &mut Vec<u8>) -> Action {
        let step = std::mem::replace(&mut self.conn.step, Step::Commands);
        let (Step::Fetch(_) | Step::Scan(_)) = step else {
            self.conn.step = step;
            return Action::Continue;
        };
        let State::Selected(user, sel) = &mut self.state else {
            // Nothing but a command leaves the mailbox, and none ran since the flush.
            let tag = match step {
                Step::Fetch(job) => job.tag,
                Step::Scan(job) => job.tag,
                _ => String::new(),
            };
            Fault::Internal("the mailbox was left during the command").write(&tag, out);
            return Action::Continue;
        };
        let from = out.len();
        let action = match step {
            Step::Fetch(job) => self.conn.fetch_resume(user, sel, *job, ctx, out),
            Step::Scan(job) => self.conn.scan_resume(user, sel, *job, ctx, out),
            _ => Action::Continue,
        };
        // A FETCH, SEARCH, SORT or THREAD (UID or not: the driver has taken its row by now).
        self.announce_at_end((from, false), &action, ctx, out);
        action
    }

    /// The answer to `Action::Ingest`.
    pub fn ingested(
        &mut self,
        result: Result<(Vec<u8>, Structure), crate::mime::IngestError>,
        out: &mut Vec<u8>,
    ) -> Action {
        match std::mem::replace(&mut self.conn.step, Step::Commands) {
            Step::Append(p) => self.conn.append_ingested(*p, result, out),
            _ => Action::Close,
        }
    }

    /// RFC 8437 §3: forgets the user and everything that came with the login — the selected
    /// mailbox, ENABLEd extensions, SEARCHRES `$`, a pending HIGHESTMODSEQ code — and goes back
    /// to LITERAL-. TLS and COMPRESS stay as they are; so does the count of failed logins.
    pub(crate) fn forget_user(&mut self) {
        self.state = State::NotAuthenticated;
        self.conn.notify = None;
        self.conn.condstore_code = None;
        self.conn.reader.set_max_nonsync(Some(LITERAL_MINUS_MAX));
    }

    /// After the handshake: the plaintext era is forgotten (RFC 9051 §6.2.1).
    pub fn tls_started(&mut self) {
        self.conn.tls = true;
        self.conn.reader = Self::reader(&self.conn.settings);
    }
}

/// A command the session's state does not admit, handed back for the refusal.
pub(crate) struct Refused {
    pub tag: String,
    pub name: &'static str,
}

/// A command for the protocol log: LOGIN's password and AUTHENTICATE's initial response are
/// hidden, literal data is shown by its size only.
fn redacted(raw: &[u8]) -> String {
    let first_line = raw.split(|&b| b == b'\n').next().unwrap_or(raw);
    let text = String::from_utf8_lossy(first_line).trim_end().to_string();
    let mut words = text.splitn(3, ' ');
    let (tag, verb) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if verb.eq_ignore_ascii_case("LOGIN") {
        let user = words.next().unwrap_or("").split(' ').next().unwrap_or("");
        return format!("{tag} LOGIN {user} <redacted>");
    }
    if verb.eq_ignore_ascii_case("AUTHENTICATE") {
        let mech = words.next().unwrap_or("").split(' ').next().unwrap_or("");
        return format!("{tag} AUTHENTICATE {mech} <redacted>");
    }
    if raw.len() > first_line.len() + 1 {
        return format!("{text} ... ({} bytes with literals)", raw.len());
    }
    text
}

/// The name the command table knows a command by: `UID` for the UID forms.
pub(crate) fn command_name(c: &Command) -> &'static str {
    if c.is_uid() {
        "UID"
    } else {
        c.verb()
    }
}

/// Where the last line of `out` begins, when `out` ends with a whole line written from `from`
/// on.
fn last_line(out: &[u8], from: usize) -> Option<usize> {
    let body = out.get(from..)?.strip_suffix(b"\r\n")?;
    Some(memchr::memmem::rfind(body, b"\r\n").map_or(from, |at| from + at + 2))
}
