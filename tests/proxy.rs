//! `ringmail proxy` in front of a `ringmail serve` back end, as separate processes on real
//! sockets: clients log in at the front end, which checks them in its directory and relays
//! them to the back end's proxy-facing listener; the back end trusts only that listener's
//! front ends with their secret, and sees the client's address through PROXY v2.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::proxy::{backend, backend_with, hash_with, Facing, Proxy, SECRET};
use common::{message, PASSWORD};

#[test]
fn a_client_reaches_its_mailbox_through_the_front_end() {
    let facing = Facing::new();
    let server = backend(facing);
    server.add_user("bob");
    server.deliver("bob", &message("first"));
    let proxy = Proxy::start(
        &[("bob", "b1"), ("carol", "nowhere")],
        &[("b1", facing), ("nowhere", Facing::new())],
    );

    // Like the back end, the front end runs on small pages (tests/operations.rs).
    assert!(!common::huge_pages_allowed(proxy.child.id()));
    let mut c = proxy.imaps();
    // The front end answers before login itself.
    let caps = c.cmd("CAPABILITY").unwrap().expect_ok().unwrap();
    assert!(caps.lines()[0].contains("AUTH=PLAIN"), "{caps:?}");
    // Before login ID names no host.
    let id = c.cmd("ID NIL").unwrap().expect_ok().unwrap();
    assert!(!id.lines()[0].contains("x-host"), "{id:?}");
    assert_eq!(c.login("bob", "wrong").unwrap().status, "NO");
    let r = c.login("bob", PASSWORD).unwrap();
    // The answer is the back end's, with its capabilities.
    assert!(
        r.ok() && r.text.starts_with("[CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+"),
        "{r:?}"
    );
    // After it, the back end's ID names the back end.
    let id = c.cmd("ID NIL").unwrap().expect_ok().unwrap();
    assert!(id.lines()[0].ends_with("\"x-host\" \"localhost\")"), "{id:?}");
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
        cafile = proxy.cafile(),
    );
    let out = Command::new(common::python3()).args(["-c", &script]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), "('OK', [b'3'])");
}

/// `ringmail reload` finds a running front end by its lock file and signals it; the front
/// end goes on serving (it re-read the same certificate), the session up across it too.
#[test]
fn a_front_end_reloads_its_certificate_without_dropping_sessions() {
    let facing = Facing::new();
    let server = backend(facing);
    server.add_user("bob");
    let proxy = Proxy::start(&[("bob", "b1")], &[("b1", facing)]);
    let mut held = proxy.imaps();
    assert!(held.login("bob", PASSWORD).unwrap().ok());
    let out = Command::new(common::bin())
        .args(["reload", "--config"])
        .arg(proxy.dir.path().join("proxy.toml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("`ringmail proxy`"), "{said}");
    std::thread::sleep(Duration::from_millis(200));
    held.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert!(proxy.imaps().login("bob", PASSWORD).unwrap().ok());
}

/// A second front end on a running one's ports is refused, as a second back end is (SO_REUSEPORT
/// would let it bind them and take half of their connections).
#[test]
fn a_front_end_on_ports_in_use_is_refused_not_shared() {
    let facing = Facing::new();
    let _server = backend(facing);
    let proxy = Proxy::start(&[("bob", "b1")], &[("b1", facing)]);
    let other = tempfile::tempdir().unwrap();
    let config = std::fs::read_to_string(proxy.dir.path().join("proxy.toml"))
        .unwrap()
        .replace(
            &proxy.dir.path().join("data").display().to_string(),
            &other.path().join("data").display().to_string(),
        );
    let path = other.path().join("proxy.toml");
    std::fs::write(&path, config).unwrap();
    let mut second = Command::new(common::bin())
        .args(["proxy", "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // One that started would serve until stopped.
    let started = Instant::now();
    while second.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            second.kill().unwrap();
            panic!("a second front end started on the first one's ports");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = second.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("cannot listen on"), "{said}");
}

#[test]
fn the_back_end_trusts_only_front_ends() {
    let facing = Facing::new();
    let server = backend(facing);
    server.add_user("bob");
    server.add_user("eve");
    // A connection to the proxy-facing listener without a PROXY v2 header is dropped unheard.
    let mut raw = TcpStream::connect(("127.0.0.1", facing.imap)).unwrap();
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
    let scram = format!("ringmailScramSHA256: {}", hash_with(PASSWORD, &["--scram"]));
    let ldap = Slapd::start(&[
        Account {
            name: "bob",
            mail_host: "b1",
            extra: &[&scram],
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
        Account {
            name: "far",
            mail_host: "b2",
            extra: &[],
        },
    ]);
    // A cache that never expires on its own: what changes below reaches the front and back
    // ends by sync. The back end reads the same entries: no account is added to its store,
    // whose mailboxes come into being with their first mail or login.
    let facing = Facing::new();
    let server = backend_with(facing, "b1", &ldap.directory_section(3600));
    server.deliver("bob", &message("from ldap"));
    let proxy = Proxy::start_with(&ldap.directory_section(3600), &[("b1", facing)]);

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

    // SCRAM-SHA-256 against the keys the directory holds, over POP3 and submission.
    let mut p = proxy.pop3s();
    assert!(!p.auth_scram("bob", "wrong").unwrap().ok);
    assert!(p.auth_scram("bob", PASSWORD).unwrap().ok);
    assert!(p.cmd("STAT").unwrap().text.starts_with("1 "));
    let mut s = proxy.submissions();
    assert_eq!(s.auth_scram("bob", PASSWORD).unwrap().code, 235);
    // An account without stored keys cannot use SCRAM.
    assert!(!proxy.pop3s().auth_scram("dora", PASSWORD).unwrap().ok);

    // Switching IMAP off in the directory takes effect at the next login.
    ldap.modify(&format!(
        "dn: uid=bob,{}\nchangetype: modify\nreplace: ringmailIMAPEnabled\nringmailIMAPEnabled: FALSE\n",
        common::slapd::PEOPLE
    ));
    // The front and back ends hear of the change each by its own sync, in either order: a
    // back end that heard first refuses the relayed login ("the mailbox server refused"),
    // and the front end's own refusal names the switch once it has heard too.
    wait_for(|| {
        let mut c = proxy.imaps();
        let r = c.login("bob", PASSWORD).unwrap();
        (r.status == "NO" && r.text.contains("disabled")).then_some(r)
    });
    // Switching it on lets dora in, whose mailbox is created at the back end on first login.
    ldap.modify(&format!(
        "dn: uid=dora,{}\nchangetype: modify\nreplace: ringmailIMAPEnabled\nringmailIMAPEnabled: TRUE\n",
        common::slapd::PEOPLE
    ));
    let mut c = wait_for(|| {
        let mut c = proxy.imaps();
        c.login("dora", PASSWORD).unwrap().ok().then_some(c)
    });
    let r = c.cmd("LIST \"\" *").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l.ends_with(" \"Sent\"")), "{r:?}");

    // Directly at the back end the directory decides too; its back end is b2, not this one.
    let mut c = server.imap_tls();
    assert!(c.login("dora", PASSWORD).unwrap().ok());
    let mut c = server.imap_tls();
    assert_eq!(c.login("dora", "wrong").unwrap().status, "NO");
    let r = server.imap_tls().login("far", PASSWORD).unwrap();
    assert!(r.status == "NO" && r.text.contains("another server"), "{r:?}");
    // Mail for an account held elsewhere is not taken here.
    let mut l = server.lmtp();
    let (rcpt, _) = l.send("a@example.org", &["far@example.org"], &message("x")).unwrap();
    assert_eq!(rcpt[0].code, 550, "{rcpt:?}");
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

#[test]
fn pop3_and_submission_reach_the_back_end_through_the_front_end() {
    let facing = Facing::new();
    let server = backend(facing);
    server.add_user("bob");
    server.add_user("carol");
    server.deliver("bob", &message("waiting"));
    let proxy = Proxy::start(&[("bob", "b1"), ("carol", "b1")], &[("b1", facing)]);
    let args = |port: u16| vec![port.to_string(), proxy.cafile(), PASSWORD.to_owned()];

    // POP3 over implicit TLS and over STLS, with CPython's poplib.
    let pop3 = common::python(
        "import poplib, ssl, sys\nport, cafile, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n\
         ctx = ssl.create_default_context(cafile=cafile)\n\
         p = poplib.POP3_SSL('localhost', port, context=ctx)\n\
         print(p.getwelcome().decode())\n\
         try:\n    p.pass_(pw)\nexcept poplib.error_proto as e:\n    print('refused', e)\n\
         p.user('bob')\ntry:\n    p.pass_('wrong')\nexcept poplib.error_proto as e:\n    print('refused', e)\n\
         p.user('bob')\nprint(p.pass_(pw).decode())\nprint(p.stat())\n\
         print(b'\\n'.join(p.retr(1)[1]).decode())\np.quit()\n",
        &args(proxy.pop3s),
    );
    assert!(pop3.contains("refused b'-ERR [AUTH] authentication failed'"), "{pop3}");
    assert!(pop3.contains("+OK maildrop has 1 messages"), "{pop3}");
    assert!(pop3.contains("Subject: waiting"), "{pop3}");
    let stls = common::python(
        "import poplib, ssl, sys\nport, cafile, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n\
         p = poplib.POP3('127.0.0.1', port)\np.stls(ssl.create_default_context(cafile=cafile))\n\
         p.user('bob')\np.pass_(pw)\nprint(p.stat())\np.quit()\n",
        &args(proxy.pop3),
    );
    assert_eq!(stls.trim(), "(1, 141)");

    // Submission over STARTTLS and implicit TLS with smtplib: the back end delivers to carol.
    for (port, tls) in [(proxy.submission, "starttls"), (proxy.submissions, "tls")] {
        let sent = common::python(
            "import smtplib, ssl, sys\nport, cafile, pw, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]\n\
             ctx = ssl.create_default_context(cafile=cafile)\n\
             if mode == 'tls':\n    s = smtplib.SMTP_SSL('localhost', port, context=ctx)\n\
             else:\n    s = smtplib.SMTP('localhost', port)\n    s.starttls(context=ctx)\n\
             try:\n    s.login('bob', 'wrong')\nexcept smtplib.SMTPAuthenticationError as e:\n    print('refused', e.smtp_code)\n\
             print(s.login('bob', pw))\n\
             msg = 'From: bob@localhost\\r\\nTo: carol@localhost\\r\\nSubject: via ' + mode + '\\r\\n\\r\\nhello\\r\\n'\n\
             print(s.sendmail('bob@localhost', ['carol@localhost'], msg))\ns.quit()\n",
            &[port.to_string(), proxy.cafile(), PASSWORD.to_owned(), tls.to_owned()],
        );
        assert!(sent.contains("refused 535"), "{sent}");
        assert!(sent.contains("(235, b'2.7.0"), "{sent}");
        assert!(sent.trim_end().ends_with("{}"), "{sent}");
    }
    let mut c = proxy.imaps();
    assert!(c.login("carol", PASSWORD).unwrap().ok());
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
    let r = c.cmd("UID SEARCH SUBJECT via").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l == "* SEARCH 1 2"), "{r:?}");
}

#[test]
fn lmtp_at_the_front_end_delivers_each_recipient_at_its_back_end() {
    let (mut f1, mut f2) = (Facing::new(), Facing::new());
    let (b1, mut b2) = (backend(f1), backend(f2));
    f1.lmtp = b1.ports.lmtp;
    f2.lmtp = b2.ports.lmtp;
    b1.add_user("bob");
    b2.add_user("carol");
    b2.add_user("dan");
    let proxy = Proxy::start(
        &[("bob", "b1"), ("carol", "b2"), ("dan", "b2"), ("erin", "b2")],
        &[("b1", f1), ("b2", f2)],
    );
    let mut c = proxy.lmtp();
    let (rcpt, data) = c
        .send(
            "alice@example.org",
            &[
                "bob@example.org",
                "nobody@example.org",
                "carol+Archive@example.org",
                "dan@example.org",
            ],
            &message("routed"),
        )
        .unwrap();
    let codes: Vec<u16> = rcpt.iter().map(|r| r.code).collect();
    assert_eq!(codes, [250, 550, 250, 250], "{rcpt:?}");
    // One reply per accepted recipient, each from the back end that holds the mailbox.
    let codes: Vec<u16> = data.iter().map(|r| r.code).collect();
    assert_eq!(codes, [250, 250, 250], "{data:?}");
    assert!(data[1].text.contains("carol+Archive@example.org"), "{data:?}");
    // carol's copy went to her Archive folder, as `+Archive` asked.
    for (server, user, mailbox) in [(&b1, "bob", "INBOX"), (&b2, "carol", "Archive"), (&b2, "dan", "INBOX")] {
        let mut i = server.imap_login(user);
        let r = i.cmd(&format!("SELECT {mailbox}")).unwrap().expect_ok().unwrap();
        assert!(r.lines().iter().any(|l| l == "* 1 EXISTS"), "{user}: {r:?}");
    }

    // An account the directory has but its back end does not: that back end's own answer.
    let (_, data) = c
        .send(
            "alice@example.org",
            &["erin@example.org", "bob@example.org"],
            &message("two"),
        )
        .unwrap();
    assert_eq!(data.iter().map(|r| r.code).collect::<Vec<_>>(), [550, 250], "{data:?}");

    // A back end that is down: its recipients are deferred, the others delivered.
    b2.kill9();
    let (rcpt, data) = c
        .send(
            "alice@example.org",
            &["carol@example.org", "bob@example.org"],
            &message("later"),
        )
        .unwrap();
    assert!(rcpt.iter().all(|r| r.code == 250), "{rcpt:?}");
    assert_eq!(data.iter().map(|r| r.code).collect::<Vec<_>>(), [451, 250], "{data:?}");
    drop(b2);
}

#[test]
fn ringmail_user_manages_accounts_in_ldap() {
    use common::slapd::Slapd;
    let ldap = Slapd::start(&[]);
    let facing = Facing::new();
    let server = backend_with(facing, "b1", &ldap.directory_section(3600));
    let proxy = Proxy::start_with(&ldap.directory_section(3600), &[("b1", facing)]);
    let cli = |args: &[&str], stdin: &str| {
        let out = server.cli(args, stdin.as_bytes());
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };

    let (ok, said) = cli(&["user", "add", "carol", "--password-stdin"], PASSWORD);
    assert!(ok, "{said}");
    // ldapsearch sees the entry: this back end holds it; the directory hashed the password.
    assert_eq!(ldap.read("carol", "mailHost"), ["b1"]);
    assert!(ldap.read("carol", "userPassword")[0].starts_with("{SSHA}"));
    assert!(!ldap.read("carol", "ringmailScramSHA256").is_empty());
    let (ok, said) = cli(&["user", "add", "carol", "--password-stdin"], PASSWORD);
    assert!(!ok && said.contains("already exists"), "{said}");

    // The front end finds carol, and the back end makes her mailbox on first login.
    let mut c = proxy.imaps();
    assert!(c.login("carol", PASSWORD).unwrap().ok());
    c.cmd("LOGOUT").unwrap();
    let mut p = proxy.pop3s();
    assert!(p.auth_scram("carol", PASSWORD).unwrap().ok);

    let (ok, said) = cli(&["user", "set", "carol", "--pop", "off"], "");
    assert!(ok && said.contains("pop: off"), "{said}");
    assert_eq!(ldap.read("carol", "ringmailPOP3Enabled"), ["FALSE"]);
    let r = proxy.pop3s().auth_scram("carol", PASSWORD).unwrap();
    assert!(!r.ok && r.text.contains("disabled"), "{r:?}");
    let (ok, said) = cli(&["user", "set", "carol", "--quota", "1000"], "");
    assert!(!ok && said.contains("back end"), "{said}");

    let (ok, said) = cli(&["user", "passwd", "carol", "--password-stdin"], "n3w pass");
    assert!(ok, "{said}");
    assert_eq!(proxy.imaps().login("carol", PASSWORD).unwrap().status, "NO");
    assert!(proxy.imaps().login("carol", "n3w pass").unwrap().ok());

    let (ok, said) = cli(&["user", "list"], "");
    assert!(
        ok && said.contains("carol\tpop=off\timap=on\tadmin=no\tsmtp=on\thome=b1"),
        "{said}"
    );
    let (ok, said) = cli(&["user", "del", "carol"], "");
    assert!(ok, "{said}");
    assert!(ldap.read("carol", "uid").is_empty());
    let (ok, said) = cli(&["user", "show", "carol"], "");
    assert!(!ok && said.contains("no such user"), "{said}");
}

#[test]
fn tls_from_front_end_to_back_end_checks_the_back_ends_certificate() {
    let facing = Facing {
        tls: true,
        ..Facing::new()
    };
    let server = backend_with(facing, "b1", "proxy_tls = true\n");
    server.add_user("bob");
    server.deliver("bob", &message("sealed"));
    let hash = common::proxy::password_hash(PASSWORD);
    let users =
        format!("[directory]\nusers = [{{ name = \"bob\", password_hash = \"{hash}\", mail_host = \"b1\" }}]\n");
    let ca = server.data_dir().join("cert.pem");
    let routes = [("b1", "east", facing)];
    let proxy = Proxy::start_in(
        "east",
        &format!("backend_ca = {:?}\n{users}", ca.display().to_string()),
        &routes,
    );
    let mut c = proxy.imaps();
    assert!(c.login("bob", PASSWORD).unwrap().ok());
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l == "* 1 EXISTS"), "{r:?}");
    let mut p = proxy.pop3s();
    assert!(p.login("bob", PASSWORD).unwrap().ok);
    assert!(p.cmd("STAT").unwrap().text.starts_with("1 "));

    // A front end that does not trust the back end's certificate does not log in there.
    let other = tempfile::tempdir().unwrap();
    let stranger = other.path().join("ca.pem");
    std::fs::copy(proxy.cafile(), &stranger).unwrap();
    let wary = Proxy::start_in(
        "east",
        &format!("backend_ca = {:?}\n{users}", stranger.display().to_string()),
        &routes,
    );
    let r = wary.imaps().login("bob", PASSWORD).unwrap();
    assert!(r.status == "NO" && r.text.starts_with("[UNAVAILABLE]"), "{r:?}");

    // A TLS session passed over a link of TLS would be TLS inside TLS: a back end with
    // proxy_tls closes a connection whose header announces one, before any handshake.
    let target = Proxy::addr(facing.imap);
    let mut raw = TcpStream::connect(target).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let client = "192.0.2.7:4000".parse().unwrap();
    raw.write_all(&ringmail::proxy::proxy_v2::encode(client, target, true))
        .unwrap();
    let _ = raw.write_all(b"\x16\x03\x01\x00\x05hello");
    let mut got = Vec::new();
    let _ = raw.read_to_end(&mut got);
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
}

#[test]
fn commands_pipelined_behind_a_failed_login_are_answered() {
    let facing = Facing::new();
    let server = backend(facing);
    server.add_user("bob");
    let proxy = Proxy::start(&[("bob", "b1")], &[("b1", facing)]);
    let mut c = proxy.imaps();
    c.t.send_raw(b"a LOGIN bob wrong\r\nb NOOP\r\nc LOGIN bob \"s3cret pass\"\r\nd SELECT INBOX\r\n")
        .unwrap();
    let a = c.finish("a").unwrap();
    assert_eq!(a.status, "NO", "{a:?}");
    assert_eq!(c.finish("b").unwrap().status, "OK");
    assert!(c.finish("c").unwrap().ok());
    // What came after the login went to the back end.
    let d = c.finish("d").unwrap().expect_ok().unwrap();
    assert!(d.lines().iter().any(|l| l == "* 0 EXISTS"), "{d:?}");

    // POP3: an over-long line is answered once, in order, and what follows still works.
    let mut p = proxy.pop3s();
    let long = format!("USER {}\r\nUSER bob\r\nPASS {PASSWORD}\r\nSTAT\r\n", "x".repeat(10_000));
    p.t.send_raw(long.as_bytes()).unwrap();
    assert!(!p.status().unwrap().ok, "the long line is refused");
    assert!(p.status().unwrap().ok, "USER");
    assert!(p.status().unwrap().ok, "PASS");
    assert_eq!(p.status().unwrap().text, "0 0");
}

#[test]
fn compress_passes_through_the_front_end() {
    use flate2::{Compress, Compression, Decompress, FlushCompress};
    let facing = Facing::new();
    let server = backend(facing);
    server.add_user("bob");
    server.deliver("bob", &message("squeezed"));
    let proxy = Proxy::start(&[("bob", "b1")], &[("b1", facing)]);
    let mut c = proxy.imaps();
    assert!(c.login("bob", PASSWORD).unwrap().ok());
    let mut deflate = Compress::new(Compression::default(), false);
    let mut inflate = Decompress::new(false);
    let mut wire = b"z1 COMPRESS DEFLATE\r\n".to_vec();
    let mut squeezed = Vec::with_capacity(256);
    deflate
        .compress_vec(
            b"z2 SELECT INBOX\r\nz3 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n",
            &mut squeezed,
            FlushCompress::Sync,
        )
        .unwrap();
    wire.extend(squeezed);
    c.t.send_raw(&wire).unwrap();
    assert_eq!(c.t.read_line_string().unwrap(), "z1 OK DEFLATE active");
    let text = common::inflate_until(&mut c, &mut inflate, "z3 OK");
    assert!(
        text.contains("* 1 EXISTS") && text.contains("Subject: squeezed"),
        "{text}"
    );
}

/// A message of `lines` numbered lines, about 50 bytes each.
fn big_message(lines: u32) -> Vec<u8> {
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..lines {
        big.extend_from_slice(format!("line {i:06} of a large message, to stream through\r\n").as_bytes());
    }
    big
}

/// A back end holding bob's INBOX with `message` in it, and a front end in the same site that
/// routes bob there and lets him log in with a plaintext password.
fn bob_behind_a_plaintext_front_end(message: &[u8]) -> (common::Server, Proxy) {
    let facing = Facing::new();
    let server = backend(facing);
    server.add_user("bob");
    server.deliver("bob", message);
    let hash = common::proxy::password_hash(PASSWORD);
    let directory =
        format!("[directory]\nusers = [{{ name = \"bob\", password_hash = \"{hash}\", mail_host = \"b1\" }}]\n");
    let proxy = Proxy::start_configured(
        "east",
        "login_type = \"plain-text-login\"",
        &directory,
        &[("b1", "east", facing)],
    );
    (server, proxy)
}

/// Where client and back end are both plaintext, a large download or upload streams through
/// the front end by splicing (`net::splice`); it arrives whole both ways, and the session goes
/// on with small commands afterwards.
#[test]
fn a_large_message_streams_through_a_plaintext_front_end_whole() {
    let big = big_message(120_000);
    let (_server, proxy) = bob_behind_a_plaintext_front_end(&big);
    let t = loadtest::client::transport::Transport::connect(Proxy::addr(proxy.imap)).unwrap();
    let mut c = loadtest::client::imap::Imap::new(t).unwrap();
    assert!(c.login("bob", PASSWORD).unwrap().ok());
    assert!(c.cmd("SELECT INBOX").unwrap().ok());
    let literal = |r: &loadtest::client::imap::Response| -> Vec<u8> {
        let line = &r.untagged[0];
        let open = line.iter().position(|&b| b == b'{').unwrap();
        let close = open + line[open..].iter().position(|&b| b == b'}').unwrap();
        let n: usize = std::str::from_utf8(&line[open + 1..close]).unwrap().parse().unwrap();
        line[close + 3..close + 3 + n].to_vec()
    };
    for _ in 0..2 {
        let r = c.cmd("UID FETCH 1 BODY.PEEK[]").unwrap().expect_ok().unwrap();
        assert!(literal(&r) == big, "the download arrives whole");
        assert!(c.cmd("NOOP").unwrap().ok(), "small commands go on");
    }
    // Upstream too: an APPEND of the same size, read back.
    c.append("INBOX", "", &big).unwrap().expect_ok().unwrap();
    let r = c.cmd("UID FETCH 2 BODY.PEEK[]").unwrap().expect_ok().unwrap();
    assert!(literal(&r) == big, "the upload arrives whole");
    assert!(c.cmd("LOGOUT").unwrap().ok());
}

/// Downloads stalled by clients that do not read wait at the front end as polls, holding no
/// thread: io_uring runs every splice on a kernel worker, which a splice into a full socket
/// would hold until its client reads, one per stalled client.
#[test]
fn stalled_downloads_hold_no_thread_at_the_front_end() {
    const STALLED: usize = 8;
    // More than the client's and the front end's socket buffers and the relay's pipe hold.
    let (_server, proxy) = bob_behind_a_plaintext_front_end(&big_message(200_000));
    // The front end's threads, and how many of them are io_uring's kernel workers.
    let threads = || {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", proxy.child.id())).unwrap();
        let names: Vec<String> = tasks
            .map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).unwrap_or_default())
            .collect();
        let workers = names.iter().filter(|n| n.starts_with("iou-wrk")).count();
        (names.len(), workers)
    };
    let before = threads();
    let mut clients = Vec::new();
    for _ in 0..STALLED {
        let t = loadtest::client::transport::Transport::connect(Proxy::addr(proxy.imap)).unwrap();
        let mut c = loadtest::client::imap::Imap::new(t).unwrap();
        assert!(c.login("bob", PASSWORD).unwrap().ok());
        assert!(c.cmd("EXAMINE INBOX").unwrap().ok());
        let tag = c.tag();
        c.t.send_raw(format!("{tag} UID FETCH 1 BODY.PEEK[]\r\n").as_bytes())
            .unwrap();
        clients.push((c, tag));
    }
    // Each download fills its client's small buffer and the front end's, and stops there.
    std::thread::sleep(Duration::from_secs(1));
    let during = threads();
    assert!(
        during.1 < before.1 + STALLED / 2,
        "{STALLED} stalled downloads: {} io_uring workers at the front end, {} before",
        during.1,
        before.1
    );
    // A stalled download goes on when its client reads.
    let (mut c, tag) = clients.pop().unwrap();
    c.finish(&tag).unwrap().expect_ok().unwrap();
}

/// After a TLS client's login the front end passes its TLS session to the back end
/// (`net::handoff`), which seals and opens its records from then on while the front end
/// relays them as they are: what the client pipelined behind its login, a large download, a
/// key update of the client's, IDLE and the end of the session all go on.
#[test]
fn a_tls_clients_session_passes_to_its_back_end_after_login() {
    let facing = Facing::new();
    let server = backend(facing);
    server.add_user("bob");
    let big = big_message(60_000);
    server.deliver("bob", &big);
    let proxy = Proxy::start(&[("bob", "b1")], &[("b1", facing)]);
    let mut c = proxy.imaps();
    // The login and two commands behind it, in one write.
    c.t.send_raw(
        format!("a1 LOGIN bob \"{PASSWORD}\"\r\na2 SELECT INBOX\r\na3 UID FETCH 1 BODY.PEEK[]\r\n").as_bytes(),
    )
    .unwrap();
    assert!(c.finish("a1").unwrap().ok());
    let r = c.finish("a2").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l == "* 1 EXISTS"), "{r:?}");
    let r = c.finish("a3").unwrap().expect_ok().unwrap();
    assert!(
        r.untagged.concat().windows(big.len()).any(|w| w == big),
        "the download arrives whole"
    );
    let line = server.logged("TLS session passed on by the front end");
    assert!(line.contains("TLSv1.3 with cipher"), "{line}");
    // The client moves to new keys and asks the server to: only the back end can follow.
    c.t.update_keys().unwrap();
    let r = c.cmd("UID FETCH 1 BODY.PEEK[]").unwrap().expect_ok().unwrap();
    assert!(
        r.untagged.concat().windows(big.len()).any(|w| w == big),
        "after the key update"
    );
    c.t.send_raw(b"i1 IDLE\r\n").unwrap();
    assert!(c.read_response_line().unwrap().starts_with(b"+ "));
    server.deliver("bob", &message("news"));
    assert_eq!(c.read_response_line().unwrap(), b"* 2 EXISTS");
    c.t.send_raw(b"DONE\r\n").unwrap();
    c.finish("i1").unwrap().expect_ok().unwrap();
    let r = c.cmd("LOGOUT").unwrap();
    assert!(r.ok(), "{r:?}");

    // POP3 and submission pass theirs too: CPython's clients read every answer after login
    // from the back end's records.
    let pop3 = common::python(
        "import poplib, ssl, sys\nport, cafile, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n\
         p = poplib.POP3_SSL('localhost', port, context=ssl.create_default_context(cafile=cafile))\n\
         p.user('bob')\np.pass_(pw)\nprint(p.stat()[0])\nprint(len(b'\\n'.join(p.retr(1)[1])))\np.quit()\n",
        &[proxy.pop3s.to_string(), proxy.cafile(), PASSWORD.to_owned()],
    );
    assert_eq!(pop3.lines().next(), Some("2"), "{pop3}");
    server.logged_in("pop3", "TLS session passed on by the front end");
    let sent = common::python(
        "import smtplib, ssl, sys\nport, cafile, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n\
         s = smtplib.SMTP_SSL('localhost', port, context=ssl.create_default_context(cafile=cafile))\n\
         s.login('bob', pw)\nprint(s.sendmail('bob@localhost', ['bob@localhost'], 'Subject: hi\\r\\n\\r\\nhi\\r\\n'))\n\
         s.quit()\n",
        &[proxy.submissions.to_string(), proxy.cafile(), PASSWORD.to_owned()],
    );
    assert_eq!(sent.trim(), "{}");
    server.logged_in("submission", "TLS session passed on by the front end");

    // A TLS 1.2 client's session passes too (its records carry explicit nonces).
    let tls12 = common::python(
        "import imaplib, ssl, sys\nport, cafile, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]\n\
         ctx = ssl.create_default_context(cafile=cafile)\nctx.maximum_version = ssl.TLSVersion.TLSv1_2\n\
         m = imaplib.IMAP4_SSL('localhost', port, ssl_context=ctx)\nm.login('bob', pw)\n\
         print(m.select('INBOX')[1][0].decode())\nprint(len(m.fetch('1', '(BODY.PEEK[])')[1][0][1]))\nm.logout()\n",
        &[proxy.imaps.to_string(), proxy.cafile(), PASSWORD.to_owned()],
    );
    assert_eq!(
        tls12.split_whitespace().collect::<Vec<_>>(),
        ["3", &big.len().to_string()],
        "{tls12}"
    );
    let line = server.logged("TLS session passed on by the front end: TLSv1.2");
    assert!(line.contains("with cipher"), "{line}");
}

/// A client that comes back resumes its TLS session at the front end (a session ticket), and
/// that session, too, passes to the back end after login: TLS 1.3 and 1.2.
#[test]
fn a_resumed_tls_session_passes_to_its_back_end_too() {
    let facing = Facing::new();
    let server = backend(facing);
    server.add_user("bob");
    server.deliver("bob", &message("hello"));
    let proxy = Proxy::start(&[("bob", "b1")], &[("b1", facing)]);
    let out = common::python(
        r#"
import socket, ssl, sys
port, cafile, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def visit(ctx, old=None):
    raw = socket.create_connection(("localhost", port), timeout=30)
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=old)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b'a1 LOGIN bob "%s"\r\na2 SELECT INBOX\r\na3 LOGOUT\r\n' % pw.encode())
    answers = []
    while not answers or not answers[-1].startswith(b"a3 "):
        answers.append(f.readline())
    session, reused = s.session, s.session_reused
    s.close()
    return session, reused, [a.split()[1] for a in answers if a.startswith(b"a")]
for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.maximum_version = version
    first, reused, _ = visit(ctx)
    assert not reused
    _, reused, tagged = visit(ctx, first)
    print(version.name, "resumed" if reused else "full", *(t.decode() for t in tagged))
"#,
        &[proxy.imaps.to_string(), proxy.cafile(), PASSWORD.to_owned()],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["TLSv1_3 resumed OK OK OK", "TLSv1_2 resumed OK OK OK"],
        "{out}"
    );
    let line = server.logged("TLS session passed on by the front end: TLSv1.2");
    assert!(line.contains("with cipher"), "{line}");
}

/// A relayed session quiet both ways for a second rests at the front end as data, not a task
/// (`proxy::rest`): over TLS in IDLE, and in plaintext after a download spliced through; the
/// back end's news, the client's next command and the end of the session all reach it there.
#[test]
fn quiet_relayed_sessions_rest_and_wake_for_either_side() {
    let facing = Facing::new();
    let server = backend(facing);
    server.add_user("bob");
    let big = big_message(20_000);
    server.deliver("bob", &big);
    let hash = common::proxy::password_hash(PASSWORD);
    let metrics = common::free_port();
    let directory = format!(
        "[directory]\nusers = [{{ name = \"bob\", password_hash = \"{hash}\", mail_host = \"b1\" }}]\n\
         [metrics]\nlisten = [\"127.0.0.1:{metrics}\"]\n"
    );
    let proxy = Proxy::start_configured(
        "east",
        "login_type = \"plain-text-login\"",
        &directory,
        &[("b1", "east", facing)],
    );
    let resting = |n: f64| {
        wait_for(|| (common::metrics::scrape(metrics).get("ringmail_relays_resting") == Some(&n)).then_some(()))
    };
    let mut tls = proxy.imaps();
    assert!(tls.login("bob", PASSWORD).unwrap().ok());
    tls.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    tls.t.send_raw(b"i1 IDLE\r\n").unwrap();
    assert!(tls.read_response_line().unwrap().starts_with(b"+ "));
    let t = loadtest::client::transport::Transport::connect(Proxy::addr(proxy.imap)).unwrap();
    let mut plain = loadtest::client::imap::Imap::new(t).unwrap();
    assert!(plain.login("bob", PASSWORD).unwrap().ok());
    plain.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let r = plain.cmd("UID FETCH 1 BODY.PEEK[]").unwrap().expect_ok().unwrap();
    assert!(r.untagged.concat().len() > big.len(), "the download arrives");
    resting(2.0);

    // The back end speaks first: the IDLE hears the delivery, the other session at its next
    // command; both rest again afterwards.
    server.deliver("bob", &message("woken"));
    assert_eq!(tls.read_response_line().unwrap(), b"* 2 EXISTS");
    let r = plain.cmd("NOOP").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l == "* 2 EXISTS"), "{r:?}");
    resting(2.0);
    // The client speaks first.
    tls.t.send_raw(b"DONE\r\n").unwrap();
    tls.finish("i1").unwrap().expect_ok().unwrap();
    let r = plain.cmd("UID FETCH 1 BODY.PEEK[]").unwrap().expect_ok().unwrap();
    assert!(r.untagged.concat().len() > big.len(), "the download arrives again");
    resting(2.0);
    assert!(tls.cmd("LOGOUT").unwrap().ok());
    assert!(plain.cmd("LOGOUT").unwrap().ok());
    resting(0.0);
}

/// A front end's operations (issue 15): its metrics show its sessions, logins and each back
/// end's health as the circuit breaker sees it; `ringmail who` lists its relayed sessions and
/// `kick` ends them.
#[test]
fn a_front_end_shows_its_sessions_and_back_ends_and_kicks() {
    let facing = Facing::new();
    let server = backend(facing);
    server.add_user("bob");
    let metrics = common::free_port();
    let hash = common::proxy::password_hash(PASSWORD);
    let directory = format!(
        "[directory]\nusers = [{{ name = \"bob\", password_hash = \"{hash}\", mail_host = \"b1\" }}, \
         {{ name = \"carol\", password_hash = \"{hash}\", mail_host = \"down\" }}]\n\
         [metrics]\nlisten = [\"127.0.0.1:{metrics}\"]\n"
    );
    let proxy = Proxy::start_with(&directory, &[("b1", facing), ("down", Facing::new())]);
    let mut bob = proxy.imaps();
    assert!(bob.login("bob", PASSWORD).unwrap().ok());
    bob.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    // Carol's back end is down: enough failures open its breaker.
    for _ in 0..3 {
        let r = proxy.imaps().login("carol", PASSWORD).unwrap();
        assert!(r.status == "NO" && r.text.starts_with("[UNAVAILABLE]"), "{r:?}");
    }

    let m = common::metrics::scrape(metrics);
    let get = |series: &str| *m.get(series).unwrap_or_else(|| panic!("no {series} in {m:?}"));
    assert_eq!(
        get("ringmail_backend_up{backend=\"b1\",site=\"east\",protocol=\"imap\"}"),
        1.0
    );
    assert_eq!(
        get("ringmail_backend_up{backend=\"down\",site=\"east\",protocol=\"imap\"}"),
        0.0
    );
    assert_eq!(
        get("ringmail_connections{protocol=\"imap\",state=\"authenticated\"}"),
        1.0
    );
    // Logins count what the check found: carol's password was right, her back end down.
    assert_eq!(
        get("ringmail_logins_total{mechanism=\"LOGIN-command\",result=\"ok\"}"),
        4.0
    );
    // Bob's TLS session went to his back end after his login.
    assert_eq!(get("ringmail_tls_sessions_passed_total{result=\"passed\"}"), 1.0);

    let config = proxy.dir.path().join("proxy.toml");
    let cli = |args: &[&str]| {
        let out = Command::new(common::bin())
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, who) = cli(&["who"]);
    assert!(ok, "{who}");
    let rows: Vec<Vec<&str>> = who.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 1, "{who}");
    assert_eq!(
        (rows[0][0], rows[0][2], rows[0][3], rows[0][6]),
        ("proxy", "bob", "imap", "authenticated")
    );
    // Quiet both ways for a second, the relay rests as data; a kick reaches it there.
    wait_for(|| (common::metrics::scrape(metrics).get("ringmail_relays_resting") == Some(&1.0)).then_some(()));
    let (ok, said) = cli(&["kick", "bob"]);
    assert!(ok && said.contains("kicked 1 session(s) of bob"), "{said}");
    // The relay ends: the client's connection closes.
    bob.t.set_read_timeout(Duration::from_secs(10)).unwrap();
    assert!(bob.cmd("NOOP").is_err(), "the kicked session is gone");
}

/// `ringmail import --directory --from maildir:…/%u`: every account the directory puts on this
/// back end gets its mail, and only those; they log in with their directory passwords.
#[test]
fn a_directory_import_fills_the_mailboxes_of_this_back_end() {
    use common::slapd::{Account, Slapd};
    let account = |name, mail_host| Account {
        name,
        mail_host,
        extra: &[],
    };
    let ldap = Slapd::start(&[account("alice", "b1"), account("bob", "b1"), account("far", "b2")]);
    let root = tempfile::tempdir().unwrap();
    for (user, uidvalidity) in [("alice", 11), ("bob", 22)] {
        let dir = root.path().join(user);
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("cur/1700000000.M1.h:2,S"), "Subject: old\n\nmail\n").unwrap();
        let uidlist = format!("3 V{uidvalidity} N5 G00\n4 :1700000000.M1.h\n");
        std::fs::write(dir.join("dovecot-uidlist"), uidlist).unwrap();
    }
    let mut server = backend_with(Facing::new(), "b1", &ldap.directory_section(3600));
    server.terminate();
    let from = format!("maildir:{}/%u", root.path().display());
    let out = server.cli(&["import", "--directory", "--from", &from], b"");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("2 accounts imported") && !said.contains("far"), "{said}");
    server.restart();
    for (user, uidvalidity) in [("alice", 11), ("bob", 22)] {
        let status = "print(m.status('INBOX', '(MESSAGES UIDNEXT UIDVALIDITY)')[1][0].decode())\n";
        let seen = server.imaplib(user, &[], status);
        assert!(
            seen.contains(&format!("MESSAGES 1 UIDNEXT 5 UIDVALIDITY {uidvalidity}")),
            "{seen}"
        );
    }
}
