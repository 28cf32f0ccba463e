//! Independent clients against a real server: CPython's poplib (STLS and POP3_SSL, verifying
//! the generated certificate) and curl's pop3/pop3s support.

mod common;

use std::process::Command;

use common::{message, path_str, python3, Server, PASSWORD};

fn seeded() -> Server {
    let server = Server::start();
    server.add_user("bob");
    server.deliver("bob", &message("first"));
    server.deliver("bob", &message("second"));
    server
}

const POPLIB: &str = r#"
import poplib, ssl, sys
host, port, tls_port, cafile, password = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=cafile)

p = poplib.POP3(host, port, timeout=30)
caps = p.capa()
assert "STLS" in caps, caps
p.stls(context=ctx)
p.user("bob")
p.pass_(password)
count, size = p.stat()
assert count == 2, (count, size)
resp, lines, octets = p.retr(2)
assert b"Subject: second" in lines, lines
assert b".leading dot" in lines, lines
resp, listing, _ = p.uidl()
assert len(listing) == 2
resp, top, _ = p.top(1, 0)
assert top[-1] == b"", top
p.dele(1)
p.quit()

s = poplib.POP3_SSL(host, tls_port, context=ctx, timeout=30)
s.user("bob")
s.pass_(password)
count, size = s.stat()
assert count == 1, count
resp, lines, octets = s.retr(1)
assert b"Subject: second" in lines
s.quit()
print("poplib ok")
"#;

#[test]
fn python_poplib() {
    let server = seeded();
    let out = Command::new(python3())
        .args(["-c", POPLIB, "localhost"])
        .arg(server.ports.pop3.to_string())
        .arg(server.ports.pop3s.to_string())
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
    assert!(String::from_utf8_lossy(&out.stdout).contains("poplib ok"));
}

fn curl(server: &Server, url: &str, extra: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .arg("--cacert")
        .arg(server.data_dir().join("cert.pem"))
        .args(["--user", &format!("bob:{PASSWORD}")])
        .args(extra)
        .arg(url)
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn curl_pop3_and_pop3s() {
    let server = seeded();
    let (p, ps) = (server.ports.pop3, server.ports.pop3s);
    let list = curl(&server, &format!("pop3://localhost:{p}/"), &["--ssl-reqd"]);
    let (one, two) = (message("first").len(), message("second").len());
    assert_eq!(list, format!("1 {one}\r\n2 {two}\r\n"));
    let body = curl(&server, &format!("pop3s://localhost:{ps}/2"), &[]);
    assert_eq!(body.as_bytes(), message("second"));
    let uidl = curl(&server, &format!("pop3s://localhost:{ps}/"), &["--request", "UIDL"]);
    assert_eq!(uidl.lines().count(), 2);
    let top = curl(&server, &format!("pop3s://localhost:{ps}/"), &["--request", "TOP 1 0"]);
    assert!(top.contains("Subject: first") && !top.contains("Hello Bob"), "{top}");
    let sasl = curl(
        &server,
        &format!("pop3s://localhost:{ps}/1"),
        &["--login-options", "AUTH=PLAIN"],
    );
    assert_eq!(sasl.as_bytes(), message("first"));
    // curl refuses to send the password in the clear to a secure-login server's plain port.
    let out = Command::new("curl")
        .args(["--silent", "--max-time", "10", "--user", "bob:x"])
        .arg(format!("pop3://localhost:{p}/"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn tls_prefers_aes_128_gcm_and_refuses_old_versions() {
    let server = seeded();
    let script = r#"
import ssl, socket, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
with ctx.wrap_socket(socket.create_connection(("localhost", port)), server_hostname="localhost") as s:
    print(s.version(), s.cipher()[0])
old = ssl.create_default_context(cafile=cafile)
old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
try:
    old.wrap_socket(socket.create_connection(("localhost", port)), server_hostname="localhost")
    print("TLS 1.1 accepted")
except (ssl.SSLError, OSError):
    print("TLS 1.1 refused")
"#;
    let out = Command::new(python3())
        .args(["-c", script])
        .arg(server.ports.pop3s.to_string())
        .arg(path_str(&server.data_dir().join("cert.pem")))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("TLSv1.3 TLS_AES_128_GCM_SHA256"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("TLS 1.1 refused"), "{text}");
}

/// Session tickets outlive any cache of sessions: a client resumes its TLS session (as a
/// phone does when it reconnects) after hundreds of other clients' handshakes, more than the
/// 256 sessions rustls keeps in memory by default.
#[test]
fn a_tls_session_resumes_after_many_other_handshakes() {
    let server = Server::start();
    let script = r#"
import ssl, socket, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
def greeting(session=None):
    raw = socket.create_connection(("localhost", port), timeout=30)
    with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
        # TLS 1.3 tickets come after the handshake: reading the greeting takes them in.
        line = s.recv(1024)
        assert line.startswith(b"* OK"), line
        return s.session, s.session_reused, s.version()
first, reused, version = greeting()
assert not reused and first.has_ticket, (reused, first.has_ticket)
for _ in range(300):
    greeting()
_, reused, _ = greeting(first)
print(version, "resumed" if reused else "full handshake")
"#;
    let cafile = path_str(&server.data_dir().join("cert.pem"));
    let text = common::python(script, &[server.ports.imaps.to_string(), cafile]);
    assert!(text.contains("TLSv1.3 resumed"), "{text}");
}
