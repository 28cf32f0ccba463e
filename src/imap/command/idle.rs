//! IDLE (RFC 2177, RFC 9051 §6.3.13): the client waits and hears of changes as they happen
//! (`sync`), with a keepalive now and then, until DONE. A NOTIFY session between commands is
//! told of changes the same way.

use crate::imap::command::{Spec, States};
use crate::imap::fault::{ok, Fault};
use crate::imap::parse;
use crate::imap::session::{untagged, Action, Ctx, Session, Step};
use crate::imap::types::Command;

/// The command table's rows (`command::COMMANDS`).
pub(crate) const IDLE: Spec = Spec {
    name: "IDLE",
    extension: Some("IDLE"),
    states: States::Authenticated,
    numbers: false,
    expunges: true,
    rfc: "RFC 2177, RFC 9051 §6.3.13",
    parse: |c| parse::bare(c, Command::Idle),
};

impl Session {
    pub(crate) fn idle_start(&mut self, tag: String, ctx: &mut Ctx<'_>, out: &mut Vec<u8>) -> Action {
        out.extend_from_slice(b"+ idling\r\n");
        // Changes made before IDLE are reported at once.
        self.sync(ctx, out);
        self.conn.step = Step::Idle { tag };
        Action::Idle {
            mailbox: self.selected_mailbox(),
        }
    }

    pub(crate) fn idle_line(&mut self, line: &[u8], ctx: &mut Ctx<'_>, out: &mut Vec<u8>) -> Action {
        let Step::Idle { tag } = std::mem::replace(&mut self.conn.step, Step::Commands) else {
            // `input` hands lines here in IDLE only.
            return Action::Continue;
        };
        self.sync(ctx, out);
        if line.eq_ignore_ascii_case(b"DONE") {
            ok(out, &tag, "IDLE terminated");
        } else {
            Fault::bad("expected DONE").write(&tag, out);
        }
        Action::Continue
    }

    /// In IDLE: something changed in the selected mailbox, or it is time for a keepalive.
    /// A NOTIFY session waiting between commands is told of changes the same way (RFC 5465
    /// §3: its notifications may come at any time), without keepalives.
    pub fn idle_tick(&mut self, changed: bool, ctx: &mut Ctx<'_>, out: &mut Vec<u8>) {
        let idle = self.is_idle();
        let notify_wake = changed && self.conn.notify.is_some() && matches!(self.conn.step, Step::Commands);
        if !(idle || notify_wake) {
            return;
        }
        if changed {
            self.sync(ctx, out);
        } else {
            // Mobile NATs drop silent flows: say something now and then (RFC 2177 §3).
            untagged(out, "OK Still here");
        }
    }

    /// How long an IDLE client may hear nothing before it is told "Still here".
    pub fn keepalive(&self) -> std::time::Duration {
        self.conn.settings.idle_keepalive
    }

    pub fn is_idle(&self) -> bool {
        matches!(self.conn.step, Step::Idle { .. })
    }
}
