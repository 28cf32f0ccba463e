//! Mail submitted at one back end for a mailbox another back end of the cluster holds
//! (DESIGN.md §7): the directory says which back end holds the account, `cluster.backends`
//! gives its LMTP address, and the queue delivers there, durably and with retries, as it
//! relays to the smarthost. Blocking (the directory): call it off the event loops.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Backend, Config};
use crate::directory::{Account, Directory, DirectoryError};
use crate::smtp::addr::Served;

pub struct Routes {
    directory: Arc<dyn Directory>,
    backends: Vec<Backend>,
    /// This back end's name: its own accounts are not routed.
    home: String,
    served: Served,
}

impl Routes {
    pub fn new(directory: Arc<dyn Directory>, config: &Config) -> Routes {
        Routes {
            directory,
            backends: config.cluster.backends.clone(),
            home: config.backend_name().to_owned(),
            served: Served::for_submission(&config.server.domains, &config.server.hostname),
        }
    }

    /// The LMTP address of the other back end that holds account `user`'s mailbox.
    pub fn route(&self, user: &str) -> Result<Option<SocketAddr>, DirectoryError> {
        Ok(self
            .directory
            .lookup(user)?
            .and_then(|account| self.route_account(&account)))
    }

    /// The LMTP address of the back end holding `account`'s mailbox, if not this one.
    pub fn route_account(&self, account: &Account) -> Option<SocketAddr> {
        if account.mail_host.eq_ignore_ascii_case(&self.home) {
            return None;
        }
        let backend = self
            .backends
            .iter()
            .find(|b| b.name.eq_ignore_ascii_case(&account.mail_host));
        backend.and_then(|b| b.lmtp)
    }

    /// `route` for a recipient address of a domain this cluster serves.
    pub fn route_address(&self, address: &str) -> Result<Option<SocketAddr>, DirectoryError> {
        match self.served.local_part(address) {
            Some((user, _detail)) => self.route(&user.to_ascii_lowercase()),
            None => Ok(None),
        }
    }
}
