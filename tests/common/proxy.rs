//! `ringmail proxy` front ends and the back ends behind them, as separate processes on real
//! sockets.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use loadtest::client::imap::Imap;
use loadtest::client::lmtp::Lmtp;
use loadtest::client::pop3::Pop3;
use loadtest::client::smtp::Smtp;
use loadtest::client::{tls_config, Transport};

use super::{bin, free_port, Extra, Ports, Server, PASSWORD};

pub const SECRET: &str = "front-end-secret";

/// A running `ringmail proxy`.
pub struct Proxy {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub imap: u16,
    pub imaps: u16,
    pub pop3: u16,
    pub pop3s: u16,
    pub submission: u16,
    pub submissions: u16,
    pub lmtp: u16,
}

/// `cluster.backends` entries for `backends` (name, site, ports), as front and back ends
/// both have them.
pub fn backends_table(backends: &[(&str, &str, Facing)]) -> String {
    let entries: Vec<String> = backends
        .iter()
        .map(|(name, site, f)| {
            let mut lmtp = match f.lmtp {
                0 => String::new(),
                port => format!(", lmtp = \"127.0.0.1:{port}\""),
            };
            if f.tls {
                lmtp.push_str(", tls = true, tls_name = \"localhost\"");
            }
            format!(
                "{{ name = \"{name}\", site = \"{site}\", imap = \"127.0.0.1:{}\", pop3 = \"127.0.0.1:{}\", \
                 submission = \"127.0.0.1:{}\"{lmtp} }}",
                f.imap, f.pop3, f.submission
            )
        })
        .collect();
    format!("backends = [{}]", entries.join(", "))
}

/// A back end's proxy-facing ports.
#[derive(Clone, Copy)]
pub struct Facing {
    pub imap: u16,
    pub pop3: u16,
    pub submission: u16,
    /// The back end's LMTP port, once it runs (`Server::ports.lmtp`); 0: none.
    pub lmtp: u16,
    /// Its proxy-facing listeners speak TLS (certificate for localhost).
    pub tls: bool,
}

impl Facing {
    pub fn new() -> Facing {
        Facing {
            imap: free_port(),
            pop3: free_port(),
            submission: free_port(),
            lmtp: 0,
            tls: false,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// A front end whose directory holds `users` (name, mail_host) with `PASSWORD`, routing
    /// to `backends` (name, proxy-facing ports).
    pub fn start(users: &[(&str, &str)], backends: &[(&str, Facing)]) -> Proxy {
        let hash = password_hash(PASSWORD);
        let users: Vec<String> = users
            .iter()
            .map(|(name, host)| format!("{{ name = \"{name}\", password_hash = \"{hash}\", mail_host = \"{host}\" }}"))
            .collect();
        Proxy::start_with(&format!("[directory]\nusers = [{}]\n", users.join(", ")), backends)
    }

    /// A front end with the `[directory]` section `directory`.
    pub fn start_with(directory: &str, backends: &[(&str, Facing)]) -> Proxy {
        let backends: Vec<(&str, &str, Facing)> = backends.iter().map(|(name, f)| (*name, "east", *f)).collect();
        Proxy::start_in("east", directory, &backends)
    }

    /// A front end in `site` with the `[directory]` section `directory`, routing to
    /// `backends` (name, site, ports).
    pub fn start_in(site: &str, directory: &str, backends: &[(&str, &str, Facing)]) -> Proxy {
        Proxy::start_configured(site, "", directory, backends)
    }

    /// `start_in`, with `imap` lines added to the `[imap]` section.
    pub fn start_configured(site: &str, imap_extra: &str, directory: &str, backends: &[(&str, &str, Facing)]) -> Proxy {
        Proxy::start_sections(site, (imap_extra, ""), directory, backends)
    }

    /// `start_in`, with lines added to the `[imap]` and `[lmtp]` sections.
    pub fn start_sections(
        site: &str,
        (imap_extra, lmtp_extra): (&str, &str),
        directory: &str,
        backends: &[(&str, &str, Facing)],
    ) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let (imap, imaps) = (free_port(), free_port());
        let (pop3, pop3s) = (free_port(), free_port());
        let (submission, submissions) = (free_port(), free_port());
        let lmtp = free_port();
        let backends = backends_table(backends);
        let listen =
            |plain: u16, tls: u16| format!("listen = [\"127.0.0.1:{plain}\"]\nlisten_tls = [\"127.0.0.1:{tls}\"]\n");
        let config = format!(
            "[server]\ndata_dir = \"{data}\"\nworkers = 2\n\
             [imap]\n{imap_listen}{imap_extra}\n[pop3]\n{pop3_listen}[submission]\n{submission_listen}\
             [lmtp]\nlisten = [\"127.0.0.1:{lmtp}\"]\n{lmtp_extra}\n\
             [limits]\nlogin_failure_delay = 0\n\
             [cluster]\nsite = \"{site}\"\nproxy_secret = \"{SECRET}\"\n{backends}\n{directory}",
            data = dir.path().join("data").display(),
            imap_listen = listen(imap, imaps),
            pop3_listen = listen(pop3, pop3s),
            submission_listen = listen(submission, submissions),
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
            pop3,
            pop3s,
            submission,
            submissions,
            lmtp,
        }
    }

    pub fn lmtp(&self) -> Lmtp {
        Lmtp::new(Transport::connect(Proxy::addr(self.lmtp)).unwrap()).unwrap()
    }

    pub fn cafile(&self) -> String {
        self.dir.path().join("data").join("cert.pem").display().to_string()
    }

    pub fn tls(&self) -> std::sync::Arc<rustls::ClientConfig> {
        tls_config(&self.dir.path().join("data").join("cert.pem")).unwrap()
    }

    pub fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    pub fn pop3s(&self) -> Pop3 {
        Pop3::new(Transport::connect_tls(Proxy::addr(self.pop3s), self.tls(), "localhost").unwrap()).unwrap()
    }

    pub fn submissions(&self) -> Smtp {
        let t = Transport::connect_tls(Proxy::addr(self.submissions), self.tls(), "localhost").unwrap();
        let mut c = Smtp::new(t).unwrap();
        c.ehlo("client.test").unwrap();
        c
    }

    pub fn imaps(&self) -> Imap {
        let cert = self.dir.path().join("data").join("cert.pem");
        let tls = tls_config(&cert).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", self.imaps).parse().unwrap();
        Imap::new(Transport::connect_tls(addr, tls, "localhost").unwrap()).unwrap()
    }
}

pub fn password_hash(password: &str) -> String {
    hash_with(password, &[])
}

/// `ringmail user hash` with `flags`.
pub fn hash_with(password: &str, flags: &[&str]) -> String {
    let mut child = Command::new(bin())
        .args(["user", "hash", "--password-stdin"])
        .args(flags)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A back end with proxy-facing listeners, trusting loopback front ends with `SECRET`.
pub fn backend(facing: Facing) -> Server {
    backend_with(facing, "", "")
}

/// A back end named `name` in the directory whose `[directory]` section is `directory`
/// (empty: its own store holds the accounts).
pub fn backend_with(facing: Facing, name: &str, directory: &str) -> Server {
    backend_in(facing, name, "", directory)
}

/// `backend_with`, with `cluster` lines (site, trusted networks) added to its `[cluster]`.
/// Its protocol logs are on, to show which client each session is for.
pub fn backend_in(facing: Facing, name: &str, cluster: &str, directory: &str) -> Server {
    backend_on(Ports::new(), facing, name, cluster, directory)
}

/// `backend_in` on `ports` chosen beforehand.
pub fn backend_on(ports: Ports, facing: Facing, name: &str, cluster: &str, directory: &str) -> Server {
    let listen = |port: u16| -> &'static str {
        Box::leak(format!("listen_proxy = [\"127.0.0.1:{port}\"]\nprotocol_log = true").into_boxed_str())
    };
    let tail: &'static str = Box::leak(
        format!("[cluster]\nname = \"{name}\"\nproxy_secret = \"{SECRET}\"\n{cluster}\n{directory}").into_boxed_str(),
    );
    let extra = Extra {
        imap: listen(facing.imap),
        pop3: listen(facing.pop3),
        submission: listen(facing.submission),
        tail,
        ..Extra::default()
    };
    Server::start_on(ports, extra)
}
