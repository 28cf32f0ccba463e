//! Bulk imports: many accounts at once, each from its own place, named by a template in which
//! `%u` stands for the user (`--from maildir:/srv/mail/%u/Maildir`, `imaps://%u@old.example.org`).
//!
//! The accounts come from a passwd-like file (`--accounts FILE`, Dovecot's passwd-file form:
//! `name:{SCHEME}password[:…]`, one per line, `#` comments), which also creates the missing
//! ones in this store with that password, or from the directory (`--directory`: every account
//! whose mailbox it puts on this back end). Passwords come as `{PLAIN}` (also the IMAP
//! source's password for that user), or as an argon2 hash (`{ARGON2ID}` or a bare PHC
//! string); other schemes are refused, every line checked before anything is written. An IMAP
//! source logs in with the account's `{PLAIN}` password, else with the one password given as
//! for a single import (for a master login such as `imaps://%u*admin@old.example.org`).
//!
//! Each account is imported as `ringmail import USER` would; one that fails is reported and
//! the others go on; the command fails if any did.

use anyhow::{bail, Context, Result};

use super::imap_import::SourceAuth;
use super::Location;
use crate::config::Config;
use crate::store::{NewUser, WriteOp};

/// Whose mail to import.
pub enum Accounts {
    File(std::path::PathBuf),
    Directory,
}

/// One line of an accounts file.
#[derive(Debug, PartialEq, Eq)]
struct Line {
    name: String,
    password: Password,
}

#[derive(Debug, PartialEq, Eq)]
enum Password {
    Plain(String),
    /// An argon2 PHC string.
    Hash(String),
}

pub fn run(config: &Config, accounts: &Accounts, template: &str, auth: &SourceAuth) -> Result<()> {
    if !template.contains("%u") {
        bail!("--from {template:?} has no %u: every account needs its own source");
    }
    let lines = match accounts {
        Accounts::File(path) => {
            if config.directory.is_configured() {
                bail!("a directory holds the accounts here: import them with --directory");
            }
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            parse(&text).with_context(|| format!("{}", path.display()))?
        }
        Accounts::Directory => {
            if !config.directory.is_ldap() {
                bail!("--directory needs an LDAP directory ([directory] ldap_url)");
            }
            crate::directory::LdapAdmin::connect(&config.directory)?
                .on_backend(config.backend_name())?
                .into_iter()
                .map(|r| Line {
                    name: r.account.name,
                    password: Password::Hash(String::new()),
                })
                .collect()
        }
    };
    let mut sources = Vec::with_capacity(lines.len());
    for line in &lines {
        let source = template.replace("%u", &line.name);
        let location: Location = source
            .parse()
            .map_err(|e: String| anyhow::anyhow!("{}: {e}", line.name))?;
        sources.push((source, location));
    }
    let shared = sources
        .iter()
        .zip(&lines)
        .any(|((_, location), line)| {
            matches!(location, Location::Imap(_)) && !matches!(line.password, Password::Plain(_))
        })
        .then(|| super::imap_import::password(auth.password_stdin))
        .transpose()?;
    let (_lock, store) = super::import::stopped_store(config)?;
    if let Accounts::File(_) = accounts {
        create_missing(&store, &lines)?;
    }
    let mut failed = Vec::new();
    for (line, (source, location)) in lines.iter().zip(&sources) {
        let password = match (&line.password, location) {
            (_, Location::Maildir(_) | Location::Mbox(_) | Location::Stream(_)) => None,
            (Password::Plain(p), Location::Imap(_)) => Some(p.clone()),
            (Password::Hash(_), Location::Imap(_)) => shared.clone(),
        };
        println!("{}: importing from {source}", line.name);
        let result = super::import::into(config, &store, &line.name, location, auth, password);
        if let Err(e) = result {
            eprintln!("{}: {e:#}", line.name);
            failed.push(line.name.clone());
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} accounts were not imported: {}",
            failed.len(),
            lines.len(),
            failed.join(", ")
        );
    }
    println!("{} accounts imported", lines.len());
    Ok(())
}

/// Every account of the file, or the first line that is wrong.
fn parse(text: &str) -> Result<Vec<Line>> {
    let mut out: Vec<Line> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("line {}", n + 1);
        let mut fields = line.splitn(3, ':');
        let name = fields.next().unwrap_or_default();
        super::validate_user_name(name).with_context(at)?;
        let field = fields.next().with_context(|| format!("{}: no password field", at()))?;
        let password = password(field).with_context(at)?;
        if out.iter().any(|l| l.name.eq_ignore_ascii_case(name)) {
            bail!("{}: {name} is named twice", at());
        }
        out.push(Line {
            name: name.to_owned(),
            password,
        });
    }
    Ok(out)
}

fn password(field: &str) -> Result<Password> {
    if field.starts_with('$') {
        return hash(field);
    }
    let Some((scheme, value)) = field.strip_prefix('{').and_then(|f| f.split_once('}')) else {
        bail!("the password has no {{SCHEME}}: write {{PLAIN}}password or an argon2 hash");
    };
    match scheme.to_ascii_uppercase().as_str() {
        "PLAIN" | "CLEAR" | "CLEARTEXT" if !value.is_empty() => Ok(Password::Plain(value.to_owned())),
        "ARGON2I" | "ARGON2ID" => hash(value),
        other => bail!(
            "password scheme {other} cannot be taken over (ringmail stores argon2): give {{PLAIN}} or {{ARGON2ID}}"
        ),
    }
}

fn hash(phc: &str) -> Result<Password> {
    if !crate::auth::password::well_formed(phc) {
        bail!("the password is not an argon2 hash (PHC string) ringmail can check");
    }
    Ok(Password::Hash(phc.to_owned()))
}

/// Adds the accounts the store does not have, with their passwords.
fn create_missing(store: &crate::store::Store, lines: &[Line]) -> Result<()> {
    for line in lines {
        if store.snapshot()?.user(&line.name)?.is_some() {
            continue;
        }
        let (phc, scram) = match &line.password {
            Password::Plain(p) => {
                let hashed = crate::auth::password::hash(p)?;
                (hashed.phc, hashed.scram)
            }
            // SCRAM keys need the password: this account logs in with PLAIN/LOGIN until its
            // password is set again.
            Password::Hash(h) => (h.clone(), crate::auth::login::unusable_scram()),
        };
        let op = WriteOp::AddUser(NewUser {
            name: line.name.clone(),
            password_hash: phc,
            scram,
            admin: false,
        });
        store
            .write_blocking(op)
            .with_context(|| format!("cannot add {}", line.name))?;
        println!("{}: account added", line.name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_files_are_read_like_dovecots_passwd_files() {
        let phc = crate::auth::password::hash("pw").unwrap().phc;
        let text = format!(
            "# migrated from old.example.org\n\
             alice:{{PLAIN}}s3cret:1000:1000::/home/alice::\n\
             bob:{{ARGON2ID}}{phc}\n\ncarol:{phc}:\n"
        );
        let lines = parse(&text).unwrap();
        assert_eq!(lines[0].password, Password::Plain("s3cret".into()));
        assert_eq!(lines[1].password, Password::Hash(phc.clone()));
        assert_eq!(lines[2].password, Password::Hash(phc));
        for bad in [
            "carol:{SHA512-CRYPT}$6$x$y",
            "carol:$6$x$y",
            "carol:{ARGON2ID}$argon2id$v=19$broken",
            "carol:nopassword",
            "carol",
            "a:{PLAIN}x\nA:{PLAIN}y",
            "bad/name:{PLAIN}x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
