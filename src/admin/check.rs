//! `ringmail check imap|pop3|submission`: an end-to-end test of a running server or front end
//! from the outside, like Exchange's Test-ImapConnectivity and Test-PopConnectivity. It logs
//! in over each TLS mode, submits a message to the user themself, finds it over IMAP or
//! POP3, deletes it, and prints one row per step: where, the result, the latency and the
//! server that answered.
//!
//! Owns: small blocking clients of our own protocols (`conn`, `imap`, `pop3`, `smtp`), the
//! steps of each check (`plan`) and the table (`report`). Never: touches the store or any
//! server state; sends a password before TLS is on; waits on a socket without a deadline
//! (every answer has `--timeout`, every connect too); accepts plaintext buffered with a
//! STARTTLS answer (it would be injected into the TLS session).
//!
//! A usage error (no password, a bad --host, no port) is an `Err` before any step runs; a
//! step that fails is a `FAILED` row, the steps after it that need it are `skipped`, and the
//! run ends in an `Err` naming how many steps did not pass.

pub(crate) mod conn;
pub(crate) mod imap;
mod message;
mod plan;
mod pop3;
mod report;
mod smtp;

use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;

use crate::config::Config;

/// Where the password comes from without `--password-stdin`.
pub const PASSWORD_ENV: &str = "RINGMAIL_CHECK_PASSWORD";

/// What to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// IMAP STARTTLS and implicit-TLS logins; a test message found, deleted and expunged.
    Imap,
    /// POP3 STLS and implicit-TLS logins; a test message found with TOP and deleted.
    Pop3,
    /// Submission with STARTTLS and with implicit TLS, each message found over IMAP.
    Submission,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    pub service: Service,
    /// The server or front end, as clients name it (also the TLS name). Default:
    /// `[server] hostname`.
    #[arg(long)]
    pub host: Option<String>,
    /// The account to log in as; the test message goes to `USER@DOMAIN`.
    #[arg(long)]
    pub user: String,
    /// Read the password from the first line of stdin (default: $RINGMAIL_CHECK_PASSWORD).
    #[arg(long)]
    pub password_stdin: bool,
    /// The STARTTLS/STLS port of IMAP or POP3 (default: the first of `listen`).
    #[arg(long)]
    pub port_plain: Option<u16>,
    /// The implicit-TLS port of IMAP or POP3 (default: the first of `listen_tls`); IMAP's
    /// for `check submission`.
    #[arg(long)]
    pub port_tls: Option<u16>,
    /// The STARTTLS submission port (default: the first of `[submission] listen`).
    #[arg(long)]
    pub submission_port: Option<u16>,
    /// The implicit-TLS submission port (default: the first of `[submission] listen_tls`).
    #[arg(long)]
    pub submissions_port: Option<u16>,
    /// The domain of the test address (default: the first of `[server] domains`, else
    /// `[server] hostname`).
    #[arg(long)]
    pub domain: Option<String>,
    /// CA certificates (PEM) to verify the server with (default: the generated
    /// `<data_dir>/cert.pem` when `[tls] cert` is unset and it exists, else the system's).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Do not verify the server's certificate (TLS still encrypts).
    #[arg(long, conflicts_with = "ca")]
    pub insecure: bool,
    /// Seconds to wait for a connection and for each answer.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub timeout: u64,
}

/// What a step failed on, sorted by whose fault it is: the network, TLS, the server's
/// refusal, the server breaking the protocol, and delivery.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: std::io::Error },
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("the server closed the connection")]
    Closed,
    #[error("{0}")]
    Io(std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    /// An earlier step left this connection broken.
    #[error("the connection broke in an earlier step")]
    Broken,
    /// The server answered with a refusal (`NO`, `-ERR`, 4xx/5xx), shown as it came.
    #[error("{command}: {answer}")]
    Refused { command: &'static str, answer: String },
    #[error("{command}: unexpected answer {answer:?}")]
    Unexpected { command: &'static str, answer: String },
    #[error("the server does not offer {0}")]
    NotOffered(&'static str),
    #[error("an answer longer than {0} bytes")]
    TooLong(usize),
    #[error("not there after {0} s")]
    NotFound(u64),
}

/// The server as every connection of one run reaches it.
pub(crate) struct Target {
    pub host: String,
    pub addresses: Vec<IpAddr>,
    pub server_name: ServerName<'static>,
    pub tls: Arc<ClientConfig>,
    pub timeout: Duration,
}

/// The ports of one run.
pub(crate) struct Ports {
    /// IMAP's or POP3's STARTTLS port; None for `check submission`.
    pub plain: Option<u16>,
    /// IMAP's or POP3's implicit-TLS port (IMAP's for `check submission`).
    pub tls: u16,
    pub submission: u16,
    /// Only for `check submission`.
    pub submissions: Option<u16>,
}

/// The account of one run.
pub(crate) struct Account {
    pub user: String,
    pub password: String,
    /// Sender and recipient of the test messages.
    pub address: String,
}

/// Runs the check and prints its table; Err when a step did not pass.
pub fn run(config: &Config, args: CheckArgs) -> Result<()> {
    let password = password(args.password_stdin)?;
    let target = target(config, &args)?;
    let ports = ports(config, &args)?;
    let domain = match &args.domain {
        Some(d) => d.clone(),
        None => config
            .server
            .domains
            .first()
            .cloned()
            .unwrap_or_else(|| config.server.hostname.clone()),
    };
    let account = Account {
        address: format!("{}@{domain}", args.user),
        user: args.user.clone(),
        password,
    };
    let service = match args.service {
        Service::Imap => "imap",
        Service::Pop3 => "pop3",
        Service::Submission => "submission",
    };
    println!("ringmail check {service}: {} at {}", account.user, target.host);
    let report = plan::run(args.service, &target, &ports, &account);
    print!("{}", report.render());
    let failed = report.not_passed();
    if failed > 0 {
        bail!("check failed: {failed} of {} steps did not pass", report.steps());
    }
    Ok(())
}

fn password(from_stdin: bool) -> Result<String> {
    let text = if from_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the password from stdin")?;
        text
    } else {
        std::env::var(PASSWORD_ENV).map_err(|_| anyhow!("no password: pass --password-stdin or set {PASSWORD_ENV}"))?
    };
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        bail!("the password is empty");
    }
    Ok(line.to_owned())
}

fn target(config: &Config, args: &CheckArgs) -> Result<Target> {
    let host = args.host.clone().unwrap_or_else(|| config.server.hostname.clone());
    let tls = if args.insecure {
        conn::insecure_config()?
    } else {
        let ca = ca_file(config, args.ca.as_deref())?;
        crate::tls::client_config(ca.as_deref(), "--ca").ok_or_else(|| match &ca {
            Some(file) => anyhow!("no CA certificate in {}", file.display()),
            None => anyhow!("no system CA certificates found: pass --ca FILE"),
        })?
    };
    target_for(host, tls, Duration::from_secs(args.timeout))
}

/// `host` resolved, to be reached with `tls` (an IMAP import's source too).
pub(crate) fn target_for(host: String, tls: Arc<ClientConfig>, timeout: Duration) -> Result<Target> {
    let server_name = ServerName::try_from(host.clone())
        .map_err(|_| anyhow!("invalid --host {host:?}: not a host name or address"))?;
    let addresses: Vec<IpAddr> = (host.as_str(), 0)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve --host {host}"))?
        .map(|a| a.ip())
        .collect();
    if addresses.is_empty() {
        bail!("cannot resolve --host {host}: no address");
    }
    Ok(Target {
        host,
        addresses,
        server_name,
        tls,
        timeout,
    })
}

/// `--ca`, else the certificate the server generated for itself if it uses one, else None
/// (the system's CAs).
fn ca_file(config: &Config, ca: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(file) = ca {
        if !file.is_file() {
            bail!("--ca {}: no such file", file.display());
        }
        return Ok(Some(file.to_owned()));
    }
    // A configured certificate is what clients see; a generated one left in data_dir from
    // before would only make its verification fail.
    if config.tls.cert.is_some() {
        return Ok(None);
    }
    let (generated, _) = crate::tls::generated_paths(&config.server.data_dir);
    Ok(generated.is_file().then_some(generated))
}

fn ports(config: &Config, args: &CheckArgs) -> Result<Ports> {
    let first = |given: Option<u16>, listen: &[SocketAddr], flag: &str, setting: &str| -> Result<u16> {
        given
            .or_else(|| listen.first().map(SocketAddr::port))
            .ok_or_else(|| anyhow!("no port for {setting}: it is empty; pass {flag}"))
    };
    let (plain, tls) = match args.service {
        Service::Imap | Service::Submission => (&config.imap.listen, &config.imap.listen_tls),
        Service::Pop3 => (&config.pop3.listen, &config.pop3.listen_tls),
    };
    let section = if args.service == Service::Pop3 { "pop3" } else { "imap" };
    let plain = match args.service {
        Service::Submission => None,
        _ => Some(first(
            args.port_plain,
            plain,
            "--port-plain",
            &format!("[{section}] listen"),
        )?),
    };
    let submissions = match args.service {
        Service::Submission => Some(first(
            args.submissions_port,
            &config.submission.listen_tls,
            "--submissions-port",
            "[submission] listen_tls",
        )?),
        _ => None,
    };
    Ok(Ports {
        plain,
        tls: first(args.port_tls, tls, "--port-tls", &format!("[{section}] listen_tls"))?,
        submission: first(
            args.submission_port,
            &config.submission.listen,
            "--submission-port",
            "[submission] listen",
        )?,
        submissions,
    })
}
