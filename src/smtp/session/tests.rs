//! Scripted sessions of both flavours against the sans-I/O engine.

use super::*;
use crate::auth::login::Credentials;
use crate::imap::urlauth::Refusal;

fn lmtp(max_recipients: usize, domains: Vec<String>) -> Session {
    Session::new(
        Settings {
            hostname: "mx.test".into(),
            max_message_size: 100,
            max_recipients,
            domains,
            flavor: Flavor::Lmtp,
            spool: None,
            max_line: 2048,
            timeouts: crate::engine::Timeouts {
                pre_auth: std::time::Duration::from_secs(60),
                auth: std::time::Duration::from_secs(600),
            },
        },
        false,
    )
}

fn submission(login_type: LoginType, relay: bool) -> Session {
    Session::new(
        Settings {
            hostname: "mx.test".into(),
            max_message_size: 100,
            max_recipients: 3,
            domains: vec!["example.org".into()],
            flavor: Flavor::Submission(SubmissionPolicy {
                login_type,
                starttls: true,
                relay,
                max_login_failures: 2,
                oauth: false,
            }),
            spool: None,
            max_line: 2048,
            timeouts: crate::engine::Timeouts {
                pre_auth: std::time::Duration::from_secs(60),
                auth: std::time::Duration::from_secs(600),
            },
        },
        false,
    )
}

fn say(s: &mut Session, line: &str) -> (Action, String) {
    let mut out = Vec::new();
    let action = s.on_line(line.as_bytes(), &mut out);
    (action, String::from_utf8(out).unwrap())
}

fn feed(s: &mut Session, bytes: &[u8]) -> (usize, Action, String) {
    let mut out = Vec::new();
    let (used, action) = s.data(bytes, &mut out);
    (used, action, String::from_utf8(out).unwrap())
}

fn accept(s: &mut Session, to: &str) {
    let Action::CheckRecipient(r) = say(s, &format!("RCPT TO:<{to}>")).0 else {
        panic!("expected a lookup")
    };
    let mut out = Vec::new();
    s.recipient_result(r, Lookup::Here, &mut out);
    assert!(out.starts_with(b"250"));
}

/// EHLO and AUTH PLAIN as bob, over TLS.
fn logged_in(relay: bool) -> Session {
    let mut s = submission(LoginType::SecureLogin, relay);
    s.tls_started();
    say(&mut s, "EHLO client");
    let (action, _) = say(&mut s, "AUTH PLAIN AGJvYgBwdw==");
    assert!(matches!(action, Action::Login(Credentials::Password { ref user, .. }) if user == "bob"));
    let mut out = Vec::new();
    s.login_result(Ok("bob".into()), &mut out);
    assert_eq!(out, b"235 2.7.0 authentication successful\r\n");
    s
}

#[test]
fn lmtp_transaction_script() {
    let mut s = lmtp(2, vec![]);
    assert!(say(&mut s, "MAIL FROM:<a@b>").1.starts_with("503"), "LHLO first");
    assert!(say(&mut s, "LHLO x").1.ends_with("250 SIZE 100\r\n"));
    assert!(say(&mut s, "DATA").1.starts_with("503"));
    assert!(say(&mut s, "MAIL FROM:<a@b> SIZE=101").1.starts_with("552"));
    assert!(say(&mut s, "MAIL FROM:<a@b> SMTPUTF8").1.starts_with("555"));
    assert!(say(&mut s, "MAIL FROM:<a@b>").1.starts_with("250"));
    assert!(say(&mut s, "DATA").1.starts_with("554"), "no recipients yet");
    assert!(say(&mut s, "RCPT TO:<bob@x> NOTIFY=NEVER").1.starts_with("555"));
    accept(&mut s, "bob+Work@x");
    accept(&mut s, "carol@x");
    assert!(say(&mut s, "RCPT TO:<dave@x>").1.starts_with("452"));
    assert!(say(&mut s, "DATA").1.starts_with("354"));
    assert!(s.in_data());
    let (used, action, _) = feed(&mut s, b"A: b\r\n\r\n..x\r\n.\r\nQUIT\r\n");
    assert_eq!(used, 16);
    let Action::Deliver(env) = action else {
        panic!("expected a delivery")
    };
    assert_eq!(*env.message, *b"A: b\r\n\r\n.x\r\n");
    assert_eq!(env.recipients[0].user, "bob");
    assert_eq!(env.recipients[0].mailbox, "Work");
    assert_eq!(env.recipients[1].mailbox, "INBOX");
    let statuses = [DeliveryStatus::Delivered, DeliveryStatus::OverQuota];
    let mut out = Vec::new();
    s.delivery_result(&env.recipients, &statuses, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "250 2.0.0 <bob+Work@x> delivered\r\n552 5.2.2 <carol@x> mailbox full\r\n"
    );
    assert!(
        say(&mut s, "MAIL FROM:<>").1.starts_with("250"),
        "ready for the next one"
    );
}

#[test]
fn lmtp_refuses_submission_commands() {
    let mut s = lmtp(2, vec![]);
    assert!(say(&mut s, "EHLO x").1.starts_with("500 5.5.1 this is LMTP"));
    say(&mut s, "LHLO x");
    for cmd in ["BDAT 10", "AUTH PLAIN", "STARTTLS"] {
        assert_eq!(say(&mut s, cmd).1, "500 5.5.2 command not recognized\r\n", "{cmd}");
    }
    assert!(!say(&mut s, "HELP").1.contains("BDAT"));
}

#[test]
fn unknown_and_foreign_recipients() {
    let mut s = lmtp(5, vec!["example.org".into()]);
    say(&mut s, "LHLO x");
    say(&mut s, "MAIL FROM:<>");
    assert!(say(&mut s, "RCPT TO:<bob@other.net>").1.starts_with("550 5.1.1"));
    let Action::CheckRecipient(r) = say(&mut s, "RCPT TO:<bob@EXAMPLE.org>").0 else {
        panic!()
    };
    let mut out = Vec::new();
    s.recipient_result(r, Lookup::Unknown, &mut out);
    assert!(out.starts_with(b"550 5.1.1"));
    assert!(say(&mut s, "DATA").1.starts_with("554"));
}

#[test]
fn oversized_data_gets_one_reply_per_recipient() {
    let mut s = lmtp(2, vec![]);
    say(&mut s, "LHLO x");
    say(&mut s, "MAIL FROM:<>");
    accept(&mut s, "a@x");
    accept(&mut s, "b@x");
    say(&mut s, "DATA");
    let big = [b"A: b\r\n\r\n".as_slice(), &[b'x'; 200], b"\r\n.\r\n"].concat();
    let (used, action, out) = feed(&mut s, &big);
    assert_eq!((used, action), (big.len(), Action::Continue));
    assert_eq!(out.matches("552 5.3.4").count(), 2);
    assert!(!s.in_data());
}

#[test]
fn ehlo_capabilities_follow_tls_and_login_type() {
    let mut s = submission(LoginType::SecureLogin, false);
    let caps = say(&mut s, "EHLO c").1;
    for cap in [
        "PIPELINING",
        "SIZE 100",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "DSN",
    ] {
        assert!(caps.contains(&format!("250-{cap}\r\n")), "{cap}: {caps}");
    }
    assert!(caps.contains("STARTTLS") && !caps.contains("AUTH"), "{caps}");
    assert!(caps.ends_with("250 HELP\r\n"));
    assert!(say(&mut s, "AUTH PLAIN").1.starts_with("538 5.7.11"));
    assert!(say(&mut s, "MAIL FROM:<bob@example.org>")
        .1
        .starts_with("530 5.7.0 must issue a STARTTLS"));
    assert_eq!(say(&mut s, "STARTTLS").0, Action::StartTls);
    s.tls_started();
    assert!(
        say(&mut s, "MAIL FROM:<bob@example.org>").1.starts_with("503"),
        "EHLO again"
    );
    let caps = say(&mut s, "EHLO c").1;
    assert!(!caps.contains("STARTTLS") && caps.contains("250-AUTH PLAIN LOGIN SCRAM-SHA-256\r\n"));
    assert!(say(&mut s, "STARTTLS").1.starts_with("503"));
    assert!(say(&mut s, "MAIL FROM:<bob@example.org>")
        .1
        .starts_with("530 5.7.0 authentication required"));
    let mut plain = submission(LoginType::PlainTextAuthentication, false);
    assert!(
        say(&mut plain, "EHLO c").1.contains("AUTH PLAIN"),
        "SASL allowed before TLS"
    );
    assert!(say(&mut plain, "LHLO c").1.starts_with("500"));
}

#[test]
fn sasl_login_exchange_and_failures() {
    let mut s = submission(LoginType::PlainTextLogin, false);
    say(&mut s, "EHLO c");
    assert_eq!(say(&mut s, "AUTH LOGIN").1, "334 VXNlcm5hbWU6\r\n");
    assert_eq!(s.loggable(b"Ym9i"), b"<sasl response redacted>".as_slice());
    assert_eq!(say(&mut s, "Ym9i").1, "334 UGFzc3dvcmQ6\r\n");
    let (action, _) = say(&mut s, "cHc=");
    assert!(matches!(action, Action::Login(_)));
    let mut out = Vec::new();
    assert_eq!(
        s.login_result(Err(LoginFailure::BadCredentials), &mut out),
        Action::Continue
    );
    assert!(out.starts_with(b"535 5.7.8"));
    assert_eq!(say(&mut s, "AUTH LOGIN").1, "334 VXNlcm5hbWU6\r\n");
    assert_eq!(say(&mut s, "*").1, "501 5.0.0 authentication cancelled\r\n");
    assert!(say(&mut s, "AUTH CRAM-MD5").1.starts_with("504"));
    assert!(say(&mut s, "AUTH PLAIN !!!").1.starts_with("501"));
    say(&mut s, "AUTH PLAIN AGJvYgB4");
    let mut out = Vec::new();
    assert_eq!(
        s.login_result(Err(LoginFailure::BadCredentials), &mut out),
        Action::Close
    );
    assert!(String::from_utf8(out).unwrap().contains("421 4.7.0"));
    assert_eq!(s.loggable(b"AUTH PLAIN AGJvYgB4"), b"AUTH PLAIN <redacted>".as_slice());
}

#[test]
fn sender_must_be_the_users() {
    let mut s = logged_in(false);
    assert!(say(&mut s, "AUTH PLAIN AGJvYgBwdw==").1.starts_with("503"));
    let refused = say(&mut s, "MAIL FROM:<carol@example.org>").1;
    assert_eq!(
        refused,
        "553 5.7.1 sender <carol@example.org> is not an address of user bob\r\n"
    );
    assert!(say(&mut s, "MAIL FROM:<>").1.starts_with("553 5.7.1"));
    assert!(say(&mut s, "MAIL FROM:<bob@elsewhere.net>").1.starts_with("553 5.7.1"));
    assert!(say(&mut s, "MAIL FROM:<Bob+lists@example.org> SMTPUTF8 RET=HDRS")
        .1
        .starts_with("250"));
}

#[test]
fn remote_recipients_need_a_relay() {
    let mut s = logged_in(false);
    say(&mut s, "MAIL FROM:<bob@example.org>");
    assert_eq!(
        say(&mut s, "RCPT TO:<x@gmail.com>").1,
        "550 5.7.1 relaying not configured\r\n"
    );
    let mut s = logged_in(true);
    say(&mut s, "MAIL FROM:<bob@example.org>");
    assert!(say(
        &mut s,
        "RCPT TO:<x@gmail.com> NOTIFY=FAILURE ORCPT=rfc822;x+40gmail.com"
    )
    .1
    .starts_with("250"));
    accept(&mut s, "carol@example.org");
    say(&mut s, "RCPT TO:<y@gmail.com>");
    assert!(
        say(&mut s, "RCPT TO:<z@gmail.com>").1.starts_with("452"),
        "max_recipients is 3"
    );
    say(&mut s, "DATA");
    let (_, action, _) = feed(&mut s, b"Subject: x\r\n\r\nhi\r\n.\r\n");
    let Action::Submit(env) = action else {
        panic!("expected a submission")
    };
    assert_eq!(env.user.as_deref(), Some("bob"));
    assert_eq!(env.helo, "client");
    assert_eq!(env.recipients.len(), 1);
    assert_eq!(env.remote.len(), 2);
    assert!(env.remote[0].params.notify.is_some());
    let mut out = Vec::new();
    s.submit_result(SubmitOutcome::Accepted { queue_id: Some(255) }, &mut out);
    assert_eq!(out, b"250 2.0.0 OK queued as 00000000000000FF\r\n");
}

#[test]
fn bdat_chunks_pipelined_and_refused() {
    let mut s = logged_in(true);
    assert!(say(&mut s, "BDAT 3").1.starts_with("503"));
    assert!(s.in_data(), "the refused chunk is still read");
    assert_eq!(feed(&mut s, b"abcMAIL").0, 3);
    say(&mut s, "MAIL FROM:<bob@example.org>");
    say(&mut s, "RCPT TO:<x@gmail.com>");
    let wire = b"Subject: a\r\n\r\nbody\r\n";
    assert_eq!(say(&mut s, "BDAT 10").1, "");
    let (used, _, out) = feed(&mut s, &wire[..]);
    assert_eq!((used, out.as_str()), (10, "250 2.0.0 10 octets received\r\n"));
    assert!(!s.in_data(), "between chunks a command comes next");
    assert!(say(&mut s, "DATA").1.starts_with("503"), "no DATA after BDAT");
    say(&mut s, "BDAT 10 LAST");
    let (used, action, _) = feed(&mut s, &wire[10..]);
    assert_eq!(used, 10);
    let Action::Submit(env) = action else {
        panic!("expected a submission")
    };
    assert_eq!(*env.message, wire[..]);
    let mut out = Vec::new();
    s.submit_result(SubmitOutcome::NotYours("carol@example.org".into()), &mut out);
    assert!(out.starts_with(b"553 5.7.1 From: address <carol@example.org> is not an address of user bob"));
}

/// Found by the smtp_command fuzz target: a From: field with a line break in it was echoed
/// into the 553 reply, which became two lines (a reply a client reads as two).
#[test]
fn client_text_in_a_reply_stays_on_one_line() {
    let mut s = logged_in(true);
    let mut out = Vec::new();
    s.submit_result(SubmitOutcome::NotYours("a\r\n250 ok\x0f".into()), &mut out);
    assert_eq!(
        out.iter().filter(|b| **b == b'\n').count(),
        1,
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert!(out.starts_with(b"553 5.7.1 From: address <a??250 ok?>"));
}

#[test]
fn bdat_over_the_limit_is_read_then_refused() {
    let mut s = logged_in(true);
    say(&mut s, "MAIL FROM:<bob@example.org>");
    say(&mut s, "RCPT TO:<x@gmail.com>");
    say(&mut s, "BDAT 80");
    assert_eq!(feed(&mut s, &[b'a'; 80]).2, "250 2.0.0 80 octets received\r\n");
    say(&mut s, "BDAT 80 LAST");
    let (used, action, out) = feed(&mut s, &[b'a'; 90]);
    assert_eq!((used, action), (80, Action::Continue));
    assert!(out.starts_with("552 5.3.4"));
    assert!(
        say(&mut s, "BDAT 0 LAST").1.starts_with("503"),
        "the transaction is over"
    );
    assert!(!s.in_data());
}

#[test]
fn oversized_data_gets_one_reply_in_submission() {
    let mut s = logged_in(true);
    say(&mut s, "MAIL FROM:<bob@example.org>");
    say(&mut s, "RCPT TO:<x@gmail.com>");
    say(&mut s, "RCPT TO:<y@gmail.com>");
    say(&mut s, "DATA");
    let big = [&[b'x'; 200], b"\r\n.\r\n".as_slice()].concat();
    let (_, action, out) = feed(&mut s, &big);
    assert_eq!(action, Action::Continue);
    assert_eq!(out, "552 5.3.4 message size exceeds fixed maximum message size\r\n");
}

/// A driver without sockets: the session fed as `serve::driver` feeds it, with every lookup
/// and login succeeding. Returns the replies and the messages submitted.
fn drive(pieces: &[&[u8]]) -> (String, Vec<Vec<u8>>) {
    use crate::engine::{Engine, Next};
    let mut s = submission(LoginType::SecureLogin, true);
    s.tls_started();
    let mut input = Vec::new();
    let (mut out, mut messages) = (Vec::new(), Vec::new());
    for piece in pieces {
        input.extend_from_slice(piece);
        while !input.is_empty() {
            let (used, mut action) = s.input(&input, &mut (), &mut out);
            input.drain(..used);
            while let Next::Act(a) = Session::next(action) {
                action = match a {
                    Action::Login(_) => s.login_result(Ok("bob".into()), &mut out),
                    Action::CheckRecipient(r) => s.recipient_result(r, Lookup::Here, &mut out),
                    Action::Submit(env) => {
                        messages.push(env.message.to_vec());
                        s.submit_result(SubmitOutcome::Accepted { queue_id: None }, &mut out)
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            if used == 0 {
                break;
            }
        }
    }
    (String::from_utf8(out).unwrap(), messages)
}

#[test]
fn a_pipelined_script_gives_the_same_replies_at_every_split() {
    let wire: &[u8] = b"EHLO c\r\nAUTH PLAIN AGJvYgBwdw==\r\nMAIL FROM:<bob@example.org>\r\n\
        RCPT TO:<carol@example.org>\r\nRCPT TO:<x@far.example>\r\nDATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\n\
        MAIL FROM:<bob@example.org>\r\nRCPT TO:<carol@example.org>\r\nBDAT 4\r\nab\r\nBDAT 3 LAST\r\n.yzNOOP\r\n";
    let (replies, messages) = drive(&[wire]);
    assert_eq!(
        messages,
        [b"Subject: x\r\n\r\n.dot\r\n".to_vec(), b"ab\r\n.yz".to_vec()]
    );
    assert_eq!(
        replies.lines().filter(|l| l.starts_with("250 ")).count(),
        10,
        "{replies}"
    );
    for cut in 0..=wire.len() {
        assert_eq!(
            drive(&[&wire[..cut], &wire[cut..]]),
            (replies.clone(), messages.clone()),
            "cut {cut}"
        );
    }
}

#[test]
fn garbage_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let alphabet: &[u8] = b"EHLO MAIL FROM:<> RCPT TO:<a@b> DATA BDAT 3 LAST AUTH PLAIN = * . \r\n\0\xff";
    for _ in 0..300 {
        let mut input = Vec::new();
        for _ in 0..200 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            input.push(alphabet[(seed % alphabet.len() as u64) as usize]);
        }
        drive(&[b"EHLO c\r\nAUTH PLAIN AGJvYgBwdw==\r\n", &input]);
    }
}

fn resolved(s: &mut Session, result: Result<Vec<u8>, Refusal>) -> (Action, String) {
    let mut out = Vec::new();
    let action = s.url_result(result, &mut out);
    (action, String::from_utf8(out).unwrap())
}

#[test]
fn burl_chunks_join_bdat_chunks() {
    let mut s = logged_in(true);
    let caps = say(&mut s, "EHLO client").1;
    assert!(
        caps.contains("250-AUTH PLAIN LOGIN SCRAM-SHA-256\r\n250-BURL imap\r\n"),
        "{caps}"
    );
    let url = "imap://bob@h/INBOX/;UID=1;URLAUTH=submit+bob:INTERNAL:00";
    assert_eq!(
        say(&mut s, &format!("BURL {url}")).1,
        "503 5.5.0 valid RCPT TO required before BURL\r\n"
    );
    say(&mut s, "MAIL FROM:<bob@example.org>");
    assert_eq!(
        say(&mut s, &format!("BURL {url}")).1,
        "554 5.5.0 no recipients have been specified\r\n"
    );
    say(&mut s, "RCPT TO:<x@gmail.com>");
    say(&mut s, "BDAT 14");
    feed(&mut s, b"Subject: a\r\n\r\n");
    let (action, out) = say(&mut s, &format!("BURL {url}"));
    assert_eq!(
        action,
        Action::ResolveUrl {
            url: url.into(),
            user: "bob".into()
        }
    );
    assert_eq!(out, "");
    let (action, out) = resolved(&mut s, Ok(b"forwarded\r\n".to_vec()));
    assert_eq!(action, Action::Continue);
    assert_eq!(out, "250 2.5.0 25 octets received, waiting for more BURL or BDAT\r\n");
    assert!(say(&mut s, "DATA").1.starts_with("503"), "no DATA after BURL");
    assert!(matches!(
        say(&mut s, &format!("BURL {url} LAST")).0,
        Action::ResolveUrl { .. }
    ));
    let (action, _) = resolved(&mut s, Ok(b"--\r\n".to_vec()));
    let Action::Submit(env) = action else {
        panic!("expected a submission")
    };
    assert_eq!(*env.message, *b"Subject: a\r\n\r\nforwarded\r\n--\r\n");
    assert_eq!(env.remote[0].address, "x@gmail.com");
}

#[test]
fn burl_refusals_end_the_transaction() {
    let rows = [
        (Refusal::Access, "554 5.7.0 "),
        (Refusal::Token, "554 5.7.0 "),
        (
            Refusal::Expired,
            "554 5.6.6 IMAP URL resolution failed: the URL has expired",
        ),
        (Refusal::Gone, "554 5.6.6 "),
        (
            Refusal::Invalid("not an imap:// URL"),
            "554 5.6.6 IMAP URL resolution failed: not an imap:// URL",
        ),
        (Refusal::Store(crate::store::StoreError::WriterGone), "451 4.4.1 "),
    ];
    for (refusal, reply) in rows {
        let mut s = logged_in(true);
        say(&mut s, "MAIL FROM:<bob@example.org>");
        say(&mut s, "RCPT TO:<x@gmail.com>");
        say(&mut s, "BURL imap://bob@h/INBOX/;UID=1 LAST");
        let (action, out) = resolved(&mut s, Err(refusal));
        assert_eq!(action, Action::Continue);
        assert!(out.starts_with(reply), "{out}");
        assert!(
            say(&mut s, "BDAT 0 LAST").1.starts_with("503"),
            "the transaction is over"
        );
    }
    // Too big once the URL's data is added.
    let mut s = logged_in(true);
    say(&mut s, "MAIL FROM:<bob@example.org>");
    say(&mut s, "RCPT TO:<x@gmail.com>");
    say(&mut s, "BURL imap://bob@h/INBOX/;UID=1");
    assert!(resolved(&mut s, Ok(vec![b'x'; 101])).1.starts_with("552 5.3.4"));
}

/// A large message whose spool file cannot be made (a full disk, no descriptors left) is
/// refused for now, once per recipient over LMTP, and the session goes on.
#[test]
fn a_message_that_cannot_be_spooled_is_refused_for_now() {
    let mut s = lmtp(2, vec![]);
    s.settings.max_message_size = 4 << 20;
    s.settings.spool = Some(std::sync::Arc::from(std::path::Path::new("/nonexistent/ringmail")));
    say(&mut s, "LHLO x");
    say(&mut s, "MAIL FROM:<a@b>");
    accept(&mut s, "bob@x");
    accept(&mut s, "carol@x");
    assert!(say(&mut s, "DATA").1.starts_with("354"));
    let mut wire = b"A: b\r\n\r\n".to_vec();
    wire.extend_from_slice(&b"x\r\n".repeat(crate::spool::SPILL_AT));
    wire.extend_from_slice(b".\r\n");
    let (used, action, out) = feed(&mut s, &wire);
    assert_eq!((used, action), (wire.len(), Action::Continue));
    assert_eq!(
        out,
        "452 4.3.1 insufficient system storage, try again later\r\n".repeat(2)
    );
    assert!(
        say(&mut s, "MAIL FROM:<a@b>").1.starts_with("250"),
        "the session goes on"
    );
}
