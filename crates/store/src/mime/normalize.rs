//! Line-ending canonicalisation of a message before it is stored.
//!
//! Owns the single rewrite ringmail ever applies to message bytes: every bare LF and every bare CR
//! becomes CRLF. Afterwards every size the server reports (RFC 1939 LIST/STAT octet counts, IMAP
//! RFC822.SIZE, BODYSTRUCTURE sizes, literal lengths) is the size of what is actually sent.
//! It never touches any other byte: no header rewriting, no dot-stuffing, no charset work.

use std::borrow::Cow;

/// Bare LF → CRLF, bare CR → CRLF (so every size reported is exact).
///
/// Returns `Cow::Borrowed` when the input is already canonical, which is the common case for
/// mail arriving over SMTP/LMTP (RFC 5321 §2.3.8 mandates CRLF on the wire).
pub fn normalize_line_endings(raw: &[u8]) -> Cow<'_, [u8]> {
    match first_bare(raw) {
        None => Cow::Borrowed(raw),
        Some(first) => Cow::Owned(rewrite(raw, first)),
    }
}

/// Offset of the first CR or LF that is not part of a CRLF pair.
pub(crate) fn first_bare(raw: &[u8]) -> Option<usize> {
    // memchr2 skips the (long) runs of ordinary bytes between line ends.
    let mut iter = memchr::memchr2_iter(b'\r', b'\n', raw);
    while let Some(i) = iter.next() {
        if raw[i] == b'\n' {
            // Every LF reached here is bare: the LF of a CRLF is consumed with its CR below.
            return Some(i);
        }
        if raw.get(i + 1) != Some(&b'\n') {
            return Some(i);
        }
        // Skip the LF that completes this CRLF.
        iter.next();
    }
    None
}

fn rewrite(raw: &[u8], first: usize) -> Vec<u8> {
    // Each bare byte grows by one; the exact count is not worth a second pass.
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 2);
    out.extend_from_slice(&raw[..first]);
    let mut pos = first;
    while pos < raw.len() {
        let rest = &raw[pos..];
        match memchr::memchr2(b'\r', b'\n', rest) {
            None => {
                out.extend_from_slice(rest);
                break;
            }
            Some(i) => {
                out.extend_from_slice(&rest[..i]);
                out.extend_from_slice(b"\r\n");
                let crlf = rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n');
                pos += i + if crlf { 2 } else { 1 };
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&[u8], &[u8], bool)] = &[
            (b"", b"", true),
            (b"abc", b"abc", true),
            (b"a\r\nb\r\n", b"a\r\nb\r\n", true),
            (b"a\nb\n", b"a\r\nb\r\n", false),
            (b"a\rb\r", b"a\r\nb\r\n", false),
            (b"\n", b"\r\n", false),
            (b"\r", b"\r\n", false),
            (b"\r\r\n", b"\r\n\r\n", false),
            (b"\n\r", b"\r\n\r\n", false),
            (b"\r\n\n", b"\r\n\r\n", false),
            (b"a\r\nb\nc\rd\r\n", b"a\r\nb\r\nc\r\nd\r\n", false),
            (b"x\xff\n\x80", b"x\xff\r\n\x80", false),
        ];
        for (input, want, borrowed) in cases {
            let got = normalize_line_endings(input);
            assert_eq!(&got[..], *want, "input {:?}", String::from_utf8_lossy(input));
            assert_eq!(matches!(got, Cow::Borrowed(_)), *borrowed, "input {input:?}");
        }
    }

    #[test]
    fn idempotent_and_canonical() {
        let mut seed = 0x1234_5678u32;
        for _ in 0..200 {
            let mut buf = Vec::new();
            for _ in 0..64 {
                // xorshift: deterministic pseudo-random mixes of CR, LF and text.
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                buf.push([b'\r', b'\n', b'a', b'.'][(seed % 4) as usize]);
            }
            let once = normalize_line_endings(&buf).into_owned();
            assert!(first_bare(&once).is_none());
            assert!(matches!(normalize_line_endings(&once), Cow::Borrowed(_)));
            let text_in: Vec<u8> = buf.iter().copied().filter(|b| !b"\r\n".contains(b)).collect();
            let text_out: Vec<u8> = once.iter().copied().filter(|b| !b"\r\n".contains(b)).collect();
            assert_eq!(text_in, text_out);
        }
    }
}
