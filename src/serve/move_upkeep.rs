//! What a back end does for the moves of its mailboxes besides receiving them (`move_in`):
//!
//! - at start, it holds again the users whose move is in its locked final pass (the hold of
//!   the process before was in memory): a restart in the middle of a move must not let mail
//!   in behind the move's back;
//! - it removes the mailbox copies kept here after moves once their `--keep-source` days are
//!   over (`admin::moves::purge_due`): on a thread of its own, at start and then every
//!   `PURGE_EVERY`, so an operator need not remember `ringmail move purge`.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;

use super::{ServeError, Shared};
use crate::admin::moves::{purge_due, PURGE_EVERY};

/// Holds every user whose mailbox this back end holds and whose move the directory says is
/// locked. Without the directory, a warning: the locked users' deliveries are then refused
/// only once their entry is looked up.
pub(super) fn restore_holds(shared: &Shared) {
    if !shared.config.directory.is_ldap() {
        return;
    }
    let here = shared.config.backend_name();
    let moving = crate::directory::LdapAdmin::connect(&shared.config.directory).and_then(|mut ldap| ldap.moving());
    match moving {
        Ok(records) => {
            for r in records {
                let locked = r.account.moving.as_ref().is_some_and(|m| m.locked);
                if locked && r.account.mail_host.eq_ignore_ascii_case(here) {
                    tracing::info!(user = %r.account.name, "held: its move is in the final pass");
                    shared.sessions.hold(&r.account.name, true);
                }
            }
        }
        Err(e) => tracing::warn!("cannot read the moves under way from the directory: {e}"),
    }
}

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
