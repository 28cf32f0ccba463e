//! LMTP (RFC 2033) and `ringmail deliver` over real sockets: per-recipient replies, bad input
//! of every kind, quotas, durability across kill -9, and graceful shutdown.

mod common;

use common::{message, Extra, Server, PASSWORD};
use loadtest::client::lmtp::stuff;

fn inbox(server: &Server, user: &str) -> Vec<Vec<u8>> {
    let mut c = server.pop3_tls();
    c.login(user, PASSWORD).unwrap().expect_ok().unwrap();
    let n: usize = c.cmd("STAT").unwrap().text.split(' ').next().unwrap().parse().unwrap();
    let all = (1..=n as u32).map(|i| c.retr(i).unwrap()).collect();
    c.cmd("QUIT").unwrap();
    all
}

#[test]
fn multi_recipient_with_one_unknown() {
    let server = Server::start();
    server.add_user("bob");
    server.add_user("carol");
    let mut c = server.lmtp();
    let msg = message("team");
    let (rcpt, data) = c
        .send(
            "alice@example.org",
            &["bob@example.org", "nobody@example.org", "Carol@example.org"],
            &msg,
        )
        .unwrap();
    assert_eq!(rcpt.iter().map(|r| r.code).collect::<Vec<_>>(), [250, 550, 250]);
    assert!(rcpt[1].text.starts_with("5.1.1"), "{:?}", rcpt[1]);
    assert_eq!(
        data.iter().map(|r| r.code).collect::<Vec<_>>(),
        [250, 250],
        "one reply per accepted recipient"
    );
    assert_eq!(inbox(&server, "bob"), vec![msg.clone()]);
    assert_eq!(inbox(&server, "carol"), vec![msg]);
}

#[test]
fn lhlo_advertises_and_smtp_greetings_are_refused() {
    let server = Server::start();
    let mut c = server.lmtp();
    c.t.send_line("LHLO me").unwrap();
    let mut caps = Vec::new();
    loop {
        let line = c.t.read_line_string().unwrap();
        caps.push(line[4..].to_owned());
        if line.as_bytes()[3] == b' ' {
            break;
        }
    }
    for cap in ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"] {
        assert!(caps.iter().any(|c| c == cap), "{cap} missing: {caps:?}");
    }
    assert!(caps.iter().any(|c| c.starts_with("SIZE ")));
    assert_eq!(c.cmd("EHLO me").unwrap().code, 500);
    assert_eq!(c.cmd("HELO me").unwrap().code, 500);
    assert_eq!(c.cmd("RCPT TO:<bob@x>").unwrap().code, 503);
    assert_eq!(c.cmd("DATA").unwrap().code, 503);
    assert_eq!(c.cmd("FOO").unwrap().code, 500);
    assert_eq!(c.cmd("VRFY bob").unwrap().code, 252);
    assert_eq!(c.cmd("NOOP").unwrap().code, 250);
    assert_eq!(c.cmd("QUIT").unwrap().code, 221);
}

#[test]
fn pipelined_transaction() {
    let server = Server::start();
    server.add_user("bob");
    let mut c = server.lmtp();
    let mut wire = b"LHLO me\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob@x.y>\r\nDATA\r\n".to_vec();
    wire.extend_from_slice(&stuff(&message("piped")));
    wire.extend_from_slice(b"QUIT\r\n");
    c.t.send_raw(&wire).unwrap();
    let codes: Vec<u16> = (0..6).map(|_| c.reply().unwrap().code).collect();
    assert_eq!(codes, [250, 250, 250, 354, 250, 221]);
    assert_eq!(inbox(&server, "bob"), vec![message("piped")]);
}

#[test]
fn bad_messages_are_refused_and_store_nothing() {
    let server = Server::start_with(Extra {
        lmtp: "max_message_size = 2000",
        ..Extra::default()
    });
    server.add_user("bob");
    let cases: [(&[u8], u16); 3] = [
        (b"Subject: no separator\r\nstill header\r\n", 554),
        (b"Subject: nul\r\n\r\nbody\0here\r\n", 554),
        (&[b'x'; 3000], 552),
    ];
    for (msg, code) in cases {
        let mut c = server.lmtp();
        let (rcpt, data) = c.send("a@b.c", &["bob", "bob@x"], msg).unwrap();
        assert!(rcpt.iter().all(|r| r.code == 250));
        assert_eq!(data.len(), 2, "one reply per recipient");
        assert!(
            data.iter().all(|r| r.code == code),
            "{:?} for {:?}",
            data,
            &msg[..msg.len().min(20)]
        );
    }
    // Empty data: the final "." straight after DATA.
    let mut c = server.lmtp();
    c.cmd("LHLO me").unwrap();
    c.cmd("MAIL FROM:<>").unwrap();
    assert_eq!(c.cmd("RCPT TO:<bob>").unwrap().code, 250);
    assert_eq!(c.cmd("DATA").unwrap().code, 354);
    assert_eq!(c.cmd(".").unwrap().code, 554);
    // A declared size over the limit is refused at MAIL.
    let mut c = server.lmtp();
    c.cmd("LHLO me").unwrap();
    assert_eq!(c.cmd("MAIL FROM:<a@b.c> SIZE=5000").unwrap().code, 552);
    assert!(inbox(&server, "bob").is_empty());
    // deliver: unknown user and bad message fail with a one-line error and a non-zero exit.
    let out = server.cli(&["deliver", "nobody"], &message("x"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("550") && err.lines().count() == 1, "{err}");
    let out = server.cli(&["deliver", "bob"], b"no separator");
    assert!(!out.status.success());
    assert!(inbox(&server, "bob").is_empty());
}

#[test]
fn bare_lf_is_normalised_so_sizes_are_exact() {
    let server = Server::start();
    server.add_user("bob");
    server.deliver("bob", b"Subject: unix\n\nline one\nline two\n");
    let mut c = server.pop3_tls();
    c.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    let expected = b"Subject: unix\r\n\r\nline one\r\nline two\r\n";
    assert_eq!(c.cmd("LIST 1").unwrap().text, format!("1 {}", expected.len()));
    assert_eq!(c.retr(1).unwrap(), expected);
}

#[test]
fn domains_and_mailboxes() {
    let server = Server::start_with(Extra {
        server: "domains = [\"example.org\"]",
        ..Extra::default()
    });
    server.add_user("bob");
    let mut c = server.lmtp();
    let (rcpt, _) = c
        .send("a@b.c", &["bob@example.org", "bob@elsewhere.net"], &message("d"))
        .unwrap();
    assert_eq!(rcpt.iter().map(|r| r.code).collect::<Vec<_>>(), [250, 550]);
    let out = server.cli(&["deliver", "bob", "--mailbox", "Archive"], &message("archived"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(inbox(&server, "bob").len(), 1, "Archive is not the POP3 maildrop");
    let show = String::from_utf8(server.cli(&["user", "show", "bob"], b"").stdout).unwrap();
    assert!(show.contains("mailbox: Archive (1 messages"), "{show}");
}

#[test]
fn quota_refuses_what_does_not_fit() {
    let server = Server::start();
    server.add_user("bob");
    server.set_user("bob", &["--quota", "200"]);
    server.deliver("bob", &message("fits"));
    let mut c = server.lmtp();
    let (_, data) = c.send("a@b.c", &["bob"], &message("too much")).unwrap();
    assert_eq!(data[0].code, 552);
    assert!(data[0].text.starts_with("5.2.2"));
}

#[test]
fn delivered_means_durable_across_kill_9() {
    let mut server = Server::start();
    server.add_user("bob");
    server.deliver("bob", &message("durable-1"));
    let mut c = server.lmtp();
    let (_, data) = c.send("a@b.c", &["bob"], &message("durable-2")).unwrap();
    assert_eq!(data[0].code, 250);
    server.kill9();
    server.spawn();
    assert_eq!(inbox(&server, "bob"), vec![message("durable-1"), message("durable-2")]);
}

#[test]
fn deliver_without_a_server_says_so() {
    let mut server = Server::start();
    server.add_user("bob");
    server.kill9();
    let out = server.cli(&["deliver", "bob"], &message("x"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is `ringmail serve` running?"), "{err}");
}

#[test]
fn sigterm_tells_sessions_and_exits_cleanly() {
    let mut server = Server::start();
    server.add_user("bob");
    let mut pop = server.pop3_tls();
    pop.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    let mut lmtp = server.lmtp();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let said = String::from_utf8_lossy(&pop.t.read_to_close().unwrap()).into_owned();
    assert!(said.starts_with("-ERR [SYS/TEMP] server shutting down"), "{said}");
    let said = String::from_utf8_lossy(&lmtp.t.read_to_close().unwrap()).into_owned();
    assert!(said.starts_with("421 "), "{said}");
    assert!(std::net::TcpStream::connect(server.addr(server.ports.pop3)).is_err());
}

/// Regression: a read boundary right after a line-initial '.' lost bytes already buffered, so
/// a 65,000-byte message hung (helper report on issue 2).
#[test]
fn large_messages_with_dot_lines_arrive_whole() {
    let server = Server::start();
    server.add_user("bob");
    for size in [65_000usize, 200_003] {
        let mut msg = b"Subject: big\r\n\r\n".to_vec();
        let mut i = 0;
        while msg.len() < size {
            msg.extend_from_slice(if i % 7 == 0 {
                b".dotted line\r\n".as_slice()
            } else {
                b"plain text line here\r\n"
            });
            i += 1;
        }
        let mut c = server.lmtp();
        let (_, data) = c.send("a@b.c", &["bob"], &msg).unwrap();
        assert_eq!(data[0].code, 250);
        assert_eq!(c.cmd("NOOP").unwrap().code, 250, "the next command is not swallowed");
    }
    let got = inbox(&server, "bob");
    assert_eq!(got.len(), 2);
    assert!(got[0].len() >= 65_000 && got[1].len() >= 200_003);
}
