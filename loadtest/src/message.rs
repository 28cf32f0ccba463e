//! Synthetic mail for load runs: RFC 5322 headers and a plain-text body of CRLF lines of
//! about 76 characters, some of which begin with '.' so dot-stuffing is exercised on the way
//! in (LMTP) and out (POP3). Deterministic: the same spec gives the same bytes, so runs can
//! be compared. The output is the message itself, not stuffed for any transport.

use std::fmt::Write as _;

/// What to generate; `index` makes the Message-ID and the text differ between messages.
#[derive(Debug, Clone)]
pub struct MessageSpec {
    pub index: u64,
    /// Total size in bytes, headers included; met exactly unless the headers alone exceed it.
    pub size: usize,
    pub from: String,
    pub to: String,
}

impl MessageSpec {
    pub fn new(index: u64, size: usize) -> MessageSpec {
        MessageSpec {
            index,
            size,
            from: "loadtest@example.org".into(),
            to: "user@example.org".into(),
        }
    }
}

/// Body lines beginning with '.' come once per this many lines (mail quoting "..." and
/// ".signature"-like text is rare but real).
const DOT_LINE_EVERY: u64 = 37;
const LINE_WIDTH: usize = 76;

const WORDS: &[&str] = &[
    "the",
    "server",
    "message",
    "delivery",
    "mailbox",
    "throughput",
    "latency",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "for",
    "that",
    "with",
    "on",
    "as",
    "queue",
    "lmtp",
    "retrieve",
    "commit",
    "store",
    "client",
    "network",
    "buffer",
    "report",
    "quarterly",
    "meeting",
    "agenda",
    "attached",
    "please",
    "review",
    "regards",
    "tomorrow",
    "schedule",
    "project",
    "update",
];

/// xorshift64*: small, fast and good enough to vary text; not for anything secret.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Mixed so that neighbouring indexes start far apart; never zero.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One message as CRLF lines, `spec.size` bytes long.
pub fn generate(spec: &MessageSpec) -> Vec<u8> {
    let mut rng = Rng::new(spec.index);
    let mut head = String::with_capacity(512);
    // Writing to a String cannot fail.
    let _ = write!(
        head,
        "From: Load Test <{from}>\r\nTo: <{to}>\r\nSubject: load test message {index}\r\n\
         Date: Mon, 2 Mar 2026 10:00:00 +0000\r\nMessage-ID: <{index}.{seed:x}@loadtest.invalid>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n",
        from = spec.from,
        to = spec.to,
        index = spec.index,
        seed = rng.next(),
    );
    let mut out = Vec::with_capacity(spec.size.max(head.len()) + LINE_WIDTH);
    out.extend_from_slice(head.as_bytes());
    let mut line = Vec::with_capacity(LINE_WIDTH + 16);
    let mut line_no = 0u64;
    // A full line plus CRLF must fit; the remainder becomes one shorter last line.
    while out.len() + LINE_WIDTH + 2 <= spec.size {
        line.clear();
        line_no += 1;
        if line_no.is_multiple_of(DOT_LINE_EVERY) {
            line.extend_from_slice(if rng.below(2) == 0 { b"..." } else { b".sig " });
        }
        fill_words(&mut rng, &mut line, LINE_WIDTH);
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    let left = spec.size.saturating_sub(out.len());
    if left >= 3 {
        line.clear();
        fill_words(&mut rng, &mut line, left - 2);
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Appends words separated by spaces until `line` is exactly `width` bytes.
fn fill_words(rng: &mut Rng, line: &mut Vec<u8>, width: usize) {
    while line.len() < width {
        if !line.is_empty() && line.last() != Some(&b' ') {
            line.push(b' ');
        }
        let word = WORDS[rng.below(WORDS.len())].as_bytes();
        line.extend_from_slice(word);
    }
    line.truncate(width);
    // A line ending in a space reads oddly and some servers strip it; end on a letter.
    if let Some(last) = line.last_mut() {
        if *last == b' ' {
            *last = b'x';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_crlf_and_short() {
        let message = generate(&MessageSpec::new(1, 100 * 1024));
        assert!(message.ends_with(b"\r\n"));
        for line in message.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            assert_eq!(
                line.last(),
                Some(&b'\r'),
                "bare LF in {:?}",
                String::from_utf8_lossy(line)
            );
            assert!(line.len() <= 998, "line longer than RFC 5322 allows");
            assert!(!line[..line.len() - 1].contains(&b'\r'), "bare CR");
        }
    }

    #[test]
    fn body_has_dot_lines_and_header_ends_with_blank_line() {
        let message = generate(&MessageSpec::new(2, 8 * 1024));
        let text = String::from_utf8(message).expect("generator writes ASCII");
        let (head, body) = text.split_once("\r\n\r\n").expect("a header/body separator");
        assert!(head.contains("Message-ID: <2."));
        assert!(body.lines().any(|l| l.starts_with('.')), "no line begins with '.'");
    }

    #[test]
    fn size_is_within_one_percent() {
        for size in [1_000, 4096, 10_000, 100 * 1024, 1 << 20] {
            for index in 0..5 {
                let len = generate(&MessageSpec::new(index, size)).len();
                let off = (len as f64 - size as f64).abs() / size as f64;
                assert!(off <= 0.01, "size {size} index {index}: got {len}");
            }
        }
    }

    #[test]
    fn same_spec_same_bytes_different_index_different_bytes() {
        let a = generate(&MessageSpec::new(3, 4096));
        assert_eq!(a, generate(&MessageSpec::new(3, 4096)));
        assert_ne!(a, generate(&MessageSpec::new(4, 4096)));
    }
}
