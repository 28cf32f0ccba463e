//! SMTP submission (RFC 6409) over real sockets: every AUTH mechanism over STARTTLS and
//! implicit TLS, the sender rules, local delivery seen by an idling IMAP session, BDAT, bad
//! input, CPython's smtplib — and the outbound queue against a smarthost stand-in on loopback:
//! retries, bounces, expiry, the CLI, and a kill -9 in the middle (issue 4).

mod common;
#[path = "support/smarthost.rs"]
mod smarthost;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, message, path_str, python3, Extra, Server, PASSWORD};
use smarthost::{Script, Smarthost};

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A server serving example.org, with users alice and bob.
fn start(submission: &'static str) -> Server {
    let server = Server::start_with(Extra {
        server: "domains = [\"example.org\"]",
        submission,
        ..Extra::default()
    });
    server.add_user("alice");
    server.add_user("bob");
    server
}

/// A server relaying to the smarthost on `port`, retrying after 1 s, 2 s, 2 s, …
fn start_relaying(port: u16, more: &str) -> Server {
    start(leak(format!(
        "relay = \"127.0.0.1:{port}\"\nrelay_starttls = false\nretry_base = 1\nretry_max = 2\n{more}"
    )))
}

/// Every message of the user's INBOX, over POP3.
fn inbox(server: &Server, user: &str) -> Vec<String> {
    let mut c = server.pop3_tls();
    c.login(user, PASSWORD).unwrap().expect_ok().unwrap();
    let n: u32 = c.cmd("STAT").unwrap().text.split(' ').next().unwrap().parse().unwrap();
    let all = (1..=n)
        .map(|i| String::from_utf8(c.retr(i).unwrap()).unwrap())
        .collect();
    c.cmd("QUIT").unwrap();
    all
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn cli(server: &Server, args: &[&str]) -> (bool, String) {
    let out = server.cli(args, b"");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn queue_list(server: &Server) -> String {
    let (ok, text) = cli(server, &["queue", "list"]);
    assert!(ok, "{text}");
    text
}

/// Submits one message as alice over implicit TLS; returns the reply to the data.
fn submit(server: &Server, to: &[&str], msg: &[u8]) -> String {
    let mut c = server.smtp_login("alice");
    let sent = c.send("alice@example.org", to, msg).unwrap();
    assert_eq!(sent.mail.code, 250, "{sent:?}");
    let data = sent.data.expect("DATA accepted");
    assert_eq!(data.code, 250, "{data:?}");
    c.cmd("QUIT").unwrap();
    data.text
}

fn each_mechanism(server: &Server, implicit_tls: bool) {
    for mechanism in ["PLAIN", "LOGIN", "SCRAM-SHA-256"] {
        let mut c = if implicit_tls {
            server.smtp_tls()
        } else {
            server.smtp_starttls()
        };
        assert!(
            c.caps.iter().any(|k| k == "AUTH PLAIN LOGIN SCRAM-SHA-256"),
            "{:?}",
            c.caps
        );
        assert!(!c.caps.iter().any(|k| k == "STARTTLS"), "not offered inside TLS");
        let reply = match mechanism {
            "PLAIN" => c.auth_plain("alice", PASSWORD),
            "LOGIN" => c.auth_login("alice", PASSWORD),
            _ => c.auth_scram("alice", PASSWORD),
        }
        .unwrap();
        assert_eq!(reply.code, 235, "{mechanism}: {reply:?}");
        let subject = format!("{mechanism} tls={implicit_tls}");
        let sent = c
            .send("alice@example.org", &["bob@example.org"], &message(&subject))
            .unwrap();
        assert_eq!(sent.data.unwrap().code, 250, "{mechanism}");
        assert_eq!(c.cmd("QUIT").unwrap().code, 221);
    }
    let got = inbox(server, "bob");
    assert_eq!(got.len(), 3);
    for m in &got {
        assert!(
            m.starts_with("Received: from client.test ([127.0.0.1])\r\n\tby localhost (ringmail) with ESMTPSA"),
            "{m}"
        );
        assert!(
            m.contains("\t(using TLSv1.3 with cipher ") && m.contains("(authenticated as alice);"),
            "{m}"
        );
        assert!(m.ends_with("Hello Bob.\r\n.leading dot\r\nBye.\r\n"), "{m}");
    }
}

#[test]
fn starttls_with_each_auth_mechanism() {
    let server = start("");
    each_mechanism(&server, false);
}

#[test]
fn implicit_tls_with_each_auth_mechanism() {
    let server = start("");
    each_mechanism(&server, true);
}

#[test]
fn readme_lists_the_ehlo_keywords_the_server_offers() {
    let server = start("");
    let offered = server.smtp_tls().caps.join(" ");
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.lines().any(|l| l == offered),
        "README.md does not list: {offered}"
    );
}

#[test]
fn login_policy_before_and_after_tls() {
    let server = start("");
    let mut c = server.smtp_plain();
    let caps = c.ehlo("client.test").unwrap();
    assert!(caps.iter().any(|k| k == "STARTTLS"), "{caps:?}");
    assert!(
        !caps.iter().any(|k| k.starts_with("AUTH")),
        "secure-login: no AUTH before TLS"
    );
    assert_eq!(c.auth_plain("alice", PASSWORD).unwrap().code, 538);
    let refused = c.cmd("MAIL FROM:<alice@example.org>").unwrap();
    assert_eq!(
        (refused.code, refused.text.as_str()),
        (530, "5.7.0 must issue a STARTTLS command first")
    );
    c.starttls(server.tls(), "localhost").unwrap();
    assert_eq!(
        c.cmd("MAIL FROM:<alice@example.org>").unwrap().code,
        530,
        "authentication required"
    );
    assert_eq!(c.auth_plain("anonymous", PASSWORD).unwrap().code, 535);
    assert_eq!(c.auth_plain("alice", "wrong").unwrap().code, 535);
    let third = c.auth_plain("alice", "wrong again").unwrap();
    assert_eq!(third.code, 535);
    assert_eq!(c.reply().unwrap().code, 421, "three failures close the connection");
    // Administrators may submit (DESIGN.md §6), and the POP3/IMAP switches do not apply.
    let out = server.cli(
        &["user", "add", "root", "--admin", "--password-stdin"],
        PASSWORD.as_bytes(),
    );
    assert!(out.status.success());
    server.set_user("bob", &["--pop", "off", "--imap", "off"]);
    let mut c = server.smtp_login("root");
    let sent = c
        .send(
            "root@example.org",
            &["alice@example.org"],
            b"Subject: from root\r\n\r\nhi\r\n",
        )
        .unwrap();
    assert_eq!(sent.data.unwrap().code, 250);
    let mut c = server.smtp_login("bob");
    assert_eq!(
        c.send("bob", &["alice@example.org"], b"Subject: b\r\n\r\nx\r\n")
            .unwrap()
            .data
            .unwrap()
            .code,
        250
    );
    assert_eq!(inbox(&server, "alice").len(), 2);
    // The per-user switch for submission.
    server.set_user("bob", &["--smtp", "off"]);
    let mut c = server.smtp_tls();
    let off = c.auth_plain("bob", PASSWORD).unwrap();
    assert_eq!(off.code, 535);
    assert_eq!(off.text, "5.7.8 SMTP submission access is disabled for this account");
    // plain-text-login: AUTH is offered and works before TLS.
    let open = start("login_type = \"plain-text-login\"");
    let mut c = open.smtp_plain();
    assert!(c
        .ehlo("client.test")
        .unwrap()
        .iter()
        .any(|k| k.starts_with("AUTH PLAIN")));
    assert_eq!(c.auth_plain("alice", PASSWORD).unwrap().code, 235);
}

#[test]
fn sender_must_be_an_address_of_the_user() {
    let server = start("");
    let mut c = server.smtp_login("alice");
    let mail = c.cmd("MAIL FROM:<bob@example.org>").unwrap();
    assert_eq!(mail.code, 553);
    assert_eq!(
        mail.text,
        "5.7.1 sender <bob@example.org> is not an address of user alice"
    );
    assert_eq!(c.cmd("MAIL FROM:<alice@elsewhere.net>").unwrap().code, 553);
    let forged = b"From: Bob <bob@example.org>\r\nSubject: forged\r\n\r\nhi\r\n";
    let sent = c.send("alice+work@example.org", &["bob@example.org"], forged).unwrap();
    assert_eq!(sent.mail.code, 250, "a subaddress is still alice's");
    let data = sent.data.unwrap();
    assert_eq!(data.code, 553);
    assert_eq!(
        data.text,
        "5.7.1 From: address <bob@example.org> is not an address of user alice"
    );
    assert!(inbox(&server, "bob").is_empty());
}

#[test]
fn local_delivery_reaches_an_idling_imap_session_at_once() {
    let server = start("");
    server.add_user("carol");
    let mut imap = server.imap_login("bob");
    imap.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    imap.t.send_line("i1 IDLE").unwrap();
    assert!(imap.t.read_line_string().unwrap().starts_with('+'));
    let msg = b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nBcc: carol@example.org\r\nSubject: idle\r\n\r\nhello\r\n";
    let reply = submit(&server, &["bob@example.org", "carol@example.org"], msg);
    assert_eq!(reply, "2.0.0 OK delivered", "local only: nothing queued");
    imap.t.set_read_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(imap.t.read_line_string().unwrap(), "* 1 EXISTS");
    imap.t.send_line("DONE").unwrap();
    imap.finish("i1").unwrap().expect_ok().unwrap();
    let fetched = imap.cmd("FETCH 1 BODY.PEEK[]").unwrap().expect_ok().unwrap();
    let text = fetched.lines().join("\n");
    assert!(text.contains("Received: from client.test"), "{text}");
    assert!(text.contains("\r\nDate: ") && text.contains("\r\nMessage-ID: <") && text.contains("@localhost>"));
    assert!(!text.contains("Bcc:"), "Bcc: is stripped: {text}");
    let carol = inbox(&server, "carol");
    assert_eq!(carol.len(), 1);
    assert!(carol[0].contains("Subject: idle") && !carol[0].contains("Bcc:"));
}

#[test]
fn remote_recipients_need_a_relay() {
    let server = start("");
    let mut c = server.smtp_login("alice");
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org>").unwrap().code, 250);
    let far = c.cmd("RCPT TO:<someone@far.example>").unwrap();
    assert_eq!((far.code, far.text.as_str()), (550, "5.7.1 relaying not configured"));
    assert_eq!(c.cmd("RCPT TO:<nobody@example.org>").unwrap().code, 550);
    assert_eq!(c.cmd("DATA").unwrap().code, 554, "no valid recipients");
}

#[test]
fn relay_retries_temporary_failures_and_bounces_permanent_ones() {
    let smarthost = Smarthost::start(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        Script {
            temp_failures: 2,
            ..Script::default()
        },
    );
    let server = start_relaying(smarthost.port, "");
    let to = [
        "ok@far.example",
        "temp@far.example",
        "perm@far.example",
        "bob@example.org",
    ];
    let reply = submit(&server, &to, &message("relayed"));
    assert!(reply.starts_with("2.0.0 OK queued as "), "{reply}");
    assert_eq!(inbox(&server, "bob").len(), 1, "local copy at once");
    wait_for("the retried recipient", || smarthost.relayed().len() == 2);
    let relayed = smarthost.relayed();
    assert_eq!(relayed[0].to, ["ok@far.example"]);
    assert_eq!(relayed[1].to, ["temp@far.example"]);
    assert!(
        relayed[0].mail.starts_with("MAIL FROM:<alice@example.org> SIZE="),
        "{}",
        relayed[0].mail
    );
    let data = String::from_utf8(relayed[0].data.clone()).unwrap();
    assert!(
        data.starts_with("Received: from client.test") && data.contains("\r\n.leading dot\r\n"),
        "{data}"
    );
    let temp_tries = smarthost.rcpts().iter().filter(|a| *a == "temp@far.example").count();
    assert_eq!(temp_tries, 3, "two 451s, then accepted");
    wait_for("the queue to empty", || queue_list(&server).contains("queue is empty"));
    let bounces = inbox(&server, "alice");
    assert_eq!(bounces.len(), 1, "one report, for perm@ only");
    let report = &bounces[0];
    assert!(
        report.contains("Content-Type: multipart/report; report-type=delivery-status;"),
        "{report}"
    );
    assert!(report.contains("Final-Recipient: rfc822; perm@far.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"));
    assert!(report.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user at the smarthost"));
    assert!(report.contains("Content-Type: message/rfc822") && report.contains("Subject: relayed"));
    assert!(!report.contains("temp@far.example") && !report.contains("Final-Recipient: rfc822; ok@"));
}

#[test]
fn success_reports_for_local_and_relayed_mail() {
    let script = Script {
        no_dsn: true,
        ..Script::default()
    };
    let smarthost = Smarthost::start(TcpListener::bind("127.0.0.1:0").unwrap(), script);
    let server = start_relaying(smarthost.port, "");
    let mut c = server.smtp_login("alice");
    assert_eq!(
        c.cmd("MAIL FROM:<alice@example.org> ENVID=track+2B1").unwrap().code,
        250
    );
    for rcpt in [
        "bob@example.org> NOTIFY=SUCCESS",
        "far@far.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;far+40far.example",
        "quiet@far.example>",
    ] {
        assert_eq!(c.cmd(&format!("RCPT TO:<{rcpt}")).unwrap().code, 250, "{rcpt}");
    }
    assert_eq!(c.cmd("DATA").unwrap().code, 354);
    c.t.send_raw(b"Subject: tell me\r\n\r\nsecret body\r\n.\r\n").unwrap();
    assert_eq!(c.reply().unwrap().code, 250);
    // The local report is in the submission's own transaction; the relayed one follows.
    assert!(
        !inbox(&server, "alice").is_empty(),
        "the local delivery is reported at once"
    );
    wait_for("the relayed report", || inbox(&server, "alice").len() == 2);
    let reports = inbox(&server, "alice");
    let local = reports.iter().find(|r| r.contains("Action: delivered")).unwrap();
    assert!(local.contains("Subject: Successful Mail Delivery Report"), "{local}");
    assert!(local.contains("Original-Envelope-Id: track+1\r\n"));
    assert!(local.contains("Final-Recipient: rfc822; bob@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n"));
    assert!(local.contains("Content-Type: text/rfc822-headers") && !local.contains("secret body"));
    let relayed = reports.iter().find(|r| r.contains("Action: relayed")).unwrap();
    assert!(
        relayed.contains(
            "Original-Recipient: rfc822; far@far.example\r\nFinal-Recipient: rfc822; far@far.example\r\nAction: relayed\r\nStatus: 2.0.0\r\nRemote-MTA: dns; 127.0.0.1\r\n"
        ),
        "{relayed}"
    );
    assert!(!relayed.contains("quiet@far.example"), "no NOTIFY, no success report");
    assert_eq!(smarthost.relayed()[0].to, ["far@far.example", "quiet@far.example"]);
}

#[test]
fn messages_past_their_lifetime_bounce_unless_told_never() {
    let script = Script {
        always_temp: true,
        ..Script::default()
    };
    let smarthost = Smarthost::start(TcpListener::bind("127.0.0.1:0").unwrap(), script);
    let server = start_relaying(smarthost.port, "max_queue_lifetime = 3");
    submit(&server, &["temp1@far.example"], &message("expires"));
    let mut c = server.smtp_login("alice");
    c.cmd("MAIL FROM:<alice@example.org> RET=HDRS ENVID=quiet").unwrap();
    assert_eq!(c.cmd("RCPT TO:<temp2@far.example> NOTIFY=NEVER").unwrap().code, 250);
    c.cmd("DATA").unwrap();
    c.t.send_raw(b"Subject: silent\r\n\r\nx\r\n.\r\n").unwrap();
    assert_eq!(c.reply().unwrap().code, 250);
    wait_for("both to expire", || queue_list(&server).contains("queue is empty"));
    let bounces = inbox(&server, "alice");
    assert_eq!(bounces.len(), 1, "NOTIFY=NEVER asks for no report");
    assert!(bounces[0].contains("Final-Recipient: rfc822; temp1@far.example\r\nAction: failed\r\nStatus: 5.4.7\r\n"));
    assert!(
        bounces[0].contains("delivery time expired: 451 4.3.0 try again later"),
        "{}",
        bounces[0]
    );
    assert!(smarthost.rcpts().len() >= 4, "each was retried before it expired");
}

#[test]
fn the_queue_survives_kill_9_and_restart() {
    let port = free_port();
    let mut server = start_relaying(port, "");
    let reply = submit(&server, &["far@far.example"], &message("durable"));
    assert!(reply.starts_with("2.0.0 OK queued as "));
    wait_for("a failed attempt", || queue_list(&server).contains("attempts=1"));
    let list = queue_list(&server);
    assert!(list.contains("from=<alice@example.org>\tto=far@far.example"), "{list}");
    assert!(list.contains("error=smarthost: "), "{list}");
    server.kill9();
    let smarthost = Smarthost::start(TcpListener::bind(("127.0.0.1", port)).unwrap(), Script::default());
    server.spawn();
    wait_for("delivery after the restart", || smarthost.relayed().len() == 1);
    assert_eq!(smarthost.relayed()[0].to, ["far@far.example"]);
    wait_for("the queue to empty", || queue_list(&server).contains("queue is empty"));
    assert!(inbox(&server, "alice").is_empty(), "no bounce");
}

#[test]
fn queue_cli_lists_flushes_and_deletes() {
    let port = free_port();
    let server = start(leak(format!(
        "relay = \"127.0.0.1:{port}\"\nrelay_starttls = false\nretry_base = 3600\nretry_max = 3600"
    )));
    submit(&server, &["one@far.example"], &message("one"));
    submit(&server, &["two@far.example"], &message("two"));
    wait_for("first attempts", || {
        queue_list(&server).matches("attempts=1").count() == 2
    });
    let (ok, text) = cli(&server, &["queue", "flush"]);
    assert!(ok && text.contains("2 queued messages are due now"), "{text}");
    wait_for("the flushed retries", || {
        queue_list(&server).matches("attempts=2").count() == 2
    });
    let list = queue_list(&server);
    let first = list.lines().find(|l| l.contains("one@far.example")).unwrap();
    let id = first.split('\t').next().unwrap().to_owned();
    let (ok, text) = cli(&server, &["queue", "delete", &id]);
    assert!(ok, "{text}");
    let list = queue_list(&server);
    assert!(
        !list.contains("one@far.example") && list.contains("two@far.example"),
        "{list}"
    );
    let (ok, text) = cli(&server, &["queue", "delete", &id]);
    assert!(!ok && text.contains("no queued message"), "{text}");
    assert!(!cli(&server, &["queue", "delete", "xyz"]).0);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        queue_list(&server).contains("attempts=2"),
        "the runner kept its hands off"
    );
    assert!(inbox(&server, "alice").is_empty(), "a deleted entry bounces nothing");
}

#[test]
fn relay_over_starttls_with_auth() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.path().join("relay.pem"), dir.path().join("relay.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let script = Script {
        tls: Some((cert.clone(), key)),
        auth: Some(("relayuser".into(), "relay pw".into())),
        ..Script::default()
    };
    let smarthost = Smarthost::start(TcpListener::bind("127.0.0.1:0").unwrap(), script);
    let server = start(leak(format!(
        "relay = \"127.0.0.1:{}\"\nrelay_ca = \"{}\"\nrelay_user = \"relayuser\"\nrelay_password = \"relay pw\"",
        smarthost.port,
        path_str(&cert)
    )));
    submit(&server, &["far@far.example"], &message("secure"));
    wait_for("the relayed message", || smarthost.relayed().len() == 1);
    let relayed = &smarthost.relayed()[0];
    assert!(relayed.tls, "STARTTLS to the smarthost");
    assert_eq!(relayed.auth.as_deref(), Some("relayuser"));
}

#[test]
fn bdat_chunks() {
    let server = start("");
    let mut c = server.smtp_login("alice");
    assert!(c.caps.iter().any(|k| k == "CHUNKING"));
    c.cmd("MAIL FROM:<alice@example.org>").unwrap();
    c.cmd("RCPT TO:<bob@example.org>").unwrap();
    let msg = message("chunked");
    let (a, b) = msg.split_at(20);
    let replies = c.bdat(&[a, b, b""]).unwrap();
    let codes: Vec<u16> = replies.iter().map(|r| r.code).collect();
    assert_eq!(codes, [250, 250, 250]);
    assert_eq!(replies[0].text, "2.0.0 20 octets received");
    assert_eq!(replies[2].text, "2.0.0 OK delivered");
    // A message in one chunk, pipelined with the envelope.
    let mut wire = b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n".to_vec();
    let one = b"Subject: one chunk\r\n\r\n.no stuffing\r\n";
    wire.extend_from_slice(format!("BDAT {} LAST\r\n", one.len()).as_bytes());
    wire.extend_from_slice(one);
    c.t.send_raw(&wire).unwrap();
    let codes: Vec<u16> = (0..3).map(|_| c.reply().unwrap().code).collect();
    assert_eq!(codes, [250, 250, 250]);
    let got = inbox(&server, "bob");
    assert!(
        got[0].contains("\r\nSubject: chunked\r\n")
            && got[0].ends_with("\r\n\r\nHello Bob.\r\n.leading dot\r\nBye.\r\n")
    );
    assert!(
        got[1].ends_with("\r\n\r\n.no stuffing\r\n"),
        "BDAT data is not dot-stuffed"
    );
}

#[test]
fn bad_input_gets_clear_errors_and_stores_nothing() {
    let server = start("max_message_size = 10000\nrelay = \"127.0.0.1:9\"\nrelay_starttls = false\nretry_base = 3600");
    let mut c = server.smtp_tls();
    assert_eq!(c.cmd("FOO").unwrap().code, 500);
    assert_eq!(c.cmd("RCPT TO:<bob@example.org>").unwrap().code, 503);
    assert_eq!(c.cmd(&format!("NOOP {}", "x".repeat(3000))).unwrap().code, 500);
    assert_eq!(c.cmd("NOOP").unwrap().code, 250, "a long line does not end the session");
    assert_eq!(c.cmd("VRFY bob").unwrap().code, 252);
    assert_eq!(c.cmd("HELP").unwrap().code, 214);
    assert_eq!(c.auth_plain("alice", PASSWORD).unwrap().code, 235);
    assert_eq!(c.cmd("DATA").unwrap().code, 503);
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org> SIZE=20000").unwrap().code, 552);
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org> FOO=BAR").unwrap().code, 555);
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org>").unwrap().code, 250);
    assert_eq!(c.cmd("MAIL FROM:<alice@example.org>").unwrap().code, 503, "nested");
    for i in 0..100 {
        assert_eq!(c.cmd(&format!("RCPT TO:<r{i}@far.example>")).unwrap().code, 250);
    }
    assert_eq!(c.cmd("RCPT TO:<one-too-many@far.example>").unwrap().code, 452);
    assert_eq!(c.cmd("RSET").unwrap().code, 250);
    let big = [b"Subject: big\r\n\r\n".as_slice(), &[b'x'; 20_000]].concat();
    let sent = c.send("alice@example.org", &["bob@example.org"], &big).unwrap();
    assert_eq!(sent.data.unwrap().code, 552);
    let sent = c
        .send(
            "alice@example.org",
            &["bob@example.org"],
            b"Subject: nul\r\n\r\na\0b\r\n",
        )
        .unwrap();
    assert_eq!(sent.data.unwrap().code, 554);
    let sent = c
        .send("alice@example.org", &["bob@example.org"], b"Subject: no separator\r\n")
        .unwrap();
    assert_eq!(sent.data.unwrap().code, 554);
    let sent = c
        .send(
            "alice@example.org",
            &["bob@example.org"],
            b"Subject: unix\n\nline one\nline two\n",
        )
        .unwrap();
    assert_eq!(sent.data.unwrap().code, 250, "bare LF is accepted…");
    // Clients that vanish mid-DATA and mid-BDAT, with a remote recipient each.
    for tail in [
        "DATA\r\nSubject: cut\r\n\r\nhalf a mess",
        "BDAT 100 LAST\r\nSubject: cut\r\n",
    ] {
        let mut c = server.smtp_login("alice");
        let wire =
            format!("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<x@far.example>\r\n{tail}");
        c.t.send_raw(wire.as_bytes()).unwrap();
        drop(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    let got = inbox(&server, "bob");
    assert_eq!(got.len(), 1, "only the unix message");
    assert!(
        got[0].contains("\r\nSubject: unix\r\n") && got[0].ends_with("\r\n\r\nline one\r\nline two\r\n"),
        "…and stored with CRLF: {:?}",
        got[0]
    );
    assert!(queue_list(&server).contains("queue is empty"), "nothing queued");
}

const SMTPLIB: &str = r#"
import smtplib, ssl, sys
host, port, tls_port, cafile, password = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=cafile)
msg = "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: from smtplib\r\n\r\nhello\r\n"

s = smtplib.SMTP(host, port, timeout=30)
s.ehlo()
assert s.has_extn("starttls")
s.starttls(context=ctx)
s.ehlo()
assert "SCRAM-SHA-256" in s.esmtp_features["auth"], s.esmtp_features
s.login("alice", password)
assert s.sendmail("alice@example.org", ["bob@example.org"], msg) == {}
try:
    s.sendmail("bob@example.org", ["bob@example.org"], msg)
    raise SystemExit("a foreign sender was accepted")
except smtplib.SMTPSenderRefused as e:
    assert e.smtp_code == 553, e
s.quit()

with smtplib.SMTP_SSL(host, tls_port, context=ctx, timeout=30) as s:
    s.login("alice", password)
    assert s.sendmail("alice@example.org", ["bob@example.org"], msg.replace("smtplib", "SMTP_SSL")) == {}
print("smtplib ok")
"#;

#[test]
fn python_smtplib() {
    let server = start("");
    let out = Command::new(python3())
        .args(["-c", SMTPLIB, "localhost"])
        .arg(server.ports.submission.to_string())
        .arg(server.ports.submissions.to_string())
        .arg(path_str(&server.data_dir().join("cert.pem")))
        .arg(PASSWORD)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let got = inbox(&server, "bob");
    assert_eq!(got.len(), 2);
    assert!(got[0].contains("Subject: from smtplib") && got[1].contains("Subject: from SMTP_SSL"));
}
