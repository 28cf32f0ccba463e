//! The `ringmail` command line (DESIGN.md §5). Errors print as one line on stderr with a
//! non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};

use ringmail::admin::{self, deliver};
use ringmail::config::Config;
use ringmail::serve;
use ringmail::store::UserPatch;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ringmail",
    version,
    about = "IMAP4, POP3, SMTP submission and LMTP mail server on io_uring and LMDB"
)]
struct Cli {
    /// Configuration file (TOML). Without one, the embedded development defaults apply.
    #[arg(long, global = true, env = "RINGMAIL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server until SIGINT or SIGTERM.
    Serve,
    /// Run a Client Access front end: clients log in here and are relayed to the back end
    /// that holds their mailbox (`[cluster]`, `[directory]`).
    Proxy,
    /// Print the effective configuration as commented TOML.
    Config,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Deliver a message from stdin to a user through the running server; exits 0 once durable.
    Deliver {
        name: String,
        #[arg(long)]
        mailbox: Option<String>,
    },
    /// The outbound queue of submitted mail for remote recipients.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Log in over each TLS mode, send a message to yourself, find it and delete it; print
    /// each step's result, latency and serving host. Exit 0 only if every step passed.
    Check(admin::check::CheckArgs),
    /// Check the store of a stopped server: every message with its body, counters, UIDNEXT,
    /// HIGHESTMODSEQ, quota usage, indexes, the queue. Exit 0 only when clean.
    Fsck {
        /// Fix what can be fixed: recount, raise UIDNEXT/HIGHESTMODSEQ, drop what nothing
        /// refers to.
        #[arg(long)]
        repair: bool,
    },
    /// Copy the store, consistent and compacted, while the server runs, into the new
    /// directory PATH (with the generated certificate and key): a server with
    /// `data_dir = PATH` runs on the copy.
    Backup { path: PathBuf },
    /// Make the running server and front end on this data_dir read their certificate and key
    /// again (as SIGHUP does): new connections use them, sessions already up continue.
    Reload,
    /// Write USER's mail as a Maildir that Dovecot reads back with the same UIDs, flags and
    /// POP3 UIDLs (dovecot-uidlist), or as a mailbox stream that keeps everything ringmail
    /// holds (modseqs too: docs/stream.md); works while the server runs.
    Export {
        user: String,
        /// maildir:PATH or mbox:PATH (a new directory), or stream:PATH (a file; - for standard output).
        #[arg(long)]
        to: admin::Location,
    },
    /// Read a Maildir (Dovecot's, or an export) or a mailbox stream into USER's mailboxes,
    /// keeping UIDVALIDITY, UIDs, flags, keywords and dates; run again, it adds only what is
    /// new. The server must be stopped.
    Import {
        /// The account to import into (none with --accounts or --directory).
        #[arg(required_unless_present_any = ["accounts", "directory"])]
        user: Option<String>,
        /// maildir:PATH, mbox:PATH (a directory, or one file for INBOX), stream:PATH (- for
        /// standard input), or imaps://[LOGIN@]HOST[:PORT]
        /// (imap:// with STARTTLS; LOGIN defaults to USER). With --accounts or --directory, %u
        /// in it stands for each user.
        #[arg(long)]
        from: String,
        /// Every account of this passwd-like file (name:{PLAIN}password or name:{ARGON2ID}hash
        /// per line), created here if missing.
        #[arg(long, conflicts_with_all = ["user", "directory"])]
        accounts: Option<PathBuf>,
        /// Every account the directory puts on this back end.
        #[arg(long, conflicts_with = "user")]
        directory: bool,
        /// The IMAP source's password from stdin (else RINGMAIL_IMPORT_PASSWORD).
        #[arg(long)]
        password_stdin: bool,
        /// PEM CA certificates the IMAP source's certificate must chain to (default: the system's).
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Do not check the IMAP source's certificate.
        #[arg(long)]
        insecure: bool,
    },
    /// List the sessions of the running server: user, protocol, client address, core, state,
    /// since when, TLS.
    Who {
        /// Only this user's.
        user: Option<String>,
    },
    /// End every session of USER on the running server (each is told why); clients may
    /// reconnect.
    Kick {
        user: String,
        /// Only sessions of this protocol.
        #[arg(long, value_enum)]
        protocol: Option<KickProtocol>,
    },
    /// Move USER's mailboxes, online, from this back end to BACKEND (`--to`): copy passes
    /// while the user works, a short locked final pass, a verification, then mailHost flips
    /// in the directory. Run it again to resume one that was cut off.
    #[command(args_conflicts_with_subcommands = true)]
    Move {
        #[command(subcommand)]
        action: Option<MoveAction>,
        user: Option<String>,
        /// The back end to move to (a name in cluster.backends, with a move address).
        #[arg(long)]
        to: Option<String>,
        /// Days the copy left here is kept; then the running server removes it (hourly), or
        /// `ringmail move purge`.
        #[arg(long, default_value_t = 7)]
        keep_source: u64,
        /// Forget a move that did not finish: the mailbox stays here.
        #[arg(long, conflicts_with = "to")]
        abort: bool,
    },
    /// Move every mailbox off BACKEND (the back end this config runs), a few at a time.
    Evacuate {
        backend: String,
        /// All to this back end (default: spread over every other back end with a move address).
        #[arg(long)]
        to: Option<String>,
        /// Moves at once.
        #[arg(long, default_value_t = 2)]
        parallel: usize,
        #[arg(long, default_value_t = 7)]
        keep_source: u64,
    },
}

#[derive(Subcommand)]
enum MoveAction {
    /// The moves under way and the copies kept here after a move.
    Status,
    /// Remove now the copies kept here whose --keep-source days are over (the running server
    /// does it hourly).
    Purge,
}

#[derive(Clone, Copy, ValueEnum)]
enum KickProtocol {
    Imap,
    Pop3,
    Submission,
}

impl KickProtocol {
    fn name(self) -> &'static str {
        match self {
            KickProtocol::Imap => "imap",
            KickProtocol::Pop3 => "pop3",
            KickProtocol::Submission => "submission",
        }
    }
}

#[derive(Subcommand)]
enum QueueCommand {
    /// List queued messages: id, sender, recipients, attempts, next attempt, last error.
    List,
    /// Make every queued message due now (a running server notices within seconds).
    Flush,
    /// Remove a queued message without delivering it or bouncing it.
    Delete { id: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user with the default folders. Without --password-stdin a password is generated.
    Add {
        name: String,
        #[arg(long)]
        password_stdin: bool,
        /// Administrator: may submit mail but never opens a mailbox over POP3/IMAP4.
        #[arg(long)]
        admin: bool,
        /// With an LDAP directory: the back end holding the mailbox (`mailHost`); default
        /// this machine's `[cluster] name`.
        #[arg(long)]
        home: Option<String>,
    },
    /// Change a password. Without --password-stdin a new one is generated and printed.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Print an argon2 hash of a password, for a static directory's `password_hash`.
    Hash {
        #[arg(long)]
        password_stdin: bool,
        /// Print SCRAM-SHA-256 keys in RFC 5803 form instead (a static directory's `scram`,
        /// LDAP's `ringmailScramSHA256`).
        #[arg(long)]
        scram: bool,
    },
    /// Change a user's switches and quota.
    Set(SetArgs),
    /// Delete a user and all their mail.
    Del { name: String },
    /// List users.
    List,
    /// Show one user.
    Show { name: String },
}

#[derive(Args)]
struct SetArgs {
    name: String,
    #[arg(long)]
    pop: Option<Switch>,
    #[arg(long)]
    imap: Option<Switch>,
    /// SMTP submission.
    #[arg(long)]
    smtp: Option<Switch>,
    #[arg(long)]
    admin: Option<Switch>,
    /// Storage quota in bytes; 0 removes it.
    #[arg(long)]
    quota: Option<u64>,
    /// Back end holding this mailbox, for front-end proxies; empty clears it.
    #[arg(long)]
    home: Option<String>,
    /// IMAP extensions to hide from and refuse to this user, comma-separated (e.g.
    /// UIDONLY,COMPRESS=DEFLATE); replaces the list; empty clears it.
    #[arg(long, value_name = "CAP[,CAP]")]
    imap_disable: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Switch {
    On,
    Off,
}

impl From<Switch> for bool {
    fn from(s: Switch) -> bool {
        matches!(s, Switch::On)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringmail: {}", one_line(&e));
            match e.downcast_ref::<deliver::Rejected>() {
                Some(r) if r.temporary => ExitCode::from(deliver::EX_TEMPFAIL as u8),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    e.chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ")
}

fn run(cli: Cli) -> Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve_command(config),
        Command::Proxy => proxy_command(config),
        Command::Config => {
            print!("{}", config.render());
            Ok(())
        }
        Command::User(cmd) => user_command(&config, cmd),
        Command::Queue(QueueCommand::List) => admin::queue::list(&config),
        Command::Queue(QueueCommand::Flush) => admin::queue::flush(&config),
        Command::Queue(QueueCommand::Delete { id }) => admin::queue::delete(&config, &id),
        Command::Check(args) => admin::check::run(&config, args),
        Command::Fsck { repair } => admin::fsck(&config, repair),
        Command::Backup { path } => admin::backup(&config, &path),
        Command::Reload => admin::reload(&config),
        Command::Export { user, to } => admin::export::run(&config, &user, &to),
        Command::Import {
            user,
            from,
            accounts,
            directory,
            password_stdin,
            ca,
            insecure,
        } => {
            let auth = admin::imap_import::SourceAuth {
                password_stdin,
                ca,
                insecure,
            };
            let bulk = match accounts {
                Some(file) => Some(admin::bulk_import::Accounts::File(file)),
                None => directory.then_some(admin::bulk_import::Accounts::Directory),
            };
            match (bulk, user) {
                (Some(bulk), _) => admin::bulk_import::run(&config, &bulk, &from, &auth),
                (None, Some(user)) => {
                    let from: admin::Location = from.parse().map_err(|e: String| anyhow::anyhow!(e))?;
                    admin::import::run(&config, &user, &from, &auth)
                }
                (None, None) => {
                    anyhow::bail!("name the account to import into, or give --accounts FILE or --directory")
                }
            }
        }
        Command::Who { user } => admin::who(&config, user.as_deref()),
        Command::Kick { user, protocol } => admin::kick(&config, &user, protocol.map(KickProtocol::name)),
        Command::Move {
            action,
            user,
            to,
            keep_source,
            abort,
        } => match (action, user, to) {
            (Some(MoveAction::Status), ..) => admin::moves::status(&config),
            (Some(MoveAction::Purge), ..) => admin::moves::purge(&config),
            (None, Some(user), _) if abort => admin::moves::abort(&config, &user),
            (None, Some(user), Some(to)) => admin::moves::run(
                &config,
                &admin::moves::MoveArgs {
                    user,
                    to,
                    keep_source_days: keep_source,
                },
            ),
            _ => anyhow::bail!("usage: ringmail move USER --to BACKEND | move USER --abort | move status | move purge"),
        },
        Command::Evacuate {
            backend,
            to,
            parallel,
            keep_source,
        } => admin::moves::evacuate(&config, &backend, to.as_deref(), parallel, keep_source),
        Command::Deliver { name, mailbox } => {
            let message = deliver::read_stdin()?;
            deliver::deliver(&config.lmtp_socket_path(), &name, mailbox.as_deref(), &message)
        }
    }
}

fn user_command(config: &Config, cmd: UserCommand) -> Result<()> {
    match cmd {
        UserCommand::Add {
            name,
            password_stdin,
            admin,
            home,
        } => admin::user_add(config, &name, password_stdin, admin, home.as_deref()),
        UserCommand::Passwd { name, password_stdin } => admin::user_passwd(config, &name, password_stdin),
        UserCommand::Hash { password_stdin, scram } => admin::user_hash(password_stdin, scram),
        UserCommand::Set(a) => {
            let patch = UserPatch {
                pop: a.pop.map(bool::from),
                imap: a.imap.map(bool::from),
                smtp: a.smtp.map(bool::from),
                admin: a.admin.map(bool::from),
                quota: a.quota.map(|q| (q > 0).then_some(q)),
                home: a.home.map(|h| (!h.is_empty()).then_some(h)),
                imap_disabled: a.imap_disable.as_deref().map(admin::imap_capabilities).transpose()?,
                password: None,
            };
            admin::user_set(config, &a.name, patch)
        }
        UserCommand::Del { name } => admin::user_del(config, &name),
        UserCommand::List => admin::user_list(config),
        UserCommand::Show { name } => admin::user_show(config, &name),
    }
}

/// Logs to stderr at `log.level`, as text or JSON lines (`log.format`).
fn init_logging(config: &Config) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("invalid log.level {:?}", config.log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        ringmail::config::LogFormat::Text => builder.init(),
        ringmail::config::LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

fn serve_command(config: Config) -> Result<()> {
    init_logging(&config)?;
    let demo = config.server.demo_user;
    let mut ready_error = None;
    serve::run(config, |shared| {
        if demo {
            match serve::ensure_demo_user(&shared.store) {
                Ok(Some(password)) => println!("demo user created: name demo, password {password}"),
                Ok(None) => {}
                Err(e) => ready_error = Some(e),
            }
        }
        print_listeners(&shared.config);
    })?;
    if let Some(e) = ready_error {
        return Err(e.into());
    }
    Ok(())
}

fn proxy_command(config: Config) -> Result<()> {
    init_logging(&config)?;
    let listeners = (config.imap.listen.clone(), config.imap.listen_tls.clone());
    ringmail::proxy::run(config, || {
        let join = |v: &[std::net::SocketAddr]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ");
        println!("proxy imap (STARTTLS): {}", join(&listeners.0));
        println!("proxy imaps: {}", join(&listeners.1));
        println!("ringmail proxy ready");
    })?;
    Ok(())
}

fn print_listeners(config: &Config) {
    let join = |v: &[std::net::SocketAddr]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" ");
    println!("imap (STARTTLS): {}", join(&config.imap.listen));
    println!("imaps: {}", join(&config.imap.listen_tls));
    println!("pop3 (STLS): {}", join(&config.pop3.listen));
    println!("pop3s: {}", join(&config.pop3.listen_tls));
    println!("submission (STARTTLS): {}", join(&config.submission.listen));
    println!("submissions: {}", join(&config.submission.listen_tls));
    println!(
        "lmtp: {} and {}",
        join(&config.lmtp.listen),
        config.lmtp_socket_path().display()
    );
    println!("ringmail ready ({} workers)", config.workers());
    use std::io::Write;
    let _ = std::io::stdout().flush();
}
