//! The CLI subcommands that are not `serve`: account management and the outbound queue
//! straight on the store (LMDB lets the CLI write while a server runs), and `deliver`, an LMTP client of the server's unix
//! socket that exits 0 only once the server has said the message is durable.

#![forbid(unsafe_code)]

mod backup;
pub mod bulk_import;
pub use backup::run as backup;
pub mod check;
pub mod deliver;
mod fsck;
pub use fsck::run as fsck;
mod directory;
pub mod export;
pub mod imap_import;
pub mod import;
mod location;
pub mod mbox;
pub mod moves;
pub use location::Location;
mod progress;
pub mod queue;
mod reload;
mod stream;
pub use reload::run as reload;
mod who;
pub use who::{kick, who};

use std::io::Read;

use anyhow::{bail, Context, Result};

use crate::auth::scram::ScramKeys;
use crate::auth::{password, policy};
use crate::config::Config;
use crate::store::{NewUser, Store, StoreError, User, UserPatch, WriteOp, WriteOutcome};

/// User names: what LMTP addresses map to, so kept to a safe, case-folded alphabet.
pub fn validate_user_name(name: &str) -> Result<()> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if name.is_empty() || name.len() > 64 || !ok_chars || name.starts_with('.') {
        bail!("invalid user name {name:?}: use 1-64 of a-z 0-9 . _ - (not starting with '.')");
    }
    if policy::is_reserved(name) {
        bail!("{name:?} is reserved: anonymous and guest access are never allowed");
    }
    Ok(())
}

/// The store, for a command. With no server on it this process is its only user and opens
/// it as a server would; beside a running server it leaves the sweep of half-written large
/// bodies alone, since those are the server's writes in progress.
pub(crate) fn open(config: &Config) -> Result<Store> {
    let dir = &config.server.data_dir;
    let store = match crate::serve::lock_data_dir(dir) {
        // Held while the store opens, so no server starts staging meanwhile.
        Ok(_no_server) => Store::open(dir),
        Err(crate::serve::ServeError::Busy(..)) => Store::open_beside_server(dir),
        Err(e) => return Err(e).with_context(|| format!("cannot open the store in {}", dir.display())),
    };
    store.with_context(|| format!("cannot open the store in {}", dir.display()))
}

/// The store of a stopped server whose data_dir lock the caller holds.
pub(crate) fn open_stopped(config: &Config) -> Result<Store> {
    Store::open(&config.server.data_dir)
        .with_context(|| format!("cannot open the store in {}", config.server.data_dir.display()))
}

/// The password from stdin (first line), or a generated one the caller prints.
fn password_input(from_stdin: bool) -> Result<(String, bool)> {
    if !from_stdin {
        return Ok((password::generate(), true));
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the password from stdin")?;
    let line = text.lines().next().unwrap_or("").to_owned();
    Ok((line, false))
}

fn write(store: &Store, op: WriteOp) -> Result<WriteOutcome> {
    store.write_blocking(op).map_err(|e| match e {
        StoreError::NoSuchUser(name) => anyhow::anyhow!("no such user: {name}"),
        StoreError::UserExists(name) => anyhow::anyhow!("user already exists: {name}"),
        other => anyhow::anyhow!(other),
    })
}

/// Adds a user; `home` is the back end holding the mailbox (a directory's `mailHost`).
pub fn user_add(config: &Config, name: &str, password_stdin: bool, admin: bool, home: Option<&str>) -> Result<()> {
    if config.directory.is_ldap() {
        return directory::user_add(config, name, password_stdin, admin, home);
    }
    validate_user_name(name)?;
    let (pw, generated) = password_input(password_stdin)?;
    let hashed = password::hash(&pw)?;
    let store = open(config)?;
    write(
        &store,
        WriteOp::AddUser(NewUser {
            name: name.into(),
            password_hash: hashed.phc,
            scram: hashed.scram,
            admin,
        }),
    )?;
    if let Some(home) = home {
        let patch = UserPatch {
            home: Some(Some(home.to_owned())),
            ..UserPatch::default()
        };
        let name = name.into();
        write(&store, WriteOp::UpdateUser { name, patch })?;
    }
    if generated {
        println!("user {name} added; password: {pw}");
    } else {
        println!("user {name} added");
    }
    Ok(())
}

/// Prints the argon2 hash of a password, or with `scram` its SCRAM-SHA-256 keys in RFC 5803
/// form, for a directory.
pub fn user_hash(password_stdin: bool, scram: bool) -> Result<()> {
    let (pw, generated) = password_input(password_stdin)?;
    if generated {
        eprintln!("password: {pw}");
    }
    let hashed = password::hash(&pw)?;
    if scram {
        println!("{}", hashed.scram.to_rfc5803());
    } else {
        println!("{}", hashed.phc);
    }
    Ok(())
}

pub fn user_passwd(config: &Config, name: &str, password_stdin: bool) -> Result<()> {
    if config.directory.is_ldap() {
        return directory::user_passwd(config, name, password_stdin);
    }
    let (pw, generated) = password_input(password_stdin)?;
    let hashed = password::hash(&pw)?;
    let store = open(config)?;
    let patch = UserPatch {
        password: Some((hashed.phc, hashed.scram)),
        ..UserPatch::default()
    };
    write(
        &store,
        WriteOp::UpdateUser {
            name: name.into(),
            patch,
        },
    )?;
    if generated {
        println!("password of {name} changed; new password: {pw}");
    } else {
        println!("password of {name} changed");
    }
    Ok(())
}

/// A `--imap-disable` list: capability names as IMAP spells them, each one ringmail offers
/// and can withhold from one user.
pub fn imap_capabilities(list: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let upper = name.to_ascii_uppercase();
        if !crate::imap::capability::can_disable(&upper) {
            bail!("{name} is not an IMAP extension ringmail offers (see CAPABILITY)");
        }
        if !out.contains(&upper) {
            out.push(upper);
        }
    }
    Ok(out)
}

pub fn user_set(config: &Config, name: &str, patch: UserPatch) -> Result<()> {
    if config.directory.is_ldap() {
        return directory::user_set(config, name, patch);
    }
    let store = open(config)?;
    let WriteOutcome::User(user) = write(
        &store,
        WriteOp::UpdateUser {
            name: name.into(),
            patch,
        },
    )?
    else {
        bail!("unexpected answer from the store");
    };
    print_user(&store, &user)
}

pub fn user_del(config: &Config, name: &str) -> Result<()> {
    if config.directory.is_ldap() {
        return directory::user_del(config, name);
    }
    let store = open(config)?;
    write(&store, WriteOp::DeleteUser { name: name.into() })?;
    println!("user {name} deleted with all its mail");
    Ok(())
}

pub fn user_list(config: &Config) -> Result<()> {
    if config.directory.is_ldap() {
        return directory::user_list(config);
    }
    let store = open(config)?;
    for user in store.snapshot()?.users()? {
        println!(
            "{}\tpop={}\timap={}\tadmin={}\tsmtp={}",
            user.name,
            on_off(user.pop),
            on_off(user.imap),
            yes_no(user.admin),
            on_off(user.smtp)
        );
    }
    Ok(())
}

pub fn user_show(config: &Config, name: &str) -> Result<()> {
    if config.directory.is_ldap() {
        return directory::user_show(config, name);
    }
    let store = open(config)?;
    let user = store
        .snapshot()?
        .user(name)?
        .ok_or_else(|| anyhow::anyhow!("no such user: {name}"))?;
    print_user(&store, &user)
}

fn print_user(store: &Store, user: &User) -> Result<()> {
    let snapshot = store.snapshot()?;
    let usage = snapshot.usage(user.id)?;
    println!("name: {}", user.name);
    println!("admin: {}", yes_no(user.admin));
    println!("pop: {}", on_off(user.pop));
    println!("imap: {}", on_off(user.imap));
    println!("smtp: {}", on_off(user.smtp));
    if !user.imap_disabled.is_empty() {
        println!("imap disabled: {}", user.imap_disabled.join(","));
    }
    match user.quota {
        Some(q) => println!("quota: {q}"),
        None => println!("quota: none"),
    }
    println!("used: {} bytes in {} messages", usage.bytes, usage.messages);
    for mailbox in snapshot.mailboxes(user.id)? {
        println!(
            "mailbox: {} ({} messages, {} bytes)",
            mailbox.name, mailbox.messages, mailbox.size
        );
    }
    Ok(())
}

fn on_off(v: bool) -> &'static str {
    if v {
        "on"
    } else {
        "off"
    }
}

fn yes_no(v: bool) -> &'static str {
    if v {
        "yes"
    } else {
        "no"
    }
}
