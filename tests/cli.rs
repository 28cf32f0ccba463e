//! The command line: account management, `config`, and one-line errors with non-zero exits.

mod common;

use std::process::Command;

use common::{bin, message, Extra, Server, PASSWORD};

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn user_lifecycle() {
    let server = Server::start();
    server.add_user("bob");
    let dup = server.cli(&["user", "add", "bob", "--password-stdin"], b"x");
    assert!(!dup.status.success());
    let (_, err) = text(&dup);
    assert_eq!(err.lines().count(), 1);
    assert!(err.contains("already exists"), "{err}");
    for bad in ["Bob", "a b", "", ".hidden", "x@y"] {
        let out = server.cli(&["user", "add", bad, "--password-stdin"], b"x");
        assert!(!out.status.success(), "{bad:?} accepted");
    }
    let gen = server.cli(&["user", "add", "carol"], b"");
    let (out, _) = text(&gen);
    let password = out.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(gen.status.success() && password.len() == 20, "{out}");
    assert!(server.pop3_tls().login("carol", &password).unwrap().ok);

    let list = text(&server.cli(&["user", "list"], b"")).0;
    assert!(
        list.contains("bob\tpop=on\timap=on\tadmin=no") && list.contains("carol"),
        "{list}"
    );
    server.set_user("bob", &["--pop", "off", "--imap", "off", "--quota", "1000"]);
    let show = text(&server.cli(&["user", "show", "bob"], b"")).0;
    for line in [
        "pop: off",
        "imap: off",
        "quota: 1000",
        "mailbox: INBOX",
        "mailbox: Sent",
        "mailbox: Trash",
    ] {
        assert!(show.contains(line), "{line} not in {show}");
    }
    let out = server.cli(&["user", "passwd", "bob", "--password-stdin"], b"new password\n");
    assert!(out.status.success());
    server.set_user("bob", &["--pop", "on"]);
    assert!(!server.pop3_tls().login("bob", PASSWORD).unwrap().ok);
    assert!(server.pop3_tls().login("bob", "new password").unwrap().ok);

    server.deliver("carol", &message("bye"));
    let del = server.cli(&["user", "del", "carol"], b"");
    assert!(del.status.success());
    assert!(!server.cli(&["user", "show", "carol"], b"").status.success());
    assert!(!server.cli(&["user", "del", "carol"], b"").status.success());
    assert!(!server
        .cli(&["user", "set", "nobody", "--pop", "on"], b"")
        .status
        .success());
}

#[test]
fn config_prints_commented_toml_that_loads_back() {
    let server = Server::start_with(Extra {
        pop3: "banner = \"Hello there\"",
        ..Extra::default()
    });
    let out = server.cli(&["config"], b"");
    let (toml, _) = text(&out);
    assert!(out.status.success());
    assert!(toml.contains("# Greeting text.") && toml.contains("banner = \"Hello there\""));
    let copy = server.dir.path().join("copy.toml");
    std::fs::write(&copy, &toml).unwrap();
    let again = Command::new(bin())
        .arg("--config")
        .arg(&copy)
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(text(&again).0, toml);
    // The banner is what clients see.
    assert_eq!(server.pop3_plain().greeting, "Hello there");
}

#[test]
fn bad_configs_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (text_in, expect) in [
        ("[pop3]\nlisten_tsl = []\n", "unknown field"),
        ("[pop3]\nlogin_type = \"none\"\n", "unknown variant"),
        ("[pop3]\nauth_timeout = 5\n", "RFC 1939"),
        ("[tls]\ncert = \"a.pem\"\n", "go together"),
        ("[limits]\ncredential_cache_ttl = 9223372036854775807\n", "30 days"),
        ("[log]\nformat = \"xml\"\n", "unknown variant"),
        ("[server\n", "line 1"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text_in).unwrap();
        let out = Command::new(bin())
            .arg("--config")
            .arg(&path)
            .arg("config")
            .output()
            .unwrap();
        let (_, err) = text(&out);
        assert!(!out.status.success(), "{text_in}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(expect), "{text_in}: {err}");
    }
    let out = Command::new(bin())
        .args(["--config", "/nonexistent.toml", "config"])
        .output()
        .unwrap();
    assert!(!out.status.success() && text(&out).1.contains("cannot read"));
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let server = Server::start();
    let out = Command::new(bin())
        .arg("--config")
        .arg(&server.config)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).1.contains("another `ringmail serve`"), "{}", text(&out).1);
}

#[test]
fn a_demo_user_is_created_once_when_the_store_is_empty() {
    let mut server = Server::start_with(Extra {
        server: "demo_user = true",
        ..Extra::default()
    });
    let line = server
        .stdout
        .iter()
        .find(|l| l.starts_with("demo user created"))
        .cloned();
    let password = line
        .expect("demo password printed")
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let mut c = server.pop3_tls();
    assert!(c.login("demo", &password).unwrap().ok);
    drop(c);
    server.restart();
    assert!(!server.stdout.iter().any(|l| l.starts_with("demo user created")));
}

#[test]
fn protocol_log_redacts_passwords() {
    let server = Server::start_with(Extra {
        pop3: "protocol_log = true",
        ..Extra::default()
    });
    server.add_user("bob");
    let mut c = server.pop3_tls();
    c.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    c.auth_plain("bob", PASSWORD, true).unwrap();
    c.cmd("QUIT").unwrap();
    let logs = server.data_dir().join("logs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let text = loop {
        let text: String = std::fs::read_dir(&logs)
            .map(|d| d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect())
            .unwrap_or_default();
        if text.contains("QUIT") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        text.contains("< USER bob") && text.contains("< PASS <redacted>"),
        "{text}"
    );
    assert!(text.contains("> +OK maildrop has 0 messages"), "{text}");
    assert!(!text.contains(PASSWORD), "password in the log: {text}");
    let name = std::fs::read_dir(&logs).unwrap().next().unwrap().unwrap().file_name();
    assert!(name.to_string_lossy().starts_with("pop3-20"), "{name:?}");
}

#[test]
fn a_port_in_use_is_refused_not_shared() {
    let server = Server::start();
    let other = tempfile::tempdir().unwrap();
    let config = other.path().join("c.toml");
    let same_ports = std::fs::read_to_string(&server.config).unwrap().replace(
        &server.data_dir().display().to_string(),
        &other.path().join("data").display().to_string(),
    );
    std::fs::write(&config, same_ports).unwrap();
    let out = Command::new(bin())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).1.contains("cannot listen on"), "{}", text(&out).1);
}

#[test]
fn fsck_checks_a_stopped_store_and_refuses_a_running_one() {
    let mut server = Server::start();
    server.add_user("bob");
    server.deliver("bob", &message("one"));
    let out = server.cli(&["fsck"], b"");
    let (_, stderr) = text(&out);
    assert!(
        !out.status.success() && stderr.contains("stop the server first"),
        "{stderr}"
    );
    server.kill9();
    for args in [&["fsck"][..], &["fsck", "--repair"]] {
        let out = server.cli(args, b"");
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{args:?}: {stdout}{stderr}");
        assert!(
            stdout.contains("1 users, 6 mailboxes, 1 messages, 1 bodies, 0 queue entries: clean"),
            "{stdout}"
        );
    }
}

/// `ringmail backup` while the server runs and takes mail: the copy is clean, and a server
/// started on it serves every message acknowledged before the backup began, under the same
/// certificate.
#[test]
fn a_backup_made_while_serving_runs_a_server() {
    let server = Server::start();
    server.add_user("bob");
    for i in 0..3 {
        server.deliver("bob", &message(&format!("before {i}")));
    }
    let backup = server.dir.path().join("backup");
    let backup_arg = backup.to_str().unwrap();
    // Mail keeps arriving while the copy is made.
    let out = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for i in 0..5 {
                server.deliver("bob", &message(&format!("during {i}")));
            }
        });
        let out = server.cli(&["backup", backup_arg], b"");
        writer.join().unwrap();
        out
    });
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("data.mdb"), "{stdout}");
    let again = server.cli(&["backup", backup_arg], b"");
    assert!(!again.status.success(), "a backup into a directory that is not empty");
    assert_eq!(text(&again).1.lines().count(), 1);

    // Restore: a second server whose data_dir is the copy.
    let mut copy = Server::start();
    copy.terminate();
    std::fs::remove_dir_all(copy.data_dir()).unwrap();
    std::fs::rename(&backup, copy.data_dir()).unwrap();
    let fsck = copy.cli(&["fsck"], b"");
    assert!(fsck.status.success(), "{}", text(&fsck).0);
    copy.spawn();
    let mut pop = copy.pop3_tls();
    assert!(pop.login("bob", PASSWORD).unwrap().ok);
    let stat = pop.cmd("STAT").unwrap();
    let count: u32 = stat.text.split(' ').next().unwrap().parse().unwrap();
    assert!((3..=8).contains(&count), "{stat:?}");
    let first = String::from_utf8_lossy(&pop.retr(1).unwrap()).into_owned();
    assert!(first.contains("before 0"), "{first}");
    assert_eq!(
        std::fs::read(copy.data_dir().join("cert.pem")).unwrap(),
        std::fs::read(server.data_dir().join("cert.pem")).unwrap()
    );
}

/// A certificate and key for localhost, written to `cert` and `key`; the certificate's PEM
/// also to `trust`, for a client that trusts only it.
fn write_identity(cert: &std::path::Path, key: &std::path::Path, trust: &std::path::Path) {
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(cert, pair.cert.pem()).unwrap();
    std::fs::write(key, pair.signing_key.serialize_pem()).unwrap();
    std::fs::write(trust, pair.cert.pem()).unwrap();
}

/// `ringmail reload` (SIGHUP): handshakes after it present the new certificate, a session
/// already up goes on, and a pair that does not load is refused with the one in use kept.
#[test]
fn reload_gives_new_connections_the_new_certificate_and_keeps_sessions() {
    use loadtest::client::imap::Imap;
    use loadtest::client::{tls_config, Transport};
    let files = tempfile::tempdir().unwrap();
    let path = |name: &str| files.path().join(name);
    write_identity(&path("cert.pem"), &path("key.pem"), &path("first.pem"));
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        path("cert.pem").display(),
        path("key.pem").display()
    );
    let server = Server::start_with(Extra {
        tail: Box::leak(tls.into_boxed_str()),
        ..Extra::default()
    });
    server.add_user("bob");
    let connect = |trust: &str| {
        let config = tls_config(&path(trust)).unwrap();
        Transport::connect_tls(server.addr(server.ports.imaps), config, "localhost").and_then(Imap::new)
    };
    let mut held = connect("first.pem").unwrap();
    held.login("bob", PASSWORD).unwrap().expect_ok().unwrap();

    write_identity(&path("cert.pem"), &path("key.pem"), &path("second.pem"));
    let out = server.cli(&["reload"], b"");
    assert!(out.status.success(), "{}", text(&out).1);
    // The server reloads when the signal arrives: wait for the new certificate, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while connect("second.pem").is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was never presented"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        connect("first.pem").is_err(),
        "new handshakes no longer present the old one"
    );
    held.cmd("NOOP").unwrap().expect_ok().unwrap();

    // A broken pair: refused, the second one stays.
    std::fs::write(path("cert.pem"), b"not a certificate").unwrap();
    assert!(server.cli(&["reload"], b"").status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut after = connect("second.pem").unwrap();
    after.login("bob", PASSWORD).unwrap().expect_ok().unwrap();
    held.cmd("NOOP").unwrap().expect_ok().unwrap();
}

#[test]
fn reload_without_a_running_server_fails_in_one_line() {
    let mut server = Server::start();
    server.terminate();
    let out = server.cli(&["reload"], b"");
    assert!(!out.status.success());
    let (_, err) = text(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no `ringmail serve`"), "{err}");
}

/// `[log] format = "json"`: every line the server logs is one JSON object with its level and
/// message, from start to shutdown.
#[test]
fn json_logs_are_one_object_per_line() {
    use std::io::{BufRead, BufReader};
    let mut server = Server::start_with(Extra {
        tail: "[log]\nformat = \"json\"\n",
        ..Extra::default()
    });
    server.terminate();
    // The same config again, with stderr kept this time.
    let mut child = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&server.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        stdout
            .by_ref()
            .any(|l| l.is_ok_and(|l| l.starts_with("ringmail ready"))),
        "the server did not start"
    );
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    // Read to the end, so nothing the server prints on its way out meets a closed pipe.
    stdout.for_each(drop);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.lines().count() >= 1, "nothing logged");
    for line in stderr.lines() {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(event["level"].is_string(), "{line}");
        assert!(event["fields"]["message"].is_string(), "{line}");
    }
    assert!(stderr.contains("shutting down"), "{stderr}");
}

/// The systemd units in dist/ name commands this build has, sandbox the service, and reload
/// the way `ringmail reload` does.
#[test]
fn service_files_run_commands_that_exist() {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist");
    for (unit, run) in [("ringmail.service", "serve"), ("ringmail-proxy.service", "proxy")] {
        let text = std::fs::read_to_string(dist.join(unit)).unwrap();
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{unit}: no {key}"))
                .to_owned()
        };
        for (key, subcommand) in [("ExecStart", run), ("ExecReload", "reload")] {
            let line = value(key);
            let mut words = line.split_whitespace();
            assert!(words.next().unwrap().ends_with("/ringmail"), "{unit}: {line}");
            let args: Vec<&str> = words.collect();
            assert_eq!(args.first(), Some(&subcommand), "{unit}: {line}");
            // The same arguments parse here (--help stops before anything runs).
            let out = Command::new(bin()).args(&args).arg("--help").output().unwrap();
            assert!(out.status.success(), "{unit}: {line}: {}", text_of(&out.stderr));
        }
        for (key, expected) in [
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
            ("LimitNOFILE", "1048576"),
            ("KillSignal", "SIGTERM"),
        ] {
            assert_eq!(value(key), expected, "{unit}: {key}");
        }
    }
}

fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
