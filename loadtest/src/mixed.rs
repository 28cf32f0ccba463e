//! The parts of the `mixed` scenario the library holds, so ringmail's tests can run it as
//! well as the harness: the seeded choices (`rng`), the figures (`stats`), the logged-in
//! connection and the command history every client keeps for its reports, and the whole of
//! the shared mode (`shared`), where many clients work on the same mailboxes and each checks
//! what it is told against a `view::SessionView`.
//!
//! Nothing here reads the command line; the harness's `mixed` subcommand turns its options
//! into these types.

pub mod rng;
pub mod shared;
pub mod stats;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::ClientConfig;

use crate::client::imap::{Imap, Response};
use crate::client::Transport;
use crate::response::{parse_untagged, response_code, Code, Untagged};

/// Where the clients connect, and how.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// Implicit TLS with this configuration, the certificate checked against the name.
    pub tls: Option<(Arc<ClientConfig>, String)>,
}

/// A logged-in connection, and the capabilities the server offers after login (from the
/// LOGIN reply's CAPABILITY code, or asked for).
pub fn connect(endpoint: &Endpoint, user: &str, password: &str) -> anyhow::Result<(Imap, Vec<String>)> {
    let addr = endpoint.addr;
    let t = match &endpoint.tls {
        Some((config, name)) => {
            Transport::connect_tls(addr, config.clone(), name).with_context(|| format!("TLS to {addr}"))?
        }
        None => Transport::connect(addr).with_context(|| format!("connecting to {addr}"))?,
    };
    let mut imap = Imap::new(t).context("IMAP greeting")?;
    let login = imap.login(user, password).context("LOGIN")?;
    if !login.ok() {
        bail!("LOGIN as {user} refused: {} {}", login.status, login.text);
    }
    let capabilities = match response_code(login.text.as_bytes()) {
        Ok(Some(Code::Capability(caps))) => caps,
        _ => {
            let reply = imap.cmd("CAPABILITY").context("CAPABILITY")?;
            reply
                .untagged
                .iter()
                .find_map(|line| match parse_untagged(line) {
                    Ok(Untagged::Capability(caps)) => Some(caps),
                    _ => None,
                })
                .unwrap_or_default()
        }
    };
    Ok((imap, capabilities))
}

/// Whether `capabilities` holds `name` (compared as IMAP does, ignoring case).
pub fn offers(capabilities: &[String], name: &str) -> bool {
    capabilities.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// Commands and responses remembered for a fault's report.
const HISTORY_LINES: usize = 40;

/// The last commands and responses of one client, shortened, for the report of what led to
/// a fault.
#[derive(Debug, Default)]
pub struct History(VecDeque<String>);

impl History {
    pub fn record(&mut self, command: &str, response: &Response) {
        let shorten = |s: &str| s.chars().take(200).collect::<String>();
        self.0.push_back(format!("C: {}", shorten(command)));
        for line in response.lines().iter().take(10) {
            self.0.push_back(format!("S: {}", shorten(line)));
        }
        if response.untagged.len() > 10 {
            self.0
                .push_back(format!("S: ... {} more untagged", response.untagged.len() - 10));
        }
        self.0
            .push_back(format!("S: {} {}", response.status, shorten(&response.text)));
        while self.0.len() > HISTORY_LINES {
            self.0.pop_front();
        }
    }

    /// The lines, oldest first, each on a line of its own after `indent`.
    pub fn show(&self, indent: &str) -> String {
        let lines: Vec<&str> = self.0.iter().map(String::as_str).collect();
        format!("{indent}{}", lines.join(&format!("\n{indent}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_last_lines_shortened() {
        let mut history = History::default();
        let response = Response {
            untagged: (0..12).map(|i| format!("* {i} EXISTS").into_bytes()).collect(),
            status: "OK".into(),
            text: "x".repeat(300),
        };
        history.record("NOOP", &response);
        let shown = history.show("  ");
        assert!(shown.starts_with("  C: NOOP\n  S: * 0 EXISTS\n"), "{shown}");
        assert!(shown.contains("  S: ... 2 more untagged\n"), "{shown}");
        assert!(shown.ends_with(&format!("S: OK {}", "x".repeat(200))), "{shown}");
        for _ in 0..10 {
            history.record("NOOP", &response);
        }
        assert_eq!(history.0.len(), HISTORY_LINES);
        assert!(offers(&["IMAP4rev1".into(), "uidplus".into()], "UIDPLUS"));
    }
}
