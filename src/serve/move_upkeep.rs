//! What a back end does for the moves of its mailboxes besides receiving them (`move_in`):
//!
//! - at start, it holds again the users whose move is in its locked final pass (the hold of
//!   the process before was in memory): a restart in the middle of a move must not let mail
//!   in behind the move's back. If the directory does not answer then, it asks again every
//!   `RETRY` until it does; meanwhile such a user's mail is taken, and the move's final pass,
//!   run again, carries it;
//! - it removes the mailbox copies kept here after moves once their `--keep-source` days are
//!   over (`admin::moves::purge_due`), at start and then every `PURGE_EVERY`, so an operator
//!   need not remember `ringmail move purge`.
//!
//! Both on a thread of its own: they wait on the directory.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ServeError, Shared};
use crate::admin::moves::{purge_due, PURGE_EVERY};

/// How soon the holds are asked for again when the directory did not answer.
const RETRY: Duration = Duration::from_secs(30);

/// Holds every user whose mailbox this back end holds and whose move the directory says is
/// locked. False if the directory could not say.
pub(super) fn restore_holds(shared: &Shared) -> bool {
    if !shared.config.directory.is_ldap() {
        return true;
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
            true
        }
        Err(e) => {
            tracing::warn!("cannot read the moves under way from the directory (asking again in {RETRY:?}): {e}");
            false
        }
    }
}

/// Ends its thread when dropped.
pub(super) struct Upkeep {
    _stop: mpsc::Sender<()>,
}

impl Upkeep {
    /// Moves need the LDAP directory: without one there is nothing to do. `held`: whether
    /// `restore_holds` succeeded at start.
    pub(super) fn start(shared: &Arc<Shared>, mut held: bool) -> Result<Option<Upkeep>, ServeError> {
        if !shared.config.directory.is_ldap() {
            return Ok(None);
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("ringmail-moves".into())
            .spawn(move || {
                let mut next_purge = Instant::now();
                loop {
                    if !held {
                        held = restore_holds(&shared);
                    }
                    if Instant::now() >= next_purge {
                        purge(&shared);
                        next_purge = Instant::now() + PURGE_EVERY;
                    }
                    let mut wait = next_purge.saturating_duration_since(Instant::now());
                    if !held {
                        wait = wait.min(RETRY);
                    }
                    if stopped.recv_timeout(wait) != Err(RecvTimeoutError::Timeout) {
                        break;
                    }
                }
            })?;
        Ok(Some(Upkeep { _stop: stop }))
    }
}

fn purge(shared: &Shared) {
    match purge_due(&shared.config, &shared.store) {
        Ok(removed) => {
            for (user, home) in removed {
                tracing::info!(%user, %home, "the copy kept after the move is removed: its days are over");
            }
        }
        Err(e) => tracing::warn!("cannot remove the copies kept after moves: {e:#}"),
    }
}
