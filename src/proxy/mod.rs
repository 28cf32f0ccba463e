//! `ringmail proxy`: the Client Access front end (DESIGN.md §7). It accepts clients on the
//! `[imap]`, `[pop3]` and `[submission]` listeners (and MTAs on `[lmtp] listen`), runs the protocol's own session up to
//! login, checks the credentials in the directory and the account's policy, connects to the
//! back end that holds the mailbox (`cluster.backends`, by the account's `mail_host`), opens
//! that connection with a PROXY v2 header and the front end's own login for the user, and from
//! then on relays bytes both ways without parsing them. It holds no mailbox and no state a
//! restart would lose.

#![forbid(unsafe_code)]

mod backend;
mod breaker;
mod exposition;
mod front;
#[doc(hidden)]
pub mod fuzzing;
mod imap;
mod lmtp;
mod nostore;
mod pop3;
pub mod proxy_v2;
mod relay;
mod rest;
mod submission;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::auth::limits::{ConnectionLimits, ProtocolLimits};
use crate::auth::penalty::Penalties;
use crate::config::Config;
use crate::directory::Directory;
use crate::protolog::ProtoLog;
use crate::runtime::io::{self, TcpListener};
use crate::runtime::Shutdown;
use crate::serve::pool::{GiveBack, Pool};
use crate::serve::{Cores, Ready, ServeError};
use front::Listener;

/// What every front-end session shares.
pub struct Front {
    pub config: Config,
    pub tls: Arc<rustls::ServerConfig>,
    pub directory: Box<dyn Directory>,
    pub penalties: Penalties,
    /// Where passwords are checked, off the event loops.
    pub login_pool: Pool,
    pub protolog: Option<ProtoLog>,
    /// Back ends that failed to answer, tried again only after a while.
    breakers: breaker::Breakers,
    /// TLS settings of the back ends that take TLS, by name.
    backend_tls: HashMap<String, backend::BackendTls>,
    imap_limits: Arc<ConnectionLimits>,
    pop3_limits: Arc<ConnectionLimits>,
    lmtp_limits: Arc<ConnectionLimits>,
    submission_limits: Arc<ConnectionLimits>,
    /// Every live session, for `ringmail who` and `kick` and the metrics.
    sessions: Arc<crate::sessions::Registry>,
    next_session: AtomicU64,
}

impl Front {
    fn session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    fn backend_tls(&self, backend: &crate::config::Backend) -> Option<&backend::BackendTls> {
        self.backend_tls.get(&backend.name)
    }
}

/// The TLS client settings for each back end that takes TLS.
fn backend_tls(config: &Config) -> Result<HashMap<String, backend::BackendTls>, ServeError> {
    let mut out = HashMap::new();
    let mut client = None;
    for b in config.cluster.backends.iter().filter(|b| b.tls) {
        let config = match &client {
            Some(c) => Arc::clone(c),
            None => {
                let ca = config.cluster.backend_ca.as_deref();
                let made = crate::tls::client_config(ca, "[cluster] backend_ca").ok_or_else(|| {
                    std::io::Error::other("no CA certificates to check back ends with: set [cluster] backend_ca")
                })?;
                client.insert(made).clone()
            }
        };
        let name = b.tls_name.clone().unwrap_or_else(|| b.name.clone());
        let name = ServerName::try_from(name)
            .map_err(|e| std::io::Error::other(format!("cluster.backends {}: tls_name: {e}", b.name)))?;
        out.insert(b.name.clone(), (config, name));
    }
    Ok(out)
}

/// What a listener serves: a client protocol with its settings, or LMTP from MTAs (no login,
/// routed per recipient).
#[derive(Clone)]
enum Service {
    Imap(Arc<Listener>),
    Pop3(Arc<Listener>),
    Submission(Arc<Listener>),
    Lmtp,
}

/// Runs the front end until a signal arrives. `on_ready` is told once every listener is bound.
pub fn run(config: Config, on_ready: impl FnOnce()) -> Result<(), ServeError> {
    crate::runtime::small_pages();
    let lock = crate::serve::lock_in(&config.server.data_dir, crate::serve::PROXY_LOCK)?;
    crate::serve::record_pid(&lock)?;
    let (tls, identity) = crate::tls::server_config(&config)?;
    let protolog = if config.imap.protocol_log || config.pop3.protocol_log || config.submission.protocol_log {
        Some(ProtoLog::start(
            config.server.data_dir.join(&config.log.protocol_log_dir),
        )?)
    } else {
        None
    };
    // A relayed session holds two descriptors: its client's and its back end's.
    let limits = ProtocolLimits::from_config(&config, 2);
    if config.oauth.is_configured() {
        crate::auth::oauth::configure(config.oauth.settings(&config.server.domains));
    }
    crate::auth::cache::configure(
        std::time::Duration::from_secs(config.limits.credential_cache_ttl),
        config.limits.credential_cache_entries,
    );
    let front = Arc::new(Front {
        directory: crate::directory::open(&config.directory),
        imap_limits: limits.imap,
        pop3_limits: limits.pop3,
        lmtp_limits: limits.lmtp,
        submission_limits: limits.submission,
        penalties: Penalties::from_config(&config.limits),
        login_pool: Pool::start("ringmail-login", config.workers(), GiveBack::EachJob)?,
        protolog,
        breakers: breaker::Breakers::default(),
        backend_tls: backend_tls(&config)?,
        sessions: Arc::new(crate::sessions::Registry::new(config.workers())),
        next_session: AtomicU64::new(1),
        tls,
        config,
    });
    crate::serve::ensure_ports_free(listeners(&front).iter().flat_map(|(addrs, _)| addrs.iter()))?;
    let cores = {
        let front = front.clone();
        Cores::start(front.config.workers(), "ringmail-proxy", move |_, shutdown, ready| {
            worker(front.clone(), shutdown, ready)
        })?
    };
    let doors = match side_doors(&front) {
        Ok(doors) => doors,
        Err(e) => {
            cores.stop();
            return Err(e);
        }
    };
    let signals = match crate::runtime::catch_signals() {
        Ok(signals) => signals,
        Err(e) => {
            cores.stop();
            return Err(e.into());
        }
    };
    on_ready();
    cores.run_until_signal(signals, &identity)?;
    drop(doors);
    Ok(())
}

/// What a front end answers beside mail, each on a thread of its own: the admin socket
/// (`who`, `kick`), the metrics endpoint, client autoconfiguration. Closed when dropped.
type SideDoors = (
    crate::serve::control::Control,
    Option<crate::http::Server>,
    Option<crate::http::Server>,
);

fn side_doors(front: &Arc<Front>) -> Result<SideDoors, ServeError> {
    use crate::serve::control::{Control, PROXY_ADMIN_SOCKET};
    let dir = &front.config.server.data_dir;
    Ok((
        Control::start(dir, PROXY_ADMIN_SOCKET, front.sessions.clone())?,
        crate::metrics::start(&front.config, exposition::Exposition(front.clone()))?,
        crate::autoconfig::start(&front.config, &front.tls)?,
    ))
}

/// Every listener: its addresses and what it serves.
fn listeners(front: &Front) -> Vec<(&[SocketAddr], Service)> {
    let c = &front.config;
    let listener = |implicit_tls, pre_auth_timeout, limits: &Arc<ConnectionLimits>, protocol_log| {
        Arc::new(Listener {
            implicit_tls,
            pre_auth_timeout,
            limits: limits.clone(),
            protocol_log,
        })
    };
    let imap = |tls| {
        let t = Duration::from_secs(c.imap.pre_auth_timeout);
        Service::Imap(listener(tls, t, &front.imap_limits, c.imap.protocol_log))
    };
    let pop3 = |tls| {
        Service::Pop3(listener(
            tls,
            c.pop3.pre_auth_timeout(),
            &front.pop3_limits,
            c.pop3.protocol_log,
        ))
    };
    let submission = |tls| {
        let t = c.submission.pre_auth_timeout();
        Service::Submission(listener(tls, t, &front.submission_limits, c.submission.protocol_log))
    };
    vec![
        (&c.imap.listen, imap(false)),
        (&c.imap.listen_tls, imap(true)),
        (&c.pop3.listen, pop3(false)),
        (&c.pop3.listen_tls, pop3(true)),
        (&c.submission.listen, submission(false)),
        (&c.submission.listen_tls, submission(true)),
        (&c.lmtp.listen, Service::Lmtp),
    ]
}

async fn worker(front: Arc<Front>, shutdown: Shutdown, ready: Ready) {
    let mut bound = Vec::new();
    for (addrs, service) in listeners(&front) {
        for addr in addrs {
            match TcpListener::bind(*addr) {
                Ok(l) => bound.push((l, service.clone())),
                Err(source) => {
                    let _ = ready.send(Err(ServeError::Listen {
                        addr: addr.to_string(),
                        source,
                    }));
                    return;
                }
            }
        }
    }
    let _ = ready.send(Ok(()));
    drop(ready);
    io::spawn(crate::runtime::tidy(shutdown.clone()));
    let rests = rest::Rests::new(shutdown.clone());
    io::spawn(rest::watch_over(rests.clone()));
    for (listener, service) in bound {
        io::spawn(accept_loop(listener, service, front.clone(), rests.clone()));
    }
    shutdown.wait().await;
}

async fn accept_loop(listener: TcpListener, service: Service, front: Arc<Front>, rests: Rc<rest::Rests>) {
    let mut failures = crate::runtime::nofile::AcceptFailures::default();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = rests.shutdown().wait() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                failures.failed(e).await;
                continue;
            }
        };
        let (front, service, rests) = (front.clone(), service.clone(), rests.clone());
        io::spawn(async move {
            let config = &front.clone().config;
            match &service {
                Service::Imap(s) => {
                    let make = |tls| imap::ImapFront::new(config, s.implicit_tls, tls);
                    front::serve(front, s, stream, peer, make, rests).await;
                }
                Service::Pop3(s) => {
                    let make = |tls| pop3::front(config, s.implicit_tls, tls);
                    front::serve(front, s, stream, peer, make, rests).await;
                }
                Service::Submission(s) => {
                    let make = |tls| submission::front(config, s.implicit_tls, tls);
                    front::serve(front, s, stream, peer, make, rests).await;
                }
                Service::Lmtp => lmtp::serve(front, stream, peer, rests.shutdown().clone()).await,
            }
        });
    }
}
