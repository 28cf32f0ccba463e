//! A smarthost stand-in on loopback for the queue tests: a tiny SMTP server on its own
//! threads that records what it is given and answers each RCPT as the test scripts it —
//! accept, fail temporarily for the first n tries, or refuse for good — with STARTTLS (on the
//! certificate the test names) and AUTH PLAIN when asked to.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// A message as the smarthost took it.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub mail: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    pub tls: bool,
    pub auth: Option<String>,
}

#[derive(Clone, Default)]
pub struct Script {
    /// Each RCPT to an address starting with "temp" gets 451 this many times, then 250.
    pub temp_failures: usize,
    /// Every RCPT to an address starting with "temp" gets 451, always.
    pub always_temp: bool,
    /// STARTTLS with this certificate and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// AUTH PLAIN must be given with this user and password.
    pub auth: Option<(String, String)>,
    /// Do not offer DSN (RFC 3461), so success reports are the relaying server's job.
    pub no_dsn: bool,
}

#[derive(Default)]
pub struct Log {
    pub relayed: Vec<Relayed>,
    /// Every RCPT address in arrival order, accepted or not.
    pub rcpts: Vec<String>,
}

pub struct Smarthost {
    pub port: u16,
    pub log: Arc<Mutex<Log>>,
}

impl Smarthost {
    pub fn start(listener: TcpListener, script: Script) -> Smarthost {
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, script) = (shared.clone(), script.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &script, &log);
                });
            }
        });
        Smarthost { port, log }
    }

    pub fn relayed(&self) -> Vec<Relayed> {
        self.log.lock().unwrap().relayed.clone()
    }

    pub fn rcpts(&self) -> Vec<String> {
        self.log.lock().unwrap().rcpts.clone()
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

struct Wire {
    stream: Stream,
    buf: Vec<u8>,
}

impl Wire {
    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned());
            }
            let mut chunk = [0u8; 8192];
            let n = match &mut self.stream {
                Stream::Plain(s) => s.read(&mut chunk)?,
                Stream::Tls(s) => s.read(&mut chunk)?,
            };
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn say(&mut self, text: &str) -> io::Result<()> {
        let bytes = format!("{text}\r\n");
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes.as_bytes()),
            Stream::Tls(s) => {
                s.write_all(bytes.as_bytes())?;
                s.flush()
            }
        }
    }

    fn start_tls(&mut self, cert: &PathBuf, key: &PathBuf) -> io::Result<()> {
        let certs = CertificateDer::pem_file_iter(cert)
            .map_err(io::Error::other)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io::Error::other)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(io::Error::other)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(io::Error::other)?;
        let Stream::Plain(tcp) = &self.stream else {
            return Err(io::Error::other("TLS twice"));
        };
        let conn = ServerConnection::new(Arc::new(config)).map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, tcp.try_clone()?);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        self.stream = Stream::Tls(Box::new(tls));
        self.buf.clear();
        Ok(())
    }
}

fn serve(tcp: TcpStream, script: &Script, log: &Mutex<Log>) -> io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = Wire {
        stream: Stream::Plain(tcp),
        buf: Vec::new(),
    };
    w.say("220 smarthost.test ESMTP stand-in")?;
    let mut auth = None;
    let mut mail = String::new();
    let mut to = Vec::new();
    loop {
        let line = w.line()?;
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            w.say("250-smarthost.test")?;
            w.say("250-8BITMIME")?;
            w.say("250-SIZE 10000000")?;
            if script.tls.is_some() && matches!(w.stream, Stream::Plain(_)) {
                w.say("250-STARTTLS")?;
            }
            if script.auth.is_some() {
                w.say("250-AUTH PLAIN")?;
            }
            w.say(if script.no_dsn { "250 HELP" } else { "250 DSN" })?;
        } else if upper == "STARTTLS" {
            let (cert, key) = script.tls.clone().expect("offered only with TLS");
            w.say("220 2.0.0 go ahead")?;
            w.start_tls(&cert, &key)?;
        } else if let Some(initial) = line.strip_prefix("AUTH PLAIN ") {
            let decoded = B64.decode(initial).unwrap_or_default();
            let parts: Vec<String> = decoded
                .split(|&b| b == 0)
                .map(|p| String::from_utf8_lossy(p).into())
                .collect();
            let wanted = script.auth.clone().expect("offered only with AUTH");
            if parts.len() == 3 && parts[1] == wanted.0 && parts[2] == wanted.1 {
                auth = Some(parts[1].clone());
                w.say("235 2.7.0 ok")?;
            } else {
                w.say("535 5.7.8 no")?;
            }
        } else if upper.starts_with("MAIL FROM:") {
            if script.auth.is_some() && auth.is_none() {
                w.say("530 5.7.0 authentication required")?;
                continue;
            }
            mail = line.clone();
            to.clear();
            w.say("250 2.1.0 ok")?;
        } else if upper.starts_with("RCPT TO:") {
            let address = line[8..]
                .trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .to_owned();
            let reply = rcpt_reply(&address, script, log);
            if reply.starts_with('2') {
                to.push(address);
            }
            w.say(reply)?;
        } else if upper == "DATA" {
            w.say("354 go ahead")?;
            let data = read_data(&mut w)?;
            log.lock().unwrap().relayed.push(Relayed {
                mail: mail.clone(),
                to: std::mem::take(&mut to),
                data,
                tls: matches!(w.stream, Stream::Tls(_)),
                auth: auth.clone(),
            });
            w.say("250 2.0.0 queued at the smarthost")?;
        } else if upper == "QUIT" {
            w.say("221 2.0.0 bye")?;
            return Ok(());
        } else {
            w.say("250 2.0.0 ok")?;
        }
    }
}

fn rcpt_reply(address: &str, script: &Script, log: &Mutex<Log>) -> &'static str {
    let mut log = log.lock().unwrap();
    log.rcpts.push(address.to_owned());
    let seen = log.rcpts.iter().filter(|a| *a == address).count();
    if address.starts_with("perm") {
        "550 5.1.1 no such user at the smarthost"
    } else if address.starts_with("temp") && (script.always_temp || seen <= script.temp_failures) {
        "451 4.3.0 try again later"
    } else {
        "250 2.1.5 ok"
    }
}

fn read_data(w: &mut Wire) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        let line = w.line()?;
        if line == "." {
            return Ok(data);
        }
        let line = line.strip_prefix('.').unwrap_or(&line);
        data.extend_from_slice(line.as_bytes());
        data.extend_from_slice(b"\r\n");
    }
}
