//! `ringmail user` where an LDAP directory holds the accounts (`[directory] ldap_url`): the
//! same commands, carried out in the directory. Quota and per-user IMAP switches stay with
//! the mailbox, in the store of the back end that holds it.

use anyhow::{bail, Result};

use super::{on_off, password_input, validate_user_name, yes_no};
use crate::auth::password;
use crate::config::Config;
use crate::directory::{Account, AccountPatch, LdapAdmin, NewAccount};
use crate::store::UserPatch;

fn admin(config: &Config) -> Result<LdapAdmin> {
    Ok(LdapAdmin::connect(&config.directory)?)
}

pub fn user_add(config: &Config, name: &str, password_stdin: bool, is_admin: bool, home: Option<&str>) -> Result<()> {
    validate_user_name(name)?;
    let (pw, generated) = password_input(password_stdin)?;
    let hashed = password::hash(&pw)?;
    let domain = config.server.domains.first().unwrap_or(&config.server.hostname);
    let mail = format!("{name}@{domain}");
    let mail_host = home.unwrap_or(config.backend_name());
    admin(config)?.add(&NewAccount {
        name,
        mail: &mail,
        mail_host,
        admin: is_admin,
        password: &pw,
        scram: &hashed.scram,
    })?;
    if generated {
        println!("user {name} added to the directory on {mail_host}; password: {pw}");
    } else {
        println!("user {name} added to the directory on {mail_host}");
    }
    Ok(())
}

pub fn user_passwd(config: &Config, name: &str, password_stdin: bool) -> Result<()> {
    let (pw, generated) = password_input(password_stdin)?;
    let hashed = password::hash(&pw)?;
    admin(config)?.passwd(name, &pw, &hashed.scram)?;
    if generated {
        println!("password of {name} changed; new password: {pw}");
    } else {
        println!("password of {name} changed");
    }
    Ok(())
}

pub fn user_set(config: &Config, name: &str, patch: UserPatch) -> Result<()> {
    if patch.quota.is_some() || patch.imap_disabled.is_some() {
        bail!("quota and --imap-disable belong to the mailbox: run this on the back end that holds it, without [directory] ldap_url");
    }
    let patch = AccountPatch {
        pop: patch.pop,
        imap: patch.imap,
        smtp: patch.smtp,
        admin: patch.admin,
        mail_host: match patch.home {
            Some(Some(home)) => Some(home),
            Some(None) => bail!("an account in the directory always has a mailHost"),
            None => None,
        },
    };
    let account = admin(config)?.set(name, &patch)?;
    print_account(&account);
    Ok(())
}

pub fn user_del(config: &Config, name: &str) -> Result<()> {
    admin(config)?.delete(name)?;
    println!("user {name} deleted from the directory (its mail stays on its back end until removed there)");
    Ok(())
}

pub fn user_list(config: &Config) -> Result<()> {
    for a in admin(config)?.list()? {
        println!(
            "{}\tpop={}\timap={}\tadmin={}\tsmtp={}\thome={}",
            a.name,
            on_off(a.access.pop),
            on_off(a.access.imap),
            yes_no(a.access.admin),
            on_off(a.access.smtp),
            a.mail_host
        );
    }
    Ok(())
}

pub fn user_show(config: &Config, name: &str) -> Result<()> {
    let Some((dn, account)) = admin(config)?.find(name)? else {
        bail!("no such user: {name}");
    };
    println!("dn: {dn}");
    print_account(&account);
    Ok(())
}

fn print_account(a: &Account) {
    println!("name: {}", a.name);
    println!("home: {}", a.mail_host);
    println!("admin: {}", yes_no(a.access.admin));
    println!("pop: {}", on_off(a.access.pop));
    println!("imap: {}", on_off(a.access.imap));
    println!("smtp: {}", on_off(a.access.smtp));
}
