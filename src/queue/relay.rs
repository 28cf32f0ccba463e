//! One delivery attempt to the smarthost over blocking std::net, with STARTTLS (rustls client,
//! certificate verified) and AUTH PLAIN when configured. Runs on the queue runner's own thread,
//! never on a core loop. The protocol pieces (replies, capabilities, command lines) come from
//! `smtp::client`; this file owns only the socket and the order of the dialogue.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::smtp::client::{self, Capabilities, Reply, ReplyParser};
use crate::store::{QueueEntry, QueuedRecipient};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// RFC 5321 §4.5.3.2 allows up to 10 minutes for the reply to the final dot.
const IO_TIMEOUT: Duration = Duration::from_secs(600);
const MAX_REPLY_LINE: usize = 4096;

/// How to reach the smarthost.
#[derive(Clone)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    /// Required STARTTLS, with this client configuration (None: no usable CAs were found).
    pub tls: Option<Option<Arc<ClientConfig>>>,
    pub auth: Option<(String, String)>,
    /// Our name in EHLO.
    pub helo: String,
}

/// What became of one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Stored in its mailbox by the back end of this cluster that holds it (LMTP).
    Stored,
    /// Try again later; the reason.
    Temporary(String),
    /// Bounce, with the RFC 3463 status and the server's reply.
    Permanent {
        status: String,
        reply: String,
    },
}

/// One attempt's outcome per recipient, in order.
pub struct Attempt {
    pub outcomes: Vec<Outcome>,
    /// The smarthost took the DSN parameters, so reports of success are its business.
    pub dsn_passed_on: bool,
}

/// A failure of the whole attempt, before recipients were considered one by one.
struct Failed(Outcome);

impl From<io::Error> for Failed {
    fn from(e: io::Error) -> Failed {
        Failed(Outcome::Temporary(format!("smarthost: {e}")))
    }
}

/// The outcome for a reply that failed a step of the dialogue.
fn from_reply(reply: &Reply) -> Outcome {
    let text = reply.text();
    if reply.is_permanent() {
        let status = reply.enhanced().map_or_else(|| "5.0.0".to_owned(), str::to_owned);
        Outcome::Permanent { status, reply: text }
    } else {
        Outcome::Temporary(text)
    }
}

/// Delivers `message` to the entry's recipients.
pub fn deliver(relay: &Relay, entry: &QueueEntry, message: &[u8]) -> Attempt {
    let mut dsn_passed_on = false;
    match attempt(relay, entry, message, &mut dsn_passed_on) {
        Ok(outcomes) => Attempt {
            outcomes,
            dsn_passed_on,
        },
        Err(Failed(outcome)) => Attempt {
            outcomes: vec![outcome; entry.recipients.len()],
            dsn_passed_on,
        },
    }
}

fn attempt(relay: &Relay, entry: &QueueEntry, message: &[u8], dsn: &mut bool) -> Result<Vec<Outcome>, Failed> {
    let mut wire = Wire::connect(&relay.host, relay.port)?;
    wire.expect(220)?;
    let mut caps = wire.ehlo(&relay.helo)?;
    if let Some(tls) = &relay.tls {
        let tls = tls
            .clone()
            .ok_or_else(|| Failed(Outcome::Temporary("no CA certificates to verify the smarthost".into())))?;
        if !caps.starttls {
            return Err(Failed(Outcome::Temporary("smarthost does not offer STARTTLS".into())));
        }
        wire.command("STARTTLS")?;
        wire.expect(220)?;
        wire.start_tls(tls, &relay.host)?;
        caps = wire.ehlo(&relay.helo)?;
    }
    if let Some((user, password)) = &relay.auth {
        wire.command(&format!("AUTH PLAIN {}", client::auth_plain(user, password)))?;
        wire.expect(235)?;
    }
    let mail = client::mail_line(&entry.from, message.len() as u64, &entry.params, &caps).map_err(|e| {
        let text = e.to_string();
        let status = text.split(' ').nth(1).unwrap_or("5.0.0").to_owned();
        Failed(Outcome::Permanent { status, reply: text })
    })?;
    *dsn = caps.dsn;
    wire.command(&mail)?;
    wire.expect(250)?;
    let mut outcomes = Vec::with_capacity(entry.recipients.len());
    for r in &entry.recipients {
        outcomes.push(rcpt(&mut wire, r, &caps)?);
    }
    if !outcomes.contains(&Outcome::Delivered) {
        let _ = wire.command("QUIT");
        return Ok(outcomes);
    }
    if let Err(Failed(failure)) = data(&mut wire, message) {
        // Recipients refused at RCPT keep their own outcome.
        for o in outcomes.iter_mut().filter(|o| **o == Outcome::Delivered) {
            *o = failure.clone();
        }
        return Ok(outcomes);
    }
    let _ = wire.command("QUIT");
    Ok(outcomes)
}

/// Delivers `message` over LMTP to `recipients` of the entry, whose mailboxes the back end at
/// `addr` holds (RFC 2033: one reply per accepted recipient after the data).
pub fn deliver_lmtp(
    addr: SocketAddr,
    helo: &str,
    entry: &QueueEntry,
    recipients: &[&QueuedRecipient],
    message: &[u8],
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(recipients.len());
    let result = (|| {
        let mut wire = Wire::connect(&addr.ip().to_string(), addr.port())?;
        wire.expect(220)?;
        wire.command(&format!("LHLO {helo}"))?;
        let caps = Capabilities::from_ehlo(&wire.expect(250)?);
        let mail = client::mail_line(&entry.from, message.len() as u64, &entry.params, &caps)
            .map_err(|e| Failed(Outcome::Temporary(e.to_string())))?;
        wire.command(&mail)?;
        wire.expect(250)?;
        for r in recipients {
            wire.command(&client::rcpt_line(&r.address, &r.params, &caps))?;
            let reply = wire.reply()?;
            outcomes.push(if reply.is_positive() {
                Outcome::Stored
            } else {
                from_reply(&reply)
            });
        }
        if outcomes.contains(&Outcome::Stored) {
            wire.command("DATA")?;
            wire.expect(354)?;
            wire.send(&client::stuff(message))?;
            for o in outcomes.iter_mut().filter(|o| **o == Outcome::Stored) {
                let reply = wire.reply()?;
                if !reply.is_positive() {
                    *o = from_reply(&reply);
                }
            }
        }
        let _ = wire.command("QUIT");
        Ok::<(), Failed>(())
    })();
    if let Err(Failed(failure)) = result {
        // Recipients refused at RCPT keep their own outcome; the others share the failure.
        outcomes.resize(recipients.len(), failure.clone());
        for o in outcomes.iter_mut().filter(|o| **o == Outcome::Stored) {
            *o = failure.clone();
        }
    }
    outcomes
}

fn data(wire: &mut Wire, message: &[u8]) -> Result<(), Failed> {
    wire.command("DATA")?;
    wire.expect(354)?;
    wire.send(&client::stuff(message))?;
    wire.expect(250)?;
    Ok(())
}

fn rcpt(wire: &mut Wire, r: &QueuedRecipient, caps: &Capabilities) -> Result<Outcome, Failed> {
    wire.command(&client::rcpt_line(&r.address, &r.params, caps))?;
    let reply = wire.reply()?;
    Ok(if reply.is_positive() {
        Outcome::Delivered
    } else {
        from_reply(&reply)
    })
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

struct Wire {
    stream: Stream,
    buf: Vec<u8>,
}

impl Wire {
    fn connect(host: &str, port: u16) -> Result<Wire, Failed> {
        let mut last = io::Error::other("no address");
        for addr in (host, port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(tcp) => {
                    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
                    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
                    return Ok(Wire {
                        stream: Stream::Plain(tcp),
                        buf: Vec::new(),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last.into())
    }

    fn start_tls(&mut self, config: Arc<ClientConfig>, host: &str) -> Result<(), Failed> {
        let Stream::Plain(tcp) = &self.stream else {
            return Err(io::Error::other("TLS already on").into());
        };
        let name = ServerName::try_from(host.to_owned()).map_err(io::Error::other)?;
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut tls = StreamOwned::new(conn, tcp.try_clone()?);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        self.stream = Stream::Tls(Box::new(tls));
        self.buf.clear();
        Ok(())
    }

    fn ehlo(&mut self, helo: &str) -> Result<Capabilities, Failed> {
        self.command(&format!("EHLO {helo}"))?;
        let reply = self.expect(250)?;
        Ok(Capabilities::from_ehlo(&reply))
    }

    fn command(&mut self, line: &str) -> Result<(), Failed> {
        self.send(format!("{line}\r\n").as_bytes())
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Failed> {
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes)?,
            Stream::Tls(s) => {
                s.write_all(bytes)?;
                s.flush()?;
            }
        }
        Ok(())
    }

    /// The next reply, which must have `code`.
    fn expect(&mut self, code: u16) -> Result<Reply, Failed> {
        let reply = self.reply()?;
        if reply.code == code {
            Ok(reply)
        } else {
            Err(Failed(from_reply(&reply)))
        }
    }

    fn reply(&mut self) -> Result<Reply, Failed> {
        let mut parser = ReplyParser::default();
        loop {
            let line = self.read_line()?;
            let parsed = parser
                .line(&line)
                .map_err(|e| Failed(Outcome::Temporary(format!("smarthost: {e}"))))?;
            if let Some(reply) = parsed {
                return Ok(reply);
            }
        }
    }

    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf) {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > MAX_REPLY_LINE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "reply line too long"));
            }
            let mut chunk = [0u8; 4096];
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
}
