//! `ringmail check imap|pop3|submission` against a real server, directly and through a
//! `ringmail proxy` front end, and against broken setups: a wrong password, a server that is
//! down, a port that accepts and never answers, a certificate from the wrong CA, bad usage.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::proxy::{Facing, Proxy, SECRET};
use common::{bin, Extra, Server, PASSWORD};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `ringmail check ARGS` with the server's config, the password on stdin.
fn check(server: &Server, args: &[&str], password: &str) -> Output {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    all.push("--password-stdin");
    server.cli(&all, format!("{password}\n").as_bytes())
}

/// The table's rows for `step` at `endpoint` (e.g. "imap 993 TLS" without the port: "imap"
/// and "TLS" both have to appear).
fn rows<'a>(table: &'a str, step: &str, protocol: &str, mode: &str) -> Vec<&'a str> {
    table
        .lines()
        .filter(|l| l.starts_with(&format!("{step} ")))
        .filter(|l| {
            let mut words = l.split_whitespace().skip(1);
            words.next() == Some(protocol) && words.nth(1) == Some(mode)
        })
        .collect()
}

/// Every row of the table says ok; the table has `steps` rows.
fn assert_all_ok(out: &Output, steps: usize) {
    let table = stdout(out);
    assert!(out.status.success(), "{table}{}", stderr(out));
    let body: Vec<&str> = table.lines().skip(2).collect();
    assert_eq!(body.len(), steps, "{table}");
    for row in body {
        assert_eq!(row.split_whitespace().nth(4), Some("ok"), "{table}");
    }
}

/// A failed run: non-zero, one line on stderr, the table on stdout.
fn assert_failed(out: &Output) -> String {
    let table = stdout(out);
    let err = stderr(out);
    assert!(!out.status.success(), "{table}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("check failed:") && err.contains("did not pass"), "{err}");
    table
}

/// bob's INBOX holds nothing: every test message was deleted again.
fn assert_inbox_empty(server: &Server) {
    let mut c = server.imap_login("bob");
    let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    assert!(r.lines().iter().any(|l| l == "* 0 EXISTS"), "{:?}", r.lines());
}

#[test]
fn check_imap_passes_against_a_healthy_server() {
    let server = Server::start();
    server.add_user("bob");
    let out = check(&server, &["imap", "--user", "bob"], PASSWORD);
    assert_all_ok(&out, 6);
    let table = stdout(&out);
    assert!(table.starts_with("ringmail check imap: bob at localhost\n"), "{table}");
    assert!(table.lines().nth(1).unwrap().starts_with("STEP"), "{table}");
    let imap = server.ports.imap.to_string();
    let login = rows(&table, "login", "imap", "STARTTLS");
    assert!(login.len() == 1 && login[0].contains(&imap), "{table}");
    // ID names the host; so does the Received: field of the message found.
    assert!(login[0].ends_with("  localhost"), "{table}");
    assert_eq!(rows(&table, "login", "imap", "TLS").len(), 1, "{table}");
    assert!(
        rows(&table, "send", "submission", "STARTTLS")[0].ends_with("  localhost"),
        "{table}"
    );
    assert!(
        rows(&table, "find", "imap", "TLS")[0].ends_with("  localhost"),
        "{table}"
    );
    assert_eq!(rows(&table, "delete", "imap", "TLS").len(), 1, "{table}");
    assert_eq!(rows(&table, "logout", "imap", "TLS").len(), 1, "{table}");
    assert_inbox_empty(&server);

    // A password that cannot be a quoted string goes as a literal.
    let password = "pässwörd \"q\"";
    let out = server.cli(&["user", "add", "carol", "--password-stdin"], password.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_all_ok(&check(&server, &["imap", "--user", "carol"], password), 6);
}

#[test]
fn check_pop3_and_submission_pass_against_a_healthy_server() {
    let server = Server::start();
    server.add_user("bob");
    let out = check(&server, &["pop3", "--user", "bob"], PASSWORD);
    assert_all_ok(&out, 5);
    let table = stdout(&out);
    assert!(
        rows(&table, "login", "pop3", "STLS")[0].ends_with("  ringmail"),
        "{table}"
    );
    assert_eq!(rows(&table, "login", "pop3", "TLS").len(), 1, "{table}");
    assert!(
        rows(&table, "find", "pop3", "TLS")[0].ends_with("  localhost"),
        "{table}"
    );
    assert_eq!(rows(&table, "delete", "pop3", "TLS").len(), 1, "{table}");
    assert_inbox_empty(&server);

    // The password may come from the environment instead.
    let out = Command::new(bin())
        .arg("--config")
        .arg(&server.config)
        .args(["check", "submission", "--user", "bob"])
        .env("RINGMAIL_CHECK_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_all_ok(&out, 7);
    let table = stdout(&out);
    assert_eq!(rows(&table, "send", "submission", "STARTTLS").len(), 1, "{table}");
    assert_eq!(rows(&table, "send", "submission", "TLS").len(), 1, "{table}");
    assert_eq!(rows(&table, "find", "imap", "TLS").len(), 2, "{table}");
    assert_inbox_empty(&server);
}

/// A back end whose `[server] hostname` is `hostname`, behind front ends with `SECRET`.
fn named_backend(facing: Facing, hostname: &str) -> Server {
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    Server::start_with(Extra {
        server: leak(format!("hostname = \"{hostname}\"")),
        imap: leak(format!("listen_proxy = [\"127.0.0.1:{}\"]", facing.imap)),
        pop3: leak(format!("listen_proxy = [\"127.0.0.1:{}\"]", facing.pop3)),
        submission: leak(format!("listen_proxy = [\"127.0.0.1:{}\"]", facing.submission)),
        tail: leak(format!("[cluster]\nproxy_secret = \"{SECRET}\"\n")),
        ..Extra::default()
    })
}

#[test]
fn every_check_passes_through_a_front_end_and_names_the_back_end() {
    let facing = Facing::new();
    let server = named_backend(facing, "b1.test");
    server.add_user("bob");
    let proxy = Proxy::start(&[("bob", "b1")], &[("b1", facing)]);
    let ports = |plain: u16, tls: u16| {
        vec![
            "--host".to_owned(),
            "localhost".into(),
            "--port-plain".into(),
            plain.to_string(),
            "--port-tls".into(),
            tls.to_string(),
            "--submission-port".into(),
            proxy.submission.to_string(),
            "--submissions-port".into(),
            proxy.submissions.to_string(),
        ]
    };
    let cafile = proxy.cafile();
    let runs = [
        ("imap", ports(proxy.imap, proxy.imaps), 6),
        ("pop3", ports(proxy.pop3, proxy.pop3s), 5),
        ("submission", ports(proxy.imap, proxy.imaps), 7),
    ];
    for (service, ports, steps) in runs {
        let mut args = vec![service, "--user", "bob", "--ca", &cafile];
        args.extend(ports.iter().map(String::as_str));
        let out = check(&server, &args, PASSWORD);
        assert_all_ok(&out, steps);
        let table = stdout(&out);
        // The front end greets; after AUTH the back end answers EHLO, and its name is in the
        // Received: field of the message found.
        for send in rows(&table, "send", "submission", "STARTTLS") {
            assert!(send.ends_with("  b1.test via localhost"), "{table}");
        }
        // After login, ID names the back end the front end relayed to.
        if service == "imap" {
            for login in rows(&table, "login", "imap", "TLS") {
                assert!(login.ends_with("  b1.test"), "{table}");
            }
        }
        let find_protocol = if service == "pop3" { "pop3" } else { "imap" };
        for find in rows(&table, "find", find_protocol, "TLS") {
            assert!(find.ends_with("  b1.test"), "{table}");
        }
    }
    assert_inbox_empty(&server);

    // --insecure takes the front end's certificate unverified ...
    let mut args = vec!["pop3", "--user", "bob", "--insecure"];
    let pop3 = ports(proxy.pop3, proxy.pop3s);
    args.extend(pop3.iter().map(String::as_str));
    assert_all_ok(&check(&server, &args, PASSWORD), 5);
    // ... while the back end's own certificate (the default --ca here) does not vouch for it.
    let mut args = vec!["imap", "--user", "bob"];
    let imap = ports(proxy.imap, proxy.imaps);
    args.extend(imap.iter().map(String::as_str));
    let table = assert_failed(&check(&server, &args, PASSWORD));
    let login = rows(&table, "login", "imap", "TLS");
    assert!(login[0].contains("FAILED: TLS: invalid peer certificate"), "{table}");
    assert!(
        rows(&table, "find", "imap", "TLS")[0].contains("skipped: no IMAP session"),
        "{table}"
    );
}

#[test]
fn a_wrong_password_fails_the_logins_and_skips_the_rest() {
    let server = Server::start();
    server.add_user("bob");
    let table = assert_failed(&check(&server, &["imap", "--user", "bob"], "wrong"));
    for mode in ["STARTTLS", "TLS"] {
        let login = rows(&table, "login", "imap", mode);
        assert!(login[0].contains("FAILED: LOGIN: NO [AUTHENTICATIONFAILED]"), "{table}");
    }
    assert!(
        rows(&table, "send", "submission", "STARTTLS")[0].contains("FAILED: AUTH: 535"),
        "{table}"
    );
    for step in ["find", "delete", "logout"] {
        assert!(rows(&table, step, "imap", "TLS")[0].contains("skipped:"), "{table}");
    }

    let table = assert_failed(&check(&server, &["pop3", "--user", "bob"], "wrong"));
    let login = rows(&table, "login", "pop3", "STLS");
    assert!(login[0].contains("FAILED: PASS: -ERR [AUTH]"), "{table}");
}

#[test]
fn a_server_that_is_down_fails_at_once() {
    let mut server = Server::start();
    server.add_user("bob");
    server.kill9();
    let started = Instant::now();
    let table = assert_failed(&check(&server, &["imap", "--user", "bob"], PASSWORD));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let login = rows(&table, "login", "imap", "STARTTLS");
    let refused = format!(":{}: Connection refused", server.ports.imap);
    assert!(
        login[0].contains("FAILED: cannot connect to") && login[0].contains(&refused),
        "{table}"
    );
    assert!(
        rows(&table, "send", "submission", "STARTTLS")[0].contains("FAILED: cannot connect"),
        "{table}"
    );
    assert!(rows(&table, "find", "imap", "TLS")[0].contains("skipped"), "{table}");
}

#[test]
fn a_port_that_never_answers_fails_within_the_timeout() {
    let server = Server::start();
    server.add_user("bob");
    // The kernel completes the connections; nobody ever reads or writes on them.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let started = Instant::now();
    let args = [
        "pop3",
        "--user",
        "bob",
        "--host",
        "127.0.0.1",
        "--port-plain",
        &port,
        "--port-tls",
        &port,
        "--submission-port",
        &port,
        "--timeout",
        "1",
    ];
    let table = assert_failed(&check(&server, &args, PASSWORD));
    // Three connections, one timeout each; the find step is never tried.
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    for (step, protocol, mode) in [
        ("login", "pop3", "STLS"),
        ("login", "pop3", "TLS"),
        ("send", "submission", "STARTTLS"),
    ] {
        let row = rows(&table, step, protocol, mode);
        assert!(row[0].contains("FAILED: no answer within 1 s"), "{table}");
    }
    assert!(rows(&table, "find", "pop3", "TLS")[0].contains("skipped"), "{table}");
    drop(silent);
}

#[test]
fn usage_errors_are_one_line_without_a_table() {
    let server = Server::start();
    let one_line = |out: &Output, needle: &str| {
        let err = stderr(out);
        assert!(!out.status.success());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("ringmail: ") && err.contains(needle), "{err}");
        assert_eq!(stdout(out), "");
    };
    one_line(
        &check(&server, &["imap", "--user", "bob", "--host", "not a host"], PASSWORD),
        "invalid --host",
    );
    one_line(
        &check(
            &server,
            &["imap", "--user", "bob", "--ca", "/nonexistent.pem"],
            PASSWORD,
        ),
        "--ca /nonexistent.pem",
    );
    let out = Command::new(bin())
        .arg("--config")
        .arg(&server.config)
        .args(["check", "imap", "--user", "bob"])
        .env_remove("RINGMAIL_CHECK_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    one_line(&out, "no password");
}
