//! The TOML configuration: its sections, embedded defaults, validation, and the commented
//! rendering printed by `ringmail config`.
//!
//! Everything has a default, so an empty file (or no file) gives the development setup of
//! DESIGN.md §5: loopback listeners at the standard ports + 10000 and `./ringmail-data`.
//! Durations are whole seconds. Unknown keys are errors, so a typo never passes silently.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod cluster;
mod submission;
pub use cluster::{Backend, Cluster, Directory, Network, StaticUser};
pub use submission::Submission;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub tls: Tls,
    pub imap: Imap,
    pub pop3: Pop3,
    pub submission: Submission,
    pub lmtp: Lmtp,
    pub limits: Limits,
    pub log: Log,
    pub cluster: Cluster,
    pub directory: Directory,
    pub metrics: Metrics,
    pub autoconfig: Autoconfig,
    pub oauth: OAuth,
}

/// OAuth 2.0 bearer tokens (OAUTHBEARER, XOAUTH2) for IMAP, POP3 and submission; off while
/// `issuer` is empty.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuth {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// One of these must be in a token's `aud`.
    pub audience: Vec<String>,
    /// Where the issuer publishes its keys (a JWK Set): https, or http to loopback.
    pub jwks_url: String,
    /// The key set in a file instead (offline, or tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// PEM CAs the key server's certificate must chain to; unset: the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_ca: Option<PathBuf>,
    /// The claim that names the user: an address (its local part, for a served domain) or a
    /// user name.
    pub user_claim: String,
    /// Seconds the key set is kept before it is fetched again.
    pub jwks_refresh: u64,
    /// Seconds of clock difference tolerated on `exp` and `nbf`.
    pub leeway: u64,
}

impl Default for OAuth {
    fn default() -> Self {
        OAuth {
            issuer: String::new(),
            audience: Vec::new(),
            jwks_url: String::new(),
            jwks_file: None,
            jwks_ca: None,
            user_claim: "email".into(),
            jwks_refresh: 3600,
            leeway: 60,
        }
    }
}

impl OAuth {
    pub fn is_configured(&self) -> bool {
        !self.issuer.is_empty()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.is_configured() {
            return Ok(());
        }
        let invalid = |s: &str| Err(ConfigError::Invalid(s.into()));
        if self.audience.is_empty() {
            return invalid("oauth.audience must name at least one audience");
        }
        if self.jwks_url.is_empty() == self.jwks_file.is_none() {
            return invalid("oauth needs exactly one of jwks_url and jwks_file");
        }
        let url = &self.jwks_url;
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return invalid("oauth.jwks_url must be an https:// URL");
        }
        if self.user_claim.is_empty() || self.jwks_refresh == 0 {
            return invalid("oauth.user_claim must be set and oauth.jwks_refresh positive");
        }
        Ok(())
    }

    /// The checker's settings, for a server serving `domains`.
    pub fn settings(&self, domains: &[String]) -> crate::auth::oauth::Settings {
        use crate::auth::oauth::KeySource;
        let keys = match &self.jwks_file {
            Some(path) => KeySource::File(path.clone()),
            None => KeySource::Url {
                url: self.jwks_url.clone(),
                ca: self.jwks_ca.clone(),
            },
        };
        crate::auth::oauth::Settings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            keys,
            user_claim: self.user_claim.clone(),
            domains: domains.to_vec(),
            refresh: Duration::from_secs(self.jwks_refresh),
            leeway: self.leeway,
        }
    }
}

/// The Prometheus endpoint (`GET /metrics`); off while `listen` is empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    pub listen: Vec<SocketAddr>,
}

/// Client autoconfiguration over HTTP (Mozilla autoconfig, Microsoft Autodiscover, Apple
/// profiles); off while both lists are empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Autoconfig {
    pub listen: Vec<SocketAddr>,
    /// HTTPS, with the server's certificate.
    pub listen_tls: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    pub data_dir: PathBuf,
    /// Names this server in banners, Received: headers and the self-signed certificate.
    pub hostname: String,
    /// Event-loop threads; 0 means one per core.
    pub workers: usize,
    /// Mail domains served here. Empty: any domain part maps to the local user name.
    pub domains: Vec<String>,
    /// Create the `demo` user (password printed once) when the store has no user at all.
    pub demo_user: bool,
    /// The name clients reach this server by, for client autoconfiguration (Exchange's
    /// ExternalConnectionSettings); empty: `hostname`.
    pub external_hostname: String,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            data_dir: PathBuf::from("./ringmail-data"),
            hostname: "localhost".into(),
            workers: 0,
            domains: Vec::new(),
            demo_user: true,
            external_hostname: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain. Empty: a self-signed certificate is generated into data_dir.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

/// Exchange's `LoginType` (Set-PopSettings / Set-ImapSettings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoginType {
    /// USER/PASS, LOGIN and SASL all allowed without TLS.
    PlainTextLogin,
    /// SASL allowed without TLS; USER/PASS and LOGIN need TLS.
    PlainTextAuthentication,
    /// Every authentication needs TLS first.
    SecureLogin,
}

impl LoginType {
    /// Whether a plaintext password command (USER/PASS, IMAP LOGIN) is allowed.
    pub fn allows_plain_command(self, tls: bool) -> bool {
        tls || self == LoginType::PlainTextLogin
    }

    /// Whether SASL AUTH/AUTHENTICATE is allowed.
    pub fn allows_sasl(self, tls: bool) -> bool {
        tls || self != LoginType::SecureLogin
    }
}

/// `[log] format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (timestamp, level, target, fields): for journald, Loki, Elastic
    /// and the like, which rotate and index themselves.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SortOrder {
    Ascending,
    Descending,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pop3 {
    pub listen: Vec<SocketAddr>,
    pub listen_tls: Vec<SocketAddr>,
    /// Proxy-facing listeners of a back end (DESIGN.md §7): trusted networks only, PROXY v2.
    pub listen_proxy: Vec<SocketAddr>,
    pub login_type: LoginType,
    pub max_connections: u32,
    pub max_connections_per_user: u32,
    pub max_connections_per_ip: u32,
    /// Longest command line in bytes, CRLF included (RFC 2449 §4: 255 octets of arguments).
    pub max_command_size: usize,
    pub pre_auth_timeout: u64,
    pub auth_timeout: u64,
    pub banner: String,
    pub protocol_log: bool,
    pub message_retrieval_sort_order: SortOrder,
}

impl Default for Pop3 {
    fn default() -> Self {
        Pop3 {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 10110))],
            listen_tls: vec![SocketAddr::from(([127, 0, 0, 1], 10995))],
            listen_proxy: Vec::new(),
            login_type: LoginType::SecureLogin,
            max_connections: 20_000,
            max_connections_per_user: 16,
            max_connections_per_ip: 2_000,
            max_command_size: 512,
            pre_auth_timeout: 60,
            auth_timeout: 1800,
            banner: "ringmail POP3 server ready".into(),
            protocol_log: false,
            message_retrieval_sort_order: SortOrder::Ascending,
        }
    }
}

impl Pop3 {
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Imap {
    pub listen: Vec<SocketAddr>,
    pub listen_tls: Vec<SocketAddr>,
    /// Proxy-facing listeners of a back end (DESIGN.md §7): trusted networks only, PROXY v2.
    pub listen_proxy: Vec<SocketAddr>,
    pub login_type: LoginType,
    pub max_connections: u32,
    pub max_connections_per_user: u32,
    pub max_connections_per_ip: u32,
    /// Longest command without its literals, in bytes: clients send long UID sets.
    pub max_command_size: usize,
    /// Largest message APPEND accepts (RFC 7889 APPENDLIMIT).
    pub append_limit: u64,
    /// RFC 9738 MESSAGELIMIT: most messages one command works on (0: no limit).
    pub message_limit: u32,
    /// RFC 9738 SAVELIMIT: most messages one COPY or APPEND saves, other commands unlimited
    /// (0: none). Instead of `message_limit`, never with it.
    pub save_limit: u32,
    pub pre_auth_timeout: u64,
    pub auth_timeout: u64,
    /// Seconds between "* OK Still here" lines in IDLE.
    pub idle_keepalive: u64,
    pub protocol_log: bool,
}

impl Imap {
    pub fn timeouts(&self) -> crate::engine::Timeouts {
        crate::engine::Timeouts {
            pre_auth: Duration::from_secs(self.pre_auth_timeout),
            auth: Duration::from_secs(self.auth_timeout),
        }
    }

    /// The RFC 9738 limit the IMAP service announces.
    pub fn message_limit(&self) -> crate::imap::limit::MessageLimit {
        use crate::imap::limit::MessageLimit;
        match (self.message_limit, self.save_limit) {
            (0, 0) => MessageLimit::None,
            (0, n) => MessageLimit::Save(n),
            (n, _) => MessageLimit::Message(n),
        }
    }
}

impl Default for Imap {
    fn default() -> Self {
        Imap {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 10143))],
            listen_tls: vec![SocketAddr::from(([127, 0, 0, 1], 10993))],
            listen_proxy: Vec::new(),
            login_type: LoginType::SecureLogin,
            max_connections: 20_000,
            max_connections_per_user: 16,
            max_connections_per_ip: 2_000,
            max_command_size: 64 * 1024,
            append_limit: 50 * 1024 * 1024,
            // Far above any mailbox a client reads whole, low enough that one command cannot
            // hold the writer with a transaction of millions of records.
            message_limit: 1_000_000,
            save_limit: 0,
            pre_auth_timeout: 60,
            auth_timeout: 1800,
            idle_keepalive: 120,
            protocol_log: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Lmtp {
    pub listen: Vec<SocketAddr>,
    /// Unix socket, relative to data_dir; `ringmail deliver` connects here.
    pub socket: PathBuf,
    pub max_message_size: u64,
    pub max_recipients: usize,
    pub timeout: u64,
    pub protocol_log: bool,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
}

impl Default for Lmtp {
    fn default() -> Self {
        Lmtp {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 10024))],
            socket: PathBuf::from("lmtp.sock"),
            max_message_size: 50 * 1024 * 1024,
            max_recipients: 1000,
            timeout: 300,
            protocol_log: false,
            // An MTA opens a few dozen at most (Postfix: 20 per destination by default).
            max_connections: 1_000,
            max_connections_per_ip: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// First delay after a failed login, in seconds; it doubles per failure.
    pub login_failure_delay: u64,
    /// Ceiling of that delay, in seconds.
    pub login_failure_delay_max: u64,
    /// Failed logins on one connection before it is closed.
    pub max_login_failures: u32,
    /// Login checks from one address in flight at once; more wait.
    pub max_logins_in_flight_per_ip: u32,
    /// Seconds a password that verified is remembered (`auth::cache`), so the same login
    /// again costs an HMAC instead of argon2; 0 turns the cache off. A changed password or a
    /// disabled account takes effect at once whatever this is. At most 30 days.
    pub credential_cache_ttl: u64,
    /// Verified credentials remembered at most.
    pub credential_cache_entries: usize,
    /// MIME nesting kept in a message's structure (deeper parts are opaque); at most 64.
    pub max_mime_depth: usize,
    /// MIME parts split out of one message (the rest stay inside their parent).
    pub max_mime_parts: usize,
    /// Fields in one header of a message at ingest; more is refused.
    pub max_header_fields: usize,
    /// Bytes in one header line of a message at ingest; longer is refused.
    pub max_header_line: usize,
    /// How deep IMAP SEARCH keys may nest (parentheses, NOT, OR).
    pub max_search_depth: usize,
    /// Ranges in one IMAP sequence set.
    pub max_sequence_ranges: usize,
    /// Bytes a COMPRESS=DEFLATE client's input may inflate to per second (0: no limit);
    /// a faster client is slowed, not refused.
    pub max_inflate_per_second: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            login_failure_delay: 2,
            login_failure_delay_max: 15,
            max_login_failures: 3,
            max_logins_in_flight_per_ip: 16,
            credential_cache_ttl: crate::auth::cache::DEFAULT_TTL.as_secs(),
            credential_cache_entries: crate::auth::cache::DEFAULT_MAX_ENTRIES,
            max_mime_depth: crate::mime::Limits::default().max_depth,
            max_mime_parts: crate::mime::Limits::default().max_parts,
            max_header_fields: crate::mime::Limits::default().max_header_fields,
            max_header_line: crate::mime::Limits::default().max_header_line,
            max_search_depth: crate::imap::parse::ParseLimits::default().max_search_depth,
            max_sequence_ranges: crate::imap::parse::ParseLimits::default().max_sequence_ranges,
            // Far above what a client sends (commands and uploads), far below what one core
            // could be made to chew through.
            max_inflate_per_second: 16 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// tracing filter, e.g. "info" or "ringmail=debug".
    pub level: String,
    /// How log lines are written to stderr: text for people, JSON for a log collector.
    pub format: LogFormat,
    /// Protocol logs (one file per protocol per day), relative to data_dir.
    pub protocol_log_dir: PathBuf,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            format: LogFormat::Text,
            protocol_log_dir: PathBuf::from("logs"),
        }
    }
}

impl Config {
    /// Loads `path`, or the embedded defaults when there is none.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let config = match path {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Config::parse(&text).map_err(|e| match e {
                    ConfigError::Parse { message, .. } => ConfigError::Parse {
                        path: path.to_owned(),
                        message,
                    },
                    other => other,
                })?
            }
        };
        config.validate()?;
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|span| {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: ")
                })
                .unwrap_or_default();
            ConfigError::Parse {
                path: PathBuf::new(),
                message: format!("{at}{}", e.message().trim_end()),
            }
        })
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |s: &str| Err(ConfigError::Invalid(s.into()));
        // TOML's integers are 64-bit signed (toml.io, "Integer"); the parser takes larger ones
        // into unsigned settings, but nothing above that range means anything here, and
        // `ringmail config` could not print it back.
        if let Err(e) = toml::Value::try_from(self) {
            return Err(ConfigError::Invalid(format!(
                "a setting is out of range ({e}): numbers must be at most {}",
                i64::MAX
            )));
        }
        // RFC 9051 §5.4: the autologout timer must be at least 30 minutes.
        if self.imap.auth_timeout < 1800 {
            return invalid("imap.auth_timeout must be at least 1800 (RFC 9051 §5.4)");
        }
        if self.imap.pre_auth_timeout == 0 || self.imap.idle_keepalive == 0 {
            return invalid("imap timeouts must be positive");
        }
        if self.imap.max_command_size < 1024 {
            return invalid("imap.max_command_size must be at least 1024");
        }
        if self.imap.append_limit == 0 || self.imap.append_limit >= u64::from(u32::MAX) {
            return invalid("imap.append_limit must be between 1 and 4294967294");
        }
        if self.imap.message_limit != 0 && self.imap.save_limit != 0 {
            return invalid("imap.message_limit and imap.save_limit exclude each other: set one to 0 (RFC 9738)");
        }
        // A verified password kept for longer than a month is no longer a cache.
        if self.limits.credential_cache_ttl > 30 * 86_400 {
            return invalid("limits.credential_cache_ttl must be at most 2592000 (30 days)");
        }
        if self.pop3.max_command_size < 64 {
            return invalid("pop3.max_command_size must be at least 64");
        }
        if self.pop3.pre_auth_timeout == 0 || self.pop3.auth_timeout == 0 {
            return invalid("pop3 timeouts must be positive");
        }
        // RFC 1939 §3: the autologout timer must be at least 10 minutes.
        if self.pop3.auth_timeout < 600 {
            return invalid("pop3.auth_timeout must be at least 600 (RFC 1939 §3)");
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return invalid("tls.cert and tls.key go together");
        }
        // Part offsets of the stored MIME structure are 32-bit.
        if self.lmtp.max_message_size == 0 || self.lmtp.max_message_size >= u64::from(u32::MAX) {
            return invalid("lmtp.max_message_size must be between 1 and 4294967294");
        }
        if self.lmtp.max_recipients == 0 {
            return invalid("lmtp.max_recipients must be positive");
        }
        self.validate_listeners()?;
        self.submission.validate()?;
        self.oauth.validate()?;
        self.cluster.validate()?;
        self.directory.validate(&self.cluster)?;
        if !(1..=64).contains(&self.limits.max_mime_depth) {
            return invalid("limits.max_mime_depth must be between 1 and 64");
        }
        if self.limits.max_mime_parts == 0 || self.limits.max_header_fields == 0 || self.limits.max_header_line == 0 {
            return invalid("limits.max_mime_parts, max_header_fields and max_header_line must be positive");
        }
        if !(1..=256).contains(&self.limits.max_search_depth) || self.limits.max_sequence_ranges == 0 {
            return invalid("limits.max_search_depth must be between 1 and 256, max_sequence_ranges positive");
        }
        if self.limits.max_logins_in_flight_per_ip == 0 {
            return invalid("limits.max_logins_in_flight_per_ip must be positive");
        }
        if self.limits.max_login_failures == 0 {
            return invalid("limits.max_login_failures must be positive");
        }
        if self.server.hostname.is_empty() || self.server.hostname.contains(char::is_whitespace) {
            return invalid("server.hostname must be a host name");
        }
        let external = &self.server.external_hostname;
        if !external
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return invalid("server.external_hostname must be a host name");
        }
        Ok(())
    }

    /// Every address the listeners of this configuration name, each with its setting.
    pub fn listen_addresses(&self) -> Vec<(&'static str, SocketAddr)> {
        let c = self;
        let settings: [(&'static str, &[SocketAddr]); 13] = [
            ("imap.listen", &c.imap.listen),
            ("imap.listen_tls", &c.imap.listen_tls),
            ("imap.listen_proxy", &c.imap.listen_proxy),
            ("pop3.listen", &c.pop3.listen),
            ("pop3.listen_tls", &c.pop3.listen_tls),
            ("pop3.listen_proxy", &c.pop3.listen_proxy),
            ("submission.listen", &c.submission.listen),
            ("submission.listen_tls", &c.submission.listen_tls),
            ("submission.listen_proxy", &c.submission.listen_proxy),
            ("lmtp.listen", &c.lmtp.listen),
            ("metrics.listen", &c.metrics.listen),
            ("autoconfig.listen", &c.autoconfig.listen),
            ("autoconfig.listen_tls", &c.autoconfig.listen_tls),
        ];
        settings
            .into_iter()
            .flat_map(|(name, addrs)| addrs.iter().map(move |a| (name, *a)))
            .collect()
    }

    /// No two listeners on one address: the protocol listeners bind with SO_REUSEPORT (one
    /// socket per core), which would let two of them share an address and split its
    /// connections between two protocols without a word.
    fn validate_listeners(&self) -> Result<(), ConfigError> {
        let addrs = self.listen_addresses();
        for (i, (name, addr)) in addrs.iter().enumerate() {
            if let Some((other, at)) = addrs[..i].iter().find(|(_, a)| overlap(a, addr)) {
                return Err(ConfigError::Invalid(format!(
                    "{other} ({at}) and {name} ({addr}) overlap: each listener needs an address of its own"
                )));
            }
        }
        Ok(())
    }

    pub fn workers(&self) -> usize {
        match self.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// This back end's name in the directory (`mailHost`).
    pub fn backend_name(&self) -> &str {
        if self.cluster.name.is_empty() {
            &self.server.hostname
        } else {
            &self.cluster.name
        }
    }

    /// Bounds on an IMAP command's structure, from `[limits]`.
    pub fn parse_limits(&self) -> crate::imap::parse::ParseLimits {
        crate::imap::parse::ParseLimits {
            max_search_depth: self.limits.max_search_depth,
            max_sequence_ranges: self.limits.max_sequence_ranges,
        }
    }

    /// Where a large message is spooled while it arrives (`crate::spool`): the data directory,
    /// on the store's file system.
    pub fn spool_dir(&self) -> Option<std::sync::Arc<std::path::Path>> {
        Some(std::sync::Arc::from(self.server.data_dir.as_path()))
    }

    /// What one message may hold, from `[limits]`.
    pub fn mime_limits(&self) -> crate::mime::Limits {
        crate::mime::Limits {
            max_depth: self.limits.max_mime_depth,
            max_parts: self.limits.max_mime_parts,
            max_header_fields: self.limits.max_header_fields,
            max_header_line: self.limits.max_header_line,
        }
    }

    /// Each protocol's `max_connections`, named, for the descriptor budget.
    pub fn connection_limits(&self) -> [(&'static str, u32); 4] {
        [
            ("imap", self.imap.max_connections),
            ("pop3", self.pop3.max_connections),
            ("submission", self.submission.max_connections),
            ("lmtp", self.lmtp.max_connections),
        ]
    }

    /// The name clients reach this server by.
    pub fn external_hostname(&self) -> &str {
        if self.server.external_hostname.is_empty() {
            &self.server.hostname
        } else {
            &self.server.external_hostname
        }
    }

    pub fn lmtp_socket_path(&self) -> PathBuf {
        self.server.data_dir.join(&self.lmtp.socket)
    }

    /// The effective configuration as TOML, each setting preceded by what it means.
    pub fn render(&self) -> String {
        let value = toml::Value::try_from(self).expect("a validated config serializes: `validate` checks it");
        let mut out = String::from(
            "# ringmail effective configuration (`ringmail config`).\n\
             # Durations are seconds. Save as a file and pass it with --config.\n",
        );
        let toml::Value::Table(sections) = value else {
            unreachable!("a struct serializes to a table")
        };
        for (section, body) in sections {
            out.push_str(&format!("\n[{section}]\n"));
            let toml::Value::Table(fields) = body else {
                continue;
            };
            for (key, v) in &fields {
                if let Some(doc) = describe(&section, key) {
                    out.push_str(&format!("# {doc}\n"));
                }
                if SECRETS.contains(&(section.as_str(), key.as_str())) {
                    out.push_str(&format!("{key} = \"(hidden; see the config file)\"\n"));
                } else {
                    out.push_str(&format!("{key} = {v}\n"));
                }
            }
            for (_, key, example) in OPTIONAL
                .iter()
                .filter(|(s, k, _)| *s == section && !fields.contains_key(*k))
            {
                if let Some(doc) = describe(&section, key) {
                    out.push_str(&format!("# {doc}\n"));
                }
                out.push_str(&format!("# {key} = {example}\n"));
            }
        }
        out
    }
}

/// Settings `ringmail config` does not print, so its output can be shown around.
const SECRETS: &[(&str, &str)] = &[
    ("submission", "relay_password"),
    ("cluster", "proxy_secret"),
    ("directory", "ldap_bind_password"),
];

/// Settings that are unset by default, shown commented out with an example value.
const OPTIONAL: &[(&str, &str, &str)] = &[
    ("tls", "cert", "\"/etc/ringmail/fullchain.pem\""),
    ("tls", "key", "\"/etc/ringmail/privkey.pem\""),
    ("submission", "relay", "\"smarthost.example.net:587\""),
    ("submission", "relay_user", "\"ringmail\""),
    ("submission", "relay_password", "\"secret\""),
    ("submission", "relay_ca", "\"/etc/ssl/certs/ca-certificates.crt\""),
    ("directory", "ldap_ca", "\"/etc/ldap/ca.pem\""),
    ("cluster", "backend_ca", "\"/etc/ringmail/backends-ca.pem\""),
    ("oauth", "jwks_file", "\"/etc/ringmail/jwks.json\""),
    ("oauth", "jwks_ca", "\"/etc/ssl/certs/ca-certificates.crt\""),
];

fn describe(section: &str, key: &str) -> Option<&'static str> {
    Some(match (section, key) {
        ("server", "data_dir") => "Where the LMDB store, certificate, sockets and logs live.",
        ("server", "hostname") => "This server's name in banners, headers and the certificate.",
        ("server", "workers") => "Event-loop threads; 0 = one per core.",
        ("server", "domains") => "Mail domains served; empty accepts any domain.",
        ("server", "demo_user") => "Create user `demo` with a printed password if no user exists.",
        ("server", "external_hostname") => "The name clients connect to, in autoconfiguration; empty: hostname.",
        ("metrics", "listen") => "Prometheus endpoint (GET /metrics), e.g. [\"127.0.0.1:9180\"]; empty: off.",
        ("autoconfig", "listen") => "HTTP listeners for client autoconfiguration (Thunderbird, Outlook, Apple); empty: off.",
        ("autoconfig", "listen_tls") => "HTTPS listeners for client autoconfiguration, with tls.cert.",
        ("oauth", "issuer") => "OAuth issuer (`iss`) whose bearer tokens log in (OAUTHBEARER, XOAUTH2); empty: off.",
        ("oauth", "audience") => "A token's `aud` must hold one of these (this server's client id).",
        ("oauth", "jwks_url") => "The issuer's JWK Set URL (https); its keys are cached.",
        ("oauth", "jwks_file") => "The issuer's JWK Set in a file, instead of jwks_url.",
        ("oauth", "jwks_ca") => "PEM CAs the jwks_url server's certificate must chain to; unset: system CAs.",
        ("oauth", "user_claim") => "Claim naming the user: an address (its local part) or a user name.",
        ("oauth", "jwks_refresh") => "Seconds the issuer's keys are kept before they are fetched again.",
        ("oauth", "leeway") => "Seconds of clock difference allowed on a token's exp and nbf.",
        ("tls", "cert") => "PEM certificate chain; unset = self-signed, generated once.",
        ("tls", "key") => "PEM private key for tls.cert.",
        (_, "listen") => "Plaintext listeners (STLS/STARTTLS upgrade where the protocol has it).",
        (_, "listen_tls") => "Implicit-TLS listeners.",
        (_, "login_type") => "plain-text-login | plain-text-authentication | secure-login (TLS first).",
        (_, "max_connections") => "Connections this server holds for the protocol, idle included.",
        (_, "max_connections_per_user") => "Connections one user may hold.",
        (_, "max_connections_per_ip") => "Connections one source address may hold.",
        (_, "max_command_size") => "Longest command line in bytes.",
        (_, "pre_auth_timeout") => "Seconds from connect to login, and for a command line to end after login.",
        (_, "auth_timeout") => "Seconds a logged-in connection may idle.",
        (_, "banner") => "Greeting text.",
        (_, "protocol_log") => "Log every command and reply (passwords redacted).",
        ("imap", "append_limit") => "Largest message APPEND accepts, in bytes.",
        ("imap", "message_limit") => "Most messages one command works on (MESSAGELIMIT); 0: none.",
        ("imap", "save_limit") => "Most messages one COPY/APPEND saves (SAVELIMIT), instead of message_limit; 0: none.",
        (_, "listen_proxy") => "Back end: listeners for front ends (trusted networks, PROXY v2 header).",
        ("cluster", "name") => "Back end: its name in mailHost and cluster.backends; empty: server.hostname.",
        ("cluster", "site") => "The site this machine is in.",
        ("cluster", "proxy_user") => "Name front ends log in to back ends under.",
        ("cluster", "proxy_secret") => "Password of proxy_user, the same on front and back ends; empty: none.",
        ("cluster", "proxy_tls") => "Back end: proxy-facing listeners speak TLS after the PROXY header.",
        ("cluster", "pass_tls") => "Front end: TLS clients' sessions pass to the back end after login (links in the clear).",
        ("cluster", "backend_ca") => "Front end: PEM CAs back ends' certificates chain to (backends[].tls); unset: system CAs.",
        ("cluster", "trusted_networks") => "Networks a back end's proxy-facing listeners accept.",
        ("cluster", "backends") => {
            "Back ends a front end routes to: name, site, imap, pop3, submission (listen_proxy addresses), lmtp, tls, tls_name."
        }
        ("directory", "users") => "Static directory: name, password_hash, scram, mail_host, admin, imap, pop3.",
        ("directory", "ldap_url") => "LDAP directory (ldap:// or ldaps://); empty: none. Schema: docs/ldap/.",
        ("directory", "ldap_base") => "Where accounts are searched (subtree).",
        ("directory", "ldap_bind_dn") => "Entry ringmail binds as to search, and to write for `ringmail user`.",
        ("directory", "ldap_bind_password") => "Password of ldap_bind_dn.",
        ("directory", "ldap_user_filter") => "Which entries are accounts; ANDed with (uid=NAME).",
        ("directory", "ldap_starttls") => "STARTTLS on an ldap:// URL, certificate verified.",
        ("directory", "ldap_ca") => "PEM CAs the LDAP server's certificate must chain to; unset: system CAs.",
        ("directory", "ldap_timeout") => "Seconds an LDAP operation may take.",
        ("directory", "ldap_sync") => "Keep the cache fresh by RFC 4533 content sync where the server offers it.",
        ("directory", "cache_ttl") => "Seconds a looked-up account stays cached.",
        ("imap", "idle_keepalive") => "Seconds between keepalive lines in IDLE.",
        ("pop3", "message_retrieval_sort_order") => "ascending | descending (by arrival).",
        ("submission", "max_message_size") => "Largest message accepted, in bytes (SIZE).",
        ("submission", "max_recipients") => "Recipients per message (at least 100, RFC 5321).",
        ("submission", "relay") => "Smarthost \"host:port\" for remote recipients; unset refuses them.",
        ("submission", "relay_starttls") => "Require STARTTLS (certificate verified) to the smarthost.",
        ("submission", "relay_user") => "User name for AUTH PLAIN at the smarthost; unset: no AUTH.",
        ("submission", "relay_password") => "Password for relay_user.",
        ("submission", "relay_ca") => "PEM CAs the smarthost's certificate must chain to; unset: system CAs.",
        ("submission", "max_queue_lifetime") => "Seconds a message may wait in the queue before it bounces.",
        ("submission", "retry_base") => "Seconds before the first retry; each retry waits twice as long…",
        ("submission", "retry_max") => "…up to this many seconds between retries.",
        ("lmtp", "socket") => "Unix socket under data_dir; `ringmail deliver` uses it.",
        ("lmtp", "max_message_size") => "Largest message accepted, in bytes.",
        ("lmtp", "max_recipients") => "Recipients per transaction.",
        ("lmtp", "timeout") => "Seconds an LMTP client may idle.",
        ("limits", "login_failure_delay") => "First delay after a failed login; doubles each time.",
        ("limits", "login_failure_delay_max") => "Ceiling of the failed-login delay.",
        ("limits", "max_login_failures") => "Failed logins before the connection is closed.",
        ("limits", "credential_cache_ttl") => "Seconds a verified password is remembered (as an HMAC) so logins again skip argon2; 0: off.",
        ("limits", "credential_cache_entries") => "Verified passwords remembered at most.",
        ("limits", "max_logins_in_flight_per_ip") => "Login checks one address may have running at once; more wait.",
        ("limits", "max_mime_depth") => "MIME nesting kept in a message's structure (1-64); deeper parts are served opaque.",
        ("limits", "max_mime_parts") => "MIME parts split out of one message; the rest stay inside their parent.",
        ("limits", "max_header_fields") => "Fields in one header of a message; more is refused at delivery and APPEND.",
        ("limits", "max_search_depth") => "How deep IMAP SEARCH keys may nest (1-256); deeper is BAD.",
        ("limits", "max_sequence_ranges") => "Ranges in one IMAP sequence set; more is BAD.",
        ("limits", "max_inflate_per_second") => "Bytes a COMPRESS client's input may inflate to per second (0: no limit); faster clients are slowed.",
        ("limits", "max_header_line") => "Bytes in one header line of a message; longer is refused at delivery and APPEND.",
        ("log", "level") => "tracing filter: error, warn, info, debug, trace.",
        ("log", "format") => "text | json (one JSON object per line on stderr, for a log collector).",
        ("log", "protocol_log_dir") => "Protocol log folder under data_dir, one file per day.",
        _ => return None,
    })
}

/// Whether binding `a` and `b` would take the same port on some address: the same address, or
/// a wildcard beside any address of its family (and IPv6's `[::]`, dual-stack by default on
/// Linux, beside IPv4 ones too). Port 0 is the system's pick and meets nothing.
fn overlap(a: &SocketAddr, b: &SocketAddr) -> bool {
    let covers = |w: &SocketAddr, x: &SocketAddr| w.ip().is_unspecified() && (w.is_ipv6() || x.is_ipv4());
    a.port() != 0 && a.port() == b.port() && (a.ip() == b.ip() || covers(a, b) || covers(b, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.pop3.listen, vec!["127.0.0.1:10110".parse().unwrap()]);
        assert_eq!(c.pop3.login_type, LoginType::SecureLogin);
        c.validate().unwrap();
    }

    /// Two listeners on one address would share its connections (SO_REUSEPORT): refused,
    /// naming both settings; a wildcard meets every address of its family on its port.
    #[test]
    fn listeners_on_one_address_are_refused() {
        for (text, both) in [
            (
                "[pop3]\nlisten = [\"127.0.0.1:10143\"]\n",
                ("imap.listen ", "pop3.listen "),
            ),
            (
                "[imap]\nlisten_proxy = [\"127.0.0.1:1993\"]\n[pop3]\nlisten_proxy = [\"127.0.0.1:1993\"]\n",
                ("imap.listen_proxy", "pop3.listen_proxy"),
            ),
            (
                "[lmtp]\nlisten = [\"0.0.0.0:10993\"]\n",
                ("imap.listen_tls", "lmtp.listen"),
            ),
            (
                "[metrics]\nlisten = [\"[::]:10110\"]\n",
                ("pop3.listen ", "metrics.listen"),
            ),
        ] {
            let e = Config::parse(text).unwrap().validate().expect_err(text).to_string();
            assert!(e.contains(both.0) && e.contains(both.1) && !e.contains('\n'), "{e}");
        }
        for text in [
            // Another address, another family, or the system's pick of a port.
            "[pop3]\nlisten = [\"127.0.0.2:10143\"]\n",
            "[pop3]\nlisten = [\"[::1]:10143\"]\n",
            "[pop3]\nlisten = [\"127.0.0.1:0\"]\n[lmtp]\nlisten = [\"127.0.0.1:0\"]\n",
        ] {
            Config::parse(text).unwrap().validate().expect(text);
        }
    }

    /// Found by the config fuzz target: a number above TOML's 64-bit signed range parsed into
    /// an unsigned setting, validated, and then `ringmail config` panicked printing it.
    #[test]
    fn numbers_beyond_what_toml_can_hold_are_refused() {
        for text in [
            "[server]\nworkers = 1000000000278_556_5550\n",
            "[imap]\nappend_limit = 18446744073709551615\n",
            "[submission]\nmax_message_size = 9223372036854775808\n",
        ] {
            // Refused at parsing or at validation, in one line either way.
            let e = match Config::parse(text) {
                Ok(config) => config.validate().expect_err(text).to_string(),
                Err(e) => e.to_string(),
            };
            assert!(!e.contains('\n'), "one line: {e}");
        }
        let parsed = Config::parse("[server]\nworkers = 1000000000278_556_5550\n").expect("toml takes it");
        assert!(parsed.validate().unwrap_err().to_string().contains("out of range"));
        let mut fine = Config::default();
        fine.server.workers = i64::MAX as usize;
        assert!(toml::Value::try_from(&fine).is_ok());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Config::parse("[pop3]\nlisten_tsl = []\n").is_err());
    }

    #[test]
    fn rendered_config_parses_back() {
        let mut c = Config::default();
        c.pop3.login_type = LoginType::PlainTextAuthentication;
        let again = Config::parse(&c.render()).unwrap();
        assert_eq!(again.pop3.login_type, LoginType::PlainTextAuthentication);
        assert!(c.render().contains("# Greeting text."));
    }

    #[test]
    fn submission_settings_render_and_validate() {
        let text = Config::default().render();
        for key in [
            "[submission]",
            "listen = [\"127.0.0.1:10587\"]",
            "listen_tls = [\"127.0.0.1:10465\"]",
            "max_queue_lifetime = 432000",
            "retry_base = 60",
            "# relay = ",
            "# relay_user = ",
            "relay_starttls = true",
            "max_recipients = 100",
        ] {
            assert!(text.contains(key), "{key} missing");
        }
        let c = Config::parse("[submission]\nrelay = \"[::1]:2525\"\nretry_base = 1\n").unwrap();
        c.validate().unwrap();
        assert_eq!(c.submission.relay_host_port(), Some(("::1", 2525)));
        assert_eq!(
            Config::parse(&c.render()).unwrap().submission.relay.as_deref(),
            Some("[::1]:2525")
        );
        let secret = Config::parse("[submission]\nrelay_user = \"u\"\nrelay_password = \"hunter2\"\n").unwrap();
        assert!(!secret.render().contains("hunter2"), "passwords are not printed");
        for bad in [
            "relay = \"nohost\"",
            "relay_user = \"u\"",
            "retry_base = 0",
            "max_recipients = 5",
        ] {
            let c = Config::parse(&format!("[submission]\n{bad}\n")).unwrap();
            assert!(c.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn login_types_mean_what_exchange_means() {
        use LoginType::*;
        assert!(PlainTextLogin.allows_plain_command(false));
        assert!(!PlainTextAuthentication.allows_plain_command(false));
        assert!(PlainTextAuthentication.allows_sasl(false));
        assert!(!SecureLogin.allows_sasl(false));
        assert!(SecureLogin.allows_plain_command(true));
    }
}
