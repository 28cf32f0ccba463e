//! Day-one operations against a running server (issue 15): `ringmail who` and `kick` through
//! the admin socket, and the Prometheus endpoint scraped with curl and parsed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::metrics::scrape;
use common::{free_port, message, Extra, Server, PASSWORD};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ringmail who`'s rows as (user, protocol, state, tls), polled until `done` holds: a
/// session's state is recorded right after its command is answered.
fn who_until(server: &Server, args: &[&str], done: impl Fn(&[Vec<String>]) -> bool) -> Vec<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut all = vec!["who"];
        all.extend_from_slice(args);
        let out = server.cli(&all, b"");
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            ["PROCESS", "ID", "USER", "PROTOCOL", "CLIENT", "CORE", "STATE", "SINCE", "TLS"]
        );
        let rows: Vec<Vec<String>> = lines
            .map(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(cells.len(), 9, "{l}");
                assert_eq!(cells[0], "serve", "{l}");
                assert_eq!(cells[4], "127.0.0.1", "{l}");
                assert!(cells[7].ends_with('Z'), "{l}");
                [cells[2], cells[3], cells[6], cells[8]].map(String::from).to_vec()
            })
            .collect();
        if done(&rows) || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn row(user: &str, protocol: &str, state: &str, tls: &str) -> Vec<String> {
    [user, protocol, state, tls].map(String::from).to_vec()
}

#[test]
fn who_lists_the_sessions_and_kick_ends_them() {
    let server = Server::start();
    server.add_user("alice");
    server.add_user("bob");
    let socket = server.data_dir().join("admin.sock");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only its owner may use the admin socket");

    let mut idle = server.imap_login("alice");
    idle.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    let tag = idle.tag();
    idle.t.send_line(&format!("{tag} IDLE")).unwrap();
    assert!(idle.t.read_line_string().unwrap().starts_with('+'));
    let mut pop = server.pop3_tls();
    pop.login("alice", PASSWORD).unwrap().expect_ok().unwrap();
    let mut bob = server.imap_starttls();
    bob.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    let _waiting = server.imap_plain();

    let want = [
        row("alice", "imap", "idle", "yes"),
        row("alice", "pop3", "authenticated", "yes"),
        row("bob", "imap", "authenticated", "yes"),
        row("-", "imap", "pre-auth", "no"),
    ];
    let rows = who_until(&server, &[], |rows| want.iter().all(|w| rows.contains(w)));
    assert!(want.iter().all(|w| rows.contains(w)), "{rows:?}");
    assert_eq!(rows.len(), 4, "{rows:?}");
    let rows = who_until(&server, &["alice"], |rows| rows.len() == 2);
    assert_eq!(rows, want[..2].to_vec());

    // Only alice's POP3 session goes, with POP3's words.
    let out = server.cli(&["kick", "alice", "--protocol", "pop3"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("kicked 1 session(s) of alice"),
        "{}",
        stdout(&out)
    );
    let line = pop.t.read_line_string().unwrap();
    assert_eq!(line, "-ERR [SYS/TEMP] disconnected by the administrator");
    assert!(pop.t.read_line_string().is_err(), "closed after the goodbye");

    // Then the rest of alice's, in IDLE: a BYE, and the connection ends. Bob stays.
    let out = server.cli(&["kick", "alice"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    let line = idle.t.read_line_string().unwrap();
    assert_eq!(line, "* BYE disconnected by the administrator");
    assert!(idle.t.read_line_string().is_err(), "closed after the BYE");
    bob.cmd("NOOP").unwrap().expect_ok().unwrap();
    let rows = who_until(&server, &[], |rows| rows.len() == 2);
    assert_eq!(rows.len(), 2, "{rows:?}");

    // Nobody to kick, and no such request: each a one-line error.
    let out = server.cli(&["kick", "alice"], b"");
    assert!(!out.status.success());
    assert_eq!(stderr(&out), "ringmail: alice has no session to kick\n");
}

#[test]
fn who_without_a_running_server_fails_in_one_line() {
    let mut server = Server::start();
    server.terminate();
    let out = server.cli(&["who"], b"");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.starts_with("ringmail: no running `ringmail serve` or `ringmail proxy` answers on "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn the_metrics_endpoint_counts_what_the_server_did() {
    let port = free_port();
    let tail = Box::leak(format!("[metrics]\nlisten = [\"127.0.0.1:{port}\"]\n").into_boxed_str());
    let server = Server::start_with(Extra {
        tail,
        ..Extra::default()
    });
    server.add_user("alice");
    server.deliver("alice", &message("counted"));
    let mut idle = server.imap_login("alice");
    idle.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    idle.cmd("FETCH 1 (FLAGS)").unwrap().expect_ok().unwrap();
    let tag = idle.tag();
    idle.t.send_line(&format!("{tag} IDLE")).unwrap();
    assert!(idle.t.read_line_string().unwrap().starts_with('+'));
    let mut wrong = server.imap_tls();
    assert!(!wrong.login("alice", "not the password").unwrap().ok());
    let mut pop = server.pop3_tls();
    pop.login("alice", PASSWORD).unwrap().expect_ok().unwrap();
    pop.cmd("STAT").unwrap().expect_ok().unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = scrape(port);
        if m.get("ringmail_connections{protocol=\"imap\",state=\"idle\"}") == Some(&1.0) || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let get = |series: &str| *m.get(series).unwrap_or_else(|| panic!("no {series} in {m:?}"));
    assert_eq!(get("ringmail_connections{protocol=\"imap\",state=\"idle\"}"), 1.0);
    assert_eq!(get("ringmail_connections{protocol=\"imap\",state=\"pre-auth\"}"), 1.0);
    assert_eq!(
        get("ringmail_connections{protocol=\"pop3\",state=\"authenticated\"}"),
        1.0
    );
    assert_eq!(
        get("ringmail_connections{protocol=\"submission\",state=\"pre-auth\"}"),
        0.0
    );
    assert_eq!(
        get("ringmail_logins_total{mechanism=\"LOGIN-command\",result=\"ok\"}"),
        1.0
    );
    assert_eq!(get("ringmail_logins_total{mechanism=\"USER\",result=\"ok\"}"), 1.0);
    assert_eq!(
        get("ringmail_logins_total{mechanism=\"LOGIN-command\",result=\"bad-credentials\"}"),
        1.0
    );
    assert_eq!(get("ringmail_login_penalties_total"), 1.0);
    assert_eq!(
        get("ringmail_command_duration_seconds_count{protocol=\"imap\",command=\"SELECT\"}"),
        1.0
    );
    assert_eq!(
        get("ringmail_command_duration_seconds_count{protocol=\"imap\",command=\"FETCH\"}"),
        1.0
    );
    assert_eq!(
        get("ringmail_command_duration_seconds_count{protocol=\"imap\",command=\"IDLE\"}"),
        1.0
    );
    assert_eq!(
        get("ringmail_command_duration_seconds_count{protocol=\"pop3\",command=\"STAT\"}"),
        1.0
    );
    assert!(get("ringmail_command_duration_seconds_sum{protocol=\"imap\",command=\"SELECT\"}") > 0.0);
    assert_eq!(get("ringmail_lmtp_deliveries_total{result=\"delivered\"}"), 1.0);
    // The delivery's (the user was added by the CLI's own writer).
    assert!(get("ringmail_store_commit_seconds_count") >= 1.0);
    assert!(get("ringmail_store_commit_batch_sum") >= get("ringmail_store_commit_batch_count"));
    assert!(get("ringmail_received_bytes_total") > 0.0 && get("ringmail_sent_bytes_total") > 0.0);
    assert!(get("ringmail_store_file_bytes") > 0.0);
    assert!(get("ringmail_store_free_bytes") <= get("ringmail_store_used_bytes"));
    assert_eq!(get("ringmail_queue_messages"), 0.0);

    // Anything but /metrics is not found.
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "404");

    // One address holds at most 16 connections to the endpoint; the next is closed at once.
    let held: Vec<std::net::TcpStream> = (0..16)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut extra = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(
        std::io::Read::read(&mut extra, &mut byte).unwrap(),
        0,
        "closed, not served"
    );
    drop(held);
}

/// curl with `args`; its stdout, with the HTTP status code appended on a line of its own.
fn curl(args: &[&str], stdin: &[u8]) -> (String, u16) {
    use std::io::Write;
    let mut child = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("curl runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "curl: {}", stderr(&out));
    let text = stdout(&out);
    let (body, code) = text.rsplit_once('\n').unwrap();
    (body.to_owned(), code.parse().unwrap())
}

/// The text of the child element `name` of `node`.
fn child<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> &'a str {
    node.children()
        .find(|n| n.has_tag_name(name))
        .and_then(|n| n.text())
        .unwrap_or_else(|| panic!("no <{name}> in {node:?}"))
}

#[test]
fn clients_configure_themselves_from_the_autoconfig_documents() {
    let (http, https) = (free_port(), free_port());
    let tail = Box::leak(
        format!("[autoconfig]\nlisten = [\"127.0.0.1:{http}\"]\nlisten_tls = [\"127.0.0.1:{https}\"]\n")
            .into_boxed_str(),
    );
    let server = Server::start_with(Extra {
        server: "domains = [\"example.com\"]\nexternal_hostname = \"mail.example.com\"",
        tail,
        ..Extra::default()
    });
    let p = &server.ports;

    // Thunderbird: autoconfig.DOMAIN over HTTP, with the address.
    let url = format!("http://127.0.0.1:{http}/mail/config-v1.1.xml?emailaddress=alice%40example.com");
    let (xml, code) = curl(&["-H", "Host: autoconfig.example.com", &url], b"");
    assert_eq!(code, 200, "{xml}");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(
        (root.tag_name().name(), root.attribute("version")),
        ("clientConfig", Some("1.1"))
    );
    let provider = root.children().find(|n| n.has_tag_name("emailProvider")).unwrap();
    assert_eq!(provider.attribute("id"), Some("example.com"));
    assert_eq!(child(provider, "domain"), "example.com");
    let servers: Vec<(String, String, String, String, String)> = provider
        .children()
        .filter(|n| n.has_tag_name("incomingServer") || n.has_tag_name("outgoingServer"))
        .map(|n| {
            assert_eq!(child(n, "hostname"), "mail.example.com");
            assert_eq!(child(n, "authentication"), "password-cleartext");
            (
                n.attribute("type").unwrap().to_owned(),
                child(n, "port").to_owned(),
                child(n, "socketType").to_owned(),
                child(n, "username").to_owned(),
                n.tag_name().name().to_owned(),
            )
        })
        .collect();
    let row = |kind: &str, port: u16, element: &str| {
        (
            kind.to_owned(),
            port.to_string(),
            "SSL".to_owned(),
            "alice".to_owned(),
            element.to_owned(),
        )
    };
    assert_eq!(
        servers,
        [
            row("imap", p.imaps, "incomingServer"),
            row("pop3", p.pop3s, "incomingServer"),
            row("smtp", p.submissions, "outgoingServer"),
        ]
    );

    // The well-known place at the domain itself, over HTTPS with the server's certificate;
    // without an address the user name is Thunderbird's placeholder.
    let cafile = server.data_dir().join("cert.pem");
    let url = format!("https://localhost:{https}/.well-known/autoconfig/mail/config-v1.1.xml");
    let (xml, code) = curl(
        &["--cacert", cafile.to_str().unwrap(), "-H", "Host: example.com", &url],
        b"",
    );
    assert_eq!(code, 200, "{xml}");
    assert!(xml.contains("<username>%EMAILLOCALPART%</username>"), "{xml}");
    roxmltree::Document::parse(&xml).unwrap();

    // Outlook: Autodiscover, plain old XML.
    let request = br#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>alice@example.com</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#;
    let url = format!("https://localhost:{https}/Autodiscover/Autodiscover.xml");
    let args = [
        "--cacert",
        cafile.to_str().unwrap(),
        "-H",
        "Content-Type: text/xml",
        "--data-binary",
        "@-",
        &url,
    ];
    let (xml, code) = curl(&args, request);
    assert_eq!(code, 200, "{xml}");
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    let ns = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
    assert_eq!(
        (root.tag_name().name(), root.tag_name().namespace()),
        ("Autodiscover", Some(ns))
    );
    let response = root.children().find(|n| n.has_tag_name("Response")).unwrap();
    let outlook = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
    assert_eq!(response.tag_name().namespace(), Some(outlook));
    let account = response.children().find(|n| n.has_tag_name("Account")).unwrap();
    assert_eq!(
        (child(account, "AccountType"), child(account, "Action")),
        ("email", "settings")
    );
    let protocols: Vec<(String, String, String)> = account
        .children()
        .filter(|n| n.has_tag_name("Protocol"))
        .map(|n| {
            assert_eq!(child(n, "Server"), "mail.example.com");
            assert_eq!(child(n, "LoginName"), "alice");
            assert_eq!(
                (child(n, "SSL"), child(n, "AuthRequired"), child(n, "SPA")),
                ("on", "on", "off")
            );
            let port = child(n, "Port").to_owned();
            (child(n, "Type").to_owned(), port, child(n, "Encryption").to_owned())
        })
        .collect();
    let proto = |t: &str, port: u16| (t.to_owned(), port.to_string(), "SSL".to_owned());
    assert_eq!(
        protocols,
        [
            proto("IMAP", p.imaps),
            proto("POP3", p.pop3s),
            proto("SMTP", p.submissions)
        ]
    );

    // Apple: a configuration profile, read back by CPython's plistlib.
    let url = format!("http://127.0.0.1:{http}/apple/mail.mobileconfig?emailaddress=alice@example.com");
    let (profile, code) = curl(&[&url], b"");
    assert_eq!(code, 200, "{profile}");
    let script = "import plistlib, sys\n\
                  p = plistlib.loads(sys.stdin.buffer.read())\n\
                  a = p['PayloadContent'][0]\n\
                  print(p['PayloadType'], a['PayloadType'], a['EmailAccountType'], a['EmailAddress'],\n\
                  a['IncomingMailServerHostName'], a['IncomingMailServerPortNumber'], a['IncomingMailServerUseSSL'],\n\
                  a['IncomingMailServerUsername'], a['OutgoingMailServerPortNumber'], a['OutgoingMailServerUseSSL'])\n";
    let read = {
        use std::io::Write;
        let mut child = std::process::Command::new(common::python3())
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(profile.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        stdout(&out)
    };
    assert_eq!(
        read.trim(),
        format!(
            "Configuration com.apple.mail.managed EmailTypeIMAP alice@example.com mail.example.com {} True alice {} True",
            p.imaps, p.submissions
        )
    );

    // Other domains are not described, and nothing else is served.
    let url = format!("http://127.0.0.1:{http}/mail/config-v1.1.xml?emailaddress=alice%40other.org");
    assert_eq!(curl(&[&url], b"").1, 404);
    let url = format!("http://127.0.0.1:{http}/autodiscover/autodiscover.xml");
    assert_eq!(curl(&["--data-binary", "@-", &url], b"<not-autodiscover/>").1, 400);
    assert_eq!(curl(&[&url], b"").1, 405);
    assert_eq!(curl(&[&format!("http://127.0.0.1:{http}/")], b"").1, 404);
}

/// The server turns transparent huge pages off for itself: a fault in a fresh 2 MiB of its
/// allocator's arena would otherwise zero (and perhaps compact memory for) a whole huge page,
/// milliseconds a new thread's first allocations waited (BENCHMARKS.md, "Without
/// the disk, and huge pages off").
#[test]
fn the_server_runs_on_small_pages() {
    let server = Server::start();
    let pid = server.child.as_ref().expect("running").id();
    assert!(
        !common::huge_pages_allowed(pid),
        "huge pages are still allowed for the server"
    );
    // Only the server asked: the tests' own process is as it was, so the check tells the two apart.
    assert!(common::huge_pages_allowed(std::process::id()));
}
