//! COMPRESS=DEFLATE (RFC 4978): from the tagged OK on, both directions are compressed (the
//! driver does it).

use crate::imap::command::{Spec, States};
use crate::imap::fault::{ok, Code, Fault};
use crate::imap::session::{Action, Conn};
use crate::imap::types::Command;

/// The command table's rows (`command::COMMANDS`).
pub(crate) const COMPRESS: Spec = Spec {
    name: "COMPRESS",
    extension: Some("COMPRESS=DEFLATE"),
    states: States::Authenticated,
    numbers: false,
    expunges: false,
    rfc: "RFC 4978 §3",
    parse: |c| {
        c.sp()?;
        let mechanism = c.atom()?.to_ascii_uppercase();
        c.end()?;
        Ok(Command::Compress { mechanism })
    },
};

impl Conn {
    /// COMPRESS (RFC 4978).
    pub(crate) fn compress(&mut self, tag: &str, mechanism: &str, out: &mut Vec<u8>) -> Action {
        if self.compressed {
            Fault::no(Code::CompressionActive, "already compressing").write(tag, out);
        } else if mechanism != "DEFLATE" {
            Fault::no(Code::Cannot, "only DEFLATE is offered").write(tag, out);
        } else {
            self.compressed = true;
            ok(out, tag, "DEFLATE active");
            return Action::StartCompress;
        }
        Action::Continue
    }
}
