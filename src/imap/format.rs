//! Small encoders and decoders shared by FETCH and SEARCH: IMAP numbers, strings and literals
//! (RFC 9051 §4.3), `date-time` (RFC 9051 §9), header-field scanning, and in-place decoding of
//! the base64 and quoted-printable content transfer encodings (RFC 2045 §6.7, §6.8).
//!
//! Everything writes into a caller's buffer or rewrites a slice in place: nothing here allocates
//! except by growing the caller's `Vec`. Nothing here parses MIME structure; that was done once,
//! at delivery (`crate::mime`). Every function accepts any input without panicking.

/// Appends a decimal number (RFC 9051 §9 `number`, `number64`).
pub fn number<N: itoa::Integer>(out: &mut Vec<u8>, n: N) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends the prefix of a literal of `len` octets: `{len}\r\n`, or `~{len}\r\n` (RFC 9051 §4.3
/// literal8, for data that contains NUL).
pub fn literal_prefix(out: &mut Vec<u8>, len: usize, literal8: bool) {
    if literal8 {
        out.push(b'~');
    }
    out.push(b'{');
    number(out, len);
    out.extend_from_slice(b"}\r\n");
}

/// Appends an IMAP `string`: quoted when every octet may appear in a quoted string, else a
/// literal. RFC 9051 §4.3: quoted strings cannot carry CR, LF or NUL; 8-bit (UTF-8) text may be
/// quoted only when `utf8` (IMAP4rev2, or RFC 6855 UTF8=ACCEPT enabled) and is valid UTF-8.
pub fn string(out: &mut Vec<u8>, bytes: &[u8], utf8: bool) {
    let plain = |b: &u8| !matches!(b, 0 | b'\r' | b'\n');
    let quotable = if bytes.is_ascii() {
        bytes.iter().all(plain)
    } else {
        utf8 && bytes.iter().all(plain) && std::str::from_utf8(bytes).is_ok()
    };
    if !quotable {
        literal_prefix(out, bytes.len(), false);
        out.extend_from_slice(bytes);
        return;
    }
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    for &b in bytes {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Appends an `astring` (RFC 9051 §9): the bytes as an atom when they are one, else a string.
/// `]` is kept out of atoms so section specifiers stay unambiguous.
pub fn astring(out: &mut Vec<u8>, bytes: &[u8]) {
    let atom = !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| b > b' ' && b < 0x7f && !b"(){%*\"\\]".contains(&b));
    if atom {
        out.extend_from_slice(bytes);
    } else {
        string(out, bytes, false);
    }
}

/// Oldest and newest instants a 4-digit `date-year` can express: 0001-01-01 and
/// 9999-12-31T23:59:59 UTC. Values outside (a damaged record) are clamped.
const MIN_UNIX: i64 = -62_135_596_800;
const MAX_UNIX: i64 = 253_402_300_799;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Appends an RFC 9051 §9 `date-time`, quotes included, in UTC: `"17-Jul-1996 09:23:25 +0000"`.
/// The day is written with two digits (`date-day-fixed` allows `2DIGIT`).
pub fn date_time(out: &mut Vec<u8>, unix: i64) {
    let unix = unix.clamp(MIN_UNIX, MAX_UNIX);
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    out.push(b'"');
    two_digits(out, day as i64);
    out.push(b'-');
    out.extend_from_slice(MONTHS[(month as usize).clamp(1, 12) - 1]);
    out.push(b'-');
    let y = year.clamp(1, 9999);
    two_digits(out, y / 100);
    two_digits(out, y % 100);
    out.push(b' ');
    two_digits(out, secs / 3600);
    out.push(b':');
    two_digits(out, secs / 60 % 60);
    out.push(b':');
    two_digits(out, secs % 60);
    out.extend_from_slice(b" +0000\"");
}

fn two_digits(out: &mut Vec<u8>, n: i64) {
    let n = n.clamp(0, 99) as u8;
    out.push(b'0' + n / 10);
    out.push(b'0' + n % 10);
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01, proleptic Gregorian
/// (H. Hinnant's `civil_from_days`). Exact for every day a clamped `date_time` can reach.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// One header field of a header block: its whole extent (first line to the end of its last
/// continuation line, line breaks included), its name (before the colon, trailing WSP removed;
/// empty for a line that is not a field) and its raw value (after the colon, folds kept).
#[derive(Debug, Clone, Copy)]
pub struct HeaderField {
    pub start: usize,
    pub end: usize,
    pub name: (usize, usize),
    pub value: (usize, usize),
}

/// What follows a position in a header block.
enum Next {
    Field(HeaderField),
    /// The blank line ending the header starts here.
    Blank(usize),
    End,
}

fn line_end(block: &[u8], from: usize) -> usize {
    memchr::memchr(b'\n', &block[from..]).map_or(block.len(), |i| from + i + 1)
}

/// The field starting at `start` (RFC 5322 §2.2: a line plus the following lines that start
/// with WSP, §2.2.3). A line that is not a field (no colon) comes back with an empty name.
fn next_field(block: &[u8], start: usize) -> Next {
    if start >= block.len() {
        return Next::End;
    }
    let first_end = line_end(block, start);
    if matches!(&block[start..first_end], b"\r\n" | b"\n") {
        return Next::Blank(start);
    }
    let mut end = first_end;
    while end < block.len() && matches!(block[end], b' ' | b'\t') {
        end = line_end(block, end);
    }
    let content_end = trim_eol(block, start, end);
    Next::Field(match memchr::memchr(b':', &block[start..first_end]) {
        Some(colon) if !matches!(block[start], b' ' | b'\t') => {
            let mut name_end = start + colon;
            while name_end > start && matches!(block[name_end - 1], b' ' | b'\t') {
                name_end -= 1;
            }
            HeaderField {
                start,
                end,
                name: (start, name_end),
                value: (start + colon + 1, content_end.max(start + colon + 1)),
            }
        }
        _ => HeaderField {
            start,
            end,
            name: (start, start),
            value: (start, content_end),
        },
    })
}

/// Iterates the fields of a header block, stopping at the blank line that ends it.
pub struct HeaderFields<'a> {
    block: &'a [u8],
    pos: usize,
}

pub fn header_fields(block: &[u8]) -> HeaderFields<'_> {
    HeaderFields { block, pos: 0 }
}

impl Iterator for HeaderFields<'_> {
    type Item = HeaderField;

    fn next(&mut self) -> Option<HeaderField> {
        match next_field(self.block, self.pos) {
            Next::Field(f) => {
                self.pos = f.end;
                Some(f)
            }
            Next::Blank(_) | Next::End => {
                self.pos = self.block.len();
                None
            }
        }
    }
}

fn trim_eol(block: &[u8], start: usize, mut end: usize) -> usize {
    if end > start && block[end - 1] == b'\n' {
        end -= 1;
    }
    if end > start && block[end - 1] == b'\r' {
        end -= 1;
    }
    end
}

/// RFC 9051 §6.4.5 HEADER.FIELDS / HEADER.FIELDS.NOT: keeps, in place, the fields whose name is
/// (`keep_named`) or is not (`!keep_named`) one of `names` (ASCII case-insensitive, otherwise
/// exact), each with its continuation lines, then the blank line if the header has one ("the
/// blank line is included in all header fetches, except in the case of a message which has no
/// body and no blank line"). Returns the length kept. Kept text only moves towards the start,
/// behind the scan position, so the block is filtered without a copy.
pub fn filter_header(buf: &mut [u8], names: &[String], keep_named: bool) -> usize {
    let (mut pos, mut write) = (0, 0);
    loop {
        let keep = match next_field(buf, pos) {
            Next::Field(f) => {
                let name = &buf[f.name.0..f.name.1];
                let named = !name.is_empty() && names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(name));
                pos = f.end;
                (named == keep_named).then_some(f.start..f.end)
            }
            Next::Blank(b) => {
                pos = buf.len();
                Some(b..line_end(buf, b))
            }
            Next::End => return write,
        };
        if let Some(r) = keep {
            let len = r.len();
            buf.copy_within(r, write);
            write += len;
        }
    }
}

/// A Content-Transfer-Encoding as far as decoding is concerned (RFC 2045 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEncoding {
    /// 7bit, 8bit, binary: the content is the data.
    Identity,
    Base64,
    QuotedPrintable,
    /// Anything else (x-uuencode, ...): RFC 3516 §4.3 / RFC 9051 §7.1 UNKNOWN-CTE.
    Unknown,
}

impl TransferEncoding {
    /// From the lowercased name stored in the part table.
    pub fn from_name(name: &str) -> Self {
        match name {
            "7bit" | "8bit" | "binary" | "" => Self::Identity,
            "base64" => Self::Base64,
            "quoted-printable" => Self::QuotedPrintable,
            _ => Self::Unknown,
        }
    }

    /// Decodes `buf` in place (decoded data is never longer than its encoding) and returns the
    /// decoded length. `Unknown` is left as is.
    pub fn decode_in_place(self, buf: &mut [u8]) -> usize {
        match self {
            Self::Identity | Self::Unknown => buf.len(),
            Self::Base64 => base64_in_place(buf),
            Self::QuotedPrintable => qp_in_place(buf),
        }
    }
}

fn base64_value(b: u8) -> Option<u32> {
    Some(u32::from(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// RFC 2045 §6.8: characters outside the alphabet (line breaks, junk) are ignored; `=` ends the
/// data. A trailing partial group yields the whole octets it holds. The write position never
/// passes the read position (3 octets out per 4 in), so decoding in place is sound.
fn base64_in_place(buf: &mut [u8]) -> usize {
    let (mut acc, mut bits, mut write) = (0u32, 0u32, 0usize);
    for read in 0..buf.len() {
        let b = buf[read];
        if b == b'=' {
            break;
        }
        let Some(v) = base64_value(b) else { continue };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            buf[write] = (acc >> bits) as u8;
            write += 1;
            acc &= (1 << bits) - 1;
        }
    }
    write
}

/// One hex digit's value, either case (RFC 5234 HEXDIG, which is case-insensitive as ABNF
/// strings are); nothing else, not even a sign.
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        // Lowercase is not allowed by RFC 2045 §6.7 (1) but decoders should accept it.
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// RFC 2045 §6.7: `=XX` is an octet, `=` before optional WSP and a line break is a soft line
/// break, trailing WSP before a hard line break was added in transport and is dropped; any other
/// `=` is kept as is (rule 1 robustness). Each step writes at most what it reads.
fn qp_in_place(buf: &mut [u8]) -> usize {
    let (mut read, mut write) = (0usize, 0usize);
    // Decoded WSP (=20) is data, not transport padding: never strip below this point.
    let mut keep = 0usize;
    while read < buf.len() {
        let b = buf[read];
        match b {
            b'=' => {
                let hex = buf
                    .get(read + 1..read + 3)
                    .and_then(|h| Some(hex_value(h[0])? << 4 | hex_value(h[1])?));
                if let Some(v) = hex {
                    buf[write] = v;
                    write += 1;
                    keep = write;
                    read += 3;
                    continue;
                }
                let mut k = read + 1;
                while k < buf.len() && matches!(buf[k], b' ' | b'\t') {
                    k += 1;
                }
                if buf[k..].starts_with(b"\r\n") {
                    read = k + 2;
                } else if buf[k..].starts_with(b"\n") {
                    read = k + 1;
                } else if k == buf.len() {
                    read = k;
                } else {
                    buf[write] = b'=';
                    write += 1;
                    keep = write;
                    read += 1;
                }
            }
            b'\r' | b'\n' => {
                while write > keep && matches!(buf[write - 1], b' ' | b'\t') {
                    write -= 1;
                }
                buf[write] = b;
                write += 1;
                keep = write;
                read += 1;
            }
            _ => {
                buf[write] = b;
                write += 1;
                read += 1;
            }
        }
    }
    write
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_and_atoms() {
        let cases: &[(&[u8], bool, &str)] = &[
            (b"", false, "\"\""),
            (b"a \"b\" \\", false, "\"a \\\"b\\\" \\\\\""),
            (b"two\r\nlines", true, "{10}\r\ntwo\r\nlines"),
            ("Grüße".as_bytes(), false, "{7}\r\nGrüße"),
            ("Grüße".as_bytes(), true, "\"Grüße\""),
            (b"bad\xff", true, "{4}\r\nbad\u{fffd}"),
        ];
        for (input, utf8, want) in cases {
            let got = {
                let mut out = Vec::new();
                string(&mut out, input, *utf8);
                String::from_utf8_lossy(&out).into_owned()
            };
            assert_eq!(got, *want, "{input:?}");
        }
        assert_eq!(s(|o| astring(o, b"Subject")), "Subject");
        assert_eq!(s(|o| astring(o, b"X]Y")), "\"X]Y\"");
        assert_eq!(s(|o| astring(o, b"")), "\"\"");
        assert_eq!(s(|o| literal_prefix(o, 12, true)), "~{12}\r\n");
    }

    #[test]
    fn date_times() {
        let cases = [
            (0, "\"01-Jan-1970 00:00:00 +0000\""),
            (837_595_405, "\"17-Jul-1996 09:23:25 +0000\""),
            (951_782_400, "\"29-Feb-2000 00:00:00 +0000\""),
            (-1, "\"31-Dec-1969 23:59:59 +0000\""),
            (i64::MIN, "\"01-Jan-0001 00:00:00 +0000\""),
            (i64::MAX, "\"31-Dec-9999 23:59:59 +0000\""),
        ];
        for (unix, want) in cases {
            assert_eq!(s(|o| date_time(o, unix)), want, "{unix}");
        }
    }

    #[test]
    fn decoders() {
        let cases: &[(TransferEncoding, &[u8], &[u8])] = &[
            (TransferEncoding::Base64, b"SGVs\r\nbG8=\r\n", b"Hello"),
            (TransferEncoding::Base64, b"AAEC", b"\0\x01\x02"),
            (TransferEncoding::Base64, b"QQ", b"A"),
            (TransferEncoding::Base64, b"!!", b""),
            (
                TransferEncoding::QuotedPrintable,
                b"Gr=FC=DFe  \r\n a=\r\nb =20 \r\n",
                b"Gr\xfc\xdfe\r\n ab  \r\n",
            ),
            (TransferEncoding::QuotedPrintable, b"x=3d=zz=", b"x==zz"),
            (TransferEncoding::QuotedPrintable, b"soft= \t\r\nend", b"softend"),
            (TransferEncoding::Identity, b"as is=41", b"as is=41"),
        ];
        for (enc, input, want) in cases {
            let mut buf = input.to_vec();
            let n = enc.decode_in_place(&mut buf);
            assert_eq!(&buf[..n], *want, "{enc:?} {:?}", String::from_utf8_lossy(input));
        }
        assert_eq!(TransferEncoding::from_name("x-uuencode"), TransferEncoding::Unknown);
    }

    #[test]
    fn header_filtering() {
        let header = "Subject: a\r\n folded\r\nX-Y: 1\r\nsubject : again\r\nno colon\r\nTo: t\r\n\r\n";
        let run = |names: &[&str], keep: bool| {
            let mut buf = header.as_bytes().to_vec();
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let n = filter_header(&mut buf, &names, keep);
            String::from_utf8(buf[..n].to_vec()).unwrap()
        };
        assert_eq!(
            run(&["SUBJECT"], true),
            "Subject: a\r\n folded\r\nsubject : again\r\n\r\n"
        );
        assert_eq!(run(&["subject", "x-y"], false), "no colon\r\nTo: t\r\n\r\n");
        assert_eq!(run(&["missing"], true), "\r\n");
        let mut no_blank = b"A: 1\r\nB: 2".to_vec();
        let n = filter_header(&mut no_blank, &["b".to_string()], true);
        assert_eq!(&no_blank[..n], b"B: 2");
    }
}
