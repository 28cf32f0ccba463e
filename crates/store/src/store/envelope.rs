//! What the queue keeps of a message's envelope besides its addresses: the ESMTP parameters
//! of MAIL and RCPT as they were received, SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC
//! 6531), AUTH (RFC 4954 §5) and the DSN parameters (RFC 3461 §4). Plain data, stored as JSON
//! in queue entries; `smtp::params` parses them and says what they allow.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Body {
    #[default]
    SevenBit,
    EightBitMime,
}

/// RFC 3461 §4.3: how much of the message a failure report returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ret {
    Full,
    Headers,
}

/// RFC 3461 §4.1: when the sender wants a report. `never` is all three false.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MailParams {
    pub size: Option<u64>,
    pub body: Body,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    /// RFC 3461 §4.4, still xtext-encoded.
    pub envid: Option<String>,
    /// RFC 4954 §5: the identity the previous hop vouched for; recorded, never trusted.
    pub auth: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RcptParams {
    pub notify: Option<Notify>,
    /// RFC 3461 §4.2 `addr-type;xtext`, as sent.
    pub orcpt: Option<String>,
}

impl MailParams {
    /// Parameters an LMTP peer may send: those LHLO advertises.
    pub fn lmtp_compatible(&self) -> bool {
        !self.smtputf8 && self.ret.is_none() && self.envid.is_none() && self.auth.is_none()
    }
}

impl RcptParams {
    pub fn is_empty(&self) -> bool {
        self.notify.is_none() && self.orcpt.is_none()
    }
}
