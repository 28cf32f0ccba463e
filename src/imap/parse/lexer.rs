//! The tokens of RFC 9051 §9 that every command shares: SP, atoms, numbers, quoted strings,
//! literals, astrings, mailbox names, sequence sets, flags and dates. A cursor over one
//! complete command; never looks past its end, never allocates for what it only checks.

use crate::imap::types::{Flag, PartialRange, SeqBound, SequenceSet};

/// A syntax error: the text that goes after `TAG BAD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Syntax(pub &'static str);

pub(crate) type Result<T> = std::result::Result<T, Syntax>;

/// RFC 9051 §9: ATOM-CHAR = any CHAR except atom-specials
/// ("(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]").
pub(crate) fn is_atom_char(b: u8) -> bool {
    matches!(b, 0x21..=0x7e) && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// ASTRING-CHAR = ATOM-CHAR / resp-specials ("]").
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// list-char = ATOM-CHAR / list-wildcards / resp-specials.
fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

/// The characters of keywords, command and attribute names (`RFC822.SIZE`, `SPECIAL-USE`).
fn is_word_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
    /// APPEND data is not copied, only located (the caller owns the input and moves it).
    pub(crate) locate_only: bool,
    pub(crate) limits: super::ParseLimits,
}

impl<'a> Cursor<'a> {
    /// Where `part` (a slice of this cursor's input) starts in the input.
    pub(crate) fn offset_of(&self, part: &[u8]) -> usize {
        part.as_ptr() as usize - self.input.as_ptr() as usize
    }

    pub(crate) fn new(input: &'a [u8]) -> Self {
        Cursor {
            input,
            pos: 0,
            locate_only: false,
            limits: super::ParseLimits::default(),
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    pub(crate) fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.input.get(self.pos + ahead).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, b: u8, error: &'static str) -> Result<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(Syntax(error))
        }
    }

    /// Exactly one SP (RFC 9051 §9 separates every token with one).
    pub(crate) fn sp(&mut self) -> Result<()> {
        match self.peek() {
            Some(b' ') => {
                self.pos += 1;
                Ok(())
            }
            None => Err(Syntax("missing argument")),
            Some(_) => Err(Syntax("expected a space")),
        }
    }

    /// The command must end here.
    pub(crate) fn end(&self) -> Result<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(Syntax("unexpected characters at the end of the command"))
        }
    }

    /// `SP` followed by the next token, when the command goes on; for optional trailing parts.
    pub(crate) fn more(&mut self) -> bool {
        self.eat(b' ')
    }

    fn take_while(&mut self, pred: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    /// A keyword or name; empty if none is here. Compare with `eq_ignore_ascii_case`.
    pub(crate) fn word(&mut self) -> &'a [u8] {
        self.take_while(is_word_char)
    }

    /// Whether the next word is `keyword` (any case), without taking it.
    pub(crate) fn next_word_is(&self, keyword: &str) -> bool {
        let mut probe = *self;
        probe.word().eq_ignore_ascii_case(keyword.as_bytes())
    }

    pub(crate) fn tag(&mut self) -> &'a [u8] {
        self.take_while(super::is_tag_char)
    }

    /// RFC 9051 §9 atom; ASCII by definition.
    pub(crate) fn atom(&mut self) -> Result<String> {
        let atom = self.take_while(is_atom_char);
        if atom.is_empty() {
            return Err(Syntax("expected an atom"));
        }
        Ok(ascii(atom))
    }

    fn digits(&mut self) -> Result<&'a [u8]> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            Err(Syntax("expected a number"))
        } else {
            Ok(digits)
        }
    }

    /// number = 1*DIGIT, an unsigned 32-bit integer.
    pub(crate) fn number(&mut self) -> Result<u32> {
        let n = to_u64(self.digits()?).ok_or(Syntax("number too large"))?;
        u32::try_from(n).map_err(|_| Syntax("number too large"))
    }

    /// nz-number: a number other than 0.
    pub(crate) fn nz_number(&mut self) -> Result<u32> {
        match self.number()? {
            0 => Err(Syntax("zero is not allowed here")),
            n => Ok(n),
        }
    }

    /// number64 = 1*DIGIT up to 2^63 - 1 (RFC 9051 §9).
    pub(crate) fn number64(&mut self) -> Result<u64> {
        to_u64(self.digits()?)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or(Syntax("number too large"))
    }

    /// mod-sequence-value: 1 to 2^63 - 1 (RFC 7162 §7).
    pub(crate) fn mod_sequence_value(&mut self) -> Result<u64> {
        match self.number64()? {
            0 => Err(Syntax("mod-sequence must not be zero")),
            n => Ok(n),
        }
    }

    /// quoted = DQUOTE *QUOTED-CHAR DQUOTE, with `\"` and `\\` the only escapes; 8-bit text
    /// must be UTF-8 (RFC 9051 §9 QUOTED-CHAR includes UTF8-2/3/4).
    fn quoted(&mut self) -> Result<Vec<u8>> {
        self.expect(b'"', "expected a quoted string")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(Syntax("unterminated quoted string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => match self.peek_at(1) {
                    Some(c @ (b'"' | b'\\')) => {
                        out.push(c);
                        self.pos += 2;
                    }
                    _ => return Err(Syntax("invalid escape in quoted string")),
                },
                Some(0 | b'\r' | b'\n') => return Err(Syntax("invalid character in quoted string")),
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    /// literal (RFC 9051 §4.3) or literal8 (RFC 3516 §4.4): `{n}` or `{n+}` (RFC 7888), an
    /// optional `~` before, a line end, then n octets. Returns the data and whether it was a
    /// literal8. A bare LF after the marker is accepted, as the reader accepts it.
    pub(crate) fn literal_any(&mut self) -> Result<(&'a [u8], bool)> {
        let binary = self.eat(b'~');
        self.expect(b'{', "expected a literal")?;
        let len = self.number64()?;
        self.eat(b'+');
        self.expect(b'}', "invalid literal")?;
        self.eat(b'\r');
        self.expect(b'\n', "expected a line end after the literal length")?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|&end| end <= self.input.len())
            .ok_or(Syntax("literal shorter than announced"))?;
        self.pos = end;
        let data = &self.input[start..end];
        // CHAR8 excludes NUL: only literal8 may carry it (RFC 3516 §4.4).
        if !binary && data.contains(&0) {
            return Err(Syntax("NUL in a literal; use literal8"));
        }
        Ok((data, binary))
    }

    /// literal (not literal8: RFC 3516 adds that to APPEND only).
    fn literal(&mut self) -> Result<&'a [u8]> {
        if self.peek() == Some(b'~') {
            return Err(Syntax("literal8 is only allowed in APPEND"));
        }
        Ok(self.literal_any()?.0)
    }

    /// Whether a quoted string or a literal (or a literal8, to be refused) starts here; `~` alone
    /// is an atom character.
    fn at_string(&self) -> bool {
        match self.peek() {
            Some(b'"' | b'{') => true,
            Some(b'~') => self.peek_at(1) == Some(b'{'),
            _ => false,
        }
    }

    /// string = quoted / literal, as bytes.
    pub(crate) fn string_bytes(&mut self) -> Result<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            _ if self.at_string() => Ok(self.literal()?.to_vec()),
            None => Err(Syntax("missing argument")),
            Some(_) => Err(Syntax("expected a string")),
        }
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        utf8(self.string_bytes()?)
    }

    /// nstring = string / NIL.
    pub(crate) fn nstring(&mut self) -> Result<Option<String>> {
        if self.at_string() {
            return self.string().map(Some);
        }
        if self.word().eq_ignore_ascii_case(b"NIL") {
            Ok(None)
        } else {
            Err(Syntax("expected a string or NIL"))
        }
    }

    /// astring = 1*ASTRING-CHAR / string.
    pub(crate) fn astring(&mut self) -> Result<String> {
        match self.peek() {
            _ if self.at_string() => self.string(),
            None => Err(Syntax("missing argument")),
            Some(_) => {
                let atom = self.take_while(is_astring_char);
                if atom.is_empty() {
                    Err(Syntax("expected a string"))
                } else {
                    Ok(ascii(atom))
                }
            }
        }
    }

    /// mailbox = "INBOX" / astring, INBOX in any case meaning INBOX (RFC 9051 §5.1). Other
    /// names come back as sent: modified UTF-7 (RFC 3501 §5.1.3) is decoded, when the client
    /// has not enabled UTF8=ACCEPT, by the session, which knows that.
    pub(crate) fn mailbox(&mut self) -> Result<String> {
        let name = self.astring()?;
        if name.eq_ignore_ascii_case("INBOX") {
            Ok("INBOX".to_owned())
        } else {
            Ok(name)
        }
    }

    /// list-mailbox = 1*list-char / string (wildcards allowed), as sent.
    pub(crate) fn list_mailbox(&mut self) -> Result<String> {
        match self.peek() {
            _ if self.at_string() => self.string(),
            None => Err(Syntax("missing argument")),
            Some(_) => {
                let pattern = self.take_while(is_list_char);
                if pattern.is_empty() {
                    Err(Syntax("expected a mailbox pattern"))
                } else {
                    Ok(ascii(pattern))
                }
            }
        }
    }

    /// sequence-set (RFC 9051 §9), or `$` alone (RFC 5182). The ABNF would also allow `$`
    /// inside a list (`1,$`); like Dovecot we accept it only alone, as `SequenceSet` models it.
    pub(crate) fn sequence_set(&mut self) -> Result<SequenceSet> {
        const INVALID: Syntax = Syntax("invalid sequence set");
        if self.eat(b'$') {
            return match self.peek() {
                None | Some(b' ' | b')') => Ok(SequenceSet::Saved),
                Some(_) => Err(INVALID),
            };
        }
        let mut ranges = Vec::new();
        loop {
            let first = self.seq_number().map_err(|_| INVALID)?;
            let last = if self.eat(b':') {
                self.seq_number().map_err(|_| INVALID)?
            } else {
                first
            };
            if ranges.len() == self.limits.max_sequence_ranges {
                return Err(Syntax(
                    "too many ranges in the sequence set ([limits] max_sequence_ranges)",
                ));
            }
            ranges.push((first, last));
            if !self.eat(b',') {
                break;
            }
        }
        match self.peek() {
            None | Some(b' ' | b')') => Ok(SequenceSet::Ranges(ranges)),
            Some(_) => Err(INVALID),
        }
    }

    /// seq-number = nz-number / "*".
    pub(crate) fn seq_number(&mut self) -> Result<SeqBound> {
        if self.eat(b'*') {
            Ok(SeqBound::Star)
        } else {
            self.nz_number().map(SeqBound::Num)
        }
    }

    /// partial-range = partial-range-first / partial-range-last; partial-range-first =
    /// nz-number ":" nz-number; partial-range-last = "-" nz-number ":" "-" nz-number
    /// (RFC 9394 §5). `4:2` is `2:4`, `-5:-1` is `-1:-5`.
    pub(crate) fn partial_range(&mut self) -> Result<PartialRange> {
        const INVALID: Syntax = Syntax("invalid partial range");
        let from_end = self.eat(b'-');
        let a = self.nz_number().map_err(|_| INVALID)?;
        self.expect(b':', INVALID.0)?;
        if from_end {
            self.expect(b'-', INVALID.0)?;
        }
        let b = self.nz_number().map_err(|_| INVALID)?;
        Ok(PartialRange {
            from_end,
            first: a.min(b),
            last: a.max(b),
        })
    }

    /// flag = "\" atom (system flags and flag-extension) / atom (keywords), as sent.
    pub(crate) fn flag(&mut self) -> Result<Flag> {
        let backslash = self.eat(b'\\');
        let atom = self.atom().map_err(|_| Syntax("invalid flag"))?;
        Ok(if backslash { format!("\\{atom}") } else { atom })
    }

    /// flag-list = "(" [flag *(SP flag)] ")".
    pub(crate) fn flag_list(&mut self) -> Result<Vec<Flag>> {
        self.expect(b'(', "expected a flag list")?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    /// A parenthesised, space-separated, non-empty list: `"(" item *(SP item) ")"`.
    pub(crate) fn list1<T>(&mut self, mut item: impl FnMut(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        self.expect(b'(', "expected a list")?;
        let mut items = Vec::new();
        loop {
            items.push(item(self)?);
            if self.eat(b')') {
                return Ok(items);
            }
            self.sp()?;
        }
    }

    /// Like `list1`, but `()` is allowed.
    pub(crate) fn list0<T>(&mut self, item: impl FnMut(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        if self.peek() == Some(b'(') && self.peek_at(1) == Some(b')') {
            self.pos += 2;
            return Ok(Vec::new());
        }
        self.list1(item)
    }

    /// date = date-text / DQUOTE date-text DQUOTE; date-text = date-day "-" date-month "-"
    /// date-year (RFC 9051 §9), as days since 1970-01-01.
    pub(crate) fn date(&mut self) -> Result<i64> {
        const INVALID: Syntax = Syntax("invalid date");
        let quoted = self.eat(b'"');
        let day = self.digits().map_err(|_| INVALID)?;
        if day.len() > 2 {
            return Err(INVALID);
        }
        let day = to_u64(day).ok_or(INVALID)? as u32;
        self.expect(b'-', INVALID.0)?;
        let month = self.month()?;
        self.expect(b'-', INVALID.0)?;
        let year = self.fixed_digits(4).ok_or(INVALID)?;
        if quoted {
            self.expect(b'"', INVALID.0)?;
        }
        days_from_civil(year, month, day).ok_or(INVALID)
    }

    /// date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
    /// (RFC 9051 §9), as unix seconds. A one-digit day without the leading space is accepted too:
    /// clients send it, and it cannot be misread.
    pub(crate) fn date_time(&mut self) -> Result<i64> {
        const INVALID: Syntax = Syntax("invalid date-time");
        self.expect(b'"', INVALID.0)?;
        self.eat(b' ');
        let day = self.digits().map_err(|_| INVALID)?;
        if day.len() > 2 {
            return Err(INVALID);
        }
        let day = to_u64(day).ok_or(INVALID)? as u32;
        self.expect(b'-', INVALID.0)?;
        let month = self.month()?;
        self.expect(b'-', INVALID.0)?;
        let year = self.fixed_digits(4).ok_or(INVALID)?;
        self.expect(b' ', INVALID.0)?;
        let hour = self.fixed_digits(2).ok_or(INVALID)?;
        self.expect(b':', INVALID.0)?;
        let minute = self.fixed_digits(2).ok_or(INVALID)?;
        self.expect(b':', INVALID.0)?;
        let second = self.fixed_digits(2).ok_or(INVALID)?;
        self.expect(b' ', INVALID.0)?;
        let sign = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(INVALID),
        };
        self.pos += 1;
        let zone = self.fixed_digits(4).ok_or(INVALID)?;
        self.expect(b'"', INVALID.0)?;
        // A leap second (60) is allowed by RFC 5322 §3.3 and lands on the next minute.
        if hour > 23 || minute > 59 || second > 60 || zone % 100 > 59 {
            return Err(INVALID);
        }
        let days = days_from_civil(year, month, day).ok_or(INVALID)?;
        let offset = sign * ((zone / 100) * 3600 + (zone % 100) * 60);
        Ok(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
    }

    fn month(&mut self) -> Result<u32> {
        const MONTHS: [&[u8; 3]; 12] = [
            b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
        ];
        let name = self.input.get(self.pos..self.pos + 3).ok_or(Syntax("invalid date"))?;
        let month = MONTHS
            .iter()
            .position(|m| name.eq_ignore_ascii_case(&m[..]))
            .ok_or(Syntax("invalid date"))?;
        self.pos += 3;
        Ok(month as u32 + 1)
    }

    /// Exactly `n` digits.
    fn fixed_digits(&mut self, n: usize) -> Option<i64> {
        let digits = self.input.get(self.pos..self.pos + n)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += n;
        to_u64(digits).map(|v| v as i64)
    }
}

fn to_u64(digits: &[u8]) -> Option<u64> {
    digits
        .iter()
        .try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Bytes known to be ASCII (atom characters) as a String.
fn ascii(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

pub(crate) fn utf8(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|_| Syntax("string is not valid UTF-8"))
}

/// Days since 1970-01-01 of a Gregorian date, `None` if the date does not exist.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days_in_month {
        return None;
    }
    // Counting from March makes February's length irrelevant to the day-of-year formula.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(1994, 2, 1), Some(8797));
        assert_eq!(days_from_civil(2000, 2, 29), Some(11016));
        assert_eq!(days_from_civil(1969, 12, 31), Some(-1));
        assert_eq!(days_from_civil(2001, 2, 29), None);
        assert_eq!(days_from_civil(2001, 13, 1), None);
    }

    #[test]
    fn date_time_zone() {
        let mut c = Cursor::new(b"\"17-Jul-1996 02:44:25 -0700\"");
        assert_eq!(c.date_time(), Ok(837_596_665));
        let mut c = Cursor::new(b"\" 1-Jan-1970 00:00:00 +0100\"");
        assert_eq!(c.date_time(), Ok(-3600));
    }
}
