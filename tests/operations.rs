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
    assert_eq!(get("ringmail_logins_total{mechanism=\"password\",result=\"ok\"}"), 2.0);
    assert_eq!(
        get("ringmail_logins_total{mechanism=\"password\",result=\"bad-credentials\"}"),
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
}
