//! The SMTP engine: the session (`smtp::Session`, LMTP and submission) fed arbitrary client
//! bytes through its engine input (lines, and `data` inside DATA), as `serve::lmtp` and `serve::submission` drive it;
//! the DATA reader against the client's dot-stuffing; the reply parser the outbound queue reads
//! a smarthost with.
//!
//! The first byte: bits 0-1 pick LMTP, submission over TLS, submission in plaintext with
//! STARTTLS, or submission already logged in; bit 2: the relay is on; bit 3: logins fail; bit
//! 4: deliveries fail; bits 6-7: 1 fuzzes the DATA reader, 2 the reply parser.
//!
//! Properties: nothing panics; every action is answered; every line the server sends is a reply
//! line that ringmail's own SMTP client parses (`ddd`, `ddd text` or `ddd-text`); a submitted
//! message gets its header edits or a refusal; what `client::stuff` sends, `DataReader` reads
//! back unchanged, however it is split.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmail::auth::login::Credentials;
use ringmail::config::LoginType;
use ringmail::engine::Engine;
use ringmail::imap::urlauth::Refusal;
use ringmail::net::Input;
use ringmail::smtp::addr::Served;
use ringmail::smtp::client::{Capabilities, ReplyParser};
use ringmail::smtp::data::{DataEnd, DataReader};
use ringmail::smtp::rewrite::{self, Stamp};
use ringmail::smtp::{
    Action, DeliveryStatus, Flavor, LoginFailure, Lookup, Session, Settings, SubmissionPolicy, SubmitOutcome,
};
use ringmail::spool::Spool;
use ringmail_fuzz::{Choices, MemStore, MESSAGES, PASSWORD};

const MAX_MESSAGE: u64 = 16 * 1024;
const MAX_LINE: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut choices = Choices::new(data);
    let setup = choices.byte();
    match setup >> 6 {
        1 => data_reader(&mut choices),
        2 => reply_parser(choices.rest()),
        _ => session(setup, &mut choices),
    }
});

fn session(setup: u8, choices: &mut Choices<'_>) {
    let read = usize::from(choices.byte()).max(1);
    let input = choices.rest();
    let lmtp = setup & 3 == 0;
    let tls = setup & 3 == 1 || setup & 3 == 3;
    let domains = vec!["example.com".to_string()];
    let flavor = if lmtp {
        Flavor::Lmtp
    } else {
        Flavor::Submission(SubmissionPolicy {
            login_type: LoginType::PlainTextAuthentication,
            starttls: !tls,
            relay: setup & 4 != 0,
            max_login_failures: 3,
            oauth: true,
        })
    };
    let mut s = Session::new(
        Settings {
            hostname: "mx.example.com".into(),
            max_message_size: MAX_MESSAGE,
            max_recipients: 5,
            domains: domains.clone(),
            flavor,
            spool: None,
            max_line: MAX_LINE,
            timeouts: ringmail::config::Config::default().submission.timeouts(),
        },
        tls,
    );
    let served = if lmtp {
        Served::for_lmtp(&domains)
    } else {
        Served::for_submission(&domains, "mx.example.com")
    };
    let mut out = Vec::new();
    s.greeting(&mut out);
    let (fail_login, fail_delivery) = (setup & 8 != 0, setup & 16 != 0);
    let mut buffer = Input::default();
    if setup & 3 == 3 {
        // Logged in as bob, as a client gets there.
        buffer
            .read_buffer()
            .extend_from_slice(b"EHLO client.example\r\nAUTH PLAIN AGJvYgBzZWNyZXQ=\r\n");
    }
    let mut fed = 0;
    let mut steps = 0;
    'session: loop {
        steps += 1;
        assert!(steps < 1_000_000, "the session does not make progress");
        let (used, action) = s.input(buffer.pending(), &mut (), &mut out);
        buffer.consume(used);
        let _ = s.take_log();
        if action == Action::Continue && (used == 0 || buffer.pending().is_empty()) {
            if !read_more(&mut buffer, input, &mut fed, read) {
                break;
            }
            continue;
        }
        let mut action = action;
        loop {
            action = match action {
                Action::Continue => break,
                Action::Close => break 'session,
                Action::CheckRecipient(recipient) => {
                    let found = match recipient.user.as_str() {
                        "bob" => Lookup::Here,
                        "carol" if !lmtp => Lookup::Elsewhere,
                        _ => Lookup::Unknown,
                    };
                    s.recipient_result(recipient, found, &mut out)
                }
                Action::Deliver(envelope) => {
                    check_received(&envelope.message);
                    assert!(!envelope.recipients.is_empty(), "a delivery without recipients");
                    let status = if fail_delivery {
                        DeliveryStatus::OverQuota
                    } else {
                        match ringmail::mime::ingest(envelope.message.to_vec()) {
                            Ok(_) => DeliveryStatus::Delivered,
                            Err(_) => DeliveryStatus::BadMessage("message refused"),
                        }
                    };
                    let statuses = vec![status; envelope.recipients.len()];
                    s.delivery_result(&envelope.recipients, &statuses, &mut out)
                }
                Action::Submit(envelope) => {
                    check_received(&envelope.message);
                    let user = envelope.user.clone().expect("a submission has its user");
                    let outcome = if fail_delivery {
                        SubmitOutcome::Temporary
                    } else {
                        submit(&envelope.message, &envelope.from, &envelope.helo, &user, &served)
                    };
                    s.submit_result(outcome, &mut out)
                }
                Action::StartTls => {
                    buffer.discard();
                    s.tls_started();
                    break;
                }
                Action::Login(credentials) => {
                    let ok = !fail_login
                        && match &credentials {
                            Credentials::Password { user, password, .. } => user == "bob" && password == PASSWORD,
                            Credentials::Verified { user, .. } => user == "bob",
                            Credentials::Rejected { .. } => false,
                            // A token the harness takes as bob's; any other is refused.
                            Credentials::Token { token, .. } => token == "bob-token",
                        };
                    let result = if ok {
                        Ok("bob".to_string())
                    } else {
                        Err(LoginFailure::BadCredentials)
                    };
                    s.login_result(result, &mut out)
                }
                Action::LookupScram(user) => {
                    let keys = (user == "bob").then(MemStore::scram);
                    s.scram_credentials(keys, &mut out)
                }
                Action::ResolveUrl { url, .. } => {
                    // A URL naming a sample message resolves to it; any other is refused.
                    let result = match url.bytes().last() {
                        Some(b) if b.is_ascii_digit() => {
                            Ok(MESSAGES[usize::from(b - b'0') % MESSAGES.len()].as_bytes().to_vec())
                        }
                        _ => Err(Refusal::Token),
                    };
                    s.url_result(result, &mut out)
                }
            };
        }
    }
    check_replies(&out);
}

fn read_more(buffer: &mut Input, input: &[u8], fed: &mut usize, read: usize) -> bool {
    if *fed == input.len() {
        return false;
    }
    let end = (*fed + read).min(input.len());
    buffer.read_buffer().extend_from_slice(&input[*fed..end]);
    *fed = end;
    true
}

/// What `serve::submit` does with a submitted message before it is stored.
fn submit(raw: &[u8], sender: &str, helo: &str, user: &str, served: &Served) -> SubmitOutcome {
    if raw.is_empty() {
        return SubmitOutcome::BadMessage("message is empty");
    }
    let canonical = ringmail::mime::normalize_line_endings(raw);
    let stamp = Stamp {
        hostname: "mx.example.com",
        helo,
        peer: std::net::IpAddr::from([192, 0, 2, 7]),
        user,
        tls: Some("TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384"),
        id: "0000000000000007",
        now: 1_750_000_000,
        unique: "fuzz.1",
        sender,
    };
    match rewrite::submission_header(&canonical, &stamp, served) {
        Ok((header, body)) => {
            let message = [&header[..], &canonical[body..]].concat();
            check_submitted(&message);
            match ringmail::mime::analyze(&message) {
                Ok(_) => SubmitOutcome::Accepted { queue_id: Some(7) },
                Err(_) => SubmitOutcome::BadMessage("message refused"),
            }
        }
        Err(rewrite::RewriteError::NotYours(address)) => SubmitOutcome::NotYours(address),
        Err(rewrite::RewriteError::NoSeparator) => SubmitOutcome::BadMessage("no header"),
    }
}

/// A message as the session hands it over: within the limit (which counts octets received,
/// so line endings made canonical can at most double it) and canonical already.
fn check_received(message: &[u8]) {
    assert!(message.len() as u64 <= 2 * MAX_MESSAGE);
    assert!(
        matches!(
            ringmail::mime::normalize_line_endings(message),
            std::borrow::Cow::Borrowed(_)
        ),
        "a received message with a bare CR or LF"
    );
}

/// A rewritten submission starts with its Received: field and keeps no Bcc: field.
fn check_submitted(message: &[u8]) {
    assert!(
        message.starts_with(b"Received: "),
        "{:?}",
        String::from_utf8_lossy(message)
    );
    let header_end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message.len(), |i| i + 2);
    for field in message[..header_end].split(|&b| b == b'\n') {
        let name_end = field.iter().position(|&b| b == b':').unwrap_or(0);
        let name = &field[..name_end];
        assert!(
            !name.eq_ignore_ascii_case(b"Bcc") && !name.eq_ignore_ascii_case(b"Resent-Bcc"),
            "a Bcc: field survived the submission edits: {:?}",
            String::from_utf8_lossy(message)
        );
    }
}

/// Every line the server sent is an SMTP reply line (RFC 5321 §4.2), CRLF-terminated.
fn check_replies(out: &[u8]) {
    assert!(
        out.is_empty() || out.ends_with(b"\r\n"),
        "{:?}",
        String::from_utf8_lossy(out)
    );
    let mut parser = ReplyParser::default();
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let line = line
            .strip_suffix(b"\r")
            .unwrap_or_else(|| panic!("a bare LF in {:?}", String::from_utf8_lossy(out)));
        assert!(
            !line.contains(&b'\r'),
            "a bare CR in {:?}",
            String::from_utf8_lossy(line)
        );
        if let Err(e) = parser.line(line) {
            panic!(
                "the server sent a reply its own client cannot read ({e}): {:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}

/// `client::stuff` and `DataReader` agree on every message, however the input is split.
fn data_reader(choices: &mut Choices<'_>) {
    let cuts: Vec<usize> = choices.take(3).iter().map(|&b| usize::from(b) + 1).collect();
    let message = choices.rest();
    let wire = ringmail::smtp::client::stuff(message);
    let mut expected = message.to_vec();
    if !message.is_empty() && !message.ends_with(b"\r\n") {
        expected.extend_from_slice(b"\r\n");
    }
    // The reader hands the message over with its line endings made canonical.
    let expected = ringmail::mime::normalize_line_endings(&expected).into_owned();
    let mut reader = DataReader::new(usize::MAX, Spool::new(None, None));
    // The caller keeps what was not used and presents it again with what follows.
    let mut pending: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut i = 0;
    let end = loop {
        let take = cuts.get(i % cuts.len().max(1)).copied().unwrap_or(wire.len());
        i += 1;
        let next = (fed + take).min(wire.len());
        pending.extend_from_slice(&wire[fed..next]);
        fed = next;
        let (used, end) = reader.feed(&pending);
        pending.drain(..used);
        if let Some(end) = end {
            assert!(
                pending.is_empty() && fed == wire.len(),
                "DATA ended before the final dot"
            );
            break end;
        }
        assert!(
            fed < wire.len(),
            "DATA did not end at the final dot: {:?}",
            String::from_utf8_lossy(&wire)
        );
    };
    let DataEnd::Complete(got) = end else {
        panic!("a message without a limit refused: {end:?}")
    };
    assert!(*got == expected[..], "the stuffed message reads back differently");

    // Over the size limit: read to its end, never kept.
    if !message.is_empty() {
        let mut small = DataReader::new(message.len() / 2, Spool::new(None, None));
        let (used, end) = small.feed(&wire);
        assert_eq!(used, wire.len());
        assert!(matches!(end, Some(DataEnd::TooBig)), "{end:?}");
    }
}

/// The smarthost's replies as the outbound queue reads them.
fn reply_parser(input: &[u8]) {
    let mut parser = ReplyParser::default();
    for line in input.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match parser.line(line) {
            Ok(Some(reply)) => {
                assert!((200..600).contains(&reply.code));
                let _ = (
                    reply.is_positive(),
                    reply.is_permanent(),
                    reply.text(),
                    reply.enhanced(),
                );
                let caps = Capabilities::from_ehlo(&reply);
                let params = ringmail::smtp::params::MailParams::default();
                let _ = ringmail::smtp::client::mail_line("a@example.com", 1000, &params, &caps);
            }
            Ok(None) => {}
            Err(_) => parser = ReplyParser::default(),
        }
    }
}
