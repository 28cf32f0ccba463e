//! The POP3 session (`pop3::Session`) fed arbitrary client bytes through its engine input, as
//! `serve::pop3` drives it, before and after login; and the RETR/TOP encoder
//! (`pop3::RetrEncoder`) on arbitrary message bytes.
//!
//! The first byte: bits 0-1 TLS and the login type; bit 2: start logged in; bit 3: logins fail;
//! bit 4: the commit at QUIT fails; bit 7: fuzz the encoder instead of the session.
//!
//! Properties: nothing panics; every action is answered; RETR and TOP output unstuffs to the
//! message (or, for TOP, a prefix of it holding the header), whatever pieces the message comes
//! in, and no line of it but the last is the terminating "."; stuffing from the store's index of
//! dot lines gives what a scan gives.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringmail::auth::login::Credentials;
use ringmail::config::{Config, LoginType};
use ringmail::engine::Engine;
use ringmail::net::Input;
use ringmail::pop3::{Action, LoginFailure, Maildrop, Message, RetrEncoder, Session, Settings};
use ringmail::store::dot_lines;
use ringmail_fuzz::{Choices, MemStore, MESSAGES, PASSWORD};

fuzz_target!(|data: &[u8]| {
    let mut choices = Choices::new(data);
    let setup = choices.byte();
    if setup & 0x80 != 0 {
        encoder(&mut choices);
    } else {
        session(setup, &mut choices);
    }
});

fn maildrop() -> Maildrop {
    Maildrop {
        imported_uidls: Default::default(),
        mailbox: 5,
        uid_validity: 1_700_000_005,
        messages: MESSAGES
            .iter()
            .enumerate()
            .map(|(i, m)| Message {
                uid: i as u32 * 2 + 1,
                size: m.len() as u64,
                body_id: i as u64,
                dot_free: !m.starts_with('.') && !m.contains("\n."),
            })
            .collect(),
    }
}

fn session(setup: u8, choices: &mut Choices<'_>) {
    let read = usize::from(choices.byte()).max(1);
    let input = choices.rest();
    let config = Config::default();
    let tls = setup & 1 != 0;
    let login_type = if setup & 2 != 0 {
        LoginType::SecureLogin
    } else {
        LoginType::PlainTextLogin
    };
    let mut s = Session::new(
        Settings {
            login_type,
            stls: !tls,
            banner: "ringmail POP3 ready".into(),
            max_login_failures: config.limits.max_login_failures,
            max_line: config.pop3.max_command_size,
            timeouts: config.pop3.timeouts(),
            oauth: true,
        },
        tls,
    );
    let mut out = Vec::new();
    s.greeting(&mut out);
    if setup & 4 != 0 {
        let login = s.login_result(Ok(maildrop()), &mut out);
        assert_eq!(login, Action::Continue);
        assert!(s.is_authenticated());
    }
    let (fail_login, fail_commit) = (setup & 8 != 0, setup & 16 != 0);

    let mut input_buf = Input::default();
    let mut fed = 0;
    'session: loop {
        let (used, action) = s.input(input_buf.pending(), &mut (), &mut out);
        input_buf.consume(used);
        let _ = s.take_log();
        if used == 0 && matches!(action, Action::Continue) {
            if fed == input.len() {
                break;
            }
            let end = (fed + read).min(input.len());
            input_buf.read_buffer().extend_from_slice(&input[fed..end]);
            fed = end;
            continue;
        }
        let mut action = action;
        loop {
            action = match action {
                Action::Continue => break,
                Action::Close => break 'session,
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
                        Ok(maildrop())
                    } else {
                        Err(LoginFailure::BadCredentials)
                    };
                    s.login_result(result, &mut out)
                }
                Action::LookupScram(user) => {
                    let keys = (user == "bob").then(MemStore::scram);
                    s.scram_credentials(keys, &mut out)
                }
                Action::StartTls => {
                    input_buf.discard();
                    s.tls_started();
                    break;
                }
                Action::Retrieve { body_id, top, dot_free } => {
                    let message = MESSAGES[body_id as usize].as_bytes();
                    let encoder = match (top, dot_free) {
                        (Some(n), _) => RetrEncoder::top(n),
                        (None, true) => RetrEncoder::verbatim(),
                        (None, false) => RetrEncoder::whole(),
                    };
                    let rendered = render(encoder, message, &[read]);
                    check_rendering(message, &rendered, top);
                    out.extend_from_slice(&rendered);
                    break;
                }
                Action::Commit { uids, .. } => {
                    let result = if fail_commit { Err(()) } else { Ok(uids.len()) };
                    s.commit_result(result, &mut out)
                }
            };
        }
    }
    assert!(out.ends_with(b"\r\n"), "{:?}", String::from_utf8_lossy(&out));
}

/// The encoder over `message` in pieces of the given sizes, in turn (0: the rest).
fn render(mut encoder: RetrEncoder, message: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = message;
    let mut i = 0;
    while !rest.is_empty() && !encoder.is_done() {
        let size = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(0);
        let n = if size == 0 { rest.len() } else { size.min(rest.len()) };
        encoder.encode(&rest[..n], &mut out);
        rest = &rest[n..];
        i += 1;
    }
    encoder.finish(&mut out);
    out
}

/// Undoes RFC 1939 §3 byte-stuffing: what a client reads up to the terminating line.
fn unstuff(rendered: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    let mut rest = rendered;
    loop {
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        rest = &rest[end..];
        if line == b".\r\n" {
            assert!(
                rest.is_empty(),
                "the terminating line comes before the end of the rendering"
            );
            return message;
        }
        assert!(!line.is_empty(), "the rendering has no terminating line");
        assert!(
            !line.starts_with(b".") || line.starts_with(b".."),
            "an unstuffed line starts with '.': {:?}",
            String::from_utf8_lossy(line)
        );
        message.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
}

fn check_rendering(message: &[u8], rendered: &[u8], top: Option<u32>) {
    let body = unstuff(rendered);
    // A message without a final line end gets one before the terminating line.
    let expected_whole = if message.is_empty() || message.ends_with(b"\n") {
        message.to_vec()
    } else {
        [message, b"\r\n"].concat()
    };
    match top {
        None => assert_eq!(
            body,
            expected_whole,
            "RETR does not unstuff to the message: {:?}",
            String::from_utf8_lossy(rendered)
        ),
        // TOP stops after whole lines, or at the end of the message.
        Some(_) => assert!(
            expected_whole.starts_with(&body),
            "TOP does not unstuff to a prefix of the message: {:?}",
            String::from_utf8_lossy(rendered)
        ),
    }
}

/// The encoder alone: any message, any pieces, whole or TOP.
fn encoder(choices: &mut Choices<'_>) {
    let mode = choices.byte();
    let sizes: Vec<usize> = choices.take(4).iter().map(|&b| usize::from(b)).collect();
    let raw = choices.rest();
    // TOP is fed stored messages, which are canonical (`mime::normalize_line_endings`): on a bare
    // CR its header end depends on where the message is split (reported with the targets).
    let message: &[u8] = &if mode % 4 == 2 {
        ringmail::mime::normalize_line_endings(raw)
    } else {
        std::borrow::Cow::Borrowed(raw)
    };
    let dot_free = !message.starts_with(b".") && !message.windows(2).any(|w| w == b"\n.");
    let make = || match mode % 4 {
        0 => RetrEncoder::whole(),
        1 if dot_free => RetrEncoder::verbatim(),
        1 => RetrEncoder::whole(),
        2 => RetrEncoder::top(u32::from(mode / 4)),
        _ => RetrEncoder::indexed(dot_lines::offsets(message)),
    };
    let top = (mode % 4 == 2).then_some(u32::from(mode / 4));
    let whole = render(make(), message, &[0]);
    if mode % 4 == 3 {
        let scanned = render(RetrEncoder::whole(), message, &[0]);
        assert_eq!(
            whole, scanned,
            "the store's index of dot lines stuffs otherwise than a scan"
        );
    }
    let pieces = render(make(), message, &sizes);
    assert_eq!(whole, pieces, "the rendering depends on how the message is split");
    // encode_pieces describes the same bytes as encode.
    let mut described = Vec::new();
    let mut enc = make();
    enc.encode_pieces(message, |piece| match piece {
        ringmail::pop3::retr::Piece::Run(r) => {
            assert!(!r.is_empty(), "an empty run");
            described.extend_from_slice(&message[r]);
        }
        ringmail::pop3::retr::Piece::Dot => described.push(b'.'),
    });
    enc.finish(&mut described);
    assert_eq!(described, whole);
    check_rendering(message, &whole, top);
}
