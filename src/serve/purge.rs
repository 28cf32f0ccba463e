//! The removal of the mailbox copies kept here after moves, once their `--keep-source` days
//! are over (`admin::moves::purge_due`): on a thread of its own, at start and then every
//! `PURGE_EVERY`, so an operator need not remember `ringmail move purge`.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;

use super::{ServeError, Shared};
use crate::admin::moves::{purge_due, PURGE_EVERY};

/// Ends its thread when dropped.
pub(super) struct Purger {
    _stop: mpsc::Sender<()>,
}

impl Purger {
    /// Moves need the LDAP directory: without one there is nothing to purge.
    pub(super) fn start(shared: &Arc<Shared>) -> Result<Option<Purger>, ServeError> {
        if !shared.config.directory.is_ldap() {
            return Ok(None);
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("ringmail-purge".into())
            .spawn(move || loop {
                match purge_due(&shared.config, &shared.store) {
                    Ok(removed) => {
                        for (user, home) in removed {
                            tracing::info!(%user, %home, "the copy kept after the move is removed: its days are over");
                        }
                    }
                    Err(e) => tracing::warn!("cannot remove the copies kept after moves: {e:#}"),
                }
                if stopped.recv_timeout(PURGE_EVERY) != Err(RecvTimeoutError::Timeout) {
                    break;
                }
            })?;
        Ok(Some(Purger { _stop: stop }))
    }
}
