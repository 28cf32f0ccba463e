//! Two sites on one machine, as DESIGN.md §7 lays them out: a real slapd holds the accounts,
//! each site has two `ringmail serve` back ends and a `ringmail proxy`, users are spread over
//! the four back ends, and every protocol works through either site's front end.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::proxy::{backend_on, backends_table, Facing, Proxy};
use common::slapd::{Account, Slapd};
use common::{message, Ports, Server, PASSWORD};

/// The users, their back ends and the back ends' sites.
const USERS: [(&str, &str); 4] = [("ann", "b1"), ("ben", "b2"), ("cat", "b3"), ("dan", "b4")];
const BACKENDS: [(&str, &str); 4] = [("b1", "east"), ("b2", "east"), ("b3", "west"), ("b4", "west")];

struct Sites {
    _ldap: Slapd,
    backends: Vec<(Server, Facing)>,
    east: Proxy,
    west: Proxy,
}

impl Sites {
    fn start() -> Sites {
        let accounts: Vec<Account> = USERS
            .iter()
            .map(|(name, host)| Account {
                name,
                mail_host: host,
                extra: &[],
            })
            .collect();
        let ldap = Slapd::start(&accounts);
        let directory = ldap.directory_section(30);
        // Every port is chosen first: back ends, like front ends, know each other's LMTP.
        let ports: Vec<Ports> = BACKENDS.iter().map(|_| Ports::new()).collect();
        let facings: Vec<Facing> = ports
            .iter()
            .map(|p| Facing {
                lmtp: p.lmtp,
                ..Facing::new()
            })
            .collect();
        let routes: Vec<(&str, &str, Facing)> = BACKENDS
            .iter()
            .zip(&facings)
            .map(|((name, site), facing)| (*name, *site, *facing))
            .collect();
        let table = backends_table(&routes);
        let backends: Vec<(Server, Facing)> = BACKENDS
            .iter()
            .zip(ports)
            .zip(&facings)
            .map(|(((name, site), ports), facing)| {
                // Only the front ends' address may use the proxy-facing listeners.
                let cluster = format!("site = \"{site}\"\ntrusted_networks = [\"127.0.0.1/32\"]\n{table}");
                (backend_on(ports, *facing, name, &cluster, &directory), *facing)
            })
            .collect();
        Sites {
            east: Proxy::start_in("east", &directory, &routes),
            west: Proxy::start_in("west", &directory, &routes),
            backends,
            _ldap: ldap,
        }
    }

    fn backend(&self, name: &str) -> &Server {
        let i = BACKENDS.iter().position(|(n, _)| *n == name).unwrap();
        &self.backends[i].0
    }

    /// A protocol log line of back end `name` containing `needle`, waiting for it a while.
    fn logged(&self, name: &str, needle: &str) -> String {
        self.backend(name).logged(needle)
    }
}

#[test]
fn every_protocol_works_for_every_user_through_either_site() {
    let sites = Sites::start();
    for proxy in [&sites.east, &sites.west] {
        for (user, _) in USERS {
            // Submission: a message to oneself, delivered by the user's own back end.
            let mut s = proxy.submissions();
            assert_eq!(s.auth_plain(user, PASSWORD).unwrap().code, 235, "{user}");
            let to = format!("{user}@localhost");
            let note = format!("From: {to}\r\nTo: {to}\r\nSubject: self-{user}\r\n\r\nhello\r\n");
            let sent = s.send(&to, &[&to], note.as_bytes()).unwrap();
            assert_eq!(sent.data.as_ref().map(|r| r.code), Some(250), "{user}: {sent:?}");
            // IMAP over TLS sees it.
            let mut c = proxy.imaps();
            assert!(c.login(user, PASSWORD).unwrap().ok(), "{user}");
            let r = c.cmd(&format!("UID SEARCH SUBJECT self-{user}")).unwrap();
            assert_eq!(r.status, "BAD", "not selected yet: {r:?}");
            c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
            let r = c
                .cmd(&format!("SEARCH SUBJECT self-{user}"))
                .unwrap()
                .expect_ok()
                .unwrap();
            assert!(
                r.lines().iter().any(|l| l.starts_with("* SEARCH ") && l.len() > 9),
                "{user}: {r:?}"
            );
            c.cmd("LOGOUT").unwrap();
            // POP3 over TLS sees it too.
            let mut p = proxy.pop3s();
            assert!(p.login(user, PASSWORD).unwrap().ok, "{user}");
            let stat = p.cmd("STAT").unwrap();
            assert!(stat.ok && !stat.text.starts_with("0 "), "{user}: {stat:?}");
            p.cmd("QUIT").unwrap();
        }
    }
    // Each back end holds exactly its own users' mail: two messages each, one per site.
    for ((backend, _), (user, _)) in sites.backends.iter().zip(USERS) {
        let mut c = backend.imap_tls();
        assert_eq!(c.login(user, PASSWORD).unwrap().status, "OK", "{user}");
        let r = c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
        assert!(r.lines().iter().any(|l| l == "* 2 EXISTS"), "{user}: {r:?}");
    }

    // ann (b1, east) writes to dan (b4, west) and ben (b2, east) through the west front end:
    // her back end accepts both and its queue delivers them to their back ends.
    let mut s = sites.west.submissions();
    assert_eq!(s.auth_plain("ann", PASSWORD).unwrap().code, 235);
    let note = "From: ann@localhost\r\nTo: dan@localhost, ben@localhost\r\nSubject: across\r\n\r\nhi\r\n";
    let sent = s
        .send("ann@localhost", &["dan@localhost", "ben@localhost"], note.as_bytes())
        .unwrap();
    assert!(sent.rcpt.iter().all(|r| r.code == 250), "{sent:?}");
    assert_eq!(sent.data.as_ref().map(|r| r.code), Some(250), "{sent:?}");
    for user in ["dan", "ben"] {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mut c = sites.east.imaps();
            assert!(c.login(user, PASSWORD).unwrap().ok());
            c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
            let r = c.cmd("SEARCH SUBJECT across").unwrap().expect_ok().unwrap();
            if r.lines().iter().any(|l| l.starts_with("* SEARCH ") && l.len() > 9) {
                break;
            }
            assert!(Instant::now() < deadline, "{user} did not get ann's message");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // An address nobody in the directory has is refused at RCPT, not queued.
    let r = s.cmd("MAIL FROM:<ann@localhost>").unwrap();
    assert_eq!(r.code, 250);
    assert_eq!(s.cmd("RCPT TO:<nobody@localhost>").unwrap().code, 550);
}

#[test]
fn idle_through_one_site_hears_mail_delivered_through_the_other() {
    let sites = Sites::start();
    // ann's mailbox is on b1 (east); she reads through the west front end.
    let mut c = sites.west.imaps();
    assert!(c.login("ann", PASSWORD).unwrap().ok());
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    c.t.send_raw(b"i1 IDLE\r\n").unwrap();
    assert!(c.read_response_line().unwrap().starts_with(b"+ "));
    // An MTA hands the east front end mail for ann (b1, east) and cat (b3, west).
    let mut lmtp = sites.east.lmtp();
    let (rcpt, data) = lmtp
        .send(
            "mx@example.org",
            &["ann@example.org", "cat@example.org"],
            &message("news"),
        )
        .unwrap();
    assert!(rcpt.iter().chain(&data).all(|r| r.code == 250), "{rcpt:?} {data:?}");
    c.t.set_read_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(c.read_response_line().unwrap(), b"* 1 EXISTS");
    c.t.send_raw(b"DONE\r\n").unwrap();
    c.finish("i1").unwrap().expect_ok().unwrap();
    let mut p = sites.east.pop3s();
    assert!(p.login("cat", PASSWORD).unwrap().ok);
    assert!(p.cmd("STAT").unwrap().text.starts_with("1 "));
}

#[test]
fn back_ends_see_the_client_and_trust_only_their_front_ends() {
    let sites = Sites::start();
    // A client on 127.0.0.2 sends through the east front end: ben's back end logs 127.0.0.2.
    let sent = common::python(
        "import smtplib, ssl, sys\n\
         s = smtplib.SMTP_SSL('localhost', int(sys.argv[1]), source_address=('127.0.0.2', 0),\n\
                              context=ssl.create_default_context(cafile=sys.argv[2]))\n\
         s.login('ben', sys.argv[3])\nprint(s.sendmail('ben@localhost', ['ben@localhost'], 'Subject: hi\\r\\n\\r\\nhi\\r\\n'))\n\
         s.quit()\n",
        &[sites.east.submissions.to_string(), sites.east.cafile(), PASSWORD.to_owned()],
    );
    assert_eq!(sent.trim(), "{}");
    let line = sites.logged("b2", "connected from 127.0.0.2");
    assert!(line.contains("through front end 127.0.0.1"), "{line}");

    // A direct connection from an address outside trusted_networks, even with a well-formed
    // PROXY v2 header, is closed unanswered.
    let facing = sites.backends[1].1;
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into()).unwrap();
    let target = SocketAddr::from(([127, 0, 0, 1], facing.imap));
    socket.connect(&target.into()).unwrap();
    let mut raw: TcpStream = socket.into();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let client = SocketAddr::from(([192, 0, 2, 7], 4000));
    let _ = raw.write_all(&ringmail::proxy::proxy_v2::encode(client, target, false));
    let mut got = Vec::new();
    let _ = raw.read_to_end(&mut got);
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
}

#[test]
fn a_back_end_that_dies_ends_its_sessions_and_fails_logins_quickly() {
    let mut sites = Sites::start();
    let mut c = sites.east.imaps();
    assert!(c.login("ann", PASSWORD).unwrap().ok());
    c.cmd("SELECT INBOX").unwrap().expect_ok().unwrap();
    c.t.send_raw(b"i1 IDLE\r\n").unwrap();
    assert!(c.read_response_line().unwrap().starts_with(b"+ "));

    sites.backends[0].0.kill9();
    // The relayed session ends: the client is not left hanging on a dead back end.
    c.t.set_read_timeout(Duration::from_secs(10)).unwrap();
    let started = Instant::now();
    let ended = c.t.read_to_close();
    assert!(ended.is_ok() && started.elapsed() < Duration::from_secs(5), "{ended:?}");

    // Logins for ann get a clear temporary failure; after a few the front end stops trying.
    for _ in 0..4 {
        let r = sites.east.imaps().login("ann", PASSWORD).unwrap();
        assert!(r.status == "NO" && r.text.starts_with("[UNAVAILABLE]"), "{r:?}");
    }
    let mut p = sites.west.pop3s();
    let r = p.login("ann", PASSWORD).unwrap();
    assert!(!r.ok && r.text.contains("[SYS/TEMP]"), "{r:?}");
    let mut s = sites.west.submissions();
    let r = s.auth_plain("ann", PASSWORD).unwrap();
    assert_eq!(r.code, 454, "{r:?}");
    // Mail for her waits at the MTA; mail for others is delivered.
    let (_, data) = sites
        .west
        .lmtp()
        .send(
            "mx@example.org",
            &["ann@example.org", "dan@example.org"],
            &message("while down"),
        )
        .unwrap();
    assert_eq!(data.iter().map(|r| r.code).collect::<Vec<_>>(), [451, 250], "{data:?}");
    // Everyone else is unaffected.
    assert!(sites.east.imaps().login("ben", PASSWORD).unwrap().ok());

    // Back again: after the breaker's pause, ann logs in and finds her mail.
    sites.backends[0].0.spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = sites.east.imaps();
        if c.login("ann", PASSWORD).unwrap().ok() {
            break;
        }
        assert!(Instant::now() < deadline, "ann's back end did not come back");
        std::thread::sleep(Duration::from_millis(500));
    }
}
