//! IMAP bulk download: `FETCH 1:* BODY.PEEK[]` of a whole mailbox, beside raw loopback TCP
//! measured in the same run, plaintext and over implicit TLS (imaps).
//!
//! The passes, the raw reference, the CPU figures and the report are `bulk`'s, so the IMAP
//! figures read like the POP3 ones. One command fetches every message; the server streams
//! the responses and the harness reads them with `FetchScanner` from the same 256 KiB buffer
//! the raw reader uses. The scanner only looks at the short response lines (`* n FETCH
//! (BODY[] {len}`) and skips each literal by counting its length, so the message bytes are
//! never touched or copied after the read, as in the raw reader. The mailbox is opened with
//! EXAMINE and fetched with BODY.PEEK, so nothing in it changes (not even `\Seen`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;

use super::bulk::{run_passes, Download, Kind, Passes, Protocol, Stopwatch, IO_BUFFER};
use super::check_deadline;
use crate::Common;
use loadtest::client::imap::{literal_len, quote, Imap};
use loadtest::client::Transport;

/// A response line (outside literals) longer than this is an error, not a reason to buffer
/// without bound.
const MAX_LINE: usize = 1 << 20;

#[derive(Args, Debug)]
pub struct ImapBulkArgs {
    #[command(flatten)]
    common: Common,
    /// Plaintext IMAP port; the server must allow LOGIN without TLS there (ringmail:
    /// `login_type = "plain-text-login"` under [imap]).
    #[arg(long, default_value_t = 143)]
    imap_port: u16,
    /// Port of implicit-TLS IMAP; 0 skips the TLS measurement.
    #[arg(long, default_value_t = 993)]
    imaps_port: u16,
    /// The server's certificate (ringmail: data_dir/cert.pem), trusted for the TLS run.
    #[arg(long)]
    cafile: Option<PathBuf>,
    /// Name the certificate is checked against.
    #[arg(long, default_value = "localhost")]
    tls_name: String,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    /// The mailbox to download (`loadtest seed` delivers into INBOX).
    #[arg(long, default_value = "INBOX")]
    mailbox: String,
    /// Bytes for the raw loopback reference.
    #[arg(long, default_value_t = 1 << 30)]
    raw_bytes: u64,
    /// The server's process id, to report its CPU time per measurement.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The front end's process id, when the download goes through `ringmail proxy`: its
    /// CPU time is reported beside the server's.
    #[arg(long)]
    front_pid: Option<u32>,
    /// Rounds of raw, plaintext and TLS. The first download of a freshly started server also
    /// pays for mapping the store's pages in; later passes show the steady state.
    #[arg(long, default_value_t = 3)]
    passes: u32,
}

pub fn run(args: &ImapBulkArgs) -> anyhow::Result<()> {
    let protocol = Protocol {
        name: "IMAP",
        scenario: "imap-bulk",
        plaintext_label: "IMAP plaintext",
        tls_label: "IMAP TLS (imaps)",
        tls_port_flag: "imaps-port",
    };
    let passes = Passes {
        common: &args.common,
        passes: args.passes,
        raw_bytes: args.raw_bytes,
        server_pid: args.server_pid,
        plaintext_port: args.imap_port,
        tls_port: args.imaps_port,
        cafile: args.cafile.as_deref(),
        tls_name: &args.tls_name,
    };
    run_passes(&passes, &protocol, |t, kind, name, deadline| {
        download(t, args, kind, name, deadline)
    })
}

/// Logs in, EXAMINEs the mailbox, FETCHes every message (timed), and LOGs OUT.
fn download(t: Transport, args: &ImapBulkArgs, kind: Kind, name: &str, deadline: Instant) -> anyhow::Result<Download> {
    let mut imap = Imap::new(t).context("greeting")?;
    let login = imap.login(&args.user, &args.password).context("LOGIN")?;
    if !login.ok() {
        bail!("LOGIN as {} refused: {} {}", args.user, login.status, login.text);
    }
    let mailbox = quote(&args.mailbox);
    // STATUS before EXAMINE (RFC 9051 §6.3.11 advises against STATUS on the selected
    // mailbox). SIZE (RFC 8438) is optional: without it the byte total is not checked.
    let status = imap
        .cmd(&format!("STATUS {mailbox} (MESSAGES SIZE)"))
        .context("STATUS")?;
    let total = if status.ok() {
        status.lines().iter().find_map(|l| status_item(l, "SIZE"))
    } else {
        None
    };
    let examine = imap.cmd(&format!("EXAMINE {mailbox}")).context("EXAMINE")?;
    if !examine.ok() {
        bail!("EXAMINE {}: {} {}", args.mailbox, examine.status, examine.text);
    }
    let exists = examine
        .lines()
        .iter()
        .find_map(|l| exists(l))
        .context("EXAMINE gave no EXISTS")?;
    if exists == 0 {
        bail!("{} of {} is empty: run `loadtest seed` first", args.mailbox, args.user);
    }

    let stopwatch = Stopwatch::start(args.server_pid, args.front_pid);
    let tag = imap.tag();
    imap.t
        .send_raw(format!("{tag} FETCH 1:* BODY.PEEK[]\r\n").as_bytes())
        .context("sending FETCH")?;
    let mut scanner = FetchScanner::new(&tag);
    let mut buf = vec![0u8; IO_BUFFER];
    let mut wire_bytes = 0u64;
    let tagged = loop {
        let n = imap.t.read_available(&mut buf).context("reading the FETCH responses")?;
        if n == 0 {
            bail!(
                "the server closed the connection after {} of {exists} messages",
                scanner.fetches
            );
        }
        wire_bytes += n as u64;
        if let Some(done) = scanner.feed(&buf[..n]).context("reading the FETCH responses")? {
            break done;
        }
        check_deadline(deadline, "downloading")?;
    };
    let measured = stopwatch.stop(kind, name, scanner.literal_bytes, wire_bytes);
    if !tagged.ok {
        bail!(
            "FETCH 1:* failed after {} messages: {}",
            scanner.fetches,
            String::from_utf8_lossy(&tagged.line)
        );
    }
    // The mailbox is not ours: it is not an error if something was delivered meanwhile,
    // but the figures should say what they measured.
    if scanner.fetches != exists as u64 {
        eprintln!(
            "{name}: {} FETCH responses, EXAMINE said {exists} messages",
            scanner.fetches
        );
    }
    if let Some(total) = total.filter(|&t| t != scanner.literal_bytes) {
        eprintln!(
            "{name}: downloaded {} message bytes, STATUS said SIZE {total}",
            scanner.literal_bytes
        );
    }
    // LOGOUT's reply is not worth failing a measurement over.
    let _ = imap.cmd("LOGOUT");
    Ok(Download {
        measured,
        messages: scanner.fetches as usize,
        pipeline_depth: None,
    })
}

/// `n` of `* n EXISTS`.
fn exists(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("* ")?;
    let (n, word) = rest.split_once(' ')?;
    word.eq_ignore_ascii_case("EXISTS").then(|| n.parse().ok())?
}

/// The number after `item` in `* STATUS mailbox (MESSAGES n SIZE m)`.
fn status_item(line: &str, item: &str) -> Option<u64> {
    if !line.get(..9)?.eq_ignore_ascii_case("* STATUS ") {
        return None;
    }
    let list = &line[line.rfind('(')? + 1..line.rfind(')')?];
    let mut words = list.split_ascii_whitespace();
    while let Some(word) = words.next() {
        let value = words.next()?;
        if word.eq_ignore_ascii_case(item) {
            return value.parse().ok();
        }
    }
    None
}

/// The tagged reply that ended the scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    /// Bytes of the last input up to and including the tagged line's LF.
    pub used: usize,
    /// Whether the status was OK (not NO or BAD).
    pub ok: bool,
    /// The tagged line without its CRLF.
    pub line: Vec<u8>,
}

/// A resumable reader of a command's responses: it finds the response lines, counts FETCH
/// responses, skips every literal (`{len}` or `~{len}` at the end of a line) by its length
/// without looking at its bytes, and stops at the line tagged with the command's tag.
///
/// Input may be split anywhere. A line is searched for once with `memchr`; only a line split
/// between two inputs is copied (into one buffer kept for the whole scan), so the scanner
/// does no per-line allocation and the literals cost nothing but a subtraction.
#[derive(Debug)]
pub struct FetchScanner {
    /// "tag " as it starts the tagged reply.
    tag: Vec<u8>,
    /// The start of a line that began in an earlier input.
    partial: Vec<u8>,
    /// Literal bytes still to skip.
    literal_left: u64,
    /// The next line begins a response (rather than continuing one after a literal).
    at_response_start: bool,
    /// Untagged FETCH responses seen.
    pub fetches: u64,
    /// Literals seen, and their bytes (the message bytes of `BODY[]`).
    pub literals: u64,
    pub literal_bytes: u64,
}

impl FetchScanner {
    pub fn new(tag: &str) -> FetchScanner {
        let mut prefix = tag.as_bytes().to_vec();
        prefix.push(b' ');
        FetchScanner {
            tag: prefix,
            partial: Vec::new(),
            literal_left: 0,
            at_response_start: true,
            fetches: 0,
            literals: 0,
            literal_bytes: 0,
        }
    }

    /// Feeds the next bytes. `Ok(Some(tagged))` once the tagged reply has been read (what
    /// follows it in `input` is not this command's); `Ok(None)` if more input is needed.
    pub fn feed(&mut self, input: &[u8]) -> std::io::Result<Option<Tagged>> {
        let mut pos = 0;
        while pos < input.len() {
            if self.literal_left > 0 {
                let n = self.literal_left.min((input.len() - pos) as u64);
                self.literal_left -= n;
                self.literal_bytes += n;
                pos += n as usize;
                continue;
            }
            let rest = &input[pos..];
            let Some(i) = memchr::memchr(b'\n', rest) else {
                if self.partial.len() + rest.len() > MAX_LINE {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "response line longer than 1 MiB",
                    ));
                }
                self.partial.extend_from_slice(rest);
                break;
            };
            pos += i + 1;
            let done = if self.partial.is_empty() {
                self.line(&rest[..i]).map(|ok| (ok, rest[..i].to_vec()))
            } else {
                self.partial.extend_from_slice(&rest[..i]);
                // Taken and put back, so its capacity is kept for the next split line.
                let partial = std::mem::take(&mut self.partial);
                let done = self.line(&partial).map(|ok| (ok, partial.clone()));
                self.partial = partial;
                self.partial.clear();
                done
            };
            if let Some((ok, mut line)) = done {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(Tagged { used: pos, ok, line }));
            }
        }
        Ok(None)
    }

    /// Handles one line without its LF; `Some(ok)` if it is the tagged reply.
    fn line(&mut self, line: &[u8]) -> Option<bool> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let starts_response = self.at_response_start;
        if starts_response && line.starts_with(&self.tag) {
            let status = &line[self.tag.len()..];
            let ok = status.len() >= 2 && status[..2].eq_ignore_ascii_case(b"OK");
            return Some(ok);
        }
        if starts_response && is_fetch(line) {
            self.fetches += 1;
        }
        match literal_len(line) {
            Some(n) => {
                self.literals += 1;
                self.literal_left = n as u64;
                self.at_response_start = false;
            }
            None => self.at_response_start = true,
        }
        None
    }
}

/// `* n FETCH ...`
fn is_fetch(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"* ") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0
        && rest[digits..]
            .get(..7)
            .is_some_and(|w| w.eq_ignore_ascii_case(b" FETCH "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server's reply to `a7 FETCH 1:* BODY.PEEK[]`: untagged lines that are not FETCH,
    /// literals of several sizes (empty, one byte, with CRLF and braces inside, one that
    /// looks like a tagged reply), a literal8, and the tagged OK followed by unrelated bytes.
    fn wire() -> (Vec<u8>, Vec<Vec<u8>>) {
        let bodies: Vec<Vec<u8>> = vec![
            b"Subject: one\r\n\r\nbody {3}\r\n".to_vec(),
            Vec::new(),
            b"x".to_vec(),
            b"a7 OK not the end\r\n* 9 FETCH (BODY[] {2}\r\n".to_vec(),
            (0..3_000u32).map(|i| (i % 251) as u8).collect(),
        ];
        let mut w = b"* 12 EXISTS\r\n* OK [ALERT] {not a literal} here\r\n".to_vec();
        for (i, body) in bodies.iter().enumerate() {
            let open = if i == 2 { "~{" } else { "{" };
            w.extend_from_slice(
                format!("* {} FETCH (UID {} BODY[] {open}{}}}\r\n", i + 1, i + 10, body.len()).as_bytes(),
            );
            w.extend_from_slice(body);
            w.extend_from_slice(b")\r\n");
        }
        // Two literals in one response.
        w.extend_from_slice(b"* 6 FETCH (BODY[HEADER] {4}\r\nab\r\n BODY[TEXT] {3}\r\nxyz)\r\n");
        w.extend_from_slice(b"* 3 EXPUNGE\r\na7 OK FETCH completed\r\nNEXT");
        (w, bodies)
    }

    /// Feeds `pieces` to a new scanner: its figures, and where the tagged reply ended in the
    /// whole input with the reply (its `used` made relative to the whole input too).
    fn scan(pieces: &[&[u8]]) -> (u64, u64, u64, Option<(usize, Tagged)>) {
        let mut s = FetchScanner::new("a7");
        let mut offset = 0;
        for piece in pieces {
            if let Some(mut t) = s.feed(piece).expect("well formed") {
                assert!(t.used <= piece.len());
                t.used += offset;
                return (s.fetches, s.literals, s.literal_bytes, Some((t.used, t)));
            }
            offset += piece.len();
        }
        (s.fetches, s.literals, s.literal_bytes, None)
    }

    #[test]
    fn counts_literals_and_finds_the_tagged_ok() {
        let (w, bodies) = wire();
        let body_bytes: u64 = bodies.iter().map(|b| b.len() as u64).sum();
        let (fetches, literals, bytes, end) = scan(&[&w]);
        assert_eq!(fetches, 6);
        assert_eq!(literals, 7);
        assert_eq!(bytes, body_bytes + 4 + 3);
        let (end, tagged) = end.expect("tagged reply found");
        assert_eq!(end, w.len() - 4, "stops right after the tagged line");
        assert!(tagged.ok);
        assert_eq!(tagged.line, b"a7 OK FETCH completed");
    }

    #[test]
    fn every_split_gives_the_same_result() {
        let (w, _) = wire();
        let whole = scan(&[&w]);
        for cut in 0..=w.len() {
            assert_eq!(scan(&[&w[..cut], &w[cut..]]), whole, "cut at {cut}");
        }
        // Three pieces, the middle one short: a line or a literal's length split twice.
        for a in 0..=w.len() {
            for b in [1, 2, 3, 5, 8, 13, 40].map(|k| (a + k).min(w.len())) {
                assert_eq!(scan(&[&w[..a], &w[a..b], &w[b..]]), whole, "cuts at {a}, {b}");
            }
        }
        let bytes: Vec<&[u8]> = w.chunks(1).collect();
        assert_eq!(scan(&bytes), whole, "byte by byte");
    }

    #[test]
    fn large_literals_are_counted_across_reads() {
        let size = 5 * IO_BUFFER + 123;
        let mut w = format!("* 1 FETCH (BODY[] {{{size}}}\r\n").into_bytes();
        w.resize(w.len() + size, b'.');
        w.extend_from_slice(b")\r\na7 OK done\r\n");
        let pieces: Vec<&[u8]> = w.chunks(IO_BUFFER).collect();
        let (fetches, literals, bytes, end) = scan(&pieces);
        assert_eq!((fetches, literals, bytes), (1, 1, size as u64));
        assert_eq!(end.expect("found").0, w.len());
    }

    #[test]
    fn no_and_bad_are_not_ok() {
        let (_, _, _, end) = scan(&[b"* 1 FETCH (BODY[] {1}\r\nx)\r\na7 NO [SERVERBUG] failed\r\n"]);
        let (_, tagged) = end.expect("found");
        assert!(!tagged.ok);
        assert_eq!(tagged.line, b"a7 NO [SERVERBUG] failed");
        let (_, _, _, end) = scan(&[b"a7 bad syntax\r\n"]);
        assert!(!end.expect("found").1.ok);
        // Another tag is not ours.
        assert_eq!(scan(&[b"a70 OK other\r\n"]).3, None);
    }

    #[test]
    fn incomplete_input_asks_for_more() {
        let (w, _) = wire();
        let (_, _, _, end) = scan(&[&w[..w.len() - 10]]);
        assert_eq!(end, None);
        assert_eq!(
            scan(&[b"* 1 FETCH (BODY[] {10}\r\na7 OK\r\n"]).3,
            None,
            "a7 OK is inside the literal"
        );
    }

    #[test]
    fn overlong_lines_are_refused() {
        let mut s = FetchScanner::new("a1");
        let chunk = vec![b'x'; 64 * 1024];
        let mut failed = false;
        for _ in 0..20 {
            if s.feed(&chunk).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }

    #[test]
    fn examine_and_status_replies() {
        assert_eq!(exists("* 10000 EXISTS"), Some(10_000));
        assert_eq!(exists("* 3 RECENT"), None);
        assert_eq!(exists("* OK [UIDVALIDITY 1]"), None);
        assert_eq!(
            status_item("* STATUS INBOX (MESSAGES 10000 SIZE 1024000000)", "SIZE"),
            Some(1_024_000_000)
        );
        assert_eq!(
            status_item("* STATUS \"a (b)\" (MESSAGES 2 SIZE 9)", "MESSAGES"),
            Some(2)
        );
        assert_eq!(status_item("* STATUS INBOX (MESSAGES 2)", "SIZE"), None);
        assert_eq!(status_item("* LIST () \"/\" INBOX", "SIZE"), None);
    }

    #[test]
    fn fetch_lines() {
        assert!(is_fetch(b"* 1 FETCH (BODY[] {3}"));
        assert!(is_fetch(b"* 10000 fetch (UID 4)"));
        assert!(!is_fetch(b"* 1 EXPUNGE"));
        assert!(!is_fetch(b"* OK FETCH "));
        assert!(!is_fetch(b"a1 FETCH "));
    }
}
