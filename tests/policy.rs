//! Login policy over real sockets: each login_type before and after TLS, reserved names,
//! administrators, the per-user POP3 switch, failed-login delays and disconnects, connection
//! limits and the pre-auth timeout.

mod common;

use std::time::{Duration, Instant};

use common::{Extra, Server, PASSWORD};
use loadtest::client::pop3::Pop3;

fn server(login_type: &'static str) -> Server {
    let pop3 = match login_type {
        "plain-text-login" => "login_type = \"plain-text-login\"",
        "plain-text-authentication" => "login_type = \"plain-text-authentication\"",
        _ => "login_type = \"secure-login\"",
    };
    let s = Server::start_with(Extra {
        pop3,
        ..Extra::default()
    });
    s.add_user("bob");
    s
}

/// (USER/PASS works, AUTH PLAIN works, AUTH SCRAM works) on a fresh connection.
fn what_works(server: &Server, connect: impl Fn(&Server) -> Pop3) -> (bool, bool, bool) {
    let quit = |mut c: Pop3, ok: bool| {
        let _ = c.cmd("QUIT");
        ok
    };
    let mut c = connect(server);
    let user = c.cmd("USER bob").unwrap();
    let pass_ok = if user.ok {
        c.cmd(&format!("PASS {PASSWORD}")).unwrap().ok
    } else {
        false
    };
    let pass_ok = quit(c, pass_ok);
    let mut c = connect(server);
    let plain = c.auth_plain("bob", PASSWORD, true).unwrap().ok;
    let plain = quit(c, plain);
    let mut c = connect(server);
    let scram = c.auth_scram("bob", PASSWORD).unwrap().ok;
    let scram = quit(c, scram);
    (pass_ok, plain, scram)
}

#[test]
fn secure_login_requires_tls_first() {
    let s = server("secure-login");
    assert_eq!(what_works(&s, Server::pop3_plain), (false, false, false));
    assert_eq!(what_works(&s, Server::pop3_stls), (true, true, true));
    assert_eq!(what_works(&s, Server::pop3_tls), (true, true, true));
    let mut c = s.pop3_plain();
    let refusal = c.cmd("USER bob").unwrap();
    assert!(refusal.text.starts_with("[AUTH]"), "{refusal:?}");
}

#[test]
fn plain_text_authentication_allows_sasl_but_not_user_pass() {
    let s = server("plain-text-authentication");
    assert_eq!(what_works(&s, Server::pop3_plain), (false, true, true));
    assert_eq!(what_works(&s, Server::pop3_stls), (true, true, true));
    let capa = s.pop3_plain().capa().unwrap();
    assert!(capa.iter().any(|c| c.starts_with("SASL ")) && !capa.iter().any(|c| c == "USER"));
}

#[test]
fn plain_text_login_allows_everything() {
    let s = server("plain-text-login");
    assert_eq!(what_works(&s, Server::pop3_plain), (true, true, true));
    assert_eq!(what_works(&s, Server::pop3_tls), (true, true, true));
}

#[test]
fn anonymous_and_guest_never_log_in() {
    let s = server("secure-login");
    for name in ["anonymous", "guest", "Anonymous"] {
        let out = s.cli(&["user", "add", &name.to_lowercase(), "--password-stdin"], b"pw");
        assert!(!out.status.success(), "{name} could be created");
        let mut c = s.pop3_tls();
        let st = c.login(name, "anything").unwrap();
        assert!(!st.ok && st.text.starts_with("[AUTH]"), "{st:?}");
        let mut c = s.pop3_tls();
        assert!(!c.auth_plain(name, "", true).unwrap().ok);
    }
}

#[test]
fn administrators_cannot_open_their_mailbox() {
    let s = server("secure-login");
    let out = s.cli(
        &["user", "add", "root-admin", "--admin", "--password-stdin"],
        PASSWORD.as_bytes(),
    );
    assert!(out.status.success());
    let mut c = s.pop3_tls();
    let st = c.login("root-admin", PASSWORD).unwrap();
    assert!(!st.ok);
    assert!(st.text.contains("administrator"), "{st:?}");
}

#[test]
fn pop3_switch_refuses_with_a_reason_only_after_the_password() {
    let s = server("secure-login");
    s.set_user("bob", &["--pop", "off"]);
    let mut c = s.pop3_tls();
    let st = c.login("bob", PASSWORD).unwrap();
    assert!(!st.ok && st.text.contains("POP3 access is disabled"), "{st:?}");
    let mut c = s.pop3_tls();
    let st = c.login("bob", "wrong").unwrap();
    assert!(
        !st.ok && !st.text.contains("disabled"),
        "a guesser learns nothing: {st:?}"
    );
    s.set_user("bob", &["--pop", "on"]);
    assert!(s.pop3_tls().login("bob", PASSWORD).unwrap().ok);
}

/// Logins are remembered (`[limits] credential_cache_ttl`, on by default) so the next one
/// skips argon2; what the account may do, and its password, still count at once.
#[test]
fn a_remembered_login_yields_at_once_to_a_switch_or_a_new_password() {
    let s = Server::start_with(Extra {
        limits: "login_failure_delay = 0",
        ..Extra::default()
    });
    s.add_user("bob");
    for _ in 0..2 {
        let st = pop3_login(&s, PASSWORD);
        assert!(st.ok, "{st:?}");
        assert!(s.imap_tls().login("bob", PASSWORD).unwrap().ok());
    }
    assert!(!pop3_login(&s, "wrong").ok);
    s.set_user("bob", &["--pop", "off", "--imap", "off"]);
    let st = pop3_login(&s, PASSWORD);
    assert!(!st.ok && st.text.contains("disabled"), "{st:?}");
    assert!(!s.imap_tls().login("bob", PASSWORD).unwrap().ok());
    s.set_user("bob", &["--pop", "on", "--imap", "on"]);
    assert!(pop3_login(&s, PASSWORD).ok);
    let out = s.cli(&["user", "passwd", "bob", "--password-stdin"], b"new password\n");
    assert!(out.status.success());
    assert!(!pop3_login(&s, PASSWORD).ok);
    assert!(!s.imap_tls().login("bob", PASSWORD).unwrap().ok());
    assert!(pop3_login(&s, "new password").ok);
    assert!(s.imap_tls().login("bob", "new password").unwrap().ok());
}

/// bob's POP3 login over TLS; a session that logged in QUITs, so the next login does not
/// race the server's teardown of this one for the maildrop ([IN-USE]).
fn pop3_login(s: &Server, password: &str) -> loadtest::client::pop3::Status {
    let mut c = s.pop3_tls();
    let st = c.login("bob", password).unwrap();
    if st.ok {
        assert!(c.cmd("QUIT").unwrap().ok);
    }
    st
}

#[test]
fn failures_are_delayed_growing_per_user_and_address_and_reset_by_success() {
    let s = Server::start_with(Extra {
        limits: "login_failure_delay = 1\nlogin_failure_delay_max = 2\nmax_login_failures = 3",
        ..Extra::default()
    });
    s.add_user("bob");
    s.add_user("carol");
    let timed = |c: &mut Pop3, user: &str, pw: &str| {
        let t = Instant::now();
        let st = c.login(user, pw).unwrap();
        (st.ok, t.elapsed())
    };
    let mut c = s.pop3_tls();
    let (ok, first) = timed(&mut c, "bob", "wrong");
    assert!(!ok && first >= Duration::from_millis(900), "{first:?}");
    let (ok, second) = timed(&mut c, "bob", "wrong");
    assert!(!ok && second >= Duration::from_millis(1900), "{second:?}");
    // carol behind the same address is not slowed by bob's typos.
    let mut other = s.pop3_tls();
    let (ok, carol) = timed(&mut other, "carol", "wrong");
    assert!(!ok && carol < Duration::from_millis(1900), "{carol:?}");
    // Third failure on one connection: the reply, then the connection closes.
    let (ok, _) = timed(&mut c, "bob", "wrong");
    assert!(!ok);
    let rest = c.t.read_to_close().unwrap();
    assert!(String::from_utf8_lossy(&rest).starts_with("-ERR"), "{rest:?}");
    // A success clears bob's count: the next failure costs the base delay again.
    let mut c = s.pop3_tls();
    assert!(c.login("bob", PASSWORD).unwrap().ok);
    c.cmd("QUIT").unwrap();
    let mut c = s.pop3_tls();
    let (ok, again) = timed(&mut c, "bob", "wrong");
    assert!(!ok && again < Duration::from_millis(1900), "{again:?}");
}

#[test]
fn guesses_over_many_connections_take_turns_per_address_and_user() {
    let s = Server::start_with(Extra {
        limits: "login_failure_delay = 1\nlogin_failure_delay_max = 1",
        ..Extra::default()
    });
    s.add_user("bob");
    s.add_user("carol");
    // Six connections guess bob's password at once: the penalty holds for all of them, so
    // the answers come a delay apart instead of together.
    let started = Instant::now();
    let guesses: Vec<_> = (0..6)
        .map(|_| {
            let mut c = s.imap_tls();
            std::thread::spawn(move || {
                let r = c.login("bob", "wrong").unwrap();
                assert!(!r.ok(), "{r:?}");
                started.elapsed()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // carol, behind the same address, does not wait for bob's guesser.
    let t = Instant::now();
    assert!(s.imap_tls().login("carol", PASSWORD).unwrap().ok());
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "carol waited {:?}",
        t.elapsed()
    );
    let mut answered: Vec<Duration> = guesses.into_iter().map(|g| g.join().unwrap()).collect();
    answered.sort();
    assert!(
        answered[5] >= Duration::from_millis(5_500),
        "six guesses in {answered:?}"
    );
}

#[test]
fn imap_says_bye_when_it_closes_after_failed_logins() {
    let s = Server::start();
    s.add_user("bob");
    let mut c = s.imap_tls();
    for _ in 0..3 {
        assert!(!c.login("bob", "wrong").unwrap().ok());
    }
    let rest = String::from_utf8_lossy(&c.t.read_to_close().unwrap()).into_owned();
    assert!(rest.starts_with("* BYE"), "{rest:?}");
}

#[test]
fn connection_limits() {
    let s = Server::start_with(Extra {
        pop3: "max_connections = 3\nmax_connections_per_user = 1",
        ..Extra::default()
    });
    s.add_user("bob");
    let a = s.pop3_plain();
    let mut b = s.pop3_tls();
    let _c = s.pop3_plain();
    // The fourth connection is told why and closed.
    let mut d = loadtest::client::Transport::connect(s.addr(s.ports.pop3)).unwrap();
    let line = d.read_line_string().unwrap();
    assert!(line.starts_with("-ERR [SYS/TEMP]"), "{line}");
    drop(a);
    assert!(b.login("bob", PASSWORD).unwrap().ok);
    // A second session of bob passes the server limit but not the per-user one.
    std::thread::sleep(Duration::from_millis(100));
    let mut e = s.pop3_tls();
    let st = e.login("bob", PASSWORD).unwrap();
    assert!(
        !st.ok && st.text.contains("too many connections for this user"),
        "{st:?}"
    );
}

#[test]
fn per_address_limit() {
    let s = Server::start_with(Extra {
        pop3: "max_connections_per_ip = 1",
        ..Extra::default()
    });
    let _a = s.pop3_plain();
    let mut b = loadtest::client::Transport::connect(s.addr(s.ports.pop3)).unwrap();
    assert!(b.read_line_string().unwrap().contains("from your address"));
}

#[test]
fn pre_auth_timeout_closes_idle_connections() {
    let s = Server::start_with(Extra {
        pop3: "pre_auth_timeout = 1",
        ..Extra::default()
    });
    let mut c = s.pop3_plain();
    let t = Instant::now();
    let rest = c.t.read_to_close().unwrap();
    assert!(t.elapsed() >= Duration::from_millis(900));
    assert!(
        String::from_utf8_lossy(&rest).starts_with("-ERR autologout"),
        "{rest:?}"
    );
}
