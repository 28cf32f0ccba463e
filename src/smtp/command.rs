//! SMTP/LMTP command parsing (RFC 5321 §4.1, RFC 2033 §4.1): one line in, one typed command out.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Lhlo(String),
    Helo(String),
    Ehlo(String),
    Mail {
        from: String,
        size: Option<u64>,
        body: Body,
    },
    Rcpt {
        to: String,
    },
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Help,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("500 5.5.2 command not recognized")]
    Unknown,
    #[error("501 5.5.4 syntax error in parameters")]
    Syntax,
    #[error("555 5.5.4 unsupported parameter")]
    Parameter,
}

pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
    let line = std::str::from_utf8(line).map_err(|_| ParseError::Syntax)?;
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let rest = rest.trim();
    let needs_none = |c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(ParseError::Syntax)
        }
    };
    let domain = || {
        if rest.is_empty() || rest.contains(' ') {
            Err(ParseError::Syntax)
        } else {
            Ok(rest.to_owned())
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "LHLO" => domain().map(Command::Lhlo),
        "HELO" => domain().map(Command::Helo),
        "EHLO" => domain().map(Command::Ehlo),
        "MAIL" => parse_mail(rest),
        "RCPT" => parse_rcpt(rest),
        "DATA" => needs_none(Command::Data),
        "RSET" => needs_none(Command::Rset),
        // RFC 5321 §4.1.1.9: NOOP may carry a string, which is ignored.
        "NOOP" => Ok(Command::Noop),
        "QUIT" => needs_none(Command::Quit),
        "VRFY" => Ok(Command::Vrfy),
        "HELP" => Ok(Command::Help),
        _ => Err(ParseError::Unknown),
    }
}

/// `FROM:<path> [params]`; the null path `<>` is allowed (bounces).
fn parse_mail(rest: &str) -> Result<Command, ParseError> {
    let (path, params) = path_after(rest, "FROM:")?;
    let mut size = None;
    let mut body = Body::SevenBit;
    for p in params {
        let (key, value) = p.split_once('=').unwrap_or((p, ""));
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => size = Some(value.parse().map_err(|_| ParseError::Syntax)?),
            "BODY" => {
                body = match value.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    _ => return Err(ParseError::Parameter),
                }
            }
            _ => return Err(ParseError::Parameter),
        }
    }
    Ok(Command::Mail { from: path, size, body })
}

fn parse_rcpt(rest: &str) -> Result<Command, ParseError> {
    let (path, mut params) = path_after(rest, "TO:")?;
    if path.is_empty() {
        return Err(ParseError::Syntax);
    }
    if params.next().is_some() {
        return Err(ParseError::Parameter);
    }
    Ok(Command::Rcpt { to: path })
}

/// Splits `FROM:<a@b> P1 P2` into the address inside the brackets and the parameters.
fn path_after<'a>(rest: &'a str, prefix: &str) -> Result<(String, impl Iterator<Item = &'a str>), ParseError> {
    let head = rest.get(..prefix.len()).ok_or(ParseError::Syntax)?;
    if !head.eq_ignore_ascii_case(prefix) {
        return Err(ParseError::Syntax);
    }
    let rest = rest[prefix.len()..].trim_start();
    let rest = rest.strip_prefix('<').ok_or(ParseError::Syntax)?;
    let end = rest.find('>').ok_or(ParseError::Syntax)?;
    let mut path = &rest[..end];
    // RFC 5321 §4.1.2: a source route is accepted and ignored.
    if path.starts_with('@') {
        path = path.split_once(':').map_or("", |(_, p)| p);
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ParseError::Syntax);
    }
    Ok((path.to_owned(), rest[end + 1..].split_whitespace()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&str, Result<Command, ParseError>)] = &[
            ("LHLO mx.example", Ok(Command::Lhlo("mx.example".into()))),
            ("lhlo mx", Ok(Command::Lhlo("mx".into()))),
            ("LHLO", Err(ParseError::Syntax)),
            (
                "MAIL FROM:<a@b.c>",
                Ok(Command::Mail {
                    from: "a@b.c".into(),
                    size: None,
                    body: Body::SevenBit,
                }),
            ),
            (
                "MAIL FROM:<> SIZE=100 BODY=8BITMIME",
                Ok(Command::Mail {
                    from: "".into(),
                    size: Some(100),
                    body: Body::EightBitMime,
                }),
            ),
            ("MAIL FROM:<a@b> SIZE=x", Err(ParseError::Syntax)),
            ("MAIL FROM:<a@b> FOO=1", Err(ParseError::Parameter)),
            ("MAIL FROM:a@b", Err(ParseError::Syntax)),
            ("MAIL TO:<a@b>", Err(ParseError::Syntax)),
            (
                "RCPT TO:<bob@example.org>",
                Ok(Command::Rcpt {
                    to: "bob@example.org".into(),
                }),
            ),
            (
                "RCPT TO:<@relay:bob@example.org>",
                Ok(Command::Rcpt {
                    to: "bob@example.org".into(),
                }),
            ),
            ("RCPT TO:<>", Err(ParseError::Syntax)),
            ("RCPT TO:<a b@c>", Err(ParseError::Syntax)),
            ("DATA", Ok(Command::Data)),
            ("DATA x", Err(ParseError::Syntax)),
            ("NOOP hello", Ok(Command::Noop)),
            ("QUIT", Ok(Command::Quit)),
            ("VRFY bob", Ok(Command::Vrfy)),
            ("BDAT 10", Err(ParseError::Unknown)),
            ("", Err(ParseError::Unknown)),
        ];
        for (line, expected) in cases {
            assert_eq!(&parse(line.as_bytes()), expected, "{line}");
        }
    }
}
