//! The `[submission]` section: RFC 6409 message submission and the outbound queue behind it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, LoginType};

/// RFC 6409 message submission, and the outbound queue behind it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Submission {
    pub listen: Vec<SocketAddr>,
    pub listen_tls: Vec<SocketAddr>,
    /// Proxy-facing listeners of a back end (DESIGN.md §7): trusted networks only, PROXY v2.
    pub listen_proxy: Vec<SocketAddr>,
    pub login_type: LoginType,
    pub max_connections: u32,
    pub max_connections_per_user: u32,
    pub max_connections_per_ip: u32,
    /// Longest command line in bytes, CRLF included (RFC 5321 §4.5.3.1.4: at least 512).
    pub max_command_size: usize,
    pub pre_auth_timeout: u64,
    /// RFC 5321 §4.5.3.2.7: a server waits at least 5 minutes for the next command.
    pub auth_timeout: u64,
    pub max_message_size: u64,
    pub max_recipients: usize,
    /// Smarthost for remote recipients, "host:port"; unset refuses them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    pub relay_starttls: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_password: Option<String>,
    /// PEM file of the CAs the smarthost's certificate must chain to; unset: the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_ca: Option<PathBuf>,
    /// Seconds a message may wait in the queue before it is bounced.
    pub max_queue_lifetime: u64,
    /// Seconds before the first retry; each later one waits twice as long…
    pub retry_base: u64,
    /// …up to this many seconds.
    pub retry_max: u64,
    pub protocol_log: bool,
}

impl Default for Submission {
    fn default() -> Self {
        Submission {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 10587))],
            listen_tls: vec![SocketAddr::from(([127, 0, 0, 1], 10465))],
            listen_proxy: Vec::new(),
            login_type: LoginType::SecureLogin,
            max_connections: 5_000,
            max_connections_per_user: 16,
            max_connections_per_ip: 500,
            max_command_size: 2048,
            pre_auth_timeout: 60,
            auth_timeout: 300,
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            relay: None,
            relay_starttls: true,
            relay_user: None,
            relay_password: None,
            relay_ca: None,
            max_queue_lifetime: 5 * 24 * 3600,
            retry_base: 60,
            retry_max: 3600,
            protocol_log: false,
        }
    }
}

impl Submission {
    pub fn pre_auth_timeout(&self) -> Duration {
        Duration::from_secs(self.pre_auth_timeout)
    }
    pub fn auth_timeout(&self) -> Duration {
        Duration::from_secs(self.auth_timeout)
    }
    pub fn timeouts(&self) -> crate::engine::Timeouts {
        crate::engine::Timeouts {
            pre_auth: self.pre_auth_timeout(),
            auth: self.auth_timeout(),
        }
    }

    /// The smarthost's host name (for TLS) and port, when one is configured.
    pub fn relay_host_port(&self) -> Option<(&str, u16)> {
        let relay = self.relay.as_deref()?;
        let (host, port) = relay.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some((host, port.parse().ok()?))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |s: &str| Err(ConfigError::Invalid(s.into()));
        if self.max_command_size < 512 {
            return invalid("submission.max_command_size must be at least 512 (RFC 5321 §4.5.3.1.4)");
        }
        if self.pre_auth_timeout == 0 || self.auth_timeout == 0 {
            return invalid("submission timeouts must be positive");
        }
        if self.max_message_size == 0 || self.max_message_size >= u64::from(u32::MAX) {
            return invalid("submission.max_message_size must be between 1 and 4294967294");
        }
        // RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted.
        if self.max_recipients < 100 {
            return invalid("submission.max_recipients must be at least 100 (RFC 5321 §4.5.3.1.8)");
        }
        if self.relay.is_some() && self.relay_host_port().is_none_or(|(h, _)| h.is_empty()) {
            return invalid("submission.relay must be \"host:port\"");
        }
        if self.relay_user.is_some() != self.relay_password.is_some() {
            return invalid("submission.relay_user and relay_password go together");
        }
        if self.retry_base == 0 || self.retry_max < self.retry_base || self.max_queue_lifetime == 0 {
            return invalid("submission: retry_base > 0, retry_max >= retry_base, max_queue_lifetime > 0");
        }
        Ok(())
    }
}
