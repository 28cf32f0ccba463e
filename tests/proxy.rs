//! `ringmail proxy` in front of a `ringmail serve` back end, as separate processes on real
//! sockets: clients log in at the front end, which checks them in its directory and relays
//! them to the back end's proxy-facing listener; the back end trusts only that listener's
//! front ends with their secret, and sees the client's address through PROXY v2.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{bin, free_port, message, Extra, Server, PASSWORD};
use loadtest::client::imap::Imap;
use loadtest::client::{tls_config, Transport};

const SECRET: &str = "front-end-secret";

/// A running `ringmail proxy`.
struct Proxy {
    child: Child,
    dir: tempfile::TempDir,
    imap: u16,
    imaps: u16,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// A front end whose directory holds `users` (name, mail_host) with `PASSWORD`, routing
    /// to `backends` (name, proxy-facing IMAP port).
    fn start(users: &[(&str, &str)], backends: &[(&str, u16)]) -> Proxy {
        let hash = password_hash(PASSWORD);
        let users: Vec<String> = users
            .iter()
            .map(|(name, host)| format!("{{ name = \"{name}\", password_hash = \"{hash}\", mail_host = \"{host}\" }}"))
            .collect();
        Proxy::start_with(&format!("[directory]\nusers = [{}]\n", users.join(", ")), backends)
    }

    /// A front end with the `[directory]` section `directory`.
    fn start_with(directory: &str, backends: &[(&str, u16)]) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let (imap, imaps) = (free_port(), free_port());
        let backends: Vec<String> = backends
            .iter()
            .map(|(name, port)| format!("{{ name = \"{name}\", site = \"east\", imap = \"127.0.0.1:{port}\" }}"))
            .collect();
        let config = format!(
            "[server]\ndata_dir = \"{data}\"\nworkers = 2\n\
             [imap]\nlisten = [\"127.0.0.1:{imap}\"]\nlisten_tls = [\"127.0.0.1:{imaps}\"]\n\
             [limits]\nlogin_failure_delay = 0\n\
             [cluster]\nproxy_secret = \"{SECRET}\"\nbackends = [{backends}]\n{directory}",
            data = dir.path().join("data").display(),
            backends = backends.join(", "),
        );
        let path = dir.path().join("proxy.toml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(bin())
            .args(["proxy", "--config"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l == "ringmail proxy ready");
        assert!(ready, "the proxy did not start");
        std::thread::spawn(move || for _ in lines {});
        Proxy {
            child,
            dir,
            imap,
            imaps,
        }
    }

    fn imaps(&self) -> Imap {
        let cert = self.dir.path().join("data").join("cert.pem");
        let tls = tls_config(&cert).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", self.imaps).parse().unwrap();
        Imap::new(Transport::connect_tls(addr, tls, "localhost").unwrap()).unwrap()
    }
}

fn password_hash(password: &str) -> String {
    let mut child = Command::new(bin())
        .args(["user", "hash", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A back end with a proxy-facing IMAP listener, trusting loopback front ends with `SECRET`.
fn backend(proxy_port: u16) -> Server {
    let imap: &'static str = Box::leak(format!("listen_proxy = [\"127.0.0.1:{proxy_port}\"]").into_boxed_str());
    let tail: &'static str = Box::leak(format!("[cluster]\nproxy_secret = \"{SECRET}\"\n").into_boxed_str());
    Server::start_with(Extra {
        imap,
        tail,
        ..Extra::default()
    })
}

#[test]
fn a_client_reaches_its_mailbox_through_the_front_end() {
    let port = free_port();
    let server = backend(port);
    server.add_user("bob");
    server.deliver("bob", &message("first"));
    let proxy = Proxy::start(
        &[("bob", "b1"), ("carol", "nowhere")],
        &[("b1", port), ("nowhere", free_port())],
    );

    let mut c = proxy.imaps();
    // The front end answers before login itself.
    let caps = c.cmd("CAPABILITY").unwrap().expect_ok().unwrap();
    assert!(caps.lines()[0].contains("AUTH=PLAIN"), "{caps:?}");
    assert_eq!(c.login("bob", "wrong").unwrap().status, "NO");
    let r = c.login("bob", PASSWORD).unwrap();
    // The answer is the back end's, with its capabilities.
    assert!(
        r.ok() && r.text.starts_with("[CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+"),
        "{r:?}"
    );
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l == "* 1 EXISTS"), "{r:?}");
    let r = c
        .cmd("FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
        .unwrap()
        .expect_ok()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&r.untagged.concat()).contains("Subject: first"),
        "{r:?}"
    );
    // Literals and pipelining pass through untouched.
    c.append("INBOX", "\\Seen", &message("second"))
        .unwrap()
        .expect_ok()
        .unwrap();
    let r = c.cmd("UID SEARCH SUBJECT second").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l == "* SEARCH 2"), "{r:?}");
    // IDLE hears a delivery made at the back end.
    c.t.send_raw(b"i1 IDLE\r\n").unwrap();
    assert!(c.read_response_line().unwrap().starts_with(b"+ "));
    server.deliver("bob", &message("third"));
    let line = c.read_response_line().unwrap();
    assert_eq!(line, b"* 3 EXISTS");
    c.t.send_raw(b"DONE\r\n").unwrap();
    c.finish("i1").unwrap().expect_ok().unwrap();
    c.cmd("LOGOUT").unwrap();

    // A user whose back end is down gets a clear temporary failure at login.
    let mut c = proxy.imaps();
    let r = c.login("carol", PASSWORD).unwrap();
    assert!(r.status == "NO" && r.text.starts_with("[UNAVAILABLE]"), "{r:?}");

    // CPython's imaplib, through the front end's STARTTLS port.
    let script = format!(
        "import imaplib, ssl\nm = imaplib.IMAP4('127.0.0.1', {port})\n\
         m.starttls(ssl.create_default_context(cafile={cafile:?}))\n\
         m.login('bob', {PASSWORD:?})\nprint(m.select('INBOX'))\nm.logout()\n",
        port = proxy.imap,
        cafile = proxy.dir.path().join("data").join("cert.pem").display().to_string(),
    );
    let out = Command::new(common::python3()).args(["-c", &script]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "('OK', [b'3'])");
}

#[test]
fn the_back_end_trusts_only_front_ends() {
    let port = free_port();
    let server = backend(port);
    server.add_user("bob");
    server.add_user("eve");
    // A connection to the proxy-facing listener without a PROXY v2 header is dropped unheard.
    let mut raw = TcpStream::connect(("127.0.0.1", port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    raw.write_all(b"a LOGIN bob x\r\n").unwrap();
    let mut got = Vec::new();
    let _ = raw.read_to_end(&mut got);
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    // On the ordinary listener nobody may act for another user, not with the secret either.
    let mut c = server.imap_tls();
    use base64::Engine;
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("bob\0ringmail-proxy\0{SECRET}"));
    let r = c.cmd(&format!("AUTHENTICATE PLAIN {plain}")).unwrap();
    assert_eq!(r.status, "NO", "{r:?}");
    let plain = base64::engine::general_purpose::STANDARD.encode(format!("bob\0eve\0{PASSWORD}"));
    assert_eq!(c.cmd(&format!("AUTHENTICATE PLAIN {plain}")).unwrap().status, "NO");
}

#[test]
fn accounts_and_their_switches_come_from_ldap() {
    use common::slapd::{Account, Slapd};
    let ldap = Slapd::start(&[
        Account {
            name: "bob",
            mail_host: "b1",
            extra: &[],
        },
        Account {
            name: "root",
            mail_host: "b1",
            extra: &["ringmailAdmin: TRUE"],
        },
        Account {
            name: "dora",
            mail_host: "b1",
            extra: &["ringmailIMAPEnabled: FALSE"],
        },
    ]);
    let port = free_port();
    let server = backend(port);
    server.add_user("bob");
    server.deliver("bob", &message("from ldap"));
    // A cache that never expires on its own: what changes below reaches the proxy by sync.
    let proxy = Proxy::start_with(&ldap.directory_section(3600), &[("b1", port)]);

    let refusal = |user: &str, password: &str| {
        let r = proxy.imaps().login(user, password).unwrap();
        assert_eq!(r.status, "NO", "{user}: {r:?}");
        r.text
    };
    assert!(refusal("bob", "wrong").contains("AUTHENTICATIONFAILED"));
    assert!(refusal("nobody", PASSWORD).contains("AUTHENTICATIONFAILED"));
    // An empty password would be an anonymous bind to LDAP.
    assert!(refusal("bob", "").contains("AUTHENTICATIONFAILED"));
    assert!(refusal("root", PASSWORD).contains("administrator"));
    assert!(refusal("dora", PASSWORD).contains("disabled"));
    let mut c = proxy.imaps();
    // uid matches without case; the back end gets the directory's spelling.
    let r = c.login("BOB", PASSWORD).unwrap();
    assert!(r.ok(), "{r:?}");
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l == "* 1 EXISTS"), "{r:?}");
    c.cmd("LOGOUT").unwrap();

    // Switching IMAP off in the directory takes effect at the next login.
    ldap.modify(&format!(
        "dn: uid=bob,{}\nchangetype: modify\nreplace: ringmailIMAPEnabled\nringmailIMAPEnabled: FALSE\n",
        common::slapd::PEOPLE
    ));
    let refused = wait_for(|| {
        let mut c = proxy.imaps();
        let r = c.login("bob", PASSWORD).unwrap();
        (r.status == "NO").then_some(r)
    });
    assert!(refused.text.contains("disabled"), "{refused:?}");
    // And a new password at once.
    ldap.modify(&format!(
        "dn: uid=dora,{}\nchangetype: modify\nreplace: ringmailIMAPEnabled\nringmailIMAPEnabled: TRUE\n\n\
         dn: uid=dora,{0}\nchangetype: modify\nreplace: mailHost\nmailHost: b1\n",
        common::slapd::PEOPLE
    ));
    server.add_user("dora");
    wait_for(|| proxy.imaps().login("dora", PASSWORD).unwrap().ok().then_some(()));
}

/// Polls `f` for up to 10 s: the sync search delivers a change within milliseconds, but not
/// before ldapmodify returns.
fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "the change did not arrive");
        std::thread::sleep(Duration::from_millis(100));
    }
}
