//! Runs a real `ringmail serve` process on free loopback ports in a temporary data_dir, and
//! connects real clients to it.
#![allow(dead_code)] // each test binary uses its own part of this kit

pub mod metrics;
pub mod proxy;
pub mod slapd;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadtest::client::imap::Imap;
use loadtest::client::lmtp::Lmtp;
use loadtest::client::pop3::Pop3;
use loadtest::client::smtp::Smtp;
use loadtest::client::{tls_config, Transport};

pub const PASSWORD: &str = "s3cret pass";

/// Whether process `pid` may have its memory backed by transparent huge pages (its status
/// says so since Linux 5.0).
pub fn huge_pages_allowed(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("THP_enabled:"))
        .expect("the kernel reports THP_enabled");
    line.split_whitespace().nth(1) != Some("0")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ringmail")
}

/// A port no other server of this test process got: ringmail binds with SO_REUSEPORT, so two
/// servers handed the same port would silently share it.
pub fn free_port() -> u16 {
    static TAKEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut taken = TAKEN.lock().unwrap();
        if !taken.contains(&port) {
            taken.push(port);
            return port;
        }
    }
}

pub struct Ports {
    pub imap: u16,
    pub imaps: u16,
    pub pop3: u16,
    pub pop3s: u16,
    pub lmtp: u16,
    pub submission: u16,
    pub submissions: u16,
}

impl Ports {
    pub fn new() -> Ports {
        Ports {
            imap: free_port(),
            imaps: free_port(),
            pop3: free_port(),
            pop3s: free_port(),
            lmtp: free_port(),
            submission: free_port(),
            submissions: free_port(),
        }
    }
}

pub struct Server {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub ports: Ports,
    pub config: PathBuf,
    pub stdout: Vec<String>,
    /// RLIMIT_NOFILE (soft and hard) the process starts with, when set.
    pub nofile: Option<u64>,
}

/// Extra settings, each appended to its section.
#[derive(Default, Clone)]
pub struct Extra {
    pub server: &'static str,
    pub imap: &'static str,
    pub pop3: &'static str,
    pub lmtp: &'static str,
    pub limits: &'static str,
    pub submission: &'static str,
    /// Whole sections, after the others.
    pub tail: &'static str,
    /// RLIMIT_NOFILE for the server process.
    pub nofile: Option<u64>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(Extra::default())
    }

    pub fn start_with(extra: Extra) -> Server {
        Server::start_on(Ports::new(), extra)
    }

    /// A server on `ports`, chosen before it starts (so other servers' configs can name them).
    pub fn start_on(ports: Ports, extra: Extra) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("ringmail.toml");
        let text = format!(
            "[server]\ndata_dir = \"{data}\"\n{workers}{demo}{server}\n\
             [imap]\nlisten = [\"127.0.0.1:{i}\"]\nlisten_tls = [\"127.0.0.1:{itls}\"]\n{imap}\n\
             [pop3]\nlisten = [\"127.0.0.1:{p}\"]\nlisten_tls = [\"127.0.0.1:{ps}\"]\n{pop3}\n\
             [submission]\nlisten = [\"127.0.0.1:{s}\"]\nlisten_tls = [\"127.0.0.1:{stls}\"]\n{submission}\n\
             [lmtp]\nlisten = [\"127.0.0.1:{l}\"]\n{lmtp}\n\
             [limits]\n{limits}\n{tail}\n",
            data = dir.path().join("data").display(),
            i = ports.imap,
            itls = ports.imaps,
            imap = extra.imap,
            p = ports.pop3,
            ps = ports.pop3s,
            l = ports.lmtp,
            s = ports.submission,
            stls = ports.submissions,
            submission = extra.submission,
            workers = if extra.server.contains("workers") {
                ""
            } else {
                "workers = 2\n"
            },
            demo = if extra.server.contains("demo_user") {
                ""
            } else {
                "demo_user = false\n"
            },
            server = extra.server,
            tail = extra.tail,
            pop3 = extra.pop3,
            lmtp = extra.lmtp,
            // Tests that are not about penalties should not wait for them.
            limits = if extra.limits.is_empty() {
                "login_failure_delay = 0"
            } else {
                extra.limits
            },
        );
        std::fs::write(&config, text).unwrap();
        let mut server = Server {
            child: None,
            dir,
            ports,
            config,
            stdout: Vec::new(),
            nofile: extra.nofile,
        };
        server.spawn();
        server
    }

    /// The first line of this server's protocol logs that contains `needle`, waited for up to
    /// 5 s (the log is written by a thread of its own).
    pub fn logged(&self, needle: &str) -> String {
        self.logged_in("", needle)
    }

    /// `logged`, in the logs of the protocol whose name starts with `protocol` only.
    pub fn logged_in(&self, protocol: &str, needle: &str) -> String {
        let logs = self.data_dir().join("logs");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let read = |e: std::fs::DirEntry| {
            let ours = e.file_name().to_string_lossy().starts_with(protocol);
            ours.then(|| std::fs::read_to_string(e.path()).ok()).flatten()
        };
        loop {
            let text: String = std::fs::read_dir(&logs)
                .map(|d| d.filter_map(|e| read(e.ok()?)).collect())
                .unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return line.to_owned();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in the log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the process and waits for "ringmail ready".
    pub fn spawn(&mut self) {
        let mut command = Command::new(bin());
        command
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(n) = self.nofile {
            use std::os::unix::process::CommandExt;
            let limit = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            // SAFETY: between fork and exec only setrlimit runs, which is async-signal-safe.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        self.stdout.clear();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let ready = line.starts_with("ringmail ready");
            self.stdout.push(line);
            if ready {
                break;
            }
        }
        assert!(
            self.stdout.last().is_some_and(|l| l.starts_with("ringmail ready")),
            "server did not start: {:?}",
            self.stdout
        );
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
            self.wait_ports_free();
        }
    }

    /// The kernel tears a dead process's io_uring down after the process is gone, and its
    /// SO_REUSEPORT listeners with it; a server started before then would share the ports
    /// with sockets about to close, and some connections would be reset.
    fn wait_ports_free(&self) {
        let ports = [
            self.ports.imap,
            self.ports.imaps,
            self.ports.pop3,
            self.ports.pop3s,
            self.ports.lmtp,
            self.ports.submission,
            self.ports.submissions,
        ];
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in ports {
            while TcpListener::bind(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "port {port} still bound after the server died"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// SIGTERM and the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn cli(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A command that refuses before reading its standard input (a reserved user name) may
        // be gone already: its answer is in the output, not in this write.
        match child.stdin.take().unwrap().write_all(stdin) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.unwrap(),
        }
        child.wait_with_output().unwrap()
    }

    pub fn add_user(&self, name: &str) {
        let out = self.cli(&["user", "add", name, "--password-stdin"], PASSWORD.as_bytes());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn set_user(&self, name: &str, args: &[&str]) {
        let mut all = vec!["user", "set", name];
        all.extend_from_slice(args);
        let out = self.cli(&all, b"");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// `ringmail deliver`; panics unless it exits 0.
    pub fn deliver(&self, user: &str, message: &[u8]) {
        let out = self.cli(&["deliver", user], message);
        assert!(
            out.status.success(),
            "deliver: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        tls_config(&self.data_dir().join("cert.pem")).unwrap()
    }

    pub fn pop3_plain(&self) -> Pop3 {
        Pop3::new(Transport::connect(self.addr(self.ports.pop3)).unwrap()).unwrap()
    }

    /// Plaintext port upgraded with STLS.
    pub fn pop3_stls(&self) -> Pop3 {
        let mut c = self.pop3_plain();
        c.stls(self.tls(), "localhost").unwrap();
        c
    }

    pub fn pop3_tls(&self) -> Pop3 {
        Pop3::new(Transport::connect_tls(self.addr(self.ports.pop3s), self.tls(), "localhost").unwrap()).unwrap()
    }

    pub fn imap_plain(&self) -> Imap {
        Imap::new(Transport::connect(self.addr(self.ports.imap)).unwrap()).unwrap()
    }

    pub fn imap_starttls(&self) -> Imap {
        let mut c = self.imap_plain();
        c.starttls(self.tls(), "localhost").unwrap();
        c
    }

    pub fn imap_tls(&self) -> Imap {
        Imap::new(Transport::connect_tls(self.addr(self.ports.imaps), self.tls(), "localhost").unwrap()).unwrap()
    }

    /// Logged in over implicit TLS as `user`.
    pub fn imap_login(&self, user: &str) -> Imap {
        let mut c = self.imap_tls();
        c.login(user, PASSWORD).unwrap().expect_ok().unwrap();
        c
    }

    pub fn lmtp(&self) -> Lmtp {
        Lmtp::new(Transport::connect(self.addr(self.ports.lmtp)).unwrap()).unwrap()
    }
}

impl Server {
    pub fn smtp_plain(&self) -> Smtp {
        Smtp::new(Transport::connect(self.addr(self.ports.submission)).unwrap()).unwrap()
    }

    /// The submission port upgraded with STARTTLS (EHLO sent before and after).
    pub fn smtp_starttls(&self) -> Smtp {
        let mut c = self.smtp_plain();
        c.ehlo("client.test").unwrap();
        c.starttls(self.tls(), "localhost").unwrap();
        c
    }

    /// The implicit-TLS submissions port, after EHLO.
    pub fn smtp_tls(&self) -> Smtp {
        let t = Transport::connect_tls(self.addr(self.ports.submissions), self.tls(), "localhost").unwrap();
        let mut c = Smtp::new(t).unwrap();
        c.ehlo("client.test").unwrap();
        c
    }

    /// Logged in as `user` over implicit TLS.
    pub fn smtp_login(&self, user: &str) -> Smtp {
        let mut c = self.smtp_tls();
        let reply = c.auth_plain(user, PASSWORD).unwrap();
        assert_eq!(reply.code, 235, "{reply:?}");
        c
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A server with user `bob` (password `PASSWORD`) holding messages `m1`..`mN` in INBOX.
pub fn bob_with(n: usize) -> Server {
    let server = Server::start();
    server.add_user("bob");
    for i in 1..=n {
        server.deliver("bob", &message(&format!("m{i}")));
    }
    server
}

/// Sends raw command bytes (`parts`, literals and all) under a fresh tag, then CRLF, and reads
/// to the command's completion.
pub fn raw(c: &mut Imap, parts: &[&[u8]]) -> loadtest::client::imap::Response {
    let tag = c.tag();
    c.t.send_raw(tag.as_bytes()).unwrap();
    c.t.send_raw(b" ").unwrap();
    for part in parts {
        c.t.send_raw(part).unwrap();
    }
    c.t.send_raw(b"\r\n").unwrap();
    c.finish(&tag).unwrap()
}

/// The lines that arrive within `wait`, up to and including the first for which `done` holds.
pub fn lines_until(c: &mut Imap, wait: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + wait;
    let mut lines = Vec::new();
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        c.t.set_read_timeout(left.max(Duration::from_millis(1))).unwrap();
        match c.read_response_line() {
            Ok(line) => {
                let line = String::from_utf8_lossy(&line).into_owned();
                let last = done(&line);
                lines.push(line);
                if last {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    c.t.set_read_timeout(Duration::from_secs(30)).unwrap();
    lines
}

/// Whether an untagged IMAP response line contains `needle`.
pub fn has(r: &loadtest::client::imap::Response, needle: &str) -> bool {
    r.lines().iter().any(|l| l.contains(needle))
}

/// A small message with a distinct subject and a body line starting with '.'.
pub fn message(subject: &str) -> Vec<u8> {
    format!(
        "From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@example.org>\r\n\r\nHello Bob.\r\n.leading dot\r\nBye.\r\n"
    )
    .into_bytes()
}

pub fn python3() -> &'static str {
    "python3"
}

/// A client's COMPRESS=DEFLATE sending side: each call deflates its text and flushes it, so
/// what it returns can be sent at once.
pub fn deflater() -> impl FnMut(&[u8]) -> Vec<u8> {
    let mut deflate = flate2::Compress::new(flate2::Compression::default(), false);
    move |text: &[u8]| {
        let mut out = Vec::with_capacity(text.len() + 64);
        deflate
            .compress_vec(text, &mut out, flate2::FlushCompress::Sync)
            .unwrap();
        out
    }
}

/// Reads `c`'s COMPRESS=DEFLATE output, inflated, until it contains `until`.
pub fn inflate_until(c: &mut Imap, inflate: &mut flate2::Decompress, until: &str) -> String {
    let mut text = Vec::new();
    while !String::from_utf8_lossy(&text).contains(until) {
        let raw = c.t.read_some().unwrap();
        assert!(!raw.is_empty(), "closed early: {}", String::from_utf8_lossy(&text));
        // Highly compressible answers inflate past any fixed ratio: go on until all is in.
        let mut used = 0;
        loop {
            let mut out = Vec::with_capacity(raw.len() * 8 + 1024);
            let before = inflate.total_in();
            inflate
                .decompress_vec(&raw[used..], &mut out, flate2::FlushDecompress::Sync)
                .unwrap();
            used += (inflate.total_in() - before) as usize;
            let full = out.len() == out.capacity();
            text.extend(out);
            if used == raw.len() && !full {
                break;
            }
        }
    }
    String::from_utf8(text).unwrap()
}

/// Runs a CPython script with `args`; panics with its output if it fails; returns stdout.
pub fn python(script: &str, args: &[String]) -> String {
    let out = Command::new(python3())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

impl Server {
    /// Runs `body` under CPython's imaplib against the IMAPS port, as `m`, an IMAP4_SSL
    /// trusting the server's certificate and logged in as `user` (with `PASSWORD` as
    /// `password`); `commands` are taught to imaplib first, which sends only commands it
    /// knows. Returns what the script printed; panics with its output if it fails.
    pub fn imaplib(&self, user: &str, commands: &[&str], body: &str) -> String {
        imaplib_at(
            self.ports.imaps,
            &self.data_dir().join("cert.pem"),
            user,
            commands,
            body,
        )
    }
}

/// `Server::imaplib` against any IMAPS port whose certificate `cafile` holds (a front end's).
pub fn imaplib_at(port: u16, cafile: &Path, user: &str, commands: &[&str], body: &str) -> String {
    let mut script = String::from(
        "import imaplib, ssl, sys\nport, cafile, password, user = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]\n",
    );
    for command in commands {
        script.push_str(&format!("imaplib.Commands[{command:?}] = (\"AUTH\", \"SELECTED\")\n"));
    }
    script.push_str(
        "m = imaplib.IMAP4_SSL(\"localhost\", port, ssl_context=ssl.create_default_context(cafile=cafile))\nm.login(user, password)\n",
    );
    script.push_str(body);
    let out = Command::new(python3())
        .args(["-c", &script])
        .arg(port.to_string())
        .arg(cafile)
        .arg(PASSWORD)
        .arg(user)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// CPU seconds the process has used so far (user + system).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf with a valid name only reads a constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / per_second
}

/// The process's peak resident memory so far, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// How far the process's peak resident memory has risen above `before` (a `peak_rss_kib`).
/// A later reading can be a few pages lower: the kernel sums its resident counters per CPU
/// only approximately when it reports them, so a peak that was never passed reads as no
/// growth rather than a negative one.
pub fn peak_rss_grown_kib(pid: u32, before: u64) -> u64 {
    peak_rss_kib(pid).saturating_sub(before)
}

/// The most anonymous memory (heap, stacks: not the store's map or a spool file's pages) a
/// process held while it was watched, sampled every millisecond.
pub struct AnonPeak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sampler: Option<std::thread::JoinHandle<u64>>,
}

impl AnonPeak {
    pub fn watch(pid: u32) -> AnonPeak {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(anon_kib(pid));
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            peak.max(anon_kib(pid))
        });
        AnonPeak {
            stop,
            sampler: Some(sampler),
        }
    }

    /// The peak, in KiB.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.sampler.take().unwrap().join().unwrap()
    }
}

/// The process's anonymous resident memory now, in KiB.
pub fn anon_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Everything a CONDSTORE/QRESYNC client sees of a user's mail, in one canonical text (CPython's
/// imaplib): per mailbox its name, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, subscription and what
/// a QRESYNC SELECT from modseq 1 reports as VANISHED (the expunge log), then per message its
/// UID, flags (without \Recent), MODSEQ, INTERNALDATE, size and a digest of its bytes.
const MAIL_STATE: &str = r#"
import hashlib, re
imaplib.Commands["ENABLE"] = ("AUTH",)
typ, _ = m._simple_command("ENABLE", "QRESYNC")
assert typ == "OK"
def names(kind):
    typ, data = m.list() if kind == "list" else m.lsub()
    out = []
    for line in data:
        if line is None:
            continue
        flags, sep, name = re.match(rb'\((.*?)\) (?:"(.)"|NIL) (.*)', line).groups()
        if b"\\Noselect" in flags or b"\\NonExistent" in flags:
            continue
        out.append(name.strip(b'"').decode())
    return sorted(out)
subscribed = set(names("lsub"))
for name in names("list"):
    typ, _ = m.select('"%s"' % name, readonly=True)
    assert typ == "OK", name
    validity = m.response("UIDVALIDITY")[1][0].decode()
    typ, status = m.status('"%s"' % name, "(UIDNEXT MESSAGES HIGHESTMODSEQ)")
    counters = re.search(rb"\((.*)\)", status[0]).group(1).decode()
    m.close()
    typ, _ = m._simple_command("EXAMINE", '"%s"' % name, "(QRESYNC (%s 1))" % validity)
    assert typ == "OK", name
    m.state = "SELECTED"
    vanished = m.response("VANISHED")[1]
    print("mailbox", name, "uidvalidity", validity, counters, "subscribed", name in subscribed, "vanished", vanished)
    typ, data = m.uid("FETCH", "1:*", "(FLAGS MODSEQ INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    for item in data:
        if not isinstance(item, tuple):
            continue
        head, body = item
        uid = re.search(rb"UID (\d+)", head).group(1).decode()
        modseq = re.search(rb"MODSEQ \((\d+)\)", head).group(1).decode()
        flags = sorted(f.decode() for f in imaplib.ParseFlags(head) if f != b"\\Recent")
        date = re.search(rb'INTERNALDATE "([^"]*)"', head).group(1).decode()
        size = re.search(rb"RFC822.SIZE (\d+)", head).group(1).decode()
        print(" ", uid, "modseq", modseq, " ".join(flags), date, size, hashlib.sha256(body).hexdigest()[:16])
    m.close()
m.logout()
"#;

impl Server {
    /// `MAIL_STATE` of `user`, over IMAPS.
    pub fn mail_state(&self, user: &str) -> String {
        self.imaplib(user, &[], MAIL_STATE)
    }
}

/// `MAIL_STATE` of `user` at any IMAPS port (a front end's).
pub fn mail_state_at(port: u16, cafile: &Path, user: &str) -> String {
    imaplib_at(port, cafile, user, &[], MAIL_STATE)
}
