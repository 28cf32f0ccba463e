//! A client that trickles bytes before login (one every half second, never ending a line)
//! cannot hold a connection past `pre_auth_timeout`: the deadline runs from accept to login,
//! it is not an idle timer (issue 11, 2). Over IMAP, POP3 and submission at a back end, and
//! at a front end. After login a line once begun must end within the same time.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{backend, Facing, Proxy};
use common::{Extra, Server};

/// Trickles one byte every 500 ms to `port` and returns how long the server kept the
/// connection and what it said.
fn trickle(port: u16) -> (Duration, String) {
    let mut t = loadtest::client::transport::Transport::connect(([127, 0, 0, 1], port).into()).unwrap();
    trickle_over(&mut t)
}

#[test]
fn trickling_bytes_does_not_hold_a_connection_before_login() {
    let server = Server::start_with(Extra {
        imap: "pre_auth_timeout = 2",
        pop3: "pre_auth_timeout = 2",
        submission: "pre_auth_timeout = 2",
        ..Extra::default()
    });
    for (port, bye) in [
        (server.ports.imap, "* BYE autologout"),
        (server.ports.pop3, "-ERR autologout"),
        (server.ports.submission, "421 4.4.2"),
    ] {
        let (held, said) = trickle(port);
        assert!(held < Duration::from_secs(6), "{port}: held {held:?}: {said}");
        assert!(said.contains(bye), "{port}: {said}");
    }
}

#[test]
fn trickling_bytes_does_not_hold_a_front_end_connection() {
    let facing = Facing::new();
    let _server = backend(facing);
    let directory = "[directory]\nusers = []\n";
    let proxy = Proxy::start_configured("east", "pre_auth_timeout = 2", directory, &[("b1", "east", facing)]);
    let (held, said) = trickle(proxy.imap);
    assert!(held < Duration::from_secs(6), "held {held:?}: {said}");
    assert!(said.contains("* BYE autologout"), "{said}");
}

/// Trickles one byte every 500 ms over `t` and returns how long the server kept the
/// connection and what it said.
fn trickle_over(t: &mut loadtest::client::transport::Transport) -> (Duration, String) {
    t.set_read_timeout(Duration::from_millis(500)).unwrap();
    let started = Instant::now();
    let mut said = Vec::new();
    let mut buf = [0u8; 512];
    while started.elapsed() < Duration::from_secs(20) {
        match t.read_available(&mut buf) {
            Ok(0) => break,
            Ok(n) => said.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        if t.send_raw(b"x").is_err() {
            break;
        }
    }
    (started.elapsed(), String::from_utf8_lossy(&said).into_owned())
}

#[test]
fn after_login_a_line_must_end_in_time_but_literal_data_may_be_slow() {
    let server = Server::start_with(Extra {
        imap: "pre_auth_timeout = 2",
        pop3: "pre_auth_timeout = 2",
        submission: "pre_auth_timeout = 2",
        ..Extra::default()
    });
    server.add_user("bob");
    let mut imap = server.imap_login("bob");
    let (held, said) = trickle_over(&mut imap.t);
    assert!(held < Duration::from_secs(6), "IMAP held {held:?}: {said}");
    assert!(said.contains("* BYE"), "{said}");

    let mut pop3 = server.pop3_tls();
    assert!(pop3.login("bob", common::PASSWORD).unwrap().ok);
    let (held, said) = trickle_over(&mut pop3.t);
    assert!(held < Duration::from_secs(6), "POP3 held {held:?}: {said}");

    let mut smtp = server.smtp_login("bob");
    let (held, said) = trickle_over(&mut smtp.t);
    assert!(held < Duration::from_secs(6), "submission held {held:?}: {said}");
    assert!(said.contains("421 4.4.2"), "{said}");

    // An APPEND literal sent a byte every 200 ms for 4 s is data, not a line: it is taken.
    let mut c = server.imap_login("bob");
    let message = b"Subject: slow\r\n\r\nx\r\n";
    c.t.send_raw(format!("a APPEND INBOX {{{}}}\r\n", message.len()).as_bytes())
        .unwrap();
    assert!(c.t.read_line_string().unwrap().starts_with('+'));
    for byte in message {
        c.t.send_raw(&[*byte]).unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    c.t.send_raw(b"\r\n").unwrap();
    let line = c.t.read_line_string().unwrap();
    assert!(line.starts_with("a OK"), "{line}");
}
