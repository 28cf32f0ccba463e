//! `ringmail proxy`: the Client Access front end (DESIGN.md §7). It accepts clients on the
//! `[imap]` listeners, runs the protocol's own session up to login, checks the credentials in
//! the directory and the account's policy, connects to the back end that holds the mailbox
//! (`cluster.backends`, by the account's `mail_host`), opens that connection with a PROXY v2
//! header and the front end's own login for the user, and from then on relays bytes both ways
//! without parsing them. It holds no mailbox and no state a restart would lose.

mod backend;
mod imap;
mod nostore;
pub mod proxy_v2;
mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::limits::{ConnectionLimits, LimitSettings};
use crate::auth::penalty::Penalties;
use crate::config::Config;
use crate::directory::Directory;
use crate::runtime::io::{self, TcpListener};
use crate::runtime::Shutdown;
use crate::serve::login_pool::LoginPool;
use crate::serve::{Cores, Ready, ServeError};

/// What every front-end session shares.
pub struct Front {
    pub config: Config,
    pub tls: Arc<rustls::ServerConfig>,
    pub directory: Box<dyn Directory>,
    pub imap_limits: Arc<ConnectionLimits>,
    pub penalties: Penalties,
    /// Where passwords are checked, off the event loops.
    pub login_pool: LoginPool,
}

/// Runs the front end until a signal arrives. `on_ready` is told once every listener is bound.
pub fn run(config: Config, on_ready: impl FnOnce()) -> Result<(), ServeError> {
    std::fs::create_dir_all(&config.server.data_dir)?;
    let tls = crate::tls::server_config(&config)?;
    let front = Arc::new(Front {
        directory: crate::directory::open(&config.directory),
        imap_limits: ConnectionLimits::new(LimitSettings {
            max_connections: config.imap.max_connections,
            max_connections_per_ip: config.imap.max_connections_per_ip,
            max_connections_per_user: config.imap.max_connections_per_user,
        }),
        penalties: Penalties::new(
            Duration::from_secs(config.limits.login_failure_delay),
            Duration::from_secs(config.limits.login_failure_delay_max),
        ),
        login_pool: LoginPool::start(config.workers())?,
        tls,
        config,
    });
    let cores = Cores::start(front.config.workers(), "ringmail-proxy", move |_, shutdown, ready| {
        worker(front.clone(), shutdown, ready)
    })?;
    on_ready();
    cores.run_until_signal()
}

async fn worker(front: Arc<Front>, shutdown: Shutdown, ready: Ready) {
    let c = &front.config.imap;
    let mut listeners = Vec::new();
    for (addrs, tls) in [(&c.listen, false), (&c.listen_tls, true)] {
        for addr in addrs {
            match TcpListener::bind(*addr) {
                Ok(l) => listeners.push((l, tls)),
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
    for (listener, tls) in listeners {
        io::spawn(accept_loop(listener, tls, front.clone(), shutdown.clone()));
    }
    shutdown.wait().await;
}

async fn accept_loop(listener: TcpListener, tls: bool, front: Arc<Front>, shutdown: Shutdown) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shutdown.wait() => return,
        };
        let (stream, peer): (io::Stream, SocketAddr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        io::spawn(imap::serve(front.clone(), stream, peer, tls, shutdown.clone()));
    }
}
