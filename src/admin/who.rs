//! `ringmail who [USER]` and `ringmail kick USER [--protocol P]`: the sessions of the server
//! running on this config's data_dir, through its admin socket (`serve::control`).

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::serve::control::{self, Kicked, SessionInfo};

/// Asks the server; a server that is not running is one clear line.
fn ask(config: &Config, request: &str) -> Result<String> {
    let dir = &config.server.data_dir;
    control::ask(dir, request).with_context(|| {
        format!(
            "no running `ringmail serve` answers on {}",
            dir.join(control::ADMIN_SOCKET).display()
        )
    })
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
    let reply = ask(config, &request)?;
    refused(&reply)?;
    let sessions: Vec<SessionInfo> =
        serde_json::from_str(&reply).context("the server's answer is not a session list")?;
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
    let reply = ask(config, &request)?;
    refused(&reply)?;
    let kicked: Kicked = serde_json::from_str(&reply).context("the server's answer is not a count")?;
    if kicked.kicked == 0 {
        bail!("{user} has no session to kick");
    }
    println!("kicked {} session(s) of {user}", kicked.kicked);
    Ok(())
}

/// One line per session under a header, in columns.
fn table(sessions: &[SessionInfo]) -> String {
    let header = ["ID", "USER", "PROTOCOL", "CLIENT", "CORE", "STATE", "SINCE", "TLS"].map(String::from);
    let rows: Vec<[String; 8]> = sessions
        .iter()
        .map(|s| {
            [
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
