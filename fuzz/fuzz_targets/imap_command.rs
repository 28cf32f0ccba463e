//! The IMAP session (`imap::Session`) fed arbitrary client bytes, as the server drives it: the
//! command reader, the parser, and every command's execution against an in-memory store that
//! carries out the session's writes.
//!
//! The first byte picks the starting point and the surroundings:
//! - bits 0-1: not authenticated, authenticated, INBOX selected, INBOX examined;
//! - bit 2: TLS; bit 3: ENABLE IMAP4rev2 after login; bit 4: ENABLE CONDSTORE UTF8=ACCEPT;
//! - bit 5: writes fail (the store answers OVERQUOTA); bit 6: logins fail;
//! - bit 7: the account has QRESYNC, NOTIFY and METADATA switched off.
//!
//! The second byte is the size of the reads the client bytes come in (0: all at once).
//!
//! Properties: nothing panics; every action is answered as the server answers it; the output
//! is well framed (CRLF line ends, complete literals), FETCH and STATUS responses are valid
//! IMAP, and the other untagged responses parse with the load harness's parser.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmail::auth::login::Credentials;
use ringmail::config::{Config, LoginType};
use ringmail::imap::view::Unshared;
use ringmail::imap::{Action, Ctx, LoginFailure, Session, Settings};
use ringmail::store::recent::RecentClaims;
use ringmail::store::StoreError;
use ringmail_fuzz::{check_fetch_or_status, imap_responses, Choices, MemStore, PASSWORD, USER};

/// Steps past which a session counts as stuck (each step is at least one action).
const MAX_STEPS: usize = 100_000;

struct Harness {
    session: Session,
    store: MemStore,
    recent: RecentClaims,
    now: i64,
    fail_writes: bool,
    fail_logins: bool,
    disabled: Vec<String>,
    out: Vec<u8>,
    closed: bool,
}

impl Harness {
    /// Feeds `input` in reads of `read` bytes (0: at once), answering every action.
    fn feed(&mut self, input: &[u8], read: usize) {
        let mut buffered: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut steps = 0;
        while !self.closed {
            steps += 1;
            assert!(steps < MAX_STEPS, "the session does not make progress");
            if buffered.is_empty() {
                if fed == input.len() {
                    return;
                }
                let end = if read == 0 {
                    input.len()
                } else {
                    (fed + read).min(input.len())
                };
                buffered.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            let mut ctx = Ctx {
                store: &self.store,
                views: &mut Unshared,
                recent: &self.recent,
                now: self.now,
                referred: None,
            };
            let (used, action) = self.session.input(&buffered, &mut ctx, &mut self.out);
            assert!(used <= buffered.len(), "used {used} of {} bytes", buffered.len());
            buffered.drain(..used);
            let stalled = used == 0 && matches!(action, Action::Continue);
            self.answer(action, &mut buffered);
            if stalled && !buffered.is_empty() {
                // The session wants more before it can use what it has.
                if fed == input.len() {
                    return;
                }
                let end = if read == 0 {
                    input.len()
                } else {
                    (fed + read).min(input.len())
                };
                buffered.extend_from_slice(&input[fed..end]);
                fed = end;
            }
        }
    }

    /// Does what an action asks, as `serve::imap` does, and feeds the answer back.
    fn answer(&mut self, mut action: Action, buffered: &mut Vec<u8>) {
        loop {
            self.now += 1;
            let mut ctx = Ctx {
                store: &self.store,
                views: &mut Unshared,
                recent: &self.recent,
                now: self.now,
                referred: None,
            };
            action = match action {
                Action::Continue | Action::Unauthenticated | Action::StartCompress => return,
                Action::Close => {
                    self.closed = true;
                    return;
                }
                Action::Login(credentials) => {
                    let ok = !self.fail_logins
                        && match &credentials {
                            Credentials::Password { user, password, .. } => user == "bob" && password == PASSWORD,
                            Credentials::Verified { user, .. } => user == "bob",
                            Credentials::Rejected { .. } => false,
                            // A token the harness takes as bob's; any other is refused.
                            Credentials::Token { token, .. } => token == "bob-token",
                        };
                    let result = if ok {
                        Ok((USER, "bob".to_string(), self.disabled.clone()))
                    } else {
                        Err(LoginFailure::BadCredentials)
                    };
                    self.session.login_result(result, &mut self.out)
                }
                Action::LookupScram(user) => {
                    let keys = (user == "bob").then(MemStore::scram);
                    self.session.scram_credentials(keys, &mut self.out)
                }
                Action::StartTls => {
                    // Nothing sent before the handshake may be read after it.
                    buffered.clear();
                    self.session.tls_started();
                    return;
                }
                Action::Ingest { message, binary } => {
                    let result = if binary {
                        ringmail::mime::ingest_binary(message)
                    } else {
                        ringmail::mime::ingest(message)
                    };
                    self.session.ingested(result, &mut self.out)
                }
                Action::Write(op) => {
                    let result = if self.fail_writes {
                        Err(StoreError::OverQuota)
                    } else {
                        self.store.apply(op)
                    };
                    self.session.write_result(result, &mut ctx, &mut self.out)
                }
                Action::Flush => self.session.resume(&mut ctx, &mut self.out),
                Action::Idle { .. } => {
                    // A keepalive and a change, then wait for DONE.
                    self.session.idle_tick(false, &mut ctx, &mut self.out);
                    self.session.idle_tick(true, &mut ctx, &mut self.out);
                    return;
                }
            };
        }
    }
}

/// The output is well framed; FETCH and STATUS responses are valid IMAP; the other untagged
/// responses parse with the load harness's parser (which reads FETCH and STATUS only as far as
/// its model needs: not multipart bodies, MAILBOXID or APPENDLIMIT NIL).
fn check_output(out: &[u8]) {
    for response in imap_responses(out) {
        let Some(rest) = response.strip_prefix(b"* ") else {
            continue;
        };
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let after = &rest[digits..];
        let fetch = digits > 0 && (after.starts_with(b" FETCH ") || after.starts_with(b" UIDFETCH "));
        if fetch || rest.starts_with(b"STATUS ") {
            if let Err(e) = check_fetch_or_status(response) {
                panic!(
                    "the server sent an invalid response ({e}): {:?}",
                    String::from_utf8_lossy(response)
                );
            }
        } else if let Err(e) = loadtest::response::parse_untagged(response) {
            panic!("the server sent an unparsable response: {e}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut choices = Choices::new(data);
    let setup = choices.byte();
    let read = usize::from(choices.byte());
    let input = choices.rest();

    let config = Config::default();
    let c = &config.imap;
    let tls = setup & 4 != 0;
    let settings = Settings {
        login_type: if tls {
            LoginType::SecureLogin
        } else {
            LoginType::PlainTextLogin
        },
        starttls: !tls,
        max_login_failures: config.limits.max_login_failures,
        max_command_size: c.max_command_size,
        // Small enough that a literal's worth of input is within reach.
        append_limit: 64 * 1024,
        message_limit: c.message_limit(),
        server_name: "fuzz.example".into(),
        parse: config.parse_limits(),
        timeouts: c.timeouts(),
        idle_keepalive: std::time::Duration::from_secs(c.idle_keepalive),
        oauth: true,
        // The redaction of what the log shows runs on every input.
        protocol_log: true,
    };
    let mut h = Harness {
        session: Session::new(settings, tls),
        store: MemStore::new(),
        recent: RecentClaims::default(),
        now: 1_750_000_000,
        fail_writes: false,
        fail_logins: false,
        disabled: if setup & 0x80 != 0 {
            vec!["QRESYNC".into(), "NOTIFY".into(), "METADATA".into()]
        } else {
            Vec::new()
        },
        out: Vec::new(),
        closed: false,
    };
    h.session.greeting(&mut h.out);

    // The way to the starting state, as a client would take it.
    let mut script = String::new();
    if setup & 3 != 0 {
        script.push_str("s1 LOGIN bob secret\r\n");
        if setup & 8 != 0 {
            script.push_str("s2 ENABLE IMAP4rev2\r\n");
        }
        if setup & 16 != 0 {
            script.push_str("s3 ENABLE CONDSTORE UTF8=ACCEPT\r\n");
        }
        match setup & 3 {
            2 => script.push_str("s4 SELECT INBOX\r\n"),
            3 => script.push_str("s4 EXAMINE INBOX (CONDSTORE)\r\n"),
            _ => {}
        }
    }
    h.feed(script.as_bytes(), 0);
    if setup & 3 != 0 {
        assert!(h.session.is_authenticated(), "{}", String::from_utf8_lossy(&h.out));
    }
    if setup & 3 >= 2 {
        assert!(
            h.session.selected_mailbox().is_some(),
            "{}",
            String::from_utf8_lossy(&h.out)
        );
    }
    h.fail_writes = setup & 0x20 != 0;
    h.fail_logins = setup & 0x40 != 0;

    h.feed(input, read);
    check_output(&h.out);
});
