//! ESMTP parameters of MAIL and RCPT: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531),
//! AUTH (RFC 4954 §5), and the DSN parameters RET, ENVID, NOTIFY, ORCPT (RFC 3461 §4).
//! Parsing only: whether a flavour accepts a parameter is decided by the session.

use super::command::ParseError;
pub use crate::store::envelope::{Body, MailParams, Notify, RcptParams, Ret};

pub(crate) fn parse_mail_params<'a>(params: impl Iterator<Item = &'a str>) -> Result<MailParams, ParseError> {
    let mut out = MailParams::default();
    for p in params {
        let (key, value) = p.split_once('=').unwrap_or((p, ""));
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => out.size = Some(value.parse().map_err(|_| ParseError::Syntax)?),
            "BODY" => {
                out.body = match value.to_ascii_uppercase().as_str() {
                    "7BIT" => Body::SevenBit,
                    "8BITMIME" => Body::EightBitMime,
                    _ => return Err(ParseError::Parameter),
                }
            }
            "SMTPUTF8" if value.is_empty() && !p.contains('=') => out.smtputf8 = true,
            "RET" => {
                out.ret = Some(match value.to_ascii_uppercase().as_str() {
                    "FULL" => Ret::Full,
                    "HDRS" => Ret::Headers,
                    _ => return Err(ParseError::Syntax),
                })
            }
            // RFC 3461 §4.4: at most 100 characters of xtext.
            "ENVID" if value.len() <= 100 && xtext_decode(value).is_some() => out.envid = Some(value.to_owned()),
            "AUTH" if !value.is_empty() => out.auth = Some(value.to_owned()),
            "SMTPUTF8" | "ENVID" | "AUTH" => return Err(ParseError::Syntax),
            _ => return Err(ParseError::Parameter),
        }
    }
    Ok(out)
}

pub(crate) fn parse_rcpt_params<'a>(params: impl Iterator<Item = &'a str>) -> Result<RcptParams, ParseError> {
    let mut out = RcptParams::default();
    for p in params {
        let (key, value) = p.split_once('=').unwrap_or((p, ""));
        match key.to_ascii_uppercase().as_str() {
            "NOTIFY" => out.notify = Some(parse_notify(value)?),
            // RFC 3461 §4.2: `ORCPT=addr-type;xtext`, at most 500 characters.
            "ORCPT" => {
                let (kind, addr) = value.split_once(';').ok_or(ParseError::Syntax)?;
                if kind.is_empty() || value.len() > 500 || xtext_decode(addr).is_none() {
                    return Err(ParseError::Syntax);
                }
                out.orcpt = Some(value.to_owned());
            }
            _ => return Err(ParseError::Parameter),
        }
    }
    Ok(out)
}

/// RFC 3461 §4.1: `NEVER`, or a comma list of SUCCESS, FAILURE, DELAY.
fn parse_notify(value: &str) -> Result<Notify, ParseError> {
    let mut notify = Notify {
        success: false,
        failure: false,
        delay: false,
    };
    if value.eq_ignore_ascii_case("NEVER") {
        return Ok(notify);
    }
    for word in value.split(',') {
        match word.to_ascii_uppercase().as_str() {
            "SUCCESS" => notify.success = true,
            "FAILURE" => notify.failure = true,
            "DELAY" => notify.delay = true,
            _ => return Err(ParseError::Syntax),
        }
    }
    Ok(notify)
}

/// RFC 3461 §4: xtext, `+XX` hex escapes for anything outside printable ASCII, '+' and '='.
pub fn xtext_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'!'..=b'~' if bytes[i] != b'=' => {
                out.push(bytes[i]);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(s: &str) -> Result<MailParams, ParseError> {
        parse_mail_params(s.split_whitespace())
    }

    #[test]
    fn mail_parameters() {
        let p = mail("SIZE=10 BODY=8bitmime SMTPUTF8 RET=HDRS ENVID=QQ+2B1 AUTH=<>").unwrap();
        assert_eq!(p.size, Some(10));
        assert_eq!(p.body, Body::EightBitMime);
        assert!(p.smtputf8 && !p.lmtp_compatible());
        assert_eq!(p.ret, Some(Ret::Headers));
        assert_eq!(p.envid.as_deref(), Some("QQ+2B1"));
        assert!(mail("SIZE=1 BODY=8BITMIME").unwrap().lmtp_compatible());
        assert_eq!(mail("BODY=BINARYMIME"), Err(ParseError::Parameter));
        assert_eq!(mail("RET=ALL"), Err(ParseError::Syntax));
        assert_eq!(mail("SMTPUTF8=yes"), Err(ParseError::Syntax));
        assert_eq!(mail("ENVID=a+zz"), Err(ParseError::Syntax));
    }

    #[test]
    fn rcpt_parameters() {
        let p = parse_rcpt_params("NOTIFY=SUCCESS,DELAY ORCPT=rfc822;bob+40example.org".split(' ')).unwrap();
        let n = p.notify.unwrap();
        assert!(n.success && n.delay && !n.failure);
        assert_eq!(p.orcpt.as_deref(), Some("rfc822;bob+40example.org"));
        let never = parse_rcpt_params(std::iter::once("NOTIFY=never")).unwrap();
        assert_eq!(never.notify.map(|n| n.success || n.failure || n.delay), Some(false));
        assert!(parse_rcpt_params(std::iter::once("NOTIFY=SOMETIMES")).is_err());
        assert!(parse_rcpt_params(std::iter::once("ORCPT=nosemicolon")).is_err());
    }

    #[test]
    fn xtext() {
        assert_eq!(xtext_decode("bob+40example.org").as_deref(), Some("bob@example.org"));
        assert_eq!(xtext_decode("a+2B+3D").as_deref(), Some("a+="));
        assert_eq!(xtext_decode("a+4"), None);
        assert_eq!(xtext_decode("a=b"), None);
        assert_eq!(xtext_decode("a b"), None);
    }
}
