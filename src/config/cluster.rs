//! `[cluster]` and `[directory]`: several machines (DESIGN.md §7). Back ends (`ringmail serve`)
//! hold mailboxes; front ends (`ringmail proxy`) accept clients, find each user's back end in
//! the directory and relay the session there. A back end's proxy-facing listeners
//! (`[imap] listen_proxy`) take connections only from `trusted_networks`, each opened with a
//! PROXY protocol v2 header carrying the client's address, and let `proxy_user` log in with
//! `proxy_secret` on behalf of any user (SASL PLAIN's authorization identity).

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::auth::scram::ScramKeys;

/// An IP network, written `addr/prefix` (or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Network {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_eq(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let bits = usize::from(prefix);
    let (whole, rest) = (bits / 8, bits % 8);
    if net[..whole] != ip[..whole] {
        return false;
    }
    rest == 0 || (net[whole] ^ ip[whole]) & (0xffu8 << (8 - rest)) == 0
}

impl TryFrom<String> for Network {
    type Error = String;
    fn try_from(s: String) -> Result<Network, String> {
        let (addr, prefix) = s.split_once('/').unwrap_or((&s, ""));
        let addr: IpAddr = addr.parse().map_err(|_| format!("invalid network {s:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            "" => max,
            p => p
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or(format!("invalid prefix in {s:?}"))?,
        };
        Ok(Network { addr, prefix })
    }
}

impl From<Network> for String {
    fn from(n: Network) -> String {
        format!("{}/{}", n.addr, n.prefix)
    }
}

/// A back end as the front ends know it: its proxy-facing listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// The name users' `mail_host` (LDAP `mailHost`) gives.
    pub name: String,
    pub site: String,
    /// Its `[imap] listen_proxy` address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imap: Option<SocketAddr>,
    /// Its `[pop3] listen_proxy` address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pop3: Option<SocketAddr>,
    /// Its `[submission] listen_proxy` address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission: Option<SocketAddr>,
    /// Its LMTP listener, where a front end's LMTP delivers this back end's recipients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lmtp: Option<SocketAddr>,
    /// Its `[cluster] listen_move` address, where `ringmail move` sends mailboxes to it.
    #[serde(default, rename = "move", skip_serializing_if = "Option::is_none")]
    pub move_to: Option<SocketAddr>,
    /// TLS on the proxy-facing connections (the back end sets `[cluster] proxy_tls`); its
    /// certificate must chain to `cluster.backend_ca` and name `tls_name`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// The name the back end's certificate must carry; default: `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// This back end's name in the directory's `mailHost` (and in front ends'
    /// `cluster.backends`); empty: `server.hostname`.
    pub name: String,
    /// The site this machine is in.
    pub site: String,
    /// The name a front end logs in to back ends under.
    pub proxy_user: String,
    /// The password that goes with `proxy_user`, the same on front and back ends. Empty: no
    /// proxy may log in (a back end's proxy-facing listeners then refuse every login).
    pub proxy_secret: String,
    /// Where a back end's proxy-facing listeners accept connections from.
    pub trusted_networks: Vec<Network>,
    /// The back ends a front end routes to.
    pub backends: Vec<Backend>,
    /// Back end: its proxy-facing listeners speak TLS after the PROXY header.
    pub proxy_tls: bool,
    /// Front end: after a TLS client's login, its TLS session (keys and sequence numbers) is
    /// passed to the back end, which seals and opens its records from then on while the
    /// front end relays them as they are (`net::handoff`). Only over links in the clear
    /// (`backends[].tls` off), inside `trusted_networks`, as the mail itself is.
    pub pass_tls: bool,
    /// Back end: where other back ends send it mailboxes that move here (`ringmail move`),
    /// from `trusted_networks` only, proving `proxy_secret`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listen_move: Vec<SocketAddr>,
    /// Front end: PEM CAs a back end's certificate must chain to (`backends[].tls`); unset:
    /// the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_ca: Option<std::path::PathBuf>,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster {
            name: String::new(),
            site: "default".into(),
            proxy_user: "ringmail-proxy".into(),
            proxy_secret: String::new(),
            trusted_networks: vec![
                Network::try_from("127.0.0.0/8".to_owned()).expect("valid"),
                Network::try_from("::1/128".to_owned()).expect("valid"),
            ],
            backends: Vec::new(),
            proxy_tls: false,
            pass_tls: true,
            listen_move: Vec::new(),
            backend_ca: None,
        }
    }
}

impl Cluster {
    pub fn backend(&self, name: &str) -> Option<&Backend> {
        self.backends.iter().find(|b| b.name == name)
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_networks.iter().any(|n| n.contains(ip))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (i, b) in self.backends.iter().enumerate() {
            if self.backends[..i].iter().any(|other| other.name == b.name) {
                return Err(ConfigError::Invalid(format!(
                    "cluster.backends: {} is named twice",
                    b.name
                )));
            }
        }
        Ok(())
    }
}

/// One account in a static directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticUser {
    pub name: String,
    /// An argon2 PHC string (`ringmail user hash`).
    pub password_hash: String,
    /// SCRAM-SHA-256 keys in RFC 5803 form (`ringmail user hash --scram`); without them the
    /// account cannot use SCRAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scram: Option<String>,
    /// The back end holding the mailbox (a `cluster.backends` name).
    pub mail_host: String,
    #[serde(default)]
    pub admin: bool,
    #[serde(default = "yes")]
    pub imap: bool,
    #[serde(default = "yes")]
    pub pop3: bool,
}

fn yes() -> bool {
    true
}

/// Where a front end finds accounts and their back ends: a static table, or an LDAP server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Directory {
    /// A static table, for two-box setups and tests.
    pub users: Vec<StaticUser>,
    /// `ldap://host:port` or `ldaps://host:port`; empty: no LDAP directory.
    pub ldap_url: String,
    /// Where accounts are searched (subtree).
    pub ldap_base: String,
    /// The entry ringmail binds as to search (and, for `ringmail user`, to write).
    pub ldap_bind_dn: String,
    pub ldap_bind_password: String,
    /// Which entries are accounts; ANDed with `(uid=NAME)`.
    pub ldap_user_filter: String,
    /// STARTTLS on an `ldap://` URL (certificate verified).
    pub ldap_starttls: bool,
    /// PEM CAs the LDAP server's certificate must chain to; unset: the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ldap_ca: Option<std::path::PathBuf>,
    /// Seconds an LDAP operation may take.
    pub ldap_timeout: u64,
    /// Keep the cache fresh with RFC 4533 content synchronisation, where the server offers it.
    pub ldap_sync: bool,
    /// Seconds an account looked up stays cached.
    pub cache_ttl: u64,
}

impl Default for Directory {
    fn default() -> Self {
        Directory {
            users: Vec::new(),
            ldap_url: String::new(),
            ldap_base: String::new(),
            ldap_bind_dn: String::new(),
            ldap_bind_password: String::new(),
            ldap_user_filter: "(objectClass=inetLocalMailRecipient)".into(),
            ldap_starttls: false,
            ldap_ca: None,
            ldap_timeout: 5,
            ldap_sync: true,
            cache_ttl: 30,
        }
    }
}

impl Directory {
    /// Whether accounts live in LDAP rather than in this machine's store or config.
    pub fn is_ldap(&self) -> bool {
        !self.ldap_url.is_empty()
    }

    /// Whether a directory holds the accounts (LDAP, or a static table), rather than the
    /// store of a single server.
    pub fn is_configured(&self) -> bool {
        self.is_ldap() || !self.users.is_empty()
    }

    pub(super) fn validate(&self, cluster: &Cluster) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(format!("directory.{m}")));
        if self.is_ldap() {
            if !self.users.is_empty() {
                return invalid("users and directory.ldap_url exclude each other");
            }
            if !(self.ldap_url.starts_with("ldap://") || self.ldap_url.starts_with("ldaps://")) {
                return invalid("ldap_url must start with ldap:// or ldaps://");
            }
            if self.ldap_base.is_empty() {
                return invalid("ldap_base must be set with ldap_url");
            }
            if !(self.ldap_user_filter.starts_with('(') && self.ldap_user_filter.ends_with(')')) {
                return invalid("ldap_user_filter must be an LDAP filter in parentheses");
            }
            if self.ldap_timeout == 0 {
                return invalid("ldap_timeout must be positive");
            }
        }
        for u in &self.users {
            if let Some(Err(e)) = u
                .scram
                .as_deref()
                .map(crate::auth::scram::ScramCredentials::from_rfc5803)
            {
                return Err(ConfigError::Invalid(format!(
                    "directory.users: {}'s scram: {e}",
                    u.name
                )));
            }
            if cluster.backend(&u.mail_host).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "directory.users: {}'s mail_host {} is not in cluster.backends",
                    u.name, u.mail_host
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_by_prefix() {
        let net = |s: &str| Network::try_from(s.to_owned()).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(net("10.1.0.0/16").contains(ip("10.1.200.3")));
        assert!(!net("10.1.0.0/16").contains(ip("10.2.0.1")));
        assert!(net("10.1.2.128/25").contains(ip("10.1.2.200")));
        assert!(!net("10.1.2.128/25").contains(ip("10.1.2.127")));
        assert!(net("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(net("127.0.0.0/8").contains(ip("::ffff:127.0.0.9")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:1::5")));
        assert!(!net("::1/128").contains(ip("127.0.0.1")));
        assert!(net("0.0.0.0/0").contains(ip("192.0.2.1")));
        for bad in ["10.0.0.0/33", "nonsense", "::/129"] {
            assert!(Network::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }
}
