//! Delivery status notifications (RFC 3464): the multipart/report a sender finds in their INBOX
//! when some recipients could not be reached, or when they asked to hear of a success
//! (RFC 3461 NOTIFY=SUCCESS) — a human-readable part, the message/delivery-status part with one
//! block per recipient, and the original message (or only its header, RFC 3461 §4.3 RET=HDRS).
//! Pure: time and the unique token are passed in.

use super::date;
use super::params::{xtext_decode, Ret};

/// RFC 3464 §2.3.3 Action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnAction {
    Failed,
    Delivered,
    /// Handed to a server that does not speak DSN (RFC 3461 §5.2.2).
    Relayed,
}

impl DsnAction {
    fn name(self) -> &'static str {
        match self {
            DsnAction::Failed => "failed",
            DsnAction::Delivered => "delivered",
            DsnAction::Relayed => "relayed",
        }
    }
}

/// One recipient the report is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedRecipient {
    pub address: String,
    pub action: DsnAction,
    /// RFC 3461 §4.2 ORCPT as sent, `addr-type;xtext`.
    pub orcpt: Option<String>,
    /// RFC 3463 status, e.g. "5.1.1" or "2.0.0".
    pub status: String,
    /// What the remote server said, e.g. "550 5.1.1 no such user".
    pub diagnostic: Option<String>,
    /// The host that said it.
    pub remote_mta: Option<String>,
}

pub struct Report<'a> {
    /// This server, the Reporting-MTA.
    pub hostname: &'a str,
    pub now: i64,
    /// Unique within this host: Message-ID and MIME boundary.
    pub unique: &'a str,
    /// The original envelope sender, who gets the report.
    pub to: &'a str,
    /// RFC 3461 §4.4 ENVID as sent (xtext).
    pub envid: Option<&'a str>,
    pub arrival: i64,
    pub recipients: &'a [ReportedRecipient],
    pub original: &'a [u8],
    pub ret: Ret,
}

/// The report as a complete message with CRLF line endings.
pub fn report(r: &Report<'_>) -> Vec<u8> {
    let failed = r.recipients.iter().any(|f| f.action == DsnAction::Failed);
    let boundary = format!("{}/{}", r.unique, r.hostname);
    let mut out = String::new();
    let mut field = |name: &str, value: &str| {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    };
    field("From", &format!("Mail Delivery System <MAILER-DAEMON@{}>", r.hostname));
    field("To", &format!("<{}>", r.to));
    field(
        "Subject",
        if failed {
            "Undelivered Mail Returned to Sender"
        } else {
            "Successful Mail Delivery Report"
        },
    );
    field("Date", &date::rfc5322(r.now));
    field("Message-ID", &format!("<{}@{}>", r.unique, r.hostname));
    // RFC 3834 §5: so that no auto-responder answers it.
    field("Auto-Submitted", "auto-replied");
    field("MIME-Version", "1.0");
    field(
        "Content-Type",
        &format!("multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\""),
    );
    out.push_str("\r\nThis is a MIME-encapsulated message.\r\n\r\n");
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    ));
    human_part(&mut out, r, failed);
    out.push_str(&format!(
        "\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
    ));
    status_part(&mut out, r);
    let mut message = out.into_bytes();
    original_part(&mut message, r, &boundary);
    message.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    message
}

fn human_part(out: &mut String, r: &Report<'_>, failed: bool) {
    out.push_str(&format!("This is the mail system at host {}.\r\n\r\n", r.hostname));
    if failed {
        out.push_str("Your message could not be delivered to one or more recipients.\r\n\r\n");
    } else {
        out.push_str("Your message was delivered as you asked to be told.\r\n\r\n");
    }
    for f in r.recipients {
        let what = f.diagnostic.as_deref().unwrap_or(f.action.name());
        out.push_str(&format!("<{}>: {}\r\n", f.address, what));
    }
}

/// RFC 3464 §2.2 per-message fields, then §2.3 per-recipient fields, blocks separated by
/// blank lines.
fn status_part(out: &mut String, r: &Report<'_>) {
    out.push_str(&format!("Reporting-MTA: dns; {}\r\n", r.hostname));
    if let Some(envid) = r.envid.and_then(xtext_decode) {
        out.push_str(&format!("Original-Envelope-Id: {envid}\r\n"));
    }
    out.push_str(&format!("Arrival-Date: {}\r\n", date::rfc5322(r.arrival)));
    for f in r.recipients {
        out.push_str("\r\n");
        if let Some((kind, addr)) = f.orcpt.as_deref().and_then(|o| o.split_once(';')) {
            let addr = xtext_decode(addr).unwrap_or_else(|| addr.to_owned());
            out.push_str(&format!("Original-Recipient: {kind}; {addr}\r\n"));
        }
        out.push_str(&format!("Final-Recipient: rfc822; {}\r\n", f.address));
        out.push_str(&format!("Action: {}\r\n", f.action.name()));
        out.push_str(&format!("Status: {}\r\n", f.status));
        if let Some(mta) = &f.remote_mta {
            out.push_str(&format!("Remote-MTA: dns; {mta}\r\n"));
        }
        if let Some(diagnostic) = &f.diagnostic {
            out.push_str(&format!("Diagnostic-Code: smtp; {diagnostic}\r\n"));
        }
        out.push_str(&format!("Last-Attempt-Date: {}\r\n", date::rfc5322(r.now)));
    }
}

fn original_part(out: &mut Vec<u8>, r: &Report<'_>, boundary: &str) {
    let header_len = memchr::memmem::find(r.original, b"\r\n\r\n").map_or(r.original.len(), |i| i + 2);
    let (content_type, body) = match r.ret {
        Ret::Full => ("message/rfc822", r.original),
        // RFC 3462 (RFC 6522) text/rfc822-headers for RET=HDRS.
        Ret::Headers => ("text/rfc822-headers", &r.original[..header_len]),
    };
    out.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Type: {content_type}\r\n").as_bytes());
    if body.iter().any(|&b| b >= 0x80) {
        out.extend_from_slice(b"Content-Transfer-Encoding: 8bit\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    if !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ret: Ret) -> Vec<u8> {
        let recipients = [ReportedRecipient {
            address: "x@far.example".into(),
            action: DsnAction::Failed,
            orcpt: Some("rfc822;X+40far.example".into()),
            status: "5.1.1".into(),
            diagnostic: Some("550 5.1.1 no such user".into()),
            remote_mta: Some("smarthost.test".into()),
        }];
        report(&Report {
            hostname: "mx.test",
            now: 60,
            unique: "b1",
            to: "bob@example.org",
            envid: Some("E+2B1"),
            arrival: 0,
            recipients: &recipients,
            original: b"Subject: hello\r\n\r\nsecret body\r\n",
            ret,
        })
    }

    #[test]
    fn a_report_parses_as_multipart_report() {
        let bytes = sample(Ret::Full);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n"));
        assert!(text.contains("Original-Envelope-Id: E+1\r\n"));
        assert!(text.contains("\r\n\r\nOriginal-Recipient: rfc822; X@far.example\r\nFinal-Recipient: rfc822; x@far.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"));
        assert!(text.contains("Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"));
        assert!(text.contains("secret body"));
        let structure = crate::mime::analyze(&bytes).unwrap();
        let types: Vec<&str> = structure.parts.iter().map(|p| p.content_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "multipart/report",
                "text/plain",
                "message/delivery-status",
                "message/rfc822",
                "text/plain"
            ]
        );
    }

    #[test]
    fn ret_hdrs_returns_only_the_header() {
        let text = String::from_utf8(sample(Ret::Headers)).unwrap();
        assert!(text.contains("Content-Type: text/rfc822-headers\r\n\r\nSubject: hello\r\n"));
        assert!(!text.contains("secret body"));
    }
}
