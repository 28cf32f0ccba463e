//! `ringmail who [USER]` and `ringmail kick USER [--protocol P]`: the sessions of the server
//! and the front end running on this config's data_dir, through their admin sockets
//! (`serve::control`). A front end's relayed sessions end when kicked, without a goodbye:
//! it relays the back end's bytes and cannot speak in the middle of them.

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::serve::control::{self, Kicked, SessionInfo};

/// The processes that may run on one data_dir, by their admin sockets.
const PROCESSES: [(&str, &str); 2] = [("serve", control::ADMIN_SOCKET), ("proxy", control::PROXY_ADMIN_SOCKET)];

/// Asks every server and front end running on this data_dir; none running is one clear line.
fn ask(config: &Config, request: &str) -> Result<Vec<(&'static str, String)>> {
    let dir = &config.server.data_dir;
    let answers: Vec<(&str, String)> = PROCESSES
        .iter()
        .filter_map(|&(process, socket)| Some((process, control::ask(dir, socket, request).ok()?)))
        .collect();
    if answers.is_empty() {
        bail!(
            "no running `ringmail serve` or `ringmail proxy` answers on {}",
            dir.join(control::ADMIN_SOCKET).display()
        );
    }
    Ok(answers)
}

/// Turns an `{"error": …}` answer into the command's error.
fn refused(reply: &str) -> Result<()> {
    if let Ok(r) = serde_json::from_str::<control::Refused>(reply) {
        bail!("the server refused the request: {}", r.error);
    }
    Ok(())
}

pub fn who(config: &Config, user: Option<&str>) -> Result<()> {
    let request = match user {
        Some(user) => format!("who {user}"),
        None => "who".to_owned(),
    };
    let mut sessions = Vec::new();
    for (process, reply) in ask(config, &request)? {
        refused(&reply)?;
        let listed: Vec<SessionInfo> =
            serde_json::from_str(&reply).context("the server's answer is not a session list")?;
        sessions.extend(listed.into_iter().map(|s| (process, s)));
    }
    print!("{}", table(&sessions));
    Ok(())
}

pub fn kick(config: &Config, user: &str, protocol: Option<&str>) -> Result<()> {
    if user.contains(char::is_whitespace) || protocol.is_some_and(|p| p.contains(char::is_whitespace)) {
        bail!("a user name or protocol has no spaces");
    }
    let request = match protocol {
        Some(p) => format!("kick {user} {p}"),
        None => format!("kick {user}"),
    };
    let mut total = 0;
    for (_, reply) in ask(config, &request)? {
        refused(&reply)?;
        let kicked: Kicked = serde_json::from_str(&reply).context("the server's answer is not a count")?;
        total += kicked.kicked;
    }
    if total == 0 {
        bail!("{user} has no session to kick");
    }
    println!("kicked {total} session(s) of {user}");
    Ok(())
}

/// One line per session under a header, in columns.
fn table(sessions: &[(&str, SessionInfo)]) -> String {
    let header = [
        "PROCESS", "ID", "USER", "PROTOCOL", "CLIENT", "CORE", "STATE", "SINCE", "TLS",
    ]
    .map(String::from);
    let rows: Vec<[String; 9]> = sessions
        .iter()
        .map(|(process, s)| {
            [
                process.to_string(),
                s.id.to_string(),
                s.user.clone().unwrap_or_else(|| "-".into()),
                s.protocol.clone(),
                s.client.clone().unwrap_or_else(|| "-".into()),
                s.core.to_string(),
                s.state.clone(),
                crate::smtp::date::iso8601(s.since as i64),
                if s.tls { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
