//! The steps of each check, in order, and what each needs from the ones before it: a step
//! whose session or message is missing is skipped, never run against nothing.
//!
//! `imap`: STARTTLS login and logout; implicit-TLS login (the session stays open); a message
//! sent through submission with STARTTLS; found with SEARCH; deleted with UID EXPUNGE; logout.
//! `pop3`: the same over STLS and implicit TLS, found with fresh sessions (a POP3 maildrop
//! is fixed at login) and TOP, deleted with DELE and QUIT.
//! `submission`: one message through each of STARTTLS and implicit TLS, both found over
//! IMAP and deleted.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::imap::Imap;
use super::message::{self, TestMessage};
use super::pop3::Pop3;
use super::report::{Done, Endpoint, Report, Security};
use super::smtp::Smtp;
use super::{Account, CheckError, Ports, Service, Target};

/// How long a sent message may take to show up in the mailbox, and how often to look.
const FIND_WITHIN: Duration = Duration::from_secs(10);
const POLL_EVERY: Duration = Duration::from_millis(200);

/// Runs the steps of `service`; the report of every one.
pub(super) fn run(service: Service, target: &Target, ports: &Ports, account: &Account) -> Report {
    let mut check = Check {
        target,
        ports,
        account,
        report: Report::default(),
    };
    match service {
        Service::Imap => check.imap(),
        Service::Pop3 => check.pop3(),
        Service::Submission => check.submission(),
    }
    check.report
}

struct Check<'a> {
    target: &'a Target,
    ports: &'a Ports,
    account: &'a Account,
    report: Report,
}

fn endpoint(protocol: &'static str, port: u16, security: Security) -> Endpoint {
    Endpoint {
        protocol,
        port,
        security,
    }
}

impl Check<'_> {
    fn plain_port(&self) -> u16 {
        self.ports
            .plain
            .expect("`ports` gives imap and pop3 their plaintext port")
    }

    fn imap(&mut self) {
        let plain = endpoint("imap", self.plain_port(), Security::Upgraded);
        let tls = endpoint("imap", self.ports.tls, Security::Implicit);
        let (target, account) = (self.target, self.account);
        self.report.step("login", plain, || {
            let mut imap = Imap::connect(target, plain.port, false)?;
            imap.starttls(target)?;
            imap.login(&account.user, &account.password)?;
            let served_by = imap.id()?;
            imap.logout()?;
            Ok(Done::new((), served_by))
        });
        let session = self.imap_login(tls);
        let sent = self.send(endpoint("submission", self.ports.submission, Security::Upgraded));
        self.imap_find_and_delete(tls, session, vec![sent]);
    }

    fn submission(&mut self) {
        let submissions = self
            .ports
            .submissions
            .expect("`ports` gives check submission its implicit-TLS port");
        let sent = vec![
            self.send(endpoint("submission", self.ports.submission, Security::Upgraded)),
            self.send(endpoint("submission", submissions, Security::Implicit)),
        ];
        let tls = endpoint("imap", self.ports.tls, Security::Implicit);
        let session = self.imap_login(tls);
        self.imap_find_and_delete(tls, session, sent);
    }

    /// An implicit-TLS IMAP login that stays open for what follows.
    fn imap_login(&mut self, tls: Endpoint) -> Option<Imap> {
        let (target, account) = (self.target, self.account);
        self.report.step("login", tls, || {
            let mut imap = Imap::connect(target, tls.port, true)?;
            imap.login(&account.user, &account.password)?;
            let served_by = imap.id()?;
            Ok(Done::new(imap, served_by))
        })
    }

    /// Each sent message found in INBOX (named by the server that took it in), then all
    /// found ones deleted, then LOGOUT.
    fn imap_find_and_delete(&mut self, tls: Endpoint, session: Option<Imap>, sent: Vec<Option<TestMessage>>) {
        let Some(mut imap) = session else {
            for _ in &sent {
                self.report.skip("find", tls, "no IMAP session");
            }
            self.report.skip("delete", tls, "no IMAP session");
            self.report.skip("logout", tls, "no IMAP session");
            return;
        };
        let mut found = Vec::new();
        for message in &sent {
            let Some(message) = message else {
                self.report.skip("find", tls, "the message was not sent");
                continue;
            };
            if imap.is_broken() {
                self.report.skip("find", tls, "the session broke");
                continue;
            }
            let uid = self.report.step("find", tls, || {
                imap.select_inbox()?;
                let uid = poll(|| Ok(imap.search_subject(&message.token)?.first().copied()))?;
                let served_by = message::received_by(&imap.received_fields(uid)?);
                Ok(Done::new(uid, served_by))
            });
            found.extend(uid);
        }
        if imap.is_broken() {
            self.report.skip("delete", tls, "the session broke");
        } else if found.is_empty() {
            self.report.skip("delete", tls, "nothing found");
        } else {
            self.report
                .step("delete", tls, || imap.delete(&found).map(|()| Done::new((), None)));
        }
        if imap.is_broken() {
            self.report.skip("logout", tls, "the session broke");
        } else {
            self.report
                .step("logout", tls, || imap.logout().map(|()| Done::new((), None)));
        }
    }

    fn pop3(&mut self) {
        let plain = endpoint("pop3", self.plain_port(), Security::Upgraded);
        let tls = endpoint("pop3", self.ports.tls, Security::Implicit);
        let (target, account) = (self.target, self.account);
        self.report.step("login", plain, || {
            let mut pop3 = Pop3::connect(target, plain.port, false)?;
            pop3.stls(target)?;
            pop3.login(&account.user, &account.password)?;
            let served_by = pop3.implementation()?;
            pop3.quit()?;
            Ok(Done::new((), served_by))
        });
        // What is in the maildrop before the message is sent: never worth a TOP later.
        let before = self.report.step("login", tls, || {
            let mut pop3 = Pop3::connect(target, tls.port, true)?;
            pop3.login(&account.user, &account.password)?;
            let served_by = pop3.implementation()?;
            let uids: HashSet<String> = pop3.uidl()?.into_iter().map(|(_, uid)| uid).collect();
            pop3.quit()?;
            Ok(Done::new(uids, served_by))
        });
        let Some(message) = self.send(endpoint("submission", self.ports.submission, Security::Upgraded)) else {
            self.report.skip("find", tls, "the message was not sent");
            self.report.skip("delete", tls, "nothing found");
            return;
        };
        let found = self.report.step("find", tls, || {
            let mut seen = before.unwrap_or_default();
            let found = poll(|| pop3_look(target, tls.port, account, &message.token, &mut seen))?;
            let served_by = found.served_by.clone();
            Ok(Done::new(found, served_by))
        });
        let Some(mut found) = found else {
            self.report.skip("delete", tls, "nothing found");
            return;
        };
        self.report.step("delete", tls, || {
            found.session.dele(found.number)?;
            found.session.quit()?;
            Ok(Done::new((), None))
        });
    }

    /// A test message sent to the user themself, through `at`; named by the server that holds
    /// the session after AUTH, and by the one that greeted if that is another (a front end).
    fn send(&mut self, at: Endpoint) -> Option<TestMessage> {
        let (target, account) = (self.target, self.account);
        let message = TestMessage::new(&account.address, unix_now());
        self.report.step("send", at, || {
            let mut smtp = Smtp::connect(target, at.port, at.implicit_tls())?;
            if at.implicit_tls() {
                smtp.ehlo()?;
            } else {
                smtp.starttls(target)?;
            }
            let server = smtp.auth_plain(&account.user, &account.password)?;
            smtp.send(&account.address, &account.address, &message.bytes)?;
            smtp.quit()?;
            let served_by = if server == smtp.greeting_host {
                server
            } else {
                format!("{server} via {}", smtp.greeting_host)
            };
            Ok(Done::new(message, Some(served_by)))
        })
    }
}

/// The test message in a POP3 session that stays open to delete it.
struct Pop3Found {
    session: Pop3,
    number: u32,
    served_by: Option<String>,
}

/// One look in a fresh POP3 session: TOP of each message not `seen` yet, newest first.
fn pop3_look(
    target: &Target,
    port: u16,
    account: &Account,
    token: &str,
    seen: &mut HashSet<String>,
) -> Result<Option<Pop3Found>, CheckError> {
    let mut session = Pop3::connect(target, port, true)?;
    session.login(&account.user, &account.password)?;
    for (number, uid) in session.uidl()?.into_iter().rev() {
        if !seen.insert(uid) {
            continue;
        }
        let header = session.header(number)?;
        if message::has_token(&header, token) {
            return Ok(Some(Pop3Found {
                session,
                number,
                served_by: message::received_by(&header),
            }));
        }
    }
    session.quit()?;
    Ok(None)
}

/// Calls `look` until it finds something, every `POLL_EVERY` for `FIND_WITHIN`.
fn poll<T>(mut look: impl FnMut() -> Result<Option<T>, CheckError>) -> Result<T, CheckError> {
    let deadline = Instant::now() + FIND_WITHIN;
    loop {
        if let Some(found) = look()? {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            return Err(CheckError::NotFound(FIND_WITHIN.as_secs()));
        }
        std::thread::sleep(POLL_EVERY);
    }
}

fn unix_now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_secs()).unwrap_or(0)
}
