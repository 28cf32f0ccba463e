//! The protocol log: every command and reply of the protocols that turn it on, one file per
//! protocol per day (`pop3-2026-11-26.log`), written by a thread of its own so the event
//! loops never touch a file. Sessions redact passwords and SASL data before logging.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

pub struct Entry {
    pub protocol: &'static str,
    pub session: u64,
    /// `<` from the client, `>` to the client, `*` an event.
    pub direction: char,
    pub text: String,
}

#[derive(Clone)]
pub struct ProtoLog {
    tx: mpsc::Sender<Entry>,
}

impl ProtoLog {
    pub fn start(dir: PathBuf) -> std::io::Result<ProtoLog> {
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = mpsc::channel::<Entry>();
        std::thread::Builder::new()
            .name("ringmail-protolog".into())
            .spawn(move || write_loop(&dir, rx))?;
        Ok(ProtoLog { tx })
    }

    pub fn log(&self, protocol: &'static str, session: u64, direction: char, bytes: &[u8]) {
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let _ = self.tx.send(Entry {
                protocol,
                session,
                direction,
                text: redact_urlauth(&String::from_utf8_lossy(line)),
            });
        }
    }
}

/// A URLAUTH token (RFC 4467 `;URLAUTH=access:INTERNAL:<hex>`) is a bearer secret: anyone
/// holding the URL may fetch what it names. GENURLAUTH's answer, URLFETCH and BURL carry them,
/// so the log shows `:INTERNAL:<redacted>` instead.
fn redact_urlauth(line: &str) -> String {
    const MECH: &str = ":INTERNAL:";
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.to_ascii_uppercase().find(MECH) {
        let after = at + MECH.len();
        out.push_str(&rest[..after]);
        let token = rest[after..].bytes().take_while(u8::is_ascii_hexdigit).count();
        if token > 0 {
            out.push_str("<redacted>");
        }
        rest = &rest[after + token..];
    }
    out.push_str(rest);
    out
}

fn write_loop(dir: &std::path::Path, rx: mpsc::Receiver<Entry>) {
    let mut open: Option<(String, std::io::BufWriter<std::fs::File>)> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (date, time) = civil(now);
        for e in batch {
            let name = format!("{}-{date}.log", e.protocol);
            if open.as_ref().is_none_or(|(n, _)| *n != name) {
                if let Some((_, mut w)) = open.take() {
                    let _ = w.flush();
                }
                match std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(&name))
                {
                    Ok(f) => open = Some((name, std::io::BufWriter::new(f))),
                    Err(err) => {
                        tracing::warn!("protocol log {name}: {err}");
                        continue;
                    }
                }
            }
            if let Some((_, w)) = open.as_mut() {
                let _ = writeln!(w, "{date}T{time}Z {} {} {}", e.session, e.direction, e.text);
            }
        }
        if let Some((_, w)) = open.as_mut() {
            let _ = w.flush();
        }
    }
}

/// Unix seconds to ("YYYY-MM-DD", "HH:MM:SS") in UTC.
pub fn civil(secs: u64) -> (String, String) {
    let rem = secs % 86_400;
    let (year, month, day) = crate::imap::format::civil_from_days((secs / 86_400) as i64);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, rem / 60 % 60, rem % 60),
    )
}

#[cfg(test)]
mod tests {
    use super::{civil, redact_urlauth};

    #[test]
    fn urlauth_tokens_stay_out_of_the_log() {
        let url =
            "imap://bob@h/INBOX;UIDVALIDITY=1/;UID=2;urlauth=submit+bob:internal:91354a473744909de610943775f92038";
        assert_eq!(
            redact_urlauth(&format!("a1 URLFETCH {url} {url}")),
            "a1 URLFETCH imap://bob@h/INBOX;UIDVALIDITY=1/;UID=2;urlauth=submit+bob:internal:<redacted> \
             imap://bob@h/INBOX;UIDVALIDITY=1/;UID=2;urlauth=submit+bob:internal:<redacted>"
        );
        assert_eq!(redact_urlauth("a2 GENURLAUTH x INTERNAL"), "a2 GENURLAUTH x INTERNAL");
        assert_eq!(redact_urlauth("ümlaut :INTERNAL:"), "ümlaut :INTERNAL:");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), ("1970-01-01".into(), "00:00:00".into()));
        assert_eq!(civil(951_782_400), ("2000-02-29".into(), "00:00:00".into()));
        assert_eq!(civil(1_795_698_123).0, "2026-11-26");
    }
}
