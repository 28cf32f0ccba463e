//! Connection limits that hold across protocols (issue 11, 3): LMTP has its own limits like
//! the client protocols, and all of them together stay inside what the process's descriptor
//! limit leaves room for, so one protocol filling up is refused with a reason instead of
//! `accept` failing for every listener.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::proxy::{backend, Facing, Proxy};
use common::{Extra, Server};

/// Connects and returns the stream with the server's first line.
fn greeted(port: u16) -> (TcpStream, String) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = String::new();
    let _ = BufReader::new(&s).read_line(&mut line);
    (s, line)
}

#[test]
fn lmtp_refuses_connections_past_its_limits_with_421() {
    let server = Server::start_with(Extra {
        lmtp: "max_connections_per_ip = 3",
        ..Extra::default()
    });
    let held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let (s, line) = greeted(server.ports.lmtp);
            assert!(line.starts_with("220 "), "{line}");
            s
        })
        .collect();
    let (_, line) = greeted(server.ports.lmtp);
    assert!(
        line.starts_with("421 4.3.2 ") && line.contains("too many connections from your address"),
        "{line}"
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (mut s, line) = greeted(server.ports.lmtp);
        if line.starts_with("220 ") {
            s.write_all(b"QUIT\r\n").unwrap();
            break;
        }
        assert!(Instant::now() < deadline, "the places were not given back: {line}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_descriptor_limit_bounds_every_protocol_together() {
    let server = Server::start_with(Extra {
        lmtp: "max_connections_per_ip = 100000\nmax_connections = 100000",
        nofile: Some(400),
        ..Extra::default()
    });
    // LMTP fills the budget; its own limits are far above it.
    let mut held = Vec::new();
    let refused = loop {
        let (s, line) = greeted(server.ports.lmtp);
        if !line.starts_with("220 ") {
            break line;
        }
        held.push(s);
        assert!(held.len() < 400, "no refusal within the descriptor limit");
    };
    assert!(
        refused.starts_with("421 4.3.2 ") && refused.contains("too many connections to this server"),
        "{refused}"
    );
    assert!(held.len() >= 100, "only {} connections fit", held.len());
    // Other protocols are refused with words too, not by a failing accept.
    let (_, line) = greeted(server.ports.imap);
    assert!(
        line.starts_with("* BYE") && line.contains("too many connections"),
        "{line}"
    );
    let (_, line) = greeted(server.ports.pop3);
    assert!(
        line.starts_with("-ERR") && line.contains("too many connections"),
        "{line}"
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, line) = greeted(server.ports.imap);
        if line.starts_with("* OK") {
            break;
        }
        assert!(Instant::now() < deadline, "IMAP did not recover: {line}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_front_end_limits_lmtp_too() {
    let facing = Facing::new();
    let _server = backend(facing);
    let directory = "[directory]\nusers = []\n";
    let lmtp = "max_connections_per_ip = 2";
    let proxy = Proxy::start_sections("east", ("", lmtp), directory, &[("b1", "east", facing)]);
    let held: Vec<(TcpStream, String)> = (0..2).map(|_| greeted(proxy.lmtp)).collect();
    assert!(held.iter().all(|(_, l)| l.starts_with("220 ")), "{held:?}");
    let (_, line) = greeted(proxy.lmtp);
    assert!(
        line.starts_with("421 4.3.2 ") && line.contains("too many connections from your address"),
        "{line}"
    );
}

#[test]
fn implicit_tls_clients_past_a_limit_are_told_why_over_tls() {
    let server = Server::start_with(Extra {
        imap: "max_connections_per_ip = 1",
        pop3: "max_connections_per_ip = 1",
        submission: "max_connections_per_ip = 1",
        ..Extra::default()
    });
    for (port, refusal) in [
        (server.ports.imaps, "* BYE"),
        (server.ports.pop3s, "-ERR"),
        (server.ports.submissions, "421 "),
    ] {
        let addr = server.addr(port);
        let _first = loadtest::client::transport::Transport::connect_tls(addr, server.tls(), "localhost").unwrap();
        let mut second = loadtest::client::transport::Transport::connect_tls(addr, server.tls(), "localhost").unwrap();
        let line = second.read_line_string().unwrap();
        assert!(
            line.starts_with(refusal) && line.contains("too many connections from your address"),
            "{port}: {line}"
        );
    }
}

/// At `max_connections_per_user = 1`, a client that logs in again the moment LOGOUT's (or
/// QUIT's) answer arrives, on a connection it opened before, is never refused for the limit:
/// the session gave its place back before it answered.
#[test]
fn a_user_place_is_free_once_logout_is_answered() {
    let server = Server::start_with(Extra {
        imap: "max_connections_per_user = 1",
        pop3: "max_connections_per_user = 1",
        ..Extra::default()
    });
    server.add_user("bob");
    let mut current = server.imap_tls();
    current.login("bob", common::PASSWORD).unwrap().expect_ok().unwrap();
    for round in 0..100 {
        let mut next = server.imap_tls();
        current.cmd("LOGOUT").unwrap().expect_ok().unwrap();
        let r = next.login("bob", common::PASSWORD).unwrap();
        assert!(r.ok(), "IMAP round {round}: {r:?}");
        current = next;
    }
    let mut current = server.pop3_tls();
    current.login("bob", common::PASSWORD).unwrap().expect_ok().unwrap();
    for round in 0..100 {
        let mut next = server.pop3_tls();
        current.cmd("QUIT").unwrap().expect_ok().unwrap();
        let s = next.login("bob", common::PASSWORD).unwrap();
        assert!(s.ok, "POP3 round {round}: {s:?}");
        current = next;
    }
}
