//! The SMTP engine's session state machine, sans-I/O and clock-free. One engine, two
//! flavours: LMTP (RFC 2033) and message submission (RFC 6409 on RFC 5321), which adds
//! EHLO/HELO, STARTTLS, AUTH, BDAT, BURL, DSN parameters, remote recipients and one reply per
//! message instead of one per recipient.
//!
//! The caller feeds command lines (or, inside DATA/BDAT, raw bytes through `data`), resolves
//! what an `Action` asks (recipient lookups, logins, deliveries), and reports back. Replies go
//! into the caller's buffer. A message is only acknowledged (`250`) once the caller reports it
//! durable. The transaction (`State`) and the login (`Auth`) are separate: STARTTLS and EHLO
//! reset the first, only STARTTLS the second.

mod auth;
mod engine;
mod txn;

use super::addr::Served;
use super::chunk::ChunkReader;
use super::command::{self, help_names, Command, MailParams, Offered, RcptParams};
use super::data::DataReader;
use crate::auth::sasl::{Mechanism, SaslExchange};
use crate::config::LoginType;
use crate::engine::{Deadline, Lines, Timeouts};
use crate::smtp::fault::{Client, Fault};

pub use auth::LoginFailure;

pub struct Settings {
    pub hostname: String,
    pub max_message_size: u64,
    pub max_recipients: usize,
    /// Mail domains served here (see `addr::Served` for what empty means).
    pub domains: Vec<String>,
    pub flavor: Flavor,
    /// Where a large message is spooled while it arrives (`crate::spool`); `None` keeps it in
    /// memory.
    pub spool: Option<std::sync::Arc<std::path::Path>>,
    /// Longest command line, its CRLF counted.
    pub max_line: usize,
    /// LMTP has one: `auth`, between any two reads.
    pub timeouts: Timeouts,
}

pub enum Flavor {
    Lmtp,
    Submission(SubmissionPolicy),
}

/// What a submission listener allows.
#[derive(Debug, Clone)]
pub struct SubmissionPolicy {
    pub login_type: LoginType,
    /// A plaintext listener: STARTTLS is offered until TLS is on.
    pub starttls: bool,
    /// A smarthost is configured, so remote recipients are accepted.
    pub relay: bool,
    /// Failed AUTHs on one connection before it is closed.
    pub max_login_failures: u32,
    /// Bearer tokens are checked (`[oauth]`): OAUTHBEARER and XOAUTH2 are offered.
    pub oauth: bool,
}

/// A local recipient: the user and the mailbox the message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub user: String,
    pub mailbox: String,
    /// RFC 3461 NOTIFY/ORCPT (submission only).
    pub params: RcptParams,
}

/// A recipient elsewhere, for the outbound queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRecipient {
    pub address: String,
    pub params: RcptParams,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Envelope {
    pub from: String,
    pub params: MailParams,
    pub recipients: Vec<Recipient>,
    pub remote: Vec<RemoteRecipient>,
    pub message: crate::spool::Spooled,
    /// The EHLO/HELO/LHLO name, for the Received: header.
    pub helo: String,
    /// The authenticated submitter; None over LMTP.
    pub user: Option<String>,
}

/// Where a recipient's mailbox is, as the driver found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// In this server's store.
    Here,
    /// On another back end of this cluster (submission): delivered there through the queue.
    Elsewhere,
    /// Here, but being moved to another back end: try again in a moment.
    Held,
    Unknown,
}

/// What became of one recipient's copy (LMTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    Delivered,
    OverQuota,
    /// The message itself is unacceptable (RFC 3463 X.6.0).
    BadMessage(&'static str),
    Temporary,
    /// The reply of the back end that holds the mailbox, passed on (a front end's LMTP).
    Relayed {
        code: u16,
        text: String,
    },
}

/// What became of a submitted message: one reply for all its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Delivered locally and/or queued; the queue id when there is one.
    Accepted {
        queue_id: Option<u64>,
    },
    BadMessage(&'static str),
    /// A From: address that is not the user's.
    NotYours(String),
    OverQuota(String),
    Temporary,
}

impl SubmitOutcome {
    /// How it ended, as the metrics count it.
    pub fn name(&self) -> &'static str {
        match self {
            SubmitOutcome::Accepted { .. } => "accepted",
            SubmitOutcome::BadMessage(_) => "bad-message",
            SubmitOutcome::NotYours(_) => "not-yours",
            SubmitOutcome::OverQuota(_) => "over-quota",
            SubmitOutcome::Temporary => "temporary",
        }
    }
}

impl DeliveryStatus {
    /// How a recipient's delivery ended, as the metrics count it.
    pub fn outcome(&self) -> &'static str {
        match self {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::OverQuota => "over-quota",
            DeliveryStatus::BadMessage(_) => "bad-message",
            DeliveryStatus::Temporary => "temporary",
            DeliveryStatus::Relayed { code, .. } => match code / 100 {
                2 => "delivered",
                4 => "temporary",
                _ => "permanent",
            },
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Does this user exist here? Call `recipient_result`.
    CheckRecipient(Recipient),
    /// LMTP: store this message for its recipients, then call `delivery_result`.
    Deliver(Envelope),
    /// Submission: edit the header, deliver locally, queue the rest, then `submit_result`.
    Submit(Envelope),
    /// Flush, drop all buffered input, run the TLS handshake, then call `tls_started`.
    StartTls,
    /// Resolve these credentials, then call `login_result`.
    Login(crate::auth::login::Credentials),
    /// Look up the SCRAM keys of this user, then call `scram_credentials`.
    LookupScram(String),
    /// Submission (BURL, RFC 4468): fetch what this URLAUTH URL names for `user`, the
    /// authenticated submitter, then call `url_result`.
    ResolveUrl {
        url: String,
        user: String,
    },
    Close,
}

/// The mail transaction (RFC 5321 §3.3).
struct Txn {
    from: String,
    params: MailParams,
    recipients: Vec<Recipient>,
    remote: Vec<RemoteRecipient>,
}

impl Txn {
    fn recipient_count(&self) -> usize {
        self.recipients.len() + self.remote.len()
    }
}

enum State {
    Ready,
    Txn(Txn),
    /// Waiting for `recipient_result`.
    Checking(Txn),
    Data(Txn, DataReader),
    Chunks(Txn, ChunkReader),
    /// Waiting for `url_result`: the message so far, and whether the URL is its last chunk.
    Resolving(Txn, ChunkReader, bool),
    /// The octets of a refused BDAT chunk, read and dropped (RFC 3030 §2), then back to
    /// `after` (the transaction stays when only this chunk was refused).
    Discard {
        remaining: u64,
        after: Option<Txn>,
    },
    /// Waiting for `delivery_result` or `submit_result`.
    Delivering,
}

/// Authentication, submission only.
enum Auth {
    None,
    /// Waiting for the client's next SASL response line.
    Sasl(Box<SaslExchange>),
    /// Waiting for `login_result` or `scram_credentials`.
    Pending(Option<Box<SaslExchange>>),
    User(String),
}

pub struct Session {
    settings: Settings,
    served: Served,
    tls: bool,
    helo: Option<String>,
    auth: Auth,
    failures: u32,
    /// The SCRAM user being authenticated, so a failed proof is penalised under its name.
    scram_user: String,
    state: State,
    lines: Lines,
    deadline: Deadline,
    /// The last command line as the protocol log may show it.
    log: Option<String>,
    /// The command the last input began, until the driver takes it for the metrics.
    command: Option<&'static str>,
}

/// Text from the client (an address as written) shown inside a reply: control characters, CR
/// and LF first, become '?', so a reply stays one line whatever the client sent.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

fn line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

impl Session {
    /// `tls`: the connection is already encrypted (implicit TLS).
    pub fn new(settings: Settings, tls: bool) -> Session {
        let served = match settings.flavor {
            Flavor::Lmtp => Served::for_lmtp(&settings.domains),
            Flavor::Submission(_) => Served::for_submission(&settings.domains, &settings.hostname),
        };
        Session {
            lines: Lines::new(settings.max_line),
            deadline: Deadline::default(),
            settings,
            served,
            tls,
            helo: None,
            auth: Auth::None,
            failures: 0,
            scram_user: String::new(),
            state: State::Ready,
            log: None,
            command: None,
        }
    }

    fn is_lmtp(&self) -> bool {
        matches!(self.settings.flavor, Flavor::Lmtp)
    }

    fn submission(&self) -> Option<&SubmissionPolicy> {
        match &self.settings.flavor {
            Flavor::Lmtp => None,
            Flavor::Submission(p) => Some(p),
        }
    }

    pub fn greeting(&self, out: &mut Vec<u8>) {
        let kind = if self.is_lmtp() { "LMTP" } else { "ESMTP" };
        line(out, &format!("220 {} {kind} ringmail ready", self.settings.hostname));
    }

    /// True while message octets (not command lines) are expected. Between BDAT chunks the
    /// transaction goes on but the next thing is a command.
    pub fn in_data(&self) -> bool {
        match &self.state {
            State::Data(..) | State::Discard { .. } => true,
            State::Chunks(_, reader) => !reader.chunk_done(),
            _ => false,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        matches!(self.auth, Auth::User(_))
    }

    pub fn too_long(&mut self, out: &mut Vec<u8>) -> Action {
        if matches!(self.auth, Auth::Sasl(_)) {
            self.auth = Auth::None;
            // RFC 4954 §4: 500 5.5.6 for an over-long authentication line.
            Fault::client(Client::AuthLineTooLong, "authentication exchange line is too long").write(out);
            return Action::Continue;
        }
        Fault::client(Client::NotRecognized, "line too long").write(out);
        Action::Continue
    }

    pub fn on_line(&mut self, input: &[u8], out: &mut Vec<u8>) -> Action {
        if matches!(self.auth, Auth::Sasl(_)) {
            return self.sasl_response(input, out);
        }
        let command = match command::parse(input) {
            Ok(c) => {
                self.command = Some(c.name());
                c
            }
            Err(e) => {
                e.fault().write(out);
                return Action::Continue;
            }
        };
        let offered = match command.spec().offered {
            Offered::Both => true,
            Offered::LmtpOnly => self.is_lmtp(),
            Offered::SubmissionOnly => !self.is_lmtp(),
        };
        if !offered {
            match command {
                Command::Helo(_) | Command::Ehlo(_) => {
                    Fault::client(Client::WrongProtocol, "this is LMTP: use LHLO").write(out)
                }
                Command::Lhlo(_) => Fault::client(Client::WrongProtocol, "this is SMTP: use EHLO").write(out),
                _ => command::ParseError::Unknown.fault().write(out),
            }
            return Action::Continue;
        }
        self.dispatch(command, out)
    }

    fn dispatch(&mut self, command: Command, out: &mut Vec<u8>) -> Action {
        match command {
            Command::Lhlo(name) | Command::Ehlo(name) => self.hello(name, true, out),
            Command::Helo(name) => self.hello(name, false, out),
            Command::Mail { from, params } => self.mail(from, params, out),
            Command::Rcpt { to, params } => return self.rcpt(to, params, out),
            Command::Data => self.data_start(out),
            Command::Bdat { size, last } => return self.bdat(size, last, out),
            Command::Burl { url, last } => return self.burl(url, last, out),
            Command::Auth { mechanism, initial } => return self.auth_start(&mechanism, initial, out),
            Command::StartTls => return self.starttls(out),
            Command::Rset => {
                self.state = State::Ready;
                line(out, "250 2.0.0 OK");
            }
            Command::Noop => line(out, "250 2.0.0 OK"),
            Command::Vrfy => line(out, "252 2.5.0 cannot VRFY user, but will accept message"),
            Command::Help => line(out, &format!("214 2.0.0 {}", help_names(self.is_lmtp()).join(" "))),
            Command::Quit => {
                line(out, &format!("221 2.0.0 {} closing connection", self.settings.hostname));
                return Action::Close;
            }
        }
        Action::Continue
    }

    /// LHLO, EHLO or HELO: a fresh start (RFC 5321 §4.1.4), and the extensions.
    fn hello(&mut self, name: String, extended: bool, out: &mut Vec<u8>) {
        self.state = State::Ready;
        self.helo = Some(name);
        if !extended {
            return line(out, &format!("250 {}", self.settings.hostname));
        }
        let caps = self.capabilities();
        line(out, &format!("250-{}", self.settings.hostname));
        for (i, cap) in caps.iter().enumerate() {
            let sep = if i + 1 == caps.len() { ' ' } else { '-' };
            line(out, &format!("250{sep}{cap}"));
        }
    }

    fn capabilities(&self) -> Vec<String> {
        let size = format!("SIZE {}", self.settings.max_message_size);
        let Some(policy) = self.submission() else {
            return vec![
                "PIPELINING".into(),
                "ENHANCEDSTATUSCODES".into(),
                "8BITMIME".into(),
                size,
            ];
        };
        let mut caps: Vec<String> = vec![
            "PIPELINING".into(),
            size,
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
            "DSN".into(),
        ];
        // RFC 3207 §4.2: STARTTLS is not offered once TLS is on.
        if policy.starttls && !self.tls {
            caps.push("STARTTLS".into());
        }
        if policy.login_type.allows_sasl(self.tls) {
            let names: Vec<&str> = Mechanism::offered(policy.oauth).map(|m| m.name()).collect();
            caps.push(format!("AUTH {}", names.join(" ")));
            // RFC 4468 §3: URLAUTH URLs of this server's own IMAP store.
            caps.push("BURL imap".into());
        }
        caps.push("HELP".into());
        caps
    }
}

#[cfg(test)]
mod tests;
