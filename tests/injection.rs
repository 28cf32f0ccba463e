//! STARTTLS command injection (issue 11, item 4): commands a man in the middle pipelines
//! behind STARTTLS/STLS in plaintext are never executed after the handshake (RFC 3207 §4.2,
//! RFC 2595 §3.1, RFC 9051 §6.2.1) — on IMAP, POP3 and submission, at a back end and at a
//! front end.

mod common;

use std::sync::Arc;

use base64::Engine;
use common::proxy::{backend, Facing, Proxy};
use common::{Server, PASSWORD};
use loadtest::client::Transport;

fn plain(port: u16) -> Transport {
    let t = Transport::connect(([127, 0, 0, 1], port).into()).unwrap();
    t.set_read_timeout(std::time::Duration::from_secs(10)).unwrap();
    t
}

/// Lines read until one starts with `end`.
fn until(t: &mut Transport, end: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = t.read_line_string().unwrap();
        let done = line.starts_with(end);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

fn imap(port: u16, tls: Arc<rustls::ClientConfig>) {
    let mut t = plain(port);
    t.read_line_string().unwrap();
    t.send_raw(format!("a STARTTLS\r\nb LOGIN bob \"{PASSWORD}\"\r\nc SELECT INBOX\r\n").as_bytes())
        .unwrap();
    let said = until(&mut t, "a ");
    assert!(said.last().unwrap().starts_with("a OK"), "{said:?}");
    t.start_tls(tls, "localhost").unwrap();
    t.send_raw(b"d NOOP\r\ne SELECT INBOX\r\n").unwrap();
    let said = until(&mut t, "e ");
    assert!(
        !said.iter().any(|l| l.starts_with("b ") || l.starts_with("c ")),
        "{port}: {said:?}"
    );
    assert!(
        !said.last().unwrap().starts_with("e OK"),
        "{port}: the injected LOGIN took: {said:?}"
    );
}

fn pop3(port: u16, tls: Arc<rustls::ClientConfig>) {
    let mut t = plain(port);
    t.read_line_string().unwrap();
    t.send_raw(format!("STLS\r\nUSER bob\r\nPASS {PASSWORD}\r\n").as_bytes())
        .unwrap();
    assert!(t.read_line_string().unwrap().starts_with("+OK"));
    t.start_tls(tls, "localhost").unwrap();
    t.send_raw(b"STAT\r\n").unwrap();
    let line = t.read_line_string().unwrap();
    assert!(line.starts_with("-ERR"), "{port}: the injected USER/PASS took: {line}");
}

fn submission(port: u16, tls: Arc<rustls::ClientConfig>) {
    let mut t = plain(port);
    until(&mut t, "220 ");
    t.send_raw(b"EHLO client.test\r\n").unwrap();
    until(&mut t, "250 ");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("\0bob\0{PASSWORD}"));
    t.send_raw(format!("STARTTLS\r\nAUTH PLAIN {auth}\r\nMAIL FROM:<bob@localhost>\r\n").as_bytes())
        .unwrap();
    assert!(t.read_line_string().unwrap().starts_with("220 "));
    t.start_tls(tls, "localhost").unwrap();
    t.send_raw(b"EHLO client.test\r\n").unwrap();
    // The first thing after the handshake answers this EHLO, not the injected AUTH or MAIL.
    let said = until(&mut t, "250 ");
    assert!(said.iter().all(|l| l.starts_with("250")), "{port}: {said:?}");
    t.send_raw(b"MAIL FROM:<bob@localhost>\r\n").unwrap();
    let line = t.read_line_string().unwrap();
    assert!(line.starts_with("530"), "{port}: the injected AUTH took: {line}");
}

#[test]
fn commands_pipelined_behind_starttls_never_run_at_a_back_end() {
    let server = Server::start();
    server.add_user("bob");
    imap(server.ports.imap, server.tls());
    pop3(server.ports.pop3, server.tls());
    submission(server.ports.submission, server.tls());
}

#[test]
fn commands_pipelined_behind_starttls_never_run_at_a_front_end() {
    let facing = Facing::new();
    let _server = backend(facing);
    let proxy = Proxy::start(&[("bob", "b1")], &[("b1", facing)]);
    imap(proxy.imap, proxy.tls());
    pop3(proxy.pop3, proxy.tls());
    submission(proxy.submission, proxy.tls());
}
