//! Modified UTF-7 mailbox names (RFC 3501 §5.1.3): what IMAP4rev1 clients send and expect.
//! Names are stored as UTF-8; IMAP4rev2 and UTF8=ACCEPT clients (RFC 9051 §5.1, RFC 6855) see
//! them as they are.

use base64::alphabet::Alphabet;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// RFC 3501's base64 variant: ',' instead of '/', no padding.
fn engine() -> GeneralPurpose {
    let alphabet = Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")
        .expect("64 distinct printable characters");
    GeneralPurpose::new(
        &alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid modified UTF-7 mailbox name")]
pub struct Invalid;

/// Decodes a modified UTF-7 name to UTF-8, refusing non-canonical forms (RFC 3501 §5.1.3:
/// printable US-ASCII must not be encoded; "&-" is '&').
pub fn decode(name: &str) -> Result<String, Invalid> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('&') {
        let (plain, tail) = rest.split_at(i);
        if plain.bytes().any(|b| !(0x20..=0x7e).contains(&b)) {
            return Err(Invalid);
        }
        out.push_str(plain);
        let end = tail.find('-').ok_or(Invalid)?;
        let encoded = &tail[1..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = engine().decode(encoded).map_err(|_| Invalid)?;
            if bytes.len() % 2 != 0 {
                return Err(Invalid);
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            let text = String::from_utf16(&units).map_err(|_| Invalid)?;
            if text.chars().any(|c| (' '..='~').contains(&c)) {
                return Err(Invalid);
            }
            out.push_str(&text);
        }
        rest = &tail[end + 1..];
    }
    if rest.bytes().any(|b| !(0x20..=0x7e).contains(&b)) {
        return Err(Invalid);
    }
    out.push_str(rest);
    Ok(out)
}

/// Encodes a UTF-8 name for an IMAP4rev1 client.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&engine().encode(bytes));
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples_and_round_trips() {
        // RFC 3501 §5.1.3's example.
        assert_eq!(
            decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-").unwrap(),
            "~peter/mail/台北/日本語"
        );
        assert_eq!(encode("~peter/mail/台北/日本語"), "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
        for name in ["INBOX", "Tom & Jerry", "Entwürfe", "Отправленные", "😀 emoji", "a&b&&c"] {
            assert_eq!(decode(&encode(name)).unwrap(), name, "{name}");
        }
        assert_eq!(encode("&"), "&-");
    }

    #[test]
    fn invalid_forms() {
        for bad in ["&", "&U,BTFw", "&AGE-", "é", "&Jjo!-", "&2D0-"] {
            assert_eq!(decode(bad), Err(Invalid), "{bad}");
        }
    }
}
